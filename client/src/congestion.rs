//! The client's congestion control: quinn's BBR and Cubic side by side, sending by the larger
//! of their two windows.
//!
//! Uploads go from the client to the relay, so the client's congestion controller sets their
//! pace, and reporters' links range from a lossy mobile radio to a relay on the same host.
//! Neither of quinn's controllers does well on both:
//!
//! * Cubic (quinn's default) reads every lost datagram as congestion and halves its window.
//!   On a radio link with random loss it crawls: a 1 MiB report took about 90 s at 10 % loss and
//!   300 ms round trip (`tests/lossy.rs`).
//! * BBR (experimental in quinn 0.11) ignores random loss and took about 5 s on that link. But
//!   its window is a multiple of the measured bandwidth times the *minimum* round trip, and on a
//!   LAN or loopback the minimum round trip is tens of microseconds while a busy receiver answers
//!   in a millisecond or more: the window collapses to a few packets and a 16 MiB upload ran at
//!   less than half the speed Cubic reaches there (`vigil-bench`, upload figure).
//!
//! Both controllers see every event, and the connection may have in flight whatever the larger
//! window allows. Under random loss Cubic shrinks and BBR's window rules; on a fast, short link
//! BBR's collapses and Cubic's rules. The result is never more cautious than either controller
//! alone and never more aggressive than the more aggressive of the two, both of which are
//! standard, widely deployed algorithms; nothing here computes a window of its own.

use quinn::congestion::{BbrConfig, Controller, ControllerFactory, ControllerMetrics, CubicConfig};
use quinn_proto::RttEstimator;
use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

/// Builds [`Larger`] controllers for each connection.
#[derive(Debug, Default)]
pub struct LargerOfBbrAndCubic {
    bbr: Arc<BbrConfig>,
    cubic: Arc<CubicConfig>,
}

impl ControllerFactory for LargerOfBbrAndCubic {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(Larger {
            bbr: self.bbr.clone().build(now, current_mtu),
            cubic: self.cubic.clone().build(now, current_mtu),
        })
    }
}

/// Two controllers fed the same events; the window is the larger of theirs.
struct Larger {
    bbr: Box<dyn Controller>,
    cubic: Box<dyn Controller>,
}

impl Controller for Larger {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.bbr.on_sent(now, bytes, last_packet_number);
        self.cubic.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.bbr.on_ack(now, sent, bytes, app_limited, rtt);
        self.cubic.on_ack(now, sent, bytes, app_limited, rtt);
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.bbr
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
        self.cubic
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.bbr
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
        self.cubic
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.bbr.on_mtu_update(new_mtu);
        self.cubic.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        self.bbr.window().max(self.cubic.window())
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut m = ControllerMetrics::default();
        m.congestion_window = self.window();
        m
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(Larger {
            bbr: self.bbr.clone_box(),
            cubic: self.cubic.clone_box(),
        })
    }

    fn initial_window(&self) -> u64 {
        self.bbr.initial_window().max(self.cubic.initial_window())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A stand-in controller: a window set from outside, and a count of the events it saw.
    #[derive(Clone)]
    struct Fixed {
        window: Arc<AtomicU64>,
        events: Arc<AtomicU64>,
    }

    impl Controller for Fixed {
        fn on_sent(&mut self, _: Instant, _: u64, _: u64) {
            self.events.fetch_add(1, Ordering::Relaxed);
        }
        fn on_end_acks(&mut self, _: Instant, _: u64, _: bool, _: Option<u64>) {
            self.events.fetch_add(1, Ordering::Relaxed);
        }
        fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, _: u64) {
            self.events.fetch_add(1, Ordering::Relaxed);
        }
        fn on_mtu_update(&mut self, _: u16) {
            self.events.fetch_add(1, Ordering::Relaxed);
        }
        fn window(&self) -> u64 {
            self.window.load(Ordering::Relaxed)
        }
        fn clone_box(&self) -> Box<dyn Controller> {
            Box::new(self.clone())
        }
        fn initial_window(&self) -> u64 {
            self.window()
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any> {
            self
        }
    }

    fn fixed(w: u64) -> Fixed {
        Fixed {
            window: Arc::new(AtomicU64::new(w)),
            events: Arc::default(),
        }
    }

    #[test]
    fn both_see_every_event_and_the_larger_window_wins() {
        let (a, b) = (fixed(10_000), fixed(50_000));
        let mut l = Larger {
            bbr: Box::new(a.clone()),
            cubic: Box::new(b.clone()),
        };
        assert_eq!((l.window(), l.initial_window()), (50_000, 50_000));
        // Random loss shrinks Cubic below BBR: BBR's window rules.
        b.window.store(2_400, Ordering::Relaxed);
        assert_eq!(l.window(), 10_000);
        assert_eq!(l.metrics().congestion_window, 10_000);
        let now = Instant::now();
        l.on_sent(now, 1200, 1);
        l.on_end_acks(now + Duration::from_millis(1), 0, false, Some(1));
        l.on_congestion_event(now, now, false, 1200);
        l.on_mtu_update(1400);
        assert_eq!(a.events.load(Ordering::Relaxed), 4);
        assert_eq!(b.events.load(Ordering::Relaxed), 4);
        assert_eq!(l.clone_box().window(), 10_000);
    }

    #[test]
    fn the_factory_builds_both_of_quinns_controllers() {
        let f = Arc::new(LargerOfBbrAndCubic::default());
        let c = f.build(Instant::now(), 1200);
        let bbr = Arc::new(BbrConfig::default()).build(Instant::now(), 1200);
        let cubic = Arc::new(CubicConfig::default()).build(Instant::now(), 1200);
        assert_eq!(c.window(), bbr.window().max(cubic.window()));
        assert!(c.into_any().downcast::<Larger>().is_ok());
    }
}
