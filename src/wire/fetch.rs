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
//!
//! A fetch with the [`WITH_BLOBS`] flag asks for the attachment blobs each item refers to (see
//! [`super::deposit_blobs`]): the Items answer then sets [`BLOBS_PRESENT`] in its count and
//! carries, after every item's head (and note, if asked for too), a blob list: a count (u8,
//! at most `MAX_BLOBS_PER_DEPOSIT`) and per blob its id (16) and length (u64). An item without
//! blobs has a count of zero. Without the flag, an item's blobs are not mentioned at all.

use super::alert::{ReleaseNote, NOTE_LEN};
use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{
    FRAME_HEADER_LEN, MAX_BLOBS_PER_DEPOSIT, MAX_BLOB_LEN, MAX_ENVELOPE_LEN,
    MAX_FETCH_RESPONSE_BYTES, MAX_ITEMS_PER_FETCH, NONCE_LEN, PROTOCOL_VERSION, SIGNATURE_LEN,
};
use super::WireError;
use crate::ids::{BlobId, ItemId, MailboxId};
use crate::reader::Reader;
use sha2::{Digest, Sha256};

/// The label signed into a fetch proof.
pub const PURPOSE: Purpose = Purpose::new(b"fetch\0");

/// Fetch body: mailbox id, nonce, max items (u32), signature.
pub const BODY_LEN: usize = MailboxId::LEN + NONCE_LEN + 4 + SIGNATURE_LEN;
/// Per-item overhead in an Items response: item id (16) + length (u32).
pub const ITEM_HEAD_LEN: usize = ItemId::LEN + 4;
/// One blob in an item's blob list: id (16) + length (u64).
pub const BLOB_REF_LEN: usize = BlobId::LEN + 8;
/// Largest blob list of one item: count (u8) + `MAX_BLOBS_PER_DEPOSIT` blob refs.
pub const MAX_BLOB_LIST_LEN: usize = 1 + BLOB_REF_LEN * MAX_BLOBS_PER_DEPOSIT;
/// Largest Items body: count (u16) + per-item heads, notes and blob lists + envelope bytes.
pub const MAX_ITEMS_BODY_LEN: usize = 2
    + (ITEM_HEAD_LEN + NOTE_LEN + MAX_BLOB_LIST_LEN) * MAX_ITEMS_PER_FETCH as usize
    + MAX_FETCH_RESPONSE_BYTES;

/// Set in a Fetch's `max_items` to ask for release notes. The bit is part of the signed
/// `max_items`, so nobody can add or strip it on the way; a relay that predates notes refuses it
/// as too many items (TooLarge), never answers it with notes missing silently.
pub const WITH_NOTES: u32 = 0x8000_0000;

/// Set in an Items count when every item carries a note field ([`NOTE_LEN`] bytes).
pub const NOTES_PRESENT: u16 = 0x8000;

/// Set in a Fetch's `max_items` to ask for each item's blob list. Signed like [`WITH_NOTES`]; a
/// relay that predates blobs refuses it as too many items (TooLarge).
pub const WITH_BLOBS: u32 = 0x4000_0000;

/// Set in an Items count when every item carries a blob list.
pub const BLOBS_PRESENT: u16 = 0x4000;

/// The flags of a Fetch's `max_items` and of an Items count.
const FETCH_FLAGS: u32 = WITH_NOTES | WITH_BLOBS;
const ITEMS_FLAGS: u16 = NOTES_PRESENT | BLOBS_PRESENT;

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

    /// How many items at most, without the flags.
    pub fn count(&self) -> u32 {
        self.max_items & !FETCH_FLAGS
    }

    /// Whether the fetcher asked for each item's blobs.
    pub fn with_blobs(&self) -> bool {
        self.max_items & WITH_BLOBS != 0
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
    /// The attachment blobs the item refers to; only ever non-empty in an [`Items`] with
    /// `with_blobs` set.
    pub blobs: Vec<BlobRef>,
}

/// A blob an item refers to, as an Items response lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRef {
    /// The blob's id: what a Download names.
    pub id: BlobId,
    /// Its length in bytes (1 ..= `MAX_BLOB_LEN`).
    pub len: u64,
}

/// The blob list of one item as an Items response carries it: count (u8), then each blob's id
/// and length. At most `MAX_BLOBS_PER_DEPOSIT` blobs (the caller's store holds no more).
pub fn blob_list(blobs: &[BlobRef]) -> Vec<u8> {
    let n = blobs.len().min(MAX_BLOBS_PER_DEPOSIT);
    let mut out = Vec::with_capacity(1 + BLOB_REF_LEN * n);
    out.push(n as u8);
    for b in &blobs[..n] {
        out.extend_from_slice(b.id.as_bytes());
        out.extend_from_slice(&b.len.to_be_bytes());
    }
    out
}

fn decode_blob_list(r: &mut Reader<'_, WireError>) -> Result<Vec<BlobRef>, WireError> {
    let count = r.u8("blob count")? as usize;
    if count > MAX_BLOBS_PER_DEPOSIT {
        return Err(WireError::TooMany {
            what: "blobs per item",
            count: count as u64,
            max: MAX_BLOBS_PER_DEPOSIT as u64,
        });
    }
    if r.remaining() < count * BLOB_REF_LEN {
        return Err(WireError::Truncated {
            what: "blob list",
            needed: (count * BLOB_REF_LEN - r.remaining()) as u64,
        });
    }
    let mut blobs = Vec::with_capacity(count);
    for _ in 0..count {
        let id = BlobId(r.array("blob id")?);
        let len = r.u64("blob length")?;
        if len == 0 || len > MAX_BLOB_LEN {
            return Err(WireError::Malformed("a listed blob's length is out of range"));
        }
        blobs.push(BlobRef { id, len });
    }
    Ok(blobs)
}

/// Response (`0x84`): items from the mailbox, at most the `max_items` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Items {
    /// The items.
    pub items: Vec<Item>,
    /// Whether every item carries a note field: the answer to a fetch with [`WITH_NOTES`].
    pub with_notes: bool,
    /// Whether every item carries a blob list: the answer to a fetch with [`WITH_BLOBS`].
    pub with_blobs: bool,
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
    items_body_len_full(lens.into_iter().map(|l| (l, None)), with_notes)
}

/// [`items_body_len_for`] for items given as (envelope length, blob count): with a blob count
/// for every item (`Some`), for a response with blob lists; with `None` for every item, without.
pub fn items_body_len_full(
    items: impl IntoIterator<Item = (u64, Option<usize>)>,
    with_notes: bool,
) -> Result<usize, WireError> {
    let mut count = 0usize;
    let mut total = 0u64;
    let mut lists = 0usize;
    for (len, blobs) in items {
        if let Some(n) = blobs {
            if n > MAX_BLOBS_PER_DEPOSIT {
                return Err(WireError::TooMany {
                    what: "blobs per item",
                    count: n as u64,
                    max: MAX_BLOBS_PER_DEPOSIT as u64,
                });
            }
            lists += 1 + BLOB_REF_LEN * n;
        }
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
    Ok(2 + (ITEM_HEAD_LEN + note_len(with_notes)) * count + lists + total as usize)
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
    let items: Vec<(u64, Option<usize>)> = lens.into_iter().map(|l| (l, None)).collect();
    items_frame_head_full(items, with_notes, false)
}

/// [`items_frame_head_for`] for items given as (envelope length, blob count), with blob lists
/// (`with_blobs`, every item's count `Some`) or without (every count `None`). With them, the
/// relay writes each item's [`item_head`], its note if asked for, its [`blob_list`], then its
/// envelope.
pub fn items_frame_head_full(
    items: impl IntoIterator<Item = (u64, Option<usize>)> + Clone,
    with_notes: bool,
    with_blobs: bool,
) -> Result<[u8; FRAME_HEADER_LEN + 2], WireError> {
    if items.clone().into_iter().any(|(_, b)| b.is_some() != with_blobs) {
        return Err(WireError::Malformed("blob lists on some items only"));
    }
    let body_len = items_body_len_full(items.clone(), with_notes)?;
    let count = items.into_iter().count() as u16
        | if with_notes { NOTES_PRESENT } else { 0 }
        | if with_blobs { BLOBS_PRESENT } else { 0 };
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

impl Items {
    /// An item's envelope length and, in a response with blob lists, its blob count.
    fn sizes(&self, i: &Item) -> (u64, Option<usize>) {
        (i.envelope.len() as u64, self.with_blobs.then_some(i.blobs.len()))
    }
}

impl Message for Items {
    const MIN_BODY: usize = 2;
    const MAX_BODY: usize = MAX_ITEMS_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let mut r = Reader::<WireError>::new(head);
        let raw = r.u16("item count")?;
        let with_notes = raw & NOTES_PRESENT != 0;
        let with_blobs = raw & BLOBS_PRESENT != 0;
        let count = (raw & !ITEMS_FLAGS) as usize;
        let per_item = ITEM_HEAD_LEN + note_len(with_notes) + usize::from(with_blobs);
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
            let blobs = match with_blobs {
                true => decode_blob_list(&mut r)?,
                false => Vec::new(),
            };
            let envelope = r.take(len as usize, "item envelope")?.to_vec();
            items.push(Item {
                id,
                envelope,
                note,
                blobs,
            });
        }
        r.finish()?;
        Ok(Items {
            items,
            with_notes,
            with_blobs,
        })
    }

    fn check(&self) -> Result<(), WireError> {
        if !self.with_notes && self.items.iter().any(|i| i.note.is_some()) {
            return Err(WireError::Malformed("a release note in items without notes"));
        }
        if !self.with_blobs && self.items.iter().any(|i| !i.blobs.is_empty()) {
            return Err(WireError::Malformed("a blob list in items without blobs"));
        }
        items_body_len_full(self.items.iter().map(|i| self.sizes(i)), self.with_notes).map(|_| ())
    }

    fn body_len(&self) -> usize {
        2 + self
            .items
            .iter()
            .map(|i| {
                ITEM_HEAD_LEN
                    + note_len(self.with_notes)
                    + if self.with_blobs { 1 + BLOB_REF_LEN * i.blobs.len() } else { 0 }
                    + i.envelope.len()
            })
            .sum::<usize>()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        // `check` ran first (see `wire::encode`): count and lengths fit their fields.
        let flag = if self.with_notes { NOTES_PRESENT } else { 0 }
            | if self.with_blobs { BLOBS_PRESENT } else { 0 };
        out.extend_from_slice(&(self.items.len() as u16 | flag).to_be_bytes());
        for i in &self.items {
            out.extend_from_slice(&item_head(&i.id, i.envelope.len() as u32));
            if self.with_notes {
                out.extend_from_slice(&ReleaseNote::encode_opt(i.note.as_ref()));
            }
            if self.with_blobs {
                out.extend_from_slice(&blob_list(&i.blobs));
            }
            out.extend_from_slice(&i.envelope);
        }
    }
}
