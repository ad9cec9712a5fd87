//! Workers and notifications as code (DESIGN.md section 9): the blocks file of `turkform.toml`,
//! the grants files of custom qualification types, a campaign's `[notifications]`, and what state
//! records of each. turkform manages only the blocks and grants it made; the ones a refresh finds
//! that it did not make are recorded as `outside` and never touched.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::UnixTime;

/// The `Version` of a `NotificationSpecification` MTurk accepts.
pub const NOTIFICATION_VERSION: &str = "2006-05-05";

/// MTurk's `EventType` values a `[notifications]` table may name (`Ping` is for
/// SendTestEventNotification only).
pub const NOTIFICATION_EVENTS: [&str; 11] = [
    "AssignmentAccepted",
    "AssignmentAbandoned",
    "AssignmentReturned",
    "AssignmentSubmitted",
    "AssignmentRejected",
    "AssignmentApproved",
    "HITCreated",
    "HITExpired",
    "HITReviewable",
    "HITExtended",
    "HITDisposed",
];

/// The project's blocks file and every custom qualification type's grants file, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredWorkers {
    /// `[workers] blocks`, when set.
    pub blocks_file: Option<PathBuf>,
    /// In file order; WorkerIds are unique.
    pub blocks: Vec<BlockRow>,
    /// One per qualification type with `grants`, sorted by type name.
    pub grants: Vec<GrantFile>,
}

impl DesiredWorkers {
    /// Whether the project asks for no block and no grant file at all.
    pub fn is_empty(&self) -> bool {
        self.blocks_file.is_none() && self.grants.is_empty()
    }
}

/// One row of the blocks file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRow {
    pub worker_id: String,
    /// Sent as CreateWorkerBlock's `Reason` (the requester's note; workers do not see it).
    pub reason: String,
    pub file: PathBuf,
    /// 1-based physical line of the row.
    pub line: usize,
}

/// A custom qualification type's `grants` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantFile {
    /// The qualification type's name (`[qualification_types.NAME]`).
    pub qualification: String,
    pub file: PathBuf,
    /// In file order; WorkerIds are unique.
    pub rows: Vec<GrantRow>,
}

/// One row of a grants file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    pub worker_id: String,
    /// AssociateQualificationWithWorker's `IntegerValue`.
    pub value: i32,
    pub line: usize,
}

/// `transport` of a `[notifications]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NotificationTransport {
    #[serde(rename = "SQS")]
    Sqs,
    #[serde(rename = "SNS")]
    Sns,
}

impl NotificationTransport {
    /// The name MTurk uses.
    pub fn api_name(self) -> &'static str {
        match self {
            NotificationTransport::Sqs => "SQS",
            NotificationTransport::Sns => "SNS",
        }
    }
}

/// A campaign's `[notifications]`: what UpdateNotificationSettings sets on its HIT type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// As MTurk takes it: an SQS queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`,
    /// also written as the queue's ARN in the campaign file) or an SNS topic ARN.
    pub destination: String,
    pub transport: NotificationTransport,
    /// MTurk event type names, sorted and without repeats.
    pub events: Vec<String>,
}

/// Who made a block or a grant that state records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MadeBy {
    /// turkform made it (or is making it): it may undo it when the files stop asking for it.
    Turkform,
    /// A refresh found it and turkform did not make it: shown, never touched.
    Outside,
}

impl MadeBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MadeBy::Turkform => "turkform",
            MadeBy::Outside => "outside",
        }
    }

    pub fn parse(s: &str) -> Option<MadeBy> {
        match s {
            "turkform" => Some(MadeBy::Turkform),
            "outside" => Some(MadeBy::Outside),
            _ => None,
        }
    }
}

/// Where a block or grant turkform made stands: recorded before its call (the write-ahead
/// record that lets a refresh tell turkform's own block from one made outside after a crash),
/// confirmed after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerRecordStatus {
    /// The create/associate call was (or is about to be) sent; its outcome is not known.
    Adding,
    /// MTurk has it.
    Active,
    /// The delete/disassociate call was (or is about to be) sent.
    Removing,
}

impl WorkerRecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerRecordStatus::Adding => "adding",
            WorkerRecordStatus::Active => "active",
            WorkerRecordStatus::Removing => "removing",
        }
    }

    pub fn parse(s: &str) -> Option<WorkerRecordStatus> {
        match s {
            "adding" => Some(WorkerRecordStatus::Adding),
            "active" => Some(WorkerRecordStatus::Active),
            "removing" => Some(WorkerRecordStatus::Removing),
            _ => None,
        }
    }
}

/// A worker block in state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedBlock {
    pub worker_id: String,
    pub reason: String,
    pub made_by: MadeBy,
    /// Always `Active` for an outside block.
    pub status: WorkerRecordStatus,
    pub recorded_at: UnixTime,
}

/// A qualification granted to a worker, in state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedGrant {
    /// The custom type's name (as state records the type).
    pub qualification: String,
    pub qualification_type_id: String,
    pub worker_id: String,
    pub value: i32,
    pub made_by: MadeBy,
    pub status: WorkerRecordStatus,
    pub recorded_at: UnixTime,
}

/// The notification settings turkform last set on a HIT type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedNotification {
    pub hit_type_id: String,
    pub campaign: String,
    pub settings: NotificationSettings,
    /// `false` once the campaign's table was removed (UpdateNotificationSettings `Active` false).
    pub active: bool,
    pub updated_at: UnixTime,
}

/// Turns an SQS queue ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`) into the queue URL MTurk takes
/// as an SQS `Destination`; anything else is returned as it is.
pub fn sqs_destination(written: &str) -> String {
    let Some(rest) = written.strip_prefix("arn:aws:sqs:") else {
        return written.to_owned();
    };
    let mut parts = rest.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(region), Some(account), Some(name)) => {
            format!("https://sqs.{region}.amazonaws.com/{account}/{name}")
        }
        _ => written.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqs_arn_becomes_the_queue_url_mturk_takes() {
        assert_eq!(
            sqs_destination("arn:aws:sqs:us-east-1:123456789012:turk-events"),
            "https://sqs.us-east-1.amazonaws.com/123456789012/turk-events"
        );
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/q";
        assert_eq!(sqs_destination(url), url);
    }
}
