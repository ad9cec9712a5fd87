//! The executor against the simulator through the real aws-sdk-mturk client. Every assertion
//! that matters is made on the simulator's own view (`/_sim/stats`, ListHITs), not only on
//! what turkform recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::Value;
use turkform_apply::{ApplyError, ApplyOptions, ApplyReport, Clock, NoReporter};
use turkform_model::{
    Annotation, CampaignStatus, DesiredCampaign, DesiredItem, DesiredState, Drift, ExpiredBy,
    HitStatus, HitTypeSpec, Lifetime, Money, Question, Target, UnixTime,
};
use turkform_mturk::{ConnectOptions, MturkApi, SdkMturk};
use turkform_plan::{Plan, PlanOptions};
use turkform_sim::{ControlClient, SimConfig, SimHandle};
use turkform_state::{OpenMode, StateStore};

/// The simulator's virtual clock, as the binary gives it for target `sim`.
#[derive(Clone, Default)]
struct SimClock(Arc<AtomicI64>);

impl Clock for SimClock {
    fn now(&self) -> UnixTime {
        UnixTime(UnixTime::now().0 + self.0.load(Ordering::SeqCst))
    }
}

struct Harness {
    dir: tempfile::TempDir,
    sim: Option<SimHandle>,
    api: SdkMturk,
    store: StateStore,
    clock: SimClock,
}

impl Harness {
    async fn new(config: SimConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = SimConfig {
            db_path: Some(dir.path().join("sim.db")),
            ..config
        };
        let (sim, api) = start(config).await;
        let store = StateStore::open(
            &dir.path().join("state.db"),
            Target::Sim,
            OpenMode::ReadWrite,
        )
        .unwrap();
        Harness {
            dir,
            sim: Some(sim),
            api,
            store,
            clock: SimClock::default(),
        }
    }

    /// Restarts the simulator on the same world with other faults.
    async fn restart(&mut self, config: SimConfig) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        let (sim, api) = start(SimConfig {
            db_path: Some(self.dir.path().join("sim.db")),
            ..config
        })
        .await;
        self.sim = Some(sim);
        self.api = api;
    }

    fn sim(&self) -> &SimHandle {
        self.sim.as_ref().unwrap()
    }

    fn plan(&self, desired: &DesiredState) -> Plan {
        let recorded = self.store.load().unwrap();
        turkform_plan::plan(
            desired,
            &recorded,
            self.clock.now(),
            &PlanOptions::default(),
        )
    }

    fn options(&self) -> ApplyOptions {
        ApplyOptions::new(Target::Sim)
    }

    /// recover + refresh + plan + apply, as the binary runs it.
    async fn converge(&mut self, desired: &DesiredState) -> (Plan, ApplyReport) {
        let options = self.options();
        turkform_apply::recover(
            &self.api,
            &mut self.store,
            &self.clock,
            &NoReporter,
            &options,
        )
        .await
        .unwrap();
        turkform_apply::refresh(&self.api, &mut self.store, &self.clock, &NoReporter)
            .await
            .unwrap();
        let plan = self.plan(desired);
        turkform_apply::preflight(&plan, &self.api).await.unwrap();
        let report = turkform_apply::apply(
            &plan,
            &self.api,
            &mut self.store,
            &self.clock,
            &NoReporter,
            &options,
        )
        .await
        .unwrap();
        (plan, report)
    }

    fn control(&self) -> ControlClient {
        ControlClient::new(&self.sim().endpoint_url()).unwrap()
    }

    async fn stats(&self) -> Value {
        self.control().stats_json().await.unwrap()
    }

    /// Requests of every operation that changes MTurk (`turkform_sim::mutating_operations()`).
    async fn mutating_requests(&self) -> u64 {
        self.control().stats().await.unwrap().mutating_calls()
    }

    async fn advance(&self, secs: i64) {
        self.control()
            .advance_clock(u64::try_from(secs).unwrap())
            .await
            .unwrap();
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// The account balance as the simulator's own fee code left it (GetAccountBalance).
    async fn balance(&self) -> Money {
        read_through_faults("GetAccountBalance", || self.api.get_account_balance()).await
    }

    /// Every HIT on the simulator (ListHITs pages), as (annotation, hit id).
    async fn remote_hits(&self) -> Vec<turkform_mturk::RemoteHit> {
        let mut all = Vec::new();
        let mut next = None;
        loop {
            let page =
                read_through_faults("ListHITs", || self.api.list_hits(next.clone(), 100)).await;
            let empty = page.items.is_empty();
            all.extend(page.items);
            match page.next_token {
                Some(t) if !empty => next = Some(t),
                _ => return all,
            }
        }
    }
}

/// A ground-truth read of the test itself: it goes through the same faults and throttling as
/// the run it checks, so a refused attempt is tried again after a short backoff (not a wait for
/// anything to happen: the next attempt just must not hit the empty token bucket at once).
async fn read_through_faults<T, F, Fut>(what: &str, mut read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, turkform_mturk::ApiError>>,
{
    loop {
        match read().await {
            Ok(value) => return value,
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// Waits until the simulator holds at least `n` HITs (polling its stats), for at most 30 s.
async fn until_hits_at_least(control: &ControlClient, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while control.stats().await.unwrap().hits < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulator never held {n} HITs"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn start(config: SimConfig) -> (SimHandle, SdkMturk) {
    let sim = turkform_sim::start("127.0.0.1:0", config).await.unwrap();
    let mut options = ConnectOptions::simulator(sim.endpoint_url());
    options.timeout = Duration::from_secs(5);
    let api = SdkMturk::connect(&options).await.unwrap();
    (sim, api)
}

fn question(key: &str, version: &str) -> Question {
    Question::Xml {
        xml: format!(
            r#"<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"><HTMLContent><![CDATA[<!DOCTYPE html><html><body><crowd-form><p>{key} {version}</p></crowd-form><script src="https://assets.crowd.aws/crowd-html-elements.js"></script></body></html>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"#
        ),
    }
}

fn campaign(name: &str, items: usize, reward_cents: i64, assignments: u32) -> DesiredCampaign {
    let hit_type = HitTypeSpec {
        title: format!("Label photos ({name})"),
        description: "Tick every object you see".into(),
        keywords: vec!["image".into()],
        reward: Money::from_cents(reward_cents),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: 3600,
        qualifications: vec![],
    };
    DesiredCampaign {
        name: name.into(),
        file: format!("campaigns/{name}.toml").into(),
        status: CampaignStatus::Running,
        hit_type_hash: hit_type.definition_hash(),
        hit_type,
        assignments,
        lifetime: Lifetime::Duration(86_400 * 3),
        max_spend: None,
        review: Default::default(),
        items: (0..items)
            .map(|i| {
                let key = format!("img-{i:04}");
                let question = question(&key, "v1");
                DesiredItem {
                    content_hash: question.content_hash(),
                    row: vec![("id".to_owned(), key.clone())],
                    key,
                    question,
                }
            })
            .collect(),
    }
}

fn desired(campaigns: Vec<DesiredCampaign>) -> DesiredState {
    DesiredState {
        target: Target::Sim,
        campaigns,
        qualification_types: vec![],
        inputs_digest: "test".into(),
        workers: Default::default(),
    }
}

fn set_hit_type(c: &mut DesiredCampaign, f: impl FnOnce(&mut HitTypeSpec)) {
    f(&mut c.hit_type);
    c.hit_type_hash = c.hit_type.definition_hash();
}

async fn assert_exactly_one_hit_per_item(h: &Harness, desired: &DesiredState) {
    let remote = h.remote_hits().await;
    let stats = h.stats().await;
    assert_eq!(stats["duplicate_annotations"], 0, "{stats}");
    for c in &desired.campaigns {
        for item in &c.items {
            let n = remote
                .iter()
                .filter(|r| {
                    r.requester_annotation
                        .as_deref()
                        .and_then(Annotation::parse)
                        .is_some_and(|a| a.campaign == c.name && a.matches_key(&item.key))
                })
                .count();
            assert_eq!(n, 1, "item {} has {n} HITs", item.key);
        }
    }
    let recorded = h.store.load().unwrap();
    assert!(recorded.orphans.is_empty(), "{:?}", recorded.orphans);
    assert!(h.store.pending_intents().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_exactly_the_desired_hits_and_a_rerun_changes_nothing() {
    let mut h = Harness::new(SimConfig::default()).await;
    let d = desired(vec![campaign("street", 20, 12, 3)]);
    let (plan, report) = h.converge(&d).await;
    assert_eq!(plan.summary.create, 20);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.done, 21); // 1 HIT type + 20 HITs
    assert_eq!(report.api_calls["CreateHITWithHITType"], 20);
    let stats = h.stats().await;
    assert_eq!(stats["hits"], 20);
    assert_eq!(stats["requests"]["CreateHITWithHITType"], 20);
    assert_exactly_one_hit_per_item(&h, &d).await;

    let recorded = h.store.load().unwrap();
    assert_eq!(recorded.hits.len(), 20);
    let hit = &recorded.hits[0];
    assert_eq!(hit.max_assignments, 3);
    assert_eq!(hit.committed_cost, Money::from_cents(42));
    assert_eq!(hit.status, HitStatus::Assignable);
    assert_eq!(hit.hit_type_hash, d.campaigns[0].hit_type_hash);

    // A second run: reads in pages, plans nothing, sends nothing that changes anything.
    let before = h.mutating_requests().await;
    let (plan, report) = h.converge(&d).await;
    assert!(!plan.has_changes(), "{plan:#?}");
    assert_eq!(report.total_api_calls(), 0);
    assert_eq!(h.mutating_requests().await, before);
    let stats = h.stats().await;
    assert_eq!(
        stats["requests"]["GetHIT"].as_u64().unwrap_or(0),
        0,
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_through_faults_drops_and_throttling_without_duplicates() {
    let mut h = Harness::new(SimConfig {
        fault_rate: 0.05,
        drop_rate: 0.05,
        throttle_rps: Some(50.0),
        seed: Some(7),
        ..SimConfig::default()
    })
    .await;
    let d = desired(vec![campaign("noisy", 60, 10, 2)]);
    let mut rounds = 0;
    loop {
        rounds += 1;
        let (plan, report) = h.converge(&d).await;
        if !plan.has_changes() {
            break;
        }
        assert!(rounds <= 3, "not converged after 3 runs: {report:?}");
    }
    // The run was really noisy: every kind of trouble happened at least once.
    let stats = h.stats().await;
    assert!(stats["dropped"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["faults"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["throttled"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["hits"], 60);
    assert_exactly_one_hit_per_item(&h, &d).await;
}

/// The state a SIGKILL between the call and its outcome leaves: intents pending, HITs on MTurk.
async fn crash_after_calls(h: &mut Harness, d: &DesiredState) -> usize {
    // First a clean run with only one item, so that the HIT type is registered.
    let mut first = d.clone();
    first.campaigns[0].items.truncate(1);
    h.converge(&first).await;
    // Every answer lost and no retry: the calls reach MTurk, their outcomes are never known.
    h.restart(SimConfig {
        drop_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let plan = h.plan(d);
    let mut options = h.options();
    options.max_retries = 0;
    let report =
        turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options)
            .await
            .unwrap();
    let lost = d.campaigns[0].items.len() - 1;
    assert_eq!(report.failed.len(), lost, "{report:?}");
    assert_eq!(h.store.pending_intents().unwrap().len(), lost);
    h.restart(SimConfig::default()).await;
    assert_eq!(h.stats().await["hits"], d.campaigns[0].items.len());
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_adopts_hits_whose_outcome_was_never_recorded() {
    let mut h = Harness::new(SimConfig::default()).await;
    let d = desired(vec![campaign("crashy", 6, 10, 1)]);
    let lost = crash_after_calls(&mut h, &d).await;

    let options = h.options();
    let report = turkform_apply::recover(&h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert_eq!(report.pending, lost);
    assert_eq!(report.adopted, lost, "{report:?}");
    // Found by annotation, never resent (the item may have changed since the crash).
    assert!(
        !report.api_calls.contains_key("CreateHITWithHITType"),
        "{report:?}"
    );
    assert!(report.api_calls["ListHITs"] >= 1, "{report:?}");
    assert_eq!(h.stats().await["hits"], 6);
    assert_eq!(h.store.load().unwrap().hits.len(), 6);

    let (plan, _) = h.converge(&d).await;
    assert!(!plan.has_changes(), "{plan:#?}");
    assert_exactly_one_hit_per_item(&h, &d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_after_the_token_window_finds_hits_by_annotation() {
    let mut h = Harness::new(SimConfig::default()).await;
    let d = desired(vec![campaign("late", 5, 10, 1)]);
    let lost = crash_after_calls(&mut h, &d).await;
    h.advance(25 * 3600).await;
    let creates_before = h.stats().await["requests"]["CreateHITWithHITType"].clone();

    let options = h.options();
    let report = turkform_apply::recover(&h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert_eq!(report.adopted, lost, "{report:?}");
    // Nothing was resent: a resend after 24 h would have created duplicates.
    assert_eq!(
        h.stats().await["requests"]["CreateHITWithHITType"],
        creates_before
    );
    assert!(report.api_calls.contains_key("ListHITs"));
    assert_eq!(h.stats().await["duplicate_annotations"], 0);
    assert_eq!(h.store.load().unwrap().hits.len(), 5);
    assert!(h.store.pending_intents().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_dropped_mid_flight_is_finished_by_the_next_run() {
    // Dropping the apply future is what a SIGKILL does to it: whatever was committed stays,
    // nothing else happens.
    let mut h = Harness::new(SimConfig {
        latency: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let d = desired(vec![campaign("killed", 80, 10, 1)]);
    turkform_apply::refresh(&h.api, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    let plan = h.plan(&d);
    let options = h.options();
    let control = h.control();
    let run = turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options);
    // Kill (drop) the run once some HITs exist, not after a guessed time.
    tokio::select! {
        _ = run => panic!("the apply finished before it could be killed"),
        () = until_hits_at_least(&control, 10) => {}
    }
    let made = h.stats().await["hits"].as_u64().unwrap();
    assert!(made > 0 && made < 80, "{made}");
    // The kill landed while creates were in flight: journaled, their outcome never recorded.
    let pending = h.store.pending_intents().unwrap().len();
    assert!(pending > 0, "no create was in flight at the kill");
    let (_, _) = h.converge(&d).await;
    let (plan, _) = h.converge(&d).await;
    assert!(!plan.has_changes());
    assert_eq!(h.stats().await["hits"], 80);
    assert_exactly_one_hit_per_item(&h, &d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupting_finishes_in_flight_calls_and_records_them() {
    let mut h = Harness::new(SimConfig {
        latency: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let d = desired(vec![campaign("ctrlc", 80, 10, 1)]);
    turkform_apply::refresh(&h.api, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    let plan = h.plan(&d);
    let mut options = h.options();
    options.concurrency = 4;
    let cancel = options.cancel.clone();
    let control = h.control();
    // Interrupt once creates are under way (some HITs exist), not after a guessed time.
    let interrupter = tokio::spawn(async move {
        until_hits_at_least(&control, 5).await;
        cancel.cancel();
    });
    let report =
        turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options)
            .await
            .unwrap();
    interrupter.await.unwrap();
    assert!(report.interrupted);
    let made = h.stats().await["hits"].as_u64().unwrap();
    assert!(
        (5..80).contains(&made),
        "the interrupt landed mid-run: {made}"
    );
    // Everything sent was recorded; nothing is left pending.
    assert_eq!(h.store.load().unwrap().hits.len() as u64, made);
    assert!(h.store.pending_intents().unwrap().is_empty());
    let (plan, _) = h.converge(&d).await;
    assert_eq!(plan.summary.create as u64, 80 - made);
    assert_exactly_one_hit_per_item(&h, &d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_sees_drift_and_orphans() {
    let mut h = Harness::new(SimConfig::default()).await;
    let d = desired(vec![campaign("drift", 3, 10, 2)]);
    h.converge(&d).await;
    let recorded = h.store.load().unwrap();
    let victim = recorded.hits[0].clone();
    // Someone expires a HIT by hand, and a HIT with turkform's annotation appears that state
    // does not know (a crash with a lost journal).
    h.api
        .update_expiration(&victim.hit_id, UnixTime(0))
        .await
        .unwrap();
    let orphan = h
        .api
        .create_hit(&turkform_mturk::CreateHitRequest {
            hit_type_id: victim.hit_type_id.clone(),
            max_assignments: 2,
            lifetime_secs: 3600,
            question: turkform_mturk::QuestionRequest::Xml(match question("img-0009", "v1") {
                Question::Xml { xml } => xml,
                Question::Layout { .. } => unreachable!(),
            }),
            requester_annotation: Annotation::new("drift", "img-0009", 1).render(),
            unique_request_token: "orphan-token".into(),
        })
        .await
        .unwrap();

    let report = turkform_apply::refresh(&h.api, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    assert_eq!(report.drift.len(), 1, "{report:?}");
    assert!(matches!(report.drift[0].drift, Drift::Expired { .. }));
    assert_eq!(report.orphans, 1);
    assert!(report.api_calls <= 3, "{report:?}");
    let recorded = h.store.load().unwrap();
    let hit = recorded
        .hits
        .iter()
        .find(|x| x.hit_id == victim.hit_id)
        .unwrap();
    assert!(matches!(hit.drift[..], [Drift::Expired { .. }]));
    assert_eq!(hit.status, HitStatus::Reviewable);
    assert_eq!(recorded.orphans.len(), 1);
    assert_eq!(recorded.orphans[0].hit_id, orphan.hit_id);
    // A second refresh does not forget the drift.
    turkform_apply::refresh(&h.api, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    let again = h.store.load().unwrap();
    let hit = again
        .hits
        .iter()
        .find(|x| x.hit_id == victim.hit_id)
        .unwrap();
    assert_eq!(hit.drift.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_over_budget_and_over_balance_without_mutating() {
    let mut h = Harness::new(SimConfig::default()).await;
    turkform_apply::refresh(&h.api, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    let mut c = campaign("pricey", 5, 10, 1);
    c.max_spend = Some(Money::from_cents(20));
    let plan = h.plan(&desired(vec![c]));
    let err = turkform_apply::preflight(&plan, &h.api).await.unwrap_err();
    assert!(matches!(err, ApplyError::OverBudget { .. }), "{err}");
    assert!(err.to_string().contains("max_spend"), "{err}");

    // $100 x 9 assignments x 20 HITs is well over the simulator's $10,000.
    let plan = h.plan(&desired(vec![campaign("rich", 20, 10_000, 9)]));
    let err = turkform_apply::preflight(&plan, &h.api).await.unwrap_err();
    assert!(
        matches!(err, ApplyError::InsufficientBalance { .. }),
        "{err}"
    );
    assert_eq!(h.mutating_requests().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_replace_add_assignments_and_retype() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut d = desired(vec![campaign("life", 3, 10, 2)]);
    h.converge(&d).await;

    // Pause: every HIT expired, remembered as paused.
    d.campaigns[0].status = CampaignStatus::Paused;
    let (plan, report) = h.converge(&d).await;
    assert_eq!(plan.summary.expire, 3, "{plan:#?}");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for hit in h.store.load().unwrap().hits {
        assert_eq!(hit.expired_by, Some(ExpiredBy::Pause));
        assert!(hit.paused_remaining_secs.unwrap() > 86_400);
    }
    for r in h.remote_hits().await {
        assert_eq!(r.status, HitStatus::Reviewable);
    }

    // Resume: extended back.
    d.campaigns[0].status = CampaignStatus::Running;
    let (plan, report) = h.converge(&d).await;
    assert_eq!(plan.summary.extend, 3, "{plan:#?}");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for r in h.remote_hits().await {
        assert_eq!(r.status, HitStatus::Assignable);
    }

    // More assignments, a new reward (retype), new content for one item (replace).
    d.campaigns[0].assignments = 4;
    set_hit_type(&mut d.campaigns[0], |t| t.reward = Money::from_cents(11));
    let q = question("img-0000", "v2");
    d.campaigns[0].items[0].content_hash = q.content_hash();
    d.campaigns[0].items[0].question = q;
    let (plan, report) = h.converge(&d).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(plan.summary.replace == 1, "{plan:#?}");
    let (plan, _) = h.converge(&d).await;
    assert!(!plan.has_changes(), "{plan:#?}");
    let remote = h.remote_hits().await;
    let live: Vec<_> = remote
        .iter()
        .filter(|r| r.status == HitStatus::Assignable)
        .collect();
    assert_eq!(live.len(), 3);
    for r in &live {
        assert_eq!(r.max_assignments, 4);
        assert_eq!(r.reward, Some(Money::from_cents(11)));
    }
    assert_eq!(remote.len(), 4); // the replaced generation is kept, expired
    let recorded = h.store.load().unwrap();
    let old = recorded
        .hits
        .iter()
        .find(|x| x.item_key == "img-0000" && x.generation == 1)
        .unwrap();
    assert_eq!(old.expired_by, Some(ExpiredBy::Replace));
}

/// The simulator's API with reads made slow (GetHIT), as a busy MTurk makes them: calls sent
/// together then come back in another order than they were sent.
struct SlowReads<'a> {
    inner: &'a SdkMturk,
    delay: Duration,
    /// This many ListHITs calls are throttled before any goes through.
    throttled_lists: std::sync::atomic::AtomicU32,
    /// Likewise for ListQualificationTypes and GetAccountBalance.
    throttled_other_reads: std::sync::atomic::AtomicU32,
}

impl SlowReads<'_> {
    fn take_throttle(
        counter: &std::sync::atomic::AtomicU32,
    ) -> Result<(), turkform_mturk::ApiError> {
        let left = counter.load(Ordering::SeqCst);
        if left > 0 {
            counter.store(left - 1, Ordering::SeqCst);
            return Err(turkform_mturk::ApiError::Throttled {
                message: "Rate exceeded".into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl MturkApi for SlowReads<'_> {
    async fn get_account_balance(&self) -> Result<Money, turkform_mturk::ApiError> {
        Self::take_throttle(&self.throttled_other_reads)?;
        self.inner.get_account_balance().await
    }
    async fn create_qualification_type(
        &self,
        spec: &turkform_model::QualificationTypeSpec,
    ) -> Result<String, turkform_mturk::ApiError> {
        self.inner.create_qualification_type(spec).await
    }
    async fn update_qualification_type(
        &self,
        id: &str,
        spec: &turkform_model::QualificationTypeSpec,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.inner.update_qualification_type(id, spec).await
    }
    async fn list_qualification_types(
        &self,
        next_token: Option<String>,
    ) -> Result<
        turkform_mturk::Page<turkform_mturk::RemoteQualificationType>,
        turkform_mturk::ApiError,
    > {
        Self::take_throttle(&self.throttled_other_reads)?;
        self.inner.list_qualification_types(next_token).await
    }
    async fn create_hit_type(
        &self,
        request: &turkform_mturk::HitTypeRequest,
    ) -> Result<String, turkform_mturk::ApiError> {
        self.inner.create_hit_type(request).await
    }
    async fn create_hit(
        &self,
        request: &turkform_mturk::CreateHitRequest,
    ) -> Result<turkform_mturk::RemoteHit, turkform_mturk::ApiError> {
        self.inner.create_hit(request).await
    }
    async fn create_additional_assignments(
        &self,
        hit_id: &str,
        additional: u32,
        token: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.inner
            .create_additional_assignments(hit_id, additional, token)
            .await
    }
    async fn update_expiration(
        &self,
        hit_id: &str,
        expire_at: UnixTime,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.inner.update_expiration(hit_id, expire_at).await
    }
    async fn update_hit_type_of_hit(
        &self,
        hit_id: &str,
        hit_type_id: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.inner.update_hit_type_of_hit(hit_id, hit_type_id).await
    }
    async fn get_hit(
        &self,
        hit_id: &str,
    ) -> Result<turkform_mturk::RemoteHit, turkform_mturk::ApiError> {
        let hit = self.inner.get_hit(hit_id).await;
        tokio::time::sleep(self.delay).await;
        hit
    }
    async fn get_hit_with_question(
        &self,
        hit_id: &str,
    ) -> Result<(turkform_mturk::RemoteHit, Option<String>), turkform_mturk::ApiError> {
        let hit = self.inner.get_hit_with_question(hit_id).await;
        tokio::time::sleep(self.delay).await;
        hit
    }
    async fn list_hits(
        &self,
        next_token: Option<String>,
        max_results: i32,
    ) -> Result<turkform_mturk::Page<turkform_mturk::RemoteHit>, turkform_mturk::ApiError> {
        Self::take_throttle(&self.throttled_lists)?;
        self.inner.list_hits(next_token, max_results).await
    }
    async fn list_assignments_for_hit(
        &self,
        hit_id: &str,
        next_token: Option<String>,
    ) -> Result<turkform_mturk::Page<turkform_mturk::RemoteAssignment>, turkform_mturk::ApiError>
    {
        self.inner
            .list_assignments_for_hit(hit_id, next_token)
            .await
    }
    async fn approve_assignment(
        &self,
        assignment_id: &str,
        feedback: Option<&str>,
        override_rejection: bool,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.inner
            .approve_assignment(assignment_id, feedback, override_rejection)
            .await
    }
    async fn reject_assignment(
        &self,
        assignment_id: &str,
        feedback: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.inner.reject_assignment(assignment_id, feedback).await
    }
    async fn get_assignment(
        &self,
        assignment_id: &str,
    ) -> Result<turkform_mturk::RemoteDecision, turkform_mturk::ApiError> {
        self.inner.get_assignment(assignment_id).await
    }
    async fn send_bonus(
        &self,
        worker_id: &str,
        assignment_id: &str,
        amount: turkform_model::Money,
        reason: &str,
        token: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.inner
            .send_bonus(worker_id, assignment_id, amount, reason, token)
            .await
    }
    async fn list_bonus_payments(
        &self,
        assignment_id: &str,
    ) -> Result<Vec<turkform_mturk::BonusPayment>, turkform_mturk::ApiError> {
        self.inner.list_bonus_payments(assignment_id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_adopted_and_paused_in_one_run_is_resumed_later() {
    // A HIT whose create was never recorded (found by refresh as an orphan), in a campaign that
    // is paused: the plan adopts it and expires it. Its pause must be recorded whatever order
    // the GetHIT of the adoption and the UpdateExpirationForHIT come back in, or the HIT is
    // taken for "done" and never reopened.
    let mut h = Harness::new(SimConfig::default()).await;
    let mut d = desired(vec![campaign("orphaned", 2, 10, 2)]);
    let mut first = d.clone();
    first.campaigns[0].items.truncate(1);
    h.converge(&first).await;
    let hit_type_id = h.store.load().unwrap().hits[0].hit_type_id.clone();
    let orphan = h
        .api
        .create_hit(&turkform_mturk::CreateHitRequest {
            hit_type_id,
            max_assignments: 2,
            lifetime_secs: 86_400 * 3,
            question: turkform_mturk::QuestionRequest::Xml(match question("img-0001", "v1") {
                Question::Xml { xml } => xml,
                Question::Layout { .. } => unreachable!(),
            }),
            requester_annotation: Annotation::new("orphaned", "img-0001", 1).render(),
            unique_request_token: "lost-create".into(),
        })
        .await
        .unwrap();

    d.campaigns[0].status = CampaignStatus::Paused;
    turkform_apply::refresh(&h.api, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    let plan = h.plan(&d);
    assert_eq!(plan.summary.adopt, 1, "{plan:#?}");
    assert_eq!(plan.summary.expire, 2, "{plan:#?}");
    let slow = SlowReads {
        inner: &h.api,
        delay: Duration::from_millis(300),
        throttled_lists: 0.into(),
        throttled_other_reads: 0.into(),
    };
    let options = h.options();
    let report = turkform_apply::apply(&plan, &slow, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let recorded = h.store.load().unwrap();
    let adopted = recorded
        .hits
        .iter()
        .find(|x| x.hit_id == orphan.hit_id)
        .unwrap();
    assert_eq!(adopted.expired_by, Some(ExpiredBy::Pause), "{adopted:?}");
    assert!(
        adopted.paused_remaining_secs.unwrap() > 86_400,
        "{adopted:?}"
    );

    // Running again reopens both HITs.
    d.campaigns[0].status = CampaignStatus::Running;
    let (plan, report) = h.converge(&d).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(plan.summary.extend, 2, "{plan:#?}");
    for r in h.remote_hits().await {
        assert_eq!(r.status, HitStatus::Assignable, "{r:?}");
    }
    assert_exactly_one_hit_per_item(&h, &d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_after_the_token_window_does_not_add_assignments_twice() {
    // CreateAdditionalAssignmentsForHIT reached MTurk but its answer was lost, and the next run
    // comes after MTurk forgot the token: resending it would add the assignments a second time.
    let mut h = Harness::new(SimConfig::default()).await;
    let mut d = desired(vec![campaign("more", 2, 10, 2)]);
    h.converge(&d).await;
    d.campaigns[0].assignments = 4;
    h.restart(SimConfig {
        drop_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let plan = h.plan(&d);
    assert_eq!(plan.summary.add_assignments, 2, "{plan:#?}");
    let mut options = h.options();
    options.max_retries = 0;
    turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert_eq!(h.store.pending_intents().unwrap().len(), 2);
    h.restart(SimConfig::default()).await;
    for r in h.remote_hits().await {
        assert_eq!(r.max_assignments, 4);
    }
    h.advance(25 * 3600).await;

    let options = h.options();
    let report = turkform_apply::recover(&h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(h.store.pending_intents().unwrap().is_empty());
    for r in h.remote_hits().await {
        assert_eq!(r.max_assignments, 4, "assignments added twice: {r:?}");
    }
    for hit in h.store.load().unwrap().hits {
        assert_eq!(hit.max_assignments, 4);
    }
    let (plan, _) = h.converge(&d).await;
    assert!(!plan.has_changes(), "{plan:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_resume_to_the_same_ends_at_reopens_the_hits() {
    // With `ends_at`, every resume extends to the same instant. MTurk remembers (HIT, ExpireAt)
    // for a day and answers a repeat with "already processed": the second resume within a day
    // must still reopen the HITs, not record them as reopened while they stay expired.
    let mut h = Harness::new(SimConfig::default()).await;
    let mut d = desired(vec![campaign("again", 2, 10, 2)]);
    d.campaigns[0].lifetime = Lifetime::EndsAt(h.clock.now().plus_secs(3 * 86_400));
    h.converge(&d).await;
    for round in 0..2 {
        d.campaigns[0].status = CampaignStatus::Paused;
        let (plan, report) = h.converge(&d).await;
        assert_eq!(plan.summary.expire, 2, "round {round}: {plan:#?}");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        h.advance(120).await;
        d.campaigns[0].status = CampaignStatus::Running;
        let (plan, report) = h.converge(&d).await;
        assert_eq!(plan.summary.extend, 2, "round {round}: {plan:#?}");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        for r in h.remote_hits().await {
            assert_eq!(r.status, HitStatus::Assignable, "round {round}: {r:?}");
        }
        h.advance(120).await;
    }
    let (plan, _) = h.converge(&d).await;
    assert!(!plan.has_changes(), "{plan:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_waits_out_throttling() {
    // Every apply refreshes first; a throttled ListHITs page must be retried, not end the run.
    let mut h = Harness::new(SimConfig::default()).await;
    let d = desired(vec![campaign("busy", 3, 10, 1)]);
    h.converge(&d).await;
    let throttled = SlowReads {
        inner: &h.api,
        delay: Duration::ZERO,
        throttled_lists: 2.into(),
        throttled_other_reads: 0.into(),
    };
    let report = turkform_apply::refresh(&throttled, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    assert_eq!(report.listed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_and_the_balance_check_wait_out_throttled_reads() {
    // Regression: ListQualificationTypes (refresh) and GetAccountBalance (preflight) were sent
    // once; one ThrottlingException ended the run (seen in CI under --throttle-rps 50).
    let mut h = Harness::new(SimConfig::default()).await;
    let mut d = desired(vec![campaign("reads", 2, 10, 1)]);
    h.converge(&d).await;
    let throttled = SlowReads {
        inner: &h.api,
        delay: Duration::ZERO,
        throttled_lists: 0.into(),
        throttled_other_reads: 2.into(),
    };
    turkform_apply::refresh(&throttled, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    d.campaigns[0].assignments = 2;
    let plan = h.plan(&d);
    assert!(plan.summary.cost_delta > Money::ZERO);
    throttled.throttled_other_reads.store(2, Ordering::SeqCst);
    turkform_apply::preflight(&plan, &throttled).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_left_pending_past_its_instant_still_reopens_the_hits() {
    // Resuming a paused campaign extends its HITs. If those calls never got through and the
    // next run comes after the instant they asked for, resending them would "extend" to the
    // past: MTurk keeps the HIT expired, state records it as extended and no longer paused, and
    // the planner then treats it as finished, so it is never reopened.
    let mut h = Harness::new(SimConfig::default()).await;
    let mut d = desired(vec![campaign("late", 2, 10, 1)]);
    d.campaigns[0].lifetime = Lifetime::Duration(3600);
    h.converge(&d).await;
    d.campaigns[0].status = CampaignStatus::Paused;
    h.converge(&d).await;

    d.campaigns[0].status = CampaignStatus::Running;
    h.restart(SimConfig {
        fault_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let plan = h.plan(&d);
    assert_eq!(plan.summary.extend, 2, "{plan:#?}");
    let mut options = h.options();
    options.max_retries = 0;
    turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert_eq!(h.store.pending_intents().unwrap().len(), 2);

    h.restart(SimConfig::default()).await;
    h.advance(2 * 3600).await;
    let options = h.options();
    let report = turkform_apply::recover(&h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert!(h.store.pending_intents().unwrap().is_empty(), "{report:?}");

    let (plan, report) = h.converge(&d).await;
    assert_eq!(
        plan.summary.extend, 2,
        "the resume is planned again: {plan:#?}"
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for r in h.remote_hits().await {
        assert_eq!(r.status, HitStatus::Assignable, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mturk_gone_mid_apply_stops_the_run_within_the_outage_budget_leaving_sent_calls_pending() {
    let mut h = Harness::new(SimConfig {
        latency: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let d = desired(vec![campaign("vanishing", 200, 10, 1)]);
    turkform_apply::refresh(&h.api, &mut h.store, &h.clock, &NoReporter)
        .await
        .unwrap();
    let plan = h.plan(&d);
    let mut options = h.options();
    options.concurrency = 4;
    // The simulator goes away once some HITs exist: every later call is refused.
    let sim = h.sim.take().unwrap();
    let url = sim.endpoint_url();
    let watcher = tokio::spawn(async move {
        let control = ControlClient::new(&sim.endpoint_url()).unwrap();
        until_hits_at_least(&control, 20).await;
        sim.shutdown().await;
    });
    let started = std::time::Instant::now();
    let report =
        turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options)
            .await
            .unwrap();
    let elapsed = started.elapsed();
    watcher.await.unwrap();
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} after MTurk went away"
    );
    assert!(report.interrupted, "{report:?}");
    // It stopped sending instead of failing the 180 remaining items one by one.
    assert!(
        !report.failed.is_empty() && report.failed.len() <= 8,
        "{:?}",
        report.failed
    );
    assert!(
        report.failed.iter().all(|f| f
            .message
            .contains(&format!("MTurk at {url} is not answering"))),
        "{:?}",
        report.failed
    );
    // Calls that were attempted (and so may have reached MTurk) stay pending, never dropped;
    // the next run against the same world resends them with their tokens and creates the
    // rest, one HIT per item.
    let pending = h.store.pending_intents().unwrap().len();
    let recorded = h.store.load().unwrap().hits.len();
    assert!(pending >= report.failed.len(), "{pending}");
    assert!(recorded + pending <= 200, "{recorded} + {pending}");
    h.restart(SimConfig::default()).await;
    h.converge(&d).await;
    assert_exactly_one_hit_per_item(&h, &d).await;
}

// ---- review and payments ----------------------------------------------------------------------

/// Submits one assignment per HIT by `worker` answering `label`, and records them in state the
/// way refresh will (the refresh sync of assignments lands separately).
async fn work_and_record(h: &mut Harness, worker: &str, label: &str) -> Vec<String> {
    let out = h
        .control()
        .work(&serde_json::json!({
            "worker_id": worker,
            "assignments_per_hit": 1,
            "answers": {"label": label},
        }))
        .await
        .unwrap();
    let recorded = h.store.load().unwrap();
    let now = UnixTime(out["now"].as_i64().unwrap());
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for hit in out["hits"].as_array().unwrap() {
        let hit_id = hit["hit_id"].as_str().unwrap();
        let rec = recorded.hits.iter().find(|r| r.hit_id == hit_id).unwrap();
        for a in hit["submitted"].as_array().unwrap() {
            let id = a.as_str().unwrap().to_owned();
            rows.push(turkform_model::RecordedAssignment {
                assignment_id: id.clone(),
                hit_id: hit_id.to_owned(),
                campaign: rec.campaign.clone(),
                item_key: rec.item_key.clone(),
                generation: rec.generation,
                worker_id: worker.to_owned(),
                status: turkform_model::AssignmentStatus::Submitted,
                accept_time: Some(now),
                submit_time: Some(now),
                auto_approval_time: Some(now.plus_secs(3 * 86_400)),
                approval_time: None,
                rejection_time: None,
                answer_xml: String::new(),
                answers: [("label".to_owned(), label.to_owned())].into(),
                requester_feedback: None,
                decided_by: None,
            });
            ids.push(id);
        }
    }
    h.store
        .commit(&turkform_state::Batch {
            upsert_assignments: rows,
            ..turkform_state::Batch::default()
        })
        .unwrap();
    ids
}

async fn review_calls(h: &Harness) -> u64 {
    let stats = h.stats().await;
    ["ApproveAssignment", "RejectAssignment", "SendBonus"]
        .iter()
        .map(|op| stats["requests"][op].as_u64().unwrap_or(0))
        .sum()
}

async fn plan_and_review(
    h: &mut Harness,
    d: &DesiredState,
) -> (Plan, turkform_apply::ReviewReport) {
    let plan = h.plan(d);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    turkform_apply::preflight(&plan, &h.api).await.unwrap();
    let options = h.options();
    let report = turkform_apply::apply_review(&plan, &h.api, &mut h.store, &h.clock, &options)
        .await
        .unwrap();
    (plan, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_known_answers_and_bonuses_reach_mturk_exactly_once() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut c = campaign("street", 4, 10, 2);
    let d = desired(vec![c.clone()]);
    h.converge(&d).await;
    let good = work_and_record(&mut h, "AGOODWORKER", "cat").await;
    let bad = work_and_record(&mut h, "ABADWORKER", "dog").await;
    assert_eq!((good.len(), bad.len()), (4, 4));

    c.review.known_answers = Some(turkform_model::KnownAnswers {
        file: "gold.csv".into(),
        gold: c
            .items
            .iter()
            .map(|i| {
                (
                    i.key.clone(),
                    [("label".to_owned(), "cat".to_owned())].into(),
                )
            })
            .collect(),
        min_answers: 3,
        reject_below: Some(0.6),
        approve_at_least: Some(0.8),
        block_below: None,
        reason: "Most answers on checked items were wrong".into(),
    });
    // A decisions row beats the rule: this one answer of the bad worker is approved.
    c.review.decisions = vec![turkform_model::Decision {
        assignment_id: bad[0].clone(),
        verdict: turkform_model::Verdict::Approve {
            feedback: Some("Thanks".into()),
        },
        file: "decisions.csv".into(),
        line: 2,
    }];
    let row = |a: &str, cents: i64, id: Option<&str>, line: usize| turkform_model::BonusRow {
        assignment_id: a.to_owned(),
        worker_id: "AGOODWORKER".into(),
        amount: Money::from_cents(cents),
        reason: "Careful work".into(),
        id: id.map(str::to_owned),
        file: "bonuses.csv".into(),
        line,
    };
    c.review.bonuses = vec![
        row(&good[0], 50, None, 2),
        row(&good[0], 3, Some("2"), 3),
        row(&good[1], 25, None, 4),
    ];
    let d = desired(vec![c.clone()]);
    let before = h.api.get_account_balance().await.unwrap();
    let (plan, report) = plan_and_review(&mut h, &d).await;
    assert_eq!(
        (
            plan.summary.approve,
            plan.summary.reject,
            plan.summary.bonus
        ),
        (5, 3, 3)
    );
    assert_eq!(
        (report.approved, report.rejected, report.bonuses_paid),
        (5, 3, 3),
        "{report:?}"
    );

    // Ground truth: the simulator's own view.
    for id in &good {
        let a = h.api.get_assignment(id).await.unwrap();
        assert_eq!(a.status, turkform_model::AssignmentStatus::Approved);
    }
    let spared = h.api.get_assignment(&bad[0]).await.unwrap();
    assert_eq!(
        (spared.status, spared.requester_feedback.as_deref()),
        (turkform_model::AssignmentStatus::Approved, Some("Thanks"))
    );
    for id in &bad[1..] {
        let a = h.api.get_assignment(id).await.unwrap();
        assert_eq!(a.status, turkform_model::AssignmentStatus::Rejected);
        assert_eq!(
            a.requester_feedback.as_deref(),
            Some("Most answers on checked items were wrong")
        );
    }
    let paid0 = h.api.list_bonus_payments(&good[0]).await.unwrap();
    let mut amounts: Vec<i64> = paid0.iter().map(|p| p.amount.cents()).collect();
    amounts.sort();
    assert_eq!(amounts, vec![3, 50]);
    assert_eq!(h.api.list_bonus_payments(&good[1]).await.unwrap().len(), 1);
    let after = h.api.get_account_balance().await.unwrap();
    // 0.50 + 0.10, 0.03 + 0.01 (minimum fee), 0.25 + 0.05.
    assert_eq!(before - after, Money::from_cents(94));

    // Decisions are recorded as turkform's; nothing is planned or sent again.
    let state = h.store.load().unwrap();
    assert!(
        state
            .assignments
            .iter()
            .all(|a| a.decided_by == Some(turkform_model::DecidedBy::Turkform))
    );
    assert!(state.bonuses.iter().all(|b| b.paid_at.is_some()));
    let calls = review_calls(&h).await;
    let (again, report) = plan_and_review(&mut h, &d).await;
    assert!(!again.has_changes(), "{:?}", again.campaigns[0].review);
    assert_eq!(report.done(), 0);
    assert_eq!(
        review_calls(&h).await,
        calls,
        "a second apply makes no mutating call"
    );

    // An edited paid row is warned about and never paid again.
    c.review.bonuses[0].amount = Money::from_cents(75);
    let edited = h.plan(&desired(vec![c]));
    assert!(edited.campaigns[0].review.is_empty());
    assert!(
        edited
            .warnings
            .iter()
            .any(|w| w.message.contains("is not paid again"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_decision_is_confirmed_and_a_bonus_pending_past_23h_is_looked_up_not_resent() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut c = campaign("street", 2, 10, 1);
    h.converge(&desired(vec![c.clone()])).await;
    let ids = work_and_record(&mut h, "AWORKER", "cat").await;
    c.review.decisions = vec![turkform_model::Decision {
        assignment_id: ids[0].clone(),
        verdict: turkform_model::Verdict::Reject {
            feedback: "Blank".into(),
        },
        file: "decisions.csv".into(),
        line: 2,
    }];
    let bonus = turkform_model::BonusRow {
        assignment_id: ids[1].clone(),
        worker_id: "AWORKER".into(),
        amount: Money::from_cents(40),
        reason: "Extra".into(),
        id: None,
        file: "bonuses.csv".into(),
        line: 2,
    };
    c.review.bonuses = vec![bonus.clone()];
    let d = desired(vec![c]);

    // A crashed earlier apply: the rejection and the bonus reached MTurk, only the bonus's
    // pending record reached state.
    h.api.reject_assignment(&ids[0], "Blank").await.unwrap();
    let token = bonus.token(Target::Sim, "street");
    h.api
        .send_bonus("AWORKER", &ids[1], bonus.amount, "Extra", &token)
        .await
        .unwrap();
    h.store
        .record_bonus_pending(&turkform_model::RecordedBonus {
            campaign: "street".into(),
            identity: bonus.identity(),
            assignment_id: ids[1].clone(),
            worker_id: "AWORKER".into(),
            amount: bonus.amount,
            reason: "Extra".into(),
            token,
            requested_at: h.clock.now(),
            paid_at: None,
        })
        .unwrap();
    // MTurk forgets the token after 24 h.
    h.advance(25 * 3600).await;
    let before = h.api.get_account_balance().await.unwrap();
    let sent_before = h.stats().await["requests"]["SendBonus"]
        .as_u64()
        .unwrap_or(0);
    let (plan, report) = plan_and_review(&mut h, &d).await;
    assert_eq!((plan.summary.reject, plan.summary.bonus), (1, 1));
    assert_eq!(
        (report.confirmed, report.bonuses_found_paid),
        (1, 1),
        "{report:?}"
    );
    assert!(
        report.conflicts.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        h.stats().await["requests"]["SendBonus"]
            .as_u64()
            .unwrap_or(0),
        sent_before,
        "the pending bonus was found paid, not sent again"
    );
    assert_eq!(h.api.list_bonus_payments(&ids[1]).await.unwrap().len(), 1);
    assert_eq!(h.api.get_account_balance().await.unwrap(), before);
    assert!(!h.plan(&d).has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_after_auto_approval_is_a_reported_conflict_and_not_retried() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut c = campaign("street", 1, 10, 1);
    h.converge(&desired(vec![c.clone()])).await;
    let ids = work_and_record(&mut h, "AWORKER", "cat").await;
    c.review.decisions = vec![turkform_model::Decision {
        assignment_id: ids[0].clone(),
        verdict: turkform_model::Verdict::Reject {
            feedback: "Late".into(),
        },
        file: "decisions.csv".into(),
        line: 2,
    }];
    let d = desired(vec![c]);
    // State still says Submitted, but MTurk auto-approves at SubmitTime + the delay.
    h.advance(4 * 86_400).await;
    let (_, report) = plan_and_review(&mut h, &d).await;
    assert_eq!(report.rejected, 0);
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert!(report.conflicts[0].contains("auto-approved"), "{report:?}");
    let a = h.api.get_assignment(&ids[0]).await.unwrap();
    assert_eq!(a.status, turkform_model::AssignmentStatus::Approved);
    // Recorded as MTurk shows it: the next plan reports it instead of trying again.
    let again = h.plan(&d);
    assert!(again.campaigns[0].review.is_empty());
    assert!(
        again
            .warnings
            .iter()
            .any(|w| w.message.contains("auto-approved"))
    );
}

/// The plan's cost against an independent oracle: the simulator debits the balance with its own
/// fee code (20 %, +20 % at 10 or more assignments, +5 % with Masters, at least $0.01 per
/// assignment), so a fee bug in the planner shows up as a difference here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planned_cost_is_what_the_simulator_debits_for_every_fee_tier() {
    let masters = turkform_model::QualificationRequirement {
        qualification_type: turkform_model::QualificationTypeRef::Id(
            turkform_model::qualification::system::MASTERS_SANDBOX.to_owned(),
        ),
        comparator: turkform_model::Comparator::Exists,
        integer_values: vec![],
        locale_values: vec![],
        actions_guarded: None,
    };
    let mut with_masters = campaign("masters", 3, 25, 4);
    set_hit_type(&mut with_masters, |t| t.qualifications.push(masters));
    assert!(with_masters.hit_type.uses_masters());
    let cases = [
        // (what it exercises, campaign, expected cost in cents worked out by hand)
        // 5 HITs x 3 x (12 + 20 % = 2.4 -> 2) = 210
        ("fewer than 10 assignments", campaign("few", 5, 12, 3), 210),
        // 3 HITs x 10 x (10 + 40 % = 4) = 420
        ("10 or more assignments", campaign("many", 3, 10, 10), 420),
        // 3 HITs x 4 x (25 + 25 % = 6.25 -> 6) = 372
        ("Masters", with_masters, 372),
        // 4 HITs x 2 x (1 + the $0.01 minimum fee) = 16
        ("the $0.01 minimum fee", campaign("penny", 4, 1, 2), 16),
        // 2 HITs x 12 x (7 + 40 % = 2.8 -> 3) = 240: half-up rounding in the 40 % tier
        (
            "rounding at 10+ assignments",
            campaign("round", 2, 7, 12),
            240,
        ),
    ];
    for (what, c, by_hand) in cases {
        let mut h = Harness::new(SimConfig::default()).await;
        let d = desired(vec![c]);
        let before = h.balance().await;
        let (plan, report) = h.converge(&d).await;
        assert!(report.failed.is_empty(), "{what}: {:?}", report.failed);
        let debited = before - h.balance().await;
        assert_eq!(
            plan.summary.cost_delta, debited,
            "{what}: the plan's cost differs from the simulator's debit"
        );
        assert_eq!(debited, Money::from_cents(by_hand), "{what}");
        let recorded: Money = h
            .store
            .load()
            .unwrap()
            .hits
            .iter()
            .map(|x| x.committed_cost)
            .sum();
        assert_eq!(recorded, debited, "{what}: the recorded committed cost");
    }
}

/// A bonus row for `assignment` by `worker`, at line `line` of `bonuses.csv`.
fn bonus_row(assignment: &str, worker: &str, cents: i64, line: usize) -> turkform_model::BonusRow {
    turkform_model::BonusRow {
        assignment_id: assignment.to_owned(),
        worker_id: worker.to_owned(),
        amount: Money::from_cents(cents),
        reason: "Careful work".into(),
        id: None,
        file: "bonuses.csv".into(),
        line,
    }
}

/// Amount + MTurk's fee (20 %, half up, at least one cent), computed here, not by turkform.
fn with_fee(cents: i64) -> i64 {
    cents + ((cents * 20 + 50) / 100).max(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_calls_go_through_the_limiter_and_retries_and_never_pay_twice() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut c = campaign("noisy-review", 60, 10, 1);
    set_hit_type(&mut c, |t| t.auto_approval_delay_secs = 3 * 86_400);
    h.converge(&desired(vec![c.clone()])).await;
    let ids = work_and_record(&mut h, "AWORKER", "cat").await;
    assert_eq!(ids.len(), 60);
    c.review.approve_after_secs = Some(0);
    c.review.bonuses = ids
        .iter()
        .enumerate()
        .map(|(i, id)| bonus_row(id, "AWORKER", 1 + (i as i64 % 40), i + 2))
        .collect();
    let d = desired(vec![c.clone()]);
    let before = h.balance().await;
    // Throttled well below what 16 concurrent calls would send, with faults before any change
    // and answers lost after the change.
    h.restart(SimConfig {
        fault_rate: 0.05,
        drop_rate: 0.05,
        throttle_rps: Some(50.0),
        seed: Some(11),
        ..SimConfig::default()
    })
    .await;
    let mut rounds = 0;
    let mut throttled = 0;
    loop {
        rounds += 1;
        let (plan, report) = h.converge(&d).await;
        throttled += report.throttled;
        if !plan.has_changes() {
            break;
        }
        assert!(rounds <= 3, "not converged after 3 runs: {report:?}");
    }
    let stats = h.stats().await;
    assert!(stats["dropped"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["faults"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        throttled > 0,
        "the executor met MTurk's throttling: {stats}"
    );
    h.restart(SimConfig::default()).await;
    let mut expected = 0;
    for (i, id) in ids.iter().enumerate() {
        let a = h.api.get_assignment(id).await.unwrap();
        assert_eq!(a.status, turkform_model::AssignmentStatus::Approved, "{id}");
        let paid = h.api.list_bonus_payments(id).await.unwrap();
        let cents = 1 + (i as i64 % 40);
        assert_eq!(
            paid.iter().map(|p| p.amount.cents()).collect::<Vec<_>>(),
            vec![cents],
            "{id} is paid exactly once"
        );
        expected += with_fee(cents);
    }
    assert_eq!(before - h.balance().await, Money::from_cents(expected));
    assert!(h.store.pending_intents().unwrap().is_empty());
    assert!(!h.plan(&d).has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_calls_whose_answers_were_lost_stay_journaled_and_recovery_settles_them_once() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut c = campaign("lost-review", 4, 10, 1);
    set_hit_type(&mut c, |t| t.auto_approval_delay_secs = 3 * 86_400);
    h.converge(&desired(vec![c.clone()])).await;
    let ids = work_and_record(&mut h, "AWORKER", "cat").await;
    c.review.decisions = vec![
        turkform_model::Decision {
            assignment_id: ids[0].clone(),
            verdict: turkform_model::Verdict::Approve { feedback: None },
            file: "decisions.csv".into(),
            line: 2,
        },
        turkform_model::Decision {
            assignment_id: ids[1].clone(),
            verdict: turkform_model::Verdict::Reject {
                feedback: "Blank".into(),
            },
            file: "decisions.csv".into(),
            line: 3,
        },
    ];
    // Two bonuses alike (same assignment, worker, amount and reason) under two Ids, and one
    // more: ListBonusPayments cannot tell the first two apart.
    let mut second = bonus_row(&ids[2], "AWORKER", 30, 3);
    second.id = Some("again".into());
    c.review.bonuses = vec![
        bonus_row(&ids[2], "AWORKER", 30, 2),
        second,
        bonus_row(&ids[3], "AWORKER", 7, 4),
    ];
    let d = desired(vec![c]);
    let before = h.balance().await;
    let plan = h.plan(&d);
    // Every change reaches MTurk, every answer is lost, and nothing is resent: the state a
    // SIGKILL after the calls leaves.
    h.restart(SimConfig {
        drop_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let mut options = h.options();
    options.max_retries = 0;
    let report =
        turkform_apply::apply(&plan, &h.api, &mut h.store, &h.clock, &NoReporter, &options)
            .await
            .unwrap();
    assert_eq!(report.review.done(), 0, "{report:?}");
    let pending = h.store.pending_intents().unwrap();
    let mut kinds: Vec<_> = pending.iter().map(|i| i.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "approve_assignment",
            "reject_assignment",
            "send_bonus",
            "send_bonus",
            "send_bonus"
        ],
        "each call was journaled before it was sent, and left pending"
    );
    let state = h.store.load().unwrap();
    assert_eq!(state.bonuses.len(), 3);
    assert!(state.bonuses.iter().all(|b| b.paid_at.is_none()));

    // A day later MTurk has forgotten the bonus tokens.
    h.restart(SimConfig::default()).await;
    h.advance(25 * 3600).await;
    let sent = h.stats().await["requests"]["SendBonus"]
        .as_u64()
        .unwrap_or(0);
    let options = h.options();
    let recovery = turkform_apply::recover(&h.api, &mut h.store, &h.clock, &NoReporter, &options)
        .await
        .unwrap();
    assert!(recovery.failed.is_empty(), "{recovery:?}");
    assert_eq!(
        (
            recovery.review.confirmed,
            recovery.review.bonuses_found_paid
        ),
        (2, 3),
        "both decisions confirmed by GetAssignment, every bonus found paid: {recovery:?}"
    );
    assert!(h.store.pending_intents().unwrap().is_empty());
    assert_eq!(
        h.stats().await["requests"]["SendBonus"]
            .as_u64()
            .unwrap_or(0),
        sent,
        "every bonus was found paid by ListBonusPayments, none sent again"
    );
    let state = h.store.load().unwrap();
    assert!(state.bonuses.iter().all(|b| b.paid_at.is_some()));
    let decided: Vec<_> = state
        .assignments
        .iter()
        .filter(|a| a.assignment_id == ids[0] || a.assignment_id == ids[1])
        .map(|a| (a.status, a.decided_by))
        .collect();
    assert_eq!(
        decided,
        [
            (
                turkform_model::AssignmentStatus::Approved,
                Some(turkform_model::DecidedBy::Turkform)
            ),
            (
                turkform_model::AssignmentStatus::Rejected,
                Some(turkform_model::DecidedBy::Turkform)
            )
        ]
    );
    assert_eq!(h.api.list_bonus_payments(&ids[2]).await.unwrap().len(), 2);
    assert_eq!(h.api.list_bonus_payments(&ids[3]).await.unwrap().len(), 1);
    assert_eq!(
        before - h.balance().await,
        Money::from_cents(with_fee(30) * 2 + with_fee(7))
    );
    assert!(!h.plan(&d).has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_bonuses_alike_pending_past_the_token_window_only_the_unpaid_one_is_sent() {
    let mut h = Harness::new(SimConfig::default()).await;
    let mut c = campaign("alike", 1, 10, 1);
    set_hit_type(&mut c, |t| t.auto_approval_delay_secs = 3 * 86_400);
    h.converge(&desired(vec![c.clone()])).await;
    let ids = work_and_record(&mut h, "AWORKER", "cat").await;
    let first = bonus_row(&ids[0], "AWORKER", 20, 2);
    let mut second = bonus_row(&ids[0], "AWORKER", 20, 3);
    second.id = Some("2".into());
    c.review.bonuses = vec![first.clone(), second.clone()];
    let d = desired(vec![c]);
    // A crashed run recorded both pending; only the second reached MTurk.
    for row in [&first, &second] {
        h.store
            .record_bonus_pending(&turkform_model::RecordedBonus {
                campaign: "alike".into(),
                identity: row.identity(),
                assignment_id: ids[0].clone(),
                worker_id: "AWORKER".into(),
                amount: row.amount,
                reason: row.reason.clone(),
                token: row.token(Target::Sim, "alike"),
                requested_at: h.clock.now(),
                paid_at: None,
            })
            .unwrap();
    }
    h.api
        .send_bonus(
            "AWORKER",
            &ids[0],
            second.amount,
            &second.reason,
            &second.token(Target::Sim, "alike"),
        )
        .await
        .unwrap();
    h.advance(25 * 3600).await;
    let before = h.balance().await;
    let (plan, report) = h.converge(&d).await;
    assert_eq!(plan.summary.bonus, 2);
    assert_eq!(
        (report.review.bonuses_found_paid, report.review.bonuses_paid),
        (1, 1),
        "{report:?}"
    );
    // The worker is owed two payments of 0.20 for this assignment and has exactly two.
    assert_eq!(h.api.list_bonus_payments(&ids[0]).await.unwrap().len(), 2);
    assert_eq!(before - h.balance().await, Money::from_cents(with_fee(20)));
    assert!(!h.plan(&d).has_changes());
}

// ---- goal = "approved" ------------------------------------------------------------------------

#[path = "apply_against_sim/goal.rs"]
mod goal;
