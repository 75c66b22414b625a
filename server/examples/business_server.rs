//! An example business server for callback authentication: the app developer's backend that
//! tells the chat server who may connect and join (see `server/AUTH.md` for the contract).
//!
//! It checks every call's signature, timestamp and request id (refusing forgeries, stale calls
//! and replays), then answers from a small in-memory user table:
//!
//! | user      | token                 | connect | join                                        |
//! |-----------|-----------------------|---------|---------------------------------------------|
//! | `alice`   | `alice-secret-token`  | yes     | yes, as the room's **owner**, with attributes |
//! | `bob`     | `bob-secret-token`    | yes     | yes; **admin** of `support`                  |
//! | `carol`   | `carol-secret-token`  | yes     | yes, except room `staff`                     |
//! | `mallory` | any                   | no: "mallory is banned"                              |
//!
//! With `--jwt-secret` it also issues signed tokens for the server's signed-token mode:
//! `POST /token` with `{"user": "alice", "token": "alice-secret-token"}` answers
//! `{"jwt": "..."}`, valid for 10 minutes (alice's allows only room `lobby`, as its owner; the
//! others' allow any room).
//!
//! Run it next to the server (the secret must be the same on both sides, 32 bytes or more):
//!
//! ```text
//! export CHATROOM_AUTH_SECRET=$(head -c 32 /dev/urandom | base64)
//! cargo run -p chatroom-server --example business_server -- --listen 127.0.0.1:8080
//!
//! # in [auth] of the server's TOML file:
//! #   callback_url = "http://127.0.0.1:8080/chatroom/auth"
//! #   secret = "<the same secret>"
//! cargo run -p chatroom-server -- --auto-create-rooms --config server.toml
//!
//! chatroom --user alice --token alice-secret-token join lobby     # alice owns lobby
//! chatroom --user mallory --token x join lobby                    # unauthorized (banned)
//! ```
//!
//! An example only: the table, the tokens and the replay memory live in this process.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chatroom_protocol::Role;
use chatroom_server::auth::{
    CallKind, CallbackRequest, CallbackResponse, JwtClaims, RECOMMENDED_MAX_AGE, SIGNATURE_HEADER,
    TIMESTAMP_HEADER, check_timestamp, verify_signature,
};
use clap::Parser;
use serde::Deserialize;

/// An example business server for the chatroom server's callback authentication.
#[derive(Debug, Parser)]
struct Args {
    /// TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The secret shared with the chat server (its `auth.secret`).
    #[arg(long, env = "CHATROOM_AUTH_SECRET", hide_env_values = true)]
    secret: String,
    /// The chat server's `auth.jwt_secret`, to issue signed tokens at `POST /token`.
    #[arg(long, env = "CHATROOM_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

struct App {
    secret: String,
    jwt_secret: Option<String>,
    /// Request ids seen within the accepted timestamp window, with their timestamps.
    seen: Mutex<HashMap<String, u64>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let app = Arc::new(App {
        secret: args.secret,
        jwt_secret: args.jwt_secret,
        seen: Mutex::new(HashMap::new()),
    });
    let router = Router::new()
        .route("/chatroom/auth", post(authenticate))
        .route("/token", post(issue_token))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!("business server on http://{}/chatroom/auth", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

/// The callback: check that the chat server sent it, then decide.
async fn authenticate(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let timestamp = header(TIMESTAMP_HEADER);
    // Signature first, over the raw bytes, before parsing anything an attacker sent.
    if let Err(e) =
        verify_signature(app.secret.as_bytes(), timestamp, &body, header(SIGNATURE_HEADER))
    {
        tracing::warn!("refusing a call: {e}");
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let now = unix_now();
    let sent = match check_timestamp(timestamp, now, RECOMMENDED_MAX_AGE) {
        Ok(sent) => sent,
        Err(e) => {
            tracing::warn!("refusing a call: {e}");
            return (StatusCode::UNAUTHORIZED, "stale request").into_response();
        }
    };
    let request: CallbackRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if request.timestamp != sent {
        return (StatusCode::BAD_REQUEST, "timestamp header and body differ").into_response();
    }
    if !remember(&app, &request.request_id, sent, now) {
        tracing::warn!(request_id = request.request_id, "refusing a replayed call");
        return (StatusCode::CONFLICT, "replayed request").into_response();
    }
    let answer = decide(&request);
    tracing::info!(
        kind = ?request.kind, user = request.user, room = request.room, ip = %request.client_ip,
        allow = answer.allow, reason = answer.reason, "decided"
    );
    Json(answer).into_response()
}

/// Records a request id; false if it was already seen within the window.
fn remember(app: &App, request_id: &str, sent: u64, now: u64) -> bool {
    let mut seen = app.seen.lock().unwrap_or_else(|e| e.into_inner());
    let window = RECOMMENDED_MAX_AGE.as_secs();
    seen.retain(|_, &mut at| now.abs_diff(at) <= window);
    seen.insert(request_id.to_owned(), sent).is_none()
}

fn decide(request: &CallbackRequest) -> CallbackResponse {
    let deny = |reason: &str| CallbackResponse {
        allow: false,
        reason: Some(reason.into()),
        ..CallbackResponse::default()
    };
    let allow = CallbackResponse { allow: true, ..CallbackResponse::default() };
    if request.user == "mallory" {
        return deny("mallory is banned");
    }
    let Some(expected) = token_of(&request.user) else { return deny("unknown user") };
    if request.token.as_deref() != Some(expected) {
        return deny("invalid token; sign in again");
    }
    let Some(room) = request.room.as_deref() else { return allow };
    debug_assert_eq!(request.kind, CallKind::Join);
    match (request.user.as_str(), room) {
        ("alice", _) => CallbackResponse {
            role: Some(Role::Owner),
            attributes: Some(BTreeMap::from([
                ("display_name".to_owned(), "Alice".to_owned()),
                ("plan".to_owned(), "pro".to_owned()),
            ])),
            ..allow
        },
        ("bob", "support") => CallbackResponse { role: Some(Role::Admin), ..allow },
        ("carol", "staff") => deny("staff only"),
        _ => allow,
    }
}

fn token_of(user: &str) -> Option<&'static str> {
    match user {
        "alice" => Some("alice-secret-token"),
        "bob" => Some("bob-secret-token"),
        "carol" => Some("carol-secret-token"),
        _ => None,
    }
}

/// How long an issued signed token is valid: long enough for a session, short enough that a
/// leaked one soon stops working.
const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct TokenRequest {
    user: String,
    token: String,
}

/// Signed-token mode: exchange the app's own credential for a short-lived JWT.
async fn issue_token(State(app): State<Arc<App>>, Json(request): Json<TokenRequest>) -> Response {
    let Some(jwt_secret) = &app.jwt_secret else {
        return (StatusCode::NOT_FOUND, "start with --jwt-secret to issue tokens").into_response();
    };
    if request.user == "mallory" || token_of(&request.user) != Some(request.token.as_str()) {
        return (StatusCode::UNAUTHORIZED, "invalid credentials").into_response();
    }
    let lobby_owner = request.user == "alice";
    let claims = JwtClaims {
        sub: request.user,
        exp: unix_now() + TOKEN_LIFETIME.as_secs(),
        nbf: None,
        room: lobby_owner.then(|| "lobby".to_owned()),
        rooms: None,
        role: lobby_owner.then_some(Role::Owner),
        attributes: None,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(jwt_secret.as_bytes());
    match jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key) {
        Ok(jwt) => Json(serde_json::json!({ "jwt": jwt })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
