//! The SQL of results: assignments, the data row each HIT was posted with, the account balance.
//!
//! Every function takes a `Tx` (a read snapshot or a write transaction, on SQLite or
//! PostgreSQL) and speaks the portable SQL of `crate::db` (`?N` placeholders, `ON CONFLICT`,
//! `CASE`, no JSON functions). JSON columns are parsed here, in Rust.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use turkform_model::{
    AssignmentStatus, DecidedBy, Money, PostedHit, RecordedAssignment, Target, UnixTime,
};

use crate::db::{DbError, Row, Tx};
use crate::journal::{AccountBalance, Batch};

/// Rows a PostgreSQL export fetches from its server-side portal at a time: memory holds at most
/// this many decoded rows, however many assignments there are.
const EXPORT_CHUNK: i32 = 256;

/// Which assignments an export visits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    /// Only these campaigns (empty: every campaign).
    pub campaigns: Vec<String>,
    /// Only this status (`None`: all).
    pub status: Option<AssignmentStatus>,
}

/// What an export needs of the HIT an assignment belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportHit {
    pub hit_id: String,
    pub hit_type_id: String,
    pub hit_type_hash: String,
    pub max_assignments: u32,
    pub created_at: UnixTime,
    pub expiration: UnixTime,
    /// The data row it was posted with; `None` when state does not know it.
    pub input: Option<Vec<(String, String)>>,
    /// What MTurk reported the HIT shows workers; `None` when state does not know it (a HIT no
    /// refresh has listed since schema 6, or an older state read as it is).
    pub posted: Option<PostedHit>,
    /// The size of the HIT's group at the last refresh that listed it (`NumberOfSimilarHITs`).
    pub similar_hits: Option<u32>,
}

/// One assignment with its HIT, as [`crate::StateStore::visit_assignments`] hands it out.
/// Consecutive assignments of one HIT share its [`ExportHit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRow {
    pub assignment: RecordedAssignment,
    pub hit: Arc<ExportHit>,
}

/// One assignment as a summary (a report's counts, time series and agreement) needs it: no
/// answer XML, no posted row, no HIT columns, and the answers only where the caller asked for
/// them. Handed out by [`crate::StateStore::visit_assignment_summaries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentSummary {
    pub campaign: String,
    pub item_key: String,
    pub generation: u32,
    pub hit_id: String,
    pub assignment_id: String,
    pub worker_id: String,
    pub status: AssignmentStatus,
    pub submit_time: Option<UnixTime>,
    pub approval_time: Option<UnixTime>,
    pub rejection_time: Option<UnixTime>,
    /// The flattened answers (field -> value); `None` when the caller did not want them.
    pub answers: Option<BTreeMap<String, String>>,
}

/// How many assignments of one HIT have one status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssignmentCount {
    pub hit_id: String,
    pub campaign: String,
    pub status: AssignmentStatus,
    pub count: u64,
}

/// A worker's decided assignments with this requester, all time and within two windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkerDecisions {
    pub approved: u64,
    pub decided: u64,
    pub approved_30d: u64,
    pub decided_30d: u64,
    pub approved_7d: u64,
    pub decided_7d: u64,
}

impl WorkerDecisions {
    /// Counts one of the worker's assignments as [`crate::StateStore::worker_decisions`]
    /// counts it, for a caller that already streams the assignments and would rather not run
    /// that query as well: decided is approved or rejected, the windows are decisions at or
    /// after 30 and 7 days before `now`.
    pub fn count(
        &mut self,
        status: AssignmentStatus,
        approval_time: Option<UnixTime>,
        rejection_time: Option<UnixTime>,
        now: UnixTime,
    ) {
        let within =
            |t: Option<UnixTime>, days: i64| t.is_some_and(|t| t.0 >= now.0 - days * 86_400);
        let (approved, rejected) = match status {
            AssignmentStatus::Submitted => return,
            AssignmentStatus::Approved => (true, false),
            AssignmentStatus::Rejected => (false, true),
        };
        self.decided += 1;
        self.approved += u64::from(approved);
        for (days, approved_n, decided_n) in [
            (30, &mut self.approved_30d, &mut self.decided_30d),
            (7, &mut self.approved_7d, &mut self.decided_7d),
        ] {
            let approved_in = approved && within(approval_time, days);
            if approved_in || (rejected && within(rejection_time, days)) {
                *decided_n += 1;
            }
            *approved_n += u64::from(approved_in);
        }
    }
}

fn bad(detail: String) -> DbError {
    DbError::Decode(detail)
}

fn to_json<T: Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| bad(e.to_string()))
}

/// The results part of a commit: assignments, posted rows and the balance, in the caller's
/// transaction (so they land with the HIT counters of the same batch, or not at all).
pub(crate) fn write(tx: &mut Tx<'_>, target: Target, batch: &Batch) -> Result<(), DbError> {
    let t = target.as_str();
    for a in &batch.upsert_assignments {
        let answers = to_json(&a.answers)?;
        tx.execute(
            "INSERT INTO assignments (target, assignment_id, hit_id, campaign, item_key,
                                      generation, worker_id, status, accept_time, submit_time,
                                      auto_approval_time, approval_time, rejection_time,
                                      answer_xml, answers, requester_feedback, decided_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (target, assignment_id) DO UPDATE SET
                hit_id = excluded.hit_id, campaign = excluded.campaign,
                item_key = excluded.item_key, generation = excluded.generation,
                worker_id = excluded.worker_id, status = excluded.status,
                accept_time = excluded.accept_time, submit_time = excluded.submit_time,
                auto_approval_time = excluded.auto_approval_time,
                approval_time = excluded.approval_time, rejection_time = excluded.rejection_time,
                answer_xml = excluded.answer_xml, answers = excluded.answers,
                requester_feedback = excluded.requester_feedback,
                decided_by = excluded.decided_by",
            &[
                &t,
                &a.assignment_id,
                &a.hit_id,
                &a.campaign,
                &a.item_key,
                &a.generation,
                &a.worker_id,
                &a.status.api_name(),
                &a.accept_time.map(|x| x.0),
                &a.submit_time.map(|x| x.0),
                &a.auto_approval_time.map(|x| x.0),
                &a.approval_time.map(|x| x.0),
                &a.rejection_time.map(|x| x.0),
                &a.answer_xml,
                &answers,
                &a.requester_feedback,
                &a.decided_by.map(DecidedBy::as_str),
            ],
        )?;
    }
    for input in &batch.hit_inputs {
        let row = to_json(&input.row)?;
        tx.execute(
            "UPDATE hits SET input_row = ?1 WHERE target = ?2 AND hit_id = ?3",
            &[&row, &t, &input.hit_id],
        )?;
    }
    if let Some(b) = batch.account_balance {
        tx.execute(
            "INSERT INTO partitions (target, serial, balance_cents, balance_read_at)
             VALUES (?1, 0, ?2, ?3)
             ON CONFLICT (target) DO UPDATE SET
                balance_cents = excluded.balance_cents, balance_read_at = excluded.balance_read_at",
            &[&t, &b.available.cents(), &b.read_at.0],
        )?;
    }
    Ok(())
}

pub(crate) fn account_balance(
    tx: &mut Tx<'_>,
    target: Target,
) -> Result<Option<AccountBalance>, DbError> {
    let row = tx.query_opt(
        "SELECT balance_cents, balance_read_at FROM partitions WHERE target = ?1",
        &[&target.as_str()],
        |r| Ok((r.get::<Option<i64>>(0)?, r.get::<Option<i64>>(1)?)),
    )?;
    Ok(match row {
        Some((Some(cents), Some(at))) => Some(AccountBalance {
            available: Money::from_cents(cents),
            read_at: UnixTime(at),
        }),
        _ => None,
    })
}

const ASSIGNMENT_COLUMNS: &str = "a.assignment_id, a.hit_id, a.campaign, a.item_key, a.generation,
    a.worker_id, a.status, a.accept_time, a.submit_time, a.auto_approval_time, a.approval_time,
    a.rejection_time, a.answer_xml, a.answers, a.requester_feedback, a.decided_by";

fn status_from(r: &Row<'_>, i: usize) -> Result<AssignmentStatus, DbError> {
    let raw: String = r.get(i)?;
    AssignmentStatus::parse(&raw)
        .ok_or_else(|| bad(format!("column {i}: unknown assignment status `{raw}`")))
}

/// Reads the 16 columns of [`ASSIGNMENT_COLUMNS`] starting at column 0.
fn assignment_from_row(r: &Row<'_>) -> Result<RecordedAssignment, DbError> {
    let status = status_from(r, 6)?;
    let answers_raw: String = r.get(13)?;
    let answers: BTreeMap<String, String> =
        serde_json::from_str(&answers_raw).map_err(|e| bad(format!("answers: {e}")))?;
    let decided_by = match r.get::<Option<String>>(15)? {
        None => None,
        Some(raw) => {
            Some(DecidedBy::parse(&raw).ok_or_else(|| bad(format!("unknown decider `{raw}`")))?)
        }
    };
    let time = |i: usize| -> Result<Option<UnixTime>, DbError> {
        Ok(r.get::<Option<i64>>(i)?.map(UnixTime))
    };
    Ok(RecordedAssignment {
        assignment_id: r.get(0)?,
        hit_id: r.get(1)?,
        campaign: r.get(2)?,
        item_key: r.get(3)?,
        generation: r.get(4)?,
        worker_id: r.get(5)?,
        status,
        accept_time: time(7)?,
        submit_time: time(8)?,
        auto_approval_time: time(9)?,
        approval_time: time(10)?,
        rejection_time: time(11)?,
        answer_xml: r.get(12)?,
        answers,
        requester_feedback: r.get(14)?,
        decided_by,
    })
}

/// Every recorded assignment of one HIT, by assignment id.
pub(crate) fn of_hit(
    tx: &mut Tx<'_>,
    target: Target,
    hit_id: &str,
) -> Result<Vec<RecordedAssignment>, DbError> {
    tx.query_all(
        &format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM assignments a
             WHERE a.target = ?1 AND a.hit_id = ?2 ORDER BY a.assignment_id"
        ),
        &[&target.as_str(), &hit_id],
        assignment_from_row,
    )
}

/// The HITs holding an undecided assignment whose auto-approval time is at or before `now`:
/// MTurk has approved it by now, whatever the counters say.
pub(crate) fn hits_past_auto_approval(
    tx: &mut Tx<'_>,
    target: Target,
    now: UnixTime,
) -> Result<Vec<String>, DbError> {
    tx.query_all(
        "SELECT DISTINCT hit_id FROM assignments
         WHERE target = ?1 AND status = 'Submitted' AND auto_approval_time <= ?2
         ORDER BY hit_id",
        &[&target.as_str(), &now.0],
        |r| r.get::<String>(0),
    )
}

/// Assignments per HIT and status.
pub(crate) fn counts(tx: &mut Tx<'_>, target: Target) -> Result<Vec<AssignmentCount>, DbError> {
    tx.query_all(
        "SELECT hit_id, campaign, status, count(*) FROM assignments WHERE target = ?1
         GROUP BY hit_id, campaign, status ORDER BY campaign, hit_id, status",
        &[&target.as_str()],
        |r| {
            Ok(AssignmentCount {
                hit_id: r.get(0)?,
                campaign: r.get(1)?,
                status: status_from(r, 2)?,
                count: r.get(3)?,
            })
        },
    )
}

/// This requester's decisions per worker: all time, and decided within 30 and 7 days of `now`.
pub(crate) fn worker_decisions(
    tx: &mut Tx<'_>,
    target: Target,
    now: UnixTime,
) -> Result<BTreeMap<String, WorkerDecisions>, DbError> {
    let d30 = now.0 - 30 * 86_400;
    let d7 = now.0 - 7 * 86_400;
    // SUM over integer literals is BIGINT on PostgreSQL and INTEGER on SQLite: `i64` on both.
    let rows = tx.query_all(
        "SELECT worker_id,
                SUM(CASE WHEN status = 'Approved' THEN 1 ELSE 0 END),
                SUM(CASE WHEN status <> 'Submitted' THEN 1 ELSE 0 END),
                SUM(CASE WHEN status = 'Approved' AND approval_time >= ?2 THEN 1 ELSE 0 END),
                SUM(CASE WHEN (status = 'Approved' AND approval_time >= ?2)
                           OR (status = 'Rejected' AND rejection_time >= ?2) THEN 1 ELSE 0 END),
                SUM(CASE WHEN status = 'Approved' AND approval_time >= ?3 THEN 1 ELSE 0 END),
                SUM(CASE WHEN (status = 'Approved' AND approval_time >= ?3)
                           OR (status = 'Rejected' AND rejection_time >= ?3) THEN 1 ELSE 0 END)
         FROM assignments WHERE target = ?1 GROUP BY worker_id",
        &[&target.as_str(), &d30, &d7],
        |r| {
            Ok((
                r.get::<String>(0)?,
                WorkerDecisions {
                    approved: r.get(1)?,
                    decided: r.get(2)?,
                    approved_30d: r.get(3)?,
                    decided_30d: r.get(4)?,
                    approved_7d: r.get(5)?,
                    decided_7d: r.get(6)?,
                },
            ))
        },
    )?;
    Ok(rows.into_iter().collect())
}

/// What [`visit`] reads besides the assignments and their HITs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VisitOptions {
    /// Each assignment's raw answer XML (otherwise left empty: exports and aggregation read the
    /// parsed answers, and the XML is most of a row's bytes).
    pub answer_xml: bool,
    /// The HIT's posted row and group size (schema 6 on).
    pub posted: bool,
}

/// Streams the assignments `filter` selects, with their HIT, ordered by campaign, item,
/// generation, submit time and id, calling `each` once per row. Memory does not grow with the
/// number of rows: SQLite steps its cursor one row at a time, PostgreSQL fetches from a
/// server-side portal [`EXPORT_CHUNK`] rows at a time. `each` returns `false` to stop early.
/// The caller runs this inside one read transaction (one snapshot).
///
/// The rows of one HIT come one after another, so a HIT's columns are decoded (and its posted
/// data row parsed) once per HIT, not once per assignment: consecutive rows share one
/// [`ExportHit`].
pub(crate) fn visit(
    tx: &mut Tx<'_>,
    target: Target,
    filter: &AssignmentFilter,
    options: VisitOptions,
    each: &mut dyn FnMut(ExportRow) -> bool,
) -> Result<(), DbError> {
    let columns = if options.answer_xml {
        ASSIGNMENT_COLUMNS.to_owned()
    } else {
        ASSIGNMENT_COLUMNS.replace("a.answer_xml", "''")
    };
    let posted_column = if options.posted { ", h.posted" } else { "" };
    let mut sql = format!(
        "SELECT {columns}, h.hit_type_id, h.hit_type_hash, h.max_assignments,
                h.created_at, h.expiration, h.input_row{posted_column}
         FROM assignments a JOIN hits h ON h.target = a.target AND h.hit_id = a.hit_id
         WHERE a.target = ?1"
    );
    if filter.status.is_some() {
        sql.push_str(" AND a.status = ?2");
    }
    sql.push_str(" ORDER BY a.campaign, a.item_key, a.generation, a.submit_time, a.assignment_id");
    let groups = if options.posted {
        crate::posted::group_sizes(tx, target)?
    } else {
        std::collections::HashMap::new()
    };
    let t = target.as_str();
    let status = filter.status.map_or("", AssignmentStatus::api_name);
    // Campaigns are filtered here rather than with an IN list of variable length: the query
    // stays one prepared statement, and the number of campaigns is small.
    let wanted = |campaign: &str| {
        filter.campaigns.is_empty() || filter.campaigns.iter().any(|c| c == campaign)
    };
    let with_status: [&dyn crate::db::Param; 2] = [&t, &status];
    let params: &[&dyn crate::db::Param] = if filter.status.is_some() {
        &with_status
    } else {
        &with_status[..1]
    };
    let mut last: Option<Arc<ExportHit>> = None;
    tx.stream(&sql, params, EXPORT_CHUNK, |r| {
        let campaign: String = r.get(2)?;
        if !wanted(&campaign) {
            return Ok(true);
        }
        let assignment = assignment_from_row(r)?;
        let hit = match &last {
            Some(h) if h.hit_id == assignment.hit_id => Arc::clone(h),
            _ => {
                let hit = Arc::new(hit_from_row(
                    r,
                    &assignment.hit_id,
                    options.posted,
                    &groups,
                )?);
                last = Some(Arc::clone(&hit));
                hit
            }
        };
        Ok(each(ExportRow { assignment, hit }))
    })
}

/// Streams [`AssignmentSummary`]s of every recorded assignment of `campaigns` (all when
/// empty), in [`visit`]'s order, which the `assignments_by_item` index holds, so nothing is
/// sorted. Compared with [`visit`], a row reads 11 columns instead of 22, is not joined with
/// its HIT (so assignments of a HIT `state rm` forgot are visited too: a caller that follows
/// the export drops those whose `hit_id` is not among [`crate::StateStore::load_hits`]), skips
/// the answer XML and the HIT's posted row, and decodes its answers JSON only when
/// `wants_answers` says so.
pub(crate) fn visit_summaries(
    tx: &mut Tx<'_>,
    target: Target,
    campaigns: &[String],
    wants_answers: &dyn Fn(&str, &str, AssignmentStatus) -> bool,
    each: &mut dyn FnMut(AssignmentSummary) -> bool,
) -> Result<(), DbError> {
    let sql = "SELECT campaign, item_key, generation, hit_id, assignment_id, worker_id, status,
                      submit_time, approval_time, rejection_time, answers
               FROM assignments WHERE target = ?1
               ORDER BY campaign, item_key, generation, submit_time, assignment_id";
    let wanted = |campaign: &str| campaigns.is_empty() || campaigns.iter().any(|c| c == campaign);
    tx.stream(sql, &[&target.as_str()], EXPORT_CHUNK, |r| {
        let campaign: String = r.get(0)?;
        if !wanted(&campaign) {
            return Ok(true);
        }
        let item_key: String = r.get(1)?;
        let status = status_from(r, 6)?;
        let answers = if wants_answers(&campaign, &item_key, status) {
            let raw: String = r.get(10)?;
            Some(serde_json::from_str(&raw).map_err(|e| bad(format!("answers: {e}")))?)
        } else {
            None
        };
        let time = |i: usize| -> Result<Option<UnixTime>, DbError> {
            Ok(r.get::<Option<i64>>(i)?.map(UnixTime))
        };
        Ok(each(AssignmentSummary {
            campaign,
            item_key,
            generation: r.get(2)?,
            hit_id: r.get(3)?,
            assignment_id: r.get(4)?,
            worker_id: r.get(5)?,
            status,
            submit_time: time(7)?,
            approval_time: time(8)?,
            rejection_time: time(9)?,
            answers,
        }))
    })
}

/// The HIT columns of an export row (from column 16 on).
fn hit_from_row(
    r: &Row<'_>,
    hit_id: &str,
    posted: bool,
    groups: &std::collections::HashMap<String, u32>,
) -> Result<ExportHit, DbError> {
    let input = match r.get::<Option<String>>(21)? {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<Vec<(String, String)>>(&json)
                .map_err(|e| bad(format!("input row: {e}")))?,
        ),
    };
    let posted = if posted {
        crate::posted::parse(r.get(22)?)?
    } else {
        None
    };
    let similar_hits = posted
        .as_ref()
        .and_then(|p| groups.get(&p.hit_group_id).copied());
    Ok(ExportHit {
        hit_id: hit_id.to_owned(),
        hit_type_id: r.get(16)?,
        hit_type_hash: r.get(17)?,
        max_assignments: r.get(18)?,
        created_at: UnixTime(r.get(19)?),
        expiration: UnixTime(r.get(20)?),
        input,
        posted,
        similar_hits,
    })
}

/// The Input columns of every HIT of `campaign` that has an assignment, first seen in export
/// order: a pass over the HITs (not the assignments) so that the CSV header can be written
/// before the rows stream.
pub(crate) fn input_columns(
    tx: &mut Tx<'_>,
    target: Target,
    campaign: &str,
) -> Result<Vec<String>, DbError> {
    let mut seen: Vec<String> = Vec::new();
    tx.query(
        "SELECT h.input_row FROM hits h
         WHERE h.target = ?1 AND h.campaign = ?2 AND h.input_row IS NOT NULL
           AND EXISTS (SELECT 1 FROM assignments a WHERE a.target = h.target AND a.hit_id = h.hit_id)
         ORDER BY h.item_key, h.generation",
        &[&target.as_str(), &campaign],
        |r| {
            let raw: String = r.get(0)?;
            // Only the column names are wanted: borrowed from the text, as in `answer_fields`.
            match serde_json::from_str::<Vec<(&str, serde::de::IgnoredAny)>>(&raw) {
                Ok(row) => {
                    for (column, _) in row {
                        if !seen.iter().any(|c| c == column) {
                            seen.push(column.to_owned());
                        }
                    }
                }
                Err(_) => {
                    let row: Vec<(String, String)> = serde_json::from_str(&raw)
                        .map_err(|e| bad(format!("input row: {e}")))?;
                    for (column, _) in row {
                        if !seen.contains(&column) {
                            seen.push(column);
                        }
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(seen)
}

/// The answer fields of `campaign`'s assignments (sorted). One pass over the answers column,
/// holding only the set of field names.
pub(crate) fn answer_fields(
    tx: &mut Tx<'_>,
    target: Target,
    campaign: &str,
) -> Result<Vec<String>, DbError> {
    let mut fields: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    tx.query(
        "SELECT answers FROM assignments WHERE target = ?1 AND campaign = ?2",
        &[&target.as_str(), &campaign],
        |r| {
            let raw: String = r.get(0)?;
            // Only the keys are wanted: borrowed from the text (nothing allocated for a field
            // already seen), unless one needs unescaping, which a borrowed key cannot hold.
            match serde_json::from_str::<BTreeMap<&str, serde::de::IgnoredAny>>(&raw) {
                Ok(keys) => {
                    for key in keys.into_keys() {
                        if !fields.contains(key) {
                            fields.insert(key.to_owned());
                        }
                    }
                }
                Err(_) => {
                    let answers: BTreeMap<String, String> =
                        serde_json::from_str(&raw).map_err(|e| bad(format!("answers: {e}")))?;
                    fields.extend(answers.into_keys());
                }
            }
            Ok(())
        },
    )?;
    Ok(fields.into_iter().collect())
}

/// The campaigns that have at least one assignment, by name.
pub(crate) fn campaigns(tx: &mut Tx<'_>, target: Target) -> Result<Vec<String>, DbError> {
    tx.query_all(
        "SELECT DISTINCT campaign FROM assignments WHERE target = ?1 ORDER BY campaign",
        &[&target.as_str()],
        |r| r.get::<String>(0),
    )
}
