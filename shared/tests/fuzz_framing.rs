//! Fuzzing the native-messaging codec and message decoding (proptest), for a bounded time so
//! `cargo xtask test` runs it on every build: no panic, no hang, no allocation driven by a
//! length prefix, and well-formed input always round-trips.
//!
//! Each property runs rounds of [`ROUND`] random cases until [`budget`] is spent (4 s by
//! default); `FORESIGHT_FUZZ_SECONDS=600 cargo test -p foresight-shared --test fuzz_framing`
//! fuzzes longer.

use std::time::{Duration, Instant};

use foresight_shared::framing::{ASSEMBLY_RESERVE, FrameDecoder, FrameError, encode_frame};
use foresight_shared::protocol::examples;
use foresight_shared::protocol::host::{HostReply, HostRequest};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const MAX: usize = 4096;

/// Cases per round; rounds repeat, each with fresh random seeds, until the budget is spent.
const ROUND: u32 = 128;

fn budget() -> Duration {
    let seconds = std::env::var("FORESIGHT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    Duration::from_secs(seconds)
}

/// Runs `test` on values of `strategy` in rounds until the time budget is spent (at least
/// one round), shrinking and panicking on the first failure.
fn fuzz<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let deadline = Instant::now() + budget();
    let mut rounds = 0;
    while rounds == 0 || Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: ROUND,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{e}");
        }
        rounds += 1;
    }
}

/// One piece of a stream: a well-formed frame, or a length prefix with arbitrary bytes.
#[derive(Debug, Clone)]
enum Piece {
    Frame(Vec<u8>),
    Raw { declared: u32, bytes: Vec<u8> },
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Piece::Frame),
        1 => (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(declared, bytes)| Piece::Raw { declared, bytes }),
        1 => ((MAX as u32)..=(MAX as u32 + 500), proptest::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(declared, bytes)| Piece::Raw { declared, bytes }),
    ]
}

fn stream_of(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Frame(payload) => out.extend(encode_frame(payload, MAX).expect("small")),
            Piece::Raw { declared, bytes } => {
                out.extend(declared.to_ne_bytes());
                out.extend(bytes);
            }
        }
    }
    out
}

/// Decodes `stream` pushed in reads of the given sizes, checking the invariants as it goes.
fn decode(stream: &[u8], reads: &[usize]) -> Result<Vec<Vec<u8>>, TestCaseError> {
    let mut d = FrameDecoder::new(MAX);
    let mut frames = Vec::new();
    let mut at = 0;
    let mut sizes = reads.iter().cycle();
    while at < stream.len() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, stream.len() - at);
        d.push(&stream[at..at + n]);
        at += n;
        // Bounded iterations: each frame consumes at least its prefix.
        for _ in 0..=stream.len() {
            match d.next_frame() {
                None => break,
                Some(Ok(f)) => {
                    prop_assert!(f.len() <= MAX);
                    frames.push(f);
                }
                Some(Err(FrameError::TooLarge { len, max })) => {
                    prop_assert!(len > max);
                }
                Some(Err(e)) => prop_assert!(false, "unexpected decoder error {e}"),
            }
        }
        // What is held is what arrived and was not handed out: never a declared length.
        prop_assert!(
            d.buffered() <= at,
            "{} held after {} pushed",
            d.buffered(),
            at
        );
        prop_assert!(d.buffered() <= MAX + ASSEMBLY_RESERVE + n);
    }
    let _ = d.finish();
    Ok(frames)
}

#[test]
fn arbitrary_streams_never_panic_and_stay_bounded() {
    let strategy = (
        proptest::collection::vec(piece(), 0..20),
        proptest::collection::vec(1usize..700, 1..8),
    );
    fuzz(strategy, |(pieces, reads)| {
        decode(&stream_of(&pieces), &reads)?;
        Ok(())
    });
}

#[test]
fn well_formed_frames_round_trip_however_they_are_split() {
    let strategy = (
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..MAX), 0..12),
        proptest::collection::vec(1usize..5000, 1..8),
    );
    fuzz(strategy, |(payloads, reads)| {
        let pieces: Vec<Piece> = payloads.iter().cloned().map(Piece::Frame).collect();
        let frames = decode(&stream_of(&pieces), &reads)?;
        prop_assert_eq!(frames, payloads);
        Ok(())
    });
}

/// Example messages as JSON text, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = examples::host_requests()
        .iter()
        .map(|m| serde_json::to_vec(m).expect("json"))
        .collect();
    out.extend(
        examples::host_replies()
            .iter()
            .map(|m| serde_json::to_vec(m).expect("json")),
    );
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(b"{}[]\":,0-e.\\ntuf".to_vec())
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

#[test]
fn mutated_messages_decode_or_fail_cleanly() {
    let seeds = seeds();
    let strategy = (0..seeds.len(), proptest::collection::vec(edit(), 1..6));
    fuzz(strategy, |(seed, edits)| {
        let mut bytes = seeds[seed].clone();
        for e in edits {
            let len = bytes.len().max(1);
            match e {
                Edit::Flip(i, b) if !bytes.is_empty() => bytes[i % len] ^= b,
                Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Edit::Delete(i) if !bytes.is_empty() => {
                    bytes.remove(i % len);
                }
                Edit::Truncate(i) => bytes.truncate(i % len),
                _ => {}
            }
        }
        // Either outcome is fine; panicking or hanging is not. What decodes re-encodes.
        if let Ok(request) = serde_json::from_slice::<HostRequest>(&bytes) {
            let again = serde_json::to_vec(&request).expect("re-encodes");
            prop_assert!(serde_json::from_slice::<HostRequest>(&again).is_ok());
        }
        if let Ok(reply) = serde_json::from_slice::<HostReply>(&bytes) {
            let again = serde_json::to_vec(&reply).expect("re-encodes");
            prop_assert!(serde_json::from_slice::<HostReply>(&again).is_ok());
        }
        Ok(())
    });
}
