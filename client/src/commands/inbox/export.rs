//! `vigil inbox export ID --out DIR`: one report and its attachments as files, for the NGO's
//! case work (a lawyer's filing, a court's interim-measures request).
//!
//! Each attachment is decrypted from its blob in the vault as a stream and hashed on the way;
//! it gets its name only once the hash matches the one the reporter signed, so a damaged or
//! altered blob never sits in the directory looking like evidence. What is written is plaintext
//! by the NGO's choice; the command says so.

use super::view::open_stored;
use super::Ctx;
use crate::home::PRIVATE;
use crate::progress::{Activity, Progress};
use crate::state::{inbox_read, Ngo};
use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use vigil_core::age;
use vigil_core::envelope::Attachment;
use vigil_core::padding::padme_len;
use zeroize::Zeroizing;

/// How much is decrypted and written at a time.
const CHUNK: usize = 256 * 1024;

/// A name not yet taken in `dir`: `name`, else `stem (2).ext`, `stem (3).ext`...
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let p = Path::new(name);
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
    let ext = p.extension().and_then(|e| e.to_str());
    (2..)
        .map(|n| match ext {
            Some(e) => dir.join(format!("{stem} ({n}).{e}")),
            None => dir.join(format!("{stem} ({n})")),
        })
        .find(|c| !c.exists())
        .unwrap_or(first)
}

/// Decrypt the blob of `a` from `blob` with the report's blob `key` into `sink`, counting into
/// `progress`, and check that it is exactly what the reporter signed (size and SHA-256). On an
/// error, what reached `sink` must not be used.
pub(super) fn decrypt_checked(
    blob: impl Read,
    a: &Attachment,
    key: &age::x25519::Identity,
    sink: &mut impl Write,
    progress: &mut Progress,
) -> Result<()> {
    let mut r = age::Decryptor::new(std::io::BufReader::new(blob))?
        .decrypt(std::slice::from_ref(key))
        .with_context(|| {
            format!(
                "the blob of {} does not open with this report's key",
                a.name
            )
        })?;
    let mut hasher = Sha256::new();
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut total = 0u64;
    // The content is the first `a.size` bytes; a blob may carry zeros after it up to the Padmé
    // length (issue 14), or none (blobs sent before padding).
    let padded = padme_len(a.size);
    let mismatch = || anyhow::Error::from(crate::t_err!("export-mismatch", name = a.name.as_str()));
    loop {
        let n = r
            .read(&mut buf)
            .with_context(|| format!("the blob of {} is damaged or cut short", a.name))?;
        if n == 0 {
            break;
        }
        let start = total;
        total += n as u64;
        if total > padded {
            return Err(mismatch());
        }
        let content = (a.size.saturating_sub(start)).min(n as u64) as usize;
        if buf[content..n].iter().any(|&b| b != 0) {
            return Err(mismatch());
        }
        hasher.update(&buf[..content]);
        sink.write_all(&buf[..content])?;
        progress.set(start + content as u64);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if (total != a.size && total != padded) || digest != a.sha256 {
        return Err(mismatch());
    }
    Ok(())
}

/// Decrypt `a`'s blob into `dir`, verifying its hash; the path written.
pub(crate) fn export_one(
    ctx: &Ctx,
    dir: &Path,
    a: &Attachment,
    key: &age::x25519::Identity,
) -> Result<PathBuf> {
    let name = crate::vault::blob_name(&a.blob);
    let file = ctx.home.vault()?.blob_open(&name)?.ok_or_else(|| {
        anyhow::Error::from(
            crate::t_err!("export-not-downloaded", name = a.name.as_str()).not_found(),
        )
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".vigil-export")
        .tempfile_in(dir)?;
    let mut progress = Progress::new(&ctx.out, Activity::Decrypt, &a.name, a.size);
    decrypt_checked(file, a, key, &mut tmp, &mut progress)?;
    tmp.as_file().sync_all()?;
    progress.finish();
    let path = free_name(dir, &a.name);
    tmp.persist_noclobber(&path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(path)
}

/// Export report `id` (and its attachments) into `out`.
pub fn export(ctx: &Ctx, id: &str, out: &Path) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let (id, bytes) = inbox_read(&ctx.home, id)?;
    let o = open_stored(ctx, &ngo, &bytes)?;
    vigil_fs::create_private_dir(out)?;
    let report_path = free_name(out, &format!("report-{id}.json"));
    vigil_fs::write_new(&report_path, &o.report_json, PRIVATE)?;
    let mut written = Vec::new();
    let mut failed = 0;
    // The report's attachments, then those of the reporter's answers in its thread.
    // Each with the index of its key in `keys` (`None`: the report's blob key).
    let mut all: Vec<(Attachment, Option<usize>)> =
        o.attachments.iter().map(|a| (a.clone(), None)).collect();
    let mut keys = Vec::new();
    if let Some(t) = crate::state::ngo_thread(&ctx.home, &id)? {
        // Not this NGO's own replies: their files were its own, sent from the outbox.
        let answers = t
            .messages
            .iter()
            .filter(|m| m.from == crate::state::Author::Reporter);
        for m in answers.filter(|m| !m.attachments.is_empty()) {
            let Some(key) = m.blob_key()? else { continue };
            keys.push(key);
            for x in &m.attachments {
                all.push((x.entry()?, Some(keys.len() - 1)));
            }
        }
    }
    for (a, k) in &all {
        let key = match k {
            Some(i) => &keys[*i],
            None => o
                .blob_key
                .as_ref()
                .context("the report names attachments but carries no key for them")?,
        };
        match export_one(ctx, out, a, key) {
            Ok(path) => {
                written.push(json!({
                    "name": a.name, "path": path.display().to_string(), "size": a.size,
                    "sha256": hex::encode(a.sha256), "verified": true,
                }));
            }
            Err(e) => {
                failed += 1;
                let shown = crate::display::line(&crate::failure::localized_message(&e));
                ctx.out
                    .say(format!("{}: {shown}", crate::t!("warning-prefix")));
                written.push(json!({
                    "name": a.name, "path": null, "size": a.size,
                    "sha256": hex::encode(a.sha256), "verified": false, "error": shown,
                }));
            }
        }
    }
    ctx.out.say(crate::t!(
        "export-done",
        id = id.as_str(),
        dir = out.display().to_string(),
        count = (all.len() - failed)
    ));
    ctx.out.say(crate::t!("export-plaintext"));
    ctx.out.emit(json!({
        "type": "exported", "id": id, "dir": out.display().to_string(),
        "report": report_path.display().to_string(), "attachments": written,
    }));
    if failed > 0 {
        bail!(crate::t_err!("export-incomplete", count = failed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::Home;
    use crate::output::Output;
    use rand::rngs::OsRng;

    /// A blob that decrypts to what the reporter signed is written under its name (a second
    /// one beside it under a free name); one whose content differs is not written at all.
    #[test]
    fn attachments_are_written_only_when_they_match_the_signed_hash() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = Home::open(tmp.path().join("home"))
            .expect("home")
            .with_passphrase("p".to_string().into())
            .with_work_factor(10);
        let ctx = Ctx {
            home,
            out: Output { json: true },
        };
        let key = age::x25519::Identity::generate(&mut OsRng);
        let put = |id: [u8; 16], content: &[u8]| {
            let mut v = ctx.home.vault().expect("vault");
            let w = v.blob_create().expect("blob");
            let mut w = age::encrypt(&[key.to_public()], w, &mut OsRng).expect("encrypt");
            w.write_all(content).expect("write");
            let w = w.finish().expect("finish");
            v.blob_commit(w, &crate::vault::blob_name(&id))
                .expect("commit");
        };
        let content = b"photo of the car".to_vec();
        let a = Attachment {
            name: "car.jpg".into(),
            media_type: "image/jpeg".into(),
            size: content.len() as u64,
            sha256: Sha256::digest(&content).into(),
            blob: [1; 16],
            metadata_kept: false,
        };
        put(a.blob, &content);
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).expect("dir");
        let p = export_one(&ctx, &out, &a, &key).expect("export");
        assert_eq!(p, out.join("car.jpg"));
        assert_eq!(std::fs::read(&p).expect("read"), content);
        let again = export_one(&ctx, &out, &a, &key).expect("export");
        assert_eq!(again, out.join("car (2).jpg"));

        let mut forged = a.clone();
        forged.blob = [2; 16];
        forged.name = "forged.jpg".into();
        put(forged.blob, b"photo of another car");
        forged.size = 20;
        assert!(export_one(&ctx, &out, &forged, &key).is_err());
        assert!(!out.join("forged.jpg").exists());
        let mut missing = a.clone();
        missing.blob = [3; 16];
        assert!(export_one(&ctx, &out, &missing, &key).is_err());
        // Padded to its Padmé length with zeros (issue 14): the content alone is written; a
        // padding byte that is not zero is refused like any other change.
        let content = vec![9u8; 1000];
        let padded_len = padme_len(1000) as usize;
        assert!(padded_len > 1000);
        let mut padded = content.clone();
        padded.resize(padded_len, 0);
        let mut p = a.clone();
        p.blob = [4; 16];
        p.name = "padded.bin".into();
        p.size = 1000;
        p.sha256 = Sha256::digest(&content).into();
        put(p.blob, &padded);
        let path = export_one(&ctx, &out, &p, &key).expect("padded export");
        assert_eq!(std::fs::read(&path).expect("read"), content);
        std::fs::remove_file(&path).expect("rm");
        let mut bad = p.clone();
        bad.blob = [5; 16];
        let mut dirty = padded.clone();
        dirty[padded_len - 1] = 1;
        put(bad.blob, &dirty);
        assert!(export_one(&ctx, &out, &bad, &key).is_err());
        let names: Vec<_> = std::fs::read_dir(&out)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
