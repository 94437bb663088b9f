//! `vigil-bench --smoke --json` runs and prints every headline key as a number. No timing
//! thresholds: figures from tiny sizes on a shared machine mean nothing.

use std::process::Command;

const KEYS: &[&str] = &[
    "ingest_reports_per_s",
    "ingest_ratio_vs_raw_sled",
    "ingest_ratio_vs_ceiling",
    "store_us_per_report",
    "deposit_p99_ms",
    "encrypt_ratio_vs_age",
    "decrypt_ratio_vs_age",
    "upload_ratio_vs_raw_quinn",
    "relay_rss_mib_per_1k_idle_conns",
    "idle_conn_mem_ratio_vs_raw_quinn",
    "fetch_ratio_big_vs_small_store",
    "upload_client_peak_rss_mib",
    "upload_relay_peak_rss_mib",
    "blobs_relay_peak_rss_mib",
    "attachment_upload_ratio_vs_raw_quinn",
    "attachment_peak_rss_mib",
    "attachment_peak_rss_mib_client",
    "attachment_peak_rss_mib_relay",
    "attachment_peak_rss_mib_fetch",
    "resume_resent_bytes",
    "idle_conns_measured_low",
    "idle_conns_measured_high",
    "live_inbox_latency_ms_p50",
    "live_inbox_latency_ms_p99",
    "tcp_fallback_connect_ms",
    "tcp_connect_ms",
    "quic_connect_ms",
];

/// Keys made from the sample reports in `../shared`: required when they are there or under CI.
const SHARED_KEYS: &[&str] = &["padding_overhead_ratio", "padding_overhead_ratio_vs_v2"];

#[test]
fn smoke_json_has_every_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-bench"))
        .args(["--smoke", "--json"])
        .output()
        .expect("run vigil-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vigil-bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got: {stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("valid JSON");
    let obj = v.as_object().expect("a JSON object");
    for key in KEYS {
        let n = obj.get(*key).unwrap_or_else(|| panic!("missing {key}"));
        assert!(n.is_number(), "{key} is not a number: {n}");
    }
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/reports")
        .is_dir();
    if shared || std::env::var("CI").is_ok_and(|v| v == "true") {
        for key in SHARED_KEYS {
            assert!(
                obj.get(*key).is_some_and(|n| n.is_number()),
                "missing {key}"
            );
        }
    } else {
        println!("SKIPPED {SHARED_KEYS:?}: no ../shared/fixtures/reports");
    }
    for (k, n) in obj {
        assert!(n.is_number(), "{k} is not a number: {n}");
    }
}
