//! The errors of the client: one enum per operation, [`ConnectError`] for
//! [`ClientBuilder::connect`](crate::ClientBuilder::connect) and [`RequestError`] for every request
//! a [`Client`](crate::Client) makes.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use chatroom_protocol::{CloseCode, DecodeError, EncodeError, ErrorCode, ErrorFrame, IdError};

/// Why a connection could not be established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The user id given to the builder is not a valid user id.
    #[error("invalid user id: {0}")]
    InvalidUser(#[source] IdError),
    /// A CA file could not be read or is not PEM.
    #[error("cannot read CA certificates from {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: rustls::pki_types::pem::Error,
    },
    /// A CA file holds no certificate.
    #[error("no certificate in CA file {path}")]
    NoCaCertificates {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the TLS configuration (a CA certificate it cannot parse, or no usable
    /// system roots).
    #[error("TLS configuration: {0}")]
    Tls(#[source] rustls::Error),
    /// The TLS configuration cannot be used for QUIC.
    #[error("TLS configuration unusable for QUIC: {0}")]
    QuicTls(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
    /// A timeout given to the builder is too large for QUIC.
    #[error("idle timeout out of range: {0}")]
    InvalidTimeout(#[source] quinn::VarIntBoundsExceeded),
    /// The server address could not be resolved (it must be `HOST:PORT`).
    #[error("cannot resolve {server}: {source}")]
    Resolve {
        /// The address as given.
        server: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The server name resolved to no address.
    #[error("{server} resolved to no address")]
    NoAddress {
        /// The address as given.
        server: String,
    },
    /// The local UDP socket could not be bound.
    #[error("cannot bind a UDP socket: {0}")]
    Bind(#[source] io::Error),
    /// quinn refused to start the connection (e.g. an invalid TLS server name).
    #[error("cannot start the connection: {0}")]
    Connect(#[source] quinn::ConnectError),
    /// Connecting took longer than the connect timeout.
    #[error("no session within {0:?}")]
    Timeout(Duration),
    /// The QUIC connection failed (handshake, certificate, network).
    #[error("connection failed: {0}")]
    Connection(#[source] quinn::ConnectionError),
    /// The server closed the connection with an application close code before the session was
    /// open.
    #[error("server closed the connection: {code}: {reason}")]
    Closed {
        /// The close code.
        code: CloseCode,
        /// The server's reason phrase.
        reason: String,
    },
    /// The server refused the Hello (authentication, version, bad user id).
    #[error("rejected by the server: {0}")]
    Rejected(ErrorFrame),
    /// The server speaks another protocol version.
    #[error("server speaks protocol version {server}, this client speaks {client}")]
    UnsupportedVersion {
        /// The server's version.
        server: u32,
        /// This client's version.
        client: u32,
    },
    /// The Hello could not be encoded (a user id, token or agent that is far too long).
    #[error("cannot encode the hello: {0}")]
    Encode(#[source] EncodeError),
    /// The server sent bytes that are not a valid frame.
    #[error("invalid frame from the server: {0}")]
    Protocol(#[source] DecodeError),
    /// The server sent a valid frame that does not belong there, or ended the session stream
    /// before its welcome.
    #[error("protocol violation by the server: {0}")]
    UnexpectedFrame(String),
    /// The session stream failed for a reason other than the connection ending.
    #[error("session stream failed: {0}")]
    Stream(String),
}

impl ConnectError {
    /// The protocol error code, when the server refused the session with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ConnectError::Rejected(frame) => Some(frame.code),
            _ => None,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server answered with an error.
    #[error("{0}")]
    Server(ErrorFrame),
    /// The client is done (it was closed, gave up reconnecting, or the server refused it for
    /// good): the request was not sent. The string says why.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The connection was lost after the request was sent and before its answer arrived: its
    /// outcome is unknown (the server may or may not have carried it out). The client
    /// reconnects by itself; retry if the request is safe to repeat. The string says why the
    /// connection ended.
    #[error("connection lost before the answer (outcome unknown): {0}")]
    ConnectionLost(String),
    /// No answer within the request timeout
    /// ([`ClientBuilder::request_timeout`](crate::ClientBuilder::request_timeout)), waiting for a
    /// session while reconnecting included. With `sent`, the request had gone out and its
    /// outcome is unknown; without, it was never sent.
    #[error("no answer within {timeout:?}{}", if *sent { " (outcome unknown)" } else { " (not sent)" })]
    Timeout {
        /// The request timeout.
        timeout: Duration,
        /// Whether the request had been sent.
        sent: bool,
    },
    /// The request could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[source] EncodeError),
    /// The encoded request is larger than the server accepts
    /// ([`SessionLimits::max_frame_len`](chatroom_protocol::SessionLimits::max_frame_len)); it
    /// was not sent, because the server would close the connection.
    #[error("request of {len} bytes exceeds the server's maximum of {max}")]
    TooLarge {
        /// The encoded frame body length.
        len: usize,
        /// The server's maximum.
        max: usize,
    },
    /// The server answered with a response of the wrong kind.
    #[error("unexpected response: expected {expected}, got {got}")]
    UnexpectedResponse {
        /// The response kind the request calls for.
        expected: &'static str,
        /// What arrived instead.
        got: &'static str,
    },
}

impl RequestError {
    /// The protocol error code, when the server answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RequestError::Server(frame) => Some(frame.code),
            _ => None,
        }
    }
}

impl From<EncodeError> for RequestError {
    fn from(e: EncodeError) -> Self {
        RequestError::Encode(e)
    }
}
