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
