//! `turkform apply` and `turkform refresh`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use turkform_apply::Clock;
use turkform_model::Target;
use turkform_plan::{Plan, PlanOptions};
use turkform_state::OpenMode;

use crate::cli::{ApplyArgs, GlobalArgs, RefreshArgs};
use crate::failure::Failure;
use crate::render::{Style, plan_human, summary_line};
use crate::settings::{Resolved, parse_duration_flag, stdout_color};

/// `apply PLANFILE` when the one argument is an existing file; campaign names otherwise.
fn saved_plan_path(args: &ApplyArgs) -> Option<&Path> {
    match args.targets.as_slice() {
        [one] if Path::new(one).is_file() => Some(Path::new(one)),
        _ => None,
    }
}

fn read_plan_file(path: &Path) -> Result<Plan, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::user(anyhow::anyhow!(
            "cannot read the plan file `{}`: {e}",
            path.display()
        ))
    })?;
    let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::user(anyhow::anyhow!(
            "`{}` is not a turkform plan file: {e}",
            path.display()
        ))
        .hint("make one with `turkform plan --out FILE`")
    })?;
    if plan.format_version != turkform_plan::PLAN_FORMAT_VERSION {
        return Err(Failure::user_msg(format!(
            "the plan file `{}` has format {} and this turkform reads format {}",
            path.display(),
            plan.format_version,
            turkform_plan::PLAN_FORMAT_VERSION
        ))
        .hint("make a new plan with this turkform"));
    }
    Ok(plan)
}

/// Production is never reached by accident: the target must be said on the command line.
fn check_production(resolved: &Resolved) -> Result<(), Failure> {
    if resolved.target == Target::Production && resolved.target_source != "--target" {
        return Err(Failure::user_msg(format!(
            "refusing to apply to production because the target came from {}",
            resolved.target_source
        ))
        .hint("say `--target production` on the command line to spend real money"));
    }
    Ok(())
}

pub async fn run(
    resolved: &Resolved,
    global: &GlobalArgs,
    args: &ApplyArgs,
) -> Result<u8, Failure> {
    check_production(resolved)?;
    let lock_timeout = parse_duration_flag("--lock-timeout", &args.lock_timeout)?;
    let saved = match saved_plan_path(args) {
        Some(path) => Some((path, read_plan_file(path)?)),
        None => None,
    };
    if let Some((path, plan)) = &saved
        && plan.target != resolved.target
    {
        return Err(Failure::user_msg(format!(
            "the plan `{}` was made for target {} and this run targets {}",
            path.display(),
            plan.target,
            resolved.target
        ))
        .hint(format!(
            "apply it with `--target {}`, or make a new plan",
            plan.target
        )));
    }
    let only: Vec<String> = if saved.is_some() {
        Vec::new()
    } else {
        args.targets.clone()
    };
    // Every campaign is validated before anything touches the state or the network. The system
    // clock judges `ends_at`; the simulator's virtual clock can only be later, and the planner
    // never creates a HIT whose `ends_at` is too close at its own `now`.
    let desired = super::load_desired(resolved, &[], turkform_model::UnixTime::now())?;
    super::plan::check_campaign_names(&desired, &only)?;

    let mut store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadWrite)?;
    let _lock = store
        .lock("turkform apply", lock_timeout)
        .map_err(super::state_failure)?;
    let world = crate::world::connect(resolved).await?;
    let progress = crate::progress::Progress::new("apply");
    let mut options = turkform_apply::ApplyOptions::new(resolved.target);
    options.concurrency = match &args.concurrency {
        Some(n) => crate::settings::concurrency_value("--concurrency", n)?,
        None => resolved.concurrency,
    };

    let plan = match saved {
        Some((path, mut plan)) => {
            check_saved_plan(&store, &desired, path, &plan)?;
            if plan.state_lineage.is_empty() {
                // Made before the state existed, and the state is still empty: bind it now.
                plan.state_lineage = store.lineage().to_owned();
            }
            plan
        }
        None => {
            reconcile(&world, &mut store, &progress, &options, args.refresh).await?;
            let now = world.clock.now();
            let recorded = store.load().map_err(super::state_failure)?;
            turkform_plan::plan(
                &desired,
                &recorded,
                now,
                &PlanOptions {
                    only_campaigns: only,
                },
            )
        }
    };

    let style = Style {
        color: stdout_color(),
        every_item: global.verbose > 0,
    };
    if !plan.has_changes() {
        eprintln!("{}", summary_line(&plan, &Style::default()));
        if args.json {
            print_json(&serde_json::json!({"changes": false, "plan": plan.summary}))?;
        }
        return Ok(0);
    }
    crate::render::print_warnings(&plan);
    let shown = plan_human(&plan, &style);
    if args.json {
        eprint!("{shown}");
    } else {
        print!("{shown}");
    }
    confirm(resolved, args)?;

    turkform_apply::preflight(&plan, world.api.as_ref())
        .await
        .map_err(super::apply_failure)?;

    let cancel = options.cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        if let Some(signal) = crate::signals::interrupted().await {
            eprintln!(
                "\ninterrupted ({signal}): finishing the calls in flight and recording them (Ctrl-C again to force)"
            );
            cancel.cancel();
            if crate::signals::interrupted().await.is_some() {
                std::process::exit(130);
            }
        }
    });
    let report = turkform_apply::apply(
        &plan,
        world.api.as_ref(),
        &mut store,
        &world.clock,
        &progress,
        &options,
    )
    .await
    .map_err(super::apply_failure)?;
    ctrl_c.abort();
    progress.finish();

    if args.json {
        print_json(&serde_json::to_value(&report).map_err(Failure::internal)?)?;
    }
    crate::progress::print_report(&report);
    if !report.failed.is_empty() || report.interrupted {
        return Ok(1);
    }
    Ok(0)
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(Failure::internal)?;
    writeln!(std::io::stdout().lock(), "{text}").map_err(Failure::internal)
}

/// A saved plan applies only to the exact state and campaigns it was made from.
fn check_saved_plan(
    store: &turkform_state::StateStore,
    desired: &turkform_model::DesiredState,
    path: &Path,
    plan: &Plan,
) -> Result<(), Failure> {
    let serial = store.serial().map_err(super::state_failure)?;
    let stale = |why: String| {
        Failure::user_msg(format!("the plan `{}` is stale: {why}", path.display()))
            .hint("make a new plan with `turkform plan --out FILE` and review it")
    };
    // A plan made before any state existed has no lineage; it fits only a state that is still
    // empty, so it too can be applied once.
    let fresh_plan_on_fresh_state = plan.state_lineage.is_empty() && serial == 0;
    if store.lineage() != plan.state_lineage && !fresh_plan_on_fresh_state {
        return Err(stale(format!(
            "it was made for another state database (lineage {}, this one is {})",
            plan.state_lineage,
            store.lineage()
        )));
    }
    if serial != plan.state_serial {
        return Err(stale(format!(
            "the state changed since it was made (serial {} then, {serial} now)",
            plan.state_serial
        )));
    }
    if !store
        .pending_intents()
        .map_err(super::state_failure)?
        .is_empty()
    {
        return Err(stale(
            "an interrupted apply left calls to finish".to_owned(),
        ));
    }
    if desired.inputs_digest != plan.inputs_digest {
        return Err(stale(
            "the campaign files changed since it was made".to_owned(),
        ));
    }
    Ok(())
}

/// Asks for `yes` on a terminal; refuses without one unless `--auto-approve`.
fn confirm(resolved: &Resolved, args: &ApplyArgs) -> Result<(), Failure> {
    let production = resolved.target == Target::Production;
    if production {
        eprintln!(
            "\n!! This applies to PRODUCTION MTurk: real workers, real money from your account."
        );
    }
    if args.auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::user_msg(
            "apply needs confirmation and there is no terminal to ask on",
        )
        .hint("review the plan, then run again with --auto-approve"));
    }
    let expected = if production { "production" } else { "yes" };
    eprint!("\nDo you want to make these changes? Only `{expected}` is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(Failure::internal)?;
    if answer.trim() != expected {
        return Err(Failure::user_msg("apply cancelled; nothing was changed"));
    }
    Ok(())
}

/// Finishes what a crashed run started before looking at anything else (its calls may have
/// reached MTurk, and planning without them would plan them again), then reads MTurk.
async fn reconcile(
    world: &crate::world::World,
    store: &mut turkform_state::StateStore,
    progress: &crate::progress::Progress,
    options: &turkform_apply::ApplyOptions,
    refresh: bool,
) -> Result<Option<turkform_apply::RefreshReport>, Failure> {
    turkform_apply::recover(world.api.as_ref(), store, &world.clock, progress, options)
        .await
        .map_err(super::apply_failure)?;
    if !refresh {
        return Ok(None);
    }
    turkform_apply::refresh(world.api.as_ref(), store, &world.clock, progress)
        .await
        .map(Some)
        .map_err(super::apply_failure)
}

pub async fn refresh(resolved: &Resolved, args: &RefreshArgs) -> Result<u8, Failure> {
    let lock_timeout = parse_duration_flag("--lock-timeout", &args.lock_timeout)?;
    let mut store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadWrite)?;
    let _lock = store
        .lock("turkform refresh", lock_timeout)
        .map_err(super::state_failure)?;
    let world = crate::world::connect(resolved).await?;
    let progress = crate::progress::Progress::new("refresh");
    let mut options = turkform_apply::ApplyOptions::new(resolved.target);
    options.concurrency = resolved.concurrency;
    let report = reconcile(&world, &mut store, &progress, &options, true)
        .await?
        .expect("refresh was asked for");
    progress.finish();
    eprintln!(
        "Refreshed: {} HITs listed by MTurk ({} MTurk calls), {} records updated, {} changed outside turkform, {} found that state does not know",
        report.listed,
        report.api_calls,
        report.updated,
        report.drift.len(),
        report.orphans
    );
    for d in &report.drift {
        eprintln!(
            "  {}/{} ({}): changed outside turkform: {}",
            d.campaign,
            d.item_key,
            d.hit_id,
            crate::render::drift_text(&d.drift)
        );
    }
    for name in &report.missing_qualification_types {
        eprintln!("  qualification type `{name}` is no longer listed by MTurk");
    }
    if report.orphans > 0 {
        eprintln!("  `turkform apply` adopts the HITs state does not know");
    }
    Ok(0)
}
