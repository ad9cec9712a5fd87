//! The command line: clap definitions only. Each subcommand becomes an options struct handed to
//! one function in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Declarative, crash-safe orchestration of Amazon Mechanical Turk HIT campaigns.
///
/// Campaigns live in TOML files; `plan` shows what would change on MTurk, `apply` makes exactly
/// those changes, idempotently: crashes, lost responses and re-runs never duplicate or lose a HIT.
#[derive(Debug, Parser)]
#[command(
    name = "turkform",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after the subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Run as if turkform was started in DIR
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Where HITs go: sim, sandbox or production [env: TURKFORM_TARGET]
    #[arg(long, value_name = "TARGET", global = true)]
    pub target: Option<String>,

    /// Talk to this MTurk endpoint instead of the target's (e.g. an external `turkform sim serve`)
    /// [env: TURKFORM_ENDPOINT_URL]
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint_url: Option<String>,

    /// The state database: a file, or postgres://user@host:5432/db?schema=NAME to share it with
    /// a team [env: TURKFORM_STATE] [default: state/turkform.db]
    #[arg(long, value_name = "FILE|URL", global = true)]
    pub state: Option<PathBuf>,

    /// More output: list every item of large plans, and logs on stderr (-v info, -vv debug,
    /// -vvv trace; RUST_LOG works too)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a project: turkform.toml, campaigns/ with one example, state/
    Init(InitArgs),
    /// Parse and validate every campaign (no network, no state writes)
    Validate,
    /// Print the question XML of one item, to check a template
    Render(RenderArgs),
    /// Show what apply would do, and what it would cost
    Plan(PlanArgs),
    /// Make the changes: create, extend, expire, retype, replace HITs
    Apply(ApplyArgs),
    /// Reconcile state with MTurk: statuses, counters, drift, HITs state does not know
    Refresh(RefreshArgs),
    /// Per-campaign progress from the last refresh
    Status(StatusArgs),
    /// Write a self-contained HTML report: progress, spend, statuses, projected completion
    Report(ReportArgs),
    /// Write every assignment: MTurk's batch-results CSV, or JSON Lines
    Results(ResultsArgs),
    /// Inspect and repair the state database
    #[command(subcommand)]
    State(StateCommand),
    /// The local MTurk simulator
    #[command(subcommand)]
    Sim(SimCommand),
    /// Do one item's HIT in a browser on an embedded simulator (nothing is applied)
    Preview(PreviewArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the project [default: the current directory]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The campaign's name
    pub campaign: String,
    /// The item's key [default: the first item]
    pub item: Option<String>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The campaign's name
    pub campaign: String,
    /// The item's key [default: the first item]
    pub item: Option<String>,
    /// Print the worker-site URL without opening a browser
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only these campaigns [default: all]
    pub campaigns: Vec<String>,

    /// Save the plan to FILE, for `turkform apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the plan as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Exit 0 when there are no changes, 2 when there are, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Read MTurk first to catch changes made outside turkform
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub refresh: bool,

    /// How long to wait for another turkform holding the state lock (e.g. 30s)
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Campaign names, or one saved plan file from `turkform plan --out` [default: all campaigns]
    pub targets: Vec<String>,

    /// Apply without asking for confirmation
    #[arg(long)]
    pub auto_approve: bool,

    /// Print a machine-readable report on stdout
    #[arg(long)]
    pub json: bool,

    /// Read MTurk first to catch changes made outside turkform
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub refresh: bool,

    /// How long to wait for another turkform holding the state lock (e.g. 30s)
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,

    /// Requests in flight at most [default: apply.concurrency from turkform.toml, or 16]
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub concurrency: Option<String>,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// How long to wait for another turkform holding the state lock (e.g. 30s)
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this campaign
    pub campaign: Option<String>,
    /// Print as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only these campaigns [default: all in the campaign files or in state]
    pub campaigns: Vec<String>,
    /// Where to write the HTML page (replaced atomically)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Only these campaigns (default: every campaign with assignments)
    pub campaigns: Vec<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = ResultsFormat::Csv)]
    pub format: ResultsFormat,
    /// Which assignments
    #[arg(long, value_enum, default_value_t = ResultsStatus::All)]
    pub status: ResultsStatus,
    /// Write to this file instead of stdout (replaced whole once complete)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// How CSV times are written: US Pacific as the web UI does, or UTC RFC 3339
    #[arg(long, value_enum, default_value_t = ResultsTimeFormat::Mturk)]
    pub time_format: ResultsTimeFormat,
    /// One row per item: each answer field combined across workers (rejected answers and a
    /// worker's second answer to an item are not counted)
    #[arg(long, value_enum, value_name = "METHOD")]
    pub aggregate: Option<ResultsAggregate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultsAggregate {
    Majority,
    DawidSkene,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultsFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultsStatus {
    Submitted,
    Approved,
    Rejected,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultsTimeFormat {
    Mturk,
    Iso8601,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List every HIT in state
    List {
        /// Only this campaign
        campaign: Option<String>,
        /// Print the records as JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Show everything state knows about one item (CAMPAIGN/KEY) or HIT id
    Show { item: String },
    /// Forget an item (CAMPAIGN/KEY) or a HIT id; nothing is changed on MTurk
    Rm { item: String },
    /// Rename a campaign (OLD NEW) or an item (CAMPAIGN/KEY CAMPAIGN/KEY) in state, so that the
    /// same rename in the campaign files re-posts nothing; nothing is changed on MTurk
    Mv { from: String, to: String },
    /// The run log: who ran which apply or refresh, where, when, and how it ended
    Runs {
        /// How many of the newest runs to show
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print the runs as JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Remove the lock record of a holder that vanished on another host
    ForceUnlock,
    /// Copy the whole state (every target, lineage and serials kept) to another backend: a
    /// SQLite file or a postgres:// URL; the destination must not hold a state yet
    Migrate {
        /// The destination: a file path or postgres://user@host:5432/db?schema=NAME
        #[arg(long, value_name = "FILE|URL")]
        to: PathBuf,
        /// How long to wait for another turkform holding the source's lock (e.g. 30s)
        #[arg(long, value_name = "DURATION", default_value = "0s")]
        lock_timeout: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run the MTurk simulator until interrupted
    Serve(SimServeArgs),
}

#[derive(Debug, Args)]
pub struct SimServeArgs {
    /// Address to listen on (loopback only is wise)
    #[arg(long, default_value = "127.0.0.1:4566")]
    pub addr: String,
    /// Persist the simulated world in this SQLite file [default: in memory]
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Access key id clients must sign with
    #[arg(long, default_value = turkform_sim::DEFAULT_ACCESS_KEY_ID)]
    pub access_key_id: String,
    /// Secret key clients must sign with
    #[arg(long, default_value = turkform_sim::DEFAULT_SECRET_ACCESS_KEY, hide_default_value = true)]
    pub secret_access_key: String,
    /// Added latency per request, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,
    /// Requests per second before ThrottlingException (token bucket)
    #[arg(long, value_name = "N")]
    pub throttle_rps: Option<f64>,
    /// Token bucket size for --throttle-rps [default: the rate]
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,
    /// Fraction of requests answered with ServiceFault (500) before any change
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Fraction of requests whose change is committed and whose connection is then dropped
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Seed for reproducible faults
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}
