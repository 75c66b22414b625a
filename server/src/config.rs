//! Server configuration: every limit and timeout, with its default and the reason for it.
//!
//! A TOML file (`--config FILE`) holds any subset of these keys; missing keys take their
//! defaults, unknown keys are an error (a typo must not silently fall back to a default).
//! Durations are strings with a unit: `"250ms"`, `"30s"`, `"2m"`, `"1h"`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::auth::{AuthConfig, AuthConfigError};

/// Everything the server can be told. See each field for its TOML key (the field name), default
/// and why.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// UDP address to listen on. Default `127.0.0.1:4433`: loopback, so that trying it out
    /// exposes nothing; set `0.0.0.0:4433` (or `[::]:4433`) to serve a network.
    pub listen: SocketAddr,
    /// Region name announced to clients in the welcome. Default `default`.
    pub region: String,
    /// Where the self-signed development certificate is kept when no `cert`/`key` are given.
    /// Default `./chatroom-data`.
    pub data_dir: PathBuf,
    /// PEM certificate chain. Default none: a self-signed certificate for `localhost` and
    /// `127.0.0.1` is created once in `data_dir` and reused.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
    /// Who may connect and join: the `[auth]` table (callback authentication to the app's
    /// business server, signed tokens). Default: none configured, which is open mode (any user
    /// id is accepted). See `server/AUTH.md`.
    pub auth: AuthConfig,

    /// Whether joining a room that does not exist creates it (the joiner becomes its owner).
    /// Default false: a typo in a room id should be an error, not a new empty room.
    pub auto_create_rooms: bool,
    /// How long an empty room is kept before it is dropped. Default 5 min: long enough for a
    /// creator to join the room it just created, or for a room to survive everyone's brief absence.
    #[serde(deserialize_with = "de_duration")]
    pub empty_room_ttl: Duration,
    /// How long a kicked user cannot rejoin the room. Default 60 s.
    #[serde(deserialize_with = "de_duration")]
    pub ban_duration: Duration,
    /// How often the server sweeps idle rooms and sends member counts of large rooms.
    /// Default 1 s.
    #[serde(deserialize_with = "de_duration")]
    pub maintenance_interval: Duration,

    /// The largest message text, in bytes. Default 8 KiB: chat text, with media sent as URLs.
    pub max_message_len: usize,
    /// The most attribute keys a member may set in a room. Default 32.
    pub max_attribute_keys: usize,
    /// The most bytes (keys plus values) of one member's attributes in a room. Default 1 KiB.
    pub max_attributes_len: usize,
    /// Presence events (joined, left, role, attributes) are broadcast while a room has fewer
    /// members than this; above it, only a periodic member count. Default 1000: beyond that,
    /// presence traffic would outweigh the chat.
    pub presence_event_limit: usize,
    /// How often large rooms get a member count event (only when the count changed).
    /// Default 5 s.
    #[serde(deserialize_with = "de_duration")]
    pub member_count_interval: Duration,
    /// The most rooms one connection may be in at once. Default 64.
    pub max_rooms_per_connection: usize,
    /// The largest page of a member list request. Default 500.
    pub max_members_page: usize,
    /// The largest frame body a client may send, in bytes. Default 64 KiB: room for the largest
    /// message plus its envelope; anything bigger is refused before it is buffered.
    pub max_frame_len: usize,
    /// Messages (`send` and private) one user may send per second, on average, over all its
    /// connections. Default 20: far above human typing, low enough that one client cannot
    /// flood a room.
    pub message_rate: f64,
    /// How many messages a user may send in a burst above `message_rate`. Default 40.
    pub message_burst: f64,
    /// Messages one room accepts per second, on average, from all its members. When a room is
    /// busier, low-priority messages are refused first (`rate_limited` once less than half the
    /// burst is left), then normal ones (below a tenth), high ones last. Default 100: a lively
    /// room; beyond that, a large room's members cannot read along anyway.
    pub room_message_rate: f64,
    /// How many messages a room accepts in a burst above `room_message_rate`. Default 200.
    pub room_message_burst: f64,
    /// Bytes that may wait in one member's outbound queue for one room before its room
    /// messages are shed (low priority first, then normal; never high), each shed message
    /// reported to the member as a gap. Default 64 KiB: with `connection_send_window`, under
    /// three seconds of backlog on a 750 kbit/s 3G link before shedding starts; a backlog that
    /// takes longer to deliver is stale chat.
    pub outbound_queue_bytes: usize,
    /// Bytes the server sends on one connection without acknowledgement (QUIC send window).
    /// Default 128 KiB: enough for a busy room at 100 ms RTT (1.3 MB/s), and small, so that a
    /// slow receiver's backlog stays in its outbound queue, where it can be shed, instead of in
    /// the transport's buffers, where it can only wait.
    pub connection_send_window: usize,
    /// Hard cap on frames waiting in one member's outbound queue for one room (reached only
    /// with frames that are never shed). A member that falls this far behind is disconnected
    /// with `slow_consumer` and resumes from the replay buffer. Default 8192 frames.
    pub outbound_queue_frames: usize,
    /// In rooms with at least `fanout_batch_min_members` members, each member's stream is
    /// written at most once per this interval, everything queued meanwhile together: packets
    /// per member per second stay bounded however busy the room. Default 10 ms: invisible next
    /// to human reading, yet a 100-message/s room sends each member ~10 times fewer packets.
    /// Zero turns batching off.
    #[serde(deserialize_with = "de_duration")]
    pub fanout_batch_interval: Duration,
    /// Rooms with at least this many members batch their fan-out (see
    /// `fanout_batch_interval`). Default 100: below it, per-message writes cost little.
    pub fanout_batch_min_members: usize,
    /// How many recent messages each room keeps for replay to resuming sessions. Default 4096:
    /// two minutes of a room at 30 messages a second.
    pub replay_buffer_messages: usize,
    /// How long each room keeps messages for replay. Default 3 min: longer than the resume
    /// window, so that a session resumed at the end of its window still finds what it missed.
    #[serde(deserialize_with = "de_duration")]
    pub replay_buffer_age: Duration,
    /// How many recent private messages each member of a room keeps for replay to its resuming
    /// sessions (kept for `replay_buffer_age` too). Default 100: private messages are few, and
    /// a member's sessions may have been away for the whole resume window.
    pub private_replay_messages: usize,
    /// The most bytes of private messages each member of a room keeps for replay (whichever
    /// of this and `private_replay_messages` comes first). Default 64 KiB: bounds what a flood
    /// of private messages can pin in a large room.
    pub private_replay_bytes: usize,
    /// How long a session whose connection was lost is kept (memberships, roles, attributes,
    /// position) for the client to resume; the room sees no leave meanwhile. Default 2 min: a
    /// lift, a tunnel or a network switch; a longer absence is a departure. Zero disables
    /// resumption.
    #[serde(deserialize_with = "de_duration")]
    pub resume_window: Duration,
    /// How long a resume token stays valid (a fresh one comes with every welcome). Default
    /// 24 h; the session itself lasts only the resume window after its connection is lost.
    #[serde(deserialize_with = "de_duration")]
    pub resume_token_lifetime: Duration,

    /// How many TLS sessions the server remembers for resumption with 0-RTT (one per recently
    /// connected client). Default 100 000: about 20 MB at most, so that a reconnect storm after
    /// an outage still resumes in 0-RTT; beyond it the oldest are forgotten and those clients
    /// pay one more round trip.
    pub tls_session_cache: usize,
    /// Receive buffer of the server's UDP socket, in bytes; `0` keeps the system's default.
    /// Default 1 MiB: every client's packets arrive on this one socket, and the system default
    /// (about 208 KiB on Linux) overflows in a connection storm (10 000 clients reconnecting
    /// after a restart): each dropped Initial costs its client a one-second retransmission
    /// timeout. Measured with 10 000 handshakes, 64 at a time: connect p99 1.0 s with the
    /// default, 0.1 s with 1 MiB. The cost: in a very large room the server then processes
    /// every acknowledgement instead of losing some, and on 2 cores the most it sustained for
    /// one room of 1 000 fell from 66 000 to 40 000 deliveries/s (BENCHMARKS.md). Linux caps
    /// it at `net.core.rmem_max`; the server warns when it does.
    pub udp_receive_buffer: usize,
    /// The most connections the server holds at once; more are refused. Default 100 000.
    pub max_connections: usize,
    /// The most connections from one IP address. Default 1000: mobile carriers put many users
    /// behind one carrier-grade NAT address, so this only stops a single host's flood.
    pub max_connections_per_ip: usize,
    /// With more handshakes than this in progress, clients whose address is not yet validated
    /// must first complete a QUIC Retry (one extra round trip), which defeats floods of spoofed
    /// Initial packets. Default 200: far above a normal arrival rate, so that honest clients on
    /// weak networks do not pay the round trip.
    pub retry_above_handshakes: usize,
    /// QUIC idle timeout: a connection with no traffic for this long is closed. Default 30 s,
    /// as recommended by RFC 9308 §3.2 for application protocols with keep-alives.
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// QUIC keep-alive interval of the server side. Default 10 s: below the 30 s UDP binding
    /// timeout of common NATs, so that a quiet connection keeps its path.
    #[serde(deserialize_with = "de_duration")]
    pub keep_alive: Duration,
    /// How long a new connection may take to send its Hello. Default 10 s: a handshake on a
    /// lossy mobile link can take several round trips, but a silent peer must not hold a slot.
    #[serde(deserialize_with = "de_duration")]
    pub handshake_timeout: Duration,
    /// On shutdown, how long clients are given after the going-away notice before connections
    /// close. Default 2 s.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4433)),
            region: "default".into(),
            data_dir: PathBuf::from("./chatroom-data"),
            cert: None,
            key: None,
            auth: AuthConfig::default(),
            auto_create_rooms: false,
            empty_room_ttl: Duration::from_secs(300),
            ban_duration: Duration::from_secs(60),
            maintenance_interval: Duration::from_secs(1),
            max_message_len: 8 * 1024,
            max_attribute_keys: 32,
            max_attributes_len: 1024,
            presence_event_limit: 1000,
            member_count_interval: Duration::from_secs(5),
            max_rooms_per_connection: 64,
            max_members_page: 500,
            max_frame_len: 64 * 1024,
            message_rate: 20.0,
            message_burst: 40.0,
            room_message_rate: 100.0,
            room_message_burst: 200.0,
            outbound_queue_bytes: 64 * 1024,
            connection_send_window: 128 * 1024,
            outbound_queue_frames: 8192,
            fanout_batch_interval: Duration::from_millis(10),
            fanout_batch_min_members: 100,
            replay_buffer_messages: 4096,
            replay_buffer_age: Duration::from_secs(180),
            private_replay_messages: 100,
            private_replay_bytes: 64 * 1024,
            resume_window: Duration::from_secs(120),
            resume_token_lifetime: Duration::from_secs(24 * 3600),
            tls_session_cache: 100_000,
            udp_receive_buffer: 1024 * 1024,
            max_connections: 100_000,
            max_connections_per_ip: 1000,
            retry_above_handshakes: 200,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its location.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid config value for `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl ServerConfig {
    /// Reads a TOML file; keys it does not set keep their defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let config: Self = toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::Invalid { key, reason: reason.into() });
        if self.max_frame_len > chatroom_protocol::MAX_FRAME_LEN {
            return invalid("max_frame_len", "must be at most 1 MiB (the protocol maximum)");
        }
        if self.max_message_len + 1024 > self.max_frame_len {
            return invalid("max_message_len", "must be at least 1 KiB below max_frame_len");
        }
        if !(self.message_rate > 0.0 && self.message_burst >= 1.0) {
            return invalid("message_rate", "rate must be positive and burst at least 1");
        }
        if !(self.room_message_rate > 0.0 && self.room_message_burst >= 1.0) {
            return invalid("room_message_rate", "rate must be positive and burst at least 1");
        }
        if self.outbound_queue_frames < 16 {
            return invalid("outbound_queue_frames", "must be at least 16");
        }
        if self.outbound_queue_bytes < self.max_frame_len {
            return invalid("outbound_queue_bytes", "must be at least max_frame_len");
        }
        if self.max_members_page == 0 || self.max_rooms_per_connection == 0 {
            return invalid("max_members_page", "limits must be at least 1");
        }
        if self.keep_alive >= self.idle_timeout {
            return invalid("keep_alive", "must be shorter than idle_timeout");
        }
        if self.udp_receive_buffer > i32::MAX as usize {
            return invalid("udp_receive_buffer", "must be below 2 GiB");
        }
        self.auth.validate().map_err(|e| match e {
            AuthConfigError::Invalid { key, reason } => ConfigError::Invalid { key, reason },
            other => ConfigError::Invalid { key: "auth", reason: other.to_string() },
        })?;
        for (key, d) in [
            ("maintenance_interval", self.maintenance_interval),
            ("member_count_interval", self.member_count_interval),
            ("idle_timeout", self.idle_timeout),
            ("handshake_timeout", self.handshake_timeout),
        ] {
            if d.is_zero() {
                return invalid(key, "must be longer than zero");
            }
        }
        Ok(())
    }
}

/// Parses a duration with a unit: `250ms`, `30s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

fn de_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 parsecs").is_err());
    }

    #[test]
    fn toml_overrides_defaults_and_rejects_typos() {
        let config: ServerConfig =
            toml::from_str("region = \"eu\"\nban_duration = \"5s\"\nauto_create_rooms = true")
                .unwrap();
        assert_eq!(config.region, "eu");
        assert_eq!(config.ban_duration, Duration::from_secs(5));
        assert!(config.auto_create_rooms);
        assert_eq!(config.max_message_len, 8192);
        config.validate().unwrap();
        assert!(toml::from_str::<ServerConfig>("regoin = \"eu\"").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        ServerConfig::default().validate().unwrap();
    }

    #[test]
    fn an_impossible_receive_buffer_is_refused_by_name() {
        let config = ServerConfig { udp_receive_buffer: 1 << 31, ..ServerConfig::default() };
        match config.validate() {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "udp_receive_buffer"),
            other => panic!("expected udp_receive_buffer to be refused, got {other:?}"),
        }
        let system_default = ServerConfig { udp_receive_buffer: 0, ..ServerConfig::default() };
        system_default.validate().unwrap();
    }
}
