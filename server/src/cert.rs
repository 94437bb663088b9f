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

use anyhow::{bail, Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fs;
use std::io::Write;
use std::path::Path;
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

/// Load the identity from `dir`, creating it (and `dir`) if absent.
pub fn load_or_create(dir: &Path) -> Result<Identity> {
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
            let (cert, key) = generate()?;
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

fn generate() -> Result<(Vec<u8>, Vec<u8>)> {
    let ck = rcgen::generate_simple_self_signed(vec!["vigil-relay".to_string()])
        .context("cannot generate the relay certificate")?;
    Ok((ck.cert.der().to_vec(), ck.signing_key.serialize_der()))
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
    let (cert, key) = generate()?;
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
