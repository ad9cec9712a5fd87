//! Assignment sync, the part of refresh that reads what workers sent back (DESIGN section 8).
//!
//! `ListAssignmentsForHIT` is called only for HITs that can hold something state has not
//! recorded: their ListHITs counters (available, pending, completed) moved since the last
//! refresh, they report more completed assignments than state holds, or they hold a Submitted
//! assignment whose auto-approval time has passed. A refresh after which nothing happened
//! makes no such call at all.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use turkform_model::{DecidedBy, RecordedAssignment, RecordedHit, UnixTime};
use turkform_mturk::{ApiError, MturkApi, RemoteAssignment, RemoteHit};
use turkform_state::StateStore;

use crate::ApplyError;
use crate::engine::blocking;
use crate::limiter::Limiter;

/// Concurrent `ListAssignmentsForHIT` reads: enough to hide a round trip of tens of
/// milliseconds at a few hundred requests per second. The pace itself is learned from
/// throttling by the same adaptive [`Limiter`] the executor uses.
const CONCURRENT_READS: usize = 16;

/// How often one read is retried through throttling or transient failures before the refresh
/// gives up (nothing is committed then; the next refresh reads the same HITs again).
const MAX_ATTEMPTS: u32 = 30;

/// What state knows about the assignments of each HIT, to decide which HITs to read.
pub(crate) struct Known {
    /// Recorded assignments per HIT.
    counts: HashMap<String, u64>,
    /// HITs holding an undecided assignment past its auto-approval time.
    past_auto_approval: HashSet<String>,
}

impl Known {
    pub(crate) fn load(store: &StateStore, now: UnixTime) -> Result<Known, ApplyError> {
        let (counts, past) = blocking(|| {
            Ok::<_, turkform_state::StateError>((
                store.assignment_counts()?,
                store.hits_past_auto_approval(now)?,
            ))
        })
        .map_err(ApplyError::State)?;
        let mut per_hit: HashMap<String, u64> = HashMap::new();
        for c in counts {
            *per_hit.entry(c.hit_id).or_default() += c.count;
        }
        Ok(Known {
            counts: per_hit,
            past_auto_approval: past.into_iter().collect(),
        })
    }

    /// Whether `recorded` (as state had it before this refresh) must be read again, given what
    /// MTurk lists for it now.
    pub(crate) fn needs_sync(&self, recorded: &RecordedHit, remote: &RemoteHit) -> bool {
        let moved = (
            remote.assignments_available,
            remote.assignments_pending,
            remote.assignments_completed,
        ) != (
            recorded.assignments_available,
            recorded.assignments_pending,
            recorded.assignments_completed,
        );
        let held = self.counts.get(&recorded.hit_id).copied().unwrap_or(0);
        moved
            || u64::from(remote.assignments_completed) > held
            || self.past_auto_approval.contains(&recorded.hit_id)
    }
}

/// Reads every assignment of `hits` and returns the records that are new or changed, and the
/// number of calls made.
pub(crate) async fn sync(
    api: &dyn MturkApi,
    store: &StateStore,
    hits: &[RecordedHit],
) -> Result<(Vec<RecordedAssignment>, u64), ApplyError> {
    let limiter = Mutex::new(Limiter::new(CONCURRENT_READS));
    let results: Vec<Result<(Vec<RemoteAssignment>, u64), ApiError>> =
        futures_util::stream::iter(hits.iter().map(|hit| list_all(api, &limiter, &hit.hit_id)))
            .buffered(CONCURRENT_READS)
            .collect()
            .await;
    let mut changed = Vec::new();
    let mut calls = 0;
    for (hit, result) in hits.iter().zip(results) {
        let (remote, pages) = result.map_err(ApplyError::Api)?;
        calls += pages;
        let recorded =
            blocking(|| store.assignments_of_hit(&hit.hit_id)).map_err(ApplyError::State)?;
        let by_id: HashMap<&str, &RecordedAssignment> = recorded
            .iter()
            .map(|a| (a.assignment_id.as_str(), a))
            .collect();
        for r in remote {
            let record = merge(hit, &r, by_id.get(r.assignment_id.as_str()).copied());
            if by_id.get(record.assignment_id.as_str()) != Some(&&record) {
                changed.push(record);
            }
        }
    }
    Ok((changed, calls))
}

/// Every page of one HIT's assignments, each page paced and retried through throttling.
async fn list_all(
    api: &dyn MturkApi,
    limiter: &Mutex<Limiter>,
    hit_id: &str,
) -> Result<(Vec<RemoteAssignment>, u64), ApiError> {
    let mut all = Vec::new();
    let mut calls = 0;
    let mut next = None;
    loop {
        let (page, sent) = paced(limiter, || {
            api.list_assignments_for_hit(hit_id, next.clone())
        })
        .await?;
        calls += sent;
        let empty = page.items.is_empty();
        all.extend(page.items);
        match page.next_token {
            Some(t) if !empty => next = Some(t),
            _ => return Ok((all, calls)),
        }
    }
}

/// One read, started when the limiter allows, retried through throttling (which slows the
/// limiter down) and transient failures (with backoff). Returns the value and the requests
/// sent.
async fn paced<T, F, Fut>(limiter: &Mutex<Limiter>, mut read: F) -> Result<(T, u64), ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut sent = 0;
    loop {
        loop {
            let now = Instant::now();
            let wait = {
                let mut l = limiter.lock().unwrap_or_else(|p| p.into_inner());
                match l.check(now, 0) {
                    Ok(()) => {
                        l.on_send(now);
                        None
                    }
                    Err(until) => Some(until.unwrap_or(now + Duration::from_millis(1))),
                }
            };
            match wait {
                None => break,
                Some(until) => tokio::time::sleep_until(until.into()).await,
            }
        }
        let started = Instant::now();
        sent += 1;
        let lock = || limiter.lock().unwrap_or_else(|p| p.into_inner());
        match read().await {
            Ok(value) => {
                lock().on_success();
                return Ok((value, sent));
            }
            Err(ApiError::Throttled { .. }) if sent < u64::from(MAX_ATTEMPTS) => {
                lock().on_throttle(Instant::now(), started);
            }
            Err(e) if e.is_retryable() && sent < u64::from(MAX_ATTEMPTS) => {
                lock().on_success();
                tokio::time::sleep(Duration::from_millis(100 << sent.min(5))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The record of `remote`, keeping who decided it when the decision is the one state knew.
fn merge(
    hit: &RecordedHit,
    remote: &RemoteAssignment,
    known: Option<&RecordedAssignment>,
) -> RecordedAssignment {
    let decided_by = match known {
        Some(k) if k.status == remote.status && k.decided_by.is_some() => k.decided_by,
        // turkform records its own decisions when it makes them; whatever else is decided was
        // MTurk's auto-approval or another tool, and is recorded, never fought.
        _ => DecidedBy::observed(
            remote.status,
            remote.approval_time,
            remote.auto_approval_time,
        ),
    };
    let answers = match turkform_results::parse_answers(&remote.answer) {
        Ok(a) => a,
        Err(e) => {
            // The raw XML is kept: a fixed parser can read it again later.
            tracing::warn!(
                assignment_id = %remote.assignment_id,
                hit_id = %hit.hit_id,
                error = %e,
                "cannot parse an assignment's answers; keeping the raw XML"
            );
            Default::default()
        }
    };
    RecordedAssignment {
        assignment_id: remote.assignment_id.clone(),
        hit_id: hit.hit_id.clone(),
        campaign: hit.campaign.clone(),
        item_key: hit.item_key.clone(),
        generation: hit.generation,
        worker_id: remote.worker_id.clone(),
        status: remote.status,
        accept_time: remote.accept_time,
        submit_time: remote.submit_time,
        auto_approval_time: remote.auto_approval_time,
        approval_time: remote.approval_time,
        rejection_time: remote.rejection_time,
        answer_xml: remote.answer.clone(),
        answers,
        requester_feedback: remote.requester_feedback.clone(),
        decided_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turkform_model::{AssignmentStatus, HitStatus, Money};

    fn recorded(available: u32, pending: u32, completed: u32) -> RecordedHit {
        RecordedHit {
            campaign: "c".into(),
            item_key: "k".into(),
            generation: 1,
            hit_id: "H1".into(),
            hit_type_id: "T".into(),
            hit_type_hash: String::new(),
            content_hash: String::new(),
            max_assignments: 3,
            committed_cost: Money::ZERO,
            created_at: UnixTime(0),
            expiration: UnixTime(100),
            status: HitStatus::Assignable,
            assignments_available: available,
            assignments_pending: pending,
            assignments_completed: completed,
            expired_by: None,
            paused_remaining_secs: None,
            drift: Vec::new(),
        }
    }

    fn remote(available: u32, pending: u32, completed: u32) -> RemoteHit {
        RemoteHit {
            hit_id: "H1".into(),
            hit_type_id: "T".into(),
            status: HitStatus::Assignable,
            max_assignments: 3,
            creation_time: UnixTime(0),
            expiration: UnixTime(100),
            requester_annotation: None,
            assignments_available: available,
            assignments_pending: pending,
            assignments_completed: completed,
            title: String::new(),
            reward: None,
            hit_group_id: None,
            description: String::new(),
            keywords: String::new(),
            assignment_duration_secs: None,
            auto_approval_delay_secs: None,
        }
    }

    fn known(held: u64, past: bool) -> Known {
        Known {
            counts: [("H1".to_owned(), held)].into(),
            past_auto_approval: if past {
                ["H1".to_owned()].into()
            } else {
                HashSet::new()
            },
        }
    }

    #[test]
    fn only_hits_with_something_unrecorded_are_read() {
        // Nothing moved, everything completed is recorded: no read.
        assert!(!known(1, false).needs_sync(&recorded(1, 0, 1), &remote(1, 0, 1)));
        // A submission, an acceptance, a decision: each moves a counter.
        assert!(known(0, false).needs_sync(&recorded(3, 0, 0), &remote(2, 0, 0)));
        assert!(known(0, false).needs_sync(&recorded(3, 0, 0), &remote(2, 1, 0)));
        assert!(known(1, false).needs_sync(&recorded(2, 0, 0), &remote(2, 0, 1)));
        // State from before assignments were synced: completed work it does not hold.
        assert!(known(0, false).needs_sync(&recorded(1, 0, 2), &remote(1, 0, 2)));
        // An undecided assignment past its auto-approval time.
        assert!(known(1, true).needs_sync(&recorded(2, 0, 0), &remote(2, 0, 0)));
    }

    #[test]
    fn a_decision_state_knew_keeps_its_decider_and_a_new_one_is_observed() {
        let hit = recorded(2, 0, 1);
        let r = RemoteAssignment {
            assignment_id: "A1".into(),
            hit_id: "H1".into(),
            worker_id: "W1".into(),
            status: AssignmentStatus::Approved,
            accept_time: Some(UnixTime(1)),
            submit_time: Some(UnixTime(2)),
            auto_approval_time: Some(UnixTime(10)),
            approval_time: Some(UnixTime(10)),
            rejection_time: None,
            answer: "not xml".into(),
            requester_feedback: None,
        };
        let fresh = merge(&hit, &r, None);
        assert_eq!(fresh.decided_by, Some(DecidedBy::Auto));
        assert!(
            fresh.answers.is_empty(),
            "unparsable answers are kept raw only"
        );
        assert_eq!(fresh.answer_xml, "not xml");
        let mine = RecordedAssignment {
            decided_by: Some(DecidedBy::Turkform),
            ..fresh.clone()
        };
        assert_eq!(
            merge(&hit, &r, Some(&mine)).decided_by,
            Some(DecidedBy::Turkform)
        );
        let rejected = RemoteAssignment {
            status: AssignmentStatus::Rejected,
            approval_time: None,
            rejection_time: Some(UnixTime(5)),
            ..r
        };
        // The status changed under a recorded decision: someone else decided again.
        assert_eq!(
            merge(&hit, &rejected, Some(&mine)).decided_by,
            Some(DecidedBy::Outside)
        );
    }
}
