//! Issue 10 "Trust", the CLI side: what turkform must refuse (an empty campaigns folder, a
//! campaign file it cannot read), how fast and how clearly it fails when MTurk is not there, and
//! how it ends on SIGTERM or a closed stdout. Ground truth is the simulator's own view.

use std::time::{Duration, Instant};

use crate::common::*;

/// HITs the simulator shows as still open (Assignable).
fn open_hits(sim: &Sim) -> usize {
    sim.list_hits()
        .iter()
        .filter(|h| h.hit_status().map(|s| s.as_str()) == Some("Assignable"))
        .count()
}

#[test]
fn empty_campaigns_folder_is_an_error_not_an_expiry() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("kept", 3, &CampaignOptions::default());
    project.campaign("dropped", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(open_hits(&sim), 5);

    // Removing some campaign files still plans their expiry.
    project.remove("campaigns/dropped.toml");
    let plan = project.run(&sim, &["plan", "--json"]);
    assert_exit(&plan, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    assert_eq!(plan["summary"]["expire"], 2, "{plan}");

    // Removing all of them is a mistake, never a plan to expire everything.
    project.remove("campaigns/kept.toml");
    for args in [
        &["validate"][..],
        &["plan"][..],
        &["apply", "--auto-approve"][..],
    ] {
        let out = project.run(&sim, args);
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("the campaigns folder has no campaign file") && err.contains("hint:"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(sim.calls("UpdateExpirationForHIT"), 0);
    assert_eq!(open_hits(&sim), 5);
}

#[cfg(unix)]
#[test]
fn dangling_or_looping_campaign_symlink_is_an_error_not_a_removal() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("probe", 2, &CampaignOptions::default());
    project.campaign("other", 1, &CampaignOptions::default());
    // The campaign file lives elsewhere and is linked in, as a shared checkout would.
    let share = project.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    let text = std::fs::read_to_string(project.path().join("campaigns/probe.toml")).unwrap();
    let text = text
        .replace("templates/", "../campaigns/templates/")
        .replace("data/", "../campaigns/data/");
    std::fs::write(share.join("probe.toml"), text).unwrap();
    project.remove("campaigns/probe.toml");
    std::os::unix::fs::symlink(
        "../share/probe.toml",
        project.path().join("campaigns/probe.toml"),
    )
    .unwrap();
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(open_hits(&sim), 3);

    let refuses = |what: &str| {
        for args in [
            &["validate"][..],
            &["plan"][..],
            &["apply", "--auto-approve"][..],
        ] {
            let out = project.run(&sim, args);
            assert_exit(&out, 1);
            let err = stderr(&out);
            assert!(
                err.contains("campaigns/probe.toml") && err.contains(what),
                "{args:?}: {err}"
            );
        }
        assert_eq!(sim.calls("UpdateExpirationForHIT"), 0);
        assert_eq!(open_hits(&sim), 3);
    };

    // Dangling: the shared folder moved away.
    std::fs::rename(&share, project.path().join("share.moved")).unwrap();
    refuses("symlink to nothing");

    // A loop: probe.toml -> loop.toml -> probe.toml.
    let campaigns = project.path().join("campaigns");
    std::fs::remove_file(campaigns.join("probe.toml")).unwrap();
    std::os::unix::fs::symlink("loop.toml", campaigns.join("probe.toml")).unwrap();
    std::os::unix::fs::symlink("probe.toml", campaigns.join("loop.toml")).unwrap();
    refuses("cannot follow the campaign file's symlink");
    std::fs::remove_file(campaigns.join("loop.toml")).unwrap();
    std::fs::remove_file(campaigns.join("probe.toml")).unwrap();

    // Unreadable (skipped as root, who reads everything).
    let path = campaigns.join("probe.toml");
    std::fs::write(
        &path,
        std::fs::read(project.path().join("share.moved/probe.toml")).unwrap(),
    )
    .unwrap();
    std::fs::rename(project.path().join("share.moved"), &share).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_err() {
        refuses("cannot read the file");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plan = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&plan, 0);
}

#[cfg(unix)]
#[test]
fn fifo_as_data_source_is_an_error_not_a_hang() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("piped", 2, &CampaignOptions::default());
    let data = project.path().join("campaigns/data/piped.csv");
    std::fs::remove_file(&data).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&data)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = project
        .command(&sim, &["validate"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("validate hangs on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("cannot read data file `campaigns/data/piped.csv`")
            && err.contains("not a regular file"),
        "{err}"
    );
}
