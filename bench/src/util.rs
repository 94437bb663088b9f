//! Shared plumbing: child processes, /proc memory readings, bare QUIC configs, statistics.

use anyhow::{anyhow, bail, Context, Result};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// ALPN of the bare quinn anchor server.
pub const RAW_ALPN: &[u8] = b"vigil-bench/raw";

/// Resident and peak resident memory of a process, in MiB, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug)]
pub struct Mem {
    pub rss_mib: f64,
    pub hwm_mib: f64,
}

pub fn mem_of(pid: u32) -> Result<Mem> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Result<f64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("{path} has no {name} line"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| anyhow!("{path}: empty {name} line"))?
            .parse()
            .with_context(|| format!("{path}: {name} is not a number"))?;
        Ok(kib / 1024.0)
    };
    Ok(Mem {
        rss_mib: field("VmRSS:")?,
        hwm_mib: field("VmHWM:")?,
    })
}

/// CPU time (user + system) this process has used, in seconds. `/proc` reports it in
/// USER_HZ ticks, which Linux fixes at 100 per second for user space.
pub fn cpu_secs() -> Result<f64> {
    cpu_secs_at("/proc/self/stat")
}

/// CPU time (user + system) process `pid` (e.g. a server child) has used, in seconds.
pub fn cpu_secs_of(pid: u32) -> Result<f64> {
    cpu_secs_at(&format!("/proc/{pid}/stat"))
}

fn cpu_secs_at(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) may contain spaces; fields after its ')' are plain.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unexpected {path}"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is index 0, so utime (field 14) is index 11 and stime index 12.
    let tick = |i: usize| -> Result<f64> {
        Ok(f.get(i)
            .ok_or_else(|| anyhow!("short {path}"))?
            .parse::<f64>()?
            / 100.0)
    };
    Ok(tick(11)? + tick(12)?)
}

/// UDP datagrams the kernel dropped because a socket's receive buffer was full
/// (`RcvbufErrors` in `/proc/net/snmp`). Machine-wide: other processes' drops count too.
pub fn udp_rcvbuf_errors() -> Result<f64> {
    udp_counter("RcvbufErrors")
}

/// UDP sends counted by the kernel (`OutDatagrams` in `/proc/net/snmp`; a GSO batch of
/// several packets counts once). Machine-wide.
pub fn udp_out_datagrams() -> Result<f64> {
    udp_counter("OutDatagrams")
}

fn udp_counter(name: &str) -> Result<f64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").context("cannot read /proc/net/snmp")?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next(), udp.next());
    let (Some(names), Some(values)) = (names, values) else {
        bail!("/proc/net/snmp has no Udp lines");
    };
    let i = names
        .split_whitespace()
        .position(|n| n == name)
        .ok_or_else(|| anyhow!("/proc/net/snmp has no {name}"))?;
    values
        .split_whitespace()
        .nth(i)
        .ok_or_else(|| anyhow!("short Udp line in /proc/net/snmp"))?
        .parse()
        .with_context(|| format!("{name} is not a number"))
}

pub fn self_mem() -> Result<Mem> {
    mem_of(std::process::id())
}

/// A child process running a hidden subcommand of this binary. It talks in lines: it prints
/// `READY <json>` once, then answers each line we send; it exits when its stdin closes.
/// Killed on drop, so a failing phase never leaves a server behind.
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    pub pid: u32,
    name: String,
}

impl Worker {
    pub async fn spawn(args: &[String], timeout: Duration) -> Result<(Self, serde_json::Value)> {
        let exe = std::env::current_exe().context("cannot find the vigil-bench executable")?;
        let name = args.first().cloned().unwrap_or_default();
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the {name} child process"))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{name} child exited at once"))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name} child has no stdout"))?;
        let mut w = Worker {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            pid,
            name,
        };
        let ready = w.read_reply(timeout).await?;
        Ok((w, ready))
    }

    /// Next `READY`/`OK` line, parsed as JSON after the first word.
    pub async fn read_reply(&mut self, timeout: Duration) -> Result<serde_json::Value> {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .map_err(|_| anyhow!("{} child did not answer within {timeout:?}", self.name))?
            .with_context(|| format!("reading from the {} child", self.name))?
            .ok_or_else(|| anyhow!("{} child exited early", self.name))?;
        let (word, json) = line.split_once(' ').unwrap_or((line.as_str(), "{}"));
        if word != "READY" && word != "OK" {
            bail!("{} child said: {line}", self.name);
        }
        serde_json::from_str(json).with_context(|| format!("{} child sent bad JSON", self.name))
    }

    pub async fn ask(&mut self, line: &str, timeout: Duration) -> Result<serde_json::Value> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("{} child stdin closed", self.name))?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        self.read_reply(timeout).await
    }

    pub fn mem(&self) -> Result<Mem> {
        mem_of(self.pid)
    }

    /// Close stdin and wait (bounded) for the child to exit; kill it otherwise.
    pub async fn stop(mut self) -> Result<()> {
        self.stdin.take();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.child.start_kill()?;
            let _ = self.child.wait().await;
        }
        Ok(())
    }
}

/// In a child: print `READY`/`OK` with a JSON object, flushed.
pub fn say(word: &str, v: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{word} {v}");
    let _ = out.flush();
}

/// A quinn client config with `alpn`, TLS 1.3, keep-alives every 5 s (so idle connections
/// stay open under any server idle timeout above that). It accepts any server certificate, as
/// the client's TLS layer does (the handshake signature is still checked): the anchor server's
/// throwaway certificate, or a relay's front certificate (whose identity the real client then
/// checks after knocking, as idle relay connections here do too).
pub fn client_config(alpn: &[u8]) -> Result<quinn::ClientConfig> {
    let mut cc = vigil_client::relay::tls::quic_client_config(alpn)?;
    let mut t = TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    t.max_idle_timeout(Some(IdleTimeout::try_from(Duration::from_secs(120))?));
    cc.transport_config(Arc::new(t));
    Ok(cc)
}

/// The bare quinn anchor server: a fresh self-signed certificate, ALPN [`RAW_ALPN`], TLS 1.3,
/// quinn's default transport except the idle timeout (as long as the relay's under test).
pub fn raw_server_config() -> Result<quinn::ServerConfig> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![RAW_ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let quic = QuicServerConfig::try_from(tls)?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(IdleTimeout::try_from(Duration::from_secs(120))?));
    t.max_concurrent_bidi_streams(VarInt::from_u32(16));
    sc.transport_config(Arc::new(t));
    Ok(sc)
}

/// The `q`-quantile (0..=1) of `xs` (sorted in place), nearest rank.
pub fn quantile(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1]
}

/// Deterministic incompressible-looking bytes (xorshift), cheap to make.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
