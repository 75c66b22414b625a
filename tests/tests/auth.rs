//! Authentication: the [`Authenticator`] against a real HTTP business server on `127.0.0.1:0`
//! (callback mode: allow, deny, grants, failures, fail-open, signatures, caching, bounded
//! concurrency) and with signed tokens (JWT); then the same over QUIC: a chat server asking the
//! business server, and what its clients see.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chatroom_client::{Client, ConnectError};
use chatroom_protocol::{ErrorCode, Role};
use chatroom_server::ServerConfig;
use chatroom_server::auth::{
    AuthConfig, AuthDenied, AuthMethod, Authenticator, ConnectRequest, JoinGrant, JoinRequest,
    RECOMMENDED_MAX_AGE, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER, check_timestamp, sign,
    verify_signature,
};
use chatroom_tests::TestServer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "test-callback-secret-0123456789abcdef";
const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef-0123";
const REGION: &str = "test-region";

fn client_addr() -> SocketAddr {
    // Only reported to the business server; nothing is sent there.
    "198.51.100.7:40000".parse().unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// What the stand-in business server does with each call (after checking its signature).
#[derive(Clone)]
enum Behavior {
    /// Answers from its user table (see [`table_answer`]).
    Table,
    /// Sleeps, then answers from the table.
    Slow(Duration),
    /// Answers with this status and an empty body.
    Status(StatusCode),
    /// Answers 200 with this body.
    Raw(&'static str),
    /// Answers 200 with a body of this many bytes of valid-looking JSON.
    Huge(usize),
}

struct BusinessState {
    secret: String,
    behavior: Behavior,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    bad_signatures: AtomicUsize,
    /// Headers and parsed body of every call whose signature was valid.
    requests: Mutex<Vec<(HeaderMap, Value)>>,
}

/// A business server on loopback; stops when dropped.
struct Business {
    url: String,
    state: Arc<BusinessState>,
    task: tokio::task::JoinHandle<()>,
}

impl Business {
    async fn start(behavior: Behavior) -> Self {
        Self::start_with_secret(behavior, SECRET).await
    }

    async fn start_with_secret(behavior: Behavior, secret: &str) -> Self {
        let state = Arc::new(BusinessState {
            secret: secret.into(),
            behavior,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            bad_signatures: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().route("/auth", post(handle)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url: format!("http://{addr}/auth"), state, task }
    }

    fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    fn bad_signatures(&self) -> usize {
        self.state.bad_signatures.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.state.requests.lock().unwrap().clone()
    }

    /// An authenticator for this business server: no cache, generous timeout; `tune` adjusts.
    fn authenticator(&self, tune: impl FnOnce(&mut AuthConfig)) -> Authenticator {
        let mut config = AuthConfig {
            callback_url: Some(self.url.clone()),
            secret: Some(SECRET.into()),
            timeout: Duration::from_secs(10),
            cache_ttl: Duration::ZERO,
            ..AuthConfig::default()
        };
        tune(&mut config);
        Authenticator::new(&config, REGION).unwrap()
    }
}

impl Drop for Business {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(state): State<Arc<BusinessState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let now_in_flight = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(&state.in_flight);
    state.max_in_flight.fetch_max(now_in_flight, Ordering::SeqCst);

    // What every business server does first: check the signature over the raw body, then
    // the timestamp.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let timestamp = header(TIMESTAMP_HEADER);
    let verified =
        verify_signature(state.secret.as_bytes(), timestamp, &body, header(SIGNATURE_HEADER))
            .and_then(|()| check_timestamp(timestamp, unix_now(), RECOMMENDED_MAX_AGE));
    if verified.is_err() {
        state.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    state.requests.lock().unwrap().push((headers.clone(), request.clone()));

    match &state.behavior {
        Behavior::Table => {}
        Behavior::Slow(delay) => tokio::time::sleep(*delay).await,
        Behavior::Status(status) => return (*status).into_response(),
        Behavior::Raw(text) => return (StatusCode::OK, *text).into_response(),
        Behavior::Huge(len) => {
            let padding = "x".repeat(len.saturating_sub(40));
            let body = format!(r#"{{"allow":true,"reason":"{padding}"}}"#);
            return (StatusCode::OK, body).into_response();
        }
    }
    axum::Json(table_answer(&request)).into_response()
}

/// The user table: tokens are `<user>-token`; mallory is banned; nobody is refused without a
/// reason; alice owns every room she joins (with attributes); bob is admin of `support`;
/// carol gets an explicit `member` role.
fn table_answer(request: &Value) -> Value {
    let user = request["user"].as_str().unwrap_or("");
    let room = request["room"].as_str();
    if user == "mallory" {
        return json!({"allow": false, "reason": "mallory is banned"});
    }
    if user == "nobody" {
        return json!({"allow": false});
    }
    if request["token"].as_str() != Some(&format!("{user}-token")) {
        return json!({"allow": false, "reason": "bad token"});
    }
    match (user, room) {
        ("alice", Some(_)) => json!({
            "allow": true, "role": "owner",
            "attributes": {"display_name": "Alice", "plan": "pro"}
        }),
        ("bob", Some("support")) => json!({"allow": true, "role": "admin"}),
        ("carol", Some(_)) => json!({"allow": true, "role": "member", "reason": "welcome"}),
        ("eve", Some("members-only")) => json!({"allow": false, "reason": "members only"}),
        // A role or attributes on connect are ignored by the server.
        (_, None) => json!({"allow": true, "role": "owner", "attributes": {"ignored": "yes"}}),
        _ => json!({"allow": true}),
    }
}

async fn connect(
    auth: &Authenticator,
    user: &str,
    token: Option<&str>,
) -> Result<AuthMethod, AuthDenied> {
    let request = ConnectRequest { user, token, addr: client_addr() };
    auth.connect(request).await.map(|grant| grant.method)
}

async fn join(
    auth: &Authenticator,
    user: &str,
    token: Option<&str>,
    room: &str,
) -> Result<JoinGrant, AuthDenied> {
    auth.join(JoinRequest { user, token, room, addr: client_addr() }).await
}

fn token_of(user: &str) -> String {
    format!("{user}-token")
}

#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: Result<T, AuthDenied>, code: ErrorCode, reason: &str) {
    let denied = result.expect_err("expected a refusal");
    assert_eq!(denied.code, code, "{denied}");
    assert!(denied.reason.contains(reason), "reason {:?} lacks {reason:?}", denied.reason);
}

// ---------------------------------------------------------------------------------------------
// Callback mode
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allow_sends_the_documented_request() {
    let business = Business::start(Behavior::Table).await;
    let auth = business.authenticator(|_| {});
    assert!(!auth.is_open());
    let before = unix_now();

    let method = connect(&auth, "alice", Some(&token_of("alice"))).await.unwrap();
    assert_eq!(method, AuthMethod::Callback);
    let grant = join(&auth, "alice", Some(&token_of("alice")), "lobby").await.unwrap();
    assert_eq!(grant.method, AuthMethod::Callback);

    let requests = business.requests();
    assert_eq!(requests.len(), 2);
    let (headers, connect) = &requests[0];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(connect["kind"], "connect");
    assert_eq!(connect["user"], "alice");
    assert_eq!(connect["token"], "alice-token");
    assert!(connect.get("room").is_none(), "{connect}");
    assert_eq!(connect["client_ip"], "198.51.100.7");
    assert_eq!(connect["client_port"], 40000);
    assert_eq!(connect["region"], REGION);
    let timestamp = connect["timestamp"].as_u64().unwrap();
    assert!((before..=unix_now()).contains(&timestamp), "{timestamp}");
    assert_eq!(headers[TIMESTAMP_HEADER].to_str().unwrap(), timestamp.to_string());
    let id = connect["request_id"].as_str().unwrap();
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");

    let (_, join) = &requests[1];
    assert_eq!(join["kind"], "join");
    assert_eq!(join["room"], "lobby");
    assert_ne!(join["request_id"], connect["request_id"]);
    assert_eq!(business.bad_signatures(), 0);
}

#[tokio::test]
async fn deny_carries_the_reason() {
    let business = Business::start(Behavior::Table).await;
    let auth = business.authenticator(|_| {});
    let mallory = Some("mallory-token");
    assert_denied(
        connect(&auth, "mallory", mallory).await,
        ErrorCode::Unauthorized,
        "mallory is banned",
    );
    assert_denied(
        join(&auth, "mallory", mallory, "lobby").await,
        ErrorCode::Forbidden,
        "mallory is banned",
    );
    assert_denied(
        connect(&auth, "alice", Some("stolen")).await,
        ErrorCode::Unauthorized,
        "bad token",
    );
    assert_denied(connect(&auth, "alice", None).await, ErrorCode::Unauthorized, "bad token");
    let no_reason = connect(&auth, "nobody", Some("nobody-token")).await;
    assert_denied(no_reason, ErrorCode::Unauthorized, "denied by the business server");
    let frame = join(&auth, "mallory", mallory, "lobby").await.unwrap_err().to_error_frame();
    assert_eq!((frame.code, frame.message.as_str()), (ErrorCode::Forbidden, "mallory is banned"));
    assert_eq!(business.bad_signatures(), 0);
}

#[tokio::test]
async fn join_grants_roles_and_attributes() {
    let business = Business::start(Behavior::Table).await;
    let auth = business.authenticator(|_| {});
    let alice = join(&auth, "alice", Some(&token_of("alice")), "lobby").await.unwrap();
    assert_eq!(alice.role, Some(Role::Owner));
    assert_eq!(alice.attributes["display_name"], "Alice");
    assert_eq!(alice.attributes["plan"], "pro");
    let bob = join(&auth, "bob", Some(&token_of("bob")), "support").await.unwrap();
    assert_eq!((bob.role, bob.attributes.len()), (Some(Role::Admin), 0));
    let bob_elsewhere = join(&auth, "bob", Some(&token_of("bob")), "lobby").await.unwrap();
    assert_eq!(bob_elsewhere.role, None);
    let carol = join(&auth, "carol", Some(&token_of("carol")), "lobby").await.unwrap();
    assert_eq!(carol.role, None, "`member` grants nothing");
    // The connect answer's role and attributes are ignored: a connect grant has neither.
    assert_eq!(connect(&auth, "dave", Some("dave-token")).await.unwrap(), AuthMethod::Callback);
}

#[tokio::test]
async fn timeout_is_auth_unavailable() {
    let business = Business::start(Behavior::Slow(Duration::from_secs(30))).await;
    let auth = business.authenticator(|c| c.timeout = Duration::from_millis(200));
    let started = Instant::now();
    let result = join(&auth, "alice", Some(&token_of("alice")), "lobby").await;
    assert_denied(result, ErrorCode::AuthUnavailable, "unavailable");
    // Bounds a hang; does not measure speed: the business server would take 30 s.
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_eq!(business.calls(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn http_errors_are_auth_unavailable() {
    for status in
        [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::SERVICE_UNAVAILABLE, StatusCode::NOT_FOUND]
    {
        let business = Business::start(Behavior::Status(status)).await;
        let auth = business.authenticator(|_| {});
        let result = connect(&auth, "alice", Some(&token_of("alice"))).await;
        assert_denied(result, ErrorCode::AuthUnavailable, "unavailable");
        assert_eq!(business.calls(), 1, "HTTP {status} is not retried");
    }
}

#[tokio::test]
async fn malformed_answers_are_auth_unavailable() {
    let malformed = [
        Behavior::Raw("this is not json"),
        Behavior::Raw(""),
        Behavior::Raw(r#"{"allow": "yes"}"#),
        Behavior::Raw(r#"{"reason": "no verdict"}"#),
        Behavior::Raw(r#"{"allow": true, "role": "king"}"#),
        Behavior::Raw(r#"{"allow": true, "attributes": {"n": 1}}"#),
        Behavior::Raw("[true]"),
        Behavior::Raw(r#"{"allow": true} trailing"#),
        Behavior::Huge(100 * 1024),
    ];
    for behavior in malformed {
        let business = Business::start(behavior).await;
        let auth = business.authenticator(|_| {});
        let result = join(&auth, "alice", Some(&token_of("alice")), "lobby").await;
        assert_denied(result, ErrorCode::AuthUnavailable, "unavailable");
    }
}

#[tokio::test]
async fn unreachable_business_server_is_auth_unavailable() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let config = AuthConfig {
        callback_url: Some(format!("http://{addr}/auth")),
        secret: Some(SECRET.into()),
        ..AuthConfig::default()
    };
    let auth = Authenticator::new(&config, REGION).unwrap();
    let result = connect(&auth, "alice", Some(&token_of("alice"))).await;
    assert_denied(result, ErrorCode::AuthUnavailable, "unavailable");
}

#[tokio::test]
async fn fail_open_lets_users_in_when_calls_fail() {
    let failing = [
        Behavior::Slow(Duration::from_secs(30)),
        Behavior::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Behavior::Raw("not json"),
    ];
    for behavior in failing {
        let business = Business::start(behavior).await;
        let auth = business.authenticator(|c| {
            c.fail_open = true;
            c.timeout = Duration::from_millis(200);
        });
        // alice would be owner with attributes; failing open grants nothing.
        let grant = join(&auth, "alice", Some(&token_of("alice")), "lobby").await.unwrap();
        assert_eq!(
            grant,
            JoinGrant { role: None, attributes: Default::default(), method: AuthMethod::FailOpen }
        );
        let method = connect(&auth, "alice", Some(&token_of("alice"))).await.unwrap();
        assert_eq!(method, AuthMethod::FailOpen);
    }
    // A definite deny stays a deny.
    let business = Business::start(Behavior::Table).await;
    let auth = business.authenticator(|c| c.fail_open = true);
    let result = connect(&auth, "mallory", Some("mallory-token")).await;
    assert_denied(result, ErrorCode::Unauthorized, "mallory is banned");
}

#[tokio::test]
async fn the_business_side_verifies_the_signature() {
    // The business server expects another secret: it refuses the call, which fails closed.
    let business =
        Business::start_with_secret(Behavior::Table, "not-the-secret-the-chat-server-uses").await;
    let auth = business.authenticator(|_| {});
    let result = connect(&auth, "alice", Some(&token_of("alice"))).await;
    assert_denied(result, ErrorCode::AuthUnavailable, "unavailable");
    assert_eq!(business.bad_signatures(), 1);
    assert!(business.requests().is_empty());

    // The shared verifier: right secret, timestamp and body pass; anything else fails.
    let body = br#"{"kind":"connect","user":"alice"}"#;
    let now = unix_now().to_string();
    let header = sign(SECRET.as_bytes(), &now, body);
    assert_eq!(verify_signature(SECRET.as_bytes(), &now, body, &header), Ok(()));
    let wrong_secret = sign(b"wrong secret", &now, body);
    assert_eq!(
        verify_signature(SECRET.as_bytes(), &now, body, &wrong_secret),
        Err(SignatureError::Mismatch)
    );
    let tampered = br#"{"kind":"connect","user":"admin"}"#;
    assert_eq!(
        verify_signature(SECRET.as_bytes(), &now, tampered, &header),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(SECRET.as_bytes(), &now, body, "sha256=nothex"),
        Err(SignatureError::Malformed)
    );
    let stale = (unix_now() - 3600).to_string();
    assert!(matches!(
        check_timestamp(&stale, unix_now(), RECOMMENDED_MAX_AGE),
        Err(SignatureError::Stale { .. })
    ));
}

#[tokio::test]
async fn allow_answers_are_cached_and_denies_are_not() {
    let business = Business::start(Behavior::Table).await;
    let auth = business.authenticator(|c| c.cache_ttl = Duration::from_secs(30));
    let alice = Some("alice-token");

    let first = join(&auth, "alice", alice, "lobby").await.unwrap();
    let second = join(&auth, "alice", alice, "lobby").await.unwrap();
    assert_eq!(business.calls(), 1, "the second identical join is answered from the cache");
    assert_eq!((first.method, second.method), (AuthMethod::Callback, AuthMethod::Cached));
    assert_eq!((second.role, &second.attributes), (first.role, &first.attributes));

    join(&auth, "alice", alice, "games").await.unwrap();
    assert_eq!(business.calls(), 2, "another room is another question");
    connect(&auth, "alice", alice).await.unwrap();
    assert_eq!(business.calls(), 3, "connect is cached apart from join");
    assert_eq!(connect(&auth, "alice", alice).await.unwrap(), AuthMethod::Cached);
    assert_eq!(business.calls(), 3);
    assert!(join(&auth, "alice", Some("stolen"), "lobby").await.is_err());
    assert_eq!(business.calls(), 4, "another token is checked anew");

    for _ in 0..2 {
        assert!(join(&auth, "mallory", Some("mallory-token"), "lobby").await.is_err());
    }
    assert_eq!(business.calls(), 6, "denies are not cached");

    let uncached = business.authenticator(|c| c.cache_ttl = Duration::ZERO);
    join(&uncached, "alice", alice, "lobby").await.unwrap();
    join(&uncached, "alice", alice, "lobby").await.unwrap();
    assert_eq!(business.calls(), 8, "a zero TTL caches nothing");
}

#[tokio::test]
async fn concurrent_calls_are_bounded() {
    let business = Business::start(Behavior::Slow(Duration::from_millis(300))).await;
    let auth = business.authenticator(|c| {
        c.max_concurrent_calls = 2;
        c.timeout = Duration::from_secs(30);
    });
    let joins = (0..10).map(|i| {
        let auth = auth.clone();
        tokio::spawn(async move {
            let user = format!("user{i}");
            let token = token_of(&user);
            join(&auth, &user, Some(&token), &format!("room{i}")).await
        })
    });
    for handle in joins.collect::<Vec<_>>() {
        handle.await.unwrap().unwrap();
    }
    assert_eq!(business.calls(), 10);
    let max = business.state.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 2, "{max} calls were in flight at once");
    assert_eq!(max, 2, "both call slots were used");
}

// ---------------------------------------------------------------------------------------------
// Signed tokens
// ---------------------------------------------------------------------------------------------

fn jwt(claims: Value) -> String {
    jwt_with_key(claims, JWT_SECRET)
}

fn jwt_with_key(claims: Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

fn jwt_authenticator() -> Authenticator {
    let config = AuthConfig { jwt_secret: Some(JWT_SECRET.into()), ..AuthConfig::default() };
    Authenticator::new(&config, REGION).unwrap()
}

#[tokio::test]
async fn jwt_valid_token() {
    let auth = jwt_authenticator();
    assert!(!auth.is_open());
    let token = jwt(json!({"sub": "alice", "exp": unix_now() + 600, "iat": unix_now()}));
    assert_eq!(connect(&auth, "alice", Some(&token)).await.unwrap(), AuthMethod::Jwt);
    let grant = join(&auth, "alice", Some(&token), "any-room").await.unwrap();
    assert_eq!(
        grant,
        JoinGrant { role: None, attributes: Default::default(), method: AuthMethod::Jwt }
    );
}

#[tokio::test]
async fn jwt_refusals() {
    let auth = jwt_authenticator();
    let expired = jwt(json!({"sub": "alice", "exp": unix_now() - 3600}));
    assert_denied(
        connect(&auth, "alice", Some(&expired)).await,
        ErrorCode::Unauthorized,
        "expired",
    );
    assert_denied(
        join(&auth, "alice", Some(&expired), "lobby").await,
        ErrorCode::Unauthorized,
        "expired",
    );
    let forged = jwt_with_key(
        json!({"sub": "alice", "exp": unix_now() + 600}),
        "some other key of 32+ bytes!!!!!!",
    );
    assert_denied(
        connect(&auth, "alice", Some(&forged)).await,
        ErrorCode::Unauthorized,
        "signature",
    );
    let bobs = jwt(json!({"sub": "bob", "exp": unix_now() + 600}));
    assert_denied(
        connect(&auth, "alice", Some(&bobs)).await,
        ErrorCode::Unauthorized,
        "another user",
    );
    assert_denied(
        connect(&auth, "alice", None).await,
        ErrorCode::Unauthorized,
        "token is required",
    );
    assert_denied(
        connect(&auth, "alice", Some("alice-token")).await,
        ErrorCode::Unauthorized,
        "malformed",
    );
}

#[tokio::test]
async fn jwt_room_restriction_and_role() {
    let auth = jwt_authenticator();
    let exp = unix_now() + 600;
    let owner = jwt(json!({"sub": "alice", "exp": exp, "room": "lobby", "role": "owner",
                           "attributes": {"display_name": "Alice"}}));
    assert_eq!(connect(&auth, "alice", Some(&owner)).await.unwrap(), AuthMethod::Jwt);
    let grant = join(&auth, "alice", Some(&owner), "lobby").await.unwrap();
    assert_eq!(grant.role, Some(Role::Owner));
    assert_eq!(grant.attributes["display_name"], "Alice");
    assert_denied(join(&auth, "alice", Some(&owner), "games").await, ErrorCode::Forbidden, "games");

    let admin =
        jwt(json!({"sub": "bob", "exp": exp, "rooms": ["support", "help"], "role": "admin"}));
    for room in ["support", "help"] {
        assert_eq!(join(&auth, "bob", Some(&admin), room).await.unwrap().role, Some(Role::Admin));
    }
    assert_denied(join(&auth, "bob", Some(&admin), "lobby").await, ErrorCode::Forbidden, "lobby");

    let roving = jwt(json!({"sub": "eve", "exp": exp, "role": "owner"}));
    assert_denied(connect(&auth, "eve", Some(&roving)).await, ErrorCode::Unauthorized, "role");
}

#[tokio::test]
async fn with_both_modes_jwts_are_checked_locally_and_other_tokens_go_to_the_callback() {
    let business = Business::start(Behavior::Table).await;
    let auth = business.authenticator(|c| c.jwt_secret = Some(JWT_SECRET.into()));
    let token =
        jwt(json!({"sub": "alice", "exp": unix_now() + 600, "room": "vip", "role": "admin"}));
    assert_eq!(connect(&auth, "alice", Some(&token)).await.unwrap(), AuthMethod::Jwt);
    assert_eq!(join(&auth, "alice", Some(&token), "vip").await.unwrap().role, Some(Role::Admin));
    assert_eq!(business.calls(), 0, "a JWT needs no call");

    let forged = jwt_with_key(
        json!({"sub": "alice", "exp": unix_now() + 600}),
        "some other key of 32+ bytes!!!!!!",
    );
    assert_denied(
        connect(&auth, "alice", Some(&forged)).await,
        ErrorCode::Unauthorized,
        "signature",
    );
    assert_eq!(business.calls(), 0, "a bad JWT is refused, not passed on to the callback");

    assert_eq!(connect(&auth, "alice", Some("alice-token")).await.unwrap(), AuthMethod::Callback);
    assert_denied(connect(&auth, "alice", None).await, ErrorCode::Unauthorized, "bad token");
    assert_eq!(business.calls(), 2);
}

// ---------------------------------------------------------------------------------------------
// Over QUIC: the chat server asks the business server
// ---------------------------------------------------------------------------------------------

async fn chat_server(auth: AuthConfig) -> TestServer {
    TestServer::start_with(ServerConfig { auth, ..ServerConfig::default() }).await
}

fn callback_config(business: &Business, timeout: Duration) -> AuthConfig {
    AuthConfig {
        callback_url: Some(business.url.clone()),
        secret: Some(SECRET.into()),
        timeout,
        cache_ttl: Duration::ZERO,
        ..AuthConfig::default()
    }
}

async fn chat_connect(
    server: &TestServer,
    user: &str,
    token: &str,
) -> Result<Client, ConnectError> {
    server.client(user).token(token).connect().await.map(|(client, _events)| client)
}

#[tokio::test]
async fn chat_connects_and_joins_as_the_business_server_decides() {
    let business = Business::start(Behavior::Table).await;
    let server = chat_server(callback_config(&business, Duration::from_secs(10))).await;

    // Connect: allowed with the right token; denied with the business server's reason.
    let carol = chat_connect(&server, "carol", "carol-token").await.unwrap();
    let denied = chat_connect(&server, "mallory", "mallory-token").await.unwrap_err();
    assert_eq!(denied.code(), Some(ErrorCode::Unauthorized), "{denied}");
    assert!(denied.to_string().contains("mallory is banned"), "{denied}");
    let denied = chat_connect(&server, "bob", "stolen").await.unwrap_err();
    assert_eq!(denied.code(), Some(ErrorCode::Unauthorized), "{denied}");

    // Join: the business server grants roles and attributes in rooms the user did not create.
    carol.create_room(Some("support")).await.unwrap();
    carol.create_room(Some("members-only")).await.unwrap();
    assert_eq!(carol.join("support").await.unwrap().role, Role::Owner, "the creator owns it");
    let bob = chat_connect(&server, "bob", "bob-token").await.unwrap();
    assert_eq!(bob.join("support").await.unwrap().role, Role::Admin);
    let alice = chat_connect(&server, "alice", "alice-token").await.unwrap();
    assert_eq!(alice.join("support").await.unwrap().role, Role::Owner);
    let attributes = carol.attributes("support", "alice").await.unwrap();
    assert_eq!(attributes.get("display_name").map(String::as_str), Some("Alice"));
    // The granted admin acts as one: bob mutes carol's guest.
    let dave = chat_connect(&server, "dave", "dave-token").await.unwrap();
    assert_eq!(dave.join("support").await.unwrap().role, Role::Member);
    bob.mute("support", "dave", None).await.unwrap();
    assert_eq!(dave.send("support", "hi").await.unwrap_err().code(), Some(ErrorCode::Muted));

    // A denied join is `forbidden`, with the reason, and changes nothing.
    let eve = chat_connect(&server, "eve", "eve-token").await.unwrap();
    let err = eve.join("members-only").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    assert!(err.to_string().contains("members only"), "{err}");
    assert_eq!(carol.member_count("members-only").await.unwrap(), 0);
    // The business server saw signed calls only.
    assert_eq!(business.bad_signatures(), 0);
    let kinds: Vec<_> = business.requests().iter().map(|(_, r)| r["kind"].clone()).collect();
    assert!(kinds.contains(&json!("connect")) && kinds.contains(&json!("join")));
    server.stop().await;
}

#[tokio::test]
async fn chat_fails_closed_when_the_business_server_is_slow() {
    let business = Business::start(Behavior::Slow(Duration::from_secs(5))).await;
    let server = chat_server(callback_config(&business, Duration::from_millis(300))).await;
    let err = chat_connect(&server, "alice", "alice-token").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::AuthUnavailable), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn chat_with_signed_tokens_needs_no_business_server() {
    let auth = AuthConfig { jwt_secret: Some(JWT_SECRET.into()), ..AuthConfig::default() };
    let server = chat_server(auth).await;
    let exp = unix_now() + 600;
    let owner = jwt(json!({"sub": "olga", "exp": exp, "room": "stage", "role": "admin"}));
    let olga = chat_connect(&server, "olga", &owner).await.unwrap();
    olga.create_room(Some("stage")).await.unwrap();
    olga.create_room(Some("backstage")).await.unwrap();
    let plain = jwt(json!({"sub": "pete", "exp": exp}));
    let pete = chat_connect(&server, "pete", &plain).await.unwrap();
    assert_eq!(pete.join("stage").await.unwrap().role, Role::Member);
    // Olga's token names one room: there she is admin, elsewhere she may not go.
    assert_eq!(olga.join("stage").await.unwrap().role, Role::Owner, "creator beats admin");
    assert_eq!(olga.join("backstage").await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    // A token for another user, or none, does not get in.
    let err = chat_connect(&server, "mallory", &plain).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized));
    let err = server.client("nobody").connect().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized));
    server.stop().await;
}

#[tokio::test]
async fn a_client_acts_only_as_the_user_it_authenticated_as() {
    let business = Business::start(Behavior::Table).await;
    let server = chat_server(callback_config(&business, Duration::from_secs(10))).await;
    let carol = chat_connect(&server, "carol", "carol-token").await.unwrap();
    let (dave, mut dave_events) =
        server.client("dave").token("dave-token").connect().await.unwrap();
    carol.create_room(Some("plaza")).await.unwrap();
    carol.join("plaza").await.unwrap();
    dave.join("plaza").await.unwrap();
    // Whatever dave sends carries his authenticated id; he has no way to name another sender.
    let seq = dave.send("plaza", "I am carol").await.unwrap();
    let from = chatroom_tests::next_matching(&mut dave_events, "dave's message", |e| match e {
        chatroom_client::Event::Message { message, .. } if message.seq == seq => {
            Some(message.from.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(from, "dave");
    // No role, no moderation; no room content without joining.
    assert_eq!(dave.kick("plaza", "carol").await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    assert_eq!(
        dave.mute("plaza", "carol", None).await.unwrap_err().code(),
        Some(ErrorCode::Forbidden)
    );
    carol.create_room(Some("private")).await.unwrap();
    assert_eq!(dave.send("private", "peek").await.unwrap_err().code(), Some(ErrorCode::NotAMember));
    server.stop().await;
}
