//! The relay on PostgreSQL (issue 17), end to end with the real `vigil` client: a report
//! through a relay on `--store postgres://...` reaches its NGO and leaves nothing readable in
//! the database; and two `vigil-relay serve` programs sharing one `--data` certificate and one
//! database serve one card: a report deposited through one is fetched and acknowledged through
//! the other. Each test has a fresh database on the test server (`common::pg`).

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use vigil_relay::RelayConfig;

/// An urgent report titled `title`, whose narrative holds `secret`; its path.
fn report(dir: &Path, title: &str, secret: &str) -> String {
    let path = dir.join(format!("{}.json", title.replace(' ', "-")));
    let json = serde_json::json!({
        "kind": "abduction", "urgency": "urgent", "title": title,
        "occurred_at": "2026-11-20T06:15:00+03:00", "occurred_at_precision": "minute",
        "location": {"text": "a street"}, "narrative": secret,
    });
    std::fs::write(&path, json.to_string()).expect("report file");
    path.to_str().expect("utf8").to_string()
}

/// Rows of the relay's tables: every byte the database holds for reports.
async fn stored_bytes(db: &tokio_postgres::Client) -> Vec<u8> {
    let mut out = Vec::new();
    for q in [
        "SELECT data FROM envelope_chunks",
        "SELECT data FROM blob_chunks",
        "SELECT value FROM alerts",
    ] {
        for row in db.query(q, &[]).await.expect("read a table") {
            out.extend_from_slice(row.get::<_, &[u8]>(0));
        }
    }
    out
}

/// (mailbox, deposit id) of the only deposit in the database: the report just sent.
async fn the_one_deposit(db: &tokio_postgres::Client) -> (Vec<u8>, Vec<u8>) {
    let rows = db
        .query("SELECT mailbox, deposit_id, acked FROM deposits", &[])
        .await
        .expect("deposits");
    assert_eq!(rows.len(), 1, "one report stored");
    assert!(!rows[0].get::<_, bool>(2), "waiting to be fetched");
    (rows[0].get(0), rows[0].get(1))
}

/// That deposit is acknowledged: a tombstone without bytes.
async fn assert_acknowledged(db: &tokio_postgres::Client, (m, d): &(Vec<u8>, Vec<u8>)) {
    let acked: bool = db
        .query_one(
            "SELECT acked FROM deposits WHERE mailbox = $1 AND deposit_id = $2",
            &[m, d],
        )
        .await
        .expect("the report's row")
        .get(0);
    assert!(acked, "acknowledged");
    let chunks: i64 = db
        .query_one(
            "SELECT count(*) FROM envelope_chunks WHERE mailbox = $1 AND deposit_id = $2",
            &[m, d],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(chunks, 0, "its bytes are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_through_a_postgres_relay_is_fetched_and_leaves_nothing_readable() {
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let mut config = RelayConfig::new(root.join("relay"), "127.0.0.1:0".parse().unwrap());
    config.store = Some(url.clone());
    let relay = vigil_relay::start(config)
        .await
        .expect("relay on PostgreSQL starts");
    let (ngo, card) = make_ngo(root, "ngo", "Desk", &relay).await;
    let reporter = make_reporter(root, &[&card]).await;
    let secret = "Taken from the flat on Lenin street at dawn by four men";
    let file = report(root, "Taken at dawn", secret);
    let rep = reporter.to_str().expect("utf8");
    vigil_ok(&[
        "--home", rep, "report", "send", "--to", "Desk", "--file", &file,
    ])
    .await;

    let db = pg::connect(&url).await;
    let report_row = the_one_deposit(&db).await;
    let held = stored_bytes(&db).await;
    assert!(!held.is_empty());
    assert!(
        !contains(&held, secret.as_bytes()) && !contains(&held, b"Taken at dawn"),
        "the database holds report text"
    );
    assert!(
        !root.join("relay").join("store").exists(),
        "no sled store beside the PostgreSQL one"
    );

    let h = ngo.to_str().expect("utf8");
    vigil_ok(&["--home", h, "inbox", "fetch"]).await;
    let home = common::bins::home(&ngo).expect("home");
    let entries = vigil_client::state::inbox_entries(&home).expect("entries");
    assert_eq!(entries.len(), 1, "the report arrived");
    // Acknowledged: its bytes are gone, its deposit id stays remembered until expiry. (The
    // fetch deposits a receipt for the reporter: another item, in another mailbox.)
    assert_acknowledged(&db, &report_row).await;
    relay.shutdown().await.expect("relay stops");
}

/// A `vigil-relay serve --store URL` child with its certificate in `data`; its address and
/// fingerprint once it is ready.
fn relay_program(data: &Path, url: &str) -> (Child, String, String) {
    let mut child = Command::new(common::bins::vigil_relay())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ready-json",
            "--store",
            url,
            "--data",
        ])
        .arg(data)
        .env("VIGIL_RELAY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start vigil-relay");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("the ready line");
    let v: Value = serde_json::from_str(&ready)
        .unwrap_or_else(|e| panic!("vigil-relay's ready line ({e}): {ready:?}"));
    let s = |k: &str| v[k].as_str().expect(k).to_string();
    (child, s("addr"), s("fingerprint"))
}

fn stop(mut child: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success());
    assert!(child.wait().expect("relay exits").success(), "clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relay_programs_on_one_database_serve_one_card() {
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let data = root.join("relay");
    // The certificate first, as an operator makes it before starting the relays.
    let fp = Command::new(common::bins::vigil_relay())
        .args(["fingerprint", "--data"])
        .arg(&data)
        .output()
        .expect("vigil-relay fingerprint");
    assert!(fp.status.success());
    let fp = String::from_utf8(fp.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    let (a, addr_a, fp_a) = relay_program(&data, &url);
    let (b, addr_b, fp_b) = relay_program(&data, &url);
    assert_ne!(addr_a, addr_b);
    assert_eq!(
        (&fp_a, &fp_b),
        (&fp, &fp),
        "one certificate, one fingerprint"
    );

    // The NGO registers and issues its card through relay A; the reporter deposits through A.
    let (ngo, card) = make_ngo_at(root, "ngo", "Desk", &addr_a, &fp).await;
    let reporter = make_reporter(root, &[&card]).await;
    let secret = "Detained at the border post, phone taken";
    let file = report(root, "Detained at the border", secret);
    let rep = reporter.to_str().expect("utf8");
    vigil_ok(&[
        "--home", rep, "report", "send", "--to", "Desk", "--file", &file,
    ])
    .await;
    let db = pg::connect(&url).await;
    let report_row = the_one_deposit(&db).await;

    // Relay A goes away; the NGO moves its inbox to relay B and fetches there.
    stop(a);
    let h = ngo.to_str().expect("utf8");
    vigil_ok(&["--home", h, "ngo", "set-relay", "--relay", &addr_b]).await;
    vigil_ok(&["--home", h, "inbox", "fetch"]).await;
    let home = common::bins::home(&ngo).expect("home");
    let entries = vigil_client::state::inbox_entries(&home).expect("entries");
    assert_eq!(
        entries.len(),
        1,
        "the report deposited through A came through B"
    );
    let (_, bytes) = vigil_client::state::inbox_read(&home, &entries[0].0).expect("read");
    assert!(!bytes.is_empty());
    // Acknowledged through B, in the database both share.
    assert_acknowledged(&db, &report_row).await;
    // Fetched once: nothing more comes.
    vigil_ok(&["--home", h, "inbox", "fetch"]).await;
    assert_eq!(
        vigil_client::state::inbox_entries(&home)
            .expect("entries")
            .len(),
        1
    );
    stop(b);
}

/// `vigil ARGS` as a script runs it, with `--home HOME`.
fn vigil_program(home: &Path) -> Command {
    let mut cmd = Command::new(common::bins::vigil());
    common::bins::as_script(&mut cmd)
        .env_remove("VIGIL_HOME")
        .arg("--home")
        .arg(home);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_one_relay_hears_a_deposit_through_the_other() {
    let Some(url) = pg::fresh_database().await else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let data = root.join("relay");
    let (a, addr_a, fp) = relay_program(&data, &url);
    let (b, addr_b, _) = relay_program(&data, &url);
    let (ngo, card) = make_ngo_at(&root, "ngo", "Desk", &addr_a, &fp).await;
    let reporter = make_reporter(&root, &[&card]).await;
    // The reporter's card names A; the NGO now watches through B.
    let h = ngo.to_str().expect("utf8");
    vigil_ok(&["--home", h, "ngo", "set-relay", "--relay", &addr_b]).await;
    let file = report(&root, "Taken at the station", "Two men, a grey van");
    let watched = tokio::task::spawn_blocking(move || {
        let mut watch = vigil_program(&ngo)
            .args(["--json", "inbox", "watch", "--for", "60s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vigil inbox watch");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = watch.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line).expect("a JSON line");
                if tx.send((std::time::Instant::now(), v)).is_err() {
                    return;
                }
            }
        });
        let next = |ty: &str, within: std::time::Duration| loop {
            let (at, v) = lines
                .recv_timeout(within)
                .unwrap_or_else(|_| panic!("no {ty} line from inbox watch within {within:?}"));
            if v["type"] == ty {
                return (at, v);
            }
        };
        next("watching", std::time::Duration::from_secs(15));
        let sent = vigil_program(&reporter)
            .args(["--json", "report", "send", "--to", "Desk", "--file", &file])
            .output()
            .expect("report send");
        assert!(
            sent.status.success(),
            "report send: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
        let done = std::time::Instant::now();
        let (at, v) = next("new_report", std::time::Duration::from_secs(20));
        assert_eq!(v["title"], "Taken at the station");
        let _ = watch.kill();
        let _ = watch.wait();
        at.saturating_duration_since(done)
    })
    .await
    .expect("the watch");
    eprintln!("watch through B heard the deposit through A {watched:?} after send returned");
    assert!(
        watched < std::time::Duration::from_secs(2),
        "heard only after {watched:?}"
    );
    stop(a);
    stop(b);
}
