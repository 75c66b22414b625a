//! Peers that break the protocol are closed with an application error code, alone: honest
//! clients in the same room keep chatting. Also: no head-of-line blocking across rooms.

use bytes::BytesMut;
use chatroom_client::ErrorCode;
use chatroom_protocol::{
    ClientFrame, CloseCode, FrameDecoder, Hello, MAX_FRAME_LEN, Request, RequestBody, ResponseBody,
    RoomFrame, ServerFrame,
};
use chatroom_server::ServerConfig;
use chatroom_tests::{RawPeer, TestServer, messages, within};

/// Alice and Bob chat in `room`; returns them, ready to go on.
async fn honest_pair(
    server: &TestServer,
    room: &str,
) -> (
    (chatroom_client::Client, chatroom_client::Events),
    (chatroom_client::Client, chatroom_client::Events),
) {
    let alice = server.connect("alice").await;
    let mut bob = server.connect("bob").await;
    alice.0.create_room(Some(room)).await.unwrap();
    alice.0.join(room).await.unwrap();
    bob.0.join(room).await.unwrap();
    let seq = alice.0.send(room, "hello bob").await.unwrap();
    assert_eq!(messages(&mut bob.1, room, 1).await, [(seq, "alice".into(), "hello bob".into())]);
    (alice, bob)
}

/// Alice can still send and Bob still receives, in sequence.
async fn still_chatting(
    alice: &chatroom_client::Client,
    bob: &mut chatroom_client::Events,
    room: &str,
) {
    let seq = alice.send(room, "still here").await.unwrap();
    assert_eq!(messages(bob, room, 1).await, [(seq, "alice".into(), "still here".into())]);
}

#[tokio::test]
async fn garbage_closes_only_the_sender() {
    let server = TestServer::start().await;
    let ((alice, _a), (_bob, mut bob_events)) = honest_pair(&server, "lobby").await;

    // A peer that joined properly, then sends bytes that are no frame.
    let mut mallory = RawPeer::connect(&server).await;
    assert!(matches!(mallory.hello("mallory").await, ServerFrame::Welcome(_)));
    let response = mallory.request(1, RequestBody::Join { room: "lobby".into() }).await;
    assert!(matches!(response.result, Ok(ResponseBody::Joined(_))), "{response:?}");
    mallory.write(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(mallory.closed_with().await, Some(CloseCode::ProtocolViolation));
    still_chatting(&alice, &mut bob_events, "lobby").await;

    // Garbage instead of a hello.
    let mut noise = RawPeer::connect(&server).await;
    noise.write(b"\x00\x00\x00\x05GET /").await;
    assert_eq!(noise.closed_with().await, Some(CloseCode::ProtocolViolation));

    // A request before the hello.
    let mut eager = RawPeer::connect(&server).await;
    eager
        .write_frame(&ClientFrame::Request(Request {
            id: 1,
            body: RequestBody::Join { room: "lobby".into() },
        }))
        .await;
    assert_eq!(eager.closed_with().await, Some(CloseCode::ProtocolViolation));

    // A second hello.
    let mut twice = RawPeer::connect(&server).await;
    assert!(matches!(twice.hello("twice").await, ServerFrame::Welcome(_)));
    let hello =
        Hello { version: 1, user: "twice".into(), token: None, agent: "raw".into(), resume: None };
    twice.write_frame(&ClientFrame::Hello(hello)).await;
    assert_eq!(twice.closed_with().await, Some(CloseCode::ProtocolViolation));

    still_chatting(&alice, &mut bob_events, "lobby").await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_frames_are_refused_before_they_are_buffered() {
    let config =
        ServerConfig { max_frame_len: 16 * 1024, max_message_len: 8 * 1024, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let ((alice, _a), (_bob, mut bob_events)) = honest_pair(&server, "lobby").await;

    let mut big = RawPeer::connect(&server).await;
    assert!(matches!(big.hello("big").await, ServerFrame::Welcome(_)));
    // Only the header: the server must refuse on the announced length alone.
    big.write(&(16 * 1024 + 1u32).to_be_bytes()).await;
    assert_eq!(big.closed_with().await, Some(CloseCode::FrameTooLarge));

    // A whole frame, bigger than the limit, before the hello.
    let mut huge = RawPeer::connect(&server).await;
    let mut frame = (MAX_FRAME_LEN as u32).to_be_bytes().to_vec();
    frame.extend(std::iter::repeat_n(0u8, 64 * 1024));
    huge.send.write_all(&frame).await.ok();
    assert_eq!(huge.closed_with().await, Some(CloseCode::FrameTooLarge));

    // A half-written frame left open harms nobody else.
    let mut half = RawPeer::connect(&server).await;
    assert!(matches!(half.hello("half").await, ServerFrame::Welcome(_)));
    half.write(&[0, 0, 0, 100, 1, 2, 3]).await;
    still_chatting(&alice, &mut bob_events, "lobby").await;
    server.stop().await;
}

#[tokio::test]
async fn unsupported_versions_get_a_clear_error() {
    let server = TestServer::start().await;
    let mut old = RawPeer::connect(&server).await;
    let hello = Hello {
        version: 99,
        user: "future".into(),
        token: None,
        agent: "raw".into(),
        resume: None,
    };
    old.write_frame(&ClientFrame::Hello(hello)).await;
    match old.read_frame().await {
        Some(ServerFrame::Rejected(e)) => {
            assert_eq!(e.code, ErrorCode::UnsupportedVersion);
            assert!(e.message.contains("99"), "{}", e.message);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(old.closed_with().await, Some(CloseCode::UnsupportedVersion));

    let mut bad = RawPeer::connect(&server).await;
    match bad.hello("not a valid id").await {
        ServerFrame::Rejected(e) => assert_eq!(e.code, ErrorCode::BadRequest),
        other => panic!("expected a rejection, got {other:?}"),
    }
    server.stop().await;
}

/// Reads room frames from a unidirectional stream.
struct RoomReader {
    recv: quinn::RecvStream,
    buf: BytesMut,
}

impl RoomReader {
    async fn next(&mut self) -> Option<RoomFrame> {
        let decoder = FrameDecoder::new(MAX_FRAME_LEN);
        loop {
            if let Some(frame) = decoder.decode(&mut self.buf).expect("valid room frame") {
                return Some(frame);
            }
            match self.recv.read_chunk(64 * 1024, true).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                _ => return None,
            }
        }
    }
}

#[tokio::test]
async fn a_stalled_room_does_not_delay_another() {
    let config = ServerConfig {
        message_rate: 1e6,
        message_burst: 1e6,
        room_message_rate: 1e6,
        room_message_burst: 1e6,
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    let (alice, _events) = server.connect("alice").await;
    for room in ["stalled", "flowing"] {
        alice.create_room(Some(room)).await.unwrap();
        alice.join(room).await.unwrap();
    }
    // A raw reader in both rooms that reads only the "flowing" room's stream.
    let mut peer = RawPeer::connect(&server).await;
    assert!(matches!(peer.hello("reader").await, ServerFrame::Welcome(_)));
    let mut streams = std::collections::HashMap::new();
    for (id, room) in [(1, "stalled"), (2, "flowing")] {
        let response = peer.request(id, RequestBody::Join { room: room.into() }).await;
        assert!(matches!(response.result, Ok(ResponseBody::Joined(_))));
    }
    for _ in 0..2 {
        let recv = within("a room stream", peer.conn.accept_uni()).await.expect("room stream");
        let mut reader = RoomReader { recv, buf: BytesMut::new() };
        match reader.next().await {
            Some(RoomFrame::Open { room, .. }) => streams.insert(room, reader),
            other => panic!("expected Open, got {other:?}"),
        };
    }
    // Fill the stalled room's stream far beyond the reader's flow-control window (quinn's
    // default stream window is about 1.25 MB): 300 messages of 7 KiB.
    let text = "s".repeat(7 * 1024);
    for _ in 0..300 {
        alice.send("stalled", &text).await.unwrap();
    }
    // The flowing room still delivers, although the stalled room's data is stuck behind an
    // unread stream.
    let seq = alice.send("flowing", "fresh").await.unwrap();
    let flowing = streams.get_mut("flowing").unwrap();
    match within("the flowing room's message", flowing.next()).await {
        Some(RoomFrame::Message(m)) => assert_eq!((m.seq, m.text.as_str()), (seq, "fresh")),
        other => panic!("expected the message, got {other:?}"),
    }
    // Reading the stalled stream now accounts for every one of the 300 messages, in order:
    // delivered, or (the server sheds a stalled reader's backlog beyond its queue limit)
    // reported in a gap. Never a silent hole; the newest ones are delivered.
    let stalled = streams.get_mut("stalled").unwrap();
    let (mut next, mut delivered) = (1u64, 0);
    while next <= 300 {
        match within("a stalled message or gap", stalled.next()).await {
            Some(RoomFrame::Message(m)) => {
                assert_eq!(m.seq, next);
                next += 1;
                delivered += 1;
            }
            Some(RoomFrame::Gap { from, to }) => {
                assert_eq!(from, next, "a gap starts where delivery stopped");
                assert!(to >= from && to < 300, "the last message is never shed here");
                next = to + 1;
            }
            other => panic!("expected message {next}, got {other:?}"),
        }
    }
    assert!(delivered > 0);
    server.stop().await;
}

#[tokio::test]
async fn floods_of_joins_and_streams_do_not_disturb_an_honest_room() {
    let server = TestServer::start().await;
    let ((alice, _a), (_bob, mut bob_events)) = honest_pair(&server, "lobby").await;
    for room in ["flood-a", "flood-b"] {
        alice.create_room(Some(room)).await.unwrap();
    }

    // A raw peer fires 2 000 join requests without waiting for answers: to rooms that do not
    // exist, to the same room again and again, and to bad ids.
    let mut flooder = RawPeer::connect(&server).await;
    assert!(matches!(flooder.hello("flooder").await, ServerFrame::Welcome(_)));
    let mut burst = BytesMut::new();
    for id in 0..2000u64 {
        let room = match id % 4 {
            0 => format!("missing-{id}"),
            1 => "flood-a".to_string(),
            2 => "flood-b".to_string(),
            _ => "bad id".to_string(),
        };
        let frame = ClientFrame::Request(Request { id, body: RequestBody::Join { room } });
        chatroom_protocol::encode_into(&frame, &mut burst).unwrap();
    }
    flooder.write(&burst).await;
    // And tries to open a thousand streams, none of which the server grants.
    for _ in 0..1000 {
        let opened = tokio::time::timeout(std::time::Duration::ZERO, flooder.conn.open_uni()).await;
        assert!(opened.is_err(), "a unidirectional stream was granted");
    }
    // Meanwhile the honest room goes on.
    still_chatting(&alice, &mut bob_events, "lobby").await;

    // Every join got its answer, in order: the two real rooms once each, the rest refused.
    let mut codes = std::collections::BTreeMap::new();
    for id in 0..2000u64 {
        match within("a join answer", flooder.read_frame()).await {
            Some(ServerFrame::Response(response)) => {
                assert_eq!(response.id, id);
                let key = match response.result {
                    Ok(_) => "joined".to_string(),
                    Err(e) => e.code.as_str().to_string(),
                };
                *codes.entry(key).or_insert(0) += 1;
            }
            other => panic!("expected the answer to join {id}, got {other:?}"),
        }
    }
    assert_eq!(codes.get("joined"), Some(&2), "{codes:?}");
    assert_eq!(codes.get("room_not_found"), Some(&500), "{codes:?}");
    assert_eq!(codes.get("already_joined"), Some(&998), "{codes:?}");
    assert_eq!(codes.get("bad_request"), Some(&500), "{codes:?}");
    still_chatting(&alice, &mut bob_events, "lobby").await;
    server.stop().await;
}
