//! The body serializer. bincode is used only here, so that replacing it touches one file.
//!
//! Configuration (documented byte by byte in `PROTOCOL.md`): little endian, variable-length
//! integers, and a decode limit equal to the hard maximum frame length.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::limits::MAX_FRAME_LEN;

type Config = Configuration<LittleEndian, Varint, Limit<MAX_FRAME_LEN>>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_variable_int_encoding()
    .with_limit::<MAX_FRAME_LEN>();

/// Why a body could not be encoded or decoded; the detail is the serializer's own message.
#[derive(Debug)]
pub(crate) struct CodecError(pub(crate) String);

/// Appends the encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)
        .map(|_| ())
        .map_err(|e| CodecError(e.to_string()))
}

/// Decodes one value from the start of `body`, returning it and how many bytes it used.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<(T, usize), CodecError> {
    bincode::serde::decode_from_slice(body, CONFIG).map_err(|e| CodecError(e.to_string()))
}
