//! The page model: what the template prints, already bounded and formatted. Everything that
//! keeps the page small lives here (downsampled series, top-N tables, a histogram instead of
//! one row per item), so a campaign of any size renders in about the same bytes.

use std::collections::BTreeSet;

use serde::Serialize;
use turkform_model::{Money, UnixTime};

use crate::ReportError;
use crate::data::{CampaignReport, ProgressPoint, ReportData};
use crate::svg::{self, Line, YUnit};

/// Points per chart line at most; more would not show on a 600-pixel chart anyway.
pub const MAX_CHART_POINTS: usize = 400;
/// Rows of the table beside a time chart.
pub const MAX_TABLE_ROWS: usize = 12;
/// Workers listed per campaign.
pub const TOP_WORKERS: usize = 20;
/// Items listed in the agreement table.
pub const LEAST_AGREED: usize = 20;
/// The projection's window: the rate is measured over the most recent this many answers.
pub const PROJECTION_WINDOW_ANSWERS: u64 = 50;
/// Beyond this an estimate says nothing useful (and would overflow a date).
const LONGEST_ESTIMATE_SECS: f64 = 10.0 * 365.25 * 86_400.0;

const SUBMITTED_COLOR: &str = "#2563eb";
const APPROVED_COLOR: &str = "#16a34a";
const SPEND_COLOR: &str = "#0f766e";

/// When a campaign should be complete at its current rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Projection {
    /// Every wanted answer is in.
    Complete,
    /// The estimated completion instant and how it was measured.
    Estimate {
        at: UnixTime,
        answers_per_hour: f64,
        window_answers: u64,
        window_start: UnixTime,
    },
    /// No estimate can be made; `reason` says why, for the page.
    NotEnoughData { reason: String },
}

/// Projects completion from `progress` (cumulative, oldest first): the rate is the answers
/// submitted over the last window (the most recent [`PROJECTION_WINDOW_ANSWERS`] answers, or all
/// of them if fewer) divided by the time from the window's start to `now`, so a campaign that
/// has stalled since shows a slowing rate instead of its old pace. The remaining answers
/// (`answers_wanted` minus those submitted) at that rate give the estimate.
pub fn project_completion(
    progress: &[ProgressPoint],
    answers_wanted: u64,
    now: UnixTime,
) -> Projection {
    let not_enough = |reason: &str| Projection::NotEnoughData {
        reason: reason.to_owned(),
    };
    let Some(last) = progress.last() else {
        return not_enough("no answers submitted yet");
    };
    if answers_wanted == 0 {
        return not_enough("the campaign wants no answers");
    }
    let done = last.submitted;
    if done >= answers_wanted {
        return Projection::Complete;
    }
    let window_floor = done.saturating_sub(PROJECTION_WINDOW_ANSWERS);
    let start = progress
        .iter()
        .rev()
        .find(|p| p.submitted <= window_floor)
        .unwrap_or(&progress[0]);
    let window_answers = done.saturating_sub(start.submitted);
    let window_secs = now.secs_since(start.at);
    if window_answers < 2 {
        return not_enough("fewer than 2 answers submitted so far");
    }
    if window_secs <= 0 {
        return not_enough("all answers were submitted at the same instant");
    }
    let rate = window_answers as f64 / window_secs as f64;
    let eta = (answers_wanted - done) as f64 / rate;
    if eta > LONGEST_ESTIMATE_SECS {
        return not_enough("at the current rate it would take more than ten years");
    }
    Projection::Estimate {
        at: now.plus_secs(eta.ceil() as u64),
        answers_per_hour: rate * 3600.0,
        window_answers,
        window_start: start.at,
    }
}

/// At most `max` elements, evenly spread by index, always keeping the first and the last.
fn sample<T: Clone>(all: &[T], max: usize) -> Vec<T> {
    if all.len() <= max || max < 2 {
        return all.to_vec();
    }
    let last = all.len() - 1;
    (0..max)
        .map(|i| all[i * last / (max - 1)].clone())
        .collect()
}

fn percent(part: u64, whole: u64) -> String {
    match part.saturating_mul(100).checked_div(whole) {
        Some(p) => format!("{p}%"),
        None => "–".to_owned(),
    }
}

fn time(at: UnixTime) -> String {
    at.to_rfc3339()
}

#[derive(Serialize)]
pub struct Page {
    generated_at: String,
    target: &'static str,
    production: bool,
    window_answers: u64,
    overview: Vec<OverviewRow>,
    campaigns: Vec<CampaignView>,
}

#[derive(Serialize)]
struct OverviewRow {
    name: String,
    anchor: String,
    title: String,
    items: String,
    items_pct: String,
    answers: String,
    spent: String,
    budget: String,
    projection: String,
}

#[derive(Serialize)]
struct CampaignView {
    name: String,
    anchor: String,
    title: String,
    notes: Vec<String>,
    items_total: u64,
    items_complete: u64,
    items_pct: String,
    answers_submitted: u64,
    answers_wanted: u64,
    spent: String,
    budget: String,
    projection: String,
    projection_how: String,
    progress_svg: String,
    progress_rows: Vec<[String; 3]>,
    progress_points: usize,
    spend_svg: String,
    spend_rows: Vec<[String; 2]>,
    spend_points: usize,
    status_svg: String,
    status_rows: Vec<[String; 3]>,
    workers: Vec<[String; 4]>,
    workers_total: usize,
    agreement_svg: Option<String>,
    agreement_rows: Vec<[String; 2]>,
    agreement_total: usize,
    agreement_mean: String,
}

fn check_share(campaign: &str, what: String, value: f64) -> Result<(), ReportError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ReportError::NotAShare {
            campaign: campaign.to_owned(),
            what,
            value,
        })
    }
}

pub fn build(data: &ReportData) -> Result<Page, ReportError> {
    let mut names = BTreeSet::new();
    for c in &data.campaigns {
        if !names.insert(c.name.as_str()) {
            return Err(ReportError::DuplicateCampaign(c.name.clone()));
        }
    }
    let mut overview = Vec::with_capacity(data.campaigns.len());
    let mut campaigns = Vec::with_capacity(data.campaigns.len());
    for (index, campaign) in data.campaigns.iter().enumerate() {
        let view = campaign_view(index, campaign, data.generated_at)?;
        overview.push(OverviewRow {
            name: view.name.clone(),
            anchor: view.anchor.clone(),
            title: view.title.clone(),
            items: format!("{} / {}", view.items_complete, view.items_total),
            items_pct: view.items_pct.clone(),
            answers: format!(
                "{} / {} ({})",
                view.answers_submitted,
                view.answers_wanted,
                percent(view.answers_submitted, view.answers_wanted)
            ),
            spent: view.spent.clone(),
            budget: view.budget.clone(),
            projection: view.projection.clone(),
        });
        campaigns.push(view);
    }
    Ok(Page {
        generated_at: time(data.generated_at),
        target: data.target.as_str(),
        production: data.target == turkform_model::Target::Production,
        window_answers: PROJECTION_WINDOW_ANSWERS,
        overview,
        campaigns,
    })
}

fn campaign_view(
    index: usize,
    c: &CampaignReport,
    now: UnixTime,
) -> Result<CampaignView, ReportError> {
    for a in &c.agreement {
        check_share(
            &c.name,
            format!("the agreement of item `{}`", a.item),
            a.agreement,
        )?;
    }
    for w in &c.workers {
        if let Some(acc) = w.known_answer_accuracy {
            check_share(
                &c.name,
                format!("the known-answer accuracy of worker `{}`", w.worker_id),
                acc,
            )?;
        }
    }
    let mut progress = c.progress.clone();
    progress.sort_by_key(|p| p.at);
    let mut spend = c.spend.clone();
    spend.sort_by_key(|p| p.at);

    let s = &c.statuses;
    let answers_submitted = s.submitted + s.approved + s.rejected + s.decided_unsplit;
    let spent = spend.last().map_or(Money::ZERO, |p| p.spent);
    let budget = match c.budget {
        Some(b) if b.cents() > 0 => format!(
            "{b} ({} used)",
            percent(
                u64::try_from(spent.cents()).unwrap_or(0),
                u64::try_from(b.cents()).unwrap_or(0)
            )
        ),
        Some(b) => b.to_string(),
        None => "none set".to_owned(),
    };

    let projection = project_completion(&progress, c.answers_wanted, now);
    let (projection_text, projection_how) = match &projection {
        Projection::Complete => (
            "complete".to_owned(),
            "every wanted answer is in".to_owned(),
        ),
        Projection::Estimate {
            at,
            answers_per_hour,
            window_answers,
            window_start,
        } => (
            time(*at),
            format!(
                "{window_answers} answers from {} to {} ({answers_per_hour:.1} answers per hour); {} answers remain",
                time(*window_start),
                time(now),
                c.answers_wanted
                    .saturating_sub(progress.last().map_or(0, |p| p.submitted))
            ),
        ),
        Projection::NotEnoughData { reason } => ("not enough data".to_owned(), reason.clone()),
    };

    let chart_progress = sample(&progress, MAX_CHART_POINTS);
    let progress_svg = svg::line_chart(
        "answers over time",
        &[
            Line {
                label: "submitted",
                color: SUBMITTED_COLOR,
                points: chart_progress
                    .iter()
                    .map(|p| (p.at.seconds(), p.submitted as f64))
                    .collect(),
            },
            Line {
                label: "approved",
                color: APPROVED_COLOR,
                points: chart_progress
                    .iter()
                    .filter_map(|p| p.approved.map(|a| (p.at.seconds(), a as f64)))
                    .collect(),
            },
        ],
        YUnit::Answers,
        None,
    );
    let progress_rows = sample(&progress, MAX_TABLE_ROWS)
        .into_iter()
        .map(|p| {
            [
                time(p.at),
                p.submitted.to_string(),
                p.approved.map_or_else(|| "–".to_owned(), |a| a.to_string()),
            ]
        })
        .collect();

    let chart_spend = sample(&spend, MAX_CHART_POINTS);
    let spend_svg = svg::line_chart(
        "spend over time",
        &[Line {
            label: "spent",
            color: SPEND_COLOR,
            points: chart_spend
                .iter()
                .map(|p| (p.at.seconds(), p.spent.cents() as f64))
                .collect(),
        }],
        YUnit::Dollars,
        c.budget.map(|b| b.cents() as f64),
    );
    let spend_rows = sample(&spend, MAX_TABLE_ROWS)
        .into_iter()
        .map(|p| [time(p.at), p.spent.to_string()])
        .collect();

    let mut segments = vec![
        ("available", "#9ca3af", s.available),
        ("pending", "#f59e0b", s.pending),
        ("submitted", SUBMITTED_COLOR, s.submitted),
        ("approved", APPROVED_COLOR, s.approved),
        ("rejected", "#dc2626", s.rejected),
    ];
    if s.decided_unsplit > 0 {
        segments.push(("approved or rejected", "#7c3aed", s.decided_unsplit));
    }
    let status_total: u64 = segments.iter().map(|x| x.2).sum();
    let status_svg = svg::status_bar(&segments);
    let status_rows = segments
        .iter()
        .map(|(label, _, n)| {
            [
                (*label).to_owned(),
                n.to_string(),
                percent(*n, status_total),
            ]
        })
        .collect();

    let mut workers: Vec<&crate::data::WorkerSummary> = c.workers.iter().collect();
    workers.sort_by(|a, b| {
        b.answers
            .cmp(&a.answers)
            .then_with(|| a.worker_id.cmp(&b.worker_id))
    });
    let worker_rows = workers
        .iter()
        .take(TOP_WORKERS)
        .map(|w| {
            let decided = w.approved + w.rejected;
            let rate = if decided == 0 {
                "none decided".to_owned()
            } else {
                format!(
                    "{} ({}/{decided})",
                    percent(w.approved, decided),
                    w.approved
                )
            };
            let accuracy = w
                .known_answer_accuracy
                .map_or_else(|| "–".to_owned(), |a| format!("{:.0}%", a * 100.0));
            [w.worker_id.clone(), w.answers.to_string(), rate, accuracy]
        })
        .collect();

    let (agreement_svg, agreement_rows, agreement_mean) = if c.agreement.is_empty() {
        (None, Vec::new(), String::new())
    } else {
        let mut bins = [0u64; 10];
        let mut sum = 0.0;
        for a in &c.agreement {
            bins[((a.agreement * 10.0) as usize).min(9)] += 1;
            sum += a.agreement;
        }
        let mut least: Vec<&crate::data::ItemAgreement> = c.agreement.iter().collect();
        let cmp = |a: &&crate::data::ItemAgreement, b: &&crate::data::ItemAgreement| {
            a.agreement
                .total_cmp(&b.agreement)
                .then_with(|| a.item.cmp(&b.item))
        };
        if least.len() > LEAST_AGREED {
            least.select_nth_unstable_by(LEAST_AGREED, cmp);
            least.truncate(LEAST_AGREED);
        }
        least.sort_by(cmp);
        (
            Some(svg::histogram(&bins)),
            least
                .iter()
                .map(|a| [a.item.clone(), format!("{:.0}%", a.agreement * 100.0)])
                .collect(),
            format!("{:.0}%", sum / c.agreement.len() as f64 * 100.0),
        )
    };

    Ok(CampaignView {
        name: c.name.clone(),
        anchor: format!("campaign-{index}"),
        title: c.title.clone(),
        notes: c.notes.clone(),
        items_total: c.items_total,
        items_complete: c.items_complete,
        items_pct: percent(c.items_complete, c.items_total),
        answers_submitted,
        answers_wanted: c.answers_wanted,
        spent: spent.to_string(),
        budget,
        projection: projection_text,
        projection_how,
        progress_svg,
        progress_rows,
        progress_points: progress.len(),
        spend_svg,
        spend_rows,
        spend_points: spend.len(),
        status_svg,
        status_rows,
        workers: worker_rows,
        workers_total: c.workers.len(),
        agreement_svg,
        agreement_rows,
        agreement_total: c.agreement.len(),
        agreement_mean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at: i64, submitted: u64) -> ProgressPoint {
        ProgressPoint {
            at: UnixTime(at),
            submitted,
            approved: None,
        }
    }

    #[test]
    fn projection_uses_the_last_window_up_to_now() {
        // 200 answers over 200 s, then the last 50 took 100 s more: the window is the last 50,
        // measured up to now (t = 300), so 50 answers / 150 s.
        let mut progress: Vec<ProgressPoint> = (0..=150).map(|i| point(i, i as u64)).collect();
        progress.push(point(250, 200));
        let Projection::Estimate {
            at,
            answers_per_hour,
            window_answers,
            window_start,
        } = project_completion(&progress, 300, UnixTime(300))
        else {
            panic!("expected an estimate");
        };
        assert_eq!(window_start, UnixTime(150));
        assert_eq!(window_answers, 50);
        assert!((answers_per_hour - 1200.0).abs() < 1e-9);
        // 100 remaining at 1/3 answer per second: 300 s after now.
        assert_eq!(at, UnixTime(600));
    }

    #[test]
    fn projection_says_when_it_cannot_estimate() {
        assert!(matches!(
            project_completion(&[], 10, UnixTime(5)),
            Projection::NotEnoughData { .. }
        ));
        assert!(matches!(
            project_completion(&[point(0, 0), point(10, 1)], 10, UnixTime(20)),
            Projection::NotEnoughData { .. }
        ));
        assert_eq!(
            project_completion(&[point(0, 0), point(10, 10)], 10, UnixTime(20)),
            Projection::Complete
        );
        assert!(matches!(
            project_completion(
                &[point(0, 0), point(1, 2)],
                1_000_000_000_000,
                UnixTime(100)
            ),
            Projection::NotEnoughData { .. }
        ));
    }

    #[test]
    fn sampling_keeps_first_and_last_and_bounds_the_length() {
        let all: Vec<u32> = (0..10_000).collect();
        let s = sample(&all, 400);
        assert_eq!(s.len(), 400);
        assert_eq!(s[0], 0);
        assert_eq!(s[399], 9_999);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(&all[..5], 400), vec![0, 1, 2, 3, 4]);
    }
}
