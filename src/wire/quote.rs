//! Quote: before uploading attachments, a reporter's client asks, anonymously, how much room a
//! report of `total` bytes (its blobs and envelopes) has at the relay: the relay's largest
//! report, and per mailbox the bytes left under its quota. The relay answers Room, or refuses
//! with an Error whose one-line message states the limit (TooLarge: "the relay takes at most
//! 2 GiB per report"; QuotaExceeded; UnknownMailbox), so the reporter learns it before sending
//! a gigabyte.
//!
//! A quote promises nothing: the room may be taken by the time the deposit comes, which is then
//! refused like any deposit into a full mailbox. It reveals no more than a deposit attempt
//! would (whether a mailbox exists, how full it is), to anyone holding the mailbox ids.

use super::frame::Message;
use super::limits::{MAX_BLOB_LEN, MAX_QUOTE_MAILBOXES};
use super::WireError;
use crate::ids::MailboxId;
use crate::reader::Reader;

/// Largest Quote body: count (u8), the mailbox ids, the total (u64).
pub const MAX_BODY_LEN: usize = 1 + MailboxId::LEN * MAX_QUOTE_MAILBOXES + 8;
/// Largest Room body: max report bytes (u64), count (u8), bytes left per mailbox (u64 each).
pub const MAX_ROOM_LEN: usize = 8 + 1 + 8 * MAX_QUOTE_MAILBOXES;

/// Request (`0x0a`): how much room is there for a report of `total` bytes to `mailboxes`?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// 1 ..= `MAX_QUOTE_MAILBOXES` mailboxes the report goes to.
    pub mailboxes: Vec<MailboxId>,
    /// The report's bytes: every blob and envelope, as the client will send them.
    pub total: u64,
}

/// Response (`0x8a`): the relay's room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// Most bytes the relay takes per report (its `max_report_bytes`).
    pub max_report_bytes: u64,
    /// Bytes each mailbox may still hold under its quota, in the order asked.
    pub left: Vec<u64>,
}

fn too_many(count: usize) -> WireError {
    WireError::TooMany {
        what: "mailboxes per quote",
        count: count as u64,
        max: MAX_QUOTE_MAILBOXES as u64,
    }
}

impl Message for Quote {
    const MIN_BODY: usize = 1 + MailboxId::LEN + 8;
    const MAX_BODY: usize = MAX_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let mut r = Reader::<WireError>::new(head);
        let count = r.u8("mailbox count")? as usize;
        if count == 0 {
            return Err(WireError::Malformed("a quote names no mailbox"));
        }
        if count > MAX_QUOTE_MAILBOXES {
            return Err(too_many(count));
        }
        // The ids must all be there before the list is allocated.
        if r.remaining() < count * MailboxId::LEN {
            return Err(WireError::Truncated {
                what: "mailbox ids",
                needed: (count * MailboxId::LEN - r.remaining()) as u64,
            });
        }
        let mut mailboxes = Vec::with_capacity(count);
        for _ in 0..count {
            mailboxes.push(MailboxId(r.array("mailbox id")?));
        }
        let total = r.u64("total bytes")?;
        r.finish()?;
        let q = Quote { mailboxes, total };
        q.check()?;
        Ok(q)
    }

    fn check(&self) -> Result<(), WireError> {
        match self.mailboxes.len() {
            0 => return Err(WireError::Malformed("a quote names no mailbox")),
            n if n > MAX_QUOTE_MAILBOXES => return Err(too_many(n)),
            _ => {}
        }
        if self.total > MAX_BLOB_LEN {
            return Err(WireError::TooLarge {
                what: "report",
                len: self.total,
                max: MAX_BLOB_LEN,
            });
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        1 + MailboxId::LEN * self.mailboxes.len() + 8
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        // `check` ran first: the count fits a byte.
        out.push(self.mailboxes.len() as u8);
        for m in &self.mailboxes {
            out.extend_from_slice(m.as_bytes());
        }
        out.extend_from_slice(&self.total.to_be_bytes());
    }
}

impl Message for Room {
    const MIN_BODY: usize = 8 + 1 + 8;
    const MAX_BODY: usize = MAX_ROOM_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let mut r = Reader::<WireError>::new(head);
        let max_report_bytes = r.u64("max report bytes")?;
        let count = r.u8("mailbox count")? as usize;
        if count == 0 {
            return Err(WireError::Malformed("a room answer names no mailbox"));
        }
        if count > MAX_QUOTE_MAILBOXES {
            return Err(too_many(count));
        }
        if r.remaining() < count * 8 {
            return Err(WireError::Truncated {
                what: "bytes left",
                needed: (count * 8 - r.remaining()) as u64,
            });
        }
        let mut left = Vec::with_capacity(count);
        for _ in 0..count {
            left.push(r.u64("bytes left")?);
        }
        r.finish()?;
        Ok(Room {
            max_report_bytes,
            left,
        })
    }

    fn check(&self) -> Result<(), WireError> {
        match self.left.len() {
            0 => Err(WireError::Malformed("a room answer names no mailbox")),
            n if n > MAX_QUOTE_MAILBOXES => Err(too_many(n)),
            _ => Ok(()),
        }
    }

    fn body_len(&self) -> usize {
        9 + 8 * self.left.len()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.max_report_bytes.to_be_bytes());
        out.push(self.left.len() as u8);
        for l in &self.left {
            out.extend_from_slice(&l.to_be_bytes());
        }
    }
}

/// A byte count for people, in the largest binary unit that divides it or one decimal place:
/// "2 GiB", "1.5 MiB", "512 bytes". For refusal messages, which state limits in one line.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, size) in UNITS {
        if n >= size {
            return match n % size {
                0 => format!("{} {name}", n / size),
                _ => format!("{:.1} {name}", n as f64 / size as f64),
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    #[test]
    fn quote_and_room_bytes_are_exact() {
        let q = Quote {
            mailboxes: vec![MailboxId([0x11; 32])],
            total: 0x0102,
        };
        let bytes = encode(&q).unwrap();
        let mut want = vec![1, 0x0a, 0, 0, 0, 41, 1];
        want.extend_from_slice(&[0x11; 32]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(bytes, want);
        assert_eq!(decode_request_frame(&bytes), Ok((Request::Quote(q), &[][..])));
        let room = Room {
            max_report_bytes: 1 << 31,
            left: vec![5],
        };
        let bytes = encode(&room).unwrap();
        assert_eq!(
            bytes,
            [1, 0x8a, 0, 0, 0, 17, 0, 0, 0, 0, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]
        );
        assert_eq!(decode_response_frame(&bytes), Ok(Response::Room(room)));
    }

    #[test]
    fn truncated_empty_and_oversized_quotes_are_refused() {
        let q = Quote {
            mailboxes: vec![MailboxId([1; 32]); 2],
            total: 9,
        };
        let body = encode(&q).unwrap()[6..].to_vec();
        assert!(matches!(
            Quote::decode(&body[..40], 40),
            Err(WireError::Truncated { .. })
        ));
        let mut zero = body.clone();
        zero[0] = 0;
        assert!(Quote::decode(&zero, zero.len()).is_err());
        let mut many = body.clone();
        many[0] = 17;
        assert!(matches!(
            Quote::decode(&many, many.len()),
            Err(WireError::TooMany { .. })
        ));
        let mut extra = body.clone();
        extra.push(0);
        assert!(Quote::decode(&extra, extra.len()).is_err());
        let big = Quote {
            mailboxes: vec![MailboxId([1; 32]); 17],
            total: 1,
        };
        assert!(encode(&big).is_err());
        assert!(crate::wire::decode_request_header(&[1, 0x0a, 0, 0, 2, 10]).is_err());
        let r = Room {
            max_report_bytes: 1,
            left: vec![],
        };
        assert!(encode(&r).is_err());
    }

    #[test]
    fn byte_counts_read_as_people_say_them() {
        assert_eq!(human_bytes(2 << 30), "2 GiB");
        assert_eq!(human_bytes(3 << 19), "1.5 MiB");
        assert_eq!(human_bytes(512), "512 bytes");
    }
}
