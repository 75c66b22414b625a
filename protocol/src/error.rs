//! Error codes carried in responses, and the QUIC application codes a connection closes with.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $num:literal, $name:literal; )*) => {
        /// A stable error code. On the wire it is a `u16` (see `PROTOCOL.md`); in text (logs, CLI
        /// output, JSON) it is the snake_case name. Codes are never renumbered; a code this crate
        /// does not know decodes as [`ErrorCode::Unknown`] so that old clients survive new codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
            /// A code newer than this crate.
            Unknown(u16),
        }

        impl ErrorCode {
            /// Every known code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The numeric wire value.
            pub fn to_u16(self) -> u16 {
                match self {
                    $( ErrorCode::$variant => $num, )*
                    ErrorCode::Unknown(n) => n,
                }
            }

            /// The code for a numeric wire value.
            pub fn from_u16(n: u16) -> Self {
                match n {
                    $( $num => ErrorCode::$variant, )*
                    n => ErrorCode::Unknown(n),
                }
            }

            /// The stable snake_case name, as printed and used in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $name, )*
                    ErrorCode::Unknown(_) => "unknown",
                }
            }
        }
    };
}

error_codes! {
    /// The request is malformed or makes no sense in this state (details in the message).
    BadRequest = 1, "bad_request";
    /// The user could not be authenticated.
    Unauthorized = 2, "unauthorized";
    /// The user may not do this (role too low, or the business server said no).
    Forbidden = 3, "forbidden";
    /// The room does not exist.
    RoomNotFound = 4, "room_not_found";
    /// The acting user or the target is not a member of the room.
    NotAMember = 5, "not_a_member";
    /// The user is muted in this room and cannot send.
    Muted = 6, "muted";
    /// The user was kicked and cannot rejoin until the ban ends.
    Banned = 7, "banned";
    /// A message, attribute set, frame or id is larger than allowed.
    TooLarge = 8, "too_large";
    /// The user sends faster than allowed; retry later.
    RateLimited = 9, "rate_limited";
    /// The server failed; the request may be retried.
    Internal = 10, "internal";
    /// `create-room` named a room that already exists.
    RoomExists = 11, "room_exists";
    /// The client speaks a protocol version the server does not.
    UnsupportedVersion = 12, "unsupported_version";
    /// The authentication service could not be reached; the server fails closed.
    AuthUnavailable = 13, "auth_unavailable";
    /// This session has already joined the room.
    AlreadyJoined = 14, "already_joined";
    /// The session is in as many rooms as it may be.
    TooManyRooms = 15, "too_many_rooms";
    /// The server is shutting down.
    GoingAway = 16, "going_away";
    /// The session to resume no longer exists: its resume window passed, its token expired, or
    /// the server restarted since. The client starts a fresh one.
    SessionExpired = 17, "session_expired";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unknown(n) => write!(f, "unknown({n})"),
            code => f.write_str(code.as_str()),
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.to_u16())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u16::deserialize(deserializer).map(ErrorCode::from_u16)
    }
}

/// An error as it travels in a response: a code to act on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorFrame {
    /// What went wrong, stably.
    pub code: ErrorCode,
    /// What went wrong, for a person; never parsed.
    pub message: String,
}

impl ErrorFrame {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The QUIC application error code a connection is closed with (`CONNECTION_CLOSE` of type
/// 0x1d). The reason phrase carries a human message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 0: an orderly close (the client is done, or its session ended normally).
    Normal,
    /// 1: the peer sent bytes that are not a valid frame, or a frame out of place.
    ProtocolViolation,
    /// 2: the peer sent a frame longer than the receiver's maximum.
    FrameTooLarge,
    /// 3: the client's protocol version is not supported.
    UnsupportedVersion,
    /// 4: the client could not be authenticated.
    Unauthorized,
    /// 5: the server is shutting down; reconnect later, possibly elsewhere.
    GoingAway,
    /// 6: the client could not keep up and its outbound queue hit its hard cap.
    SlowConsumer,
    /// 7: the server failed.
    Internal,
    /// 8: the peer exceeded a connection-level limit (streams, handshake time).
    LimitExceeded,
    /// A code newer than this crate.
    Unknown(u32),
}

impl CloseCode {
    /// The numeric QUIC application error code.
    pub fn to_u32(self) -> u32 {
        match self {
            CloseCode::Normal => 0,
            CloseCode::ProtocolViolation => 1,
            CloseCode::FrameTooLarge => 2,
            CloseCode::UnsupportedVersion => 3,
            CloseCode::Unauthorized => 4,
            CloseCode::GoingAway => 5,
            CloseCode::SlowConsumer => 6,
            CloseCode::Internal => 7,
            CloseCode::LimitExceeded => 8,
            CloseCode::Unknown(n) => n,
        }
    }

    /// The close code for a numeric QUIC application error code.
    pub fn from_u32(n: u32) -> Self {
        match n {
            0 => CloseCode::Normal,
            1 => CloseCode::ProtocolViolation,
            2 => CloseCode::FrameTooLarge,
            3 => CloseCode::UnsupportedVersion,
            4 => CloseCode::Unauthorized,
            5 => CloseCode::GoingAway,
            6 => CloseCode::SlowConsumer,
            7 => CloseCode::Internal,
            8 => CloseCode::LimitExceeded,
            n => CloseCode::Unknown(n),
        }
    }

    /// The snake_case name, for logs and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::ProtocolViolation => "protocol_violation",
            CloseCode::FrameTooLarge => "frame_too_large",
            CloseCode::UnsupportedVersion => "unsupported_version",
            CloseCode::Unauthorized => "unauthorized",
            CloseCode::GoingAway => "going_away",
            CloseCode::SlowConsumer => "slow_consumer",
            CloseCode::Internal => "internal",
            CloseCode::LimitExceeded => "limit_exceeded",
            CloseCode::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.to_u32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u16(code.to_u16()), code);
        }
        assert_eq!(ErrorCode::from_u16(999), ErrorCode::Unknown(999));
        assert_eq!(ErrorCode::RoomNotFound.as_str(), "room_not_found");
        for n in 0..=9 {
            assert_eq!(CloseCode::from_u32(n).to_u32(), n);
        }
    }
}
