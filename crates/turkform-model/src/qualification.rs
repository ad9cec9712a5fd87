//! Qualification requirements as MTurk understands them, with custom types still named (they
//! get their ids only when apply creates them).

use serde::{Deserialize, Serialize};

/// Ids of MTurk's system qualification types.
pub mod system {
    pub const MASTERS_SANDBOX: &str = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6";
    pub const MASTERS_PRODUCTION: &str = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH";
    pub const NUMBER_HITS_APPROVED: &str = "00000000000000000040";
    pub const LOCALE: &str = "00000000000000000071";
    pub const ADULT: &str = "00000000000000000060";
    pub const PERCENT_ASSIGNMENTS_APPROVED: &str = "000000000000000000L0";

    /// Whether `id` is one of the Masters ids (any target, including category Masters).
    pub fn is_masters(id: &str) -> bool {
        matches!(
            id,
            MASTERS_SANDBOX
                | MASTERS_PRODUCTION
                | "2F1KVCNHMVHV8E9PBUB2A4J79LU20F"
                | "2TGBB6BFMFFOM08IBMAFGGESC1UWJX"
                | "2NDP2L92HECWY8NS8H3CK0CP5L9GHO"
                | "21VZU98JHSTLZ5BPP4A9NOBJEK3DPG"
        )
    }
}

/// MTurk's `Comparator` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparator {
    LessThan,
    LessThanOrEqualTo,
    GreaterThan,
    GreaterThanOrEqualTo,
    EqualTo,
    NotEqualTo,
    Exists,
    DoesNotExist,
    In,
    NotIn,
}

impl Comparator {
    pub const ALL: [Comparator; 10] = [
        Comparator::LessThan,
        Comparator::LessThanOrEqualTo,
        Comparator::GreaterThan,
        Comparator::GreaterThanOrEqualTo,
        Comparator::EqualTo,
        Comparator::NotEqualTo,
        Comparator::Exists,
        Comparator::DoesNotExist,
        Comparator::In,
        Comparator::NotIn,
    ];

    /// The wire name (`GreaterThanOrEqualTo`).
    pub fn api_name(self) -> &'static str {
        match self {
            Comparator::LessThan => "LessThan",
            Comparator::LessThanOrEqualTo => "LessThanOrEqualTo",
            Comparator::GreaterThan => "GreaterThan",
            Comparator::GreaterThanOrEqualTo => "GreaterThanOrEqualTo",
            Comparator::EqualTo => "EqualTo",
            Comparator::NotEqualTo => "NotEqualTo",
            Comparator::Exists => "Exists",
            Comparator::DoesNotExist => "DoesNotExist",
            Comparator::In => "In",
            Comparator::NotIn => "NotIn",
        }
    }

    /// The short name campaign files use (`>=`, `in`, `exists`).
    pub fn short_name(self) -> &'static str {
        match self {
            Comparator::LessThan => "<",
            Comparator::LessThanOrEqualTo => "<=",
            Comparator::GreaterThan => ">",
            Comparator::GreaterThanOrEqualTo => ">=",
            Comparator::EqualTo => "==",
            Comparator::NotEqualTo => "!=",
            Comparator::Exists => "exists",
            Comparator::DoesNotExist => "not_exists",
            Comparator::In => "in",
            Comparator::NotIn => "not_in",
        }
    }

    /// Accepts the short name or MTurk's name.
    pub fn parse(s: &str) -> Option<Comparator> {
        Comparator::ALL
            .into_iter()
            .find(|c| c.short_name() == s || c.api_name() == s)
    }

    /// Exists / DoesNotExist take no value.
    pub fn takes_no_value(self) -> bool {
        matches!(self, Comparator::Exists | Comparator::DoesNotExist)
    }

    /// In / NotIn take a list of values.
    pub fn takes_many_values(self) -> bool {
        matches!(self, Comparator::In | Comparator::NotIn)
    }

    /// The comparators that may be used with locale values.
    pub fn allowed_with_locales(self) -> bool {
        matches!(
            self,
            Comparator::EqualTo | Comparator::NotEqualTo | Comparator::In | Comparator::NotIn
        )
    }
}

/// MTurk's `HITAccessActions`: what a worker who does not meet a requirement cannot do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionsGuarded {
    Accept,
    PreviewAndAccept,
    DiscoverPreviewAndAccept,
}

impl ActionsGuarded {
    pub fn api_name(self) -> &'static str {
        match self {
            ActionsGuarded::Accept => "Accept",
            ActionsGuarded::PreviewAndAccept => "PreviewAndAccept",
            ActionsGuarded::DiscoverPreviewAndAccept => "DiscoverPreviewAndAccept",
        }
    }

    /// The snake-case name campaign files use (`preview_and_accept`).
    pub fn short_name(self) -> &'static str {
        match self {
            ActionsGuarded::Accept => "accept",
            ActionsGuarded::PreviewAndAccept => "preview_and_accept",
            ActionsGuarded::DiscoverPreviewAndAccept => "discover_preview_and_accept",
        }
    }

    pub fn parse(s: &str) -> Option<ActionsGuarded> {
        [
            ActionsGuarded::Accept,
            ActionsGuarded::PreviewAndAccept,
            ActionsGuarded::DiscoverPreviewAndAccept,
        ]
        .into_iter()
        .find(|a| a.short_name() == s || a.api_name() == s)
    }
}

/// A worker locale: ISO 3166-1 country and optional ISO 3166-2 subdivision (`US`, `US-WA`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Locale {
    pub country: String,
    pub subdivision: Option<String>,
}

impl std::fmt::Display for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.subdivision {
            Some(s) => write!(f, "{}-{s}", self.country),
            None => f.write_str(&self.country),
        }
    }
}

/// Which qualification type a requirement is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum QualificationTypeRef {
    /// A type with a known id: a system type (aliases already resolved for the target) or a raw
    /// id the requester wrote.
    Id(String),
    /// A custom type declared in a campaign's `[qualification_types.NAME]`; apply creates it and
    /// substitutes its id.
    Custom(String),
}

/// One `QualificationRequirement` of a HIT type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QualificationRequirement {
    pub qualification_type: QualificationTypeRef,
    pub comparator: Comparator,
    /// Empty unless the comparator takes integer values.
    pub integer_values: Vec<i32>,
    /// Empty unless this is a `Worker_Locale` requirement.
    pub locale_values: Vec<Locale>,
    /// `None` means MTurk's default (`Accept`).
    pub actions_guarded: Option<ActionsGuarded>,
}
