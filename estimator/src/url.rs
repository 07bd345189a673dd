//! Resolution of relative URL references (RFC 3986 section 5.2), enough for worker URLs.
//!
//! The extension fetches the worker URLs the estimator reports and sends their sources back
//! under the same URL, so the result must be deterministic and in the normal form browsers
//! produce for ordinary http(s) URLs (dot segments removed, empty path becomes `/`). A full
//! WHATWG URL parser (IDNA, percent-encoding normalisation, backslashes) is deliberately out of
//! scope: the `url` crate would double the wasm size for cases page code rarely writes.

/// The five components of a URI reference; `None` means the component is absent (not empty).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// Splits a reference per RFC 3986 appendix B.
fn split(s: &str) -> Parts<'_> {
    let (rest, fragment) = match s.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (scheme, rest) = match rest.find(':') {
        Some(i) if is_scheme(&rest[..i]) => (Some(&rest[..i]), &rest[i + 1..]),
        _ => (None, rest),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    Parts {
        scheme,
        authority,
        path,
        query,
        fragment,
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 section 5.2.4, on whole segments rather than the RFC's character loop, so it is
/// linear in the path length.
fn remove_dot_segments(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    // A trailing "." or ".." names a directory, so the output keeps the trailing slash.
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        if i == 0 && absolute {
            continue;
        }
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    if absolute {
        result.push('/');
    }
    result.push_str(&out.join("/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

/// RFC 3986 section 5.2.3: the base path up to its last slash, then the reference path.
fn merge(base: &Parts<'_>, reference_path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{reference_path}");
    }
    match base.path.rfind('/') {
        Some(i) => format!("{}{}", &base.path[..=i], reference_path),
        None => reference_path.to_string(),
    }
}

fn recompose(
    scheme: &str,
    authority: Option<&str>,
    path: &str,
    q: Option<&str>,
    f: Option<&str>,
) -> String {
    let mut s = String::with_capacity(scheme.len() + path.len() + 16);
    s.push_str(&scheme.to_ascii_lowercase());
    s.push(':');
    if let Some(a) = authority {
        s.push_str("//");
        s.push_str(a);
    }
    // Browsers give hierarchical URLs with an authority the path "/" when it is empty.
    if authority.is_some() && path.is_empty() {
        s.push('/');
    } else {
        s.push_str(path);
    }
    if let Some(q) = q {
        s.push('?');
        s.push_str(q);
    }
    if let Some(f) = f {
        s.push('#');
        s.push_str(f);
    }
    s
}

/// Resolves `reference` against the absolute URL `base`. Returns `None` when the result would
/// not be absolute (the base is relative or opaque, like `about:blank` or `data:`).
pub fn resolve(base: &str, reference: &str) -> Option<String> {
    let reference = reference.trim();
    let r = split(reference);
    if let Some(scheme) = r.scheme {
        // An opaque absolute reference (blob:, data:) is returned as written.
        if r.authority.is_none() && !r.path.starts_with('/') {
            return Some(reference.to_string());
        }
        return Some(recompose(
            scheme,
            r.authority,
            &remove_dot_segments(r.path),
            r.query,
            r.fragment,
        ));
    }
    let b = split(base.trim());
    let scheme = b.scheme?;
    // Relative references only make sense against hierarchical bases.
    if b.authority.is_none() && !b.path.starts_with('/') {
        return None;
    }
    let (authority, path, query) = if r.authority.is_some() {
        (r.authority, remove_dot_segments(r.path), r.query)
    } else if r.path.is_empty() {
        (b.authority, b.path.to_string(), r.query.or(b.query))
    } else if r.path.starts_with('/') {
        (b.authority, remove_dot_segments(r.path), r.query)
    } else {
        (
            b.authority,
            remove_dot_segments(&merge(&b, r.path)),
            r.query,
        )
    };
    Some(recompose(scheme, authority, &path, query, r.fragment))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    const BASE: &str = "http://a/b/c/d;p?q";

    fn r(reference: &str) -> Option<String> {
        resolve(BASE, reference)
    }

    #[test]
    fn rfc3986_normal_examples() {
        let cases = [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            ("g?y#s", "http://a/b/c/g?y#s"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
        ];
        for (reference, want) in cases {
            assert_eq!(
                r(reference).as_deref(),
                Some(want),
                "reference {reference:?}"
            );
        }
    }

    #[test]
    fn rfc3986_abnormal_examples() {
        let cases = [
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g#s/../x", "http://a/b/c/g#s/../x"),
        ];
        for (reference, want) in cases {
            assert_eq!(
                r(reference).as_deref(),
                Some(want),
                "reference {reference:?}"
            );
        }
    }

    #[test]
    fn page_and_worker_cases() {
        assert_eq!(
            resolve("http://127.0.0.1:8080/app/index.html", "worker.js").as_deref(),
            Some("http://127.0.0.1:8080/app/worker.js")
        );
        assert_eq!(
            resolve("http://127.0.0.1:8080/app/", "/w/heavy.js?v=2").as_deref(),
            Some("http://127.0.0.1:8080/w/heavy.js?v=2")
        );
        assert_eq!(
            resolve("https://example.com", "w.js").as_deref(),
            Some("https://example.com/w.js")
        );
        assert_eq!(
            resolve(
                "https://example.com/a/b.js",
                "https://cdn.example.org/x/../w.js"
            )
            .as_deref(),
            Some("https://cdn.example.org/w.js")
        );
        assert_eq!(
            resolve("https://example.com/", "HTTPS://cdn.example.org").as_deref(),
            Some("https://cdn.example.org/")
        );
        assert_eq!(
            resolve("https://example.com/", "blob:https://example.com/1234").as_deref(),
            Some("blob:https://example.com/1234")
        );
        assert_eq!(resolve("about:blank", "w.js"), None);
        assert_eq!(resolve("not a url", "w.js"), None);
        assert_eq!(resolve("", ""), None);
        assert_eq!(
            resolve("http://a/b", "  w.js  ").as_deref(),
            Some("http://a/w.js")
        );
    }
}
