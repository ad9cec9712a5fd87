//! The whole project: every campaign file read, cross-file rules checked (custom type names,
//! duplicate campaign names), items rendered, and every problem collected.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::de::DeTable;
use turkform_model::{DesiredCampaign, DesiredItem, DesiredState, QualificationTypeSpec};
use unicode_normalization::UnicodeNormalization;

use crate::campaign::{CampaignDef, Loc, parse_campaign, parse_qualification_types};
use crate::data::read_rows;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, clean_path, did_you_mean};
use crate::render::Renderer;
use crate::toml_read::FileDiagnostics;
use crate::{LoadOptions, RenderedItem};

/// Item-level problems shown per campaign before the rest are summarised: a template that
/// fails on every row should not print 100,000 lines.
const MAX_ITEM_DIAGNOSTICS: usize = 20;

/// Which items to render.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode<'a> {
    /// Every item of every selected campaign.
    All,
    /// One item (by key, or the first) of one campaign.
    One {
        campaign: &'a str,
        item: Option<&'a str>,
    },
}

/// A campaign file's text, read once.
struct FileText {
    path: PathBuf,
    text: String,
}

/// Lists `*.toml` directly in the campaigns folder, sorted.
fn campaign_files(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(
                Diagnostic::new(
                    clean_path(dir),
                    0,
                    0,
                    format!("cannot read the campaigns folder: {e}"),
                )
                .with_hint("create it, run `turkform init`, or set `campaigns` in turkform.toml"),
            );
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => {
                diags.push(Diagnostic::new(
                    clean_path(dir),
                    0,
                    0,
                    format!("cannot list the campaigns folder: {e}"),
                ));
                continue;
            }
        };
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let shown = clean_path(&path);
        // A campaign file that cannot be read must never look like a removed one: skipping it
        // would plan the expiry of its live HITs.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(shown),
            Ok(m) if m.is_dir() => {}
            Ok(_) => diags.push(
                Diagnostic::new(shown, 0, 0, "the campaign file is not a regular file").with_hint(
                    "a campaign file must be a plain file (not a FIFO, socket or device)",
                ),
            ),
            Err(e) => {
                let dangling = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
                let message = if dangling && e.kind() == std::io::ErrorKind::NotFound {
                    format!("the campaign file is a symlink to nothing: {e}")
                } else if dangling {
                    format!("cannot follow the campaign file's symlink: {e}")
                } else {
                    format!("cannot read the campaign file: {e}")
                };
                diags.push(Diagnostic::new(shown, 0, 0, message).with_hint(
                    "restore what it points to, or delete it to expire its campaign's HITs",
                ));
            }
        }
    }
    files.sort();
    if files.is_empty() && diags.is_empty() {
        // No configuration at all is a mistake (a wrong folder, a checkout in progress), never
        // a wish to expire every HIT.
        diags.push(
            Diagnostic::new(
                clean_path(dir),
                0,
                0,
                "the campaigns folder has no campaign file (*.toml)",
            )
            .with_hint(
                "add a campaign file, point `campaigns` in turkform.toml (or TURKFORM_CAMPAIGNS) at the right folder, or run `turkform init`; to end a campaign keep its file and set `status = \"finished\"`",
            ),
        );
    }
    files
}

pub(crate) struct Loaded {
    pub state: DesiredState,
    /// The item [`Mode::One`] rendered.
    pub rendered: Option<RenderedItem>,
}

/// Loads the project; in [`Mode::One`] only the named campaign's items are rendered and only
/// its problems reported.
pub(crate) fn load(opts: &LoadOptions, mode: Mode<'_>) -> Result<Loaded, Diagnostics> {
    let mut diags = Vec::new();
    let dir = clean_path(&opts.campaigns_dir);
    let mut texts = Vec::new();
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for path in campaign_files(&dir, &mut diags) {
        match std::fs::read(&path) {
            Ok(bytes) => {
                inputs.push((path.clone(), bytes.clone()));
                match String::from_utf8(bytes) {
                    Ok(text) => texts.push(FileText { path, text }),
                    Err(_) => diags.push(
                        Diagnostic::new(path, 0, 0, "the file is not valid UTF-8")
                            .with_hint("save it as UTF-8"),
                    ),
                }
            }
            Err(e) => diags.push(Diagnostic::new(
                path,
                0,
                0,
                format!("cannot read the file: {e}"),
            )),
        }
    }

    // Pass 1: TOML syntax.
    let sources: Vec<SourceFile<'_>> = texts
        .iter()
        .map(|f| SourceFile::new(&f.path, &f.text))
        .collect();
    let mut docs: Vec<(usize, DeTable<'_>)> = Vec::new();
    for (i, f) in texts.iter().enumerate() {
        match DeTable::parse(&f.text) {
            Ok(doc) => docs.push((i, doc.into_inner())),
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                diags.push(
                    sources[i]
                        .at(at, format!("TOML syntax error: {}", e.message().trim()))
                        .with_hint("see https://toml.io for the syntax"),
                );
            }
        }
    }

    // Pass 2: custom qualification types, which any campaign may reference.
    let mut qualification_types: BTreeMap<String, (QualificationTypeSpec, Loc)> = BTreeMap::new();
    // (type name, grants file, the campaign file naming it, where).
    let mut grant_files: Vec<(String, PathBuf, PathBuf, Loc)> = Vec::new();
    for (i, doc) in &docs {
        let mut r = FileDiagnostics::new(&sources[*i]);
        for (spec, loc, grants) in parse_qualification_types(&mut r, doc, &texts[*i].path) {
            if let Some((first, first_loc)) = qualification_types.get(&spec.name) {
                let (l, c) = (loc.line, loc.column);
                r.diags.push(
                    Diagnostic::new(&texts[*i].path, l, c, format!("qualification type `{}` is declared twice", spec.name)).with_hint(format!(
                        "it is already declared at {}:{}:{}; names are shared by the whole project, so keep one declaration",
                        first.declared_in.display(),
                        first_loc.line,
                        first_loc.column
                    )),
                );
            } else {
                if let Some((path, at)) = grants {
                    grant_files.push((spec.name.clone(), path, texts[*i].path.clone(), at));
                }
                qualification_types.insert(spec.name.clone(), (spec, loc));
            }
        }
        diags.append(&mut r.diags);
    }
    let custom = qualification_types
        .iter()
        .map(|(n, (s, _))| (n.clone(), s.declared_in.clone()))
        .collect();

    // Pass 3: campaigns.
    let mut defs: Vec<CampaignDef> = Vec::new();
    for (i, doc) in &docs {
        let mut r = FileDiagnostics::new(&sources[*i]);
        if let Some(def) =
            parse_campaign(&mut r, doc, &texts[*i].path, opts.target, &custom, opts.now)
        {
            defs.push(def);
        }
        diags.append(&mut r.diags);
    }
    let mut by_name: HashMap<&str, &CampaignDef> = HashMap::new();
    for def in &defs {
        if let Some(first) = by_name.get(def.name.as_str()) {
            diags.push(
                Diagnostic::new(
                    &def.file,
                    def.name_loc.line,
                    def.name_loc.column,
                    format!("campaign name `{}` is used twice", def.name),
                )
                .with_hint(format!(
                    "`{}` already uses it; give this campaign another `name`",
                    first.file.display()
                )),
            );
        } else {
            by_name.insert(&def.name, def);
        }
    }

    // Which campaigns to render.
    let wanted: Vec<String> = match mode {
        Mode::All => opts.only.clone(),
        Mode::One { campaign, .. } => vec![campaign.to_owned()],
    };
    for name in &wanted {
        if !by_name.contains_key(name.as_str()) {
            let hint = match did_you_mean(name, by_name.keys().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "campaigns are the *.toml files in `{}` (or their `name`)",
                    dir.display()
                ),
            };
            diags.push(
                Diagnostic::new(&dir, 0, 0, format!("no campaign named `{name}`")).with_hint(hint),
            );
        }
    }
    let selected = |d: &CampaignDef| wanted.is_empty() || wanted.contains(&d.name);

    let mut campaigns = Vec::new();
    let mut rendered_one: Option<RenderedItem> = None;
    for def in defs.iter().filter(|d| selected(d)) {
        let mut item_diags = Vec::new();
        let items = render_campaign(def, mode, &mut item_diags, &mut inputs, &mut rendered_one);
        if item_diags.len() > MAX_ITEM_DIAGNOSTICS {
            let more = item_diags.len() - MAX_ITEM_DIAGNOSTICS;
            let file = item_diags[MAX_ITEM_DIAGNOSTICS].file.clone();
            item_diags.truncate(MAX_ITEM_DIAGNOSTICS);
            item_diags.push(
                Diagnostic::new(
                    file,
                    0,
                    0,
                    format!(
                        "{more} more problem{} in campaign `{}` not shown",
                        if more == 1 { "" } else { "s" },
                        def.name
                    ),
                )
                .with_hint("fix the ones above first; they often share a cause"),
            );
        }
        diags.append(&mut item_diags);
        // Review files are read only once the items are known (gold rows name item keys), and
        // not for `render`, which looks at one item.
        let review = match (&def.review, &items, &def.items, mode) {
            (Some(r), Some(items), Some(items_def), Mode::All) => {
                let keys = items.iter().map(|i| i.key.as_str()).collect();
                crate::review::load_review(
                    r,
                    &def.file,
                    &items_def.key,
                    &keys,
                    &mut diags,
                    &mut inputs,
                )
            }
            (None, ..) => Some(Default::default()),
            _ => None,
        };
        if let (Some(hit_type), Some(assignments), Some(lifetime), Some(items), Some(review)) =
            (&def.hit_type, def.assignments, def.lifetime, items, review)
        {
            campaigns.push(DesiredCampaign {
                name: def.name.clone(),
                file: def.file.clone(),
                status: def.status,
                hit_type_hash: hit_type.definition_hash(),
                hit_type: hit_type.clone(),
                assignments,
                lifetime,
                max_spend: def.max_spend,
                items,
                review: turkform_model::DesiredReview {
                    notifications: def.notifications.clone(),
                    ..review
                },
            });
        }
    }

    if let Mode::One { campaign, item } = mode {
        // `render` is for looking at one campaign: other files' problems are not in the way.
        let def = by_name.get(campaign).copied();
        let mut mine: Vec<PathBuf> = vec![dir.clone()];
        if let Some(def) = def {
            mine.push(def.file.clone());
            if let Some(i) = &def.items {
                mine.push(i.source.clone());
            }
            if let Some(
                crate::campaign::LayoutDef::Html { template, .. }
                | crate::campaign::LayoutDef::QuestionForm { template, .. },
            ) = &def.layout
            {
                mine.push(template.clone());
            }
        }
        diags.retain(|d| mine.contains(&d.file) && (d.file != dir || d.message.contains(campaign)));
        if diags.is_empty() && rendered_one.is_none() {
            let msg = match item {
                Some(k) => format!("campaign `{campaign}` has no item `{k}`"),
                None => format!("campaign `{campaign}` has no items"),
            };
            let at = def
                .and_then(|d| d.items.as_ref())
                .map_or(dir.clone(), |i| i.source.clone());
            diags.push(Diagnostic::new(at, 0, 0, msg));
        }
    }
    // Workers (account-wide, DESIGN.md section 9): read for every load but `render`.
    let mut workers = turkform_model::DesiredWorkers::default();
    if let Mode::All = mode {
        grant_files.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, path, campaign_file, at) in &grant_files {
            if let Some(g) =
                crate::workers::load_grants(name, path, campaign_file, *at, &mut diags, &mut inputs)
            {
                workers.grants.push(g);
            }
        }
        if let Some((path, declared)) = &opts.workers.blocks {
            if let Some(rows) = crate::workers::load_blocks(path, declared, &mut diags, &mut inputs)
            {
                workers.blocks = rows;
            }
            workers.blocks_file = Some(path.clone());
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics::from(diags));
    }

    campaigns.sort_by(|a, b| a.name.cmp(&b.name));
    let state = DesiredState {
        target: opts.target,
        campaigns,
        qualification_types: qualification_types.into_values().map(|(s, _)| s).collect(),
        inputs_digest: inputs_digest(&dir, inputs),
        workers,
    };
    Ok(Loaded {
        state,
        rendered: rendered_one,
    })
}

pub(crate) fn render_one(
    opts: &LoadOptions,
    campaign: &str,
    item: Option<&str>,
) -> Result<RenderedItem, Diagnostics> {
    load(opts, Mode::One { campaign, item })?
        .rendered
        .ok_or_else(|| {
            Diagnostics::from(vec![Diagnostic::new(
                clean_path(&opts.campaigns_dir),
                0,
                0,
                format!("campaign `{campaign}` has no such item"),
            )])
        })
}

/// Renders a campaign's items; `None` when anything about them is wrong (already reported).
fn render_campaign(
    def: &CampaignDef,
    mode: Mode<'_>,
    diags: &mut Vec<Diagnostic>,
    inputs: &mut Vec<(PathBuf, Vec<u8>)>,
    rendered_one: &mut Option<RenderedItem>,
) -> Option<Vec<DesiredItem>> {
    let renderer = def
        .layout
        .as_ref()
        .and_then(|l| Renderer::build(l, &def.file, diags, inputs));
    let items_def = def.items.as_ref()?;
    let bytes = match crate::data::read_regular_file(&items_def.source) {
        Ok(b) => b,
        Err(e) => {
            let loc = items_def.source_loc;
            diags.push(
                Diagnostic::new(
                    &def.file,
                    loc.line,
                    loc.column,
                    format!(
                        "cannot read data file `{}`: {e}",
                        items_def.source.display()
                    ),
                )
                .with_hint("paths are relative to the campaign file"),
            );
            return None;
        }
    };
    let start_errors = diags.len();
    let mut items = Vec::new();
    let mut seen: HashMap<String, (usize, usize, String)> = HashMap::new();
    let data_path = items_def.source.clone();
    read_rows(items_def, &def.file, &bytes, diags, |row, diags| {
        if row.key.trim().is_empty() {
            diags.push(
                Diagnostic::new(
                    &data_path,
                    row.line,
                    1,
                    format!("row {} has an empty key (`{}`)", row.number, items_def.key),
                )
                .with_hint(
                    "every item needs a non-empty, unique key: it names the item's HIT forever",
                ),
            );
            return;
        }
        if let Mode::One { item, .. } = mode {
            let wanted = match item {
                Some(k) => k == row.key,
                None => rendered_one.is_none(),
            };
            if !wanted || rendered_one.is_some() {
                return;
            }
        } else {
            // Keys that differ only in Unicode normalization (NFC "café" and NFD "café") look
            // the same to everyone: they must not become two items.
            let normalized: String = row.key.nfc().collect();
            match seen.get(&normalized) {
                Some((first_number, first_line, first_key)) => {
                    let how = if *first_key == row.key {
                        String::new()
                    } else {
                        format!(
                            " (written `{}` and `{}`: equal under Unicode normalization)",
                            non_ascii_escaped(first_key),
                            non_ascii_escaped(&row.key)
                        )
                    };
                    diags.push(
                        Diagnostic::new(&data_path, row.line, 1, format!("duplicate key `{}`: rows {first_number} (line {first_line}) and {} both use it{how}", row.key, row.number))
                            .with_hint("keys name items (and their HITs): make each one unique"),
                    );
                    return;
                }
                None => {
                    seen.insert(normalized, (row.number, row.line, row.key.clone()));
                }
            }
        }
        let Some(renderer) = &renderer else { return };
        match renderer.render(row.value) {
            Ok(question) => {
                if let Mode::One { campaign, .. } = mode {
                    *rendered_one = Some(RenderedItem {
                        campaign: campaign.to_owned(),
                        key: row.key.clone(),
                        question: question.clone(),
                    });
                }
                let content_hash = question.content_hash();
                items.push(DesiredItem {
                    key: row.key,
                    question,
                    content_hash,
                    row: row.fields,
                });
            }
            Err(e) => {
                diags.push(renderer.item_diagnostic(e, &data_path, row.line, row.number, &row.key))
            }
        }
    });
    inputs.push((items_def.source.clone(), bytes));
    (renderer.is_some() && diags.len() == start_errors).then_some(items)
}

/// `café` as `caf\u{e9}`: shows how two keys that look alike differ.
fn non_ascii_escaped(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", c as u32)
            }
        })
        .collect()
}

/// sha256 over (path relative to the campaigns folder, bytes) of every input, sorted by path.
fn inputs_digest(dir: &Path, mut inputs: Vec<(PathBuf, Vec<u8>)>) -> String {
    let rel = |p: &Path| -> String {
        let r = p.strip_prefix(dir).unwrap_or(p);
        r.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut keyed: Vec<(String, Vec<u8>)> = inputs.drain(..).map(|(p, b)| (rel(&p), b)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    let mut h = Sha256::new();
    h.update(b"turkform-inputs/v1\0");
    for (path, bytes) in &keyed {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())
}
