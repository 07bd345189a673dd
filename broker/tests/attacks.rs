//! The attack matrix of the Node backend: attacks that assume the script already escaped the
//! worker's world (they run with Node's whole API: `require`, `process`, `net`...), inside
//! the complete sandbox of a Node child. Every one must fail; the test output shows the error
//! each got, layer by layer:
//!
//! * files: read `/etc/passwd`, another process's environment, list `/`, write `/tmp`;
//! * network: TCP to a live server on this host's loopback, UDP, `fetch`, a unix socket of a
//!   live server, an abstract unix socket;
//! * processes: `child_process`, `dlopen` of a library, `setuid(0)`, a fork bomb, a thread bomb;
//! * other tenants: SIGKILL to another Node child, a signal to the broker;
//! * secrets: the environment is empty.

mod common;

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

const ATTACKS: &str = r#"
const fs = require('fs');
const results = {};
function attempt(name, fn) {
  try {
    const r = fn();
    results[name] = 'NOT STOPPED: ' + String(r).slice(0, 60);
  } catch (e) {
    results[name] = (e.code || e.name) + ': ' + String(e.message).split('\n')[0];
  }
}
async function attemptAsync(name, fn) {
  try {
    const r = await fn();
    results[name] = 'NOT STOPPED: ' + String(r).slice(0, 60);
  } catch (e) {
    const c = e.cause || e;
    results[name] = (c.code || c.name) + ': ' + String(c.message).split('\n')[0];
  }
}
function connect(options) {
  return new Promise((resolve, reject) => {
    const s = require('net').connect(options, () => { s.destroy(); resolve('connected'); });
    s.on('error', reject);
    setTimeout(() => reject(new Error('timed out')), 3000);
  });
}
(async () => {
  const [tcpPort, unixPath, otherPid] = JSON.parse(process.argv[1]);
  attempt('files: read /etc/passwd', () => fs.readFileSync('/etc/passwd', 'utf8'));
  attempt('files: the broker environment (/proc/PPID/environ)', () => fs.readFileSync('/proc/' + process.ppid + '/environ', 'utf8'));
  attempt('files: list /', () => fs.readdirSync('/'));
  attempt('files: write /tmp', () => fs.writeFileSync('/tmp/foresight-escaped', 'x'));
  await attemptAsync('network: TCP to a live local server', () => connect({ host: '127.0.0.1', port: tcpPort }));
  await attemptAsync('network: fetch a live local server', () => fetch('http://127.0.0.1:' + tcpPort + '/'));
  await attemptAsync('network: unix socket of a live server', () => connect({ path: unixPath }));
  await attemptAsync('network: abstract unix socket', () => connect({ path: '\0foresight-attack' }));
  await attemptAsync('network: UDP', () => new Promise((resolve, reject) => {
    const s = require('dgram').createSocket('udp4');
    s.on('error', reject);
    s.send('x', tcpPort, '127.0.0.1', (e) => (e ? reject(e) : resolve('sent')));
  }));
  attempt('processes: child_process', () => require('child_process').execSync('id').toString());
  attempt('processes: dlopen', () => process.dlopen({ exports: {} }, '/lib/x86_64-linux-gnu/libbz2.so.1'));
  attempt('processes: setuid(0)', () => { process.setuid(0); return process.getuid(); });
  attempt('tenants: SIGKILL another Node child', () => process.kill(otherPid, 'SIGKILL'));
  attempt('tenants: signal the broker', () => process.kill(process.ppid, 0));
  attempt('secrets: environment', () => { const keys = Object.keys(process.env); if (keys.length === 0) throw Object.assign(new Error('empty'), { code: 'EMPTY' }); return keys.join(','); });
  attempt('processes: fork bomb', () => { let n = 0; for (;;) { require('child_process').spawn('/usr/bin/node', ['-e', '0']); n++; if (n > 100) return n; } });
  fs.writeSync(1, JSON.stringify(results) + '\n');
  // Last, since it may take the process down: threads are allowed, the pids cgroup bounds them.
  const { Worker } = require('worker_threads');
  let online = 0;
  let failed = null;
  await Promise.all(Array.from({ length: 200 }, () => new Promise((resolve) => {
    try {
      const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
      w.on('online', () => { online++; resolve(); });
      w.on('error', (e) => { failed = failed || e; resolve(); });
    } catch (e) {
      failed = failed || e;
      resolve();
    }
  })));
  const outcome = failed && online < 100
    ? (failed.code || failed.name) + ': ' + String(failed.message).split('\n')[0] + ' (after ' + online + ' threads)'
    : 'NOT STOPPED: ' + online + ' threads';
  fs.writeSync(1, JSON.stringify({ 'processes: thread bomb': outcome }) + '\n');
  process.exit(0);
})();
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_fails_inside_the_node_sandbox() {
    let backend = common::node_backend(0);
    for layer in &backend.detection.layers {
        eprintln!(
            "layer {:<18} {:<10} {}",
            layer.layer.name(),
            layer.status,
            layer.detail
        );
    }
    // A live TCP server and a live unix-socket server on this host, as the broker sees it.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let unix_path = dir.path().join("live.sock");
    let unix = tokio::net::UnixListener::bind(&unix_path).unwrap();
    let accepted = tokio::spawn(async move {
        tokio::select! {
            _ = tcp.accept() => "tcp",
            _ = unix.accept() => "unix",
        }
    });

    // Another tenant: a Node child that just waits.
    let (mut other, _other_in, _other_out, other_cgroup) = backend
        .launch_with(&["-e".into(), "setInterval(() => {}, 1000)".into()])
        .unwrap();
    let other_pid = other.id().unwrap();

    let args = serde_json::json!([tcp_port, unix_path, other_pid]).to_string();
    let (mut attacker, _stdin, mut stdout, cgroup) = backend
        .launch_with(&["-e".into(), ATTACKS.into(), args])
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_to_string(&mut out))
        .await
        .expect("the attacks finish")
        .unwrap();
    let status = attacker.wait().await.unwrap();
    eprintln!("attacker exited: {status}");
    let mut failures = Vec::new();
    let mut seen = 0;
    for line in out.lines() {
        let results: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for (attack, outcome) in results.as_object().unwrap() {
            seen += 1;
            let outcome = outcome.as_str().unwrap_or("");
            eprintln!("{attack:<55} -> {outcome}");
            if outcome.starts_with("NOT STOPPED") {
                failures.push(format!("{attack}: {outcome}"));
            }
        }
    }
    if !out.contains("thread bomb") {
        // Threads are allowed; a bomb of them ends at a cgroup limit, which kills the process.
        assert!(
            cgroup.oom_killed()
                || std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
            "the thread bomb neither failed nor was killed: {status}"
        );
        eprintln!(
            "{:<55} -> killed by the cgroup (memory limit: {})",
            "processes: thread bomb",
            cgroup.oom_killed()
        );
        seen += 1;
    }
    assert!(seen >= 17, "only {seen} attacks reported: {out}");
    assert!(
        failures.is_empty(),
        "attacks that worked:\n{}",
        failures.join("\n")
    );
    assert!(
        !accepted.is_finished(),
        "a server was reached: {:?}",
        accepted.await
    );
    assert!(
        matches!(other.try_wait(), Ok(None)),
        "the other tenant was killed"
    );
    assert!(!std::path::Path::new("/tmp/foresight-escaped").exists());
    for (child, cg) in [(&mut other, &other_cgroup), (&mut attacker, &cgroup)] {
        cg.kill_all();
        let _ = child.wait().await;
        cg.remove();
    }
}
