//! `turkform report`: builds [`ReportData`] from the state store and the campaign files, has
//! `turkform-report` render it, and writes the page atomically (a reader, or a web server the
//! cron job feeds, never sees half a file).
//!
//! Everything the page shows is assembled in [`report_data`], a pure function of the desired
//! and recorded states and of what one streamed pass over the recorded assignments gathered
//! ([`AssignmentFigures`]): a campaign of 100,000 items never holds its assignments in memory,
//! only their times, per-worker counts and one agreement figure per item.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use turkform_model::{
    AssignmentStatus, DesiredCampaign, DesiredState, HitStatus, Money, RecordedAssignment,
    RecordedHit, RecordedState, Target, UnixTime,
};
use turkform_report::{
    CampaignReport, ItemAgreement, ProgressPoint, ReportData, SpendPoint, StatusCounts,
    WorkerSummary,
};
use turkform_state::{AssignmentFilter, OpenMode, WorkerDecisions};

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
    let mut figures = AssignmentFigures::new(&recorded).with_known_answers(desired.as_ref());
    let filter = AssignmentFilter {
        campaigns: args.campaigns.clone(),
        status: None,
    };
    store
        .visit_answers(&filter, |row| {
            figures.add(row.assignment);
            true
        })
        .map_err(super::state_failure)?;
    let decisions = store.worker_decisions(now).map_err(super::state_failure)?;
    let data = report_data(
        resolved.target,
        desired.as_ref(),
        &recorded,
        &figures.finish(),
        &decisions,
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

/// A field is categorical (its answers are compared for agreement) when the campaign's answers
/// hold at most this many distinct values of it...
pub const CATEGORICAL_MAX_VALUES: usize = 12;
/// ...and its values repeat: at least this many answers per distinct value on average. Free
/// text, where nearly every answer differs, fails this even in a small campaign.
pub const CATEGORICAL_MIN_ANSWERS_PER_VALUE: u64 = 2;

/// One campaign's recorded assignments, reduced to what the page shows.
#[derive(Debug, Default)]
pub struct CampaignFigures {
    /// Submit times of every recorded assignment.
    submits: Vec<i64>,
    /// (approval time, reward and fee in cents) of every approved assignment.
    approvals: Vec<(i64, i64)>,
    submitted: u64,
    approved: u64,
    rejected: u64,
    /// Answers per worker (any status).
    workers: BTreeMap<String, u64>,
    /// Per worker: (right, judged) answers to the campaign's known-answer (gold) items, counted
    /// over every recorded answer as the planner's known-answers rule counts them.
    gold: BTreeMap<String, (u32, u32)>,
    /// Field names, numbered in the order first seen.
    fields: Vec<String>,
    field_index: HashMap<String, usize>,
    /// Per field: its distinct values (up to one more than [`CATEGORICAL_MAX_VALUES`], which is
    /// enough to know it is not categorical) and how many answers hold it.
    field_values: Vec<(BTreeSet<String>, u64)>,
    /// Per item: (field number, majority agreement) of each field with at least
    /// two answers; categorical fields are picked once every value is known.
    items: Vec<(String, Vec<(usize, f64)>)>,
    /// The item being read: its key and its accepted answers (worker, fields).
    current: Option<(String, Vec<WorkerAnswer>)>,
}

/// One accepted answer to the item being read: who gave it, and its fields.
type WorkerAnswer = (String, BTreeMap<String, String>);

impl CampaignFigures {
    fn close_item(&mut self) {
        let Some((item, answers)) = self.current.take() else {
            return;
        };
        let input: Vec<turkform_aggregate::Answer<'_>> = answers
            .iter()
            .map(|(worker, fields)| turkform_aggregate::Answer {
                item: &item,
                worker,
                fields,
            })
            .collect();
        let mut per_field = Vec::new();
        for result in turkform_aggregate::aggregate(turkform_aggregate::Method::Majority, &input) {
            for (field, agg) in result.fields {
                // One answer agrees with itself: that says nothing about the item.
                if agg.count < 2 {
                    continue;
                }
                if let Some(&i) = self.field_index.get(&field) {
                    per_field.push((i, agg.agreement));
                }
            }
        }
        drop(input);
        if !per_field.is_empty() {
            self.items.push((item, per_field));
        }
    }

    fn is_categorical(&self, field: usize) -> bool {
        let (values, answers) = &self.field_values[field];
        !values.is_empty()
            && values.len() <= CATEGORICAL_MAX_VALUES
            && *answers >= values.len() as u64 * CATEGORICAL_MIN_ANSWERS_PER_VALUE
    }
}

/// Gathers [`CampaignFigures`] from assignments streamed in the store's order (campaign, item,
/// generation, submit time), one at a time.
pub struct AssignmentFigures<'a> {
    /// Reward and fee of one assignment of each HIT, in cents: its committed cost shared by its
    /// MaxAssignments (the fee was computed per assignment when the HIT was created).
    cost_per_assignment: HashMap<&'a str, i64>,
    /// Each campaign's gold items (`[review.known_answers]`), when the campaign files loaded.
    known_answers: HashMap<&'a str, &'a turkform_model::KnownAnswers>,
    campaigns: BTreeMap<String, CampaignFigures>,
}

impl<'a> AssignmentFigures<'a> {
    pub fn new(recorded: &'a RecordedState) -> Self {
        let cost_per_assignment = recorded
            .hits
            .iter()
            .map(|h| {
                (
                    h.hit_id.as_str(),
                    h.committed_cost.cents() / i64::from(h.max_assignments.max(1)),
                )
            })
            .collect();
        AssignmentFigures {
            cost_per_assignment,
            known_answers: HashMap::new(),
            campaigns: BTreeMap::new(),
        }
    }

    /// Also scores every answer to a gold item of the campaigns in `desired` that have known
    /// answers.
    pub fn with_known_answers(mut self, desired: Option<&'a DesiredState>) -> Self {
        for c in desired.map(|d| d.campaigns.as_slice()).unwrap_or_default() {
            if let Some(known) = &c.review.known_answers {
                self.known_answers.insert(c.name.as_str(), known);
            }
        }
        self
    }

    pub fn add(&mut self, a: RecordedAssignment) {
        let cost = self
            .cost_per_assignment
            .get(a.hit_id.as_str())
            .copied()
            .unwrap_or(0);
        let c = match self.campaigns.get_mut(&a.campaign) {
            Some(c) => c,
            None => self.campaigns.entry(a.campaign.clone()).or_default(),
        };
        if let Some(t) = a.submit_time {
            c.submits.push(t.0);
        }
        match a.status {
            AssignmentStatus::Submitted => c.submitted += 1,
            AssignmentStatus::Approved => {
                c.approved += 1;
                if let Some(t) = a.approval_time {
                    c.approvals.push((t.0, cost));
                }
            }
            AssignmentStatus::Rejected => c.rejected += 1,
        }
        match c.workers.get_mut(&a.worker_id) {
            Some(n) => *n += 1,
            None => {
                c.workers.insert(a.worker_id.clone(), 1);
            }
        }
        if let Some(gold) = self
            .known_answers
            .get(a.campaign.as_str())
            .and_then(|k| k.gold.get(&a.item_key))
        {
            let (right, judged) = c.gold.entry(a.worker_id.clone()).or_default();
            *judged += 1;
            if turkform_plan::answer_matches_gold(gold, &a.answers) {
                *right += 1;
            }
        }
        if c.current
            .as_ref()
            .is_none_or(|(item, _)| *item != a.item_key)
        {
            c.close_item();
            c.current = Some((a.item_key.clone(), Vec::new()));
        }
        // Rejected work is not an answer to compare, and a worker counts once per item (the
        // aggregation's contract); the first answer in submit order stands.
        if a.status == AssignmentStatus::Rejected {
            return;
        }
        for (field, value) in &a.answers {
            let i = match c.field_index.get(field) {
                Some(&i) => i,
                None => {
                    c.fields.push(field.clone());
                    c.field_values.push((BTreeSet::new(), 0));
                    c.field_index.insert(field.clone(), c.fields.len() - 1);
                    c.fields.len() - 1
                }
            };
            let (values, answers) = &mut c.field_values[i];
            *answers += 1;
            if values.len() <= CATEGORICAL_MAX_VALUES && !values.contains(value) {
                values.insert(value.clone());
            }
        }
        if let Some((_, answers)) = c.current.as_mut()
            && !answers.iter().any(|(w, _)| *w == a.worker_id)
        {
            answers.push((a.worker_id, a.answers));
        }
    }

    pub fn finish(mut self) -> BTreeMap<String, CampaignFigures> {
        for c in self.campaigns.values_mut() {
            c.close_item();
        }
        self.campaigns
    }
}

/// The figures of the report, from what state holds today: HITs with their creation time,
/// committed cost and MTurk's counters (refreshed by `apply` and `refresh`), the recorded
/// assignments (gathered by [`AssignmentFigures`]) and this requester's decisions per worker,
/// plus the campaign files for titles, item counts and budgets. Campaigns removed from the files but still in
/// state are reported too, from state alone, as are all campaigns when the files did not load
/// (`desired` is `None`). `only` restricts to those names (all if empty).
pub fn report_data(
    target: Target,
    desired: Option<&DesiredState>,
    recorded: &RecordedState,
    assignments: &BTreeMap<String, CampaignFigures>,
    decisions: &BTreeMap<String, WorkerDecisions>,
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
    names.extend(assignments.keys().map(String::as_str));
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
                assignments.get(name),
                decisions,
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
    figures: Option<&CampaignFigures>,
    decisions: &BTreeMap<String, WorkerDecisions>,
    refreshed_at: Option<UnixTime>,
    now: UnixTime,
) -> CampaignReport {
    let empty = CampaignFigures::default();
    let figures = figures.unwrap_or(&empty);
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

    // Open and accepted slots exist only as MTurk's counters; submitted work is recorded one
    // assignment at a time, so it is counted from the records, which tell approved from
    // rejected.
    let mut statuses = StatusCounts {
        submitted: figures.submitted,
        approved: figures.approved,
        rejected: figures.rejected,
        ..StatusCounts::default()
    };
    let mut counted_by_mturk = 0u64;
    for hit in hits {
        let open = hit.expiration > now
            && matches!(hit.status, HitStatus::Assignable | HitStatus::Unassignable);
        if open {
            statuses.available += u64::from(hit.assignments_available);
        }
        statuses.pending += u64::from(hit.assignments_pending);
        counted_by_mturk += u64::from(submitted_of(hit));
    }
    let recorded_answers = figures.submitted + figures.approved + figures.rejected;

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

    // Paid: reward and fee of each approved assignment, at its approval.
    let mut approvals = figures.approvals.clone();
    approvals.sort_unstable();
    let mut paid: Vec<SpendPoint> = Vec::new();
    let mut running = Money::ZERO;
    for (at, cents) in approvals {
        running += Money::from_cents(cents);
        match paid.last_mut() {
            Some(p) if p.at.0 == at => p.spent = running,
            _ => paid.push(SpendPoint {
                at: UnixTime(at),
                spent: running,
            }),
        }
    }

    let progress = progress_series(hits, figures);
    if counted_by_mturk > recorded_answers {
        notes.push(format!(
            "MTurk's counters (as of {}) hold {} submitted answers that state has not recorded one by one yet: run `turkform refresh` to fetch them.",
            refreshed_at.map_or_else(|| "never".to_owned(), |t| t.to_string()),
            counted_by_mturk - recorded_answers
        ));
    }

    let workers: Vec<WorkerSummary> = figures
        .workers
        .iter()
        .map(|(worker, &answers)| {
            let d = decisions.get(worker).copied().unwrap_or_default();
            WorkerSummary {
                worker_id: worker.clone(),
                answers,
                approved: d.approved,
                rejected: d.decided.saturating_sub(d.approved),
                known_answer_accuracy: figures
                    .gold
                    .get(worker)
                    .filter(|(_, judged)| *judged > 0)
                    .map(|&(right, judged)| f64::from(right) / f64::from(judged)),
            }
        })
        .collect();
    if !workers.is_empty() {
        notes.push(
            if figures.gold.is_empty() {
                "A worker's approval rate counts this requester's decisions on that worker in every campaign state holds (approved / approved or rejected). Known-answer accuracy is empty: the campaign has no `[review.known_answers]`, or no worker answered one of its gold items yet."
                    .to_owned()
            } else {
                "A worker's approval rate counts this requester's decisions on that worker in every campaign state holds (approved / approved or rejected). Known-answer accuracy is right / judged over that worker's answers to the campaign's gold items (`[review.known_answers]`), as the plan's known-answers rule counts them; – where the worker answered none."
                    .to_owned()
            },
        );
    }

    let categorical: Vec<bool> = (0..figures.fields.len())
        .map(|i| figures.is_categorical(i))
        .collect();
    let agreement: Vec<ItemAgreement> = figures
        .items
        .iter()
        .filter_map(|(item, per_field)| {
            let shares: Vec<f64> = per_field
                .iter()
                .filter(|(field, _)| categorical[*field])
                .map(|(_, share)| *share)
                .collect();
            (!shares.is_empty()).then(|| ItemAgreement {
                item: item.clone(),
                agreement: (shares.iter().sum::<f64>() / shares.len() as f64).clamp(0.0, 1.0),
            })
        })
        .collect();
    if !agreement.is_empty() {
        let names: Vec<&str> = figures
            .fields
            .iter()
            .zip(&categorical)
            .filter(|(_, c)| **c)
            .map(|(f, _)| f.as_str())
            .collect();
        notes.push(format!(
            "Agreement is the share of an item's answers (rejected ones left out, one per worker) holding its majority value, averaged over its categorical fields ({}); a field is categorical when the campaign's answers hold at most {CATEGORICAL_MAX_VALUES} distinct values of it and at least {CATEGORICAL_MIN_ANSWERS_PER_VALUE} answers per value on average. Items with fewer than 2 such answers are left out.",
            names.join(", ")
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
        paid,
        statuses,
        workers,
        agreement,
        notes,
    }
}

/// Cumulative submitted and approved answers at each instant either changes, from the recorded
/// submit and approval times, starting from zero when the first HIT was created (so the
/// projection's rate counts from the campaign's start until 50 answers are in).
fn progress_series(hits: &[&RecordedHit], figures: &CampaignFigures) -> Vec<ProgressPoint> {
    let mut submits = figures.submits.clone();
    submits.sort_unstable();
    let mut approvals: Vec<i64> = figures.approvals.iter().map(|(at, _)| *at).collect();
    approvals.sort_unstable();
    let mut progress = Vec::with_capacity(submits.len() + 1);
    let first_event = match (submits.first(), approvals.first()) {
        (Some(&s), Some(&a)) => Some(s.min(a)),
        (Some(&s), None) => Some(s),
        (None, Some(&a)) => Some(a),
        (None, None) => None,
    };
    let Some(first_event) = first_event else {
        return progress;
    };
    if let Some(created) = hits.iter().map(|h| h.created_at.0).min()
        && created < first_event
    {
        progress.push(ProgressPoint {
            at: UnixTime(created),
            submitted: 0,
            approved: Some(0),
        });
    }
    let (mut i, mut j) = (0usize, 0usize);
    while i < submits.len() || j < approvals.len() {
        let at = match (submits.get(i), approvals.get(j)) {
            (Some(&s), Some(&a)) => s.min(a),
            (Some(&s), None) => s,
            (None, Some(&a)) => a,
            (None, None) => break,
        };
        while submits.get(i) == Some(&at) {
            i += 1;
        }
        while approvals.get(j) == Some(&at) {
            j += 1;
        }
        progress.push(ProgressPoint {
            at: UnixTime(at),
            submitted: i as u64,
            approved: Some(j as u64),
        });
    }
    progress
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
        let Ok(data) = report_data(
            Target::Sim,
            Some(&desired()),
            &recorded(),
            &BTreeMap::new(),
            &BTreeMap::new(),
            &[],
            NOW,
        ) else {
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
                ..StatusCounts::default()
            },
            "submitted work comes from recorded assignments, and none are recorded"
        );
        assert!(
            pics.notes
                .iter()
                .any(|n| n.contains("5 submitted answers that state has not recorded")),
            "{:?}",
            pics.notes
        );
        let spend: Vec<(i64, i64)> = pics
            .spend
            .iter()
            .map(|p| (p.at.0 - NOW.0, p.spent.cents()))
            .collect();
        assert_eq!(spend, [(-7200, 48), (-7140, 72), (-6600, 96)]);
        assert!(pics.progress.is_empty(), "no recorded submit times");
        let gone = &data.campaigns[0];
        assert_eq!(gone.title, "gone");
        assert!(gone.notes[0].contains("no longer in the campaign files"));
        assert_eq!(gone.statuses.pending, 1);
    }

    fn assignment(
        item: &str,
        worker: &str,
        status: AssignmentStatus,
        submit: i64,
        label: &str,
    ) -> RecordedAssignment {
        let decided = UnixTime(NOW.0 - 600 + submit);
        RecordedAssignment {
            assignment_id: format!("{item}-{worker}"),
            hit_id: format!("pics-{item}-1"),
            campaign: "pics".into(),
            item_key: item.into(),
            generation: 1,
            worker_id: worker.into(),
            status,
            accept_time: None,
            submit_time: Some(UnixTime(NOW.0 - 3600 + submit)),
            auto_approval_time: None,
            approval_time: (status == AssignmentStatus::Approved).then_some(decided),
            rejection_time: (status == AssignmentStatus::Rejected).then_some(decided),
            answer_xml: String::new(),
            answers: [
                ("label".to_owned(), label.to_owned()),
                ("comment".to_owned(), format!("{item} by {worker}")),
            ]
            .into(),
            requester_feedback: None,
            decided_by: None,
        }
    }

    #[test]
    fn known_answer_accuracy_is_right_over_judged_answers_to_gold_items() {
        use AssignmentStatus::{Approved, Rejected, Submitted};
        let recorded = recorded();
        let mut desired = desired();
        desired.campaigns[0].review.known_answers = Some(turkform_model::KnownAnswers {
            file: "gold/pics.csv".into(),
            // item1 and item2 are gold; item3 is not.
            gold: [
                (
                    "item1".to_owned(),
                    [("label".to_owned(), "cat".to_owned())].into(),
                ),
                (
                    "item2".to_owned(),
                    [("label".to_owned(), "dog".to_owned())].into(),
                ),
            ]
            .into(),
            min_answers: 1,
            reject_below: None,
            approve_at_least: None,
            block_below: None,
            reason: "wrong".into(),
        });
        let mut figures = AssignmentFigures::new(&recorded).with_known_answers(Some(&desired));
        for a in [
            assignment("item1", "W1", Approved, 0, "cat"),
            assignment("item1", "W2", Rejected, 5, "dog"),
            assignment("item2", "W1", Submitted, 10, "cat"),
            assignment("item2", "W2", Submitted, 15, "dog"),
            assignment("item3", "W1", Submitted, 20, "cat"),
            assignment("item3", "W3", Submitted, 25, "cat"),
        ] {
            figures.add(a);
        }
        let figures = figures.finish();
        let Ok(data) = report_data(
            Target::Sim,
            Some(&desired),
            &recorded,
            &figures,
            &BTreeMap::new(),
            &["pics".into()],
            NOW,
        ) else {
            panic!("report data builds");
        };
        let accuracy: BTreeMap<&str, Option<f64>> = data.campaigns[0]
            .workers
            .iter()
            .map(|w| (w.worker_id.as_str(), w.known_answer_accuracy))
            .collect();
        // W1: right on item1, wrong on item2; W2: wrong on item1 (rejected answers count, as
        // in the plan's rule), right on item2; W3 answered no gold item.
        assert_eq!(
            accuracy,
            [("W1", Some(0.5)), ("W2", Some(0.5)), ("W3", None)].into()
        );
    }

    #[test]
    fn recorded_assignments_give_progress_paid_statuses_workers_and_agreement() {
        use AssignmentStatus::{Approved, Rejected, Submitted};
        let recorded = recorded();
        let mut figures = AssignmentFigures::new(&recorded);
        // In the store's order: by item, then submit time.
        for a in [
            assignment("item1", "W1", Approved, 0, "cat"),
            assignment("item1", "W2", Approved, 10, "cat"),
            assignment("item3", "W1", Approved, 20, "cat"),
            assignment("item3", "W2", Submitted, 20, "dog"),
            // Rejected: not compared, but counted as W3's answer and as rejected.
            assignment("item3", "W3", Rejected, 30, "dog"),
        ] {
            figures.add(a);
        }
        let figures = figures.finish();
        let decisions: BTreeMap<String, WorkerDecisions> = [
            (
                "W1".to_owned(),
                WorkerDecisions {
                    approved: 2,
                    decided: 2,
                    ..WorkerDecisions::default()
                },
            ),
            (
                "W3".to_owned(),
                WorkerDecisions {
                    approved: 0,
                    decided: 1,
                    ..WorkerDecisions::default()
                },
            ),
        ]
        .into();
        let Ok(data) = report_data(
            Target::Sim,
            Some(&desired()),
            &recorded,
            &figures,
            &decisions,
            &["pics".into()],
            NOW,
        ) else {
            panic!("report data builds");
        };
        let pics = &data.campaigns[0];
        assert_eq!(
            (
                pics.statuses.submitted,
                pics.statuses.approved,
                pics.statuses.rejected
            ),
            (1, 3, 1)
        );
        assert_eq!(pics.statuses.decided_unsplit, 0);
        let progress: Vec<(i64, u64, Option<u64>)> = pics
            .progress
            .iter()
            .map(|p| (p.at.0 - NOW.0, p.submitted, p.approved))
            .collect();
        assert_eq!(
            progress,
            [
                (-7200, 0, Some(0)),
                (-3600, 1, Some(0)),
                (-3590, 2, Some(0)),
                (-3580, 4, Some(0)),
                (-3570, 5, Some(0)),
                (-600, 5, Some(1)),
                (-590, 5, Some(2)),
                (-580, 5, Some(3)),
            ]
        );
        // $0.24 committed per HIT of 2 assignments: $0.12 paid per approval.
        let paid: Vec<(i64, i64)> = pics
            .paid
            .iter()
            .map(|p| (p.at.0 - NOW.0, p.spent.cents()))
            .collect();
        assert_eq!(paid, [(-600, 12), (-590, 24), (-580, 36)]);
        let workers: Vec<(&str, u64, u64, u64)> = pics
            .workers
            .iter()
            .map(|w| (w.worker_id.as_str(), w.answers, w.approved, w.rejected))
            .collect();
        assert_eq!(workers, [("W1", 2, 2, 0), ("W2", 2, 0, 0), ("W3", 1, 0, 1)]);
        // `label` is categorical (2 values, 4 counted answers); `comment` is free text.
        let agreement: Vec<(&str, f64)> = pics
            .agreement
            .iter()
            .map(|a| (a.item.as_str(), a.agreement))
            .collect();
        assert_eq!(agreement, [("item1", 1.0), ("item3", 0.5)]);
        assert!(
            pics.notes
                .iter()
                .any(|n| n.contains("categorical fields (label)"))
        );
    }

    #[test]
    fn only_restricts_and_an_unknown_name_is_a_user_error() {
        let Ok(data) = report_data(
            Target::Sim,
            Some(&desired()),
            &recorded(),
            &BTreeMap::new(),
            &BTreeMap::new(),
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
            &BTreeMap::new(),
            &BTreeMap::new(),
            &["nope".into()],
            NOW,
        ) else {
            panic!("an unknown campaign is refused");
        };
        assert_eq!(failure.code, 1);
    }

    #[test]
    fn without_loadable_campaign_files_every_campaign_comes_from_state_and_says_so() {
        let Ok(data) = report_data(
            Target::Sim,
            None,
            &recorded(),
            &BTreeMap::new(),
            &BTreeMap::new(),
            &[],
            NOW,
        ) else {
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
