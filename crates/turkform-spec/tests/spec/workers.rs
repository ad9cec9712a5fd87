//! Workers and notifications as code: the blocks file of `turkform.toml`, a qualification type's
//! grants file and a campaign's `[notifications]`, loaded into the desired state, and every
//! problem in them reported at once at its file and line.

use std::path::Path;

use turkform_model::{NotificationTransport, Target};
use turkform_spec::LoadOptions;

use crate::support::NOW;

const TASK: &str = "<p>Photo {{ item.id }}</p>\n";
const ITEMS: &str = "id\na1\na2\n";

fn campaign(extra: &str) -> String {
    format!(
        r#"[hit_type]
title = "Label a photo"
description = "Look at one photo and say what it shows."
reward = "0.10"
assignment_duration = "10m"

[layout]
html = "task.html"

[items]
source = "items.csv"
key = "id"
lifetime = "1d"

[qualification_types.trained]
description = "Passed the training round"
grants = "trained.csv"
{extra}"#
    )
}

/// A project in a temporary folder: `files` are (path, contents) under it; `turkform.toml`
/// is read through `load_settings` as the binary reads it.
fn load(
    files: &[(&str, &str)],
) -> (
    tempfile::TempDir,
    Result<turkform_model::DesiredState, turkform_spec::Diagnostics>,
) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let settings = turkform_spec::load_settings(dir.path()).unwrap();
    let opts = LoadOptions {
        target: Target::Sim,
        workers: settings.workers,
        campaigns_dir: dir.path().join("campaigns"),
        only: Vec::new(),
        now: NOW,
    };
    let result = turkform_spec::load_project(&opts);
    (dir, result)
}

#[test]
fn blocks_grants_and_notifications_load_into_the_desired_state() {
    let (dir, result) = load(&[
        (
            "turkform.toml",
            "target = \"sim\"\n[workers]\nblocks = \"workers/blocked.csv\"\n",
        ),
        (
            "workers/blocked.csv",
            "WorkerId,Reason\nASPAM1, copies answers \n,\nABOT2,bot\n",
        ),
        (
            "campaigns/street.toml",
            &campaign(
                "\n[notifications]\ndestination = \"arn:aws:sqs:us-east-1:123456789012:turk-events\"\ntransport = \"SQS\"\nevents = [\"AssignmentSubmitted\", \"AssignmentReturned\", \"AssignmentSubmitted\"]\n",
            ),
        ),
        ("campaigns/task.html", TASK),
        ("campaigns/items.csv", ITEMS),
        (
            "campaigns/trained.csv",
            "WorkerId,Value\nATRAINED1,1\nATRAINED2,80\n",
        ),
    ]);
    let state = result.unwrap_or_else(|d| panic!("{d}"));
    let w = &state.workers;
    let blocks: Vec<(&str, &str, usize)> = w
        .blocks
        .iter()
        .map(|b| (b.worker_id.as_str(), b.reason.as_str(), b.line))
        .collect();
    assert_eq!(
        blocks,
        vec![("ASPAM1", "copies answers", 2), ("ABOT2", "bot", 4)]
    );
    assert_eq!(
        w.blocks_file.as_deref(),
        Some(dir.path().join("workers/blocked.csv").as_path())
    );
    assert_eq!(w.grants.len(), 1);
    assert_eq!(w.grants[0].qualification, "trained");
    let grants: Vec<(&str, i32)> = w.grants[0]
        .rows
        .iter()
        .map(|g| (g.worker_id.as_str(), g.value))
        .collect();
    assert_eq!(grants, vec![("ATRAINED1", 1), ("ATRAINED2", 80)]);
    let n = state.campaigns[0].review.notifications.as_ref().unwrap();
    assert_eq!(n.transport, NotificationTransport::Sqs);
    // The ARN becomes the queue URL MTurk takes; events are sorted, without repeats.
    assert_eq!(
        n.destination,
        "https://sqs.us-east-1.amazonaws.com/123456789012/turk-events"
    );
    assert_eq!(n.events, vec!["AssignmentReturned", "AssignmentSubmitted"]);

    // The blocks file is an input: editing it changes the digest a saved plan is bound to.
    let digest = state.inputs_digest.clone();
    std::fs::write(
        dir.path().join("workers/blocked.csv"),
        "WorkerId,Reason\nASPAM1,x\n",
    )
    .unwrap();
    let settings = turkform_spec::load_settings(dir.path()).unwrap();
    let again = turkform_spec::load_project(&LoadOptions {
        target: Target::Sim,
        workers: settings.workers,
        campaigns_dir: dir.path().join("campaigns"),
        only: Vec::new(),
        now: NOW,
    })
    .unwrap();
    assert_ne!(again.inputs_digest, digest);
}

#[test]
fn every_problem_in_the_workers_files_and_notifications_is_reported_at_once() {
    let (dir, result) = load(&[
        (
            "turkform.toml",
            "[workers]\nblocks = \"workers/blocked.csv\"\n",
        ),
        (
            "workers/blocked.csv",
            "WorkerId,Reason\nASPAM1,spam\nASPAM1,again\nnot-a-worker,x\nABOT2,\n",
        ),
        (
            "campaigns/street.toml",
            &campaign(
                "\n[qualification_types.senior]\ndescription = \"Senior\"\ngrants = \"senior.csv\"\n\n[notifications]\ndestination = \"arn:aws:sqs:us-east-1:12345:q\"\ntransport = \"SQS\"\nevents = [\"AssignmentSubmited\"]\n",
            ),
        ),
        ("campaigns/task.html", TASK),
        ("campaigns/items.csv", ITEMS),
        ("campaigns/trained.csv", "WorkerId,Valu\nATRAINED1,1\n"),
        (
            "campaigns/senior.csv",
            "WorkerId,Value\nAS1,high\nAS2,3\nAS2,4\n",
        ),
    ]);
    let d = result.expect_err("the project has problems");
    let rel = |p: &Path| {
        p.strip_prefix(dir.path())
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let got: Vec<(String, usize, String)> =
        d.0.iter()
            .map(|x| (rel(&x.file), x.line, x.message.clone()))
            .collect();
    let expect = [
        ("campaigns/street.toml", 24, "is not an SQS destination"),
        (
            "campaigns/street.toml",
            26,
            "unknown event `AssignmentSubmited`",
        ),
        ("campaigns/senior.csv", 2, "`high` is not an integer value"),
        (
            "campaigns/senior.csv",
            4,
            "worker `AS2` has two rows: lines 3 and 4",
        ),
        ("campaigns/trained.csv", 1, "unknown column `Valu`"),
        (
            "workers/blocked.csv",
            3,
            "worker `ASPAM1` has two rows: lines 2 and 3",
        ),
        ("workers/blocked.csv", 4, "`not-a-worker` is not a WorkerId"),
        (
            "workers/blocked.csv",
            5,
            "a block row has an empty `Reason`",
        ),
    ];
    for (file, line, message) in expect {
        assert!(
            got.iter()
                .any(|(f, l, m)| f == file && *l == line && m.contains(message)),
            "no `{message}` at {file}:{line} in\n{d}"
        );
    }
    assert_eq!(got.len(), expect.len(), "{d}");
    let hint =
        d.0.iter()
            .find(|x| x.message.contains("AssignmentSubmited"))
            .and_then(|x| x.hint.clone());
    assert_eq!(hint.as_deref(), Some("did you mean `AssignmentSubmitted`?"));
}

#[test]
fn a_missing_blocks_file_is_named_where_turkform_toml_declares_it() {
    let (dir, result) = load(&[
        (
            "turkform.toml",
            "target = \"sim\"\n\n[workers]\nblocks = \"workers/nope.csv\"\n",
        ),
        ("campaigns/street.toml", &campaign("")),
        ("campaigns/task.html", TASK),
        ("campaigns/items.csv", ITEMS),
        ("campaigns/trained.csv", "WorkerId,Value\n"),
    ]);
    let d = result.expect_err("the blocks file is missing");
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!(d.0[0].file, dir.path().join("turkform.toml"));
    assert_eq!((d.0[0].line, d.0[0].column), (4, 10));
    assert!(d.0[0].message.contains("cannot read"), "{d}");
}

#[test]
fn a_row_after_a_blank_line_is_named_by_its_physical_line() {
    // The csv reader skips blank lines without counting them: a diagnostic for the row after
    // one used to name the line before it.
    let (_dir, result) = load(&[
        (
            "turkform.toml",
            "[workers]\nblocks = \"workers/blocked.csv\"\n",
        ),
        (
            "workers/blocked.csv",
            "WorkerId,Reason\nASPAM1,spam\n\n\r\nABAD,\n\"AQ\",\"two\nlines\"\nAQ,x\n",
        ),
        ("campaigns/street.toml", &campaign("")),
        ("campaigns/task.html", TASK),
        ("campaigns/items.csv", ITEMS),
        ("campaigns/trained.csv", "WorkerId,Value\n"),
    ]);
    let d = result.expect_err("two bad rows");
    let lines: Vec<(usize, &str)> = d.0.iter().map(|x| (x.line, x.message.as_str())).collect();
    assert_eq!(
        lines,
        vec![
            (5, "a block row has an empty `Reason`"),
            (8, "worker `AQ` has two rows: lines 6 and 8"),
        ],
        "{d}"
    );
}
