//! Transcripts of what users see: exit code, stdout and stderr of the everyday commands,
//! snapshotted with what changes from run to run (ids, hashes, times, ports, paths) redacted.
//! A change in wording, a stray line on the wrong stream or a new exit code shows up here.

use std::process::Output;

use crate::common::*;

fn transcript(args: &[&str], out: &Output) -> String {
    format!(
        "$ turkform {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status
            .code()
            .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
        stdout(out),
        stderr(out)
    )
}

/// Snapshots a transcript with the volatile values redacted.
fn assert_transcript(name: &str, project: &Project, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        &regex_escape(&project.path().display().to_string()),
        "[PROJECT]",
    );
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[sha256]");
    settings.add_filter(r"\b[0-9a-f]{12,40}\b", "[hex]");
    settings.add_filter(r"\b[A-Z0-9]{30}\b", "[ID]");
    settings.add_filter(
        r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:?\d\d| UTC)?",
        "[TIME]",
    );
    settings.add_filter(r"\b1[6-9]\d{8}\b", "[EPOCH]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.add_filter(r"\b\d+(\.\d+)?\s?(ms|s)\b", "[DURATION]");
    settings.add_filter(r"pid \d+", "pid [PID]");
    settings.add_filter(r"\b\d+/s\b", "[RATE]/s");
    settings.add_filter(r"serial \d+", "serial [N]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn run(project: &Project, sim: &Sim, args: &[&str]) -> String {
    transcript(args, &project.run(sim, args))
}

#[test]
fn apply_status_refresh_and_state_as_users_see_them() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("labels", 3, &CampaignOptions::default());

    let apply = run(&project, &sim, &["apply", "--auto-approve"]);
    assert_transcript("apply", &project, &apply);
    assert_eq!(
        sim.list_hits().len(),
        3,
        "the transcript is of a real apply"
    );

    assert_transcript("status", &project, &run(&project, &sim, &["status"]));
    assert_transcript("refresh", &project, &run(&project, &sim, &["refresh"]));
    assert_transcript(
        "state_list",
        &project,
        &run(&project, &sim, &["state", "list"]),
    );
    assert_transcript(
        "state_show",
        &project,
        &run(&project, &sim, &["state", "show", "labels/item-00001"]),
    );
}

#[test]
fn a_failing_validate_as_users_see_it() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("broken", 2, &CampaignOptions::default());
    let toml = std::fs::read_to_string(project.path().join("campaigns/broken.toml")).unwrap();
    project.write(
        "campaigns/broken.toml",
        &toml
            .replace("reward = \"0.10\"", "reward = \"0.101\"")
            .replace("title", "titel"),
    );
    let out = project.run(&sim, &["validate"]);
    assert_exit(&out, 1);
    assert_transcript(
        "validate_failing",
        &project,
        &transcript(&["validate"], &out),
    );
}
