//! Foresight's end-to-end harness: drives the real parts together, as a user runs them.
//!
//! * [`browser`] launches Debian's Chromium or Firefox ESR headless with the built extension,
//!   over CDP ([`chromium`]) or WebDriver BiDi ([`firefox`]), both through [`rpc`].
//! * [`host`] installs the real `foresight-host` into a throwaway profile and reads its
//!   audit log; [`broker`] runs the real broker on an ephemeral loopback port and exposes its
//!   events as broker-side evidence; [`http`] serves the fixture pages on loopback.
//! * [`artifacts`] finds what `cargo xtask dist` and `cargo build` produced.
//! * [`conformance`] runs worker programs locally and remotely in a real page and compares
//!   what the page saw; it also plays a hostile page and a hostile worker.
//! * [`lease_client`] is another tenant of the broker, to fill its pool or preempt a page.
//!
//! The end-to-end tests (`tests/e2e.rs`), the demo (`foresight-demo`) and the accuracy scoring
//! ([`accuracy`], `foresight-accuracy`) are all built on it.

pub mod accuracy;
pub mod artifacts;
pub mod broker;
pub mod browser;
pub mod chromium;
pub mod conformance;
pub mod firefox;
pub mod host;
pub mod http;
pub mod lease_client;
pub mod rpc;
pub mod scenario;

/// Everything that can go wrong while driving the parts, with enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("browser: {0}")]
    Browser(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
