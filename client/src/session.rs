//! The session across connections: the state the [`Client`](crate::Client) handles, the
//! connection tasks and the driver share, and the driver that replaces a lost connection.
//!
//! ```text
//!            ┌──────────────────────────── driver task ─────────────────────────────┐
//!  connect ─▶│ connected ─▶ connection ends ─▶ deliberate or fatal? ── yes ─▶ Disconnected
//!            │     ▲                              │ no
//!            │     │                              ▼
//!            │  rejoin rooms, report gaps ◀─ Welcome ◀─ Hello{resume} ◀─ back-off + jitter
//!            │  (fresh session) or map the      (resumed or fresh)       Reconnecting{attempt}
//!            │  replaying streams (resumed)                                                │
//!            └──────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Requests wait while the link is [`Link::Connecting`] and go out on the next session once
//! its rooms have been re-attached; the reconnection policy itself (back-off, give-up, which
//! endings are fatal) is plain state in `policy.rs`, and room positions are in `tracker.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chatroom_protocol::{
    CloseCode, ErrorCode, ErrorFrame, LeaveReason, RequestBody, ResponseBody, ResumeRequest,
    SessionLimits, Welcome,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, warn};

use crate::connection::{Conn, ConnRequestError, ConnTasks};
use crate::connector::{Connector, Established};
use crate::error::{ConnectError, RequestError};
use crate::event::{Event, Events};
use crate::path::PathSettings;
use crate::policy::{AfterClose, ReconnectPolicy, after_close, retry_after};
use crate::tracker::RoomTracker;

/// How long closing waits for the close to reach the server.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(3);

/// The settings of a session, from the builder.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Whether to reconnect after a lost connection.
    pub(crate) reconnect: bool,
    /// The first back-off delay.
    pub(crate) backoff_initial: Duration,
    /// The longest back-off delay.
    pub(crate) backoff_max: Duration,
    /// The fraction of each delay that is random.
    pub(crate) jitter: f64,
    /// Give up once an outage lasts this long.
    pub(crate) max_reconnect_duration: Option<Duration>,
    /// The longest a request may take, waiting for a session included.
    pub(crate) request_timeout: Duration,
    /// Path watching.
    pub(crate) path: PathSettings,
}

/// Where requests go now.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    /// A session is open on this connection.
    Connected(Arc<Conn>),
    /// Between connections: requests wait.
    Connecting,
    /// The client is done, for this reason: requests fail.
    Closed(String),
}

/// What the client handles, the driver and the connection tasks share.
#[derive(Debug)]
pub(crate) struct SessionState {
    pub(crate) settings: Settings,
    pub(crate) connector: Arc<Connector>,
    /// Notified when a join response updated the rooms, or a rejoin failed: room streams of
    /// rooms joined again wait for that.
    pub(crate) joins: Notify,
    link: watch::Sender<Link>,
    rooms: Mutex<RoomTracker>,
    /// `None` once [`Event::Disconnected`] was sent, so that the events end.
    events: Mutex<Option<mpsc::Sender<Event>>>,
    /// The newest Welcome.
    welcome: Mutex<Welcome>,
    next_id: AtomicU64,
    /// Set when the application closes the client (or drops every handle).
    stop: watch::Sender<bool>,
    /// Bumped by [`Client::network_changed`](crate::Client::network_changed).
    network: watch::Sender<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state consistent: a panic elsewhere is no reason to stop.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionState {
    /// Connects, opens the first session and starts the driver. The first connection is not
    /// retried: its errors are the application's to see.
    pub(crate) async fn connect(
        connector: Connector,
        settings: Settings,
        event_capacity: usize,
    ) -> Result<(Arc<SessionState>, Events), ConnectError> {
        let established = connector.establish(None).await?;
        let (events_tx, events_rx) = mpsc::channel(event_capacity.max(1));
        let state = Arc::new(SessionState {
            settings,
            connector: Arc::new(connector),
            joins: Notify::new(),
            link: watch::Sender::new(Link::Connecting),
            rooms: Mutex::new(RoomTracker::default()),
            events: Mutex::new(Some(events_tx)),
            welcome: Mutex::new(established.welcome.clone()),
            next_id: AtomicU64::new(1),
            stop: watch::Sender::new(false),
            network: watch::Sender::new(0),
        });
        let span = tracing::info_span!("session", user = %state.connector.user());
        let (conn, tasks) = Conn::start(established, &state);
        state.link.send_replace(Link::Connected(conn.clone()));
        tokio::spawn(drive(state.clone(), conn, tasks).instrument(span));
        Ok((state, Events::new(events_rx)))
    }

    /// The room positions.
    pub(crate) fn rooms(&self) -> MutexGuard<'_, RoomTracker> {
        lock(&self.rooms)
    }

    /// A sender of events; one whose receiver is gone once the client is done.
    pub(crate) fn event_sender(&self) -> mpsc::Sender<Event> {
        lock(&self.events).clone().unwrap_or_else(|| mpsc::channel(1).0)
    }

    async fn emit(&self, event: Event) {
        // Without a receiver the application wants no events.
        let _ = self.event_sender().send(event).await;
    }

    /// Whether a lost connection will be replaced (so a server shutdown does not end rooms).
    pub(crate) fn will_reconnect(&self) -> bool {
        self.settings.reconnect && !*self.stop.borrow()
    }

    /// Network change notifications, for the path watcher.
    pub(crate) fn network_changes(&self) -> watch::Receiver<u64> {
        self.network.subscribe()
    }

    /// Tells the path watcher and the driver that the network changed.
    pub(crate) fn network_changed(&self) {
        self.network.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether a session is open now.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(*self.link.borrow(), Link::Connected(_))
    }

    /// The session's id (it changes when a session cannot be resumed).
    pub(crate) fn session_id(&self) -> String {
        lock(&self.welcome).session_id.clone()
    }

    /// The server's region.
    pub(crate) fn region(&self) -> String {
        lock(&self.welcome).region.clone()
    }

    /// The limits the server announced last.
    pub(crate) fn limits(&self) -> SessionLimits {
        lock(&self.welcome).limits.clone()
    }

    /// The user id the server authenticated.
    pub(crate) fn user(&self) -> String {
        lock(&self.welcome).user.clone()
    }

    fn resume_request(&self) -> ResumeRequest {
        let token = lock(&self.welcome).resume_token.clone();
        ResumeRequest { token, rooms: self.rooms().positions() }
    }

    /// Sends a request on the current session, waiting for one while reconnecting, within the
    /// request timeout. `before_send` runs once the request is about to go out.
    pub(crate) async fn request(
        &self,
        body: RequestBody,
        before_send: impl Fn(),
    ) -> Result<ResponseBody, RequestError> {
        let timeout = self.settings.request_timeout;
        let sent = AtomicBool::new(false);
        match tokio::time::timeout(timeout, self.request_on_link(body, &sent, before_send)).await {
            Ok(result) => result,
            Err(_) => Err(RequestError::Timeout { timeout, sent: sent.load(Ordering::Relaxed) }),
        }
    }

    async fn request_on_link(
        &self,
        body: RequestBody,
        sent: &AtomicBool,
        before_send: impl Fn(),
    ) -> Result<ResponseBody, RequestError> {
        let mut link = self.link.subscribe();
        loop {
            let conn = {
                let current = link
                    .wait_for(|link| !matches!(link, Link::Connecting))
                    .await
                    .map_err(|_| RequestError::Disconnected("the client is gone".into()))?;
                match &*current {
                    Link::Connected(conn) => conn.clone(),
                    Link::Closed(reason) => return Err(RequestError::Disconnected(reason.clone())),
                    Link::Connecting => continue,
                }
            };
            before_send();
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            match conn.request(id, body.clone(), sent).await {
                Ok(response) => return Ok(response),
                Err(ConnRequestError::Failed(error)) => return Err(error),
                Err(ConnRequestError::NotSent) => {
                    // That connection just ended: wait for the driver to move on.
                    let moved = link
                        .wait_for(
                            |link| !matches!(link, Link::Connected(c) if Arc::ptr_eq(c, &conn)),
                        )
                        .await;
                    if moved.is_err() {
                        return Err(RequestError::Disconnected("the client is gone".into()));
                    }
                }
            }
        }
    }

    /// Closes the client: the current connection with [`CloseCode::Normal`] (which ends the
    /// session on the server), no more reconnection. Waits, at most [`CLOSE_LINGER`], for the
    /// close to reach the server.
    pub(crate) async fn close(&self) {
        self.stop.send_replace(true);
        let mut link = self.link.subscribe();
        let closed = link.wait_for(|link| matches!(link, Link::Closed(_)));
        let _ = tokio::time::timeout(CLOSE_LINGER + Duration::from_millis(500), closed).await;
    }

    /// Starts closing without waiting (the last handle was dropped).
    pub(crate) fn close_soon(&self) {
        self.stop.send_replace(true);
    }
}

/// The driver: waits for each connection to end and replaces it, until the client is closed,
/// refused for good, or gives up.
async fn drive(state: Arc<SessionState>, mut conn: Arc<Conn>, mut tasks: ConnTasks) {
    let settings = &state.settings;
    let mut policy = ReconnectPolicy::new(
        settings.backoff_initial,
        settings.backoff_max,
        settings.jitter,
        settings.max_reconnect_duration,
    );
    policy.connected(Instant::now());
    let mut stop = state.stop.subscribe();
    loop {
        let ended = {
            let ending = tasks.ended(&conn);
            tokio::pin!(ending);
            tokio::select! {
                ended = &mut ending => ended,
                _ = stopped(&mut stop) => {
                    conn.close(CloseCode::Normal, "client closed");
                    ending.await
                }
            }
        };
        let stopping = *stop.borrow();
        if stopping
            || !settings.reconnect
            || after_close(&ended.error, ended.local) == AfterClose::Stop
        {
            if stopping {
                let idle = state.connector.endpoint().wait_idle();
                let _ = tokio::time::timeout(CLOSE_LINGER, idle).await;
            }
            return finish(&state, ended.reason, ended.code).await;
        }
        state.link.send_replace(Link::Connecting);
        info!(reason = %ended.reason, "connection lost; reconnecting");
        policy.lost(Instant::now());
        // After a network change the old path is known to be gone: no reason to wait.
        let immediate = ended.local == Some(CloseCode::GoingAway);
        match reconnect(&state, &mut policy, &mut stop, immediate, ended.reason).await {
            Ok((next_conn, next_tasks)) => {
                conn = next_conn;
                tasks = next_tasks;
            }
            Err((reason, code)) => return finish(&state, reason, code).await,
        }
    }
}

/// Resolves once the application closed the client.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Err: the sender is gone with the state, which the caller holds: never.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The client is done: requests fail from now on, and the events end with
/// [`Event::Disconnected`].
async fn finish(state: &SessionState, reason: String, code: Option<CloseCode>) {
    info!(%reason, "session ended");
    state.link.send_replace(Link::Closed(reason.clone()));
    state.emit(Event::Disconnected { reason, code }).await;
    lock(&state.events).take();
}

/// Reconnects with back-off until a session is open again; `Err` with the reason and close
/// code when the client stops instead.
async fn reconnect(
    state: &Arc<SessionState>,
    policy: &mut ReconnectPolicy,
    stop: &mut watch::Receiver<bool>,
    mut immediate: bool,
    mut last_error: String,
) -> Result<(Arc<Conn>, ConnTasks), (String, Option<CloseCode>)> {
    let closed = || ("closed by this client".to_owned(), Some(CloseCode::Normal));
    let mut network = state.network.subscribe();
    network.mark_unchanged();
    loop {
        let now = Instant::now();
        let Some(attempt) = policy.next_attempt(now, rand::random::<f64>()) else {
            let outage = policy.outage(now);
            return Err((format!("gave up reconnecting after {outage:.1?}: {last_error}"), None));
        };
        let delay = if std::mem::take(&mut immediate) { Duration::ZERO } else { attempt.delay };
        debug!(attempt = attempt.number, ?delay, "reconnecting");
        state
            .emit(Event::Reconnecting {
                attempt: attempt.number,
                delay,
                reason: last_error.clone(),
            })
            .await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            // A new network is worth trying at once.
            _ = network.changed() => {}
            _ = stopped(stop) => return Err(closed()),
        }
        let resume = Some(state.resume_request());
        let established = tokio::select! {
            established = state.connector.establish(resume) => established,
            _ = stopped(stop) => return Err(closed()),
        };
        match established {
            Ok(established) => {
                let (conn, tasks) = open(state, established).await;
                policy.connected(Instant::now());
                return Ok((conn, tasks));
            }
            Err(error) if !retry_after(&error) => {
                let code = match &error {
                    ConnectError::Closed { code, .. } => Some(*code),
                    _ => None,
                };
                return Err((format!("cannot reconnect: {error}"), code));
            }
            Err(error) => {
                debug!(%error, "reconnection attempt failed");
                last_error = error.to_string();
            }
        }
    }
}

/// Takes over a new connection: resumes or restarts the session's rooms, then lets requests
/// through.
async fn open(state: &Arc<SessionState>, established: Established) -> (Arc<Conn>, ConnTasks) {
    let welcome = established.welcome.clone();
    let zero_rtt = established.zero_rtt;
    let session_id = welcome.session_id.clone();
    let reattach = if welcome.resumed {
        state.rooms().resumed(&welcome.rooms)
    } else {
        state.rooms().fresh_session()
    };
    *lock(&state.welcome) = welcome.clone();
    if welcome.resumed {
        info!(%session_id, zero_rtt, rooms = welcome.rooms.len(), "session resumed");
        state.emit(Event::Resumed { session_id, zero_rtt }).await;
    } else {
        let reason = welcome.resume_refused.clone();
        info!(%session_id, zero_rtt, ?reason, "session not resumed; a fresh one started");
        state.emit(Event::NewSession { session_id, zero_rtt, reason }).await;
    }
    for room in reattach.left {
        state.emit(Event::Left { room, reason: LeaveReason::Requested }).await;
    }
    // Room streams are accepted from here on: the tracker already knows which continue.
    let (conn, tasks) = Conn::start(established, state);
    rejoin(state, &conn, reattach.rejoin).await;
    state.link.send_replace(Link::Connected(conn.clone()));
    (conn, tasks)
}

/// Joins `rooms` again on `conn`, all at once. Each room's stream reports its gap (see
/// `room_stream.rs`); a room that cannot be joined ends with [`Event::RejoinFailed`]. A room
/// whose rejoin is lost with the connection stays in the tracker for the next one.
async fn rejoin(state: &Arc<SessionState>, conn: &Arc<Conn>, rooms: Vec<String>) {
    let mut joins = JoinSet::new();
    for room in rooms {
        let conn = conn.clone();
        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
        let timeout = state.settings.request_timeout;
        joins.spawn(async move {
            let body = RequestBody::Join { room: room.clone() };
            let sent = AtomicBool::new(false);
            let result = tokio::time::timeout(timeout, conn.request(id, body, &sent)).await;
            (room, result)
        });
    }
    while let Some(joined) = joins.join_next().await {
        let Ok((room, result)) = joined else { continue };
        let error = match result {
            // Its stream takes it from here.
            Ok(Ok(ResponseBody::Joined(_))) => continue,
            Ok(Ok(_)) => ErrorFrame::new(ErrorCode::Internal, "unexpected answer to a join"),
            Ok(Err(ConnRequestError::Failed(RequestError::Server(error)))) => error,
            // The connection is gone already: the next one takes the room up again.
            Ok(Err(_)) => continue,
            Err(_) => ErrorFrame::new(ErrorCode::Internal, "no answer to the join in time"),
        };
        warn!(%room, %error, "cannot join the room again");
        state.rooms().rejoin_failed(&room);
        state.joins.notify_waiters();
        state.emit(Event::RejoinFailed { room, error }).await;
    }
}
