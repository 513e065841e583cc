//! Property tests: generated tag soup always converts to schema-valid ADF with the visible text kept.

mod common;

use common::{resolve_all, schema_errors};
use deskshift_adf::{AdfOptions, adf_text, html_text, html_to_adf, normalize_text};
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    // block openers
    "<p>",
    "<div>",
    "<h1>",
    "<h2>",
    "<h4>",
    "<h6>",
    "<blockquote>",
    "<pre>",
    "<pre><code class=\"language-js\">",
    "<ul>",
    "<ol>",
    "<ol start=\"4\">",
    "<li>",
    "<table>",
    "<thead>",
    "<tbody>",
    "<tr>",
    "<td>",
    "<th>",
    "<td colspan=\"2\">",
    "<td rowspan=\"3\">",
    "<caption>",
    "<dl>",
    "<dt>",
    "<dd>",
    "<center>",
    "<section>",
    // inline openers
    "<b>",
    "<strong>",
    "<i>",
    "<em>",
    "<u>",
    "<s>",
    "<strike>",
    "<del>",
    "<code>",
    "<sub>",
    "<sup>",
    "<span>",
    "<span style=\"color:#c00\">",
    "<span style=\"font-weight:bold;color:rgb(1,2,3)\">",
    "<font color=\"green\">",
    "<a href=\"https://example.com/x?a=1&amp;b=2\">",
    "<a>",
    "<a href=\"javascript:void(0)\">",
    "<a name=\"n\">",
    "<label>",
    "<x-custom>",
    "<o:p>",
    // voids and images
    "<br>",
    "<br/>",
    "</br>",
    "<hr>",
    "<img>",
    "<img src=\"https://files.test/a.png\" alt=\"Alt A\">",
    "<img src=\"cid:image001.png@01D\">",
    "<img alt=\"only alt\">",
    "<img src=\"https://t.test/p.gif\" width=\"1\" height=\"1\">",
    "<img src=\"data:image/png;base64,iVBORw0KGgo=\">",
    "<wbr>",
    // closers, often stray
    "</p>",
    "</div>",
    "</h1>",
    "</h2>",
    "</blockquote>",
    "</pre>",
    "</code>",
    "</ul>",
    "</ol>",
    "</li>",
    "</table>",
    "</tr>",
    "</td>",
    "</th>",
    "</thead>",
    "</b>",
    "</i>",
    "</em>",
    "</a>",
    "</span>",
    "</strong>",
    "</sup>",
    "</caption>",
    // invisible content
    "<script>var x = '<p>no</p>';</script>",
    "<style>p { color: red }</style>",
    "<!-- comment -->",
    "<title>not shown</title>",
    // text
    "hello",
    "world",
    " ",
    "  ",
    "\n",
    "\t",
    " \n\t ",
    "a&amp;b",
    "&lt;tag&gt;",
    "&nbsp;",
    "x&nbsp;&nbsp;y",
    "&#128512;",
    "&eacute;t&eacute;",
    "😀👍🏽",
    "مرحبا",
    "שלום עולם",
    "日本語",
    "Ünïcödé",
    "&",
    "<",
    ">",
    "a < b",
    "\u{200b}",
    "word.",
    "trailing ",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 1..60).prop_map(|t| t.concat())
}

fn check(html: &str, resolve: bool) -> Result<(), TestCaseError> {
    let opts = if resolve {
        AdfOptions::with_images(&resolve_all)
    } else {
        AdfOptions::default()
    };
    let r = html_to_adf(html, &opts);
    let errors = schema_errors(&r.doc);
    prop_assert!(
        errors.is_empty(),
        "invalid ADF for {:?}: {:?}\n{}",
        html,
        errors,
        r.doc
    );
    prop_assert_eq!(
        normalize_text(&adf_text(&r.doc)),
        normalize_text(&html_text(html)),
        "text differs for {:?}\n{}",
        html,
        r.doc
    );
    check_text_nodes(&r.doc)?;
    Ok(())
}

/// No empty text node and no empty list anywhere (the schema checks most of it; this names it).
fn check_text_nodes(v: &serde_json::Value) -> Result<(), TestCaseError> {
    if v["type"] == "text" {
        prop_assert!(v["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
    if let Some(children) = v["content"].as_array() {
        if matches!(
            v["type"].as_str(),
            Some("bulletList" | "orderedList" | "listItem" | "blockquote" | "table")
        ) {
            prop_assert!(!children.is_empty(), "empty {}", v["type"]);
        }
        for c in children {
            check_text_nodes(c)?;
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

proptest! {
    // PROPTEST_CASES raises the count for a longer local run.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn tag_soup_is_valid_and_keeps_text(html in soup(), resolve in any::<bool>()) {
        check(&html, resolve)?;
    }

    #[test]
    fn arbitrary_text_is_valid_and_keeps_text(html in "\\PC{0,200}") {
        check(&html, false)?;
    }
}

const WORDS: &[&str] = &[
    "alpha",
    "beta",
    "  gamma\n",
    "δέλτα",
    "מילה",
    "😀",
    "a&amp;b",
    "&nbsp;",
    "x < y",
    " ",
    "end.",
];

/// Well-formed but deeply mixed structure: tables in lists in quotes in cells, headings
/// everywhere, images inside links and code, so every placement rule gets exercised.
fn structured() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(WORDS).prop_map(str::to_string),
        Just("<br>".to_string()),
        Just("<hr>".to_string()),
        Just("<img src=\"https://files.test/i.png\" alt=\"Pic\">".to_string()),
        Just("<img src=\"/rel/no-alt.gif\">".to_string()),
    ];
    leaf.prop_recursive(6, 120, 6, |inner| {
        let kids = prop::collection::vec(inner, 0..5).prop_map(|v| v.concat());
        (
            prop::sample::select(&[
                "p", "div", "h1", "h3", "blockquote", "pre", "b", "em", "code", "a", "ul", "ol",
                "li", "table", "td", "th", "tr", "span", "sup",
            ][..]),
            kids,
        )
            .prop_map(|(tag, body)| match tag {
                "a" => format!("<a href=\"https://l.test/\">{body}</a>"),
                "ul" | "ol" => format!("<{tag}><li>{body}</li><li>{body}</li></{tag}>"),
                "table" => format!("<table><tr><th>{body}</th><td>{body}</td></tr><tr><td colspan=2>{body}</td></tr></table>"),
                "span" => format!("<span style=\"color:#123456\">{body}</span>"),
                t => format!("<{t}>{body}</{t}>"),
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 3, ..ProptestConfig::default() })]

    #[test]
    fn nested_structures_are_valid_and_keep_text(html in structured(), resolve in any::<bool>()) {
        check(&html, resolve)?;
    }
}
