//! `turkform results --aggregate`: one row per item, checked against what the test computes
//! itself from ListAssignmentsForHIT (rejected answers and a worker's repeat answer left out).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};
use turkform_model::Annotation;

use crate::common::{CampaignOptions, Project, Sim, assert_exit, stderr, stdout};

fn work(sim: &Sim, body: Value) -> Value {
    sim.work(&body)
}

/// One answer as MTurk reports it.
struct Truth {
    item: String,
    generation: u32,
    worker: String,
    assignment_id: String,
    status: aws_sdk_mturk::types::AssignmentStatus,
    submit: i64,
    label: String,
}

/// The `label` of a crowd-form answer, read from the QuestionFormAnswers XML MTurk returns.
fn label_of(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).expect("answer XML");
    let text = doc
        .descendants()
        .find(|n| n.has_tag_name("FreeText"))
        .and_then(|n| n.text())
        .expect("taskAnswers FreeText");
    let v: Value = serde_json::from_str(text).expect("taskAnswers JSON");
    v[0]["label"].as_str().expect("label").to_owned()
}

/// Every assignment of every HIT (all statuses), with item and generation from the HIT's
/// RequesterAnnotation.
fn sdk_truth(sim: &Sim) -> Vec<Truth> {
    let client = sim.sdk();
    let hits = sim.list_hits();
    sim.block_on(async move {
        let mut all = Vec::new();
        for hit in hits {
            let annotation =
                Annotation::parse(hit.requester_annotation().unwrap()).expect("our annotation");
            let item = match &annotation.key {
                turkform_model::AnnotatedKey::Plain(k) => k.clone(),
                other => panic!("unexpected key {other:?}"),
            };
            let page = client
                .list_assignments_for_hit()
                .hit_id(hit.hit_id().unwrap())
                .max_results(100)
                .set_assignment_statuses(Some(vec![
                    aws_sdk_mturk::types::AssignmentStatus::Submitted,
                    aws_sdk_mturk::types::AssignmentStatus::Approved,
                    aws_sdk_mturk::types::AssignmentStatus::Rejected,
                ]))
                .send()
                .await
                .expect("ListAssignmentsForHIT");
            assert!(page.next_token.is_none(), "fewer than 100 per HIT");
            for a in page.assignments.unwrap_or_default() {
                all.push(Truth {
                    item: item.clone(),
                    generation: annotation.generation,
                    worker: a.worker_id().unwrap().to_owned(),
                    assignment_id: a.assignment_id().unwrap().to_owned(),
                    status: a.assignment_status().unwrap().clone(),
                    submit: a.submit_time().unwrap().secs(),
                    label: label_of(a.answer().unwrap()),
                });
            }
        }
        all
    })
}

/// The answers that count, per item in submit order: not rejected, one per worker (the first).
fn counted(truth: &[Truth]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sorted: Vec<&Truth> = truth
        .iter()
        .filter(|t| t.status != aws_sdk_mturk::types::AssignmentStatus::Rejected)
        .collect();
    sorted.sort_by(|a, b| {
        (&a.item, a.submit, a.generation, &a.assignment_id).cmp(&(
            &b.item,
            b.submit,
            b.generation,
            &b.assignment_id,
        ))
    });
    let mut seen = HashSet::new();
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for t in sorted {
        if seen.insert((t.item.clone(), t.worker.clone())) {
            out.entry(t.item.clone())
                .or_default()
                .push((t.worker.clone(), t.label.clone()));
        }
    }
    out
}

/// Majority as the test computes it: most votes, ties to the value first seen.
fn majority(answers: &[(String, String)]) -> (String, f64, u32) {
    let mut order: Vec<&str> = Vec::new();
    let mut votes: HashMap<&str, u32> = HashMap::new();
    for (_, label) in answers {
        if !votes.contains_key(label.as_str()) {
            order.push(label);
        }
        *votes.entry(label).or_default() += 1;
    }
    let best = order
        .iter()
        .copied()
        .fold(None::<&str>, |best, l| match best {
            Some(b) if votes[b] >= votes[l] => Some(b),
            _ => Some(l),
        })
        .unwrap();
    let n = answers.len() as u32;
    (best.to_owned(), f64::from(votes[best]) / f64::from(n), n)
}

fn agreement_text(x: f64) -> String {
    format!("{x:.4}")
}

#[test]
fn aggregated_results_count_neither_rejected_nor_repeat_answers_and_match_the_sdk() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("votes", 3, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let items = ["item-00000", "item-00001", "item-00002"];

    // Generation 1: three workers, one call each and a clock step between them, so submit
    // order is theirs.
    let round1 = [
        ("AW1", ["cat", "dog", "cat"]),
        ("AW2", ["cat", "cat", "dog"]),
        ("AW3", ["dog", "cat", "dog"]),
    ];
    for (worker, labels) in round1 {
        let by_hit: serde_json::Map<String, Value> = items
            .iter()
            .zip(labels)
            .map(|(i, l)| ((*i).to_owned(), json!({"label": l})))
            .collect();
        let done = work(
            &sim,
            json!({"workers": [{"worker_id": worker, "answers_by_hit": by_hit}]}),
        );
        assert_eq!(done["assignments"].as_array().unwrap().len(), 3, "{done}");
        sim.advance_clock(5);
    }

    // AW2's answer to item-00001 is rejected through the SDK.
    let before = sdk_truth(&sim);
    let rejected = before
        .iter()
        .find(|t| t.item == "item-00001" && t.worker == "AW2")
        .expect("AW2 answered item-00001")
        .assignment_id
        .clone();
    let client = sim.sdk();
    sim.block_on(async {
        client
            .reject_assignment()
            .assignment_id(&rejected)
            .requester_feedback("not what was asked")
            .send()
            .await
            .expect("RejectAssignment")
    });

    // Generation 2 (the question changed): AW1 answers every item a second time, differently,
    // and AW4 answers for the first time.
    project.campaign(
        "votes",
        3,
        &CampaignOptions {
            template_prefix: "Read carefully. ",
            ..CampaignOptions::default()
        },
    );
    sim.advance_clock(5);
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let round2 = [
        ("AW1", ["dog", "dog", "cat"]),
        ("AW4", ["dog", "cat", "dog"]),
    ];
    for (worker, labels) in round2 {
        let by_hit: serde_json::Map<String, Value> = items
            .iter()
            .zip(labels)
            .map(|(i, l)| ((*i).to_owned(), json!({"label": l})))
            .collect();
        let done = work(
            &sim,
            json!({"workers": [{"worker_id": worker, "answers_by_hit": by_hit}]}),
        );
        assert_eq!(done["assignments"].as_array().unwrap().len(), 3, "{done}");
        sim.advance_clock(5);
    }
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    let truth = sdk_truth(&sim);
    assert_eq!(truth.len(), 15, "3 items x (3 + 2) answers");
    assert!(
        truth.iter().any(|t| t.generation == 2 && t.worker == "AW1"),
        "AW1 answered the second generation"
    );
    let counted = counted(&truth);

    // --- majority, CSV.
    let out = project.run(&sim, &["results", "--aggregate", "majority"]);
    assert_exit(&out, 0);
    let csv = stdout(&out);
    assert!(
        csv.starts_with(
            "\"Campaign\",\"Item\",\"Input.id\",\"Input.text\",\"Answer.label\",\"Agreement.label\",\"Count.label\"\n"
        ),
        "{csv}"
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<HashMap<String, String>> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3, "one row per item");
    for row in &rows {
        let (value, agreement, count) = majority(&counted[&row["Item"]]);
        assert_eq!(row["Campaign"], "votes");
        assert_eq!(row["Input.id"], row["Item"]);
        assert_eq!(row["Answer.label"], value, "{row:?}");
        assert_eq!(row["Agreement.label"], agreement_text(agreement), "{row:?}");
        assert_eq!(row["Count.label"], count.to_string(), "{row:?}");
    }
    // What the rules mean here, spelled out: AW1's repeat is never counted (4 workers, not 5
    // answers), AW2's rejected answer to item-00001 neither (3).
    let by_item: HashMap<&str, &HashMap<String, String>> =
        rows.iter().map(|r| (r["Item"].as_str(), r)).collect();
    assert_eq!(by_item["item-00000"]["Count.label"], "4");
    assert_eq!(
        by_item["item-00000"]["Answer.label"], "cat",
        "tie: first seen"
    );
    assert_eq!(by_item["item-00000"]["Agreement.label"], "0.5000");
    assert_eq!(by_item["item-00001"]["Count.label"], "3");
    assert_eq!(by_item["item-00001"]["Answer.label"], "cat");
    assert_eq!(by_item["item-00001"]["Agreement.label"], "0.6667");
    assert_eq!(by_item["item-00002"]["Count.label"], "4");
    assert_eq!(by_item["item-00002"]["Answer.label"], "dog");
    assert_eq!(by_item["item-00002"]["Agreement.label"], "0.7500");

    // --- Dawid-Skene, JSONL: the reference is the aggregation arithmetic fed the SDK's answers.
    let out = project.run(
        &sim,
        &["results", "--aggregate", "dawid-skene", "--format", "jsonl"],
    );
    assert_exit(&out, 0);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let fields: Vec<(String, String, BTreeMap<String, String>)> = counted
        .iter()
        .flat_map(|(item, answers)| {
            answers.iter().map(move |(worker, label)| {
                (
                    item.clone(),
                    worker.clone(),
                    [("label".to_owned(), label.clone())].into(),
                )
            })
        })
        .collect();
    let flat: Vec<turkform_aggregate::Answer<'_>> = fields
        .iter()
        .map(|(item, worker, f)| turkform_aggregate::Answer {
            item,
            worker,
            fields: f,
        })
        .collect();
    let expected: HashMap<String, turkform_aggregate::Aggregated> =
        turkform_aggregate::aggregate(turkform_aggregate::Method::DawidSkene, &flat)
            .into_iter()
            .map(|r| (r.item, r.fields["label"].clone()))
            .collect();
    for l in &lines {
        let item = l["item"].as_str().unwrap();
        let e = &expected[item];
        assert_eq!(l["campaign"], "votes");
        assert_eq!(l["input"]["id"], item);
        let label = &l["answers"]["label"];
        assert_eq!(label["value"], e.value.as_str(), "{l}");
        assert_eq!(label["count"], counted[item].len(), "{l}");
        let agreement = label["agreement"].as_f64().unwrap();
        assert!((agreement - e.agreement).abs() <= 0.00005, "{l} vs {e:?}");
        assert!(agreement > 0.0 && agreement <= 1.0, "{l}");
    }

    // --- `--status rejected` cannot be aggregated: refused, nothing written.
    let file = project.path().join("agg.csv");
    let out = project.run(
        &sim,
        &[
            "results",
            "--aggregate",
            "majority",
            "--status",
            "rejected",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("--status rejected"),
        "{}",
        stderr(&out)
    );
    assert!(!file.exists());

    // --- `--status approved`: nothing is approved yet, so every item has a row counting 0.
    let out = project.run(
        &sim,
        &["results", "--aggregate", "majority", "--status", "approved"],
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines()
            .skip(1)
            .all(|l| l.ends_with(",\"\",\"\",\"0\"")),
        "{text}"
    );
}
