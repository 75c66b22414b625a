//! One room: members, roles, mutes, bans, the message sequence and its replay buffer.
//!
//! Plain state with no I/O and no clock: every operation that depends on time takes `now`, and
//! fan-out is a push of one encoded frame into each member's [`OutboundQueue`]. The registry
//! keeps each room behind a short-lived lock; nothing here awaits.
//!
//! Rules worth knowing (see `protocol/PROTOCOL.md` for the full list):
//! - Membership belongs to *sessions*: a user is a member while at least one of its sessions
//!   holds the membership, however many connections it has. A session whose connection is lost
//!   keeps its memberships for the resume window (the room sees no leave), and a resumed
//!   session gets a new stream that replays what it missed from the room's replay buffer.
//! - Admin role and attributes end with the membership; ownership belongs to the room: its
//!   creator is Owner whenever it is a member.
//! - Mutes and bans belong to the room too, so that leaving and rejoining does not lift them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatroom_protocol::{
    Attributes, ErrorCode, ErrorFrame, JoinedRoom, LeaveReason, MemberInfo, MemberPage, Priority,
    PrivateMessage, Role, RoomFrame, RoomMessage, RoomPosition, validate_kind,
};

use crate::config::ServerConfig;
use crate::outbound::OutboundQueue;
use crate::ratelimit::TokenBucket;

/// Identifies one connection within this server process.
pub type ConnId = u64;

/// Identifies one session within this server process.
pub type SessionKey = u64;

/// One connection's subscription to a room: where its frames go.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The connection.
    pub conn: ConnId,
    /// The session the connection serves.
    pub session: SessionKey,
    /// The id announced in the stream's [`RoomFrame::Open`].
    pub stream_id: u64,
    /// The queue drained into the connection's room stream.
    pub queue: Arc<OutboundQueue>,
}

#[derive(Debug)]
struct Member {
    role: Role,
    attributes: Attributes,
    /// The sessions holding this membership, with what each one is entitled to.
    sessions: HashMap<SessionKey, Entitled>,
    /// The live streams of those sessions' connections.
    subscribers: Vec<Subscriber>,
    /// The private sequence number of the next private message to this member.
    next_private_seq: u64,
    /// The latest private messages to this member, oldest first, bounded by count, bytes and
    /// age.
    privates: VecDeque<KeptPrivate>,
    /// The encoded size of `privates`.
    private_bytes: usize,
}

impl Member {
    /// Keeps a private message for this member's sessions that resume later.
    fn keep_private(&mut self, kept: KeptPrivate) {
        self.private_bytes += kept.frame.len();
        self.privates.push_back(kept);
    }

    /// Forgets kept private messages beyond the configured count, bytes and age; returns how
    /// many it forgot.
    fn trim_privates(&mut self, now: Instant, config: &ServerConfig) -> usize {
        let mut forgotten = 0;
        while let Some(oldest) = self.privates.front() {
            let too_many = self.privates.len() > config.private_replay_messages
                || self.private_bytes > config.private_replay_bytes;
            let too_old = now.saturating_duration_since(oldest.at) > config.replay_buffer_age;
            if !too_many && !too_old {
                break;
            }
            self.private_bytes -= oldest.frame.len();
            self.privates.pop_front();
            forgotten += 1;
        }
        forgotten
    }
}

/// Where a session's hold on a membership starts: nothing from before it is replayed to it.
#[derive(Debug, Clone, Copy)]
struct Entitled {
    /// The first room message.
    seq: u64,
    /// The first private message.
    private_seq: u64,
}

/// A message kept for replay after a resume.
#[derive(Debug)]
struct Replay {
    seq: u64,
    priority: Priority,
    at: Instant,
    frame: Bytes,
}

/// A private message kept for replay after a resume.
#[derive(Debug)]
struct KeptPrivate {
    seq: u64,
    /// The room's `next_seq` when it was accepted: it came after every room message before
    /// that one, and before that one.
    before_seq: u64,
    at: Instant,
    frame: Bytes,
}

/// A room's state.
#[derive(Debug)]
pub struct Room {
    id: String,
    /// This incarnation of the room, announced in every [`JoinedRoom`]: random, so that a room
    /// created again under the same name (after a restart, or after it was dropped) differs.
    epoch: u64,
    creator: String,
    next_seq: u64,
    members: BTreeMap<String, Member>,
    /// The latest messages, oldest first, bounded by count and age.
    history: VecDeque<Replay>,
    /// How many private messages the members keep in all (so that `maintain` only looks for
    /// old ones when there are some).
    kept_privates: usize,
    /// Muted users: until when, or `None` until unmuted.
    mutes: HashMap<String, Option<Instant>>,
    /// Kicked users and when their ban ends.
    bans: HashMap<String, Instant>,
    /// Since when the room has had no member.
    empty_since: Option<Instant>,
    /// The member count last announced to a large room, and when.
    announced_count: Option<(u64, Instant)>,
    /// Set when the registry dropped the room; a stale handle then refuses everything.
    closed: bool,
    /// The room's inbound message rate (created on the first message).
    inbound: Option<TokenBucket>,
    /// The pause after each write on the members' streams (see `fanout_batch_interval`).
    pace: Duration,
}

/// What authentication granted a joining member.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// A role above the room's usual one (`Owner` or `Admin`).
    pub role: Option<Role>,
    /// Initial attributes.
    pub attributes: Attributes,
}

fn attributes_fit(attributes: &Attributes, config: &ServerConfig) -> bool {
    let len: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
    attributes.len() <= config.max_attribute_keys
        && len <= config.max_attributes_len
        && attributes.keys().all(|k| !k.is_empty())
}

fn not_in_room(user: &str, room: &str) -> ErrorFrame {
    error(ErrorCode::NotAMember, format!("{user} is not in room {room}"))
}

fn error(code: ErrorCode, message: impl Into<String>) -> ErrorFrame {
    ErrorFrame::new(code, message)
}

fn encode(frame: &RoomFrame) -> Result<Bytes, ErrorFrame> {
    // Only a frame over the protocol maximum fails to encode, and every input was checked
    // against far smaller limits first; should it happen anyway, it is our bug, not the peer's.
    chatroom_protocol::encode(frame).map_err(|e| error(ErrorCode::Internal, e.to_string()))
}

impl Room {
    /// A new, empty room created by `creator`.
    pub fn new(id: String, creator: String, now: Instant) -> Self {
        Self {
            id,
            epoch: rand::random(),
            creator,
            next_seq: 1,
            members: BTreeMap::new(),
            history: VecDeque::new(),
            kept_privates: 0,
            mutes: HashMap::new(),
            bans: HashMap::new(),
            empty_since: Some(now),
            announced_count: None,
            closed: false,
            inbound: None,
            pace: Duration::ZERO,
        }
    }

    /// The room id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many members the room has.
    pub fn member_count(&self) -> u64 {
        self.members.len() as u64
    }

    /// The sequence number the next message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the registry dropped this room.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn check_open(&self) -> Result<(), ErrorFrame> {
        if self.closed {
            return Err(error(ErrorCode::RoomNotFound, format!("room {} was closed", self.id)));
        }
        Ok(())
    }

    fn member(&self, user: &str) -> Result<&Member, ErrorFrame> {
        self.members.get(user).ok_or_else(|| not_in_room(user, &self.id))
    }

    fn member_mut(&mut self, user: &str) -> Result<&mut Member, ErrorFrame> {
        self.members.get_mut(user).ok_or_else(|| not_in_room(user, &self.id))
    }

    /// Batches the fan-out of a room that grew large, and stops batching when it shrinks.
    fn update_pacing(&mut self, config: &ServerConfig) {
        let large = self.members.len() >= config.fanout_batch_min_members;
        let pace = if large { config.fanout_batch_interval } else { Duration::ZERO };
        if pace == self.pace {
            return;
        }
        self.pace = pace;
        for sub in self.members.values().flat_map(|m| &m.subscribers) {
            sub.queue.set_pace(pace);
        }
    }

    fn presence_on(&self, config: &ServerConfig) -> bool {
        self.members.len() < config.presence_event_limit
    }

    /// Sends one control frame, encoded once, to every subscriber of every member except
    /// `except`.
    fn broadcast(&self, frame: &RoomFrame, except: Option<&str>) -> Result<(), ErrorFrame> {
        let bytes = encode(frame)?;
        for (user, member) in &self.members {
            if Some(user.as_str()) == except {
                continue;
            }
            for sub in &member.subscribers {
                sub.queue.push(bytes.clone());
            }
        }
        Ok(())
    }

    fn banned_until(&mut self, user: &str, now: Instant) -> Option<Instant> {
        match self.bans.get(user) {
            Some(&until) if until > now => Some(until),
            Some(_) => {
                self.bans.remove(user);
                None
            }
            None => None,
        }
    }

    /// Adds `sub`'s session to the room as `user`. The subscriber's queue receives
    /// [`RoomFrame::Open`] first, then everything the room says from now on.
    pub fn join(
        &mut self,
        user: &str,
        sub: Subscriber,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<JoinedRoom, ErrorFrame> {
        self.join_with(user, sub, &Grant::default(), now, config)
    }

    /// [`Room::join`], with what the authentication granted: a role above the room's usual one,
    /// and initial attributes (ignored, with a warning, when over the attribute limits).
    pub fn join_with(
        &mut self,
        user: &str,
        sub: Subscriber,
        grant: &Grant,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<JoinedRoom, ErrorFrame> {
        self.check_open()?;
        if let Some(until) = self.banned_until(user, now) {
            let secs = (until - now).as_secs_f64().ceil() as u64;
            return Err(error(
                ErrorCode::Banned,
                format!("you were kicked from room {}; try again in {secs} s", self.id),
            ));
        }
        if self.members.get(user).is_some_and(|m| m.sessions.contains_key(&sub.session)) {
            return Err(error(ErrorCode::AlreadyJoined, format!("already in room {}", self.id)));
        }
        sub.queue
            .push(encode(&RoomFrame::Open { room: self.id.clone(), stream_id: sub.stream_id })?);
        sub.queue.set_pace(self.pace);
        let stream_id = sub.stream_id;
        let next_seq = self.next_seq;
        let granted = grant.role.unwrap_or(Role::Member);
        let role = match self.members.get_mut(user) {
            Some(member) => {
                let private_seq = member.next_private_seq;
                member.sessions.insert(sub.session, Entitled { seq: next_seq, private_seq });
                member.subscribers.push(sub);
                member.role = member.role.max(granted);
                member.role
            }
            None => {
                let usual = if user == self.creator { Role::Owner } else { Role::Member };
                let role = usual.max(granted);
                let attributes = if attributes_fit(&grant.attributes, config) {
                    grant.attributes.clone()
                } else {
                    tracing::warn!(%user, room = %self.id, "granted attributes exceed the limits; ignored");
                    Attributes::new()
                };
                let member = Member {
                    role,
                    attributes,
                    sessions: HashMap::from([(
                        sub.session,
                        Entitled { seq: next_seq, private_seq: 1 },
                    )]),
                    subscribers: vec![sub],
                    next_private_seq: 1,
                    privates: VecDeque::new(),
                    private_bytes: 0,
                };
                self.members.insert(user.to_string(), member);
                if self.presence_on(config) {
                    let frame = RoomFrame::MemberJoined { user: user.to_string(), role };
                    self.broadcast(&frame, Some(user))?;
                }
                role
            }
        };
        self.empty_since = None;
        self.update_pacing(config);
        Ok(JoinedRoom {
            room: self.id.clone(),
            role,
            members: self.member_count(),
            next_seq,
            stream_id,
            epoch: self.epoch,
        })
    }

    /// Gives `sub` (a new connection of a resumed session) a stream of the membership its
    /// session holds: [`RoomFrame::Open`], then what the session missed after `position` (what
    /// the client says it received; `None` means "nothing since joining"): every room message
    /// still in the replay buffer (a [`RoomFrame::Gap`] first for older ones) and every private
    /// message still kept (a [`RoomFrame::PrivateGap`] first for older ones), merged in the
    /// order the room accepted them; then the room live.
    pub fn reattach(
        &mut self,
        user: &str,
        sub: Subscriber,
        position: Option<&RoomPosition>,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<JoinedRoom, ErrorFrame> {
        self.check_open()?;
        let not_member = || error(ErrorCode::NotAMember, format!("no longer in room {}", self.id));
        let member = self.members.get_mut(user).ok_or_else(not_member)?;
        let &entitled = member.sessions.get(&sub.session).ok_or_else(not_member)?;
        self.kept_privates -= member.trim_privates(now, config);
        let member = &self.members[user];
        // Nothing from before the session joined, nothing from the future.
        let from = position.map_or(entitled.seq, |p| p.last_seq.saturating_add(1));
        let from = from.clamp(entitled.seq, self.next_seq);
        let private_from =
            position.map_or(entitled.private_seq, |p| p.last_private_seq.saturating_add(1));
        let private_from = private_from.clamp(entitled.private_seq, member.next_private_seq);
        sub.queue
            .push(encode(&RoomFrame::Open { room: self.id.clone(), stream_id: sub.stream_id })?);
        sub.queue.set_pace(self.pace);
        let oldest = self.history.front().map_or(self.next_seq, |r| r.seq);
        if from < oldest {
            sub.queue.push_gap(from, oldest.min(self.next_seq) - 1);
        }
        let oldest_private = member.privates.front().map_or(member.next_private_seq, |p| p.seq);
        if private_from < oldest_private {
            let to = oldest_private.min(member.next_private_seq) - 1;
            let gap = encode(&RoomFrame::PrivateGap { from: private_from, to })?;
            sub.queue.push_replay_control(gap);
        }
        // Both in the order the room accepted them: a private message goes before the first
        // room message that was not yet accepted when it was.
        let mut privates = member.privates.iter().filter(|p| p.seq >= private_from).peekable();
        for replay in self.history.iter().filter(|r| r.seq >= from) {
            while let Some(private) = privates.next_if(|p| p.before_seq <= replay.seq) {
                sub.queue.push_replay_control(private.frame.clone());
            }
            sub.queue.push_replay(replay.seq, replay.priority, replay.frame.clone());
        }
        for private in privates {
            sub.queue.push_replay_control(private.frame.clone());
        }
        let joined = JoinedRoom {
            room: self.id.clone(),
            role: member.role,
            members: self.member_count(),
            next_seq: self.next_seq,
            stream_id: sub.stream_id,
            epoch: self.epoch,
        };
        if let Some(member) = self.members.get_mut(user) {
            member.subscribers.push(sub);
        }
        Ok(joined)
    }

    /// Ends `session`'s hold on `user`'s membership; its streams end with `last` (`None` when
    /// its connections are gone). When no session holds the membership any more, the user
    /// stops being a member and the room is told.
    fn remove_session(
        &mut self,
        user: &str,
        session: SessionKey,
        last: Option<RoomFrame>,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<(), ErrorFrame> {
        let not_in = || error(ErrorCode::NotAMember, format!("not in room {}", self.id));
        let member = self.members.get_mut(user).ok_or_else(not_in)?;
        member.sessions.remove(&session).ok_or_else(not_in)?;
        let last = last.as_ref().map(encode).transpose()?;
        member.subscribers.retain(|sub| {
            if sub.session != session {
                return true;
            }
            sub.queue.close(last.clone());
            false
        });
        if !member.sessions.is_empty() {
            return Ok(());
        }
        if let Some(member) = self.members.remove(user) {
            self.kept_privates -= member.privates.len();
        }
        self.update_pacing(config);
        if self.members.is_empty() {
            self.empty_since = Some(now);
        } else if self.presence_on(config) {
            self.broadcast(&RoomFrame::MemberLeft { user: user.to_string() }, None)?;
        }
        Ok(())
    }

    /// Session `session` of `user` asked to leave.
    pub fn leave(
        &mut self,
        user: &str,
        session: SessionKey,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<(), ErrorFrame> {
        let last = RoomFrame::Left { reason: LeaveReason::Requested };
        self.remove_session(user, session, Some(last), now, config)
    }

    /// Session `session` of `user` ended (it was closed, or its resume window passed); if it
    /// still held the membership, that hold ends.
    pub fn end_session(
        &mut self,
        user: &str,
        session: SessionKey,
        now: Instant,
        config: &ServerConfig,
    ) {
        // Not holding the membership any more (kicked, or left earlier) is the normal case here.
        let _ = self.remove_session(user, session, None, now, config);
    }

    /// Connection `conn` of `user` is gone: its streams end, the membership stays.
    pub fn detach(&mut self, user: &str, conn: ConnId) {
        if let Some(member) = self.members.get_mut(user) {
            member.subscribers.retain(|sub| {
                if sub.conn != conn {
                    return true;
                }
                sub.queue.close(None);
                false
            });
        }
    }

    fn check_can_send(
        &mut self,
        user: &str,
        text: &str,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<(), ErrorFrame> {
        self.check_open()?;
        self.member(user)?;
        match self.mutes.get(user) {
            Some(None) => {
                return Err(error(ErrorCode::Muted, format!("you are muted in room {}", self.id)));
            }
            Some(Some(until)) if *until > now => {
                let secs = (*until - now).as_secs_f64().ceil() as u64;
                return Err(error(
                    ErrorCode::Muted,
                    format!("you are muted in room {} for {secs} more s", self.id),
                ));
            }
            Some(Some(_)) => {
                self.mutes.remove(user);
            }
            None => {}
        }
        if text.len() > config.max_message_len {
            return Err(error(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes exceeds the maximum of {}",
                    text.len(),
                    config.max_message_len
                ),
            ));
        }
        Ok(())
    }

    /// `user` sends a message to the room; returns its sequence number. Every member, the sender
    /// included, receives it.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        user: &str,
        text: String,
        kind: Option<String>,
        priority: Priority,
        now: Instant,
        unix_ms: u64,
        config: &ServerConfig,
    ) -> Result<u64, ErrorFrame> {
        self.check_can_send(user, &text, now, config)?;
        if let Some(kind) = &kind {
            validate_kind(kind).map_err(|e| error(ErrorCode::BadRequest, e.to_string()))?;
        }
        let inbound = self.inbound.get_or_insert_with(|| {
            TokenBucket::new(config.room_message_rate, config.room_message_burst, now)
        });
        // A crowded room sheds low priority first: each priority keeps a reserve for the ones
        // above it.
        let reserve = match priority {
            Priority::Low => inbound.burst() * 0.5,
            Priority::Normal => inbound.burst() * 0.1,
            Priority::High => 0.0,
        };
        if !inbound.try_take_keeping(now, reserve) {
            return Err(error(
                ErrorCode::RateLimited,
                format!("room {} is busy; {} priority messages wait", self.id, priority.as_str()),
            ));
        }
        let seq = self.next_seq;
        let message = RoomMessage {
            seq,
            from: user.to_string(),
            timestamp_ms: unix_ms,
            kind,
            priority,
            text,
        };
        let frame = encode(&RoomFrame::Message(message))?;
        for member in self.members.values() {
            for sub in &member.subscribers {
                sub.queue.push_message(seq, priority, frame.clone());
            }
        }
        self.history.push_back(Replay { seq, priority, at: now, frame });
        self.trim_history(now, config);
        self.next_seq += 1;
        Ok(seq)
    }

    /// Forgets replayable messages beyond the configured count and age.
    fn trim_history(&mut self, now: Instant, config: &ServerConfig) {
        while self.history.len() > config.replay_buffer_messages {
            self.history.pop_front();
        }
        while self
            .history
            .front()
            .is_some_and(|r| now.saturating_duration_since(r.at) > config.replay_buffer_age)
        {
            self.history.pop_front();
        }
    }

    /// `from` sends a private message to every connection of member `to`, and keeps it for
    /// `to`'s sessions that resume later (a connection may be lost with it still in flight).
    #[allow(clippy::too_many_arguments)]
    pub fn private(
        &mut self,
        from: &str,
        to: &str,
        text: String,
        kind: Option<String>,
        now: Instant,
        unix_ms: u64,
        config: &ServerConfig,
    ) -> Result<(), ErrorFrame> {
        self.check_can_send(from, &text, now, config)?;
        if let Some(kind) = &kind {
            validate_kind(kind).map_err(|e| error(ErrorCode::BadRequest, e.to_string()))?;
        }
        let before_seq = self.next_seq;
        let target = self.member_mut(to)?;
        let seq = target.next_private_seq;
        let message =
            PrivateMessage { seq, from: from.to_string(), timestamp_ms: unix_ms, kind, text };
        let frame = encode(&RoomFrame::Private(message))?;
        for sub in &target.subscribers {
            sub.queue.push(frame.clone());
        }
        target.keep_private(KeptPrivate { seq, before_seq, at: now, frame });
        target.next_private_seq += 1;
        let forgotten = target.trim_privates(now, config);
        self.kept_privates = self.kept_privates + 1 - forgotten;
        Ok(())
    }

    /// Checks that `actor` may moderate `target`: the actor is owner or admin, and an admin acts
    /// only on plain members. `target` need not be a member (mutes outlive memberships).
    fn check_moderator(&self, actor: &str, target: &str) -> Result<(), ErrorFrame> {
        self.check_open()?;
        let actor_role = self.member(actor)?.role;
        if actor_role < Role::Admin {
            return Err(error(ErrorCode::Forbidden, "only the owner and admins can do this"));
        }
        if actor == target {
            return Err(error(ErrorCode::BadRequest, "you cannot do this to yourself"));
        }
        let target_role = if target == self.creator {
            Role::Owner
        } else {
            self.members.get(target).map_or(Role::Member, |m| m.role)
        };
        if actor_role == Role::Admin && target_role >= Role::Admin {
            return Err(error(
                ErrorCode::Forbidden,
                "admins cannot act on the owner or other admins",
            ));
        }
        Ok(())
    }

    /// The owner `actor` makes `target` an admin (`Role::Admin`) or a plain member again
    /// (`Role::Member`).
    pub fn set_role(
        &mut self,
        actor: &str,
        target: &str,
        role: Role,
        config: &ServerConfig,
    ) -> Result<(), ErrorFrame> {
        self.check_open()?;
        if self.member(actor)?.role != Role::Owner {
            return Err(error(ErrorCode::Forbidden, "only the owner can grant or revoke admin"));
        }
        if role == Role::Owner {
            return Err(error(ErrorCode::BadRequest, "ownership cannot be granted"));
        }
        let member = self.member_mut(target)?;
        if member.role == Role::Owner {
            return Err(error(ErrorCode::Forbidden, "the owner's role cannot be changed"));
        }
        if member.role == role {
            return Ok(());
        }
        member.role = role;
        if self.presence_on(config) {
            let frame =
                RoomFrame::RoleChanged { user: target.to_string(), role, by: actor.to_string() };
            self.broadcast(&frame, None)?;
        }
        Ok(())
    }

    /// `actor` mutes member `target` for `duration`, or until unmuted.
    pub fn mute(
        &mut self,
        actor: &str,
        target: &str,
        duration: Option<Duration>,
        now: Instant,
    ) -> Result<(), ErrorFrame> {
        self.check_moderator(actor, target)?;
        self.member(target)?;
        // A duration too long to represent is as good as "until unmuted".
        self.mutes.insert(target.to_string(), duration.and_then(|d| now.checked_add(d)));
        let frame = RoomFrame::Muted {
            user: target.to_string(),
            by: actor.to_string(),
            seconds: duration.map(|d| d.as_secs()),
        };
        self.broadcast(&frame, None)
    }

    /// `actor` lifts `target`'s mute. Lifting a mute that is not there is not an error.
    pub fn unmute(&mut self, actor: &str, target: &str, now: Instant) -> Result<(), ErrorFrame> {
        self.check_moderator(actor, target)?;
        match self.mutes.remove(target) {
            Some(until) if until.is_none_or(|t| t > now) => {
                let frame = RoomFrame::Unmuted { user: target.to_string(), by: actor.to_string() };
                self.broadcast(&frame, None)
            }
            _ => Ok(()),
        }
    }

    /// `actor` removes member `target` from the room and bans it for the configured time. The
    /// room, the target included, is told; the target's streams then end.
    pub fn kick(
        &mut self,
        actor: &str,
        target: &str,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<(), ErrorFrame> {
        self.check_moderator(actor, target)?;
        self.member(target)?;
        self.broadcast(
            &RoomFrame::Kicked { user: target.to_string(), by: actor.to_string() },
            None,
        )?;
        let left = encode(&RoomFrame::Left { reason: LeaveReason::Kicked })?;
        if let Some(member) = self.members.remove(target) {
            self.kept_privates -= member.privates.len();
            for sub in member.subscribers {
                sub.queue.close(Some(left.clone()));
            }
        }
        // A ban too long to represent lasts as long as the room (a year is plenty).
        let until =
            now.checked_add(config.ban_duration).unwrap_or(now + Duration::from_secs(365 * 86400));
        self.bans.insert(target.to_string(), until);
        self.update_pacing(config);
        if self.members.is_empty() {
            self.empty_since = Some(now);
        }
        Ok(())
    }

    /// `user` changes its own attributes; returns them after the change.
    pub fn set_attributes(
        &mut self,
        user: &str,
        set: Attributes,
        remove: Vec<String>,
        config: &ServerConfig,
    ) -> Result<Attributes, ErrorFrame> {
        self.check_open()?;
        let mut attributes = self.member(user)?.attributes.clone();
        for key in &remove {
            attributes.remove(key);
        }
        for (key, value) in set {
            if key.is_empty() {
                return Err(error(ErrorCode::BadRequest, "attribute keys cannot be empty"));
            }
            attributes.insert(key, value);
        }
        if attributes.len() > config.max_attribute_keys {
            return Err(error(
                ErrorCode::TooLarge,
                format!(
                    "{} attributes exceed the maximum of {}",
                    attributes.len(),
                    config.max_attribute_keys
                ),
            ));
        }
        let len: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        if len > config.max_attributes_len {
            return Err(error(
                ErrorCode::TooLarge,
                format!(
                    "attributes of {len} bytes exceed the maximum of {}",
                    config.max_attributes_len
                ),
            ));
        }
        let presence = self.presence_on(config);
        if let Some(member) = self.members.get_mut(user) {
            member.attributes = attributes.clone();
        }
        if presence {
            let frame = RoomFrame::AttributesChanged {
                user: user.to_string(),
                attributes: attributes.clone(),
            };
            self.broadcast(&frame, None)?;
        }
        Ok(attributes)
    }

    /// A member's attributes.
    pub fn attributes(&self, user: &str) -> Result<Attributes, ErrorFrame> {
        self.check_open()?;
        Ok(self.member(user)?.attributes.clone())
    }

    /// One page of the member list: up to `limit` members after user id `after`, by user id.
    pub fn members_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<MemberPage, ErrorFrame> {
        self.check_open()?;
        let range = match after {
            Some(after) => self
                .members
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => self.members.range::<str, _>(..),
        };
        let mut members: Vec<MemberInfo> = range
            .take(limit.saturating_add(1))
            .map(|(user, m)| MemberInfo {
                user: user.clone(),
                role: m.role,
                attributes: m.attributes.clone(),
            })
            .collect();
        let next = if members.len() > limit {
            members.truncate(limit);
            members.last().map(|m| m.user.clone())
        } else {
            None
        };
        Ok(MemberPage { room: self.id.clone(), count: self.member_count(), members, next })
    }

    /// Periodic upkeep: forgets expired bans and mutes, announces the member count of a large
    /// room when it changed. Returns true when the room has been empty for `empty_room_ttl` and
    /// is now closed: the registry should drop it.
    pub fn maintain(&mut self, now: Instant, config: &ServerConfig) -> bool {
        self.trim_history(now, config);
        if self.kept_privates > 0 {
            for member in self.members.values_mut() {
                self.kept_privates -= member.trim_privates(now, config);
            }
        }
        self.bans.retain(|_, until| *until > now);
        self.mutes.retain(|_, until| until.is_none_or(|t| t > now));
        if let Some(since) = self.empty_since {
            if now.saturating_duration_since(since) >= config.empty_room_ttl {
                self.closed = true;
                return true;
            }
        }
        if !self.presence_on(config) {
            let count = self.member_count();
            let due = match self.announced_count {
                Some((last, at)) => {
                    last != count
                        && now.saturating_duration_since(at) >= config.member_count_interval
                }
                None => true,
            };
            if due && self.broadcast(&RoomFrame::MemberCount { count }, None).is_ok() {
                self.announced_count = Some((count, now));
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;
