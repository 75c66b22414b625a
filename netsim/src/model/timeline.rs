//! What changes over a run: impairment phases, blackouts, a flapping link and NAT rebinds.
//!
//! Every time here is relative to the model's start instant, so a timeline reads like a
//! scenario script: "from 10 s to 20 s lose 30 %, black out at 25 s for 5 s, rebind every 5 s".

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Direction, ImpairmentOverride};
use crate::units::{serde_duration, serde_durations, serde_opt_duration};

/// Which directions a change applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Client to server only.
    Up,
    /// Server to client only.
    Down,
    /// Both directions.
    #[default]
    Both,
}

impl Target {
    /// Whether `direction` is one of the targeted directions.
    pub fn includes(self, direction: Direction) -> bool {
        match self {
            Self::Both => true,
            Self::Up => direction == Direction::Up,
            Self::Down => direction == Direction::Down,
        }
    }
}

impl From<Direction> for Target {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::Up => Self::Up,
            Direction::Down => Self::Down,
        }
    }
}

/// A stretch of time during which some impairment values are replaced. When phases overlap,
/// they apply in list order, so a later phase wins for the fields it sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// When the phase starts (inclusive).
    #[serde(with = "serde_duration")]
    pub from: Duration,
    /// When it ends (exclusive); `None` for the rest of the run.
    #[serde(default, with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub to: Option<Duration>,
    /// The directions it changes. Default both.
    #[serde(default)]
    pub applies_to: Target,
    /// The values it sets.
    pub set: ImpairmentOverride,
}

impl Phase {
    /// Whether the phase is in force `elapsed` after the start.
    pub fn is_active(&self, elapsed: Duration) -> bool {
        elapsed >= self.from && self.to.is_none_or(|to| elapsed < to)
    }
}

/// The link is down in both directions from `at` for `duration`, as in a lift or a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    /// When it starts (inclusive).
    #[serde(with = "serde_duration")]
    pub at: Duration,
    /// How long it lasts; it ends at `at + duration` (exclusive).
    #[serde(with = "serde_duration")]
    pub duration: Duration,
}

impl Blackout {
    /// Whether the blackout is in force `elapsed` after the start.
    pub fn is_active(&self, elapsed: Duration) -> bool {
        elapsed >= self.at && elapsed - self.at < self.duration
    }
}

/// A link that keeps dropping out: down for `down_for` at the start of every `period`, between
/// `from` and `to`. A weak Wi-Fi at the edge of its range, for instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flap {
    /// Length of one up-and-down cycle. Must be above zero.
    #[serde(with = "serde_duration")]
    pub period: Duration,
    /// How long the link is down at the start of each cycle; at most `period`.
    #[serde(with = "serde_duration")]
    pub down_for: Duration,
    /// When the first cycle starts. Default 0.
    #[serde(default, with = "serde_duration")]
    pub from: Duration,
    /// When flapping stops; `None` for the rest of the run.
    #[serde(default, with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub to: Option<Duration>,
}

impl Flap {
    /// Whether the flap holds the link down `elapsed` after the start.
    pub fn is_down(&self, elapsed: Duration) -> bool {
        if elapsed < self.from || self.to.is_some_and(|to| elapsed >= to) || self.period.is_zero() {
            return false;
        }
        let into_cycle = (elapsed - self.from).as_nanos() % self.period.as_nanos();
        into_cycle < self.down_for.as_nanos()
    }
}

/// Everything about the link that changes with time, and when the NAT rebinds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeline {
    /// Impairment phases, applied in order over each direction's base impairment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// Scheduled blackouts (both directions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blackouts: Vec<Blackout>,
    /// A flapping link (both directions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap: Option<Flap>,
    /// Times at which the NAT rebinds: the server sees the client come from a new port (or
    /// address), and packets to the old one are dropped.
    #[serde(with = "serde_durations", skip_serializing_if = "Vec::is_empty")]
    pub rebind_at: Vec<Duration>,
    /// Rebind periodically, first at this interval after the start. Must be above zero.
    #[serde(with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub rebind_every: Option<Duration>,
    /// With an address, rebinds alternate between it and the default address (each time on a
    /// new port), so that every rebind changes the address the server sees; without, a rebind
    /// changes only the port. On Linux any address of 127.0.0.0/8, such as 127.0.0.2, works
    /// without set-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebind_address: Option<IpAddr>,
}

impl Timeline {
    /// Checks periods are above zero and phases end after they start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (index, phase) in self.phases.iter().enumerate() {
            if phase.to.is_some_and(|to| to <= phase.from) {
                return Err(ConfigError::EmptyPhase { index });
            }
            let mut applied = super::Impairment::default();
            phase.set.apply(&mut applied);
            applied.validate()?;
        }
        if self.flap.is_some_and(|flap| flap.period.is_zero() || flap.down_for > flap.period) {
            return Err(ConfigError::Flap);
        }
        if self.rebind_every.is_some_and(|every| every.is_zero()) {
            return Err(ConfigError::ZeroRebindInterval);
        }
        Ok(())
    }

    /// Whether a scheduled blackout or the flap holds the link down `elapsed` after the start.
    pub fn is_down(&self, elapsed: Duration) -> bool {
        self.blackouts.iter().any(|b| b.is_active(elapsed))
            || self.flap.is_some_and(|f| f.is_down(elapsed))
    }
}

/// What a NAT rebind changes, as seen by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebindKind {
    /// A new port on the default address.
    Port,
    /// A new port on this address.
    Address(IpAddr),
}

/// Where the rebind schedule stands: which of `rebind_at` have fired and when the periodic
/// rebind is next due.
#[derive(Debug, Clone)]
pub(super) struct RebindSchedule {
    /// Sorted copy of `Timeline::rebind_at`.
    at: Vec<Duration>,
    /// How many of `at` have fired.
    fired: usize,
    every: Option<Duration>,
    next_periodic: Option<Duration>,
    address: Option<IpAddr>,
    /// Rebinds so far, scheduled or on demand; decides which address the next one uses.
    pub(super) count: u64,
}

impl RebindSchedule {
    pub(super) fn new(timeline: &Timeline) -> Self {
        let mut at = timeline.rebind_at.clone();
        at.sort_unstable();
        Self {
            at,
            fired: 0,
            every: timeline.rebind_every,
            next_periodic: timeline.rebind_every,
            address: timeline.rebind_address,
            count: 0,
        }
    }

    /// Elapsed time of the next scheduled rebind.
    pub(super) fn next_due(&self) -> Option<Duration> {
        let scheduled = self.at.get(self.fired).copied();
        match (scheduled, self.next_periodic) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every rebind due by `elapsed`. Several due at once (the caller was late) make one
    /// rebind: the server would see only the last address anyway.
    pub(super) fn poll(&mut self, elapsed: Duration) -> Option<RebindKind> {
        let mut due = false;
        while self.at.get(self.fired).is_some_and(|&at| at <= elapsed) {
            self.fired += 1;
            due = true;
        }
        if let (Some(every), Some(next)) =
            (self.every, self.next_periodic.filter(|&n| n <= elapsed))
        {
            due = true;
            // Skip the missed periods rather than firing a burst of catch-up rebinds.
            let missed = (elapsed - next).as_nanos() / every.as_nanos() + 1;
            let advance = u32::try_from(missed).ok().and_then(|n| every.checked_mul(n));
            self.next_periodic = advance.and_then(|a| next.checked_add(a));
        }
        due.then(|| self.fire())
    }

    /// Counts a rebind and chooses its kind.
    pub(super) fn fire(&mut self) -> RebindKind {
        self.count += 1;
        match self.address {
            // Odd rebinds move to the extra address, even ones back to the default.
            Some(address) if self.count % 2 == 1 => RebindKind::Address(address),
            _ => RebindKind::Port,
        }
    }
}
