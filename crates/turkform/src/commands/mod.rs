//! One function per command. Each builds what it needs (settings, desired state, the state
//! store, a connection) and calls the library crates; none of them holds domain logic.

mod apply;
mod init;
mod plan;
mod preview;
mod report;
mod results;
mod sim;
mod state;
mod status;
mod validate;

use std::path::Path;

use turkform_model::{DesiredState, Target, UnixTime};
use turkform_state::{LockKind, OpenMode, StateError, StateStore};

use crate::cli::{Cli, Command};
use crate::failure::Failure;
use crate::settings::Resolved;

pub async fn run(cli: Cli) -> Result<u8, Failure> {
    crate::settings::enter_directory(&cli.global)?;
    let global = cli.global;
    match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Sim(cmd) => sim::run(cmd).await,
        Command::Validate => {
            let resolved = crate::settings::resolve(&global)?;
            validate::validate(&resolved, now(&resolved).await)
        }
        Command::Render(args) => {
            let resolved = crate::settings::resolve(&global)?;
            validate::render(&resolved, &args, now(&resolved).await)
        }
        Command::Plan(args) => plan::run(&crate::settings::resolve(&global)?, &global, &args).await,
        Command::Apply(args) => {
            apply::run(&crate::settings::resolve(&global)?, &global, &args).await
        }
        Command::Refresh(args) => apply::refresh(&crate::settings::resolve(&global)?, &args).await,
        Command::Status(args) => {
            let resolved = crate::settings::resolve(&global)?;
            status::run(&resolved, &args, now(&resolved).await)
        }
        Command::Report(args) => {
            let resolved = crate::settings::resolve(&global)?;
            report::run(&resolved, &args, now(&resolved).await)
        }
        Command::Results(args) => {
            let resolved = crate::settings::resolve(&global)?;
            results::run(&resolved, &args, now(&resolved).await)
        }
        Command::State(cmd) => state::run(&crate::settings::resolve(&global)?, cmd),
        Command::Preview(args) => preview::run(&crate::settings::resolve(&global)?, &args).await,
    }
}

/// "Now" on the target's clock (the simulator's virtual clock for target `sim`), read once per
/// command: the one clock every command uses, whether it talks to MTurk or not.
pub async fn now(resolved: &Resolved) -> UnixTime {
    use turkform_apply::Clock as _;
    crate::world::clock(resolved).await.now()
}

/// Loads and validates every campaign (all problems reported together, exit 1).
pub fn load_desired(
    resolved: &Resolved,
    only: &[String],
    now: UnixTime,
) -> Result<DesiredState, Failure> {
    let opts = turkform_spec::LoadOptions {
        target: resolved.target,
        workers: resolved.workers.clone(),
        campaigns_dir: resolved.campaigns_dir.clone(),
        only: only.to_vec(),
        now,
    };
    turkform_spec::load_project(&opts).map_err(diagnostics_failure)
}

/// Prints every diagnostic (each already reads `file:line:col: error: ...`) and fails with
/// the count: exit 1, nothing touched.
pub fn diagnostics_failure(d: turkform_spec::Diagnostics) -> Failure {
    for diagnostic in &d.0 {
        eprintln!("{diagnostic}");
    }
    Failure::user_msg(format!("{}; nothing was changed", d.summary()))
}

/// Opens the state store, turning each way it can be unusable into a clear user error.
/// How this process is named in the state's run log: the command line with every URL (a
/// `--state postgres://user:password@...`) replaced, so no secret reaches the log.
pub fn run_label() -> turkform_apply::RunLabel {
    let mut command = vec!["turkform".to_owned()];
    command.extend(std::env::args().skip(1).map(|a| redact_url_arg(&a)));
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    turkform_apply::RunLabel {
        command: command.join(" "),
        user,
    }
}

fn redact_url_arg(arg: &str) -> String {
    match arg.find("://") {
        None => arg.to_owned(),
        Some(at) => {
            // Keep `--state=` and the scheme: `--state=postgres://<redacted>`.
            format!("{}://<redacted>", &arg[..at])
        }
    }
}

pub fn open_state(path: &Path, target: Target, mode: OpenMode) -> Result<StateStore, Failure> {
    StateStore::open(path, target, mode).map_err(state_failure)
}

/// Classifies state errors: everything about the file or the lock is the user's to fix (exit 1);
/// only SQLite misbehaving on a healthy file is internal (exit 2).
pub fn state_failure(e: StateError) -> Failure {
    let internal = matches!(e, StateError::Sqlite(_));
    let hint = match &e {
        StateError::LockHeld { kind, .. } => Some(lock_held_hint(*kind)),
        StateError::ConnectionLost { .. } | StateError::LockLost { .. } => Some(
            "run the same command again once the server is back; an apply journals every \
             MTurk call before sending it, so the next one resumes those calls with the same \
             tokens and creates nothing twice"
                .to_owned(),
        ),
        StateError::Corrupt { .. } => {
            Some("restore the state file from a backup; turkform will not overwrite it".to_owned())
        }
        _ => None,
    };
    let f = if internal {
        Failure::internal(e)
    } else {
        Failure::user(e)
    };
    match hint {
        Some(h) => f.hint(h),
        None => f,
    }
}

/// What to do about a held lock. Only a file lock can outlive its holder (a record left by
/// another host); PostgreSQL drops a session-level advisory lock with its session, so pointing
/// there at `force-unlock` would send the user after a problem that cannot exist.
fn lock_held_hint(kind: LockKind) -> String {
    match kind {
        LockKind::File => "wait for it to finish, pass --lock-timeout 5m, or if its host is gone \
                           run `turkform state force-unlock`"
            .to_owned(),
        LockKind::Postgres { session } => {
            let end = match session {
                Some(pid) => format!("`SELECT pg_terminate_backend({pid})`"),
                None => "`pg_terminate_backend`".to_owned(),
            };
            format!(
                "wait for it to finish or pass --lock-timeout 5m; the PostgreSQL server releases \
                 the lock by itself as soon as the holder's session ends (a killed run or a \
                 lost runner included); if that run is stuck, stop it or end its session with \
                 {end}"
            )
        }
    }
}

/// Classifies executor errors: refusals (budget, balance, MTurk saying no) are the user's;
/// state trouble is classified as in [`state_failure`]; the rest is internal.
pub fn apply_failure(e: turkform_apply::ApplyError) -> Failure {
    use turkform_apply::ApplyError;
    match e {
        ApplyError::State(inner) => state_failure(inner),
        ApplyError::Api(api) => {
            let hint = match &api {
                turkform_mturk::ApiError::Unreachable { .. } => {
                    "check the endpoint (--endpoint-url, TURKFORM_ENDPOINT_URL, the target) and the network, then run again; calls that may have reached MTurk are resumed by the next run"
                }
                turkform_mturk::ApiError::Credentials { .. } => {
                    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or log in with `aws sso login`"
                }
                turkform_mturk::ApiError::Transient { .. } => {
                    "MTurk could not be reached; check the network and the endpoint, then run again"
                }
                turkform_mturk::ApiError::Throttled { .. } => {
                    "MTurk is throttling; run again later"
                }
                _ => "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the target",
            };
            Failure::user(ApplyError::Api(api)).hint(hint)
        }
        other => Failure::user(other),
    }
}

#[cfg(test)]
mod run_label_tests {
    #[test]
    fn a_url_on_the_command_line_never_reaches_the_run_log() {
        assert_eq!(
            super::redact_url_arg("--state=postgres://alice:s3cret@db.example/x"),
            "--state=postgres://<redacted>"
        );
        assert_eq!(
            super::redact_url_arg("postgres://alice:s3cret@db/x"),
            "postgres://<redacted>"
        );
        assert_eq!(super::redact_url_arg("--auto-approve"), "--auto-approve");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(kind: LockKind) -> String {
        let failure = state_failure(StateError::LockHeld {
            holder: turkform_state::LockInfo {
                pid: 31337,
                host: "runner-7".to_owned(),
                since: UnixTime(1_700_000_000),
                command: "turkform apply".to_owned(),
            },
            kind,
        });
        failure.hints.join("\n")
    }

    #[test]
    fn the_lock_held_hint_names_force_unlock_only_for_a_file_lock() {
        insta::assert_snapshot!(held(LockKind::File), @"wait for it to finish, pass --lock-timeout 5m, or if its host is gone run `turkform state force-unlock`");
        insta::assert_snapshot!(
            held(LockKind::Postgres { session: Some(4242) }),
            @"wait for it to finish or pass --lock-timeout 5m; the PostgreSQL server releases the lock by itself as soon as the holder's session ends (a killed run or a lost runner included); if that run is stuck, stop it or end its session with `SELECT pg_terminate_backend(4242)`"
        );
        insta::assert_snapshot!(
            held(LockKind::Postgres { session: None }),
            @"wait for it to finish or pass --lock-timeout 5m; the PostgreSQL server releases the lock by itself as soon as the holder's session ends (a killed run or a lost runner included); if that run is stuck, stop it or end its session with `pg_terminate_backend`"
        );
    }
}
