//! Unix seconds as calendar dates and times in UTC, for messages people read. The proleptic
//! Gregorian calendar from days since the epoch (Howard Hinnant's `civil_from_days`); no clock
//! and no time-zone database, so it belongs in the pure core and every program shows times the
//! same way.

/// A moment in UTC, broken into its calendar parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year (1970 or later).
    pub year: i64,
    /// Month, 1 ..= 12.
    pub month: u32,
    /// Day of the month, 1 ..= 31.
    pub day: u32,
    /// Hour, 0 ..= 23.
    pub hour: u32,
    /// Minute, 0 ..= 59.
    pub minute: u32,
    /// Second, 0 ..= 59.
    pub second: u32,
}

impl Civil {
    /// The calendar parts of `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: u64) -> Self {
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            // Both are small and positive by construction.
            month: month as u32,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// `2026-12-03 17:47 UTC`: a Unix time as people read it in messages.
pub fn format_utc(secs: u64) -> String {
    let c = Civil::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        c.year, c.month, c.day, c.hour, c.minute
    )
}

/// `2026-12-03T17:47:05Z`: a Unix time as RFC 3339, for files other programs read.
pub fn format_rfc3339(secs: u64) -> String {
    let c = Civil::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_the_calendar_has_them() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_708_423_200), "2024-02-20 10:00 UTC");
        assert_eq!(format_rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
