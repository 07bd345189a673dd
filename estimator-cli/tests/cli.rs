//! The `foresight-estimate` binary on fixture pages: from a local file (scripts and style
//! sheets read from disk), from a loopback URL served by a real HTTP server in the test, and
//! with a calibration given or measured in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_foresight-estimate"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn ordered(q: &Value) -> bool {
    let (a, b, c) = (q["p10"].as_f64(), q["p50"].as_f64(), q["p90"].as_f64());
    matches!((a, b, c), (Some(a), Some(b), Some(c)) if 0.0 <= a && a <= b && b <= c)
}

/// The checks every run on the sorter fixture must pass, wherever it was loaded from.
fn check_sorter(v: &Value, base: &str) {
    let paths = v["paths"].as_array().expect("paths");
    let load = &paths[0];
    assert_eq!(load["kind"], "load");
    for q in ["cpu_ms", "memory_bytes", "network_bytes"] {
        assert!(ordered(&load[q]), "load {q}: {}", load[q]);
    }
    // Both external scripts and the style sheet were read: the network carries their bytes.
    assert!(load["network_bytes"]["p50"].as_f64().unwrap_or(0.0) > 900.0);
    assert!(
        v["warnings"].as_array().expect("warnings").is_empty(),
        "{}",
        v["warnings"]
    );
    assert!(
        v["notes"].as_array().expect("notes").is_empty(),
        "{}",
        v["notes"]
    );
    let interactions: Vec<(String, String)> = paths[1..]
        .iter()
        .map(|p| {
            assert_eq!(p["kind"], "interaction");
            for q in ["cpu_ms", "memory_bytes", "network_bytes"] {
                assert!(ordered(&p[q]), "{} {q}: {}", p["name"], p[q]);
            }
            (
                p["event"].as_str().expect("event").to_string(),
                p["target"].as_str().expect("target").to_string(),
            )
        })
        .collect();
    assert_eq!(
        interactions,
        vec![
            ("click".to_string(), "#sort".to_string()),
            ("input".to_string(), "#filter".to_string()),
            ("click".to_string(), "document".to_string()),
        ]
    );
    // The worker's script was found and fetched relative to the page, and priced from its
    // 5e7-iteration loop: hundreds of ms at the default calibration.
    let worker = &v["components"][0];
    assert_eq!(worker["url"], format!("{base}js/stats.js"));
    assert_eq!(worker["source_known"], true);
    assert!(worker["cpu_ms"]["p50"].as_f64().unwrap_or(0.0) > 100.0);
    assert_eq!(v["graph"]["scripts"], 4);
}

#[test]
fn a_local_file_reads_its_scripts_and_styles_from_disk() {
    let page = fixture("sorter/index.html");
    let v = json(&[page.to_str().expect("utf-8 path"), "--json"]);
    let dir = std::fs::canonicalize(fixture("sorter")).expect("fixture dir");
    check_sorter(&v, &format!("file://{}/", dir.display()));
    assert_eq!(v["calibration"]["source"], "default");
}

#[test]
fn the_text_report_lists_the_graph_paths_and_curves() {
    let out = run(&[fixture("sorter/index.html").to_str().expect("utf-8")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "graph        ",
        "4 scripts",
        "load ",
        "click on #sort",
        "input on #filter",
        "click on document",
        "buckets of",
        "component worker-0",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

/// Serves `root` over HTTP/1.1 on an ephemeral loopback port for `requests` requests,
/// answering scripts with chunked encoding (as many dev servers do).
fn serve(root: PathBuf, requests: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            seen.push(path.clone());
            let file = root.join(path.trim_start_matches('/'));
            let mut body = Vec::new();
            let found = std::fs::File::open(&file)
                .and_then(|mut f| f.read_to_end(&mut body))
                .is_ok();
            let response = if !found {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
            } else if path.ends_with(".js") {
                let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for chunk in body.chunks(100) {
                    r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    r.extend_from_slice(chunk);
                    r.extend_from_slice(b"\r\n");
                }
                r.extend_from_slice(b"0\r\n\r\n");
                r
            } else {
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                    .into_bytes();
                r.extend_from_slice(&body);
                r
            };
            let _ = stream.write_all(&response);
        }
        seen
    });
    (port, handle)
}

#[test]
fn a_loopback_url_is_fetched_with_its_scripts_over_http() {
    // The page, its style sheet, two scripts, then the worker script in the second pass.
    let (port, server) = serve(fixture("sorter"), 5);
    let base = format!("http://127.0.0.1:{port}/");
    let v = json(&[&format!("{base}index.html"), "--json"]);
    check_sorter(&v, &base);
    let seen = server.join().expect("server thread");
    assert_eq!(
        seen,
        vec![
            "/index.html",
            "/js/data.js",
            "/js/app.js",
            "/css/site.css",
            "/js/stats.js"
        ]
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_a_failure_exit() {
    let out = run(&["http://example.com/index.html", "--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only loopback URLs"), "{err}");
    let out = run(&["/no/such/page.html"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/page.html"));
    let out = run(&["x.html", "--units-per-ms", "-5"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_given_calibration_scales_cpu_time() {
    let page = fixture("sorter/index.html");
    let page = page.to_str().expect("utf-8");
    let base = json(&[page, "--json", "--units-per-ms", "1000000"]);
    let slow = json(&[page, "--json", "--units-per-ms", "250000"]);
    assert_eq!(slow["calibration"]["source"], "given");
    let cpu = |v: &Value| v["components"][0]["cpu_ms"]["p50"].as_f64().unwrap_or(0.0);
    let ratio = cpu(&slow) / cpu(&base);
    assert!((ratio - 4.0).abs() < 1e-6, "{ratio}");
}

#[test]
fn calibrate_measures_this_device_in_headless_chromium() {
    let page = fixture("sorter/index.html");
    let out = run(&[page.to_str().expect("utf-8"), "--json", "--calibrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["calibration"]["source"], "measured in headless Chromium");
    let units = v["calibration"]["units_per_ms"].as_f64().unwrap_or(0.0);
    // Any real device lands well inside the accepted range.
    assert!((1e4..1e9).contains(&units), "{units}");
}
