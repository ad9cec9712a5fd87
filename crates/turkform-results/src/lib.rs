//! Results: what came back from workers, read and written the way requesters expect.
//!
//! - [`answers`]: QuestionFormAnswers (FreeText, SelectionIdentifier, UploadedFileKey) and a
//!   crowd-form's `taskAnswers` JSON, flattened to field -> text.
//! - [`time`]: instants in US Pacific as the web UI writes them (`PST` / `PDT` from the bundled
//!   tz database), or UTC RFC 3339.
//! - [`export`]: one row per assignment, in MTurk's batch-results CSV layout or JSON Lines,
//!   streamed one [`export::Submission`] at a time.
//! - [`aggregated`]: one row per item (`--aggregate`), each answer field combined across workers
//!   by `turkform-aggregate`; held in memory per campaign.
//!
//! This crate owns the formats only. It must not know SQLite, AWS or TOML: the binary reads
//! state and campaign files and hands rows in as `turkform_model` values. The arithmetic of
//! aggregation is `turkform-aggregate`'s; this crate only decides what counts and writes it.

pub mod aggregated;
pub mod answers;
pub mod export;
pub mod time;

pub use aggregated::{
    AGREEMENT_DECIMALS, AggregatedCsv, AggregatedItem, AggregatedJsonl, AnswerCollector,
    format_agreement,
};
pub use answers::{AnswerError, flatten_task_answers, parse_answers};
pub use export::{
    AnswerRecord, ApprovalCounts, CsvExport, ExportError, ExportLayout, JsonlExport, Submission,
    WorkerRates,
};
pub use time::{TimeFormat, TimeFormatter, ZoneError};
/// How `--aggregate` combines answers (re-exported so the binary needs only this crate).
pub use turkform_aggregate::Method as AggregateMethod;
