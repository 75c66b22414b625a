//! Roles, mutes, kicks and bans, and how they are announced.

use std::time::Duration;

use chatroom_client::{Client, ErrorCode, Event, Events, LeaveReason, Role};
use chatroom_server::ServerConfig;
use chatroom_tests::{TestServer, next_matching, within};

/// Owner `owner`, members `alice`, `bob`, `carol`, all in room `mod`.
async fn room_of_four(server: &TestServer) -> Vec<(Client, Events)> {
    let mut clients = Vec::new();
    for user in ["owner", "alice", "bob", "carol"] {
        clients.push(server.connect(user).await);
    }
    clients[0].0.create_room(Some("mod")).await.unwrap();
    for (client, _) in &clients {
        client.join("mod").await.unwrap();
    }
    clients
}

fn code<T>(result: Result<T, chatroom_client::RequestError>) -> Option<ErrorCode> {
    result.err().and_then(|e| e.code())
}

#[tokio::test]
async fn owner_grants_admin_and_it_is_announced() {
    let server = TestServer::start().await;
    let mut c = room_of_four(&server).await;
    let (owner, alice, bob) = (c[0].0.clone(), c[1].0.clone(), c[2].0.clone());

    assert_eq!(code(alice.grant_admin("mod", "bob").await), Some(ErrorCode::Forbidden));
    owner.grant_admin("mod", "alice").await.unwrap();
    let change = next_matching(&mut c[3].1, "carol sees the role change", |e| match e {
        Event::RoleChanged { room, user, role, by } if room == "mod" => {
            Some((user.clone(), *role, by.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(change, ("alice".to_string(), Role::Admin, "owner".to_string()));
    // An admin still cannot grant admin.
    assert_eq!(code(alice.grant_admin("mod", "bob").await), Some(ErrorCode::Forbidden));
    let page = bob.members("mod", None, 10).await.unwrap();
    let roles: Vec<_> = page.members.iter().map(|m| (m.user.as_str(), m.role)).collect();
    assert_eq!(
        roles,
        [
            ("alice", Role::Admin),
            ("bob", Role::Member),
            ("carol", Role::Member),
            ("owner", Role::Owner)
        ]
    );
    owner.revoke_admin("mod", "alice").await.unwrap();
    let revoked = next_matching(&mut c[3].1, "carol sees the revocation", |e| match e {
        Event::RoleChanged { user, role, .. } if user == "alice" => Some(*role),
        _ => None,
    })
    .await;
    assert_eq!(revoked, Role::Member);
    assert_eq!(code(alice.mute("mod", "bob", None).await), Some(ErrorCode::Forbidden));
    server.stop().await;
}

#[tokio::test]
async fn admins_and_owner_mute_and_unmute() {
    let server = TestServer::start().await;
    let mut c = room_of_four(&server).await;
    let (owner, alice, bob, carol) =
        (c[0].0.clone(), c[1].0.clone(), c[2].0.clone(), c[3].0.clone());
    owner.grant_admin("mod", "alice").await.unwrap();
    owner.grant_admin("mod", "carol").await.unwrap();

    // Members can do nothing; admins cannot act on the owner or on other admins.
    assert_eq!(code(bob.mute("mod", "carol", None).await), Some(ErrorCode::Forbidden));
    assert_eq!(code(alice.mute("mod", "owner", None).await), Some(ErrorCode::Forbidden));
    assert_eq!(code(alice.mute("mod", "carol", None).await), Some(ErrorCode::Forbidden));
    assert_eq!(code(alice.kick("mod", "carol").await), Some(ErrorCode::Forbidden));
    assert_eq!(code(alice.kick("mod", "owner").await), Some(ErrorCode::Forbidden));

    alice.mute("mod", "bob", Some(Duration::from_secs(600))).await.unwrap();
    let muted = next_matching(&mut c[3].1, "carol sees the mute", |e| match e {
        Event::Muted { room, user, by, seconds } if room == "mod" => {
            Some((user.clone(), by.clone(), *seconds))
        }
        _ => None,
    })
    .await;
    assert_eq!(muted, ("bob".to_string(), "alice".to_string(), Some(600)));
    assert_eq!(code(bob.send("mod", "let me speak").await), Some(ErrorCode::Muted));
    assert_eq!(code(bob.private("mod", "carol", "psst").await), Some(ErrorCode::Muted));

    // A mute survives leaving and rejoining.
    bob.leave("mod").await.unwrap();
    bob.join("mod").await.unwrap();
    assert_eq!(code(bob.send("mod", "now?").await), Some(ErrorCode::Muted));

    owner.unmute("mod", "bob").await.unwrap();
    let unmuted = next_matching(&mut c[3].1, "carol sees the unmute", |e| match e {
        Event::Unmuted { user, by, .. } => Some((user.clone(), by.clone())),
        _ => None,
    })
    .await;
    assert_eq!(unmuted, ("bob".to_string(), "owner".to_string()));
    let seq = bob.send("mod", "thanks").await.unwrap();
    assert!(seq >= 1);
    // An owner's timed mute of an admin works too, and members see a muted event with no end.
    owner.mute("mod", "carol", None).await.unwrap();
    assert_eq!(code(carol.send("mod", "hmm").await), Some(ErrorCode::Muted));
    server.stop().await;
}

#[tokio::test]
async fn timed_mutes_end_by_themselves() {
    let server = TestServer::start().await;
    let c = room_of_four(&server).await;
    let (owner, bob) = (c[0].0.clone(), c[2].0.clone());
    owner.mute("mod", "bob", Some(Duration::from_secs(1))).await.unwrap();
    assert_eq!(code(bob.send("mod", "muted").await), Some(ErrorCode::Muted));
    // Bounded poll: the mute ends after one second.
    within("the timed mute to end", async {
        loop {
            match bob.send("mod", "free again").await {
                Ok(_) => return,
                Err(e) => assert_eq!(e.code(), Some(ErrorCode::Muted)),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn kicked_members_are_removed_told_and_banned_for_a_while() {
    let config = ServerConfig { ban_duration: Duration::from_secs(1), ..Default::default() };
    let server = TestServer::start_with(config).await;
    let mut c = room_of_four(&server).await;
    let (owner, bob) = (c[0].0.clone(), c[2].0.clone());
    owner.grant_admin("mod", "alice").await.unwrap();
    c[1].0.kick("mod", "bob").await.unwrap();

    // Bob is told, then his membership ends.
    let kicked = next_matching(&mut c[2].1, "bob's kicked event", |e| match e {
        Event::Kicked { room, user, by } if room == "mod" => Some((user.clone(), by.clone())),
        _ => None,
    })
    .await;
    assert_eq!(kicked, ("bob".to_string(), "alice".to_string()));
    let reason = next_matching(&mut c[2].1, "bob's left event", |e| match e {
        Event::Left { room, reason } if room == "mod" => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::Kicked);
    // The room is told.
    next_matching(&mut c[3].1, "carol sees the kick", |e| {
        matches!(e, Event::Kicked { user, .. } if user == "bob").then_some(())
    })
    .await;
    assert_eq!(owner.member_count("mod").await.unwrap(), 3);
    assert_eq!(code(bob.send("mod", "still here?").await), Some(ErrorCode::NotAMember));
    assert_eq!(code(bob.join("mod").await), Some(ErrorCode::Banned));
    // The ban ends after its configured time (bounded poll).
    within("the ban to end", async {
        loop {
            match bob.join("mod").await {
                Ok(joined) => return assert_eq!(joined.role, Role::Member),
                Err(e) => assert_eq!(e.code(), Some(ErrorCode::Banned)),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    server.stop().await;
}
