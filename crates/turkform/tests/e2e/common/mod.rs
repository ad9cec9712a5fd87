//! Test support: a temporary project, a simulator on 127.0.0.1:0 in this process, and a way to
//! run the real `turkform` binary against both.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub mod pg_cluster;
pub mod webdriver;

/// Decodes a chunked HTTP/1.1 body (the WebDriver client reads raw HTTP).
pub fn dechunk_text(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// One runtime for every simulator of a test binary, living as long as the process.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime")
    })
}

/// A simulator on a random loopback port, stopped when dropped.
pub struct Sim {
    pub handle: Option<turkform_sim::SimHandle>,
    pub url: String,
}

impl Sim {
    pub fn start(config: turkform_sim::SimConfig) -> Sim {
        let handle = runtime()
            .block_on(turkform_sim::start("127.0.0.1:0", config))
            .expect("start simulator");
        let url = handle.endpoint_url();
        Sim {
            handle: Some(handle),
            url,
        }
    }

    pub fn plain() -> Sim {
        Sim::start(turkform_sim::SimConfig::default())
    }

    /// The simulator's control endpoints.
    pub fn control(&self) -> turkform_sim::ControlClient {
        turkform_sim::ControlClient::new(&self.url).expect("simulator URL")
    }

    /// `POST /_sim/work` (simulated workers; the body is documented in the simulator README).
    pub fn work(&self, body: &Value) -> Value {
        let control = self.control();
        runtime()
            .block_on(control.work(body))
            .expect("POST /_sim/work")
    }

    /// `GET /_sim/stats`, as JSON.
    pub fn stats(&self) -> Value {
        let control = self.control();
        runtime()
            .block_on(control.stats_json())
            .expect("GET /_sim/stats")
    }

    /// `GET /_sim/stats`, typed.
    pub fn sim_stats(&self) -> turkform_sim::SimStats {
        let control = self.control();
        runtime()
            .block_on(control.stats())
            .expect("GET /_sim/stats")
    }

    /// Requests processed for one operation.
    pub fn calls(&self, operation: &str) -> u64 {
        self.sim_stats().calls(operation)
    }

    /// Requests of every operation that changes MTurk (`turkform_sim::mutating_operations()`).
    pub fn mutating_calls(&self) -> u64 {
        self.sim_stats().mutating_calls()
    }

    pub fn advance_clock(&self, seconds: u64) {
        let control = self.control();
        runtime()
            .block_on(control.advance_clock(seconds))
            .expect("POST /_sim/clock");
    }

    /// The simulator's virtual now, epoch seconds (`GET /_sim/clock`).
    pub fn control_now(&self) -> i64 {
        let control = self.control();
        runtime()
            .block_on(control.clock())
            .expect("GET /_sim/clock")
            .now
    }

    /// The account balance in cents (GetAccountBalance through the SDK).
    pub fn balance_cents(&self) -> i64 {
        let client = self.sdk();
        let balance = runtime()
            .block_on(client.get_account_balance().send())
            .expect("GetAccountBalance");
        let text = balance.available_balance.expect("AvailableBalance");
        let (whole, frac) = text.split_once('.').unwrap_or((&text, "0"));
        whole.parse::<i64>().expect("balance") * 100
            + format!("{frac:0<2}")[..2]
                .parse::<i64>()
                .expect("balance cents")
    }

    /// An aws-sdk-mturk client for this simulator, to act "outside turkform".
    pub fn sdk(&self) -> aws_sdk_mturk::Client {
        let config = aws_sdk_mturk::Config::builder()
            .behavior_version(aws_sdk_mturk::config::BehaviorVersion::latest())
            .region(aws_sdk_mturk::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_mturk::config::Credentials::new(
                turkform_sim::DEFAULT_ACCESS_KEY_ID,
                turkform_sim::DEFAULT_SECRET_ACCESS_KEY,
                None,
                None,
                "test",
            ))
            .build();
        aws_sdk_mturk::Client::from_conf(config)
    }

    /// Every HIT the simulator lists (ListHITs, all pages).
    pub fn list_hits(&self) -> Vec<aws_sdk_mturk::types::Hit> {
        let client = self.sdk();
        runtime().block_on(async move {
            let mut hits = Vec::new();
            let mut token = None;
            loop {
                let page = client
                    .list_hits()
                    .max_results(100)
                    .set_next_token(token)
                    .send()
                    .await
                    .expect("ListHITs");
                hits.extend(page.hits.unwrap_or_default());
                token = page.next_token;
                if token.is_none() {
                    break;
                }
            }
            hits
        })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        runtime().block_on(f)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            runtime().block_on(h.shutdown());
        }
    }
}

/// Where a test project keeps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateBackend {
    /// `state/turkform.db` in the project (the default).
    Sqlite,
    /// A fresh schema on the server of `TURKFORM_TEST_PG`, dropped with the project.
    Postgres,
}

/// The PostgreSQL server the tests use: `TURKFORM_TEST_PG`, or the one every machine runs.
pub fn test_pg_base() -> String {
    std::env::var("TURKFORM_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema on the test server, dropped (with everything in it) when dropped.
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    pub fn new(label: &str) -> PgSchema {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        PgSchema {
            name: format!(
                "tf_e2e_{label}_{}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed),
                rand::random::<u32>()
            ),
        }
    }

    /// The state URL for this schema, with extra `&key=value` parameters.
    pub fn url_with(&self, extra: &str) -> String {
        let base = test_pg_base();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}schema={}{extra}", self.name)
    }

    pub fn url(&self) -> String {
        self.url_with("")
    }

    /// Runs SQL as the test server's admin, outside turkform.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&test_pg_base(), postgres::NoTls)
            .expect("connect to the test PostgreSQL")
    }

    /// One value of a query against this schema (e.g. `SELECT count(*) FROM hits`).
    pub fn count(&self, sql: &str) -> i64 {
        let mut client = self.admin();
        client
            .batch_execute(&format!("SET search_path TO \"{}\"", self.name))
            .unwrap();
        client.query_one(sql, &[]).unwrap().get::<_, i64>(0)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&test_pg_base(), postgres::NoTls) {
            let _ =
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

/// A project in a temporary directory.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// The state URL every command gets through `TURKFORM_STATE` (none: the default file).
    pub state_url: Option<String>,
    pub pg: Option<std::sync::Arc<PgSchema>>,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("campaigns/templates")).unwrap();
        std::fs::create_dir_all(dir.path().join("campaigns/data")).unwrap();
        std::fs::write(dir.path().join("turkform.toml"), "target = \"sim\"\n").unwrap();
        Project {
            dir,
            state_url: None,
            pg: None,
        }
    }

    /// A project whose state is on `backend` (a fresh schema for PostgreSQL).
    pub fn on(backend: StateBackend) -> Project {
        match backend {
            StateBackend::Sqlite => Project::new(),
            StateBackend::Postgres => Project::sharing(std::sync::Arc::new(PgSchema::new("p"))),
        }
    }

    /// A separate checkout (its own directory) whose state is the schema `pg`.
    pub fn sharing(pg: std::sync::Arc<PgSchema>) -> Project {
        let mut project = Project::new();
        project.state_url = Some(pg.url());
        project.pg = Some(pg);
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, contents).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.dir.path().join(rel)).unwrap();
    }

    /// A campaign `name` with an HTML template over a CSV of `items` rows (`id`, `text`).
    pub fn campaign(&self, name: &str, items: usize, extra: &CampaignOptions) {
        let mut csv = String::from("id,text\n");
        for i in 0..items {
            csv.push_str(&format!("item-{i:05},Text number {i}\n"));
        }
        self.write(&format!("campaigns/data/{name}.csv"), &csv);
        self.write(
            &format!("campaigns/templates/{name}.html"),
            &format!(
                "<crowd-form><p>{}{{{{ item.text }}}}</p><crowd-input name=\"answer\"></crowd-input></crowd-form>\n",
                extra.template_prefix
            ),
        );
        self.write(
            &format!("campaigns/{name}.toml"),
            &campaign_toml(name, extra),
        );
    }

    /// Runs `turkform ARGS` in the project against `sim`.
    pub fn run(&self, sim: &Sim, args: &[&str]) -> Output {
        self.command(sim, args).output().expect("run turkform")
    }

    pub fn command(&self, sim: &Sim, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_turkform"));
        cmd.current_dir(self.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("TURKFORM_ENDPOINT_URL", &sim.url)
            .env_remove("TURKFORM_TARGET")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("RUST_LOG");
        match &self.state_url {
            Some(url) => cmd.env("TURKFORM_STATE", url),
            None => cmd.env_remove("TURKFORM_STATE"),
        };
        cmd
    }

    pub fn state_path(&self) -> PathBuf {
        self.path().join("state/turkform.db")
    }
}

/// Knobs for [`Project::campaign`].
#[derive(Clone)]
pub struct CampaignOptions {
    pub status: &'static str,
    pub reward: &'static str,
    pub assignments: u32,
    pub lifetime: String,
    pub max_spend: Option<&'static str>,
    pub template_prefix: &'static str,
}

impl Default for CampaignOptions {
    fn default() -> Self {
        CampaignOptions {
            status: "running",
            reward: "0.10",
            assignments: 3,
            lifetime: "lifetime = \"7d\"".to_owned(),
            max_spend: None,
            template_prefix: "",
        }
    }
}

pub fn campaign_toml(name: &str, o: &CampaignOptions) -> String {
    let budget = o
        .max_spend
        .map(|m| format!("\n[budget]\nmax_spend = \"{m}\"\n"))
        .unwrap_or_default();
    format!(
        r#"status = "{status}"

[hit_type]
title = "Label a sentence ({name})"
description = "Read one sentence and label it."
keywords = ["text", "labeling"]
reward = "{reward}"
assignment_duration = "10m"
auto_approval_delay = "3d"

[layout]
html = "templates/{name}.html"
frame_height = 0

[items]
source = "data/{name}.csv"
key = "id"
assignments = {assignments}
{lifetime}
{budget}"#,
        status = o.status,
        reward = o.reward,
        assignments = o.assignments,
        lifetime = o.lifetime,
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it is wrong.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Each named test (a `fn(StateBackend)`), once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::common::StateBackend::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$name($crate::common::StateBackend::Postgres);
            }
        }
    )*};
}
