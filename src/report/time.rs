//! The times a report may give for `occurred_at`: RFC 3339 dates and date-times, and the partial
//! dates people need when they do not know the day. Hand-written because the grammar is small
//! and the core has no date library; it only checks, it converts nothing.

/// Whether `s` is a time a report may give for `occurred_at`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
/// or a date and a time `THH:MM[:SS[.fraction]]` with `Z` or an offset `±HH:MM` (RFC 3339, with
/// the partial dates people need when they do not know the day). The date must exist.
pub fn is_report_time(s: &str) -> bool {
    fn num(s: &str, len: usize, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().filter(|v| range.contains(v))
    }
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let Some(year) = parts.first().and_then(|y| num(y, 4, 1..=9999)) else {
        return false;
    };
    let month = match parts.get(1) {
        None => return parts.len() == 1 && time.is_none(),
        Some(m) => match num(m, 2, 1..=12) {
            Some(m) => m,
            None => return false,
        },
    };
    let Some(day) = parts.get(2) else {
        return parts.len() == 2 && time.is_none();
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if parts.len() != 3 || num(day, 2, 1..=days).is_none() {
        return false;
    }
    let Some(time) = time else {
        return true;
    };
    // The zone: Z, or +HH:MM / -HH:MM.
    let (clock, zone) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, None)
    } else if time.len() > 6 && matches!(time.as_bytes()[time.len() - 6], b'+' | b'-') {
        let (c, z) = time.split_at(time.len() - 6);
        (c, Some(&z[1..]))
    } else {
        return false;
    };
    if let Some(z) = zone {
        let Some((h, m)) = z.split_once(':') else {
            return false;
        };
        if num(h, 2, 0..=23).is_none() || num(m, 2, 0..=59).is_none() {
            return false;
        }
    }
    let (clock, fraction) = match clock.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (clock, None),
    };
    if fraction
        .is_some_and(|f| f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let hms: Vec<&str> = clock.split(':').collect();
    match hms.as_slice() {
        [h, m] if fraction.is_none() => num(h, 2, 0..=23).is_some() && num(m, 2, 0..=59).is_some(),
        [h, m, sec] => {
            num(h, 2, 0..=23).is_some()
                && num(m, 2, 0..=59).is_some()
                && num(sec, 2, 0..=60).is_some()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_times_are_real_dates_and_may_be_partial() {
        for ok in [
            "2024",
            "2024-02",
            "2024-02-29",
            "2023-12-31T23:59+03:00",
            "2024-02-20T10:00:00+03:00",
            "2024-02-20T10:00:00Z",
            "2024-02-20T10:00:00.250-05:30",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(is_report_time(ok), "{ok}");
        }
        for bad in [
            "",
            "yesterday",
            "2023-02-29",
            "2024-13-01",
            "2024-04-31",
            "24-01-01",
            "2024-1-1",
            "2024-02-20T25:00:00Z",
            "2024-02-20T10:00:00",
            "2024-02-20T10:00:00+3:00",
            "2024-02T10:00Z",
            "2024-02-20 10:00:00Z",
            "2024-02-20T10:00:00.Z",
            "２０２４",
        ] {
            assert!(!is_report_time(bad), "{bad}");
        }
    }
}
