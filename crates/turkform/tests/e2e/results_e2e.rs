//! Results: assignments synced by refresh, exported by `turkform results`, counted by
//! `turkform status`; checked against what the simulator says through the SDK.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::common::{
    CampaignOptions, Project, Sim, StateBackend, assert_exit, campaign_toml, stderr, stdout,
};

/// `POST /_sim/work` with today's body.
fn work(sim: &Sim, body: Value) -> Value {
    sim.work(&body)
}

/// Every assignment of every HIT, by assignment id (ListAssignmentsForHIT, all statuses).
fn sdk_assignments(sim: &Sim) -> BTreeMap<String, aws_sdk_mturk::types::Assignment> {
    let client = sim.sdk();
    let hits = sim.list_hits();
    sim.block_on(async move {
        let mut all = BTreeMap::new();
        for hit in hits {
            let mut token = None;
            loop {
                let page = client
                    .list_assignments_for_hit()
                    .hit_id(hit.hit_id().unwrap())
                    .max_results(100)
                    .set_assignment_statuses(Some(vec![
                        aws_sdk_mturk::types::AssignmentStatus::Submitted,
                        aws_sdk_mturk::types::AssignmentStatus::Approved,
                        aws_sdk_mturk::types::AssignmentStatus::Rejected,
                    ]))
                    .set_next_token(token)
                    .send()
                    .await
                    .expect("ListAssignmentsForHIT");
                for a in page.assignments.unwrap_or_default() {
                    all.insert(a.assignment_id().unwrap().to_owned(), a);
                }
                token = page.next_token;
                if token.is_none() {
                    break;
                }
            }
        }
        all
    })
}

/// Parses a CSV file with Python's own `csv` module: the header and the rows as dicts.
fn python_csv(path: &std::path::Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import csv, json, sys\n\
             with open(sys.argv[1], newline='', encoding='utf-8') as f:\n\
             \x20   r = csv.reader(f)\n\
             \x20   header = next(r)\n\
             \x20   rows = [dict(zip(header, row)) for row in r]\n\
             print(json.dumps({'header': header, 'rows': rows}))",
        )
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let header = v["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect();
    let rows = serde_json::from_value(v["rows"].clone()).unwrap();
    (header, rows)
}

const TRICKY: &str = "a, \"quoted\" answer\nsecond line — café 日本 🙂";

fn a_crowd_form_export_matches_mturk_row_for_row_and_survives_pythons_csv(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("labels", 3, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let done = work(
        &sim,
        json!({"answers": {"answer": TRICKY, "sentiment": {"label": "pos", "sure": true}, "tags": ["x", "y"]}}),
    );
    assert_eq!(done["assignments"].as_array().unwrap().len(), 9, "{done}");
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let file = project.path().join("out.csv");
    let out = project.run(&sim, &["results", "--output", file.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "", "--output writes nothing to stdout");

    let (header, rows) = python_csv(&file);
    insta::assert_snapshot!("crowd_form_csv_header", header.join("\n"));
    let truth = sdk_assignments(&sim);
    assert_eq!(rows.len(), truth.len());
    for row in &rows {
        let a = &truth[&row["AssignmentId"]];
        assert_eq!(row["HITId"], a.hit_id().unwrap());
        assert_eq!(row["WorkerId"], a.worker_id().unwrap());
        assert_eq!(
            row["AssignmentStatus"],
            a.assignment_status().unwrap().as_str()
        );
        assert_eq!(row["Answer.answer"], TRICKY);
        assert_eq!(row["Answer.sentiment.label"], "pos");
        assert_eq!(row["Answer.sentiment.sure"], "true");
        assert_eq!(row["Answer.tags"], "x|y");
        assert!(row["Input.id"].starts_with("item-"), "{row:?}");
        assert_eq!(
            row["Input.text"],
            format!(
                "Text number {}",
                row["Input.id"]
                    .trim_start_matches("item-")
                    .trim_start_matches('0')
                    .parse::<u32>()
                    .unwrap_or(0)
            )
        );
        assert_eq!(row["Title"], "Label a sentence (labels)");
        assert_eq!(row["Reward"], "$0.10");
        assert_eq!(row["LifetimeApprovalRate"], "0% (0/0)");
        // The instant MTurk reports, in the web UI's Pacific form (the zone letters themselves
        // are checked on fixed instants around both DST changes in turkform-results).
        let pacific =
            turkform_results::TimeFormatter::new(turkform_results::TimeFormat::Mturk).unwrap();
        let submitted = turkform_model::UnixTime(a.submit_time().unwrap().secs());
        assert_eq!(row["SubmitTime"], pacific.format(submitted));
        let zone = row["SubmitTime"].split(' ').nth(4).unwrap();
        assert!(zone == "PST" || zone == "PDT", "{}", row["SubmitTime"]);
        assert_eq!(row["Approve"], "");
        assert_eq!(row["Reject"], "");
    }
    // Every field is double-quoted, as the web UI writes them.
    let raw = std::fs::read_to_string(&file).unwrap();
    assert!(raw.starts_with("\"HITId\",\"HITTypeId\",\"Title\""));

    // JSONL carries the same assignments, with the row and the answers.
    let out = project.run(&sim, &["results", "--format", "jsonl"]);
    assert_exit(&out, 0);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), truth.len());
    for l in &lines {
        let a = &truth[l["assignment_id"].as_str().unwrap()];
        assert_eq!(l["hit_id"], a.hit_id().unwrap());
        assert_eq!(l["campaign"], "labels");
        assert_eq!(l["answers"]["answer"], TRICKY);
        assert_eq!(l["input"]["id"], l["item"]);
        assert_eq!(l["status"], "Submitted");
    }
}

fn a_question_form_export_has_one_answer_column_per_question(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.write(
        "campaigns/data/survey.csv",
        "id,city\nq1,Zürich\nq2,\"Paris, France\"\n",
    );
    project.write(
        "campaigns/templates/survey.xml",
        r#"<QuestionForm xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd">
  <Question><QuestionIdentifier>why</QuestionIdentifier><IsRequired>true</IsRequired>
    <QuestionContent><Text>Why visit {{ item.city }}?</Text></QuestionContent>
    <AnswerSpecification><FreeTextAnswer/></AnswerSpecification></Question>
  <Question><QuestionIdentifier>season</QuestionIdentifier><IsRequired>true</IsRequired>
    <QuestionContent><Text>When?</Text></QuestionContent>
    <AnswerSpecification><SelectionAnswer><Selections>
      <Selection><SelectionIdentifier>summer</SelectionIdentifier><Text>Summer</Text></Selection>
      <Selection><SelectionIdentifier>winter</SelectionIdentifier><Text>Winter</Text></Selection>
    </Selections></SelectionAnswer></AnswerSpecification></Question>
</QuestionForm>
"#,
    );
    let toml = crate::common::campaign_toml("survey", &CampaignOptions::default()).replace(
        "html = \"templates/survey.html\"\nframe_height = 0",
        "question_form = \"templates/survey.xml\"",
    );
    project.write("campaigns/survey.toml", &toml);
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    work(
        &sim,
        json!({"answers": {"why": TRICKY, "season": "summer"}, "assignments_per_hit": 2}),
    );
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let file = project.path().join("survey.csv");
    assert_exit(
        &project.run(
            &sim,
            &[
                "results",
                "survey",
                "--output",
                file.to_str().unwrap(),
                "--time-format",
                "iso8601",
            ],
        ),
        0,
    );
    let (header, rows) = python_csv(&file);
    assert_eq!(
        header[27..],
        [
            "Input.id",
            "Input.city",
            "Answer.season",
            "Answer.why",
            "Approve",
            "Reject"
        ]
    );
    let truth = sdk_assignments(&sim);
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let a = &truth[&row["AssignmentId"]];
        assert_eq!(row["HITId"], a.hit_id().unwrap());
        assert_eq!(row["Answer.why"], TRICKY);
        assert_eq!(row["Answer.season"], "summer");
        let city = if row["Input.id"] == "q1" {
            "Zürich"
        } else {
            "Paris, France"
        };
        assert_eq!(row["Input.city"], city);
        assert_eq!(
            row["SubmitTime"],
            turkform_model::UnixTime(a.submit_time().unwrap().secs()).to_rfc3339()
        );
    }
}

fn a_refresh_reads_assignments_only_for_hits_with_new_work(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("many", 12, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    assert_eq!(
        sim.calls("ListAssignmentsForHIT"),
        0,
        "no work yet, no reads"
    );

    work(&sim, json!({"max_hits": 5, "assignments_per_hit": 2}));
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    assert_eq!(
        sim.calls("ListAssignmentsForHIT"),
        5,
        "one read per HIT with work"
    );

    assert_exit(&project.run(&sim, &["refresh"]), 0);
    assert_eq!(
        sim.calls("ListAssignmentsForHIT"),
        5,
        "nothing new: no read at all"
    );

    let last = sim.list_hits().last().unwrap().hit_id().unwrap().to_owned();
    work(&sim, json!({"hit_id": last, "assignments_per_hit": 1}));
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    assert_eq!(
        sim.calls("ListAssignmentsForHIT"),
        6,
        "exactly the one HIT with new work"
    );

    let out = project.run(&sim, &["results", "--format", "jsonl"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).lines().count(), sdk_assignments(&sim).len());
    assert_eq!(stdout(&out).lines().count(), 11);
}

fn auto_approval_is_recorded_auto_and_an_approval_made_elsewhere_outside(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("auto", 1, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let done = work(&sim, json!({"assignments_per_hit": 2}));
    let ids: Vec<String> = done["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let client = sim.sdk();
    let by_hand = ids[0].clone();
    sim.block_on(async {
        client
            .approve_assignment()
            .assignment_id(&by_hand)
            .send()
            .await
            .expect("ApproveAssignment")
    });
    // Past the campaign's 3-day auto-approval delay.
    sim.advance_clock(3 * 86_400 + 60);
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    let out = project.run(
        &sim,
        &["results", "--format", "jsonl", "--status", "approved"],
    );
    assert_exit(&out, 0);
    let rows: HashMap<String, Value> = stdout(&out)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["assignment_id"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    let truth = sdk_assignments(&sim);
    for id in &ids {
        assert_eq!(truth[id].assignment_status().unwrap().as_str(), "Approved");
    }
    assert_eq!(rows[&ids[0]]["decided_by"], "outside");
    assert_eq!(rows[&ids[1]]["decided_by"], "auto");
    assert_eq!(
        rows[&ids[1]]["approval_time"],
        rows[&ids[1]]["auto_approval_time"]
    );
    // The outside approval counts in the worker's approval rate.
    let file = project.path().join("a.csv");
    assert_exit(
        &project.run(&sim, &["results", "--output", file.to_str().unwrap()]),
        0,
    );
    let (_, csv_rows) = python_csv(&file);
    let row = csv_rows
        .iter()
        .find(|r| r["AssignmentId"] == ids[0])
        .unwrap();
    assert_eq!(row["LifetimeApprovalRate"], "100% (1/1)");
}

fn status_counts_what_mturk_counts_after_submit_approve_reject_return_and_abandon(
    backend: StateBackend,
) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign(
        "count",
        3,
        &CampaignOptions {
            max_spend: Some("10.00"),
            ..CampaignOptions::default()
        },
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let hits = sim.list_hits();
    let hit = |i: usize| hits[i].hit_id().unwrap().to_owned();
    // Item 0: three submitted (done), one of them rejected (so no longer done), one approved.
    let done = work(&sim, json!({"hit_id": hit(0), "assignments_per_hit": 3}));
    let a: Vec<String> = serde_json::from_value(done["assignments"].clone()).unwrap();
    let client = sim.sdk();
    sim.block_on(async {
        client
            .approve_assignment()
            .assignment_id(&a[0])
            .send()
            .await
            .unwrap();
        client
            .reject_assignment()
            .assignment_id(&a[1])
            .requester_feedback("off topic")
            .send()
            .await
            .unwrap();
    });
    // Item 1: three submitted and left for review (done).
    work(&sim, json!({"hit_id": hit(1), "assignments_per_hit": 3}));
    // Item 2: one accepted then returned, one accepted and abandoned, one accepted and held.
    work(
        &sim,
        json!({"action": "accept", "hit_id": hit(2), "assignments_per_hit": 2}),
    );
    work(
        &sim,
        json!({"action": "return", "hit_id": hit(2), "assignments_per_hit": 1}),
    );
    sim.advance_clock(11 * 60); // past the 10-minute assignment duration: abandoned
    work(
        &sim,
        json!({"action": "accept", "hit_id": hit(2), "assignments_per_hit": 1}),
    );
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    let out = project.run(&sim, &["status", "--json"]);
    assert_exit(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let c = &v["campaigns"][0];

    let truth = sdk_assignments(&sim);
    let count = |s: &str| {
        truth
            .values()
            .filter(|a| a.assignment_status().unwrap().as_str() == s)
            .count() as u64
    };
    let hits = sim.list_hits();
    let pending: i64 = hits
        .iter()
        .map(|h| i64::from(h.number_of_assignments_pending().unwrap()))
        .sum();
    let available: i64 = hits
        .iter()
        .map(|h| i64::from(h.number_of_assignments_available().unwrap()))
        .sum();
    assert_eq!(c["awaiting_review"], count("Submitted"));
    assert_eq!(c["approved"], count("Approved"));
    assert_eq!(c["rejected"], count("Rejected"));
    assert_eq!(c["pending"], pending);
    assert_eq!(c["available"], available);
    assert_eq!(
        (count("Submitted"), count("Approved"), count("Rejected")),
        (4, 1, 1)
    );
    assert_eq!((pending, available), (1, 2));
    assert_eq!(
        c["items_complete"], 1,
        "the rejected answer does not count: {c}"
    );
    assert_eq!(c["items_total"], 3);
    // Every HIT is within its 7-day lifetime on MTurk, so all three are open, including item
    // 1's, whose every slot is submitted (Reviewable): status used to count such a HIT as
    // expired while the planner treated it as live (one rule now, in the model).
    let sim_now = sim.control_now();
    let live_on_mturk = hits
        .iter()
        .filter(|h| h.expiration().unwrap().secs() > sim_now)
        .count();
    assert_eq!(live_on_mturk, 3);
    assert!(
        hits.iter()
            .any(|h| h.hit_status().unwrap().as_str() == "Reviewable"),
        "item 1's HIT is Reviewable on MTurk"
    );
    assert_eq!(c["open"], live_on_mturk, "{c}");
    assert_eq!(c["expired"], 0, "{c}");
    // Money in cents: $0.10 reward + $0.02 fee, once.
    assert_eq!(c["paid"], 12);
    assert_eq!(c["paid_fees"], 2);
    assert_eq!(c["bonuses_paid"], 0);
    assert_eq!(c["committed"], 108);
    assert_eq!(c["budget_left"], 1000 - 108);
    let balance: String = sim.block_on(async {
        client
            .get_account_balance()
            .send()
            .await
            .unwrap()
            .available_balance
            .unwrap()
    });
    let balance: turkform_model::Money = balance.parse().unwrap();
    assert_eq!(v["account_balance"]["available"], balance.cents());

    let human = project.run(&sim, &["status"]);
    assert_exit(&human, 0);
    let text = stdout(&human);
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("target ") {
                "target sim (last refresh: [time])".to_owned()
            } else if l.starts_with("account balance ") {
                "account balance [balance] (read [time])".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("status_after_review", text);
    assert!(stderr(&human).is_empty(), "{}", stderr(&human));
}

/// `results --output /dev/null` in a benchmark once renamed its temporary file over the device,
/// leaving a plain file at /dev/null for the whole machine. Anything but a regular file is now
/// written in place: a FIFO (read while it is written) and a symlink (which stays a symlink).
#[test]
fn output_to_a_fifo_or_a_symlink_is_written_in_place_not_replaced() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("piped", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    work(&sim, json!({"assignments_per_hit": 1}));
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    let fifo = project.path().join("rows.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read the FIFO"))
    };
    let out = project.run(
        &sim,
        &[
            "results",
            "--format",
            "jsonl",
            "--output",
            fifo.to_str().unwrap(),
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(reader.join().unwrap().lines().count(), 2);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&kind),
        "the FIFO is still a FIFO"
    );

    let target = project.path().join("real.jsonl");
    std::fs::write(&target, "old\n").unwrap();
    let link = project.path().join("latest.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = project.run(
        &sim,
        &[
            "results",
            "--format",
            "jsonl",
            "--output",
            link.to_str().unwrap(),
        ],
    );
    assert_exit(&out, 0);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 2);
}

/// The HIT-level cells of every exported row against GetHIT (one call per HIT) and ListHITs (the
/// group sizes): what MTurk shows workers, whatever the campaign files say now. Returns the
/// titles seen.
fn assert_hit_cells_match_mturk(project: &Project, sim: &Sim, rows_expected: usize) -> Vec<String> {
    let file = project.path().join("cells.csv");
    let out = project.run(sim, &["results", "--output", file.to_str().unwrap()]);
    assert_exit(&out, 0);
    let (_, rows) = python_csv(&file);
    assert_eq!(rows.len(), rows_expected);
    let listed = sim.list_hits();
    let mut group_sizes: HashMap<String, usize> = HashMap::new();
    for h in &listed {
        *group_sizes
            .entry(h.hit_group_id().unwrap().to_owned())
            .or_default() += 1;
    }
    let client = sim.sdk();
    let pacific =
        turkform_results::TimeFormatter::new(turkform_results::TimeFormat::Mturk).unwrap();
    let mut titles = Vec::new();
    for row in &rows {
        let hit = sim
            .block_on(client.get_hit().hit_id(&row["HITId"]).send())
            .expect("GetHIT")
            .hit
            .unwrap();
        assert_eq!(row["HITTypeId"], hit.hit_type_id().unwrap());
        assert_eq!(row["Title"], hit.title().unwrap());
        assert_eq!(row["Description"], hit.description().unwrap());
        assert_eq!(row["Keywords"], hit.keywords().unwrap_or(""));
        assert_eq!(row["Reward"], format!("${}", hit.reward().unwrap()));
        assert_eq!(
            row["AssignmentDurationInSeconds"],
            hit.assignment_duration_in_seconds().unwrap().to_string()
        );
        assert_eq!(
            row["AutoApprovalDelayInSeconds"],
            hit.auto_approval_delay_in_seconds().unwrap().to_string()
        );
        assert_eq!(
            row["RequesterAnnotation"],
            hit.requester_annotation().unwrap()
        );
        let created = hit.creation_time().unwrap().secs();
        let expires = hit.expiration().unwrap().secs();
        assert_eq!(
            row["CreationTime"],
            pacific.format(turkform_model::UnixTime(created))
        );
        assert_eq!(row["LifetimeInSeconds"], (expires - created).to_string());
        assert_eq!(
            row["NumberOfSimilarHITs"],
            group_sizes[hit.hit_group_id().unwrap()].to_string(),
            "the HIT group's size as ListHITs shows it"
        );
        titles.push(row["Title"].clone());
    }
    titles.sort();
    titles.dedup();
    titles
}

fn hit_cells_show_what_workers_saw_after_the_campaign_file_is_edited_or_deleted(
    backend: StateBackend,
) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("labels", 4, &CampaignOptions::default());
    // A second HIT type, so that the two groups have different sizes.
    let other = CampaignOptions {
        reward: "0.25",
        assignments: 1,
        ..CampaignOptions::default()
    };
    project.campaign("other", 2, &other);
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let done = work(&sim, json!({"answers": {"answer": "yes"}}));
    assert_eq!(done["assignments"].as_array().unwrap().len(), 14, "{done}");
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let posted = [
        "Label a sentence (labels)".to_owned(),
        "Label a sentence (other)".to_owned(),
    ];
    assert_eq!(assert_hit_cells_match_mturk(&project, &sim, 14), posted);

    // Edited, not applied: the export still shows what workers saw.
    let edited = CampaignOptions {
        reward: "0.50",
        ..CampaignOptions::default()
    };
    project.write(
        "campaigns/labels.toml",
        &campaign_toml("labels", &edited).replace("Label a sentence", "Rate a sentence"),
    );
    assert_eq!(assert_hit_cells_match_mturk(&project, &sim, 14), posted);

    // Deleted: nothing of the campaign files is needed.
    project.remove("campaigns/labels.toml");
    project.remove("campaigns/other.toml");
    assert_eq!(assert_hit_cells_match_mturk(&project, &sim, 14), posted);

    // Edited and applied: the HITs move to the new type, and the refresh that follows records
    // what MTurk shows now.
    project.write(
        "campaigns/labels.toml",
        &campaign_toml("labels", &edited).replace("Label a sentence", "Rate a sentence"),
    );
    project.write("campaigns/other.toml", &campaign_toml("other", &other));
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    assert_eq!(
        assert_hit_cells_match_mturk(&project, &sim, 14),
        [
            "Label a sentence (other)".to_owned(),
            "Rate a sentence (labels)".to_owned()
        ]
    );
}

// Results live in the state: each of these runs on both backends.
crate::on_both_backends!(
    a_crowd_form_export_matches_mturk_row_for_row_and_survives_pythons_csv,
    a_question_form_export_has_one_answer_column_per_question,
    a_refresh_reads_assignments_only_for_hits_with_new_work,
    auto_approval_is_recorded_auto_and_an_approval_made_elsewhere_outside,
    status_counts_what_mturk_counts_after_submit_approve_reject_return_and_abandon,
    hit_cells_show_what_workers_saw_after_the_campaign_file_is_edited_or_deleted,
);

/// `status` used the system clock while the simulator's virtual clock had moved on: HITs past
/// their lifetime on the simulator were counted open. Every command now reads the target's
/// clock.
#[test]
fn status_judges_expiry_by_the_simulators_clock_not_the_system_clock() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("aging", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    sim.advance_clock(8 * 24 * 3600); // past the 7-day lifetime
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let now = sim.control_now();
    let hits = sim.list_hits();
    let expired_on_mturk = hits
        .iter()
        .filter(|h| h.expiration().unwrap().secs() <= now)
        .count();
    assert_eq!(expired_on_mturk, 2, "both HITs expired on the simulator");
    let out = project.run(&sim, &["status", "--json"]);
    assert_exit(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let c = &v["campaigns"][0];
    assert_eq!(c["expired"], expired_on_mturk, "{c}");
    assert_eq!(c["open"], 0, "{c}");
    assert_eq!(c["available"], 0, "no slot of an expired HIT is open: {c}");
}
