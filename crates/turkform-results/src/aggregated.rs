//! One row per item: the answers of every worker to an item combined into one value per answer
//! field (`turkform results --aggregate`), in CSV or JSON Lines.
//!
//! Unlike [`crate::export`], this holds a campaign's answers in memory: Dawid-Skene learns each
//! worker's error rates from every item of the campaign before it can decide any one of them.
//!
//! What counts, in this order:
//! 1. only answers whose status the caller asked for (see [`AnswerCollector::new`]); a rejected
//!    answer never counts;
//! 2. per item, answers in submit order (submit time, then generation, then assignment id);
//! 3. a worker's second answer to the same item (a later generation's HIT) does not count: the
//!    first counted one does ([`turkform_model::counted_answers`], the rule `goal = "approved"`
//!    counts by too).
//!
//! Campaigns are aggregated separately (their fields are different questions, and a worker's
//! reliability on one says nothing of another).

use std::collections::BTreeMap;
use std::io::Write;

use turkform_aggregate::{Aggregated, Answer, Method};
use turkform_model::{AnswerKey, AssignmentStatus, RecordedAssignment, UnixTime, counted_answers};

use crate::export::{ExportError, ExportLayout};

/// Agreement is written with this many decimals (CSV text and JSON number alike).
pub const AGREEMENT_DECIMALS: usize = 4;

/// `0.666666…` -> `"0.6667"`.
pub fn format_agreement(agreement: f64) -> String {
    format!("{agreement:.AGREEMENT_DECIMALS$}")
}

fn rounded_agreement(agreement: f64) -> f64 {
    let scale = 10f64.powi(AGREEMENT_DECIMALS as i32);
    (agreement * scale).round() / scale
}

/// One answer as kept in memory until the campaign is complete.
#[derive(Debug)]
struct Kept {
    worker: String,
    status: AssignmentStatus,
    order: (Option<UnixTime>, u32, String),
    answers: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct ItemAnswers {
    /// The newest generation's data row (and that generation).
    input: Option<(u32, Vec<(String, String)>)>,
    answers: Vec<Kept>,
}

#[derive(Debug, Default)]
struct CampaignAnswers {
    /// Item keys, first seen.
    order: Vec<String>,
    items: std::collections::HashMap<String, ItemAnswers>,
}

/// Gathers assignments (any order) and aggregates them per campaign and item.
#[derive(Debug)]
pub struct AnswerCollector {
    counted: Vec<AssignmentStatus>,
    campaigns: BTreeMap<String, CampaignAnswers>,
    answers: usize,
}

/// One item's aggregated answers, as a row shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregatedItem {
    pub campaign: String,
    pub item: String,
    /// The data row of the item's newest HIT (`None`: unknown).
    pub input: Option<Vec<(String, String)>>,
    /// Only the fields at least one counted answer holds.
    pub fields: BTreeMap<String, Aggregated>,
}

impl AnswerCollector {
    /// `counted`: the statuses whose answers count. [`AssignmentStatus::Rejected`] is dropped
    /// from it whatever the caller says.
    pub fn new(counted: &[AssignmentStatus]) -> AnswerCollector {
        AnswerCollector {
            counted: counted
                .iter()
                .copied()
                .filter(|s| *s != AssignmentStatus::Rejected)
                .collect(),
            campaigns: BTreeMap::new(),
            answers: 0,
        }
    }

    /// Every assignment of an item should be added, counted or not: an item whose answers were
    /// all rejected still gets a row (with counts of 0), so it is not silently missing.
    pub fn add(&mut self, a: &RecordedAssignment, input: Option<&[(String, String)]>) {
        let campaign = self.campaigns.entry(a.campaign.clone()).or_default();
        let item = match campaign.items.get_mut(&a.item_key) {
            Some(item) => item,
            None => {
                campaign.order.push(a.item_key.clone());
                campaign.items.entry(a.item_key.clone()).or_default()
            }
        };
        if let Some(row) = input {
            if item.input.as_ref().is_none_or(|(g, _)| *g <= a.generation) {
                item.input = Some((a.generation, row.to_vec()));
            }
        }
        if !self.counted.contains(&a.status) {
            return;
        }
        self.answers += 1;
        item.answers.push(Kept {
            worker: a.worker_id.clone(),
            status: a.status,
            order: (a.submit_time, a.generation, a.assignment_id.clone()),
            answers: a.answers.clone(),
        });
    }

    /// Answers held (those whose status counts), before duplicates are dropped.
    pub fn len(&self) -> usize {
        self.answers
    }

    pub fn is_empty(&self) -> bool {
        self.answers == 0
    }

    /// Aggregates every campaign: rows by campaign name, then item in the order first added.
    pub fn finish(mut self, method: Method) -> Vec<AggregatedItem> {
        let mut rows = Vec::new();
        for (name, campaign) in &mut self.campaigns {
            let mut flat: Vec<Answer<'_>> = Vec::new();
            for key in &campaign.order {
                let item = campaign.items.get_mut(key).expect("ordered item is held");
                // Submit time `None` never happens for a submitted answer; it sorts first.
                item.answers.sort_by(|x, y| x.order.cmp(&y.order));
            }
            for key in &campaign.order {
                let item = &campaign.items[key];
                // The rule `goal = "approved"` counts by, so the counts agree.
                let keys: Vec<AnswerKey<'_>> = item
                    .answers
                    .iter()
                    .map(|kept| AnswerKey {
                        worker_id: &kept.worker,
                        status: kept.status,
                        submit_time: kept.order.0,
                        generation: kept.order.1,
                        assignment_id: &kept.order.2,
                    })
                    .collect();
                let counts = counted_answers(&keys);
                for (kept, counts) in item.answers.iter().zip(counts) {
                    debug_assert_ne!(kept.status, AssignmentStatus::Rejected);
                    if counts {
                        flat.push(Answer {
                            item: key,
                            worker: &kept.worker,
                            fields: &kept.answers,
                        });
                    }
                }
            }
            let mut results: std::collections::HashMap<String, BTreeMap<String, Aggregated>> =
                turkform_aggregate::aggregate(method, &flat)
                    .into_iter()
                    .map(|r| (r.item, r.fields))
                    .collect();
            for key in &campaign.order {
                rows.push(AggregatedItem {
                    campaign: name.clone(),
                    item: key.clone(),
                    input: campaign.items[key].input.as_ref().map(|(_, r)| r.clone()),
                    fields: results.remove(key).unwrap_or_default(),
                });
            }
        }
        rows
    }
}

/// The CSV header of an aggregated export: `Campaign, Item, Input.*`, then
/// `Answer.<f>, Agreement.<f>, Count.<f>` per field of `layout.answers` (sorted).
pub fn aggregated_csv_header(layout: &ExportLayout) -> Vec<String> {
    let mut header = vec!["Campaign".to_owned(), "Item".to_owned()];
    header.extend(layout.inputs.iter().map(|c| format!("Input.{c}")));
    for f in &layout.answers {
        header.push(format!("Answer.{f}"));
        header.push(format!("Agreement.{f}"));
        header.push(format!("Count.{f}"));
    }
    header
}

/// Writes aggregated rows as CSV, every field double-quoted like the plain export. A field no
/// counted answer of the item holds is written as an empty value and agreement and a count of 0.
pub struct AggregatedCsv<W: Write> {
    writer: csv::Writer<W>,
    layout: ExportLayout,
    record: Vec<String>,
}

impl<W: Write> std::fmt::Debug for AggregatedCsv<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatedCsv")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<W: Write> AggregatedCsv<W> {
    /// Writes the header at once.
    pub fn new(out: W, layout: ExportLayout) -> Result<Self, ExportError> {
        let mut writer = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(out);
        writer.write_record(aggregated_csv_header(&layout))?;
        Ok(AggregatedCsv {
            writer,
            layout,
            record: Vec::new(),
        })
    }

    pub fn write(&mut self, row: &AggregatedItem) -> Result<(), ExportError> {
        let r = &mut self.record;
        r.clear();
        r.push(row.campaign.clone());
        r.push(row.item.clone());
        for column in &self.layout.inputs {
            let value = row
                .input
                .as_ref()
                .and_then(|i| i.iter().find(|(c, _)| c == column))
                .map(|(_, v)| v.clone());
            r.push(value.unwrap_or_default());
        }
        for field in &self.layout.answers {
            match row.fields.get(field) {
                Some(a) => {
                    r.push(a.value.clone());
                    r.push(format_agreement(a.agreement));
                    r.push(a.count.to_string());
                }
                None => {
                    r.push(String::new());
                    r.push(String::new());
                    r.push("0".to_owned());
                }
            }
        }
        self.writer.write_record(&*r)?;
        Ok(())
    }

    pub fn finish(self) -> Result<W, ExportError> {
        self.writer
            .into_inner()
            .map_err(|e| ExportError::Io(e.into_error()))
    }
}

/// Writes aggregated rows as JSON Lines:
/// `{"campaign", "item", "input", "answers": {"<field>": {"value", "agreement", "count"}}}`,
/// `input` in the data file's column order, agreement a number rounded to
/// [`AGREEMENT_DECIMALS`].
#[derive(Debug)]
pub struct AggregatedJsonl<W: Write> {
    out: W,
}

impl<W: Write> AggregatedJsonl<W> {
    pub fn new(out: W) -> Self {
        AggregatedJsonl { out }
    }

    pub fn write(&mut self, row: &AggregatedItem) -> Result<(), ExportError> {
        let o = &mut self.out;
        o.write_all(b"{\"campaign\":")?;
        serde_json::to_writer(&mut *o, &row.campaign)?;
        o.write_all(b",\"item\":")?;
        serde_json::to_writer(&mut *o, &row.item)?;
        // `input` keeps the data file's column order, which a JSON map would sort away.
        o.write_all(b",\"input\":")?;
        match &row.input {
            None => o.write_all(b"null")?,
            Some(input) => {
                o.write_all(b"{")?;
                for (i, (column, value)) in input.iter().enumerate() {
                    if i > 0 {
                        o.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *o, column)?;
                    o.write_all(b":")?;
                    serde_json::to_writer(&mut *o, value)?;
                }
                o.write_all(b"}")?;
            }
        }
        let answers: serde_json::Map<String, serde_json::Value> = row
            .fields
            .iter()
            .map(|(f, a)| {
                (
                    f.clone(),
                    serde_json::json!({
                        "value": a.value,
                        "agreement": rounded_agreement(a.agreement),
                        "count": a.count,
                    }),
                )
            })
            .collect();
        o.write_all(b",\"answers\":")?;
        serde_json::to_writer(&mut *o, &answers)?;
        o.write_all(b"}\n")?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<W, ExportError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn assignment(
        item: &str,
        generation: u32,
        worker: &str,
        submit: i64,
        status: AssignmentStatus,
        label: &str,
    ) -> RecordedAssignment {
        RecordedAssignment {
            assignment_id: format!("A-{item}-{worker}-{generation}"),
            hit_id: format!("H-{item}-{generation}"),
            campaign: "c".into(),
            item_key: item.into(),
            generation,
            worker_id: worker.into(),
            status,
            accept_time: Some(UnixTime(submit - 10)),
            submit_time: Some(UnixTime(submit)),
            auto_approval_time: None,
            approval_time: None,
            rejection_time: None,
            answer_xml: String::new(),
            answers: [("label".to_owned(), label.to_owned())].into(),
            requester_feedback: None,
            decided_by: None,
        }
    }

    const COUNTED: [AssignmentStatus; 2] =
        [AssignmentStatus::Submitted, AssignmentStatus::Approved];

    #[test]
    fn rejected_answers_and_a_workers_second_answer_do_not_count() {
        use AssignmentStatus::*;
        let mut c = AnswerCollector::new(&COUNTED);
        let row = vec![("id".to_owned(), "i1".to_owned())];
        // Added out of submit order: the later generation's answer by W1 comes first.
        c.add(
            &assignment("i1", 2, "W1", 500, Submitted, "dog"),
            Some(&row),
        );
        c.add(&assignment("i1", 1, "W1", 100, Approved, "cat"), Some(&row));
        c.add(&assignment("i1", 1, "W2", 110, Approved, "cat"), Some(&row));
        c.add(&assignment("i1", 1, "W3", 120, Rejected, "dog"), Some(&row));
        c.add(
            &assignment("i1", 2, "W4", 510, Submitted, "dog"),
            Some(&row),
        );
        assert_eq!(c.len(), 4, "the rejected answer is not held");
        let rows = c.finish(Method::Majority);
        assert_eq!(rows.len(), 1);
        let label = &rows[0].fields["label"];
        // W1's first answer (cat) counts, its repeat (dog) does not; W3 was rejected.
        assert_eq!(label.value, "cat");
        assert_eq!(label.count, 3);
        assert!((label.agreement - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn an_item_whose_answers_were_all_rejected_keeps_a_row_with_no_fields() {
        let mut c = AnswerCollector::new(&[AssignmentStatus::Rejected, AssignmentStatus::Approved]);
        c.add(
            &assignment("i1", 1, "W1", 1, AssignmentStatus::Rejected, "x"),
            None,
        );
        assert!(c.is_empty());
        let rows = c.finish(Method::DawidSkene);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].fields.is_empty());
        let layout = ExportLayout {
            inputs: vec!["id".into()],
            answers: vec!["label".into()],
        };
        let mut csv = AggregatedCsv::new(Vec::new(), layout).unwrap();
        csv.write(&rows[0]).unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "\"Campaign\",\"Item\",\"Input.id\",\"Answer.label\",\"Agreement.label\",\"Count.label\"\n\"c\",\"i1\",\"\",\"\",\"\",\"0\"\n"
        );
    }

    #[test]
    fn agreement_has_four_decimals() {
        assert_eq!(format_agreement(2.0 / 3.0), "0.6667");
        assert_eq!(format_agreement(1.0), "1.0000");
        assert_eq!(format_agreement(0.0), "0.0000");
        assert_eq!(rounded_agreement(2.0 / 3.0), 0.6667);
    }

    fn item() -> AggregatedItem {
        AggregatedItem {
            campaign: "street".into(),
            item: "img-1".into(),
            input: Some(vec![
                ("zeta".into(), "1".into()),
                ("alpha".into(), "a, \"b\"\nc".into()),
            ]),
            fields: [
                (
                    "label".to_owned(),
                    Aggregated {
                        value: "cat, \"tabby\"".into(),
                        agreement: 2.0 / 3.0,
                        count: 3,
                    },
                ),
                (
                    "size".to_owned(),
                    Aggregated {
                        value: "big".into(),
                        agreement: 1.0,
                        count: 1,
                    },
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn a_csv_row_quotes_every_field_and_groups_each_fields_three_columns() {
        let layout = ExportLayout {
            inputs: vec!["alpha".into(), "other".into(), "zeta".into()],
            answers: vec!["label".into(), "missing".into(), "size".into()],
        };
        let mut csv = AggregatedCsv::new(Vec::new(), layout).unwrap();
        csv.write(&item()).unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        let expected = concat!(
            "\"Campaign\",\"Item\",\"Input.alpha\",\"Input.other\",\"Input.zeta\",",
            "\"Answer.label\",\"Agreement.label\",\"Count.label\",",
            "\"Answer.missing\",\"Agreement.missing\",\"Count.missing\",",
            "\"Answer.size\",\"Agreement.size\",\"Count.size\"\n",
            "\"street\",\"img-1\",\"a, \"\"b\"\"\nc\",\"\",\"1\",",
            "\"cat, \"\"tabby\"\"\",\"0.6667\",\"3\",\"\",\"\",\"0\",\"big\",\"1.0000\",\"1\"\n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn a_jsonl_row_nests_value_agreement_and_count_and_keeps_input_order() {
        let mut out = AggregatedJsonl::new(Vec::new());
        out.write(&item()).unwrap();
        let text = String::from_utf8(out.finish().unwrap()).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
        let v: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "campaign": "street",
                "item": "img-1",
                "input": {"zeta": "1", "alpha": "a, \"b\"\nc"},
                "answers": {
                    "label": {"value": "cat, \"tabby\"", "agreement": 0.6667, "count": 3},
                    "size": {"value": "big", "agreement": 1.0, "count": 1},
                },
            })
        );
        assert!(text.find("\"zeta\"").unwrap() < text.find("\"alpha\"").unwrap());
    }

    #[test]
    fn the_newest_generations_row_is_the_items_input() {
        use AssignmentStatus::*;
        let mut c = AnswerCollector::new(&COUNTED);
        let old = vec![("text".to_owned(), "old".to_owned())];
        let new = vec![("text".to_owned(), "new".to_owned())];
        c.add(&assignment("i1", 2, "W1", 500, Submitted, "a"), Some(&new));
        c.add(&assignment("i1", 1, "W2", 100, Submitted, "a"), Some(&old));
        let rows = c.finish(Method::Majority);
        assert_eq!(rows[0].input.as_deref(), Some(&new[..]));
    }
}
