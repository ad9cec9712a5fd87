//! Resolves where things are and which target to use: command-line flag > environment
//! (`TURKFORM_*`) > `turkform.toml` > default.

use std::io::IsTerminal;
use std::path::PathBuf;

use turkform_model::Target;

use crate::cli::GlobalArgs;
use crate::failure::Failure;

/// Everything a command needs to know about the project.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The folder of campaign files, relative to the project root (the current directory).
    pub campaigns_dir: PathBuf,
    pub state_path: PathBuf,
    pub target: Target,
    /// Where the target was decided, for messages (`--target`, `TURKFORM_TARGET`, ...).
    pub target_source: &'static str,
    pub endpoint_url: Option<String>,
    pub concurrency: usize,
    /// `project` in `turkform.toml`: carried in every annotation; `None` for an older project.
    pub project: Option<String>,
    /// `[workers]` of `turkform.toml` (the blocks file).
    pub workers: turkform_spec::WorkersSettings,
}

/// Changes into `-C DIR` first, so that every relative path (and every diagnostic) reads as
/// the user sees the project.
pub fn enter_directory(global: &GlobalArgs) -> Result<(), Failure> {
    if let Some(dir) = &global.directory {
        std::env::set_current_dir(dir).map_err(|e| {
            Failure::user(anyhow::anyhow!(
                "cannot change into `{}`: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn resolve(global: &GlobalArgs) -> Result<Resolved, Failure> {
    let file = turkform_spec::load_settings(std::path::Path::new("."))
        .map_err(crate::commands::diagnostics_failure)?;

    let (target, target_source) = if let Some(t) = &global.target {
        (parse_target(t, "--target")?, "--target")
    } else if let Some(t) = env("TURKFORM_TARGET") {
        (parse_target(&t, "TURKFORM_TARGET")?, "TURKFORM_TARGET")
    } else if let Some(t) = file.target {
        (t, "turkform.toml")
    } else {
        (Target::Sandbox, "the default")
    };
    let state_path = global
        .state
        .clone()
        .or_else(|| env("TURKFORM_STATE").map(PathBuf::from))
        .unwrap_or_else(|| file.state.clone());
    let campaigns_dir = env("TURKFORM_CAMPAIGNS")
        .map(PathBuf::from)
        .unwrap_or_else(|| file.campaigns.clone());
    let endpoint_url = global
        .endpoint_url
        .clone()
        .or_else(|| env("TURKFORM_ENDPOINT_URL"));
    let concurrency = match env("TURKFORM_CONCURRENCY") {
        Some(v) => concurrency_value("TURKFORM_CONCURRENCY", &v)?,
        None => file.apply.concurrency,
    };
    Ok(Resolved {
        campaigns_dir,
        state_path,
        target,
        target_source,
        endpoint_url,
        concurrency,
        project: file.project.clone(),
        workers: file.workers.clone(),
    })
}

/// Validates a concurrency from the environment or `--concurrency` by the same rule as
/// `apply.concurrency` in turkform.toml: out of range is an error, never silently clamped.
pub fn concurrency_value(source: &str, value: &str) -> Result<usize, Failure> {
    let n: i64 = value.trim().parse().map_err(|_| {
        Failure::user_msg(format!("{source} = `{value}` is not a number of requests"))
            .hint("use 1 to 256 requests in flight")
    })?;
    turkform_spec::check_concurrency(n)
        .map_err(|hint| Failure::user_msg(format!("{source} = {n} is out of range")).hint(hint))
}

fn parse_target(value: &str, source: &str) -> Result<Target, Failure> {
    value
        .parse::<Target>()
        .map_err(|e| Failure::user_msg(format!("{source}: {e}")))
}

/// Colour on stderr: only on a terminal, never with `NO_COLOR`.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Colour on stdout: only on a terminal, never with `NO_COLOR`.
pub fn stdout_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Parses a duration flag such as `--lock-timeout` the way campaign files write durations
/// (`30s`, `10m`, `3h`, `7d`, `1h30m`), and a bare `0`.
pub fn parse_duration_flag(flag: &str, value: &str) -> Result<std::time::Duration, Failure> {
    if value.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    turkform_spec::parse_duration(value)
        .map(std::time::Duration::from_secs)
        .map_err(|e| Failure::user_msg(format!("{flag}: {e}")))
}
