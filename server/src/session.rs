//! One connection: the Hello/Welcome handshake (a fresh session, or a resumed one), then
//! requests on the session stream until the connection ends or the server shuts down.
//!
//! Requests are handled one at a time, in order, by plain functions over the session and its
//! rooms (nothing in a handler awaits); only reading frames and writing responses await. A
//! client that does not read its responses therefore stalls only itself.
//!
//! The Hello may arrive as 0-RTT data and is answered at once (0.5-RTT): a resume request is
//! safe to replay (see [`chatroom_protocol::ResumeRequest`]). Requests, which may not be, are
//! only read once the handshake has completed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatroom_protocol::{
    ClientFrame, CloseCode, ErrorCode, ErrorFrame, Hello, JoinedRoom, LeaveReason,
    PROTOCOL_VERSION, Request, RequestBody, Response, ResponseBody, ResumeRequest, RoomFrame,
    ServerFrame, SessionLimits, Welcome, validate_room_id, validate_user_id,
};
use tokio::sync::watch;
use tracing::Instrument;

use crate::admission::{Admitted, Handshake};
use crate::auth::{Authenticator, ConnectRequest, JoinRequest};
use crate::config::ServerConfig;
use crate::framed::{FrameReader, ReadFrameError};
use crate::outbound::{OutboundQueue, QueueLimits};
use crate::registry::{RoomHandle, RoomRegistry, lock};
use crate::room::{ConnId, Grant, Subscriber};
use crate::sessions::{SessionHandle, SessionRegistry, lock_session};
use crate::token::{TokenError, TokenKey};

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) auth: Authenticator,
    pub(crate) registry: RoomRegistry,
    pub(crate) sessions: SessionRegistry,
    token_key: TokenKey,
    next_conn: AtomicU64,
    next_stream: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: ServerConfig, auth: Authenticator) -> Self {
        Self {
            config,
            auth,
            registry: RoomRegistry::new(),
            sessions: SessionRegistry::default(),
            token_key: TokenKey::generate(),
            next_conn: AtomicU64::new(1),
            next_stream: AtomicU64::new(1),
        }
    }

    fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            soft_bytes: self.config.outbound_queue_bytes,
            hard_frames: self.config.outbound_queue_frames,
        }
    }
}

fn close(conn: &quinn::Connection, code: CloseCode, reason: &str) {
    conn.close(code.to_u32().into(), reason.as_bytes());
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn unix_secs() -> u64 {
    unix_ms() / 1000
}

fn bad_request(message: impl Into<String>) -> ErrorFrame {
    ErrorFrame::new(ErrorCode::BadRequest, message)
}

/// Serves one incoming connection to its end.
pub(crate) fn handle_incoming(
    incoming: quinn::Incoming,
    mut admitted: Admitted,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send {
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("conn", id = conn_id, remote = %incoming.remote_address());
    // The `Incoming` (the client's first packet and its decoding state) is large and needed
    // only until the handshake: it lives in its own box, freed once the connection is accepted
    // (see `Established`). The handshake counts as in progress until it completes.
    let accepting = Box::pin(accept(incoming, admitted.take_handshake()));
    async move {
        // `admitted` lives until the connection ends, keeping it counted against its address.
        let _admitted = admitted;
        let Some((conn, established)) = accepting.await else { return };
        serve(conn, conn_id, shared, shutdown, established).await
    }
    .instrument(span)
}

/// Accepts an incoming connection. On the server, conversion to 0.5-RTT always succeeds: the
/// Hello (possibly sent as 0-RTT data) is answered without waiting for the handshake to
/// complete; `handshake` is dropped when it has.
async fn accept(
    incoming: quinn::Incoming,
    handshake: Option<Handshake>,
) -> Option<(quinn::Connection, Established)> {
    let connecting = match incoming.accept() {
        Ok(connecting) => connecting,
        Err(e) => {
            tracing::debug!(error = %e, "cannot accept connection");
            return None;
        }
    };
    match connecting.into_0rtt() {
        Ok((conn, established)) => Some((
            conn,
            Box::pin(async move {
                let accepted = established.await;
                drop(handshake);
                accepted
            }),
        )),
        Err(connecting) => match connecting.await {
            Ok(conn) => {
                drop(handshake);
                Some((conn, Box::pin(std::future::ready(true))))
            }
            Err(e) => {
                tracing::debug!(error = %e, "handshake failed");
                None
            }
        },
    }
}

/// Why a connection could not be served; for logs.
type EndReason = String;

/// Completes with whether the TLS handshake completed (0-RTT data accepted or not).
///
/// Boxed, like the other futures a connection awaits only once or rarely (the Hello,
/// authentication, a request's handling): a connection's task lives as long as the
/// connection, and an `async fn`'s state is as large as its largest await point, so anything
/// large awaited inline would be paid by every idle connection for its whole life.
type Established = Pin<Box<dyn Future<Output = bool> + Send>>;

/// How a served connection ended, which decides what becomes of its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client said goodbye (closed normally, or finished its session stream): the session
    /// ends with it.
    Goodbye,
    /// The connection was lost: the session waits for the client to resume it.
    Lost,
    /// The peer broke the protocol, or the server is shutting down: the session ends.
    Terminated,
}

async fn serve(
    conn: quinn::Connection,
    conn_id: ConnId,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    established: Established,
) {
    if let Err(reason) = serve_session(conn, conn_id, shared, shutdown, established).await {
        tracing::debug!(%reason, "connection ended");
    }
}

async fn serve_session(
    conn: quinn::Connection,
    conn_id: ConnId,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    established: Established,
) -> Result<(), EndReason> {
    // Everything up to the welcome happens once: boxed, so that none of its state stays in the
    // connection's task while it waits for requests (see `Established`).
    let (mut session, mut send, mut reader, span) =
        Box::pin(open_session(&conn, conn_id, &shared)).await?;
    let result = async {
        // Requests may change state and are not safe to replay: read none before the handshake
        // is complete (0-RTT data cannot be replayed after that).
        established.await;
        session.run(&mut send, &mut reader, shutdown).await
    }
    .instrument(span.clone())
    .await;
    let ending = match &result {
        Ok(ending) => *ending,
        Err(_) => Ending::Lost,
    };
    session.finish(ending);
    tracing::info!(parent: &span, ?ending, "connection ended");
    result.map(|_| ())
}

/// Reads and checks the Hello, authenticates, starts or resumes the session and sends the
/// welcome. Returns the session with its stream, and the span of its logs.
async fn open_session(
    conn: &quinn::Connection,
    conn_id: ConnId,
    shared: &Arc<Shared>,
) -> Result<(Session, quinn::SendStream, FrameReader, tracing::Span), EndReason> {
    let config = &shared.config;
    let accepted = Box::pin(tokio::time::timeout(config.handshake_timeout, async {
        let (send, recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
        let mut reader = FrameReader::new(recv, config.max_frame_len);
        let hello = reader.next::<ClientFrame>().await;
        Ok::<_, EndReason>((send, reader, hello))
    }))
    .await;
    let (mut send, reader, hello) = match accepted {
        Ok(result) => result?,
        Err(_) => {
            close(conn, CloseCode::LimitExceeded, "no hello in time");
            return Err("no hello within the handshake timeout".into());
        }
    };
    let hello = match hello {
        Ok(Some(ClientFrame::Hello(hello))) => hello,
        Ok(Some(ClientFrame::Request(_))) => {
            close(conn, CloseCode::ProtocolViolation, "expected hello");
            return Err("request before hello".into());
        }
        Ok(None) => return Err("session stream closed before hello".into()),
        Err(e) => return Err(protocol_error(conn, e)),
    };
    let user = match check_hello(&hello) {
        Ok(user) => user,
        Err((error, code)) => {
            tracing::info!(user = %hello.user, version = hello.version, %error, "hello rejected");
            Box::pin(reject(conn, &mut send, error, code)).await;
            return Err("hello rejected".into());
        }
    };
    let request =
        ConnectRequest { user: &user, token: hello.token.as_deref(), addr: conn.remote_address() };
    if let Err(denied) = Box::pin(shared.auth.connect(request)).await {
        tracing::info!(%user, code = %denied.code, reason = %denied.reason, "connection refused by authentication");
        Box::pin(reject(conn, &mut send, denied.to_error_frame(), denied.close_code())).await;
        return Err("not authenticated".into());
    }
    let mut conn_rooms = HashMap::new();
    let (session, resumed, resume_refused, rooms) = match &hello.resume {
        Some(request) => match resume(shared, &user, request, conn, conn_id, &mut conn_rooms) {
            Ok((session, rooms)) => (session, true, None, rooms),
            Err(refusal) => {
                tracing::info!(%user, reason = %refusal, "resume refused; starting a fresh session");
                (shared.sessions.create(&user), false, Some(refusal), Vec::new())
            }
        },
        None => (shared.sessions.create(&user), false, None, Vec::new()),
    };
    let session_id = lock_session(&session).id.clone();
    let expires = unix_secs().saturating_add(config.resume_token_lifetime.as_secs());
    let welcome = ServerFrame::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        user: user.clone(),
        region: config.region.clone(),
        session_id: session_id.clone(),
        limits: session_limits(config),
        resume_token: shared.token_key.issue(&session_id, &user, expires),
        resume_window_ms: config.resume_window.as_millis().try_into().unwrap_or(u64::MAX),
        resumed,
        resume_refused,
        rooms,
    });
    let span = tracing::info_span!("session", %user, session = %session_id);
    let mut session = Session {
        shared: shared.clone(),
        conn: conn.clone(),
        conn_id,
        user,
        token: hello.token.clone(),
        session,
        rooms: conn_rooms,
    };
    let written = write_frame(&mut send, &welcome).instrument(span.clone()).await;
    if let Err(reason) = written {
        session.finish(Ending::Lost);
        tracing::info!(parent: &span, ending = ?Ending::Lost, "connection ended");
        return Err(reason);
    }
    tracing::info!(parent: &span, agent = %hello.agent, resumed, "session started");
    Ok((session, send, reader, span))
}

/// Re-attaches this connection to the session a resume request names, giving it a new stream
/// per room that replays what the client missed. Refused with a reason when the token is not
/// valid for this user or the session no longer exists.
fn resume(
    shared: &Shared,
    user: &str,
    request: &ResumeRequest,
    conn: &quinn::Connection,
    conn_id: ConnId,
    conn_rooms: &mut HashMap<String, (RoomHandle, Arc<OutboundQueue>)>,
) -> Result<(SessionHandle, Vec<JoinedRoom>), ErrorFrame> {
    let claims = shared.token_key.verify(&request.token, unix_secs()).map_err(|e| match e {
        TokenError::Invalid => ErrorFrame::new(ErrorCode::Unauthorized, "invalid resume token"),
        TokenError::Expired => ErrorFrame::new(ErrorCode::SessionExpired, "resume token expired"),
        TokenError::OtherInstance => ErrorFrame::new(
            ErrorCode::SessionExpired,
            "the server restarted since the session began",
        ),
    })?;
    if claims.user != user {
        // Never somebody else's session, whatever the token says.
        return Err(ErrorFrame::new(
            ErrorCode::Unauthorized,
            "the resume token is not this user's",
        ));
    }
    let expired = || ErrorFrame::new(ErrorCode::SessionExpired, "the session no longer exists");
    let session = shared.sessions.get(&claims.session).ok_or_else(expired)?;
    let mut state = lock_session(&session);
    if state.ended {
        return Err(expired());
    }
    state.attached += 1;
    state.detached_since = None;
    let key = state.key;
    let mut joined = Vec::with_capacity(state.rooms.len());
    state.rooms.retain(|room, handle| {
        let queue = OutboundQueue::new(shared.queue_limits());
        let stream_id = shared.next_stream.fetch_add(1, Ordering::Relaxed);
        let sub = Subscriber { conn: conn_id, session: key, stream_id, queue: queue.clone() };
        let position = request.rooms.iter().find(|p| &p.room == room);
        match lock(handle).reattach(user, sub, position, Instant::now(), &shared.config) {
            Ok(room_joined) => {
                tokio::spawn(queue.clone().run_writer(conn.clone()).in_current_span());
                conn_rooms.insert(room.clone(), (handle.clone(), queue));
                joined.push(room_joined);
                true
            }
            // Kicked (or the room closed) while the client was away.
            Err(_) => false,
        }
    });
    Ok((session.clone(), joined))
}

fn check_hello(hello: &Hello) -> Result<String, (ErrorFrame, CloseCode)> {
    if hello.version != PROTOCOL_VERSION {
        let message = format!(
            "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
            hello.version
        );
        return Err((
            ErrorFrame::new(ErrorCode::UnsupportedVersion, message),
            CloseCode::UnsupportedVersion,
        ));
    }
    validate_user_id(&hello.user).map_err(|e| {
        (ErrorFrame::new(ErrorCode::BadRequest, e.to_string()), CloseCode::Unauthorized)
    })?;
    // Open mode: any well-formed user id is accepted.
    Ok(hello.user.clone())
}

fn session_limits(config: &ServerConfig) -> SessionLimits {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    SessionLimits {
        max_frame_len: clamp(config.max_frame_len),
        max_message_len: clamp(config.max_message_len),
        max_attribute_keys: clamp(config.max_attribute_keys),
        max_attributes_len: clamp(config.max_attributes_len),
        max_rooms_per_connection: clamp(config.max_rooms_per_connection),
        max_members_page: clamp(config.max_members_page),
    }
}

/// Tells the client why its hello was refused, gives the answer a moment to arrive, and closes.
async fn reject(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    error: ErrorFrame,
    code: CloseCode,
) {
    let reason = error.message.clone();
    if write_frame(send, &ServerFrame::Rejected(error)).await.is_ok() {
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
    }
    close(conn, code, &reason);
}

/// Closes the connection for a frame that could not be read, and says why.
fn protocol_error(conn: &quinn::Connection, error: ReadFrameError) -> EndReason {
    match error {
        ReadFrameError::Decode(e) => {
            let code = match e {
                chatroom_protocol::DecodeError::TooLarge { .. } => CloseCode::FrameTooLarge,
                _ => CloseCode::ProtocolViolation,
            };
            tracing::warn!(error = %e, %code, "closing connection: bad frame");
            close(conn, code, &e.to_string());
            format!("bad frame: {e}")
        }
        ReadFrameError::Stream(e) => format!("session stream: {e}"),
    }
}

async fn write_frame(send: &mut quinn::SendStream, frame: &ServerFrame) -> Result<(), EndReason> {
    let bytes = chatroom_protocol::encode(frame).map_err(|e| e.to_string())?;
    send.write_all(&bytes).await.map_err(|e| format!("session stream write: {e}"))
}

/// One connection serving a session.
struct Session {
    shared: Arc<Shared>,
    conn: quinn::Connection,
    conn_id: ConnId,
    user: String,
    /// The Hello's credential, for authorizing joins.
    token: Option<String>,
    session: SessionHandle,
    /// This connection's room streams, by room. A closed queue means the membership ended
    /// without a request from this connection (a kick).
    rooms: HashMap<String, (RoomHandle, Arc<OutboundQueue>)>,
}

impl Session {
    async fn run(
        &mut self,
        send: &mut quinn::SendStream,
        reader: &mut FrameReader,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Ending, EndReason> {
        loop {
            tokio::select! {
                frame = reader.next::<ClientFrame>() => match frame {
                    Ok(Some(ClientFrame::Request(request))) => {
                        let response = Box::pin(self.handle(request)).await;
                        let response = ServerFrame::Response(response);
                        Box::pin(write_frame(send, &response)).await?;
                    }
                    Ok(Some(ClientFrame::Hello(_))) => {
                        close(&self.conn, CloseCode::ProtocolViolation, "second hello");
                        tracing::warn!("closing connection: second hello");
                        return Ok(Ending::Terminated);
                    }
                    Ok(None) => {
                        close(&self.conn, CloseCode::Normal, "session stream finished");
                        return Ok(Ending::Goodbye);
                    }
                    Err(ReadFrameError::Stream(quinn::ReadError::ConnectionLost(
                        quinn::ConnectionError::ApplicationClosed(close),
                    ))) if close.error_code == CloseCode::Normal.to_u32().into() => {
                        return Ok(Ending::Goodbye);
                    }
                    Err(ReadFrameError::Stream(quinn::ReadError::Reset(code))) => {
                        close(&self.conn, CloseCode::ProtocolViolation, "session stream reset");
                        tracing::info!(%code, "client reset its session stream; closing");
                        return Ok(Ending::Terminated);
                    }
                    Err(e @ ReadFrameError::Decode(_)) => {
                        protocol_error(&self.conn, e);
                        return Ok(Ending::Terminated);
                    }
                    Err(e) => return Err(protocol_error(&self.conn, e)),
                },
                _ = crate::server::stopped(&mut shutdown) => {
                    Box::pin(self.going_away(send)).await;
                    return Ok(Ending::Terminated);
                }
            }
        }
    }

    /// Tells the client the server is going away, waits for it to close (at most the grace
    /// period), then closes.
    async fn going_away(&mut self, send: &mut quinn::SendStream) {
        // Room streams end first, so that a client sees why each membership ended.
        if let Ok(left) =
            chatroom_protocol::encode(&RoomFrame::Left { reason: LeaveReason::ServerShutdown })
        {
            for (_, queue) in self.rooms.values() {
                queue.close(Some(left.clone()));
            }
        }
        let frame = ServerFrame::GoingAway { reason: "server shutting down".into() };
        if write_frame(send, &frame).await.is_ok() {
            let _ =
                tokio::time::timeout(self.shared.config.shutdown_grace, self.conn.closed()).await;
        }
        close(&self.conn, CloseCode::GoingAway, "server shutting down");
    }

    /// Detaches this connection from its session. The session ends with it when the client
    /// said goodbye, broke the protocol, or resumption is off; otherwise it waits for the
    /// client to resume it within the resume window.
    fn finish(&mut self, ending: Ending) {
        let now = Instant::now();
        for (handle, _) in self.rooms.values() {
            lock(handle).detach(&self.user, self.conn_id);
        }
        self.rooms.clear();
        let config = &self.shared.config;
        let mut state = lock_session(&self.session);
        state.attached = state.attached.saturating_sub(1);
        if state.attached > 0 {
            return;
        }
        if ending == Ending::Lost && !config.resume_window.is_zero() {
            state.detached_since = Some(now);
            return;
        }
        drop(state);
        self.shared.sessions.end(&self.session, now, config);
    }

    /// Answers one request. Only a join may wait (for the authentication's answer, bounded by
    /// its timeout); meanwhile this connection's next requests wait too, others do not.
    async fn handle(&mut self, request: Request) -> Response {
        let result = match request.body {
            RequestBody::Join { room } => match self.authorize_join(&room).await {
                Ok(grant) => self.join(room, grant, Instant::now()),
                Err(e) => Err(e),
            },
            body => self.apply(body),
        };
        if let Err(e) = &result {
            tracing::debug!(id = request.id, code = %e.code, message = %e.message, "request failed");
        }
        Response { id: request.id, result }
    }

    /// The room this connection is in, for requests that need membership.
    fn joined(&mut self, room: &str) -> Result<RoomHandle, ErrorFrame> {
        match self.rooms.get(room) {
            // An overflowed queue still counts: its connection is closing, the session stays.
            Some((handle, queue)) if !queue.is_ended() => Ok(handle.clone()),
            stale => {
                if stale.is_some() {
                    // Kicked: the room ended the membership; forget it here too.
                    self.rooms.remove(room);
                    lock_session(&self.session).rooms.remove(room);
                }
                Err(ErrorFrame::new(ErrorCode::NotAMember, format!("you are not in room {room}")))
            }
        }
    }

    fn take_send_token(&mut self, now: Instant) -> Result<(), ErrorFrame> {
        if self.shared.sessions.take_message_token(&self.user, now, &self.shared.config) {
            return Ok(());
        }
        Err(ErrorFrame::new(
            ErrorCode::RateLimited,
            format!("more than {} messages per second; slow down", self.shared.config.message_rate),
        ))
    }

    fn apply(&mut self, body: RequestBody) -> Result<ResponseBody, ErrorFrame> {
        let shared = self.shared.clone();
        let config = &shared.config;
        let now = Instant::now();
        let user = self.user.as_str();
        match body {
            RequestBody::CreateRoom { room } => {
                let handle = shared.registry.create(room, user, now)?;
                let room = lock(&handle).id().to_string();
                tracing::info!(%room, "room created");
                Ok(ResponseBody::RoomCreated { room })
            }
            // Joins go through `handle`, which asks the authentication first.
            RequestBody::Join { .. } => {
                Err(ErrorFrame::new(ErrorCode::Internal, "join without authorization"))
            }
            RequestBody::Leave { room } => {
                let handle = self.joined(&room)?;
                self.rooms.remove(&room);
                let mut session = lock_session(&self.session);
                session.rooms.remove(&room);
                lock(&handle).leave(&self.user, session.key, now, config)?;
                Ok(ResponseBody::Done)
            }
            RequestBody::Send { room, text, kind, priority } => {
                let handle = self.joined(&room)?;
                self.take_send_token(now)?;
                let seq =
                    lock(&handle).send(&self.user, text, kind, priority, now, unix_ms(), config)?;
                Ok(ResponseBody::Sent { room, seq })
            }
            RequestBody::Private { room, to, text, kind } => {
                let handle = self.joined(&room)?;
                self.take_send_token(now)?;
                lock(&handle).private(&self.user, &to, text, kind, now, unix_ms(), config)?;
                Ok(ResponseBody::Done)
            }
            RequestBody::SetRole { room, user: target, role } => {
                let handle = self.joined(&room)?;
                lock(&handle).set_role(&self.user, &target, role, config)?;
                Ok(ResponseBody::Done)
            }
            RequestBody::Mute { room, user: target, seconds } => {
                let handle = self.joined(&room)?;
                let duration = seconds.map(Duration::from_secs);
                lock(&handle).mute(&self.user, &target, duration, now)?;
                Ok(ResponseBody::Done)
            }
            RequestBody::Unmute { room, user: target } => {
                let handle = self.joined(&room)?;
                lock(&handle).unmute(&self.user, &target, now)?;
                Ok(ResponseBody::Done)
            }
            RequestBody::Kick { room, user: target } => {
                let handle = self.joined(&room)?;
                lock(&handle).kick(&self.user, &target, now, config)?;
                Ok(ResponseBody::Done)
            }
            RequestBody::SetAttributes { room, set, remove } => {
                let handle = self.joined(&room)?;
                let attributes = lock(&handle).set_attributes(&self.user, set, remove, config)?;
                Ok(ResponseBody::Attributes { room, user: self.user.clone(), attributes })
            }
            RequestBody::GetAttributes { room, user: target } => {
                let attributes = lock(&shared.registry.get(&room)?).attributes(&target)?;
                Ok(ResponseBody::Attributes { room, user: target, attributes })
            }
            RequestBody::MemberCount { room } => {
                let count = lock(&shared.registry.get(&room)?).member_count();
                Ok(ResponseBody::MemberCount { room, count })
            }
            RequestBody::Members { room, after, limit } => {
                let limit = (limit as usize).clamp(1, config.max_members_page);
                let page =
                    lock(&shared.registry.get(&room)?).members_page(after.as_deref(), limit)?;
                Ok(ResponseBody::Members(page))
            }
        }
    }

    /// Asks the authentication whether this user may join `room`, after the cheap local checks.
    async fn authorize_join(&mut self, room: &str) -> Result<Grant, ErrorFrame> {
        validate_room_id(room).map_err(|e| bad_request(e.to_string()))?;
        if self.joined(room).is_ok() {
            return Err(ErrorFrame::new(
                ErrorCode::AlreadyJoined,
                format!("already in room {room}"),
            ));
        }
        let request = JoinRequest {
            user: &self.user,
            token: self.token.as_deref(),
            room,
            addr: self.conn.remote_address(),
        };
        match self.shared.auth.join(request).await {
            Ok(grant) => Ok(Grant { role: grant.role, attributes: grant.attributes }),
            Err(denied) => {
                tracing::info!(%room, code = %denied.code, reason = %denied.reason, "join refused by authentication");
                Err(denied.to_error_frame())
            }
        }
    }

    fn join(
        &mut self,
        room: String,
        grant: Grant,
        now: Instant,
    ) -> Result<ResponseBody, ErrorFrame> {
        validate_room_id(&room).map_err(|e| bad_request(e.to_string()))?;
        if self.joined(&room).is_ok() {
            return Err(ErrorFrame::new(
                ErrorCode::AlreadyJoined,
                format!("already in room {room}"),
            ));
        }
        let config = &self.shared.config;
        let mut session = lock_session(&self.session);
        // Forget memberships that a kick ended while no connection was looking.
        session.rooms.retain(|id, _| self.rooms.get(id).is_none_or(|(_, q)| !q.is_ended()));
        if session.rooms.len() >= config.max_rooms_per_connection {
            return Err(ErrorFrame::new(
                ErrorCode::TooManyRooms,
                format!("a session may be in at most {} rooms", config.max_rooms_per_connection),
            ));
        }
        let handle =
            self.shared.registry.get_for_join(&room, &self.user, config.auto_create_rooms, now)?;
        let queue = OutboundQueue::new(self.shared.queue_limits());
        let stream_id = self.shared.next_stream.fetch_add(1, Ordering::Relaxed);
        let sub = Subscriber {
            conn: self.conn_id,
            session: session.key,
            stream_id,
            queue: queue.clone(),
        };
        let joined = lock(&handle).join_with(&self.user, sub, &grant, now, config)?;
        tokio::spawn(queue.clone().run_writer(self.conn.clone()).in_current_span());
        tracing::debug!(%room, role = joined.role.as_str(), "joined");
        session.rooms.insert(room.clone(), handle.clone());
        self.rooms.insert(room, (handle, queue));
        Ok(ResponseBody::Joined(joined))
    }
}
