//! The flags of `vigil age` and `vigil age keygen`.

use std::path::PathBuf;

use vigil_core::age::limits::{DEFAULT_SCRYPT_WORK_FACTOR, MAX_SCRYPT_WORK_FACTOR};

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

    /// Make a post-quantum (ML-KEM-768 + X25519 hybrid) identity: AGE-SECRET-KEY-PQ-1...,
    /// recipient age1pq1.... Files encrypted to it stay closed even to a future quantum
    /// computer; they cannot also be encrypted to classic age1... recipients.
    #[arg(long, conflicts_with = "convert")]
    pub pq: bool,

    /// Identity file to convert with -y (stdin when absent or "-").
    #[arg(value_name = "INPUT", requires = "convert", value_hint = clap::ValueHint::FilePath)]
    pub input: Option<PathBuf>,
}
