//! Room keys (livego.md §3): a publisher pushes to `/<app>/<key>`, players watch `/<app>/<room>`.
//!
//! Fixed relative to livego: keys come from the OS CSPRNG; resetting a room invalidates its
//! old key; rooms and keys live in separate namespaces, so a room name never aliases a key;
//! room names are validated ([`validate_room`]). Nothing here logs a key.
//!
//! Two stores: [`MemoryKeyStore`] (the default, per process) and [`RedisKeyStore`]
//! (`redis_addr`: shared by every node using the same Redis).

mod memory;
mod redis;

pub use self::redis::{KeyNames, RedisKeyStore, RedisTarget};
pub use memory::MemoryKeyStore;

use std::fmt;

use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::Rng;

/// Length of a key, as livego (`RandStringRunes(48)`).
pub const KEY_LEN: usize = 48;

/// Longest accepted room name, in bytes.
pub const MAX_ROOM_LEN: usize = 256;

/// A store mapping each room to its current key and back.
pub trait KeyStore: Send + Sync {
    /// The room's key, created if the room has none.
    fn get_key(&self, room: &str) -> Result<String, KeyError>;
    /// A new key for the room; the previous key stops working.
    fn reset_key(&self, room: &str) -> Result<String, KeyError>;
    /// Forgets the room and invalidates its key; true if the room existed.
    fn delete_room(&self, room: &str) -> Result<bool, KeyError>;
    /// The room a key currently belongs to.
    fn room_for_key(&self, key: &str) -> Result<Option<String>, KeyError>;
    /// True when calls may block (a network store such as Redis): callers then run them off
    /// the executor.
    fn is_blocking(&self) -> bool {
        false
    }
}

/// A key store failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The store could not be reached or answered with an error (the reason never contains
    /// a key).
    Unavailable(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Unavailable(why) => write!(f, "key store unavailable: {why}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a string cannot be a room name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_ROOM_LEN`] bytes.
    TooLong,
    /// The name contains a character that cannot appear in a stream name or path segment.
    ForbiddenChar(char),
    /// The name is `.` or `..`.
    DotSegment,
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomNameError::Empty => write!(f, "room name is empty"),
            RoomNameError::TooLong => {
                write!(f, "room name is longer than {MAX_ROOM_LEN} bytes")
            }
            RoomNameError::ForbiddenChar(c) => {
                write!(f, "room name contains forbidden character {c:?}")
            }
            RoomNameError::DotSegment => write!(f, "room name cannot be \".\" or \"..\""),
        }
    }
}

impl std::error::Error for RoomNameError {}

/// Checks that `room` can be a stream name: one non-empty path segment of at most
/// [`MAX_ROOM_LEN`] bytes, without `/ ? # \`, control characters, and not `.` or `..`.
/// livego accepted anything, including path traversal through room names (livego.md §3.1).
pub fn validate_room(room: &str) -> Result<(), RoomNameError> {
    if room.is_empty() {
        return Err(RoomNameError::Empty);
    }
    if room.len() > MAX_ROOM_LEN {
        return Err(RoomNameError::TooLong);
    }
    if room == "." || room == ".." {
        return Err(RoomNameError::DotSegment);
    }
    match room
        .chars()
        .find(|&c| matches!(c, '/' | '?' | '#' | '\\') || c.is_control())
    {
        Some(c) => Err(RoomNameError::ForbiddenChar(c)),
        None => Ok(()),
    }
}

/// A fresh key: [`KEY_LEN`] characters from `[0-9A-Za-z]`, drawn from the OS CSPRNG.
/// `Alphanumeric` samples by rejection, so all 62 symbols are equally likely.
pub fn new_key() -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(KEY_LEN)
        .map(char::from)
        .collect()
}

/// The room a publisher may publish as, given its publish name; `None` rejects it.
///
/// Normally `name` must be a current key, and the stream is published under its room.
/// With `noauth`, a name that is a current key still maps to its room (so encoders keep
/// working when auth is switched off), and any other valid room name is its own room. livego's
/// noauth (`GetKey(name)` then `GetChannel`) also makes room = name, but creates a key for
/// every publish name and, through its shared namespace, publishes a key-named stream as
/// `live/<key>` (livego.md §3.4); here noauth never writes to the store.
pub fn authorize_publish(
    store: &dyn KeyStore,
    name: &str,
    noauth: bool,
) -> Result<Option<String>, KeyError> {
    if let Some(room) = store.room_for_key(name)? {
        return Ok(Some(room));
    }
    Ok((noauth && validate_room(name).is_ok()).then(|| name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_48_alphanumerics_and_distinct() {
        let keys: Vec<String> = (0..100).map(|_| new_key()).collect();
        for key in &keys {
            assert_eq!(key.len(), KEY_LEN);
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
        }
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
    }

    #[test]
    fn room_names() {
        assert_eq!(validate_room("movie"), Ok(()));
        assert_eq!(validate_room("a.b-c_d é"), Ok(()));
        assert_eq!(validate_room(&"a".repeat(MAX_ROOM_LEN)), Ok(()));
        assert_eq!(
            validate_room(&"a".repeat(MAX_ROOM_LEN + 1)),
            Err(RoomNameError::TooLong)
        );
        assert_eq!(validate_room(""), Err(RoomNameError::Empty));
        assert_eq!(validate_room("."), Err(RoomNameError::DotSegment));
        assert_eq!(validate_room(".."), Err(RoomNameError::DotSegment));
        for (name, c) in [
            ("../etc", '/'),
            ("a?b", '?'),
            ("a#b", '#'),
            ("a\\b", '\\'),
            ("a\nb", '\n'),
            ("a\0", '\0'),
            ("a\u{7f}", '\u{7f}'),
        ] {
            assert_eq!(validate_room(name), Err(RoomNameError::ForbiddenChar(c)));
        }
    }

    #[test]
    fn publish_with_auth_needs_a_current_key() {
        let store = MemoryKeyStore::new();
        let key = store.get_key("movie").unwrap();
        assert_eq!(
            authorize_publish(&store, &key, false),
            Ok(Some("movie".to_owned()))
        );
        assert_eq!(authorize_publish(&store, "movie", false), Ok(None));
        assert_eq!(authorize_publish(&store, "", false), Ok(None));
        let new = store.reset_key("movie").unwrap();
        assert_eq!(authorize_publish(&store, &key, false), Ok(None));
        assert_eq!(
            authorize_publish(&store, &new, false),
            Ok(Some("movie".to_owned()))
        );
    }

    #[test]
    fn publish_with_noauth_uses_the_name_as_room() {
        let store = MemoryKeyStore::new();
        let key = store.get_key("movie").unwrap();
        assert_eq!(
            authorize_publish(&store, "show", true),
            Ok(Some("show".to_owned()))
        );
        // A key still maps to its room, and is never published under its own name.
        assert_eq!(
            authorize_publish(&store, &key, true),
            Ok(Some("movie".to_owned()))
        );
        assert_eq!(authorize_publish(&store, "../x", true), Ok(None));
        // noauth does not create keys.
        assert_eq!(store.delete_room("show"), Ok(false));
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            KeyError::Unavailable("connection refused".into()).to_string(),
            "key store unavailable: connection refused"
        );
    }
}
