//! Client settings, each with its default and the reason for it, the TLS and QUIC
//! configuration, and [`ClientBuilder::connect`].
//!
//! The defaults are chosen for phones on mobile networks: paths that die for seconds at a time
//! (tunnels, lifts, handovers), NATs that forget idle UDP mappings, and many clients coming back
//! at once after a server restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chatroom_protocol::{ALPN, validate_user_id};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::BuilderVerifierExt;

use crate::client::Client;
use crate::congestion::FloorCubicConfig;
use crate::connector::{Connector, Identity};
use crate::error::ConnectError;
use crate::event::Events;
use crate::path::PathSettings;
use crate::session::{SessionState, Settings};

/// The default [`ClientBuilder::connect_timeout`]: 10 s.
///
/// Long enough for a handshake that needs several retransmissions on a lossy mobile link (quinn
/// probes again after about 1 s, then 2 s, 4 s), short enough that a person sees a failure
/// instead of a hang, and that a reconnection attempt towards a dead address is abandoned for a
/// fresh one (resolved again) in reasonable time.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default [`ClientBuilder::idle_timeout`]: 30 s, quinn's own default and the server's.
///
/// The connection is declared dead after this long without a packet from the server; the
/// effective value is the smaller of the client's and the server's. Up to then, a path that
/// comes back (a tunnel ends) carries the same connection on, nothing lost and no reconnection;
/// after it, the client reconnects and resumes its session. Much longer would keep a client
/// waiting on a path that is gone; much shorter would turn every short blackout into a
/// reconnection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default [`ClientBuilder::keep_alive`]: 5 s.
///
/// A keep-alive is sent only when nothing was received for this long. Well below the UDP
/// mapping timeouts of common NATs (often 30 s, sometimes less on carrier-grade NATs), so an
/// idle client stays reachable; and every keep-alive is acknowledged, so even an idle client
/// notices a dead path within this plus [`DEFAULT_PATH_PROBE_AFTER`] (about 8 s) and starts
/// probing. (The server's own keep-alive, 10 s by default, is too slow for that.) The cost is
/// two small packets every 5 s on an otherwise silent connection.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// The default first back-off delay of [`ClientBuilder::reconnect_backoff`]: 100 ms.
///
/// A blip (a dropped Wi-Fi frame burst, a NAT rebind) is repaired almost at once, while a
/// client whose attempts fail backs off quickly: 0.1, 0.2, 0.4 ... s.
pub const DEFAULT_RECONNECT_INITIAL: Duration = Duration::from_millis(100);

/// The default longest back-off delay of [`ClientBuilder::reconnect_backoff`]: 10 s.
///
/// A client that has been offline for a while tries again at least this often, so it is back
/// within seconds of the network or the server; and a server coming back from a restart sees
/// each client at most every 10 s, not in a tight loop.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(10);

/// The default [`ClientBuilder::reconnect_jitter`]: 1.0, "full jitter".
///
/// Each delay is drawn uniformly between zero and the back-off delay. When a server restarts,
/// every client loses its connection at the same instant; without jitter they would all come
/// back in the same few milliseconds, attempt after attempt (a thundering herd). Full jitter
/// spreads them over the whole back-off window, which is what keeps a restarted server from
/// being knocked over again, at the price of an average delay of half the window.
pub const DEFAULT_RECONNECT_JITTER: f64 = 1.0;

/// The default [`ClientBuilder::request_timeout`]: 30 s.
///
/// Covers waiting for a session while reconnecting, so that a request made in a tunnel goes
/// out when the client is back, if that is within half a minute; longer than that, a person
/// is better told it failed.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The default [`ClientBuilder::path_probe_after`]: 3 s.
///
/// Silence after a packet that needs an answer, before the path is suspect and probed. Above
/// the round trip of the slowest paths the client is meant for (satellite, about 600 ms; a
/// congested EDGE link, 1 to 2 s) plus the server's acknowledgement delay, so a slow but
/// healthy path is not probed; well below the several seconds QUIC's own probe timer reaches
/// after a few losses.
pub const DEFAULT_PATH_PROBE_AFTER: Duration = Duration::from_secs(3);

/// The default [`ClientBuilder::path_probe_interval`]: 1 s.
///
/// While the path is suspect, a probe goes out this often, so traffic flows again within
/// about a second (plus a round trip) of the link coming back. Each probe is one packet from a
/// fresh UDP port.
pub const DEFAULT_PATH_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The default [`ClientBuilder::min_send_window`]: 32 KiB.
///
/// About a hundred chat messages: more than a person sends during the longest tunnel the
/// client rides out without reconnecting, plus keep-alives and probes, so that the packet that
/// tells the server the path is back never waits behind a collapsed window.
pub const DEFAULT_MIN_SEND_WINDOW: u64 = 32 * 1024;

/// The default [`ClientBuilder::network_change_timeout`]: 2 s.
///
/// After [`Client::network_changed`], the old connection gets this long to answer on the new
/// path (several round trips of a mobile link) before the client gives up on it and
/// reconnects, instead of waiting for the idle timeout.
pub const DEFAULT_NETWORK_CHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The default [`ClientBuilder::event_capacity`]: 1024 events, enough to absorb a burst in a
/// busy room while the application renders.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// How many room streams the server may have open to this client at once. A stream counts until
/// it is read to its end, so this is more than the rooms a connection may be in.
const MAX_ROOM_STREAMS: u32 = 1024;

/// Configures and opens a connection to a chatroom server.
///
/// Every setting has a default (see the `DEFAULT_*` constants for the reasons); only
/// [`user`](Self::user) is required.
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
    min_send_window: u64,
    event_capacity: usize,
    reconnect: bool,
    reconnect_initial: Duration,
    reconnect_max: Duration,
    reconnect_jitter: f64,
    max_reconnect_duration: Option<Duration>,
    request_timeout: Duration,
    path: PathSettings,
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
            min_send_window: DEFAULT_MIN_SEND_WINDOW,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            reconnect: true,
            reconnect_initial: DEFAULT_RECONNECT_INITIAL,
            reconnect_max: DEFAULT_RECONNECT_MAX,
            reconnect_jitter: DEFAULT_RECONNECT_JITTER,
            max_reconnect_duration: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            path: PathSettings {
                probe_after: Some(DEFAULT_PATH_PROBE_AFTER),
                probe_interval: DEFAULT_PATH_PROBE_INTERVAL,
                network_change_timeout: DEFAULT_NETWORK_CHANGE_TIMEOUT,
            },
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

    /// How long [`connect`](Self::connect), and each reconnection attempt, may take in all
    /// (resolution, QUIC handshake, Hello). Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The QUIC idle timeout: how long a silent path is given to come back before the client
    /// reconnects. Default [`DEFAULT_IDLE_TIMEOUT`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long without receiving anything before a keep-alive is sent. Keep it below the
    /// idle timeout. Default [`DEFAULT_KEEP_ALIVE`].
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

    /// Whether to reconnect (and resume the session) when the connection is lost. Default
    /// `true`. Without, a lost connection ends the client with
    /// [`Event::Disconnected`](crate::Event::Disconnected).
    pub fn reconnect(mut self, enabled: bool) -> Self {
        self.reconnect = enabled;
        self
    }

    /// The back-off between reconnection attempts: `initial` first, doubling after each
    /// failed attempt up to `max`. It starts over once a connection has lasted `max`. Default
    /// [`DEFAULT_RECONNECT_INITIAL`] and [`DEFAULT_RECONNECT_MAX`].
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_initial = initial;
        self.reconnect_max = max;
        self
    }

    /// The random part of each back-off delay, from 0 (none: exactly the back-off) to 1 (the
    /// delay is drawn between zero and the back-off). Default [`DEFAULT_RECONNECT_JITTER`].
    pub fn reconnect_jitter(mut self, fraction: f64) -> Self {
        self.reconnect_jitter = fraction;
        self
    }

    /// Give up reconnecting once an outage has lasted this long, ending the client with
    /// [`Event::Disconnected`](crate::Event::Disconnected); `None` keeps trying. Default
    /// `None`: a chat app stays signed in until the user leaves.
    pub fn max_reconnect_duration(mut self, limit: Option<Duration>) -> Self {
        self.max_reconnect_duration = limit;
        self
    }

    /// The longest a request may take, from the call to the answer, waiting for a session
    /// while reconnecting included; it then fails with
    /// [`RequestError::Timeout`](crate::RequestError::Timeout). Default
    /// [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long the client waits for an answer to a packet that needs one before it considers
    /// the path suspect and probes it (see [`path_probe_interval`](Self::path_probe_interval));
    /// `None` disables probing. Default [`DEFAULT_PATH_PROBE_AFTER`].
    pub fn path_probe_after(mut self, silence: Option<Duration>) -> Self {
        self.path.probe_after = silence;
        self
    }

    /// How often a suspect path is probed: each probe moves the connection to a fresh UDP
    /// socket, which sends a packet at once (outside QUIC's probe back-off) and makes the
    /// server validate the path, so traffic resumes within about a round trip of the link
    /// coming back. Default [`DEFAULT_PATH_PROBE_INTERVAL`].
    pub fn path_probe_interval(mut self, interval: Duration) -> Self {
        self.path.probe_interval = interval;
        self
    }

    /// The smallest the client's QUIC send (congestion) window gets, in bytes; it is also the
    /// window a connection starts with, if larger than CUBIC's (about 14 KiB). Above it, CUBIC
    /// as usual. After an outage the window would otherwise collapse to two packets,
    /// already filled by what was sent during the outage, and the packets that revive the
    /// path would wait for QUIC's backed-off probe timer. A chat client sends too little for
    /// this to load any network. Default [`DEFAULT_MIN_SEND_WINDOW`].
    pub fn min_send_window(mut self, bytes: u64) -> Self {
        self.min_send_window = bytes;
        self
    }

    /// After [`Client::network_changed`], how long the connection gets to answer on the new
    /// path before the client reconnects instead. Default [`DEFAULT_NETWORK_CHANGE_TIMEOUT`].
    pub fn network_change_timeout(mut self, timeout: Duration) -> Self {
        self.path.network_change_timeout = timeout;
        self
    }

    /// Connects, opens a session and returns the client and its events.
    ///
    /// This first connection is not retried: its failure is returned. From then on, lost
    /// connections are replaced by the client itself (see [`Client`]).
    pub async fn connect(self) -> Result<(Client, Events), ConnectError> {
        validate_user_id(&self.user).map_err(ConnectError::InvalidUser)?;
        let mut config = quinn::ClientConfig::new(Arc::new(
            QuicClientConfig::try_from(self.tls_config()?).map_err(ConnectError::QuicTls)?,
        ));
        config.transport_config(Arc::new(self.transport_config()?));
        let timeout = self.connect_timeout;
        let settings = self.settings();
        let identity = Identity {
            user: self.user.clone(),
            token: self.token.clone(),
            agent: self.agent.clone(),
        };
        let connect = async {
            let connector =
                Connector::bind(self.server, self.server_name, config, identity, timeout).await?;
            SessionState::connect(connector, settings, self.event_capacity).await
        };
        let (state, events) = match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result?,
            Err(_) => return Err(ConnectError::Timeout(timeout)),
        };
        Ok((Client::new(state), events))
    }

    fn settings(&self) -> Settings {
        Settings {
            reconnect: self.reconnect,
            backoff_initial: self.reconnect_initial,
            backoff_max: self.reconnect_max,
            jitter: self.reconnect_jitter,
            max_reconnect_duration: self.max_reconnect_duration,
            request_timeout: self.request_timeout,
            path: self.path,
        }
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
        // Reconnections resume TLS from the tickets in the config's in-memory session store
        // (the config lives as long as the client) and send the Hello as 0-RTT data.
        config.enable_early_data = true;
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
            .max_concurrent_uni_streams(VarInt::from_u32(MAX_ROOM_STREAMS))
            // Per room: well below the server's send window (128 KiB by default), so that a room
            // whose events this client does not read holds only part of it and the other
            // rooms keep flowing; ample for chat even at satellite round trips.
            .stream_receive_window(VarInt::from_u32(64 * 1024))
            .congestion_controller_factory(Arc::new(FloorCubicConfig::new(self.min_send_window)));
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
        // An idle client hears back (or starts probing) well before common NAT timeouts.
        assert!(builder.keep_alive + DEFAULT_PATH_PROBE_AFTER < Duration::from_secs(30));
        assert!(DEFAULT_PATH_PROBE_AFTER < builder.idle_timeout);
        assert!(DEFAULT_RECONNECT_INITIAL < DEFAULT_RECONNECT_MAX);
        let settings = builder.settings();
        assert!(settings.reconnect);
        assert_eq!(settings.max_reconnect_duration, None);
        assert_eq!(settings.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn settings_are_carried_over() {
        let settings = ClientBuilder::new("x:1")
            .reconnect(false)
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(50))
            .reconnect_jitter(0.25)
            .max_reconnect_duration(Some(Duration::from_secs(9)))
            .request_timeout(Duration::from_secs(2))
            .path_probe_after(None)
            .path_probe_interval(Duration::from_millis(300))
            .network_change_timeout(Duration::from_millis(700))
            .settings();
        assert!(!settings.reconnect);
        assert_eq!(settings.backoff_initial, Duration::from_millis(5));
        assert_eq!(settings.backoff_max, Duration::from_millis(50));
        assert_eq!(settings.jitter, 0.25);
        assert_eq!(settings.max_reconnect_duration, Some(Duration::from_secs(9)));
        assert_eq!(settings.request_timeout, Duration::from_secs(2));
        assert_eq!(settings.path.probe_after, None);
        assert_eq!(settings.path.probe_interval, Duration::from_millis(300));
        assert_eq!(settings.path.network_change_timeout, Duration::from_millis(700));
    }

    #[test]
    fn the_tls_config_offers_the_alpn_and_early_data() {
        let config = ClientBuilder::new("x:1").tls_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![ALPN.to_vec()]);
        assert!(config.enable_early_data);
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
