//! One test per construct: the exact ADF structure, its schema validity and the text kept.

mod common;

use common::{adf, content, convert_checked, resolve_all};
use deskshift_adf::{
    AdfOptions, MediaRef, adf_text, html_text, normalize_text, prepend_block, provenance_paragraph,
    text_to_adf,
};
use serde_json::{Value, json};

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn marked(t: &str, marks: Value) -> Value {
    json!({"type": "text", "text": t, "marks": marks})
}

fn para(content: Value) -> Value {
    json!({"type": "paragraph", "content": content})
}

#[test]
fn paragraphs_and_whitespace_collapse() {
    let r = adf("<p>  Hello \n\t  <b>big</b>   world  </p>\n\n<div>second</div> loose text ");
    assert_eq!(
        *content(&r.doc),
        vec![
            para(json!([
                text("Hello "),
                marked("big", json!([{"type": "strong"}])),
                text(" world")
            ])),
            para(json!([text("second")])),
            para(json!([text("loose text")])),
        ]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn headings_one_to_six() {
    let html: String = (1..=6)
        .map(|l| format!("<h{l}> Title {l} </h{l}>"))
        .collect();
    let r = adf(&html);
    let got = content(&r.doc);
    assert_eq!(got.len(), 6);
    for (i, h) in got.iter().enumerate() {
        let l = i + 1;
        assert_eq!(
            *h,
            json!({"type": "heading", "attrs": {"level": l}, "content": [text(&format!("Title {l}"))]})
        );
    }
}

#[test]
fn nested_lists_with_order() {
    let r = adf(
        "<ul><li>First<ul><li>Nested<ol start=\"3\"><li>Deep</li><li>Deeper</li></ol></li></ul></li><li>Second</li></ul><ol><li>one</li></ol>",
    );
    let expected = json!([
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [
                para(json!([text("First")])),
                {"type": "bulletList", "content": [
                    {"type": "listItem", "content": [
                        para(json!([text("Nested")])),
                        {"type": "orderedList", "attrs": {"order": 3}, "content": [
                            {"type": "listItem", "content": [para(json!([text("Deep")]))]},
                            {"type": "listItem", "content": [para(json!([text("Deeper")]))]}
                        ]}
                    ]}
                ]}
            ]},
            {"type": "listItem", "content": [para(json!([text("Second")]))]}
        ]},
        {"type": "orderedList", "attrs": {"order": 1}, "content": [
            {"type": "listItem", "content": [para(json!([text("one")]))]}
        ]}
    ]);
    assert_eq!(r.doc["content"], expected);
}

#[test]
fn list_edge_cases_stay_valid() {
    // Empty list, empty item, a list directly inside a list, text between items, a list first in an item.
    let r = adf(
        "<ul></ul><ol><li></li></ol><ul><li>a</li><ul><li>b</li></ul>between<li><ul><li>c</li></ul></li></ul>",
    );
    let c = content(&r.doc);
    assert_eq!(c.len(), 1, "empty lists are not emitted: {c:#?}");
    let items = c[0]["content"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // The stray <ul> and text after item "a" stay with item "a", in order.
    assert_eq!(items[0]["content"][0], para(json!([text("a")])));
    assert_eq!(items[0]["content"][1]["type"], "bulletList");
    assert_eq!(items[0]["content"][2], para(json!([text("between")])));
    // An item opening with a list gets an empty paragraph first.
    assert_eq!(
        items[1]["content"][0],
        json!({"type": "paragraph", "content": []})
    );
    assert_eq!(items[1]["content"][1]["type"], "bulletList");
}

#[test]
fn ordered_list_start_variants() {
    let r = adf(
        "<ol start=\"0\"><li>z</li></ol><ol start=\"-2\"><li>n</li></ol><ol start=\"x\"><li>x</li></ol>",
    );
    let orders: Vec<&Value> = content(&r.doc)
        .iter()
        .map(|l| &l["attrs"]["order"])
        .collect();
    assert_eq!(orders, vec![&json!(0), &json!(1), &json!(1)]);
}

#[test]
fn tables_with_headers_and_spans() {
    let r = adf(
        "<table><thead><tr><td>Order</td><th>Qty</th></tr></thead><tbody><tr><td colspan=\"2\">A-1001</td></tr><tr><th>Row</th><td rowspan=\"2\"></td></tr></tbody></table>",
    );
    let expected = json!([{
        "type": "table",
        "attrs": {"isNumberColumnEnabled": false},
        "content": [
            {"type": "tableRow", "content": [
                {"type": "tableHeader", "content": [para(json!([text("Order")]))]},
                {"type": "tableHeader", "content": [para(json!([text("Qty")]))]}
            ]},
            {"type": "tableRow", "content": [
                {"type": "tableCell", "attrs": {"colspan": 2}, "content": [para(json!([text("A-1001")]))]}
            ]},
            {"type": "tableRow", "content": [
                {"type": "tableHeader", "content": [para(json!([text("Row")]))]},
                {"type": "tableCell", "attrs": {"rowspan": 2}, "content": [{"type": "paragraph", "content": []}]}
            ]}
        ]
    }]);
    assert_eq!(r.doc["content"], expected);
}

#[test]
fn lists_and_blocks_inside_table_cells() {
    let r = adf(
        "<table><tr><td><ul><li>in cell</li></ul><h3>cell heading</h3><hr><blockquote>q</blockquote></td></tr></table>",
    );
    let cell = &r.doc["content"][0]["content"][0]["content"][0]["content"];
    let kinds: Vec<&str> = cell
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["bulletList", "heading", "rule", "blockquote"]);
}

#[test]
fn table_in_list_item_is_flattened_keeping_text() {
    let r = adf(
        "<ul><li>before<table><tr><td>c1</td><td>c2</td></tr><tr><td>c3</td></tr></table>after</li></ul>",
    );
    let item = &r.doc["content"][0]["content"][0]["content"];
    assert_eq!(
        *item,
        json!([
            para(json!([text("before")])),
            para(json!([text("c1")])),
            para(json!([text("c2")])),
            para(json!([text("c3")])),
            para(json!([text("after")])),
        ])
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("table inside a list item"))
    );
}

#[test]
fn nested_table_in_cell_is_flattened() {
    let r = adf("<table><tr><td>outer<table><tr><td>inner</td></tr></table></td></tr></table>");
    let cell = &r.doc["content"][0]["content"][0]["content"][0]["content"];
    assert_eq!(
        *cell,
        json!([para(json!([text("outer")])), para(json!([text("inner")]))])
    );
}

#[test]
fn code_block_with_language_and_no_marks() {
    let r = adf(
        "<pre><code class=\"hljs language-Rust\">fn main() {\n    <b>let</b> x = 1 &lt; 2;\n}\n</code></pre>",
    );
    assert_eq!(
        r.doc["content"],
        json!([{
            "type": "codeBlock",
            "attrs": {"language": "rust"},
            "content": [text("fn main() {\n    let x = 1 < 2;\n}")]
        }])
    );
    let plain = adf("<pre>  two  spaces\n\ttab</pre>");
    assert_eq!(
        plain.doc["content"],
        json!([{"type": "codeBlock", "content": [text("  two  spaces\n\ttab")]}])
    );
}

#[test]
fn blockquote_with_heading_list_and_nested_quote() {
    let r = adf(
        "<blockquote><p>quoted</p><h2>heading in quote</h2><ul><li>list in quote</li></ul><blockquote>inner</blockquote><hr></blockquote>",
    );
    assert_eq!(
        r.doc["content"],
        json!([{
            "type": "blockquote",
            "content": [
                para(json!([text("quoted")])),
                para(json!([marked("heading in quote", json!([{"type": "strong"}]))])),
                {"type": "bulletList", "content": [{"type": "listItem", "content": [para(json!([text("list in quote")]))]}]},
                para(json!([text("inner")])),
            ]
        }])
    );
}

#[test]
fn links_and_anchors_without_href() {
    let r = adf(
        "<p><a href=\"https://x.test/a?b=1&amp;c=2\">link</a> <a name=\"top\">anchor</a> <a href=\"javascript:alert(1)\">js</a> <a href=\"mailto:a@b.test\">mail</a></p>",
    );
    assert_eq!(
        r.doc["content"][0]["content"],
        json!([
            marked(
                "link",
                json!([{"type": "link", "attrs": {"href": "https://x.test/a?b=1&c=2"}}])
            ),
            text(" anchor js "),
            marked(
                "mail",
                json!([{"type": "link", "attrs": {"href": "mailto:a@b.test"}}])
            ),
        ])
    );
    assert!(r.warnings.iter().any(|w| w.contains("javascript")));
}

#[test]
fn all_marks() {
    let r = adf(
        "<p><strong>s</strong><b>b</b><em>e</em><i>i</i><u>u</u><s>x</s><strike>y</strike><del>d</del><code>c</code><sub>2</sub><sup>3</sup></p>",
    );
    let marks: Vec<Value> = r.doc["content"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([t["text"], t["marks"]]))
        .collect();
    assert_eq!(
        marks,
        vec![
            json!(["sb", [{"type": "strong"}]]),
            json!(["ei", [{"type": "em"}]]),
            json!(["u", [{"type": "underline"}]]),
            json!(["xyd", [{"type": "strike"}]]),
            json!(["c", [{"type": "code"}]]),
            json!(["2", [{"type": "subsup", "attrs": {"type": "sub"}}]]),
            json!(["3", [{"type": "subsup", "attrs": {"type": "sup"}}]]),
        ]
    );
}

#[test]
fn code_mark_never_combines_with_formatting() {
    let r = adf("<p><b><a href=\"https://x.test\"><code>bold link code</code></a></b></p>");
    assert_eq!(
        r.doc["content"][0]["content"][0]["marks"],
        json!([{"type": "link", "attrs": {"href": "https://x.test"}}, {"type": "code"}])
    );
}

#[test]
fn colors_become_text_color_hex() {
    let r = adf(
        "<p><span style=\"color: #F00\">a</span><font color=\"blue\">b</font><span style=\"COLOR:rgb(0, 128, 0) !important\">c</span><span style=\"color:black\">d</span><span style=\"color:bogus\">e</span><font color=\"00ff00\">f</font></p>",
    );
    let got: Vec<Value> = r.doc["content"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([t["text"], t["marks"][0]["attrs"]["color"]]))
        .collect();
    assert_eq!(
        got,
        vec![
            json!(["a", "#ff0000"]),
            json!(["b", "#0000ff"]),
            json!(["c", "#008000"]),
            json!(["de", null]),
            json!(["f", "#00ff00"]),
        ]
    );
}

#[test]
fn css_styles_give_marks() {
    let r = adf(
        "<p><span style=\"font-weight:700\">b</span><span style=\"font-style:italic\">i</span><span style=\"text-decoration: underline line-through\">ul</span><b><span style=\"font-weight:normal\">n</span></b></p>",
    );
    let got: Vec<Value> = r.doc["content"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([t["text"], t["marks"]]))
        .collect();
    assert_eq!(
        got,
        vec![
            json!(["b", [{"type": "strong"}]]),
            json!(["i", [{"type": "em"}]]),
            json!(["ul", [{"type": "underline"}, {"type": "strike"}]]),
            json!(["n", null]),
        ]
    );
}

#[test]
fn line_breaks_and_blank_lines() {
    let r = adf("<p>line one<br>  line two<br></p><div><br></div><p>after</p>");
    assert_eq!(
        r.doc["content"],
        json!([
            para(json!([text("line one"), {"type": "hardBreak"}, text("line two")])),
            {"type": "paragraph", "content": []},
            para(json!([text("after")])),
        ])
    );
}

#[test]
fn horizontal_rule() {
    let r = adf("<p>a</p><hr><p>b</p><ul><li>x<hr>y</li></ul>");
    let c = content(&r.doc);
    assert_eq!(c[1], json!({"type": "rule"}));
    // No rule in a list item: dropped there, its neighbours kept.
    assert_eq!(
        c[3]["content"][0]["content"],
        json!([para(json!([text("x")])), para(json!([text("y")]))])
    );
}

#[test]
fn resolved_image_becomes_media_and_splits_the_paragraph() {
    let resolver = |src: &str| {
        (src == "https://files.test/shot.png").then(|| MediaRef {
            id: "6e7c1a8e-3f0e-4c1e-9d55-2f9a4c0b1d22".into(),
            collection: String::new(),
            alt: None,
            width: Some(400),
            height: None,
        })
    };
    let opts = AdfOptions::with_images(&resolver);
    let r = convert_checked(
        "<p>before <img src=\"https://files.test/shot.png\" alt=\"the shot\" height=\"300\"> after</p>",
        &opts,
    );
    assert_eq!(
        r.doc["content"],
        json!([
            para(json!([text("before")])),
            {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
                {"type": "media", "attrs": {
                    "type": "file", "id": "6e7c1a8e-3f0e-4c1e-9d55-2f9a4c0b1d22", "collection": "",
                    "alt": "the shot", "width": 400, "height": 300
                }}
            ]},
            para(json!([text("after")])),
        ])
    );
    assert_eq!(r.images.len(), 1);
    assert!(r.images[0].resolved);
    assert_eq!(
        r.images[0].media_id.as_deref(),
        Some("6e7c1a8e-3f0e-4c1e-9d55-2f9a4c0b1d22")
    );
}

#[test]
fn linked_resolved_image_keeps_the_link_on_the_media() {
    let opts = AdfOptions::with_images(&resolve_all);
    let r = convert_checked(
        "<a href=\"https://x.test/full\"><img src=\"a.png\"></a>",
        &opts,
    );
    let media = &r.doc["content"][0]["content"][0];
    assert_eq!(
        media["marks"],
        json!([{"type": "link", "attrs": {"href": "https://x.test/full"}}])
    );
    assert_eq!(media["attrs"]["alt"], "a.png");
}

#[test]
fn unresolved_images_degrade_to_links_or_text() {
    let r = adf(
        "<p>see<img src=\"https://h.test/a/screen.png?token=abc\" alt=\"Screen shot\">and<img src=\"cid:image002.png@01DA\">or<img alt=\"no src\"><img></p>",
    );
    assert_eq!(
        r.doc["content"][0]["content"],
        json!([
            text("see "),
            marked(
                "Screen shot",
                json!([{"type": "link", "attrs": {"href": "https://h.test/a/screen.png?token=abc"}}])
            ),
            text(" and image002.png@01DA or no src"),
        ])
    );
    assert_eq!(r.images.len(), 4);
    assert!(r.images.iter().all(|i| !i.resolved));
    assert_eq!(r.images[0].alt.as_deref(), Some("Screen shot"));
    // The warning names the image without its query string (it may hold a token).
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("https://h.test/a/screen.png?…"))
    );
    assert!(r.warnings.iter().all(|w| !w.contains("token=abc")));
}

#[test]
fn tracking_pixels_are_dropped_and_reported() {
    let r = adf("<p>hi<img src=\"https://t.test/p.gif?id=1\" width=\"1\" height=\"1\"></p>");
    assert_eq!(r.doc["content"], json!([para(json!([text("hi")]))]));
    assert!(r.images[0].tracking_pixel);
    assert!(r.warnings.iter().any(|w| w.contains("tracking")));
    assert!(
        deskshift_adf::image_sources(
            "<img src=a.png><img src=a.png><img src=p.gif width=1 height=1>"
        ) == vec!["a.png"]
    );
}

#[test]
fn images_in_headings_lists_quotes_and_code() {
    let opts = AdfOptions::with_images(&resolve_all);
    let r = convert_checked(
        "<h2>title <img src=h.png> end</h2><ul><li><img src=l.png></li></ul><blockquote><img src=q.png></blockquote><pre>x<img src=c.png>y</pre>",
        &opts,
    );
    let kinds: Vec<&str> = content(&r.doc)
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "heading",
            "mediaSingle",
            "heading",
            "bulletList",
            "blockquote",
            "codeBlock",
            "mediaSingle",
            "codeBlock"
        ]
    );
    assert_eq!(
        r.doc["content"][3]["content"][0]["content"][0]["type"],
        "mediaSingle"
    );
    assert_eq!(r.doc["content"][4]["content"][0]["type"], "mediaSingle");
}

#[test]
fn script_style_comments_dropped_entities_decoded() {
    let r = adf(
        "<style>p{color:red}</style><script>alert('x')</script><!-- secret --><p>a &amp; b &lt;c&gt; &eacute;&nbsp;&#128512; &copy;</p><noscript>ns</noscript><template><p>t</p></template>",
    );
    assert_eq!(
        r.doc["content"],
        json!([para(json!([text("a & b <c> é\u{a0}😀 ©")]))])
    );
}

#[test]
fn malformed_markup_keeps_every_word() {
    let html = "<p>unclosed <b>bold <i>italic</p></td><div>stray close</span><li>stray li</li><td>stray cell</td></b>";
    let r = adf(html);
    assert_eq!(
        normalize_text(&adf_text(&r.doc)),
        "unclosed bold italic stray close stray li stray cell"
    );
}

#[test]
fn heading_and_list_in_blockquote_are_separated() {
    // htmltoadf glued these two into one word; they must stay apart.
    let r =
        adf("<blockquote><ul><li>list in quote</li></ul><h1>heading in quote</h1></blockquote>");
    assert!(normalize_text(&adf_text(&r.doc)).contains("list in quote heading in quote"));
}

#[test]
fn right_to_left_and_emoji_text() {
    let r = adf("<p dir=\"rtl\">مرحبا بالعالم 👋🏽 שלום</p>");
    assert_eq!(
        r.doc["content"],
        json!([para(json!([text("مرحبا بالعالم 👋🏽 שלום")]))])
    );
}

#[test]
fn plain_text_keeps_its_lines() {
    let r = adf("Hi,\n\nThe app  crashes\nwhen I export.\n\n\nRegards");
    assert_eq!(
        r.doc["content"],
        json!([
            para(json!([text("Hi,")])),
            para(json!([text("The app crashes"), {"type": "hardBreak"}, text("when I export.")])),
            para(json!([text("Regards")])),
        ])
    );
    assert_eq!(
        text_to_adf("a\nb"),
        json!({"version": 1, "type": "doc", "content": [para(json!([text("a"), {"type": "hardBreak"}, text("b")]))]})
    );
    // With detection off the same input is HTML: one paragraph.
    let html = deskshift_adf::html_to_adf(
        "a\nb",
        &AdfOptions {
            detect_plain_text: false,
            ..AdfOptions::default()
        },
    );
    assert_eq!(html.doc["content"], json!([para(json!([text("a b")]))]));
}

#[test]
fn empty_and_whitespace_inputs() {
    for html in [
        "",
        "   \n ",
        "<p></p>",
        "<div> </div>",
        "<!-- only a comment -->",
        "<ul><li> </li></ul>",
        "<table></table>",
        "<pre>\n</pre>",
        "<h1> </h1>",
    ] {
        let r = adf(html);
        assert!(r.is_empty(), "{html:?} -> {}", r.doc);
    }
}

#[test]
fn full_document_input() {
    let r = adf(
        "<!DOCTYPE html><html><head><title>T</title><style>b{}</style></head><body><p>body text</p></body></html>",
    );
    assert_eq!(r.doc["content"], json!([para(json!([text("body text")]))]));
}

#[test]
fn caption_and_stray_table_content_keep_their_order() {
    let r = adf("<table><caption>Cap</caption><tr><td>cell</td></tr></table>");
    let kinds: Vec<&str> = content(&r.doc)
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["paragraph", "table"]);
}

#[test]
fn very_deep_nesting_is_kept_as_text() {
    // Runs on the test harness's default (small) thread stack on purpose.
    let depth = 5000;
    let html = format!(
        "{}deep text{}",
        "<div><b>".repeat(depth),
        "</b></div>".repeat(depth)
    );
    let r = adf(&html);
    assert_eq!(normalize_text(&adf_text(&r.doc)), "deep text");
    assert!(r.warnings.iter().any(|w| w.contains("nested deeper")));
    let lists = format!("{}item{}", "<ul><li>".repeat(300), "</li></ul>".repeat(300));
    let r = adf(&lists);
    assert_eq!(normalize_text(&adf_text(&r.doc)), "item");
    let unclosed = "<b><i><u><span>x ".repeat(1000);
    let r = adf(&unclosed);
    assert_eq!(
        normalize_text(&adf_text(&r.doc)),
        normalize_text(&"x ".repeat(1000))
    );
}

#[test]
fn provenance_paragraph_is_em_text() {
    assert_eq!(
        provenance_paragraph("Originally by Ana on 2024-01-05\nvia email"),
        para(json!([
            marked("Originally by Ana on 2024-01-05", json!([{"type": "em"}])),
            {"type": "hardBreak"},
            marked("via email", json!([{"type": "em"}])),
        ]))
    );
    let mut r = adf("<p>body</p>");
    prepend_block(&mut r.doc, provenance_paragraph("From Zoho"));
    common::assert_valid(&r.doc, "prepended");
    assert_eq!(normalize_text(&adf_text(&r.doc)), "From Zoho body");
    common::assert_valid(
        &json!({"version": 1, "type": "doc", "content": [provenance_paragraph("")]}),
        "empty provenance",
    );
}

#[test]
fn html_text_rules() {
    assert_eq!(html_text("<p>a  b</p><p>c<br>d</p>"), "a b\nc\nd\n");
    assert_eq!(
        normalize_text(&html_text("x<img alt='pic'>y<img src='/p/f.png'>")),
        "x pic y f.png"
    );
    assert_eq!(html_text("<pre> a\n  b</pre>").trim_end(), " a\n  b");
}
