//! Disarm: the owner of an alert ends it. Signed with the check-in key, the relay deletes the
//! alert and its envelopes; signed with the duress key, it releases the alert at once, marked
//! duress, and answers Disarmed all the same (the same bytes, after a durable change either way),
//! so a coercer who makes the owner disarm learns nothing from the answer.
//!
//! The proof is the check-in's, with purpose [`DISARM_PURPOSE`](super::alert::DISARM_PURPOSE).

use super::alert::{decode_alert_proof, encode_alert_proof, PROOF_BODY_LEN};
use super::auth::Proof;
use super::frame::{fixed, Message};
use super::WireError;
use crate::ids::AlertId;

/// Request (`0x09`): disarm `alert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disarm {
    /// The alert.
    pub alert: AlertId,
    /// Proof with purpose `DISARM_PURPOSE`, by the check-in key or the duress key.
    pub proof: Proof,
}

/// Response (`0x89`): empty, whichever key signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Disarmed;

impl Message for Disarm {
    const MIN_BODY: usize = PROOF_BODY_LEN;
    const MAX_BODY: usize = PROOF_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let (alert, proof) = decode_alert_proof(head)?;
        Ok(Disarm { alert, proof })
    }

    fn body_len(&self) -> usize {
        PROOF_BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        encode_alert_proof(&self.alert, &self.proof, out);
    }
}

impl Message for Disarmed {
    const MIN_BODY: usize = 0;
    const MAX_BODY: usize = 0;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |_| Ok(Disarmed))
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

    #[test]
    fn disarm_round_trips_and_disarmed_is_six_bytes() {
        let d = Disarm {
            alert: AlertId([1; 16]),
            proof: Proof {
                nonce: [2; 32],
                signature: [3; 64],
            },
        };
        let bytes = encode(&d).unwrap();
        assert_eq!(&bytes[..6], [1, 0x09, 0, 0, 0, 112]);
        assert_eq!(decode_request_frame(&bytes), Ok((Request::Disarm(d), &[][..])));
        assert!(decode_request_frame(&bytes[..bytes.len() - 1]).is_err());
        let bytes = encode(&Disarmed).unwrap();
        assert_eq!(bytes, [1, 0x89, 0, 0, 0, 0]);
        assert_eq!(decode_response_frame(&bytes), Ok(Response::Disarmed(Disarmed)));
    }
}
