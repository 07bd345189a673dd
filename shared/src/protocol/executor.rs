//! Broker -> executor process, over the child's stdin/stdout with [`crate::framing`].
//!
//! An executor process runs exactly one worker: the broker spawns it (its own binary in
//! executor mode), sends `start`, relays messages both ways, and kills the process when the
//! worker exits, the lease ends or a limit is hit. Nothing from one tenant ever shares a
//! process with another.
//!
//! Frames are JSON ([`ToExecutor`], [`FromExecutor`]) except worker messages, which are
//! [`DATA_FRAME`] followed by structured-clone bytes ([`crate::sclone`]), either way, so the
//! broker relays `postMessage` data without decoding it.

use serde::{Deserialize, Serialize};

use super::broker::{ScriptSource, WorkerExitReason};

/// First byte of a pipe frame that carries a worker message (JSON frames start with `{`).
pub const DATA_FRAME: u8 = 0x01;

/// A data frame for `payload`.
pub fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(1 + payload.len());
    frame.push(DATA_FRAME);
    frame.extend_from_slice(payload);
    frame
}

/// Limits the executor enforces on the script, derived from the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorLimits {
    /// CPU time the script may use in total, ms.
    pub cpu_ms: u64,
    /// JavaScript heap limit, bytes.
    pub memory_bytes: u64,
    /// JavaScript stack limit, bytes.
    pub stack_bytes: u64,
}

/// Broker -> executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToExecutor {
    /// Must be the first message; exactly once.
    Start {
        script_url: String,
        source: String,
        limits: ExecutorLimits,
        /// What `importScripts` may load.
        #[serde(default)]
        imports: Vec<ScriptSource>,
        /// `self.name`.
        #[serde(default)]
        name: String,
        /// Run `source` as an ES module (imports served from `imports`).
        #[serde(default)]
        module: bool,
    },
    /// Stop at once.
    Terminate,
    #[serde(other)]
    Unknown,
}

/// Console levels forwarded from the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleLevel {
    Log,
    Info,
    Warn,
    Error,
    Debug,
    #[serde(other)]
    Unknown,
}

/// Executor -> broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromExecutor {
    /// The executor's world is built and it waits for `start` (sent by executors that are
    /// started ahead of need, so the broker knows when one is warm).
    Ready,
    /// The script's top level ran; messages may follow.
    Started,
    /// An uncaught exception.
    Error {
        message: String,
        #[serde(default)]
        lineno: Option<u32>,
    },
    Console {
        level: ConsoleLevel,
        text: String,
    },
    /// The worker is done; the executor exits after sending this.
    Exited {
        reason: WorkerExitReason,
        /// CPU time the executor process used, all threads, in ms.
        #[serde(default)]
        cpu_ms: Option<u64>,
    },
    #[serde(other)]
    Unknown,
}
