//! Workers and notifications as code (DESIGN.md section 9): which blocks, unblocks, grants and
//! revokes bring MTurk to the blocks file, the `block_below` rules of known answers and the
//! grants files; which HIT types need their notification settings set or deactivated.
//!
//! turkform undoes only what it made (recorded `turkform` in state). A block or grant a refresh
//! found made outside turkform is left alone even when a file names the same worker: the plan
//! warns instead, so that removing the row later never undoes someone else's decision. A block
//! made by a known-answers rule lasts as long as the rule still judges the worker so, whatever
//! the blocks file says; with a campaign filter the rules of the other campaigns are unknown, so
//! such a plan unblocks nobody.

use std::collections::{BTreeMap, HashMap, HashSet};

use turkform_model::{
    DesiredState, MadeBy, RecordedAssignment, RecordedBlock, RecordedGrant, RecordedState,
    WorkerRecordStatus,
};

use crate::{
    CampaignPlan, PlanOptions, PlannedNotification, PlannedWorker, Summary, Warning, WorkerAction,
};

/// Why a worker should be blocked, and with which reason sent to MTurk.
struct WantedBlock {
    reason: String,
    why: String,
    group: String,
}

fn selected(options: &PlanOptions, name: &str) -> bool {
    options.only_campaigns.is_empty() || options.only_campaigns.iter().any(|c| c == name)
}

/// Blocks wanted by the blocks file (first) and by the campaigns' `block_below` rules.
fn wanted_blocks(
    desired: &DesiredState,
    recorded: &RecordedState,
    options: &PlanOptions,
) -> BTreeMap<String, WantedBlock> {
    let mut wanted: BTreeMap<String, WantedBlock> = BTreeMap::new();
    for row in &desired.workers.blocks {
        wanted.insert(
            row.worker_id.clone(),
            WantedBlock {
                reason: row.reason.clone(),
                why: format!("blocks row {}:{}", row.file.display(), row.line),
                group: format!("(blocks file {})", row.file.display()),
            },
        );
    }
    for campaign in desired
        .campaigns
        .iter()
        .filter(|c| selected(options, &c.name))
    {
        let Some(known) = &campaign.review.known_answers else {
            continue;
        };
        let Some(threshold) = known.block_below else {
            continue;
        };
        let mine: Vec<&RecordedAssignment> = recorded
            .assignments
            .iter()
            .filter(|a| a.campaign == campaign.name)
            .collect();
        for (worker, acc) in crate::review::accuracies(known, &mine) {
            if acc.judged < known.min_answers {
                continue;
            }
            let share = f64::from(acc.right) / f64::from(acc.judged.max(1));
            if share >= threshold {
                continue;
            }
            wanted.entry(worker.to_owned()).or_insert_with(|| WantedBlock {
                reason: known.reason.clone(),
                why: format!(
                    "known answers of {}: accuracy {share:.2} on {} known answers, under block_below {threshold}",
                    campaign.name, acc.judged
                ),
                group: format!(
                    "(known answers of {}: accuracy under block_below {threshold})",
                    campaign.name
                ),
            });
        }
    }
    wanted
}

/// Plans blocks, unblocks, grants and revokes, adding a warning for each file row that names a
/// worker whose block or grant was made outside turkform.
pub(crate) fn plan_workers(
    desired: &DesiredState,
    recorded: &RecordedState,
    options: &PlanOptions,
    warnings: &mut Vec<Warning>,
) -> Vec<PlannedWorker> {
    let mut out = Vec::new();
    let warn = |warnings: &mut Vec<Warning>, message: String| {
        warnings.push(Warning {
            campaign: None,
            item_key: None,
            message,
        });
    };

    // Blocks.
    let wanted = wanted_blocks(desired, recorded, options);
    let have: HashMap<&str, &RecordedBlock> = recorded
        .blocks
        .iter()
        .map(|b| (b.worker_id.as_str(), b))
        .collect();
    for (worker, want) in &wanted {
        let block = || WorkerAction::Block {
            worker_id: worker.clone(),
            reason: want.reason.clone(),
        };
        match have.get(worker.as_str()) {
            None => out.push(PlannedWorker {
                action: block(),
                reason: want.why.clone(),
                group: want.group.clone(),
            }),
            Some(b) if b.made_by == MadeBy::Outside => warn(
                warnings,
                format!(
                    "worker {worker} is already blocked outside turkform ({}); left alone",
                    want.why
                ),
            ),
            Some(b) if b.status == WorkerRecordStatus::Active && b.reason == want.reason => {}
            Some(b) if b.status == WorkerRecordStatus::Active => out.push(PlannedWorker {
                action: block(),
                reason: format!("{}; the reason changed", want.why),
                group: want.group.clone(),
            }),
            Some(_) => out.push(PlannedWorker {
                action: block(),
                reason: format!(
                    "{}; an earlier call's outcome is not known, so it is sent again",
                    want.why
                ),
                group: want.group.clone(),
            }),
        }
    }
    let filtering = !options.only_campaigns.is_empty();
    let mut kept_by_filter = 0usize;
    for b in recorded
        .blocks
        .iter()
        .filter(|b| b.made_by == MadeBy::Turkform && !wanted.contains_key(&b.worker_id))
    {
        if filtering {
            kept_by_filter += 1;
            continue;
        }
        out.push(PlannedWorker {
            action: WorkerAction::Unblock {
                worker_id: b.worker_id.clone(),
            },
            reason: format!("blocked by turkform ({:?})", b.reason),
            group: "(no longer in the blocks file nor judged by a known-answers rule)".to_owned(),
        });
    }
    if kept_by_filter > 0 {
        warn(
            warnings,
            format!(
                "{kept_by_filter} block(s) turkform made are no longer asked for here, but a plan of some campaigns cannot tell what the others' known-answers rules judge: plan all campaigns to unblock"
            ),
        );
    }

    // Grants.
    let type_id: HashMap<&str, &str> = recorded
        .qualification_types
        .iter()
        .map(|q| (q.name.as_str(), q.qualification_type_id.as_str()))
        .collect();
    let mut granted: HashMap<(&str, &str), &RecordedGrant> = HashMap::new();
    for g in &recorded.grants {
        granted.insert((g.qualification.as_str(), g.worker_id.as_str()), g);
    }
    let mut wanted_grants: HashSet<(&str, &str)> = HashSet::new();
    for file in &desired.workers.grants {
        let id = type_id
            .get(file.qualification.as_str())
            .map(|s| (*s).to_owned());
        for row in &file.rows {
            wanted_grants.insert((file.qualification.as_str(), row.worker_id.as_str()));
            let at = format!("grants row {}:{}", file.file.display(), row.line);
            let group = format!(
                "{} (grants file {})",
                file.qualification,
                file.file.display()
            );
            let grant = || WorkerAction::Grant {
                qualification: file.qualification.clone(),
                qualification_type_id: id.clone(),
                worker_id: row.worker_id.clone(),
                value: row.value,
            };
            match granted.get(&(file.qualification.as_str(), row.worker_id.as_str())) {
                None => out.push(PlannedWorker {
                    action: grant(),
                    reason: at,
                    group,
                }),
                Some(g) if g.made_by == MadeBy::Outside => {
                    if g.value != row.value {
                        warn(
                            warnings,
                            format!(
                                "worker {} holds {} = {} granted outside turkform; the value {} of {at} is not applied (left alone)",
                                row.worker_id, file.qualification, g.value, row.value
                            ),
                        );
                    }
                }
                Some(g) if g.status == WorkerRecordStatus::Active && g.value == row.value => {}
                Some(g) if g.status == WorkerRecordStatus::Active => out.push(PlannedWorker {
                    action: grant(),
                    reason: format!("{at}; the value changed from {}", g.value),
                    group,
                }),
                Some(_) => out.push(PlannedWorker {
                    action: grant(),
                    reason: format!(
                        "{at}; an earlier call's outcome is not known, so it is sent again"
                    ),
                    group,
                }),
            }
        }
    }
    for g in recorded.grants.iter().filter(|g| {
        g.made_by == MadeBy::Turkform
            && !wanted_grants.contains(&(g.qualification.as_str(), g.worker_id.as_str()))
    }) {
        out.push(PlannedWorker {
            action: WorkerAction::Revoke {
                qualification: g.qualification.clone(),
                qualification_type_id: g.qualification_type_id.clone(),
                worker_id: g.worker_id.clone(),
            },
            reason: format!("granted by turkform with value {}", g.value),
            group: format!("{} (no longer in its grants file)", g.qualification),
        });
    }
    out
}

/// Plans notification settings: set where a campaign's `[notifications]` differs from what
/// state recorded for its current HIT type, deactivate what turkform set where the table is
/// gone (or on a HIT type the campaign no longer uses).
pub(crate) fn plan_notifications(
    desired: &DesiredState,
    recorded: &RecordedState,
    campaigns: &[CampaignPlan],
    options: &PlanOptions,
) -> Vec<PlannedNotification> {
    let mut out = Vec::new();
    let id_of: HashMap<&str, &str> = recorded
        .hit_types
        .iter()
        .map(|t| (t.definition_hash.as_str(), t.hit_type_id.as_str()))
        .collect();
    let registering: HashSet<(&str, &str)> = campaigns
        .iter()
        .flat_map(|c| {
            c.hit_types.iter().filter_map(move |a| match &a.action {
                crate::Action::CreateHitType {
                    definition_hash, ..
                } => Some((c.name.as_str(), definition_hash.as_str())),
                _ => None,
            })
        })
        .collect();
    let mut current: HashSet<&str> = HashSet::new();
    for campaign in desired
        .campaigns
        .iter()
        .filter(|c| selected(options, &c.name))
    {
        let Some(want) = &campaign.review.notifications else {
            continue;
        };
        let hash = campaign.hit_type_hash.as_str();
        let id = id_of.get(hash).copied();
        if let Some(id) = id {
            current.insert(id);
        }
        let recorded_here =
            id.and_then(|id| recorded.notifications.iter().find(|n| n.hit_type_id == id));
        let reason = match recorded_here {
            Some(n) if n.active && n.settings == *want => continue,
            Some(n) if n.active => "[notifications] changed",
            Some(_) => "[notifications] set again after a deactivation",
            None if id.is_none() && !registering.contains(&(campaign.name.as_str(), hash)) => {
                // No HIT type yet and none planned (a campaign with nothing to post): set
                // once its HIT type is registered.
                continue;
            }
            None => "[notifications] is new",
        };
        out.push(PlannedNotification {
            campaign: campaign.name.clone(),
            hit_type_hash: Some(hash.to_owned()),
            hit_type_id: id.map(str::to_owned),
            settings: Some(want.clone()),
            reason: reason.to_owned(),
        });
    }
    for n in recorded.notifications.iter().filter(|n| n.active) {
        if current.contains(n.hit_type_id.as_str()) || !selected(options, &n.campaign) {
            continue;
        }
        let desired_campaign = desired.campaigns.iter().find(|c| c.name == n.campaign);
        let reason = match desired_campaign {
            None => "campaign removed",
            Some(c) if c.review.notifications.is_none() => "[notifications] removed",
            Some(_) => "the campaign's HIT type changed",
        };
        out.push(PlannedNotification {
            campaign: n.campaign.clone(),
            hit_type_hash: None,
            hit_type_id: Some(n.hit_type_id.clone()),
            settings: None,
            reason: reason.to_owned(),
        });
    }
    out
}

/// Counts the worker and notification actions into the summary.
pub(crate) fn summarize(
    workers: &[PlannedWorker],
    notifications: &[PlannedNotification],
    recorded: &RecordedState,
    s: &mut Summary,
) {
    for w in workers {
        match w.action {
            WorkerAction::Block { .. } => s.block += 1,
            WorkerAction::Unblock { .. } => s.unblock += 1,
            WorkerAction::Grant { .. } => s.grant += 1,
            WorkerAction::Revoke { .. } => s.revoke += 1,
        }
    }
    s.notifications = notifications.len();
    s.outside_blocks = recorded
        .blocks
        .iter()
        .filter(|b| b.made_by == MadeBy::Outside)
        .count();
    s.outside_grants = recorded
        .grants
        .iter()
        .filter(|g| g.made_by == MadeBy::Outside)
        .count();
}
