//! Chat traffic through the proxy, one impairment knob at a time: the real server in-process,
//! two real clients behind one proxy (so both directions are impaired), and a check of what
//! arrives: every acknowledged message, once, in sequence order, with its exact text.
//!
//! The clients connect and join over a perfect link; the knob is turned on before the
//! messages are sent, so each test looks at the chat traffic under that knob alone. Seeds are
//! fixed and printed with any failure; `RUST_LOG=chatroom_netsim=trace` shows every packet's
//! fate.

use std::net::SocketAddr;
use std::time::Duration;

use chatroom_client::{Client, ClientBuilder, Event, Events};
use chatroom_netsim::model::{Impairment, LinkConfig, Target};
use chatroom_netsim::proxy::{Proxy, ProxyConfig, ProxyHandle};
use chatroom_server::{Server, ServerConfig, ShutdownHandle, TlsIdentity};
use tokio::task::JoinSet;

/// How long a test waits for all messages: long enough for QUIC to recover from any knob
/// here on a loaded machine; it bounds a hang, it does not measure speed.
const WAIT: Duration = Duration::from_secs(30);

/// Messages each test sends.
const MESSAGES: usize = 30;

struct Setup {
    seed: u64,
    proxy: ProxyHandle,
    alice: (Client, Events),
    bob: (Client, Events),
    stop: ShutdownHandle,
}

/// A server, a proxy with a perfect link in front of it, and alice and bob connected through
/// the proxy, both in room `lobby`.
async fn setup(seed: u64) -> Setup {
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        auto_create_rooms: true,
        ..ServerConfig::default()
    };
    let identity = TlsIdentity::self_signed().expect("certificate");
    let cert = identity.cert_chain[0].clone();
    let server = Server::bind(config, &identity).expect("bind server");
    let server_addr = server.local_addr();
    let stop = server.shutdown_handle();
    tokio::spawn(server.run());
    let proxy_config = ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), server_addr)
        .with_link(LinkConfig::default())
        .with_seed(seed);
    let proxy = Proxy::start(proxy_config).await.expect("start proxy");
    let connect = |user: &'static str| {
        let builder =
            ClientBuilder::new(proxy.local_addr().to_string()).ca_der(cert.clone()).user(user);
        async move {
            let (client, events) = builder.connect().await.expect("connect");
            client.join("lobby").await.expect("join");
            (client, events)
        }
    };
    let alice = connect("alice").await;
    let bob = connect("bob").await;
    Setup { seed, proxy, alice, bob, stop }
}

/// What one client received in the room.
#[derive(Debug, Default)]
struct Received {
    messages: Vec<(u64, String)>,
    other: Vec<Event>,
}

/// Reads `events` until `n` messages of `lobby` arrived, or a connection-level event or the
/// timeout ends the wait.
async fn receive(events: &mut Events, n: usize) -> Received {
    let mut received = Received::default();
    let _ = tokio::time::timeout(WAIT, async {
        while received.messages.len() < n {
            match events.next().await {
                Some(Event::Message { room, message }) if room == "lobby" => {
                    received.messages.push((message.seq, message.text));
                }
                Some(Event::MemberJoined { .. } | Event::MemberLeft { .. }) => {}
                Some(other @ Event::Disconnected { .. }) => {
                    received.other.push(other);
                    return;
                }
                Some(other) => received.other.push(other),
                None => return,
            }
        }
    })
    .await;
    received
}

/// Alice sends `count` messages numbered from `first`, all at once; returns (seq, text) of
/// those the server acknowledged, sorted by seq, and how many failed.
async fn send(client: &Client, first: usize, count: usize) -> (Vec<(u64, String)>, usize) {
    let mut sends = JoinSet::new();
    for i in first..first + count {
        let client = client.clone();
        sends.spawn(async move {
            // Long enough to fill a packet or two, so that losses hit message bodies.
            let text = format!("message {i:03} {}", "x".repeat(700 + i));
            client.send("lobby", &text).await.map(|seq| (seq, text))
        });
    }
    let mut acked = Vec::new();
    let mut failed = 0;
    while let Some(result) = sends.join_next().await {
        match result.expect("send task") {
            Ok(pair) => acked.push(pair),
            Err(_) => failed += 1,
        }
    }
    acked.sort();
    (acked, failed)
}

/// Asserts that `who` received exactly `acked`: every message, once, in sequence order, with
/// its text, and that nothing ended its connection.
fn assert_exact(seed: u64, knob: &str, who: &str, acked: &[(u64, String)], got: &Received) {
    let seqs: Vec<u64> = got.messages.iter().map(|(seq, _)| *seq).collect();
    let wanted: Vec<u64> = acked.iter().map(|(seq, _)| *seq).collect();
    assert!(
        got.other.iter().all(|e| !matches!(e, Event::Disconnected { .. } | Event::Gap { .. })),
        "{knob} (seed {seed}): {who} got {:?}",
        got.other
    );
    assert_eq!(seqs, wanted, "{knob} (seed {seed}): {who}'s sequence numbers");
    for ((seq, text), (_, sent)) in got.messages.iter().zip(acked) {
        assert!(
            text == sent,
            "{knob} (seed {seed}): {who}'s message {seq} differs from what was sent"
        );
    }
    if let Some(pair) = wanted.windows(2).find(|w| w[1] != w[0] + 1) {
        panic!("{knob} (seed {seed}): the server's sequence numbers have a hole: {pair:?}");
    }
}

/// Turns `impairment` on both ways, sends, and checks both clients got everything.
async fn knob(name: &str, seed: u64, impairment: Impairment) -> ProxyHandle {
    let mut s = setup(seed).await;
    s.proxy.set_impairment(Target::Both, impairment).expect("valid impairment");
    let (acked, failed) = send(&s.alice.0, 0, MESSAGES).await;
    assert_eq!(failed, 0, "{name} (seed {seed}): sends failed");
    let bob = receive(&mut s.bob.1, MESSAGES).await;
    let alice = receive(&mut s.alice.1, MESSAGES).await;
    assert_exact(s.seed, name, "bob", &acked, &bob);
    assert_exact(s.seed, name, "alice", &acked, &alice);
    s.stop.shutdown();
    s.proxy
}

#[tokio::test]
async fn loss_ten_percent_each_way_loses_nothing() {
    let proxy = knob("loss", 21, Impairment { loss: 0.10, ..Impairment::PERFECT }).await;
    let stats = proxy.stats();
    assert!(stats.up.dropped_random + stats.down.dropped_random > 0, "the knob did nothing");
}

#[tokio::test]
async fn bursty_loss_capped_at_three_loses_nothing() {
    let bursty =
        Impairment { ge_p: 0.05, ge_r: 0.3, max_consecutive_drops: Some(3), ..Impairment::PERFECT };
    let proxy = knob("bursty loss", 22, bursty).await;
    assert!(proxy.stats().down.dropped_burst > 0, "the knob did nothing");
}

#[tokio::test]
async fn delay_and_jitter_keep_order() {
    let delayed = Impairment {
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(30),
        ..Impairment::PERFECT
    };
    knob("delay", 23, delayed).await;
}

#[tokio::test]
async fn duplicated_packets_are_delivered_once() {
    let proxy = knob("duplicate", 24, Impairment { duplicate: 0.25, ..Impairment::PERFECT }).await;
    assert!(proxy.stats().down.duplicated > 0, "the knob did nothing");
}

#[tokio::test]
async fn reordered_packets_are_delivered_in_order() {
    let reordering = Impairment {
        delay: Duration::from_millis(5),
        reorder: 0.25,
        reorder_delay: Some(Duration::from_millis(20)),
        ..Impairment::PERFECT
    };
    let proxy = knob("reorder", 25, reordering).await;
    assert!(proxy.stats().down.reordered > 0, "the knob did nothing");
}

#[tokio::test]
async fn corrupted_packets_are_discarded_and_retransmitted() {
    // QUIC's packet protection rejects a flipped byte, so corruption acts as loss.
    let proxy = knob("corrupt", 26, Impairment { corrupt: 0.05, ..Impairment::PERFECT }).await;
    assert!(proxy.stats().down.corrupted > 0, "the knob did nothing");
}

#[tokio::test]
async fn a_rate_limit_queues_but_loses_nothing() {
    // 200 kbit/s: the 30 messages of ~750 bytes take about a second to go through each way,
    // queueing behind one another.
    let narrow = Impairment { rate_kbps: Some(200), ..Impairment::PERFECT };
    let proxy = knob("rate limit", 27, narrow).await;
    assert!(proxy.stats().down.queued > 0, "the knob did nothing");
}

/// A blackout shorter than the idle timeout (30 s by default): messages sent during it wait
/// and arrive after it, on the same connection.
#[tokio::test]
async fn a_blackout_shorter_than_the_idle_timeout_delays_but_loses_nothing() {
    let seed = 28;
    let mut s = setup(seed).await;
    let (mut acked, failed) = send(&s.alice.0, 0, 10).await;
    assert_eq!(failed, 0, "seed {seed}: sends before the blackout failed");
    s.proxy.blackout_now(Duration::from_secs(2));
    let (during, failed) = send(&s.alice.0, 10, 10).await;
    assert_eq!(failed, 0, "seed {seed}: sends during the blackout failed");
    acked.extend(during);
    let bob = receive(&mut s.bob.1, 20).await;
    let alice = receive(&mut s.alice.1, 20).await;
    assert_exact(seed, "blackout", "bob", &acked, &bob);
    assert_exact(seed, "blackout", "alice", &acked, &alice);
    assert!(s.proxy.stats().up.dropped_blackout > 0, "seed {seed}: nothing was blacked out");
    s.stop.shutdown();
}

/// NAT rebinds mid-conversation, to a new port and then to a new address: QUIC migrates and
/// the conversation goes on without a new connection.
#[tokio::test]
async fn rebinding_the_nat_migrates_the_connection() {
    let seed = 29;
    let mut s = setup(seed).await;
    let (mut acked, _) = send(&s.alice.0, 0, 10).await;
    assert_eq!(s.proxy.rebind_now().expect("rebind"), 2, "seed {seed}: both mappings move");
    let (after_port, _) = send(&s.alice.0, 10, 10).await;
    acked.extend(after_port);
    s.proxy
        .rebind(chatroom_netsim::model::RebindKind::Address("127.0.0.2".parse().unwrap()))
        .expect("rebind to 127.0.0.2");
    let (after_address, _) = send(&s.alice.0, 20, 10).await;
    acked.extend(after_address);
    assert_eq!(acked.len(), 30, "seed {seed}: sends failed across the rebinds");
    let bob = receive(&mut s.bob.1, 30).await;
    let alice = receive(&mut s.alice.1, 30).await;
    assert_exact(seed, "rebind", "bob", &acked, &bob);
    assert_exact(seed, "rebind", "alice", &acked, &alice);
    let mappings = s.proxy.mappings();
    assert!(
        mappings.iter().all(|m| m.upstream_local.ip().to_string() == "127.0.0.2"),
        "seed {seed}: {mappings:?}"
    );
    s.stop.shutdown();
}
