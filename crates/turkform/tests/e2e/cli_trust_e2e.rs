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

/// An endpoint that is not MTurk and never answers properly, on 127.0.0.1.
enum Silent {
    /// Nothing listens: connection refused.
    ClosedPort,
    /// Accepts the connection, reads, and never writes a byte.
    Hung,
    /// Answers a promising status line one byte a second, forever.
    Trickle,
}

/// Starts `kind` and returns its URL; its threads live until the test process ends.
fn silent_endpoint(kind: Silent) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    match kind {
        Silent::ClosedPort => drop(listener),
        Silent::Hung | Silent::Trickle => {
            let trickle = matches!(kind, Silent::Trickle);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        let _ = stream.read(&mut buf);
                        if !trickle {
                            // Hold the connection open without answering.
                            let _ = stream.read(&mut buf);
                            return;
                        }
                        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100000\r\n\r\n";
                        for b in head.iter().chain(std::iter::repeat(&b' ')) {
                            if stream.write_all(&[*b]).is_err() {
                                return;
                            }
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    });
                }
            });
        }
    }
    url
}

#[test]
fn unanswered_endpoints_fail_within_ten_seconds_naming_endpoint_and_cause() {
    let cases = [
        (Silent::ClosedPort, "connection refused"),
        (
            Silent::Hung,
            "no complete answer within the attempt timeout",
        ),
        (
            Silent::Trickle,
            "no complete answer within the attempt timeout",
        ),
    ];
    let sim = Sim::plain();
    std::thread::scope(|scope| {
        for (kind, cause) in cases {
            let url = silent_endpoint(kind);
            let sim = &sim;
            for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
                let url = url.clone();
                scope.spawn(move || {
                    let project = Project::new();
                    project.campaign("patient", 2, &CampaignOptions::default());
                    let started = Instant::now();
                    let out = project
                        .command(sim, args)
                        .env("TURKFORM_ENDPOINT_URL", &url)
                        .output()
                        .unwrap();
                    let elapsed = started.elapsed();
                    assert_exit(&out, 1);
                    let err = stderr(&out);
                    assert!(
                        elapsed < Duration::from_secs(10),
                        "{args:?} against {url} took {elapsed:?}: {err}"
                    );
                    assert!(
                        err.contains(&format!("MTurk at {url} is not answering"))
                            && err.contains(cause),
                        "{args:?} against {url}: {err}"
                    );
                    // Progress said it was retrying, and nothing pretends MTurk refused.
                    assert!(err.contains("MTurk not answering at"), "{err}");
                    assert!(err.contains("retrying (1)"), "{err}");
                    assert!(!err.contains("refused the request"), "{err}");
                    // The lock was released and nothing is left half-done.
                    let list = project.run(sim, &["state", "list"]);
                    assert_exit(&list, 0);
                    assert_eq!(stdout(&list), "");
                });
            }
        }
    });
    // None of it reached the real simulator.
    assert_eq!(sim.mutating_calls(), 0);
}

#[test]
fn missing_credentials_fail_at_once_saying_how_to_provide_them() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("signed", 2, &CampaignOptions::default());
    let nowhere = project.path().join("no-aws-files");
    let started = Instant::now();
    let out = project
        .command(&sim, &["--target", "sandbox", "plan"])
        .env("HOME", &nowhere)
        .env("AWS_CONFIG_FILE", nowhere.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", nowhere.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}: {err}");
    assert!(
        err.contains(&format!(
            "no AWS credentials to sign requests to MTurk at {}",
            sim.url
        )),
        "{err}"
    );
    assert!(
        err.contains("AWS_ACCESS_KEY_ID") && err.contains("AWS_PROFILE"),
        "{err}"
    );
    assert!(
        !err.contains("refused the request") && !err.contains("dispatch failure"),
        "{err}"
    );
    // Nothing unsigned was sent.
    let requests: u64 = sim.stats()["requests"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(requests, 0);
}

#[test]
fn verbose_logs_connected_to_mturk_only_after_an_answer() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("chatty", 1, &CampaignOptions::default());
    let closed = silent_endpoint(Silent::ClosedPort);
    let out = project
        .command(&sim, &["-v", "plan"])
        .env("TURKFORM_ENDPOINT_URL", &closed)
        .output()
        .unwrap();
    assert_exit(&out, 1);
    assert!(
        !stderr(&out).contains("connected to MTurk"),
        "{}",
        stderr(&out)
    );
    let out = project.run(&sim, &["-v", "plan"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("connected to MTurk"),
        "{}",
        stderr(&out)
    );
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_and_records_the_calls_in_flight_then_exits_1() {
    crate::safety_e2e::signal_mid_apply_finishes_and_records_the_calls_in_flight(
        "-TERM", "SIGTERM",
    );
}

#[test]
fn closed_stdout_ends_quietly_with_exit_0() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("piped", 30, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    project.campaign("more", 30, &CampaignOptions::default());
    for args in [
        &["state", "list"][..],
        &["plan", "--json"][..],
        &["plan"][..],
        &["status"][..],
        &["validate"][..],
    ] {
        let mut child = project
            .command(&sim, args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first line: `| head -0`, the earliest `head -1` can be.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_exit(&out, 0);
        let err = stderr(&out);
        assert!(
            !err.contains("Broken pipe") && !err.contains("error") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // Nothing was changed by the plans whose output nobody read.
    assert_eq!(sim.list_hits().len(), 30);
}

#[test]
fn concurrency_out_of_range_is_rejected_alike_from_flag_env_and_file() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("paced", 2, &CampaignOptions::default());
    let check = |out: std::process::Output, what: &str| {
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("out of range") && err.contains("1 to 256"),
            "{what}: {err}"
        );
    };
    for n in ["0", "1000"] {
        check(
            project.run(&sim, &["apply", "--auto-approve", "--concurrency", n]),
            n,
        );
        check(
            project
                .command(&sim, &["apply", "--auto-approve"])
                .env("TURKFORM_CONCURRENCY", n)
                .output()
                .unwrap(),
            n,
        );
    }
    project.write(
        "turkform.toml",
        "target = \"sim\"\n\n[apply]\nconcurrency = 1000\n",
    );
    check(
        project.run(&sim, &["apply", "--auto-approve"]),
        "turkform.toml",
    );
    assert_eq!(sim.mutating_calls(), 0);
    project.write("turkform.toml", "target = \"sim\"\n");
    assert_exit(
        &project.run(&sim, &["apply", "--auto-approve", "--concurrency", "256"]),
        0,
    );
    assert_eq!(sim.list_hits().len(), 2);
}

#[test]
fn plan_warnings_go_to_stderr_not_stdout() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("lowered", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    project.campaign(
        "lowered",
        2,
        &CampaignOptions {
            assignments: 2,
            ..CampaignOptions::default()
        },
    );
    let out = project.run(&sim, &["plan"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("warning:"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("warning:"), "{}", stdout(&out));
    // Nothing was lowered on MTurk.
    assert!(
        sim.list_hits()
            .iter()
            .all(|h| h.max_assignments() == Some(3))
    );
}

#[test]
fn state_list_of_an_unknown_campaign_exits_1_and_lists_as_json() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("listed", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let out = project.run(&sim, &["state", "list", "nosuch"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("state has no campaign `nosuch`") && stderr(&out).contains("listed"),
        "{}",
        stderr(&out)
    );
    let out = project.run(&sim, &["state", "list", "--json"]);
    assert_exit(&out, 0);
    let records: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut in_state: Vec<String> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hit_id"].as_str().unwrap().to_owned())
        .collect();
    let mut on_mturk: Vec<String> = sim
        .list_hits()
        .iter()
        .map(|h| h.hit_id().unwrap().to_owned())
        .collect();
    in_state.sort();
    on_mturk.sort();
    assert_eq!(in_state, on_mturk);
    assert_eq!(in_state.len(), 2);
}

#[test]
fn status_outside_a_project_says_no_turkform_toml_here() {
    let sim = Sim::plain();
    let project = Project::new();
    std::fs::remove_file(project.path().join("turkform.toml")).unwrap();
    let out = project.run(&sim, &["status"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("no turkform.toml here"), "{err}");
    let dir = project.path().canonicalize().unwrap();
    assert!(err.contains(&dir.display().to_string()), "{err}");
}

#[test]
fn adopted_items_are_neither_unchanged_nor_a_new_cost() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("found", 3, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    // The state is lost; the HITs (and the money they committed) are still on MTurk.
    for f in ["turkform.db", "turkform.db-wal", "turkform.db-shm"] {
        let _ = std::fs::remove_file(project.path().join("state").join(f));
    }
    let out = project.run(&sim, &["plan", "--json"]);
    assert_exit(&out, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan["summary"]["adopt"], 3, "{plan}");
    assert_eq!(plan["summary"]["create"], 0);
    assert_eq!(
        plan["summary"]["cost_delta"], 0,
        "adopted HITs were paid long ago"
    );
    let campaign = &plan["campaigns"][0];
    assert_eq!(campaign["unchanged"], 0, "{campaign}");
    assert!(campaign["committed"].as_i64().unwrap() > 0, "{campaign}");
    let human = project.run(&sim, &["plan"]);
    assert!(stdout(&human).contains("Cost: $0.00"), "{}", stdout(&human));
    assert!(!stdout(&human).contains("unchanged"), "{}", stdout(&human));
    assert_eq!(sim.list_hits().len(), 3);
    assert_eq!(sim.calls("CreateHITWithHITType"), 3);
}

#[test]
fn embedded_simulator_and_sim_serve_cannot_share_a_database() {
    use std::io::BufRead;
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("shared", 2, &CampaignOptions::default());
    std::fs::create_dir_all(project.path().join("state")).unwrap();
    let mut server = project
        .command(
            &sim,
            &[
                "sim",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--db",
                "state/sim.db",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // It prints its URL once it serves (and holds the database).
    let mut url = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // target = "sim" without an endpoint starts the embedded simulator on state/sim.db.
    let out = project
        .command(&sim, &["apply", "--auto-approve"])
        .env_remove("TURKFORM_ENDPOINT_URL")
        .output()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let _ = server.wait();
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("simulator database `state/sim.db` is in use by another simulator")
            && err.contains("sim serve"),
        "{err}"
    );
    // Once the server is gone the embedded simulator works on the same database.
    let out = project
        .command(&sim, &["apply", "--auto-approve"])
        .env_remove("TURKFORM_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_exit(&out, 0);
}
