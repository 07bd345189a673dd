//! Plays the browser against the real `foresight-host` binary: spawns it with browser-style
//! arguments, writes native-messaging frames to its stdin and reads frames from its stdout.
//!
//! Replies are read by a thread that forwards raw stdout bytes over a channel, so every wait
//! has a deadline (`recv_timeout`) and a hung host fails the test instead of hanging it. All
//! bytes the host ever wrote are kept, so [`Host::finish`] can check that stdout carried
//! nothing but well-formed frames of JSON.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use foresight_shared::framing::{FrameDecoder, FrameReader, encode_frame};
use foresight_shared::limits::{BROWSER_TO_HOST_MAX_FRAME, HOST_TO_BROWSER_MAX_FRAME};
use foresight_shared::protocol::host::{HostReply, HostRequest};
use serde_json::Value;

pub const HOST_BIN: &str = env!("CARGO_BIN_EXE_foresight-host");

/// How long any single reply or exit may take before the test fails. Generous: the first
/// sample waits out the CPU-counter interval, and CI machines are slow.
pub const DEADLINE: Duration = Duration::from_secs(20);

enum Chunk {
    Bytes(Vec<u8>),
    Eof,
}

/// A running host process and the browser end of its pipes.
pub struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    chunks: Receiver<Chunk>,
    stderr: Option<JoinHandle<String>>,
    decoder: FrameDecoder,
    /// Everything read from stdout so far.
    pub stdout: Vec<u8>,
    stdout_closed: bool,
}

/// What a finished host left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Host {
    /// Starts the host the way Chrome does: `[path, "chrome-extension://ID/"]`.
    pub fn start_chrome_style(audit_log: Option<&Path>) -> Host {
        let origin = format!(
            "chrome-extension://{}/",
            foresight_shared::ids::CHROME_EXTENSION_ID
        );
        Host::start(&[origin.as_str()], audit_log)
    }

    /// Starts the host the way Firefox does: `[path, manifest_path, extension_id]`.
    pub fn start_firefox_style() -> Host {
        Host::start(
            &[
                "/tmp/native-messaging-hosts/dev.foresight.host.json",
                foresight_shared::ids::FIREFOX_EXTENSION_ID,
            ],
            None,
        )
    }

    pub fn start(args: &[&str], audit_log: Option<&Path>) -> Host {
        Host::start_with_env(args, audit_log, &[])
    }

    /// Starts the host with extra environment, as a browser passes its own on to the host.
    pub fn start_with_env(args: &[&str], audit_log: Option<&Path>, env: &[(&str, &str)]) -> Host {
        let mut command = Command::new(HOST_BIN);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("FORESIGHT_HOST_LOG")
            .env_remove("FORESIGHT_BROKER_URL")
            .envs(env.iter().copied());
        if let Some(path) = audit_log {
            command.env("FORESIGHT_HOST_LOG", path);
        }
        let mut child = command.spawn().expect("spawn foresight-host");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, chunks) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Chunk::Eof);
                        return;
                    }
                    Ok(n) => {
                        if tx.send(Chunk::Bytes(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Host {
            stdin: child.stdin.take(),
            child,
            chunks,
            stderr: Some(stderr),
            decoder: FrameDecoder::new(HOST_TO_BROWSER_MAX_FRAME),
            stdout: Vec::new(),
            stdout_closed: false,
        }
    }

    pub fn send(&mut self, request: &HostRequest) {
        let payload = serde_json::to_vec(request).expect("requests serialize");
        self.send_payload(&payload);
    }

    /// Sends arbitrary bytes as one well-formed frame.
    pub fn send_payload(&mut self, payload: &[u8]) {
        let frame = encode_frame(payload, BROWSER_TO_HOST_MAX_FRAME).expect("frame fits");
        self.send_raw(&frame);
    }

    /// Sends bytes as they are, frame or not.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).expect("write to host stdin");
        stdin.flush().expect("flush host stdin");
    }

    /// The next reply, as raw JSON.
    pub fn recv_value(&mut self) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(frame) = self.decoder.next_frame() {
                let frame = frame.expect("host frames are within the browser limit");
                return serde_json::from_slice(&frame).expect("host frames are JSON");
            }
            assert!(
                !self.stdout_closed,
                "host closed stdout while a reply was expected"
            );
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(Chunk::Bytes(bytes)) => {
                    self.stdout.extend_from_slice(&bytes);
                    self.decoder.push(&bytes);
                }
                Ok(Chunk::Eof) => self.stdout_closed = true,
                Err(_) => panic!("no reply from the host within {DEADLINE:?}"),
            }
        }
    }

    /// The next reply, decoded.
    pub fn recv(&mut self) -> HostReply {
        let value = self.recv_value();
        serde_json::from_value(value).expect("host frames are HostReply")
    }

    /// Closes stdin (the browser disconnects), waits for the process to exit and checks that
    /// everything it wrote to stdout was a sequence of whole frames of valid JSON.
    pub fn finish(mut self) -> Finished {
        drop(self.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        while !self.stdout_closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(Chunk::Bytes(bytes)) => self.stdout.extend_from_slice(&bytes),
                Ok(Chunk::Eof) => self.stdout_closed = true,
                Err(_) => panic!("host did not exit within {DEADLINE:?} of stdin closing"),
            }
        }
        // Stdout closes when the process exits, so this wait is short.
        let status = self.child.wait().expect("wait for host");
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        assert_all_frames_are_json(&self.stdout);
        Finished {
            status,
            stdout: std::mem::take(&mut self.stdout),
            stderr,
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Only reached with the process still running when a test failed half-way.
        if !self.stdout_closed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Everything a host wrote must decode as frames of JSON replies, with nothing left over.
pub fn assert_all_frames_are_json(stdout: &[u8]) -> Vec<HostReply> {
    let mut reader = FrameReader::new(stdout, HOST_TO_BROWSER_MAX_FRAME);
    let mut replies = Vec::new();
    loop {
        match reader.read_frame() {
            Ok(Some(frame)) => {
                let value: Value = serde_json::from_slice(&frame).unwrap_or_else(|e| {
                    panic!(
                        "stdout frame is not JSON ({e}): {:?}",
                        String::from_utf8_lossy(&frame)
                    )
                });
                replies.push(serde_json::from_value(value).expect("stdout frame is a HostReply"));
            }
            Ok(None) => return replies,
            Err(e) => panic!("stdout is not a clean sequence of frames: {e}"),
        }
    }
}
