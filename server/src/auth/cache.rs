//! The cache of the business server's *allow* answers, as plain state that takes `now`.
//!
//! Entries all live for the same TTL, so insertion order is expiry order: a queue of
//! (expiry, key) in insertion order lets every operation drop expired entries from its front
//! in amortized constant time, and the size stays bounded without scanning the map.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ring::digest;

use super::{CallKind, JoinGrant};

/// What an answer is cached under. The token is kept only as a SHA-256 hash, so the cache
/// holds no credentials; a different token is a different key, so a new token is checked anew.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    kind: CallKind,
    user: String,
    token_hash: [u8; 32],
    room: Option<String>,
}

impl CacheKey {
    pub(crate) fn new(kind: CallKind, user: &str, token: Option<&str>, room: Option<&str>) -> Self {
        // A leading tag byte keeps "no token" apart from an empty token.
        let mut context = digest::Context::new(&digest::SHA256);
        match token {
            None => context.update(&[0]),
            Some(token) => {
                context.update(&[1]);
                context.update(token.as_bytes());
            }
        }
        let mut token_hash = [0u8; 32];
        token_hash.copy_from_slice(context.finish().as_ref());
        Self { kind, user: user.into(), token_hash, room: room.map(Into::into) }
    }
}

struct Entry {
    grant: JoinGrant,
    expires: Instant,
}

/// Allow answers by key, each kept for `ttl`, at most `max_entries` of them.
pub(crate) struct GrantCache {
    ttl: Duration,
    max_entries: usize,
    entries: HashMap<CacheKey, Entry>,
    /// Keys in insertion (and so expiry) order. A key may appear twice when it was inserted
    /// again after expiring; only the entry whose expiry matches is removed.
    order: VecDeque<(Instant, CacheKey)>,
}

impl GrantCache {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        Self { ttl, max_entries, entries: HashMap::new(), order: VecDeque::new() }
    }

    /// The cached grant for `key`, if one was inserted less than the TTL before `now`.
    pub(crate) fn get(&mut self, key: &CacheKey, now: Instant) -> Option<JoinGrant> {
        self.expire(now);
        let entry = self.entries.get(key)?;
        // `expire` removed everything at or before `now`; this guards a clock that went back.
        (entry.expires > now).then(|| entry.grant.clone())
    }

    /// Remembers `grant` for `key` until `now + ttl`. Does nothing when the TTL is zero or the
    /// cache is full (the answer is simply not cached).
    pub(crate) fn insert(&mut self, key: CacheKey, grant: JoinGrant, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        self.expire(now);
        if self.order.len() >= self.max_entries {
            return;
        }
        let Some(expires) = now.checked_add(self.ttl) else { return };
        self.order.push_back((expires, key.clone()));
        self.entries.insert(key, Entry { grant, expires });
    }

    /// How many answers are cached (expired ones included until the next operation).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            let Some((expires, key)) = self.order.pop_front() else { break };
            if self.entries.get(&key).is_some_and(|entry| entry.expires == expires) {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chatroom_protocol::Role;

    use super::*;
    use crate::auth::AuthMethod;

    fn grant(role: Option<Role>) -> JoinGrant {
        JoinGrant { role, attributes: Default::default(), method: AuthMethod::Callback }
    }

    fn join_key(user: &str, token: Option<&str>, room: &str) -> CacheKey {
        CacheKey::new(CallKind::Join, user, token, Some(room))
    }

    #[test]
    fn keeps_an_answer_for_the_ttl() {
        let t0 = Instant::now();
        let mut cache = GrantCache::new(Duration::from_secs(30), 100);
        let key = join_key("alice", Some("t"), "lobby");
        assert_eq!(cache.get(&key, t0), None);
        cache.insert(key.clone(), grant(Some(Role::Owner)), t0);
        assert_eq!(cache.get(&key, t0), Some(grant(Some(Role::Owner))));
        assert_eq!(cache.get(&key, t0 + Duration::from_secs(29)), Some(grant(Some(Role::Owner))));
        assert_eq!(cache.get(&key, t0 + Duration::from_secs(30)), None);
        assert_eq!(cache.len(), 0, "expired entries are dropped");
    }

    #[test]
    fn keys_separate_kind_user_token_and_room() {
        let t0 = Instant::now();
        let mut cache = GrantCache::new(Duration::from_secs(30), 100);
        cache.insert(join_key("alice", Some("t"), "lobby"), grant(None), t0);
        for other in [
            join_key("bob", Some("t"), "lobby"),
            join_key("alice", Some("t2"), "lobby"),
            join_key("alice", None, "lobby"),
            join_key("alice", Some(""), "lobby"),
            join_key("alice", Some("t"), "games"),
            CacheKey::new(CallKind::Connect, "alice", Some("t"), None),
        ] {
            assert_eq!(cache.get(&other, t0), None, "{other:?}");
        }
        assert_eq!(cache.get(&join_key("alice", Some("t"), "lobby"), t0), Some(grant(None)));
    }

    #[test]
    fn a_reinserted_key_lives_from_its_new_insertion() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(10);
        let mut cache = GrantCache::new(ttl, 100);
        let key = join_key("alice", None, "lobby");
        cache.insert(key.clone(), grant(None), t0);
        // Expired at t0 + 10 s, inserted again at t0 + 15 s with a new role.
        let t1 = t0 + Duration::from_secs(15);
        assert_eq!(cache.get(&key, t1), None);
        cache.insert(key.clone(), grant(Some(Role::Admin)), t1);
        assert_eq!(cache.get(&key, t1 + Duration::from_secs(9)), Some(grant(Some(Role::Admin))));
        assert_eq!(cache.get(&key, t1 + ttl), None);
    }

    #[test]
    fn stays_within_its_size_until_entries_expire() {
        let t0 = Instant::now();
        let mut cache = GrantCache::new(Duration::from_secs(10), 3);
        for (i, user) in ["a", "b", "c", "d"].into_iter().enumerate() {
            cache.insert(
                join_key(user, None, "r"),
                grant(None),
                t0 + Duration::from_secs(i as u64),
            );
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&join_key("d", None, "r"), t0 + Duration::from_secs(4)), None);
        // Once "a" expires there is room again.
        let later = t0 + Duration::from_secs(10);
        cache.insert(join_key("d", None, "r"), grant(None), later);
        assert_eq!(cache.get(&join_key("d", None, "r"), later), Some(grant(None)));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let t0 = Instant::now();
        let mut cache = GrantCache::new(Duration::ZERO, 100);
        let key = join_key("alice", None, "lobby");
        cache.insert(key.clone(), grant(None), t0);
        assert_eq!(cache.get(&key, t0), None);
        assert_eq!(cache.len(), 0);
    }
}
