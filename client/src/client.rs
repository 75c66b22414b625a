//! [`Client`]: the request API of a session, which outlives its connections.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chatroom_protocol::{
    Attributes, JoinedRoom, MemberPage, Priority, RequestBody, ResponseBody, Role, SessionLimits,
};
use tracing::warn;

use crate::error::RequestError;
use crate::session::SessionState;

/// Options of [`Client::send_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// An application tag for the message (e.g. `image`, `sticker`), if any.
    pub kind: Option<String>,
    /// How important the message is when a receiver cannot keep up.
    pub priority: Priority,
}

/// A session with a chatroom server.
///
/// Cloning is cheap and every clone drives the same session; all methods take `&self` and may
/// run concurrently. Room content and connection changes arrive on the
/// [`Events`](crate::Events) returned alongside.
///
/// # Lost connections
///
/// The client and its events stay valid when the connection is lost: the client reconnects by
/// itself (with back-off and jitter), resumes its session where the server still holds it, or
/// else starts a fresh one and joins its rooms again, and says so in its events
/// ([`Event::Reconnecting`](crate::Event::Reconnecting),
/// [`Event::Resumed`](crate::Event::Resumed), [`Event::NewSession`](crate::Event::NewSession)).
/// Meanwhile:
///
/// - a request made while reconnecting waits for the next session and then goes out, within
///   the request timeout ([`RequestError::Timeout`] otherwise);
/// - a request in flight when the connection dropped fails with
///   [`RequestError::ConnectionLost`]: it may or may not have been carried out. (A join may turn
///   out to have happened: its room's events then flow after the reconnection. A leave is
///   completed: the room ends with [`Event::Left`](crate::Event::Left) unless the resumed session
///   still holds it.)
///
/// The session ends for good, with [`Event::Disconnected`](crate::Event::Disconnected), when
/// [`close`](Self::close) is called or the last clone is dropped (which ends the session on the
/// server at once), when the server refuses the client for good, or when reconnection gives up
/// ([`ClientBuilder::max_reconnect_duration`](crate::ClientBuilder::max_reconnect_duration)).
/// Requests then fail with [`RequestError::Disconnected`].
///
/// Requests are answered in any order relative to one another; each method waits for its own
/// answer.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Closes the session when the last [`Client`] goes.
struct Inner {
    state: Arc<SessionState>,
    user: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.state.close_soon();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("user", &self.inner.user)
            .field("session_id", &self.inner.state.session_id())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(state: Arc<SessionState>) -> Self {
        let user = state.user();
        Self { inner: Arc::new(Inner { state, user }) }
    }

    fn state(&self) -> &SessionState {
        &self.inner.state
    }

    /// The user id the session acts as, as the server authenticated it.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// The server's region.
    pub fn region(&self) -> String {
        self.state().region()
    }

    /// The session's id, for logs and support. It changes when a lost session could not be
    /// resumed and a fresh one started.
    pub fn session_id(&self) -> String {
        self.state().session_id()
    }

    /// The limits the server enforces (as of its newest welcome).
    pub fn limits(&self) -> SessionLimits {
        self.state().limits()
    }

    /// Whether a session is open now (not reconnecting, not closed).
    pub fn is_connected(&self) -> bool {
        self.state().is_connected()
    }

    /// The rooms the client is in, as far as it knows (rooms it is joining again after a
    /// reconnection included), by name.
    pub fn rooms(&self) -> Vec<String> {
        self.state().rooms().rooms()
    }

    /// The local address of the client's UDP socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.state().connector.endpoint().local_addr()
    }

    /// Moves the connection to a fresh UDP socket on the same local IP address (a new port),
    /// and returns its address. The QUIC connection migrates: the server sees the new address
    /// and validates the path; there is no reconnection and nothing is lost. The client does
    /// this by itself to probe a path that went quiet (see
    /// [`ClientBuilder::path_probe_after`](crate::ClientBuilder::path_probe_after)).
    pub fn rebind(&self) -> io::Result<SocketAddr> {
        self.state().connector.rebind()
    }

    /// Tells the client that the device's network changed (e.g. Wi-Fi to LTE): it rebinds at
    /// once, which makes the connection probe the new path right away, and if nothing arrives
    /// within [`ClientBuilder::network_change_timeout`](crate::ClientBuilder::network_change_timeout)
    /// it reconnects (resuming the session) instead of waiting for the idle timeout. While
    /// reconnecting, it cuts the back-off short and tries at once.
    pub fn network_changed(&self) {
        if let Err(error) = self.rebind() {
            warn!(%error, "network changed, but the client cannot rebind");
        }
        self.state().network_changed();
    }

    /// Creates a room, named `room` or, with `None`, with an id the server chooses; returns its
    /// id. The caller becomes its owner (it does not join it).
    pub async fn create_room(&self, room: Option<&str>) -> Result<String, RequestError> {
        let body = RequestBody::CreateRoom { room: room.map(str::to_owned) };
        match self.request(body).await? {
            ResponseBody::RoomCreated { room } => Ok(room),
            other => Err(unexpected("room_created", &other)),
        }
    }

    /// Joins a room. Its content then arrives as events, starting with the message numbered
    /// [`JoinedRoom::next_seq`]; events may arrive before this returns. The membership lasts
    /// until the room's [`Event::Left`](crate::Event::Left) (or
    /// [`Event::RejoinFailed`](crate::Event::RejoinFailed)): across reconnections, the client
    /// takes the room up again by itself.
    pub async fn join(&self, room: &str) -> Result<JoinedRoom, RequestError> {
        match self.request(RequestBody::Join { room: room.into() }).await? {
            ResponseBody::Joined(joined) => Ok(joined),
            other => Err(unexpected("joined", &other)),
        }
    }

    /// Leaves a room. The room's last event, [`Event::Left`](crate::Event::Left), follows on
    /// the events.
    ///
    /// If the connection is lost before the answer ([`RequestError::ConnectionLost`]), the
    /// client completes the leave after reconnecting: it does not join the room again, and the
    /// room ends with [`Event::Left`](crate::Event::Left) unless the resumed session still holds
    /// it (then the leave did not happen and may be asked again).
    pub async fn leave(&self, room: &str) -> Result<(), RequestError> {
        let state = self.state();
        let body = RequestBody::Leave { room: room.into() };
        let result = state.request(body, || state.rooms().leave_requested(room)).await;
        let result = match result {
            Ok(ResponseBody::Done) => Ok(()),
            Ok(other) => Err(unexpected("done", &other)),
            Err(error) => Err(error),
        };
        match &result {
            Ok(()) | Err(RequestError::ConnectionLost(_)) => {}
            Err(RequestError::Timeout { sent: true, .. }) => {}
            Err(_) => state.rooms().leave_failed(room),
        }
        result
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
        match self.request(body).await? {
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
        match self.request(body).await? {
            ResponseBody::Attributes { attributes, .. } => Ok(attributes),
            other => Err(unexpected("attributes", &other)),
        }
    }

    /// The attributes of `user` in `room`.
    pub async fn attributes(&self, room: &str, user: &str) -> Result<Attributes, RequestError> {
        let body = RequestBody::GetAttributes { room: room.into(), user: user.into() };
        match self.request(body).await? {
            ResponseBody::Attributes { attributes, .. } => Ok(attributes),
            other => Err(unexpected("attributes", &other)),
        }
    }

    /// How many members `room` has.
    pub async fn member_count(&self, room: &str) -> Result<u64, RequestError> {
        match self.request(RequestBody::MemberCount { room: room.into() }).await? {
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
        match self.request(body).await? {
            ResponseBody::Members(page) => Ok(page),
            other => Err(unexpected("members", &other)),
        }
    }

    /// Closes the connection with [`CloseCode::Normal`](crate::CloseCode::Normal), which ends
    /// the session on the server, stops reconnecting, and waits, at most 3 s, until the close
    /// has been delivered. Requests still waiting fail; the events end with
    /// [`Event::Disconnected`](crate::Event::Disconnected).
    pub async fn close(&self) {
        self.state().close().await;
    }

    async fn request(&self, body: RequestBody) -> Result<ResponseBody, RequestError> {
        self.state().request(body, || {}).await
    }

    async fn done(&self, body: RequestBody) -> Result<(), RequestError> {
        match self.request(body).await? {
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
