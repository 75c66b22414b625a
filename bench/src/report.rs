//! What the bench prints: one JSON object per run with `--json`, else the same fields as
//! `key: value` lines. Percentiles are netsim's, so bench and netsim figures compare directly.

use std::collections::BTreeMap;

use chatroom_netsim::ledger::Percentiles;
use serde::Serialize;
use serde_json::Value;

/// The p99 latency under which a load counts as sustained.
pub const SUSTAINED_P99_MS: f64 = 200.0;

/// The fraction of the offered deliveries that must arrive within the sending window for a
/// load to count as sustained.
pub const SUSTAINED_FRACTION: f64 = 0.95;

/// The figures of one phase of sending at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Messages per second offered, over all senders.
    pub rate: f64,
    /// How long senders sent.
    pub duration_s: f64,
    /// Deliveries per second the workload asks for: each message once per member of its room.
    pub offered_deliveries_per_s: f64,
    /// Deliveries per second that arrived while senders were sending.
    pub achieved_deliveries_per_s: f64,
    /// Messages the server accepted (chatroom: acknowledged; NATS: published without error).
    pub sent: u64,
    /// Deliveries owed for the accepted messages.
    pub expected: u64,
    /// Deliveries that arrived by the end of the drain.
    pub delivered: u64,
    /// Owed deliveries that did not arrive and were not reported as gaps.
    pub lost: u64,
    /// Messages the server reported as missed (chatroom `Event::Gap`), summed over members.
    pub gaps: u64,
    /// Gap events received.
    pub gap_events: u64,
    /// Connections lost and replaced during the phase.
    pub reconnects: u64,
    /// Send-to-receive time of each delivery, in milliseconds, on the bench's clock.
    pub latency_ms: Percentiles,
    /// Server CPU time (user + system) during the phase, drain included; null if unknown.
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s` over the phase's wall time: cores the server kept busy.
    pub server_cpu_cores: Option<f64>,
    /// Server resident memory at the end of the phase.
    pub server_rss_kib: Option<u64>,
    /// Server peak resident memory so far (VmHWM).
    pub server_peak_rss_kib: Option<u64>,
    /// The bench's own CPU time during the phase.
    pub bench_cpu_s: f64,
    /// `bench_cpu_s` over the phase's wall time.
    pub bench_cpu_cores: f64,
    /// Cores busy on the whole machine during the phase.
    pub machine_busy_cores: f64,
    /// Cores busy with neither the server nor the bench (builds, other tests): when this is
    /// not near zero, the figures are disturbed.
    pub other_busy_cores: f64,
    /// UDP datagrams the kernel dropped machine-wide for want of socket receive buffer.
    pub udp_rcvbuf_errors: u64,
    /// The phase's wall time: sending plus drain.
    pub wall_s: f64,
    /// Whether p99 < 200 ms and at least 95 % of the offered deliveries arrived in time.
    pub sustained: bool,
    /// Failed sends, sends skipped because too many were in flight, corrupt deliveries and
    /// members that dropped out.
    pub errors: u64,
    /// The errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
}

impl PhaseReport {
    /// Whether the phase meets the sustained-load criterion.
    pub fn meets_criterion(&self) -> bool {
        self.latency_ms.samples > 0
            && self.latency_ms.p99 < SUSTAINED_P99_MS
            && self.achieved_deliveries_per_s >= SUSTAINED_FRACTION * self.offered_deliveries_per_s
    }
}

/// The shape of a fan-out run, shared by every mode that sends.
#[derive(Debug, Clone, Serialize)]
pub struct RunHeader {
    /// `fanout`, `latency` or `search`.
    pub mode: &'static str,
    /// `chatroom`, `nats` or `nats-tls`.
    pub target: &'static str,
    /// `spawned`, or the address of a server the bench did not start.
    pub server: String,
    /// Members.
    pub clients: usize,
    /// Rooms; member `i` is in room `i % rooms`.
    pub rooms: usize,
    /// Members that send: members `0..senders`.
    pub senders: usize,
    /// Message text size in bytes.
    pub size: usize,
    /// Members connected and joined.
    pub connected: usize,
    /// Members that could not connect or join.
    pub connect_failures: u64,
    /// How long connecting and joining every member took.
    pub ramp_s: f64,
    /// The impaired link, for runs through netsim proxies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netsim: Option<NetsimInfo>,
}

/// The netsim link a run went through.
#[derive(Debug, Clone, Serialize)]
pub struct NetsimInfo {
    /// The scenario's name.
    pub profile: String,
    /// The link, as netsim writes it.
    pub link: Value,
    /// One proxy per member.
    pub proxies: usize,
}

/// `fanout` and `latency`: one phase.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    /// The run.
    #[serde(flatten)]
    pub header: RunHeader,
    /// Its one phase.
    #[serde(flatten)]
    pub phase: PhaseReport,
}

/// `search`: rates stepped up, then narrowed, until the criterion fails.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    /// The run.
    #[serde(flatten)]
    pub header: RunHeader,
    /// The criterion, in words.
    pub criterion: String,
    /// The highest rate that met it (0 if none did).
    pub max_sustained_rate: f64,
    /// The achieved deliveries per second at that rate.
    pub max_sustained_deliveries_per_s: f64,
    /// p99 at that rate.
    pub max_sustained_p99_ms: f64,
    /// Every step, in the order run.
    pub steps: Vec<PhaseReport>,
}

/// `connections`: many idle, joined connections.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    /// Always `connections`.
    pub mode: &'static str,
    /// Always `chatroom`.
    pub target: &'static str,
    /// `spawned` or the server's address.
    pub server: String,
    /// Connections asked for.
    pub clients: usize,
    /// Rooms they join, round-robin.
    pub rooms: usize,
    /// Connections opened at once during the ramp.
    pub concurrency: usize,
    /// Connections established (QUIC handshake, TLS, Hello/Welcome).
    pub connected: usize,
    /// Of those, joined to their room.
    pub joined: usize,
    /// Connections still up after the idle period.
    pub connections_held: usize,
    /// How long establishing every connection took.
    pub ramp_s: f64,
    /// Connections established per second during the ramp.
    pub handshakes_per_s: f64,
    /// Time to establish each connection.
    pub connect_ms: Percentiles,
    /// How long joining every connection took.
    pub join_s: f64,
    /// Server CPU time during the ramp.
    pub server_cpu_ramp_s: Option<f64>,
    /// Server CPU per established connection, in milliseconds.
    pub server_cpu_ms_per_handshake: Option<f64>,
    /// The bench's CPU time during the ramp.
    pub bench_cpu_ramp_s: f64,
    /// Server resident memory before the ramp (set-up connection only).
    pub server_rss_before_kib: Option<u64>,
    /// Server resident memory after the idle period.
    pub server_rss_idle_kib: Option<u64>,
    /// `(idle − before) / connections_held`.
    pub server_rss_per_connection_kib: Option<f64>,
    /// Server peak resident memory (VmHWM).
    pub server_peak_rss_kib: Option<u64>,
    /// How long the connections sat idle before memory was read.
    pub idle_s: f64,
    /// Failed connections and joins.
    pub errors: u64,
    /// The errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
}

/// A report as `key: value` lines, nested keys joined with dots.
pub fn to_text(report: &impl Serialize) -> String {
    let value = serde_json::to_value(report).unwrap_or(Value::Null);
    let mut out = String::new();
    write_value(&mut out, "", &value);
    out
}

fn write_value(out: &mut String, prefix: &str, value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                write_value(out, &name, value);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                write_value(out, &format!("{prefix}[{index}]"), item);
            }
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_u64() && !n.is_i64() => out.push_str(&format!("{prefix}: {f:.3}\n")),
            _ => out.push_str(&format!("{prefix}: {n}\n")),
        },
        other => out.push_str(&format!("{prefix}: {other}\n")),
    }
}

/// Rounds to three decimals, for readable JSON.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
