//! Every campaign in `campaigns/` and `examples/` loads, and every question renders to
//! well-formed XML of the right kind.

use turkform_model::{Question, Target};

use crate::support::{in_dir, options, repo_root};

fn check_folder(dir: &str) -> usize {
    let state = in_dir(&repo_root(), || {
        turkform_spec::load_project(&options(dir, Target::Sim))
    })
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
