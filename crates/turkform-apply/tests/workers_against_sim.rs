//! Workers and notifications as code (DESIGN.md section 9) against the simulator, through the
//! real aws-sdk-mturk client and the whole apply sequence (`ops::apply`: recover, refresh,
//! plan, review, workers). Ground truth is the simulator's: ListWorkerBlocks,
//! ListWorkersWithQualificationType, GetAssignment, `/_sim/notifications` and the mutating-call
//! counters; blocks and grants "made outside turkform" are made here directly with the SDK.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use turkform_apply::ops::{ApplyOutcome, ApplyRequest, Approve};
use turkform_apply::{ApplyOptions, Clock, NoReporter};
use turkform_model::{
    AssignmentStatus, BlockRow, CampaignStatus, DesiredCampaign, DesiredItem, DesiredState,
    DesiredWorkers, GrantFile, GrantRow, HitTypeSpec, KnownAnswers, Lifetime, MadeBy, Money,
    NotificationSettings, NotificationTransport, QualificationTypeSpec, Question, RecordedBlock,
    Target, UnixTime, WorkerRecordStatus,
};
use turkform_mturk::{ConnectOptions, MturkApi, SdkMturk};
use turkform_plan::{Plan, WorkerAction};
use turkform_sim::{ControlClient, SimConfig, SimHandle};
use turkform_state::{OpenMode, StateStore, WorkersBatch};

#[derive(Clone, Default)]
struct SimClock(Arc<AtomicI64>);

impl Clock for SimClock {
    fn now(&self) -> UnixTime {
        UnixTime(UnixTime::now().0 + self.0.load(Ordering::SeqCst))
    }
}

struct Yes;

impl Approve for Yes {
    fn approve(&self, _: &Plan, _: bool) -> Result<(), String> {
        Ok(())
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    sim: SimHandle,
    api: SdkMturk,
    store: StateStore,
    clock: SimClock,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let sim = turkform_sim::start("127.0.0.1:0", SimConfig::default())
            .await
            .unwrap();
        let mut options = ConnectOptions::simulator(sim.endpoint_url());
        options.timeout = Duration::from_secs(5);
        let api = SdkMturk::connect(&options).await.unwrap();
        let store = StateStore::open(
            &dir.path().join("state.db"),
            Target::Sim,
            OpenMode::ReadWrite,
        )
        .unwrap();
        Harness {
            _dir: dir,
            sim,
            api,
            store,
            clock: SimClock::default(),
        }
    }

    fn control(&self) -> ControlClient {
        ControlClient::new(&self.sim.endpoint_url()).unwrap()
    }

    /// The whole `turkform apply`.
    async fn apply(&mut self, desired: &DesiredState) -> ApplyOutcome {
        turkform_apply::ops::apply(
            &mut self.store,
            &self.api,
            &self.clock,
            &NoReporter,
            &Yes,
            ApplyRequest {
                desired,
                only: Vec::new(),
                saved: None,
                refresh: true,
                options: ApplyOptions::new(Target::Sim),
            },
        )
        .await
        .unwrap()
    }

    async fn mutating_calls(&self) -> u64 {
        self.control().stats().await.unwrap().mutating_calls()
    }

    /// ListWorkerBlocks, every page: worker -> reason.
    async fn blocks(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut next = None;
        loop {
            let page = self.api.list_worker_blocks(next).await.unwrap();
            let empty = page.items.is_empty();
            out.extend(page.items.into_iter().map(|b| (b.worker_id, b.reason)));
            match page.next_token {
                Some(t) if !empty => next = Some(t),
                _ => return out,
            }
        }
    }

    /// ListWorkersWithQualificationType (Granted), every page: worker -> value.
    async fn grants(&self, type_id: &str) -> BTreeMap<String, i32> {
        let mut out = BTreeMap::new();
        let mut next = None;
        loop {
            let page = self
                .api
                .list_workers_with_qualification(type_id, next)
                .await
                .unwrap();
            let empty = page.items.is_empty();
            out.extend(page.items.into_iter().map(|g| (g.worker_id, g.value)));
            match page.next_token {
                Some(t) if !empty => next = Some(t),
                _ => return out,
            }
        }
    }

    fn type_id(&self, name: &str) -> String {
        self.store
            .load()
            .unwrap()
            .qualification_types
            .iter()
            .find(|q| q.name == name)
            .unwrap()
            .qualification_type_id
            .clone()
    }
}

fn question(key: &str) -> Question {
    Question::Xml {
        xml: format!(
            r#"<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"><HTMLContent><![CDATA[<!DOCTYPE html><html><body><crowd-form><p>{key}</p></crowd-form><script src="https://assets.crowd.aws/crowd-html-elements.js"></script></body></html>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"#
        ),
    }
}

fn campaign(name: &str, items: usize, assignments: u32) -> DesiredCampaign {
    let hit_type = HitTypeSpec {
        title: format!("Label photos ({name})"),
        description: "Say what the photo shows".into(),
        keywords: vec!["image".into()],
        reward: Money::from_cents(10),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: 7 * 86_400,
        qualifications: vec![],
    };
    DesiredCampaign {
        name: name.into(),
        file: format!("campaigns/{name}.toml").into(),
        status: CampaignStatus::Running,
        hit_type_hash: hit_type.definition_hash(),
        hit_type,
        assignments,
        lifetime: Lifetime::Duration(3 * 86_400),
        max_spend: None,
        review: Default::default(),
        items: (0..items)
            .map(|i| {
                let key = format!("img-{i}");
                let question = question(&key);
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

fn desired(campaigns: Vec<DesiredCampaign>, workers: DesiredWorkers) -> DesiredState {
    DesiredState {
        target: Target::Sim,
        campaigns,
        qualification_types: vec![],
        inputs_digest: "test".into(),
        workers,
    }
}

const REASON: &str = "Most answers on checked items were wrong";

fn gold(c: &DesiredCampaign, block_below: Option<f64>) -> KnownAnswers {
    KnownAnswers {
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
        block_below,
        reason: REASON.into(),
    }
}

/// Every assignment the simulator holds for the campaign's HITs: id -> (worker, status,
/// feedback), read with ListAssignmentsForHIT.
async fn assignments(h: &Harness) -> BTreeMap<String, (String, AssignmentStatus, Option<String>)> {
    let mut out = BTreeMap::new();
    for hit in h.store.load().unwrap().hits {
        let page = h
            .api
            .list_assignments_for_hit(&hit.hit_id, None)
            .await
            .unwrap();
        for a in page.items {
            out.insert(
                a.assignment_id,
                (a.worker_id, a.status, a.requester_feedback),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_answers_reject_and_block_the_always_wrong_worker_and_leave_the_unjudged_alone() {
    let mut h = Harness::new().await;
    let mut c = campaign("street", 4, 4);
    h.apply(&desired(vec![c.clone()], DesiredWorkers::default()))
        .await;
    // Three workers answer every item, one of them always wrong; a fourth answers only two
    // items, fewer than `min_answers`.
    h.control()
        .work(&json!({
            "answers": {"label": "cat"},
            "workers": [
                {"worker_id": "AGOODONE"},
                {"worker_id": "AGOODTWO"},
                {"worker_id": "AWRONG", "answers": {"label": "dog"}},
            ],
        }))
        .await
        .unwrap();
    h.control()
        .work(&json!({"worker_id": "AFEW", "max_hits": 2, "answers": {"label": "dog"}}))
        .await
        .unwrap();

    c.review.known_answers = Some(gold(&c, Some(0.3)));
    let d = desired(vec![c.clone()], DesiredWorkers::default());
    let outcome = h.apply(&d).await;
    let plan = &outcome.plan;
    assert_eq!(
        (
            plan.summary.approve,
            plan.summary.reject,
            plan.summary.block
        ),
        (8, 4, 1),
        "{:#?}",
        plan.workers
    );
    let report = outcome.report.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.workers.blocked, 1);

    // Ground truth: the simulator's assignments and blocks.
    let seen = assignments(&h).await;
    assert_eq!(seen.len(), 14);
    for (worker, status, feedback) in seen.values() {
        match worker.as_str() {
            "AWRONG" => {
                assert_eq!(*status, AssignmentStatus::Rejected);
                assert_eq!(feedback.as_deref(), Some(REASON));
            }
            "AFEW" => assert_eq!(*status, AssignmentStatus::Submitted, "not judged"),
            _ => assert_eq!(*status, AssignmentStatus::Approved),
        }
    }
    let blocks = h.blocks().await;
    assert_eq!(
        blocks,
        BTreeMap::from([("AWRONG".to_owned(), REASON.to_owned())])
    );

    // A second apply changes nothing.
    let before = h.mutating_calls().await;
    let again = h.apply(&d).await;
    assert!(!again.plan.has_changes(), "{:#?}", again.plan.workers);
    assert_eq!(h.mutating_calls().await, before);

    // The block lasts as long as the rule judges the worker so: without `block_below` it goes
    // (the rejections stay: decisions are never undone).
    c.review.known_answers = Some(gold(&c, None));
    let relaxed = h
        .apply(&desired(vec![c.clone()], DesiredWorkers::default()))
        .await;
    assert_eq!(relaxed.plan.summary.unblock, 1);
    assert!(h.blocks().await.is_empty());
}

fn blocks_file(rows: &[(&str, &str)]) -> (Option<std::path::PathBuf>, Vec<BlockRow>) {
    (
        Some("workers/blocked.csv".into()),
        rows.iter()
            .enumerate()
            .map(|(i, (w, r))| BlockRow {
                worker_id: (*w).to_owned(),
                reason: (*r).to_owned(),
                file: "workers/blocked.csv".into(),
                line: i + 2,
            })
            .collect(),
    )
}

fn workers(blocks: &[(&str, &str)], grants: &[(&str, i32)]) -> DesiredWorkers {
    let (blocks_file, blocks) = blocks_file(blocks);
    DesiredWorkers {
        blocks_file,
        blocks,
        grants: vec![GrantFile {
            qualification: "trained".into(),
            file: "workers/trained.csv".into(),
            rows: grants
                .iter()
                .enumerate()
                .map(|(i, (w, v))| GrantRow {
                    worker_id: (*w).to_owned(),
                    value: *v,
                    line: i + 2,
                })
                .collect(),
        }],
    }
}

fn with_type(mut d: DesiredState) -> DesiredState {
    d.qualification_types = vec![QualificationTypeSpec {
        name: "trained".into(),
        description: "Passed the training round".into(),
        keywords: vec![],
        auto_granted: false,
        auto_granted_value: None,
        active: true,
        declared_in: "campaigns/street.toml".into(),
    }];
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_grants_are_added_and_removed_and_ones_made_outside_are_left_alone() {
    let mut h = Harness::new().await;
    let c = campaign("street", 1, 1);
    let d = with_type(desired(
        vec![c.clone()],
        workers(
            &[("ASPAM1", "spam answers"), ("ASPAM2", "bot")],
            &[("ATRAINED1", 1), ("ATRAINED2", 5)],
        ),
    ));
    let first = h.apply(&d).await;
    assert_eq!((first.plan.summary.block, first.plan.summary.grant), (2, 2));
    let type_id = h.type_id("trained");
    assert_eq!(
        h.blocks().await,
        BTreeMap::from([
            ("ASPAM1".to_owned(), "spam answers".to_owned()),
            ("ASPAM2".to_owned(), "bot".to_owned())
        ])
    );
    assert_eq!(
        h.grants(&type_id).await,
        BTreeMap::from([("ATRAINED1".to_owned(), 1), ("ATRAINED2".to_owned(), 5)])
    );

    // Made outside turkform, directly with the SDK.
    h.api
        .create_worker_block("AOUTSIDE", "blocked by hand")
        .await
        .unwrap();
    h.api
        .create_worker_block("ALSOLISTED", "blocked by hand too")
        .await
        .unwrap();
    h.api
        .associate_qualification(&type_id, "AHANDGRANT", 7)
        .await
        .unwrap();

    // Nothing to do: what is outside is seen and left alone.
    let before = h.mutating_calls().await;
    let second = h.apply(&d).await;
    assert!(!second.plan.has_changes(), "{:#?}", second.plan.workers);
    assert_eq!(
        (
            second.plan.summary.outside_blocks,
            second.plan.summary.outside_grants
        ),
        (2, 1)
    );
    assert_eq!(h.mutating_calls().await, before);
    let recorded = h.store.load().unwrap();
    let outside: Vec<&str> = recorded
        .blocks
        .iter()
        .filter(|b| b.made_by == MadeBy::Outside)
        .map(|b| b.worker_id.as_str())
        .collect();
    assert_eq!(outside, vec!["ALSOLISTED", "AOUTSIDE"]);

    // Remove a block row and a grant row, change a value, and list a worker blocked outside.
    let edited = with_type(desired(
        vec![c.clone()],
        workers(
            &[("ASPAM2", "bot"), ("ALSOLISTED", "listed here as well")],
            &[("ATRAINED2", 6)],
        ),
    ));
    let third = h.apply(&edited).await;
    let actions: Vec<&WorkerAction> = third.plan.workers.iter().map(|w| &w.action).collect();
    assert_eq!(
        (
            third.plan.summary.block,
            third.plan.summary.unblock,
            third.plan.summary.grant,
            third.plan.summary.revoke
        ),
        (0, 1, 1, 1),
        "{actions:#?}"
    );
    assert!(third.plan.warnings.iter().any(|w| {
        w.message
            .contains("ALSOLISTED is already blocked outside turkform")
    }));
    assert_eq!(
        h.blocks().await,
        BTreeMap::from([
            ("ALSOLISTED".to_owned(), "blocked by hand too".to_owned()),
            ("AOUTSIDE".to_owned(), "blocked by hand".to_owned()),
            ("ASPAM2".to_owned(), "bot".to_owned()),
        ])
    );
    assert_eq!(
        h.grants(&type_id).await,
        BTreeMap::from([("AHANDGRANT".to_owned(), 7), ("ATRAINED2".to_owned(), 6)])
    );

    // Empty files: everything turkform made goes, nothing else.
    let emptied = with_type(desired(vec![c], workers(&[], &[])));
    let fourth = h.apply(&emptied).await;
    assert_eq!(
        (fourth.plan.summary.unblock, fourth.plan.summary.revoke),
        (1, 1)
    );
    assert_eq!(
        h.blocks().await,
        BTreeMap::from([
            ("ALSOLISTED".to_owned(), "blocked by hand too".to_owned()),
            ("AOUTSIDE".to_owned(), "blocked by hand".to_owned()),
        ])
    );
    assert_eq!(
        h.grants(&type_id).await,
        BTreeMap::from([("AHANDGRANT".to_owned(), 7)])
    );
    let before = h.mutating_calls().await;
    assert!(!h.apply(&emptied).await.plan.has_changes());
    assert_eq!(h.mutating_calls().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_answer_was_lost_stays_turkforms_and_is_undone_with_its_row() {
    let mut h = Harness::new().await;
    let c = campaign("street", 1, 1);
    h.apply(&desired(vec![c.clone()], DesiredWorkers::default()))
        .await;
    // A crash right after CreateWorkerBlock reached MTurk: the write-ahead record says
    // `adding`, MTurk has the block.
    h.store
        .commit_workers(&WorkersBatch {
            upsert_blocks: vec![RecordedBlock {
                worker_id: "ACRASHED".into(),
                reason: "spam".into(),
                made_by: MadeBy::Turkform,
                status: WorkerRecordStatus::Adding,
                recorded_at: h.clock.now(),
            }],
            ..WorkersBatch::default()
        })
        .unwrap();
    h.api.create_worker_block("ACRASHED", "spam").await.unwrap();

    let d = desired(vec![c.clone()], workers(&[("ACRASHED", "spam")], &[]));
    let d = DesiredState {
        workers: DesiredWorkers {
            grants: vec![],
            ..d.workers
        },
        ..d
    };
    let before = h.mutating_calls().await;
    let outcome = h.apply(&d).await;
    assert!(!outcome.plan.has_changes(), "{:#?}", outcome.plan.workers);
    assert_eq!(outcome.refresh.unwrap().workers.confirmed, 1);
    assert_eq!(h.mutating_calls().await, before);
    let recorded = h.store.load().unwrap();
    assert_eq!(recorded.blocks.len(), 1);
    assert_eq!(
        (recorded.blocks[0].made_by, recorded.blocks[0].status),
        (MadeBy::Turkform, WorkerRecordStatus::Active)
    );

    // Removing its row undoes it: it was turkform's all along.
    let removed = DesiredState {
        workers: DesiredWorkers {
            blocks_file: Some("workers/blocked.csv".into()),
            ..DesiredWorkers::default()
        },
        ..d
    };
    let outcome = h.apply(&removed).await;
    assert_eq!(outcome.plan.summary.unblock, 1);
    assert!(h.blocks().await.is_empty());
}

fn settings(events: &[&str]) -> NotificationSettings {
    NotificationSettings {
        destination: "https://sqs.us-east-1.amazonaws.com/123456789012/turk-events".into(),
        transport: NotificationTransport::Sqs,
        events: events.iter().map(|e| (*e).to_owned()).collect(),
    }
}

/// `/_sim/notifications` for one HIT type.
async fn sim_notification(h: &Harness, hit_type_id: &str) -> Value {
    let all = h.control().notifications().await.unwrap();
    all["NotificationSettings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["HITTypeId"] == hit_type_id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_settings_are_set_changed_and_deactivated_on_the_hit_type() {
    let mut h = Harness::new().await;
    let mut c = campaign("street", 2, 1);
    c.review.notifications = Some(settings(&["AssignmentSubmitted"]));
    let d = desired(vec![c.clone()], DesiredWorkers::default());
    let first = h.apply(&d).await;
    assert_eq!(first.plan.summary.notifications, 1);
    assert!(first.report.unwrap().failed.is_empty());
    let hit_type_id = h.store.load().unwrap().hit_types[0].hit_type_id.clone();
    let seen = sim_notification(&h, &hit_type_id).await;
    assert_eq!(seen["Active"], true, "{seen}");
    assert_eq!(
        seen["Notification"]["Destination"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/turk-events"
    );
    assert_eq!(seen["Notification"]["Transport"], "SQS");
    assert_eq!(
        seen["Notification"]["EventTypes"],
        json!(["AssignmentSubmitted"])
    );

    let before = h.mutating_calls().await;
    assert!(!h.apply(&d).await.plan.has_changes());
    assert_eq!(h.mutating_calls().await, before);

    c.review.notifications = Some(settings(&["AssignmentReturned", "AssignmentSubmitted"]));
    let changed = h
        .apply(&desired(vec![c.clone()], DesiredWorkers::default()))
        .await;
    assert_eq!(changed.plan.summary.notifications, 1);
    let seen = sim_notification(&h, &hit_type_id).await;
    assert_eq!(
        seen["Notification"]["EventTypes"],
        json!(["AssignmentReturned", "AssignmentSubmitted"])
    );

    // Removing the table deactivates what was set.
    c.review.notifications = None;
    let d = desired(vec![c], DesiredWorkers::default());
    let removed = h.apply(&d).await;
    assert_eq!(removed.plan.summary.notifications, 1);
    assert!(removed.plan.notifications[0].settings.is_none());
    assert_eq!(sim_notification(&h, &hit_type_id).await["Active"], false);
    let before = h.mutating_calls().await;
    assert!(!h.apply(&d).await.plan.has_changes());
    assert_eq!(h.mutating_calls().await, before);
}

/// The simulator, except that every worker call's answer is lost after MTurk did it: the
/// executor must find out from ListWorkerBlocks / ListWorkersWithQualificationType.
struct LosingAnswers<'a>(&'a SdkMturk);

fn lost() -> turkform_mturk::ApiError {
    turkform_mturk::ApiError::Fatal {
        code: None,
        turk_error_code: None,
        message: "the answer was lost".into(),
    }
}

#[async_trait::async_trait]
impl MturkApi for LosingAnswers<'_> {
    async fn get_account_balance(&self) -> Result<Money, turkform_mturk::ApiError> {
        self.0.get_account_balance().await
    }
    async fn create_qualification_type(
        &self,
        spec: &QualificationTypeSpec,
    ) -> Result<String, turkform_mturk::ApiError> {
        self.0.create_qualification_type(spec).await
    }
    async fn update_qualification_type(
        &self,
        id: &str,
        spec: &QualificationTypeSpec,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0.update_qualification_type(id, spec).await
    }
    async fn list_qualification_types(
        &self,
        next: Option<String>,
    ) -> Result<
        turkform_mturk::Page<turkform_mturk::RemoteQualificationType>,
        turkform_mturk::ApiError,
    > {
        self.0.list_qualification_types(next).await
    }
    async fn create_hit_type(
        &self,
        request: &turkform_mturk::HitTypeRequest,
    ) -> Result<String, turkform_mturk::ApiError> {
        self.0.create_hit_type(request).await
    }
    async fn create_hit(
        &self,
        request: &turkform_mturk::CreateHitRequest,
    ) -> Result<turkform_mturk::RemoteHit, turkform_mturk::ApiError> {
        self.0.create_hit(request).await
    }
    async fn create_additional_assignments(
        &self,
        hit_id: &str,
        n: u32,
        token: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0.create_additional_assignments(hit_id, n, token).await
    }
    async fn update_expiration(
        &self,
        hit_id: &str,
        at: UnixTime,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0.update_expiration(hit_id, at).await
    }
    async fn update_hit_type_of_hit(
        &self,
        hit_id: &str,
        type_id: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0.update_hit_type_of_hit(hit_id, type_id).await
    }
    async fn get_hit(
        &self,
        hit_id: &str,
    ) -> Result<turkform_mturk::RemoteHit, turkform_mturk::ApiError> {
        self.0.get_hit(hit_id).await
    }
    async fn approve_assignment(
        &self,
        id: &str,
        feedback: Option<&str>,
        override_rejection: bool,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0
            .approve_assignment(id, feedback, override_rejection)
            .await
    }
    async fn reject_assignment(
        &self,
        id: &str,
        feedback: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0.reject_assignment(id, feedback).await
    }
    async fn get_assignment(
        &self,
        id: &str,
    ) -> Result<turkform_mturk::RemoteDecision, turkform_mturk::ApiError> {
        self.0.get_assignment(id).await
    }
    async fn send_bonus(
        &self,
        worker: &str,
        assignment: &str,
        amount: Money,
        reason: &str,
        token: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0
            .send_bonus(worker, assignment, amount, reason, token)
            .await
    }
    async fn list_bonus_payments(
        &self,
        assignment: &str,
    ) -> Result<Vec<turkform_mturk::BonusPayment>, turkform_mturk::ApiError> {
        self.0.list_bonus_payments(assignment).await
    }
    async fn list_hits(
        &self,
        next: Option<String>,
        max: i32,
    ) -> Result<turkform_mturk::Page<turkform_mturk::RemoteHit>, turkform_mturk::ApiError> {
        self.0.list_hits(next, max).await
    }
    async fn list_assignments_for_hit(
        &self,
        hit_id: &str,
        next: Option<String>,
    ) -> Result<turkform_mturk::Page<turkform_mturk::RemoteAssignment>, turkform_mturk::ApiError>
    {
        self.0.list_assignments_for_hit(hit_id, next).await
    }
    async fn create_worker_block(
        &self,
        worker: &str,
        reason: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0.create_worker_block(worker, reason).await?;
        Err(lost())
    }
    async fn delete_worker_block(
        &self,
        worker: &str,
        reason: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0.delete_worker_block(worker, reason).await?;
        Err(lost())
    }
    async fn list_worker_blocks(
        &self,
        next: Option<String>,
    ) -> Result<turkform_mturk::Page<turkform_mturk::RemoteBlock>, turkform_mturk::ApiError> {
        self.0.list_worker_blocks(next).await
    }
    async fn associate_qualification(
        &self,
        type_id: &str,
        worker: &str,
        value: i32,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0
            .associate_qualification(type_id, worker, value)
            .await?;
        Err(lost())
    }
    async fn disassociate_qualification(
        &self,
        type_id: &str,
        worker: &str,
        reason: &str,
    ) -> Result<(), turkform_mturk::ApiError> {
        self.0
            .disassociate_qualification(type_id, worker, reason)
            .await?;
        Err(lost())
    }
    async fn list_workers_with_qualification(
        &self,
        type_id: &str,
        next: Option<String>,
    ) -> Result<turkform_mturk::Page<turkform_mturk::RemoteGrant>, turkform_mturk::ApiError> {
        self.0.list_workers_with_qualification(type_id, next).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_calls_whose_answer_is_lost_are_confirmed_by_the_list_calls() {
    let mut h = Harness::new().await;
    let c = campaign("street", 1, 1);
    let d = with_type(desired(
        vec![c.clone()],
        workers(&[("ASPAM1", "spam")], &[("ATRAINED1", 3)]),
    ));
    let losing = LosingAnswers(&h.api);
    let outcome = turkform_apply::ops::apply(
        &mut h.store,
        &losing,
        &h.clock,
        &NoReporter,
        &Yes,
        ApplyRequest {
            desired: &d,
            only: Vec::new(),
            saved: None,
            refresh: true,
            options: ApplyOptions::new(Target::Sim),
        },
    )
    .await
    .unwrap();
    let report = outcome.report.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        (
            report.workers.blocked,
            report.workers.granted,
            report.workers.confirmed
        ),
        (1, 1, 2)
    );
    let type_id = h.type_id("trained");
    let recorded = h.store.load().unwrap();
    assert!(
        recorded
            .blocks
            .iter()
            .all(|b| b.made_by == MadeBy::Turkform && b.status == WorkerRecordStatus::Active)
    );
    assert!(
        recorded
            .grants
            .iter()
            .all(|g| g.status == WorkerRecordStatus::Active)
    );
    assert_eq!(h.blocks().await.len(), 1);
    assert_eq!(h.grants(&type_id).await.get("ATRAINED1"), Some(&3));
    // Nothing is planned again.
    let before = h.mutating_calls().await;
    assert!(!h.apply(&d).await.plan.has_changes());
    assert_eq!(h.mutating_calls().await, before);
}
