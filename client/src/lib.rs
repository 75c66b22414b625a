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
//! ```
//!
//! - `builder`: [`ClientBuilder`], its settings and defaults (each with the reason for it), TLS
//!   and QUIC configuration, and the connect sequence.
//! - `connection`: the session over one connection: the handshake, the writer and reader tasks
//!   of the session stream, the map of requests waiting for their response, and the supervisor
//!   that fails them and emits [`Event::Disconnected`] when the connection ends.
//! - `room_stream`: the reader of each room stream, which turns room frames into events and
//!   keeps successive memberships of one room in order.
//! - `client`: [`Client`], one typed method per request.
//! - `event`: [`Event`] and the [`Events`] receiver.
//! - `error`: [`ConnectError`] and [`RequestError`].
//!
//! # What it does not do
//!
//! - It does not reconnect or resume a session: when the connection ends, the [`Client`] is
//!   done; make a new one. (QUIC itself survives address changes such as a Wi-Fi to LTE switch.)
//! - It does not skip certificate verification. It trusts the CAs given to the builder or,
//!   with none, the system's roots.
//! - It keeps no history: it delivers what the server sends while the client is in a room.
//! - It installs no `tracing` subscriber; applications do.
//!
//! The protocol types the API uses are re-exported here; the whole protocol crate is
//! [`protocol`].

mod builder;
mod client;
mod connection;
mod error;
mod event;
mod framed;
mod room_stream;

pub use chatroom_protocol as protocol;
pub use chatroom_protocol::{
    Attributes, CloseCode, ErrorCode, ErrorFrame, JoinedRoom, LeaveReason, MemberInfo, MemberPage,
    Priority, PrivateMessage, Role, RoomMessage, SessionLimits,
};
pub use rustls::pki_types::CertificateDer;

pub use crate::builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_EVENT_CAPACITY, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
};
pub use crate::client::{Client, SendOptions};
pub use crate::error::{ConnectError, RequestError};
pub use crate::event::{Event, Events};
