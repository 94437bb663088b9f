//! The `vigil` program as a person or a script runs it: a real relay on 127.0.0.1 (in this test
//! process), the real binary in child processes, checking exit codes, stderr and `--json` output.

mod common;

use serde_json::Value;
use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(common::bins::vigil());
    c.args(args).env_remove("VIGIL_HOME");
    common::bins::as_script(&mut c);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run vigil")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args, &[]);
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
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// A failed command ends with exactly one `error:` line on stderr (progress lines may precede it).
fn assert_one_error_line(o: &Output) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let errors = lines.iter().filter(|l| l.starts_with("error")).count();
    assert_eq!(errors, 1, "expected one error line, got: {stderr}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with("error: ")),
        "{stderr}"
    );
}

/// Start `vigil ARGS...` without waiting, stdout and stderr captured.
fn start(args: &[&str]) -> std::process::Child {
    common::bins::as_script(&mut Command::new(common::bins::vigil()))
        .args(args)
        .env_remove("VIGIL_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start vigil")
}

/// The one `--json` error shape (docs/cli.md).
fn assert_error_object(v: &Value, kind: &str, exit_code: i64) {
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["type", "error", "kind", "advice", "exit_code"],
        "{v}"
    );
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["kind"], kind, "{v}");
    assert_eq!(v["exit_code"], exit_code, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty() && !e.contains('\n')),
        "{v}"
    );
    assert!(v["advice"].is_null() || v["advice"].is_string(), "{v}");
}

fn fixture() -> Option<std::path::PathBuf> {
    common::fixtures_dir().map(|d| d.join("04-torture-confession-ru.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_named_in_the_issue_work_as_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = vigil_relay::start(vigil_relay::RelayConfig::new(
        root.join("relay"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    let ngo = root.join("ngo");
    let ngo = ngo.to_str().expect("utf8").to_string();
    let rep = root.join("rep");
    let rep = rep.to_str().expect("utf8").to_string();
    let card = root.join("ngo.card");
    let card = card.to_str().expect("utf8").to_string();

    let root2 = root.to_path_buf();
    let (addr2, fp2, ngo2, rep2, card2) = (
        addr.clone(),
        fp.clone(),
        ngo.clone(),
        rep.clone(),
        card.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let (addr, fp, ngo, rep, card) = (addr2, fp2, ngo2, rep2, card2);
        ok(&["--home", &ngo, "ngo", "init", "--name", "Memorial Caucasus desk", "--relay", &addr, "--relay-fingerprint", &fp, "--card-out", &card]);
        ok(&["--home", &ngo, "ngo", "add-staff", "--name", "night desk", "--card-out", &card]);
        let shown = json_lines(&ok(&["--home", &ngo, "card", "show", "--json"]));
        let qr = ok(&["--home", &ngo, "card", "show", "--qr"]);
        assert!(String::from_utf8_lossy(&qr.stdout).contains('█'), "QR code drawn");

        // The reporter's home comes from VIGIL_HOME here.
        let added = run(&["contact", "add", &card, "--json"], &[("VIGIL_HOME", &rep)]);
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        let added = json_lines(&added);
        assert_eq!(added[0]["safety_number"], shown[0]["safety_number"], "both sides see the same safety number");
        let listed = json_lines(&ok(&["--home", &rep, "contact", "list", "--json"]));
        assert_eq!(listed[0]["relay_fingerprint"], fp.as_str(), "{listed:?}");
        assert!(listed[0]["relay_fingerprint_next"].is_null(), "{listed:?}");

        let report_path = match fixture() {
            Some(p) => p,
            None => {
                let p = root2.join("r.json");
                std::fs::write(&p, r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");
                p
            }
        };
        let report_path = report_path.to_str().expect("utf8").to_string();
        ok(&["--home", &rep, "report", "send", "--to", "Memorial Caucasus desk", "--file", &report_path]);

        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        assert!(fetched.iter().any(|v| v["type"] == "fetched"), "{fetched:?}");
        let listed = json_lines(&ok(&["--home", &ngo, "inbox", "list", "--json"]));
        assert_eq!(listed.len(), 1, "{listed:?}");
        let id = listed[0]["id"].as_str().expect("id").to_string();
        let shown = json_lines(&ok(&["--home", &ngo, "inbox", "show", &id, "--json"]));
        let expected: Value = serde_json::from_slice(&std::fs::read(&report_path).expect("read")).expect("json");
        assert_eq!(shown[0]["report"], expected, "report survives the trip field for field");
        let human = ok(&["--home", &ngo, "inbox", "show", &id[..6]]);
        assert!(!human.stdout.is_empty());

        // Errors: one line on stderr, non-zero exit, and a JSON error object under --json.
        let o = run(&["--home", &rep, "report", "send", "--to", "Nobody", "--file", &report_path], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        assert!(String::from_utf8_lossy(&o.stderr).contains("vigil contact add"), "says what to do");
        let o = run(&["--home", &root2.join("x").to_string_lossy(), "ngo", "init", "--name", "X", "--relay", &addr, "--relay-fingerprint", "zz"], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        let o = run(&["--home", &ngo, "inbox", "show", "ffffffff", "--json"], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_error_object(&json_lines(&o)[0], "not_found", 1);
    })
    .await
    .expect("blocking part");

    relay.shutdown().await.expect("shutdown");

    // With the relay gone, sending queues the report and exits with the "unreachable" code, and
    // the NGO's fetch fails with the same code but its own advice. Both wait for the connect
    // timeout, so they run side by side.
    let rep2 = rep.clone();
    let root3 = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let p = root3.join("r2.json");
        std::fs::write(&p, r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");
        let fetch = start(&["--home", &ngo, "inbox", "fetch", "--json"]);
        let o = run(&["--home", &rep2, "report", "send", "--to", "Memorial Caucasus desk", "--file", p.to_str().expect("utf8"), "--json"], &[]);
        assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
        assert_one_error_line(&o);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("stays in the outbox"), "reporter advice: {stderr}");
        let error = json_lines(&o).pop().expect("an error object");
        assert_error_object(&error, "relay_unreachable", 3);
        assert!(error["advice"].as_str().is_some_and(|a| a.contains("outbox")), "{error}");
        let listed = json_lines(&ok(&["--home", &rep2, "outbox", "list", "--json"]));
        assert_eq!(listed.len(), 1, "the report waits in the outbox");

        let o = fetch.wait_with_output().expect("inbox fetch");
        assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
        assert_one_error_line(&o);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("outbox"), "no reporter advice for an NGO: {stderr}");
        assert!(stderr.contains("stay at the relay until fetched"), "NGO advice: {stderr}");
        let lines = json_lines(&o);
        assert_eq!(lines.len(), 1, "one object: {lines:?}");
        assert_error_object(&lines[0], "relay_unreachable", 3);
        let advice = lines[0]["advice"].as_str().expect("advice");
        assert!(advice.contains("nothing was lost") && !advice.contains("outbox"), "{advice}");
    })
    .await
    .expect("blocking part");
}

#[test]
fn demo_runs_end_to_end() {
    // The relay program this test run built (the demo would also find it beside vigil).
    let relay = common::bins::vigil_relay().to_str().expect("utf8");
    let o = run(&["demo"], &[("VIGIL_RELAY_BIN", relay)]);
    assert!(
        o.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Demo finished"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.matches("Report ").count() >= 2,
        "both NGOs print the decrypted report: {out}"
    );
}

/// A flood that fills a mailbox refuses honest reports at the relay, where the NGO cannot see
/// them: `inbox status` and every `inbox fetch` must say so, with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_is_visible_to_the_ngo() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let mut config =
        vigil_relay::RelayConfig::new(root.join("relay"), "127.0.0.1:0".parse().expect("addr"));
    config.limits.mailbox_max_items = 1;
    let relay = vigil_relay::start(config).await.expect("relay");
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    tokio::task::spawn_blocking(move || {
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (p("ngo"), p("rep"), p("ngo.card"), p("r.json"));
        ok(&["--home", &ngo, "ngo", "init", "--name", "Desk", "--relay", &addr, "--relay-fingerprint", &fp, "--card-out", &card]);
        ok(&["--home", &rep, "contact", "add", &card]);
        std::fs::write(&report, r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");

        let st = json_lines(&ok(&["--home", &ngo, "inbox", "status", "--json"]));
        assert_eq!(st.len(), 1, "an empty mailbox gives no warning: {st:?}");
        assert_eq!(st[0]["type"], "mailbox_status");
        assert_eq!((st[0]["items"].as_u64(), st[0]["max_items"].as_u64()), (Some(0), Some(1)), "{st:?}");
        assert_eq!(st[0]["refused_full"], 0);
        assert_eq!(st[0]["expiry_secs"], 30 * 86_400);

        ok(&["--home", &rep, "report", "send", "--to", "Desk", "--file", &report]);
        let o = run(&["--home", &rep, "report", "send", "--to", "Desk", "--file", &report], &[]);
        assert!(!o.status.success(), "the full mailbox refuses the second report");
        // Refused for now, not for good: the honest report waits in the outbox for the NGO to
        // make room, and the reporter is told so.
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("mailbox is full") && err.contains("stays in the outbox") && err.contains("vigil outbox flush"), "{err}");
        let queued = json_lines(&ok(&["--home", &rep, "--json", "outbox", "list"]));
        assert_eq!(queued.iter().filter(|v| v["type"] == "outbox_item").count(), 1, "{queued:?}");

        let human = ok(&["--home", &ngo, "inbox", "status"]);
        let stderr = String::from_utf8_lossy(&human.stderr);
        assert!(stderr.contains("1 of 1 reports") && stderr.contains("100% full"), "{stderr}");
        assert!(stderr.contains("refused 1 report because this mailbox was full") && stderr.contains("vigil inbox fetch"), "{stderr}");
        let st = json_lines(&ok(&["--home", &ngo, "inbox", "status", "--json"]));
        assert_eq!(st[0]["items"], 1, "{st:?}");
        assert_eq!(st[0]["fill"], 1.0, "{st:?}");
        assert_eq!(st[0]["refused_full"], 0, "each flood is reported once: {st:?}");
        assert_eq!(st[1]["type"], "mailbox_warning", "still full: {st:?}");

        // A fetch says so too, after the reports it fetched are safe.
        let o = run(&["--home", &rep, "report", "send", "--to", "Desk", "--file", &report], &[]);
        assert!(!o.status.success(), "still full");
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        assert!(fetched.iter().any(|v| v["type"] == "fetched"), "{fetched:?}");
        let warning = fetched.iter().find(|v| v["type"] == "mailbox_warning").expect("a warning");
        assert!(warning["refused_full"].as_u64().is_some_and(|n| n >= 1), "{fetched:?}");
        let st = json_lines(&ok(&["--home", &ngo, "inbox", "status", "--json"]));
        assert_eq!(st.len(), 1, "emptied, nothing refused since: {st:?}");
        assert_eq!(st[0]["items"], 0, "fetched and acknowledged: {st:?}");

        // Room again: a flush delivers one of the two waiting copies (the quota is one report)
        // and keeps the other, without giving it up.
        let flushed = run(&["--home", &rep, "--json", "outbox", "flush"], &[]);
        let events = json_lines(&flushed);
        assert_eq!(events.iter().filter(|v| v["type"] == "stored").count(), 1, "{events:?}");
        let queued = json_lines(&ok(&["--home", &rep, "--json", "outbox", "list"]));
        assert_eq!(queued.iter().filter(|v| v["type"] == "outbox_item").count(), 1, "the other copy waits: {queued:?}");
    })
    .await
    .expect("blocking part");
    relay.shutdown().await.expect("shutdown");
}

/// One NGO inbox at a fresh relay, a reporter that imported its card, and a way to deposit
/// envelopes made with the core library (as a hostile or replaying sender would).
struct Desk {
    relay: vigil_relay::RelayHandle,
    ngo: String,
    rep: String,
    card: vigil_core::card::RecipientCard,
    _tmp: tempfile::TempDir,
}

impl Desk {
    async fn new() -> Desk {
        Desk::with_relay(|_| {}).await
    }

    /// A desk whose relay's configuration `adjust` changes first.
    async fn with_relay(adjust: impl FnOnce(&mut vigil_relay::RelayConfig)) -> Desk {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let mut config =
            vigil_relay::RelayConfig::new(root.join("relay"), "127.0.0.1:0".parse().expect("addr"));
        adjust(&mut config);
        let relay = vigil_relay::start(config).await.expect("relay");
        let (addr, fp) = (
            relay.local_addr().to_string(),
            relay.fingerprint().to_string(),
        );
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card) = (p("ngo"), p("rep"), p("ngo.card"));
        let (ngo2, rep2, card2) = (ngo.clone(), rep.clone(), card.clone());
        tokio::task::spawn_blocking(move || {
            ok(&[
                "--home",
                &ngo2,
                "ngo",
                "init",
                "--name",
                "Desk",
                "--relay",
                &addr,
                "--relay-fingerprint",
                &fp,
                "--card-out",
                &card2,
            ]);
            ok(&["--home", &rep2, "contact", "add", &card2]);
        })
        .await
        .expect("setup");
        let text = std::fs::read_to_string(&card).expect("card");
        let card = vigil_core::card::RecipientCard::parse(&text).expect("card parses");
        Desk {
            relay,
            ngo,
            rep,
            card,
            _tmp: tmp,
        }
    }

    /// Deposit each envelope under a fresh deposit id.
    async fn deposit(&self, envelopes: &[&[u8]]) {
        let client = vigil_client::relay::RelayClient::connect(
            &self.card.relay,
            &self.card.relay_fingerprint,
        )
        .await
        .expect("connect");
        for e in envelopes {
            client
                .deposit(
                    &self.card.mailbox,
                    &vigil_core::ids::DepositId(rand::random()),
                    e,
                )
                .await
                .expect("deposit");
        }
        client.close().await;
    }

    /// Seal `report` as a reporter with key `sender` would, signed at `created`.
    fn seal(
        &self,
        report: &str,
        sender: &vigil_core::keys::SigningSecret,
        created: u64,
    ) -> Vec<u8> {
        vigil_core::envelope::seal(
            report.as_bytes(),
            sender,
            &[self.card.identity_key],
            &self.card.recipients,
            created,
            &mut rand::rngs::OsRng,
        )
        .expect("seal")
    }
}

/// The reasons of the envelopes an NGO home keeps as rejected (read through its vault).
fn rejected_reasons(ngo: &str) -> Vec<String> {
    let home = common::bins::home(ngo).expect("home");
    vigil_client::state::rejected_entries(&home)
        .expect("rejected")
        .into_iter()
        .map(|e| e.reason)
        .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking part")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Nothing a report says reaches the terminal raw (issue 11, finding 1): a narrative that tries
/// to forge the "Signed by" trailer with newlines, a carriage return or an ESC sequence, and
/// bidi overrides, are shown as visible escapes behind an indent; a report with such characters
/// in a one-line field is refused when sent, and when it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_text_cannot_forge_the_signature_or_reach_the_terminal_raw() {
    let desk = Desk::new().await;
    let forged = "Real text.\n\nSigned by reporter key FORGED (sent to 1 NGO(s))\rSigned by x\u{1b}[2K\u{1b}[1A\u{202e}evil\u{2066}\u{9b}";
    let report = serde_json::json!({
        "kind": "threat", "urgency": "urgent", "title": "Threats", "occurred_at": "2024-01-01",
        "narrative": forged,
        "requested_action": "help\nSigned by reporter key FORGED2\u{1b}]0;title\u{7}",
        "location": {"text": "Grozny\u{1b}[2K\nSigned by y"},
        "witnesses": [{"name": "W", "contact": "\u{200f}+7\r\nSigned by z"}],
        "subjects": [{"name": "A", "role": "victim", "notes": "n\u{1b}c\nSigned by n"}],
    })
    .to_string();
    let bad_title = serde_json::json!({
        "kind": "threat", "urgency": "urgent", "title": "T\u{1b}[2K", "occurred_at": "2024-01-01",
        "narrative": "n",
    })
    .to_string();
    // The sending side refuses the one-line field; a hostile sender bypasses the client, so the
    // same report also arrives as an envelope signed by hand.
    let sender = vigil_core::keys::SigningSecret::generate(&mut rand::rngs::OsRng);
    let hostile = {
        use vigil_core::keys::SignatureDomain;
        let mut inner = b"vigil-envelope\x01".to_vec();
        inner.extend_from_slice(&sender.public().to_bytes());
        inner.extend_from_slice(&now().to_be_bytes());
        inner.push(1);
        inner.extend_from_slice(&desk.card.identity_key.to_bytes());
        inner.extend_from_slice(&(bad_title.len() as u32).to_be_bytes());
        inner.extend_from_slice(bad_title.as_bytes());
        let sig = sender.sign(SignatureDomain::Envelope, &inner);
        inner.extend_from_slice(&sig);
        vigil_core::age::encrypt_to_vec(&desk.card.recipients, &inner, &mut rand::rngs::OsRng)
            .expect("encrypt")
    };
    // An unknown kind is quoted by the JSON parser's error message: that line is escaped too.
    let bad_kind = serde_json::json!({
        "kind": "picnic\u{1b}[2K\rSigned by", "urgency": "urgent", "title": "T", "occurred_at": "2024-01-01",
        "narrative": "n",
    })
    .to_string();
    let hostile_kind = {
        use vigil_core::keys::SignatureDomain;
        let mut inner = b"vigil-envelope\x01".to_vec();
        inner.extend_from_slice(&sender.public().to_bytes());
        inner.extend_from_slice(&now().to_be_bytes());
        inner.push(1);
        inner.extend_from_slice(&desk.card.identity_key.to_bytes());
        inner.extend_from_slice(&(bad_kind.len() as u32).to_be_bytes());
        inner.extend_from_slice(bad_kind.as_bytes());
        let sig = sender.sign(SignatureDomain::Envelope, &inner);
        inner.extend_from_slice(&sig);
        vigil_core::age::encrypt_to_vec(&desk.card.recipients, &inner, &mut rand::rngs::OsRng)
            .expect("encrypt")
    };
    desk.deposit(&[&hostile, &hostile_kind]).await;

    let (ngo, rep) = (desk.ngo.clone(), desk.rep.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let (good_path, bad_path) = (tmp.path().join("good.json"), tmp.path().join("bad.json"));
    std::fs::write(&good_path, &report).expect("write");
    std::fs::write(&bad_path, &bad_title).expect("write");
    blocking(move || {
        let (good_path, bad_path) = (
            good_path.to_str().expect("utf8"),
            bad_path.to_str().expect("utf8"),
        );
        let o = run(
            &[
                "--home", &rep, "report", "send", "--to", "Desk", "--file", bad_path, "--json",
            ],
            &[],
        );
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_error_object(&json_lines(&o).pop().expect("error"), "invalid_report", 1);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("title"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        ok(&[
            "--home", &rep, "report", "send", "--to", "Desk", "--file", good_path,
        ]);

        let fetched = ok(&["--home", &ngo, "inbox", "fetch"]);
        let list = ok(&["--home", &ngo, "inbox", "list"]);
        let listed = json_lines(&ok(&["--home", &ngo, "inbox", "list", "--json"]));
        assert_eq!(
            listed.len(),
            1,
            "the hostile report is rejected, the other kept: {listed:?}"
        );
        let id = listed[0]["id"].as_str().expect("id").to_string();
        let rejected: Vec<String> = rejected_reasons(&ngo);
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert!(
            rejected
                .iter()
                .any(|r| r.contains("title") && r.contains("U+001B")),
            "{rejected:?}"
        );

        let shown = ok(&["--home", &ngo, "inbox", "show", &id]);
        let text = String::from_utf8(shown.stdout.clone()).expect("utf8");
        let signed: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("Signed by"))
            .collect();
        assert_eq!(signed.len(), 1, "one signature line, Vigil's own:\n{text}");
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l.starts_with("Signed by") && !l.contains("FORGED")),
            "{text}"
        );
        for out in [&shown, &fetched, &list] {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            for c in [
                '\u{1b}', '\r', '\u{202e}', '\u{2066}', '\u{200f}', '\u{9b}', '\u{7}',
            ] {
                assert!(!all.contains(c), "raw {c:?} printed:\n{all}");
            }
        }
        assert!(
            text.contains("\\u{1b}[2K") && text.contains("\\u{202e}evil"),
            "visible escapes:\n{text}"
        );
        // --json keeps the exact text.
        let shown = json_lines(&ok(&["--home", &ngo, "inbox", "show", &id, "--json"]));
        assert_eq!(shown[0]["report"]["narrative"], forged);
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// A captured envelope deposited again (issue 11, finding 2) is recognised as a replay of the
/// report already in the inbox, not listed as a new one; so is the same signed report
/// re-encrypted. Every view shows the signing time, and one signed long before it arrived
/// carries a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_recognised_and_old_reports_flagged() {
    let desk = Desk::new().await;
    let sender = vigil_core::keys::SigningSecret::generate(&mut rand::rngs::OsRng);
    let report = r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#;
    let created = now() - 30 * 86_400;
    let env = desk.seal(report, &sender, created);
    desk.deposit(&[&env]).await;
    let ngo = desk.ngo.clone();
    let first =
        blocking(move || json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]))).await;
    let fetched: Vec<&Value> = first.iter().filter(|v| v["type"] == "fetched").collect();
    assert_eq!(fetched.len(), 1, "{first:?}");
    assert_eq!(fetched[0]["created"], created, "{first:?}");
    assert!(
        fetched[0]["time_warning"]
            .as_str()
            .is_some_and(|w| w.contains("30 days before")),
        "{first:?}"
    );

    // The same bytes under a new deposit id, and the same signed report encrypted anew.
    let again = desk.seal(report, &sender, created);
    assert_ne!(again, env);
    let inner_same = {
        let home = common::bins::home(&desk.ngo).expect("home");
        let ngo = vigil_client::state::Ngo::load(&home).expect("ngo");
        let ids = ngo.local_identities(&home).expect("ids");
        let a = vigil_core::age::decrypt_from_slice(&env, &ids, 1 << 21).expect("decrypt");
        let b = vigil_core::age::decrypt_from_slice(&again, &ids, 1 << 21).expect("decrypt");
        *a == *b
    };
    assert!(
        inner_same,
        "Ed25519 signatures are deterministic: the same signed report"
    );
    desk.deposit(&[&env, &again]).await;
    let ngo = desk.ngo.clone();
    blocking(move || {
        let o = ok(&["--home", &ngo, "inbox", "fetch"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("Fetched 0 new reports") && stderr.contains("2 replays"),
            "{stderr}"
        );
        assert_eq!(stderr.matches("Replay: ").count(), 2, "{stderr}");
        let listed = json_lines(&ok(&["--home", &ngo, "inbox", "list", "--json"]));
        assert_eq!(listed.len(), 1, "one report, not three: {listed:?}");
        assert_eq!(listed[0]["created"], created, "{listed:?}");
        assert!(listed[0]["time_warning"].is_string(), "{listed:?}");
        let id = listed[0]["id"].as_str().expect("id").to_string();
        let rejected = rejected_reasons(&ngo)
            .into_iter()
            .filter(|t| t.contains(&format!("replay of report {id}")))
            .count();
        // The identical bytes share one file name (the hash of the envelope): one or two files.
        assert!(rejected >= 1, "replays kept as evidence");
        let human = ok(&["--home", &ngo, "inbox", "show", &id]);
        let text = String::from_utf8_lossy(&human.stdout);
        assert!(
            text.contains("Signed: ") && text.contains("30 days before it was received"),
            "{text}"
        );
        let list = ok(&["--home", &ngo, "inbox", "list"]);
        assert!(
            String::from_utf8_lossy(&list.stderr).contains("Warning: report"),
            "{}",
            String::from_utf8_lossy(&list.stderr)
        );
        let shown = json_lines(&ok(&["--home", &ngo, "inbox", "show", &id, "--json"]));
        assert!(shown[0]["time_warning"].is_string(), "{shown:?}");

        // A second fetch with nothing new says nothing about replays.
        let again = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        assert_eq!(
            again.iter().filter(|v| v["type"] == "replay").count(),
            0,
            "{again:?}"
        );
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// An envelope sealed for no staff key this inbox holds (issue 11, finding 3) is kept under
/// inbox/rejected with a reason that says so, the fetch warns about it, and newer reports behind
/// it still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_for_a_missing_staff_key_is_kept_and_named() {
    let desk = Desk::new().await;
    let sender = vigil_core::keys::SigningSecret::generate(&mut rand::rngs::OsRng);
    let report = r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#;
    // Sealed with a card whose staff key was since removed: another post-quantum key.
    let gone_key: vigil_core::age::AnyIdentity =
        vigil_core::age::hybrid::Identity::generate(&mut rand::rngs::OsRng).into();
    let gone = gone_key.to_public();
    let orphan = vigil_core::envelope::seal(
        report.as_bytes(),
        &sender,
        &[desk.card.identity_key],
        &[gone],
        now(),
        &mut rand::rngs::OsRng,
    )
    .expect("seal");
    let good = desk.seal(&report.replace("\"t\"", "\"u\""), &sender, now());
    desk.deposit(&[&orphan, &good]).await;
    let ngo = desk.ngo.clone();
    blocking(move || {
        let o = ok(&["--home", &ngo, "inbox", "fetch", "--json"]);
        let lines = json_lines(&o);
        let rejected: Vec<&Value> = lines.iter().filter(|v| v["type"] == "rejected").collect();
        assert_eq!(rejected.len(), 1, "{lines:?}");
        assert_eq!(rejected[0]["reason"], "no_matching_key", "{lines:?}");
        let error = rejected[0]["error"].as_str().expect("error");
        assert!(
            error.contains("sealed for no staff key this inbox holds")
                // Every envelope's header has the same number of stanzas, decoys included
                // (issue 14), so this count no longer tells how many staff keys there were.
                && error.contains(&format!(
                    "{} post-quantum recipients",
                    vigil_core::envelope::ENVELOPE_STANZAS
                )),
            "{error}"
        );
        assert_eq!(
            lines.iter().filter(|v| v["type"] == "fetched").count(),
            1,
            "the good report arrives: {lines:?}"
        );
        let done = lines
            .iter()
            .find(|v| v["type"] == "fetch_done")
            .expect("done");
        assert_eq!(done["no_key"], 1, "{done}");
        let id = rejected[0]["id"].as_str().expect("id");
        let kept = |ngo: &str| {
            let home = common::bins::home(ngo).expect("home");
            vigil_client::state::rejected_entries(&home)
                .expect("rejected")
                .into_iter()
                .find(|e| e.id == id)
                .map(|e| {
                    let bytes = vigil_client::state::rejected_read(&home, &e.id).expect("read");
                    (e.reason, bytes)
                })
        };
        let (meta, bytes) = kept(&ngo).expect("kept");
        assert_eq!(bytes, orphan, "the envelope is kept as it came");
        assert!(meta.contains("sealed for no staff key"), "{meta}");

        // Every fetch says so again, until the key is back.
        let o = ok(&["--home", &ngo, "inbox", "fetch"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr
                .contains("1 report (0 new in this fetch) cannot be read: sealed for no staff key"),
            "{stderr}"
        );

        // The staff key comes back (restored from a backup): the kept report opens at the next fetch.
        let home = common::bins::home(&ngo).expect("home");
        let mut state = vigil_client::state::Ngo::load(&home).expect("ngo");
        let file =
            vigil_client::state::Ngo::save_staff_key(&home, "former", &gone_key).expect("save key");
        state.config.staff.push(vigil_client::state::Staff {
            name: "former".into(),
            recipient: gone_key.to_public().to_string(),
            local_key: Some(file),
        });
        state.save_config(&home).expect("save");
        let lines = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        assert_eq!(
            lines.iter().filter(|v| v["type"] == "fetched").count(),
            1,
            "{lines:?}"
        );
        let done = lines
            .iter()
            .find(|v| v["type"] == "fetch_done")
            .expect("done");
        assert_eq!(done["no_key_kept"], 0, "{done}");
        assert!(kept(&ngo).is_none(), "moved out of inbox/rejected");
        let listed = json_lines(&ok(&["--home", &ngo, "inbox", "list", "--json"]));
        assert_eq!(listed.len(), 2, "{listed:?}");
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

const SMALL_REPORT: &str = r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#;

/// X25519 stanzas in an age file's header: one per key the file is encrypted to, plus the
/// decoys a Vigil envelope carries.
fn recipient_stanzas(age_file: &std::path::Path) -> usize {
    let bytes = std::fs::read(age_file).expect("read envelope");
    let header_end = common_find(&bytes, b"\n---").expect("an age header");
    String::from_utf8_lossy(&bytes[..header_end])
        .lines()
        // Classic or post-quantum (the default since issue 16) staff-key stanzas.
        .filter(|l| l.starts_with("-> X25519 ") || l.starts_with("-> mlkem768x25519 "))
        .count()
}

/// `vigil card show FILE --json`.
fn card_json(card: &str) -> Value {
    let home = format!("{card}.show-home");
    json_lines(&ok(&["--home", &home, "card", "show", card, "--json"])).remove(0)
}

fn common_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Issue 11: a removed staff member's key leaves the card, the re-issued card replaces the old
/// one at the reporter, and later reports are sealed only to the remaining key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_staff_key_no_longer_receives_reports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = common::start_relay(&root.join("relay")).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    tokio::task::spawn_blocking(move || {
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (p("ngo"), p("rep"), p("ngo.card"), p("r.json"));
        std::fs::write(&report, SMALL_REPORT).expect("write");
        ok(&[
            "--home",
            &ngo,
            "ngo",
            "init",
            "--name",
            "Desk",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
            "--card-out",
            &card,
        ]);
        let added = json_lines(&ok(&[
            "--home",
            &ngo,
            "ngo",
            "add-staff",
            "--name",
            "night desk",
            "--card-out",
            &card,
            "--json",
        ]));
        let night_key = added[0]["local_key"]
            .as_str()
            .expect("a local key")
            .to_string();
        assert!(
            added[0]["key_file"].is_null(),
            "no staff key in a plain file"
        );
        let night_copy = root.join("night.key");
        ok(&[
            "--home",
            &ngo,
            "ngo",
            "export-staff-key",
            "night desk",
            "--out",
            night_copy.to_str().expect("utf8"),
        ]);
        // A post-quantum staff key (the default since issue 16).
        assert!(std::fs::read_to_string(&night_copy)
            .expect("exported")
            .contains("AGE-SECRET-KEY-PQ-1"));
        ok(&["--home", &rep, "contact", "add", &card]);
        let old_created = card_json(&card)["created"].as_u64().expect("created");

        // Unknown names and the last key are refused, one line each.
        let o = run(
            &["--home", &ngo, "ngo", "remove-staff", "nobody", "--json"],
            &[],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        assert_error_object(&json_lines(&o)[0], "not_found", 1);

        let removed = json_lines(&ok(&[
            "--home",
            &ngo,
            "ngo",
            "remove-staff",
            "NIGHT DESK",
            "--card-out",
            &card,
            "--json",
        ]));
        assert_eq!(removed[0]["type"], "staff_removed", "{removed:?}");
        assert_eq!(removed[0]["name"], "night desk", "{removed:?}");
        assert!(
            !common::bins::home(&ngo)
                .expect("home")
                .vault()
                .expect("vault")
                .contains(&format!("ngo/staff/{}", night_key)),
            "the removed key is deleted from this home"
        );
        assert_eq!(removed[0]["key_deleted"], night_key, "{removed:?}");
        let new_card = card_json(&card);
        assert_eq!(
            new_card["recipients"].as_array().map(Vec::len),
            Some(1),
            "{new_card}"
        );
        assert!(
            new_card["created"].as_u64() > Some(old_created),
            "the re-issued card is newer"
        );
        assert!(
            new_card["expires"].is_u64(),
            "a re-issued card carries an expiry: {new_card}"
        );

        let o = run(
            &["--home", &ngo, "ngo", "remove-staff", "--name", "desk"],
            &[],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("add-staff"),
            "says what to do"
        );

        let updated = json_lines(&ok(&["--home", &rep, "contact", "add", &card, "--json"]));
        assert_eq!(updated[0]["action"], "updated", "{updated:?}");
        ok(&[
            "--home", &rep, "report", "send", "--to", "desk", "--file", &report,
        ]);
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        let id = fetched
            .iter()
            .find(|v| v["type"] == "fetched")
            .expect("fetched")["id"]
            .as_str()
            .expect("id")
            .to_string();
        let envelope = root.join("fetched.age");
        let (_, bytes) =
            vigil_client::state::inbox_read(&common::bins::home(&ngo).expect("home"), &id)
                .expect("stored envelope");
        std::fs::write(&envelope, bytes).expect("write envelope");
        // The header always has the same stanza count (the staff's and decoys, issue 14), so
        // it does not show that one key is left; that the removed key cannot open the report
        // (below) does.
        assert_eq!(
            recipient_stanzas(&envelope),
            vigil_core::envelope::ENVELOPE_STANZAS,
            "a fixed stanza count"
        );
        let env = envelope.to_str().expect("utf8");
        let night = night_copy.to_str().expect("utf8");
        let o = run(&["age", "-d", "-i", night, "-o", &p("out.bin"), env], &[]);
        assert!(
            !o.status.success(),
            "the removed key cannot open the new report"
        );

        // A report fetched here before the other key existed opens only with the first key:
        // deleting that key needs --force.
        let (ngo2, card2) = (p("ngo2"), p("ngo2.card"));
        ok(&[
            "--home",
            &ngo2,
            "ngo",
            "init",
            "--name",
            "Second",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
            "--card-out",
            &card2,
        ]);
        ok(&["--home", &rep, "contact", "add", &card2]);
        ok(&[
            "--home", &rep, "report", "send", "--to", "Second", "--file", &report,
        ]);
        ok(&["--home", &ngo2, "inbox", "fetch"]);
        ok(&[
            "--home",
            &ngo2,
            "ngo",
            "add-staff",
            "--name",
            "later",
            "--card-out",
            &card2,
        ]);
        let first_key = || {
            common::bins::home(&ngo2)
                .expect("home")
                .vault()
                .expect("vault")
                .contains("ngo/staff/desk.key")
        };
        assert!(first_key());
        let o = run(&["--home", &ngo2, "ngo", "remove-staff", "desk"], &[]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_one_error_line(&o);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--force"),
            "says what to do"
        );
        assert!(first_key(), "nothing deleted");
        assert_eq!(
            card_json(&card2)["recipients"].as_array().map(Vec::len),
            Some(2),
            "card unchanged"
        );
        ok(&[
            "--home",
            &ngo2,
            "ngo",
            "remove-staff",
            "desk",
            "--force",
            "--card-out",
            &card2,
        ]);
        assert!(!first_key());
        assert_eq!(
            card_json(&card2)["recipients"].as_array().map(Vec::len),
            Some(1)
        );
    })
    .await
    .expect("blocking part");
    relay.shutdown().await.expect("shutdown");
}

/// Issue 11: a card carries a signed expiry; reporters are warned a month ahead and refused
/// afterwards (nothing is queued), and a renewed card works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cards_are_refused_and_renewed_cards_work() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = common::start_relay(&root.join("relay")).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    tokio::task::spawn_blocking(move || {
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (p("ngo"), p("rep"), p("ngo.card"), p("r.json"));
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let made = json_lines(&ok(&[
            "--home",
            &ngo,
            "ngo",
            "init",
            "--name",
            "Desk",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
            "--card-out",
            &card,
            "--valid-for",
            "52w",
            "--json",
        ]));
        let shown = card_json(&card);
        let created = shown["created"].as_u64().expect("created");
        assert_eq!(
            shown["expires"].as_u64(),
            Some(created + 52 * 7 * 86_400),
            "{shown}"
        );
        assert_eq!(made[0]["expires"], shown["expires"]);
        // A card valid for the default year gives no warning.
        ok(&["--home", &rep, "contact", "add", &card]);
        let o = ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            &report,
            "--queue-only",
        ]);
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains("renewed card"),
            "no warning yet"
        );

        // Renewed for a few seconds only: expiring soon, so every use warns.
        let renewed = json_lines(&ok(&[
            "--home",
            &ngo,
            "ngo",
            "renew-card",
            "--valid-for",
            "8s",
            "--card-out",
            &card,
            "--json",
        ]));
        assert_eq!(renewed[0]["type"], "card_renewed", "{renewed:?}");
        let expires = renewed[0]["expires"].as_u64().expect("expires");
        ok(&["--home", &rep, "contact", "add", &card]);
        let listed = json_lines(&ok(&["--home", &rep, "contact", "list", "--json"]));
        assert_eq!(listed[0]["expires"], expires, "{listed:?}");
        let o = ok(&["--home", &rep, "contact", "list"]);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("ask Desk for a renewed card"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            &report,
            "--queue-only",
            "--json",
        ]);
        assert!(
            json_lines(&o)
                .iter()
                .any(|v| v["type"] == "card_expiring" && v["expires"] == expires),
            "{:?}",
            json_lines(&o)
        );
        let o = ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            &report,
            "--queue-only",
        ]);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("ask Desk for a renewed card"),
            "warned"
        );

        // Expired: refused, nothing queued, one line saying what to do.
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs()
        };
        while now() < expires {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let queued = json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"])).len();
        let o = run(
            &[
                "--home", &rep, "report", "send", "--to", "Desk", "--file", &report, "--json",
            ],
            &[],
        );
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_one_error_line(&o);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("expired") && stderr.contains("ask Desk for a renewed card"),
            "{stderr}"
        );
        assert_error_object(json_lines(&o).last().expect("error"), "card_expired", 1);
        assert_eq!(
            json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"])).len(),
            queued,
            "not queued"
        );
        let o = run(&["--home", &p("rep2"), "contact", "add", &card], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);

        // The NGO hears it at its next fetch.
        let o = ok(&["--home", &ngo, "inbox", "fetch"]);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("vigil ngo renew-card"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );

        // Renewed again: sending works.
        ok(&[
            "--home",
            &ngo,
            "ngo",
            "renew-card",
            "--valid-for",
            "365d",
            "--card-out",
            &card,
        ]);
        ok(&["--home", &rep, "contact", "add", &card]);
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            &report,
            "--queue-only",
        ]);
    })
    .await
    .expect("blocking part");
    relay.shutdown().await.expect("shutdown");
}

/// Issue 11: `contact remove` and `contact verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_can_be_verified_and_removed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = common::start_relay(&root.join("relay")).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    tokio::task::spawn_blocking(move || {
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (p("ngo"), p("rep"), p("ngo.card"), p("r.json"));
        std::fs::write(&report, SMALL_REPORT).expect("write");
        ok(&[
            "--home",
            &ngo,
            "ngo",
            "init",
            "--name",
            "Desk",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
            "--card-out",
            &card,
        ]);
        let added = json_lines(&ok(&["--home", &rep, "contact", "add", &card, "--json"]));

        let v = json_lines(&ok(&[
            "--home", &rep, "contact", "verify", "DESK", "--json",
        ]));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0]["type"], "contact_verify", "{v:?}");
        assert_eq!(v[0]["name"], "Desk");
        assert_eq!(v[0]["safety_number"], added[0]["safety_number"]);
        let o = ok(&["--home", &rep, "contact", "verify", "desk"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let sn = added[0]["safety_number"].as_str().expect("sn");
        let digits: String = stderr.chars().filter(char::is_ascii_digit).collect();
        assert!(digits.contains(&sn.replace(' ', "")), "{stderr}");
        assert!(stderr.contains("compare"), "{stderr}");
        let o = run(
            &["--home", &rep, "contact", "verify", "Nobody", "--json"],
            &[],
        );
        assert_one_error_line(&o);
        assert_error_object(&json_lines(&o)[0], "not_found", 1);

        // A queued report for the contact stops a plain remove.
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            &report,
            "--queue-only",
        ]);
        let o = run(&["--home", &rep, "contact", "remove", "desk"], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--force"),
            "says what to do"
        );
        assert_eq!(
            json_lines(&ok(&["--home", &rep, "contact", "list", "--json"])).len(),
            1
        );
        let removed = json_lines(&ok(&[
            "--home", &rep, "contact", "remove", "desk", "--force", "--json",
        ]));
        assert_eq!(removed[0]["type"], "contact_removed", "{removed:?}");
        assert_eq!(removed[0]["name"], "Desk");
        assert_eq!(removed[0]["outbox_removed"], 1);
        assert!(json_lines(&ok(&["--home", &rep, "contact", "list", "--json"])).is_empty());
        assert!(json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"])).is_empty());
        let o = run(
            &["--home", &rep, "contact", "remove", "Desk", "--json"],
            &[],
        );
        assert_one_error_line(&o);
        assert_error_object(&json_lines(&o)[0], "not_found", 1);

        // Without queued reports, a plain remove works.
        ok(&["--home", &rep, "contact", "add", &card]);
        let removed = json_lines(&ok(&[
            "--home", &rep, "contact", "remove", "Desk", "--json",
        ]));
        assert_eq!(removed[0]["outbox_removed"], 0);
        assert!(json_lines(&ok(&["--home", &rep, "contact", "list", "--json"])).is_empty());
    })
    .await
    .expect("blocking part");
    relay.shutdown().await.expect("shutdown");
}

/// `outbox cancel ID` takes the id `outbox list --json` prints (or a prefix of it) and removes
/// only that copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_report_can_be_cancelled_by_its_listed_id() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = vigil_relay::start(vigil_relay::RelayConfig::new(
        root.join("relay"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    tokio::task::spawn_blocking(move || {
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (p("ngo"), p("rep"), p("ngo.card"), p("r.json"));
        ok(&["--home", &ngo, "ngo", "init", "--name", "Desk", "--relay", &addr, "--relay-fingerprint", &fp, "--card-out", &card]);
        ok(&["--home", &rep, "contact", "add", &card]);
        std::fs::write(&report, r#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#).expect("write");
        for _ in 0..2 {
            ok(&["--home", &rep, "report", "send", "--to", "Desk", "--file", &report, "--queue-only"]);
        }
        let listed = json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"]));
        assert_eq!(listed.len(), 2, "{listed:?}");
        let id = listed[0]["id"].as_str().expect("id").to_string();
        assert_eq!(listed[0]["deposit_id"], id.as_str());
        let cancelled = json_lines(&ok(&["--home", &rep, "outbox", "cancel", &id[..6], "--json"]));
        assert_eq!(cancelled[0]["type"], "outbox_cancelled", "{cancelled:?}");
        assert_eq!(cancelled[0]["id"], id.as_str());
        let left = json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"]));
        assert_eq!(left.len(), 1, "only that copy is gone: {left:?}");
        assert_ne!(left[0]["id"], id.as_str());
        let o = run(&["--home", &rep, "outbox", "cancel", &id, "--json"], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_error_object(&json_lines(&o)[0], "not_found", 1);
    })
    .await
    .expect("blocking part");
    relay.shutdown().await.expect("shutdown");
}

/// `report send` delivers the new report first and its exit code is about that report: an older
/// copy stuck for another NGO only gets a warning. The same NGO named twice, in any case, gets
/// one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_report_goes_first_and_a_stale_copy_does_not_fail_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let live = common::start_relay(&root.join("relay1")).await;
    let gone = common::start_relay(&root.join("relay2")).await;
    let (live_addr, live_fp) = (
        live.local_addr().to_string(),
        live.fingerprint().to_string(),
    );
    let (gone_addr, gone_fp) = (
        gone.local_addr().to_string(),
        gone.fingerprint().to_string(),
    );
    let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
    let (a, b, rep, card_a, card_b, report) = (
        p("a"),
        p("b"),
        p("rep"),
        p("a.card"),
        p("b.card"),
        p("r.json"),
    );
    {
        let (a, b, rep, card_a, card_b, report) = (
            a.clone(),
            b.clone(),
            rep.clone(),
            card_a.clone(),
            card_b.clone(),
            report.clone(),
        );
        tokio::task::spawn_blocking(move || {
            ok(&[
                "--home",
                &a,
                "ngo",
                "init",
                "--name",
                "Desk A",
                "--relay",
                &live_addr,
                "--relay-fingerprint",
                &live_fp,
                "--card-out",
                &card_a,
            ]);
            ok(&[
                "--home",
                &b,
                "ngo",
                "init",
                "--name",
                "Desk B",
                "--relay",
                &gone_addr,
                "--relay-fingerprint",
                &gone_fp,
                "--card-out",
                &card_b,
            ]);
            ok(&["--home", &rep, "contact", "add", &card_a]);
            ok(&["--home", &rep, "contact", "add", &card_b]);
            std::fs::write(&report, SMALL_REPORT).expect("write");
            ok(&[
                "--home",
                &rep,
                "report",
                "send",
                "--to",
                "Desk B",
                "--file",
                &report,
                "--queue-only",
            ]);
        })
        .await
        .expect("setup");
    }
    gone.shutdown().await.expect("shutdown");
    tokio::task::spawn_blocking(move || {
        let o = run(
            &[
                "--home", &rep, "report", "send", "--to", "Desk A", "--to", "desk a", "--file",
                &report, "--json",
            ],
            &[],
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let lines = json_lines(&o);
        let queued = lines
            .iter()
            .find(|v| v["type"] == "queued")
            .expect("queued");
        assert_eq!(queued["copies"], 1, "one copy for one NGO: {lines:?}");
        let stored: Vec<_> = lines.iter().filter(|v| v["type"] == "stored").collect();
        assert_eq!(stored.len(), 1, "{lines:?}");
        assert_eq!(stored[0]["to"], "Desk A");
        assert!(
            lines.iter().any(|v| v["type"] == "earlier_pending"),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|v| v["type"] == "error"), "{lines:?}");
        let left = json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"]));
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0]["to"], "Desk B", "the stale copy waits: {left:?}");
        let fetched = json_lines(&ok(&["--home", &a, "inbox", "fetch", "--json"]));
        assert_eq!(
            fetched.iter().filter(|v| v["type"] == "fetched").count(),
            1,
            "{fetched:?}"
        );
        // The triage list says when it happened, when it was signed and received, and who
        // signed it.
        let listed = ok(&["--home", &a, "inbox", "list"]);
        let stderr = String::from_utf8_lossy(&listed.stderr);
        let sender = json_lines(&ok(&["--home", &a, "inbox", "list", "--json"]))[0]["sender"]
            .as_str()
            .expect("sender")
            .to_string();
        assert!(stderr.contains("happened 2024-01-01, signed "), "{stderr}");
        assert!(stderr.contains(", received "), "{stderr}");
        assert!(
            stderr.contains(&format!("from reporter {}", &sender[..16])),
            "{stderr}"
        );
    })
    .await
    .expect("blocking part");
    live.shutdown().await.expect("shutdown");
}

/// Issue 11, "Verified contacts": `contact verify` records the comparison, `contact list` and
/// `report send` name unverified contacts, a renewed card from the same NGO key stays verified,
/// and a card whose name reads like a contact's (case, spacing, look-alike letters) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_marked_verified_and_look_alike_names_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = common::start_relay(&root.join("relay")).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint().to_string();
    tokio::task::spawn_blocking(move || {
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (rep, report) = (p("rep"), p("r.json"));
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let ngo = |home: &str, name: &str| {
            let card = p(&format!("{home}.card"));
            ok(&[
                "--home",
                &p(home),
                "ngo",
                "init",
                "--name",
                name,
                "--relay",
                &addr,
                "--relay-fingerprint",
                &fp,
                "--card-out",
                &card,
            ]);
            card
        };
        let desk = ngo("desk", "Desk Memorial");
        ok(&["--home", &rep, "contact", "add", &desk]);
        let verified = |rep: &str| -> Value {
            json_lines(&ok(&["--home", rep, "contact", "list", "--json"]))[0]["verified"].clone()
        };
        assert_eq!(verified(&rep), false);
        let listed = ok(&["--home", &rep, "contact", "list"]);
        assert!(String::from_utf8_lossy(&listed.stderr).contains("NOT VERIFIED"));
        let send = |rep: &str| {
            run(
                &[
                    "--home",
                    rep,
                    "--json",
                    "report",
                    "send",
                    "--to",
                    "desk memorial",
                    "--file",
                    &report,
                    "--queue-only",
                ],
                &[],
            )
        };
        let o = send(&rep);
        assert!(o.status.success());
        let queued = json_lines(&o);
        assert_eq!(queued[0]["type"], "queued", "{queued:?}");
        assert_eq!(
            queued[0]["unverified"],
            serde_json::json!(["Desk Memorial"])
        );
        let o = run(
            &[
                "--home",
                &rep,
                "report",
                "send",
                "--to",
                "Desk Memorial",
                "--file",
                &report,
                "--queue-only",
            ],
            &[],
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("is not verified"));

        let v = json_lines(&ok(&[
            "--home",
            &rep,
            "contact",
            "verify",
            "desk memorial",
            "--json",
        ]));
        assert_eq!(v[0]["verified"], true, "{v:?}");
        assert_eq!(verified(&rep), true);
        assert_eq!(
            json_lines(&send(&rep))[0]["unverified"],
            serde_json::json!([])
        );
        let listed = ok(&["--home", &rep, "contact", "list"]);
        let text = String::from_utf8_lossy(&listed.stderr);
        assert!(
            text.contains("verified with the NGO") && !text.contains("NOT VERIFIED"),
            "{text}"
        );

        // A renewed card, signed by the same NGO key, keeps the mark.
        ok(&[
            "--home",
            &p("desk"),
            "ngo",
            "renew-card",
            "--card-out",
            &desk,
        ]);
        ok(&["--home", &rep, "contact", "add", &desk]);
        assert_eq!(verified(&rep), true, "same key, same verification");
        ok(&[
            "--home",
            &rep,
            "contact",
            "verify",
            "Desk Memorial",
            "--clear",
        ]);
        assert_eq!(verified(&rep), false);
        ok(&[
            "--home",
            &rep,
            "contact",
            "verify",
            "Desk Memorial",
            "--yes",
        ]);
        assert_eq!(verified(&rep), true);

        // Impersonation: a different key under a name that reads the same.
        for (home, forged) in [
            ("f1", "DESK MEMORIAL"),
            ("f2", "Desk  Memorial"),
            ("f3", "DeskMemorial"),
            // Cyrillic е and о.
            ("f4", "D\u{0435}sk Mem\u{043E}rial"),
        ] {
            let card = ngo(home, forged);
            let o = run(&["--home", &rep, "contact", "add", &card], &[]);
            assert!(!o.status.success(), "{forged:?} accepted");
            assert_one_error_line(&o);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("impersonation") && err.contains("--replace"),
                "{err}"
            );
        }
        let other = ngo("other", "Desk Civic");
        ok(&["--home", &rep, "contact", "add", &other]);
        assert_eq!(
            json_lines(&ok(&["--home", &rep, "contact", "list", "--json"])).len(),
            2
        );
        // A genuine new key, once compared, replaces the old contact; it starts unverified.
        let rekeyed = ngo("rekeyed", "Desk  Memorial");
        ok(&["--home", &rep, "contact", "add", &rekeyed, "--replace"]);
        let list = json_lines(&ok(&["--home", &rep, "contact", "list", "--json"]));
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(list.iter().all(|c| c["verified"] == false), "{list:?}");
        // The removed contact's mark went with it.
        let marks = common::bins::home(p("rep"))
            .expect("home")
            .vault()
            .expect("vault")
            .list("contact-marks/")
            .len();
        assert_eq!(marks, 0);
    })
    .await
    .expect("blocking part");
    relay.shutdown().await.expect("shutdown");
}

/// Issue 11, "bound `inbox/rejected` and say how to clear it": a card holder's junk cannot fill
/// the NGO's disk (evidence goes before envelopes a returning key would open), and the NGO can
/// list and empty the directory by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_envelopes_are_bounded_listed_and_cleared() {
    let desk = Desk::new().await;
    let sender = vigil_core::keys::SigningSecret::generate(&mut rand::rngs::OsRng);
    let orphan = |title: &str| {
        let gone = vigil_core::age::x25519::Identity::generate(&mut rand::rngs::OsRng).to_public();
        vigil_core::envelope::seal(
            SMALL_REPORT
                .replace("\"t\"", &format!("\"{title}\""))
                .as_bytes(),
            &sender,
            &[desk.card.identity_key],
            &[gone],
            now(),
            &mut rand::rngs::OsRng,
        )
        .expect("seal")
    };
    let junk = |n: u8| vec![n; 300];
    let (o1, o2) = (orphan("a"), orphan("b"));
    desk.deposit(&[&o1, &o2, &junk(1), &junk(2), &junk(3)])
        .await;
    let ngo = desk.ngo.clone();
    blocking(move || {
        let kinds = |ngo: &str| -> Vec<String> {
            json_lines(&ok(&["--home", ngo, "inbox", "rejected", "list", "--json"]))
                .iter()
                .map(|v| v["kind"].as_str().expect("kind").to_string())
                .collect()
        };
        let bound = |n: &'static str| [("VIGIL_REJECTED_MAX_ITEMS", n)];
        let o = run(&["--home", &ngo, "inbox", "fetch", "--json"], &bound("4"));
        assert!(o.status.success());
        let lines = json_lines(&o);
        let done = lines
            .iter()
            .find(|v| v["type"] == "fetch_done")
            .expect("done");
        assert_eq!(
            (done["rejected"].as_u64(), done["rejected_trimmed"].as_u64()),
            (Some(5), Some(1)),
            "{done}"
        );
        assert_eq!(
            done["rejected_trimmed_no_key"], 0,
            "junk goes first: {done}"
        );
        assert_eq!(done["no_key_kept"], 2, "{done}");
        let mut k = kinds(&ngo);
        k.sort();
        assert_eq!(k, ["invalid", "invalid", "no_key", "no_key"]);
        let human = ok(&["--home", &ngo, "inbox", "rejected", "list"]);
        assert!(String::from_utf8_lossy(&human.stderr).contains("4 kept envelopes"));

        // Clearing keeps what a returning key would open, unless --all.
        let c = json_lines(&ok(&[
            "--home", &ngo, "inbox", "rejected", "clear", "--json",
        ]));
        assert_eq!(
            (c[0]["removed"].as_u64(), c[0]["kept_no_key"].as_u64()),
            (Some(2), Some(2)),
            "{c:?}"
        );
        assert_eq!(kinds(&ngo), ["no_key", "no_key"]);

        // A tight bound takes no-key envelopes too, once no evidence is left, oldest first,
        // and says so.
        let o = run(&["--home", &ngo, "inbox", "fetch"], &bound("1"));
        assert!(o.status.success());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("deleted the oldest 1 kept envelope")
                && stderr.contains("VIGIL_REJECTED_MAX_ITEMS"),
            "{stderr}"
        );
        assert_eq!(kinds(&ngo), ["no_key"]);

        let c = json_lines(&ok(&[
            "--home",
            &ngo,
            "inbox",
            "rejected",
            "clear",
            "--all",
            "--older-than",
            "1d",
            "--json",
        ]));
        assert_eq!(c[0]["removed"], 0, "nothing is a day old: {c:?}");
        let c = json_lines(&ok(&[
            "--home", &ngo, "inbox", "rejected", "clear", "--all", "--json",
        ]));
        assert_eq!(c[0]["removed"], 1, "{c:?}");
        assert!(kinds(&ngo).is_empty());

        let o = run(
            &["--home", &ngo, "inbox", "fetch"],
            &[("VIGIL_REJECTED_MAX_ITEMS", "lots")],
        );
        assert!(!o.status.success());
        assert_one_error_line(&o);
        assert!(String::from_utf8_lossy(&o.stderr).contains("VIGIL_REJECTED_MAX_ITEMS"));
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// Issue 11, "sent to 2 NGOs names them": each NGO sees the others by the names on their cards
/// (which the reporter's app signs into the envelope beside their keys), itself as "this NGO",
/// and a key the envelope does not name as such; the report itself is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_names_the_ngos_it_was_sent_to() {
    let desk = Desk::new().await;
    let addr = desk.card.relay.clone();
    let fp = desk.card.relay_fingerprint.to_string();
    let root = tempfile::tempdir().expect("tempdir");
    let other_home = root
        .path()
        .join("civic")
        .to_str()
        .expect("utf8")
        .to_string();
    let other_card = root
        .path()
        .join("civic.card")
        .to_str()
        .expect("utf8")
        .to_string();
    let report = root
        .path()
        .join("r.json")
        .to_str()
        .expect("utf8")
        .to_string();
    std::fs::write(&report, SMALL_REPORT).expect("write");
    let (ngo, rep) = (desk.ngo.clone(), desk.rep.clone());
    let (oh, oc) = (other_home.clone(), other_card.clone());
    blocking(move || {
        ok(&[
            "--home",
            &oh,
            "ngo",
            "init",
            "--name",
            "Civic Aid",
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
            "--card-out",
            &oc,
        ]);
        ok(&["--home", &rep, "contact", "add", &oc]);
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--to",
            "Civic Aid",
            "--file",
            &report,
        ]);
        for (home, me, other) in [(&ngo, "Desk", "Civic Aid"), (&oh, "Civic Aid", "Desk")] {
            let fetched = json_lines(&ok(&["--home", home, "inbox", "fetch", "--json"]));
            let id = fetched
                .iter()
                .find(|v| v["type"] == "fetched")
                .expect("fetched")["id"]
                .as_str()
                .expect("id")
                .to_string();
            let shown = ok(&["--home", home, "inbox", "show", &id]);
            let text = String::from_utf8_lossy(&shown.stdout);
            let last = text.lines().last().expect("trailer");
            assert!(last.starts_with("Signed by reporter key "), "{text}");
            assert!(
                last.contains("(sent to 2 NGOs: ")
                    && last.contains(&format!("{me} (this NGO)"))
                    && last.contains(other),
                "{last}"
            );
            let v = json_lines(&ok(&["--home", home, "inbox", "show", &id, "--json"]));
            assert_eq!(v[0]["sent_to"], 2, "the count stays: {v:?}");
            let written: Value = serde_json::from_str(SMALL_REPORT).expect("json");
            assert_eq!(
                v[0]["report"], written,
                "the report is exactly what the reporter wrote"
            );
            let names: Vec<(&str, bool)> = v[0]["sent_to_names"]
                .as_array()
                .expect("names")
                .iter()
                .map(|n| {
                    (
                        n["name"].as_str().expect("name"),
                        n["this_ngo"].as_bool().expect("bool"),
                    )
                })
                .collect();
            assert!(
                names.contains(&(me, true)) && names.contains(&(other, false)),
                "{names:?}"
            );
        }
    })
    .await;

    // An envelope that names no NGO (as version 1 envelopes, or a hostile sender's): this NGO
    // is still named, the other key is said to be unnamed.
    let sender = vigil_core::keys::SigningSecret::generate(&mut rand::rngs::OsRng);
    let unnamed = vigil_core::keys::SigningSecret::generate(&mut rand::rngs::OsRng).public();
    let envelope = vigil_core::envelope::seal(
        SMALL_REPORT.replace("\"t\"", "\"u\"").as_bytes(),
        &sender,
        &[desk.card.identity_key, unnamed],
        &desk.card.recipients,
        now(),
        &mut rand::rngs::OsRng,
    )
    .expect("seal");
    desk.deposit(&[&envelope]).await;
    let ngo = desk.ngo.clone();
    blocking(move || {
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        let id = fetched
            .iter()
            .find(|v| v["type"] == "fetched")
            .expect("fetched")["id"]
            .as_str()
            .expect("id")
            .to_string();
        let text = String::from_utf8_lossy(&ok(&["--home", &ngo, "inbox", "show", &id]).stdout)
            .to_string();
        let last = text.lines().last().expect("trailer");
        assert!(
            last.contains("Desk (this NGO)") && last.contains("an NGO not named (key "),
            "{last}"
        );
        let v = json_lines(&ok(&["--home", &ngo, "inbox", "show", &id, "--json"]));
        let names = v[0]["sent_to_names"].as_array().expect("names");
        assert!(
            names
                .iter()
                .any(|n| n["name"].is_null() && n["identity_key"] == unnamed.to_string()),
            "{names:?}"
        );
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

// ------------------------------------------------------------------------------------------
// Languages (issue 11): the reporter's flow in Russian, with no English left in it.

/// Words of English prose: a run of Latin words that holds one of these is a sentence, not a
/// command name or a term.
const ENGLISH_WORDS: &[&str] = &[
    "the", "a", "an", "to", "of", "and", "or", "is", "are", "was", "be", "not", "no", "for", "in",
    "on", "at", "by", "with", "from", "this", "that", "it", "its", "you", "your", "will", "can",
    "has", "have", "if", "as", "than", "all", "now", "later", "again", "still", "only", "what",
    "how", "when", "where", "who", "yet", "do", "does",
];

/// `vigil` subcommand names: after `vigil` they are a command line, not prose.
const COMMAND_WORDS: &[&str] = &[
    "report",
    "send",
    "check",
    "contact",
    "add",
    "list",
    "remove",
    "verify",
    "outbox",
    "flush",
    "cancel",
    "ngo",
    "init",
    "card",
    "show",
    "inbox",
    "fetch",
    "status",
    "demo",
    "age",
    "help",
    "set-relay",
    "add-staff",
    "remove-staff",
    "renew-card",
    "rejected",
    "clear",
];

/// The first English sentence in `text`, if any.
///
/// Not prose, in any language, and removed first: `backticked commands`, `vigil` and the
/// subcommand names after it, flags (`--to`, `-h`), anything with a digit (numbers, hex ids,
/// safety numbers, dates, durations), anything with `/ \ . _ : | = < > @` inside (paths, file
/// names, JSON fields, `host:port`, `<NGO>`), and ALL-CAPS words (`[OPTIONS]`, `VIGIL_HOME`,
/// `UTC`). Each removed token, and each word with a letter outside ASCII (Cyrillic), ends a run.
/// A run of three or more Latin words holding one of [`ENGLISH_WORDS`] is an English sentence.
fn english_sentence(text: &str) -> Option<String> {
    let mut unquoted = String::new();
    for (i, part) in text.split('`').enumerate() {
        unquoted.push_str(if i % 2 == 0 { part } else { " ` " });
    }
    let mut run: Vec<String> = Vec::new();
    let mut after_vigil = false;
    let check = |run: &mut Vec<String>| -> Option<String> {
        let found = run.len() >= 3
            && run
                .iter()
                .any(|w| ENGLISH_WORDS.contains(&w.to_lowercase().as_str()));
        let sentence = found.then(|| run.join(" "));
        run.clear();
        sentence
    };
    for raw in unquoted.split_whitespace() {
        let token = raw.trim_matches(|c: char| {
            matches!(
                c,
                '.' | ','
                    | ';'
                    | ':'
                    | '!'
                    | '?'
                    | '('
                    | ')'
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '«'
                    | '»'
                    | '"'
                    | '\''
                    | '—'
                    | '–'
                    | '…'
            )
        });
        if token.is_empty() {
            continue;
        }
        let command_word = (token == "vigil" || token == "vigil-relay")
            || (after_vigil && COMMAND_WORDS.contains(&token));
        after_vigil = command_word;
        let latin_word = token
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '\'' || c == '-')
            && token.chars().any(|c| c.is_ascii_lowercase())
            && !token.starts_with('-');
        if latin_word && !command_word {
            run.push(token.to_string());
        } else if let Some(s) = check(&mut run) {
            return Some(s);
        }
    }
    check(&mut run)
}

#[test]
fn the_english_sentence_detector_finds_prose_and_ignores_commands() {
    for english in [
        "error: no contact named \"X\"; add the NGO's card",
        "the report stays in the outbox, encrypted; run `vigil outbox flush` later",
        "Print this message or the help of the given subcommand(s)",
        "Отчёт в порядке — but this is not Russian",
    ] {
        assert!(english_sentence(english).is_some(), "{english}");
    }
    for not_english in [
        "Использование: vigil report send [OPTIONS] --to <NGO>",
        "ошибка: нет контакта с именем «X»; добавьте карточку командой `vigil contact add CARD_FILE`",
        "  --stall-timeout <DURATION>  Через сколько времени (по умолчанию 20s)",
        "a1b2c3d4  для Центр через 127.0.0.1:4433, в очереди с этой минуты, 1 попытка",
        "Вывод JSON на всех языках одинаков; VIGIL_LANG, LC_ALL, LC_MESSAGES и LANG; en или ru",
        "Карточка действительна до 2027-01-01 12:00 UTC. ~/vigil/report.json deposit_id",
        "значения low|normal|high|urgent, а указано \"soon\"",
    ] {
        assert_eq!(english_sentence(not_english), None, "{not_english}");
    }
}

/// What one run of the reporter's flow printed: all human text, and the JSON objects.
#[derive(Default)]
struct FlowOutput {
    text: String,
    json: Vec<Value>,
}

impl FlowOutput {
    /// Run `vigil ARGS` in `env`, keep what it printed, and check its exit code.
    fn run(&mut self, args: &[&str], env: &[(&str, &str)], code: i32) -> Output {
        let o = run(args, env);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert_eq!(o.status.code(), Some(code), "vigil {args:?}: {err}");
        if args.contains(&"--json") {
            self.json.extend(json_lines(&o).into_iter().map(neutral));
        } else {
            self.text.push_str(&out);
            self.text.push_str(&err);
        }
        o
    }
}

/// `v` without what differs between two runs of the same flow (ids and times).
fn neutral(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for key in [
            "id",
            "deposit_id",
            "queued_at",
            "age_secs",
            "verified_at",
            "kept_until",
        ] {
            if o.contains_key(key) {
                o.insert(key.into(), Value::Null);
            }
        }
        // Nested too (`delivery` lists a deposit id per relay).
        if let Some(Value::Array(relays)) = o.get_mut("relays") {
            for r in relays.iter_mut() {
                *r = neutral(r.take());
            }
        }
    }
    v
}

/// The reporter's flow while the relay is up, as a person (`json` false) or a script runs it.
fn reporter_flow_live(
    out: &mut FlowOutput,
    env: &[(&str, &str)],
    home: &str,
    files: &LangFiles,
    json: bool,
) {
    let j = |args: &[&'static str]| -> Vec<&'static str> {
        let mut a = args.to_vec();
        if json {
            a.insert(0, "--json");
        }
        a
    };
    let h = ["--home", home];
    let with = |rest: Vec<&str>| -> Vec<String> {
        h.iter()
            .map(|s| s.to_string())
            .chain(rest.iter().map(|s| s.to_string()))
            .collect()
    };
    let go = |out: &mut FlowOutput, args: Vec<String>, code: i32| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        out.run(&args, env, code);
    };
    let mut add = j(&["contact", "add"]);
    add.push(&files.card);
    go(out, with(add), 0);
    go(out, with(j(&["contact", "list"])), 0);
    let mut verify = j(&["contact", "verify"]);
    verify.push(LANG_NGO);
    go(out, with(verify), 0);
    let mut check = j(&["report", "check"]);
    check.push(&files.report);
    go(out, with(check), 0);
    let mut bad = j(&["report", "check"]);
    bad.push(&files.bad_report);
    go(out, with(bad), 1);
    let mut send = j(&["report", "send", "--to", LANG_NGO, "--file"]);
    send.push(&files.report);
    send.extend(["--attach", &files.photo, "--attach", &files.recording]);
    go(out, with(send), 0);
    go(out, with(j(&["outbox", "list"])), 0);
    go(out, with(j(&["outbox", "flush"])), 0);
    let mut nobody = j(&["report", "send", "--to", "Никто", "--file"]);
    nobody.push(&files.report);
    go(out, with(nobody), 1);
    if !json {
        go(out, with(vec!["report", "send", "--help"]), 0);
        go(out, with(vec!["--help"]), 0);
    }
}

/// The rest of the flow, with the relay gone: the report is queued, listed and cancelled.
fn reporter_flow_offline(
    out: &mut FlowOutput,
    env: &[(&str, &str)],
    home: &str,
    files: &LangFiles,
    json: bool,
) {
    let mut args = vec![
        "--home",
        home,
        "report",
        "send",
        "--to",
        LANG_NGO,
        "--no-retry",
        "--file",
        &files.report,
    ];
    if json {
        args.push("--json");
    }
    out.run(&args, env, 3);
    let mut list = vec!["--home", home, "outbox", "list"];
    if json {
        list.push("--json");
    }
    out.run(&list, env, 0);
    let listed = json_lines(&ok(&["--home", home, "outbox", "list", "--json"]));
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_str().expect("id").to_string();
    let mut cancel = vec!["--home", home, "outbox", "cancel", &id[..8]];
    if json {
        cancel.push("--json");
    }
    out.run(&cancel, env, 0);
}

/// The NGO of the language tests: a Cyrillic name, as many are.
const LANG_NGO: &str = "Правозащитный центр";

/// Files the language flows share.
struct LangFiles {
    card: String,
    report: String,
    bad_report: String,
    /// A photo with EXIF (its metadata removed and said) and a file large enough to show
    /// progress lines.
    photo: String,
    recording: String,
}

const RU: &[(&str, &str)] = &[("LANG", "ru_RU.UTF-8")];
const EN: &[(&str, &str)] = &[("LANG", "en_US.UTF-8")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reporter_flow_under_a_russian_locale_has_no_english_sentence() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = vigil_relay::start(vigil_relay::RelayConfig::new(
        root.join("relay"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let (addr, fp) = (
        relay.local_addr().to_string(),
        relay.fingerprint().to_string(),
    );
    let path = |name: &str| root.join(name).to_str().expect("utf8").to_string();
    let files = LangFiles {
        card: path("ngo.card"),
        report: path("report.json"),
        bad_report: path("bad.json"),
        photo: path("car.jpg"),
        recording: path("call.amr"),
    };
    std::fs::write(&files.photo, common::jpeg_with_exif().0).expect("write");
    let mut recording = b"#!AMR\n".to_vec();
    recording.extend((0..400_000u32).map(|i| (i % 251) as u8));
    std::fs::write(&files.recording, recording).expect("write");
    std::fs::write(&files.report, r#"{"kind":"threat","urgency":"urgent","title":"Ночью звонят и угрожают","occurred_at":"2024-02-20","narrative":"Звонили трижды."}"#).expect("write");
    std::fs::write(&files.bad_report, r#"{"kind":"threat","urgency":"soon","title":"т","occurred_at":"2024-02-20","narrative":"н"}"#).expect("write");
    let homes = ["ru", "en", "ru-json", "en-json"].map(path);
    let ngo = path("ngo");
    let files = std::sync::Arc::new(files);
    let homes = std::sync::Arc::new(homes);

    // The NGO's side, in English; then the four reporters, one after another.
    let (f, hs) = (files.clone(), homes.clone());
    let mut outputs = blocking(move || {
        ok(&[
            "--home",
            &ngo,
            "ngo",
            "init",
            "--name",
            LANG_NGO,
            "--relay",
            &addr,
            "--relay-fingerprint",
            &fp,
            "--card-out",
            &f.card,
        ]);
        let mut outputs: Vec<FlowOutput> = (0..4).map(|_| FlowOutput::default()).collect();
        for (i, (env, json)) in [(RU, false), (EN, false), (RU, true), (EN, true)]
            .into_iter()
            .enumerate()
        {
            reporter_flow_live(&mut outputs[i], env, &hs[i], &f, json);
        }
        outputs
    })
    .await;
    relay.shutdown().await.expect("shutdown");

    // With the relay gone, all four wait out the connect timeout side by side.
    let (f, hs) = (files.clone(), homes.clone());
    let taken = std::mem::take(&mut outputs);
    let outputs = blocking(move || {
        std::thread::scope(|s| {
            let handles: Vec<_> = taken
                .into_iter()
                .zip([(RU, false), (EN, false), (RU, true), (EN, true)])
                .enumerate()
                .map(|(i, (mut out, (env, json)))| {
                    let (f, hs) = (&f, &hs);
                    s.spawn(move || {
                        reporter_flow_offline(&mut out, env, &hs[i], f, json);
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("flow"))
                .collect::<Vec<_>>()
        })
    })
    .await;

    let (ru, en, ru_json, en_json) = (&outputs[0], &outputs[1], &outputs[2], &outputs[3]);
    assert_eq!(
        english_sentence(&ru.text),
        None,
        "English under LANG=ru_RU.UTF-8:\n{}",
        ru.text
    );
    assert!(ru.text.contains("Отчёт"), "{}", ru.text);
    for expected in [
        "ошибка: ",
        "нет контакта с именем",
        "Использование:",
        "в очереди отправки",
    ] {
        assert!(ru.text.contains(expected), "{expected:?} in:\n{}", ru.text);
    }
    // The detector would have caught English: the same flow in English is full of it.
    assert!(english_sentence(&en.text).is_some(), "{}", en.text);
    assert!(!en.text.contains("Отчёт в порядке"), "{}", en.text);
    // Scripts see the same JSON in every language.
    assert!(!ru_json.json.is_empty());
    assert_eq!(ru_json.json, en_json.json, "JSON differs between languages");
}

#[test]
fn lang_overrides_the_locale_and_the_locale_variables_go_in_posix_order() {
    let help = |args: &[&str], env: &[(&str, &str)]| {
        let o = run(args, env);
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let send = ["report", "send", "--help"];
    let ru = help(&send, RU);
    assert!(ru.contains("Зашифровать отчёт"), "{ru}");
    let en = help(&["--lang", "en", "report", "send", "--help"], RU);
    assert!(en.contains("Encrypt a report"), "{en}");
    assert!(english_sentence(&en).is_some());
    let ru = help(&["report", "send", "--lang=ru", "--help"], EN);
    assert!(ru.contains("Зашифровать отчёт"), "{ru}");
    // LC_ALL before LC_MESSAGES before LANG; C is English; VIGIL_LANG before them all.
    let ru = help(&send, &[("LANG", "C"), ("LC_ALL", "ru_RU.UTF-8")]);
    assert!(ru.contains("Зашифровать"), "{ru}");
    let en = help(&send, &[("LANG", "ru_RU.UTF-8"), ("LC_MESSAGES", "C")]);
    assert!(en.contains("Encrypt a report"), "{en}");
    let ru = help(&send, &[("LANG", "C"), ("VIGIL_LANG", "ru")]);
    assert!(ru.contains("Зашифровать"), "{ru}");
    // Errors too, with their advice; the JSON error object stays English.
    let home = tempfile::tempdir().expect("tempdir");
    let home = home.path().to_str().expect("utf8");
    let o = run(&["--home", home, "outbox", "cancel", "zz", "--json"], RU);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.starts_with("ошибка: "), "{stderr}");
    assert_eq!(english_sentence(&stderr), None, "{stderr}");
    let v = &json_lines(&o)[0];
    assert_error_object(v, "not_found", 1);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not an outbox id")),
        "{v}"
    );
    // A mistyped command line too (clap's own words are English).
    for typo in [
        &["report", "snd"][..],
        &["report", "send", "--fle", "x"],
        &["report", "send"],
    ] {
        let o = run(typo, RU);
        assert_eq!(o.status.code(), Some(2), "{typo:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.starts_with("ошибка: "), "{stderr}");
        assert_eq!(english_sentence(&stderr), None, "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ngo_flow_under_a_russian_locale_has_no_english_sentence() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let relay = vigil_relay::start(vigil_relay::RelayConfig::new(
        root.join("relay"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let (addr, fp) = (
        relay.local_addr().to_string(),
        relay.fingerprint().to_string(),
    );
    blocking(move || {
        let path = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card, report) = (path("ngo"), path("rep"), path("ngo.card"), path("r.json"));
        std::fs::write(&report, r#"{"kind":"abduction","urgency":"urgent","title":"Задержан на улице","occurred_at":"2024-02-20","location":{"text":"Нальчик"},"perpetrators":[{"agency":"ФСБ","vehicles":[{"description":"белая машина","plate":"А123БВ"}]}],"narrative":"Схватили у дома.","requested_action":"Найти адвоката"}"#).expect("write");
        let mut out = FlowOutput::default();
        out.run(&["--home", &ngo, "ngo", "init", "--name", LANG_NGO, "--relay", &addr, "--relay-fingerprint", &fp, "--card-out", &card], RU, 0);
        out.run(&["--home", &ngo, "card", "show"], RU, 0);
        out.run(&["--home", &ngo, "inbox", "list"], RU, 0);
        ok(&["--home", &rep, "contact", "add", &card]);
        let (photo, recording) = (path("car.jpg"), path("call.amr"));
        std::fs::write(&photo, common::jpeg_with_exif().0).expect("write");
        let mut sound = b"#!AMR\n".to_vec();
        sound.extend((0..400_000u32).map(|i| (i % 251) as u8));
        std::fs::write(&recording, sound).expect("write");
        ok(&["--home", &rep, "report", "send", "--to", LANG_NGO, "--file", &report, "--attach", &photo, "--attach", &recording]);
        out.run(&["--home", &ngo, "inbox", "fetch"], RU, 0);
        out.run(&["--home", &ngo, "inbox", "list"], RU, 0);
        let listed = json_lines(&ok(&["--home", &ngo, "inbox", "list", "--json"]));
        let id = listed[0]["id"].as_str().expect("id").to_string();
        out.run(&["--home", &ngo, "inbox", "show", &id], RU, 0);
        out.run(&["--home", &ngo, "inbox", "show", "ffffffff"], RU, 1);
        let export = path("export");
        out.run(&["--home", &ngo, "inbox", "export", &id, "--out", &export], RU, 0);
        out.run(&["--home", &ngo, "inbox", "status"], RU, 0);
        out.run(&["--home", &ngo, "inbox", "rejected", "list"], RU, 0);
        out.run(&["--home", &ngo, "ngo", "renew-card"], RU, 0);
        out.run(&["--home", &ngo, "ngo", "add-staff", "--name", "ночная смена"], RU, 0);
        out.run(&["--home", &ngo, "ngo", "--help"], RU, 0);
        out.run(&["--home", &ngo, "inbox", "--help"], RU, 0);
        out.run(&["--home", &ngo, "panic", "--help"], RU, 0);
        out.run(&["--home", &ngo, "panic"], RU, 0);
        out.run(&["--home", &ngo, "panic"], RU, 0);
        assert_eq!(english_sentence(&out.text), None, "English under LANG=ru_RU.UTF-8:\n{}", out.text);
        for expected in ["Входящие организации", "Получено новых отчётов: 1", "Подписан ключом автора", "ошибка: ", "Ключи уничтожены", "Уничтожать нечего", "car.jpg", "выгружен в", "Расшифровка call.amr", "Получение call.amr"] {
            assert!(out.text.contains(expected), "{expected:?} in:\n{}", out.text);
        }
    })
    .await;
    relay.shutdown().await.expect("shutdown");
}

/// Issue 12, `vigil panic`: one short command, no passphrase, no questions, leaves neither an
/// NGO home (after a fetch) nor a reporter home (with a report queued) on the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_leaves_nothing_of_a_home() {
    let desk = Desk::new().await;
    let (ngo, rep) = (desk.ngo.clone(), desk.rep.clone());
    blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let report = report.to_str().expect("utf8");
        ok(&[
            "--home", &rep, "report", "send", "--to", "Desk", "--file", report,
        ]);
        ok(&["--home", &ngo, "inbox", "fetch"]);
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            report,
            "--queue-only",
        ]);
        for home in [&ngo, &rep] {
            assert!(std::path::Path::new(home).join("lock").exists());
            let v = json_lines(&ok(&["--home", home, "panic", "--json"]));
            assert_eq!(v[0]["type"], "panic", "{v:?}");
            assert!(v[0]["keys"].as_u64().is_some_and(|k| k >= 1), "{v:?}");
            assert!(v[0]["files"].as_u64().is_some_and(|k| k >= 1), "{v:?}");
            assert!(!std::path::Path::new(home).exists(), "{home} is gone");
        }
        // Nothing there: still a success, and says so.
        let o = ok(&["--home", &ngo, "panic"]);
        assert!(String::from_utf8_lossy(&o.stderr).contains("Nothing to destroy"));
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// Every file under `dir`, with its path, as bytes.
fn every_file(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                // (A socket cannot be read; there is none once sessions are closed.)
                out.push((p, bytes));
            }
        }
    }
    out
}

/// Issue 12, "a seized device gives nothing away": after a reporter sent one report and queued
/// another, and the NGO fetched the first, no file of either home (names included) holds the
/// report's text, the NGO's name, the relay's address, port or certificate, the mailbox id, or
/// any key, secret or public; and without the passphrase nothing opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seized_home_reveals_no_report_name_address_or_key() {
    let desk = Desk::new().await;
    let (ngo, rep) = (desk.ngo.clone(), desk.rep.clone());
    let card = desk.card.clone();
    blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(
            &report,
            r#"{"kind":"abduction","urgency":"urgent","title":"CANARY-TITLE-5d1e","occurred_at":"2024-01-01","location":{"text":"CANARY-PLACE-77b0"},"narrative":"CANARY-NARRATIVE-a9c3 taken from the street"}"#,
        )
        .expect("write");
        let report = report.to_str().expect("utf8");
        ok(&["--home", &rep, "contact", "verify", "Desk", "--yes"]);
        ok(&[
            "--home", &rep, "report", "send", "--to", "Desk", "--file", report,
        ]);
        ok(&["--home", &ngo, "inbox", "fetch"]);
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            report,
            "--queue-only",
        ]);
        ok(&["--home", &ngo, "ngo", "add-staff", "--name", "night desk"]);
        // An armed check-in alert: its keys and relays are on the device too.
        let alert = tmp.path().join("alert.json");
        std::fs::write(
            &alert,
            r#"{"kind":"disappearance","urgency":"urgent","title":"CANARY-ALERT-31f0","occurred_at":"2026-12-03","narrative":"n"}"#,
        )
        .expect("write");
        let duress = tmp.path().join("duress");
        std::fs::write(&duress, "duress words\n").expect("write");
        ok(&[
            "--home",
            &rep,
            "checkin",
            "arm",
            "--to",
            "Desk",
            "--every",
            "1h",
            "--grace",
            "1h",
            "--alert",
            alert.to_str().expect("utf8"),
            "--duress-passphrase-file",
            duress.to_str().expect("utf8"),
        ]);
        ok(&["--home", &rep, "checkin"]);

        // What the homes hold, as their owners' programs see it.
        let rep_home = common::bins::home(&rep).expect("home");
        let ngo_home = common::bins::home(&ngo).expect("home");
        let sender = vigil_client::state::reporter_key(&rep_home).expect("reporter key");
        let state = vigil_client::state::Ngo::load(&ngo_home).expect("ngo");
        let staff = state.local_identities(&ngo_home).expect("staff keys");
        assert_eq!(staff.len(), 2);
        assert_eq!(vigil_client::state::inbox_entries(&ngo_home).expect("inbox").len(), 1);
        assert_eq!(vigil_client::state::outbox(&rep_home).expect("outbox").len(), 1);
        drop((rep_home, ngo_home));

        let port = card.relay.rsplit(':').next().expect("port").to_string();
        let mut needles: Vec<(String, Vec<u8>)> = vec![
            ("title".into(), b"CANARY-TITLE".to_vec()),
            ("alert".into(), b"CANARY-ALERT".to_vec()),
            ("place".into(), b"CANARY-PLACE".to_vec()),
            ("narrative".into(), b"CANARY-NARRATIVE".to_vec()),
            ("NGO name".into(), b"Desk".to_vec()),
            ("staff name".into(), b"night".to_vec()),
            ("relay address".into(), card.relay.clone().into_bytes()),
            ("relay port".into(), format!(":{port}").into_bytes()),
            ("relay host".into(), b"127.0.0.1".to_vec()),
            ("relay certificate".into(), card.relay_fingerprint.to_string().into_bytes()),
            ("mailbox".into(), card.mailbox.to_string().into_bytes()),
            ("reporter secret".into(), sender.to_hex_secret().as_bytes().to_vec()),
            ("reporter public".into(), sender.public().to_string().into_bytes()),
            ("NGO identity secret".into(), state.identity.to_hex_secret().as_bytes().to_vec()),
            ("NGO identity public".into(), card.identity_key.to_string().into_bytes()),
            ("mailbox secret".into(), state.mailbox_key.to_hex_secret().as_bytes().to_vec()),
            ("age secret key".into(), b"AGE-SECRET-KEY".to_vec()),
            ("plain JSON".into(), b"\"relay\"".to_vec()),
        ];
        for id in &staff {
            let secret = id.to_string_secret();
            needles.push((
                "staff secret".into(),
                secrecy::ExposeSecret::expose_secret(&secret).as_bytes().to_vec(),
            ));
            needles.push(("staff public".into(), id.to_public().to_string().into_bytes()));
        }
        for home in [&rep, &ngo] {
            let files = every_file(std::path::Path::new(home));
            assert!(files.len() >= 3, "{home}: {files:?}");
            for (path, bytes) in &files {
                // The file's name below the home, and its bytes, compared without case.
                let name = path
                    .strip_prefix(home)
                    .expect("below the home")
                    .to_string_lossy()
                    .to_ascii_lowercase();
                let bytes = bytes.to_ascii_lowercase();
                for (what, needle) in &needles {
                    let needle = needle.to_ascii_lowercase();
                    assert!(
                        common_find(&bytes, &needle).is_none(),
                        "{what} found in the bytes of {home}/{name}"
                    );
                    assert!(
                        common_find(name.as_bytes(), &needle).is_none(),
                        "{what} found in the name of {home}/{name}"
                    );
                }
            }
        }

        // Without the right passphrase nothing opens, and the error says only that.
        let wrong = tmp.path().join("wrong");
        std::fs::write(&wrong, "not the passphrase\n").expect("write");
        for home in [&rep, &ngo] {
            let o = run(
                &["--home", home, "outbox", "list", "--json"],
                &[("VIGIL_PASSPHRASE_FILE", wrong.to_str().expect("utf8"))],
            );
            assert_eq!(o.status.code(), Some(1));
            assert_one_error_line(&o);
            assert_error_object(&json_lines(&o)[0], "wrong_passphrase", 1);
        }
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// Issue 12, unlocking for a working session: `vigil unlock --for` makes later commands need no
/// passphrase (here: a wrong one is ignored), `vigil lock` ends it, the time ends it, and
/// `vigil passphrase change` replaces the passphrase (and ends any session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_sessions_end_by_lock_or_time_and_the_passphrase_can_change() {
    let desk = Desk::new().await;
    let rep = desk.rep.clone();
    blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wrong = tmp.path().join("wrong");
        std::fs::write(&wrong, "not the passphrase\n").expect("write");
        let wrong = wrong.to_str().expect("utf8").to_string();
        let with_wrong = |args: &[&str]| run(args, &[("VIGIL_PASSPHRASE_FILE", &wrong)]);
        let list = ["--home", rep.as_str(), "contact", "list", "--json"];
        assert_eq!(with_wrong(&list).status.code(), Some(1), "locked");

        let v = json_lines(&ok(&["--home", &rep, "unlock", "--for", "5m", "--json"]));
        assert_eq!(v[0]["type"], "unlocked", "{v:?}");
        assert_eq!(v[0]["seconds"], 300, "{v:?}");
        let o = with_wrong(&list);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(json_lines(&o)[0]["name"], "Desk");
        let v = json_lines(&ok(&["--home", &rep, "lock", "--json"]));
        assert_eq!(
            v[0],
            serde_json::json!({"type": "locked", "was_unlocked": true})
        );
        assert_eq!(with_wrong(&list).status.code(), Some(1), "locked again");
        let v = json_lines(&ok(&["--home", &rep, "lock", "--json"]));
        assert_eq!(v[0]["was_unlocked"], false);

        // A session ends by itself.
        ok(&["--home", &rep, "unlock", "--for", "2s"]);
        assert!(with_wrong(&list).status.success(), "open for now");
        std::thread::sleep(std::time::Duration::from_millis(3500));
        assert_eq!(with_wrong(&list).status.code(), Some(1), "the time is up");
        assert!(!std::path::Path::new(&rep).join("vault/agent.sock").exists());

        // Longer than a working day is refused.
        let o = run(&["--home", &rep, "unlock", "--for", "13h"], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);

        // A new passphrase: the old one stops working, the new one works, sessions end.
        ok(&["--home", &rep, "unlock", "--for", "5m"]);
        let new = tmp.path().join("new");
        std::fs::write(&new, "a new and longer passphrase\n").expect("write");
        let new = new.to_str().expect("utf8");
        let v = json_lines(&ok(&[
            "--home",
            &rep,
            "passphrase",
            "change",
            "--new-passphrase-file",
            new,
            "--json",
        ]));
        assert_eq!(v[0]["type"], "passphrase_changed");
        let o = run(&list, &[]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "the old passphrase no longer opens it"
        );
        assert_error_object(&json_lines(&o)[0], "wrong_passphrase", 1);
        let o = run(&list, &[("VIGIL_PASSPHRASE_FILE", new)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// The alerts the NGO's inbox holds, as `inbox list --json` gives them: (title, alert reason).
fn listed_alerts(ngo: &str) -> Vec<(String, Option<String>)> {
    json_lines(&ok(&["--home", ngo, "inbox", "list", "--json"]))
        .into_iter()
        .filter(|v| v["type"] == "report")
        .map(|v| {
            (
                v["title"].as_str().unwrap_or_default().to_string(),
                v["alert"]["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Names and sizes of the files of a home (what someone holding the device can compare).
fn file_shapes(home: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = every_file(std::path::Path::new(home))
        .into_iter()
        .map(|(p, b)| {
            let name = p
                .strip_prefix(home)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            (name, b.len() as u64)
        })
        .filter(|(n, _)| n != "lock")
        .collect();
    v.sort();
    v
}

/// Issue 12, check-in alerts end to end with the commands exactly as the issue names them:
/// keep-alive (check-ins keep the alert sealed past several deadlines), miss (released, marked
/// missed, shown first and urgent), duress (a check-in with the duress passphrase looks the same
/// on the device, in output, exit code and files, and releases the alert at once, marked
/// duress), and disarm (nothing released afterwards). Relay restarts are covered against a real
/// relay in tests/checkin.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkin_keep_alive_miss_duress_and_disarm() {
    let desk = Desk::new().await;
    let (ngo, rep) = (desk.ngo.clone(), desk.rep.clone());
    blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let alert = tmp.path().join("alert.json");
        std::fs::write(
            &alert,
            r#"{"kind":"disappearance","urgency":"urgent","title":"I have gone silent","occurred_at":"2026-12-03","narrative":"If you read this, I did not check in. Call my lawyer."}"#,
        )
        .expect("write");
        let alert = alert.to_str().expect("utf8").to_string();
        let duress = tmp.path().join("duress");
        std::fs::write(&duress, "the words I say when they make me\n").expect("write");
        let duress = duress.to_str().expect("utf8").to_string();
        let arm = || {
            json_lines(&ok(&[
                "--home", &rep, "checkin", "arm", "--to", "Desk", "--every", "4s", "--grace",
                "2s", "--alert", &alert, "--duress-passphrase-file", &duress, "--json",
            ]))
        };
        let fetch = || json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        let alerts_fetched = |lines: &[Value]| -> Vec<String> {
            lines
                .iter()
                .filter(|v| v["type"] == "fetched")
                .filter_map(|v| v["alert"]["reason"].as_str().map(str::to_string))
                .collect()
        };

        // Nothing armed: a check-in says so.
        let o = run(&["--home", &rep, "checkin", "--json"], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        assert_error_object(&json_lines(&o)[0], "not_found", 1);

        // Keep-alive: check-ins every ~2 s for 10 s (past two deadlines) keep it sealed.
        let armed = arm();
        assert_eq!(armed[0]["type"], "armed", "{armed:?}");
        assert_eq!(armed[0]["every"], 4);
        assert_eq!(armed[0]["grace"], 2);
        let o = run(&["--home", &rep, "checkin", "arm", "--to", "Desk", "--every", "4s", "--grace", "2s", "--alert", &alert, "--duress-passphrase-file", &duress], &[]);
        assert_eq!(o.status.code(), Some(1), "one alert at a time");
        assert_one_error_line(&o);
        let status = json_lines(&ok(&["--home", &rep, "checkin", "status", "--json"]));
        assert_eq!(status[0]["armed"], true, "{status:?}");
        assert_eq!(status[0]["to"], serde_json::json!(["Desk"]));
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(10) {
            let v = json_lines(&ok(&["--home", &rep, "checkin", "--json"]));
            assert_eq!(v[0]["type"], "checked_in", "{v:?}");
            std::thread::sleep(std::time::Duration::from_millis(1500));
        }
        assert!(alerts_fetched(&fetch()).is_empty(), "still sealed");

        // Miss: no check-in for every + grace (and the relay's tick): released, marked missed.
        std::thread::sleep(std::time::Duration::from_secs(8));
        let got = fetch();
        assert_eq!(alerts_fetched(&got), ["missed"], "{got:?}");
        let listed = listed_alerts(&ngo);
        assert_eq!(
            listed[0],
            ("I have gone silent".to_string(), Some("missed".to_string())),
            "alerts first: {listed:?}"
        );
        let human = ok(&["--home", &ngo, "inbox", "list"]);
        let text = String::from_utf8_lossy(&human.stderr).to_string()
            + &String::from_utf8_lossy(&human.stdout);
        assert!(text.contains("CHECK-IN ALERT: the reporter stopped checking in (last check-in 20"), "{text}");
        // The device learns it at the next check-in, and clears it.
        let o = run(&["--home", &rep, "checkin"], &[]);
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        let v = json_lines(&ok(&["--home", &rep, "checkin", "disarm", "--json"]));
        assert_eq!(v[0]["already_gone"], 1, "{v:?}");
        let status = json_lines(&ok(&["--home", &rep, "checkin", "status", "--json"]));
        assert_eq!(status[0]["armed"], false, "{status:?}");

        // Duress: the same command, output, exit code and files as a normal check-in...
        arm();
        let normal = run(&["--home", &rep, "checkin"], &[]);
        let shapes_after_normal = file_shapes(&rep);
        let normal_json = json_lines(&ok(&["--home", &rep, "checkin", "--json"]));
        assert!(alerts_fetched(&fetch()).is_empty(), "a normal check-in releases nothing");
        let under_duress = run(&["--home", &rep, "checkin"], &[("VIGIL_PASSPHRASE_FILE", &duress)]);
        let shapes_after_duress = file_shapes(&rep);
        let strip = |o: &Output| {
            let t = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
            t.split("due by").next().unwrap_or_default().to_string()
        };
        assert_eq!(normal.status.code(), Some(0));
        assert_eq!(under_duress.status.code(), normal.status.code());
        assert_eq!(strip(&under_duress), strip(&normal));
        assert_eq!(shapes_after_duress, shapes_after_normal, "the same files, the same sizes");
        let duress_json = json_lines(&run(
            &["--home", &rep, "checkin", "--json"],
            &[("VIGIL_PASSPHRASE_FILE", &duress)],
        ));
        // (The alert is already released: the relay no longer knows it, whichever key.)
        assert_eq!(normal_json[0]["type"], "checked_in");
        assert_eq!(duress_json[0]["kind"], "relay_refused", "{duress_json:?}");
        // ...and the NGO has the alert at once, marked duress.
        let got = fetch();
        assert_eq!(alerts_fetched(&got), ["duress"], "{got:?}");
        // The duress passphrase opens nothing else of the home.
        let o = run(
            &["--home", &rep, "contact", "list", "--json"],
            &[("VIGIL_PASSPHRASE_FILE", &duress)],
        );
        assert_error_object(&json_lines(&o)[0], "wrong_passphrase", 1);
        ok(&["--home", &rep, "checkin", "disarm"]);

        // Disarm: withdrawn, and nothing comes after the deadline.
        arm();
        let v = json_lines(&ok(&["--home", &rep, "checkin", "disarm", "--json"]));
        assert_eq!(v[0]["type"], "disarmed", "{v:?}");
        assert_eq!(v[0]["already_gone"], 0, "{v:?}");
        std::thread::sleep(std::time::Duration::from_secs(8));
        assert!(alerts_fetched(&fetch()).is_empty(), "a withdrawn alert never comes");
        assert!(
            !std::path::Path::new(&rep).join("checkin").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false),
            "no check-in file left"
        );
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// Issue 12, "a restart never releases early or forgets to release", driven with the commands:
/// the relay restarts before the deadline and the reporter's check-ins go on keeping the alert
/// sealed; then the reporter goes silent, the deadline passes while the relay is down, and after
/// the restart the alert is released, not at once but after the grace (the reporter's check-ins
/// could not get through while it was down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkin_alerts_survive_relay_restarts() {
    let Desk {
        relay,
        ngo,
        rep,
        card,
        _tmp,
    } = Desk::new().await;
    let relay_dir = _tmp.path().join("relay");
    let addr: std::net::SocketAddr = card.relay.parse().expect("addr");
    let restart = |dir: std::path::PathBuf| async move {
        vigil_relay::start(vigil_relay::RelayConfig::new(dir, addr))
            .await
            .expect("the relay starts again on its address")
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let alert = tmp.path().join("alert.json");
    std::fs::write(
        &alert,
        r#"{"kind":"disappearance","urgency":"urgent","title":"silent","occurred_at":"2026-12-03","narrative":"n"}"#,
    )
    .expect("write");
    let duress = tmp.path().join("duress");
    std::fs::write(&duress, "duress words\n").expect("write");
    let (alert, duress) = (
        alert.to_str().expect("utf8").to_string(),
        duress.to_str().expect("utf8").to_string(),
    );
    let (rep2, ngo2) = (rep.clone(), ngo.clone());
    blocking(move || {
        ok(&[
            "--home",
            &rep2,
            "checkin",
            "arm",
            "--to",
            "Desk",
            "--every",
            "4s",
            "--grace",
            "2s",
            "--alert",
            &alert,
            "--duress-passphrase-file",
            &duress,
        ]);
        ok(&["--home", &ngo2, "inbox", "fetch"]);
    })
    .await;
    let released = |ngo: String| {
        blocking(move || {
            json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]))
                .into_iter()
                .filter(|v| v["type"] == "fetched")
                .filter_map(|v| v["alert"]["reason"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
    };

    // A restart before the deadline: check-ins after it keep the alert sealed past deadlines.
    relay.shutdown().await.expect("shutdown");
    let relay = restart(relay_dir.clone()).await;
    for _ in 0..4 {
        let rep = rep.clone();
        blocking(move || ok(&["--home", &rep, "checkin", "--retry-for", "10s"])).await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    assert!(released(ngo.clone()).await.is_empty(), "still sealed");

    // Silence, and the deadline passes while the relay is down.
    relay.shutdown().await.expect("shutdown");
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let back = std::time::Instant::now();
    let relay = restart(relay_dir).await;
    let mut got = released(ngo.clone()).await;
    // Checked only while the grace since the restart lasts (a loaded machine may take that
    // long to start the relay and run the command).
    if back.elapsed() < std::time::Duration::from_secs(2) {
        assert!(got.is_empty(), "not released the moment the relay is back");
    }
    while got.is_empty() && back.elapsed() < std::time::Duration::from_secs(20) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        got = released(ngo.clone()).await;
    }
    assert_eq!(got, ["missed"], "released after the grace, never forgotten");
    assert!(back.elapsed() >= std::time::Duration::from_secs(2));
    relay.shutdown().await.expect("shutdown");
}

/// Issue 13: `report send --attach` scrubs a photo's metadata before anything is encrypted and
/// says what it removed; `--keep-metadata` keeps it; a directory attaches every file in it; the
/// copies wait in the outbox with their blobs (no attachment byte unencrypted in the home),
/// are uploaded then deposited, downloaded by the NGO's fetch, listed by `inbox show` and
/// written by `inbox export` exactly as sent; the relay's and the NGO's files hold none of it in
/// the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_scrubbed_queued_encrypted_delivered_and_exported() {
    let desk = Desk::new().await;
    let (rep, ngo) = (desk.rep.clone(), desk.ngo.clone());
    let desk_relay_dir = desk._tmp.path().join("relay");
    blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let report = report.to_str().expect("utf8");
        let dir = tmp.path().join("evidence");
        std::fs::create_dir(&dir).expect("dir");
        let (dirty, _) = common::jpeg_with_exif();
        std::fs::write(dir.join("car.jpg"), &dirty).expect("write");
        std::fs::write(dir.join("note.txt"), "TEXT-CANARY plate A123BV").expect("write");
        let lines = json_lines(&ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            report,
            "--attach",
            dir.to_str().expect("utf8"),
            "--queue-only",
            "--json",
        ]));
        let attached: Vec<&Value> = lines.iter().filter(|v| v["type"] == "attachment").collect();
        assert_eq!(attached.len(), 2, "{lines:?}");
        assert_eq!(attached[0]["name"], "car.jpg");
        assert_eq!(attached[0]["media_type"], "image/jpeg");
        assert_eq!(attached[0]["metadata"], "removed", "{:?}", attached[0]);
        assert!(attached[0]["size"].as_u64() < Some(dirty.len() as u64));
        assert_eq!(attached[1]["name"], "note.txt");
        assert_eq!(attached[1]["metadata"], "unknown");
        // In words, on a terminal or not.
        let o = ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            report,
            "--attach",
            dir.join("car.jpg").to_str().expect("utf8"),
            "--keep-metadata",
            "--queue-only",
        ]);
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(
            text.contains("Attached car.jpg") && text.contains("--keep-metadata"),
            "{text}"
        );
        assert_eq!(
            json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"])).len(),
            2
        );
        for (path, bytes) in every_file(std::path::Path::new(&rep)) {
            for needle in [&b"GPS-CANARY"[..], b"OWNER-CANARY", b"TEXT-CANARY"] {
                assert!(
                    common_find(&bytes, needle).is_none(),
                    "{} holds {}",
                    path.display(),
                    String::from_utf8_lossy(needle)
                );
            }
        }
        // Cancelling a queued report removes its blobs.
        let home = common::bins::home(&rep).expect("home");
        let blobs = home.vault().expect("vault").list("blob/").len();
        assert_eq!(blobs, 3, "two from the first report, one from the second");
        drop(home);
        let items = json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"]));
        // The first report's copy (two attachments); both were queued within a second, so the
        // list's order does not tell them apart.
        let first = items
            .iter()
            .find(|i| i["attachments"] == 2)
            .expect("the copy with two attachments");
        assert!(first["attachment_bytes"].as_u64() > Some(0));
        let id = first["id"].as_str().expect("id").to_string();
        ok(&["--home", &rep, "outbox", "cancel", &id]);
        let home = common::bins::home(&rep).expect("home");
        assert_eq!(home.vault().expect("vault").list("blob/").len(), 1);
        drop(home);

        // Send the one left (the photo with its metadata kept); then one with the scrubbed
        // photo and the note, straight away.
        ok(&["--home", &rep, "outbox", "flush"]);
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            report,
            "--attach",
            dir.to_str().expect("utf8"),
        ]);
        let home = common::bins::home(&rep).expect("home");
        assert!(
            home.vault().expect("vault").list("blob/").is_empty(),
            "delivered: the outbox keeps no blob"
        );
        drop(home);
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        let downloaded = fetched
            .iter()
            .filter(|v| v["type"] == "attachment_downloaded")
            .count();
        assert_eq!(downloaded, 3, "{fetched:?}");
        let reports: Vec<String> = fetched
            .iter()
            .filter(|v| v["type"] == "fetched")
            .map(|v| v["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(reports.len(), 2);
        let (_dirty, clean) = common::jpeg_with_exif();
        let mut seen_kept = false;
        for id in &reports {
            let shown = json_lines(&ok(&["--home", &ngo, "inbox", "show", id, "--json"]));
            let atts = shown[0]["attachments"]
                .as_array()
                .expect("attachments")
                .clone();
            assert!(atts.iter().all(|a| a["downloaded"] == true), "{atts:?}");
            let out = tmp.path().join(format!("export-{id}"));
            let v = json_lines(&ok(&[
                "--home",
                &ngo,
                "inbox",
                "export",
                id,
                "--out",
                out.to_str().expect("utf8"),
                "--json",
            ]));
            assert_eq!(v[0]["type"], "exported", "{v:?}");
            let photo = std::fs::read(out.join("car.jpg")).expect("exported photo");
            if atts.len() == 1 {
                assert_eq!(photo, dirty, "--keep-metadata: the original");
                assert_eq!(atts[0]["metadata_kept"], true);
                seen_kept = true;
            } else {
                assert_eq!(
                    photo, clean,
                    "scrubbed: the same image without its metadata"
                );
                assert_eq!(
                    std::fs::read_to_string(out.join("note.txt")).expect("note"),
                    "TEXT-CANARY plate A123BV"
                );
            }
            assert!(out.join(format!("report-{id}.json")).exists());
        }
        assert!(seen_kept);
        // The relay kept ciphertext only, and the NGO's home keeps it encrypted too.
        for home in [desk_relay_dir.as_path(), std::path::Path::new(&ngo)] {
            for (path, bytes) in every_file(home) {
                for needle in [&b"GPS-CANARY"[..], b"OWNER-CANARY", b"TEXT-CANARY"] {
                    assert!(
                        common_find(&bytes, needle).is_none(),
                        "{} holds {}",
                        path.display(),
                        String::from_utf8_lossy(needle)
                    );
                }
            }
        }
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// The largest file under `dir` (non-recursive) and its length.
fn largest_file(dir: &std::path::Path) -> Option<(std::path::PathBuf, u64)> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
        .max_by_key(|(_, len)| *len)
}

/// Issue 13: an NGO's fetch killed while it downloads an attachment goes on from where it
/// stopped at the next fetch (the partial blob is kept, encrypted, in the vault); a partial
/// blob damaged meanwhile is caught by the check against the signed hash and downloaded again
/// whole; the exported file is the one sent. Long transfers print plain progress lines when
/// stderr is not a terminal, and nothing extra under `--json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_attachment_download_resumes_and_long_transfers_show_progress() {
    let desk = Desk::new().await;
    let (rep, ngo) = (desk.rep.clone(), desk.ngo.clone());
    let relay_dir = desk._tmp.path().join("relay");
    blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let report = report.to_str().expect("utf8");
        // A video larger than the client scrubs in memory, with a GPS position in its `moov`
        // after 24 MiB of media data: scrubbed as it streams. The media is not compressible
        // and not all alike, so a byte in the wrong place shows.
        let mut media = vec![0u8; 24 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for b in media.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let bx = |kind: &[u8; 4], payload: &[u8]| -> Vec<u8> {
            let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(payload);
            v
        };
        let moov = bx(
            b"moov",
            &[
                bx(b"mvhd", &[0u8; 100]),
                bx(b"udta", &bx(b"\xa9xyz", b"+55.7558+037.6173/GPS-CANARY")),
            ]
            .concat(),
        );
        let original = [
            bx(b"ftyp", b"isom\0\0\x02\0isomiso2mp41"),
            bx(b"mdat", &media),
            moov,
        ]
        .concat();
        drop(media);
        let video = match vigil_client::scrub::scrub(&original).expect("scrub") {
            vigil_client::scrub::Outcome::Scrubbed { bytes, .. } => bytes,
            other => panic!("{other:?}"),
        };
        assert!(common_find(&video, b"GPS-CANARY").is_none());
        let path = tmp.path().join("detention.mp4");
        std::fs::write(&path, &original).expect("write");
        drop(original);
        let o = run(
            &[
                "--home",
                &rep,
                "report",
                "send",
                "--to",
                "Desk",
                "--file",
                report,
                "--attach",
                path.to_str().expect("utf8"),
            ],
            &[("VIGIL_PROGRESS_INTERVAL_MS", "20")],
        );
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{text}");
        assert!(
            text.contains("Encrypting detention.mp4: 24.0 MiB done in"),
            "{text}"
        );
        assert!(
            text.contains("Attached detention.mp4") && text.contains("removed"),
            "{text}"
        );
        // The blob: the video padded to its Padmé length, then encrypted (issue 14).
        assert!(text.contains("Sending to Desk: 24.5 MiB done in"), "{text}");
        assert!(!text.contains('\r'), "no terminal redraws in a log: {text}");
        // Issue 14: the relay's blob file says the hour it was written, not the second.
        let stamped: Vec<u64> = every_file(&relay_dir)
            .into_iter()
            .filter(|(p, bytes)| {
                bytes.len() > 20 << 20 && p.parent().is_some_and(|d| d.ends_with("blobs"))
            })
            .map(|(p, _)| {
                std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .expect("mtime")
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs()
            })
            .collect();
        assert_eq!(stamped.len(), 1, "one blob file at the relay");
        assert_eq!(stamped[0] % 3600, 0, "whole hours: {}", stamped[0]);

        // The NGO's fetch, killed part way through the download.
        let blobs = std::path::Path::new(&ngo).join("vault/b");
        let mut fetch = start(&["--home", &ngo, "inbox", "fetch", "--json"]);
        let cut = loop {
            if let Some((_, len)) = largest_file(&blobs).filter(|(_, l)| *l >= 2 << 20) {
                fetch.kill().expect("kill");
                break len;
            }
            assert!(
                fetch.try_wait().expect("wait").is_none(),
                "the fetch ended before it could be cut"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let _ = fetch.wait();
        assert!(cut < (24 << 20), "cut part way: {cut}");
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        let got: Vec<&Value> = fetched
            .iter()
            .filter(|v| v["type"] == "attachment_downloaded")
            .collect();
        assert_eq!(got.len(), 1, "{fetched:?}");
        let from = got[0]["resumed_from"].as_u64().expect("resumed, not again");
        assert!(from >= 2 << 20, "went on from {from}");
        let id = fetched
            .iter()
            .find(|v| v["type"] == "fetched")
            .and_then(|v| v["id"].as_str())
            .expect("the report")
            .to_string();
        let out = tmp.path().join("export");
        let o = run(
            &[
                "--home",
                &ngo,
                "inbox",
                "export",
                &id,
                "--out",
                out.to_str().expect("utf8"),
            ],
            &[("VIGIL_PROGRESS_INTERVAL_MS", "20")],
        );
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{text}");
        assert!(text.contains("Decrypting detention.mp4"), "{text}");
        assert!(
            std::fs::read(out.join("detention.mp4")).expect("exported") == video,
            "the exported file is the one sent"
        );

        // Again, with the partial blob damaged while the fetch was down.
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            report,
            "--attach",
            path.to_str().expect("utf8"),
        ]);
        let before: Vec<std::path::PathBuf> = std::fs::read_dir(&blobs)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        let mut fetch = start(&["--home", &ngo, "inbox", "fetch", "--json"]);
        let part = loop {
            let growing = std::fs::read_dir(&blobs)
                .expect("dir")
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| !before.contains(p))
                .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 2 << 20));
            if let Some(p) = growing {
                fetch.kill().expect("kill");
                break p;
            }
            assert!(
                fetch.try_wait().expect("wait").is_none(),
                "the fetch ended before it could be cut"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let _ = fetch.wait();
        let mut bytes = std::fs::read(&part).expect("partial blob");
        let n = bytes.len();
        bytes[n / 2] ^= 0x55;
        std::fs::write(&part, &bytes).expect("damage");
        let o = ok(&["--home", &ngo, "inbox", "fetch", "--json"]);
        let fetched = json_lines(&o);
        assert!(
            fetched
                .iter()
                .any(|v| v["type"] == "attachment_downloaded" && v["resumed_from"].is_number()),
            "{fetched:?}"
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).trim().is_empty(),
            "--json: nothing on stderr"
        );
        let id = fetched
            .iter()
            .find(|v| v["type"] == "fetched")
            .and_then(|v| v["id"].as_str())
            .expect("the report")
            .to_string();
        let out = tmp.path().join("export-2");
        ok(&[
            "--home",
            &ngo,
            "inbox",
            "export",
            &id,
            "--out",
            out.to_str().expect("utf8"),
        ]);
        assert!(
            std::fs::read(out.join("detention.mp4")).expect("exported") == video,
            "the damaged part was downloaded again"
        );
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// Issue 14: queued reports go one deposit per connection (each from a fresh endpoint), with a
/// random pause of 1-5 s between them that `--no-delay` (or `VIGIL_NO_DELAY`) skips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deposits_go_one_per_connection_with_a_random_pause() {
    let desk = Desk::new().await;
    let rep = desk.rep.clone();
    let before = desk.relay.stats().await.connections_accepted;
    let flushed = blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let report = report.to_str().expect("utf8");
        for _ in 0..2 {
            ok(&[
                "--home",
                &rep,
                "report",
                "send",
                "--to",
                "Desk",
                "--file",
                report,
                "--queue-only",
                // A reply mailbox is registered on a connection of its own (tests/replies.rs);
                // this test counts the deposits' connections.
                "--no-replies",
            ]);
        }
        let mut c = Command::new(common::bins::vigil());
        common::bins::as_script(&mut c);
        let o = c
            .args(["--home", &rep, "outbox", "flush", "--json"])
            .env_remove("VIGIL_HOME")
            .env_remove("VIGIL_NO_DELAY")
            .output()
            .expect("run vigil");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        json_lines(&o)
    })
    .await;
    let stored = flushed.iter().filter(|v| v["type"] == "stored").count();
    assert_eq!(stored, 2, "{flushed:?}");
    let pauses: Vec<u64> = flushed
        .iter()
        .filter(|v| v["type"] == "spacing")
        .map(|v| v["delay_ms"].as_u64().expect("delay_ms"))
        .collect();
    assert_eq!(
        pauses.len(),
        1,
        "one pause between two deposits: {flushed:?}"
    );
    assert!((1000..=5_000).contains(&pauses[0]), "{pauses:?}");
    let after = desk.relay.stats().await.connections_accepted;
    assert_eq!(after - before, 2, "one connection per deposit");
    desk.relay.shutdown().await.expect("shutdown");
}

/// Issue 13: a report larger than the relay takes is refused before any of it is uploaded, in
/// one line with the limit and the report's size; the copy stays queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_over_the_relays_limit_is_refused_up_front_with_both_sizes() {
    let desk = Desk::with_relay(|c| c.limits.max_report_bytes = 1 << 20).await;
    let rep = desk.rep.clone();
    let o = blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let big = tmp.path().join("recording.bin");
        std::fs::write(&big, vec![7u8; 2 << 20]).expect("write");
        run(
            &[
                "--home",
                &rep,
                "report",
                "send",
                "--to",
                "Desk",
                "--file",
                report.to_str().expect("utf8"),
                "--attach",
                big.to_str().expect("utf8"),
            ],
            &[],
        )
    })
    .await;
    assert!(!o.status.success());
    assert_one_error_line(&o);
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(
        text.contains("the relay takes at most 1 MiB per report; this one is 2.0 MiB"),
        "{text}"
    );
    assert_eq!(
        desk.relay.stats().await.blob_bytes_received,
        0,
        "nothing uploaded"
    );
    desk.relay.shutdown().await.expect("shutdown");
}

/// Attachment chunks have a rate of their own: with the per-address limits applied to loopback
/// and a deposit rate of 3 at once, then one a minute, and a fetch rate of 3 at once, a report
/// with a 12 MiB attachment (a quote, 12 chunks up, a deposit; a fetch, 12 chunks down) still
/// goes through at once, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_chunks_do_not_use_up_the_deposit_or_fetch_rate() {
    let desk = Desk::with_relay(|c| {
        c.limits.limit_loopback = true;
        c.limits.deposit_burst = 3;
        c.limits.deposits_per_minute = 1;
        c.limits.fetch_burst = 3;
        c.limits.fetches_per_minute = 1;
    })
    .await;
    let (rep, ngo) = (desk.rep.clone(), desk.ngo.clone());
    blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let big = tmp.path().join("recording.bin");
        let content: Vec<u8> = (0..12u32 << 20).map(|i| (i % 241) as u8).collect();
        std::fs::write(&big, &content).expect("write");
        ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            report.to_str().expect("utf8"),
            "--attach",
            big.to_str().expect("utf8"),
            "--no-retry",
        ]);
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        assert!(
            fetched
                .iter()
                .any(|v| v["type"] == "attachment_downloaded"
                    && v["bytes"].as_u64() > Some(12 << 20)),
            "{fetched:?}"
        );
    })
    .await;
    desk.relay.shutdown().await.expect("shutdown");
}

/// Issue 14, "More than one relay": two relays on 127.0.0.1, an NGO whose card lists both, and a
/// reporter holding that card.
struct TwoRelays {
    a: vigil_relay::RelayHandle,
    b: Option<vigil_relay::RelayHandle>,
    b_dir: std::path::PathBuf,
    b_addr: std::net::SocketAddr,
    ngo: String,
    rep: String,
    _tmp: tempfile::TempDir,
}

impl TwoRelays {
    async fn new() -> TwoRelays {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let start = |dir: std::path::PathBuf| async move {
            vigil_relay::start(vigil_relay::RelayConfig::new(
                dir,
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .await
            .expect("relay")
        };
        let a = start(root.join("relay-a")).await;
        let b = start(root.join("relay-b")).await;
        let p = |name: &str| root.join(name).to_str().expect("utf8").to_string();
        let (ngo, rep, card) = (p("ngo"), p("rep"), p("ngo.card"));
        let (a_addr, a_fp) = (a.local_addr().to_string(), a.fingerprint().to_string());
        let (b_addr, b_fp) = (b.local_addr().to_string(), b.fingerprint().to_string());
        let (ngo2, rep2) = (ngo.clone(), rep.clone());
        let created = blocking(move || {
            let o = ok(&[
                "--home",
                &ngo2,
                "ngo",
                "init",
                "--name",
                "Desk",
                "--relay",
                &a_addr,
                "--relay-fingerprint",
                &a_fp,
                "--relay",
                &b_addr,
                "--relay-fingerprint",
                &b_fp,
                "--card-out",
                &card,
                "--json",
            ]);
            ok(&["--home", &rep2, "contact", "add", &card]);
            json_lines(&o)
        })
        .await;
        let relays = &created[0]["relays"];
        assert_eq!(relays[0]["registered"], true, "{created:?}");
        assert_eq!(relays[1]["registered"], true, "{created:?}");
        TwoRelays {
            a,
            b_addr: b.local_addr(),
            b: Some(b),
            b_dir: root.join("relay-b"),
            ngo,
            rep,
            _tmp: tmp,
        }
    }

    fn b(&self) -> &vigil_relay::RelayHandle {
        self.b.as_ref().expect("relay B is running")
    }

    /// Stop relay B (its data stays).
    async fn stop_b(&mut self) {
        self.b
            .take()
            .expect("running")
            .shutdown()
            .await
            .expect("shutdown");
    }

    /// Start relay B again on its address, with its data and certificate.
    async fn restart_b(&mut self) {
        let config = vigil_relay::RelayConfig::new(self.b_dir.clone(), self.b_addr);
        self.b = Some(
            vigil_relay::start(config)
                .await
                .expect("relay B starts again"),
        );
    }

    async fn shutdown(self) {
        self.a.shutdown().await.expect("shutdown");
        if let Some(b) = self.b {
            b.shutdown().await.expect("shutdown");
        }
    }
}

/// Items waiting at a relay.
async fn waiting(relay: &vigil_relay::RelayHandle) -> u64 {
    relay.stats().await.store.items
}

/// Lines of stderr that start with `warning:`.
fn warnings(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_goes_to_every_relay_of_the_card_and_is_kept_once() {
    let desk = TwoRelays::new().await;
    let (rep, ngo) = (desk.rep.clone(), desk.ngo.clone());
    let (a_addr, b_addr) = (desk.a.local_addr().to_string(), desk.b_addr.to_string());
    let evidence = b"a statement, as a text file, to every relay".to_vec();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (report, note) = (tmp.path().join("r.json"), tmp.path().join("note.txt"));
    std::fs::write(&report, SMALL_REPORT).expect("write");
    std::fs::write(&note, &evidence).expect("write");
    let (report, note) = (
        report.to_str().expect("utf8").to_string(),
        note.to_str().expect("utf8").to_string(),
    );

    // Both relays named on the card, in order.
    let shown = {
        let ngo = ngo.clone();
        blocking(move || json_lines(&ok(&["--home", &ngo, "card", "show", "--json"]))).await
    };
    assert_eq!(
        shown[0]["relay"],
        a_addr.as_str(),
        "the first relay where it always was"
    );
    let relays: Vec<&str> = shown[0]["relays"]
        .as_array()
        .expect("relays")
        .iter()
        .map(|r| r["relay"].as_str().expect("relay"))
        .collect();
    assert_eq!(relays, [a_addr.as_str(), b_addr.as_str()]);

    let sent = blocking(move || {
        // `--no-replies`: `waiting` counts every item at a relay, and a receipt waits in its
        // reply mailbox until the reporter's `report status` (tests/replies.rs covers it).
        json_lines(&ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            &report,
            "--no-replies",
            "--attach",
            &note,
            "--json",
        ]))
    })
    .await;
    let delivery = sent
        .iter()
        .find(|v| v["type"] == "delivery")
        .unwrap_or_else(|| panic!("{sent:?}"));
    let states: Vec<(&str, &str)> = delivery["relays"]
        .as_array()
        .expect("relays")
        .iter()
        .map(|r| {
            (
                r["relay"].as_str().expect("relay"),
                r["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [(a_addr.as_str(), "stored"), (b_addr.as_str(), "stored")]
    );
    assert_eq!(
        sent.iter().filter(|v| v["type"] == "stored").count(),
        2,
        "{sent:?}"
    );
    // One envelope at each relay, and the attachment uploaded to each.
    assert_eq!(waiting(&desk.a).await, 1);
    assert_eq!(waiting(desk.b()).await, 1);
    assert!(desk.a.stats().await.store.blobs >= 1);
    assert!(desk.b().stats().await.store.blobs >= 1);

    let out = tmp.path().join("export");
    let out2 = out.clone();
    let (fetched, listed) = blocking(move || {
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        let listed = json_lines(&ok(&["--home", &ngo, "inbox", "list", "--json"]));
        let id = listed[0]["id"].as_str().expect("id").to_string();
        ok(&[
            "--home",
            &ngo,
            "inbox",
            "export",
            &id,
            "--out",
            out2.to_str().expect("utf8"),
        ]);
        (fetched, listed)
    })
    .await;
    assert_eq!(
        fetched.iter().filter(|v| v["type"] == "fetched").count(),
        1,
        "{fetched:?}"
    );
    assert_eq!(
        fetched.iter().filter(|v| v["type"] == "duplicate").count(),
        1,
        "{fetched:?}"
    );
    assert_eq!(
        fetched.iter().filter(|v| v["type"] == "replay").count(),
        0,
        "{fetched:?}"
    );
    let done = fetched
        .iter()
        .find(|v| v["type"] == "fetch_done")
        .expect("done");
    assert_eq!(
        (done["stored"].as_u64(), done["duplicates"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(listed.len(), 1, "exactly one copy in the inbox: {listed:?}");
    assert_eq!(
        std::fs::read(out.join("note.txt")).expect("exported"),
        evidence
    );
    // Acknowledged at both relays: each deleted its copy.
    assert_eq!(waiting(&desk.a).await, 0);
    assert_eq!(waiting(desk.b()).await, 0);
    desk.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_down_delays_only_its_copy_and_the_fetch_goes_on() {
    let mut desk = TwoRelays::new().await;
    let (rep, ngo) = (desk.rep.clone(), desk.ngo.clone());
    let (a_addr, b_addr) = (desk.a.local_addr().to_string(), desk.b_addr.to_string());
    desk.stop_b().await;

    // Two reports are sent: relay A stores each, relay B's copies stay queued, said in one line
    // (and, under --json, in the delivery object).
    let rep2 = rep.clone();
    let (send, send_json, queued) = blocking(move || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let report = tmp.path().join("r.json");
        std::fs::write(&report, SMALL_REPORT).expect("write");
        let report = report.to_str().expect("utf8");
        // Another report, not the same one again (that would be a replay).
        let other = tmp.path().join("r2.json");
        std::fs::write(&other, SMALL_REPORT.replace("\"t\"", "\"second\"")).expect("write");
        let other = other.to_str().expect("utf8");
        // `--no-replies`: `waiting` counts every item at a relay, and a receipt waits in its
        // reply mailbox until the reporter's `report status` (tests/replies.rs covers it).
        let send = run(
            &[
                "--home",
                &rep2,
                "report",
                "send",
                "--to",
                "Desk",
                "--file",
                report,
                "--no-replies",
            ],
            &[],
        );
        let send_json = run(
            &[
                "--home",
                &rep2,
                "report",
                "send",
                "--to",
                "Desk",
                "--file",
                other,
                "--no-replies",
                "--json",
            ],
            &[],
        );
        let queued = json_lines(&ok(&["--home", &rep2, "outbox", "list", "--json"]));
        (send, send_json, queued)
    })
    .await;
    for o in [&send, &send_json] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // (The other warning is the unverified safety number's.)
    let w: Vec<_> = warnings(&send)
        .into_iter()
        .filter(|l| l.contains("relay"))
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(&b_addr) && w[0].contains("outbox flush"),
        "{w:?}"
    );
    let lines = json_lines(&send_json);
    let delivery = lines
        .iter()
        .find(|v| v["type"] == "delivery")
        .expect("delivery");
    assert_eq!(delivery["relays"][0]["relay"], a_addr.as_str());
    assert_eq!(delivery["relays"][0]["state"], "stored");
    assert_eq!(delivery["relays"][1]["relay"], b_addr.as_str());
    assert_eq!(delivery["relays"][1]["state"], "queued");
    assert_eq!(queued.len(), 2, "the copies for B wait: {queued:?}");
    assert!(
        queued.iter().all(|q| q["relay"] == b_addr.as_str()),
        "{queued:?}"
    );
    assert_eq!(waiting(&desk.a).await, 2);

    // The NGO fetches with B down: one warning naming it, exit 0, the report is here.
    let ngo2 = ngo.clone();
    let (fetch, status) = blocking(move || {
        let fetch = run(&["--home", &ngo2, "inbox", "fetch"], &[]);
        let status = run(&["--home", &ngo2, "inbox", "status", "--json"], &[]);
        (fetch, status)
    })
    .await;
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let w = warnings(&fetch);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(&b_addr), "{w:?}");
    assert!(
        String::from_utf8_lossy(&fetch.stderr).contains("Fetched 2"),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let st = json_lines(&status);
    assert_eq!(
        st.iter().filter(|v| v["type"] == "mailbox_status").count(),
        1,
        "{st:?}"
    );
    assert!(
        st.iter()
            .any(|v| v["type"] == "mailbox_status_unavailable" && v["relay"] == b_addr.as_str()),
        "{st:?}"
    );
    assert_eq!(waiting(&desk.a).await, 0);

    // B is back: the flush delivers its copies there, and the next fetch keeps one copy of each.
    desk.restart_b().await;
    let flushed = {
        let rep = rep.clone();
        blocking(move || {
            let flushed = json_lines(&ok(&["--home", &rep, "outbox", "flush", "--json"]));
            let left = json_lines(&ok(&["--home", &rep, "outbox", "list", "--json"]));
            assert!(left.is_empty(), "{left:?}");
            flushed
        })
        .await
    };
    let stored: Vec<_> = flushed.iter().filter(|v| v["type"] == "stored").collect();
    assert_eq!(stored.len(), 2, "{flushed:?}");
    assert!(
        stored.iter().all(|s| s["relay"] == b_addr.as_str()),
        "{flushed:?}"
    );
    assert_eq!(waiting(desk.b()).await, 2);
    let (fetched, listed) = blocking(move || {
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));
        let listed = json_lines(&ok(&["--home", &ngo, "inbox", "list", "--json"]));
        (fetched, listed)
    })
    .await;
    assert_eq!(
        fetched.iter().filter(|v| v["type"] == "fetched").count(),
        0,
        "{fetched:?}"
    );
    assert_eq!(
        fetched.iter().filter(|v| v["type"] == "duplicate").count(),
        2,
        "{fetched:?}"
    );
    assert_eq!(listed.len(), 2, "no second copy of either: {listed:?}");
    assert_eq!(waiting(desk.b()).await, 0, "B's copy acknowledged");
    desk.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_are_added_and_removed_and_init_checks_its_pairs() {
    let desk = Desk::new().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let second = vigil_relay::start(vigil_relay::RelayConfig::new(
        tmp.path().join("relay-b"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let (a_addr, b_addr, b_fp) = (
        desk.relay.local_addr().to_string(),
        second.local_addr().to_string(),
        second.fingerprint().to_string(),
    );
    let card = tmp
        .path()
        .join("ngo.card")
        .to_str()
        .expect("utf8")
        .to_string();
    let report = tmp.path().join("r.json");
    std::fs::write(&report, SMALL_REPORT).expect("write");
    let report = report.to_str().expect("utf8").to_string();
    let (ngo, rep) = (desk.ngo.clone(), desk.rep.clone());
    let (a2, b2) = (a_addr.clone(), b_addr.clone());
    let fetched = blocking(move || {
        let (a_addr, b_addr) = (a2, b2);
        // A --relay without its fingerprint is a usage error, in one line.
        let fresh = tempfile::tempdir().expect("tempdir");
        let fresh = fresh.path().join("ngo");
        let o = run(
            &[
                "--home",
                fresh.to_str().expect("utf8"),
                "ngo",
                "init",
                "--name",
                "X",
                "--relay",
                &a_addr,
                "--relay-fingerprint",
                &b_fp,
                "--relay",
                &b_addr,
            ],
            &[],
        );
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_one_error_line(&o);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--relay-fingerprint once"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );

        // Add relay B: registered there, then the card names both.
        let added = json_lines(&ok(&[
            "--home",
            &ngo,
            "ngo",
            "set-relay",
            "--add-relay",
            &b_addr,
            "--relay-fingerprint",
            &b_fp,
            "--card-out",
            &card,
            "--json",
        ]));
        assert_eq!(
            added[0]["changes"],
            serde_json::json!([format!("relay {b_addr} added")]),
            "{added:?}"
        );
        assert_eq!(
            added[0]["relay"],
            a_addr.as_str(),
            "the first relay stays first"
        );
        assert_eq!(added[0]["relays"][1]["relay"], b_addr.as_str());
        // Twice is refused, and so is removing a relay the card does not have.
        let o = run(
            &[
                "--home",
                &ngo,
                "ngo",
                "set-relay",
                "--add-relay",
                &b_addr,
                "--relay-fingerprint",
                &b_fp,
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        let o = run(
            &[
                "--home",
                &ngo,
                "ngo",
                "set-relay",
                "--remove-relay",
                "127.0.0.1:9",
            ],
            &[],
        );
        assert_ne!(o.status.code(), Some(0));
        assert_one_error_line(&o);
        // --add-relay needs its fingerprint.
        let o = run(
            &[
                "--home",
                &ngo,
                "ngo",
                "set-relay",
                "--add-relay",
                "127.0.0.1:9",
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(2));

        // The reporter takes the new card; a report goes to both relays and arrives once.
        let contact = json_lines(&ok(&["--home", &rep, "contact", "add", &card, "--json"]));
        assert!(
            contact[0]["changes"].to_string().contains(&b_addr),
            "{contact:?}"
        );
        // `--no-replies`: `waiting` counts every item at a relay, and a receipt waits in its
        // reply mailbox until the reporter's `report status` (tests/replies.rs covers it).
        let sent = json_lines(&ok(&[
            "--home",
            &rep,
            "report",
            "send",
            "--to",
            "Desk",
            "--file",
            &report,
            "--no-replies",
            "--json",
        ]));
        assert_eq!(
            sent.iter().filter(|v| v["type"] == "stored").count(),
            2,
            "{sent:?}"
        );
        let fetched = json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]));

        // Remove relay A: B becomes the first; the last relay cannot go.
        let removed = json_lines(&ok(&[
            "--home",
            &ngo,
            "ngo",
            "set-relay",
            "--remove-relay",
            &a_addr,
            "--card-out",
            &card,
            "--json",
        ]));
        assert_eq!(removed[0]["relay"], b_addr.as_str(), "{removed:?}");
        assert_eq!(removed[0]["relays"].as_array().map(Vec::len), Some(1));
        let shown = json_lines(&ok(&["--home", &ngo, "card", "show", "--json"]));
        assert_eq!(shown[0]["relay"], b_addr.as_str());
        let o = run(
            &[
                "--home",
                &ngo,
                "ngo",
                "set-relay",
                "--remove-relay",
                &b_addr,
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_one_error_line(&o);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("only relay"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        fetched
    })
    .await;
    assert_eq!(
        fetched.iter().filter(|v| v["type"] == "fetched").count(),
        1,
        "{fetched:?}"
    );
    assert_eq!(
        fetched.iter().filter(|v| v["type"] == "duplicate").count(),
        1,
        "{fetched:?}"
    );
    assert_eq!(waiting(&desk.relay).await, 0);
    assert_eq!(waiting(&second).await, 0);
    second.shutdown().await.expect("shutdown");
    desk.relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_unreachable_at_init_is_registered_by_a_later_fetch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let a = vigil_relay::start(vigil_relay::RelayConfig::new(
        root.join("a"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let b = vigil_relay::start(vigil_relay::RelayConfig::new(
        root.join("b"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let (b_addr, b_fp) = (b.local_addr(), b.fingerprint().to_string());
    b.shutdown().await.expect("shutdown");
    let (a_addr, a_fp) = (a.local_addr().to_string(), a.fingerprint().to_string());
    let ngo = root.join("ngo").to_str().expect("utf8").to_string();
    let (ngo2, b2) = (ngo.clone(), b_addr.to_string());
    let init = blocking(move || {
        run(
            &[
                "--home",
                &ngo2,
                "ngo",
                "init",
                "--name",
                "Desk",
                "--relay",
                &a_addr,
                "--relay-fingerprint",
                &a_fp,
                "--relay",
                &b2,
                "--relay-fingerprint",
                &b_fp,
            ],
            &[],
        )
    })
    .await;
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let w = warnings(&init);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(&b_addr.to_string()) && w[0].contains("inbox fetch"),
        "{w:?}"
    );
    assert!(
        String::from_utf8_lossy(&init.stderr).contains("NGO inbox \"Desk\" created"),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let b = vigil_relay::start(vigil_relay::RelayConfig::new(root.join("b"), b_addr))
        .await
        .expect("relay B starts again");
    assert_eq!(b.stats().await.store.mailboxes, 0);
    let fetched =
        blocking(move || json_lines(&ok(&["--home", &ngo, "inbox", "fetch", "--json"]))).await;
    assert!(
        fetched
            .iter()
            .any(|v| v["type"] == "registered" && v["relay"] == b_addr.to_string().as_str()),
        "{fetched:?}"
    );
    assert_eq!(b.stats().await.store.mailboxes, 1, "registered at B now");
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}
