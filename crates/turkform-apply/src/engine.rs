//! The pipelined executor of journaled calls.
//!
//! One task drives everything, so the state store has exactly one writer and needs no lock:
//! - intents are begun in batches (one transaction, one fsync, for the next wave of calls) and
//!   a call is sent only after its intent is committed;
//! - up to `concurrency` calls are in flight, paced by the adaptive [`Limiter`];
//! - outcomes are committed in groups (up to [`COMMIT_BATCH`] per transaction, or every
//!   [`COMMIT_EVERY`]): a crash before that commit leaves the intents pending, and the next run
//!   resends them with the same token, which MTurk deduplicates;
//! - retryable failures go back in the queue with jittered exponential backoff, a fatal one
//!   fails only its item.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use turkform_model::{HitStatus, RecordedAssignment, RecordedBonus, RecordedHit, Target};
use turkform_mturk::{ApiError, MturkApi};
use turkform_state::{Batch, IntentId, IntentOutcome, NewIntent, StateStore};

use crate::calls::{self, Call, Output, Purpose};
use crate::limiter::Limiter;
use crate::review::{self, ReviewReport, Settled};
use crate::{ActionFailure, ApplyError, ApplyEvent, Clock, Reporter};

/// Most outcomes committed in one transaction.
pub(crate) const COMMIT_BATCH: usize = 256;
/// Longest an outcome waits for its group commit while calls are still in flight.
pub(crate) const COMMIT_EVERY: Duration = Duration::from_millis(100);
/// Throttles tolerated for one call before the run gives up on it (the limiter should make
/// this unreachable; it bounds a run against a service that throttles everything).
const MAX_THROTTLES: u32 = 200;

/// What turkform knows of the world while applying: state as loaded, plus every outcome so far.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub hits: HashMap<String, RecordedHit>,
    /// HIT type definition hash -> id.
    pub hit_types: HashMap<String, String>,
    /// Custom qualification type name -> id.
    pub qualification_types: HashMap<String, String>,
    /// Assignment id -> record: what a decision's outcome updates.
    pub assignments: HashMap<String, RecordedAssignment>,
    /// Every bonus state records (paid or pending): where a resend's first request time and
    /// the payments ListBonusPayments cannot tell apart come from.
    pub bonuses: Vec<RecordedBonus>,
}

impl Memory {
    pub fn hash_of_hit_type(&self, id: &str) -> Option<String> {
        self.hit_types
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
    }
}

/// One call to make, and the calls of the same item that must follow it.
#[derive(Debug)]
pub(crate) struct Job {
    pub call: Call,
    pub intent: Option<IntentId>,
    /// Whether it may have reached MTurk already (sent in this run, or begun by an earlier
    /// one). Only a job never sent may be abandoned on interruption.
    pub sent: bool,
    /// Begun by an earlier run (recovery): it may have reached MTurk before this run.
    pub resumed: bool,
    pub attempts: u32,
    pub throttles: u32,
    pub ready_at: Instant,
    /// The rest of the item's chain (Replace: the create after the expire).
    pub then: VecDeque<Call>,
}

impl Job {
    pub fn new(call: Call) -> Job {
        Job {
            call,
            intent: None,
            sent: false,
            resumed: false,
            attempts: 0,
            throttles: 0,
            ready_at: Instant::now(),
            then: VecDeque::new(),
        }
    }

    /// A call resumed from a pending intent of an earlier run.
    pub fn resumed(call: Call, intent: IntentId) -> Job {
        Job {
            intent: Some(intent),
            sent: true,
            resumed: true,
            ..Job::new(call)
        }
    }
}

/// Counters shared by every phase of a run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub done: usize,
    pub failed: Vec<ActionFailure>,
    pub throttled: u64,
    pub retries: u64,
    pub interrupted: bool,
    /// Intents left pending on purpose (gave up after retries): the next run resumes them.
    pub left_pending: usize,
    /// What the review calls did (their failures are in `failed` too).
    pub review: ReviewReport,
}

type Flight<'a> =
    Pin<Box<dyn Future<Output = (Job, Instant, Result<Output, ApiError>)> + Send + 'a>>;

pub(crate) struct Engine<'a> {
    pub api: &'a dyn MturkApi,
    pub store: &'a mut StateStore,
    pub clock: &'a dyn Clock,
    pub reporter: &'a dyn Reporter,
    pub target: Target,
    pub cancel: CancellationToken,
    pub max_retries: u32,
    pub limiter: Limiter,
    pub memory: Memory,
    pub tally: Tally,
}

/// Runs a store operation. SQLite blocks (fsync); on a multi-threaded runtime the worker is
/// handed over while it does, so the HTTP connections and any in-process simulator keep going.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl<'a> Engine<'a> {
    /// An engine for one run (apply or recovery), starting from what state already records.
    pub fn new(
        api: &'a dyn MturkApi,
        store: &'a mut StateStore,
        clock: &'a dyn Clock,
        reporter: &'a dyn Reporter,
        options: &crate::ApplyOptions,
        memory: Memory,
    ) -> Engine<'a> {
        Engine {
            api,
            store,
            clock,
            reporter,
            target: options.target,
            cancel: options.cancel.clone(),
            max_retries: options.max_retries,
            limiter: Limiter::new(options.concurrency),
            memory,
            tally: Tally::default(),
        }
    }

    fn commit(&mut self, batch: &mut Batch) -> Result<(), ApplyError> {
        if batch.is_empty() {
            return Ok(());
        }
        let b = std::mem::take(batch);
        let store = &mut *self.store;
        blocking(|| store.commit(&b)).map_err(ApplyError::State)
    }

    fn new_intent(&self, call: &Call) -> Option<NewIntent> {
        let kind = call.intent_kind()?;
        Some(NewIntent {
            kind,
            campaign: call.campaign().map(str::to_owned),
            item_key: call.item_key().map(str::to_owned),
            generation: call.generation(),
            hit_id: call.hit_id().map(str::to_owned),
            token: call.token(self.target),
            payload: serde_json::to_value(call).unwrap_or(serde_json::Value::Null),
            created_at: self.clock.now(),
        })
    }

    /// Begins the intents of `jobs` in one transaction.
    fn begin(&mut self, jobs: &mut [Job]) -> Result<(), ApplyError> {
        let mut intents = Vec::new();
        let mut slots = Vec::new();
        // A bonus's permanent record is written with its intent, in the same transaction.
        let mut bonuses = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if job.intent.is_some() {
                continue;
            }
            if let Some(intent) = self.new_intent(&job.call) {
                intents.push(intent);
                slots.push(i);
                if let Call::SendBonus(b) = &job.call {
                    bonuses.push(b.record());
                }
            }
        }
        if intents.is_empty() {
            return Ok(());
        }
        let store = &mut *self.store;
        let ids = blocking(|| store.begin_intents_and_bonuses(&intents, &bonuses))
            .map_err(ApplyError::State)?;
        for (slot, id) in slots.into_iter().zip(ids) {
            jobs[slot].intent = Some(id);
        }
        Ok(())
    }

    fn launch(&self, job: Job, sent_at: Instant) -> Flight<'a> {
        let api = self.api;
        let now = self.clock.now();
        let span = tracing::debug_span!(
            "call",
            op = job.call.label(),
            campaign = job.call.campaign().unwrap_or(""),
            item = job.call.item_key().unwrap_or(""),
            hit_id = job.call.hit_id().unwrap_or(""),
        );
        Box::pin(
            async move {
                let result = calls::send(api, &job.call, now).await;
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "call failed");
                }
                (job, sent_at, result)
            }
            .instrument(span),
        )
    }

    fn fail(&mut self, call: &Call, message: String) {
        self.reporter.event(&ApplyEvent::ActionFailed {
            campaign: call.campaign().unwrap_or("").to_owned(),
            item_key: call.item_key().unwrap_or("").to_owned(),
            kind: call.label(),
            message: message.clone(),
        });
        let failure = ActionFailure {
            campaign: call.campaign().unwrap_or("").to_owned(),
            item_key: call.item_key().unwrap_or("").to_owned(),
            kind: call.label(),
            message,
        };
        if call.is_review() {
            self.tally.review.failed.push(failure.clone());
        }
        self.tally.failed.push(failure);
    }

    /// Records a review call's outcome: the assignment as decided (or as MTurk shows it after
    /// a conflict), the bonus paid, with the intent's outcome in the same batch.
    fn succeed_review(&mut self, job: &Job, output: &Output, batch: &mut Batch) {
        let now = self.clock.now();
        let change = match &job.call {
            Call::Decide(d) => review::settle_decision(
                d,
                output,
                self.memory.assignments.get(&d.assignment_id),
                now,
            ),
            Call::SendBonus(b) => review::settle_bonus(b, output, now),
            _ => return,
        };
        if let Some(id) = job.intent {
            let outcome = match &change.settled {
                Settled::Conflict(message) => IntentOutcome::Failed {
                    message: message.clone(),
                },
                _ => IntentOutcome::Done,
            };
            batch.completed.push((id, outcome));
        }
        if let Some(a) = change.assignment {
            self.memory
                .assignments
                .insert(a.assignment_id.clone(), a.clone());
            batch.upsert_assignments.push(a);
        }
        batch.bonuses_paid.extend(change.bonus_paid);
        if matches!(
            change.settled,
            Settled::Approved | Settled::Overridden | Settled::Rejected | Settled::BonusPaid
        ) {
            self.tally.done += 1;
        }
        self.tally.review.count(change.settled);
        self.reporter.event(&ApplyEvent::ActionDone {
            campaign: job.call.campaign().unwrap_or("").to_owned(),
            item_key: job.call.item_key().unwrap_or("").to_owned(),
            kind: job.call.label(),
            hit_id: job.call.hit_id().map(str::to_owned),
        });
    }

    /// Records a success and returns the follow-up job, if the item's chain goes on.
    fn succeed(&mut self, job: Job, output: Output, batch: &mut Batch) -> Option<Job> {
        if job.call.is_review() {
            self.succeed_review(&job, &output, batch);
            return next_in_chain(job.then);
        }
        let current = job.call.hit_id().and_then(|id| self.memory.hits.get(id));
        let memory = &self.memory;
        let change = calls::settle(
            &job.call,
            &output,
            current,
            &|id| memory.hash_of_hit_type(id),
            self.clock.now(),
        );
        if let Some(id) = job.intent {
            batch.completed.push((id, IntentOutcome::Done));
        }
        if let Some(hit) = change.hit {
            self.memory.hits.insert(hit.hit_id.clone(), hit.clone());
            batch.upsert_hits.push(hit);
        }
        batch.hit_inputs.extend(change.hit_input);
        batch.upsert_posted.extend(change.posted);
        if let Some(t) = change.hit_type {
            self.memory
                .hit_types
                .insert(t.definition_hash.clone(), t.hit_type_id.clone());
            batch.upsert_hit_types.push(t);
        }
        if let Some(q) = change.qualification_type {
            self.memory
                .qualification_types
                .insert(q.name.clone(), q.qualification_type_id.clone());
            batch.upsert_qualification_types.push(q);
        }
        if let Some(orphan) = change.adopted_orphan {
            batch.remove_orphans.push(orphan);
        }
        let event = if matches!(job.call, Call::Adopt { .. }) {
            ApplyEvent::Adopted {
                campaign: job.call.campaign().unwrap_or("").to_owned(),
                item_key: job.call.item_key().unwrap_or("").to_owned(),
                hit_id: change.hit_id.clone().unwrap_or_default(),
            }
        } else {
            ApplyEvent::ActionDone {
                campaign: job.call.campaign().unwrap_or("").to_owned(),
                item_key: job.call.item_key().unwrap_or("").to_owned(),
                kind: job.call.label(),
                hit_id: change.hit_id.clone(),
            }
        };
        self.reporter.event(&event);
        let mut then = job.then;
        match then.pop_front() {
            Some(next) => {
                let mut j = Job::new(next);
                j.then = then;
                Some(j)
            }
            None => {
                self.tally.done += 1;
                None
            }
        }
    }

    /// Runs `jobs` to completion (or interruption). Jobs may already carry intents (resumed).
    pub async fn run(&mut self, jobs: Vec<Job>) -> Result<(), ApplyError> {
        let concurrency = self.limiter.concurrency();
        // Begin a wave when fewer than this many begun calls wait to be sent.
        let low_water = concurrency * 2;
        let wave = (concurrency * 4).clamp(32, COMMIT_BATCH);

        let mut unbegun: VecDeque<Job> = VecDeque::new();
        let mut ready: VecDeque<Job> = VecDeque::new();
        for job in jobs {
            if job.intent.is_some() || job.call.intent_kind().is_none() {
                ready.push_back(job);
            } else {
                unbegun.push_back(job);
            }
        }
        let mut waiting: Vec<Job> = Vec::new();
        let mut in_flight: FuturesUnordered<Flight<'a>> = FuturesUnordered::new();
        let mut batch = Batch::default();
        let mut batch_since: Option<Instant> = None;
        let mut stopping = false;

        loop {
            let now = Instant::now();
            if !stopping && self.cancel.is_cancelled() {
                stopping = true;
                self.tally.interrupted = true;
            }
            // Retries whose backoff is over go to the front: they were begun long ago.
            let mut i = 0;
            while i < waiting.len() {
                if waiting[i].ready_at <= now {
                    ready.push_front(waiting.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            if !stopping && ready.len() < low_water && !unbegun.is_empty() {
                let n = wave.min(unbegun.len());
                let mut next: Vec<Job> = unbegun.drain(..n).collect();
                self.begin(&mut next)?;
                ready.extend(next);
            }
            let mut wake: Option<Instant> = None;
            while !stopping && !ready.is_empty() {
                match self.limiter.check(Instant::now(), in_flight.len()) {
                    Ok(()) => {
                        let Some(mut job) = ready.pop_front() else {
                            break;
                        };
                        let sent_at = Instant::now();
                        self.limiter.on_send(sent_at);
                        job.sent = true;
                        in_flight.push(self.launch(job, sent_at));
                    }
                    Err(at) => {
                        wake = at;
                        break;
                    }
                }
            }
            let batch_due = batch_since.is_some_and(|t| now.duration_since(t) >= COMMIT_EVERY);
            if !batch.is_empty()
                && (batch.completed.len() >= COMMIT_BATCH || batch_due || in_flight.is_empty())
            {
                self.commit(&mut batch)?;
                batch_since = None;
            }
            let all_queued_done = ready.is_empty() && waiting.is_empty() && unbegun.is_empty();
            if in_flight.is_empty() && (stopping || all_queued_done) {
                break;
            }
            for t in waiting
                .iter()
                .map(|j| j.ready_at)
                .chain(batch_since.map(|t| t + COMMIT_EVERY))
            {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some((job, sent_at, result)) = in_flight.next(), if !in_flight.is_empty() => {
                    if batch_since.is_none() {
                        batch_since = Some(Instant::now());
                    }
                    if let Some(next) = self.settle(job, sent_at, result, &mut batch, &mut waiting) {
                        unbegun.push_front(next);
                    }
                }
                () = self.cancel.cancelled(), if !stopping => {}
                () = sleep => {}
            }
        }

        if stopping {
            // Calls begun but never sent are abandoned: MTurk never saw them, so nothing needs
            // resending. Calls that were sent (waiting for a retry) stay pending for the next run.
            for job in ready.iter().chain(waiting.iter()) {
                if let (Some(id), false) = (job.intent, job.sent) {
                    batch.completed.push((
                        id,
                        IntentOutcome::Abandoned {
                            message: "interrupted before it was sent".to_owned(),
                        },
                    ));
                }
            }
        }
        self.commit(&mut batch)
    }

    /// Handles one finished attempt; returns the item's next call, if any.
    fn settle(
        &mut self,
        mut job: Job,
        sent_at: Instant,
        result: Result<Output, ApiError>,
        batch: &mut Batch,
        waiting: &mut Vec<Job>,
    ) -> Option<Job> {
        let now = Instant::now();
        match result {
            Ok(output) => {
                self.limiter.on_success();
                self.succeed(job, output, batch)
            }
            Err(ApiError::Throttled { message }) => {
                self.tally.throttled += 1;
                if let Some(rate) = self.limiter.on_throttle(now, sent_at) {
                    self.reporter
                        .event(&ApplyEvent::Throttled { new_limit: rate });
                }
                job.throttles += 1;
                if job.throttles > MAX_THROTTLES {
                    self.give_up(&job, &message);
                    return review_chain(job);
                }
                self.tally.retries += 1;
                // The limiter paces the resend; a little jitter spreads a throttled wave.
                job.ready_at = now + Duration::from_millis(rand::rng().random_range(0..20));
                waiting.push(job);
                None
            }
            Err(ApiError::Transient { message }) => {
                self.limiter.on_success();
                job.attempts += 1;
                if job.attempts > self.max_retries {
                    self.give_up(&job, &message);
                    return review_chain(job);
                }
                self.tally.retries += 1;
                self.reporter.event(&ApplyEvent::Retrying {
                    campaign: job.call.campaign().unwrap_or("").to_owned(),
                    item_key: job.call.item_key().unwrap_or("").to_owned(),
                    kind: job.call.label(),
                    attempt: job.attempts,
                    message,
                });
                job.ready_at = now + backoff(job.attempts);
                waiting.push(job);
                None
            }
            Err(ApiError::AlreadyExists { message, .. }) if is_extend(&job.call) => {
                self.limiter.on_success();
                if job.resumed || job.attempts > 0 {
                    // An earlier attempt of this very call may have taken effect.
                    return self.succeed(job, Output::Done, batch);
                }
                // Its first attempt: MTurk remembers (HIT, ExpireAt) from an earlier extension
                // to the same instant and did nothing. Extend to one second later, as a new call.
                if let Some(id) = job.intent {
                    batch.completed.push((
                        id,
                        IntentOutcome::Abandoned {
                            message: format!("{message}; extending to one second later"),
                        },
                    ));
                }
                let mut call = job.call;
                if let Call::UpdateExpiration { expire_at, .. } = &mut call {
                    *expire_at = expire_at.plus_secs(1);
                }
                Some(Job::new(call))
            }
            Err(e @ ApiError::AlreadyExists { .. }) => {
                // Only a create whose token was used but whose HIT id MTurk did not name gets
                // here: the HIT exists; refresh finds it by its annotation and apply adopts it.
                self.limiter.on_success();
                let message = format!(
                    "{e}; the HIT exists but its id is unknown: run `turkform refresh` to adopt it"
                );
                if let Some(id) = job.intent {
                    batch.completed.push((
                        id,
                        IntentOutcome::Abandoned {
                            message: message.clone(),
                        },
                    ));
                }
                self.fail(&job.call, message);
                None
            }
            Err(e @ ApiError::Unreachable { .. }) => {
                // The run's budget for waiting on an endpoint that does not answer is spent:
                // stop sending (calls never sent are abandoned) instead of failing every item
                // in turn. This call may have reached MTurk, so its intent stays pending.
                self.give_up(&job, &e.to_string());
                self.cancel.cancel();
                None
            }
            Err(e) if e.is_hit_does_not_exist() && is_expire(&job.call) => {
                // Expiring a HIT MTurk has already disposed of: nothing is left to expire.
                self.limiter.on_success();
                if let Some(hit) = job
                    .call
                    .hit_id()
                    .and_then(|id| self.memory.hits.get_mut(id))
                {
                    hit.status = HitStatus::Disposed;
                    batch.upsert_hits.push(hit.clone());
                }
                if let Some(id) = job.intent {
                    batch.completed.push((id, IntentOutcome::Done));
                }
                self.tally.done += 1;
                None
            }
            Err(e) => {
                self.limiter.on_success();
                let message = e.to_string();
                if let Some(id) = job.intent {
                    batch.completed.push((
                        id,
                        IntentOutcome::Failed {
                            message: message.clone(),
                        },
                    ));
                }
                self.fail(&job.call, message);
                review_chain(job)
            }
        }
    }

    fn give_up(&mut self, job: &Job, message: &str) {
        // The call may have taken effect: the intent stays pending and the next run resends it
        // with the same token.
        self.tally.left_pending += 1;
        self.fail(
            &job.call,
            format!(
                "gave up after {} attempts ({message}); the next apply resumes it",
                job.attempts + job.throttles + 1
            ),
        );
    }
}

/// After a review call failed: the next call of its chain. The bonuses of one assignment are
/// chained only to be looked up in turn, so one that MTurk refused (or that was given up on,
/// its intent left pending) does not stop the others; any other chain stops at a failure.
fn review_chain(job: Job) -> Option<Job> {
    if job.call.is_review() {
        next_in_chain(job.then)
    } else {
        None
    }
}

/// The job for the next call of a chain, if any.
fn next_in_chain(mut then: VecDeque<Call>) -> Option<Job> {
    let next = then.pop_front()?;
    let mut job = Job::new(next);
    job.then = then;
    Some(job)
}

fn is_expire(call: &Call) -> bool {
    matches!(
        call,
        Call::UpdateExpiration {
            purpose: Purpose::Expire { .. },
            ..
        }
    )
}

fn is_extend(call: &Call) -> bool {
    matches!(
        call,
        Call::UpdateExpiration {
            purpose: Purpose::Extend,
            ..
        }
    )
}

/// Equal-jitter exponential backoff: a delay drawn between half and all of 100 ms doubling per
/// attempt (at most 5 s), so a retry never comes back immediately yet a wave still spreads.
fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(6))
        .min(Duration::from_secs(5));
    let millis = u64::try_from(cap.as_millis()).unwrap_or(5000);
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}
