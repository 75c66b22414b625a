//! `netsim`: network impairment from the command line. See `netsim --help`.
//!
//! Subcommands live in `cli/`, one module each; `proxy` is the only one so far.

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
    Proxy(cli::proxy::ProxyArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Usage errors exit with status 2, --help and --version with 0.
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match cli.command {
        Command::Proxy(args) => cli::proxy::run(args).await,
    }
}
