//! Team state on PostgreSQL (DESIGN.md section 11): checkouts sharing one state, the advisory
//! lock under SIGKILL, projects in different schemas, `state migrate` both ways, a server
//! connection killed mid-apply, and a password that never leaks. Ground truth is the
//! simulator's HIT list and the server's own tables.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::pg_cluster::{ClusterTls, PgCluster, self_signed_certificate};
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
    // The server frees a dead holder's lock by itself: the hint never sends the user to
    // force-unlock, and names the holder's session for the stuck case.
    assert!(!err.contains("force-unlock"), "{err}");
    assert!(err.contains("SELECT pg_terminate_backend("), "{err}");

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
    assert!(
        err.contains("lost the connection to the PostgreSQL state at")
            || err.contains("the apply lock on the PostgreSQL state at"),
        "{err}"
    );
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

/// Waits for a child, killing it and failing when it outlives `limit`: a run that hangs is the
/// bug under test, not a reason for the test to hang.
fn wait_or_kill(child: std::process::Child, limit: Duration, what: &str) -> std::process::Output {
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(out) => out.expect("wait for turkform"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{what} was still running after {limit:?}");
        }
    }
}

/// The item key of each HIT the simulator lists, by HIT id.
fn sim_items(sim: &Sim) -> std::collections::BTreeMap<String, String> {
    sim.list_hits()
        .into_iter()
        .map(|h| {
            let annotation =
                turkform_model::Annotation::parse(h.requester_annotation().unwrap_or_default())
                    .expect("a turkform annotation");
            let turkform_model::AnnotatedKey::Plain(key) = annotation.key else {
                panic!("short keys are annotated plainly");
            };
            (h.hit_id.expect("HITId"), key)
        })
        .collect()
}

fn texts(client: &mut postgres::Client, sql: &str) -> std::collections::BTreeSet<String> {
    client
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

#[test]
fn the_server_restarted_mid_apply_fails_the_apply_cleanly_and_the_next_apply_converges_without_a_duplicate()
 {
    const ITEMS: usize = 200;
    // Its own cluster: the shared server is never restarted under the other tests.
    let cluster = PgCluster::start(ClusterTls::Off);
    let schema = "restart";
    let sim = slow_sim(50);
    let mut project = Project::new();
    project.state_url = Some(cluster.url(schema, ""));
    project.campaign("r", ITEMS, &CampaignOptions::default());
    // About 2.5 s of creates, four in flight: the restart lands with calls in the air whose
    // intents are committed and whose outcomes are not.
    let child = project
        .command(&sim, &["apply", "--auto-approve", "--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apply");
    wait_for_creates(&sim, 20);
    cluster.restart();
    let out = wait_or_kill(
        child,
        Duration::from_secs(120),
        "the apply after the restart",
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    // Both of its sessions ended: whichever the apply noticed first is named.
    let url = cluster.url(schema, "");
    assert!(
        err.contains(&format!(
            "lost the connection to the PostgreSQL state at `{url}`"
        )) || err.contains(&format!(
            "the apply lock on the PostgreSQL state at `{url}` was lost"
        )),
        "the error names the state backend: {err}"
    );
    assert!(err.contains("hint: run the same command again"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Nothing lost: every HIT on MTurk is recorded, or its create is still pending in the
    // journal (the next run asks MTurk with the same token before creating anything).
    let on_mturk = sim_items(&sim);
    assert!(
        on_mturk.len() < ITEMS,
        "the restart landed mid-apply ({} HITs already)",
        on_mturk.len()
    );
    let mut admin = cluster.admin();
    admin
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .unwrap();
    let recorded = texts(&mut admin, "SELECT hit_id FROM hits");
    let pending = texts(
        &mut admin,
        "SELECT item_key FROM intents WHERE kind = 'create_hit' AND outcome IS NULL",
    );
    for (hit_id, item) in &on_mturk {
        assert!(
            recorded.contains(hit_id) || pending.contains(item),
            "HIT {hit_id} ({item}) is neither recorded nor pending"
        );
    }
    for hit_id in &recorded {
        assert!(
            on_mturk.contains_key(hit_id),
            "recorded {hit_id} is not on MTurk"
        );
    }

    let next = project
        .command(&sim, &["apply", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apply");
    let next = wait_or_kill(next, Duration::from_secs(120), "the next apply");
    assert_exit(&next, 0);
    assert_one_hit_per_item(&sim, ITEMS);
    let on_mturk = sim_items(&sim);
    let recorded = texts(&mut admin, "SELECT hit_id FROM hits");
    assert_eq!(
        recorded,
        on_mturk.keys().cloned().collect(),
        "the state records exactly the HITs MTurk has"
    );
    assert_eq!(
        cluster.count(schema, "SELECT count(*) FROM intents WHERE outcome IS NULL"),
        0,
        "nothing left pending"
    );
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
}

/// `turkform ARGS` on `project`, failing the test if it runs for more than a minute (a TLS
/// negotiation that never ends is one of the failures under test).
fn run_bounded(
    project: &Project,
    sim: &Sim,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = project.command(sim, args);
    cmd.env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = cmd.spawn().expect("spawn turkform");
    wait_or_kill(
        child,
        Duration::from_secs(60),
        &format!("turkform {args:?}"),
    )
}

#[test]
fn a_postgres_state_with_sslmode_require_works_end_to_end_on_a_tls_server() {
    // The cluster rejects TCP logins without TLS: whatever works below was encrypted.
    let cluster = PgCluster::start(ClusterTls::Required);
    let sim = Sim::plain();
    let mut project = Project::new();
    project.campaign("tls", 6, &CampaignOptions::default());

    // First show the server really refuses an unencrypted session.
    project.state_url = Some(cluster.url("tls", "&sslmode=disable"));
    let refused = run_bounded(&project, &sim, &["plan"], &[]);
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("no encryption"),
        "{}",
        stderr(&refused)
    );

    project.state_url = Some(cluster.url("tls", "&sslmode=require"));
    let plan = run_bounded(&project, &sim, &["plan", "--detailed-exitcode"], &[]);
    assert_exit(&plan, 2);
    assert_exit(
        &run_bounded(&project, &sim, &["apply", "--auto-approve"], &[]),
        0,
    );
    assert_one_hit_per_item(&sim, 6);
    assert_eq!(cluster.count("tls", "SELECT count(*) FROM hits"), 6);
    assert_exit(
        &run_bounded(&project, &sim, &["plan", "--detailed-exitcode"], &[]),
        0,
    );
    // `prefer`, the default, encrypts too when the server offers TLS.
    project.state_url = Some(cluster.url("tls", ""));
    assert_exit(
        &run_bounded(&project, &sim, &["plan", "--detailed-exitcode"], &[]),
        0,
    );

    // verify-full checks the chain and the host name: a self-signed certificate is refused
    // until it is trusted (OpenSSL's SSL_CERT_FILE), and then the session works.
    project.state_url = Some(cluster.url("tls", "&sslmode=verify-full"));
    let untrusted = run_bounded(&project, &sim, &["plan"], &[]);
    assert_exit(&untrusted, 1);
    let err = stderr(&untrusted);
    assert!(err.contains("cannot use the PostgreSQL state at"), "{err}");
    assert!(err.contains("certificate verify failed"), "{err}");
    let ca = cluster.ca_file();
    let ca = ca.to_str().unwrap();
    assert_exit(
        &run_bounded(
            &project,
            &sim,
            &["plan", "--detailed-exitcode"],
            &[("SSL_CERT_FILE", ca)],
        ),
        0,
    );
    // The certificate names 127.0.0.1 and localhost; another address of the same server
    // (it listens on 127.0.0.2 too) fails verify-full, as in libpq.
    let mut by_other_name = Project::new();
    by_other_name.campaign("tls", 6, &CampaignOptions::default());
    by_other_name.state_url = Some(
        cluster
            .url("tls", "&sslmode=verify-full")
            .replace("127.0.0.1", "127.0.0.2"),
    );
    let mismatch = run_bounded(&by_other_name, &sim, &["plan"], &[("SSL_CERT_FILE", ca)]);
    assert_exit(&mismatch, 1);
    let err = stderr(&mismatch);
    assert!(err.contains("cannot use the PostgreSQL state at"), "{err}");
    assert!(
        err.contains("certificate verify failed") && err.contains("mismatch"),
        "{err}"
    );
    // verify-ca checks the chain only, as in libpq: that address is fine there.
    by_other_name.state_url = Some(
        cluster
            .url("tls", "&sslmode=verify-ca")
            .replace("127.0.0.1", "127.0.0.2"),
    );
    assert_exit(
        &run_bounded(
            &by_other_name,
            &sim,
            &["plan", "--detailed-exitcode"],
            &[("SSL_CERT_FILE", ca)],
        ),
        0,
    );

    // sslrootcert names the only roots trusted, as in libpq: the server's own certificate
    // passes verify-full without SSL_CERT_FILE; another one fails, even for `require`.
    project.state_url = Some(cluster.url("tls", &format!("&sslmode=verify-full&sslrootcert={ca}")));
    assert_exit(
        &run_bounded(&project, &sim, &["plan", "--detailed-exitcode"], &[]),
        0,
    );
    let other = project.path().join("other-ca.crt");
    self_signed_certificate(&other, &project.path().join("other-ca.key"));
    for mode in ["require", "verify-ca", "verify-full"] {
        project.state_url = Some(cluster.url(
            "tls",
            &format!("&sslmode={mode}&sslrootcert={}", other.display()),
        ));
        let wrong = run_bounded(&project, &sim, &["plan"], &[("SSL_CERT_FILE", ca)]);
        assert_exit(&wrong, 1);
        assert!(
            stderr(&wrong).contains("certificate verify failed"),
            "{mode}: {}",
            stderr(&wrong)
        );
    }
    project.state_url =
        Some(cluster.url("tls", "&sslmode=require&sslrootcert=/nonexistent/ca.pem"));
    let missing = run_bounded(&project, &sim, &["plan"], &[]);
    assert_exit(&missing, 1);
    assert!(
        stderr(&missing).contains("cannot read sslrootcert `/nonexistent/ca.pem`"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(
        sim.calls("CreateHITWithHITType"),
        6,
        "nothing was created twice"
    );
}

#[test]
fn sslmode_require_on_a_server_without_tls_fails_at_once_naming_the_state() {
    let cluster = PgCluster::start(ClusterTls::Off);
    let sim = Sim::plain();
    let mut project = Project::new();
    project.campaign("plain", 3, &CampaignOptions::default());
    project.state_url = Some(cluster.url("plain", "&sslmode=require"));
    let started = Instant::now();
    let out = run_bounded(&project, &sim, &["apply", "--auto-approve"], &[]);
    assert_exit(&out, 1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot use the PostgreSQL state at `{}`",
            cluster.url("plain", "&sslmode=require")
        )),
        "{err}"
    );
    assert!(err.contains("server does not support TLS"), "{err}");
    assert_eq!(sim.mutating_calls(), 0, "nothing reached MTurk");
    // Nothing was created on the server either.
    assert_eq!(
        cluster.count(
            "pg_catalog",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'plain'"
        ),
        0
    );
}

/// Regression: the apply lock lives in a session of its own. When only that session ended
/// (`pg_terminate_backend`, `idle_session_timeout`, a pooler recycling it), the server
/// released the lock and the apply carried on without it, to exit 0, while a second apply
/// could take the lock and run beside it.
#[test]
fn an_apply_whose_lock_session_ends_stops_before_its_next_write_instead_of_running_unlocked() {
    const ITEMS: usize = 100;
    let sim = slow_sim(40);
    let schema = Arc::new(PgSchema::new("locklost"));
    let project = Project::sharing(schema.clone());
    project.campaign("l", ITEMS, &CampaignOptions::default());
    let child = slow_apply(&project, &sim);
    wait_for_creates(&sim, 5);
    // The holder record names the lock's own session; the store's session is left alone.
    let mut admin = schema.admin();
    admin
        .batch_execute(&format!("SET search_path TO \"{}\"", schema.name))
        .unwrap();
    let record: String = admin
        .query_one("SELECT value FROM meta WHERE key LIKE 'lock:%'", &[])
        .unwrap()
        .get(0);
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let session = i32::try_from(record["backend"].as_i64().expect("the lock's session")).unwrap();
    let ended: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&session])
        .unwrap()
        .get(0);
    assert!(ended);
    let out = wait_or_kill(
        child,
        Duration::from_secs(120),
        "the apply without its lock",
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the apply lock on the PostgreSQL state at `{}` was lost",
            schema.url()
        )),
        "{err}"
    );
    assert!(err.contains("hint: run the same command again"), "{err}");
    assert!(sim.list_hits().len() < ITEMS, "it stopped mid-apply");

    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_one_hit_per_item(&sim, ITEMS);
    assert_eq!(
        schema.count("SELECT count(*) FROM intents WHERE outcome IS NULL"),
        0
    );
    assert_exit(&project.run(&sim, &["plan", "--detailed-exitcode"]), 0);
}
