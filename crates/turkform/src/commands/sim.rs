//! `turkform sim serve`: the simulator as a standalone server.

use std::time::Duration;

use crate::cli::{SimCommand, SimServeArgs};
use crate::failure::Failure;

pub async fn run(cmd: SimCommand) -> Result<u8, Failure> {
    match cmd {
        SimCommand::Serve(args) => serve(args).await,
    }
}

fn check_rate(flag: &str, value: f64) -> Result<f64, Failure> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Failure::user_msg(format!(
            "{flag} {value} is not a fraction: give a number from 0 to 1"
        )))
    }
}

async fn serve(args: SimServeArgs) -> Result<u8, Failure> {
    if let Some(rps) = args.throttle_rps
        && !(rps > 0.0 && rps.is_finite())
    {
        return Err(Failure::user_msg(format!(
            "--throttle-rps {rps} must be a positive number of requests per second"
        )));
    }
    let config = turkform_sim::SimConfig {
        db_path: args.db.clone(),
        access_key_id: args.access_key_id,
        secret_access_key: args.secret_access_key,
        latency: Duration::from_millis(args.latency),
        throttle_rps: args.throttle_rps,
        burst: args.burst,
        fault_rate: check_rate("--fault-rate", args.fault_rate)?,
        drop_rate: check_rate("--drop-rate", args.drop_rate)?,
        seed: args.seed,
        ..turkform_sim::SimConfig::default()
    };
    let handle = turkform_sim::start(&args.addr, config).await.map_err(|e| {
        Failure::user(anyhow::Error::new(e).context(format!("cannot serve on `{}`", args.addr)))
    })?;
    eprintln!(
        "turkform simulator listening on {} ({}); Ctrl-C stops it",
        handle.endpoint_url(),
        match &args.db {
            Some(db) => format!("world in `{}`", db.display()),
            None => "world in memory".to_owned(),
        }
    );
    // The endpoint alone on stdout, for scripts: `URL=$(turkform sim serve ... | head -1)`.
    println!("{}", handle.endpoint_url());
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::internal(anyhow::anyhow!("cannot wait for Ctrl-C: {e}")))?;
    eprintln!("stopping");
    handle.shutdown().await;
    Ok(0)
}
