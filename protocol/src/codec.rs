//! The body serializer. bincode is used only here, so that replacing it touches one file.
//!
//! Configuration (documented byte by byte in `PROTOCOL.md`): little endian, variable-length
//! integers, and a decode limit that bounds what a forged length can make the decoder allocate.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::limits::MAX_FRAME_LEN;

/// bincode's limit counts the memory it claims while decoding, not wire bytes: 8 for every length
/// and `u64`, 4 for every enum index. One wire byte claims at most 8, so this admits every body of
/// up to [`MAX_FRAME_LEN`] bytes while still capping what a forged length can make it allocate.
const DECODE_LIMIT: usize = 8 * MAX_FRAME_LEN;

type Config = Configuration<LittleEndian, Varint, Limit<DECODE_LIMIT>>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_variable_int_encoding()
    .with_limit::<DECODE_LIMIT>();

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
