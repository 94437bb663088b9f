//! How long `vigil panic` takes: until the keys are gone (what matters at a checkpoint) and
//! until the whole home is gone, on a full NGO inbox and a full reporter outbox. The homes are
//! laid out as the client lays them out since issue 12 (the vault: `vault/key` and one sealed
//! record per piece of state under `vault/r/`, plus the index), with files of realistic sizes
//! (their content is random: destruction does not read it).

use crate::report::Report;
use anyhow::Result;
use rand::RngCore;
use std::path::Path;
use vigil_client::commands::panic::destroy;

/// What an age X25519 record adds to its payload (header with one stanza, MAC, tag, the name).
const RECORD_OVERHEAD: usize = 260;

/// The vault files that hold `records` (logical name, payload size): the key file, one record
/// file each (named, as the client names them, by 64 hex digits), and the index naming them.
fn vault_layout(records: &[(String, usize)]) -> Vec<(String, usize)> {
    let mut files = vec![("vault/key".to_string(), 420)];
    let mut index = 0;
    for (name, size) in records {
        // An HMAC in the client; any 64 hex digits do here.
        let mut h = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut h);
        let hashed: String = h.iter().map(|b| format!("{b:02x}")).collect();
        files.push((format!("vault/r/{hashed}"), size + RECORD_OVERHEAD));
        index += name.len() + 1;
    }
    files.push(("vault/r/index".to_string(), index + RECORD_OVERHEAD));
    files
}

fn fill(root: &Path, records: &[(String, usize)]) -> Result<()> {
    let files = vault_layout(records);
    let mut buf = Vec::new();
    for (rel, size) in &files {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        buf.resize(*size, 0);
        rand::thread_rng().fill_bytes(&mut buf);
        std::fs::write(&p, &buf)?;
    }
    Ok(())
}

/// `inbox_reports` reports of 20 KB with their metadata and replay records under an NGO home;
/// `outbox_items` copies of 200 KB under a reporter home.
pub fn run(inbox_reports: usize, outbox_items: usize, out: &mut Report) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let ngo = tmp.path().join("ngo");
    let mut files: Vec<(String, usize)> = vec![
        ("ngo/identity".into(), 64),
        ("ngo/mailbox".into(), 64),
        ("ngo/config".into(), 1_500),
        ("ngo/card".into(), 1_200),
    ];
    for s in 0..3 {
        files.push((format!("ngo/staff/staff{s}.key"), 80));
    }
    for i in 0..inbox_reports {
        files.push((format!("inbox/env/{i:016x}"), 20_000));
        files.push((format!("inbox/meta/{i:016x}"), 60));
        files.push((format!("inbox/seen/{i:064x}"), 80));
    }
    fill(&ngo, &files)?;
    measure(&ngo, "inbox", inbox_reports, out);

    let rep = tmp.path().join("reporter");
    let mut files: Vec<(String, usize)> = vec![("reporter/key".into(), 64)];
    for c in 0..5 {
        files.push((format!("contacts/{c:024x}"), 900));
    }
    for i in 0..outbox_items {
        files.push((format!("outbox/{i:032x}"), 200_000));
    }
    fill(&rep, &files)?;
    measure(&rep, "outbox", outbox_items, out);
    Ok(())
}

/// Destroy `root` and record how long it took, as `panic_<what>_...`.
fn measure(root: &Path, what: &str, count: usize, out: &mut Report) {
    let d = destroy(root);
    let unit = if what == "inbox" { "reports" } else { "items" };
    out.set(&format!("panic_{what}_{unit}"), count as f64);
    out.set(&format!("panic_{what}_keys_ms"), d.keys_ms as f64);
    out.set(&format!("panic_{what}_total_ms"), d.total_ms as f64);
}
