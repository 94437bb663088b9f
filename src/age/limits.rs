//! Every size and work limit the age code enforces, in one place.
//!
//! Parsers check a length against these caps *before* they allocate or read further, so a
//! hostile file can make us do at most a bounded amount of work and hold a bounded amount of
//! memory, whatever it claims about itself.

/// Largest age header we accept, in bytes (from the version line through the MAC line).
///
/// A header with one X25519 stanza is about 200 bytes and [`MAX_STANZAS`] of them stay well
/// under this; even post-quantum stanzas (about 1.6 KiB each) fit dozens. 64 KiB keeps header
/// parsing to one chunk's worth of memory, the same bound as the payload.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// Longest single header line (version or stanza argument line) we accept, excluding the LF.
///
/// Native X25519 and scrypt argument lines are under 70 bytes; the longest stanza in use, the
/// ML-KEM-768 hybrid, has a ~1.5 KiB argument line. 4 KiB lets us skip such stanzas (and
/// reasonable plugin stanzas) while refusing lines that only exist to waste memory.
pub const MAX_HEADER_LINE_LEN: usize = 4 * 1024;

/// Most recipient stanzas a header may carry, and most recipients we encrypt to.
///
/// An NGO desk has a handful of keys; 64 leaves room for grease and large teams while bounding
/// the number of X25519 operations a hostile header can make us perform per identity.
pub const MAX_STANZAS: usize = 64;

/// Most space-separated arguments (including the type) in one stanza argument line.
///
/// Native stanzas have two or three; the spec puts no limit, so we pick one that any sane
/// plugin fits in and that keeps the per-stanza `Vec` small.
pub const MAX_STANZA_ARGS: usize = 16;

/// Default maximum scrypt work factor (log2 N) accepted when decrypting with a passphrase.
///
/// Each step doubles time and memory: 2^20 with r = 8 needs 1 GiB of RAM and about a second
/// or more on a laptop. A file asking for more is either hostile (a denial of service on a
/// phone in the field) or made with unusual settings; callers that trust the sender can pass
/// a higher limit explicitly.
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 20;

/// Work factor used when encrypting with a passphrase, as the reference age tool does.
///
/// 2^18 takes a fraction of a second and 256 MiB on current hardware, and stays below
/// [`MAX_SCRYPT_WORK_FACTOR`] so every Vigil can decrypt what another produced.
pub const DEFAULT_SCRYPT_WORK_FACTOR: u8 = 18;

/// Highest work factor we agree to *encrypt* with.
///
/// 2^30 needs 128 GiB of memory: anything above is a typo, not a security choice.
pub const MAX_SCRYPT_ENCRYPT_WORK_FACTOR: u8 = 30;

/// Largest identity (or recipients) file we parse, in bytes.
///
/// One X25519 identity with its comments is about 150 bytes; 64 KiB is hundreds of keys. A
/// bigger file is the wrong file (a photo passed to `-i`), and we say so instead of scanning it.
pub const MAX_IDENTITY_FILE_LEN: usize = 64 * 1024;

/// Most whitespace bytes accepted before `-----BEGIN` or after `-----END` of ASCII armor.
///
/// The spec allows surrounding whitespace (mail clients and editors add some); it does not
/// allow anything else there, and a megabyte of blanks is not a mail client's doing.
pub const MAX_ARMOR_WHITESPACE: usize = 4 * 1024;
