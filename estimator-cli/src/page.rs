//! Turns a page given on the command line (a local HTML file or a loopback URL) into the
//! `PageSources` the extension would have captured: the HTML's scripts fetched (from disk for
//! a file, over loopback HTTP for a URL), its style sheets measured, its inline handlers
//! listed. Then estimates it like the extension's orchestrator does: once, then again with
//! the worker scripts the first estimate found.

use std::path::Path;

use foresight_estimator::url;
use foresight_estimator::{Budget, Calibration, estimate_within};
use foresight_shared::protocol::demand::{
    InlineHandler, PageDemand, PageSources, ScriptKind, ScriptSource, StylesheetSource, TabActivity,
};

use crate::html::{self, StyleTag};
use crate::http::{self, HttpError};

#[derive(Debug)]
pub enum LoadError {
    Io(String, std::io::Error),
    Http(HttpError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(what, e) => write!(f, "{what}: {e}"),
            LoadError::Http(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<HttpError> for LoadError {
    fn from(e: HttpError) -> Self {
        LoadError::Http(e)
    }
}

/// A page ready to estimate, plus what could not be fetched (the estimator prices those by
/// size and says so; these notes say why).
#[derive(Debug, Clone)]
pub struct Page {
    pub sources: PageSources,
    pub notes: Vec<String>,
}

/// Whether `input` names a URL rather than a file.
pub fn is_url(input: &str) -> bool {
    input.contains("://")
}

/// Reads a resource by absolute URL: `file://` from disk, `http://` over loopback.
pub fn fetch(resource: &str) -> Result<Vec<u8>, LoadError> {
    if let Some(path) = resource.strip_prefix("file://") {
        let path = percent_decode(path.split(['?', '#']).next().unwrap_or(path));
        return std::fs::read(&path).map_err(|e| LoadError::Io(path, e));
    }
    Ok(http::get(resource)?.1)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn file_url(path: &Path) -> Result<String, LoadError> {
    let abs =
        std::fs::canonicalize(path).map_err(|e| LoadError::Io(path.display().to_string(), e))?;
    let mut url = String::from("file://");
    for c in abs.to_string_lossy().chars() {
        match c {
            ' ' => url.push_str("%20"),
            '#' => url.push_str("%23"),
            '?' => url.push_str("%3F"),
            '%' => url.push_str("%25"),
            c => url.push(c),
        }
    }
    Ok(url)
}

/// Loads a page: a path to an HTML file, or a loopback `http://` URL.
pub fn load(input: &str) -> Result<Page, LoadError> {
    let (base, html) = if is_url(input) {
        let (final_url, body) = http::get(input)?;
        (final_url, body)
    } else {
        let path = Path::new(input);
        let html = std::fs::read(path).map_err(|e| LoadError::Io(input.to_string(), e))?;
        (file_url(path)?, html)
    };
    let text = String::from_utf8_lossy(&html);
    Ok(from_html(&base, &text, html.len() as u64, &mut |u| {
        fetch(u)
    }))
}

/// Builds the page's sources from its HTML, fetching subresources with `fetch` (given
/// absolute URLs). Failed fetches become notes and scripts without source.
pub fn from_html(
    base: &str,
    html: &str,
    html_bytes: u64,
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, LoadError>,
) -> Page {
    let scanned = html::scan(html);
    let mut notes = Vec::new();
    let mut scripts = Vec::new();
    for tag in &scanned.scripts {
        let kind = if tag.module {
            ScriptKind::Module
        } else if tag.src.is_some() && tag.is_async {
            ScriptKind::Async
        } else if tag.src.is_some() && tag.defer {
            ScriptKind::Defer
        } else {
            ScriptKind::Classic
        };
        match &tag.src {
            None => {
                let text = tag.text.clone().unwrap_or_default();
                scripts.push(ScriptSource {
                    url: None,
                    kind,
                    bytes: text.len() as u64,
                    source: Some(text),
                });
            }
            Some(src) => {
                let resolved = url::resolve(base, src).unwrap_or_else(|| src.clone());
                let (source, bytes) = match fetch(&resolved) {
                    Ok(body) => {
                        let text = String::from_utf8_lossy(&body).into_owned();
                        let n = text.len() as u64;
                        (Some(text), n)
                    }
                    Err(e) => {
                        notes.push(format!("script not fetched: {e}"));
                        (None, 0)
                    }
                };
                scripts.push(ScriptSource {
                    url: Some(resolved),
                    kind,
                    source,
                    bytes,
                });
            }
        }
    }
    let mut stylesheets = Vec::new();
    for style in &scanned.styles {
        match style {
            StyleTag::Inline(css) => stylesheets.push(StylesheetSource {
                url: None,
                bytes: css.len() as u64,
                rules: Some(html::count_css_rules(css)),
            }),
            StyleTag::Link(href) => {
                let resolved = url::resolve(base, href).unwrap_or_else(|| href.clone());
                let (bytes, rules) = match fetch(&resolved) {
                    Ok(body) => {
                        let css = String::from_utf8_lossy(&body);
                        (body.len() as u64, Some(html::count_css_rules(&css)))
                    }
                    Err(e) => {
                        notes.push(format!("style sheet not fetched: {e}"));
                        (0, None)
                    }
                };
                stylesheets.push(StylesheetSource {
                    url: Some(resolved),
                    bytes,
                    rules,
                });
            }
        }
    }
    let handlers = scanned
        .handlers
        .into_iter()
        .map(|h| InlineHandler {
            element: h.element,
            event: h.event,
            source: h.source,
        })
        .collect();
    Page {
        sources: PageSources {
            url: base.to_string(),
            html_bytes,
            scripts,
            handlers,
            stylesheets,
            activity: TabActivity {
                visible: true,
                focused: true,
                dom_nodes: scanned.elements,
                interactions: 0,
                // A static scan cannot tell which elements have a box.
                hidden_targets: Vec::new(),
            },
        },
        notes,
    }
}

/// Estimates the page as the extension does: once, then again with the scripts of the
/// workers the first pass found (fetched with `fetch`), so workers are priced from their code.
pub fn estimate(
    page: &mut Page,
    calibration: &Calibration,
    budget: Budget,
    fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, LoadError>,
) -> PageDemand {
    let demand = estimate_within(&page.sources, calibration, budget);
    let missing: Vec<String> = demand
        .components
        .iter()
        .filter(|c| !c.source_known)
        .filter_map(|c| c.url.clone())
        .filter(|u| {
            !page
                .sources
                .scripts
                .iter()
                .any(|s| s.url.as_deref() == Some(u))
        })
        .collect();
    if missing.is_empty() {
        return demand;
    }
    for u in missing {
        match fetch(&u) {
            Ok(body) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                page.sources.scripts.push(ScriptSource {
                    url: Some(u),
                    kind: ScriptKind::Worker,
                    bytes: text.len() as u64,
                    source: Some(text),
                });
            }
            Err(e) => page.notes.push(format!("worker script not fetched: {e}")),
        }
    }
    estimate_within(&page.sources, calibration, budget)
}
