//! The QUIC endpoint: accepting connections, periodic room upkeep, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chatroom_protocol::CloseCode;
use quinn::crypto::rustls::QuicServerConfig;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admission::{Admission, Admit, Admitted};
use crate::config::{ConfigError, ServerConfig};
use crate::session::{Shared, handle_incoming};
use crate::tls::{TlsError, TlsIdentity};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS identity is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The authentication settings are unusable.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    shutdown: Arc<watch::Sender<bool>>,
    admission: Arc<Admission>,
    transport: Arc<quinn::TransportConfig>,
}

/// Replaces the server's certificate for new connections; existing connections keep theirs
/// and are not interrupted. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsReloader {
    endpoint: quinn::Endpoint,
    transport: Arc<quinn::TransportConfig>,
    shutdown: Arc<watch::Sender<bool>>,
    session_cache: usize,
}

impl TlsReloader {
    /// Serves new connections with `identity` from now on.
    pub fn reload(&self, identity: &TlsIdentity) -> Result<(), TlsError> {
        let config = quic_server_config(identity, self.transport.clone(), self.session_cache)?;
        // A shutting-down server accepts nothing; do not undo that.
        if !*self.shutdown.borrow() {
            self.endpoint.set_server_config(Some(config));
        }
        Ok(())
    }
}

fn quic_server_config(
    identity: &TlsIdentity,
    transport: Arc<quinn::TransportConfig>,
    session_cache: usize,
) -> Result<quinn::ServerConfig, TlsError> {
    let crypto = identity.server_crypto(session_cache)?;
    let quic_crypto = QuicServerConfig::try_from(crypto)
        .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_crypto));
    server_config.transport_config(transport);
    Ok(server_config)
}

/// Stops a running server gracefully; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Starts a graceful shutdown: no new connections, a going-away notice to every client,
    /// then connections close. [`Server::run`] returns when that is done.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

fn transport_config(config: &ServerConfig) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    // The idle timeout fits in a QUIC varint for any sane value; a huge one means "very long".
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .unwrap_or_else(|_| quinn::VarInt::MAX.into());
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(config.keep_alive))
        // Clients open exactly one bidirectional stream (the session stream) and no
        // unidirectional ones; refusing more bounds what a hostile client can make us track.
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .send_window(config.connection_send_window as u64)
        .datagram_receive_buffer_size(None);
    transport
}

/// The server's UDP socket, bound to `addr`, with a receive buffer of `receive_buffer` bytes
/// (as much of it as the system grants; `0`: the system's default).
fn bind_udp(addr: SocketAddr, receive_buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if receive_buffer > 0 {
        // Linux caps an oversized request; a system that refuses it keeps its default.
        if let Err(error) = socket.set_recv_buffer_size(receive_buffer) {
            tracing::warn!(requested = receive_buffer, %error, "cannot size the UDP receive buffer");
        }
    }
    socket.bind(&addr.into())?;
    // Linux reports twice what it grants (the other half is its bookkeeping).
    let reported = socket.recv_buffer_size()?;
    let granted = if cfg!(target_os = "linux") { reported / 2 } else { reported };
    if granted < receive_buffer {
        tracing::warn!(
            requested = receive_buffer,
            granted,
            "the system capped the UDP receive buffer (on Linux, raise net.core.rmem_max)"
        );
    } else {
        tracing::debug!(bytes = granted, "UDP receive buffer");
    }
    Ok(socket.into())
}

impl Server {
    /// Binds the endpoint described by `config` with `identity`. Must be called inside a tokio
    /// runtime.
    pub fn bind(config: ServerConfig, identity: &TlsIdentity) -> Result<Self, ServerError> {
        config.validate()?;
        let auth = crate::auth::Authenticator::new(&config.auth, &config.region)?;
        let transport = Arc::new(transport_config(&config));
        let server_config =
            quic_server_config(identity, transport.clone(), config.tls_session_cache)?;
        let addr = config.listen;
        let socket = bind_udp(addr, config.udp_receive_buffer)
            .map_err(|source| ServerError::Bind { addr, source })?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| ServerError::Bind { addr, source })?;
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            endpoint,
            admission: Admission::new(&config),
            shared: Arc::new(Shared::new(config, auth)),
            shutdown: Arc::new(shutdown),
            transport,
        })
    }

    /// The address the endpoint is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        // The socket is bound by `bind`; the address is only unavailable if it was closed.
        self.endpoint.local_addr().unwrap_or(self.shared.config.listen)
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// How connections and joins are authorized.
    pub fn authenticator(&self) -> &crate::auth::Authenticator {
        &self.shared.auth
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// Applies the connection limits to a new attempt: accepted (with its admission guard),
    /// or answered with a Retry or a refusal here.
    fn admit(&self, incoming: quinn::Incoming) -> Option<(quinn::Incoming, Admitted)> {
        let remote = incoming.remote_address();
        let validated = incoming.remote_address_validated() || !incoming.may_retry();
        match self.admission.admit(remote.ip(), validated, self.endpoint.open_connections()) {
            Admit::Accept(admitted) => Some((incoming, admitted)),
            Admit::Retry => {
                tracing::debug!(%remote, "many handshakes in progress: asking for address validation");
                // `may_retry` was checked above, so this cannot fail.
                let _ = incoming.retry();
                None
            }
            Admit::Refuse(reason) => {
                tracing::info!(%remote, reason, "connection refused");
                incoming.refuse();
                None
            }
        }
    }

    /// A handle that replaces the TLS certificate for new connections.
    pub fn tls_reloader(&self) -> TlsReloader {
        TlsReloader {
            endpoint: self.endpoint.clone(),
            transport: self.transport.clone(),
            shutdown: self.shutdown.clone(),
            session_cache: self.shared.config.tls_session_cache,
        }
    }

    /// Accepts connections until a shutdown is requested, then shuts down gracefully.
    pub async fn run(self) {
        let mut stop = self.shutdown.subscribe();
        let mut connections = JoinSet::new();
        let upkeep = tokio::spawn(upkeep(self.shared.clone(), self.shutdown.subscribe()));
        tracing::info!(addr = %self.local_addr(), region = %self.shared.config.region, "listening");
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let Some((incoming, admitted)) = self.admit(incoming) else { continue };
                    let task = handle_incoming(
                        incoming,
                        admitted,
                        self.shared.clone(),
                        self.shutdown.subscribe(),
                    );
                    connections.spawn(task);
                }
                // Reap finished connection tasks so the set does not grow with history.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = stopped(&mut stop) => break,
            }
        }
        tracing::info!(connections = connections.len(), "shutting down");
        self.shutdown.send_replace(true);
        // Refuse new connections while the existing ones say goodbye.
        self.endpoint.set_server_config(None);
        let grace = self.shared.config.shutdown_grace * 2;
        if tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            connections.abort_all();
        }
        upkeep.abort();
        self.endpoint.close(CloseCode::GoingAway.to_u32().into(), b"server shutting down");
        let _ = tokio::time::timeout(self.shared.config.shutdown_grace, self.endpoint.wait_idle())
            .await;
        tracing::info!("shut down");
    }
}

async fn upkeep(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.config.maintenance_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                shared.sessions.expire(now, shared.config.resume_window, &shared.config);
                shared.registry.maintain(now, &shared.config);
            }
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Completes once a shutdown was requested (or the server is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await of the caller.
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_udp_socket_gets_the_receive_buffer_asked_for() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        // 128 KiB is below every Linux default cap (`net.core.rmem_max` is 208 KiB or more).
        let socket = bind_udp(addr, 128 * 1024).unwrap();
        let granted = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        assert!(granted >= 128 * 1024, "granted {granted}");
        assert_ne!(socket.local_addr().unwrap().port(), 0);
        // 0 keeps the system's default, whatever it is.
        let default = bind_udp(addr, 0).unwrap();
        let plain = std::net::UdpSocket::bind(addr).unwrap();
        assert_eq!(
            socket2::SockRef::from(&default).recv_buffer_size().unwrap(),
            socket2::SockRef::from(&plain).recv_buffer_size().unwrap()
        );
    }
}
