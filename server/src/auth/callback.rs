//! The call to the business server: the JSON it is sent and answers, the signature, the bound on
//! concurrent calls, the timeout and the retry.
//!
//! One call is: wait for a call slot (at most `max_concurrent_calls` in flight), POST the signed
//! JSON, read at most [`MAX_ANSWER_LEN`] bytes of answer, parse it. All of it runs under one
//! deadline (`timeout`). A connection error (the request never reached the business server) is
//! retried once, at once, within the same deadline; nothing else is retried: not a deny (the
//! answer), not an HTTP error (the business server is struggling; a retry would add load), not a
//! timeout (the deadline is spent).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatroom_protocol::{Attributes, Role};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use ring::hmac;
use rustls_platform_verifier::BuilderVerifierExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::config::{AuthConfig, AuthConfigError};
use super::role_name;
use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_with_key};

/// The largest answer read from the business server: 64 KiB. An answer is a verdict, a reason
/// and a few attributes; anything larger is treated as malformed rather than buffered.
pub const MAX_ANSWER_LEN: usize = 64 * 1024;

/// Which decision the business server is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// A user opens a session (`"connect"`).
    Connect,
    /// A user joins a room (`"join"`).
    Join,
}

/// The JSON body POSTed to the business server. See the module docs of [`crate::auth`] for an
/// example; business servers written in Rust can deserialize it with this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    /// `"connect"` or `"join"`.
    pub kind: CallKind,
    /// The user id from the client's Hello.
    pub user: String,
    /// The token from the client's Hello, or `null` when it sent none.
    pub token: Option<String>,
    /// The room being joined; absent on connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The client's IP address as this server sees it (`"203.0.113.7"`, `"2001:db8::1"`).
    pub client_ip: IpAddr,
    /// The client's UDP port as this server sees it.
    pub client_port: u16,
    /// This server's region.
    pub region: String,
    /// When the call was made, Unix seconds; equal to the `X-Chatroom-Timestamp` header.
    pub timestamp: u64,
    /// 32 random hex digits, unique per call (a retry after a connection error repeats it):
    /// remember them for the accepted timestamp window to refuse replays.
    pub request_id: String,
}

/// The JSON the business server answers with (HTTP 2xx). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallbackResponse {
    /// Whether the user may connect or join.
    pub allow: bool,
    /// Why not (shown to the user with the refusal); optional, also allowed with `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Join only: `"owner"` or `"admin"` to grant that role in the room, `"member"` or absent
    /// for none. Ignored on connect.
    #[serde(default, with = "role_name", skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Join only: the member's initial attributes. Ignored on connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

/// Why a call to the business server produced no answer. Each is `auth_unavailable` to the
/// client (or an allow under `fail_open`); the detail is for the server's log.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// No answer within the timeout (waiting for a call slot included).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be sent or its answer not received (connection refused or reset,
    /// TLS failure, DNS failure).
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// The business server answered with an HTTP status other than 2xx.
    #[error("business server answered HTTP {0}")]
    Status(reqwest::StatusCode),
    /// The answer was larger than [`MAX_ANSWER_LEN`].
    #[error("answer larger than {MAX_ANSWER_LEN} bytes")]
    TooLarge,
    /// The answer was not the expected JSON.
    #[error("malformed answer: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The request could not be encoded (cannot happen with the types used; kept typed rather
    /// than a panic).
    #[error("cannot encode the request: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Calls one business server URL: a pooled HTTP client, the signing key and the call slots.
pub(crate) struct CallbackClient {
    http: reqwest::Client,
    url: reqwest::Url,
    key: hmac::Key,
    timeout: Duration,
    slots: Semaphore,
}

impl CallbackClient {
    /// A client for `config`'s callback, or `None` without one. Expects a validated config.
    pub(crate) fn new(config: &AuthConfig) -> Result<Option<Self>, AuthConfigError> {
        let Some(url) = config.callback_url()? else { return Ok(None) };
        let Some(secret) = &config.secret else {
            return Err(AuthConfigError::Invalid {
                key: "auth.secret",
                reason: "is required with auth.callback_url".into(),
            });
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(&url)?)
            .user_agent(concat!("chatroom-server/", env!("CARGO_PKG_VERSION")))
            // A redirect would turn the POST into a GET without the signed body.
            .redirect(reqwest::redirect::Policy::none())
            // The business server is the operator's own service, reached directly.
            .no_proxy()
            .connect_timeout(config.timeout)
            .build()
            .map_err(AuthConfigError::HttpClient)?;
        Ok(Some(Self {
            http,
            url,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            timeout: config.timeout,
            slots: Semaphore::new(config.max_concurrent_calls),
        }))
    }

    /// The URL without credentials or query, for logs.
    pub(crate) fn display_url(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}{}", self.url.scheme(), self.url.path()),
            None => format!("{}://{host}{}", self.url.scheme(), self.url.path()),
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the business server; see the module docs for the deadline and retry.
    pub(crate) async fn call(
        &self,
        request: &CallbackRequest,
    ) -> Result<CallbackResponse, CallbackError> {
        let body = Bytes::from(serde_json::to_vec(request).map_err(CallbackError::Encode)?);
        let timestamp = request.timestamp.to_string();
        let signature = sign_with_key(&self.key, &timestamp, &body);
        let attempt = async {
            // The semaphore is never closed, so acquiring fails only in theory; treat it as
            // waiting forever, which the deadline turns into a timeout.
            let Ok(_slot) = self.slots.acquire().await else {
                return std::future::pending().await;
            };
            let response = match self.post(&body, &timestamp, &signature).await {
                Err(e) if e.is_connect() => {
                    tracing::debug!(error = %e, "auth callback: connection failed, retrying once");
                    self.post(&body, &timestamp, &signature).await
                }
                other => other,
            }
            .map_err(CallbackError::Transport)?;
            read_answer(response).await
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or(Err(CallbackError::Timeout(self.timeout)))
    }

    async fn post(
        &self,
        body: &Bytes,
        timestamp: &str,
        signature: &str,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body.clone())
            .send()
            .await
    }
}

async fn read_answer(mut response: reqwest::Response) -> Result<CallbackResponse, CallbackError> {
    let status = response.status();
    if !status.is_success() {
        return Err(CallbackError::Status(status));
    }
    if response.content_length().is_some_and(|len| len > MAX_ANSWER_LEN as u64) {
        return Err(CallbackError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(CallbackError::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_LEN {
            return Err(CallbackError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    parse_answer(&body).map_err(CallbackError::Malformed)
}

/// Parses an answer, which must be a JSON object: serde would also take a struct as an array
/// (`[true]`), which the contract does not allow.
fn parse_answer(body: &[u8]) -> Result<CallbackResponse, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(serde::de::Error::custom("the answer is not a JSON object"));
    }
    serde_json::from_value(value)
}

/// TLS for the callback: ring (our one crypto provider) and the operating system's roots. A plain
/// `http` URL gets an empty root store instead, so that it works on hosts without CA bundles.
fn tls_config(url: &reqwest::Url) -> Result<rustls::ClientConfig, AuthConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(AuthConfigError::Tls)?;
    let builder = if url.scheme() == "https" {
        builder.with_platform_verifier().map_err(AuthConfigError::Tls)?
    } else {
        builder.with_root_certificates(rustls::RootCertStore::empty())
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The request for a call made now (`timestamp`, Unix seconds).
pub(crate) fn request(
    kind: CallKind,
    user: &str,
    token: Option<&str>,
    room: Option<&str>,
    addr: SocketAddr,
    region: &str,
    timestamp: u64,
) -> CallbackRequest {
    CallbackRequest {
        kind,
        user: user.into(),
        token: token.map(Into::into),
        room: room.map(Into::into),
        client_ip: addr.ip(),
        client_port: addr.port(),
        region: region.into(),
        timestamp,
        request_id: format!("{:032x}", rand::random::<u128>()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_json() {
        let addr: SocketAddr = "[2001:db8::1]:4433".parse().unwrap();
        let r = request(CallKind::Join, "alice", Some("t"), Some("lobby"), addr, "eu", 17);
        let value = serde_json::to_value(&r).unwrap();
        assert_eq!(value["kind"], "join");
        assert_eq!(value["user"], "alice");
        assert_eq!(value["token"], "t");
        assert_eq!(value["room"], "lobby");
        assert_eq!(value["client_ip"], "2001:db8::1");
        assert_eq!(value["client_port"], 4433);
        assert_eq!(value["region"], "eu");
        assert_eq!(value["timestamp"], 17);
        assert_eq!(value["request_id"].as_str().map(str::len), Some(32));
        let connect =
            request(CallKind::Connect, "bob", None, None, "127.0.0.1:1".parse().unwrap(), "eu", 1);
        let value = serde_json::to_value(&connect).unwrap();
        assert_eq!(value["kind"], "connect");
        assert_eq!(value["token"], serde_json::Value::Null);
        assert!(value.get("room").is_none());
        assert_ne!(connect.request_id, r.request_id);
    }

    fn answer(value: serde_json::Value) -> Result<CallbackResponse, serde_json::Error> {
        parse_answer(value.to_string().as_bytes())
    }

    #[test]
    fn response_json() {
        let allow = answer(json!({"allow": true})).unwrap();
        assert_eq!(allow, CallbackResponse { allow: true, ..Default::default() });
        let full = answer(json!({
            "allow": true, "role": "owner", "attributes": {"plan": "pro"}, "extra": [1, 2]
        }))
        .unwrap();
        assert_eq!(full.role, Some(Role::Owner));
        assert_eq!(full.attributes.unwrap()["plan"], "pro");
        let deny = answer(json!({"allow": false, "reason": "banned"})).unwrap();
        assert_eq!(deny.reason.as_deref(), Some("banned"));
        let nulls = answer(json!({"allow": true, "role": null, "attributes": null})).unwrap();
        assert_eq!(nulls.role, None);
        assert_eq!(
            answer(json!({"allow": true, "role": "admin"})).unwrap().role,
            Some(Role::Admin)
        );
        assert_eq!(
            answer(json!({"allow": true, "role": "member"})).unwrap().role,
            Some(Role::Member)
        );
        for bad in [
            json!({}),
            json!({"allow": "yes"}),
            json!({"allow": true, "role": "king"}),
            json!({"allow": true, "role": "Owner"}),
            json!({"allow": true, "attributes": {"n": 1}}),
            json!([true]),
            json!(true),
        ] {
            assert!(answer(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn response_round_trips() {
        let r = CallbackResponse {
            allow: true,
            reason: None,
            role: Some(Role::Admin),
            attributes: Some(Attributes::from([("k".into(), "v".into())])),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"allow":true,"role":"admin","attributes":{"k":"v"}}"#);
        assert_eq!(serde_json::from_str::<CallbackResponse>(&text).unwrap(), r);
    }
}
