//! The native scrypt (passphrase) recipient type.

use rand_core::CryptoRngCore;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::b64;
use super::format::Stanza;
use super::limits::MAX_SCRYPT_ENCRYPT_WORK_FACTOR;
use super::primitives::{unwrap_file_key, wrap_file_key, FileKey, WRAPPED_KEY_LEN};
use super::AgeError;

/// Stanza type for passphrase recipients.
pub(crate) const STANZA_TAG: &str = "scrypt";
const SALT_LABEL: &[u8] = b"age-encryption.org/v1/scrypt";
const SALT_LEN: usize = 16;

/// scrypt(N = 2^work_factor, r = 8, p = 1, dkLen = 32, S = label || salt, P = passphrase).
fn derive(
    passphrase: &SecretString,
    salt: &[u8; SALT_LEN],
    work_factor: u8,
) -> Result<Zeroizing<[u8; 32]>, AgeError> {
    let params =
        scrypt::Params::new(work_factor, 8, 1, 32).map_err(|_| AgeError::InvalidStanza {
            kind: STANZA_TAG,
            reason: "the work factor is not usable with scrypt",
        })?;
    let mut full_salt = [0u8; SALT_LABEL.len() + SALT_LEN];
    full_salt[..SALT_LABEL.len()].copy_from_slice(SALT_LABEL);
    full_salt[SALT_LABEL.len()..].copy_from_slice(salt);
    let mut key = Zeroizing::new([0u8; 32]);
    // dkLen 32 matches the output buffer, so this cannot fail.
    scrypt::scrypt(
        passphrase.expose_secret().as_bytes(),
        &full_salt,
        &params,
        key.as_mut(),
    )
    .expect("scrypt output length matches the parameters");
    Ok(key)
}

/// Builds the scrypt stanza for `passphrase` at `work_factor`, with a fresh salt from `rng`.
pub(crate) fn wrap(
    passphrase: &SecretString,
    work_factor: u8,
    file_key: &FileKey,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Stanza, AgeError> {
    if work_factor == 0 || work_factor > MAX_SCRYPT_ENCRYPT_WORK_FACTOR {
        return Err(AgeError::InvalidWorkFactor {
            work_factor,
            max: MAX_SCRYPT_ENCRYPT_WORK_FACTOR,
        });
    }
    if passphrase.expose_secret().is_empty() {
        return Err(AgeError::EmptyPassphrase);
    }
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let key = derive(passphrase, &salt, work_factor)?;
    Ok(Stanza {
        args: vec![
            STANZA_TAG.to_string(),
            b64::encode(&salt),
            work_factor.to_string(),
        ],
        body: wrap_file_key(&key, file_key),
    })
}

/// Parses a work factor argument: `^[1-9][0-9]*$`, as a number (saturating past u64).
fn parse_work_factor(arg: &str) -> Option<u64> {
    let bytes = arg.as_bytes();
    let first = *bytes.first()?;
    if !(b'1'..=b'9').contains(&first) || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in bytes {
        v = v.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    Some(v)
}

/// Validates an scrypt stanza and unwraps it with `passphrase`, refusing work factors above
/// `max_work_factor` before doing any scrypt work.
pub(crate) fn unwrap(
    stanza: &Stanza,
    passphrase: &SecretString,
    max_work_factor: u8,
) -> Result<FileKey, AgeError> {
    let bad = |reason| AgeError::InvalidStanza {
        kind: STANZA_TAG,
        reason,
    };
    if stanza.args.len() != 3 {
        return Err(bad("it must have a salt and a work factor"));
    }
    let salt = b64::decode_exact::<SALT_LEN>(stanza.args[1].as_bytes())
        .ok_or(bad("the salt is not canonical base64 of 16 bytes"))?;
    let wf = parse_work_factor(&stanza.args[2]).ok_or(bad(
        "the work factor is not a decimal number without leading zeros",
    ))?;
    let body: &[u8; WRAPPED_KEY_LEN] = stanza
        .body
        .as_slice()
        .try_into()
        .map_err(|_| bad("the body is not exactly 32 bytes"))?;
    if wf > u64::from(max_work_factor) {
        return Err(AgeError::WorkFactorTooHigh {
            work_factor: wf,
            max: max_work_factor,
        });
    }
    // wf <= max_work_factor <= u8::MAX here.
    let wf = u8::try_from(wf).map_err(|_| bad("the work factor is out of range"))?;
    let key = derive(passphrase, &salt, wf)?;
    unwrap_file_key(&key, body).ok_or(AgeError::WrongPassphrase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn work_factor_syntax() {
        assert_eq!(parse_work_factor("18"), Some(18));
        for bad in ["", "0", "018", "+18", "-1", "0x12", "18a", " 18", "1 8"] {
            assert_eq!(parse_work_factor(bad), None, "{bad:?}");
        }
        assert_eq!(parse_work_factor("99999999999999999999999"), Some(u64::MAX));
    }

    #[test]
    fn wrap_unwrap_and_limits() {
        let pass = SecretString::from("correct horse".to_string());
        let fk = FileKey::generate(&mut OsRng);
        let st = wrap(&pass, 2, &fk, &mut OsRng).unwrap();
        assert_eq!(unwrap(&st, &pass, 20).unwrap().expose(), fk.expose());
        let wrong = SecretString::from("wrong".to_string());
        assert!(matches!(
            unwrap(&st, &wrong, 20),
            Err(AgeError::WrongPassphrase)
        ));
        assert!(matches!(
            unwrap(&st, &pass, 1),
            Err(AgeError::WorkFactorTooHigh {
                work_factor: 2,
                max: 1
            })
        ));
        assert!(matches!(
            wrap(&pass, 0, &fk, &mut OsRng),
            Err(AgeError::InvalidWorkFactor { .. })
        ));
        let empty = SecretString::from(String::new());
        assert!(matches!(
            wrap(&empty, 2, &fk, &mut OsRng),
            Err(AgeError::EmptyPassphrase)
        ));
    }
}
