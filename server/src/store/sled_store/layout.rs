//! How the sled store lays out its trees: keys, values, and the item ids a fetcher sees.
//!
//! | tree        | key                                           | value                          |
//! |-------------|-----------------------------------------------|--------------------------------|
//! | `mailboxes` | mailbox id (32)                               | Ed25519 public key (32) [‖ expiry u64] |
//! | `items`     | mailbox id (32) ‖ place (1) ‖ deposit id (16) | kind (1) ‖ coarse time u64 ‖ … |
//! | `alerts`    | alert id (16)                                 | deadline u64 ‖ armed at u64 ‖ last check-in u64 ‖ Arm body |
//! | `notes`     | an `items` key                                | release note (25, as on the wire) |
//! | `item_blobs`| mailbox id (32) ‖ deposit id (16)             | per blob: blob id (16) ‖ length u64 |
//!
//! A `mailboxes` value is the key alone for a mailbox kept until further notice (every mailbox
//! registered before lifetimes existed, and every NGO's), or the key and the Unix time, the
//! start of a UTC day, at which the mailbox is forgotten (a reply mailbox, issue 15).
//!
//! All integers are big-endian. `place` says where the envelope is: `0` in the value itself
//! (envelopes up to [`LARGE_ENVELOPE_MIN`]), `1` in a file of its own beside sled
//! (`envelope_files`), named by the hex of mailbox id ‖ deposit id. Because `place` follows
//! the mailbox id, one prefix scan of a mailbox yields its small envelopes (the urgent text)
//! before its large ones.
//!
//! A value is one of three [`Kind`]s: an envelope held inline (the envelope follows the time),
//! an envelope in a file (its length follows), or an acknowledged deposit (nothing follows): the
//! tombstone that keeps a deposit id remembered until it expires. An ack turns an item into its
//! tombstone in place, so every state of a deposit lives under one key, and one
//! `compare_and_swap(None → item)` both stores a deposit and recognises any repeat (stored or
//! acknowledged). A deposit id is per envelope and a retry resends the same envelope, so a
//! repeat always lands on the same place.
//!
//! An armed alert is one `alerts` value: its times, then the Arm request's body exactly as the
//! wire encodes it (its schedule, keys and envelopes), decoded with the wire's own checks. A
//! release is one sled transaction over `alerts`, `items` and `notes`: the alert goes, each
//! envelope becomes an inline item (alert envelopes are at most 64 KiB) under a deposit id
//! derived from the alert id, with its note under the same key in `notes`.
//!
//! An item deposited with blobs (DepositBlobs) has an `item_blobs` entry under its deposit key:
//! the blobs it refers to. The entry is written (made durable by the same group commit) before
//! the item, and removed when the item leaves (acknowledged or expired), which drops its
//! references; an entry without its item (a crash between the two) is removed at open. The
//! blobs themselves are files (`blob_files`), and their reference counts live in memory, rebuilt
//! from this tree at open.
//!
//! The item id a fetcher sees is derived from the key: the deposit id XOR the first 16 bytes of
//! the mailbox id, so equal deposit ids in two mailboxes give two item ids, and an ack maps an
//! id back to its key within the acking mailbox only.

use crate::store::{flip, StoreError};
use vigil_core::ids::{DepositId, ItemId, MailboxId};

/// Envelopes longer than this are kept in a file of their own, not in sled (see
/// `envelope_files` for why).
pub use crate::store::LARGE_ENVELOPE_MIN;

/// Where an item's envelope is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Place {
    /// In the `items` value, after the time.
    Inline = 0,
    /// In a file of its own; the value holds its length.
    File = 1,
}

impl Place {
    /// Where an envelope of `len` bytes goes.
    pub fn for_len(len: usize) -> Self {
        if len > LARGE_ENVELOPE_MIN {
            Place::File
        } else {
            Place::Inline
        }
    }

    /// From the byte in a key.
    pub fn from_byte(b: u8) -> Result<Self, StoreError> {
        match b {
            0 => Ok(Place::Inline),
            1 => Ok(Place::File),
            _ => Err(StoreError::Corrupt("item key place")),
        }
    }

    /// Both places, in fetch order.
    pub const ALL: [Place; 2] = [Place::Inline, Place::File];
}

/// Mailbox id ‖ deposit id: a tombstone's key, and an envelope file's name.
pub type DepositKey = [u8; 48];
/// Mailbox id ‖ place ‖ deposit id.
pub type ItemKey = [u8; 49];

/// The key of a deposit in a mailbox.
pub fn deposit_key(mailbox: &MailboxId, deposit: &DepositId) -> DepositKey {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(mailbox.as_bytes());
    k[32..].copy_from_slice(deposit.as_bytes());
    k
}

/// The `items` key of a deposit kept at `place`.
pub fn item_key(key: &DepositKey, place: Place) -> ItemKey {
    let mut k = [0u8; 49];
    k[..32].copy_from_slice(&key[..32]);
    k[32] = place as u8;
    k[33..].copy_from_slice(&key[32..]);
    k
}

/// Split an `items` key into its deposit key and place.
pub fn split_item_key(k: &[u8]) -> Result<(DepositKey, Place), StoreError> {
    let k = <&ItemKey>::try_from(k).map_err(|_| StoreError::Corrupt("item key"))?;
    let mut d = [0u8; 48];
    d[..32].copy_from_slice(&k[..32]);
    d[32..].copy_from_slice(&k[33..]);
    Ok((d, Place::from_byte(k[32])?))
}

/// The mailbox id in a deposit key.
pub fn mailbox_of(key: &DepositKey) -> MailboxId {
    let mut m = [0u8; 32];
    m.copy_from_slice(&key[..32]);
    MailboxId(m)
}

/// The item id a fetcher sees for a deposit key.
pub fn item_id(key: &DepositKey) -> ItemId {
    let mut d = [0u8; 16];
    d.copy_from_slice(&key[32..]);
    ItemId(flip(&mailbox_of(key), &d))
}

/// The deposit key an item id of `mailbox` stands for.
pub fn key_of_item(mailbox: &MailboxId, id: &ItemId) -> DepositKey {
    deposit_key(mailbox, &DepositId(flip(mailbox, id.as_bytes())))
}

/// What an `items` value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The envelope follows the time.
    Inline = 0,
    /// The envelope is in a file; its length follows the time.
    File = 1,
    /// Acknowledged: the deposit id is remembered until the time expires.
    Acked = 2,
}

/// A parsed `items` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it holds.
    pub kind: Kind,
    /// The deposit's coarse time.
    pub time: u64,
    /// The envelope's length (0 for a tombstone).
    pub len: u64,
}

impl Entry {
    /// Whether it is a fetchable item (not a tombstone).
    pub fn is_item(&self) -> bool {
        self.kind != Kind::Acked
    }
}

/// Bytes before the envelope or length: kind and time.
pub const VALUE_HEAD_LEN: usize = 9;

fn head(kind: Kind, time: u64, capacity: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_HEAD_LEN + capacity);
    v.push(kind as u8);
    v.extend_from_slice(&time.to_be_bytes());
    v
}

/// The value of an envelope held inline.
pub fn inline_value(time: u64, envelope: &[u8]) -> Vec<u8> {
    let mut v = head(Kind::Inline, time, envelope.len());
    v.extend_from_slice(envelope);
    v
}

/// The value of an envelope of `len` bytes in a file.
pub fn file_value(time: u64, len: u64) -> Vec<u8> {
    let mut v = head(Kind::File, time, 8);
    v.extend_from_slice(&len.to_be_bytes());
    v
}

/// The tombstone of a deposit of coarse time `time`.
pub fn tombstone(time: u64) -> Vec<u8> {
    head(Kind::Acked, time, 0)
}

/// Parse an `items` value.
pub fn entry(v: &[u8]) -> Result<Entry, StoreError> {
    let bad = || StoreError::Corrupt("item value");
    let (&kind, rest) = v.split_first().ok_or_else(bad)?;
    let (time, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let time = u64::from_be_bytes(*time);
    let (kind, len) = match kind {
        0 if !rest.is_empty() => (Kind::Inline, rest.len() as u64),
        1 => (
            Kind::File,
            u64::from_be_bytes(*<&[u8; 8]>::try_from(rest).map_err(|_| bad())?),
        ),
        2 if rest.is_empty() => (Kind::Acked, 0),
        _ => return Err(bad()),
    };
    Ok(Entry { kind, time, len })
}

/// The envelope of an inline value.
pub fn inline_envelope(v: &[u8]) -> Option<&[u8]> {
    match v.split_first() {
        Some((0, rest)) => rest.get(8..),
        _ => None,
    }
}

/// The `mailboxes` value of a mailbox with `public_key`, forgotten at `expires` if given.
pub fn mailbox_value(public_key: &[u8; 32], expires: Option<u64>) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(public_key);
    if let Some(t) = expires {
        v.extend_from_slice(&t.to_be_bytes());
    }
    v
}

/// Parse a `mailboxes` value: the key and the expiry, if any.
pub fn mailbox_record(v: &[u8]) -> Result<([u8; 32], Option<u64>), StoreError> {
    let bad = || StoreError::Corrupt("mailbox key");
    let (key, rest) = v.split_first_chunk::<32>().ok_or_else(bad)?;
    let expires = match rest.len() {
        0 => None,
        8 => Some(u64::from_be_bytes(
            *<&[u8; 8]>::try_from(rest).map_err(|_| bad())?,
        )),
        _ => return Err(bad()),
    };
    Ok((*key, expires))
}

/// Bytes before the Arm body in an `alerts` value: deadline, armed at, last check-in.
const ALERT_TIMES_LEN: usize = 24;

/// The `alerts` value of `a`.
pub fn alert_value(a: &crate::store::Alert) -> Vec<u8> {
    use vigil_core::wire::Message;
    let mut v = Vec::with_capacity(ALERT_TIMES_LEN + a.arm.body_len());
    v.extend_from_slice(&a.deadline.to_be_bytes());
    v.extend_from_slice(&a.armed_at.to_be_bytes());
    v.extend_from_slice(&a.last_checkin_at.to_be_bytes());
    a.arm.encode_head(&mut v);
    v
}

/// Parse an `alerts` value.
pub fn alert_of(v: &[u8]) -> Result<crate::store::Alert, StoreError> {
    use vigil_core::wire::{arm::Arm, Message};
    let bad = || StoreError::Corrupt("alert value");
    let (times, body) = v.split_at_checked(ALERT_TIMES_LEN).ok_or_else(bad)?;
    let t = |i: usize| u64::from_be_bytes(times[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let arm = Arm::decode(body, body.len()).map_err(|_| bad())?;
    Ok(crate::store::Alert {
        arm,
        deadline: t(0),
        armed_at: t(1),
        last_checkin_at: t(2),
    })
}

/// An `item_blobs` value: each blob's id and length.
pub fn blobs_value(blobs: &[vigil_core::wire::fetch::BlobRef]) -> Vec<u8> {
    let mut v = Vec::with_capacity(blobs.len() * 24);
    for b in blobs {
        v.extend_from_slice(b.id.as_bytes());
        v.extend_from_slice(&b.len.to_be_bytes());
    }
    v
}

/// The blobs of an `item_blobs` value.
pub fn blobs_of(v: &[u8]) -> Result<Vec<vigil_core::wire::fetch::BlobRef>, StoreError> {
    if !v.len().is_multiple_of(24) {
        return Err(StoreError::Corrupt("item blobs"));
    }
    Ok(v.chunks_exact(24)
        .map(|c| {
            let mut id = [0u8; 16];
            id.copy_from_slice(&c[..16]);
            let mut len = [0u8; 8];
            len.copy_from_slice(&c[16..]);
            vigil_core::wire::fetch::BlobRef {
                id: vigil_core::ids::BlobId(id),
                len: u64::from_be_bytes(len),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids_round_trip() {
        let m = MailboxId([7; 32]);
        let d = DepositId([9; 16]);
        let k = deposit_key(&m, &d);
        for place in Place::ALL {
            assert_eq!(split_item_key(&item_key(&k, place)).unwrap(), (k, place));
        }
        let id = item_id(&k);
        assert_ne!(id.as_bytes(), d.as_bytes(), "ids differ from deposit ids");
        assert_eq!(key_of_item(&m, &id), k);
        assert_ne!(item_id(&deposit_key(&MailboxId([8; 32]), &d)), id);
        assert!(split_item_key(&[0; 48]).is_err());
        let mut bad = item_key(&k, Place::File);
        bad[32] = 7;
        assert!(split_item_key(&bad).is_err());
    }

    #[test]
    fn mailbox_values_are_the_key_and_maybe_an_expiry() {
        let v = mailbox_value(&[3; 32], None);
        assert_eq!(v, [3; 32], "as relays before lifetimes wrote them");
        assert_eq!(mailbox_record(&v).unwrap(), ([3; 32], None));
        let v = mailbox_value(&[3; 32], Some(86_400 * 7));
        assert_eq!(v.len(), 40);
        assert_eq!(mailbox_record(&v).unwrap(), ([3; 32], Some(86_400 * 7)));
        for bad in [&[][..], &[0; 31], &[0; 33], &[0; 41]] {
            assert!(mailbox_record(bad).is_err(), "{} bytes", bad.len());
        }
    }

    #[test]
    fn values_carry_kind_time_and_length() {
        let v = inline_value(3600, b"abc");
        assert_eq!(
            entry(&v).unwrap(),
            Entry {
                kind: Kind::Inline,
                time: 3600,
                len: 3
            }
        );
        assert_eq!(inline_envelope(&v), Some(&b"abc"[..]));
        let v = file_value(7200, 1 << 20);
        assert_eq!(
            entry(&v).unwrap(),
            Entry {
                kind: Kind::File,
                time: 7200,
                len: 1 << 20
            }
        );
        assert_eq!(inline_envelope(&v), None);
        let t = tombstone(7200);
        assert!(!entry(&t).unwrap().is_item());
        for bad in [&[][..], &[0; 9], &[1; 12], &[2; 10], &[7; 9]] {
            assert!(entry(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Place::for_len(LARGE_ENVELOPE_MIN), Place::Inline);
        assert_eq!(Place::for_len(LARGE_ENVELOPE_MIN + 1), Place::File);
    }
}
