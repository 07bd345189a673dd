//! Fuzzing the host's serve loop (proptest), for a bounded time on every `cargo xtask test`:
//! whatever bytes the browser side sends (mutated real requests, random frames, lying length
//! prefixes, a stream cut anywhere), the session ends without panicking, and everything it
//! wrote is whole frames of at most 1 MiB, each a valid reply.

use std::time::{Duration, Instant};

use foresight_host::audit_log::AuditLog;
use foresight_host::contention::FixedSampler;
use foresight_host::serve::{ServeEnd, Session};
use foresight_shared::framing::{FrameReader, encode_frame};
use foresight_shared::limits::{BROWSER_TO_HOST_MAX_FRAME, HOST_TO_BROWSER_MAX_FRAME};
use foresight_shared::protocol::examples;
use foresight_shared::protocol::host::HostReply;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn budget() -> Duration {
    let seconds = std::env::var("FORESIGHT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    Duration::from_secs(seconds)
}

#[derive(Debug, Clone)]
enum Piece {
    /// A real request, JSON-mutated at a few places.
    Mutated(usize, Vec<(usize, u8)>),
    Random(Vec<u8>),
    LyingPrefix(u32, Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    let seeds = examples::host_requests().len();
    prop_oneof![
        4 => (0..seeds, proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4))
            .prop_map(|(s, e)| Piece::Mutated(s, e)),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Piece::Random),
        1 => (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(l, b)| Piece::LyingPrefix(l, b)),
    ]
}

fn stream_of(pieces: &[Piece]) -> Vec<u8> {
    let requests = examples::host_requests();
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Mutated(seed, edits) => {
                let mut json = serde_json::to_vec(&requests[*seed]).expect("json");
                for (i, b) in edits {
                    let len = json.len();
                    json[i % len] = *b;
                }
                out.extend(encode_frame(&json, BROWSER_TO_HOST_MAX_FRAME).expect("small"));
            }
            Piece::Random(bytes) => {
                out.extend(encode_frame(bytes, BROWSER_TO_HOST_MAX_FRAME).expect("small"))
            }
            Piece::LyingPrefix(len, bytes) => {
                out.extend(len.to_ne_bytes());
                out.extend(bytes);
            }
        }
    }
    out
}

#[test]
fn any_input_gets_only_whole_valid_replies() {
    let deadline = Instant::now() + budget();
    let strategy = proptest::collection::vec(piece(), 0..12);
    let mut rounds = 0;
    while rounds == 0 || Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |pieces| {
            let input = stream_of(&pieces);
            let mut session =
                Session::new(FixedSampler(examples::contention()), AuditLog::disabled());
            let mut output = Vec::new();
            let end = session
                .serve(&input[..], &mut output)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(matches!(
                end,
                ServeEnd::Disconnected | ServeEnd::Truncated(_)
            ));
            let mut reader = FrameReader::new(&output[..], HOST_TO_BROWSER_MAX_FRAME);
            let mut replies = 0;
            while let Some(frame) = reader
                .read_frame()
                .map_err(|e| TestCaseError::fail(format!("bad output frame: {e}")))?
            {
                let reply: Result<HostReply, _> = serde_json::from_slice(&frame);
                prop_assert!(
                    reply.is_ok(),
                    "not a reply: {}",
                    String::from_utf8_lossy(&frame)
                );
                replies += 1;
            }
            // At most one reply per frame sent (a cut-off last frame gets none).
            prop_assert!(replies <= pieces.len());
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        rounds += 1;
    }
}
