//! A minimal HTTP/1.1 client for loopback URLs only (`http://127.0.0.1:PORT/...`,
//! `http://localhost/...`, `http://[::1]/...`): one `GET` per connection, `Connection: close`,
//! `Content-Length`, chunked or read-to-end bodies, redirects within loopback. Enough to fetch
//! a page under test and its scripts without a TLS stack or an async runtime.
//!
//! Anything that is not loopback is refused: the tool exists to measure pages served locally.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest response body accepted (a page or a script), like the extension's fetch limit.
pub const MAX_BODY_BYTES: usize = 64 << 20;
const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REDIRECTS: u32 = 5;

#[derive(Debug)]
pub enum HttpError {
    NotLoopback(String),
    BadUrl(String),
    Io(String, std::io::Error),
    Status(String, u16),
    Malformed(String, &'static str),
    TooLarge(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::NotLoopback(u) => write!(
                f,
                "{u}: only loopback URLs (127.0.0.1, localhost, [::1]) over http:// are fetched"
            ),
            HttpError::BadUrl(u) => write!(f, "{u}: not a valid http:// URL"),
            HttpError::Io(u, e) => write!(f, "{u}: {e}"),
            HttpError::Status(u, s) => write!(f, "{u}: HTTP status {s}"),
            HttpError::Malformed(u, what) => write!(f, "{u}: malformed response ({what})"),
            HttpError::TooLarge(u) => write!(f, "{u}: body larger than {MAX_BODY_BYTES} bytes"),
        }
    }
}

impl std::error::Error for HttpError {}

/// The parts of an `http://` URL this client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loopback {
    /// As written in the URL (`127.0.0.1`, `localhost`, `[::1]`).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

/// Splits a loopback `http://` URL; anything else is an error.
pub fn parse_loopback(url: &str) -> Result<Loopback, HttpError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::NotLoopback(url.to_string()))?;
    let (authority, target) = match rest.find(['/', '?', '#']) {
        Some(p) => (&rest[..p], &rest[p..]),
        None => (rest, "/"),
    };
    let target = target.split('#').next().unwrap_or("/");
    let target = if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/{target}")
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| HttpError::BadUrl(url.to_string()))?;
        let host = format!("[{}]", &v6[..end]);
        let port = v6[end + 1..].strip_prefix(':');
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| HttpError::BadUrl(url.to_string()))?,
        None => 80,
    };
    let lower = host.to_ascii_lowercase();
    let loopback = lower == "localhost"
        || lower == "[::1]"
        || lower
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback());
    if !loopback {
        return Err(HttpError::NotLoopback(url.to_string()));
    }
    Ok(Loopback { host, port, target })
}

/// `GET url`, following loopback redirects. Returns the final URL and the body.
pub fn get(url: &str) -> Result<(String, Vec<u8>), HttpError> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let lb = parse_loopback(&url)?;
        let (status, headers, body) = get_once(&url, &lb)?;
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let location = header(&headers, "location").ok_or(HttpError::Malformed(
                url.clone(),
                "redirect without Location",
            ))?;
            url = foresight_estimator::url::resolve(&url, location)
                .ok_or_else(|| HttpError::BadUrl(location.to_string()))?;
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(HttpError::Status(url, status));
        }
        return Ok((url, body));
    }
    Err(HttpError::Malformed(url, "too many redirects"))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

type Response = (u16, Vec<(String, String)>, Vec<u8>);

fn get_once(url: &str, lb: &Loopback) -> Result<Response, HttpError> {
    let io = |e| HttpError::Io(url.to_string(), e);
    let host = lb.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (host, lb.port).to_socket_addrs().map_err(io)?.collect();
    let mut last = None;
    let mut stream = None;
    for a in addrs.iter().filter(|a| a.ip().is_loopback()) {
        match TcpStream::connect_timeout(a, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = match (stream, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(io(e)),
        (None, None) => return Err(HttpError::NotLoopback(url.to_string())),
    };
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let host_header = if lb.port == 80 {
        lb.host.clone()
    } else {
        format!("{}:{}", lb.host, lb.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: foresight-estimate\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        lb.target
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_BODY_BYTES as u64 + 64 * 1024)
        .read_to_end(&mut raw)
        .map_err(io)?;
    parse_response(url, &raw)
}

/// Parses a complete HTTP/1.x response (the connection was closed after it).
pub fn parse_response(url: &str, raw: &[u8]) -> Result<Response, HttpError> {
    let bad = |what| HttpError::Malformed(url.to_string(), what);
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| bad("non-UTF-8 headers"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or(bad("no status line"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(bad("no status code"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let chunked = header(&headers, "transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or(bad("bad chunked encoding"))?
    } else if let Some(len) = header(&headers, "content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        rest.get(..len)
            .ok_or(bad("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(HttpError::TooLarge(url.to_string()));
    }
    Ok((status, headers, body))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        if body.len() > MAX_BODY_BYTES {
            return None;
        }
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        let ok = parse_loopback("http://127.0.0.1:8080/a/b.html?x=1#frag").expect("loopback");
        assert_eq!(ok.port, 8080);
        assert_eq!(ok.target, "/a/b.html?x=1");
        assert_eq!(
            parse_loopback("http://localhost/").map(|l| l.port).ok(),
            Some(80)
        );
        assert_eq!(
            parse_loopback("http://[::1]:9/x").map(|l| l.host).ok(),
            Some("[::1]".into())
        );
        assert!(parse_loopback("http://127.1.2.3:5").is_ok());
        for refused in [
            "https://127.0.0.1/",
            "http://example.com/",
            "http://10.0.0.1/",
            "http://127.0.0.1.evil.com/",
            "ftp://127.0.0.1/",
        ] {
            assert!(
                matches!(parse_loopback(refused), Err(HttpError::NotLoopback(_))),
                "{refused}"
            );
        }
        assert!(matches!(
            parse_loopback("http://127.0.0.1:notaport/"),
            Err(HttpError::BadUrl(_))
        ));
    }

    #[test]
    fn responses_with_length_chunks_or_close() {
        let (s, _, b) = parse_response(
            "u",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
        )
        .expect("ok");
        assert_eq!((s, b.as_slice()), (200, &b"hello"[..]));
        let (_, _, b) = parse_response(
            "u",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
        )
        .expect("ok");
        assert_eq!(b, b"hello world");
        let (s, _, b) = parse_response("u", b"HTTP/1.0 404 Not Found\r\n\r\ngone").expect("ok");
        assert_eq!((s, b.as_slice()), (404, &b"gone"[..]));
        assert!(parse_response("u", b"garbage").is_err());
        assert!(parse_response("u", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    }
}
