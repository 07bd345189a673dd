//! The seam between an executor's event loop and the JavaScript engine behind it.
//!
//! The event loop ([`super::drive`]) owns the input channel and the timer waits; an
//! [`Engine`] runs one worker script and turns each task (the top level, a message, due
//! timers) into output on an [`Outbox`]. QuickJS ([`super::quickjs::QuickJs`]) is the only
//! engine today; another (V8 via Node, say) implements the same trait and nothing in the
//! broker's connection or worker code changes.

use std::time::Instant;

use foresight_shared::protocol::broker::{ScriptSource, WorkerExitReason};
use foresight_shared::protocol::executor::FromExecutor;

/// The worker to run: its script and what its `importScripts` may load.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub url: String,
    pub source: String,
    pub imports: Vec<ScriptSource>,
    /// `self.name`.
    pub name: String,
    /// An ES module worker (`importScripts` is not available; `import` is, from `imports`).
    pub module: bool,
}

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
    /// `postMessage` from the worker, as structured-clone bytes.
    fn post(&self, data: Vec<u8>);
}

/// One worker script in one engine instance. Every method runs a task to completion,
/// including the microtasks it queued, and enforces the limits the engine was built with.
pub trait Engine {
    /// Runs the script's top level. An exception there is reported and the worker stays
    /// alive, as in a browser.
    fn start(&mut self, script: &Script) -> Step;

    /// Delivers `postMessage(data)` from the page (structured-clone bytes) as a `message`
    /// event, or `messageerror` when they do not decode.
    fn deliver(&mut self, data: &[u8]) -> Step;

    /// When the earliest pending timer is due, if any.
    fn next_timer(&mut self) -> Option<Instant>;

    /// Fires the timers due at `now`, in order.
    fn run_timers(&mut self, now: Instant) -> Step;
}
