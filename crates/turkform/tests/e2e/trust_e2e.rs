//! Issue 10 ("Trust"): what turkform knows about MTurk stays true. A plan never writes the
//! state; drift is never final; a saved plan refreshes before it acts; `state rm` and `state mv`
//! do what they say; projects sharing an account keep to their own HITs. Ground truth is the
//! simulator's (ListHITs through the SDK, balances, `/_sim/stats`).

use std::collections::HashMap;
use std::path::Path;

use turkform_model::{Drift, HitStatus, Money, Target};
use turkform_state::{Batch, OpenMode, StateStore};

use crate::common::{CampaignOptions, Project, Sim, StateBackend, assert_exit, stderr};

fn serial(project: &Project) -> u64 {
    StateStore::open(&project.state_path(), Target::Sim, OpenMode::ReadOnly)
        .unwrap()
        .serial()
        .unwrap()
}

fn balance(sim: &Sim) -> Money {
    let client = sim.sdk();
    sim.block_on(async move {
        client
            .get_account_balance()
            .send()
            .await
            .expect("GetAccountBalance")
            .available_balance
            .expect("a balance")
            .parse()
            .expect("a balance in dollars")
    })
}

/// HITs on the simulator, by requester annotation.
fn annotations(sim: &Sim) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for h in sim.list_hits() {
        *out.entry(h.requester_annotation.unwrap_or_default())
            .or_default() += 1;
    }
    out
}

/// Copies the state file while nothing runs (SQLite checkpoints its WAL on the last close).
fn copy_state(project: &Project, to: &Path) {
    assert!(
        !project.path().join("state/turkform.db-wal").exists()
            || std::fs::metadata(project.path().join("state/turkform.db-wal"))
                .unwrap()
                .len()
                == 0,
        "the state has an unmerged WAL"
    );
    std::fs::copy(project.state_path(), to).unwrap();
}

fn applied(sim: &Sim, project: &Project) {
    let out = project.run(sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);
}

#[test]
fn plan_against_the_wrong_endpoint_writes_nothing() {
    let right = Sim::plain();
    let wrong = Sim::plain();
    let project = Project::new();
    project.campaign("week", 3, &CampaignOptions::default());
    applied(&right, &project);
    let before = serial(&project);

    // A plan against an empty simulator (a wrong profile on real MTurk) refuses: none of the
    // recorded HITs is there, and it records nothing.
    let out = project.run(&wrong, &["plan"]);
    assert_exit(&out, 1);
    insta::assert_snapshot!("plan_against_the_wrong_endpoint", stderr(&out));
    assert!(
        stderr(&out).contains("none of the 3 HITs state records"),
        "{}",
        stderr(&out)
    );
    assert_eq!(serial(&project), before, "plan wrote the state");
    // So does a refresh, which would otherwise record every HIT as deleted.
    let out = project.run(&wrong, &["refresh"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("another endpoint, account or profile"));
    assert_eq!(serial(&project), before, "refresh wrote the state");
    assert_eq!(wrong.mutating_calls(), 0);
    assert!(wrong.list_hits().is_empty());

    // Against the right endpoint everything is as it was: 3 open HITs, nothing to do.
    let out = project.run(&right, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);
    let hits = right.list_hits();
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter()
            .all(|h| h.hit_status == Some(aws_sdk_mturk::types::HitStatus::Assignable))
    );
}

#[test]
fn plan_never_bumps_the_serial_so_a_saved_plan_survives_a_second_plan() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("labels", 2, &CampaignOptions::default());
    applied(&sim, &project);
    project.campaign("labels", 5, &CampaignOptions::default());
    let before = serial(&project);

    let out = project.run(&sim, &["plan", "--out", "p.json"]);
    assert_exit(&out, 0);
    let out = project.run(&sim, &["plan"]);
    assert_exit(&out, 0);
    assert_eq!(serial(&project), before, "plan wrote the state");

    // No terminal and no --auto-approve: a saved plan was reviewed when it was made.
    let out = project.run(&sim, &["apply", "p.json"]);
    assert_exit(&out, 0);
    assert_eq!(sim.list_hits().len(), 5);
    assert_eq!(sim.calls("CreateHITWithHITType"), 5);
}

#[test]
fn a_saved_plan_applied_over_a_restored_state_creates_no_duplicate() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("restore", 20, &CampaignOptions::default());
    // A state that exists (as after any earlier run), copied as a backup would.
    let out = project.run(&sim, &["refresh"]);
    assert_exit(&out, 0);
    let out = project.run(&sim, &["plan", "--out", "p.json"]);
    assert_exit(&out, 0);
    let backup = project.path().join("copy.db");
    copy_state(&project, &backup);

    applied(&sim, &project);
    assert_eq!(sim.list_hits().len(), 20);
    let spent = balance(&sim);
    // Past the token window: MTurk would no longer deduplicate a resent create.
    sim.advance_clock(25 * 3600);
    std::fs::copy(&backup, project.state_path()).unwrap();

    let out = project.run(&sim, &["apply", "p.json", "--auto-approve"]);
    assert_exit(&out, 1);
    insta::assert_snapshot!("saved_plan_over_a_restored_state", stderr(&out));
    assert!(
        stderr(&out).contains("no longer fits what MTurk shows"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sim.list_hits().len(), 20, "duplicates were created");
    assert_eq!(balance(&sim), spent, "money was spent");

    // A fresh apply adopts the 20 HITs the restored state lost, and pays nothing; after it
    // nothing is left to do.
    applied(&sim, &project);
    let out = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);
    let by_annotation = annotations(&sim);
    assert_eq!(by_annotation.len(), 20);
    assert!(by_annotation.values().all(|&n| n == 1));
    assert_eq!(balance(&sim), spent);
    assert_eq!(sim.calls("CreateHITWithHITType"), 20);
}

#[test]
fn a_hit_recorded_deleted_that_mturk_still_lists_is_restored_by_refresh() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("undo", 3, &CampaignOptions::default());
    applied(&sim, &project);
    // What an older turkform recorded after a plan against the wrong endpoint.
    {
        let mut store =
            StateStore::open(&project.state_path(), Target::Sim, OpenMode::ReadWrite).unwrap();
        let mut hits = store.load().unwrap().hits;
        for h in &mut hits {
            h.status = HitStatus::Disposed;
            h.assignments_available = 0;
            h.drift = vec![Drift::Deleted];
        }
        store
            .commit(&Batch {
                upsert_hits: hits,
                ..Batch::default()
            })
            .unwrap();
    }
    let out = project.run(&sim, &["refresh"]);
    assert_exit(&out, 0);
    let out = project.run(&sim, &["status"]);
    assert_exit(&out, 0);
    let out = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);
    let store = StateStore::open(&project.state_path(), Target::Sim, OpenMode::ReadOnly).unwrap();
    let hits = store.load().unwrap().hits;
    assert_eq!(hits.len(), 3);
    for h in &hits {
        assert_eq!(h.status, HitStatus::Assignable, "{h:?}");
        assert!(h.drift.is_empty(), "{h:?}");
    }
    assert_eq!(sim.list_hits().len(), 3);
    assert_eq!(sim.calls("CreateHITWithHITType"), 3);
}

/// `id,text` rows for `keys`, with `edited` keys given another text.
fn csv(keys: &[usize], edited: &[usize]) -> String {
    let mut out = String::from("id,text\n");
    for &i in keys {
        let text = if edited.contains(&i) {
            format!("Edited text {i}")
        } else {
            format!("Text number {i}")
        };
        out.push_str(&format!("item-{i:05},{text}\n"));
    }
    out
}

/// Kills `apply` while creates are in flight, until some HITs exist and some intents are
/// pending; returns how many are.
fn kill_apply_with_creates_pending(sim: &Sim, project: &Project, items: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut child = project
            .command(sim, &["apply", "--auto-approve", "--concurrency", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn apply");
        let before = sim.calls("CreateHITWithHITType");
        while sim.calls("CreateHITWithHITType") < before + 2 && std::time::Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        let _ = child.kill();
        let _ = child.wait();
        let pending = StateStore::open(&project.state_path(), Target::Sim, OpenMode::ReadOnly)
            .ok()
            .and_then(|s| s.pending_intents().ok())
            .map_or(0, |p| p.len());
        if pending > 0 && sim.list_hits().len() < items {
            return pending;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "could not kill the apply with creates pending"
        );
    }
}

#[test]
fn a_saved_plan_made_while_creates_were_pending_never_duplicates_them() {
    let sim = Sim::start(turkform_sim::SimConfig {
        latency: std::time::Duration::from_millis(40),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::new();
    project.campaign("pending", 10, &CampaignOptions::default());
    assert!(kill_apply_with_creates_pending(&sim, &project, 10) > 0);
    let out = project.run(&sim, &["plan", "--out", "p.json"]);
    assert_exit(&out, 0);
    // Recovered first, then compared: applied only if what recovery found leaves it right.
    let out = project.run(&sim, &["apply", "p.json"]);
    let code = out.status.code();
    assert!(
        code == Some(0) || (code == Some(1) && stderr(&out).contains("no longer fits")),
        "{}",
        stderr(&out)
    );
    applied(&sim, &project);
    let by_annotation = annotations(&sim);
    assert_eq!(by_annotation.len(), 10, "{by_annotation:?}");
    assert!(by_annotation.values().all(|&n| n == 1), "{by_annotation:?}");
    assert_eq!(sim.list_hits().len(), 10);
}

#[test]
fn pending_creates_of_removed_or_edited_items_are_never_resent_with_stale_content() {
    let sim = Sim::start(turkform_sim::SimConfig {
        latency: std::time::Duration::from_millis(40),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::new();
    project.campaign("crash", 10, &CampaignOptions::default());
    let pending = kill_apply_with_creates_pending(&sim, &project, 10);
    assert!(pending > 0);
    let created_before: std::collections::HashSet<String> = sim
        .list_hits()
        .into_iter()
        .filter_map(|h| h.requester_annotation)
        .collect();
    let spent_before_recovery = balance(&sim);

    // While it was down: items 0-4 removed, items 5-7 edited.
    let kept = [5, 6, 7, 8, 9];
    let edited = [5, 6, 7];
    project.write("campaigns/data/crash.csv", &csv(&kept, &edited));
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);

    // $0.10 x 3 assignments + 20 % fee.
    let per_hit = Money::from_cents(36);
    let mut expected_new = 0;
    let by_annotation = annotations(&sim);
    let annotation =
        |i: usize, generation: u32| format!("turkform:1:crash:{generation}:k:item-{i:05}");
    for i in 0..10 {
        let existed = created_before.contains(&annotation(i, 1));
        let gen1 = by_annotation.get(&annotation(i, 1)).copied().unwrap_or(0);
        let gen2 = by_annotation.get(&annotation(i, 2)).copied().unwrap_or(0);
        if !kept.contains(&i) {
            // A removed item's HIT exists only if it got there before the crash.
            assert_eq!(gen1, usize::from(existed), "removed item {i}");
            assert_eq!(gen2, 0, "removed item {i}");
        } else if edited.contains(&i) && existed {
            // Created before the crash with the old text: replaced by one new generation.
            assert_eq!((gen1, gen2), (1, 1), "edited item {i}");
            expected_new += 1;
        } else {
            assert_eq!((gen1, gen2), (1, 0), "item {i}");
            if !existed {
                expected_new += 1;
            }
        }
    }
    assert_eq!(
        spent_before_recovery - balance(&sim),
        per_hit.checked_mul(expected_new).unwrap(),
        "money spent after the crash for {expected_new} new HITs"
    );
    // Every HIT posted after the crash shows the current text.
    for h in sim.list_hits() {
        let a = h.requester_annotation.clone().unwrap_or_default();
        if created_before.contains(&a) {
            continue;
        }
        let question = h.question.clone().unwrap_or_default();
        let key: usize = a.rsplit("item-").next().unwrap().parse().unwrap();
        if edited.contains(&key) {
            assert!(
                question.contains(&format!("Edited text {key}")),
                "{a}: {question}"
            );
        }
    }
}

fn state_rm_then_plan_posts_a_new_generation(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("forget", 2, &CampaignOptions::default());
    applied(&sim, &project);

    let out = project.run(&sim, &["state", "rm", "forget/item-00000"]);
    assert_exit(&out, 0);
    // The plan posts the item afresh instead of adopting the forgotten HIT by its annotation.
    let out = project.run(&sim, &["plan", "--json"]);
    assert_exit(&out, 0);
    let plan: serde_json::Value = serde_json::from_str(&crate::common::stdout(&out)).unwrap();
    assert_eq!(plan["summary"]["adopt"], 0, "{plan}");
    assert_eq!(plan["summary"]["create"], 1, "{plan}");
    applied(&sim, &project);
    let by_annotation = annotations(&sim);
    assert_eq!(
        by_annotation.get("turkform:1:forget:1:k:item-00000"),
        Some(&1)
    );
    assert_eq!(
        by_annotation.get("turkform:1:forget:2:k:item-00000"),
        Some(&1)
    );
    assert_eq!(
        by_annotation.get("turkform:1:forget:1:k:item-00001"),
        Some(&1)
    );
    assert_eq!(sim.list_hits().len(), 3);
    // And it stays so: the forgotten HIT is never adopted (nor expired) later.
    let out = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);
    assert_eq!(sim.calls("UpdateExpirationForHIT"), 0);
}

fn state_mv_then_renaming_the_campaign_reposts_nothing(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("before", 3, &CampaignOptions::default());
    applied(&sim, &project);

    let out = project.run(&sim, &["state", "mv", "before", "after"]);
    assert_exit(&out, 0);
    // The same campaign file under the new name.
    let toml = std::fs::read_to_string(project.path().join("campaigns/before.toml")).unwrap();
    project.remove("campaigns/before.toml");
    project.write("campaigns/after.toml", &toml);
    let out = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);
    applied(&sim, &project);
    assert_eq!(sim.list_hits().len(), 3);
    assert_eq!(sim.calls("CreateHITWithHITType"), 3);
    assert_eq!(sim.calls("UpdateExpirationForHIT"), 0);

    let out = project.run(&sim, &["state", "mv", "nosuch", "other"]);
    assert_exit(&out, 1);
    let out = project.run(
        &sim,
        &["state", "mv", "after/item-00001", "after/item-00000"],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("already has HITs"),
        "{}",
        stderr(&out)
    );

    // An item renamed in state and in the data file: nothing re-posted either.
    let out = project.run(&sim, &["state", "mv", "after/item-00001", "after/renamed"]);
    assert_exit(&out, 0);
    let data = std::fs::read_to_string(project.path().join("campaigns/data/before.csv")).unwrap();
    project.write(
        "campaigns/data/before.csv",
        &data.replace("item-00001,", "renamed,"),
    );
    let out = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);
    applied(&sim, &project);
    assert_eq!(sim.list_hits().len(), 3);
    assert_eq!(sim.calls("CreateHITWithHITType"), 3);
    assert_eq!(sim.calls("UpdateExpirationForHIT"), 0);
}

fn a_hit_annotated_with_a_name_state_mv_changed_is_adopted_under_the_new_name(
    backend: StateBackend,
) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("before", 3, &CampaignOptions::default());
    applied(&sim, &project);
    // A create whose outcome state never recorded: on MTurk, annotated with the old name.
    let template = sim.list_hits().remove(0);
    let client = sim.sdk();
    sim.block_on(async {
        client
            .create_hit()
            .title(template.title.clone().unwrap())
            .description("lost")
            .reward("0.10")
            .assignment_duration_in_seconds(600)
            .lifetime_in_seconds(7 * 86400)
            .max_assignments(3)
            .question(template.question.clone().unwrap())
            .requester_annotation("turkform:1:before:1:k:item-00003")
            .send()
            .await
            .expect("CreateHIT")
    });
    let out = project.run(&sim, &["state", "mv", "before", "after"]);
    assert_exit(&out, 0);
    let toml = std::fs::read_to_string(project.path().join("campaigns/before.toml")).unwrap();
    project.remove("campaigns/before.toml");
    project.write("campaigns/after.toml", &toml);
    project.write("campaigns/data/before.csv", &csv(&[0, 1, 2, 3], &[]));

    let out = project.run(&sim, &["plan", "--json"]);
    assert_exit(&out, 0);
    let plan: serde_json::Value = serde_json::from_str(&crate::common::stdout(&out)).unwrap();
    assert_eq!(plan["summary"]["adopt"], 1, "{plan}");
    assert_eq!(plan["summary"]["create"], 0, "{plan}");
    assert_eq!(plan["summary"]["expire"], 0, "{plan}");
    applied(&sim, &project);
    assert_eq!(sim.list_hits().len(), 4);
    assert_eq!(sim.calls("CreateHITWithHITType"), 3);
    assert_eq!(sim.calls("UpdateExpirationForHIT"), 0);
    let location = project
        .state_url
        .clone()
        .map_or_else(|| project.state_path(), std::path::PathBuf::from);
    let store = StateStore::open(&location, Target::Sim, OpenMode::ReadOnly).unwrap();
    let hits = store.load().unwrap().hits;
    assert_eq!(hits.len(), 4);
    assert!(hits.iter().all(|h| h.campaign == "after"), "{hits:?}");
}

/// A project with an identity, on the simulator.
fn project_named(id: &str) -> Project {
    let project = Project::new();
    project.write(
        "turkform.toml",
        &format!("target = \"sim\"\nproject = \"{id}\"\n"),
    );
    project
}

#[test]
fn two_projects_on_one_account_never_adopt_or_expire_each_others_hits() {
    let sim = Sim::plain();
    let a = project_named("alpha");
    let b = project_named("beta");
    for p in [&a, &b] {
        p.campaign("shared", 2, &CampaignOptions::default());
        p.campaign("other", 1, &CampaignOptions::default());
    }
    applied(&sim, &a);
    applied(&sim, &b);
    assert_eq!(sim.list_hits().len(), 6, "B took A's HITs for its own");
    let of = |project: &str| -> Vec<String> {
        let mut ids: Vec<String> = sim
            .list_hits()
            .into_iter()
            .filter(|h| {
                h.requester_annotation
                    .as_deref()
                    .is_some_and(|a| a.starts_with(&format!("turkform:2:{project}:")))
            })
            .filter_map(|h| h.hit_id)
            .collect();
        ids.sort();
        ids
    };
    let alpha = of("alpha");
    assert_eq!(alpha.len(), 3);
    assert_eq!(of("beta").len(), 3);

    // B drops `shared`: only B's two HITs are expired.
    b.remove("campaigns/shared.toml");
    applied(&sim, &b);
    assert_eq!(sim.calls("UpdateExpirationForHIT"), 2);
    let now = std::time::SystemTime::now();
    for h in sim.list_hits() {
        let open = h
            .expiration
            .is_some_and(|e| std::time::SystemTime::try_from(e).is_ok_and(|e| e > now));
        let mine = alpha.contains(h.hit_id.as_ref().unwrap());
        let b_shared = h
            .requester_annotation
            .as_deref()
            .is_some_and(|a| a.starts_with("turkform:2:beta:shared:"));
        assert_eq!(open, !b_shared, "{h:?}");
        if mine {
            assert!(open);
        }
    }
    // A sees nothing to do: no drift, no adoption of B's HITs.
    let out = a.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);

    // A loses its state: one apply re-adopts exactly its own three HITs.
    std::fs::remove_file(a.state_path()).unwrap();
    let out = a.run(&sim, &["plan", "--json"]);
    assert_exit(&out, 0);
    let plan: serde_json::Value = serde_json::from_str(&crate::common::stdout(&out)).unwrap();
    assert_eq!(plan["summary"]["adopt"], 3, "{plan}");
    assert_eq!(plan["summary"]["create"], 0, "{plan}");
    applied(&sim, &a);
    let store = StateStore::open(&a.state_path(), Target::Sim, OpenMode::ReadOnly).unwrap();
    let mut recorded: Vec<String> = store
        .load()
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.hit_id)
        .collect();
    recorded.sort();
    assert_eq!(recorded, alpha);
    assert_eq!(sim.calls("CreateHITWithHITType"), 6);
    assert_eq!(sim.calls("UpdateExpirationForHIT"), 2);
}

#[test]
fn a_lost_state_is_recovered_in_one_apply_and_edits_made_meanwhile_reach_mturk() {
    let sim = Sim::plain();
    let project = project_named("lost");
    project.campaign("kept", 5, &CampaignOptions::default());
    applied(&sim, &project);
    std::fs::remove_file(project.state_path()).unwrap();
    // Edited while the state was gone.
    project.write("campaigns/data/kept.csv", &csv(&[0, 1, 2, 3, 4], &[1, 3]));

    applied(&sim, &project);
    assert_eq!(
        sim.calls("CreateHITWithHITType"),
        5,
        "the adoption created HITs"
    );
    // The first plan after the adoption is complete: the two edits, nothing else.
    let out = project.run(&sim, &["plan", "--json"]);
    assert_exit(&out, 0);
    let plan: serde_json::Value = serde_json::from_str(&crate::common::stdout(&out)).unwrap();
    let s = &plan["summary"];
    assert_eq!(
        (
            s["replace"].as_u64(),
            s["retype"].as_u64(),
            s["create_hit_types"].as_u64(),
            s["create"].as_u64()
        ),
        (Some(2), Some(0), Some(0), Some(0)),
        "{plan}"
    );
    applied(&sim, &project);
    let out = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&out, 0);
    let by_annotation = annotations(&sim);
    for i in [1, 3] {
        assert_eq!(
            by_annotation.get(&format!("turkform:2:lost:kept:2:k:item-{i:05}")),
            Some(&1)
        );
    }
    let edited: Vec<_> = sim
        .list_hits()
        .into_iter()
        .filter(|h| {
            h.requester_annotation
                .as_deref()
                .is_some_and(|a| a.contains(":kept:2:"))
        })
        .collect();
    assert_eq!(edited.len(), 2);
    for h in edited {
        assert!(h.question.unwrap_or_default().contains("Edited text"));
    }
    assert_eq!(sim.calls("UpdateHITTypeOfHIT"), 0);
}

#[test]
fn turkform_init_gives_each_project_its_own_identity() {
    let sim = Sim::plain();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            // A bare directory, as a new user starts from.
            let project = Project {
                dir,
                state_url: None,
                pg: None,
            };
            let out = project.run(&sim, &["init"]);
            assert_exit(&out, 0);
            let settings = turkform_spec::load_settings(project.path()).unwrap();
            settings.project.expect("init wrote a project identity")
        })
        .collect();
    assert!(
        ids.iter().all(|id| turkform_spec::valid_project_id(id)),
        "{ids:?}"
    );
    assert_ne!(ids[0], ids[1]);
}

// `state rm` and `state mv` write the forgotten_hits and renames tables: both backends.
crate::on_both_backends!(
    state_rm_then_plan_posts_a_new_generation,
    state_mv_then_renaming_the_campaign_reposts_nothing,
    a_hit_annotated_with_a_name_state_mv_changed_is_adopted_under_the_new_name,
);

/// The state URL with a password in it (trust auth ignores it), or the SQLite file: given on
/// the command line, so the run log would see it if it recorded argv verbatim.
fn state_arg_with_a_secret(project: &Project) -> String {
    match &project.state_url {
        None => "state/turkform.db".to_owned(),
        Some(url) => {
            let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
            let (user, host) = rest.split_once('@').expect("a user in the test URL");
            let user = user.split(':').next().unwrap_or(user);
            format!("{scheme}://{user}:run-log-s3cret@{host}")
        }
    }
}

fn the_run_log_names_each_apply_and_refresh_and_how_it_ended(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("logged", 3, &CampaignOptions::default());
    let state = state_arg_with_a_secret(&project);
    let out = project.run(&sim, &["--state", &state, "apply", "--auto-approve"]);
    assert_exit(&out, 0);
    assert_eq!(sim.list_hits().len(), 3);
    let out = project.run(&sim, &["refresh"]);
    assert_exit(&out, 0);
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);
    // A refused apply is logged too: one more item over a budget already spent.
    project.campaign(
        "logged",
        4,
        &CampaignOptions {
            max_spend: Some("0.01"),
            ..CampaignOptions::default()
        },
    );
    let refused = project.run(&sim, &["apply", "--auto-approve"]);
    assert_ne!(refused.status.code(), Some(0), "{}", stderr(&refused));
    assert_eq!(sim.list_hits().len(), 3, "the refused apply posted nothing");

    let out = project.run(&sim, &["state", "runs", "--json"]);
    assert_exit(&out, 0);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&crate::common::stdout(&out)).unwrap();
    let seen: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap_or("<none>").to_owned(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Newest first.
    assert_eq!(seen[0].0, "turkform apply --auto-approve");
    assert!(seen[0].1.starts_with("error: "), "{seen:?}");
    assert_eq!(
        seen[1],
        (
            "turkform apply --auto-approve".to_owned(),
            "no changes".to_owned()
        )
    );
    assert_eq!(seen[2].0, "turkform refresh");
    assert!(seen[2].1.starts_with("ok: 3 listed"), "{seen:?}");
    // Actions, not HITs: the HIT type and the 3 HITs.
    assert_eq!(seen[3].1, "ok: 4 done");
    for r in &runs {
        assert!(r["finished_at"].as_i64().unwrap() >= r["started_at"].as_i64().unwrap());
        assert!(r["pid"].as_u64().is_some());
    }
    let first = &seen[3].0;
    assert!(!first.contains("run-log-s3cret"), "{first}");
    if project.state_url.is_some() {
        assert_eq!(
            first,
            "turkform --state postgres://<redacted> apply --auto-approve"
        );
    } else {
        assert_eq!(
            first,
            "turkform --state state/turkform.db apply --auto-approve"
        );
    }
    let text = project.run(&sim, &["state", "runs", "--limit", "1"]);
    assert_exit(&text, 0);
    assert!(
        crate::common::stdout(&text).contains("turkform apply --auto-approve"),
        "{}",
        crate::common::stdout(&text)
    );
    assert_eq!(
        crate::common::stdout(&text).matches('#').count(),
        1,
        "{}",
        crate::common::stdout(&text)
    );
}

crate::on_both_backends!(the_run_log_names_each_apply_and_refresh_and_how_it_ended);
