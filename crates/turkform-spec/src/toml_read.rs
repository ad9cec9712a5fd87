//! Typed, spanned reads from a parsed TOML document (`toml::de::DeTable`), reporting every
//! wrong type, missing key and unknown key as a [`Diagnostic`] instead of stopping at the first:
//! serde's derive would give up after one error and lose the positions we need.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, SourceFile, did_you_mean};

pub(crate) type Span = Range<usize>;

/// Collects the diagnostics of one file.
#[derive(Debug)]
pub(crate) struct FileDiagnostics<'a> {
    pub src: &'a SourceFile<'a>,
    pub diags: Vec<Diagnostic>,
}

impl<'a> FileDiagnostics<'a> {
    pub fn new(src: &'a SourceFile<'a>) -> Self {
        FileDiagnostics {
            src,
            diags: Vec::new(),
        }
    }

    pub fn error(&mut self, offset: usize, message: impl Into<String>, hint: Option<String>) {
        let d = self.src.at(offset, message).with_hint_opt(hint);
        self.diags.push(d);
    }
}

/// What a TOML value is, for "found ..." messages.
pub(crate) fn kind_of(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(crate) fn int_of(v: &DeValue<'_>) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// A table of the document with where it starts (for "missing key" errors) and how to name it
/// in messages (`[hit_type]`).
#[derive(Debug, Clone)]
pub(crate) struct Table<'a, 'i> {
    pub map: &'a DeTable<'i>,
    pub at: usize,
    pub label: String,
}

impl<'a, 'i> Table<'a, 'i> {
    pub fn new(map: &'a DeTable<'i>, at: usize, label: impl Into<String>) -> Self {
        Table {
            map,
            at,
            label: label.into(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.map.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Span of a key's value.
    pub fn span_of(&self, key: &str) -> Option<Span> {
        self.get(key).map(Spanned::span)
    }

    /// Span of a key itself (where `key = ...` starts).
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.map.get_key_value(key).map(|(k, _)| k.span())
    }

    /// Reports every key that is not in `known`, suggesting the closest known one. `elsewhere`
    /// maps keys that belong to another table to that table's name, for a better hint.
    pub fn check_keys(
        &self,
        r: &mut FileDiagnostics<'_>,
        known: &[&str],
        elsewhere: &[(&str, &str)],
    ) {
        for (key, _) in self.map.iter() {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                continue;
            }
            let hint = if let Some((_, table)) = elsewhere.iter().find(|(k, _)| *k == name) {
                format!("`{name}` belongs in {table}")
            } else if let Some(s) = did_you_mean(name, known.iter().copied()) {
                format!("did you mean `{s}`?")
            } else {
                format!("expected one of {}", list(known))
            };
            r.error(
                key.span().start,
                format!("unknown key `{name}` in {}", self.label),
                Some(hint),
            );
        }
    }

    fn wrong_type(
        &self,
        r: &mut FileDiagnostics<'_>,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        want: &str,
        hint: Option<String>,
    ) {
        r.error(
            v.span().start,
            format!(
                "`{key}` in {} must be {want}, not {}",
                self.label,
                kind_of(v.get_ref())
            ),
            hint,
        );
    }

    pub fn missing(&self, r: &mut FileDiagnostics<'_>, key: &str, hint: Option<String>) {
        // A misspelt key is already reported as unknown with "did you mean `key`?"; saying
        // that `key` is missing as well would report one mistake twice.
        let misspelt = self.map.keys().any(|k| {
            let k: &str = k.get_ref();
            k != key && did_you_mean(k, [key]).is_some()
        });
        if misspelt {
            return;
        }
        r.error(
            self.at,
            format!("missing required key `{key}` in {}", self.label),
            hint,
        );
    }

    /// A string value; `None` when absent or of another type (reported).
    pub fn str(
        &self,
        r: &mut FileDiagnostics<'_>,
        key: &str,
        hint: Option<&str>,
    ) -> Option<(&'a str, Span)> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => {
                self.wrong_type(r, key, v, "a string", hint.map(str::to_owned));
                None
            }
        }
    }

    /// A required string value (missing is reported).
    pub fn req_str(
        &self,
        r: &mut FileDiagnostics<'_>,
        key: &str,
        hint: Option<&str>,
    ) -> Option<(&'a str, Span)> {
        if !self.has(key) {
            self.missing(r, key, hint.map(str::to_owned));
            return None;
        }
        self.str(r, key, hint)
    }

    pub fn int(&self, r: &mut FileDiagnostics<'_>, key: &str) -> Option<(i64, Span)> {
        self.int_with_range(r, key, None)
    }

    /// [`Table::int`], saying `range` (e.g. "MTurk accepts 1 to 10 ...") when the integer is too
    /// large even for 64 bits.
    pub fn int_with_range(
        &self,
        r: &mut FileDiagnostics<'_>,
        key: &str,
        range: Option<&str>,
    ) -> Option<(i64, Span)> {
        let v = self.get(key)?;
        match int_of(v.get_ref()) {
            Some(i) => Some((i, v.span())),
            None if matches!(v.get_ref(), DeValue::Integer(_)) => {
                // An integer TOML accepts but i64 cannot hold: "not an integer" would be wrong.
                let DeValue::Integer(i) = v.get_ref() else {
                    return None;
                };
                let negative = i.as_str().starts_with('-');
                r.error(
                    v.span().start,
                    format!(
                        "`{key}` = {} is too {}",
                        i.as_str(),
                        if negative { "small" } else { "large" }
                    ),
                    range.map(str::to_owned),
                );
                None
            }
            None => {
                self.wrong_type(r, key, v, "an integer", None);
                None
            }
        }
    }

    pub fn bool(&self, r: &mut FileDiagnostics<'_>, key: &str) -> Option<(bool, Span)> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some((*b, v.span())),
            _ => {
                self.wrong_type(r, key, v, "`true` or `false`", None);
                None
            }
        }
    }

    /// A sub-table; `None` when absent or not a table (reported).
    pub fn table(
        &self,
        r: &mut FileDiagnostics<'_>,
        key: &str,
        label: impl Into<String>,
    ) -> Option<Table<'a, 'i>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Table::new(t, v.span().start, label)),
            _ => {
                self.wrong_type(r, key, v, "a table", None);
                None
            }
        }
    }

    /// An array of strings; elements of another type are reported and skipped.
    pub fn str_list(
        &self,
        r: &mut FileDiagnostics<'_>,
        key: &str,
    ) -> Option<(Vec<(&'a str, Span)>, Span)> {
        let v = self.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(
                r,
                key,
                v,
                "an array of strings",
                Some(format!("write `{key} = [\"...\"]`")),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.as_ref(), item.span())),
                other => r.error(
                    item.span().start,
                    format!(
                        "`{key}` in {} must hold strings, not {}",
                        self.label,
                        kind_of(other)
                    ),
                    None,
                ),
            }
        }
        Some((out, v.span()))
    }

    /// An array of integers; elements of another type are reported and skipped.
    pub fn int_list(
        &self,
        r: &mut FileDiagnostics<'_>,
        key: &str,
    ) -> Option<(Vec<(i64, Span)>, Span)> {
        let v = self.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(
                r,
                key,
                v,
                "an array of integers",
                Some(format!("write `{key} = [1, 2]`")),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            match int_of(item.get_ref()) {
                Some(i) => out.push((i, item.span())),
                None => r.error(
                    item.span().start,
                    format!(
                        "`{key}` in {} must hold integers, not {}",
                        self.label,
                        kind_of(item.get_ref())
                    ),
                    None,
                ),
            }
        }
        Some((out, v.span()))
    }
}

/// `` `a`, `b` or `c` ``
pub(crate) fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let head: Vec<String> = init.iter().map(|s| format!("`{s}`")).collect();
            format!("{} or `{last}`", head.join(", "))
        }
    }
}
