//! Workers and notifications as code (DESIGN.md section 9): the blocks file `[workers] blocks`
//! of `turkform.toml`, the `grants` file of a custom qualification type, and a campaign's
//! `[notifications]`. The files are read and checked row by row like the decisions and bonuses
//! files (`crate::review`): every problem at once, each at its file and line, before any call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use turkform_model::review::MAX_FEEDBACK_CHARS;
use turkform_model::workers::{NOTIFICATION_EVENTS, sqs_destination};
use turkform_model::{BlockRow, GrantFile, GrantRow, NotificationSettings, NotificationTransport};

use crate::campaign::Loc;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::review::{CsvFile, missing_column, read_csv};
use crate::toml_read::{FileDiagnostics, Table, list};

pub(crate) const NOTIFICATIONS_KEYS: [&str; 3] = ["destination", "transport", "events"];
const BLOCK_COLUMNS: [&str; 2] = ["WorkerId", "Reason"];
const GRANT_COLUMNS: [&str; 2] = ["WorkerId", "Value"];

/// Where a file is named (for "cannot read" diagnostics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredAt {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// MTurk's `CustomerId` rule for a WorkerId: `A` then upper-case letters and digits, 64 at most.
pub(crate) fn is_worker_id(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with('A')
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Unknown columns of a workers file, each with a did-you-mean hint; `false` when any.
fn check_columns(path: &Path, f: &CsvFile, allowed: &[&str], diags: &mut Vec<Diagnostic>) -> bool {
    let mut ok = true;
    for h in &f.headers {
        if !allowed.contains(&h.as_str()) {
            let hint = match did_you_mean(h, allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("this file has only the columns {}", list(allowed)),
            };
            diags
                .push(Diagnostic::new(path, 1, 1, format!("unknown column `{h}`")).with_hint(hint));
            ok = false;
        }
    }
    for name in allowed {
        if !f.headers.iter().any(|h| h == name) {
            let misspelt = f
                .headers
                .iter()
                .any(|h| !allowed.contains(&h.as_str()) && did_you_mean(h, [*name]).is_some());
            if !misspelt {
                diags.push(missing_column(
                    path,
                    name,
                    f,
                    &format!("this file has the columns {}", list(allowed)),
                ));
            }
            ok = false;
        }
    }
    ok
}

/// The WorkerId cell of a row: checked, and unique within the file.
fn worker_cell<'r>(
    path: &Path,
    line: usize,
    worker: &'r str,
    seen: &mut HashMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'r str> {
    if worker.is_empty() {
        diags.push(
            Diagnostic::new(path, line, 1, "a row has no `WorkerId`")
                .with_hint("name the worker, like A1B2C3D4E5F6G7"),
        );
        return None;
    }
    if !is_worker_id(worker) {
        diags.push(
            Diagnostic::new(path, line, 1, format!("`{worker}` is not a WorkerId")).with_hint(
                "a WorkerId is `A` followed by upper-case letters and digits, at most 64",
            ),
        );
        return None;
    }
    if let Some(first) = seen.get(worker) {
        diags.push(
            Diagnostic::new(
                path,
                line,
                1,
                format!("worker `{worker}` has two rows: lines {first} and {line}"),
            )
            .with_hint("keep one row per worker"),
        );
        return None;
    }
    seen.insert(worker.to_owned(), line);
    Some(worker)
}

/// Reads and checks the blocks file (`WorkerId, Reason`). `None` when it has a problem.
pub(crate) fn load_blocks(
    path: &Path,
    declared: &DeclaredAt,
    diags: &mut Vec<Diagnostic>,
    inputs: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Option<Vec<BlockRow>> {
    let start = diags.len();
    let loc = Loc {
        line: declared.line,
        column: declared.column,
    };
    let f = read_csv(path, &declared.file, loc, diags, inputs)?;
    if !check_columns(path, &f, &BLOCK_COLUMNS, diags) {
        return None;
    }
    let (w, r) = (col(&f, "WorkerId"), col(&f, "Reason"));
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for (line, rec) in &f.rows {
        let cell = |c: usize| rec.get(c).unwrap_or("").trim();
        let (worker, reason) = (cell(w), cell(r));
        if worker.is_empty() && reason.is_empty() {
            continue;
        }
        let worker = worker_cell(path, *line, worker, &mut seen, diags);
        if reason.is_empty() {
            diags.push(
                Diagnostic::new(path, *line, 1, "a block row has an empty `Reason`").with_hint(
                    "MTurk requires a reason for every block: say why, for your records",
                ),
            );
            continue;
        }
        if reason.chars().count() > MAX_FEEDBACK_CHARS {
            diags.push(
                Diagnostic::new(
                    path,
                    *line,
                    1,
                    format!(
                        "the reason is {} characters long; turkform allows at most {MAX_FEEDBACK_CHARS}",
                        reason.chars().count()
                    ),
                )
                .with_hint("shorten it"),
            );
            continue;
        }
        if let Some(worker) = worker {
            out.push(BlockRow {
                worker_id: worker.to_owned(),
                reason: reason.to_owned(),
                file: path.to_owned(),
                line: *line,
            });
        }
    }
    (diags.len() == start).then_some(out)
}

/// Reads and checks a qualification type's grants file (`WorkerId, Value`).
pub(crate) fn load_grants(
    qualification: &str,
    path: &Path,
    campaign_file: &Path,
    loc: Loc,
    diags: &mut Vec<Diagnostic>,
    inputs: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Option<GrantFile> {
    let start = diags.len();
    let f = read_csv(path, campaign_file, loc, diags, inputs)?;
    if !check_columns(path, &f, &GRANT_COLUMNS, diags) {
        return None;
    }
    let (w, v) = (col(&f, "WorkerId"), col(&f, "Value"));
    let mut seen = HashMap::new();
    let mut rows = Vec::new();
    for (line, rec) in &f.rows {
        let cell = |c: usize| rec.get(c).unwrap_or("").trim();
        let (worker, value) = (cell(w), cell(v));
        if worker.is_empty() && value.is_empty() {
            continue;
        }
        let worker = worker_cell(path, *line, worker, &mut seen, diags);
        let value = match value.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => {
                diags.push(
                    Diagnostic::new(
                        path,
                        *line,
                        1,
                        if value.is_empty() {
                            "a grant row has an empty `Value`".to_owned()
                        } else {
                            format!("`{value}` is not an integer value")
                        },
                    )
                    .with_hint("a qualification's value is a whole number, like 1 or 80"),
                );
                None
            }
        };
        if let (Some(worker), Some(value)) = (worker, value) {
            rows.push(GrantRow {
                worker_id: worker.to_owned(),
                value,
                line: *line,
            });
        }
    }
    (diags.len() == start).then(|| GrantFile {
        qualification: qualification.to_owned(),
        file: path.to_owned(),
        rows,
    })
}

fn col(f: &CsvFile, name: &str) -> usize {
    f.headers.iter().position(|h| h == name).unwrap_or(0)
}

/// `account:name` (or `account/name`) of a destination: a 12-digit account and a queue or
/// topic name of letters, digits, `-` and `_` (with an optional `.fifo`), 256 at most.
fn account_and_name(rest: &str, sep: char) -> bool {
    let Some((account, name)) = rest.split_once(sep) else {
        return false;
    };
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !base.is_empty()
        && name.len() <= 256
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn region_then(rest: &str, sep: char) -> Option<&str> {
    let (region, rest) = rest.split_once(sep)?;
    (!region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    .then_some(rest)
}

/// Whether `written` is a destination of `transport`: for SQS the queue's ARN
/// (`arn:aws:sqs:REGION:ACCOUNT:NAME`) or URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`),
/// for SNS the topic's ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`).
pub(crate) fn valid_destination(transport: NotificationTransport, written: &str) -> bool {
    match transport {
        NotificationTransport::Sqs => {
            if let Some(rest) = written.strip_prefix("arn:aws:sqs:") {
                region_then(rest, ':').is_some_and(|r| account_and_name(r, ':'))
            } else if let Some(rest) = written.strip_prefix("https://sqs.") {
                rest.split_once(".amazonaws.com/")
                    .is_some_and(|(region, r)| {
                        region_then(&format!("{region}:"), ':').is_some()
                            && account_and_name(r, '/')
                    })
            } else {
                false
            }
        }
        NotificationTransport::Sns => written
            .strip_prefix("arn:aws:sns:")
            .and_then(|rest| region_then(rest, ':'))
            .is_some_and(|r| account_and_name(r, ':')),
    }
}

/// Reads a campaign's `[notifications]`; `None` when absent or wrong (reported).
pub(crate) fn parse_notifications(
    r: &mut FileDiagnostics<'_>,
    root: &Table<'_, '_>,
) -> Option<NotificationSettings> {
    let t = root.table(r, "notifications", "[notifications]")?;
    t.check_keys(r, &NOTIFICATIONS_KEYS, &[]);
    let transport = match t.req_str(r, "transport", Some("`SQS` or `SNS`")) {
        Some(("SQS", _)) => Some(NotificationTransport::Sqs),
        Some(("SNS", _)) => Some(NotificationTransport::Sns),
        Some((other, span)) => {
            r.error(
                span.start,
                format!("unknown transport `{other}`"),
                Some("use `SQS` (a queue) or `SNS` (a topic)".into()),
            );
            None
        }
        None => None,
    };
    let destination = t.req_str(
        r,
        "destination",
        Some("the queue's or topic's ARN, like \"arn:aws:sqs:us-east-1:123456789012:turk-events\""),
    );
    let destination = match (transport, destination) {
        (Some(tr), Some((d, span))) => {
            if valid_destination(tr, d) {
                Some(match tr {
                    NotificationTransport::Sqs => sqs_destination(d),
                    NotificationTransport::Sns => d.to_owned(),
                })
            } else {
                let hint = match tr {
                    NotificationTransport::Sqs => {
                        "an SQS destination is the queue's ARN, `arn:aws:sqs:REGION:ACCOUNT:NAME` (or its URL, `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`), with a 12-digit account"
                    }
                    NotificationTransport::Sns => {
                        "an SNS destination is the topic's ARN, `arn:aws:sns:REGION:ACCOUNT:NAME`, with a 12-digit account"
                    }
                };
                r.error(
                    span.start,
                    format!("`{d}` is not an {} destination", tr.api_name()),
                    Some(hint.into()),
                );
                None
            }
        }
        _ => None,
    };
    let events = match t.str_list(r, "events") {
        Some((items, span)) => {
            let mut events: Vec<String> = Vec::new();
            let mut ok = true;
            for (e, at) in items {
                if NOTIFICATION_EVENTS.contains(&e) {
                    if !events.iter().any(|x| x == e) {
                        events.push(e.to_owned());
                    }
                } else {
                    let hint = match did_you_mean(e, NOTIFICATION_EVENTS) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("MTurk's events are {}", list(&NOTIFICATION_EVENTS)),
                    };
                    r.error(at.start, format!("unknown event `{e}`"), Some(hint));
                    ok = false;
                }
            }
            if events.is_empty() && ok {
                r.error(
                    span.start,
                    "`events` is empty",
                    Some("name at least one event, like \"AssignmentSubmitted\"".into()),
                );
                ok = false;
            }
            events.sort();
            ok.then_some(events)
        }
        None if !t.has("events") => {
            t.missing(
                r,
                "events",
                Some("name the events to send, like [\"AssignmentSubmitted\"]".into()),
            );
            None
        }
        None => None,
    };
    Some(NotificationSettings {
        destination: destination?,
        transport: transport?,
        events: events?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_checked_per_transport() {
        let sqs = NotificationTransport::Sqs;
        let sns = NotificationTransport::Sns;
        assert!(valid_destination(
            sqs,
            "arn:aws:sqs:us-east-1:123456789012:turk-events"
        ));
        assert!(valid_destination(
            sqs,
            "https://sqs.us-east-1.amazonaws.com/123456789012/q"
        ));
        assert!(valid_destination(
            sqs,
            "arn:aws:sqs:us-east-1:123456789012:q.fifo"
        ));
        assert!(!valid_destination(
            sqs,
            "arn:aws:sns:us-east-1:123456789012:t"
        ));
        assert!(!valid_destination(sqs, "arn:aws:sqs:us-east-1:1234:q"));
        assert!(!valid_destination(sqs, "arn:aws:sqs::123456789012:q"));
        assert!(valid_destination(
            sns,
            "arn:aws:sns:us-east-1:123456789012:topic_1"
        ));
        assert!(!valid_destination(
            sns,
            "arn:aws:sqs:us-east-1:123456789012:t"
        ));
        assert!(!valid_destination(
            sns,
            "arn:aws:sns:us-east-1:123456789012:"
        ));
    }

    #[test]
    fn worker_ids_follow_mturk() {
        assert!(is_worker_id("A1B2C3"));
        assert!(!is_worker_id("B1"));
        assert!(!is_worker_id("a1b2"));
        assert!(!is_worker_id(&format!("A{}", "1".repeat(64))));
    }
}
