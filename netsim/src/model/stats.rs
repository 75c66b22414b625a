//! Counters of what the model did to the packets, for reports.

use serde::{Deserialize, Serialize};

/// What happened to the packets of one direction.
///
/// Every packet offered is either passed or dropped for exactly one reason, so
/// `packets_in == passed + dropped()`. Duplicated, reordered, corrupted and queued packets are
/// among the passed ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionStats {
    /// Packets offered to the link.
    pub packets_in: u64,
    /// Bytes offered to the link.
    pub bytes_in: u64,
    /// Packets delivered (not counting the extra copies of duplicated packets).
    pub passed: u64,
    /// Bytes delivered (not counting the extra copies).
    pub bytes_passed: u64,
    /// Dropped by independent random loss.
    pub dropped_random: u64,
    /// Dropped by Gilbert-Elliott bursty loss (also when random loss would have dropped it too).
    pub dropped_burst: u64,
    /// Dropped because the link was down (blackout, flap, `down`).
    pub dropped_blackout: u64,
    /// Dropped because the rate limiter's queue was full.
    pub dropped_queue: u64,
    /// Packets the loss processes would have dropped but the cap on consecutive drops let
    /// through.
    pub loss_capped: u64,
    /// Packets delivered twice.
    pub duplicated: u64,
    /// Packets explicitly held back so that later ones overtake them.
    pub reordered: u64,
    /// Packets delivered with flipped bytes.
    pub corrupted: u64,
    /// Packets that had to wait in the rate limiter's queue behind earlier ones.
    pub queued: u64,
    /// The deepest the rate limiter's queue has been, in packets, including the one being sent.
    pub max_queue_depth: u64,
}

impl DirectionStats {
    /// The counters as one line of text (`passed N dropped N (random N, …) … queued N`), shared
    /// by the proxy's periodic output and the run report.
    pub fn counters_line(&self) -> String {
        format!(
            "passed {} dropped {} (random {}, burst {}, blackout {}, queue {}) duplicated {} \
             reordered {} corrupted {} queued {}",
            self.passed,
            self.dropped(),
            self.dropped_random,
            self.dropped_burst,
            self.dropped_blackout,
            self.dropped_queue,
            self.duplicated,
            self.reordered,
            self.corrupted,
            self.queued
        )
    }

    /// Packets dropped, for every reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_random + self.dropped_burst + self.dropped_blackout + self.dropped_queue
    }
}

/// What happened to the packets of both directions, and how often the NAT rebound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStats {
    /// Client to server.
    pub up: DirectionStats,
    /// Server to client.
    pub down: DirectionStats,
    /// NAT rebinds, scheduled and on demand. A rebind moves the whole mapping, so it belongs to
    /// neither direction.
    pub rebinds: u64,
}
