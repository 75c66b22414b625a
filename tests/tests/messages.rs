//! Room messages (sequence numbers, fields, sizes, rate limit) and private messages.

use chatroom_client::{ErrorCode, Event, Priority, SendOptions};
use chatroom_server::ServerConfig;
use chatroom_tests::{TestServer, assert_none_before, messages, next_matching};

#[tokio::test]
async fn every_member_gets_every_message_in_seq_order_with_all_fields() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.connect("alice").await;
    let (bob, mut bob_events) = server.connect("bob").await;
    let (carol, mut carol_events) = server.connect("carol").await;
    alice.create_room(Some("chat")).await.unwrap();
    for c in [&alice, &bob, &carol] {
        c.join("chat").await.unwrap();
    }

    // Interleaved senders: the server orders them; the acks tell each sender its seq.
    let mut acked = Vec::new();
    for i in 0..10 {
        let (sender, name) = if i % 2 == 0 { (&alice, "alice") } else { (&bob, "bob") };
        let seq = sender.send("chat", &format!("m{i}")).await.unwrap();
        acked.push((seq, name.to_string(), format!("m{i}")));
    }
    assert_eq!(acked.iter().map(|m| m.0).collect::<Vec<_>>(), (1..=10).collect::<Vec<u64>>());
    // Everybody, senders included (echo), receives the same sequence.
    for events in [&mut alice_events, &mut bob_events, &mut carol_events] {
        assert_eq!(messages(events, "chat", 10).await, acked);
    }

    // Kind, priority, timestamp and a media URL travel intact.
    let options = SendOptions { kind: Some("image".into()), priority: Priority::High };
    let url = "https://cdn.example.com/cat.jpg 🐱";
    let seq = bob.send_with("chat", url, options).await.unwrap();
    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as u64;
    let message = next_matching(&mut carol_events, "the image message", |e| match e {
        Event::Message { room, message } if room == "chat" => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message.seq, seq);
    assert_eq!(message.from, "bob");
    assert_eq!(message.text, url);
    assert_eq!(message.kind.as_deref(), Some("image"));
    assert_eq!(message.priority, Priority::High);
    assert!(message.timestamp_ms > before - 60_000 && message.timestamp_ms <= before + 60_000);
    server.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused_and_consume_no_seq() {
    let config = ServerConfig { max_message_len: 100, max_frame_len: 4096, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let (alice, mut events) = server.connect("alice").await;
    alice.create_room(Some("small")).await.unwrap();
    alice.join("small").await.unwrap();
    assert_eq!(alice.send("small", &"x".repeat(100)).await.unwrap(), 1);
    let err = alice.send("small", &"x".repeat(101)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TooLarge));
    assert_eq!(alice.send("small", "ok").await.unwrap(), 2);
    let got = messages(&mut events, "small", 2).await;
    assert_eq!(got.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2]);
    // Not a member: refused.
    let (eve, _e) = server.connect("eve").await;
    assert_eq!(eve.send("small", "hi").await.unwrap_err().code(), Some(ErrorCode::NotAMember));
    server.stop().await;
}

#[tokio::test]
async fn senders_over_the_rate_are_limited() {
    let config = ServerConfig { message_rate: 1.0, message_burst: 3.0, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let (alice, _events) = server.connect("alice").await;
    let (bob, _bob_events) = server.connect("bob").await;
    alice.create_room(Some("slow")).await.unwrap();
    alice.join("slow").await.unwrap();
    bob.join("slow").await.unwrap();
    let mut results = Vec::new();
    for i in 0..5 {
        results.push(alice.send("slow", &format!("{i}")).await.map_err(|e| e.code()));
    }
    assert_eq!(&results[..3], &[Ok(1), Ok(2), Ok(3)]);
    assert!(results[3..].iter().all(|r| *r == Err(Some(ErrorCode::RateLimited))), "{results:?}");
    // Another user is not affected.
    assert_eq!(bob.send("slow", "fine").await.unwrap(), 4);
    server.stop().await;
}

#[tokio::test]
async fn private_messages_reach_all_connections_of_the_target_and_nobody_else() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.connect("alice").await;
    let (bob_phone, mut phone_events) = server.connect("bob").await;
    let (bob_laptop, mut laptop_events) = server.connect("bob").await;
    let (carol, mut carol_events) = server.connect("carol").await;
    alice.create_room(Some("office")).await.unwrap();
    for c in [&alice, &bob_phone, &bob_laptop, &carol] {
        c.join("office").await.unwrap();
    }
    alice.private("office", "bob", "lunch?").await.unwrap();
    for events in [&mut phone_events, &mut laptop_events] {
        let (from, text) = next_matching(events, "bob's private message", |e| match e {
            Event::Private { room, message } if room == "office" => {
                Some((message.from.clone(), message.text.clone()))
            }
            _ => None,
        })
        .await;
        assert_eq!((from.as_str(), text.as_str()), ("alice", "lunch?"));
    }
    // A room message sent after the private one is a barrier on the same stream: carol and
    // alice must see it without having seen the private message first.
    let barrier = alice.send("office", "barrier").await.unwrap();
    let is_private = |e: &Event| matches!(e, Event::Private { .. });
    let is_barrier =
        move |e: &Event| matches!(e, Event::Message { message, .. } if message.seq == barrier);
    assert_none_before(&mut carol_events, "carol gets no private message", is_private, is_barrier)
        .await;
    assert_none_before(&mut alice_events, "the sender gets no copy", is_private, is_barrier).await;

    let err = alice.private("office", "nobody", "hello?").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotAMember));
    let (eve, _e) = server.connect("eve").await;
    let err = eve.private("office", "bob", "spam").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotAMember));
    server.stop().await;
}
