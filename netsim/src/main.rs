//! `netsim`: network impairment from the command line. See `netsim --help`.
//!
//! Subcommands live in `cli/`, one module each: `proxy` and `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod cli;

/// Network impairment for testing programs on bad networks.
#[derive(Debug, Parser)]
#[command(name = "netsim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Relay UDP between clients and a server, impairing the link (loss, delay, jitter,
    /// reordering, duplication, corruption, bandwidth, blackouts, NAT rebinding).
    ///
    /// Symmetric flags (--loss 2%) apply to both directions; --up-… (client→server) and
    /// --down-… (server→client) variants set one direction and win. Counters are printed every
    /// --stats-every and on Ctrl-C. Per-packet fates are logged with
    /// RUST_LOG=chatroom_netsim=trace.
    // Boxed: its many flags make it far larger than the other variants.
    Proxy(Box<cli::proxy::ProxyArgs>),
    /// Run scenario files: an in-process chat server (or --server), clients behind impaired
    /// links sending tagged messages, and a report of what arrived.
    ///
    /// Progress goes to stderr, reports to stdout (--json: one object per scenario per line).
    /// Exits with 1 if any scenario missed an expectation of its [expect] table, 2 if one
    /// could not run.
    Run(cli::run::RunArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    // Usage errors exit with status 2, --help and --version with 0.
    let cli = Cli::parse();
    // rustls warns about every session ticket it declines for 0-RTT; in a run with dozens of
    // reconnections that drowns the progress lines.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,rustls=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match cli.command {
        Command::Proxy(args) => cli::proxy::run(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Run(args) => cli::run::run(args).await,
    }
}
