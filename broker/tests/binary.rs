//! The `foresight-broker` binary: it announces its address on stdout, serves, runs workers in
//! its own executor mode, and shuts down cleanly on SIGTERM.

mod common;

use std::process::Stdio;

use common::{Client, DEADLINE, MIB};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_announces_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_foresight-broker"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--cpu-millicores",
            "1500",
            "--memory-bytes",
            &(64 * MIB).to_string(),
            "--max-ttl-ms",
            "20000",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the broker binary");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
        .await
        .expect("announced in time")
        .expect("read stdout");
    let url = line
        .trim_end()
        .strip_prefix("foresight-broker listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the real port, not 0: {url}");

    let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut c = Client { ws };
    let hello = c.hello().await;
    assert_eq!(hello["capacity"]["cpu_millicores"], 1500, "{hello}");
    assert_eq!(hello["capacity"]["memory_bytes"], 64 * MIB);
    let too_long = c.lease_request(1, 100, MIB, 20_001).await;
    assert_eq!(too_long["reason"], "invalid_request", "{too_long}");
    let lease = c.lease(1000, 16 * MIB, 20_000).await;
    c.started_worker(lease, "w", "onmessage = e => postMessage(e.data + 1)")
        .await;
    c.post("w", json!(41)).await;
    assert_eq!(c.expect("worker_message").await["data"], 42);

    // SIGTERM: notice first; when it runs out the lease ends with shutting_down, its worker
    // with it, and the broker exits 0.
    let pid = child.id().expect("pid") as libc::pid_t;
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let notice = c.expect("lease_revoking").await;
    assert_eq!(notice["cause"], "shutting_down", "{notice}");
    assert_eq!(
        c.expect("worker_exited").await,
        json!({"type": "worker_exited", "worker_id": "w", "reason": "lease_ended"})
    );
    assert_eq!(
        c.expect("lease_ended").await,
        json!({"type": "lease_ended", "lease_id": lease, "reason": "shutting_down"})
    );
    c.closed().await;
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("exit in time")
        .expect("wait");
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.expect("read stdout");
    assert_eq!(rest, "", "exactly one line on stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_from_a_config_file_with_flags_winning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broker.toml");
    std::fs::write(
        &path,
        r#"
        listen = "127.0.0.1:1"          # overridden by the flag below
        [pool]
        cpu_millicores = 3000
        memory_bytes = 67108864
        [[tokens]]
        name = "alice"
        token = "alice-0123456789abcdef"
        max_cpu_millicores = 1000
        "#,
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_foresight-broker"))
        .args([
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("FORESIGHT_BROKER_CPU_MILLICORES", "2500")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the broker binary");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
        .await
        .expect("announced in time")
        .expect("read stdout");
    let url = line
        .trim_end()
        .strip_prefix("foresight-broker listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connect");
    let mut c = Client { ws };
    let refused = c.hello().await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connect");
    let mut c = Client { ws };
    let hello = c
        .request(json!({"type": "hello", "protocol_version": 1, "client": "t", "token": "alice-0123456789abcdef"}))
        .await;
    // The environment wins over the file.
    assert_eq!(hello["capacity"]["cpu_millicores"], 2500, "{hello}");
    let over = c.lease_request(1, 1001, MIB, 1_000).await;
    assert_eq!(over["reason"], "quota_exceeded", "{over}");
    drop(c);
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_file_is_refused_with_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, "[limits]\nmessages_per_sec = 5\n").expect("write config");
    let output = tokio::time::timeout(
        DEADLINE,
        Command::new(env!("CARGO_BIN_EXE_foresight-broker"))
            .args([
                "--config",
                path.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("run");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("limits.messages_per_sec"), "{stderr}");
}

/// A spare executor waits for `start` with its threads running; a first frame that is not a
/// decodable `start` still ends it at once with a protocol error (exit code 2), rather than
/// leaving it waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_refuses_a_first_frame_that_is_not_start() {
    use tokio::io::AsyncWriteExt;
    for payload in [&b"{not json"[..], br#"{"type":"worker_message"}"#] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_foresight-broker"))
            .arg("executor")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start an executor");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut frame = u32::try_from(payload.len())
            .expect("small payload")
            .to_ne_bytes()
            .to_vec();
        frame.extend_from_slice(payload);
        stdin.write_all(&frame).await.expect("write the frame");
        stdin.flush().await.expect("flush");
        // stdin stays open: the executor must leave because of the frame, not because of EOF.
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .expect("the executor exits in time")
            .expect("wait");
        assert_eq!(
            status.code(),
            Some(2),
            "{:?}: {status}",
            String::from_utf8_lossy(payload)
        );
        drop(stdin);
    }
}

/// An executor started by hand, as the broker starts one (but for the broker's rlimits),
/// given `start` for `source` with `then` written right behind it.
async fn executor_with(
    source: &str,
    then: &[u8],
) -> (
    tokio::process::Child,
    tokio::process::ChildStdin,
    tokio::process::ChildStdout,
) {
    use foresight_shared::framing::encode_message;
    use foresight_shared::limits::EXECUTOR_MAX_FRAME;
    use foresight_shared::protocol::executor::{ExecutorLimits, ToExecutor};
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_foresight-broker"))
        .arg("executor")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start an executor");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let start = ToExecutor::Start {
        script_url: "https://page.test/w.js".into(),
        source: source.into(),
        limits: ExecutorLimits {
            cpu_ms: 60_000,
            memory_bytes: 32 * MIB,
            stack_bytes: MIB,
        },
        imports: Vec::new(),
        name: String::new(),
        module: false,
    };
    let mut bytes = encode_message(&start, EXECUTOR_MAX_FRAME).expect("encode start");
    bytes.extend_from_slice(then);
    stdin.write_all(&bytes).await.expect("write start");
    stdin.flush().await.expect("flush");
    (child, stdin, stdout)
}

/// The executor's next frame on `stdout`: a message, or (`Err`) worker data.
async fn next_from_executor(
    stdout: &mut tokio::process::ChildStdout,
    decoder: &mut foresight_shared::framing::FrameDecoder,
) -> Result<foresight_shared::protocol::executor::FromExecutor, Vec<u8>> {
    use foresight_shared::protocol::executor::DATA_FRAME;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = decoder.next_frame() {
            let mut frame = frame.expect("a well-formed frame");
            if frame.first() == Some(&DATA_FRAME) {
                frame.remove(0);
                return Err(frame);
            }
            return Ok(serde_json::from_slice(&frame).expect("a known message"));
        }
        let n = tokio::time::timeout(DEADLINE, stdout.read(&mut buf))
            .await
            .expect("the executor answers in time")
            .expect("read stdout");
        assert!(n > 0, "the executor closed its stdout");
        decoder.push(&buf[..n]);
    }
}

/// The executor reports `exited` with `terminated` (its stdin closed) and the process ends.
async fn ends_terminated(
    child: &mut tokio::process::Child,
    stdout: &mut tokio::process::ChildStdout,
    decoder: &mut foresight_shared::framing::FrameDecoder,
) {
    use foresight_shared::protocol::broker::WorkerExitReason;
    use foresight_shared::protocol::executor::FromExecutor;
    assert!(matches!(
        next_from_executor(stdout, decoder).await,
        Ok(FromExecutor::Exited {
            reason: WorkerExitReason::Terminated,
            ..
        })
    ));
    tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("the executor exits in time")
        .expect("wait");
}

/// The executor reads `start` on its main thread and hands stdin to its input thread only
/// later: the frames that came right behind `start` still reach the worker, in order, and a
/// closed stdin still stops a top level stuck in a loop (stdin is handed over at the
/// engine's first interrupt check), long before its CPU budget would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_hands_stdin_over_without_losing_input_or_control() {
    use foresight_shared::framing::{FrameDecoder, encode_frame};
    use foresight_shared::limits::EXECUTOR_MAX_FRAME;
    use foresight_shared::protocol::executor::{FromExecutor, data_frame};
    use foresight_shared::sclone;

    let mut then = Vec::new();
    for word in ["one", "two"] {
        let payload = sclone::encode_json(&json!(word));
        then.extend(encode_frame(&data_frame(&payload), EXECUTOR_MAX_FRAME).expect("encode"));
    }
    let (mut child, stdin, mut stdout) =
        executor_with("onmessage = (e) => postMessage(e.data);", &then).await;
    let mut decoder = FrameDecoder::new(EXECUTOR_MAX_FRAME);
    assert_eq!(
        next_from_executor(&mut stdout, &mut decoder).await,
        Ok(FromExecutor::Started)
    );
    for word in ["one", "two"] {
        let echoed = next_from_executor(&mut stdout, &mut decoder)
            .await
            .expect_err("worker data");
        let value = sclone::decode(&echoed)
            .expect("decode")
            .to_json()
            .expect("json");
        assert_eq!(value, json!(word));
    }
    drop(stdin);
    ends_terminated(&mut child, &mut stdout, &mut decoder).await;

    // A top level that never ends: the main thread never waits for input, so the closed
    // stdin is seen only because stdin reaches the input thread at the engine's first
    // interrupt check.
    let (mut child, stdin, mut stdout) = executor_with("for (;;) {}", &[]).await;
    drop(stdin);
    let mut decoder = FrameDecoder::new(EXECUTOR_MAX_FRAME);
    ends_terminated(&mut child, &mut stdout, &mut decoder).await;
}
