//! What the `turkform` benchmark examples share: flags, the release binary beside the example,
//! a project directory whose state the example writes, and a timed run of the binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The value after `name` on the command line, or `default`.
pub fn arg<'a>(args: &'a [String], name: &str, default: &'a str) -> &'a str {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, String::as_str)
}

/// The release `turkform` binary next to this example (`target/release/turkform`).
pub fn release_binary() -> PathBuf {
    let binary = std::env::current_exe()
        .expect("own path")
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("turkform"))
        .expect("target dir");
    assert!(
        binary.exists(),
        "`{}` is missing: run `cargo build --release -p turkform` first",
        binary.display()
    );
    binary
}

/// A project in a temporary directory (target sim, an empty campaigns folder) and the path of
/// its state file, for the example to fill through the state store.
pub fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("turkform.toml"),
        "target = \"sim\"\nstate = \"state/turkform.db\"\n",
    )
    .expect("settings");
    std::fs::create_dir_all(dir.path().join("campaigns")).expect("campaigns dir");
    let state = dir.path().join("state/turkform.db");
    (dir, state)
}

/// Runs `turkform -C DIR ARGS` under `/usr/bin/time`: (wall seconds, peak RSS in KB). Panics
/// with the command's stderr when it fails.
pub fn timed(binary: &Path, dir: &Path, args: &[&str]) -> (f64, u64) {
    let (wall, peak_kb, _) = timed_cpu(binary, dir, args);
    (wall, peak_kb)
}

/// [`timed`], with the CPU seconds (user + system) the command used: on a loaded machine the
/// wall time says as much about the neighbours as about turkform.
pub fn timed_cpu(binary: &Path, dir: &Path, args: &[&str]) -> (f64, u64, f64) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg(binary)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("TURKFORM_TARGET")
        .env_remove("TURKFORM_STATE")
        .output()
        .expect("run turkform under /usr/bin/time");
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "turkform {args:?} failed: {stderr}");
    // The last line is /usr/bin/time's: "user system peak-KB".
    let (cpu, peak_kb) = stderr
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let user: f64 = f.next()?.parse().ok()?;
            let system: f64 = f.next()?.parse().ok()?;
            let peak: u64 = f.next()?.parse().ok()?;
            f.next().is_none().then_some((user + system, peak))
        })
        .next_back()
        .expect("/usr/bin/time prints user and system seconds and the peak RSS in KB");
    (wall, peak_kb, cpu)
}

/// Assignment `a` of generated HIT number `h` (`hit_id`, item `key` of campaign `bench`), as
/// refresh records it: submitted at `submit` after 45 s of work, decided an hour later unless
/// still Submitted, by a worker out of 5,000.
#[allow(clippy::too_many_arguments)]
pub fn bench_assignment(
    h: usize,
    a: usize,
    hit_id: &str,
    key: &str,
    status: turkform_model::AssignmentStatus,
    submit: i64,
    answer_xml: String,
    answers: std::collections::BTreeMap<String, String>,
) -> turkform_model::RecordedAssignment {
    use turkform_model::{AssignmentStatus, DecidedBy, UnixTime};
    turkform_model::RecordedAssignment {
        assignment_id: format!("3BENCHASG{h:019}{a:02}"),
        hit_id: hit_id.to_owned(),
        campaign: "bench".into(),
        item_key: key.to_owned(),
        generation: 1,
        worker_id: format!("ABENCHWORKER{:05}", (h * 3 + a) % 5000),
        status,
        accept_time: Some(UnixTime(submit - 45)),
        submit_time: Some(UnixTime(submit)),
        auto_approval_time: Some(UnixTime(submit + 259_200)),
        approval_time: (status == AssignmentStatus::Approved).then_some(UnixTime(submit + 3600)),
        rejection_time: (status == AssignmentStatus::Rejected).then_some(UnixTime(submit + 3600)),
        answer_xml,
        answers,
        requester_feedback: None,
        decided_by: (status != AssignmentStatus::Submitted).then_some(DecidedBy::Outside),
    }
}
