//! `turkform preview CAMPAIGN [ITEM]`: one item's HIT on an embedded, in-memory simulator,
//! opened in the simulator's worker site, so a task page can be tried (and its answer XML seen)
//! before anything is applied anywhere. Nothing is written: no state, no journal, no target.

use turkform_model::{Annotation, QualificationTypeRef, Question, UnixTime};
use turkform_mturk::{
    CreateHitRequest, HitTypeRequest, MturkApi, QuestionRequest, ResolvedRequirement, SdkMturk,
};

use crate::cli::PreviewArgs;
use crate::failure::Failure;
use crate::settings::Resolved;

/// The worker the preview acts as (the worker site's default).
pub const PREVIEW_WORKER: &str = "ALOCALWORKER";

/// Used when a campaign's `ends_at` is past or too close for MTurk to accept.
const FALLBACK_LIFETIME_SECS: u64 = 86_400;

pub async fn run(resolved: &Resolved, args: &PreviewArgs) -> Result<u8, Failure> {
    // The preview's own simulator starts fresh, its clock at the system's: no offset to read.
    let now = UnixTime::now();
    let desired = super::load_desired(resolved, std::slice::from_ref(&args.campaign), now)?;
    let Some(campaign) = desired.campaigns.iter().find(|c| c.name == args.campaign) else {
        return Err(Failure::user_msg(format!(
            "there is no campaign `{}`: run `turkform validate` to list the campaigns",
            args.campaign
        )));
    };
    let item = match &args.item {
        Some(key) => campaign
            .items
            .iter()
            .find(|i| &i.key == key)
            .ok_or_else(|| {
                Failure::user_msg(format!(
                    "campaign `{}` has no item `{key}`: give a value of its key column",
                    campaign.name
                ))
            })?,
        None => campaign.items.first().ok_or_else(|| {
            Failure::user_msg(format!(
                "campaign `{}` has no items to preview: add a row to its data file",
                campaign.name
            ))
        })?,
    };

    let config = turkform_sim::SimConfig {
        local_external_urls: true,
        ..turkform_sim::SimConfig::default()
    };
    let sim = turkform_sim::start("127.0.0.1:0", config)
        .await
        .map_err(|e| {
            Failure::internal(anyhow::Error::new(e).context("cannot start the embedded simulator"))
        })?;
    let endpoint = sim.endpoint_url();
    let api = SdkMturk::connect(&turkform_mturk::ConnectOptions::simulator(&endpoint))
        .await
        .map_err(Failure::internal)?;
    let failed = |what: &str, e: turkform_mturk::ApiError| {
        Failure::user(anyhow::Error::new(e).context(format!(
            "the simulator refused {what} of campaign `{}`; MTurk would too: fix the campaign",
            campaign.name
        )))
    };

    // Custom qualification types exist only in the embedded world, like the HIT itself.
    let mut requirements = Vec::new();
    for q in &campaign.hit_type.qualifications {
        let id = match &q.qualification_type {
            QualificationTypeRef::Id(id) => id.clone(),
            QualificationTypeRef::Custom(name) => {
                let spec = desired
                    .qualification_types
                    .iter()
                    .find(|t| &t.name == name)
                    .ok_or_else(|| {
                        Failure::internal(anyhow::anyhow!(
                            "qualification type `{name}` is referenced but not declared"
                        ))
                    })?;
                api.create_qualification_type(spec)
                    .await
                    .map_err(|e| failed("the qualification type", e))?
            }
        };
        requirements.push(ResolvedRequirement {
            qualification_type_id: id,
            comparator: q.comparator,
            integer_values: q.integer_values.clone(),
            locale_values: q.locale_values.clone(),
            actions_guarded: q.actions_guarded,
        });
    }
    let t = &campaign.hit_type;
    let hit_type_id = api
        .create_hit_type(&HitTypeRequest {
            title: t.title.clone(),
            description: t.description.clone(),
            keywords: t.keywords_string(),
            reward: t.reward,
            assignment_duration_secs: t.assignment_duration_secs,
            auto_approval_delay_secs: t.auto_approval_delay_secs,
            qualification_requirements: requirements,
        })
        .await
        .map_err(|e| failed("the HIT type", e))?;
    let question = match &item.question {
        Question::Xml { xml } => QuestionRequest::Xml(xml.clone()),
        Question::Layout {
            layout_id,
            parameters,
        } => QuestionRequest::Layout {
            layout_id: layout_id.clone(),
            parameters: parameters.clone(),
        },
    };
    let hit = api
        .create_hit(&CreateHitRequest {
            hit_type_id,
            max_assignments: campaign.assignments,
            lifetime_secs: campaign
                .lifetime
                .lifetime_secs_at(now)
                .unwrap_or(FALLBACK_LIFETIME_SECS),
            question,
            // As apply writes it, so answers from the preview read like a campaign's.
            requester_annotation: Annotation::new(&campaign.name, &item.key, 1).render(),
            unique_request_token: item.content_hash.clone(),
        })
        .await
        .map_err(|e| failed("the HIT", e))?;

    let url = format!(
        "{endpoint}/_sim/worker/hit/{}?workerId={PREVIEW_WORKER}",
        hit.hit_id
    );
    eprintln!(
        "preview of item `{}` of campaign `{}`: HIT {} on an embedded simulator (nothing is applied anywhere)",
        item.key, campaign.name, hit.hit_id
    );
    eprintln!(
        "API endpoint {endpoint} (key AKIASIMULATOR / simulator-secret) for ListAssignmentsForHIT; Ctrl-C stops it"
    );
    // The URL alone on stdout, for scripts and tests.
    println!("{url}");
    if !args.no_open {
        open_browser(&url);
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::internal(anyhow::anyhow!("cannot wait for Ctrl-C: {e}")))?;
    eprintln!("stopping; the preview's HIT and answers are gone");
    sim.shutdown().await;
    Ok(0)
}

fn open_browser(url: &str) {
    let spawned = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("could not run xdg-open ({e}): open the URL above yourself, or pass --no-open");
    }
}
