//! The planner against DESIGN.md §5: one test per row of the action table and per MTurk limit,
//! each named after its rule, with literal states and a literal `now`.

use std::path::PathBuf;

use turkform_model::{
    AnnotatedKey, Annotation, CampaignStatus, Comparator, DesiredCampaign, DesiredItem,
    DesiredState, Drift, ExpiredBy, HitStatus, HitTypeSpec, Lifetime, Money, OrphanHit,
    QualificationRequirement, QualificationTypeRef, QualificationTypeSpec, Question, RecordedHit,
    RecordedHitType, RecordedQualificationType, RecordedState, Target, UnixTime, system,
};
use turkform_plan::cost::hit_cost;
use turkform_plan::{Action, CampaignPlan, CreateHit, Plan, PlanOptions, plan};

const NOW: UnixTime = UnixTime(1_800_000_000);
const DAY: u64 = 86_400;

// ---- builders --------------------------------------------------------------------------------

fn usd(cents: i64) -> Money {
    Money::from_cents(cents)
}

fn spec(reward_cents: i64) -> HitTypeSpec {
    HitTypeSpec {
        title: "Label a photo".to_owned(),
        description: "Tick the objects".to_owned(),
        keywords: vec!["image".to_owned()],
        reward: usd(reward_cents),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: 3 * DAY,
        qualifications: Vec::new(),
    }
}

fn question(key: &str, version: u32) -> Question {
    Question::Xml {
        xml: format!("<HTMLQuestion>{key} v{version}</HTMLQuestion>"),
    }
}

fn item(key: &str, version: u32) -> DesiredItem {
    let question = question(key, version);
    DesiredItem {
        key: key.to_owned(),
        content_hash: question.content_hash(),
        question,
        row: vec![("id".to_owned(), key.to_owned())],
    }
}

/// A running campaign, $0.12 x 3 assignments, 7-day lifetime, items at question version 1.
fn campaign(name: &str, keys: &[&str]) -> DesiredCampaign {
    let hit_type = spec(12);
    DesiredCampaign {
        name: name.to_owned(),
        file: PathBuf::from(format!("campaigns/{name}.toml")),
        status: CampaignStatus::Running,
        hit_type_hash: hit_type.definition_hash(),
        hit_type,
        assignments: 3,
        lifetime: Lifetime::Duration(7 * DAY),
        max_spend: None,
        review: Default::default(),
        items: keys.iter().map(|k| item(k, 1)).collect(),
    }
}

fn set_reward(c: &mut DesiredCampaign, cents: i64) {
    c.hit_type.reward = usd(cents);
    c.hit_type_hash = c.hit_type.definition_hash();
}

fn desired(mut campaigns: Vec<DesiredCampaign>) -> DesiredState {
    campaigns.sort_by(|a, b| a.name.cmp(&b.name));
    DesiredState {
        target: Target::Sim,
        campaigns,
        qualification_types: Vec::new(),
        inputs_digest: "digest".to_owned(),
        workers: Default::default(),
    }
}

/// A recorded HIT that matches `c`'s item `key` exactly, created a day ago, live for 6 more days.
fn hit_for(c: &DesiredCampaign, key: &str) -> RecordedHit {
    let item = c.items.iter().find(|i| i.key == key).expect("item exists");
    let created = UnixTime(NOW.0 - DAY as i64);
    RecordedHit {
        campaign: c.name.clone(),
        item_key: key.to_owned(),
        generation: 1,
        hit_id: format!("HIT{}{key}", c.name.to_uppercase()),
        hit_type_id: "TYPE1".to_owned(),
        hit_type_hash: c.hit_type_hash.clone(),
        content_hash: item.content_hash.clone(),
        max_assignments: c.assignments,
        committed_cost: hit_cost(c.hit_type.reward, c.assignments, false),
        created_at: created,
        expiration: created.plus_secs(7 * DAY),
        status: HitStatus::Assignable,
        assignments_available: c.assignments,
        assignments_pending: 0,
        assignments_completed: 0,
        expired_by: None,
        paused_remaining_secs: None,
        drift: Vec::new(),
    }
}

fn recorded(hits: Vec<RecordedHit>) -> RecordedState {
    let mut hit_types: Vec<RecordedHitType> = Vec::new();
    for h in &hits {
        if !hit_types
            .iter()
            .any(|t| t.definition_hash == h.hit_type_hash)
        {
            hit_types.push(RecordedHitType {
                definition_hash: h.hit_type_hash.clone(),
                hit_type_id: h.hit_type_id.clone(),
            });
        }
    }
    RecordedState {
        target: Some(Target::Sim),
        lineage: "lineage".to_owned(),
        serial: 7,
        hit_types,
        hits,
        ..RecordedState::default()
    }
}

fn run(d: &DesiredState, r: &RecordedState) -> Plan {
    plan(d, r, NOW, &PlanOptions::default())
}

fn campaign_plan<'p>(p: &'p Plan, name: &str) -> &'p CampaignPlan {
    p.campaigns
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no campaign `{name}` in plan"))
}

fn actions(p: &Plan, name: &str) -> Vec<Action> {
    campaign_plan(p, name)
        .actions
        .iter()
        .map(|a| a.action.clone())
        .collect()
}

fn expected_create(c: &DesiredCampaign, key: &str, generation: u32) -> CreateHit {
    let item = c.items.iter().find(|i| i.key == key).unwrap();
    CreateHit {
        campaign: c.name.clone(),
        item_key: key.to_owned(),
        generation,
        hit_type_hash: c.hit_type_hash.clone(),
        max_assignments: c.assignments,
        lifetime: c.lifetime,
        question: item.question.clone(),
        content_hash: item.content_hash.clone(),
        input: item.row.clone(),
    }
}

fn expire(c: &str, key: &str, hit_id: &str, why: ExpiredBy) -> Action {
    Action::Expire {
        campaign: c.to_owned(),
        item_key: key.to_owned(),
        hit_id: hit_id.to_owned(),
        why,
    }
}

fn warned(p: &Plan, needle: &str) -> bool {
    p.warnings.iter().any(|w| w.message.contains(needle))
}

fn orphan(c: &str, key: &str, generation: u32, hit_id: &str) -> OrphanHit {
    OrphanHit {
        hit_id: hit_id.to_owned(),
        hit_type_id: "TYPE1".to_owned(),
        annotation: Annotation::new(c, key, generation),
        max_assignments: 3,
        created_at: UnixTime(NOW.0 - 60),
        expiration: UnixTime(NOW.0 - 60).plus_secs(7 * DAY),
        status: HitStatus::Assignable,
    }
}

// ---- create / no-op / done --------------------------------------------------------------------

#[test]
fn create_new_item_with_generation_one_and_its_hit_type() {
    let c = campaign("street", &["a", "b"]);
    let d = desired(vec![c.clone()]);
    let p = run(&d, &RecordedState::default());
    assert_eq!(
        actions(&p, "street"),
        vec![
            Action::CreateHit(expected_create(&c, "a", 1)),
            Action::CreateHit(expected_create(&c, "b", 1)),
        ]
    );
    let cp = campaign_plan(&p, "street");
    assert_eq!(cp.actions[0].reason, "new item");
    assert_eq!(cp.actions[0].cost_delta, usd(42));
    assert_eq!(cp.cost_delta, usd(84));
    // A new campaign's HIT type is registered first, once.
    assert_eq!(
        cp.hit_types.iter().map(|a| &a.action).collect::<Vec<_>>(),
        vec![&Action::CreateHitType {
            campaign: "street".to_owned(),
            definition_hash: c.hit_type_hash.clone(),
            spec: c.hit_type.clone(),
        }]
    );
    assert_eq!(p.summary.create, 2);
    assert_eq!(p.summary.create_hit_types, 1);
    assert_eq!(p.summary.cost_delta, usd(84));
    assert_eq!(p.summary.destructive, 0);
    assert!(p.has_changes());
}

#[test]
fn no_op_when_every_item_matches_its_hit() {
    let c = campaign("street", &["a", "b"]);
    let r = recorded(vec![hit_for(&c, "a"), hit_for(&c, "b")]);
    let p = run(&desired(vec![c]), &r);
    let cp = campaign_plan(&p, "street");
    assert!(cp.actions.is_empty() && cp.hit_types.is_empty());
    assert_eq!(cp.unchanged, 2);
    assert_eq!(cp.committed, usd(84));
    assert_eq!(cp.cost_delta, Money::ZERO);
    assert!(!p.has_changes());
    assert!(p.warnings.is_empty());
    assert_eq!(p.state_lineage, "lineage");
    assert_eq!(p.state_serial, 7);
    assert_eq!(p.planned_at, NOW);
}

#[test]
fn hit_done_at_end_of_lifetime_is_not_reposted() {
    let mut c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.created_at = UnixTime(NOW.0 - 8 * DAY as i64);
    h.expiration = h.created_at.plus_secs(7 * DAY);
    h.status = HitStatus::Reviewable;
    // Even with a changed question, more assignments and a longer lifetime: done is done.
    c.items[0] = item("a", 2);
    c.assignments = 5;
    c.lifetime = Lifetime::Duration(30 * DAY);
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    assert!(actions(&p, "street").is_empty());
    assert_eq!(campaign_plan(&p, "street").unchanged, 1);
}

// ---- assignments ------------------------------------------------------------------------------

#[test]
fn add_assignments_when_raised() {
    let mut c = campaign("street", &["a"]);
    let h = hit_for(&c, "a");
    c.assignments = 5;
    let p = run(&desired(vec![c]), &recorded(vec![h.clone()]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::AddAssignments {
            campaign: "street".to_owned(),
            item_key: "a".to_owned(),
            generation: 1,
            hit_id: h.hit_id.clone(),
            from: 3,
            to: 5,
        }]
    );
    // 2 x ($0.12 + $0.02)
    assert_eq!(campaign_plan(&p, "street").cost_delta, usd(28));
    assert_eq!(p.summary.add_assignments, 1);
}

#[test]
fn assignments_raised_three_to_nine_are_added() {
    let mut c = campaign("street", &["a"]);
    let h = hit_for(&c, "a");
    c.assignments = 9;
    let p = run(&desired(vec![c]), &recorded(vec![h.clone()]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::AddAssignments {
            campaign: "street".to_owned(),
            item_key: "a".to_owned(),
            generation: 1,
            hit_id: h.hit_id,
            from: 3,
            to: 9,
        }]
    );
    assert_eq!(campaign_plan(&p, "street").cost_delta, usd(6 * 14));
}

#[test]
fn assignments_raised_ten_to_twelve_are_added_at_the_forty_percent_tier() {
    let mut c = campaign("street", &["a"]);
    c.assignments = 10;
    let h = hit_for(&c, "a");
    c.assignments = 12;
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    assert!(matches!(
        actions(&p, "street")[..],
        [Action::AddAssignments {
            from: 10,
            to: 12,
            ..
        }]
    ));
    // 2 x ($0.12 + 40 % = $0.05)
    assert_eq!(campaign_plan(&p, "street").cost_delta, usd(34));
}

#[test]
fn ten_assignment_rule_nine_to_twelve_is_replaced() {
    let mut c = campaign("street", &["a"]);
    c.assignments = 9;
    let h = hit_for(&c, "a");
    c.assignments = 12;
    let p = run(&desired(vec![c.clone()]), &recorded(vec![h.clone()]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::Replace {
            old_hit_id: h.hit_id,
            expire_old: true,
            create: expected_create(&c, "a", 2),
        }]
    );
    let a = &campaign_plan(&p, "street").actions[0];
    assert!(a.reason.contains("10-assignment rule"), "{}", a.reason);
    assert_eq!(a.cost_delta, hit_cost(usd(12), 12, false));
    assert_eq!(p.summary.replace, 1);
    assert_eq!(p.summary.destructive, 1);
}

#[test]
fn lowering_assignments_is_warned_not_attempted() {
    let mut c = campaign("street", &["a", "b"]);
    let hits = vec![hit_for(&c, "a"), hit_for(&c, "b")];
    c.assignments = 2;
    let p = run(&desired(vec![c]), &recorded(hits));
    assert!(actions(&p, "street").is_empty());
    assert!(
        warned(
            &p,
            "lowering assignments from 3 to 2 is not possible on MTurk; not attempted"
        ),
        "{:?}",
        p.warnings
    );
    // Folded into one warning for the campaign.
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.summary.warnings, 1);
}

// ---- lifetime ---------------------------------------------------------------------------------

#[test]
fn ends_at_later_extends_lifetime() {
    let mut c = campaign("street", &["a"]);
    let h = hit_for(&c, "a");
    let later = h.expiration.plus_secs(DAY);
    c.lifetime = Lifetime::EndsAt(later);
    let p = run(&desired(vec![c]), &recorded(vec![h.clone()]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::ExtendLifetime {
            campaign: "street".to_owned(),
            item_key: "a".to_owned(),
            hit_id: h.hit_id,
            from: h.expiration,
            to: later,
        }]
    );
    assert_eq!(
        campaign_plan(&p, "street").actions[0].reason,
        "ends_at moved later"
    );
    assert_eq!(campaign_plan(&p, "street").cost_delta, Money::ZERO);
}

#[test]
fn lifetime_lengthened_extends_from_creation() {
    let mut c = campaign("street", &["a"]);
    let h = hit_for(&c, "a");
    c.lifetime = Lifetime::Duration(10 * DAY);
    let p = run(&desired(vec![c]), &recorded(vec![h.clone()]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::ExtendLifetime {
            campaign: "street".to_owned(),
            item_key: "a".to_owned(),
            hit_id: h.hit_id,
            from: h.expiration,
            to: h.created_at.plus_secs(10 * DAY),
        }]
    );
}

#[test]
fn ends_at_earlier_is_warned_never_shortened() {
    let mut c = campaign("street", &["a"]);
    let h = hit_for(&c, "a");
    c.lifetime = Lifetime::EndsAt(NOW.plus_secs(DAY));
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    assert!(actions(&p, "street").is_empty());
    assert!(warned(&p, "cannot shorten"), "{:?}", p.warnings);
}

#[test]
fn extension_under_sixty_seconds_is_not_planned() {
    let mut c = campaign("street", &["a"]);
    let h = hit_for(&c, "a");
    c.lifetime = Lifetime::EndsAt(h.expiration.plus_secs(59));
    let p = run(&desired(vec![c.clone()]), &recorded(vec![h.clone()]));
    assert!(actions(&p, "street").is_empty());
    assert!(p.warnings.is_empty());
    // 60 s is the smallest increment MTurk takes.
    c.lifetime = Lifetime::EndsAt(h.expiration.plus_secs(60));
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    assert_eq!(p.summary.extend, 1);
}

#[test]
fn ends_at_within_thirty_seconds_creates_nothing_and_warns() {
    let mut c = campaign("street", &["a", "b"]);
    c.lifetime = Lifetime::EndsAt(NOW.plus_secs(29));
    let p = run(&desired(vec![c.clone()]), &RecordedState::default());
    assert!(actions(&p, "street").is_empty());
    assert!(campaign_plan(&p, "street").hit_types.is_empty());
    assert!(warned(&p, "less than 30 s away"), "{:?}", p.warnings);
    assert_eq!(p.warnings.len(), 1);
    // Exactly 30 s is allowed.
    c.lifetime = Lifetime::EndsAt(NOW.plus_secs(30));
    let p = run(&desired(vec![c]), &RecordedState::default());
    assert_eq!(p.summary.create, 2);
}

// ---- question and HIT type changes ------------------------------------------------------------

#[test]
fn template_change_replaces_with_next_generation_and_expires_old() {
    let mut c = campaign("street", &["a", "b"]);
    let mut ha = hit_for(&c, "a");
    ha.generation = 3;
    let hb = hit_for(&c, "b");
    c.items[0] = item("a", 2);
    let p = run(&desired(vec![c.clone()]), &recorded(vec![ha.clone(), hb]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::Replace {
            old_hit_id: ha.hit_id,
            expire_old: true,
            create: expected_create(&c, "a", 4),
        }]
    );
    let cp = campaign_plan(&p, "street");
    assert!(cp.actions[0].reason.starts_with("question changed"));
    assert_eq!(cp.actions[0].cost_delta, usd(42));
    assert_eq!(cp.unchanged, 1);
}

#[test]
fn replace_of_an_already_expired_hit_does_not_expire_it() {
    // Paused earlier, edited while paused, running again.
    let mut c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.expiration = UnixTime(NOW.0 - 3600);
    h.expired_by = Some(ExpiredBy::Pause);
    h.paused_remaining_secs = Some(DAY);
    c.items[0] = item("a", 2);
    let p = run(&desired(vec![c.clone()]), &recorded(vec![h.clone()]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::Replace {
            old_hit_id: h.hit_id,
            expire_old: false,
            create: expected_create(&c, "a", 2),
        }]
    );
}

#[test]
fn reward_change_retypes_and_creates_hit_type_once_per_hash() {
    let mut c = campaign("street", &["a", "b"]);
    let (ha, hb) = (hit_for(&c, "a"), hit_for(&c, "b"));
    let old_hash = c.hit_type_hash.clone();
    set_reward(&mut c, 15);
    let p = run(
        &desired(vec![c.clone()]),
        &recorded(vec![ha.clone(), hb.clone()]),
    );
    let retype = |h: &RecordedHit| Action::Retype {
        campaign: "street".to_owned(),
        item_key: h.item_key.clone(),
        hit_id: h.hit_id.clone(),
        from_hit_type_hash: old_hash.clone(),
        to_hit_type_hash: c.hit_type_hash.clone(),
    };
    assert_eq!(actions(&p, "street"), vec![retype(&ha), retype(&hb)]);
    let cp = campaign_plan(&p, "street");
    assert_eq!(cp.hit_types.len(), 1);
    assert!(matches!(
        &cp.hit_types[0].action,
        Action::CreateHitType { definition_hash, .. } if *definition_hash == c.hit_type_hash
    ));
    // Old price from state: $0.42 / 3 = $0.14; new $0.15 + $0.03 = $0.18; 3 open slots each.
    assert_eq!(cp.actions[0].cost_delta, usd(12));
    assert_eq!(cp.cost_delta, usd(24));
    assert_eq!(p.summary.retype, 2);
    assert_eq!(p.summary.create_hit_types, 1);
}

#[test]
fn retype_to_an_already_registered_hit_type_does_not_create_it() {
    let mut c = campaign("street", &["a"]);
    let h = hit_for(&c, "a");
    set_reward(&mut c, 15);
    let mut r = recorded(vec![h]);
    r.hit_types.push(RecordedHitType {
        definition_hash: c.hit_type_hash.clone(),
        hit_type_id: "TYPE2".to_owned(),
    });
    let p = run(&desired(vec![c]), &r);
    assert_eq!(p.summary.retype, 1);
    assert!(campaign_plan(&p, "street").hit_types.is_empty());
}

#[test]
fn masters_campaign_costs_five_percent_more() {
    let mut c = campaign("street", &["a"]);
    c.hit_type.reward = usd(100);
    c.hit_type.qualifications.push(QualificationRequirement {
        qualification_type: QualificationTypeRef::Id(system::MASTERS_SANDBOX.to_owned()),
        comparator: Comparator::Exists,
        integer_values: Vec::new(),
        locale_values: Vec::new(),
        actions_guarded: None,
    });
    c.hit_type_hash = c.hit_type.definition_hash();
    let p = run(&desired(vec![c]), &RecordedState::default());
    assert_eq!(campaign_plan(&p, "street").cost_delta, usd(375));
}

// ---- status changes ---------------------------------------------------------------------------

#[test]
fn pause_expires_live_hits_with_why_pause_and_creates_nothing() {
    let mut c = campaign("street", &["a", "b", "new"]);
    let ha = hit_for(&c, "a");
    let mut hb = hit_for(&c, "b");
    hb.expiration = UnixTime(NOW.0 - 10); // already done
    c.status = CampaignStatus::Paused;
    let p = run(&desired(vec![c]), &recorded(vec![ha.clone(), hb]));
    assert_eq!(
        actions(&p, "street"),
        vec![expire("street", "a", &ha.hit_id, ExpiredBy::Pause)]
    );
    assert_eq!(
        campaign_plan(&p, "street").status,
        Some(CampaignStatus::Paused)
    );
    assert_eq!(p.summary.destructive, 1);
}

#[test]
fn resume_extends_by_the_remaining_lifetime() {
    let c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.expiration = UnixTime(NOW.0 - DAY as i64);
    h.expired_by = Some(ExpiredBy::Pause);
    h.paused_remaining_secs = Some(2 * DAY);
    let p = run(&desired(vec![c]), &recorded(vec![h.clone()]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::ExtendLifetime {
            campaign: "street".to_owned(),
            item_key: "a".to_owned(),
            hit_id: h.hit_id,
            from: h.expiration,
            to: NOW.plus_secs(2 * DAY),
        }]
    );
    assert_eq!(campaign_plan(&p, "street").actions[0].reason, "resuming");
}

#[test]
fn resume_gives_at_least_sixty_seconds_and_adds_assignments_after() {
    let mut c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.expiration = UnixTime(NOW.0 - 100);
    h.expired_by = Some(ExpiredBy::Pause);
    h.paused_remaining_secs = Some(5);
    c.assignments = 4;
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    let a = actions(&p, "street");
    assert!(
        matches!(&a[..], [Action::ExtendLifetime { to, .. }, Action::AddAssignments { from: 3, to: 4, .. }] if *to == NOW.plus_secs(60)),
        "{a:?}"
    );
}

#[test]
fn resume_after_ends_at_passed_stays_expired_and_warns() {
    let mut c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.expiration = UnixTime(NOW.0 - DAY as i64);
    h.expired_by = Some(ExpiredBy::Pause);
    h.paused_remaining_secs = Some(DAY);
    c.lifetime = Lifetime::EndsAt(UnixTime(NOW.0 - 10));
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    assert!(actions(&p, "street").is_empty());
    assert!(warned(&p, "ends_at passed while the campaign was paused"));
}

#[test]
fn finished_expires_live_hits_and_leaves_paused_ones() {
    let mut c = campaign("street", &["a", "b"]);
    let ha = hit_for(&c, "a");
    let mut hb = hit_for(&c, "b");
    hb.expiration = UnixTime(NOW.0 - 10);
    hb.expired_by = Some(ExpiredBy::Pause);
    c.status = CampaignStatus::Finished;
    let p = run(&desired(vec![c]), &recorded(vec![ha.clone(), hb]));
    assert_eq!(
        actions(&p, "street"),
        vec![expire("street", "a", &ha.hit_id, ExpiredBy::Finish)]
    );
}

#[test]
fn removed_item_is_expired_after_the_items_of_the_data_file() {
    let all = campaign("street", &["a", "z", "m"]);
    let hits = vec![hit_for(&all, "a"), hit_for(&all, "z"), hit_for(&all, "m")];
    let c = campaign("street", &["a", "new"]);
    let p = run(&desired(vec![c.clone()]), &recorded(hits));
    assert_eq!(
        actions(&p, "street"),
        vec![
            Action::CreateHit(expected_create(&c, "new", 1)),
            expire("street", "m", "HITSTREETm", ExpiredBy::Removal),
            expire("street", "z", "HITSTREETz", ExpiredBy::Removal),
        ]
    );
    assert_eq!(p.summary.destructive, 2);
}

#[test]
fn removed_campaign_expires_all_live_hits_with_status_none() {
    let gone = campaign("gone", &["a", "b", "c"]);
    let mut hc = hit_for(&gone, "c");
    hc.expiration = UnixTime(NOW.0 - 1);
    let hits = vec![hit_for(&gone, "a"), hit_for(&gone, "b"), hc];
    let kept = campaign("kept", &[]);
    let p = run(&desired(vec![kept]), &recorded(hits));
    let cp = campaign_plan(&p, "gone");
    assert_eq!(cp.status, None);
    assert_eq!(
        actions(&p, "gone"),
        vec![
            expire("gone", "a", "HITGONEa", ExpiredBy::Removal),
            expire("gone", "b", "HITGONEb", ExpiredBy::Removal),
        ]
    );
    assert_eq!(cp.committed, usd(3 * 42));
    assert_eq!(p.summary.destructive, 2);
    assert_eq!(
        p.campaigns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        vec!["gone", "kept"]
    );
}

// ---- orphans ----------------------------------------------------------------------------------

#[test]
fn orphan_is_adopted_instead_of_created() {
    let c = campaign("street", &["a"]);
    let mut r = recorded(vec![]);
    r.hit_types.push(RecordedHitType {
        definition_hash: c.hit_type_hash.clone(),
        hit_type_id: "TYPE1".to_owned(),
    });
    r.orphans.push(orphan("street", "a", 1, "ORPHAN1"));
    let p = run(&desired(vec![c.clone()]), &r);
    assert_eq!(
        actions(&p, "street"),
        vec![Action::AdoptHit {
            campaign: "street".to_owned(),
            item_key: "a".to_owned(),
            generation: 1,
            hit_id: "ORPHAN1".to_owned(),
            content_hash: Some(c.items[0].content_hash.clone()),
            hit_type_hash: Some(c.hit_type_hash.clone()),
        }]
    );
    // Its money was spent long ago: committed (so the budget sees it), not a cost of the plan.
    let cp = campaign_plan(&p, "street");
    assert_eq!(cp.actions[0].cost_delta, Money::ZERO);
    assert!(cp.actions[0].reason.contains("committed"));
    assert_eq!(cp.committed, usd(42));
    assert_eq!(p.summary.cost_delta, Money::ZERO);
    assert_eq!(p.summary.adopt, 1);
    assert_eq!(p.summary.create, 0);
    // An adopted item is not also "unchanged".
    assert_eq!(cp.unchanged, 0);
}

#[test]
fn adopted_hits_money_counts_against_the_budget_as_committed() {
    let mut c = campaign("street", &["a"]);
    c.max_spend = Some(usd(40));
    let mut r = recorded(vec![]);
    r.hit_types.push(RecordedHitType {
        definition_hash: c.hit_type_hash.clone(),
        hit_type_id: "TYPE1".to_owned(),
    });
    r.orphans.push(orphan("street", "a", 1, "ORPHAN1"));
    let p = run(&desired(vec![c]), &r);
    let cp = campaign_plan(&p, "street");
    assert_eq!(cp.cost_delta, Money::ZERO);
    assert!(
        cp.over_budget,
        "$0.42 committed by the adopted HIT is over $0.40"
    );
}

#[test]
fn orphan_of_newer_generation_completes_an_interrupted_replace() {
    let mut c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.expiration = UnixTime(NOW.0 - 5);
    h.expired_by = Some(ExpiredBy::Replace);
    c.items[0] = item("a", 2);
    let mut r = recorded(vec![h]);
    r.orphans.push(orphan("street", "a", 2, "ORPHAN2"));
    let p = run(&desired(vec![c]), &r);
    assert!(
        matches!(
            &actions(&p, "street")[..],
            [Action::AdoptHit { generation: 2, .. }]
        ),
        "{:?}",
        actions(&p, "street")
    );
}

#[test]
fn interrupted_replace_without_orphan_creates_next_generation() {
    let mut c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.expiration = UnixTime(NOW.0 - 5);
    h.expired_by = Some(ExpiredBy::Replace);
    c.items[0] = item("a", 2);
    let p = run(&desired(vec![c.clone()]), &recorded(vec![h]));
    assert_eq!(
        actions(&p, "street"),
        vec![Action::CreateHit(expected_create(&c, "a", 2))]
    );
}

#[test]
fn orphan_of_removed_item_is_adopted_and_expired() {
    let c = campaign("street", &["a"]);
    let mut r = recorded(vec![hit_for(&c, "a")]);
    r.orphans.push(orphan("street", "gone", 1, "ORPHANG"));
    let p = run(&desired(vec![c.clone()]), &r);
    assert_eq!(
        actions(&p, "street"),
        vec![
            Action::AdoptHit {
                campaign: "street".to_owned(),
                item_key: "gone".to_owned(),
                generation: 1,
                hit_id: "ORPHANG".to_owned(),
                content_hash: None,
                hit_type_hash: Some(c.hit_type_hash.clone()),
            },
            expire("street", "gone", "ORPHANG", ExpiredBy::Removal),
        ]
    );
}

#[test]
fn orphan_with_hashed_key_is_matched_to_its_item() {
    let long = "k".repeat(300);
    let c = campaign("street", &[long.as_str()]);
    let mut r = recorded(vec![]);
    let o = orphan("street", &long, 1, "ORPHANH");
    assert!(matches!(o.annotation.key, AnnotatedKey::Hashed(_)));
    r.orphans.push(o);
    let p = run(&desired(vec![c]), &r);
    assert!(matches!(
        &actions(&p, "street")[..],
        [Action::AdoptHit { item_key, .. }] if *item_key == long
    ));
}

#[test]
fn duplicate_older_generation_still_open_is_expired() {
    let c = campaign("street", &["a"]);
    let old = hit_for(&c, "a");
    let mut new = hit_for(&c, "a");
    new.generation = 2;
    new.hit_id = "HITNEW".to_owned();
    let p = run(&desired(vec![c]), &recorded(vec![old.clone(), new]));
    assert_eq!(
        actions(&p, "street"),
        vec![expire("street", "a", &old.hit_id, ExpiredBy::Replace)]
    );
}

// ---- drift ------------------------------------------------------------------------------------

#[test]
fn drift_is_reported_and_a_deleted_hit_is_not_recreated() {
    let c = campaign("street", &["a", "b"]);
    let mut ha = hit_for(&c, "a");
    ha.status = HitStatus::Disposed;
    ha.drift = vec![Drift::Deleted];
    let mut hb = hit_for(&c, "b");
    hb.drift = vec![Drift::AssignmentsChanged { was: 3, now: 3 }];
    let p = run(&desired(vec![c]), &recorded(vec![ha.clone(), hb]));
    assert!(actions(&p, "street").is_empty());
    let cp = campaign_plan(&p, "street");
    assert_eq!(cp.drift.len(), 2);
    assert_eq!(cp.drift[0].hit_id, ha.hit_id);
    assert_eq!(p.summary.drift, 2);
    assert!(warned(&p, "turkform state rm street/a"), "{:?}", p.warnings);
}

#[test]
fn hit_expired_outside_is_not_reopened_unless_the_file_asks_for_later() {
    let mut c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    let was = h.expiration;
    h.expiration = UnixTime(NOW.0 - 100);
    h.drift = vec![Drift::Expired {
        was,
        now: h.expiration,
    }];
    let p = run(&desired(vec![c.clone()]), &recorded(vec![h.clone()]));
    assert!(actions(&p, "street").is_empty());
    c.lifetime = Lifetime::EndsAt(was.plus_secs(DAY));
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    assert_eq!(p.summary.extend, 1);
}

// ---- qualification types ----------------------------------------------------------------------

fn qual(name: &str, description: &str) -> QualificationTypeSpec {
    QualificationTypeSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        keywords: Vec::new(),
        auto_granted: false,
        auto_granted_value: None,
        active: true,
        declared_in: PathBuf::from("campaigns/street.toml"),
    }
}

#[test]
fn qualification_types_are_created_and_updated() {
    let mut d = desired(vec![campaign("street", &[])]);
    let same = qual("same", "unchanged");
    let changed = qual("changed", "new text");
    d.qualification_types = vec![changed.clone(), qual("fresh", "x"), same.clone()];
    let mut r = recorded(vec![]);
    r.qualification_types = vec![
        RecordedQualificationType {
            name: "same".to_owned(),
            qualification_type_id: "Q1".to_owned(),
            definition_hash: same.definition_hash(),
        },
        RecordedQualificationType {
            name: "changed".to_owned(),
            qualification_type_id: "Q2".to_owned(),
            definition_hash: qual("changed", "old text").definition_hash(),
        },
        RecordedQualificationType {
            name: "dropped".to_owned(),
            qualification_type_id: "Q3".to_owned(),
            definition_hash: "h".to_owned(),
        },
    ];
    let p = run(&d, &r);
    let got: Vec<&Action> = p.qualification_types.iter().map(|a| &a.action).collect();
    assert_eq!(
        got,
        vec![
            &Action::UpdateQualificationType {
                qualification_type_id: "Q2".to_owned(),
                spec: changed,
            },
            &Action::CreateQualificationType {
                spec: qual("fresh", "x")
            },
        ]
    );
    assert_eq!(p.summary.create_qualification_types, 1);
    assert_eq!(p.summary.update_qualification_types, 1);
    assert!(warned(&p, "`dropped` is no longer declared"));
    assert!(p.has_changes());
}

// ---- budget, filtering, determinism -----------------------------------------------------------

#[test]
fn budget_over_and_under() {
    let mut c = campaign("street", &["a", "b"]);
    let ha = hit_for(&c, "a");
    c.max_spend = Some(usd(84));
    let p = run(&desired(vec![c.clone()]), &recorded(vec![ha.clone()]));
    let cp = campaign_plan(&p, "street");
    assert_eq!((cp.committed, cp.cost_delta), (usd(42), usd(42)));
    assert!(!cp.over_budget, "exactly at the limit is allowed");
    c.max_spend = Some(usd(83));
    let p = run(&desired(vec![c]), &recorded(vec![ha]));
    assert!(campaign_plan(&p, "street").over_budget);
}

#[test]
fn filtering_by_campaign_plans_only_those() {
    let a = campaign("alpha", &["x"]);
    let b = campaign("beta", &["y"]);
    let gone = campaign("gone", &["z"]);
    let mut d = desired(vec![a, b]);
    d.qualification_types = vec![qual("unused", "x")];
    let r = recorded(vec![hit_for(&gone, "z")]);
    let p = plan(
        &d,
        &r,
        NOW,
        &PlanOptions {
            only_campaigns: vec!["beta".to_owned()],
        },
    );
    assert_eq!(
        p.campaigns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        vec!["beta"]
    );
    assert_eq!(p.summary.create, 1);
    assert_eq!(p.summary.expire, 0);
    assert!(p.qualification_types.is_empty());
}

#[test]
fn determinism_same_inputs_same_plan() {
    let mut c = campaign("street", &["e", "d", "c", "b", "a"]);
    let gone = campaign("gone", &["q", "p", "r"]);
    let mut hits: Vec<RecordedHit> = ["a", "c", "e"].iter().map(|k| hit_for(&c, k)).collect();
    hits.extend(["r", "p", "q"].iter().map(|k| hit_for(&gone, k)));
    let extra = campaign("street", &["y", "x", "w"]);
    hits.extend(["y", "x", "w"].iter().map(|k| hit_for(&extra, k)));
    c.assignments = 4;
    let d = desired(vec![c]);
    let r = recorded(hits.clone());
    let first = run(&d, &r);
    for _ in 0..5 {
        assert_eq!(run(&d, &r), first);
    }
    hits.reverse();
    assert_eq!(run(&d, &recorded(hits)).campaigns, first.campaigns);
    let json = serde_json::to_string(&first).unwrap();
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, first);
}

#[test]
fn item_re_added_after_removal_is_not_reposted() {
    let c = campaign("street", &["a"]);
    let mut h = hit_for(&c, "a");
    h.expiration = UnixTime(NOW.0 - 100);
    h.expired_by = Some(ExpiredBy::Removal);
    let p = run(&desired(vec![c]), &recorded(vec![h]));
    assert!(actions(&p, "street").is_empty());
    assert!(
        warned(&p, "turkform state rm street/<key>"),
        "{:?}",
        p.warnings
    );
}

// ---- review and payments (DESIGN.md section 9) -------------------------------------------------

mod review {
    use std::collections::BTreeMap;

    use turkform_model::{
        AssignmentStatus, BonusRow, DecidedBy, Decision, KnownAnswers, RecordedAssignment,
        RecordedBonus, Verdict,
    };
    use turkform_plan::{ReviewAction, ReviewBasis};

    use super::*;

    const WORKER_OK: &str = "AGOOD";
    const WORKER_BAD: &str = "ABAD";

    /// A campaign with items a..f, each HIT in state, and no review yet.
    fn setup() -> (DesiredCampaign, RecordedState) {
        let c = campaign("street", &["a", "b", "c", "d", "e", "f"]);
        let hits = c.items.iter().map(|i| hit_for(&c, &i.key)).collect();
        (c, recorded(hits))
    }

    fn answer(
        c: &DesiredCampaign,
        key: &str,
        worker: &str,
        label: &str,
        n: u32,
    ) -> RecordedAssignment {
        RecordedAssignment {
            assignment_id: format!("AS{key}{worker}{n}"),
            hit_id: format!("HIT{}{key}", c.name.to_uppercase()),
            campaign: c.name.clone(),
            item_key: key.to_owned(),
            generation: 1,
            worker_id: worker.to_owned(),
            status: AssignmentStatus::Submitted,
            accept_time: Some(UnixTime(NOW.0 - 3_700)),
            submit_time: Some(UnixTime(NOW.0 - 3_600)),
            auto_approval_time: Some(UnixTime(NOW.0 - 3_600 + 3 * DAY as i64)),
            approval_time: None,
            rejection_time: None,
            answer_xml: String::new(),
            answers: BTreeMap::from([("label".to_owned(), label.to_owned())]),
            requester_feedback: None,
            decided_by: None,
        }
    }

    fn decision(id: &str, verdict: Verdict, line: usize) -> Decision {
        Decision {
            assignment_id: id.to_owned(),
            verdict,
            file: "reviews/street.csv".into(),
            line,
        }
    }

    fn reject(why: &str) -> Verdict {
        Verdict::Reject {
            feedback: why.to_owned(),
        }
    }

    fn approve() -> Verdict {
        Verdict::Approve { feedback: None }
    }

    fn gold(keys: &[&str]) -> KnownAnswers {
        KnownAnswers {
            file: "gold/street.csv".into(),
            gold: keys
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        BTreeMap::from([("label".to_owned(), "car".to_owned())]),
                    )
                })
                .collect(),
            min_answers: 3,
            reject_below: Some(0.6),
            approve_at_least: Some(0.8),
            block_below: None,
            reason: "Most answers on checked items were wrong".to_owned(),
        }
    }

    fn bonus_row(id: &str, worker: &str, cents: i64, line: usize) -> BonusRow {
        BonusRow {
            assignment_id: id.to_owned(),
            worker_id: worker.to_owned(),
            amount: usd(cents),
            reason: "Great work".to_owned(),
            id: None,
            file: "bonuses/street.csv".into(),
            line,
        }
    }

    fn review_of(p: &Plan) -> Vec<(String, String, String)> {
        campaign_plan(p, "street")
            .review
            .iter()
            .map(|r| {
                (
                    r.action.verb().to_owned(),
                    r.action.assignment_id().to_owned(),
                    r.reason.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_decisions_row_approves_or_rejects_submitted_work_with_its_feedback() {
        let (mut c, mut r) = setup();
        let a = answer(&c, "a", WORKER_OK, "car", 1);
        let b = answer(&c, "b", WORKER_OK, "bus", 1);
        c.review.decisions = vec![
            decision(&a.assignment_id, approve(), 2),
            decision(&b.assignment_id, reject("Wrong label"), 3),
        ];
        r.assignments = vec![a.clone(), b.clone()];
        let p = run(&desired(vec![c]), &r);
        let cp = campaign_plan(&p, "street");
        assert_eq!(cp.review.len(), 2);
        assert!(
            matches!(&cp.review[0].action, ReviewAction::Approve { assignment_id, .. } if *assignment_id == a.assignment_id)
        );
        assert!(
            matches!(&cp.review[1].action, ReviewAction::Reject { feedback, .. } if feedback == "Wrong label")
        );
        assert_eq!(cp.review[1].reason, "decisions row reviews/street.csv:3");
        // An approval pays the reward and fee the HIT committed ($0.12 + 20 % = $0.14), nothing new.
        assert_eq!(cp.review[0].moves, usd(14));
        assert_eq!(cp.review[0].cost_delta, Money::ZERO);
        assert_eq!((p.summary.approve, p.summary.reject), (1, 1));
        assert!(p.has_changes() && p.errors.is_empty());
    }

    #[test]
    fn work_already_in_the_wanted_state_plans_nothing() {
        let (mut c, mut r) = setup();
        let mut a = answer(&c, "a", WORKER_OK, "car", 1);
        a.status = AssignmentStatus::Approved;
        a.decided_by = Some(DecidedBy::Turkform);
        c.review.decisions = vec![decision(&a.assignment_id, approve(), 2)];
        r.assignments = vec![a];
        let p = run(&desired(vec![c]), &r);
        assert!(campaign_plan(&p, "street").review.is_empty());
        assert!(!p.has_changes());
    }

    #[test]
    fn approving_a_rejected_assignment_overrides_the_rejection_within_30_days() {
        let (mut c, mut r) = setup();
        let mut a = answer(&c, "a", WORKER_OK, "car", 1);
        a.status = AssignmentStatus::Rejected;
        let mut old = answer(&c, "b", WORKER_OK, "car", 1);
        old.status = AssignmentStatus::Rejected;
        old.submit_time = Some(UnixTime(NOW.0 - 31 * DAY as i64));
        c.review.decisions = vec![
            decision(&a.assignment_id, approve(), 2),
            decision(&old.assignment_id, approve(), 3),
        ];
        r.assignments = vec![a, old.clone()];
        let p = run(&desired(vec![c]), &r);
        let rev = review_of(&p);
        assert_eq!(rev.len(), 1);
        assert_eq!(rev[0].0, "override rejection of");
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains(&old.assignment_id)
                    && w.message.contains("within 30 days")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn rejecting_approved_work_is_reported_not_planned_and_auto_approval_is_a_conflict() {
        let (mut c, mut r) = setup();
        let mut auto = answer(&c, "a", WORKER_OK, "car", 1);
        auto.status = AssignmentStatus::Approved;
        auto.decided_by = Some(DecidedBy::Auto);
        let mut outside = answer(&c, "b", WORKER_OK, "car", 1);
        outside.status = AssignmentStatus::Approved;
        outside.decided_by = Some(DecidedBy::Outside);
        c.review.decisions = vec![
            decision(&auto.assignment_id, reject("late"), 2),
            decision(&outside.assignment_id, reject("late"), 3),
        ];
        r.assignments = vec![auto, outside];
        let p = run(&desired(vec![c]), &r);
        assert!(campaign_plan(&p, "street").review.is_empty());
        let msgs: Vec<&str> = p.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("auto-approved it before the rejection arrived")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("cannot be reversed")),
            "{msgs:?}"
        );
    }

    #[test]
    fn a_decisions_row_naming_an_unknown_assignment_is_a_plan_error_at_its_line() {
        let (mut c, r) = setup();
        c.review.decisions = vec![decision("NOSUCH", approve(), 7)];
        let p = run(&desired(vec![c]), &r);
        assert_eq!(p.errors.len(), 1);
        let e = &p.errors[0];
        assert_eq!((e.file.to_str(), e.line), (Some("reviews/street.csv"), 7));
        assert!(
            e.message.contains("`NOSUCH` is not known to state"),
            "{}",
            e.message
        );
        assert_eq!(p.summary.errors, 1);
    }

    #[test]
    fn known_answers_reject_an_inaccurate_worker_approve_an_accurate_one_and_skip_the_unjudged() {
        let (mut c, mut r) = setup();
        c.review.known_answers = Some(gold(&["a", "b", "c"]));
        let mut all = Vec::new();
        for key in ["a", "b", "c", "d"] {
            all.push(answer(&c, key, WORKER_OK, "car", 1));
            all.push(answer(
                &c,
                key,
                WORKER_BAD,
                if key == "a" { "car" } else { "bus" },
                1,
            ));
        }
        // Two gold answers only: below min_answers, not judged.
        all.push(answer(&c, "a", "ANEW", "bus", 1));
        all.push(answer(&c, "b", "ANEW", "bus", 1));
        r.assignments = all;
        let p = run(&desired(vec![c]), &r);
        let cp = campaign_plan(&p, "street");
        let of = |w: &str| -> Vec<&turkform_plan::PlannedReview> {
            cp.review
                .iter()
                .filter(|x| matches!(&x.basis, ReviewBasis::KnownAnswers { worker_id, .. } if worker_id == w))
                .collect()
        };
        let bad = of(WORKER_BAD);
        assert_eq!(bad.len(), 4, "all of the worker's work, gold or not");
        assert!(bad.iter().all(|x| matches!(&x.action, ReviewAction::Reject { feedback, .. } if feedback == "Most answers on checked items were wrong")));
        assert_eq!(bad[0].reason, "of ABAD: accuracy 0.33 on 3 known answers");
        let good = of(WORKER_OK);
        assert_eq!(good.len(), 4);
        assert!(
            good.iter()
                .all(|x| matches!(x.action, ReviewAction::Approve { .. }))
        );
        assert!(of("ANEW").is_empty());
        assert_eq!(cp.review.len(), 8);
    }

    #[test]
    fn an_answer_to_gold_is_right_only_when_every_gold_field_matches_trimmed_and_case_sensitive() {
        let (mut c, mut r) = setup();
        let mut k = gold(&["a", "b", "c"]);
        k.min_answers = 3;
        k.approve_at_least = Some(1.0);
        for g in k.gold.values_mut() {
            g.insert("color".into(), "red".into());
        }
        c.review.known_answers = Some(k);
        let mut all = Vec::new();
        for (key, color) in [("a", " red "), ("b", "red"), ("c", "Red")] {
            let mut a = answer(&c, key, WORKER_OK, "car", 1);
            a.answers.insert("color".into(), color.into());
            all.push(a);
        }
        r.assignments = all;
        let p = run(&desired(vec![c]), &r);
        // 2 of 3 right ("Red" differs in case): 0.67, between the thresholds -> no decision.
        assert!(
            campaign_plan(&p, "street").review.is_empty(),
            "{:?}",
            review_of(&p)
        );
    }

    #[test]
    fn decisions_beat_known_answers_which_beat_approve_after() {
        let (mut c, mut r) = setup();
        c.review.known_answers = Some(gold(&["a", "b", "c"]));
        c.review.approve_after_secs = Some(1_800);
        let mut all: Vec<RecordedAssignment> = ["a", "b", "c"]
            .iter()
            .map(|k| answer(&c, k, WORKER_BAD, "bus", 1))
            .collect();
        let spared = all[0].assignment_id.clone();
        c.review.decisions = vec![decision(&spared, approve(), 2)];
        let other = answer(&c, "d", "AOTHER", "x", 1);
        let mut fresh = answer(&c, "e", "AOTHER", "x", 1);
        fresh.submit_time = Some(UnixTime(NOW.0 - 60));
        all.push(other.clone());
        all.push(fresh.clone());
        r.assignments = all;
        let p = run(&desired(vec![c]), &r);
        let rev = review_of(&p);
        let find = |id: &str| rev.iter().find(|x| x.1 == id).cloned();
        assert_eq!(find(&spared).unwrap().0, "approve");
        assert_eq!(rev.iter().filter(|x| x.0 == "reject").count(), 2);
        let o = find(&other.assignment_id).unwrap();
        assert_eq!(
            (o.0.as_str(), o.2.as_str()),
            ("approve", "submitted more than 30m ago (approve_after)")
        );
        assert!(
            find(&fresh.assignment_id).is_none(),
            "approve_after has not elapsed"
        );
    }

    #[test]
    fn rules_never_fight_a_decision_made_outside_turkform() {
        let (mut c, mut r) = setup();
        c.review.approve_after_secs = Some(60);
        c.review.known_answers = Some(gold(&["a", "b", "c"]));
        let mut all: Vec<RecordedAssignment> = ["a", "b", "c"]
            .iter()
            .map(|k| answer(&c, k, WORKER_BAD, "bus", 1))
            .collect();
        for a in &mut all {
            a.status = AssignmentStatus::Approved;
            a.decided_by = Some(DecidedBy::Outside);
        }
        let mut rejected = answer(&c, "d", "AOTHER", "x", 1);
        rejected.status = AssignmentStatus::Rejected;
        rejected.decided_by = Some(DecidedBy::Outside);
        all.push(rejected);
        r.assignments = all;
        let p = run(&desired(vec![c]), &r);
        assert!(review_of(&p).is_empty());
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_bonus_costs_its_amount_plus_a_fifth_at_least_a_cent_and_counts_in_the_budget() {
        let (mut c, mut r) = setup();
        let a = answer(&c, "a", WORKER_OK, "car", 1);
        let b = answer(&c, "b", WORKER_OK, "car", 1);
        c.review.bonuses = vec![
            bonus_row(&a.assignment_id, WORKER_OK, 100, 2),
            bonus_row(&b.assignment_id, WORKER_OK, 3, 3),
        ];
        r.assignments = vec![a.clone(), b];
        let committed: Money = r.hits.iter().map(|h| h.committed_cost).sum();
        c.max_spend = Some(committed + usd(124));
        let p = run(&desired(vec![c.clone()]), &r);
        let cp = campaign_plan(&p, "street");
        let costs: Vec<i64> = cp.review.iter().map(|x| x.cost_delta.cents()).collect();
        assert_eq!(costs, vec![120, 4]);
        assert!(!cp.over_budget, "exactly at the budget");
        assert!(
            matches!(&cp.review[0].action, ReviewAction::SendBonus { token, resend: false, .. } if *token == c.review.bonuses[0].token(Target::Sim, "street"))
        );
        assert_eq!(p.summary.bonus, 2);
        assert_eq!(p.summary.cost_delta, usd(124));
        c.max_spend = Some(committed + usd(123));
        let p = run(&desired(vec![c]), &r);
        assert!(campaign_plan(&p, "street").over_budget);
    }

    fn paid(row: &BonusRow, paid: bool) -> RecordedBonus {
        RecordedBonus {
            campaign: "street".into(),
            identity: row.identity(),
            assignment_id: row.assignment_id.clone(),
            worker_id: row.worker_id.clone(),
            amount: row.amount,
            reason: row.reason.clone(),
            token: row.token(Target::Sim, "street"),
            requested_at: UnixTime(NOW.0 - 100),
            paid_at: paid.then_some(UnixTime(NOW.0 - 90)),
        }
    }

    #[test]
    fn a_paid_bonus_is_never_paid_again_and_an_edited_one_is_warned_about() {
        let (mut c, mut r) = setup();
        let a = answer(&c, "a", WORKER_OK, "car", 1);
        let row = bonus_row(&a.assignment_id, WORKER_OK, 100, 2);
        r.bonuses = vec![paid(&row, true)];
        let mut edited = row.clone();
        edited.amount = usd(200);
        c.review.bonuses = vec![edited];
        r.assignments = vec![a];
        let committed: Money = r.hits.iter().map(|h| h.committed_cost).sum();
        let p = run(&desired(vec![c.clone()]), &r);
        let cp = campaign_plan(&p, "street");
        assert!(cp.review.is_empty());
        assert_eq!(
            cp.committed,
            committed + usd(120),
            "the paid bonus counts as spent"
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("is not paid again")),
            "{:?}",
            p.warnings
        );
        c.review.bonuses = vec![row];
        let p = run(&desired(vec![c]), &r);
        assert!(p.warnings.is_empty() && !p.has_changes());
    }

    #[test]
    fn a_pending_bonus_is_resent_with_its_recorded_token_and_amount() {
        let (mut c, mut r) = setup();
        let a = answer(&c, "a", WORKER_OK, "car", 1);
        let row = bonus_row(&a.assignment_id, WORKER_OK, 100, 2);
        r.bonuses = vec![paid(&row, false)];
        c.review.bonuses = vec![row.clone()];
        r.assignments = vec![a];
        let p = run(&desired(vec![c]), &r);
        let cp = campaign_plan(&p, "street");
        assert_eq!(cp.review.len(), 1);
        assert!(
            matches!(&cp.review[0].action, ReviewAction::SendBonus { resend: true, amount, .. } if *amount == usd(100))
        );
        assert_eq!(
            cp.review[0].cost_delta,
            Money::ZERO,
            "already counted as committed"
        );
    }

    #[test]
    fn a_bonus_to_a_worker_who_did_not_do_the_assignment_is_a_plan_error() {
        let (mut c, mut r) = setup();
        let a = answer(&c, "a", WORKER_OK, "car", 1);
        c.review.bonuses = vec![
            bonus_row(&a.assignment_id, WORKER_BAD, 100, 4),
            bonus_row("NOSUCH", WORKER_OK, 100, 5),
        ];
        r.assignments = vec![a];
        let p = run(&desired(vec![c]), &r);
        let lines: Vec<(usize, &str)> = p
            .errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].0, 4);
        assert!(
            lines[0].1.contains("WorkerId `ABAD` did not do assignment"),
            "{lines:?}"
        );
        assert!(lines[1].1.contains("not known to state"));
        assert!(campaign_plan(&p, "street").review.is_empty());
    }
}

// ---- goal = "approved" (DESIGN.md section 9) ---------------------------------------------------

#[path = "planner/goal.rs"]
mod goal;
