//! `netsim run`: run scenario files one after the other, print a report for each and a summary
//! table, and exit non-zero if any missed its expectations.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chatroom_netsim::report::{Report, summary_table};
use chatroom_netsim::runner::{ExternalServer, RunOptions};
use chatroom_netsim::scenario::Scenario;
use clap::Args;

/// `netsim run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files (TOML), e.g. netsim/scenarios/*.toml
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Replace every scenario's seed
    #[arg(long)]
    seed: Option<u64>,
    /// Print each report as one JSON object on one line (the summary table then goes to stderr)
    #[arg(long)]
    json: bool,
    /// Use this running server instead of starting one in-process ([server] tables are then
    /// ignored; rooms get a unique suffix)
    #[arg(long, value_name = "ADDR", requires = "ca")]
    server: Option<SocketAddr>,
    /// PEM certificate (or CA) of --server
    #[arg(long, value_name = "PEM", requires = "server")]
    ca: Option<PathBuf>,
    /// The name --server's certificate is valid for
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    server_name: String,
    /// No progress lines on stderr
    #[arg(long, short)]
    quiet: bool,
}

/// Exit status when a scenario missed an expectation.
const FAILED_EXPECTATION: u8 = 1;
/// Exit status when a scenario could not be read or run.
const COULD_NOT_RUN: u8 = 2;

/// Runs every file; returns the exit status.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Read them all first, so that a typo in the last file does not waste the earlier runs.
    let mut scenarios = Vec::with_capacity(args.files.len());
    for file in &args.files {
        match Scenario::from_file(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(error) => {
                eprintln!("netsim run: {}", chain(&error));
                return Ok(ExitCode::from(COULD_NOT_RUN));
            }
        }
    }
    let server = match (args.server, args.ca) {
        (Some(addr), Some(ca)) => {
            Some(ExternalServer { addr, ca, server_name: args.server_name.clone() })
        }
        _ => None,
    };
    let options = RunOptions { seed: args.seed, server, progress: !args.quiet };

    let mut reports: Vec<Report> = Vec::new();
    let mut status = 0;
    for scenario in &scenarios {
        if options.server.is_some() && scenario.server.is_some() {
            eprintln!("[{}] note: [server] is ignored with --server", scenario.name);
        }
        match chatroom_netsim::runner::run(scenario, &options).await {
            Ok(report) => {
                if args.json {
                    println!("{}", report.to_json_line());
                } else {
                    println!("{}", report.to_text());
                }
                if !report.ok {
                    status = status.max(FAILED_EXPECTATION);
                }
                reports.push(report);
            }
            Err(error) => {
                eprintln!("[{}] could not run: {}", scenario.name, chain(&error));
                status = COULD_NOT_RUN;
            }
        }
    }
    if !reports.is_empty() {
        let table = summary_table(&reports);
        if args.json {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }
    Ok(ExitCode::from(status))
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
