//! The impairment model: plain seeded state that takes packets and `now` and decides each
//! packet's fate. No sockets, no clock, no tasks, so it is tested by stepping time by hand, and
//! the same model can sit behind a UDP relay ([`crate::proxy`]) or, later, inside a simulated
//! socket.
//!
//! ```text
//! packet, now
//!   ─▶ timeline   base impairment + active phases; down in blackouts and flaps
//!   ─▶ down?      ──────────────────────────────────────────▶ Drop(Blackout)
//!   ─▶ loss       independent + Gilbert-Elliott, runs capped ─▶ Drop(Random | Burst)
//!   ─▶ rate       drop-tail queue, len × 8 / rate each ──────▶ Drop(Queue)
//!   ─▶ delay      ± jitter
//!   ─▶ reorder    held back by reorder_delay
//!   ─▶ duplicate  a copy 1 ms later
//!   ─▶ corrupt    1-3 bytes flipped
//!   ─▶ Deliver { at, copies, corrupted }
//! ```
//!
//! Randomness: each direction has its own ChaCha8 stream derived from the seed, and every
//! packet takes the same number of draws from it whatever the parameters, so that changing one
//! knob (say the delay) leaves the others' outcomes (which packets are lost) as they were. The
//! bytes a corruption flips come from a separate stream for the same reason. ChaCha8's output is
//! fixed by its specification, so a seed gives the same run on every platform and version.

mod impairment;
mod stats;
#[cfg(test)]
mod tests;
mod timeline;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use impairment::{
    DEFAULT_QUEUE_PACKETS, DUPLICATE_SPACING, Impairment, ImpairmentOverride, MAX_DELAY,
};
pub use stats::{DirectionStats, ModelStats};
pub use timeline::{Blackout, Flap, Phase, RebindKind, Target, Timeline};

use timeline::RebindSchedule;

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

impl Direction {
    /// Both directions, up first.
    pub const ALL: [Self; 2] = [Self::Up, Self::Down];

    /// `"up"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropReason {
    /// Independent random loss.
    Random,
    /// Gilbert-Elliott bursty loss.
    Burst,
    /// The link was down.
    Blackout,
    /// The rate limiter's queue was full.
    Queue,
}

/// The fate of one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The packet is lost.
    Drop(DropReason),
    /// The packet arrives.
    Deliver {
        /// When it arrives at the other end.
        at: Instant,
        /// When extra copies arrive (empty unless duplicated).
        copies: Vec<Instant>,
        /// Whether bytes of the payload were flipped (the copies carry the same bytes).
        corrupted: bool,
    },
}

/// A configuration the model refuses.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A probability outside 0..=1.
    #[error("{name} must be a probability from 0 to 1, not {value}")]
    Probability {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A delay longer than [`MAX_DELAY`].
    #[error("{name} of {value:?} is longer than the maximum {max:?}")]
    TooLong {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: Duration,
        /// The limit.
        max: Duration,
    },
    /// `rate_kbps = 0`: nothing would ever be sent. Use `down` for a dead link.
    #[error("rate_kbps must be above zero (use `down` for a dead link)")]
    ZeroRate,
    /// A phase that ends before it starts.
    #[error("timeline phase {index} ends before it starts")]
    EmptyPhase {
        /// Its position in the list.
        index: usize,
    },
    /// A flap with a zero period or down longer than its period.
    #[error("flap period must be above zero and at least down_for")]
    Flap,
    /// `rebind_every = 0`.
    #[error("rebind_every must be above zero")]
    ZeroRebindInterval,
}

/// The whole link: both directions' base impairment and what changes over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Client to server.
    pub up: Impairment,
    /// Server to client.
    pub down: Impairment,
    /// Phases, blackouts, flaps and rebinds.
    pub timeline: Timeline,
}

impl LinkConfig {
    /// The same impairment both ways, and no timeline.
    pub fn symmetric(impairment: Impairment) -> Self {
        Self { up: impairment, down: impairment, timeline: Timeline::default() }
    }

    /// Checks every value is in range (see [`Impairment::validate`], [`Timeline::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.up.validate()?;
        self.down.validate()?;
        self.timeline.validate()
    }
}

/// The seeded impairment model of a two-way link. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Model {
    start: Instant,
    timeline: Timeline,
    up: DirectionState,
    down: DirectionState,
    /// Set by [`Model::set_down`]; holds until cleared.
    forced_down: bool,
    /// Windows added by [`Model::blackout_now`]; expired ones are pruned as time passes.
    manual_blackouts: Vec<(Instant, Instant)>,
    rebinds: RebindSchedule,
}

impl Model {
    /// A model of `link` whose timeline starts at `start`, with randomness from `seed`.
    pub fn new(link: LinkConfig, seed: u64, start: Instant) -> Result<Self, ConfigError> {
        link.validate()?;
        Ok(Self {
            start,
            rebinds: RebindSchedule::new(&link.timeline),
            timeline: link.timeline,
            up: DirectionState::new(link.up, seed, Direction::Up),
            down: DirectionState::new(link.down, seed, Direction::Down),
            forced_down: false,
            manual_blackouts: Vec::new(),
        })
    }

    /// The instant the timeline counts from.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Decides the fate of `packet`, offered at `now` in `direction`. A corrupted packet's bytes
    /// are flipped in place. `now` should not go backwards between calls; if it does, the rate
    /// limiter treats it as the latest time seen.
    pub fn decide(&mut self, direction: Direction, now: Instant, packet: &mut [u8]) -> Decision {
        let impairment = self.impairment_at(direction, now);
        self.manual_blackouts.retain(|&(_, until)| until > now);
        self.state_mut(direction).decide(&impairment, now, packet)
    }

    /// The impairment in force for `direction` at `now`: the base, with the timeline's phases
    /// applied and `down` set during blackouts, flaps and [`Model::set_down`].
    pub fn impairment_at(&self, direction: Direction, now: Instant) -> Impairment {
        let elapsed = now.saturating_duration_since(self.start);
        let mut impairment = self.state(direction).base;
        for phase in &self.timeline.phases {
            if phase.applies_to.includes(direction) && phase.is_active(elapsed) {
                phase.set.apply(&mut impairment);
            }
        }
        let blacked_out =
            self.manual_blackouts.iter().any(|&(from, until)| from <= now && now < until);
        if self.forced_down || blacked_out || self.timeline.is_down(elapsed) {
            impairment.down = true;
        }
        impairment
    }

    /// The base impairment of `direction` (before the timeline).
    pub fn base_impairment(&self, direction: Direction) -> Impairment {
        self.state(direction).base
    }

    /// Replaces the base impairment of the targeted directions. The timeline still applies on
    /// top; the loss state (burst, consecutive drops) and the queue carry on.
    pub fn set_impairment(
        &mut self,
        target: Target,
        impairment: Impairment,
    ) -> Result<(), ConfigError> {
        impairment.validate()?;
        for direction in Direction::ALL {
            if target.includes(direction) {
                self.state_mut(direction).base = impairment;
            }
        }
        Ok(())
    }

    /// Takes the link down in both directions until called with `false`.
    pub fn set_down(&mut self, down: bool) {
        self.forced_down = down;
    }

    /// Takes the link down in both directions from `now` for `duration`.
    pub fn blackout_now(&mut self, now: Instant, duration: Duration) {
        // An absurdly long blackout saturates rather than overflowing the clock.
        let until = now.checked_add(duration).unwrap_or(now + MAX_DELAY * 1000);
        self.manual_blackouts.push((now, until));
    }

    /// The scheduled rebind to carry out by `now`, if one is due. Call it at least at
    /// [`Model::next_rebind_at`].
    pub fn rebind_due(&mut self, now: Instant) -> Option<RebindKind> {
        self.rebinds.poll(now.saturating_duration_since(self.start))
    }

    /// When the next scheduled rebind is due, if any.
    pub fn next_rebind_at(&self) -> Option<Instant> {
        self.rebinds.next_due().and_then(|elapsed| self.start.checked_add(elapsed))
    }

    /// Counts an unscheduled rebind and says what it changes (alternating addresses like the
    /// scheduled ones, see [`Timeline::rebind_address`]).
    pub fn rebind_now(&mut self) -> RebindKind {
        self.rebinds.fire()
    }

    /// The counters so far.
    pub fn stats(&self) -> ModelStats {
        ModelStats { up: self.up.stats, down: self.down.stats, rebinds: self.rebinds.count }
    }

    fn state(&self, direction: Direction) -> &DirectionState {
        match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    fn state_mut(&mut self, direction: Direction) -> &mut DirectionState {
        match direction {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }
}

/// One direction's parameters, random streams and memory.
#[derive(Debug, Clone)]
struct DirectionState {
    base: Impairment,
    /// Fixed draws per packet, see [`Draws`].
    rng: ChaCha8Rng,
    /// Which bytes a corruption flips; separate so that corruption leaves `rng` aligned.
    corrupt_rng: ChaCha8Rng,
    /// Gilbert-Elliott: in the bad state.
    bad_state: bool,
    /// Packets in a row lost to the loss processes, for the cap.
    consecutive_drops: u32,
    /// When each packet in the rate limiter's queue finishes being sent, oldest first.
    queue: VecDeque<Instant>,
    /// The latest `now` seen, so that a clock going backwards cannot reorder the queue.
    latest: Option<Instant>,
    stats: DirectionStats,
}

impl DirectionState {
    fn new(base: Impairment, seed: u64, direction: Direction) -> Self {
        let stream = |n: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(n);
            rng
        };
        let (main, corrupt) = match direction {
            Direction::Up => (1, 2),
            Direction::Down => (3, 4),
        };
        Self {
            base,
            rng: stream(main),
            corrupt_rng: stream(corrupt),
            bad_state: false,
            consecutive_drops: 0,
            queue: VecDeque::new(),
            latest: None,
            stats: DirectionStats::default(),
        }
    }

    fn decide(&mut self, imp: &Impairment, now: Instant, packet: &mut [u8]) -> Decision {
        let now = self.latest.map_or(now, |latest| latest.max(now));
        self.latest = Some(now);
        let draws = Draws::take(&mut self.rng);
        let len = packet.len() as u64;
        self.stats.packets_in += 1;
        self.stats.bytes_in += len;

        if imp.down {
            self.stats.dropped_blackout += 1;
            return Decision::Drop(DropReason::Blackout);
        }
        if let Some(reason) = self.loss(imp, &draws) {
            return Decision::Drop(reason);
        }

        let mut departure = now;
        if let Some(rate_kbps) = imp.rate_kbps {
            match self.enqueue(imp, rate_kbps, now, len) {
                Some(done) => departure = done,
                None => {
                    self.stats.dropped_queue += 1;
                    return Decision::Drop(DropReason::Queue);
                }
            }
        } else {
            // The limit was lifted: what was queued keeps its times, new packets skip ahead.
            self.queue.clear();
        }

        let mut at = departure + jittered(imp.delay, imp.jitter, draws.jitter);
        if draws.reorder < imp.reorder {
            at += imp.effective_reorder_delay();
            self.stats.reordered += 1;
        }
        let mut copies = Vec::new();
        if draws.duplicate < imp.duplicate {
            copies.push(at + DUPLICATE_SPACING);
            self.stats.duplicated += 1;
        }
        let corrupted = draws.corrupt < imp.corrupt && !packet.is_empty();
        if corrupted {
            corrupt(&mut self.corrupt_rng, packet);
            self.stats.corrupted += 1;
        }
        self.stats.passed += 1;
        self.stats.bytes_passed += len;
        Decision::Deliver { at, copies, corrupted }
    }

    /// The loss stage: Gilbert-Elliott and independent loss, then the cap on runs of drops.
    fn loss(&mut self, imp: &Impairment, draws: &Draws) -> Option<DropReason> {
        let state_loss = if self.bad_state { imp.ge_loss_bad } else { imp.ge_loss_good };
        let burst = draws.ge_loss < state_loss;
        // The chain moves after the packet: the state a packet meets is the one the previous
        // packet left, which makes the bad state's mean stay exactly 1 / ge_r packets.
        self.bad_state =
            if self.bad_state { draws.ge_move >= imp.ge_r } else { draws.ge_move < imp.ge_p };
        let random = draws.loss < imp.loss;
        if !burst && !random {
            self.consecutive_drops = 0;
            return None;
        }
        if imp.max_consecutive_drops.is_some_and(|cap| self.consecutive_drops >= cap) {
            self.consecutive_drops = 0;
            self.stats.loss_capped += 1;
            return None;
        }
        self.consecutive_drops += 1;
        if burst {
            self.stats.dropped_burst += 1;
            Some(DropReason::Burst)
        } else {
            self.stats.dropped_random += 1;
            Some(DropReason::Random)
        }
    }

    /// The rate limiter: returns when the packet has been sent onto the link, or `None` if the
    /// drop-tail queue is full.
    fn enqueue(
        &mut self,
        imp: &Impairment,
        rate_kbps: u32,
        now: Instant,
        len: u64,
    ) -> Option<Instant> {
        while self.queue.front().is_some_and(|&done| done <= now) {
            self.queue.pop_front();
        }
        // A queue of zero could never take a packet even on an idle link; one is the least.
        if self.queue.len() >= imp.queue_packets.max(1) as usize {
            return None;
        }
        let start = match self.queue.back() {
            Some(&busy_until) => {
                self.stats.queued += 1;
                busy_until
            }
            None => now,
        };
        let done = start + serialization_time(len, rate_kbps);
        self.queue.push_back(done);
        self.stats.max_queue_depth = self.stats.max_queue_depth.max(self.queue.len() as u64);
        Some(done)
    }
}

/// The random numbers one packet uses, drawn all at once whatever the parameters.
struct Draws {
    loss: f64,
    ge_loss: f64,
    ge_move: f64,
    jitter: u64,
    reorder: f64,
    duplicate: f64,
    corrupt: f64,
}

impl Draws {
    fn take(rng: &mut ChaCha8Rng) -> Self {
        Self {
            loss: unit(rng),
            ge_loss: unit(rng),
            ge_move: unit(rng),
            jitter: rng.next_u64(),
            reorder: unit(rng),
            duplicate: unit(rng),
            corrupt: unit(rng),
        }
    }
}

/// A uniform number in [0, 1) from the top 53 bits of a draw. Written out here rather than
/// taken from `rand`, whose float conversion is not promised to stay the same across versions.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `delay` plus a uniform offset in `[-jitter, +jitter]`, never below zero. Integer arithmetic,
/// so a seed gives the same nanoseconds everywhere.
fn jittered(delay: Duration, jitter: Duration, draw: u64) -> Duration {
    // Both are at most MAX_DELAY (validated), far inside u64 nanoseconds.
    let delay_ns = delay.as_nanos() as u64;
    let jitter_ns = jitter.as_nanos() as u64;
    if jitter_ns == 0 {
        return delay;
    }
    let offset = draw % (2 * jitter_ns + 1);
    Duration::from_nanos((delay_ns + offset).saturating_sub(jitter_ns))
}

/// How long `len` bytes occupy a link of `rate_kbps`.
fn serialization_time(len: u64, rate_kbps: u32) -> Duration {
    // bits / (kbit/s × 1000) seconds = len × 8 × 1e6 / rate_kbps nanoseconds.
    Duration::from_nanos(len.saturating_mul(8_000_000) / u64::from(rate_kbps.max(1)))
}

/// Flips 1 to 3 distinct bytes (fewer if the packet is shorter) with non-zero masks, so that
/// exactly that many bytes differ afterwards.
fn corrupt(rng: &mut ChaCha8Rng, packet: &mut [u8]) {
    let len = packet.len() as u64;
    let count = (1 + rng.next_u64() % 3).min(len);
    let mut flipped: [Option<usize>; 3] = [None; 3];
    for slot in 0..count as usize {
        let index = loop {
            let candidate = (rng.next_u64() % len) as usize;
            if !flipped.contains(&Some(candidate)) {
                break candidate;
            }
        };
        flipped[slot] = Some(index);
        let mask = 1 + (rng.next_u64() % 255) as u8;
        packet[index] ^= mask;
    }
}
