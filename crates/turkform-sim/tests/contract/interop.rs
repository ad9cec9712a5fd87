//! boto3 and the AWS CLI against the simulator. Python, boto3 and awscli are required: a missing
//! tool fails the test (CI installs them with `pip install boto3 awscli`).

use std::path::PathBuf;

use tokio::process::Command;

use crate::support;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// An environment with only the simulator's keys: no profile, no config file.
fn isolate(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", turkform_sim::DEFAULT_ACCESS_KEY_ID)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
        )
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true)
}

#[tokio::test]
async fn boto3_drives_the_whole_flow() {
    let sim = support::plain().await;
    let mut cmd = Command::new("python3");
    isolate(&mut cmd).arg(script("boto3_flow.py")).arg(&sim.url);
    if let Ok(pyenv) = std::env::var("PYENV_VERSION") {
        cmd.env("PYENV_VERSION", pyenv);
    }
    if let Ok(root) = std::env::var("PYENV_ROOT") {
        cmd.env("PYENV_ROOT", root);
    }
    let out = cmd
        .output()
        .await
        .expect("python3 must be installed (pip install boto3 awscli)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boto3 flow failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), "OK");
    let stats = sim.stats().await;
    assert_eq!(stats["requests"]["CreateHITWithHITType"], 6);
    // The call with a wrong secret was refused before processing: only two balance reads count.
    assert_eq!(stats["requests"]["GetAccountBalance"], 2);
}

#[tokio::test]
async fn the_aws_cli_reads_the_balance() {
    let sim = support::plain().await;
    let mut cmd = Command::new("aws");
    isolate(&mut cmd).args([
        "mturk",
        "get-account-balance",
        "--endpoint-url",
        &sim.url,
        "--region",
        "us-east-1",
        "--output",
        "json",
    ]);
    for var in ["PYENV_VERSION", "PYENV_ROOT"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    let out = cmd
        .output()
        .await
        .expect("the AWS CLI must be installed (pip install awscli)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aws failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON from the CLI");
    assert_eq!(v["AvailableBalance"], "10000.00");
    assert_eq!(v["OnHoldBalance"], "0.00");
    assert_eq!(sim.stats().await["requests"]["GetAccountBalance"], 1);
}
