//! A report's attachments on the reporter's device, before anything is sent (issue 13): each
//! file (every file of a directory, in name order) is read, scrubbed of identifying metadata
//! unless the reporter keeps it (`crate::scrub`), hashed, and encrypted once, streaming, into
//! the home's vault as a *blob*, to a key made for this report alone (docs/protocol.md
//! "Attachments"; the key travels inside each NGO's envelope, `vigil_core::envelope`).
//!
//! Why the ciphertext goes into the outbox rather than being made again at each attempt: the
//! reporter may delete the original from the phone as soon as it is queued (a gallery is the
//! first thing searched), a retry must send the very same bytes so an interrupted upload can
//! resume where the relay has it, and the outbox copy is ciphertext the reporter's own device
//! cannot read back.
//!
//! Memory: files that may carry metadata the scrubber removes (JPEG, PNG, WebP, HEIC, MP4, PDF)
//! are read whole to scrub them, up to [`SCRUB_IN_MEMORY_UP_TO`]; everything else is streamed in
//! [`CHUNK`]-sized pieces, so a 1 GiB video costs a few hundred KiB of memory.

use crate::output::Output;
use crate::progress::{Activity, Counting, Progress};
use crate::scrub::{self, FileKind, Outcome};
use crate::vault::Vault;
use anyhow::{bail, Context, Result};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use vigil_core::age::{self, x25519};
use vigil_core::envelope::{Attachment, MAX_ATTACHMENTS, MAX_ATTACHMENT_NAME_LEN};
use vigil_core::padding::padme_len;
use zeroize::Zeroizing;

/// Files up to this size are scrubbed in memory (the file and its scrubbed copy: twice this,
/// within the client's 64 MiB); a larger video is scrubbed as it streams
/// ([`crate::large_video`]), a larger photo or document is sent as it is, with a warning (no
/// phone takes a 24 MiB photo).
pub const SCRUB_IN_MEMORY_UP_TO: u64 = 24 * 1024 * 1024;

/// How much of a file is read, hashed and encrypted at a time.
pub const CHUNK: usize = 256 * 1024;

/// What happened to an attachment's metadata, for telling the reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    /// Removed: what, and how many bytes of it.
    Removed(Vec<scrub::Removed>),
    /// A type the scrubber knows, and there was nothing to remove.
    Clean,
    /// Kept on purpose (`--keep-metadata`).
    Kept,
    /// A type known to carry identifying metadata that could not be removed, and why.
    NotRemoved(scrub::Warning),
    /// Not a type known to carry metadata.
    Unknown,
}

/// One attachment, ready: its entry for the envelope, and its blob in the vault.
#[derive(Debug)]
pub struct Prepared {
    /// What the envelope says of it.
    pub entry: Attachment,
    /// The blob's name in the vault.
    pub blob_record: String,
    /// The blob's length (ciphertext).
    pub blob_len: u64,
    /// What happened to its metadata.
    pub metadata: Metadata,
}

/// The files `paths` name: files as they are, directories expanded to the files in them
/// (recursively, in name order; links are not followed). At most [`MAX_ATTACHMENTS`].
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the directory {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for p in entries {
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.is_dir() {
                walk(&p, out)?;
            } else if meta.is_file() {
                out.push(p);
            }
            if out.len() > MAX_ATTACHMENTS {
                break;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .with_context(|| format!("cannot attach {}: it cannot be read", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    if out.len() > MAX_ATTACHMENTS {
        bail!(
            "a report takes at most {MAX_ATTACHMENTS} attachments; put the rest in a second report"
        );
    }
    Ok(out)
}

/// The name an attachment is sent under: the file's own name, without its directories, with
/// characters a receiving file system or terminal would trip on replaced.
pub fn sent_name(path: &Path) -> String {
    let raw = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into());
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' || vigil_core::report::is_display_control(c)
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    while name.len() > MAX_ATTACHMENT_NAME_LEN {
        name.pop();
    }
    if name.is_empty() || name == "." || name == ".." {
        name = "attachment".into();
    }
    name
}

/// The media type of a file: from its first bytes where they say, else from its extension.
pub fn media_type(kind: FileKind, path: &Path) -> &'static str {
    match kind {
        FileKind::Jpeg => return "image/jpeg",
        FileKind::Png => return "image/png",
        FileKind::WebP => return "image/webp",
        FileKind::Heic => return "image/heic",
        FileKind::Pdf => return "application/pdf",
        _ => {}
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match (kind, ext.as_str()) {
        (_, "mov") => "video/quicktime",
        (FileKind::Mp4, "m4a") => "audio/mp4",
        (FileKind::Mp4, _) | (_, "mp4") => "video/mp4",
        (_, "docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (_, "xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        (_, "doc") => "application/msword",
        (_, "odt") => "application/vnd.oasis.opendocument.text",
        (_, "mp3") => "audio/mpeg",
        (_, "ogg" | "oga" | "opus") => "audio/ogg",
        (_, "wav") => "audio/wav",
        (_, "amr") => "audio/amr",
        (_, "txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// A blob just written.
struct Encrypted {
    /// SHA-256 of the plaintext.
    sha256: [u8; 32],
    /// The plaintext's length.
    size: u64,
    /// The blob's length.
    blob_len: u64,
    /// The blob id.
    blob: [u8; 16],
    /// Its name in the vault.
    record: String,
}

/// Encrypt what `source` yields into a new blob of `vault`, to `recipient`, hashing the
/// plaintext on the way.
fn encrypt_into(
    vault: &mut Vault,
    recipient: &x25519::Recipient,
    source: &mut dyn Read,
    progress: &mut Progress,
) -> Result<Encrypted> {
    let mut source = Counting::new(source, progress);
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let record = crate::vault::blob_name(&id);
    let out = vault.blob_create()?;
    let mut w = age::encrypt(std::slice::from_ref(recipient), out, &mut OsRng)?;
    let mut hasher = Sha256::new();
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut total = 0u64;
    loop {
        let n = source.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
    // Zeros after the content, inside the encryption, up to the Padmé length: the relay and the
    // network see the blob's size only to within a few per cent (issue 14). The signed size
    // says where the content ends; `inbox export` checks that the rest is zeros.
    buf.fill(0);
    let mut pad = padme_len(total) - total;
    while pad > 0 {
        let n = pad.min(buf.len() as u64) as usize;
        w.write_all(&buf[..n])?;
        pad -= n as u64;
    }
    let out = w.finish()?;
    let blob_len = vault.blob_commit(out, &record)?;
    Ok(Encrypted {
        sha256: hasher.finalize().into(),
        size: total,
        blob_len,
        blob: id,
        record,
    })
}

/// Prepare the file at `path` as an attachment: scrubbed unless `keep_metadata`, encrypted to
/// `blob_key`'s recipient into `vault`, showing progress on `out` for a large one.
pub fn prepare(
    vault: &mut Vault,
    path: &Path,
    blob_key: &x25519::Identity,
    keep_metadata: bool,
    out: &Output,
) -> Result<Prepared> {
    let recipient = blob_key.to_public();
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("cannot attach {}: it cannot be opened", path.display()))?;
    let len = file.metadata()?.len();
    let mut shown = Progress::new(out, Activity::Encrypt, &sent_name(path), len);
    let progress = &mut shown;
    let mut head = [0u8; 64];
    let n = read_up_to(&mut file, &mut head)?;
    let kind = scrub::detect(&head[..n]);
    let scrubbable = matches!(
        kind,
        FileKind::Jpeg
            | FileKind::Png
            | FileKind::WebP
            | FileKind::Heic
            | FileKind::Mp4
            | FileKind::Pdf
    );
    let (metadata, e) = if keep_metadata {
        let mut all = std::io::Cursor::new(&head[..n]).chain(file);
        (
            Metadata::Kept,
            encrypt_into(vault, &recipient, &mut all, progress)?,
        )
    } else if scrubbable && len <= SCRUB_IN_MEMORY_UP_TO {
        let mut bytes = Zeroizing::new(Vec::with_capacity(len as usize));
        bytes.extend_from_slice(&head[..n]);
        file.take(SCRUB_IN_MEMORY_UP_TO + 1 - n as u64)
            .read_to_end(&mut bytes)?;
        let outcome = scrub::scrub(&bytes)
            .with_context(|| format!("cannot remove the metadata of {}", path.display()))?;
        let (metadata, scrubbed) = match outcome {
            Outcome::Scrubbed { bytes, removed, .. } => {
                (Metadata::Removed(removed), Some(Zeroizing::new(bytes)))
            }
            Outcome::Clean { .. } => (Metadata::Clean, None),
            Outcome::NotScrubbed { warning, .. } => (Metadata::NotRemoved(warning), None),
            Outcome::Unknown => (Metadata::Unknown, None),
        };
        let send: &[u8] = scrubbed.as_deref().map_or(&bytes[..], |b| &b[..]);
        (
            metadata,
            encrypt_into(vault, &recipient, &mut std::io::Cursor::new(send), progress)?,
        )
    } else if kind == FileKind::Mp4 {
        let planned = crate::large_video::plan(&mut file, len)
            .with_context(|| format!("cannot remove the metadata of {}", path.display()))?;
        match planned {
            crate::large_video::Plan::Scrubbed { parts, removed } => {
                let mut r = crate::large_video::PartsReader::new(&mut file, parts);
                (
                    Metadata::Removed(removed),
                    encrypt_into(vault, &recipient, &mut r, progress)?,
                )
            }
            other => {
                file.seek(std::io::SeekFrom::Start(0))?;
                let metadata = match other {
                    crate::large_video::Plan::NotScrubbed(w) => Metadata::NotRemoved(w),
                    _ => Metadata::Clean,
                };
                (
                    metadata,
                    encrypt_into(vault, &recipient, &mut file, progress)?,
                )
            }
        }
    } else {
        let metadata = if scrubbable {
            Metadata::NotRemoved(scrub::Warning::TooLarge {
                max_mib: SCRUB_IN_MEMORY_UP_TO >> 20,
            })
        } else if kind == FileKind::Other {
            Metadata::Unknown
        } else {
            Metadata::NotRemoved(not_removed_warning(kind))
        };
        let mut all = std::io::Cursor::new(&head[..n]).chain(file);
        (
            metadata,
            encrypt_into(vault, &recipient, &mut all, progress)?,
        )
    };
    shown.finish();
    Ok(Prepared {
        entry: Attachment {
            name: sent_name(path),
            media_type: media_type(kind, path).to_string(),
            size: e.size,
            sha256: e.sha256,
            blob: e.blob,
            metadata_kept: keep_metadata,
        },
        blob_record: e.record,
        blob_len: e.blob_len,
        metadata,
    })
}

/// What a file of a type the scrubber does not rewrite may still carry (the client says it in
/// the reporter's language: `scrub-warn-{id}`).
fn not_removed_warning(kind: FileKind) -> scrub::Warning {
    match kind {
        FileKind::Heic => scrub::Warning::Heic,
        FileKind::Mp4 => scrub::Warning::Mp4,
        FileKind::Pdf => scrub::Warning::Pdf,
        FileKind::Office => scrub::Warning::Office,
        _ => scrub::Warning::Other,
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn vault(dir: &Path) -> Vault {
        Vault::create(dir, &SecretString::from("p".to_string()), 10).expect("vault")
    }

    /// The content of a blob of `size` content bytes: it must be padded with zeros to exactly
    /// its Padmé length.
    fn decrypt_blob(v: &Vault, record: &str, key: &x25519::Identity, size: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        v.blob_open(record)
            .expect("open")
            .expect("there")
            .read_to_end(&mut bytes)
            .expect("read");
        let mut plain = age::decrypt_from_slice(&bytes, std::slice::from_ref(key), 1 << 30)
            .expect("decrypt")
            .to_vec();
        assert_eq!(plain.len() as u64, padme_len(size), "padded to its bucket");
        assert!(plain[size as usize..].iter().all(|&b| b == 0), "zeros");
        plain.truncate(size as usize);
        plain
    }

    /// A large file that is not an image is streamed as it is: its hash and size are the
    /// original's, and the blob opens with the report's key only.
    #[test]
    fn a_video_is_streamed_whole_and_opens_with_the_blob_key() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut v = vault(&tmp.path().join("home"));
        let src = tmp.path().join("recording.amr");
        let mut data = b"#!AMR\n".to_vec();
        data.extend((0..3_000_000u32).map(|i| (i % 251) as u8));
        std::fs::write(&src, &data).expect("write");
        let key = x25519::Identity::generate(&mut OsRng);
        let p = prepare(
            &mut v,
            &src,
            &key,
            false,
            &crate::output::Output { json: true },
        )
        .expect("prepare");
        assert_eq!(p.entry.name, "recording.amr");
        assert_eq!(p.entry.media_type, "audio/amr");
        assert_eq!(p.entry.size, data.len() as u64);
        assert_eq!(p.entry.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(p.metadata, Metadata::Unknown);
        assert_eq!(decrypt_blob(&v, &p.blob_record, &key, p.entry.size), data);
        let other = x25519::Identity::generate(&mut OsRng);
        let mut bytes = Vec::new();
        v.blob_open(&p.blob_record)
            .expect("open")
            .expect("there")
            .read_to_end(&mut bytes)
            .expect("read");
        assert!(age::decrypt_from_slice(&bytes, std::slice::from_ref(&other), 1 << 30).is_err());
    }

    /// A photo loses its metadata before it is encrypted (the blob holds the scrubbed image,
    /// byte for byte, and the hash is of what was sent), unless the reporter keeps it.
    #[test]
    fn a_photo_is_scrubbed_unless_its_metadata_is_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut v = vault(&tmp.path().join("home"));
        let (dirty, clean) = scrub::sample_jpegs();
        let src = tmp.path().join("car.jpg");
        std::fs::write(&src, &dirty).expect("write");
        let key = x25519::Identity::generate(&mut OsRng);
        let p = prepare(
            &mut v,
            &src,
            &key,
            false,
            &crate::output::Output { json: true },
        )
        .expect("prepare");
        assert_eq!(p.entry.media_type, "image/jpeg");
        assert!(
            matches!(&p.metadata, Metadata::Removed(r) if !r.is_empty()),
            "{:?}",
            p.metadata
        );
        let sent = decrypt_blob(&v, &p.blob_record, &key, p.entry.size);
        assert_eq!(sent, clean);
        assert_eq!(p.entry.size, clean.len() as u64);
        assert_eq!(p.entry.sha256, <[u8; 32]>::from(Sha256::digest(&clean)));
        assert!(!p.entry.metadata_kept);

        let p = prepare(
            &mut v,
            &src,
            &key,
            true,
            &crate::output::Output { json: true },
        )
        .expect("prepare");
        assert_eq!(p.metadata, Metadata::Kept);
        assert!(p.entry.metadata_kept);
        assert_eq!(decrypt_blob(&v, &p.blob_record, &key, p.entry.size), dirty);
        assert_eq!(p.entry.sha256, <[u8; 32]>::from(Sha256::digest(&dirty)));
    }

    /// Directories expand to their files, in order; names lose their directories; too many
    /// files are refused.
    #[test]
    fn directories_expand_and_names_are_safe() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().join("evidence");
        std::fs::create_dir_all(d.join("inner")).expect("dir");
        for f in ["b.txt", "a.txt", "inner/c.txt"] {
            std::fs::write(d.join(f), f).expect("write");
        }
        let got = collect(std::slice::from_ref(&d)).expect("collect");
        let names: Vec<String> = got.iter().map(|p| sent_name(p)).collect();
        assert_eq!(names, ["a.txt", "b.txt", "c.txt"]);
        assert_eq!(sent_name(Path::new("/x/bad\u{1b}[2Jname")), "bad_[2Jname");
        for i in 0..=MAX_ATTACHMENTS {
            std::fs::write(d.join(format!("n{i:03}")), "x").expect("write");
        }
        assert!(collect(&[d]).is_err());
    }
}
