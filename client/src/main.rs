//! `chatroom`: the command-line client of a chatroom server. See `chatroom --help`.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::args::Cli;
use crate::cli::output::Printer;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit with status 2, --help and --version with 0.
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let printer = Printer::new(cli.json);
    match cli::run::run(cli, printer).await {
        Ok(status) => status,
        Err(fatal) => {
            printer.error(&fatal.code, &fatal.message);
            ExitCode::FAILURE
        }
    }
}
