//! The report of a run: the [`Metrics`] of its ledger, the proxies' counters and the verdict
//! on each expectation, as one JSON object or as text for people, and a summary table of
//! several runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use crate::ledger::{Metrics, Percentiles};
use crate::model::DirectionStats;
use crate::proxy::ProxyStats;
use crate::scenario::Expectations;

/// Latency of first deliveries, send to receive, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// How many deliveries were measured.
    pub samples: u64,
}

impl From<Percentiles> for LatencyMs {
    fn from(p: Percentiles) -> Self {
        Self { p50: p.p50, p90: p.p90, p99: p.p99, max: p.max, samples: p.samples }
    }
}

/// Recovery after outages, in milliseconds: from each outage's end to the next delivery at
/// each client behind the link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RecoveryMs {
    /// Median.
    pub p50: f64,
    /// Largest.
    pub max: f64,
    /// How many (outage, client) pairs recovered.
    pub samples: u64,
    /// How many (outage, client) pairs never saw another delivery.
    pub unrecovered: u64,
}

/// Connection establishment (QUIC handshake and hello), in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ConnectMs {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Connections established.
    pub samples: u64,
    /// Attempts that failed (timed out or refused).
    pub failures: u64,
}

/// Reconnections: how long clients were without a connection, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReconnectMs {
    /// Median.
    pub p50: f64,
    /// Largest.
    pub max: f64,
    /// How many reconnections.
    pub samples: u64,
}

/// The verdict on one `[expect]` key.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Check {
    /// `"<="` for an upper bound, `">="` for a lower one.
    pub op: &'static str,
    /// The bound.
    #[serde(serialize_with = "number")]
    pub wanted: f64,
    /// What the run achieved.
    #[serde(serialize_with = "number")]
    pub actual: f64,
    /// Whether it is within the bound.
    pub ok: bool,
}

/// Writes whole numbers as integers, so that counts read as counts.
fn number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// The report of one scenario run. Field by field in the README's "Weak networks" section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed the run used.
    pub seed: u64,
    /// How long clients sent, in seconds.
    pub duration_s: f64,
    /// How long the run waited after the last send, in seconds.
    pub drain_s: f64,
    /// How many clients.
    pub clients: usize,
    /// Messages the server accepted.
    pub sent: u64,
    /// Sends the server did not acknowledge (no connection, refused, or the connection ended
    /// first).
    pub send_failed: u64,
    /// Deliveries owed to members present when the server accepted the message.
    pub expected: u64,
    /// Owed deliveries that arrived, counted once.
    pub delivered: u64,
    /// Extra arrivals of a message already delivered.
    pub duplicates: u64,
    /// First arrivals with a lower sequence number than one already delivered.
    pub out_of_order: u64,
    /// Owed deliveries that did not arrive but that the client was told about by gap events.
    pub gaps_reported: u64,
    /// Owed deliveries that neither arrived nor were reported.
    pub lost: u64,
    /// Arrivals whose text was not what was sent under that sequence number.
    pub wrong_content: u64,
    /// Send-to-receive latency.
    pub latency_ms: LatencyMs,
    /// Connections established after a client's first.
    pub reconnects: u64,
    /// Of those, how many resumed the previous session.
    pub resumes: u64,
    /// How long each reconnection left its client without a connection.
    pub reconnect_ms: ReconnectMs,
    /// NAT rebinds the proxies performed while clients were sending (the proxy counters
    /// include later ones).
    pub rebinds: u64,
    /// Rebinds that did not cost a reconnection: the same connections carried messages sent
    /// after them.
    pub migrations: u64,
    /// Recovery after outages.
    pub recovery_ms: RecoveryMs,
    /// Connection establishment.
    pub connect_ms: ConnectMs,
    /// Every proxy's counters, summed per direction.
    pub proxy: ProxyStats,
    /// Each `[expect]` key with its verdict.
    pub expectations: BTreeMap<String, Check>,
    /// Whether every expectation was met.
    pub ok: bool,
    /// `in-process` or the address of the server the run used.
    pub server: String,
    /// Wall-clock time of the whole run, set-up and tear-down included, in seconds.
    pub wall_s: f64,
}

/// What a report is made from besides the metrics.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// The scenario's name.
    pub scenario: String,
    /// The seed used.
    pub seed: u64,
    /// Sending time in seconds.
    pub duration_s: f64,
    /// Drain time in seconds.
    pub drain_s: f64,
    /// Client count.
    pub clients: usize,
    /// `in-process` or an address.
    pub server: String,
    /// Wall-clock time in seconds.
    pub wall_s: f64,
}

impl Report {
    /// Assembles a report and judges `expect`.
    pub fn new(
        facts: RunFacts,
        m: &Metrics,
        proxies: &[ProxyStats],
        expect: &Expectations,
    ) -> Self {
        let mut report = Self {
            scenario: facts.scenario,
            seed: facts.seed,
            duration_s: facts.duration_s,
            drain_s: facts.drain_s,
            clients: facts.clients,
            sent: m.sent,
            send_failed: m.send_failed,
            expected: m.expected,
            delivered: m.delivered,
            duplicates: m.duplicates,
            out_of_order: m.out_of_order,
            gaps_reported: m.gaps_reported,
            lost: m.lost,
            wrong_content: m.wrong_content,
            latency_ms: m.latency.into(),
            reconnects: m.reconnects,
            resumes: m.resumes,
            reconnect_ms: ReconnectMs {
                p50: m.reconnect.p50,
                max: m.reconnect.max,
                samples: m.reconnect.samples,
            },
            rebinds: m.rebinds,
            migrations: m.migrations,
            recovery_ms: RecoveryMs {
                p50: m.recovery.p50,
                max: m.recovery.max,
                samples: m.recovery.samples,
                unrecovered: m.unrecovered,
            },
            connect_ms: ConnectMs {
                p50: m.connect.p50,
                p99: m.connect.p99,
                max: m.connect.max,
                samples: m.connect.samples,
                failures: m.connect_failures,
            },
            proxy: sum_stats(proxies),
            expectations: BTreeMap::new(),
            ok: true,
            server: facts.server,
            wall_s: (facts.wall_s * 10.0).round() / 10.0,
        };
        report.expectations = report.judge(expect);
        report.ok = report.expectations.values().all(|c| c.ok);
        report
    }

    /// The share of owed deliveries that arrived (1 when nothing was owed).
    pub fn delivered_ratio(&self) -> f64 {
        if self.expected == 0 { 1.0 } else { self.delivered as f64 / self.expected as f64 }
    }

    fn judge(&self, e: &Expectations) -> BTreeMap<String, Check> {
        let at_most =
            |wanted: f64, actual: f64| Check { op: "<=", wanted, actual, ok: actual <= wanted };
        let at_least =
            |wanted: f64, actual: f64| Check { op: ">=", wanted, actual, ok: actual >= wanted };
        let counts = [
            ("lost", e.lost, self.lost),
            ("duplicates", e.duplicates, self.duplicates),
            ("out_of_order", e.out_of_order, self.out_of_order),
            ("gaps_reported", e.gaps_reported, self.gaps_reported),
            ("wrong_content", e.wrong_content, self.wrong_content),
            ("send_failed", e.send_failed, self.send_failed),
            ("max_reconnects", e.max_reconnects, self.reconnects),
            ("max_connect_failures", e.max_connect_failures, self.connect_ms.failures),
            ("max_unrecovered", e.max_unrecovered, self.recovery_ms.unrecovered),
        ];
        let millis = [
            ("p50_ms", e.p50_ms, self.latency_ms.p50),
            ("p90_ms", e.p90_ms, self.latency_ms.p90),
            ("p99_ms", e.p99_ms, self.latency_ms.p99),
            ("max_latency_ms", e.max_latency_ms, self.latency_ms.max),
            ("recovery_p50_ms", e.recovery_p50_ms, self.recovery_ms.p50),
            ("recovery_max_ms", e.recovery_max_ms, self.recovery_ms.max),
        ];
        let minimums = [
            ("min_resumes", e.min_resumes.map(|v| v as f64), self.resumes as f64),
            ("min_migrations", e.min_migrations.map(|v| v as f64), self.migrations as f64),
            ("min_delivered_ratio", e.min_delivered_ratio, self.delivered_ratio()),
        ];
        let mut checks = BTreeMap::new();
        for (key, wanted, actual) in counts {
            if let Some(wanted) = wanted {
                checks.insert(key.to_owned(), at_most(wanted as f64, actual as f64));
            }
        }
        for (key, wanted, actual) in millis {
            if let Some(wanted) = wanted {
                checks.insert(key.to_owned(), at_most(wanted, actual));
            }
        }
        for (key, wanted, actual) in minimums {
            if let Some(wanted) = wanted {
                checks.insert(key.to_owned(), at_least(wanted, actual));
            }
        }
        checks
    }

    /// The expectations that failed, by key.
    pub fn failures(&self) -> Vec<&str> {
        self.expectations.iter().filter(|(_, c)| !c.ok).map(|(k, _)| k.as_str()).collect()
    }

    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as text for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let verdict = if self.ok {
            "ok".to_owned()
        } else {
            format!("FAIL ({})", self.failures().join(", "))
        };
        let _ = writeln!(
            out,
            "== {} (seed {}) == {}s + {}s drain, {} clients, server {}, {:.1} s wall",
            self.scenario,
            self.seed,
            self.duration_s,
            self.drain_s,
            self.clients,
            self.server,
            self.wall_s
        );
        let _ = writeln!(
            out,
            "  messages    sent {}  (send failed {})  expected {}  delivered {} ({:.2} %)",
            self.sent,
            self.send_failed,
            self.expected,
            self.delivered,
            self.delivered_ratio() * 100.0
        );
        let _ =
            writeln!(out, "  missing     lost {}  gaps reported {}", self.lost, self.gaps_reported);
        let _ = writeln!(
            out,
            "  integrity   duplicates {}  out of order {}  wrong content {}",
            self.duplicates, self.out_of_order, self.wrong_content
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "  latency ms  p50 {}  p90 {}  p99 {}  max {}  ({} samples)",
            l.p50, l.p90, l.p99, l.max, l.samples
        );
        let c = &self.connect_ms;
        let rc = &self.reconnect_ms;
        let _ = writeln!(
            out,
            "  sessions    reconnects {}  resumes {}  offline ms p50 {} max {}",
            self.reconnects, self.resumes, rc.p50, rc.max
        );
        let _ = writeln!(
            out,
            "  connect ms  p50 {}  p99 {}  max {}  ({} connected, {} attempts failed)",
            c.p50, c.p99, c.max, c.samples, c.failures
        );
        let r = &self.recovery_ms;
        let _ = writeln!(
            out,
            "  network     rebinds {}  migrations {}  recovery ms p50 {} max {} ({} recovered, {} unrecovered)",
            self.rebinds, self.migrations, r.p50, r.max, r.samples, r.unrecovered
        );
        for (name, d) in [("up", &self.proxy.up), ("down", &self.proxy.down)] {
            let _ = writeln!(out, "  proxy {name:<5} {}", describe_direction(d));
        }
        let p = &self.proxy;
        if p.stale_mapping_drops + p.overflow_drops + p.send_errors + p.refused_clients > 0 {
            let _ = writeln!(
                out,
                "  proxy relay stale-mapping drops {}  overflow drops {}  send errors {}  refused clients {}",
                p.stale_mapping_drops, p.overflow_drops, p.send_errors, p.refused_clients
            );
        }
        for (key, check) in &self.expectations {
            let _ = writeln!(
                out,
                "  expect      {key} {} {}: {} {}",
                check.op,
                check.wanted,
                round(check.actual),
                if check.ok { "ok" } else { "FAIL" }
            );
        }
        let _ = writeln!(out, "  result      {verdict}");
        out
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn describe_direction(d: &DirectionStats) -> String {
    format!("packets {} {}", d.packets_in, d.counters_line())
}

/// Every proxy's counters added up: per direction, the deepest queue is the deepest of any.
pub fn sum_stats(all: &[ProxyStats]) -> ProxyStats {
    fn add(a: &mut DirectionStats, b: &DirectionStats) {
        a.packets_in += b.packets_in;
        a.bytes_in += b.bytes_in;
        a.passed += b.passed;
        a.bytes_passed += b.bytes_passed;
        a.dropped_random += b.dropped_random;
        a.dropped_burst += b.dropped_burst;
        a.dropped_blackout += b.dropped_blackout;
        a.dropped_queue += b.dropped_queue;
        a.loss_capped += b.loss_capped;
        a.duplicated += b.duplicated;
        a.reordered += b.reordered;
        a.corrupted += b.corrupted;
        a.queued += b.queued;
        a.max_queue_depth = a.max_queue_depth.max(b.max_queue_depth);
    }
    let mut sum = ProxyStats::default();
    for s in all {
        add(&mut sum.up, &s.up);
        add(&mut sum.down, &s.down);
        sum.rebinds += s.rebinds;
        sum.mappings += s.mappings;
        sum.stale_mapping_drops += s.stale_mapping_drops;
        sum.foreign_drops += s.foreign_drops;
        sum.refused_clients += s.refused_clients;
        sum.overflow_drops += s.overflow_drops;
        sum.send_errors += s.send_errors;
        sum.in_flight += s.in_flight;
    }
    sum
}

/// One row per report: the figures that tell scenarios apart, and the verdict.
pub fn summary_table(reports: &[Report]) -> String {
    let headers = [
        "scenario",
        "seed",
        "sent",
        "expected",
        "delivered",
        "lost",
        "gaps",
        "dup",
        "ooo",
        "p50ms",
        "p99ms",
        "maxms",
        "reconn",
        "resume",
        "migr",
        "recov50",
        "recovmax",
        "unrec",
        "result",
    ];
    let mut rows: Vec<Vec<String>> = vec![headers.iter().map(|h| (*h).to_owned()).collect()];
    for r in reports {
        let result =
            if r.ok { "ok".to_owned() } else { format!("FAIL: {}", r.failures().join(",")) };
        rows.push(vec![
            r.scenario.clone(),
            r.seed.to_string(),
            r.sent.to_string(),
            r.expected.to_string(),
            r.delivered.to_string(),
            r.lost.to_string(),
            r.gaps_reported.to_string(),
            r.duplicates.to_string(),
            r.out_of_order.to_string(),
            format!("{:.0}", r.latency_ms.p50),
            format!("{:.0}", r.latency_ms.p99),
            format!("{:.0}", r.latency_ms.max),
            r.reconnects.to_string(),
            r.resumes.to_string(),
            format!("{}/{}", r.migrations, r.rebinds),
            format!("{:.0}", r.recovery_ms.p50),
            format!("{:.0}", r.recovery_ms.max),
            r.recovery_ms.unrecovered.to_string(),
            result,
        ]);
    }
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 0 || i == row.len() - 1 {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            } else {
                let _ = write!(line, "{cell:>width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RunFacts {
        RunFacts {
            scenario: "wifi".into(),
            seed: 3,
            duration_s: 20.0,
            drain_s: 5.0,
            clients: 4,
            server: "in-process".into(),
            wall_s: 26.04,
        }
    }

    fn metrics() -> Metrics {
        Metrics {
            sent: 100,
            expected: 400,
            delivered: 398,
            lost: 2,
            latency: Percentiles { samples: 398, p50: 21.5, p90: 30.0, p99: 55.0, max: 90.0 },
            ..Metrics::default()
        }
    }

    #[test]
    fn expectations_are_judged_with_their_bounds() {
        let expect = Expectations {
            lost: Some(0),
            duplicates: Some(0),
            p99_ms: Some(60.0),
            min_delivered_ratio: Some(0.99),
            min_migrations: Some(1),
            ..Expectations::default()
        };
        let report = Report::new(facts(), &metrics(), &[], &expect);
        assert!(!report.ok);
        assert_eq!(report.failures(), vec!["lost", "min_migrations"]);
        assert!(report.expectations["p99_ms"].ok);
        assert!(report.expectations["min_delivered_ratio"].ok);
        assert_eq!(report.expectations["lost"].op, "<=");
        assert_eq!(report.expectations["min_migrations"].op, ">=");
        let text = report.to_text();
        assert!(text.contains("FAIL (lost, min_migrations)"), "{text}");
        assert!(text.contains("expect      lost <= 0: 2 FAIL"), "{text}");
    }

    #[test]
    fn json_is_one_line_with_every_field() {
        let report = Report::new(
            facts(),
            &metrics(),
            &[ProxyStats::default()],
            &Expectations { lost: Some(5), ..Expectations::default() },
        );
        let line = report.to_json_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        for key in [
            "scenario",
            "seed",
            "duration_s",
            "clients",
            "sent",
            "expected",
            "delivered",
            "duplicates",
            "out_of_order",
            "gaps_reported",
            "lost",
            "latency_ms",
            "reconnects",
            "resumes",
            "migrations",
            "recovery_ms",
            "proxy",
            "expectations",
            "ok",
        ] {
            assert!(value.get(key).is_some(), "missing {key} in {line}");
        }
        assert_eq!(value["expectations"]["lost"]["wanted"], 5);
        assert_eq!(value["expectations"]["lost"]["actual"], 2);
        assert_eq!(value["expectations"]["lost"]["ok"], true);
        assert_eq!(value["latency_ms"]["p50"], 21.5);
        assert_eq!(value["wall_s"], 26.0);
    }

    #[test]
    fn proxy_counters_are_summed_per_direction() {
        let mut a = ProxyStats::default();
        a.up.packets_in = 10;
        a.up.max_queue_depth = 3;
        a.down.dropped_random = 2;
        a.rebinds = 1;
        let mut b = a;
        b.up.max_queue_depth = 7;
        let sum = sum_stats(&[a, b]);
        assert_eq!(sum.up.packets_in, 20);
        assert_eq!(sum.up.max_queue_depth, 7);
        assert_eq!(sum.down.dropped_random, 4);
        assert_eq!(sum.rebinds, 2);
    }

    #[test]
    fn the_summary_table_has_a_row_per_report() {
        let ok = Report::new(facts(), &metrics(), &[], &Expectations::default());
        let mut failed = ok.clone();
        failed.scenario = "3g".into();
        failed.ok = false;
        failed
            .expectations
            .insert("lost".into(), Check { op: "<=", wanted: 0.0, actual: 2.0, ok: false });
        let table = summary_table(&[ok, failed]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("scenario"));
        assert!(lines[1].starts_with("wifi") && lines[1].ends_with("ok"));
        assert!(lines[2].starts_with("3g") && lines[2].ends_with("FAIL: lost"));
    }
}
