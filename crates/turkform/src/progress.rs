//! Progress on stderr: a bar on a terminal (done / total, rate, ETA, throttling noticed), plain
//! periodic lines otherwise (cron logs), and the final report. The executor reports through
//! [`turkform_apply::Reporter`]; only this module draws.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use turkform_apply::{ApplyEvent, ApplyReport, Reporter};

/// How often a non-terminal run prints a progress line.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    what: &'static str,
    bar: Option<indicatif::ProgressBar>,
    state: Mutex<LineState>,
}

struct LineState {
    total: u64,
    done: u64,
    failed: u64,
    throttled: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(what: &'static str) -> Progress {
        let bar = crate::settings::stderr_color().then(|| {
            let bar = indicatif::ProgressBar::hidden();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(what);
            bar
        });
        let now = Instant::now();
        Progress {
            what,
            bar,
            state: Mutex::new(LineState {
                total: 0,
                done: 0,
                failed: 0,
                throttled: 0,
                started: now,
                last_line: now,
            }),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn tick(&self, state: &mut LineState, force: bool) {
        let now = Instant::now();
        let finished = state.done + state.failed;
        let rate = finished as f64 / now.duration_since(state.started).as_secs_f64().max(0.001);
        if let Some(bar) = &self.bar {
            bar.set_length(state.total);
            bar.set_position(finished);
            let left = state.total.saturating_sub(finished) as f64;
            let mut message = format!("{rate:.0}/s, eta {:.0}s", left / rate.max(0.001));
            if state.throttled > 0 {
                message.push_str(&format!(" (throttled {}x, slowing down)", state.throttled));
            }
            bar.set_message(message);
            return;
        }
        if !force && now.duration_since(state.last_line) < LINE_EVERY {
            return;
        }
        state.last_line = now;
        eprintln!(
            "{}: {}/{} done, {} failed, {rate:.0}/s, throttled {}x",
            self.what, state.done, state.total, state.failed, state.throttled
        );
    }
}

impl Reporter for Progress {
    fn event(&self, event: &ApplyEvent) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match event {
            ApplyEvent::Started { total_actions } => {
                state.total = *total_actions as u64;
                state.started = Instant::now();
                if let Some(bar) = &self.bar {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    bar.reset_elapsed();
                }
            }
            ApplyEvent::ActionDone { .. } => state.done += 1,
            ApplyEvent::ActionFailed { .. } => state.failed += 1,
            ApplyEvent::Throttled { .. } => state.throttled += 1,
            ApplyEvent::Finished => {
                let mut s = state;
                self.tick(&mut s, true);
                return;
            }
            _ => {}
        }
        let mut s = state;
        self.tick(&mut s, false);
    }
}

/// The final summary on stderr, with every failure and MTurk's own words.
pub fn print_report(report: &ApplyReport) {
    let calls: u64 = report.api_calls.values().sum();
    eprintln!(
        "\nApply {}: {} done, {} failed in {:.1}s ({calls} MTurk calls, {} throttled, {} retried)",
        if report.interrupted {
            "interrupted"
        } else if report.failed.is_empty() {
            "complete"
        } else {
            "finished with failures"
        },
        report.done,
        report.failed.len(),
        report.elapsed.as_secs_f64(),
        report.throttled,
        report.retries,
    );
    for f in &report.failed {
        let place = if f.campaign.is_empty() {
            f.item_key.clone()
        } else {
            format!("{}/{}", f.campaign, f.item_key)
        };
        eprintln!("  failed: {place} ({}): {}", f.kind, f.message);
    }
    let r = &report.review;
    if r.done() + r.confirmed + r.bonuses_found_paid + r.conflicts.len() > 0 {
        eprintln!(
            "  review: {} approved, {} rejection(s) overridden, {} rejected, {} bonus(es) paid; {} confirmed already done, {} pending bonus(es) found paid",
            r.approved, r.overridden, r.rejected, r.bonuses_paid, r.confirmed, r.bonuses_found_paid
        );
    }
    for c in &r.conflicts {
        eprintln!("  conflict: {c}");
    }
    let w = &report.workers;
    if w.done() + w.confirmed > 0 {
        eprintln!(
            "  workers: {} blocked, {} unblocked, {} qualification(s) granted, {} revoked, {} notification setting(s) updated; {} confirmed by MTurk's lists after a failed call",
            w.blocked, w.unblocked, w.granted, w.revoked, w.notifications, w.confirmed
        );
    }
    if report.interrupted {
        eprintln!("  what was in flight is recorded; run `turkform apply` again to finish");
    }
}
