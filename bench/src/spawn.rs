//! Starts the real `chatroom-server` binary as a separate process, so that its CPU time and
//! memory can be read from `/proc` apart from the load generator's.
//!
//! The server gets a temporary directory (its configuration, its development certificate, its
//! log) and a free loopback port. Its configuration raises the limits that protect a
//! production server from one abusive client, since the bench is exactly such a client: a few
//! senders at thousands of messages a second, thousands of connections from one address.
//! Everything else keeps the server's defaults, so the figures are those of a stock server.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::procfs::ProcWatch;

/// How long the server may take to write its certificate and start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The configuration keys the bench changes, and why. Rates and bursts are per user and per
/// room; connection limits are per server and per address (every bench client is 127.0.0.1).
const BENCH_LIMITS: &str = r#"
# A benchmark sender is one user at up to thousands of messages a second.
message_rate = 1000000.0
message_burst = 1000000.0
# One room may carry the whole offered load.
room_message_rate = 1000000.0
room_message_burst = 1000000.0
# Every bench connection comes from 127.0.0.1.
max_connections = 200000
max_connections_per_ip = 200000
# The connection ramp is a deliberate handshake storm from a validated address; a Retry would
# add a round trip to each handshake and measure the defence instead of the handshake.
retry_above_handshakes = 1000000
# Nothing to drain after the bench has closed its clients.
shutdown_grace = "100ms"
"#;

/// A `chatroom-server` process started by the bench; killed when dropped.
#[derive(Debug)]
pub struct SpawnedServer {
    child: Child,
    dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its development certificate, for the clients to trust.
    pub ca: PathBuf,
}

impl SpawnedServer {
    /// The server binary next to this program (`target/<profile>/chatroom-server`).
    pub fn default_binary() -> anyhow::Result<PathBuf> {
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let dir = exe.parent().context("this program has no directory")?;
        // Test binaries live one level further down, in target/<profile>/deps.
        let candidates = [dir.join("chatroom-server"), dir.join("../chatroom-server")];
        candidates.into_iter().find(|path| path.is_file()).with_context(|| {
            format!(
                "no chatroom-server binary next to {}; build it (cargo build --release -p \
                 chatroom-server) or pass --server-bin",
                exe.display()
            )
        })
    }

    /// Starts `binary` with the bench's configuration plus `extra_config` (TOML lines), and
    /// waits until its certificate exists. Whether it answers is for the caller to find out by
    /// connecting.
    pub fn start(binary: &Path, extra_config: &str) -> anyhow::Result<Self> {
        let dir = scratch_dir()?;
        let port = free_udp_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\n{BENCH_LIMITS}\n{extra_config}\n",
            dir.join("data").display()
        );
        let config_path = dir.join("server.toml");
        std::fs::write(&config_path, config).context("cannot write the server's config")?;
        let log = std::fs::File::create(dir.join("server.log"))
            .context("cannot create the server's log file")?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let ca = dir.join("data").join("dev-cert.pem");
        let mut server = Self { child, dir, addr, ca };
        let deadline = Instant::now() + START_TIMEOUT;
        while !server.ca.is_file() {
            if let Some(status) = server.child.try_wait()? {
                bail!("the server exited ({status}) at start-up:\n{}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server wrote no certificate in {START_TIMEOUT:?}:\n{}",
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its counters.
    pub fn watch(&self) -> ProcWatch {
        ProcWatch::pid(self.pid())
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        // The bench has read what it wanted; there is nothing to shut down gracefully for.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback UDP port that was free a moment ago (bound to 127.0.0.1:0, then released).
fn free_udp_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind(("127.0.0.1", 0)).context("cannot bind a loopback UDP port")?;
    Ok(socket.local_addr()?.port())
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("chatroom-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
