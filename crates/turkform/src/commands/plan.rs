//! `turkform plan`.

use std::io::Write;

use turkform_plan::Plan;
use turkform_state::OpenMode;

use crate::cli::{GlobalArgs, PlanArgs};
use crate::failure::Failure;
use crate::render::{Style, plan_human};
use crate::settings::{Resolved, parse_duration_flag, stdout_color};

pub async fn run(resolved: &Resolved, global: &GlobalArgs, args: &PlanArgs) -> Result<u8, Failure> {
    // Accepted for scripts written when plan took the lock; a plan writes nothing and needs none.
    let _ = parse_duration_flag("--lock-timeout", &args.lock_timeout)?;
    let made = make_plan(resolved, &args.campaigns, args.refresh).await?;
    let plan = made.plan;

    if let Some(path) = &args.out {
        write_plan_file(path, &plan)?;
        eprintln!(
            "saved the plan to `{}`; apply it with `turkform apply {}`",
            path.display(),
            path.display()
        );
    }
    crate::render::print_warnings(&plan);
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::to_string_pretty(&plan).map_err(Failure::internal)?;
        writeln!(out, "{json}").map_err(Failure::internal)?;
    } else {
        if made.pending_intents > 0 {
            eprintln!(
                "note: {} call(s) of an interrupted apply are pending; the next apply finishes them first",
                made.pending_intents
            );
        }
        let style = Style {
            color: stdout_color(),
            every_item: global.verbose > 0,
        };
        write!(out, "{}", plan_human(&plan, &style)).map_err(Failure::internal)?;
    }
    if !plan.errors.is_empty() {
        return Err(Failure::user_msg(format!(
            "the plan has {} error(s) in its review files; apply would refuse it",
            plan.errors.len()
        ))
        .hint("fix the rows named above, then plan again"));
    }
    let changes = plan.has_changes();
    Ok(if args.detailed_exitcode && changes {
        2
    } else {
        0
    })
}

/// A plan and what was noticed while making it.
pub struct MadePlan {
    pub plan: Plan,
    pub pending_intents: usize,
}

/// Loads the campaigns, reads state and (unless told not to) MTurk, and plans. Writes nothing.
pub async fn make_plan(
    resolved: &Resolved,
    only: &[String],
    refresh: bool,
) -> Result<MadePlan, Failure> {
    // Validate before anything touches the state or the network (see `apply`).
    let desired = super::load_desired(resolved, &[], super::now(resolved).await)?;
    check_campaign_names(&desired, only)?;
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let request = turkform_apply::ops::PlanRequest {
        desired: &desired,
        project: resolved.project.clone(),
        only: only.to_vec(),
    };
    let planned = if refresh {
        let world = crate::world::connect(resolved).await?;
        let reporter = crate::progress::Progress::new("refresh");
        let planned = turkform_apply::ops::plan(
            &store,
            Some(world.api.as_ref()),
            &world.clock,
            &reporter,
            &request,
        )
        .await;
        reporter.finish();
        planned
    } else {
        turkform_apply::ops::plan(
            &store,
            None,
            &turkform_apply::SystemClock,
            &turkform_apply::NoReporter,
            &request,
        )
        .await
    }
    .map_err(super::apply_failure)?;
    Ok(MadePlan {
        plan: planned.plan,
        pending_intents: planned.pending_intents,
    })
}

/// A campaign filter naming no campaign is a typo, not an empty plan.
pub fn check_campaign_names(
    desired: &turkform_model::DesiredState,
    only: &[String],
) -> Result<(), Failure> {
    for name in only {
        if !desired.campaigns.iter().any(|c| &c.name == name) {
            let known: Vec<&str> = desired.campaigns.iter().map(|c| c.name.as_str()).collect();
            return Err(Failure::user_msg(format!("no campaign named `{name}`"))
                .hint(format!("the campaigns are: {}", known.join(", "))));
        }
    }
    Ok(())
}

/// Writes atomically (temp file + rename) so a crash never leaves half a plan behind.
fn write_plan_file(path: &std::path::Path, plan: &Plan) -> Result<(), Failure> {
    let json = serde_json::to_vec_pretty(plan).map_err(Failure::internal)?;
    let tmp = path.with_extension("tmp-turkform");
    std::fs::write(&tmp, &json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            Failure::user(anyhow::anyhow!(
                "cannot write the plan to `{}`: {e}",
                path.display()
            ))
        })
}
