//! Visible text of HTML and of ADF, by the rule in the crate docs. `html_text` walks the DOM on its
//! own (not through the converter), so comparing the two checks the converter.

use ego_tree::iter::Edge;
use scraper::{Html, Node};
use serde_json::Value;

use crate::convert::is_plain_text;
use crate::style::{
    image_label, is_block, is_dropped, is_html_space, is_preformatted, is_tracking_pixel,
};

/// Collapses every whitespace run (Unicode, so NBSP too) to one space and trims the ends.
pub fn normalize_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The visible text of HTML: blocks and `<br>` on their own lines, whitespace collapsed as a browser
/// does outside `<pre>`, images as their alt (or file name), no script/style/comments.
pub fn html_text(html: &str) -> String {
    let dom = Html::parse_fragment(html);
    let root = dom.root_element();
    if is_plain_text(&dom) {
        return root.text().collect();
    }
    let mut out = String::new();
    let mut skip = 0usize;
    let mut pre = 0usize;
    let newline = |out: &mut String| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    for edge in root.traverse().skip(1) {
        match edge {
            Edge::Open(n) => match n.value() {
                Node::Text(t) if skip == 0 => {
                    if pre > 0 {
                        out.push_str(t);
                    } else {
                        for ch in t.chars() {
                            if is_html_space(ch) {
                                if !out.is_empty() && !out.ends_with([' ', '\n']) {
                                    out.push(' ');
                                }
                            } else {
                                out.push(ch);
                            }
                        }
                    }
                }
                Node::Element(e) => {
                    let name = e.name();
                    if skip > 0 || is_dropped(name) {
                        skip += 1;
                    } else if name == "br" {
                        out.push('\n');
                    } else if name == "img" {
                        if !is_tracking_pixel(e) {
                            let label = image_label(e.attr("alt"), e.attr("src").unwrap_or(""));
                            if !label.is_empty() {
                                out.push(' ');
                                out.push_str(&label);
                                out.push(' ');
                            }
                        }
                    } else {
                        if is_preformatted(name) {
                            pre += 1;
                        }
                        if is_block(name) {
                            newline(&mut out);
                        }
                    }
                }
                _ => {}
            },
            Edge::Close(n) => {
                if let Node::Element(e) = n.value() {
                    let name = e.name();
                    if skip > 0 {
                        skip -= 1;
                    } else if name != "br" && name != "img" {
                        if is_preformatted(name) {
                            pre -= 1;
                        }
                        if is_block(name) {
                            newline(&mut out);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The visible text of an ADF document: text, hard breaks as newlines, blocks on their own lines,
/// media as their alt text, mentions/emoji/status by their text, inline cards by URL.
pub fn adf_text(doc: &Value) -> String {
    let mut out = String::new();
    let mut stack: Vec<(&Value, bool)> = vec![(doc, false)];
    // Iterative walk: (node, closing) pairs, so deep documents cannot overflow the stack.
    while let Some((node, closing)) = stack.pop() {
        let kind = node.get("type").and_then(Value::as_str).unwrap_or("");
        let attr = |k: &str| node.pointer(&format!("/attrs/{k}")).and_then(Value::as_str);
        if closing {
            newline(&mut out);
            continue;
        }
        match kind {
            "text" => out.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
            "hardBreak" => out.push('\n'),
            "mention" | "status" => out.push_str(attr("text").unwrap_or("")),
            "emoji" => out.push_str(attr("text").or(attr("shortName")).unwrap_or("")),
            "inlineCard" => out.push_str(attr("url").unwrap_or("")),
            "media" | "mediaInline" => {
                newline(&mut out);
                out.push_str(attr("alt").unwrap_or(""));
                newline(&mut out);
            }
            _ => {
                newline(&mut out);
                stack.push((node, true));
                if let Some(children) = node.get("content").and_then(Value::as_array) {
                    for child in children.iter().rev() {
                        stack.push((child, false));
                    }
                }
            }
        }
    }
    out.truncate(out.trim_end_matches('\n').len());
    out
}

fn newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}
