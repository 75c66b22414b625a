//! Reading whole frames from a QUIC receive stream.

use bytes::BytesMut;
use chatroom_protocol::{DecodeError, Frame, FrameDecoder};

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The peer sent bytes that are not a valid frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The stream or connection failed.
    #[error(transparent)]
    Stream(#[from] quinn::ReadError),
}

/// Splits a receive stream into frames.
#[derive(Debug)]
pub struct FrameReader {
    recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl FrameReader {
    /// Reads frames of at most `max_frame_len` bytes from `recv`.
    pub fn new(recv: quinn::RecvStream, max_frame_len: usize) -> Self {
        Self { recv, buf: BytesMut::new(), decoder: FrameDecoder::new(max_frame_len) }
    }

    /// The next frame, or `Ok(None)` when the stream ended cleanly between frames.
    pub async fn next<F: Frame>(&mut self) -> Result<Option<F>, ReadFrameError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            // The length was checked by `decode`: read no more than the frame still needs, so a
            // peer cannot make us buffer beyond one maximum frame.
            let want = match self.decoder.frame_len(&self.buf)? {
                Some(total) => total - self.buf.len(),
                None => chatroom_protocol::HEADER_LEN - self.buf.len(),
            };
            match self.recv.read_chunk(want.max(1), true).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None => {
                    self.decoder.finish(&self.buf)?;
                    return Ok(None);
                }
            }
        }
    }
}
