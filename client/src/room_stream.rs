//! The server's unidirectional room streams: one per membership, each read by its own task, so
//! that a lost packet in one room delays only that room.
//!
//! A room stream starts with [`RoomFrame::Open`] (which names the room; the stream may arrive
//! before or after the join's response), carries the room's frames in order and ends with
//! [`RoomFrame::Left`]. When a client leaves a room and joins it again, the new membership's
//! events wait until the old stream has delivered its last event, so an application never sees
//! the old `Left` after the new membership's messages.
//!
//! Messages and gap reports go through the session's [`RoomTracker`](crate::tracker) on their
//! way out: a message delivered already (a replay after a resume that overlaps) is dropped, and
//! a hole is never silent. Private messages are de-duplicated the same way, by their own
//! numbering.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chatroom_protocol::RoomFrame;
use quinn::{Connection, ReadError, RecvStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, warn};

use crate::connection::ConnShared;
use crate::event::Event;
use crate::framed::{FrameReader, ReadFrameError};
use crate::session::SessionState;
use crate::tracker::{Delivery, StreamStart};

/// Per room, the end signal of its newest stream.
#[derive(Debug, Default)]
pub(crate) struct RoomOrder {
    next_token: AtomicU64,
    newest: Mutex<HashMap<String, (u64, oneshot::Receiver<()>)>>,
}

impl RoomOrder {
    /// Records a new stream of `room`: returns its token and the end signal of the stream of
    /// the same room before it, if that one is still being read.
    fn enter(
        &self,
        room: &str,
        ended: oneshot::Receiver<()>,
    ) -> (u64, Option<oneshot::Receiver<()>>) {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut newest = self.newest.lock().unwrap_or_else(|p| p.into_inner());
        let previous = newest.insert(room.to_owned(), (token, ended));
        (token, previous.map(|(_, ended)| ended))
    }

    /// Forgets the stream `token` of `room`, unless a newer one replaced it.
    fn exit(&self, room: &str, token: u64) {
        let mut newest = self.newest.lock().unwrap_or_else(|p| p.into_inner());
        if newest.get(room).is_some_and(|(newest, _)| *newest == token) {
            newest.remove(room);
        }
    }
}

/// Accepts room streams until the connection ends, then waits for their readers to finish.
pub(crate) async fn accept(
    connection: Connection,
    shared: Arc<ConnShared>,
    session: Arc<SessionState>,
) {
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            accepted = connection.accept_uni() => {
                let Ok(recv) = accepted else { break };
                let span = tracing::debug_span!("room_stream", stream = %recv.id());
                let reader = read(recv, connection.clone(), shared.clone(), session.clone());
                readers.spawn(reader.instrument(span));
            }
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
        }
    }
    while readers.join_next().await.is_some() {}
}

/// Reads one room stream to its end, forwarding its frames as events.
async fn read(
    recv: RecvStream,
    connection: Connection,
    shared: Arc<ConnShared>,
    session: Arc<SessionState>,
) {
    let mut reader = FrameReader::new(recv);
    let (room, stream_id) = match reader.next::<RoomFrame>().await {
        Ok(Some(RoomFrame::Open { room, stream_id })) => {
            debug!(%room, stream_id, "room stream opened");
            (room, stream_id)
        }
        Ok(Some(_)) => return shared.violation(&connection, "room stream without Open"),
        Ok(None) => return shared.violation(&connection, "room stream ended before Open"),
        Err(e) => return read_failed(&shared, &connection, e),
    };

    // Dropping `_ended` (when this function returns) releases the next stream of this room.
    let (_ended, ended_rx) = oneshot::channel();
    let (token, previous) = shared.rooms.enter(&room, ended_rx);
    if let Some(previous) = previous {
        // Err only means the previous reader is gone, which is what is waited for.
        let _ = previous.await;
    }
    session.rooms().stream_started(&room, stream_id);
    let stream = RoomStream { room: &room, stream_id, connection: &connection, shared: &shared };
    if let Some(gap) = stream.start(&session).await {
        stream.forward(&mut reader, &session, gap).await;
    }
    shared.rooms.exit(&room, token);
}

/// One room stream being forwarded.
struct RoomStream<'a> {
    room: &'a str,
    stream_id: u64,
    connection: &'a Connection,
    shared: &'a ConnShared,
}

impl RoomStream<'_> {
    /// Waits until the stream may deliver: a room joined again after a reconnection needs its
    /// join's response first, which says where the stream starts and so which messages were
    /// missed. Returns that gap, or `None` if the connection ended meanwhile.
    async fn start(&self, session: &SessionState) -> Option<Option<Event>> {
        loop {
            let joined = session.joins.notified();
            tokio::pin!(joined);
            joined.as_mut().enable();
            if let StreamStart::Ready { gap } = session.rooms().start(self.room, self.stream_id) {
                let room = self.room.to_owned();
                return Some(gap.map(|(from, to)| Event::Gap { room, from, to }));
            }
            tokio::select! {
                _ = joined => {}
                _ = self.connection.closed() => return None,
            }
        }
    }

    /// Forwards `gap`, then the frames after Open until Left, the end of the stream or an
    /// error.
    async fn forward(&self, reader: &mut FrameReader, session: &SessionState, gap: Option<Event>) {
        let events = session.event_sender();
        if let Some(gap) = gap {
            debug!(room = self.room, ?gap, "room joined again");
            let _ = events.send(gap).await;
        }
        loop {
            let frame = match reader.next::<RoomFrame>().await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    return self
                        .shared
                        .violation(self.connection, "room stream ended without Left");
                }
                Err(e) => return read_failed(self.shared, self.connection, e),
            };
            if matches!(frame, RoomFrame::Open { .. }) {
                return self.shared.violation(self.connection, "second Open");
            }
            let last = matches!(frame, RoomFrame::Left { .. });
            for event in self.events_of(frame, session) {
                // An application that dropped `Events` wants no events; keep reading
                // regardless, so that the server does not see a stalled receiver.
                let _ = events.send(event).await;
            }
            if last {
                // Nothing follows Left but the end of the stream; do not wait for it.
                reader.stop(0);
                return;
            }
        }
    }

    /// The events a frame stands for, after de-duplication and gap accounting.
    fn events_of(&self, frame: RoomFrame, session: &SessionState) -> Vec<Event> {
        let room = self.room;
        let mut rooms = session.rooms();
        match frame {
            RoomFrame::Message(message) => {
                match rooms.on_message(room, self.stream_id, message.seq) {
                    Delivery::Duplicate => {
                        debug!(room, seq = message.seq, "dropping a message delivered already");
                        Vec::new()
                    }
                    Delivery::Deliver { gap: Some((from, to)) } => {
                        warn!(room, from, to, "messages missing without a gap report");
                        vec![
                            Event::Gap { room: room.to_owned(), from, to },
                            Event::Message { room: room.to_owned(), message },
                        ]
                    }
                    Delivery::Deliver { gap: None } => {
                        vec![Event::Message { room: room.to_owned(), message }]
                    }
                }
            }
            RoomFrame::Gap { from, to } => rooms
                .on_gap(room, self.stream_id, from, to)
                .map(|(from, to)| Event::Gap { room: room.to_owned(), from, to })
                .into_iter()
                .collect(),
            RoomFrame::Private(message) => {
                if rooms.on_private(room, self.stream_id, message.seq) {
                    vec![Event::Private { room: room.to_owned(), message }]
                } else {
                    debug!(room, seq = message.seq, "dropping a private message delivered already");
                    Vec::new()
                }
            }
            RoomFrame::PrivateGap { from, to } => rooms
                .on_private_gap(room, self.stream_id, from, to)
                .map(|(from, to)| Event::PrivateGap { room: room.to_owned(), from, to })
                .into_iter()
                .collect(),
            RoomFrame::Left { reason } => {
                let deliver = rooms.on_left(room, self.stream_id, reason, session.will_reconnect());
                if !deliver {
                    debug!(room, "server shutting down: the room will be joined again");
                }
                deliver.then(|| Event::Left { room: room.to_owned(), reason }).into_iter().collect()
            }
            other => Event::from_room_frame(room, other).into_iter().collect(),
        }
    }
}

fn read_failed(shared: &ConnShared, connection: &Connection, error: ReadFrameError) {
    match error {
        ReadFrameError::Read(ReadError::ConnectionLost(_)) => {}
        ReadFrameError::Read(e) => {
            shared.violation(connection, &format!("room stream failed: {e}"))
        }
        ReadFrameError::Decode(e) => shared.decode_error(connection, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejoined_room_waits_for_its_previous_stream() {
        let order = RoomOrder::default();
        let (first_ended, first_rx) = oneshot::channel::<()>();
        let (first, previous) = order.enter("r", first_rx);
        assert!(previous.is_none());

        let (_second_ended, second_rx) = oneshot::channel::<()>();
        let (second, previous) = order.enter("r", second_rx);
        let mut previous = previous.expect("the first stream is still open");
        assert!(previous.try_recv().is_err(), "still open");
        drop(first_ended);
        assert!(matches!(previous.try_recv(), Err(oneshot::error::TryRecvError::Closed)));

        // The first stream's exit must not forget the second.
        order.exit("r", first);
        assert!(order.newest.lock().unwrap().contains_key("r"));
        order.exit("r", second);
        assert!(order.newest.lock().unwrap().is_empty());
    }
}
