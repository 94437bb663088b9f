//! Every decoder that reads bytes from the network or a file, fed hostile and random input under
//! a capped heap: none panics, none loops, and none allocates beyond a stated budget.
//!
//! The global allocator is wrapped in `cap::Cap`; before each call the heap limit is set to what
//! is allocated now plus the budget for that decoder, so an over-allocation makes the allocation
//! fail and this test process abort (a failure that cannot be missed). The budgets are small
//! multiples of the named limits in `src/wire/limits.rs`, `src/age/limits.rs`, `src/card.rs`
//! and `src/report.rs`, independent of what the input *claims* its length is.
//!
//! Run longer than CI does with `VIGIL_FUZZ_CASES=1000000 cargo test --release -p vigil-e2e --test parser_bounds`.
//! This file has one test on purpose: the heap cap is process-wide.

use cap::Cap;
use rand::rngs::OsRng;
use rand::{Rng, RngCore, SeedableRng};
use std::alloc::System;
use std::io::Read;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Run `f` with at most `budget` more bytes of heap than are allocated now.
fn bounded<T>(budget: usize, f: impl FnOnce() -> T) -> T {
    let now = ALLOC.allocated();
    ALLOC
        .set_limit(now + budget)
        .expect("limit above current allocation");
    let out = f();
    ALLOC.set_limit(usize::MAX).expect("lift the limit");
    out
}

fn cases() -> usize {
    std::env::var("VIGIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// Mutate a valid input: flip, insert, delete, truncate, or splice a length-like value.
fn mutate(rng: &mut impl Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.gen_range(1..4) {
        match rng.gen_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let i = rng.gen_range(0..=v.len());
                v.insert(i, rng.gen());
            }
            2 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v.remove(i);
            }
            3 => {
                let n = rng.gen_range(0..=v.len());
                v.truncate(n);
            }
            _ if v.len() >= 4 => {
                let i = rng.gen_range(0..v.len() - 3);
                let big: u32 = *[u32::MAX, 0x7fff_ffff, 1 << 24, 65_536]
                    .get(rng.gen_range(0..4))
                    .unwrap_or(&0);
                v[i..i + 4].copy_from_slice(&big.to_be_bytes());
            }
            _ => {}
        }
    }
    v
}

#[test]
fn decoders_stay_within_their_memory_budgets() {
    use vigil_core::wire::{self, limits};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_f0e5);
    let n = cases();

    // ---- wire frames: a header declaring any length allocates nothing.
    for len in [0u32, 1, 4096, limits::MAX_FRAME_LEN as u32 + 1, u32::MAX] {
        for t in 0u8..=255 {
            let mut h = [1u8, t, 0, 0, 0, 0];
            h[2..].copy_from_slice(&len.to_be_bytes());
            bounded(1024, || {
                let _ = wire::decode_request_header(&h);
                let _ = wire::decode_response_header(&h);
            });
        }
    }
    // Valid frames, mutated: the budget is a small constant plus the items vector (at most
    // MAX_ITEMS_PER_FETCH entries) and copies of envelopes the input actually holds.
    let deposit = wire::deposit::Deposit {
        mailbox: vigil_core::ids::MailboxId([1; 32]),
        deposit_id: vigil_core::ids::DepositId([2; 16]),
        envelope_len: 300,
    }
    .frame_with(&[7u8; 300])
    .expect("encode");
    let items = wire::encode(&wire::fetch::Items {
        items: (0..3u8)
            .map(|i| wire::fetch::Item {
                id: vigil_core::ids::ItemId([i; 16]),
                envelope: vec![i; 100],
                note: None,
                blobs: Vec::new(),
            })
            .collect(),
        with_notes: false,
        with_blobs: false,
    })
    .expect("encode");
    let frames: Vec<Vec<u8>> = vec![
        deposit,
        items,
        wire::encode(&wire::challenge::Challenge).expect("encode"),
    ];
    for i in 0..n {
        let base = &frames[i % frames.len()];
        let input = if i % 3 == 0 {
            let mut r = vec![0u8; rng.gen_range(0..2048)];
            rng.fill_bytes(&mut r);
            r
        } else {
            mutate(&mut rng, base)
        };
        bounded(64 * 1024, || {
            let _ = wire::decode_request_frame(&input);
            let _ = wire::decode_response_frame(&input);
        });
    }

    // ---- age headers: a header never costs more than a few times MAX_HEADER_LEN, whatever
    // the input holds (endless line, endless stanzas, huge base64).
    let header_budget = 8 * vigil_core::age::limits::MAX_HEADER_LEN;
    let mut endless_line = b"age-encryption.org/v1\n-> X25519 ".to_vec();
    endless_line.extend(std::iter::repeat_n(b'A', 4 * 1024 * 1024));
    let mut many_stanzas = b"age-encryption.org/v1\n".to_vec();
    for _ in 0..100_000 {
        many_stanzas.extend_from_slice(b"-> grease\n\n");
    }
    let mut armored_junk = b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec();
    armored_junk.extend(std::iter::repeat_n(b'Q', 2 * 1024 * 1024));
    for input in [&endless_line, &many_stanzas, &armored_junk] {
        bounded(header_budget, || {
            assert!(vigil_core::age::Decryptor::new(&input[..]).is_err())
        });
    }
    let recipient = vigil_core::age::x25519::Identity::generate(&mut OsRng).to_public();
    let valid =
        vigil_core::age::encrypt_to_vec(&[recipient], b"report", &mut OsRng).expect("encrypt");
    for _ in 0..n {
        let input = mutate(&mut rng, &valid);
        bounded(header_budget, || {
            if let Ok(d) = vigil_core::age::Decryptor::new(&input[..]) {
                let _ = d.header();
            }
        });
    }

    // ---- decryption into memory never holds more than its stated maximum.
    let id = vigil_core::age::x25519::Identity::generate(&mut OsRng);
    let big =
        vigil_core::age::encrypt_to_vec(&[id.to_public()], &vec![0u8; 1024 * 1024], &mut OsRng)
            .expect("encrypt");
    bounded(header_budget + 64 * 1024 + 4096 + 256 * 1024, || {
        let r = vigil_core::age::decrypt_from_slice(&big, std::slice::from_ref(&id), 4096);
        assert!(r.is_err(), "1 MiB plaintext must not fit a 4 KiB maximum");
    });
    // Streaming decryption holds one chunk, whatever the file size.
    bounded(header_budget + 4 * 64 * 1024, || {
        let mut r = vigil_core::age::Decryptor::new(&big[..])
            .expect("header")
            .decrypt(std::slice::from_ref(&id))
            .expect("key");
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => total += k,
                Err(e) => panic!("stream: {e}"),
            }
        }
        assert_eq!(total, 1024 * 1024);
    });

    // ---- cards and reports: oversized input is refused before parsing.
    let huge = "A".repeat(16 * 1024 * 1024);
    bounded(1024, || {
        assert!(vigil_core::card::RecipientCard::parse(&huge).is_err())
    });
    bounded(1024, || {
        assert!(vigil_core::report::Report::from_json(huge.as_bytes()).is_err())
    });
    let deep = "[".repeat(vigil_core::report::MAX_REPORT_JSON_LEN);
    bounded(4 * 1024 * 1024, || {
        assert!(vigil_core::report::Report::from_json(deep.as_bytes()).is_err())
    });
    for _ in 0..n / 4 {
        let mut r = vec![0u8; rng.gen_range(0..(vigil_core::card::MAX_CARD_LEN + 64))];
        rng.fill_bytes(&mut r);
        let text = String::from_utf8_lossy(&r).into_owned();
        bounded(8 * vigil_core::card::MAX_CARD_LEN + 64 * 1024, || {
            let _ = vigil_core::card::RecipientCard::parse(&text);
            let _ = vigil_core::card::RecipientCard::parse(&format!(
                "{}{text}",
                vigil_core::card::CARD_PREFIX
            ));
        });
    }

    // ---- the envelope's inner layer: claimed lengths never drive allocation.
    let sender = vigil_core::keys::SigningSecret::generate(&mut OsRng);
    let me = vigil_core::keys::SigningSecret::generate(&mut OsRng).public();
    let report = br#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#;
    let inner = vigil_core::envelope::sign_inner(report, &sender, &[me], 1).expect("inner");
    for _ in 0..n {
        let input = mutate(&mut rng, &inner);
        bounded(64 * 1024, || {
            let _ = vigil_core::envelope::open_inner(&input, &me);
        });
    }
    eprintln!("parser bounds: {n} cases per decoder held their budgets");
}
