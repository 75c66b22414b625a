//! The chatroom server: a QUIC endpoint that keeps chat rooms in memory.
//!
//! ```text
//! quinn endpoint ─▶ connection task (session.rs) ─▶ requests ─▶ room (room.rs)
//!                                                               │ fan-out: frame encoded once
//!                                                               ▼
//!                      room stream ◀─ writer task ◀─ member's bounded queue (outbound.rs)
//! ```
//!
//! - [`server`]: binds the endpoint, accepts connections, runs room upkeep, shuts down
//!   gracefully.
//! - `session` (private): one connection: Hello/Welcome, then requests until it ends.
//! - [`room`]: one room's rules (members, roles, mutes, bans, sequence numbers), as plain state
//!   that takes `now`.
//! - [`registry`]: every room by id.
//! - [`outbound`]: per-member bounded queues and the writer tasks that drain them.
//! - [`config`]: every limit and timeout with its default; [`tls`]: certificates.
//!
//! What it does **not** do: keep anything on disk (rooms live in memory and end with the
//! process), store business data, or decide who a user is beyond what the configured
//! authentication says (without one it runs in open mode: any well-formed user id is accepted).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use chatroom_server::{Server, ServerConfig, TlsIdentity};
//!
//! let config = ServerConfig { listen: "127.0.0.1:0".parse()?, ..ServerConfig::default() };
//! let identity = TlsIdentity::self_signed()?;
//! let server = Server::bind(config, &identity)?;
//! println!("listening on {}", server.local_addr());
//! let stop = server.shutdown_handle();
//! tokio::spawn(server.run());
//! // ... later:
//! stop.shutdown();
//! # Ok(()) }
//! ```

pub mod admission;
pub mod auth;
pub mod config;
mod framed;
pub mod outbound;
mod ratelimit;
pub mod registry;
pub mod room;
pub mod server;
mod session;
pub mod sessions;
pub mod tls;
pub mod token;

pub use config::{ConfigError, ServerConfig};
pub use server::{Server, ServerError, ShutdownHandle, TlsReloader};
pub use tls::{TlsError, TlsIdentity};
