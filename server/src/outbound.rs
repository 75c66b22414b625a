//! Outbound queues: what the server has to say on one room stream of one connection.
//!
//! Fan-out never waits on a member: the room pushes an already-encoded frame (a cheap clone of
//! shared [`Bytes`]) into each member's bounded queue, under a short lock, and moves on. One
//! writer task per queue opens the room stream and drains the queue, writing everything that has
//! accumulated in one call so that a burst of small frames leaves in few packets.
//!
//! A member that cannot keep up is handled in two steps:
//! 1. Above `soft_bytes` queued, room messages are shed, oldest `Low` first, then oldest
//!    `Normal`. Each shed message becomes a [`RoomFrame::Gap`] in its place (adjacent gaps
//!    merge), so the receiver learns exactly what it missed: never a silent hole. `High`
//!    messages and control frames (presence, moderation, private messages) are never shed.
//! 2. Above `hard_frames` entries (only reachable with unsheddable frames), the queue is marked
//!    overflowed and its writer closes the whole connection with [`CloseCode::SlowConsumer`]; the
//!    client resumes its session and gets the rest from the room's replay buffer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chatroom_protocol::{CloseCode, Priority, RoomFrame};
use tokio::sync::Notify;

/// How much a queue may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Above this many queued bytes, room messages are shed (low priority first).
    pub soft_bytes: usize,
    /// Above this many queued entries, the connection is closed as a slow consumer.
    pub hard_frames: usize,
}

#[derive(Debug)]
enum Entry {
    /// A frame that is never shed.
    Control(Bytes),
    /// A room message, which may be shed, unless it is part of a resumed session's replay:
    /// the replay is what the member came back for, and is neither shed nor counted against
    /// the soft limit (the hard limit still bounds it).
    Message { seq: u64, priority: Priority, frame: Bytes, replay: bool },
    /// Messages `from..=to` were shed.
    Gap { from: u64, to: u64 },
}

/// One member's queue of encoded frames for one room stream.
#[derive(Debug)]
pub struct OutboundQueue {
    state: Mutex<QueueState>,
    ready: Notify,
    /// Signalled on overflow, so that a writer blocked on flow control still closes the
    /// connection at once.
    overflow: Notify,
    limits: QueueLimits,
    /// After each write, the writer waits this long (microseconds; 0 = not at all) so that the
    /// frames of a busy large room leave in few, fuller packets.
    pace_us: AtomicU64,
}

#[derive(Debug, Default)]
struct QueueState {
    entries: VecDeque<Entry>,
    /// Bytes of the frames in `entries`.
    bytes: usize,
    /// No more frames will be pushed: finish the stream once drained.
    closed: bool,
    /// The hard limit was hit.
    overflowed: bool,
    /// How many messages were shed over the queue's life.
    shed: u64,
    /// How many sheddable messages (not replay) of each sheddable priority are queued, so
    /// that shedding under overload does not scan the whole queue for a priority it lacks.
    sheddable: [usize; 2],
}

/// Where `priority` is counted in `QueueState::sheddable`; `None` for a priority never shed.
fn sheddable_slot(priority: Priority) -> Option<usize> {
    match priority {
        Priority::Low => Some(0),
        Priority::Normal => Some(1),
        Priority::High => None,
    }
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Write the frames put into the batch.
    Write,
    /// Nothing to do yet; wait.
    Wait,
    /// Everything is written and the queue is closed: finish the stream.
    Finish,
    /// The member fell too far behind: close the connection.
    Overflowed,
}

impl QueueState {
    /// Sheds the oldest message of the lowest sheddable priority present; false if none.
    fn shed_one(&mut self) -> bool {
        let Some(wanted) = [Priority::Low, Priority::Normal]
            .into_iter()
            .find(|&p| sheddable_slot(p).is_some_and(|slot| self.sheddable[slot] > 0))
        else {
            return false;
        };
        // The oldest one. Under overload the front of the queue is usually already shed (one
        // merged gap), so this stops within a few entries; unsheddable entries ahead of it (a
        // resumed session's replay, high-priority or control frames) are still walked past.
        let position = self.entries.iter().position(
            |e| matches!(e, Entry::Message { priority, replay: false, .. } if *priority == wanted),
        );
        let Some(index) = position else {
            return false;
        };
        if let Some(slot) = sheddable_slot(wanted) {
            self.sheddable[slot] -= 1;
        }
        let Some(Entry::Message { seq, frame, .. }) = self.entries.get(index) else {
            return false;
        };
        let (seq, len) = (*seq, frame.len());
        self.bytes -= len;
        self.shed += 1;
        let merges_before = index > 0
            && matches!(self.entries.get(index - 1), Some(Entry::Gap { to, .. }) if to + 1 == seq);
        let index = if merges_before {
            self.entries.remove(index);
            if let Some(Entry::Gap { to, .. }) = self.entries.get_mut(index - 1) {
                *to = seq;
            }
            index - 1
        } else {
            self.entries[index] = Entry::Gap { from: seq, to: seq };
            index
        };
        if let Some(&Entry::Gap { from: next_from, to: next_to }) = self.entries.get(index + 1) {
            if next_from == seq + 1 {
                self.entries.remove(index + 1);
                if let Some(Entry::Gap { to, .. }) = self.entries.get_mut(index) {
                    *to = next_to;
                }
            }
        }
        true
    }
}

impl OutboundQueue {
    /// An empty queue with these limits.
    pub fn new(limits: QueueLimits) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            ready: Notify::new(),
            overflow: Notify::new(),
            limits,
            pace_us: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A poisoned lock means a panic elsewhere while holding it; the queue state is a plain
        // buffer that stays consistent, so keep going rather than spreading the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push_entry(&self, entry: Entry, len: usize) -> bool {
        let mut state = self.lock();
        if state.closed || state.overflowed {
            return false;
        }
        if state.entries.len() >= self.limits.hard_frames {
            state.overflowed = true;
            drop(state);
            self.ready.notify_one();
            self.overflow.notify_one();
            return false;
        }
        if let Entry::Message { priority, replay: false, .. } = &entry {
            if let Some(slot) = sheddable_slot(*priority) {
                state.sheddable[slot] += 1;
            }
        }
        state.entries.push_back(entry);
        state.bytes += len;
        while state.bytes > self.limits.soft_bytes && state.shed_one() {}
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Queues a control frame (never shed). Returns false if it was not queued: the queue is
    /// closed, or full (then it is marked overflowed and its writer will close the connection).
    pub fn push(&self, frame: Bytes) -> bool {
        let len = frame.len();
        self.push_entry(Entry::Control(frame), len)
    }

    /// Queues room message `seq`, which may later be shed according to its priority.
    pub fn push_message(&self, seq: u64, priority: Priority, frame: Bytes) -> bool {
        let len = frame.len();
        self.push_entry(Entry::Message { seq, priority, frame, replay: false }, len)
    }

    /// Queues room message `seq` of a resumed session's replay: never shed, not counted
    /// against the soft limit.
    pub fn push_replay(&self, seq: u64, priority: Priority, frame: Bytes) -> bool {
        self.push_entry(Entry::Message { seq, priority, frame, replay: true }, 0)
    }

    /// Queues a control frame of a resumed session's replay (a kept private message, or the
    /// report of those no longer kept): never shed, not counted against the soft limit.
    pub fn push_replay_control(&self, frame: Bytes) -> bool {
        self.push_entry(Entry::Control(frame), 0)
    }

    /// Queues a gap report for messages `from..=to`.
    pub fn push_gap(&self, from: u64, to: u64) -> bool {
        self.push_entry(Entry::Gap { from, to }, 0)
    }

    /// Queues a last frame (if any) and closes the queue: the writer finishes the stream once
    /// everything queued is written. Later pushes are refused.
    pub fn close(&self, last: Option<Bytes>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        if let Some(frame) = last {
            // The last frame is allowed past the limits: it is one frame, and it tells the
            // client why the stream ends.
            state.bytes += frame.len();
            state.entries.push_back(Entry::Control(frame));
        }
        state.closed = true;
        drop(state);
        self.ready.notify_one();
    }

    /// Sets the pause after each write (zero: none). With it, a member's stream is written at
    /// most once per `pace`, and everything queued meanwhile leaves together: a bound on
    /// packets per member per second in a busy room, at the cost of up to `pace` of latency
    /// for the messages that wait. The first message after a quiet spell leaves at once.
    pub fn set_pace(&self, pace: Duration) {
        let micros = u64::try_from(pace.as_micros()).unwrap_or(u64::MAX);
        self.pace_us.store(micros, Ordering::Relaxed);
    }

    /// Whether the queue was closed or overflowed: it takes no more frames.
    pub fn is_closed(&self) -> bool {
        let state = self.lock();
        state.closed || state.overflowed
    }

    /// Whether the room closed the queue: the membership it served has ended (left or kicked).
    /// An overflowed queue is not ended: its connection is being closed, and the session keeps
    /// the membership for its resume.
    pub fn is_ended(&self) -> bool {
        let state = self.lock();
        state.closed && !state.overflowed
    }

    /// How many entries wait to be written.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many messages this queue has shed.
    pub fn shed_count(&self) -> u64 {
        self.lock().shed
    }

    /// Moves every queued frame into `batch` and says what to do.
    pub(crate) fn take(&self, batch: &mut Vec<Bytes>) -> Next {
        let mut state = self.lock();
        if state.overflowed {
            return Next::Overflowed;
        }
        if state.entries.is_empty() {
            return if state.closed { Next::Finish } else { Next::Wait };
        }
        state.bytes = 0;
        state.sheddable = [0; 2];
        for entry in state.entries.drain(..) {
            match entry {
                Entry::Control(frame) | Entry::Message { frame, .. } => batch.push(frame),
                Entry::Gap { from, to } => {
                    // A gap frame is a few bytes and cannot fail to encode.
                    if let Ok(frame) = chatroom_protocol::encode(&RoomFrame::Gap { from, to }) {
                        batch.push(frame);
                    }
                }
            }
        }
        Next::Write
    }

    /// Drains this queue into a new unidirectional stream of `conn` until the queue is closed,
    /// the connection ends or the queue overflows.
    pub(crate) async fn run_writer(self: Arc<Self>, conn: quinn::Connection) {
        tokio::select! {
            _ = self.drain_into(&conn) => {}
            // Even while a write waits for flow control credit.
            _ = self.overflow.notified() => {
                tracing::warn!(
                    remote = %conn.remote_address(),
                    "outbound queue overflowed; closing slow connection"
                );
                conn.close(CloseCode::SlowConsumer.to_u32().into(), b"outbound queue overflowed");
            }
        }
    }

    async fn drain_into(&self, conn: &quinn::Connection) {
        let mut stream = match conn.open_uni().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "cannot open room stream");
                return;
            }
        };
        let mut batch = Vec::new();
        loop {
            match self.take(&mut batch) {
                Next::Write => {
                    if let Err(e) = stream.write_all_chunks(&mut batch).await {
                        tracing::debug!(error = %e, "room stream write failed");
                        return;
                    }
                    batch.clear();
                    let pace = self.pace_us.load(Ordering::Relaxed);
                    if pace > 0 {
                        tokio::time::sleep(Duration::from_micros(pace)).await;
                    }
                }
                Next::Wait => self.ready.notified().await,
                Next::Finish => {
                    // The stream may already be reset by the peer; nothing more to do then.
                    let _ = stream.finish();
                    return;
                }
                // The select in `run_writer` closes the connection.
                Next::Overflowed => std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use chatroom_protocol::{FrameDecoder, MAX_FRAME_LEN};

    use super::*;

    const ROOMY: QueueLimits = QueueLimits { soft_bytes: 1 << 20, hard_frames: 1024 };

    fn decode(batch: Vec<Bytes>) -> Vec<RoomFrame> {
        let mut buf = BytesMut::new();
        batch.iter().for_each(|b| buf.extend_from_slice(b));
        let decoder = FrameDecoder::new(MAX_FRAME_LEN);
        std::iter::from_fn(|| decoder.decode(&mut buf).unwrap()).collect()
    }

    fn message(seq: u64, priority: Priority) -> (u64, Priority, Bytes) {
        let frame = RoomFrame::Message(chatroom_protocol::RoomMessage {
            seq,
            from: "a".into(),
            timestamp_ms: 0,
            kind: None,
            priority,
            text: "x".repeat(100),
        });
        (seq, priority, chatroom_protocol::encode(&frame).unwrap())
    }

    /// The seqs delivered, with gaps as (from, to) pairs, in order.
    fn outline(frames: &[RoomFrame]) -> Vec<(u64, u64)> {
        frames
            .iter()
            .filter_map(|f| match f {
                RoomFrame::Message(m) => Some((m.seq, m.seq)),
                RoomFrame::Gap { from, to } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn queue_states() {
        let queue = OutboundQueue::new(ROOMY);
        let mut batch = Vec::new();
        assert_eq!(queue.take(&mut batch), Next::Wait);
        assert!(queue.push(Bytes::from_static(b"a")));
        assert!(queue.push(Bytes::from_static(b"b")));
        assert_eq!(queue.take(&mut batch), Next::Write);
        assert_eq!(batch, vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        queue.close(Some(Bytes::from_static(b"bye")));
        assert!(!queue.push(Bytes::from_static(b"late")));
        batch.clear();
        assert_eq!(queue.take(&mut batch), Next::Write);
        assert_eq!(batch, vec![Bytes::from_static(b"bye")]);
        assert_eq!(queue.take(&mut batch), Next::Finish);
    }

    #[test]
    fn a_long_overload_keeps_one_gap_and_the_newest_messages() {
        // Room for ten messages; 2 000 normal ones arrive without a write, then a low one (shed
        // at once: low goes first) and a high one.
        let (_, _, sample) = message(2000, Priority::Normal);
        let limits = QueueLimits { soft_bytes: sample.len() * 10, hard_frames: 4096 };
        let queue = OutboundQueue::new(limits);
        let push = |seq: u64, priority: Priority| {
            let (seq, priority, frame) = message(seq, priority);
            assert!(queue.push_message(seq, priority, frame));
        };
        (1..=2000).for_each(|seq| push(seq, Priority::Normal));
        push(2001, Priority::Low);
        push(2002, Priority::High);
        let mut batch = Vec::new();
        assert_eq!(queue.take(&mut batch), Next::Write);
        let frames = decode(std::mem::take(&mut batch));
        let gaps: Vec<(u64, u64)> = frames
            .iter()
            .filter_map(|f| match f {
                RoomFrame::Gap { from, to } => Some((*from, *to)),
                _ => None,
            })
            .collect();
        let kept: Vec<u64> = frames
            .iter()
            .filter_map(|f| match f {
                RoomFrame::Message(m) => Some(m.seq),
                _ => None,
            })
            .collect();
        // The oldest normal ones went in one gap; the ten newest remain.
        assert_eq!(gaps, vec![(1, 1991), (2001, 2001)], "{frames:?}");
        assert_eq!(kept, (1992..=2000).chain([2002]).collect::<Vec<_>>());
        assert_eq!(queue.shed_count(), 1992);

        // After the write the counts start over: a new low message is the first one shed.
        (2003..=2011).for_each(|seq| push(seq, Priority::Normal));
        push(2012, Priority::Low);
        push(2013, Priority::Normal);
        assert_eq!(queue.take(&mut batch), Next::Write);
        let expected: Vec<(u64, u64)> = (2003..=2013).map(|seq| (seq, seq)).collect();
        let frames = decode(batch);
        assert_eq!(outline(&frames), expected);
        assert!(matches!(frames[9], RoomFrame::Gap { from: 2012, to: 2012 }), "{frames:?}");
        assert_eq!(queue.shed_count(), 1993);
    }

    #[test]
    fn sheds_low_before_normal_never_high_and_reports_gaps_in_place() {
        // Room for about three messages.
        let (_, _, sample) = message(1, Priority::Low);
        let queue =
            OutboundQueue::new(QueueLimits { soft_bytes: sample.len() * 3, hard_frames: 64 });
        let priorities = [
            Priority::Normal, // 1
            Priority::Low,    // 2
            Priority::High,   // 3
            Priority::Low,    // 4
            Priority::Normal, // 5
            Priority::High,   // 6
        ];
        for (i, p) in priorities.iter().enumerate() {
            let (seq, priority, frame) = message(i as u64 + 1, *p);
            assert!(queue.push_message(seq, priority, frame));
        }
        let mut batch = Vec::new();
        assert_eq!(queue.take(&mut batch), Next::Write);
        let frames = decode(batch);
        // Lows 2 and 4 went first, then the oldest normal (1); 3, 5 and 6 fit.
        assert_eq!(outline(&frames), [(1, 2), (3, 3), (4, 4), (5, 5), (6, 6)]);
        assert_eq!(queue.shed_count(), 3);
    }

    #[test]
    fn a_replay_does_not_make_live_messages_shed() {
        // Room for about three messages; a resumed session's replay of five room messages and
        // five private messages is queued first.
        let (_, _, sample) = message(1, Priority::Low);
        let queue =
            OutboundQueue::new(QueueLimits { soft_bytes: sample.len() * 3, hard_frames: 64 });
        for seq in 1..=5 {
            let (seq, priority, frame) = message(seq, Priority::Low);
            assert!(queue.push_replay(seq, priority, frame));
            assert!(queue.push_replay_control(sample.clone()));
        }
        let (seq, priority, frame) = message(6, Priority::Low);
        queue.push_message(seq, priority, frame);
        let mut batch = Vec::new();
        queue.take(&mut batch);
        let frames = decode(batch);
        let live = frames.last().expect("frames");
        assert!(matches!(live, RoomFrame::Message(m) if m.seq == 6), "shed: {live:?}");
    }

    #[test]
    fn adjacent_gaps_merge() {
        let (_, _, sample) = message(1, Priority::Low);
        let queue = OutboundQueue::new(QueueLimits { soft_bytes: sample.len(), hard_frames: 64 });
        for seq in 1..=10 {
            let (seq, priority, frame) = message(seq, Priority::Low);
            queue.push_message(seq, priority, frame);
        }
        let mut batch = Vec::new();
        queue.take(&mut batch);
        assert_eq!(outline(&decode(batch)), [(1, 9), (10, 10)]);
    }

    #[test]
    fn unsheddable_backlog_overflows() {
        let queue = OutboundQueue::new(QueueLimits { soft_bytes: 10, hard_frames: 2 });
        for seq in 1..=2 {
            let (seq, priority, frame) = message(seq, Priority::High);
            assert!(queue.push_message(seq, priority, frame));
        }
        let (seq, priority, frame) = message(3, Priority::High);
        assert!(!queue.push_message(seq, priority, frame));
        assert!(queue.is_closed());
        assert_eq!(queue.take(&mut Vec::new()), Next::Overflowed);
    }
}
