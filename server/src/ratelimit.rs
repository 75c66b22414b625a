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
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
}
