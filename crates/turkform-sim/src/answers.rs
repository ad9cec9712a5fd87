//! Answers as MTurk stores them: the questions of a QuestionForm (read with roxmltree) and the
//! QuestionFormAnswers document a submission becomes, for the simulated workers and for the
//! worker site alike.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::validate;

/// What a QuestionForm question's AnswerSpecification asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerSpec {
    FreeText,
    Selection {
        /// `(SelectionIdentifier, text shown)` in document order.
        options: Vec<(String, String)>,
        min: usize,
        max: usize,
        /// StyleSuggestion: radiobutton, checkbox, list, dropdown, combobox, multichooser.
        style: String,
        /// An OtherSelection is offered (its text goes to OtherSelectionText).
        other: bool,
    },
    FileUpload,
}

/// One Question of a QuestionForm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormQuestion {
    pub id: String,
    /// DisplayName, or empty.
    pub display_name: String,
    /// The QuestionContent's text (Title and Text elements joined).
    pub text: String,
    pub required: bool,
    pub spec: AnswerSpec,
}

/// A QuestionForm's Overview texts and Questions, in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub overview: Vec<String>,
    pub questions: Vec<FormQuestion>,
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(node: Option<roxmltree::Node<'_, '_>>) -> String {
    node.map(|n| {
        n.descendants()
            .filter(|d| d.is_text())
            .filter_map(|d| d.text())
            .collect::<String>()
            .trim()
            .to_owned()
    })
    .unwrap_or_default()
}

/// The texts of a content element (QuestionContent, Overview): Title and Text children.
fn content_text(node: Option<roxmltree::Node<'_, '_>>) -> String {
    let Some(node) = node else {
        return String::new();
    };
    node.children()
        .filter(|c| c.is_element() && matches!(c.tag_name().name(), "Title" | "Text"))
        .map(|c| text_of(Some(c)))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads a QuestionForm document; `None` for any other question document.
pub fn parse_form(xml: &str) -> Option<Form> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    if root.tag_name().name() != "QuestionForm"
        || !(ns == validate::QUESTION_FORM_NS || ns == validate::QUESTION_FORM_NS_2005)
    {
        return None;
    }
    let mut form = Form::default();
    for node in root.children().filter(|c| c.is_element()) {
        match node.tag_name().name() {
            "Overview" => {
                let t = content_text(Some(node));
                if !t.is_empty() {
                    form.overview.push(t);
                }
            }
            "Question" => form.questions.push(parse_question(node)),
            _ => {}
        }
    }
    Some(form)
}

fn parse_question(q: roxmltree::Node<'_, '_>) -> FormQuestion {
    let spec_node = child(q, "AnswerSpecification");
    let spec = match spec_node.and_then(|s| s.children().find(|c| c.is_element())) {
        Some(s) if s.tag_name().name() == "SelectionAnswer" => {
            let count = |name: &str| text_of(child(s, name)).parse::<usize>().ok();
            let selections = child(s, "Selections");
            let options: Vec<(String, String)> = selections
                .map(|sel| {
                    sel.children()
                        .filter(|c| c.is_element() && c.tag_name().name() == "Selection")
                        .map(|c| {
                            let id = text_of(child(c, "SelectionIdentifier"));
                            let mut label = text_of(child(c, "Text"));
                            if label.is_empty() {
                                label = id.clone();
                            }
                            (id, label)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let other = selections
                .and_then(|s| child(s, "OtherSelection"))
                .is_some();
            let min = count("MinSelectionCount").unwrap_or(1);
            let max = count("MaxSelectionCount").unwrap_or(1).max(1);
            let style = text_of(child(s, "StyleSuggestion"));
            let style = if style.is_empty() {
                if max > 1 { "checkbox" } else { "radiobutton" }.to_owned()
            } else {
                style
            };
            AnswerSpec::Selection {
                options,
                min,
                max,
                style,
                other,
            }
        }
        Some(s) if s.tag_name().name() == "FileUploadAnswer" => AnswerSpec::FileUpload,
        _ => AnswerSpec::FreeText,
    };
    FormQuestion {
        id: text_of(child(q, "QuestionIdentifier")),
        display_name: text_of(child(q, "DisplayName")),
        text: content_text(child(q, "QuestionContent")),
        required: text_of(child(q, "IsRequired")) == "true",
        spec,
    }
}

/// The content of one `<Answer>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerValue {
    FreeText(String),
    /// SelectionIdentifiers, then an OtherSelectionText if the worker wrote one.
    Selections(Vec<String>, Option<String>),
    UploadedFile {
        size: u64,
        key: String,
    },
}

/// Writes characters outside ASCII as character references, as MTurk's answer XML does.
pub fn xml_escape_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#{};", c as u32)),
        }
    }
    out
}

/// The QuestionFormAnswers document for `(QuestionIdentifier, answer)` pairs.
pub fn document(answers: &[(String, AnswerValue)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"ASCII\"?><QuestionFormAnswers xmlns=\"{}\">",
        validate::ANSWERS_NS
    );
    for (id, value) in answers {
        xml.push_str("<Answer><QuestionIdentifier>");
        xml.push_str(&xml_escape_ascii(id));
        xml.push_str("</QuestionIdentifier>");
        match value {
            AnswerValue::FreeText(t) => {
                xml.push_str(&format!("<FreeText>{}</FreeText>", xml_escape_ascii(t)));
            }
            AnswerValue::Selections(ids, other) => {
                for s in ids {
                    xml.push_str(&format!(
                        "<SelectionIdentifier>{}</SelectionIdentifier>",
                        xml_escape_ascii(s)
                    ));
                }
                if let Some(o) = other {
                    xml.push_str(&format!(
                        "<OtherSelectionText>{}</OtherSelectionText>",
                        xml_escape_ascii(o)
                    ));
                }
            }
            AnswerValue::UploadedFile { size, key } => {
                xml.push_str(&format!(
                    "<UploadedFileSizeInBytes>{size}</UploadedFileSizeInBytes><UploadedFileKey>{}</UploadedFileKey>",
                    xml_escape_ascii(key)
                ));
            }
        }
        xml.push_str("</Answer>");
    }
    xml.push_str("</QuestionFormAnswers>");
    xml
}

fn text_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One question's answer from a JSON value (a simulated worker's), or its default when absent.
/// A selection takes one SelectionIdentifier as a string or several as an array; a value that
/// is not a SelectionIdentifier goes to OtherSelectionText when the question offers one.
pub fn json_answer(q: &FormQuestion, value: Option<&Value>) -> Result<AnswerValue, String> {
    match &q.spec {
        AnswerSpec::FreeText => {
            Ok(AnswerValue::FreeText(value.map(text_value).unwrap_or_else(
                || format!("simulated answer to {}", q.id),
            )))
        }
        AnswerSpec::FileUpload => match value {
            None => Ok(AnswerValue::UploadedFile {
                size: 0,
                key: format!("simulated-upload-{}", q.id),
            }),
            Some(Value::String(key)) => Ok(AnswerValue::UploadedFile {
                size: 0,
                key: key.clone(),
            }),
            Some(Value::Object(o)) => Ok(AnswerValue::UploadedFile {
                size: o.get("size").and_then(Value::as_u64).unwrap_or(0),
                key: o.get("key").map(text_value).unwrap_or_default(),
            }),
            Some(other) => Err(format!(
                "the answer to file-upload question `{}` must be a key string or {{\"key\": ..., \"size\": N}}, not {other}",
                q.id
            )),
        },
        AnswerSpec::Selection {
            options, min, max, ..
        } => {
            let given: Vec<String> = match value {
                None => {
                    let n = (*min).max(1).min(options.len());
                    options.iter().take(n).map(|(id, _)| id.clone()).collect()
                }
                Some(Value::Array(items)) => items.iter().map(text_value).collect(),
                Some(v) => vec![text_value(v)],
            };
            selection_answer(q, given)
                .map_err(|e| format!("{e} (it takes {min} to {max} of its identifiers)"))
        }
    }
}

/// Checks chosen values against a selection question: identifiers it offers, at most one
/// other text, and the Min/MaxSelectionCount bounds.
pub fn selection_answer(q: &FormQuestion, given: Vec<String>) -> Result<AnswerValue, String> {
    let AnswerSpec::Selection {
        options,
        min,
        max,
        other,
        ..
    } = &q.spec
    else {
        return Err(format!("question `{}` is not a selection", q.id));
    };
    let mut ids = Vec::new();
    let mut other_text = None;
    for g in given {
        if options.iter().any(|(id, _)| *id == g) {
            ids.push(g);
        } else if *other && other_text.is_none() {
            other_text = Some(g);
        } else {
            let known: Vec<&str> = options.iter().map(|(id, _)| id.as_str()).collect();
            return Err(format!(
                "`{g}` is not a SelectionIdentifier of question `{}`: use one of {}",
                q.id,
                known.join(", ")
            ));
        }
    }
    let n = ids.len() + usize::from(other_text.is_some());
    if n > *max || n < *min {
        return Err(format!(
            "question `{}` got {n} selection{}",
            q.id,
            if n == 1 { "" } else { "s" }
        ));
    }
    Ok(AnswerValue::Selections(ids, other_text))
}

/// The one `taskAnswers` answer a crowd-form submits: a JSON array holding one object.
pub fn task_answers(fields: &serde_json::Map<String, Value>) -> AnswerValue {
    AnswerValue::FreeText(Value::from(vec![Value::Object(fields.clone())]).to_string())
}

/// Merges answer maps field by field; later maps win.
pub fn merge(layers: &[Option<&BTreeMap<String, Value>>]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for layer in layers.iter().flatten() {
        for (k, v) in layer.iter() {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FORM: &str = r#"<QuestionForm xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd">
<Overview><Title>Animals</Title></Overview>
<Question><QuestionIdentifier>animal</QuestionIdentifier><IsRequired>true</IsRequired>
<QuestionContent><Text>Which animal?</Text></QuestionContent>
<AnswerSpecification><SelectionAnswer><StyleSuggestion>radiobutton</StyleSuggestion><Selections>
<Selection><SelectionIdentifier>cat</SelectionIdentifier><Text>A cat</Text></Selection>
<Selection><SelectionIdentifier>dog</SelectionIdentifier><Text>A dog</Text></Selection>
</Selections></SelectionAnswer></AnswerSpecification></Question>
<Question><QuestionIdentifier>tags</QuestionIdentifier>
<QuestionContent><Text>Tags</Text></QuestionContent>
<AnswerSpecification><SelectionAnswer><MinSelectionCount>1</MinSelectionCount><MaxSelectionCount>3</MaxSelectionCount><Selections>
<Selection><SelectionIdentifier>a</SelectionIdentifier><Text>A</Text></Selection>
<Selection><SelectionIdentifier>b</SelectionIdentifier><Text>B</Text></Selection>
<OtherSelection><FreeTextAnswer/></OtherSelection>
</Selections></SelectionAnswer></AnswerSpecification></Question>
<Question><QuestionIdentifier>why</QuestionIdentifier><QuestionContent><Text>Why?</Text></QuestionContent>
<AnswerSpecification><FreeTextAnswer/></AnswerSpecification></Question>
</QuestionForm>"#;

    #[test]
    fn form_questions_carry_their_answer_specification() {
        let form = parse_form(FORM).unwrap();
        assert_eq!(form.overview, vec!["Animals".to_owned()]);
        assert_eq!(form.questions.len(), 3);
        assert!(form.questions[0].required);
        assert!(matches!(
            &form.questions[0].spec,
            AnswerSpec::Selection { max: 1, style, .. } if style == "radiobutton"
        ));
        assert!(matches!(
            &form.questions[1].spec,
            AnswerSpec::Selection { max: 3, other: true, style, .. } if style == "checkbox"
        ));
        assert_eq!(form.questions[2].spec, AnswerSpec::FreeText);
    }

    #[test]
    fn selection_answers_are_checked_against_the_question() {
        let form = parse_form(FORM).unwrap();
        let animal = &form.questions[0];
        let tags = &form.questions[1];
        assert_eq!(
            json_answer(animal, Some(&json!("dog"))),
            Ok(AnswerValue::Selections(vec!["dog".into()], None))
        );
        assert_eq!(
            json_answer(animal, None),
            Ok(AnswerValue::Selections(vec!["cat".into()], None))
        );
        assert!(json_answer(animal, Some(&json!("horse"))).is_err());
        assert!(json_answer(animal, Some(&json!(["cat", "dog"]))).is_err());
        assert_eq!(
            json_answer(tags, Some(&json!(["a", "b", "zebra"]))),
            Ok(AnswerValue::Selections(
                vec!["a".into(), "b".into()],
                Some("zebra".into())
            ))
        );
    }

    #[test]
    fn answer_documents_escape_to_ascii() {
        let xml = document(&[
            ("q".into(), AnswerValue::FreeText("caf\u{e9} <b>".into())),
            (
                "s".into(),
                AnswerValue::Selections(vec!["x".into(), "y".into()], None),
            ),
        ]);
        assert!(xml.contains("<FreeText>caf&#233; &lt;b&gt;</FreeText>"));
        assert!(xml.contains(
            "<Answer><QuestionIdentifier>s</QuestionIdentifier><SelectionIdentifier>x</SelectionIdentifier><SelectionIdentifier>y</SelectionIdentifier></Answer>"
        ));
        assert!(xml.is_ascii());
        roxmltree::Document::parse(&xml).unwrap();
    }
}
