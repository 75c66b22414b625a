//! Protocol-wide hard limits and identifier validation.
//!
//! Servers configure tighter limits of their own (message size, attributes, rooms); these are the
//! ceilings no configuration can raise, so that every implementation can size its buffers.

/// The largest frame body, in bytes, any peer may send: 1 MiB. A length prefix above the
/// receiver's configured maximum (at most this) is rejected before anything is allocated.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// The longest room or user id, in bytes of UTF-8.
pub const MAX_ID_LEN: usize = 128;

/// The longest application `kind` tag of a message, in bytes of UTF-8.
pub const MAX_KIND_LEN: usize = 64;

/// Why an identifier or tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is empty.
    #[error("{what} is empty")]
    Empty {
        /// What was being validated (`room id`, `user id`, `kind`).
        what: &'static str,
    },
    /// The identifier is longer than allowed.
    #[error("{what} is {len} bytes, more than the maximum of {max}")]
    TooLong {
        /// What was being validated.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
    },
    /// The identifier holds a character that is not allowed.
    #[error("{what} contains {found:?}; allowed are letters, digits and - _ . : @")]
    BadChar {
        /// What was being validated.
        what: &'static str,
        /// The first character that is not allowed.
        found: char,
    },
}

fn validate(what: &'static str, id: &str, max: usize) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { what });
    }
    if id.len() > max {
        return Err(IdError::TooLong { what, len: id.len(), max });
    }
    // Ids appear in logs, CLI output and callback requests: keep them printable and unambiguous.
    match id.chars().find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))) {
        Some(found) => Err(IdError::BadChar { what, found }),
        None => Ok(()),
    }
}

/// Checks a room id: 1 to [`MAX_ID_LEN`] bytes of letters, digits and `- _ . : @`.
pub fn validate_room_id(room: &str) -> Result<(), IdError> {
    validate("room id", room, MAX_ID_LEN)
}

/// Checks a user id: 1 to [`MAX_ID_LEN`] bytes of letters, digits and `- _ . : @`.
pub fn validate_user_id(user: &str) -> Result<(), IdError> {
    validate("user id", user, MAX_ID_LEN)
}

/// Checks a message `kind` tag: 1 to [`MAX_KIND_LEN`] bytes of letters, digits and `- _ . : @`.
pub fn validate_kind(kind: &str) -> Result<(), IdError> {
    validate("kind", kind, MAX_KIND_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_room_id("lobby-1").is_ok());
        assert!(validate_user_id("alice@example.com").is_ok());
        assert_eq!(validate_room_id(""), Err(IdError::Empty { what: "room id" }));
        assert!(matches!(validate_user_id("a b"), Err(IdError::BadChar { found: ' ', .. })));
        assert!(matches!(
            validate_room_id(&"x".repeat(129)),
            Err(IdError::TooLong { len: 129, .. })
        ));
        assert!(validate_kind(&"k".repeat(MAX_KIND_LEN)).is_ok());
    }
}
