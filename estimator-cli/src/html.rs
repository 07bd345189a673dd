//! A small, tolerant HTML scanner: finds what the extension's content script would capture
//! from the DOM (scripts with their kind, inline `on*` handlers, style sheets, the element
//! count), without building a DOM.
//!
//! It understands tags with quoted and unquoted attributes, comments, `<!DOCTYPE>`, and the
//! raw-text elements (`script`, `style`, `textarea`, `title`) whose content is not markup.
//! Malformed input never fails: an unclosed tag or comment ends the scan where it starts.

/// A `<script>` the browser would run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptTag {
    /// The `src` attribute as written (unresolved).
    pub src: Option<String>,
    pub module: bool,
    pub is_async: bool,
    pub defer: bool,
    /// The inline text, for a script without `src`.
    pub text: Option<String>,
}

/// A style sheet: `<link rel="stylesheet" href>` or an inline `<style>`.
#[derive(Debug, Clone, PartialEq)]
pub enum StyleTag {
    Link(String),
    Inline(String),
}

/// An inline event-handler attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerAttr {
    /// `tag#id` or `tag`, as the content script describes elements.
    pub element: String,
    pub event: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HtmlPage {
    pub scripts: Vec<ScriptTag>,
    pub styles: Vec<StyleTag>,
    pub handlers: Vec<HandlerAttr>,
    /// Start tags seen (the DOM's element count, give or take implied elements).
    pub elements: u32,
}

/// Whether a `type` attribute names JavaScript (absent, a JS MIME type, or `module`), as the
/// content script's `isJavaScript`.
fn is_javascript(ty: Option<&str>) -> bool {
    let Some(t) = ty.map(|t| t.trim().to_ascii_lowercase()) else {
        return true;
    };
    if t.is_empty() || t == "module" {
        return true;
    }
    let Some((kind, sub)) = t.split_once('/') else {
        return false;
    };
    let sub = sub.strip_prefix("x-").unwrap_or(sub);
    matches!(kind, "text" | "application") && matches!(sub, "javascript" | "ecmascript")
}

struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
    /// Byte offset just past the `>`.
    end: usize,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(n, _)| n == name)
    }
}

/// Parses the tag starting at `s[at] == b'<'` followed by a letter; `None` if unterminated.
fn parse_tag(html: &str, at: usize) -> Option<Tag> {
    let s = html.as_bytes();
    let mut i = at + 1;
    let start = i;
    while i < s.len() && !s[i].is_ascii_whitespace() && s[i] != b'>' && s[i] != b'/' {
        i += 1;
    }
    let name = html.get(start..i)?.to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < s.len() && (s[i].is_ascii_whitespace() || s[i] == b'/') {
            i += 1;
        }
        if i >= s.len() {
            return None;
        }
        if s[i] == b'>' {
            return Some(Tag {
                name,
                attrs,
                end: i + 1,
            });
        }
        let n0 = i;
        while i < s.len() && !s[i].is_ascii_whitespace() && !matches!(s[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let attr_name = html.get(n0..i)?.to_ascii_lowercase();
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < s.len() && s[i] == b'=' {
            i += 1;
            while i < s.len() && s[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < s.len() && (s[i] == b'"' || s[i] == b'\'') {
                let q = s[i];
                let v0 = i + 1;
                let v1 = v0 + s.get(v0..)?.iter().position(|&c| c == q)?;
                value = decode_entities(html.get(v0..v1)?);
                i = v1 + 1;
            } else {
                let v0 = i;
                while i < s.len() && !s[i].is_ascii_whitespace() && s[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(html.get(v0..i)?);
            }
        }
        if !attr_name.is_empty() {
            attrs.push((attr_name, value));
        }
    }
}

/// The few character references that matter in attribute values (URLs and handler code).
fn decode_entities(v: &str) -> String {
    if !v.contains('&') {
        return v.to_string();
    }
    v.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Finds `</name` (ASCII case-insensitive) from `from`; returns its offset.
fn find_close(html: &str, from: usize, name: &str) -> Option<usize> {
    let s = html.as_bytes();
    let n = name.as_bytes();
    let mut i = from;
    while let Some(p) = s.get(i..)?.windows(2).position(|w| w == b"</") {
        let at = i + p;
        if s.get(at + 2..at + 2 + n.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(n))
        {
            return Some(at);
        }
        i = at + 2;
    }
    None
}

/// Scans `html`.
pub fn scan(html: &str) -> HtmlPage {
    let s = html.as_bytes();
    let mut page = HtmlPage::default();
    let mut i = 0;
    while let Some(off) = s
        .get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'<'))
    {
        i += off;
        let rest = &s[i..];
        if rest.starts_with(b"<!--") {
            match html.get(i + 4..).and_then(|r| r.find("-->")) {
                Some(p) => i += 4 + p + 3,
                None => break,
            }
            continue;
        }
        let Some(&next) = rest.get(1) else { break };
        if next == b'!' || next == b'?' || next == b'/' {
            // Doctype, processing instruction or end tag: skip to `>`.
            match rest.iter().position(|&c| c == b'>') {
                Some(p) => i += p + 1,
                None => break,
            }
            continue;
        }
        if !next.is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let Some(tag) = parse_tag(html, i) else { break };
        page.elements = page.elements.saturating_add(1);
        for (name, value) in &tag.attrs {
            if let Some(event) = name.strip_prefix("on")
                && !event.is_empty()
                && !value.is_empty()
            {
                page.handlers.push(HandlerAttr {
                    element: match tag.attr("id").filter(|id| !id.is_empty()) {
                        Some(id) => format!("{}#{id}", tag.name),
                        None => tag.name.clone(),
                    },
                    event: event.to_string(),
                    source: value.clone(),
                });
            }
        }
        i = tag.end;
        match tag.name.as_str() {
            "script" | "style" | "textarea" | "title" => {
                let close = find_close(html, i, &tag.name).unwrap_or(html.len());
                let text = html.get(i..close).unwrap_or("");
                match tag.name.as_str() {
                    "script" if is_javascript(tag.attr("type")) => {
                        let src = tag.attr("src").map(str::to_string);
                        page.scripts.push(ScriptTag {
                            text: src.is_none().then(|| text.to_string()),
                            module: tag
                                .attr("type")
                                .is_some_and(|t| t.trim().eq_ignore_ascii_case("module")),
                            is_async: tag.has("async"),
                            defer: tag.has("defer"),
                            src,
                        });
                    }
                    "style" => page.styles.push(StyleTag::Inline(text.to_string())),
                    _ => {}
                }
                i = close;
            }
            "link" => {
                let rel = tag.attr("rel").unwrap_or("").to_ascii_lowercase();
                if rel.split_whitespace().any(|r| r == "stylesheet")
                    && let Some(href) = tag.attr("href")
                {
                    page.styles.push(StyleTag::Link(href.to_string()));
                }
            }
            _ => {}
        }
    }
    page
}

/// Rules in a style sheet, roughly: its top-level and nested blocks (`{`), outside comments.
pub fn count_css_rules(css: &str) -> u32 {
    let mut n = 0u32;
    let mut rest = css;
    while let Some(p) = rest.find(['{', '/']) {
        if rest[p..].starts_with("/*") {
            match rest[p + 2..].find("*/") {
                Some(q) => rest = &rest[p + 2 + q + 2..],
                None => break,
            }
            continue;
        }
        if rest.as_bytes()[p] == b'{' {
            n = n.saturating_add(1);
        }
        rest = &rest[p + 1..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scripts_styles_and_handlers_like_the_content_script() {
        let html = r#"<!DOCTYPE html>
<html><head>
<!-- <script src="commented.js"></script> -->
<link rel="stylesheet" href="css/site.css">
<style>a { color: red } /* { */ b { x: y }</style>
<script src="lib.js"></script>
<script src="late.js" defer></script>
<script type="module" src="app.mjs"></script>
<script async src=analytics.js></script>
<script type="application/json">{"not": "code"}</script>
<script>if (a < b) { document.write("</div>"); }</script>
</head><body onload="init()">
<button id="go" onclick="run(&quot;x&quot;)">Go</button>
<textarea><script>not a script</script></textarea>
</body></html>"#;
        let p = scan(html);
        let srcs: Vec<Option<&str>> = p.scripts.iter().map(|s| s.src.as_deref()).collect();
        assert_eq!(
            srcs,
            vec![
                Some("lib.js"),
                Some("late.js"),
                Some("app.mjs"),
                Some("analytics.js"),
                None
            ]
        );
        assert!(p.scripts[1].defer && p.scripts[2].module && p.scripts[3].is_async);
        assert_eq!(
            p.scripts[4].text.as_deref(),
            Some(r#"if (a < b) { document.write("</div>"); }"#)
        );
        assert_eq!(p.styles.len(), 2);
        assert_eq!(p.styles[0], StyleTag::Link("css/site.css".into()));
        let StyleTag::Inline(css) = &p.styles[1] else {
            panic!("inline style")
        };
        assert_eq!(count_css_rules(css), 2);
        assert_eq!(
            p.handlers,
            vec![
                HandlerAttr {
                    element: "body".into(),
                    event: "load".into(),
                    source: "init()".into()
                },
                HandlerAttr {
                    element: "button#go".into(),
                    event: "click".into(),
                    source: "run(\"x\")".into()
                },
            ]
        );
        assert!(p.elements >= 12);
    }

    #[test]
    fn malformed_html_never_fails() {
        for html in [
            "<",
            "<script",
            "<script>unclosed",
            "<!-- open",
            "<a href='x",
            "<<<>>>",
            "<\u{e9}>",
        ] {
            let _ = scan(html);
        }
        assert_eq!(scan("<script>x()").scripts[0].text.as_deref(), Some("x()"));
    }
}
