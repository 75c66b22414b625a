//! What every member of a run does, whatever the server: receive tagged messages and count
//! them, and, for senders, publish. The chatroom and NATS specifics are in
//! [`crate::chatroom`] and [`crate::nats`]; the counting is here, so both are measured by the
//! same code.
//!
//! A run has *phases* (one for `fanout` and `latency`, one per rate step for `search`). Each
//! member's reader keeps a [`Tally`] of the current phase; at the end of a phase the driver
//! asks every reader for its tally ([`Control::Flush`]) and merges them. A message's phase
//! travels in its tag id, so a straggler from an earlier phase is not counted in a later one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chatroom_client::RequestError;
use chatroom_netsim::ledger::MessageTag;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Bits of a tag id below the phase.
const PHASE_SHIFT: u32 = 40;
/// Bits of a tag id below the sender.
const SENDER_SHIFT: u32 = 24;

/// The tag id of message `count` of `sender` in `phase`.
pub fn tag_id(phase: u32, sender: usize, count: u64) -> u64 {
    (u64::from(phase) << PHASE_SHIFT)
        | (((sender as u64) & 0xFFFF) << SENDER_SHIFT)
        | (count & ((1 << SENDER_SHIFT) - 1))
}

fn tag_phase(id: u64) -> u32 {
    (id >> PHASE_SHIFT) as u32
}

/// What the driver tells the readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Count the current phase.
    Run,
    /// Hand over the tally of this phase and count the next one.
    Flush(u32),
    /// Stop reading.
    Stop,
}

/// The run's clock and the counters the driver watches while a phase runs.
#[derive(Debug)]
pub struct Shared {
    /// Every time in the run is measured from here, on this process's clock.
    pub start: Instant,
    /// When the current phase's sending ends, in microseconds from `start`.
    pub send_end_us: AtomicU64,
    /// Messages of the current phase received, by all members.
    pub arrivals: AtomicU64,
    /// Tagged messages of any phase received: stragglers of an earlier phase too.
    pub any_arrivals: AtomicU64,
    /// Deliveries owed for the current phase's accepted messages: each message once per
    /// member of its room.
    pub expected: AtomicU64,
}

impl Shared {
    /// A run starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            send_end_us: AtomicU64::new(u64::MAX),
            arrivals: AtomicU64::new(0),
            any_arrivals: AtomicU64::new(0),
            expected: AtomicU64::new(0),
        }
    }

    /// The time since the start.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

/// What one member's reader counted in one phase; the sum over members is the phase's.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Messages of the phase received.
    pub deliveries: u64,
    /// Of those, received before the phase's sending ended.
    pub in_window: u64,
    /// Send-to-receive time of each delivery.
    pub latencies: Vec<Duration>,
    /// Deliveries whose text is not what the sender wrote.
    pub corrupt: u64,
    /// Gap events (chatroom only): the server shed messages for this member, or could not
    /// replay them after a reconnection.
    pub gap_events: u64,
    /// Messages those gap events cover.
    pub gap_messages: u64,
    /// Connections lost and replaced.
    pub reconnects: u64,
    /// Members whose client ended for good during the phase.
    pub disconnected: u64,
}

impl Tally {
    /// Adds `other` to this one.
    pub fn merge(&mut self, mut other: Tally) {
        self.deliveries += other.deliveries;
        self.in_window += other.in_window;
        self.latencies.append(&mut other.latencies);
        self.corrupt += other.corrupt;
        self.gap_events += other.gap_events;
        self.gap_messages += other.gap_messages;
        self.reconnects += other.reconnects;
        self.disconnected += other.disconnected;
    }
}

/// One member's counting, driven by its transport's read loop.
#[derive(Debug)]
pub struct Reader {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Tally>,
    phase: u32,
    tally: Tally,
}

impl Reader {
    /// A reader that hands its tallies to `out`.
    pub fn new(shared: Arc<Shared>, out: mpsc::UnboundedSender<Tally>) -> Self {
        Self { shared, out, phase: 0, tally: Tally::default() }
    }

    /// A message arrived with this text.
    pub fn message(&mut self, text: &str) {
        let at = self.shared.now();
        let Some((tag, intact)) = MessageTag::decode(text) else {
            self.tally.corrupt += 1;
            return;
        };
        self.shared.any_arrivals.fetch_add(1, Ordering::Relaxed);
        if tag_phase(tag.id) != self.phase {
            return;
        }
        self.shared.arrivals.fetch_add(1, Ordering::Relaxed);
        self.tally.deliveries += 1;
        if !intact {
            self.tally.corrupt += 1;
        }
        if at.as_micros() as u64 <= self.shared.send_end_us.load(Ordering::Relaxed) {
            self.tally.in_window += 1;
        }
        self.tally.latencies.push(at.saturating_sub(tag.sent_at()));
    }

    /// The server reported `from..=to` missed.
    pub fn gap(&mut self, from: u64, to: u64) {
        self.tally.gap_events += 1;
        self.tally.gap_messages += to.saturating_sub(from) + 1;
    }

    /// The connection was lost and is being replaced.
    pub fn reconnecting(&mut self) {
        self.tally.reconnects += 1;
    }

    /// The client ended for good.
    pub fn disconnected(&mut self) {
        self.tally.disconnected += 1;
    }

    /// Acts on the driver's latest word; false when the reader should stop.
    pub fn control(&mut self, control: Control) -> bool {
        match control {
            Control::Run => true,
            Control::Flush(phase) => {
                // Phases only move forward; a reader that missed a flush (it cannot: each
                // flush waits for every reader) would catch up here.
                if phase >= self.phase {
                    let tally = std::mem::take(&mut self.tally);
                    let _ = self.out.send(tally);
                    self.phase = phase + 1;
                }
                true
            }
            Control::Stop => false,
        }
    }
}

/// Sends messages into a member's room.
#[derive(Clone)]
pub enum Publisher {
    /// A chatroom client and its room.
    Chatroom {
        /// The client.
        client: chatroom_client::Client,
        /// The room.
        room: String,
    },
    /// A NATS connection and its room's subject.
    Nats {
        /// The connection.
        client: async_nats::Client,
        /// The subject.
        subject: String,
    },
}

impl Publisher {
    /// Sends `text`; on failure, a short name of what went wrong, for counting.
    pub async fn publish(&self, text: String) -> Result<(), String> {
        match self {
            Publisher::Chatroom { client, room } => {
                client.send(room, &text).await.map(|_| ()).map_err(|e| request_error_kind(&e))
            }
            Publisher::Nats { client, subject } => client
                .publish(subject.clone(), text.into())
                .await
                .map_err(|e| format!("nats_publish: {e}")),
        }
    }

    /// Ends the member's connection.
    pub async fn close(self) {
        match self {
            Publisher::Chatroom { client, .. } => client.close().await,
            Publisher::Nats { client, .. } => {
                let _ = client.flush().await;
            }
        }
    }
}

/// A short, countable name for a failed chatroom request.
pub fn request_error_kind(error: &RequestError) -> String {
    match error {
        RequestError::Server(frame) => frame.code.as_str().to_owned(),
        RequestError::Disconnected(_) => "disconnected".into(),
        RequestError::ConnectionLost(_) => "connection_lost".into(),
        RequestError::Timeout { .. } => "timeout".into(),
        other => other.to_string(),
    }
}

/// Counts of named failures.
pub type ErrorCounts = BTreeMap<String, u64>;

/// Adds one failure named `kind`.
pub fn count_error(errors: &mut ErrorCounts, kind: impl Into<String>) {
    *errors.entry(kind.into()).or_default() += 1;
}

/// Waits for the driver's next word, for use in a reader's `select!`.
pub async fn next_control(control: &mut watch::Receiver<Control>) -> Control {
    match control.changed().await {
        Ok(()) => *control.borrow_and_update(),
        Err(_) => Control::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_ids_carry_the_phase() {
        let id = tag_id(3, 70_000, 5);
        assert_eq!(tag_phase(id), 3);
        assert_ne!(tag_id(0, 1, 0), tag_id(0, 0, 1));
    }

    #[test]
    fn readers_count_only_their_phase_and_flush() {
        let shared = Arc::new(Shared::new());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut reader = Reader::new(shared.clone(), tx);
        let text = |phase, count| MessageTag { id: tag_id(phase, 0, count), sent_us: 0 }.encode(64);
        reader.message(&text(0, 1));
        reader.message(&text(1, 1));
        reader.message("not a tag");
        reader.gap(4, 6);
        assert!(reader.control(Control::Flush(0)));
        let tally = rx.try_recv().unwrap();
        assert_eq!((tally.deliveries, tally.in_window, tally.corrupt), (1, 1, 1));
        assert_eq!((tally.gap_events, tally.gap_messages), (1, 3));
        reader.message(&text(0, 2));
        reader.message(&text(1, 2));
        assert!(reader.control(Control::Flush(1)));
        assert_eq!(rx.try_recv().unwrap().deliveries, 1);
        assert!(!reader.control(Control::Stop));
        assert_eq!(shared.arrivals.load(Ordering::Relaxed), 2);
    }
}
