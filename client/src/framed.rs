//! Reading whole frames from a QUIC receive stream.

use bytes::BytesMut;
use chatroom_protocol::{DecodeError, Frame, FrameDecoder, MAX_FRAME_LEN};
use quinn::RecvStream;

/// The most bytes taken from quinn in one read; frames larger than this arrive over several.
const READ_CHUNK: usize = 64 * 1024;

/// Why the next frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadFrameError {
    /// The stream failed (reset, or the connection ended).
    #[error(transparent)]
    Read(#[from] quinn::ReadError),
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A receive stream and the bytes read from it that do not make a whole frame yet.
#[derive(Debug)]
pub(crate) struct FrameReader {
    recv: RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl FrameReader {
    /// A reader accepting frames up to the protocol's hard maximum.
    pub(crate) fn new(recv: RecvStream) -> Self {
        Self { recv, buf: BytesMut::new(), decoder: FrameDecoder::new(MAX_FRAME_LEN) }
    }

    /// The next frame, or `None` when the stream ended cleanly between frames.
    ///
    /// Cancel safety: cancelling loses nothing; bytes already read stay buffered.
    pub(crate) async fn next<F: Frame>(&mut self) -> Result<Option<F>, ReadFrameError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            // The header (once here) was checked against the maximum: reserving is bounded.
            if let Some(total) = self.decoder.frame_len(&self.buf)? {
                self.buf.reserve(total.saturating_sub(self.buf.len()));
            }
            match self.recv.read_chunk(READ_CHUNK, true).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None => {
                    self.decoder.finish(&self.buf)?;
                    return Ok(None);
                }
            }
        }
    }

    /// Tells the peer to stop sending on this stream (nothing more will be read).
    pub(crate) fn stop(&mut self, code: u32) {
        // Fails only if the stream is already finished or stopped, which is the goal anyway.
        let _ = self.recv.stop(quinn::VarInt::from_u32(code));
    }
}
