//! `vigil age keygen`: a new identity file (like `age-keygen`), or with `-y` the recipients
//! of an existing one.

use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use rand::rngs::OsRng;
use secrecy::ExposeSecret;
use serde_json::json;
use vigil_core::age::{self, hybrid, x25519, AnyIdentity};
use zeroize::Zeroizing;

use super::args::KeygenArgs;
use super::files::{read_key_file, write_new_file};

pub(super) fn keygen(mut k: KeygenArgs, json: bool) -> Result<()> {
    if k.output.as_deref() == Some(Path::new("-")) {
        k.output = None;
    }
    if json && k.output.is_none() {
        bail!("with --json, pass -o FILE so key material is not mixed into the JSON output");
    }
    if k.convert {
        let text = read_key_file(k.input.as_deref())?;
        let ids = age::parse_identity_file(&text).map_err(anyhow::Error::new)?;
        let recipients: Vec<String> = ids.iter().map(|i| i.to_public().to_string()).collect();
        let mut body = recipients.join("\n");
        body.push('\n');
        match &k.output {
            Some(path) => write_new_file(path, body.as_bytes(), 0o644)?,
            None => io::stdout().lock().write_all(body.as_bytes())?,
        }
        if json {
            println!(
                "{}",
                json!({"type": "age_recipients", "data": {"recipients": recipients,
                       "output": k.output.as_ref().map(|p| p.display().to_string())}})
            );
        }
        return Ok(());
    }

    let id: AnyIdentity = if k.pq {
        hybrid::Identity::generate(&mut OsRng).into()
    } else {
        x25519::Identity::generate(&mut OsRng).into()
    };
    let public = id.to_public().to_string();
    let secret = id.to_string_secret();
    let content = Zeroizing::new(format!(
        "# created: {}\n# public key: {public}\n{}\n",
        rfc3339_utc(SystemTime::now()),
        secret.expose_secret()
    ));
    match &k.output {
        Some(path) => write_new_file(path, content.as_bytes(), 0o600)?,
        None => {
            let mut out = io::stdout().lock();
            out.write_all(content.as_bytes())?;
            out.flush()?;
        }
    }
    if json {
        println!(
            "{}",
            json!({"type": "age_keygen", "data": {"public_key": public,
                   "post_quantum": k.pq,
                   "output": k.output.as_ref().map(|p| p.display().to_string())}})
        );
    } else {
        eprintln!("Public key: {public}");
    }
    Ok(())
}

/// Formats `t` as RFC 3339 in UTC, e.g. `2026-11-23T12:34:56Z`.
pub(super) fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    vigil_core::civil::format_rfc3339(secs)
}
