//! The public API around `load_project`: `render_item`, `only`, the inputs digest, `init_project`.

use turkform_model::{Question, Target};

use crate::support::{in_dir, options, repo_root};

#[test]
fn render_item_renders_the_first_item_or_the_named_one() {
    in_dir(&repo_root(), || {
        let o = options("campaigns", Target::Sim);
        let first = turkform_spec::render_item(&o, "street-objects", None).unwrap();
        assert_eq!(
            (first.campaign.as_str(), first.key.as_str()),
            ("street-objects", "st-0001")
        );
        let named = turkform_spec::render_item(&o, "street-objects", Some("st-0008")).unwrap();
        let Question::Xml { xml } = &named.question else {
            panic!("xml expected")
        };
        // Values are HTML-escaped inside the CDATA section.
        assert!(xml.contains("Shops &amp; cafés"), "{xml}");

        let missing = turkform_spec::render_item(&o, "street-objects", Some("nope")).unwrap_err();
        assert!(
            missing.to_string().contains("has no item `nope`"),
            "{missing}"
        );
        let unknown = turkform_spec::render_item(&o, "street-object", None).unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("did you mean `street-objects`?"),
            "{unknown}"
        );
    });
}

#[test]
fn only_limits_the_campaigns_loaded_and_unknown_names_are_errors() {
    in_dir(&repo_root(), || {
        let mut o = options("campaigns", Target::Sim);
        o.only = vec!["product-survey".into()];
        let state = turkform_spec::load_project(&o).unwrap();
        assert_eq!(state.campaigns.len(), 1);
        assert_eq!(state.campaigns[0].name, "product-survey");
        o.only = vec!["nope".into()];
        let d = turkform_spec::load_project(&o).unwrap_err();
        assert_eq!(d.0[0].file.display().to_string(), "campaigns");
    });
}

#[test]
fn hashes_and_digest_are_stable_and_follow_the_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let src = repo_root().join("campaigns");
    let dst = dir.path().join("campaigns");
    for sub in ["", "templates", "data", "gold"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dst.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let load = |root: &std::path::Path| {
        in_dir(root, || {
            turkform_spec::load_project(&options("campaigns", Target::Sim)).unwrap()
        })
    };
    let a = load(&repo_root());
    let b = load(dir.path());
    // Same files elsewhere: same digest, same hashes.
    assert_eq!(a.inputs_digest, b.inputs_digest);
    assert_eq!(a, b);
    // One byte of data changes the digest and exactly one item's hash.
    let csv = dst.join("data/street-objects.csv");
    let text = std::fs::read_to_string(&csv)
        .unwrap()
        .replace("A crossing at dusk", "A crossing at dawn");
    std::fs::write(&csv, text).unwrap();
    let c = load(dir.path());
    assert_ne!(a.inputs_digest, c.inputs_digest);
    let changed: Vec<&str> = a.campaigns[1]
        .items
        .iter()
        .zip(&c.campaigns[1].items)
        .filter(|(x, y)| x.content_hash != y.content_hash)
        .map(|(x, _)| x.key.as_str())
        .collect();
    assert_eq!(changed, ["st-0001"]);
    assert_eq!(a.campaigns[1].hit_type_hash, c.campaigns[1].hit_type_hash);
}

#[test]
fn init_creates_a_valid_project_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let created = turkform_spec::init_project(dir.path(), "3f9c2a7d41b8").unwrap();
    assert_eq!(created.len(), 5);
    let settings = turkform_spec::load_settings(dir.path()).unwrap();
    assert_eq!(settings.target, Some(Target::Sandbox));
    assert_eq!(settings.project.as_deref(), Some("3f9c2a7d41b8"));
    let state = in_dir(dir.path(), || {
        turkform_spec::load_project(&options("campaigns", Target::Sandbox))
    })
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(state.campaigns[0].items.len(), 3);
    let again = turkform_spec::init_project(dir.path(), "3f9c2a7d41b8").unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
}

#[test]
fn the_repository_settings_target_the_simulator() {
    let s = turkform_spec::load_settings(&repo_root()).unwrap();
    assert_eq!(s.target, Some(Target::Sim));
    assert_eq!(s.apply.concurrency, 16);
}
