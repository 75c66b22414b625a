//! When and how often to reconnect, as plain state that takes `now`: the back-off schedule, the
//! give-up deadline, and which endings are worth a reconnection at all.

use std::time::{Duration, Instant};

use chatroom_protocol::{CloseCode, ErrorCode};
use quinn::ConnectionError;

use crate::error::ConnectError;

/// The reconnection schedule of one client: exponential back-off with jitter, reset once a
/// connection has proven stable, and an optional deadline after which the client gives up.
#[derive(Debug, Clone)]
pub(crate) struct ReconnectPolicy {
    initial: Duration,
    max: Duration,
    jitter: f64,
    give_up_after: Option<Duration>,
    /// Doublings of `initial` for the next attempt. Kept across a connection that failed soon
    /// after it was made, so that a flapping path does not turn into a reconnect storm.
    level: u32,
    /// Attempts in the current outage.
    attempt: u32,
    outage_since: Option<Instant>,
    connected_since: Option<Instant>,
}

/// The next reconnection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Its number in the current outage, from 1.
    pub(crate) number: u32,
    /// How long to wait before it.
    pub(crate) delay: Duration,
}

impl ReconnectPolicy {
    /// A schedule whose delays start at `initial` and double up to `max`, each shortened by a
    /// random fraction of up to `jitter` (0 = none, 1 = anywhere between zero and the full
    /// delay); with `give_up_after`, the client gives up once an outage lasts that long.
    pub(crate) fn new(
        initial: Duration,
        max: Duration,
        jitter: f64,
        give_up_after: Option<Duration>,
    ) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter: if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 1.0 },
            give_up_after,
            level: 0,
            attempt: 0,
            outage_since: None,
            connected_since: None,
        }
    }

    /// A session is up again.
    pub(crate) fn connected(&mut self, now: Instant) {
        self.connected_since = Some(now);
        self.outage_since = None;
        self.attempt = 0;
    }

    /// The connection was lost: an outage starts. The back-off starts over only if the
    /// connection had lasted at least as long as the longest delay.
    pub(crate) fn lost(&mut self, now: Instant) {
        if self.connected_since.is_some_and(|since| now.duration_since(since) >= self.max) {
            self.level = 0;
        }
        self.connected_since = None;
        self.outage_since.get_or_insert(now);
        self.attempt = 0;
    }

    /// The next attempt, or `None` when the outage has lasted past the give-up deadline.
    /// `random` is uniform in `[0, 1)`; it decides the jitter.
    pub(crate) fn next_attempt(&mut self, now: Instant, random: f64) -> Option<Attempt> {
        let since = *self.outage_since.get_or_insert(now);
        let remaining = match self.give_up_after {
            Some(limit) => Some(limit.checked_sub(now.duration_since(since))?),
            None => None,
        };
        if remaining.is_some_and(|r| r.is_zero()) {
            return None;
        }
        let base = self.initial.saturating_mul(1 << self.level.min(20)).min(self.max);
        let random = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.0 };
        let delay = base.mul_f64(1.0 - self.jitter * random);
        let delay = remaining.map_or(delay, |remaining| delay.min(remaining));
        self.level = self.level.saturating_add(1);
        self.attempt = self.attempt.saturating_add(1);
        Some(Attempt { number: self.attempt, delay })
    }

    /// How long the current outage has lasted.
    pub(crate) fn outage(&self, now: Instant) -> Duration {
        self.outage_since.map_or(Duration::ZERO, |since| now.duration_since(since))
    }
}

/// What to do after a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterClose {
    /// Connect again and resume.
    Reconnect,
    /// The client is done: closed by the application, or refused for good.
    Stop,
}

/// Whether a connection that ended with `error` should be replaced. `local` is the code this
/// client closed it with, if it did.
///
/// Stops for a deliberate close (by the application, or a normal close by the server, which
/// ended the session) and for protocol and authentication failures, which another attempt
/// would only repeat. Everything else (timeouts, resets, a server going away or shedding a slow
/// consumer, internal errors) is transient.
pub(crate) fn after_close(error: &ConnectionError, local: Option<CloseCode>) -> AfterClose {
    match error {
        ConnectionError::ApplicationClosed(close) => {
            let code = u32::try_from(close.error_code.into_inner())
                .map_or(CloseCode::Unknown(u32::MAX), CloseCode::from_u32);
            after_close_code(code)
        }
        ConnectionError::LocallyClosed => match local {
            // This client dropped a connection whose path died, to reconnect at once.
            Some(CloseCode::GoingAway) => AfterClose::Reconnect,
            _ => AfterClose::Stop,
        },
        _ => AfterClose::Reconnect,
    }
}

fn after_close_code(code: CloseCode) -> AfterClose {
    match code {
        CloseCode::Normal
        | CloseCode::ProtocolViolation
        | CloseCode::FrameTooLarge
        | CloseCode::UnsupportedVersion
        | CloseCode::Unauthorized => AfterClose::Stop,
        CloseCode::GoingAway
        | CloseCode::SlowConsumer
        | CloseCode::Internal
        | CloseCode::LimitExceeded
        | CloseCode::Unknown(_) => AfterClose::Reconnect,
    }
}

/// Whether a failed reconnection attempt is worth another. Refusals that another attempt
/// would repeat (credentials, version, a server breaking the protocol) stop the client; network
/// failures, timeouts and a server that is restarting or overloaded do not.
pub(crate) fn retry_after(error: &ConnectError) -> bool {
    match error {
        ConnectError::Rejected(frame) => !matches!(
            frame.code,
            ErrorCode::Unauthorized
                | ErrorCode::Forbidden
                | ErrorCode::BadRequest
                | ErrorCode::UnsupportedVersion
        ),
        ConnectError::Closed { code, .. } => after_close_code(*code) == AfterClose::Reconnect,
        ConnectError::UnsupportedVersion { .. }
        | ConnectError::Encode(_)
        | ConnectError::Protocol(_)
        | ConnectError::UnexpectedFrame(_)
        | ConnectError::InvalidUser(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use chatroom_protocol::ErrorFrame;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(jitter: f64, give_up: Option<Duration>) -> ReconnectPolicy {
        ReconnectPolicy::new(100 * MS, 1000 * MS, jitter, give_up)
    }

    #[test]
    fn delays_double_up_to_the_maximum() {
        let now = Instant::now();
        let mut policy = policy(0.0, None);
        policy.lost(now);
        let delays: Vec<_> =
            (0..6).map(|_| policy.next_attempt(now, 0.5).unwrap().delay.as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.next_attempt(now, 0.5).unwrap().number, 7);
    }

    #[test]
    fn jitter_shortens_by_up_to_its_fraction() {
        let now = Instant::now();
        let mut full = policy(1.0, None);
        full.lost(now);
        assert_eq!(full.next_attempt(now, 0.0).unwrap().delay, 100 * MS);
        assert_eq!(full.next_attempt(now, 0.75).unwrap().delay, 50 * MS);
        let mut half = policy(0.5, None);
        half.lost(now);
        assert_eq!(half.next_attempt(now, 0.999_999).unwrap().delay.as_millis(), 50);
        assert_eq!(half.next_attempt(now, 0.5).unwrap().delay, 150 * MS);
        // Out-of-range inputs are tamed.
        let mut odd = ReconnectPolicy::new(100 * MS, 10 * MS, f64::NAN, None);
        odd.lost(now);
        assert_eq!(odd.next_attempt(now, 7.0).unwrap().delay, Duration::ZERO);
    }

    #[test]
    fn a_stable_connection_resets_the_back_off_and_a_flapping_one_does_not() {
        let now = Instant::now();
        let mut policy = policy(0.0, None);
        policy.lost(now);
        for _ in 0..3 {
            policy.next_attempt(now, 0.0);
        }
        policy.connected(now);
        policy.lost(now + 10 * MS);
        let flapping = policy.next_attempt(now + 10 * MS, 0.0).unwrap();
        assert_eq!((flapping.number, flapping.delay), (1, 800 * MS));

        let later = now + 20 * MS;
        policy.connected(later);
        policy.lost(later + 1000 * MS);
        let stable = policy.next_attempt(later + 1000 * MS, 0.0).unwrap();
        assert_eq!((stable.number, stable.delay), (1, 100 * MS));
    }

    #[test]
    fn gives_up_after_the_deadline_without_sleeping_past_it() {
        let now = Instant::now();
        let mut policy = policy(0.0, Some(250 * MS));
        policy.lost(now);
        assert_eq!(policy.next_attempt(now, 0.0).unwrap().delay, 100 * MS);
        assert_eq!(policy.next_attempt(now + 100 * MS, 0.0).unwrap().delay, 150 * MS);
        assert_eq!(policy.next_attempt(now + 250 * MS, 0.0), None);
        assert_eq!(policy.outage(now + 250 * MS), 250 * MS);
        // A reconnection ends the outage.
        policy.connected(now + 300 * MS);
        assert_eq!(policy.outage(now + 300 * MS), Duration::ZERO);
    }

    #[test]
    fn which_endings_reconnect() {
        use CloseCode::*;
        for code in [Normal, ProtocolViolation, FrameTooLarge, UnsupportedVersion, Unauthorized] {
            assert_eq!(after_close_code(code), AfterClose::Stop, "{code}");
        }
        for code in [GoingAway, SlowConsumer, Internal, LimitExceeded, Unknown(99)] {
            assert_eq!(after_close_code(code), AfterClose::Reconnect, "{code}");
        }
        assert_eq!(after_close(&ConnectionError::TimedOut, None), AfterClose::Reconnect);
        assert_eq!(after_close(&ConnectionError::Reset, None), AfterClose::Reconnect);
        assert_eq!(after_close(&ConnectionError::LocallyClosed, Some(Normal)), AfterClose::Stop);
        assert_eq!(after_close(&ConnectionError::LocallyClosed, None), AfterClose::Stop);
        assert_eq!(
            after_close(&ConnectionError::LocallyClosed, Some(GoingAway)),
            AfterClose::Reconnect
        );
    }

    #[test]
    fn which_attempt_failures_retry() {
        let rejected = |code| ConnectError::Rejected(ErrorFrame::new(code, "no"));
        assert!(!retry_after(&rejected(ErrorCode::Unauthorized)));
        assert!(!retry_after(&rejected(ErrorCode::UnsupportedVersion)));
        assert!(retry_after(&rejected(ErrorCode::AuthUnavailable)));
        assert!(retry_after(&rejected(ErrorCode::GoingAway)));
        assert!(retry_after(&ConnectError::Timeout(Duration::from_secs(1))));
        assert!(retry_after(&ConnectError::Closed {
            code: CloseCode::GoingAway,
            reason: "".into()
        }));
        assert!(!retry_after(&ConnectError::Closed {
            code: CloseCode::Unauthorized,
            reason: "".into()
        }));
        assert!(!retry_after(&ConnectError::UnsupportedVersion { server: 2, client: 1 }));
    }
}
