//! The live inbox (issue 15): `vigil inbox watch` shows an urgent report within a second of its
//! deposit, keeps watching across a relay restart, and the relay holds only a few waiters per
//! mailbox (the Wait request, `docs/protocol.md`).

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vigil_client::relay::{RelayClient, RelayError};
use vigil_core::ids::DepositId;
use vigil_core::wire::ErrorCode;

/// An urgent report with `title`.
fn report(dir: &Path, title: &str) -> String {
    let path = dir.join(format!("{}.json", title.replace(' ', "-")));
    let json = serde_json::json!({
        "kind": "abduction", "urgency": "urgent", "title": title,
        "occurred_at": "2026-11-20T06:15:00+03:00", "occurred_at_precision": "minute",
        "location": {"text": "a street"}, "narrative": "Taken from his home at dawn.",
    });
    std::fs::write(&path, json.to_string()).expect("report file");
    path.to_str().expect("utf8").to_string()
}

/// `vigil ARGS` as a script runs it, with `--home HOME`.
fn vigil(home: &Path) -> Command {
    let mut cmd = Command::new(common::bins::vigil());
    common::bins::as_script(&mut cmd)
        .env_remove("VIGIL_HOME")
        .arg("--home")
        .arg(home);
    cmd
}

/// `vigil report send` of an urgent report titled `title` to Desk; returns when it did.
fn send(reporter: &Path, dir: &Path, title: &str) -> Instant {
    let file = report(dir, title);
    let out = vigil(reporter)
        .args(["--json", "report", "send", "--to", "Desk", "--file", &file])
        .output()
        .expect("run vigil report send");
    let done = Instant::now();
    assert!(
        out.status.success(),
        "report send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    done
}

/// A `vigil --json inbox watch` child, its stdout lines arriving on a channel with the time each
/// came.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<(Instant, Value)>,
}

impl Watcher {
    fn start(ngo: &Path, for_: &str) -> Watcher {
        let mut child = vigil(ngo)
            .args(["--json", "inbox", "watch", "--for", for_])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vigil inbox watch");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line on stdout ({e}): {line:?}"));
                if tx.send((Instant::now(), v)).is_err() {
                    return;
                }
            }
        });
        Watcher { child, lines }
    }

    /// The next line of `type`, within `within`.
    fn next(&self, kind: &str, within: Duration) -> (Instant, Value) {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, v)) if v["type"] == kind => return (at, v),
                Ok(_) => {}
                Err(e) => panic!("no {kind:?} line from inbox watch within {within:?}: {e}"),
            }
        }
    }

    /// Stop it as a service manager does (SIGTERM); it exits 0 after saying so.
    fn stop(mut self) {
        term(self.child.id());
        let status = self.child.wait().expect("wait for inbox watch");
        assert!(status.success(), "inbox watch exited with {status}");
        self.next("watch_stopped", Duration::from_secs(5));
    }
}

fn term(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_shows_an_urgent_report_within_a_second_of_its_deposit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let relay = common::start_relay(&tmp.path().join("relay")).await;
    let (ngo, card) = common::make_ngo(tmp.path(), "ngo", "Desk", &relay).await;
    let reporter = common::make_reporter(tmp.path(), &[&card]).await;
    let dir = tmp.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let watcher = Watcher::start(&ngo, "20s");
        watcher.next("watching", Duration::from_secs(15));
        let sent = send(&reporter, &dir, "Taken at dawn");
        let (seen, line) = watcher.next("new_report", Duration::from_secs(10));
        assert_eq!(line["title"], "Taken at dawn");
        assert_eq!(line["urgency"], "urgent");
        assert!(
            line["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert!(
            line["received_at"].as_u64().is_some_and(|t| t > 0),
            "{line}"
        );
        let latency = seen.saturating_duration_since(sent);
        eprintln!("report send returned -> inbox watch printed: {latency:?}");
        assert!(
            latency < Duration::from_secs(1),
            "inbox watch printed the report {latency:?} after report send returned"
        );
        // It is in the inbox, for `inbox list` beside the running watch (no lock held now).
        let list = vigil(&ngo)
            .args(["--json", "inbox", "list"])
            .output()
            .expect("inbox list");
        assert!(list.status.success());
        assert!(String::from_utf8_lossy(&list.stdout).contains("Taken at dawn"));
        watcher.stop();
    })
    .await
    .expect("the watch test");
    relay.shutdown().await.expect("relay stops");
}

/// A `vigil-relay serve` child on `listen`, with its data in `data`; its address and
/// fingerprint once it is ready.
fn relay_program(data: &Path, listen: &str) -> (Child, String, String) {
    let mut child = Command::new(common::bins::vigil_relay())
        .args(["serve", "--listen", listen, "--ready-json", "--data"])
        .arg(data)
        .env("VIGIL_RELAY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_keeps_watching_across_a_relay_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("relay");
    let (mut relay, addr, fp) = relay_program(&data, "127.0.0.1:0");
    let (ngo, card) = common::make_ngo_at(tmp.path(), "ngo", "Desk", &addr, &fp).await;
    let reporter = common::make_reporter(tmp.path(), &[&card]).await;
    let dir = tmp.path().to_path_buf();
    let relay = tokio::task::spawn_blocking(move || {
        let watcher = Watcher::start(&ngo, "90s");
        watcher.next("watching", Duration::from_secs(15));
        send(&reporter, &dir, "Before the restart");
        let (_, line) = watcher.next("new_report", Duration::from_secs(10));
        assert_eq!(line["title"], "Before the restart");
        // The relay stops (as for an upgrade) and comes back on the same port and data.
        term(relay.id());
        assert!(relay.wait().expect("relay exits").success());
        let (_, line) = watcher.next("relay_lost", Duration::from_secs(30));
        assert_eq!(line["relay"], addr.as_str());
        let (relay, again, _) = relay_program(&data, &addr);
        assert_eq!(again, addr);
        let (_, line) = watcher.next("relay_back", Duration::from_secs(40));
        assert_eq!(line["relay"], addr.as_str());
        watcher.next("watching", Duration::from_secs(10));
        send(&reporter, &dir, "After the restart");
        let (_, line) = watcher.next("new_report", Duration::from_secs(10));
        assert_eq!(line["title"], "After the restart");
        watcher.stop();
        relay
    })
    .await
    .expect("the restart test");
    let mut relay = relay;
    term(relay.id());
    let _ = relay.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_beyond_the_relays_limit_per_mailbox_is_refused_and_slots_come_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let relay = common::start_relay(&tmp.path().join("relay")).await;
    let (addr, fp) = (relay.local_addr().to_string(), relay.fingerprint());
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let first = RelayClient::connect(&addr, &fp).await.expect("connect");
    let mailbox = first.register(&key).await.expect("register");
    first.close().await;
    // The default limit: four watchers on one mailbox, each on a connection of its own.
    let max = vigil_relay::waiters::DEFAULT_MAX_PER_MAILBOX;
    let mut waiting = Vec::new();
    for _ in 0..max {
        let c = RelayClient::connect(&addr, &fp).await.expect("connect");
        let key = key.clone();
        waiting.push(tokio::spawn(async move { c.wait(&key, 60).await }));
    }
    let extra = RelayClient::connect(&addr, &fp).await.expect("connect");
    // Until all four are held, the fifth may still get in; it must be refused once they are.
    let refused = loop {
        let started = Instant::now();
        match tokio::time::timeout(Duration::from_millis(300), extra.wait(&key, 60)).await {
            Ok(Err(RelayError::Refused { code, message, .. })) => break (code, message),
            Ok(other) => panic!("the fifth wait was answered: {other:?}"),
            Err(_) => assert!(started.elapsed() < Duration::from_secs(10)),
        }
    };
    assert_eq!(refused.0, ErrorCode::Busy);
    assert!(
        refused.1.contains(&format!("{max} watchers")),
        "a clear refusal: {}",
        refused.1
    );
    // A watcher that goes away (its connection dropped) gives its slot back at once.
    waiting.pop().expect("one").abort();
    let again = tokio::spawn({
        let key = key.clone();
        async move {
            loop {
                match extra.wait(&key, 60).await {
                    Err(RelayError::Refused {
                        code: ErrorCode::Busy,
                        ..
                    }) => tokio::time::sleep(Duration::from_millis(100)).await,
                    other => return other,
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A deposit wakes every waiter, the late one included.
    let reporter = RelayClient::connect(&addr, &fp).await.expect("connect");
    reporter
        .deposit(&mailbox, &DepositId([1; 16]), b"sealed")
        .await
        .expect("deposit");
    for w in waiting {
        let n = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(n.expect("answered"), 1);
    }
    let n = tokio::time::timeout(Duration::from_secs(5), again)
        .await
        .expect("the late waiter was admitted and woken")
        .unwrap();
    assert_eq!(n.expect("answered"), 1);
    relay.shutdown().await.expect("relay stops");
}

/// `inbox watch` saves which transport reached each relay in the vault (`net/transports`), as
/// every other command does, although it connects while the vault is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_saves_which_transport_worked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let relay = common::start_relay(&tmp.path().join("relay")).await;
    let addr = relay.local_addr().to_string();
    let (ngo, _card) = common::make_ngo(tmp.path(), "ngo", "Desk", &relay).await;
    // Forget what `ngo init` saved, so only the watch can write it.
    let record = |ngo: &Path| {
        let home = common::bins::home(ngo).expect("home");
        let v = home.vault().expect("vault");
        v.get("net/transports", 64 * 1024)
            .expect("read")
            .map(|b| String::from_utf8_lossy(&b).to_string())
    };
    {
        let home = common::bins::home(&ngo).expect("home");
        home.vault()
            .expect("vault")
            .remove("net/transports")
            .expect("remove");
    }
    assert_eq!(record(&ngo), None);
    let ngo2 = ngo.clone();
    tokio::task::spawn_blocking(move || {
        let watcher = Watcher::start(&ngo2, "20s");
        watcher.next("watching", Duration::from_secs(15));
        watcher.stop();
    })
    .await
    .expect("the watch");
    let saved = record(&ngo).expect("the watch saved the record");
    assert!(saved.contains(&addr) && saved.contains("quic"), "{saved}");
    relay.shutdown().await.expect("relay stops");
}
