//! Every frame of the protocol.
//!
//! Three streams carry three frame types:
//!
//! ```text
//! session stream (bidirectional, opened by the client, one per connection)
//!     client ─▶ server   ClientFrame: Hello first, then Requests
//!     server ─▶ client   ServerFrame: Welcome (or Rejected) first, then Responses and GoingAway
//! room stream (unidirectional, opened by the server, one per joined room)
//!     server ─▶ client   RoomFrame: Open first, then room content in order, Left last
//! ```
//!
//! Enum variants are encoded by their index, so variants are only ever appended, never reordered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorFrame;

/// A member's custom attributes: string keys to string values, ordered by key.
pub type Attributes = BTreeMap<String, String>;

/// A frame the client sends on the session stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// The first frame of a session stream; exactly once.
    Hello(Hello),
    /// A request; the server answers each with one [`ServerFrame::Response`] of the same id.
    Request(Request),
}

/// Opens a session: who the client is and which protocol it speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's protocol version; the server refuses versions it does not speak.
    pub version: u32,
    /// The user id the client wants to act as.
    pub user: String,
    /// A credential for the server's authentication (opaque to the protocol).
    pub token: Option<String>,
    /// A free-form description of the client software, for logs (e.g. `chatroom-cli/0.1.0`).
    pub agent: String,
    /// Present when the client comes back after losing its connection: the session to resume
    /// and how far the client got in each room.
    pub resume: Option<ResumeRequest>,
}

/// What a reconnecting client asks to resume.
///
/// Safe to replay (it may travel as 0-RTT data): resuming changes no room state. It attaches
/// one more connection to an existing session and replays messages the session was entitled to
/// anyway; a replayed copy on a connection whose handshake never completes is detached when
/// that connection fails, without disturbing the genuine one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRequest {
    /// The [`Welcome::resume_token`] of the session to resume.
    pub token: String,
    /// The last sequence number the client received in each of its rooms.
    pub rooms: Vec<RoomPosition>,
}

/// How far a client got in one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPosition {
    /// The room.
    pub room: String,
    /// The last sequence number received, or covered by a [`RoomFrame::Gap`]. Before anything
    /// arrived on a fresh membership, `JoinedRoom::next_seq - 1`; after a resume, keep the
    /// position reached before it (the resumed stream replays from there).
    pub last_seq: u64,
    /// The last private sequence number ([`PrivateMessage::seq`]) received in the room, or
    /// covered by a [`RoomFrame::PrivateGap`]; 0 when none has arrived on this membership.
    pub last_private_seq: u64,
}

/// A request and the id its response will echo. Ids are chosen by the client; the server only
/// echoes them, so a client should keep them unique among its outstanding requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the [`Response`].
    pub id: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// What a request asks for. Every room-scoped request names its room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// Create a room (a random id when `room` is `None`); the caller becomes its owner.
    /// Answered by [`ResponseBody::RoomCreated`].
    CreateRoom {
        /// The id wanted, or `None` for a server-chosen one.
        room: Option<String>,
    },
    /// Join a room. Answered by [`ResponseBody::Joined`]; room content then flows on a new room
    /// stream.
    Join {
        /// The room.
        room: String,
    },
    /// Leave a room. Answered by [`ResponseBody::Done`]; the room stream ends with
    /// [`RoomFrame::Left`].
    Leave {
        /// The room.
        room: String,
    },
    /// Send a message to everybody in the room, the sender included. Answered by
    /// [`ResponseBody::Sent`] with the message's sequence number.
    Send {
        /// The room.
        room: String,
        /// The message.
        text: String,
        /// An optional application tag (e.g. `image`, `sticker`).
        kind: Option<String>,
        /// How important the message is when a receiver cannot keep up.
        priority: Priority,
    },
    /// Send a private message to one member of the room (all of that user's connections).
    /// Answered by [`ResponseBody::Done`].
    Private {
        /// The room both users are in.
        room: String,
        /// The receiving user.
        to: String,
        /// The message.
        text: String,
        /// An optional application tag.
        kind: Option<String>,
    },
    /// Grant (`role = Admin`) or revoke (`role = Member`) the admin role. Owner only.
    /// Answered by [`ResponseBody::Done`].
    SetRole {
        /// The room.
        room: String,
        /// The member whose role changes.
        user: String,
        /// `Admin` or `Member`; `Owner` cannot be granted.
        role: Role,
    },
    /// Mute a member, for `seconds` or until unmuted. Owner or admin; answered by
    /// [`ResponseBody::Done`].
    Mute {
        /// The room.
        room: String,
        /// The member to mute.
        user: String,
        /// How long, or `None` until unmuted.
        seconds: Option<u64>,
    },
    /// Lift a mute. Owner or admin; answered by [`ResponseBody::Done`].
    Unmute {
        /// The room.
        room: String,
        /// The muted user.
        user: String,
    },
    /// Remove a member from the room and ban it for the server's ban time. Owner or admin;
    /// answered by [`ResponseBody::Done`].
    Kick {
        /// The room.
        room: String,
        /// The member to remove.
        user: String,
    },
    /// Set and remove the caller's own attributes in the room. Answered by
    /// [`ResponseBody::Attributes`] with the caller's attributes after the change.
    SetAttributes {
        /// The room.
        room: String,
        /// Keys to set, with their values.
        set: Attributes,
        /// Keys to remove.
        remove: Vec<String>,
    },
    /// Fetch one member's attributes. Answered by [`ResponseBody::Attributes`].
    GetAttributes {
        /// The room.
        room: String,
        /// The member.
        user: String,
    },
    /// Fetch the member count. Answered by [`ResponseBody::MemberCount`].
    MemberCount {
        /// The room.
        room: String,
    },
    /// Fetch one page of the member list, ordered by user id. Answered by
    /// [`ResponseBody::Members`].
    Members {
        /// The room.
        room: String,
        /// Start after this user id (the previous page's `next`), or from the start.
        after: Option<String>,
        /// The most members wanted; the server may return fewer.
        limit: u32,
    },
}

/// A frame the server sends on the session stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The answer to a successful [`Hello`]; the first frame the server sends.
    Welcome(Welcome),
    /// The answer to a refused [`Hello`]; the server closes the connection after it.
    Rejected(ErrorFrame),
    /// The answer to a [`Request`].
    Response(Response),
    /// The server is shutting down; the connection closes with [`crate::CloseCode::GoingAway`]
    /// shortly after.
    GoingAway {
        /// Why, for people.
        reason: String,
    },
}

/// The server's welcome: the session is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version the server speaks on this connection.
    pub version: u32,
    /// The user id the session acts as (as authenticated).
    pub user: String,
    /// The server's region name.
    pub region: String,
    /// An identifier of the session, for logs and support.
    pub session_id: String,
    /// Limits the server enforces, so that clients can check before sending.
    pub limits: SessionLimits,
    /// An opaque, tamper-proof token to present in [`ResumeRequest::token`] after a lost
    /// connection. Each welcome carries a fresh one; keep the newest.
    pub resume_token: String,
    /// How long, in milliseconds, the server keeps a session whose connection was lost.
    pub resume_window_ms: u64,
    /// Whether the [`Hello::resume`] request was honoured: the same session goes on.
    pub resumed: bool,
    /// Why a resume request was refused (then this is a fresh session), for logs.
    pub resume_refused: Option<ErrorFrame>,
    /// When resumed: every room of the session, each on a new room stream that first replays
    /// the messages after the client's [`RoomPosition::last_seq`] (or reports a
    /// [`RoomFrame::Gap`] for what is no longer available). Empty otherwise.
    pub rooms: Vec<JoinedRoom>,
}

/// The limits a server enforces, announced in the [`Welcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimits {
    /// The largest frame body the server accepts, in bytes.
    pub max_frame_len: u32,
    /// The largest message text, in bytes of UTF-8.
    pub max_message_len: u32,
    /// The most attribute keys a member may hold in a room.
    pub max_attribute_keys: u32,
    /// The most bytes (keys plus values) of a member's attributes in a room.
    pub max_attributes_len: u32,
    /// The most rooms one session may be in at once.
    pub max_rooms_per_connection: u32,
    /// The largest page of [`RequestBody::Members`].
    pub max_members_page: u32,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The [`Request::id`] this answers.
    pub id: u64,
    /// What happened.
    pub result: Result<ResponseBody, ErrorFrame>,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseBody {
    /// Done; nothing to report.
    Done,
    /// A room was created.
    RoomCreated {
        /// Its id.
        room: String,
    },
    /// A room was joined.
    Joined(JoinedRoom),
    /// A message was accepted.
    Sent {
        /// The room.
        room: String,
        /// The sequence number the message was given.
        seq: u64,
    },
    /// One member's attributes.
    Attributes {
        /// The room.
        room: String,
        /// The member.
        user: String,
        /// Its attributes.
        attributes: Attributes,
    },
    /// The member count of a room.
    MemberCount {
        /// The room.
        room: String,
        /// How many members it has.
        count: u64,
    },
    /// One page of the member list.
    Members(MemberPage),
}

/// What a successful join returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedRoom {
    /// The room.
    pub room: String,
    /// The caller's role in it.
    pub role: Role,
    /// How many members it has, the caller included.
    pub members: u64,
    /// The sequence number the next message of the room will get. For a join, the first one
    /// this member receives; for a room of a resumed session, the first live one after the
    /// replay.
    pub next_seq: u64,
    /// The id of the room stream that carries this membership's content (see [`RoomFrame::Open`]).
    pub stream_id: u64,
    /// Which incarnation of the room this is: chosen at random when the room is created, so a
    /// room that ceased to exist (the server restarted, or the room was dropped when empty) and
    /// was created again under the same name has another. Sequence numbers of different
    /// epochs are unrelated: a client that joins again and finds another epoch missed the new
    /// room's messages `1..next_seq`, whatever its old position.
    pub epoch: u64,
}

/// One page of a room's member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPage {
    /// The room.
    pub room: String,
    /// The total member count.
    pub count: u64,
    /// Members on this page, ordered by user id.
    pub members: Vec<MemberInfo>,
    /// The user id to pass as `after` for the next page, or `None` on the last page.
    pub next: Option<String>,
}

/// One member in a member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The user id.
    pub user: String,
    /// The member's role.
    pub role: Role,
    /// The member's attributes.
    pub attributes: Attributes,
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// A plain member.
    Member,
    /// May mute and kick members.
    Admin,
    /// The room's creator: may also grant and revoke admin.
    Owner,
}

impl Role {
    /// The lowercase name (`member`, `admin`, `owner`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// How important a message is. It travels with the message to every receiver, and decides what
/// is shed under load: for a receiver that cannot keep up, `Low` messages go first, then
/// `Normal` (each reported to it as a [`RoomFrame::Gap`]); `High` is never shed. A crowded room
/// also refuses `Low` sends first. See `PROTOCOL.md`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Priority {
    /// Shed first (e.g. likes, typing notices).
    Low,
    /// Ordinary chat.
    #[default]
    Normal,
    /// Never shed (e.g. announcements).
    High,
}

impl Priority {
    /// The lowercase name (`low`, `normal`, `high`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }
}

/// A frame on a room stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomFrame {
    /// The first frame of every room stream: which room and which membership it carries.
    Open {
        /// The room.
        room: String,
        /// Matches [`JoinedRoom::stream_id`].
        stream_id: u64,
    },
    /// A room message.
    Message(RoomMessage),
    /// A private message to this user.
    Private(PrivateMessage),
    /// A member joined (only while the room is below the server's presence limit).
    MemberJoined {
        /// Who.
        user: String,
        /// With which role.
        role: Role,
    },
    /// A member left (only while the room is below the server's presence limit).
    MemberLeft {
        /// Who.
        user: String,
    },
    /// A member's role changed (only while the room is below the server's presence limit).
    RoleChanged {
        /// Whose.
        user: String,
        /// The new role.
        role: Role,
        /// Who changed it.
        by: String,
    },
    /// A member was muted.
    Muted {
        /// Who.
        user: String,
        /// By whom.
        by: String,
        /// For how long, or `None` until unmuted.
        seconds: Option<u64>,
    },
    /// A member was unmuted.
    Unmuted {
        /// Who.
        user: String,
        /// By whom. (A timed mute that runs out ends silently, with no event.)
        by: String,
    },
    /// A member was kicked. The kicked member receives this too, then [`RoomFrame::Left`].
    Kicked {
        /// Who.
        user: String,
        /// By whom.
        by: String,
    },
    /// A member's attributes changed (only while the room is below the server's presence limit).
    AttributesChanged {
        /// Whose.
        user: String,
        /// All of its attributes after the change.
        attributes: Attributes,
    },
    /// The member count, sent periodically instead of presence events in large rooms.
    MemberCount {
        /// How many members the room has.
        count: u64,
    },
    /// The last frame of a room stream: this membership ended.
    Left {
        /// Why.
        reason: LeaveReason,
    },
    /// Messages `from..=to` exist but will never be delivered on this stream: they were shed
    /// because the receiver could not keep up, or are too old to replay after a resume. Never a
    /// silent hole: every missing sequence number is covered by a message or a gap.
    Gap {
        /// The first sequence number missed.
        from: u64,
        /// The last sequence number missed.
        to: u64,
    },
    /// Private messages `from..=to` (private sequence numbers) were sent to this member while
    /// its connection was lost, and were no longer kept when its session resumed (too old, or
    /// beyond what the server keeps per member).
    PrivateGap {
        /// The first private sequence number missed.
        from: u64,
        /// The last private sequence number missed.
        to: u64,
    },
}

/// A message sent to a room, as every member receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMessage {
    /// Its sequence number in the room: strictly increasing by one, no holes.
    pub seq: u64,
    /// The sender's user id.
    pub from: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The application tag, if any.
    pub kind: Option<String>,
    /// Its priority.
    pub priority: Priority,
    /// The text.
    pub text: String,
}

/// A private message, as its receiver gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateMessage {
    /// The receiver's private sequence number in this room: 1 for the first private message to
    /// this membership, then one more for each. It is the receiver's own count (one sender's
    /// messages do not get consecutive numbers when others write too), and a resume replays
    /// from the one after [`RoomPosition::last_private_seq`].
    pub seq: u64,
    /// The sender's user id.
    pub from: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The application tag, if any.
    pub kind: Option<String>,
    /// The text.
    pub text: String,
}

/// Why a membership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaveReason {
    /// The client asked to leave.
    Requested,
    /// The member was kicked.
    Kicked,
    /// The server is shutting down.
    ServerShutdown,
}
