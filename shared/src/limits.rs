//! Size limits both ends of a channel must respect, in one place so they cannot drift.

/// Largest frame a native host may send to the browser. Chromium accepts exactly 1 MiB and
/// disconnects the port on one byte more (measured, ../shared/PLATFORM.md).
pub const HOST_TO_BROWSER_MAX_FRAME: usize = 1024 * 1024;

/// Largest frame the browser sends to a native host (Chromium's own limit: 64 MiB).
pub const BROWSER_TO_HOST_MAX_FRAME: usize = 64 * 1024 * 1024;

/// Largest websocket message the broker accepts from a client. Worker sources and messages
/// travel in these, so it bounds the largest script that can be offloaded.
pub const BROKER_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Largest frame on the pipe between the broker and one of its executor processes.
pub const EXECUTOR_MAX_FRAME: usize = BROKER_MAX_MESSAGE + 64 * 1024;

/// Largest single worker message payload (JSON text) either way. Bigger messages fail with a
/// clear error instead of being truncated.
pub const WORKER_MAX_MESSAGE: usize = 8 * 1024 * 1024;
