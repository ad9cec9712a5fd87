//! The worker site under `/_sim/worker/`: a HIT list, a preview page, accept / submit /
//! return, HITs framed the way MTurk's worker site frames them (HTMLQuestion and
//! ExternalQuestion in an iframe of FrameHeight with `assignmentId`, `hitId`, `turkSubmitTo`
//! and `workerId`; QuestionForm as a plain form), and `mturk/externalSubmit`, which turns a
//! posted form into a Submitted assignment holding the answer XML MTurk would store.
//!
//! It answers only on loopback: a worker site hands out work and takes answers without any
//! signature, so it must never be reachable from another machine.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::http::request::Parts;
use serde_json::Value;

use crate::answers::{self, AnswerSpec, AnswerValue, Form};
use crate::ids;
use crate::server::Shared;
use crate::validate;
use crate::work::{self, WorkerProfile};
use crate::world::{Accept, Hit, Key, Requirement, World};

/// Where crowd-html-elements is loaded from in real HITs; replaced by the stand-in here.
pub const CROWD_CDN: &str = "https://assets.crowd.aws/crowd-html-elements.js";
/// The path prefix of the site.
pub const BASE: &str = "/_sim/worker";
/// What MTurk passes as `assignmentId` while a worker only previews a HIT.
pub const NOT_AVAILABLE: &str = "ASSIGNMENT_ID_NOT_AVAILABLE";
/// The worker the site acts as when no `workerId` is chosen.
pub const DEFAULT_WORKER: &str = "ALOCALWORKER";

/// The part of `path` after the site's prefix, if the path belongs to the site.
pub fn route(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(BASE)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Whether a peer may use the site: loopback only, IPv4-mapped IPv6 included.
pub fn is_loopback(peer: &SocketAddr) -> bool {
    match peer.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

type Page = Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: String) -> Page {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn redirect(location: &str) -> Page {
    Response::builder()
        .status(303)
        .header("location", location)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn page(title: &str, worker: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t} - turkform simulator</title>\
<style>body{{font-family:sans-serif;margin:0}}header{{background:#232f3e;color:#fff;padding:8px 16px}}\
header a{{color:#fff}}main{{padding:12px 16px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
.met{{color:#070}}.unmet{{color:#b00}}iframe{{border:1px solid #888;width:100%}}pre{{white-space:pre-wrap;background:#f4f4f4;padding:8px}}\
.note{{background:#fff4d0;padding:6px}}</style></head><body>\
<header><a href=\"{BASE}/?workerId={w}\">turkform simulator &middot; worker site</a> (local, not MTurk) &middot; \
<form style=\"display:inline\" method=\"get\" action=\"{BASE}/\">worker <input name=\"workerId\" value=\"{we}\" size=\"16\"> <button>switch</button></form></header>\
<main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title),
        w = enc(worker),
        we = esc(worker),
    )
}

fn error_page(status: u16, worker: &str, message: &str) -> Page {
    respond(
        status,
        "text/html; charset=utf-8",
        page(
            "Cannot do that",
            worker,
            &format!("<p id=\"error\">{}</p>", esc(message)),
        ),
    )
}

/// A HIT's question as the worker site shows it.
enum Task {
    Html { html: String, frame_height: u32 },
    External { url: String, frame_height: u32 },
    Form(Form),
    Layout,
}

fn task_of(hit: &Hit) -> Task {
    let Some(xml) = hit.question.as_deref() else {
        return Task::Layout;
    };
    if let Some(form) = answers::parse_form(xml) {
        return Task::Form(form);
    }
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Task::Layout;
    };
    let root = doc.root_element();
    let child_text = |name: &str| -> String {
        root.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
            .map(|c| c.children().filter_map(|n| n.text()).collect())
            .unwrap_or_default()
    };
    let frame_height = child_text("FrameHeight").trim().parse().unwrap_or(0);
    match root.tag_name().name() {
        "HTMLQuestion" => Task::Html {
            html: child_text("HTMLContent"),
            frame_height,
        },
        "ExternalQuestion" => Task::External {
            url: child_text("ExternalURL").trim().to_owned(),
            frame_height,
        },
        _ => Task::Layout,
    }
}

fn params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn chosen_worker(params: &[(String, String)]) -> String {
    param(params, "workerId")
        .filter(|w| !w.is_empty())
        .unwrap_or(DEFAULT_WORKER)
        .to_owned()
}

/// Serves one request of the site. `rest` is the path after [`BASE`].
pub(crate) async fn handle(
    shared: &Shared,
    peer: SocketAddr,
    parts: &Parts,
    rest: &str,
    body: &[u8],
) -> Page {
    if !is_loopback(&peer) {
        return respond(
            403,
            "text/plain; charset=utf-8",
            "the simulator's worker site answers only on loopback (127.0.0.1 / ::1)\n".into(),
        );
    }
    let query = params(parts.uri.query().unwrap_or(""));
    let worker = chosen_worker(&query);
    if crate::wire::check_worker_id("workerId", &worker).is_err() {
        return error_page(
            400,
            DEFAULT_WORKER,
            &format!("`{worker}` is not a worker id: it must match ^A[A-Z0-9]+$"),
        );
    }
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let submit_to = format!("http://{host}{BASE}");
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let method = parts.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", [""]) => list(shared, &worker),
        ("GET", ["crowd-html-elements.js"]) => respond(
            200,
            "text/javascript; charset=utf-8",
            CROWD_STAND_IN.to_owned(),
        ),
        ("GET", ["hit", hit_id]) => preview(shared, hit_id, &worker, &submit_to),
        ("POST", ["hit", hit_id, "accept"]) => {
            let form = params(&String::from_utf8_lossy(body));
            let worker = chosen_worker(&form);
            accept(shared, hit_id, &worker).await
        }
        ("GET", ["assignment", id]) => assignment_page(shared, id, &worker, &submit_to),
        ("POST", ["assignment", id, "return"]) => return_assignment(shared, id, &worker).await,
        ("GET", ["task", hit_id]) => task_page(shared, hit_id, &worker),
        ("POST", ["mturk", "externalSubmit"]) => {
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            external_submit(shared, content_type, body, &worker).await
        }
        _ => error_page(
            404,
            &worker,
            &format!("there is no page {method} {BASE}{rest}: start at {BASE}/"),
        ),
    }
}

fn read<T>(shared: &Shared, f: impl FnOnce(&mut World, i64) -> T) -> T {
    shared.with_world(|w, _, now| f(w, now)).0
}

/// A requirement in words, and whether the worker meets it.
fn requirement_row(w: &World, worker: &str, r: &Requirement) -> (String, bool) {
    let name = validate::system_qual_name(&r.type_id)
        .map(str::to_owned)
        .or_else(|| w.qual_types.get(&r.type_id).map(|q| q.name.clone()))
        .unwrap_or_else(|| r.type_id.clone());
    let mut values: Vec<String> = r
        .integers
        .iter()
        .flatten()
        .map(ToString::to_string)
        .collect();
    values.extend(r.locales.iter().flatten().map(|l| match &l.subdivision {
        Some(s) => format!("{}-{s}", l.country),
        None => l.country.clone(),
    }));
    let text = format!("{name} {} {}", r.comparator, values.join(", "));
    let met = work::meets(w, &WorkerProfile::default(), worker, r);
    (text.trim_end().to_owned(), met)
}

fn requirements_html(w: &World, worker: &str, reqs: &[Requirement]) -> String {
    if reqs.is_empty() {
        return "<span class=\"met\">none</span>".into();
    }
    let mut out = String::from("<ul class=\"requirements\">");
    for r in reqs {
        let (text, met) = requirement_row(w, worker, r);
        out.push_str(&format!(
            "<li class=\"{}\">{} {}</li>",
            if met { "met" } else { "unmet" },
            if met {
                "&#10003; meets"
            } else {
                "&#10007; does not meet"
            },
            esc(&text)
        ));
    }
    out.push_str("</ul>");
    out
}

fn list(shared: &Shared, worker: &str) -> Page {
    let body = read(shared, |w, now| {
        let mut rows = String::new();
        for hit_id in w.hit_order.values() {
            let Some(hit) = w.live_hit(hit_id, now) else {
                continue;
            };
            let view = w.view(hit, now);
            if view.status != "Assignable" {
                continue;
            }
            let Some(t) = w.hit_types.get(&hit.type_id) else {
                continue;
            };
            rows.push_str(&format!(
                "<tr><td><a class=\"hit\" href=\"{BASE}/hit/{id}?workerId={wk}\">{title}</a></td><td>${reward}</td><td>{avail}</td><td>{reqs}</td></tr>",
                id = enc(&hit.id),
                wk = enc(worker),
                title = esc(&t.title),
                reward = t.reward.to_amount(),
                avail = view.available,
                reqs = requirements_html(w, worker, &t.requirements),
            ));
        }
        if rows.is_empty() {
            "<p>No HIT is assignable right now.</p>".to_owned()
        } else {
            format!(
                "<p>Qualifications shown for worker <b>{}</b> with the simulated workers' system qualifications (locale US, 99 % approval, 5,000 approved HITs, adult, not Masters).</p>\
<table id=\"hits\"><tr><th>HIT</th><th>Reward</th><th>Available</th><th>Qualification requirements</th></tr>{rows}</table>",
                esc(worker)
            )
        }
    });
    respond(
        200,
        "text/html; charset=utf-8",
        page("Assignable HITs", worker, &body),
    )
}

/// The query MTurk appends to a framed task.
fn frame_query(assignment: &str, hit_id: &str, submit_to: &str, worker: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("assignmentId", assignment)
        .append_pair("hitId", hit_id)
        .append_pair("turkSubmitTo", submit_to)
        .append_pair("workerId", worker)
        .finish()
}

fn frame_style(frame_height: u32) -> String {
    // FrameHeight 0 asks for a frame that fills the window.
    if frame_height == 0 {
        "height:85vh".into()
    } else {
        format!("height:{frame_height}px")
    }
}

/// The task as framed for `assignment` (or [`NOT_AVAILABLE`] in a preview).
fn task_html(hit: &Hit, assignment: &str, worker: &str, submit_to: &str) -> String {
    let query = frame_query(assignment, &hit.id, submit_to, worker);
    match task_of(hit) {
        Task::Html { frame_height, .. } => format!(
            "<iframe id=\"task\" name=\"task\" style=\"{}\" src=\"{BASE}/task/{}?{}\"></iframe>",
            frame_style(frame_height),
            enc(&hit.id),
            esc(&query)
        ),
        Task::External { url, frame_height } => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!(
                "<iframe id=\"task\" name=\"task\" style=\"{}\" src=\"{}{sep}{}\"></iframe>",
                frame_style(frame_height),
                esc(&url),
                esc(&query)
            )
        }
        Task::Form(form) => question_form_html(&form, assignment, submit_to),
        Task::Layout => "<p class=\"note\">This HIT uses a HITLayoutId: MTurk renders it from a layout made in the requester web site, which the simulator does not have.</p>".into(),
    }
}

/// A QuestionForm as a plain HTML form posting to externalSubmit.
fn question_form_html(form: &Form, assignment: &str, submit_to: &str) -> String {
    let preview = assignment == NOT_AVAILABLE;
    let mut out = format!(
        "<form id=\"question-form\" method=\"post\" action=\"{}/mturk/externalSubmit\"><input type=\"hidden\" name=\"assignmentId\" value=\"{}\">",
        esc(submit_to),
        esc(assignment)
    );
    for o in &form.overview {
        out.push_str(&format!("<p class=\"overview\">{}</p>", esc(o)));
    }
    for q in &form.questions {
        let id = esc(&q.id);
        out.push_str(&format!(
            "<fieldset class=\"question\" id=\"q-{id}\"><legend>{}{}</legend>",
            esc(if q.text.is_empty() { &q.id } else { &q.text }),
            if q.required { " *" } else { "" }
        ));
        match &q.spec {
            AnswerSpec::FreeText => out.push_str(&format!(
                "<textarea name=\"{id}\" rows=\"3\" cols=\"60\"{}></textarea>",
                if q.required { " required" } else { "" }
            )),
            AnswerSpec::FileUpload => out.push_str(&format!(
                "<p class=\"note\">File upload: the simulator stores no files; type the key the upload would have.</p><input name=\"{id}\" size=\"40\">"
            )),
            AnswerSpec::Selection {
                options,
                max,
                style,
                other,
                ..
            } => {
                let multi = *max > 1;
                if matches!(style.as_str(), "dropdown" | "list" | "combobox") && !*other {
                    out.push_str(&format!(
                        "<select name=\"{id}\"{}>",
                        if multi { " multiple" } else { "" }
                    ));
                    for (sid, label) in options {
                        out.push_str(&format!(
                            "<option value=\"{}\">{}</option>",
                            esc(sid),
                            esc(label)
                        ));
                    }
                    out.push_str("</select>");
                } else {
                    let kind = if multi { "checkbox" } else { "radio" };
                    for (sid, label) in options {
                        out.push_str(&format!(
                            "<label><input type=\"{kind}\" name=\"{id}\" value=\"{}\"> {}</label><br>",
                            esc(sid),
                            esc(label)
                        ));
                    }
                    if *other {
                        out.push_str(&format!(
                            "<label>Other: <input name=\"{id}.other\" size=\"30\"></label>"
                        ));
                    }
                }
            }
        }
        out.push_str("</fieldset>");
    }
    if preview {
        out.push_str("<p class=\"note\">Preview: accept the HIT to submit.</p><button type=\"submit\" disabled>Submit</button>");
    } else {
        out.push_str("<button type=\"submit\" id=\"submit\">Submit</button>");
    }
    out.push_str("</form>");
    out
}

fn hit_header(w: &World, hit: &Hit, worker: &str) -> String {
    let Some(t) = w.hit_types.get(&hit.type_id) else {
        return String::new();
    };
    format!(
        "<table class=\"hit-info\"><tr><th>HIT</th><td id=\"hit-id\">{}</td></tr><tr><th>Description</th><td>{}</td></tr>\
<tr><th>Reward</th><td>${}</td></tr><tr><th>Time allotted</th><td>{} s</td></tr><tr><th>Qualifications</th><td>{}</td></tr></table>",
        esc(&hit.id),
        esc(&t.description),
        t.reward.to_amount(),
        t.assignment_duration_secs,
        requirements_html(w, worker, &t.requirements)
    )
}

fn preview(shared: &Shared, hit_id: &str, worker: &str, submit_to: &str) -> Page {
    let out = read(shared, |w, now| {
        let hit = w.live_hit(hit_id, now)?;
        let t = w.hit_types.get(&hit.type_id)?;
        let unmet: Vec<&Requirement> = t
            .requirements
            .iter()
            .filter(|r| !work::meets(w, &WorkerProfile::default(), worker, r))
            .collect();
        let preview_guarded = unmet.iter().any(|r| {
            r.required_to_preview == Some(true)
                || matches!(
                    r.actions_guarded.as_deref(),
                    Some("PreviewAndAccept" | "DiscoverPreviewAndAccept")
                )
        });
        let view = w.view(hit, now);
        let accept = if view.status != "Assignable" || view.available == 0 {
            format!(
                "<p class=\"note\">This HIT is {} and cannot be accepted.</p>",
                view.status
            )
        } else if !unmet.is_empty() {
            "<p class=\"note\">This worker does not meet the qualification requirements, so cannot accept.</p>".into()
        } else {
            format!(
                "<form method=\"post\" action=\"{BASE}/hit/{}/accept\"><input type=\"hidden\" name=\"workerId\" value=\"{}\"><button id=\"accept\" type=\"submit\">Accept</button></form>",
                enc(&hit.id),
                esc(worker)
            )
        };
        let task = if preview_guarded {
            "<p class=\"note\">A qualification requirement this worker does not meet guards the preview.</p>".into()
        } else {
            task_html(hit, NOT_AVAILABLE, worker, submit_to)
        };
        Some((
            t.title.clone(),
            format!(
                "{}{accept}<h2>Preview</h2>{task}",
                hit_header(w, hit, worker)
            ),
        ))
    });
    match out {
        Some((title, body)) => {
            respond(200, "text/html; charset=utf-8", page(&title, worker, &body))
        }
        None => error_page(404, worker, &format!("HIT `{hit_id}` does not exist")),
    }
}

/// Takes a slot of a HIT for `worker`, as MTurk's Accept does; an assignment the worker already
/// holds is handed back rather than refused, so a reload does not lose the work.
fn take_slot(
    w: &mut World,
    rng: &mut rand::rngs::StdRng,
    now: i64,
    hit_id: &str,
    worker: &str,
) -> Result<String, String> {
    w.prune_abandoned(hit_id, now);
    let hit = w
        .live_hit(hit_id, now)
        .ok_or_else(|| format!("HIT `{hit_id}` does not exist"))?;
    if let Some(a) = hit.accepts.iter().find(|a| a.worker_id == worker) {
        return Ok(a.assignment_id.clone());
    }
    if hit
        .assignments
        .iter()
        .filter_map(|id| w.assignments.get(id))
        .any(|a| a.worker_id == worker)
    {
        return Err(format!(
            "worker {worker} has already submitted work on this HIT"
        ));
    }
    let view = w.view(hit, now);
    if view.status != "Assignable" || view.available == 0 {
        return Err(format!(
            "no assignment of this HIT is available (the HIT is {})",
            view.status
        ));
    }
    if w.blocks.contains_key(worker) {
        return Err(format!("worker {worker} is blocked by this requester"));
    }
    let t = w
        .hit_types
        .get(&hit.type_id)
        .ok_or_else(|| format!("the HIT type of `{hit_id}` is gone"))?;
    if let Some(r) = t
        .requirements
        .iter()
        .find(|r| !work::meets(w, &WorkerProfile::default(), worker, r))
    {
        return Err(format!(
            "worker {worker} does not meet the requirement {}",
            requirement_row(w, worker, r).0
        ));
    }
    let deadline_ms = now + t.assignment_duration_secs * 1000;
    let id = loop {
        let id = ids::random_id(rng);
        if !w.assignments.contains_key(&id) {
            break id;
        }
    };
    if let Some(hit) = w.hits.get_mut(hit_id) {
        hit.accepts.push(Accept {
            assignment_id: id.clone(),
            worker_id: worker.to_owned(),
            accept_ms: now,
            deadline_ms,
        });
    }
    w.touch(Key::Hit(hit_id.to_owned()));
    Ok(id)
}

async fn accept(shared: &Shared, hit_id: &str, worker: &str) -> Page {
    if crate::wire::check_worker_id("workerId", worker).is_err() {
        return error_page(
            400,
            DEFAULT_WORKER,
            &format!("`{worker}` is not a worker id"),
        );
    }
    let (result, seq) = shared.with_world(|w, rng, now| take_slot(w, rng, now, hit_id, worker));
    if !shared.committed(seq).await {
        return error_page(500, worker, "the simulator could not save the assignment");
    }
    match result {
        Ok(id) => redirect(&format!(
            "{BASE}/assignment/{}?workerId={}",
            enc(&id),
            enc(worker)
        )),
        Err(e) => error_page(409, worker, &e),
    }
}

/// The HIT and accepted slot holding assignment `id`, if it is still pending.
fn pending<'a>(w: &'a World, now: i64, id: &str) -> Option<(&'a Hit, &'a Accept)> {
    w.hits.values().find_map(|h| {
        h.accepts
            .iter()
            .find(|a| a.assignment_id == id && a.deadline_ms > now)
            .map(|a| (h, a))
    })
}

fn assignment_page(shared: &Shared, id: &str, worker: &str, submit_to: &str) -> Page {
    let out = read(shared, |w, now| {
        if let Some(a) = w.assignments.get(id) {
            let hit = w.hits.get(&a.hit_id)?;
            let title = w
                .hit_types
                .get(&hit.type_id)
                .map(|t| t.title.clone())
                .unwrap_or_default();
            return Some((
                format!("Submitted: {title}"),
                format!(
                    "<p>Assignment <b id=\"assignment-id\">{}</b> of HIT {} by worker {} is <b id=\"status\">{}</b>. The answer as MTurk stores it (ListAssignmentsForHIT's <code>Answer</code>):</p><pre id=\"answer-xml\">{}</pre><p><a href=\"{BASE}/?workerId={}\">Back to the HIT list</a></p>",
                    esc(&a.id),
                    esc(&a.hit_id),
                    esc(&a.worker_id),
                    esc(a.status_at(now)),
                    esc(&a.answer),
                    enc(worker)
                ),
            ));
        }
        let (hit, accept) = pending(w, now, id)?;
        let title = w
            .hit_types
            .get(&hit.type_id)
            .map(|t| t.title.clone())
            .unwrap_or_default();
        let worker = accept.worker_id.as_str();
        Some((
            title,
            format!(
                "{}<form method=\"post\" action=\"{BASE}/assignment/{}/return?workerId={}\"><button id=\"return\" type=\"submit\">Return</button> assignment <b id=\"assignment-id\">{}</b>, due in {} s</form><h2>Task</h2>{}",
                hit_header(w, hit, worker),
                enc(id),
                enc(worker),
                esc(id),
                (accept.deadline_ms - now) / 1000,
                task_html(hit, id, worker, submit_to)
            ),
        ))
    });
    match out {
        Some((title, body)) => {
            respond(200, "text/html; charset=utf-8", page(&title, worker, &body))
        }
        None => error_page(
            404,
            worker,
            &format!(
                "assignment `{id}` is neither accepted nor submitted (returned, abandoned or unknown)"
            ),
        ),
    }
}

async fn return_assignment(shared: &Shared, id: &str, worker: &str) -> Page {
    let (found, seq) = shared.with_world(|w, _, now| {
        let hit_id = pending(w, now, id).map(|(h, _)| h.id.clone())?;
        if let Some(hit) = w.hits.get_mut(&hit_id) {
            hit.accepts.retain(|a| a.assignment_id != id);
        }
        w.touch(Key::Hit(hit_id.clone()));
        Some(hit_id)
    });
    if !shared.committed(seq).await {
        return error_page(500, worker, "the simulator could not save the return");
    }
    match found {
        Some(_) => redirect(&format!("{BASE}/?workerId={}", enc(worker))),
        None => error_page(404, worker, &format!("assignment `{id}` is not pending")),
    }
}

/// An HTMLQuestion's content as the frame loads it, with the crowd-html-elements stand-in in
/// place of MTurk's CDN script.
fn task_page(shared: &Shared, hit_id: &str, worker: &str) -> Page {
    let html = read(shared, |w, now| {
        let hit = w.live_hit(hit_id, now)?;
        match task_of(hit) {
            Task::Html { html, .. } => Some(html),
            _ => None,
        }
    });
    match html {
        Some(html) => respond(
            200,
            "text/html; charset=utf-8",
            html.replace(CROWD_CDN, &format!("{BASE}/crowd-html-elements.js")),
        ),
        None => error_page(
            404,
            worker,
            &format!("HIT `{hit_id}` does not exist or is not an HTMLQuestion"),
        ),
    }
}

/// The answers a posted form becomes on a QuestionForm HIT: per Question, shaped by its
/// AnswerSpecification; unanswered optional questions are left out.
fn form_answers(
    form: &Form,
    fields: &[(String, String)],
) -> Result<Vec<(String, AnswerValue)>, String> {
    let mut out = Vec::new();
    for q in &form.questions {
        let values: Vec<String> = fields
            .iter()
            .filter(|(k, v)| *k == q.id && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect();
        let value = match &q.spec {
            AnswerSpec::FreeText => values.first().cloned().map(AnswerValue::FreeText),
            AnswerSpec::FileUpload => values.first().map(|k| AnswerValue::UploadedFile {
                size: 0,
                key: k.clone(),
            }),
            AnswerSpec::Selection { .. } => {
                let mut chosen = values;
                let other_field = format!("{}.other", q.id);
                if let Some((_, o)) = fields
                    .iter()
                    .find(|(k, v)| *k == other_field && !v.trim().is_empty())
                {
                    chosen.push(o.clone());
                }
                if chosen.is_empty() {
                    None
                } else {
                    Some(answers::selection_answer(q, chosen)?)
                }
            }
        };
        match value {
            Some(v) => out.push((q.id.clone(), v)),
            None if q.required => {
                return Err(format!(
                    "question `{}` is required: answer it before submitting",
                    q.id
                ));
            }
            None => {}
        }
    }
    Ok(out)
}

/// Any other task's form: one FreeText answer per field name in the order posted (values of a
/// repeated name joined with `|`), without `assignmentId`. A crowd-form posts `taskAnswers`.
fn plain_answers(fields: &[(String, String)]) -> Vec<(String, AnswerValue)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in fields {
        if k == "assignmentId" {
            continue;
        }
        match out.iter_mut().find(|(name, _)| name == k) {
            Some((_, vals)) => vals.push(v.clone()),
            None => out.push((k.clone(), vec![v.clone()])),
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, AnswerValue::FreeText(v.join("|"))))
        .collect()
}

async fn external_submit(shared: &Shared, content_type: &str, body: &[u8], worker: &str) -> Page {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media != "application/x-www-form-urlencoded" && !media.is_empty() {
        return error_page(
            415,
            worker,
            &format!(
                "externalSubmit takes application/x-www-form-urlencoded forms, not `{media}` (the simulator stores no uploaded files)"
            ),
        );
    }
    let fields = params(&String::from_utf8_lossy(body));
    let Some(id) = param(&fields, "assignmentId").map(str::to_owned) else {
        return error_page(
            400,
            worker,
            "the form has no assignmentId field: post it with the assignmentId the frame was given",
        );
    };
    if id == NOT_AVAILABLE {
        return error_page(
            400,
            worker,
            "this is a preview (assignmentId ASSIGNMENT_ID_NOT_AVAILABLE): accept the HIT first",
        );
    }
    let (result, seq) = shared.with_world(|w, _, now| -> Result<(String, String), String> {
        let (hit, accept) = pending(w, now, &id).ok_or_else(|| {
            format!("assignment `{id}` is not accepted and pending (submitted, returned, abandoned or unknown)")
        })?;
        let answer = match task_of(hit) {
            Task::Form(form) => answers::document(&form_answers(&form, &fields)?),
            _ => answers::document(&plain_answers(&fields)),
        };
        let delay = w
            .hit_types
            .get(&hit.type_id)
            .map(|t| t.auto_approval_delay_secs)
            .unwrap_or(0);
        let (hit_id, accept) = (hit.id.clone(), accept.clone());
        work::submit_accept(w, now, &hit_id, &accept, delay, answer);
        Ok((id.clone(), accept.worker_id))
    });
    if !shared.committed(seq).await {
        return error_page(500, worker, "the simulator could not save the submission");
    }
    match result {
        Ok((id, worker)) => {
            let target = format!("{BASE}/assignment/{}?workerId={}", enc(&id), enc(&worker));
            // The form was posted from inside the task frame; the worker site moves the whole
            // window on, as MTurk does after a submission.
            respond(
                200,
                "text/html; charset=utf-8",
                format!(
                    "<!DOCTYPE html><html><body><p id=\"submitted\">Submitted assignment {}. <a target=\"_top\" href=\"{t}\">See its answer</a>.</p><script>window.top.location.href = {};</script></body></html>",
                    esc(&id),
                    Value::from(target.clone()),
                    t = esc(&target),
                ),
            )
        }
        Err(e) => error_page(400, worker, &e),
    }
}

/// A stand-in for crowd-html-elements that implements only what `<crowd-form>` submission
/// needs. It does not render the real elements' look.
pub const CROWD_STAND_IN: &str = include_str!("crowd_stand_in.js");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_may_use_the_site() {
        let ok = [
            "127.0.0.1:5000",
            "[::1]:5000",
            "[::ffff:127.0.0.1]:5000",
            "127.8.9.1:1",
        ];
        let refused = [
            "10.0.0.1:5000",
            "192.168.1.4:80",
            "[2001:db8::1]:80",
            "[::ffff:10.0.0.1]:80",
            "0.0.0.0:1",
        ];
        for a in ok {
            assert!(is_loopback(&a.parse().unwrap()), "{a}");
        }
        for a in refused {
            assert!(!is_loopback(&a.parse().unwrap()), "{a}");
        }
    }

    #[tokio::test]
    async fn a_request_from_another_machine_gets_403() {
        let shared = Shared::open(crate::SimConfig::default()).unwrap();
        for path in ["/_sim/worker/", "/_sim/worker/mturk/externalSubmit"] {
            let (parts, ()) = hyper::Request::builder()
                .method("POST")
                .uri(path)
                .body(())
                .unwrap()
                .into_parts();
            let site = route(path).unwrap();
            let far = handle(
                &shared,
                "192.0.2.7:40000".parse().unwrap(),
                &parts,
                site,
                b"",
            )
            .await;
            assert_eq!(far.status(), 403);
            let near = handle(
                &shared,
                "127.0.0.1:40000".parse().unwrap(),
                &parts,
                site,
                b"",
            )
            .await;
            assert_ne!(near.status(), 403);
        }
    }

    #[test]
    fn routes_stay_under_the_prefix() {
        assert_eq!(route("/_sim/worker"), Some(""));
        assert_eq!(route("/_sim/worker/hit/X"), Some("/hit/X"));
        assert_eq!(route("/_sim/workers"), None);
        assert_eq!(route("/_sim/work"), None);
    }

    #[test]
    fn plain_forms_become_free_text_answers_in_posted_order() {
        let fields = vec![
            ("assignmentId".to_owned(), "A1".to_owned()),
            ("b".to_owned(), "1".to_owned()),
            ("a".to_owned(), "x".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        assert_eq!(
            plain_answers(&fields),
            vec![
                ("b".to_owned(), AnswerValue::FreeText("1|2".into())),
                ("a".to_owned(), AnswerValue::FreeText("x".into())),
            ]
        );
    }
}
