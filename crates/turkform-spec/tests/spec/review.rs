//! A campaign with every review table: what the files say arrives in `DesiredReview`.

use std::path::Path;

use turkform_model::{Money, ReviewGoal, Verdict};

use crate::support::{in_dir, options};

#[test]
fn a_marked_results_export_gold_and_bonuses_load_into_the_desired_review() {
    let state = in_dir(Path::new(env!("CARGO_MANIFEST_DIR")), || {
        turkform_spec::load_project(&options("tests/review-ok", turkform_model::Target::Sim))
    })
    .unwrap_or_else(|d| panic!("{d}"));
    let review = &state.campaigns[0].review;
    assert_eq!(review.approve_after_secs, Some(86_400));
    assert_eq!(review.goal, ReviewGoal::Submitted);
    let d: Vec<(&str, &Verdict, usize)> = review
        .decisions
        .iter()
        .map(|d| (d.assignment_id.as_str(), &d.verdict, d.line))
        .collect();
    assert_eq!(
        d,
        vec![
            ("A1", &Verdict::Approve { feedback: None }, 2),
            (
                "A2",
                &Verdict::Reject {
                    feedback: "Wrong label".into()
                },
                3
            ),
            (
                "A4",
                &Verdict::Approve {
                    feedback: Some("Thanks, great answer".into())
                },
                5
            ),
        ]
    );
    let k = review.known_answers.as_ref().unwrap();
    assert_eq!(k.min_answers, 2);
    assert_eq!((k.reject_below, k.approve_at_least), (Some(0.6), Some(0.8)));
    assert_eq!(k.gold["a1"]["color"], "red", "gold cells are trimmed");
    assert!(
        !k.gold["a2"].contains_key("color"),
        "an empty gold cell is not checked"
    );
    let b: Vec<(String, Money, usize)> = review
        .bonuses
        .iter()
        .map(|b| (b.identity(), b.amount, b.line))
        .collect();
    assert_eq!(
        b,
        vec![
            ("A1".into(), Money::from_cents(25), 2),
            ("A1/2".into(), Money::from_cents(100), 3)
        ]
    );
    assert_eq!(
        review.bonuses[0].file,
        Path::new("tests/review-ok/bonuses.csv")
    );
}
