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
//! | [`RelayClient::quote`] | `Quote` (anonymous) | `Room` |
//! | [`RelayClient::upload_chunk`], [`RelayClient::upload_status`] | `Upload` (anonymous; head, then the chunk) | `Uploaded` |
//! | [`RelayClient::deposit_with_blobs`] | `DepositBlobs` (head, then the envelope) | `BlobsStored` |
//! | [`RelayClient::fetch_full`] | `Fetch` with the notes and blobs flags (with a proof) | `Items` with notes and blob lists |
//! | [`RelayClient::download_chunk`] | `Download` (anonymous: the blob id is the capability) | `BlobChunk` |
//! | [`RelayClient::wait`] | `Wait` (with a proof) | `Pending` |
//!
//! Mailbox operations (register, fetch, ack, status) carry a proof of possession of the mailbox key
//! bound to this connection (`vigil_core::wire::auth`): [`RelayClient::proof`] asks for a nonce
//! (`challenge`) and signs it together with the TLS exporter. Check-ins and disarms carry the
//! same kind of proof by the alert's check-in or duress key ([`auth::sign_alert`]). An `Error`
//! answer to any call becomes [`RelayError::Refused`].

use super::{RelayClient, RelayError};
use ed25519_dalek::{SigningKey, VerifyingKey};
use vigil_core::ids::{AlertId, BlobId, DepositId, ItemId, MailboxId};
use vigil_core::wire::ack::{self, Ack};
use vigil_core::wire::alert::{CHECKIN_PURPOSE, DISARM_PURPOSE};
use vigil_core::wire::arm::{AlertEnvelope, Arm};
use vigil_core::wire::auth::{self, Purpose};
use vigil_core::wire::challenge::Challenge;
use vigil_core::wire::checkin::CheckIn;
use vigil_core::wire::deposit::{Deposit, Stored};
use vigil_core::wire::deposit_blobs::{BlobsStored, DepositBlobs};
use vigil_core::wire::disarm::Disarm;
use vigil_core::wire::download::Download;
use vigil_core::wire::fetch::{self, BlobRef, Fetch};
use vigil_core::wire::get_prekey::GetPrekey;
use vigil_core::wire::limits::{MAX_ACK_IDS, MAX_ITEMS_PER_FETCH, MAX_WAIT_SECS, NONCE_LEN};
use vigil_core::wire::publish_prekey::{self, PublishPrekey};
use vigil_core::wire::quote::{Quote, Room};
use vigil_core::wire::register::{self, Register};
use vigil_core::wire::status::{self, MailboxStatus, Status};
use vigil_core::wire::upload::Upload;
use vigil_core::wire::wait::{self, Wait};
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

/// One item fetched with [`RelayClient::fetch_full`]: the item, its release note, and the
/// attachment blobs it refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullItem {
    /// The relay's id, for [`RelayClient::ack`].
    pub id: ItemId,
    /// The envelope exactly as deposited (or as sealed at arming).
    pub envelope: Vec<u8>,
    /// As in [`NotedItem::note`].
    pub note: Option<ReleaseNote>,
    /// The blobs the depositor said the envelope refers to: each one's id (what
    /// [`RelayClient::download_chunk`] names) and length. Empty for an item deposited without
    /// blobs. The relay vouches for nothing here: the envelope's signed attachment list is what
    /// the NGO's client trusts, and a blob's hash is checked as it is decrypted.
    pub blobs: Vec<BlobRef>,
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

    /// Register the mailbox of `mailbox_key` (idempotent), to be kept until further notice (an
    /// NGO's mailbox). Returns its id.
    pub async fn register(&self, mailbox_key: &SigningKey) -> Result<MailboxId, RelayError> {
        self.register_with(mailbox_key, None).await.map(|(m, _)| m)
    }

    /// Register the mailbox of `mailbox_key` to be kept `days` whole days from now, then
    /// forgotten by the relay (a reply mailbox). Returns the days the relay granted (it may cap
    /// them), or `None` from a relay that predates lifetimes: it refuses the longer Register
    /// as too large, and the mailbox is then registered without one, as such relays always did.
    pub async fn register_for(
        &self,
        mailbox_key: &SigningKey,
        days: u16,
    ) -> Result<Option<u16>, RelayError> {
        let days = days.clamp(1, vigil_core::wire::limits::MAX_MAILBOX_LIFETIME_DAYS);
        match self.register_with(mailbox_key, Some(days)).await {
            Ok((_, granted)) => Ok(granted),
            Err(RelayError::Refused {
                code: ErrorCode::TooLarge | ErrorCode::Malformed,
                ..
            }) => self.register_with(mailbox_key, None).await.map(|_| None),
            Err(e) => Err(e),
        }
    }

    async fn register_with(
        &self,
        mailbox_key: &SigningKey,
        lifetime_days: Option<u16>,
    ) -> Result<(MailboxId, Option<u16>), RelayError> {
        let public_key = mailbox_key.verifying_key().to_bytes();
        let mailbox = MailboxId::for_key(&public_key);
        let digest = Register::digest(&public_key, lifetime_days);
        let proof = self
            .proof(mailbox_key, register::PURPOSE, &mailbox, &digest)
            .await?;
        let request = Register {
            public_key,
            proof,
            lifetime_days,
        };
        let r = self.call(&request, &[]).await?;
        if r.mailbox != mailbox {
            return Err(RelayError::Protocol(
                "registered a different mailbox id".into(),
            ));
        }
        Ok((mailbox, r.lifetime_days))
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

    /// One Fetch of up to `max_items` items (clamped to 1 ..= `MAX_ITEMS_PER_FETCH`) with the
    /// `flags` bits set (`fetch::WITH_NOTES`, `fetch::WITH_BLOBS`; both under the proof), checked
    /// for no more items than asked. What [`Self::fetch`], [`Self::fetch_with_notes`] and
    /// [`Self::fetch_full`] share; each maps the items to what it returns.
    async fn fetch_flagged(
        &self,
        mailbox_key: &SigningKey,
        max_items: u32,
        flags: u32,
    ) -> Result<fetch::Items, RelayError> {
        let max_items = max_items.clamp(1, MAX_ITEMS_PER_FETCH);
        let flagged = max_items | flags;
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
        let items = self.call(&req, &[]).await?;
        if items.items.len() > max_items as usize {
            return Err(RelayError::Protocol("more items than asked for".into()));
        }
        Ok(items)
    }

    /// Fetch up to `max_items` items (clamped to 1 ..= `MAX_ITEMS_PER_FETCH`) from the mailbox of
    /// `mailbox_key`. Items stay at the relay until acknowledged.
    pub async fn fetch(
        &self,
        mailbox_key: &SigningKey,
        max_items: u32,
    ) -> Result<Vec<FetchedItem>, RelayError> {
        let items = self.fetch_flagged(mailbox_key, max_items, 0).await?.items;
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
        let items = match self
            .fetch_flagged(mailbox_key, max_items, fetch::WITH_NOTES)
            .await
        {
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
        Ok(items
            .into_iter()
            .map(|i| NotedItem {
                id: i.id,
                envelope: i.envelope,
                note: i.note,
            })
            .collect())
    }

    /// Ask, anonymously, whether a report of `total` bytes (every blob and envelope, as it will
    /// be sent) fits at this relay for `mailboxes` (1 ..= `MAX_QUOTE_MAILBOXES`, the NGOs the
    /// report goes to). Returns the relay's per-report limit and each mailbox's room, in order.
    /// A report that does not fit is refused with a one-line message stating the limit
    /// (`TooLarge`: "the relay takes at most 2 GiB per report"; `QuotaExceeded`; or
    /// `UnknownMailbox`). A quote reserves nothing.
    pub async fn quote(&self, mailboxes: &[MailboxId], total: u64) -> Result<Room, RelayError> {
        let req = Quote {
            mailboxes: mailboxes.to_vec(),
            total,
        };
        let room = self.call(&req, &[]).await?;
        if room.left.len() != mailboxes.len() {
            return Err(RelayError::Protocol(
                "a room answer for other mailboxes".into(),
            ));
        }
        Ok(room)
    }

    /// Upload `chunk` (at most `MAX_BLOB_CHUNK` bytes) at `offset` of blob `blob`, whose whole
    /// length is `total` (the same in every upload of the blob; at most the relay's per-report
    /// limit). Returns the blob's durable length at the relay once the chunk is on its disk:
    /// `offset + chunk.len()` normally. Any other offset than the blob's durable length writes
    /// nothing and returns that length, which is where to continue: resume from the returned
    /// value, never from a local count. Anonymous, rate-limited like deposits.
    pub async fn upload_chunk(
        &self,
        blob: BlobId,
        total: u64,
        offset: u64,
        chunk: &[u8],
    ) -> Result<u64, RelayError> {
        let head = Upload {
            blob,
            total,
            offset,
            chunk_len: chunk.len(),
        };
        let offset = self.call(&head, chunk).await?.offset;
        if offset > total {
            return Err(RelayError::Protocol("a blob longer than its total".into()));
        }
        Ok(offset)
    }

    /// How much of blob `blob` (of `total` bytes) the relay holds durably: 0 for a blob it does
    /// not know, `total` once complete. The offset-0, empty-chunk Upload that every resume
    /// starts with.
    pub async fn upload_status(&self, blob: BlobId, total: u64) -> Result<u64, RelayError> {
        self.upload_chunk(blob, total, 0, &[]).await
    }

    /// [`RelayClient::deposit_status`] of an envelope that refers to `blobs` (1 ..=
    /// `MAX_BLOBS_PER_DEPOSIT`, distinct, each completely uploaded first): the relay stores it
    /// only if every blob is complete (else `UnknownBlob`), counts the blobs' bytes against the
    /// mailbox's quota, and keeps each blob while an item refers to it. Idempotent per
    /// (mailbox, deposit id) like a deposit.
    pub async fn deposit_with_blobs(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        envelope: &[u8],
        blobs: &[BlobId],
    ) -> Result<Deposited, RelayError> {
        let head = DepositBlobs {
            deposit: Deposit {
                mailbox: *mailbox,
                deposit_id: *deposit_id,
                envelope_len: envelope.len(),
            },
            blobs: blobs.to_vec(),
        };
        match self.call(&head, envelope).await? {
            BlobsStored { duplicate: false } => Ok(Deposited::New),
            BlobsStored { duplicate: true } => Ok(Deposited::Duplicate),
        }
    }

    /// [`RelayClient::fetch_with_notes`], with each item's attachment blobs too (ids and
    /// lengths). A relay that predates blobs refuses the flag (`TooLarge`); that error is
    /// returned as it is, since items without their blobs would be incomplete reports.
    pub async fn fetch_full(
        &self,
        mailbox_key: &SigningKey,
        max_items: u32,
    ) -> Result<Vec<FullItem>, RelayError> {
        let items = self
            .fetch_flagged(
                mailbox_key,
                max_items,
                fetch::WITH_NOTES | fetch::WITH_BLOBS,
            )
            .await?;
        if !(items.with_blobs && items.with_notes) {
            return Err(RelayError::Protocol(
                "items without the fields asked for".into(),
            ));
        }
        Ok(items
            .items
            .into_iter()
            .map(|i| FullItem {
                id: i.id,
                envelope: i.envelope,
                note: i.note,
                blobs: i.blobs,
            })
            .collect())
    }

    /// `len` bytes (1 ..= `MAX_BLOB_CHUNK`) of complete blob `blob` from `offset`. Anonymous:
    /// the blob id, learnt from [`RelayClient::fetch_full`], is the capability. Refused with
    /// `UnknownBlob` once the last item referring to the blob was acknowledged or expired, and
    /// with `Malformed` for a range past the blob's end. The bytes are ciphertext exactly as
    /// uploaded; the caller checks them (the attachment's SHA-256) as it decrypts.
    pub async fn download_chunk(
        &self,
        blob: BlobId,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, RelayError> {
        let bytes = self.call(&Download { blob, offset, len }, &[]).await?.bytes;
        if bytes.len() != len as usize {
            return Err(RelayError::Protocol(format!(
                "asked for {len} bytes of a blob, got {}",
                bytes.len()
            )));
        }
        Ok(bytes)
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

    /// Wait up to `secs` seconds (within the protocol's `MAX_WAIT_SECS`) for the mailbox of
    /// `mailbox_key` to hold items; the relay's answer is how many it holds (0: nothing came
    /// within the wait, or the relay ended it early). `inbox watch` fetches when it is not 0.
    ///
    /// A waiting request shows no traffic. Over QUIC keep-alives carry the connection through
    /// it; over TLS on TCP the client takes an answer that does not begin within the link's
    /// idle timeout for a stalled flow, so there the wait asked for is kept to three quarters of
    /// it.
    pub async fn wait(&self, mailbox_key: &SigningKey, secs: u16) -> Result<u64, RelayError> {
        let mut secs = secs.clamp(1, MAX_WAIT_SECS);
        if self.transport() == super::Transport::Tcp {
            let quiet = self.idle_timeout().as_secs() * 3 / 4;
            secs = secs.min(u16::try_from(quiet).unwrap_or(u16::MAX).max(1));
        }
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let proof = self
            .proof(mailbox_key, wait::PURPOSE, &mailbox, &Wait::digest(secs))
            .await?;
        let req = Wait {
            mailbox,
            wait_secs: secs,
            proof,
        };
        Ok(self.call(&req, &[]).await?.items)
    }

    /// Publish the NGO's signed prekey `bundle` (issue 16) for the mailbox of `mailbox_key`,
    /// replacing the one before; stored durably when this returns.
    pub async fn publish_prekey(
        &self,
        mailbox_key: &SigningKey,
        bundle: &[u8],
    ) -> Result<(), RelayError> {
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let proof = self
            .proof(
                mailbox_key,
                publish_prekey::PURPOSE,
                &mailbox,
                &PublishPrekey::digest(bundle),
            )
            .await?;
        let req = PublishPrekey {
            mailbox,
            proof,
            bundle: bundle.to_vec(),
        };
        self.call(&req, &[]).await.map(drop)
    }

    /// The prekey bundle the relay holds for `mailbox`, unchecked: the caller verifies it
    /// against the card (`vigil_core::prekey::PrekeyBundle::verify`) before using it.
    pub async fn get_prekey(&self, mailbox: MailboxId) -> Result<Option<Vec<u8>>, RelayError> {
        Ok(self.call(&GetPrekey { mailbox }, &[]).await?.bundle)
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
