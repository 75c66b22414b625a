//! Open rooms: creation, ownership, joining and leaving, room lifetime, and many rooms per
//! connection. Real server, real clients, real QUIC on loopback.

use std::time::Duration;

use chatroom_client::{ErrorCode, Event, LeaveReason, Role};
use chatroom_server::ServerConfig;
use chatroom_tests::{TestServer, messages, next_matching, within};

#[tokio::test]
async fn creator_is_owner_and_unknown_rooms_are_not_found() {
    let server = TestServer::start().await;
    let (alice, _alice_events) = server.connect("alice").await;
    let (bob, _bob_events) = server.connect("bob").await;

    let room = alice.create_room(Some("lobby")).await.unwrap();
    assert_eq!(room, "lobby");
    let err = bob.create_room(Some("lobby")).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RoomExists));
    let random = bob.create_room(None).await.unwrap();
    assert!(random.starts_with("room-"), "{random}");

    assert_eq!(alice.join("lobby").await.unwrap().role, Role::Owner);
    let joined = bob.join("lobby").await.unwrap();
    assert_eq!((joined.role, joined.members), (Role::Member, 2));
    assert_eq!(bob.join("lobby").await.unwrap_err().code(), Some(ErrorCode::AlreadyJoined));

    let err = bob.join("nowhere").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RoomNotFound));
    let err = bob.join("bad room id").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest));
    server.stop().await;
}

#[tokio::test]
async fn auto_create_makes_the_first_joiner_owner() {
    let server =
        TestServer::start_with(ServerConfig { auto_create_rooms: true, ..Default::default() })
            .await;
    let (carol, _events) = server.connect("carol").await;
    let (dave, _dave_events) = server.connect("dave").await;
    assert_eq!(carol.join("fresh").await.unwrap().role, Role::Owner);
    assert_eq!(dave.join("fresh").await.unwrap().role, Role::Member);
    server.stop().await;
}

#[tokio::test]
async fn members_receive_only_between_join_and_leave() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.connect("alice").await;
    let (carol, mut carol_events) = server.connect("carol").await;
    alice.create_room(Some("plaza")).await.unwrap();
    alice.join("plaza").await.unwrap();

    let before = alice.send("plaza", "before carol").await.unwrap();
    let joined = carol.join("plaza").await.unwrap();
    assert_eq!(joined.next_seq, before + 1, "carol starts after what was said before her");
    let during = alice.send("plaza", "while carol is in").await.unwrap();
    let got = messages(&mut carol_events, "plaza", 1).await;
    assert_eq!(got, [(during, "alice".to_string(), "while carol is in".to_string())]);

    carol.leave("plaza").await.unwrap();
    let reason = next_matching(&mut carol_events, "carol's left event", |e| match e {
        Event::Left { room, reason } if room == "plaza" => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::Requested);
    let after = alice.send("plaza", "after carol left").await.unwrap();
    // Alice sees all three, in order.
    let seen = messages(&mut alice_events, "plaza", 3).await;
    assert_eq!(seen.iter().map(|m| m.0).collect::<Vec<_>>(), [before, during, after]);

    // Carol comes back: the first message she gets is the next one, never the one she missed.
    let joined = carol.join("plaza").await.unwrap();
    assert_eq!(joined.next_seq, after + 1);
    let next = alice.send("plaza", "welcome back").await.unwrap();
    let first = next_matching(&mut carol_events, "carol's next message", |e| match e {
        Event::Message { room, message } if room == "plaza" => {
            Some((message.seq, message.text.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(first, (next, "welcome back".to_string()));
    assert_eq!(carol.leave("plaza").await.map(|_| ()), Ok(()));
    assert_eq!(carol.leave("plaza").await.unwrap_err().code(), Some(ErrorCode::NotAMember));
    server.stop().await;
}

#[tokio::test]
async fn empty_rooms_are_dropped_after_their_idle_time() {
    let config = ServerConfig {
        empty_room_ttl: Duration::from_millis(300),
        maintenance_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    let (alice, _events) = server.connect("alice").await;
    alice.create_room(Some("brief")).await.unwrap();
    alice.join("brief").await.unwrap();
    alice.leave("brief").await.unwrap();
    // Poll (bounded) until the upkeep task drops the room.
    within("the empty room to be dropped", async {
        loop {
            match alice.member_count("brief").await {
                Err(e) if e.code() == Some(ErrorCode::RoomNotFound) => return,
                Ok(count) => assert_eq!(count, 0),
                Err(e) => panic!("unexpected error {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // An occupied room is kept.
    alice.create_room(Some("busy")).await.unwrap();
    alice.join("busy").await.unwrap();
    let seq = alice.send("busy", "still here").await.unwrap();
    assert_eq!(seq, 1);
    server.stop().await;
}

#[tokio::test]
async fn one_connection_in_many_rooms_keeps_them_apart() {
    let server = TestServer::start().await;
    let (alice, mut events) = server.connect("alice").await;
    let (bob, _bob_events) = server.connect("bob").await;
    for room in ["r1", "r2", "r3"] {
        bob.create_room(Some(room)).await.unwrap();
        bob.join(room).await.unwrap();
        alice.join(room).await.unwrap();
    }
    for i in 0..5 {
        for room in ["r1", "r2", "r3"] {
            bob.send(room, &format!("{room}-{i}")).await.unwrap();
        }
    }
    let mut per_room: std::collections::HashMap<String, Vec<(u64, String)>> = Default::default();
    within("15 messages over 3 rooms", async {
        while per_room.values().map(Vec::len).sum::<usize>() < 15 {
            if let Some(Event::Message { room, message }) = events.next().await {
                per_room.entry(room).or_default().push((message.seq, message.text));
            }
        }
    })
    .await;
    for room in ["r1", "r2", "r3"] {
        let expected: Vec<_> = (0..5).map(|i| (i + 1, format!("{room}-{i}"))).collect();
        assert_eq!(per_room[room], expected, "room {room}: own sequence, in order");
    }
    // The per-connection room limit is enforced.
    let limited =
        TestServer::start_with(ServerConfig { max_rooms_per_connection: 2, ..Default::default() })
            .await;
    let (eve, _e) = limited.connect("eve").await;
    for room in ["a", "b", "c"] {
        eve.create_room(Some(room)).await.unwrap();
    }
    eve.join("a").await.unwrap();
    eve.join("b").await.unwrap();
    assert_eq!(eve.join("c").await.unwrap_err().code(), Some(ErrorCode::TooManyRooms));
    eve.leave("a").await.unwrap();
    eve.join("c").await.unwrap();
    limited.stop().await;
    server.stop().await;
}
