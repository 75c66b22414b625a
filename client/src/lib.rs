//! The chatroom client library: connect to a chatroom server over QUIC, make requests, and
//! receive room content as events.
//!
//! ```no_run
//! use chatroom_client::{ClientBuilder, Event};
//!
//! # async fn example() -> anyhow::Result<()> {
//! let (client, mut events) = ClientBuilder::new("127.0.0.1:4433")
//!     .ca_pem_file("chatroom-data/dev-cert.pem")
//!     .user("alice")
//!     .connect()
//!     .await?;
//! client.join("lobby").await?;
//! client.send("lobby", "hello").await?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Message { room, message } => println!("[{room}] {}: {}", message.from, message.text),
//!         Event::Gap { room, from, to } => println!("[{room}] missed #{from}..=#{to}"),
//!         Event::Reconnecting { attempt, delay, .. } => println!("reconnecting ({attempt}) in {delay:?}"),
//!         Event::Disconnected { reason, .. } => {
//!             eprintln!("{reason}");
//!             break;
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! ```text
//! ClientBuilder::connect ─▶ resolve ─▶ QUIC + TLS (ALPN chatroom/1) ─▶ Hello ─▶ Welcome
//!                                                                          │
//! Client (cheap clones) ── requests ─▶ session stream ─▶ responses by id ◀─┤
//! Events ◀── one task per room stream ◀── server's unidirectional streams ◀┘
//!    ▲
//!    └── driver task: connection lost ─▶ back-off + jitter ─▶ Hello{resume token, last seq per
//!        room} (0-RTT) ─▶ resumed: streams replay what was missed │ fresh: rejoin, report gaps
//! ```
//!
//! - `builder`: [`ClientBuilder`], its settings and defaults (each with the reason for it), TLS
//!   and QUIC configuration.
//! - `connector`: one endpoint and TLS configuration for the client's life; each connection's
//!   QUIC handshake and Hello/Welcome, in 0-RTT when a session ticket allows; rebinding.
//! - `session`: the state shared across connections, and the driver that replaces a lost
//!   connection: back-off, resume or fresh session, rejoining rooms, holding requests meanwhile.
//! - `connection`: one connection: the writer and reader tasks of the session stream, the map
//!   of requests waiting for their response, and how the connection ended.
//! - `room_stream`: the reader of each room stream, which turns room frames into events and
//!   keeps successive memberships of one room in order.
//! - `tracker`: the last sequence number per room, which makes resumption, de-duplication and
//!   gap reports work (plain state, unit-tested).
//! - `policy`: the reconnection schedule and which endings are fatal (plain state that takes
//!   `now`, unit-tested).
//! - `path`: watching a live connection's path, probing it when it goes quiet, reconnecting
//!   after a network change that left it silent.
//! - `client`: [`Client`], one typed method per request, plus [`Client::rebind`] and
//!   [`Client::network_changed`].
//! - `event`: [`Event`] and the [`Events`] receiver.
//! - `error`: [`ConnectError`] and [`RequestError`].
//!
//! # Weak networks
//!
//! - A path that dies and comes back within the idle timeout keeps its connection: QUIC
//!   retransmits, and the client probes a quiet path from a fresh port so traffic resumes about
//!   a round trip after the link returns. Address changes migrate the connection.
//! - A lost connection is replaced: the client resumes its session within the server's resume
//!   window (same rooms, roles, attributes; nobody sees it leave; missed messages replayed), or
//!   starts a fresh one and joins its rooms again, reporting exactly which messages it missed.
//!   No message is delivered twice and none is missing silently.
//! - Every timeout is a builder setting with a default chosen for mobile networks.
//!
//! # What it does not do
//!
//! - It does not retry the first connection: [`ClientBuilder::connect`] reports its failure.
//! - It does not retry requests whose outcome is unknown ([`RequestError::ConnectionLost`]); the
//!   application decides, knowing which of its requests are safe to repeat.
//! - It does not skip certificate verification. It trusts the CAs given to the builder or,
//!   with none, the system's roots.
//! - It keeps no history: it delivers what the server sends while the client is in a room
//!   (and, after a reconnection, what the server can still replay).
//! - It installs no `tracing` subscriber; applications do.
//!
//! The protocol types the API uses are re-exported here; the whole protocol crate is
//! [`protocol`].

mod builder;
mod client;
mod congestion;
mod connection;
mod connector;
mod error;
mod event;
mod framed;
mod path;
mod policy;
mod room_stream;
mod session;
mod tracker;

pub use chatroom_protocol as protocol;
pub use chatroom_protocol::{
    Attributes, CloseCode, ErrorCode, ErrorFrame, JoinedRoom, LeaveReason, MemberInfo, MemberPage,
    Priority, PrivateMessage, Role, RoomMessage, SessionLimits,
};
pub use rustls::pki_types::CertificateDer;

pub use crate::builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_EVENT_CAPACITY, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_KEEP_ALIVE, DEFAULT_MIN_SEND_WINDOW, DEFAULT_NETWORK_CHANGE_TIMEOUT,
    DEFAULT_PATH_PROBE_AFTER, DEFAULT_PATH_PROBE_INTERVAL, DEFAULT_RECONNECT_INITIAL,
    DEFAULT_RECONNECT_JITTER, DEFAULT_RECONNECT_MAX, DEFAULT_REQUEST_TIMEOUT,
};
pub use crate::client::{Client, SendOptions};
pub use crate::error::{ConnectError, RequestError};
pub use crate::event::{Event, Events};
