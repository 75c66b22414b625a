//! Shared helpers for the integration tests in `tests/tests/`: a real server on `127.0.0.1:0`,
//! clients built for it, a raw QUIC peer for sending arbitrary bytes, and waiting for events
//! with a deadline instead of sleeping.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::BytesMut;
use chatroom_client::{ClientBuilder, Event, Events};
use chatroom_protocol::{
    ALPN, ClientFrame, FrameDecoder, Hello, MAX_FRAME_LEN, PROTOCOL_VERSION, Request, RequestBody,
    Response, ServerFrame,
};
use chatroom_server::{Server, ServerConfig, ShutdownHandle, TlsIdentity};
use rustls::pki_types::CertificateDer;

/// How long a test waits for something that should happen at once on loopback. Generous, so
/// that a loaded CI machine does not fail tests; it bounds hangs, it does not measure speed.
pub const WAIT: Duration = Duration::from_secs(10);

/// Installs a tracing subscriber once per test binary (`RUST_LOG` selects what is shown).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// A fresh directory under the system's temporary directory, unique to this process and call,
/// removed with everything in it when the value is dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates the directory; `what` becomes part of its name.
    pub fn new(what: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("chatroom-test-{}-{what}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of the `chatroom` CLI binary, built (once per test process) if needed.
pub fn cli_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Test binaries live in target/<profile>/deps; the CLI in target/<profile>.
            let exe = std::env::current_exe().expect("test binary path");
            let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build.args(["build", "--quiet", "-p", "chatroom-client", "--bin", "chatroom"]);
            if profile_dir.file_name().is_some_and(|name| name == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build for the chatroom CLI");
            assert!(status.success(), "building the chatroom CLI failed");
            let path = profile_dir.join(format!("chatroom{}", std::env::consts::EXE_SUFFIX));
            assert!(path.exists(), "no CLI binary at {}", path.display());
            path
        })
        .clone()
}

/// A server running in this process on a free loopback port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its self-signed certificate, for clients to trust.
    pub cert: CertificateDer<'static>,
    /// The same certificate as a PEM file, for the CLI's `--ca`.
    pub cert_pem: PathBuf,
    /// Replaces the server's certificate for new connections.
    pub tls_reloader: chatroom_server::TlsReloader,
    stop: ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
    _dir: ScratchDir,
}

impl TestServer {
    /// A server with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    /// A server with `config`, listening on `127.0.0.1:0` whatever `config.listen` says.
    pub async fn start_with(config: ServerConfig) -> Self {
        init_tracing();
        let config = ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..config };
        let dir = ScratchDir::new("server");
        let (identity, cert_pem) =
            TlsIdentity::dev_identity(dir.path()).expect("self-signed certificate");
        let cert = identity.cert_chain[0].clone();
        let server = Server::bind(config, &identity).expect("bind test server");
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let tls_reloader = server.tls_reloader();
        let task = tokio::spawn(server.run());
        Self { addr, cert, cert_pem, tls_reloader, stop, task, _dir: dir }
    }

    /// A client builder for this server, acting as `user`.
    pub fn client(&self, user: &str) -> ClientBuilder {
        ClientBuilder::new(self.addr.to_string()).ca_der(self.cert.clone()).user(user)
    }

    /// Connects `user`, panicking on failure.
    pub async fn connect(&self, user: &str) -> (chatroom_client::Client, Events) {
        self.client(user).connect().await.unwrap_or_else(|e| panic!("connect {user}: {e}"))
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(self) {
        self.stop.shutdown();
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }
}

/// Awaits `future`, failing the test after [`WAIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Waits for the first event that `pick` maps to `Some`, skipping the others; fails the test
/// after [`WAIT`] or if the events end.
pub async fn next_matching<T>(
    events: &mut Events,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            match events.next().await {
                Some(event) => {
                    if let Some(value) = pick(&event) {
                        return value;
                    }
                }
                None => panic!("events ended while waiting for {what}"),
            }
        }
    })
    .await
}

/// Collects the texts and seqs of the next `n` room messages of `room`, skipping other events.
pub async fn messages(events: &mut Events, room: &str, n: usize) -> Vec<(u64, String, String)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let message =
            next_matching(events, &format!("message {} of {n} in {room}", out.len() + 1), |e| {
                match e {
                    Event::Message { room: r, message } if r == room => {
                        Some((message.seq, message.from.clone(), message.text.clone()))
                    }
                    _ => None,
                }
            })
            .await;
        out.push(message);
    }
    out
}

/// Asserts that no event matching `pick` arrives while `barrier` runs: `barrier` must make the
/// server send something that is delivered after anything `pick` could match (for example a
/// message in the same room), so that absence is proven by ordering, not by waiting.
pub async fn assert_none_before(
    events: &mut Events,
    what: &str,
    mut unwanted: impl FnMut(&Event) -> bool,
    mut barrier: impl FnMut(&Event) -> bool,
) {
    within(what, async {
        loop {
            let event = events.next().await.unwrap_or_else(|| panic!("events ended: {what}"));
            assert!(!unwanted(&event), "unexpected event ({what}): {event:?}");
            if barrier(&event) {
                return;
            }
        }
    })
    .await
}

/// A QUIC peer that speaks the protocol by hand, to send what a well-behaved client would not.
pub struct RawPeer {
    /// The connection.
    pub conn: quinn::Connection,
    /// The session stream's send side.
    pub send: quinn::SendStream,
    recv: quinn::RecvStream,
    buf: BytesMut,
    _endpoint: quinn::Endpoint,
}

impl RawPeer {
    /// Connects to `server` and opens the session stream, without sending anything on it.
    pub async fn connect(server: &TestServer) -> Self {
        init_tracing();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server.cert.clone()).expect("trust test certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        crypto.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).expect("QUIC crypto");
        let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("client endpoint");
        let mut config = quinn::ClientConfig::new(Arc::new(quic));
        // Like the client library: a room stream that is not read holds at most this much of
        // the server's send window, so that other rooms keep flowing.
        let mut transport = quinn::TransportConfig::default();
        transport.stream_receive_window(quinn::VarInt::from_u32(32 * 1024));
        config.transport_config(Arc::new(transport));
        endpoint.set_default_client_config(config);
        let conn = within("raw connect", async {
            endpoint.connect(server.addr, "localhost").expect("connect").await.expect("handshake")
        })
        .await;
        let (send, recv) = conn.open_bi().await.expect("open session stream");
        Self { conn, send, recv, buf: BytesMut::new(), _endpoint: endpoint }
    }

    /// Writes raw bytes on the session stream.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.send.write_all(bytes).await.expect("write");
    }

    /// Writes one frame.
    pub async fn write_frame(&mut self, frame: &ClientFrame) {
        let bytes = chatroom_protocol::encode(frame).expect("encode");
        self.write(&bytes).await;
    }

    /// Sends a valid Hello as `user` and returns the server's answer.
    pub async fn hello(&mut self, user: &str) -> ServerFrame {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            user: user.into(),
            token: None,
            agent: "raw".into(),
            resume: None,
        };
        self.write_frame(&ClientFrame::Hello(hello)).await;
        self.read_frame().await.expect("answer to hello")
    }

    /// Sends a request and returns its response (skipping nothing: the session stream carries
    /// only responses after the welcome).
    pub async fn request(&mut self, id: u64, body: RequestBody) -> Response {
        self.write_frame(&ClientFrame::Request(Request { id, body })).await;
        match self.read_frame().await {
            Some(ServerFrame::Response(response)) => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Reads the next frame of the session stream; `None` when it ends or fails.
    pub async fn read_frame(&mut self) -> Option<ServerFrame> {
        let decoder = FrameDecoder::new(MAX_FRAME_LEN);
        within("a frame from the server", async {
            loop {
                match decoder.decode(&mut self.buf) {
                    Ok(Some(frame)) => return Some(frame),
                    Ok(None) => {}
                    Err(e) => panic!("server sent a bad frame: {e}"),
                }
                match self.recv.read_chunk(64 * 1024, true).await {
                    Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                    Ok(None) | Err(_) => return None,
                }
            }
        })
        .await
    }

    /// Waits for the server to close the connection and returns the application close code.
    pub async fn closed_with(&self) -> Option<chatroom_protocol::CloseCode> {
        match within("the server to close the connection", self.conn.closed()).await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                Some(chatroom_protocol::CloseCode::from_u32(close.error_code.into_inner() as u32))
            }
            _ => None,
        }
    }
}

impl TestServer {
    /// A builder for a client of this server that connects through `via` (a proxy in front of
    /// it, e.g. [`proxy`]) instead of directly.
    pub fn client_via(&self, via: SocketAddr, user: &str) -> ClientBuilder {
        ClientBuilder::new(via.to_string()).ca_der(self.cert.clone()).user(user)
    }

    /// Stops this server and starts a new one with `config` on the same address and with the
    /// same certificate, as a restarted server process would be: clients that trusted the old
    /// one trust the new one, and nothing of the old one's state survives.
    pub async fn restart(self, config: ServerConfig) -> TestServer {
        let TestServer { addr, cert, cert_pem, tls_reloader, stop, task, _dir: dir } = self;
        // The reloader holds the old endpoint, whose socket must close before the new bind.
        drop(tls_reloader);
        stop.shutdown();
        let _ = tokio::time::timeout(WAIT, task).await;
        let (identity, _) = TlsIdentity::dev_identity(dir.path()).expect("the same certificate");
        let config = ServerConfig { listen: addr, ..config };
        // The old endpoint's socket closes once its last connection handle is gone.
        let server = within("the old server's port to be free", async {
            loop {
                match Server::bind(config.clone(), &identity) {
                    Ok(server) => return server,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        let stop = server.shutdown_handle();
        let tls_reloader = server.tls_reloader();
        let task = tokio::spawn(server.run());
        TestServer { addr, cert, cert_pem, tls_reloader, stop, task, _dir: dir }
    }
}

/// A netsim proxy (a perfect link until told otherwise) in front of `server`, on loopback.
pub async fn proxy(server: &TestServer) -> chatroom_netsim::proxy::ProxyHandle {
    let config = chatroom_netsim::proxy::ProxyConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        server.addr,
    );
    chatroom_netsim::proxy::Proxy::start(config).await.expect("start the netsim proxy")
}
