//! The planning algorithm: DESIGN.md §5 as code.
//!
//! For each campaign (by name) and each item (in data-file order, then removed items by key) the
//! planner finds the item's *current* HIT: the recorded HIT with the highest generation, or an
//! orphan (a HIT found on MTurk by its annotation that state does not know) of at least that
//! generation, which is adopted. It then compares that HIT with the item and the campaign and
//! plans the fewest MTurk calls that bring it in line, never one MTurk would refuse.
//!
//! Choices where DESIGN.md is silent, all leaning towards spending less money:
//!
//! - A HIT is *live* when its expiration is in the future and MTurk still has it. A HIT that is
//!   not live and was not expired by a pause is *done*: it is never re-posted, re-extended,
//!   replaced, retyped or given assignments (that covers HITs that reached the end of their
//!   lifetime, HITs of a campaign that was finished, HITs of items that were removed and came
//!   back, and HITs expired by hand outside turkform).
//! - One exception for a HIT expired outside turkform: when the campaign file now asks for a
//!   later expiration than the one turkform had set before (`ends_at` moved later, or a longer
//!   `lifetime`), the newer instruction wins and the HIT is extended.
//! - A HIT deleted outside turkform (drift `Deleted`, status `Disposed`) is never re-created
//!   automatically: that would pay for the item a second time. The plan warns and names
//!   `turkform state rm CAMPAIGN/KEY`, after which the next plan creates it afresh.
//! - Assignments are added only to HITs that can still take workers: live ones, and paused ones
//!   being resumed in the same plan (after the extension). Adding to an expired HIT would commit
//!   money no worker can earn.
//! - A paused or finished campaign gets only expirations: question, HIT type and assignment
//!   changes wait until it runs again (they are planned then).
//! - Resuming gives a paused HIT back the lifetime it had left (`paused_remaining_secs`, at least
//!   60 s); with `ends_at` it is extended to `ends_at` itself, which a pause does not move. A HIT
//!   whose `ends_at` passed while paused stays expired (warned).
//! - Lifetime differences under 60 s are ignored: MTurk refuses smaller extensions, and the
//!   recorded expiration comes from MTurk's clock, a few seconds off ours.
//! - An orphan's question is unknown (MTurk does not return it by annotation); it is assumed to be
//!   the current one, since it was created from a recent plan. Its HIT type is looked up by id
//!   and assumed current when unknown. Replacing on a guess would pay for the item twice.
//! - Orphans and recorded HITs that are no longer an item's current HIT but are still open
//!   (a crash between the steps of a replace, a duplicate) are expired: two open HITs for one
//!   item is what turkform promises never to leave behind.
//! - Warnings that would repeat for every item (lowering assignments, shortening a lifetime, an
//!   `ends_at` too close to create) are given once per campaign with a count and an example key.

use std::collections::{BTreeSet, HashMap, HashSet};

use turkform_model::{
    CampaignStatus, DesiredCampaign, DesiredItem, DesiredState, Drift, ExpiredBy, HitStatus,
    HitTypeSpec, Lifetime, Money, OrphanHit, QualificationTypeRef, RecordedHit, RecordedState,
    UnixTime,
};

use crate::cost::{LARGE_HIT_ASSIGNMENTS, assignment_cost, hit_cost, times};
use crate::{
    Action, CampaignPlan, CreateHit, DriftNote, PLAN_FORMAT_VERSION, Plan, PlannedAction, Summary,
    Warning,
};

/// MTurk refuses `UpdateExpirationForHIT` increments smaller than this.
const MIN_EXTENSION_SECS: i64 = 60;

/// What to plan, beyond the two states and the time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Campaign names to plan; empty plans all. A campaign left out gets no entry and no action
    /// (it is neither created nor expired), and only the custom qualification types the chosen
    /// campaigns use are planned.
    pub only_campaigns: Vec<String>,
}

/// Computes the plan that brings `recorded` to `desired` at `now`.
///
/// Pure and deterministic: the same inputs give the same plan, campaigns sorted by name,
/// actions in data-file order followed by removed items sorted by key.
pub fn plan(
    desired: &DesiredState,
    recorded: &RecordedState,
    now: UnixTime,
    options: &PlanOptions,
) -> Plan {
    let selected = |name: &str| {
        options.only_campaigns.is_empty() || options.only_campaigns.iter().any(|c| c == name)
    };
    let mut index = Index::build(desired, recorded, now);
    let mut warnings = Vec::new();
    let mut errors = Vec::new();

    let qualification_types = plan_qualification_types(desired, recorded, &selected, &mut warnings);

    let names: BTreeSet<&str> = desired
        .campaigns
        .iter()
        .map(|c| c.name.as_str())
        .chain(index.campaigns.keys().copied())
        .filter(|name| selected(name))
        .collect();

    let mut campaigns = Vec::with_capacity(names.len());
    for name in names {
        let campaign = desired
            .campaigns
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|i| &desired.campaigns[i]);
        let records = index.campaigns.remove(name).unwrap_or_default();
        let mut planner = CampaignPlanner::new(name, campaign, &index, now);
        planner.goals = campaign.and_then(|c| crate::goal::Goals::build(c, recorded));
        let mut planned = planner.run(records, &mut warnings);
        if let Some(campaign) = campaign {
            crate::review::plan_campaign(
                campaign,
                recorded,
                desired.target,
                now,
                &mut planned,
                &mut warnings,
                &mut errors,
            );
        }
        campaigns.push(planned);
    }

    let workers = crate::workers::plan_workers(desired, recorded, options, &mut warnings);
    let notifications = crate::workers::plan_notifications(desired, recorded, &campaigns, options);
    let mut summary = summarize(&qualification_types, &campaigns, &warnings);
    summary.errors = errors.len();
    crate::workers::summarize(&workers, &notifications, recorded, &mut summary);
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        target: desired.target,
        planned_at: now,
        state_lineage: recorded.lineage.clone(),
        state_serial: recorded.serial,
        inputs_digest: desired.inputs_digest.clone(),
        only_campaigns: options.only_campaigns.clone(),
        qualification_types,
        campaigns,
        warnings,
        errors,
        workers,
        notifications,
        summary,
    }
}

/// Custom qualification types: create what state does not know by name, update what changed.
/// Types no campaign declares any more are left on MTurk (other HIT types may use them) and
/// warned about.
fn plan_qualification_types(
    desired: &DesiredState,
    recorded: &RecordedState,
    selected: &dyn Fn(&str) -> bool,
    warnings: &mut Vec<Warning>,
) -> Vec<PlannedAction> {
    let filtering = desired.campaigns.iter().any(|c| !selected(&c.name))
        || recorded.hits.iter().any(|h| !selected(&h.campaign));
    // With a campaign filter, only the types the chosen campaigns use.
    let used: HashSet<&str> = desired
        .campaigns
        .iter()
        .filter(|c| selected(&c.name))
        .flat_map(|c| c.hit_type.qualifications.iter())
        .filter_map(|q| match &q.qualification_type {
            QualificationTypeRef::Custom(name) => Some(name.as_str()),
            QualificationTypeRef::Id(_) => None,
        })
        .collect();

    let mut actions = Vec::new();
    for spec in &desired.qualification_types {
        if filtering && !used.contains(spec.name.as_str()) {
            continue;
        }
        match recorded
            .qualification_types
            .iter()
            .find(|r| r.name == spec.name)
        {
            None => actions.push(PlannedAction {
                action: Action::CreateQualificationType { spec: spec.clone() },
                reason: "new qualification type".to_owned(),
                cost_delta: Money::ZERO,
            }),
            Some(r) if r.definition_hash != spec.definition_hash() => {
                actions.push(PlannedAction {
                    action: Action::UpdateQualificationType {
                        qualification_type_id: r.qualification_type_id.clone(),
                        spec: spec.clone(),
                    },
                    reason: "definition changed".to_owned(),
                    cost_delta: Money::ZERO,
                });
            }
            Some(_) => {}
        }
    }
    if !filtering {
        let mut gone: Vec<&str> = recorded
            .qualification_types
            .iter()
            .filter(|r| !desired.qualification_types.iter().any(|d| d.name == r.name))
            .map(|r| r.name.as_str())
            .collect();
        gone.sort_unstable();
        for name in gone {
            warnings.push(Warning {
                campaign: None,
                item_key: None,
                message: format!(
                    "qualification type `{name}` is no longer declared; it is left on MTurk as it is"
                ),
            });
        }
    }
    actions
}

/// Recorded state, indexed once so that planning an unchanged item is a hash lookup and a few
/// comparisons, with nothing cloned.
struct Index<'a> {
    campaigns: HashMap<&'a str, CampaignRecords<'a>>,
    /// Per (campaign, item key): the first generation past every HIT `state rm` forgot.
    fresh_generation: HashMap<(&'a str, &'a str), u32>,
    recorded_hit_types: HashSet<&'a str>,
    hash_by_hit_type_id: HashMap<&'a str, &'a str>,
    /// Specs of the desired campaigns by hash: the only specs the planner knows, used to price
    /// retypes and adoptions.
    spec_by_hash: HashMap<&'a str, &'a HitTypeSpec>,
}

/// Everything state holds for one campaign.
#[derive(Default)]
struct CampaignRecords<'a> {
    /// The newest generation of each item.
    current: HashMap<&'a str, &'a RecordedHit>,
    /// Older generations that are still live (should not exist; expired when seen).
    stale_live: HashMap<&'a str, Vec<&'a RecordedHit>>,
    committed: Money,
    drifted: Vec<&'a RecordedHit>,
    orphans: Vec<&'a OrphanHit>,
}

impl<'a> Index<'a> {
    fn build(desired: &'a DesiredState, recorded: &'a RecordedState, now: UnixTime) -> Self {
        // Sized up front: growing a 100k-entry map rehashes it several times.
        let mut sizes: HashMap<&str, usize> = HashMap::new();
        for hit in &recorded.hits {
            *sizes.entry(hit.campaign.as_str()).or_default() += 1;
        }
        let mut campaigns: HashMap<&str, CampaignRecords> = sizes
            .into_iter()
            .map(|(name, n)| {
                let records = CampaignRecords {
                    current: HashMap::with_capacity(n),
                    ..CampaignRecords::default()
                };
                (name, records)
            })
            .collect();
        let mut several_generations = false;
        for hit in &recorded.hits {
            let records = campaigns.entry(hit.campaign.as_str()).or_default();
            records.committed += hit.committed_cost;
            if !hit.drift.is_empty() {
                records.drifted.push(hit);
            }
            records
                .current
                .entry(hit.item_key.as_str())
                .and_modify(|cur| {
                    several_generations = true;
                    if (hit.generation, &hit.hit_id) > (cur.generation, &cur.hit_id) {
                        *cur = hit;
                    }
                })
                .or_insert(hit);
        }
        // Older generations still open: a second pass, once the newest of each item is known
        // (skipped when every item has one HIT, the common case).
        for hit in recorded.hits.iter().filter(|_| several_generations) {
            if is_live(hit.expiration, hit.status, &hit.drift, now) {
                let Some(records) = campaigns.get_mut(hit.campaign.as_str()) else {
                    continue;
                };
                let newest = records.current.get(hit.item_key.as_str());
                if newest.is_some_and(|cur| !std::ptr::eq(*cur, hit)) {
                    records
                        .stale_live
                        .entry(hit.item_key.as_str())
                        .or_default()
                        .push(hit);
                }
            }
        }
        if !recorded.orphans.is_empty() {
            let known: HashSet<&str> = recorded.hits.iter().map(|h| h.hit_id.as_str()).collect();
            for orphan in &recorded.orphans {
                // A refresh racing an apply could list a HIT both ways; state wins.
                if !known.contains(orphan.hit_id.as_str()) {
                    campaigns
                        .entry(orphan.annotation.campaign.as_str())
                        .or_default()
                        .orphans
                        .push(orphan);
                }
            }
        }
        for records in campaigns.values_mut() {
            records
                .drifted
                .sort_by(|a, b| (&a.item_key, a.generation).cmp(&(&b.item_key, b.generation)));
            records.orphans.sort_by(|a, b| {
                (a.annotation.generation, &a.hit_id).cmp(&(b.annotation.generation, &b.hit_id))
            });
        }
        let mut fresh_generation: HashMap<(&str, &str), u32> = HashMap::new();
        for f in &recorded.forgotten {
            let next = fresh_generation
                .entry((f.campaign.as_str(), f.item_key.as_str()))
                .or_insert(1);
            *next = (*next).max(f.generation + 1);
        }
        Index {
            campaigns,
            fresh_generation,
            recorded_hit_types: recorded
                .hit_types
                .iter()
                .map(|t| t.definition_hash.as_str())
                .collect(),
            hash_by_hit_type_id: recorded
                .hit_types
                .iter()
                .map(|t| (t.hit_type_id.as_str(), t.definition_hash.as_str()))
                .collect(),
            spec_by_hash: desired
                .campaigns
                .iter()
                .map(|c| (c.hit_type_hash.as_str(), &c.hit_type))
                .collect(),
        }
    }
}

// The one "live HIT" rule lives in the model, shared with `turkform status`.
use turkform_model::{hit_is_deleted as is_deleted, hit_is_live as is_live};

/// An item's HIT as the planner sees it, whether recorded or an orphan being adopted.
#[derive(Clone, Copy)]
struct Hit<'a> {
    hit_id: &'a str,
    generation: u32,
    /// `None` when unknown (an orphan of an unrecorded HIT type): assumed current.
    hit_type_hash: Option<&'a str>,
    /// `None` for orphans: assumed current.
    content_hash: Option<&'a str>,
    max_assignments: u32,
    assignments_available: u32,
    /// What state says the HIT committed; zero when unknown.
    committed_cost: Money,
    created_at: UnixTime,
    expiration: UnixTime,
    status: HitStatus,
    expired_by: Option<ExpiredBy>,
    paused_remaining_secs: Option<u64>,
    drift: &'a [Drift],
}

impl<'a> Hit<'a> {
    fn recorded(h: &'a RecordedHit) -> Self {
        Hit {
            hit_id: &h.hit_id,
            generation: h.generation,
            hit_type_hash: Some(&h.hit_type_hash),
            content_hash: Some(&h.content_hash),
            max_assignments: h.max_assignments,
            assignments_available: h.assignments_available,
            committed_cost: h.committed_cost,
            created_at: h.created_at,
            expiration: h.expiration,
            status: h.status,
            expired_by: h.expired_by,
            paused_remaining_secs: h.paused_remaining_secs,
            drift: &h.drift,
        }
    }

    fn orphan(o: &'a OrphanHit, index: &Index<'a>) -> Self {
        Hit {
            hit_id: &o.hit_id,
            generation: o.annotation.generation,
            hit_type_hash: index
                .hash_by_hit_type_id
                .get(o.hit_type_id.as_str())
                .copied(),
            content_hash: None,
            max_assignments: o.max_assignments,
            // Unknown: assume none taken (the conservative figure for pricing a retype).
            assignments_available: o.max_assignments,
            committed_cost: Money::ZERO,
            created_at: o.created_at,
            expiration: o.expiration,
            status: o.status,
            expired_by: None,
            paused_remaining_secs: None,
            drift: &[],
        }
    }

    fn live(&self, now: UnixTime) -> bool {
        is_live(self.expiration, self.status, self.drift, now)
    }

    fn deleted(&self) -> bool {
        is_deleted(self.status, self.drift)
    }

    /// The expiration turkform had set before someone expired the HIT outside turkform.
    fn expired_outside_from(&self) -> Option<UnixTime> {
        self.drift.iter().rev().find_map(|d| match d {
            Drift::Expired { was, .. } => Some(*was),
            _ => None,
        })
    }
}

/// Warnings that may repeat per item, folded into one per message.
#[derive(Default)]
struct Notices {
    by_message: HashMap<String, usize>,
    /// message, count, first item key
    entries: Vec<(String, usize, String)>,
}

impl Notices {
    fn add(&mut self, message: String, key: &str) {
        if let Some(&i) = self.by_message.get(&message) {
            self.entries[i].1 += 1;
        } else {
            self.by_message.insert(message.clone(), self.entries.len());
            self.entries.push((message, 1, key.to_owned()));
        }
    }

    fn flush(self, campaign: &str, out: &mut Vec<Warning>) {
        for (message, count, key) in self.entries {
            out.push(if count == 1 {
                Warning {
                    campaign: Some(campaign.to_owned()),
                    item_key: Some(key),
                    message,
                }
            } else {
                Warning {
                    campaign: Some(campaign.to_owned()),
                    item_key: None,
                    message: format!("{message} ({count} items, e.g. `{key}`)"),
                }
            });
        }
    }
}

/// The state of planning one campaign.
struct CampaignPlanner<'a, 'i> {
    name: &'a str,
    campaign: Option<&'a DesiredCampaign>,
    index: &'i Index<'a>,
    now: UnixTime,
    masters: bool,
    actions: Vec<PlannedAction>,
    notices: Notices,
    unchanged: usize,
    /// Money adopted HITs spent when they were created: committed, not a cost of this plan.
    adopted_committed: Money,
    /// Whether any action needs the campaign's HIT type registered.
    needs_hit_type: bool,
    /// The items' tallies when the campaign's goal is `approved`.
    goals: Option<crate::goal::Goals<'a>>,
}

/// Where the HIT that `goal = "approved"` wants more assignments on stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoalHit {
    /// Open, and still open after this plan.
    Live,
    /// Paused, and reopened by this plan.
    Resuming,
    /// Its lifetime ended (nobody expired it early).
    Ended,
}

impl<'a, 'i> CampaignPlanner<'a, 'i> {
    fn new(
        name: &'a str,
        campaign: Option<&'a DesiredCampaign>,
        index: &'i Index<'a>,
        now: UnixTime,
    ) -> Self {
        CampaignPlanner {
            name,
            campaign,
            index,
            now,
            masters: campaign.is_some_and(|c| c.hit_type.uses_masters()),
            actions: Vec::new(),
            notices: Notices::default(),
            unchanged: 0,
            adopted_committed: Money::ZERO,
            needs_hit_type: false,
            goals: None,
        }
    }

    fn run(
        &mut self,
        mut records: CampaignRecords<'a>,
        warnings: &mut Vec<Warning>,
    ) -> CampaignPlan {
        let mut orphans = self.resolve_orphans(&records);
        let had_records = !records.current.is_empty() || !records.orphans.is_empty();

        if let Some(campaign) = self.campaign {
            for item in &campaign.items {
                let key = item.key.as_str();
                let recorded = records.current.remove(key);
                let stale = records.stale_live.remove(key).unwrap_or_default();
                let item_orphans = orphans.remove(key).unwrap_or_default();
                let unchanged = self.unchanged;
                self.plan_item(key, Some(item), recorded, &item_orphans, &stale);
                if !item_orphans.is_empty() {
                    // An adopted item is counted as adopted, not also as unchanged.
                    self.unchanged = unchanged;
                }
            }
        }

        // Removed items: in state (or found as orphans), no longer in the data file.
        let mut removed: BTreeSet<&str> = records.current.keys().copied().collect();
        removed.extend(orphans.keys().map(String::as_str));
        for key in removed {
            let recorded = records.current.get(key).copied();
            let stale = records.stale_live.get(key).cloned().unwrap_or_default();
            let item_orphans = orphans.get(key).cloned().unwrap_or_default();
            self.plan_item(key, None, recorded, &item_orphans, &stale);
        }

        let hit_types = self.plan_hit_type(had_records);
        let drift: Vec<DriftNote> = records
            .drifted
            .iter()
            .flat_map(|h| {
                h.drift.iter().map(|d| DriftNote {
                    item_key: h.item_key.clone(),
                    hit_id: h.hit_id.clone(),
                    drift: d.clone(),
                })
            })
            .collect();

        std::mem::take(&mut self.notices).flush(self.name, warnings);

        let cost_delta: Money = self.actions.iter().map(|a| a.cost_delta).sum();
        let max_spend = self.campaign.and_then(|c| c.max_spend);
        CampaignPlan {
            name: self.name.to_owned(),
            status: self.campaign.map(|c| c.status),
            hit_types,
            actions: std::mem::take(&mut self.actions),
            drift,
            unchanged: self.unchanged,
            committed: records.committed + self.adopted_committed,
            cost_delta,
            max_spend,
            over_budget: max_spend
                .is_some_and(|max| records.committed + self.adopted_committed + cost_delta > max),
            review: Vec::new(),
        }
    }

    /// Groups the campaign's orphans by item key. An annotation carries a hashed key when the key
    /// was too long for MTurk's 255 characters; it is matched against the keys in the data file
    /// and in state. One that matches neither cannot be named and is only warned about.
    fn resolve_orphans(
        &mut self,
        records: &CampaignRecords<'a>,
    ) -> HashMap<String, Vec<&'a OrphanHit>> {
        let mut by_key: HashMap<String, Vec<&'a OrphanHit>> = HashMap::new();
        for &orphan in &records.orphans {
            let key = match &orphan.annotation.key {
                turkform_model::AnnotatedKey::Plain(key) => Some(key.clone()),
                turkform_model::AnnotatedKey::Hashed(_) => {
                    // Only keys long enough to have been hashed are worth a sha256: the
                    // annotation's fixed parts take at most 25 characters besides the names.
                    let long = |k: &&str| k.len() + self.name.len() + 25 > 255;
                    let desired_keys = self
                        .campaign
                        .into_iter()
                        .flat_map(|c| c.items.iter().map(|i| i.key.as_str()));
                    desired_keys
                        .chain(records.current.keys().copied())
                        .filter(long)
                        .find(|k| orphan.annotation.matches_key(k))
                        .map(str::to_owned)
                }
            };
            match key {
                Some(key) => by_key.entry(key).or_default().push(orphan),
                None => self.notices.add(
                    format!(
                        "HIT {} carries turkform's annotation for an item whose key is no longer known; it is not adopted: expire it on MTurk if it is not wanted",
                        orphan.hit_id
                    ),
                    "",
                ),
            }
        }
        by_key
    }

    /// Plans one item: adoption of orphans, expiry of HITs that are not current, then the
    /// current HIT against the desired item (`None` when the item or campaign was removed).
    fn plan_item(
        &mut self,
        key: &str,
        item: Option<&'a DesiredItem>,
        recorded: Option<&'a RecordedHit>,
        orphans: &[&'a OrphanHit],
        stale: &[&'a RecordedHit],
    ) {
        let before = self.actions.len();
        let mut current = recorded.map(Hit::recorded);
        let mut superseded: Vec<Hit<'a>> = stale.iter().map(|h| Hit::recorded(h)).collect();

        // Orphans are sorted by generation: the last one is the newest.
        for (i, &orphan) in orphans.iter().enumerate() {
            let hit = Hit::orphan(orphan, self.index);
            self.adopt(key, orphan, item.map(|i| i.content_hash.as_str()));
            let newest = i + 1 == orphans.len();
            if newest && current.is_none_or(|c| hit.generation >= c.generation) {
                superseded.extend(current.replace(hit));
            } else {
                superseded.push(hit);
            }
        }

        let Some(item) = item else {
            // Removed item (or removed campaign): every open HIT of it is expired.
            for hit in current.iter().chain(&superseded) {
                if hit.live(self.now) {
                    let reason = if self.campaign.is_some() {
                        "item removed from the data file"
                    } else {
                        "campaign file removed"
                    };
                    self.expire(key, hit, ExpiredBy::Removal, reason);
                }
            }
            return;
        };
        let campaign = self
            .campaign
            .expect("a desired item has a desired campaign");

        for hit in &superseded {
            if hit.live(self.now) {
                let reason = match current {
                    Some(c) => format!(
                        "superseded by HIT {} (generation {}): one open HIT per item",
                        c.hit_id, c.generation
                    ),
                    None => "superseded: one open HIT per item".to_owned(),
                };
                self.expire(key, hit, ExpiredBy::Replace, &reason);
            }
        }

        match campaign.status {
            CampaignStatus::Running => self.plan_running(key, item, campaign, current),
            CampaignStatus::Paused | CampaignStatus::Finished => {
                let (why, reason) = if campaign.status == CampaignStatus::Paused {
                    (ExpiredBy::Pause, "campaign paused")
                } else {
                    (ExpiredBy::Finish, "campaign finished")
                };
                if let Some(hit) = current {
                    if hit.live(self.now) {
                        self.expire(key, &hit, why, reason);
                    } else if self.actions.len() == before {
                        self.unchanged += 1;
                    }
                }
            }
        }
    }

    /// A running campaign: create, replace, resume, extend, retype and add assignments.
    fn plan_running(
        &mut self,
        key: &str,
        item: &'a DesiredItem,
        campaign: &'a DesiredCampaign,
        current: Option<Hit<'a>>,
    ) {
        let Some(hit) = current else {
            self.create(key, item, campaign, 1, "new item");
            return;
        };
        let now = self.now;

        if hit.deleted() {
            self.notices.add(
                format!(
                    "HIT {} was deleted outside turkform; it is not re-created automatically: run `turkform state rm {}/{key}` to post the item again",
                    hit.hit_id, self.name
                ),
                key,
            );
            return;
        }
        // Only a recorded HIT is tallied (an orphan's question is unknown until it is adopted).
        let goal = match (&self.goals, hit.content_hash) {
            (Some(goals), Some(_)) => Some(goals.tally(key)),
            _ => None,
        };
        if hit.expired_by == Some(ExpiredBy::Replace) && !hit.live(now) {
            // The old generation was expired by a replace (or a follow-up) whose create never
            // happened. With the goal, the new HIT takes what the item still lacks.
            let assignments =
                goal.map_or(campaign.assignments, |t| t.missing(campaign.assignments));
            if assignments > 0 {
                self.create_sized(
                    key,
                    item,
                    campaign,
                    hit.generation + 1,
                    assignments,
                    "completing an interrupted replace",
                );
            } else {
                self.unchanged += 1;
            }
            return;
        }

        let live = hit.live(now);
        let resuming = !live && hit.expired_by == Some(ExpiredBy::Pause);
        if !live && !resuming {
            // A HIT whose lifetime ended is reopened for the answers the goal still lacks; one
            // closed on purpose (outside turkform, or by a finish or removal) stays closed.
            if let Some(t) = goal
                && hit.expired_by.is_none()
                && hit.expired_outside_from().is_none()
                && t.missing(campaign.assignments) > 0
            {
                self.plan_goal(key, item, campaign, &hit, t, GoalHit::Ended);
                return;
            }
            self.plan_done(key, campaign, &hit);
            return;
        }

        // Changes only a new HIT can carry.
        let mut replace_reasons = Vec::new();
        if hit.content_hash.is_some_and(|h| h != item.content_hash) {
            replace_reasons.push("question changed".to_owned());
        }
        // With the goal, raising across 10 is a follow-up HIT for the difference instead: the
        // answers the HIT has keep counting (plan_goal).
        if self.goals.is_none()
            && hit.max_assignments < LARGE_HIT_ASSIGNMENTS
            && campaign.assignments >= LARGE_HIT_ASSIGNMENTS
        {
            replace_reasons.push(format!(
                "assignments raised from {} to {}: MTurk cannot add assignments to a HIT across 10 (the 10-assignment rule)",
                hit.max_assignments, campaign.assignments
            ));
        }
        if !replace_reasons.is_empty() {
            self.replace(key, item, campaign, &hit, live, &replace_reasons.join("; "));
            return;
        }

        let before = self.actions.len();
        if resuming {
            if !self.resume(key, campaign, &hit) {
                // Not reopened: further changes would pay for a HIT no worker can see.
                return;
            }
        } else {
            // A HIT the goal reopened keeps the lifetime it was given then, later than its
            // creation plus `lifetime`: that is not a shortened lifetime to warn about.
            let reopened = goal.is_some_and(|t| t.uncounted() > 0);
            self.plan_lifetime(key, campaign, &hit, reopened);
        }
        self.plan_retype(key, campaign, &hit);
        match goal {
            Some(t) => {
                let state = if resuming {
                    GoalHit::Resuming
                } else {
                    GoalHit::Live
                };
                self.plan_goal(key, item, campaign, &hit, t, state);
            }
            // An orphan of a goal campaign (lost state) may be a follow-up HIT of one slot:
            // sized by `assignments` it would be "raised" for nothing. The plan after its
            // adoption tallies it with the item's other HITs.
            None if self.goals.is_some() => {}
            None => self.plan_assignments(key, campaign, &hit),
        }
        if self.actions.len() == before {
            self.unchanged += 1;
        }
    }

    /// A HIT that is no longer live and was not paused: done, never re-posted.
    fn plan_done(&mut self, key: &str, campaign: &DesiredCampaign, hit: &Hit<'a>) {
        match hit.expired_by {
            Some(ExpiredBy::Removal) => self.notices.add(
                format!(
                    "item came back after its HIT was expired by its removal; it is not re-posted: run `turkform state rm {}/<key>` to post it afresh",
                    self.name
                ),
                key,
            ),
            Some(ExpiredBy::Finish) => self.notices.add(
                "HIT was expired when the campaign was finished; finished HITs are not reopened".to_owned(),
                key,
            ),
            _ => {
                if let Some(was) = hit.expired_outside_from() {
                    // Expired outside turkform: reopen only if the file now asks for more
                    // than what turkform had set.
                    let target = campaign.lifetime.expiration_for(hit.created_at);
                    if target.secs_since(was) >= MIN_EXTENSION_SECS
                        && target.secs_since(self.now) >= MIN_EXTENSION_SECS
                    {
                        let reason = match campaign.lifetime {
                            Lifetime::EndsAt(_) => "ends_at moved later than the expiration before it was expired outside turkform",
                            Lifetime::Duration(_) => "lifetime lengthened beyond the expiration before it was expired outside turkform",
                        };
                        self.extend(key, hit, target, reason);
                        return;
                    }
                }
            }
        }
        self.unchanged += 1;
    }

    /// Brings a paused HIT back. Returns whether it was reopened.
    fn resume(&mut self, key: &str, campaign: &DesiredCampaign, hit: &Hit<'a>) -> bool {
        let now = self.now;
        let to = match campaign.lifetime {
            // A pause does not move `ends_at`.
            Lifetime::EndsAt(at) => at,
            Lifetime::Duration(_) => {
                let remaining = hit.paused_remaining_secs.unwrap_or_else(|| {
                    // Not recorded: what the lifetime had left at the pause.
                    let target = campaign.lifetime.expiration_for(hit.created_at);
                    u64::try_from(target.secs_since(hit.expiration)).unwrap_or(0)
                });
                now.plus_secs(remaining.max(MIN_EXTENSION_SECS.unsigned_abs()))
            }
        };
        if to.secs_since(now) < MIN_EXTENSION_SECS
            || to.secs_since(hit.expiration) < MIN_EXTENSION_SECS
        {
            self.notices.add(
                "ends_at passed while the campaign was paused; the paused HIT stays expired"
                    .to_owned(),
                key,
            );
            return false;
        }
        self.extend(key, hit, to, "resuming");
        true
    }

    /// Extends a live HIT to what the campaign's lifetime now says; warns when it says earlier.
    fn plan_lifetime(
        &mut self,
        key: &str,
        campaign: &DesiredCampaign,
        hit: &Hit<'a>,
        reopened_by_goal: bool,
    ) {
        let target = campaign.lifetime.expiration_for(hit.created_at);
        let ahead = target.secs_since(hit.expiration);
        if ahead >= MIN_EXTENSION_SECS {
            let reason = match campaign.lifetime {
                Lifetime::EndsAt(_) => "ends_at moved later",
                Lifetime::Duration(_) => "lifetime lengthened",
            };
            self.extend(key, hit, target, reason);
        } else if ahead <= -MIN_EXTENSION_SECS && !reopened_by_goal {
            let what = match campaign.lifetime {
                Lifetime::EndsAt(at) => format!("ends_at moved earlier (to {at})"),
                Lifetime::Duration(_) => "lifetime shortened".to_owned(),
            };
            self.notices.add(
                format!("{what}: MTurk cannot shorten a HIT's lifetime; open HITs keep their expiration (not attempted)"),
                key,
            );
        }
        // Differences under 60 s: clock noise, and an extension MTurk would refuse.
    }

    fn plan_retype(&mut self, key: &str, campaign: &DesiredCampaign, hit: &Hit<'a>) {
        let Some(from) = hit.hit_type_hash else {
            return;
        };
        if from == campaign.hit_type_hash {
            return;
        }
        let new = assignment_cost(campaign.hit_type.reward, hit.max_assignments, self.masters);
        // The old price per assignment: from the spec when a desired campaign still has it, else
        // what state says the HIT committed per assignment; unknown -> the full new price.
        let old = self
            .index
            .spec_by_hash
            .get(from)
            .map(|s| assignment_cost(s.reward, hit.max_assignments, s.uses_masters()))
            .or_else(|| {
                (hit.max_assignments > 0 && hit.committed_cost > Money::ZERO).then(|| {
                    Money::from_cents(hit.committed_cost.cents() / i64::from(hit.max_assignments))
                })
            });
        // Only a raise costs: a lowered reward is not counted as money back.
        let per_assignment = match old {
            Some(old) => (new - old).max(Money::ZERO),
            None => new,
        };
        let reason = if hit.drift.iter().any(|d| matches!(d, Drift::Retyped { .. })) {
            "HIT type changed outside turkform; restoring the declared one"
        } else {
            "HIT type changed"
        };
        self.needs_hit_type = true;
        self.push(
            Action::Retype {
                campaign: self.name.to_owned(),
                item_key: key.to_owned(),
                hit_id: hit.hit_id.to_owned(),
                from_hit_type_hash: from.to_owned(),
                to_hit_type_hash: campaign.hit_type_hash.clone(),
            },
            reason.to_owned(),
            times(per_assignment, hit.assignments_available),
        );
    }

    /// Raising below 10 (or from 10 up) adds assignments; lowering is warned, not attempted.
    /// Crossing 10 was handled as a replace.
    fn plan_assignments(&mut self, key: &str, campaign: &DesiredCampaign, hit: &Hit<'a>) {
        let (from, to) = (hit.max_assignments, campaign.assignments);
        if to > from {
            let per = assignment_cost(campaign.hit_type.reward, to, self.masters);
            self.push(
                Action::AddAssignments {
                    campaign: self.name.to_owned(),
                    item_key: key.to_owned(),
                    generation: hit.generation,
                    hit_id: hit.hit_id.to_owned(),
                    from,
                    to,
                },
                "assignments raised".to_owned(),
                times(per, to - from),
            );
        } else if to < from {
            self.notices.add(
                format!("lowering assignments from {from} to {to} is not possible on MTurk; not attempted"),
                key,
            );
        }
    }

    /// `goal = "approved"`: the assignments the item lacks (see [`crate::goal`]), added to its
    /// HIT (extended first when its lifetime ended) or, across the 10-assignment rule, posted
    /// as a follow-up HIT of the next generation. Also covers `assignments` raised.
    fn plan_goal(
        &mut self,
        key: &str,
        item: &DesiredItem,
        campaign: &DesiredCampaign,
        hit: &Hit<'a>,
        tally: crate::goal::GoalTally,
        state: GoalHit,
    ) {
        let wanted = campaign.assignments;
        let missing = tally.missing(wanted);
        if missing == 0 {
            // Only the plain case is a lowering: spare slots left by an overridden rejection or
            // a follow-up are the goal's own.
            if tally.hits == 1 && tally.uncounted() == 0 && hit.max_assignments > wanted {
                self.notices.add(
                    format!("lowering assignments from {} to {wanted} is not possible on MTurk; not attempted", hit.max_assignments),
                    key,
                );
            }
            return;
        }
        let reason = tally.reason(wanted);
        let (from, to) = (hit.max_assignments, hit.max_assignments + missing);
        if from < LARGE_HIT_ASSIGNMENTS && to >= LARGE_HIT_ASSIGNMENTS {
            let open = match state {
                GoalHit::Live => hit.assignments_available > 0,
                GoalHit::Resuming => true,
                GoalHit::Ended => false,
            };
            if open {
                // Its open slots may still bring answers that count; expiring it now would
                // throw them away, and two open HITs for one item is what turkform never leaves.
                self.notices.add(
                    "goal = \"approved\": the item lacks assignments its HIT cannot take (the 10-assignment rule); a follow-up HIT is posted once the HIT's open assignments are taken or it expires".to_owned(),
                    key,
                );
                return;
            }
            if !self.can_create(key, campaign) {
                return;
            }
            let cost = hit_cost(campaign.hit_type.reward, missing, self.masters);
            self.needs_hit_type = true;
            let mut create = self.create_hit(key, item, campaign, hit.generation + 1);
            create.max_assignments = missing;
            self.push(
                Action::FollowUpHit {
                    old_hit_id: hit.hit_id.to_owned(),
                    expire_old: state == GoalHit::Live,
                    create,
                },
                format!(
                    "{reason}; a HIT created with fewer than 10 assignments cannot reach 10 (the 10-assignment rule), so a follow-up HIT takes the missing ones"
                ),
                cost,
            );
            return;
        }
        if state == GoalHit::Ended {
            let until = match campaign.lifetime {
                Lifetime::Duration(secs) => Some(self.now.plus_secs(secs)),
                Lifetime::EndsAt(at) => (at.secs_since(self.now) >= MIN_EXTENSION_SECS
                    && at.secs_since(hit.expiration) >= MIN_EXTENSION_SECS)
                    .then_some(at),
            };
            let Some(until) = until else {
                self.notices.add(
                    "goal = \"approved\": the item lacks answers but its HIT expired and ends_at has passed; not reopened".to_owned(),
                    key,
                );
                return;
            };
            self.extend(
                key,
                hit,
                until,
                "goal = \"approved\": reopening the expired HIT for the assignments below",
            );
        }
        let per = assignment_cost(campaign.hit_type.reward, to, self.masters);
        self.push(
            Action::AddAssignments {
                campaign: self.name.to_owned(),
                item_key: key.to_owned(),
                generation: hit.generation,
                hit_id: hit.hit_id.to_owned(),
                from,
                to,
            },
            reason,
            times(per, missing),
        );
    }

    /// The `CreateHitType` the campaign's actions need, unless state has the type.
    fn plan_hit_type(&mut self, had_records: bool) -> Vec<PlannedAction> {
        let Some(campaign) = self.campaign else {
            return Vec::new();
        };
        if !self.needs_hit_type
            || self
                .index
                .recorded_hit_types
                .contains(campaign.hit_type_hash.as_str())
        {
            return Vec::new();
        }
        vec![PlannedAction {
            action: Action::CreateHitType {
                campaign: self.name.to_owned(),
                definition_hash: campaign.hit_type_hash.clone(),
                spec: campaign.hit_type.clone(),
            },
            reason: if had_records {
                "HIT type changed"
            } else {
                "new HIT type"
            }
            .to_owned(),
            cost_delta: Money::ZERO,
        }]
    }

    fn create_hit(
        &self,
        key: &str,
        item: &DesiredItem,
        campaign: &DesiredCampaign,
        generation: u32,
    ) -> CreateHit {
        self.create_hit_sized(key, item, campaign, generation, campaign.assignments)
    }

    fn create_hit_sized(
        &self,
        key: &str,
        item: &DesiredItem,
        campaign: &DesiredCampaign,
        generation: u32,
        max_assignments: u32,
    ) -> CreateHit {
        // Never a generation `state rm` forgot: its token and annotation are the old HIT's.
        let generation = self
            .index
            .fresh_generation
            .get(&(self.name, key))
            .map_or(generation, |&fresh| generation.max(fresh));
        CreateHit {
            campaign: self.name.to_owned(),
            item_key: key.to_owned(),
            generation,
            hit_type_hash: campaign.hit_type_hash.clone(),
            max_assignments,
            lifetime: campaign.lifetime,
            question: item.question.clone(),
            content_hash: item.content_hash.clone(),
            input: item.row.clone(),
        }
    }

    /// Whether a HIT created now would get the 30 s of lifetime MTurk requires; warns if not.
    fn can_create(&mut self, key: &str, campaign: &DesiredCampaign) -> bool {
        if campaign.lifetime.lifetime_secs_at(self.now).is_some() {
            return true;
        }
        self.notices.add(
            "ends_at is less than 30 s away (or past): MTurk refuses so short a lifetime; HIT not created".to_owned(),
            key,
        );
        false
    }

    fn create(
        &mut self,
        key: &str,
        item: &DesiredItem,
        campaign: &DesiredCampaign,
        generation: u32,
        reason: &str,
    ) {
        self.create_sized(
            key,
            item,
            campaign,
            generation,
            campaign.assignments,
            reason,
        );
    }

    fn create_sized(
        &mut self,
        key: &str,
        item: &DesiredItem,
        campaign: &DesiredCampaign,
        generation: u32,
        assignments: u32,
        reason: &str,
    ) {
        if !self.can_create(key, campaign) {
            return;
        }
        let cost = hit_cost(campaign.hit_type.reward, assignments, self.masters);
        self.needs_hit_type = true;
        let create = self.create_hit_sized(key, item, campaign, generation, assignments);
        self.push(Action::CreateHit(create), reason.to_owned(), cost);
    }

    /// Expire (if still open) and create the next generation. Costs the new HIT in full: what the
    /// old one committed is not counted as refunded.
    fn replace(
        &mut self,
        key: &str,
        item: &DesiredItem,
        campaign: &DesiredCampaign,
        hit: &Hit<'a>,
        live: bool,
        reason: &str,
    ) {
        if !self.can_create(key, campaign) {
            return;
        }
        let cost = hit_cost(campaign.hit_type.reward, campaign.assignments, self.masters);
        self.needs_hit_type = true;
        let create = self.create_hit(key, item, campaign, hit.generation + 1);
        self.push(
            Action::Replace {
                old_hit_id: hit.hit_id.to_owned(),
                expire_old: live,
                create,
            },
            format!("{reason} (the old HIT's unspent money is not counted as refunded)"),
            cost,
        );
    }

    fn adopt(&mut self, key: &str, orphan: &OrphanHit, content_hash: Option<&str>) {
        // A HIT type state does not know (a lost state): registering the campaign's type costs
        // one CreateHITType, which MTurk answers with the existing id when the properties are
        // the same, so the adoption can record the orphan's type instead of leaving the next
        // plan to create and retype it.
        if self.campaign.is_some()
            && !self
                .index
                .hash_by_hit_type_id
                .contains_key(orphan.hit_type_id.as_str())
        {
            self.needs_hit_type = true;
        }
        // The money was spent on MTurk when the HIT was created; it is counted here so that the
        // budget sees it. Priced at the HIT's type when known, else at the campaign's.
        let spec = self
            .index
            .hash_by_hit_type_id
            .get(orphan.hit_type_id.as_str())
            .and_then(|h| self.index.spec_by_hash.get(h).copied())
            .or(self.campaign.map(|c| &c.hit_type));
        let (cost, reason) = match spec {
            Some(spec) => (
                hit_cost(spec.reward, orphan.max_assignments, spec.uses_masters()),
                "found on MTurk by its annotation but not in state; its cost was spent when it was created and counts as committed, not as a cost of this plan",
            ),
            None => (
                Money::ZERO,
                "found on MTurk by its annotation but not in state; its cost is unknown (no campaign file)",
            ),
        };
        self.push(
            Action::AdoptHit {
                campaign: self.name.to_owned(),
                item_key: key.to_owned(),
                generation: orphan.annotation.generation,
                hit_id: orphan.hit_id.clone(),
                content_hash: content_hash.map(str::to_owned),
                hit_type_hash: self
                    .index
                    .hash_by_hit_type_id
                    .get(orphan.hit_type_id.as_str())
                    .map(|h| (*h).to_owned()),
            },
            reason.to_owned(),
            Money::ZERO,
        );
        self.adopted_committed += cost;
    }

    fn expire(&mut self, key: &str, hit: &Hit<'a>, why: ExpiredBy, reason: &str) {
        self.push(
            Action::Expire {
                campaign: self.name.to_owned(),
                item_key: key.to_owned(),
                hit_id: hit.hit_id.to_owned(),
                why,
            },
            reason.to_owned(),
            Money::ZERO,
        );
    }

    fn extend(&mut self, key: &str, hit: &Hit<'a>, to: UnixTime, reason: &str) {
        self.push(
            Action::ExtendLifetime {
                campaign: self.name.to_owned(),
                item_key: key.to_owned(),
                hit_id: hit.hit_id.to_owned(),
                from: hit.expiration,
                to,
            },
            reason.to_owned(),
            Money::ZERO,
        );
    }

    fn push(&mut self, action: Action, reason: String, cost_delta: Money) {
        self.actions.push(PlannedAction {
            action,
            reason,
            cost_delta,
        });
    }
}

fn summarize(
    qualification_types: &[PlannedAction],
    campaigns: &[CampaignPlan],
    warnings: &[Warning],
) -> Summary {
    let mut s = Summary {
        warnings: warnings.len(),
        ..Summary::default()
    };
    let all = qualification_types.iter().chain(
        campaigns
            .iter()
            .flat_map(|c| c.hit_types.iter().chain(&c.actions)),
    );
    for planned in all {
        s.cost_delta += planned.cost_delta;
        match planned.action {
            Action::CreateQualificationType { .. } => s.create_qualification_types += 1,
            Action::UpdateQualificationType { .. } => s.update_qualification_types += 1,
            Action::CreateHitType { .. } => s.create_hit_types += 1,
            Action::CreateHit(_) => s.create += 1,
            Action::AdoptHit { .. } => s.adopt += 1,
            Action::AddAssignments { .. } => s.add_assignments += 1,
            Action::ExtendLifetime { .. } => s.extend += 1,
            Action::Retype { .. } => s.retype += 1,
            Action::Expire { .. } => {
                s.expire += 1;
                s.destructive += 1;
            }
            Action::Replace { .. } => {
                s.replace += 1;
                s.destructive += 1;
            }
            // Not destructive: the HIT it follows has no slot left to offer.
            Action::FollowUpHit { .. } => s.follow_up += 1,
        }
    }
    for planned in campaigns.iter().flat_map(|c| &c.review) {
        s.cost_delta += planned.cost_delta;
        s.review_moves += planned.moves;
        match planned.action {
            crate::ReviewAction::Approve { .. } => s.approve += 1,
            crate::ReviewAction::OverrideRejection { .. } => s.override_rejection += 1,
            crate::ReviewAction::Reject { .. } => s.reject += 1,
            crate::ReviewAction::SendBonus { .. } => s.bonus += 1,
        }
    }
    s.drift = campaigns.iter().map(|c| c.drift.len()).sum();
    s
}
