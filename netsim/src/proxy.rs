//! A UDP relay between real sockets that puts every packet through the [`Model`].
//!
//! ```text
//!  client ──▶ listen socket ──▶ model (up) ──▶ scheduler ──▶ mapping socket ──▶ upstream
//!  client ◀── listen socket ◀── scheduler ◀── model (down) ◀── mapping socket ◀── upstream
//! ```
//!
//! Each distinct client address gets a *mapping*, like a NAT: its own upstream socket, so the
//! server sees one address per client. A rebind gives the mapping a fresh socket (a new port,
//! optionally a new address); what the server sends to the old one is dropped, as behind a
//! strict NAT. Delivery is by one scheduler task that sends each packet when the model says it
//! arrives.
//!
//! The proxy knows nothing about what it carries; it works with any UDP protocol. It is not a
//! NAT in other respects: mappings do not expire, and the proxy does not rewrite payloads.

mod relay;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::model::{
    ConfigError, Direction, DirectionStats, Impairment, LinkConfig, Model, RebindKind, Target,
};
use relay::{Shared, lock};

/// Default cap on client mappings: far more than a test uses, few enough that a stray flood of
/// source addresses cannot exhaust the process's sockets.
pub const DEFAULT_MAX_MAPPINGS: usize = 256;

/// Default cap on packets held for later delivery. At 750 ms of delay this is ~87 000
/// packets/s of throughput, beyond what a loopback test sends; the cap keeps memory bounded if a
/// flood meets a long delay.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 65_536;

/// What a proxy listens on, where it forwards, and how it impairs the link.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// Where clients send (`127.0.0.1:0` picks a free port; see [`ProxyHandle::local_addr`]).
    pub listen: SocketAddr,
    /// The server the proxy forwards to.
    pub upstream: SocketAddr,
    /// The impairment of each direction and the timeline (which starts when the proxy does).
    pub link: LinkConfig,
    /// Seed of every random choice; the same seed and the same packet timing give the same
    /// fates.
    pub seed: u64,
    /// At most this many client mappings; packets from further clients are dropped (counted in
    /// [`ProxyStats::refused_clients`]). Default [`DEFAULT_MAX_MAPPINGS`].
    pub max_mappings: usize,
    /// At most this many packets waiting for their delivery time; beyond, packets are dropped
    /// (counted in [`ProxyStats::overflow_drops`]). Default [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
}

impl ProxyConfig {
    /// A perfect link from `listen` to `upstream`, seed 0, default limits.
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> Self {
        Self {
            listen,
            upstream,
            link: LinkConfig::default(),
            seed: 0,
            max_mappings: DEFAULT_MAX_MAPPINGS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// Replaces the link.
    pub fn with_link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }

    /// Replaces the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The address mapping sockets bind to by default: loopback when the server is on
    /// loopback (so the server sees 127.0.0.1, and 127.0.0.2 after an address rebind is a
    /// change it can notice), otherwise any address of the server's family.
    fn default_bind_ip(&self) -> IpAddr {
        match (self.upstream.ip(), self.upstream.ip().is_loopback()) {
            (IpAddr::V4(_), true) => Ipv4Addr::LOCALHOST.into(),
            (IpAddr::V6(_), true) => Ipv6Addr::LOCALHOST.into(),
            (IpAddr::V4(_), false) => Ipv4Addr::UNSPECIFIED.into(),
            (IpAddr::V6(_), false) => Ipv6Addr::UNSPECIFIED.into(),
        }
    }
}

/// Why a proxy could not start or carry out a request.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The link configuration is out of range.
    #[error("invalid link configuration")]
    Config(#[from] ConfigError),
    /// The rebind address is of another family than the server's, so it could not reach it.
    #[error("rebind address {rebind} cannot reach upstream {upstream}: different address family")]
    AddressFamily {
        /// The configured rebind address.
        rebind: IpAddr,
        /// The server.
        upstream: SocketAddr,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The requested address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A mapping's upstream socket could not be bound (for instance a rebind address that is
    /// not configured on this machine).
    #[error("cannot bind an upstream socket on {addr}")]
    BindUpstream {
        /// The requested address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The proxy has been shut down.
    #[error("the proxy has shut down")]
    Closed,
}

/// Starts proxies. See the [module docs](self).
#[derive(Debug)]
pub struct Proxy;

impl Proxy {
    /// Binds the listening socket, starts relaying and returns a handle to steer the proxy.
    /// The timeline's clock starts now. The proxy runs until [`ProxyHandle::shutdown`] or until
    /// every clone of the handle is dropped.
    pub async fn start(config: ProxyConfig) -> Result<ProxyHandle, ProxyError> {
        let upstream = config.upstream;
        let rebind_address = config.link.timeline.rebind_address;
        if let Some(rebind) = rebind_address.filter(|ip| ip.is_ipv4() != upstream.is_ipv4()) {
            return Err(ProxyError::AddressFamily { rebind, upstream });
        }
        let start = tokio::time::Instant::now().into_std();
        let model = Model::new(config.link.clone(), config.seed, start)?;
        let listen = UdpSocket::bind(config.listen)
            .await
            .map_err(|source| ProxyError::Listen { addr: config.listen, source })?;
        let local_addr = listen
            .local_addr()
            .map_err(|source| ProxyError::Listen { addr: config.listen, source })?;
        let (shared, incoming) = Shared::new(model, &config);
        let listen = Arc::new(listen);
        let tasks = vec![
            tokio::spawn(relay::relay_up(shared.clone(), listen.clone())),
            tokio::spawn(relay::schedule(shared.clone(), listen, incoming)),
        ];
        tracing::info!(%local_addr, %upstream, seed = config.seed, "netsim proxy started");
        Ok(ProxyHandle {
            inner: Arc::new(HandleInner { shared, local_addr, tasks: Mutex::new(tasks) }),
        })
    }
}

/// Steers a running proxy: change the impairment while traffic flows, black out, rebind, read
/// the counters, shut down. Clones steer the same proxy; dropping the last one stops it.
#[derive(Clone)]
pub struct ProxyHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl HandleInner {
    fn stop(&self) {
        for task in lock(&self.tasks).iter() {
            task.abort();
        }
        self.shared.close();
    }
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("local_addr", &self.inner.local_addr)
            .field("upstream", &self.inner.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl ProxyHandle {
    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The server the proxy forwards to.
    pub fn upstream_addr(&self) -> SocketAddr {
        self.inner.shared.upstream
    }

    /// Replaces the base impairment of one direction (pass a [`Direction`]) or of both
    /// ([`Target::Both`]), from the next packet on. Timeline phases still apply on top.
    pub fn set_impairment(
        &self,
        target: impl Into<Target>,
        impairment: Impairment,
    ) -> Result<(), ConfigError> {
        lock(&self.inner.shared.model).set_impairment(target.into(), impairment)
    }

    /// The impairment in force now for `direction`, timeline included.
    pub fn impairment_now(&self, direction: Direction) -> Impairment {
        lock(&self.inner.shared.model).impairment_at(direction, now())
    }

    /// Drops every packet, both ways, for `duration` from now.
    pub fn blackout_now(&self, duration: Duration) {
        lock(&self.inner.shared.model).blackout_now(now(), duration);
    }

    /// Takes the link down in both directions (`true`) until it is brought back up (`false`).
    pub fn set_down(&self, down: bool) {
        lock(&self.inner.shared.model).set_down(down);
    }

    /// Rebinds every mapping now: each gets a fresh upstream socket (new port; alternately the
    /// timeline's rebind address), and what the server sends to the old one is dropped. Returns
    /// how many mappings moved. When it returns, the next packet forwarded uses the new socket.
    pub fn rebind_now(&self) -> Result<usize, ProxyError> {
        if self.inner.shared.is_closed() {
            return Err(ProxyError::Closed);
        }
        let kind = lock(&self.inner.shared.model).rebind_now();
        self.rebind(kind)
    }

    /// Rebinds every mapping as `kind` says, like [`ProxyHandle::rebind_now`] but choosing the
    /// address.
    pub fn rebind(&self, kind: RebindKind) -> Result<usize, ProxyError> {
        self.inner.shared.rebind_all(kind)
    }

    /// The client mappings: which client address goes out through which local address.
    pub fn mappings(&self) -> Vec<MappingInfo> {
        self.inner.shared.mapping_infos()
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        self.inner.shared.stats()
    }

    /// Stops relaying and releases every socket; packets still waiting are dropped. Other
    /// handles then fail with [`ProxyError::Closed`] where they can fail.
    pub async fn shutdown(&self) {
        self.inner.stop();
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            // An aborted task's error is the expected `Cancelled`; a panic was already logged.
            let _ = task.await;
        }
        tracing::info!(local_addr = %self.inner.local_addr, "netsim proxy stopped");
    }
}

/// One client's NAT mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingInfo {
    /// The client's address, as the proxy sees it.
    pub client: SocketAddr,
    /// The local address of the mapping's current upstream socket: the address the server
    /// sees the client at.
    pub upstream_local: SocketAddr,
}

/// The proxy's counters: the model's per direction, and the relay's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyStats {
    /// Client to server, as the model decided.
    pub up: DirectionStats,
    /// Server to client, as the model decided.
    pub down: DirectionStats,
    /// NAT rebinds so far.
    pub rebinds: u64,
    /// Client mappings open.
    pub mappings: usize,
    /// Packets the server sent to a mapping's old address after a rebind, dropped.
    pub stale_mapping_drops: u64,
    /// Packets that reached a mapping socket from somewhere other than the server, dropped.
    pub foreign_drops: u64,
    /// Packets from new clients beyond [`ProxyConfig::max_mappings`], dropped.
    pub refused_clients: u64,
    /// Deliveries dropped because [`ProxyConfig::max_in_flight`] packets were already waiting.
    pub overflow_drops: u64,
    /// Deliveries the operating system refused to send.
    pub send_errors: u64,
    /// Packets (and copies) waiting for their delivery time now.
    pub in_flight: u64,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
