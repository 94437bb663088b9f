//! Per-source-address limits, held in memory only.
//!
//! Source addresses are the one thing about reporters the relay necessarily sees. They are used
//! here as map keys and nowhere else: never written to disk, never logged, never in stats, and
//! forgotten when the process exits (or sooner, when the map is full and an entry is the one
//! used least recently).
//! IPv6 addresses are grouped by /64, because one host usually controls a whole /64.
//!
//! Carrier-grade NAT puts many mobile users behind one IPv4 address; the defaults are set so a
//! handful of reporters sharing an address are not refused (see `docs/operations.md`).

use std::collections::{HashMap, VecDeque};
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
    /// When the entry was last used, in [`Table::clock`] ticks: its place in the LRU order.
    used: u64,
}

/// The buckets and their use order. `order` lists `(address, tick)` in the order of use, oldest
/// first; an element whose tick no longer matches its bucket's `used` is stale (the address was
/// used again since) and is skipped. So a use is O(1) (push a tick) and an eviction is amortised
/// O(1) (pop stale elements until a current one); `order` is compacted when stale elements
/// outnumber the live ones, so it stays within twice the table's bound.
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    order: VecDeque<(IpAddr, u64)>,
    clock: u64,
}

impl Table {
    /// Evict the least recently used entry; false if there was none to evict.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, tick)) = self.order.pop_front() {
            if self.buckets.get(&key).is_some_and(|b| b.used == tick) {
                self.buckets.remove(&key);
                return true;
            }
        }
        false
    }

    /// Record a use of `key` (already in `buckets`).
    fn touch(&mut self, key: IpAddr) {
        self.clock += 1;
        let tick = self.clock;
        if let Some(b) = self.buckets.get_mut(&key) {
            b.used = tick;
        }
        self.order.push_back((key, tick));
        if self.order.len() > 2 * self.buckets.len() + 16 {
            let buckets = &self.buckets;
            self.order
                .retain(|(k, t)| buckets.get(k).is_some_and(|b| b.used == *t));
        }
    }
}

/// A token bucket per address: `capacity` requests at once, refilled at `per_sec`.
///
/// The table holds at most `max_entries` addresses; a new address beyond that evicts the one
/// used least recently. An attacker with many addresses can then only push out addresses that
/// have been quiet longer than all of his — never reset the bucket of one that is busy now (the
/// table used to be cleared wholesale when it was full, which reset everyone's limits).
pub(crate) struct TokenBuckets {
    table: Mutex<Table>,
    capacity: f64,
    per_sec: f64,
    max_entries: usize,
}

impl TokenBuckets {
    pub(crate) fn new(capacity: u32, per_sec: f64, max_entries: usize) -> Self {
        Self {
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                order: VecDeque::new(),
                clock: 0,
            }),
            capacity: f64::from(capacity.max(1)),
            per_sec: per_sec.max(f64::MIN_POSITIVE),
            max_entries: max_entries.max(1),
        }
    }

    /// Take a token for `ip` at `now`; false when its bucket is empty.
    pub(crate) fn try_take(&self, ip: IpAddr, now: Instant) -> bool {
        let key = addr_key(ip);
        let Ok(mut t) = self.table.lock() else {
            return true;
        };
        if !t.buckets.contains_key(&key) {
            while t.buckets.len() >= self.max_entries {
                if !t.evict_oldest() {
                    // Every bucket has a current element in `order`; never loop if not.
                    t.buckets.clear();
                }
            }
            t.buckets.insert(
                key,
                Bucket {
                    tokens: self.capacity,
                    at: now,
                    used: 0,
                },
            );
        }
        t.touch(key);
        let Some(b) = t.buckets.get_mut(&key) else {
            return true;
        };
        let tokens = refill(b, now, self.capacity, self.per_sec);
        b.at = now;
        if tokens >= 1.0 {
            b.tokens = tokens - 1.0;
            true
        } else {
            b.tokens = tokens;
            false
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().map(|t| t.buckets.len()).unwrap_or(0)
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

    /// Issue 11: an attacker with many addresses must not reset a busy address's bucket by
    /// filling the table (the old table was cleared wholesale when full of active entries).
    #[test]
    fn filling_the_table_does_not_reset_a_hot_address() {
        // A rate so slow nothing refills during the test.
        let t = TokenBuckets::new(2, 1e-6, 16);
        let now = Instant::now();
        let hot = ip("192.0.2.200");
        assert!(t.try_take(hot, now));
        assert!(t.try_take(hot, now));
        assert!(!t.try_take(hot, now), "burst spent");
        for i in 0..1000u32 {
            let a = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            assert!(t.try_take(a, now), "a fresh address gets its burst");
            assert!(
                !t.try_take(hot, now),
                "hot address still limited after {i} fresh ones"
            );
        }
        assert!(t.len() <= 16);
    }

    #[test]
    fn the_least_recently_used_address_is_forgotten_first() {
        let t = TokenBuckets::new(1, 1e-6, 16);
        let now = Instant::now();
        for i in 0..16u32 {
            assert!(t.try_take(IpAddr::from(i.to_be_bytes()), now));
        }
        // Touch address 0 again: address 1 is now the least recently used.
        assert!(!t.try_take(IpAddr::from(0u32.to_be_bytes()), now));
        assert!(t.try_take(ip("192.0.2.1"), now));
        assert!(
            t.try_take(IpAddr::from(1u32.to_be_bytes()), now),
            "address 1 was evicted, so it starts afresh"
        );
        assert!(
            !t.try_take(IpAddr::from(0u32.to_be_bytes()), now),
            "address 0 was kept"
        );
    }
}
