//! `vigil demo`: the whole flow on this machine, with a sentence for each step: the reporter and
//! both NGOs in this process, the relay as its own program (`vigil-relay`, a child process, see
//! `relay_child`) with its data in a temporary directory. Nothing leaves this machine: the relay
//! listens on 127.0.0.1.

mod relay_child;

use super::Ctx;
use crate::cli::{AddStaffArgs, ContactAddArgs, DemoArgs, NgoInitArgs, ReportSendArgs};
use crate::home::Home;
use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;

const BUILTIN_SAMPLE: &str = include_str!("../../sample_report.json");

/// Find a fixture report: the flag, else `../shared/fixtures/reports/` beside the checkout.
fn pick_report(flag: Option<PathBuf>) -> Option<PathBuf> {
    if flag.is_some() {
        return flag;
    }
    let candidates = [
        PathBuf::from("../shared/fixtures/reports/05-relative-detained-as-leverage.json"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/reports/05-relative-detained-as-leverage.json"),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

/// Run the demo.
pub async fn run(args: DemoArgs, out: Output) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("vigil-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let root = tmp.path().to_path_buf();
    // Each home is encrypted like a real one; the demo's homes are thrown away, so their
    // passphrase is random and lives only in this process.
    let pass = {
        let mut b = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        secrecy::SecretString::from(hex::encode(b))
    };
    let open = |dir: std::path::PathBuf| -> Result<Home> {
        Ok(Home::open(dir)?.with_passphrase(pass.clone()))
    };
    let step = |n: u32, text: &str| {
        out.say(format!("\n[{n}] {text}"));
        out.emit(json!({"type": "demo_step", "step": n, "text": text}));
    };

    step(1, "Starting a relay on 127.0.0.1 (sled store and a fresh self-signed certificate in a temporary directory).");
    let relay_dir = root.join("relay");
    let relay = relay_child::RelayChild::start(&relay_dir, &root.join("relay.log"), out).await?;
    let addr = relay.addr.clone();
    let fp = relay.fingerprint;
    out.say(format!(
        "    relay program {} (a child process), at {addr}, certificate fingerprint {fp}",
        relay.program.display()
    ));

    let ngo_names = ["Memorial Caucasus desk", "Caucasus Legal Aid (demo)"];
    let mut cards = Vec::new();
    for (i, name) in ngo_names.iter().enumerate() {
        step(2 + i as u32, &format!("NGO \"{name}\" creates its inbox: keys, a mailbox at the relay, a signed recipient card; then adds a second staff key."));
        let ctx = Ctx {
            home: open(root.join(format!("ngo{}", i + 1)))?,
            out,
        };
        let card_path = root.join(format!("ngo{}.card", i + 1));
        super::ngo::init(
            &ctx,
            NgoInitArgs {
                name: name.to_string(),
                relay: vec![addr.clone()],
                relay_fingerprint: vec![fp.to_string()],
                card_out: None,
                staff: "duty lawyer".into(),
                classic_keys: false,
                validity: Default::default(),
            },
        )
        .await?;
        super::ngo::add_staff(
            &ctx,
            AddStaffArgs {
                name: "night desk".into(),
                recipient: None,
                card_out: Some(card_path.clone()),
                validity: Default::default(),
            },
        )?;
        cards.push(card_path);
    }

    step(4, "The reporter imports both cards and compares the safety numbers with the NGOs out of band.");
    let reporter = Ctx {
        home: open(root.join("reporter"))?,
        out,
    };
    for c in &cards {
        super::contact::add(
            &reporter,
            ContactAddArgs {
                card: c.clone(),
                replace: false,
            },
        )?;
    }

    let report_path = match pick_report(args.file) {
        Some(p) => p,
        None => {
            let p = root.join("sample-report.json");
            std::fs::write(&p, BUILTIN_SAMPLE)?;
            p
        }
    };
    let report_title = vigil_core::report::Report::from_json(&std::fs::read(&report_path)?)?.title;
    step(5, &format!("The reporter signs {} and encrypts one copy per NGO; each copy goes to the relay, which confirms only after it is on disk.", report_path.display()));
    super::report::send(
        &reporter,
        ReportSendArgs {
            to: ngo_names.iter().map(|s| s.to_string()).collect(),
            file: Some(report_path.clone()),
            queue_only: false,
            attach: Vec::new(),
            keep_metadata: false,
            replies_for: std::time::Duration::from_secs(90 * 86_400),
            no_replies: false,
            retry: crate::cli::RetryArgs::default(),
        },
    )
    .await?;

    for (i, name) in ngo_names.iter().enumerate() {
        step(6 + i as u32, &format!("NGO \"{name}\" fetches: decrypts, checks the reporter's signature, stores the report locally, then acknowledges so the relay deletes its copy."));
        let ctx = Ctx {
            home: open(root.join(format!("ngo{}", i + 1)))?,
            out,
        };
        let got = super::inbox::fetch(&ctx).await?;
        for id in &got.stored {
            super::inbox::show(&ctx, id)?;
        }
    }

    step(8, "Checking the relay: acknowledged copies are deleted, and its files never held the report's text.");
    for (i, name) in ngo_names.iter().enumerate() {
        let ngo = crate::state::Ngo::load(&open(root.join(format!("ngo{}", i + 1)))?)?;
        let client =
            crate::relay::RelayClient::connect_pinned(&ngo.config.relay, &ngo.config.pinned())
                .await?;
        let left = client.fetch(ngo.mailbox_key.as_dalek(), 64).await?;
        client.close().await;
        out.say(format!(
            "    mailbox of \"{}\": {} left at the relay",
            name,
            crate::output::count(left.len() as u64, "item", "items")
        ));
        if !left.is_empty() {
            anyhow::bail!("the relay still holds acknowledged items; this is a bug");
        }
    }
    // Stopped (SIGTERM: the relay flushes its store and exits) before its files are read.
    relay.stop().await?;
    let title_found = relay_files_contain(&relay_dir, report_title.as_bytes())?;
    out.say(format!(
        "    the report title {} in any file under the relay's data directory",
        if title_found {
            "WAS FOUND"
        } else {
            "appears nowhere"
        }
    ));
    if title_found {
        anyhow::bail!("plaintext reached the relay's disk; this is a bug");
    }
    if args.keep {
        let kept = tmp.keep();
        out.say(format!("Demo files kept in {}", kept.display()));
    }
    out.say("\nDemo finished.");
    out.emit(json!({"type": "demo_done"}));
    Ok(())
}

/// Whether any file below `dir` contains `needle` (the demo's plaintext check).
fn relay_files_contain(dir: &std::path::Path, needle: &[u8]) -> Result<bool> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)?
                .windows(needle.len())
                .any(|w| w == needle)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
