//! Behaviour of majority vote and Dawid-Skene through the public entry point.

use std::collections::BTreeMap;

use turkform_aggregate::{Aggregated, Answer, Method, aggregate};

/// A deterministic generator (splitmix64) so that the synthetic crowd is the same on every run
/// and every machine without pulling a random-number crate into a pure library's tests.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Owned {
    item: String,
    worker: String,
    fields: BTreeMap<String, String>,
}

fn borrow(owned: &[Owned]) -> Vec<Answer<'_>> {
    owned
        .iter()
        .map(|o| Answer {
            item: &o.item,
            worker: &o.worker,
            fields: &o.fields,
        })
        .collect()
}

/// (item, worker, fields) as written in a test.
type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn owned(rows: &[Row<'_>]) -> Vec<Owned> {
    rows.iter()
        .map(|(item, worker, f)| Owned {
            item: (*item).to_owned(),
            worker: (*worker).to_owned(),
            fields: fields(f),
        })
        .collect()
}

/// 500 items on 4 classes, 5 answers each from 7 workers: 3 careful (90 % right) and 4 near
/// spammers (35 % right, otherwise a uniformly wrong class). Returns the answers and the truth.
fn synthetic_crowd(seed: u64) -> (Vec<Owned>, BTreeMap<String, String>) {
    let classes = ["cat", "dog", "bird", "fish"];
    let accuracy = [0.9, 0.9, 0.9, 0.35, 0.35, 0.35, 0.35];
    let mut rng = SplitMix(seed);
    let mut answers = Vec::new();
    let mut truth = BTreeMap::new();
    for item in 0..500 {
        let item_key = format!("item-{item:03}");
        let true_class = rng.below(4) as usize;
        truth.insert(item_key.clone(), classes[true_class].to_owned());
        let mut workers: Vec<usize> = (0..accuracy.len()).collect();
        for i in (1..workers.len()).rev() {
            workers.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &w in &workers[..5] {
            let given = if rng.chance(accuracy[w]) {
                true_class
            } else {
                (true_class + 1 + rng.below(3) as usize) % 4
            };
            answers.push(Owned {
                item: item_key.clone(),
                worker: format!("W{w}"),
                fields: fields(&[("animal", classes[given])]),
            });
        }
    }
    (answers, truth)
}

fn accuracy(results: &[turkform_aggregate::ItemResult], truth: &BTreeMap<String, String>) -> f64 {
    let right = results
        .iter()
        .filter(|r| r.fields["animal"].value == truth[&r.item])
        .count();
    right as f64 / truth.len() as f64
}

#[test]
fn dawid_skene_recovers_true_labels_better_than_majority_on_a_crowd_with_spammers() {
    let (answers, truth) = synthetic_crowd(20_261_201);
    let answers_ref = borrow(&answers);
    let majority = aggregate(Method::Majority, &answers_ref);
    let dawid_skene = aggregate(Method::DawidSkene, &answers_ref);
    assert_eq!(majority.len(), 500);
    assert_eq!(dawid_skene.len(), 500);
    let mv = accuracy(&majority, &truth);
    let ds = accuracy(&dawid_skene, &truth);
    eprintln!("majority accuracy {mv:.3}, dawid-skene accuracy {ds:.3}");
    assert!(mv < 0.85, "majority accuracy {mv}");
    assert!(ds >= 0.92, "dawid-skene accuracy {ds}");
    assert!(ds > mv + 0.08, "dawid-skene {ds} vs majority {mv}");
    for r in &dawid_skene {
        let a = &r.fields["animal"];
        assert_eq!(a.count, 5);
        assert!((0.0..=1.0).contains(&a.agreement), "{a:?}");
    }
    // Determinism: the same input gives bit-identical output.
    assert_eq!(aggregate(Method::DawidSkene, &answers_ref), dawid_skene);
}

#[test]
fn majority_ties_go_to_the_value_first_seen_in_submit_order() {
    let answers = owned(&[
        ("i1", "w1", &[("label", "b")]),
        ("i1", "w2", &[("label", "a")]),
        ("i1", "w3", &[("label", "a")]),
        ("i1", "w4", &[("label", "b")]),
        ("i2", "w1", &[("label", "x")]),
        ("i2", "w2", &[("label", "y")]),
        ("i2", "w3", &[("label", "y")]),
    ]);
    let results = aggregate(Method::Majority, &borrow(&answers));
    assert_eq!(
        results[0].fields["label"],
        Aggregated {
            value: "b".into(),
            agreement: 0.5,
            count: 4
        }
    );
    assert_eq!(results[1].fields["label"].value, "y");
    assert!((results[1].fields["label"].agreement - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn dawid_skene_breaks_exact_ties_like_majority() {
    // Two workers who disagree once, each seen only here: the model cannot tell them apart,
    // so the posteriors are equal and the first value in submit order must win.
    let answers = owned(&[("i1", "w1", &[("l", "no")]), ("i1", "w2", &[("l", "yes")])]);
    let results = aggregate(Method::DawidSkene, &borrow(&answers));
    let a = &results[0].fields["l"];
    assert_eq!(a.value, "no");
    assert!((a.agreement - 0.5).abs() < 1e-9, "{a:?}");
}

#[test]
fn an_answer_lacking_a_field_does_not_count_for_it() {
    let answers = owned(&[
        ("i1", "w1", &[("color", "red"), ("note", "bright")]),
        ("i1", "w2", &[("color", "blue")]),
        ("i1", "w3", &[("color", "blue")]),
        ("i2", "w1", &[("color", "green")]),
    ]);
    for method in [Method::Majority, Method::DawidSkene] {
        let results = aggregate(method, &borrow(&answers));
        assert_eq!(results.len(), 2);
        let i1 = &results[0];
        assert_eq!(i1.fields["color"].value, "blue", "{method:?}");
        assert_eq!(i1.fields["color"].count, 3);
        assert_eq!(i1.fields["note"].value, "bright");
        assert_eq!(i1.fields["note"].count, 1);
        assert!((i1.fields["note"].agreement - 1.0).abs() < 1e-12);
        // i2 never received a `note`: no entry rather than an empty one.
        assert_eq!(results[1].fields.keys().collect::<Vec<_>>(), ["color"]);
    }
}

#[test]
fn a_single_answer_is_its_own_aggregate_with_full_agreement() {
    let answers = owned(&[("only", "w1", &[("q", "42")])]);
    for method in [Method::Majority, Method::DawidSkene] {
        let results = aggregate(method, &borrow(&answers));
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].item, "only");
        let a = &results[0].fields["q"];
        assert_eq!(a.value, "42");
        assert_eq!(a.count, 1);
        assert!((a.agreement - 1.0).abs() < 1e-12, "{method:?} {a:?}");
    }
}

#[test]
fn empty_input_gives_no_items() {
    for method in [Method::Majority, Method::DawidSkene] {
        assert!(aggregate(method, &[]).is_empty());
    }
}

#[test]
fn items_come_out_in_first_seen_order() {
    let answers = owned(&[
        ("zeta", "w1", &[("q", "a")]),
        ("alpha", "w1", &[("q", "a")]),
        ("zeta", "w2", &[("q", "a")]),
        ("mid", "w3", &[("q", "b")]),
    ]);
    let results = aggregate(Method::DawidSkene, &borrow(&answers));
    let order: Vec<&str> = results.iter().map(|r| r.item.as_str()).collect();
    assert_eq!(order, ["zeta", "alpha", "mid"]);
}

#[test]
fn free_text_fields_beyond_max_classes_fall_back_to_majority() {
    // 100 distinct values: not categories. Dawid-Skene must not build 100 x 100 matrices per
    // worker; it reports the majority share instead.
    let mut rows = Vec::new();
    for i in 0..100 {
        rows.push(Owned {
            item: format!("i{i}"),
            worker: "w1".into(),
            fields: fields(&[("text", &format!("answer {i}"))]),
        });
        rows.push(Owned {
            item: format!("i{i}"),
            worker: "w2".into(),
            fields: fields(&[("text", &format!("answer {i}"))]),
        });
    }
    let ds = aggregate(Method::DawidSkene, &borrow(&rows));
    let mv = aggregate(Method::Majority, &borrow(&rows));
    assert_eq!(ds, mv);
    assert_eq!(ds[7].fields["text"].value, "answer 7");
}
