//! Answers as MTurk returns them (a QuestionFormAnswers document), flattened to field -> text.
//!
//! - FreeText is the text; SelectionIdentifier(s) are the identifiers joined with `|` (with any
//!   OtherSelectionText after them); UploadedFileKey is the key.
//! - A crowd-form submission is one answer `taskAnswers` whose FreeText is a JSON array holding
//!   one object; it is flattened the way MTurk's web UI does: nested keys joined with `.`,
//!   booleans `true` / `false`, arrays joined with `|`.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why an answer document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is not well-formed XML: {0}")]
    Xml(String),
    #[error("the answer's root element is `{0}`, not QuestionFormAnswers")]
    NotAnswers(String),
    #[error("an Answer element has no QuestionIdentifier")]
    NoIdentifier,
}

/// The field name of a crowd-form's single answer.
pub const TASK_ANSWERS: &str = "taskAnswers";

/// Separator for several values of one field (selections, arrays), as the web UI writes them.
pub const MULTI_SEPARATOR: &str = "|";

/// Parses a QuestionFormAnswers document into field -> value. A field answered twice keeps
/// both values, joined with `|`.
pub fn parse_answers(xml: &str) -> Result<BTreeMap<String, String>, AnswerError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| AnswerError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "QuestionFormAnswers" {
        return Err(AnswerError::NotAnswers(root.tag_name().name().to_owned()));
    }
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for answer in root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "Answer")
    {
        let mut identifier = None;
        let mut free_text = None;
        let mut selections: Vec<String> = Vec::new();
        let mut other = None;
        let mut file_key = None;
        for child in answer.children().filter(roxmltree::Node::is_element) {
            let text = || child.text().unwrap_or("").to_owned();
            match child.tag_name().name() {
                "QuestionIdentifier" => identifier = Some(text().trim().to_owned()),
                "FreeText" => free_text = Some(all_text(child)),
                "SelectionIdentifier" => selections.push(text().trim().to_owned()),
                "OtherSelectionText" => other = Some(all_text(child)),
                "UploadedFileKey" => file_key = Some(text().trim().to_owned()),
                _ => {}
            }
        }
        let identifier = identifier.ok_or(AnswerError::NoIdentifier)?;
        if identifier == TASK_ANSWERS
            && let Some(json) = &free_text
            && let Some(fields) = flatten_task_answers(json)
        {
            for (k, v) in fields {
                insert(&mut out, k, v);
            }
            continue;
        }
        let value = if let Some(text) = free_text {
            text
        } else if !selections.is_empty() || other.is_some() {
            selections.extend(other);
            selections.join(MULTI_SEPARATOR)
        } else {
            file_key.unwrap_or_default()
        };
        insert(&mut out, identifier, value);
    }
    Ok(out)
}

fn all_text(node: roxmltree::Node<'_, '_>) -> String {
    node.descendants()
        .filter(roxmltree::Node::is_text)
        .filter_map(|n| n.text())
        .collect()
}

fn insert(out: &mut BTreeMap<String, String>, key: String, value: String) {
    match out.get_mut(&key) {
        Some(existing) => {
            existing.push_str(MULTI_SEPARATOR);
            existing.push_str(&value);
        }
        None => {
            out.insert(key, value);
        }
    }
}

/// Flattens a crowd-form's `taskAnswers` JSON (an array holding one object; a bare object is
/// accepted too). `None` when it is not that shape: the caller then keeps the raw text, so
/// nothing a worker wrote is lost.
pub fn flatten_task_answers(json: &str) -> Option<BTreeMap<String, String>> {
    let value: Value = serde_json::from_str(json).ok()?;
    let object = match value {
        Value::Array(mut items) if items.len() == 1 => match items.pop() {
            Some(Value::Object(o)) => o,
            _ => return None,
        },
        Value::Object(o) => o,
        _ => return None,
    };
    let mut out = BTreeMap::new();
    for (key, value) in object {
        flatten_into(&mut out, key, &value);
    }
    Some(out)
}

fn flatten_into(out: &mut BTreeMap<String, String>, prefix: String, value: &Value) {
    match value {
        Value::Object(o) if !o.is_empty() => {
            for (key, inner) in o {
                flatten_into(out, format!("{prefix}.{key}"), inner);
            }
        }
        other => {
            out.insert(prefix, scalar_text(other));
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(scalar_text)
            .collect::<Vec<_>>()
            .join(MULTI_SEPARATOR),
        // An object inside an array has no dotted name of its own: keep it as JSON.
        Value::Object(o) if o.is_empty() => String::new(),
        Value::Object(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd";

    fn doc(answers: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"ASCII\"?><QuestionFormAnswers xmlns=\"{NS}\">{answers}</QuestionFormAnswers>"
        )
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn free_text_selections_and_file_keys_become_fields() {
        let xml = doc(concat!(
            "<Answer><QuestionIdentifier>comment</QuestionIdentifier><FreeText>a, \"b\"\nc &amp; d</FreeText></Answer>",
            "<Answer><QuestionIdentifier>colour</QuestionIdentifier><SelectionIdentifier>red</SelectionIdentifier></Answer>",
            "<Answer><QuestionIdentifier>tags</QuestionIdentifier><SelectionIdentifier>x</SelectionIdentifier><SelectionIdentifier>y</SelectionIdentifier></Answer>",
            "<Answer><QuestionIdentifier>photo</QuestionIdentifier><UploadedFileKey>up/123</UploadedFileKey><UploadedFileSizeInBytes>42</UploadedFileSizeInBytes></Answer>",
        ));
        assert_eq!(
            parse_answers(&xml).unwrap(),
            map(&[
                ("comment", "a, \"b\"\nc & d"),
                ("colour", "red"),
                ("tags", "x|y"),
                ("photo", "up/123"),
            ])
        );
    }

    #[test]
    fn non_ascii_survives_character_references_and_raw_utf8() {
        let xml = doc(
            "<Answer><QuestionIdentifier>q</QuestionIdentifier><FreeText>caf&#233; &#26085;&#26412; ok</FreeText></Answer>\
             <Answer><QuestionIdentifier>r</QuestionIdentifier><FreeText>naïve 🙂</FreeText></Answer>",
        );
        assert_eq!(
            parse_answers(&xml).unwrap(),
            map(&[("q", "café 日本 ok"), ("r", "naïve 🙂")])
        );
    }

    #[test]
    fn a_crowd_form_is_flattened_like_the_web_ui() {
        let json = r#"[{"sentiment":{"label":"pos","on":true},"flags":["a","b"],"n":3,"empty":null,"note":"é, \"q\""}]"#;
        let xml = doc(&format!(
            "<Answer><QuestionIdentifier>taskAnswers</QuestionIdentifier><FreeText>{}</FreeText></Answer>",
            json.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('"', "&quot;")
        ));
        assert_eq!(
            parse_answers(&xml).unwrap(),
            map(&[
                ("sentiment.label", "pos"),
                ("sentiment.on", "true"),
                ("flags", "a|b"),
                ("n", "3"),
                ("empty", ""),
                ("note", "é, \"q\""),
            ])
        );
    }

    #[test]
    fn task_answers_that_are_not_one_object_are_kept_raw() {
        let xml = doc(
            "<Answer><QuestionIdentifier>taskAnswers</QuestionIdentifier><FreeText>not json</FreeText></Answer>",
        );
        assert_eq!(
            parse_answers(&xml).unwrap(),
            map(&[("taskAnswers", "not json")])
        );
        assert_eq!(flatten_task_answers("[{}, {}]"), None);
        assert_eq!(flatten_task_answers("[1]"), None);
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        for bad in [
            "",
            "<QuestionFormAnswers>",
            "<QuestionFormAnswers><Answer></QuestionFormAnswers>",
            "plain text",
        ] {
            assert!(
                matches!(parse_answers(bad), Err(AnswerError::Xml(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_answers("<Other/>"),
            Err(AnswerError::NotAnswers("Other".to_owned()))
        );
        assert_eq!(
            parse_answers(&doc("<Answer><FreeText>x</FreeText></Answer>")),
            Err(AnswerError::NoIdentifier)
        );
    }

    #[test]
    fn a_field_answered_twice_keeps_both_values() {
        let xml = doc(
            "<Answer><QuestionIdentifier>q</QuestionIdentifier><FreeText>one</FreeText></Answer>\
             <Answer><QuestionIdentifier>q</QuestionIdentifier><FreeText>two</FreeText></Answer>",
        );
        assert_eq!(parse_answers(&xml).unwrap(), map(&[("q", "one|two")]));
    }
}
