//! Resume tokens: opaque to clients, tamper-proof, with an expiry inside.
//!
//! A token is the lowercase hex of
//!
//! ```text
//! version (1 byte, = 1) | key id (8) | expires (u64 BE, Unix seconds) | session id length (1)
//!   | session id | user id length (1) | user id | HMAC-SHA256 over everything before it (32)
//! ```
//!
//! The key is random per server process, so a restarted server refuses old tokens (recognised
//! by their key id, and answered "session expired" rather than "invalid") and the client starts
//! a fresh session, reporting what it missed as a gap. Possession of a token is
//! not enough to take a session over: the server also requires the resuming connection to have
//! authenticated as the token's user.

use ring::hmac;
use ring::rand::SystemRandom;

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;

/// The server's secret for resume tokens.
pub struct TokenKey {
    key: hmac::Key,
    /// Tells this key's tokens from those of another server instance.
    id: [u8; 8],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The session it resumes.
    pub session: String,
    /// The user the session belongs to.
    pub user: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this server could have issued (bad encoding, layout or signature).
    #[error("invalid resume token")]
    Invalid,
    /// Issued by this server, but past its expiry.
    #[error("resume token expired")]
    Expired,
    /// Issued with another key: by an earlier run of this server (or another server).
    #[error("resume token from another server instance")]
    OtherInstance,
}

impl TokenKey {
    /// A new random key.
    pub fn generate() -> Self {
        // SystemRandom only fails if the OS has no randomness, in which case TLS cannot work
        // either; there is nothing sensible to continue with.
        let random = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &random)
            .expect("the operating system provides randomness");
        let id = ring::rand::generate::<[u8; 8]>(&random)
            .expect("the operating system provides randomness")
            .expose();
        Self { key, id }
    }

    /// A token for `session` of `user`, valid until `expires` (Unix seconds). Ids longer than
    /// 255 bytes cannot occur (the protocol limits them to 128).
    pub fn issue(&self, session: &str, user: &str, expires: u64) -> String {
        let mut bytes = Vec::with_capacity(1 + 8 + 8 + 2 + session.len() + user.len() + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.id);
        bytes.extend_from_slice(&expires.to_be_bytes());
        for id in [session, user] {
            let id = &id.as_bytes()[..id.len().min(255)];
            bytes.push(id.len() as u8);
            bytes.extend_from_slice(id);
        }
        let tag = hmac::sign(&self.key, &bytes);
        bytes.extend_from_slice(tag.as_ref());
        hex(&bytes)
    }

    /// Checks a token's signature and expiry (against `now`, Unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<TokenClaims, TokenError> {
        let bytes = unhex(token).ok_or(TokenError::Invalid)?;
        let signed_len = bytes.len().checked_sub(TAG_LEN).ok_or(TokenError::Invalid)?;
        let (signed, tag) = bytes.split_at(signed_len);
        // The key id is read before the signature is checked only to choose the answer: a
        // token of another instance is as unusable as a forged one.
        match signed.get(1..9) {
            Some(id) if id == self.id => {}
            Some(_) if signed.first() == Some(&VERSION) => return Err(TokenError::OtherInstance),
            _ => return Err(TokenError::Invalid),
        }
        hmac::verify(&self.key, signed, tag).map_err(|_| TokenError::Invalid)?;
        // Signed by us, so the layout is ours; parse defensively all the same.
        let mut rest = signed;
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let version = take(1).ok_or(TokenError::Invalid)?[0];
        if version != VERSION {
            return Err(TokenError::Invalid);
        }
        take(8).ok_or(TokenError::Invalid)?;
        let expires = take(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        let expires = expires.ok_or(TokenError::Invalid)?;
        let mut id = || {
            let len = take(1)?[0] as usize;
            String::from_utf8(take(len)?.to_vec()).ok()
        };
        let session = id().ok_or(TokenError::Invalid)?;
        let user = id().ok_or(TokenError::Invalid)?;
        if expires <= now {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims { session, user })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 2048 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let key = TokenKey::generate();
        let token = key.issue("s1", "alice", 1000);
        let claims = TokenClaims { session: "s1".into(), user: "alice".into() };
        assert_eq!(key.verify(&token, 999), Ok(claims));
        assert_eq!(key.verify(&token, 1000), Err(TokenError::Expired));
    }

    #[test]
    fn forged_and_altered_tokens_are_invalid() {
        let key = TokenKey::generate();
        let token = key.issue("s1", "alice", 1000);
        // Another server's key (e.g. before a restart).
        assert_eq!(TokenKey::generate().verify(&token, 0), Err(TokenError::OtherInstance));
        // Every single-character change is caught.
        for i in 0..token.len() {
            let mut altered = token.clone().into_bytes();
            altered[i] = if altered[i] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(altered).unwrap();
            let result = key.verify(&altered, 0);
            assert!(
                matches!(result, Err(TokenError::Invalid | TokenError::OtherInstance)),
                "position {i}: {result:?}"
            );
        }
        for junk in ["", "zz", "abc", &"00".repeat(40), &"f".repeat(5000)] {
            assert_eq!(key.verify(junk, 0), Err(TokenError::Invalid), "{junk}");
        }
    }
}
