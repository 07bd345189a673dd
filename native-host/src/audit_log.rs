//! The optional audit log: one JSON line per message in and out, for tests and debugging.
//!
//! Enabled by naming a file in [`ENV_VAR`] (`FORESIGHT_HOST_LOG`). Lines look like
//! `{"dir":"in","ts_ms":..,"msg":{..}}`, `{"dir":"out","ts_ms":..,"msg":{..}}`, and for a frame
//! that could not be decoded `{"dir":"in","ts_ms":..,"error":".."}`.
//!
//! Each line goes to the file in one `write` on a handle opened for appending, so several host
//! processes (one per browser connection) can share a log without interleaving lines. A log
//! that cannot be written is reported once on stderr and then switched off: the audit log must
//! never stop the host from answering the browser.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use foresight_shared::protocol::host::{HostReply, HostRequest};
use serde_json::{Value, json};

use crate::contention::unix_ms_now;

/// The environment variable that names the log file.
pub const ENV_VAR: &str = "FORESIGHT_HOST_LOG";

/// An append-only JSON-lines log of the messages a host exchanged; a no-op when disabled.
#[derive(Debug, Default)]
pub struct AuditLog {
    sink: Option<(PathBuf, File)>,
}

impl AuditLog {
    /// A log that records nothing.
    pub fn disabled() -> Self {
        Self { sink: None }
    }

    /// Appends to `path`, creating it if needed.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            sink: Some((path.to_path_buf(), file)),
        })
    }

    /// The log named by [`ENV_VAR`], or a disabled one if the variable is unset or empty. A
    /// file that cannot be opened is reported on stderr and the host runs without a log.
    pub fn from_env() -> Self {
        match std::env::var_os(ENV_VAR) {
            Some(path) if !path.is_empty() => {
                let path = PathBuf::from(path);
                Self::open(&path).unwrap_or_else(|e| {
                    eprintln!(
                        "foresight-host: cannot open audit log {}: {e}; continuing without it",
                        path.display()
                    );
                    Self::disabled()
                })
            }
            _ => Self::disabled(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Records a request as decoded.
    pub fn incoming(&mut self, request: &HostRequest) {
        if self.is_enabled() {
            let msg = to_value(request);
            self.write(json!({"dir": "in", "ts_ms": unix_ms_now(), "msg": msg}));
        }
    }

    /// Records a frame that could not be decoded into a request.
    pub fn incoming_error(&mut self, error: &str) {
        if self.is_enabled() {
            self.write(json!({"dir": "in", "ts_ms": unix_ms_now(), "error": error}));
        }
    }

    /// Records a reply that was written to the browser.
    pub fn outgoing(&mut self, reply: &HostReply) {
        if self.is_enabled() {
            let msg = to_value(reply);
            self.write(json!({"dir": "out", "ts_ms": unix_ms_now(), "msg": msg}));
        }
    }

    fn write(&mut self, line: Value) {
        let Some((path, file)) = &mut self.sink else {
            return;
        };
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        if let Err(e) = file.write_all(&bytes) {
            eprintln!(
                "foresight-host: cannot write audit log {}: {e}; audit logging is now off",
                path.display()
            );
            self.sink = None;
        }
    }
}

/// Wire types always serialize; should one ever fail, the line still says so.
fn to_value<T: serde::Serialize>(message: &T) -> Value {
    serde_json::to_value(message).unwrap_or_else(|e| json!({"unserializable": e.to_string()}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_shared::protocol::ErrorCode;

    #[test]
    fn writes_one_json_line_per_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        log.incoming(&HostRequest::Contention { request_id: 3 });
        log.incoming_error("frame is not valid JSON");
        log.outgoing(&HostReply::Error {
            request_id: Some(3),
            code: ErrorCode::Internal,
            message: "x".into(),
        });
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["dir"], "in");
        assert_eq!(lines[0]["msg"]["type"], "contention");
        assert_eq!(lines[0]["msg"]["request_id"], 3);
        assert_eq!(lines[1]["error"], "frame is not valid JSON");
        assert_eq!(lines[2]["dir"], "out");
        assert_eq!(lines[2]["msg"]["code"], "internal");
        assert!(lines.iter().all(|l| l["ts_ms"].as_u64().is_some()));
    }

    #[test]
    fn disabled_log_writes_nothing() {
        let mut log = AuditLog::disabled();
        log.incoming(&HostRequest::Unknown);
        assert!(!log.is_enabled());
    }
}
