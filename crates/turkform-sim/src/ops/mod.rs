//! The 39 operations of the MTurk Requester API (2017-01-17), each a function of the world, a
//! request context and the request's members, returning the response object or an [`ApiError`].
//!
//! [`OPERATIONS`] is the one list: the server looks an operation up in it, runs its handler, and
//! counts it as mutating or not from the same entry, so the list, the dispatch and the mutating
//! set cannot drift apart. The handlers live by subject in the submodules.

use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use crate::ids;
use crate::money::{self, Cents};
use crate::validate::{self, QuestionKind};
use crate::wire::{self, ApiError, ApiResult, Input};
use crate::world::{
    Assignment, Block, Bonus, Hit, HitType, Key, NotificationSetting, OVERRIDE_WINDOW_MS, QualType,
    Qualification, Requirement, World,
};

mod assignments;
mod hits;
mod notifications;
mod qualification_types;
mod qualifications;
mod workers;

// Siblings call each other's helpers (HIT listings check a qualification type, qualification
// types list their HITs) through these.
use hits::*;
use qualification_types::*;

pub use hits::{hit_json, question_kind};

/// One handler: the world, the request context and the request's members in, the response
/// object or MTurk's error out.
pub(crate) type Handler = fn(&mut World, &mut Ctx<'_>, &Input<'_>) -> ApiResult<Value>;

/// An operation of the API.
pub struct Operation {
    /// The wire name (`X-Amz-Target: MTurkRequesterServiceV20170117.<name>`).
    pub name: &'static str,
    /// Changes the account or reaches workers: everything but the `Get*` and `List*` reads.
    /// Tests and benchmarks count these to prove a run made no change (or how many), so that no
    /// mutating operation can go unseen.
    pub mutating: bool,
    pub(crate) handler: Handler,
}

impl Operation {
    const fn read(name: &'static str, handler: Handler) -> Operation {
        Operation {
            name,
            mutating: false,
            handler,
        }
    }

    const fn write(name: &'static str, handler: Handler) -> Operation {
        Operation {
            name,
            mutating: true,
            handler,
        }
    }
}

/// Every operation of the API, by its wire name, sorted.
pub static OPERATIONS: &[Operation] = &[
    Operation::write(
        "AcceptQualificationRequest",
        qualifications::accept_qualification_request,
    ),
    Operation::write("ApproveAssignment", assignments::approve_assignment),
    Operation::write(
        "AssociateQualificationWithWorker",
        qualifications::associate_qualification,
    ),
    Operation::write(
        "CreateAdditionalAssignmentsForHIT",
        hits::create_additional_assignments,
    ),
    Operation::write("CreateHIT", hits::create_hit),
    Operation::write("CreateHITType", hits::create_hit_type),
    Operation::write("CreateHITWithHITType", hits::create_hit_with_hit_type),
    Operation::write(
        "CreateQualificationType",
        qualification_types::create_qualification_type,
    ),
    Operation::write("CreateWorkerBlock", |w, _, i| {
        workers::create_worker_block(w, i)
    }),
    Operation::write("DeleteHIT", hits::delete_hit),
    Operation::write("DeleteQualificationType", |w, _, i| {
        qualification_types::delete_qualification_type(w, i)
    }),
    Operation::write("DeleteWorkerBlock", |w, _, i| {
        workers::delete_worker_block(w, i)
    }),
    Operation::write("DisassociateQualificationFromWorker", |w, _, i| {
        qualifications::disassociate_qualification(w, i)
    }),
    Operation::read("GetAccountBalance", |w, _, _| {
        assignments::get_account_balance(w)
    }),
    Operation::read("GetAssignment", assignments::get_assignment),
    Operation::read("GetFileUploadURL", assignments::get_file_upload_url),
    Operation::read("GetHIT", hits::get_hit),
    Operation::read("GetQualificationScore", |w, _, i| {
        qualifications::get_qualification_score(w, i)
    }),
    Operation::read("GetQualificationType", |w, _, i| {
        qualification_types::get_qualification_type(w, i)
    }),
    Operation::read("ListAssignmentsForHIT", assignments::list_assignments),
    Operation::read("ListBonusPayments", |w, _, i| {
        assignments::list_bonus_payments(w, i)
    }),
    Operation::read("ListHITs", hits::list_all_hits),
    Operation::read(
        "ListHITsForQualificationType",
        hits::list_hits_for_qualification_type,
    ),
    Operation::read("ListQualificationRequests", |w, _, i| {
        qualifications::list_qualification_requests(w, i)
    }),
    Operation::read("ListQualificationTypes", |w, _, i| {
        qualification_types::list_qualification_types(w, i)
    }),
    Operation::read(
        "ListReviewPolicyResultsForHIT",
        assignments::list_review_policy_results,
    ),
    Operation::read("ListReviewableHITs", hits::list_reviewable_hits),
    Operation::read("ListWorkerBlocks", |w, _, i| {
        workers::list_worker_blocks(w, i)
    }),
    Operation::read("ListWorkersWithQualificationType", |w, _, i| {
        qualifications::list_workers_with_qualification(w, i)
    }),
    Operation::write("NotifyWorkers", |w, _, i| workers::notify_workers(w, i)),
    Operation::write("RejectAssignment", assignments::reject_assignment),
    Operation::write("RejectQualificationRequest", |w, _, i| {
        qualifications::reject_qualification_request(w, i)
    }),
    Operation::write("SendBonus", assignments::send_bonus),
    Operation::write("SendTestEventNotification", |w, _, i| {
        notifications::send_test_event_notification(w, i)
    }),
    Operation::write("UpdateExpirationForHIT", hits::update_expiration),
    Operation::write("UpdateHITReviewStatus", hits::update_hit_review_status),
    Operation::write("UpdateHITTypeOfHIT", hits::update_hit_type_of_hit),
    Operation::write("UpdateNotificationSettings", |w, _, i| {
        notifications::update_notification_settings(w, i)
    }),
    Operation::write("UpdateQualificationType", |w, _, i| {
        qualification_types::update_qualification_type(w, i)
    }),
];

/// The operation named `name`, if the API has one.
pub fn operation(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.name == name)
}

/// The names of the mutating operations (see [`Operation::mutating`]).
pub fn mutating_operations() -> impl Iterator<Item = &'static str> {
    OPERATIONS.iter().filter(|o| o.mutating).map(|o| o.name)
}

/// What an operation may read besides the world.
pub struct Ctx<'a> {
    /// Virtual now, epoch milliseconds.
    pub now: i64,
    pub min_reward: Cents,
    /// [`crate::SimConfig::local_external_urls`].
    pub local_external_urls: bool,
    /// Id generation.
    pub rng: &'a mut StdRng,
}
