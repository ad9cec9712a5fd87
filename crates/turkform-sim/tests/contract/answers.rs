//! `POST /_sim/work` answers as MTurk stores them, read back through ListAssignmentsForHIT.

use serde_json::{Value, json};

use crate::support::{self, FORM_NS, Sim};

const ANSWERS_NS: &str = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd";

/// A QuestionForm with a one-of selection, a multi-selection and a free-text question.
fn selection_form() -> String {
    format!(
        "<QuestionForm xmlns=\"{FORM_NS}\">\
<Question><QuestionIdentifier>animal</QuestionIdentifier><QuestionContent><Text>Which animal?</Text></QuestionContent>\
<AnswerSpecification><SelectionAnswer><StyleSuggestion>radiobutton</StyleSuggestion><Selections>\
<Selection><SelectionIdentifier>cat</SelectionIdentifier><Text>Cat</Text></Selection>\
<Selection><SelectionIdentifier>dog</SelectionIdentifier><Text>Dog</Text></Selection>\
</Selections></SelectionAnswer></AnswerSpecification></Question>\
<Question><QuestionIdentifier>colours</QuestionIdentifier><QuestionContent><Text>Colours?</Text></QuestionContent>\
<AnswerSpecification><SelectionAnswer><MinSelectionCount>1</MinSelectionCount><MaxSelectionCount>3</MaxSelectionCount>\
<StyleSuggestion>checkbox</StyleSuggestion><Selections>\
<Selection><SelectionIdentifier>red</SelectionIdentifier><Text>Red</Text></Selection>\
<Selection><SelectionIdentifier>green</SelectionIdentifier><Text>Green</Text></Selection>\
<Selection><SelectionIdentifier>blue</SelectionIdentifier><Text>Blue</Text></Selection>\
</Selections></SelectionAnswer></AnswerSpecification></Question>\
<Question><QuestionIdentifier>why</QuestionIdentifier><QuestionContent><Text>Why?</Text></QuestionContent>\
<AnswerSpecification><FreeTextAnswer/></AnswerSpecification></Question>\
</QuestionForm>"
    )
}

async fn hit_with(sim: &Sim, question: &str, assignments: i32, annotation: &str) -> String {
    let type_id = sim.hit_type().await;
    sim.client
        .create_hit_with_hit_type()
        .hit_type_id(type_id)
        .max_assignments(assignments)
        .lifetime_in_seconds(3600)
        .question(question)
        .requester_annotation(annotation)
        .send()
        .await
        .expect("CreateHITWithHITType")
        .hit
        .unwrap()
        .hit_id
        .unwrap()
}

/// (WorkerId, Answer XML) of every assignment of a HIT, by worker.
async fn answers(sim: &Sim, hit_id: &str) -> Vec<(String, String)> {
    let out = sim
        .client
        .list_assignments_for_hit()
        .hit_id(hit_id)
        .send()
        .await
        .expect("ListAssignmentsForHIT");
    let mut v: Vec<(String, String)> = out
        .assignments()
        .iter()
        .map(|a| {
            assert_eq!(a.assignment_status().map(|s| s.as_str()), Some("Submitted"));
            (
                a.worker_id().unwrap().to_owned(),
                a.answer().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn doc(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"ASCII\"?><QuestionFormAnswers xmlns=\"{ANSWERS_NS}\">{inner}</QuestionFormAnswers>"
    )
}

#[tokio::test]
async fn selection_questions_get_selection_identifiers() {
    let sim = support::plain().await;
    let hit = hit_with(&sim, &selection_form(), 1, "form/1").await;
    sim.work(json!({
        "hit_id": hit,
        "answers": {"animal": "dog", "colours": ["red", "blue"], "why": "caf\u{e9} & <tea>"}
    }))
    .await;
    let got = answers(&sim, &hit).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        doc(
            "<Answer><QuestionIdentifier>animal</QuestionIdentifier><SelectionIdentifier>dog</SelectionIdentifier></Answer>\
<Answer><QuestionIdentifier>colours</QuestionIdentifier><SelectionIdentifier>red</SelectionIdentifier><SelectionIdentifier>blue</SelectionIdentifier></Answer>\
<Answer><QuestionIdentifier>why</QuestionIdentifier><FreeText>caf&#233; &amp; &lt;tea&gt;</FreeText></Answer>"
        )
    );
}

#[tokio::test]
async fn unanswered_selections_take_the_first_identifier() {
    let sim = support::plain().await;
    let hit = hit_with(&sim, &selection_form(), 1, "form/2").await;
    sim.work(json!({ "hit_id": hit })).await;
    let got = answers(&sim, &hit).await;
    assert_eq!(
        got[0].1,
        doc(
            "<Answer><QuestionIdentifier>animal</QuestionIdentifier><SelectionIdentifier>cat</SelectionIdentifier></Answer>\
<Answer><QuestionIdentifier>colours</QuestionIdentifier><SelectionIdentifier>red</SelectionIdentifier></Answer>\
<Answer><QuestionIdentifier>why</QuestionIdentifier><FreeText>simulated answer to why</FreeText></Answer>"
        )
    );
}

#[tokio::test]
async fn impossible_selections_are_refused_before_any_work() {
    let sim = support::plain().await;
    let first = hit_with(&sim, &selection_form(), 1, "form/3").await;
    let second = hit_with(&sim, &selection_form(), 1, "form/4").await;
    for (answers, needle) in [
        (
            json!({"animal": "horse"}),
            "`horse` is not a SelectionIdentifier",
        ),
        (json!({"animal": ["cat", "dog"]}), "got 2 selections"),
    ] {
        // The second HIT's answers are wrong; the first HIT must not be worked either.
        let (status, v) = support::http(
            &sim.url,
            "POST",
            "/_sim/work",
            Some(json!({"answers_by_hit": {second.clone(): answers}})),
        )
        .await;
        assert_eq!(status, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{v}");
    }
    assert!(answers(&sim, &first).await.is_empty());
    let (status, v) = support::http(
        &sim.url,
        "POST",
        "/_sim/work",
        Some(json!({"answers_by_hit": {"no-such-item": {"animal": "cat"}}})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("names no HIT"), "{v}");
}

#[tokio::test]
async fn crowd_forms_get_one_task_answers_json_array() {
    let sim = support::plain().await;
    let hit = hit_with(&sim, &support::crowd_question(), 1, "crowd/1").await;
    sim.work(json!({
        "hit_id": hit,
        "answers": {"label": "cat \"Tom\"", "sentiment": {"positive": {"on": true}}}
    }))
    .await;
    let got = answers(&sim, &hit).await;
    assert_eq!(
        got[0].1,
        doc(
            "<Answer><QuestionIdentifier>taskAnswers</QuestionIdentifier><FreeText>[{&quot;label&quot;:&quot;cat \\&quot;Tom\\&quot;&quot;,&quot;sentiment&quot;:{&quot;positive&quot;:{&quot;on&quot;:true}}}]</FreeText></Answer>"
        )
    );
    // What a results reader sees once the XML is parsed: exactly MTurk's JSON array.
    let xml = roxml_free_text(&got[0].1);
    let parsed: Value = serde_json::from_str(&xml).unwrap();
    assert_eq!(
        parsed,
        json!([{"label": "cat \"Tom\"", "sentiment": {"positive": {"on": true}}}])
    );
}

/// The FreeText of the only Answer, read with an XML parser as a results reader would.
fn roxml_free_text(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name("FreeText"))
        .and_then(|n| n.text())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_worker_can_be_consistently_wrong_per_item() {
    let sim = support::plain().await;
    // Annotations as turkform writes them: the item key is the part after `:k:`.
    let a = hit_with(&sim, &selection_form(), 3, "turkform:1:pets:1:k:img:001").await;
    let b = hit_with(&sim, &selection_form(), 3, "turkform:1:pets:1:k:img:002").await;
    let report = sim
        .work(json!({
            "answers": {"why": "because"},
            "answers_by_hit": {"img:001": {"animal": "cat"}, b.clone(): {"animal": "dog"}},
            "workers": [
                {"worker_id": "AGOOD1"},
                {"worker_id": "AGOOD2"},
                {"worker_id": "AWBAD", "answers": {"animal": "dog", "why": "no idea"},
                 "answers_by_hit": {"img:002": {"animal": "cat"}}}
            ]
        }))
        .await;
    assert_eq!(
        report["assignments"].as_array().unwrap().len(),
        6,
        "{report}"
    );
    let animal = |xml: &str| -> String {
        let s = xml
            .split("<QuestionIdentifier>animal</QuestionIdentifier><SelectionIdentifier>")
            .nth(1)
            .unwrap();
        s[..s.find('<').unwrap()].to_owned()
    };
    let got_a = answers(&sim, &a).await;
    let got_b = answers(&sim, &b).await;
    let workers: Vec<&str> = got_a.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(workers, ["AGOOD1", "AGOOD2", "AWBAD"]);
    let by =
        |got: &[(String, String)]| -> Vec<String> { got.iter().map(|(_, x)| animal(x)).collect() };
    assert_eq!(by(&got_a), ["cat", "cat", "dog"]);
    assert_eq!(by(&got_b), ["dog", "dog", "cat"]);
    assert!(got_a[0].1.contains("<FreeText>because</FreeText>"));
    assert!(got_a[2].1.contains("<FreeText>no idea</FreeText>"));
}

#[tokio::test]
async fn named_workers_and_worker_id_do_not_mix() {
    let sim = support::plain().await;
    let (status, v) = support::http(
        &sim.url,
        "POST",
        "/_sim/work",
        Some(json!({"worker_id": "AONE", "workers": [{"worker_id": "ATWO"}]})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = support::http(
        &sim.url,
        "POST",
        "/_sim/work",
        Some(json!({"workers": [{"worker_id": "lowercase"}]})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
}
