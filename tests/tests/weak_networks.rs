//! Weak networks, through netsim with fixed seeds: loss, blackouts shorter and longer than the
//! idle timeout and the resume window, NAT rebinding, and a bandwidth-starved receiver. Every
//! test prints its seed when it fails.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chatroom_client::{Client, ClientBuilder, Event, Events, Priority, Role, SendOptions};
use chatroom_netsim::model::{Impairment, LinkConfig};
use chatroom_netsim::proxy::{Proxy, ProxyConfig, ProxyHandle};
use chatroom_server::ServerConfig;
use chatroom_tests::{TestServer, next_matching};

/// How long a weak-network test may wait for something that must happen eventually.
const PATIENCE: Duration = Duration::from_secs(60);

async fn patiently<T>(what: &str, seed: u64, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("seed {seed}: timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// A server with short, test-sized timeouts and limits out of the way.
fn server_config(idle: Duration, resume_window: Duration) -> ServerConfig {
    ServerConfig {
        idle_timeout: idle,
        keep_alive: idle / 4,
        resume_window,
        message_rate: 1e6,
        message_burst: 1e6,
        room_message_rate: 1e6,
        room_message_burst: 1e6,
        ..ServerConfig::default()
    }
}

async fn proxy_with(server: &TestServer, link: LinkConfig, seed: u64) -> ProxyHandle {
    let config = ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), server.addr)
        .with_link(link)
        .with_seed(seed);
    Proxy::start(config).await.expect("start the netsim proxy")
}

/// A client of `server` through `proxy`, with timeouts matching the server's.
fn weak_client(
    server: &TestServer,
    proxy: &ProxyHandle,
    user: &str,
    idle: Duration,
) -> ClientBuilder {
    server
        .client_via(proxy.local_addr(), user)
        .idle_timeout(idle)
        .keep_alive(idle / 4)
        .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500))
}

/// What one receiver saw in one room.
#[derive(Debug, Default)]
struct Seen {
    seqs: Vec<u64>,
    gaps: Vec<(u64, u64)>,
    reconnects: usize,
    resumed: Option<String>,
    new_session: bool,
}

impl Seen {
    /// Reads events until a message with seq `last` (or a gap covering it) arrived.
    async fn until(&mut self, events: &mut Events, room: &str, last: u64, seed: u64) {
        patiently(&format!("seq {last} in {room}"), seed, async {
            while self.seqs.last().copied().max(self.gaps.last().map(|g| g.1)) < Some(last) {
                match events.next().await.expect("events go on") {
                    Event::Message { room: r, message } if r == room => self.seqs.push(message.seq),
                    Event::Gap { room: r, from, to } if r == room => self.gaps.push((from, to)),
                    Event::Reconnecting { .. } => self.reconnects += 1,
                    Event::Resumed { session_id, .. } => self.resumed = Some(session_id),
                    Event::NewSession { .. } => self.new_session = true,
                    Event::Disconnected { reason, .. } => {
                        panic!("seed {seed}: disconnected: {reason}")
                    }
                    _ => {}
                }
            }
        })
        .await;
    }

    /// Every seq of `range` exactly once, in order, as a message or inside a gap.
    fn assert_accounts_for(&self, range: std::ops::RangeInclusive<u64>, seed: u64) {
        let mut covered: Vec<u64> = self.seqs.clone();
        for &(from, to) in &self.gaps {
            covered.extend(from..=to);
        }
        covered.sort_unstable();
        let expected: Vec<u64> = range.collect();
        assert_eq!(
            covered, expected,
            "seed {seed}: every seq exactly once (messages {:?}, gaps {:?})",
            self.seqs, self.gaps
        );
        assert!(
            self.seqs.windows(2).all(|w| w[0] < w[1]),
            "seed {seed}: in order: {:?}",
            self.seqs
        );
    }
}

async fn room_with(owner: &Client, room: &str) {
    owner.create_room(Some(room)).await.unwrap();
    owner.join(room).await.unwrap();
}

#[tokio::test]
async fn twenty_percent_loss_both_ways_loses_nothing() {
    const SEED: u64 = 20;
    let idle = Duration::from_secs(10);
    // A handshake needs whole flights of packets through 20 % loss, and its retransmissions
    // back off: one in a few dozen takes longer than the default 10 s connect timeout, or than
    // the server's 10 s wait for its Hello (the server then closes it during the handshake).
    // This test is about what happens once connected.
    let connect_timeout = Duration::from_secs(40);
    let config = ServerConfig {
        handshake_timeout: connect_timeout,
        ..server_config(idle, Duration::from_secs(120))
    };
    let server = TestServer::start_with(config).await;
    let link = LinkConfig::symmetric(Impairment { loss: 0.2, ..Impairment::default() });
    let proxy = proxy_with(&server, link, SEED).await;
    let (host, _host_events) = server.connect("host").await;
    room_with(&host, "lossy").await;

    let mut senders = Vec::new();
    for i in 0..5 {
        let (client, events) = patiently(
            "a sender to connect",
            SEED,
            weak_client(&server, &proxy, &format!("s{i}"), idle)
                .connect_timeout(connect_timeout)
                .connect(),
        )
        .await
        .unwrap_or_else(|e| panic!("seed {SEED}: connect: {e}"));
        client.join("lossy").await.unwrap();
        senders.push((client, events));
    }
    let mut receivers = Vec::new();
    for i in 0..20 {
        let (client, events) = patiently(
            "a receiver to connect",
            SEED,
            weak_client(&server, &proxy, &format!("r{i}"), idle)
                .connect_timeout(connect_timeout)
                .connect(),
        )
        .await
        .unwrap_or_else(|e| panic!("seed {SEED}: connect: {e}"));
        let joined = client.join("lossy").await.unwrap();
        receivers.push((client, events, joined.next_seq));
    }
    // 30 s of chat: each sender two messages a second.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, _) in &senders {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            for n in 0..60 {
                tick.tick().await;
                // A send that fails while reconnecting may or may not have been accepted; the
                // receivers' check below counts on the room's sequence either way.
                let _ = client.send("lossy", &format!("msg {n}")).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = host.send("lossy", "the end").await.unwrap();
    for (client, mut events, first) in receivers {
        let mut seen = Seen::default();
        seen.until(&mut events, "lossy", last, SEED).await;
        assert!(seen.gaps.is_empty(), "seed {SEED}: {} got gaps {:?}", client.user(), seen.gaps);
        seen.assert_accounts_for(first..=last, SEED);
    }
    let stats = proxy.stats();
    eprintln!("seed {SEED}: 30 s at 20 % loss took {:?}; proxy {stats:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn a_blackout_shorter_than_the_idle_timeout_needs_no_reconnect() {
    const SEED: u64 = 1;
    let idle = Duration::from_secs(10);
    let server = TestServer::start_with(server_config(idle, Duration::from_secs(120))).await;
    let proxy = proxy_with(&server, LinkConfig::default(), SEED).await;
    let (host, _h) = server.connect("host").await;
    room_with(&host, "tunnel").await;
    let (rider, mut events) = weak_client(&server, &proxy, "rider", idle).connect().await.unwrap();
    let first = rider.join("tunnel").await.unwrap().next_seq;
    host.send("tunnel", "before").await.unwrap();

    let outage = Duration::from_secs(3);
    proxy.blackout_now(outage);
    let restored = Instant::now() + outage;
    let mut during = 0;
    for i in 0..10 {
        host.send("tunnel", &format!("during {i}")).await.unwrap();
        during += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let last = host.send("tunnel", "after").await.unwrap();
    assert_eq!(during, 10);

    let mut seen = Seen::default();
    seen.until(&mut events, "tunnel", first, SEED).await;
    seen.until(&mut events, "tunnel", first + 1, SEED).await;
    let recovered = Instant::now().saturating_duration_since(restored);
    seen.until(&mut events, "tunnel", last, SEED).await;
    seen.assert_accounts_for(first..=last, SEED);
    assert!(seen.gaps.is_empty() && seen.reconnects == 0, "seed {SEED}: {seen:?}");
    eprintln!("seed {SEED}: first delivery {recovered:?} after the link came back");
    // Behaviour, not speed: a generous bound that QUIC's probe back-off alone would exceed.
    assert!(recovered < Duration::from_secs(3), "seed {SEED}: recovery took {recovered:?}");
    server.stop().await;
}

/// The `subway` scenario's hard part: a rider who keeps talking goes through its tunnels of 3,
/// 2, 10 and 3 s, with 3, 2 and 2 s of signal between them. Everything sent during a tunnel
/// stays in flight and the outage collapses QUIC's congestion window: with a plain window the
/// rider's own packets could not tell the server the path was back, both ends waited for
/// their backed-off probe timers, and the rider heard nothing for many seconds.
#[tokio::test]
async fn back_to_back_tunnels_with_a_talking_rider_recover_at_once() {
    const SEED: u64 = 7;
    let idle = Duration::from_secs(30);
    let server = TestServer::start_with(server_config(idle, Duration::from_secs(120))).await;
    let train = Impairment {
        delay: Duration::from_millis(30),
        jitter: Duration::from_millis(5),
        loss: 0.01,
        ..Impairment::default()
    };
    let link = LinkConfig { up: train, down: train, ..LinkConfig::default() };
    let proxy = proxy_with(&server, link, SEED).await;
    let (host, mut host_events) = server.connect("host").await;
    room_with(&host, "train").await;
    let (rider, mut events) = weak_client(&server, &proxy, "rider", idle).connect().await.unwrap();
    let first = rider.join("train").await.unwrap().next_seq;

    // What the rider receives, and when.
    let (arrivals_tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if matches!(
                event,
                Event::Message { .. } | Event::Gap { .. } | Event::Reconnecting { .. }
            ) && arrivals_tx.send((Instant::now(), event)).is_err()
            {
                break;
            }
        }
    });
    // Both talk four times a second; the rider's sends are not awaited one by one, as an
    // app's would not be.
    let talk = |client: Client, name: &'static str, count: usize| {
        tokio::spawn(async move {
            let mut sends = tokio::task::JoinSet::new();
            for i in 0..count {
                let client = client.clone();
                let text = format!("{name} {i} {}", "-".repeat(300));
                sends.spawn(async move { (Instant::now(), client.send("train", &text).await) });
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let mut seqs = Vec::new();
            while let Some(sent) = sends.join_next().await {
                let (at, seq) = sent.expect("send task");
                seqs.push((seq.expect("every send succeeds"), at));
            }
            seqs
        })
    };
    let host_talk = talk(host.clone(), "host", 120);
    let rider_talk = talk(rider.clone(), "rider", 120);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut restored = Vec::new();
    for (outage, signal) in [(3, 3), (2, 2), (10, 2), (3, 0)] {
        proxy.blackout_now(Duration::from_secs(outage));
        tokio::time::sleep(Duration::from_secs(outage)).await;
        restored.push(Instant::now());
        tokio::time::sleep(Duration::from_secs(signal)).await;
    }
    let host_seqs = patiently("the host's sends", SEED, host_talk).await.unwrap();
    let rider_seqs = patiently("the rider's sends", SEED, rider_talk).await.unwrap();
    let last = host_seqs.iter().chain(&rider_seqs).map(|&(seq, _)| seq).max().unwrap();

    let mut seen = Seen::default();
    let mut times = Vec::new();
    patiently(&format!("seq {last} at the rider"), SEED, async {
        while seen.seqs.last() < Some(&last) {
            let (at, event) = arrivals.recv().await.expect("the rider's events go on");
            match event {
                Event::Message { message, .. } => {
                    seen.seqs.push(message.seq);
                    times.push(at);
                }
                Event::Gap { from, to, .. } => seen.gaps.push((from, to)),
                _ => seen.reconnects += 1,
            }
        }
    })
    .await;
    reader.abort();
    seen.assert_accounts_for(first..=last, SEED);
    assert!(seen.gaps.is_empty() && seen.reconnects == 0, "seed {SEED}: {seen:?}");
    // After each tunnel, the rider catches up promptly: everything said before the link came
    // back has arrived soon after. Behaviour, not speed: QUIC's probe back-off alone would
    // take many seconds after the long tunnel.
    let arrived: std::collections::HashMap<u64, Instant> =
        seen.seqs.iter().copied().zip(times.iter().copied()).collect();
    let catch_up: Vec<Duration> = restored
        .iter()
        .map(|&at| {
            host_seqs
                .iter()
                .chain(&rider_seqs)
                .filter(|&&(_, sent)| sent < at)
                .map(|(seq, _)| arrived[seq].saturating_duration_since(at))
                .max()
                .unwrap_or_default()
        })
        .collect();
    eprintln!("seed {SEED}: caught up after each tunnel in {catch_up:?}");
    for time in &catch_up {
        assert!(*time < Duration::from_secs(3), "seed {SEED}: caught up in {catch_up:?}");
    }
    // The host heard every one of the rider's messages too.
    let mut heard = BTreeSet::new();
    while heard.len() < rider_seqs.len() {
        let seq =
            next_matching(
                &mut host_events,
                "the rider's messages at the host",
                |event| match event {
                    Event::Message { message, .. } if message.from == "rider" => Some(message.seq),
                    _ => None,
                },
            )
            .await;
        heard.insert(seq);
    }
    assert_eq!(heard, rider_seqs.iter().map(|&(seq, _)| seq).collect(), "seed {SEED}");
    server.stop().await;
}

#[tokio::test]
async fn a_blackout_longer_than_the_idle_timeout_resumes_the_same_session() {
    const SEED: u64 = 2;
    let idle = Duration::from_secs(2);
    let server = TestServer::start_with(server_config(idle, Duration::from_secs(60))).await;
    let proxy = proxy_with(&server, LinkConfig::default(), SEED).await;
    let (host, mut host_events) = server.connect("host").await;
    room_with(&host, "lift").await;
    let (rider, mut events) = weak_client(&server, &proxy, "rider", idle).connect().await.unwrap();
    let first = rider.join("lift").await.unwrap().next_seq;
    let session = rider.session_id();
    host.grant_admin("lift", "rider").await.unwrap();
    let mood = [("mood".to_string(), "going up".to_string())].into_iter().collect();
    rider.set_attributes("lift", mood, vec![]).await.unwrap();
    // Everything the host has seen so far (the rider's join among it) is before this barrier.
    let setup_done = host.send("lift", "setup done").await.unwrap();
    next_matching(&mut host_events, "the setup barrier", |e| {
        matches!(e, Event::Message { message, .. } if message.seq == setup_done).then_some(())
    })
    .await;

    proxy.blackout_now(Duration::from_secs(5));
    for i in 0..10 {
        host.send("lift", &format!("while away {i}")).await.unwrap();
    }
    let mut seen = Seen::default();
    let resumed = patiently("the resume", SEED, async {
        loop {
            match events.next().await.expect("events go on") {
                Event::Message { message, .. } => seen.seqs.push(message.seq),
                Event::Resumed { session_id, .. } => return session_id,
                Event::NewSession { reason, .. } => panic!("seed {SEED}: not resumed: {reason:?}"),
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(resumed, session, "seed {SEED}: the same session");
    let last = host.send("lift", "welcome back").await.unwrap();
    seen.until(&mut events, "lift", last, SEED).await;
    seen.assert_accounts_for(first..=last, SEED);
    assert!(seen.gaps.is_empty(), "seed {SEED}: nothing missed: {:?}", seen.gaps);

    // The room saw no leave, and role and attributes are intact.
    let is_presence = |e: &Event| matches!(e, Event::MemberLeft { user, .. } | Event::MemberJoined { user, .. } if user == "rider");
    let barrier = host.send("lift", "barrier").await.unwrap();
    chatroom_tests::assert_none_before(
        &mut host_events,
        "no leave/join churn",
        is_presence,
        |e| matches!(e, Event::Message { message, .. } if message.seq == barrier),
    )
    .await;
    let page = host.members("lift", None, 10).await.unwrap();
    let rider_info = page.members.iter().find(|m| m.user == "rider").expect("rider is a member");
    assert_eq!(rider_info.role, Role::Admin);
    assert_eq!(rider_info.attributes.get("mood").map(String::as_str), Some("going up"));
    server.stop().await;
}

#[tokio::test]
async fn a_blackout_longer_than_the_resume_window_reports_exactly_the_gap() {
    const SEED: u64 = 3;
    let idle = Duration::from_secs(1);
    let server = TestServer::start_with(server_config(idle, Duration::from_secs(2))).await;
    let proxy = proxy_with(&server, LinkConfig::default(), SEED).await;
    let (host, _h) = server.connect("host").await;
    room_with(&host, "cave").await;
    let (rider, mut events) = weak_client(&server, &proxy, "rider", idle).connect().await.unwrap();
    let first = rider.join("cave").await.unwrap().next_seq;
    let before = host.send("cave", "before").await.unwrap();
    let mut seen = Seen::default();
    seen.until(&mut events, "cave", before, SEED).await;

    proxy.blackout_now(Duration::from_secs(6));
    let mut missed = BTreeSet::new();
    for i in 0..5 {
        missed.insert(host.send("cave", &format!("missed {i}")).await.unwrap());
    }
    let gap = next_matching(&mut events, "the gap report", |e| match e {
        Event::Gap { room, from, to } if room == "cave" => Some((*from, *to)),
        Event::Message { message, .. } => panic!("seed {SEED}: unexpected message {}", message.seq),
        _ => None,
    });
    let gap = patiently("the gap report", SEED, gap).await;
    // The gap starts right after what was received and covers everything sent while away.
    assert_eq!(gap.0, before + 1, "seed {SEED}");
    assert!(missed.iter().all(|s| (gap.0..=gap.1).contains(s)), "seed {SEED}: {gap:?} {missed:?}");
    seen.gaps.push(gap);
    let last = host.send("cave", "back").await.unwrap();
    seen.until(&mut events, "cave", last, SEED).await;
    seen.assert_accounts_for(first..=last, SEED);
    assert_eq!(rider.rooms(), vec!["cave".to_string()], "seed {SEED}: rejoined by itself");
    server.stop().await;
}

#[tokio::test]
async fn nat_rebinding_every_two_seconds_needs_no_reconnect_and_loses_nothing() {
    const SEED: u64 = 4;
    let idle = Duration::from_secs(10);
    let server = TestServer::start_with(server_config(idle, Duration::from_secs(120))).await;
    let mut link = LinkConfig::default();
    link.timeline.rebind_every = Some(Duration::from_secs(2));
    let proxy = proxy_with(&server, link, SEED).await;
    let (host, _h) = server.connect("host").await;
    room_with(&host, "cafe").await;
    let (rider, mut events) = weak_client(&server, &proxy, "rider", idle).connect().await.unwrap();
    let first = rider.join("cafe").await.unwrap().next_seq;
    let mut last = 0;
    for i in 0..50 {
        last = host.send("cafe", &format!("{i}")).await.unwrap();
        // The rider talks too, so that its own packets carry it across each rebinding.
        if i % 5 == 0 {
            last = rider.send("cafe", &format!("rider {i}")).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut seen = Seen::default();
    seen.until(&mut events, "cafe", last, SEED).await;
    seen.assert_accounts_for(first..=last, SEED);
    assert!(seen.gaps.is_empty() && seen.reconnects == 0, "seed {SEED}: {seen:?}");
    let rebinds = proxy.stats();
    eprintln!("seed {SEED}: proxy after rebinding: {rebinds:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_bandwidth_starved_receiver_sheds_low_priority_without_slowing_the_room() {
    const SEED: u64 = 5;
    let idle = Duration::from_secs(10);
    let config = ServerConfig {
        outbound_queue_bytes: 64 * 1024,
        connection_send_window: 32 * 1024,
        ..server_config(idle, Duration::from_secs(120))
    };
    let server = TestServer::start_with(config).await;
    // 64 kbit/s towards the starved receiver: 8 KB/s.
    let mut link = LinkConfig::default();
    link.down.rate_kbps = Some(64);
    let proxy = proxy_with(&server, link, SEED).await;
    let (host, _h) = server.connect("host").await;
    room_with(&host, "stadium").await;
    let mut fans = Vec::new();
    for i in 0..3 {
        let (client, events) = server.connect(&format!("fan{i}")).await;
        let first = client.join("stadium").await.unwrap().next_seq;
        fans.push((client, events, first));
    }
    let (starved, mut starved_events) =
        weak_client(&server, &proxy, "starved", idle).connect().await.unwrap();
    let starved_first = starved.join("stadium").await.unwrap().next_seq;

    // 300 messages of 1 KiB in about three seconds: 100 KB/s, twelve times the starved link.
    let text = "x".repeat(1024);
    let mut priorities = std::collections::HashMap::new();
    let mut last = 0;
    for i in 0..300u64 {
        let priority = match i % 4 {
            0 | 2 => Priority::Low,
            1 => Priority::Normal,
            _ => Priority::High,
        };
        let options = SendOptions { kind: None, priority };
        last = host.send_with("stadium", &text, options).await.unwrap();
        priorities.insert(last, priority);
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The other members get everything, while the starved one is still far behind.
    let others_done = Instant::now();
    for (_client, events, first) in &mut fans {
        let mut seen = Seen::default();
        seen.until(events, "stadium", last, SEED).await;
        seen.assert_accounts_for(*first..=last, SEED);
        assert!(seen.gaps.is_empty(), "seed {SEED}: well-connected members miss nothing");
    }
    let others_took = others_done.elapsed();

    let mut seen = Seen::default();
    seen.until(&mut starved_events, "stadium", last, SEED).await;
    seen.assert_accounts_for(starved_first..=last, SEED);
    assert!(!seen.gaps.is_empty(), "seed {SEED}: the starved receiver was told what it missed");
    let shed: Vec<Priority> = seen
        .gaps
        .iter()
        .flat_map(|&(f, t)| f..=t)
        .filter_map(|s| priorities.get(&s).copied())
        .collect();
    assert!(!shed.contains(&Priority::High), "seed {SEED}: high priority is never shed");
    let low = shed.iter().filter(|p| **p == Priority::Low).count();
    let normal = shed.len() - low;
    assert!(
        low >= normal,
        "seed {SEED}: low priority goes first ({low} low, {normal} normal shed)"
    );
    eprintln!(
        "seed {SEED}: others done {others_took:?} after the last send; starved shed {low} low, {normal} normal"
    );
    // Behaviour, not speed: the others' deliveries did not wait for the starved link.
    assert!(others_took < Duration::from_secs(5), "seed {SEED}: others took {others_took:?}");
    drop(starved);
    server.stop().await;
}
