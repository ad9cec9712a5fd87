//! Simulated workers for `POST /_sim/work`: they accept, submit and return assignments,
//! respecting qualification requirements and worker blocks, deterministically.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::answers::{self, AnswerValue};
use crate::ids;
use crate::ops;
use crate::validate::{self, QuestionKind};
use crate::world::{Accept, Assignment, Hit, Key, Locale, QualRequest, Requirement, World};

/// The body of `POST /_sim/work`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkRequest {
    /// `submit` (default), `accept`, `return` or `request_qualification`.
    #[serde(default = "default_action")]
    pub action: String,
    /// Only this HIT; otherwise HITs in creation order.
    pub hit_id: Option<String>,
    /// At most this many HITs (default: all that qualify).
    pub max_hits: Option<usize>,
    /// Assignments per HIT (default: every available slot, or every pending one for `return`).
    pub assignments_per_hit: Option<u64>,
    /// Only this worker (then at most one assignment per HIT).
    pub worker_id: Option<String>,
    /// Answers by QuestionIdentifier (or crowd-form field name).
    #[serde(default)]
    pub answers: BTreeMap<String, Value>,
    /// Answers for particular HITs, keyed as [`hit_matches`] says; they override `answers`.
    #[serde(default)]
    pub answers_by_hit: BTreeMap<String, BTreeMap<String, Value>>,
    /// Named workers who take the slots in this order, each with answers of their own.
    #[serde(default)]
    pub workers: Vec<SimWorker>,
    /// System qualification values of the simulated workers.
    #[serde(default)]
    pub worker: WorkerProfile,
    /// For `request_qualification`.
    pub qualification_type_id: Option<String>,
    /// For `request_qualification`: the worker's answer to the test.
    pub answer: Option<String>,
}

/// A named simulated worker in a work request, e.g. one who always answers wrongly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimWorker {
    pub worker_id: String,
    /// Override the request's `answers` and `answers_by_hit`.
    #[serde(default)]
    pub answers: BTreeMap<String, Value>,
    /// Override this worker's `answers` for particular HITs.
    #[serde(default)]
    pub answers_by_hit: BTreeMap<String, BTreeMap<String, Value>>,
}

fn default_action() -> String {
    "submit".into()
}

/// What system qualifications every simulated worker has.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerProfile {
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default = "default_rate")]
    pub approval_rate: i64,
    #[serde(default = "default_approved")]
    pub approved_hits: i64,
    #[serde(default = "default_adult")]
    pub adult: i64,
    #[serde(default)]
    pub masters: bool,
}

fn default_locale() -> String {
    "US".into()
}
fn default_rate() -> i64 {
    99
}
fn default_approved() -> i64 {
    5000
}
fn default_adult() -> i64 {
    1
}

impl Default for WorkerProfile {
    fn default() -> Self {
        WorkerProfile {
            locale: default_locale(),
            approval_rate: default_rate(),
            approved_hits: default_approved(),
            adult: default_adult(),
            masters: false,
        }
    }
}

/// How many simulated worker ids are tried before a HIT is declared unqualifiable.
const WORKER_POOL: u32 = 10_000;

pub fn worker_id(n: u32) -> String {
    format!("ASIMWORKER{n:05}")
}

fn worker_value(
    w: &World,
    profile: &WorkerProfile,
    worker: &str,
    type_id: &str,
) -> Option<QualValue> {
    match type_id {
        validate::LOCALE_QUAL => {
            let (country, sub) = match profile.locale.split_once('-') {
                Some((c, s)) => (c.to_owned(), Some(s.to_owned())),
                None => (profile.locale.clone(), None),
            };
            Some(QualValue::Locale(Locale {
                country,
                subdivision: sub,
            }))
        }
        validate::APPROVAL_RATE_QUAL => Some(QualValue::Int(profile.approval_rate)),
        validate::APPROVED_HITS_QUAL => Some(QualValue::Int(profile.approved_hits)),
        validate::ADULT_QUAL => Some(QualValue::Int(profile.adult)),
        id if validate::MASTERS_QUALS.contains(&id) => profile.masters.then_some(QualValue::Int(1)),
        id if validate::is_system_qual(id) => Some(QualValue::Int(0)),
        id => {
            if let Some(q) = w.qualifications.get(&(id.to_owned(), worker.to_owned()))
                && q.status == "Granted"
            {
                return Some(QualValue::Int(q.value));
            }
            // An auto-granted type is granted on request, so a worker who wants the HIT has it.
            w.qual_types
                .get(id)
                .filter(|q| q.auto_granted)
                .map(|q| QualValue::Int(q.auto_granted_value))
        }
    }
}

enum QualValue {
    Int(i64),
    Locale(Locale),
}

fn locale_matches(worker: &Locale, wanted: &Locale) -> bool {
    worker.country == wanted.country
        && (wanted.subdivision.is_none() || wanted.subdivision == worker.subdivision)
}

/// Whether a worker meets one requirement. Without the qualification only DoesNotExist holds.
pub(crate) fn meets(w: &World, profile: &WorkerProfile, worker: &str, r: &Requirement) -> bool {
    let value = worker_value(w, profile, worker, &r.type_id);
    let ints = r.integers.as_deref().unwrap_or(&[]);
    let locs = r.locales.as_deref().unwrap_or(&[]);
    match (r.comparator.as_str(), value) {
        ("DoesNotExist", v) => v.is_none(),
        (_, None) => false,
        ("Exists", Some(_)) => true,
        (cmp, Some(QualValue::Int(v))) => {
            let first = ints.first().copied().unwrap_or(0);
            match cmp {
                "LessThan" => v < first,
                "LessThanOrEqualTo" => v <= first,
                "GreaterThan" => v > first,
                "GreaterThanOrEqualTo" => v >= first,
                "EqualTo" => v == first,
                "NotEqualTo" => v != first,
                "In" => ints.contains(&v),
                "NotIn" => !ints.contains(&v),
                _ => false,
            }
        }
        (cmp, Some(QualValue::Locale(l))) => {
            let any = locs.iter().any(|x| locale_matches(&l, x));
            match cmp {
                "EqualTo" | "In" => any,
                "NotEqualTo" | "NotIn" => !any,
                _ => false,
            }
        }
    }
}

/// Whether an `answers_by_hit` key names this HIT, and how closely: its HITId (3), its whole
/// RequesterAnnotation (2), or the end of the annotation after a `:` (1), so that an item key
/// matches annotations such as `turkform:1:<campaign>:<generation>:k:<item key>`.
pub fn hit_matches(key: &str, hit: &Hit) -> u8 {
    if key == hit.id {
        return 3;
    }
    match hit.annotation.as_deref() {
        Some(a) if a == key => 2,
        Some(a) if a.strip_suffix(key).is_some_and(|rest| rest.ends_with(':')) => 1,
        _ => 0,
    }
}

/// The entry of `map` that names `hit` most closely (the longest key among annotation suffixes).
fn for_hit<'a>(
    map: &'a BTreeMap<String, BTreeMap<String, Value>>,
    hit: &Hit,
) -> Option<&'a BTreeMap<String, Value>> {
    map.iter()
        .map(|(k, v)| ((hit_matches(k, hit), k.len()), v))
        .filter(|((m, _), _)| *m > 0)
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, v)| v)
}

/// The answers one worker gives on one HIT: the request's `answers`, its `answers_by_hit`
/// entry, the worker's `answers`, the worker's `answers_by_hit` entry, later ones winning
/// field by field.
fn answers_for(req: &WorkRequest, hit: &Hit, worker: &str) -> BTreeMap<String, Value> {
    let named = req.workers.iter().find(|s| s.worker_id == worker);
    answers::merge(&[
        Some(&req.answers),
        for_hit(&req.answers_by_hit, hit),
        named.map(|s| &s.answers),
        named.and_then(|s| for_hit(&s.answers_by_hit, hit)),
    ])
}

/// The QuestionFormAnswers document a worker submits for a HIT: per QuestionIdentifier of a
/// QuestionForm (FreeText, SelectionIdentifier or UploadedFileKey as its AnswerSpecification
/// says); one `taskAnswers` for a crowd-form; otherwise one FreeText per given answer.
pub fn answer_xml(hit: &Hit, answers: &BTreeMap<String, Value>) -> Result<String, String> {
    let kind = ops::question_kind(hit);
    let mut pairs: Vec<(String, AnswerValue)> = Vec::new();
    match &kind {
        Some(QuestionKind::Form { .. }) => {
            let form = hit
                .question
                .as_deref()
                .and_then(answers::parse_form)
                .unwrap_or_default();
            for q in &form.questions {
                let value = answers::json_answer(q, answers.get(&q.id))
                    .map_err(|e| format!("HIT `{}`: {e}", hit.id))?;
                pairs.push((q.id.clone(), value));
            }
        }
        Some(QuestionKind::Html { crowd_form: true }) => {
            let obj: serde_json::Map<String, Value> = answers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            pairs.push(("taskAnswers".into(), answers::task_answers(&obj)));
        }
        _ => {
            if answers.is_empty() {
                pairs.push((
                    "answer".into(),
                    AnswerValue::FreeText("simulated answer".into()),
                ));
            }
            for (k, v) in answers {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                pairs.push((k.clone(), AnswerValue::FreeText(text)));
            }
        }
    }
    Ok(answers::document(&pairs))
}

/// Refuses a request whose answers could not be written, before anything changes: a
/// selection value the question does not offer, an `answers_by_hit` key that names no HIT.
fn check_answers(w: &World, now: i64, req: &WorkRequest, hit_ids: &[String]) -> Result<(), String> {
    let all_maps =
        std::iter::once(&req.answers_by_hit).chain(req.workers.iter().map(|s| &s.answers_by_hit));
    for map in all_maps {
        for key in map.keys() {
            if !w.hits.values().any(|h| hit_matches(key, h) > 0) {
                return Err(format!(
                    "answers_by_hit key `{key}` names no HIT: use a HITId, a RequesterAnnotation or the item key at its end"
                ));
            }
        }
    }
    let mut workers: Vec<&str> = req.workers.iter().map(|s| s.worker_id.as_str()).collect();
    if workers.is_empty() {
        workers.push(req.worker_id.as_deref().unwrap_or(""));
    }
    for hit_id in hit_ids {
        let Some(hit) = w.live_hit(hit_id, now) else {
            continue;
        };
        for worker in &workers {
            answer_xml(hit, &answers_for(req, hit, worker))?;
        }
    }
    Ok(())
}

/// Runs a work request against the world; returns the JSON report or a message for HTTP 400.
pub fn run(w: &mut World, rng: &mut StdRng, now: i64, req: &WorkRequest) -> Result<Value, String> {
    if let Some(id) = &req.worker_id {
        crate::wire::check_worker_id("worker_id", id).map_err(|_| {
            format!("worker_id `{id}` is not a worker id: it must match ^A[A-Z0-9]+$")
        })?;
    }
    if req.action == "request_qualification" {
        return request_qualification(w, rng, now, req);
    }
    if !matches!(req.action.as_str(), "submit" | "accept" | "return") {
        return Err(format!(
            "action `{}` is unknown: use submit, accept, return or request_qualification",
            req.action
        ));
    }
    let hit_ids: Vec<String> = match &req.hit_id {
        Some(id) => {
            if w.live_hit(id, now).is_none() {
                return Err(format!("HIT `{id}` does not exist"));
            }
            vec![id.clone()]
        }
        None => w.hit_order.values().cloned().collect(),
    };
    if req.worker_id.is_some() && !req.workers.is_empty() {
        return Err("give either worker_id or workers, not both".into());
    }
    for s in &req.workers {
        crate::wire::check_worker_id("workers", &s.worker_id).map_err(|_| {
            format!(
                "worker_id `{}` in workers is not a worker id: it must match ^A[A-Z0-9]+$",
                s.worker_id
            )
        })?;
    }
    if req.action == "submit" {
        check_answers(w, now, req, &hit_ids)?;
    }
    let mut report = Vec::new();
    let mut all = Vec::new();
    let mut touched = 0usize;
    for hit_id in hit_ids {
        if req.max_hits.is_some_and(|m| touched >= m) {
            break;
        }
        w.prune_abandoned(&hit_id, now);
        let Some(hit) = w.live_hit(&hit_id, now) else {
            continue;
        };
        let view = w.view(hit, now);
        let outcome = match req.action.as_str() {
            "return" => {
                if view.pending == 0 {
                    continue;
                }
                return_pending(w, &hit_id, req)
            }
            action => {
                let submit = action == "submit";
                let has_pending = submit && view.pending > 0;
                if view.status != "Assignable" && !has_pending {
                    if req.hit_id.is_some() {
                        report.push(json!({"hit_id": hit_id, "skipped": format!("the HIT is {}", view.status)}));
                    }
                    continue;
                }
                take_slots(w, rng, now, &hit_id, req, submit)
            }
        };
        if outcome.is_empty() {
            continue;
        }
        touched += 1;
        all.extend(outcome.iter().cloned());
        let key = match req.action.as_str() {
            "return" => "returned",
            "accept" => "accepted",
            _ => "submitted",
        };
        report.push(json!({ "hit_id": hit_id, key: outcome }));
    }
    Ok(json!({ "action": req.action, "now": now / 1000, "hits": report, "assignments": all }))
}

fn return_pending(w: &mut World, hit_id: &str, req: &WorkRequest) -> Vec<String> {
    let Some(hit) = w.hits.get_mut(hit_id) else {
        return Vec::new();
    };
    let limit = req.assignments_per_hit.unwrap_or(u64::MAX);
    let mut returned = Vec::new();
    hit.accepts.retain(|a| {
        let chosen = (returned.len() as u64) < limit && chosen_worker(req, &a.worker_id);
        if chosen {
            returned.push(a.assignment_id.clone());
        }
        !chosen
    });
    if !returned.is_empty() {
        w.touch(Key::Hit(hit_id.to_owned()));
    }
    returned
}

/// Accepts (and with `submit`, submits) up to `assignments_per_hit` slots of one HIT. With
/// `submit`, work already accepted is submitted first.
fn take_slots(
    w: &mut World,
    rng: &mut StdRng,
    now: i64,
    hit_id: &str,
    req: &WorkRequest,
    submit: bool,
) -> Vec<String> {
    let Some(hit) = w.hits.get(hit_id) else {
        return Vec::new();
    };
    let Some(t) = w.hit_types.get(&hit.type_id).cloned() else {
        return Vec::new();
    };
    let expired = now >= hit.expiration_ms;
    let mut limit = req.assignments_per_hit.unwrap_or(u64::MAX);
    let mut done = Vec::new();
    if submit {
        let pending: Vec<Accept> = hit
            .accepts
            .iter()
            .filter(|a| chosen_worker(req, &a.worker_id))
            .cloned()
            .collect();
        for a in pending {
            if limit == 0 {
                break;
            }
            let answer = submission(w, req, hit_id, &a.worker_id);
            submit_accept(w, now, hit_id, &a, t.auto_approval_delay_secs, answer);
            done.push(a.assignment_id);
            limit -= 1;
        }
    }
    if expired {
        return done;
    }
    let mut candidate = 0u32;
    while limit > 0 {
        let Some(hit) = w.hits.get(hit_id) else { break };
        if w.view(hit, now).available == 0 {
            break;
        }
        let worker = match &req.worker_id {
            Some(id) => {
                if candidate > 0 {
                    break;
                }
                candidate = 1;
                id.clone()
            }
            None if !req.workers.is_empty() => {
                let Some(s) = req.workers.get(candidate as usize) else {
                    break;
                };
                candidate += 1;
                s.worker_id.clone()
            }
            None => {
                candidate += 1;
                if candidate > WORKER_POOL {
                    break;
                }
                worker_id(candidate)
            }
        };
        let busy = hit.accepts.iter().any(|a| a.worker_id == worker)
            || hit
                .assignments
                .iter()
                .filter_map(|id| w.assignments.get(id))
                .any(|a| a.worker_id == worker);
        if busy
            || w.blocks.contains_key(&worker)
            || !t
                .requirements
                .iter()
                .all(|r| meets(w, &req.worker, &worker, r))
        {
            continue;
        }
        let id = loop {
            let id = ids::random_id(rng);
            if !w.assignments.contains_key(&id) {
                break id;
            }
        };
        let accept = Accept {
            assignment_id: id.clone(),
            worker_id: worker,
            accept_ms: now,
            deadline_ms: now + t.assignment_duration_secs * 1000,
        };
        if submit {
            let answer = submission(w, req, hit_id, &accept.worker_id);
            submit_accept(w, now, hit_id, &accept, t.auto_approval_delay_secs, answer);
        } else if let Some(hit) = w.hits.get_mut(hit_id) {
            hit.accepts.push(accept);
            w.touch(Key::Hit(hit_id.to_owned()));
        }
        done.push(id);
        limit -= 1;
    }
    done
}

/// Whether a request's worker filter (`worker_id` or `workers`) lets `worker` submit.
fn chosen_worker(req: &WorkRequest, worker: &str) -> bool {
    match &req.worker_id {
        Some(id) => id == worker,
        None => req.workers.is_empty() || req.workers.iter().any(|s| s.worker_id == worker),
    }
}

/// The answer XML `worker` submits on a HIT; `check_answers` has already proved it can be made.
fn submission(w: &World, req: &WorkRequest, hit_id: &str, worker: &str) -> String {
    match w.hits.get(hit_id) {
        Some(hit) => answer_xml(hit, &answers_for(req, hit, worker))
            .unwrap_or_else(|_| answers::document(&[])),
        None => answers::document(&[]),
    }
}

/// Turns an accepted slot into a Submitted assignment holding `answer`.
pub(crate) fn submit_accept(
    w: &mut World,
    now: i64,
    hit_id: &str,
    accept: &Accept,
    auto_approval_delay_secs: i64,
    answer: String,
) {
    let assignment = Assignment {
        id: accept.assignment_id.clone(),
        hit_id: hit_id.to_owned(),
        worker_id: accept.worker_id.clone(),
        status: "Submitted".into(),
        accept_ms: accept.accept_ms,
        submit_ms: now,
        deadline_ms: accept.deadline_ms,
        auto_approval_ms: now + auto_approval_delay_secs * 1000,
        approval_ms: None,
        rejection_ms: None,
        answer,
        feedback: None,
    };
    if let Some(hit) = w.hits.get_mut(hit_id) {
        hit.accepts
            .retain(|a| a.assignment_id != accept.assignment_id);
        hit.assignments.push(accept.assignment_id.clone());
    }
    w.assignments
        .insert(accept.assignment_id.clone(), assignment);
    w.touch(Key::Hit(hit_id.to_owned()));
    w.touch(Key::Assignment(accept.assignment_id.clone()));
}

fn request_qualification(
    w: &mut World,
    rng: &mut StdRng,
    now: i64,
    req: &WorkRequest,
) -> Result<Value, String> {
    let Some(type_id) = &req.qualification_type_id else {
        return Err("request_qualification needs qualification_type_id".into());
    };
    if !w.qual_types.contains_key(type_id) {
        return Err(format!("qualification type `{type_id}` does not exist"));
    }
    let worker = req.worker_id.clone().unwrap_or_else(|| worker_id(1));
    let id = ids::random_id(rng);
    let seq = w.next_seq();
    w.qual_requests.insert(
        id.clone(),
        QualRequest {
            id: id.clone(),
            seq,
            type_id: type_id.clone(),
            worker_id: worker.clone(),
            answer: req.answer.clone(),
            submit_ms: now,
        },
    );
    w.touch(Key::QualRequest(id.clone()));
    Ok(
        json!({ "action": "request_qualification", "now": now / 1000, "qualification_request_id": id, "worker_id": worker }),
    )
}
