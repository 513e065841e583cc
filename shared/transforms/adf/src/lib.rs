//! HTML to Atlassian Document Format, on a real HTML parser, always schema-valid.
//!
//! [`html_to_adf`] parses with html5ever (through `scraper`), so malformed markup is repaired the way
//! a browser repairs it, then walks the tree into ADF blocks and places every block where the ADF
//! schema allows it (flattening what ADF cannot nest). Text is never dropped: unknown elements are
//! walked as inline content, images that were not uploaded become text or links, and structures
//! that cannot nest are turned into paragraphs.
//!
//! The visible-text rule shared by [`html_text`] and [`adf_text`] (compare them with
//! [`normalize_text`]):
//! - whitespace collapses as in a browser, except inside `<pre>`; block elements, `<br>` and table
//!   cells separate words; `<script>`, `<style>`, `<template>`, `<title>`, `<noscript>`,
//!   `<iframe>` and comments are not text;
//! - an image is a word of its own: its `alt` text, or if it has none the file name of its `src`
//!   (`embedded image` for a `data:` URI); a tracking pixel (`width` and `height` both at most 1)
//!   contributes nothing. On the ADF side that word is a `media` node's `alt` or the text of the
//!   link the image degraded to.
//!
//! Input without any markup (no element, no comment) is plain text: its line breaks are kept as
//! hard breaks and blank lines separate paragraphs (see [`AdfOptions::detect_plain_text`]).

mod convert;
mod emit;
mod style;
mod text;

use serde::Serialize;
use serde_json::{Value, json};

pub use text::{adf_text, html_text, normalize_text};

/// The ADF JSON schema (draft-04) from @atlaskit/adf-schema 57.7.22 (see schema/NOTICE), for
/// callers that validate before sending.
pub const ADF_SCHEMA: &str = include_str!("../schema/full.json");

/// An uploaded image, as the caller's resolver reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaRef {
    /// The Media Services UUID (not the numeric Jira attachment id).
    pub id: String,
    /// The media collection; Jira attachments use `""`.
    pub collection: String,
    /// Alt text; when `None` the `<img alt>` (or the file name of its src) is used.
    pub alt: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The resolver signature: the `<img src>` exactly as written in the HTML (trimmed).
pub type ImageResolver<'a> = dyn Fn(&str) -> Option<MediaRef> + Sync + 'a;

/// Conversion options.
#[derive(Clone, Copy)]
pub struct AdfOptions<'a> {
    /// Maps an `<img src>` to the media it was uploaded as; `None` keeps the image as a link/text.
    pub image: &'a ImageResolver<'a>,
    /// Treat input that has no markup at all as plain text (line breaks kept). Default true.
    pub detect_plain_text: bool,
}

fn no_image(_: &str) -> Option<MediaRef> {
    None
}

impl Default for AdfOptions<'static> {
    fn default() -> Self {
        AdfOptions {
            image: &no_image,
            detect_plain_text: true,
        }
    }
}

impl<'a> AdfOptions<'a> {
    /// Default options with an image resolver.
    pub fn with_images(image: &'a ImageResolver<'a>) -> AdfOptions<'a> {
        AdfOptions {
            image,
            detect_plain_text: true,
        }
    }
}

impl std::fmt::Debug for AdfOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdfOptions")
            .field("detect_plain_text", &self.detect_plain_text)
            .finish_non_exhaustive()
    }
}

/// One `<img>` met during conversion, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUse {
    /// The src as written (trimmed); empty for an `<img>` without src.
    pub src: String,
    /// The alt text, whitespace collapsed; `None` when absent or blank.
    pub alt: Option<String>,
    /// True when the resolver returned media and the image is embedded as a `media` node.
    pub resolved: bool,
    /// The media id it was embedded with.
    pub media_id: Option<String>,
    /// A 1x1 (or smaller) image: dropped, never resolved (trackers must not be uploaded).
    pub tracking_pixel: bool,
}

/// The result of [`html_to_adf`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdfResult {
    /// `{"version":1,"type":"doc","content":[...]}`, valid against [`ADF_SCHEMA`].
    pub doc: Value,
    /// Every image seen, resolved or not, in document order.
    pub images: Vec<ImageUse>,
    /// What was changed to fit ADF (unresolved images, dropped unsafe links, flattened tables...).
    /// Distinct messages only; they carry no record id, so callers prefix their own.
    pub warnings: Vec<String>,
}

impl AdfResult {
    /// True when the document has no content block (Jira refuses empty comment bodies).
    pub fn is_empty(&self) -> bool {
        self.doc["content"].as_array().is_none_or(Vec::is_empty)
    }
}

/// Converts HTML (a fragment or a whole document) to an ADF document.
pub fn html_to_adf(html: &str, options: &AdfOptions<'_>) -> AdfResult {
    convert::convert(html, options)
}

/// Plain text to ADF: blank lines separate paragraphs, other line breaks become hard breaks.
pub fn text_to_adf(text: &str) -> Value {
    let mut warnings = convert::Warnings::default();
    let blocks = convert::plain_text_blocks(text);
    json!({"version": 1, "type": "doc", "content": emit::doc_content(blocks, &mut warnings)})
}

/// The distinct image sources worth uploading before converting (no tracking pixels, no empty src).
pub fn image_sources(html: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    html_to_adf(html, &AdfOptions::default())
        .images
        .into_iter()
        .filter(|i| !i.tracking_pixel && !i.src.is_empty())
        .filter(|i| seen.insert(i.src.clone()))
        .map(|i| i.src)
        .collect()
}

/// A paragraph of emphasised text (the provenance line prepended to migrated bodies); line breaks
/// become hard breaks.
pub fn provenance_paragraph(text: &str) -> Value {
    let mut content = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            content.push(json!({"type": "hardBreak"}));
        }
        let line = line.trim_end_matches('\r');
        if !line.is_empty() {
            content.push(json!({"type": "text", "text": line, "marks": [{"type": "em"}]}));
        }
    }
    while content.last().is_some_and(|n| n["type"] == "hardBreak") {
        content.pop();
    }
    json!({"type": "paragraph", "content": content})
}

/// Puts `block` first in `doc`'s content (for example a [`provenance_paragraph`]).
pub fn prepend_block(doc: &mut Value, block: Value) {
    if let Some(content) = doc.get_mut("content").and_then(Value::as_array_mut) {
        content.insert(0, block);
    } else {
        *doc = json!({"version": 1, "type": "doc", "content": [block]});
    }
}
