//! One QUIC connection of a session, from its Welcome to its end, and the tasks that drive it.
//!
//! ```text
//! Client::request ─▶ pending (id ─▶ oneshot) ─▶ outbound channel ─▶ writer task ─▶ session stream
//! session stream ─▶ reader task ─▶ pending[id] (Response) | events (GoingAway)
//! room streams   ─▶ acceptor task ─▶ one reader task per stream (room_stream.rs) ─▶ events
//! path           ─▶ path task (path.rs): probe a quiet path, give up after a network change
//! ```
//!
//! A connection knows nothing about reconnecting: when it ends, [`ConnTasks::ended`] fails its
//! waiting requests with [`RequestError::ConnectionLost`], waits until its readers have
//! delivered what they had, and says how it ended; the session driver (`session.rs`) decides
//! what comes next.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use chatroom_protocol::{
    ClientFrame, CloseCode, DecodeError, HEADER_LEN, Request, RequestBody, Response, ResponseBody,
    ServerFrame, encode,
};
use quinn::{Connection, ConnectionError, ReadError, SendStream, VarInt, WriteError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, warn};

use crate::connector::{Established, decode_close_code};
use crate::error::RequestError;
use crate::event::Event;
use crate::framed::{FrameReader, ReadFrameError};
use crate::path;
use crate::room_stream::{self, RoomOrder};
use crate::session::SessionState;

/// How many encoded requests may wait for the writer task before `request` waits too.
const OUTBOUND_CAPACITY: usize = 64;

/// The handle of a live connection: what requests and closing need.
#[derive(Debug)]
pub(crate) struct Conn {
    connection: Connection,
    outbound: mpsc::Sender<Bytes>,
    shared: Arc<ConnShared>,
    max_frame_len: usize,
}

/// Why [`Conn::request`] failed.
#[derive(Debug)]
pub(crate) enum ConnRequestError {
    /// The connection had already ended: the request was not sent, and may go out on the
    /// next connection.
    NotSent,
    /// The request failed (answered with an error, lost with the connection, ...).
    Failed(RequestError),
}

impl From<RequestError> for ConnRequestError {
    fn from(error: RequestError) -> Self {
        ConnRequestError::Failed(error)
    }
}

/// The tasks of a connection, to wait for when it ends.
#[derive(Debug)]
pub(crate) struct ConnTasks {
    reader: JoinHandle<()>,
    acceptor: JoinHandle<()>,
    path: JoinHandle<()>,
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) struct Ended {
    /// What quinn says.
    pub(crate) error: ConnectionError,
    /// The code this client closed it with, if it closed it.
    pub(crate) local: Option<CloseCode>,
    /// Why, for people.
    pub(crate) reason: String,
    /// The application close code, when it was closed with one (by either side).
    pub(crate) code: Option<CloseCode>,
}

impl Conn {
    /// Starts the tasks of a connection whose session is open.
    pub(crate) fn start(
        established: Established,
        session: &Arc<SessionState>,
    ) -> (Arc<Conn>, ConnTasks) {
        let Established { connection, send, reader, welcome, .. } = established;
        let span = tracing::info_span!(
            "connection",
            session_id = %welcome.session_id,
            remote = %connection.remote_address(),
        );
        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let shared = Arc::new(ConnShared::default());

        tokio::spawn(
            write_session(send, outbound_rx, connection.clone(), shared.clone())
                .instrument(span.clone()),
        );
        let reader = tokio::spawn(
            read_session(reader, connection.clone(), shared.clone(), session.clone())
                .instrument(span.clone()),
        );
        let acceptor = tokio::spawn(
            room_stream::accept(connection.clone(), shared.clone(), session.clone())
                .instrument(span.clone()),
        );
        let path = tokio::spawn(
            path::watch(
                connection.clone(),
                shared.clone(),
                session.connector.clone(),
                session.settings.path,
                session.network_changes(),
            )
            .instrument(span),
        );
        let conn = Conn {
            connection,
            outbound: outbound_tx,
            shared,
            max_frame_len: welcome.limits.max_frame_len as usize,
        };
        (Arc::new(conn), ConnTasks { reader, acceptor, path })
    }

    /// Sends a request and waits for its response; sets `sent` once the request is handed to
    /// the connection (from then on its outcome is unknown if the connection is lost).
    ///
    /// Cancel safety: a cancelled request is either not sent or sent whole; its response, if
    /// one comes, is discarded.
    pub(crate) async fn request(
        &self,
        id: u64,
        body: RequestBody,
        sent: &AtomicBool,
    ) -> Result<ResponseBody, ConnRequestError> {
        let frame =
            encode(&ClientFrame::Request(Request { id, body })).map_err(RequestError::from)?;
        let len = frame.len() - HEADER_LEN;
        if len > self.max_frame_len {
            return Err(RequestError::TooLarge { len, max: self.max_frame_len }.into());
        }
        let response = self.shared.register(id).ok_or(ConnRequestError::NotSent)?;
        let _unregister = Unregister { shared: &self.shared, id };
        if self.outbound.send(frame).await.is_err() {
            return Err(ConnRequestError::NotSent);
        }
        sent.store(true, Ordering::Relaxed);
        match response.await {
            Ok(result) => result.map_err(ConnRequestError::Failed),
            Err(_) => Err(self.shared.lost().into()),
        }
    }

    /// Closes the connection with `code`, remembering why.
    pub(crate) fn close(&self, code: CloseCode, reason: &str) {
        self.shared.close(&self.connection, code, reason);
    }
}

impl ConnTasks {
    /// Waits for the connection to end; then fails its waiting requests with
    /// [`RequestError::ConnectionLost`] and waits until its readers have delivered what they
    /// had.
    pub(crate) async fn ended(self, conn: &Conn) -> Ended {
        let error = conn.connection.closed().await;
        let local = conn.shared.local_close.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (reason, code) = describe_close(&error, local.clone());
        debug!(%reason, "connection ended");
        conn.shared.fail_all(&reason);
        self.path.abort();
        let _ = self.reader.await;
        let _ = self.acceptor.await;
        Ended { error, local: local.map(|(code, _)| code), reason, code }
    }
}

/// State shared by a connection's handle and its tasks.
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    pending: Mutex<Pending>,
    /// The code and reason this client closed the connection with, first close wins.
    local_close: Mutex<Option<(CloseCode, String)>>,
    /// The server announced its shutdown: the session stream may end without a violation.
    going_away: AtomicBool,
    /// Ordering of successive room streams of the same room.
    pub(crate) rooms: RoomOrder,
}

/// Requests waiting for their response.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Result<ResponseBody, RequestError>>>,
    /// Set once the connection ended: why. No request is registered after that.
    closed: Option<String>,
}

impl ConnShared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers request `id`; `None` once the connection has ended.
    fn register(&self, id: u64) -> Option<oneshot::Receiver<Result<ResponseBody, RequestError>>> {
        let mut pending = self.pending();
        if pending.closed.is_some() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        pending.waiting.insert(id, tx);
        Some(rx)
    }

    fn complete(&self, id: u64, result: Result<ResponseBody, RequestError>) {
        let waiter = self.pending().waiting.remove(&id);
        match waiter {
            // The requester may have given up meanwhile; then nobody wants the answer.
            Some(tx) => drop(tx.send(result)),
            None => debug!(id, "response to no outstanding request"),
        }
    }

    fn fail_all(&self, reason: &str) {
        let waiting = {
            let mut pending = self.pending();
            pending.closed = Some(reason.to_owned());
            std::mem::take(&mut pending.waiting)
        };
        for (_, tx) in waiting {
            let _ = tx.send(Err(RequestError::ConnectionLost(reason.to_owned())));
        }
    }

    fn lost(&self) -> RequestError {
        let reason = self.pending().closed.clone();
        RequestError::ConnectionLost(reason.unwrap_or_else(|| "the connection ended".into()))
    }

    /// Closes the connection, remembering why for [`Ended`].
    pub(crate) fn close(&self, connection: &Connection, code: CloseCode, reason: &str) {
        {
            let mut local = self.local_close.lock().unwrap_or_else(|p| p.into_inner());
            if local.is_none() && connection.close_reason().is_none() {
                *local = Some((code, reason.to_owned()));
            }
        }
        close(connection, code, reason);
    }

    /// Closes the connection because the server broke the protocol.
    pub(crate) fn violation(&self, connection: &Connection, what: &str) {
        warn!(what, "protocol violation by the server");
        self.close(connection, CloseCode::ProtocolViolation, what);
    }

    /// Closes the connection because of bytes that are not a valid frame.
    pub(crate) fn decode_error(&self, connection: &Connection, error: &DecodeError) {
        warn!(%error, "invalid frame from the server");
        self.close(connection, decode_close_code(error), &error.to_string());
    }
}

/// Removes a request from the pending map when its caller stops waiting, answered or not.
struct Unregister<'a> {
    shared: &'a ConnShared,
    id: u64,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.shared.pending().waiting.remove(&self.id);
    }
}

/// Writes queued requests to the session stream, in order.
async fn write_session(
    mut send: SendStream,
    mut outbound: mpsc::Receiver<Bytes>,
    connection: Connection,
    shared: Arc<ConnShared>,
) {
    while let Some(frame) = outbound.recv().await {
        match send.write_chunk(frame).await {
            Ok(()) => {}
            Err(WriteError::ConnectionLost(_)) => return,
            Err(e) => {
                shared.violation(&connection, &format!("session stream unwritable: {e}"));
                return;
            }
        }
    }
    // Every handle is gone: no more requests. The connection is being closed anyway.
    let _ = send.finish();
}

/// Reads the session stream: responses to their requests, GoingAway to the events.
///
/// Every join response updates the session's room positions before its requester sees it,
/// even when nobody waits for it any more. A full event channel never holds up responses:
/// notices wait in `notices` while reading goes on, and are delivered before this task ends.
async fn read_session(
    mut reader: FrameReader,
    connection: Connection,
    shared: Arc<ConnShared>,
    session: Arc<SessionState>,
) {
    let events = session.event_sender();
    let mut notices: VecDeque<Event> = VecDeque::new();
    loop {
        let frame = tokio::select! {
            frame = reader.next::<ServerFrame>() => frame,
            permit = events.reserve(), if !notices.is_empty() => {
                // Without a receiver (`Err`) the notice has nobody to go to: drop it anyway.
                let notice = notices.pop_front();
                if let (Ok(permit), Some(notice)) = (permit, notice) {
                    permit.send(notice);
                }
                continue;
            }
        };
        match frame {
            Ok(Some(ServerFrame::Response(Response { id, result }))) => {
                if let Ok(ResponseBody::Joined(joined)) = &result {
                    session.rooms().note_joined(joined);
                    session.joins.notify_waiters();
                }
                shared.complete(id, result.map_err(RequestError::Server));
            }
            Ok(Some(ServerFrame::GoingAway { reason })) => {
                // The server closes the connection itself (with going_away) once it has told
                // every client. Closing first with `normal` would end the session; waiting costs
                // nothing, as no response comes after this notice anyway.
                debug!(%reason, "server going away");
                shared.going_away.store(true, Ordering::Relaxed);
                session.rooms().server_going_away();
                notices.push_back(Event::GoingAway { reason });
            }
            Ok(Some(other)) => {
                let what = format!("{} after the welcome", frame_name(&other));
                shared.violation(&connection, &what);
                break;
            }
            Ok(None) => {
                if !shared.going_away.load(Ordering::Relaxed) {
                    shared.violation(&connection, "session stream ended");
                }
                break;
            }
            Err(ReadFrameError::Read(ReadError::ConnectionLost(_))) => break,
            Err(ReadFrameError::Read(e)) => {
                shared.violation(&connection, &format!("session stream failed: {e}"));
                break;
            }
            Err(ReadFrameError::Decode(e)) => {
                shared.decode_error(&connection, &e);
                break;
            }
        }
    }
    for notice in notices {
        let _ = events.send(notice).await;
    }
}

/// A sentence and the close code for why a connection ended.
fn describe_close(
    error: &ConnectionError,
    local: Option<(CloseCode, String)>,
) -> (String, Option<CloseCode>) {
    match error {
        ConnectionError::ApplicationClosed(close) => {
            let code = close_code(close.error_code);
            let reason = String::from_utf8_lossy(&close.reason);
            (format!("server closed the connection ({code}): {reason}"), Some(code))
        }
        ConnectionError::LocallyClosed => match local {
            Some((code, reason)) => {
                (format!("closed by this client ({code}): {reason}"), Some(code))
            }
            None => ("closed by this client".into(), None),
        },
        ConnectionError::TimedOut => {
            ("connection timed out: nothing heard from the server".into(), None)
        }
        other => (other.to_string(), None),
    }
}

/// The [`CloseCode`] of a QUIC application error code.
pub(crate) fn close_code(code: VarInt) -> CloseCode {
    u32::try_from(code.into_inner()).map_or(CloseCode::Unknown(u32::MAX), CloseCode::from_u32)
}

/// Closes `connection` with `code` and `reason`.
pub(crate) fn close(connection: &Connection, code: CloseCode, reason: &str) {
    connection.close(VarInt::from_u32(code.to_u32()), reason.as_bytes());
}

/// The name of a server frame, for error messages.
pub(crate) fn frame_name(frame: &ServerFrame) -> &'static str {
    match frame {
        ServerFrame::Welcome(_) => "welcome",
        ServerFrame::Rejected(_) => "rejected",
        ServerFrame::Response(_) => "response",
        ServerFrame::GoingAway { .. } => "going_away",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_and_reasons() {
        assert_eq!(close_code(VarInt::from_u32(5)), CloseCode::GoingAway);
        assert_eq!(close_code(VarInt::from_u32(77)), CloseCode::Unknown(77));
        let (reason, code) = describe_close(
            &ConnectionError::LocallyClosed,
            Some((CloseCode::Normal, "bye".into())),
        );
        assert_eq!(code, Some(CloseCode::Normal));
        assert!(reason.contains("bye"), "{reason}");
        let (_, code) = describe_close(&ConnectionError::TimedOut, None);
        assert_eq!(code, None);
    }

    #[test]
    fn pending_requests_are_lost_with_their_connection() {
        let shared = ConnShared::default();
        let mut rx = shared.register(1).unwrap();
        shared.fail_all("gone");
        assert!(matches!(rx.try_recv(), Ok(Err(RequestError::ConnectionLost(r))) if r == "gone"));
        assert!(shared.register(2).is_none(), "not sent on an ended connection");
    }

    #[test]
    fn responses_reach_their_request() {
        let shared = ConnShared::default();
        let mut one = shared.register(1).unwrap();
        let mut two = shared.register(2).unwrap();
        shared.complete(2, Ok(ResponseBody::Done));
        shared.complete(9, Ok(ResponseBody::Done));
        assert!(matches!(two.try_recv(), Ok(Ok(ResponseBody::Done))));
        assert!(one.try_recv().is_err());
    }
}
