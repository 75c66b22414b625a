//! Congestion control for a chat client: CUBIC, with a send window that never falls below a
//! floor.
//!
//! A chat client sends little: messages and requests of a few hundred bytes at the pace a
//! person types (and the server's rate limit allows). What congestion control protects
//! against, a sender overrunning a bottleneck, cannot come from that. But after an outage
//! QUIC's window works against it: everything sent during the blackout (messages, keep-alives,
//! probes) stays counted as in flight until an acknowledgement arrives, and when one does, the
//! persistent congestion it reveals collapses the window to two packets. A window that small
//! is full before the link comes back, so the packet that would tell the server the path works
//! again (a ping from a fresh socket, see [`path`](crate::path)) waits for the client's own
//! probe timer, which by then has backed off to seconds.
//!
//! So the client keeps CUBIC for everything above the floor, and never lets its window drop
//! below [`ClientBuilder::min_send_window`](crate::ClientBuilder::min_send_window): room for
//! what a person sends during a long tunnel, plus the probes. The server's windows are
//! untouched: it is the side that sends in volume.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics, CubicConfig};
use quinn_proto::RttEstimator;

/// Builds [`FloorCubic`] controllers.
#[derive(Debug)]
pub(crate) struct FloorCubicConfig {
    cubic: Arc<CubicConfig>,
    floor: u64,
}

impl FloorCubicConfig {
    /// CUBIC with its defaults, and a window of at least `floor` bytes.
    pub(crate) fn new(floor: u64) -> Self {
        Self { cubic: Arc::new(CubicConfig::default()), floor }
    }
}

impl ControllerFactory for FloorCubicConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        let inner = self.cubic.clone().build(now, current_mtu);
        Box::new(FloorCubic { inner, floor: self.floor })
    }
}

/// CUBIC whose window is never reported below a floor.
struct FloorCubic {
    inner: Box<dyn Controller>,
    floor: u64,
}

impl Controller for FloorCubic {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.inner.on_ack(now, sent, bytes, app_limited, rtt);
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner.on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.inner.on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu);
    }

    fn window(&self) -> u64 {
        self.inner.window().max(self.floor)
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut metrics = self.inner.metrics();
        metrics.congestion_window = self.window();
        metrics
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(Self { inner: self.inner.clone_box(), floor: self.floor })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window().max(self.floor)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_follows_cubic_above_the_floor_and_stops_at_it() {
        let now = Instant::now();
        let floor = 32 * 1024;
        let mut controller = Arc::new(FloorCubicConfig::new(floor)).build(now, 1200);
        let initial = controller.window();
        assert!(initial >= floor);
        assert_eq!(controller.initial_window(), initial);
        // An outage: CUBIC alone would drop to its minimum of two packets.
        controller.on_congestion_event(now, now, true, 10_000);
        assert_eq!(controller.window(), floor);
        assert_eq!(controller.metrics().congestion_window, floor);
        assert_eq!(controller.clone_box().window(), floor);

        // A floor below CUBIC's window changes nothing until losses bring it down.
        let mut plain = Arc::new(CubicConfig::default()).build(now, 1200);
        let mut low = Arc::new(FloorCubicConfig::new(1)).build(now, 1200);
        assert_eq!(low.window(), plain.window());
        plain.on_congestion_event(now, now, false, 1200);
        low.on_congestion_event(now, now, false, 1200);
        assert_eq!(low.window(), plain.window());
    }
}
