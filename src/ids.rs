//! Typed identifiers shared by the client, the relay and the wire protocol.
//!
//! Every id is a fixed-size byte array wrapped in its own type so that a mailbox id can never be
//! passed where a deposit id is expected. Ids are not secrets, but they are compared in constant
//! time anyway where a peer supplies them (see [`MailboxId::ct_eq`]) so that lookups leak nothing
//! about stored ids through timing.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;

/// Why a textual id could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The text was not hex of the expected length.
    #[error("expected {expected} hex digits (colons allowed), got {got} characters; copy the value again")]
    BadLength {
        /// Hex digits expected.
        expected: usize,
        /// Characters seen after removing colons.
        got: usize,
    },
    /// The text contained a character that is not a hex digit.
    #[error("not a hex string; copy the value again")]
    NotHex,
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], IdError> {
    let cleaned: String = s.trim().chars().filter(|c| *c != ':').collect();
    if cleaned.len() != N * 2 {
        return Err(IdError::BadLength {
            expected: N * 2,
            got: cleaned.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(&cleaned, &mut out).map_err(|_| IdError::NotHex)?;
    Ok(out)
}

macro_rules! byte_id {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length of the id in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Constant-time equality, for ids that arrive from a peer.
            pub fn ct_eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }

            /// Build from a slice of exactly [`Self::LEN`] bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(b).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), hex::encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_hex::<$len>(s).map(Self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

byte_id!(
    /// SHA-256 of a relay's DER certificate: what a recipient card pins.
    CertFingerprint,
    32
);
byte_id!(
    /// A mailbox at a relay: derived from the mailbox's Ed25519 public key by [`MailboxId::for_key`].
    MailboxId,
    32
);
byte_id!(
    /// Chosen at random by a reporter's client for one deposit and kept in its outbox, so that a
    /// retry after a lost "stored" reply is recognised by the relay and not stored twice.
    DepositId,
    16
);
byte_id!(
    /// The relay's name for one stored item in a mailbox; used to acknowledge it.
    ItemId,
    16
);
byte_id!(
    /// A check-in alert at a relay: chosen at random by the reporter's client when it arms the
    /// alert (like a [`DepositId`]), so that re-arming after a lost answer is recognised, and
    /// named again by every check-in and disarm. It names the alert only: it is not derived from
    /// any key of the reporter's.
    AlertId,
    16
);

byte_id!(
    /// An attachment blob at a relay: 128 random bits chosen by the reporter's client for one
    /// encrypted attachment. It is also the capability to download the blob: the relay reveals
    /// it only to the owner of a mailbox whose item refers to it (in an authenticated Fetch).
    BlobId,
    16
);

byte_id!(
    /// A signed report, for one NGO: the SHA-256 of its envelope's signed inner layer (everything
    /// before the signature; `envelope::Opened::digest`). The reporter's client knows it from
    /// sealing, the NGO's from opening; the relay never sees it (it travels only inside
    /// encrypted thread messages, `crate::thread`). Receipts and replies name the report by it,
    /// so a receipt for one report cannot be passed off as one for another.
    ReportId,
    32
);

impl CertFingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// The fingerprint as colon-separated upper-case hex pairs, for reading aloud.
    pub fn to_colon_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl MailboxId {
    /// Domain separator: a mailbox id is a hash of the key, never the key itself, so that the id
    /// printed on a card or in a log line cannot be confused with key material.
    const DOMAIN: &'static [u8] = b"vigil/v1/mailbox-id\0";

    /// The mailbox id that belongs to an Ed25519 mailbox public key.
    pub fn for_key(mailbox_public_key: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(Self::DOMAIN);
        h.update(mailbox_public_key);
        Self(h.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_with_and_without_colons() {
        let fp = CertFingerprint::of_der(b"certificate");
        let plain: CertFingerprint = fp.to_string().parse().unwrap();
        let colons: CertFingerprint = fp.to_colon_hex().parse().unwrap();
        assert_eq!(plain, fp);
        assert_eq!(colons, fp);
    }

    #[test]
    fn bad_ids_are_refused() {
        assert_eq!(
            "abcd".parse::<DepositId>(),
            Err(IdError::BadLength {
                expected: 32,
                got: 4
            })
        );
        assert_eq!("zz".repeat(16).parse::<DepositId>(), Err(IdError::NotHex));
    }

    #[test]
    fn mailbox_id_depends_on_key() {
        assert_ne!(MailboxId::for_key(&[1; 32]), MailboxId::for_key(&[2; 32]));
    }
}
