//! Human renderings of plans and reports. The plan is data (`turkform_plan::Plan`); this module
//! only turns it into text, the same structure `--json` prints as is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use turkform_model::time::format_duration;
use turkform_model::{ExpiredBy, Money};
use turkform_plan::{Action, CampaignPlan, Plan, PlannedAction, PlannedReview, ReviewAction};

/// How to draw: colour only on a terminal and never with `NO_COLOR`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// List every item even when a campaign has many actions.
    pub every_item: bool,
}

/// Campaigns with more actions of one kind than this are summarised as counts.
const LIST_LIMIT: usize = 25;

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    pub(crate) fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    pub(crate) fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
}

/// The symbol and the verb of an action, as in DESIGN.md §5.
fn symbol_and_verb(action: &Action) -> (&'static str, &'static str) {
    match action {
        Action::CreateQualificationType { .. } => ("+", "create qualification type"),
        Action::UpdateQualificationType { .. } => ("~", "update qualification type"),
        Action::CreateHitType { .. } => ("+", "create HIT type"),
        Action::CreateHit(_) => ("+", "create"),
        Action::AdoptHit { .. } => ("+", "adopt"),
        Action::AddAssignments { .. } => ("~", "add assignments"),
        Action::ExtendLifetime { .. } => ("~", "extend"),
        Action::Retype { .. } => ("~", "retype"),
        Action::Expire { .. } => ("-", "expire"),
        Action::Replace { .. } => ("-/+", "replace"),
        Action::FollowUpHit { .. } => ("+", "post follow-up"),
    }
}

/// [`paint_symbol`], for the other renderers.
pub fn painted(style: &Style, symbol: &str) -> String {
    paint_symbol(style, symbol)
}

fn paint_symbol(style: &Style, symbol: &str) -> String {
    let padded = format!("{symbol:>3}");
    match symbol {
        "+" => style.green(&padded),
        "~" => style.yellow(&padded),
        _ => style.red(&padded),
    }
}

/// The object and details of an action, for one line.
fn describe(action: &Action) -> String {
    match action {
        Action::CreateQualificationType { spec } => format!("{:?}", spec.name),
        Action::UpdateQualificationType {
            qualification_type_id,
            spec,
        } => format!("{:?} ({qualification_type_id})", spec.name),
        Action::CreateHitType { spec, .. } => format!(
            "{:?}: {} reward, {} per assignment, {} requirement(s)",
            spec.title,
            spec.reward,
            format_duration(spec.assignment_duration_secs),
            spec.qualifications.len()
        ),
        Action::CreateHit(c) => format!(
            "{} ({} assignment{}{})",
            c.item_key,
            c.max_assignments,
            if c.max_assignments == 1 { "" } else { "s" },
            if c.generation > 1 {
                format!(", generation {}", c.generation)
            } else {
                String::new()
            }
        ),
        Action::AdoptHit {
            item_key, hit_id, ..
        } => format!("{item_key} ({})", hit_id),
        Action::AddAssignments {
            item_key, from, to, ..
        } => format!("{item_key} ({from} -> {to})"),
        Action::ExtendLifetime {
            item_key, from, to, ..
        } => format!("{item_key} ({from} -> {to})"),
        Action::Retype {
            item_key, hit_id, ..
        } => format!("{item_key} ({})", hit_id),
        Action::Expire {
            item_key, hit_id, ..
        } => format!("{item_key} ({})", hit_id),
        Action::Replace {
            old_hit_id, create, ..
        } => format!(
            "{} ({} -> generation {})",
            create.item_key, old_hit_id, create.generation
        ),
        Action::FollowUpHit {
            old_hit_id, create, ..
        } => format!(
            "{} (HIT of {} assignment{} after {old_hit_id}, generation {})",
            create.item_key,
            create.max_assignments,
            if create.max_assignments == 1 { "" } else { "s" },
            create.generation
        ),
    }
}

fn cost_text(style: &Style, cost: Money) -> String {
    if cost == Money::ZERO {
        String::new()
    } else if cost.cents() > 0 {
        style.bold(&format!("+{cost}"))
    } else {
        format!("{cost}")
    }
}

fn write_action(out: &mut String, style: &Style, planned: &PlannedAction) {
    let (symbol, verb) = symbol_and_verb(&planned.action);
    let destructive = matches!(
        planned.action,
        Action::Expire { .. } | Action::Replace { .. }
    );
    let verb = if destructive {
        style.red(verb)
    } else {
        verb.to_owned()
    };
    let cost = cost_text(style, planned.cost_delta);
    let _ = write!(
        out,
        "  {} {verb} {}  {}",
        paint_symbol(style, symbol),
        describe(&planned.action),
        style.dim(&format!("# {}", planned.reason))
    );
    if !cost.is_empty() {
        let _ = write!(out, "  {cost}");
    }
    out.push('\n');
}

/// Groups actions by (symbol, verb, reason) for summarised campaigns.
fn write_summarised(out: &mut String, style: &Style, actions: &[PlannedAction]) {
    let mut groups: BTreeMap<(usize, &'static str, &'static str, &str), (usize, Money)> =
        BTreeMap::new();
    for (order, a) in actions.iter().enumerate() {
        let (symbol, verb) = symbol_and_verb(&a.action);
        let entry = groups
            .entry((order_of(&a.action), symbol, verb, a.reason.as_str()))
            .or_insert((0, Money::ZERO));
        let _ = order;
        entry.0 += 1;
        entry.1 += a.cost_delta;
    }
    for ((_, symbol, verb, reason), (count, cost)) in groups {
        let destructive = symbol == "-" || symbol == "-/+";
        let noun = if count == 1 { "HIT" } else { "HITs" };
        let verb_text = format!("{verb} {count} {noun}");
        let verb_text = if destructive {
            style.red(&verb_text)
        } else {
            verb_text
        };
        let cost = cost_text(style, cost);
        let _ = write!(
            out,
            "  {} {verb_text}  {}",
            paint_symbol(style, symbol),
            style.dim(&format!("# {reason}"))
        );
        if !cost.is_empty() {
            let _ = write!(out, "  {cost}");
        }
        out.push('\n');
    }
}

fn order_of(action: &Action) -> usize {
    match action {
        Action::CreateQualificationType { .. } => 0,
        Action::UpdateQualificationType { .. } => 1,
        Action::CreateHitType { .. } => 2,
        Action::AdoptHit { .. } => 3,
        Action::CreateHit(_) => 4,
        Action::AddAssignments { .. } => 5,
        Action::ExtendLifetime { .. } => 6,
        Action::Retype { .. } => 7,
        Action::Replace { .. } => 8,
        Action::Expire { .. } => 9,
        Action::FollowUpHit { .. } => 10,
    }
}

fn campaign_header(style: &Style, c: &CampaignPlan) -> String {
    let status = match c.status {
        Some(s) => s.as_str().to_owned(),
        None => style.red("campaign file removed"),
    };
    format!("{} ({status})", style.bold(&format!("Campaign {}", c.name)))
}

/// The whole human plan.
pub fn plan_human(plan: &Plan, style: &Style) -> String {
    let mut out = String::new();
    if !plan.qualification_types.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Qualification types"));
        for a in &plan.qualification_types {
            write_action(&mut out, style, a);
        }
        out.push('\n');
    }
    for c in &plan.campaigns {
        if c.actions.is_empty()
            && c.hit_types.is_empty()
            && c.drift.is_empty()
            && c.review.is_empty()
        {
            continue;
        }
        let _ = writeln!(out, "{}", campaign_header(style, c));
        for a in &c.hit_types {
            write_action(&mut out, style, a);
        }
        let many = !style.every_item && c.actions.len() > LIST_LIMIT;
        if many {
            write_summarised(&mut out, style, &c.actions);
            let _ = writeln!(
                out,
                "  {}",
                style.dim(&format!(
                    "({} actions summarised; -v lists every item)",
                    c.actions.len()
                ))
            );
        } else {
            for a in &c.actions {
                write_action(&mut out, style, a);
            }
        }
        write_review(&mut out, style, &c.review);
        for d in &c.drift {
            let _ = writeln!(
                out,
                "  {} {} ({}): changed outside turkform: {}",
                style.yellow("  !"),
                d.item_key,
                d.hit_id,
                drift_text(&d.drift)
            );
        }
        if c.unchanged > 0 {
            let _ = writeln!(
                out,
                "    {}",
                style.dim(&format!("{} unchanged", c.unchanged))
            );
        }
        let mut money = format!("cost {}", signed(c.cost_delta));
        let _ = write!(money, ", committed so far {}", c.committed);
        if let Some(max) = c.max_spend {
            let _ = write!(money, ", budget {max}");
        }
        if c.over_budget {
            let _ = writeln!(
                out,
                "    {}",
                style.red(&format!("{money}: OVER BUDGET, apply will refuse"))
            );
        } else {
            let _ = writeln!(out, "    {money}");
        }
        out.push('\n');
    }
    crate::render_workers::write(&mut out, style, plan);
    for e in &plan.errors {
        let _ = writeln!(
            out,
            "{} {}:{}: {}",
            style.red("error:"),
            e.file.display(),
            e.line,
            e.message
        );
        if let Some(h) = &e.hint {
            let _ = writeln!(out, "  hint: {h}");
        }
    }
    if !plan.errors.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            style.red(&format!(
                "{} error(s) in the review files: apply will refuse this plan",
                plan.errors.len()
            ))
        );
    }
    out.push_str(&summary_line(plan, style));
    out.push('\n');
    out
}

/// The plan's warnings, for stderr: diagnostics, not the plan itself (DESIGN.md section 4).
pub fn print_warnings(plan: &Plan) {
    let style = Style {
        color: crate::settings::stderr_color(),
        every_item: false,
    };
    for w in &plan.warnings {
        let place = match (&w.campaign, &w.item_key) {
            (Some(c), Some(k)) => format!("{c}/{k}: "),
            (Some(c), None) => format!("{c}: "),
            _ => String::new(),
        };
        eprintln!("{} {place}{}", style.yellow("warning:"), w.message);
    }
}

fn signed(m: Money) -> String {
    if m.cents() >= 0 {
        format!("+{m}")
    } else {
        m.to_string()
    }
}

pub fn drift_text(d: &turkform_model::Drift) -> String {
    use turkform_model::Drift;
    match d {
        Drift::Expired { was, now } => format!("expired early (expiration {was} -> {now})"),
        Drift::Extended { was, now } => format!("extended ({was} -> {now})"),
        Drift::Retyped { was, now } => format!("moved to another HIT type ({was} -> {now})"),
        Drift::AssignmentsChanged { was, now } => format!("assignments changed ({was} -> {now})"),
        Drift::Deleted => "deleted from MTurk".to_owned(),
    }
}

/// `Plan: 12 to create, 1 to extend, ... Cost: $5.47`, plus a loud line for destructive plans.
pub fn summary_line(plan: &Plan, style: &Style) -> String {
    let s = &plan.summary;
    if !plan.has_changes() {
        let mut line = style.green("No changes.");
        line.push_str(" MTurk matches the campaigns.");
        return line;
    }
    let mut parts = Vec::new();
    let mut push = |n: usize, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    push(
        s.create_qualification_types,
        "qualification type(s) to create",
    );
    push(
        s.update_qualification_types,
        "qualification type(s) to update",
    );
    push(s.create_hit_types, "HIT type(s) to create");
    push(s.create, "to create");
    push(s.adopt, "to adopt");
    push(s.add_assignments, "to add assignments");
    push(s.extend, "to extend");
    push(s.retype, "to retype");
    push(s.replace, "to replace");
    push(s.follow_up, "follow-up HIT(s) to post");
    push(s.expire, "to expire");
    push(s.approve, "to approve");
    push(s.override_rejection, "rejection(s) to override");
    push(s.reject, "to reject");
    push(s.bonus, "bonus(es) to pay");
    crate::render_workers::summary_parts(plan, &mut push);
    let mut line = format!(
        "{} {}. Cost: {}",
        style.bold("Plan:"),
        parts.join(", "),
        style.bold(&s.cost_delta.to_string())
    );
    if s.destructive > 0 {
        let _ = write!(
            line,
            "\n{}",
            style.red(&format!(
                "!! {} HIT(s) will be closed to workers (expire/replace). Read the plan above.",
                s.destructive
            ))
        );
    }
    line
}

fn review_symbol(action: &ReviewAction) -> &'static str {
    match action {
        ReviewAction::Approve { .. } | ReviewAction::OverrideRejection { .. } => "✓",
        ReviewAction::Reject { .. } => "✗",
        ReviewAction::SendBonus { .. } => "$",
    }
}

fn assignments(n: usize) -> String {
    if n == 1 {
        "1 assignment".to_owned()
    } else {
        format!("{n} assignments")
    }
}

/// Review actions grouped by what they do and why: 5,000 approvals after `approve_after` are
/// one line; `-v` lists every assignment under its group.
fn write_review(out: &mut String, style: &Style, review: &[PlannedReview]) {
    // Decisions-file rows each have their own line number: they group by verb and file.
    let group_of = |r: &PlannedReview| -> String {
        match &r.basis {
            turkform_plan::ReviewBasis::File { file, .. } => {
                if matches!(r.action, ReviewAction::SendBonus { resend: false, .. }) {
                    format!("(bonuses file {})", file.display())
                } else if matches!(r.action, ReviewAction::SendBonus { .. }) {
                    "(pending from an earlier apply: confirmed or resent with the same token)"
                        .to_owned()
                } else {
                    format!("(decisions file {})", file.display())
                }
            }
            _ => r.reason.clone(),
        }
    };
    let mut groups: Vec<(&'static str, String, Vec<&PlannedReview>)> = Vec::new();
    for r in review {
        let key = (r.action.verb(), group_of(r));
        match groups.iter_mut().find(|g| g.0 == key.0 && g.1 == key.1) {
            Some(g) => g.2.push(r),
            None => groups.push((key.0, key.1, vec![r])),
        }
    }
    for (verb, why, rows) in groups {
        let moves: Money = rows.iter().map(|r| r.moves).sum();
        let money = match rows[0].action {
            ReviewAction::SendBonus { .. } => format!("{moves} with fees"),
            ReviewAction::Reject { .. } => format!("{moves} committed, not paid"),
            _ => format!("pays {moves} committed"),
        };
        let _ = writeln!(
            out,
            "  {} {verb} {} {why}  {}",
            paint_symbol(style, if verb == "reject" { "-" } else { "~" }),
            assignments(rows.len()),
            style.dim(&money)
        );
        if style.every_item || rows.len() == 1 && !why.starts_with("of ") {
            for r in &rows {
                let detail = match &r.action {
                    ReviewAction::Approve { feedback, .. }
                    | ReviewAction::OverrideRejection { feedback, .. } => feedback
                        .as_ref()
                        .map(|f| format!(" feedback {f:?}"))
                        .unwrap_or_default(),
                    ReviewAction::Reject { feedback, .. } => format!(" feedback {feedback:?}"),
                    ReviewAction::SendBonus {
                        worker_id,
                        amount,
                        reason,
                        identity,
                        assignment_id,
                        ..
                    } => {
                        // The row's Id, when it has one, tells two bonuses of one assignment apart.
                        let id = identity
                            .strip_prefix(assignment_id.as_str())
                            .and_then(|rest| rest.strip_prefix('/'))
                            .map(|id| format!(" (Id {id})"))
                            .unwrap_or_default();
                        format!("{id} to {worker_id}: {amount} ({reason:?})")
                    }
                };
                let worker = match &r.action {
                    ReviewAction::Approve { worker_id, .. }
                    | ReviewAction::OverrideRejection { worker_id, .. }
                    | ReviewAction::Reject { worker_id, .. } => format!(" of {worker_id}"),
                    ReviewAction::SendBonus { .. } => String::new(),
                };
                let at = match &r.basis {
                    turkform_plan::ReviewBasis::File { file, line } => {
                        format!("  {}", style.dim(&format!("{}:{line}", file.display())))
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "      {} {}{worker}{detail}{at}",
                    review_symbol(&r.action),
                    r.action.assignment_id()
                );
            }
        }
    }
}

/// Why a HIT was expired, for `state show`.
pub fn expired_by_text(e: ExpiredBy) -> &'static str {
    match e {
        ExpiredBy::Pause => "paused",
        ExpiredBy::Finish => "campaign finished",
        ExpiredBy::Removal => "removed",
        ExpiredBy::Replace => "replaced",
    }
}

#[cfg(test)]
mod tests {
    use turkform_model::{CampaignStatus, DesiredState, RecordedState, Target, UnixTime};
    use turkform_plan::{CampaignPlan, PlanOptions, PlannedReview, ReviewAction, ReviewBasis};

    use super::*;

    fn approve(i: usize) -> PlannedReview {
        PlannedReview {
            action: ReviewAction::Approve {
                campaign: "street".into(),
                assignment_id: format!("AS{i:05}"),
                hit_id: "H".into(),
                worker_id: format!("W{}", i % 7),
                feedback: None,
            },
            basis: ReviewBasis::ApproveAfter { secs: 86_400 },
            reason: "submitted more than 1d ago (approve_after)".into(),
            moves: Money::from_cents(14),
            cost_delta: Money::ZERO,
        }
    }

    fn review_plan() -> Plan {
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
            UnixTime(1_800_000_000),
            &PlanOptions::default(),
        );
        let mut review: Vec<PlannedReview> = (0..5000).map(approve).collect();
        for i in 0..6 {
            review.push(PlannedReview {
                action: ReviewAction::Reject {
                    campaign: "street".into(),
                    assignment_id: format!("ASBAD{i}"),
                    hit_id: "H".into(),
                    worker_id: "A1B2C3".into(),
                    feedback: "Most answers on checked items were wrong".into(),
                },
                basis: ReviewBasis::KnownAnswers {
                    worker_id: "A1B2C3".into(),
                    right: 2,
                    judged: 6,
                },
                reason: "of A1B2C3: accuracy 0.33 on 6 known answers".into(),
                moves: Money::from_cents(14),
                cost_delta: Money::ZERO,
            });
        }
        review.push(PlannedReview {
            action: ReviewAction::SendBonus {
                campaign: "street".into(),
                assignment_id: "AS00001".into(),
                worker_id: "W1".into(),
                amount: Money::from_cents(50),
                reason: "Careful work".into(),
                identity: "AS00001".into(),
                token: "t".into(),
                resend: false,
            },
            basis: ReviewBasis::File {
                file: "bonuses/street.csv".into(),
                line: 2,
            },
            reason: "bonus row bonuses/street.csv:2".into(),
            moves: Money::from_cents(60),
            cost_delta: Money::from_cents(60),
        });
        plan.summary.approve = 5000;
        plan.summary.reject = 6;
        plan.summary.bonus = 1;
        plan.summary.cost_delta = Money::from_cents(60);
        plan.campaigns.push(CampaignPlan {
            name: "street".into(),
            status: Some(CampaignStatus::Running),
            hit_types: Vec::new(),
            actions: Vec::new(),
            drift: Vec::new(),
            unchanged: 5000,
            committed: Money::from_cents(70_000),
            cost_delta: Money::from_cents(60),
            max_spend: None,
            over_budget: false,
            review,
        });
        plan
    }

    #[test]
    fn five_thousand_approvals_are_one_line_and_verbose_lists_them() {
        let plan = review_plan();
        let text = plan_human(&plan, &Style::default());
        insta::assert_snapshot!(text);
        let verbose = plan_human(
            &plan,
            &Style {
                color: false,
                every_item: true,
            },
        );
        assert_eq!(verbose.matches("✓ AS").count(), 5000);
        assert_eq!(verbose.matches("✗ ASBAD").count(), 6);
    }
}

#[cfg(test)]
#[path = "render_goal_tests.rs"]
mod goal_tests;
