//! `[[hit_type.qualifications]]` -> [`QualificationRequirement`]: built-in aliases resolved for
//! the target, custom type names kept as names, and MTurk's requirement rules checked here so
//! that a refused requirement is a diagnostic with a line number, not an API error mid-apply.

use std::collections::BTreeMap;
use std::path::PathBuf;

use turkform_model::{
    ActionsGuarded, Comparator, Locale, QualificationRequirement, QualificationTypeRef, Target,
    system,
};

use crate::countries::is_country;
use crate::diagnostic::did_you_mean;
use crate::toml_read::{FileDiagnostics, Table, list};

/// MTurk's limit on requirements per HIT type.
pub const MAX_REQUIREMENTS: usize = 10;
/// MTurk's limit on integer values for `In` / `NotIn`.
pub const MAX_IN_INTEGERS: usize = 15;
/// MTurk's limit on locale values for `In` / `NotIn`.
pub const MAX_IN_LOCALES: usize = 30;

/// The built-in aliases, in the order the documentation lists them.
pub const ALIASES: [&str; 5] = [
    "masters",
    "approved_hits",
    "approval_rate",
    "locale",
    "adult",
];

const REQUIREMENT_KEYS: [&str; 6] = ["type", "comparator", "value", "values", "locales", "guard"];

/// What kind of qualification a requirement is about, which decides the rules that apply.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Masters,
    ApprovedHits,
    ApprovalRate,
    Locale,
    Adult,
    Custom(String),
    Raw(String),
}

/// The id a built-in alias stands for on `target`.
pub fn resolve_alias(alias: &str, target: Target) -> Option<&'static str> {
    Some(match alias {
        "masters" => target.masters_id(),
        "approved_hits" => system::NUMBER_HITS_APPROVED,
        "approval_rate" => system::PERCENT_ASSIGNMENTS_APPROVED,
        "locale" => system::LOCALE,
        "adult" => system::ADULT,
        _ => return None,
    })
}

fn is_entity_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Custom qualification types declared anywhere in the project: name -> declaring file.
pub(crate) type CustomTypes = BTreeMap<String, PathBuf>;

fn resolve_kind(
    r: &mut FileDiagnostics<'_>,
    name: &str,
    at: usize,
    target: Target,
    custom: &CustomTypes,
) -> Option<Kind> {
    let kind = match name {
        "masters" => Kind::Masters,
        "approved_hits" => Kind::ApprovedHits,
        "approval_rate" => Kind::ApprovalRate,
        "locale" => Kind::Locale,
        "adult" => Kind::Adult,
        _ if custom.contains_key(name) => Kind::Custom(name.to_owned()),
        _ if is_entity_id(name) => {
            match name {
                system::LOCALE => Kind::Locale,
                system::NUMBER_HITS_APPROVED => Kind::ApprovedHits,
                system::PERCENT_ASSIGNMENTS_APPROVED => Kind::ApprovalRate,
                system::ADULT => Kind::Adult,
                id if id == target.masters_id() => Kind::Masters,
                id @ (system::MASTERS_SANDBOX | system::MASTERS_PRODUCTION) => {
                    // The classic mistake: Masters ids differ per environment.
                    let meant_for = if id == system::MASTERS_SANDBOX {
                        "sandbox"
                    } else {
                        "production"
                    };
                    r.error(
                    at,
                    format!("`{id}` is the {meant_for} Masters id, but the target is `{target}`"),
                    Some("write `type = \"masters\"`: turkform picks the right id for each target".into()),
                );
                    return None;
                }
                id => Kind::Raw(id.to_owned()),
            }
        }
        _ => {
            let known = ALIASES
                .iter()
                .copied()
                .chain(custom.keys().map(String::as_str));
            let hint = match did_you_mean(name, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "use a built-in alias ({}), the name of a `[qualification_types.NAME]` declared in any campaign, or a QualificationTypeId (upper-case letters and digits)",
                    list(&ALIASES)
                ),
            };
            r.error(
                at,
                format!("unknown qualification type `{name}`"),
                Some(hint),
            );
            return None;
        }
    };
    Some(kind)
}

/// Parses a locale value: `US` or `US-WA`.
fn parse_locale(s: &str) -> Result<Locale, (String, String)> {
    let (country, subdivision) = match s.split_once('-') {
        Some((c, sub)) => (c, Some(sub)),
        None => (s, None),
    };
    let upper = s.to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err((
            format!("`{s}` is not a locale"),
            "write an ISO 3166-1 country code (`US`) or a country and subdivision (`US-WA`)".into(),
        ));
    }
    if !country.bytes().all(|b| b.is_ascii_uppercase())
        || subdivision.is_some_and(|sub| sub.bytes().any(|b| b.is_ascii_lowercase()))
    {
        return Err((
            format!("locale `{s}` must be upper case"),
            format!("write `{upper}`"),
        ));
    }
    if !is_country(country) {
        let hint = if country == "UK" {
            "the ISO code of the United Kingdom is `GB`".to_owned()
        } else {
            "use an ISO 3166-1 alpha-2 country code, such as `US`, `GB`, `IN` or `DE`".to_owned()
        };
        return Err((
            format!("`{country}` is not an ISO 3166-1 country code"),
            hint,
        ));
    }
    if let Some(sub) = subdivision
        && (sub.len() != 2
            || !sub
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
    {
        return Err((
            format!("`{s}` has a malformed subdivision"),
            format!(
                "write the country, a dash and the two-character ISO 3166-2 subdivision, like `{country}-WA`"
            ),
        ));
    }
    Ok(Locale {
        country: country.to_owned(),
        subdivision: subdivision.map(str::to_owned),
    })
}

/// Reads and checks one `[[hit_type.qualifications]]` table.
pub(crate) fn parse_requirement(
    r: &mut FileDiagnostics<'_>,
    t: &Table<'_, '_>,
    target: Target,
    custom: &CustomTypes,
) -> Option<QualificationRequirement> {
    t.check_keys(r, &REQUIREMENT_KEYS, &[]);
    let type_hint = "set `type` to a built-in alias (`masters`, `approved_hits`, `approval_rate`, `locale`, `adult`), a custom type's name or a QualificationTypeId";
    let (type_name, type_span) = t.req_str(r, "type", Some(type_hint))?;
    let kind = resolve_kind(r, type_name, type_span.start, target, custom);

    let comparator = match t.str(r, "comparator", None) {
        Some((c, span)) => match Comparator::parse(c) {
            Some(c) => Some((c, span.start)),
            None => {
                let names: Vec<&str> = Comparator::ALL.iter().map(|c| c.short_name()).collect();
                r.error(
                    span.start,
                    format!("unknown comparator `{c}`"),
                    Some(format!(
                        "use one of {} (or MTurk's names, like `GreaterThanOrEqualTo`)",
                        list(&names)
                    )),
                );
                return None;
            }
        },
        None if t.has("comparator") => return None,
        None => match kind {
            // Masters is held or not; adult is `== 1` by definition. Everything else must say.
            Some(Kind::Masters) => Some((Comparator::Exists, t.at)),
            Some(Kind::Adult) => Some((Comparator::EqualTo, t.at)),
            _ => {
                t.missing(r, "comparator", Some("use one of `<`, `<=`, `>`, `>=`, `==`, `!=`, `exists`, `not_exists`, `in`, `not_in`".into()));
                None
            }
        },
    };

    let guard = match t.str(r, "guard", None) {
        Some((g, span)) => match ActionsGuarded::parse(g) {
            Some(g) => Some(g),
            None => {
                r.error(
                    span.start,
                    format!("unknown guard `{g}`"),
                    Some(
                        "use `accept`, `preview_and_accept` or `discover_preview_and_accept`"
                            .into(),
                    ),
                );
                None
            }
        },
        None => None,
    };

    let value = t.int(r, "value");
    let values = t.int_list(r, "values");
    let locales = t.str_list(r, "locales");
    let (kind, (comparator, comparator_at)) = (kind?, comparator?);
    let c = comparator.short_name();
    let mut ok = true;

    if comparator.takes_no_value() {
        for key in ["value", "values", "locales"] {
            if let Some(span) = t.span_of(key) {
                r.error(
                    span.start,
                    format!("comparator `{c}` takes no value, but `{key}` is set"),
                    Some(format!(
                        "remove `{key}`, or use a comparator that compares values"
                    )),
                );
                ok = false;
            }
        }
    }

    let mut locale_values = Vec::new();
    let mut integer_values = Vec::new();
    if kind == Kind::Locale {
        for key in ["value", "values"] {
            if let Some(span) = t.span_of(key) {
                r.error(
                    span.start,
                    format!("the `locale` type compares locales: use `locales`, not `{key}`"),
                    Some("write `locales = [\"US\", \"US-WA\"]`".into()),
                );
                ok = false;
            }
        }
        if !comparator.takes_no_value() {
            if !comparator.allowed_with_locales() {
                r.error(
                    comparator_at,
                    format!("comparator `{c}` cannot compare locales"),
                    Some("use `==`, `!=`, `in` or `not_in` with `locales`".into()),
                );
                ok = false;
            }
            match &locales {
                // `value(s)` given instead is reported above; one mistake, one message.
                None if !t.has("locales") && !t.has("value") && !t.has("values") => {
                    t.missing(r, "locales", Some("write `locales = [\"US\"]`".into()));
                    ok = false;
                }
                None => ok = false,
                Some((list, span)) => {
                    if comparator.takes_many_values() {
                        if list.is_empty() || list.len() > MAX_IN_LOCALES {
                            r.error(
                                span.start,
                                format!("`{c}` takes 1 to {MAX_IN_LOCALES} locales, found {}", list.len()),
                                Some("MTurk refuses longer lists; split the campaign or use `not_in` for the few you exclude".into()),
                            );
                            ok = false;
                        }
                    } else if list.len() != 1 && comparator.allowed_with_locales() {
                        r.error(
                            span.start,
                            format!(
                                "`{c}` compares with exactly one locale, found {}",
                                list.len()
                            ),
                            Some(format!(
                                "use `{}` to match any of several locales",
                                if comparator == Comparator::EqualTo {
                                    "in"
                                } else {
                                    "not_in"
                                }
                            )),
                        );
                        ok = false;
                    }
                    for (s, span) in list {
                        match parse_locale(s) {
                            Ok(l) => locale_values.push(l),
                            Err((msg, hint)) => {
                                r.error(span.start, msg, Some(hint));
                                ok = false;
                            }
                        }
                    }
                }
            }
        }
    } else {
        if let Some(span) = t.span_of("locales") {
            r.error(
                span.start,
                "`locales` can only be used with `type = \"locale\"`",
                Some("compare other qualifications with `value` or `values`".into()),
            );
            ok = false;
        }
        if !comparator.takes_no_value() {
            if value.is_some() && values.is_some() {
                r.error(
                    t.span_of("values").map_or(t.at, |s| s.start),
                    "set either `value` or `values`, not both",
                    None,
                );
                ok = false;
            }
            let mut given: Vec<(i64, usize)> = Vec::new();
            if let Some((v, span)) = &value {
                given.push((*v, span.start));
            }
            if let Some((list, _)) = &values {
                given.extend(list.iter().map(|(v, s)| (*v, s.start)));
            }
            let list_at = values
                .as_ref()
                .map(|(_, s)| s.start)
                .or(value.as_ref().map(|(_, s)| s.start));
            if value.is_none() && values.is_none() {
                if !(t.has("value") || t.has("values") || t.has("locales")) {
                    if kind == Kind::Adult {
                        given.push((1, t.at));
                    } else {
                        let key = if comparator.takes_many_values() {
                            "values"
                        } else {
                            "value"
                        };
                        t.missing(
                            r,
                            key,
                            Some(format!(
                                "comparator `{c}` compares with {}",
                                if comparator.takes_many_values() {
                                    "a list: `values = [1, 2]`"
                                } else {
                                    "one integer: `value = 95`"
                                }
                            )),
                        );
                        ok = false;
                    }
                } else {
                    ok = false;
                }
            } else if comparator.takes_many_values() {
                if given.is_empty() || given.len() > MAX_IN_INTEGERS {
                    r.error(
                        list_at.unwrap_or(t.at),
                        format!(
                            "`{c}` takes 1 to {MAX_IN_INTEGERS} integer values, found {}",
                            given.len()
                        ),
                        Some(
                            "MTurk refuses longer lists; use `<` / `>` comparisons for ranges"
                                .into(),
                        ),
                    );
                    ok = false;
                }
            } else if given.len() != 1 {
                r.error(
                    list_at.unwrap_or(t.at),
                    format!(
                        "`{c}` compares with exactly one value, found {}",
                        given.len()
                    ),
                    Some(format!(
                        "write `value = N`, or use `{}` to match any of several values",
                        if comparator == Comparator::NotEqualTo {
                            "not_in"
                        } else {
                            "in"
                        }
                    )),
                );
                ok = false;
            }
            for (v, at) in &given {
                let range_problem = match kind {
                    Kind::ApprovalRate if !(0..=100).contains(v) => {
                        Some("`approval_rate` is a percentage: use a value from 0 to 100")
                    }
                    Kind::ApprovedHits if *v < 0 => {
                        Some("`approved_hits` counts HITs: use a value of 0 or more")
                    }
                    Kind::Adult if *v != 1 => Some(
                        "`adult` is 1 for workers who agreed to see adult content: use `value = 1`",
                    ),
                    _ => None,
                };
                if let Some(hint) = range_problem {
                    r.error(
                        *at,
                        format!("value `{v}` is out of range"),
                        Some(hint.into()),
                    );
                    ok = false;
                } else if let Ok(v) = i32::try_from(*v) {
                    integer_values.push(v);
                } else {
                    r.error(
                        *at,
                        format!("value `{v}` does not fit MTurk's 32-bit integers"),
                        None,
                    );
                    ok = false;
                }
            }
        }
    }

    match kind {
        Kind::Masters if comparator != Comparator::Exists => {
            r.error(
                comparator_at,
                format!("Masters can only be required with `exists`, not `{c}`"),
                Some("a worker holds Masters or not: write `comparator = \"exists\"` or leave `comparator` out".into()),
            );
            ok = false;
        }
        Kind::Adult if comparator != Comparator::EqualTo => {
            r.error(
                comparator_at,
                format!("`adult` can only be required with `==`, not `{c}`"),
                Some("leave `comparator` out: `type = \"adult\"` means `== 1`; put \"adult content\" in the title and guard with `preview_and_accept`".into()),
            );
            ok = false;
        }
        _ => {}
    }
    if !ok {
        return None;
    }

    let qualification_type = match kind {
        Kind::Custom(name) => QualificationTypeRef::Custom(name),
        Kind::Raw(id) => QualificationTypeRef::Id(id),
        Kind::Masters => QualificationTypeRef::Id(target.masters_id().to_owned()),
        Kind::ApprovedHits => QualificationTypeRef::Id(system::NUMBER_HITS_APPROVED.to_owned()),
        Kind::ApprovalRate => {
            QualificationTypeRef::Id(system::PERCENT_ASSIGNMENTS_APPROVED.to_owned())
        }
        Kind::Locale => QualificationTypeRef::Id(system::LOCALE.to_owned()),
        Kind::Adult => QualificationTypeRef::Id(system::ADULT.to_owned()),
    };
    Some(QualificationRequirement {
        qualification_type,
        comparator,
        integer_values,
        locale_values,
        actions_guarded: guard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_resolves_per_target() {
        assert_eq!(
            resolve_alias("masters", Target::Sandbox),
            Some(system::MASTERS_SANDBOX)
        );
        assert_eq!(
            resolve_alias("masters", Target::Sim),
            Some(system::MASTERS_SANDBOX)
        );
        assert_eq!(
            resolve_alias("masters", Target::Production),
            Some(system::MASTERS_PRODUCTION)
        );
        for t in Target::ALL {
            assert_eq!(resolve_alias("locale", t), Some(system::LOCALE));
            assert_eq!(
                resolve_alias("approval_rate", t),
                Some(system::PERCENT_ASSIGNMENTS_APPROVED)
            );
            assert_eq!(
                resolve_alias("approved_hits", t),
                Some(system::NUMBER_HITS_APPROVED)
            );
            assert_eq!(resolve_alias("adult", t), Some(system::ADULT));
        }
        assert_eq!(resolve_alias("nope", Target::Sim), None);
    }

    #[test]
    fn locales_accept_countries_and_subdivisions() {
        assert_eq!(parse_locale("US").unwrap().to_string(), "US");
        assert_eq!(parse_locale("US-WA").unwrap().to_string(), "US-WA");
        assert!(parse_locale("UK").is_err());
        assert!(parse_locale("us").is_err());
        assert!(parse_locale("US-WASH").is_err());
        assert!(parse_locale("USA").is_err());
    }
}
