//! `foresight-host`: Foresight's native messaging host, the process in which the Predictive
//! Execution Planner runs.
//!
//! Chrome or Firefox starts one host process per `connectNative` and talks to it over stdin
//! and stdout in native-messaging frames ([`foresight_shared::framing`]). The extension asks
//! for plans ([`foresight_shared::protocol::host`]); the host measures how busy the machine is
//! and runs [`foresight_shared::planner::plan`] against that.
//!
//! * [`serve`] — the request loop: framing, decoding, replies, hardening against bad input.
//! * [`contention`] — what the machine is doing right now, behind the [`contention::Sampler`]
//!   trait so the loop can be tested with a fixed snapshot.
//! * [`watch`] — `contention_changed` updates: sampling period and what counts as material.
//! * [`audit_log`] — the optional JSON-lines log of every message (`FORESIGHT_HOST_LOG`).
//! * [`install`] — writing and removing the host manifests browsers look for (and the Windows
//!   registry keys); [`status`] reports what each browser will find.
//! * [`caller`] — checking the browser's arguments against what `install` allowed.
//!
//! In serve mode stdout belongs to the browser: this crate never prints to it (clippy's
//! `print_stdout` lint, denied below, keeps it so); diagnostics go to stderr.

#![deny(clippy::print_stdout)]

pub mod audit_log;
pub mod caller;
pub mod contention;
pub mod install;
pub mod serve;
pub mod status;
pub mod watch;
