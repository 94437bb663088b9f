//! Arm: a reporter's client hands the relay a check-in alert, anonymously (no proof, like a
//! deposit); the relay answers Armed once the alert is on stable storage.
//!
//! The alert carries its schedule (`every`, `grace`), two public keys made for this alert alone
//! (check-in and duress), and one sealed envelope per NGO mailbox, all in one buffered body
//! (at most [`MAX_BODY_LEN`], about half a MiB): alerts are short text, sealed ahead of need.
//! Arming is idempotent per alert id: the same alert again is answered Armed, a different alert
//! under the same id is refused.

use super::frame::{fixed, Message};
use super::limits::{
    MAX_ALERT_ENVELOPES, MAX_ALERT_ENVELOPE_LEN, MAX_ALERT_INTERVAL_SECS, MIN_ALERT_INTERVAL_SECS,
    PUBLIC_KEY_LEN,
};
use super::WireError;
use crate::ids::{AlertId, MailboxId};

/// Arm body before the envelope list: alert id, every (u32), grace (u32), check-in key, duress
/// key, envelope count (u8).
pub const FIXED_LEN: usize = AlertId::LEN + 4 + 4 + 2 * PUBLIC_KEY_LEN + 1;
/// Per envelope in the list: mailbox id and envelope length (u32).
pub const ENTRY_LEN: usize = MailboxId::LEN + 4;
/// Smallest Arm body: one envelope of one byte.
pub const MIN_BODY_LEN: usize = FIXED_LEN + ENTRY_LEN + 1;
/// Largest Arm body: [`MAX_ALERT_ENVELOPES`] envelopes of [`MAX_ALERT_ENVELOPE_LEN`].
pub const MAX_BODY_LEN: usize = FIXED_LEN + MAX_ALERT_ENVELOPES * (ENTRY_LEN + MAX_ALERT_ENVELOPE_LEN);
/// Armed body: the deadline (u64).
pub const ARMED_BODY_LEN: usize = 8;

/// One sealed envelope of an alert, for one NGO mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertEnvelope {
    /// The mailbox it is released into.
    pub mailbox: MailboxId,
    /// An ordinary report envelope (age), opaque to the relay: 1 ..= `MAX_ALERT_ENVELOPE_LEN`.
    pub envelope: Vec<u8>,
}

/// Request (`0x07`): arm an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    /// Chosen at random by the client, reused on every retry.
    pub alert: AlertId,
    /// Seconds between check-ins: `MIN_ALERT_INTERVAL_SECS ..= MAX_ALERT_INTERVAL_SECS`.
    pub every: u32,
    /// Seconds of slack after a missed check-in before the release, in the same range.
    pub grace: u32,
    /// Ed25519 public key whose check-ins keep the alert sealed.
    pub checkin_key: [u8; PUBLIC_KEY_LEN],
    /// Ed25519 public key whose check-in (or disarm) releases the alert at once, marked duress.
    pub duress_key: [u8; PUBLIC_KEY_LEN],
    /// 1 ..= `MAX_ALERT_ENVELOPES` envelopes, to distinct mailboxes.
    pub envelopes: Vec<AlertEnvelope>,
}

/// Response (`0x87`): the alert is armed (now, or it was before with the same content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Armed {
    /// Seconds from now until the relay releases the alert unless a check-in comes.
    pub deadline_secs: u64,
}

fn check_interval(what: &'static str, secs: u32) -> Result<(), WireError> {
    if secs < MIN_ALERT_INTERVAL_SECS {
        return Err(WireError::Malformed(what));
    }
    if secs > MAX_ALERT_INTERVAL_SECS {
        return Err(WireError::TooLarge {
            what,
            len: u64::from(secs),
            max: u64::from(MAX_ALERT_INTERVAL_SECS),
        });
    }
    Ok(())
}

fn check_count(n: usize) -> Result<(), WireError> {
    if n == 0 {
        return Err(WireError::Malformed("alert carries no envelopes"));
    }
    if n > MAX_ALERT_ENVELOPES {
        return Err(WireError::TooMany {
            what: "alert envelopes",
            count: n as u64,
            max: MAX_ALERT_ENVELOPES as u64,
        });
    }
    Ok(())
}

fn check_envelope_len(len: usize) -> Result<(), WireError> {
    if len == 0 {
        return Err(WireError::Malformed("alert envelope is empty"));
    }
    if len > MAX_ALERT_ENVELOPE_LEN {
        return Err(WireError::TooLarge {
            what: "alert envelope",
            len: len as u64,
            max: MAX_ALERT_ENVELOPE_LEN as u64,
        });
    }
    Ok(())
}

impl Message for Arm {
    const MIN_BODY: usize = MIN_BODY_LEN;
    const MAX_BODY: usize = MAX_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let arm = fixed(head, |r| {
            let alert = AlertId(r.array("alert id")?);
            let every = r.u32("every")?;
            let grace = r.u32("grace")?;
            let checkin_key = r.array("check-in key")?;
            let duress_key = r.array("duress key")?;
            let n = usize::from(r.u8("envelope count")?);
            check_count(n)?;
            // The whole list must be there before anything is allocated for it; n is at most
            // MAX_ALERT_ENVELOPES, so the list itself is small.
            if r.remaining() < n * ENTRY_LEN {
                return Err(WireError::Truncated {
                    what: "alert envelope list",
                    needed: (n * ENTRY_LEN - r.remaining()) as u64,
                });
            }
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                let mailbox = MailboxId(r.array("mailbox id")?);
                let len = r.u32("envelope length")? as usize;
                check_envelope_len(len)?;
                list.push((mailbox, len));
            }
            let mut envelopes = Vec::with_capacity(n);
            for (mailbox, len) in list {
                // Copied only once its bytes are known to be there.
                let envelope = r.take(len, "alert envelope")?.to_vec();
                envelopes.push(AlertEnvelope { mailbox, envelope });
            }
            Ok(Arm {
                alert,
                every,
                grace,
                checkin_key,
                duress_key,
                envelopes,
            })
        })?;
        arm.check()?;
        Ok(arm)
    }

    fn check(&self) -> Result<(), WireError> {
        check_interval("every", self.every)?;
        check_interval("grace", self.grace)?;
        check_count(self.envelopes.len())?;
        for (i, e) in self.envelopes.iter().enumerate() {
            check_envelope_len(e.envelope.len())?;
            if self.envelopes[..i].iter().any(|o| o.mailbox == e.mailbox) {
                return Err(WireError::Malformed("two alert envelopes for one mailbox"));
            }
        }
        if self.checkin_key == self.duress_key {
            // The relay could not tell a duress check-in from a normal one.
            return Err(WireError::Malformed("check-in and duress keys are the same"));
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        FIXED_LEN
            + self
                .envelopes
                .iter()
                .map(|e| ENTRY_LEN + e.envelope.len())
                .sum::<usize>()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        // `check` ran first (see `wire::encode`): the count and lengths fit their fields.
        out.extend_from_slice(self.alert.as_bytes());
        out.extend_from_slice(&self.every.to_be_bytes());
        out.extend_from_slice(&self.grace.to_be_bytes());
        out.extend_from_slice(&self.checkin_key);
        out.extend_from_slice(&self.duress_key);
        out.push(self.envelopes.len() as u8);
        for e in &self.envelopes {
            out.extend_from_slice(e.mailbox.as_bytes());
            out.extend_from_slice(&(e.envelope.len() as u32).to_be_bytes());
        }
        for e in &self.envelopes {
            out.extend_from_slice(&e.envelope);
        }
    }
}

impl Message for Armed {
    const MIN_BODY: usize = ARMED_BODY_LEN;
    const MAX_BODY: usize = ARMED_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(Armed {
                deadline_secs: r.u64("deadline")?,
            })
        })
    }

    fn body_len(&self) -> usize {
        ARMED_BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.deadline_secs.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    pub(crate) fn arm() -> Arm {
        Arm {
            alert: AlertId([1; 16]),
            every: 4,
            grace: 2,
            checkin_key: [2; 32],
            duress_key: [3; 32],
            envelopes: vec![
                AlertEnvelope {
                    mailbox: MailboxId([4; 32]),
                    envelope: b"sealed-a".to_vec(),
                },
                AlertEnvelope {
                    mailbox: MailboxId([5; 32]),
                    envelope: b"b".to_vec(),
                },
            ],
        }
    }

    #[test]
    fn arm_round_trips_and_armed_too() {
        let bytes = encode(&arm()).unwrap();
        assert_eq!(bytes[1], 0x07);
        assert_eq!(bytes.len(), 6 + FIXED_LEN + 2 * ENTRY_LEN + 9);
        // The values docs/protocol.md gives.
        assert_eq!((FIXED_LEN, MIN_BODY_LEN, MAX_BODY_LEN), (89, 126, 524_665));
        assert_eq!(
            decode_request_frame(&bytes),
            Ok((Request::Arm(arm()), &[][..]))
        );
        let a = Armed { deadline_secs: 6 };
        let bytes = encode(&a).unwrap();
        assert_eq!(bytes, [1, 0x87, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(decode_response_frame(&bytes), Ok(Response::Armed(a)));
    }

    #[test]
    fn intervals_counts_and_lengths_are_checked_both_ways() {
        let mut bad = Vec::new();
        for f in [
            (|a: &mut Arm| a.every = 0) as fn(&mut Arm),
            |a| a.grace = MAX_ALERT_INTERVAL_SECS + 1,
            |a| a.envelopes.clear(),
            |a| a.envelopes[1].mailbox = a.envelopes[0].mailbox,
            |a| a.envelopes[0].envelope.clear(),
            |a| a.envelopes[0].envelope = vec![0; MAX_ALERT_ENVELOPE_LEN + 1],
            |a| a.duress_key = a.checkin_key,
        ] {
            let mut a = arm();
            f(&mut a);
            assert!(encode(&a).is_err(), "{a:?}");
            bad.push(a);
        }
        // The same, encoded past `check`, is refused by the decoder.
        for a in bad {
            let mut body = Vec::new();
            a.encode_head(&mut body);
            assert!(Arm::decode(&body, body.len()).is_err());
        }
        let mut ok = arm();
        ok.every = MIN_ALERT_INTERVAL_SECS;
        ok.grace = MAX_ALERT_INTERVAL_SECS;
        assert!(encode(&ok).is_ok());
    }

    #[test]
    fn truncated_oversized_and_padded_arms_are_refused() {
        let bytes = encode(&arm()).unwrap();
        let body = &bytes[6..];
        for cut in [1, 9, ENTRY_LEN, body.len() - FIXED_LEN] {
            assert!(Arm::decode(&body[..body.len() - cut], body.len() - cut).is_err());
        }
        let mut padded = body.to_vec();
        padded.push(0);
        assert_eq!(
            Arm::decode(&padded, padded.len()),
            Err(WireError::TrailingData { extra: 1 })
        );
        // A count above the maximum is refused before the list is read.
        let mut many = body.to_vec();
        many[FIXED_LEN - 1] = (MAX_ALERT_ENVELOPES + 1) as u8;
        assert!(matches!(
            Arm::decode(&many, many.len()),
            Err(WireError::TooMany { .. })
        ));
        // A declared envelope length beyond the maximum, before any envelope byte is copied.
        let mut long = body.to_vec();
        long[FIXED_LEN + 32..FIXED_LEN + 36].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Arm::decode(&long, long.len()),
            Err(WireError::TooLarge { .. })
        ));
        // The header check refuses a body above MAX_BODY_LEN before anything is read.
        let mut h = [1u8, 0x07, 0, 0, 0, 0];
        h[2..6].copy_from_slice(&((MAX_BODY_LEN + 1) as u32).to_be_bytes());
        assert!(matches!(
            crate::wire::decode_request_header(&h),
            Err(WireError::TooLarge { .. })
        ));
    }
}
