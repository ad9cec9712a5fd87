//! Data files: CSV with a header row, or JSON Lines. Each record becomes the `item` a template
//! sees, with its key and the physical line it starts on (for diagnostics). CSV rows are not
//! copied into maps: a row object looks columns up through one shared header index.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

use crate::campaign::{ItemsDef, Loc};
use crate::diagnostic::{Diagnostic, did_you_mean};

/// One record of a data file.
#[derive(Debug)]
pub(crate) struct Row {
    /// 1-based physical line where the record starts.
    pub line: usize,
    /// 1-based record number (the header is not a row).
    pub number: usize,
    /// The key column's value as written.
    pub key: String,
    /// What templates see as `item`.
    pub value: Value,
    /// (column, cell) in the file's column order, as results show it (`Input.<column>`). A
    /// JSON Lines value that is not a string is written as JSON.
    pub fields: Vec<(String, String)>,
}

#[derive(Debug)]
struct Header {
    index: HashMap<String, usize>,
    names: Vec<Value>,
}

/// A CSV record as a template object: `item.column` is the cell, as a string.
#[derive(Debug)]
struct CsvRow {
    header: Arc<Header>,
    record: csv::StringRecord,
}

impl Object for CsvRow {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = *self.header.index.get(key.as_str()?)?;
        self.record.get(i).map(Value::from)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.header.names.clone())
    }
}

/// Reads an input file (data, template), refusing anything but a regular file: opening a FIFO
/// blocks until a writer appears, so `validate` would hang forever.
pub(crate) fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}; give a plain file"),
        ));
    }
    std::fs::read(path)
}

/// Reads every record, calling `each` in file order. Problems with the file itself or with a
/// record are pushed to `diags`; records with problems are skipped. `key_loc` places "no such
/// key column" on the campaign file's `key = ...`.
pub(crate) fn read_rows(
    items: &ItemsDef,
    campaign_file: &Path,
    bytes: &[u8],
    diags: &mut Vec<Diagnostic>,
    mut each: impl FnMut(Row, &mut Vec<Diagnostic>),
) {
    let path = items.source.as_path();
    let is_csv = path.extension().is_some_and(|e| e == "csv");
    if is_csv {
        read_csv(items, campaign_file, bytes, diags, &mut each);
    } else {
        read_jsonl(items, bytes, diags, &mut each);
    }
}

fn missing_key_column(
    items: &ItemsDef,
    campaign_file: &Path,
    loc: Loc,
    columns: &[&str],
) -> Diagnostic {
    let hint = match did_you_mean(&items.key, columns.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "its columns are: {}",
            columns
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Diagnostic::new(
        campaign_file,
        loc.line,
        loc.column,
        format!(
            "key column `{}` is not in `{}`",
            items.key,
            items.source.display()
        ),
    )
    .with_hint(hint)
}

fn read_csv(
    items: &ItemsDef,
    campaign_file: &Path,
    bytes: &[u8],
    diags: &mut Vec<Diagnostic>,
    each: &mut impl FnMut(Row, &mut Vec<Diagnostic>),
) {
    let path = items.source.as_path();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            diags.push(
                Diagnostic::new(path, 1, 1, format!("cannot read the header row: {e}"))
                    .with_hint("the first line of a CSV file names its columns"),
            );
            return;
        }
    };
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        diags.push(
            Diagnostic::new(path, 1, 1, "the file has no header row")
                .with_hint("the first line of a CSV file names its columns"),
        );
        return;
    }
    let mut index = HashMap::with_capacity(headers.len());
    let mut names = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        if index.insert(h.to_owned(), i).is_some() {
            diags.push(
                Diagnostic::new(
                    path,
                    1,
                    1,
                    format!("column `{h}` appears twice in the header row"),
                )
                .with_hint("rename one of them"),
            );
            return;
        }
        names.push(Value::from(h));
    }
    let Some(&key_index) = index.get(items.key.as_str()) else {
        let cols: Vec<&str> = headers.iter().collect();
        diags.push(missing_key_column(
            items,
            campaign_file,
            items.key_loc,
            &cols,
        ));
        return;
    };
    let header = Arc::new(Header { index, names });
    let mut number = 0;
    for record in reader.into_records() {
        number += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("row {number} has {len} fields, but the header has {expected_len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => format!("row {number} is not valid UTF-8"),
                    _ => format!("row {number} cannot be read: {e}"),
                };
                diags.push(
                    Diagnostic::new(path, line, 1, msg)
                        .with_hint("quote fields that contain commas, quotes or line breaks"),
                );
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let key = record.get(key_index).unwrap_or("").to_owned();
        let fields = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_owned(), v.to_owned()))
            .collect();
        let value = Value::from_object(CsvRow {
            header: Arc::clone(&header),
            record,
        });
        each(
            Row {
                line,
                number,
                key,
                value,
                fields,
            },
            diags,
        );
    }
}

fn read_jsonl(
    items: &ItemsDef,
    bytes: &[u8],
    diags: &mut Vec<Diagnostic>,
    each: &mut impl FnMut(Row, &mut Vec<Diagnostic>),
) {
    let path = items.source.as_path();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            diags.push(
                Diagnostic::new(
                    path,
                    0,
                    0,
                    format!("the file is not valid UTF-8 (byte {})", e.valid_up_to()),
                )
                .with_hint("save it as UTF-8"),
            );
            return;
        }
    };
    let mut number = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        number += 1;
        let json: serde_json::Value = match serde_json::from_str(trimmed) {
            Ok(v) => v,
            Err(e) => {
                let leading = raw.len() - raw.trim_start().len();
                diags.push(
                    Diagnostic::new(
                        path,
                        line,
                        e.column() + leading,
                        format!("row {number} is not valid JSON: {e}"),
                    )
                    .with_hint("JSON Lines holds one complete JSON object per line"),
                );
                continue;
            }
        };
        let serde_json::Value::Object(map) = &json else {
            diags.push(
                Diagnostic::new(path, line, 1, format!("row {number} is not a JSON object"))
                    .with_hint("write one object per line, like {\"id\": \"a1\", ...}"),
            );
            continue;
        };
        let key = match map.get(&items.key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => {
                diags.push(Diagnostic::new(
                    path,
                    line,
                    1,
                    format!(
                        "row {number}: key field `{}` must be a string or a number, not {other}",
                        items.key
                    ),
                ));
                continue;
            }
            None => {
                let fields: Vec<&str> = map.keys().map(String::as_str).collect();
                let hint = match did_you_mean(&items.key, fields.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("every row needs a `{}` field", items.key),
                };
                diags.push(
                    Diagnostic::new(
                        path,
                        line,
                        1,
                        format!("row {number} has no key field `{}`", items.key),
                    )
                    .with_hint(hint),
                );
                continue;
            }
        };
        let fields = map
            .iter()
            .map(|(k, v)| {
                let cell = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), cell)
            })
            .collect();
        each(
            Row {
                line,
                number,
                key,
                value: Value::from_serialize(&json),
                fields,
            },
            diags,
        );
    }
}
