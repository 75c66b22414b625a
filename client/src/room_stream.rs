//! The server's unidirectional room streams: one per membership, each read by its own task, so
//! that a lost packet in one room delays only that room.
//!
//! A room stream starts with [`RoomFrame::Open`] (which names the room; the stream may arrive
//! before or after the join's response), carries the room's frames in order and ends with
//! [`RoomFrame::Left`]. When a client leaves a room and joins it again, the new membership's
//! events wait until the old stream has delivered its last event, so an application never sees
//! the old `Left` after the new membership's messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chatroom_protocol::RoomFrame;
use quinn::{Connection, ReadError, RecvStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, warn};

use crate::connection::Shared;
use crate::event::Event;
use crate::framed::{FrameReader, ReadFrameError};

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
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
) {
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            accepted = connection.accept_uni() => {
                let Ok(recv) = accepted else { break };
                let span = tracing::debug_span!("room_stream", stream = %recv.id());
                let reader = read(recv, connection.clone(), shared.clone(), events.clone());
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
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
) {
    let mut reader = FrameReader::new(recv);
    let room = match reader.next::<RoomFrame>().await {
        Ok(Some(RoomFrame::Open { room, stream_id })) => {
            debug!(%room, stream_id, "room stream opened");
            room
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
    forward(&mut reader, &room, &connection, &shared, &events).await;
    shared.rooms.exit(&room, token);
}

/// Forwards the frames after Open until Left, the end of the stream or an error.
async fn forward(
    reader: &mut FrameReader,
    room: &str,
    connection: &Connection,
    shared: &Shared,
    events: &mpsc::Sender<Event>,
) {
    let mut last_seq = None;
    loop {
        let frame = match reader.next::<RoomFrame>().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return shared.violation(connection, "room stream ended without Left"),
            Err(e) => return read_failed(shared, connection, e),
        };
        let last = matches!(frame, RoomFrame::Left { .. });
        match &frame {
            RoomFrame::Open { .. } => return shared.violation(connection, "second Open"),
            RoomFrame::Message(message) => {
                if last_seq.is_some_and(|last| message.seq <= last) {
                    warn!(room, seq = message.seq, ?last_seq, "room message out of sequence");
                }
                last_seq = Some(message.seq);
            }
            _ => {}
        }
        if let Some(event) = Event::from_room_frame(room, frame) {
            // An application that dropped `Events` wants no events; keep reading regardless,
            // so that the server does not see a stalled receiver.
            let _ = events.send(event).await;
        }
        if last {
            // Nothing follows Left but the end of the stream; do not wait for it.
            reader.stop(0);
            return;
        }
    }
}

fn read_failed(shared: &Shared, connection: &Connection, error: ReadFrameError) {
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
