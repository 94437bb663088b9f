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
//!
//! Mailbox operations (register, fetch, ack) carry a proof of possession of the mailbox key
//! bound to this connection (`vigil_core::wire::auth`): [`RelayClient::proof`] asks for a nonce
//! (`challenge`) and signs it together with the TLS exporter. An `Error` answer to any call
//! becomes [`RelayError::Refused`].

use super::{RelayClient, RelayError};
use ed25519_dalek::SigningKey;
use vigil_core::ids::{DepositId, ItemId, MailboxId};
use vigil_core::wire::auth::{self, Purpose};
use vigil_core::wire::limits::{MAX_ACK_IDS, MAX_ENVELOPE_LEN, MAX_ITEMS_PER_FETCH, NONCE_LEN};
use vigil_core::wire::{self, Proof, Request, Response};

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

impl RelayClient {
    /// Ask the relay for a fresh nonce on this connection.
    pub async fn challenge(&self) -> Result<[u8; NONCE_LEN], RelayError> {
        self.call(&Request::Challenge, |r| match r {
            Response::ChallengeNonce(n) => Ok(n),
            other => Err(unexpected(&other)),
        })
        .await
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
        let digest = auth::register_digest(&public_key);
        let proof = self
            .proof(mailbox_key, Purpose::Register, &mailbox, &digest)
            .await?;
        self.call(&Request::Register { public_key, proof }, |r| match r {
            Response::Registered(m) if m == mailbox => Ok(m),
            Response::Registered(_) => Err(RelayError::Protocol(
                "registered a different mailbox id".into(),
            )),
            other => Err(unexpected(&other)),
        })
        .await
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
        if envelope.len() > MAX_ENVELOPE_LEN {
            return Err(RelayError::TooLarge {
                len: envelope.len(),
                max: MAX_ENVELOPE_LEN,
            });
        }
        // Head and envelope are written one after the other: a 16 MiB envelope is not copied
        // into a frame first.
        let head = wire::encode_deposit_head(mailbox, deposit_id, envelope.len())
            .map_err(|e| RelayError::Protocol(format!("cannot encode the request: {e}")))?;
        let frame = self.exchange(&[&head, envelope]).await?;
        match expect_response(&frame)? {
            Response::Stored { duplicate: false } => Ok(Deposited::New),
            Response::Stored { duplicate: true } => Ok(Deposited::Duplicate),
            other => Err(unexpected(&other)),
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
        let digest = auth::fetch_digest(max_items);
        let proof = self
            .proof(mailbox_key, Purpose::Fetch, &mailbox, &digest)
            .await?;
        let req = Request::Fetch {
            mailbox,
            max_items,
            proof,
        };
        self.call(&req, |r| match r {
            Response::Items(items) if items.len() > max_items as usize => {
                Err(RelayError::Protocol("more items than asked for".into()))
            }
            Response::Items(items) => Ok(items
                .into_iter()
                .map(|i| FetchedItem {
                    id: i.id,
                    envelope: i.envelope.to_vec(),
                })
                .collect()),
            other => Err(unexpected(&other)),
        })
        .await
    }

    /// Acknowledge items so the relay deletes them. Returns how many were deleted (ids already
    /// gone are not counted). More than `MAX_ACK_IDS` ids are sent in several requests.
    pub async fn ack(&self, mailbox_key: &SigningKey, ids: &[ItemId]) -> Result<u64, RelayError> {
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let mut total = 0u64;
        for chunk in ids.chunks(MAX_ACK_IDS) {
            let digest = auth::ack_digest(chunk);
            let proof = self
                .proof(mailbox_key, Purpose::Ack, &mailbox, &digest)
                .await?;
            let req = Request::Ack {
                mailbox,
                ids: chunk.to_vec(),
                proof,
            };
            total = total.saturating_add(
                self.call(&req, |r| match r {
                    Response::Acked(n) => Ok(n),
                    other => Err(unexpected(&other)),
                })
                .await?,
            );
        }
        Ok(total)
    }

    /// One call: send `req`, decode the answer (an `Error` answer becomes
    /// [`RelayError::Refused`]) and let `pick` take the expected one.
    async fn call<T>(
        &self,
        req: &Request<'_>,
        pick: impl FnOnce(Response<'_>) -> Result<T, RelayError>,
    ) -> Result<T, RelayError> {
        let frame = self.request(req).await?;
        pick(expect_response(&frame)?)
    }
}

/// Decode a response frame; an Error response becomes [`RelayError::Refused`].
fn expect_response(frame: &[u8]) -> Result<Response<'_>, RelayError> {
    match wire::decode_response(frame)? {
        Response::Error {
            code,
            retryable,
            message,
        } => Err(RelayError::Refused {
            code,
            message: message.to_string(),
            retryable,
        }),
        other => Ok(other),
    }
}

fn unexpected(r: &Response<'_>) -> RelayError {
    RelayError::Protocol(format!("unexpected {:?} answer", r.frame_type()))
}
