//! Element classification, inline marks from tags and `style`, and the rules shared by the
//! converter and `html_text` (which elements are text, what an image contributes).

use std::rc::Rc;

use scraper::node::Element;

/// Elements whose content is not visible text.
pub(crate) fn is_dropped(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "template"
            | "title"
            | "noscript"
            | "iframe"
            | "noembed"
            | "noframes"
            | "head"
            | "meta"
            | "link"
            | "base"
    )
}

/// Elements that start and end a line (CSS display: block, list-item, table parts).
pub(crate) fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "caption"
            | "center"
            | "dd"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "frameset"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "legend"
            | "li"
            | "listing"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "optgroup"
            | "option"
            | "p"
            | "plaintext"
            | "pre"
            | "search"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "td"
            | "tfoot"
            | "th"
            | "thead"
            | "tr"
            | "ul"
            | "xmp"
    )
}

/// Elements whose text keeps its whitespace.
pub(crate) fn is_preformatted(name: &str) -> bool {
    matches!(name, "pre" | "listing" | "xmp" | "plaintext")
}

pub(crate) fn is_html_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C')
}

/// Collapses HTML whitespace runs to one space and trims the ends.
pub(crate) fn collapse_ws(s: &str) -> String {
    s.split(is_html_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An image of at most 1x1 declared pixels: a read-receipt tracker, not content.
pub(crate) fn is_tracking_pixel(el: &Element) -> bool {
    fn small(v: Option<&str>) -> bool {
        v.and_then(|v| {
            let digits: String = v.trim().chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        })
        .is_some_and(|n| n <= 1)
    }
    small(el.attr("width")) && small(el.attr("height"))
}

/// The word an image contributes to the visible text: alt, else the src's file name.
pub(crate) fn image_label(alt: Option<&str>, src: &str) -> String {
    let alt = alt.map(collapse_ws).unwrap_or_default();
    if !alt.is_empty() {
        return alt;
    }
    let src = src.trim();
    if src.is_empty() {
        return String::new();
    }
    if scheme_of(src).is_some_and(|s| s.eq_ignore_ascii_case("data")) {
        return "embedded image".to_string();
    }
    let path = src.split(['?', '#']).next().unwrap_or(src);
    let path = path
        .strip_prefix("cid:")
        .or_else(|| path.strip_prefix("CID:"))
        .unwrap_or(path);
    let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    let name = collapse_ws(name);
    if name.is_empty() || name.ends_with(':') {
        collapse_ws(src)
    } else {
        name
    }
}

/// The URL scheme (letters before the first ':'), if the string has one.
pub(crate) fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
        .then_some(scheme)
}

const SAFE_SCHEMES: &[&str] = &[
    "http", "https", "mailto", "tel", "ftp", "ftps", "sftp", "sip", "sips", "callto", "skype",
    "irc", "news",
];

/// Why an href is not used as a link.
pub(crate) enum HrefRejected {
    Empty,
    UnsafeScheme(String),
}

/// The href to put in a link mark; `javascript:`, `data:` and other schemes outside a safe list are
/// refused (browsers ignore tabs and newlines inside a scheme, so those are removed first).
pub(crate) fn safe_href(href: &str) -> Result<String, HrefRejected> {
    let h: String = href
        .trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if h.is_empty() || h.starts_with('#') {
        return Err(HrefRejected::Empty);
    }
    match scheme_of(&h) {
        Some(s) if !SAFE_SCHEMES.iter().any(|ok| s.eq_ignore_ascii_case(ok)) => {
            Err(HrefRejected::UnsafeScheme(s.to_ascii_lowercase()))
        }
        _ => Ok(h),
    }
}

/// A URL as it may appear in a warning: no query or fragment (they can hold tokens), bounded length.
pub(crate) fn display_url(src: &str) -> String {
    if scheme_of(src).is_some_and(|s| s.eq_ignore_ascii_case("data")) {
        let mime = src[5..].split([';', ',']).next().unwrap_or("");
        return format!("data:{mime} URI");
    }
    let base = src.split(['?', '#']).next().unwrap_or(src);
    let mut out: String = base.chars().take(120).collect();
    if base.chars().count() > 120 {
        out.push('…');
    }
    if base.len() < src.len() {
        out.push_str("?…");
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubSup {
    Sub,
    Sup,
}

/// The inline marks in force at a point of the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    pub strong: bool,
    pub em: bool,
    pub underline: bool,
    pub strike: bool,
    pub code: bool,
    pub subsup: Option<SubSup>,
    pub color: Option<[u8; 3]>,
    pub link: Option<Rc<str>>,
}

/// Something the marks pass wants reported.
pub(crate) enum MarkNote {
    UnsafeLink(String),
}

/// Applies the marks an element implies (its tag, its `style`, `<font color>`, `<a href>`).
pub(crate) fn apply_element(name: &str, el: &Element, m: &mut Marks) -> Option<MarkNote> {
    let mut note = None;
    match name {
        "b" | "strong" => m.strong = true,
        "i" | "em" | "cite" | "var" | "dfn" => m.em = true,
        "u" | "ins" => m.underline = true,
        "s" | "strike" | "del" => m.strike = true,
        "code" | "kbd" | "samp" | "tt" => m.code = true,
        "sub" => m.subsup = Some(SubSup::Sub),
        "sup" => m.subsup = Some(SubSup::Sup),
        "font" => {
            if let Some(c) = el.attr("color") {
                apply_color(c, m);
            }
        }
        "a" => {
            if let Some(href) = el.attr("href") {
                match safe_href(href) {
                    Ok(h) => m.link = Some(Rc::from(h)),
                    Err(HrefRejected::Empty) => m.link = None,
                    Err(HrefRejected::UnsafeScheme(s)) => {
                        m.link = None;
                        note = Some(MarkNote::UnsafeLink(s));
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(style) = el.attr("style") {
        apply_style(style, m);
    }
    note
}

fn apply_style(style: &str, m: &mut Marks) {
    for decl in style.split(';') {
        let Some((prop, value)) = decl.split_once(':') else {
            continue;
        };
        let prop = prop.trim().to_ascii_lowercase();
        let value = value.trim().to_ascii_lowercase();
        let value = value.trim_end_matches("!important").trim();
        match prop.as_str() {
            "color" => apply_color(value, m),
            "font-weight" => match value {
                "bold" | "bolder" => m.strong = true,
                "normal" | "lighter" => m.strong = false,
                v => {
                    if let Ok(n) = v.parse::<u32>() {
                        m.strong = n >= 600;
                    }
                }
            },
            "font-style" => match value {
                "normal" => m.em = false,
                v if v.starts_with("italic") || v.starts_with("oblique") => m.em = true,
                _ => {}
            },
            "text-decoration" | "text-decoration-line" => {
                if value.contains("underline") {
                    m.underline = true;
                }
                if value.contains("line-through") {
                    m.strike = true;
                }
            }
            "vertical-align" => match value {
                "sub" => m.subsup = Some(SubSup::Sub),
                "super" => m.subsup = Some(SubSup::Sup),
                "baseline" => m.subsup = None,
                _ => {}
            },
            _ => {}
        }
    }
}

/// Sets the text colour; black (the default text colour) clears it, unknown values are ignored.
fn apply_color(value: &str, m: &mut Marks) {
    let v = value.trim();
    let legacy_hex = v.len() == 6 && v.chars().all(|c| c.is_ascii_hexdigit());
    let parsed = if legacy_hex {
        csscolorparser::parse(&format!("#{v}"))
    } else {
        csscolorparser::parse(v)
    };
    if let Ok(c) = parsed {
        let [r, g, b, a] = c.to_rgba8();
        m.color = if a == 0 || [r, g, b] == [0, 0, 0] {
            None
        } else {
            Some([r, g, b])
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(image_label(Some("  a \n b "), "x.png"), "a b");
        assert_eq!(image_label(None, "https://h/p/shot.png?x=1"), "shot.png");
        assert_eq!(
            image_label(None, "cid:image002.png@01DA"),
            "image002.png@01DA"
        );
        assert_eq!(
            image_label(Some(""), "data:image/png;base64,AAAA"),
            "embedded image"
        );
        assert_eq!(image_label(None, ""), "");
        assert_eq!(image_label(None, "https://host/"), "host");
    }

    #[test]
    fn hrefs() {
        assert!(safe_href("https://x.test/a").is_ok());
        assert!(safe_href("/relative/path").is_ok());
        assert!(matches!(
            safe_href(" java\tscript:alert(1)"),
            Err(HrefRejected::UnsafeScheme(s)) if s == "javascript"
        ));
        assert!(matches!(safe_href(""), Err(HrefRejected::Empty)));
        assert!(matches!(safe_href("#top"), Err(HrefRejected::Empty)));
    }

    #[test]
    fn urls_in_warnings_lose_query() {
        assert_eq!(
            display_url("https://h/x.png?authtoken=SECRET"),
            "https://h/x.png?…"
        );
        assert_eq!(
            display_url("data:image/png;base64,AAAA"),
            "data:image/png URI"
        );
    }
}
