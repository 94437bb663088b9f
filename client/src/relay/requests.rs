//! The request API: one client call per request of the `vigil/1` protocol, each one
//! [`RelayClient::exchange`] (in `connection.rs`) and one expected answer.
//!
//! | call | request | answer |
//! |---|---|---|
//! | [`RelayClient::challenge`] | `Challenge` | `ChallengeNonce` |
//! | [`RelayClient::register`] | `Register` (with a proof) | `Registered` |
//! | [`RelayClient::deposit`] | `Deposit` (head, then the envelope) | `Stored` |
//! | [`RelayClient::fetch`] | `Fetch` (with a proof) | `Items` |
//! | [`RelayClient::ack`] | `Ack` (with a proof), per `MAX_ACK_IDS` ids | `Acked` |
//! | [`RelayClient::status`] | `Status` (with a proof) | `MailboxStatus` |
//! | [`RelayClient::fetch_with_notes`] | `Fetch` with the notes flag (with a proof) | `Items` with notes |
//! | [`RelayClient::arm`] | `Arm` (anonymous) | `Armed` |
//! | [`RelayClient::check_in`] | `CheckIn` (with an alert proof) | `CheckedIn` |
//! | [`RelayClient::disarm`] | `Disarm` (with an alert proof) | `Disarmed` |
//!
//! Mailbox operations (register, fetch, ack, status) carry a proof of possession of the mailbox key
//! bound to this connection (`vigil_core::wire::auth`): [`RelayClient::proof`] asks for a nonce
//! (`challenge`) and signs it together with the TLS exporter. Check-ins and disarms carry the
//! same kind of proof by the alert's check-in or duress key ([`auth::sign_alert`]). An `Error`
//! answer to any call becomes [`RelayError::Refused`].

use super::{RelayClient, RelayError};
use ed25519_dalek::{SigningKey, VerifyingKey};
use vigil_core::ids::{AlertId, DepositId, ItemId, MailboxId};
use vigil_core::wire::ack::{self, Ack};
use vigil_core::wire::alert::{CHECKIN_PURPOSE, DISARM_PURPOSE};
use vigil_core::wire::arm::{AlertEnvelope, Arm};
use vigil_core::wire::auth::{self, Purpose};
use vigil_core::wire::challenge::Challenge;
use vigil_core::wire::checkin::CheckIn;
use vigil_core::wire::deposit::{Deposit, Stored};
use vigil_core::wire::disarm::Disarm;
use vigil_core::wire::fetch::{self, Fetch};
use vigil_core::wire::limits::{MAX_ACK_IDS, MAX_ITEMS_PER_FETCH, NONCE_LEN};
use vigil_core::wire::register::{self, Register};
use vigil_core::wire::status::{self, MailboxStatus, Status};
use vigil_core::wire::{
    self, ErrorCode, IsRequest, IsResponse, Proof, ReleaseNote, Response, WireError,
};

/// The relay's answer to a deposit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deposited {
    /// Stored now.
    New,
    /// An earlier deposit with the same id was already stored (a retry after a lost answer).
    Duplicate,
}

/// One item fetched from a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedItem {
    /// The relay's id, for [`RelayClient::ack`].
    pub id: ItemId,
    /// The envelope exactly as deposited.
    pub envelope: Vec<u8>,
}

/// One item fetched with [`RelayClient::fetch_with_notes`]: the item, and the relay's release
/// note if the relay released it from a check-in alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotedItem {
    /// The relay's id, for [`RelayClient::ack`].
    pub id: ItemId,
    /// The envelope exactly as deposited (or as sealed at arming).
    pub envelope: Vec<u8>,
    /// `Some` for an envelope released from a check-in alert: why, and when (relay clock, Unix
    /// seconds, to the minute; `last_checkin_at` is 0 if no check-in came after arming). The
    /// relay writes it, outside the envelope: it says what the relay did, not what the reporter
    /// wrote.
    pub note: Option<ReleaseNote>,
}

impl RelayClient {
    /// Ask the relay for a fresh nonce on this connection.
    pub async fn challenge(&self) -> Result<[u8; NONCE_LEN], RelayError> {
        Ok(self.call(&Challenge, &[]).await?.nonce)
    }

    /// Get a nonce and sign a proof for `purpose` on this connection.
    pub async fn proof(
        &self,
        key: &SigningKey,
        purpose: Purpose,
        mailbox: &MailboxId,
        digest: &[u8; 32],
    ) -> Result<Proof, RelayError> {
        let nonce = self.challenge().await?;
        Ok(auth::sign(
            key,
            purpose,
            &self.exporter(),
            &nonce,
            mailbox,
            digest,
        ))
    }

    /// Register the mailbox of `mailbox_key` (idempotent). Returns its id.
    pub async fn register(&self, mailbox_key: &SigningKey) -> Result<MailboxId, RelayError> {
        let public_key = mailbox_key.verifying_key().to_bytes();
        let mailbox = MailboxId::for_key(&public_key);
        let digest = Register::digest(&public_key);
        let proof = self
            .proof(mailbox_key, register::PURPOSE, &mailbox, &digest)
            .await?;
        let r = self.call(&Register { public_key, proof }, &[]).await?;
        if r.mailbox != mailbox {
            return Err(RelayError::Protocol(
                "registered a different mailbox id".into(),
            ));
        }
        Ok(mailbox)
    }

    /// Deposit `envelope`. `Ok` only once the relay has said the envelope is on its disk.
    /// Retrying with the same `deposit_id` after a lost answer stores it only once.
    pub async fn deposit(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        envelope: &[u8],
    ) -> Result<(), RelayError> {
        self.deposit_status(mailbox, deposit_id, envelope)
            .await
            .map(|_| ())
    }

    /// [`RelayClient::deposit`], saying whether the relay had already stored this deposit id.
    pub async fn deposit_status(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        envelope: &[u8],
    ) -> Result<Deposited, RelayError> {
        let head = Deposit {
            mailbox: *mailbox,
            deposit_id: *deposit_id,
            envelope_len: envelope.len(),
        };
        // The head's frame, then the envelope: a 16 MiB envelope is not copied into a frame.
        match self.call(&head, envelope).await? {
            Stored { duplicate: false } => Ok(Deposited::New),
            Stored { duplicate: true } => Ok(Deposited::Duplicate),
        }
    }

    /// Fetch up to `max_items` items (clamped to 1 ..= `MAX_ITEMS_PER_FETCH`) from the mailbox of
    /// `mailbox_key`. Items stay at the relay until acknowledged.
    pub async fn fetch(
        &self,
        mailbox_key: &SigningKey,
        max_items: u32,
    ) -> Result<Vec<FetchedItem>, RelayError> {
        let max_items = max_items.clamp(1, MAX_ITEMS_PER_FETCH);
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let digest = Fetch::digest(max_items);
        let proof = self
            .proof(mailbox_key, fetch::PURPOSE, &mailbox, &digest)
            .await?;
        let req = Fetch {
            mailbox,
            max_items,
            proof,
        };
        let items = self.call(&req, &[]).await?.items;
        if items.len() > max_items as usize {
            return Err(RelayError::Protocol("more items than asked for".into()));
        }
        Ok(items
            .into_iter()
            .map(|i| FetchedItem {
                id: i.id,
                envelope: i.envelope,
            })
            .collect())
    }

    /// [`RelayClient::fetch`], with each item's release note (`Some` for an envelope the relay
    /// released from a check-in alert). A relay that predates check-in alerts refuses the notes
    /// flag; then this fetches without it, and every note is `None`.
    pub async fn fetch_with_notes(
        &self,
        mailbox_key: &SigningKey,
        max_items: u32,
    ) -> Result<Vec<NotedItem>, RelayError> {
        let max_items = max_items.clamp(1, MAX_ITEMS_PER_FETCH);
        let flagged = max_items | fetch::WITH_NOTES;
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let digest = Fetch::digest(flagged);
        let proof = self
            .proof(mailbox_key, fetch::PURPOSE, &mailbox, &digest)
            .await?;
        let req = Fetch {
            mailbox,
            max_items: flagged,
            proof,
        };
        let items = match self.call(&req, &[]).await {
            Ok(items) => items.items,
            Err(RelayError::Refused {
                code: ErrorCode::TooLarge,
                ..
            }) => {
                let plain = self.fetch(mailbox_key, max_items).await?;
                let noted = plain.into_iter().map(|i| NotedItem {
                    id: i.id,
                    envelope: i.envelope,
                    note: None,
                });
                return Ok(noted.collect());
            }
            Err(e) => return Err(e),
        };
        if items.len() > max_items as usize {
            return Err(RelayError::Protocol("more items than asked for".into()));
        }
        Ok(items
            .into_iter()
            .map(|i| NotedItem {
                id: i.id,
                envelope: i.envelope,
                note: i.note,
            })
            .collect())
    }

    /// Arm check-in alert `alert` (16 random bytes the caller keeps, and reuses on a retry):
    /// unless checked in to every `every` seconds (with `grace` seconds of slack), the relay
    /// releases each envelope into its mailbox. `checkin_key` and `duress_key` are the public
    /// halves of two keys made for this alert alone. Each envelope is an ordinary sealed report
    /// for one NGO mailbox (at most `MAX_ALERT_ENVELOPES`, each at most
    /// `MAX_ALERT_ENVELOPE_LEN` bytes, distinct mailboxes). `every` and `grace` are each
    /// `MIN_ALERT_INTERVAL_SECS ..= MAX_ALERT_INTERVAL_SECS` (1 s ..= 30 days).
    ///
    /// Anonymous, like a deposit. Returns the seconds until the relay would release the alert
    /// (`every + grace` for a new one). Arming the same alert again answers the same way; another
    /// alert under the same id is refused (`Malformed`), a mailbox that is not registered
    /// (`UnknownMailbox`) or full (`QuotaExceeded`) refuses the whole alert.
    pub async fn arm(
        &self,
        alert: AlertId,
        every: u32,
        grace: u32,
        checkin_key: &VerifyingKey,
        duress_key: &VerifyingKey,
        envelopes: Vec<AlertEnvelope>,
    ) -> Result<u64, RelayError> {
        let req = Arm {
            alert,
            every,
            grace,
            checkin_key: checkin_key.to_bytes(),
            duress_key: duress_key.to_bytes(),
            envelopes,
        };
        Ok(self.call(&req, &[]).await?.deadline_secs)
    }

    /// Check in to `alert`, signing with `key`: the alert's check-in key postpones the release
    /// to `every + grace` from now; its duress key releases the alert at once, marked duress.
    /// The relay answers both the same way, so `Ok(())` says nothing about which happened, by
    /// design. An unknown or released alert, or a key that is neither, is refused with
    /// `BadProof`.
    pub async fn check_in(&self, alert: &AlertId, key: &SigningKey) -> Result<(), RelayError> {
        let nonce = self.challenge().await?;
        let proof = auth::sign_alert(key, CHECKIN_PURPOSE, &self.exporter(), &nonce, alert);
        self.call(
            &CheckIn {
                alert: *alert,
                proof,
            },
            &[],
        )
        .await
        .map(|_| ())
    }

    /// Disarm `alert`, signing with `key`: the alert's check-in key deletes it and its envelopes;
    /// its duress key releases it at once, marked duress. Answered the same way either way.
    /// Refused as [`RelayClient::check_in`] is.
    pub async fn disarm(&self, alert: &AlertId, key: &SigningKey) -> Result<(), RelayError> {
        let nonce = self.challenge().await?;
        let proof = auth::sign_alert(key, DISARM_PURPOSE, &self.exporter(), &nonce, alert);
        self.call(
            &Disarm {
                alert: *alert,
                proof,
            },
            &[],
        )
        .await
        .map(|_| ())
    }

    /// Acknowledge items so the relay deletes them. Returns how many were deleted (ids already
    /// gone are not counted). More than `MAX_ACK_IDS` ids are sent in several requests.
    pub async fn ack(&self, mailbox_key: &SigningKey, ids: &[ItemId]) -> Result<u64, RelayError> {
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let mut total = 0u64;
        for chunk in ids.chunks(MAX_ACK_IDS) {
            let digest = Ack::digest(chunk);
            let proof = self
                .proof(mailbox_key, ack::PURPOSE, &mailbox, &digest)
                .await?;
            let req = Ack {
                mailbox,
                ids: chunk.to_vec(),
                proof,
            };
            total = total.saturating_add(self.call(&req, &[]).await?.count);
        }
        Ok(total)
    }

    /// How full the mailbox of `mailbox_key` is: usage against its quota, deposits refused
    /// because it was full, and how long the relay keeps items.
    pub async fn status(&self, mailbox_key: &SigningKey) -> Result<MailboxStatus, RelayError> {
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let proof = self
            .proof(mailbox_key, status::PURPOSE, &mailbox, &Status::digest())
            .await?;
        self.call(&Status { mailbox, proof }, &[]).await
    }

    /// One call: send `req` (and its payload, for a deposit), and decode the answer the table
    /// pairs with it. An `Error` answer becomes [`RelayError::Refused`]; any other answer is a
    /// protocol violation.
    pub(super) async fn call<R: IsRequest>(
        &self,
        req: &R,
        payload: &[u8],
    ) -> Result<R::Answer, RelayError> {
        let head = wire::encode(req).map_err(encode_error)?;
        let frame = self.exchange(&[&head, payload]).await?;
        answer::<R::Answer>(&frame)
    }
}

/// Why a request could not be encoded: the sender learns of a limit before sending.
pub(super) fn encode_error(e: WireError) -> RelayError {
    match e {
        WireError::TooLarge { len, max, .. } => RelayError::TooLarge {
            len: len as usize,
            max: max as usize,
        },
        other => RelayError::Protocol(format!("cannot encode the request: {other}")),
    }
}

/// Decode an answer frame as `A`; an Error answer becomes [`RelayError::Refused`].
fn answer<A: IsResponse>(frame: &[u8]) -> Result<A, RelayError> {
    match A::from_response(wire::decode_response_frame(frame)?) {
        Ok(a) => Ok(a),
        Err(Response::Error(r)) => Err(RelayError::Refused {
            code: r.code,
            message: r.message,
            retryable: r.retryable,
        }),
        Err(other) => Err(RelayError::Protocol(format!(
            "unexpected {} answer",
            other.kind().name()
        ))),
    }
}
