//! One row per assignment: MTurk's batch-results CSV layout, or JSON Lines.
//!
//! The writers take one [`Submission`] at a time and hold nothing across rows, so an export's
//! memory does not grow with its length; the columns ([`ExportLayout`]) are decided before the
//! first row from campaign metadata.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;
use turkform_model::{Annotation, AssignmentStatus, PostedHit, RecordedAssignment, UnixTime};

use crate::time::TimeFormatter;

/// The fixed leading columns of the web UI's `Batch_NNN_batch_results.csv`, in its order.
pub const BATCH_COLUMNS: [&str; 27] = [
    "HITId",
    "HITTypeId",
    "Title",
    "Description",
    "Keywords",
    "Reward",
    "CreationTime",
    "MaxAssignments",
    "RequesterAnnotation",
    "AssignmentDurationInSeconds",
    "AutoApprovalDelayInSeconds",
    "Expiration",
    "NumberOfSimilarHITs",
    "LifetimeInSeconds",
    "AssignmentId",
    "WorkerId",
    "AssignmentStatus",
    "AcceptTime",
    "SubmitTime",
    "AutoApprovalTime",
    "ApprovalTime",
    "RejectionTime",
    "RequesterFeedback",
    "WorkTimeInSeconds",
    "LifetimeApprovalRate",
    "Last30DaysApprovalRate",
    "Last7DaysApprovalRate",
];

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the results")]
    Io(#[from] std::io::Error),
    #[error("cannot write the results")]
    Csv(#[from] csv::Error),
    #[error("cannot write the results")]
    Json(#[from] serde_json::Error),
}

/// The variable columns of an export: `Input.*` and `Answer.*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportLayout {
    /// Union of the campaigns' data columns, first seen (campaigns in name order).
    pub inputs: Vec<String>,
    /// Union of the campaigns' answer fields, sorted.
    pub answers: Vec<String>,
}

impl ExportLayout {
    /// The layout of several campaigns, given each one's (input columns, answer fields) in
    /// campaign-name order.
    pub fn union<I>(campaigns: I) -> ExportLayout
    where
        I: IntoIterator<Item = (Vec<String>, Vec<String>)>,
    {
        let mut layout = ExportLayout::default();
        let mut answers = std::collections::BTreeSet::new();
        for (inputs, fields) in campaigns {
            for column in inputs {
                if !layout.inputs.contains(&column) {
                    layout.inputs.push(column);
                }
            }
            answers.extend(fields);
        }
        layout.answers = answers.into_iter().collect();
        layout
    }

    /// Every CSV column name, in order.
    pub fn csv_header(&self) -> Vec<String> {
        let mut header: Vec<String> = BATCH_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        header.extend(self.inputs.iter().map(|c| format!("Input.{c}")));
        header.extend(self.answers.iter().map(|c| format!("Answer.{c}")));
        header.push("Approve".to_owned());
        header.push("Reject".to_owned());
        header
    }
}

/// A worker's decided assignments and how many of them were approved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApprovalCounts {
    pub approved: u64,
    pub decided: u64,
}

impl ApprovalCounts {
    /// As the web UI shows it: `100% (12/12)`, `0% (0/0)` when nothing was decided. The
    /// percentage is rounded down, so 100% means every decision was an approval.
    pub fn display(self) -> String {
        let percent = (self.approved * 100).checked_div(self.decided).unwrap_or(0);
        format!("{percent}% ({}/{})", self.approved, self.decided)
    }
}

/// This requester's decisions on one worker, for the three approval-rate columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerRates {
    pub lifetime: ApprovalCounts,
    pub last_30_days: ApprovalCounts,
    pub last_7_days: ApprovalCounts,
}

/// One assignment with everything a row shows.
#[derive(Clone, Copy, Debug)]
pub struct Submission<'a> {
    pub assignment: &'a RecordedAssignment,
    pub hit_type_id: &'a str,
    pub max_assignments: u32,
    pub created_at: UnixTime,
    pub expiration: UnixTime,
    /// The data row the HIT was posted with (`None`: unknown, the Input cells stay empty).
    pub input: Option<&'a [(String, String)]>,
    /// What MTurk reported the HIT shows workers: the HIT type's properties, its lifetime and
    /// annotation (`None`: unknown, those cells stay empty and the annotation is rendered from
    /// the assignment's item).
    pub posted: Option<&'a PostedHit>,
    /// The HIT group's size at the last refresh that listed it (`NumberOfSimilarHITs`).
    pub similar_hits: Option<u32>,
    pub rates: WorkerRates,
}

/// What answer aggregation reads of one submission.
#[derive(Clone, Copy, Debug)]
pub struct AnswerRecord<'a> {
    pub campaign: &'a str,
    pub item: &'a str,
    pub worker_id: &'a str,
    /// Submit order breaks ties: earlier first.
    pub submit_time: Option<UnixTime>,
    pub status: AssignmentStatus,
    pub answers: &'a BTreeMap<String, String>,
    pub input: Option<&'a [(String, String)]>,
}

impl<'a> Submission<'a> {
    pub fn answer_record(&self) -> AnswerRecord<'a> {
        let a = self.assignment;
        AnswerRecord {
            campaign: &a.campaign,
            item: &a.item_key,
            worker_id: &a.worker_id,
            submit_time: a.submit_time,
            status: a.status,
            answers: &a.answers,
            input: self.input,
        }
    }

    fn input_value(&self, column: &str) -> Option<&'a str> {
        self.input?
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v.as_str())
    }

    fn work_time_secs(&self) -> Option<i64> {
        match (self.assignment.accept_time, self.assignment.submit_time) {
            (Some(a), Some(s)) if s >= a => Some(s.secs_since(a)),
            _ => None,
        }
    }
}

/// Writes MTurk's batch-results CSV, every field double-quoted.
///
/// Fields go to the CSV writer one at a time from borrowed text or one reused scratch buffer:
/// a row allocates nothing of its own, and the one value shared by a HIT's rows that must be
/// rendered (its annotation, when MTurk's is not recorded) is rendered once per HIT.
pub struct CsvExport<W: Write> {
    writer: csv::Writer<W>,
    layout: ExportLayout,
    times: TimeFormatter,
    scratch: String,
    /// (hit id, rendered annotation) of the last row's HIT.
    annotation: Option<(String, String)>,
}

impl<W: Write> std::fmt::Debug for CsvExport<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvExport")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// Appends an approval-rate cell, as [`ApprovalCounts::display`] writes it.
fn push_rate(out: &mut String, c: ApprovalCounts) {
    use std::fmt::Write as _;
    let percent = (c.approved * 100).checked_div(c.decided).unwrap_or(0);
    let _ = write!(out, "{percent}% ({}/{})", c.approved, c.decided);
}

impl<W: Write> CsvExport<W> {
    /// Writes the header at once (an export with no rows is still a valid file).
    pub fn new(out: W, layout: ExportLayout, times: TimeFormatter) -> Result<Self, ExportError> {
        let mut writer = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(out);
        writer.write_record(layout.csv_header())?;
        Ok(CsvExport {
            writer,
            layout,
            times,
            scratch: String::with_capacity(64),
            annotation: None,
        })
    }

    pub fn write(&mut self, s: &Submission<'_>) -> Result<(), ExportError> {
        use std::fmt::Write as _;
        let a = s.assignment;
        let p = s.posted;
        let w = &mut self.writer;
        let t = &self.times;
        let buf = &mut self.scratch;
        // A field rendered into the scratch buffer.
        macro_rules! field_with {
            (|$b:ident| $body:expr) => {{
                buf.clear();
                {
                    let $b: &mut String = buf;
                    $body;
                }
                w.write_field(buf.as_bytes())?;
            }};
        }
        let opt_num = |b: &mut String, n: Option<i64>| {
            if let Some(n) = n {
                let _ = write!(b, "{n}");
            }
        };
        w.write_field(&a.hit_id)?;
        w.write_field(s.hit_type_id)?;
        w.write_field(p.map_or("", |p| p.title.as_str()))?;
        w.write_field(p.map_or("", |p| p.description.as_str()))?;
        w.write_field(p.map_or("", |p| p.keywords.as_str()))?;
        field_with!(|b| if let Some(r) = p.and_then(|p| p.reward) {
            let _ = write!(b, "{r}");
        });
        field_with!(|b| t.write(s.created_at, b));
        field_with!(|b| {
            let _ = write!(b, "{}", s.max_assignments);
        });
        match p.and_then(|p| p.requester_annotation.as_deref()) {
            Some(annotation) => w.write_field(annotation)?,
            None => {
                let cached = self
                    .annotation
                    .as_ref()
                    .is_some_and(|(hit_id, _)| *hit_id == a.hit_id);
                if !cached {
                    self.annotation = Some((
                        a.hit_id.clone(),
                        Annotation::new(&a.campaign, &a.item_key, a.generation).render(),
                    ));
                }
                w.write_field(self.annotation.as_ref().map_or("", |(_, r)| r.as_str()))?;
            }
        }
        field_with!(|b| opt_num(b, p.and_then(|p| p.assignment_duration_secs)));
        field_with!(|b| opt_num(b, p.and_then(|p| p.auto_approval_delay_secs)));
        field_with!(|b| t.write(s.expiration, b));
        field_with!(|b| opt_num(b, s.similar_hits.map(i64::from)));
        field_with!(|b| opt_num(b, p.and_then(|p| p.lifetime_secs)));
        w.write_field(&a.assignment_id)?;
        w.write_field(&a.worker_id)?;
        w.write_field(a.status.api_name())?;
        field_with!(|b| t.write_opt(a.accept_time, b));
        field_with!(|b| t.write_opt(a.submit_time, b));
        field_with!(|b| t.write_opt(a.auto_approval_time, b));
        field_with!(|b| t.write_opt(a.approval_time, b));
        field_with!(|b| t.write_opt(a.rejection_time, b));
        w.write_field(a.requester_feedback.as_deref().unwrap_or(""))?;
        field_with!(|b| opt_num(b, s.work_time_secs()));
        field_with!(|b| push_rate(b, s.rates.lifetime));
        field_with!(|b| push_rate(b, s.rates.last_30_days));
        field_with!(|b| push_rate(b, s.rates.last_7_days));
        for column in &self.layout.inputs {
            w.write_field(s.input_value(column).unwrap_or(""))?;
        }
        for field in &self.layout.answers {
            w.write_field(a.answers.get(field).map_or("", String::as_str))?;
        }
        w.write_field("")?;
        w.write_field("")?;
        w.write_record(None::<&[u8]>)?;
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(self) -> Result<W, ExportError> {
        self.writer
            .into_inner()
            .map_err(|e| ExportError::Io(e.into_error()))
    }
}

/// Writes one JSON object per line.
#[derive(Debug)]
pub struct JsonlExport<W: Write> {
    out: W,
}

impl<W: Write> JsonlExport<W> {
    pub fn new(out: W) -> Self {
        JsonlExport { out }
    }

    pub fn write(&mut self, s: &Submission<'_>) -> Result<(), ExportError> {
        let a = s.assignment;
        let time = |t: Option<UnixTime>| t.map_or(Value::Null, |t| Value::from(t.to_rfc3339()));
        // `input` keeps the data file's column order, which a JSON map would sort away: it is
        // written by hand around serde_json's escaping.
        let head = serde_json::json!({
            "campaign": a.campaign,
            "item": a.item_key,
            "generation": a.generation,
            "hit_id": a.hit_id,
            "assignment_id": a.assignment_id,
            "worker_id": a.worker_id,
            "status": a.status.api_name(),
            "accept_time": time(a.accept_time),
            "submit_time": time(a.submit_time),
            "auto_approval_time": time(a.auto_approval_time),
            "approval_time": time(a.approval_time),
            "rejection_time": time(a.rejection_time),
            "requester_feedback": a.requester_feedback,
            "decided_by": a.decided_by.map(|d| d.as_str()),
        });
        let head = serde_json::to_string(&head)?;
        let head = head.strip_suffix('}').unwrap_or(&head);
        self.out.write_all(head.as_bytes())?;
        self.out.write_all(b",\"input\":")?;
        match s.input {
            None => self.out.write_all(b"null")?,
            Some(row) => {
                self.out.write_all(b"{")?;
                for (i, (column, value)) in row.iter().enumerate() {
                    if i > 0 {
                        self.out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut self.out, column)?;
                    self.out.write_all(b":")?;
                    serde_json::to_writer(&mut self.out, value)?;
                }
                self.out.write_all(b"}")?;
            }
        }
        self.out.write_all(b",\"answers\":")?;
        serde_json::to_writer(&mut self.out, &a.answers)?;
        self.out.write_all(b"}\n")?;
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
    use crate::time::TimeFormat;
    use turkform_model::{DecidedBy, Money};

    fn assignment() -> RecordedAssignment {
        RecordedAssignment {
            assignment_id: "A1".to_owned(),
            hit_id: "H1".to_owned(),
            campaign: "street".to_owned(),
            item_key: "img-1".to_owned(),
            generation: 1,
            worker_id: "AWORKER1".to_owned(),
            status: AssignmentStatus::Approved,
            accept_time: Some(UnixTime(1_678_121_900)),
            submit_time: Some(UnixTime(1_678_121_961)),
            auto_approval_time: Some(UnixTime(1_678_381_161)),
            approval_time: Some(UnixTime(1_678_381_161)),
            rejection_time: None,
            answer_xml: String::new(),
            answers: [("label".to_owned(), "a, \"b\"\nc".to_owned())].into(),
            requester_feedback: None,
            decided_by: Some(DecidedBy::Auto),
        }
    }

    fn posted() -> PostedHit {
        PostedHit {
            hit_id: "H1".to_owned(),
            hit_group_id: "G1".to_owned(),
            title: "Label".to_owned(),
            description: "Label it".to_owned(),
            keywords: "a, b".to_owned(),
            reward: Some(Money::from_cents(10)),
            assignment_duration_secs: Some(600),
            auto_approval_delay_secs: Some(259_200),
            requester_annotation: None,
            lifetime_secs: Some(604_800),
        }
    }

    #[test]
    fn layouts_union_inputs_first_seen_and_answers_sorted() {
        let layout = ExportLayout::union([
            (
                vec!["id".into(), "text".into()],
                vec!["z".into(), "a".into()],
            ),
            (vec!["url".into(), "id".into()], vec!["m".into()]),
        ]);
        assert_eq!(layout.inputs, ["id", "text", "url"]);
        assert_eq!(layout.answers, ["a", "m", "z"]);
        let header = layout.csv_header();
        assert_eq!(header[..27], BATCH_COLUMNS.map(str::to_owned));
        assert_eq!(
            header[27..],
            [
                "Input.id",
                "Input.text",
                "Input.url",
                "Answer.a",
                "Answer.m",
                "Answer.z",
                "Approve",
                "Reject"
            ]
        );
    }

    #[test]
    fn approval_rates_read_like_the_web_ui() {
        assert_eq!(
            ApprovalCounts {
                approved: 12,
                decided: 12
            }
            .display(),
            "100% (12/12)"
        );
        assert_eq!(ApprovalCounts::default().display(), "0% (0/0)");
        assert_eq!(
            ApprovalCounts {
                approved: 2,
                decided: 3
            }
            .display(),
            "66% (2/3)"
        );
    }

    #[test]
    fn a_csv_row_quotes_every_field_and_leaves_unknowns_empty() {
        let a = assignment();
        let posted = posted();
        let row = [("id".to_owned(), "img-1".to_owned())];
        let layout = ExportLayout {
            inputs: vec!["id".into(), "other".into()],
            answers: vec!["label".into(), "missing".into()],
        };
        let mut csv = CsvExport::new(
            Vec::new(),
            layout,
            TimeFormatter::new(TimeFormat::Mturk).unwrap(),
        )
        .unwrap();
        let s = Submission {
            assignment: &a,
            hit_type_id: "T1",
            max_assignments: 3,
            created_at: UnixTime(1_678_121_000),
            expiration: UnixTime(1_678_725_800),
            input: Some(&row),
            posted: Some(&posted),
            similar_hits: Some(12),
            rates: WorkerRates {
                lifetime: ApprovalCounts {
                    approved: 1,
                    decided: 1,
                },
                ..WorkerRates::default()
            },
        };
        csv.write(&s).unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        let record = reader.records().next().unwrap().unwrap();
        let get = |name: &str| {
            let i = header.iter().position(|h| h == name).unwrap();
            record.get(i).unwrap().to_owned()
        };
        assert_eq!(get("Reward"), "$0.10");
        assert_eq!(get("Keywords"), "a, b");
        assert_eq!(get("Title"), "Label");
        assert_eq!(get("AssignmentDurationInSeconds"), "600");
        assert_eq!(get("NumberOfSimilarHITs"), "12");
        assert_eq!(get("LifetimeInSeconds"), "604800");
        assert_eq!(get("CreationTime"), "Mon Mar 06 08:43:20 PST 2023");
        assert_eq!(get("SubmitTime"), "Mon Mar 06 08:59:21 PST 2023");
        assert_eq!(get("RejectionTime"), "");
        assert_eq!(get("WorkTimeInSeconds"), "61");
        assert_eq!(get("LifetimeApprovalRate"), "100% (1/1)");
        assert_eq!(get("Last7DaysApprovalRate"), "0% (0/0)");
        assert_eq!(get("Input.id"), "img-1");
        assert_eq!(get("Input.other"), "");
        assert_eq!(get("Answer.label"), "a, \"b\"\nc");
        assert_eq!(get("Answer.missing"), "");
        assert_eq!(
            get("RequesterAnnotation"),
            Annotation::new("street", "img-1", 1).render()
        );
        // Every field quoted, empty ones too.
        assert!(text.starts_with("\"HITId\",\"HITTypeId\""), "{text}");
        assert!(
            text.contains(",\"\",\"\"\n") || text.contains(",\"\",\"\"\r\n"),
            "{text}"
        );
    }

    #[test]
    fn a_jsonl_row_keeps_the_input_columns_in_file_order() {
        let a = assignment();
        let row = [
            ("zeta".to_owned(), "1".to_owned()),
            ("alpha".to_owned(), "é\n\"".to_owned()),
        ];
        let mut out = JsonlExport::new(Vec::new());
        out.write(&Submission {
            assignment: &a,
            hit_type_id: "T1",
            max_assignments: 3,
            created_at: UnixTime(0),
            expiration: UnixTime(0),
            input: Some(&row),
            posted: None,
            similar_hits: None,
            rates: WorkerRates::default(),
        })
        .unwrap();
        let text = String::from_utf8(out.finish().unwrap()).unwrap();
        assert!(text.ends_with("}\n"));
        let v: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["submit_time"], "2023-03-06T16:59:21Z");
        assert_eq!(v["rejection_time"], Value::Null);
        assert_eq!(v["decided_by"], "auto");
        assert_eq!(v["input"]["alpha"], "é\n\"");
        assert_eq!(v["answers"]["label"], "a, \"b\"\nc");
        assert!(text.find("\"zeta\"").unwrap() < text.find("\"alpha\"").unwrap());
    }
}
