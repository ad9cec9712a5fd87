//! Every campaign in `campaigns/` and `examples/` loads, and every question renders to
//! well-formed XML of the right kind.

use turkform_model::{Question, Target};

use crate::support::{in_dir, options, repo_root};

/// Loads `dir` at the fixed test instant (no test depends on today's date) and checks every
/// question.
fn check_folder(dir: &str) -> usize {
    let o = options(dir, Target::Sim);
    let state = in_dir(&repo_root(), || turkform_spec::load_project(&o))
        .unwrap_or_else(|d| panic!("{dir} does not validate:\n{d}"));
    assert!(!state.campaigns.is_empty(), "{dir} has no campaigns");
    for c in &state.campaigns {
        assert!(!c.items.is_empty(), "{} has no items", c.name);
        assert_eq!(c.hit_type_hash, c.hit_type.definition_hash());
        for item in &c.items {
            assert_eq!(item.content_hash, item.question.content_hash());
            let Question::Xml { xml } = &item.question else {
                continue;
            };
            let doc = roxmltree::Document::parse(xml)
                .unwrap_or_else(|e| panic!("{}/{}: {e}", c.name, item.key));
            let root = doc.root_element();
            let ns = root.tag_name().namespace().unwrap_or_default();
            match root.tag_name().name() {
                "HTMLQuestion" => {
                    assert_eq!(ns, turkform_spec::HTML_QUESTION_NS);
                    assert!(xml.contains("<HTMLContent><![CDATA["), "{xml}");
                    assert!(root.children().any(|n| n.has_tag_name("FrameHeight")));
                }
                "ExternalQuestion" => assert_eq!(ns, turkform_spec::EXTERNAL_QUESTION_NS),
                "QuestionForm" => assert_eq!(ns, turkform_spec::QUESTION_FORM_NS),
                other => panic!("unexpected root {other}"),
            }
        }
    }
    state.campaigns.len()
}

#[test]
fn demo_campaigns_load_and_render() {
    assert!(check_folder("campaigns") >= 2);
}

#[test]
fn examples_load_and_render() {
    assert!(check_folder("examples") >= 4);
    let o = options("examples", Target::Sim);
    let state = in_dir(&repo_root(), || turkform_spec::load_project(&o)).unwrap();
    let kinds: Vec<&str> = state
        .campaigns
        .iter()
        .map(|c| match &c.items[0].question {
            Question::Layout { .. } => "layout",
            Question::Xml { xml } if xml.starts_with("<HTMLQuestion") => "html",
            Question::Xml { xml } if xml.starts_with("<ExternalQuestion") => "external",
            Question::Xml { .. } => "form",
        })
        .collect();
    for kind in ["layout", "html", "external", "form"] {
        assert!(kinds.contains(&kind), "no example uses {kind}: {kinds:?}");
    }
    assert!(state.campaigns.iter().any(|c| c.assignments >= 10));
    assert!(state.campaigns.iter().any(|c| c.hit_type.uses_masters()));
    assert!(state.qualification_types.len() >= 2);
    assert!(
        state
            .campaigns
            .iter()
            .any(|c| c.hit_type.qualifications.iter().any(|q| matches!(
                q.qualification_type,
                turkform_model::QualificationTypeRef::Custom(_)
            )))
    );
}

/// The binary validates these folders with the real clock, and `ends_at` must lie within 365
/// days of it: a fixed `ends_at` in a shipped campaign would fail the suite once the date comes
/// close (an example once had `ends_at = 2027-09-30`). Relative lifetimes only.
#[test]
fn no_shipped_campaign_depends_on_the_date() {
    for dir in ["campaigns", "examples"] {
        let o = options(dir, Target::Sim);
        let state = in_dir(&repo_root(), || turkform_spec::load_project(&o)).unwrap();
        for c in &state.campaigns {
            assert!(
                matches!(c.lifetime, turkform_model::Lifetime::Duration(_)),
                "{dir}/{}: use `lifetime`, not a fixed `ends_at`",
                c.name
            );
        }
    }
}
