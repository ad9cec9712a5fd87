//! What the `turkform-apply` benchmark examples share: flags, the simulator they run against,
//! and the generated campaign they post.

// Each example uses a part of this module.
#![allow(dead_code)]

use std::time::Duration;

use turkform_model::{
    CampaignStatus, DesiredCampaign, DesiredItem, DesiredState, HitTypeSpec, Lifetime, Money,
    Question, Target,
};
use turkform_mturk::{ConnectOptions, SdkMturk};
use turkform_sim::{SimConfig, SimHandle};

/// The number after `name` on the command line, or `default`.
pub fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An in-process simulator on 127.0.0.1 with `latency_ms` per request and, when given, a token
/// bucket of `throttle_rps`; and a client for it.
pub async fn simulator(latency_ms: u64, throttle_rps: Option<f64>) -> (SimHandle, SdkMturk) {
    let sim = turkform_sim::start(
        "127.0.0.1:0",
        SimConfig {
            latency: Duration::from_millis(latency_ms),
            throttle_rps,
            ..SimConfig::default()
        },
    )
    .await
    .expect("simulator starts");
    let api = SdkMturk::connect(&ConnectOptions::simulator(sim.endpoint_url()))
        .await
        .expect("client");
    (sim, api)
}

/// `--throttle-rps R`: 0 or less means no throttling.
pub fn throttle(rps: f64) -> Option<f64> {
    (rps > 0.0).then_some(rps)
}

/// How the generated campaign differs between benchmarks.
pub struct Bench {
    pub title: &'static str,
    pub description: &'static str,
    pub assignments: u32,
    pub auto_approval_delay_secs: u64,
    /// Items are crowd-forms with one `answer` input (for simulated work), else a bare `<p>`.
    pub crowd_form: bool,
}

impl Default for Bench {
    fn default() -> Self {
        Bench {
            title: "Bench",
            description: "Bench HITs",
            assignments: 1,
            auto_approval_delay_secs: 0,
            crowd_form: false,
        }
    }
}

/// Campaign `bench` of `items` HTMLQuestion items `item-00000`, ...
pub fn campaign(items: usize, b: &Bench) -> DesiredCampaign {
    let hit_type = HitTypeSpec {
        title: b.title.into(),
        description: b.description.into(),
        keywords: vec![],
        reward: Money::from_cents(1),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: b.auto_approval_delay_secs,
        qualifications: vec![],
    };
    DesiredCampaign {
        name: "bench".into(),
        file: "campaigns/bench.toml".into(),
        status: CampaignStatus::Running,
        hit_type_hash: hit_type.definition_hash(),
        hit_type,
        assignments: b.assignments,
        lifetime: Lifetime::Duration(86_400),
        max_spend: None,
        review: Default::default(),
        items: (0..items)
            .map(|i| {
                let body = if b.crowd_form {
                    format!("<crowd-form><p>{i}</p><crowd-input name=\"answer\"></crowd-input></crowd-form>")
                } else {
                    format!("<p>{i}</p>")
                };
                let question = Question::Xml {
                    xml: format!(
                        "<HTMLQuestion xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd\"><HTMLContent><![CDATA[{body}]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"
                    ),
                };
                DesiredItem {
                    key: format!("item-{i:05}"),
                    content_hash: question.content_hash(),
                    question,
                    row: vec![("id".to_owned(), format!("item-{i:05}"))],
                }
            })
            .collect(),
    }
}

/// A target-`sim` project of `campaigns` alone.
pub fn desired(campaigns: Vec<DesiredCampaign>) -> DesiredState {
    DesiredState {
        target: Target::Sim,
        campaigns,
        qualification_types: vec![],
        inputs_digest: String::new(),
        workers: Default::default(),
    }
}
