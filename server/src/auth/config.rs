//! [`AuthConfig`]: how users are authenticated, the `[auth]` table of the server's TOML file.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Who may connect and join: the business server's callback, signed tokens, or neither (open
/// mode). Each field is a TOML key of the `[auth]` table; see each for its default and why.
///
/// ```toml
/// [auth]
/// callback_url = "https://api.example.com/chatroom/auth"
/// secret = "a long random string shared with the business server"
/// timeout = "2s"
/// cache_ttl = "30s"
/// ```
///
/// The [`Debug`] output leaves the secrets out.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The business server's URL; every connect and join is POSTed to it (see the crate's
    /// `AUTH.md` for the contract). Default none. `https`, or plain `http` to a loopback
    /// address (`localhost`, `127.0.0.0/8`, `::1`) for a business server on the same host;
    /// anything else needs `allow_insecure_http`.
    pub callback_url: Option<String>,
    /// The shared secret the callback requests are signed with (HMAC-SHA256). Required with
    /// `callback_url`, at least 32 bytes (RFC 2104 §3: a key shorter than the hash output
    /// weakens it). Default none.
    pub secret: Option<String>,
    /// How long a connect or join waits for the business server's answer, including waiting for
    /// a free call slot and the one retry; then it is refused with `auth_unavailable` (or let in
    /// under `fail_open`). Default 2 s: a business server in another region answers in a few
    /// round trips plus a database look-up, well under a second; much longer and a user stares
    /// at a spinner when the business server is down.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// How long an *allow* answer is reused for the same user, token and room (and kind:
    /// connect or join) without calling again. Deny answers are never cached. Default 30 s: a
    /// network blip makes every client reconnect and rejoin at once, which is when the business
    /// server is least able to answer a call per room per user; 30 s absorbs that storm and
    /// still means a revoked user is refused within half a minute. Zero turns the cache off.
    #[serde(deserialize_with = "de_duration")]
    pub cache_ttl: Duration,
    /// The most answers the cache holds; beyond this, new answers are not cached until old ones
    /// expire. Default 100 000: roughly 20 MB, enough for a reconnect storm of a large server.
    pub cache_max_entries: usize,
    /// The most calls to the business server in flight at once; more wait (within `timeout`).
    /// Default 64: keeps a business server with a few dozen workers busy (at 10 ms a call,
    /// some 6 000 calls a second) while a join storm queues here and times out as
    /// `auth_unavailable`, instead of knocking the business server over.
    pub max_concurrent_calls: usize,
    /// Whether a failed call (timeout, connection error, HTTP status other than 2xx, malformed
    /// answer) lets the user in, with no role and no attributes, and a logged warning. Default
    /// false (fail closed): who may enter is the business server's decision, and an attacker
    /// who can make its calls fail (a token that crashes its handler, a flood) must not get in
    /// that way. Turn on only where staying reachable matters more than access control.
    pub fail_open: bool,
    /// Whether `callback_url` may be plain `http` to a host that is not loopback. Default false:
    /// the requests carry users' tokens, which plain HTTP exposes to the network.
    pub allow_insecure_http: bool,
    /// The HS256 key of signed tokens (JWT). With it, a token that is a JWT is checked here,
    /// with no call to the business server. At least 32 bytes (RFC 7518 §3.2); clients hold
    /// tokens signed with it, so a short key could be brute-forced offline. Default none.
    pub jwt_secret: Option<String>,
    /// Clock skew allowed when checking a signed token's `exp` and `nbf`. Default 30 s: servers
    /// kept by NTP agree within a second, and half a minute covers a badly set one without
    /// stretching a token's life noticeably.
    #[serde(deserialize_with = "de_duration")]
    pub jwt_leeway: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            callback_url: None,
            secret: None,
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(30),
            cache_max_entries: 100_000,
            max_concurrent_calls: 64,
            fail_open: false,
            allow_insecure_http: false,
            jwt_secret: None,
            jwt_leeway: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("AuthConfig")
            .field("callback_url", &self.callback_url)
            .field("secret", &redacted(&self.secret))
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_max_entries", &self.cache_max_entries)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("fail_open", &self.fail_open)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("jwt_leeway", &self.jwt_leeway)
            .finish()
    }
}

/// Why an [`AuthConfig`] cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// A value is missing, out of range or inconsistent with another. `key` is the TOML key
    /// with its table (`auth.secret`), ready for a `ConfigError::Invalid`.
    #[error("invalid config value for `{key}`: {reason}")]
    Invalid {
        /// The key, as `auth.<field>`.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The system's root certificates could not be loaded for an `https` callback.
    #[error("cannot set up TLS for the auth callback: {0}")]
    Tls(#[source] rustls::Error),
    /// The HTTP client could not be built.
    #[error("cannot set up the auth callback's HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// The shortest secret accepted, in bytes: the SHA-256 output length.
const MIN_SECRET_LEN: usize = 32;

impl AuthConfig {
    /// Whether neither a callback nor signed tokens are configured: any user id is accepted.
    pub fn is_open(&self) -> bool {
        self.callback_url.is_none() && self.jwt_secret.is_none()
    }

    /// Checks values that parse but make no sense; [`Authenticator::new`] calls it too.
    ///
    /// [`Authenticator::new`]: super::Authenticator::new
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        self.callback_url()?;
        match (&self.callback_url, &self.secret) {
            (Some(_), None) => {
                return invalid(
                    "auth.secret",
                    "is required with auth.callback_url: the business server must be able to \
                     verify that calls come from this server",
                );
            }
            (None, Some(_)) => {
                return invalid("auth.secret", "is set but auth.callback_url is not");
            }
            _ => {}
        }
        for (key, secret) in [("auth.secret", &self.secret), ("auth.jwt_secret", &self.jwt_secret)]
        {
            if secret.as_ref().is_some_and(|s| s.len() < MIN_SECRET_LEN) {
                return invalid(key, &format!("must be at least {MIN_SECRET_LEN} bytes"));
            }
        }
        if self.fail_open && self.callback_url.is_none() {
            return invalid("auth.fail_open", "applies only with auth.callback_url");
        }
        if self.timeout.is_zero() {
            return invalid("auth.timeout", "must be longer than zero");
        }
        if self.max_concurrent_calls == 0 {
            return invalid("auth.max_concurrent_calls", "must be at least 1");
        }
        if self.max_concurrent_calls > tokio::sync::Semaphore::MAX_PERMITS {
            return invalid("auth.max_concurrent_calls", "is too large");
        }
        Ok(())
    }

    /// The parsed callback URL, checked for its scheme and host.
    pub(crate) fn callback_url(&self) -> Result<Option<reqwest::Url>, AuthConfigError> {
        let Some(text) = &self.callback_url else { return Ok(None) };
        const KEY: &str = "auth.callback_url";
        let url = reqwest::Url::parse(text).map_err(|e| AuthConfigError::Invalid {
            key: KEY,
            reason: format!("`{text}` is not a URL: {e}"),
        })?;
        let Some(host) = url.host_str() else { return invalid(KEY, "has no host") };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http || is_loopback(host) => {}
            "http" => {
                return invalid(
                    KEY,
                    "plain http is allowed only to a loopback address (it would expose users' \
                     tokens); use https, or set auth.allow_insecure_http",
                );
            }
            other => return invalid(KEY, &format!("scheme `{other}` is not http or https")),
        }
        Ok(Some(url))
    }
}

/// `host` as a URL spells it: a name, an IPv4 address, or an IPv6 address in brackets.
fn is_loopback(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

fn invalid<T>(key: &'static str, reason: &str) -> Result<T, AuthConfigError> {
    Err(AuthConfigError::Invalid { key, reason: reason.into() })
}

fn de_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::config::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn with_callback(url: &str) -> AuthConfig {
        AuthConfig {
            callback_url: Some(url.into()),
            secret: Some(SECRET.into()),
            ..AuthConfig::default()
        }
    }

    fn invalid_key(config: &AuthConfig) -> &'static str {
        match config.validate() {
            Err(AuthConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_open_and_valid() {
        let config = AuthConfig::default();
        assert!(config.is_open());
        config.validate().unwrap();
    }

    #[test]
    fn toml_table() {
        let config: AuthConfig = toml::from_str(&format!(
            "callback_url = \"https://auth.example.com/cb\"\nsecret = \"{SECRET}\"\n\
             timeout = \"500ms\"\ncache_ttl = \"0s\"\nmax_concurrent_calls = 8"
        ))
        .unwrap();
        config.validate().unwrap();
        assert!(!config.is_open());
        assert_eq!(config.timeout, Duration::from_millis(500));
        assert_eq!(config.cache_ttl, Duration::ZERO);
        assert_eq!(config.max_concurrent_calls, 8);
        assert!(!config.fail_open);
        assert!(toml::from_str::<AuthConfig>("callback = \"https://x\"").is_err());
        assert!(toml::from_str::<AuthConfig>("timeout = \"soon\"").is_err());
    }

    #[test]
    fn callback_url_rules() {
        for ok in [
            "https://auth.example.com/cb",
            "http://127.0.0.1:8080/cb",
            "http://127.8.9.10/cb",
            "http://localhost:8080/cb",
            "http://[::1]:8080/cb",
        ] {
            with_callback(ok).validate().unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["http://auth.example.com/cb", "http://10.0.0.1/cb", "ftp://x/", "not a url"] {
            assert_eq!(invalid_key(&with_callback(bad)), "auth.callback_url", "{bad}");
        }
        let insecure =
            AuthConfig { allow_insecure_http: true, ..with_callback("http://auth.internal/cb") };
        insecure.validate().unwrap();
    }

    #[test]
    fn secrets() {
        let no_secret = AuthConfig { secret: None, ..with_callback("https://a.example/") };
        assert_eq!(invalid_key(&no_secret), "auth.secret");
        let short =
            AuthConfig { secret: Some("short".into()), ..with_callback("https://a.example/") };
        assert_eq!(invalid_key(&short), "auth.secret");
        let orphan = AuthConfig { secret: Some(SECRET.into()), ..AuthConfig::default() };
        assert_eq!(invalid_key(&orphan), "auth.secret");
        let jwt_short = AuthConfig { jwt_secret: Some("short".into()), ..AuthConfig::default() };
        assert_eq!(invalid_key(&jwt_short), "auth.jwt_secret");
        let jwt = AuthConfig { jwt_secret: Some(SECRET.into()), ..AuthConfig::default() };
        jwt.validate().unwrap();
        assert!(!jwt.is_open());
    }

    #[test]
    fn limits() {
        let base = with_callback("https://a.example/");
        let zero_timeout = AuthConfig { timeout: Duration::ZERO, ..base.clone() };
        assert_eq!(invalid_key(&zero_timeout), "auth.timeout");
        let no_calls = AuthConfig { max_concurrent_calls: 0, ..base.clone() };
        assert_eq!(invalid_key(&no_calls), "auth.max_concurrent_calls");
        let fail_open_alone = AuthConfig { fail_open: true, ..AuthConfig::default() };
        assert_eq!(invalid_key(&fail_open_alone), "auth.fail_open");
    }

    #[test]
    fn debug_hides_secrets() {
        let config = AuthConfig { jwt_secret: Some(SECRET.into()), ..with_callback("https://a/") };
        let text = format!("{config:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("<redacted>"));
    }
}
