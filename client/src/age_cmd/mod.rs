//! `vigil age`: encrypt and decrypt files in the age v1 format, compatible with `age` and
//! `rage`, plus `vigil age keygen` (like `age-keygen`).
//!
//! ```text
//! vigil age [-e] (-r RECIPIENT | -R FILE | -i FILE)... [-a] [-o OUT] [INPUT]
//! vigil age -e -p [--passphrase-file F] [-a] [-o OUT] [INPUT]
//! vigil age -d [-i FILE]... [--passphrase-file F] [-o OUT] [INPUT]
//! vigil age keygen [-o FILE]
//! vigil age keygen -y [-o OUT] [IDENTITY_FILE]
//! ```
//!
//! All cryptography is `vigil_core::age`; this module only handles files, terminals and
//! passphrase prompts, one concern per file: `args` (the flags), `keygen`, `encrypt`,
//! `decrypt`, `passphrase` (where a passphrase comes from) and `files` (key files, input, and
//! the output rules). Decryption into `-o OUT` goes to a temporary file beside OUT that is
//! renamed only after the final chunk authenticated, so OUT never holds partial plaintext.

mod args;
mod decrypt;
mod encrypt;
mod files;
mod keygen;
pub(crate) mod passphrase;
#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::Result;

pub use args::{AgeArgs, AgeSub, KeygenArgs};
pub use passphrase::PASSPHRASE_FILE_ENV;

/// Runs `vigil age ...`. With `json`, a result object is printed on stdout, so the data
/// itself must go to a file (`-o`).
pub fn run(mut args: AgeArgs, json: bool) -> Result<()> {
    // "-o -" means stdout, as in age.
    if args.output.as_deref() == Some(Path::new("-")) {
        args.output = None;
    }
    match args.cmd {
        Some(AgeSub::Keygen(k)) => keygen::keygen(k, json),
        None if args.decrypt => decrypt::decrypt(&args, json),
        None => encrypt::encrypt(&args, json),
    }
}
