//! Network impairment for testing the chatroom, or any UDP program, on bad networks.
//!
//! ```text
//!            ┌──────────────────── netsim proxy ────────────────────┐
//! client ◀══▶│ listen socket ◀▶ model (seeded) ◀▶ scheduler ◀▶ NAT │◀══▶ server
//!            │                  loss · bursts · delay · jitter ·   │     (sees the mapping's
//!            │                  reorder · dup · corrupt · rate ·   │      address, which a
//!            │                  blackouts · phases · rebinds       │      rebind changes)
//!            └──────────────────────────────────────────────────────┘
//! ```
//!
//! - [`model`]: the impairment model, sans-IO: packets and `now` in, each packet's fate out
//!   (drop and why, or deliver when, with copies and corruption), plus when the NAT rebinds.
//!   Seeded, so a run repeats exactly; unit-tested without sockets.
//! - [`proxy`]: a UDP relay between real sockets that puts every packet through the model,
//!   with one NAT mapping per client and a [`ProxyHandle`](proxy::ProxyHandle) to change the
//!   link while traffic flows.
//! - [`units`]: the text forms of durations (`250ms`), probabilities (`2%`) and rates
//!   (`750kbit`) used by the command line and scenario files.
//! - [`scenario`]: scenario files (TOML): links, groups of chat clients, the server's
//!   configuration and the expected results.
//! - [`runner`]: runs a scenario with the real chat server and client library, each client
//!   behind its proxy, and reports.
//! - [`ledger`]: the run's accounting as plain state: what was sent, owed, delivered,
//!   duplicated, reordered, reported missing or lost, latencies, recovery, migrations.
//! - [`report`]: the report of a run (JSON or text) and the summary table of several.
//!
//! The `netsim` binary runs the proxy (`netsim proxy --help`) and scenarios
//! (`netsim run --help`).
//!
//! What it does **not** do: understand what it carries (it knows nothing about QUIC or chat),
//! shape by anything but packet count and bytes (no per-flow fairness, no ECN), model a NAT
//! beyond mappings that rebind (mappings never expire), or give timing guarantees finer than
//! the tokio timer (about a millisecond). Fates are reproducible from the seed for a given
//! sequence of packets; over real sockets the arrival order of packets, and so the exact
//! sequence, can vary between runs.
//!
//! Starting a proxy in a test, in front of a server on `server_addr`:
//!
//! ```no_run
//! # use std::net::SocketAddr;
//! # async fn example(server_addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use chatroom_netsim::model::{Impairment, LinkConfig};
//! use chatroom_netsim::proxy::{Proxy, ProxyConfig};
//!
//! let link = LinkConfig::symmetric(Impairment {
//!     loss: 0.02,
//!     max_consecutive_drops: Some(3),
//!     delay: Duration::from_millis(50),
//!     ..Impairment::default()
//! });
//! let config = ProxyConfig::new("127.0.0.1:0".parse()?, server_addr).with_link(link).with_seed(7);
//! let proxy = Proxy::start(config).await?;
//! // Point the client at `proxy.local_addr()` instead of the server. Then, while it runs:
//! proxy.blackout_now(Duration::from_secs(2));
//! proxy.rebind_now()?;
//! println!("{:?}", proxy.stats());
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```

pub mod ledger;
pub mod model;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod units;
