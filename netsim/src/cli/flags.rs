//! The impairment flags: every knob of [`Impairment`] as `--KNOB` for both directions, and as
//! `--up-KNOB` / `--down-KNOB` for one direction, which wins over the symmetric flag.
//!
//! Written against clap's builder API rather than derived: the three sets are one table with
//! three prefixes, where the derive would need 45 hand-written fields.

use chatroom_netsim::model::{Direction, Impairment, ImpairmentOverride};
use chatroom_netsim::units::{parse_duration, parse_probability, parse_rate_kbps};
use clap::builder::ValueParser;
use clap::error::ErrorKind;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

/// The kind of value a knob takes, which decides its parser.
#[derive(Clone, Copy)]
enum Kind {
    /// `2%` or `0.02`.
    Probability,
    /// `50ms`, `2s`.
    Duration,
    /// `750kbit`, `2mbit`.
    Rate,
    /// A plain count.
    Count,
}

impl Kind {
    fn parser(self) -> ValueParser {
        match self {
            Self::Probability => ValueParser::new(parse_probability),
            Self::Duration => ValueParser::new(parse_duration),
            Self::Rate => ValueParser::new(parse_rate_kbps),
            Self::Count => clap::value_parser!(u32).into(),
        }
    }

    fn value_name(self) -> &'static str {
        match self {
            Self::Probability => "PCT",
            Self::Duration => "DUR",
            Self::Rate => "RATE",
            Self::Count => "N",
        }
    }
}

/// Flag name (without prefix), value kind, help.
const KNOBS: &[(&str, Kind, &str)] = &[
    ("loss", Kind::Probability, "Independent random loss, e.g. 2%"),
    ("delay", Kind::Duration, "One-way delay, e.g. 50ms"),
    ("jitter", Kind::Duration, "Each packet's delay varies uniformly by ± this (may reorder)"),
    ("reorder", Kind::Probability, "Share of packets held back so that later ones overtake them"),
    (
        "reorder-delay",
        Kind::Duration,
        "How long a reordered packet is held [default: delay/2+10ms]",
    ),
    ("duplicate", Kind::Probability, "Share of packets delivered twice"),
    ("corrupt", Kind::Probability, "Share of packets with 1-3 bytes flipped"),
    ("rate", Kind::Rate, "Bandwidth limit in bits per second, e.g. 750kbit, 2mbit"),
    ("rate-kbps", Kind::Count, "Bandwidth limit in kilobits per second, e.g. 750"),
    ("queue", Kind::Count, "Drop-tail queue length in packets behind the rate limit [default: 64]"),
    (
        "ge-p",
        Kind::Probability,
        "Gilbert-Elliott bursty loss: chance per packet to enter the bad state",
    ),
    (
        "ge-r",
        Kind::Probability,
        "Gilbert-Elliott: chance per packet to leave the bad state (mean burst 1/r)",
    ),
    ("ge-loss-good", Kind::Probability, "Gilbert-Elliott: loss in the good state [default: 0%]"),
    ("ge-loss-bad", Kind::Probability, "Gilbert-Elliott: loss in the bad state [default: 100%]"),
    ("max-burst", Kind::Count, "At most N losses in a row (the QUIC interop runner uses 3)"),
];

/// Prefix, help heading, and what the help adds to each flag.
const SETS: [(&str, &str, &str); 3] = [
    ("", "Impairment, both directions (--up-…/--down-… for one: see --help)", ""),
    ("up-", "Client→server only (wins over the above)", " (client→server only)"),
    ("down-", "Server→client only (wins over the above)", " (server→client only)"),
];

/// The impairment given on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImpairmentFlags {
    both: ImpairmentOverride,
    up: ImpairmentOverride,
    down: ImpairmentOverride,
}

impl ImpairmentFlags {
    /// The impairment of `direction`: a perfect link, then the symmetric flags, then the
    /// direction's own.
    pub fn impairment(&self, direction: Direction) -> Impairment {
        let mut impairment = self.both.to_impairment();
        match direction {
            Direction::Up => self.up.apply(&mut impairment),
            Direction::Down => self.down.apply(&mut impairment),
        }
        impairment
    }

    fn read(matches: &ArgMatches, prefix: &str) -> Result<ImpairmentOverride, clap::Error> {
        let probability = |name: &str| get::<f64>(matches, prefix, name);
        let duration = |name: &str| get::<std::time::Duration>(matches, prefix, name);
        let count = |name: &str| get::<u32>(matches, prefix, name);
        Ok(ImpairmentOverride {
            loss: probability("loss")?,
            ge_p: probability("ge-p")?,
            ge_r: probability("ge-r")?,
            ge_loss_good: probability("ge-loss-good")?,
            ge_loss_bad: probability("ge-loss-bad")?,
            max_consecutive_drops: count("max-burst")?,
            delay: duration("delay")?,
            jitter: duration("jitter")?,
            reorder: probability("reorder")?,
            reorder_delay: duration("reorder-delay")?,
            duplicate: probability("duplicate")?,
            corrupt: probability("corrupt")?,
            // --rate and --rate-kbps conflict, so at most one is set.
            rate_kbps: count("rate")?.or(count("rate-kbps")?),
            queue_packets: count("queue")?,
            down: None,
        })
    }
}

fn get<T: Clone + Send + Sync + 'static>(
    matches: &ArgMatches,
    prefix: &str,
    name: &str,
) -> Result<Option<T>, clap::Error> {
    matches
        .try_get_one::<T>(&format!("{prefix}{name}"))
        .map(|value| value.cloned())
        .map_err(|error| clap::Error::raw(ErrorKind::InvalidValue, error))
}

impl FromArgMatches for ImpairmentFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            both: Self::read(matches, SETS[0].0)?,
            up: Self::read(matches, SETS[1].0)?,
            down: Self::read(matches, SETS[2].0)?,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ImpairmentFlags {
    fn augment_args(mut command: Command) -> Command {
        for (prefix, heading, suffix) in SETS {
            for &(name, kind, help) in KNOBS {
                let id = format!("{prefix}{name}");
                let mut arg = Arg::new(id.clone())
                    .long(id)
                    .value_name(kind.value_name())
                    .value_parser(kind.parser())
                    .help(format!("{help}{suffix}"))
                    .help_heading(heading)
                    // `-h` stays short; `--help` lists the per-direction variants too.
                    .hide_short_help(!prefix.is_empty());
                if name == "rate" {
                    arg = arg.conflicts_with(format!("{prefix}rate-kbps"));
                }
                command = command.arg(arg);
            }
        }
        command
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}
