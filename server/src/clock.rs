//! The relay's one clock. Everything below it (the core's policy functions, the stores) takes
//! the time as an argument, so it can be tested without waiting.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now; a clock before 1970 counts as 0.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
