//! The broken corpus (`tests/broken/<case>/`): one deliberately wrong campaign folder per
//! rule. Each case's diagnostics are snapshotted as users see them, and the first one's file,
//! line, column and message are asserted explicitly (so a snapshot accepted in a hurry cannot
//! hide a diagnostic that moved).

use std::path::Path;

use turkform_model::Target;

use crate::support::{in_dir, options};

fn diagnostics(case: &str) -> turkform_spec::Diagnostics {
    let dir = format!("tests/broken/{case}");
    in_dir(Path::new(env!("CARGO_MANIFEST_DIR")), || {
        turkform_spec::load_project(&options(&dir, Target::Sim))
    })
    .err()
    .unwrap_or_else(|| panic!("case `{case}` loaded without errors"))
}

/// (case, file relative to the case folder, line, column, part of the message).
const CASES: &[(&str, &str, usize, usize, &str)] = &[
    (
        "syntax-error",
        "campaign.toml",
        2,
        23,
        "TOML syntax error: invalid basic string",
    ),
    (
        "unknown-key",
        "campaign.toml",
        2,
        1,
        "unknown key `titel` in [hit_type]",
    ),
    (
        "key-in-wrong-table",
        "campaign.toml",
        6,
        1,
        "unknown key `lifetime` in [hit_type]",
    ),
    (
        "missing-required-key",
        "campaign.toml",
        1,
        1,
        "missing required key `description` in [hit_type]",
    ),
    (
        "missing-layout",
        "campaign.toml",
        1,
        1,
        "missing required key `layout`",
    ),
    (
        "bad-money",
        "campaign.toml",
        4,
        10,
        "`ten cents` is not an amount of money",
    ),
    (
        "money-as-float",
        "campaign.toml",
        4,
        10,
        "`reward` must be a string such as \"0.12\", not a float",
    ),
    (
        "too-many-decimals",
        "campaign.toml",
        4,
        10,
        "`0.125` is not an amount of money",
    ),
    (
        "reward-below-minimum",
        "campaign.toml",
        4,
        10,
        "reward $0.00 is below MTurk's minimum",
    ),
    (
        "bad-duration",
        "campaign.toml",
        5,
        23,
        "`10 minutes` is not a duration",
    ),
    (
        "assignment-duration-out-of-range",
        "campaign.toml",
        5,
        23,
        "`assignment_duration` = \"10s\" is out of range",
    ),
    (
        "auto-approval-out-of-range",
        "campaign.toml",
        6,
        23,
        "`auto_approval_delay` = \"31d\" is out of range",
    ),
    (
        "lifetime-out-of-range",
        "campaign.toml",
        13,
        12,
        "`lifetime` = \"366d\" is out of range",
    ),
    (
        "title-too-long",
        "campaign.toml",
        2,
        9,
        "`title` is 130 characters long; MTurk allows at most 128",
    ),
    (
        "description-too-long",
        "campaign.toml",
        3,
        15,
        "`description` is 2050 characters long",
    ),
    (
        "keywords-too-long",
        "campaign.toml",
        6,
        12,
        "`keywords` is 1198 characters long",
    ),
    (
        "too-many-qualifications",
        "campaign.toml",
        57,
        1,
        "too many qualification requirements: 11",
    ),
    (
        "value-with-exists",
        "campaign.toml",
        10,
        9,
        "comparator `exists` takes no value, but `value` is set",
    ),
    (
        "two-values-with-equals",
        "campaign.toml",
        10,
        10,
        "`==` compares with exactly one value, found 2",
    ),
    (
        "too-many-integers-for-in",
        "campaign.toml",
        10,
        10,
        "`in` takes 1 to 15 integer values, found 16",
    ),
    (
        "too-many-locales-for-in",
        "campaign.toml",
        10,
        11,
        "`in` takes 1 to 30 locales, found 31",
    ),
    (
        "locales-with-non-locale-type",
        "campaign.toml",
        10,
        11,
        "`locales` can only be used with `type = \"locale\"`",
    ),
    (
        "locales-with-less-than",
        "campaign.toml",
        9,
        14,
        "comparator `<` cannot compare locales",
    ),
    (
        "values-with-locale-type",
        "campaign.toml",
        10,
        9,
        "the `locale` type compares locales: use `locales`, not `value`",
    ),
    (
        "bad-country-code",
        "campaign.toml",
        10,
        18,
        "`UK` is not an ISO 3166-1 country code",
    ),
    (
        "bad-subdivision",
        "campaign.toml",
        10,
        12,
        "`US-WASH` has a malformed subdivision",
    ),
    (
        "approval-rate-out-of-range",
        "campaign.toml",
        10,
        9,
        "value `101` is out of range",
    ),
    (
        "masters-with-comparator",
        "campaign.toml",
        9,
        14,
        "Masters can only be required with `exists`, not `>=`",
    ),
    (
        "masters-id-of-other-target",
        "campaign.toml",
        8,
        8,
        "is the production Masters id, but the target is `sim`",
    ),
    (
        "unknown-comparator",
        "campaign.toml",
        9,
        14,
        "unknown comparator `=>`",
    ),
    (
        "unknown-guard",
        "campaign.toml",
        11,
        9,
        "unknown guard `hide`",
    ),
    (
        "unknown-qualification-name",
        "campaign.toml",
        8,
        8,
        "unknown qualification type `street-trainde`",
    ),
    (
        "duplicate-qualification-type",
        "b.toml",
        15,
        22,
        "qualification type `street-trained` is declared twice",
    ),
    (
        "auto-granted-value-without-auto-granted",
        "campaign.toml",
        17,
        22,
        "`auto_granted_value` needs `auto_granted = true`",
    ),
    (
        "two-layout-kinds",
        "campaign.toml",
        9,
        1,
        "[layout] sets both `html` and `external_url`",
    ),
    (
        "no-layout-kind",
        "campaign.toml",
        7,
        1,
        "[layout] needs exactly one of",
    ),
    (
        "frame-height-with-question-form",
        "campaign.toml",
        9,
        16,
        "`frame_height` does not apply to `question_form`",
    ),
    (
        "bad-hit-layout-id",
        "campaign.toml",
        8,
        17,
        "`3mcdhxbq4z` is not a HITLayoutId",
    ),
    (
        "missing-template",
        "campaign.toml",
        8,
        8,
        "cannot read template `tests/broken/missing-template/templates/nope.html`",
    ),
    (
        "template-syntax-error",
        "templates/task.html",
        2,
        17,
        "template syntax error: unexpected `}`",
    ),
    (
        "external-url-template-error",
        "campaign.toml",
        8,
        63,
        "template syntax error: unexpected `}`",
    ),
    (
        "undefined-variable",
        "../shared/items.csv",
        2,
        1,
        "row 1 (`a1`): `item.image_url` is undefined (used by the template at tests/broken/undefined-variable/templates/task.html:2:14)",
    ),
    (
        "question-too-large",
        "../shared/items.csv",
        2,
        1,
        "row 1 (`a1`): the rendered question is 161218 bytes; MTurk allows at most 65535",
    ),
    (
        "malformed-question-xml",
        "../shared/items.csv",
        2,
        1,
        "row 1 (`a1`): the rendered question is not well-formed XML",
    ),
    (
        "question-form-wrong-root",
        "../shared/items.csv",
        2,
        1,
        "root element is `Question`, not a QuestionForm",
    ),
    (
        "http-external-url",
        "campaign.toml",
        8,
        16,
        "external URL `http://tasks.example.org/label?id={{ item.id }}` is not https",
    ),
    (
        "external-url-with-worker-id",
        "../shared/items.csv",
        2,
        1,
        "sets `workerId`",
    ),
    (
        "missing-data-file",
        "campaign.toml",
        11,
        10,
        "cannot read data file `tests/broken/missing-data-file/data/nope.csv`",
    ),
    (
        "unsupported-data-format",
        "campaign.toml",
        11,
        10,
        "`data/items.xlsx` is neither a .csv nor a .jsonl file",
    ),
    (
        "missing-key-column",
        "campaign.toml",
        12,
        7,
        "key column `ident` is not in `tests/broken/shared/items.csv`",
    ),
    (
        "assignments-too-large-for-an-integer",
        "campaign.toml",
        14,
        15,
        "`assignments` = 1180591620717411303424 is too large",
    ),
    (
        "duplicate-keys-equal-under-unicode-normalization",
        "data/items.csv",
        3,
        1,
        "duplicate key `cafe\u{301}`: rows 1 (line 2) and 2 both use it (written `caf\\u{e9}` and `cafe\\u{301}`: equal under Unicode normalization)",
    ),
    (
        "duplicate-keys",
        "data/items.csv",
        4,
        1,
        "duplicate key `a1`: rows 1 (line 2) and 3 both use it",
    ),
    (
        "empty-key",
        "data/items.csv",
        3,
        1,
        "row 2 has an empty key (`id`)",
    ),
    (
        "csv-row-with-wrong-field-count",
        "data/items.csv",
        3,
        1,
        "row 2 has 3 fields, but the header has 2",
    ),
    (
        "jsonl-invalid-line",
        "data/items.jsonl",
        2,
        33,
        "row 2 is not valid JSON",
    ),
    (
        "duplicate-campaign-names",
        "b.toml",
        1,
        8,
        "campaign name `photos` is used twice",
    ),
    (
        "ends-at-in-the-past",
        "campaign.toml",
        13,
        11,
        "`ends_at` = 2025-06-30T00:00:00Z is in the past",
    ),
    (
        "ends-at-too-far",
        "campaign.toml",
        13,
        11,
        "`ends_at` = 2027-06-30T00:00:00Z is more than 365 days away",
    ),
    (
        "both-lifetime-and-ends-at",
        "campaign.toml",
        14,
        1,
        "[items] sets both `lifetime` and `ends_at`",
    ),
    (
        "no-lifetime",
        "campaign.toml",
        10,
        1,
        "[items] needs `lifetime` or `ends_at`",
    ),
    (
        "assignments-out-of-range",
        "campaign.toml",
        14,
        15,
        "`assignments` = 0 is out of range",
    ),
    (
        "bad-campaign-name",
        "campaign.toml",
        1,
        8,
        "`Street Photos` is not a valid campaign name",
    ),
    (
        "bad-status",
        "campaign.toml",
        1,
        10,
        "unknown status `stopped`",
    ),
    (
        "review-unknown-key",
        "campaign.toml",
        16,
        1,
        "unknown key `decisons` in [review]",
    ),
    (
        "review-bad-approve-after",
        "campaign.toml",
        16,
        17,
        "`soon` is not a duration",
    ),
    (
        "known-answers-share-out-of-range",
        "campaign.toml",
        17,
        16,
        "`reject_below` = 1.5 is not a share from 0 to 1",
    ),
    (
        "known-answers-unknown-item",
        "gold.csv",
        3,
        1,
        "no item `a9` in the campaign",
    ),
    (
        "decisions-approve-and-reject",
        "decisions.csv",
        3,
        1,
        "assignment `A2` is marked both Approve and Reject",
    ),
    (
        "decisions-duplicate-assignment",
        "decisions.csv",
        4,
        1,
        "assignment `A1` is decided twice: lines 2 and 4",
    ),
    (
        "decisions-feedback-too-long",
        "decisions.csv",
        3,
        1,
        "the feedback for `A2` is 1100 characters long",
    ),
    (
        "bonuses-bad-amount",
        "bonuses.csv",
        2,
        1,
        "`0.125` is not an amount of money",
    ),
    (
        "bonuses-unknown-column",
        "bonuses.csv",
        1,
        1,
        "unknown column `Reasons`",
    ),
    (
        "bonuses-duplicate-identity",
        "bonuses.csv",
        4,
        1,
        "assignment `A1` (without an Id) has two bonus rows: lines 2 and 4",
    ),
    (
        "review-several-problems",
        "bonuses.csv",
        2,
        1,
        "a bonus row has no `WorkerId`",
    ),
];

fn rendered(d: &turkform_spec::Diagnostics) -> String {
    d.to_string()
}

#[test]
fn every_broken_case_reports_its_rule_at_the_right_place() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut on_disk: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "shared" && n != "several-problems")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.0.to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every folder in tests/broken has a row in CASES and vice versa"
    );

    let mut failures = Vec::new();
    for &(case, file, line, column, message) in CASES {
        let d = diagnostics(case);
        let first = &d.0[0];
        let want_file = turkform_spec_path(&format!("tests/broken/{case}/{file}"));
        let got = (first.file.as_path(), first.line, first.column);
        if got != (want_file.as_path(), line, column) || !first.message.contains(message) {
            failures.push(format!(
                "{case}: expected {}:{line}:{column} containing {message:?}\n  got {d}",
                want_file.display()
            ));
        }
        insta::with_settings!({
            snapshot_suffix => case,
            filters => vec![(r"\(os error \d+\)", "(os error N)"), (r"No such file or directory|The system cannot find the (file|path) specified\.", "not found")],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!("broken", rendered(&d));
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `tests/broken/x/../shared/y` as turkform displays it (cleaned).
fn turkform_spec_path(p: &str) -> std::path::PathBuf {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            ".." => {
                out.pop();
            }
            "." | "" => {}
            other => out.push(other),
        }
    }
    out.iter().collect()
}

#[test]
fn several_problems_in_one_file_are_reported_together() {
    let d = diagnostics("several-problems");
    let places: Vec<(String, usize, usize)> =
        d.0.iter()
            .map(|d| (d.file.display().to_string(), d.line, d.column))
            .collect();
    let f = "tests/broken/several-problems/campaign.toml".to_owned();
    let data = "tests/broken/several-problems/data/items.csv".to_owned();
    assert_eq!(
        places,
        vec![
            (f.clone(), 4, 1),   // descripton (misspelt; no second "missing description")
            (f.clone(), 5, 10),  // reward with three decimals
            (f.clone(), 11, 18), // UK
            (f.clone(), 15, 1),  // html and external_url
            (f.clone(), 21, 1),  // lifetime and ends_at
            (data, 3, 1),        // duplicate key
        ]
    );
    assert!(d.to_string().ends_with("6 errors in 2 files"));
    insta::assert_snapshot!(d.to_string());
}
