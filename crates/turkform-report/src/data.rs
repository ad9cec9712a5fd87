//! The figures a report shows: plain, serialisable data with no behaviour, so that the binary
//! (or a test, or a benchmark) can build it from anywhere.

use serde::{Deserialize, Serialize};
use turkform_model::{Money, Target, UnixTime};

/// Everything one report page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// When the figures were read; also the end of the projection's window.
    pub generated_at: UnixTime,
    /// The MTurk environment the campaigns run in (a page about production money must say so).
    pub target: Target,
    /// In the order they should appear (the binary sorts them by name).
    pub campaigns: Vec<CampaignReport>,
}

/// One campaign's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignReport {
    pub name: String,
    /// The HIT type title workers see, so a reader recognises the campaign.
    pub title: String,
    pub items_total: u64,
    /// Items whose every wanted assignment has been submitted.
    pub items_complete: u64,
    /// Answers the campaign needs in all (assignments per item summed over its items): the
    /// target the projection counts towards.
    pub answers_wanted: u64,
    /// `budget.max_spend`, drawn as a line on the spend chart.
    pub budget: Option<Money>,
    /// Cumulative answers over time, oldest first.
    pub progress: Vec<ProgressPoint>,
    /// Cumulative money committed or spent over time, oldest first.
    pub spend: Vec<SpendPoint>,
    pub statuses: StatusCounts,
    /// Every worker with answers (the page shows the busiest 20).
    pub workers: Vec<WorkerSummary>,
    /// Agreement per item for categorical answers; empty when there are none (free text).
    pub agreement: Vec<ItemAgreement>,
    /// Caveats about where figures come from, shown under the campaign's heading (for example
    /// that the approved / rejected split is not recorded yet).
    pub notes: Vec<String>,
}

/// The cumulative answer counts at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressPoint {
    pub at: UnixTime,
    /// Answers submitted so far (whatever was decided since).
    pub submitted: u64,
    /// Answers approved so far (by turkform, auto-approval or outside); `None` when the source
    /// cannot tell approved from rejected (the line is then left out rather than drawn at 0).
    pub approved: Option<u64>,
}

/// The cumulative spend at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendPoint {
    pub at: UnixTime,
    pub spent: Money,
}

/// How many assignments are in each state now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Open for workers to accept.
    pub available: u64,
    /// Accepted, not yet submitted.
    pub pending: u64,
    /// Submitted, awaiting review.
    pub submitted: u64,
    pub approved: u64,
    pub rejected: u64,
    /// Approved or rejected, when only MTurk's HIT counters are known (they count decided
    /// assignments without telling which way). Zero once assignments are recorded one by one.
    pub decided_unsplit: u64,
}

/// One worker's share of a campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerSummary {
    pub worker_id: String,
    /// Answers submitted.
    pub answers: u64,
    pub approved: u64,
    pub rejected: u64,
    /// Share of known-answer (gold) items answered right, when the campaign has any.
    pub known_answer_accuracy: Option<f64>,
}

/// How much the answers to one item agree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemAgreement {
    pub item: String,
    /// Share of the answers holding the majority value, in `[0, 1]`.
    pub agreement: f64,
}
