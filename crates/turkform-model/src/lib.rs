//! The shared vocabulary of turkform: money, time, targets, qualification requirements, the
//! *desired* state that campaign files describe and the *recorded* state the state store keeps.
//!
//! Every other turkform crate speaks in these types, so that the spec parser, the state store, the
//! planner and the executor can be built and tested apart. This crate owns only plain data and
//! the pure functions that must agree everywhere (content hashes, request tokens, annotations).
//! It must not know about TOML, SQLite, AWS, async or terminals.

// A library reports through return values and its Reporter/tracing, never by printing: the
// binary owns the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod assignment;
pub mod desired;
pub mod identity;
pub mod money;
pub mod qualification;
pub mod recorded;
pub mod review;
pub mod target;
pub mod time;
pub mod workers;

pub use assignment::{AnswerKey, AssignmentStatus, DecidedBy, RecordedAssignment, counted_answers};
pub use desired::{
    CampaignStatus, DesiredCampaign, DesiredItem, DesiredState, HitTypeSpec, Lifetime,
    QualificationTypeSpec, Question,
};
pub use identity::{AnnotatedKey, Annotation, project_request_token, request_token};
pub use money::{Money, MoneyError};
pub use qualification::{
    ActionsGuarded, Comparator, Locale, QualificationRequirement, QualificationTypeRef, system,
};
pub use recorded::{
    Drift, ExpiredBy, ForgottenHit, HitStatus, OrphanHit, PostedHit, RecordedBonus, RecordedHit,
    RecordedHitType, RecordedQualificationType, RecordedState, Rename, hit_is_deleted, hit_is_live,
    newest_generations,
};
pub use review::{
    BonusRow, Decision, DesiredReview, KnownAnswers, ReviewGoal, Verdict, bonus_fee, bonus_identity,
};
pub use target::Target;
pub use time::UnixTime;
pub use workers::{
    BlockRow, DesiredWorkers, GrantFile, GrantRow, MadeBy, NotificationSettings,
    NotificationTransport, RecordedBlock, RecordedGrant, RecordedNotification, WorkerRecordStatus,
};
