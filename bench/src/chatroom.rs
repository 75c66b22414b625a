//! Members on the chatroom server, built on the client library: connect, join, read events.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chatroom_client::{
    Client, ClientBuilder, ConnectError, ErrorCode, Event, Events, RequestError,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::member::{Control, Publisher, Reader, next_control, request_error_kind};

/// How long the set-up connection keeps trying while a server starts.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How to reach the chatroom server.
#[derive(Debug, Clone)]
pub struct ChatroomConnector {
    /// The server (clients behind a proxy are pointed at the proxy instead).
    pub addr: SocketAddr,
    /// The certificate clients trust.
    pub ca: PathBuf,
    /// The name it is valid for.
    pub server_name: String,
}

impl ChatroomConnector {
    fn builder(&self, addr: SocketAddr, user: &str) -> ClientBuilder {
        ClientBuilder::new(addr.to_string())
            .server_name(&self.server_name)
            .ca_pem_file(&self.ca)
            .user(user)
            .agent(concat!("chatroom-bench/", env!("CARGO_PKG_VERSION")))
    }

    /// Connects the set-up client, retrying while the server starts, and creates `rooms`.
    /// The client is kept for the run: it owns the rooms, and closing it would start their
    /// empty-room timers.
    pub async fn setup(&self, user: &str, rooms: &[String]) -> anyhow::Result<Client> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let client = loop {
            match self.builder(self.addr, user).connect().await {
                Ok((client, _events)) => break client,
                Err(error) if Instant::now() < deadline => {
                    tracing::debug!(%error, "server not ready yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => {
                    return Err(error).context(format!("cannot connect to {}", self.addr));
                }
            }
        };
        for room in rooms {
            match client.create_room(Some(room)).await {
                Ok(_) => {}
                Err(RequestError::Server(e)) if e.code == ErrorCode::RoomExists => {}
                Err(e) => bail!("cannot create room {room}: {e}"),
            }
        }
        Ok(client)
    }

    /// Connects `user` through `via` (the server or a proxy in front of it), joins `room`,
    /// and starts counting what arrives with `reader`.
    pub async fn member(
        &self,
        via: SocketAddr,
        user: &str,
        room: &str,
        reader: Reader,
        control: watch::Receiver<Control>,
    ) -> Result<Publisher, String> {
        let (client, events) =
            self.builder(via, user).connect().await.map_err(|e| connect_error_kind(&e))?;
        if let Err(error) = client.join(room).await {
            client.close().await;
            return Err(format!("join: {}", request_error_kind(&error)));
        }
        tokio::spawn(read(events, reader, control));
        Ok(Publisher::Chatroom { client, room: room.to_owned() })
    }

    /// Connects `user`; its events are read and dropped. For idle connections.
    pub async fn connect_idle(&self, user: &str) -> Result<Client, String> {
        let (client, mut events) =
            self.builder(self.addr, user).connect().await.map_err(|e| connect_error_kind(&e))?;
        tokio::spawn(async move { while events.next().await.is_some() {} });
        Ok(client)
    }
}

/// A short, countable name for a failed connection.
fn connect_error_kind(error: &ConnectError) -> String {
    match error.code() {
        Some(code) => format!("connect: {}", code.as_str()),
        None => format!("connect: {error}"),
    }
}

/// Counts one member's events until the driver says stop.
async fn read(mut events: Events, mut reader: Reader, mut control: watch::Receiver<Control>) {
    let mut open = true;
    loop {
        tokio::select! {
            word = next_control(&mut control) => {
                if !reader.control(word) {
                    break;
                }
            }
            event = events.next(), if open => match event {
                Some(Event::Message { message, .. }) => reader.message(&message.text),
                Some(Event::Gap { from, to, .. }) => reader.gap(from, to),
                Some(Event::Reconnecting { attempt: 1, .. }) => reader.reconnecting(),
                Some(Event::Disconnected { reason, .. }) => {
                    tracing::debug!(%reason, "member disconnected");
                    reader.disconnected();
                }
                Some(_) => {}
                None => open = false,
            },
        }
    }
}
