//! Real bodies: every activity body and ticket description the Ivinex sandbox generates (seeds 1..5,
//! 200 tickets each) converts to valid ADF with its visible text kept.

mod common;

use std::time::Instant;

use common::{schema_errors, validator};
use deskshift_adf::{AdfOptions, MediaRef, adf_text, html_text, html_to_adf, normalize_text};
use sandbox_ivinex::model::BASE_URL_TOKEN;
use serde_json::Value;

const BASE: &str = "http://127.0.0.1:9/ivinex";

/// The HTML bodies (activity `body`, ticket `description`) of one generated tenant, with the base
/// URL token rendered as the server would.
fn bodies(seed: u64, tickets: usize) -> Vec<String> {
    let tenant = sandbox_ivinex::generate(seed, tickets);
    let mut out = Vec::new();
    for (tab, role) in [("Activities", "body"), ("Tickets", "description")] {
        let data = tenant
            .tab(tab)
            .unwrap_or_else(|| panic!("tab {tab} generated"));
        let idx = data
            .def
            .role_index(role)
            .unwrap_or_else(|| panic!("{tab} has a field with role {role}"));
        for rec in data.records.values() {
            if let Value::String(s) = rec.value(idx) {
                out.push(s.replace(BASE_URL_TOKEN, BASE));
            }
        }
    }
    out
}

/// Like the engine: only images from the source's own file host were downloaded and uploaded.
fn own_host_only(src: &str) -> Option<MediaRef> {
    src.starts_with(BASE).then(|| MediaRef {
        id: "3f2b8c1e-0d4a-4b6e-9a7c-5e1f2d3c4b5a".into(),
        collection: String::new(),
        alt: None,
        width: None,
        height: None,
    })
}

#[test]
fn generated_bodies_convert_to_valid_adf_with_text_kept() {
    let opts = AdfOptions::with_images(&own_host_only);
    let (mut total, mut media, mut degraded, mut pixels, mut tables, mut lists) =
        (0, 0, 0, 0, 0, 0);
    for seed in 1..=5u64 {
        let bodies = bodies(seed, 200);
        assert!(
            bodies.len() > 400,
            "seed {seed}: only {} bodies",
            bodies.len()
        );
        for (i, html) in bodies.iter().enumerate() {
            let r = html_to_adf(html, &opts);
            let errors = schema_errors(&r.doc);
            assert!(
                errors.is_empty(),
                "seed {seed} body {i} invalid: {errors:?}\n{html}\n{}",
                r.doc
            );
            assert_eq!(
                normalize_text(&adf_text(&r.doc)),
                normalize_text(&html_text(html)),
                "seed {seed} body {i}: text differs\n{html}\n{}",
                r.doc
            );
            let json = r.doc.to_string();
            total += 1;
            media += r.images.iter().filter(|i| i.resolved).count();
            degraded += r
                .images
                .iter()
                .filter(|i| !i.resolved && !i.tracking_pixel)
                .count();
            pixels += r.images.iter().filter(|i| i.tracking_pixel).count();
            tables +=
                usize::from(json.contains("\"tableHeader\"") || json.contains("\"tableCell\""));
            lists += usize::from(json.contains("\"bulletList\""));
            // Script and style content never becomes text.
            assert!(
                !json.contains("alert('x')") && !json.contains("color:red"),
                "seed {seed} body {i}"
            );
        }
    }
    println!(
        "{total} bodies: {media} images embedded, {degraded} kept as links/text, {pixels} tracking pixels dropped, {tables} with tables, {lists} with lists"
    );
    // The generator plants each kind of content; make sure this run saw them.
    assert!(media > 0 && degraded > 0 && pixels > 0 && tables > 0 && lists > 0);
}

#[test]
fn generated_inline_images_resolve_to_media_nodes() {
    let opts = AdfOptions::with_images(&own_host_only);
    let html = bodies(1, 50)
        .into_iter()
        .find(|b| b.contains(&format!("{BASE}/files/")) && b.contains("<img"))
        .expect("seed 1 has an inline image from the source");
    let r = html_to_adf(&html, &opts);
    let media: Vec<&Value> = r.doc["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "mediaSingle")
        .collect();
    assert_eq!(media.len(), 1, "{}", r.doc);
    assert_eq!(
        media[0]["content"][0]["attrs"]["id"],
        "3f2b8c1e-0d4a-4b6e-9a7c-5e1f2d3c4b5a"
    );
    assert_eq!(media[0]["content"][0]["attrs"]["alt"], "inline image");
    assert_eq!(media[0]["content"][0]["attrs"]["width"], 400);
}

/// Throughput, printed only: `cargo test -p deskshift-adf --release --test real_bodies -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; run in release with --nocapture"]
fn throughput() {
    let opts = AdfOptions::with_images(&own_host_only);
    let bodies: Vec<String> = (1..=5).flat_map(|s| bodies(s, 200)).collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let rounds = 20;
    let start = Instant::now();
    let mut nodes = 0usize;
    for _ in 0..rounds {
        for b in &bodies {
            nodes += html_to_adf(b, &opts).doc["content"]
                .as_array()
                .map_or(0, Vec::len);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (bodies.len() * rounds) as f64;
    println!(
        "html_to_adf: {} bodies x {rounds} rounds ({:.1} KiB per round, {nodes} top-level blocks) in {secs:.2} s: {:.0} bodies/s, {:.1} MiB/s",
        bodies.len(),
        bytes as f64 / 1024.0,
        n / secs,
        (bytes * rounds) as f64 / secs / (1024.0 * 1024.0)
    );
    let start = Instant::now();
    let docs: Vec<Value> = bodies.iter().map(|b| html_to_adf(b, &opts).doc).collect();
    let convert = start.elapsed().as_secs_f64();
    let start = Instant::now();
    assert!(docs.iter().all(|d| validator().is_valid(d)));
    println!(
        "schema validation (for comparison): {:.0} docs/s; one conversion pass {:.0} bodies/s",
        docs.len() as f64 / start.elapsed().as_secs_f64(),
        docs.len() as f64 / convert
    );
}
