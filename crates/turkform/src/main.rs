//! `turkform`: the binary. Thin wiring: clap parses, [`settings`] resolves flags, environment and
//! `turkform.toml`, each command in [`commands`] calls the library crates, [`render`] draws plans
//! for humans. Exit codes: 0 success, 1 user error, 2 internal error (and `plan
//! --detailed-exitcode`: 2 when changes are present).

mod cli;
mod commands;
mod failure;
mod output;
mod progress;
mod render;
mod render_workers;
mod settings;
mod signals;
mod world;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // Do not wait for lingering background tasks (an embedded simulator's connections).
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => ExitCode::from(code),
        // `turkform state list | head -1`: the reader had enough, which is not an error.
        Err(failure) if failure.is_closed_stdout() => ExitCode::SUCCESS,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}

/// A closed stdout (`plan --json | head -1`) ends the command quietly with 0 (DESIGN.md
/// section 4). Writes through `writeln!` come back as a [`failure::Failure`] (see
/// [`failure::Failure::is_closed_stdout`]); `print!` panics instead, so the panic hook turns
/// exactly that panic into a quiet exit. Nothing writes state after printing to stdout.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        // The SDK's credential chain warns about every provider it tried (IMDS on a laptop);
        // the error turkform reports already says what to do.
        0 => "warn,aws_config=error,aws_smithy_runtime=error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(settings::stderr_color())
        .try_init();
}
