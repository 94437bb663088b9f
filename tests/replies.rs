//! Replies and signed delivery receipts (issue 15), end to end: a real relay on 127.0.0.1, the
//! `vigil` program run as a script runs it, and forgeries deposited with the library straight
//! into a reply mailbox, as a hostile relay or anyone who learnt the mailbox id could.

mod common;

use serde_json::Value;
use std::process::{Command, Output};
use vigil_client::relay::RelayClient;
use vigil_core::ids::{DepositId, ReportId};
use vigil_core::keys::SigningSecret;
use vigil_core::thread::{self, Draft, Kind};

fn run(args: &[&str]) -> Output {
    let mut c = Command::new(common::bins::vigil());
    c.args(args).env_remove("VIGIL_HOME");
    common::bins::as_script(&mut c);
    c.output().expect("run vigil")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "vigil {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["type"] == t).collect()
}

/// The one `report_status` line of report `id` (the acceptance contract: `id`, `ngo`, `state`,
/// `replies` of `text` and `at`).
fn status_of(rep: &str, id: &str, offline: bool) -> (Value, Output) {
    let mut args = vec!["--home", rep, "--json", "report", "status"];
    if offline {
        args.push("--offline");
    }
    let o = ok(&args);
    let lines = json_lines(&o);
    let mine: Vec<&Value> = of_type(&lines, "report_status")
        .into_iter()
        .filter(|v| v["id"] == id)
        .collect();
    assert_eq!(mine.len(), 1, "one line per report and NGO: {lines:?}");
    (mine[0].clone(), o)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking part")
}

/// Everything logged in this test process, at every level and from every crate (the relay's,
/// quinn's, rustls's): what a relay operator's most verbose log would hold.
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                captured_logs().lock().expect("logs").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_writer(|| Sink)
            .with_ansi(false)
            .try_init();
        std::sync::Mutex::new(Vec::new())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_reply_and_answer_make_a_verified_thread_the_relay_cannot_read_or_forge() {
    let _ = captured_logs();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay_dir = root.join("relay");
    let relay = common::start_relay(&relay_dir).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint();
    let s = |p: std::path::PathBuf| p.to_str().expect("utf8").to_string();
    let (ngo, rep, card, report) = (
        s(root.join("ngo")),
        s(root.join("rep")),
        s(root.join("ngo.card")),
        s(root.join("r.json")),
    );
    let canary = format!("CANARY{}", hex::encode(rand::random::<[u8; 10]>()));
    let reply_text = format!("Which police station? {canary}-reply");
    let answer_text = format!("The one on Lenina street. {canary}-answer");

    let (ngo2, rep2, card2, report2, addr2, fp2) = (
        ngo.clone(),
        rep.clone(),
        card.clone(),
        report.clone(),
        addr.clone(),
        fp.to_string(),
    );
    let (id, inbox_id) = blocking(move || {
        let (ngo, rep, card, report) = (ngo2, rep2, card2, report2);
        ok(&["--home", &ngo, "ngo", "init", "--name", "Desk", "--relay", &addr2, "--relay-fingerprint", &fp2, "--card-out", &card]);
        ok(&["--home", &rep, "contact", "add", &card]);
        std::fs::write(&report, r#"{"kind":"threat","urgency":"urgent","title":"Calls at night","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");

        // The report: `report send --json` names it by `id`; its reply mailbox is registered.
        let sent = json_lines(&ok(&["--home", &rep, "--json", "report", "send", "--to", "Desk", "--file", &report]));
        let queued = of_type(&sent, "queued");
        let id = queued[0]["id"].as_str().expect("the report's id").to_string();
        assert_eq!(id.len(), 16, "{sent:?}");
        assert!(of_type(&sent, "reply_mailbox").iter().all(|v| v["registered"] == true), "{sent:?}");
        let (st, _) = status_of(&rep, &id, true);
        assert_eq!((st["ngo"].as_str(), st["state"].as_str()), (Some("Desk"), Some("stored")), "{st}");
        assert_eq!(st["replies"], serde_json::json!([]));

        // The NGO fetches: the report is stored and its receipt deposited.
        let fetched = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "fetch"]));
        let inbox_id = of_type(&fetched, "fetched")[0]["id"].as_str().expect("id").to_string();
        let sent = of_type(&fetched, "thread_sent");
        assert!(sent.iter().any(|v| v["kind"] == "receipt" && v["id"] == inbox_id.as_str()), "{fetched:?}");

        // The reporter sees it delivered, with the NGO's (signed) time.
        let (st, _) = status_of(&rep, &id, false);
        assert_eq!(st["state"], "delivered", "{st}");
        assert!(st["delivered_at"].as_u64().is_some_and(|t| t > 0), "{st}");
        (id, inbox_id)
    })
    .await;

    // The NGO replies; the reporter sees the reply, verified.
    let (ngo2, rep2, id2, inbox2, reply2) = (
        ngo.clone(),
        rep.clone(),
        id.clone(),
        inbox_id.clone(),
        reply_text.clone(),
    );
    blocking(move || {
        let out = json_lines(&ok(&[
            "--home",
            &ngo2,
            "--json",
            "inbox",
            "reply",
            &inbox2[..8],
            "--message",
            &reply2,
        ]));
        assert!(of_type(&out, "reply_sent").len() == 1, "{out:?}");
        let (st, o) = status_of(&rep2, &id2, false);
        let replies = st["replies"].as_array().expect("replies");
        assert_eq!(replies.len(), 1, "{st}");
        assert_eq!(replies[0]["text"], reply2.as_str());
        assert!(replies[0]["at"].as_u64().is_some(), "{st}");
        assert!(of_type(&json_lines(&o), "forged").is_empty());
        // Fetched and acknowledged: asking again shows the same, from the vault.
        let (again, _) = status_of(&rep2, &id2, false);
        assert_eq!(again["replies"], st["replies"]);
        // Human output shows it too.
        let human = ok(&["--home", &rep2, "report", "status", "--offline"]);
        let text = String::from_utf8_lossy(&human.stderr);
        assert!(
            text.contains("delivered") && text.contains("Which police station?"),
            "{text}"
        );
    })
    .await;

    // Forgeries, deposited straight into the reply mailbox: a reply signed by a key that is not
    // the NGO's, and a receipt signed by the NGO's real key for another report. Both are refused
    // with a one-line warning and not shown.
    let reporter_home = common::bins::home(&rep).expect("home");
    let report_record = vigil_client::state::sent_reports(&reporter_home)
        .expect("reports")
        .into_iter()
        .find(|r| r.id == id)
        .expect("the report");
    let t = &report_record.threads[0];
    let mailbox = t.mailbox().expect("mailbox");
    let to = t.reply_identity().expect("reply key").to_public();
    let report_id = t.report_id;
    drop(reporter_home);
    let ngo_home = common::bins::home(&ngo).expect("home");
    let ngo_key = vigil_client::state::Ngo::load(&ngo_home)
        .expect("ngo")
        .identity;
    drop(ngo_home);
    let forger = SigningSecret::generate(&mut rand::rngs::OsRng);
    let forged_text = format!("Come to the station alone {canary}-forged");
    let forged_reply = thread::seal(
        &Draft {
            kind: Kind::Reply,
            created: 1,
            report: &report_id,
            reply_recipient: &to,
            text: &forged_text,
            attachments: None,
        },
        &forger,
        std::slice::from_ref(&to),
        &mut rand::rngs::OsRng,
    )
    .expect("seal");
    let other_report = ReportId([9; 32]);
    let misdirected = thread::seal(
        &Draft {
            kind: Kind::Reply,
            created: 2,
            report: &other_report,
            reply_recipient: &to,
            text: "misdirected-text",
            attachments: None,
        },
        &ngo_key,
        std::slice::from_ref(&to),
        &mut rand::rngs::OsRng,
    )
    .expect("seal");
    let client = RelayClient::connect_pinned(&addr, &[fp])
        .await
        .expect("connect");
    for env in [&forged_reply, &misdirected] {
        assert_eq!(env.len(), vigil_core::envelope::FIXED_ENVELOPE_LEN);
        client
            .deposit(&mailbox, &DepositId(rand::random()), env)
            .await
            .expect("the relay stores anything for a registered mailbox");
    }
    client.close().await;
    let (rep2, id2, reply2, forged2) = (
        rep.clone(),
        id.clone(),
        reply_text.clone(),
        forged_text.clone(),
    );
    blocking(move || {
        // As a person sees it: one warning line each, with the reason, and no forged text.
        let o = ok(&["--home", &rep2, "report", "status"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("not genuine"))
            .collect();
        assert_eq!(warnings.len(), 2, "one line each: {stderr}");
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("warning: ") && w.contains("not the NGO's card key")),
            "{stderr}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("another report")),
            "{stderr}"
        );
        assert!(
            !stderr.contains(&forged2) && !stderr.contains("misdirected-text"),
            "{stderr}"
        );
        let (st, _) = status_of(&rep2, &id2, true);
        let replies = st["replies"].as_array().expect("replies");
        assert_eq!(replies.len(), 1, "only the genuine reply: {st}");
        assert_eq!(replies[0]["text"], reply2.as_str());
    })
    .await;
    // A receipt signed by a wrong key, under --json: a `forged` object, still not delivered
    // by it (the genuine receipt came first; the time does not move).
    let (_, before) = (0, status_of(&rep, &id, true).0["delivered_at"].clone());
    let fake_receipt = thread::seal(
        &Draft {
            kind: Kind::Receipt,
            created: 3,
            report: &report_id,
            reply_recipient: &to,
            text: "",
            attachments: None,
        },
        &forger,
        std::slice::from_ref(&to),
        &mut rand::rngs::OsRng,
    )
    .expect("seal");
    let client = RelayClient::connect_pinned(&addr, &[fp])
        .await
        .expect("connect");
    client
        .deposit(&mailbox, &DepositId(rand::random()), &fake_receipt)
        .await
        .expect("stored");
    client.close().await;
    let (rep2, id2) = (rep.clone(), id.clone());
    blocking(move || {
        let (st, o) = status_of(&rep2, &id2, false);
        let forged = of_type(&json_lines(&o), "forged")
            .into_iter()
            .cloned()
            .collect::<Vec<_>>();
        assert_eq!(forged.len(), 1, "{forged:?}");
        assert_eq!(forged[0]["id"], id2.as_str());
        assert!(
            forged[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("not the NGO's card key")),
            "{forged:?}"
        );
        assert_eq!(st["delivered_at"], before);
    })
    .await;

    // The reporter answers; the NGO's fetch files it into the thread, which `inbox show` shows.
    let (ngo2, rep2, id2, inbox2, answer2, reply2) = (
        ngo.clone(),
        rep.clone(),
        id.clone(),
        inbox_id.clone(),
        answer_text.clone(),
        reply_text.clone(),
    );
    blocking(move || {
        ok(&[
            "--home",
            &rep2,
            "report",
            "reply",
            &id2[..6],
            "--message",
            &answer2,
        ]);
        let fetched = json_lines(&ok(&["--home", &ngo2, "--json", "inbox", "fetch"]));
        assert!(
            of_type(&fetched, "answer")
                .iter()
                .any(|v| v["id"] == inbox2.as_str()),
            "{fetched:?}"
        );
        assert!(
            of_type(&fetched, "fetched").is_empty(),
            "an answer is not a new report: {fetched:?}"
        );
        let shown = json_lines(&ok(&["--home", &ngo2, "--json", "inbox", "show", &inbox2]));
        let messages = shown[0]["thread"]["messages"]
            .as_array()
            .expect("thread")
            .clone();
        let texts: Vec<(&str, &str)> = messages
            .iter()
            .map(|m| {
                (
                    m["from"].as_str().unwrap_or(""),
                    m["text"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            texts,
            [("ngo", reply2.as_str()), ("reporter", answer2.as_str())],
            "{shown:?}"
        );
        assert!(shown[0]["thread"]["receipt_sent_at"].as_u64().is_some());
        let human =
            String::from_utf8_lossy(&ok(&["--home", &ngo2, "inbox", "show", &inbox2]).stdout)
                .to_string();
        assert!(
            human.contains("Lenina street") && human.contains("Which police station?"),
            "{human}"
        );
        let (st, _) = status_of(&rep2, &id2, true);
        assert_eq!(st["answers"][0]["text"], answer2.as_str());
    })
    .await;

    // The relay's disk holds none of the texts, in UTF-8 or base64.
    relay.shutdown().await.expect("shutdown");
    use base64::Engine;
    let mut needles: Vec<Vec<u8>> = vec![canary.as_bytes().to_vec()];
    for pad in ["", "a", "ab"] {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{pad}{canary}"));
        needles.push(enc.as_bytes()[4..enc.len() - 4].to_vec());
    }
    for f in common::all_files(&relay_dir) {
        let bytes = std::fs::read(&f).expect("read");
        for n in &needles {
            assert!(
                !common::contains(&bytes, n),
                "{} holds a reply text",
                f.display()
            );
        }
    }
    // Nor does anything the relay (or its QUIC and TLS libraries) logged, at trace level.
    let logs = captured_logs().lock().expect("logs").clone();
    assert!(!logs.is_empty(), "the relay's logs were captured");
    for n in &needles {
        assert!(
            !common::contains(&logs, n),
            "the relay's logs hold a reply text"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_sent_without_replies_carries_no_capability_and_cannot_be_replied_to() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = common::start_relay(&root.join("relay")).await;
    let (addr, fp) = (
        relay.local_addr().to_string(),
        relay.fingerprint().to_string(),
    );
    blocking(move || {
        let s = |p: std::path::PathBuf| p.to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (s(root.join("ngo")), s(root.join("rep")), s(root.join("c")), s(root.join("r.json")));
        ok(&["--home", &ngo, "ngo", "init", "--name", "Desk", "--relay", &addr, "--relay-fingerprint", &fp, "--card-out", &card]);
        ok(&["--home", &rep, "contact", "add", &card]);
        std::fs::write(&report, r#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");
        let sent = json_lines(&ok(&["--home", &rep, "--json", "report", "send", "--to", "Desk", "--file", &report, "--no-replies"]));
        assert_eq!(of_type(&sent, "queued")[0]["replies"], false);
        assert!(of_type(&sent, "reply_mailbox").is_empty(), "{sent:?}");
        // `report status` lists it all the same, as the outbox knows it: stored, never more.
        let rid = of_type(&sent, "queued")[0]["id"].as_str().expect("id").to_string();
        let (st, o) = status_of(&rep, &rid, false);
        assert_eq!((st["ngo"].as_str(), st["state"].as_str()), (Some("Desk"), Some("stored")), "{st}");
        assert_eq!(st["replies"], serde_json::json!([]));
        assert_eq!(st["with_replies"], false);
        assert!(of_type(&json_lines(&o), "relay_unreachable").is_empty());
        let human = String::from_utf8_lossy(&ok(&["--home", &rep, "report", "status", "--offline"]).stderr).to_string();
        assert!(human.contains("Desk: stored at the relay") && human.contains("sent without replies"), "{human}");
        let o = run(&["--home", &rep, "report", "reply", &rid, "--message", "hello"]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--no-replies") && err.lines().count() == 1, "{err}");
        let fetched = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "fetch"]));
        let id = of_type(&fetched, "fetched")[0]["id"].as_str().expect("id").to_string();
        assert!(of_type(&fetched, "thread_sent").is_empty(), "no receipt: {fetched:?}");
        let o = run(&["--home", &ngo, "inbox", "reply", &id, "--message", "hello"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr).contains("carries no reply key"), "{}", String::from_utf8_lossy(&o.stderr));
        let shown = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "show", &id]));
        assert!(shown[0]["thread"].is_null());
    })
    .await;
}

/// A reply mailbox is registered for its thread's lifetime and the relay forgets it, with what
/// it holds, once that is over (here: the relay's expiry sweep run as if the days had passed),
/// while the NGO's mailbox stays. A relay that grants less than the thread needs (its
/// `max_mailbox_lifetime_days`) says so, and the reporter's next status check registers the
/// mailbox again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_mailboxes_expire_at_the_relay_with_their_thread() {
    const DAY: u64 = 86_400;
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    // Two relays: one with the default limit (a year), one that keeps reply mailboxes 30 days.
    let mut relays = Vec::new();
    for (name, cap) in [("relay", None), ("capped", Some(30u16))] {
        let mut config =
            vigil_relay::RelayConfig::new(root.join(name), "127.0.0.1:0".parse().expect("addr"));
        if let Some(cap) = cap {
            config.limits.max_mailbox_lifetime_days = cap;
        }
        std::fs::create_dir_all(&config.data_dir).expect("dir");
        let store = vigil_relay::open_store(&config).expect("store");
        let relay = vigil_relay::start_with(config, store.clone())
            .await
            .expect("relay");
        relays.push((relay, store));
    }
    let s = |p: std::path::PathBuf| p.to_str().expect("utf8").to_string();
    let mut reporters = Vec::new();
    for (i, (relay, _)) in relays.iter().enumerate() {
        let (addr, fp) = (
            relay.local_addr().to_string(),
            relay.fingerprint().to_string(),
        );
        let (ngo, rep, card, report) = (
            s(root.join(format!("ngo{i}"))),
            s(root.join(format!("rep{i}"))),
            s(root.join(format!("c{i}"))),
            s(root.join(format!("r{i}.json"))),
        );
        let sent = blocking(move || {
            ok(&["--home", &ngo, "ngo", "init", "--name", "Desk", "--relay", &addr, "--relay-fingerprint", &fp, "--card-out", &card]);
            ok(&["--home", &rep, "contact", "add", &card]);
            std::fs::write(&report, r#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");
            json_lines(&ok(&["--home", &rep, "--json", "report", "send", "--to", "Desk", "--file", &report]))
        })
        .await;
        reporters.push((
            s(root.join(format!("rep{i}"))),
            s(root.join(format!("ngo{i}"))),
            sent,
        ));
    }
    let now = vigil_relay::clock::now_unix();
    let mailboxes = |rep: &str| {
        let home = common::bins::home(rep).expect("home");
        let r = vigil_client::state::sent_reports(&home).expect("reports");
        let t = &r[0].threads[0];
        (t.mailbox().expect("mailbox"), t.relays[0].kept_until)
    };
    let ngo_mailbox = |ngo: &str| {
        let home = common::bins::home(ngo).expect("home");
        vigil_client::state::Ngo::load(&home)
            .expect("ngo")
            .config
            .mailbox
    };

    // Default relay: asked for the 90 days of --replies-for and one of slack, granted them.
    let (rep, ngo, sent) = &reporters[0];
    let line = of_type(sent, "reply_mailbox")[0].clone();
    let kept = line["kept_until"].as_u64().expect("kept_until");
    assert!((now + 90 * DAY..=now + 92 * DAY).contains(&kept), "{line}");
    let (reply, kept_until) = mailboxes(rep);
    assert_eq!(kept_until, Some(kept));
    let (_, store) = &relays[0];
    let ngo_box = ngo_mailbox(ngo);
    assert!(store.mailbox_key(reply).await.expect("key").is_some());
    // The receipt waits there when the NGO fetches; 89 days on, it is all still there.
    blocking({
        let ngo = ngo.clone();
        move || ok(&["--home", &ngo, "inbox", "fetch"])
    })
    .await;
    assert_eq!(store.usage(reply).await.expect("usage").items, 1);
    // 29 days on, all is there; 89 days on, the receipt nobody fetched is gone (the relay's
    // 30 days for unfetched items) but the mailbox is still registered.
    assert_eq!(store.expire(now + 29 * DAY).await.expect("expire"), 0);
    assert_eq!(store.usage(reply).await.expect("usage").items, 1);
    assert_eq!(store.expire(now + 89 * DAY).await.expect("expire"), 1);
    assert!(store.mailbox_key(reply).await.expect("key").is_some());
    // Past the lifetime the registration goes; the NGO's mailbox stays.
    store.expire(now + 93 * DAY).await.expect("expire");
    assert_eq!(store.mailbox_key(reply).await.expect("key"), None);
    assert!(store.mailbox_key(ngo_box).await.expect("key").is_some());

    // Capped relay: granted 30 days, which the client records; the relay forgets the mailbox
    // after them, and the reporter's next `report status`, its thread still open, registers it
    // again on the connection it polls it on.
    let (rep, _, sent) = &reporters[1];
    let line = of_type(sent, "reply_mailbox")[0].clone();
    let kept = line["kept_until"].as_u64().expect("kept_until");
    assert!((now + 29 * DAY..=now + 31 * DAY).contains(&kept), "{line}");
    let (reply, _) = mailboxes(rep);
    let (_, store) = &relays[1];
    store.expire(now + 32 * DAY).await.expect("expire");
    assert_eq!(store.mailbox_key(reply).await.expect("key"), None);
    blocking({
        let rep = rep.clone();
        move || ok(&["--home", &rep, "report", "status"])
    })
    .await;
    assert!(
        store.mailbox_key(reply).await.expect("key").is_some(),
        "registered again"
    );
    for (relay, _) in relays {
        relay.shutdown().await.expect("shutdown");
    }
}

/// Attachments in a thread (issue 15): the NGO's reply carries a document and a photo (its
/// GPS metadata removed before anything is encrypted); `report status` downloads and verifies
/// them, `--json` lists them, `--save-to` writes them; the reporter answers with a file that
/// the NGO's fetch downloads, `inbox show` lists and `inbox export` writes. The relay's disk and
/// logs hold none of the files' contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_travel_both_ways_in_a_thread_verified_and_unreadable_at_the_relay() {
    let _ = captured_logs();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay_dir = root.join("relay");
    let relay = common::start_relay(&relay_dir).await;
    let (addr, fp) = (
        relay.local_addr().to_string(),
        relay.fingerprint().to_string(),
    );
    let canary = format!("CANARY{}", hex::encode(rand::random::<[u8; 10]>()));
    let form = format!("Consent form. Sign below. {canary}-form\n").repeat(50);
    let signed = format!("I consent. {canary}-signed\n").repeat(50);
    let (dirty, clean) = common::jpeg_with_exif();
    let root2 = root.clone();
    let (form2, signed2) = (form.clone(), signed.clone());
    blocking(move || {
        let root = root2;
        let s = |p: std::path::PathBuf| p.to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (s(root.join("ngo")), s(root.join("rep")), s(root.join("c")), s(root.join("r.json")));
        let (form_f, photo_f, signed_f) = (s(root.join("form.txt")), s(root.join("photo.jpg")), s(root.join("signed.txt")));
        std::fs::write(&form_f, &form2).expect("write");
        std::fs::write(&photo_f, &dirty).expect("write");
        std::fs::write(&signed_f, &signed2).expect("write");
        ok(&["--home", &ngo, "ngo", "init", "--name", "Desk", "--relay", &addr, "--relay-fingerprint", &fp, "--card-out", &card]);
        ok(&["--home", &rep, "contact", "add", &card]);
        std::fs::write(&report, r#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");
        let sent = json_lines(&ok(&["--home", &rep, "--json", "report", "send", "--to", "Desk", "--file", &report]));
        let id = of_type(&sent, "queued")[0]["id"].as_str().expect("id").to_string();
        let fetched = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "fetch"]));
        let inbox_id = of_type(&fetched, "fetched")[0]["id"].as_str().expect("id").to_string();

        // The NGO's reply with two attachments: the photo's metadata is removed and said.
        let out = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "reply", &inbox_id, "--message", "Please sign the form", "--attach", &form_f, "--attach", &photo_f]));
        let said = of_type(&out, "attachment");
        assert_eq!(said.len(), 2, "{out:?}");
        assert!(said.iter().any(|a| a["name"] == "photo.jpg" && a["metadata"] == "removed"), "{out:?}");
        let sent = of_type(&out, "reply_sent");
        assert_eq!(sent[0]["attachments"].as_array().map(Vec::len), Some(2), "{out:?}");

        // The reporter's status: downloaded, verified, listed; written out with --save-to.
        let saved_dir = s(root.join("saved"));
        let o = ok(&["--home", &rep, "--json", "report", "status", "--save-to", &saved_dir]);
        let lines = json_lines(&o);
        let st = of_type(&lines, "report_status").into_iter().find(|v| v["id"] == id.as_str()).expect("status").clone();
        assert_eq!(st["state"], "delivered", "{st}");
        let replies = st["replies"].as_array().expect("replies");
        assert_eq!(replies[0]["text"], "Please sign the form");
        let atts = replies[0]["attachments"].as_array().expect("attachments");
        let names: Vec<&str> = atts.iter().map(|a| a["name"].as_str().unwrap_or("")).collect();
        assert_eq!(names, ["form.txt", "photo.jpg"], "{st}");
        assert_eq!(atts[0]["size"], form2.len() as u64);
        let form_saved = atts[0]["saved"].as_str().expect("saved path");
        assert_eq!(std::fs::read_to_string(form_saved).expect("read"), form2);
        let photo_saved = atts[1]["saved"].as_str().expect("saved path");
        let photo = std::fs::read(photo_saved).expect("read");
        assert_eq!(photo, clean, "sent without its metadata");
        assert_eq!(of_type(&lines, "attachment_downloaded").len(), 2, "{lines:?}");
        // Asked again: nothing to download or write twice; the paths stay.
        let (again, _) = status_of(&rep, &id, false);
        assert_eq!(again["replies"], st["replies"]);
        let human = String::from_utf8_lossy(&ok(&["--home", &rep, "report", "status", "--offline"]).stderr).to_string();
        assert!(human.contains("attachment: form.txt") && human.contains(form_saved), "{human}");

        // The reporter answers with a file; the NGO's fetch downloads it; show and export.
        ok(&["--home", &rep, "report", "reply", &id, "--message", "Signed", "--attach", &signed_f]);
        let fetched = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "fetch"]));
        assert!(of_type(&fetched, "answer").iter().any(|v| v["id"] == inbox_id.as_str()), "{fetched:?}");
        assert_eq!(of_type(&fetched, "attachment_downloaded").len(), 1, "{fetched:?}");
        let shown = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "show", &inbox_id]));
        let messages = shown[0]["thread"]["messages"].as_array().expect("thread").clone();
        assert_eq!(messages[1]["attachments"][0]["name"], "signed.txt", "{shown:?}");
        assert_eq!(messages[0]["attachments"].as_array().map(Vec::len), Some(2));
        let exp = s(root.join("exp"));
        let exported = json_lines(&ok(&["--home", &ngo, "--json", "inbox", "export", &inbox_id, "--out", &exp]));
        let written = exported[exported.len() - 1]["attachments"].as_array().expect("attachments").clone();
        let answer_file = written.iter().find(|w| w["name"] == "signed.txt").expect("the answer's file");
        assert_eq!(answer_file["verified"], true);
        assert_eq!(std::fs::read_to_string(answer_file["path"].as_str().expect("path")).expect("read"), signed2);

        // More than a thread message takes: one line, exit 1, nothing sent.
        let many = root.join("many");
        std::fs::create_dir(&many).expect("dir");
        for i in 0..17 {
            std::fs::write(many.join(format!("{i:02}.txt")), "x").expect("write");
        }
        let o = run(&["--home", &ngo, "inbox", "reply", &inbox_id, "--message", "m", "--attach", &s(many)]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("at most 16 attachments") && err.lines().count() == 1, "{err}");
    })
    .await;

    // The relay's disk and logs hold none of the files' contents.
    relay.shutdown().await.expect("shutdown");
    for f in common::all_files(&relay_dir) {
        let bytes = std::fs::read(&f).expect("read");
        assert!(
            !common::contains(&bytes, canary.as_bytes()),
            "{} holds an attachment's content",
            f.display()
        );
    }
    let logs = captured_logs().lock().expect("logs").clone();
    assert!(!common::contains(&logs, canary.as_bytes()));
}
