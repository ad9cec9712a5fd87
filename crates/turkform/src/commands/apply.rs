//! `turkform apply` and `turkform refresh`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use turkform_model::Target;
use turkform_plan::Plan;
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
        Some(path) => Some(turkform_apply::ops::SavedPlan {
            path: path.display().to_string(),
            plan: read_plan_file(path)?,
        }),
        None => None,
    };
    let only: Vec<String> = if saved.is_some() {
        Vec::new()
    } else {
        args.targets.clone()
    };
    // Every campaign is validated before anything touches the state or the network. The system
    // clock judges `ends_at`; the simulator's virtual clock can only be later, and the planner
    // never creates a HIT whose `ends_at` is too close at its own `now`.
    let desired = super::load_desired(resolved, &[], super::now(resolved).await)?;
    super::plan::check_campaign_names(&desired, &only)?;

    let mut store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadWrite)?;
    let _lock = store
        .lock("turkform apply", lock_timeout)
        .map_err(super::state_failure)?;
    if let Some(saved) = &saved {
        turkform_apply::ops::check_saved_plan(&store, &desired, saved)
            .map_err(super::apply_failure)?;
    }
    let world = crate::world::connect(resolved).await?;
    let progress = crate::progress::Progress::new("apply");
    let mut options = turkform_apply::ApplyOptions::new(resolved.target);
    options.project = resolved.project.clone();
    options.run = super::run_label();
    options.concurrency = match &args.concurrency {
        Some(n) => crate::settings::concurrency_value("--concurrency", n)?,
        None => resolved.concurrency,
    };

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
    let approver = Terminal {
        resolved,
        args,
        style: Style {
            color: stdout_color(),
            every_item: global.verbose > 0,
        },
        refused: std::sync::Mutex::new(None),
    };
    let request = turkform_apply::ops::ApplyRequest {
        desired: &desired,
        only,
        saved,
        refresh: args.refresh,
        options,
    };
    let outcome = turkform_apply::ops::apply(
        &mut store,
        world.api.as_ref(),
        &world.clock,
        &progress,
        &approver,
        request,
    )
    .await;
    ctrl_c.abort();
    let outcome = match outcome {
        Ok(o) => o,
        Err(turkform_apply::ApplyError::NotApproved(message)) => {
            let refused = approver.refused.lock().ok().and_then(|mut r| r.take());
            return Err(refused.unwrap_or_else(|| Failure::user_msg(message)));
        }
        Err(e) => return Err(super::apply_failure(e)),
    };
    let Some(report) = outcome.report else {
        progress.finish();
        eprintln!("{}", summary_line(&outcome.plan, &Style::default()));
        if args.json {
            print_json(&serde_json::json!({"changes": false, "plan": outcome.plan.summary}))?;
        }
        return Ok(0);
    };
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

/// Shows the plan, then asks (a saved plan was reviewed when it was made: shown, not asked).
struct Terminal<'a> {
    resolved: &'a Resolved,
    args: &'a ApplyArgs,
    style: Style,
    /// The refusal as the user should see it (with its hint), kept for the error path.
    refused: std::sync::Mutex<Option<Failure>>,
}

impl turkform_apply::ops::Approve for Terminal<'_> {
    fn approve(&self, plan: &Plan, saved: bool) -> Result<(), String> {
        crate::render::print_warnings(plan);
        let shown = plan_human(plan, &self.style);
        if self.args.json {
            eprint!("{shown}");
        } else {
            print!("{shown}");
            let _ = std::io::stdout().flush();
        }
        if saved {
            return Ok(());
        }
        confirm(self.resolved, self.args).map_err(|f| {
            let message = f.error.to_string();
            if let Ok(mut refused) = self.refused.lock() {
                *refused = Some(f);
            }
            message
        })
    }
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

pub async fn refresh(resolved: &Resolved, args: &RefreshArgs) -> Result<u8, Failure> {
    let lock_timeout = parse_duration_flag("--lock-timeout", &args.lock_timeout)?;
    let mut store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadWrite)?;
    let _lock = store
        .lock("turkform refresh", lock_timeout)
        .map_err(super::state_failure)?;
    let world = crate::world::connect(resolved).await?;
    let progress = crate::progress::Progress::new("refresh");
    let mut options = turkform_apply::ApplyOptions::new(resolved.target);
    options.project = resolved.project.clone();
    options.run = super::run_label();
    options.concurrency = resolved.concurrency;
    let (_, report) = turkform_apply::ops::refresh(
        &mut store,
        world.api.as_ref(),
        &world.clock,
        &progress,
        &options,
    )
    .await
    .map_err(super::apply_failure)?;
    progress.finish();
    eprintln!(
        "Refreshed: {} HITs listed by MTurk ({} MTurk calls), {} records updated, {} changed outside turkform, {} found that state does not know",
        report.listed,
        report.api_calls,
        report.updated,
        report.drift.len(),
        report.orphans
    );
    if report.assignment_syncs > 0 {
        eprintln!(
            "  assignments: {} HITs had new work ({} ListAssignmentsForHIT calls), {} assignments recorded or changed",
            report.assignment_syncs, report.assignment_calls, report.assignments_recorded
        );
    }
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
    let w = &report.workers;
    if w.outside_blocks + w.outside_grants + w.confirmed > 0 {
        eprintln!(
            "  workers: {} block(s) and {} grant(s) made outside turkform (left alone), {} earlier call(s) confirmed",
            w.outside_blocks, w.outside_grants, w.confirmed
        );
        let recorded = store.load().map_err(super::state_failure)?;
        let outside = |m: turkform_model::MadeBy| m == turkform_model::MadeBy::Outside;
        let lines: Vec<String> = recorded
            .blocks
            .iter()
            .filter(|b| outside(b.made_by))
            .map(|b| {
                format!(
                    "    {} blocked outside turkform ({:?})",
                    b.worker_id, b.reason
                )
            })
            .chain(
                recorded
                    .grants
                    .iter()
                    .filter(|g| outside(g.made_by))
                    .map(|g| {
                        format!(
                            "    {} holds {} = {}, granted outside turkform",
                            g.worker_id, g.qualification, g.value
                        )
                    }),
            )
            .collect();
        for line in lines.iter().take(20) {
            eprintln!("{line}");
        }
        if lines.len() > 20 {
            eprintln!("    ... and {} more", lines.len() - 20);
        }
    }
    Ok(0)
}
