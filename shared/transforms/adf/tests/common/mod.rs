//! Shared test helpers: the compiled ADF schema validator and the text-equality check.
#![allow(dead_code)]

use std::sync::OnceLock;

use deskshift_adf::{
    ADF_SCHEMA, AdfOptions, AdfResult, MediaRef, adf_text, html_text, normalize_text,
};
use serde_json::Value;

/// The ADF schema validator, compiled once per test binary.
pub fn validator() -> &'static jsonschema::Validator {
    static CELL: OnceLock<jsonschema::Validator> = OnceLock::new();
    CELL.get_or_init(|| {
        let schema: Value = serde_json::from_str(ADF_SCHEMA).expect("bundled schema is JSON");
        jsonschema::validator_for(&schema).expect("bundled ADF schema compiles")
    })
}

/// The schema errors of `doc` (empty when valid), with where they are.
pub fn schema_errors(doc: &Value) -> Vec<String> {
    validator()
        .iter_errors(doc)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

pub fn assert_valid(doc: &Value, html: &str) {
    let errors = schema_errors(doc);
    assert!(
        errors.is_empty(),
        "invalid ADF for {html:?}:\n{errors:#?}\n{}",
        serde_json::to_string_pretty(doc).unwrap()
    );
}

/// Converts, asserts schema validity and that the visible text is kept; returns the result.
pub fn convert_checked(html: &str, opts: &AdfOptions<'_>) -> AdfResult {
    let res = deskshift_adf::html_to_adf(html, opts);
    assert_valid(&res.doc, html);
    let want = normalize_text(&html_text(html));
    let got = normalize_text(&adf_text(&res.doc));
    assert_eq!(
        got,
        want,
        "text differs for {html:?}\n{}",
        serde_json::to_string_pretty(&res.doc).unwrap()
    );
    res
}

/// Converts with the default options (no image resolves), checked.
pub fn adf(html: &str) -> AdfResult {
    convert_checked(html, &AdfOptions::default())
}

/// A resolver that "uploaded" every image: the media id is derived from the src.
pub fn resolve_all(src: &str) -> Option<MediaRef> {
    Some(MediaRef {
        id: format!(
            "00000000-0000-4000-8000-{:012x}",
            fnv(src) & 0xffff_ffff_ffff
        ),
        collection: String::new(),
        alt: None,
        width: None,
        height: None,
    })
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The content array of a doc.
pub fn content(doc: &Value) -> &Vec<Value> {
    doc["content"].as_array().expect("doc content")
}
