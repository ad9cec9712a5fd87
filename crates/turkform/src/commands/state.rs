//! `turkform state list | show | rm | mv | runs | force-unlock | migrate`.

use std::io::Write;

use turkform_model::RecordedHit;
use turkform_state::OpenMode;

use crate::cli::StateCommand;
use crate::failure::Failure;
use crate::settings::Resolved;

pub fn run(resolved: &Resolved, cmd: StateCommand) -> Result<u8, Failure> {
    match cmd {
        StateCommand::List { campaign, json } => list(resolved, campaign.as_deref(), json),
        StateCommand::Show { item } => show(resolved, &item),
        StateCommand::Rm { item } => rm(resolved, &item),
        StateCommand::Mv { from, to } => mv(resolved, &from, &to),
        StateCommand::Runs { limit, json } => runs(resolved, limit, json),
        StateCommand::ForceUnlock => force_unlock(resolved),
        StateCommand::Migrate { to, lock_timeout } => migrate(resolved, &to, &lock_timeout),
    }
}

/// Newest first, one line each; a run with no end is still running or was killed (the lock
/// holder, if any, tells which).
fn runs(resolved: &Resolved, limit: usize, json: bool) -> Result<u8, Failure> {
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let runs = store.runs(limit).map_err(super::state_failure)?;
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&runs).map_err(Failure::internal)?;
        writeln!(out, "{text}").map_err(Failure::internal)?;
        return Ok(0);
    }
    if runs.is_empty() {
        writeln!(
            out,
            "No runs recorded for target {} yet (apply and refresh record theirs).",
            resolved.target
        )
        .map_err(Failure::internal)?;
        return Ok(0);
    }
    for r in &runs {
        let who = if r.user.is_empty() {
            format!("{} pid {}", r.host, r.pid)
        } else {
            format!("{}@{} pid {}", r.user, r.host, r.pid)
        };
        let ended = match (&r.finished_at, &r.result) {
            (Some(at), Some(result)) => format!(
                "{} ({}s): {result}",
                at.to_rfc3339(),
                at.secs_since(r.started_at)
            ),
            _ => "no end recorded (still running, or killed)".to_owned(),
        };
        writeln!(
            out,
            "#{}  {}  {}  {}\n    {}",
            r.id,
            r.started_at.to_rfc3339(),
            r.command,
            who,
            ended
        )
        .map_err(Failure::internal)?;
    }
    Ok(0)
}

fn list(resolved: &Resolved, campaign: Option<&str>, json: bool) -> Result<u8, Failure> {
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let recorded = store.load().map_err(super::state_failure)?;
    let mut out = std::io::stdout().lock();
    let mut hits: Vec<&RecordedHit> = recorded
        .hits
        .iter()
        .filter(|h| campaign.is_none_or(|c| h.campaign == c))
        .collect();
    hits.sort_by(|a, b| {
        (&a.campaign, &a.item_key, a.generation).cmp(&(&b.campaign, &b.item_key, b.generation))
    });
    if let Some(c) = campaign
        && hits.is_empty()
    {
        // A typo must not look like an empty campaign.
        let mut known: Vec<&str> = recorded.hits.iter().map(|h| h.campaign.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        let hint = if known.is_empty() {
            "state has no HITs yet; `turkform apply` records them".to_owned()
        } else {
            format!("campaigns in state: {}", known.join(", "))
        };
        return Err(Failure::user_msg(format!(
            "state has no campaign `{c}` for target {}",
            resolved.target
        ))
        .hint(hint));
    }
    if json {
        let text = serde_json::to_string_pretty(&hits).map_err(Failure::internal)?;
        writeln!(out, "{text}").map_err(Failure::internal)?;
        return Ok(0);
    }
    for h in hits {
        writeln!(
            out,
            "{}/{}\tgeneration {}\t{}\t{}\texpires {}{}",
            h.campaign,
            h.item_key,
            h.generation,
            h.hit_id,
            h.status.api_name(),
            h.expiration,
            h.expired_by
                .map(|e| format!(
                    "\texpired by turkform ({})",
                    crate::render::expired_by_text(e)
                ))
                .unwrap_or_default()
        )
        .map_err(Failure::internal)?;
    }
    Ok(0)
}

/// `CAMPAIGN/KEY` or a bare HIT id.
fn matches(hit: &RecordedHit, item: &str) -> bool {
    match item.split_once('/') {
        Some((c, k)) => hit.campaign == c && hit.item_key == k,
        None => hit.hit_id == item,
    }
}

fn show(resolved: &Resolved, item: &str) -> Result<u8, Failure> {
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let recorded = store.load().map_err(super::state_failure)?;
    let hits: Vec<&RecordedHit> = recorded.hits.iter().filter(|h| matches(h, item)).collect();
    if hits.is_empty() {
        return Err(Failure::user_msg(format!(
            "state has no item or HIT `{item}` for target {}",
            resolved.target
        ))
        .hint("name an item as CAMPAIGN/KEY, or give a HIT id; `turkform state list` lists them"));
    }
    let json = serde_json::to_string_pretty(&hits).map_err(Failure::internal)?;
    writeln!(std::io::stdout().lock(), "{json}").map_err(Failure::internal)?;
    Ok(0)
}

fn rm(resolved: &Resolved, item: &str) -> Result<u8, Failure> {
    let mut store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadWrite)?;
    let _lock = store
        .lock("turkform state rm", std::time::Duration::ZERO)
        .map_err(super::state_failure)?;
    refuse_with_pending_intents(&store)?;
    let removed = match item.split_once('/') {
        Some((campaign, key)) => store
            .remove_item(campaign, key)
            .map_err(super::state_failure)?,
        None => {
            store.remove_hit(item).map_err(super::state_failure)?;
            1
        }
    };
    eprintln!(
        "forgot {removed} HIT record(s) for `{item}`; nothing was changed on MTurk, and turkform \
         will never adopt them again (the next plan posts the item afresh as a new generation)"
    );
    Ok(0)
}

/// A repair in the middle of an interrupted apply would be undone (or confused) by the
/// recovery that finishes it.
fn refuse_with_pending_intents(store: &turkform_state::StateStore) -> Result<(), Failure> {
    let pending = store.pending_intents().map_err(super::state_failure)?.len();
    if pending > 0 {
        return Err(Failure::user_msg(format!(
            "an interrupted apply left {pending} call(s) to finish; nothing was changed"
        ))
        .hint("run `turkform refresh` (it finishes them), then try again"));
    }
    Ok(())
}

fn mv(resolved: &Resolved, from: &str, to: &str) -> Result<u8, Failure> {
    let rename = match (from.split_once('/'), to.split_once('/')) {
        (None, None) => turkform_model::Rename {
            from_campaign: from.to_owned(),
            from_key: None,
            to_campaign: to.to_owned(),
            to_key: None,
        },
        (Some((fc, fk)), Some((tc, tk))) => turkform_model::Rename {
            from_campaign: fc.to_owned(),
            from_key: Some(fk.to_owned()),
            to_campaign: tc.to_owned(),
            to_key: Some(tk.to_owned()),
        },
        _ => {
            return Err(Failure::user_msg(format!(
                "`{from}` and `{to}` must both be campaigns or both be items"
            ))
            .hint("rename a campaign with `state mv OLD NEW`, an item with `state mv CAMPAIGN/KEY CAMPAIGN/NEWKEY`"));
        }
    };
    if rename.from_campaign == rename.to_campaign && rename.from_key == rename.to_key {
        return Err(Failure::user_msg(format!(
            "`{from}` is already called `{to}`"
        )));
    }
    let mut store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadWrite)?;
    let _lock = store
        .lock("turkform state mv", std::time::Duration::ZERO)
        .map_err(super::state_failure)?;
    refuse_with_pending_intents(&store)?;
    let moved = store.rename(&rename).map_err(super::state_failure)?;
    eprintln!(
        "renamed `{from}` to `{to}` in state ({moved} HIT record(s)); nothing was changed on MTurk \
         (its HITs keep their annotation, which turkform now reads as `{to}`)"
    );
    Ok(0)
}

fn force_unlock(resolved: &Resolved) -> Result<u8, Failure> {
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadWrite)?;
    match store.force_unlock().map_err(super::state_failure)? {
        Some(holder) => eprintln!(
            "removed the lock held by pid {} on {} since {} ({})",
            holder.pid, holder.host, holder.since, holder.command
        ),
        None => eprintln!("the state was not locked"),
    }
    Ok(0)
}

fn migrate(resolved: &Resolved, to: &std::path::Path, lock_timeout: &str) -> Result<u8, Failure> {
    let lock_timeout = crate::settings::parse_duration_flag("--lock-timeout", lock_timeout)?;
    let report = turkform_state::migrate::migrate_state(&resolved.state_path, to, lock_timeout)
        .map_err(super::state_failure)?;
    let rows: u64 = report.rows.iter().map(|(_, n)| n).sum();
    let serials = report
        .serials
        .iter()
        .map(|(target, serial)| format!("{target} serial {serial}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Both locations are shown without any password.
    let from = turkform_state::migrate::shown(&resolved.state_path);
    let dest = turkform_state::migrate::shown(to);
    writeln!(
        std::io::stdout().lock(),
        "copied the state `{from}` to `{dest}`: lineage {}, {rows} rows{}{serials}",
        report.lineage,
        if serials.is_empty() { "" } else { ", " },
    )
    .map_err(Failure::internal)?;
    eprintln!(
        "the source was left as it was; point `state` (turkform.toml, --state or TURKFORM_STATE) \
         at `{dest}` to use the copy"
    );
    Ok(0)
}
