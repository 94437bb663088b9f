//! The relay's memory while one attachment blob of 1 GiB goes through it: uploaded in 8 MiB
//! chunks, deposited to a mailbox, fetched with its blob list, downloaded in 8 MiB chunks and
//! acknowledged. The promise (`docs/protocol.md`, "Attachments") is that nothing holds a whole
//! blob: the relay's peak resident memory must not grow with the blob, whatever its size.
//!
//! The relay runs as this program's `serve-relay` child (as in the upload phase), so its peak
//! RSS (`VmHWM`) is its own, not this process's; the bench is its client. The blob is made on
//! the fly, a chunk at a time, from its offset (never held whole), and its SHA-256 is compared
//! with what comes back.

use crate::net::{spawn_server, Target};
use crate::report::Report;
use anyhow::{bail, Result};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use std::time::Instant;
use vigil_client::relay::RelayClient;
use vigil_core::ids::{BlobId, CertFingerprint, DepositId};
use vigil_core::wire::limits::MAX_BLOB_CHUNK;

/// The bytes of the blob at `offset`, `len` long, into `buf`: a cheap pattern that differs per
/// 8-byte word, so that nothing along the way can compress or deduplicate it.
fn fill_at(buf: &mut Vec<u8>, offset: u64, len: usize) {
    buf.clear();
    let mut word = offset / 8;
    while buf.len() < len {
        let v = word.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0b10_b5ee_d000_0000;
        buf.extend_from_slice(&v.to_le_bytes());
        word += 1;
    }
    buf.truncate(len);
}

/// Upload, deposit, fetch, download and ack one blob of `total` bytes (a multiple of 8).
pub async fn run(total: u64, out: &mut Report) -> Result<()> {
    crate::progress(&format!(
        "blobs: one {} MiB blob up and down through the relay",
        total >> 20
    ));
    let (server, addr, fp) = spawn_server(Target::Relay, 16).await?;
    let fp: CertFingerprint = fp
        .unwrap_or_default()
        .parse()
        .map_err(|_| anyhow::anyhow!("bad fingerprint from the relay child"))?;
    let before = server.mem()?.rss_mib;
    let c = RelayClient::connect(&addr, &fp).await?;
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let mailbox = c.register(&key).await?;
    let id = BlobId(rand::random());
    let chunk = MAX_BLOB_CHUNK as u64;
    let mut buf = Vec::with_capacity(MAX_BLOB_CHUNK);
    let mut sent = Sha256::new();

    let t = Instant::now();
    let mut offset = c.upload_status(id, total).await?;
    while offset < total {
        let len = chunk.min(total - offset) as usize;
        fill_at(&mut buf, offset, len);
        sent.update(&buf);
        let next = c.upload_chunk(id, total, offset, &buf).await?;
        if next != offset + len as u64 {
            bail!(
                "the relay holds {next} bytes, expected {}",
                offset + len as u64
            );
        }
        offset = next;
    }
    let up_secs = t.elapsed().as_secs_f64();
    let after_upload = server.mem()?;

    c.deposit_with_blobs(&mailbox, &DepositId(rand::random()), b"envelope", &[id])
        .await?;
    let items = c.fetch_full(&key, 1).await?;
    let listed = items.first().and_then(|i| i.blobs.first());
    if listed.map(|b| (b.id, b.len)) != Some((id, total)) {
        bail!("the fetch did not list the blob");
    }

    let t = Instant::now();
    let mut got = Sha256::new();
    let mut offset = 0u64;
    while offset < total {
        let len = chunk.min(total - offset) as u32;
        let bytes = c.download_chunk(id, offset, len).await?;
        got.update(&bytes);
        offset += bytes.len() as u64;
    }
    let down_secs = t.elapsed().as_secs_f64();
    if got.finalize() != sent.finalize() {
        bail!("the downloaded blob differs from the uploaded one");
    }
    c.ack(&key, &[items[0].id]).await?;
    c.close().await;
    let peak = server.mem()?.hwm_mib;
    server.stop().await?;

    let mib = total as f64 / (1024.0 * 1024.0);
    out.set("blobs_blob_mib", mib);
    out.set("blobs_upload_mib_per_s", mib / up_secs);
    out.set("blobs_download_mib_per_s", mib / down_secs);
    out.set("blobs_relay_rss_mib_at_start", before);
    out.set(
        "blobs_relay_peak_rss_mib_after_upload",
        after_upload.hwm_mib,
    );
    out.set("blobs_relay_peak_rss_mib", peak);
    Ok(())
}
