//! The DOM walk: HTML tree -> intermediate blocks with collapsed whitespace and inline marks.
//! Placement rules (what ADF may nest where) are applied afterwards in `emit`.

use std::collections::BTreeSet;
use std::rc::Rc;

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::node::Element;
use scraper::{Html, Node};
use serde_json::json;

use crate::style::{
    self, Marks, apply_element, collapse_ws, image_label, is_block, is_dropped, is_html_space,
    is_preformatted, is_tracking_pixel,
};
use crate::{AdfOptions, AdfResult, ImageUse};

/// Deeper element nesting is read as plain text (keeps the walk's stack bounded).
const MAX_DEPTH: usize = 200;
/// Deeper list nesting continues as paragraphs of the deepest item.
const MAX_LIST_DEPTH: usize = 12;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inline {
    Text(String, Marks),
    Break,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaBlock {
    pub id: String,
    pub collection: String,
    pub alt: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub link: Option<Rc<str>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub header: bool,
    pub colspan: u32,
    pub rowspan: u32,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// Inline content; empty means a blank line (`<div><br></div>`).
    Para(Vec<Inline>),
    Heading(u8, Vec<Inline>),
    Code(Option<String>, String),
    Quote(Vec<Block>),
    List {
        order: Option<u32>,
        items: Vec<Vec<Block>>,
    },
    Table(Vec<Vec<Cell>>),
    Rule,
    Media(MediaBlock),
}

/// Distinct warning messages in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    list: Vec<String>,
    seen: BTreeSet<String>,
}

impl Warnings {
    pub fn add(&mut self, msg: String) {
        if self.seen.insert(msg.clone()) {
            self.list.push(msg);
        }
    }
    pub fn into_vec(self) -> Vec<String> {
        self.list
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Para,
    Heading(u8),
    Code,
}

/// Where walked content goes: finished blocks plus the line being built.
struct Sink {
    blocks: Vec<Block>,
    run: Vec<Inline>,
    saw_break: bool,
    kind: Kind,
    lang: Option<String>,
    code: String,
}

impl Sink {
    fn new(kind: Kind) -> Sink {
        Sink {
            blocks: Vec::new(),
            run: Vec::new(),
            saw_break: false,
            kind,
            lang: None,
            code: String::new(),
        }
    }

    /// A sink for nested blocks (quote, list item) that keeps a heading style.
    fn child(&self) -> Sink {
        Sink::new(match self.kind {
            Kind::Code => Kind::Para,
            k => k,
        })
    }

    fn finish(mut self) -> Vec<Block> {
        self.flush();
        self.blocks
    }

    /// Appends text, collapsing whitespace like CSS `white-space: normal` (raw inside code).
    fn text(&mut self, s: &str, marks: &Marks) {
        if self.kind == Kind::Code {
            self.code.push_str(s);
            return;
        }
        let (mut at_start, mut last_space) = match self.run.last() {
            None | Some(Inline::Break) => (true, false),
            Some(Inline::Text(t, _)) => (false, t.ends_with(' ')),
        };
        let mut out = String::with_capacity(s.len());
        for ch in s.chars() {
            if is_html_space(ch) {
                if !at_start && !last_space {
                    out.push(' ');
                    last_space = true;
                }
            } else {
                out.push(ch);
                last_space = false;
                at_start = false;
            }
        }
        if out.is_empty() {
            return;
        }
        match self.run.last_mut() {
            Some(Inline::Text(t, m)) if m == marks => t.push_str(&out),
            _ => self.run.push(Inline::Text(out, marks.clone())),
        }
    }

    /// Makes sure what follows starts a new word.
    fn separate(&mut self) {
        if self.kind == Kind::Code {
            if !self.code.is_empty() && !self.code.ends_with(char::is_whitespace) {
                self.code.push(' ');
            }
        } else {
            self.text(" ", &Marks::default());
        }
    }

    fn line_break(&mut self) {
        if self.kind == Kind::Code {
            self.code.push('\n');
            return;
        }
        trim_end(&mut self.run);
        self.run.push(Inline::Break);
        self.saw_break = true;
    }

    /// The end or start of a block element.
    fn boundary(&mut self) {
        if self.kind == Kind::Code {
            if !self.code.is_empty() && !self.code.ends_with('\n') {
                self.code.push('\n');
            }
        } else {
            self.flush();
        }
    }

    fn flush(&mut self) {
        match self.kind {
            Kind::Code => {
                let text = std::mem::take(&mut self.code);
                let text = text.trim_end_matches(['\n', '\r']);
                if !text.trim().is_empty() {
                    self.blocks
                        .push(Block::Code(self.lang.clone(), text.to_string()));
                }
            }
            Kind::Para | Kind::Heading(_) => {
                trim_end(&mut self.run);
                if matches!(self.run.last(), Some(Inline::Break)) {
                    self.run.pop();
                    trim_end(&mut self.run);
                }
                let run = std::mem::take(&mut self.run);
                let has_text = run.iter().any(|i| matches!(i, Inline::Text(..)));
                match self.kind {
                    Kind::Heading(level) if has_text => {
                        self.blocks.push(Block::Heading(level, run))
                    }
                    Kind::Para if !run.is_empty() => self.blocks.push(Block::Para(run)),
                    Kind::Para if self.saw_break => self.blocks.push(Block::Para(Vec::new())),
                    _ => {}
                }
            }
        }
        self.saw_break = false;
    }

    /// Switches the kind of block new content goes to; returns what to restore.
    fn enter(&mut self, kind: Kind, lang: Option<String>) -> (Kind, Option<String>) {
        self.flush();
        let old = (self.kind, self.lang.take());
        self.kind = kind;
        self.lang = lang;
        old
    }

    fn leave(&mut self, old: (Kind, Option<String>)) {
        self.flush();
        self.kind = old.0;
        self.lang = old.1;
    }
}

/// Removes trailing collapsible spaces (a line never ends in one).
fn trim_end(run: &mut Vec<Inline>) {
    while let Some(Inline::Text(t, _)) = run.last_mut() {
        let kept = t.trim_end_matches(' ').len();
        if kept == 0 {
            run.pop();
        } else {
            t.truncate(kept);
            break;
        }
    }
}

#[derive(Clone)]
struct Cx {
    marks: Marks,
    depth: usize,
    lists: usize,
}

struct Walker<'o> {
    opts: &'o AdfOptions<'o>,
    images: Vec<ImageUse>,
    warnings: Warnings,
}

pub(crate) fn convert(html: &str, opts: &AdfOptions<'_>) -> AdfResult {
    let dom = Html::parse_fragment(html);
    let mut walker = Walker {
        opts,
        images: Vec::new(),
        warnings: Warnings::default(),
    };
    let root = dom.root_element();
    let blocks = if opts.detect_plain_text && is_plain_text(&dom) {
        plain_text_blocks(&root.text().collect::<String>())
    } else {
        let mut sink = Sink::new(Kind::Para);
        let cx = Cx {
            marks: Marks::default(),
            depth: 0,
            lists: 0,
        };
        walker.children(*root, &mut sink, &cx);
        sink.finish()
    };
    let mut warnings = walker.warnings;
    let content = crate::emit::doc_content(blocks, &mut warnings);
    AdfResult {
        doc: json!({"version": 1, "type": "doc", "content": content}),
        images: walker.images,
        warnings: warnings.into_vec(),
    }
}

/// True when the parsed input has no element and no comment: plain text, not HTML.
pub(crate) fn is_plain_text(dom: &Html) -> bool {
    let root = dom.root_element();
    !root
        .descendants()
        .skip(1)
        .any(|n| n.value().is_element() || n.value().is_comment())
}

/// Plain text: blank lines end paragraphs, other newlines are hard breaks, spaces collapse.
pub(crate) fn plain_text_blocks(text: &str) -> Vec<Block> {
    let mut sink = Sink::new(Kind::Para);
    let plain = Marks::default();
    for line in text.lines() {
        let line = collapse_ws(line);
        if line.is_empty() {
            sink.flush();
            continue;
        }
        if !sink.run.is_empty() {
            sink.line_break();
        }
        sink.text(&line, &plain);
    }
    sink.finish()
}

impl Walker<'_> {
    fn children(&mut self, node: NodeRef<'_, Node>, sink: &mut Sink, cx: &Cx) {
        for child in node.children() {
            self.node(child, sink, cx);
        }
    }

    fn node(&mut self, node: NodeRef<'_, Node>, sink: &mut Sink, cx: &Cx) {
        match node.value() {
            Node::Text(t) => sink.text(t, &cx.marks),
            Node::Element(el) => self.element(node, el, sink, cx),
            _ => {}
        }
    }

    /// The context inside `el`: its marks applied, one level deeper.
    fn enter_cx(&mut self, el: &Element, cx: &Cx) -> Cx {
        let mut inner = cx.clone();
        inner.depth += 1;
        if let Some(style::MarkNote::UnsafeLink(scheme)) =
            apply_element(el.name(), el, &mut inner.marks)
        {
            self.warnings.add(format!(
                "a link to a {scheme}: URL was removed (unsafe in Jira); its text is kept"
            ));
        }
        inner
    }

    fn element(&mut self, node: NodeRef<'_, Node>, el: &Element, sink: &mut Sink, cx: &Cx) {
        let name = el.name();
        if is_dropped(name) {
            return;
        }
        if cx.depth >= MAX_DEPTH {
            self.warnings.add(format!(
                "markup nested deeper than {MAX_DEPTH} elements was kept as plain text"
            ));
            self.flat(node, sink, cx);
            return;
        }
        let inner = self.enter_cx(el, cx);
        let code = sink.kind == Kind::Code;
        match name {
            "br" => sink.line_break(),
            "img" => self.image(el, sink, &inner),
            "hr" if !code => {
                sink.flush();
                sink.blocks.push(Block::Rule);
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if !code => {
                let level = name.as_bytes()[1] - b'0';
                let old = sink.enter(Kind::Heading(level), None);
                self.children(node, sink, &inner);
                sink.leave(old);
            }
            _ if is_preformatted(name) && !code => {
                let old = sink.enter(Kind::Code, code_language(node, el));
                self.children(node, sink, &inner);
                sink.leave(old);
            }
            "blockquote" if !code => {
                sink.flush();
                let mut quote = sink.child();
                self.children(node, &mut quote, &inner);
                let blocks = quote.finish();
                if !blocks.is_empty() {
                    sink.blocks.push(Block::Quote(blocks));
                }
            }
            "ul" | "ol" | "menu" | "dir" if !code => {
                if cx.lists < MAX_LIST_DEPTH {
                    self.list(node, el, sink, &inner);
                } else {
                    self.warnings.add(format!(
                        "lists nested deeper than {MAX_LIST_DEPTH} levels were kept as paragraphs"
                    ));
                    sink.boundary();
                    self.children(node, sink, &inner);
                    sink.boundary();
                }
            }
            "table" if !code => self.table(node, sink, &inner),
            _ if is_block(name) => {
                sink.boundary();
                self.children(node, sink, &inner);
                sink.boundary();
            }
            _ => self.children(node, sink, &inner),
        }
    }

    fn list(&mut self, node: NodeRef<'_, Node>, el: &Element, sink: &mut Sink, cx: &Cx) {
        sink.flush();
        let order = (el.name() == "ol").then(|| {
            el.attr("start")
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .map_or(1, |n| n.min(i64::from(u32::MAX)) as u32)
        });
        let mut item_cx = cx.clone();
        item_cx.lists += 1;
        let mut items = Vec::new();
        let mut current: Option<Sink> = None;
        for child in node.children() {
            match child.value() {
                Node::Element(li) if li.name() == "li" => {
                    if let Some(done) = current.take() {
                        items.push(done.finish());
                    }
                    let mut item = sink.child();
                    let li_cx = self.enter_cx(li, &item_cx);
                    self.children(child, &mut item, &li_cx);
                    item.flush();
                    current = Some(item);
                }
                // Content between items (text, a nested list) belongs to the item before it.
                _ => {
                    let item = current.get_or_insert_with(|| sink.child());
                    self.node(child, item, &item_cx);
                }
            }
        }
        if let Some(done) = current.take() {
            items.push(done.finish());
        }
        sink.blocks.push(Block::List { order, items });
    }

    fn table(&mut self, node: NodeRef<'_, Node>, sink: &mut Sink, cx: &Cx) {
        sink.flush();
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        for child in node.children() {
            let Node::Element(el) = child.value() else {
                self.stray(child, &mut rows, sink, cx);
                continue;
            };
            match el.name() {
                "thead" | "tbody" | "tfoot" => {
                    let header = el.name() == "thead";
                    let section_cx = self.enter_cx(el, cx);
                    for row in child.children() {
                        match row.value() {
                            Node::Element(r) if r.name() == "tr" => {
                                self.row(row, r, header, &mut rows, sink, &section_cx);
                            }
                            _ => self.stray(row, &mut rows, sink, &section_cx),
                        }
                    }
                }
                "tr" => self.row(child, el, false, &mut rows, sink, cx),
                "colgroup" | "col" => {}
                _ => self.stray(child, &mut rows, sink, cx),
            }
        }
        push_table(&mut rows, sink);
    }

    /// Content inside a table that is not a row (a caption, a form): it stays in document order,
    /// so rows before it close a table and rows after it open another.
    fn stray(
        &mut self,
        node: NodeRef<'_, Node>,
        rows: &mut Vec<Vec<Cell>>,
        sink: &mut Sink,
        cx: &Cx,
    ) {
        let mut tmp = sink.child();
        self.node(node, &mut tmp, cx);
        let blocks = tmp.finish();
        if !blocks.is_empty() {
            push_table(rows, sink);
            sink.blocks.extend(blocks);
        }
    }

    fn row(
        &mut self,
        node: NodeRef<'_, Node>,
        el: &Element,
        header: bool,
        rows: &mut Vec<Vec<Cell>>,
        sink: &mut Sink,
        cx: &Cx,
    ) {
        let row_cx = self.enter_cx(el, cx);
        let mut cells = Vec::new();
        for child in node.children() {
            match child.value() {
                Node::Element(c) if matches!(c.name(), "td" | "th") => {
                    let cell_cx = self.enter_cx(c, &row_cx);
                    let mut cell = Sink::new(Kind::Para);
                    self.children(child, &mut cell, &cell_cx);
                    cells.push(Cell {
                        header: header || c.name() == "th",
                        colspan: span(c.attr("colspan"), 1000),
                        rowspan: span(c.attr("rowspan"), 65534),
                        blocks: cell.finish(),
                    });
                }
                _ => {
                    let mut tmp = sink.child();
                    self.node(child, &mut tmp, &row_cx);
                    let blocks = tmp.finish();
                    if !blocks.is_empty() {
                        if !cells.is_empty() {
                            rows.push(std::mem::take(&mut cells));
                        }
                        push_table(rows, sink);
                        sink.blocks.extend(blocks);
                    }
                }
            }
        }
        if !cells.is_empty() {
            rows.push(cells);
        }
    }

    fn image(&mut self, el: &Element, sink: &mut Sink, cx: &Cx) {
        let src = el.attr("src").map(str::trim).unwrap_or("");
        let alt = el.attr("alt").map(collapse_ws).filter(|a| !a.is_empty());
        let label = image_label(el.attr("alt"), src);
        if is_tracking_pixel(el) {
            self.images.push(ImageUse {
                src: src.to_string(),
                alt,
                resolved: false,
                media_id: None,
                tracking_pixel: true,
            });
            self.warnings.add(format!(
                "a 1x1 tracking image ({}) was dropped",
                style::display_url(src)
            ));
            return;
        }
        let media = if src.is_empty() {
            None
        } else {
            (self.opts.image)(src).filter(|m| !m.id.trim().is_empty())
        };
        self.images.push(ImageUse {
            src: src.to_string(),
            alt: alt.clone(),
            resolved: media.is_some(),
            media_id: media.as_ref().map(|m| m.id.clone()),
            tracking_pixel: false,
        });
        if let Some(m) = media {
            let alt = m
                .alt
                .map(|a| collapse_ws(&a))
                .filter(|a| !a.is_empty())
                .or_else(|| (!label.is_empty()).then_some(label));
            let attr_px = |name: &str| {
                el.attr(name)
                    .and_then(|v| v.trim().trim_end_matches("px").parse::<u32>().ok())
                    .filter(|n| *n > 0)
            };
            let block = Block::Media(MediaBlock {
                id: m.id,
                collection: m.collection,
                alt,
                width: m.width.filter(|n| *n > 0).or_else(|| attr_px("width")),
                height: m.height.filter(|n| *n > 0).or_else(|| attr_px("height")),
                link: cx.marks.link.clone(),
            });
            sink.flush();
            sink.blocks.push(block);
            return;
        }
        if label.is_empty() {
            self.warnings
                .add("an image without src or alt text was dropped (nothing to show)".to_string());
            return;
        }
        let mut marks = cx.marks.clone();
        if marks.link.is_none()
            && let Ok(href) = style::safe_href(src)
        {
            marks.link = Some(Rc::from(href));
        }
        if src.is_empty() {
            self.warnings
                .add("an image without src was kept as its alt text".to_string());
        } else {
            self.warnings.add(format!(
                "image {} was not uploaded; it is kept as a link or text with its alt text. Upload it and convert again to embed it",
                style::display_url(src)
            ));
        }
        sink.separate();
        sink.text(&label, &marks);
        sink.separate();
    }

    /// Reads a subtree as text without recursion (for pathologically deep markup).
    fn flat(&mut self, node: NodeRef<'_, Node>, sink: &mut Sink, cx: &Cx) {
        let mut skip = 0usize;
        for edge in node.traverse() {
            match edge {
                Edge::Open(n) => match n.value() {
                    Node::Text(t) if skip == 0 => sink.text(t, &cx.marks),
                    Node::Element(e) => {
                        if skip > 0 || is_dropped(e.name()) {
                            skip += 1;
                        } else if e.name() == "br" {
                            sink.line_break();
                        } else if e.name() == "img" {
                            self.image(e, sink, cx);
                        } else if is_block(e.name()) {
                            sink.separate();
                        }
                    }
                    _ => {}
                },
                Edge::Close(n) => {
                    if let Node::Element(e) = n.value() {
                        if skip > 0 {
                            skip -= 1;
                        } else if is_block(e.name()) {
                            sink.separate();
                        }
                    }
                }
            }
        }
    }
}

/// Emits the rows collected so far as a table (nothing when there are none).
fn push_table(rows: &mut Vec<Vec<Cell>>, sink: &mut Sink) {
    if !rows.is_empty() {
        sink.blocks.push(Block::Table(std::mem::take(rows)));
    }
}

fn span(v: Option<&str>, max: u32) -> u32 {
    v.and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .map_or(1, |n| n.min(max))
}

/// `language-x` / `lang-x` class (or `data-lang`) on the `<pre>` or its `<code>`.
fn code_language(node: NodeRef<'_, Node>, pre: &Element) -> Option<String> {
    fn from(el: &Element) -> Option<String> {
        let class = el.attr("class").unwrap_or("");
        class
            .split_ascii_whitespace()
            .find_map(|c| {
                c.strip_prefix("language-")
                    .or_else(|| c.strip_prefix("lang-"))
            })
            .or_else(|| el.attr("data-lang"))
            .or_else(|| el.attr("data-language"))
            .map(|l| l.trim().to_ascii_lowercase())
            .filter(|l| !l.is_empty() && l.len() <= 64)
    }
    from(pre).or_else(|| {
        node.children()
            .filter_map(|c| c.value().as_element())
            .find(|e| e.name() == "code")
            .and_then(from)
    })
}
