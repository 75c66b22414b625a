//! Scenario files: what a run of chat traffic over impaired links looks like, in TOML.
//!
//! A scenario names its links (each a [`LinkConfig`], the same type the proxy takes), its groups
//! of clients (how many, which rooms, how fast they send, behind which link), the server's
//! configuration (a `[server]` table read straight into [`ServerConfig`]), the clients'
//! settings, and what the run must achieve (`[expect]`). [`Scenario::plan`] turns it into one
//! entry per client and per proxy, which is what the runner starts.
//!
//! ```toml
//! seed = 7
//! duration = "20s"
//! drain = "5s"
//!
//! [server]
//! idle_timeout = "5s"
//! keep_alive = "1s"
//!
//! [client]
//! idle_timeout = "5s"
//! keep_alive = "1s"
//!
//! [links.lte]
//! up = { delay = "20ms", rate_kbps = 4000 }
//! down = { delay = "20ms", rate_kbps = 4000 }
//!
//! [[clients]]
//! name = "phone"
//! count = 4
//! rooms = ["lobby"]
//! link = "lte"
//! rate = 2.0
//! size = 200
//!
//! [expect]
//! lost = 0
//! p99_ms = 500
//! ```
//!
//! Unknown keys are errors everywhere, so that a typo does not silently fall back to a default.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chatroom_client::Priority;
use chatroom_client::protocol::{validate_room_id, validate_user_id};
use chatroom_server::ServerConfig;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{ConfigError, LinkConfig};
use crate::units::{serde_duration, serde_opt_duration};

/// The default drain: time after the last send for messages still in flight to arrive.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// The default message size in bytes.
pub const DEFAULT_SIZE: usize = 100;

/// The smallest message size: the runner's tag (id and send time) must fit.
pub const MIN_SIZE: usize = crate::ledger::MAX_TAG_LEN;

/// The most clients one scenario may have: far more than a loopback run can drive faithfully.
pub const MAX_CLIENTS: usize = 1000;

/// A scenario file that could not be used.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}")]
    Read {
        /// The file.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a scenario.
    #[error("invalid scenario {name}")]
    Parse {
        /// The scenario (its file name).
        name: String,
        /// What is wrong, with its location.
        #[source]
        source: toml::de::Error,
    },
    /// A link is out of range.
    #[error("scenario {name}: invalid link {link}")]
    Link {
        /// The scenario.
        name: String,
        /// The link.
        link: String,
        /// What is wrong.
        #[source]
        source: ConfigError,
    },
    /// Something else is inconsistent.
    #[error("scenario {name}: {reason}")]
    Invalid {
        /// The scenario.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// One scenario. See the [module docs](self) for the file format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The scenario's name in reports. Default: the file name without `.toml`.
    #[serde(default)]
    pub name: String,
    /// What it models, for people. Default empty.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice (impairment, message sizes, priorities, start phases).
    /// `netsim run --seed` overrides it. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// How long clients send. Timelines count from the start of the run.
    #[serde(with = "serde_duration")]
    pub duration: Duration,
    /// How long the run goes on after the last send, for late messages to arrive. Default
    /// [`DEFAULT_DRAIN`].
    #[serde(default = "default_drain", with = "serde_duration")]
    pub drain: Duration,
    /// The in-process server's configuration (any key of [`ServerConfig`]; `listen` is
    /// replaced by a free loopback port). Ignored when the run targets a running server.
    #[serde(default)]
    pub server: Option<ServerConfig>,
    /// Settings of every client.
    #[serde(default)]
    pub client: ClientSettings,
    /// The impaired links, by name.
    #[serde(default)]
    pub links: BTreeMap<String, LinkConfig>,
    /// The groups of clients.
    pub clients: Vec<ClientGroup>,
    /// What the run must achieve.
    #[serde(default)]
    pub expect: Expectations,
}

fn default_drain() -> Duration {
    DEFAULT_DRAIN
}

/// Settings shared by every client of a scenario: the client library's knobs, and what the
/// runner does when a client ends. Every default is the library's own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// QUIC idle timeout of the clients (the connection's is the smaller of the client's and
    /// the server's). Default 30 s.
    #[serde(with = "serde_duration")]
    pub idle_timeout: Duration,
    /// Keep-alive interval. Default 5 s.
    #[serde(with = "serde_duration")]
    pub keep_alive: Duration,
    /// How long one connection attempt may take. Default 10 s.
    #[serde(with = "serde_duration")]
    pub connect_timeout: Duration,
    /// The library's automatic reconnection (and session resumption) when a connection is
    /// lost. Default true; false makes a lost connection end the client.
    pub reconnect: bool,
    /// First delay of the library's reconnection back-off. Default 100 ms.
    #[serde(with = "serde_duration")]
    pub reconnect_initial: Duration,
    /// Longest delay of the library's reconnection back-off. Default 10 s.
    #[serde(with = "serde_duration")]
    pub reconnect_max: Duration,
    /// How long a request (a send, a join) may wait for its answer, reconnections included.
    /// Default 30 s.
    #[serde(with = "serde_duration")]
    pub request_timeout: Duration,
    /// Silence after which the library probes the path from a fresh port; `"0s"` turns path
    /// probing off. Default 3 s.
    #[serde(with = "serde_duration")]
    pub path_probe_after: Duration,
    /// The smallest the library's QUIC send window gets, in bytes. Default 32 KiB; `0` gives
    /// plain CUBIC, whose window collapses to two packets after an outage.
    pub min_send_window: u64,
    /// When a client ends for good (its first connection failed, or the library gave up or
    /// was told not to reconnect), the runner connects a new client and rejoins its rooms, as
    /// an application would. Default true.
    pub app_reconnect: bool,
    /// Pause before such a new client, and between its failed attempts. Default 1 s.
    #[serde(with = "serde_duration")]
    pub app_reconnect_delay: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            idle_timeout: chatroom_client::DEFAULT_IDLE_TIMEOUT,
            keep_alive: chatroom_client::DEFAULT_KEEP_ALIVE,
            connect_timeout: chatroom_client::DEFAULT_CONNECT_TIMEOUT,
            reconnect: true,
            reconnect_initial: chatroom_client::DEFAULT_RECONNECT_INITIAL,
            reconnect_max: chatroom_client::DEFAULT_RECONNECT_MAX,
            request_timeout: chatroom_client::DEFAULT_REQUEST_TIMEOUT,
            path_probe_after: chatroom_client::DEFAULT_PATH_PROBE_AFTER,
            min_send_window: chatroom_client::DEFAULT_MIN_SEND_WINDOW,
            app_reconnect: true,
            app_reconnect_delay: Duration::from_secs(1),
        }
    }
}

/// How the clients of a group share proxies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyMode {
    /// Each client has its own proxy, so its own random losses and its own NAT: phones on
    /// their own radio links.
    #[default]
    PerClient,
    /// The group shares one proxy: one access link (a café's Wi-Fi), one impairment stream.
    Shared,
}

/// A message priority, as written in scenario files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorityName {
    /// [`Priority::Low`].
    Low,
    /// [`Priority::Normal`].
    #[default]
    Normal,
    /// [`Priority::High`].
    High,
}

impl From<PriorityName> for Priority {
    fn from(name: PriorityName) -> Self {
        match name {
            PriorityName::Low => Priority::Low,
            PriorityName::Normal => Priority::Normal,
            PriorityName::High => Priority::High,
        }
    }
}

/// Which priorities a sender uses: one (`priority = "low"`) or a weighted mix
/// (`priority = { low = 1, normal = 8, high = 1 }`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PriorityMix {
    /// Every message has this priority.
    One(PriorityName),
    /// Each message draws its priority with these relative weights.
    Weighted {
        /// Weight of low priority.
        #[serde(default)]
        low: u32,
        /// Weight of normal priority.
        #[serde(default)]
        normal: u32,
        /// Weight of high priority.
        #[serde(default)]
        high: u32,
    },
}

impl Default for PriorityMix {
    fn default() -> Self {
        Self::One(PriorityName::Normal)
    }
}

impl PriorityMix {
    /// The priority for a draw `x` uniform in `0..1`.
    pub fn pick(&self, x: f64) -> Priority {
        match *self {
            Self::One(name) => name.into(),
            Self::Weighted { low, normal, high } => {
                let total = f64::from(low) + f64::from(normal) + f64::from(high);
                let point = x * total;
                if point < f64::from(low) {
                    Priority::Low
                } else if point < f64::from(low) + f64::from(normal) {
                    Priority::Normal
                } else {
                    Priority::High
                }
            }
        }
    }

    fn is_valid(&self) -> bool {
        match *self {
            Self::One(_) => true,
            Self::Weighted { low, normal, high } => low + normal + high > 0,
        }
    }
}

/// A group of clients that behave alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientGroup {
    /// The group's name; its clients are the users `NAME-0`, `NAME-1`, ...
    pub name: String,
    /// How many clients. Default 1.
    #[serde(default = "one")]
    pub count: usize,
    /// The rooms each client joins (created by the runner). At least one.
    pub rooms: Vec<String>,
    /// The link the clients sit behind (a key of `[links]`); none for a direct, perfect path.
    #[serde(default)]
    pub link: Option<String>,
    /// One proxy per client (default) or one for the group.
    #[serde(default)]
    pub proxy: ProxyMode,
    /// When the first client connects. Default at the start.
    #[serde(default, with = "serde_duration")]
    pub connect_at: Duration,
    /// The clients' connections are spread evenly over this long after `connect_at`, as
    /// users arriving. Default 0: all at once.
    #[serde(default, with = "serde_duration")]
    pub connect_spread: Duration,
    /// When the clients leave their rooms and disconnect; default: they stay to the end.
    #[serde(default, with = "serde_opt_duration")]
    pub leave_at: Option<Duration>,
    /// Messages per second each client sends, spread over its rooms in turn. 0 (the
    /// default) makes listeners. Keep it under the server's `message_rate` (20 by default).
    #[serde(default)]
    pub rate: f64,
    /// Message size in bytes (the text, tag included). Default [`DEFAULT_SIZE`].
    #[serde(default = "default_size")]
    pub size: usize,
    /// With a maximum, each message's size is drawn uniformly from `size..=size_max`.
    #[serde(default)]
    pub size_max: Option<usize>,
    /// The priority of the messages. Default normal.
    #[serde(default)]
    pub priority: PriorityMix,
}

fn one() -> usize {
    1
}

fn default_size() -> usize {
    DEFAULT_SIZE
}

/// What a run must achieve; every key is optional. Keys named after a report field (and
/// `max_…` keys) are upper bounds, `min_…` keys lower bounds. A run that misses any makes
/// `netsim run` exit non-zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expectations {
    /// At most this many owed deliveries neither delivered nor reported as a gap.
    pub lost: Option<u64>,
    /// At most this many duplicate deliveries.
    pub duplicates: Option<u64>,
    /// At most this many deliveries out of order.
    pub out_of_order: Option<u64>,
    /// At most this many deliveries reported missed through gap events.
    pub gaps_reported: Option<u64>,
    /// At most this many deliveries whose text differs from what was sent.
    pub wrong_content: Option<u64>,
    /// At most this many sends the server did not acknowledge.
    pub send_failed: Option<u64>,
    /// At least this fraction of owed deliveries delivered (0 to 1).
    pub min_delivered_ratio: Option<f64>,
    /// Latency: 50th percentile at most this many milliseconds.
    pub p50_ms: Option<f64>,
    /// Latency: 90th percentile at most this many milliseconds.
    pub p90_ms: Option<f64>,
    /// Latency: 99th percentile at most this many milliseconds.
    pub p99_ms: Option<f64>,
    /// Latency: maximum at most this many milliseconds.
    pub max_latency_ms: Option<f64>,
    /// At most this many reconnections.
    pub max_reconnects: Option<u64>,
    /// At least this many resumed sessions.
    pub min_resumes: Option<u64>,
    /// At least this many NAT rebinds survived by migration.
    pub min_migrations: Option<u64>,
    /// At most this many failed connection attempts.
    pub max_connect_failures: Option<u64>,
    /// Recovery after outages: median at most this many milliseconds.
    pub recovery_p50_ms: Option<f64>,
    /// Recovery after outages: maximum at most this many milliseconds.
    pub recovery_max_ms: Option<f64>,
    /// At most this many outages after which an affected client received nothing more.
    pub max_unrecovered: Option<u64>,
}

/// One client of a planned run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPlan {
    /// Its index, which the ledger and the proxies know it by.
    pub index: usize,
    /// Its user id.
    pub user: String,
    /// Index of its group in [`Scenario::clients`].
    pub group: usize,
    /// The rooms it joins.
    pub rooms: Vec<String>,
    /// Index of its proxy in [`RunPlan::proxies`]; `None` for a direct path.
    pub proxy: Option<usize>,
    /// When it connects.
    pub connect_at: Duration,
    /// When it leaves, if before the end.
    pub leave_at: Option<Duration>,
    /// Messages per second.
    pub rate: f64,
    /// Smallest and largest message size.
    pub size: (usize, usize),
    /// Its priorities.
    pub priority: PriorityMix,
}

/// One proxy of a planned run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyPlan {
    /// The link's name.
    pub link_name: String,
    /// The link.
    pub link: LinkConfig,
    /// The clients behind it (indexes into [`RunPlan::clients`]).
    pub clients: Vec<usize>,
}

/// A scenario resolved into clients and proxies.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Every client.
    pub clients: Vec<ClientPlan>,
    /// Every proxy.
    pub proxies: Vec<ProxyPlan>,
    /// Every room, sorted.
    pub rooms: Vec<String>,
}

impl Scenario {
    /// Reads and checks a scenario file; its name defaults to the file name.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.display().to_string(), source })?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Self::from_toml(&text, &stem)
    }

    /// Parses and checks a scenario; `default_name` is used when it has no `name`.
    pub fn from_toml(text: &str, default_name: &str) -> Result<Self, ScenarioError> {
        let mut scenario: Self = toml::from_str(text)
            .map_err(|source| ScenarioError::Parse { name: default_name.to_owned(), source })?;
        if scenario.name.is_empty() {
            scenario.name = default_name.to_owned();
        }
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks that links exist and are in range, ids are valid, and numbers make sense.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |reason: String| ScenarioError::Invalid { name: self.name.clone(), reason };
        if self.duration.is_zero() {
            return Err(invalid("duration must be above zero".into()));
        }
        for (name, link) in &self.links {
            link.validate().map_err(|source| ScenarioError::Link {
                name: self.name.clone(),
                link: name.clone(),
                source,
            })?;
        }
        if let Some(server) = &self.server {
            server.validate().map_err(|e| invalid(format!("[server]: {e}")))?;
        }
        if self.client.keep_alive >= self.client.idle_timeout {
            return Err(invalid("[client] keep_alive must be shorter than idle_timeout".into()));
        }
        if self.client.reconnect_initial > self.client.reconnect_max {
            return Err(invalid("[client] reconnect_initial must be at most reconnect_max".into()));
        }
        if self.clients.is_empty() {
            return Err(invalid("no [[clients]]".into()));
        }
        let mut total = 0;
        for group in &self.clients {
            let what = format!("client group {}", group.name);
            if group.count == 0 {
                return Err(invalid(format!("{what}: count must be at least 1")));
            }
            total += group.count;
            let last_user = format!("{}-{}", group.name, group.count - 1);
            validate_user_id(&last_user)
                .map_err(|e| invalid(format!("{what}: user id {last_user}: {e}")))?;
            if group.rooms.is_empty() {
                return Err(invalid(format!("{what}: rooms must name at least one room")));
            }
            for room in &group.rooms {
                validate_room_id(room).map_err(|e| invalid(format!("{what}: room {room}: {e}")))?;
            }
            if let Some(link) = &group.link
                && !self.links.contains_key(link)
            {
                return Err(invalid(format!("{what}: no link named {link} in [links]")));
            }
            if !(group.rate.is_finite() && group.rate >= 0.0) {
                return Err(invalid(format!("{what}: rate must be a number from 0 up")));
            }
            let max_size = group.size_max.unwrap_or(group.size);
            if group.size < MIN_SIZE || max_size < group.size {
                return Err(invalid(format!(
                    "{what}: size must be at least {MIN_SIZE} bytes and size_max at least size"
                )));
            }
            if !group.priority.is_valid() {
                return Err(invalid(format!("{what}: priority weights must not all be zero")));
            }
            if group.connect_at + group.connect_spread >= self.duration {
                return Err(invalid(format!("{what}: connects after the run's duration")));
            }
            if group.leave_at.is_some_and(|at| at <= group.connect_at + group.connect_spread) {
                return Err(invalid(format!("{what}: leave_at before its clients connect")));
            }
        }
        if total > MAX_CLIENTS {
            return Err(invalid(format!("{total} clients; at most {MAX_CLIENTS}")));
        }
        Ok(())
    }

    /// The number of clients.
    pub fn client_count(&self) -> usize {
        self.clients.iter().map(|g| g.count).sum()
    }

    /// Resolves the groups into clients and proxies: one proxy per client of a `per_client`
    /// group with a link, one per `shared` group.
    pub fn plan(&self) -> RunPlan {
        let mut clients = Vec::new();
        let mut proxies: Vec<ProxyPlan> = Vec::new();
        let mut rooms = Vec::new();
        for (group_index, group) in self.clients.iter().enumerate() {
            let link = group.link.as_ref().map(|name| (name, &self.links[name]));
            let shared = match (link, group.proxy) {
                (Some((name, link)), ProxyMode::Shared) => {
                    proxies.push(ProxyPlan {
                        link_name: name.clone(),
                        link: link.clone(),
                        clients: Vec::new(),
                    });
                    Some(proxies.len() - 1)
                }
                _ => None,
            };
            for i in 0..group.count {
                let index = clients.len();
                let proxy = match (link, shared) {
                    (_, Some(shared)) => Some(shared),
                    (Some((name, link)), None) => {
                        proxies.push(ProxyPlan {
                            link_name: name.clone(),
                            link: link.clone(),
                            clients: Vec::new(),
                        });
                        Some(proxies.len() - 1)
                    }
                    (None, _) => None,
                };
                if let Some(proxy) = proxy {
                    proxies[proxy].clients.push(index);
                }
                // Spread evenly: with 4 clients over 3 s, at 0, 0.75, 1.5 and 2.25 s.
                let offset = group.connect_spread.mul_f64(i as f64 / group.count as f64);
                rooms.extend(group.rooms.iter().cloned());
                clients.push(ClientPlan {
                    index,
                    user: format!("{}-{i}", group.name),
                    group: group_index,
                    rooms: group.rooms.clone(),
                    proxy,
                    connect_at: group.connect_at + offset,
                    leave_at: group.leave_at.filter(|&at| at < self.duration),
                    rate: group.rate,
                    size: (group.size, group.size_max.unwrap_or(group.size)),
                    priority: group.priority,
                });
            }
        }
        rooms.sort();
        rooms.dedup();
        RunPlan { clients, proxies, rooms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        seed = 7
        duration = "20s"

        [server]
        idle_timeout = "5s"
        keep_alive = "1s"

        [client]
        idle_timeout = "5s"
        keep_alive = "1s"

        [links.lte]
        up = { delay = "20ms", rate_kbps = 4000 }
        down = { delay = "20ms", loss = "2%" }
        timeline = { blackouts = [{ at = "5s", duration = "2s" }] }

        [[clients]]
        name = "phone"
        count = 3
        rooms = ["lobby", "ops"]
        link = "lte"
        rate = 2.0
        size = 200
        size_max = 400
        priority = { low = 1, normal = 3 }
        connect_spread = "3s"

        [[clients]]
        name = "cafe"
        count = 2
        rooms = ["lobby"]
        link = "lte"
        proxy = "shared"

        [[clients]]
        name = "desk"
        rooms = ["lobby"]

        [expect]
        lost = 0
        p99_ms = 800
    "#;

    #[test]
    fn parses_an_example_with_defaults() {
        let s = Scenario::from_toml(EXAMPLE, "example").unwrap();
        assert_eq!(s.name, "example");
        assert_eq!(s.seed, 7);
        assert_eq!(s.drain, DEFAULT_DRAIN);
        let server = s.server.as_ref().unwrap();
        assert_eq!(server.idle_timeout, Duration::from_secs(5));
        assert_eq!(server.resume_window, ServerConfig::default().resume_window);
        assert_eq!(s.client.idle_timeout, Duration::from_secs(5));
        assert!(s.client.reconnect && s.client.app_reconnect);
        assert_eq!(s.client.path_probe_after, chatroom_client::DEFAULT_PATH_PROBE_AFTER);
        let lte = &s.links["lte"];
        assert_eq!(lte.up.rate_kbps, Some(4000));
        assert!((lte.down.loss - 0.02).abs() < 1e-12);
        assert_eq!(lte.timeline.blackouts.len(), 1);
        assert_eq!(s.clients[0].priority, PriorityMix::Weighted { low: 1, normal: 3, high: 0 });
        assert_eq!(s.clients[2].priority, PriorityMix::One(PriorityName::Normal));
        assert_eq!(s.expect.lost, Some(0));
        assert_eq!(s.expect.p99_ms, Some(800.0));
        assert_eq!(s.client_count(), 6);
    }

    #[test]
    fn plans_one_proxy_per_client_or_per_shared_group() {
        let plan = Scenario::from_toml(EXAMPLE, "example").unwrap().plan();
        assert_eq!(plan.clients.len(), 6);
        assert_eq!(plan.proxies.len(), 4, "3 per-client proxies and 1 shared");
        assert_eq!(plan.clients[0].user, "phone-0");
        assert_eq!(plan.clients[0].proxy, Some(0));
        assert_eq!(plan.clients[2].proxy, Some(2));
        assert_eq!(plan.clients[3].proxy, Some(3));
        assert_eq!(plan.clients[4].proxy, Some(3));
        assert_eq!(plan.proxies[3].clients, vec![3, 4]);
        assert_eq!(plan.clients[5].proxy, None);
        assert_eq!(plan.clients[1].connect_at, Duration::from_secs(1));
        assert_eq!(plan.clients[0].size, (200, 400));
        assert_eq!(plan.rooms, vec!["lobby".to_owned(), "ops".to_owned()]);
    }

    #[test]
    fn rejects_typos_and_inconsistencies() {
        let typo = EXAMPLE.replace("rate = 2.0", "rat = 2.0");
        assert!(matches!(Scenario::from_toml(&typo, "x"), Err(ScenarioError::Parse { .. })));
        let server_typo =
            EXAMPLE.replace("keep_alive = \"1s\"\n\n        [client]", "kep = 1\n[client]");
        assert!(Scenario::from_toml(&server_typo, "x").is_err());
        let no_link =
            EXAMPLE.replace("link = \"lte\"\n        rate", "link = \"5g\"\n        rate");
        let err = Scenario::from_toml(&no_link, "x").unwrap_err().to_string();
        assert!(err.contains("no link named 5g"), "{err}");
        let bad_loss = EXAMPLE.replace("\"2%\"", "\"200%\"");
        assert!(Scenario::from_toml(&bad_loss, "x").is_err());
        let tiny = EXAMPLE.replace("size = 200", "size = 3");
        assert!(Scenario::from_toml(&tiny, "x").unwrap_err().to_string().contains("size"));
        let late = EXAMPLE.replace("connect_spread = \"3s\"", "connect_at = \"30s\"");
        assert!(Scenario::from_toml(&late, "x").is_err());
        let bad_expect = EXAMPLE.replace("lost = 0", "lots = 0");
        assert!(Scenario::from_toml(&bad_expect, "x").is_err());
    }

    #[test]
    fn priority_mix_picks_by_weight() {
        let mix = PriorityMix::Weighted { low: 1, normal: 2, high: 1 };
        assert_eq!(mix.pick(0.0), Priority::Low);
        assert_eq!(mix.pick(0.3), Priority::Normal);
        assert_eq!(mix.pick(0.74), Priority::Normal);
        assert_eq!(mix.pick(0.8), Priority::High);
        assert_eq!(PriorityMix::One(PriorityName::High).pick(0.1), Priority::High);
    }
}
