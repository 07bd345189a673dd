//! Who may use the broker, and how much of it: the page Origin and the connection limit at
//! the websocket handshake, access tokens at `hello` (with a connection limit per token),
//! and the rate of messages per connection.
//!
//! The embedded default (no tokens) still checks Origin: any web page can open a websocket
//! to `ws://127.0.0.1`, and without the check any page the user visits could lease the
//! machine and run code on it. Clients that send no Origin are not web pages and pass.
//!
//! One exception: a URL whose query names [`DATA_CHANNEL_QUERY`] opens a data channel, from
//! any origin (a content script's websocket carries its page's Origin). Such a connection
//! may take no other role (`connection/channel.rs`): it can carry only the data of workers
//! that an admitted connection bound to its random id, so a page that opens one gains
//! nothing. Tokens still apply to it at `hello`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::config::ClientToken;

/// The query parameter (`?role=data_channel`) of a data channel's URL.
pub(crate) const DATA_CHANNEL_QUERY: &str = "role=data_channel";

/// Data channels open at once, at most, as a share of the connection limit: any page can open
/// them (they pass the Origin check), so without a cap of their own a page could fill every
/// seat and keep the extension's own connection out. Past it a channel is refused and the
/// extension relays through its connection, as it does with no channel.
pub(crate) fn max_channels(max_connections: usize) -> usize {
    (max_connections / 2).max(1)
}

/// Counts a data channel while it is open (see [`max_channels`]).
pub(crate) struct ChannelSeat<'a>(&'a AtomicUsize);

impl<'a> ChannelSeat<'a> {
    pub(crate) fn take(open: &'a AtomicUsize) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        Self(open)
    }
}

impl Drop for ChannelSeat<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a websocket from `origin` may connect: exact matches, or prefixes written with a
/// trailing `*`. An empty list allows every origin.
pub(crate) fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    allowed.is_empty()
        || allowed
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => origin.starts_with(prefix),
                None => origin == pattern,
            })
}

/// The handshake's check: refuses a disallowed Origin with 403 and, when the broker is at
/// its connection limit, everyone with 503 — a typed refusal rather than a dropped socket.
/// A data channel's URL passes from any origin, while fewer than `channels.1` are open
/// (`channels.0`), and sets `data_channel`.
// The callback's signature, large error included, is tungstenite's.
#[allow(clippy::result_large_err)]
pub(crate) fn check_handshake<'a>(
    allowed: &'a [String],
    busy: bool,
    channels: (&'a AtomicUsize, usize),
    data_channel: Arc<AtomicBool>,
) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> + 'a {
    move |request, response| {
        if busy {
            return Err(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the broker is at its connection limit; retry later",
            ));
        }
        let channel = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == DATA_CHANNEL_QUERY));
        if channel {
            let (open, max) = channels;
            if open.load(Ordering::Acquire) >= max {
                tracing::info!(
                    max,
                    "data channel refused: as many open as the broker takes"
                );
                return Err(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the broker has as many data channels open as it takes; relay instead",
                ));
            }
            data_channel.store(true, Ordering::Release);
            return Ok(response);
        }
        let origin = request
            .headers()
            .get("origin")
            .map(|v| v.to_str().unwrap_or("(not text)"));
        if !origin_allowed(allowed, origin) {
            tracing::info!(?origin, "websocket refused: origin not allowed");
            return Err(refusal(
                StatusCode::FORBIDDEN,
                "this origin may not use the broker",
            ));
        }
        Ok(response)
    }
}

fn refusal(status: StatusCode, why: &str) -> ErrorResponse {
    let mut refusal = ErrorResponse::new(Some(why.to_string()));
    *refusal.status_mut() = status;
    refusal
}

/// The index of the token `presented` matches. Every configured token is compared in full
/// (constant time per byte), so the time taken does not say how much of a guess was right.
pub(crate) fn find_token(tokens: &[ClientToken], presented: &str) -> Option<usize> {
    let mut found = None;
    for (i, token) in tokens.iter().enumerate() {
        if constant_time_eq(token.token.as_bytes(), presented.as_bytes()) {
            found = Some(i);
        }
    }
    found
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Open connections per token.
#[derive(Debug, Default)]
pub(crate) struct Seats {
    taken: Mutex<HashMap<usize, usize>>,
}

impl Seats {
    /// Takes a seat for token `index` unless `max` are taken.
    pub(crate) fn take(&self, index: usize, max: Option<usize>) -> bool {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let n = taken.entry(index).or_default();
        if max.is_some_and(|max| *n >= max) {
            return false;
        }
        *n += 1;
        true
    }

    pub(crate) fn give_back(&self, index: usize) {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = taken.get_mut(&index) {
            *n = n.saturating_sub(1);
        }
    }
}

/// A token bucket: `per_s` messages a second on average, bursts of up to `burst`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_s: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `None` when `per_s` is 0 (no limit).
    pub(crate) fn new(per_s: u32, burst: u32) -> Option<Self> {
        (per_s > 0).then(|| {
            let burst = f64::from(burst.max(1));
            Self {
                per_s: f64::from(per_s),
                burst,
                tokens: burst,
                at: Instant::now(),
            }
        })
    }

    /// Whether one more message may be served now.
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn origins_match_exactly_or_by_prefix_and_no_origin_passes() {
        let allowed = vec![
            "chrome-extension://*".to_string(),
            "https://app.example".to_string(),
        ];
        assert!(origin_allowed(&allowed, None));
        assert!(origin_allowed(&allowed, Some("chrome-extension://abcdef")));
        assert!(origin_allowed(&allowed, Some("https://app.example")));
        assert!(!origin_allowed(&allowed, Some("https://app.example.evil")));
        assert!(!origin_allowed(&allowed, Some("https://evil.example")));
        assert!(origin_allowed(&[], Some("https://anything")));
    }

    #[test]
    fn tokens_are_found_only_when_equal() {
        let tokens = vec![
            ClientToken {
                name: "a".into(),
                token: "alpha-secret".into(),
                quota: None,
                max_connections: None,
                weight: 1,
            },
            ClientToken {
                name: "b".into(),
                token: "beta-secret".into(),
                quota: None,
                max_connections: None,
                weight: 1,
            },
        ];
        assert_eq!(find_token(&tokens, "beta-secret"), Some(1));
        assert_eq!(find_token(&tokens, "beta-secre"), None);
        assert_eq!(find_token(&tokens, "beta-secret!"), None);
        assert_eq!(find_token(&tokens, ""), None);
    }

    #[test]
    fn seats_and_rates_are_limited() {
        let seats = Seats::default();
        assert!(seats.take(0, Some(1)));
        assert!(!seats.take(0, Some(1)));
        seats.give_back(0);
        assert!(seats.take(0, Some(1)));
        assert!(seats.take(1, None));

        let start = Instant::now();
        let mut rate = RateLimiter::new(10, 2).unwrap();
        assert!(rate.admit(start));
        assert!(rate.admit(start));
        assert!(!rate.admit(start), "the burst is spent");
        assert!(
            rate.admit(start + Duration::from_millis(100)),
            "refilled at 10/s"
        );
        assert!(!rate.admit(start + Duration::from_millis(100)));
        assert!(RateLimiter::new(0, 5).is_none());
    }
}
