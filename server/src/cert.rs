//! The relay's self-signed certificate, made on first start and kept in the data directory.
//!
//! Clients pin the SHA-256 of the DER certificate (printed on recipient cards), so the relay
//! must present the same certificate across restarts: it is generated once, written with the
//! private key readable by the owner only (0600), and reused afterwards.
//!
//! Rotation (`vigil-relay cert rotate`, then `cert promote`): [`rotate`] makes a *next*
//! certificate beside the current one, which the NGOs announce on their cards
//! (`relay_fingerprint_next`) so reporters accept both. The relay keeps serving only the current
//! certificate. [`promote`] later makes the next one current and wipes the old key; it takes
//! effect when the relay (re)starts. See `docs/operations.md`, "Rotating the certificate".
//!
//! A new certificate looks like an ordinary server's (see [`VALIDITY_DAYS`] and `generate`): a
//! scanner cannot tell a Vigil relay by its certificate. Certificates made before that (subject
//! `rcgen self signed cert`, SAN `vigil-relay`, valid 1975–4096) are kept as they are: clients
//! pin them; a rotation replaces one.

use anyhow::{bail, Context, Result};
use rand::Rng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use vigil_core::ids::CertFingerprint;
use vigil_fs::Access;

/// Certificate file name inside the data directory (DER).
pub const CERT_FILE: &str = "relay-cert.der";
/// Private key file name inside the data directory (PKCS#8 DER, mode 0600).
pub const KEY_FILE: &str = "relay-key.der";
/// The next certificate, made by [`rotate`], waiting for [`promote`] (DER).
pub const NEXT_CERT_FILE: &str = "relay-cert-next.der";
/// The next certificate's private key (PKCS#8 DER, mode 0600).
pub const NEXT_KEY_FILE: &str = "relay-key-next.der";
/// The retired key during [`promote`]; wiped and removed before `promote` returns.
pub const OLD_KEY_FILE: &str = "relay-key-old.der";

/// The front certificate, shown in TLS to everyone (DER), made on first start.
pub const FRONT_CERT_FILE: &str = "front-cert.der";
/// The front certificate's private key (PKCS#8 DER, mode 0600).
pub const FRONT_KEY_FILE: &str = "front-key.der";

/// What the relay shows in TLS to whoever connects (`vigil_core::wire::knock`): a plain
/// self-signed certificate made here, or the operator's own (e.g. from an ACME client). Cards
/// pin the [`Identity`] instead, which is shown only inside TLS to a client that knocked with
/// it, so neither scanners nor a man in the middle learn what cards pin.
pub struct Front {
    /// Certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
}

/// The front certificate: the operator's PEM files when given, else the one in `dir`, made
/// (named `name`, or a random host name) when absent or older than [`VALIDITY_DAYS`] less a
/// month (nobody pins it, so it is simply renewed at a start near its end date).
pub fn load_front(dir: &Path, name: Option<&str>, files: Option<(&Path, &Path)>) -> Result<Front> {
    use rustls::pki_types::pem::PemObject;
    if let Some((cert, key)) = files {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("cannot read the TLS certificate chain {}: {e}; give a PEM file (e.g. fullchain.pem from your ACME client)", cert.display()))?;
        if chain.is_empty() {
            bail!(
                "{} holds no PEM certificate; give the chain (e.g. fullchain.pem)",
                cert.display()
            );
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the TLS key {}: {e}; give a PEM private key (e.g. privkey.pem)",
                key.display()
            )
        })?;
        return Ok(Front { chain, key });
    }
    ensure_data_dir(dir)?;
    let cert_path = dir.join(FRONT_CERT_FILE);
    let key_path = dir.join(FRONT_KEY_FILE);
    let renew_after = Duration::from_secs((VALIDITY_DAYS - 30) * 86_400);
    let fresh = fs::metadata(&cert_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < renew_after);
    if fresh && key_path.exists() {
        let cert =
            fs::read(&cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
        let key =
            fs::read(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
        return Ok(Front {
            chain: vec![CertificateDer::from(cert)],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        });
    }
    let (cert, key) = generate(name)?;
    write_file(&key_path, &key, Access::Private)?;
    write_file(&cert_path, &cert, Access::Public)?;
    Ok(Front {
        chain: vec![CertificateDer::from(cert)],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    })
}

/// The relay's TLS identity.
pub struct Identity {
    /// DER certificate.
    pub cert: CertificateDer<'static>,
    /// PKCS#8 private key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// SHA-256 of the DER certificate.
    pub fn fingerprint(&self) -> CertFingerprint {
        CertFingerprint::of_der(&self.cert)
    }
}

/// Create the data directory (0700) if needed.
pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    vigil_fs::create_private_dir(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Write a key (owner only) or a certificate durably, replacing what is there.
fn write_file(path: &Path, bytes: &[u8], access: Access) -> Result<()> {
    Ok(vigil_fs::write_atomic(path, bytes, access)?)
}

/// Load the identity from `dir`, creating it (and `dir`) if absent, with a random host name.
pub fn load_or_create(dir: &Path) -> Result<Identity> {
    load_or_create_named(dir, None)
}

/// [`load_or_create`]; a new certificate is named `name` (the operator's `cert_name`) or, if
/// `None`, a random host name. An existing certificate is used as it is, whatever its name:
/// clients pin it.
pub fn load_or_create_named(dir: &Path, name: Option<&str>) -> Result<Identity> {
    ensure_data_dir(dir)?;
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            warn_if_key_readable_by_others(&key_path);
            let cert = fs::read(&cert_path)
                .with_context(|| format!("cannot read {}", cert_path.display()))?;
            let key = fs::read(&key_path)
                .with_context(|| format!("cannot read {}", key_path.display()))?;
            Ok(Identity {
                cert: CertificateDer::from(cert),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            })
        }
        (false, false) => {
            let (cert, key) = generate(name)?;
            write_file(&key_path, &key, Access::Private)?;
            write_file(&cert_path, &cert, Access::Public)?;
            tracing::info!("created a new relay certificate");
            Ok(Identity {
                cert: CertificateDer::from(cert),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            })
        }
        _ if dir.join(NEXT_KEY_FILE).exists() || dir.join(OLD_KEY_FILE).exists() => bail!(
            "{} is in the middle of `vigil-relay cert promote` ({KEY_FILE} or {CERT_FILE} is \
             missing); run `vigil-relay cert promote --data {}` again to finish it",
            dir.display(),
            dir.display()
        ),
        _ => bail!(
            "{} holds only one of {CERT_FILE} and {KEY_FILE}; restore the missing file from backup \
             (a new certificate would not match the fingerprint on recipient cards)",
            dir.display()
        ),
    }
}

/// Days a new certificate is valid: about a year, like an ordinary server's. Vigil clients pin
/// the certificate's fingerprint and ignore its dates, so one past its date keeps working; the
/// date only matters to a scanner, for which an expired self-signed certificate stands out
/// (rotate yearly: `docs/operations.md`, "Rotating the certificate").
pub const VALIDITY_DAYS: u64 = 365;

/// Why a certificate name is not usable.
#[derive(Debug, thiserror::Error)]
pub enum CertNameError {
    /// Not a DNS host name.
    #[error(
        "certificate name {0:?} is not a host name (letters, digits, '-' and '.', at most 253 \
         characters, labels of 1 to 63)"
    )]
    NotAHostName(String),
}

/// Check an operator-chosen certificate name: an ordinary DNS host name.
pub fn check_cert_name(name: &str) -> Result<(), CertNameError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(CertNameError::NotAHostName(name.to_string()))
    }
}

/// A host name that looks like any small server's: `mail3.toravemi.net`. Nothing in it is
/// constant across relays but the shape, which is common.
fn random_host_name(rng: &mut impl rand::Rng) -> String {
    use rand::seq::SliceRandom;
    const HOSTS: &[&str] = &[
        "mail", "www", "srv", "host", "node", "web", "app", "cloud", "vps", "edge",
    ];
    const TLDS: &[&str] = &["com", "net", "org", "io", "eu", "de", "nl", "fr"];
    const CONSONANTS: &[u8] = b"bcdfgklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let mut domain = String::new();
    for _ in 0..rng.gen_range(2..=4) {
        domain.push(char::from(*CONSONANTS.choose(rng).unwrap_or(&b'k')));
        domain.push(char::from(*VOWELS.choose(rng).unwrap_or(&b'a')));
    }
    let host = HOSTS.choose(rng).unwrap_or(&"srv");
    let tld = TLDS.choose(rng).unwrap_or(&"net");
    match rng.gen_range(0..3) {
        0 => format!("{host}.{domain}.{tld}"),
        _ => format!("{host}{}.{domain}.{tld}", rng.gen_range(1..=20)),
    }
}

/// A new self-signed certificate and its key (PKCS#8), named `name` or a random host name.
///
/// It is made to look like an ordinary server's, so the certificate alone does not mark a
/// Vigil relay to a scanner: the subject and the one SAN are the host name (no fixed name),
/// valid from a random 1 to 10 days ago for [`VALIDITY_DAYS`] (rcgen's default is 1975 to 4096),
/// with a serial derived from the key. Clients pin its fingerprint; neither the name nor the
/// dates are checked by them.
fn generate(name: Option<&str>) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut rng = rand::thread_rng();
    let name = match name {
        Some(n) => {
            check_cert_name(n)?;
            n.to_string()
        }
        None => random_host_name(&mut rng),
    };
    let mut params = rcgen::CertificateParams::new(vec![name.clone()])
        .context("cannot make the relay certificate's parameters")?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, name);
    params.distinguished_name = dn;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let back = Duration::from_secs(rng.gen_range(86_400..=10 * 86_400));
    let not_before = rcgen::date_time_ymd(1970, 1, 1) + now.saturating_sub(back);
    params.not_before = not_before;
    params.not_after = not_before + Duration::from_secs(VALIDITY_DAYS * 86_400);
    let key = rcgen::KeyPair::generate().context("cannot generate the relay key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot generate the relay certificate")?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

/// Check that `key` is the private key of `cert`, so that promoting never installs a pair the
/// relay could not serve with.
fn check_pair(cert: &[u8], key: &[u8]) -> Result<()> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| anyhow::anyhow!("unusable private key: {e}"))?;
    let ck = rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert.to_vec())], signing);
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

fn fingerprint_of_file(path: &Path) -> Result<CertFingerprint> {
    let der = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(CertFingerprint::of_der(&der))
}

fn sync_dir(dir: &Path) -> Result<()> {
    Ok(vigil_fs::sync_dir(dir)?)
}

/// Overwrite a file with zeros, sync, then unlink it. The overwrite is best effort: on SSDs
/// (wear levelling), copy-on-write and journaling file systems, and with snapshots or backups,
/// the old bytes may survive elsewhere; only full-disk encryption of the data directory makes
/// their recovery hopeless. A missing file is not an error.
pub fn wipe_and_remove(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
        Ok(m) if m.is_file() => {
            if let Ok(mut f) = fs::OpenOptions::new().write(true).open(path) {
                let zeros = vec![0u8; usize::try_from(m.len()).unwrap_or(0).min(1 << 20)];
                if f.write_all(&zeros).is_ok() {
                    let _ = f.sync_all();
                }
            }
        }
        Ok(_) => {}
    }
    fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    if let Some(d) = path.parent() {
        sync_dir(d)?;
    }
    Ok(())
}

/// What [`rotate`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Fingerprint of the next certificate, to hand to NGOs.
    pub next: CertFingerprint,
    /// Whether it was made now (false: one already waited and was kept).
    pub created: bool,
}

/// Make a next certificate and key beside the current ones (key 0600), unless one already
/// exists: then its fingerprint is returned unchanged, so running this twice announces one
/// certificate, not two. `force` replaces an existing next certificate (its key is wiped first);
/// cards that already announce the old next fingerprint must then be re-issued.
///
/// The relay must already have a current certificate: rotating an empty or mistyped data
/// directory is refused rather than creating a certificate nobody pins.
pub fn rotate(dir: &Path, force: bool) -> Result<Rotation> {
    rotate_named(dir, force, None)
}

/// [`rotate`], naming a new next certificate `name` (or a random host name if `None`).
pub fn rotate_named(dir: &Path, force: bool, name: Option<&str>) -> Result<Rotation> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if !cert_path.exists() || !key_path.exists() {
        bail!(
            "{} holds no current certificate ({CERT_FILE} and {KEY_FILE}); check --data, or \
             finish an interrupted `vigil-relay cert promote` first",
            dir.display()
        );
    }
    let next_cert = dir.join(NEXT_CERT_FILE);
    let next_key = dir.join(NEXT_KEY_FILE);
    match (next_cert.exists(), next_key.exists()) {
        (true, true) if !force => {
            return Ok(Rotation {
                next: fingerprint_of_file(&next_cert)?,
                created: false,
            })
        }
        (false, false) => {}
        (true, true) => {}
        _ if force => {}
        _ => bail!(
            "{} holds only one of {NEXT_CERT_FILE} and {NEXT_KEY_FILE} (an interrupted rotate?); \
             run `vigil-relay cert rotate --force` to make a new next certificate",
            dir.display()
        ),
    }
    wipe_and_remove(&next_key)?;
    let _ = fs::remove_file(&next_cert);
    let (cert, key) = generate(name)?;
    write_file(&next_key, &key, Access::Private)?;
    write_file(&next_cert, &cert, Access::Public)?;
    sync_dir(dir)?;
    Ok(Rotation {
        next: CertFingerprint::of_der(&cert),
        created: true,
    })
}

/// Fingerprint of the next certificate made by [`rotate`], if there is one.
pub fn next_fingerprint(dir: &Path) -> Result<Option<CertFingerprint>> {
    let next_cert = dir.join(NEXT_CERT_FILE);
    if !next_cert.exists() {
        return Ok(None);
    }
    if !dir.join(NEXT_KEY_FILE).exists() {
        bail!(
            "{} holds {NEXT_CERT_FILE} without {NEXT_KEY_FILE}; run `vigil-relay cert rotate --force`",
            dir.display()
        );
    }
    fingerprint_of_file(&next_cert).map(Some)
}

/// What [`promote`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promotion {
    /// The certificate that was current (None if its file was already replaced by an
    /// interrupted promote).
    pub old: Option<CertFingerprint>,
    /// The certificate that is current now.
    pub current: CertFingerprint,
}

/// Make the next certificate current and wipe the old key ([`wipe_and_remove`]). A running
/// relay keeps serving the old certificate until it restarts: stop it first, or restart it
/// right after.
///
/// Crash safety: the old key is renamed aside first, so until the new key is in place the data
/// directory holds a certificate without a key and the relay refuses to start (it never
/// generates a fresh certificate in that state); running `promote` again finishes the job.
pub fn promote(dir: &Path) -> Result<Promotion> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let next_cert = dir.join(NEXT_CERT_FILE);
    let next_key = dir.join(NEXT_KEY_FILE);
    let old_key = dir.join(OLD_KEY_FILE);
    let complete = next_key.exists() && next_cert.exists();
    let resuming = next_key.exists() && !next_cert.exists() && !key_path.exists();
    if !(complete || resuming) {
        bail!(
            "{} holds no next certificate; make one with `vigil-relay cert rotate --data {}` first",
            dir.display(),
            dir.display()
        );
    }
    let old = if next_cert.exists() && cert_path.exists() {
        Some(fingerprint_of_file(&cert_path)?)
    } else {
        None
    };
    let new_cert = if next_cert.exists() {
        &next_cert
    } else {
        &cert_path
    };
    check_pair(&fs::read(new_cert)?, &fs::read(&next_key)?).with_context(|| {
        format!(
            "the next certificate and key in {} do not belong together; nothing was changed; \
             run `vigil-relay cert rotate --force` and announce the new next fingerprint",
            dir.display()
        )
    })?;
    if key_path.exists() {
        if old_key.exists() {
            wipe_and_remove(&old_key)?;
        }
        fs::rename(&key_path, &old_key)
            .with_context(|| format!("cannot move {} aside", key_path.display()))?;
        sync_dir(dir)?;
    }
    if next_cert.exists() {
        fs::rename(&next_cert, &cert_path)
            .with_context(|| format!("cannot install {}", cert_path.display()))?;
        sync_dir(dir)?;
    }
    fs::rename(&next_key, &key_path)
        .with_context(|| format!("cannot install {}", key_path.display()))?;
    sync_dir(dir)?;
    wipe_and_remove(&old_key)?;
    Ok(Promotion {
        old,
        current: fingerprint_of_file(&cert_path)?,
    })
}

fn warn_if_key_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "{} is readable by other users; run chmod 600 on it",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every X.509 time in `der` (UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime
    /// `YYYYMMDDHHMMSSZ`), as (year, day of year approximated as month * 31 + day).
    fn times(der: &[u8]) -> Vec<i64> {
        let mut out = Vec::new();
        for i in 0..der.len().saturating_sub(2) {
            let (tag, len) = (der[i], usize::from(der[i + 1]));
            let Some(v) = der.get(i + 2..i + 2 + len) else {
                continue;
            };
            let digits =
                |s: &[u8]| -> Option<i64> { std::str::from_utf8(s).ok()?.parse::<i64>().ok() };
            let (year, rest) = match (tag, len) {
                (0x17, 13) if v[12] == b'Z' => {
                    let Some(yy) = digits(&v[0..2]) else { continue };
                    (if yy < 50 { 2000 + yy } else { 1900 + yy }, &v[2..])
                }
                (0x18, 15) if v[14] == b'Z' => {
                    let Some(y) = digits(&v[0..4]) else { continue };
                    (y, &v[4..])
                }
                _ => continue,
            };
            let (Some(m), Some(d)) = (digits(&rest[0..2]), digits(&rest[2..4])) else {
                continue;
            };
            out.push(year * 372 + m * 31 + d);
        }
        out
    }

    /// Issue 11, finding 4: a new certificate does not mark the server as a Vigil relay.
    #[test]
    fn a_new_certificate_looks_ordinary() {
        for _ in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            let id = load_or_create(dir.path()).unwrap();
            let der = id.cert.as_ref();
            let lower: Vec<u8> = der.iter().map(u8::to_ascii_lowercase).collect();
            assert!(
                !lower.windows(5).any(|w| w == b"vigil"),
                "the certificate names vigil"
            );
            assert!(
                !lower.windows(6).any(|w| w == b"rcgen "),
                "the certificate names rcgen"
            );
            let t = times(der);
            assert_eq!(t.len(), 2, "not before and not after");
            // Valid for at most about 13 months.
            assert!(t[1] - t[0] <= 13 * 31, "validity {} days", t[1] - t[0]);
        }
    }

    #[test]
    fn the_front_certificate_is_kept_differs_from_the_identity_and_may_be_the_operators() {
        let dir = tempfile::tempdir().unwrap();
        let identity = load_or_create(dir.path()).unwrap();
        let a = load_front(dir.path(), None, None).unwrap();
        let b = load_front(dir.path(), None, None).unwrap();
        assert_eq!(a.chain, b.chain, "made once, then kept");
        assert_ne!(
            a.chain[0], identity.cert,
            "the pinned certificate is never the front"
        );
        // The operator's PEM files (as an ACME client writes them).
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["relay.example.org".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.path().join("fullchain.pem"),
            dir.path().join("privkey.pem"),
        );
        fs::write(&c, cert.pem()).unwrap();
        fs::write(&k, key.serialize_pem()).unwrap();
        let op = load_front(dir.path(), None, Some((&c, &k))).unwrap();
        assert_eq!(op.chain[0].as_ref(), cert.der().as_ref());
        fs::write(&c, "not a certificate").unwrap();
        assert!(load_front(dir.path(), None, Some((&c, &k))).is_err());
    }

    #[test]
    fn a_chosen_name_is_used_and_a_bad_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create_named(dir.path(), Some("mail.example.org")).unwrap();
        assert!(id.cert.windows(16).any(|w| w == b"mail.example.org"));
        for bad in ["", "a..b", "-a.org", "a b.org", "é.org", &"a".repeat(64)] {
            assert!(check_cert_name(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(load_or_create_named(dir.path(), Some("not a name")).is_err());
    }

    #[test]
    fn random_names_are_host_names() {
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let n = random_host_name(&mut rng);
            check_cert_name(&n).unwrap();
            assert!(n.contains('.'), "{n}");
        }
    }
}
