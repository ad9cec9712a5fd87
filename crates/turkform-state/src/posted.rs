//! The SQL of what each HIT showed workers (schema 6): `hits.posted`, the HIT's [`PostedHit`]
//! as MTurk reported it, and `hit_groups`, each HIT group's size at the last refresh that
//! listed it. On `Tx`, in the portable SQL of `crate::db`, like `assignments`: it runs on both
//! backends. The posted row lives on the HIT's own row so that an export reads it with the HIT,
//! with no further lookup per assignment.

use std::collections::HashMap;

use turkform_model::{PostedHit, Target};

use crate::db::{DbError, Tx};
use crate::journal::Batch;

fn bad(detail: String) -> DbError {
    DbError::Decode(detail)
}

/// A `posted` column's value.
pub(crate) fn parse(json: Option<String>) -> Result<Option<PostedHit>, DbError> {
    json.map(|j| serde_json::from_str(&j).map_err(|e| bad(format!("posted: {e}"))))
        .transpose()
}

/// The posted part of a commit, in the caller's transaction (after its `upsert_hits`).
pub(crate) fn write(tx: &mut Tx<'_>, target: Target, batch: &Batch) -> Result<(), DbError> {
    let t = target.as_str();
    for p in &batch.upsert_posted {
        let json = serde_json::to_string(p).map_err(|e| bad(e.to_string()))?;
        tx.execute(
            "UPDATE hits SET posted = ?1 WHERE target = ?2 AND hit_id = ?3",
            &[&json, &t, &p.hit_id],
        )?;
    }
    for g in &batch.hit_group_sizes {
        tx.execute(
            "INSERT INTO hit_groups (target, hit_group_id, similar_hits, counted_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (target, hit_group_id) DO UPDATE SET
                similar_hits = excluded.similar_hits, counted_at = excluded.counted_at",
            &[&t, &g.hit_group_id, &g.similar_hits, &g.counted_at.0],
        )?;
    }
    Ok(())
}

/// Every recorded HIT's posted row, by hit id (what a refresh compares MTurk's listing with).
pub(crate) fn all(tx: &mut Tx<'_>, target: Target) -> Result<HashMap<String, PostedHit>, DbError> {
    let mut out = HashMap::new();
    tx.query(
        "SELECT hit_id, posted FROM hits WHERE target = ?1 AND posted IS NOT NULL",
        &[&target.as_str()],
        |r| {
            if let Some(p) = parse(r.get(1)?)? {
                out.insert(r.get::<String>(0)?, p);
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// Each recorded HIT group's last counted size, by group id.
pub(crate) fn group_sizes(
    tx: &mut Tx<'_>,
    target: Target,
) -> Result<HashMap<String, u32>, DbError> {
    let rows = tx.query_all(
        "SELECT hit_group_id, similar_hits FROM hit_groups WHERE target = ?1",
        &[&target.as_str()],
        |r| Ok((r.get::<String>(0)?, r.get::<u32>(1)?)),
    )?;
    Ok(rows.into_iter().collect())
}
