//! One campaign file -> [`CampaignDef`]: every key read with its position, every rule of
//! DESIGN.md section 3 that can be checked without opening templates or data files.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use turkform_model::{
    CampaignStatus, HitTypeSpec, Lifetime, Money, QualificationTypeSpec, Target, UnixTime,
};

use crate::duration::{DAY, parse_duration};
use crate::qualifications::{ALIASES, CustomTypes, MAX_REQUIREMENTS, parse_requirement};
use crate::toml_read::{FileDiagnostics, Span, Table, kind_of};

/// A position in a file, kept after the file's text is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub line: usize,
    pub column: usize,
}

impl Loc {
    pub fn of(r: &FileDiagnostics<'_>, offset: usize) -> Loc {
        let (line, column) = r.src.position(offset);
        Loc { line, column }
    }
}

/// Keys of each table, for unknown-key checks and "belongs in" hints.
pub(crate) const ROOT_KEYS: [&str; 10] = [
    "name",
    "review",
    "bonuses",
    "notifications",
    "status",
    "hit_type",
    "layout",
    "items",
    "budget",
    "qualification_types",
];
const HIT_TYPE_KEYS: [&str; 7] = [
    "title",
    "description",
    "keywords",
    "reward",
    "assignment_duration",
    "auto_approval_delay",
    "qualifications",
];
const LAYOUT_KEYS: [&str; 6] = [
    "html",
    "external_url",
    "question_form",
    "hit_layout_id",
    "frame_height",
    "parameters",
];
const ITEMS_KEYS: [&str; 5] = ["source", "key", "assignments", "lifetime", "ends_at"];
const BUDGET_KEYS: [&str; 1] = ["max_spend"];
const QUALIFICATION_TYPE_KEYS: [&str; 6] = [
    "grants",
    "description",
    "keywords",
    "auto_granted",
    "auto_granted_value",
    "status",
];
const LAYOUT_KINDS: [&str; 4] = ["html", "external_url", "question_form", "hit_layout_id"];

/// Where each key really lives, to answer "unknown key" with "it belongs in [items]".
const ELSEWHERE: [(&str, &str); 18] = [
    ("title", "[hit_type]"),
    ("description", "[hit_type]"),
    ("keywords", "[hit_type]"),
    ("reward", "[hit_type]"),
    ("assignment_duration", "[hit_type]"),
    ("auto_approval_delay", "[hit_type]"),
    (
        "qualifications",
        "[hit_type] as [[hit_type.qualifications]]",
    ),
    ("html", "[layout]"),
    ("external_url", "[layout]"),
    ("question_form", "[layout]"),
    ("hit_layout_id", "[layout]"),
    ("frame_height", "[layout]"),
    ("source", "[items]"),
    ("key", "[items]"),
    ("assignments", "[items]"),
    ("lifetime", "[items]"),
    ("ends_at", "[items]"),
    ("max_spend", "[budget]"),
];

/// MTurk limits (legacy API reference, see reference/mturk-api.md).
pub const MAX_TITLE_CHARS: usize = 128;
pub const MAX_DESCRIPTION_CHARS: usize = 1999;
pub const MAX_KEYWORDS_CHARS: usize = 999;
pub const MIN_DURATION_SECS: u64 = 30;
pub const MAX_DURATION_SECS: u64 = 365 * DAY;
pub const MAX_AUTO_APPROVAL_SECS: u64 = 30 * DAY;
/// Used when `auto_approval_delay` is omitted. MTurk's own default is 30 days, which leaves
/// workers unpaid for a month when a requester forgets to review; 3 days is the common choice.
pub const DEFAULT_AUTO_APPROVAL_SECS: u64 = 3 * DAY;
pub const MAX_ASSIGNMENTS: i64 = 1_000_000_000;

/// A campaign file, parsed; the items are rendered later from `layout` and `items`.
#[derive(Debug)]
pub(crate) struct CampaignDef {
    pub name: String,
    /// Where the name comes from (the `name` key, or line 1 for the file stem).
    pub name_loc: Loc,
    pub file: PathBuf,
    pub status: CampaignStatus,
    pub hit_type: Option<HitTypeSpec>,
    pub assignments: Option<u32>,
    pub lifetime: Option<Lifetime>,
    pub max_spend: Option<Money>,
    pub layout: Option<LayoutDef>,
    pub items: Option<ItemsDef>,
    /// `[review]` / `[bonuses]`, when the file has either; their files are read later.
    pub review: Option<crate::review::ReviewDef>,
    /// `[notifications]`, checked.
    pub notifications: Option<turkform_model::NotificationSettings>,
}

/// How the question of each item is made.
#[derive(Debug, Clone)]
pub(crate) enum LayoutDef {
    Html {
        template: PathBuf,
        loc: Loc,
        frame_height: u32,
    },
    ExternalUrl {
        source: String,
        loc: Loc,
        frame_height: u32,
    },
    QuestionForm {
        template: PathBuf,
        loc: Loc,
    },
    HitLayout {
        id: String,
        parameters: Vec<(String, String, Loc)>,
    },
}

/// Where the items come from.
#[derive(Debug, Clone)]
pub(crate) struct ItemsDef {
    pub source: PathBuf,
    pub source_loc: Loc,
    pub key: String,
    pub key_loc: Loc,
}

/// Whether `name` is a valid campaign name: `[a-z0-9][a-z0-9-]{0,39}`.
pub(crate) fn valid_campaign_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A path written in a campaign file, resolved against the file's folder (for reading) and
/// cleaned (for display).
pub(crate) fn relative_to(file: &Path, written: &str) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    crate::diagnostic::clean_path(&dir.join(written))
}

fn money(
    r: &mut FileDiagnostics<'_>,
    t: &Table<'_, '_>,
    key: &str,
    required: bool,
) -> Option<(Money, Span)> {
    let hint = "write dollars as a string with at most two decimals, like \"0.12\" (money is never a float)";
    let v = t.get(key);
    if let Some(v) = v
        && matches!(v.get_ref(), DeValue::Float(_) | DeValue::Integer(_))
    {
        r.error(
            v.span().start,
            format!(
                "`{key}` must be a string such as \"0.12\", not {}",
                kind_of(v.get_ref())
            ),
            Some(hint.into()),
        );
        return None;
    }
    let (s, span) = if required {
        t.req_str(r, key, Some(hint))?
    } else {
        t.str(r, key, Some(hint))?
    };
    match s.parse::<Money>() {
        Ok(m) => Some((m, span)),
        Err(e) => {
            let hint = if s
                .split_once('.')
                .is_some_and(|(_, f)| f.len() > 2 && f.bytes().all(|b| b.is_ascii_digit()))
            {
                "MTurk amounts have at most two decimals (whole cents)".to_owned()
            } else {
                hint.to_owned()
            };
            r.error(span.start, e.to_string(), Some(hint));
            None
        }
    }
}

fn duration(
    r: &mut FileDiagnostics<'_>,
    t: &Table<'_, '_>,
    key: &str,
    required: bool,
    min: u64,
    max: u64,
) -> Option<u64> {
    let hint = "write a number and a unit, like \"30s\", \"10m\", \"3h\" or \"7d\"";
    if let Some(v) = t.get(key)
        && let DeValue::Integer(_) = v.get_ref()
    {
        r.error(
            v.span().start,
            format!("`{key}` must be a string with a unit, like \"10m\""),
            Some(hint.into()),
        );
        return None;
    }
    let (s, span) = if required {
        t.req_str(r, key, Some(hint))?
    } else {
        t.str(r, key, Some(hint))?
    };
    match parse_duration(s) {
        Ok(secs) if secs < min || secs > max => {
            use turkform_model::time::format_duration;
            r.error(
                span.start,
                format!("`{key}` = \"{s}\" is out of range"),
                Some(format!(
                    "MTurk accepts {} to {} here",
                    format_duration(min),
                    format_duration(max)
                )),
            );
            None
        }
        Ok(secs) => Some(secs),
        Err(msg) => {
            r.error(span.start, msg, Some(hint.into()));
            None
        }
    }
}

fn check_len(
    r: &mut FileDiagnostics<'_>,
    key: &str,
    value: &str,
    span: &Span,
    max_chars: usize,
    what: &str,
) -> bool {
    let n = value.chars().count();
    if n > max_chars {
        r.error(
            span.start,
            format!("`{key}` is {n} characters long; MTurk allows {what}"),
            Some(format!("shorten it by {} characters", n - max_chars)),
        );
        false
    } else {
        true
    }
}

fn parse_hit_type(
    r: &mut FileDiagnostics<'_>,
    root: &Table<'_, '_>,
    target: Target,
    custom: &CustomTypes,
) -> Option<HitTypeSpec> {
    let Some(t) = root.table(r, "hit_type", "[hit_type]") else {
        if !root.has("hit_type") {
            root.missing(r, "hit_type", Some("add a [hit_type] table with title, description, reward and assignment_duration".into()));
        }
        return None;
    };
    t.check_keys(r, &HIT_TYPE_KEYS, &ELSEWHERE);
    let mut ok = true;
    let title = t.req_str(r, "title", None);
    if let Some((s, span)) = &title {
        if s.trim().is_empty() {
            r.error(
                span.start,
                "`title` is empty",
                Some("workers choose HITs by title: say what the task is".into()),
            );
            ok = false;
        }
        ok &= check_len(r, "title", s, span, MAX_TITLE_CHARS, "at most 128");
    }
    let description = t.req_str(r, "description", None);
    if let Some((s, span)) = &description {
        if s.trim().is_empty() {
            r.error(
                span.start,
                "`description` is empty",
                Some("say what the task involves and how long it takes".into()),
            );
            ok = false;
        }
        ok &= check_len(
            r,
            "description",
            s,
            span,
            MAX_DESCRIPTION_CHARS,
            "fewer than 2000",
        );
    }
    let mut keywords = Vec::new();
    if let Some((list, span)) = t.str_list(r, "keywords") {
        keywords = list.iter().map(|(k, _)| k.trim().to_owned()).collect();
        if let Some((_, s)) = list.iter().find(|(k, _)| k.trim().is_empty()) {
            r.error(s.start, "empty keyword", Some("remove it".into()));
            ok = false;
        }
        let joined = keywords.join(", ");
        ok &= check_len(
            r,
            "keywords",
            &joined,
            &span,
            MAX_KEYWORDS_CHARS,
            "fewer than 1000 (joined with \", \")",
        );
    } else if t.has("keywords") {
        ok = false;
    }
    let reward = money(r, &t, "reward", true);
    if let Some((m, span)) = &reward
        && m.cents() < 1
    {
        r.error(
            span.start,
            format!("reward {m} is below MTurk's minimum"),
            Some("the minimum reward is $0.01 (\"0.01\")".into()),
        );
        ok = false;
    }
    let assignment_duration = duration(
        r,
        &t,
        "assignment_duration",
        true,
        MIN_DURATION_SECS,
        MAX_DURATION_SECS,
    );
    let auto_approval = if t.has("auto_approval_delay") {
        duration(
            r,
            &t,
            "auto_approval_delay",
            false,
            0,
            MAX_AUTO_APPROVAL_SECS,
        )
    } else {
        Some(DEFAULT_AUTO_APPROVAL_SECS)
    };

    let mut qualifications = Vec::new();
    if let Some(v) = t.get("qualifications") {
        match v.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i == MAX_REQUIREMENTS {
                        r.error(
                            item.span().start,
                            format!("too many qualification requirements: {} (MTurk allows at most {MAX_REQUIREMENTS})", items.len()),
                            Some("remove some, or combine countries into one `in` requirement".into()),
                        );
                        ok = false;
                    }
                    let DeValue::Table(table) = item.get_ref() else {
                        r.error(
                            item.span().start,
                            "each qualification requirement must be a table",
                            Some("write [[hit_type.qualifications]] sections".into()),
                        );
                        ok = false;
                        continue;
                    };
                    let t = Table::new(
                        table,
                        item.span().start,
                        format!("qualification requirement #{}", i + 1),
                    );
                    match parse_requirement(r, &t, target, custom) {
                        Some(q) => qualifications.push(q),
                        None => ok = false,
                    }
                }
            }
            other => {
                r.error(
                    v.span().start,
                    format!(
                        "`qualifications` must be an array of tables, not {}",
                        kind_of(other)
                    ),
                    Some("write one [[hit_type.qualifications]] section per requirement".into()),
                );
                ok = false;
            }
        }
    }

    if !ok {
        return None;
    }
    Some(HitTypeSpec {
        title: title?.0.to_owned(),
        description: description?.0.to_owned(),
        keywords,
        reward: reward?.0,
        assignment_duration_secs: assignment_duration?,
        auto_approval_delay_secs: auto_approval?,
        qualifications,
    })
}

fn parse_layout(
    r: &mut FileDiagnostics<'_>,
    root: &Table<'_, '_>,
    file: &Path,
) -> Option<LayoutDef> {
    let Some(t) = root.table(r, "layout", "[layout]") else {
        if !root.has("layout") {
            root.missing(r, "layout", Some("add a [layout] table with one of `html`, `external_url`, `question_form` or `hit_layout_id`".into()));
        }
        return None;
    };
    t.check_keys(r, &LAYOUT_KEYS, &ELSEWHERE);
    let present: Vec<&str> = LAYOUT_KINDS.iter().copied().filter(|k| t.has(k)).collect();
    let kind = match present.as_slice() {
        [] => {
            r.error(
                t.at,
                "[layout] needs exactly one of `html`, `external_url`, `question_form` or `hit_layout_id`",
                Some("for example `html = \"templates/task.html\"`".into()),
            );
            return None;
        }
        [one] => *one,
        [first, rest @ ..] => {
            for other in rest {
                let at = t.key_span(other).map_or(t.at, |s| s.start);
                r.error(
                    at,
                    format!("[layout] sets both `{first}` and `{other}`"),
                    Some("a campaign has exactly one layout kind: keep one of them".into()),
                );
            }
            return None;
        }
    };
    let frame_height = match t.int(r, "frame_height") {
        Some((h, span)) => match u32::try_from(h) {
            Ok(h) => Some((h, span)),
            Err(_) => {
                r.error(
                    span.start,
                    format!("`frame_height` must be 0 or more pixels, not {h}"),
                    Some("0 lets MTurk size the frame to the worker's window".into()),
                );
                return None;
            }
        },
        None if t.has("frame_height") => return None,
        None => None,
    };
    if let Some((_, span)) = &frame_height
        && !matches!(kind, "html" | "external_url")
    {
        r.error(
            span.start,
            format!("`frame_height` does not apply to `{kind}`"),
            Some("remove it: only `html` and `external_url` questions have a frame".into()),
        );
        return None;
    }
    if kind != "hit_layout_id"
        && let Some(span) = t.key_span("parameters")
    {
        r.error(
            span.start,
            "`parameters` only apply to `hit_layout_id`",
            Some(format!(
                "`{kind}` templates read the item directly as `item`"
            )),
        );
        return None;
    }
    let frame_height = frame_height.map_or(0, |(h, _)| h);
    let (value, span) = t.str(r, kind, None)?;
    let loc = Loc::of(r, span.start);
    if value.trim().is_empty() {
        r.error(span.start, format!("`{kind}` is empty"), None);
        return None;
    }
    Some(match kind {
        "html" => LayoutDef::Html {
            template: relative_to(file, value),
            loc,
            frame_height,
        },
        "question_form" => LayoutDef::QuestionForm {
            template: relative_to(file, value),
            loc,
        },
        "external_url" => LayoutDef::ExternalUrl {
            source: value.to_owned(),
            loc,
            frame_height,
        },
        _ => {
            let id_ok = value.len() <= 64
                && value
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !id_ok {
                r.error(
                    span.start,
                    format!("`{value}` is not a HITLayoutId"),
                    Some(
                        "copy the layout id from the requester site: upper-case letters and digits"
                            .into(),
                    ),
                );
                return None;
            }
            let mut parameters = Vec::new();
            if let Some(p) = t.table(r, "parameters", "[layout.parameters]") {
                for (name, v) in p.map.iter() {
                    match v.get_ref() {
                        DeValue::String(s) => parameters.push((
                            name.get_ref().to_string(),
                            s.to_string(),
                            Loc::of(r, v.span().start),
                        )),
                        other => {
                            r.error(
                                v.span().start,
                                format!(
                                    "layout parameter `{}` must be a string template, not {}",
                                    name.get_ref(),
                                    kind_of(other)
                                ),
                                Some("write e.g. `image_url = \"{{ item.image_url }}\"`".into()),
                            );
                            return None;
                        }
                    }
                }
            } else if t.has("parameters") {
                return None;
            }
            LayoutDef::HitLayout {
                id: value.to_owned(),
                parameters,
            }
        }
    })
}

struct ItemsPart {
    def: Option<ItemsDef>,
    assignments: Option<u32>,
    lifetime: Option<Lifetime>,
}

fn parse_items(
    r: &mut FileDiagnostics<'_>,
    root: &Table<'_, '_>,
    file: &Path,
    now: UnixTime,
) -> ItemsPart {
    let mut out = ItemsPart {
        def: None,
        assignments: None,
        lifetime: None,
    };
    let Some(t) = root.table(r, "items", "[items]") else {
        if !root.has("items") {
            root.missing(
                r,
                "items",
                Some("add an [items] table with `source`, `key` and `lifetime`".into()),
            );
        }
        return out;
    };
    t.check_keys(r, &ITEMS_KEYS, &ELSEWHERE);
    let source = t.req_str(
        r,
        "source",
        Some("point it at a .csv (with a header row) or .jsonl file, relative to this file"),
    );
    let key = t.req_str(
        r,
        "key",
        Some("name the column that identifies each item, like `key = \"image_id\"`"),
    );
    if let (Some((s, sspan)), Some((k, kspan))) = (source, key) {
        let path = relative_to(file, s);
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "csv" | "jsonl") {
            r.error(
                sspan.start,
                format!("`{s}` is neither a .csv nor a .jsonl file"),
                Some(
                    "turkform reads CSV with a header row, or JSON Lines (one object per line)"
                        .into(),
                ),
            );
        } else if k.is_empty() {
            r.error(
                kspan.start,
                "`key` is empty",
                Some("name the column that identifies each item".into()),
            );
        } else {
            out.def = Some(ItemsDef {
                source: path,
                source_loc: Loc::of(r, sspan.start),
                key: k.to_owned(),
                key_loc: Loc::of(r, kspan.start),
            });
        }
    }
    let assignments_range = "MTurk accepts 1 to 1000000000 assignments per HIT";
    out.assignments = match t.int_with_range(r, "assignments", Some(assignments_range)) {
        Some((n, _)) if (1..=MAX_ASSIGNMENTS).contains(&n) => u32::try_from(n).ok(),
        Some((n, span)) => {
            r.error(
                span.start,
                format!("`assignments` = {n} is out of range"),
                Some(assignments_range.into()),
            );
            None
        }
        None if t.has("assignments") => None,
        // One answer per item, like MTurk's own MaxAssignments default.
        None => Some(1),
    };
    match (t.has("lifetime"), t.has("ends_at")) {
        (true, true) => {
            let at = t.key_span("ends_at").map_or(t.at, |s| s.start);
            r.error(at, "[items] sets both `lifetime` and `ends_at`", Some("keep one: `lifetime` counts from each HIT's creation, `ends_at` is a fixed instant".into()));
        }
        (false, false) => r.error(
            t.at,
            "[items] needs `lifetime` or `ends_at`",
            Some("for example `lifetime = \"7d\"`".into()),
        ),
        (true, false) => {
            out.lifetime = duration(
                r,
                &t,
                "lifetime",
                true,
                MIN_DURATION_SECS,
                MAX_DURATION_SECS,
            )
            .map(Lifetime::Duration);
        }
        (false, true) => {
            if let Some(v) = t.get("ends_at") {
                let text = match v.get_ref() {
                    DeValue::String(s) => Some(s.to_string()),
                    DeValue::Datetime(d) => Some(d.to_string()),
                    other => {
                        r.error(
                            v.span().start,
                            format!("`ends_at` must be a date-time, not {}", kind_of(other)),
                            Some("write e.g. \"2026-12-31T00:00:00Z\"".into()),
                        );
                        None
                    }
                };
                if let Some(text) = text {
                    let at = v.span().start;
                    match UnixTime::parse_rfc3339(&text) {
                        None => r.error(at, format!("`{text}` is not an RFC 3339 date-time with a time zone"), Some("write e.g. \"2026-12-31T00:00:00Z\" or \"2026-12-31T09:00:00+02:00\"".into())),
                        Some(t) if t.secs_since(now) < MIN_DURATION_SECS as i64 => r.error(
                            at,
                            format!("`ends_at` = {t} is in the past (now is {now})"),
                            Some("move it into the future, or set `status = \"finished\"` to close the campaign".into()),
                        ),
                        Some(t) if t.secs_since(now) > MAX_DURATION_SECS as i64 => r.error(
                            at,
                            format!("`ends_at` = {t} is more than 365 days away"),
                            Some("MTurk keeps a HIT open for at most 365 days".into()),
                        ),
                        Some(t) => out.lifetime = Some(Lifetime::EndsAt(t)),
                    }
                }
            }
        }
    }
    out
}

/// Parses the campaign part of a file (the custom qualification types are read by
/// [`parse_qualification_types`]).
pub(crate) fn parse_campaign(
    r: &mut FileDiagnostics<'_>,
    doc: &DeTable<'_>,
    file: &Path,
    target: Target,
    custom: &CustomTypes,
    now: UnixTime,
) -> Option<CampaignDef> {
    let root = Table::new(doc, 0, "the campaign file");
    root.check_keys(r, &ROOT_KEYS, &ELSEWHERE);

    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_owned();
    let (name, name_loc) = match root.str(r, "name", None) {
        Some((n, span)) => {
            let loc = Loc::of(r, span.start);
            if !valid_campaign_name(n) {
                r.error(span.start, format!("`{n}` is not a valid campaign name"), Some("use 1 to 40 lower-case letters, digits and dashes, starting with a letter or digit".into()));
            }
            (n.to_owned(), loc)
        }
        None if root.has("name") => (stem, Loc { line: 1, column: 1 }),
        None => {
            if !valid_campaign_name(&stem) {
                r.error(0, format!("the file name `{stem}` is not a valid campaign name"), Some("rename the file, or set `name = \"...\"` (1 to 40 lower-case letters, digits and dashes)".into()));
            }
            (stem, Loc { line: 1, column: 1 })
        }
    };
    let status = match root.str(r, "status", None) {
        Some((s, span)) => match s {
            "running" => CampaignStatus::Running,
            "paused" => CampaignStatus::Paused,
            "finished" => CampaignStatus::Finished,
            other => {
                r.error(
                    span.start,
                    format!("unknown status `{other}`"),
                    Some("use `running`, `paused` or `finished`".into()),
                );
                CampaignStatus::Running
            }
        },
        None => CampaignStatus::Running,
    };
    let hit_type = parse_hit_type(r, &root, target, custom);
    let layout = parse_layout(r, &root, file);
    let items = parse_items(r, &root, file, now);
    let max_spend = match root.table(r, "budget", "[budget]") {
        Some(b) => {
            b.check_keys(r, &BUDGET_KEYS, &ELSEWHERE);
            money(r, &b, "max_spend", true).map(|(m, _)| m)
        }
        None => None,
    };
    let review = crate::review::parse_review(r, &root, file);
    let notifications = crate::workers::parse_notifications(r, &root);
    Some(CampaignDef {
        review,
        notifications,
        name,
        name_loc,
        file: file.to_owned(),
        status,
        hit_type,
        assignments: items.assignments,
        lifetime: items.lifetime,
        max_spend,
        layout,
        items: items.def,
    })
}

/// Reads `[qualification_types.NAME]` tables of one file.
/// A qualification type's `grants` file and where it is named.
pub(crate) type GrantsDef = (PathBuf, Loc);

pub(crate) fn parse_qualification_types(
    r: &mut FileDiagnostics<'_>,
    doc: &DeTable<'_>,
    file: &Path,
) -> Vec<(QualificationTypeSpec, Loc, Option<GrantsDef>)> {
    let root = Table::new(doc, 0, "the campaign file");
    let mut out = Vec::new();
    let Some(types) = root.table(r, "qualification_types", "[qualification_types]") else {
        return out;
    };
    for (name, v) in types.map.iter() {
        let name_str: &str = name.get_ref();
        let at = name.span().start;
        let DeValue::Table(table) = v.get_ref() else {
            r.error(
                v.span().start,
                format!("`qualification_types.{name_str}` must be a table"),
                Some(format!(
                    "write [qualification_types.{name_str}] with a `description`"
                )),
            );
            continue;
        };
        if ALIASES.contains(&name_str) {
            r.error(
                at,
                format!(
                    "`{name_str}` is a built-in qualification alias and cannot name a custom type"
                ),
                Some("choose another name".into()),
            );
            continue;
        }
        if name_str.trim().is_empty()
            || name_str
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            r.error(at, format!("`{name_str}` cannot name a custom qualification type"), Some("names made only of upper-case letters and digits read as QualificationTypeIds; use e.g. `street-trained`".into()));
            continue;
        }
        let t = Table::new(
            table,
            v.span().start,
            format!("[qualification_types.{name_str}]"),
        );
        t.check_keys(r, &QUALIFICATION_TYPE_KEYS, &[]);
        let grants = t
            .str(
                r,
                "grants",
                Some("name a CSV file with WorkerId and Value, relative to this file"),
            )
            .and_then(|(s, span)| {
                let path = relative_to(file, s);
                if path.extension().is_some_and(|e| e == "csv") {
                    Some((path, Loc::of(r, span.start)))
                } else {
                    r.error(
                        span.start,
                        format!("`{s}` is not a .csv file"),
                        Some("a grants file is CSV with the columns WorkerId and Value".into()),
                    );
                    None
                }
            });
        let description = t.req_str(
            r,
            "description",
            Some("say what holding this qualification means; workers see it"),
        );
        let keywords = t
            .str_list(r, "keywords")
            .map(|(l, _)| l.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default();
        let auto_granted = t.bool(r, "auto_granted").map(|(b, _)| b).unwrap_or(false);
        let auto_granted_value = match t.int(r, "auto_granted_value") {
            Some((_, span)) if !auto_granted => {
                r.error(
                    span.start,
                    "`auto_granted_value` needs `auto_granted = true`",
                    Some("set `auto_granted = true`, or remove `auto_granted_value`".into()),
                );
                None
            }
            Some((n, span)) => match i32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    r.error(
                        span.start,
                        format!("`auto_granted_value` {n} does not fit MTurk's 32-bit integers"),
                        None,
                    );
                    None
                }
            },
            None => None,
        };
        let active = match t.str(r, "status", None) {
            Some(("active", _)) | None => true,
            Some(("inactive", _)) => false,
            Some((other, span)) => {
                r.error(
                    span.start,
                    format!("unknown qualification type status `{other}`"),
                    Some("use `active` or `inactive`".into()),
                );
                true
            }
        };
        if let Some((d, span)) = description {
            if d.trim().is_empty() {
                r.error(
                    span.start,
                    "`description` is empty",
                    Some("say what holding this qualification means; workers see it".into()),
                );
                continue;
            }
            out.push((
                QualificationTypeSpec {
                    name: name_str.to_owned(),
                    description: d.to_owned(),
                    keywords,
                    auto_granted,
                    auto_granted_value,
                    active,
                    declared_in: file.to_owned(),
                },
                Loc::of(r, at),
                grants,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use turkform_model::{QualificationTypeRef, system};

    use super::*;
    use crate::diagnostic::SourceFile;

    /// Runs `f` on the root table of `text`, returning its result and the diagnostics.
    fn with_table<T>(
        text: &str,
        f: impl FnOnce(&mut FileDiagnostics<'_>, &Table<'_, '_>) -> T,
    ) -> (T, Vec<String>) {
        let path = Path::new("t.toml");
        let src = SourceFile::new(path, text);
        let doc = DeTable::parse(text).unwrap().into_inner();
        let mut r = FileDiagnostics::new(&src);
        let out = f(&mut r, &Table::new(&doc, 0, "t"));
        (out, r.diags.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn money_in_toml_is_a_decimal_string_never_a_float() {
        let (m, d) = with_table("reward = \"0.12\"", |r, t| money(r, t, "reward", true));
        assert_eq!(m.map(|(m, _)| m.cents()), Some(12));
        assert!(d.is_empty());
        let (m, d) = with_table("reward = 0.12", |r, t| money(r, t, "reward", true));
        assert!(m.is_none());
        assert!(
            d[0].contains("t.toml:1:10: error: `reward` must be a string"),
            "{d:?}"
        );
        let (_, d) = with_table("reward = 1", |r, t| money(r, t, "reward", true));
        assert!(d[0].contains("not an integer"), "{d:?}");
        let (_, d) = with_table("reward = \"0.125\"", |r, t| money(r, t, "reward", true));
        assert!(d[0].contains("at most two decimals"), "{d:?}");
        let (_, d) = with_table("x = 1", |r, t| money(r, t, "reward", true));
        assert!(d[0].contains("missing required key `reward`"), "{d:?}");
    }

    #[test]
    fn durations_in_toml_are_checked_against_their_range() {
        let (s, d) = with_table("a = \"7d\"", |r, t| {
            duration(r, t, "a", true, 30, MAX_DURATION_SECS)
        });
        assert_eq!((s, d.len()), (Some(604_800), 0));
        let (s, d) = with_table("a = \"29s\"", |r, t| {
            duration(r, t, "a", true, 30, MAX_DURATION_SECS)
        });
        assert!(s.is_none() && d[0].contains("out of range"), "{d:?}");
        let (_, d) = with_table("a = 600", |r, t| {
            duration(r, t, "a", true, 30, MAX_DURATION_SECS)
        });
        assert!(d[0].contains("must be a string with a unit"), "{d:?}");
    }

    #[test]
    fn masters_alias_resolves_to_the_targets_id_in_a_campaign() {
        let text = "type = \"masters\"";
        for (target, id) in [
            (Target::Sandbox, system::MASTERS_SANDBOX),
            (Target::Sim, system::MASTERS_SANDBOX),
            (Target::Production, system::MASTERS_PRODUCTION),
        ] {
            let (q, d) = with_table(text, |r, t| {
                parse_requirement(r, t, target, &CustomTypes::new())
            });
            assert!(d.is_empty(), "{d:?}");
            let q = q.unwrap();
            assert_eq!(
                q.qualification_type,
                QualificationTypeRef::Id(id.to_owned())
            );
            assert_eq!(q.comparator, turkform_model::Comparator::Exists);
        }
    }

    #[test]
    fn campaign_names_follow_the_pattern() {
        assert!(valid_campaign_name("street-objects"));
        assert!(valid_campaign_name("0"));
        assert!(!valid_campaign_name("-x"));
        assert!(!valid_campaign_name("Street"));
        assert!(!valid_campaign_name(&"x".repeat(41)));
    }
}
