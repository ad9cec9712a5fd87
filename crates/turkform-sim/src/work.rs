//! Simulated workers for `POST /_sim/work`: they accept, submit and return assignments,
//! respecting qualification requirements and worker blocks, deterministically.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ids;
use crate::ops;
use crate::validate::{self, QuestionKind};
use crate::world::{Accept, Assignment, Key, Locale, QualRequest, Requirement, World};

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
    /// System qualification values of the simulated workers.
    #[serde(default)]
    pub worker: WorkerProfile,
    /// For `request_qualification`.
    pub qualification_type_id: Option<String>,
    /// For `request_qualification`: the worker's answer to the test.
    pub answer: Option<String>,
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
fn meets(w: &World, profile: &WorkerProfile, worker: &str, r: &Requirement) -> bool {
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

fn xml_escape_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#{};", c as u32)),
        }
    }
    out
}

fn answer_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The QuestionFormAnswers document a worker submits for a HIT.
pub fn answer_xml(kind: Option<&QuestionKind>, answers: &BTreeMap<String, Value>) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match kind {
        Some(QuestionKind::Form { identifiers }) => {
            for id in identifiers {
                let text = answers
                    .get(id)
                    .map(answer_text)
                    .unwrap_or_else(|| format!("simulated answer to {id}"));
                pairs.push((id.clone(), text));
            }
        }
        Some(QuestionKind::Html { crowd_form: true }) => {
            let obj: serde_json::Map<String, Value> = answers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            pairs.push((
                "taskAnswers".into(),
                Value::from(vec![Value::Object(obj)]).to_string(),
            ));
        }
        _ => {
            if answers.is_empty() {
                pairs.push(("answer".into(), "simulated answer".into()));
            }
            for (k, v) in answers {
                pairs.push((k.clone(), answer_text(v)));
            }
        }
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"ASCII\"?><QuestionFormAnswers xmlns=\"{}\">",
        validate::ANSWERS_NS
    );
    for (id, text) in pairs {
        xml.push_str(&format!(
            "<Answer><QuestionIdentifier>{}</QuestionIdentifier><FreeText>{}</FreeText></Answer>",
            xml_escape_ascii(&id),
            xml_escape_ascii(&text)
        ));
    }
    xml.push_str("</QuestionFormAnswers>");
    xml
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
        let chosen = (returned.len() as u64) < limit
            && req.worker_id.as_ref().is_none_or(|id| *id == a.worker_id);
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
    let kind = ops::question_kind(hit);
    let expired = now >= hit.expiration_ms;
    let mut limit = req.assignments_per_hit.unwrap_or(u64::MAX);
    let mut done = Vec::new();
    if submit {
        let pending: Vec<Accept> = hit
            .accepts
            .iter()
            .filter(|a| req.worker_id.as_ref().is_none_or(|id| *id == a.worker_id))
            .cloned()
            .collect();
        for a in pending {
            if limit == 0 {
                break;
            }
            submit_accept(
                w,
                now,
                hit_id,
                &a,
                t.auto_approval_delay_secs,
                kind.as_ref(),
                &req.answers,
            );
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
            submit_accept(
                w,
                now,
                hit_id,
                &accept,
                t.auto_approval_delay_secs,
                kind.as_ref(),
                &req.answers,
            );
        } else if let Some(hit) = w.hits.get_mut(hit_id) {
            hit.accepts.push(accept);
            w.touch(Key::Hit(hit_id.to_owned()));
        }
        done.push(id);
        limit -= 1;
    }
    done
}

fn submit_accept(
    w: &mut World,
    now: i64,
    hit_id: &str,
    accept: &Accept,
    auto_approval_delay_secs: i64,
    kind: Option<&QuestionKind>,
    answers: &BTreeMap<String, Value>,
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
        answer: answer_xml(kind, answers),
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
