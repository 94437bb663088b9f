//! The figures of one run: a JSON object of numbers, or a table for people.

use serde_json::{Map, Number, Value};

/// Headline keys with their goals, in table order: (key, goal text, met?).
type Goal = (&'static str, &'static str, fn(f64) -> bool);

pub const HEADLINES: &[Goal] = &[
    ("ingest_reports_per_s", "as high as it goes", |_| true),
    ("ingest_ratio_vs_raw_sled", ">= 0.8", |v| v >= 0.8),
    ("ingest_ratio_vs_ceiling", ">= 0.9", |v| v >= 0.9),
    ("store_us_per_report", "<= 60", |v| v <= 60.0),
    ("deposit_p99_ms", "< 10", |v| v < 10.0),
    ("encrypt_ratio_vs_age", ">= 1.5", |v| v >= 1.5),
    ("decrypt_ratio_vs_age", ">= 1.5", |v| v >= 1.5),
    ("upload_ratio_vs_raw_quinn", ">= 0.7", |v| v >= 0.7),
    ("relay_rss_mib_per_1k_idle_conns", "< 45", |v| v < 45.0),
    ("idle_conn_mem_ratio_vs_raw_quinn", "<= 1.3", |v| v <= 1.3),
    ("fetch_ratio_big_vs_small_store", "<= 2", |v| v <= 2.0),
    ("upload_client_peak_rss_mib", "reported", |_| true),
    ("upload_relay_peak_rss_mib", "reported", |_| true),
    ("blobs_relay_peak_rss_mib", "< 64", |v| v < 64.0),
    ("attachment_upload_ratio_vs_raw_quinn", "reported", |_| true),
    ("attachment_peak_rss_mib_client", "< 64", |v| v < 64.0),
    ("attachment_peak_rss_mib_relay", "< 64", |v| v < 64.0),
    ("attachment_peak_rss_mib_fetch", "< 64", |v| v < 64.0),
    ("resume_resent_bytes", "<= 1 MiB", |v| v <= 1_048_576.0),
];

#[derive(Default)]
pub struct Report(Map<String, Value>);

impl Report {
    /// Record a figure, rounded to 4 decimals. A figure that is not finite (a phase measured
    /// nothing) is recorded as -1 with a warning, so the output stays numbers only.
    pub fn set(&mut self, key: &str, v: f64) {
        let v = if v.is_finite() {
            (v * 1e4).round() / 1e4
        } else {
            eprintln!("vigil-bench: warning: {key} is not a finite number; recorded as -1");
            -1.0
        };
        let n = Number::from_f64(v).unwrap_or_else(|| Number::from(-1));
        self.0.insert(key.to_string(), Value::Number(n));
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.get(key).and_then(Value::as_f64)
    }

    pub fn json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn table(&self) -> String {
        let mut s = format!("{:<36} {:>12}  {:<20} {}\n", "figure", "value", "goal", "");
        for (key, goal, ok) in HEADLINES {
            match self.get(key) {
                Some(v) => {
                    let mark = if ok(v) { "met" } else { "MISSED" };
                    s += &format!("{key:<36} {v:>12.3}  {goal:<20} {mark}\n");
                }
                None => s += &format!("{key:<36} {:>12}  {goal:<20} not run\n", "-"),
            }
        }
        s += "\ndetails\n";
        for (k, v) in &self.0 {
            if !HEADLINES.iter().any(|(h, _, _)| h == k) {
                s += &format!("  {k:<40} {v}\n");
            }
        }
        s
    }
}

impl Report {
    /// Add every figure of `other`.
    pub fn merge(&mut self, other: Report) {
        self.0.extend(other.0);
    }
}
