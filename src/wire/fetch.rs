//! Fetch: the holder of a mailbox key fetches stored items; the relay answers Items.
//!
//! Items stay at the relay until acknowledged (see [`super::ack`]); a client fetches again after
//! acknowledging to get more. The relay streams an Items response out piece by piece: it knows
//! every item's length before it reads a byte of any (so it can write the frame header first),
//! then writes each item's 20-byte head ([`item_head`]) and its envelope. The bytes are the same
//! as those of [`Items`] encoded whole, which clients and tests use.
//!
//! A fetch with the [`WITH_NOTES`] flag set in `max_items` asks for each item's release note
//! (`super::alert::ReleaseNote`, for envelopes released from a check-in alert): the Items answer
//! then sets the high bit of its count and carries [`NOTE_LEN`] bytes after every item's head
//! (all zero for an item without a note). A fetch without the flag gets exactly the bytes it got
//! before notes existed.

use super::alert::{ReleaseNote, NOTE_LEN};
use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{
    FRAME_HEADER_LEN, MAX_ENVELOPE_LEN, MAX_FETCH_RESPONSE_BYTES, MAX_ITEMS_PER_FETCH, NONCE_LEN,
    PROTOCOL_VERSION, SIGNATURE_LEN,
};
use crate::reader::Reader;
use super::WireError;
use crate::ids::{ItemId, MailboxId};
use sha2::{Digest, Sha256};

/// The label signed into a fetch proof.
pub const PURPOSE: Purpose = Purpose::new(b"fetch\0");

/// Fetch body: mailbox id, nonce, max items (u32), signature.
pub const BODY_LEN: usize = MailboxId::LEN + NONCE_LEN + 4 + SIGNATURE_LEN;
/// Per-item overhead in an Items response: item id (16) + length (u32).
pub const ITEM_HEAD_LEN: usize = ItemId::LEN + 4;
/// Largest Items body: count (u16) + per-item heads and notes + envelope bytes.
pub const MAX_ITEMS_BODY_LEN: usize =
    2 + (ITEM_HEAD_LEN + NOTE_LEN) * MAX_ITEMS_PER_FETCH as usize + MAX_FETCH_RESPONSE_BYTES;

/// Set in a Fetch's `max_items` to ask for release notes. The bit is part of the signed
/// `max_items`, so nobody can add or strip it on the way; a relay that predates notes refuses it
/// as too many items (TooLarge), never answers it with notes missing silently.
pub const WITH_NOTES: u32 = 0x8000_0000;

/// Set in an Items count when every item carries a note field ([`NOTE_LEN`] bytes).
pub const NOTES_PRESENT: u16 = 0x8000;

/// Request (`0x04`): up to `max_items` items of `mailbox`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// 1 ..= `MAX_ITEMS_PER_FETCH`, optionally or-ed with [`WITH_NOTES`]; see
    /// [`Fetch::count`] and [`Fetch::with_notes`].
    pub max_items: u32,
    /// Proof with purpose [`PURPOSE`].
    pub proof: Proof,
}

impl Fetch {
    /// The request-specific digest a proof signs: SHA-256 of `max_items` as u32 big-endian.
    pub fn digest(max_items: u32) -> [u8; 32] {
        Sha256::digest(max_items.to_be_bytes()).into()
    }

    /// How many items at most, without the flag.
    pub fn count(&self) -> u32 {
        self.max_items & !WITH_NOTES
    }

    /// Whether the fetcher asked for release notes.
    pub fn with_notes(&self) -> bool {
        self.max_items & WITH_NOTES != 0
    }
}

impl Authenticated for Fetch {
    fn claim(&self) -> Claim {
        Claim {
            purpose: PURPOSE,
            mailbox: self.mailbox,
            digest: Self::digest(self.max_items),
            proof: self.proof,
        }
    }
}

/// One fetched item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The relay's id for the item, used to acknowledge it.
    pub id: ItemId,
    /// The envelope exactly as deposited.
    pub envelope: Vec<u8>,
    /// The release note, for an envelope released from a check-in alert; only ever `Some` in
    /// an [`Items`] with `with_notes` set.
    pub note: Option<ReleaseNote>,
}

/// Response (`0x84`): items from the mailbox, at most the `max_items` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Items {
    /// The items.
    pub items: Vec<Item>,
    /// Whether every item carries a note field: the answer to a fetch with [`WITH_NOTES`].
    pub with_notes: bool,
}

impl Message for Fetch {
    const MIN_BODY: usize = BODY_LEN;
    const MAX_BODY: usize = BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let f = fixed(head, |r| {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let nonce = r.array("nonce")?;
            let max_items = r.u32("max items")?;
            let signature = r.array("signature")?;
            Ok(Fetch {
                mailbox,
                max_items,
                proof: Proof { nonce, signature },
            })
        })?;
        f.check()?;
        Ok(f)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.count() == 0 {
            return Err(WireError::Malformed("max items is zero"));
        }
        if self.count() > MAX_ITEMS_PER_FETCH {
            return Err(WireError::TooMany {
                what: "items per fetch",
                count: u64::from(self.count()),
                max: u64::from(MAX_ITEMS_PER_FETCH),
            });
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(&self.proof.nonce);
        out.extend_from_slice(&self.max_items.to_be_bytes());
        out.extend_from_slice(&self.proof.signature);
    }
}

/// Check a list of item lengths against the response limits: at most `MAX_ITEMS_PER_FETCH`
/// items, each 1 ..= `MAX_ENVELOPE_LEN` bytes, summing to at most `MAX_FETCH_RESPONSE_BYTES`.
/// Returns the body length of the Items response that carries them.
pub fn items_body_len(lens: impl IntoIterator<Item = u64>) -> Result<usize, WireError> {
    items_body_len_for(lens, false)
}

/// [`items_body_len`] for an Items response with note fields (`with_notes`) or without.
pub fn items_body_len_for(
    lens: impl IntoIterator<Item = u64>,
    with_notes: bool,
) -> Result<usize, WireError> {
    let mut count = 0usize;
    let mut total = 0u64;
    for len in lens {
        count += 1;
        if count > MAX_ITEMS_PER_FETCH as usize {
            return Err(WireError::TooMany {
                what: "items",
                count: count as u64,
                max: u64::from(MAX_ITEMS_PER_FETCH),
            });
        }
        if len == 0 {
            return Err(WireError::Malformed("item envelope is empty"));
        }
        if len > MAX_ENVELOPE_LEN as u64 {
            return Err(WireError::TooLarge {
                what: "item envelope",
                len,
                max: MAX_ENVELOPE_LEN as u64,
            });
        }
        total += len;
        if total > MAX_FETCH_RESPONSE_BYTES as u64 {
            return Err(WireError::TooLarge {
                what: "items",
                len: total,
                max: MAX_FETCH_RESPONSE_BYTES as u64,
            });
        }
    }
    // Bounded by the checks above, far below usize::MAX.
    Ok(2 + (ITEM_HEAD_LEN + note_len(with_notes)) * count + total as usize)
}

/// The first bytes of an Items response carrying items of these lengths: the frame header and
/// the item count. The relay writes this, then each item's [`item_head`] and envelope.
pub fn items_frame_head(
    lens: impl IntoIterator<Item = u64> + Clone,
) -> Result<[u8; FRAME_HEADER_LEN + 2], WireError> {
    items_frame_head_for(lens, false)
}

/// [`items_frame_head`] for an Items response with note fields or without. With them, the relay
/// writes each item's [`item_head`], then its note (`ReleaseNote::encode_opt`), then its envelope.
pub fn items_frame_head_for(
    lens: impl IntoIterator<Item = u64> + Clone,
    with_notes: bool,
) -> Result<[u8; FRAME_HEADER_LEN + 2], WireError> {
    let body_len = items_body_len_for(lens.clone(), with_notes)?;
    let count = lens.into_iter().count() as u16 | if with_notes { NOTES_PRESENT } else { 0 };
    let mut h = [0u8; FRAME_HEADER_LEN + 2];
    h[0] = PROTOCOL_VERSION;
    h[1] = <Items as super::Framed>::TYPE_BYTE;
    // body_len <= MAX_ITEMS_BODY_LEN < u32::MAX and count <= MAX_ITEMS_PER_FETCH < u16::MAX.
    h[2..6].copy_from_slice(&(body_len as u32).to_be_bytes());
    h[6..8].copy_from_slice(&count.to_be_bytes());
    Ok(h)
}

fn note_len(with_notes: bool) -> usize {
    if with_notes {
        NOTE_LEN
    } else {
        0
    }
}

/// The 20 bytes before an item's envelope in an Items response: its id and length.
pub fn item_head(id: &ItemId, len: u32) -> [u8; ITEM_HEAD_LEN] {
    let mut h = [0u8; ITEM_HEAD_LEN];
    h[..ItemId::LEN].copy_from_slice(id.as_bytes());
    h[ItemId::LEN..].copy_from_slice(&len.to_be_bytes());
    h
}

impl Message for Items {
    const MIN_BODY: usize = 2;
    const MAX_BODY: usize = MAX_ITEMS_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let mut r = Reader::<WireError>::new(head);
        let raw = r.u16("item count")?;
        let with_notes = raw & NOTES_PRESENT != 0;
        let count = (raw & !NOTES_PRESENT) as usize;
        let per_item = ITEM_HEAD_LEN + note_len(with_notes);
        if count > MAX_ITEMS_PER_FETCH as usize {
            return Err(WireError::TooMany {
                what: "items",
                count: count as u64,
                max: u64::from(MAX_ITEMS_PER_FETCH),
            });
        }
        // Every item head must be there before anything is allocated for the list.
        if r.remaining() < count * per_item {
            return Err(WireError::Truncated {
                what: "items",
                needed: (count * per_item - r.remaining()) as u64,
            });
        }
        // Lengths are checked as they are read, and each envelope is copied only once its
        // bytes are known to be there.
        let mut items = Vec::with_capacity(count);
        let mut total = 0u64;
        for _ in 0..count {
            let id = ItemId(r.array("item id")?);
            let len = r.u32("item length")?;
            total += u64::from(len);
            items_body_len([u64::from(len)])?;
            if total > MAX_FETCH_RESPONSE_BYTES as u64 {
                return Err(WireError::TooLarge {
                    what: "items",
                    len: total,
                    max: MAX_FETCH_RESPONSE_BYTES as u64,
                });
            }
            let note = match with_notes {
                true => ReleaseNote::decode_opt(r.take(NOTE_LEN, "release note")?)?,
                false => None,
            };
            let envelope = r.take(len as usize, "item envelope")?.to_vec();
            items.push(Item { id, envelope, note });
        }
        r.finish()?;
        Ok(Items { items, with_notes })
    }

    fn check(&self) -> Result<(), WireError> {
        if !self.with_notes && self.items.iter().any(|i| i.note.is_some()) {
            return Err(WireError::Malformed("a release note in items without notes"));
        }
        items_body_len_for(
            self.items.iter().map(|i| i.envelope.len() as u64),
            self.with_notes,
        )
        .map(|_| ())
    }

    fn body_len(&self) -> usize {
        2 + self
            .items
            .iter()
            .map(|i| ITEM_HEAD_LEN + note_len(self.with_notes) + i.envelope.len())
            .sum::<usize>()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        // `check` ran first (see `wire::encode`): count and lengths fit their fields.
        let flag = if self.with_notes { NOTES_PRESENT } else { 0 };
        out.extend_from_slice(&(self.items.len() as u16 | flag).to_be_bytes());
        for i in &self.items {
            out.extend_from_slice(&item_head(&i.id, i.envelope.len() as u32));
            if self.with_notes {
                out.extend_from_slice(&ReleaseNote::encode_opt(i.note.as_ref()));
            }
            out.extend_from_slice(&i.envelope);
        }
    }
}
