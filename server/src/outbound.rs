//! Outbound queues: what the server has to say on one room stream of one connection.
//!
//! Fan-out never waits on a member: the room pushes an already-encoded frame (a cheap clone of
//! shared [`Bytes`]) into each member's bounded queue, under a short lock, and moves on. One
//! writer task per queue opens the room stream and drains the queue, writing everything that has
//! accumulated in one call so that a burst of small frames leaves in few packets.
//!
//! A queue that reaches its capacity is marked overflowed and its writer closes the whole
//! connection with [`CloseCode::SlowConsumer`]: a member that cannot keep up is disconnected
//! rather than buffered without bound, and never slows the room for the others.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use chatroom_protocol::CloseCode;
use tokio::sync::Notify;

/// One member's queue of encoded frames for one room stream.
#[derive(Debug)]
pub struct OutboundQueue {
    state: Mutex<QueueState>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<Bytes>,
    /// No more frames will be pushed: finish the stream once drained.
    closed: bool,
    /// A push found the queue full.
    overflowed: bool,
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Write these frames.
    Write,
    /// Nothing to do yet; wait.
    Wait,
    /// Everything is written and the queue is closed: finish the stream.
    Finish,
    /// The member fell too far behind: close the connection.
    Overflowed,
}

impl OutboundQueue {
    /// An empty queue that holds at most `capacity` frames.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self { state: Mutex::default(), ready: Notify::new(), capacity })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A poisoned lock means a panic elsewhere while holding it; the queue state is a plain
        // buffer that stays consistent, so keep going rather than spreading the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one encoded frame. Returns false if the frame was not queued: the queue is closed,
    /// or full (then it is marked overflowed and its writer will close the connection).
    pub fn push(&self, frame: Bytes) -> bool {
        let mut state = self.lock();
        if state.closed || state.overflowed {
            return false;
        }
        if state.frames.len() >= self.capacity {
            state.overflowed = true;
            drop(state);
            self.ready.notify_one();
            return false;
        }
        state.frames.push_back(frame);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Queues a last frame (if any) and closes the queue: the writer finishes the stream once
    /// everything queued is written. Later pushes are refused.
    pub fn close(&self, last: Option<Bytes>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        if let Some(frame) = last {
            // The last frame is allowed past capacity: it is one frame, and it tells the client
            // why the stream ends.
            state.frames.push_back(frame);
        }
        state.closed = true;
        drop(state);
        self.ready.notify_one();
    }

    /// Whether the queue was closed (the membership it served has ended).
    pub fn is_closed(&self) -> bool {
        let state = self.lock();
        state.closed || state.overflowed
    }

    /// How many frames wait to be written.
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Whether no frame waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every queued frame into `batch` and says what to do.
    pub(crate) fn take(&self, batch: &mut Vec<Bytes>) -> Next {
        let mut state = self.lock();
        if state.overflowed {
            return Next::Overflowed;
        }
        if !state.frames.is_empty() {
            batch.extend(state.frames.drain(..));
            return Next::Write;
        }
        if state.closed { Next::Finish } else { Next::Wait }
    }

    /// Drains this queue into a new unidirectional stream of `conn` until the queue is closed,
    /// the connection ends or the queue overflows.
    pub(crate) async fn run_writer(self: Arc<Self>, conn: quinn::Connection) {
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
                }
                Next::Wait => self.ready.notified().await,
                Next::Finish => {
                    // The stream may already be reset by the peer; nothing more to do then.
                    let _ = stream.finish();
                    return;
                }
                Next::Overflowed => {
                    tracing::warn!(
                        remote = %conn.remote_address(),
                        "outbound queue overflowed; closing slow connection"
                    );
                    conn.close(
                        CloseCode::SlowConsumer.to_u32().into(),
                        b"outbound queue overflowed",
                    );
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_states() {
        let queue = OutboundQueue::new(2);
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
    fn overflow_is_reported_not_buffered() {
        let queue = OutboundQueue::new(1);
        assert!(queue.push(Bytes::from_static(b"a")));
        assert!(!queue.push(Bytes::from_static(b"b")));
        assert!(queue.is_closed());
        assert_eq!(queue.take(&mut Vec::new()), Next::Overflowed);
    }
}
