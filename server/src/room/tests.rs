//! Unit tests of the room rules, with time passed in and queues read directly.

use bytes::BytesMut;
use chatroom_protocol::{FrameDecoder, MAX_FRAME_LEN};

use super::*;
use crate::outbound::QueueLimits;

struct Conn {
    id: ConnId,
    queue: Arc<OutboundQueue>,
}

impl Conn {
    fn new(id: ConnId) -> Self {
        let limits = QueueLimits { soft_bytes: 1 << 20, hard_frames: 1024 };
        Self { id, queue: OutboundQueue::new(limits) }
    }

    fn sub(&self) -> Subscriber {
        // One session per connection, with the same number, unless a test says otherwise.
        Subscriber {
            conn: self.id,
            session: self.id,
            stream_id: self.id * 10,
            queue: self.queue.clone(),
        }
    }

    /// Everything queued so far, decoded.
    fn frames(&self) -> Vec<RoomFrame> {
        let mut batch = Vec::new();
        self.queue.take(&mut batch);
        let mut buf = BytesMut::new();
        for b in batch {
            buf.extend_from_slice(&b);
        }
        let decoder = FrameDecoder::new(MAX_FRAME_LEN);
        let mut frames = Vec::new();
        while let Some(f) = decoder.decode(&mut buf).unwrap() {
            frames.push(f);
        }
        frames
    }
}

fn setup() -> (Room, ServerConfig, Instant) {
    let now = Instant::now();
    (Room::new("lobby".into(), "owner".into(), now), ServerConfig::default(), now)
}

fn code<T: std::fmt::Debug>(r: Result<T, ErrorFrame>) -> ErrorCode {
    r.unwrap_err().code
}

#[test]
fn join_send_and_sequence() {
    let (mut room, config, now) = setup();
    let (a, b) = (Conn::new(1), Conn::new(2));
    let joined = room.join("owner", a.sub(), now, &config).unwrap();
    assert_eq!((joined.role, joined.members, joined.next_seq), (Role::Owner, 1, 1));
    let joined = room.join("bob", b.sub(), now, &config).unwrap();
    assert_eq!((joined.role, joined.members), (Role::Member, 2));
    assert_eq!(code(room.join("bob", b.sub(), now, &config)), ErrorCode::AlreadyJoined);

    assert_eq!(room.send("bob", "one".into(), None, Priority::Normal, now, 7, &config), Ok(1));
    assert_eq!(room.send("owner", "two".into(), None, Priority::High, now, 8, &config), Ok(2));

    let frames = a.frames();
    assert!(matches!(&frames[0], RoomFrame::Open { room, stream_id: 10 } if room == "lobby"));
    assert_eq!(frames[1], RoomFrame::MemberJoined { user: "bob".into(), role: Role::Member });
    let seqs: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            RoomFrame::Message(m) => Some((m.seq, m.from.as_str(), m.text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [(1, "bob", "one"), (2, "owner", "two")]);
    // bob sees no presence event for himself, and his own message echoed.
    let frames = b.frames();
    assert_eq!(frames.len(), 3, "{frames:?}");
}

#[test]
fn rejects_oversized_and_non_members() {
    let (mut room, config, now) = setup();
    let a = Conn::new(1);
    room.join("owner", a.sub(), now, &config).unwrap();
    let big = "x".repeat(config.max_message_len + 1);
    assert_eq!(
        code(room.send("owner", big, None, Priority::Normal, now, 0, &config)),
        ErrorCode::TooLarge
    );
    assert_eq!(
        code(room.send("eve", "hi".into(), None, Priority::Normal, now, 0, &config)),
        ErrorCode::NotAMember
    );
    assert_eq!(
        code(room.private("owner", "eve", "hi".into(), None, now, 0, &config)),
        ErrorCode::NotAMember
    );
    // Rejected sends consume no sequence number.
    assert_eq!(room.next_seq(), 1);
}

#[test]
fn roles_and_moderation() {
    let (mut room, config, now) = setup();
    let (o, a, m, n) = (Conn::new(1), Conn::new(2), Conn::new(3), Conn::new(4));
    room.join("owner", o.sub(), now, &config).unwrap();
    room.join("alice", a.sub(), now, &config).unwrap();
    room.join("mallory", m.sub(), now, &config).unwrap();
    room.join("nina", n.sub(), now, &config).unwrap();

    assert_eq!(code(room.set_role("mallory", "alice", Role::Admin, &config)), ErrorCode::Forbidden);
    room.set_role("owner", "alice", Role::Admin, &config).unwrap();
    room.set_role("owner", "nina", Role::Admin, &config).unwrap();
    // Admins cannot act on the owner or other admins; members cannot act at all.
    assert_eq!(code(room.mute("alice", "owner", None, now)), ErrorCode::Forbidden);
    assert_eq!(code(room.kick("alice", "nina", now, &config)), ErrorCode::Forbidden);
    assert_eq!(code(room.mute("mallory", "alice", None, now)), ErrorCode::Forbidden);

    room.mute("alice", "mallory", Some(Duration::from_secs(10)), now).unwrap();
    let send = |room: &mut Room, at| {
        room.send("mallory", "hi".into(), None, Priority::Normal, at, 0, &config)
    };
    assert_eq!(code(send(&mut room, now + Duration::from_secs(9))), ErrorCode::Muted);
    assert!(send(&mut room, now + Duration::from_secs(10)).is_ok(), "timed mute ends");

    room.mute("owner", "mallory", None, now).unwrap();
    assert_eq!(code(send(&mut room, now + Duration::from_secs(3600))), ErrorCode::Muted);
    room.unmute("alice", "mallory", now).unwrap();
    assert!(send(&mut room, now).is_ok());

    room.kick("alice", "mallory", now, &config).unwrap();
    let frames = m.frames();
    let tail = &frames[frames.len() - 2..];
    assert_eq!(tail[0], RoomFrame::Kicked { user: "mallory".into(), by: "alice".into() });
    assert_eq!(tail[1], RoomFrame::Left { reason: LeaveReason::Kicked });
    assert!(m.queue.is_closed());
    let again = Conn::new(5);
    assert_eq!(
        code(room.join("mallory", again.sub(), now + Duration::from_secs(59), &config)),
        ErrorCode::Banned
    );
    room.join("mallory", again.sub(), now + config.ban_duration, &config).unwrap();
}

#[test]
fn leave_clears_roles_and_attributes_but_not_ownership() {
    let (mut room, config, now) = setup();
    let (o, a) = (Conn::new(1), Conn::new(2));
    room.join("owner", o.sub(), now, &config).unwrap();
    room.join("alice", a.sub(), now, &config).unwrap();
    room.set_role("owner", "alice", Role::Admin, &config).unwrap();
    let set = Attributes::from([("mood".to_string(), "happy".to_string())]);
    assert_eq!(room.set_attributes("alice", set.clone(), vec![], &config), Ok(set.clone()));
    assert_eq!(room.attributes("alice"), Ok(set));

    room.leave("alice", 2, now, &config).unwrap();
    room.leave("owner", 1, now, &config).unwrap();
    assert_eq!(room.member_count(), 0);
    let (a2, o2) = (Conn::new(3), Conn::new(4));
    assert_eq!(room.join("alice", a2.sub(), now, &config).unwrap().role, Role::Member);
    assert_eq!(room.attributes("alice"), Ok(Attributes::new()));
    assert_eq!(room.join("owner", o2.sub(), now, &config).unwrap().role, Role::Owner);
}

#[test]
fn attribute_limits() {
    let (mut room, mut config, now) = setup();
    config.max_attribute_keys = 2;
    config.max_attributes_len = 10;
    let a = Conn::new(1);
    room.join("alice", a.sub(), now, &config).unwrap();
    let attrs = |pairs: &[(&str, &str)]| {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Attributes>()
    };
    room.set_attributes("alice", attrs(&[("a", "1"), ("b", "2")]), vec![], &config).unwrap();
    assert_eq!(
        code(room.set_attributes("alice", attrs(&[("c", "3")]), vec![], &config)),
        ErrorCode::TooLarge
    );
    assert_eq!(
        room.set_attributes("alice", attrs(&[("c", "3")]), vec!["a".into()], &config),
        Ok(attrs(&[("b", "2"), ("c", "3")]))
    );
    assert_eq!(
        code(room.set_attributes("alice", attrs(&[("b", "0123456789")]), vec![], &config)),
        ErrorCode::TooLarge
    );
}

#[test]
fn private_goes_to_every_connection_of_the_target_only() {
    let (mut room, config, now) = setup();
    let (a, b1, b2, c) = (Conn::new(1), Conn::new(2), Conn::new(3), Conn::new(4));
    room.join("alice", a.sub(), now, &config).unwrap();
    room.join("bob", b1.sub(), now, &config).unwrap();
    let joined = room.join("bob", b2.sub(), now, &config).unwrap();
    assert_eq!(joined.members, 2, "a second connection is not a second member");
    room.join("carol", c.sub(), now, &config).unwrap();
    room.private("alice", "bob", "psst".into(), None, now, 5, &config).unwrap();
    let is_private =
        |f: &RoomFrame| matches!(f, RoomFrame::Private(p) if p.text == "psst" && p.from == "alice");
    assert!(b1.frames().iter().any(is_private));
    assert!(b2.frames().iter().any(is_private));
    assert!(!a.frames().iter().any(is_private));
    assert!(!c.frames().iter().any(is_private));
}

#[test]
fn presence_limit_switches_to_member_counts() {
    let (mut room, mut config, now) = setup();
    config.presence_event_limit = 2;
    let conns: Vec<Conn> = (1..=3).map(Conn::new).collect();
    room.join("u1", conns[0].sub(), now, &config).unwrap();
    room.join("u2", conns[1].sub(), now, &config).unwrap();
    room.join("u3", conns[2].sub(), now, &config).unwrap();
    assert!(!conns[0].frames().iter().any(|f| matches!(f, RoomFrame::MemberJoined { .. })));
    assert!(!room.maintain(now, &config));
    assert!(conns[1].frames().contains(&RoomFrame::MemberCount { count: 3 }));
    // Unchanged count: no repeat.
    room.maintain(now + config.member_count_interval, &config);
    assert!(conns[1].frames().is_empty());
}

#[test]
fn members_pages_and_empty_room_expiry() {
    let (mut room, config, now) = setup();
    let conns: Vec<Conn> = (1..=5).map(Conn::new).collect();
    for (i, c) in conns.iter().enumerate() {
        room.join(&format!("u{i}"), c.sub(), now, &config).unwrap();
    }
    let page = room.members_page(None, 2).unwrap();
    assert_eq!(page.count, 5);
    assert_eq!(page.members.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(), ["u0", "u1"]);
    let page = room.members_page(page.next.as_deref(), 2).unwrap();
    assert_eq!(page.members.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(), ["u2", "u3"]);
    let page = room.members_page(page.next.as_deref(), 2).unwrap();
    assert_eq!((page.members.len(), page.next), (1, None));

    for (i, c) in conns.iter().enumerate() {
        room.end_session(&format!("u{i}"), c.id, now, &config);
    }
    assert!(!room.maintain(now + config.empty_room_ttl / 2, &config));
    assert!(room.maintain(now + config.empty_room_ttl, &config));
    assert_eq!(code(room.join("u0", Conn::new(9).sub(), now, &config)), ErrorCode::RoomNotFound);
}

#[test]
fn absurd_durations_do_not_overflow() {
    let (mut room, mut config, now) = setup();
    config.ban_duration = Duration::MAX;
    let (o, m) = (Conn::new(1), Conn::new(2));
    room.join("owner", o.sub(), now, &config).unwrap();
    room.join("mallory", m.sub(), now, &config).unwrap();
    room.mute("owner", "mallory", Some(Duration::from_secs(u64::MAX)), now).unwrap();
    let send = room.send("mallory", "hi".into(), None, Priority::Normal, now, 0, &config);
    assert_eq!(code(send), ErrorCode::Muted);
    room.kick("owner", "mallory", now, &config).unwrap();
    assert_eq!(code(room.join("mallory", Conn::new(3).sub(), now, &config)), ErrorCode::Banned);
}

/// A resume position in the room of `setup`.
fn position(last_seq: u64, last_private_seq: u64) -> RoomPosition {
    RoomPosition { room: "lobby".into(), last_seq, last_private_seq }
}

fn message_seqs(frames: &[RoomFrame]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| match f {
            RoomFrame::Message(m) => Some(m.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_detached_session_keeps_its_membership_and_replays_what_it_missed() {
    let (mut room, config, now) = setup();
    let (a, b) = (Conn::new(1), Conn::new(2));
    room.join("owner", a.sub(), now, &config).unwrap();
    room.join("bob", b.sub(), now, &config).unwrap();
    room.send("owner", "one".into(), None, Priority::Normal, now, 0, &config).unwrap();
    a.frames();
    // Bob's connection drops: the room is not told, and he is still counted.
    room.detach("bob", 2);
    assert!(b.queue.is_closed());
    for text in ["two", "three"] {
        room.send("owner", text.into(), None, Priority::Normal, now, 0, &config).unwrap();
    }
    assert!(!a.frames().iter().any(|f| matches!(f, RoomFrame::MemberLeft { .. })));
    assert_eq!(room.member_count(), 2);
    // Bob resumes on a new connection of the same session, having received seq 1.
    let b2 = Conn::new(3);
    let sub = Subscriber { session: 2, ..b2.sub() };
    let joined = room.reattach("bob", sub, Some(&position(1, 0)), now, &config).unwrap();
    assert_eq!((joined.role, joined.next_seq, joined.stream_id), (Role::Member, 4, 30));
    room.send("owner", "four".into(), None, Priority::Normal, now, 0, &config).unwrap();
    let frames = b2.frames();
    assert!(matches!(frames[0], RoomFrame::Open { stream_id: 30, .. }));
    assert_eq!(message_seqs(&frames), [2, 3, 4], "replayed in order, then live, exactly once");
    // A session that never held the membership cannot reattach.
    let stranger = Subscriber { session: 99, ..Conn::new(4).sub() };
    assert_eq!(code(room.reattach("bob", stranger, None, now, &config)), ErrorCode::NotAMember);
}

#[test]
fn replay_reports_a_gap_for_what_the_buffer_no_longer_holds() {
    let (mut room, mut config, now) = setup();
    config.replay_buffer_messages = 3;
    let (a, b) = (Conn::new(1), Conn::new(2));
    room.join("owner", a.sub(), now, &config).unwrap();
    room.join("bob", b.sub(), now, &config).unwrap();
    room.detach("bob", 2);
    for i in 1..=6 {
        room.send("owner", format!("m{i}"), None, Priority::Normal, now, 0, &config).unwrap();
    }
    let b2 = Conn::new(3);
    room.reattach(
        "bob",
        Subscriber { session: 2, ..b2.sub() },
        Some(&position(0, 0)),
        now,
        &config,
    )
    .unwrap();
    let frames = b2.frames();
    assert_eq!(frames[1], RoomFrame::Gap { from: 1, to: 3 });
    assert_eq!(message_seqs(&frames), [4, 5, 6]);

    // Age counts too.
    let later = now + config.replay_buffer_age + Duration::from_secs(1);
    room.maintain(later, &config);
    room.detach("bob", 3);
    let b3 = Conn::new(4);
    let sub = Subscriber { session: 2, ..b3.sub() };
    room.reattach("bob", sub, Some(&position(4, 0)), later, &config).unwrap();
    assert_eq!(b3.frames()[1], RoomFrame::Gap { from: 5, to: 6 });
}

#[test]
fn ending_the_last_session_ends_the_membership() {
    let (mut room, config, now) = setup();
    let (a, b, b_other) = (Conn::new(1), Conn::new(2), Conn::new(3));
    room.join("owner", a.sub(), now, &config).unwrap();
    room.join("bob", b.sub(), now, &config).unwrap();
    room.join("bob", b_other.sub(), now, &config).unwrap();
    a.frames();
    room.end_session("bob", 2, now, &config);
    assert_eq!(room.member_count(), 2, "bob's other session still holds the membership");
    room.end_session("bob", 3, now, &config);
    assert_eq!(room.member_count(), 1);
    assert_eq!(a.frames(), [RoomFrame::MemberLeft { user: "bob".into() }]);
}

#[test]
fn a_busy_room_refuses_low_priority_first() {
    let (mut room, mut config, now) = setup();
    config.room_message_rate = 1.0;
    config.room_message_burst = 10.0;
    let a = Conn::new(1);
    room.join("owner", a.sub(), now, &config).unwrap();
    let mut send = |priority| room.send("owner", "x".into(), None, priority, now, 0, &config);
    // Low may use only the top half of the bucket, normal down to a tenth, high all of it.
    let low = (0..10).filter(|_| send(Priority::Low).is_ok()).count();
    assert_eq!(low, 5);
    assert_eq!(code(send(Priority::Low)), ErrorCode::RateLimited);
    let normal = (0..10).filter(|_| send(Priority::Normal).is_ok()).count();
    assert_eq!(normal, 4);
    let high = (0..10).filter(|_| send(Priority::High).is_ok()).count();
    assert_eq!(high, 1);
    assert_eq!(code(send(Priority::High)), ErrorCode::RateLimited);
}

#[test]
fn large_rooms_batch_their_fan_out() {
    let (mut room, mut config, now) = setup();
    config.fanout_batch_min_members = 2;
    let (a, b) = (Conn::new(1), Conn::new(2));
    room.join("owner", a.sub(), now, &config).unwrap();
    assert_eq!(room.pace, Duration::ZERO);
    room.join("bob", b.sub(), now, &config).unwrap();
    assert_eq!(room.pace, config.fanout_batch_interval);
    room.leave("bob", 2, now, &config).unwrap();
    assert_eq!(room.pace, Duration::ZERO);
}

/// What a resumed stream carries after `Open`, in order, as short strings.
fn replayed(frames: &[RoomFrame]) -> Vec<String> {
    frames
        .iter()
        .skip(1)
        .map(|f| match f {
            RoomFrame::Message(m) => format!("#{} {}", m.seq, m.text),
            RoomFrame::Private(p) => format!("p{} {}: {}", p.seq, p.from, p.text),
            RoomFrame::Gap { from, to } => format!("gap {from}-{to}"),
            RoomFrame::PrivateGap { from, to } => format!("private gap {from}-{to}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn private_messages_are_numbered_per_member_and_replayed_in_order_after_a_resume() {
    let (mut room, config, now) = setup();
    let (a, b, c) = (Conn::new(1), Conn::new(2), Conn::new(3));
    room.join("owner", a.sub(), now, &config).unwrap();
    room.join("bob", b.sub(), now, &config).unwrap();
    room.join("carol", c.sub(), now, &config).unwrap();
    // Everything happens at the same instant: the order is the room's, not the clock's.
    room.private("owner", "bob", "first".into(), None, now, 0, &config).unwrap();
    room.private("carol", "bob", "second".into(), None, now, 0, &config).unwrap();
    room.private("bob", "carol", "to carol".into(), None, now, 0, &config).unwrap();
    let seqs = |frames: Vec<RoomFrame>| -> Vec<u64> {
        frames
            .iter()
            .filter_map(|f| match f {
                RoomFrame::Private(p) => Some(p.seq),
                _ => None,
            })
            .collect()
    };
    // Numbered per receiver: bob's two are 1 and 2 whoever sent them, carol's first is 1.
    assert_eq!(seqs(b.frames()), [1, 2]);
    assert_eq!(seqs(c.frames()), [1]);

    // Bob's connection is lost with private 3 and message 1 possibly in flight: he got
    // neither. More arrives while he is away.
    room.send("owner", "m1".into(), None, Priority::Normal, now, 0, &config).unwrap();
    room.private("owner", "bob", "third".into(), None, now, 0, &config).unwrap();
    room.detach("bob", 2);
    room.private("carol", "bob", "fourth".into(), None, now, 0, &config).unwrap();
    room.send("carol", "m2".into(), None, Priority::Normal, now, 0, &config).unwrap();
    room.send("owner", "m3".into(), None, Priority::Normal, now, 0, &config).unwrap();
    room.private("owner", "bob", "fifth".into(), None, now, 0, &config).unwrap();

    let b2 = Conn::new(4);
    let sub = Subscriber { session: 2, ..b2.sub() };
    room.reattach("bob", sub, Some(&position(0, 2)), now, &config).unwrap();
    room.private("owner", "bob", "live".into(), None, now, 0, &config).unwrap();
    assert_eq!(
        replayed(&b2.frames()),
        [
            "#1 m1",
            "p3 owner: third",
            "p4 carol: fourth",
            "#2 m2",
            "#3 m3",
            "p5 owner: fifth",
            "p6 owner: live"
        ],
        "what bob missed, in the order the room accepted it, then live"
    );
    // Kept for a later resume: bob's six and carol's one.
    assert_eq!(room.kept_privates, 7);
}

#[test]
fn private_replay_reports_a_gap_and_starts_where_the_session_joined() {
    let (mut room, mut config, now) = setup();
    config.private_replay_messages = 2;
    let (a, b) = (Conn::new(1), Conn::new(2));
    room.join("owner", a.sub(), now, &config).unwrap();
    room.join("bob", b.sub(), now, &config).unwrap();
    room.detach("bob", 2);
    for i in 1..=5 {
        room.private("owner", "bob", format!("p{i}"), None, now, 0, &config).unwrap();
    }
    let b2 = Conn::new(3);
    room.reattach("bob", Subscriber { session: 2, ..b2.sub() }, None, now, &config).unwrap();
    assert_eq!(replayed(&b2.frames()), ["private gap 1-3", "p4 owner: p4", "p5 owner: p5"]);

    // A second session of bob's joins later: it is not entitled to what came before it.
    let other = Conn::new(4);
    room.join("bob", Subscriber { session: 7, ..other.sub() }, now, &config).unwrap();
    room.private("owner", "bob", "p6".into(), None, now, 0, &config).unwrap();
    room.detach("bob", 4);
    let other2 = Conn::new(5);
    room.reattach(
        "bob",
        Subscriber { session: 7, ..other2.sub() },
        Some(&position(0, 0)),
        now,
        &config,
    )
    .unwrap();
    assert_eq!(replayed(&other2.frames()), ["p6 owner: p6"]);

    // Too old is gone too.
    room.detach("bob", 3);
    let later = now + config.replay_buffer_age + Duration::from_secs(1);
    let b3 = Conn::new(6);
    room.reattach(
        "bob",
        Subscriber { session: 2, ..b3.sub() },
        Some(&position(0, 5)),
        later,
        &config,
    )
    .unwrap();
    assert_eq!(replayed(&b3.frames()), ["private gap 6-6"]);
}

#[test]
fn kept_private_messages_are_bounded_and_end_with_the_membership() {
    let (mut room, mut config, now) = setup();
    config.private_replay_bytes = 130;
    let (a, b) = (Conn::new(1), Conn::new(2));
    room.join("owner", a.sub(), now, &config).unwrap();
    room.join("bob", b.sub(), now, &config).unwrap();
    for i in 1..=4 {
        room.private("owner", "bob", format!("{i}").repeat(40), None, now, 0, &config).unwrap();
    }
    // Each frame is 55 bytes: only the newest two fit in 130.
    assert_eq!(room.members["bob"].privates.iter().map(|p| p.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(room.kept_privates, 2);

    // Old ones are forgotten by the periodic maintenance too, not only when more come.
    room.maintain(now + config.replay_buffer_age + Duration::from_secs(1), &config);
    assert!(room.members["bob"].privates.is_empty());
    assert_eq!(room.kept_privates, 0);

    // Leaving ends the membership: joining again starts the numbering at 1.
    room.private("owner", "bob", "kept".into(), None, now, 0, &config).unwrap();
    assert_eq!(room.kept_privates, 1);
    room.leave("bob", 2, now, &config).unwrap();
    assert_eq!(room.kept_privates, 0);
    let b2 = Conn::new(3);
    room.join("bob", b2.sub(), now, &config).unwrap();
    room.private("owner", "bob", "again".into(), None, now, 0, &config).unwrap();
    assert_eq!(replayed(&b2.frames()), ["p1 owner: again"]);

    // A resume claiming more than was ever sent gets nothing replayed and no gap.
    room.detach("bob", 3);
    let b3 = Conn::new(4);
    let sub = Subscriber { session: 3, ..b3.sub() };
    room.reattach("bob", sub, Some(&position(u64::MAX, u64::MAX)), now, &config).unwrap();
    room.private("owner", "bob", "live".into(), None, now, 0, &config).unwrap();
    assert_eq!(replayed(&b3.frames()), ["p2 owner: live"]);
}
