//! One session over one QUIC connection: the Hello/Welcome handshake, then the tasks that drive
//! it.
//!
//! ```text
//! Client::request ─▶ pending (id ─▶ oneshot) ─▶ outbound channel ─▶ writer task ─▶ session stream
//! session stream ─▶ reader task ─▶ pending[id] (Response) | events (GoingAway)
//! room streams   ─▶ acceptor task ─▶ one reader task per stream (room_stream.rs) ─▶ events
//! connection closed ─▶ supervisor task: fail pending, wait for readers, emit Disconnected
//! ```
//!
//! Everything that knows about a connection's lifetime is here, so that reconnection and session
//! resumption can later replace [`Session::start`] without touching the request API.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use chatroom_protocol::{
    ClientFrame, CloseCode, DecodeError, HEADER_LEN, Hello, PROTOCOL_VERSION, Request, RequestBody,
    Response, ResponseBody, ServerFrame, Welcome, encode,
};
use quinn::{Connection, ConnectionError, Endpoint, ReadError, SendStream, VarInt, WriteError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, warn};

use crate::error::{ConnectError, RequestError};
use crate::event::{Event, Events};
use crate::framed::{FrameReader, ReadFrameError};
use crate::room_stream::{self, RoomOrder};

/// How many encoded requests may wait for the writer task before `request` waits too.
const OUTBOUND_CAPACITY: usize = 64;

/// Opens the session stream, sends the Hello and reads the server's answer.
pub(crate) async fn handshake(
    connection: &Connection,
    hello: Hello,
) -> Result<(SendStream, FrameReader, Welcome), ConnectError> {
    let hello = encode(&ClientFrame::Hello(hello)).map_err(ConnectError::Encode)?;
    let (mut send, recv) = connection.open_bi().await.map_err(connect_error)?;
    send.write_chunk(hello).await.map_err(|e| match e {
        WriteError::ConnectionLost(e) => connect_error(e),
        other => ConnectError::Stream(other.to_string()),
    })?;
    let mut reader = FrameReader::new(recv);
    let welcome = match reader.next::<ServerFrame>().await {
        Ok(Some(ServerFrame::Welcome(welcome))) => welcome,
        Ok(Some(ServerFrame::Rejected(error))) => return Err(ConnectError::Rejected(error)),
        Ok(Some(other)) => {
            return Err(ConnectError::UnexpectedFrame(format!(
                "{} before the welcome",
                server_frame_name(&other)
            )));
        }
        Ok(None) => {
            // The server ends the stream when it closes the connection; prefer its reason.
            if let Some(reason) = connection.close_reason() {
                return Err(connect_error(reason));
            }
            return Err(ConnectError::UnexpectedFrame(
                "session stream ended before the welcome".into(),
            ));
        }
        Err(ReadFrameError::Read(ReadError::ConnectionLost(e))) => return Err(connect_error(e)),
        Err(ReadFrameError::Read(e)) => return Err(ConnectError::Stream(e.to_string())),
        Err(ReadFrameError::Decode(e)) => {
            close_for_decode_error(connection, &e);
            return Err(ConnectError::Protocol(e));
        }
    };
    if welcome.version != PROTOCOL_VERSION {
        close(connection, CloseCode::UnsupportedVersion, "unsupported protocol version");
        return Err(ConnectError::UnsupportedVersion {
            server: welcome.version,
            client: PROTOCOL_VERSION,
        });
    }
    Ok((send, reader, welcome))
}

/// A running session: the handles a [`Client`](crate::Client) needs to make requests and close.
///
/// Dropping it closes the connection with [`CloseCode::Normal`].
#[derive(Debug)]
pub(crate) struct Session {
    endpoint: Endpoint,
    connection: Connection,
    outbound: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    welcome: Welcome,
}

impl Session {
    /// Starts the tasks of a session whose handshake is done. `event_capacity` bounds the
    /// event channel.
    pub(crate) fn start(
        endpoint: Endpoint,
        connection: Connection,
        send: SendStream,
        reader: FrameReader,
        welcome: Welcome,
        event_capacity: usize,
    ) -> (Session, Events) {
        let span = tracing::info_span!(
            "session",
            user = %welcome.user,
            session_id = %welcome.session_id,
            remote = %connection.remote_address(),
        );
        let (events_tx, events_rx) = mpsc::channel(event_capacity.max(1));
        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let shared = Arc::new(Shared::default());

        tokio::spawn(
            write_session(send, outbound_rx, connection.clone(), shared.clone())
                .instrument(span.clone()),
        );
        let reader = tokio::spawn(
            read_session(reader, connection.clone(), shared.clone(), events_tx.clone())
                .instrument(span.clone()),
        );
        let acceptor = tokio::spawn(
            room_stream::accept(connection.clone(), shared.clone(), events_tx.clone())
                .instrument(span.clone()),
        );
        tokio::spawn(
            supervise(connection.clone(), shared.clone(), events_tx, reader, acceptor)
                .instrument(span),
        );

        let session = Session {
            endpoint,
            connection,
            outbound: outbound_tx,
            shared,
            next_id: AtomicU64::new(1),
            welcome,
        };
        (session, Events::new(events_rx))
    }

    /// The server's welcome.
    pub(crate) fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Sends a request and waits for its response.
    ///
    /// Cancel safety: a cancelled request is either not sent or sent whole; its response, if
    /// one comes, is discarded.
    pub(crate) async fn request(&self, body: RequestBody) -> Result<ResponseBody, RequestError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode(&ClientFrame::Request(Request { id, body }))?;
        let len = frame.len() - HEADER_LEN;
        let max = self.welcome.limits.max_frame_len as usize;
        if len > max {
            return Err(RequestError::TooLarge { len, max });
        }
        let response = self.shared.register(id)?;
        let _unregister = Unregister { shared: &self.shared, id };
        if self.outbound.send(frame).await.is_err() {
            return Err(self.shared.disconnected());
        }
        response.await.unwrap_or_else(|_| Err(self.shared.disconnected()))
    }

    /// Closes the connection with `code` and waits, at most `linger`, for the close to reach
    /// the server (the endpoint to become idle).
    pub(crate) async fn close(&self, code: CloseCode, reason: &str, linger: std::time::Duration) {
        self.shared.close(&self.connection, code, reason);
        let _ = tokio::time::timeout(linger, self.endpoint.wait_idle()).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.close(&self.connection, CloseCode::Normal, "client dropped");
    }
}

/// State shared by a session's handle and its tasks.
#[derive(Debug, Default)]
pub(crate) struct Shared {
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

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(
        &self,
        id: u64,
    ) -> Result<oneshot::Receiver<Result<ResponseBody, RequestError>>, RequestError> {
        let mut pending = self.pending();
        if let Some(reason) = &pending.closed {
            return Err(RequestError::Disconnected(reason.clone()));
        }
        let (tx, rx) = oneshot::channel();
        pending.waiting.insert(id, tx);
        Ok(rx)
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
            let _ = tx.send(Err(RequestError::Disconnected(reason.to_owned())));
        }
    }

    fn disconnected(&self) -> RequestError {
        let reason = self.pending().closed.clone();
        RequestError::Disconnected(reason.unwrap_or_else(|| "the session ended".into()))
    }

    /// Closes the connection, remembering why for [`Event::Disconnected`].
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
        let code = match error {
            DecodeError::TooLarge { .. } => CloseCode::FrameTooLarge,
            _ => CloseCode::ProtocolViolation,
        };
        self.close(connection, code, &error.to_string());
    }
}

/// Removes a request from the pending map when its caller stops waiting, answered or not.
struct Unregister<'a> {
    shared: &'a Shared,
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
    shared: Arc<Shared>,
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
/// A full event channel never holds up responses: notices wait in `notices` while reading goes
/// on, and are delivered before this task ends (so before [`Event::Disconnected`]).
async fn read_session(
    mut reader: FrameReader,
    connection: Connection,
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
) {
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
                shared.complete(id, result.map_err(RequestError::Server));
            }
            Ok(Some(ServerFrame::GoingAway { reason })) => {
                debug!(%reason, "server going away");
                shared.going_away.store(true, Ordering::Relaxed);
                notices.push_back(Event::GoingAway { reason });
            }
            Ok(Some(other)) => {
                let what = format!("{} after the welcome", server_frame_name(&other));
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

/// Waits for the connection to end, then fails pending requests and emits the last event once
/// every reader has delivered what it had.
async fn supervise(
    connection: Connection,
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
    reader: JoinHandle<()>,
    acceptor: JoinHandle<()>,
) {
    let error = connection.closed().await;
    let local = shared.local_close.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (reason, code) = describe_close(&error, local);
    debug!(%reason, "connection ended");
    shared.fail_all(&reason);
    let _ = reader.await;
    let _ = acceptor.await;
    let _ = events.send(Event::Disconnected { reason, code }).await;
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

/// The connect error for a connection that ended during the handshake.
fn connect_error(error: ConnectionError) -> ConnectError {
    match error {
        ConnectionError::ApplicationClosed(close) => ConnectError::Closed {
            code: close_code(close.error_code),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        other => ConnectError::Connection(other),
    }
}

fn close(connection: &Connection, code: CloseCode, reason: &str) {
    connection.close(VarInt::from_u32(code.to_u32()), reason.as_bytes());
}

fn close_for_decode_error(connection: &Connection, error: &DecodeError) {
    let code = match error {
        DecodeError::TooLarge { .. } => CloseCode::FrameTooLarge,
        _ => CloseCode::ProtocolViolation,
    };
    close(connection, code, &error.to_string());
}

fn server_frame_name(frame: &ServerFrame) -> &'static str {
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
    fn pending_requests_fail_once_closed() {
        let shared = Shared::default();
        let mut rx = shared.register(1).unwrap();
        shared.fail_all("gone");
        assert!(matches!(rx.try_recv(), Ok(Err(RequestError::Disconnected(r))) if r == "gone"));
        assert!(matches!(shared.register(2), Err(RequestError::Disconnected(_))));
    }

    #[test]
    fn responses_reach_their_request() {
        let shared = Shared::default();
        let mut one = shared.register(1).unwrap();
        let mut two = shared.register(2).unwrap();
        shared.complete(2, Ok(ResponseBody::Done));
        shared.complete(9, Ok(ResponseBody::Done));
        assert!(matches!(two.try_recv(), Ok(Ok(ResponseBody::Done))));
        assert!(one.try_recv().is_err());
    }
}
