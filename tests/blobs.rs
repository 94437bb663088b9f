//! Attachment blobs end to end: a real relay on 127.0.0.1 with a temporary data directory and
//! the client library's `quote`, `upload_chunk`, `upload_status`, `deposit_with_blobs`,
//! `fetch_full` and `download_chunk`.
//!
//! One story: a reporter uploads a multi-MiB blob in chunks, loses its connection mid-upload
//! (the client is dropped, a chunk cut off) and resumes from the relay's offset, then the relay
//! restarts mid-upload and the reporter resumes again; the report goes to two NGOs, whose items
//! share one blob file; each NGO fetches the blob's id and length and downloads it in chunks
//! (same SHA-256 as uploaded); the last acknowledgement deletes the file. Nothing here measures
//! speed or memory (the bench's `blobs` phase does).

use ed25519_dalek::SigningKey;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use vigil_client::relay::{Deposited, LinkOptions, RelayClient, RelayError};
use vigil_core::ids::{BlobId, DepositId, MailboxId};
use vigil_core::wire::ErrorCode;
use vigil_relay::{RelayConfig, RelayHandle};

/// The blob: 12 MiB and a bit, so the last chunk is short.
const TOTAL: u64 = 12 * 1024 * 1024 + 12_345;
/// Upload and download chunks: 2 MiB.
const CHUNK: u64 = 2 * 1024 * 1024;

/// Seconds of silence after which either side drops a connection. Short, so that the relay
/// notices the dropped client (and lets go of the upload it was receiving) within the test;
/// the clients send keep-alives every second.
const IDLE_SECS: u64 = 4;

async fn start(dir: &Path) -> RelayHandle {
    let mut config = RelayConfig::new(dir, "127.0.0.1:0".parse().unwrap());
    config.limits.idle_timeout_secs = IDLE_SECS;
    vigil_relay::start(config).await.unwrap()
}

async fn connect(relay: &RelayHandle) -> RelayClient {
    let link = LinkOptions::with_idle_timeout(Duration::from_secs(IDLE_SECS));
    RelayClient::connect_with(&relay.local_addr().to_string(), &relay.fingerprint(), &link)
        .await
        .unwrap()
}

/// `upload_chunk`, retried while the relay says the blob is still arriving on another
/// connection (an upload cut off holds the blob until the relay notices its connection is gone:
/// the idle timeout). Busy is retryable; a client waits and tries again.
async fn upload_retrying(c: &RelayClient, id: BlobId, offset: u64, chunk: &[u8]) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match c.upload_chunk(id, TOTAL, offset, chunk).await {
            Err(RelayError::Refused {
                code: ErrorCode::Busy,
                ..
            }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other.unwrap(),
        }
    }
}

/// The bytes of the blob from `offset`, `len` long: pseudo-random, the same every time.
fn blob_bytes(data: &[u8], offset: u64, len: u64) -> &[u8] {
    &data[offset as usize..(offset + len).min(TOTAL) as usize]
}

/// Upload chunks from the relay's offset until `stop` bytes are durable (or the blob is
/// complete); returns the durable offset.
async fn upload_until(c: &RelayClient, id: BlobId, data: &[u8], stop: u64) -> u64 {
    let mut offset = c.upload_status(id, TOTAL).await.unwrap();
    while offset < stop.min(TOTAL) {
        let chunk = blob_bytes(data, offset, CHUNK);
        let next = upload_retrying(c, id, offset, chunk).await;
        assert_eq!(next, offset + chunk.len() as u64);
        offset = next;
    }
    offset
}

fn blob_files(data_dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(data_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_survives_cut_connections_and_a_restart_is_shared_and_goes_with_the_last_ack() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; TOTAL as usize];
    OsRng.fill_bytes(&mut data);
    let want = Sha256::digest(&data);
    let id = BlobId(rand::random());

    let relay = start(dir.path()).await;
    let ngo1 = SigningKey::generate(&mut OsRng);
    let ngo2 = SigningKey::generate(&mut OsRng);
    let (m1, m2): (MailboxId, MailboxId);
    {
        let c = connect(&relay).await;
        m1 = c.register(&ngo1).await.unwrap();
        m2 = c.register(&ngo2).await.unwrap();
        c.close().await;
    }

    // The quote: room for the report, and the relay's limit in one line when it does not fit.
    let c = connect(&relay).await;
    let room = c.quote(&[m1, m2], TOTAL + 2000).await.unwrap();
    assert_eq!(room.max_report_bytes, 2 << 30);
    assert!(room.left.iter().all(|l| *l >= TOTAL));
    match c.quote(&[m1], 3 << 30).await {
        Err(RelayError::Refused { code, message, .. }) => {
            assert_eq!(code, ErrorCode::TooLarge);
            assert_eq!(message, "the relay takes at most 2 GiB per report");
        }
        other => panic!("{other:?}"),
    }

    // A first stretch, then a chunk cut off mid-send and the client dropped without a goodbye.
    assert_eq!(upload_until(&c, id, &data, 2 * CHUNK).await, 2 * CHUNK);
    let cut = tokio::time::timeout(
        Duration::from_millis(5),
        c.upload_chunk(id, TOTAL, 2 * CHUNK, blob_bytes(&data, 2 * CHUNK, CHUNK)),
    )
    .await;
    drop(cut);
    drop(c);

    // A new connection resumes from the relay's offset (the cut chunk landed whole, or not at
    // all), and a chunk at a wrong offset writes nothing and answers that offset.
    let c = connect(&relay).await;
    let resumed = c.upload_status(id, TOTAL).await.unwrap();
    assert!(resumed == 2 * CHUNK || resumed == 3 * CHUNK, "{resumed}");
    assert_eq!(upload_retrying(&c, id, 0, &data[..10]).await, resumed);
    match c.upload_chunk(id, TOTAL + 1, resumed, &data[..10]).await {
        Err(RelayError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Malformed),
        other => panic!("another total must be refused: {other:?}"),
    }
    let before_restart = upload_until(&c, id, &data, 4 * CHUNK).await;
    // The envelope cannot be deposited while the blob is partial.
    let envelope = b"an envelope that names the blob".to_vec();
    match c
        .deposit_with_blobs(&m1, &DepositId([1; 16]), &envelope, &[id])
        .await
    {
        Err(RelayError::Refused { code, .. }) => assert_eq!(code, ErrorCode::UnknownBlob),
        other => panic!("{other:?}"),
    }
    c.close().await;

    // The relay restarts mid-upload; the reporter resumes from what was durable.
    relay.shutdown().await.unwrap();
    let relay = start(dir.path()).await;
    let c = connect(&relay).await;
    assert_eq!(c.upload_status(id, TOTAL).await.unwrap(), before_restart);
    assert_eq!(upload_until(&c, id, &data, TOTAL).await, TOTAL);
    assert_eq!(c.upload_status(id, TOTAL).await.unwrap(), TOTAL);

    // One report, two NGOs, one blob file.
    let d1 = c
        .deposit_with_blobs(&m1, &DepositId([1; 16]), &envelope, &[id])
        .await
        .unwrap();
    let d2 = c
        .deposit_with_blobs(&m2, &DepositId([2; 16]), &envelope, &[id])
        .await
        .unwrap();
    assert_eq!((d1, d2), (Deposited::New, Deposited::New));
    let again = c
        .deposit_with_blobs(&m1, &DepositId([1; 16]), &envelope, &[id])
        .await
        .unwrap();
    assert_eq!(again, Deposited::Duplicate);
    c.close().await;
    assert_eq!(blob_files(dir.path()).len(), 1, "stored once per relay");
    assert_eq!(relay.stats().await.store.blobs, 1);

    // Each NGO fetches the blob's id and length and downloads it in chunks.
    for key in [&ngo1, &ngo2] {
        let c = connect(&relay).await;
        let plain = c.fetch(key, 10).await.unwrap();
        assert_eq!(plain.len(), 1, "a plain fetch still works");
        let items = c.fetch_full(key, 10).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].envelope, envelope);
        assert_eq!(items[0].note, None);
        assert_eq!((items[0].blobs.len(), items[0].blobs[0].id), (1, id));
        assert_eq!(items[0].blobs[0].len, TOTAL);
        let mut hash = Sha256::new();
        let mut offset = 0u64;
        while offset < TOTAL {
            let len = CHUNK.min(TOTAL - offset) as u32;
            let bytes = c.download_chunk(id, offset, len).await.unwrap();
            hash.update(&bytes);
            offset += bytes.len() as u64;
        }
        assert_eq!(hash.finalize(), want);
        c.close().await;
    }

    // The first ack leaves the blob for the other NGO; the last deletes its file.
    let c = connect(&relay).await;
    let items = c.fetch_full(&ngo1, 10).await.unwrap();
    c.ack(&ngo1, &[items[0].id]).await.unwrap();
    assert_eq!(blob_files(dir.path()).len(), 1);
    assert_eq!(c.download_chunk(id, 0, 16).await.unwrap(), &data[..16]);
    let items = c.fetch_full(&ngo2, 10).await.unwrap();
    c.ack(&ngo2, &[items[0].id]).await.unwrap();
    assert!(
        blob_files(dir.path()).is_empty(),
        "the last ack deletes the blob"
    );
    match c.download_chunk(id, 0, 16).await {
        Err(RelayError::Refused { code, .. }) => assert_eq!(code, ErrorCode::UnknownBlob),
        other => panic!("{other:?}"),
    }
    c.close().await;
    relay.shutdown().await.unwrap();
}
