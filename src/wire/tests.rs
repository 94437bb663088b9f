use super::ack::{Ack, Acked};
use super::arm::{AlertEnvelope, Arm, Armed};
use super::auth::{self, ChallengeSet};
use super::challenge::{Challenge, ChallengeNonce};
use super::checkin::{CheckIn, CheckedIn};
use super::deposit::{Deposit, Stored};
use super::deposit_blobs::{BlobsStored, DepositBlobs};
use super::disarm::{Disarm, Disarmed};
use super::download::{BlobChunk, Download};
use super::fetch::{BlobRef, Fetch, Item, Items};
use super::get_prekey::{GetPrekey, Prekey};
use super::limits::*;
use super::publish_prekey::{PrekeyPublished, PublishPrekey};
use super::quote::{Quote, Room};
use super::register::{Register, Registered};
use super::status::{MailboxStatus, Status};
use super::upload::{Upload, Uploaded};
use super::wait::{Pending, Wait};
use super::*;
use crate::ids::{AlertId, BlobId, DepositId, ItemId, MailboxId};
use proptest::prelude::*;

fn proof() -> Proof {
    Proof {
        nonce: [7; 32],
        signature: [9; 64],
    }
}

/// A deposit head for `envelope`.
fn deposit(envelope: &[u8]) -> Deposit {
    Deposit {
        mailbox: MailboxId([2; 32]),
        deposit_id: DepositId([3; 16]),
        envelope_len: envelope.len(),
    }
}

/// One request of every type, as whole frames (a deposit with its envelope).
fn sample_requests(envelope: &[u8]) -> Vec<(Request, Vec<u8>)> {
    let reqs = vec![
        Request::Challenge(Challenge),
        Request::Register(Register {
            public_key: [1; 32],
            proof: proof(),
            lifetime_days: Some(90),
        }),
        Request::Deposit(deposit(envelope)),
        Request::Fetch(Fetch {
            mailbox: MailboxId([2; 32]),
            max_items: 10,
            proof: proof(),
        }),
        Request::Ack(Ack {
            mailbox: MailboxId([2; 32]),
            ids: vec![ItemId([4; 16]), ItemId([5; 16])],
            proof: proof(),
        }),
        Request::Status(Status {
            mailbox: MailboxId([2; 32]),
            proof: proof(),
        }),
        Request::Arm(Arm {
            alert: AlertId([6; 16]),
            every: 4,
            grace: 2,
            checkin_key: [7; 32],
            duress_key: [8; 32],
            envelopes: vec![AlertEnvelope {
                mailbox: MailboxId([2; 32]),
                envelope: envelope.to_vec(),
            }],
        }),
        Request::CheckIn(CheckIn {
            alert: AlertId([6; 16]),
            proof: proof(),
        }),
        Request::Disarm(Disarm {
            alert: AlertId([6; 16]),
            proof: proof(),
        }),
        Request::Quote(Quote {
            mailboxes: vec![MailboxId([2; 32]), MailboxId([3; 32])],
            total: 1 << 30,
        }),
        Request::Upload(Upload {
            blob: BlobId([9; 16]),
            total: 100,
            offset: 10,
            chunk_len: envelope.len(),
        }),
        Request::DepositBlobs(DepositBlobs {
            deposit: deposit(envelope),
            blobs: vec![BlobId([9; 16]), BlobId([10; 16])],
        }),
        Request::Download(Download {
            blob: BlobId([9; 16]),
            offset: 5,
            len: 4096,
        }),
        Request::Wait(Wait {
            mailbox: MailboxId([2; 32]),
            wait_secs: 30,
            proof: proof(),
        }),
        Request::PublishPrekey(PublishPrekey {
            mailbox: MailboxId([2; 32]),
            proof: proof(),
            bundle: vec![6; 1373],
        }),
        Request::GetPrekey(GetPrekey {
            mailbox: MailboxId([2; 32]),
        }),
    ];
    let kinds: Vec<RequestType> = reqs.iter().map(Request::kind).collect();
    assert_eq!(kinds, RequestType::ALL, "one sample per table line");
    reqs.into_iter()
        .map(|r| {
            let mut f = r.encode().unwrap();
            if let Request::Deposit(_) | Request::Upload(_) | Request::DepositBlobs(_) = r {
                f.extend_from_slice(envelope);
            }
            (r, f)
        })
        .collect()
}

fn sample_responses(envelope: &[u8]) -> Vec<Response> {
    vec![
        Response::ChallengeNonce(ChallengeNonce { nonce: [8; 32] }),
        Response::Registered(Registered {
            mailbox: MailboxId([2; 32]),
            lifetime_days: Some(90),
        }),
        Response::Stored(Stored { duplicate: true }),
        Response::Items(Items::default()),
        Response::Items(Items {
            items: vec![
                Item {
                    id: ItemId([4; 16]),
                    envelope: envelope.to_vec(),
                    note: None,
                    blobs: Vec::new(),
                },
                Item {
                    id: ItemId([5; 16]),
                    envelope: envelope.to_vec(),
                    note: None,
                    blobs: Vec::new(),
                },
            ],
            with_notes: false,
            with_blobs: false,
        }),
        Response::Items(Items {
            items: vec![
                Item {
                    id: ItemId([4; 16]),
                    envelope: envelope.to_vec(),
                    note: Some(ReleaseNote {
                        reason: ReleaseReason::Missed,
                        armed_at: 60,
                        last_checkin_at: 0,
                        released_at: 600,
                    }),
                    blobs: Vec::new(),
                },
                Item {
                    id: ItemId([5; 16]),
                    envelope: envelope.to_vec(),
                    note: None,
                    blobs: Vec::new(),
                },
            ],
            with_notes: true,
            with_blobs: false,
        }),
        Response::Items(Items {
            items: vec![Item {
                id: ItemId([4; 16]),
                envelope: envelope.to_vec(),
                note: None,
                blobs: vec![BlobRef {
                    id: BlobId([9; 16]),
                    len: 100,
                }],
            }],
            with_notes: true,
            with_blobs: true,
        }),
        Response::Room(Room {
            max_report_bytes: 2 << 30,
            left: vec![1, 2],
        }),
        Response::Uploaded(Uploaded { offset: 10 }),
        Response::BlobsStored(BlobsStored { duplicate: false }),
        Response::BlobChunk(BlobChunk {
            bytes: envelope.to_vec(),
        }),
        Response::Armed(Armed { deadline_secs: 6 }),
        Response::CheckedIn(CheckedIn),
        Response::Disarmed(Disarmed),
        Response::Acked(Acked { count: 3 }),
        Response::Pending(Pending { items: 0 }),
        Response::Pending(Pending { items: 7 }),
        Response::PrekeyPublished(PrekeyPublished),
        Response::Prekey(Prekey { bundle: None }),
        Response::Prekey(Prekey {
            bundle: Some(vec![6; 1373]),
        }),
        Response::MailboxStatus(MailboxStatus {
            items: 1,
            bytes: 2,
            max_items: 3,
            max_bytes: 4,
            refused_full: 5,
            expiry_secs: 6,
        }),
        Response::Error(Refusal::new(ErrorCode::BadProof, "no")),
        Response::Error(Refusal {
            code: ErrorCode::Other(999),
            retryable: true,
            message: String::new(),
        }),
    ]
}

#[test]
fn requests_round_trip() {
    for (req, frame) in sample_requests(b"ciphertext") {
        let (back, payload) = decode_request_frame(&frame).unwrap();
        assert_eq!(back, req);
        let h = decode_request_header(frame[..6].try_into().unwrap()).unwrap();
        assert_eq!(h.kind, req.kind());
        assert_eq!(h.body_len, frame.len() - 6);
        let head_len = h.kind.head_len(h.body_len);
        assert_eq!(
            Request::decode(h.kind, &frame[6..6 + head_len], h.body_len).unwrap(),
            req
        );
        assert_eq!(&frame[6 + head_len..], payload);
    }
}

#[test]
fn responses_round_trip() {
    for resp in sample_responses(b"ciphertext") {
        let frame = resp.encode().unwrap();
        assert_eq!(decode_response_frame(&frame).unwrap(), resp);
        let h = decode_response_header(frame[..6].try_into().unwrap()).unwrap();
        assert_eq!(h.kind, resp.kind());
    }
}

#[test]
fn the_table_pairs_each_request_with_its_response() {
    for t in RequestType::ALL {
        assert_eq!(t.byte() & 0x80, 0, "{t:?} is a request");
        assert_eq!(t.answer().byte(), t.byte() | 0x80, "{t:?}");
        let (min, max) = t.body_bounds();
        assert!(min <= max && max <= MAX_REQUEST_LEN, "{t:?}");
    }
    for t in ResponseType::ALL {
        assert_ne!(t.byte() & 0x80, 0, "{t:?} is a response");
        assert!(t.body_bounds().1 <= MAX_FRAME_LEN, "{t:?}");
    }
    let mut bytes: Vec<u8> = RequestType::ALL.iter().map(|t| t.byte()).collect();
    bytes.extend(ResponseType::ALL.iter().map(|t| t.byte()));
    let n = bytes.len();
    bytes.sort_unstable();
    bytes.dedup();
    assert_eq!(bytes.len(), n, "type bytes are distinct");
}

#[test]
fn proof_purposes_are_distinct_and_nul_terminated() {
    let labels = [
        register::PURPOSE,
        fetch::PURPOSE,
        ack::PURPOSE,
        status::PURPOSE,
        wait::PURPOSE,
    ]
    .map(|p| p.label());
    for (i, l) in labels.iter().enumerate() {
        assert_eq!(l.last(), Some(&0), "{l:?}");
        assert_eq!(l.iter().filter(|b| **b == 0).count(), 1, "{l:?}");
        assert!(!labels[i + 1..].contains(l), "{l:?} is used twice");
    }
}

#[test]
fn challenge_frame_is_six_bytes() {
    assert_eq!(encode(&Challenge).unwrap(), [0x01, 0x01, 0, 0, 0, 0]);
}

#[test]
fn example_in_protocol_md_matches() {
    let frame = encode(&Stored { duplicate: false }).unwrap();
    assert_eq!(hex::encode(frame), "01830000000100");
    let frame = encode(&Fetch {
        mailbox: MailboxId([0xaa; 32]),
        max_items: 16,
        proof: Proof {
            nonce: [0xbb; 32],
            signature: [0xcc; 64],
        },
    })
    .unwrap();
    assert_eq!(&frame[..6], &[0x01, 0x04, 0, 0, 0, 0x84]);
    assert_eq!(&frame[6 + 64..6 + 68], &[0, 0, 0, 16]);
}

#[test]
fn checkin_alert_examples_in_protocol_md_match() {
    let arm = encode(&Arm {
        alert: AlertId([0x11; 16]),
        every: 4,
        grace: 2,
        checkin_key: [0x22; 32],
        duress_key: [0x33; 32],
        envelopes: vec![AlertEnvelope {
            mailbox: MailboxId([0x44; 32]),
            envelope: vec![0xee; 3],
        }],
    })
    .unwrap();
    let want = [
        "010700000080",
        &"11".repeat(16),
        "00000004",
        "00000002",
        &"22".repeat(32),
        &"33".repeat(32),
        "01",
        &"44".repeat(32),
        "00000003",
        "eeeeee",
    ]
    .concat();
    assert_eq!(hex::encode(arm), want);
    let armed = encode(&Armed { deadline_secs: 6 }).unwrap();
    assert_eq!(hex::encode(armed), "0187000000080000000000000006");
    let checkin = encode(&CheckIn {
        alert: AlertId([0xaa; 16]),
        proof: Proof {
            nonce: [0xbb; 32],
            signature: [0xcc; 64],
        },
    })
    .unwrap();
    let want = [
        "010800000070",
        &"aa".repeat(16),
        &"bb".repeat(32),
        &"cc".repeat(64),
    ]
    .concat();
    assert_eq!(hex::encode(checkin), want);
    assert_eq!(hex::encode(encode(&CheckedIn).unwrap()), "018800000000");
    assert_eq!(hex::encode(encode(&Disarmed).unwrap()), "018900000000");
    // A fetch asking for notes: max items 16 with the high bit set.
    let fetch = encode(&Fetch {
        mailbox: MailboxId([0xaa; 32]),
        max_items: fetch::WITH_NOTES | 16,
        proof: proof(),
    })
    .unwrap();
    assert_eq!(hex::encode(&fetch[6 + 64..6 + 68]), "80000010");
    let items = encode(&Items {
        items: vec![Item {
            id: ItemId([0x55; 16]),
            envelope: vec![0xee],
            note: Some(ReleaseNote {
                reason: ReleaseReason::Missed,
                armed_at: 60,
                last_checkin_at: 0,
                released_at: 600,
            }),
            blobs: Vec::new(),
        }],
        with_notes: true,
        with_blobs: false,
    })
    .unwrap();
    let want = [
        "018400000030",
        "8001",
        &"55".repeat(16),
        "00000001",
        "01",
        "000000000000003c",
        "0000000000000000",
        "0000000000000258",
        "ee",
    ]
    .concat();
    assert_eq!(hex::encode(items), want);
}

#[test]
fn items_with_blobs_carry_each_items_blob_list() {
    let items = encode(&Items {
        items: vec![Item {
            id: ItemId([0x55; 16]),
            envelope: vec![0xee],
            note: None,
            blobs: vec![BlobRef {
                id: BlobId([0xb0; 16]),
                len: 0x0200,
            }],
        }],
        with_notes: false,
        with_blobs: true,
    })
    .unwrap();
    let want = [
        "018400000030",
        "4001",
        &"55".repeat(16),
        "00000001",
        "01",
        &"b0".repeat(16),
        "0000000000000200",
        "ee",
    ]
    .concat();
    assert_eq!(hex::encode(&items), want);
    assert!(decode_response_frame(&items).is_ok());
    // A blob count over the limit is refused before any list is allocated.
    let mut bad = items.clone();
    bad[6 + 2 + 20] = 65;
    assert!(matches!(
        decode_response_frame(&bad),
        Err(WireError::TooMany { .. })
    ));
    // A blob list in an answer without the flag cannot be encoded.
    let stray = Items {
        items: vec![Item {
            id: ItemId([1; 16]),
            envelope: vec![2],
            note: None,
            blobs: vec![BlobRef {
                id: BlobId([3; 16]),
                len: 1,
            }],
        }],
        with_notes: false,
        with_blobs: false,
    };
    assert!(encode(&stray).is_err());
    let fetch = Fetch {
        mailbox: MailboxId([1; 32]),
        max_items: 16 | fetch::WITH_BLOBS | fetch::WITH_NOTES,
        proof: proof(),
    };
    assert_eq!(
        (fetch.count(), fetch.with_blobs(), fetch.with_notes()),
        (16, true, true)
    );
}

#[test]
fn items_without_the_notes_flag_are_todays_bytes() {
    let item = |note| Item {
        id: ItemId([1; 16]),
        envelope: vec![2],
        note,
        blobs: Vec::new(),
    };
    let plain = encode(&Items {
        items: vec![item(None)],
        with_notes: false,
        with_blobs: false,
    })
    .unwrap();
    assert_eq!(hex::encode(&plain[..8]), "0184000000170001");
    // A note can only travel in an Items with the flag.
    let stray = Items {
        items: vec![item(Some(ReleaseNote {
            reason: ReleaseReason::Duress,
            armed_at: 0,
            last_checkin_at: 0,
            released_at: 0,
        }))],
        with_notes: false,
        with_blobs: false,
    };
    assert!(encode(&stray).is_err());
}

#[test]
fn truncated_frames_are_rejected() {
    for (req, frame) in sample_requests(b"ciphertext") {
        for cut in 0..frame.len() {
            match decode_request_frame(&frame[..cut]) {
                Err(WireError::Truncated { .. }) => {}
                other => panic!("{req:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn trailing_data_is_rejected() {
    for (req, mut frame) in sample_requests(b"ciphertext") {
        frame.push(0);
        assert_eq!(
            decode_request_frame(&frame).map(|(r, _)| r),
            Err(WireError::TrailingData { extra: 1 }),
            "{req:?}"
        );
    }
    // A fixed-size head given more bytes than it has fields for.
    let mut head = Vec::new();
    Fetch {
        mailbox: MailboxId([1; 32]),
        max_items: 1,
        proof: proof(),
    }
    .encode_head(&mut head);
    head.push(0);
    assert_eq!(
        Request::decode(RequestType::Fetch, &head, head.len()),
        Err(WireError::TrailingData { extra: 1 })
    );
}

#[test]
fn oversize_declared_length_is_rejected_from_the_header() {
    let len = (deposit::MAX_BODY_LEN + 1) as u32;
    let mut h = [1u8, RequestType::Deposit.byte(), 0, 0, 0, 0];
    h[2..].copy_from_slice(&len.to_be_bytes());
    assert!(
        matches!(decode_request_header(&h), Err(WireError::TooLarge { len: l, .. }) if l == len as u64)
    );
    let h = [1u8, RequestType::Challenge.byte(), 0, 0, 0, 1];
    assert!(matches!(
        decode_request_header(&h),
        Err(WireError::TooLarge { .. })
    ));
    let h = [1u8, ResponseType::Items.byte(), 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        decode_response_header(&h),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn oversize_envelope_is_refused_by_the_encoder() {
    let d = |envelope_len| Deposit {
        mailbox: MailboxId([0; 32]),
        deposit_id: DepositId([0; 16]),
        envelope_len,
    };
    assert!(matches!(
        encode(&d(MAX_ENVELOPE_LEN + 1)),
        Err(WireError::TooLarge { .. })
    ));
    assert!(matches!(encode(&d(0)), Err(WireError::Malformed(_))));
    let max = vec![0u8; MAX_ENVELOPE_LEN];
    let frame = d(MAX_ENVELOPE_LEN).frame_with(&max).unwrap();
    assert!(decode_request_frame(&frame).is_ok());
    let h: [u8; FRAME_HEADER_LEN] = frame[..FRAME_HEADER_LEN].try_into().unwrap();
    assert_eq!(
        decode_request_header(&h).unwrap().body_len,
        deposit::HEAD_LEN + MAX_ENVELOPE_LEN
    );
    assert!(d(3).frame_with(b"four").is_err(), "the head must match");
}

#[test]
fn bad_header_fields_are_rejected() {
    assert_eq!(
        decode_request_header(&[2, 1, 0, 0, 0, 0]),
        Err(WireError::UnsupportedVersion {
            got: 2,
            supported: 1
        })
    );
    assert_eq!(
        decode_request_header(&[1, 0x42, 0, 0, 0, 0]),
        Err(WireError::UnknownType(0x42))
    );
    assert_eq!(
        decode_request_header(&[1, 0x83, 0, 0, 0, 1]),
        Err(WireError::UnexpectedType(0x83))
    );
    assert_eq!(
        decode_response_header(&[1, 0x01, 0, 0, 0, 0]),
        Err(WireError::UnexpectedType(0x01))
    );
}

#[test]
fn counts_beyond_limits_are_rejected() {
    let ids = vec![ItemId([0; 16]); MAX_ACK_IDS + 1];
    let req = Ack {
        mailbox: MailboxId([0; 32]),
        ids,
        proof: proof(),
    };
    assert!(matches!(encode(&req), Err(WireError::TooMany { .. })));
    let req = Fetch {
        mailbox: MailboxId([0; 32]),
        max_items: MAX_ITEMS_PER_FETCH + 1,
        proof: proof(),
    };
    assert!(matches!(encode(&req), Err(WireError::TooMany { .. })));
    let req = Fetch {
        max_items: 0,
        ..req
    };
    assert!(matches!(encode(&req), Err(WireError::Malformed(_))));
    // Items beyond the response limits are refused before anything is written.
    assert!(fetch::items_frame_head([1u64; MAX_ITEMS_PER_FETCH as usize + 1]).is_err());
    assert!(fetch::items_frame_head([MAX_ENVELOPE_LEN as u64 + 1]).is_err());
    assert!(fetch::items_frame_head([0u64]).is_err());
    assert!(fetch::items_frame_head([MAX_ENVELOPE_LEN as u64; 3]).is_err());
    // Hand-built Items response claiming more items than allowed.
    let mut f = vec![1, 0x84, 0, 0, 0, 2];
    f.extend_from_slice(&(MAX_ITEMS_PER_FETCH as u16 + 1).to_be_bytes());
    assert!(matches!(
        decode_response_frame(&f),
        Err(WireError::TooMany { .. })
    ));
}

#[test]
fn bad_flag_and_utf8_are_malformed() {
    assert!(matches!(
        decode_response_frame(&[1, 0x83, 0, 0, 0, 1, 2]),
        Err(WireError::Malformed(_))
    ));
    assert!(matches!(
        decode_response_frame(&[1, 0xff, 0, 0, 0, 5, 0, 1, 0, 1, 0xff]),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn long_error_message_is_cut_on_a_char_boundary() {
    let msg = "ж".repeat(MAX_ERROR_MESSAGE_LEN);
    let frame = encode(&Refusal::new(ErrorCode::Busy, msg)).unwrap();
    match decode_response_frame(&frame).unwrap() {
        Response::Error(r) => {
            assert!(r.message.len() <= MAX_ERROR_MESSAGE_LEN && r.message.starts_with('ж'));
            assert!(r.retryable);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn proof_verifies_only_for_its_session_nonce_and_fields() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let pk = key.verifying_key().to_bytes();
    let mailbox = MailboxId::for_key(&pk);
    let exporter = [5u8; 32];
    let nonce = [6u8; 32];
    let p = auth::sign(
        &key,
        ack::PURPOSE,
        &exporter,
        &nonce,
        &mailbox,
        &Ack::digest(&[ItemId([1; 16])]),
    );
    let req = Ack {
        mailbox,
        ids: vec![ItemId([1; 16])],
        proof: p,
    };
    assert!(auth::verify(&pk, &exporter, &req.claim()));
    assert!(
        !auth::verify(&pk, &[4u8; 32], &req.claim()),
        "another connection's exporter"
    );
    let other = Ack {
        ids: vec![ItemId([2; 16])],
        ..req.clone()
    };
    assert!(!auth::verify(&pk, &exporter, &other.claim()), "other ids");
    let as_fetch = Fetch {
        mailbox,
        max_items: 1,
        proof: p,
    };
    assert!(
        !auth::verify(&pk, &exporter, &as_fetch.claim()),
        "other purpose"
    );
    let wrong_key = ed25519_dalek::SigningKey::from_bytes(&[4; 32])
        .verifying_key()
        .to_bytes();
    assert!(!auth::verify(&wrong_key, &exporter, &req.claim()));
    let reg_p = auth::sign(
        &key,
        register::PURPOSE,
        &exporter,
        &nonce,
        &mailbox,
        &Register::digest(&pk, None),
    );
    let reg = Register {
        public_key: pk,
        proof: reg_p,
        lifetime_days: None,
    };
    assert!(auth::verify(&pk, &exporter, &reg.claim()));
}

#[test]
fn proof_message_layout() {
    let m = auth::proof_message(
        fetch::PURPOSE,
        &[1; 32],
        &[2; 32],
        &MailboxId([3; 32]),
        &[4; 32],
    );
    assert_eq!(&m[..14], b"vigil/v1/auth\0");
    assert_eq!(&m[14..20], b"fetch\0");
    assert_eq!(m.len(), 14 + 6 + 128);
}

#[test]
fn nonces_are_single_use_and_bounded() {
    let mut s = ChallengeSet::new();
    s.issue([1; 32]);
    assert!(s.take(&[1; 32]));
    assert!(!s.take(&[1; 32]));
    for i in 0..(MAX_OUTSTANDING_CHALLENGES as u8 + 5) {
        s.issue([i; 32]);
    }
    assert_eq!(s.len(), MAX_OUTSTANDING_CHALLENGES);
    assert!(!s.take(&[0; 32]), "oldest evicted");
    assert!(s.take(&[MAX_OUTSTANDING_CHALLENGES as u8 + 4; 32]));
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_request_frame(&bytes);
        let _ = decode_response_frame(&bytes);
        if let Some(h) = bytes.first_chunk::<6>() {
            let _ = decode_request_header(h);
            let _ = decode_response_header(h);
        }
        for t in RequestType::ALL {
            let _ = Request::decode(*t, &bytes, bytes.len());
        }
        for t in ResponseType::ALL {
            let _ = Response::decode(*t, &bytes);
        }
    }

    #[test]
    fn valid_header_with_random_body_never_panics(t in prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 7, 8, 9, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0xff]),
                                                  body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut f = vec![1, t];
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(&body);
        let _ = decode_request_frame(&f);
        let _ = decode_response_frame(&f);
    }

    #[test]
    fn deposit_round_trips(env in proptest::collection::vec(any::<u8>(), 1..2000), m in any::<[u8; 32]>(), d in any::<[u8; 16]>()) {
        let head = Deposit { mailbox: MailboxId(m), deposit_id: DepositId(d), envelope_len: env.len() };
        let f = head.frame_with(&env).unwrap();
        let (req, payload) = decode_request_frame(&f).unwrap();
        prop_assert_eq!(req, Request::Deposit(head));
        prop_assert_eq!(payload, &env[..]);
        // Head then envelope, as a sender streams it, is the same frame byte for byte.
        let mut streamed = encode(&head).unwrap();
        prop_assert_eq!(streamed.len(), FRAME_HEADER_LEN + deposit::HEAD_LEN);
        streamed.extend_from_slice(&env);
        prop_assert_eq!(streamed, f);
    }

    #[test]
    fn ack_round_trips(ids in proptest::collection::vec(any::<[u8; 16]>(), 1..50), n in any::<[u8; 32]>()) {
        let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
        let req = Request::Ack(Ack { mailbox: MailboxId([1; 32]), ids, proof: Proof { nonce: n, signature: [2; 64] } });
        let f = req.encode().unwrap();
        prop_assert_eq!(decode_request_frame(&f).unwrap().0, req);
    }

    #[test]
    fn items_round_trip_whole_and_streamed(items in proptest::collection::vec((any::<[u8; 16]>(), proptest::collection::vec(any::<u8>(), 1..100)), 0..20)) {
        let resp = Items { items: items.iter().map(|(id, e)| Item { id: ItemId(*id), envelope: e.clone(), note: None, blobs: Vec::new() }).collect(), with_notes: false, with_blobs: false };
        let f = encode(&resp).unwrap();
        prop_assert_eq!(decode_response_frame(&f).unwrap(), Response::Items(resp));
        // What the relay writes piece by piece is the same frame.
        let mut streamed = fetch::items_frame_head(items.iter().map(|(_, e)| e.len() as u64)).unwrap().to_vec();
        for (id, e) in &items {
            streamed.extend_from_slice(&fetch::item_head(&ItemId(*id), e.len() as u32));
            streamed.extend_from_slice(e);
        }
        prop_assert_eq!(streamed, f);
    }
}

#[test]
fn error_codes_round_trip_and_overload_codes_are_retryable() {
    for n in 0..=20u16 {
        assert_eq!(ErrorCode::from_u16(n).to_u16(), n);
    }
    assert_eq!(ErrorCode::from_u16(10), ErrorCode::StorageFull);
    assert_eq!(ErrorCode::from_u16(11), ErrorCode::RateLimited);
    for code in [
        ErrorCode::StorageFailed,
        ErrorCode::Busy,
        ErrorCode::StorageFull,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExceeded,
    ] {
        assert!(code.default_retryable(), "{code}");
    }
    assert!(!ErrorCode::TooLarge.default_retryable());
    assert_eq!(ErrorCode::StorageFull.to_string(), "storage-full");
    assert_eq!(ErrorCode::RateLimited.to_string(), "rate-limited");
}
