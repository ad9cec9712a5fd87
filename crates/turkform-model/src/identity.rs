//! How turkform names its work on MTurk so that it can always find it again: deterministic
//! `UniqueRequestToken`s (MTurk deduplicates on them for 24 h) and a `RequesterAnnotation` on
//! every HIT (which outlives the token and lets refresh adopt HITs state does not know).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Target;

/// The `UniqueRequestToken` of one mutating call: 64 hex characters of
/// sha256(target, campaign, item key, action, generation). The same call always gets the same
/// token, so a resend after a crash or a lost response is deduplicated by MTurk.
///
/// `action` must name everything that makes two calls different: `"create"`, or
/// `"add-assignments:7"` (the new total, so that raising 3 -> 5 and later 5 -> 7 are two calls).
pub fn request_token(
    target: Target,
    campaign: &str,
    item_key: &str,
    action: &str,
    generation: u32,
) -> String {
    project_request_token(None, target, campaign, item_key, action, generation)
}

/// [`request_token`] of a project with an identity (`project` in `turkform.toml`): two
/// projects on one account with equal campaign names and keys never share a token, so MTurk
/// never answers one project's create with the other's HIT. Without one, the token is the
/// one turkform always made.
pub fn project_request_token(
    project: Option<&str>,
    target: Target,
    campaign: &str,
    item_key: &str,
    action: &str,
    generation: u32,
) -> String {
    let mut h = Sha256::new();
    let generation = generation.to_string();
    let mut parts = vec![
        "turkform-token/v1",
        target.as_str(),
        campaign,
        item_key,
        action,
        &generation,
    ];
    if let Some(p) = project {
        parts.push("project");
        parts.push(p);
    }
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The item a HIT belongs to, as written in its `RequesterAnnotation`:
/// `turkform:2:<project>:<campaign>:<generation>:k:<item key>` for a project with an identity,
/// `turkform:1:<campaign>:<generation>:k:<item key>` for one without (and for every HIT made
/// before projects had one); `...:h:<sha256 of key>` when the key would push the annotation past
/// MTurk's 255 characters. Only what the requester put in the key (or a hash of it) is revealed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Annotation {
    /// The project identity (`project` in `turkform.toml`); `None` in the old format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub campaign: String,
    pub generation: u32,
    pub key: AnnotatedKey,
}

/// The item key as carried by an annotation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum AnnotatedKey {
    Plain(String),
    /// sha256 hex of the key.
    Hashed(String),
}

const PREFIX: &str = "turkform:1:";
const PROJECT_PREFIX: &str = "turkform:2:";
/// MTurk's limit on `RequesterAnnotation`.
pub const MAX_ANNOTATION_CHARS: usize = 255;

impl Annotation {
    pub fn new(campaign: &str, item_key: &str, generation: u32) -> Annotation {
        Annotation::of_project(None, campaign, item_key, generation)
    }

    /// The annotation of a HIT made by `project` (`None`: a project without an identity).
    pub fn of_project(
        project: Option<&str>,
        campaign: &str,
        item_key: &str,
        generation: u32,
    ) -> Annotation {
        let plain = Annotation {
            project: project.map(str::to_owned),
            campaign: campaign.to_owned(),
            generation,
            key: AnnotatedKey::Plain(item_key.to_owned()),
        };
        if plain.render().chars().count() <= MAX_ANNOTATION_CHARS {
            return plain;
        }
        Annotation {
            key: AnnotatedKey::Hashed(hash_key(item_key)),
            ..plain
        }
    }

    /// The `RequesterAnnotation` string.
    pub fn render(&self) -> String {
        let (tag, value) = match &self.key {
            AnnotatedKey::Plain(k) => ("k", k.as_str()),
            AnnotatedKey::Hashed(h) => ("h", h.as_str()),
        };
        match &self.project {
            Some(p) => format!(
                "{PROJECT_PREFIX}{p}:{}:{}:{tag}:{value}",
                self.campaign, self.generation
            ),
            None => format!(
                "{PREFIX}{}:{}:{tag}:{value}",
                self.campaign, self.generation
            ),
        }
    }

    /// Whether `project` may adopt the HIT carrying this annotation: one of another project
    /// never; an old-format one (made before projects had an identity) always, so that a project
    /// that lost its state re-adopts what it posted before it had an identity.
    pub fn belongs_to(&self, project: Option<&str>) -> bool {
        match (&self.project, project) {
            (None, _) => true,
            (Some(mine), Some(ours)) => mine == ours,
            (Some(_), None) => false,
        }
    }

    /// Reads an annotation turkform wrote; `None` for any other annotation.
    pub fn parse(s: &str) -> Option<Annotation> {
        let (project, rest) = match s.strip_prefix(PROJECT_PREFIX) {
            Some(rest) => {
                let (project, rest) = rest.split_once(':')?;
                if project.is_empty() {
                    return None;
                }
                (Some(project.to_owned()), rest)
            }
            None => (None, s.strip_prefix(PREFIX)?),
        };
        let mut parts = rest.splitn(4, ':');
        let campaign = parts.next()?;
        let generation = parts.next()?.parse().ok()?;
        let tag = parts.next()?;
        let value = parts.next()?;
        if campaign.is_empty() || value.is_empty() {
            return None;
        }
        let key = match tag {
            "k" => AnnotatedKey::Plain(value.to_owned()),
            "h" if value.len() == 64 => AnnotatedKey::Hashed(value.to_owned()),
            _ => return None,
        };
        Some(Annotation {
            project,
            campaign: campaign.to_owned(),
            generation,
            key,
        })
    }

    /// Whether this annotation names `item_key`.
    pub fn matches_key(&self, item_key: &str) -> bool {
        match &self.key {
            AnnotatedKey::Plain(k) => k == item_key,
            AnnotatedKey::Hashed(h) => *h == hash_key(item_key),
        }
    }
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_and_distinguish_every_part() {
        let t = request_token(Target::Sim, "c", "k", "create", 1);
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(t, request_token(Target::Sim, "c", "k", "create", 1));
        for other in [
            request_token(Target::Sandbox, "c", "k", "create", 1),
            request_token(Target::Sim, "c2", "k", "create", 1),
            request_token(Target::Sim, "c", "k2", "create", 1),
            request_token(Target::Sim, "c", "k", "add-assignments:5", 1),
            request_token(Target::Sim, "c", "k", "create", 2),
            // No ambiguity from concatenation.
            request_token(Target::Sim, "ck", "", "create", 1),
        ] {
            assert_ne!(t, other);
        }
    }

    #[test]
    fn annotations_round_trip_and_stay_within_255_chars() {
        let a = Annotation::new("street-objects", "img:0001", 2);
        assert_eq!(a.render(), "turkform:1:street-objects:2:k:img:0001");
        assert_eq!(Annotation::parse(&a.render()), Some(a.clone()));
        assert!(a.matches_key("img:0001"));

        let long_key = "x".repeat(400);
        let b = Annotation::new("c", &long_key, 1);
        assert!(matches!(b.key, AnnotatedKey::Hashed(_)));
        assert!(b.render().len() <= MAX_ANNOTATION_CHARS);
        assert!(
            Annotation::parse(&b.render())
                .unwrap()
                .matches_key(&long_key)
        );

        assert_eq!(Annotation::parse("batch 7 by hand"), None);
    }

    #[test]
    fn project_annotations_round_trip_and_keep_to_their_project() {
        let a = Annotation::of_project(Some("p-1a2b"), "shared", "k:1", 2);
        assert_eq!(a.render(), "turkform:2:p-1a2b:shared:2:k:k:1");
        assert_eq!(Annotation::parse(&a.render()), Some(a.clone()));
        assert!(a.belongs_to(Some("p-1a2b")));
        assert!(!a.belongs_to(Some("p-other")));
        assert!(!a.belongs_to(None));
        let old = Annotation::parse("turkform:1:shared:2:k:k:1").unwrap();
        assert_eq!(old.project, None);
        assert!(old.belongs_to(Some("p-1a2b")) && old.belongs_to(None));
        assert_eq!(Annotation::parse("turkform:2::shared:1:k:x"), None);
        assert_ne!(
            project_request_token(Some("a"), Target::Sim, "c", "k", "create", 1),
            project_request_token(Some("b"), Target::Sim, "c", "k", "create", 1)
        );
        assert_eq!(
            project_request_token(None, Target::Sim, "c", "k", "create", 1),
            request_token(Target::Sim, "c", "k", "create", 1)
        );
    }
}
