//! MTurk's request rules that go beyond the model's shapes: the limits table, qualification
//! requirements and question XML.

use serde_json::Value;

use crate::wire::{ApiError, ApiResult, Input, enum_error};
use crate::world::{Locale, Requirement};

pub const COMPARATORS: &[&str] = &[
    "LessThan",
    "LessThanOrEqualTo",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "EqualTo",
    "NotEqualTo",
    "Exists",
    "DoesNotExist",
    "In",
    "NotIn",
];
pub const ACTIONS: &[&str] = &["Accept", "PreviewAndAccept", "DiscoverPreviewAndAccept"];

pub const LOCALE_QUAL: &str = "00000000000000000071";
pub const ADULT_QUAL: &str = "00000000000000000060";
pub const APPROVED_HITS_QUAL: &str = "00000000000000000040";
pub const APPROVAL_RATE_QUAL: &str = "000000000000000000L0";
/// Masters ids: sandbox, production and the category Masters of both.
pub const MASTERS_QUALS: &[&str] = &[
    "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",
    "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH",
    "2F1KVCNHMVHV8E9PBUB2A4J79LU20F",
    "2TGBB6BFMFFOM08IBMAFGGESC1UWJX",
    "2NDP2L92HECWY8NS8H3CK0CP5L9GHO",
    "21VZU98JHSTLZ5BPP4A9NOBJEK3DPG",
];
/// System types that are no longer documented but still answer.
const LEGACY_QUALS: &[&str] = &[
    "00000000000000000000",
    "00000000000000000070",
    "000000000000000000E0",
    "000000000000000000S0",
];

/// The name of a system qualification type, if `id` is one.
pub fn system_qual_name(id: &str) -> Option<&'static str> {
    Some(match id {
        LOCALE_QUAL => "Worker_Locale",
        ADULT_QUAL => "Worker_Adult",
        APPROVED_HITS_QUAL => "Worker_NumberHITsApproved",
        APPROVAL_RATE_QUAL => "Worker_PercentAssignmentsApproved",
        "00000000000000000000" => "Worker_PercentAssignmentsSubmitted",
        "00000000000000000070" => "Worker_PercentAssignmentsAbandoned",
        "000000000000000000E0" => "Worker_PercentAssignmentsReturned",
        "000000000000000000S0" => "Worker_PercentAssignmentsRejected",
        _ if MASTERS_QUALS.contains(&id) => "Masters",
        _ => return None,
    })
}

pub fn is_system_qual(id: &str) -> bool {
    system_qual_name(id).is_some() || LEGACY_QUALS.contains(&id)
}

fn too_long(member: &str, value: &str, limit: &str) -> ApiError {
    let shown: String = value.chars().take(40).collect();
    ApiError::constraint(member, &shown, limit)
}

/// Title <= 128, Description 1..2000, Keywords < 1000 characters.
pub fn check_texts(title: &str, description: &str, keywords: Option<&str>) -> ApiResult<()> {
    if title.trim().is_empty() {
        return Err(ApiError::invalid("The value of Title must not be empty."));
    }
    if title.chars().count() > 128 {
        return Err(too_long(
            "Title",
            title,
            "Member must have length less than or equal to 128",
        ));
    }
    if description.trim().is_empty() {
        return Err(ApiError::invalid(
            "The value of Description must not be empty.",
        ));
    }
    if description.chars().count() >= 2000 {
        return Err(too_long(
            "Description",
            description,
            "Member must have length less than 2000",
        ));
    }
    if let Some(k) = keywords
        && k.chars().count() >= 1000
    {
        return Err(too_long(
            "Keywords",
            k,
            "Member must have length less than 1000",
        ));
    }
    Ok(())
}

/// A `Long` member within an inclusive range.
pub fn check_range(member: &str, value: i64, min: i64, max: i64) -> ApiResult<()> {
    if value < min {
        return Err(ApiError::constraint(
            member,
            &value.to_string(),
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(ApiError::constraint(
            member,
            &value.to_string(),
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

pub fn check_annotation(annotation: Option<&str>) -> ApiResult<()> {
    if let Some(a) = annotation
        && a.chars().count() > 255
    {
        return Err(too_long(
            "RequesterAnnotation",
            a,
            "Member must have length less than or equal to 255",
        ));
    }
    Ok(())
}

/// Parses and checks the QualificationRequirements member (rules of reference §4). Whether
/// custom types exist is checked by the caller, which owns the world.
pub fn parse_requirements(list: Option<&Vec<Value>>) -> ApiResult<Vec<Requirement>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    if list.len() > 10 {
        return Err(ApiError::invalid(format!(
            "A HIT can have at most 10 QualificationRequirements; {} were given.",
            list.len()
        )));
    }
    list.iter().map(parse_requirement).collect()
}

fn parse_requirement(value: &Value) -> ApiResult<Requirement> {
    let Value::Object(obj) = value else {
        return Err(ApiError::serialization(
            "QualificationRequirements must be a list of structures",
        ));
    };
    let input = Input::new(obj);
    let type_id = input.str_req("QualificationTypeId")?;
    let comparator = input.enum_req("Comparator", COMPARATORS)?;
    let actions = input.enum_opt("ActionsGuarded", ACTIONS)?;
    let required_to_preview = input.bool_opt("RequiredToPreview")?;
    let integers = match input.list_opt("IntegerValues")? {
        None => None,
        Some(vals) => Some(
            vals.iter()
                .map(|v| {
                    v.as_i64()
                        .filter(|i| i32::try_from(*i).is_ok())
                        .ok_or_else(|| ApiError::serialization("IntegerValues must hold integers"))
                })
                .collect::<ApiResult<Vec<i64>>>()?,
        ),
    };
    let locales = match input.list_opt("LocaleValues")? {
        None => None,
        Some(vals) => Some(
            vals.iter()
                .map(parse_locale)
                .collect::<ApiResult<Vec<Locale>>>()?,
        ),
    };
    if actions.is_some() && required_to_preview.is_some() {
        return Err(ApiError::invalid(
            "RequiredToPreview is deprecated and cannot be combined with ActionsGuarded.",
        ));
    }
    let n_int = integers.as_ref().map_or(0, Vec::len);
    let n_loc = locales.as_ref().map_or(0, Vec::len);
    let is_locale = type_id == LOCALE_QUAL;
    let fail = |why: &str| {
        Err(ApiError::invalid(format!(
            "QualificationRequirement for {type_id} with Comparator {comparator}: {why}"
        )))
    };
    if n_int > 0 && n_loc > 0 {
        return fail("give either IntegerValues or LocaleValues, not both.");
    }
    if n_loc > 0 && !is_locale {
        return fail(
            "LocaleValues can only be used with the Worker_Locale qualification (00000000000000000071).",
        );
    }
    if n_int > 0 && is_locale {
        return fail("Worker_Locale takes LocaleValues, not IntegerValues.");
    }
    match comparator {
        "Exists" | "DoesNotExist" => {
            if n_int > 0 || n_loc > 0 {
                return fail("Exists and DoesNotExist take no IntegerValues or LocaleValues.");
            }
        }
        "EqualTo" | "NotEqualTo" => {
            if is_locale {
                if n_loc != 1 {
                    return fail("exactly one LocaleValue is required.");
                }
            } else if n_int != 1 {
                return fail("exactly one IntegerValue is required.");
            }
        }
        "LessThan" | "LessThanOrEqualTo" | "GreaterThan" | "GreaterThanOrEqualTo" => {
            if is_locale {
                return fail(
                    "Worker_Locale can only be compared with EqualTo, NotEqualTo, In or NotIn.",
                );
            }
            if n_int != 1 {
                return fail("exactly one IntegerValue is required.");
            }
        }
        _ => {
            // In / NotIn
            if is_locale {
                if n_loc == 0 || n_loc > 30 {
                    return fail("between 1 and 30 LocaleValues are required.");
                }
            } else if n_int == 0 || n_int > 15 {
                return fail("between 1 and 15 IntegerValues are required.");
            }
        }
    }
    Ok(Requirement {
        type_id: type_id.to_owned(),
        comparator: comparator.to_owned(),
        integers,
        locales,
        required_to_preview,
        actions_guarded: actions.map(str::to_owned),
    })
}

fn parse_locale(value: &Value) -> ApiResult<Locale> {
    let Value::Object(obj) = value else {
        return Err(ApiError::serialization(
            "LocaleValues must be a list of structures",
        ));
    };
    let input = Input::new(obj);
    let country = input.str_req("Country")?;
    let subdivision = input.str_opt("Subdivision")?;
    let two_letters = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
    if !two_letters(country) {
        return Err(ApiError::constraint(
            "Country",
            country,
            "Member must be an ISO 3166 country code of 2 upper-case letters",
        ));
    }
    if let Some(s) = subdivision
        && !(s.len() == 2
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
    {
        return Err(ApiError::constraint(
            "Subdivision",
            s,
            "Member must be an ISO 3166-2 subdivision code of 2 characters",
        ));
    }
    Ok(Locale {
        country: country.to_owned(),
        subdivision: subdivision.map(str::to_owned),
    })
}

/// A requirement as the API echoes it back.
pub fn requirement_json(r: &Requirement) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("QualificationTypeId".into(), Value::from(r.type_id.clone()));
    obj.insert("Comparator".into(), Value::from(r.comparator.clone()));
    if let Some(ints) = &r.integers {
        obj.insert("IntegerValues".into(), Value::from(ints.clone()));
    }
    if let Some(locs) = &r.locales {
        let list: Vec<Value> = locs
            .iter()
            .map(|l| {
                let mut m = serde_json::Map::new();
                m.insert("Country".into(), Value::from(l.country.clone()));
                if let Some(s) = &l.subdivision {
                    m.insert("Subdivision".into(), Value::from(s.clone()));
                }
                Value::Object(m)
            })
            .collect();
        obj.insert("LocaleValues".into(), Value::from(list));
    }
    match (&r.actions_guarded, r.required_to_preview) {
        (Some(a), _) => {
            obj.insert("ActionsGuarded".into(), Value::from(a.clone()));
        }
        (None, Some(p)) => {
            obj.insert("RequiredToPreview".into(), Value::from(p));
        }
        (None, None) => {
            obj.insert("ActionsGuarded".into(), Value::from("Accept"));
        }
    }
    Value::Object(obj)
}

pub const HTML_QUESTION_NS: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd";
pub const EXTERNAL_QUESTION_NS: &str = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd";
pub const QUESTION_FORM_NS: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd";
pub const QUESTION_FORM_NS_2005: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionForm.xsd";
pub const ANSWERS_NS: &str = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd";

/// What kind of question a HIT carries, for the simulated workers' answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuestionKind {
    /// HTMLQuestion; `crowd_form` when it uses `<crowd-form>`.
    Html {
        crowd_form: bool,
    },
    External,
    /// QuestionForm with its QuestionIdentifiers in order.
    Form {
        identifiers: Vec<String>,
    },
}

fn parse_error(details: impl std::fmt::Display) -> ApiError {
    ApiError::request(
        "XMLParseError",
        format!(
            "There was an error parsing the XML question or answer data in your request. Please make sure the data is well-formed and validates against the appropriate schema. Details: {details}"
        ),
    )
}

/// Checks a Question document: size, well-formedness, a known root in its namespace and the
/// elements that root requires.
pub fn check_question(xml: &str) -> ApiResult<QuestionKind> {
    check_question_with(xml, false)
}

/// Whether `url` is an `http://` URL on the loopback interface.
pub fn is_local_http_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// [`check_question`], also accepting loopback `http://` ExternalURLs when `local_urls` is set.
pub fn check_question_with(xml: &str, local_urls: bool) -> ApiResult<QuestionKind> {
    if xml.len() > 65_535 {
        return Err(ApiError::invalid(format!(
            "The Question is {} bytes long; the limit is 65535 bytes.",
            xml.len()
        )));
    }
    let doc = roxmltree::Document::parse(xml).map_err(parse_error)?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    let child = |name: &str| {
        root.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    };
    let frame_height = |kind: &str| -> ApiResult<()> {
        let Some(fh) = child("FrameHeight") else {
            return Err(parse_error(format!(
                "{kind} requires a FrameHeight element"
            )));
        };
        let text = fh.text().unwrap_or("").trim();
        if text.parse::<u32>().is_err() {
            return Err(parse_error(format!(
                "FrameHeight must be a non-negative integer, not '{text}'"
            )));
        }
        Ok(())
    };
    match root.tag_name().name() {
        "HTMLQuestion" if ns == HTML_QUESTION_NS => {
            let Some(content) = child("HTMLContent") else {
                return Err(parse_error("HTMLQuestion requires an HTMLContent element"));
            };
            frame_height("HTMLQuestion")?;
            let html: String = content.children().filter_map(|n| n.text()).collect();
            if html.trim().is_empty() {
                return Err(parse_error("HTMLContent is empty"));
            }
            Ok(QuestionKind::Html {
                crowd_form: html.contains("<crowd-form"),
            })
        }
        "ExternalQuestion" if ns == EXTERNAL_QUESTION_NS => {
            let Some(url) = child("ExternalURL") else {
                return Err(parse_error(
                    "ExternalQuestion requires an ExternalURL element",
                ));
            };
            frame_height("ExternalQuestion")?;
            let url = url.text().unwrap_or("").trim();
            let local = local_urls && is_local_http_url(url);
            if !local && (!url.starts_with("https://") || url.len() <= "https://".len()) {
                return Err(ApiError::invalid(format!(
                    "The ExternalURL '{url}' is not valid: it must be an HTTPS URL."
                )));
            }
            let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
            for reserved in ["assignmentId", "hitId", "turkSubmitTo", "workerId"] {
                if query
                    .split('&')
                    .any(|p| p.split('=').next() == Some(reserved))
                {
                    return Err(ApiError::invalid(format!(
                        "The ExternalURL must not contain the parameter '{reserved}': MTurk appends it."
                    )));
                }
            }
            Ok(QuestionKind::External)
        }
        "QuestionForm" if ns == QUESTION_FORM_NS || ns == QUESTION_FORM_NS_2005 => {
            let mut identifiers = Vec::new();
            for q in root
                .children()
                .filter(|c| c.is_element() && c.tag_name().name() == "Question")
            {
                let id = q
                    .children()
                    .find(|c| c.is_element() && c.tag_name().name() == "QuestionIdentifier")
                    .and_then(|c| c.text())
                    .map(str::trim)
                    .unwrap_or("");
                if id.is_empty() {
                    return Err(parse_error("every Question requires a QuestionIdentifier"));
                }
                if !q
                    .children()
                    .any(|c| c.is_element() && c.tag_name().name() == "AnswerSpecification")
                {
                    return Err(parse_error(format!(
                        "Question '{id}' requires an AnswerSpecification"
                    )));
                }
                identifiers.push(id.to_owned());
            }
            if identifiers.is_empty() {
                return Err(parse_error("QuestionForm requires at least one Question"));
            }
            Ok(QuestionKind::Form { identifiers })
        }
        other => Err(parse_error(format!(
            "the root element {{{ns}}}{other} is not HTMLQuestion, ExternalQuestion or QuestionForm in its schema namespace"
        ))),
    }
}

/// Checks an enum-valued list member such as EventTypes.
pub fn enum_list(name: &str, values: &[Value], allowed: &[&str]) -> ApiResult<Vec<String>> {
    values
        .iter()
        .map(|v| match v.as_str() {
            Some(s) if allowed.contains(&s) => Ok(s.to_owned()),
            Some(s) => Err(enum_error(name, s, allowed)),
            None => Err(ApiError::serialization(format!("{name} must hold strings"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reqs(v: Value) -> ApiResult<Vec<Requirement>> {
        parse_requirements(v.as_array())
    }

    #[test]
    fn requirement_rules() {
        assert!(reqs(json!([{"QualificationTypeId": LOCALE_QUAL, "Comparator": "In", "LocaleValues": [{"Country":"US"},{"Country":"US","Subdivision":"WA"}]}])).is_ok());
        assert!(reqs(json!([{"QualificationTypeId": LOCALE_QUAL, "Comparator": "GreaterThan", "LocaleValues": [{"Country":"US"}]}])).is_err());
        assert!(reqs(json!([{"QualificationTypeId": APPROVAL_RATE_QUAL, "Comparator": "Exists", "IntegerValues": [1]}])).is_err());
        assert!(reqs(json!([{"QualificationTypeId": APPROVAL_RATE_QUAL, "Comparator": "GreaterThan", "IntegerValues": [1, 2]}])).is_err());
        assert!(reqs(json!([{"QualificationTypeId": APPROVAL_RATE_QUAL, "Comparator": "In", "IntegerValues": (0..16).collect::<Vec<_>>()}])).is_err());
        assert!(reqs(json!([{"QualificationTypeId": APPROVAL_RATE_QUAL, "Comparator": "In", "IntegerValues": (0..15).collect::<Vec<_>>()}])).is_ok());
        assert!(reqs(json!([{"QualificationTypeId": APPROVAL_RATE_QUAL, "Comparator": "EqualTo", "LocaleValues": [{"Country":"US"}]}])).is_err());
        assert!(reqs(json!([{"QualificationTypeId": LOCALE_QUAL, "Comparator": "EqualTo", "IntegerValues": [1]}])).is_err());
        let eleven: Vec<Value> = (0..11)
            .map(|_| json!({"QualificationTypeId": ADULT_QUAL, "Comparator": "Exists"}))
            .collect();
        assert!(reqs(Value::from(eleven)).is_err());
    }

    #[test]
    fn question_documents() {
        let html = format!(
            "<HTMLQuestion xmlns=\"{HTML_QUESTION_NS}\"><HTMLContent><![CDATA[<crowd-form></crowd-form>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"
        );
        assert_eq!(
            check_question(&html),
            Ok(QuestionKind::Html { crowd_form: true })
        );
        let no_height = format!(
            "<HTMLQuestion xmlns=\"{HTML_QUESTION_NS}\"><HTMLContent>x</HTMLContent></HTMLQuestion>"
        );
        assert!(check_question(&no_height).is_err());
        let wrong_ns = "<HTMLQuestion xmlns=\"urn:x\"><HTMLContent>x</HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>";
        assert!(check_question(wrong_ns).is_err());
        let http = format!(
            "<ExternalQuestion xmlns=\"{EXTERNAL_QUESTION_NS}\"><ExternalURL>http://x.org</ExternalURL><FrameHeight>400</FrameHeight></ExternalQuestion>"
        );
        assert!(
            matches!(check_question(&http), Err(ApiError::Request { turk_code, .. }) if turk_code.ends_with("InvalidParameterValue"))
        );
        assert!(
            matches!(check_question("<oops"), Err(ApiError::Request { turk_code, .. }) if turk_code.ends_with("XMLParseError"))
        );
    }
}
