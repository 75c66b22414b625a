//! Sessions from the client's side: the welcome, graceful shutdown.

use chatroom_client::{Event, LeaveReason};
use chatroom_protocol::{CloseCode, PROTOCOL_VERSION};
use chatroom_server::ServerConfig;
use chatroom_tests::{TestServer, next_matching, within};

#[tokio::test]
async fn welcome_announces_region_and_limits() {
    let config =
        ServerConfig { region: "eu-west".into(), max_message_len: 4000, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let (alice, _events) = server.connect("alice").await;
    assert_eq!(alice.user(), "alice");
    assert_eq!(alice.region(), "eu-west");
    assert!(!alice.session_id().is_empty());
    assert_eq!(alice.limits().max_message_len, 4000);
    assert_eq!(alice.limits().max_attribute_keys, 32);
    assert_eq!(PROTOCOL_VERSION, 1);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_clients_before_closing() {
    let server = TestServer::start().await;
    // Without reconnection, a server's shutdown ends the client.
    let (alice, mut events) = server.client("alice").reconnect(false).connect().await.unwrap();
    alice.create_room(Some("last")).await.unwrap();
    alice.join("last").await.unwrap();
    let stopping = tokio::spawn(server.stop());
    // Everything until the disconnection: the room stream's end and the going-away notice
    // travel on different streams, so either may come first; both come before the close.
    let mut seen = Vec::new();
    let code = within("the disconnection", async {
        loop {
            match events.next().await.expect("events end only after Disconnected") {
                Event::Disconnected { code, .. } => return code,
                event => seen.push(event),
            }
        }
    })
    .await;
    assert!(
        seen.iter().any(|e| matches!(e, Event::Left { room, reason: LeaveReason::ServerShutdown } if room == "last")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::GoingAway { reason } if reason.contains("shutting down"))),
        "{seen:?}"
    );
    // The client library answers a going-away notice by closing normally, or the server closes
    // with going_away first: both are orderly.
    assert!(
        matches!(code, Some(CloseCode::GoingAway) | Some(CloseCode::Normal) | None),
        "{code:?}"
    );
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_reconnecting_client_keeps_its_rooms_through_a_shutdown_until_closed() {
    let server = TestServer::start().await;
    let (alice, mut events) = server.connect("alice").await;
    alice.create_room(Some("last")).await.unwrap();
    alice.join("last").await.unwrap();
    let stopping = tokio::spawn(server.stop());
    // The notice, then attempts to come back (the server may be restarting); the room is kept
    // to be joined again, so its end is not reported.
    let mut seen = Vec::new();
    within("the first reconnection attempt", async {
        loop {
            match events.next().await.expect("events go on while reconnecting") {
                Event::Reconnecting { attempt: 1, .. } => return,
                event => seen.push(event),
            }
        }
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::GoingAway { .. })), "{seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, Event::Left { .. })), "{seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, Event::Disconnected { .. })), "{seen:?}");
    assert_eq!(alice.rooms(), ["last"]);
    stopping.await.unwrap();
    // Closing ends it, even between attempts.
    alice.close().await;
    let code = next_matching(&mut events, "the disconnection", |e| match e {
        Event::Disconnected { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(CloseCode::Normal));
    assert!(events.next().await.is_none(), "Disconnected is the last event");
}
