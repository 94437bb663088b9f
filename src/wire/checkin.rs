//! CheckIn: the owner of an alert checks in, signing with the alert's check-in key (or, under
//! coercion, its duress key); the relay answers CheckedIn, the same bytes whichever key signed.
//!
//! The proof ([`auth::alert_message`](super::auth::alert_message), purpose
//! [`CHECKIN_PURPOSE`](super::alert::CHECKIN_PURPOSE)) is bound to this connection's TLS exporter
//! and a nonce from Challenge, so a captured check-in cannot be replayed on another connection or
//! twice. A check-in by the check-in key moves the deadline to now + `every` + `grace`; one by the
//! duress key releases the alert at once, marked duress. Either is answered only once its change
//! is durable, and CheckedIn carries nothing, so an observer (or a coercer holding the phone)
//! cannot tell the two apart from the answer.

use super::alert::{decode_alert_proof, encode_alert_proof, PROOF_BODY_LEN};
use super::auth::Proof;
use super::frame::{fixed, Message};
use super::WireError;
use crate::ids::AlertId;

/// Request (`0x08`): check in to `alert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckIn {
    /// The alert.
    pub alert: AlertId,
    /// Proof with purpose `CHECKIN_PURPOSE`, by the check-in key or the duress key.
    pub proof: Proof,
}

/// Response (`0x88`): empty, whichever key signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckedIn;

impl Message for CheckIn {
    const MIN_BODY: usize = PROOF_BODY_LEN;
    const MAX_BODY: usize = PROOF_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let (alert, proof) = decode_alert_proof(head)?;
        Ok(CheckIn { alert, proof })
    }

    fn body_len(&self) -> usize {
        PROOF_BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        encode_alert_proof(&self.alert, &self.proof, out);
    }
}

impl Message for CheckedIn {
    const MIN_BODY: usize = 0;
    const MAX_BODY: usize = 0;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |_| Ok(CheckedIn))
    }

    fn body_len(&self) -> usize {
        0
    }

    fn encode_head(&self, _: &mut Vec<u8>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    fn checkin() -> CheckIn {
        CheckIn {
            alert: AlertId([0xaa; 16]),
            proof: Proof {
                nonce: [0xbb; 32],
                signature: [0xcc; 64],
            },
        }
    }

    #[test]
    fn checkin_round_trips_and_checked_in_is_six_bytes() {
        let bytes = encode(&checkin()).unwrap();
        assert_eq!(&bytes[..6], [1, 0x08, 0, 0, 0, 112]);
        assert_eq!(&bytes[6..22], [0xaa; 16]);
        assert_eq!(
            decode_request_frame(&bytes),
            Ok((Request::CheckIn(checkin()), &[][..]))
        );
        let bytes = encode(&CheckedIn).unwrap();
        assert_eq!(bytes, [1, 0x88, 0, 0, 0, 0]);
        assert_eq!(decode_response_frame(&bytes), Ok(Response::CheckedIn(CheckedIn)));
    }

    #[test]
    fn a_checkin_of_the_wrong_length_is_refused() {
        let bytes = encode(&checkin()).unwrap();
        let body = &bytes[6..];
        assert!(CheckIn::decode(&body[..111], 111).is_err());
        let mut long = body.to_vec();
        long.push(0);
        assert!(CheckIn::decode(&long, 113).is_err());
        let mut h = [1u8, 0x08, 0, 0, 0, 113];
        assert!(crate::wire::decode_request_header(&h).is_err());
        h[5] = 111;
        assert!(crate::wire::decode_request_header(&h).is_err());
        assert!(decode_response_frame(&[1, 0x88, 0, 0, 0, 1, 0]).is_err());
    }
}
