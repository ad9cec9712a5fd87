//! SigV4 verification and the wire format as the SDK sees it.

use std::time::{Duration, SystemTime};

use aws_sdk_mturk::error::ProvideErrorMetadata;
use aws_smithy_async::time::TimeSource;

use crate::support;

fn service_code<E: ProvideErrorMetadata + std::fmt::Debug>(
    err: &aws_sdk_mturk::error::SdkError<E>,
) -> (String, String) {
    let e = err
        .as_service_error()
        .unwrap_or_else(|| panic!("service error expected: {err:?}"));
    (
        e.code().unwrap_or("").to_owned(),
        e.message().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_signature() {
    let sim = support::plain().await;
    let bad = support::client(
        &sim.url,
        turkform_sim::DEFAULT_ACCESS_KEY_ID,
        "not-the-secret",
        false,
    );
    let err = bad.get_account_balance().send().await.unwrap_err();
    let (code, message) = service_code(&err);
    assert_eq!(code, "InvalidSignatureException");
    assert_eq!(
        message,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
    assert!(
        sim.stats().await["requests"]
            .get("GetAccountBalance")
            .is_none(),
        "refused calls are not processed"
    );
}

#[tokio::test]
async fn an_unknown_access_key_is_unrecognized() {
    let sim = support::plain().await;
    let bad = support::client(
        &sim.url,
        "AKIAOTHER",
        turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
        false,
    );
    let err = bad.list_hits().send().await.unwrap_err();
    let (code, message) = service_code(&err);
    assert_eq!(code, "UnrecognizedClientException");
    assert_eq!(
        message,
        "The security token included in the request is invalid."
    );
}

#[derive(Debug)]
struct Skewed(Duration);

impl TimeSource for Skewed {
    fn now(&self) -> SystemTime {
        SystemTime::now() - self.0
    }
}

#[tokio::test]
async fn a_date_far_from_real_time_is_expired_even_when_the_virtual_clock_agrees() {
    let sim = support::plain().await;
    // The virtual clock is ahead, but signatures are checked against wall time.
    sim.advance(7 * 86_400).await;
    let conf = support::config_builder(
        &sim.url,
        turkform_sim::DEFAULT_ACCESS_KEY_ID,
        turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
        false,
    )
    .time_source(Skewed(Duration::from_secs(20 * 60)))
    .build();
    let client = aws_sdk_mturk::Client::from_conf(conf);
    let err = client.get_account_balance().send().await.unwrap_err();
    let (code, message) = service_code(&err);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("Signature expired: "), "{message}");
    assert!(message.contains(" is now earlier than "), "{message}");
    // Ten minutes of skew is fine.
    let conf = support::config_builder(
        &sim.url,
        turkform_sim::DEFAULT_ACCESS_KEY_ID,
        turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
        false,
    )
    .time_source(Skewed(Duration::from_secs(10 * 60)))
    .build();
    assert!(
        aws_sdk_mturk::Client::from_conf(conf)
            .get_account_balance()
            .send()
            .await
            .is_ok()
    );
}

async fn raw(sim: &support::Sim, headers: &[(&str, String)], body: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = sim.url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let mut req = format!(
        "POST / HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_lowercase(),
        body.to_owned(),
    )
}

fn signed(sim: &support::Sim, target: &str, body: &str) -> Vec<(&'static str, String)> {
    let host = sim.url.strip_prefix("http://").unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    turkform_sim::sigv4::sign_json_request(
        host,
        target,
        body.as_bytes(),
        turkform_sim::DEFAULT_ACCESS_KEY_ID,
        turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
        "us-east-1",
        now,
    )
}

#[tokio::test]
async fn missing_auth_unknown_operations_and_bad_json_are_answered_like_aws() {
    let sim = support::plain().await;
    let host = sim.url.strip_prefix("http://").unwrap().to_owned();
    let (status, head, body) = raw(
        &sim,
        &[
            ("Host", host.clone()),
            (
                "X-Amz-Target",
                "MTurkRequesterServiceV20170117.ListHITs".into(),
            ),
        ],
        "{}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(head.contains("content-type: application/x-amz-json-1.1"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["__type"]
            .as_str()
            .unwrap()
            .ends_with("MissingAuthenticationTokenException"),
        "{v}"
    );

    let (status, _, body) = raw(
        &sim,
        &signed(&sim, "MTurkRequesterServiceV20170117.Nope", "{}"),
        "{}",
    )
    .await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["__type"]
            .as_str()
            .unwrap()
            .ends_with("#UnknownOperationException"),
        "{v}"
    );
    assert!(v["message"].is_string());

    let (status, _, body) = raw(
        &sim,
        &signed(&sim, "MTurkRequesterServiceV20170117.ListHITs", "{not json"),
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["__type"]
            .as_str()
            .unwrap()
            .ends_with("#SerializationException"),
        "{v}"
    );

    // A member of the wrong type is a SerializationException too.
    let body = r#"{"MaxResults":"ten"}"#;
    let (status, _, out) = raw(
        &sim,
        &signed(&sim, "MTurkRequesterServiceV20170117.ListHITs", body),
        body,
    )
    .await;
    assert_eq!(status, 400);
    assert!(out.contains("SerializationException"), "{out}");

    // A success carries the JSON content type and a request id; errors end with (millis).
    let body = r#"{"HITId":"3NOSUCHHIT"}"#;
    let (status, head, out) = raw(
        &sim,
        &signed(&sim, "MTurkRequesterServiceV20170117.GetHIT", body),
        body,
    )
    .await;
    assert_eq!(status, 400);
    assert!(head.contains("x-amzn-requestid: "), "{head}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["__type"], "RequestError");
    assert_eq!(v["TurkErrorCode"], "AWS.MechanicalTurk.HITDoesNotExist");
    let message = v["Message"].as_str().unwrap();
    let millis = message.rsplit_once(" (").unwrap().1.trim_end_matches(')');
    assert_eq!(millis.len(), 13, "{message}");
    assert!(millis.bytes().all(|b| b.is_ascii_digit()));

    let (status, head, out) = raw(
        &sim,
        &signed(
            &sim,
            "MTurkRequesterServiceV20170117.GetAccountBalance",
            "{}",
        ),
        "{}",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/x-amz-json-1.1"));
    assert!(head.contains("x-amzn-requestid: "));
    assert_eq!(
        out,
        r#"{"AvailableBalance":"10000.00","OnHoldBalance":"0.00"}"#
    );
}
