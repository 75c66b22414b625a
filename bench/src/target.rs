//! What the bench measures: the chatroom server (started by the bench, or one already
//! running) or a NATS server, and where its process's counters come from.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use crate::procfs::ProcWatch;
use crate::spawn::SpawnedServer;

/// Which server, and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// What to measure: `chatroom` (the default), or a NATS server as `nats://HOST:PORT`
    /// (`tls://HOST:PORT` for TLS). Loopback addresses only.
    #[arg(long, default_value = "chatroom", value_name = "TARGET")]
    pub target: String,
    /// A chatroom server already running at this loopback address, instead of starting one.
    #[arg(long, value_name = "ADDR", requires = "ca")]
    pub server: Option<SocketAddr>,
    /// PEM certificate (or CA) the running --server presents.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// The name --server's certificate is valid for.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub server_name: String,
    /// The chatroom-server binary to start [default: the one next to this program].
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Process id of a server the bench did not start (--server, or NATS), to read its CPU
    /// time and memory from /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Connect to NATS with TLS (same as a tls:// target).
    #[arg(long)]
    pub nats_tls: bool,
    /// PEM CA that the NATS server's certificate is signed by.
    #[arg(long, value_name = "PEM")]
    pub nats_ca: Option<PathBuf>,
}

/// A server to put load on.
#[derive(Debug, Clone)]
pub enum Target {
    /// A chatroom server.
    Chatroom {
        /// Its address.
        addr: SocketAddr,
        /// The certificate clients trust.
        ca: PathBuf,
        /// The name its certificate is valid for.
        server_name: String,
    },
    /// A NATS server.
    Nats {
        /// `nats://HOST:PORT` or `tls://HOST:PORT`.
        url: String,
        /// Whether connections use TLS.
        tls: bool,
        /// A CA to trust for TLS.
        ca: Option<PathBuf>,
    },
}

impl Target {
    /// `chatroom`, `nats` or `nats-tls`, for reports.
    pub fn label(&self) -> &'static str {
        match self {
            Target::Chatroom { .. } => "chatroom",
            Target::Nats { tls: false, .. } => "nats",
            Target::Nats { tls: true, .. } => "nats-tls",
        }
    }
}

/// A target ready for load: the server (started if need be) and its process, if known.
#[derive(Debug)]
pub struct Prepared {
    /// How to reach it.
    pub target: Target,
    /// The server process the bench started, kept alive as long as this is.
    pub spawned: Option<SpawnedServer>,
    /// Where its counters are read, if its process is known.
    pub watch: Option<ProcWatch>,
    /// `spawned` or the address, for reports.
    pub server_label: String,
}

impl Prepared {
    /// The end of the log of the server the bench started, to explain a failure.
    pub fn server_log(&self) -> String {
        match &self.spawned {
            Some(server) => format!("server log (tail):\n{}", server.log_tail()),
            None => "the bench did not start this server".into(),
        }
    }
}

impl TargetArgs {
    /// Starts the chatroom server if none is given; checks that every address is loopback.
    pub fn prepare(&self) -> anyhow::Result<Prepared> {
        let external_watch = self.server_pid.map(ProcWatch::pid);
        if self.target != "chatroom" {
            let (url, tls) = parse_nats_url(&self.target, self.nats_tls)?;
            if self.server.is_some() {
                bail!("--server is for a chatroom server; give a NATS server as --target");
            }
            let target = Target::Nats { url: url.clone(), tls, ca: self.nats_ca.clone() };
            return Ok(Prepared {
                target,
                spawned: None,
                watch: external_watch,
                server_label: url,
            });
        }
        if let Some(addr) = self.server {
            require_loopback(addr.ip())?;
            let ca = self.ca.clone().context("--server needs --ca")?;
            let target = Target::Chatroom { addr, ca, server_name: self.server_name.clone() };
            return Ok(Prepared {
                target,
                spawned: None,
                watch: external_watch,
                server_label: addr.to_string(),
            });
        }
        let binary = match &self.server_bin {
            Some(path) => path.clone(),
            None => SpawnedServer::default_binary()?,
        };
        let spawned = SpawnedServer::start(&binary, "")?;
        let target = Target::Chatroom {
            addr: spawned.addr,
            ca: spawned.ca.clone(),
            server_name: "localhost".into(),
        };
        Ok(Prepared {
            target,
            watch: Some(spawned.watch()),
            spawned: Some(spawned),
            server_label: "spawned".into(),
        })
    }
}

/// Refuses anything but loopback: the bench puts load only on this machine.
pub fn require_loopback(ip: IpAddr) -> anyhow::Result<()> {
    if !ip.is_loopback() {
        bail!("{ip} is not a loopback address; the bench only targets servers on this machine");
    }
    Ok(())
}

/// The URL and whether it uses TLS, for `nats://HOST:PORT` or `tls://HOST:PORT` with a
/// loopback host.
fn parse_nats_url(url: &str, force_tls: bool) -> anyhow::Result<(String, bool)> {
    let (scheme, rest) = url.split_once("://").with_context(|| {
        format!("unknown target {url}: use chatroom, nats://HOST:PORT or tls://HOST:PORT")
    })?;
    let tls = match scheme {
        "nats" => force_tls,
        "tls" => true,
        other => bail!("unknown NATS scheme {other}: use nats:// or tls://"),
    };
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => bail!("{url}: give the port, as in nats://127.0.0.1:4222"),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host != "localhost" {
        let ip: IpAddr =
            host.parse().with_context(|| format!("{host}: give an IP address or localhost"))?;
        require_loopback(ip)?;
    }
    Ok((url.to_owned(), tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_urls_must_be_loopback() {
        assert!(!parse_nats_url("nats://127.0.0.1:4222", false).unwrap().1);
        assert!(parse_nats_url("nats://127.0.0.1:4222", true).unwrap().1);
        assert!(parse_nats_url("tls://localhost:4443", false).unwrap().1);
        assert!(parse_nats_url("nats://[::1]:4222", false).is_ok());
        assert!(parse_nats_url("nats://10.0.0.1:4222", false).is_err());
        assert!(parse_nats_url("nats://example.com:4222", false).is_err());
        assert!(parse_nats_url("nats://127.0.0.1", false).is_err());
        assert!(parse_nats_url("http://127.0.0.1:80", false).is_err());
    }
}
