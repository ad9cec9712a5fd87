//! Team state on PostgreSQL (DESIGN.md section 11): checkouts sharing one state, the advisory
//! lock under SIGKILL, projects in different schemas, `state migrate` both ways, a server
//! connection killed mid-apply, and a password that never leaks. Ground truth is the
//! simulator's HIT list and the server's own tables.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

fn slow_sim(latency_ms: u64) -> Sim {
    Sim::start(turkform_sim::SimConfig {
        latency: Duration::from_millis(latency_ms),
        ..turkform_sim::SimConfig::default()
    })
}

fn assert_one_hit_per_item(sim: &Sim, items: usize) {
    let hits = sim.list_hits();
    let mut annotations: Vec<_> = hits
        .iter()
        .filter_map(|h| h.requester_annotation.clone())
        .collect();
    annotations.sort();
    annotations.dedup();
    assert_eq!(annotations.len(), hits.len(), "a HIT was created twice");
    assert_eq!(hits.len(), items, "exactly one HIT per item");
}

/// Waits until the simulator has received `n` creates (the apply holds its lock by then).
fn wait_for_creates(sim: &Sim, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.calls("CreateHITWithHITType") < n {
        assert!(
            Instant::now() < deadline,
            "the apply never started creating"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn slow_apply(project: &Project, sim: &Sim) -> std::process::Child {
    project
        .command(sim, &["apply", "--auto-approve", "--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apply")
}

fn state_list(project: &Project, sim: &Sim) -> String {
    let out = project.run(sim, &["state", "list"]);
    assert_exit(&out, 0);
    stdout(&out)
}

#[test]
fn two_checkouts_on_one_postgres_state_one_applies_the_other_names_the_holder_or_waits() {
    let sim = slow_sim(40);
    let schema = Arc::new(PgSchema::new("team"));
    let alice = Project::sharing(schema.clone());
    let bob = Project::sharing(schema.clone());
    for checkout in [&alice, &bob] {
        checkout.campaign("shared", 40, &CampaignOptions::default());
    }
    let holder = slow_apply(&alice, &sim);
    wait_for_creates(&sim, 1);

    let refused = bob.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&refused, 1);
    let err = stderr(&refused);
    assert!(err.contains(&format!("pid {}", holder.id())), "{err}");
    assert!(err.contains("`turkform apply`"), "{err}");

    // With --lock-timeout the second checkout waits for the first, then finds nothing to do.
    let waited = bob.run(&sim, &["apply", "--auto-approve", "--lock-timeout=120s"]);
    let first = holder.wait_with_output().unwrap();
    assert_exit(&first, 0);
    assert_exit(&waited, 0);
    assert_one_hit_per_item(&sim, 40);
    assert_eq!(schema.count("SELECT count(*) FROM hits"), 40);
    for checkout in [&alice, &bob] {
        assert_exit(&checkout.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    }
}

#[test]
fn a_sigkilled_holder_of_a_postgres_state_never_blocks_the_next_apply() {
    let sim = slow_sim(40);
    let schema = Arc::new(PgSchema::new("kill"));
    let first = Project::sharing(schema.clone());
    let second = Project::sharing(schema.clone());
    for checkout in [&first, &second] {
        checkout.campaign("k", 30, &CampaignOptions::default());
    }
    let mut holder = slow_apply(&first, &sim);
    wait_for_creates(&sim, 3);
    holder.kill().unwrap();
    holder.wait().unwrap();
    // No force-unlock and no waiting: the server released the dead session's lock.
    let out = second.run(&sim, &["apply", "--auto-approve", "--lock-timeout=0s"]);
    assert_exit(&out, 0);
    assert_one_hit_per_item(&sim, 30);
    assert_exit(&first.run(&sim, &["plan", "--detailed-exitcode"]), 0);
}

#[test]
fn projects_in_different_schemas_never_block_each_other() {
    // Two accounts (two simulators): only the states are shared, on one server.
    let sim = slow_sim(60);
    let other_sim = Sim::plain();
    let one = Project::on(StateBackend::Postgres);
    let two = Project::on(StateBackend::Postgres);
    one.campaign("big", 200, &CampaignOptions::default());
    two.campaign("small", 5, &CampaignOptions::default());
    let mut holder = slow_apply(&one, &sim);
    wait_for_creates(&sim, 1);
    let started = Instant::now();
    let out = two.run(
        &other_sim,
        &["apply", "--auto-approve", "--lock-timeout=0s"],
    );
    assert_exit(&out, 0);
    assert!(
        holder.try_wait().unwrap().is_none(),
        "the other project's apply was still running (and holding its lock) throughout"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(
        two.pg.as_ref().unwrap().count("SELECT count(*) FROM hits"),
        5
    );
}

#[test]
fn state_migrate_sqlite_to_postgres_and_back_keeps_everything_and_plans_nothing() {
    let sim = Sim::plain();
    let mut project = Project::new();
    project.campaign("move", 10, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let listed = state_list(&project, &sim);
    assert_eq!(listed.lines().count(), 10);
    // A plan saved before the move still applies after it (bound to lineage and serial).
    project.campaign("move", 12, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["plan", "--out", "saved.plan"]), 0);

    let schema = PgSchema::new("mig");
    let to_pg = project.run(&sim, &["state", "migrate", "--to", &schema.url()]);
    assert_exit(&to_pg, 0);
    let report = stdout(&to_pg);
    let lineage = report
        .split("lineage ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("the report names the lineage")
        .to_owned();
    assert_eq!(lineage.len(), 32, "{report}");
    assert_eq!(schema.count("SELECT count(*) FROM hits"), 10);

    // A non-empty destination is refused and left alone.
    let again = project.run(&sim, &["state", "migrate", "--to", &schema.url()]);
    assert_exit(&again, 1);
    assert!(
        stderr(&again).contains("already holds a state"),
        "{}",
        stderr(&again)
    );
    assert_eq!(schema.count("SELECT count(*) FROM hits"), 10);

    project.state_url = Some(schema.url());
    assert_eq!(state_list(&project, &sim), listed);
    let applied = project.run(&sim, &["apply", "--auto-approve", "saved.plan"]);
    assert_exit(&applied, 0);
    assert_one_hit_per_item(&sim, 12);
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    let listed = state_list(&project, &sim);

    let back = project.run(&sim, &["state", "migrate", "--to", "state/back.db"]);
    assert_exit(&back, 0);
    assert!(
        stdout(&back).contains(&format!("lineage {lineage}")),
        "{}",
        stdout(&back)
    );
    project.state_url = Some("state/back.db".to_owned());
    assert_eq!(state_list(&project, &sim), listed);
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    // And the copy is a working state: the next change lands in it.
    project.campaign("move", 13, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_one_hit_per_item(&sim, 13);
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
}

#[test]
fn the_server_connection_killed_mid_apply_fails_cleanly_and_the_next_apply_converges() {
    let sim = slow_sim(30);
    let schema = Arc::new(PgSchema::new("term"));
    let mut project = Project::sharing(schema.clone());
    let app = format!("tf_term_{}", rand::random::<u32>());
    project.state_url = Some(schema.url_with(&format!("&application_name={app}")));
    project.campaign("t", 60, &CampaignOptions::default());
    let child = slow_apply(&project, &sim);
    wait_for_creates(&sim, 5);
    let mut admin = schema.admin();
    let killed = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get::<_, i64>(0);
    assert!(killed >= 1, "the apply's sessions were found");
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("PostgreSQL"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let next = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&next, 0);
    assert_one_hit_per_item(&sim, 60);
    assert_eq!(schema.count("SELECT count(*) FROM hits"), 60);
    assert_eq!(
        schema.count("SELECT count(*) FROM intents WHERE outcome IS NULL"),
        0,
        "nothing left pending"
    );
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
}

/// `postgres://user@host/...` with `:password` added to the user.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((user, host)) => format!("{scheme}://{user}:{password}@{host}"),
        None => format!("{scheme}://postgres:{password}@{rest}"),
    }
}

#[test]
fn the_postgres_password_never_appears_in_output_logs_plans_or_either_state() {
    let sim = Sim::plain();
    let secret = format!("Pw{:016x}", rand::random::<u64>());
    let schema = PgSchema::new("pw");
    let mut project = Project::new();
    // The test server trusts loopback logins, so any password is accepted (and must be kept
    // secret all the same).
    project.state_url = Some(with_password(&schema.url(), &secret));
    project.campaign("pw", 4, &CampaignOptions::default());
    let mut outputs = vec![
        project.run(&sim, &["-vv", "apply", "--auto-approve"]),
        project.run(&sim, &["-vv", "plan", "--out", "p.plan"]),
        project.run(&sim, &["state", "list"]),
        project.run(&sim, &["status"]),
        project.run(&sim, &["-vv", "state", "migrate", "--to", "state/copy.db"]),
    ];
    for out in &outputs {
        assert_exit(out, 0);
    }
    assert!(
        stdout(&outputs[4]).contains(&format!("`{}`", schema.url())),
        "the location is shown without the password: {}",
        stdout(&outputs[4])
    );
    // Failures name the location too, still without the password.
    let mut dead = Project::new();
    dead.state_url = Some(with_password(
        &format!(
            "postgres://postgres@127.0.0.1:1/test?schema={}",
            schema.name
        ),
        &secret,
    ));
    dead.campaign("pw", 4, &CampaignOptions::default());
    let unreachable = dead.run(&sim, &["-vv", "apply", "--auto-approve"]);
    assert_exit(&unreachable, 1);
    assert!(
        stderr(&unreachable).contains("127.0.0.1:1"),
        "{}",
        stderr(&unreachable)
    );
    outputs.push(unreachable);
    dead.state_url = Some(format!(
        "postgres://postgres:{secret}@127.0.0.1:5432/test?sslmode=sometimes"
    ));
    let refused = dead.run(&sim, &["plan"]);
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("PostgreSQL state URL"),
        "{}",
        stderr(&refused)
    );
    outputs.push(refused);

    for out in &outputs {
        for text in [stdout(out), stderr(out)] {
            assert!(!text.contains(&secret), "the password leaked:\n{text}");
        }
    }
    for file in walk_files(project.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "the password is in {}",
            file.display()
        );
    }
    let mut admin = schema.admin();
    admin
        .batch_execute(&format!("SET search_path TO \"{}\"", schema.name))
        .unwrap();
    for table in [
        "meta",
        "partitions",
        "hits",
        "hit_types",
        "intents",
        "runs",
        "orphans",
    ] {
        let rows = admin
            .query(&format!("SELECT t::TEXT FROM {table} t"), &[])
            .unwrap();
        for row in rows {
            let text: String = row.get(0);
            assert!(!text.contains(&secret), "the password is in table {table}");
        }
    }
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What `turkform results` (CSV and JSONL) and `turkform status` say about a state: compared
/// byte for byte across the copies `state migrate` makes.
fn results_outputs(project: &Project, sim: &Sim) -> (String, String, String) {
    let csv = project.run(sim, &["results"]);
    assert_exit(&csv, 0);
    let jsonl = project.run(sim, &["results", "--format", "jsonl"]);
    assert_exit(&jsonl, 0);
    let status = project.run(sim, &["status"]);
    assert_exit(&status, 0);
    (stdout(&csv), stdout(&jsonl), stdout(&status))
}

#[test]
fn state_migrate_with_results_sqlite_to_postgres_to_sqlite_keeps_every_table_and_export_byte_for_byte()
 {
    let sim = Sim::plain();
    let mut project = Project::new();
    project.campaign("before", 3, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    // Three workers per HIT submit answers that CSV has to quote; one is approved by hand.
    let done = sim.work(&serde_json::json!({"answers": {"answer": "é, \"quoted\"\nsecond line"}}));
    let submitted: Vec<String> = done["assignments"]
        .as_array()
        .expect("the simulator lists the assignments it made")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(submitted.len(), 9, "{done}");
    let client = sim.sdk();
    let by_hand = submitted[0].clone();
    sim.block_on(async {
        client
            .approve_assignment()
            .assignment_id(&by_hand)
            .send()
            .await
            .expect("ApproveAssignment")
    });
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let recorded = project.run(&sim, &["results", "--format", "jsonl"]);
    assert_exit(&recorded, 0);
    let approved = stdout(&recorded)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["assignment_id"] == *by_hand)
        .expect("refresh recorded the approved assignment");
    let approved_item = approved["item"].as_str().unwrap().to_owned();
    // A bonus paid on the approved assignment (the bonuses table): no copy may pay it again.
    project.write(
        "campaigns/data/bonuses.csv",
        &format!(
            "AssignmentId,WorkerId,Amount,Reason\n{by_hand},{},0.25,Great work\n",
            approved["worker_id"].as_str().unwrap()
        ),
    );
    let toml = std::fs::read_to_string(project.path().join("campaigns/before.toml")).unwrap();
    let toml = format!("{toml}\n[bonuses]\nsource = \"data/bonuses.csv\"\n");
    project.write("campaigns/before.toml", &toml);
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.calls("SendBonus"), 1);
    // A rename (the renames table) and an item forgotten for good (forgotten_hits), then its
    // next generation posted: every table the copies must carry holds rows.
    assert_exit(&project.run(&sim, &["state", "mv", "before", "after"]), 0);
    project.remove("campaigns/before.toml");
    project.write("campaigns/after.toml", &toml);
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    // Forget an item other than the one whose assignment was approved by hand (the
    // simulator hands out assignments in no fixed order).
    let forgotten = ["item-00000", "item-00001", "item-00002"]
        .into_iter()
        .find(|i| *i != approved_item)
        .unwrap();
    assert_exit(
        &project.run(&sim, &["state", "rm", &format!("after/{forgotten}")]),
        0,
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.list_hits().len(), 4, "the forgotten item got a new HIT");
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    let on_sqlite = results_outputs(&project, &sim);
    // The forgotten item's HIT and its three assignments are no longer the state's.
    let exported: Vec<serde_json::Value> = on_sqlite
        .1
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 6, "{}", on_sqlite.1);
    for row in &exported {
        assert!(submitted.iter().any(|id| row["assignment_id"] == **id));
        assert_eq!(row["campaign"], "after");
        assert_eq!(row["answers"]["answer"], "é, \"quoted\"\nsecond line");
    }
    assert!(
        exported
            .iter()
            .any(|r| r["assignment_id"] == *by_hand && r["decided_by"] == "outside"),
        "{}",
        on_sqlite.1
    );
    assert!(
        on_sqlite.2.contains("account balance"),
        "refresh recorded the balance: {}",
        on_sqlite.2
    );

    let schema = PgSchema::new("res");
    assert_exit(
        &project.run(&sim, &["state", "migrate", "--to", &schema.url()]),
        0,
    );
    assert_eq!(schema.count("SELECT count(*) FROM assignments"), 9);
    assert_eq!(schema.count("SELECT count(*) FROM forgotten_hits"), 1);
    assert_eq!(schema.count("SELECT count(*) FROM renames"), 1);
    assert_eq!(
        schema.count("SELECT count(*) FROM bonuses WHERE paid_at IS NOT NULL"),
        1
    );
    assert_eq!(
        schema.count("SELECT count(*) FROM hits WHERE input_row IS NOT NULL"),
        3
    );
    assert_eq!(
        schema.count("SELECT count(*) FROM partitions WHERE balance_cents IS NOT NULL"),
        1
    );
    project.state_url = Some(schema.url());
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    let on_postgres = results_outputs(&project, &sim);
    assert_eq!(on_postgres.0, on_sqlite.0, "CSV differs on PostgreSQL");
    assert_eq!(on_postgres.1, on_sqlite.1, "JSONL differs on PostgreSQL");
    assert_eq!(on_postgres.2, on_sqlite.2, "status differs on PostgreSQL");
    // A rename recorded on the copy gets an id after the copied ones.
    assert_exit(
        &project.run(&sim, &["state", "mv", "after/item-00000", "after/zero"]),
        0,
    );
    assert_exit(
        &project.run(&sim, &["state", "mv", "after/zero", "after/item-00000"]),
        0,
    );
    assert_eq!(schema.count("SELECT count(*) FROM renames"), 3);
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    let renamed_back = results_outputs(&project, &sim);
    assert_eq!(renamed_back.0, on_sqlite.0);

    assert_exit(
        &project.run(&sim, &["state", "migrate", "--to", "state/back.db"]),
        0,
    );
    project.state_url = Some("state/back.db".to_owned());
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
    let back_on_sqlite = results_outputs(&project, &sim);
    assert_eq!(back_on_sqlite.0, on_sqlite.0, "CSV differs back on SQLite");
    assert_eq!(
        back_on_sqlite.1, on_sqlite.1,
        "JSONL differs back on SQLite"
    );
    assert_eq!(
        back_on_sqlite.2, on_sqlite.2,
        "status differs back on SQLite"
    );
    // Nothing was created or paid twice along the way.
    assert_eq!(sim.list_hits().len(), 4);
    assert_eq!(sim.calls("CreateHITWithHITType"), 4);
    assert_eq!(sim.calls("SendBonus"), 1, "the bonus was paid once");
}
