//! The report in a real browser: headless Chromium renders it to a PNG and dumps its DOM.
//!
//! `scripts/test` installs Debian's `chromium` when `/usr/bin/chromium` is absent; this test
//! fails (never skips) without it, so CI cannot pass while the page goes unchecked. Set
//! `TURKFORM_UPDATE_SCREENSHOT=1` to copy the screenshot to `docs/report.png` for the README.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    let path = std::env::var_os("TURKFORM_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "`{}` is missing: run ./scripts/test (it installs Debian's chromium) or `apt-get install -y chromium`",
        path.display()
    );
    path
}

/// Runs headless Chromium on `page` with `mode` (`--screenshot=...` or `--dump-dom`) and a
/// fresh profile, and returns its stdout. A browser that hangs is killed after two minutes.
fn run_chromium(page: &Path, mode: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out_file = profile.path().join("stdout");
    let stdout = std::fs::File::create(&out_file).unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .arg("--window-size=1280,2000")
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within two minutes ({mode})");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed ({mode}): {status}");
    std::fs::read_to_string(out_file).unwrap()
}

/// (distinct colours, share of pixels that are not white).
fn colour_figures(png_path: &Path) -> (usize, f64) {
    let file = std::io::BufReader::new(std::fs::File::open(png_path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    assert!(
        channels >= 3,
        "colour screenshot expected, got {:?}",
        info.color_type
    );
    let mut colours = HashSet::new();
    let mut non_white = 0usize;
    let pixels = bytes.len() / channels;
    for px in bytes.chunks_exact(channels) {
        let rgb = (px[0], px[1], px[2]);
        colours.insert(rgb);
        if rgb != (255, 255, 255) {
            non_white += 1;
        }
    }
    (colours.len(), non_white as f64 / pixels as f64)
}

#[test]
fn chromium_renders_the_report_with_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, turkform_report::render(&common::fixture()).unwrap()).unwrap();

    let screenshot = dir.path().join("report.png");
    run_chromium(&page, &format!("--screenshot={}", screenshot.display()));
    let (colours, non_white) = colour_figures(&screenshot);
    assert!(
        colours > 50,
        "only {colours} distinct colours: the page looks blank"
    );
    assert!(
        non_white > 0.03,
        "only {:.1}% non-white pixels",
        non_white * 100.0
    );

    let dom = run_chromium(&page, "--dump-dom");
    for name in ["birds-2026", "sentiment-pilot"] {
        assert!(dom.contains(name), "the DOM lacks campaign `{name}`");
    }
    assert!(dom.matches("<svg").count() >= 7, "the DOM lacks the charts");
    assert!(dom.contains("polyline"), "the DOM lacks the chart lines");

    if std::env::var_os("TURKFORM_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&screenshot, docs.join("report.png")).unwrap();
    }
}
