//! The worker site over plain HTTP (the browser tests are in the turkform crate's e2e suite):
//! accept, externalSubmit and return change what the SDK sees, and only as MTurk would.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turkform_sim::SimConfig;

use crate::support::{self, Sim};

/// A raw request to the site: (status, Location header, body).
async fn site(sim: &Sim, method: &str, path: &str, form: &str) -> (u16, String, String) {
    let authority = sim.url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or("")
        .to_owned();
    (status, location, body.to_owned())
}

async fn available(sim: &Sim, hit_id: &str) -> i32 {
    sim.client
        .get_hit()
        .hit_id(hit_id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap()
        .number_of_assignments_available
        .unwrap()
}

/// Accepts the HIT as `worker` and returns the new assignment id.
async fn accept(sim: &Sim, hit_id: &str, worker: &str) -> String {
    let (status, location, body) = site(
        sim,
        "POST",
        &format!("/_sim/worker/hit/{hit_id}/accept"),
        &format!("workerId={worker}"),
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let rest = location.strip_prefix("/_sim/worker/assignment/").unwrap();
    rest[..rest.find('?').unwrap()].to_owned()
}

#[tokio::test]
async fn accept_submit_and_return_change_the_hit_as_mturk_would() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let hit = sim.hit(&type_id, 2, None).await.hit_id.unwrap();
    let (status, _, list) = site(&sim, "GET", "/_sim/worker/?workerId=AW1", "").await;
    assert_eq!(status, 200);
    assert!(list.contains(&hit), "the list shows the assignable HIT");

    let first = accept(&sim, &hit, "AW1").await;
    assert_eq!(available(&sim, &hit).await, 1);
    // Accepting again hands back the same assignment instead of taking a second slot.
    assert_eq!(accept(&sim, &hit, "AW1").await, first);
    let (status, _, _) = site(
        &sim,
        "POST",
        &format!("/_sim/worker/assignment/{first}/return?workerId=AW1"),
        "",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(available(&sim, &hit).await, 2, "a return frees the slot");

    let second = accept(&sim, &hit, "AW1").await;
    let (status, _, body) = site(
        &sim,
        "POST",
        "/_sim/worker/mturk/externalSubmit",
        "assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&label=cat",
    )
    .await;
    assert_eq!(status, 400, "a preview cannot submit: {body}");
    let task = r#"[{"label":"caf\u00e9 & <cat>"}]"#;
    let form = format!(
        "assignmentId={second}&taskAnswers={}",
        task.replace('%', "%25")
            .replace('&', "%26")
            .replace('<', "%3C")
            .replace('>', "%3E")
            .replace(' ', "+")
            .replace('"', "%22")
            .replace('\\', "%5C")
    );
    let (status, _, body) = site(&sim, "POST", "/_sim/worker/mturk/externalSubmit", &form).await;
    assert_eq!(status, 200, "{body}");
    let out = sim
        .client
        .list_assignments_for_hit()
        .hit_id(&hit)
        .send()
        .await
        .unwrap();
    let a = &out.assignments()[0];
    assert_eq!(a.assignment_id(), Some(second.as_str()));
    assert_eq!(a.worker_id(), Some("AW1"));
    assert_eq!(a.assignment_status().unwrap().as_str(), "Submitted");
    assert_eq!(
        a.answer().unwrap(),
        "<?xml version=\"1.0\" encoding=\"ASCII\"?><QuestionFormAnswers xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd\"><Answer><QuestionIdentifier>taskAnswers</QuestionIdentifier><FreeText>[{&quot;label&quot;:&quot;caf\\u00e9 &amp; &lt;cat&gt;&quot;}]</FreeText></Answer></QuestionFormAnswers>"
    );
    // Submitting twice is refused: the assignment is no longer pending.
    let (status, _, _) = site(&sim, "POST", "/_sim/worker/mturk/externalSubmit", &form).await;
    assert_eq!(status, 400);
    let (status, _, body) = site(
        &sim,
        "POST",
        &format!("/_sim/worker/hit/{hit}/accept"),
        "workerId=AW1",
    )
    .await;
    assert_eq!(status, 409, "one worker, one assignment per HIT: {body}");
}

#[tokio::test]
async fn unqualified_and_blocked_workers_cannot_accept() {
    let sim = support::plain().await;
    let type_id = sim
        .client
        .create_hit_type()
        .title("Masters only")
        .description("Needs Masters")
        .reward("0.10")
        .assignment_duration_in_seconds(600)
        .qualification_requirements(
            aws_sdk_mturk::types::QualificationRequirement::builder()
                .qualification_type_id("2F1QJWKUDD8XADTFD2Q0G6UTO95ALH")
                .comparator(aws_sdk_mturk::types::Comparator::Exists)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    let hit = sim.hit(&type_id, 1, None).await.hit_id.unwrap();
    let (_, _, list) = site(&sim, "GET", "/_sim/worker/?workerId=AW1", "").await;
    assert!(list.contains("does not meet Masters Exists"), "{list}");
    let (status, _, body) = site(
        &sim,
        "POST",
        &format!("/_sim/worker/hit/{hit}/accept"),
        "workerId=AW1",
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("does not meet"), "{body}");
    assert_eq!(available(&sim, &hit).await, 1);

    let open_type = sim.hit_type().await;
    let open = sim.hit(&open_type, 1, None).await.hit_id.unwrap();
    sim.client
        .create_worker_block()
        .worker_id("AW2")
        .reason("spam")
        .send()
        .await
        .unwrap();
    let (status, _, body) = site(
        &sim,
        "POST",
        &format!("/_sim/worker/hit/{open}/accept"),
        "workerId=AW2",
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("blocked"), "{body}");
}

#[tokio::test]
async fn loopback_http_external_urls_need_the_local_option() {
    let question = "<ExternalQuestion xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd\"><ExternalURL>http://127.0.0.1:9/task</ExternalURL><FrameHeight>400</FrameHeight></ExternalQuestion>";
    for (local, ok) in [(false, false), (true, true)] {
        let sim = support::start(SimConfig {
            local_external_urls: local,
            ..SimConfig::default()
        })
        .await;
        let type_id = sim.hit_type().await;
        let result = sim
            .client
            .create_hit_with_hit_type()
            .hit_type_id(type_id)
            .lifetime_in_seconds(3600)
            .question(question)
            .send()
            .await;
        assert_eq!(
            result.is_ok(),
            ok,
            "local_external_urls={local}: {result:?}"
        );
        if !ok {
            assert!(support::code(result).ends_with("InvalidParameterValue"));
        }
    }
    // A non-loopback http URL stays refused even with the option.
    let sim = support::start(SimConfig {
        local_external_urls: true,
        ..SimConfig::default()
    })
    .await;
    let type_id = sim.hit_type().await;
    let result = sim
        .client
        .create_hit_with_hit_type()
        .hit_type_id(type_id)
        .lifetime_in_seconds(3600)
        .question(question.replace("127.0.0.1:9", "example.org"))
        .send()
        .await;
    assert!(support::code(result).ends_with("InvalidParameterValue"));
}
