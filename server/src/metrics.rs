//! `--metrics ADDR`: the relay's statistics in the Prometheus text format (issue 17), for
//! operators who watch several relays.
//!
//! What is exposed is exactly what `stats.json` holds (counts and sizes, see [`RelayStats`]),
//! never a mailbox id, an item id, a deposit id or an address: nothing an observer of the
//! metrics could link to a reporter or an NGO. The only label is the name of a refusal's error
//! code. The endpoint is a deliberately small HTTP/1.1 server: `GET /metrics` (or `/`) answers,
//! anything else gets 404 or 405, one request per connection, the request head bounded and
//! timed, so an exposed metrics port is no resource hole. Bind it to loopback or a private
//! network: the counts tell how busy the relay is.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::stats::RelayStats;

/// Longest request head read, in bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Most scrapes answered at once; more wait in the accept queue.
const MAX_CONCURRENT: usize = 8;

/// One metric: name, type, help, value.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP vigil_relay_{name} {help}");
    let _ = writeln!(out, "# TYPE vigil_relay_{name} {kind}");
    let _ = writeln!(out, "vigil_relay_{name} {value}");
}

/// `s` in the Prometheus text exposition format (version 0.0.4).
pub fn render(s: &RelayStats) -> String {
    let mut o = String::with_capacity(4096);
    let g = "gauge";
    let c = "counter";
    metric(
        &mut o,
        "up",
        g,
        "1 while the relay serves; 0 in its last moments of a clean stop.",
        u64::from(!s.stopped),
    );
    metric(
        &mut o,
        "started_at_seconds",
        g,
        "Unix time the relay started.",
        s.started_at,
    );
    metric(
        &mut o,
        "mailboxes",
        g,
        "Registered mailboxes.",
        s.store.mailboxes,
    );
    metric(
        &mut o,
        "items",
        g,
        "Items waiting to be fetched.",
        s.store.items,
    );
    metric(
        &mut o,
        "item_bytes",
        g,
        "Envelope bytes waiting to be fetched.",
        s.store.bytes,
    );
    metric(
        &mut o,
        "alerts",
        g,
        "Check-in alerts armed.",
        s.store.alerts,
    );
    metric(&mut o, "blobs", g, "Attachment blobs held.", s.store.blobs);
    metric(
        &mut o,
        "blob_bytes",
        g,
        "Bytes of attachment blobs held.",
        s.store.blob_bytes,
    );
    metric(
        &mut o,
        "store_disk_bytes",
        g,
        "Bytes the store directory takes on disk.",
        s.store_disk_bytes,
    );
    metric(
        &mut o,
        "free_bytes",
        g,
        "Bytes free in the data directory at the last probe.",
        s.free_bytes,
    );
    metric(
        &mut o,
        "accepting_deposits",
        g,
        "1 when deposits are accepted; 0 when the disk is full or read-only.",
        u64::from(s.accepting_deposits),
    );
    metric(
        &mut o,
        "last_flush_ok",
        g,
        "1 when the last commit of the store succeeded.",
        u64::from(s.last_flush_ok),
    );
    metric(
        &mut o,
        "flushes_total",
        c,
        "Store commits made.",
        s.flush.flushes,
    );
    metric(
        &mut o,
        "flush_failures_total",
        c,
        "Store commits that failed.",
        s.flush.failures,
    );
    metric(
        &mut o,
        "flush_waiters_total",
        c,
        "Durable writes answered by commits.",
        s.flush.waiters,
    );
    metric(
        &mut o,
        "flush_seconds_total_micros",
        c,
        "Time spent committing, microseconds.",
        s.flush.flush_micros,
    );
    metric(
        &mut o,
        "flush_max_micros",
        g,
        "Longest single commit since start, microseconds.",
        s.flush.max_flush_micros,
    );
    metric(
        &mut o,
        "flush_max_batch",
        g,
        "Most writes one commit answered.",
        s.flush.max_batch,
    );
    metric(
        &mut o,
        "connections_open",
        g,
        "Connections open now.",
        s.connections_open,
    );
    metric(
        &mut o,
        "connections_accepted_total",
        c,
        "Connections handed to the handshake.",
        s.connections_accepted,
    );
    metric(
        &mut o,
        "connections_tcp_total",
        c,
        "Of those, over TLS on TCP.",
        s.tcp_accepted,
    );
    metric(
        &mut o,
        "connections_refused_limit_total",
        c,
        "Connections refused by the total limit.",
        s.refused_connection_limit,
    );
    metric(
        &mut o,
        "connections_refused_per_address_total",
        c,
        "Connections refused by the per-address limit.",
        s.refused_per_address,
    );
    metric(
        &mut o,
        "connections_expired_total",
        c,
        "Connections closed at max_connection_secs.",
        s.connections_expired,
    );
    metric(
        &mut o,
        "retries_sent_total",
        c,
        "QUIC Retry packets sent.",
        s.retries_sent,
    );
    metric(
        &mut o,
        "handshakes_failed_total",
        c,
        "Handshakes that failed or timed out.",
        s.handshakes_failed,
    );
    metric(
        &mut o,
        "header_timeouts_total",
        c,
        "Requests whose header came too late.",
        s.header_timeouts,
    );
    metric(
        &mut o,
        "slow_bodies_total",
        c,
        "Requests refused because the body came too slowly.",
        s.slow_bodies,
    );
    metric(
        &mut o,
        "rate_limited_total",
        c,
        "Requests refused by per-address rates.",
        s.rate_limited,
    );
    metric(
        &mut o,
        "front_requests_total",
        c,
        "HTTP requests answered as a web server (no good knock).",
        s.front_requests,
    );
    metric(
        &mut o,
        "knocks_failed_total",
        c,
        "QUIC connections closed without a good knock.",
        s.knocks_failed,
    );
    metric(
        &mut o,
        "deposits_stored_total",
        c,
        "Deposits newly stored.",
        s.deposits_stored,
    );
    metric(
        &mut o,
        "deposits_duplicate_total",
        c,
        "Deposit retries recognised as stored.",
        s.deposits_duplicate,
    );
    metric(
        &mut o,
        "registrations_total",
        c,
        "Mailbox registrations.",
        s.registrations,
    );
    metric(&mut o, "fetches_total", c, "Fetches answered.", s.fetches);
    metric(
        &mut o,
        "items_acked_total",
        c,
        "Items deleted by acknowledgements.",
        s.items_acked,
    );
    metric(
        &mut o,
        "blob_bytes_received_total",
        c,
        "Attachment bytes received.",
        s.blob_bytes_received,
    );
    let _ = writeln!(
        o,
        "# HELP vigil_relay_refused_total Requests refused, by error code."
    );
    let _ = writeln!(o, "# TYPE vigil_relay_refused_total counter");
    for (code, n) in &s.refused {
        // Error names are the protocol's fixed set ("storage-full", ...); escaped anyway.
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let _ = writeln!(o, "vigil_relay_refused_total{{code=\"{code}\"}} {n}");
    }
    o
}

/// Serve `/metrics` on `listener` until `cancel`, each answer a fresh snapshot from `snapshot`
/// (run off the async threads: it reads the store directory's size).
pub async fn serve(
    listener: TcpListener,
    snapshot: impl Fn() -> RelayStats + Clone + Send + Sync + 'static,
    cancel: CancellationToken,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let (mut stream, _) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let snapshot = snapshot.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let answer = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
                Ok(Some(head)) => answer(&head, snapshot).await,
                _ => response("400 Bad Request", "text/plain", "bad request\n"),
            };
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The request head (up to the blank line), or `None` if it is too long or the peer left.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return String::from_utf8(buf).ok();
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

/// The answer to one request head.
async fn answer(head: &str, snapshot: impl Fn() -> RelayStats + Send + 'static) -> String {
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if path != "/metrics" && path != "/" {
        return response("404 Not Found", "text/plain", "not found; try /metrics\n");
    }
    if method != "GET" && method != "HEAD" {
        return response("405 Method Not Allowed", "text/plain", "use GET\n");
    }
    let Ok(stats) = tokio::task::spawn_blocking(snapshot).await else {
        return response(
            "500 Internal Server Error",
            "text/plain",
            "stats unavailable\n",
        );
    };
    let body = render(&stats);
    if method == "HEAD" {
        let mut r = response("200 OK", "text/plain; version=0.0.4; charset=utf-8", &body);
        if let Some(i) = r.find("\r\n\r\n") {
            r.truncate(i + 4);
        }
        return r;
    }
    response("200 OK", "text/plain; version=0.0.4; charset=utf-8", &body)
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Bind the metrics listener (before the relay says it is ready, so a bad address fails the
/// start in one line).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RelayStats {
        let mut s = RelayStats {
            deposits_stored: 7,
            connections_open: 2,
            accepting_deposits: true,
            last_flush_ok: true,
            ..RelayStats::default()
        };
        s.store.items = 3;
        s.refused.insert("storage-full".into(), 4);
        s.refused.insert("rate\"limited\n".into(), 1);
        s
    }

    #[test]
    fn the_exposition_is_well_formed_and_carries_no_ids() {
        let text = render(&sample());
        assert!(text.contains("vigil_relay_deposits_stored_total 7\n"));
        assert!(text.contains("vigil_relay_items 3\n"));
        assert!(text.contains("vigil_relay_accepting_deposits 1\n"));
        assert!(text.contains("vigil_relay_refused_total{code=\"storage-full\"} 4\n"));
        // A label value can never break out of its quotes.
        assert!(text.contains("vigil_relay_refused_total{code=\"ratelimited\"} 1\n"));
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP vigil_relay_")
                        || line.starts_with("# TYPE vigil_relay_"),
                    "{line}"
                );
                continue;
            }
            // name{labels} value: the value parses, the only label is `code`.
            let (name, value) = line.rsplit_once(' ').expect("name and value");
            value.parse::<u64>().expect("a number");
            assert!(name.starts_with("vigil_relay_"), "{line}");
            if let Some(i) = name.find('{') {
                assert!(name[i..].starts_with("{code=\""), "{line}");
            }
        }
    }

    #[tokio::test]
    async fn the_endpoint_answers_metrics_and_nothing_else() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, sample, cancel.clone()));
        let ask = |req: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            // The relay may close before a too-long request is all written.
            let _ = s.write_all(req.as_bytes()).await;
            let mut out = String::new();
            let _ = s.read_to_string(&mut out).await;
            out
        };
        let ok = ask("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"));
        assert!(ok.contains("vigil_relay_deposits_stored_total 7"));
        assert!(ask("GET /mailboxes HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 404"));
        assert!(ask("POST /metrics HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 405"));
        let long = Box::leak(
            format!(
                "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
                "a".repeat(MAX_HEAD * 2)
            )
            .into_boxed_str(),
        );
        let too_long = ask(long).await;
        assert!(
            too_long.starts_with("HTTP/1.1 400") || too_long.is_empty(),
            "{too_long}"
        );
        cancel.cancel();
        task.await.unwrap();
    }
}
