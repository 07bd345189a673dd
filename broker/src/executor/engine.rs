//! The seam between an executor's event loop and the JavaScript engine behind it.
//!
//! The event loop ([`super::drive`]) owns the input channel and the timer waits; an
//! [`Engine`] runs one worker script and turns each task (the top level, a message, due
//! timers) into output on an [`Outbox`]. QuickJS ([`super::quickjs::QuickJs`]) is the only
//! engine today; another (V8 via Node, say) implements the same trait and nothing in the
//! broker's connection or worker code changes.

use std::time::Instant;

use foresight_shared::protocol::broker::WorkerExitReason;
use foresight_shared::protocol::executor::FromExecutor;

/// What the event loop does after a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep serving.
    Continue,
    /// The worker is done: report `exited` with this reason and stop.
    Exit(WorkerExitReason),
}

/// Where an engine's output goes: the executor's stdout in production, a vector in tests.
pub trait Outbox {
    fn send(&self, message: FromExecutor);
}

/// One worker script in one engine instance. Every method runs a task to completion,
/// including the microtasks it queued, and enforces the limits the engine was built with.
pub trait Engine {
    /// Runs the script's top level. An exception there is reported and the worker stays
    /// alive, as in a browser.
    fn start(&mut self, script_url: &str, source: &str) -> Step;

    /// Delivers `postMessage(data)` from the page as a `message` event.
    fn deliver(&mut self, data: &serde_json::Value) -> Step;

    /// When the earliest pending timer is due, if any.
    fn next_timer(&mut self) -> Option<Instant>;

    /// Fires the timers due at `now`, in order.
    fn run_timers(&mut self, now: Instant) -> Step;
}
