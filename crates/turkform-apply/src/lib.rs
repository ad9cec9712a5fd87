//! The executor: carries out a [`Plan`] on MTurk through a [`MturkApi`], recording everything in
//! the [`StateStore`], so that a crash, a lost response, a retry or a second run never creates a
//! duplicate HIT and never loses track of one (DESIGN.md §6). Also owns [`refresh`] (reconcile
//! state with MTurk, find orphans by annotation) and [`recover`] (resume a crashed run).
//!
//! - [`calls`](crate::calls) (private): the journaled form of each MTurk call, how it is sent,
//!   and what its outcome changes in the record.
//! - [`engine`](crate::engine) (private): batched intents, concurrent calls, adaptive pacing,
//!   retries, group commit, interruption.
//! - [`limiter`]: the AIMD rate limiter.
//! - [`refresh`](crate::refresh) (private): paged reconciliation and drift.
//! - `workers` (private): blocks, grants and notification settings, read and applied.
//! - [`review`](crate::review) (private): approvals, rejections and bonuses as journaled calls
//!   (their idempotency rules: GetAssignment after InvalidAssignmentState, bonus tokens and the
//!   ListBonusPayments lookup past 23 h), run by the same engine after the HIT actions.
//! - [`ops`]: one entry per command (`plan`, `apply`, `refresh`) owning the sequence and the
//!   saved-plan applicability check.
//!
//! It reports progress through [`Reporter`] and never prints; it must not know TOML, terminals or
//! how a plan is rendered. The caller holds the state lock ([`StateStore::lock`]) around
//! recover + refresh + plan + apply: nothing here takes it.
//!
//! Crash safety rests on one rule: an intent (with everything needed to resend the call
//! identically) is committed before its call is sent, and the call's outcome is committed with
//! the record change it implies in one transaction. A SIGKILL between the two leaves the intent
//! pending; [`recover`] resends it with the same `UniqueRequestToken` (or the same `ExpireAt`,
//! which MTurk also deduplicates) and treats `HitAlreadyExists` as success, except a pending
//! create, which is looked up by its annotation (adopted if it exists, abandoned if not) and
//! never resent: its item may have changed since, and the next plan creates it afresh.

// A library reports through return values and its Reporter/tracing, never by printing: the
// binary owns the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod assignments;
mod calls;
mod engine;
pub mod limiter;
pub mod ops;
mod refresh;
mod review;
mod workers;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use turkform_model::{
    Annotation, Money, QualificationTypeRef, QualificationTypeSpec, Target, UnixTime,
};
use turkform_mturk::{
    ApiError, CreateHitRequest, HitTypeRequest, MturkApi, Page, RemoteAssignment, RemoteHit,
    RemoteQualificationType,
};
use turkform_plan::{Action, CreateHit, Plan, ReviewAction};
use turkform_state::{Batch, IntentKind, IntentOutcome, StateError, StateStore};

pub use refresh::{DriftSeen, RefreshReport};
pub use review::ReviewReport;
pub use tokio_util::sync::CancellationToken as Cancel;
pub use workers::{WorkersReport, WorkersSeen, apply_workers};

use crate::calls::{Call, CreateHitData, HitTypeData, Purpose, RequirementData};
use crate::engine::{Engine, Job, Memory, blocking};

/// Where "now" comes from: the wall clock, or the simulator's virtual clock for target `sim`.
pub trait Clock: Send + Sync {
    fn now(&self) -> UnixTime;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// Receives progress; the binary renders it (progress bar, log lines, JSON).
pub trait Reporter: Send + Sync {
    fn event(&self, e: &ApplyEvent);
}

/// A reporter that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn event(&self, _: &ApplyEvent) {}
}

/// Progress of an apply, a recovery or a refresh.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ApplyEvent {
    /// Apply begins: this many actions in the plan.
    Started {
        total_actions: usize,
    },
    /// One action (or one resumed call) took effect and was recorded.
    ActionDone {
        campaign: String,
        item_key: String,
        kind: &'static str,
        hit_id: Option<String>,
    },
    /// One action failed for good; the run goes on with the others.
    ActionFailed {
        campaign: String,
        item_key: String,
        kind: &'static str,
        message: String,
    },
    /// MTurk throttled: the allowed request rate is now `new_limit` per second.
    Throttled {
        new_limit: f64,
    },
    /// A transient failure; the call is resent with the same token after a backoff.
    Retrying {
        campaign: String,
        item_key: String,
        kind: &'static str,
        attempt: u32,
        message: String,
    },
    /// Recovery found calls a previous run began but never recorded.
    Resumed {
        pending: usize,
    },
    /// A HIT state did not know was recorded (orphan, or found by annotation on recovery).
    Adopted {
        campaign: String,
        item_key: String,
        hit_id: String,
    },
    /// A refresh finished.
    Refreshed {
        listed: usize,
        updated: usize,
        drift: usize,
        orphans: usize,
    },
    /// Apply stopped taking new work because it was interrupted; in-flight calls are finishing.
    Interrupting,
    Finished,
}

/// How to apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub target: Target,
    /// Most requests in flight (`apply.concurrency`, default 16).
    pub concurrency: usize,
    /// Resends of one call after transient failures (throttles are paced, not counted here).
    pub max_retries: u32,
    /// Cancel (Ctrl-C) to stop sending new calls: in-flight ones finish and are recorded, and
    /// the report says `interrupted`.
    pub cancel: CancellationToken,
    /// The project identity (`project` in `turkform.toml`), carried in every annotation and
    /// token; `None` for a project without one (old-format annotations).
    pub project: Option<String>,
    /// How this run is named in the state's run log (`turkform state runs`).
    pub run: RunLabel,
}

/// Who runs what, for the run log: a team sharing one state sees which command of whose ran
/// when and how it ended.
#[derive(Clone, Debug, Default)]
pub struct RunLabel {
    /// The command line, e.g. `turkform apply --auto-approve` (no secrets: flags only).
    pub command: String,
    /// The OS user, empty when unknown.
    pub user: String,
}

impl ApplyOptions {
    pub fn new(target: Target) -> ApplyOptions {
        ApplyOptions {
            target,
            concurrency: 16,
            max_retries: 8,
            cancel: CancellationToken::new(),
            project: None,
            run: RunLabel::default(),
        }
    }
}

/// One action that did not take effect, with MTurk's words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionFailure {
    /// Empty for project-level actions (qualification types).
    pub campaign: String,
    /// The item key; the type name or definition hash for type actions.
    pub item_key: String,
    pub kind: &'static str,
    pub message: String,
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    /// Actions that took effect and were recorded.
    pub done: usize,
    pub failed: Vec<ActionFailure>,
    /// Requests sent, by operation name (every attempt counts).
    pub api_calls: BTreeMap<&'static str, u64>,
    /// Requests MTurk throttled.
    pub throttled: u64,
    /// Resends after throttling or transient failures.
    pub retries: u64,
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Stopped early by [`ApplyOptions::cancel`]; a re-run finishes the work.
    pub interrupted: bool,
    /// Approvals, rejections and bonuses (after the HIT actions).
    pub review: ReviewReport,
    /// Blocks, grants and notification settings.
    #[serde(default)]
    pub workers: WorkersReport,
}

impl ApplyReport {
    pub fn total_api_calls(&self) -> u64 {
        self.api_calls.values().sum()
    }
}

/// What a recovery did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RecoveryReport {
    /// Intents found pending.
    pub pending: usize,
    /// Resumed and recorded.
    pub done: usize,
    /// Found by annotation after their token expired, and recorded without a resend.
    pub adopted: usize,
    pub failed: Vec<ActionFailure>,
    pub api_calls: BTreeMap<&'static str, u64>,
    pub interrupted: bool,
    /// What the resumed review calls did (decisions confirmed, bonuses found paid, ...).
    pub review: ReviewReport,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Why apply, recover or refresh stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "campaign `{campaign}` would commit {total} (already {committed}, plan adds {delta}), over its budget.max_spend of {max_spend}: raise max_spend or reduce items/assignments"
    )]
    OverBudget {
        campaign: String,
        committed: Money,
        delta: Money,
        total: Money,
        max_spend: Money,
    },
    #[error(
        "the plan costs {needed} but the account's available balance is {balance}: add funds or apply fewer changes"
    )]
    InsufficientBalance { needed: Money, balance: Money },
    #[error(
        "the plan has {count} error(s) in its review files (first: {first}); nothing was changed: fix them, then plan again"
    )]
    PlanErrors { count: usize, first: String },
    #[error(
        "the plan was made for target `{plan}` but this state is for `{state}`: plan again for `{state}`"
    )]
    WrongTarget { plan: Target, state: Target },
    #[error(
        "the plan is stale: it was made against state {plan_lineage}@{plan_serial}, the state is now {state_lineage}@{state_serial}; run `turkform plan` again"
    )]
    StalePlan {
        plan_lineage: String,
        plan_serial: u64,
        state_lineage: String,
        state_serial: u64,
    },
    #[error(
        "MTurk shows none of the {recorded} HITs state records (it lists {listed} HITs): this is another endpoint, account or profile than the one they were made on, so nothing was recorded; check --endpoint-url, AWS_PROFILE and the target, or `turkform state rm` HITs deleted on purpose"
    )]
    NoRecordedHitFound { recorded: usize, listed: usize },
    #[error(
        "the plan `{path}` is stale: {why}; make a new plan with `turkform plan --out FILE` and review it"
    )]
    SavedPlanStale { path: String, why: String },
    #[error(
        "the plan `{path}` no longer fits what MTurk shows: {why}; nothing was changed: make a new plan with `turkform plan --out FILE` and review it"
    )]
    SavedPlanDiffers { path: String, why: String },
    #[error("{0}")]
    NotApproved(String),
    #[error("cannot read MTurk")]
    Api(#[source] ApiError),
    #[error("the state store failed")]
    State(#[source] StateError),
}

/// Refuses a plan before anything is sent: a campaign over its budget, or a cost above the
/// account's available balance (one `GetAccountBalance`, skipped when the plan costs nothing).
/// Makes no mutating call.
pub async fn preflight(plan: &Plan, api: &dyn MturkApi) -> Result<(), ApplyError> {
    if let Some(e) = plan.errors.first() {
        return Err(ApplyError::PlanErrors {
            count: plan.errors.len(),
            first: format!("{}:{}: {}", e.file.display(), e.line, e.message),
        });
    }
    for c in &plan.campaigns {
        if let (true, Some(max_spend)) = (c.over_budget, c.max_spend) {
            return Err(ApplyError::OverBudget {
                campaign: c.name.clone(),
                committed: c.committed,
                delta: c.cost_delta,
                total: c.committed + c.cost_delta,
                max_spend,
            });
        }
    }
    let needed = plan.summary.cost_delta;
    if needed > Money::ZERO {
        let balance = read_retrying(|| api.get_account_balance())
            .await
            .map_err(ApplyError::Api)?;
        if balance < needed {
            return Err(ApplyError::InsufficientBalance { needed, balance });
        }
    }
    Ok(())
}

/// Carries out `plan`: qualification types, then HIT types, then every HIT action, then the
/// review (decisions, then bonuses), with intents journaled before each mutating call. Per-item failures are collected in the report;
/// an `Err` means the run itself could not go on (state store failure, wrong or stale plan).
///
/// Call [`recover`] first (and [`refresh`], then plan) under the state lock.
pub async fn apply(
    plan: &Plan,
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let started = Instant::now();
    if plan.target != store.target() {
        return Err(ApplyError::WrongTarget {
            plan: plan.target,
            state: store.target(),
        });
    }
    let serial = store.serial().map_err(ApplyError::State)?;
    if plan.state_lineage != store.lineage() || plan.state_serial != serial {
        return Err(ApplyError::StalePlan {
            plan_lineage: plan.state_lineage.clone(),
            plan_serial: plan.state_serial,
            state_lineage: store.lineage().to_owned(),
            state_serial: serial,
        });
    }
    let total_actions = plan.qualification_types.len()
        + plan
            .campaigns
            .iter()
            .map(|c| c.hit_types.len() + c.actions.len() + c.review.len())
            .sum::<usize>();
    reporter.event(&ApplyEvent::Started { total_actions });
    let counting = Counting::new(api);
    let memory = load_memory(store)?;
    let mut engine = Engine::new(&counting, store, clock, reporter, options, memory);

    // Phase 1: custom qualification types (HIT types refer to their ids).
    let jobs = plan
        .qualification_types
        .iter()
        .filter_map(|a| match &a.action {
            Action::CreateQualificationType { spec } => {
                Some(Job::new(Call::CreateQualificationType {
                    definition_hash: spec.definition_hash(),
                    spec: spec.clone(),
                }))
            }
            Action::UpdateQualificationType {
                qualification_type_id,
                spec,
            } => Some(Job::new(Call::UpdateQualificationType {
                qualification_type_id: qualification_type_id.clone(),
                definition_hash: spec.definition_hash(),
                spec: spec.clone(),
            })),
            _ => None,
        })
        .collect();
    engine.run(jobs).await?;

    // Phase 2: HIT types (HITs and retypes refer to their ids).
    if !engine.tally.interrupted {
        let mut jobs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in &plan.campaigns {
            for a in &c.hit_types {
                let Action::CreateHitType {
                    campaign,
                    definition_hash,
                    spec,
                } = &a.action
                else {
                    continue;
                };
                if engine.memory.hit_types.contains_key(definition_hash)
                    || !seen.insert(definition_hash.clone())
                {
                    engine.tally.done += 1;
                    continue;
                }
                match hit_type_data(spec, &engine.memory) {
                    Ok(request) => jobs.push(Job::new(Call::CreateHitType {
                        definition_hash: definition_hash.clone(),
                        request,
                    })),
                    Err(message) => engine.tally.failed.push(ActionFailure {
                        campaign: campaign.clone(),
                        item_key: definition_hash.clone(),
                        kind: "create-hit-type",
                        message,
                    }),
                }
            }
        }
        engine.run(jobs).await?;
    }

    // Phase 3: every HIT-level action. Adoptions first: the plan may also expire, extend,
    // retype or replace the HIT it adopts, and the outcome of those calls is recorded against
    // the adopted record, which must exist by then (run together, an expire settled before the
    // adoption's GetHIT would be lost, and the adoption would record the HIT as MTurk showed it
    // before the expire).
    if !engine.tally.interrupted {
        let now = clock.now();
        let mut adoptions = Vec::new();
        let mut jobs = Vec::new();
        for c in &plan.campaigns {
            for a in &c.actions {
                match hit_job(&a.action, a.cost_delta, options, now, &engine.memory) {
                    Ok(Some(job)) if matches!(job.call, Call::Adopt { .. }) => adoptions.push(job),
                    Ok(Some(job)) => jobs.push(job),
                    Ok(None) => {}
                    Err((item_key, kind, message)) => {
                        reporter.event(&ApplyEvent::ActionFailed {
                            campaign: c.name.clone(),
                            item_key: item_key.clone(),
                            kind,
                            message: message.clone(),
                        });
                        engine.tally.failed.push(ActionFailure {
                            campaign: c.name.clone(),
                            item_key,
                            kind,
                            message,
                        });
                    }
                }
            }
        }
        engine.run(adoptions).await?;
        if !engine.tally.interrupted {
            engine.run(jobs).await?;
        }
    }

    // Phase 4: approvals, rejections and bonuses, through the same journal and limiter.
    if !engine.tally.interrupted {
        run_review(plan, &mut engine).await?;
    }
    if engine.tally.interrupted {
        reporter.event(&ApplyEvent::Interrupting);
    }
    reporter.event(&ApplyEvent::Finished);
    let tally = engine.tally;
    Ok(ApplyReport {
        done: tally.done,
        failed: tally.failed,
        api_calls: counting.counts(),
        throttled: tally.throttled,
        retries: tally.retries,
        elapsed: started.elapsed(),
        interrupted: tally.interrupted,
        review: tally.review,
        workers: WorkersReport::default(),
    })
}

/// The review phase of [`apply`] on its own: carries out the plan's approvals, rejections,
/// overrides and bonuses (and nothing else) through the journaled engine. For a plan whose HIT
/// actions were applied already; [`apply`] runs this phase itself.
pub async fn apply_review(
    plan: &Plan,
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    options: &ApplyOptions,
) -> Result<ReviewReport, ApplyError> {
    let memory = load_memory(store)?;
    let mut engine = Engine::new(api, store, clock, &NoReporter, options, memory);
    run_review(plan, &mut engine).await?;
    Ok(engine.tally.review)
}

/// Decisions first, then bonuses (a bonus is paid on work already decided), each phase with
/// the engine's concurrency, pacing and journal.
async fn run_review(plan: &Plan, engine: &mut Engine<'_>) -> Result<(), ApplyError> {
    let now = engine.clock.now();
    let mut decisions = Vec::new();
    let mut bonuses = Vec::new();
    for r in plan.campaigns.iter().flat_map(|c| &c.review) {
        if let Some(d) = review::DecisionData::of(&r.action) {
            decisions.push(Job::new(Call::Decide(d)));
        } else if let ReviewAction::SendBonus {
            campaign, identity, ..
        } = &r.action
        {
            let recorded = engine
                .memory
                .bonuses
                .iter()
                .find(|b| b.campaign == *campaign && b.identity == *identity);
            bonuses.extend(review::BonusData::of(&r.action, recorded, now).map(|b| (b, None)));
        }
    }
    let bonuses = review::chain_bonuses(bonuses, &engine.memory.bonuses);
    engine.run(decisions).await?;
    if !engine.tally.interrupted {
        engine.run(bonuses).await?;
    }
    Ok(())
}

/// Reconciles state with MTurk: statuses, counters, expirations, drift, orphans. See
/// [`RefreshReport`]. Call it under the state lock. For a project without an identity;
/// [`ops::refresh`] adopts only the HITs of [`ApplyOptions::project`].
pub async fn refresh(
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
) -> Result<RefreshReport, ApplyError> {
    refresh::refresh(api, store, clock, reporter, None).await
}

/// Tokens are honoured by MTurk for 24 h; past this age (with a margin for clock skew) a
/// pending create is looked up by its annotation before anything is resent.
const TOKEN_TRUST_SECS: i64 = 23 * 3600;

/// Resumes the calls a previous run began but never recorded (run before planning, under the
/// state lock). Creates are never resent: they are looked up by annotation with `ListHITs`,
/// recorded if found and abandoned if not (the plan that follows decides from the current
/// campaign files); expire/extend/add-assignments/retype are resent identically, and so are
/// decisions (a repeat is confirmed with GetAssignment) and bonuses (with their token; past
/// 23 h looked up with ListBonusPayments first).
pub async fn recover(
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<RecoveryReport, ApplyError> {
    let pending = blocking(|| store.pending_intents()).map_err(ApplyError::State)?;
    let mut report = RecoveryReport {
        pending: pending.len(),
        ..RecoveryReport::default()
    };
    if pending.is_empty() {
        return Ok(report);
    }
    reporter.event(&ApplyEvent::Resumed {
        pending: pending.len(),
    });
    let counting = Counting::new(api);
    let now = clock.now();
    let mut batch = Batch::default();
    let mut jobs = Vec::new();
    let mut pending_creates = Vec::new();
    let mut stale_additions = Vec::new();
    for intent in pending {
        let call: Call = match serde_json::from_value(intent.payload.clone()) {
            Ok(c) => c,
            Err(e) => {
                batch.completed.push((
                    intent.id,
                    IntentOutcome::Abandoned {
                        message: format!(
                            "unreadable intent payload ({e}); refresh reconciles what happened"
                        ),
                    },
                ));
                continue;
            }
        };
        let stale = now.secs_since(intent.created_at) >= TOKEN_TRUST_SECS;
        match call {
            // Never resent: the item may have been removed or its question edited since, and
            // a resend would spend money on stale content (within the token window MTurk would
            // even create it). Looked up by annotation instead: adopted if it got there,
            // abandoned if not, and the next plan decides from the current campaign files.
            Call::CreateHit(c) if intent.kind == IntentKind::CreateHit => {
                pending_creates.push((intent.id, c));
            }
            call @ Call::AddAssignments { .. } if stale => {
                stale_additions.push((intent.id, call));
            }
            // An extension whose instant has (nearly) passed would "extend" into the past:
            // MTurk keeps the HIT expired while the record says extended and no longer paused,
            // so the planner would treat it as finished. Dropping it keeps the record as it
            // was; the next plan extends again if the campaign still wants it.
            Call::UpdateExpiration {
                expire_at,
                purpose: calls::Purpose::Extend,
                ..
            } if expire_at.secs_since(now) < 60 => {
                batch.completed.push((
                    intent.id,
                    IntentOutcome::Abandoned {
                        message: format!(
                            "the extension to {expire_at} was not sent before that instant; planned again if still wanted"
                        ),
                    },
                ));
            }
            call => jobs.push(Job::resumed(call, intent.id)),
        }
    }

    let mut memory = load_memory(store)?;
    // Resumed bonuses are chained per assignment like an apply's, and judged by what state
    // records now: the first request time (the token's age) and the payments alike that
    // other rows account for.
    let (bonus_jobs, other_jobs): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|j| matches!(j.call, Call::SendBonus(_)));
    let mut jobs = other_jobs;
    let resumed_bonuses = bonus_jobs
        .into_iter()
        .filter_map(|j| match j.call {
            Call::SendBonus(mut b) => {
                if let Some(r) = memory
                    .bonuses
                    .iter()
                    .find(|r| r.campaign == b.campaign && r.identity == b.identity)
                {
                    b.requested_at = b.requested_at.min(r.requested_at);
                }
                Some((b, j.intent))
            }
            _ => None,
        })
        .collect();
    jobs.extend(review::chain_bonuses(resumed_bonuses, &memory.bonuses));
    if !pending_creates.is_empty() {
        let found = find_by_annotation(&counting, &pending_creates).await?;
        for (id, c) in pending_creates {
            match found.get(&c.annotation) {
                Some(hit) => {
                    let record = c.record(hit);
                    batch.hit_inputs.extend(c.hit_input(hit));
                    batch.upsert_posted.push(c.posted(hit));
                    memory.hits.insert(record.hit_id.clone(), record.clone());
                    batch.completed.push((id, IntentOutcome::Done));
                    batch.remove_orphans.push(record.hit_id.clone());
                    batch.upsert_hits.push(record);
                    report.adopted += 1;
                    reporter.event(&ApplyEvent::Adopted {
                        campaign: c.campaign.clone(),
                        item_key: c.item_key.clone(),
                        hit_id: hit.hit_id.clone(),
                    });
                }
                // Not on MTurk: it never got there. The plan that follows creates it again if
                // the item still wants it, with what the item says now.
                None => batch.completed.push((
                    id,
                    IntentOutcome::Abandoned {
                        message: "not found on MTurk by its annotation; planned again from the campaign files".to_owned(),
                    },
                )),
            }
        }
    }
    // Past the token window a resent CreateAdditionalAssignmentsForHIT is not deduplicated: it
    // would add the assignments (and pay for them) a second time. Read the HIT: if it already
    // has them, the call took effect and is recorded without a resend.
    let mut already_done = 0;
    for (id, call) in stale_additions {
        let Call::AddAssignments { hit_id, to, .. } = &call else {
            continue;
        };
        match get_hit_retrying(&counting, hit_id).await {
            Ok(hit) if hit.max_assignments >= *to => {
                let change = calls::settle(
                    &call,
                    &calls::Output::Done,
                    memory.hits.get(hit_id),
                    &|id| memory.hash_of_hit_type(id),
                    now,
                );
                if let Some(record) = change.hit {
                    memory.hits.insert(record.hit_id.clone(), record.clone());
                    batch.upsert_hits.push(record);
                }
                batch.completed.push((id, IntentOutcome::Done));
                already_done += 1;
                reporter.event(&ApplyEvent::ActionDone {
                    campaign: call.campaign().unwrap_or("").to_owned(),
                    item_key: call.item_key().unwrap_or("").to_owned(),
                    kind: call.label(),
                    hit_id: Some(hit_id.clone()),
                });
            }
            // Not added yet (or the HIT is gone: the resend reports it).
            Ok(_) => jobs.push(Job::resumed(call, id)),
            Err(e) if e.is_hit_does_not_exist() => jobs.push(Job::resumed(call, id)),
            Err(e) => return Err(ApplyError::Api(e)),
        }
    }
    blocking(|| store.commit(&batch)).map_err(ApplyError::State)?;

    let mut engine = Engine::new(&counting, store, clock, reporter, options, memory);
    engine.run(jobs).await?;
    report.done = engine.tally.done + already_done;
    report.failed = engine.tally.failed;
    report.interrupted = engine.tally.interrupted;
    report.review = engine.tally.review;
    report.api_calls = counting.counts();
    Ok(report)
}

/// Scans `ListHITs` for the annotations of `creates`.
async fn find_by_annotation(
    api: &dyn MturkApi,
    creates: &[(turkform_state::IntentId, CreateHitData)],
) -> Result<HashMap<String, RemoteHit>, ApplyError> {
    let wanted: std::collections::HashSet<&str> =
        creates.iter().map(|(_, c)| c.annotation.as_str()).collect();
    let mut found = HashMap::new();
    let mut next = None;
    loop {
        let page = list_hits_retrying(api, next).await?;
        let empty = page.items.is_empty();
        for hit in page.items {
            if let Some(a) = hit.requester_annotation.as_deref()
                && wanted.contains(a)
            {
                found.insert(a.to_owned(), hit);
            }
        }
        match page.next_token {
            Some(t) if !empty && found.len() < wanted.len() => next = Some(t),
            _ => return Ok(found),
        }
    }
}

/// A read, retried through throttling and transient failures with exponential backoff: reads
/// that must finish before anything can be decided (refresh, recovery lookups, the balance
/// check) would otherwise end a whole run on one throttled page.
pub(crate) async fn read_retrying<T, F, Fut>(mut read: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut attempt = 0u32;
    loop {
        match read().await {
            Err(e) if e.is_retryable() && attempt < 10 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
            }
            result => return result,
        }
    }
}

/// One `GetHIT`, retried through throttling and transient failures.
pub(crate) async fn get_hit_retrying(
    api: &dyn MturkApi,
    hit_id: &str,
) -> Result<RemoteHit, ApiError> {
    read_retrying(|| api.get_hit(hit_id)).await
}

/// One `ListHITs` page (100 HITs), retried through throttling and transient failures.
pub(crate) async fn list_hits_retrying(
    api: &dyn MturkApi,
    next: Option<String>,
) -> Result<Page<RemoteHit>, ApplyError> {
    read_retrying(|| api.list_hits(next.clone(), 100))
        .await
        .map_err(ApplyError::Api)
}

fn load_memory(store: &StateStore) -> Result<Memory, ApplyError> {
    let recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    Ok(Memory {
        hits: recorded
            .hits
            .into_iter()
            .map(|h| (h.hit_id.clone(), h))
            .collect(),
        hit_types: recorded
            .hit_types
            .into_iter()
            .map(|t| (t.definition_hash, t.hit_type_id))
            .collect(),
        qualification_types: recorded
            .qualification_types
            .into_iter()
            .map(|q| (q.name, q.qualification_type_id))
            .collect(),
        assignments: recorded
            .assignments
            .into_iter()
            .map(|a| (a.assignment_id.clone(), a))
            .collect(),
        bonuses: recorded.bonuses,
    })
}

/// A HIT type's properties with custom qualification names replaced by their ids.
fn hit_type_data(
    spec: &turkform_model::HitTypeSpec,
    memory: &Memory,
) -> Result<HitTypeData, String> {
    let mut requirements = Vec::new();
    for q in &spec.qualifications {
        let qualification_type_id = match &q.qualification_type {
            QualificationTypeRef::Id(id) => id.clone(),
            QualificationTypeRef::Custom(name) => memory
                .qualification_types
                .get(name)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "qualification type `{name}` has not been created (see the errors above); fix it and apply again"
                    )
                })?,
        };
        requirements.push(RequirementData {
            qualification_type_id,
            comparator: q.comparator,
            integer_values: q.integer_values.clone(),
            locale_values: q.locale_values.clone(),
            actions_guarded: q.actions_guarded,
        });
    }
    Ok(HitTypeData {
        title: spec.title.clone(),
        description: spec.description.clone(),
        keywords: spec.keywords_string(),
        reward: spec.reward,
        assignment_duration_secs: spec.assignment_duration_secs,
        auto_approval_delay_secs: spec.auto_approval_delay_secs,
        requirements,
    })
}

type JobError = (String, &'static str, String);

fn create_data(
    c: &CreateHit,
    cost: Money,
    options: &ApplyOptions,
    now: UnixTime,
    memory: &Memory,
) -> Result<CreateHitData, JobError> {
    let project = options.project.as_deref();
    let fail = |m: String| (c.item_key.clone(), "create", m);
    let hit_type_id = memory
        .hit_types
        .get(&c.hit_type_hash)
        .cloned()
        .ok_or_else(|| {
            fail("its HIT type could not be registered (see the errors above)".to_owned())
        })?;
    let lifetime_secs = c.lifetime.lifetime_secs_at(now).ok_or_else(|| {
        fail("ends_at is less than 30 seconds away: MTurk would refuse the HIT".to_owned())
    })?;
    Ok(CreateHitData {
        campaign: c.campaign.clone(),
        item_key: c.item_key.clone(),
        generation: c.generation,
        hit_type_id,
        hit_type_hash: c.hit_type_hash.clone(),
        content_hash: c.content_hash.clone(),
        max_assignments: c.max_assignments,
        lifetime_secs,
        question: c.question.clone(),
        annotation: Annotation::of_project(project, &c.campaign, &c.item_key, c.generation)
            .render(),
        token: turkform_model::project_request_token(
            project,
            options.target,
            &c.campaign,
            &c.item_key,
            "create",
            c.generation,
        ),
        cost,
        input: c.input.clone(),
    })
}

/// The `ExpireAt` that expires a HIT now. MTurk deduplicates UpdateExpirationForHIT on
/// (HIT, ExpireAt) for a day, so a constant such as 0 would make the second expire of a HIT
/// (pause, resume, then replace) a silent no-op reported as "already processed". An instant
/// fixed when the call is begun is unique per expire yet identical on a resend; an hour back
/// stays in MTurk's past whatever the skew between the clocks, and the reason shifts it by a
/// second so that two different expires within one second stay distinct.
fn expire_now_instant(now: UnixTime, why: turkform_model::ExpiredBy) -> UnixTime {
    use turkform_model::ExpiredBy;
    let shift = match why {
        ExpiredBy::Pause => 0,
        ExpiredBy::Finish => 1,
        ExpiredBy::Removal => 2,
        ExpiredBy::Replace => 3,
    };
    UnixTime(now.0 - 3600 - shift)
}

/// The job (chain) for one HIT-level action.
fn hit_job(
    action: &Action,
    cost: Money,
    options: &ApplyOptions,
    now: UnixTime,
    memory: &Memory,
) -> Result<Option<Job>, JobError> {
    let call = match action {
        Action::CreateHit(c) => Call::CreateHit(create_data(c, cost, options, now, memory)?),
        Action::AdoptHit {
            campaign,
            item_key,
            generation,
            hit_id,
            content_hash,
            hit_type_hash,
        } => Call::Adopt {
            campaign: campaign.clone(),
            item_key: item_key.clone(),
            generation: *generation,
            hit_id: hit_id.clone(),
            content_hash: content_hash.clone(),
            hit_type_hash: hit_type_hash.clone(),
        },
        Action::AddAssignments {
            campaign,
            item_key,
            generation,
            hit_id,
            from,
            to,
        } => Call::AddAssignments {
            campaign: campaign.clone(),
            item_key: item_key.clone(),
            generation: *generation,
            hit_id: hit_id.clone(),
            from: *from,
            to: *to,
            token: turkform_model::project_request_token(
                options.project.as_deref(),
                options.target,
                campaign,
                item_key,
                &format!("add-assignments:{to}"),
                *generation,
            ),
            cost,
        },
        Action::ExtendLifetime {
            campaign,
            item_key,
            hit_id,
            to,
            ..
        } => Call::UpdateExpiration {
            campaign: campaign.clone(),
            item_key: item_key.clone(),
            hit_id: hit_id.clone(),
            // MTurk wants an extension to end at least a minute from now.
            expire_at: (*to).max(now.plus_secs(60)),
            at: now,
            purpose: Purpose::Extend,
        },
        Action::Retype {
            campaign,
            item_key,
            hit_id,
            to_hit_type_hash,
            ..
        } => {
            let hit_type_id = memory
                .hit_types
                .get(to_hit_type_hash)
                .cloned()
                .ok_or_else(|| {
                    (
                        item_key.clone(),
                        "retype",
                        "its new HIT type could not be registered (see the errors above)"
                            .to_owned(),
                    )
                })?;
            Call::Retype {
                campaign: campaign.clone(),
                item_key: item_key.clone(),
                hit_id: hit_id.clone(),
                hit_type_id,
                hit_type_hash: to_hit_type_hash.clone(),
                cost,
            }
        }
        Action::Expire {
            campaign,
            item_key,
            hit_id,
            why,
        } => Call::UpdateExpiration {
            campaign: campaign.clone(),
            item_key: item_key.clone(),
            hit_id: hit_id.clone(),
            expire_at: expire_now_instant(now, *why),
            at: now,
            purpose: Purpose::Expire { why: *why },
        },
        // A follow-up HIT is carried out as a replace: expire the old HIT if still open (as
        // `Replace`, so that the next plan sees it was closed for a newer generation), then
        // create the next generation, chained so that the create waits for the expire.
        Action::Replace {
            old_hit_id,
            expire_old,
            create,
        }
        | Action::FollowUpHit {
            old_hit_id,
            expire_old,
            create,
        } => {
            let create_call = Call::CreateHit(create_data(create, cost, options, now, memory)?);
            if !*expire_old {
                return Ok(Some(Job::new(create_call)));
            }
            let mut job = Job::new(Call::UpdateExpiration {
                campaign: create.campaign.clone(),
                item_key: create.item_key.clone(),
                hit_id: old_hit_id.clone(),
                expire_at: expire_now_instant(now, turkform_model::ExpiredBy::Replace),
                at: now,
                purpose: Purpose::Expire {
                    why: turkform_model::ExpiredBy::Replace,
                },
            });
            job.then = VecDeque::from([create_call]);
            return Ok(Some(job));
        }
        Action::CreateQualificationType { .. }
        | Action::UpdateQualificationType { .. }
        | Action::CreateHitType { .. } => return Ok(None),
    };
    Ok(Some(Job::new(call)))
}

/// Counts requests per operation for the report.
struct Counting<'a> {
    inner: &'a dyn MturkApi,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl<'a> Counting<'a> {
    fn new(inner: &'a dyn MturkApi) -> Counting<'a> {
        Counting {
            inner,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    fn count(&self, op: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(op).or_default() += 1;
        }
    }

    fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl MturkApi for Counting<'_> {
    async fn get_account_balance(&self) -> Result<Money, ApiError> {
        self.count("GetAccountBalance");
        self.inner.get_account_balance().await
    }
    async fn create_qualification_type(
        &self,
        spec: &QualificationTypeSpec,
    ) -> Result<String, ApiError> {
        self.count("CreateQualificationType");
        self.inner.create_qualification_type(spec).await
    }
    async fn update_qualification_type(
        &self,
        id: &str,
        spec: &QualificationTypeSpec,
    ) -> Result<(), ApiError> {
        self.count("UpdateQualificationType");
        self.inner.update_qualification_type(id, spec).await
    }
    async fn list_qualification_types(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<RemoteQualificationType>, ApiError> {
        self.count("ListQualificationTypes");
        self.inner.list_qualification_types(next_token).await
    }
    async fn create_hit_type(&self, request: &HitTypeRequest) -> Result<String, ApiError> {
        self.count("CreateHITType");
        self.inner.create_hit_type(request).await
    }
    async fn create_hit(&self, request: &CreateHitRequest) -> Result<RemoteHit, ApiError> {
        self.count("CreateHITWithHITType");
        self.inner.create_hit(request).await
    }
    async fn create_additional_assignments(
        &self,
        hit_id: &str,
        additional: u32,
        token: &str,
    ) -> Result<(), ApiError> {
        self.count("CreateAdditionalAssignmentsForHIT");
        self.inner
            .create_additional_assignments(hit_id, additional, token)
            .await
    }
    async fn update_expiration(&self, hit_id: &str, expire_at: UnixTime) -> Result<(), ApiError> {
        self.count("UpdateExpirationForHIT");
        self.inner.update_expiration(hit_id, expire_at).await
    }
    async fn update_hit_type_of_hit(
        &self,
        hit_id: &str,
        hit_type_id: &str,
    ) -> Result<(), ApiError> {
        self.count("UpdateHITTypeOfHIT");
        self.inner.update_hit_type_of_hit(hit_id, hit_type_id).await
    }
    async fn get_hit(&self, hit_id: &str) -> Result<RemoteHit, ApiError> {
        self.count("GetHIT");
        self.inner.get_hit(hit_id).await
    }
    async fn get_hit_with_question(
        &self,
        hit_id: &str,
    ) -> Result<(RemoteHit, Option<String>), ApiError> {
        self.count("GetHIT");
        self.inner.get_hit_with_question(hit_id).await
    }
    async fn list_hits(
        &self,
        next_token: Option<String>,
        max_results: i32,
    ) -> Result<Page<RemoteHit>, ApiError> {
        self.count("ListHITs");
        self.inner.list_hits(next_token, max_results).await
    }
    async fn list_assignments_for_hit(
        &self,
        hit_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<RemoteAssignment>, ApiError> {
        self.count("ListAssignmentsForHIT");
        self.inner
            .list_assignments_for_hit(hit_id, next_token)
            .await
    }
    async fn approve_assignment(
        &self,
        assignment_id: &str,
        feedback: Option<&str>,
        override_rejection: bool,
    ) -> Result<(), ApiError> {
        self.count("ApproveAssignment");
        self.inner
            .approve_assignment(assignment_id, feedback, override_rejection)
            .await
    }
    async fn reject_assignment(&self, assignment_id: &str, feedback: &str) -> Result<(), ApiError> {
        self.count("RejectAssignment");
        self.inner.reject_assignment(assignment_id, feedback).await
    }
    async fn get_assignment(
        &self,
        assignment_id: &str,
    ) -> Result<turkform_mturk::RemoteDecision, ApiError> {
        self.count("GetAssignment");
        self.inner.get_assignment(assignment_id).await
    }
    async fn send_bonus(
        &self,
        worker_id: &str,
        assignment_id: &str,
        amount: Money,
        reason: &str,
        token: &str,
    ) -> Result<(), ApiError> {
        self.count("SendBonus");
        self.inner
            .send_bonus(worker_id, assignment_id, amount, reason, token)
            .await
    }
    async fn list_bonus_payments(
        &self,
        assignment_id: &str,
    ) -> Result<Vec<turkform_mturk::BonusPayment>, ApiError> {
        self.count("ListBonusPayments");
        self.inner.list_bonus_payments(assignment_id).await
    }
}
