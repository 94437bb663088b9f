//! [`AgeError`]: everything that can go wrong encrypting or decrypting an age file.

use std::io;

/// An age encryption or decryption failure.
///
/// Messages say what happened and what to do next. Variants are grouped by whose fault it
/// is: the caller's arguments, a malformed or tampered file, or the environment (I/O).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgeError {
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// The input is ASCII-armored and the armor breaks the
    /// strict PEM rules the spec requires.
    #[error("the ASCII armor is malformed ({reason}); the file was altered or damaged in transit, get a fresh copy")]
    InvalidArmor {
        /// Which rule the armor broke.
        reason: &'static str,
    },

    /// The input starts with neither the age version line nor the armor BEGIN line.
    #[error("this is not an age file: it starts with neither age-encryption.org/ nor -----BEGIN AGE ENCRYPTED FILE----- (is there text before the BEGIN line?); check the input path")]
    NotAgeFile,

    /// The version line names a format other than `age-encryption.org/v1`.
    #[error("this file uses age format {version:?}, but only age-encryption.org/v1 is supported; ask the sender to use age v1")]
    UnsupportedVersion {
        /// The version line as found (truncated to 64 bytes, lossy UTF-8).
        version: String,
    },

    /// The header does not follow the age v1 grammar.
    #[error("the age header is malformed ({reason}); the file is corrupted or not an age file")]
    InvalidHeader {
        /// Which rule the header broke.
        reason: &'static str,
    },

    /// The header is longer than [`MAX_HEADER_LEN`](super::limits::MAX_HEADER_LEN).
    #[error("the age header is longer than {max} bytes; the file is corrupted or hostile and was not read further")]
    HeaderTooLarge {
        /// The limit that was hit.
        max: usize,
    },

    /// The header has more stanzas than [`MAX_STANZAS`](super::limits::MAX_STANZAS).
    #[error(
        "the age header has more than {max} recipient stanzas; the file is corrupted or hostile"
    )]
    TooManyStanzas {
        /// The limit that was hit.
        max: usize,
    },

    /// A stanza of a type we implement is malformed (wrong arguments or body size).
    #[error("a {kind} recipient stanza is malformed ({reason}); the file is corrupted or was made by a broken tool")]
    InvalidStanza {
        /// The stanza type (`X25519`, `scrypt`).
        kind: &'static str,
        /// Which rule the stanza broke.
        reason: &'static str,
    },

    /// An X25519 stanza yields the all-zero shared secret (a low-order share).
    #[error("an X25519 stanza uses a low-order point (all-zero shared secret); the file is malicious or corrupted and was rejected")]
    ZeroSharedSecret,

    /// Encryption was asked for to post-quantum and classic recipients together, or a header
    /// opened with a post-quantum identity also holds classic X25519 stanzas: such a file is
    /// only as strong as X25519, so a quantum computer could open it.
    #[error("this mixes post-quantum (age1pq1...) and classic (age1...) recipients, so a future quantum computer could open it through the classic ones; encrypt to post-quantum recipients only")]
    MixedPostQuantum,

    /// An scrypt stanza appears alongside other stanzas, which the spec forbids.
    #[error("this file mixes a passphrase (scrypt) stanza with other recipients, which age forbids; ask the sender to re-encrypt it")]
    ScryptNotAlone,

    /// The file's scrypt work factor exceeds the caller's maximum.
    #[error("the file's scrypt work factor is {work_factor}, above the maximum of {max}; decrypting would need too much time and memory. Raise the limit only if you trust the sender")]
    WorkFactorTooHigh {
        /// The work factor (log2 N) the file asks for.
        work_factor: u64,
        /// The maximum the caller allowed.
        max: u8,
    },

    /// The caller asked to encrypt with an unusable scrypt work factor.
    #[error(
        "scrypt work factor {work_factor} is out of range; use 1 to {max} (18 is the default)"
    )]
    InvalidWorkFactor {
        /// The requested work factor.
        work_factor: u8,
        /// The highest accepted value.
        max: u8,
    },

    /// The caller asked to encrypt with an empty passphrase.
    #[error("the passphrase is empty; choose a long passphrase")]
    EmptyPassphrase,

    /// None of the given identities can unwrap any stanza.
    #[error("no identity matches this file; did you pass the right -i key file?")]
    NoMatch,

    /// The passphrase did not unwrap the scrypt stanza.
    #[error(
        "the passphrase is wrong (or the file was modified); check the passphrase and try again"
    )]
    WrongPassphrase,

    /// The file is passphrase-encrypted but identities were given.
    #[error(
        "this file is encrypted with a passphrase, not to a key; decrypt it with -p/--passphrase"
    )]
    PassphraseRequired,

    /// A passphrase was given but the file has no scrypt stanza.
    #[error("this file is not passphrase-encrypted; decrypt it with -i and the recipient's identity file")]
    NotPassphraseEncrypted,

    /// The header MAC does not verify with the unwrapped file key.
    #[error("the header MAC does not verify: the header was modified after encryption; do not trust this file and ask the sender to send it again")]
    HeaderMacMismatch,

    /// The file ends inside the 16-byte payload nonce.
    #[error("the file ends before the payload nonce; it is truncated, get a complete copy")]
    MissingNonce,

    /// The payload ends before a valid final chunk.
    #[error("the age file is truncated: it ends before its final chunk; get a complete copy (plaintext already written is authentic but incomplete)")]
    Truncated,

    /// A payload chunk failed authentication.
    #[error("payload chunk {chunk} failed authentication: the file is corrupted or was tampered with; do not trust it")]
    ChunkAuth {
        /// Zero-based index of the failing chunk.
        chunk: u64,
    },

    /// The final chunk is empty although it is not the only chunk.
    #[error("the payload ends with an empty chunk, which age forbids; the file was tampered with or made by a broken tool")]
    EmptyFinalChunk,

    /// Bytes follow the final chunk.
    #[error("data follows the final payload chunk; the file was tampered with or damaged, get a fresh copy")]
    TrailingData,

    /// The STREAM chunk counter would overflow.
    #[error(
        "the payload has too many chunks for the STREAM counter; split the data into several files"
    )]
    CounterOverflow,

    /// A previous read from this stream failed; decryption cannot resume.
    #[error("an earlier read from this age stream failed; decryption cannot continue, start again from the beginning")]
    StreamFailed,

    /// The plaintext exceeds the limit given to an in-memory decryption.
    #[error("the plaintext is larger than the {max}-byte limit for in-memory decryption; decrypt it as a stream to a file instead")]
    PlaintextTooLarge {
        /// The caller's limit.
        max: usize,
    },

    /// Encryption was asked for with no recipients.
    #[error("no recipients given; pass at least one -r/--recipient or -R/--recipients-file")]
    NoRecipients,

    /// Encryption was asked for with more recipients than a header may carry.
    #[error("too many recipients ({count}); at most {max} fit in one age header")]
    TooManyRecipients {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// A recipient string is not a valid X25519 or hybrid recipient.
    #[error("invalid recipient: {reason}; a recipient looks like age1... (X25519, 62 characters) or age1pq1... (post-quantum, about 1950 characters)")]
    InvalidRecipient {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An identity string is not a valid X25519 or hybrid identity.
    #[error("invalid identity: {reason}; an identity looks like AGE-SECRET-KEY-1... (X25519, 74 characters) or AGE-SECRET-KEY-PQ-1... (post-quantum, 77 characters)")]
    InvalidIdentity {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A line of an identity or recipients file is invalid.
    #[error("line {line} of the key file is invalid ({reason}); each line must be one key, a '#' comment or blank")]
    InvalidKeyFile {
        /// One-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An identity or recipients file exceeds
    /// [`MAX_IDENTITY_FILE_LEN`](super::limits::MAX_IDENTITY_FILE_LEN).
    #[error(
        "the key file is larger than {max} bytes, so it is not an age key file; check the path"
    )]
    KeyFileTooLarge {
        /// The limit.
        max: usize,
    },

    /// An identity or recipients file contains no keys.
    #[error("the key file contains no keys; generate an identity with `vigil age keygen`")]
    NoKeys,
}

impl AgeError {
    /// Finds the [`AgeError`] carried inside an `io::Error` returned by a [`Read`]/[`Write`]
    /// implementation of this module (for example [`StreamReader`](super::StreamReader)).
    ///
    /// [`Read`]: std::io::Read
    /// [`Write`]: std::io::Write
    pub fn from_io_ref(err: &io::Error) -> Option<&AgeError> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<AgeError>())
    }

    /// Wraps this error into an `io::Error` for `Read`/`Write` implementations; an I/O error is
    /// returned as is.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            AgeError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl From<io::Error> for AgeError {
    /// Unwraps an `AgeError` that travelled through an `io::Error` (from the armor reader,
    /// say) so it keeps its class; anything else is [`AgeError::Io`].
    fn from(err: io::Error) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<AgeError>()) {
            if let Some(inner) = err.into_inner() {
                if let Ok(age) = inner.downcast::<AgeError>() {
                    return *age;
                }
            }
            // Unreachable in practice (we just checked the type); keep a generic error.
            return AgeError::Io(io::Error::other("age error lost while unwrapping"));
        }
        AgeError::Io(err)
    }
}
