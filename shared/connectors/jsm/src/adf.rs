//! HTML -> Atlassian Document Format for descriptions and comments.
//!
//! [`html_to_doc`] is the one switch point: [`IN_USE`] selects `deskshift-adf` (the project's full
//! converter) or this crate's minimal fallback (plain paragraphs with line breaks, links and
//! uploaded images as `media`). Both always yield schema-valid ADF (tests check either against the
//! sandbox's schema).

use scraper::{Html, Node};
use serde_json::{Value, json};

/// An image uploaded to the issue, as ADF `media` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaRef {
    /// The Jira attachment id (numeric).
    pub attachment_id: String,
    /// The Media Services file id, read from the attachment content redirect.
    pub media_id: String,
    pub file_name: String,
}

/// The HTML -> ADF converters this crate can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Converter {
    /// `deskshift_adf::html_to_adf` with the image resolver.
    AdfCrate,
    /// [`fallback_blocks`]: paragraphs, line breaks, links, media.
    Fallback,
}

/// The converter [`html_to_doc`] uses.
pub const IN_USE: Converter = Converter::AdfCrate;

/// Which converter is in use, for the describe output and reports.
pub const CONVERTER: &str = match IN_USE {
    Converter::AdfCrate => "deskshift-adf",
    Converter::Fallback => "deskshift-jsm fallback (paragraphs, line breaks, links, media)",
};

/// Maps an `<img src>` to an image uploaded to the issue.
pub type Resolver<'a> = dyn Fn(&str) -> Option<MediaRef> + Sync + 'a;

/// An ADF document for `html`, after `lead` blocks (e.g. the provenance paragraph). `resolve` maps
/// an `<img src>` to an uploaded image; unresolved images stay as text or links.
pub fn html_to_doc(lead: Vec<Value>, html: &str, resolve: &Resolver<'_>) -> Value {
    let mut blocks = lead;
    blocks.extend(body_blocks(IN_USE, html, resolve));
    doc(blocks)
}

/// The blocks of `html` by the chosen converter.
pub fn body_blocks(converter: Converter, html: &str, resolve: &Resolver<'_>) -> Vec<Value> {
    match converter {
        Converter::Fallback => fallback_blocks(html, resolve),
        Converter::AdfCrate => {
            let adapter = |src: &str| {
                resolve(src).map(|m| deskshift_adf::MediaRef {
                    id: m.media_id,
                    collection: String::new(),
                    ..Default::default()
                })
            };
            let res =
                deskshift_adf::html_to_adf(html, &deskshift_adf::AdfOptions::with_images(&adapter));
            if !res.warnings.is_empty() {
                tracing::debug!(warnings = ?res.warnings, "HTML adjusted to fit ADF");
            }
            res.doc
                .get("content")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
    }
}

/// A document from blocks; an empty one gets one paragraph so it stays valid everywhere.
pub fn doc(mut blocks: Vec<Value>) -> Value {
    if blocks.is_empty() {
        blocks.push(json!({"type": "paragraph", "content": []}));
    }
    json!({"version": 1, "type": "doc", "content": blocks})
}

/// A paragraph of plain text (empty text gives an empty paragraph).
pub fn text_paragraph(text: &str) -> Value {
    let mut p = Paragraph::default();
    p.text(text, None);
    p.into_block()
        .unwrap_or_else(|| json!({"type": "paragraph", "content": []}))
}

/// The provenance line: the marker in `code` so it survives editors, then the readable line in `em`.
pub fn provenance_paragraph(marker: &str, line: &str) -> Value {
    let mut content = vec![json!({"type": "text", "text": marker, "marks": [{"type": "code"}]})];
    if !line.trim().is_empty() {
        content.push(
            json!({"type": "text", "text": format!(" {}", line.trim()), "marks": [{"type": "em"}]}),
        );
    }
    json!({"type": "paragraph", "content": content})
}

/// The plain text of an ADF node: text nodes joined, blocks on their own lines.
pub fn adf_text(v: &Value) -> String {
    let mut out = String::new();
    walk_text(v, &mut out);
    out.trim().to_string()
}

fn walk_text(v: &Value, out: &mut String) {
    match v.get("type").and_then(Value::as_str) {
        Some("text") => {
            if let Some(t) = v.get("text").and_then(Value::as_str) {
                out.push_str(t);
            }
        }
        Some("hardBreak") => out.push('\n'),
        _ => {
            if let Some(children) = v.get("content").and_then(Value::as_array) {
                for c in children {
                    walk_text(c, out);
                }
            }
            let block = !matches!(v.get("type").and_then(Value::as_str), Some("text") | None);
            if block && !out.ends_with('\n') && !out.is_empty() {
                out.push('\n');
            }
        }
    }
}

/// The media ids an ADF document references (for checking images landed).
pub fn media_ids(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        if v.get("type").and_then(Value::as_str) == Some("media")
            && let Some(id) = v.pointer("/attrs/id").and_then(Value::as_str)
        {
            out.push(id.to_string());
        }
        if let Some(children) = v.get("content").and_then(Value::as_array) {
            for c in children {
                walk(c, out);
            }
        }
    }
    walk(v, &mut out);
    out
}

/// The `src` of every `<img>` in `html` worth uploading, in order, without duplicates.
pub fn image_sources(html: &str) -> Vec<String> {
    if IN_USE == Converter::AdfCrate {
        return deskshift_adf::image_sources(html);
    }
    let fragment = Html::parse_fragment(html);
    let mut out: Vec<String> = Vec::new();
    for node in fragment.tree.nodes() {
        if let Node::Element(e) = node.value()
            && e.name() == "img"
            && let Some(src) = e.attr("src").map(str::trim).filter(|s| !s.is_empty())
            && !out.iter().any(|x| x == src)
        {
            out.push(src.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// the fallback converter

#[derive(Default)]
struct Paragraph {
    inline: Vec<Value>,
}

impl Paragraph {
    fn text(&mut self, text: &str, link: Option<&str>) {
        if text.is_empty() {
            return;
        }
        let marks = link.map(|href| json!([{"type": "link", "attrs": {"href": href}}]));
        if let Some(last) = self.inline.last_mut()
            && last.get("type").and_then(Value::as_str) == Some("text")
            && last.get("marks") == marks.as_ref()
        {
            let joined = format!("{}{text}", last["text"].as_str().unwrap_or(""));
            last["text"] = json!(joined);
            return;
        }
        let mut node = json!({"type": "text", "text": text});
        if let Some(m) = marks {
            node["marks"] = m;
        }
        self.inline.push(node);
    }

    fn hard_break(&mut self) {
        self.inline.push(json!({"type": "hardBreak"}));
    }

    fn is_blank(&self) -> bool {
        self.inline.iter().all(|n| {
            n.get("type").and_then(Value::as_str) == Some("hardBreak")
                || n.get("text")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.trim().is_empty())
        })
    }

    /// The finished paragraph: outer whitespace and outer breaks trimmed; None when blank.
    fn into_block(mut self) -> Option<Value> {
        if self.is_blank() {
            return None;
        }
        while self
            .inline
            .first()
            .is_some_and(|n| n["type"] == "hardBreak")
        {
            self.inline.remove(0);
        }
        while self.inline.last().is_some_and(|n| n["type"] == "hardBreak") {
            self.inline.pop();
        }
        if let Some(first) = self.inline.first_mut()
            && let Some(t) = first.get("text").and_then(Value::as_str)
        {
            first["text"] = json!(t.trim_start());
        }
        if let Some(last) = self.inline.last_mut()
            && let Some(t) = last.get("text").and_then(Value::as_str)
        {
            last["text"] = json!(t.trim_end());
        }
        self.inline
            .retain(|n| n["type"] != "text" || n["text"].as_str().is_some_and(|t| !t.is_empty()));
        Some(json!({"type": "paragraph", "content": self.inline}))
    }
}

struct Walker<'a> {
    blocks: Vec<Value>,
    current: Paragraph,
    resolve: &'a Resolver<'a>,
}

const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "address",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "body",
    "html",
];

fn safe_href(href: &str) -> Option<&str> {
    let h = href.trim();
    let lower = h.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:"))
        .then_some(h)
}

fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

impl Walker<'_> {
    fn flush(&mut self) {
        let p = std::mem::take(&mut self.current);
        if let Some(b) = p.into_block() {
            self.blocks.push(b);
        }
    }

    fn walk(&mut self, node: ego_tree::NodeRef<'_, Node>, link: Option<&str>, pre: bool) {
        match node.value() {
            Node::Text(t) => {
                if pre {
                    let mut lines = t.split('\n').peekable();
                    while let Some(line) = lines.next() {
                        self.current.text(line, link);
                        if lines.peek().is_some() {
                            self.current.hard_break();
                        }
                    }
                } else {
                    self.current.text(&collapse_ws(t), link);
                }
            }
            Node::Element(e) => {
                let name = e.name();
                match name {
                    "script" | "style" | "head" | "title" | "template" => return,
                    "br" => {
                        self.current.hard_break();
                        return;
                    }
                    "img" => {
                        let src = e.attr("src").map(str::trim).unwrap_or("");
                        match (!src.is_empty()).then(|| (self.resolve)(src)).flatten() {
                            Some(m) => {
                                self.flush();
                                let mut media =
                                    json!({"type": "file", "id": m.media_id, "collection": ""});
                                if let Some(alt) = e.attr("alt").filter(|a| !a.trim().is_empty()) {
                                    media["alt"] = json!(alt.trim());
                                }
                                self.blocks.push(json!({"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [{"type": "media", "attrs": media}]}));
                            }
                            None => {
                                let alt = e
                                    .attr("alt")
                                    .map(str::trim)
                                    .filter(|a| !a.is_empty())
                                    .map(str::to_string)
                                    .unwrap_or_else(|| {
                                        src.rsplit('/').next().unwrap_or("").to_string()
                                    });
                                self.current.text(&format!("[image: {alt}]"), link);
                            }
                        }
                        return;
                    }
                    _ => {}
                }
                let block = BLOCK_TAGS.contains(&name);
                if block {
                    self.flush();
                }
                if name == "li" {
                    self.current.text("• ", None);
                }
                let href = if name == "a" {
                    e.attr("href").and_then(safe_href)
                } else {
                    None
                };
                let link = href.or(link);
                let pre = pre || name == "pre";
                let mut cells = 0;
                for child in node.children() {
                    if matches!(child.value(), Node::Element(c) if matches!(c.name(), "td" | "th"))
                    {
                        if cells > 0 {
                            self.current.text(" | ", None);
                        }
                        cells += 1;
                    }
                    self.walk(child, link, pre);
                }
                if block {
                    self.flush();
                }
            }
            _ => {
                for child in node.children() {
                    self.walk(child, link, pre);
                }
            }
        }
    }
}

/// The crate's own converter: paragraphs, line breaks, links and resolved images as media.
pub fn fallback_blocks(html: &str, resolve: &Resolver<'_>) -> Vec<Value> {
    let fragment = Html::parse_fragment(html);
    let mut w = Walker {
        blocks: Vec::new(),
        current: Paragraph::default(),
        resolve,
    };
    w.walk(fragment.tree.root(), None, false);
    w.flush();
    w.blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<MediaRef> {
        None
    }

    fn fallback_doc(html: &str, resolve: &Resolver<'_>) -> Value {
        doc(body_blocks(Converter::Fallback, html, resolve))
    }

    #[test]
    fn paragraphs_breaks_and_links_survive() {
        let d = fallback_doc(
            "<p>Hello <b>there</b><br>line 2</p><div>x &amp; y <a href='https://e.test/a'>link</a></div><script>bad()</script>",
            &none,
        );
        let blocks = d["content"].as_array().unwrap();
        assert_eq!(blocks.len(), 2, "{d}");
        assert_eq!(adf_text(&d), "Hello there\nline 2\nx & y link");
        assert_eq!(
            blocks[1]["content"][1]["marks"][0]["attrs"]["href"],
            "https://e.test/a"
        );
    }

    #[test]
    fn resolved_images_become_media_and_others_text() {
        let resolve = |src: &str| {
            (src == "https://src.test/a.png").then(|| MediaRef {
                attachment_id: "1".into(),
                media_id: "uuid-1".into(),
                file_name: "a.png".into(),
            })
        };
        let html =
            "<p>see <img src='https://src.test/a.png' alt='shot'> and <img src='cid:x/b.png'></p>";
        assert_eq!(
            image_sources(html),
            vec!["https://src.test/a.png", "cid:x/b.png"]
        );
        let d = fallback_doc(html, &resolve);
        assert_eq!(media_ids(&d), vec!["uuid-1"]);
        assert!(adf_text(&d).contains("[image: b.png]"), "{d}");
        let d = html_to_doc(vec![], html, &resolve);
        assert_eq!(media_ids(&d), vec!["uuid-1"], "{d}");
    }

    #[test]
    fn empty_input_is_still_a_document() {
        for c in [Converter::Fallback, Converter::AdfCrate] {
            let d = doc(body_blocks(c, "   <p> </p>", &none));
            assert_eq!(d["content"].as_array().unwrap().len(), 1, "{c:?}: {d}");
        }
        let p = provenance_paragraph("[deskshift:x:ticket:1]", "Created by A");
        assert_eq!(
            adf_text(&doc(vec![p])),
            "[deskshift:x:ticket:1] Created by A"
        );
    }
}
