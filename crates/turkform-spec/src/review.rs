//! `[review]`, `[review.known_answers]` and `[bonuses]` (DESIGN.md section 9): the keys read
//! with their positions, then the decisions, known-answers and bonuses files they name read and
//! checked row by row, every problem reported at once with its file and line, before any call.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use toml::de::DeValue;
use turkform_model::review::MAX_FEEDBACK_CHARS;
use turkform_model::{BonusRow, Decision, DesiredReview, KnownAnswers, Money, ReviewGoal, Verdict};

use crate::campaign::{Loc, relative_to};
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::duration::{DAY, parse_duration};
use crate::toml_read::{FileDiagnostics, Span, Table, kind_of, list};

pub(crate) const REVIEW_KEYS: [&str; 4] = ["decisions", "approve_after", "goal", "known_answers"];
const KNOWN_ANSWERS_KEYS: [&str; 6] = [
    "source",
    "min_answers",
    "reject_below",
    "approve_at_least",
    "block_below",
    "reason",
];
pub(crate) const BONUSES_KEYS: [&str; 1] = ["source"];
const BONUS_COLUMNS: [&str; 5] = ["AssignmentId", "WorkerId", "Amount", "Reason", "Id"];
/// Used when `min_answers` is omitted: one or two gold answers say little about a worker.
const DEFAULT_MIN_ANSWERS: u32 = 3;
/// `approve_after` must leave time to review and must come before MTurk's own auto-approval
/// could (at most 30 days).
const MAX_APPROVE_AFTER_SECS: u64 = 30 * DAY;

/// The review tables of a campaign file, before the files they name are read.
#[derive(Debug, Default)]
pub(crate) struct ReviewDef {
    pub decisions: Option<(PathBuf, Loc)>,
    pub approve_after_secs: Option<u64>,
    pub goal: ReviewGoal,
    pub known: Option<KnownDef>,
    pub bonuses: Option<(PathBuf, Loc)>,
}

#[derive(Debug)]
pub(crate) struct KnownDef {
    pub source: PathBuf,
    pub loc: Loc,
    pub min_answers: u32,
    pub reject_below: Option<f64>,
    pub approve_at_least: Option<f64>,
    pub block_below: Option<f64>,
    pub reason: String,
}

fn csv_path(
    r: &mut FileDiagnostics<'_>,
    file: &Path,
    written: &str,
    span: &Span,
) -> Option<PathBuf> {
    let path = relative_to(file, written);
    if path.extension().is_some_and(|e| e == "csv") {
        Some(path)
    } else {
        r.error(
            span.start,
            format!("`{written}` is not a .csv file"),
            Some("this file is CSV with a header row".into()),
        );
        None
    }
}

fn share(r: &mut FileDiagnostics<'_>, t: &Table<'_, '_>, key: &str) -> Option<f64> {
    let v = t.get(key)?;
    let n = match v.get_ref() {
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
        other => {
            r.error(
                v.span().start,
                format!(
                    "`{key}` in {} must be a number from 0 to 1, not {}",
                    t.label,
                    kind_of(other)
                ),
                Some("write a share of right answers, like 0.6".into()),
            );
            return None;
        }
    };
    match n {
        Some(n) if (0.0..=1.0).contains(&n) => Some(n),
        _ => {
            r.error(
                v.span().start,
                match n {
                    Some(n) => format!("`{key}` = {n} is not a share from 0 to 1"),
                    None => format!("`{key}` is not a number"),
                },
                Some("accuracy is right answers / known answers: write e.g. 0.6".into()),
            );
            None
        }
    }
}

/// Reads `[review]` (with `[review.known_answers]`) and `[bonuses]` of one campaign file.
pub(crate) fn parse_review(
    r: &mut FileDiagnostics<'_>,
    root: &Table<'_, '_>,
    file: &Path,
) -> Option<ReviewDef> {
    let mut out = ReviewDef::default();
    let mut any = false;
    if let Some(t) = root.table(r, "review", "[review]") {
        any = true;
        t.check_keys(
            r,
            &REVIEW_KEYS,
            &[("source", "[review.known_answers] or [bonuses]")],
        );
        if let Some((s, span)) = t.str(
            r,
            "decisions",
            Some("name a CSV file relative to this file"),
        ) {
            out.decisions = csv_path(r, file, s, &span).map(|p| (p, Loc::of(r, span.start)));
        }
        if let Some((s, span)) = t.str(r, "approve_after", None) {
            match parse_duration(s) {
                Ok(secs) if secs == 0 || secs > MAX_APPROVE_AFTER_SECS => r.error(
                    span.start,
                    format!("`approve_after` = \"{s}\" is out of range"),
                    Some("write 1s to 30d, like \"24h\": work is approved this long after submission".into()),
                ),
                Ok(secs) => out.approve_after_secs = Some(secs),
                Err(msg) => r.error(
                    span.start,
                    msg,
                    Some("write a number and a unit, like \"24h\" or \"3d\"".into()),
                ),
            }
        }
        if let Some((s, span)) = t.str(r, "goal", None) {
            match s {
                "submitted" => out.goal = ReviewGoal::Submitted,
                "approved" => out.goal = ReviewGoal::Approved,
                other => r.error(
                    span.start,
                    format!("unknown goal `{other}`"),
                    Some("use `submitted` (the default) or `approved`".into()),
                ),
            }
        }
        if let Some(k) = t.table(r, "known_answers", "[review.known_answers]") {
            out.known = parse_known(r, &k, file);
        }
    }
    if let Some(t) = root.table(r, "bonuses", "[bonuses]") {
        any = true;
        t.check_keys(r, &BONUSES_KEYS, &[]);
        if let Some((s, span)) = t.req_str(
            r,
            "source",
            Some("name a CSV file with AssignmentId, WorkerId, Amount, Reason and optional Id"),
        ) {
            out.bonuses = csv_path(r, file, s, &span).map(|p| (p, Loc::of(r, span.start)));
        }
    }
    any.then_some(out)
}

fn parse_known(r: &mut FileDiagnostics<'_>, t: &Table<'_, '_>, file: &Path) -> Option<KnownDef> {
    t.check_keys(r, &KNOWN_ANSWERS_KEYS, &[]);
    let source = t
        .req_str(
            r,
            "source",
            Some("name the gold CSV: the key column plus one column per answer field"),
        )
        .and_then(|(s, span)| csv_path(r, file, s, &span).map(|p| (p, Loc::of(r, span.start))));
    let min_answers = match t.int(r, "min_answers") {
        Some((n, _)) if (1..=1_000_000).contains(&n) => Some(n as u32),
        Some((n, span)) => {
            r.error(
                span.start,
                format!("`min_answers` = {n} is out of range"),
                Some(
                    "a worker is judged once they answered this many gold items: 1 or more".into(),
                ),
            );
            None
        }
        None if t.has("min_answers") => None,
        None => Some(DEFAULT_MIN_ANSWERS),
    };
    let reject_below = share(r, t, "reject_below");
    let approve_at_least = share(r, t, "approve_at_least");
    let block_below = share(r, t, "block_below");
    let mut ok = ["reject_below", "approve_at_least", "block_below"]
        .iter()
        .zip([reject_below, approve_at_least, block_below])
        .all(|(k, v)| v.is_some() || !t.has(k));
    if let (Some(rej), Some(app)) = (reject_below, approve_at_least)
        && rej > app
    {
        let at = t.span_of("reject_below").map_or(t.at, |s| s.start);
        r.error(
            at,
            format!("`reject_below` = {rej} is above `approve_at_least` = {app}"),
            Some("a worker between the two is left to other rules; keep reject_below <= approve_at_least".into()),
        );
        ok = false;
    }
    if reject_below.is_none() && approve_at_least.is_none() && block_below.is_none() && ok {
        r.error(
            t.at,
            "[review.known_answers] sets none of `reject_below`, `approve_at_least` or `block_below`",
            Some("say what accuracy decides, like `reject_below = 0.6` and `approve_at_least = 0.8`".into()),
        );
        ok = false;
    }
    let needs_reason = reject_below.is_some() || block_below.is_some();
    let reason = match t.str(
        r,
        "reason",
        Some("workers see it as the rejection's feedback"),
    ) {
        Some((s, span)) if s.trim().is_empty() => {
            r.error(
                span.start,
                "`reason` is empty",
                Some("workers see it: say why their work was rejected".into()),
            );
            None
        }
        Some((s, span)) if s.chars().count() > MAX_FEEDBACK_CHARS => {
            r.error(
                span.start,
                format!(
                    "`reason` is {} characters long; MTurk allows at most {MAX_FEEDBACK_CHARS}",
                    s.chars().count()
                ),
                Some("shorten it".into()),
            );
            None
        }
        Some((s, _)) => Some(s.to_owned()),
        None if needs_reason && !t.has("reason") => {
            t.missing(
                r,
                "reason",
                Some("a rejection or block needs a reason the worker sees".into()),
            );
            None
        }
        None if t.has("reason") => None,
        None => Some(String::new()),
    };
    let (source, loc) = source?;
    (ok).then_some(())?;
    Some(KnownDef {
        source,
        loc,
        min_answers: min_answers?,
        reject_below,
        approve_at_least,
        block_below,
        reason: reason?,
    })
}

/// A CSV file read whole, with its header index and every record's line.
pub(crate) struct CsvFile {
    pub headers: Vec<String>,
    pub rows: Vec<(usize, csv::StringRecord)>,
}

pub(crate) fn read_csv(
    path: &Path,
    campaign_file: &Path,
    loc: Loc,
    diags: &mut Vec<Diagnostic>,
    inputs: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Option<CsvFile> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            diags.push(
                Diagnostic::new(
                    campaign_file,
                    loc.line,
                    loc.column,
                    format!("cannot read `{}`: {e}", path.display()),
                )
                .with_hint("paths are relative to the campaign file"),
            );
            return None;
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) if !h.iter().all(str::is_empty) => h.iter().map(|s| s.trim().to_owned()).collect(),
        Ok(_) => {
            diags.push(
                Diagnostic::new(path, 1, 1, "the file has no header row")
                    .with_hint("the first line of a CSV file names its columns"),
            );
            return None;
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                path,
                1,
                1,
                format!("cannot read the header row: {e}"),
            ));
            return None;
        }
    };
    let mut seen = HashSet::new();
    for h in &headers {
        if !seen.insert(h.as_str()) {
            diags.push(
                Diagnostic::new(
                    path,
                    1,
                    1,
                    format!("column `{h}` appears twice in the header row"),
                )
                .with_hint("rename or remove one of them"),
            );
            return None;
        }
    }
    let mut rows = Vec::new();
    let mut ok = true;
    // The reader's own line numbers do not count the blank lines it skips, so a row after one
    // would be named a line too early: the physical line is counted from the record's byte
    // offset instead (once over the file, rows come in order).
    let (mut counted_to, mut line_at) = (0usize, 1usize);
    let mut physical_line = |byte: u64| -> usize {
        let mut start = usize::try_from(byte)
            .unwrap_or(bytes.len())
            .min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
            start += 1;
        }
        if start > counted_to {
            line_at += bytes[counted_to..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            counted_to = start;
        }
        line_at
    };
    for (i, record) in reader.into_records().enumerate() {
        match record {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| physical_line(p.byte()));
                rows.push((line, rec));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| physical_line(p.byte()));
                diags.push(
                    Diagnostic::new(path, line, 1, format!("row {} cannot be read: {e}", i + 1))
                        .with_hint("quote fields that contain commas, quotes or line breaks"),
                );
                ok = false;
            }
        }
    }
    inputs.push((path.to_owned(), bytes));
    ok.then_some(CsvFile { headers, rows })
}

fn column(f: &CsvFile, name: &str) -> Option<usize> {
    f.headers.iter().position(|h| h == name)
}

pub(crate) fn missing_column(path: &Path, name: &str, f: &CsvFile, why: &str) -> Diagnostic {
    let hint = match did_you_mean(name, f.headers.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`? {why}"),
        None => why.to_owned(),
    };
    Diagnostic::new(path, 1, 1, format!("the file has no `{name}` column")).with_hint(hint)
}

/// An `Approve` cell that only marks the row: anything else is feedback sent with the approval.
fn is_plain_mark(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "x" | "yes" | "y" | "true" | "1" | "approve"
    )
}

fn read_decisions(path: &Path, f: &CsvFile, diags: &mut Vec<Diagnostic>) -> Vec<Decision> {
    let mut out = Vec::new();
    let Some(id_col) = column(f, "AssignmentId") else {
        diags.push(missing_column(
            path,
            "AssignmentId",
            f,
            "a decisions file names each assignment in `AssignmentId`",
        ));
        return out;
    };
    let approve = column(f, "Approve");
    let reject = column(f, "Reject");
    if approve.is_none() && reject.is_none() {
        diags.push(
            Diagnostic::new(path, 1, 1, "the file has neither an `Approve` nor a `Reject` column")
                .with_hint("mark rows with an `x` in `Approve`, or a reason in `Reject` (a results export has both)"),
        );
        return out;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, rec) in &f.rows {
        let cell = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim();
        let (a, rj) = (cell(approve), cell(reject));
        if a.is_empty() && rj.is_empty() {
            continue;
        }
        let id = cell(Some(id_col));
        if id.is_empty() {
            diags.push(
                Diagnostic::new(path, *line, 1, "a marked row has no `AssignmentId`")
                    .with_hint("every decision names the assignment it decides"),
            );
            continue;
        }
        if let Some(first) = seen.get(id) {
            diags.push(
                Diagnostic::new(
                    path,
                    *line,
                    1,
                    format!("assignment `{id}` is decided twice: lines {first} and {line}"),
                )
                .with_hint("keep one decision per assignment"),
            );
            continue;
        }
        seen.insert(id.to_owned(), *line);
        if !a.is_empty() && !rj.is_empty() {
            diags.push(
                Diagnostic::new(
                    path,
                    *line,
                    1,
                    format!("assignment `{id}` is marked both Approve and Reject"),
                )
                .with_hint(
                    "clear one of them: to reverse a rejection, mark Approve and clear Reject",
                ),
            );
            continue;
        }
        let feedback = if rj.is_empty() { a } else { rj };
        let n = feedback.chars().count();
        if n > MAX_FEEDBACK_CHARS && !(rj.is_empty() && is_plain_mark(a)) {
            diags.push(
                Diagnostic::new(path, *line, 1, format!("the feedback for `{id}` is {n} characters long; MTurk allows at most {MAX_FEEDBACK_CHARS}"))
                    .with_hint(format!("shorten it by {} characters", n - MAX_FEEDBACK_CHARS)),
            );
            continue;
        }
        let verdict = if rj.is_empty() {
            Verdict::Approve {
                feedback: (!is_plain_mark(a)).then(|| a.to_owned()),
            }
        } else {
            Verdict::Reject {
                feedback: rj.to_owned(),
            }
        };
        out.push(Decision {
            assignment_id: id.to_owned(),
            verdict,
            file: path.to_owned(),
            line: *line,
        });
    }
    out
}

fn read_bonuses(path: &Path, f: &CsvFile, diags: &mut Vec<Diagnostic>) -> Vec<BonusRow> {
    let mut out = Vec::new();
    let mut ok = true;
    for h in &f.headers {
        if !BONUS_COLUMNS.contains(&h.as_str()) {
            let hint = match did_you_mean(h, BONUS_COLUMNS) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "a bonuses file has only the columns {}",
                    list(&BONUS_COLUMNS)
                ),
            };
            diags
                .push(Diagnostic::new(path, 1, 1, format!("unknown column `{h}`")).with_hint(hint));
            ok = false;
        }
    }
    let mut cols = [0usize; 4];
    for (i, name) in BONUS_COLUMNS[..4].iter().enumerate() {
        match column(f, name) {
            Some(c) => cols[i] = c,
            // A misspelt column is already reported as unknown, with this name as the hint.
            None if f.headers.iter().any(|h| {
                !BONUS_COLUMNS.contains(&h.as_str()) && did_you_mean(h, [*name]).is_some()
            }) =>
            {
                ok = false
            }
            None => {
                diags.push(missing_column(
                    path,
                    name,
                    f,
                    "a bonuses file has AssignmentId, WorkerId, Amount, Reason and optional Id",
                ));
                ok = false;
            }
        }
    }
    if !ok {
        return out;
    }
    let id_col = column(f, "Id");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, rec) in &f.rows {
        let cell = |c: usize| rec.get(c).unwrap_or("").trim();
        let (assignment, worker, amount, reason) =
            (cell(cols[0]), cell(cols[1]), cell(cols[2]), cell(cols[3]));
        let id = id_col.map(cell).filter(|s| !s.is_empty());
        if assignment.is_empty() && worker.is_empty() && amount.is_empty() && reason.is_empty() {
            continue;
        }
        let mut row_ok = true;
        let mut err = |msg: String, hint: &str| {
            diags.push(Diagnostic::new(path, *line, 1, msg).with_hint(hint));
            row_ok = false;
        };
        if assignment.is_empty() {
            err(
                "a bonus row has no `AssignmentId`".into(),
                "a bonus is paid for one assignment: name it",
            );
        }
        if worker.is_empty() {
            err(
                "a bonus row has no `WorkerId`".into(),
                "name the worker who did the assignment",
            );
        }
        if reason.is_empty() {
            err(
                "a bonus row has no `Reason`".into(),
                "workers see the reason with the payment",
            );
        } else if reason.chars().count() > MAX_FEEDBACK_CHARS {
            err(
                format!(
                    "the reason is {} characters long; turkform allows at most {MAX_FEEDBACK_CHARS}",
                    reason.chars().count()
                ),
                "shorten it",
            );
        }
        let money = match amount.parse::<Money>() {
            Ok(m) if m.cents() > 0 => Some(m),
            Ok(m) => {
                err(
                    format!("bonus amount {m} is not above zero"),
                    "a bonus is at least \"0.01\"",
                );
                None
            }
            Err(e) => {
                err(
                    e.to_string(),
                    "write dollars with at most two decimals, like \"0.25\"",
                );
                None
            }
        };
        if !assignment.is_empty() {
            let identity = turkform_model::bonus_identity(assignment, id);
            if let Some(first) = seen.get(&identity) {
                let what = match id {
                    Some(id) => format!("assignment `{assignment}` with Id `{id}`"),
                    None => format!("assignment `{assignment}` (without an Id)"),
                };
                err(
                    format!("{what} has two bonus rows: lines {first} and {line}"),
                    "one row is one payment: give a second bonus for the same assignment its own `Id`",
                );
            } else {
                seen.insert(identity, *line);
            }
        }
        if let (true, Some(amount)) = (row_ok, money) {
            out.push(BonusRow {
                assignment_id: assignment.to_owned(),
                worker_id: worker.to_owned(),
                amount,
                reason: reason.to_owned(),
                id: id.map(str::to_owned),
                file: path.to_owned(),
                line: *line,
            });
        }
    }
    out
}

fn read_known(
    def: &KnownDef,
    key: &str,
    item_keys: &HashSet<&str>,
    f: &CsvFile,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let path = def.source.as_path();
    let mut out = BTreeMap::new();
    let Some(key_col) = column(f, key) else {
        diags.push(missing_column(
            path,
            key,
            f,
            "a known-answers file has the campaign's key column plus one column per answer field",
        ));
        return out;
    };
    if f.headers.len() < 2 {
        diags.push(
            Diagnostic::new(path, 1, 1, "the file has no answer columns")
                .with_hint("add one column per answer field, named as the field (like `label`)"),
        );
        return out;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, rec) in &f.rows {
        let item = rec.get(key_col).unwrap_or("").trim();
        if item.is_empty() {
            diags.push(
                Diagnostic::new(path, *line, 1, format!("a row has an empty `{key}`"))
                    .with_hint("name the gold item by its key"),
            );
            continue;
        }
        if !item_keys.contains(item) {
            let hint = match did_you_mean(item, item_keys.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "known answers are for items of this campaign's data file".to_owned(),
            };
            diags.push(
                Diagnostic::new(path, *line, 1, format!("no item `{item}` in the campaign"))
                    .with_hint(hint),
            );
            continue;
        }
        if let Some(first) = seen.get(item) {
            diags.push(
                Diagnostic::new(
                    path,
                    *line,
                    1,
                    format!("item `{item}` has two known-answer rows: lines {first} and {line}"),
                )
                .with_hint("keep one row per gold item"),
            );
            continue;
        }
        seen.insert(item.to_owned(), *line);
        let fields: BTreeMap<String, String> = f
            .headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != key_col)
            .filter_map(|(i, h)| {
                let v = rec.get(i).unwrap_or("").trim();
                (!v.is_empty()).then(|| (h.clone(), v.to_owned()))
            })
            .collect();
        if fields.is_empty() {
            diags.push(
                Diagnostic::new(path, *line, 1, format!("item `{item}` has no known answer"))
                    .with_hint("fill in at least one answer column, or remove the row"),
            );
            continue;
        }
        out.insert(item.to_owned(), fields);
    }
    out
}

/// Reads the files a campaign's review tables name. `None` when any of them has a problem
/// (reported in `diags`).
pub(crate) fn load_review(
    def: &ReviewDef,
    campaign_file: &Path,
    key: &str,
    item_keys: &HashSet<&str>,
    diags: &mut Vec<Diagnostic>,
    inputs: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Option<DesiredReview> {
    let start = diags.len();
    let mut out = DesiredReview {
        approve_after_secs: def.approve_after_secs,
        goal: def.goal,
        ..DesiredReview::default()
    };
    if let Some((path, loc)) = &def.decisions
        && let Some(f) = read_csv(path, campaign_file, *loc, diags, inputs)
    {
        out.decisions = read_decisions(path, &f, diags);
        out.decisions_file = Some(path.clone());
    }
    if let Some(k) = &def.known
        && let Some(f) = read_csv(&k.source, campaign_file, k.loc, diags, inputs)
    {
        let gold = read_known(k, key, item_keys, &f, diags);
        out.known_answers = Some(KnownAnswers {
            file: k.source.clone(),
            gold,
            min_answers: k.min_answers,
            reject_below: k.reject_below,
            approve_at_least: k.approve_at_least,
            block_below: k.block_below,
            reason: k.reason.clone(),
        });
    }
    if let Some((path, loc)) = &def.bonuses
        && let Some(f) = read_csv(path, campaign_file, *loc, diags, inputs)
    {
        out.bonuses = read_bonuses(path, &f, diags);
        out.bonuses_file = Some(path.clone());
    }
    (diags.len() == start).then_some(out)
}
