//! Connection settings and the connect sequence: resolve the server, configure TLS and QUIC,
//! handshake, then open the session with Hello/Welcome.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chatroom_protocol::{ALPN, Hello, PROTOCOL_VERSION, validate_user_id};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, IdleTimeout, TransportConfig, VarInt};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::BuilderVerifierExt;

use crate::client::Client;
use crate::connection::{Session, handshake};
use crate::error::ConnectError;
use crate::event::Events;

/// The default [`ClientBuilder::connect_timeout`]: 10 s.
///
/// Long enough for a handshake that needs several retransmissions on a lossy mobile link (quinn
/// probes again after about 1 s, then 2 s, 4 s), short enough that a person sees a failure
/// instead of a hang.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default [`ClientBuilder::idle_timeout`]: 30 s, quinn's own default. The connection is
/// declared dead after this long without a packet from the server; the effective value is the
/// smaller of the client's and the server's.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default [`ClientBuilder::keep_alive`]: 10 s, well below both the idle timeout and the
/// UDP binding timeouts of common NATs (often 30 s), so an idle client keeps its path open.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The default [`ClientBuilder::event_capacity`]: 1024 events, enough to absorb a burst in a
/// busy room while the application renders.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// How many room streams the server may have open to this client at once. A stream counts until
/// it is read to its end, so this is more than the rooms a connection may be in.
const MAX_ROOM_STREAMS: u32 = 1024;

/// Configures and opens a connection to a chatroom server.
///
/// ```no_run
/// # async fn example() -> Result<(), chatroom_client::ConnectError> {
/// let (client, mut events) = chatroom_client::ClientBuilder::new("127.0.0.1:4433")
///     .ca_pem_file("chatroom-data/dev-cert.pem")
///     .user("alice")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    server: String,
    server_name: String,
    ca_files: Vec<PathBuf>,
    ca_ders: Vec<CertificateDer<'static>>,
    user: String,
    token: Option<String>,
    agent: String,
    connect_timeout: Duration,
    idle_timeout: Duration,
    keep_alive: Duration,
    event_capacity: usize,
}

impl ClientBuilder {
    /// A builder for the server at `server`, given as `HOST:PORT` (a name or an IP address).
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            server_name: "localhost".into(),
            ca_files: Vec::new(),
            ca_ders: Vec::new(),
            user: String::new(),
            token: None,
            agent: concat!("chatroom-client/", env!("CARGO_PKG_VERSION")).into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            keep_alive: DEFAULT_KEEP_ALIVE,
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }

    /// The name the server's certificate must be valid for. Default `localhost`.
    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = name.into();
        self
    }

    /// Trusts the certificates in this PEM file (a CA, or the server's self-signed certificate).
    /// May be given several times. The file is read by [`connect`](Self::connect).
    ///
    /// Once any CA is given, only the given CAs are trusted; with none, the system's roots are.
    pub fn ca_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Trusts this DER certificate, like [`ca_pem_file`](Self::ca_pem_file).
    pub fn ca_der(mut self, cert: CertificateDer<'static>) -> Self {
        self.ca_ders.push(cert);
        self
    }

    /// The user id to act as. Required.
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.into();
        self
    }

    /// A credential for the server's authentication. Default none.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    /// A description of the client software, for the server's logs. Default
    /// `chatroom-client/VERSION`.
    pub fn agent(mut self, agent: &str) -> Self {
        self.agent = agent.into();
        self
    }

    /// How long [`connect`](Self::connect) may take in all (resolution, QUIC handshake, Hello).
    /// Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The QUIC idle timeout. Default [`DEFAULT_IDLE_TIMEOUT`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How often to send a keep-alive when nothing else is sent. Default
    /// [`DEFAULT_KEEP_ALIVE`].
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// How many events may wait in [`Events`] before the client stops reading room streams (see
    /// [`Events`] for what that means). Default [`DEFAULT_EVENT_CAPACITY`].
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Connects, opens a session and returns the client and its events.
    pub async fn connect(self) -> Result<(Client, Events), ConnectError> {
        validate_user_id(&self.user).map_err(ConnectError::InvalidUser)?;
        let mut config = quinn::ClientConfig::new(Arc::new(
            QuicClientConfig::try_from(self.tls_config()?).map_err(ConnectError::QuicTls)?,
        ));
        config.transport_config(Arc::new(self.transport_config()?));
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, self.establish(config)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout(timeout)),
        }
    }

    async fn establish(
        self,
        config: quinn::ClientConfig,
    ) -> Result<(Client, Events), ConnectError> {
        let addr = self.resolve().await?;
        let bind: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let endpoint = Endpoint::client(bind).map_err(ConnectError::Bind)?;
        let connection = endpoint
            .connect_with(config, addr, &self.server_name)
            .map_err(ConnectError::Connect)?
            .await
            .map_err(|e| match e {
                quinn::ConnectionError::ApplicationClosed(close) => ConnectError::Closed {
                    code: crate::connection::close_code(close.error_code),
                    reason: String::from_utf8_lossy(&close.reason).into_owned(),
                },
                other => ConnectError::Connection(other),
            })?;
        let hello = Hello {
            version: PROTOCOL_VERSION,
            user: self.user,
            token: self.token,
            agent: self.agent,
            resume: None,
        };
        let (send, reader, welcome) = handshake(&connection, hello).await?;
        let (session, events) =
            Session::start(endpoint, connection, send, reader, welcome, self.event_capacity);
        Ok((Client::new(session), events))
    }

    async fn resolve(&self) -> Result<SocketAddr, ConnectError> {
        let mut addrs = tokio::net::lookup_host(self.server.as_str())
            .await
            .map_err(|source| ConnectError::Resolve { server: self.server.clone(), source })?;
        addrs.next().ok_or_else(|| ConnectError::NoAddress { server: self.server.clone() })
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, ConnectError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(ConnectError::Tls)?;
        let builder = if self.ca_files.is_empty() && self.ca_ders.is_empty() {
            builder.with_platform_verifier().map_err(ConnectError::Tls)?
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = builder.with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore, ConnectError> {
        let mut roots = RootCertStore::empty();
        for path in &self.ca_files {
            let ca_file_error = |source| ConnectError::CaFile { path: path.clone(), source };
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(ca_file_error)?;
            if certs.is_empty() {
                return Err(ConnectError::NoCaCertificates { path: path.clone() });
            }
            for cert in certs {
                roots.add(cert).map_err(ConnectError::Tls)?;
            }
        }
        for cert in &self.ca_ders {
            roots.add(cert.clone()).map_err(ConnectError::Tls)?;
        }
        Ok(roots)
    }

    fn transport_config(&self) -> Result<TransportConfig, ConnectError> {
        let mut transport = TransportConfig::default();
        let idle =
            IdleTimeout::try_from(self.idle_timeout).map_err(ConnectError::InvalidTimeout)?;
        transport
            .max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(self.keep_alive))
            // The server opens no bidirectional streams; it opens one unidirectional per room.
            .max_concurrent_bidi_streams(VarInt::from_u32(0))
            .max_concurrent_uni_streams(VarInt::from_u32(MAX_ROOM_STREAMS));
        Ok(transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let builder = ClientBuilder::new("example.org:4433");
        assert_eq!(builder.server_name, "localhost");
        assert_eq!(builder.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert!(builder.keep_alive < builder.idle_timeout);
    }

    #[test]
    fn the_tls_config_offers_the_alpn() {
        let config = ClientBuilder::new("x:1").tls_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![ALPN.to_vec()]);
    }

    #[test]
    fn a_missing_ca_file_is_reported() {
        let err = ClientBuilder::new("x:1").ca_pem_file("/nonexistent/ca.pem").tls_config();
        assert!(matches!(err, Err(ConnectError::CaFile { .. })), "{err:?}");
    }

    #[tokio::test]
    async fn an_invalid_user_fails_before_connecting() {
        let err = ClientBuilder::new("127.0.0.1:9").user("not valid").connect().await;
        assert!(matches!(err, Err(ConnectError::InvalidUser(_))), "{err:?}");
    }
}
