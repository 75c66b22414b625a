//! [`Client`]: the request API of an open session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chatroom_protocol::{
    Attributes, CloseCode, JoinedRoom, MemberPage, Priority, RequestBody, ResponseBody, Role,
    SessionLimits,
};

use crate::connection::Session;
use crate::error::RequestError;

/// How long [`Client::close`] waits for the close to reach the server.
const CLOSE_LINGER: Duration = Duration::from_secs(3);

/// Options of [`Client::send_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// An application tag for the message (e.g. `image`, `sticker`), if any.
    pub kind: Option<String>,
    /// How important the message is when a receiver cannot keep up.
    pub priority: Priority,
}

/// A connected session with a chatroom server.
///
/// Cloning is cheap and every clone drives the same session; all methods take `&self` and may
/// run concurrently. The connection is closed when [`close`](Self::close) is called or the last
/// clone is dropped. Room content and connection changes arrive on the
/// [`Events`](crate::Events) returned alongside.
///
/// Requests are answered in any order relative to one another; each method waits for its own
/// answer. When the connection ends, waiting and later requests fail with
/// [`RequestError::Disconnected`].
#[derive(Clone)]
pub struct Client {
    session: Arc<Session>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let welcome = self.session.welcome();
        f.debug_struct("Client")
            .field("user", &welcome.user)
            .field("session_id", &welcome.session_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(session: Session) -> Self {
        Self { session: Arc::new(session) }
    }

    /// The user id the session acts as, as the server authenticated it.
    pub fn user(&self) -> &str {
        &self.session.welcome().user
    }

    /// The server's region.
    pub fn region(&self) -> &str {
        &self.session.welcome().region
    }

    /// The session's id, for logs and support.
    pub fn session_id(&self) -> &str {
        &self.session.welcome().session_id
    }

    /// The limits the server enforces.
    pub fn limits(&self) -> &SessionLimits {
        &self.session.welcome().limits
    }

    /// Creates a room, named `room` or, with `None`, with an id the server chooses; returns its
    /// id. The caller becomes its owner (it does not join it).
    pub async fn create_room(&self, room: Option<&str>) -> Result<String, RequestError> {
        let body = RequestBody::CreateRoom { room: room.map(str::to_owned) };
        match self.session.request(body).await? {
            ResponseBody::RoomCreated { room } => Ok(room),
            other => Err(unexpected("room_created", &other)),
        }
    }

    /// Joins a room. Its content then arrives as events, starting with the message numbered
    /// [`JoinedRoom::next_seq`]; events may arrive before this returns.
    pub async fn join(&self, room: &str) -> Result<JoinedRoom, RequestError> {
        match self.session.request(RequestBody::Join { room: room.into() }).await? {
            ResponseBody::Joined(joined) => Ok(joined),
            other => Err(unexpected("joined", &other)),
        }
    }

    /// Leaves a room. The room's last event, [`Event::Left`](crate::Event::Left), follows on
    /// the events.
    pub async fn leave(&self, room: &str) -> Result<(), RequestError> {
        self.done(RequestBody::Leave { room: room.into() }).await
    }

    /// Sends a message to everybody in a room (the sender receives it too); returns its
    /// sequence number.
    pub async fn send(&self, room: &str, text: &str) -> Result<u64, RequestError> {
        self.send_with(room, text, SendOptions::default()).await
    }

    /// Sends a message with a kind tag and a priority; returns its sequence number.
    pub async fn send_with(
        &self,
        room: &str,
        text: &str,
        options: SendOptions,
    ) -> Result<u64, RequestError> {
        let body = RequestBody::Send {
            room: room.into(),
            text: text.into(),
            kind: options.kind,
            priority: options.priority,
        };
        match self.session.request(body).await? {
            ResponseBody::Sent { seq, .. } => Ok(seq),
            other => Err(unexpected("sent", &other)),
        }
    }

    /// Sends a private message to user `to`, a member of `room`.
    pub async fn private(&self, room: &str, to: &str, text: &str) -> Result<(), RequestError> {
        let body = RequestBody::Private {
            room: room.into(),
            to: to.into(),
            text: text.into(),
            kind: None,
        };
        self.done(body).await
    }

    /// Makes `user` an admin of `room`. Owner only.
    pub async fn grant_admin(&self, room: &str, user: &str) -> Result<(), RequestError> {
        self.done(RequestBody::SetRole { room: room.into(), user: user.into(), role: Role::Admin })
            .await
    }

    /// Makes admin `user` a plain member of `room` again. Owner only.
    pub async fn revoke_admin(&self, room: &str, user: &str) -> Result<(), RequestError> {
        self.done(RequestBody::SetRole { room: room.into(), user: user.into(), role: Role::Member })
            .await
    }

    /// Mutes `user` in `room` for `duration` (rounded up to whole seconds), or until unmuted with
    /// `None`. Owner or admin.
    pub async fn mute(
        &self,
        room: &str,
        user: &str,
        duration: Option<Duration>,
    ) -> Result<(), RequestError> {
        let seconds = duration.map(whole_seconds);
        self.done(RequestBody::Mute { room: room.into(), user: user.into(), seconds }).await
    }

    /// Lifts the mute of `user` in `room`. Owner or admin.
    pub async fn unmute(&self, room: &str, user: &str) -> Result<(), RequestError> {
        self.done(RequestBody::Unmute { room: room.into(), user: user.into() }).await
    }

    /// Removes `user` from `room` and bans it for the server's ban time. Owner or admin.
    pub async fn kick(&self, room: &str, user: &str) -> Result<(), RequestError> {
        self.done(RequestBody::Kick { room: room.into(), user: user.into() }).await
    }

    /// Sets the keys of `set` and removes the keys in `remove` from this user's attributes in
    /// `room`; returns the attributes after the change.
    pub async fn set_attributes(
        &self,
        room: &str,
        set: Attributes,
        remove: Vec<String>,
    ) -> Result<Attributes, RequestError> {
        let body = RequestBody::SetAttributes { room: room.into(), set, remove };
        match self.session.request(body).await? {
            ResponseBody::Attributes { attributes, .. } => Ok(attributes),
            other => Err(unexpected("attributes", &other)),
        }
    }

    /// The attributes of `user` in `room`.
    pub async fn attributes(&self, room: &str, user: &str) -> Result<Attributes, RequestError> {
        let body = RequestBody::GetAttributes { room: room.into(), user: user.into() };
        match self.session.request(body).await? {
            ResponseBody::Attributes { attributes, .. } => Ok(attributes),
            other => Err(unexpected("attributes", &other)),
        }
    }

    /// How many members `room` has.
    pub async fn member_count(&self, room: &str) -> Result<u64, RequestError> {
        match self.session.request(RequestBody::MemberCount { room: room.into() }).await? {
            ResponseBody::MemberCount { count, .. } => Ok(count),
            other => Err(unexpected("member_count", &other)),
        }
    }

    /// One page of the member list of `room`, ordered by user id: at most `limit` members after
    /// user `after` (from the start with `None`). Pass the page's [`MemberPage::next`] as
    /// `after` to get the next page; it is `None` on the last one.
    pub async fn members(
        &self,
        room: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<MemberPage, RequestError> {
        let body =
            RequestBody::Members { room: room.into(), after: after.map(str::to_owned), limit };
        match self.session.request(body).await? {
            ResponseBody::Members(page) => Ok(page),
            other => Err(unexpected("members", &other)),
        }
    }

    /// Closes the connection with [`CloseCode::Normal`] and waits, at most 3 s, until the close
    /// has been delivered. Requests still waiting fail with [`RequestError::Disconnected`];
    /// the events end with [`Event::Disconnected`](crate::Event::Disconnected).
    pub async fn close(&self) {
        self.session.close(CloseCode::Normal, "client closed", CLOSE_LINGER).await;
    }

    async fn done(&self, body: RequestBody) -> Result<(), RequestError> {
        match self.session.request(body).await? {
            ResponseBody::Done => Ok(()),
            other => Err(unexpected("done", &other)),
        }
    }
}

fn unexpected(expected: &'static str, got: &ResponseBody) -> RequestError {
    let got = match got {
        ResponseBody::Done => "done",
        ResponseBody::RoomCreated { .. } => "room_created",
        ResponseBody::Joined(_) => "joined",
        ResponseBody::Sent { .. } => "sent",
        ResponseBody::Attributes { .. } => "attributes",
        ResponseBody::MemberCount { .. } => "member_count",
        ResponseBody::Members(_) => "members",
    };
    RequestError::UnexpectedResponse { expected, got }
}

/// Whole seconds, rounded up, so that a short mute is never sent as "0 seconds".
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up() {
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
