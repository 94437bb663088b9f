//! The encrypted home's cryptography, without I/O: the key that unlocks a Vigil home, how it is
//! kept under a passphrase, and how each piece of state is sealed into a file whose name and
//! bytes say nothing without that key.
//!
//! A phone or laptop that holds a Vigil home can be taken at a checkpoint or in a raid. What it
//! holds then must not name the NGOs its owner reports to, hold a key that opens the reports,
//! or say how many reports went where. Everything here uses age, the format the rest of Vigil
//! already speaks, in the way age users protect their own keys:
//!
//! - **The vault key** ([`VaultKey`]) is an age X25519 identity plus a 32-byte key for file
//!   names, both random. It exists on disk only inside the **key file**, an age file encrypted
//!   with the passphrase (the age scrypt recipient: memory-hard, work factor in the file, see
//!   [`DEFAULT_WORK_FACTOR`]). Changing the passphrase rewrites only the key file; destroying
//!   the key file (`vigil panic`) leaves every other file of the home undecryptable.
//! - **Records** are age files encrypted to the vault identity. Each plaintext starts with the
//!   record's logical name (`contacts/desk`, `outbox/1f2e...`), and [`VaultKey::open`] checks it:
//!   a file moved or copied under another record's name is refused, not believed.
//! - **File names** are an HMAC of the logical name under the names key
//!   ([`VaultKey::file_name`]): deterministic, so a record is found without an index, and
//!   meaningless without the key. A home's directory shows how many records it holds and their
//!   sizes, not what they are.
//!
//! What this does not hide: that Vigil is installed, roughly how much the home holds, and when
//! files changed. What it cannot prevent: an old copy of a record put back in place of a newer
//! one (the name check makes it the same record, just older); the client keeps that in mind
//! where it matters (the outbox never trusts a record to be fresher than the relay says).

use crate::age::{self, limits::MAX_SCRYPT_WORK_FACTOR, x25519, AgeError};
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::fmt;
use std::io::Read;
use zeroize::Zeroizing;

/// The scrypt work factor (log2 N, r = 8) of a new key file: 2^16 × 8 × 128 bytes = 64 MiB of
/// memory per guess, about 0.2 s on a laptop core (docs/benchmarks.md has the measurements and
/// the reasoning). age's own default is 18 (256 MiB); a phone that is short of memory when the
/// reporter is in a hurry is the wrong place to spend it, and the passphrase's length buys more
/// than the last two doublings.
pub const DEFAULT_WORK_FACTOR: u8 = 16;
/// The largest work factor a key file may ask for when unlocking: a key file is read from the
/// disk, and a damaged or planted one must not make unlocking take minutes and gigabytes.
pub const MAX_WORK_FACTOR: u8 = MAX_SCRYPT_WORK_FACTOR;
/// Largest key file read (a few hundred bytes in practice).
pub const MAX_KEY_FILE_LEN: usize = 4096;
/// Longest logical record name, in bytes.
pub const MAX_NAME_LEN: usize = 512;

const KEY_FILE_MAGIC: &str = "vigil-vault-key v1";
const RECORD_MAGIC: &[u8] = b"vigil-vault-record v1\n";

/// Why the vault could not be unlocked, or a record made or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The passphrase does not open the key file. Said only after the full cost of the KDF, and
    /// the same whatever part of the check failed.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The key file is damaged or not a Vigil key file.
    #[error("the vault key file is damaged ({0}); restore it from a backup")]
    DamagedKeyFile(&'static str),
    /// A record does not open with this vault's key, or is damaged.
    #[error("a vault record is damaged or belongs to another home ({0})")]
    DamagedRecord(&'static str),
    /// A record opened, but under another name than the one it was read as.
    #[error("a vault record was found under the wrong name (it was moved or copied there)")]
    MisplacedRecord,
    /// A logical name that cannot be used.
    #[error("record name is empty, too long or contains a line break")]
    BadName,
    /// The age layer failed (other than a wrong passphrase).
    #[error(transparent)]
    Age(#[from] AgeError),
}

/// The key that unlocks a home. Holds secrets: no `Debug` of them, wiped on drop.
pub struct VaultKey {
    identity: x25519::Identity,
    names: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey([secret])")
    }
}

fn check_name(name: &str) -> Result<(), VaultError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains(['\n', '\r']) {
        return Err(VaultError::BadName);
    }
    Ok(())
}

impl VaultKey {
    /// A fresh vault key.
    pub fn generate(rng: &mut (impl CryptoRngCore + ?Sized)) -> Self {
        let mut names = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(names.as_mut());
        Self {
            identity: x25519::Identity::generate(rng),
            names,
        }
    }

    /// The key file for this key under `passphrase`, at scrypt `work_factor`.
    pub fn lock(
        &self,
        passphrase: &SecretString,
        work_factor: u8,
        rng: &mut (impl CryptoRngCore + ?Sized),
    ) -> Result<Vec<u8>, VaultError> {
        use std::io::Write;
        let text = self.to_secret_text();
        let mut w = age::encrypt_with_passphrase(passphrase, work_factor, Vec::new(), rng)?;
        w.write_all(text.as_bytes()).map_err(AgeError::from)?;
        Ok(w.finish()?)
    }

    /// Open a key file with `passphrase`.
    pub fn unlock(key_file: &[u8], passphrase: &SecretString) -> Result<Self, VaultError> {
        if key_file.len() > MAX_KEY_FILE_LEN {
            return Err(VaultError::DamagedKeyFile("too large"));
        }
        let reader = age::Decryptor::new(key_file)
            .map_err(|_| VaultError::DamagedKeyFile("not an age file"))?;
        let mut r = match reader.decrypt_with_passphrase(passphrase, MAX_WORK_FACTOR) {
            Ok(r) => r,
            Err(AgeError::WrongPassphrase) => return Err(VaultError::WrongPassphrase),
            Err(AgeError::WorkFactorTooHigh { .. }) => {
                return Err(VaultError::DamagedKeyFile(
                    "asks for more work than allowed",
                ))
            }
            Err(_) => return Err(VaultError::DamagedKeyFile("not a passphrase key file")),
        };
        let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN));
        (&mut r)
            .take(MAX_KEY_FILE_LEN as u64)
            .read_to_end(&mut text)
            .map_err(|_| VaultError::DamagedKeyFile("its contents do not verify"))?;
        let text =
            std::str::from_utf8(&text).map_err(|_| VaultError::DamagedKeyFile("not text"))?;
        Self::from_secret_text(text)
    }

    /// The key as text (the plaintext of the key file), for handing to the unlock agent over a
    /// private channel. Secret: wiped on drop, never logged.
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_FILE_MAGIC}\nidentity: {}\nnames: {}\n",
            self.identity.to_string_secret().expose_secret(),
            hex::encode(self.names.as_ref())
        ))
    }

    /// The key from [`Self::to_secret_text`].
    pub fn from_secret_text(text: &str) -> Result<Self, VaultError> {
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_MAGIC) {
            return Err(VaultError::DamagedKeyFile("unknown version"));
        }
        let field = |line: Option<&str>, label: &str| -> Result<String, VaultError> {
            line.and_then(|l| l.strip_prefix(label))
                .map(str::to_string)
                .ok_or(VaultError::DamagedKeyFile("a field is missing"))
        };
        let identity = Zeroizing::new(field(lines.next(), "identity: ")?);
        let identity = identity
            .parse::<x25519::Identity>()
            .map_err(|_| VaultError::DamagedKeyFile("bad identity"))?;
        let names_hex = Zeroizing::new(field(lines.next(), "names: ")?);
        let mut names = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(names_hex.as_bytes(), names.as_mut())
            .map_err(|_| VaultError::DamagedKeyFile("bad names key"))?;
        Ok(Self { identity, names })
    }

    /// The vault's public key: what is encrypted to it opens only with the vault key. Lets a
    /// command that has no passphrase (a check-in) leave a note for the owner that only the
    /// unlocked home reads.
    pub fn recipient(&self) -> x25519::Recipient {
        self.identity.to_public()
    }

    /// Open a plain age file encrypted to [`Self::recipient`] (not a record: no name inside).
    pub fn open_note(&self, file: &[u8], max: usize) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        age::decrypt_from_slice(file, std::slice::from_ref(&self.identity), max)
            .map_err(|_| VaultError::DamagedRecord("does not decrypt with this home's key"))
    }

    /// The file name of the record called `name`: 64 hex digits, the same every time for this
    /// key, unrelated to the name for anyone without it.
    pub fn file_name(&self, name: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.names.as_ref())
            .expect("HMAC takes a key of any length");
        mac.update(b"vigil/vault/file-name/v1\0");
        mac.update(name.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Seal `payload` as the record called `name`.
    pub fn seal(
        &self,
        name: &str,
        payload: &[u8],
        rng: &mut (impl CryptoRngCore + ?Sized),
    ) -> Result<Vec<u8>, VaultError> {
        use std::io::Write;
        check_name(name)?;
        let recipient = self.identity.to_public();
        let mut w = age::encrypt(
            std::slice::from_ref(&recipient),
            Vec::with_capacity(payload.len() + name.len() + 256),
            rng,
        )?;
        w.write_all(RECORD_MAGIC).map_err(AgeError::from)?;
        w.write_all(name.as_bytes()).map_err(AgeError::from)?;
        w.write_all(b"\n").map_err(AgeError::from)?;
        w.write_all(payload).map_err(AgeError::from)?;
        Ok(w.finish()?)
    }

    /// Open a record read as `name`, refusing one sealed under another name, and a payload
    /// longer than `max_payload`.
    pub fn open(
        &self,
        name: &str,
        record: &[u8],
        max_payload: usize,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (found, payload) = self.open_any(record, max_payload)?;
        if found != name {
            return Err(VaultError::MisplacedRecord);
        }
        Ok(payload)
    }

    /// Open a record whatever its name, returning the name it was sealed under (for listing a
    /// home's records).
    pub fn open_any(
        &self,
        record: &[u8],
        max_payload: usize,
    ) -> Result<(String, Zeroizing<Vec<u8>>), VaultError> {
        let max = RECORD_MAGIC.len() + MAX_NAME_LEN + 1 + max_payload;
        let plain = age::decrypt_from_slice(record, std::slice::from_ref(&self.identity), max)
            .map_err(|e| match e {
                AgeError::PlaintextTooLarge { .. } => VaultError::DamagedRecord("too large"),
                _ => VaultError::DamagedRecord("does not decrypt with this home's key"),
            })?;
        let rest = plain
            .strip_prefix(RECORD_MAGIC)
            .ok_or(VaultError::DamagedRecord("unknown version"))?;
        let end = rest
            .iter()
            .take(MAX_NAME_LEN + 1)
            .position(|&b| b == b'\n')
            .ok_or(VaultError::DamagedRecord("no name"))?;
        let name = std::str::from_utf8(&rest[..end])
            .map_err(|_| VaultError::DamagedRecord("name is not text"))?
            .to_string();
        let start = plain.len() - rest.len() + end + 1;
        if plain.len() - start > max_payload {
            return Err(VaultError::DamagedRecord("too large"));
        }
        let mut payload = Zeroizing::new(Vec::with_capacity(plain.len() - start));
        payload.extend_from_slice(&plain[start..]);
        Ok((name, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn a_key_file_opens_with_its_passphrase_only() {
        let key = VaultKey::generate(&mut OsRng);
        let file = key.lock(&pass("correct horse"), 10, &mut OsRng).unwrap();
        let back = VaultKey::unlock(&file, &pass("correct horse")).unwrap();
        assert_eq!(back.file_name("contacts/a"), key.file_name("contacts/a"));
        let sealed = key.seal("contacts/a", b"card", &mut OsRng).unwrap();
        assert_eq!(&back.open("contacts/a", &sealed, 100).unwrap()[..], b"card");
        assert!(matches!(
            VaultKey::unlock(&file, &pass("correct horsE")),
            Err(VaultError::WrongPassphrase)
        ));
        // Changing the passphrase: the same key under a new key file.
        let file2 = back.lock(&pass("new one"), 10, &mut OsRng).unwrap();
        assert!(VaultKey::unlock(&file2, &pass("correct horse")).is_err());
        let again = VaultKey::unlock(&file2, &pass("new one")).unwrap();
        assert_eq!(
            &again.open("contacts/a", &sealed, 100).unwrap()[..],
            b"card"
        );
        assert_eq!(format!("{again:?}"), "VaultKey([secret])");
    }

    #[test]
    fn the_key_file_holds_no_secret_in_the_clear() {
        let key = VaultKey::generate(&mut OsRng);
        let file = key.lock(&pass("p"), 10, &mut OsRng).unwrap();
        let secret = key.identity.to_string_secret();
        let text = String::from_utf8_lossy(&file);
        assert!(!text.contains(secret.expose_secret()));
        assert!(!text.contains(&hex::encode(key.names.as_ref())));
    }

    #[test]
    fn damaged_or_planted_key_files_are_refused_without_panic() {
        let key = VaultKey::generate(&mut OsRng);
        let file = key.lock(&pass("p"), 10, &mut OsRng).unwrap();
        for cut in [0, 10, file.len() / 2, file.len() - 1] {
            assert!(VaultKey::unlock(&file[..cut], &pass("p")).is_err());
        }
        assert!(matches!(
            VaultKey::unlock(&vec![b'a'; MAX_KEY_FILE_LEN + 1], &pass("p")),
            Err(VaultError::DamagedKeyFile(_))
        ));
        // An age file under the passphrase that is not a key file.
        use std::io::Write;
        let mut w = age::encrypt_with_passphrase(&pass("p"), 10, Vec::new(), &mut OsRng).unwrap();
        w.write_all(b"hello").unwrap();
        let other = w.finish().unwrap();
        assert!(matches!(
            VaultKey::unlock(&other, &pass("p")),
            Err(VaultError::DamagedKeyFile("unknown version"))
        ));
        // A key file demanding more work than allowed is refused before the work (the stanza's
        // work factor edited in place: making one for real would take the work).
        let text = String::from_utf8_lossy(&file).into_owned();
        let line_end = text.find("\n-> scrypt ").map(|i| i + 1).unwrap();
        let stanza_end = line_end + text[line_end..].find('\n').unwrap();
        assert!(text[line_end..stanza_end].ends_with(" 10"));
        let mut heavy = file[..stanza_end - 2].to_vec();
        heavy.extend_from_slice(format!("{}", MAX_WORK_FACTOR + 1).as_bytes());
        heavy.extend_from_slice(&file[stanza_end..]);
        assert!(matches!(
            VaultKey::unlock(&heavy, &pass("p")),
            Err(VaultError::DamagedKeyFile(
                "asks for more work than allowed"
            ))
        ));
    }

    #[test]
    fn records_are_bound_to_their_names_and_their_home() {
        let key = VaultKey::generate(&mut OsRng);
        let other = VaultKey::generate(&mut OsRng);
        let a = key.seal("outbox/1", b"envelope one", &mut OsRng).unwrap();
        assert!(matches!(
            key.open("outbox/2", &a, 100),
            Err(VaultError::MisplacedRecord)
        ));
        assert!(matches!(
            other.open("outbox/1", &a, 100),
            Err(VaultError::DamagedRecord(_))
        ));
        let (name, payload) = key.open_any(&a, 100).unwrap();
        assert_eq!(
            (name.as_str(), &payload[..]),
            ("outbox/1", &b"envelope one"[..])
        );
        assert!(matches!(
            key.open("outbox/1", &a, 5),
            Err(VaultError::DamagedRecord("too large"))
        ));
        assert!(
            !String::from_utf8_lossy(&a).contains("outbox"),
            "the name is inside"
        );
        assert_ne!(key.file_name("outbox/1"), other.file_name("outbox/1"));
        assert_ne!(key.file_name("outbox/1"), key.file_name("outbox/2"));
        assert!(key.seal("a\nb", b"", &mut OsRng).is_err());
        assert!(key.seal("", b"", &mut OsRng).is_err());
        // An empty payload is a record too.
        let empty = key.seal("flag", b"", &mut OsRng).unwrap();
        assert!(key.open("flag", &empty, 0).unwrap().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024)) {
            let key = VaultKey::from_seed_for_tests();
            proptest::prop_assert!(key.open_any(&bytes, 1024).is_err());
            proptest::prop_assert!(VaultKey::unlock(&bytes, &pass("p")).is_err());
        }
    }

    impl VaultKey {
        fn from_seed_for_tests() -> Self {
            Self {
                identity: x25519::Identity::from_bytes([7; 32]),
                names: Zeroizing::new([9; 32]),
            }
        }
    }
}
