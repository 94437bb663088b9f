//! Issue 14, the watching network, end to end: what a prober sees, TLS over TCP when UDP is
//! silently dropped, a SOCKS5 proxy that carries every connection (and nothing going around
//! it), and stored sizes that tell neither a report's length nor an NGO's staff count.

mod common;

use common::bins::{self, as_script};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// `vigil ARGS` as a script runs it; panics with stderr on failure. Returns (stdout, stderr).
fn run(args: &[&str]) -> (String, String) {
    let out = as_script(&mut Command::new(bins::vigil()))
        .args(args)
        .output()
        .expect("vigil runs");
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "vigil {args:?} failed:\n{e}\n{o}");
    (o, e)
}

/// Like [`run`] but returns the exit code too, without asserting success.
fn try_run(args: &[&str]) -> (i32, String, String) {
    let out = as_script(&mut Command::new(bins::vigil()))
        .args(args)
        .output()
        .expect("vigil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report_file(dir: &Path, name: &str, narrative_len: usize) -> PathBuf {
    let p = dir.join(format!("{name}.json"));
    let narrative: String = "x".repeat(narrative_len);
    std::fs::write(
        &p,
        serde_json::json!({
            "kind": "arbitrary_detention",
            "urgency": "urgent",
            "title": name,
            "occurred_at": "2026-12-01",
            "narrative": narrative,
        })
        .to_string(),
    )
    .unwrap();
    p
}

/// An NGO home at `addr` (through `extra` global flags) with its card written; returns
/// (home, card).
fn ngo(root: &Path, name: &str, addr: &str, fp: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let home = root.join(name);
    let card = root.join(format!("{name}.card"));
    let mut args = vec!["--home", home.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "ngo",
        "init",
        "--name",
        name,
        "--relay",
        addr,
        "--relay-fingerprint",
        fp,
        "--card-out",
        card.to_str().unwrap(),
    ]);
    run(&args);
    (home, card)
}

fn titles(home: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--home", home.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["inbox", "fetch"]);
    run(&args);
    let (out, _) = run(&["--home", home.to_str().unwrap(), "--json", "inbox", "list"]);
    let mut t: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("title").and_then(|t| t.as_str()).map(String::from))
        .collect();
    t.sort();
    t
}

/// A TLS client that accepts any certificate and offers what a browser offers.
async fn probe_tls(addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tls = vigil_client::relay::tls::rustls_config(b"http/1.1").unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(
            rustls::pki_types::ServerName::try_from("example.org").unwrap(),
            tcp,
        )
        .await
        .expect("an ordinary TLS handshake")
}

/// Read one HTTP response (head and Content-Length body) from `s`.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before a full response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_https_probe_sees_an_ordinary_web_server() {
    let dir = tempfile::tempdir().unwrap();
    let relay = common::start_relay(dir.path()).await;
    let addr = relay.local_addr();

    let mut s = probe_tls(addr).await;
    let (_, conn) = s.get_ref();
    assert_eq!(
        conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "an HTTP/1.1 server"
    );
    let shown = conn.peer_certificates().unwrap()[0].to_vec();
    // The certificate says nothing about Vigil and is not the one cards pin.
    assert!(!String::from_utf8_lossy(&shown)
        .to_lowercase()
        .contains("vigil"));
    assert_ne!(
        vigil_core::ids::CertFingerprint::of_der(&shown),
        relay.fingerprint(),
        "the pinned certificate is never shown without a knock"
    );
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
    )
    .await
    .unwrap();
    let r = read_response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("Content-Type: text/html"), "{r}");
    assert!(!r.to_lowercase().contains("vigil"), "{r}");
    // Keep-alive: a second request on the same connection, another path.
    s.write_all(b"GET /wp-login.php HTTP/1.1\r\nHost: example.org\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    // A knock made for another certificate is answered exactly like any POST to that path.
    let wrong = vigil_core::wire::knock::knock_request(
        "x:1",
        &[vigil_core::ids::CertFingerprint([7; 32])],
        &[0; 32],
    );
    s.write_all(&wrong).await.unwrap();
    let knock_answer = read_response(&mut s).await;
    s.write_all(b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let plain_answer = read_response(&mut s).await;
    let status = |r: &str| r.lines().next().unwrap().to_string();
    assert_eq!(status(&knock_answer), status(&plain_answer));
    assert!(knock_answer.starts_with("HTTP/1.1 404"), "{knock_answer}");
    // Garbage: 400 and the connection closed, like a web server.
    s.write_all(b"\x00\x01 not http\r\n\r\n").await.unwrap();
    let r = read_response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;

    // QUIC: a client offering Vigil's old ALPN gets no handshake; one offering h3 without a
    // good knock gets its connection closed.
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(vigil_client::relay::tls::quic_client_config(b"vigil/1").unwrap());
    let old = ep.connect(addr, "example.org").unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), old)
        .await
        .unwrap()
        .is_err());
    ep.set_default_client_config(vigil_client::relay::tls::quic_client_config(b"h3").unwrap());
    let conn = ep.connect(addr, "example.org").unwrap().await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    send.finish().unwrap();
    assert!(
        recv.read_to_end(1024).await.is_err(),
        "no answer without a knock"
    );

    let stats = relay.stats().await;
    assert!(stats.front_requests >= 5, "{}", stats.front_requests);
    assert_eq!(stats.knocks_failed, 1);
    relay.shutdown().await.unwrap();
}

/// A TCP listener and a UDP socket on one port number on 127.0.0.1, as a relay has; every
/// datagram to the UDP socket is read and dropped without an answer (a network where QUIC
/// never connects).
async fn same_port_swallowing_udp() -> (TcpListener, Arc<UdpSocket>) {
    let (tcp, udp) = loop {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(u) = UdpSocket::bind(("127.0.0.1", port)).await {
            break (tcp, Arc::new(u));
        }
    };
    let u = udp.clone();
    tokio::spawn(async move {
        let mut b = vec![0u8; 65536];
        while u.recv_from(&mut b).await.is_ok() {}
    });
    (tcp, udp)
}

/// Forwards TCP from its own port to `to`, and silently drops every UDP datagram sent to the
/// same port number: a network where QUIC never connects.
struct TcpOnly {
    addr: SocketAddr,
    _udp: Arc<UdpSocket>,
}

impl TcpOnly {
    async fn start(to: SocketAddr) -> Self {
        let (tcp, udp) = same_port_swallowing_udp().await;
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = tcp.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                    }
                });
            }
        });
        Self { addr, _udp: udp }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_arrive_over_tcp_when_udp_is_silently_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let relay = common::start_relay(&root.join("relay")).await;
    let fp = relay.fingerprint().to_string();
    let path = TcpOnly::start(relay.local_addr()).await;
    let addr = path.addr.to_string();

    let (ngo_home, card) = ngo(root, "Desk", &addr, &fp, &[]);
    let reporter = root.join("reporter");
    let r = reporter.to_str().unwrap();
    run(&["--home", r, "contact", "add", card.to_str().unwrap()]);

    // QUIC forced: nothing gets through, the report waits in the outbox.
    let first = report_file(root, "forced quic", 200);
    let (code, _, err) = try_run(&[
        "--home",
        r,
        "--transport",
        "quic",
        "report",
        "send",
        "--to",
        "Desk",
        "--file",
        first.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("cannot reach the relay"), "{err}");

    // auto: QUIC first, TCP after a few seconds; well within 15 s.
    let second = report_file(root, "over tcp", 200);
    let t = Instant::now();
    let (_, err) = run(&[
        "--home",
        r,
        "--verbose",
        "report",
        "send",
        "--to",
        "Desk",
        "--file",
        second.to_str().unwrap(),
    ]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}\n{err}");
    assert!(err.contains("trying TLS/TCP too"), "{err}");
    assert!(err.contains("over TLS/TCP"), "{err}");

    // Remembered: the next connection goes over TCP first, with no wait for QUIC.
    let third = report_file(root, "remembered", 200);
    let (_, err) = run(&[
        "--home",
        r,
        "--verbose",
        "report",
        "send",
        "--to",
        "Desk",
        "--file",
        third.to_str().unwrap(),
    ]);
    assert!(err.contains("over TLS/TCP"), "{err}");
    assert!(!err.contains("trying"), "{err}");
    // The queued one went too (the send flushed the whole outbox), all over TCP.
    assert_eq!(
        titles(&ngo_home, &[]),
        vec![
            "forced quic".to_string(),
            "over tcp".to_string(),
            "remembered".to_string()
        ]
    );
    let stats = relay.stats().await;
    assert!(stats.tcp_accepted >= 4, "{}", stats.tcp_accepted);
    relay.shutdown().await.unwrap();
}

/// Forwards TCP to `to`, but passes at most `limit` bytes from the client on each connection;
/// after that it silently swallows what the client sends and keeps the connection open (a
/// censor that freezes TLS flows after a few KB). UDP to the same port goes nowhere.
struct StallAfter {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    _udp: Arc<UdpSocket>,
}

impl StallAfter {
    async fn start(to: SocketAddr, limit: usize) -> Self {
        let (tcp, udp) = same_port_swallowing_udp().await;
        let addr = tcp.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let n = connections.clone();
        tokio::spawn(async move {
            while let Ok((c, _)) = tcp.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(to).await else {
                        return;
                    };
                    let (mut cr, mut cw) = c.into_split();
                    let (mut ur, mut uw) = up.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut ur, &mut cw).await;
                    });
                    let mut passed = 0usize;
                    let mut b = vec![0u8; 8192];
                    while let Ok(k) = cr.read(&mut b).await {
                        if k == 0 {
                            break;
                        }
                        let pass = k.min(limit.saturating_sub(passed));
                        if pass > 0 && uw.write_all(&b[..pass]).await.is_err() {
                            break;
                        }
                        passed += pass;
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            _udp: udp,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_through_a_flow_freezing_censor_goes_on_in_short_flows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The relay gives up on a frozen flow after 3 s (30 s by default), releasing the chunk it
    // was receiving for the client's next flow.
    let mut config =
        vigil_relay::RelayConfig::new(root.join("relay"), "127.0.0.1:0".parse().unwrap());
    config.limits.idle_timeout_secs = 3;
    let relay = vigil_relay::start(config).await.unwrap();
    let fp = relay.fingerprint().to_string();
    // 96 KiB per flow: the NGO's setup and fetch fit, a 300 KiB upload in one flow does not.
    let censor = StallAfter::start(relay.local_addr(), 96 * 1024).await;
    let (ngo2_home, card) = ngo(
        root,
        "Desk2",
        &censor.addr.to_string(),
        &fp,
        &["--transport", "tcp"],
    );
    let reporter = root.join("reporter");
    let r = reporter.to_str().unwrap();
    run(&["--home", r, "contact", "add", card.to_str().unwrap()]);
    let evidence = root.join("evidence.bin");
    let bytes: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&evidence, &bytes).unwrap();
    let report = report_file(root, "frozen flows", 300);
    let t = Instant::now();
    run(&[
        "--home",
        r,
        "--transport",
        "tcp",
        "report",
        "send",
        "--to",
        "Desk2",
        "--file",
        report.to_str().unwrap(),
        "--attach",
        evidence.to_str().unwrap(),
        "--stall-timeout",
        "1s",
    ]);
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    assert!(
        censor.connections.load(Ordering::SeqCst) >= 4,
        "progress was made across several connections"
    );
    // The NGO gets the file whole (its fetch goes through the same path; downloads are not
    // frozen by this censor).
    assert_eq!(
        titles(&ngo2_home, &["--transport", "tcp"]),
        vec!["frozen flows".to_string()]
    );
    let (out, _) = run(&[
        "--home",
        ngo2_home.to_str().unwrap(),
        "--json",
        "inbox",
        "list",
    ]);
    let id = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("id").and_then(|i| i.as_str()).map(String::from))
        .expect("an inbox id");
    let export = root.join("export");
    run(&[
        "--home",
        ngo2_home.to_str().unwrap(),
        "--transport",
        "tcp",
        "inbox",
        "export",
        &id,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(export.join("evidence.bin")).unwrap(), bytes);
    relay.shutdown().await.unwrap();
}

/// A SOCKS5 proxy (no authentication or any username/password) that records the targets it
/// was asked for, as Tor would see them.
struct Socks {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl Socks {
    async fn start(resolve: SocketAddr) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (t, n) = (targets.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                let t = t.clone();
                tokio::spawn(async move {
                    let _ = Self::serve(c, t, resolve).await;
                });
            }
        });
        Self {
            addr,
            targets,
            connections,
        }
    }

    /// One SOCKS5 CONNECT; a name target (ATYP 3) goes to `resolve` (the test's relay), as a
    /// proxy resolving the name itself would.
    async fn serve(
        mut c: TcpStream,
        targets: Arc<Mutex<Vec<String>>>,
        resolve: SocketAddr,
    ) -> std::io::Result<()> {
        let mut h = [0u8; 2];
        c.read_exact(&mut h).await?;
        let mut methods = vec![0u8; h[1] as usize];
        c.read_exact(&mut methods).await?;
        if methods.contains(&2) {
            c.write_all(&[5, 2]).await?;
            let mut v = [0u8; 2];
            c.read_exact(&mut v).await?;
            let mut user = vec![0u8; v[1] as usize];
            c.read_exact(&mut user).await?;
            let mut l = [0u8; 1];
            c.read_exact(&mut l).await?;
            let mut pass = vec![0u8; l[0] as usize];
            c.read_exact(&mut pass).await?;
            c.write_all(&[1, 0]).await?;
        } else {
            c.write_all(&[5, 0]).await?;
        }
        let mut req = [0u8; 4];
        c.read_exact(&mut req).await?;
        let target = match req[3] {
            3 => {
                let mut l = [0u8; 1];
                c.read_exact(&mut l).await?;
                let mut name = vec![0u8; l[0] as usize];
                c.read_exact(&mut name).await?;
                String::from_utf8_lossy(&name).into_owned()
            }
            1 => {
                let mut a = [0u8; 4];
                c.read_exact(&mut a).await?;
                std::net::Ipv4Addr::from(a).to_string()
            }
            _ => return Ok(()),
        };
        let mut port = [0u8; 2];
        c.read_exact(&mut port).await?;
        let port = u16::from_be_bytes(port);
        targets.lock().unwrap().push(format!("{target}:{port}"));
        let mut up = TcpStream::connect((resolve.ip(), port)).await?;
        c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
        let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socks5_proxy_carries_every_connection_and_nothing_goes_direct() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let relay = common::start_relay(&root.join("relay")).await;
    let fp = relay.fingerprint().to_string();
    let socks = Socks::start(relay.local_addr()).await;
    let proxy = format!("socks5h://{}", socks.addr);
    // The card names the relay by a host name only the proxy resolves.
    let addr = format!("relay.invalid:{}", relay.local_addr().port());

    let (ngo_home, card) = ngo(root, "Desk", &addr, &fp, &["--proxy", &proxy]);
    let reporter = root.join("reporter");
    let r = reporter.to_str().unwrap();
    run(&["--home", r, "contact", "add", card.to_str().unwrap()]);
    let report = report_file(root, "through the proxy", 300);
    let out = as_script(&mut Command::new(bins::vigil()))
        .env("VIGIL_PROXY", &proxy)
        .args(["--home", r, "report", "send", "--to", "Desk", "--file"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        titles(&ngo_home, &["--proxy", &proxy]),
        vec!["through the proxy".to_string()]
    );
    let seen = socks.targets.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(
        seen.iter().all(|t| *t == addr),
        "the name went to the proxy: {seen:?}"
    );
    // Every connection the relay accepted came through the proxy, over TCP.
    let stats = relay.stats().await;
    assert_eq!(stats.connections_accepted, stats.tcp_accepted);
    assert_eq!(
        stats.tcp_accepted as usize,
        socks.connections.load(Ordering::SeqCst)
    );

    // Proxy down: fail closed, with a line that says so, and no connection to the relay.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let before = relay.stats().await.connections_accepted;
    let second = report_file(root, "proxy down", 300);
    let (code, _, err) = try_run(&[
        "--home",
        r,
        "--proxy",
        &format!("socks5h://{dead}"),
        "report",
        "send",
        "--to",
        "Desk",
        "--file",
        second.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("proxy"), "{err}");
    assert!(err.contains("nothing is sent without it"), "{err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1,
        "{err}"
    );
    assert_eq!(relay.stats().await.connections_accepted, before);
    relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_sizes_tell_neither_report_length_nor_staff_count() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let relay = common::start_relay(&root.join("relay")).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    let (one, one_card) = ngo(root, "One", &addr, &fp, &[]);
    let (three, three_card) = ngo(root, "Three", &addr, &fp, &[]);
    for staff in ["second", "third"] {
        run(&[
            "--home",
            three.to_str().unwrap(),
            "ngo",
            "add-staff",
            "--name",
            staff,
            "--card-out",
            three_card.to_str().unwrap(),
        ]);
    }
    let reporter = root.join("reporter");
    let r = reporter.to_str().unwrap();
    run(&["--home", r, "contact", "add", one_card.to_str().unwrap()]);
    run(&["--home", r, "contact", "add", three_card.to_str().unwrap()]);
    let mut sizes = Vec::new();
    for (to, len) in [
        ("One", 200),
        ("One", 3 * 1024),
        ("Three", 200),
        ("Three", 3 * 1024),
    ] {
        let before = relay.stats().await.store.bytes;
        let f = report_file(root, &format!("{to} {len}"), len);
        run(&[
            "--home",
            r,
            "report",
            "send",
            "--to",
            to,
            "--file",
            f.to_str().unwrap(),
        ]);
        sizes.push(relay.stats().await.store.bytes - before);
    }
    assert!(sizes[0] >= 16 * 1024, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s == sizes[0]), "{sizes:?}");
    let _ = (one, three);
    relay.shutdown().await.unwrap();
}

/// `vigil-relay serve` (the program, as an operator runs it): a relay on port P answers QUIC on
/// UDP P and TLS on TCP P, and `--no-tcp` leaves TCP P closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_program_serves_both_transports_on_one_port_unless_told_not_to() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str], data: &Path| {
        let mut child = Command::new(bins::vigil_relay())
            .args(["serve", "--listen", "127.0.0.1:0", "--ready-json", "--data"])
            .arg(data)
            .args(extra)
            .env("VIGIL_RELAY_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start vigil-relay");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&ready).expect("ready line");
        let addr: SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
        let fp = v["fingerprint"].as_str().unwrap().to_string();
        (child, addr, fp)
    };
    let (mut both, addr, fp) = serve(&[], &dir.path().join("a"));
    let mut s = probe_tls(addr).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200 OK"));
    // Both transports reach the relay the card pins.
    for t in ["quic", "tcp"] {
        let (home, _) = ngo(
            dir.path(),
            &format!("Desk-{t}"),
            &addr.to_string(),
            &fp,
            &["--transport", t],
        );
        run(&[
            "--home",
            home.to_str().unwrap(),
            "--transport",
            t,
            "inbox",
            "status",
        ]);
    }
    both.kill().unwrap();
    let _ = both.wait();

    let (mut quic_only, addr, _) = serve(&["--no-tcp"], &dir.path().join("b"));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "--no-tcp: nothing listens on TCP"
    );
    quic_only.kill().unwrap();
    let _ = quic_only.wait();
}

/// A visitor cannot hold a connection for ever by asking again and again: after 100 answers the
/// relay closes it, as web servers close keep-alive connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_gets_a_bounded_number_of_answers_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let relay = common::start_relay(dir.path()).await;
    let mut s = probe_tls(relay.local_addr()).await;
    for _ in 0..100 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200 OK"));
    }
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection is closed, not left hanging");
    assert!(
        rest.is_empty(),
        "no 101st answer: {:?}",
        String::from_utf8_lossy(&rest)
    );
    relay.shutdown().await.unwrap();
}
