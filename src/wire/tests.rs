use super::auth::{self, ChallengeSet, Purpose};
use super::limits::*;
use super::*;
use crate::ids::{DepositId, ItemId, MailboxId};
use proptest::prelude::*;

fn proof() -> Proof {
    Proof {
        nonce: [7; 32],
        signature: [9; 64],
    }
}

fn sample_requests(envelope: &[u8]) -> Vec<Request<'_>> {
    vec![
        Request::Challenge,
        Request::Register {
            public_key: [1; 32],
            proof: proof(),
        },
        Request::Deposit {
            mailbox: MailboxId([2; 32]),
            deposit_id: DepositId([3; 16]),
            envelope,
        },
        Request::Fetch {
            mailbox: MailboxId([2; 32]),
            max_items: 10,
            proof: proof(),
        },
        Request::Ack {
            mailbox: MailboxId([2; 32]),
            ids: vec![ItemId([4; 16]), ItemId([5; 16])],
            proof: proof(),
        },
    ]
}

fn sample_responses(envelope: &[u8]) -> Vec<Response<'_>> {
    vec![
        Response::ChallengeNonce([8; 32]),
        Response::Registered(MailboxId([2; 32])),
        Response::Stored { duplicate: true },
        Response::Items(vec![]),
        Response::Items(vec![
            ItemRef {
                id: ItemId([4; 16]),
                envelope,
            },
            ItemRef {
                id: ItemId([5; 16]),
                envelope,
            },
        ]),
        Response::Acked(3),
        Response::Error {
            code: ErrorCode::BadProof,
            retryable: false,
            message: "no",
        },
        Response::Error {
            code: ErrorCode::Other(999),
            retryable: true,
            message: "",
        },
    ]
}

#[test]
fn requests_round_trip() {
    for req in sample_requests(b"ciphertext") {
        let frame = req.encode().unwrap();
        assert_eq!(decode_request(&frame).unwrap(), req);
        let h = decode_request_header(frame[..6].try_into().unwrap()).unwrap();
        assert_eq!(h.body_len, frame.len() - 6);
        assert_eq!(decode_request_body(h.frame_type, &frame[6..]).unwrap(), req);
    }
}

#[test]
fn responses_round_trip() {
    for resp in sample_responses(b"ciphertext") {
        let frame = resp.encode().unwrap();
        assert_eq!(decode_response(&frame).unwrap(), resp);
    }
}

#[test]
fn challenge_frame_is_six_bytes() {
    assert_eq!(
        Request::Challenge.encode().unwrap(),
        [0x01, 0x01, 0, 0, 0, 0]
    );
}

#[test]
fn example_in_protocol_md_matches() {
    let frame = Response::Stored { duplicate: false }.encode().unwrap();
    assert_eq!(hex::encode(frame), "01830000000100");
    let frame = Request::Fetch {
        mailbox: MailboxId([0xaa; 32]),
        max_items: 16,
        proof: Proof {
            nonce: [0xbb; 32],
            signature: [0xcc; 64],
        },
    }
    .encode()
    .unwrap();
    assert_eq!(&frame[..6], &[0x01, 0x04, 0, 0, 0, 0x84]);
    assert_eq!(&frame[6 + 64..6 + 68], &[0, 0, 0, 16]);
}

#[test]
fn truncated_frames_are_rejected() {
    for req in sample_requests(b"ciphertext") {
        let frame = req.encode().unwrap();
        for cut in 0..frame.len() {
            match decode_request(&frame[..cut]) {
                Err(WireError::Truncated { .. }) => {}
                other => panic!("{req:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn trailing_data_is_rejected() {
    for req in sample_requests(b"ciphertext") {
        let mut frame = req.encode().unwrap();
        frame.push(0);
        // For fixed-size types the header length now disagrees with the body; for a Deposit the
        // header still says the old length. Either way: trailing data.
        assert_eq!(
            decode_request(&frame),
            Err(WireError::TrailingData { extra: 1 }),
            "{req:?}"
        );
    }
}

#[test]
fn oversize_declared_length_is_rejected_from_the_header() {
    let len = (MAX_DEPOSIT_BODY_LEN + 1) as u32;
    let mut h = [1u8, FrameType::Deposit as u8, 0, 0, 0, 0];
    h[2..].copy_from_slice(&len.to_be_bytes());
    assert!(
        matches!(decode_request_header(&h), Err(WireError::TooLarge { len: l, .. }) if l == len as u64)
    );
    let h = [1u8, FrameType::Challenge as u8, 0, 0, 0, 1];
    assert!(matches!(
        decode_request_header(&h),
        Err(WireError::TooLarge { .. })
    ));
    let h = [1u8, FrameType::Items as u8, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        decode_response_header(&h),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn oversize_envelope_is_refused_by_the_encoder() {
    let big = vec![0u8; MAX_ENVELOPE_LEN + 1];
    let req = Request::Deposit {
        mailbox: MailboxId([0; 32]),
        deposit_id: DepositId([0; 16]),
        envelope: &big,
    };
    assert!(matches!(req.encode(), Err(WireError::TooLarge { .. })));
    let max = vec![0u8; MAX_ENVELOPE_LEN];
    let req = Request::Deposit {
        mailbox: MailboxId([0; 32]),
        deposit_id: DepositId([0; 16]),
        envelope: &max,
    };
    assert!(decode_request(&req.encode().unwrap()).is_ok());
    let (m, d) = (MailboxId([0; 32]), DepositId([0; 16]));
    assert!(matches!(
        encode_deposit_head(&m, &d, MAX_ENVELOPE_LEN + 1),
        Err(WireError::TooLarge { .. })
    ));
    assert!(encode_deposit_head(&m, &d, 0).is_err());
    let head = encode_deposit_head(&m, &d, MAX_ENVELOPE_LEN).unwrap();
    let h: [u8; FRAME_HEADER_LEN] = head[..FRAME_HEADER_LEN].try_into().unwrap();
    assert_eq!(
        decode_request_header(&h).unwrap().body_len,
        DEPOSIT_FIXED_LEN + MAX_ENVELOPE_LEN
    );
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
    let req = Request::Ack {
        mailbox: MailboxId([0; 32]),
        ids,
        proof: proof(),
    };
    assert!(matches!(req.encode(), Err(WireError::TooMany { .. })));
    let req = Request::Fetch {
        mailbox: MailboxId([0; 32]),
        max_items: MAX_ITEMS_PER_FETCH + 1,
        proof: proof(),
    };
    assert!(matches!(req.encode(), Err(WireError::TooMany { .. })));
    // Hand-built Items response claiming more items than allowed.
    let mut f = vec![1, 0x84, 0, 0, 0, 2];
    f.extend_from_slice(&(MAX_ITEMS_PER_FETCH as u16 + 1).to_be_bytes());
    assert!(matches!(
        decode_response(&f),
        Err(WireError::TooMany { .. })
    ));
}

#[test]
fn bad_flag_and_utf8_are_malformed() {
    assert!(matches!(
        decode_response(&[1, 0x83, 0, 0, 0, 1, 2]),
        Err(WireError::Malformed(_))
    ));
    assert!(matches!(
        decode_response(&[1, 0xff, 0, 0, 0, 5, 0, 1, 0, 1, 0xff]),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn long_error_message_is_cut_on_a_char_boundary() {
    let msg = "ж".repeat(MAX_ERROR_MESSAGE_LEN);
    let frame = Response::Error {
        code: ErrorCode::Busy,
        retryable: true,
        message: &msg,
    }
    .encode()
    .unwrap();
    match decode_response(&frame).unwrap() {
        Response::Error { message, .. } => {
            assert!(message.len() <= MAX_ERROR_MESSAGE_LEN && message.starts_with('ж'))
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
        Purpose::Ack,
        &exporter,
        &nonce,
        &mailbox,
        &auth::ack_digest(&[ItemId([1; 16])]),
    );
    let req = Request::Ack {
        mailbox,
        ids: vec![ItemId([1; 16])],
        proof: p,
    };
    assert!(auth::verify(&pk, &exporter, &req));
    assert!(
        !auth::verify(&pk, &[4u8; 32], &req),
        "another connection's exporter"
    );
    let other = Request::Ack {
        mailbox,
        ids: vec![ItemId([2; 16])],
        proof: p,
    };
    assert!(!auth::verify(&pk, &exporter, &other), "other ids");
    let as_fetch = Request::Fetch {
        mailbox,
        max_items: 1,
        proof: p,
    };
    assert!(!auth::verify(&pk, &exporter, &as_fetch), "other purpose");
    let wrong_key = ed25519_dalek::SigningKey::from_bytes(&[4; 32])
        .verifying_key()
        .to_bytes();
    assert!(!auth::verify(&wrong_key, &exporter, &req));
    let reg_p = auth::sign(
        &key,
        Purpose::Register,
        &exporter,
        &nonce,
        &mailbox,
        &auth::register_digest(&pk),
    );
    assert!(auth::verify(
        &pk,
        &exporter,
        &Request::Register {
            public_key: pk,
            proof: reg_p
        }
    ));
}

#[test]
fn proof_message_layout() {
    let m = auth::proof_message(
        Purpose::Fetch,
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
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        if let Some(h) = bytes.first_chunk::<6>() {
            let _ = decode_request_header(h);
            let _ = decode_response_header(h);
        }
        for t in [FrameType::Register, FrameType::Deposit, FrameType::Fetch, FrameType::Ack, FrameType::Items, FrameType::Error] {
            let _ = decode_request_body(t, &bytes);
            let _ = decode_response_body(t, &bytes);
        }
    }

    #[test]
    fn valid_header_with_random_body_never_panics(t in prop::sample::select(vec![1u8, 2, 3, 4, 5, 0x81, 0x82, 0x83, 0x84, 0x85, 0xff]),
                                                  body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut f = vec![1, t];
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(&body);
        let _ = decode_request(&f);
        let _ = decode_response(&f);
    }

    #[test]
    fn deposit_round_trips(env in proptest::collection::vec(any::<u8>(), 1..2000), m in any::<[u8; 32]>(), d in any::<[u8; 16]>()) {
        let req = Request::Deposit { mailbox: MailboxId(m), deposit_id: DepositId(d), envelope: &env };
        let f = req.encode().unwrap();
        prop_assert_eq!(decode_request(&f).unwrap(), req);
        // The streaming path reads the same mailbox and deposit id from the body's head.
        let head: &[u8; DEPOSIT_FIXED_LEN] = f[FRAME_HEADER_LEN..][..DEPOSIT_FIXED_LEN].try_into().unwrap();
        prop_assert_eq!(decode_deposit_head(head), (MailboxId(m), DepositId(d)));
        prop_assert_eq!(&f[FRAME_HEADER_LEN + DEPOSIT_FIXED_LEN..], &env[..]);
        // Head then envelope, as a sender streams it, is the same frame byte for byte.
        let mut streamed = encode_deposit_head(&MailboxId(m), &DepositId(d), env.len()).unwrap();
        streamed.extend_from_slice(&env);
        prop_assert_eq!(streamed, f);
    }

    #[test]
    fn ack_round_trips(ids in proptest::collection::vec(any::<[u8; 16]>(), 1..50), n in any::<[u8; 32]>()) {
        let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
        let req = Request::Ack { mailbox: MailboxId([1; 32]), ids, proof: Proof { nonce: n, signature: [2; 64] } };
        let f = req.encode().unwrap();
        prop_assert_eq!(decode_request(&f).unwrap(), req);
    }

    #[test]
    fn items_round_trip(items in proptest::collection::vec((any::<[u8; 16]>(), proptest::collection::vec(any::<u8>(), 1..100)), 0..20)) {
        let refs: Vec<ItemRef<'_>> = items.iter().map(|(id, e)| ItemRef { id: ItemId(*id), envelope: e }).collect();
        let resp = Response::Items(refs);
        let f = resp.encode().unwrap();
        prop_assert_eq!(decode_response(&f).unwrap(), resp);
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
    ] {
        assert!(code.default_retryable(), "{code}");
    }
    assert!(!ErrorCode::TooLarge.default_retryable());
    assert_eq!(ErrorCode::StorageFull.to_string(), "storage-full");
    assert_eq!(ErrorCode::RateLimited.to_string(), "rate-limited");
}
