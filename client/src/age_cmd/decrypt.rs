//! `vigil age -d`: decrypt with identities or a passphrase; armor is detected.

use std::io::{self, Read, Write};

use anyhow::{bail, Context, Result};
use serde_json::json;
use vigil_core::age::{AgeError, Decryptor};
use zeroize::Zeroizing;

use super::args::AgeArgs;
use super::files::{age_io, load_identities, open_input, Sink};
use super::passphrase::get_passphrase;

pub(super) fn decrypt(args: &AgeArgs, json: bool) -> Result<()> {
    if !args.recipients.is_empty() || !args.recipients_files.is_empty() {
        bail!("-r and -R are for encrypting; to decrypt pass -i with your identity file (or -p)");
    }
    if args.armor {
        bail!("-a is for encrypting; armor is detected automatically when decrypting");
    }
    if json && args.output.is_none() {
        bail!("with --json, pass -o OUT so the plaintext is not mixed into the JSON output");
    }
    let use_pass = args.passphrase || args.passphrase_file.is_some();
    if use_pass && !args.identities.is_empty() {
        bail!("-p/--passphrase cannot be combined with -i; use one or the other");
    }
    let identities = load_identities(&args.identities)?;

    let input = open_input(args.input.as_deref())?;
    let decryptor = Decryptor::new(input)?;
    let mut reader = if decryptor.is_passphrase() {
        if !identities.is_empty() {
            return Err(AgeError::PassphraseRequired.into());
        }
        let pass = get_passphrase(args, false)?;
        decryptor.decrypt_with_passphrase(&pass, args.max_work_factor)?
    } else {
        if use_pass {
            return Err(AgeError::NotPassphraseEncrypted.into());
        }
        if identities.is_empty() {
            bail!("this file is encrypted to a key; pass -i with your identity file (AGE-SECRET-KEY-1...)");
        }
        decryptor.decrypt(&identities)?
    };

    // The output is opened only once the header verified, so a wrong key leaves nothing.
    let mut sink = Sink::open(args.output.as_deref())?;
    let written = {
        let mut out = sink.writer()?;
        let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let err = age_io(e);
                    return Err(if args.output.is_none() && total > 0 {
                        err.context("decryption failed part-way; the plaintext already written to stdout is authentic but incomplete")
                    } else {
                        err
                    });
                }
            };
            out.write_all(&buf[..n])
                .context("cannot write the output")?;
            total += n as u64;
        }
        out.flush().context("cannot write the output")?;
        total
    };
    let dest = sink.commit()?;
    if json {
        println!(
            "{}",
            json!({"type": "age_decrypted", "data": {
                "output": dest.map(|p| p.display().to_string()), "bytes": written}})
        );
    }
    Ok(())
}
