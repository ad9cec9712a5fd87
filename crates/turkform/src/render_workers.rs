//! The workers and notifications part of the human plan (DESIGN.md section 9): blocks,
//! unblocks, grants and revokes grouped by the file or rule they come from and counted (`-v`
//! lists every worker), then the notification settings per campaign.

use std::fmt::Write as _;

use turkform_plan::{Plan, PlannedWorker, WorkerAction};

use crate::render::Style;

fn workers(n: usize) -> String {
    if n == 1 {
        "1 worker".to_owned()
    } else {
        format!("{n} workers")
    }
}

fn symbol(action: &WorkerAction) -> &'static str {
    match action {
        WorkerAction::Block { .. } | WorkerAction::Grant { .. } => "+",
        WorkerAction::Unblock { .. } | WorkerAction::Revoke { .. } => "-",
    }
}

/// Writes the "Workers" and "Notifications" sections; nothing when the plan has neither.
pub fn write(out: &mut String, style: &Style, plan: &Plan) {
    let s = &plan.summary;
    if !plan.workers.is_empty() || s.outside_blocks + s.outside_grants > 0 {
        let _ = writeln!(out, "{}", style.bold("Workers"));
        let mut groups: Vec<(&'static str, &str, Vec<&PlannedWorker>)> = Vec::new();
        for w in &plan.workers {
            let verb = w.action.verb();
            match groups
                .iter_mut()
                .find(|g| g.0 == verb && g.1 == w.group.as_str())
            {
                Some(g) => g.2.push(w),
                None => groups.push((verb, w.group.as_str(), vec![w])),
            }
        }
        for (verb, group, rows) in groups {
            let _ = writeln!(
                out,
                "  {} {verb} {} {group}",
                crate::render::painted(style, symbol(&rows[0].action)),
                workers(rows.len())
            );
            if style.every_item || rows.len() == 1 {
                for w in rows {
                    let detail = match &w.action {
                        WorkerAction::Block { reason, .. } => format!(" reason {reason:?}"),
                        WorkerAction::Grant {
                            qualification,
                            value,
                            ..
                        } => format!(" {qualification} = {value}"),
                        WorkerAction::Revoke { qualification, .. } => format!(" {qualification}"),
                        WorkerAction::Unblock { .. } => String::new(),
                    };
                    let _ = writeln!(
                        out,
                        "      {}{detail}  {}",
                        w.action.worker_id(),
                        style.dim(&w.reason)
                    );
                }
            }
        }
        if s.outside_blocks + s.outside_grants > 0 {
            let _ = writeln!(
                out,
                "    {}",
                style.dim(&format!(
                    "left alone: {} block(s) and {} grant(s) made outside turkform",
                    s.outside_blocks, s.outside_grants
                ))
            );
        }
        out.push('\n');
    }
    if !plan.notifications.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Notifications"));
        for n in &plan.notifications {
            let on = n
                .hit_type_id
                .as_deref()
                .map_or("its new HIT type".to_owned(), |id| format!("HIT type {id}"));
            match &n.settings {
                Some(set) => {
                    let _ = writeln!(
                        out,
                        "  {} {}: send {} to {} {} on {on} ({})",
                        crate::render::painted(style, "~"),
                        n.campaign,
                        set.events.join(", "),
                        set.transport.api_name(),
                        set.destination,
                        n.reason
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  {} {}: deactivate the notifications on {on} ({})",
                        crate::render::painted(style, "-"),
                        n.campaign,
                        n.reason
                    );
                }
            }
        }
        out.push('\n');
    }
}

/// The summary line's parts for workers and notifications.
pub fn summary_parts(plan: &Plan, push: &mut dyn FnMut(usize, &str)) {
    let s = &plan.summary;
    push(s.block, "worker(s) to block");
    push(s.unblock, "to unblock");
    push(s.grant, "qualification(s) to grant");
    push(s.revoke, "to revoke");
    push(s.notifications, "notification setting(s) to update");
}

#[cfg(test)]
mod tests {
    use turkform_model::{
        DesiredState, NotificationSettings, NotificationTransport, RecordedState, Target, UnixTime,
    };
    use turkform_plan::{PlanOptions, PlannedNotification, PlannedWorker, WorkerAction};

    use crate::render::{Style, plan_human};

    fn block(i: usize) -> PlannedWorker {
        PlannedWorker {
            action: WorkerAction::Block {
                worker_id: format!("ASPAM{i:03}"),
                reason: "copies answers".into(),
            },
            reason: format!("blocks row workers/blocked.csv:{}", i + 2),
            group: "(blocks file workers/blocked.csv)".into(),
        }
    }

    #[test]
    fn worker_actions_are_grouped_and_counted_and_verbose_lists_them() {
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
        plan.workers = (0..40).map(block).collect();
        plan.workers.push(PlannedWorker {
            action: WorkerAction::Block {
                worker_id: "A1B2C3".into(),
                reason: "Most answers on checked items were wrong".into(),
            },
            reason:
                "known answers of street: accuracy 0.17 on 6 known answers, under block_below 0.3"
                    .into(),
            group: "(known answers of street: accuracy under block_below 0.3)".into(),
        });
        plan.workers.push(PlannedWorker {
            action: WorkerAction::Unblock {
                worker_id: "AOLD".into(),
            },
            reason: "blocked by turkform (\"spam\")".into(),
            group: "(no longer in the blocks file nor judged by a known-answers rule)".into(),
        });
        for (w, v) in [("ATRAINED1", 1), ("ATRAINED2", 80)] {
            plan.workers.push(PlannedWorker {
                action: WorkerAction::Grant {
                    qualification: "street-trained".into(),
                    qualification_type_id: Some("3QT".into()),
                    worker_id: w.into(),
                    value: v,
                },
                reason: "grants row workers/street-trained.csv:2".into(),
                group: "street-trained (grants file workers/street-trained.csv)".into(),
            });
        }
        plan.notifications.push(PlannedNotification {
            campaign: "street".into(),
            hit_type_hash: Some("h".into()),
            hit_type_id: None,
            settings: Some(NotificationSettings {
                destination: "https://sqs.us-east-1.amazonaws.com/123456789012/street-events"
                    .into(),
                transport: NotificationTransport::Sqs,
                events: vec!["AssignmentSubmitted".into()],
            }),
            reason: "[notifications] is new".into(),
        });
        plan.summary.block = 41;
        plan.summary.unblock = 1;
        plan.summary.grant = 2;
        plan.summary.notifications = 1;
        plan.summary.outside_blocks = 3;
        plan.summary.outside_grants = 1;
        let text = plan_human(&plan, &Style::default());
        insta::assert_snapshot!(text);
        assert_eq!(text.matches("ASPAM").count(), 0, "40 blocks are one line");
        let verbose = plan_human(
            &plan,
            &Style {
                color: false,
                every_item: true,
            },
        );
        assert_eq!(verbose.matches("      ASPAM").count(), 40);
    }
}
