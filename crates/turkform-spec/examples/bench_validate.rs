//! Validation benchmark: generates an HTML campaign over a CSV of N items in a temporary
//! folder, loads it with `load_project`, and prints items/second and peak RSS.
//!
//! `cargo run --release -p turkform-spec --example bench_validate -- 100000`

use std::io::Write;
use std::time::Instant;

use turkform_model::{Target, UnixTime};
use turkform_spec::LoadOptions;

const CAMPAIGN: &str = r#"
[hit_type]
title = "Tick every object you see in a street photo"
description = "Look at one photo and tick the objects in it. About 30 seconds."
keywords = ["image", "labeling"]
reward = "0.12"
assignment_duration = "10m"

[[hit_type.qualifications]]
type = "locale"
comparator = "in"
locales = ["US", "CA", "US-WA"]

[[hit_type.qualifications]]
type = "approval_rate"
comparator = ">="
value = 95

[layout]
html = "templates/task.html"

[items]
source = "data/items.csv"
key = "image_id"
assignments = 3
lifetime = "7d"
"#;

const TEMPLATE: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><script src="https://assets.crowd.aws/crowd-html-elements.js"></script></head>
<body><crowd-form>
  <h3>Which of these objects can you see?</h3>
  <img src="{{ item.image_url }}" alt="{{ item.description }}" style="max-width: 100%">
  <p><small>{{ item.neighbourhood }}, {{ item.city }}</small></p>
  {% for object in ["car", "bicycle", "traffic light", "bench", "tree", "person"] %}
  <crowd-checkbox name="{{ object | replace(' ', '_') }}">{{ object }}</crowd-checkbox><br>
  {% endfor %}
</crowd-form></body></html>
"#;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let campaigns = dir.path().join("campaigns");
    std::fs::create_dir_all(campaigns.join("templates"))?;
    std::fs::create_dir_all(campaigns.join("data"))?;
    std::fs::write(campaigns.join("bench.toml"), CAMPAIGN)?;
    std::fs::write(campaigns.join("templates/task.html"), TEMPLATE)?;
    let mut csv = std::io::BufWriter::new(std::fs::File::create(campaigns.join("data/items.csv"))?);
    writeln!(csv, "image_id,image_url,description,neighbourhood,city")?;
    for i in 0..n {
        writeln!(
            csv,
            "img-{i:07},https://images.example.org/streets/{i:07}.jpg,\"Street <{i}> with cars & bikes\",District {},City {}",
            i % 97,
            i % 13
        )?;
    }
    csv.flush()?;
    drop(csv);

    let opts = LoadOptions {
        target: Target::Sim,
        workers: Default::default(),
        campaigns_dir: campaigns,
        only: Vec::new(),
        now: UnixTime::now(),
    };
    let start = Instant::now();
    let state = turkform_spec::load_project(&opts).map_err(|d| d.to_string())?;
    let elapsed = start.elapsed();
    let items: usize = state.campaigns.iter().map(|c| c.items.len()).sum();
    assert_eq!(items, n);
    let bytes: usize = state.campaigns[0]
        .items
        .iter()
        .map(|i| match &i.question {
            turkform_model::Question::Xml { xml } => xml.len(),
            turkform_model::Question::Layout { .. } => 0,
        })
        .sum();
    println!("validated {items} items in {:.3} s", elapsed.as_secs_f64());
    println!("{:.0} items/s", items as f64 / elapsed.as_secs_f64());
    println!(
        "rendered question XML: {:.1} MiB total",
        bytes as f64 / 1_048_576.0
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
    Ok(())
}
