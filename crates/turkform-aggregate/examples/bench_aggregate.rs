//! `cargo run --release -p turkform-aggregate --example bench_aggregate -- 100000`
//!
//! Times majority vote and Dawid-Skene over N synthetic answers (5 per item, 4 classes, 50
//! workers of mixed accuracy) and prints one JSON object.

use std::collections::BTreeMap;
use std::time::Instant;

use turkform_aggregate::{Answer, Method, aggregate};

struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the argument is a number of answers"))
        .unwrap_or(100_000);
    let classes = ["a", "b", "c", "d"];
    let workers: Vec<String> = (0..50).map(|w| format!("W{w:02}")).collect();
    let mut rng = SplitMix(7);
    let mut owned: Vec<(String, usize, BTreeMap<String, String>)> = Vec::with_capacity(n);
    let mut truth = 0usize;
    for i in 0..n {
        if i % 5 == 0 {
            truth = (rng.next_u64() % 4) as usize;
        }
        let w = (rng.next_u64() % 50) as usize;
        // Workers 0-19 are 90 % right, the rest 40 %.
        let accuracy = if w < 20 { 90 } else { 40 };
        let label = if rng.next_u64() % 100 < accuracy {
            truth
        } else {
            (truth + 1 + (rng.next_u64() % 3) as usize) % 4
        };
        let mut fields = BTreeMap::new();
        fields.insert("label".to_owned(), classes[label].to_owned());
        owned.push((format!("item-{}", i / 5), w, fields));
    }
    let answers: Vec<Answer<'_>> = owned
        .iter()
        .map(|(item, w, fields)| Answer {
            item,
            worker: &workers[*w],
            fields,
        })
        .collect();

    let started = Instant::now();
    let majority = aggregate(Method::Majority, &answers);
    let majority_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let dawid_skene = aggregate(Method::DawidSkene, &answers);
    let dawid_skene_secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"answers\":{n},\"items\":{},\"majority_seconds\":{majority_secs:.4},\"dawid_skene_seconds\":{dawid_skene_secs:.4},\"dawid_skene_items\":{}}}",
        majority.len(),
        dawid_skene.len()
    );
}
