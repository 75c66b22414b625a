//! Every limit: the right error reaches the offender, and the others are unaffected.

use std::time::Duration;

use chatroom_client::{ConnectError, ErrorCode, Priority, SendOptions};
use chatroom_protocol::{RequestBody, ResponseBody, ServerFrame};
use chatroom_server::{ServerConfig, TlsIdentity};
use chatroom_tests::{RawPeer, TestServer, messages, within};

fn options(priority: Priority) -> SendOptions {
    SendOptions { kind: None, priority }
}

#[tokio::test]
async fn the_message_rate_is_per_user_across_connections() {
    let config = ServerConfig { message_rate: 0.5, message_burst: 4.0, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let (phone, _p) = server.connect("bob").await;
    let (laptop, _l) = server.connect("bob").await;
    let (alice, _a) = server.connect("alice").await;
    alice.create_room(Some("r")).await.unwrap();
    for c in [&phone, &laptop, &alice] {
        c.join("r").await.unwrap();
    }
    // Four tokens in all, whichever connection spends them.
    assert!(phone.send("r", "1").await.is_ok());
    assert!(laptop.send("r", "2").await.is_ok());
    assert!(phone.send("r", "3").await.is_ok());
    assert!(laptop.send("r", "4").await.is_ok());
    assert_eq!(phone.send("r", "5").await.unwrap_err().code(), Some(ErrorCode::RateLimited));
    assert_eq!(
        laptop.private("r", "alice", "6").await.unwrap_err().code(),
        Some(ErrorCode::RateLimited)
    );
    assert!(alice.send("r", "unaffected").await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_crowded_room_sheds_low_priority_first() {
    let config = ServerConfig {
        room_message_rate: 0.1,
        room_message_burst: 10.0,
        message_rate: 1000.0,
        message_burst: 1000.0,
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    let (alice, mut events) = server.connect("alice").await;
    for room in ["busy", "quiet"] {
        alice.create_room(Some(room)).await.unwrap();
        alice.join(room).await.unwrap();
    }
    let mut accepted = Vec::new();
    for priority in [Priority::Low, Priority::Normal, Priority::High] {
        for _ in 0..10 {
            if alice.send_with("busy", priority.as_str(), options(priority)).await.is_ok() {
                accepted.push(priority);
            }
        }
    }
    let count = |p| accepted.iter().filter(|&&a| a == p).count();
    // Low may use half the burst, normal down to a tenth, high the rest.
    assert_eq!((count(Priority::Low), count(Priority::Normal), count(Priority::High)), (5, 4, 1));
    let err = alice.send_with("busy", "more", options(Priority::Low)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    // Another room is not affected.
    assert_eq!(alice.send("quiet", "hello").await.unwrap(), 1);
    let got = messages(&mut events, "quiet", 1).await;
    assert_eq!(got[0].2, "hello");
    server.stop().await;
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let config = ServerConfig { max_connections_per_ip: 2, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let (a, _ae) = server.connect("a").await;
    let (b, mut be) = server.connect("b").await;
    let Err(err) = server.client("c").connect().await else {
        panic!("a third connection from the same address was accepted");
    };
    assert!(matches!(err, ConnectError::Connection(_) | ConnectError::Closed { .. }), "{err:?}");
    // The admitted ones are unaffected.
    a.create_room(Some("r")).await.unwrap();
    a.join("r").await.unwrap();
    b.join("r").await.unwrap();
    let seq = a.send("r", "still fine").await.unwrap();
    assert_eq!(messages(&mut be, "r", 1).await[0].0, seq);
    // A slot frees up when a connection ends.
    a.close().await;
    within("a freed slot", async {
        loop {
            if server.client("c").connect().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn clients_must_validate_their_address_under_handshake_load() {
    // With the threshold at zero every unvalidated attempt gets a Retry; honest clients complete
    // it transparently and chat as usual.
    let config = ServerConfig { retry_above_handshakes: 0, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let (alice, mut events) = server.connect("alice").await;
    alice.create_room(Some("r")).await.unwrap();
    alice.join("r").await.unwrap();
    let seq = alice.send("r", "after a retry").await.unwrap();
    assert_eq!(messages(&mut events, "r", 1).await[0].0, seq);
    server.stop().await;
}

#[tokio::test]
async fn clients_cannot_open_extra_streams() {
    let server = TestServer::start().await;
    let mut peer = RawPeer::connect(&server).await;
    assert!(matches!(peer.hello("streamer").await, ServerFrame::Welcome(_)));
    // The server grants no unidirectional streams and one bidirectional stream (the session
    // stream, in use): opening another is not possible at all, so it stays pending. One poll
    // (a zero timeout) shows it, without waiting on time.
    let uni = tokio::time::timeout(Duration::ZERO, peer.conn.open_uni()).await;
    assert!(uni.is_err(), "a unidirectional stream was granted");
    let bi = tokio::time::timeout(Duration::ZERO, peer.conn.open_bi()).await;
    assert!(bi.is_err(), "a second bidirectional stream was granted");
    // The session goes on.
    let response = peer.request(1, RequestBody::CreateRoom { room: Some("ok".into()) }).await;
    assert!(matches!(response.result, Ok(ResponseBody::RoomCreated { .. })));
    server.stop().await;
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_connections_without_dropping_old_ones() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.connect("alice").await;
    alice.create_room(Some("r")).await.unwrap();
    alice.join("r").await.unwrap();

    let new_identity = TlsIdentity::self_signed().unwrap();
    let new_cert = new_identity.cert_chain[0].clone();
    server.tls_reloader.reload(&new_identity).unwrap();

    // A client that trusts only the new certificate connects; one that trusts only the old
    // one no longer does.
    let builder =
        chatroom_client::ClientBuilder::new(server.addr.to_string()).ca_der(new_cert).user("bob");
    let (bob, _bob_events) = builder.connect().await.expect("new certificate accepted");
    assert!(server.client("carol").connect().await.is_err(), "old certificate still served");
    // The connection made before the reload keeps chatting.
    bob.join("r").await.unwrap();
    let seq = bob.send("r", "hello across the reload").await.unwrap();
    assert_eq!(messages(&mut alice_events, "r", 1).await[0].0, seq);
    server.stop().await;
}
