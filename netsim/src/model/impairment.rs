//! The knobs of one direction of the link, and partial overrides of them for timeline phases.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::units::{serde_duration, serde_opt_duration, serde_opt_probability, serde_probability};

/// The longest delay-like value accepted. Longer ones are almost certainly a unit mistake, and
/// the proxy would have to hold every packet for that long.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// Default drop-tail queue length in packets when a rate limit is set. 64 full-size packets is
/// ~96 KB: at 750 kbit/s that is ~1 s of queueing, the kind of bufferbloat mobile links show.
pub const DEFAULT_QUEUE_PACKETS: u32 = 64;

/// How much later the copy of a duplicated packet arrives than the original.
pub const DUPLICATE_SPACING: Duration = Duration::from_millis(1);

/// The impairment of one direction of the link. The default is a perfect link: nothing lost,
/// delayed, reordered, duplicated or corrupted, and no rate limit.
///
/// A packet goes through the stages in this order (see [`Model::decide`](super::Model::decide)):
/// link down → loss (independent and Gilbert-Elliott, with the burst cap) → rate limit and
/// drop-tail queue → delay with jitter → explicit reordering → duplication → corruption.
///
/// Probabilities are fractions from 0 to 1; in scenario files they may also be written `"2%"`.
/// Durations are written `"250ms"`, `"2s"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Impairment {
    /// Independent random loss: each packet is dropped with this probability.
    #[serde(with = "serde_probability")]
    pub loss: f64,
    /// Gilbert-Elliott bursty loss: probability, per packet, of moving from the good to the bad
    /// state. 0 (the default) turns the burst model off.
    #[serde(with = "serde_probability")]
    pub ge_p: f64,
    /// Gilbert-Elliott: probability, per packet, of moving from the bad back to the good state.
    /// The mean stay in the bad state, hence the mean burst length when `ge_loss_bad` is 1, is
    /// `1 / ge_r` packets.
    #[serde(with = "serde_probability")]
    pub ge_r: f64,
    /// Gilbert-Elliott: loss probability in the good state. Default 0.
    #[serde(with = "serde_probability")]
    pub ge_loss_good: f64,
    /// Gilbert-Elliott: loss probability in the bad state. Default 1 (Gilbert's original model:
    /// the bad state loses everything).
    #[serde(with = "serde_probability")]
    pub ge_loss_bad: f64,
    /// At most this many packets in a row are lost to the loss processes above; the next one is
    /// let through. The QUIC interop runner caps bursts at 3. It does not apply to blackouts or
    /// queue overflow, which are outages and congestion rather than loss. Default: no cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_consecutive_drops: Option<u32>,
    /// One-way propagation delay.
    #[serde(with = "serde_duration")]
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter` (clamped at zero), so
    /// packets sent closer together than the jitter may be reordered, as on a real path with
    /// per-packet routing or link-layer retransmission.
    #[serde(with = "serde_duration")]
    pub jitter: Duration,
    /// Probability that a packet is explicitly held back by `reorder_delay`, so that packets
    /// sent after it overtake it.
    #[serde(with = "serde_probability")]
    pub reorder: f64,
    /// How long a reordered packet is held beyond its normal delay. Default
    /// [`Impairment::DEFAULT_REORDER_DELAY`]: `delay / 2 + 10 ms`, enough to be overtaken by the
    /// next packets at any rate above ~100 packets/s, short of looking like a loss to QUIC.
    #[serde(with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub reorder_delay: Option<Duration>,
    /// Probability that a packet is delivered twice; the copy comes [`DUPLICATE_SPACING`] later.
    /// Duplication happens after the rate limit: the copy uses no modelled bandwidth.
    #[serde(with = "serde_probability")]
    pub duplicate: f64,
    /// Probability that 1 to 3 distinct random bytes of the payload are flipped.
    #[serde(with = "serde_probability")]
    pub corrupt: f64,
    /// Bandwidth limit in kilobits per second (1 kbit = 1000 bit). Each packet occupies the link
    /// for `len × 8 / rate` and waits behind earlier ones; see `queue_packets`. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_kbps: Option<u32>,
    /// Drop-tail queue length with a rate limit, counting the packet being sent: a packet that
    /// finds this many waiting is dropped. Default [`DEFAULT_QUEUE_PACKETS`].
    pub queue_packets: u32,
    /// The link is down: every packet is dropped (counted as a blackout drop).
    pub down: bool,
}

impl Impairment {
    /// Extra hold of a reordered packet when `reorder_delay` is not set: added to `delay / 2`.
    pub const DEFAULT_REORDER_DELAY: Duration = Duration::from_millis(10);

    /// A perfect link (same as [`Default`]).
    pub const PERFECT: Self = Self {
        loss: 0.0,
        ge_p: 0.0,
        ge_r: 0.0,
        ge_loss_good: 0.0,
        ge_loss_bad: 1.0,
        max_consecutive_drops: None,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        reorder: 0.0,
        reorder_delay: None,
        duplicate: 0.0,
        corrupt: 0.0,
        rate_kbps: None,
        queue_packets: DEFAULT_QUEUE_PACKETS,
        down: false,
    };

    /// How long a reordered packet is held beyond its normal delay.
    pub fn effective_reorder_delay(&self) -> Duration {
        self.reorder_delay.unwrap_or(self.delay / 2 + Self::DEFAULT_REORDER_DELAY)
    }

    /// Checks every value is in range: probabilities within 0..=1, delays at most
    /// [`MAX_DELAY`], a rate limit above zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let probabilities = [
            ("loss", self.loss),
            ("ge_p", self.ge_p),
            ("ge_r", self.ge_r),
            ("ge_loss_good", self.ge_loss_good),
            ("ge_loss_bad", self.ge_loss_bad),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
            ("corrupt", self.corrupt),
        ];
        for (name, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Probability { name, value });
            }
        }
        let delays = [
            ("delay", self.delay),
            ("jitter", self.jitter),
            ("reorder_delay", self.reorder_delay.unwrap_or_default()),
        ];
        for (name, value) in delays {
            if value > MAX_DELAY {
                return Err(ConfigError::TooLong { name, value, max: MAX_DELAY });
            }
        }
        if self.rate_kbps == Some(0) {
            return Err(ConfigError::ZeroRate);
        }
        Ok(())
    }
}

impl Default for Impairment {
    fn default() -> Self {
        Self::PERFECT
    }
}

/// A partial [`Impairment`]: the fields that are set replace the base's during a timeline phase
/// or on the command line; the others are left as they are. An optional limit
/// (`rate_kbps`, `max_consecutive_drops`, `reorder_delay`) can be set but not removed by an
/// override: put such a limit in the phases that need it rather than in the base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpairmentOverride {
    /// Replaces [`Impairment::loss`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Replaces [`Impairment::ge_p`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub ge_p: Option<f64>,
    /// Replaces [`Impairment::ge_r`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub ge_r: Option<f64>,
    /// Replaces [`Impairment::ge_loss_good`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub ge_loss_good: Option<f64>,
    /// Replaces [`Impairment::ge_loss_bad`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub ge_loss_bad: Option<f64>,
    /// Replaces [`Impairment::max_consecutive_drops`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_consecutive_drops: Option<u32>,
    /// Replaces [`Impairment::delay`].
    #[serde(with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Replaces [`Impairment::jitter`].
    #[serde(with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Duration>,
    /// Replaces [`Impairment::reorder`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Replaces [`Impairment::reorder_delay`].
    #[serde(with = "serde_opt_duration", skip_serializing_if = "Option::is_none")]
    pub reorder_delay: Option<Duration>,
    /// Replaces [`Impairment::duplicate`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Replaces [`Impairment::corrupt`].
    #[serde(with = "serde_opt_probability", skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// Replaces [`Impairment::rate_kbps`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_kbps: Option<u32>,
    /// Replaces [`Impairment::queue_packets`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_packets: Option<u32>,
    /// Replaces [`Impairment::down`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<bool>,
}

impl ImpairmentOverride {
    /// Writes the fields that are set over `base`.
    pub fn apply(&self, base: &mut Impairment) {
        fn set<T: Copy>(target: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *target = value;
            }
        }
        set(&mut base.loss, self.loss);
        set(&mut base.ge_p, self.ge_p);
        set(&mut base.ge_r, self.ge_r);
        set(&mut base.ge_loss_good, self.ge_loss_good);
        set(&mut base.ge_loss_bad, self.ge_loss_bad);
        set(&mut base.delay, self.delay);
        set(&mut base.jitter, self.jitter);
        set(&mut base.reorder, self.reorder);
        set(&mut base.duplicate, self.duplicate);
        set(&mut base.corrupt, self.corrupt);
        set(&mut base.queue_packets, self.queue_packets);
        set(&mut base.down, self.down);
        if self.max_consecutive_drops.is_some() {
            base.max_consecutive_drops = self.max_consecutive_drops;
        }
        if self.reorder_delay.is_some() {
            base.reorder_delay = self.reorder_delay;
        }
        if self.rate_kbps.is_some() {
            base.rate_kbps = self.rate_kbps;
        }
    }

    /// The override applied to a perfect link.
    pub fn to_impairment(&self) -> Impairment {
        let mut impairment = Impairment::default();
        self.apply(&mut impairment);
        impairment
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
