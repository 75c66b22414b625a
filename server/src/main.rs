//! `chatroom-server`: runs a chatroom server.
//!
//! Settings come from the defaults, then the `--config` TOML file, then the flags (the last
//! wins). Logs go to stderr through `tracing`; set `RUST_LOG` (default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chatroom_server::config::parse_duration;
use chatroom_server::{Server, ServerConfig, TlsIdentity};
use clap::Parser;

/// A QUIC chatroom server for weak networks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file; every key is documented in the README.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// UDP address to listen on [default: 127.0.0.1:4433].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Region name sent to clients in the welcome [default: default].
    #[arg(long, value_name = "NAME")]
    region: Option<String>,
    /// PEM certificate chain (with --key); without it a self-signed development certificate is
    /// created in --data-dir and reused.
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Where the development certificate is kept [default: ./chatroom-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Create rooms on first join (the joiner becomes the owner).
    #[arg(long)]
    auto_create_rooms: bool,
    /// QUIC idle timeout, e.g. 30s [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// QUIC keep-alive interval, e.g. 10s [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    keep_alive: Option<Duration>,
    /// How long a session whose connection was lost can be resumed, e.g. 2m; 0 disables
    /// resumption [default: 2m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    resume_window: Option<Duration>,
    /// How long a kicked user stays banned from the room [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    ban_duration: Option<Duration>,
    /// Largest message text in bytes [default: 8192].
    #[arg(long, value_name = "BYTES")]
    max_message_len: Option<usize>,
    /// Business server URL called to authorize every connect and join (see server/AUTH.md).
    #[arg(long, value_name = "URL")]
    auth_callback: Option<String>,
    /// HMAC-SHA256 key signing the callback requests (at least 32 bytes).
    #[arg(long, value_name = "SECRET", env = "CHATROOM_AUTH_SECRET", hide_env_values = true)]
    auth_secret: Option<String>,
    /// How long the business server may take to answer, e.g. 2s [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    auth_timeout: Option<Duration>,
    /// How long allow answers are cached, e.g. 30s; 0 disables the cache [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    auth_cache_ttl: Option<Duration>,
    /// HS256 key of signed tokens (JWT) checked without calling the business server.
    #[arg(long, value_name = "SECRET", env = "CHATROOM_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

impl Args {
    fn into_config(self) -> anyhow::Result<ServerConfig> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        macro_rules! apply {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { config.$field = v; } )* };
        }
        apply!(
            listen,
            region,
            data_dir,
            idle_timeout,
            keep_alive,
            resume_window,
            ban_duration,
            max_message_len
        );
        if let (Some(cert), Some(key)) = (self.cert, self.key) {
            config.cert = Some(cert);
            config.key = Some(key);
        }
        config.auto_create_rooms |= self.auto_create_rooms;
        let auth = &mut config.auth;
        if let Some(url) = self.auth_callback {
            auth.callback_url = Some(url);
        }
        if let Some(secret) = self.auth_secret {
            auth.secret = Some(secret);
        }
        if let Some(timeout) = self.auth_timeout {
            auth.timeout = timeout;
        }
        if let Some(ttl) = self.auth_cache_ttl {
            auth.cache_ttl = ttl;
        }
        if let Some(secret) = self.jwt_secret {
            auth.jwt_secret = Some(secret);
        }
        config.validate()?;
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Args::parse().into_config()?;
    let identity = load_identity(&config.cert, &config.key, &config.data_dir)?;
    let tls_files = (config.cert.clone(), config.key.clone(), config.data_dir.clone());
    let server = Server::bind(config, &identity).context("cannot start the server")?;
    if server.authenticator().is_open() {
        tracing::warn!(
            "OPEN MODE: no authentication is configured; any user id is accepted. Configure \
             --auth-callback or --jwt-secret before exposing this server"
        );
    } else {
        tracing::info!(auth = %server.authenticator(), "authentication configured");
    }
    let stop = server.shutdown_handle();
    #[cfg(unix)]
    tokio::spawn(reload_tls_on_sighup(server.tls_reloader(), tls_files));
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received; shutting down gracefully");
        stop.shutdown();
    });
    server.run().await;
    Ok(())
}

/// The TLS identity from the configured PEM files, or the development certificate.
fn load_identity(
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    data_dir: &std::path::Path,
) -> anyhow::Result<TlsIdentity> {
    Ok(match (cert, key) {
        (Some(cert), Some(key)) => TlsIdentity::from_pem_files(cert, key)?,
        _ => {
            let (identity, path) = TlsIdentity::dev_identity(data_dir)?;
            tracing::info!(
                cert = %path.display(),
                "using the self-signed development certificate; clients trust it with --ca"
            );
            identity
        }
    })
}

/// Re-reads the certificate and key on every SIGHUP and serves new connections with them;
/// existing connections are not interrupted. A file that fails to load keeps the old identity.
#[cfg(unix)]
async fn reload_tls_on_sighup(
    reloader: chatroom_server::TlsReloader,
    (cert, key, data_dir): (Option<PathBuf>, Option<PathBuf>, PathBuf),
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; certificate reloading is off");
        return;
    };
    while hangups.recv().await.is_some() {
        match load_identity(&cert, &key, &data_dir).and_then(|id| Ok(reloader.reload(&id)?)) {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded for new connections"),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: certificate reload failed; keeping the old one")
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
