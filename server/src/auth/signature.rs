//! The signature on callback requests: HMAC-SHA256 with the shared secret, so that the business
//! server can tell the chat server's calls from anyone else's.
//!
//! ```text
//! X-Chatroom-Timestamp: 1732579200
//! X-Chatroom-Signature: sha256=<lowercase hex of HMAC-SHA256(secret, "1732579200" "." body)>
//! ```
//!
//! The signed message is the timestamp header's value, a dot, then the exact body bytes, so
//! neither can be changed or swapped without breaking the signature. The body carries the same
//! timestamp (`"timestamp"`), so a business server that parses the body first sees it too. A
//! business server checks, in this order: [`verify_signature`] over the raw body (before parsing
//! it), then [`check_timestamp`] (refuse calls older than a few minutes), and optionally that it
//! has not seen the body's `request_id` within that window (refuse replays).

use std::time::Duration;

use ring::hmac;

/// Header with the request's signature (`sha256=<hex>`). Lowercase, as HTTP/2 and the `http`
/// crate spell header names; HTTP header names are case-insensitive
/// (`X-Chatroom-Signature` on the wire is the same header).
pub const SIGNATURE_HEADER: &str = "x-chatroom-signature";

/// Header with the request's timestamp: Unix time in whole seconds, in decimal.
pub const TIMESTAMP_HEADER: &str = "x-chatroom-timestamp";

/// How old a request a business server should accept, as [`check_timestamp`]'s `max_age`:
/// 5 min. A call is answered within the server's auth timeout (seconds), so this is all clock
/// skew allowance; it also bounds how long a business server must remember `request_id`s to
/// refuse replays.
pub const RECOMMENDED_MAX_AGE: Duration = Duration::from_secs(300);

const SCHEME: &str = "sha256=";

/// Why a request's signature or timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header is not `sha256=` followed by 64 hex digits.
    #[error("malformed signature header (expected `sha256=<64 hex digits>`)")]
    Malformed,
    /// The signature does not match: another secret, or a changed body or timestamp.
    #[error("signature does not match")]
    Mismatch,
    /// The timestamp header is not a decimal number of seconds.
    #[error("malformed timestamp header")]
    BadTimestamp,
    /// The timestamp is further from now than the allowed age (a stale or replayed call, or a
    /// badly set clock).
    #[error("timestamp is {age_secs} s away from now, more than the {max_secs} s allowed")]
    Stale {
        /// How far the timestamp is from now, in seconds.
        age_secs: u64,
        /// The allowed distance, in seconds.
        max_secs: u64,
    },
}

/// The signature header value for a request with this timestamp header value and body:
/// `sha256=<lowercase hex>`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    sign_with_key(&key, timestamp, body)
}

/// As [`sign`], with the key already prepared (the server signs every call with one key).
pub(crate) fn sign_with_key(key: &hmac::Key, timestamp: &str, body: &[u8]) -> String {
    let tag = tag(key, timestamp, body);
    let mut out = String::with_capacity(SCHEME.len() + 64);
    out.push_str(SCHEME);
    for b in tag.as_ref() {
        out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Checks a request's signature header against the shared `secret`, the timestamp header's value
/// and the raw body bytes, in constant time. Hex digits may be upper or lower case.
///
/// This checks authenticity only; call [`check_timestamp`] as well to refuse stale calls.
pub fn verify_signature(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> Result<(), SignatureError> {
    let hex = header.trim().strip_prefix(SCHEME).ok_or(SignatureError::Malformed)?;
    let expected = unhex32(hex).ok_or(SignatureError::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_message(timestamp, body), &expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks that a timestamp header's value is within `max_age` of `now` (Unix seconds), in either
/// direction (the caller's clock may be ahead). Returns the timestamp.
pub fn check_timestamp(
    timestamp: &str,
    now: u64,
    max_age: Duration,
) -> Result<u64, SignatureError> {
    let sent: u64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let age_secs = now.abs_diff(sent);
    let max_secs = max_age.as_secs();
    if age_secs > max_secs {
        return Err(SignatureError::Stale { age_secs, max_secs });
    }
    Ok(sent)
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn tag(key: &hmac::Key, timestamp: &str, body: &[u8]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body);
    context.sign()
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_implementation() {
        // Python: hmac.new(secret, b'1700000000.' + body, hashlib.sha256).hexdigest()
        let body = br#"{"kind":"connect","user":"alice"}"#;
        assert_eq!(
            sign(b"0123456789abcdef0123456789abcdef", "1700000000", body),
            "sha256=7bd27c903edfe4d81c405d2b8ab7edeccb5fb14552f09e402c9622d9e5f95946"
        );
    }

    #[test]
    fn sign_then_verify() {
        let header = sign(b"s3cret", "1700000000", b"{\"a\":1}");
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert_eq!(verify_signature(b"s3cret", "1700000000", b"{\"a\":1}", &header), Ok(()));
        let upper = format!("sha256={}", header[7..].to_uppercase());
        assert_eq!(verify_signature(b"s3cret", "1700000000", b"{\"a\":1}", &upper), Ok(()));
    }

    #[test]
    fn refuses_other_secret_body_or_timestamp() {
        let header = sign(b"s3cret", "1700000000", b"{\"a\":1}");
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(verify_signature(b"other", "1700000000", b"{\"a\":1}", &header), mismatch);
        assert_eq!(verify_signature(b"s3cret", "1700000001", b"{\"a\":1}", &header), mismatch);
        assert_eq!(verify_signature(b"s3cret", "1700000000", b"{\"a\":2}", &header), mismatch);
    }

    #[test]
    fn refuses_malformed_headers() {
        let malformed = Err(SignatureError::Malformed);
        for header in ["", "sha256=", "sha1=00", "sha256=zz", &format!("sha256={}", "0".repeat(63))]
        {
            assert_eq!(verify_signature(b"k", "1", b"", header), malformed, "{header:?}");
        }
        assert_eq!(
            verify_signature(b"k", "1", b"", &format!("sha256={}", "é".repeat(32))),
            malformed
        );
    }

    #[test]
    fn timestamps() {
        let max = RECOMMENDED_MAX_AGE;
        assert_eq!(check_timestamp("1000", 1000, max), Ok(1000));
        assert_eq!(check_timestamp("1300", 1000, max), Ok(1300));
        assert_eq!(check_timestamp("700", 1000, max), Ok(700));
        assert_eq!(
            check_timestamp("699", 1000, max),
            Err(SignatureError::Stale { age_secs: 301, max_secs: 300 })
        );
        assert_eq!(check_timestamp("soon", 1000, max), Err(SignatureError::BadTimestamp));
        assert_eq!(check_timestamp("-5", 1000, max), Err(SignatureError::BadTimestamp));
    }
}
