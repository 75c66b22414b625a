//! Weak networks from the client's side: a lost connection resumes its session, an expired
//! one starts afresh and reports exactly what was missed, private messages are replayed or
//! reported missing like room messages, forged resume tokens get nobody's
//! session, a restarted server is rejoined, and a rebind migrates without a reconnection.
//!
//! Connections are cut with a netsim proxy between the client and the server, taken down for
//! as long as the (shortened) idle timeouts need to declare the connection dead.

use std::time::Duration;

use chatroom_client::{Attributes, ClientBuilder, ErrorCode, Event, Events, RequestError, Role};
use chatroom_netsim::proxy::ProxyHandle;
use chatroom_protocol::{
    ClientFrame, Hello, PROTOCOL_VERSION, RequestBody, ResumeRequest, RoomPosition, ServerFrame,
    Welcome,
};
use chatroom_server::ServerConfig;
use chatroom_tests::{
    RawPeer, TestServer, assert_none_before, messages, next_matching, proxy, within,
};

const MS: Duration = Duration::from_millis(1);

/// A server that notices a dead connection within a second.
fn quick_server() -> ServerConfig {
    ServerConfig { idle_timeout: 1000 * MS, keep_alive: 300 * MS, ..ServerConfig::default() }
}

/// A client through `proxy` that declares the connection dead after a second and comes back
/// quickly once the path does.
fn flaky_client(server: &TestServer, proxy: &ProxyHandle, user: &str) -> ClientBuilder {
    server
        .client_via(proxy.local_addr(), user)
        .idle_timeout(1000 * MS)
        .keep_alive(300 * MS)
        .connect_timeout(1000 * MS)
        .reconnect_backoff(50 * MS, 250 * MS)
}

/// The room's message seqs and gaps, in order, until message `until` (inclusive).
async fn room_content(events: &mut Events, room: &str, until: u64) -> Vec<String> {
    let mut seen = Vec::new();
    within(&format!("message {until} in {room}"), async {
        loop {
            match events.next().await.expect("events go on") {
                Event::Message { room: r, message } if r == room => {
                    seen.push(format!("#{} {}", message.seq, message.text));
                    if message.seq == until {
                        return;
                    }
                }
                Event::Gap { room: r, from, to } if r == room => {
                    seen.push(format!("gap {from}-{to}"))
                }
                _ => {}
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn a_lost_connection_resumes_the_same_session_and_misses_nothing() {
    let server = TestServer::start_with(quick_server()).await;
    let proxy = proxy(&server).await;
    let (bob, mut bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();
    bob.grant_admin("plaza", "alice").await.unwrap();
    let mood = Attributes::from([("mood".to_owned(), "chatty".to_owned())]);
    alice.set_attributes("plaza", mood.clone(), Vec::new()).await.unwrap();
    let session = alice.session_id();
    bob.send("plaza", "before").await.unwrap();
    assert_eq!(messages(&mut events, "plaza", 1).await[0].2, "before");
    // Bob has seen everything up to here, alice's arrival included.
    assert_eq!(messages(&mut bob_events, "plaza", 1).await[0].2, "before");

    proxy.set_down(true);
    for text in ["during 1", "during 2", "during 3"] {
        bob.send("plaza", text).await.unwrap();
    }
    next_matching(&mut events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. }).then_some(())
    })
    .await;
    proxy.set_down(false);
    let (session_id, zero_rtt) = next_matching(&mut events, "resumed", |e| match e {
        Event::Resumed { session_id, zero_rtt } => Some((session_id.clone(), *zero_rtt)),
        Event::NewSession { .. } => panic!("not resumed: {e:?}"),
        _ => None,
    })
    .await;
    assert_eq!(session_id, session, "the same session");
    assert_eq!(alice.session_id(), session);
    assert!(zero_rtt, "a reconnection to the same server sends its hello as 0-RTT data");

    // What was sent meanwhile arrives in order, exactly once, and then live traffic.
    bob.send("plaza", "after").await.unwrap();
    assert_eq!(
        room_content(&mut events, "plaza", 5).await,
        ["#2 during 1", "#3 during 2", "#4 during 3", "#5 after"]
    );
    // Nobody saw alice leave or join again.
    bob.send("plaza", "barrier").await.unwrap();
    assert_none_before(
        &mut bob_events,
        "no presence change for alice",
        |e| {
            matches!(e, Event::MemberLeft { user, .. } | Event::MemberJoined { user, .. }
                if user == "alice")
        },
        |e| matches!(e, Event::Message { message, .. } if message.text == "barrier"),
    )
    .await;
    // Her role and attributes are intact.
    let page = alice.members("plaza", None, 10).await.unwrap();
    let me = page.members.iter().find(|m| m.user == "alice").expect("alice is a member");
    assert_eq!((me.role, &me.attributes), (Role::Admin, &mood));
    assert_eq!(alice.rooms(), ["plaza"]);
    server.stop().await;
}

#[tokio::test]
async fn an_expired_session_starts_afresh_and_reports_exactly_the_gap() {
    let config = ServerConfig { resume_window: 500 * MS, ..quick_server() };
    let server = TestServer::start_with(config).await;
    let proxy = proxy(&server).await;
    let (bob, mut bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();
    let old_session = alice.session_id();
    bob.send("plaza", "seen").await.unwrap();
    assert_eq!(messages(&mut events, "plaza", 1).await[0].2, "seen");

    proxy.set_down(true);
    for text in ["missed 1", "missed 2", "missed 3"] {
        bob.send("plaza", text).await.unwrap();
    }
    // The server gives up on alice's session once its resume window has passed: the room sees
    // her leave.
    next_matching(&mut bob_events, "alice's session to end", |e| {
        matches!(e, Event::MemberLeft { user, .. } if user == "alice").then_some(())
    })
    .await;
    proxy.set_down(false);

    let reason = next_matching(&mut events, "a new session", |e| match e {
        Event::NewSession { reason, .. } => Some(reason.clone()),
        Event::Resumed { .. } => panic!("resumed an expired session"),
        _ => None,
    })
    .await;
    assert_eq!(reason.map(|r| r.code), Some(ErrorCode::SessionExpired));
    assert_ne!(alice.session_id(), old_session);
    next_matching(&mut bob_events, "alice back in the room", |e| {
        matches!(e, Event::MemberJoined { user, .. } if user == "alice").then_some(())
    })
    .await;
    bob.send("plaza", "welcome back").await.unwrap();
    assert_eq!(room_content(&mut events, "plaza", 5).await, ["gap 2-4", "#5 welcome back"]);
    server.stop().await;
}

/// Everything `room` brings (messages, private messages and gaps of both), in order, until the
/// message or private message whose text is `until`.
async fn room_and_private_content(events: &mut Events, room: &str, until: &str) -> Vec<String> {
    let mut seen = Vec::new();
    within(&format!("{until:?} in {room}"), async {
        loop {
            let (line, text) = match events.next().await.expect("events go on") {
                Event::Message { room: r, message } if r == room => {
                    (format!("#{} {}", message.seq, message.text), message.text)
                }
                Event::Private { room: r, message } if r == room => {
                    (format!("p{} {}: {}", message.seq, message.from, message.text), message.text)
                }
                Event::Gap { room: r, from, to } if r == room => {
                    (format!("gap {from}-{to}"), String::new())
                }
                Event::PrivateGap { room: r, from, to } if r == room => {
                    (format!("private gap {from}-{to}"), String::new())
                }
                _ => continue,
            };
            seen.push(line);
            if text == until {
                return;
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn private_messages_sent_while_away_arrive_after_the_resume_exactly_once() {
    // The server notices the loss before the client does, so that the second batch below is
    // usually sent to a detached session; the first goes to a connection it still thinks alive.
    // Either way, everything must arrive.
    let config = ServerConfig { idle_timeout: 500 * MS, keep_alive: 150 * MS, ..quick_server() };
    let server = TestServer::start_with(config).await;
    let proxy = proxy(&server).await;
    let (bob, _bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let (carol, _carol_events) = server.connect("carol").await;
    carol.join("plaza").await.unwrap();
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();
    let session = alice.session_id();
    bob.private("plaza", "alice", "before").await.unwrap();
    assert_eq!(room_and_private_content(&mut events, "plaza", "before").await, ["p1 bob: before"]);

    proxy.set_down(true);
    bob.send("plaza", "m1").await.unwrap();
    bob.private("plaza", "alice", "in flight").await.unwrap();
    next_matching(&mut events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. }).then_some(())
    })
    .await;
    carol.private("plaza", "alice", "away 1").await.unwrap();
    bob.send("plaza", "m2").await.unwrap();
    bob.private("plaza", "alice", "away 2").await.unwrap();
    proxy.set_down(false);
    let resumed = next_matching(&mut events, "resumed", |e| match e {
        Event::Resumed { session_id, .. } => Some(session_id.clone()),
        Event::NewSession { .. } => panic!("not resumed: {e:?}"),
        _ => None,
    })
    .await;
    assert_eq!(resumed, session);
    carol.private("plaza", "alice", "live").await.unwrap();
    assert_eq!(
        room_and_private_content(&mut events, "plaza", "live").await,
        [
            "#1 m1",
            "p2 bob: in flight",
            "p3 carol: away 1",
            "#2 m2",
            "p4 bob: away 2",
            "p5 carol: live"
        ],
        "in the order the server accepted them, each exactly once"
    );
    server.stop().await;
}

#[tokio::test]
async fn private_messages_no_longer_kept_are_reported_as_a_private_gap() {
    let config = ServerConfig { private_replay_messages: 1, ..quick_server() };
    let server = TestServer::start_with(config).await;
    let proxy = proxy(&server).await;
    let (bob, _bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();
    bob.private("plaza", "alice", "seen").await.unwrap();
    assert_eq!(room_and_private_content(&mut events, "plaza", "seen").await, ["p1 bob: seen"]);

    proxy.set_down(true);
    for text in ["lost 1", "lost 2", "kept"] {
        bob.private("plaza", "alice", text).await.unwrap();
    }
    next_matching(&mut events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. }).then_some(())
    })
    .await;
    proxy.set_down(false);
    assert_eq!(
        room_and_private_content(&mut events, "plaza", "kept").await,
        ["private gap 2-3", "p4 bob: kept"]
    );
    server.stop().await;
}

/// Sends a Hello as `user` resuming with `token`, and returns the server's welcome.
async fn hello_resuming(server: &TestServer, user: &str, token: &str) -> (RawPeer, Welcome) {
    let mut peer = RawPeer::connect(server).await;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        user: user.into(),
        token: None,
        agent: "resume-test".into(),
        resume: Some(ResumeRequest {
            token: token.into(),
            rooms: vec![RoomPosition { room: "secret".into(), last_seq: 0, last_private_seq: 0 }],
        }),
    };
    peer.write_frame(&ClientFrame::Hello(hello)).await;
    match peer.read_frame().await {
        Some(ServerFrame::Welcome(welcome)) => (peer, welcome),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_or_foreign_tokens_get_a_fresh_session_never_the_victims() {
    let server = TestServer::start().await;
    let mut victim = RawPeer::connect(&server).await;
    let ServerFrame::Welcome(welcome) = victim.hello("alice").await else {
        panic!("no welcome for the victim");
    };
    for (id, body) in [
        (1, RequestBody::CreateRoom { room: Some("secret".into()) }),
        (2, RequestBody::Join { room: "secret".into() }),
    ] {
        assert!(victim.request(id, body).await.result.is_ok());
    }
    let token = welcome.resume_token.clone();
    let mut altered = token.clone().into_bytes();
    let last = altered.last_mut().expect("a token");
    *last = if *last == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).unwrap();

    for (user, token, what) in [
        ("mallory", token.as_str(), "another user's token"),
        ("alice", altered.as_str(), "an altered token"),
        ("alice", "garbage", "garbage"),
        ("alice", "", "an empty token"),
    ] {
        let (mut peer, answer) = hello_resuming(&server, user, token).await;
        assert!(!answer.resumed, "{what}");
        let refused = answer.resume_refused.as_ref().map(|e| e.code);
        assert_eq!(refused, Some(ErrorCode::Unauthorized), "{what}");
        assert_ne!(answer.session_id, welcome.session_id, "{what}");
        assert!(answer.rooms.is_empty(), "{what}");
        let send = RequestBody::Send {
            room: "secret".into(),
            text: "hi".into(),
            kind: None,
            priority: Default::default(),
        };
        let response = peer.request(1, send).await;
        let code = response.result.err().map(|e| e.code);
        assert_eq!(code, Some(ErrorCode::NotAMember), "{what}: not in the victim's room");
    }
    // The genuine token of the genuine user does resume.
    let (_peer, answer) = hello_resuming(&server, "alice", &token).await;
    assert!(answer.resumed, "{:?}", answer.resume_refused);
    assert_eq!(answer.session_id, welcome.session_id);
    assert_eq!(answer.rooms.iter().map(|r| r.room.as_str()).collect::<Vec<_>>(), ["secret"]);
    server.stop().await;
}

#[tokio::test]
async fn a_restarted_server_is_rejoined_with_the_gap_and_chat_goes_on() {
    let config =
        ServerConfig { auto_create_rooms: true, shutdown_grace: 200 * MS, ..quick_server() };
    let server = TestServer::start_with(config.clone()).await;
    let proxy = proxy(&server).await;
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();
    alice.send("plaza", "before the restart").await.unwrap();
    assert_eq!(messages(&mut events, "plaza", 1).await[0].0, 1);

    let restarting = tokio::spawn(server.restart(config));
    next_matching(&mut events, "going away", |e| {
        matches!(e, Event::GoingAway { .. }).then_some(())
    })
    .await;
    // Alice stays away while the new server's room fills up.
    proxy.set_down(true);
    let server = within("the restart", restarting).await.unwrap();
    let (carol, mut carol_events) = server.connect("carol").await;
    carol.join("plaza").await.unwrap();
    for text in ["new 1", "new 2"] {
        carol.send("plaza", text).await.unwrap();
    }
    proxy.set_down(false);

    let reason = next_matching(&mut events, "a new session", |e| match e {
        Event::NewSession { reason, .. } => Some(reason.clone()),
        Event::Left { .. } | Event::RejoinFailed { .. } | Event::Disconnected { .. } => {
            panic!("the room must go on: {e:?}")
        }
        _ => None,
    })
    .await;
    assert_eq!(reason.map(|r| r.code), Some(ErrorCode::SessionExpired));
    next_matching(&mut carol_events, "alice back in the room", |e| {
        matches!(e, Event::MemberJoined { user, .. } if user == "alice").then_some(())
    })
    .await;
    carol.send("plaza", "hello alice").await.unwrap();
    assert_eq!(room_content(&mut events, "plaza", 3).await, ["gap 1-2", "#3 hello alice"]);
    alice.send("plaza", "hello carol").await.unwrap();
    let heard = next_matching(&mut carol_events, "alice's message", |e| match e {
        Event::Message { message, .. } if message.from == "alice" => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!((heard.seq, heard.text.as_str()), (4, "hello carol"));
    server.stop().await;
}

#[tokio::test]
async fn a_server_restart_the_client_never_heard_of_is_told_by_the_room_epoch() {
    // Alice is cut off before the server goes away, so she never gets its notice, as after a
    // crash. The new room under the same name then outnumbers her old position: only the
    // epoch in the join's answer says it is another room.
    let config =
        ServerConfig { auto_create_rooms: true, shutdown_grace: 200 * MS, ..quick_server() };
    let server = TestServer::start_with(config.clone()).await;
    let proxy = proxy(&server).await;
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();
    for text in ["old 1", "old 2"] {
        alice.send("plaza", text).await.unwrap();
    }
    assert_eq!(room_content(&mut events, "plaza", 2).await, ["#1 old 1", "#2 old 2"]);

    proxy.set_down(true);
    let server = server.restart(config).await;
    let (carol, _carol_events) = server.connect("carol").await;
    carol.join("plaza").await.unwrap();
    for text in ["new 1", "new 2", "new 3", "new 4"] {
        carol.send("plaza", text).await.unwrap();
    }
    proxy.set_down(false);

    let reason = next_matching(&mut events, "a new session", |e| match e {
        Event::NewSession { reason, .. } => Some(reason.clone()),
        Event::GoingAway { .. } => panic!("alice was not to hear the notice"),
        Event::Left { .. } | Event::RejoinFailed { .. } | Event::Disconnected { .. } => {
            panic!("the room must go on: {e:?}")
        }
        _ => None,
    })
    .await;
    assert_eq!(reason.map(|r| r.code), Some(ErrorCode::SessionExpired));
    carol.send("plaza", "hello alice").await.unwrap();
    assert_eq!(
        room_content(&mut events, "plaza", 5).await,
        ["gap 1-4", "#5 hello alice"],
        "every message of the new room before the rejoin, not 3-4 after the old position"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_rebind_migrates_the_connection_without_a_reconnection() {
    let server = TestServer::start().await;
    let proxy = proxy(&server).await;
    let (bob, mut bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let (alice, mut events) =
        server.client_via(proxy.local_addr(), "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();
    bob.send("plaza", "one").await.unwrap();
    assert_eq!(messages(&mut events, "plaza", 1).await[0].2, "one");

    let old = alice.local_addr().unwrap();
    let new = alice.rebind().unwrap();
    assert_ne!(old.port(), new.port());
    bob.send("plaza", "two").await.unwrap();
    alice.send("plaza", "three").await.unwrap();
    let mut seen = Vec::new();
    within("two and three", async {
        while seen.len() < 2 {
            match events.next().await.expect("events go on") {
                Event::Message { message, .. } => seen.push(message.text),
                other @ (Event::Reconnecting { .. }
                | Event::Resumed { .. }
                | Event::NewSession { .. }
                | Event::Disconnected { .. }) => panic!("no reconnection: {other:?}"),
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(seen, ["two", "three"]);
    assert_eq!(messages(&mut bob_events, "plaza", 3).await[2].2, "three");
    assert!(alice.is_connected());
    // The server sees the connection come from the new address (here: the proxy's mapping
    // for the client's new port).
    let mappings = proxy.mappings();
    assert!(mappings.iter().any(|m| m.client.port() == new.port()), "{mappings:?}");
    server.stop().await;
}

#[tokio::test]
async fn requests_across_a_lost_connection() {
    let server = TestServer::start_with(quick_server()).await;
    let proxy = proxy(&server).await;
    let (bob, mut bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();

    proxy.set_down(true);
    // Sent on a connection that dies before the answer: the outcome is unknown.
    let lost = within("the request to fail", alice.send("plaza", "in flight")).await;
    assert!(matches!(lost, Err(RequestError::ConnectionLost(_))), "{lost:?}");
    // Made while reconnecting: it waits for the next session and goes out.
    let queued = tokio::spawn({
        let alice = alice.clone();
        async move { alice.send("plaza", "queued").await }
    });
    next_matching(&mut events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. }).then_some(())
    })
    .await;
    proxy.set_down(false);
    let seq = within("the queued request", queued).await.unwrap().expect("sent once back");
    let heard = messages(&mut bob_events, "plaza", 1).await;
    assert_eq!(heard, [(seq, "alice".to_owned(), "queued".to_owned())], "in flight never arrived");
    server.stop().await;
}

#[tokio::test]
async fn a_room_lost_while_away_ends_with_rejoin_failed() {
    let server = TestServer::start_with(quick_server()).await;
    let proxy = proxy(&server).await;
    let (bob, _bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let (alice, mut events) = flaky_client(&server, &proxy, "alice").connect().await.unwrap();
    alice.join("plaza").await.unwrap();

    proxy.set_down(true);
    bob.kick("plaza", "alice").await.unwrap();
    next_matching(&mut events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. }).then_some(())
    })
    .await;
    proxy.set_down(false);
    let error = next_matching(&mut events, "the rejoin to fail", |e| match e {
        Event::RejoinFailed { room, error } if room == "plaza" => Some(error.clone()),
        _ => None,
    })
    .await;
    assert_eq!(error.code, ErrorCode::Banned);
    assert!(alice.rooms().is_empty());
    assert!(alice.is_connected(), "the session goes on without the room");
    server.stop().await;
}

#[tokio::test]
async fn a_network_change_on_a_dead_path_reconnects_without_waiting_for_the_idle_timeout() {
    let server = TestServer::start().await;
    let proxy = proxy(&server).await;
    // The default idle timeout (30 s) would keep this test waiting far longer than it takes.
    let (alice, mut events) = server
        .client_via(proxy.local_addr(), "alice")
        .network_change_timeout(300 * MS)
        .connect_timeout(1000 * MS)
        .reconnect_backoff(50 * MS, 250 * MS)
        .connect()
        .await
        .unwrap();
    alice.create_room(Some("plaza")).await.unwrap();
    alice.join("plaza").await.unwrap();
    let session = alice.session_id();

    proxy.set_down(true);
    alice.network_changed();
    next_matching(&mut events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. }).then_some(())
    })
    .await;
    proxy.set_down(false);
    let resumed = next_matching(&mut events, "resumed", |e| match e {
        Event::Resumed { session_id, .. } => Some(session_id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(resumed, session);
    alice.send("plaza", "still here").await.unwrap();
    assert_eq!(messages(&mut events, "plaza", 1).await[0].2, "still here");
    server.stop().await;
}

#[tokio::test]
async fn the_cli_stays_in_the_room_across_a_lost_connection() {
    use std::process::Stdio;

    use tokio::io::{AsyncBufReadExt, BufReader};

    let server = TestServer::start_with(quick_server()).await;
    let proxy = proxy(&server).await;
    let (bob, _bob_events) = server.connect("bob").await;
    bob.create_room(Some("plaza")).await.unwrap();
    bob.join("plaza").await.unwrap();
    let mut child = tokio::process::Command::new(chatroom_tests::cli_binary())
        .args(["--json", "--server", &proxy.local_addr().to_string(), "--ca"])
        .arg(&server.cert_pem)
        .args(["--user", "alice", "--idle-timeout", "1s", "--keep-alive", "300ms"])
        .args([
            "--connect-timeout",
            "1s",
            "--reconnect-initial",
            "50ms",
            "--reconnect-max",
            "250ms",
        ])
        .args(["join", "plaza"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chatroom join");
    let stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut event = async |name: &str| -> serde_json::Value {
        within(&format!("a {name} event"), async {
            loop {
                let line = lines.next_line().await.unwrap().expect("the CLI goes on");
                let value: serde_json::Value = serde_json::from_str(&line).expect("JSON lines");
                if value["event"] == name {
                    return value;
                }
                assert_ne!(value["event"], "disconnected", "{line}");
            }
        })
        .await
    };
    event("joined").await;
    proxy.set_down(true);
    let reconnecting = event("reconnecting").await;
    assert_eq!(reconnecting["attempt"], 1);
    assert!(reconnecting["delay_ms"].as_u64().is_some_and(|ms| ms <= 50), "{reconnecting}");
    proxy.set_down(false);
    let resumed = event("resumed").await;
    assert_eq!(resumed["zero_rtt"], true);
    bob.send("plaza", "still there?").await.unwrap();
    assert_eq!(event("message").await["text"], "still there?");
    drop(stdin);
    let status = within("the CLI to exit", child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    server.stop().await;
}

/// How long after a blackout ends traffic flows again, with and without path probing: a
/// measurement, not a test (`cargo test -p chatroom-tests --test resume -- --ignored
/// --nocapture`). Default server and client settings, so the connection outlives the
/// blackout; alice listens behind a proxy that adds 50 ms each way (a 100 ms round trip, so
/// that QUIC's probe timer backs off as on a mobile link, not from loopback's microseconds).
/// Bob either sends every 50 ms (`busy`) or once, a second into the blackout (`one`).
#[tokio::test]
#[ignore = "a measurement: prints figures, asserts nothing about timing"]
async fn blackout_recovery_figures() {
    let server = TestServer::start().await;
    println!("blackout  traffic  probing  first message after the link is back");
    for seconds in [5, 10, 20] {
        let blackout = Duration::from_secs(seconds);
        for busy in [true, false] {
            for probing in [true, false] {
                let (recovery, reconnected) = blackout_run(&server, blackout, busy, probing).await;
                let traffic = if busy { "busy" } else { "one" };
                let recovery = recovery.map_or("-".to_owned(), |d| format!("{d:.0?}"));
                let note = if reconnected { " (reconnected)" } else { "" };
                println!("{blackout:>7.0?}  {traffic:>7}  {probing:>7}  {recovery:>10}{note}");
            }
        }
    }
    server.stop().await;
}

/// One blackout: the time from the link's return to the first message from bob reaching
/// alice, and whether she had to reconnect.
async fn blackout_run(
    server: &TestServer,
    blackout: Duration,
    busy: bool,
    probing: bool,
) -> (Option<Duration>, bool) {
    use std::net::SocketAddr;
    use std::time::Instant;

    use chatroom_netsim::model::{Impairment, LinkConfig};
    use chatroom_netsim::proxy::{Proxy, ProxyConfig};
    let link = LinkConfig::symmetric(Impairment { delay: 50 * MS, ..Impairment::default() });
    let config =
        ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), server.addr).with_link(link);
    let proxy = Proxy::start(config).await.unwrap();
    let room = format!("r{}-{busy}-{probing}", blackout.as_secs());
    let (bob, _bob_events) = server.connect("bob").await;
    bob.create_room(Some(&room)).await.unwrap();
    bob.join(&room).await.unwrap();
    let probe_after = probing.then_some(chatroom_client::DEFAULT_PATH_PROBE_AFTER);
    let (alice, mut events) = server
        .client_via(proxy.local_addr(), "alice")
        .path_probe_after(probe_after)
        .connect()
        .await
        .unwrap();
    alice.join(&room).await.unwrap();
    let sender = tokio::spawn({
        let (bob, room) = (bob.clone(), room.clone());
        async move {
            if !busy {
                tokio::time::sleep(2000 * MS).await;
                let _ = bob.send(&room, "one").await;
                return;
            }
            let mut ticks = tokio::time::interval(50 * MS);
            loop {
                ticks.tick().await;
                if bob.send(&room, "busy").await.is_err() {
                    return;
                }
            }
        }
    });
    tokio::time::sleep(1000 * MS).await;
    proxy.set_down(true);
    tokio::time::sleep(blackout).await;
    while events.try_next().is_some() {}
    proxy.set_down(false);
    let up = Instant::now();
    let mut reconnected = false;
    let first = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match events.next().await {
                Some(Event::Message { message, .. }) if message.from == "bob" => {
                    return up.elapsed();
                }
                Some(Event::Reconnecting { .. }) => reconnected = true,
                Some(_) => {}
                None => return up.elapsed(),
            }
        }
    })
    .await
    .ok();
    sender.abort();
    alice.close().await;
    bob.close().await;
    proxy.shutdown().await;
    (first, reconnected)
}
