//! The one table of the wire protocol: every exchange (a request and the response that answers
//! it), its frame type bytes and the module that holds it.
//!
//! Everything that has to list the exchanges is generated from this table, so none of those
//! lists can fall out of step with it:
//!
//! * in `vigil-core`: the [`RequestType`](super::RequestType) and
//!   [`ResponseType`](super::ResponseType) enums, the header check (type byte, direction and
//!   body bounds), the [`Request`](super::Request) and [`Response`](super::Response) unions and
//!   their exhaustive decoders, and the `pub mod` line of each exchange's file;
//! * in `vigil-relay`: the `mod` line of each handler file and the dispatch to it.
//!
//! A line reads `module: Request = byte => Response = byte;`. The module `src/wire/<module>.rs`
//! defines the two message types named on the line and implements [`Message`](super::Message)
//! for both; the relay's `server/src/handlers/<module>.rs` handles the request. Requests have the
//! high bit of their type byte clear and responses have it set; the Error response (`0xff`,
//! [`refusal`](super::refusal)) may answer any request and is not part of any line.
//!
//! Adding a request is therefore: one new wire file, one line here, one handler file, one client
//! call (see `docs/architecture.md`).

/// Invoke `$callback!` with the table of exchanges (see the [module docs](crate::wire::table)).
#[macro_export]
macro_rules! for_each_exchange {
    ($callback:ident) => {
        $callback! {
            /// Ask for a fresh, single-use nonce for the next proof on this connection.
            challenge: Challenge = 0x01 => ChallengeNonce = 0x81;
            /// Register a mailbox public key, with a proof of possession.
            register: Register = 0x02 => Registered = 0x82;
            /// Deposit an envelope into a mailbox, anonymously; answered once it is on disk.
            deposit: Deposit = 0x03 => Stored = 0x83;
            /// Fetch stored items from a mailbox, with a proof of possession.
            fetch: Fetch = 0x04 => Items = 0x84;
            /// Acknowledge (delete) fetched items, with a proof of possession.
            ack: Ack = 0x05 => Acked = 0x85;
            /// Ask how full a mailbox is, with a proof of possession.
            status: Status = 0x06 => MailboxStatus = 0x86;
            /// Arm a check-in alert, anonymously: sealed envelopes released unless checked in to.
            arm: Arm = 0x07 => Armed = 0x87;
            /// Check in to an alert (by its check-in key, or its duress key), with a proof.
            checkin: CheckIn = 0x08 => CheckedIn = 0x88;
            /// Disarm an alert (by its check-in key, or its duress key), with a proof.
            disarm: Disarm = 0x09 => Disarmed = 0x89;
            /// Ask, anonymously, how much room a report with attachments has at this relay.
            quote: Quote = 0x0a => Room = 0x8a;
            /// Upload a chunk of an attachment blob, anonymously; answered once it is on disk.
            upload: Upload = 0x0b => Uploaded = 0x8b;
            /// Deposit an envelope that refers to uploaded blobs, anonymously; answered once stored.
            deposit_blobs: DepositBlobs = 0x0c => BlobsStored = 0x8c;
            /// Download a chunk of a blob, anonymously: its random id is the capability.
            download: Download = 0x0d => BlobChunk = 0x8d;
            /// Wait until a mailbox holds items (or a bounded time), with a proof of possession.
            wait: Wait = 0x0e => Pending = 0x8e;
            /// Keep a mailbox's signed prekey bundle, with a proof of possession (issue 16).
            publish_prekey: PublishPrekey = 0x0f => PrekeyPublished = 0x8f;
            /// A mailbox's prekey bundle, anonymously: it is public.
            get_prekey: GetPrekey = 0x10 => Prekey = 0x90;
        }
    };
}
