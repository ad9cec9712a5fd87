//! One entry per command (`plan`, `apply`, `refresh`): the order in which state and MTurk are
//! read and written, and the check that a saved plan still applies, live here and nowhere else.
//! The binary parses flags, opens the store under the lock, connects, renders and maps errors
//! to exit codes.
//!
//! The sequence of an apply is recover -> refresh -> plan -> approve -> preflight -> execute,
//! for a saved plan as for a fresh one: a saved plan is checked against the state it was made
//! from, then MTurk is read exactly as for a fresh plan, and the plan is refused if what was
//! found asks for anything else than what it says (a restored state copy, HITs made since by
//! another run, a HIT expired by hand).

use turkform_model::{DesiredState, UnixTime};
use turkform_mturk::MturkApi;
use turkform_plan::{Action, Plan, PlanOptions, Summary};
use turkform_state::StateStore;

use crate::engine::blocking;
use crate::{
    ApplyError, ApplyOptions, ApplyReport, Clock, RecoveryReport, RefreshReport, Reporter,
};

/// What `turkform plan` asks for.
pub struct PlanRequest<'a> {
    pub desired: &'a DesiredState,
    /// The project identity: only its HITs (and old-format ones) are adopted.
    pub project: Option<String>,
    /// Campaign names to plan; empty plans all.
    pub only: Vec<String>,
}

/// A plan and what was seen while making it.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    /// `None` when MTurk was not read.
    pub refresh: Option<RefreshReport>,
    /// Calls of an interrupted apply still pending: the next apply finishes them first.
    pub pending_intents: usize,
}

/// `turkform plan`: reads the state and, given `mturk`, refreshes it in memory; never writes
/// the state (no serial bump, no drift recorded), so a saved plan stays valid until something
/// actually changes the state. Needs no lock.
pub async fn plan(
    store: &StateStore,
    mturk: Option<&dyn MturkApi>,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    request: &PlanRequest<'_>,
) -> Result<Planned, ApplyError> {
    let mut recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    let pending_intents = blocking(|| store.pending_intents())
        .map_err(ApplyError::State)?
        .len();
    let refresh = match mturk {
        Some(api) => {
            let mut report = crate::refresh::refresh_in_memory(
                api,
                store,
                &mut recorded,
                clock,
                reporter,
                request.project.as_deref(),
            )
            .await?;
            report.workers = crate::workers::refresh_in_memory(
                api,
                &mut recorded,
                Some(request.desired),
                clock.now(),
            )
            .await?;
            Some(report)
        }
        None => None,
    };
    let plan = turkform_plan::plan(
        request.desired,
        &recorded,
        clock.now(),
        &PlanOptions {
            only_campaigns: request.only.clone(),
        },
    );
    Ok(Planned {
        plan,
        refresh,
        pending_intents,
    })
}

/// A plan file read by the binary, and how to name it in messages.
#[derive(Clone, Debug)]
pub struct SavedPlan {
    pub path: String,
    pub plan: Plan,
}

/// What `turkform apply` asks for.
pub struct ApplyRequest<'a> {
    pub desired: &'a DesiredState,
    /// Campaign names to apply; empty applies all. Ignored with a saved plan (it says its own).
    pub only: Vec<String>,
    pub saved: Option<SavedPlan>,
    /// Read MTurk before planning (`--refresh=false` skips it; a saved plan always reads it).
    pub refresh: bool,
    pub options: ApplyOptions,
}

/// The caller's say before anything is sent (the binary shows the plan and asks on a terminal).
pub trait Approve: Send + Sync {
    /// Called once, only for a plan with changes. `saved`: the plan comes from a plan file and
    /// was reviewed when it was made (no prompt, as in Terraform). `Err` carries why not.
    fn approve(&self, plan: &Plan, saved: bool) -> Result<(), String>;
}

/// What an apply did.
#[derive(Debug)]
pub struct ApplyOutcome {
    pub recovery: RecoveryReport,
    pub refresh: Option<RefreshReport>,
    /// The plan carried out (for a saved plan: the one re-made now, equal to the saved one in
    /// every action).
    pub plan: Plan,
    /// `None` when the plan had no changes (nothing was sent).
    pub report: Option<ApplyReport>,
}

/// `turkform apply [PLANFILE]`. The caller holds the state lock. The run is recorded in the
/// state's run log, with how it ended.
pub async fn apply(
    store: &mut StateStore,
    api: &dyn MturkApi,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    approver: &dyn Approve,
    request: ApplyRequest<'_>,
) -> Result<ApplyOutcome, ApplyError> {
    let label = request.options.run.clone();
    let run = begin_run(store, &label, clock, "apply")?;
    let outcome = apply_logged(store, api, clock, reporter, approver, request).await;
    let ended = match &outcome {
        Ok(o) => match &o.report {
            None => "no changes".to_owned(),
            Some(r) => apply_result(r),
        },
        Err(e) => format!("error: {e}"),
    };
    finish_run(store, run, &ended, clock);
    outcome
}

/// How an apply that ran ended, in the run log's words.
fn apply_result(r: &ApplyReport) -> String {
    let total = r.done + r.failed.len();
    if r.interrupted {
        format!("interrupted: {} of {total} done", r.done)
    } else if r.failed.is_empty() {
        format!("ok: {} done", r.done)
    } else {
        format!("failed: {} of {total} actions", r.failed.len())
    }
}

fn begin_run(
    store: &mut StateStore,
    label: &crate::RunLabel,
    clock: &dyn Clock,
    default_command: &str,
) -> Result<turkform_state::RunId, ApplyError> {
    let command = if label.command.is_empty() {
        format!("turkform {default_command}")
    } else {
        label.command.clone()
    };
    let now = clock.now();
    blocking(|| store.begin_run(&command, &label.user, now)).map_err(ApplyError::State)
}

/// The run log is history: failing to close an entry must not turn a finished apply into a
/// failed one (its calls were made and recorded), so it is only logged. An entry left open
/// reads "running or ended without a word" in `turkform state runs`, as for a killed run.
fn finish_run(store: &mut StateStore, run: turkform_state::RunId, ended: &str, clock: &dyn Clock) {
    // An error text can be long (MTurk's words, a path); the log keeps the first 500 chars.
    let ended: String = ended.chars().take(500).collect();
    let now = clock.now();
    if let Err(e) = blocking(|| store.finish_run(run, &ended, now)) {
        tracing::warn!("could not record the end of this run in the run log: {e}");
    }
}

async fn apply_logged(
    store: &mut StateStore,
    api: &dyn MturkApi,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    approver: &dyn Approve,
    request: ApplyRequest<'_>,
) -> Result<ApplyOutcome, ApplyError> {
    if let Some(saved) = &request.saved {
        check_saved_plan(store, request.desired, saved)?;
    }
    let options = &request.options;
    // What a crashed run began comes first: its calls may have reached MTurk, and planning
    // without them would plan them again.
    let recovery = crate::recover(api, store, clock, reporter, options).await?;
    let refresh = if request.refresh || request.saved.is_some() {
        let mut report =
            crate::refresh::refresh(api, store, clock, reporter, options.project.as_deref())
                .await?;
        report.workers = crate::workers::refresh(api, store, clock, Some(request.desired)).await?;
        Some(report)
    } else {
        None
    };
    let only = match &request.saved {
        Some(saved) => saved.plan.only_campaigns.clone(),
        None => request.only.clone(),
    };
    let recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    let plan = turkform_plan::plan(
        request.desired,
        &recorded,
        clock.now(),
        &PlanOptions {
            only_campaigns: only,
        },
    );
    if let Some(saved) = &request.saved
        && let Some(why) = difference(&saved.plan, &plan)
    {
        return Err(ApplyError::SavedPlanDiffers {
            path: saved.path.clone(),
            why,
        });
    }
    if !plan.has_changes() {
        return Ok(ApplyOutcome {
            recovery,
            refresh,
            plan,
            report: None,
        });
    }
    approver
        .approve(&plan, request.saved.is_some())
        .map_err(ApplyError::NotApproved)?;
    // Ctrl-C at the prompt: nothing has been sent yet, so nothing is.
    if options.cancel.is_cancelled() {
        return Err(ApplyError::NotApproved(
            "interrupted before anything was sent; nothing was changed".to_owned(),
        ));
    }
    crate::preflight(&plan, api).await?;
    // Review calls (approvals, rejections, bonuses) are its last phase.
    let mut report = crate::apply(&plan, api, store, clock, reporter, options).await?;
    if !report.interrupted && !options.cancel.is_cancelled() {
        let workers = crate::workers::apply_workers(&plan, api, store, clock, options).await?;
        report.done += workers.done();
        report.failed.extend(workers.failed.iter().cloned());
        report.workers = workers;
    }
    Ok(ApplyOutcome {
        recovery,
        refresh,
        plan,
        report: Some(report),
    })
}

/// `turkform refresh`: finishes what a crashed run began, then records what MTurk shows. The
/// caller holds the state lock.
pub async fn refresh(
    store: &mut StateStore,
    api: &dyn MturkApi,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<(RecoveryReport, RefreshReport), ApplyError> {
    let run = begin_run(store, &options.run, clock, "refresh")?;
    let outcome = refresh_logged(store, api, clock, reporter, options).await;
    let ended = match &outcome {
        Ok((_, r)) => format!(
            "ok: {} listed, {} updated, {} changed outside turkform",
            r.listed,
            r.updated,
            r.drift.len()
        ),
        Err(e) => format!("error: {e}"),
    };
    finish_run(store, run, &ended, clock);
    outcome
}

async fn refresh_logged(
    store: &mut StateStore,
    api: &dyn MturkApi,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    options: &ApplyOptions,
) -> Result<(RecoveryReport, RefreshReport), ApplyError> {
    let recovery = crate::recover(api, store, clock, reporter, options).await?;
    let mut refresh =
        crate::refresh::refresh(api, store, clock, reporter, options.project.as_deref()).await?;
    refresh.workers = crate::workers::refresh(api, store, clock, None).await?;
    Ok((recovery, refresh))
}

/// A saved plan applies only to the target, state (lineage and serial) and campaign inputs it
/// was made from. Calls an interrupted apply left pending are no reason to refuse it: they are
/// recovered next as in any apply, and the plan made again after that is compared with the
/// saved one (a pending create that reached MTurk is adopted, so a saved plan creating it again
/// is refused; one that never got there is abandoned, and the saved create is what is wanted).
/// Whether a saved plan can still be applied to this state (target, lineage, serial, inputs
/// digest): what needs no MTurk call. [`apply`] runs it first; the binary also runs it before
/// it connects, so that a plan for another target is refused without needing its credentials.
pub fn check_saved_plan(
    store: &StateStore,
    desired: &DesiredState,
    saved: &SavedPlan,
) -> Result<(), ApplyError> {
    let plan = &saved.plan;
    let stale = |why: String| ApplyError::SavedPlanStale {
        path: saved.path.clone(),
        why,
    };
    if plan.target != store.target() {
        return Err(stale(format!(
            "it was made for target {} and this run targets {} (apply it with `--target {}`)",
            plan.target,
            store.target(),
            plan.target
        )));
    }
    let serial = blocking(|| store.serial()).map_err(ApplyError::State)?;
    // A plan made before any state existed has no lineage; it fits only a state that is still
    // empty, so it too can be applied once.
    let fresh_plan_on_fresh_state = plan.state_lineage.is_empty() && serial == 0;
    if store.lineage() != plan.state_lineage && !fresh_plan_on_fresh_state {
        return Err(stale(format!(
            "it was made for another state database (lineage {}, this one is {})",
            plan.state_lineage,
            store.lineage()
        )));
    }
    if serial != plan.state_serial {
        return Err(stale(format!(
            "the state changed since it was made (serial {} then, {serial} now)",
            plan.state_serial
        )));
    }
    if desired.inputs_digest != plan.inputs_digest {
        return Err(stale(
            "the campaign files changed since it was made".to_owned(),
        ));
    }
    Ok(())
}

/// Why `now` (the plan re-made after recovery and refresh) is not the saved plan, if it is not.
/// Instants an action computes from "now" (the end of a resumed lifetime) are not compared:
/// they move with the clock whatever MTurk shows.
fn difference(saved: &Plan, now: &Plan) -> Option<String> {
    if actions(saved) == actions(now) {
        if worker_actions(saved) != worker_actions(now) {
            return Some(format!(
                "it would {}, but from what MTurk shows now it would {}",
                workers_text(&saved.summary),
                workers_text(&now.summary)
            ));
        }
        return None;
    }
    if saved.summary == now.summary {
        return Some(format!(
            "it would {} as planned, but for other HITs or amounts",
            summary_text(&now.summary)
        ));
    }
    Some(format!(
        "it would {}, but from what MTurk shows now it would {}",
        summary_text(&saved.summary),
        summary_text(&now.summary)
    ))
}

fn actions(plan: &Plan) -> Vec<(&str, Action, turkform_model::Money)> {
    let mut out = Vec::new();
    let normal = |a: &Action| match a {
        Action::ExtendLifetime {
            campaign,
            item_key,
            hit_id,
            from,
            ..
        } => Action::ExtendLifetime {
            campaign: campaign.clone(),
            item_key: item_key.clone(),
            hit_id: hit_id.clone(),
            from: *from,
            to: UnixTime(0),
        },
        other => other.clone(),
    };
    for a in &plan.qualification_types {
        out.push(("", normal(&a.action), a.cost_delta));
    }
    for c in &plan.campaigns {
        for a in c.hit_types.iter().chain(&c.actions) {
            out.push((c.name.as_str(), normal(&a.action), a.cost_delta));
        }
    }
    out
}

/// The worker and notification actions of a plan, without their display reasons.
fn worker_actions(plan: &Plan) -> (Vec<&turkform_plan::WorkerAction>, Vec<String>) {
    (
        plan.workers.iter().map(|w| &w.action).collect(),
        plan.notifications
            .iter()
            .map(|n| format!("{}:{:?}:{:?}", n.campaign, n.hit_type_id, n.settings))
            .collect(),
    )
}

/// "block 2 workers, grant 1" from a summary.
fn workers_text(s: &Summary) -> String {
    let parts: Vec<String> = [
        (s.block, "block"),
        (s.unblock, "unblock"),
        (s.grant, "grant to"),
        (s.revoke, "revoke from"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, verb)| format!("{verb} {n} worker{}", if n == 1 { "" } else { "s" }))
    .chain(
        (s.notifications > 0).then(|| format!("set {} notification setting(s)", s.notifications)),
    )
    .collect();
    if parts.is_empty() {
        "change no worker".to_owned()
    } else {
        parts.join(", ")
    }
}

/// "create 20 HITs, expire 3" from a summary; "change nothing" when empty.
fn summary_text(s: &Summary) -> String {
    let parts: Vec<String> = [
        (s.create, "create", "HIT", "HITs"),
        (
            s.adopt,
            "adopt",
            "HIT found on MTurk",
            "HITs found on MTurk",
        ),
        (s.replace, "replace", "HIT", "HITs"),
        (s.follow_up, "post", "follow-up HIT", "follow-up HITs"),
        (s.expire, "expire", "HIT", "HITs"),
        (s.extend, "extend", "HIT", "HITs"),
        (s.retype, "retype", "HIT", "HITs"),
        (s.add_assignments, "add assignments to", "HIT", "HITs"),
        (s.create_hit_types, "create", "HIT type", "HIT types"),
        (
            s.create_qualification_types,
            "create",
            "qualification type",
            "qualification types",
        ),
        (
            s.update_qualification_types,
            "update",
            "qualification type",
            "qualification types",
        ),
    ]
    .into_iter()
    .filter(|(n, ..)| *n > 0)
    .map(|(n, verb, one, many)| format!("{verb} {n} {}", if n == 1 { one } else { many }))
    .collect();
    if parts.is_empty() {
        "change nothing".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use turkform_model::{DesiredState, ExpiredBy, Money, RecordedState, Target, UnixTime};
    use turkform_plan::{Action, CampaignPlan, Plan, PlanOptions, PlannedAction};

    use super::difference;

    fn plan_with(actions: Vec<Action>) -> Plan {
        let desired = DesiredState {
            target: Target::Sim,
            campaigns: Vec::new(),
            qualification_types: Vec::new(),
            inputs_digest: String::new(),
            workers: Default::default(),
        };
        let mut plan = turkform_plan::plan(
            &desired,
            &RecordedState::default(),
            UnixTime(1_700_000_000),
            &PlanOptions::default(),
        );
        plan.summary.expire = actions
            .iter()
            .filter(|a| matches!(a, Action::Expire { .. }))
            .count();
        plan.summary.extend = actions.len() - plan.summary.expire;
        plan.campaigns.push(CampaignPlan {
            name: "c".to_owned(),
            status: None,
            hit_types: Vec::new(),
            actions: actions
                .into_iter()
                .map(|action| PlannedAction {
                    action,
                    reason: String::new(),
                    cost_delta: Money::ZERO,
                })
                .collect(),
            drift: Vec::new(),
            unchanged: 0,
            committed: Money::ZERO,
            cost_delta: Money::ZERO,
            max_spend: None,
            over_budget: false,
            review: Vec::new(),
        });
        plan
    }

    fn extend(to: i64) -> Action {
        Action::ExtendLifetime {
            campaign: "c".to_owned(),
            item_key: "k".to_owned(),
            hit_id: "H1".to_owned(),
            from: UnixTime(1_700_000_000),
            to: UnixTime(to),
        }
    }

    #[test]
    fn a_saved_plan_differs_by_its_actions_not_by_the_instants_now_moves() {
        // A resumed lifetime ends "now + what was left": later at apply time, same action.
        assert_eq!(
            difference(&plan_with(vec![extend(1)]), &plan_with(vec![extend(2)])),
            None
        );
        let expire = Action::Expire {
            campaign: "c".to_owned(),
            item_key: "k".to_owned(),
            hit_id: "H1".to_owned(),
            why: ExpiredBy::Removal,
        };
        let why = difference(&plan_with(vec![extend(1)]), &plan_with(vec![expire])).unwrap();
        assert_eq!(
            why,
            "it would extend 1 HIT, but from what MTurk shows now it would expire 1 HIT"
        );
        let why = difference(&plan_with(vec![extend(1)]), &plan_with(vec![])).unwrap();
        assert!(why.ends_with("it would change nothing"), "{why}");
    }
}
