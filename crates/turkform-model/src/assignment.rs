//! Assignments as state keeps them: every one a refresh has seen, for good, with who decided it.
//! Built by refresh from `ListAssignmentsForHIT`, stored by `turkform-state`, read by `results`
//! and `status`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::UnixTime;

/// MTurk's `AssignmentStatus`. An accepted but not yet submitted assignment is not listed by
/// MTurk at all (it only shows in the HIT's pending counter), so it has no status here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AssignmentStatus {
    /// Submitted, awaiting a decision (or MTurk's auto-approval).
    Submitted,
    Approved,
    Rejected,
}

impl AssignmentStatus {
    pub const ALL: [AssignmentStatus; 3] = [
        AssignmentStatus::Submitted,
        AssignmentStatus::Approved,
        AssignmentStatus::Rejected,
    ];

    /// The name MTurk uses (and state stores).
    pub fn api_name(self) -> &'static str {
        match self {
            AssignmentStatus::Submitted => "Submitted",
            AssignmentStatus::Approved => "Approved",
            AssignmentStatus::Rejected => "Rejected",
        }
    }

    pub fn parse(s: &str) -> Option<AssignmentStatus> {
        AssignmentStatus::ALL
            .into_iter()
            .find(|status| status.api_name() == s)
    }
}

/// Who made the decision an assignment carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// turkform approved or rejected it (it recorded the intent before the call).
    Turkform,
    /// MTurk approved it at its AutoApprovalTime because nobody decided in time.
    Auto,
    /// Another tool (the web UI, boto3, ...) decided it; turkform records and never fights it.
    Outside,
}

impl DecidedBy {
    /// The name state stores.
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Turkform => "turkform",
            DecidedBy::Auto => "auto",
            DecidedBy::Outside => "outside",
        }
    }

    pub fn parse(s: &str) -> Option<DecidedBy> {
        [DecidedBy::Turkform, DecidedBy::Auto, DecidedBy::Outside]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    /// Who decided an assignment that turkform did not decide: MTurk's auto-approval when it
    /// was approved exactly at its auto-approval time, someone else otherwise.
    pub fn observed(
        status: AssignmentStatus,
        approval_time: Option<UnixTime>,
        auto_approval_time: Option<UnixTime>,
    ) -> Option<DecidedBy> {
        match status {
            AssignmentStatus::Submitted => None,
            AssignmentStatus::Approved
                if approval_time.is_some() && approval_time == auto_approval_time =>
            {
                Some(DecidedBy::Auto)
            }
            AssignmentStatus::Approved | AssignmentStatus::Rejected => Some(DecidedBy::Outside),
        }
    }
}

/// One assignment in state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedAssignment {
    pub assignment_id: String,
    pub hit_id: String,
    /// The item it answers, from the HIT's record (so exports need no join to know it).
    pub campaign: String,
    pub item_key: String,
    pub generation: u32,
    pub worker_id: String,
    pub status: AssignmentStatus,
    pub accept_time: Option<UnixTime>,
    pub submit_time: Option<UnixTime>,
    pub auto_approval_time: Option<UnixTime>,
    pub approval_time: Option<UnixTime>,
    pub rejection_time: Option<UnixTime>,
    /// The QuestionFormAnswers document exactly as MTurk returned it: the parsed form below
    /// can always be rebuilt from it by a newer parser.
    pub answer_xml: String,
    /// Field -> value, flattened (see `turkform-results`); empty when the XML did not parse.
    pub answers: BTreeMap<String, String>,
    pub requester_feedback: Option<String>,
    /// `None` while it is undecided.
    pub decided_by: Option<DecidedBy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_deciders_round_trip_through_their_names() {
        for s in AssignmentStatus::ALL {
            assert_eq!(AssignmentStatus::parse(s.api_name()), Some(s));
        }
        assert_eq!(AssignmentStatus::parse("submitted"), None);
        for d in [DecidedBy::Turkform, DecidedBy::Auto, DecidedBy::Outside] {
            assert_eq!(DecidedBy::parse(d.as_str()), Some(d));
        }
    }

    #[test]
    fn an_approval_at_the_auto_approval_instant_is_mturks_own() {
        let t = Some(UnixTime(1_000));
        assert_eq!(
            DecidedBy::observed(AssignmentStatus::Approved, t, t),
            Some(DecidedBy::Auto)
        );
        assert_eq!(
            DecidedBy::observed(AssignmentStatus::Approved, Some(UnixTime(999)), t),
            Some(DecidedBy::Outside)
        );
        assert_eq!(
            DecidedBy::observed(AssignmentStatus::Rejected, t, t),
            Some(DecidedBy::Outside)
        );
        assert_eq!(DecidedBy::observed(AssignmentStatus::Submitted, t, t), None);
    }
}
