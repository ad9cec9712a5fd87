//! `turkform status`: progress per campaign, from state as the last refresh left it: items
//! done, assignments by where they stand, and the money committed, paid and left.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde::Serialize;
use turkform_model::{AssignmentStatus, Money, RecordedHit, UnixTime};
use turkform_plan::ReviewAction;
use turkform_state::OpenMode;

use crate::cli::StatusArgs;
use crate::failure::Failure;
use crate::settings::Resolved;

#[derive(Debug, Default, Serialize)]
struct CampaignStatus {
    campaign: String,
    /// Items whose newest HIT has as many submitted-or-approved answers as it asks for (a
    /// rejected answer never counts).
    items_complete: usize,
    /// Items in the campaign file (when it loads), otherwise items state knows.
    items_total: usize,
    hits: usize,
    open: usize,
    expired: usize,
    /// Submitted, awaiting a decision.
    awaiting_review: u64,
    approved: u64,
    rejected: u64,
    /// Accepted by a worker, not yet submitted.
    pending: u64,
    /// Open slots on live HITs.
    available: u64,
    committed: Money,
    /// Rewards and fees of approved assignments.
    paid: Money,
    /// The fee part of `paid`.
    paid_fees: Money,
    /// Bonuses MTurk accepted, with their fees.
    bonuses_paid: Money,
    max_spend: Option<Money>,
    /// `max_spend - committed - bonuses_paid`, when there is a budget.
    budget_left: Option<Money>,
    /// What `turkform plan` would decide and pay now, from state as it is (no refresh); `None`
    /// when the campaign files do not load (or the campaign's file was removed).
    pending_decisions: Option<PendingDecisions>,
}

/// The review actions a plan would make now for one campaign, counted, with their money.
#[derive(Debug, Default, Serialize)]
struct PendingDecisions {
    approve: usize,
    override_rejection: usize,
    reject: usize,
    bonuses: usize,
    /// What the approvals and overrides pay: reward and fee committed with their HITs.
    approvals_pay: Money,
    /// What the rejections leave unpaid of what their HITs committed.
    rejections_withhold: Money,
    /// Bonuses with their fees: new money, counted against the budget.
    bonuses_cost: Money,
    /// Rows of the review files the plan refuses (apply would refuse the plan).
    errors: usize,
}

impl PendingDecisions {
    fn is_empty(&self) -> bool {
        self.approve + self.override_rejection + self.reject + self.bonuses + self.errors == 0
    }

    /// `approve 3 (pays $0.36 committed), reject 1, pay 1 bonus ($0.30 with fees)`.
    fn text(&self) -> String {
        let mut parts = Vec::new();
        if self.approve > 0 {
            parts.push(format!("approve {}", self.approve));
        }
        if self.override_rejection > 0 {
            parts.push(format!("override {} rejection(s)", self.override_rejection));
        }
        if self.approve + self.override_rejection > 0 {
            let last = parts.pop().unwrap_or_default();
            parts.push(format!("{last} (pays {} committed)", self.approvals_pay));
        }
        if self.reject > 0 {
            parts.push(format!(
                "reject {} ({} committed, not paid)",
                self.reject, self.rejections_withhold
            ));
        }
        if self.bonuses > 0 {
            parts.push(format!(
                "pay {} bonus{} ({} with fees)",
                self.bonuses,
                if self.bonuses == 1 { "" } else { "es" },
                self.bonuses_cost
            ));
        }
        if self.errors > 0 {
            parts.push(format!(
                "{} error(s) in the review files (run `turkform plan`)",
                self.errors
            ));
        }
        parts.join(", ")
    }
}

/// The review part of the plan `turkform plan --refresh=false` would make now, per campaign.
fn pending_decisions(
    desired: &turkform_model::DesiredState,
    recorded: &turkform_model::RecordedState,
    now: UnixTime,
) -> HashMap<String, PendingDecisions> {
    let plan = turkform_plan::plan(
        desired,
        recorded,
        now,
        &turkform_plan::PlanOptions::default(),
    );
    let mut out: HashMap<String, PendingDecisions> = HashMap::new();
    for c in &plan.campaigns {
        if c.status.is_none() {
            continue;
        }
        let p = out.entry(c.name.clone()).or_default();
        for r in &c.review {
            match r.action {
                ReviewAction::Approve { .. } => {
                    p.approve += 1;
                    p.approvals_pay += r.moves;
                }
                ReviewAction::OverrideRejection { .. } => {
                    p.override_rejection += 1;
                    p.approvals_pay += r.moves;
                }
                ReviewAction::Reject { .. } => {
                    p.reject += 1;
                    p.rejections_withhold += r.moves;
                }
                ReviewAction::SendBonus { .. } => {
                    p.bonuses += 1;
                    p.bonuses_cost += r.moves;
                }
            }
        }
    }
    for e in &plan.errors {
        out.entry(e.campaign.clone()).or_default().errors += 1;
    }
    out
}

pub fn run(resolved: &Resolved, args: &StatusArgs, now: UnixTime) -> Result<u8, Failure> {
    if !std::path::Path::new("turkform.toml").is_file() {
        // Outside a project, "no HITs in state yet" would be a wrong answer to a right question.
        let here = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".to_owned());
        return Err(Failure::user_msg(format!("no turkform.toml here (in `{here}`)"))
            .hint("run turkform in the project's folder, pass `-C DIR`, or create a project with `turkform init`"));
    }
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let recorded = store.load().map_err(super::state_failure)?;
    let counts = store.assignment_counts().map_err(super::state_failure)?;
    let balance = store.account_balance().map_err(super::state_failure)?;
    let desired = if recorded.hits.is_empty() {
        None
    } else {
        super::results::desired_if_loadable(resolved, now)
    };
    let specs = super::results::hit_type_specs(desired.as_ref());
    // `now` is the target's clock (the simulator's virtual one for target sim).
    let mut pending = desired
        .as_ref()
        .map(|d| pending_decisions(d, &recorded, now))
        .unwrap_or_default();

    let mut per_hit: HashMap<&str, [u64; 3]> = HashMap::new();
    for c in &counts {
        let slot = match c.status {
            AssignmentStatus::Submitted => 0,
            AssignmentStatus::Approved => 1,
            AssignmentStatus::Rejected => 2,
        };
        per_hit.entry(c.hit_id.as_str()).or_default()[slot] += c.count;
    }
    // Only the newest generation of each item counts towards items done.
    let newest = turkform_model::newest_generations(&recorded.hits);
    let goal_done = goal_items_done(desired.as_ref(), &recorded, &newest);
    let mut campaigns: BTreeMap<&str, CampaignStatus> = BTreeMap::new();
    for hit in &recorded.hits {
        let entry = campaigns
            .entry(hit.campaign.as_str())
            .or_insert_with(|| CampaignStatus {
                campaign: hit.campaign.clone(),
                ..CampaignStatus::default()
            });
        entry.committed += hit.committed_cost;
        let [submitted, approved, rejected] = per_hit
            .get(hit.hit_id.as_str())
            .copied()
            .unwrap_or_default();
        entry.awaiting_review += submitted;
        entry.approved += approved;
        entry.rejected += rejected;
        let (paid, fees) = approved_cost(hit, approved, &specs);
        entry.paid += paid;
        entry.paid_fees += fees;
        let live = hit.is_live(now);
        // A worker holding a slot may still submit after the HIT expires; slots open only
        // while it is live.
        entry.pending += u64::from(hit.assignments_pending);
        if live {
            entry.available += u64::from(hit.assignments_available);
        }
    }
    for hit in newest.values() {
        let entry = campaigns
            .get_mut(hit.campaign.as_str())
            .expect("inserted above");
        entry.hits += 1;
        entry.items_total += 1;
        if hit.is_live(now) {
            entry.open += 1;
        } else {
            entry.expired += 1;
        }
        let [submitted, approved, _] = per_hit
            .get(hit.hit_id.as_str())
            .copied()
            .unwrap_or_default();
        let done = match goal_done.get(&(hit.campaign.as_str(), hit.item_key.as_str())) {
            Some(done) => *done,
            None => submitted + approved >= u64::from(hit.max_assignments),
        };
        if done {
            entry.items_complete += 1;
        }
    }
    // Bonuses MTurk accepted (recorded paid), with their fee; pending ones are not money spent
    // yet. They count against the budget as the planner counts them.
    for bonus in recorded.bonuses.iter().filter(|b| b.paid_at.is_some()) {
        if let Some(entry) = campaigns.get_mut(bonus.campaign.as_str()) {
            entry.bonuses_paid += bonus.amount + turkform_model::bonus_fee(bonus.amount);
        }
    }
    if let Some(d) = &desired {
        for c in &d.campaigns {
            if let Some(entry) = campaigns.get_mut(c.name.as_str()) {
                entry.items_total = c.items.len().max(entry.items_total);
                entry.max_spend = c.max_spend;
                entry.budget_left = c
                    .max_spend
                    .map(|m| m - entry.committed - entry.bonuses_paid);
                entry.pending_decisions = pending.remove(c.name.as_str());
            }
        }
    }
    let rows: Vec<CampaignStatus> = campaigns
        .into_values()
        .filter(|c| {
            args.campaign
                .as_ref()
                .is_none_or(|name| &c.campaign == name)
        })
        .collect();
    if let Some(name) = &args.campaign
        && rows.is_empty()
    {
        return Err(Failure::user_msg(format!(
            "state has no HITs of campaign `{name}` for target {}",
            resolved.target
        )));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "target": resolved.target,
            "refreshed_at": recorded.refreshed_at,
            "account_balance": balance.map(|b| serde_json::json!({
                "available": b.available,
                "read_at": b.read_at,
            })),
            "campaigns": rows,
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json).map_err(Failure::internal)?
        )
        .map_err(Failure::internal)?;
        return Ok(0);
    }
    let refreshed = recorded
        .refreshed_at
        .map_or_else(|| "never".to_owned(), |t| t.to_string());
    writeln!(
        out,
        "target {} (last refresh: {refreshed})",
        resolved.target
    )
    .map_err(Failure::internal)?;
    if let Some(b) = balance {
        writeln!(out, "account balance {} (read {})", b.available, b.read_at)
            .map_err(Failure::internal)?;
    }
    if rows.is_empty() {
        writeln!(out, "no HITs in state yet; run `turkform apply`").map_err(Failure::internal)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{:<28} {:>13} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>11}",
        "CAMPAIGN",
        "ITEMS DONE",
        "OPEN",
        "REVIEW",
        "APPROVED",
        "REJECTED",
        "PENDING",
        "AVAIL",
        "COMMITTED",
        "PAID",
        "BONUSES",
        "BUDGET LEFT"
    )
    .map_err(Failure::internal)?;
    for c in &rows {
        writeln!(
            out,
            "{:<28} {:>13} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>11}",
            c.campaign,
            format!("{}/{}", c.items_complete, c.items_total),
            c.open,
            c.awaiting_review,
            c.approved,
            c.rejected,
            c.pending,
            c.available,
            c.committed.to_string(),
            c.paid.to_string(),
            c.bonuses_paid.to_string(),
            c.budget_left
                .map_or_else(|| "-".to_owned(), |m| m.to_string()),
        )
        .map_err(Failure::internal)?;
    }
    let decisions: Vec<(&str, &PendingDecisions)> = rows
        .iter()
        .filter_map(|c| {
            c.pending_decisions
                .as_ref()
                .filter(|p| !p.is_empty())
                .map(|p| (c.campaign.as_str(), p))
        })
        .collect();
    if !decisions.is_empty() {
        writeln!(
            out,
            "\npending in the plan (what `turkform apply` would decide and pay now, from state as of the last refresh):"
        )
        .map_err(Failure::internal)?;
        for (campaign, p) in decisions {
            writeln!(out, "  {campaign}: {}", p.text()).map_err(Failure::internal)?;
        }
    }
    Ok(0)
}

/// For campaigns with `goal = "approved"`: whether each item has `assignments` answers that
/// count (the planner's rule: across the generations asking the newest HIT's question, a
/// rejected answer or a worker's second answer does not count). Other campaigns are absent: an
/// item of theirs is done when its newest HIT has as many answers as it asks for.
fn goal_items_done<'a>(
    desired: Option<&turkform_model::DesiredState>,
    recorded: &'a turkform_model::RecordedState,
    newest: &BTreeMap<(&'a str, &'a str), &'a RecordedHit>,
) -> HashMap<(&'a str, &'a str), bool> {
    let wanted: HashMap<&str, u32> = desired
        .map(|d| {
            d.campaigns
                .iter()
                .filter(|c| c.review.goal == turkform_model::ReviewGoal::Approved)
                .map(|c| (c.name.as_str(), c.assignments))
                .collect()
        })
        .unwrap_or_default();
    if wanted.is_empty() {
        return HashMap::new();
    }
    let question: HashMap<&str, &str> = recorded
        .hits
        .iter()
        .map(|h| (h.hit_id.as_str(), h.content_hash.as_str()))
        .collect();
    let mut answers: HashMap<(&str, &str), Vec<turkform_model::AnswerKey<'_>>> = HashMap::new();
    for a in &recorded.assignments {
        let key = (a.campaign.as_str(), a.item_key.as_str());
        let same_question = newest
            .get(&key)
            .is_some_and(|h| question.get(a.hit_id.as_str()) == Some(&h.content_hash.as_str()));
        if wanted.contains_key(a.campaign.as_str()) && same_question {
            answers
                .entry(key)
                .or_default()
                .push(turkform_model::AnswerKey::of(a));
        }
    }
    newest
        .keys()
        .filter_map(|&key| {
            let want = *wanted.get(key.0)?;
            let counted = answers.get(&key).map_or(0, |keys| {
                turkform_model::counted_answers(keys)
                    .into_iter()
                    .filter(|c| *c)
                    .count()
            });
            Some((key, counted >= want as usize))
        })
        .collect()
}

/// What `approved` assignments of `hit` cost (reward plus fee) and the fee part: exact from
/// the HIT type's reward when the campaign files know it, otherwise the HIT's committed cost
/// per assignment (reward and fee not told apart: the fee part is then left at zero).
fn approved_cost(
    hit: &RecordedHit,
    approved: u64,
    specs: &HashMap<String, turkform_model::HitTypeSpec>,
) -> (Money, Money) {
    let n = i64::try_from(approved).unwrap_or(i64::MAX);
    if n == 0 {
        return (Money::ZERO, Money::ZERO);
    }
    match specs.get(&hit.hit_type_hash) {
        Some(spec) => {
            let fee = turkform_plan::cost::assignment_fee(
                spec.reward,
                hit.max_assignments,
                spec.uses_masters(),
            );
            let each = spec.reward + fee;
            (
                each.checked_mul(n).unwrap_or(Money::from_cents(i64::MAX)),
                fee.checked_mul(n).unwrap_or(Money::from_cents(i64::MAX)),
            )
        }
        None => {
            let per = hit.committed_cost.cents() / i64::from(hit.max_assignments.max(1));
            (Money::from_cents(per.saturating_mul(n)), Money::ZERO)
        }
    }
}
