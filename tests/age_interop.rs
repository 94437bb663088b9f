//! Interoperability with the `age` crate (rage): files it writes we read, and the reverse,
//! for X25519 (single and multiple recipients), passphrases, ASCII armor and multi-chunk
//! payloads.

use std::io::{Read, Write};

use std::str::FromStr;

use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use vigil_core::age::{self, x25519, ArmoredWriter, Decryptor};

/// 200 KiB plus a bit: four chunks, the last one partial.
fn big_payload() -> Vec<u8> {
    (0..200 * 1024 + 123).map(|i| (i % 251) as u8).collect()
}

fn payloads() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"one line report\n".to_vec(),
        vec![7u8; 64 * 1024],
        big_payload(),
    ]
}

// ---- helpers driving the `age` crate ----

fn rage_encrypt(recipients: &[&dyn ::age::Recipient], pt: &[u8], armor: bool) -> Vec<u8> {
    let enc = ::age::Encryptor::with_recipients(recipients.iter().copied()).unwrap();
    let format = if armor {
        ::age::armor::Format::AsciiArmor
    } else {
        ::age::armor::Format::Binary
    };
    let out = ::age::armor::ArmoredWriter::wrap_output(Vec::new(), format).unwrap();
    let mut w = enc.wrap_output(out).unwrap();
    w.write_all(pt).unwrap();
    w.finish().unwrap().finish().unwrap()
}

fn rage_decrypt(ct: &[u8], identities: &[&dyn ::age::Identity]) -> Vec<u8> {
    let input = ::age::armor::ArmoredReader::new(ct);
    let d = ::age::Decryptor::new(input).unwrap();
    let mut r = d.decrypt(identities.iter().copied()).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

// ---- helpers driving ours ----

fn our_encrypt(recipients: &[x25519::Recipient], pt: &[u8], armor: bool) -> Vec<u8> {
    if armor {
        let mut w = age::encrypt(recipients, ArmoredWriter::new(Vec::new()), &mut OsRng).unwrap();
        w.write_all(pt).unwrap();
        w.finish().unwrap().finish().unwrap()
    } else {
        let mut w = age::encrypt(recipients, Vec::new(), &mut OsRng).unwrap();
        w.write_all(pt).unwrap();
        w.finish().unwrap()
    }
}

fn our_decrypt(ct: &[u8], ids: &[x25519::Identity]) -> Vec<u8> {
    let mut r = Decryptor::new(ct).unwrap().decrypt(ids).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

/// The same key pair on both sides, via the string encodings.
fn pair() -> (x25519::Identity, ::age::x25519::Identity) {
    let ours = x25519::Identity::generate(&mut OsRng);
    let theirs =
        ::age::x25519::Identity::from_str(ours.to_string_secret().expose_secret()).unwrap();
    assert_eq!(ours.to_public().to_string(), theirs.to_public().to_string());
    (ours, theirs)
}

#[test]
fn rage_encrypts_we_decrypt() {
    let (ours, theirs) = pair();
    let (ours2, theirs2) = pair();
    for pt in payloads() {
        for armor in [false, true] {
            let one = rage_encrypt(&[&theirs.to_public()], &pt, armor);
            assert_eq!(
                our_decrypt(&one, &[x25519::Identity::from_bytes(*ours.to_bytes())]),
                pt
            );
            let r1 = theirs.to_public();
            let r2 = theirs2.to_public();
            let two = rage_encrypt(&[&r1, &r2], &pt, armor);
            assert_eq!(our_decrypt(&two, std::slice::from_ref(&ours2)), pt);
            assert_eq!(
                age::decrypt_from_slice(&two, std::slice::from_ref(&ours), pt.len())
                    .unwrap()
                    .as_slice(),
                &pt[..]
            );
        }
    }
}

#[test]
fn we_encrypt_rage_decrypts() {
    let (ours, theirs) = pair();
    let (ours2, theirs2) = pair();
    for pt in payloads() {
        for armor in [false, true] {
            let ct = our_encrypt(&[ours.to_public()], &pt, armor);
            assert_eq!(rage_decrypt(&ct, &[&theirs]), pt);
            let ct = our_encrypt(&[ours.to_public(), ours2.to_public()], &pt, armor);
            assert_eq!(rage_decrypt(&ct, &[&theirs2]), pt);
            assert_eq!(rage_decrypt(&ct, &[&theirs]), pt);
        }
    }
}

#[test]
fn passphrase_both_ways() {
    let pass = "correct horse battery staple";
    let secret = || SecretString::from(pass.to_string());
    for pt in [b"short".to_vec(), big_payload()] {
        for armor in [false, true] {
            // rage -> us, low work factor for speed.
            let mut r = ::age::scrypt::Recipient::new(secret());
            r.set_work_factor(4);
            let ct = rage_encrypt(&[&r], &pt, armor);
            let d = Decryptor::new(&ct[..]).unwrap();
            assert!(d.is_passphrase());
            let mut out = Vec::new();
            d.decrypt_with_passphrase(&secret(), 20)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, pt);

            // us -> rage.
            let ct = if armor {
                let mut w = age::encrypt_with_passphrase(
                    &secret(),
                    4,
                    ArmoredWriter::new(Vec::new()),
                    &mut OsRng,
                )
                .unwrap();
                w.write_all(&pt).unwrap();
                w.finish().unwrap().finish().unwrap()
            } else {
                let mut w =
                    age::encrypt_with_passphrase(&secret(), 4, Vec::new(), &mut OsRng).unwrap();
                w.write_all(&pt).unwrap();
                w.finish().unwrap()
            };
            let id = ::age::scrypt::Identity::new(secret());
            assert_eq!(rage_decrypt(&ct, &[&id]), pt);
        }
    }
}

#[test]
fn keys_parse_across_implementations() {
    let theirs = ::age::x25519::Identity::generate();
    let ours: x25519::Identity = theirs.to_string().expose_secret().parse().unwrap();
    assert_eq!(ours.to_public().to_string(), theirs.to_public().to_string());
    let r: x25519::Recipient = theirs.to_public().to_string().parse().unwrap();
    assert_eq!(r, ours.to_public());
}
