//! Browser tests of the worker site and `turkform preview`: Debian's chromium, driven through
//! chromedriver, does a HIT the way a worker would; the answer is then read back through
//! ListAssignmentsForHIT, as MTurk stores it.
//!
//! The campaign names, item keys and worker id are constants so that later checks (for
//! example `turkform results` on the same answers) can reuse them.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common::webdriver::Browser;
use crate::common::{Project, Sim, assert_exit};

pub const CROWD_CAMPAIGN: &str = "preview-crowd";
pub const FORM_CAMPAIGN: &str = "preview-form";
pub const ITEM: &str = "s2";
/// The worker `turkform preview` acts as.
pub const WORKER: &str = "ALOCALWORKER";

/// `turkform preview` running in the background; killed (by its own handle) when dropped.
struct Preview {
    child: Child,
    /// The worker-site URL it printed.
    url: String,
}

impl Preview {
    fn start(project: &Project, campaign: &str, item: &str) -> Preview {
        let mut child = Command::new(env!("CARGO_BIN_EXE_turkform"))
            .current_dir(project.path())
            .args(["preview", campaign, item, "--no-open"])
            .env("NO_COLOR", "1")
            .env_remove("TURKFORM_TARGET")
            .env_remove("TURKFORM_ENDPOINT_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run turkform preview");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the preview URL");
        if line.trim().is_empty() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("turkform preview printed no URL; stderr:\n{err}");
        }
        Preview {
            child,
            url: line.trim().to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT`: the embedded simulator's API endpoint.
    fn endpoint(&self) -> String {
        self.url[..self.url.find("/_sim/").unwrap()].to_owned()
    }

    fn hit_id(&self) -> String {
        let rest = &self.url[self.url.find("/hit/").unwrap() + 5..];
        rest[..rest.find('?').unwrap()].to_owned()
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sdk(endpoint: &str) -> aws_sdk_mturk::Client {
    let config = aws_sdk_mturk::Config::builder()
        .behavior_version(aws_sdk_mturk::config::BehaviorVersion::latest())
        .region(aws_sdk_mturk::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_mturk::config::Credentials::new(
            "AKIASIMULATOR",
            "simulator-secret",
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_mturk::Client::from_conf(config)
}

/// Every assignment of a HIT through the SDK: (status, worker, answer XML).
fn assignments(sim: &Sim, endpoint: &str, hit_id: &str) -> Vec<(String, String, String)> {
    let client = sdk(endpoint);
    let hit_id = hit_id.to_owned();
    sim.block_on(async move {
        client
            .list_assignments_for_hit()
            .hit_id(hit_id)
            .send()
            .await
            .expect("ListAssignmentsForHIT")
            .assignments()
            .iter()
            .map(|a| {
                (
                    a.assignment_status().unwrap().as_str().to_owned(),
                    a.worker_id().unwrap().to_owned(),
                    a.answer().unwrap().to_owned(),
                )
            })
            .collect()
    })
}

/// (QuestionIdentifier, [FreeText or SelectionIdentifiers]) of an answer document.
fn parse_answers(xml: &str) -> Vec<(String, Vec<String>)> {
    let doc = roxmltree::Document::parse(xml).expect("answer XML");
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("Answer"))
        .map(|a| {
            let mut id = String::new();
            let mut values = Vec::new();
            for c in a.children().filter(|c| c.is_element()) {
                let text = c.text().unwrap_or("").to_owned();
                if c.has_tag_name("QuestionIdentifier") {
                    id = text;
                } else {
                    values.push(text);
                }
            }
            (id, values)
        })
        .collect()
}

fn crowd_project() -> Project {
    let p = Project::new();
    p.write(
        &format!("campaigns/data/{CROWD_CAMPAIGN}.csv"),
        "id,text\ns1,I love this phone\ns2,The battery died after a day\n",
    );
    p.write(
        &format!("campaigns/templates/{CROWD_CAMPAIGN}.html"),
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><script src="https://assets.crowd.aws/crowd-html-elements.js"></script></head>
<body><crowd-form>
  <p>What is the tone of: <b>{{ item.text }}</b></p>
  <crowd-radio-group>
    <crowd-radio-button name="positive">Positive</crowd-radio-button>
    <crowd-radio-button name="negative">Negative</crowd-radio-button>
  </crowd-radio-group>
  <crowd-input name="label" label="One word for it"></crowd-input>
  <crowd-text-area name="comment" label="Why?"></crowd-text-area>
</crowd-form></body></html>
"#,
    );
    p.write(
        &format!("campaigns/{CROWD_CAMPAIGN}.toml"),
        &format!(
            r#"[hit_type]
title = "Tone of a review sentence"
description = "Read one sentence from a product review and say its tone."
keywords = ["sentiment", "text"]
reward = "0.05"
assignment_duration = "5m"
auto_approval_delay = "3d"

[[hit_type.qualifications]]
type = "approval_rate"
comparator = ">="
value = 95

[layout]
html = "templates/{CROWD_CAMPAIGN}.html"
frame_height = 420

[items]
source = "data/{CROWD_CAMPAIGN}.csv"
key = "id"
assignments = 3
lifetime = "7d"
"#
        ),
    );
    p
}

#[test]
fn crowd_form_preview_submits_exactly_the_typed_values() {
    let project = crowd_project();
    let preview = Preview::start(&project, CROWD_CAMPAIGN, ITEM);
    let sim = Sim::plain(); // only for its runtime; the answers live in the preview's simulator
    let browser = Browser::start();
    browser.goto(&preview.url);
    // The preview frames the task with ASSIGNMENT_ID_NOT_AVAILABLE: it cannot be submitted.
    browser.enter_frame("#task");
    browser.find("#crowd-stand-in-note");
    browser.top_frame();
    browser.click("#accept");
    browser.find("#return");
    browser.enter_frame("#task");
    let label = "bad \"battery\", sadly";
    let comment = "Died after one day; caf\u{e9} \u{2615} & <b>not</b> ok";
    browser.click("input[data-crowd-name=negative]");
    browser.type_into("input[data-crowd-name=label]", label);
    browser.type_into("textarea[data-crowd-name=comment]", comment);
    browser.top_frame();
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    save_screenshot(&png);
    browser.enter_frame("#task");
    browser.click("#crowd-submit");
    browser.top_frame();
    let shown = browser.text("#answer-xml");

    let got = assignments(&sim, &preview.endpoint(), &preview.hit_id());
    assert_eq!(got.len(), 1, "{got:?}");
    let (status, worker, xml) = &got[0];
    assert_eq!((status.as_str(), worker.as_str()), ("Submitted", WORKER));
    assert_eq!(
        shown.trim(),
        xml.as_str(),
        "the page shows the stored answer"
    );
    let answers = parse_answers(xml);
    assert_eq!(answers.len(), 1, "{xml}");
    assert_eq!(answers[0].0, "taskAnswers");
    let task: Value = serde_json::from_str(&answers[0].1[0]).unwrap();
    assert_eq!(
        task,
        json!([{
            "positive": {"on": false},
            "negative": {"on": true},
            "label": label,
            "comment": comment,
        }])
    );
}

/// The README's screenshot is refreshed with `TURKFORM_UPDATE_SCREENSHOT=1`; otherwise it goes
/// to the test's temporary directory (so a test run never dirties the work tree).
fn save_screenshot(png: &[u8]) {
    let path = if std::env::var_os("TURKFORM_UPDATE_SCREENSHOT").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/preview.png")
    } else {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("preview.png")
    };
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
}

#[test]
fn question_form_preview_stores_selection_and_free_text() {
    let p = Project::new();
    p.write(
        &format!("campaigns/data/{FORM_CAMPAIGN}.csv"),
        "id,text\ns1,A cat on a mat\ns2,A dog in the fog\n",
    );
    p.write(
        &format!("campaigns/templates/{FORM_CAMPAIGN}.xml"),
        r#"<QuestionForm xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd">
<Overview><Text>{{ item.text }}</Text></Overview>
<Question><QuestionIdentifier>animal</QuestionIdentifier><IsRequired>true</IsRequired>
<QuestionContent><Text>Which animal is named?</Text></QuestionContent>
<AnswerSpecification><SelectionAnswer><StyleSuggestion>radiobutton</StyleSuggestion><Selections>
<Selection><SelectionIdentifier>cat</SelectionIdentifier><Text>Cat</Text></Selection>
<Selection><SelectionIdentifier>dog</SelectionIdentifier><Text>Dog</Text></Selection>
</Selections></SelectionAnswer></AnswerSpecification></Question>
<Question><QuestionIdentifier>where</QuestionIdentifier>
<QuestionContent><Text>Where is it?</Text></QuestionContent>
<AnswerSpecification><FreeTextAnswer/></AnswerSpecification></Question>
</QuestionForm>
"#,
    );
    p.write(
        &format!("campaigns/{FORM_CAMPAIGN}.toml"),
        &format!(
            r#"[hit_type]
title = "Which animal?"
description = "Read one sentence and name the animal."
keywords = ["text"]
reward = "0.03"
assignment_duration = "5m"
auto_approval_delay = "3d"

[layout]
question_form = "templates/{FORM_CAMPAIGN}.xml"

[items]
source = "data/{FORM_CAMPAIGN}.csv"
key = "id"
assignments = 1
lifetime = "1d"
"#
        ),
    );
    let preview = Preview::start(&p, FORM_CAMPAIGN, ITEM);
    let sim = Sim::plain();
    let browser = Browser::start();
    browser.goto(&preview.url);
    browser.find("#question-form");
    browser.click("#accept");
    browser.find("#return");
    browser.click("input[name=animal][value=dog]");
    browser.type_into("textarea[name=where]", "in the fog, \u{e0} l'ouest");
    browser.click("#submit");
    browser.find("#answer-xml");

    let got = assignments(&sim, &preview.endpoint(), &preview.hit_id());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("Submitted", WORKER)
    );
    let xml = &got[0].2;
    assert!(
        xml.contains("<Answer><QuestionIdentifier>animal</QuestionIdentifier><SelectionIdentifier>dog</SelectionIdentifier></Answer>"),
        "{xml}"
    );
    assert_eq!(
        parse_answers(xml),
        vec![
            ("animal".to_owned(), vec!["dog".to_owned()]),
            (
                "where".to_owned(),
                vec!["in the fog, \u{e0} l'ouest".to_owned()]
            ),
        ]
    );
}

/// A task page on 127.0.0.1 that posts back to externalSubmit the way MTurk's docs show, and
/// the query strings it was requested with.
fn serve_external_task() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/task?batch=7", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
            }
            if let Some(target) = request_line.split_whitespace().nth(1) {
                log.lock().unwrap().push(target.to_owned());
            }
            let page = r#"<!DOCTYPE html><html><body>
<form id="f" method="POST"><input type="hidden" name="assignmentId" id="aid">
<label>What do you see? <input name="seen" id="seen"></label>
<label><input type="checkbox" name="tags" value="red" id="red"> red</label>
<label><input type="checkbox" name="tags" value="big" id="big"> big</label>
<button type="submit" id="go">Submit</button></form>
<script>
var q = new URLSearchParams(location.search);
document.getElementById("aid").value = q.get("assignmentId");
document.getElementById("f").action = q.get("turkSubmitTo") + "/mturk/externalSubmit";
if (q.get("assignmentId") === "ASSIGNMENT_ID_NOT_AVAILABLE") document.getElementById("go").disabled = true;
</script></body></html>"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn external_question_posts_back_to_external_submit() {
    let (task_url, seen) = serve_external_task();
    let sim = Sim::start(turkform_sim::SimConfig {
        local_external_urls: true,
        ..turkform_sim::SimConfig::default()
    });
    let client = sim.sdk();
    let question = format!(
        "<ExternalQuestion xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd\"><ExternalURL>{}</ExternalURL><FrameHeight>300</FrameHeight></ExternalQuestion>",
        task_url.replace('&', "&amp;")
    );
    let hit_id = sim.block_on(async move {
        client
            .create_hit()
            .title("Describe a picture")
            .description("Look at one picture and say what is in it.")
            .reward("0.02")
            .assignment_duration_in_seconds(300)
            .lifetime_in_seconds(3600)
            .max_assignments(1)
            .question(question)
            .send()
            .await
            .expect("CreateHIT")
            .hit
            .unwrap()
            .hit_id
            .unwrap()
    });
    let browser = Browser::start();
    browser.goto(&format!("{}/_sim/worker/?workerId={WORKER}", sim.url));
    browser.click("a.hit");
    browser.find("#accept");
    browser.enter_frame("#task");
    browser.find("#go[disabled]");
    browser.top_frame();
    browser.click("#accept");
    browser.find("#return");
    browser.enter_frame("#task");
    browser.type_into("#seen", "a red bus");
    browser.click("#red");
    browser.click("#big");
    browser.click("#go");
    browser.top_frame();
    browser.find("#answer-xml");

    let got = assignments(&sim, &sim.url, &hit_id);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("Submitted", WORKER)
    );
    assert_eq!(
        parse_answers(&got[0].2),
        vec![
            ("seen".to_owned(), vec!["a red bus".to_owned()]),
            ("tags".to_owned(), vec!["red|big".to_owned()]),
        ]
    );
    // The frame got MTurk's four parameters, after the URL's own, in preview and at work.
    let seen = seen.lock().unwrap().clone();
    let aid = sim.block_on(async {
        sim.sdk()
            .list_assignments_for_hit()
            .hit_id(&hit_id)
            .send()
            .await
            .unwrap()
            .assignments()[0]
            .assignment_id()
            .unwrap()
            .to_owned()
    });
    let submit_to = format!("{}/_sim/worker", sim.url)
        .replace(':', "%3A")
        .replace('/', "%2F");
    for assignment in ["ASSIGNMENT_ID_NOT_AVAILABLE", aid.as_str()] {
        let expected = format!(
            "/task?batch=7&assignmentId={assignment}&hitId={hit_id}&turkSubmitTo={submit_to}&workerId={WORKER}"
        );
        assert!(seen.contains(&expected), "{expected} not in {seen:?}");
    }
}

#[test]
fn preview_of_an_unknown_campaign_or_item_fails_without_serving() {
    let project = crowd_project();
    for (args, needle) in [
        (vec!["preview", "nope", "--no-open"], "nope"),
        (
            vec!["preview", CROWD_CAMPAIGN, "no-such-item", "--no-open"],
            "has no item `no-such-item`",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_turkform"))
            .current_dir(project.path())
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run turkform preview");
        crate::common::assert_exit(&out, 1);
        assert!(
            crate::common::stderr(&out).contains(needle),
            "{}",
            crate::common::stderr(&out)
        );
        assert!(out.stdout.is_empty(), "no URL is printed");
    }
    assert!(
        !project.path().join("state").exists(),
        "preview writes no state"
    );
}

/// Issue 15's last step: a HIT that `turkform apply` posted, done in the worker site by a
/// person, comes back through `refresh` into `turkform results` with exactly the typed values
/// (checked against ListAssignmentsForHIT too).
#[test]
fn answers_typed_in_the_worker_site_reach_turkform_results() {
    let project = crowd_project();
    let sim = Sim::plain();
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let hit = sim
        .list_hits()
        .into_iter()
        .find(|h| {
            h.requester_annotation()
                .is_some_and(|a| a.ends_with(&format!(":{ITEM}")))
        })
        .expect("the item's HIT on the simulator");
    let hit_id = hit.hit_id().unwrap().to_owned();

    let browser = Browser::start();
    browser.goto(&format!(
        "{}/_sim/worker/hit/{hit_id}?workerId={WORKER}",
        sim.url
    ));
    browser.click("#accept");
    browser.find("#return");
    browser.enter_frame("#task");
    let label = "flat, \"dead\"";
    let comment = "line one\nline two: caf\u{e9}";
    browser.click("input[data-crowd-name=negative]");
    browser.type_into("input[data-crowd-name=label]", label);
    browser.type_into("textarea[data-crowd-name=comment]", comment);
    browser.click("#crowd-submit");
    browser.top_frame();
    browser.find("#answer-xml");

    let stored = assignments(&sim, &sim.url, &hit_id);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].0, "Submitted");

    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let out = project.run(&sim, &["results", "--format", "jsonl"]);
    assert_exit(&out, 0);
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["hit_id"], hit_id.as_str());
    assert_eq!(row["worker_id"], WORKER);
    assert_eq!(row["item"], ITEM);
    assert_eq!(row["answers"]["label"], label);
    assert_eq!(row["answers"]["comment"], comment);
    assert_eq!(row["answers"]["negative.on"], "true");
    assert_eq!(row["answers"]["positive.on"], "false");
}
