//! Who may connect and join: the app developer's business server decides ("callback
//! authentication"), or signed tokens it issued do, or nobody does (open mode).
//!
//! ```text
//! Hello ─▶ Authenticator::connect ─┬─ open mode ─────────────────────────────▶ allow
//! Join  ─▶ Authenticator::join  ───┼─ token is a JWT and jwt_secret is set ──▶ check HS256 here
//!                                  └─ callback_url is set ─▶ cache? ─▶ POST to business server
//!                                         (≤ max_concurrent_calls, ≤ timeout, signed)
//! ```
//!
//! **Modes.** With `callback_url`, every connect and every join is a signed POST to the
//! business server ([`CallbackRequest`] in, [`CallbackResponse`] out; the contract, with
//! examples, is in `server/AUTH.md`). With `jwt_secret`, tokens are HS256 JWTs ([`JwtClaims`])
//! checked without a network call. With both, a token that has the shape of a JWT is checked as
//! one (and refused if it fails: there is no fall back to the callback), and any other token,
//! or none, goes to the callback. With neither, any user id is accepted
//! ([`Authenticator::is_open`]).
//!
//! # The callback contract
//!
//! For each connect (the client's Hello) and each join, a POST to `callback_url`:
//!
//! ```text
//! POST /chatroom/auth HTTP/1.1
//! Content-Type: application/json
//! X-Chatroom-Timestamp: 1732579200
//! X-Chatroom-Signature: sha256=<hex of HMAC-SHA256(secret, "1732579200" + "." + body)>
//!
//! {"kind":"join","user":"alice","token":"alice-secret-token","room":"lobby",
//!  "client_ip":"203.0.113.7","client_port":51234,"region":"eu","timestamp":1732579200,
//!  "request_id":"5f0c6a3e9d2b4c8fa17e02b9c3d4e5f6"}
//! ```
//!
//! (`room` is absent on connect, `token` is `null` when the client sent none; field by field in
//! [`CallbackRequest`].) The business server checks the signature over the raw body with
//! [`verify_signature`], the timestamp with [`check_timestamp`] (5 min,
//! [`RECOMMENDED_MAX_AGE`]), optionally that the `request_id` is new, and answers HTTP 200:
//!
//! ```text
//! {"allow": true, "role": "owner", "attributes": {"display_name": "Alice"}}
//! {"allow": false, "reason": "your subscription has expired"}
//! ```
//!
//! (field by field in [`CallbackResponse`]; `role` and `attributes` count on join only). One
//! deadline, `timeout` (2 s), covers waiting for one of the `max_concurrent_calls` (64) call
//! slots, the request, its retry and reading the answer (at most [`MAX_ANSWER_LEN`]). The only
//! retry is one, at once, when the connection could not be made (the request never arrived);
//! denies, HTTP errors and timeouts are not retried. Redirects are not followed.
//!
//! **Refusals** ([`AuthDenied`]): a business server's deny is `unauthorized` on connect and
//! `forbidden` on join, with its reason. A bad signed token is `unauthorized` (connect or join:
//! the credential is bad, e.g. expired), a room the token does not allow is `forbidden`. A call
//! that fails (timeout, connection error, HTTP status other than 2xx, malformed answer) is
//! `auth_unavailable`, unless `fail_open` lets the user in with no role and no attributes.
//!
//! **Cache.** Allow answers of the callback are reused for `cache_ttl` per (connect or join,
//! user, SHA-256 of the token, room); denies and failures are never cached, so a user the
//! business server has just let in is not held back by an earlier no.
//!
//! What this module does **not** do: apply grants (the join path gives the role and sets the
//! attributes, under the room's own limits), re-check members already in a room when their
//! token expires or their access is revoked (a kick does that), or authenticate resumption
//! (resume tokens, [`crate::token`], prove the session; the Hello of a resuming connection is
//! authenticated like any other).

mod cache;
mod callback;
mod config;
mod jwt;
mod signature;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatroom_protocol::{Attributes, CloseCode, ErrorCode, ErrorFrame, Role};

use cache::{CacheKey, GrantCache};
use callback::CallbackClient;
pub use callback::{CallKind, CallbackError, CallbackRequest, CallbackResponse, MAX_ANSWER_LEN};
pub use config::{AuthConfig, AuthConfigError};
use jwt::JwtVerifier;
pub use jwt::{JwtClaims, JwtError};
pub use signature::{
    RECOMMENDED_MAX_AGE, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER, check_timestamp, sign,
    verify_signature,
};

/// The longest refusal reason passed on to the client, in bytes; a longer one is cut (at a
/// character boundary). Reasons are for people and travel in an error frame.
pub const MAX_REASON_LEN: usize = 256;

/// A user opening a session: what the Hello said and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// The user id of the Hello (already validated as an id).
    pub user: &'a str,
    /// The token of the Hello.
    pub token: Option<&'a str>,
    /// The client's address as the server sees it.
    pub addr: SocketAddr,
}

/// A user of an authenticated session joining a room.
#[derive(Debug, Clone, Copy)]
pub struct JoinRequest<'a> {
    /// The session's user id.
    pub user: &'a str,
    /// The token the session's Hello carried.
    pub token: Option<&'a str>,
    /// The room being joined (already validated as an id).
    pub room: &'a str,
    /// The client's current address.
    pub addr: SocketAddr,
}

/// How a user got in, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// No authentication is configured.
    Open,
    /// A signed token checked by this server.
    Jwt,
    /// The business server said yes just now.
    Callback,
    /// The business server said yes within the cache TTL.
    Cached,
    /// The call failed and `fail_open` let the user in.
    FailOpen,
}

impl AuthMethod {
    /// The snake_case name (`open`, `jwt`, `callback`, `cached`, `fail_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Open => "open",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Callback => "callback",
            AuthMethod::Cached => "cached",
            AuthMethod::FailOpen => "fail_open",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user may open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectGrant {
    /// How the decision was made.
    pub method: AuthMethod,
}

/// A user may join a room, with what the business server or token grants there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGrant {
    /// A role to give the member on joining (`Owner` or `Admin`); `None` for the room's usual
    /// rules. Never `Some(Role::Member)`.
    pub role: Option<Role>,
    /// Attributes to set on the member on joining (empty for none). Not checked against the
    /// server's attribute limits: the join path applies those.
    pub attributes: Attributes,
    /// How the decision was made.
    pub method: AuthMethod,
}

/// A user may not connect or join, and why; becomes the error frame of the refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct AuthDenied {
    /// `unauthorized` (connect refused, or a bad token), `forbidden` (join refused) or
    /// `auth_unavailable` (the business server could not be asked).
    pub code: ErrorCode,
    /// For the user, at most [`MAX_REASON_LEN`] bytes.
    pub reason: String,
}

impl AuthDenied {
    fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Self { code, reason: truncate(reason.into(), MAX_REASON_LEN) }
    }

    /// The error frame to answer the Hello or the join with.
    pub fn to_error_frame(&self) -> ErrorFrame {
        ErrorFrame::new(self.code, self.reason.clone())
    }

    /// The close code for a refused Hello: `Internal` when the business server could not be
    /// asked (the client may retry), `Unauthorized` otherwise.
    pub fn close_code(&self) -> CloseCode {
        match self.code {
            ErrorCode::AuthUnavailable => CloseCode::Internal,
            _ => CloseCode::Unauthorized,
        }
    }
}

/// Decides who may connect and join, per an [`AuthConfig`]. Cheap to clone (shared state behind
/// an `Arc`); one per server.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    region: String,
    callback: Option<CallbackClient>,
    jwt: Option<JwtVerifier>,
    fail_open: bool,
    cache: Mutex<GrantCache>,
    cache_ttl: Duration,
}

/// Where a token goes.
enum Route<'t> {
    Open,
    Jwt(&'t JwtVerifier, &'t str),
    Callback(&'t CallbackClient),
    MissingToken,
}

impl Authenticator {
    /// An authenticator for `config`, whose callback requests name `region`. Validates the
    /// config and, with a callback, builds its HTTP client (loading the system's root
    /// certificates for `https`). Building needs no runtime; [`connect`](Self::connect) and
    /// [`join`](Self::join) run on tokio.
    pub fn new(config: &AuthConfig, region: &str) -> Result<Self, AuthConfigError> {
        config.validate()?;
        let jwt = config
            .jwt_secret
            .as_ref()
            .map(|secret| JwtVerifier::new(secret.as_bytes(), config.jwt_leeway));
        Ok(Self {
            inner: Arc::new(Inner {
                region: region.into(),
                callback: CallbackClient::new(config)?,
                jwt,
                fail_open: config.fail_open,
                cache: Mutex::new(GrantCache::new(config.cache_ttl, config.cache_max_entries)),
                cache_ttl: config.cache_ttl,
            }),
        })
    }

    /// An authenticator in open mode: anyone may connect and join.
    pub fn open() -> Self {
        Self {
            inner: Arc::new(Inner {
                region: String::new(),
                callback: None,
                jwt: None,
                fail_open: false,
                cache: Mutex::new(GrantCache::new(Duration::ZERO, 0)),
                cache_ttl: Duration::ZERO,
            }),
        }
    }

    /// Whether nothing is configured and any user id is accepted (worth a loud warning).
    pub fn is_open(&self) -> bool {
        self.inner.callback.is_none() && self.inner.jwt.is_none()
    }

    /// Decides whether `request.user` may open a session.
    pub async fn connect(&self, request: ConnectRequest<'_>) -> Result<ConnectGrant, AuthDenied> {
        let ConnectRequest { user, token, addr } = request;
        let grant = match self.route(token) {
            Route::Open => return Ok(ConnectGrant { method: AuthMethod::Open }),
            Route::MissingToken => return Err(missing_token()),
            Route::Jwt(verifier, token) => {
                verifier.verify(token, user, unix_now()).map_err(denied_by_token)?;
                return Ok(ConnectGrant { method: AuthMethod::Jwt });
            }
            Route::Callback(client) => {
                self.ask(client, CallKind::Connect, user, token, None, addr).await?
            }
        };
        Ok(ConnectGrant { method: grant.method })
    }

    /// Decides whether `request.user` may join `request.room`, and with what role and
    /// attributes.
    pub async fn join(&self, request: JoinRequest<'_>) -> Result<JoinGrant, AuthDenied> {
        let JoinRequest { user, token, room, addr } = request;
        match self.route(token) {
            Route::Open => Ok(no_grant(AuthMethod::Open)),
            Route::MissingToken => Err(missing_token()),
            Route::Jwt(verifier, token) => {
                let claims = verifier.verify(token, user, unix_now()).map_err(denied_by_token)?;
                if !claims.allows_room(room) {
                    return Err(denied_by_token(JwtError::RoomNotAllowed(room.into())));
                }
                Ok(JoinGrant {
                    role: claims.role.filter(|&r| r != Role::Member),
                    attributes: claims.attributes.unwrap_or_default(),
                    method: AuthMethod::Jwt,
                })
            }
            Route::Callback(client) => {
                self.ask(client, CallKind::Join, user, token, Some(room), addr).await
            }
        }
    }

    fn route<'t>(&'t self, token: Option<&'t str>) -> Route<'t> {
        match (&self.inner.jwt, &self.inner.callback, token) {
            (None, None, _) => Route::Open,
            (Some(verifier), Some(_), Some(token)) if jwt::looks_like_jwt(token) => {
                Route::Jwt(verifier, token)
            }
            (_, Some(client), _) => Route::Callback(client),
            (Some(verifier), None, Some(token)) => Route::Jwt(verifier, token),
            (Some(_), None, None) => Route::MissingToken,
        }
    }

    /// The callback path: cache, call, then the verdict (or the failure policy).
    async fn ask(
        &self,
        client: &CallbackClient,
        kind: CallKind,
        user: &str,
        token: Option<&str>,
        room: Option<&str>,
        addr: SocketAddr,
    ) -> Result<JoinGrant, AuthDenied> {
        let caching = !self.inner.cache_ttl.is_zero();
        let key = caching.then(|| CacheKey::new(kind, user, token, room));
        let cached = key.as_ref().and_then(|key| self.cache().get(key, Instant::now()));
        if let Some(grant) = cached {
            return Ok(JoinGrant { method: AuthMethod::Cached, ..grant });
        }
        let request =
            callback::request(kind, user, token, room, addr, &self.inner.region, unix_now());
        let answer = match client.call(&request).await {
            Ok(answer) => answer,
            Err(error) if self.inner.fail_open => {
                tracing::warn!(
                    %error, user, room, kind = ?kind, request_id = %request.request_id,
                    "auth callback failed; fail_open lets the user in"
                );
                return Ok(no_grant(AuthMethod::FailOpen));
            }
            Err(error) => {
                tracing::warn!(
                    %error, user, room, kind = ?kind, request_id = %request.request_id,
                    "auth callback failed; refusing (auth_unavailable)"
                );
                return Err(AuthDenied::new(
                    ErrorCode::AuthUnavailable,
                    "the authentication service is unavailable; try again later",
                ));
            }
        };
        if !answer.allow {
            let code = match kind {
                CallKind::Connect => ErrorCode::Unauthorized,
                CallKind::Join => ErrorCode::Forbidden,
            };
            let reason = answer.reason.filter(|r| !r.trim().is_empty());
            tracing::debug!(user, room, kind = ?kind, reason, "auth callback: denied");
            return Err(AuthDenied::new(
                code,
                reason.unwrap_or_else(|| "denied by the business server".into()),
            ));
        }
        let grant = match kind {
            // Roles and attributes belong to a room; on connect there is none.
            CallKind::Connect => no_grant(AuthMethod::Callback),
            CallKind::Join => JoinGrant {
                role: answer.role.filter(|&r| r != Role::Member),
                attributes: answer.attributes.unwrap_or_default(),
                method: AuthMethod::Callback,
            },
        };
        if let Some(key) = key {
            self.cache().insert(key, grant.clone(), Instant::now());
        }
        Ok(grant)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, GrantCache> {
        // The cache holds no invariant a panicking holder could break halfway.
        self.inner.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Display for Authenticator {
    /// One line for the start-up log, without secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        if self.is_open() {
            return f.write_str("open mode (no authentication)");
        }
        if let Some(client) = &inner.callback {
            write!(
                f,
                "callback to {} (timeout {:?}, cache {:?}, {})",
                client.display_url(),
                client.timeout(),
                inner.cache_ttl,
                if inner.fail_open { "fail open" } else { "fail closed" }
            )?;
        }
        if inner.jwt.is_some() {
            f.write_str(if inner.callback.is_some() { "; " } else { "" })?;
            f.write_str("signed tokens (HS256 JWT) checked locally")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authenticator({self})")
    }
}

fn no_grant(method: AuthMethod) -> JoinGrant {
    JoinGrant { role: None, attributes: Attributes::new(), method }
}

fn missing_token() -> AuthDenied {
    AuthDenied::new(ErrorCode::Unauthorized, "a signed token is required")
}

fn denied_by_token(error: JwtError) -> AuthDenied {
    let code = match error {
        JwtError::RoomNotAllowed(_) => ErrorCode::Forbidden,
        _ => ErrorCode::Unauthorized,
    };
    AuthDenied::new(code, error.to_string())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Serde for an optional [`Role`] as its lowercase name (`"owner"`, `"admin"`, `"member"`), as
/// the JSON contracts spell it (the protocol's own serde uses the variant names).
mod role_name {
    use chatroom_protocol::Role;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(role: &Option<Role>, s: S) -> Result<S::Ok, S::Error> {
        match role {
            Some(role) => s.serialize_str(role.as_str()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else { return Ok(None) };
        match name.as_str() {
            "owner" => Ok(Some(Role::Owner)),
            "admin" => Ok(Some(Role::Admin)),
            "member" => Ok(Some(Role::Member)),
            other => Err(serde::de::Error::custom(format!(
                "unknown role `{other}` (expected owner, admin or member)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn addr() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[tokio::test]
    async fn open_mode_lets_anyone_in() {
        let auth = Authenticator::new(&AuthConfig::default(), "eu").unwrap();
        assert!(auth.is_open());
        assert!(Authenticator::open().is_open());
        let grant = auth.connect(ConnectRequest { user: "anyone", token: None, addr: addr() });
        assert_eq!(grant.await.unwrap().method, AuthMethod::Open);
        let join = auth
            .join(JoinRequest { user: "anyone", token: Some("x"), room: "r", addr: addr() })
            .await
            .unwrap();
        assert_eq!(join, no_grant(AuthMethod::Open));
        assert_eq!(auth.to_string(), "open mode (no authentication)");
    }

    #[tokio::test]
    async fn jwt_only_mode_needs_a_token() {
        let config = AuthConfig { jwt_secret: Some(SECRET.into()), ..AuthConfig::default() };
        let auth = Authenticator::new(&config, "eu").unwrap();
        assert!(!auth.is_open());
        let denied = auth
            .connect(ConnectRequest { user: "alice", token: None, addr: addr() })
            .await
            .unwrap_err();
        assert_eq!(denied.code, ErrorCode::Unauthorized);
        let denied = auth
            .connect(ConnectRequest { user: "alice", token: Some("opaque"), addr: addr() })
            .await
            .unwrap_err();
        assert_eq!(denied.code, ErrorCode::Unauthorized);
        assert!(denied.reason.contains("malformed"), "{}", denied.reason);
    }

    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let auth = Authenticator::open();
        assert_send(auth.connect(ConnectRequest { user: "a", token: None, addr: addr() }));
        assert_send(auth.join(JoinRequest { user: "a", token: None, room: "r", addr: addr() }));
        fn assert_sync<T: Send + Sync + Clone + 'static>() {}
        assert_sync::<Authenticator>();
    }

    #[test]
    fn reasons_are_cut_at_a_char_boundary() {
        let long = "é".repeat(200);
        let denied = AuthDenied::new(ErrorCode::Forbidden, long);
        assert!(denied.reason.len() <= MAX_REASON_LEN);
        assert_eq!(denied.reason.len(), MAX_REASON_LEN);
        let frame = denied.to_error_frame();
        assert_eq!(frame.code, ErrorCode::Forbidden);
        assert_eq!(denied.close_code(), CloseCode::Unauthorized);
        let unavailable = AuthDenied::new(ErrorCode::AuthUnavailable, "down");
        assert_eq!(unavailable.close_code(), CloseCode::Internal);
        assert_eq!(denied.to_string(), format!("forbidden: {}", denied.reason));
    }

    #[test]
    fn display_names_the_mode_without_secrets() {
        let config = AuthConfig {
            callback_url: Some("https://user:pw@auth.example.com:8443/cb?x=1".into()),
            secret: Some(SECRET.into()),
            jwt_secret: Some(SECRET.into()),
            ..AuthConfig::default()
        };
        let auth = Authenticator::new(&config, "eu").unwrap();
        let text = auth.to_string();
        assert!(
            text.starts_with("callback to https://auth.example.com:8443/cb (timeout 2s"),
            "{text}"
        );
        assert!(text.contains("fail closed") && text.contains("JWT"), "{text}");
        assert!(!text.contains(SECRET) && !text.contains("pw"), "{text}");
    }
}
