//! The results half of the state store (schema 3): assignments, posted rows, the balance, on
//! both backends.

use std::path::Path;

use rusqlite::Connection;
use turkform_model::{
    AssignmentStatus, DecidedBy, HitStatus, Money, PostedHit, RecordedAssignment, RecordedHit,
    Target, UnixTime,
};
use turkform_state::{
    AccountBalance, AssignmentFilter, AssignmentSummary, Batch, HitGroupSize, HitInput, OpenMode,
    SCHEMA_VERSION, StateStore, WorkerDecisions, schema,
};

#[macro_use]
mod common;
use common::Loc;

on_both_backends!(
    assignments_stream_in_item_order_with_the_row_each_hit_was_posted_with,
    an_export_larger_than_one_fetch_streams_every_row_once_in_order,
    summaries_are_the_export_rows_with_answers_only_where_wanted,
    posted_properties_survive_a_hit_rewrite_and_reach_the_export_with_the_group_size,
);

fn hit(campaign: &str, key: &str, id: &str) -> RecordedHit {
    RecordedHit {
        campaign: campaign.to_owned(),
        item_key: key.to_owned(),
        generation: 1,
        hit_id: id.to_owned(),
        hit_type_id: "HT1".to_owned(),
        hit_type_hash: "a".repeat(64),
        content_hash: "b".repeat(64),
        max_assignments: 3,
        committed_cost: Money::from_cents(36),
        created_at: UnixTime(1_700_000_000),
        expiration: UnixTime(1_700_086_400),
        status: HitStatus::Assignable,
        assignments_available: 3,
        assignments_pending: 0,
        assignments_completed: 0,
        expired_by: None,
        paused_remaining_secs: None,
        drift: Vec::new(),
    }
}

fn assignment(hit: &RecordedHit, id: &str, worker: &str, submit: i64) -> RecordedAssignment {
    RecordedAssignment {
        assignment_id: id.to_owned(),
        hit_id: hit.hit_id.clone(),
        campaign: hit.campaign.clone(),
        item_key: hit.item_key.clone(),
        generation: hit.generation,
        worker_id: worker.to_owned(),
        status: AssignmentStatus::Submitted,
        accept_time: Some(UnixTime(submit - 60)),
        submit_time: Some(UnixTime(submit)),
        auto_approval_time: Some(UnixTime(submit + 1000)),
        approval_time: None,
        rejection_time: None,
        answer_xml: "<QuestionFormAnswers/>".to_owned(),
        answers: [("label".to_owned(), format!("é {id}"))].into(),
        requester_feedback: None,
        decided_by: None,
    }
}

fn row(key: &str) -> Vec<(String, String)> {
    vec![
        ("zeta".to_owned(), key.to_owned()),
        ("alpha".to_owned(), "a, \"b\"".to_owned()),
    ]
}

fn assignments_stream_in_item_order_with_the_row_each_hit_was_posted_with(loc: Loc) {
    let path = loc.path();
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    let (h1, h2, h3) = (
        hit("c", "k1", "H1"),
        hit("c", "k2", "H2"),
        hit("d", "k1", "H3"),
    );
    store
        .commit(&Batch {
            upsert_hits: vec![h1.clone(), h2.clone(), h3.clone()],
            hit_inputs: vec![
                HitInput {
                    hit_id: "H1".into(),
                    row: row("k1"),
                },
                HitInput {
                    hit_id: "H2".into(),
                    row: row("k2"),
                },
            ],
            ..Batch::default()
        })
        .unwrap();
    let mut approved = assignment(&h2, "A3", "W1", 1_700_000_300);
    approved.status = AssignmentStatus::Approved;
    approved.approval_time = Some(UnixTime(1_700_000_900));
    approved.decided_by = Some(DecidedBy::Outside);
    let mut rejected = assignment(&h3, "A4", "W1", 1_700_000_400);
    rejected.status = AssignmentStatus::Rejected;
    rejected.rejection_time = Some(UnixTime(1_700_000_950));
    rejected.decided_by = Some(DecidedBy::Outside);
    store
        .commit(&Batch {
            // A later refresh rewrites the HIT record: the posted row must survive it.
            upsert_hits: vec![RecordedHit {
                assignments_available: 1,
                ..h1.clone()
            }],
            upsert_assignments: vec![
                assignment(&h1, "A2", "W2", 1_700_000_200),
                assignment(&h1, "A1", "W1", 1_700_000_100),
                approved.clone(),
                rejected.clone(),
            ],
            account_balance: Some(AccountBalance {
                available: Money::from_cents(987_654),
                read_at: UnixTime(1_700_001_000),
            }),
            ..Batch::default()
        })
        .unwrap();
    drop(store);

    let store = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    let mut seen = Vec::new();
    store
        .visit_assignments(&AssignmentFilter::default(), |r| {
            seen.push((r.assignment.assignment_id.clone(), r.hit.input.clone()));
            true
        })
        .unwrap();
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["A1", "A2", "A3", "A4"],
        "campaign, item, then submit order"
    );
    assert_eq!(seen[0].1, Some(row("k1")));
    assert_eq!(seen[2].1, Some(row("k2")));
    assert_eq!(seen[3].1, None, "H3 was posted without a row");

    let mut only = Vec::new();
    store
        .visit_assignments(
            &AssignmentFilter {
                campaigns: vec!["c".into()],
                status: Some(AssignmentStatus::Approved),
            },
            |r| {
                only.push(r.assignment);
                true
            },
        )
        .unwrap();
    assert_eq!(only, [approved]);
    let mut first = 0;
    store
        .visit_assignments(&AssignmentFilter::default(), |_| {
            first += 1;
            false
        })
        .unwrap();
    assert_eq!(first, 1, "returning false stops the stream");

    assert_eq!(
        store.export_columns("c").unwrap(),
        (
            vec!["zeta".to_owned(), "alpha".to_owned()],
            vec!["label".to_owned()]
        )
    );
    assert_eq!(store.campaigns_with_assignments().unwrap(), ["c", "d"]);
    assert_eq!(store.assignments_of_hit("H3").unwrap(), [rejected]);
    let decisions = store.worker_decisions(UnixTime(1_700_001_000)).unwrap();
    assert_eq!((decisions["W1"].approved, decisions["W1"].decided), (1, 2));
    assert_eq!(
        (decisions["W1"].approved_7d, decisions["W1"].decided_7d),
        (1, 2)
    );
    let later = store
        .worker_decisions(UnixTime(1_700_000_000 + 8 * 86_400))
        .unwrap();
    assert_eq!((later["W1"].approved_7d, later["W1"].decided_7d), (0, 0));
    assert_eq!(later["W1"].decided_30d, 2);
    assert_eq!((decisions["W2"].approved, decisions["W2"].decided), (0, 0));
    assert_eq!(
        store
            .hits_past_auto_approval(UnixTime(1_700_001_150))
            .unwrap(),
        ["H1"],
        "A1 (auto-approval at ...1100) is past it, A2 (...1200) is not"
    );
    assert_eq!(
        store.account_balance().unwrap(),
        Some(AccountBalance {
            available: Money::from_cents(987_654),
            read_at: UnixTime(1_700_001_000),
        })
    );
    let counts = store.assignment_counts().unwrap();
    let h1_submitted: u64 = counts
        .iter()
        .filter(|c| c.hit_id == "H1" && c.status == AssignmentStatus::Submitted)
        .map(|c| c.count)
        .sum();
    assert_eq!(h1_submitted, 2);
}

/// What `turkform report` reads: the export's rows (same order, same HITs: none of a HIT
/// `state rm` forgot), reduced to a summary, with the answers decoded only where the caller's
/// predicate wants them; and the HITs of `load` without its assignments.
fn summaries_are_the_export_rows_with_answers_only_where_wanted(loc: Loc) {
    let path = loc.path();
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    let h1 = hit("c", "k1", "H1");
    // A follow-up HIT of the same item, a later generation.
    let h1b = RecordedHit {
        generation: 2,
        hit_id: "H1b".into(),
        ..hit("c", "k1", "H1b")
    };
    let (h2, h3, gone) = (
        hit("c", "k2", "H2"),
        hit("d", "k1", "H3"),
        hit("c", "k3", "H4"),
    );
    let mut rejected = assignment(&h2, "A5", "W3", 1_700_000_050);
    rejected.status = AssignmentStatus::Rejected;
    rejected.rejection_time = Some(UnixTime(1_700_000_500));
    let mut approved = assignment(&h1b, "A3", "W3", 1_700_000_010);
    approved.status = AssignmentStatus::Approved;
    approved.approval_time = Some(UnixTime(1_700_000_600));
    store
        .commit(&Batch {
            upsert_hits: vec![
                h1.clone(),
                h1b.clone(),
                h2.clone(),
                h3.clone(),
                gone.clone(),
            ],
            upsert_assignments: vec![
                assignment(&h1, "A2", "W2", 1_700_000_200),
                assignment(&h1, "A1", "W1", 1_700_000_100),
                // Submitted before the first generation's answers: the order is still by
                // generation first, as the export's.
                approved.clone(),
                rejected.clone(),
                assignment(&h3, "A6", "W1", 1_700_000_000),
                assignment(&gone, "A7", "W1", 1_700_000_000),
            ],
            refreshed_at: Some(UnixTime(1_700_000_700)),
            ..Batch::default()
        })
        .unwrap();
    store.remove_hit("H4").unwrap();
    drop(store);

    let store = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    let mut exported = Vec::new();
    store
        .visit_assignments(&AssignmentFilter::default(), |r| {
            exported.push(r.assignment);
            true
        })
        .unwrap();
    let summaries = |campaigns: &[String]| {
        let mut seen: Vec<AssignmentSummary> = Vec::new();
        let asked = std::cell::RefCell::new(Vec::new());
        store
            .visit_assignment_summaries(
                campaigns,
                |campaign, item, status| {
                    asked
                        .borrow_mut()
                        .push((campaign.to_owned(), item.to_owned(), status));
                    status != AssignmentStatus::Rejected
                },
                |s| {
                    seen.push(s);
                    true
                },
            )
            .unwrap();
        let asked = asked.into_inner();
        (seen, asked)
    };
    let (all, asked) = summaries(&[]);
    let ids: Vec<&str> = all.iter().map(|s| s.assignment_id.as_str()).collect();
    assert_eq!(
        ids,
        ["A1", "A2", "A3", "A5", "A7", "A6"],
        "campaign, item, generation, submit time; the forgotten H4's A7 too"
    );
    let asked_ids: Vec<(&str, &str)> = asked
        .iter()
        .map(|(c, i, _)| (c.as_str(), i.as_str()))
        .collect();
    assert_eq!(
        asked_ids,
        [
            ("c", "k1"),
            ("c", "k1"),
            ("c", "k1"),
            ("c", "k2"),
            ("c", "k3"),
            ("d", "k1")
        ],
        "asked once per row, with its campaign and item"
    );
    let expected: Vec<AssignmentSummary> = exported
        .iter()
        .map(|a| AssignmentSummary {
            campaign: a.campaign.clone(),
            item_key: a.item_key.clone(),
            generation: a.generation,
            hit_id: a.hit_id.clone(),
            assignment_id: a.assignment_id.clone(),
            worker_id: a.worker_id.clone(),
            status: a.status,
            submit_time: a.submit_time,
            approval_time: a.approval_time,
            rejection_time: a.rejection_time,
            answers: (a.status != AssignmentStatus::Rejected).then(|| a.answers.clone()),
        })
        .collect();
    let known: Vec<AssignmentSummary> = all.iter().filter(|s| s.hit_id != "H4").cloned().collect();
    assert_eq!(
        known, expected,
        "the export's rows (which leave H4 out), summarised"
    );
    // Decisions counted from the summaries are the store's own query's.
    for now in [
        1_700_000_000,
        1_700_000_000 + 8 * 86_400,
        1_700_000_000 + 40 * 86_400,
    ] {
        let now = UnixTime(now);
        let mut counted: std::collections::BTreeMap<String, WorkerDecisions> = Default::default();
        for s in &all {
            counted.entry(s.worker_id.clone()).or_default().count(
                s.status,
                s.approval_time,
                s.rejection_time,
                now,
            );
        }
        assert_eq!(counted, store.worker_decisions(now).unwrap(), "at {now:?}");
    }
    assert_eq!(all[2].generation, 2);
    assert_eq!(all[2].approval_time, Some(UnixTime(1_700_000_600)));
    assert_eq!(all[3].answers, None, "a rejected answer is not decoded");
    assert_eq!(
        all[0].answers,
        Some([("label".to_owned(), "é A1".to_owned())].into())
    );

    let (only_d, _) = summaries(&["d".to_owned()]);
    assert_eq!(only_d.len(), 1);
    assert_eq!(only_d[0].assignment_id, "A6");
    let mut first = 0;
    store
        .visit_assignment_summaries(
            &[],
            |_, _, _| true,
            |_| {
                first += 1;
                false
            },
        )
        .unwrap();
    assert_eq!(first, 1, "returning false stops the stream");

    let loaded = store.load().unwrap();
    let (hits, refreshed_at) = store.load_hits().unwrap();
    assert_eq!(hits, loaded.hits, "the same HITs, in the same order");
    assert_eq!(hits.len(), 4);
    assert_eq!(refreshed_at, Some(UnixTime(1_700_000_700)));
}

/// A v2 file as that turkform wrote it: schema 1 and 2, with one HIT.
fn make_v2_state(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(schema::V1).unwrap();
    conn.execute_batch(schema::V2).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 2;
         INSERT INTO meta VALUES ('app', 'turkform'), ('lineage', '0123456789abcdef0123456789abcdef'),
                                 ('schema_version', '2'), ('created_at', '1700000000');
         INSERT INTO partitions VALUES ('sim', 4, 1700000500);
         INSERT INTO hits VALUES ('sim', 'c', 'k1', 1, 'H1', 'HT1', 'hash', 'content', 3, 36,
                                  1700000000, 1700086400, 'Assignable', 3, 0, 0, NULL, NULL, NULL);",
    )
    .unwrap();
}

#[test]
fn a_v2_state_gains_the_results_tables_after_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    make_v2_state(&path);

    // Read-only: an older file is read as it is, with no results yet.
    let old = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(old.schema_version(), 2);
    assert!(old.assignment_counts().unwrap().is_empty());
    assert_eq!(old.account_balance().unwrap(), None);
    let mut visited = 0;
    old.visit_assignments(&AssignmentFilter::default(), |_| {
        visited += 1;
        true
    })
    .unwrap();
    assert_eq!(visited, 0);
    drop(old);

    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    let state = store.load().unwrap();
    assert_eq!(state.serial, 4);
    assert_eq!(state.hits.len(), 1);
    let h = state.hits[0].clone();
    store
        .commit(&Batch {
            upsert_assignments: vec![assignment(&h, "A1", "W1", 1_700_000_100)],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.assignments_of_hit("H1").unwrap().len(), 1);
    drop(store);

    let backup = dir.path().join("s.db.bak-v2");
    let conn = Connection::open(&backup).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let hits: i64 = conn
        .query_row("SELECT count(*) FROM hits", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hits, 1);
}

/// More assignments than one PostgreSQL portal fetch (256 rows) holds, and not a multiple of
/// it: every row comes out exactly once, in export order, and stopping mid-way (past a fetch
/// boundary) stops there.
fn an_export_larger_than_one_fetch_streams_every_row_once_in_order(loc: Loc) {
    let path = loc.path();
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    let hits: Vec<RecordedHit> = (0..61)
        .map(|i| hit("c", &format!("k{i:03}"), &format!("H{i:03}")))
        .collect();
    let mut assignments = Vec::new();
    for (i, h) in hits.iter().enumerate() {
        for j in 0..10 {
            // Submit times run against the ids, so the order can only come from the query.
            let submit = 1_700_000_000 + 100 - j;
            let i = i64::try_from(i).unwrap();
            assignments.push(assignment(h, &format!("A{i:03}-{j}"), "W1", submit + i));
        }
    }
    store
        .commit(&Batch {
            upsert_hits: hits.clone(),
            upsert_assignments: assignments.clone(),
            ..Batch::default()
        })
        .unwrap();
    drop(store);

    let store = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    let mut seen = Vec::new();
    store
        .visit_assignments(&AssignmentFilter::default(), |r| {
            seen.push(r.assignment.assignment_id);
            true
        })
        .unwrap();
    let mut expected = assignments.clone();
    expected.sort_by(|a, b| {
        (&a.item_key, a.submit_time, &a.assignment_id).cmp(&(
            &b.item_key,
            b.submit_time,
            &b.assignment_id,
        ))
    });
    let expected: Vec<String> = expected.into_iter().map(|a| a.assignment_id).collect();
    assert_eq!(seen.len(), 610);
    assert_eq!(seen, expected);

    let mut stopped = 0;
    store
        .visit_assignments(&AssignmentFilter::default(), |_| {
            stopped += 1;
            stopped < 300
        })
        .unwrap();
    assert_eq!(
        stopped, 300,
        "returning false past a fetch boundary stops the stream"
    );
    // The snapshot is released afterwards: the state is still readable and writable.
    assert_eq!(store.assignment_counts().unwrap()[0].count, 10);
    drop(store);
    let mut writer = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    writer.remove_hit("H000").unwrap();
}

/// A PostgreSQL schema at version 2 (as the `postgres` branch first created them), with one HIT.
fn make_v2_pg_state(loc: &Loc) {
    let pg = loc.pg.as_ref().unwrap();
    let mut client = postgres::Client::connect(&pg.base, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{0}\"; SET search_path TO \"{0}\";",
            pg.schema
        ))
        .unwrap();
    client.batch_execute(schema::PG_V1).unwrap();
    client.batch_execute(schema::PG_V2).unwrap();
    client
        .batch_execute(
            "INSERT INTO meta VALUES ('app', 'turkform'), ('lineage', '0123456789abcdef0123456789abcdef'),
                                     ('schema_version', '2'), ('created_at', '1700000000');
             INSERT INTO partitions VALUES ('sim', 4, 1700000500);
             INSERT INTO hits VALUES ('sim', 'c', 'k1', 1, 'H1', 'HT1', 'hash', 'content', 3, 36,
                                      1700000000, 1700086400, 'Assignable', 3, 0, 0, NULL, NULL, NULL);",
        )
        .unwrap();
}

#[test]
fn a_v2_postgres_state_gains_the_results_and_repair_tables_on_a_read_write_open() {
    let loc = Loc::postgres();
    make_v2_pg_state(&loc);
    let path = loc.path();

    // Read-only: an older schema is read as it is, with no results and nothing forgotten.
    let old = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(old.schema_version(), 2);
    assert!(old.assignment_counts().unwrap().is_empty());
    assert_eq!(old.account_balance().unwrap(), None);
    let mut visited = 0;
    old.visit_assignments(&AssignmentFilter::default(), |_| {
        visited += 1;
        true
    })
    .unwrap();
    assert_eq!(visited, 0);
    let state = old.load().unwrap();
    assert_eq!((state.hits.len(), state.forgotten.len()), (1, 0));
    drop(old);

    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    let state = store.load().unwrap();
    assert_eq!(state.serial, 4);
    let h = state.hits[0].clone();
    store
        .commit(&Batch {
            upsert_assignments: vec![assignment(&h, "A1", "W1", 1_700_000_100)],
            hit_inputs: vec![HitInput {
                hit_id: "H1".into(),
                row: row("k1"),
            }],
            account_balance: Some(AccountBalance {
                available: Money::from_cents(5_000),
                read_at: UnixTime(1_700_000_200),
            }),
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.assignments_of_hit("H1").unwrap().len(), 1);
    assert_eq!(
        store.account_balance().unwrap().map(|b| b.available),
        Some(Money::from_cents(5_000))
    );
    store.remove_hit("H1").unwrap();
    let state = store.load().unwrap();
    assert!(state.hits.is_empty());
    assert_eq!(state.forgotten.len(), 1);
    assert_eq!(state.next_fresh_generation("c", "k1"), 2);
}

fn posted(hit_id: &str, title: &str) -> PostedHit {
    PostedHit {
        hit_id: hit_id.to_owned(),
        hit_group_id: "G1".to_owned(),
        title: title.to_owned(),
        description: "Label it, \"carefully\"".to_owned(),
        keywords: "a, b".to_owned(),
        reward: Some(Money::from_cents(12)),
        assignment_duration_secs: Some(600),
        auto_approval_delay_secs: Some(86_400),
        requester_annotation: Some(format!("turkform:c:1:k:{hit_id}")),
        lifetime_secs: Some(86_400),
    }
}

fn posted_properties_survive_a_hit_rewrite_and_reach_the_export_with_the_group_size(loc: Loc) {
    let path = loc.path();
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    let (h1, h2) = (hit("c", "k1", "H1"), hit("c", "k2", "H2"));
    store
        .commit(&Batch {
            upsert_hits: vec![h1.clone(), h2.clone()],
            hit_inputs: vec![
                HitInput {
                    hit_id: "H1".into(),
                    row: row("k1"),
                },
                // A column name JSON must escape.
                HitInput {
                    hit_id: "H2".into(),
                    row: vec![("say \"x\"".to_owned(), "1".to_owned())],
                },
            ],
            upsert_posted: vec![posted("H1", "Label")],
            hit_group_sizes: vec![HitGroupSize {
                hit_group_id: "G1".into(),
                similar_hits: 2,
                counted_at: UnixTime(1_700_000_100),
            }],
            ..Batch::default()
        })
        .unwrap();
    // A field name JSON must escape, which the header pass cannot borrow from the text.
    let mut quoted_field = assignment(&h2, "A3", "W1", 1_700_000_300);
    quoted_field
        .answers
        .insert("say \"hi\"\\".to_owned(), "x".to_owned());
    // A refresh rewrites both HIT records and counts the group again: the posted properties
    // and the data row stay; the size is the latest.
    store
        .commit(&Batch {
            upsert_hits: vec![
                RecordedHit {
                    assignments_available: 1,
                    ..h1.clone()
                },
                RecordedHit {
                    assignments_available: 2,
                    ..h2.clone()
                },
            ],
            upsert_assignments: vec![
                assignment(&h1, "A1", "W1", 1_700_000_100),
                assignment(&h1, "A2", "W2", 1_700_000_200),
                quoted_field,
            ],
            hit_group_sizes: vec![HitGroupSize {
                hit_group_id: "G1".into(),
                similar_hits: 7,
                counted_at: UnixTime(1_700_000_900),
            }],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(
        store.posted_hits().unwrap(),
        [("H1".to_owned(), posted("H1", "Label"))].into()
    );
    assert_eq!(store.hit_group_sizes().unwrap()["G1"], 7);
    assert_eq!(
        store.export_columns("c").unwrap(),
        (
            vec![
                "zeta".to_owned(),
                "alpha".to_owned(),
                "say \"x\"".to_owned()
            ],
            vec!["label".to_owned(), "say \"hi\"\\".to_owned()]
        )
    );
    drop(store);

    let store = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    let mut seen = Vec::new();
    store
        .visit_answers(&AssignmentFilter::default(), |r| {
            seen.push(r);
            true
        })
        .unwrap();
    let ids: Vec<&str> = seen
        .iter()
        .map(|r| r.assignment.assignment_id.as_str())
        .collect();
    assert_eq!(ids, ["A1", "A2", "A3"]);
    assert_eq!(seen[0].hit.posted, Some(posted("H1", "Label")));
    assert_eq!(seen[0].hit.similar_hits, Some(7));
    assert_eq!(seen[0].hit.input, Some(row("k1")));
    assert_eq!(
        seen[0].assignment.answer_xml, "",
        "exports read no answer XML"
    );
    assert_eq!(
        seen[0].assignment.answers,
        assignment(&h1, "A1", "W1", 1_700_000_100).answers
    );
    assert!(
        std::sync::Arc::ptr_eq(&seen[0].hit, &seen[1].hit),
        "one HIT's rows share its decoded columns"
    );
    assert_eq!(seen[2].hit.posted, None, "H2 was never reported");
    assert_eq!(seen[2].hit.similar_hits, None);
    let mut full = Vec::new();
    store
        .visit_assignments(&AssignmentFilter::default(), |r| {
            full.push(r.assignment.answer_xml);
            true
        })
        .unwrap();
    assert_eq!(full[0], "<QuestionFormAnswers/>");
}

/// A v5 file: schema 1 to 5 (as the bonuses release wrote it), with one HIT and one assignment.
fn make_v5_state(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    for sql in &schema::MIGRATIONS[..5] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(
        "PRAGMA user_version = 5;
         INSERT INTO meta VALUES ('app', 'turkform'), ('lineage', '0123456789abcdef0123456789abcdef'),
                                 ('schema_version', '5'), ('created_at', '1700000000');
         INSERT INTO partitions (target, serial, refreshed_at) VALUES ('sim', 4, 1700000500);
         INSERT INTO hits VALUES ('sim', 'c', 'k1', 1, 'H1', 'HT1', 'hash', 'content', 3, 36,
                                  1700000000, 1700086400, 'Assignable', 3, 0, 0, NULL, NULL, NULL,
                                  NULL);
         INSERT INTO assignments VALUES ('sim', 'A1', 'H1', 'c', 'k1', 1, 'W1', 'Submitted',
                                         1700000040, 1700000100, 1700001100, NULL, NULL,
                                         '<QuestionFormAnswers/>', '{\"label\":\"x\"}', NULL,
                                         NULL);",
    )
    .unwrap();
}

#[test]
fn a_v5_state_gains_the_posted_properties_after_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    make_v5_state(&path);

    // Read-only: read as it is, with no posted properties (and no column to read them from).
    let old = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(old.schema_version(), 5);
    assert!(old.posted_hits().unwrap().is_empty());
    assert!(old.hit_group_sizes().unwrap().is_empty());
    let mut visited = Vec::new();
    old.visit_answers(&AssignmentFilter::default(), |r| {
        visited.push(r);
        true
    })
    .unwrap();
    assert_eq!(visited.len(), 1);
    assert_eq!(visited[0].hit.posted, None);
    drop(old);

    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    store
        .commit(&Batch {
            upsert_posted: vec![posted("H1", "Label")],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.posted_hits().unwrap()["H1"].title, "Label");
    assert_eq!(store.load().unwrap().assignments.len(), 1);
    drop(store);

    let backup = dir.path().join("s.db.bak-v5");
    let conn = Connection::open(&backup).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let assignments: i64 = conn
        .query_row("SELECT count(*) FROM assignments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(assignments, 1);
}

#[test]
fn a_v5_postgres_state_gains_the_posted_properties_on_a_read_write_open() {
    let loc = Loc::postgres();
    let pg = loc.pg.as_ref().unwrap();
    let mut client = postgres::Client::connect(&pg.base, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{0}\"; SET search_path TO \"{0}\";",
            pg.schema
        ))
        .unwrap();
    for sql in &schema::PG_MIGRATIONS[..5] {
        client.batch_execute(sql).unwrap();
    }
    client
        .batch_execute(
            "INSERT INTO meta VALUES ('app', 'turkform'), ('lineage', '0123456789abcdef0123456789abcdef'),
                                     ('schema_version', '5'), ('created_at', '1700000000');
             INSERT INTO partitions (target, serial, refreshed_at) VALUES ('sim', 4, 1700000500);
             INSERT INTO hits VALUES ('sim', 'c', 'k1', 1, 'H1', 'HT1', 'hash', 'content', 3, 36,
                                      1700000000, 1700086400, 'Assignable', 3, 0, 0, NULL, NULL,
                                      NULL, NULL);",
        )
        .unwrap();
    drop(client);
    let path = loc.path();

    let old = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(old.schema_version(), 5);
    assert!(old.posted_hits().unwrap().is_empty());
    drop(old);

    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    let h = store.load().unwrap().hits[0].clone();
    store
        .commit(&Batch {
            upsert_assignments: vec![assignment(&h, "A1", "W1", 1_700_000_100)],
            upsert_posted: vec![posted("H1", "Label")],
            hit_group_sizes: vec![HitGroupSize {
                hit_group_id: "G1".into(),
                similar_hits: 1,
                counted_at: UnixTime(1_700_000_200),
            }],
            ..Batch::default()
        })
        .unwrap();
    let mut seen = Vec::new();
    store
        .visit_answers(&AssignmentFilter::default(), |r| {
            seen.push(r);
            true
        })
        .unwrap();
    assert_eq!(seen[0].hit.posted, Some(posted("H1", "Label")));
    assert_eq!(seen[0].hit.similar_hits, Some(1));
}
