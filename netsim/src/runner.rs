//! Runs a [`Scenario`]: a chat server (in-process, or one already running), one proxy per
//! client or group with the scenario's links, and real clients that connect through them,
//! join rooms, send tagged messages and record what arrives in a [`Ledger`]. After the
//! duration and the drain, the ledger's [`Metrics`](crate::ledger::Metrics) become a
//! [`Report`].
//!
//! ```text
//!  client task ─┬─ connect ─ join ─ read events ──▶ ledger (arrivals, gaps, connections)
//!               └─ sender: tick at `rate` ─ send ──▶ ledger (accepted seq, or failed)
//!       │ UDP
//!  proxy (per client or group, timeline from the run's start) ─▶ server
//!  rebind watcher: polls each proxy's rebind counter ─▶ ledger
//! ```
//!
//! Every time is measured on one clock, the run's start, so send and receive times compare
//! directly. A run takes its duration plus its drain plus a few seconds to set up and tear
//! down.

mod client;
mod outages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chatroom_client::{CertificateDer, ClientBuilder, ErrorCode, RequestError};
use chatroom_server::{Server, ServerConfig, ServerError, ShutdownHandle, TlsError, TlsIdentity};
use thiserror::Error;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::ledger::Ledger;
use crate::proxy::{Proxy, ProxyConfig, ProxyError, ProxyHandle};
use crate::report::{Report, RunFacts};
use crate::scenario::{ClientSettings, Scenario};

pub use outages::outages;

/// How often the rebind watcher looks at the proxies' counters; the precision of rebind times.
const REBIND_POLL: Duration = Duration::from_millis(25);

/// How often progress lines are printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How long tear-down waits for clients to close and the in-process server to stop.
const TEARDOWN: Duration = Duration::from_secs(5);

/// A server that is already running, instead of the in-process one.
#[derive(Debug, Clone)]
pub struct ExternalServer {
    /// Its address.
    pub addr: SocketAddr,
    /// A PEM file with its certificate or CA.
    pub ca: PathBuf,
    /// The name its certificate is valid for. Usually `localhost`.
    pub server_name: String,
}

/// How to run scenarios.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the scenario's seed.
    pub seed: Option<u64>,
    /// Use this server instead of starting one; rooms get a unique suffix.
    pub server: Option<ExternalServer>,
    /// Print progress lines to stderr.
    pub progress: bool,
}

/// Why a run could not be carried out (as opposed to a run that missed its expectations).
#[derive(Debug, Error)]
pub enum RunError {
    /// The in-process server's certificate could not be made.
    #[error("cannot make the server's certificate")]
    Tls(#[from] TlsError),
    /// The in-process server could not start.
    #[error("cannot start the server")]
    Server(#[from] ServerError),
    /// A proxy could not start.
    #[error("cannot start a proxy")]
    Proxy(#[from] ProxyError),
    /// The unimpaired set-up connection that creates the rooms failed.
    #[error("set-up failed: {0}")]
    Setup(String),
}

/// What clients trust.
#[derive(Debug, Clone)]
enum Trust {
    Der(CertificateDer<'static>),
    Pem(PathBuf),
}

/// What every client task shares.
#[derive(Debug)]
struct RunContext {
    /// The run's clock: every time in the ledger is measured from here.
    start: Instant,
    /// Senders stop here.
    send_until: Instant,
    /// Everything stops here.
    end: Instant,
    seed: u64,
    settings: ClientSettings,
    trust: Trust,
    server_name: String,
    /// Scenario room name to server room name (they differ on an external server).
    room_names: HashMap<String, String>,
    ledger: Mutex<Ledger>,
}

impl RunContext {
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn builder(&self, addr: SocketAddr, user: &str) -> ClientBuilder {
        let builder = ClientBuilder::new(addr.to_string())
            .server_name(&self.server_name)
            .user(user)
            .agent(concat!("chatroom-netsim/", env!("CARGO_PKG_VERSION")))
            .idle_timeout(self.settings.idle_timeout)
            .keep_alive(self.settings.keep_alive)
            .connect_timeout(self.settings.connect_timeout)
            .reconnect(self.settings.reconnect)
            .reconnect_backoff(self.settings.reconnect_initial, self.settings.reconnect_max)
            .request_timeout(self.settings.request_timeout)
            .path_probe_after(Some(self.settings.path_probe_after).filter(|d| !d.is_zero()))
            .min_send_window(self.settings.min_send_window);
        match &self.trust {
            Trust::Der(cert) => builder.ca_der(cert.clone()),
            Trust::Pem(path) => builder.ca_pem_file(path.clone()),
        }
    }

    fn server_room<'a>(&'a self, room: &'a str) -> &'a str {
        self.room_names.get(room).map_or(room, String::as_str)
    }
}

/// The in-process server, while it runs.
struct LocalServer {
    stop: ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
}

/// Derives an independent seed for one part of the run (a proxy, a client) from the run's.
pub fn derive_seed(seed: u64, stream: u64, index: u64) -> u64 {
    // SplitMix64's finaliser: nearby inputs give unrelated outputs.
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `scenario` and reports what happened. Fails only if the run could not be set up;
/// what the network did to the chat is in the report.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<Report, RunError> {
    let wall = Instant::now();
    let seed = options.seed.unwrap_or(scenario.seed);
    let plan = scenario.plan();
    let name = scenario.name.as_str();
    let say = |line: String| {
        if options.progress {
            eprintln!("[{name}] {line}");
        }
    };

    let (addr, trust, server_name, local, room_suffix) = match &options.server {
        Some(external) => {
            let suffix = format!("-ns{:08x}", rand::random::<u32>());
            (
                external.addr,
                Trust::Pem(external.ca.clone()),
                external.server_name.clone(),
                None,
                suffix,
            )
        }
        None => {
            let mut config = scenario.server.clone().unwrap_or_default();
            config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let (addr, cert, local) = start_server(config)?;
            (addr, Trust::Der(cert), "localhost".to_owned(), Some(local), String::new())
        }
    };
    let server_label = match &local {
        Some(_) => "in-process".to_owned(),
        None => addr.to_string(),
    };
    say(format!(
        "seed {seed}: {} clients, {} proxies, {}s + {}s drain, server {server_label}",
        plan.clients.len(),
        plan.proxies.len(),
        scenario.duration.as_secs_f64(),
        scenario.drain.as_secs_f64(),
    ));

    let room_names: HashMap<String, String> =
        plan.rooms.iter().map(|r| (r.clone(), format!("{r}{room_suffix}"))).collect();
    let mut ctx = RunContext {
        start: Instant::now(),
        send_until: Instant::now(),
        end: Instant::now(),
        seed,
        settings: scenario.client,
        trust,
        server_name,
        room_names,
        ledger: Mutex::new(Ledger::new()),
    };

    // The rooms are created over a direct, unimpaired connection, so that no client's link
    // decides whether the run can start.
    let (setup, _setup_events) = ctx
        .builder(addr, "netsim-setup")
        .connect()
        .await
        .map_err(|e| RunError::Setup(format!("cannot connect to the server at {addr}: {e}")))?;
    for room in ctx.room_names.values() {
        match setup.create_room(Some(room)).await {
            Ok(_) => {}
            Err(RequestError::Server(e)) if e.code == ErrorCode::RoomExists => {}
            Err(e) => return Err(RunError::Setup(format!("cannot create room {room}: {e}"))),
        }
    }

    let mut proxies: Vec<ProxyHandle> = Vec::with_capacity(plan.proxies.len());
    for (index, proxy) in plan.proxies.iter().enumerate() {
        let config = ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), addr)
            .with_link(proxy.link.clone())
            .with_seed(derive_seed(seed, 1, index as u64));
        proxies.push(Proxy::start(config).await?);
    }

    // The proxies' timelines started a moment ago, each as it started; the run's clock starts
    // now, so a timeline event lands at most the start-up time (well under a millisecond per
    // proxy) early on the run's clock.
    ctx.start = Instant::now();
    ctx.send_until = ctx.start + scenario.duration;
    ctx.end = ctx.send_until + scenario.drain;
    {
        let mut ledger = ctx.ledger();
        for client in &plan.clients {
            ledger.client_behind(client.index, client.proxy);
        }
        for (index, proxy) in plan.proxies.iter().enumerate() {
            for (from, to) in outages(&proxy.link.timeline, scenario.duration) {
                ledger.outage(index, from, to);
            }
        }
    }
    let ctx = Arc::new(ctx);

    let watcher = tokio::spawn(watch_rebinds(ctx.clone(), proxies.clone()));
    let mut clients = JoinSet::new();
    for client in plan.clients.clone() {
        let target = client.proxy.map_or(addr, |p| proxies[p].local_addr());
        clients.spawn(client::run(ctx.clone(), client, target));
    }

    let mut next_progress = ctx.start + PROGRESS_EVERY;
    while next_progress < ctx.end {
        tokio::time::sleep_until(next_progress).await;
        let p = ctx.ledger().progress();
        say(format!(
            "t={:>3.0}s  sent {}  arrivals {}  reconnects {}",
            ctx.now().as_secs_f64(),
            p.sent,
            p.arrivals,
            p.reconnects
        ));
        next_progress += PROGRESS_EVERY;
    }
    tokio::time::sleep_until(ctx.end).await;

    // Client tasks end by themselves at `end`, closing their connections; give them a moment.
    let _ = tokio::time::timeout(TEARDOWN, async { while clients.join_next().await.is_some() {} })
        .await;
    clients.abort_all();
    watcher.abort();
    let stats: Vec<_> = proxies.iter().map(ProxyHandle::stats).collect();
    for proxy in &proxies {
        proxy.shutdown().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), setup.close()).await;
    if let Some(local) = local {
        local.stop.shutdown();
        let _ = tokio::time::timeout(TEARDOWN, local.task).await;
    }

    let metrics = ctx.ledger().finish();
    let facts = RunFacts {
        scenario: scenario.name.clone(),
        seed,
        duration_s: scenario.duration.as_secs_f64(),
        drain_s: scenario.drain.as_secs_f64(),
        clients: plan.clients.len(),
        server: server_label,
        wall_s: wall.elapsed().as_secs_f64(),
    };
    let report = Report::new(facts, &metrics, &stats, &scenario.expect);
    say(format!("done in {:.1} s: {}", report.wall_s, if report.ok { "ok" } else { "FAIL" }));
    Ok(report)
}

fn start_server(
    config: ServerConfig,
) -> Result<(SocketAddr, CertificateDer<'static>, LocalServer), RunError> {
    let identity = TlsIdentity::self_signed()?;
    let cert = identity.cert_chain[0].clone();
    let server = Server::bind(config, &identity)?;
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    Ok((addr, cert, LocalServer { stop, task }))
}

/// Records each proxy's rebinds, scheduled or not, as they happen, until sending ends: nothing
/// sent after a later rebind could show whether the connections migrated.
async fn watch_rebinds(ctx: Arc<RunContext>, proxies: Vec<ProxyHandle>) {
    let mut seen = vec![0u64; proxies.len()];
    let mut tick = tokio::time::interval(REBIND_POLL);
    loop {
        tick.tick().await;
        if Instant::now() >= ctx.send_until {
            return;
        }
        for (index, proxy) in proxies.iter().enumerate() {
            let rebinds = proxy.stats().rebinds;
            if rebinds > seen[index] {
                let at = ctx.now();
                let mut ledger = ctx.ledger();
                for _ in seen[index]..rebinds {
                    ledger.rebind(index, at);
                }
                seen[index] = rebinds;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_stream_and_index_and_repeat() {
        let a = derive_seed(1, 1, 0);
        assert_eq!(a, derive_seed(1, 1, 0));
        assert_ne!(a, derive_seed(1, 1, 1));
        assert_ne!(a, derive_seed(1, 2, 0));
        assert_ne!(a, derive_seed(2, 1, 0));
    }
}
