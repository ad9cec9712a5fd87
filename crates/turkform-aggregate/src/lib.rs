//! Aggregation of crowd answers into one value per item and answer field: majority vote and
//! Dawid-Skene (Dawid & Skene 1979, "Maximum Likelihood Estimation of Observer Error-Rates Using
//! the EM Algorithm").
//!
//! This crate owns only the arithmetic. It takes answers already filtered by the caller (no
//! rejected answers, at most one answer per worker and item) in submit order, and must not know
//! about assignments, MTurk, state, files or output formats: `turkform results --aggregate`
//! feeds it and writes what it returns.
//!
//! Every result is deterministic: no randomness, and every loop runs in an order fixed by the
//! input (items, workers and values are numbered in the order they are first seen).

use std::collections::{BTreeMap, HashMap};

/// One worker's answer to one item, as the caller flattened it (field name -> value).
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// The item the answer is about (a campaign's item key).
    pub item: &'a str,
    /// Who answered; Dawid-Skene learns one confusion matrix per worker.
    pub worker: &'a str,
    /// The answer fields. A field absent here does not count for that field.
    pub fields: &'a BTreeMap<String, String>,
}

/// How the answers to one item and field are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// The most frequent value wins; see [`aggregate`] for the tie rule.
    Majority,
    /// EM over per-worker confusion matrices, initialised from majority vote; see
    /// [`DawidSkeneOptions`] for the smoothing and the stopping rule.
    DawidSkene,
}

/// The aggregated answer of one item for one field.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregated {
    /// The chosen value.
    pub value: String,
    /// Majority: the share of counted answers holding [`Aggregated::value`]. Dawid-Skene: the
    /// posterior probability of [`Aggregated::value`]. Always in `[0, 1]`.
    pub agreement: f64,
    /// How many answers to this item held this field.
    pub count: u32,
}

/// Every field aggregated for one item.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemResult {
    pub item: String,
    /// Only the fields that at least one answer to this item holds.
    pub fields: BTreeMap<String, Aggregated>,
}

/// The knobs of Dawid-Skene. [`Default`] is what [`aggregate`] uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DawidSkeneOptions {
    /// EM stops after this many iterations at the latest (default 100).
    pub max_iterations: u32,
    /// EM stops as soon as no posterior probability of any item moved by more than this in one
    /// iteration (default 1e-6).
    pub tolerance: f64,
    /// Additive (Laplace) smoothing: this many pseudo-answers are added to every cell of every
    /// worker's confusion matrix and to every class count of the prior (default 1). It keeps a
    /// worker seen on a handful of items from getting a confusion matrix of hard zeros and ones,
    /// which would let one answer veto every other.
    pub smoothing: f64,
    /// A field with more distinct values than this is treated as free text, not categories: a
    /// confusion matrix over thousands of values is neither meaningful nor affordable
    /// (workers x values x values). Such a field is aggregated by majority vote instead, with the
    /// majority agreement (default 64).
    pub max_classes: usize,
}

impl Default for DawidSkeneOptions {
    fn default() -> Self {
        DawidSkeneOptions {
            max_iterations: 100,
            tolerance: 1e-6,
            smoothing: 1.0,
            max_classes: 64,
        }
    }
}

/// Aggregates `answers` per item and field with `method` and the default
/// [`DawidSkeneOptions`].
///
/// `answers` in submit order (already without rejected answers and without a second answer by
/// the same worker to the same item; the caller filters). Items in first-seen order.
///
/// Each field is aggregated on its own; an answer lacking a field does not count for it (an
/// empty string is a value and does count).
///
/// **Majority**: the value held by the most answers wins; its agreement is its share of the
/// answers counted. **Ties go to the value first seen in submit order** among the tied values
/// (of `a, b, b, a` the winner is `a`).
///
/// **Dawid-Skene**: per field, EM over (item, worker, value) starting from the majority shares;
/// the value with the highest posterior wins and its posterior is the agreement. Ties between
/// equal posteriors are broken as majority does: the value first seen among this item's answers
/// in submit order, then values this item did not receive in the order the field first saw them.
pub fn aggregate(method: Method, answers: &[Answer<'_>]) -> Vec<ItemResult> {
    aggregate_with(method, &DawidSkeneOptions::default(), answers)
}

/// [`aggregate`] with explicit Dawid-Skene options (ignored by [`Method::Majority`]).
pub fn aggregate_with(
    method: Method,
    options: &DawidSkeneOptions,
    answers: &[Answer<'_>],
) -> Vec<ItemResult> {
    let mut items = Interner::default();
    let mut workers = Interner::default();
    let mut fields: BTreeMap<&str, FieldAnswers<'_>> = BTreeMap::new();
    for answer in answers {
        let item = items.intern(answer.item);
        let worker = workers.intern(answer.worker);
        for (name, value) in answer.fields {
            let field = fields.entry(name.as_str()).or_default();
            let label = field.labels.intern(value);
            field.observations.push(Observation {
                item,
                worker,
                label,
            });
        }
    }

    let mut results: Vec<ItemResult> = items
        .names
        .iter()
        .map(|item| ItemResult {
            item: (*item).to_owned(),
            fields: BTreeMap::new(),
        })
        .collect();
    for (name, field) in &fields {
        let grouped = ByItem::new(items.names.len(), &field.observations);
        let chosen = match method {
            Method::DawidSkene if field.labels.names.len() <= options.max_classes => {
                dawid_skene(options, workers.names.len(), field, &grouped)
            }
            Method::Majority | Method::DawidSkene => majority(field, &grouped),
        };
        for (item, label, agreement, count) in chosen {
            results[item as usize].fields.insert(
                (*name).to_owned(),
                Aggregated {
                    value: field.labels.names[label as usize].to_owned(),
                    agreement,
                    count,
                },
            );
        }
    }
    results
}

/// Numbers strings in first-seen order, which is what makes every later loop deterministic.
#[derive(Default)]
struct Interner<'a> {
    index: HashMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn intern(&mut self, name: &'a str) -> u32 {
        let next = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        *self.index.entry(name).or_insert_with(|| {
            self.names.push(name);
            next
        })
    }
}

#[derive(Clone, Copy)]
struct Observation {
    item: u32,
    worker: u32,
    label: u32,
}

#[derive(Default)]
struct FieldAnswers<'a> {
    labels: Interner<'a>,
    /// In submit order.
    observations: Vec<Observation>,
}

/// The observations of one field grouped by item (compressed rows), keeping submit order
/// within each item.
struct ByItem {
    offsets: Vec<usize>,
    order: Vec<u32>,
}

impl ByItem {
    fn new(item_count: usize, observations: &[Observation]) -> ByItem {
        let mut offsets = vec![0usize; item_count + 1];
        for o in observations {
            offsets[o.item as usize + 1] += 1;
        }
        for i in 0..item_count {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut order = vec![0u32; observations.len()];
        for (index, o) in observations.iter().enumerate() {
            let slot = &mut fill[o.item as usize];
            order[*slot] = u32::try_from(index).expect("fewer than 2^32 answers");
            *slot += 1;
        }
        ByItem { offsets, order }
    }

    fn item_count(&self) -> usize {
        self.offsets.len() - 1
    }

    fn of(&self, item: usize) -> &[u32] {
        &self.order[self.offsets[item]..self.offsets[item + 1]]
    }
}

/// (item, label, agreement, count) for every item that has this field.
type Chosen = Vec<(u32, u32, f64, u32)>;

/// Counts per label for one item, in the order the labels first appear among its answers.
fn tally(
    field: &FieldAnswers<'_>,
    rows: &[u32],
    counts: &mut [u32],
    seen: &mut Vec<u32>,
) -> (u32, u32) {
    seen.clear();
    for &row in rows {
        let label = field.observations[row as usize].label;
        if counts[label as usize] == 0 {
            seen.push(label);
        }
        counts[label as usize] += 1;
    }
    let mut best = (seen[0], counts[seen[0] as usize]);
    for &label in seen.iter().skip(1) {
        // Strictly greater: an equal count never displaces a value seen earlier.
        if counts[label as usize] > best.1 {
            best = (label, counts[label as usize]);
        }
    }
    best
}

fn majority(field: &FieldAnswers<'_>, grouped: &ByItem) -> Chosen {
    let mut counts = vec![0u32; field.labels.names.len()];
    let mut seen = Vec::new();
    let mut chosen = Vec::new();
    for item in 0..grouped.item_count() {
        let rows = grouped.of(item);
        if rows.is_empty() {
            continue;
        }
        let (label, votes) = tally(field, rows, &mut counts, &mut seen);
        let total = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        chosen.push((
            u32::try_from(item).expect("item index fits"),
            label,
            f64::from(votes) / f64::from(total),
            total,
        ));
        for &l in &seen {
            counts[l as usize] = 0;
        }
    }
    chosen
}

/// Dawid-Skene for one field. Posteriors live in a dense `items x classes` matrix and the
/// confusion matrices in a dense `workers x true class x given class` one, both over only the
/// items and workers that answered this field.
fn dawid_skene(
    options: &DawidSkeneOptions,
    worker_count: usize,
    field: &FieldAnswers<'_>,
    grouped: &ByItem,
) -> Chosen {
    let k = field.labels.names.len();
    let smoothing = options.smoothing.max(0.0);

    // Local numbering of the items and workers this field involves.
    let items: Vec<usize> = (0..grouped.item_count())
        .filter(|&i| !grouped.of(i).is_empty())
        .collect();
    let mut worker_local = vec![u32::MAX; worker_count];
    let mut local_workers = 0u32;
    for o in &field.observations {
        let slot = &mut worker_local[o.worker as usize];
        if *slot == u32::MAX {
            *slot = local_workers;
            local_workers += 1;
        }
    }
    let w_count = local_workers as usize;

    // Initialise the posteriors with the majority shares.
    let mut posterior = vec![0.0f64; items.len() * k];
    for (local, &item) in items.iter().enumerate() {
        let rows = grouped.of(item);
        let share = 1.0 / rows.len() as f64;
        for &row in rows {
            let label = field.observations[row as usize].label as usize;
            posterior[local * k + label] += share;
        }
    }

    let mut log_prior = vec![0.0f64; k];
    let mut log_confusion = vec![0.0f64; w_count * k * k];
    let mut next = vec![0.0f64; items.len() * k];
    for _ in 0..options.max_iterations {
        // M-step: class priors and confusion matrices from the current posteriors.
        let mut prior = vec![smoothing; k];
        for row in posterior.chunks_exact(k) {
            for (p, x) in prior.iter_mut().zip(row) {
                *p += x;
            }
        }
        let prior_total: f64 = prior.iter().sum();
        for (lp, p) in log_prior.iter_mut().zip(&prior) {
            *lp = (p / prior_total).ln();
        }
        let mut confusion = vec![smoothing; w_count * k * k];
        for (local, &item) in items.iter().enumerate() {
            let post = &posterior[local * k..(local + 1) * k];
            for &row in grouped.of(item) {
                let o = field.observations[row as usize];
                let w = worker_local[o.worker as usize] as usize;
                let label = o.label as usize;
                for (truth, p) in post.iter().enumerate() {
                    confusion[(w * k + truth) * k + label] += p;
                }
            }
        }
        for (row, log_row) in confusion
            .chunks_exact(k)
            .zip(log_confusion.chunks_exact_mut(k))
        {
            let total: f64 = row.iter().sum();
            for (l, x) in log_row.iter_mut().zip(row) {
                // A row can only sum to zero with zero smoothing and a worker who never saw
                // that class: any value will do, it multiplies a zero posterior.
                *l = if total > 0.0 {
                    (x / total).ln()
                } else {
                    -(k as f64).ln()
                };
            }
        }

        // E-step: posteriors from priors and confusion matrices, in log space.
        let mut largest_change = 0.0f64;
        for (local, &item) in items.iter().enumerate() {
            let out = &mut next[local * k..(local + 1) * k];
            out.copy_from_slice(&log_prior);
            for &row in grouped.of(item) {
                let o = field.observations[row as usize];
                let w = worker_local[o.worker as usize] as usize;
                let label = o.label as usize;
                for (truth, x) in out.iter_mut().enumerate() {
                    *x += log_confusion[(w * k + truth) * k + label];
                }
            }
            let top = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for x in out.iter_mut() {
                *x = (*x - top).exp();
                total += *x;
            }
            for (x, old) in out.iter_mut().zip(&posterior[local * k..(local + 1) * k]) {
                *x /= total;
                largest_change = largest_change.max((*x - old).abs());
            }
        }
        std::mem::swap(&mut posterior, &mut next);
        if largest_change < options.tolerance {
            break;
        }
    }

    let mut counts = vec![0u32; k];
    let mut seen = Vec::new();
    let mut given = vec![false; k];
    let mut chosen = Vec::with_capacity(items.len());
    for (local, &item) in items.iter().enumerate() {
        let rows = grouped.of(item);
        let post = &posterior[local * k..(local + 1) * k];
        tally(field, rows, &mut counts, &mut seen);
        // Candidates in the majority tie order: this item's values as first seen, then the rest.
        let mut best: Option<(u32, f64)> = None;
        let mut consider = |label: u32| {
            let p = post[label as usize];
            if best.is_none_or(|(_, bp)| p > bp) {
                best = Some((label, p));
            }
        };
        for &label in &seen {
            given[label as usize] = true;
            consider(label);
        }
        for (label, &was_given) in given.iter().enumerate() {
            if !was_given {
                consider(u32::try_from(label).expect("label fits"));
            }
        }
        let (label, p) = best.expect("a field has at least one value");
        for &l in &seen {
            counts[l as usize] = 0;
            given[l as usize] = false;
        }
        chosen.push((
            u32::try_from(item).expect("item index fits"),
            label,
            p.clamp(0.0, 1.0),
            u32::try_from(rows.len()).unwrap_or(u32::MAX),
        ));
    }
    chosen
}
