//! Everything two parts of Foresight must agree on, and nothing else.
//!
//! * [`protocol`] — every message that crosses a process or language boundary (extension <->
//!   native host, extension <-> broker, broker <-> executor), versioned by
//!   [`protocol::PROTOCOL_VERSION`]. This is the only crate that defines wire types.
//! * [`framing`] — the native-messaging frame codec (4-byte native-endian length + JSON), used
//!   by the native host, by the broker's executor pipes and by the tests that play the browser.
//!   It is sans-I/O at its core so that blocking and async callers share it.
//! * [`limits`] — size limits both ends must respect.
//! * [`planner`] — the pure Predictive Execution Planner: demand + contention + policy -> plan.
//!   It runs in the native host and, compiled to wasm, in the extension when no host is present.
//! * [`ids`] — the names by which browsers know the extension and its native host.
//! * [`sclone`] — the binary structured-clone format worker messages travel in: a checking
//!   decoder and a JSON bridge (the JavaScript codec does the real encoding).
//!
//! The crate does no I/O beyond the `std::io` traits the codec is generic over, and builds for
//! both native targets and `wasm32-unknown-unknown`.

pub mod framing;
pub mod ids;
pub mod limits;
pub mod planner;
pub mod protocol;
pub mod sclone;
