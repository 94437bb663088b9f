//! `vigil age [-e]`: encrypt to recipients or a passphrase, binary or armored.

use std::io::{self, IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use rand::rngs::OsRng;
use secrecy::SecretString;
use serde_json::json;
use vigil_core::age::{self, AnyRecipient, ArmoredWriter};
use zeroize::Zeroizing;

use super::args::AgeArgs;
use super::files::{age_io, load_identities, open_input, read_key_file, CountingWriter, Sink};
use super::passphrase::get_passphrase;

pub(super) fn encrypt(args: &AgeArgs, json: bool) -> Result<()> {
    let use_pass = args.passphrase || args.passphrase_file.is_some();
    let has_keys = !args.recipients.is_empty()
        || !args.recipients_files.is_empty()
        || !args.identities.is_empty();
    if use_pass && has_keys {
        bail!("-p/--passphrase cannot be combined with -r, -R or -i; encrypt to keys or to a passphrase, not both");
    }
    if !use_pass && !has_keys {
        bail!(
            "nothing to encrypt to; pass -r RECIPIENT, -R FILE, -i FILE or -p (to decrypt, add -d)"
        );
    }
    if json && args.output.is_none() {
        bail!("with --json, pass -o OUT so the ciphertext is not mixed into the JSON output");
    }
    if args.output.is_none() && !args.armor && io::stdout().is_terminal() {
        bail!("refusing to write binary ciphertext to a terminal; add -a for text output or -o OUT to write a file");
    }

    // Gather recipients before touching the output.
    let mut recipients = Vec::new();
    for r in &args.recipients {
        recipients.push(
            r.parse::<AnyRecipient>()
                .with_context(|| format!("recipient {r:?}"))?,
        );
    }
    for f in &args.recipients_files {
        let text = read_key_file(Some(f))?;
        recipients.extend(
            age::parse_recipients_file(&text)
                .with_context(|| format!("recipients file {}", f.display()))?,
        );
    }
    for id in load_identities(&args.identities)? {
        recipients.push(id.to_public());
    }
    let passphrase = if use_pass {
        Some(get_passphrase(args, true)?)
    } else {
        None
    };

    let mut input = open_input(args.input.as_deref())?;
    let mut sink = Sink::open(args.output.as_deref())?;
    let written = {
        let out = CountingWriter::new(sink.writer()?);
        let out = if args.armor {
            let w = start_encryption(
                &recipients,
                passphrase.as_ref(),
                args.work_factor,
                ArmoredWriter::new(out),
            )?;
            pump(&mut input, w)?.finish()?
        } else {
            let w = start_encryption(&recipients, passphrase.as_ref(), args.work_factor, out)?;
            pump(&mut input, w)?
        };
        let mut out = out;
        out.flush()?;
        out.count
    };
    let dest = sink.commit()?;
    if json {
        println!(
            "{}",
            json!({"type": "age_encrypted", "data": {
                "output": dest.map(|p| p.display().to_string()),
                "bytes": written, "armor": args.armor,
                "recipients": recipients.len(), "passphrase": passphrase.is_some()}})
        );
    }
    Ok(())
}

fn start_encryption<W: Write>(
    recipients: &[AnyRecipient],
    passphrase: Option<&SecretString>,
    work_factor: u8,
    out: W,
) -> Result<age::StreamWriter<W>> {
    Ok(match passphrase {
        Some(p) => age::encrypt_with_passphrase(p, work_factor, out, &mut OsRng)?,
        None => age::encrypt(recipients, out, &mut OsRng)?,
    })
}

/// Copies all of `input` into the encryptor and finishes it.
fn pump<W: Write>(input: &mut dyn Read, mut w: age::StreamWriter<W>) -> Result<W> {
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("cannot read the input")),
        };
        w.write_all(&buf[..n]).map_err(age_io)?;
    }
    Ok(w.finish()?)
}
