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

/// What decides whether one answer to an item counts: see [`counted_answers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerKey<'a> {
    pub worker_id: &'a str,
    pub status: AssignmentStatus,
    pub submit_time: Option<UnixTime>,
    pub generation: u32,
    pub assignment_id: &'a str,
}

impl<'a> AnswerKey<'a> {
    pub fn of(a: &'a RecordedAssignment) -> AnswerKey<'a> {
        AnswerKey {
            worker_id: &a.worker_id,
            status: a.status,
            submit_time: a.submit_time,
            generation: a.generation,
            assignment_id: &a.assignment_id,
        }
    }
}

/// Which of one item's answers count, the one rule shared by `goal = "approved"` and aggregated
/// results (DESIGN.md sections 8 and 9): a rejected answer never counts, and of one worker's
/// answers to the item only the first one that is not rejected does, in submit order (submit
/// time, then generation, then assignment id). MTurk keeps a worker from taking the same HIT
/// twice, but a later generation's HIT is a new HIT to it, so a worker can answer an item again.
///
/// `answers` in any order; the result says, in that order, whether each counts.
pub fn counted_answers(answers: &[AnswerKey<'_>]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..answers.len()).collect();
    order.sort_by(|&x, &y| {
        let (x, y) = (&answers[x], &answers[y]);
        (x.submit_time, x.generation, x.assignment_id).cmp(&(
            y.submit_time,
            y.generation,
            y.assignment_id,
        ))
    });
    let mut seen = std::collections::HashSet::new();
    let mut counts = vec![false; answers.len()];
    for i in order {
        let a = &answers[i];
        if a.status != AssignmentStatus::Rejected && seen.insert(a.worker_id) {
            counts[i] = true;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(
        worker: &'a str,
        status: AssignmentStatus,
        at: i64,
        generation: u32,
        id: &'a str,
    ) -> AnswerKey<'a> {
        AnswerKey {
            worker_id: worker,
            status,
            submit_time: Some(UnixTime(at)),
            generation,
            assignment_id: id,
        }
    }

    #[test]
    fn a_rejected_answer_and_a_workers_second_answer_do_not_count() {
        use AssignmentStatus::*;
        let answers = [
            // Given out of submit order: W1's later answer (generation 2) first.
            key("W1", Approved, 500, 2, "A5"),
            key("W1", Submitted, 100, 1, "A1"),
            key("W2", Rejected, 110, 1, "A2"),
            key("W2", Approved, 600, 2, "A6"),
            key("W3", Submitted, 120, 1, "A3"),
        ];
        assert_eq!(
            counted_answers(&answers),
            [false, true, false, true, true],
            "W1's repeat does not count; W2's rejected answer does not, its next one does"
        );
        assert!(counted_answers(&[]).is_empty());
    }

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
