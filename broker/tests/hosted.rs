//! Hosted mode through a real websocket: tokens and their quotas and connection limits, the
//! Origin check, the connection limit, the message rate and size limits.

mod common;

use common::{Broker, Client, DEADLINE, MIB, http_get, resources};
use foresight_broker::{ClientToken, Limits};
use serde_json::json;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn token(name: &str, secret: &str) -> ClientToken {
    ClientToken {
        name: name.into(),
        token: secret.into(),
        quota: Some(resources(500, 64 * MIB)),
        max_connections: Some(1),
        weight: 1,
    }
}

async fn hosted() -> Broker {
    let mut config = common::test_config();
    config.tokens = vec![token("alice", "alice-secret"), token("bob", "bob-secret")];
    Broker::with_config(config).await
}

async fn hello_with(c: &mut Client, token: Option<&str>) -> serde_json::Value {
    c.request(json!({"type": "hello", "protocol_version": 1, "client": "test", "token": token}))
        .await
}

/// Connects with an `Origin` header; the handshake's HTTP status when refused.
async fn connect_from(broker: &Broker, origin: &str) -> Result<Client, u16> {
    let mut request = format!("ws://{}", broker.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", origin.parse().expect("header"));
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("answered in time")
    {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("unexpected handshake failure: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_their_quota_and_connections_are_enforced() {
    let broker = hosted().await;
    for bad in [None, Some("wrong"), Some("alice-secre")] {
        let mut c = broker.connect().await;
        let refused = hello_with(&mut c, bad).await;
        assert_eq!(refused["code"], "unauthorized", "{refused}");
        c.closed().await;
    }
    let mut alice = broker.connect().await;
    assert_eq!(
        hello_with(&mut alice, Some("alice-secret")).await["type"],
        "hello"
    );
    alice.lease(400, MIB, 10_000).await;
    let over = alice.lease_request(2, 200, MIB, 10_000).await;
    assert_eq!(over["reason"], "quota_exceeded", "{over}");
    // One connection per token.
    let mut again = broker.connect().await;
    let second = hello_with(&mut again, Some("alice-secret")).await;
    assert_eq!(second["code"], "limit_exceeded", "{second}");
    again.closed().await;
    // Bob has his own quota.
    let mut bob = broker.connect().await;
    assert_eq!(
        hello_with(&mut bob, Some("bob-secret")).await["type"],
        "hello"
    );
    bob.lease(500, MIB, 10_000).await;
    // Alice's seat is free again once she leaves.
    drop(alice);
    let reconnected = async {
        loop {
            let mut c = broker.connect().await;
            if hello_with(&mut c, Some("alice-secret")).await["type"] == "hello" {
                return;
            }
        }
    };
    tokio::time::timeout(DEADLINE, reconnected)
        .await
        .expect("alice's seat freed");
    drop(bob);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_are_refused_and_extensions_served() {
    let broker = Broker::start().await;
    assert_eq!(
        connect_from(&broker, "https://evil.example").await.err(),
        Some(403)
    );
    for origin in [
        "chrome-extension://abcdefghijklmnop",
        "moz-extension://0a1b-2c3d",
    ] {
        let mut c = connect_from(&broker, origin)
            .await
            .expect("extension origin served");
        assert_eq!(c.hello().await["type"], "hello");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_rate_and_size_limits_are_typed_refusals() {
    let mut config = common::test_config();
    config.limits = Limits {
        max_connections: 1,
        max_message_bytes: 4096,
        messages_per_s: 1,
        message_burst: 3,
    };
    let broker = Broker::with_config(config).await;
    let mut c = broker.client().await;
    // The second connection is refused at the handshake while the first is open.
    assert_eq!(
        connect_from(&broker, "chrome-extension://x").await.err(),
        Some(503)
    );
    // hello used one of three; two more pass, then the rate (one a second) refuses.
    let mut codes = Vec::new();
    for id in 0..6 {
        let answer = c
            .request(json!({"type": "lease_release", "lease_id": 1000 + id}))
            .await;
        codes.push(answer["code"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(codes[..2], ["not_found", "not_found"], "{codes:?}");
    assert!(
        codes[2..].iter().all(|c| c == "limit_exceeded"),
        "{codes:?}"
    );
    // Too large: refused with the configured limit, then closed.
    c.send_text(&format!("\"{}\"", "x".repeat(5000))).await;
    let too_large = c.expect("error").await;
    assert_eq!(too_large["code"], "too_large", "{too_large}");
    assert!(
        too_large["message"].as_str().unwrap().contains("4096"),
        "{too_large}"
    );
    c.closed().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_port() {
    let broker = Broker::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = tokio::spawn(broker.handle.clone().serve_metrics(listener, async {
        let _ = stopped.await;
    }));
    let mut c = broker.client().await;
    c.lease(500, MIB, 10_000).await;
    let denied = c.lease_request(2, 9_000, MIB, 10_000).await;
    assert_eq!(denied["reason"], "infeasible");

    let (status, body) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for line in [
        "foresight_broker_connections 1",
        "foresight_broker_leases 1",
        "foresight_broker_granted_cpu_millicores 500",
        "foresight_broker_capacity_cpu_millicores 2000",
        "foresight_broker_leases_granted_total 1",
        "foresight_broker_lease_requests_denied_total{reason=\"infeasible\"} 1",
        "# TYPE foresight_broker_leases_ended_total counter",
    ] {
        assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
    }
    let (status, _) = http_get(metrics_addr, "/").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let _ = stop.send(());
    metrics.await.unwrap().unwrap();
    drop(c);
    broker.stop().await;
}

/// The test certificates, valid for a century: `tls-ca.pem`, a throwaway CA (its key was
/// deleted), and `tls-cert.pem`/`tls-key.pem`, a P-256 server certificate it signed for
/// 127.0.0.1 and localhost (openssl `req -x509` for the CA, `x509 -req` with
/// `subjectAltName`, `basicConstraints=CA:FALSE`, `extendedKeyUsage=serverAuth` for the
/// leaf). They protect nothing; they let the test speak real TLS.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_serves_with_the_configured_certificate() {
    use futures_util::{SinkExt, StreamExt};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio_tungstenite::tungstenite::Message;

    let mut config = common::test_config();
    config.tls = Some(
        foresight_broker::tls::load(&fixture("tls-cert.pem"), &fixture("tls-key.pem"))
            .expect("the fixture loads"),
    );
    let broker = Broker::with_config(config).await;

    // Plain ws to a wss port fails at the handshake; the broker keeps serving.
    let plain = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async(format!("ws://{}", broker.addr)),
    )
    .await
    .expect("answered in time");
    assert!(plain.is_err(), "plain websocket over a TLS port must fail");

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("tls-ca.pem")).expect("cert"))
        .expect("root");
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(broker.addr)
        .await
        .expect("tcp");
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake with the configured certificate");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://{}", broker.addr), tls)
        .await
        .expect("websocket over TLS");
    ws.send(Message::text(
        json!({"type": "hello", "protocol_version": 1, "client": "tls"}).to_string(),
    ))
    .await
    .expect("send");
    let answer = tokio::time::timeout(DEADLINE, ws.next())
        .await
        .expect("answered in time")
        .expect("open")
        .expect("frame");
    let hello: serde_json::Value =
        serde_json::from_str(answer.to_text().expect("text")).expect("json");
    assert_eq!(hello["type"], "hello", "{hello}");
    drop(ws);
    broker.stop().await;
}

#[test]
fn tls_files_that_do_not_load_say_which() {
    let missing = foresight_broker::tls::load(
        std::path::Path::new("/nonexistent/cert.pem"),
        &fixture("tls-key.pem"),
    )
    .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/cert.pem"),
        "{missing}"
    );
    let swapped =
        foresight_broker::tls::load(&fixture("tls-key.pem"), &fixture("tls-key.pem")).unwrap_err();
    assert!(swapped.to_string().contains("certificate"), "{swapped}");
}
