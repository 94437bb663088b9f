//! How the sled store lays out its trees: keys, values, and the item ids a fetcher sees.
//!
//! | tree        | key                                        | value                            |
//! |-------------|--------------------------------------------|----------------------------------|
//! | `mailboxes` | mailbox id (32)                            | Ed25519 public key (32)          |
//! | `items`     | mailbox id (32) ‖ place (1) ‖ deposit id (16) | coarse time u64 ‖ envelope (place 0) or ‖ length u64 (place 1) |
//! | `acked`     | mailbox id (32) ‖ deposit id (16)          | coarse time u64 of the deposit   |
//!
//! All integers are big-endian. `place` says where the envelope is: `0` in the value itself
//! (envelopes up to [`LARGE_ENVELOPE_MIN`]), `1` in a file of its own beside sled
//! (`envelope_files`), named by the hex of mailbox id ‖ deposit id. Because `place` follows
//! the mailbox id, one prefix scan of a mailbox yields its small envelopes (the urgent text)
//! before its large ones. A deposit id is per envelope and a retry resends the same envelope,
//! so a repeat always lands on the same key and one `compare_and_swap` makes deposits
//! idempotent.
//!
//! An acknowledged deposit leaves an `acked` entry (its tombstone), so a late retry is still
//! recognised; expiry removes items and tombstones alike by their coarse time.
//!
//! The item id a fetcher sees is derived from the key: the deposit id XOR the first 16 bytes of
//! the mailbox id, so equal deposit ids in two mailboxes give two item ids, and an ack maps an
//! id back to its key within the acking mailbox only.

use crate::store::StoreError;
use vigil_core::ids::{DepositId, ItemId, MailboxId};

/// Envelopes longer than this are kept in a file of their own, not in sled (see
/// `envelope_files` for why).
pub const LARGE_ENVELOPE_MIN: usize = 64 * 1024;

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

/// Item id of (mailbox, deposit id), and deposit id of (mailbox, item id): one XOR.
fn flip(mailbox: &MailboxId, id: &[u8; 16]) -> [u8; 16] {
    let mut out = *id;
    for (o, m) in out.iter_mut().zip(mailbox.as_bytes()) {
        *o ^= m;
    }
    out
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

/// An `items` value: the coarse time, then the envelope (inline) or its length (file).
pub fn item_value(time: u64, place: Place, envelope: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + envelope.len().min(LARGE_ENVELOPE_MIN));
    v.extend_from_slice(&time.to_be_bytes());
    match place {
        Place::Inline => v.extend_from_slice(envelope),
        Place::File => v.extend_from_slice(&(envelope.len() as u64).to_be_bytes()),
    }
    v
}

/// A file item's value: the coarse time and the length.
pub fn file_value(time: u64, len: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&time.to_be_bytes());
    v[8..].copy_from_slice(&len.to_be_bytes());
    v
}

fn u64_at(v: &[u8], at: usize, what: &'static str) -> Result<u64, StoreError> {
    v.get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or(StoreError::Corrupt(what))
}

/// The coarse time at the start of an `items` or `acked` value.
pub fn time_of(v: &[u8]) -> Result<u64, StoreError> {
    u64_at(v, 0, "stored time")
}

/// The envelope length an `items` value stands for.
pub fn len_of(v: &[u8], place: Place) -> Result<u64, StoreError> {
    match place {
        Place::Inline => v
            .len()
            .checked_sub(8)
            .map(|n| n as u64)
            .ok_or(StoreError::Corrupt("inline item value")),
        Place::File => u64_at(v, 8, "file item length"),
    }
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
    fn values_carry_time_and_length() {
        let v = item_value(3600, Place::Inline, b"abc");
        assert_eq!(
            (time_of(&v).unwrap(), len_of(&v, Place::Inline).unwrap()),
            (3600, 3)
        );
        let v = file_value(7200, 1 << 20);
        assert_eq!(
            (time_of(&v).unwrap(), len_of(&v, Place::File).unwrap()),
            (7200, 1 << 20)
        );
        assert!(time_of(&[1, 2]).is_err());
        assert!(len_of(&[1, 2], Place::Inline).is_err());
        assert_eq!(Place::for_len(LARGE_ENVELOPE_MIN), Place::Inline);
        assert_eq!(Place::for_len(LARGE_ENVELOPE_MIN + 1), Place::File);
    }
}
