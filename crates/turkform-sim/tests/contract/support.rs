//! A simulator on 127.0.0.1:0 plus SDK clients and raw HTTP for the control endpoints.

use std::time::Duration;

use aws_sdk_mturk::Client;
use aws_sdk_mturk::config::retry::RetryConfig;
use aws_sdk_mturk::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use turkform_sim::{SimConfig, SimHandle};

pub const HTML_NS: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd";
pub const FORM_NS: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd";

pub fn html_question(body: &str) -> String {
    format!(
        "<HTMLQuestion xmlns=\"{HTML_NS}\"><HTMLContent><![CDATA[<!DOCTYPE html><html><body>{body}</body></html>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"
    )
}

pub fn crowd_question() -> String {
    html_question("<crowd-form><crowd-input name=\"label\"></crowd-input></crowd-form>")
}

pub fn form_question(ids: &[&str]) -> String {
    let questions: String = ids
        .iter()
        .map(|id| format!("<Question><QuestionIdentifier>{id}</QuestionIdentifier><QuestionContent><Text>{id}?</Text></QuestionContent><AnswerSpecification><FreeTextAnswer/></AnswerSpecification></Question>"))
        .collect();
    format!("<QuestionForm xmlns=\"{FORM_NS}\">{questions}</QuestionForm>")
}

pub struct Sim {
    pub handle: SimHandle,
    pub url: String,
    pub client: Client,
}

pub async fn start(config: SimConfig) -> Sim {
    let handle = turkform_sim::start("127.0.0.1:0", config)
        .await
        .expect("start simulator");
    let url = handle.endpoint_url();
    let client = client(
        &url,
        turkform_sim::DEFAULT_ACCESS_KEY_ID,
        turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
        true,
    );
    Sim {
        handle,
        url,
        client,
    }
}

pub async fn plain() -> Sim {
    start(SimConfig::default()).await
}

pub fn config_builder(
    url: &str,
    key: &str,
    secret: &str,
    retries: bool,
) -> aws_sdk_mturk::config::Builder {
    let mut b = aws_sdk_mturk::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(key, secret, None, None, "test"));
    if !retries {
        b = b.retry_config(RetryConfig::disabled());
    } else {
        // Fast retries keep the fault tests quick.
        b = b.retry_config(
            RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        );
    }
    b
}

pub fn client(url: &str, key: &str, secret: &str, retries: bool) -> Client {
    Client::from_conf(config_builder(url, key, secret, retries).build())
}

/// One call to a control endpoint through the crate's control client: the status and the JSON.
pub async fn http(url: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    turkform_sim::ControlClient::new(url)
        .unwrap()
        .request(method, path, body.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

impl Sim {
    pub async fn stats(&self) -> Value {
        http(&self.url, "GET", "/_sim/stats", None).await.1
    }

    pub async fn advance(&self, seconds: i64) -> i64 {
        let (status, v) = http(
            &self.url,
            "POST",
            "/_sim/clock",
            Some(serde_json::json!({ "advance_seconds": seconds })),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        v["now"].as_i64().unwrap()
    }

    pub async fn now(&self) -> i64 {
        http(&self.url, "GET", "/_sim/clock", None).await.1["now"]
            .as_i64()
            .unwrap()
    }

    pub async fn work(&self, body: Value) -> Value {
        let (status, v) = http(&self.url, "POST", "/_sim/work", Some(body)).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// A HIT type with a 0.12 reward, 10 min assignments and 1 day auto-approval.
    pub async fn hit_type(&self) -> String {
        self.client
            .create_hit_type()
            .title("Label a photo")
            .description("Say what is in one photo")
            .keywords("image,label")
            .reward("0.12")
            .assignment_duration_in_seconds(600)
            .auto_approval_delay_in_seconds(86_400)
            .send()
            .await
            .expect("CreateHITType")
            .hit_type_id
            .unwrap()
    }

    pub async fn hit(
        &self,
        type_id: &str,
        assignments: i32,
        token: Option<&str>,
    ) -> aws_sdk_mturk::types::Hit {
        self.client
            .create_hit_with_hit_type()
            .hit_type_id(type_id)
            .max_assignments(assignments)
            .lifetime_in_seconds(3600)
            .question(crowd_question())
            .set_unique_request_token(token.map(str::to_owned))
            .requester_annotation(format!("test/{}", token.unwrap_or("none")))
            .send()
            .await
            .expect("CreateHITWithHITType")
            .hit
            .unwrap()
    }
}

use aws_sdk_mturk::error::ProvideErrorMetadata;

/// The TurkErrorCode of a call that must fail.
pub fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, aws_sdk_mturk::error::SdkError<E>>,
) -> String {
    request_error(&result.expect_err("the call should fail")).0
}

/// The RequestError's TurkErrorCode and message of an SDK error.
pub fn request_error<E>(err: &aws_sdk_mturk::error::SdkError<E>) -> (String, String)
where
    E: aws_sdk_mturk::error::ProvideErrorMetadata + std::fmt::Debug,
{
    let service = err
        .as_service_error()
        .unwrap_or_else(|| panic!("expected a service error, got {err:?}"));
    let code = service.code().unwrap_or("").to_owned();
    let message = service.message().unwrap_or("").to_owned();
    // TurkErrorCode is only on the modeled RequestError; read it from the raw body.
    let turk = err
        .raw_response()
        .and_then(|r| r.body().bytes())
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| v["TurkErrorCode"].as_str().map(str::to_owned))
        .unwrap_or(code);
    (turk, message)
}
