//! The proxy's moving parts: shared state, client mappings, and the tasks that receive, decide
//! and deliver.
//!
//! Tasks: one receives from clients (`relay_up`), one per mapping socket receives from the
//! server (`relay_down`), and one (`schedule`) holds every packet until the model's delivery
//! time and also fires the timeline's rebinds. The model sits behind a mutex held only for a
//! decision, never across an `.await`.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{MappingInfo, ProxyConfig, ProxyError, ProxyStats};
use crate::model::{Decision, Direction, Model, RebindKind};

/// The largest UDP payload; a smaller buffer would silently truncate datagrams.
const MAX_DATAGRAM: usize = 65_535;

/// Old sockets kept per mapping after rebinds, so that late packets from the server to them are
/// counted as stale rather than bouncing off a closed port (which could send the server an ICMP
/// error a real NAT would not). Older ones are closed.
const RETIRED_SOCKETS_KEPT: usize = 8;

/// Locks a mutex, carrying on if another thread panicked while holding it: every critical
/// section here leaves the state consistent, so the data is still good.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State shared by the tasks and the handle.
pub(super) struct Shared {
    pub(super) model: Mutex<Model>,
    pub(super) upstream: SocketAddr,
    default_ip: IpAddr,
    max_mappings: usize,
    max_in_flight: u64,
    /// The runtime the proxy was started on, so that a handle used from elsewhere can still
    /// register sockets and spawn tasks.
    runtime: Handle,
    mappings: Mutex<Mappings>,
    scheduler: mpsc::UnboundedSender<Scheduled>,
    /// Tie-breaker so that packets due at the same instant leave in the order they came.
    sequence: AtomicU64,
    counters: Counters,
}

struct Mappings {
    by_client: HashMap<SocketAddr, Arc<Mapping>>,
    /// Set once by `close`; checked under the same lock so no mapping is created after it.
    closed: bool,
}

#[derive(Default)]
struct Counters {
    stale_mapping_drops: AtomicU64,
    foreign_drops: AtomicU64,
    refused_clients: AtomicU64,
    overflow_drops: AtomicU64,
    send_errors: AtomicU64,
    in_flight: AtomicU64,
}

/// One client's NAT mapping: the socket the server currently sees it at, and the ones it had.
struct Mapping {
    client: SocketAddr,
    sockets: Mutex<MappingSockets>,
}

struct MappingSockets {
    current: Binding,
    retired: VecDeque<Binding>,
}

/// An upstream socket and the task receiving on it; dropping it stops the task and so closes
/// the socket.
struct Binding {
    socket: Arc<UdpSocket>,
    retired: Arc<AtomicBool>,
    task: AbortHandle,
}

impl Drop for Binding {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A packet waiting for its delivery time.
pub(super) struct Scheduled {
    at: Instant,
    sequence: u64,
    packet: Bytes,
    route: Route,
}

#[derive(Clone)]
enum Route {
    /// To the server, through whatever socket the mapping has when the packet leaves.
    Upstream(Arc<Mapping>),
    /// To a client, from the listening socket.
    Client(SocketAddr),
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and the earliest packet must come out first.
        (other.at, other.sequence).cmp(&(self.at, self.sequence))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl Eq for Scheduled {}

impl Shared {
    pub(super) fn new(
        model: Model,
        config: &ProxyConfig,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Scheduled>) {
        // Unbounded, but `max_in_flight` bounds what is queued in it and in the heap together.
        let (scheduler, incoming) = mpsc::unbounded_channel();
        let shared = Arc::new(Self {
            model: Mutex::new(model),
            upstream: config.upstream,
            default_ip: config.default_bind_ip(),
            max_mappings: config.max_mappings,
            max_in_flight: config.max_in_flight as u64,
            runtime: Handle::current(),
            mappings: Mutex::new(Mappings { by_client: HashMap::new(), closed: false }),
            scheduler,
            sequence: AtomicU64::new(0),
            counters: Counters::default(),
        });
        (shared, incoming)
    }

    /// Closes every mapping (stopping their tasks and sockets) and refuses new ones.
    pub(super) fn close(&self) {
        let mut mappings = lock(&self.mappings);
        mappings.closed = true;
        mappings.by_client.clear();
    }

    pub(super) fn is_closed(&self) -> bool {
        lock(&self.mappings).closed
    }

    /// Puts one packet through the model and schedules what arrives.
    fn relay(&self, direction: Direction, data: &[u8], route: Route) {
        let mut packet = data.to_vec();
        let now = Instant::now();
        let decision = lock(&self.model).decide(direction, now.into_std(), &mut packet);
        let (at, copies) = match decision {
            Decision::Drop(reason) => {
                tracing::trace!(direction = direction.as_str(), ?reason, len = data.len(), "drop");
                return;
            }
            Decision::Deliver { at, copies, corrupted } => {
                tracing::trace!(
                    direction = direction.as_str(),
                    len = data.len(),
                    delay = ?at.saturating_duration_since(now.into_std()),
                    copies = copies.len(),
                    corrupted,
                    "deliver"
                );
                (at, copies)
            }
        };
        let packet = Bytes::from(packet);
        for at in std::iter::once(at).chain(copies) {
            if self.counters.in_flight.fetch_add(1, Relaxed) >= self.max_in_flight {
                self.counters.in_flight.fetch_sub(1, Relaxed);
                self.counters.overflow_drops.fetch_add(1, Relaxed);
                continue;
            }
            let scheduled = Scheduled {
                at: Instant::from_std(at),
                sequence: self.sequence.fetch_add(1, Relaxed),
                packet: packet.clone(),
                route: route.clone(),
            };
            if self.scheduler.send(scheduled).is_err() {
                // The scheduler is gone: the proxy is shutting down.
                self.counters.in_flight.fetch_sub(1, Relaxed);
            }
        }
    }

    /// Sends one packet whose time has come.
    async fn deliver(&self, listen: &UdpSocket, scheduled: Scheduled) {
        self.counters.in_flight.fetch_sub(1, Relaxed);
        let result = match &scheduled.route {
            Route::Upstream(mapping) => {
                let socket = lock(&mapping.sockets).current.socket.clone();
                socket.send_to(&scheduled.packet, self.upstream).await
            }
            Route::Client(client) => listen.send_to(&scheduled.packet, *client).await,
        };
        if let Err(error) = result {
            self.counters.send_errors.fetch_add(1, Relaxed);
            tracing::debug!(%error, "send failed");
        }
    }

    /// The mapping for `client`, created on its first packet.
    fn mapping_for(self: &Arc<Self>, client: SocketAddr) -> Option<Arc<Mapping>> {
        let mut mappings = lock(&self.mappings);
        if let Some(mapping) = mappings.by_client.get(&client) {
            return Some(mapping.clone());
        }
        if mappings.closed {
            return None;
        }
        if mappings.by_client.len() >= self.max_mappings {
            self.counters.refused_clients.fetch_add(1, Relaxed);
            return None;
        }
        let binding = match self.bind_upstream(self.default_ip, client) {
            Ok(binding) => binding,
            Err(error) => {
                tracing::warn!(%client, %error, "cannot open a mapping");
                self.counters.refused_clients.fetch_add(1, Relaxed);
                return None;
            }
        };
        tracing::debug!(%client, via = ?binding.socket.local_addr().ok(), "new mapping");
        let sockets = Mutex::new(MappingSockets { current: binding, retired: VecDeque::new() });
        let mapping = Arc::new(Mapping { client, sockets });
        mappings.by_client.insert(client, mapping.clone());
        Some(mapping)
    }

    /// Binds a fresh upstream socket on `ip` for `client` and starts receiving on it.
    fn bind_upstream(
        self: &Arc<Self>,
        ip: IpAddr,
        client: SocketAddr,
    ) -> Result<Binding, ProxyError> {
        let addr = SocketAddr::new(ip, 0);
        let bind_error = |source| ProxyError::BindUpstream { addr, source };
        let std_socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
        std_socket.set_nonblocking(true).map_err(bind_error)?;
        let _runtime = self.runtime.enter();
        let socket = Arc::new(UdpSocket::from_std(std_socket).map_err(bind_error)?);
        let retired = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(relay_down(self.clone(), socket.clone(), client, retired.clone()));
        Ok(Binding { socket, retired, task: task.abort_handle() })
    }

    /// Gives every mapping a fresh upstream socket; returns how many moved.
    pub(super) fn rebind_all(self: &Arc<Self>, kind: RebindKind) -> Result<usize, ProxyError> {
        let ip = match kind {
            RebindKind::Port => self.default_ip,
            RebindKind::Address(ip) => ip,
        };
        let mappings: Vec<Arc<Mapping>> = {
            let mappings = lock(&self.mappings);
            if mappings.closed {
                return Err(ProxyError::Closed);
            }
            mappings.by_client.values().cloned().collect()
        };
        for mapping in &mappings {
            let fresh = self.bind_upstream(ip, mapping.client)?;
            let mut sockets = lock(&mapping.sockets);
            let old = std::mem::replace(&mut sockets.current, fresh);
            old.retired.store(true, Relaxed);
            tracing::info!(
                client = %mapping.client,
                from = ?old.socket.local_addr().ok(),
                to = ?sockets.current.socket.local_addr().ok(),
                "rebind"
            );
            sockets.retired.push_back(old);
            while sockets.retired.len() > RETIRED_SOCKETS_KEPT {
                sockets.retired.pop_front();
            }
        }
        Ok(mappings.len())
    }

    pub(super) fn mapping_infos(&self) -> Vec<MappingInfo> {
        let mappings = lock(&self.mappings);
        mappings
            .by_client
            .values()
            .filter_map(|mapping| {
                let upstream_local = lock(&mapping.sockets).current.socket.local_addr().ok()?;
                Some(MappingInfo { client: mapping.client, upstream_local })
            })
            .collect()
    }

    pub(super) fn stats(&self) -> ProxyStats {
        let model = lock(&self.model).stats();
        let counter = |c: &AtomicU64| c.load(Relaxed);
        ProxyStats {
            up: model.up,
            down: model.down,
            rebinds: model.rebinds,
            mappings: lock(&self.mappings).by_client.len(),
            stale_mapping_drops: counter(&self.counters.stale_mapping_drops),
            foreign_drops: counter(&self.counters.foreign_drops),
            refused_clients: counter(&self.counters.refused_clients),
            overflow_drops: counter(&self.counters.overflow_drops),
            send_errors: counter(&self.counters.send_errors),
            in_flight: counter(&self.counters.in_flight),
        }
    }
}

/// Receives from clients and relays towards the server.
pub(super) async fn relay_up(shared: Arc<Shared>, listen: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, client) = match listen.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                recv_failed(error).await;
                continue;
            }
        };
        if let Some(mapping) = shared.mapping_for(client) {
            shared.relay(Direction::Up, &buf[..len], Route::Upstream(mapping));
        }
    }
}

/// Receives from the server on one mapping socket and relays towards the client; once the
/// socket is retired by a rebind, drops what still arrives.
async fn relay_down(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    retired: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                recv_failed(error).await;
                continue;
            }
        };
        if retired.load(Relaxed) {
            shared.counters.stale_mapping_drops.fetch_add(1, Relaxed);
            tracing::trace!(%client, len, "drop: sent to a mapping's old address");
        } else if from != shared.upstream {
            shared.counters.foreign_drops.fetch_add(1, Relaxed);
            tracing::trace!(%client, %from, len, "drop: not from the server");
        } else {
            shared.relay(Direction::Down, &buf[..len], Route::Client(client));
        }
    }
}

/// Holds packets until their delivery time and sends them; fires scheduled rebinds.
pub(super) async fn schedule(
    shared: Arc<Shared>,
    listen: Arc<UdpSocket>,
    mut incoming: mpsc::UnboundedReceiver<Scheduled>,
) {
    let mut waiting: BinaryHeap<Scheduled> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        while waiting.peek().is_some_and(|next| next.at <= now) {
            if let Some(due) = waiting.pop() {
                shared.deliver(&listen, due).await;
            }
        }
        let due_rebind = lock(&shared.model).rebind_due(now.into_std());
        if let Some(Err(error)) = due_rebind.map(|kind| shared.rebind_all(kind)) {
            tracing::warn!(%error, "scheduled rebind failed");
        }

        let next_packet = waiting.peek().map(|next| next.at);
        let next_rebind = lock(&shared.model).next_rebind_at().map(Instant::from_std);
        let wake = match (next_packet, next_rebind) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = incoming.recv() => match received {
                Some(scheduled) => waiting.push(scheduled),
                None => return,
            },
            () = sleep => {}
        }
    }
}

/// What to do after a failed receive. Errors reported from earlier sends (ICMP port
/// unreachable, surfaced as refused or reset on some systems) are harmless; anything else is
/// logged and slowed down so that a persistent error cannot spin a core.
async fn recv_failed(error: io::Error) {
    match error.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => {}
        _ => {
            tracing::warn!(%error, "receive failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
