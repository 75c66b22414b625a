//! Sessions outlive connections: a session whose connection is lost keeps its memberships for
//! the resume window, so that the client can come back to exactly where it was.
//!
//! Lock order: a session's lock is taken before a room's, never the other way round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};

use crate::config::ServerConfig;
use crate::ratelimit::TokenBucket;
use crate::registry::{RoomHandle, lock};
use crate::room::SessionKey;

/// One session: a user's presence in its rooms, across connections.
#[derive(Debug)]
pub struct SessionState {
    /// Identifies the session inside rooms.
    pub key: SessionKey,
    /// The public session id (in the welcome and in resume tokens).
    pub id: String,
    /// The user it acts as.
    pub user: String,
    /// The rooms whose membership it holds.
    pub rooms: HashMap<String, RoomHandle>,
    /// How many connections are attached to it.
    pub attached: usize,
    /// Since when no connection has been attached.
    pub detached_since: Option<Instant>,
    /// Set when the session ended; a handle obtained before that must not be resumed.
    pub ended: bool,
}

/// A shared handle to one session.
pub type SessionHandle = Arc<Mutex<SessionState>>;

/// Locks a session, taking over a poisoned lock (its state stays consistent: every change is a
/// single insert or remove).
pub fn lock_session(session: &SessionHandle) -> MutexGuard<'_, SessionState> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every live or resumable session of this server, by id.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: Mutex<HashMap<String, SessionHandle>>,
    next_key: AtomicU64,
    /// Each user's message rate limit, over all its sessions and connections.
    user_rates: Mutex<HashMap<String, TokenBucket>>,
}

impl SessionRegistry {
    fn map(&self) -> MutexGuard<'_, HashMap<String, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session of `user` with one attached connection.
    pub fn create(&self, user: &str) -> SessionHandle {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let mut map = self.map();
        let id = loop {
            let id = Alphanumeric.sample_string(&mut rand::rng(), 16);
            if !map.contains_key(&id) {
                break id;
            }
        };
        let state = SessionState {
            key,
            id: id.clone(),
            user: user.to_string(),
            rooms: HashMap::new(),
            attached: 1,
            detached_since: None,
            ended: false,
        };
        let handle = Arc::new(Mutex::new(state));
        map.insert(id, handle.clone());
        handle
    }

    /// Takes one message token of `user`; false when the user sends too fast.
    pub fn take_message_token(&self, user: &str, now: Instant, config: &ServerConfig) -> bool {
        let mut rates = self.user_rates.lock().unwrap_or_else(|e| e.into_inner());
        rates
            .entry(user.to_string())
            .or_insert_with(|| TokenBucket::new(config.message_rate, config.message_burst, now))
            .try_take(now)
    }

    /// The session `id`, if it still exists.
    pub fn get(&self, id: &str) -> Option<SessionHandle> {
        self.map().get(id).cloned()
    }

    /// How many sessions exist (attached or waiting to be resumed).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends a session now: it leaves all its rooms and can no longer be resumed.
    pub fn end(&self, session: &SessionHandle, now: Instant, config: &ServerConfig) {
        self.end_locked(&mut lock_session(session), now, config);
    }

    fn end_locked(&self, state: &mut SessionState, now: Instant, config: &ServerConfig) {
        self.map().remove(&state.id);
        state.ended = true;
        for room in state.rooms.values() {
            lock(room).end_session(&state.user, state.key, now, config);
        }
        state.rooms.clear();
    }

    /// Ends every session that has had no connection for `window` or longer.
    pub fn expire(&self, now: Instant, window: Duration, config: &ServerConfig) {
        // A full bucket is the same as no bucket: forget it, so the map holds only active users.
        self.user_rates.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, b| !b.is_full(now));
        let sessions: Vec<SessionHandle> = self.map().values().cloned().collect();
        for session in sessions {
            // Checked and ended under one lock, so that a resume cannot slip in between.
            let mut state = lock_session(&session);
            if state
                .detached_since
                .is_some_and(|since| now.saturating_duration_since(since) >= window)
            {
                tracing::debug!(session = %state.id, user = %state.user, "resume window passed");
                self.end_locked(&mut state, now, config);
            }
        }
    }
}
