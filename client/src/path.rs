//! Watching the network path of a live connection, and probing it when it goes quiet.
//!
//! QUIC finds out about a dead path slowly: a lost packet is probed again after a timeout that
//! doubles each time (the PTO back-off), so after a blackout of a few seconds both ends may wait
//! several more seconds before they try again, and then the idle timeout ends the connection.
//! On a phone the path often comes back (a tunnel ends, the radio reattaches) long before that.
//!
//! So the client watches the connection's counters. When it sent something that needs an
//! answer (anything but acknowledgements) and has heard nothing for
//! [`ClientBuilder::path_probe_after`](crate::ClientBuilder::path_probe_after), the path is
//! *suspect*, and the client probes it every
//! [`ClientBuilder::path_probe_interval`](crate::ClientBuilder::path_probe_interval) by moving
//! the connection to a fresh UDP socket (a rebind). A rebind makes quinn send a packet at once,
//! outside its back-off, and the server answers a packet from a new address with a path
//! challenge: the first probe that gets through brings the server's acknowledgements, its
//! loss detection retransmits what the blackout ate, and traffic flows again within about one
//! round trip of the link coming back, instead of after the next PTO. Counting only
//! unanswered *ack-eliciting* packets means a quiet but healthy connection is never probed:
//! every such packet is acknowledged within a round trip plus the peer's ack delay.
//!
//! [`Client::network_changed`](crate::Client::network_changed) rebinds at once and, if nothing
//! arrives within
//! [`ClientBuilder::network_change_timeout`](crate::ClientBuilder::network_change_timeout),
//! gives up on the connection and reconnects (resuming the session) instead of waiting for the
//! idle timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{Connection, ConnectionStats, FrameStats};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::connection::ConnShared;
use crate::connector::Connector;

/// How often the counters are read at most: fine enough that detection and probing are late
/// by a small fraction of their thresholds, coarse enough to cost nothing.
const MAX_TICK: Duration = Duration::from_millis(250);

/// The settings of path watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathSettings {
    /// Silence after an ack-eliciting packet before the path is suspect; `None` disables
    /// probing.
    pub(crate) probe_after: Option<Duration>,
    /// Time between probes while the path is suspect.
    pub(crate) probe_interval: Duration,
    /// After a network change, how long to wait for any packet before reconnecting.
    pub(crate) network_change_timeout: Duration,
}

/// What the path watcher should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathAction {
    /// Nothing.
    None,
    /// The path answered after probes: keep the socket that works.
    Settle,
    /// Probe the path (rebind).
    Probe,
    /// Give up on the connection and reconnect.
    Reconnect,
}

/// The path watcher's state: counters in, actions out.
#[derive(Debug, Clone)]
pub(crate) struct PathMonitor {
    settings: PathSettings,
    received: u64,
    eliciting_sent: u64,
    /// When the oldest ack-eliciting packet not followed by any received packet was seen.
    waiting_since: Option<Instant>,
    last_probe: Option<Instant>,
    /// After a network change: reconnect unless something arrives by then.
    network_deadline: Option<Instant>,
}

impl PathMonitor {
    /// A monitor for a connection whose counters are `received` datagrams and
    /// `eliciting_sent` ack-eliciting frames so far.
    pub(crate) fn new(settings: PathSettings, received: u64, eliciting_sent: u64) -> Self {
        Self {
            settings,
            received,
            eliciting_sent,
            waiting_since: None,
            last_probe: None,
            network_deadline: None,
        }
    }

    /// Takes new counter readings.
    pub(crate) fn sample(
        &mut self,
        now: Instant,
        received: u64,
        eliciting_sent: u64,
    ) -> PathAction {
        let sent = eliciting_sent != self.eliciting_sent;
        self.eliciting_sent = eliciting_sent;
        if received != self.received {
            // Something arrived: the path works. (If a new request went out in the same tick,
            // its answer is assumed to be on its way; the next one would catch it otherwise.)
            self.received = received;
            self.waiting_since = None;
            self.network_deadline = None;
            return match self.last_probe.take() {
                Some(_) => PathAction::Settle,
                None => PathAction::None,
            };
        }
        if sent && self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
        if self.network_deadline.is_some_and(|deadline| now >= deadline) {
            return PathAction::Reconnect;
        }
        let (Some(probe_after), Some(since)) = (self.settings.probe_after, self.waiting_since)
        else {
            return PathAction::None;
        };
        let suspect = now.duration_since(since) >= probe_after;
        let due = self
            .last_probe
            .is_none_or(|last| now.duration_since(last) >= self.settings.probe_interval);
        if suspect && due {
            self.last_probe = Some(now);
            return PathAction::Probe;
        }
        PathAction::None
    }

    /// The application said the network changed (and rebound); `received` and
    /// `eliciting_sent` are the counters now: only packets received from now on prove that
    /// the new path works.
    pub(crate) fn network_changed(&mut self, now: Instant, received: u64, eliciting_sent: u64) {
        self.received = received;
        self.eliciting_sent = eliciting_sent;
        self.network_deadline = Some(now + self.settings.network_change_timeout);
        self.last_probe = Some(now);
        self.waiting_since.get_or_insert(now);
    }

    /// How often to read the counters.
    pub(crate) fn tick(&self) -> Duration {
        let finest = [
            self.settings.probe_after,
            Some(self.settings.probe_interval),
            Some(self.settings.network_change_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(MAX_TICK);
        (finest / 4).clamp(Duration::from_millis(10), MAX_TICK)
    }
}

/// Ack-eliciting frames sent: every frame but acknowledgements and the connection close.
fn eliciting(frames: &FrameStats) -> u64 {
    let FrameStats {
        acks: _,
        connection_close: _,
        ack_frequency,
        crypto,
        data_blocked,
        datagram,
        handshake_done,
        immediate_ack,
        max_data,
        max_stream_data,
        max_streams_bidi,
        max_streams_uni,
        new_connection_id,
        new_token,
        path_challenge,
        path_response,
        ping,
        reset_stream,
        retire_connection_id,
        stream_data_blocked,
        streams_blocked_bidi,
        streams_blocked_uni,
        stop_sending,
        stream,
        ..
    } = *frames;
    [
        ack_frequency,
        crypto,
        data_blocked,
        datagram,
        u64::from(handshake_done),
        immediate_ack,
        max_data,
        max_stream_data,
        max_streams_bidi,
        max_streams_uni,
        new_connection_id,
        new_token,
        path_challenge,
        path_response,
        ping,
        reset_stream,
        retire_connection_id,
        stream_data_blocked,
        streams_blocked_bidi,
        streams_blocked_uni,
        stop_sending,
        stream,
    ]
    .into_iter()
    .fold(0u64, u64::saturating_add)
}

fn readings(stats: &ConnectionStats) -> (u64, u64) {
    (stats.udp_rx.datagrams, eliciting(&stats.frame_tx))
}

/// Watches one connection until it ends: probes a suspect path, and closes the connection
/// (for a reconnection) when a network change leaves it silent.
pub(crate) async fn watch(
    connection: Connection,
    conn: Arc<ConnShared>,
    connector: Arc<Connector>,
    settings: PathSettings,
    mut network_changes: watch::Receiver<u64>,
) {
    let (received, sent) = readings(&connection.stats());
    let mut monitor = PathMonitor::new(settings, received, sent);
    network_changes.mark_unchanged();
    let mut ticks = tokio::time::interval(monitor.tick());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = network_changes.changed() => {
                if changed.is_err() {
                    return;
                }
                // The application rebound already; wait for the path to answer.
                let (received, sent) = readings(&connection.stats());
                monitor.network_changed(Instant::now(), received, sent);
                continue;
            }
            _ = connection.closed() => return,
        }
        let (received, sent) = readings(&connection.stats());
        match monitor.sample(Instant::now(), received, sent) {
            PathAction::None => {}
            PathAction::Settle => connector.settle(),
            PathAction::Probe => match connector.probe() {
                Ok(addr) => debug!(%addr, "path quiet: probing from a new socket"),
                Err(error) => debug!(%error, "path quiet: cannot rebind to probe"),
            },
            PathAction::Reconnect => {
                info!("no answer since the network changed: reconnecting");
                conn.close(
                    &connection,
                    chatroom_protocol::CloseCode::GoingAway,
                    "network changed; resuming on a new connection",
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn settings() -> PathSettings {
        PathSettings {
            probe_after: Some(3000 * MS),
            probe_interval: 1000 * MS,
            network_change_timeout: 2000 * MS,
        }
    }

    #[test]
    fn a_quiet_healthy_connection_is_never_probed() {
        let t0 = Instant::now();
        let mut monitor = PathMonitor::new(settings(), 10, 10);
        for s in 1..60 {
            assert_eq!(monitor.sample(t0 + s * 1000 * MS, 10, 10), PathAction::None);
        }
        // Acknowledgements only (received messages): no answer expected, no probe.
        assert_eq!(monitor.sample(t0 + 70_000 * MS, 10, 10), PathAction::None);
    }

    #[test]
    fn an_unanswered_packet_makes_the_path_suspect_and_probes_repeat() {
        let t0 = Instant::now();
        let mut monitor = PathMonitor::new(settings(), 10, 10);
        assert_eq!(monitor.sample(t0, 10, 11), PathAction::None, "a keep-alive goes out");
        assert_eq!(monitor.sample(t0 + 2999 * MS, 10, 12), PathAction::None);
        assert_eq!(monitor.sample(t0 + 3000 * MS, 10, 12), PathAction::Probe);
        assert_eq!(monitor.sample(t0 + 3500 * MS, 10, 13), PathAction::None, "not yet due");
        assert_eq!(monitor.sample(t0 + 4000 * MS, 10, 13), PathAction::Probe);
        // Something arrives: healthy again, and a new silence starts from scratch.
        assert_eq!(monitor.sample(t0 + 4100 * MS, 11, 13), PathAction::Settle);
        assert_eq!(monitor.sample(t0 + 5000 * MS, 11, 14), PathAction::None);
        assert_eq!(monitor.sample(t0 + 7999 * MS, 11, 14), PathAction::None);
        assert_eq!(monitor.sample(t0 + 8000 * MS, 11, 14), PathAction::Probe);
    }

    #[test]
    fn a_network_change_reconnects_unless_the_path_answers() {
        let t0 = Instant::now();
        let mut monitor = PathMonitor::new(settings(), 10, 10);
        // What arrived before the change proves nothing about the new path.
        monitor.network_changed(t0, 12, 10);
        assert_eq!(monitor.sample(t0 + 1999 * MS, 12, 11), PathAction::None);
        assert_eq!(monitor.sample(t0 + 2000 * MS, 12, 11), PathAction::Reconnect);

        let mut monitor = PathMonitor::new(settings(), 10, 10);
        monitor.network_changed(t0, 10, 10);
        assert_eq!(monitor.sample(t0 + 100 * MS, 11, 11), PathAction::Settle, "answered");
        assert_eq!(monitor.sample(t0 + 5000 * MS, 11, 11), PathAction::None);
    }

    #[test]
    fn probing_can_be_disabled_and_ticks_follow_the_thresholds() {
        let t0 = Instant::now();
        let off = PathSettings { probe_after: None, ..settings() };
        let mut monitor = PathMonitor::new(off, 0, 0);
        assert_eq!(monitor.sample(t0, 0, 1), PathAction::None);
        assert_eq!(monitor.sample(t0 + 60_000 * MS, 0, 1), PathAction::None);
        assert_eq!(monitor.tick(), 250 * MS);
        let fast = PathSettings {
            probe_after: Some(200 * MS),
            probe_interval: 100 * MS,
            network_change_timeout: 300 * MS,
        };
        assert_eq!(PathMonitor::new(fast, 0, 0).tick(), 25 * MS);
    }

    #[test]
    fn acknowledgements_are_not_ack_eliciting() {
        let mut frames = FrameStats::default();
        frames.acks = 100;
        frames.connection_close = 1;
        frames.ping = 2;
        frames.stream = 3;
        assert_eq!(eliciting(&frames), 5);
    }
}
