//! Per-source-address limits, held in memory only.
//!
//! Source addresses are the one thing about reporters the relay necessarily sees. They are used
//! here as map keys and nowhere else: never written to disk, never logged, never in stats, and
//! forgotten when the process exits (or sooner, when an entry is idle and the map is full).
//! IPv6 addresses are grouped by /64, because one host usually controls a whole /64.
//!
//! Carrier-grade NAT puts many mobile users behind one IPv4 address; the defaults are set so a
//! handful of reporters sharing an address are not refused (see `docs/operations.md`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The key an address is counted under: IPv4-mapped IPv6 as IPv4, other IPv6 by /64.
pub(crate) fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per address.
pub(crate) struct PerAddress {
    counts: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

/// One counted connection; uncounted on drop.
pub(crate) struct AddrPermit {
    owner: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddrPermit {
    fn drop(&mut self) {
        if let Ok(mut m) = self.owner.counts.lock() {
            if let Some(n) = m.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.key);
                }
            }
        }
    }
}

impl PerAddress {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::new(HashMap::new()),
            max,
        })
    }

    /// Count one more connection from `ip`, unless it already has `max`.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddrPermit> {
        let key = addr_key(ip);
        let mut m = self.counts.lock().ok()?;
        let n = m.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddrPermit {
            owner: self.clone(),
            key,
        })
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per address: `capacity` requests at once, refilled at `per_sec`.
pub(crate) struct TokenBuckets {
    map: Mutex<HashMap<IpAddr, Bucket>>,
    capacity: f64,
    per_sec: f64,
    max_entries: usize,
}

impl TokenBuckets {
    pub(crate) fn new(capacity: u32, per_sec: f64, max_entries: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity: f64::from(capacity.max(1)),
            per_sec: per_sec.max(f64::MIN_POSITIVE),
            max_entries: max_entries.max(1),
        }
    }

    /// Take a token for `ip` at `now`; false when its bucket is empty.
    pub(crate) fn try_take(&self, ip: IpAddr, now: Instant) -> bool {
        let key = addr_key(ip);
        let Ok(mut m) = self.map.lock() else {
            return true;
        };
        if m.len() >= self.max_entries && !m.contains_key(&key) {
            // Forget buckets that have refilled: they are the same as no entry.
            let (cap, rate) = (self.capacity, self.per_sec);
            m.retain(|_, b| refill(b, now, cap, rate) < cap);
            if m.len() >= self.max_entries {
                // Still full of active addresses: start over rather than grow without bound
                // or lock every new address out.
                tracing::warn!("rate-limit table full; forgetting all entries");
                m.clear();
            }
        }
        let b = m.entry(key).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        let tokens = refill(b, now, self.capacity, self.per_sec);
        if tokens >= 1.0 {
            *b = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            true
        } else {
            *b = Bucket { tokens, at: now };
            false
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

fn refill(b: &Bucket, now: Instant, capacity: f64, per_sec: f64) -> f64 {
    let dt = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + dt * per_sec).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_v4_is_v4() {
        assert_eq!(addr_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(addr_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(addr_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn per_address_counts_and_releases() {
        let p = PerAddress::new(2);
        let a = p.try_acquire(ip("192.0.2.1")).unwrap();
        let _b = p.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(p.try_acquire(ip("192.0.2.1")).is_none());
        assert!(p.try_acquire(ip("192.0.2.2")).is_some());
        drop(a);
        assert!(p.try_acquire(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t = TokenBuckets::new(3, 1.0, 100);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.try_take(ip("192.0.2.1"), now));
        }
        assert!(!t.try_take(ip("192.0.2.1"), now));
        assert!(
            t.try_take(ip("192.0.2.2"), now),
            "other addresses unaffected"
        );
        let later = now + Duration::from_millis(1100);
        assert!(t.try_take(ip("192.0.2.1"), later));
        assert!(!t.try_take(ip("192.0.2.1"), later));
    }

    #[test]
    fn table_stays_bounded() {
        let t = TokenBuckets::new(2, 1.0, 16);
        let now = Instant::now();
        for i in 0..100u32 {
            let a = IpAddr::from(i.to_be_bytes());
            assert!(t.try_take(a, now));
        }
        assert!(t.len() <= 16);
    }
}
