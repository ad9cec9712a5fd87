//! turkform-spec turns a project's files into a validated [`DesiredState`]: `turkform.toml`
//! ([`load_settings`]), campaign files with their templates and data ([`load_project`]), one
//! rendered question for `turkform render` ([`render_item`]) and the `turkform init` scaffold
//! ([`init_project`]).
//!
//! It owns TOML parsing with positions, CSV/JSONL data files, minijinja rendering, the question
//! XML MTurk takes, qualification aliases per target, and every validation rule of DESIGN.md
//! section 3, reported as [`Diagnostics`] (all problems of all files at once, each at
//! `file:line:column`). It must not know about SQLite, AWS, tokio or plans: it reads files and
//! returns data.
//!
//! Modules: `project` (the whole load), `campaign` (one file's keys), `qualifications`
//! (requirements and their MTurk rules), `render` (templates and question XML), `data`
//! (CSV/JSONL rows), `review` (review and bonus tables and their files), `workers` (blocks, grants and
//! notifications), `settings`, `init`, and the helpers `toml_read`, `duration`, `countries`,
//! `diagnostic`.

// A library reports through return values and its Reporter/tracing, never by printing: the
// binary owns the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod campaign;
mod countries;
mod data;
mod diagnostic;
mod duration;
mod init;
mod project;
mod qualifications;
mod render;
mod review;
mod settings;
mod toml_read;
mod workers;

use std::path::PathBuf;

use turkform_model::{DesiredState, Question, Target, UnixTime};

pub use countries::{COUNTRIES, is_country};
pub use diagnostic::{Diagnostic, Diagnostics, SpecError};
pub use duration::parse_duration;
pub use init::init_project;
pub use qualifications::resolve_alias;
pub use render::{
    EXTERNAL_QUESTION_NS, HTML_QUESTION_NS, MAX_QUESTION_BYTES, QUESTION_FORM_NS, html_question,
};
pub use settings::{
    ApplySettings, Settings, WorkersSettings, check_concurrency, load_settings, valid_project_id,
};
pub use workers::DeclaredAt;

/// What to load, and for which target.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Decides the Masters id (it differs between sandbox and production).
    pub target: Target,
    /// The campaigns folder, absolute or relative to the current directory; diagnostics show
    /// paths as they derive from it (`campaigns/x.toml`).
    pub campaigns_dir: PathBuf,
    /// Campaign names to load; empty means all. Every file is still parsed (custom
    /// qualification types and duplicate names span files), only these are rendered.
    pub only: Vec<String>,
    /// "Now", for `ends_at` checks.
    pub now: UnixTime,
    /// `[workers]` of `turkform.toml`: the blocks file is read and checked with the campaigns.
    pub workers: WorkersSettings,
}

/// One item's question, for `turkform render`.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedItem {
    pub campaign: String,
    pub key: String,
    pub question: Question,
}

/// Loads and validates every campaign; all problems of all files come back together.
pub fn load_project(opts: &LoadOptions) -> Result<DesiredState, Diagnostics> {
    project::load(opts, project::Mode::All).map(|l| l.state)
}

/// Renders one item (by key, or the first) of one campaign. Only that campaign's problems are
/// reported, so a broken neighbour does not get in the way of checking a template.
pub fn render_item(
    opts: &LoadOptions,
    campaign: &str,
    item: Option<&str>,
) -> Result<RenderedItem, Diagnostics> {
    project::render_one(opts, campaign, item)
}
