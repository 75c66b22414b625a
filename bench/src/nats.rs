//! Members on a NATS server, the baseline: one connection per member, one subject per room;
//! members subscribe to their room's subject and senders publish to it. NATS echoes a
//! publisher's own messages to its subscriptions by default, as the chatroom server does.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;

use crate::member::{Control, Publisher, Reader, next_control};

/// How long one connection (TCP, TLS, CONNECT) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages a subscription buffers before the client counts it a slow consumer and drops:
/// the client library's default.
const SUBSCRIPTION_CAPACITY: usize = 65_536;

/// How to reach the NATS server.
#[derive(Debug, Clone)]
pub struct NatsConnector {
    /// `nats://HOST:PORT` or `tls://HOST:PORT`.
    pub url: String,
    /// Whether TLS is required.
    pub tls: bool,
    /// A CA to trust for TLS.
    pub ca: Option<PathBuf>,
}

impl NatsConnector {
    async fn connect(&self) -> Result<async_nats::Client, String> {
        let mut options = async_nats::ConnectOptions::new()
            .require_tls(self.tls)
            .connection_timeout(CONNECT_TIMEOUT)
            .subscription_capacity(SUBSCRIPTION_CAPACITY);
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.clone());
        }
        options.connect(self.url.as_str()).await.map_err(|e| format!("connect: {e}"))
    }

    /// Checks that the server answers.
    pub async fn probe(&self) -> anyhow::Result<()> {
        let client = self.connect().await.map_err(|e| anyhow::anyhow!("{}: {e}", self.url))?;
        client.flush().await.map_err(|e| anyhow::anyhow!("{}: {e}", self.url))?;
        Ok(())
    }

    /// Connects a member, subscribes it to `subject` and starts counting what arrives.
    pub async fn member(
        &self,
        subject: &str,
        reader: Reader,
        control: watch::Receiver<Control>,
    ) -> Result<Publisher, String> {
        let client = self.connect().await?;
        let subscriber =
            client.subscribe(subject.to_owned()).await.map_err(|e| format!("subscribe: {e}"))?;
        // The subscription is live on the server once a flush has round-tripped.
        client.flush().await.map_err(|e| format!("flush: {e}"))?;
        tokio::spawn(read(subscriber, reader, control));
        Ok(Publisher::Nats { client, subject: subject.to_owned() })
    }
}

async fn read(
    mut subscriber: async_nats::Subscriber,
    mut reader: Reader,
    mut control: watch::Receiver<Control>,
) {
    let mut open = true;
    loop {
        tokio::select! {
            word = next_control(&mut control) => {
                if !reader.control(word) {
                    break;
                }
            }
            message = subscriber.next(), if open => match message {
                Some(message) => match std::str::from_utf8(&message.payload) {
                    Ok(text) => reader.message(text),
                    Err(_) => reader.message(""),
                },
                None => {
                    reader.disconnected();
                    open = false;
                }
            },
        }
    }
}
