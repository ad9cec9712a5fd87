//! `goal = "approved"` (DESIGN.md section 9): keep each item at `assignments` answers that count.
//!
//! An answer counts unless it was rejected or it is a worker's second answer to the item
//! ([`turkform_model::counted_answers`], the rule aggregated results use too). Every answer that
//! does not count is one assignment the item lacks, so the planner asks for one more: on the
//! item's HIT (CreateAdditionalAssignmentsForHIT, after extending it when its lifetime ended),
//! or, where the 10-assignment rule forbids adding, on a follow-up HIT of the next generation.
//!
//! What is counted, per item: the recorded HITs of every generation that ask the item's current
//! question (the same content hash; a question edit makes a new item as far as answers go), their
//! slots (`MaxAssignments`, summed) and the answers state records on them. The item lacks
//! `assignments + not counted - slots` assignments. Slots that nobody took before a HIT's lifetime
//! ended are counted as given, not re-posted: like every HIT that reaches the end of its
//! lifetime, the goal replaces answers that do not count, not work nobody wanted.
//!
//! Only answers already recorded in state count, so the plan that rejects an answer does not yet
//! add its replacement: the plan after it (the refresh that follows the rejection records it) does.

use std::collections::{HashMap, HashSet};

use turkform_model::{
    AnswerKey, AssignmentStatus, DesiredCampaign, RecordedState, ReviewGoal, counted_answers,
};

/// What one item has toward its goal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GoalTally {
    /// Slots of the item's HITs that ask its current question, every generation.
    pub slots: u32,
    /// How many HITs those are.
    pub hits: u32,
    /// Rejected answers on them.
    pub rejected: u32,
    /// Answers by a worker whose earlier answer to the item counts.
    pub repeats: u32,
}

impl GoalTally {
    /// Answers that occupy a slot and do not count.
    pub fn uncounted(self) -> u32 {
        self.rejected + self.repeats
    }

    /// Assignments the item lacks to reach `wanted` answers that count.
    pub fn missing(self, wanted: u32) -> u32 {
        (wanted + self.uncounted()).saturating_sub(self.slots)
    }

    /// Why assignments are added, grouped in the human plan by this text: counts only, no ids.
    pub fn reason(self, wanted: u32) -> String {
        let mut parts = Vec::new();
        if self.rejected > 0 {
            parts.push(if self.rejected == 1 {
                "1 answer rejected".to_owned()
            } else {
                format!("{} answers rejected", self.rejected)
            });
        }
        if self.repeats > 0 {
            parts.push(if self.repeats == 1 {
                "1 repeat answer by a worker who had answered the item".to_owned()
            } else {
                format!(
                    "{} repeat answers by workers who had answered the item",
                    self.repeats
                )
            });
        }
        if self.slots < wanted {
            parts.push(format!("assignments raised to {wanted}"));
        }
        format!("goal = \"approved\": {}", parts.join(", "))
    }
}

/// The tallies of one campaign with `goal = "approved"`, by item key.
#[derive(Debug, Default)]
pub(crate) struct Goals<'a> {
    items: HashMap<&'a str, GoalTally>,
}

impl<'a> Goals<'a> {
    /// `None` unless the campaign's goal is `approved`.
    pub fn build(campaign: &'a DesiredCampaign, recorded: &'a RecordedState) -> Option<Goals<'a>> {
        if campaign.review.goal != ReviewGoal::Approved {
            return None;
        }
        let name = campaign.name.as_str();
        let question: HashMap<&str, &str> = campaign
            .items
            .iter()
            .map(|i| (i.key.as_str(), i.content_hash.as_str()))
            .collect();
        let mut items: HashMap<&str, GoalTally> = HashMap::new();
        let mut counted_hits: HashSet<&str> = HashSet::new();
        for hit in recorded.hits.iter().filter(|h| h.campaign == name) {
            if question.get(hit.item_key.as_str()) == Some(&hit.content_hash.as_str()) {
                let tally = items.entry(hit.item_key.as_str()).or_default();
                tally.slots += hit.max_assignments;
                tally.hits += 1;
                counted_hits.insert(hit.hit_id.as_str());
            }
        }
        let mut answers: HashMap<&str, Vec<AnswerKey<'a>>> = HashMap::new();
        for a in &recorded.assignments {
            if a.campaign == name && counted_hits.contains(a.hit_id.as_str()) {
                answers
                    .entry(a.item_key.as_str())
                    .or_default()
                    .push(AnswerKey::of(a));
            }
        }
        for (key, keys) in answers {
            let tally = items.entry(key).or_default();
            for (a, counts) in keys.iter().zip(counted_answers(&keys)) {
                if a.status == AssignmentStatus::Rejected {
                    tally.rejected += 1;
                } else if !counts {
                    tally.repeats += 1;
                }
            }
        }
        Some(Goals { items })
    }

    /// The item's tally (empty for an item with no HIT yet).
    pub fn tally(&self, key: &str) -> GoalTally {
        self.items.get(key).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_that_does_not_count_is_one_assignment_missing() {
        let t = GoalTally {
            slots: 3,
            hits: 1,
            rejected: 1,
            repeats: 0,
        };
        assert_eq!(t.missing(3), 1);
        assert_eq!(t.reason(3), "goal = \"approved\": 1 answer rejected");
        let after = GoalTally { slots: 4, ..t };
        assert_eq!(after.missing(3), 0, "once added, nothing more");
        let raised = GoalTally {
            slots: 3,
            hits: 1,
            rejected: 0,
            repeats: 2,
        };
        assert_eq!(raised.missing(5), 4);
        assert_eq!(
            raised.reason(5),
            "goal = \"approved\": 2 repeat answers by workers who had answered the item, assignments raised to 5"
        );
        // An overridden rejection leaves a spare slot: nothing is missing, nothing negative.
        assert_eq!(
            GoalTally {
                slots: 4,
                hits: 1,
                rejected: 0,
                repeats: 0
            }
            .missing(3),
            0
        );
    }
}
