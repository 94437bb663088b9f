//! Where a passphrase comes from: `--passphrase-file`, the terminal, or
//! [`PASSPHRASE_FILE_ENV`] for scripts.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use secrecy::{ExposeSecret, SecretString};

use super::args::AgeArgs;

/// Environment variable naming a file that holds the passphrase, for scripts (used with `-p`
/// when no terminal is available).
pub const PASSPHRASE_FILE_ENV: &str = "VIGIL_PASSPHRASE_FILE";

/// Longest passphrase file we read; a passphrase is a line, not a document.
const MAX_PASSPHRASE_FILE_LEN: u64 = 4 * 1024;

/// Where a passphrase comes from, decided without side effects so it can be tested.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PassphraseSource {
    File(PathBuf),
    Prompt,
}

pub(super) fn passphrase_source(
    flag_file: Option<&Path>,
    env_file: Option<PathBuf>,
    have_terminal: bool,
) -> Result<PassphraseSource> {
    if let Some(f) = flag_file {
        return Ok(PassphraseSource::File(f.to_path_buf()));
    }
    if have_terminal {
        return Ok(PassphraseSource::Prompt);
    }
    match env_file {
        Some(f) if !f.as_os_str().is_empty() => Ok(PassphraseSource::File(f)),
        _ => bail!(
            "no terminal to ask for the passphrase; use --passphrase-file F or set {PASSPHRASE_FILE_ENV}"
        ),
    }
}

/// True when a passphrase prompt can reach the user (rpassword uses the controlling tty).
pub(crate) fn have_terminal() -> bool {
    #[cfg(unix)]
    {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok()
    }
    #[cfg(not(unix))]
    {
        use std::io::IsTerminal;
        std::io::stdin().is_terminal()
    }
}

pub(crate) fn read_passphrase_file(path: &Path) -> Result<SecretString> {
    let f = File::open(path)
        .with_context(|| format!("cannot open passphrase file {}", path.display()))?;
    let mut s = String::new();
    f.take(MAX_PASSPHRASE_FILE_LEN + 1)
        .read_to_string(&mut s)
        .with_context(|| format!("cannot read passphrase file {} as text", path.display()))?;
    let s = SecretString::from(s);
    let text = s.expose_secret();
    if text.len() as u64 > MAX_PASSPHRASE_FILE_LEN {
        bail!(
            "passphrase file {} is longer than {MAX_PASSPHRASE_FILE_LEN} bytes; it should hold one line",
            path.display()
        );
    }
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if trimmed.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(SecretString::from(trimmed.to_string()))
}

pub(super) fn get_passphrase(args: &AgeArgs, confirm: bool) -> Result<SecretString> {
    let env = std::env::var_os(PASSPHRASE_FILE_ENV).map(PathBuf::from);
    let tty = args.passphrase_file.is_none() && have_terminal();
    match passphrase_source(args.passphrase_file.as_deref(), env, tty)? {
        PassphraseSource::File(p) => read_passphrase_file(&p),
        PassphraseSource::Prompt => {
            let first = SecretString::from(
                rpassword::prompt_password("Enter passphrase: ")
                    .context("cannot read the passphrase from the terminal")?,
            );
            if first.expose_secret().is_empty() {
                bail!("the passphrase is empty; type a long passphrase");
            }
            if confirm {
                let second = SecretString::from(
                    rpassword::prompt_password("Confirm passphrase: ")
                        .context("cannot read the passphrase from the terminal")?,
                );
                if first.expose_secret() != second.expose_secret() {
                    bail!("the passphrases do not match; run the command again");
                }
            }
            Ok(first)
        }
    }
}
