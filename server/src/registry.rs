//! Every room of this server, by id.
//!
//! The map is behind one lock held only to look up, insert or remove a room; each room has a
//! lock of its own for its operations. Lock order is always registry, then room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chatroom_protocol::{ErrorCode, ErrorFrame, validate_room_id};
use rand::distr::{Alphanumeric, SampleString};

use crate::config::ServerConfig;
use crate::room::Room;

/// A shared handle to one room.
pub type RoomHandle = Arc<Mutex<Room>>;

/// Locks a room. A poisoned lock (a panic while it was held) is taken over: room operations
/// check everything before they change anything, so the state is still consistent.
pub fn lock(room: &RoomHandle) -> MutexGuard<'_, Room> {
    room.lock().unwrap_or_else(|e| e.into_inner())
}

/// The rooms of one server.
#[derive(Debug, Default)]
pub struct RoomRegistry {
    rooms: Mutex<HashMap<String, RoomHandle>>,
}

impl RoomRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, RoomHandle>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a room named `room` (or a random id) whose owner is `creator`.
    pub fn create(
        &self,
        room: Option<String>,
        creator: &str,
        now: Instant,
    ) -> Result<RoomHandle, ErrorFrame> {
        let mut rooms = self.map();
        let id = match room {
            Some(id) => {
                validate_room_id(&id)
                    .map_err(|e| ErrorFrame::new(ErrorCode::BadRequest, e.to_string()))?;
                if rooms.contains_key(&id) {
                    return Err(ErrorFrame::new(
                        ErrorCode::RoomExists,
                        format!("room {id} already exists"),
                    ));
                }
                id
            }
            None => loop {
                let id = format!("room-{}", Alphanumeric.sample_string(&mut rand::rng(), 10));
                if !rooms.contains_key(&id) {
                    break id;
                }
            },
        };
        let handle = Arc::new(Mutex::new(Room::new(id.clone(), creator.to_string(), now)));
        rooms.insert(id, handle.clone());
        Ok(handle)
    }

    /// The room `id`, if it exists.
    pub fn get(&self, id: &str) -> Result<RoomHandle, ErrorFrame> {
        self.map().get(id).cloned().ok_or_else(|| {
            ErrorFrame::new(ErrorCode::RoomNotFound, format!("room {id} does not exist"))
        })
    }

    /// The room `id` for `user` to join: created for it (as owner) when it does not exist and
    /// `auto_create` is on.
    pub fn get_for_join(
        &self,
        id: &str,
        user: &str,
        auto_create: bool,
        now: Instant,
    ) -> Result<RoomHandle, ErrorFrame> {
        match self.get(id) {
            Err(e) if e.code == ErrorCode::RoomNotFound && auto_create => {
                match self.create(Some(id.to_string()), user, now) {
                    // Somebody else created it in the meantime: join theirs.
                    Err(e) if e.code == ErrorCode::RoomExists => self.get(id),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// How many rooms exist.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no room exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs every room's upkeep and drops the rooms that have been empty too long.
    pub fn maintain(&self, now: Instant, config: &ServerConfig) {
        // Collect handles first so that the map lock is not held while rooms broadcast.
        let rooms: Vec<RoomHandle> = self.map().values().cloned().collect();
        let mut expired = Vec::new();
        for room in rooms {
            let mut guard = lock(&room);
            if guard.maintain(now, config) {
                expired.push(guard.id().to_string());
            }
        }
        if expired.is_empty() {
            return;
        }
        let mut map = self.map();
        for id in expired {
            tracing::debug!(room = %id, "dropping empty room");
            map.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_and_expire() {
        let registry = RoomRegistry::new();
        let config = ServerConfig::default();
        let now = Instant::now();
        registry.create(Some("lobby".into()), "alice", now).unwrap();
        assert_eq!(
            registry.create(Some("lobby".into()), "bob", now).unwrap_err().code,
            ErrorCode::RoomExists
        );
        assert_eq!(
            registry.create(Some("bad id".into()), "bob", now).unwrap_err().code,
            ErrorCode::BadRequest
        );
        let random = registry.create(None, "bob", now).unwrap();
        assert!(lock(&random).id().starts_with("room-"));
        assert_eq!(registry.get("nope").unwrap_err().code, ErrorCode::RoomNotFound);
        assert_eq!(
            registry.get_for_join("nope", "bob", false, now).unwrap_err().code,
            ErrorCode::RoomNotFound
        );
        registry.get_for_join("auto", "bob", true, now).unwrap();
        assert_eq!(registry.len(), 3);
        registry.maintain(now + config.empty_room_ttl, &config);
        assert!(registry.is_empty());
    }
}
