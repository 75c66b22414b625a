//! The `connections` mode: how fast the server takes connections, and what an idle, joined
//! connection costs it in memory.
//!
//! ```text
//! set-up client creates the rooms ─ settle ─ RSS before
//! ramp:  N connections (QUIC + TLS + Hello/Welcome), `concurrency` at a time ─ handshakes/s
//! join:  each joins room i % rooms
//! idle:  wait ─ count connections still up ─ RSS idle ─ (idle − before) / held
//! ```

use std::time::Duration;

use anyhow::bail;
use chatroom_client::Client;
use chatroom_netsim::ledger::Percentiles;
use futures_util::StreamExt as _;
use tokio::time::{Instant, timeout};

use crate::chatroom::ChatroomConnector;
use crate::member::{ErrorCounts, count_error, request_error_kind};
use crate::procfs::ProcWatch;
use crate::report::{ConnectionsReport, round3};
use crate::target::{Prepared, Target};

/// How long one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The shape of the run.
#[derive(Debug, Clone)]
pub struct ConnectionsPlan {
    /// Connections.
    pub clients: usize,
    /// Rooms they join.
    pub rooms: usize,
    /// Connections opened at once.
    pub concurrency: usize,
    /// How long the connections sit idle before memory is read.
    pub idle: Duration,
    /// The ramp gives up after this long.
    pub ramp_timeout: Duration,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// Runs the mode against a prepared chatroom target.
pub async fn run(prepared: &Prepared, plan: &ConnectionsPlan) -> anyhow::Result<ConnectionsReport> {
    let Target::Chatroom { addr, ca, server_name } = &prepared.target else {
        bail!("the connections mode measures the chatroom server only");
    };
    if plan.clients == 0 || plan.rooms == 0 {
        bail!("need clients ≥ 1 and rooms ≥ 1");
    }
    let say = |line: String| {
        if plan.progress {
            eprintln!("{line}");
        }
    };
    let connector =
        ChatroomConnector { addr: *addr, ca: ca.clone(), server_name: server_name.clone() };
    let nonce = format!("{:06x}", std::process::id());
    let rooms: Vec<String> = (0..plan.rooms).map(|r| format!("idle-{nonce}-{r}")).collect();
    let setup = connector.setup(&format!("idle-{nonce}-setup"), &rooms).await?;
    let watch = prepared.watch.clone();
    let bench = ProcWatch::current();
    // Let the set-up connection's allocations settle before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = watch.as_ref().map(ProcWatch::sample);
    let bench_before = bench.sample();

    say(format!("opening {} connections, {} at a time", plan.clients, plan.concurrency));
    let ramp_began = Instant::now();
    let deadline = ramp_began + plan.ramp_timeout;
    let attempts = futures_util::stream::iter(0..plan.clients)
        .map(|index| {
            let connector = connector.clone();
            let user = format!("idle-{nonce}-{index}");
            async move {
                if Instant::now() > deadline {
                    return (
                        index,
                        Err("connect: ramp deadline passed".to_owned()),
                        Duration::ZERO,
                    );
                }
                let began = Instant::now();
                let result = match timeout(CONNECT_TIMEOUT, connector.connect_idle(&user)).await {
                    Ok(result) => result,
                    Err(_) => Err("connect: timed out".to_owned()),
                };
                (index, result, began.elapsed())
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let ramp = ramp_began.elapsed();
    let during_ramp = watch.as_ref().map(ProcWatch::sample);
    let bench_ramp = bench.sample();

    let mut errors = ErrorCounts::new();
    let mut clients: Vec<(usize, Client)> = Vec::new();
    let mut connect_times = Vec::new();
    for (index, result, took) in attempts {
        match result {
            Ok(client) => {
                connect_times.push(took);
                clients.push((index, client));
            }
            Err(kind) => count_error(&mut errors, kind),
        }
    }
    let connected = clients.len();
    let handshakes_per_s = connected as f64 / ramp.as_secs_f64();
    say(format!(
        "  {connected} connected in {:.1}s ({handshakes_per_s:.0}/s); joining",
        ramp.as_secs_f64()
    ));

    let join_began = Instant::now();
    let joins = futures_util::stream::iter(clients.iter())
        .map(|(index, client)| {
            let room = rooms[index % plan.rooms].clone();
            async move {
                match timeout(CONNECT_TIMEOUT, client.join(&room)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("join: {}", request_error_kind(&e))),
                    Err(_) => Err("join: timed out".to_owned()),
                }
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let join_time = join_began.elapsed();
    let mut joined = 0;
    for result in joins {
        match result {
            Ok(()) => joined += 1,
            Err(kind) => count_error(&mut errors, kind),
        }
    }
    say(format!(
        "  {joined} joined in {:.1}s; idle for {:.0}s",
        join_time.as_secs_f64(),
        plan.idle.as_secs_f64()
    ));
    tokio::time::sleep(plan.idle).await;
    let held = clients.iter().filter(|(_, client)| client.is_connected()).count();
    let idle = watch.as_ref().map(ProcWatch::sample);

    let ramp_cpu = before.zip(during_ramp).map(|(b, a)| a.cpu_s - b.cpu_s);
    let per_connection = before
        .zip(idle)
        .and_then(|(b, i)| (held > 0).then(|| (i.rss_kib as f64 - b.rss_kib as f64) / held as f64));
    let report = ConnectionsReport {
        mode: "connections",
        target: "chatroom",
        server: prepared.server_label.clone(),
        clients: plan.clients,
        rooms: plan.rooms,
        concurrency: plan.concurrency,
        connected,
        joined,
        connections_held: held,
        ramp_s: round3(ramp.as_secs_f64()),
        handshakes_per_s: round3(handshakes_per_s),
        connect_ms: Percentiles::of(&connect_times),
        join_s: round3(join_time.as_secs_f64()),
        server_cpu_ramp_s: ramp_cpu.map(round3),
        server_cpu_ms_per_handshake: ramp_cpu
            .filter(|_| connected > 0)
            .map(|c| round3(c * 1000.0 / connected as f64)),
        bench_cpu_ramp_s: round3(bench_ramp.cpu_s - bench_before.cpu_s),
        server_rss_before_kib: before.map(|s| s.rss_kib),
        server_rss_idle_kib: idle.map(|s| s.rss_kib),
        server_rss_per_connection_kib: per_connection.map(round3),
        server_peak_rss_kib: idle.map(|s| s.peak_rss_kib),
        idle_s: plan.idle.as_secs_f64(),
        errors: errors.values().sum(),
        error_kinds: errors,
    };

    let closing = futures_util::stream::iter(clients)
        .map(|(_, client)| async move { client.close().await })
        .buffer_unordered(256)
        .collect::<Vec<()>>();
    let _ = timeout(Duration::from_secs(15), closing).await;
    let _ = timeout(Duration::from_secs(3), setup.close()).await;
    Ok(report)
}
