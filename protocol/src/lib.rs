//! The chatroom wire protocol: every frame, how it is framed and encoded, the error and close codes,
//! the protocol version and the ALPN.
//!
//! This crate is sans-IO: it owns no sockets, no clock and no runtime (no tokio, no quinn). The
//! server and the client drive it; a client in another language can be written from
//! `protocol/PROTOCOL.md`, which documents the same bytes this crate produces.
//!
//! - [`frame`]: the frames. [`ClientFrame`] and [`ServerFrame`] travel on the session stream,
//!   [`RoomFrame`] on the server's per-room unidirectional streams.
//! - [`wire`]: the length-prefixed framing: [`encode`] and the incremental [`FrameDecoder`], which
//!   checks the length against a maximum before it allocates.
//! - [`error`]: [`ErrorCode`] (stable snake_case codes carried in responses) and [`CloseCode`]
//!   (QUIC application close codes).
//! - [`limits`]: protocol-wide hard limits and identifier validation.
//!
//! The body serializer (bincode 2.0.1 through serde) is confined to one private module, so it can
//! be swapped in one file.
//!
//! ```
//! use bytes::BytesMut;
//! use chatroom_protocol::{ClientFrame, FrameDecoder, Hello, encode, MAX_FRAME_LEN, PROTOCOL_VERSION};
//!
//! let hello = ClientFrame::Hello(Hello {
//!     version: PROTOCOL_VERSION,
//!     user: "alice".into(),
//!     token: None,
//!     agent: "doc-example".into(),
//!     resume: None,
//! });
//! let bytes = encode(&hello).unwrap();
//! let mut buf = BytesMut::from(&bytes[..]);
//! let decoded: Option<ClientFrame> = FrameDecoder::new(MAX_FRAME_LEN).decode(&mut buf).unwrap();
//! assert_eq!(decoded, Some(hello));
//! assert!(buf.is_empty());
//! ```

mod codec;
pub mod error;
pub mod frame;
pub mod limits;
pub mod wire;

pub use error::{CloseCode, ErrorCode, ErrorFrame};
pub use frame::{
    Attributes, ClientFrame, Hello, JoinedRoom, LeaveReason, MemberInfo, MemberPage, Priority,
    PrivateMessage, Request, RequestBody, Response, ResponseBody, ResumeRequest, Role, RoomFrame,
    RoomMessage, RoomPosition, ServerFrame, SessionLimits, Welcome,
};
pub use limits::{
    IdError, MAX_FRAME_LEN, MAX_ID_LEN, MAX_KIND_LEN, validate_kind, validate_room_id,
    validate_user_id,
};
pub use wire::{
    DecodeError, EncodeError, Frame, FrameDecoder, HEADER_LEN, decode_body, encode, encode_into,
};

/// The ALPN protocol id of this protocol; a TLS handshake without it fails.
pub const ALPN: &[u8] = b"chatroom/1";

/// The protocol version this crate speaks, sent in [`Hello::version`] and [`Welcome::version`].
pub const PROTOCOL_VERSION: u32 = 1;
