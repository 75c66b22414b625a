//! A token bucket: `rate` tokens a second, at most `burst` saved up. Time comes in as `now`.

use std::time::Instant;

/// A token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self { rate, burst, tokens: burst, last: now }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.try_take_keeping(now, 0.0)
    }

    /// Takes one token only if `reserve` tokens are left after it: lower-priority callers keep
    /// a reserve for higher-priority ones.
    pub fn try_take_keeping(&mut self, now: Instant, reserve: f64) -> bool {
        self.refill(now);
        if self.tokens - 1.0 >= reserve {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The bucket's size.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Whether the bucket is full again at `now`: it then holds no state worth keeping.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_rate() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3.0, now);
        assert_eq!((0..5).filter(|_| bucket.try_take(now)).count(), 3);
        assert!(!bucket.try_take(now + Duration::from_millis(400)));
        assert!(bucket.try_take(now + Duration::from_millis(500)));
        // Saved tokens never exceed the burst.
        let later = now + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 3);
    }

    #[test]
    fn reserves_are_kept_for_higher_priorities() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 10.0, now);
        // Keeping 5 back: only 5 of the 10 tokens can be taken.
        assert_eq!((0..10).filter(|_| bucket.try_take_keeping(now, 5.0)).count(), 5);
        assert_eq!((0..10).filter(|_| bucket.try_take(now)).count(), 5);
        assert!(!bucket.is_full(now));
        assert!(bucket.is_full(now + Duration::from_secs(10)));
    }
}
