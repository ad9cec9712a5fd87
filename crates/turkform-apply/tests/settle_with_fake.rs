//! The executor's settle / classify logic against an in-memory, scriptable `MturkApi`: each
//! class of failure (lost response, throttling, transient, fatal) is injected exactly where the
//! test wants it, which the simulator's random faults cannot do. Ground truth is the fake's own
//! record of what it was asked and what it holds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use turkform_apply::{ApplyOptions, ApplyReport, Clock, NoReporter};
use turkform_model::{
    CampaignStatus, DesiredCampaign, DesiredItem, DesiredState, HitStatus, HitTypeSpec, Lifetime,
    Money, QualificationTypeSpec, Question, Target, UnixTime,
};
use turkform_mturk::{
    ApiError, CreateHitRequest, HitTypeRequest, MturkApi, Page, RemoteHit, RemoteQualificationType,
};
use turkform_plan::PlanOptions;
use turkform_state::{OpenMode, StateStore};

const NOW: UnixTime = UnixTime(1_767_225_600);

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        NOW
    }
}

/// What the next call of one operation does instead of its normal behaviour.
enum Scripted {
    /// Answer with this error; nothing changes.
    Fail(ApiError),
    /// Make the change, then lose the answer (a transient error): what tokens exist for.
    LoseResponse,
}

/// An in-memory MTurk holding HITs and tokens, with a queue of scripted outcomes per operation.
#[derive(Default)]
struct Fake {
    hits: Mutex<Vec<RemoteHit>>,
    tokens: Mutex<HashMap<String, String>>,
    script: Mutex<HashMap<&'static str, VecDeque<Scripted>>>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    /// Every create whose annotation contains this text fails with this error.
    failing_item: Mutex<Option<(String, ApiError)>>,
}

impl Fake {
    fn script(&self, op: &'static str, outcomes: impl IntoIterator<Item = Scripted>) {
        self.script
            .lock()
            .unwrap()
            .entry(op)
            .or_default()
            .extend(outcomes);
    }

    fn next(&self, op: &'static str) -> Option<Scripted> {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        self.script.lock().unwrap().get_mut(op)?.pop_front()
    }

    fn calls(&self, op: &str) -> u64 {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    fn hit_count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    fn create(&self, request: &CreateHitRequest) -> RemoteHit {
        let mut hits = self.hits.lock().unwrap();
        let hit = RemoteHit {
            hit_id: format!("HIT{:027}", hits.len()),
            hit_type_id: request.hit_type_id.clone(),
            status: HitStatus::Assignable,
            max_assignments: request.max_assignments,
            creation_time: NOW,
            expiration: NOW.plus_secs(request.lifetime_secs),
            requester_annotation: Some(request.requester_annotation.clone()),
            assignments_available: request.max_assignments,
            assignments_pending: 0,
            assignments_completed: 0,
            title: "fake".into(),
            reward: Some(Money::from_cents(10)),
            hit_group_id: None,
            description: String::new(),
            keywords: String::new(),
            assignment_duration_secs: None,
            auto_approval_delay_secs: None,
        };
        hits.push(hit.clone());
        self.tokens
            .lock()
            .unwrap()
            .insert(request.unique_request_token.clone(), hit.hit_id.clone());
        hit
    }
}

fn not_scripted(op: &str) -> ApiError {
    ApiError::Fatal {
        code: None,
        turk_error_code: None,
        message: format!("the fake does not serve {op}"),
    }
}

#[async_trait]
impl MturkApi for Fake {
    async fn get_account_balance(&self) -> Result<Money, ApiError> {
        Ok(Money::from_cents(1_000_000))
    }
    async fn create_qualification_type(
        &self,
        _spec: &QualificationTypeSpec,
    ) -> Result<String, ApiError> {
        Err(not_scripted("CreateQualificationType"))
    }
    async fn update_qualification_type(
        &self,
        _id: &str,
        _spec: &QualificationTypeSpec,
    ) -> Result<(), ApiError> {
        Err(not_scripted("UpdateQualificationType"))
    }
    async fn list_qualification_types(
        &self,
        _next_token: Option<String>,
    ) -> Result<Page<RemoteQualificationType>, ApiError> {
        Ok(Page {
            items: vec![],
            next_token: None,
        })
    }
    async fn create_hit_type(&self, _request: &HitTypeRequest) -> Result<String, ApiError> {
        match self.next("CreateHITType") {
            Some(Scripted::Fail(e)) => Err(e),
            _ => Ok("HITTYPE000000000000000000000001".into()),
        }
    }
    async fn create_hit(&self, request: &CreateHitRequest) -> Result<RemoteHit, ApiError> {
        let scripted = self.next("CreateHITWithHITType");
        if let Some(Scripted::Fail(e)) = scripted {
            return Err(e);
        }
        if let Some((key, e)) = self.failing_item.lock().unwrap().as_ref()
            && request.requester_annotation.contains(key.as_str())
        {
            return Err(e.clone());
        }
        let existing = self
            .tokens
            .lock()
            .unwrap()
            .get(&request.unique_request_token)
            .cloned();
        if let Some(hit_id) = existing {
            return Err(ApiError::AlreadyExists {
                message: format!("There is already a HIT with this token: {hit_id}"),
                hit_id: Some(hit_id),
            });
        }
        let hit = self.create(request);
        match scripted {
            Some(Scripted::LoseResponse) => Err(ApiError::Transient {
                message: "connection closed before any response".into(),
            }),
            _ => Ok(hit),
        }
    }
    async fn create_additional_assignments(
        &self,
        _hit_id: &str,
        _additional: u32,
        _token: &str,
    ) -> Result<(), ApiError> {
        Err(not_scripted("CreateAdditionalAssignmentsForHIT"))
    }
    async fn update_expiration(&self, _hit_id: &str, _at: UnixTime) -> Result<(), ApiError> {
        Err(not_scripted("UpdateExpirationForHIT"))
    }
    async fn update_hit_type_of_hit(&self, _hit_id: &str, _type: &str) -> Result<(), ApiError> {
        Err(not_scripted("UpdateHITTypeOfHIT"))
    }
    async fn get_hit(&self, hit_id: &str) -> Result<RemoteHit, ApiError> {
        *self.calls.lock().unwrap().entry("GetHIT").or_default() += 1;
        self.hits
            .lock()
            .unwrap()
            .iter()
            .find(|h| h.hit_id == hit_id)
            .cloned()
            .ok_or_else(|| ApiError::Fatal {
                code: Some("RequestError".into()),
                turk_error_code: Some("AWS.MechanicalTurk.HITDoesNotExist".into()),
                message: format!("Hit {hit_id} does not exist"),
            })
    }
    async fn list_hits(
        &self,
        _next_token: Option<String>,
        _max_results: i32,
    ) -> Result<Page<RemoteHit>, ApiError> {
        Ok(Page {
            items: self.hits.lock().unwrap().clone(),
            next_token: None,
        })
    }
    async fn list_assignments_for_hit(
        &self,
        _hit_id: &str,
        _next_token: Option<String>,
    ) -> Result<Page<turkform_mturk::RemoteAssignment>, ApiError> {
        // No worker ever answers the fake's HITs.
        Ok(Page {
            items: vec![],
            next_token: None,
        })
    }
    async fn approve_assignment(
        &self,
        _assignment_id: &str,
        _feedback: Option<&str>,
        _override_rejection: bool,
    ) -> Result<(), ApiError> {
        Err(not_scripted("ApproveAssignment"))
    }
    async fn reject_assignment(
        &self,
        _assignment_id: &str,
        _feedback: &str,
    ) -> Result<(), ApiError> {
        Err(not_scripted("RejectAssignment"))
    }
    async fn get_assignment(
        &self,
        _assignment_id: &str,
    ) -> Result<turkform_mturk::RemoteDecision, ApiError> {
        Err(not_scripted("GetAssignment"))
    }
    async fn send_bonus(
        &self,
        _worker_id: &str,
        _assignment_id: &str,
        _amount: Money,
        _reason: &str,
        _token: &str,
    ) -> Result<(), ApiError> {
        Err(not_scripted("SendBonus"))
    }
    async fn list_bonus_payments(
        &self,
        _assignment_id: &str,
    ) -> Result<Vec<turkform_mturk::BonusPayment>, ApiError> {
        Err(not_scripted("ListBonusPayments"))
    }
}

fn campaign(items: usize) -> DesiredCampaign {
    let hit_type = HitTypeSpec {
        title: "Label photos".into(),
        description: "Tick every object you see".into(),
        keywords: vec!["image".into()],
        reward: Money::from_cents(10),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: 3600,
        qualifications: vec![],
    };
    DesiredCampaign {
        name: "fake".into(),
        file: "campaigns/fake.toml".into(),
        status: CampaignStatus::Running,
        hit_type_hash: hit_type.definition_hash(),
        hit_type,
        assignments: 1,
        lifetime: Lifetime::Duration(86_400),
        max_spend: None,
        items: (0..items)
            .map(|i| {
                let key = format!("img-{i:04}");
                let question = Question::Xml {
                    xml: format!("<QuestionForm>{key}</QuestionForm>"),
                };
                DesiredItem {
                    content_hash: question.content_hash(),
                    key,
                    question,
                    row: vec![],
                }
            })
            .collect(),
        review: Default::default(),
    }
}

/// One apply of `items` items against `fake`, one call at a time (so scripts land in order).
async fn apply(
    fake: &Fake,
    items: usize,
    max_retries: u32,
) -> (ApplyReport, StateStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = StateStore::open(
        &dir.path().join("state.db"),
        Target::Sim,
        OpenMode::ReadWrite,
    )
    .unwrap();
    let desired = DesiredState {
        target: Target::Sim,
        campaigns: vec![campaign(items)],
        qualification_types: vec![],
        inputs_digest: "test".into(),
        workers: Default::default(),
    };
    let plan = turkform_plan::plan(
        &desired,
        &store.load().unwrap(),
        NOW,
        &PlanOptions::default(),
    );
    let mut options = ApplyOptions::new(Target::Sim);
    options.concurrency = 1;
    options.max_retries = max_retries;
    let report = turkform_apply::apply(&plan, fake, &mut store, &FixedClock, &NoReporter, &options)
        .await
        .unwrap();
    (report, store, dir)
}

#[tokio::test]
async fn a_lost_create_response_is_resent_with_its_token_and_settles_as_one_hit() {
    let fake = Fake::default();
    fake.script("CreateHITWithHITType", [Scripted::LoseResponse]);
    let (report, store, _dir) = apply(&fake, 3, 5).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        fake.hit_count(),
        3,
        "the resend did not create a second HIT"
    );
    // 3 creates plus the resend, which MTurk answered HitAlreadyExists; the HIT is read back.
    assert_eq!(fake.calls("CreateHITWithHITType"), 4);
    assert!(fake.calls("GetHIT") >= 1);
    assert!(report.retries >= 1, "{report:?}");
    let recorded = store.load().unwrap();
    assert_eq!(recorded.hits.len(), 3);
    let ids: Vec<_> = fake
        .hits
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.hit_id.clone())
        .collect();
    for hit in &recorded.hits {
        assert!(
            ids.contains(&hit.hit_id),
            "recorded {} is not on MTurk",
            hit.hit_id
        );
    }
    assert!(store.pending_intents().unwrap().is_empty());
}

#[tokio::test]
async fn a_fatal_create_fails_its_item_once_and_the_others_go_on() {
    let fake = Fake::default();
    fake.script(
        "CreateHITWithHITType",
        [Scripted::Fail(ApiError::Fatal {
            code: Some("RequestError".into()),
            turk_error_code: Some("AWS.MechanicalTurk.InsufficientFunds".into()),
            message: "not enough money".into(),
        })],
    );
    let (report, store, _dir) = apply(&fake, 3, 5).await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        report.failed[0].message.contains("InsufficientFunds"),
        "MTurk's words are kept: {}",
        report.failed[0].message
    );
    // Never retried: one create per item.
    assert_eq!(fake.calls("CreateHITWithHITType"), 3);
    assert_eq!(fake.hit_count(), 2);
    assert_eq!(store.load().unwrap().hits.len(), 2);
    // A refused call took no effect: nothing is left for recovery to resend.
    assert!(store.pending_intents().unwrap().is_empty());
}

#[tokio::test]
async fn throttled_creates_are_resent_until_they_pass() {
    let fake = Fake::default();
    let throttle = || {
        Scripted::Fail(ApiError::Throttled {
            message: "Rate exceeded".into(),
        })
    };
    fake.script("CreateHITWithHITType", [throttle(), throttle(), throttle()]);
    let (report, store, _dir) = apply(&fake, 3, 5).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.throttled, 3, "{report:?}");
    assert_eq!(fake.calls("CreateHITWithHITType"), 6);
    assert_eq!(fake.hit_count(), 3);
    assert_eq!(store.load().unwrap().hits.len(), 3);
}

#[tokio::test]
async fn a_create_still_failing_after_its_retries_fails_its_item() {
    let fake = Fake::default();
    *fake.failing_item.lock().unwrap() = Some((
        "img-0001".into(),
        ApiError::Transient {
            message: "ServiceFault".into(),
        },
    ));
    let (report, store, _dir) = apply(&fake, 3, 2).await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].item_key, "img-0001");
    // img-0001: the first attempt and 2 retries; the other two items: one create each.
    assert_eq!(fake.calls("CreateHITWithHITType"), 5, "{report:?}");
    assert_eq!(report.retries, 2, "{report:?}");
    assert_eq!(fake.hit_count(), 2);
    assert_eq!(store.load().unwrap().hits.len(), 2);
    // A transient failure may have taken effect on MTurk: its intent stays for recovery.
    let pending = store.pending_intents().unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
}
