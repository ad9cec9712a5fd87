//! `turkform status`: progress per campaign, from state as the last refresh left it.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use turkform_model::{HitStatus, Money, RecordedHit, UnixTime};
use turkform_state::OpenMode;

use crate::cli::StatusArgs;
use crate::failure::Failure;
use crate::settings::Resolved;

#[derive(Debug, Default, Serialize)]
struct CampaignStatus {
    campaign: String,
    hits: usize,
    open: usize,
    expired: usize,
    assignments_completed: u64,
    assignments_pending: u64,
    assignments_wanted: u64,
    committed: Money,
}

pub fn run(resolved: &Resolved, args: &StatusArgs) -> Result<u8, Failure> {
    if !std::path::Path::new("turkform.toml").is_file() {
        // Outside a project, "no HITs in state yet" would be a wrong answer to a right question.
        let here = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".to_owned());
        return Err(Failure::user_msg(format!("no turkform.toml here (in `{here}`)"))
            .hint("run turkform in the project's folder, pass `-C DIR`, or create a project with `turkform init`"));
    }
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let recorded = store.load().map_err(super::state_failure)?;
    let now = UnixTime::now();
    // Only the newest generation of each item counts towards progress.
    let mut newest: BTreeMap<(&str, &str), &RecordedHit> = BTreeMap::new();
    for hit in &recorded.hits {
        let key = (hit.campaign.as_str(), hit.item_key.as_str());
        match newest.get(&key) {
            Some(h) if h.generation >= hit.generation => {}
            _ => {
                newest.insert(key, hit);
            }
        }
    }
    let mut campaigns: BTreeMap<&str, CampaignStatus> = BTreeMap::new();
    for hit in &recorded.hits {
        let entry = campaigns
            .entry(hit.campaign.as_str())
            .or_insert_with(|| CampaignStatus {
                campaign: hit.campaign.clone(),
                ..CampaignStatus::default()
            });
        entry.committed += hit.committed_cost;
    }
    for hit in newest.values() {
        let entry = campaigns
            .get_mut(hit.campaign.as_str())
            .expect("inserted above");
        entry.hits += 1;
        let open = hit.expiration > now
            && matches!(hit.status, HitStatus::Assignable | HitStatus::Unassignable);
        if open {
            entry.open += 1;
        } else {
            entry.expired += 1;
        }
        entry.assignments_completed += u64::from(hit.assignments_completed);
        entry.assignments_pending += u64::from(hit.assignments_pending);
        entry.assignments_wanted += u64::from(hit.max_assignments);
    }
    let rows: Vec<CampaignStatus> = campaigns
        .into_values()
        .filter(|c| {
            args.campaign
                .as_ref()
                .is_none_or(|name| &c.campaign == name)
        })
        .collect();
    if let Some(name) = &args.campaign
        && rows.is_empty()
    {
        return Err(Failure::user_msg(format!(
            "state has no HITs of campaign `{name}` for target {}",
            resolved.target
        )));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "target": resolved.target,
            "refreshed_at": recorded.refreshed_at,
            "campaigns": rows,
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json).map_err(Failure::internal)?
        )
        .map_err(Failure::internal)?;
        return Ok(0);
    }
    let refreshed = recorded
        .refreshed_at
        .map_or_else(|| "never".to_owned(), |t| t.to_string());
    writeln!(
        out,
        "target {} (last refresh: {refreshed})",
        resolved.target
    )
    .map_err(Failure::internal)?;
    if rows.is_empty() {
        writeln!(out, "no HITs in state yet; run `turkform apply`").map_err(Failure::internal)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{:<28} {:>7} {:>7} {:>8} {:>21} {:>12}",
        "CAMPAIGN", "HITS", "OPEN", "EXPIRED", "ASSIGNMENTS DONE", "COMMITTED"
    )
    .map_err(Failure::internal)?;
    for c in &rows {
        let pct = (c.assignments_completed * 100)
            .checked_div(c.assignments_wanted)
            .unwrap_or(0);
        writeln!(
            out,
            "{:<28} {:>7} {:>7} {:>8} {:>21} {:>12}",
            c.campaign,
            c.hits,
            c.open,
            c.expired,
            format!(
                "{}/{} ({pct}%)",
                c.assignments_completed, c.assignments_wanted
            ),
            c.committed.to_string(),
        )
        .map_err(Failure::internal)?;
    }
    Ok(0)
}
