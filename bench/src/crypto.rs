//! Encryption and decryption of one large payload to 3 recipients: Vigil's age implementation
//! (`vigil_client::age_parallel`: STREAM chunks on every core, each sealed or opened by the
//! core's per-chunk routines) vs the `age` crate (rage), same plaintext, same recipient count,
//! both producing/consuming binary age v1 files in memory.

use crate::report::Report;
use crate::util::filler;
use crate::Sizes;
use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::OsRng;
use std::io::{Read, Write};
use std::time::Instant;
use vigil_client::age_parallel as vpar;
use vigil_core::age as vage;

/// Best of `reps` runs of `f`, in seconds.
fn best<T>(reps: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let v = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    last.map(|v| (best, v))
        .ok_or_else(|| anyhow!("no run happened"))
}

fn age_encrypt(recipients: &[age::x25519::Recipient], pt: &[u8]) -> Result<Vec<u8>> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| anyhow!("age crate: {e}"))?;
    let mut w = enc.wrap_output(Vec::with_capacity(pt.len() + pt.len() / 4000 + 1024))?;
    w.write_all(pt)?;
    Ok(w.finish()?)
}

fn age_decrypt(identity: &age::x25519::Identity, ct: &[u8]) -> Result<Vec<u8>> {
    let d = age::Decryptor::new_buffered(ct).map_err(|e| anyhow!("age crate: {e}"))?;
    let mut r = d
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| anyhow!("age crate: {e}"))?;
    let mut out = Vec::with_capacity(ct.len());
    r.read_to_end(&mut out)?;
    Ok(out)
}

pub fn run(s: &Sizes, out: &mut Report) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pt = filler(s.crypto_bytes, 0xa9e);
    let reps = s.crypto_reps;
    crate::progress(&format!(
        "crypto: {} MiB to 3 recipients, {threads} threads, best of {reps}",
        s.crypto_bytes >> 20
    ));

    let v_ids: Vec<vage::x25519::Identity> = (0..3)
        .map(|_| vage::x25519::Identity::generate(&mut OsRng))
        .collect();
    let v_rcpts: Vec<_> = v_ids.iter().map(|i| i.to_public()).collect();
    let a_ids: Vec<age::x25519::Identity> =
        (0..3).map(|_| age::x25519::Identity::generate()).collect();
    let a_rcpts: Vec<_> = a_ids.iter().map(|i| i.to_public()).collect();
    let max = s.crypto_bytes;

    // Back to back, best of `reps` each, so a burst of background load rarely hits only one.
    let (a_enc, a_ct) = best(reps, || age_encrypt(&a_rcpts, &pt))?;
    let (v_enc, v_ct) = best(reps, || {
        vpar::encrypt_to_vec_parallel(&v_rcpts, &pt, threads, &mut OsRng).context("vigil encrypt")
    })?;
    // The key of the old copying encryptor; since commit f2c2102 it times the same function.
    let (v_old_enc, _) = best(reps, || {
        vpar::encrypt_to_vec_parallel(&v_rcpts, &pt, threads, &mut OsRng).context("vigil encrypt")
    })?;
    let (v_seq_enc, _) = best(1, || {
        vage::encrypt_to_vec(&v_rcpts, &pt, &mut OsRng).context("vigil encrypt")
    })?;
    let (a_dec, a_pt) = best(reps, || age_decrypt(&a_ids[2], &a_ct))?;
    let (v_dec, v_pt) = best(reps, || {
        vpar::decrypt_to_vec_parallel(&v_ct, &v_ids[2..], max, threads).context("vigil decrypt")
    })?;
    let (v_seq_dec, _) = best(1, || {
        vage::decrypt_from_slice(&v_ct, &v_ids[2..], max).context("vigil decrypt")
    })?;
    if a_pt != pt || *v_pt != pt {
        bail!("a decryption returned different bytes than were encrypted");
    }
    // Interoperability, untimed: each side reads the other's files.
    let cross = age_decrypt(
        &to_age_identity(&v_ids[0])?,
        &vpar::encrypt_to_vec_parallel(
            &v_rcpts,
            &pt[..pt.len().min(1 << 20)],
            threads,
            &mut OsRng,
        )?,
    )?;
    if cross != pt[..pt.len().min(1 << 20)] {
        bail!("the age crate decrypted a Vigil file to different bytes");
    }

    let mib = s.crypto_bytes as f64 / (1024.0 * 1024.0);
    out.set("encrypt_ratio_vs_age", a_enc / v_enc);
    out.set("decrypt_ratio_vs_age", a_dec / v_dec);
    out.set("encrypt_vigil_mib_per_s", mib / v_enc);
    out.set("encrypt_age_mib_per_s", mib / a_enc);
    out.set("decrypt_vigil_mib_per_s", mib / v_dec);
    out.set("decrypt_age_mib_per_s", mib / a_dec);
    out.set("encrypt_sequential_ratio_vs_age", a_enc / v_seq_enc);
    out.set("encrypt_copying_parallel_ratio_vs_age", a_enc / v_old_enc);
    out.set("decrypt_sequential_ratio_vs_age", a_dec / v_seq_dec);
    out.set("crypto_payload_mib", mib);
    out.set("crypto_threads", threads as f64);
    envelopes(reps, out)
}

/// A report of `len` bytes of JSON, its narrative stretched to fit.
fn report_json(len: usize) -> Vec<u8> {
    let head = br#"{"kind":"threat","urgency":"urgent","title":"Lawyer held","occurred_at":"2024-01-01","narrative":""#;
    let mut out = head.to_vec();
    out.resize(len.saturating_sub(2).max(head.len()), b'a');
    out.extend_from_slice(b"\"}");
    out
}

/// Report envelopes (issue 14): what padding and the fixed stanza count cost a short report,
/// and how long sealing and opening one takes with 16 stanzas.
///
/// Sizes: a report of 1 406 bytes (the longest sample report, `/work/shared/fixtures`) to one
/// NGO named `Desk` with one staff key. "Unpadded" is the same report as version 2 wrote it
/// (no attachment count, no padding, a header with one stanza): the inner layer's fixed 161
/// bytes plus name and report, 168 header bytes, a 16-byte nonce and a 16-byte tag.
fn envelopes(reps: usize, out: &mut Report) -> Result<()> {
    use vigil_core::envelope::{self, Addressee};
    use vigil_core::keys::SigningSecret;
    let json = report_json(1406);
    let sender = SigningSecret::generate(&mut OsRng);
    let ngo = SigningSecret::generate(&mut OsRng).public();
    let staff = vage::x25519::Identity::generate(&mut OsRng);
    let to = [Addressee {
        key: ngo,
        name: "Desk",
    }];
    let rcpt = [staff.to_public()];
    let seal = || envelope::seal_named(&json, &sender, &to, &rcpt, 1, &mut OsRng).context("seal");
    let sealed = seal()?;
    let unpadded_v2 = (15 + 32 + 8 + 1 + 32 + 1 + 4 + 4 + json.len() + 64)
        + vage::x25519::header_len(1)
        + 16
        + 16;
    // Best of `reps` batches of 200, per envelope.
    let batch = 200;
    let (seal_s, _) = best(reps, || (0..batch).try_for_each(|_| seal().map(drop)))?;
    let (open_s, opened) = best(reps, || {
        let mut last = None;
        for _ in 0..batch {
            last = Some(envelope::open(&sealed, std::slice::from_ref(&staff), &ngo)?);
        }
        last.ok_or_else(|| anyhow!("no envelope opened"))
    })?;
    if opened.report_json.as_slice() != json.as_slice() {
        bail!("an envelope opened to different bytes than were sealed");
    }
    out.set("envelope_small_bytes", sealed.len() as f64);
    out.set("envelope_small_unpadded_v2_bytes", unpadded_v2 as f64);
    out.set(
        "envelope_header_bytes",
        vage::x25519::header_len(envelope::ENVELOPE_STANZAS) as f64,
    );
    out.set("envelope_seal_us", seal_s / batch as f64 * 1e6);
    out.set("envelope_open_us", open_s / batch as f64 * 1e6);

    // The same report to an NGO with one post-quantum (ML-KEM-768 + X25519) staff key: 16
    // hybrid stanzas (the staff key's and 15 decoys, each a fresh throwaway key pair and an
    // encapsulation), and opening tries the stanzas in turn (a decapsulation each).
    let pq_staff = vage::hybrid::Identity::generate(&mut OsRng);
    let pq_rcpt = [pq_staff.to_public()];
    let pq_seal =
        || envelope::seal_named(&json, &sender, &to, &pq_rcpt, 1, &mut OsRng).context("seal");
    let pq_sealed = pq_seal()?;
    let pq_batch = 20;
    let (pq_seal_s, _) = best(reps, || (0..pq_batch).try_for_each(|_| pq_seal().map(drop)))?;
    let (pq_open_s, pq_opened) = best(reps, || {
        let mut last = None;
        for _ in 0..pq_batch {
            last = Some(envelope::open(
                &pq_sealed,
                std::slice::from_ref(&pq_staff),
                &ngo,
            )?);
        }
        last.ok_or_else(|| anyhow!("no envelope opened"))
    })?;
    if pq_opened.report_json.as_slice() != json.as_slice() {
        bail!("a post-quantum envelope opened to different bytes than were sealed");
    }
    out.set("pq_envelope_small_bytes", pq_sealed.len() as f64);
    out.set(
        "pq_envelope_header_bytes",
        vage::hybrid::header_len(envelope::ENVELOPE_STANZAS) as f64,
    );
    out.set("pq_envelope_seal_us", pq_seal_s / pq_batch as f64 * 1e6);
    out.set("pq_envelope_open_us", pq_open_s / pq_batch as f64 * 1e6);

    // The prekey layer (forward secrecy): the post-quantum envelope sealed once more to a
    // prekey at deposit time, and removed by the NGO on fetch.
    let prekey = vage::hybrid::Identity::generate(&mut OsRng);
    let prekey_public = prekey.to_public();
    let wrap =
        || vigil_core::prekey::wrap(&pq_sealed, &prekey_public, &mut OsRng).context("prekey wrap");
    let wrapped = wrap()?;
    let (wrap_s, _) = best(reps, || (0..pq_batch).try_for_each(|_| wrap().map(drop)))?;
    let (unwrap_s, inner) = best(reps, || {
        let mut last = None;
        for _ in 0..pq_batch {
            last = vigil_core::prekey::unwrap(&wrapped, std::slice::from_ref(&prekey), 1 << 24)?;
        }
        last.ok_or_else(|| anyhow!("the prekey layer did not open"))
    })?;
    if inner.1.as_slice() != pq_sealed.as_slice() {
        bail!("the prekey layer opened to different bytes than were sealed");
    }
    out.set(
        "prekey_layer_bytes",
        (wrapped.len() - pq_sealed.len()) as f64,
    );
    out.set("prekey_wrap_us", wrap_s / pq_batch as f64 * 1e6);
    out.set("prekey_unwrap_us", unwrap_s / pq_batch as f64 * 1e6);
    Ok(())
}

/// The same X25519 identity as the `age` crate's type (both parse the Bech32 string).
fn to_age_identity(id: &vage::x25519::Identity) -> Result<age::x25519::Identity> {
    use secrecy::ExposeSecret;
    id.to_string_secret()
        .expose_secret()
        .parse::<age::x25519::Identity>()
        .map_err(|e| anyhow!("age crate rejects a Vigil identity: {e}"))
}
