//! Custom attributes, member lists, and presence events (with the switch to member counts in
//! large rooms).

use std::time::Duration;

use chatroom_client::{Attributes, ErrorCode, Event, Role};
use chatroom_server::ServerConfig;
use chatroom_tests::{TestServer, next_matching};

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn attributes_are_set_listed_limited_and_cleared_on_leave() {
    let server = TestServer::start().await;
    let (owner, _owner_events) = server.connect("owner").await;
    let (alice, _alice_events) = server.connect("alice").await;
    let (bob, mut bob_events) = server.connect("bob").await;
    owner.create_room(Some("attrs")).await.unwrap();
    for c in [&owner, &alice, &bob] {
        c.join("attrs").await.unwrap();
    }

    let set = attrs(&[("avatar", "https://cdn.example.com/a.png"), ("mood", "happy")]);
    assert_eq!(alice.set_attributes("attrs", set.clone(), vec![]).await.unwrap(), set);
    let (user, announced) =
        next_matching(&mut bob_events, "bob sees alice's attributes", |e| match e {
            Event::AttributesChanged { room, user, attributes } if room == "attrs" => {
                Some((user.clone(), attributes.clone()))
            }
            _ => None,
        })
        .await;
    assert_eq!((user.as_str(), &announced), ("alice", &set));
    assert_eq!(bob.attributes("attrs", "alice").await.unwrap(), set);
    let after = alice
        .set_attributes("attrs", attrs(&[("mood", "busy")]), vec!["avatar".into()])
        .await
        .unwrap();
    assert_eq!(after, attrs(&[("mood", "busy")]));

    // Limits: 32 keys, 1 KiB in all.
    let many: Attributes = (0..33).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let err = alice.set_attributes("attrs", many, vec![]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TooLarge));
    let big = attrs(&[("bio", &"x".repeat(1100))]);
    assert_eq!(
        alice.set_attributes("attrs", big, vec![]).await.unwrap_err().code(),
        Some(ErrorCode::TooLarge)
    );
    assert_eq!(
        bob.attributes("attrs", "alice").await.unwrap(),
        attrs(&[("mood", "busy")]),
        "refused sets change nothing"
    );

    // Member count and the member list with roles and attributes.
    owner.grant_admin("attrs", "alice").await.unwrap();
    assert_eq!(bob.member_count("attrs").await.unwrap(), 3);
    let page = bob.members("attrs", None, 10).await.unwrap();
    assert_eq!(page.count, 3);
    let listed: Vec<_> =
        page.members.iter().map(|m| (m.user.as_str(), m.role, m.attributes.clone())).collect();
    assert_eq!(
        listed,
        [
            ("alice", Role::Admin, attrs(&[("mood", "busy")])),
            ("bob", Role::Member, Attributes::new()),
            ("owner", Role::Owner, Attributes::new()),
        ]
    );

    // Leaving clears role and attributes; a rejoin starts fresh.
    alice.leave("attrs").await.unwrap();
    assert_eq!(
        bob.attributes("attrs", "alice").await.unwrap_err().code(),
        Some(ErrorCode::NotAMember)
    );
    assert_eq!(alice.join("attrs").await.unwrap().role, Role::Member);
    assert_eq!(bob.attributes("attrs", "alice").await.unwrap(), Attributes::new());
    server.stop().await;
}

#[tokio::test]
async fn member_list_pages() {
    let server = TestServer::start().await;
    let (owner, _events) = server.connect("owner").await;
    owner.create_room(Some("big")).await.unwrap();
    owner.join("big").await.unwrap();
    let mut clients = Vec::new();
    for i in 0..7 {
        let (c, e) = server.connect(&format!("user{i}")).await;
        c.join("big").await.unwrap();
        clients.push((c, e));
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = owner.members("big", after.as_deref(), 3).await.unwrap();
        assert_eq!(page.count, 8);
        assert!(page.members.len() <= 3);
        seen.extend(page.members.iter().map(|m| m.user.clone()));
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    // Ordered by user id, every member exactly once.
    let mut expected: Vec<String> = vec!["owner".into()];
    expected.extend((0..7).map(|i| format!("user{i}")));
    assert_eq!(seen, expected);
    server.stop().await;
}

#[tokio::test]
async fn presence_events_below_the_limit_member_counts_above() {
    let config = ServerConfig {
        presence_event_limit: 3,
        member_count_interval: Duration::from_millis(100),
        maintenance_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    let (owner, mut owner_events) = server.connect("owner").await;
    owner.create_room(Some("crowd")).await.unwrap();
    owner.join("crowd").await.unwrap();

    let (a, _a_events) = server.connect("a").await;
    a.join("crowd").await.unwrap();
    let joined = next_matching(&mut owner_events, "a's join event", |e| match e {
        Event::MemberJoined { room, user, role } if room == "crowd" => Some((user.clone(), *role)),
        _ => None,
    })
    .await;
    assert_eq!(joined, ("a".to_string(), Role::Member));

    // The third member makes the room "large": no more join events, a member count instead.
    let (b, _b_events) = server.connect("b").await;
    b.join("crowd").await.unwrap();
    let count = next_matching(&mut owner_events, "a member count", |e| match e {
        Event::MemberJoined { user, .. } => {
            panic!("unexpected join event for {user} in a large room")
        }
        Event::MemberCount { room, count } if room == "crowd" => Some(*count),
        _ => None,
    })
    .await;
    assert_eq!(count, 3);

    // Back below the limit, presence events resume.
    b.leave("crowd").await.unwrap();
    let left = next_matching(&mut owner_events, "b's leave event", |e| match e {
        Event::MemberLeft { room, user } if room == "crowd" => Some(user.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, "b");
    server.stop().await;
}
