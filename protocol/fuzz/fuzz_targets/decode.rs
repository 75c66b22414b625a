//! Feeds arbitrary bytes to the frame decoder, as every peer-facing reader does, for all three
//! frame types; anything that decodes must encode back to a frame that decodes to the same value.
//!
//! Run (from `protocol/fuzz`): `cargo fuzz run decode` (nightly), or on a stable toolchain
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run decode`.

#![no_main]

use bytes::BytesMut;
use chatroom_protocol::{ClientFrame, Frame, FrameDecoder, RoomFrame, ServerFrame, encode};
use libfuzzer_sys::fuzz_target;

fn check<F: Frame + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let decoder = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode::<F>(&mut buf) {
        let bytes = encode(&frame).expect("a decoded frame re-encodes");
        let mut again = BytesMut::from(&bytes[..]);
        assert_eq!(decoder.decode::<F>(&mut again).ok().flatten().as_ref(), Some(&frame));
    }
}

fuzz_target!(|data: &[u8]| {
    check::<ClientFrame>(data);
    check::<ServerFrame>(data);
    check::<RoomFrame>(data);
});
