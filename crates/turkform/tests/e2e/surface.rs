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
