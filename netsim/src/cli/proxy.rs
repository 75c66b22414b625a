//! `netsim proxy`: run the relay proxy from the command line until Ctrl-C, printing counters.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chatroom_netsim::model::{
    Blackout, Direction, DirectionStats, Flap, Impairment, LinkConfig, Timeline,
};
use chatroom_netsim::proxy::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_MAPPINGS, Proxy, ProxyConfig, ProxyStats,
};
use chatroom_netsim::units::{format_duration, format_percent, parse_duration};
use clap::Args;

use super::flags::ImpairmentFlags;

/// `netsim proxy` flags.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address clients send to, e.g. 127.0.0.1:5000
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// The server to forward to, e.g. 127.0.0.1:4433
    #[arg(long, value_name = "ADDR")]
    upstream: SocketAddr,
    /// Seed of every random choice; the same seed and traffic give the same fates
    /// [default: random, printed at start]
    #[arg(long)]
    seed: Option<u64>,
    /// Print the counters every SECS seconds (also `500ms`, `1m`); 0 prints them only on exit
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    stats_every: Duration,
    /// Most client mappings (one per client address)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_MAPPINGS)]
    max_mappings: usize,

    #[command(flatten)]
    impairment: ImpairmentFlags,

    /// Take the link down (both ways) this long after start; repeatable
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Timeline")]
    blackout_at: Vec<Duration>,
    /// How long a blackout lasts: once for all, or once per --blackout-at
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Timeline")]
    blackout_for: Vec<Duration>,
    /// Flapping link: a cycle of this length, down at the start of each
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Timeline")]
    #[arg(requires = "flap_down_for")]
    flap_period: Option<Duration>,
    /// Flapping link: how long it is down in each cycle
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Timeline")]
    #[arg(requires = "flap_period")]
    flap_down_for: Option<Duration>,
    /// Rebind the NAT (the server sees a new port) this long after start; repeatable
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Timeline")]
    rebind_at: Vec<Duration>,
    /// Rebind the NAT periodically
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Timeline")]
    rebind_every: Option<Duration>,
    /// Rebinds alternate between this address and the default one, e.g. 127.0.0.2
    #[arg(long, value_name = "IP", help_heading = "Timeline")]
    rebind_address: Option<IpAddr>,
}

impl ProxyArgs {
    /// The link the flags describe.
    pub fn link(&self) -> anyhow::Result<LinkConfig> {
        if self.blackout_at.is_empty() && !self.blackout_for.is_empty() {
            bail!("--blackout-for needs --blackout-at");
        }
        let blackouts = match (self.blackout_at.len(), self.blackout_for.as_slice()) {
            (0, []) => Vec::new(),
            (_, [duration]) => {
                self.blackout_at.iter().map(|&at| Blackout { at, duration: *duration }).collect()
            }
            (n, durations) if n == durations.len() => self
                .blackout_at
                .iter()
                .zip(durations)
                .map(|(&at, &duration)| Blackout { at, duration })
                .collect(),
            (n, durations) => bail!(
                "{n} --blackout-at but {} --blackout-for: give one --blackout-for for all, or \
                 one per --blackout-at",
                durations.len()
            ),
        };
        let flap = match (self.flap_period, self.flap_down_for) {
            (Some(period), Some(down_for)) => {
                Some(Flap { period, down_for, from: Duration::ZERO, to: None })
            }
            _ => None,
        };
        let link = LinkConfig {
            up: self.impairment.impairment(Direction::Up),
            down: self.impairment.impairment(Direction::Down),
            timeline: Timeline {
                phases: Vec::new(),
                blackouts,
                flap,
                rebind_at: self.rebind_at.clone(),
                rebind_every: self.rebind_every,
                rebind_address: self.rebind_address,
            },
        };
        link.validate().context("invalid impairment")?;
        Ok(link)
    }
}

/// `--stats-every`: a plain number of seconds, or a duration with a unit.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => parse_duration(text).map_err(|error| error.to_string()),
    }
}

/// Runs the proxy until Ctrl-C.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let link = args.link()?;
    let config = ProxyConfig {
        listen: args.listen,
        upstream: args.upstream,
        link: link.clone(),
        seed,
        max_mappings: args.max_mappings,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
    };
    let proxy = Proxy::start(config).await.context("cannot start the proxy")?;
    println!(
        "netsim proxy: {} -> {}, seed {seed} (pass --seed {seed} to repeat)",
        proxy.local_addr(),
        args.upstream
    );
    println!("  up   {}", describe(&link.up));
    println!("  down {}", describe(&link.down));

    let started = tokio::time::Instant::now();
    let mut ticker = (!args.stats_every.is_zero())
        .then(|| tokio::time::interval_at(started + args.stats_every, args.stats_every));
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(ticker) => ticker.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot wait for Ctrl-C")?;
                break;
            }
            _ = tick => print!("{}", format_stats(&proxy.stats(), started.elapsed())),
        }
    }
    print!("{}", format_stats(&proxy.stats(), started.elapsed()));
    proxy.shutdown().await;
    Ok(())
}

/// One line naming what an impairment does, `perfect` if nothing.
fn describe(imp: &Impairment) -> String {
    let mut parts = Vec::new();
    let mut percent = |name: &str, p: f64| {
        if p > 0.0 {
            parts.push(format!("{name} {}", format_percent(p)));
        }
    };
    percent("loss", imp.loss);
    percent("reorder", imp.reorder);
    percent("duplicate", imp.duplicate);
    percent("corrupt", imp.corrupt);
    if imp.ge_p > 0.0 {
        parts.push(format!(
            "bursts (ge p {} r {} loss {}/{})",
            format_percent(imp.ge_p),
            format_percent(imp.ge_r),
            format_percent(imp.ge_loss_good),
            format_percent(imp.ge_loss_bad)
        ));
    }
    if let Some(cap) = imp.max_consecutive_drops {
        parts.push(format!("max burst {cap}"));
    }
    if !imp.delay.is_zero() {
        parts.push(format!("delay {}", format_duration(imp.delay)));
    }
    if !imp.jitter.is_zero() {
        parts.push(format!("jitter ±{}", format_duration(imp.jitter)));
    }
    if let Some(rate) = imp.rate_kbps {
        parts.push(format!("rate {rate}kbit queue {}", imp.queue_packets));
    }
    if parts.is_empty() { "perfect".to_owned() } else { parts.join(", ") }
}

/// The counters, one line per direction and one for the relay.
fn format_stats(stats: &ProxyStats, elapsed: Duration) -> String {
    let line = |name: &str, d: &DirectionStats| {
        format!(
            "[{:>7.1}s] {name:<4} in {} {} (max depth {})\n",
            elapsed.as_secs_f64(),
            d.packets_in,
            d.counters_line(),
            d.max_queue_depth,
        )
    };
    format!(
        "{}{}[{:>7.1}s] nat  mappings {} rebinds {} stale drops {} foreign drops {}\n",
        line("up", &stats.up),
        line("down", &stats.down),
        elapsed.as_secs_f64(),
        stats.mappings,
        stats.rebinds,
        stats.stale_mapping_drops,
        stats.foreign_drops,
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Cli;
    use crate::Command;

    fn parse(args: &[&str]) -> Result<ProxyArgs, clap::Error> {
        let base =
            ["netsim", "proxy", "--listen", "127.0.0.1:5000", "--upstream", "127.0.0.1:4433"];
        let cli = Cli::try_parse_from(base.iter().chain(args))?;
        match cli.command {
            Command::Proxy(args) => Ok(*args),
            Command::Run(_) => unreachable!("the arguments name the proxy subcommand"),
        }
    }

    fn link(args: &[&str]) -> LinkConfig {
        parse(args).expect("parses").link().expect("valid")
    }

    #[test]
    fn symmetric_flags_apply_both_ways_and_directional_ones_win() {
        let link =
            link(&["--loss", "2%", "--up-loss", "30%", "--delay", "50ms", "--down-jitter", "10ms"]);
        assert_eq!((link.up.loss, link.down.loss), (0.3, 0.02));
        assert_eq!(
            (link.up.delay, link.down.delay),
            (Duration::from_millis(50), Duration::from_millis(50))
        );
        assert_eq!((link.up.jitter, link.down.jitter), (Duration::ZERO, Duration::from_millis(10)));
    }

    #[test]
    fn every_knob_has_a_flag() {
        let link = link(&[
            "--reorder",
            "1%",
            "--reorder-delay",
            "30ms",
            "--duplicate",
            "1%",
            "--corrupt",
            "0.1%",
            "--rate",
            "750kbit",
            "--queue",
            "32",
            "--ge-p",
            "1%",
            "--ge-r",
            "25%",
            "--ge-loss-good",
            "0%",
            "--ge-loss-bad",
            "90%",
            "--max-burst",
            "3",
            "--down-rate-kbps",
            "2000",
        ]);
        let up = link.up;
        assert_eq!((up.reorder, up.duplicate, up.corrupt), (0.01, 0.01, 0.001));
        assert_eq!(up.reorder_delay, Some(Duration::from_millis(30)));
        assert_eq!((up.rate_kbps, up.queue_packets), (Some(750), 32));
        assert_eq!((up.ge_p, up.ge_r, up.ge_loss_good, up.ge_loss_bad), (0.01, 0.25, 0.0, 0.9));
        assert_eq!(up.max_consecutive_drops, Some(3));
        assert_eq!(link.down.rate_kbps, Some(2000));
        assert!(describe(&up).contains("rate 750kbit"));
        assert_eq!(describe(&Impairment::default()), "perfect");
    }

    #[test]
    fn timeline_flags() {
        let link = link(&[
            "--blackout-at",
            "10s",
            "--blackout-at",
            "30s",
            "--blackout-for",
            "5s",
            "--rebind-every",
            "5s",
            "--rebind-at",
            "1s",
            "--rebind-address",
            "127.0.0.2",
            "--flap-period",
            "1m",
            "--flap-down-for",
            "2s",
        ]);
        let secs = Duration::from_secs;
        assert_eq!(
            link.timeline.blackouts,
            vec![
                Blackout { at: secs(10), duration: secs(5) },
                Blackout { at: secs(30), duration: secs(5) }
            ]
        );
        assert_eq!(link.timeline.rebind_every, Some(secs(5)));
        assert_eq!(link.timeline.rebind_at, vec![secs(1)]);
        assert_eq!(link.timeline.flap.map(|f| (f.period, f.down_for)), Some((secs(60), secs(2))));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--loss", "150%"]).is_err());
        assert!(parse(&["--delay", "50"]).is_err());
        assert!(parse(&["--rate", "750kbps"]).is_err());
        assert!(parse(&["--rate", "1mbit", "--rate-kbps", "5"]).is_err());
        assert!(parse(&["--flap-period", "1s"]).is_err());
        let mismatched = parse(&[
            "--blackout-at",
            "1s",
            "--blackout-at",
            "2s",
            "--blackout-for",
            "1s",
            "--blackout-for",
            "2s",
            "--blackout-for",
            "3s",
        ]);
        assert!(mismatched.expect("parses").link().is_err());
        assert!(parse(&["--blackout-for", "1s"]).expect("parses").link().is_err());
        assert!(parse(&["--rate-kbps", "0"]).expect("parses").link().is_err());
    }

    #[test]
    fn stats_every_takes_seconds_or_a_duration() {
        assert_eq!(parse(&[]).expect("parses").stats_every, Duration::from_secs(10));
        assert_eq!(
            parse(&["--stats-every", "5"]).expect("parses").stats_every,
            Duration::from_secs(5)
        );
        assert_eq!(
            parse(&["--stats-every", "500ms"]).expect("parses").stats_every,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn stats_print_every_counter() {
        let mut stats = ProxyStats::default();
        stats.up.dropped_random = 3;
        stats.down.duplicated = 2;
        let text = format_stats(&stats, Duration::from_secs(12));
        assert!(text.contains("up   in 0 passed 0 dropped 3 (random 3,"), "{text}");
        assert!(text.contains("duplicated 2"), "{text}");
        assert_eq!(text.lines().count(), 3);
    }
}
