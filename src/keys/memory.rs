//! The default, in-memory key store (livego's local store, livego.md §3.2, fixed).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use super::{new_key, KeyError, KeyStore};

/// Keys held in process memory and lost on restart. A `Mutex` is fine: this is rare control
/// data, never touched on the packet path.
#[derive(Default)]
pub struct MemoryKeyStore {
    maps: Mutex<Maps>,
}

/// The two directions, in separate maps so a room name can never be taken for a key.
#[derive(Default)]
struct Maps {
    room_to_key: HashMap<String, String>,
    key_to_room: HashMap<String, String>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Maps> {
        // Every update below leaves both maps consistent before anything can panic, so a
        // poisoned lock still guards valid data.
        self.maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Maps {
    /// Gives `room` a fresh key, dropping its old key from the reverse map.
    fn assign_new_key(&mut self, room: &str) -> String {
        let key = loop {
            let key = new_key();
            if !self.key_to_room.contains_key(&key) {
                break key;
            }
        };
        if let Some(old) = self.room_to_key.insert(room.to_owned(), key.clone()) {
            self.key_to_room.remove(&old);
        }
        self.key_to_room.insert(key.clone(), room.to_owned());
        key
    }
}

impl KeyStore for MemoryKeyStore {
    fn get_key(&self, room: &str) -> Result<String, KeyError> {
        let mut maps = self.lock();
        match maps.room_to_key.get(room) {
            Some(key) => Ok(key.clone()),
            None => Ok(maps.assign_new_key(room)),
        }
    }

    fn reset_key(&self, room: &str) -> Result<String, KeyError> {
        Ok(self.lock().assign_new_key(room))
    }

    fn delete_room(&self, room: &str) -> Result<bool, KeyError> {
        let mut maps = self.lock();
        let Some(key) = maps.room_to_key.remove(room) else {
            return Ok(false);
        };
        maps.key_to_room.remove(&key);
        Ok(true)
    }

    fn room_for_key(&self, key: &str) -> Result<Option<String>, KeyError> {
        Ok(self.lock().key_to_room.get(key).cloned())
    }
}

/// Shows only the number of rooms: keys must never reach a log line.
impl fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryKeyStore")
            .field("rooms", &self.lock().room_to_key.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_returns_the_same_key_and_maps_back() {
        let store = MemoryKeyStore::new();
        let key = store.get_key("movie").unwrap();
        assert_eq!(store.get_key("movie").unwrap(), key);
        assert_eq!(store.room_for_key(&key), Ok(Some("movie".to_owned())));
        assert_ne!(store.get_key("other").unwrap(), key);
        assert_eq!(store.room_for_key("movie"), Ok(None));
    }

    #[test]
    fn reset_invalidates_the_old_key() {
        let store = MemoryKeyStore::new();
        let old = store.get_key("movie").unwrap();
        let new = store.reset_key("movie").unwrap();
        assert_ne!(old, new);
        assert_eq!(store.room_for_key(&old), Ok(None));
        assert_eq!(store.room_for_key(&new), Ok(Some("movie".to_owned())));
        assert_eq!(store.get_key("movie").unwrap(), new);
        // Resetting an unknown room creates it.
        let fresh = store.reset_key("new-room").unwrap();
        assert_eq!(store.get_key("new-room").unwrap(), fresh);
    }

    #[test]
    fn delete_invalidates_the_key() {
        let store = MemoryKeyStore::new();
        let key = store.get_key("movie").unwrap();
        assert_eq!(store.delete_room("movie"), Ok(true));
        assert_eq!(store.delete_room("movie"), Ok(false));
        assert_eq!(store.room_for_key(&key), Ok(None));
        assert_ne!(store.get_key("movie").unwrap(), key);
    }

    #[test]
    fn rooms_and_keys_do_not_alias() {
        let store = MemoryKeyStore::new();
        let key = store.get_key("movie").unwrap();
        // A room named like an existing key is a new, unrelated room.
        let other = store.get_key(&key).unwrap();
        assert_ne!(other, "movie");
        assert_eq!(store.room_for_key(&other), Ok(Some(key.clone())));
        assert_eq!(store.room_for_key(&key), Ok(Some("movie".to_owned())));
        assert_eq!(store.delete_room(&key), Ok(true));
        assert_eq!(store.room_for_key(&key), Ok(Some("movie".to_owned())));
    }

    #[test]
    fn debug_hides_keys() {
        let store = MemoryKeyStore::new();
        let key = store.get_key("movie").unwrap();
        let shown = format!("{store:?}");
        assert_eq!(shown, "MemoryKeyStore { rooms: 1 }");
        assert!(!shown.contains(&key));
        assert!(!store.is_blocking());
    }
}
