//! What users see without a network: help, the repository's own campaigns and examples,
//! validation failures and broken state files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn turkform(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_turkform"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("TURKFORM_TARGET")
        .env_remove("TURKFORM_ENDPOINT_URL")
        .output()
        .unwrap()
}

#[test]
fn help_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["plan", "--help"],
        vec!["apply", "--help"],
        vec!["sim", "serve", "--help"],
        vec!["state", "--help"],
    ] {
        let out = turkform(dir.path(), &args);
        assert_exit(&out, 0);
        insta::assert_snapshot!(
            format!("help_{}", args.join("_").replace("--", "")),
            stdout(&out)
        );
    }
}

#[test]
fn the_repository_campaigns_and_examples_validate_and_render() {
    let root = repo_root();
    let out = turkform(&root, &["validate"]);
    assert_exit(&out, 0);
    let out = turkform(&root, &["--target", "sim", "plan", "--refresh=false"]);
    assert_exit(&out, 0);
    // Every example folder is a valid campaigns folder too.
    let out = Command::new(env!("CARGO_BIN_EXE_turkform"))
        .current_dir(&root)
        .args(["validate"])
        .env("TURKFORM_CAMPAIGNS", "examples")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_exit(&out, 0);
}

#[test]
fn an_invalid_campaign_exits_1_naming_file_line_and_column() {
    let project = Project::new();
    project.campaign("broken", 2, &CampaignOptions::default());
    let toml = std::fs::read_to_string(project.path().join("campaigns/broken.toml")).unwrap();
    project.write(
        "campaigns/broken.toml",
        &toml
            .replace("reward = \"0.10\"", "reward = \"0.101\"")
            .replace("title", "titel"),
    );
    let out = turkform(project.path(), &["validate"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("campaigns/broken.toml:"), "{err}");
    assert!(err.contains("titel"), "{err}");
    assert!(err.contains("0.101"), "{err}");
}

#[test]
fn broken_state_files_are_refused_and_left_untouched() {
    let project = Project::new();
    project.campaign("s", 1, &CampaignOptions::default());
    std::fs::create_dir_all(project.path().join("state")).unwrap();
    let cases: [(&str, Vec<u8>); 2] = [
        (
            "corrupt",
            b"this is not a database at all, just text".repeat(200),
        ),
        ("foreign", foreign_sqlite()),
    ];
    for (what, bytes) in cases {
        std::fs::write(project.state_path(), &bytes).unwrap();
        for args in [
            ["status"].as_slice(),
            ["plan", "--refresh=false"].as_slice(),
            ["state", "list"].as_slice(),
        ] {
            let out = turkform(project.path(), args);
            assert_exit(&out, 1);
            assert!(
                stderr(&out).contains("turkform.db"),
                "{what}: {}",
                stderr(&out)
            );
        }
        assert_eq!(
            std::fs::read(project.state_path()).unwrap(),
            bytes,
            "{what} file changed"
        );
    }
}

/// A valid SQLite database that some other program made.
fn foreign_sqlite() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('create table songs(title text)'); c.commit()",
            path.to_str().unwrap()
        ))
        .status()
        .expect("python3 makes a foreign SQLite file");
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// Makes a real state file by applying one campaign to a simulator.
fn project_with_state() -> (Sim, Project) {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("s", 1, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    (sim, project)
}

#[test]
fn a_state_file_from_a_newer_turkform_is_refused_and_left_untouched() {
    let (sim, project) = project_with_state();
    let db = project.state_path();
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('pragma user_version = 99'); c.commit(); c.execute('pragma wal_checkpoint(TRUNCATE)'); c.close()",
            db.to_str().unwrap()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let before = std::fs::read(&db).unwrap();
    for args in [
        ["status"].as_slice(),
        ["plan"].as_slice(),
        ["apply", "--auto-approve"].as_slice(),
    ] {
        let out = project.run(&sim, args);
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("newer") && err.contains("turkform.db"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the newer file was changed"
    );
}

#[test]
fn a_read_only_state_directory_is_refused_with_exit_1() {
    // `refresh` writes the state (`plan` never does, so it runs fine over a read-only state).
    let (sim, project) = project_with_state();
    let state_dir = project.path().join("state");
    let before = std::fs::read(project.state_path()).unwrap();
    // Root ignores permission bits, so run turkform as `nobody` over a tree it may only read.
    let chmod = |mode: &str, path: &Path| {
        assert!(
            Command::new("chmod")
                .args(["-R", mode])
                .arg(path)
                .status()
                .unwrap()
                .success()
        );
    };
    chmod("a+rX", project.path());
    chmod("a-w", &state_dir);
    let out = project
        .command(&sim, &["refresh"])
        .env("HOME", "/tmp")
        .env("TMPDIR", "/tmp")
        .output_as_nobody();
    chmod("u+w", &state_dir);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("cannot write the state at `state/turkform.db`"),
        "{err}"
    );
    assert_eq!(std::fs::read(project.state_path()).unwrap(), before);
}

trait AsNobody {
    fn output_as_nobody(&mut self) -> std::process::Output;
}

impl AsNobody for Command {
    /// Runs the same program, arguments, directory and environment under `setpriv` as uid 65534.
    fn output_as_nobody(&mut self) -> std::process::Output {
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(self.get_program())
            .args(self.get_args());
        if let Some(dir) = self.get_current_dir() {
            wrapped.current_dir(dir);
        }
        for (key, value) in self.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        wrapped.output().expect("run setpriv")
    }
}

#[test]
fn render_prints_question_xml_that_parses() {
    let root = repo_root();
    for (campaign, item, root_element) in [
        ("street-objects", Some("st-0002"), "HTMLQuestion"),
        ("product-survey", None, "QuestionForm"),
    ] {
        let mut args = vec!["render", campaign];
        args.extend(item);
        let out = turkform(&root, &args);
        assert_exit(&out, 0);
        let xml = stdout(&out);
        let check = Command::new("python3")
            .arg("-c")
            .arg("import sys, xml.dom.minidom as m; d = m.parseString(sys.stdin.buffer.read()); print(d.documentElement.tagName, d.documentElement.namespaceURI)")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(xml.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(check.status.success(), "{campaign}: not XML:\n{xml}");
        let parsed = String::from_utf8_lossy(&check.stdout);
        assert!(parsed.starts_with(root_element), "{parsed}");
        assert!(
            parsed.contains("http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/"),
            "{parsed}"
        );
        if root_element == "HTMLQuestion" {
            assert!(
                xml.contains("<![CDATA[") && xml.contains("<FrameHeight>0</FrameHeight>"),
                "{xml}"
            );
            assert!(
                xml.contains("streets/0002.jpg"),
                "renders the named item: {xml}"
            );
        }
    }
    let out = turkform(&root, &["render", "street-objects", "no-such-item"]);
    assert_exit(&out, 1);
}
