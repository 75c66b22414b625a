//! The proxy between real UDP sockets on loopback, with a plain echo server upstream.
//!
//! Tests wait for events (a reply, a counter moving) with bounded timeouts; they sleep only
//! where time must pass by design (a timed blackout, a scheduled rebind).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chatroom_netsim::model::{Direction, Impairment, LinkConfig, Target};
use chatroom_netsim::proxy::{Proxy, ProxyConfig, ProxyHandle, ProxyStats};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const WAIT: Duration = Duration::from_secs(5);
const SEED: u64 = 7;

/// An echo server on 127.0.0.1:0 that reports each sender's address.
struct Echo {
    socket: Arc<UdpSocket>,
    addr: SocketAddr,
    senders: mpsc::UnboundedReceiver<SocketAddr>,
}

async fn echo_server() -> Echo {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind echo"));
    let addr = socket.local_addr().expect("echo address");
    let (report, senders) = mpsc::unbounded_channel();
    let echo = socket.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((len, from)) = echo.recv_from(&mut buf).await {
            let _ = report.send(from);
            let _ = echo.send_to(&buf[..len], from).await;
        }
    });
    Echo { socket, addr, senders }
}

async fn start(echo: &Echo, link: LinkConfig) -> ProxyHandle {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let config = ProxyConfig::new(listen, echo.addr).with_link(link).with_seed(SEED);
    Proxy::start(config).await.expect("proxy starts")
}

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("bind client")
}

async fn recv(socket: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 65_535];
    let (len, _) = timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("a datagram arrives in time")
        .expect("receive");
    buf.truncate(len);
    buf
}

async fn round_trip(socket: &UdpSocket, proxy: &ProxyHandle, payload: &[u8]) -> Vec<u8> {
    socket.send_to(payload, proxy.local_addr()).await.expect("send");
    recv(socket).await
}

async fn next_sender(echo: &mut Echo) -> SocketAddr {
    timeout(WAIT, echo.senders.recv()).await.expect("the echo server hears").expect("echo runs")
}

/// Waits until the proxy's counters satisfy `done`, polling them; panics after [`WAIT`].
async fn wait_for_stats(proxy: &ProxyHandle, what: &str, done: impl Fn(&ProxyStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = proxy.stats();
        if done(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} (seed {SEED}): {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn packets_pass_both_ways() {
    let echo = echo_server().await;
    let proxy = start(&echo, LinkConfig::default()).await;
    let socket = client().await;
    for i in 0..20u8 {
        let payload = vec![i; 100 + usize::from(i)];
        assert_eq!(round_trip(&socket, &proxy, &payload).await, payload);
    }
    let stats = proxy.stats();
    assert_eq!((stats.up.passed, stats.down.passed), (20, 20));
    assert_eq!(stats.mappings, 1);
    let mappings = proxy.mappings();
    assert_eq!(mappings[0].client, socket.local_addr().expect("address"));
    proxy.shutdown().await;
}

#[tokio::test]
async fn loss_and_duplication_counters_move() {
    let echo = echo_server().await;
    let link = LinkConfig {
        up: Impairment { loss: 0.3, ..Impairment::default() },
        down: Impairment { duplicate: 0.5, ..Impairment::default() },
        ..LinkConfig::default()
    };
    let proxy = start(&echo, link).await;
    let socket = client().await;
    for i in 0..200u32 {
        socket.send_to(&i.to_be_bytes(), proxy.local_addr()).await.expect("send");
    }
    wait_for_stats(&proxy, "every packet relayed", |s| {
        s.up.packets_in == 200 && s.down.packets_in == s.up.passed && s.in_flight == 0
    })
    .await;
    let stats = proxy.stats();
    assert!(stats.up.dropped_random > 0 && stats.up.passed > 0, "{stats:#?}");
    assert!(stats.down.duplicated > 0, "{stats:#?}");
    let expected = stats.down.passed + stats.down.duplicated;
    for _ in 0..expected {
        recv(&socket).await;
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_blackout_drops_then_the_link_recovers() {
    let echo = echo_server().await;
    let proxy = start(&echo, LinkConfig::default()).await;
    let socket = client().await;

    proxy.set_down(true);
    socket.send_to(b"lost", proxy.local_addr()).await.expect("send");
    wait_for_stats(&proxy, "a blackout drop", |s| s.up.dropped_blackout == 1).await;
    proxy.set_down(false);
    // The first datagram back is the second one sent: the first was dropped.
    assert_eq!(round_trip(&socket, &proxy, b"back").await, b"back");

    let blackout = Duration::from_millis(300);
    let started = Instant::now();
    proxy.blackout_now(blackout);
    socket.send_to(b"lost too", proxy.local_addr()).await.expect("send");
    wait_for_stats(&proxy, "a timed blackout drop", |s| s.up.dropped_blackout == 2).await;
    // Time must pass here by design: the blackout ends on its own.
    tokio::time::sleep_until(started + blackout + Duration::from_millis(20)).await;
    assert_eq!(round_trip(&socket, &proxy, b"after").await, b"after");
    assert_eq!(proxy.stats().up.passed, 2);
    proxy.shutdown().await;
}

#[tokio::test]
async fn rebind_moves_the_client_and_kills_the_old_mapping() {
    let mut echo = echo_server().await;
    let proxy = start(&echo, LinkConfig::default()).await;
    let socket = client().await;

    assert_eq!(round_trip(&socket, &proxy, b"a").await, b"a");
    let before = next_sender(&mut echo).await;
    assert_eq!(proxy.rebind_now().expect("rebind"), 1);
    assert_eq!(round_trip(&socket, &proxy, b"b").await, b"b");
    let after = next_sender(&mut echo).await;
    assert_ne!(before, after, "the server sees a new source address");
    assert_eq!(after.ip(), before.ip(), "a port rebind keeps the address");
    assert_eq!(proxy.mappings()[0].upstream_local, after);

    // Strict NAT: what the server sends to the old mapping never reaches the client.
    echo.socket.send_to(b"late", before).await.expect("send");
    wait_for_stats(&proxy, "a stale-mapping drop", |s| s.stale_mapping_drops == 1).await;
    echo.socket.send_to(b"fresh", after).await.expect("send");
    assert_eq!(recv(&socket).await, b"fresh", "the late datagram was dropped");

    // Only the server may answer through a mapping.
    let stranger = client().await;
    stranger.send_to(b"spoof", after).await.expect("send");
    wait_for_stats(&proxy, "a foreign drop", |s| s.foreign_drops == 1).await;
    assert_eq!(proxy.stats().rebinds, 1);
    proxy.shutdown().await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_address_rebind_alternates_between_addresses() {
    // Linux routes all of 127.0.0.0/8 to loopback, so 127.0.0.2 needs no set-up.
    let extra = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut echo = echo_server().await;
    let mut link = LinkConfig::default();
    link.timeline.rebind_address = Some(extra);
    let proxy = start(&echo, link).await;
    let socket = client().await;

    round_trip(&socket, &proxy, b"a").await;
    assert_eq!(next_sender(&mut echo).await.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    proxy.rebind_now().expect("rebind");
    assert_eq!(round_trip(&socket, &proxy, b"b").await, b"b");
    assert_eq!(next_sender(&mut echo).await.ip(), extra);
    proxy.rebind_now().expect("rebind");
    assert_eq!(round_trip(&socket, &proxy, b"c").await, b"c");
    assert_eq!(next_sender(&mut echo).await.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    proxy.shutdown().await;
}

#[tokio::test]
async fn scheduled_rebinds_fire_on_their_own() {
    let mut echo = echo_server().await;
    let mut link = LinkConfig::default();
    link.timeline.rebind_every = Some(Duration::from_millis(200));
    let proxy = start(&echo, link).await;
    let socket = client().await;

    round_trip(&socket, &proxy, b"a").await;
    let before = next_sender(&mut echo).await;
    // Time must pass by design: the rebind is on the timeline.
    wait_for_stats(&proxy, "a scheduled rebind", |s| s.rebinds >= 1).await;
    round_trip(&socket, &proxy, b"b").await;
    assert_ne!(next_sender(&mut echo).await, before);
    proxy.shutdown().await;
}

#[tokio::test]
async fn the_delay_is_applied_and_order_kept() {
    let echo = echo_server().await;
    let delay = Duration::from_millis(100);
    let proxy = start(&echo, LinkConfig::default()).await;
    // Changed while the proxy runs, in one direction only.
    proxy
        .set_impairment(Direction::Up, Impairment { delay, ..Impairment::default() })
        .expect("valid");
    assert_eq!(proxy.impairment_now(Direction::Up).delay, delay);
    assert_eq!(proxy.impairment_now(Direction::Down).delay, Duration::ZERO);

    let socket = client().await;
    let sent = Instant::now();
    for i in 0..20u8 {
        socket.send_to(&[i], proxy.local_addr()).await.expect("send");
    }
    for i in 0..20u8 {
        assert_eq!(recv(&socket).await, [i], "a fixed delay keeps the order");
    }
    assert!(sent.elapsed() >= delay, "at least the configured delay");

    proxy.set_impairment(Target::Both, Impairment::default()).expect("valid");
    assert_eq!(proxy.impairment_now(Direction::Up), Impairment::default());
    proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_the_socket_and_refuses_requests() {
    let echo = echo_server().await;
    let proxy = start(&echo, LinkConfig::default()).await;
    let addr = proxy.local_addr();
    let other = proxy.clone();
    proxy.shutdown().await;
    UdpSocket::bind(addr).await.expect("the port is free again");
    assert!(other.rebind_now().is_err());
}

#[tokio::test]
async fn an_invalid_configuration_is_refused() {
    let echo = echo_server().await;
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let link = LinkConfig::symmetric(Impairment { loss: 1.5, ..Impairment::default() });
    let result = Proxy::start(ProxyConfig::new(listen, echo.addr).with_link(link)).await;
    assert!(result.is_err());
    let mut link = LinkConfig::default();
    link.timeline.rebind_address = Some("::1".parse().expect("address"));
    let result = Proxy::start(ProxyConfig::new(listen, echo.addr).with_link(link)).await;
    assert!(result.is_err(), "an IPv6 rebind address cannot reach an IPv4 server");
}
