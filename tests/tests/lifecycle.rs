//! Sessions from the client's side: the welcome, graceful shutdown.

use chatroom_client::{Event, LeaveReason};
use chatroom_protocol::{CloseCode, PROTOCOL_VERSION};
use chatroom_server::ServerConfig;
use chatroom_tests::{TestServer, within};

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
    let (alice, mut events) = server.connect("alice").await;
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
