//! What happens in the rooms a client is in, and to its connection, as [`Event`]s delivered
//! through [`Events`].

use std::time::Duration;

use chatroom_protocol::{
    Attributes, CloseCode, ErrorFrame, LeaveReason, PrivateMessage, Role, RoomFrame, RoomMessage,
};
use tokio::sync::mpsc;

/// Something that happened in a room the client is in, or to its connection.
///
/// Room events of one room arrive in the order the server sent them, across reconnections
/// too: a message is never delivered twice, and every sequence number of a room the client is
/// in is either delivered as an [`Event::Message`] or covered by an [`Event::Gap`].
///
/// A lost connection is not the end: the client reconnects by itself
/// ([`Event::Reconnecting`]), then either resumes its session ([`Event::Resumed`]: the same
/// session, the rooms replay what was missed) or starts a fresh one ([`Event::NewSession`]: the
/// rooms are joined again, each with a [`Event::Gap`] for what is gone, or an
/// [`Event::RejoinFailed`]). The last event of a client is always [`Event::Disconnected`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message in a room, the client's own messages included.
    Message {
        /// The room.
        room: String,
        /// The message.
        message: RoomMessage,
    },
    /// Messages `from..=to` of the room will never be delivered to this client: they were shed
    /// because it could not keep up, or could not be replayed after a reconnection. Every
    /// sequence number is either delivered as a [`Event::Message`] or covered by a gap.
    Gap {
        /// The room.
        room: String,
        /// The first missed sequence number.
        from: u64,
        /// The last missed sequence number.
        to: u64,
    },
    /// A private message to this user. Its `seq` counts the private messages this user
    /// received in the room; across a lost connection they are replayed like room messages,
    /// never delivered twice, and those that could not be replayed are reported as an
    /// [`Event::PrivateGap`].
    Private {
        /// The room it was sent in.
        room: String,
        /// The message.
        message: PrivateMessage,
    },
    /// Private messages `from..=to` (their [`PrivateMessage::seq`]) were sent to this user
    /// while its connection was lost, and the server no longer kept them when it came back
    /// (too old, or beyond the number or bytes it keeps per member).
    PrivateGap {
        /// The room.
        room: String,
        /// The first missed private sequence number.
        from: u64,
        /// The last missed private sequence number.
        to: u64,
    },
    /// A member joined the room (only while the room is small enough for presence events).
    MemberJoined {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// With which role.
        role: Role,
    },
    /// A member left the room (only while the room is small enough for presence events).
    MemberLeft {
        /// The room.
        room: String,
        /// Who.
        user: String,
    },
    /// A member's role changed.
    RoleChanged {
        /// The room.
        room: String,
        /// Whose role.
        user: String,
        /// The new role.
        role: Role,
        /// Who changed it.
        by: String,
    },
    /// A member was muted.
    Muted {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// By whom.
        by: String,
        /// For how many seconds, or `None` until unmuted.
        seconds: Option<u64>,
    },
    /// A member was unmuted.
    Unmuted {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// By whom.
        by: String,
    },
    /// A member was kicked. When it is this user, [`Event::Left`] follows.
    Kicked {
        /// The room.
        room: String,
        /// Who.
        user: String,
        /// By whom.
        by: String,
    },
    /// A member's attributes changed.
    AttributesChanged {
        /// The room.
        room: String,
        /// Whose.
        user: String,
        /// All of its attributes after the change.
        attributes: Attributes,
    },
    /// The room's member count (sent periodically in rooms too large for presence events).
    MemberCount {
        /// The room.
        room: String,
        /// How many members it has.
        count: u64,
    },
    /// This client's membership of the room ended; no more events of it follow (until it joins
    /// again).
    Left {
        /// The room.
        room: String,
        /// Why.
        reason: LeaveReason,
    },
    /// The server announced that it is shutting down. It closes the connection next; the
    /// client then reconnects (with back-off: the server is restarting, or another one takes
    /// over), and usually gets a fresh session ([`Event::NewSession`]). The rooms do not end:
    /// their [`LeaveReason::ServerShutdown`] is held back and they are joined again.
    GoingAway {
        /// The server's reason, for people.
        reason: String,
    },
    /// The connection was lost and the client will try to connect again after `delay`. Requests
    /// in flight failed with [`RequestError::ConnectionLost`](crate::RequestError::ConnectionLost);
    /// new ones wait for the next session (within the request timeout). Repeated, with a growing
    /// delay, while attempts fail.
    Reconnecting {
        /// The attempt's number in this outage, from 1.
        attempt: u32,
        /// How long the client waits before the attempt.
        delay: Duration,
        /// Why the connection was lost, or why the previous attempt failed.
        reason: String,
    },
    /// The client reconnected and resumed its session: same session, same rooms, roles, mutes
    /// and attributes; nobody saw it leave. Each room's stream first replays the messages
    /// missed meanwhile (or reports a gap for those too old to replay).
    Resumed {
        /// The session's id (unchanged).
        session_id: String,
        /// Whether the resume request travelled as 0-RTT data (no round trip before it).
        zero_rtt: bool,
    },
    /// The client reconnected, but its session could not be resumed (the resume window passed,
    /// the server restarted, the token was refused): a fresh session started. The client joins
    /// its rooms again: each one goes on with an [`Event::Gap`] for the messages it missed, or
    /// ends with [`Event::RejoinFailed`]. Roles, mutes and attributes are those of the new
    /// membership.
    NewSession {
        /// The new session's id.
        session_id: String,
        /// Whether the Hello travelled as 0-RTT data.
        zero_rtt: bool,
        /// Why the old session could not be resumed, as the server said.
        reason: Option<ErrorFrame>,
    },
    /// After a reconnection, the client could not join this room again (it no longer exists,
    /// this user was banned meanwhile, ...). Like [`Event::Left`], this is the room's last
    /// event.
    RejoinFailed {
        /// The room.
        room: String,
        /// The server's refusal.
        error: ErrorFrame,
    },
    /// The client is done: [`Client::close`](crate::Client::close) was called, the server
    /// refused it for good (authentication, protocol), reconnection is off or gave up
    /// ([`ClientBuilder::max_reconnect_duration`](crate::ClientBuilder::max_reconnect_duration)).
    /// Requests fail with [`RequestError::Disconnected`](crate::RequestError::Disconnected);
    /// this is the last event.
    Disconnected {
        /// Why, for people.
        reason: String,
        /// The application close code, when the connection was closed with one (by the server
        /// or by this client).
        code: Option<CloseCode>,
    },
}

impl Event {
    /// The room the event belongs to, if it belongs to one.
    pub fn room(&self) -> Option<&str> {
        match self {
            Event::Message { room, .. }
            | Event::Gap { room, .. }
            | Event::Private { room, .. }
            | Event::PrivateGap { room, .. }
            | Event::MemberJoined { room, .. }
            | Event::MemberLeft { room, .. }
            | Event::RoleChanged { room, .. }
            | Event::Muted { room, .. }
            | Event::Unmuted { room, .. }
            | Event::Kicked { room, .. }
            | Event::AttributesChanged { room, .. }
            | Event::MemberCount { room, .. }
            | Event::Left { room, .. }
            | Event::RejoinFailed { room, .. } => Some(room),
            Event::GoingAway { .. }
            | Event::Reconnecting { .. }
            | Event::Resumed { .. }
            | Event::NewSession { .. }
            | Event::Disconnected { .. } => None,
        }
    }

    /// The event a room frame stands for; `None` for [`RoomFrame::Open`], which only starts a
    /// stream.
    pub(crate) fn from_room_frame(room: &str, frame: RoomFrame) -> Option<Event> {
        let room = room.to_owned();
        Some(match frame {
            RoomFrame::Open { .. } => return None,
            RoomFrame::Message(message) => Event::Message { room, message },
            RoomFrame::Private(message) => Event::Private { room, message },
            RoomFrame::MemberJoined { user, role } => Event::MemberJoined { room, user, role },
            RoomFrame::MemberLeft { user } => Event::MemberLeft { room, user },
            RoomFrame::RoleChanged { user, role, by } => {
                Event::RoleChanged { room, user, role, by }
            }
            RoomFrame::Muted { user, by, seconds } => Event::Muted { room, user, by, seconds },
            RoomFrame::Unmuted { user, by } => Event::Unmuted { room, user, by },
            RoomFrame::Kicked { user, by } => Event::Kicked { room, user, by },
            RoomFrame::AttributesChanged { user, attributes } => {
                Event::AttributesChanged { room, user, attributes }
            }
            RoomFrame::MemberCount { count } => Event::MemberCount { room, count },
            RoomFrame::Left { reason } => Event::Left { room, reason },
            RoomFrame::Gap { from, to } => Event::Gap { room, from, to },
            RoomFrame::PrivateGap { from, to } => Event::PrivateGap { room, from, to },
        })
    }
}

/// The stream of [`Event`]s of one client, across its connections.
///
/// The channel behind it is bounded (see
/// [`ClientBuilder::event_capacity`](crate::ClientBuilder::event_capacity)) and never drops an
/// event: when it is full, the client stops reading room streams until there is room again, so
/// QUIC flow control pushes back to the server, which sheds low-priority messages for this
/// client like for any slow receiver. Requests and their responses are not held up by a full
/// channel. An application that does not want events may drop `Events`; room content is then
/// read and discarded.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    pub(crate) fn new(rx: mpsc::Receiver<Event>) -> Self {
        Self { rx }
    }

    /// The next event, or `None` once the client is done and its last event
    /// ([`Event::Disconnected`]) was taken.
    ///
    /// Cancel safety: cancelling loses no event.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_frames_become_events() {
        assert_eq!(
            Event::from_room_frame("r", RoomFrame::Open { room: "r".into(), stream_id: 3 }),
            None
        );
        let ev = Event::from_room_frame(
            "r",
            RoomFrame::Kicked { user: "bob".into(), by: "alice".into() },
        )
        .unwrap();
        assert_eq!(ev, Event::Kicked { room: "r".into(), user: "bob".into(), by: "alice".into() });
        assert_eq!(ev.room(), Some("r"));
        let left = Event::from_room_frame("r", RoomFrame::Left { reason: LeaveReason::Kicked });
        assert_eq!(left, Some(Event::Left { room: "r".into(), reason: LeaveReason::Kicked }));
        assert_eq!(Event::GoingAway { reason: "bye".into() }.room(), None);
    }
}
