//! `vigil-relay serve --metrics ADDR` (issue 17): the relay's counts in the Prometheus text
//! format, with no mailbox id, item id or address in any of them.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_client::state::Ngo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_deposit_and_name_no_mailbox() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let mut config =
        vigil_relay::RelayConfig::new(root.join("relay"), "127.0.0.1:0".parse().unwrap());
    config.metrics = Some("127.0.0.1:0".parse().unwrap());
    let relay = vigil_relay::start(config).await.expect("relay starts");
    let metrics = relay.metrics_addr().expect("metrics served");
    let (ngo, card) = make_ngo(root, "ngo", "Desk", &relay).await;
    let reporter = make_reporter(root, &[&card]).await;
    let report = root.join("r.json");
    std::fs::write(
        &report,
        r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#,
    )
    .expect("write");
    vigil_ok(&[
        "--home",
        reporter.to_str().unwrap(),
        "report",
        "send",
        "--to",
        "Desk",
        "--file",
        report.to_str().unwrap(),
        "--no-retry",
    ])
    .await;

    let mut s = tokio::net::TcpStream::connect(metrics)
        .await
        .expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await
        .expect("ask");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("read");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
            .parse()
            .expect("a number")
    };
    assert!(value("vigil_relay_deposits_stored_total") >= 1);
    assert!(
        value("vigil_relay_mailboxes") >= 2,
        "the NGO's and a reply mailbox"
    );
    assert_eq!(value("vigil_relay_up"), 1);
    // Nothing that names a mailbox or a connection.
    let home = bins::home(&ngo).expect("home");
    let mailbox = Ngo::load(&home).expect("ngo").config.mailbox.to_string();
    assert!(!text.contains(&mailbox), "no mailbox id");
    assert!(!text.contains("127.0.0.1"), "no address");
    relay.shutdown().await.expect("shutdown");
}
