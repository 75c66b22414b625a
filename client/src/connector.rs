//! Making connections: resolve the server, QUIC and TLS over the client's one endpoint, then
//! the Hello/Welcome handshake, in 0-RTT when a TLS session ticket allows it.
//!
//! A client keeps one [`quinn::Endpoint`] and one TLS configuration for its whole life. The
//! TLS configuration's in-memory session store keeps the tickets the server issues, so every
//! reconnection resumes TLS: one round trip less, and with 0-RTT the Hello (carrying the resume
//! request) travels in the very first flight. Nothing but the Hello is ever sent as 0-RTT data:
//! it is safe to replay (see [`chatroom_protocol::ResumeRequest`]), requests are not, and the
//! session's writer starts only once the handshake is complete.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatroom_protocol::{
    ClientFrame, CloseCode, DecodeError, Hello, PROTOCOL_VERSION, ResumeRequest, ServerFrame,
    Welcome, encode,
};
use quinn::{
    AsyncUdpSocket, Connection, ConnectionError, Endpoint, EndpointConfig, ReadError, Runtime,
    SendStream, TokioRuntime, WriteError,
};
use tracing::debug;

use crate::connection::{close, close_code};
use crate::error::ConnectError;
use crate::framed::{FrameReader, ReadFrameError};

/// Who the client is, as every Hello says.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The user id.
    pub(crate) user: String,
    /// The credential, if any.
    pub(crate) token: Option<String>,
    /// The client software.
    pub(crate) agent: String,
}

/// Opens connections and sessions to one server, over one endpoint.
#[derive(Debug)]
pub(crate) struct Connector {
    endpoint: Endpoint,
    sockets: Mutex<Sockets>,
    config: quinn::ClientConfig,
    server: String,
    server_name: String,
    identity: Identity,
    connect_timeout: Duration,
}

/// The endpoint's UDP sockets: the one the server knows the client by, and a probe socket
/// while a quiet path is probed.
///
/// Probes alternate between a fresh socket (a new port: the server sees the connection
/// migrate and challenges the new path, and the acknowledgement of that challenge makes it
/// retransmit at once whatever the blackout ate) and the home socket (which quinn polls as its
/// previous socket meanwhile, so that whatever the server sends to the address it knows still
/// arrives). quinn keeps only its current and previous sockets open; alternating keeps the
/// home socket one of them.
struct Sockets {
    home: Arc<dyn AsyncUdpSocket>,
    /// The probe socket, while the endpoint uses it.
    probe: Option<Arc<dyn AsyncUdpSocket>>,
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("home", &self.home.local_addr().ok())
            .field("probe", &self.probe.as_ref().and_then(|p| p.local_addr().ok()))
            .finish()
    }
}

/// A connection whose session is open: the server's Welcome has arrived.
#[derive(Debug)]
pub(crate) struct Established {
    /// The connection.
    pub(crate) connection: Connection,
    /// The session stream's send side.
    pub(crate) send: SendStream,
    /// The session stream's receive side, after the Welcome.
    pub(crate) reader: FrameReader,
    /// The server's Welcome.
    pub(crate) welcome: Welcome,
    /// Whether the Hello went out as 0-RTT data and the server accepted it.
    pub(crate) zero_rtt: bool,
}

/// Why a handshake on a connection failed.
enum HandshakeError {
    /// The Hello was sent as 0-RTT data and the server rejected it: send it again.
    ZeroRttRejected,
    /// Anything else.
    Failed(ConnectError),
}

impl From<ConnectError> for HandshakeError {
    fn from(error: ConnectError) -> Self {
        HandshakeError::Failed(error)
    }
}

impl Connector {
    /// Resolves `server` once, to learn its address family, and binds the client's endpoint.
    pub(crate) async fn bind(
        server: String,
        server_name: String,
        config: quinn::ClientConfig,
        identity: Identity,
        connect_timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let addr = resolve(&server).await?;
        let ip: IpAddr = match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        let home = udp_socket(ip).map_err(ConnectError::Bind)?;
        let endpoint = Endpoint::new_with_abstract_socket(
            EndpointConfig::default(),
            None,
            home.clone(),
            Arc::new(TokioRuntime),
        )
        .map_err(ConnectError::Bind)?;
        let sockets = Mutex::new(Sockets { home, probe: None });
        Ok(Self { endpoint, sockets, config, server, server_name, identity, connect_timeout })
    }

    /// The user id every Hello carries.
    pub(crate) fn user(&self) -> &str {
        &self.identity.user
    }

    /// The endpoint.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Connects and opens a session (resuming one with `resume`), within the connect timeout.
    /// The server is resolved again each time: after a restart it may have moved.
    pub(crate) async fn establish(
        &self,
        resume: Option<ResumeRequest>,
    ) -> Result<Established, ConnectError> {
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, self.establish_now(resume)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout(timeout)),
        }
    }

    async fn establish_now(
        &self,
        resume: Option<ResumeRequest>,
    ) -> Result<Established, ConnectError> {
        let addr = resolve(&self.server).await?;
        let connecting = self
            .endpoint
            .connect_with(self.config.clone(), addr, &self.server_name)
            .map_err(ConnectError::Connect)?;
        let hello = Hello {
            version: PROTOCOL_VERSION,
            user: self.identity.user.clone(),
            token: self.identity.token.clone(),
            agent: self.identity.agent.clone(),
            resume,
        };
        let (connection, accepted) = match connecting.into_0rtt() {
            Ok(early) => early,
            Err(connecting) => {
                let connection = connecting.await.map_err(connect_error)?;
                let (send, reader, welcome) = finish(handshake(&connection, hello).await)?;
                return Ok(Established { connection, send, reader, welcome, zero_rtt: false });
            }
        };
        // 0-RTT: the Hello goes out now, before the handshake completes.
        match handshake(&connection, hello.clone()).await {
            Ok((send, reader, welcome)) => {
                // The Welcome can only be read once the handshake is done, so this resolves at
                // once; it also guarantees that nothing after the Hello is sent as 0-RTT.
                let zero_rtt = accepted.await;
                Ok(Established { connection, send, reader, welcome, zero_rtt })
            }
            Err(HandshakeError::ZeroRttRejected) => {
                debug!("0-RTT rejected; sending the hello again");
                if !accepted.await {
                    if let Some(reason) = connection.close_reason() {
                        return Err(connect_error(reason));
                    }
                }
                let (send, reader, welcome) = finish(handshake(&connection, hello).await)?;
                Ok(Established { connection, send, reader, welcome, zero_rtt: false })
            }
            Err(HandshakeError::Failed(error)) => Err(error),
        }
    }

    /// Moves the endpoint, and with it every connection, to a fresh UDP socket on the same local
    /// IP address. The server sees the connection migrate to a new port and validates the new
    /// path; nothing is lost. Returns the new local address.
    pub(crate) fn rebind(&self) -> io::Result<SocketAddr> {
        let mut sockets = self.sockets();
        let socket = udp_socket(sockets.home.local_addr()?.ip())?;
        let addr = socket.local_addr()?;
        self.endpoint.rebind_abstract(socket.clone())?;
        *sockets = Sockets { home: socket, probe: None };
        Ok(addr)
    }

    /// Probes the path: moves the connection to another socket, which makes quinn send a
    /// packet at once (see [`Sockets`]). Returns the address probed from.
    pub(crate) fn probe(&self) -> io::Result<SocketAddr> {
        let mut sockets = self.sockets();
        let next = match sockets.probe.take() {
            Some(_) => sockets.home.clone(),
            None => {
                let probe = udp_socket(sockets.home.local_addr()?.ip())?;
                sockets.probe = Some(probe.clone());
                probe
            }
        };
        let addr = next.local_addr()?;
        if let Err(error) = self.endpoint.rebind_abstract(next) {
            sockets.probe = None;
            return Err(error);
        }
        Ok(addr)
    }

    /// The path answered: the socket in use is the one the server knows from now on.
    pub(crate) fn settle(&self) {
        let mut sockets = self.sockets();
        if let Some(probe) = sockets.probe.take() {
            sockets.home = probe;
        }
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, Sockets> {
        // Every critical section leaves the sockets consistent.
        self.sockets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A UDP socket on `ip`, any port, ready for quinn.
fn udp_socket(ip: IpAddr) -> io::Result<Arc<dyn AsyncUdpSocket>> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
    socket.set_nonblocking(true)?;
    TokioRuntime.wrap_udp_socket(socket)
}

/// The first address `server` (`HOST:PORT`) resolves to.
async fn resolve(server: &str) -> Result<SocketAddr, ConnectError> {
    let mut addrs = tokio::net::lookup_host(server)
        .await
        .map_err(|source| ConnectError::Resolve { server: server.to_owned(), source })?;
    addrs.next().ok_or_else(|| ConnectError::NoAddress { server: server.to_owned() })
}

fn finish<T>(result: Result<T, HandshakeError>) -> Result<T, ConnectError> {
    result.map_err(|error| match error {
        HandshakeError::Failed(error) => error,
        // Only possible for streams opened before the handshake completed.
        HandshakeError::ZeroRttRejected => {
            ConnectError::Stream("0-RTT rejected on a completed handshake".into())
        }
    })
}

/// Opens the session stream, sends the Hello and reads the server's answer.
async fn handshake(
    connection: &Connection,
    hello: Hello,
) -> Result<(SendStream, FrameReader, Welcome), HandshakeError> {
    let hello = encode(&ClientFrame::Hello(hello)).map_err(ConnectError::Encode)?;
    let (mut send, recv) = connection.open_bi().await.map_err(connect_error)?;
    send.write_chunk(hello).await.map_err(|e| match e {
        WriteError::ZeroRttRejected => HandshakeError::ZeroRttRejected,
        WriteError::ConnectionLost(e) => connect_error(e).into(),
        other => ConnectError::Stream(other.to_string()).into(),
    })?;
    let mut reader = FrameReader::new(recv);
    let welcome = match reader.next::<ServerFrame>().await {
        Ok(Some(ServerFrame::Welcome(welcome))) => welcome,
        Ok(Some(ServerFrame::Rejected(error))) => return Err(ConnectError::Rejected(error).into()),
        Ok(Some(other)) => {
            let what = format!("{} before the welcome", crate::connection::frame_name(&other));
            return Err(ConnectError::UnexpectedFrame(what).into());
        }
        Ok(None) => {
            // The server ends the stream when it closes the connection; prefer its reason.
            if let Some(reason) = connection.close_reason() {
                return Err(connect_error(reason).into());
            }
            let what = "session stream ended before the welcome".into();
            return Err(ConnectError::UnexpectedFrame(what).into());
        }
        Err(ReadFrameError::Read(ReadError::ZeroRttRejected)) => {
            return Err(HandshakeError::ZeroRttRejected);
        }
        Err(ReadFrameError::Read(ReadError::ConnectionLost(e))) => {
            return Err(connect_error(e).into());
        }
        Err(ReadFrameError::Read(e)) => return Err(ConnectError::Stream(e.to_string()).into()),
        Err(ReadFrameError::Decode(e)) => {
            close(connection, decode_close_code(&e), &e.to_string());
            return Err(ConnectError::Protocol(e).into());
        }
    };
    if welcome.version != PROTOCOL_VERSION {
        close(connection, CloseCode::UnsupportedVersion, "unsupported protocol version");
        return Err(ConnectError::UnsupportedVersion {
            server: welcome.version,
            client: PROTOCOL_VERSION,
        }
        .into());
    }
    Ok((send, reader, welcome))
}

/// The close code for bytes that are not a valid frame.
pub(crate) fn decode_close_code(error: &DecodeError) -> CloseCode {
    match error {
        DecodeError::TooLarge { .. } => CloseCode::FrameTooLarge,
        _ => CloseCode::ProtocolViolation,
    }
}

/// The connect error for a connection that ended during the handshake.
fn connect_error(error: ConnectionError) -> ConnectError {
    match error {
        ConnectionError::ApplicationClosed(close) => ConnectError::Closed {
            code: close_code(close.error_code),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        other => ConnectError::Connection(other),
    }
}
