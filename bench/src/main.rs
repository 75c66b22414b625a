//! `chatroom-bench`: puts a measured load on the chatroom server, or the same load on a NATS
//! server as a baseline. See `chatroom-bench --help` and BENCHMARKS.md.
//!
//! - `procfs`: CPU time and memory of the server and of the bench, from `/proc`.
//! - `spawn`: starts `chatroom-server` as its own process with a benchmark configuration.
//! - `target`: which server (chatroom or NATS), loopback only.
//! - `member`: what every member does whatever the server: count tagged messages (netsim's
//!   `MessageTag`), latency on one clock, phases; and the publisher senders use.
//! - `chatroom`, `nats`: connecting members to each server and reading what arrives.
//! - `workload`: the fan-out workload: connect members, run phases at a rate, collect.
//! - `connections`: many idle joined connections: handshakes/s and memory per connection.
//! - `profile`: netsim scenario links for runs through impairment proxies.
//! - `report`: the figures, as JSON or `key: value` lines (percentiles are netsim's).
//!
//! What it is not: a test. It asserts nothing about speed; it reports. It only connects to
//! loopback addresses, and every loop in it is bounded in count and time.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

mod chatroom;
mod compare;
mod connections;
mod member;
mod nats;
mod procfs;
mod profile;
mod report;
mod spawn;
mod target;
mod workload;

use crate::report::{FanoutReport, NetsimInfo, RunHeader, SearchReport, round3};
use crate::target::{Prepared, TargetArgs};
use crate::workload::{Plan, Session};

/// Load generator for the chatroom server, with NATS as a baseline.
#[derive(Debug, Parser)]
#[command(name = "chatroom-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fan-out: N members in R rooms, S of them sending RATE messages/s in total; reports
    /// offered vs achieved deliveries/s, latency percentiles, server CPU and memory, gaps.
    Fanout(FanoutArgs),
    /// Like fanout, stepping the rate up (×--factor) until p99 ≥ 200 ms or fewer than 95 % of
    /// the offered deliveries arrive in time, then narrowing between the last good and the
    /// first bad rate; reports the highest sustained rate.
    Search(SearchArgs),
    /// N idle, joined connections: handshakes/s during the ramp and server memory per
    /// connection once idle.
    Connections(ConnectionsArgs),
    /// Light-load latency on loopback, or through netsim proxies with --netsim.
    Latency(LatencyArgs),
    /// One table of --json reports of the same workload: the first is the chatroom's, the
    /// others are divided into it (chatroom / nats, chatroom / nats-tls).
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// NAME=FILE: a column and the --json report (fanout or search) it shows. The first is
    /// the numerator of every ratio.
    #[arg(required = true, value_name = "NAME=FILE")]
    reports: Vec<String>,
}

/// The fan-out workload's shape.
#[derive(Debug, Clone, Args)]
struct LoadArgs {
    /// Members.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Rooms; member i joins room i % rooms.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Members that send (members 0..senders), at RATE / SENDERS messages/s each.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Message text size in bytes (at least 48, for the tag).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seconds of sending (per step for search).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait after sending for late deliveries.
    #[arg(long, default_value_t = 3.0)]
    drain: f64,
    /// Seconds between the end of the ramp and the first send.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Members connecting at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Give up connecting members after this many seconds.
    #[arg(long, default_value_t = 300.0)]
    ramp_timeout: f64,
}

#[derive(Debug, Clone, Args)]
struct OutputArgs {
    /// Print one JSON object on stdout instead of key: value lines.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Messages per second, over all senders.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct SearchArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The first rate tried, messages per second over all senders.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Each step multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    factor: f64,
    /// Steps between the last good and first bad rate after the step-up.
    #[arg(long, default_value_t = 2)]
    refine: u32,
    /// The most steps in all.
    #[arg(long, default_value_t = 14)]
    max_steps: u32,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct ConnectionsArgs {
    /// Connections.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Rooms they join, round-robin.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds the connections sit idle before memory is read.
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
    /// Give up opening connections after this many seconds.
    #[arg(long, default_value_t = 300.0)]
    ramp_timeout: f64,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
struct LatencyArgs {
    /// Members.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Members that send.
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Messages per second, over all senders.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Message text size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait after sending for late deliveries.
    #[arg(long, default_value_t = 3.0)]
    drain: f64,
    /// Put each member behind its own netsim proxy with this link: a netsim scenario file,
    /// or the name of one of netsim's scenarios (lte, 3g, wifi, ...). The scenario's first
    /// link is used, timeline included.
    #[arg(long, value_name = "SCENARIO_OR_PROFILE")]
    netsim: Option<String>,
    /// Replaces the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // rustls warns about every session ticket it declines; the bench opens thousands.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,rustls=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Fanout(args) => {
            let prepared = args.target.prepare()?;
            let report =
                fanout(&prepared, "fanout", &args.load, args.rate, None, &args.output).await?;
            emit(&report, &args.output)
        }
        Command::Search(args) => {
            let prepared = args.target.prepare()?;
            let report = search(&prepared, &args).await?;
            emit(&report, &args.output)
        }
        Command::Connections(args) => {
            let prepared = args.target.prepare()?;
            let plan = connections::ConnectionsPlan {
                clients: args.clients,
                rooms: args.rooms,
                concurrency: args.concurrency,
                idle: seconds(args.idle, "--idle")?,
                ramp_timeout: seconds(args.ramp_timeout, "--ramp-timeout")?,
                progress: !args.output.quiet,
            };
            let report =
                connections::run(&prepared, &plan).await.with_context(|| prepared.server_log())?;
            emit(&report, &args.output)
        }
        Command::Compare(args) => {
            let mut columns = Vec::new();
            for spec in &args.reports {
                let (name, path) =
                    spec.split_once('=').with_context(|| format!("{spec}: give NAME=FILE"))?;
                columns.push((name.to_owned(), compare::read(std::path::Path::new(path))?));
            }
            print!("{}", compare::table(&columns));
            Ok(())
        }
        Command::Latency(args) => {
            let prepared = args.target.prepare()?;
            let load = LoadArgs {
                clients: args.clients,
                rooms: 1,
                senders: args.senders,
                size: args.size,
                duration: args.duration,
                drain: args.drain,
                settle: 0.5,
                concurrency: 16,
                ramp_timeout: 60.0,
            };
            let profile = args.netsim.as_deref().map(profile::load).transpose()?;
            let link = profile.as_ref().map(|p| (p.link.clone(), args.seed.unwrap_or(p.seed)));
            let info = match &profile {
                Some(p) => Some(NetsimInfo {
                    profile: p.name.clone(),
                    link: serde_json::to_value(&p.link)?,
                    proxies: args.clients,
                }),
                None => None,
            };
            let mut report =
                fanout(&prepared, "latency", &load, args.rate, link, &args.output).await?;
            report.header.netsim = info;
            emit(&report, &args.output)
        }
    }
}

/// Builds the plan of a fan-out run, checking the numbers.
fn plan(
    load: &LoadArgs,
    link: Option<(chatroom_netsim::model::LinkConfig, u64)>,
    output: &OutputArgs,
) -> anyhow::Result<Plan> {
    if load.size < chatroom_netsim::ledger::MAX_TAG_LEN {
        anyhow::bail!("--size must be at least {} bytes", chatroom_netsim::ledger::MAX_TAG_LEN);
    }
    Ok(Plan {
        clients: load.clients,
        rooms: load.rooms,
        senders: load.senders,
        size: load.size,
        concurrency: load.concurrency,
        ramp_timeout: seconds(load.ramp_timeout, "--ramp-timeout")?,
        settle: seconds(load.settle, "--settle")?,
        drain: seconds(load.drain, "--drain")?,
        link,
        progress: !output.quiet,
    })
}

fn header(
    prepared: &Prepared,
    mode: &'static str,
    load: &LoadArgs,
    session: &Session,
) -> RunHeader {
    RunHeader {
        mode,
        target: prepared.target.label(),
        server: prepared.server_label.clone(),
        clients: load.clients,
        rooms: load.rooms,
        senders: load.senders,
        size: load.size,
        connected: session.connected(),
        connect_failures: session.connect_failures(),
        ramp_s: round3(session.ramp.as_secs_f64()),
        netsim: None,
    }
}

async fn fanout(
    prepared: &Prepared,
    mode: &'static str,
    load: &LoadArgs,
    rate: f64,
    link: Option<(chatroom_netsim::model::LinkConfig, u64)>,
    output: &OutputArgs,
) -> anyhow::Result<FanoutReport> {
    if !(rate.is_finite() && rate > 0.0) {
        anyhow::bail!("--rate must be above zero");
    }
    let duration = seconds(load.duration, "--duration")?;
    let plan = plan(load, link, output)?;
    let mut session = Session::open(&prepared.target, plan, prepared.watch.clone())
        .await
        .with_context(|| prepared.server_log())?;
    let phase = session.run_phase(rate, duration).await;
    let header = header(prepared, mode, load, &session);
    session.close().await;
    Ok(FanoutReport { header, phase })
}

async fn search(prepared: &Prepared, args: &SearchArgs) -> anyhow::Result<SearchReport> {
    if !(args.rate > 0.0 && args.factor > 1.0) {
        anyhow::bail!("--rate must be above zero and --factor above 1");
    }
    let duration = seconds(args.load.duration, "--duration")?;
    let plan = plan(&args.load, None, &args.output)?;
    let mut session = Session::open(&prepared.target, plan, prepared.watch.clone())
        .await
        .with_context(|| prepared.server_log())?;
    let mut steps = Vec::new();
    let mut good: Option<f64> = None;
    let mut bad: Option<f64> = None;
    let mut rate = args.rate;
    let mut refined = 0;
    while (steps.len() as u32) < args.max_steps {
        let step = session.run_phase(rate, duration).await;
        let ok = step.meets_criterion();
        steps.push(step);
        if ok {
            good = Some(good.map_or(rate, |g: f64| g.max(rate)));
        } else {
            bad = Some(bad.map_or(rate, |b: f64| b.min(rate)));
        }
        rate = match (good, bad) {
            (_, None) => rate * args.factor,
            (None, Some(b)) if b > args.rate / 64.0 => b / args.factor,
            (None, Some(_)) => break,
            (Some(g), Some(b)) => {
                if refined >= args.refine {
                    break;
                }
                refined += 1;
                (g * b).sqrt()
            }
        };
    }
    let best = steps
        .iter()
        .filter(|s| s.meets_criterion())
        .max_by(|a, b| a.rate.total_cmp(&b.rate))
        .cloned();
    let header = header(prepared, "search", &args.load, &session);
    session.close().await;
    Ok(SearchReport {
        header,
        criterion: format!(
            "p99 < {} ms and achieved >= {} % of offered deliveries/s",
            report::SUSTAINED_P99_MS,
            report::SUSTAINED_FRACTION * 100.0
        ),
        max_sustained_rate: best.as_ref().map_or(0.0, |s| s.rate),
        max_sustained_deliveries_per_s: best.as_ref().map_or(0.0, |s| s.achieved_deliveries_per_s),
        max_sustained_p99_ms: best.as_ref().map_or(0.0, |s| s.latency_ms.p99),
        steps,
    })
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag}: {value} is not a duration"))
}

fn emit(report: &impl Serialize, output: &OutputArgs) -> anyhow::Result<()> {
    if output.json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", report::to_text(report));
    }
    Ok(())
}
