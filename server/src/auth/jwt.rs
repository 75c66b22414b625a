//! Signed-token mode: HS256 JWTs that the business server issues and this server checks with
//! no network call, for join storms where a call per join would be too slow.
//!
//! Claims (unknown ones, such as `iat` or `iss`, are ignored):
//!
//! | claim        | required | meaning                                                      |
//! |--------------|----------|--------------------------------------------------------------|
//! | `sub`        | yes      | the user id; must equal the user id of the Hello             |
//! | `exp`        | yes      | expiry, Unix seconds; checked at connect and at every join   |
//! | `nbf`        | no       | not before, Unix seconds                                     |
//! | `room`       | no       | the only room the token may join                             |
//! | `rooms`      | no       | the rooms the token may join (with `room`, the union)        |
//! | `role`       | no       | `owner` or `admin` in those rooms; needs `room` or `rooms`   |
//! | `attributes` | no       | string → string map, the member's initial attributes on join |
//!
//! Without `room` and `rooms` the token may join any room. A `role` without them is refused as
//! malformed: a token that made its holder the owner of every room is almost surely a mistake.
//! Only HS256 is accepted (`alg: none` and every other algorithm are refused).

use std::collections::HashSet;
use std::time::Duration;

use chatroom_protocol::{Attributes, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::role_name;

/// The claims of a signed token. Business servers written in Rust can issue tokens with
/// `jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(..))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClaims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The only room this token may join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The rooms this token may join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// A role granted on joining the rooms named by `room`/`rooms`: `owner` or `admin`
    /// (`member` is the same as none).
    #[serde(default, with = "role_name", skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The member's initial attributes, set on every join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

impl JwtClaims {
    /// Whether the token may join `room`.
    pub fn allows_room(&self, room: &str) -> bool {
        if self.room.is_none() && self.rooms.is_none() {
            return true;
        }
        self.room.as_deref() == Some(room)
            || self.rooms.as_ref().is_some_and(|rooms| rooms.iter().any(|r| r == room))
    }
}

/// Why a signed token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a JWT, or its header or claims do not parse (a required claim missing included).
    #[error("token is malformed: {0}")]
    Malformed(String),
    /// Signed with another algorithm than HS256 (or not at all).
    #[error("token is not signed with HS256")]
    Algorithm,
    /// The signature does not match this server's key.
    #[error("token signature is invalid")]
    Signature,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
    /// Before its `nbf`.
    #[error("token is not valid yet")]
    NotYetValid,
    /// Its `sub` is another user.
    #[error("token is for another user")]
    WrongUser,
    /// It has a `role` but names no room.
    #[error("token grants a role without naming its room (`room` or `rooms`)")]
    RoleWithoutRoom,
    /// It does not allow the room being joined.
    #[error("token does not allow room `{0}`")]
    RoomNotAllowed(String),
}

/// Checks signed tokens against one HS256 key.
pub(crate) struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    leeway: u64,
}

impl JwtVerifier {
    pub(crate) fn new(secret: &[u8], leeway: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Time claims are checked against the `now` we are given, so that tests need no clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::from(["exp".to_owned(), "sub".to_owned()]);
        Self { key: DecodingKey::from_secret(secret), validation, leeway: leeway.as_secs() }
    }

    /// Checks `token`'s signature, times (against `now`, Unix seconds) and subject (`user`).
    pub(crate) fn verify(&self, token: &str, user: &str, now: u64) -> Result<JwtClaims, JwtError> {
        let claims = jsonwebtoken::decode::<JwtClaims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => JwtError::Signature,
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => JwtError::Algorithm,
                _ => JwtError::Malformed(e.to_string()),
            })?
            .claims;
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(JwtError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(JwtError::NotYetValid);
        }
        if claims.sub != user {
            return Err(JwtError::WrongUser);
        }
        if claims.role.is_some_and(|r| r != Role::Member)
            && claims.room.is_none()
            && claims.rooms.is_none()
        {
            return Err(JwtError::RoleWithoutRoom);
        }
        Ok(claims)
    }
}

/// Whether `token` has the shape of a JWT (three dot-separated parts whose first is a JSON
/// header naming an algorithm). Used to route tokens when both modes are configured.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2 && jsonwebtoken::decode_header(token).is_ok()
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;

    fn token(claims: serde_json::Value) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(KEY)).unwrap()
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(KEY, Duration::from_secs(30))
    }

    #[test]
    fn valid_token() {
        let claims = verifier()
            .verify(&token(json!({"sub": "alice", "exp": NOW + 60, "iat": NOW})), "alice", NOW)
            .unwrap();
        assert_eq!(claims.sub, "alice");
        assert!(claims.allows_room("anything"));
        assert_eq!(claims.role, None);
    }

    #[test]
    fn expiry_with_leeway() {
        let t = token(json!({"sub": "alice", "exp": NOW}));
        assert!(verifier().verify(&t, "alice", NOW + 29).is_ok());
        assert_eq!(verifier().verify(&t, "alice", NOW + 30), Err(JwtError::Expired));
        let early = token(json!({"sub": "alice", "exp": NOW + 600, "nbf": NOW + 60}));
        assert!(verifier().verify(&early, "alice", NOW + 30).is_ok());
        assert_eq!(verifier().verify(&early, "alice", NOW + 29), Err(JwtError::NotYetValid));
    }

    #[test]
    fn refusals() {
        let v = verifier();
        let other_key = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "alice", "exp": NOW + 60}),
            &EncodingKey::from_secret(b"another key, also at least 32 bytes"),
        )
        .unwrap();
        assert_eq!(v.verify(&other_key, "alice", NOW), Err(JwtError::Signature));
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &json!({"sub": "alice", "exp": NOW + 60}),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(v.verify(&hs512, "alice", NOW), Err(JwtError::Algorithm));
        let t = token(json!({"sub": "alice", "exp": NOW + 60}));
        assert_eq!(v.verify(&t, "mallory", NOW), Err(JwtError::WrongUser));
        let no_exp = token(json!({"sub": "alice"}));
        assert!(matches!(v.verify(&no_exp, "alice", NOW), Err(JwtError::Malformed(_))));
        let bad_role = token(json!({"sub": "alice", "exp": NOW + 60, "role": "king", "room": "r"}));
        assert!(matches!(v.verify(&bad_role, "alice", NOW), Err(JwtError::Malformed(_))));
        let roving_owner = token(json!({"sub": "alice", "exp": NOW + 60, "role": "owner"}));
        assert_eq!(v.verify(&roving_owner, "alice", NOW), Err(JwtError::RoleWithoutRoom));
        for garbage in ["", "a.b.c", "not a token", "..", "eyJhbGciOiJub25lIn0.e30."] {
            assert!(v.verify(garbage, "alice", NOW).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        // {"alg":"none","typ":"JWT"} . {"sub":"alice","exp":9999999999} . (no signature)
        let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.\
                        eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert!(verifier().verify(unsigned, "alice", NOW).is_err());
    }

    #[test]
    fn rooms_and_role() {
        let v = verifier();
        let one = v
            .verify(
                &token(json!({"sub": "alice", "exp": NOW + 60, "room": "lobby", "role": "owner"})),
                "alice",
                NOW,
            )
            .unwrap();
        assert!(one.allows_room("lobby"));
        assert!(!one.allows_room("games"));
        assert_eq!(one.role, Some(Role::Owner));
        let list = v
            .verify(
                &token(json!({"sub": "bob", "exp": NOW + 60, "rooms": ["a", "b"], "role": "admin",
                               "attributes": {"plan": "pro"}})),
                "bob",
                NOW,
            )
            .unwrap();
        assert!(list.allows_room("a") && list.allows_room("b") && !list.allows_room("c"));
        assert_eq!(list.role, Some(Role::Admin));
        assert_eq!(list.attributes.unwrap().get("plan").map(String::as_str), Some("pro"));
    }

    #[test]
    fn shape_detection() {
        assert!(looks_like_jwt(&token(json!({"sub": "a", "exp": 1}))));
        for opaque in ["alice-token", "a.b.c", "", "x.y", "0123456789abcdef"] {
            assert!(!looks_like_jwt(opaque), "{opaque:?}");
        }
    }
}
