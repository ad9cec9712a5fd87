//! `turkform report`: builds [`ReportData`] from the state store and the campaign files, has
//! `turkform-report` render it, and writes the page atomically (a reader, or a web server the
//! cron job feeds, never sees half a file).
//!
//! Everything the page shows is assembled in [`report_data`], a pure function of the desired
//! and recorded states, so that figures from recorded assignments (answers over time, workers,
//! agreement) can be added in one place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use turkform_model::{
    DesiredCampaign, DesiredState, HitStatus, Money, RecordedHit, RecordedState, Target, UnixTime,
};
use turkform_report::{CampaignReport, ProgressPoint, ReportData, SpendPoint, StatusCounts};
use turkform_state::OpenMode;

use crate::cli::ReportArgs;
use crate::failure::Failure;
use crate::settings::Resolved;

pub fn run(resolved: &Resolved, args: &ReportArgs) -> Result<u8, Failure> {
    let now = UnixTime::now();
    // A report is most wanted when something is wrong: a campaign file broken by an edit must
    // not stop the cron job's page, which then shows what state holds (the diagnostics are
    // printed above the warning).
    let desired = match super::load_desired(resolved, &[], now) {
        Ok(desired) => Some(desired),
        Err(failure) if failure.code == 1 => {
            eprintln!(
                "warning: {}; the report shows what state holds, without titles, item counts or budgets",
                failure.error
            );
            None
        }
        Err(failure) => return Err(failure),
    };
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let recorded = store.load().map_err(super::state_failure)?;
    let data = report_data(
        resolved.target,
        desired.as_ref(),
        &recorded,
        &args.campaigns,
        now,
    )?;
    let html = turkform_report::render(&data).map_err(Failure::internal)?;
    write_atomically(&args.output, html.as_bytes())?;
    eprintln!(
        "Wrote the report of {} campaign{} to {}",
        data.campaigns.len(),
        if data.campaigns.len() == 1 { "" } else { "s" },
        args.output.display()
    );
    Ok(0)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let file_name = path.file_name().ok_or_else(|| {
        Failure::user_msg(format!(
            "`{}` is not a file name; pass --output FILE, e.g. --output report.html",
            path.display()
        ))
    })?;
    if !crate::output::replace_by_rename(path) {
        return std::fs::write(path, bytes).map_err(|e| {
            Failure::user_msg(format!(
                "cannot write the report to `{}`: {e}",
                path.display()
            ))
        });
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let cannot = |e: std::io::Error| {
        Failure::user_msg(format!(
            "cannot write the report to `{}`: {e}; check that its directory exists and is writable",
            path.display()
        ))
    };
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(cannot(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        cannot(e)
    })
}

/// The figures of the report, from what state holds today: HITs with their creation time,
/// committed cost and MTurk's counters (refreshed by `apply` and `refresh`), plus the campaign
/// files for titles, item counts and budgets. Campaigns removed from the files but still in
/// state are reported too, from state alone, as are all campaigns when the files did not load
/// (`desired` is `None`). `only` restricts to those names (all if empty).
pub fn report_data(
    target: Target,
    desired: Option<&DesiredState>,
    recorded: &RecordedState,
    only: &[String],
    now: UnixTime,
) -> Result<ReportData, Failure> {
    let mut hits_by_campaign: BTreeMap<&str, Vec<&RecordedHit>> = BTreeMap::new();
    for hit in &recorded.hits {
        hits_by_campaign
            .entry(hit.campaign.as_str())
            .or_default()
            .push(hit);
    }
    let mut names: BTreeSet<&str> = hits_by_campaign.keys().copied().collect();
    let specs = desired.map_or(&[][..], |d| d.campaigns.as_slice());
    names.extend(specs.iter().map(|c| c.name.as_str()));
    for name in only {
        if !names.contains(name.as_str()) {
            return Err(Failure::user_msg(format!(
                "no campaign `{name}` in the campaign files or in state for target {target}"
            ))
            .hint("run `turkform status` to list the campaigns state knows"));
        }
    }
    let campaigns = names
        .into_iter()
        .filter(|name| only.is_empty() || only.iter().any(|o| o == name))
        .map(|name| {
            let hits = hits_by_campaign.get(name).map_or(&[][..], Vec::as_slice);
            campaign_report(
                name,
                desired.is_some(),
                specs,
                hits,
                recorded.refreshed_at,
                now,
            )
        })
        .collect();
    Ok(ReportData {
        generated_at: now,
        target,
        campaigns,
    })
}

fn campaign_report(
    name: &str,
    files_loaded: bool,
    specs: &[DesiredCampaign],
    hits: &[&RecordedHit],
    refreshed_at: Option<UnixTime>,
    now: UnixTime,
) -> CampaignReport {
    let spec = specs.iter().find(|c| c.name == name);
    let mut notes = Vec::new();

    // Only the newest generation of an item decides whether it is complete.
    let mut newest: BTreeMap<&str, &RecordedHit> = BTreeMap::new();
    for hit in hits {
        match newest.get(hit.item_key.as_str()) {
            Some(h) if h.generation >= hit.generation => {}
            _ => {
                newest.insert(hit.item_key.as_str(), hit);
            }
        }
    }
    // Submitted work (awaiting review or decided) is what the counters do not hold as open
    // or accepted: MaxAssignments - Available - Pending. An expired HIT keeps its unfilled
    // slots as "available", so they are shown as available only while the HIT is open.
    let submitted_of = |h: &RecordedHit| {
        h.max_assignments
            .saturating_sub(h.assignments_available + h.assignments_pending)
    };
    let items_complete = newest
        .values()
        .filter(|h| submitted_of(h) >= h.max_assignments)
        .count() as u64;

    let mut statuses = StatusCounts::default();
    for hit in hits {
        let open = hit.expiration > now
            && matches!(hit.status, HitStatus::Assignable | HitStatus::Unassignable);
        if open {
            statuses.available += u64::from(hit.assignments_available);
        }
        statuses.pending += u64::from(hit.assignments_pending);
        let submitted = submitted_of(hit);
        statuses.decided_unsplit += u64::from(hit.assignments_completed.min(submitted));
        statuses.submitted += u64::from(submitted.saturating_sub(hit.assignments_completed));
    }
    let answers_submitted = statuses.submitted + statuses.decided_unsplit;

    let (title, items_total, answers_wanted, budget) = match spec {
        Some(c) => (
            c.hit_type.title.clone(),
            c.items.len() as u64,
            c.items.len() as u64 * u64::from(c.assignments),
            c.max_spend,
        ),
        None => {
            notes.push(if files_loaded {
                "This campaign is no longer in the campaign files; its figures come from state alone."
                    .to_owned()
            } else {
                "The campaign files did not validate when this report was written (run `turkform validate`); these figures come from state alone."
                    .to_owned()
            });
            (
                name.to_owned(),
                newest.len() as u64,
                newest.values().map(|h| u64::from(h.max_assignments)).sum(),
                None,
            )
        }
    };

    // Spend: the money committed per HIT (reward and fees of its assignments), at its creation.
    let mut by_instant: BTreeMap<UnixTime, Money> = BTreeMap::new();
    for hit in hits {
        *by_instant.entry(hit.created_at).or_default() += hit.committed_cost;
    }
    let mut running = Money::ZERO;
    let spend: Vec<SpendPoint> = by_instant
        .into_iter()
        .map(|(at, cost)| {
            running += cost;
            SpendPoint { at, spent: running }
        })
        .collect();
    if !hits.is_empty() {
        notes.push(
            "Spend is the money committed (rewards and fees of every assignment), counted when each HIT was created."
                .to_owned(),
        );
    }

    // Answers over time: state holds MTurk's counters as of the last refresh, not each
    // assignment, so the series is what is known for certain: nothing before the first HIT,
    // the counted answers at the last refresh.
    let mut progress = Vec::new();
    if let (Some(first), Some(refreshed)) = (hits.iter().map(|h| h.created_at).min(), refreshed_at)
        && refreshed > first
    {
        progress.push(ProgressPoint {
            at: first,
            submitted: 0,
            approved: None,
        });
        progress.push(ProgressPoint {
            at: refreshed,
            submitted: answers_submitted,
            approved: None,
        });
    }
    if !hits.is_empty() {
        notes.push(format!(
            "Answers come from MTurk's HIT counters as of the last refresh ({}): they tell decided from undecided work but not approved from rejected, nor who answered what, so workers and agreement are not shown yet.",
            refreshed_at.map_or_else(|| "never".to_owned(), |t| t.to_string())
        ));
    }

    CampaignReport {
        name: name.to_owned(),
        title,
        items_total,
        items_complete,
        answers_wanted,
        budget,
        progress,
        spend,
        statuses,
        workers: Vec::new(),
        agreement: Vec::new(),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use turkform_model::{CampaignStatus, DesiredItem, HitTypeSpec, Lifetime, Question};

    use super::*;

    const NOW: UnixTime = UnixTime(1_796_083_200);

    fn desired() -> DesiredState {
        let hit_type = HitTypeSpec {
            title: "Label a picture".into(),
            description: "d".into(),
            keywords: vec![],
            reward: Money::from_cents(10),
            assignment_duration_secs: 600,
            auto_approval_delay_secs: 0,
            qualifications: vec![],
        };
        let items = (1..=3)
            .map(|i| {
                let question = Question::Xml {
                    xml: format!("<q>{i}</q>"),
                };
                DesiredItem {
                    key: format!("item{i}"),
                    content_hash: question.content_hash(),
                    question,
                    row: vec![],
                }
            })
            .collect();
        DesiredState {
            target: Target::Sim,
            campaigns: vec![DesiredCampaign {
                name: "pics".into(),
                file: "campaigns/pics.toml".into(),
                status: CampaignStatus::Running,
                hit_type_hash: hit_type.definition_hash(),
                hit_type,
                assignments: 2,
                lifetime: Lifetime::Duration(86_400),
                max_spend: Some(Money::from_cents(500)),
                items,
                review: Default::default(),
            }],
            qualification_types: vec![],
            inputs_digest: String::new(),
        }
    }

    /// (campaign, item, generation, created, open, available, pending, completed)
    fn hit(
        campaign: &str,
        item: &str,
        generation: u32,
        created: i64,
        open: bool,
        counters: (u32, u32, u32),
    ) -> RecordedHit {
        RecordedHit {
            campaign: campaign.into(),
            item_key: item.into(),
            generation,
            hit_id: format!("{campaign}-{item}-{generation}"),
            hit_type_id: "T".into(),
            hit_type_hash: "h".into(),
            content_hash: "c".into(),
            max_assignments: 2,
            committed_cost: Money::from_cents(24),
            created_at: UnixTime(NOW.0 - 7200 + created),
            expiration: if open {
                NOW.plus_secs(3600)
            } else {
                UnixTime(NOW.0 - 60)
            },
            status: if open {
                HitStatus::Assignable
            } else {
                HitStatus::Reviewable
            },
            assignments_available: counters.0,
            assignments_pending: counters.1,
            assignments_completed: counters.2,
            expired_by: None,
            paused_remaining_secs: None,
            drift: vec![],
        }
    }

    fn recorded() -> RecordedState {
        RecordedState {
            hits: vec![
                // item1: a replaced generation with both answers in, one decided...
                hit("pics", "item1", 1, 0, false, (0, 0, 1)),
                // ...and its open replacement with nothing yet: the item is not complete.
                hit("pics", "item1", 2, 600, true, (2, 0, 0)),
                // item2 expired with one slot unfilled: that slot is not available to anyone.
                hit("pics", "item2", 1, 0, false, (1, 0, 0)),
                // item3: both answers in and decided.
                hit("pics", "item3", 1, 60, true, (0, 0, 2)),
                hit("gone", "x", 1, 0, false, (0, 1, 0)),
            ],
            refreshed_at: Some(UnixTime(NOW.0 - 30)),
            ..RecordedState::default()
        }
    }

    #[test]
    fn figures_come_from_the_newest_generation_and_open_hits_only() {
        let Ok(data) = report_data(Target::Sim, Some(&desired()), &recorded(), &[], NOW) else {
            panic!("report data builds");
        };
        let names: Vec<&str> = data.campaigns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gone", "pics"], "state-only campaigns too, by name");
        let pics = &data.campaigns[1];
        assert_eq!(pics.title, "Label a picture");
        assert_eq!(pics.items_total, 3);
        assert_eq!(pics.items_complete, 1, "only item3");
        assert_eq!(pics.answers_wanted, 6);
        assert_eq!(pics.budget, Some(Money::from_cents(500)));
        assert_eq!(
            pics.statuses,
            StatusCounts {
                available: 2,
                pending: 0,
                submitted: 2,
                approved: 0,
                rejected: 0,
                decided_unsplit: 3,
            }
        );
        let spend: Vec<(i64, i64)> = pics
            .spend
            .iter()
            .map(|p| (p.at.0 - NOW.0, p.spent.cents()))
            .collect();
        assert_eq!(spend, [(-7200, 48), (-7140, 72), (-6600, 96)]);
        assert_eq!(
            pics.progress,
            [
                ProgressPoint {
                    at: UnixTime(NOW.0 - 7200),
                    submitted: 0,
                    approved: None
                },
                ProgressPoint {
                    at: UnixTime(NOW.0 - 30),
                    submitted: 5,
                    approved: None
                },
            ]
        );
        let gone = &data.campaigns[0];
        assert_eq!(gone.title, "gone");
        assert!(gone.notes[0].contains("no longer in the campaign files"));
        assert_eq!(gone.statuses.pending, 1);
    }

    #[test]
    fn only_restricts_and_an_unknown_name_is_a_user_error() {
        let Ok(data) = report_data(
            Target::Sim,
            Some(&desired()),
            &recorded(),
            &["pics".into()],
            NOW,
        ) else {
            panic!("report data builds");
        };
        assert_eq!(data.campaigns.len(), 1);
        let Err(failure) = report_data(
            Target::Sim,
            Some(&desired()),
            &recorded(),
            &["nope".into()],
            NOW,
        ) else {
            panic!("an unknown campaign is refused");
        };
        assert_eq!(failure.code, 1);
    }

    #[test]
    fn without_loadable_campaign_files_every_campaign_comes_from_state_and_says_so() {
        let Ok(data) = report_data(Target::Sim, None, &recorded(), &[], NOW) else {
            panic!("report data builds");
        };
        let pics = &data.campaigns[1];
        assert_eq!(pics.title, "pics");
        assert_eq!(pics.items_total, 3, "the items state knows");
        assert_eq!(
            pics.answers_wanted, 6,
            "MaxAssignments of the newest generations"
        );
        assert_eq!(pics.budget, None);
        assert!(pics.notes[0].contains("did not validate"));
    }
}
