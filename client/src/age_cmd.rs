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
//! All cryptography is `vigil_core::age`; this file only handles files, terminals and
//! passphrase prompts. Decryption into `-o OUT` goes to a temporary file beside OUT that is
//! renamed only after the final chunk authenticated, so OUT never holds partial plaintext.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use vigil_core::age::{
    self,
    limits::{DEFAULT_SCRYPT_WORK_FACTOR, MAX_IDENTITY_FILE_LEN, MAX_SCRYPT_WORK_FACTOR},
    x25519, AgeError, ArmoredWriter, Decryptor,
};
use zeroize::Zeroizing;

/// Environment variable naming a file that holds the passphrase, for scripts (used with `-p`
/// when no terminal is available).
pub const PASSPHRASE_FILE_ENV: &str = "VIGIL_PASSPHRASE_FILE";

/// Longest passphrase file we read; a passphrase is a line, not a document.
const MAX_PASSPHRASE_FILE_LEN: u64 = 4 * 1024;

const AFTER_HELP: &str = "\
Examples:
  vigil age keygen -o key.txt
  vigil age -r age1... -o report.json.age report.json
  vigil age -a -R ngo-recipients.txt < notes.txt > notes.txt.age
  vigil age -d -i key.txt -o report.json report.json.age
  vigil age -p -o photo.jpg.age photo.jpg
Armor is detected automatically when decrypting. Scripts give passphrases with
--passphrase-file or VIGIL_PASSPHRASE_FILE.";

/// `vigil age`: encrypt (the default) or decrypt a file in the age format.
#[derive(clap::Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = AFTER_HELP
)]
pub struct AgeArgs {
    /// Key generation and conversion.
    #[command(subcommand)]
    pub cmd: Option<AgeSub>,

    /// Encrypt the input (the default).
    #[arg(short, long, conflicts_with = "decrypt")]
    pub encrypt: bool,

    /// Decrypt the input.
    #[arg(short, long)]
    pub decrypt: bool,

    /// Encrypt to this recipient (age1...); repeatable.
    #[arg(short, long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Encrypt to the recipients listed in FILE (one per line, '#' comments); repeatable.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub recipients_files: Vec<PathBuf>,

    /// Identity file (AGE-SECRET-KEY-1...) to decrypt with; when encrypting, encrypt to its
    /// public key. Repeatable.
    #[arg(short, long = "identity", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub identities: Vec<PathBuf>,

    /// Write the result to OUT instead of stdout (refuses to overwrite).
    #[arg(short, long, value_name = "OUT", value_hint = clap::ValueHint::FilePath)]
    pub output: Option<PathBuf>,

    /// Encrypt to ASCII armor (PEM-like text) instead of binary.
    #[arg(short, long)]
    pub armor: bool,

    /// Use a passphrase instead of keys (asked on the terminal, twice when encrypting).
    #[arg(short, long)]
    pub passphrase: bool,

    /// Read the passphrase from F (trailing newline removed); implies -p. For scripts.
    #[arg(long, value_name = "F", value_hint = clap::ValueHint::FilePath)]
    pub passphrase_file: Option<PathBuf>,

    /// scrypt work factor (log2 N) when encrypting with a passphrase.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SCRYPT_WORK_FACTOR)]
    pub work_factor: u8,

    /// Highest scrypt work factor accepted when decrypting; raise only for trusted senders.
    #[arg(long, value_name = "N", default_value_t = MAX_SCRYPT_WORK_FACTOR)]
    pub max_work_factor: u8,

    /// File to read (stdin when absent or "-").
    #[arg(value_name = "INPUT", value_hint = clap::ValueHint::FilePath)]
    pub input: Option<PathBuf>,
}

/// `vigil age <subcommand>`
#[derive(clap::Subcommand, Debug)]
pub enum AgeSub {
    /// Generate an identity (like age-keygen), or with -y print an identity file's recipients.
    Keygen(KeygenArgs),
}

/// `vigil age keygen`
#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Write to FILE (mode 0600 for identities; refuses to overwrite) instead of stdout.
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub output: Option<PathBuf>,

    /// Convert an identity file to its recipients (public keys), one per line.
    #[arg(short = 'y')]
    pub convert: bool,

    /// Identity file to convert with -y (stdin when absent or "-").
    #[arg(value_name = "INPUT", requires = "convert", value_hint = clap::ValueHint::FilePath)]
    pub input: Option<PathBuf>,
}

/// Runs `vigil age ...`. With `json`, a result object is printed on stdout, so the data
/// itself must go to a file (`-o`).
pub fn run(mut args: AgeArgs, json: bool) -> Result<()> {
    // "-o -" means stdout, as in age.
    if args.output.as_deref() == Some(Path::new("-")) {
        args.output = None;
    }
    match args.cmd {
        Some(AgeSub::Keygen(k)) => keygen(k, json),
        None if args.decrypt => decrypt(&args, json),
        None => encrypt(&args, json),
    }
}

// ---------------------------------------------------------------- keygen

fn keygen(mut k: KeygenArgs, json: bool) -> Result<()> {
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

    let id = x25519::Identity::generate(&mut OsRng);
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
                   "output": k.output.as_ref().map(|p| p.display().to_string())}})
        );
    } else {
        eprintln!("Public key: {public}");
    }
    Ok(())
}

/// Creates `path` (which must not exist) with `mode` and writes `data`, synced to disk.
fn write_new_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; refusing to overwrite it (it may hold the only copy of a key), choose another -o",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot create {}: {e}", path.display())
        }
    })?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Formats `t` as RFC 3339 in UTC, e.g. `2026-11-23T12:34:56Z`.
fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (H. Hinnant), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------- shared helpers

/// Reads a key file (or stdin for None / "-"), capped at the core's key file limit.
fn read_key_file(path: Option<&Path>) -> Result<Zeroizing<String>> {
    let limit = u64::try_from(MAX_IDENTITY_FILE_LEN).unwrap_or(u64::MAX) + 1;
    let mut buf = Zeroizing::new(String::new());
    let name = match path {
        Some(p) if p != Path::new("-") => {
            let f =
                File::open(p).with_context(|| format!("cannot open key file {}", p.display()))?;
            f.take(limit)
                .read_to_string(&mut buf)
                .with_context(|| format!("cannot read key file {} as text", p.display()))?;
            p.display().to_string()
        }
        _ => {
            io::stdin()
                .lock()
                .take(limit)
                .read_to_string(&mut buf)
                .context("cannot read a key file from stdin as text")?;
            "stdin".to_string()
        }
    };
    if buf.len() > MAX_IDENTITY_FILE_LEN {
        bail!(
            "{name} is larger than {MAX_IDENTITY_FILE_LEN} bytes, so it is not an age key file; check the path"
        );
    }
    Ok(buf)
}

fn open_input(path: Option<&Path>) -> Result<Box<dyn Read>> {
    match path {
        Some(p) if p != Path::new("-") => {
            Ok(Box::new(File::open(p).with_context(|| {
                format!("cannot open input {}", p.display())
            })?))
        }
        _ => Ok(Box::new(io::stdin().lock())),
    }
}

/// Where the result goes: a temporary file renamed into place on success, or stdout.
enum Sink {
    File {
        tmp: tempfile::NamedTempFile,
        dest: PathBuf,
    },
    Stdout,
}

impl Sink {
    /// Checks the destination before any work: OUT must not exist and its directory must.
    fn open(output: Option<&Path>) -> Result<Sink> {
        let Some(dest) = output else {
            return Ok(Sink::Stdout);
        };
        if dest.exists() {
            bail!(
                "{} already exists; refusing to overwrite it, remove it or choose another -o",
                dest.display()
            );
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".vigil-age-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Sink::File {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    fn writer(&mut self) -> Result<Box<dyn Write + '_>> {
        Ok(match self {
            Sink::File { tmp, .. } => Box::new(BufWriter::new(tmp.as_file_mut())),
            Sink::Stdout => Box::new(BufWriter::new(io::stdout().lock())),
        })
    }

    /// Syncs and renames the temporary file into place (never overwriting).
    fn commit(self) -> Result<Option<PathBuf>> {
        match self {
            Sink::File { tmp, dest } => {
                tmp.as_file()
                    .sync_all()
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                tmp.persist_noclobber(&dest).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot move the result into {}: {}",
                        dest.display(),
                        e.error
                    )
                })?;
                Ok(Some(dest))
            }
            Sink::Stdout => Ok(None),
        }
    }
}

/// Where a passphrase comes from, decided without side effects so it can be tested.
#[derive(Debug, PartialEq, Eq)]
enum PassphraseSource {
    File(PathBuf),
    Prompt,
}

fn passphrase_source(
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
fn have_terminal() -> bool {
    #[cfg(unix)]
    {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok()
    }
    #[cfg(not(unix))]
    {
        io::stdin().is_terminal()
    }
}

fn read_passphrase_file(path: &Path) -> Result<SecretString> {
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

fn get_passphrase(args: &AgeArgs, confirm: bool) -> Result<SecretString> {
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

fn load_identities(paths: &[PathBuf]) -> Result<Vec<x25519::Identity>> {
    let mut ids = Vec::new();
    for p in paths {
        let text = read_key_file(Some(p))?;
        let mut more = age::parse_identity_file(&text)
            .with_context(|| format!("identity file {}", p.display()))?;
        ids.append(&mut more);
    }
    Ok(ids)
}

/// Turns an I/O error from the age reader/writer back into its `AgeError` message.
fn age_io(e: io::Error) -> anyhow::Error {
    if AgeError::from_io_ref(&e).is_some() {
        anyhow::Error::new(AgeError::from(e))
    } else {
        anyhow::Error::new(e)
    }
}

// ---------------------------------------------------------------- encrypt

fn encrypt(args: &AgeArgs, json: bool) -> Result<()> {
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
            r.parse::<x25519::Recipient>()
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
    recipients: &[x25519::Recipient],
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

/// Counts bytes written, for the JSON summary.
struct CountingWriter<W: Write> {
    inner: W,
    count: u64,
}

impl<W: Write> CountingWriter<W> {
    fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---------------------------------------------------------------- decrypt

fn decrypt(args: &AgeArgs, json: bool) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::fs;

    /// Mirrors how the top-level CLI mounts this command: `vigil age ...`.
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Top {
        Age(AgeArgs),
    }

    fn parse(args: &[&str]) -> Result<AgeArgs, clap::Error> {
        let mut v = vec!["vigil", "age"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(|c| match c.cmd {
            Top::Age(a) => a,
        })
    }

    fn run_args(args: &[&str]) -> Result<()> {
        run(parse(args).expect("arguments parse"), false)
    }

    fn p(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    /// Generates a key file in `dir` and returns (path, public key).
    fn keygen_in(dir: &Path, name: &str) -> (PathBuf, String) {
        let key = dir.join(name);
        run_args(&["keygen", "-o", p(&key)]).unwrap();
        let text = fs::read_to_string(&key).unwrap();
        let public = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_string();
        (key, public)
    }

    #[test]
    fn keygen_writes_private_file_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = keygen_in(dir.path(), "key.txt");
        let text = fs::read_to_string(&key).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("# created: 20"));
        assert!(lines[0].ends_with('Z'));
        assert!(public.starts_with("age1"));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = run_args(&["keygen", "-o", p(&key)]).unwrap_err();
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        assert_eq!(fs::read_to_string(&key).unwrap(), text);

        // -y converts the identity file to its recipient.
        let recips = dir.path().join("recips.txt");
        run_args(&["keygen", "-y", "-o", p(&recips), p(&key)]).unwrap();
        assert_eq!(fs::read_to_string(&recips).unwrap(), format!("{public}\n"));
    }

    #[test]
    fn encrypt_decrypt_files_binary_and_armored() {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = keygen_in(dir.path(), "key.txt");
        let (key2, _) = keygen_in(dir.path(), "key2.txt");
        let recips = dir.path().join("recips.txt");
        run_args(&["keygen", "-y", "-o", p(&recips), p(&key2)]).unwrap();

        let input = dir.path().join("report.txt");
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
        fs::write(&input, &data).unwrap();

        // Binary, to -r; decrypt with -i.
        let ct = dir.path().join("report.age");
        run_args(&["-e", "-r", &public, "-o", p(&ct), p(&input)]).unwrap();
        let out = dir.path().join("report.out");
        run_args(&["-d", "-i", p(&key), "-o", p(&out), p(&ct)]).unwrap();
        assert_eq!(fs::read(&out).unwrap(), data);

        // Armored, to -r and -R; either identity decrypts.
        let act = dir.path().join("report.asc");
        run_args(&[
            "-a",
            "-r",
            &public,
            "-R",
            p(&recips),
            "-o",
            p(&act),
            p(&input),
        ])
        .unwrap();
        assert!(fs::read_to_string(&act)
            .unwrap()
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        let out2 = dir.path().join("report2.out");
        run_args(&["-d", "-i", p(&key2), "-o", p(&out2), p(&act)]).unwrap();
        assert_eq!(fs::read(&out2).unwrap(), data);

        // Existing output is never overwritten.
        let err = run_args(&["-d", "-i", p(&key), "-o", p(&out), p(&ct)]).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn wrong_key_or_tampering_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = keygen_in(dir.path(), "key.txt");
        let (other, _) = keygen_in(dir.path(), "other.txt");
        let input = dir.path().join("in.txt");
        fs::write(&input, vec![1u8; 100_000]).unwrap();
        let ct = dir.path().join("in.age");
        run_args(&["-r", &public, "-o", p(&ct), p(&input)]).unwrap();

        let out = dir.path().join("out.txt");
        let err = run_args(&["-d", "-i", p(&other), "-o", p(&out), p(&ct)]).unwrap_err();
        assert!(
            format!("{err:#}").contains("no identity matches"),
            "{err:#}"
        );
        assert!(!out.exists());

        // Flip a byte in the last chunk: the first chunk verifies, but OUT must not appear.
        let key = dir.path().join("key.txt");
        let mut bytes = fs::read(&ct).unwrap();
        let n = bytes.len();
        bytes[n - 20] ^= 1;
        let bad = dir.path().join("bad.age");
        fs::write(&bad, bytes).unwrap();
        let err = run_args(&["-d", "-i", p(&key), "-o", p(&out), p(&bad)]).unwrap_err();
        assert!(
            format!("{err:#}").contains("failed authentication"),
            "{err:#}"
        );
        assert!(!out.exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".vigil-age-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn passphrase_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("pass.txt");
        fs::write(&pass, "correct horse battery staple\n").unwrap();
        let input = dir.path().join("in.txt");
        fs::write(&input, b"testimony").unwrap();
        let ct = dir.path().join("in.age");
        run_args(&[
            "-p",
            "--passphrase-file",
            p(&pass),
            "--work-factor",
            "4",
            "-a",
            "-o",
            p(&ct),
            p(&input),
        ])
        .unwrap();
        let out = dir.path().join("out.txt");
        run_args(&["-d", "--passphrase-file", p(&pass), "-o", p(&out), p(&ct)]).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"testimony");

        let wrong = dir.path().join("wrong.txt");
        fs::write(&wrong, "not it\n").unwrap();
        let out2 = dir.path().join("out2.txt");
        let err =
            run_args(&["-d", "--passphrase-file", p(&wrong), "-o", p(&out2), p(&ct)]).unwrap_err();
        assert!(
            format!("{err:#}").contains("passphrase is wrong"),
            "{err:#}"
        );
        assert!(!out2.exists());

        // A low maximum work factor refuses the file and names the value.
        let err = run_args(&[
            "-d",
            "--passphrase-file",
            p(&pass),
            "--max-work-factor",
            "3",
            "-o",
            p(&out2),
            p(&ct),
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("work factor is 4"), "{err:#}");
    }

    #[test]
    fn passphrase_source_rules() {
        let f = PathBuf::from("/tmp/pf");
        assert_eq!(
            passphrase_source(Some(&f), None, true).unwrap(),
            PassphraseSource::File(f.clone())
        );
        assert_eq!(
            passphrase_source(None, Some(f.clone()), false).unwrap(),
            PassphraseSource::File(f.clone())
        );
        assert_eq!(
            passphrase_source(None, Some(f), true).unwrap(),
            PassphraseSource::Prompt
        );
        let err = passphrase_source(None, None, false).unwrap_err();
        assert!(err.to_string().contains(PASSPHRASE_FILE_ENV));
    }

    #[test]
    fn flag_rules() {
        assert!(parse(&["-e", "-d"]).is_err());
        assert!(parse(&["keygen", "-e"]).is_err());
        assert!(parse(&["-e", "keygen"]).is_err() || run_args(&["-e", "keygen"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        fs::write(&input, b"x").unwrap();
        let out = dir.path().join("o");
        let err = run_args(&["-e", "-o", p(&out), p(&input)]).unwrap_err();
        assert!(err.to_string().contains("-r RECIPIENT"), "{err}");
        let err = run_args(&["-d", "-r", "age1x", p(&input)]).unwrap_err();
        assert!(err.to_string().contains("for encrypting"), "{err}");
        let err = run_args(&["-e", "-r", "age1nope", "-o", p(&out), p(&input)]).unwrap_err();
        assert!(format!("{err:#}").contains("invalid recipient"), "{err:#}");
        assert!(!out.exists());
    }

    #[test]
    fn rfc3339_format() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339_utc(t), "2024-02-29T12:34:56Z");
    }
}
