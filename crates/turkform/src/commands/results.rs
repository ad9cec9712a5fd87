//! `turkform results`: every assignment in state, in MTurk's batch-results CSV or JSON Lines,
//! streamed from the state store to the output one row at a time; or, with `--aggregate`, one
//! row per item, which needs every answer of the chosen campaigns in memory first.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use turkform_model::{AssignmentStatus, DesiredState, HitTypeSpec, UnixTime};
use turkform_results::{
    AggregateMethod as Method, AggregatedCsv, AggregatedJsonl, AnswerCollector, ApprovalCounts,
    CsvExport, ExportError, ExportLayout, JsonlExport, Submission, TimeFormat, TimeFormatter,
    WorkerRates,
};
use turkform_state::{AssignmentFilter, OpenMode, WorkerDecisions};

use crate::cli::{ResultsAggregate, ResultsArgs, ResultsFormat, ResultsStatus, ResultsTimeFormat};
use crate::failure::Failure;
use crate::settings::Resolved;

/// The campaign files, when they load: `status` takes item totals and the reward and fee split
/// of approved work from them. It still works from state alone when they do not, so a problem
/// is a warning here, not a failure. (`results` reads none of it: what each HIT showed workers
/// is recorded in state as MTurk reported it.)
pub(super) fn desired_if_loadable(resolved: &Resolved, now: UnixTime) -> Option<DesiredState> {
    let opts = turkform_spec::LoadOptions {
        target: resolved.target,
        workers: resolved.workers.clone(),
        campaigns_dir: resolved.campaigns_dir.clone(),
        only: Vec::new(),
        now,
    };
    match turkform_spec::load_project(&opts) {
        Ok(d) => Some(d),
        Err(d) => {
            eprintln!(
                "warning: the campaign files do not load ({} problem{}; run `turkform validate`): item totals are left out and paid amounts are estimated from what state committed",
                d.0.len(),
                if d.0.len() == 1 { "" } else { "s" }
            );
            None
        }
    }
}

/// HIT-type properties by definition hash.
pub(super) fn hit_type_specs(desired: Option<&DesiredState>) -> HashMap<String, HitTypeSpec> {
    desired
        .map(|d| {
            d.campaigns
                .iter()
                .map(|c| (c.hit_type_hash.clone(), c.hit_type.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn rates(d: &WorkerDecisions) -> WorkerRates {
    WorkerRates {
        lifetime: ApprovalCounts {
            approved: d.approved,
            decided: d.decided,
        },
        last_30_days: ApprovalCounts {
            approved: d.approved_30d,
            decided: d.decided_30d,
        },
        last_7_days: ApprovalCounts {
            approved: d.approved_7d,
            decided: d.decided_7d,
        },
    }
}

/// Where rows go: stdout, or a temporary file beside `--output` renamed over it at the end
/// (a failed export never leaves half a file where the last good one was).
enum Sink {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    File {
        writer: std::io::BufWriter<std::fs::File>,
        temp: std::path::PathBuf,
        dest: std::path::PathBuf,
    },
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File { writer, .. } => writer.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File { writer, .. } => writer.flush(),
        }
    }
}

impl Sink {
    fn open(output: Option<&std::path::Path>) -> Result<Sink, Failure> {
        let Some(dest) = output else {
            return Ok(Sink::Stdout(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout().lock(),
            )));
        };
        let temp = if crate::output::replace_by_rename(dest) {
            let mut name = dest.as_os_str().to_os_string();
            name.push(format!(".tmp-{}", std::process::id()));
            std::path::PathBuf::from(name)
        } else {
            dest.to_path_buf()
        };
        let file = std::fs::File::create(&temp)
            .map_err(|e| Failure::user_msg(format!("cannot create `{}`: {e}", temp.display())))?;
        Ok(Sink::File {
            writer: std::io::BufWriter::with_capacity(1 << 16, file),
            temp,
            dest: dest.to_path_buf(),
        })
    }

    fn commit(self) -> Result<(), Failure> {
        match self {
            Sink::Stdout(mut w) => w.flush().map_err(Failure::internal),
            Sink::File { writer, temp, dest } => {
                let file = writer.into_inner().map_err(|e| {
                    Failure::user_msg(format!("cannot write `{}`: {}", temp.display(), e.error()))
                })?;
                // Written in place (a device, a FIFO, a symlink): nothing to sync or rename.
                if temp == dest {
                    return Ok(());
                }
                file.sync_all().map_err(|e| {
                    Failure::user_msg(format!("cannot write `{}`: {e}", temp.display()))
                })?;
                std::fs::rename(&temp, &dest).map_err(|e| {
                    Failure::user_msg(format!(
                        "cannot move the results to `{}`: {e}",
                        dest.display()
                    ))
                })
            }
        }
    }

    fn abandon(self) {
        if let Sink::File { temp, dest, .. } = self
            && temp != dest
        {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// One of the two writers.
enum Writer<W: Write> {
    Csv(CsvExport<W>),
    Jsonl(JsonlExport<W>),
}

impl<W: Write> Writer<W> {
    fn write(&mut self, s: &Submission<'_>) -> Result<(), ExportError> {
        match self {
            Writer::Csv(w) => w.write(s),
            Writer::Jsonl(w) => w.write(s),
        }
    }

    fn finish(self) -> Result<W, ExportError> {
        match self {
            Writer::Csv(w) => w.finish(),
            Writer::Jsonl(w) => w.finish(),
        }
    }
}

pub fn run(resolved: &Resolved, args: &ResultsArgs, now: UnixTime) -> Result<u8, Failure> {
    if args.aggregate.is_some() && args.status == ResultsStatus::Rejected {
        // Rejected answers are exactly the ones aggregation leaves out: refuse rather than
        // write a file of empty rows.
        return Err(Failure::user_msg(
            "`--aggregate` does not count rejected answers, so `--status rejected` cannot be combined with it",
        )
        .hint("use `--status all` (submitted and approved answers), `approved` or `submitted`, or drop `--aggregate` to list the rejected assignments"));
    }
    let store = super::open_state(&resolved.state_path, resolved.target, OpenMode::ReadOnly)?;
    let with_assignments = store
        .campaigns_with_assignments()
        .map_err(super::state_failure)?;
    let campaigns: Vec<String> = if args.campaigns.is_empty() {
        with_assignments.clone()
    } else {
        let known: BTreeSet<String> = store
            .load()
            .map_err(super::state_failure)?
            .hits
            .into_iter()
            .map(|h| h.campaign)
            .collect();
        for name in &args.campaigns {
            if !known.contains(name) {
                return Err(Failure::user_msg(format!(
                    "state has no HITs of campaign `{name}` for target {}",
                    resolved.target
                ))
                .hint("check the name with `turkform status`"));
            }
        }
        let named: BTreeSet<&String> = args.campaigns.iter().collect();
        named.into_iter().cloned().collect()
    };
    let decisions = store.worker_decisions(now).map_err(super::state_failure)?;

    let mut sink = Sink::open(args.output.as_deref())?;
    let written = match args.aggregate {
        Some(method) => aggregated(&store, args, method, &campaigns, &mut sink),
        None => export(&store, args, &campaigns, &decisions, &mut sink),
    };
    match written {
        Ok(rows) => {
            sink.commit()?;
            tracing::debug!(rows, "results written");
            Ok(0)
        }
        Err(e) => {
            sink.abandon();
            Err(e)
        }
    }
}

fn export(
    store: &turkform_state::StateStore,
    args: &ResultsArgs,
    campaigns: &[String],
    decisions: &std::collections::BTreeMap<String, WorkerDecisions>,
    out: &mut Sink,
) -> Result<u64, Failure> {
    let mut writer = match args.format {
        ResultsFormat::Jsonl => Writer::Jsonl(JsonlExport::new(&mut *out)),
        ResultsFormat::Csv => {
            let mut per_campaign = Vec::with_capacity(campaigns.len());
            for c in campaigns {
                per_campaign.push(store.export_columns(c).map_err(super::state_failure)?);
            }
            let times = TimeFormatter::new(match args.time_format {
                ResultsTimeFormat::Mturk => TimeFormat::Mturk,
                ResultsTimeFormat::Iso8601 => TimeFormat::Iso8601,
            })
            .map_err(Failure::internal)?;
            Writer::Csv(
                CsvExport::new(&mut *out, ExportLayout::union(per_campaign), times)
                    .map_err(write_failure)?,
            )
        }
    };
    let filter = AssignmentFilter {
        campaigns: campaigns.to_vec(),
        status: match args.status {
            ResultsStatus::Submitted => Some(AssignmentStatus::Submitted),
            ResultsStatus::Approved => Some(AssignmentStatus::Approved),
            ResultsStatus::Rejected => Some(AssignmentStatus::Rejected),
            ResultsStatus::All => None,
        },
    };
    let mut failed: Option<ExportError> = None;
    let mut rows = 0u64;
    store
        .visit_answers(&filter, |row| {
            let submission = Submission {
                assignment: &row.assignment,
                hit_type_id: &row.hit.hit_type_id,
                max_assignments: row.hit.max_assignments,
                created_at: row.hit.created_at,
                expiration: row.hit.expiration,
                input: row.hit.input.as_deref(),
                posted: row.hit.posted.as_ref(),
                similar_hits: row.hit.similar_hits,
                rates: decisions
                    .get(&row.assignment.worker_id)
                    .map(rates)
                    .unwrap_or_default(),
            };
            match writer.write(&submission) {
                Ok(()) => {
                    rows += 1;
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })
        .map_err(super::state_failure)?;
    if let Some(e) = failed {
        return Err(write_failure(e));
    }
    writer.finish().map_err(write_failure)?;
    Ok(rows)
}

/// `--aggregate`: every assignment of the campaigns is read (so an item whose answers were all
/// rejected still gets its row), those whose status counts are held in memory, then each
/// campaign is aggregated and written one item per row.
fn aggregated(
    store: &turkform_state::StateStore,
    args: &ResultsArgs,
    method: ResultsAggregate,
    campaigns: &[String],
    out: &mut Sink,
) -> Result<u64, Failure> {
    let counted: &[AssignmentStatus] = match args.status {
        ResultsStatus::All => &[AssignmentStatus::Submitted, AssignmentStatus::Approved],
        ResultsStatus::Approved => &[AssignmentStatus::Approved],
        ResultsStatus::Submitted => &[AssignmentStatus::Submitted],
        ResultsStatus::Rejected => &[],
    };
    let mut collector = AnswerCollector::new(counted);
    let filter = AssignmentFilter {
        campaigns: campaigns.to_vec(),
        status: None,
    };
    store
        .visit_answers(&filter, |row| {
            collector.add(&row.assignment, row.hit.input.as_deref());
            true
        })
        .map_err(super::state_failure)?;
    tracing::debug!(answers = collector.len(), "answers held for aggregation");
    let rows = collector.finish(match method {
        ResultsAggregate::Majority => Method::Majority,
        ResultsAggregate::DawidSkene => Method::DawidSkene,
    });
    match args.format {
        ResultsFormat::Jsonl => {
            let mut w = AggregatedJsonl::new(&mut *out);
            for row in &rows {
                w.write(row).map_err(write_failure)?;
            }
            w.finish().map_err(write_failure)?;
        }
        ResultsFormat::Csv => {
            let mut per_campaign = Vec::with_capacity(campaigns.len());
            for c in campaigns {
                per_campaign.push(store.export_columns(c).map_err(super::state_failure)?);
            }
            let mut w = AggregatedCsv::new(&mut *out, ExportLayout::union(per_campaign))
                .map_err(write_failure)?;
            for row in &rows {
                w.write(row).map_err(write_failure)?;
            }
            w.finish().map_err(write_failure)?;
        }
    }
    Ok(rows.len() as u64)
}

fn write_failure(e: ExportError) -> Failure {
    // The output is the user's (a full disk, a closed pipe): theirs to fix, exit 1.
    Failure::user(e)
}
