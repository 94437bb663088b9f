//! The relay's self-signed certificate, made on first start and kept in the data directory.
//!
//! Clients pin the SHA-256 of the DER certificate (printed on recipient cards), so the relay
//! must present the same certificate across restarts: it is generated once, written with the
//! private key readable by the owner only (0600), and reused afterwards.

use anyhow::{bail, Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use vigil_core::ids::CertFingerprint;

/// Certificate file name inside the data directory (DER).
pub const CERT_FILE: &str = "relay-cert.der";
/// Private key file name inside the data directory (PKCS#8 DER, mode 0600).
pub const KEY_FILE: &str = "relay-key.der";

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
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = o
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
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
            let ck = rcgen::generate_simple_self_signed(vec!["vigil-relay".to_string()])
                .context("cannot generate the relay certificate")?;
            let key = ck.signing_key.serialize_der();
            let cert = ck.cert.der().to_vec();
            write_new(&key_path, &key, 0o600)?;
            write_new(&cert_path, &cert, 0o644)?;
            tracing::info!("created a new relay certificate");
            Ok(Identity {
                cert: CertificateDer::from(cert),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            })
        }
        _ => bail!(
            "{} holds only one of {CERT_FILE} and {KEY_FILE}; restore the missing file from backup \
             (a new certificate would not match the fingerprint on recipient cards)",
            dir.display()
        ),
    }
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
