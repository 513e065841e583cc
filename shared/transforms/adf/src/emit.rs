//! Blocks -> ADF JSON, placing each block where the schema allows it:
//! - list items and quotes cannot hold headings (-> bold paragraphs), rules (dropped: no text),
//!   tables (-> their cells' content in order) or quotes (-> their content);
//! - table cells cannot hold tables (-> their cells' content);
//! - a list item starts with a paragraph, code block or media (an empty paragraph is put first
//!   otherwise); empty items, lists, quotes and tables are not emitted; text nodes are never empty;
//! - text with the `code` mark carries no mark other than `link`.

use serde_json::{Map, Value, json};

use crate::convert::{Block, Cell, Inline, MediaBlock, Warnings};
use crate::style::{Marks, SubSup};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Doc,
    Item,
    Quote,
    Cell,
}

impl Ctx {
    fn name(self) -> &'static str {
        match self {
            Ctx::Doc => "the document",
            Ctx::Item => "a list item",
            Ctx::Quote => "a quote",
            Ctx::Cell => "a table cell",
        }
    }
}

pub(crate) fn doc_content(blocks: Vec<Block>, w: &mut Warnings) -> Vec<Value> {
    let mut out = Vec::new();
    emit_blocks(blocks, Ctx::Doc, &mut out, w);
    out
}

fn emit_blocks(blocks: Vec<Block>, ctx: Ctx, out: &mut Vec<Value>, w: &mut Warnings) {
    for b in blocks {
        emit_block(b, ctx, out, w);
    }
}

fn emit_block(block: Block, ctx: Ctx, out: &mut Vec<Value>, w: &mut Warnings) {
    match block {
        Block::Para(inl) => out.push(paragraph(inl, false)),
        Block::Heading(level, inl) => {
            if matches!(ctx, Ctx::Doc | Ctx::Cell) {
                out.push(json!({
                    "type": "heading",
                    "attrs": {"level": level},
                    "content": inlines(inl, false),
                }));
            } else {
                w.add(format!(
                    "a heading inside {} became a bold paragraph (ADF has no headings there)",
                    ctx.name()
                ));
                out.push(paragraph(inl, true));
            }
        }
        Block::Code(lang, text) => {
            let mut node = json!({
                "type": "codeBlock",
                "content": [{"type": "text", "text": text}],
            });
            if let Some(lang) = lang {
                node["attrs"] = json!({"language": lang});
            }
            out.push(node);
        }
        Block::Rule => {
            if matches!(ctx, Ctx::Doc | Ctx::Cell) {
                out.push(json!({"type": "rule"}));
            } else {
                w.add(format!(
                    "a horizontal rule inside {} was left out (ADF has no rule there)",
                    ctx.name()
                ));
            }
        }
        Block::Media(m) => out.push(media_single(m)),
        Block::Quote(children) => {
            if matches!(ctx, Ctx::Doc | Ctx::Cell) {
                let mut content = Vec::new();
                emit_blocks(children, Ctx::Quote, &mut content, w);
                if !content.is_empty() {
                    out.push(json!({"type": "blockquote", "content": content}));
                }
            } else {
                w.add(format!(
                    "a quote inside {} was kept as its content (ADF cannot nest it there)",
                    ctx.name()
                ));
                emit_blocks(children, ctx, out, w);
            }
        }
        Block::List { order, items } => {
            let mut list_items = Vec::new();
            for item in items {
                let mut content = Vec::new();
                emit_blocks(item, Ctx::Item, &mut content, w);
                if content.is_empty() {
                    continue;
                }
                let starts_ok = matches!(
                    content[0]["type"].as_str(),
                    Some("paragraph" | "codeBlock" | "mediaSingle")
                );
                if !starts_ok {
                    content.insert(0, json!({"type": "paragraph", "content": []}));
                }
                list_items.push(json!({"type": "listItem", "content": content}));
            }
            if list_items.is_empty() {
                return;
            }
            out.push(match order {
                Some(n) => {
                    json!({"type": "orderedList", "attrs": {"order": n}, "content": list_items})
                }
                None => json!({"type": "bulletList", "content": list_items}),
            });
        }
        Block::Table(rows) => {
            if ctx == Ctx::Doc {
                let rows: Vec<Value> = rows.into_iter().map(|r| table_row(r, w)).collect();
                out.push(json!({
                    "type": "table",
                    "attrs": {"isNumberColumnEnabled": false},
                    "content": rows,
                }));
            } else {
                w.add(format!(
                    "a table inside {} was kept as its cells' content in order (ADF cannot nest it there)",
                    ctx.name()
                ));
                for cell in rows.into_iter().flatten() {
                    emit_blocks(cell.blocks, ctx, out, w);
                }
            }
        }
    }
}

fn table_row(cells: Vec<Cell>, w: &mut Warnings) -> Value {
    let cells: Vec<Value> = cells
        .into_iter()
        .map(|c| {
            let mut content = Vec::new();
            emit_blocks(c.blocks, Ctx::Cell, &mut content, w);
            if content.is_empty() {
                content.push(json!({"type": "paragraph", "content": []}));
            }
            let mut node = json!({
                "type": if c.header { "tableHeader" } else { "tableCell" },
                "content": content,
            });
            let mut attrs = Map::new();
            if c.colspan > 1 {
                attrs.insert("colspan".into(), c.colspan.into());
            }
            if c.rowspan > 1 {
                attrs.insert("rowspan".into(), c.rowspan.into());
            }
            if !attrs.is_empty() {
                node["attrs"] = Value::Object(attrs);
            }
            node
        })
        .collect();
    json!({"type": "tableRow", "content": cells})
}

fn media_single(m: MediaBlock) -> Value {
    let mut attrs = Map::new();
    attrs.insert("type".into(), "file".into());
    attrs.insert("id".into(), m.id.into());
    attrs.insert("collection".into(), m.collection.into());
    if let Some(alt) = m.alt {
        attrs.insert("alt".into(), alt.into());
    }
    if let Some(w) = m.width {
        attrs.insert("width".into(), w.into());
    }
    if let Some(h) = m.height {
        attrs.insert("height".into(), h.into());
    }
    let mut media = json!({"type": "media", "attrs": attrs});
    if let Some(href) = m.link {
        media["marks"] = json!([{"type": "link", "attrs": {"href": &*href}}]);
    }
    json!({"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [media]})
}

fn paragraph(inl: Vec<Inline>, strong: bool) -> Value {
    json!({"type": "paragraph", "content": inlines(inl, strong)})
}

fn inlines(inl: Vec<Inline>, strong: bool) -> Vec<Value> {
    inl.into_iter()
        .filter_map(|i| match i {
            Inline::Break => Some(json!({"type": "hardBreak"})),
            Inline::Text(t, _) if t.is_empty() => None,
            Inline::Text(t, m) => {
                let marks = marks_json(&m, strong);
                Some(if marks.is_empty() {
                    json!({"type": "text", "text": t})
                } else {
                    json!({"type": "text", "text": t, "marks": marks})
                })
            }
        })
        .collect()
}

fn marks_json(m: &Marks, strong: bool) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(href) = &m.link {
        out.push(json!({"type": "link", "attrs": {"href": &**href}}));
    }
    if m.code {
        out.push(json!({"type": "code"}));
        return out;
    }
    if m.strong || strong {
        out.push(json!({"type": "strong"}));
    }
    if m.em {
        out.push(json!({"type": "em"}));
    }
    if m.underline {
        out.push(json!({"type": "underline"}));
    }
    if m.strike {
        out.push(json!({"type": "strike"}));
    }
    if let Some(s) = m.subsup {
        let kind = match s {
            SubSup::Sub => "sub",
            SubSup::Sup => "sup",
        };
        out.push(json!({"type": "subsup", "attrs": {"type": kind}}));
    }
    if let Some([r, g, b]) = m.color {
        out.push(
            json!({"type": "textColor", "attrs": {"color": format!("#{r:02x}{g:02x}{b:02x}")}}),
        );
    }
    out
}
