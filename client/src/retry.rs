//! When to try again: exponential backoff with full jitter, bounded by a total time budget.
//!
//! Pure logic, no clock and no sleeping: the caller says how long it has been trying and passes
//! the random source, so the schedule is tested with a seeded RNG and the shell
//! (`commands::outbox`) does the waiting.
//!
//! Full jitter (the delay before retry `n` is uniform in `0 ..= min(cap, base × 2^n)`) spreads
//! the retries of many phones that lost the same relay at the same moment (a relay restart, a
//! cell tower handover), so they do not come back in lock step and knock it over again.

use rand::Rng;
use std::time::Duration;

/// How long `vigil report send` and `vigil outbox flush` keep trying on a terminal by default.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(120);
/// Upper bound of the first delay.
pub const DEFAULT_BASE: Duration = Duration::from_millis(500);
/// Largest delay between two attempts: a reporter should not wait minutes for a relay that is
/// back already.
pub const DEFAULT_CAP: Duration = Duration::from_secs(20);

/// A retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of the delay before the first retry; doubles with every retry.
    pub base: Duration,
    /// The delay bound stops doubling here.
    pub cap: Duration,
    /// No retry starts later than this after the first attempt started. Zero: try once.
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::for_duration(DEFAULT_RETRY_FOR)
    }
}

impl RetryPolicy {
    /// Keep trying for `total` with the default base and cap.
    pub fn for_duration(total: Duration) -> Self {
        Self {
            base: DEFAULT_BASE,
            cap: DEFAULT_CAP,
            total,
        }
    }

    /// Try once, never retry.
    pub fn once() -> Self {
        Self::for_duration(Duration::ZERO)
    }

    /// Upper bound of the delay before retry number `retry` (0 for the first retry):
    /// `min(cap, base × 2^retry)`, without overflow.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry number `retry`, when `elapsed` has passed since the first attempt
    /// started; `None` once the budget is spent. The delay is drawn uniformly from
    /// `0 ..= ceiling(retry)` and shortened so the retry starts within the budget.
    pub fn delay(&self, retry: u32, elapsed: Duration, rng: &mut impl Rng) -> Option<Duration> {
        let remaining = self.total.checked_sub(elapsed).filter(|r| !r.is_zero())?;
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        let drawn = Duration::from_nanos(rng.gen_range(0..=ceiling));
        Some(drawn.min(remaining))
    }
}

/// Parse a duration as people write it: `90s`, `2m`, `1h`, `500ms`, `365d`, `52w`, or a bare
/// number of seconds.
/// Units may be combined (`1m30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration; write e.g. 90s, 2m, 1h, 500ms, 365d or 52w");
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let (num, tail) = rest.split_at(digits);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            "w" => Duration::from_secs(n.saturating_mul(7 * 86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
        rest = tail;
    }
    Ok(total)
}

/// `1m40s`, `12.5s`, `300ms`: short and exact enough for progress lines.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m{r}s", s / 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn policy(total_secs: u64) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            total: Duration::from_secs(total_secs),
        }
    }

    #[test]
    fn ceiling_doubles_then_stays_at_the_cap() {
        let p = policy(120);
        let ceilings: Vec<u128> = (0..8).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(
            ceilings,
            vec![500, 1000, 2000, 4000, 8000, 16000, 20000, 20000]
        );
        assert_eq!(p.ceiling(u32::MAX), p.cap, "no overflow on huge counts");
        assert_eq!(p.ceiling(40), p.cap);
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_are_spread_out() {
        let p = policy(3600);
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 0..10 {
            let mut seen = Vec::new();
            for _ in 0..200 {
                let d = p
                    .delay(retry, Duration::ZERO, &mut rng)
                    .expect("budget left");
                assert!(d <= p.ceiling(retry), "retry {retry}: {d:?}");
                seen.push(d);
            }
            // Full jitter: both halves of the range are used, so clients do not synchronise.
            let half = p.ceiling(retry) / 2;
            assert!(seen.iter().any(|d| *d < half), "retry {retry}");
            assert!(seen.iter().any(|d| *d > half), "retry {retry}");
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let p = policy(120);
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..6)
                .map(|n| p.delay(n, Duration::ZERO, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn the_budget_bounds_the_schedule() {
        let p = policy(10);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(p.delay(0, Duration::from_secs(10), &mut rng), None);
        assert_eq!(p.delay(0, Duration::from_secs(11), &mut rng), None);
        // Near the end the delay is cut to what is left.
        for _ in 0..100 {
            let d = p
                .delay(10, Duration::from_millis(9_900), &mut rng)
                .expect("100 ms left");
            assert!(d <= Duration::from_millis(100), "{d:?}");
        }
        // Simulated run: sleeping the drawn delays (attempts take 1 s each) ends within budget.
        let mut elapsed = Duration::ZERO;
        let mut retries = 0;
        while let Some(d) = p.delay(retries, elapsed, &mut rng) {
            elapsed += d + Duration::from_secs(1);
            retries += 1;
        }
        assert!(retries >= 2, "{retries}");
        assert!(elapsed <= p.total + Duration::from_secs(1), "{elapsed:?}");
    }

    #[test]
    fn once_never_retries() {
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(RetryPolicy::once().delay(0, Duration::ZERO, &mut rng), None);
    }

    #[test]
    fn durations_parse_as_written() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("365d"),
            Ok(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(
            parse_duration("52w"),
            Ok(Duration::from_secs(52 * 7 * 86_400))
        );
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        for bad in ["", "s", "2x", "-1s", "1.5s", "m2", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_format_briefly() {
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(format_duration(Duration::from_millis(12_500)), "12.5s");
        assert_eq!(format_duration(Duration::from_secs(100)), "1m40s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
