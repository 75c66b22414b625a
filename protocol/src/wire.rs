//! Length-prefixed framing.
//!
//! A frame on any stream is a 4-byte big-endian body length followed by the body:
//!
//! ```text
//! +----------------+---------------------------+
//! | length: u32 BE | body: `length` bytes       |
//! +----------------+---------------------------+
//! ```
//!
//! The decoder works on a growing buffer, as bytes arrive: "not a whole frame yet" is `Ok(None)`,
//! an expected state. A length above the receiver's maximum is an error before anything is
//! allocated; a body that does not decode to exactly one frame, with no bytes left over, is an
//! error too.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::frame::{ClientFrame, RoomFrame, ServerFrame};
use crate::limits::MAX_FRAME_LEN;

/// The length of the frame header (the body length prefix), in bytes.
pub const HEADER_LEN: usize = 4;

/// A type that travels as a frame: [`ClientFrame`], [`ServerFrame`] or [`RoomFrame`].
pub trait Frame: Serialize + DeserializeOwned + sealed::Sealed {}

impl Frame for ClientFrame {}
impl Frame for ServerFrame {}
impl Frame for RoomFrame {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::frame::ClientFrame {}
    impl Sealed for crate::frame::ServerFrame {}
    impl Sealed for crate::frame::RoomFrame {}
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The body would be longer than [`MAX_FRAME_LEN`].
    #[error("frame body of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The body length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The serializer failed.
    #[error("cannot encode frame: {0}")]
    Serialize(String),
}

/// Why received bytes are not a valid frame. Every variant means the peer misbehaved (or the
/// bytes were damaged); the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix announces more than the receiver accepts.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The receiver's maximum.
        max: usize,
    },
    /// The body is not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The body holds a valid frame followed by bytes that belong to no frame.
    #[error("{extra} trailing bytes after a {used}-byte frame")]
    TrailingBytes {
        /// The bytes the frame used.
        used: usize,
        /// The bytes left over.
        extra: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
}

/// Encodes `frame` as one length-prefixed frame.
pub fn encode<F: Frame>(frame: &F) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::new();
    encode_into(frame, &mut out)?;
    Ok(out.freeze())
}

/// Appends `frame`, length-prefixed, to `out`. On error `out` is left as it was.
pub fn encode_into<F: Frame>(frame: &F, out: &mut BytesMut) -> Result<(), EncodeError> {
    let mut body = Vec::with_capacity(64);
    codec::encode_into(frame, &mut body).map_err(|e| EncodeError::Serialize(e.0))?;
    if body.len() > MAX_FRAME_LEN {
        return Err(EncodeError::TooLarge { len: body.len(), max: MAX_FRAME_LEN });
    }
    out.reserve(HEADER_LEN + body.len());
    // The length fits: it was just checked against MAX_FRAME_LEN, far below u32::MAX.
    out.put_u32(body.len() as u32);
    out.put_slice(&body);
    Ok(())
}

/// Decodes exactly one frame from a whole body (without the length prefix).
pub fn decode_body<F: Frame>(body: &[u8]) -> Result<F, DecodeError> {
    let (frame, used) = codec::decode::<F>(body).map_err(|e| DecodeError::Malformed(e.0))?;
    if used != body.len() {
        return Err(DecodeError::TrailingBytes { used, extra: body.len() - used });
    }
    Ok(frame)
}

/// Splits frames off the front of a receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_len: usize,
}

impl FrameDecoder {
    /// A decoder that accepts bodies of at most `max_frame_len` bytes (clamped to
    /// [`MAX_FRAME_LEN`]).
    pub fn new(max_frame_len: usize) -> Self {
        Self { max_frame_len: max_frame_len.min(MAX_FRAME_LEN) }
    }

    /// The largest body this decoder accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// How many bytes the next frame in `buf` needs in all (header and body), once its header
    /// has arrived; `Ok(None)` while fewer than [`HEADER_LEN`] bytes are buffered. Lets a reader
    /// reserve exactly what the frame needs, after the length was checked.
    pub fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max_frame_len {
            return Err(DecodeError::TooLarge { len, max: self.max_frame_len });
        }
        Ok(Some(HEADER_LEN + len))
    }

    /// Removes and returns the first whole frame of `buf`, or `Ok(None)` if `buf` does not hold
    /// a whole frame yet (then `buf` is untouched). On error the connection should be closed;
    /// `buf` is then in an unspecified state.
    pub fn decode<F: Frame>(&self, buf: &mut BytesMut) -> Result<Option<F>, DecodeError> {
        let Some(total) = self.frame_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < total {
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let body = buf.split_to(total - HEADER_LEN);
        decode_body(&body).map(Some)
    }

    /// Checks what is left once the stream has ended: nothing, or [`DecodeError::Truncated`].
    pub fn finish(&self, buf: &[u8]) -> Result<(), DecodeError> {
        match buf.len() {
            0 => Ok(()),
            buffered => Err(DecodeError::Truncated { buffered }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Hello, Request, RequestBody};

    fn hello() -> ClientFrame {
        ClientFrame::Hello(Hello {
            version: 1,
            user: "alice".into(),
            token: Some("t".into()),
            agent: "test".into(),
            resume: None,
        })
    }

    #[test]
    fn incomplete_is_not_an_error() {
        let bytes = encode(&hello()).unwrap();
        let decoder = FrameDecoder::new(MAX_FRAME_LEN);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decoder.decode::<ClientFrame>(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn two_frames_in_one_buffer() {
        let mut buf = BytesMut::new();
        encode_into(&hello(), &mut buf).unwrap();
        let req =
            ClientFrame::Request(Request { id: 7, body: RequestBody::Join { room: "r".into() } });
        encode_into(&req, &mut buf).unwrap();
        let decoder = FrameDecoder::new(1024);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(hello())));
        assert_eq!(decoder.decode(&mut buf), Ok(Some(req)));
        assert_eq!(decoder.decode::<ClientFrame>(&mut buf), Ok(None));
        assert_eq!(decoder.finish(&buf), Ok(()));
    }

    #[test]
    fn oversized_is_rejected_from_the_header_alone() {
        let mut buf = BytesMut::from(&[0x00, 0x10, 0x00, 0x01][..]);
        let err = FrameDecoder::new(1024).decode::<ClientFrame>(&mut buf).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { len: 0x0010_0001, max: 1024 });
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let bytes = encode(&hello()).unwrap();
        let mut body = bytes[HEADER_LEN..].to_vec();
        body.push(0);
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.put_slice(&body);
        let err = FrameDecoder::new(1024).decode::<ClientFrame>(&mut buf).unwrap_err();
        assert!(matches!(err, DecodeError::TrailingBytes { extra: 1, .. }), "{err:?}");
    }

    #[test]
    fn garbage_is_malformed() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0xff, 0xff, 0xff][..]);
        let err = FrameDecoder::new(1024).decode::<ClientFrame>(&mut buf).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn truncated_stream() {
        let bytes = encode(&hello()).unwrap();
        assert_eq!(
            FrameDecoder::new(1024).finish(&bytes[..3]),
            Err(DecodeError::Truncated { buffered: 3 })
        );
    }
}
