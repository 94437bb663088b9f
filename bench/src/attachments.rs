//! Issue 13's attachment figures, from the real programs: a generated file of `total` bytes
//! (1 GiB in a full run) sent by `vigil report send --attach` through a `vigil-relay` to an NGO
//! whose `vigil inbox fetch` downloads it and whose `vigil inbox export` writes it back, its
//! SHA-256 compared with the original's.
//!
//! * **Memory.** Each `vigil` command runs as a child process; its peak resident memory is its
//!   `VmHWM` (the kernel's high-water mark of its RSS since it started) read from
//!   `/proc/PID/status` every [`POLL`] until it exits: the last reading is its peak up to at most
//!   one poll interval before it exited (std offers no `wait4`, and the workspace forbids the
//!   `unsafe` a raw call needs). The relay's is its `VmHWM` read once, after everything, while
//!   it still runs: exact.
//! * **Upload throughput.** The report is queued first (`--queue-only`: scrub, hash and encrypt
//!   into the reporter's vault), then `vigil outbox flush` is timed: what the client does to
//!   upload (1 MiB `upload_chunk` requests, each answered once the relay has it on disk) plus
//!   its start, unlock, connection and the final deposit. Its anchor is the same number of
//!   bytes sent on one stream of a bare quinn connection on loopback to a server that drops them
//!   (`serve-raw-quinn`, as in the upload phase: TLS 1.3 with rustls and ring as the relay, but
//!   quinn's default windows and congestion control).
//! * **Resume.** The report is sent again and `report send` is killed (SIGKILL) once the relay
//!   has received a random share (20–80 %) of the blob; `vigil outbox flush` finishes it. The
//!   relay counts every chunk byte it reads (`blob_bytes_received` in its stats file); what it
//!   read beyond the blob's length was sent twice.

use crate::programs::Programs;
use crate::report::Report;
use crate::util::{mem_of, say};
use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// How often a child's peak memory is read.
const POLL: Duration = Duration::from_millis(10);
/// The passphrase of the bench's homes (cheap to unlock: the work factor is 10, see `home_env`).
const PASSPHRASE: &str = "vigil-bench attachments";
const REPORT: &str = r#"{"kind":"arbitrary_detention","urgency":"urgent","title":"bench","occurred_at":"2026-01-01","narrative":"A generated attachment for vigil-bench."}"#;
const MIB: f64 = 1024.0 * 1024.0;

/// A running `vigil` child and the highest `VmHWM` seen so far.
struct Watched {
    child: Child,
    pid: u32,
    peak_mib: f64,
    started: Instant,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
    what: String,
}

/// A child that exited successfully: its JSON lines, peak memory and wall time.
struct Finished {
    lines: Vec<Value>,
    peak_mib: f64,
    secs: f64,
}

impl Watched {
    fn poll(&mut self) {
        // Fails once the process has exited (a zombie has no memory lines): keep the last.
        if let Ok(m) = mem_of(self.pid) {
            self.peak_mib = self.peak_mib.max(m.hwm_mib);
        }
    }

    /// Poll until the child exits; an error if it failed.
    async fn finish(mut self) -> Result<Finished> {
        let status = loop {
            self.poll();
            tokio::select! {
                s = self.child.wait() => break s?,
                _ = tokio::time::sleep(POLL) => {}
            }
        };
        let secs = self.started.elapsed().as_secs_f64();
        let stdout = self.stdout.await.unwrap_or_default();
        let stderr = self.stderr.await.unwrap_or_default();
        if !status.success() {
            bail!("{} failed ({status}): {}", self.what, stderr.trim());
        }
        Ok(Finished {
            lines: json_lines(&stdout),
            peak_mib: self.peak_mib,
            secs,
        })
    }

    /// SIGKILL, then wait.
    async fn kill(mut self) -> Result<f64> {
        self.poll();
        self.child.start_kill()?;
        let _ = self.child.wait().await;
        Ok(self.peak_mib)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Everything one run needs: the programs, a temporary directory, the relay.
struct Bench {
    programs: Programs,
    dir: tempfile::TempDir,
    relay: Child,
    relay_pid: u32,
    relay_data: PathBuf,
    passphrase: PathBuf,
}

impl Bench {
    async fn start() -> Result<Bench> {
        let programs = Programs::find()?;
        let dir = tempfile::tempdir()?;
        let passphrase = dir.path().join("passphrase");
        std::fs::write(&passphrase, format!("{PASSPHRASE}\n"))?;
        let relay_data = dir.path().join("relay");
        let log = std::fs::File::create(dir.path().join("relay.log"))?;
        let mut relay = Command::new(&programs.relay)
            .args(["serve", "--listen", "127.0.0.1:0", "--ready-json", "--data"])
            .arg(&relay_data)
            // The stats file is where the resume figure is read; once a second is enough.
            .env("VIGIL_RELAY_STATS_INTERVAL_SECS", "1")
            .env("VIGIL_RELAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start vigil-relay")?;
        let relay_pid = relay.id().ok_or_else(|| anyhow!("vigil-relay exited"))?;
        let stdout = relay
            .stdout
            .take()
            .ok_or_else(|| anyhow!("vigil-relay has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| anyhow!("vigil-relay did not say it was ready within 30 s"))??
            .ok_or_else(|| anyhow!("vigil-relay exited before it was ready"))?;
        let ready: Value = serde_json::from_str(&ready).context("vigil-relay's ready line")?;
        let field = |k: &str| {
            ready[k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("vigil-relay's ready line lacks {k}: {ready}"))
        };
        let (addr, fp) = (field("addr")?, field("fingerprint")?);
        let b = Bench {
            programs,
            dir,
            relay,
            relay_pid,
            relay_data,
            passphrase,
        };
        let card = b.path("ngo.card");
        let card = card
            .to_str()
            .ok_or_else(|| anyhow!("temp path not UTF-8"))?;
        b.vigil(
            "ngo",
            &[
                "ngo",
                "init",
                "--name",
                "Desk",
                "--relay",
                &addr,
                "--relay-fingerprint",
                &fp,
                "--card-out",
                card,
            ],
        )?
        .finish()
        .await?;
        b.vigil("rep", &["contact", "add", card])?.finish().await?;
        std::fs::write(b.path("report.json"), REPORT)?;
        Ok(b)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn text(&self, name: &str) -> Result<String> {
        self.path(name)
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("temp path not UTF-8"))
    }

    /// Start `vigil --home HOME ARGS --json` as a script would run it.
    fn vigil(&self, home: &str, args: &[&str]) -> Result<Watched> {
        let mut child = Command::new(&self.programs.vigil)
            .arg("--home")
            .arg(self.path(home))
            .args(args)
            .arg("--json")
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .env_remove("VIGIL_LANG")
            .env("VIGIL_PASSPHRASE_FILE", &self.passphrase)
            .env("VIGIL_VAULT_WORK_FACTOR", "10")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start vigil")?;
        let pid = child.id().ok_or_else(|| anyhow!("vigil exited at once"))?;
        let read_all = |r: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
            tokio::spawn(async move {
                let mut s = String::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_string(&mut s).await;
                }
                s
            })
        };
        let stdout = read_all(child.stdout.take().map(|s| Box::new(s) as _));
        let stderr = read_all(child.stderr.take().map(|s| Box::new(s) as _));
        Ok(Watched {
            child,
            pid,
            peak_mib: 0.0,
            started: Instant::now(),
            stdout,
            stderr,
            what: format!("vigil {}", args.join(" ")),
        })
    }

    /// The relay's `blob_bytes_received`, from a stats snapshot written after this call.
    async fn received(&self) -> Result<u64> {
        let asked = now_unix()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(text) = std::fs::read(self.relay_data.join("stats.json")) {
                if let Ok(v) = serde_json::from_slice::<Value>(&text) {
                    // Whole seconds: a snapshot of the next second was taken after `asked`.
                    if v["written_at"].as_u64().is_some_and(|t| t > asked) {
                        return v["blob_bytes_received"]
                            .as_u64()
                            .ok_or_else(|| anyhow!("the relay's stats lack blob_bytes_received"));
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("the relay wrote no stats for 15 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Bytes in the relay's attachment files now (`blobs/` in its data directory; the blob
    /// being uploaded grows as it arrives): what tells when to cut an upload, more finely
    /// than the stats file.
    fn relay_blob_file_bytes(&self) -> u64 {
        let dir = self.relay_data.join("blobs");
        (std::fs::read_dir(dir).into_iter().flatten().flatten())
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    /// The outbox's one queued copy's attachment bytes (the blob's length at the relay).
    async fn queued_blob_len(&self) -> Result<u64> {
        let list = self.vigil("rep", &["outbox", "list"])?.finish().await?;
        let items: Vec<&Value> = (list.lines.iter())
            .filter(|v| v["type"] == "outbox_item")
            .collect();
        match items.as_slice() {
            [one] => one["attachment_bytes"]
                .as_u64()
                .ok_or_else(|| anyhow!("outbox list: no attachment_bytes in {one}")),
            _ => bail!("expected one queued copy, the outbox lists {}", items.len()),
        }
    }

    /// Fetch at the NGO, export the new report and check the file; (fetch, export).
    async fn fetch_and_check(&self, want: &[u8; 32]) -> Result<(Finished, Finished)> {
        let fetch = self.vigil("ngo", &["inbox", "fetch"])?.finish().await?;
        let ids: Vec<&str> = (fetch.lines.iter())
            .filter(|v| v["type"] == "fetched")
            .filter_map(|v| v["id"].as_str())
            .collect();
        let downloaded = (fetch.lines.iter())
            .filter(|v| v["type"] == "attachment_downloaded")
            .count();
        let [id] = ids.as_slice() else {
            bail!("inbox fetch: expected one report, got {}", ids.len());
        };
        if downloaded != 1 {
            bail!("inbox fetch downloaded {downloaded} attachments, expected 1");
        }
        let out = self.path("export");
        let out_s = self.text("export")?;
        let export = (self.vigil("ngo", &["inbox", "export", id, "--out", &out_s])?)
            .finish()
            .await?;
        let file = out.join("evidence.bin");
        let got = sha256_of(&file)?;
        std::fs::remove_dir_all(&out)?;
        if &got != want {
            bail!("the exported attachment differs from the file sent");
        }
        Ok((fetch, export))
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.relay.start_kill();
    }
}

fn now_unix() -> Result<u64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs())
}

/// Write `total` pseudo-random bytes (xorshift, a new seed per MiB: nothing compresses or
/// repeats) to `path`, a MiB at a time; returns their SHA-256.
fn generate(path: &Path, total: u64) -> Result<[u8; 32]> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut hash = Sha256::new();
    let mut left = total;
    let mut seed: u64 = rand::thread_rng().gen();
    while left > 0 {
        let n = left.min(1 << 20) as usize;
        let block = crate::util::filler(n, seed);
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        hash.update(&block);
        f.write_all(&block)?;
        left -= n as u64;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(hash.finalize().into())
}

fn sha256_of(path: &Path) -> Result<[u8; 32]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buf[..n]);
    }
}

/// Child: connect to a bare quinn server and send `bytes` on one stream, a MiB per write; print
/// `READY {"secs"}` once the server's one-byte answer came, then wait for EOF.
pub async fn stream_client(addr: &str, bytes: u64) -> Result<()> {
    use crate::util::{client_config, RAW_ALPN};
    let remote: std::net::SocketAddr = addr.parse()?;
    let ep = quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let conn = ep
        .connect_with(client_config(RAW_ALPN)?, remote, "localhost")?
        .await?;
    let mut block = crate::util::filler(1 << 20, 0x5eed);
    let t = Instant::now();
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        // A different first word per MiB, as the file's blocks differ.
        block[..8].copy_from_slice(&left.to_le_bytes());
        send.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    send.finish()?;
    let reply = recv.read_to_end(16).await?;
    if reply != [1] {
        bail!("bare quinn server answered {reply:?}");
    }
    let secs = t.elapsed().as_secs_f64();
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;
    say("READY", &json!({ "secs": secs }));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while lines.next_line().await?.is_some() {}
    Ok(())
}

/// Seconds to send `bytes` on one stream to a fresh bare quinn server (`durable`: it writes
/// the stream to a file and syncs it before answering).
async fn raw_stream_secs(bytes: u64, durable: bool) -> Result<f64> {
    use crate::net::{spawn_server, Target};
    let target = if durable {
        Target::RawDurable
    } else {
        Target::Raw
    };
    let (server, addr, _) = spawn_server(target, 16).await?;
    let args = vec![
        "stream-client".to_string(),
        "--addr".into(),
        addr,
        "--bytes".into(),
        bytes.to_string(),
    ];
    let (client, res) = crate::util::Worker::spawn(&args, Duration::from_secs(900)).await?;
    client.stop().await?;
    server.stop().await?;
    res["secs"]
        .as_f64()
        .ok_or_else(|| anyhow!("stream-client said {res}"))
}

pub async fn run(total: u64, out: &mut Report) -> Result<()> {
    crate::progress(&format!(
        "attachments: a {} MiB file through vigil, vigil-relay and the NGO's vigil",
        total >> 20
    ));
    let b = Bench::start().await?;
    let file = b.path("evidence.bin");
    let want = generate(&file, total)?;
    let file_s = b.text("evidence.bin")?;
    let report = b.text("report.json")?;
    let send = |queue_only: bool| {
        let mut a = vec![
            "report", "send", "--to", "Desk", "--file", &report, "--attach", &file_s,
        ];
        if queue_only {
            a.push("--queue-only");
        } else {
            // A killed sender's connection is given up by the relay after this long without
            // a packet; until then the relay holds the blob's upload for it (Busy to others).
            a.extend(["--stall-timeout", "3s"]);
        }
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };

    // The anchor first, on the same number of bytes.
    crate::progress("attachments: the same bytes on one bare quinn stream");
    let raw_secs = raw_stream_secs(total, false).await?;
    let raw_durable_secs = raw_stream_secs(total, true).await?;

    // 1. Queue (encrypt into the vault), upload, fetch, export.
    crate::progress("attachments: queue, upload, fetch, export");
    let queued = b.vigil("rep", &strs(&send(true)))?.finish().await?;
    let blob_len = b.queued_blob_len().await?;
    let before = b.received().await?;
    let flush = b.vigil("rep", &["outbox", "flush"])?.finish().await?;
    if !flush.lines.iter().any(|v| v["type"] == "stored") {
        bail!("outbox flush stored nothing: {:?}", flush.lines);
    }
    // Sent once, in full: anything above the blob's length would be a resend without a cut.
    let uploaded_extra = (b.received().await? - before).saturating_sub(blob_len);
    let (fetch, export) = b.fetch_and_check(&want).await?;

    // 2. Cut an upload at a random point, resume it, fetch again.
    crate::progress("attachments: an upload killed part-way, then resumed");
    let before = b.received().await?;
    let share: f64 = rand::thread_rng().gen_range(0.2..0.8);
    let cut_at = (blob_len as f64 * share) as u64;
    let base_files = b.relay_blob_file_bytes();
    let mut sender = b.vigil("rep", &strs(&send(false)))?;
    let mut cut = None;
    loop {
        sender.poll();
        if let Some(status) = sender.child.try_wait()? {
            // Finished before the cut point (a tiny smoke-test file); nothing to resume.
            if !status.success() {
                bail!("report send failed before it could be cut: {status}");
            }
            break;
        }
        let held = b.relay_blob_file_bytes().saturating_sub(base_files);
        if held >= cut_at {
            cut = Some(held);
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let (sender_peak, resumed) = match cut {
        Some(_) => {
            let peak = sender.kill().await?;
            let resumed = (b.vigil("rep", &["outbox", "flush", "--retry-for", "2m"])?)
                .finish()
                .await?;
            (peak, Some(resumed))
        }
        None => (sender.finish().await?.peak_mib, None),
    };
    let resent = (b.received().await? - before).saturating_sub(blob_len);
    let (fetch2, export2) = b.fetch_and_check(&want).await?;
    let relay_peak = mem_of(b.relay_pid)?.hwm_mib;

    let client_peak = [queued.peak_mib, flush.peak_mib, sender_peak]
        .into_iter()
        .chain(resumed.as_ref().map(|r| r.peak_mib))
        .fold(0.0, f64::max);
    let mib = total as f64 / MIB;
    let blob_mib = blob_len as f64 / MIB;
    out.set("attachment_mib", mib);
    out.set(
        "attachment_upload_ratio_vs_raw_quinn",
        raw_secs / flush.secs * (blob_len as f64 / total as f64),
    );
    out.set("attachment_upload_mib_per_s", blob_mib / flush.secs);
    out.set("attachment_raw_quinn_mib_per_s", mib / raw_secs);
    out.set(
        "attachment_diag_raw_quinn_durable_mib_per_s",
        mib / raw_durable_secs,
    );
    out.set("attachment_queue_mib_per_s", mib / queued.secs);
    out.set("attachment_fetch_mib_per_s", blob_mib / fetch.secs);
    out.set("attachment_export_mib_per_s", mib / export.secs);
    // The issue's single key: the largest of the three peaks it names (each < 64 MiB is the
    // goal, so the largest says whether all are met); the three follow, each on its own.
    let fetch_peak = fetch.peak_mib.max(fetch2.peak_mib);
    out.set(
        "attachment_peak_rss_mib",
        client_peak.max(relay_peak).max(fetch_peak),
    );
    out.set("attachment_peak_rss_mib_client", client_peak);
    out.set("attachment_peak_rss_mib_client_queue", queued.peak_mib);
    out.set("attachment_peak_rss_mib_client_upload", flush.peak_mib);
    out.set("attachment_peak_rss_mib_relay", relay_peak);
    out.set("attachment_peak_rss_mib_fetch", fetch_peak);
    out.set(
        "attachment_peak_rss_mib_export",
        export.peak_mib.max(export2.peak_mib),
    );
    out.set("attachment_upload_resent_bytes", uploaded_extra as f64);
    out.set("resume_resent_bytes", resent as f64);
    out.set(
        "resume_cut_at_mib",
        cut.map_or(blob_mib, |c| c as f64 / MIB),
    );
    Ok(())
}
