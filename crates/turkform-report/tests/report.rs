//! What the rendered page holds, and what it must never hold (anything fetched from elsewhere).

mod common;

use turkform_model::{Money, Target, UnixTime};
use turkform_report::{ItemAgreement, ReportData, ReportError, render};

/// The page reduced to its element structure: one line per element (tag, id, class) and per
/// text run, with SVG drawing primitives counted instead of listed, so that the snapshot shows
/// what a reader gets without pinning every coordinate.
fn outline(html: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut rest = html;
    let mut svg_depth: Option<usize> = None;
    let mut svg_counts: std::collections::BTreeMap<String, usize> = Default::default();
    while let Some(start) = rest.find('<') {
        let text = rest[..start].trim();
        if !text.is_empty() && svg_depth.is_none() {
            let short: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push_str(&format!("{}\"{}\"\n", "  ".repeat(depth), short));
        }
        let end = rest[start..]
            .find('>')
            .map(|e| start + e)
            .expect("tag closes");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            depth = depth.saturating_sub(1);
            if name == "svg" {
                let counts: Vec<String> =
                    svg_counts.iter().map(|(k, v)| format!("{k}x{v}")).collect();
                out.push_str(&format!(
                    "{}[svg: {}]\n",
                    "  ".repeat(depth + 1),
                    counts.join(" ")
                ));
                svg_counts.clear();
                svg_depth = None;
            }
            if name == "style" {
                // The stylesheet is one blob; its text is checked by the no-network test.
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let void = matches!(name, "meta" | "br" | "link" | "img");
        if svg_depth.is_some() {
            *svg_counts.entry(name.to_owned()).or_default() += 1;
        } else {
            let attr = |key: &str| {
                let pat = format!(" {key}=\"");
                tag.find(&pat).map(|i| {
                    let v = &tag[i + pat.len()..];
                    v[..v.find('"').unwrap_or(v.len())].to_owned()
                })
            };
            let mut line = format!("{}<{name}", "  ".repeat(depth));
            for key in ["id", "class", "href", "aria-label"] {
                if let Some(v) = attr(key) {
                    line.push_str(&format!(" {key}={v}"));
                }
            }
            line.push('>');
            out.push_str(&line);
            out.push('\n');
            if name == "svg" {
                svg_depth = Some(depth);
            }
        }
        if !self_closing && !void {
            depth += 1;
        }
        if name == "style" {
            let close = rest.find("</style>").expect("style closes");
            rest = &rest[close..];
        }
    }
    out
}

#[test]
fn the_page_structure_holds_every_section() {
    let html = render(&common::fixture()).unwrap();
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
    ]}, {
        insta::assert_snapshot!(outline(&html));
    });
}

#[test]
fn the_page_references_no_network_resource_and_runs_no_script() {
    let html = render(&common::fixture()).unwrap();
    let lower = html.to_ascii_lowercase();
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", "src=",
    ] {
        assert!(!lower.contains(forbidden), "the page holds `{forbidden}`");
    }
    // Links are allowed only as plain `<a href>`, and only to this page's own anchors here.
    let mut rest = lower.as_str();
    let mut links = 0;
    while let Some(i) = rest.find("href=") {
        let before = &rest[..i];
        let tag_start = before.rfind('<').unwrap();
        assert!(
            before[tag_start..].starts_with("<a "),
            "href outside <a>: {}",
            &rest[tag_start..i + 40]
        );
        let target = &rest[i + 6..];
        assert!(
            target.starts_with('#'),
            "link leaves the page: {}",
            &target[..40.min(target.len())]
        );
        links += 1;
        rest = &rest[i + 5..];
    }
    assert_eq!(links, 2, "one overview link per campaign");
    // The only URL is the SVG namespace, which is an identifier, not a fetch.
    let urls = lower.matches("http").count();
    let namespaces = lower
        .matches("xmlns=\"http://www.w3.org/2000/svg\"")
        .count();
    assert_eq!(urls, namespaces);
    assert!(namespaces >= 7, "every chart is inline SVG");
}

#[test]
fn text_from_campaign_files_is_escaped() {
    let html = render(&common::fixture()).unwrap();
    assert!(html.contains("Is this review &lt;positive&gt; or &quot;negative&quot;?"));
    assert!(!html.contains("<positive>"));
}

#[test]
fn the_projection_is_shown_with_how_it_was_estimated() {
    let html = render(&common::fixture()).unwrap();
    // birds: 1,082 answers over 36 h, the last 50 at 2 per 3 minutes -> an instant is shown.
    assert!(
        html.contains("answers per hour"),
        "the method is on the page"
    );
    // sentiment-pilot has no answers yet.
    assert!(html.contains("not enough data"));
    assert!(html.contains("no answers submitted yet"));
}

#[test]
fn a_share_outside_zero_to_one_is_refused_with_the_item_named() {
    let mut data = common::fixture();
    data.campaigns[0].agreement.push(ItemAgreement {
        item: "img-bad".into(),
        agreement: 1.5,
    });
    let err = render(&data).unwrap_err();
    assert!(matches!(err, ReportError::NotAShare { .. }));
    assert_eq!(
        err.to_string(),
        "campaign `birds-2026`: the agreement of item `img-bad` is 1.5, not a share between 0 and 1; fix the figures passed to the report"
    );
    data.campaigns[0].agreement.pop();
    data.campaigns[0].agreement[0].agreement = f64::NAN;
    assert!(matches!(render(&data), Err(ReportError::NotAShare { .. })));
}

#[test]
fn a_campaign_given_twice_is_refused() {
    let mut data = common::fixture();
    let again = data.campaigns[0].clone();
    data.campaigns.push(again);
    assert_eq!(
        render(&data).unwrap_err().to_string(),
        "campaign `birds-2026` appears twice in the report data; pass each campaign once"
    );
}

#[test]
fn an_empty_report_says_what_to_do() {
    let data = ReportData {
        generated_at: UnixTime(common::START),
        target: Target::Production,
        campaigns: vec![],
    };
    let html = render(&data).unwrap();
    assert!(html.contains("No campaigns in state yet: run <code>turkform apply</code> first."));
    assert!(html.contains("badge production"));
}

#[test]
fn the_budget_line_is_drawn_on_the_spend_chart() {
    let html = render(&common::fixture()).unwrap();
    assert_eq!(
        html.matches("class=\"budget\"").count(),
        1,
        "only birds-2026 has a budget"
    );
    assert!(html.contains("budget $300.00"));
    let _ = Money::ZERO;
}

#[test]
fn tables_are_bounded_whatever_the_campaign_size() {
    let html = render(&common::fixture()).unwrap();
    assert!(html.contains("the 20 busiest of 30 workers"));
    assert!(html.contains("the 20 least-agreed of 400 items"));
    // The least agreed come first: 1/6 is 17 %.
    let agreement_table = &html[html.find("least-agreed").unwrap()..];
    assert!(agreement_table.contains("<td>17%</td>"));
}
