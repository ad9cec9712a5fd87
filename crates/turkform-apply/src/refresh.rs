//! Refresh: reconcile the recorded HITs with what MTurk reports, in pages.
//!
//! MTurk is read with `ListHITs` (100 per page) and `ListQualificationTypes`, never one
//! `GetHIT` per HIT: refreshing 10,000 HITs costs about 100 calls. Only a recorded HIT missing
//! from the listing is looked up on its own, to tell "disposed" (HITDoesNotExist) from a
//! listing that merely lags.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use turkform_model::{
    Annotation, Drift, HitStatus, OrphanHit, RecordedHit, RecordedState, UnixTime,
};
use turkform_mturk::{MturkApi, RemoteHit};
use turkform_state::{AccountBalance, Batch, HitGroupSize, StateStore};

use crate::engine::blocking;
use crate::{ApplyError, ApplyEvent, Clock, Reporter};

/// Expiration differences below this are clock skew between turkform and MTurk (an expire is
/// recorded at turkform's "now"), not someone else's change.
const EXPIRATION_TOLERANCE_SECS: i64 = 60;

/// What a refresh saw and changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RefreshReport {
    /// HITs MTurk listed (any requester annotation).
    pub listed: usize,
    /// Recorded HITs whose status, counters or properties changed.
    pub updated: usize,
    /// Changes made outside turkform, newly seen.
    pub drift: Vec<DriftSeen>,
    /// HITs with this project's annotation that state does not know.
    pub orphans: usize,
    /// Recorded custom qualification types MTurk no longer lists.
    pub missing_qualification_types: Vec<String>,
    pub api_calls: u64,
    /// HITs whose assignments were read (ListAssignmentsForHIT), and the calls that took.
    pub assignment_syncs: usize,
    pub assignment_calls: u64,
    /// Assignments new to state or changed since the last refresh.
    pub assignments_recorded: usize,
    /// Blocks, grants and notifications: what turkform did not make (left alone), and the
    /// records of an earlier run confirmed.
    #[serde(default)]
    pub workers: crate::WorkersSeen,
}

/// One newly seen drift.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftSeen {
    pub campaign: String,
    pub item_key: String,
    pub hit_id: String,
    pub drift: Drift,
}

/// Reads MTurk and records what it shows (persisting `refresh` and `apply`).
/// `project`: the project identity; only its HITs (and old-format ones) are adopted.
pub(crate) async fn refresh(
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    project: Option<&str>,
) -> Result<RefreshReport, ApplyError> {
    let recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    let (report, batch) = read(api, store, &recorded, clock, project).await?;
    blocking(|| store.commit(&batch)).map_err(ApplyError::State)?;
    reporter.event(&refreshed(&report));
    Ok(report)
}

/// Reads MTurk and returns `recorded` as the refresh would leave it, writing nothing: what
/// `plan` sees (a plan never writes the state, so a saved plan stays valid).
pub(crate) async fn refresh_in_memory(
    api: &dyn MturkApi,
    store: &StateStore,
    recorded: &mut RecordedState,
    clock: &dyn Clock,
    reporter: &dyn Reporter,
    project: Option<&str>,
) -> Result<RefreshReport, ApplyError> {
    let (report, batch) = read(api, store, recorded, clock, project).await?;
    merge(recorded, batch);
    reporter.event(&refreshed(&report));
    Ok(report)
}

fn refreshed(report: &RefreshReport) -> ApplyEvent {
    ApplyEvent::Refreshed {
        listed: report.listed,
        updated: report.updated,
        drift: report.drift.len(),
        orphans: report.orphans,
    }
}

/// What committing `batch` does to the store, done to an in-memory record (only the parts a
/// refresh fills in).
fn merge(recorded: &mut RecordedState, batch: Batch) {
    let mut index: HashMap<String, usize> = recorded
        .hits
        .iter()
        .enumerate()
        .map(|(i, h)| (h.hit_id.clone(), i))
        .collect();
    for hit in batch.upsert_hits {
        match index.get(&hit.hit_id) {
            Some(&i) => recorded.hits[i] = hit,
            None => {
                index.insert(hit.hit_id.clone(), recorded.hits.len());
                recorded.hits.push(hit);
            }
        }
    }
    if let Some(orphans) = batch.replace_orphans {
        recorded.orphans = orphans;
    }
    if batch.refreshed_at.is_some() {
        recorded.refreshed_at = batch.refreshed_at;
    }
}

/// How many recorded HITs missing from the listing are looked up one by one before a refresh
/// that found none of them concludes it is looking at another account or endpoint.
const WRONG_WORLD_PROBES: usize = 3;

/// MTurk disposes of a HIT 120 days after it expires (DESIGN.md: "Deleted (DeleteHIT or 120
/// days)").
const DISPOSAL_SECS: i64 = 120 * 86_400;

/// Reads MTurk in pages and works out what changed, as a batch for the store.
async fn read(
    api: &dyn MturkApi,
    store: &StateStore,
    recorded: &RecordedState,
    clock: &dyn Clock,
    project: Option<&str>,
) -> Result<(RefreshReport, Batch), ApplyError> {
    let mut report = RefreshReport::default();
    let now = clock.now();

    let mut remote: HashMap<String, RemoteHit> = HashMap::new();
    let mut next = None;
    loop {
        // Throttling is expected on a large account: retried, as every page must be read.
        let page = crate::list_hits_retrying(api, next).await?;
        report.api_calls += 1;
        let empty = page.items.is_empty();
        for hit in page.items {
            remote.insert(hit.hit_id.clone(), hit);
        }
        match page.next_token {
            Some(t) if !empty => next = Some(t),
            _ => break,
        }
    }
    report.listed = remote.len();

    let mut owned_types = HashSet::new();
    let mut next = None;
    loop {
        let page = crate::read_retrying(|| api.list_qualification_types(next.clone()))
            .await
            .map_err(ApplyError::Api)?;
        report.api_calls += 1;
        let empty = page.items.is_empty();
        owned_types.extend(page.items.into_iter().map(|q| q.qualification_type_id));
        match page.next_token {
            Some(t) if !empty => next = Some(t),
            _ => break,
        }
    }
    report.missing_qualification_types = recorded
        .qualification_types
        .iter()
        .filter(|q| !owned_types.contains(&q.qualification_type_id))
        .map(|q| q.name.clone())
        .collect();

    // A listing holding none of the HITs state records as existing is another account, profile
    // or endpoint far more often than a world where all of them were deleted: recording it would
    // mark every HIT deleted and lose track of them. A few lookups confirm before refusing.
    // HITs whose expiration is past MTurk's 120-day disposal are expected to be gone: a project
    // coming back after months must not be refused for that.
    let existing: Vec<&RecordedHit> = recorded
        .hits
        .iter()
        .filter(|h| h.status != HitStatus::Disposed && now.secs_since(h.expiration) < DISPOSAL_SECS)
        .collect();
    let mut looked_up: HashMap<String, Option<RemoteHit>> = HashMap::new();
    if !existing.is_empty() && !existing.iter().any(|h| remote.contains_key(&h.hit_id)) {
        for hit in existing.iter().take(WRONG_WORLD_PROBES) {
            report.api_calls += 1;
            let seen = match crate::get_hit_retrying(api, &hit.hit_id).await {
                Ok(r) => Some(r),
                Err(e) if e.is_hit_does_not_exist() => None,
                Err(e) => return Err(ApplyError::Api(e)),
            };
            looked_up.insert(hit.hit_id.clone(), seen);
        }
        if looked_up.values().all(Option::is_none) {
            return Err(ApplyError::NoRecordedHitFound {
                recorded: existing.len(),
                listed: report.listed,
            });
        }
    }

    let hash_of: HashMap<&str, &str> = recorded
        .hit_types
        .iter()
        .map(|t| (t.hit_type_id.as_str(), t.definition_hash.as_str()))
        .collect();
    let mut batch = Batch::default();
    let known_assignments = crate::assignments::Known::load(store, clock.now())?;
    // What each HIT shows workers, as recorded: rewritten only where the listing differs (a
    // HIT retyped, a HIT recorded before schema 6), so an unchanged refresh writes none.
    let posted = store.posted_hits().map_err(ApplyError::State)?;
    let mut groups_seen: HashSet<String> = HashSet::new();
    let mut to_sync: Vec<RecordedHit> = Vec::new();
    for hit in &recorded.hits {
        let seen = match remote.get(&hit.hit_id) {
            Some(r) => Some(r.clone()),
            // Recorded as gone and not listed: still gone (no lookup per deleted HIT).
            None if hit.status == HitStatus::Disposed => continue,
            None => match looked_up.remove(&hit.hit_id) {
                Some(seen) => seen,
                None => {
                    report.api_calls += 1;
                    match crate::get_hit_retrying(api, &hit.hit_id).await {
                        Ok(r) => Some(r),
                        Err(e) if e.is_hit_does_not_exist() => None,
                        Err(e) => return Err(ApplyError::Api(e)),
                    }
                }
            },
        };
        if let Some(r) = &seen
            && known_assignments.needs_sync(hit, r)
        {
            to_sync.push(hit.clone());
        }
        if let Some(r) = &seen {
            let recorded_posted = posted.get(&hit.hit_id);
            // The lifetime is the one the HIT was created with: an extension does not change it.
            let lifetime = recorded_posted.and_then(|p| p.lifetime_secs);
            let now_posted = crate::calls::posted_hit(r, lifetime);
            groups_seen.insert(now_posted.hit_group_id.clone());
            if recorded_posted != Some(&now_posted) {
                batch.upsert_posted.push(now_posted);
            }
        }
        let (updated, new_drift) = reconcile(hit, seen.as_ref(), &hash_of, now);
        for drift in new_drift {
            report.drift.push(DriftSeen {
                campaign: hit.campaign.clone(),
                item_key: hit.item_key.clone(),
                hit_id: hit.hit_id.clone(),
                drift,
            });
        }
        if updated != *hit {
            report.updated += 1;
            batch.upsert_hits.push(updated);
        }
    }

    // HITs `state rm` forgot are never adopted again; annotations carrying a name `state mv`
    // changed belong to the new name.
    let known: HashSet<&str> = recorded
        .hits
        .iter()
        .map(|h| h.hit_id.as_str())
        .chain(recorded.forgotten.iter().map(|f| f.hit_id.as_str()))
        .collect();
    let mut orphans: Vec<OrphanHit> = remote
        .values()
        .filter(|r| !known.contains(r.hit_id.as_str()))
        .filter_map(|r| {
            // Another project's HIT is never adopted (nor, being unknown, expired).
            let annotation = Annotation::parse(r.requester_annotation.as_deref()?)
                .filter(|a| a.belongs_to(project))?;
            let annotation = recorded.renamed(annotation);
            Some(OrphanHit {
                hit_id: r.hit_id.clone(),
                hit_type_id: r.hit_type_id.clone(),
                annotation,
                max_assignments: r.max_assignments,
                created_at: r.creation_time,
                expiration: r.expiration,
                status: r.status,
            })
        })
        .collect();
    orphans.sort_by(|a, b| a.hit_id.cmp(&b.hit_id));
    // NumberOfSimilarHITs: how many HITs the listing holds in each group of a recorded HIT.
    let mut group_sizes: HashMap<&str, u32> = HashMap::new();
    for r in remote.values() {
        let group = r.hit_group_id.as_deref().unwrap_or(&r.hit_type_id);
        if groups_seen.contains(group) {
            *group_sizes.entry(group).or_default() += 1;
        }
    }
    let mut group_sizes: Vec<HitGroupSize> = group_sizes
        .into_iter()
        .map(|(group, n)| HitGroupSize {
            hit_group_id: group.to_owned(),
            similar_hits: n,
            counted_at: now,
        })
        .collect();
    group_sizes.sort_by(|a, b| a.hit_group_id.cmp(&b.hit_group_id));
    batch.hit_group_sizes = group_sizes;
    // The balance is read before the assignments: a sync spends the account's request budget
    // to the last token, and a call right after it would only be throttled and wait.
    report.api_calls += 1;
    match crate::read_retrying(|| api.get_account_balance()).await {
        Ok(available) => {
            batch.account_balance = Some(AccountBalance {
                available,
                read_at: now,
            });
        }
        // The balance is for display; a refresh is not failed for it.
        Err(e) => tracing::warn!(error = %e, "cannot read the account balance"),
    }
    // Read in the same commit as the counters that prompted them: if this fails, nothing is
    // committed and the next refresh reads the same HITs again.
    let (assignments, calls) = crate::assignments::sync(api, store, &to_sync).await?;
    report.assignment_syncs = to_sync.len();
    report.assignment_calls = calls;
    report.api_calls += calls;
    report.assignments_recorded = assignments.len();
    batch.upsert_assignments = assignments;
    report.orphans = orphans.len();
    batch.replace_orphans = Some(orphans);
    batch.refreshed_at = Some(now);
    Ok((report, batch))
}

/// The record updated from what MTurk reports (`None`: it no longer exists), and the drift
/// newly seen.
fn reconcile(
    hit: &RecordedHit,
    remote: Option<&RemoteHit>,
    hash_of: &HashMap<&str, &str>,
    now: UnixTime,
) -> (RecordedHit, Vec<Drift>) {
    let mut updated = hit.clone();
    let mut found = Vec::new();
    let Some(r) = remote else {
        if hit.status == HitStatus::Disposed {
            return (updated, found);
        }
        updated.status = HitStatus::Disposed;
        updated.assignments_available = 0;
        updated.assignments_pending = 0;
        found.push(Drift::Deleted);
        push_drift(&mut updated, &found);
        return (updated, found);
    };
    let diff = r.expiration.secs_since(hit.expiration);
    if diff < -EXPIRATION_TOLERANCE_SECS {
        found.push(Drift::Expired {
            was: hit.expiration,
            now: r.expiration,
        });
    } else if diff > EXPIRATION_TOLERANCE_SECS {
        found.push(Drift::Extended {
            was: hit.expiration,
            now: r.expiration,
        });
    }
    // Within the tolerance the recorded instant is kept: it is the one turkform set, and the
    // planner's decisions (pause/resume) are made against it.
    if diff.abs() > EXPIRATION_TOLERANCE_SECS {
        updated.expiration = r.expiration;
    }
    if r.hit_type_id != hit.hit_type_id {
        found.push(Drift::Retyped {
            was: hit.hit_type_id.clone(),
            now: r.hit_type_id.clone(),
        });
        updated.hit_type_id = r.hit_type_id.clone();
        // An unknown type gets no hash, so the planner retypes the HIT back.
        updated.hit_type_hash = hash_of
            .get(r.hit_type_id.as_str())
            .map(|h| (*h).to_owned())
            .unwrap_or_default();
    }
    if r.max_assignments != hit.max_assignments {
        found.push(Drift::AssignmentsChanged {
            was: hit.max_assignments,
            now: r.max_assignments,
        });
        updated.max_assignments = r.max_assignments;
    }
    // Drift is never final: a HIT recorded as deleted that MTurk lists again, or recorded as
    // expired outside turkform that is open again, is what MTurk shows now (a refresh against
    // the wrong endpoint or profile once recorded them so).
    updated.drift.retain(|d| !matches!(d, Drift::Deleted));
    if r.expiration > now && matches!(r.status, HitStatus::Assignable | HitStatus::Unassignable) {
        updated
            .drift
            .retain(|d| !matches!(d, Drift::Expired { .. }));
    }
    updated.status = r.status;
    updated.assignments_available = r.assignments_available;
    updated.assignments_pending = r.assignments_pending;
    updated.assignments_completed = r.assignments_completed;
    push_drift(&mut updated, &found);
    (updated, found)
}

/// Drift accumulates until apply acts on the HIT (which clears it): a second refresh, which
/// sees no difference any more, must not forget it.
fn push_drift(hit: &mut RecordedHit, found: &[Drift]) {
    for d in found {
        if !hit.drift.contains(d) {
            hit.drift.push(d.clone());
        }
    }
}
