//! The `compare` mode: one table of the same workload's figures on the chatroom server and on
//! NATS (plain and TLS), with the ratios, from the bench's own JSON reports. It lets
//! `compare.sh` need neither jq nor python.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// The figures of one report that the table compares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Deliveries/s: the highest sustained for a search, the achieved for a single phase.
    pub deliveries_per_s: f64,
    /// Messages/s sent at that point.
    pub rate: f64,
    /// Latency at that point.
    pub p50_ms: f64,
    /// Latency at that point.
    pub p99_ms: f64,
    /// Server cores busy at that point (0 if unknown).
    pub server_cpu_cores: f64,
    /// Bench cores busy at that point.
    pub bench_cpu_cores: f64,
    /// Cores busy with other processes at that point: the figures are disturbed unless ~0.
    pub other_busy_cores: f64,
    /// Server peak resident memory (0 if unknown).
    pub server_peak_rss_kib: f64,
    /// Owed deliveries lost or reported as gaps at that point.
    pub missed: f64,
}

/// Reads a report file written by `--json`.
pub fn read(path: &Path) -> anyhow::Result<Figures> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report: Value = serde_json::from_str(text.trim())
        .with_context(|| format!("{} is not a bench JSON report", path.display()))?;
    Ok(figures(&report))
}

/// The figures of a report: for a search, those of its best sustained step (or, if none was
/// sustained, its first step); otherwise the report's own.
pub fn figures(report: &Value) -> Figures {
    let phase = match report["steps"].as_array() {
        Some(steps) => steps
            .iter()
            .filter(|s| s["sustained"].as_bool() == Some(true))
            .max_by(|a, b| num(a, "rate").total_cmp(&num(b, "rate")))
            .or_else(|| steps.first())
            .cloned()
            .unwrap_or(Value::Null),
        None => report.clone(),
    };
    let sustained_search = report["steps"].is_array();
    Figures {
        deliveries_per_s: if sustained_search {
            num(report, "max_sustained_deliveries_per_s")
        } else {
            num(&phase, "achieved_deliveries_per_s")
        },
        rate: num(&phase, "rate"),
        p50_ms: num(&phase["latency_ms"], "p50"),
        p99_ms: num(&phase["latency_ms"], "p99"),
        server_cpu_cores: num(&phase, "server_cpu_cores"),
        bench_cpu_cores: num(&phase, "bench_cpu_cores"),
        other_busy_cores: num(&phase, "other_busy_cores"),
        server_peak_rss_kib: num(&phase, "server_peak_rss_kib"),
        missed: num(&phase, "lost") + num(&phase, "gaps"),
    }
}

fn num(value: &Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or(0.0)
}

/// The table: one row per figure, one column per report, then `chatroom / other` ratios.
pub fn table(columns: &[(String, Figures)]) -> String {
    type Row = (&'static str, fn(&Figures) -> f64, &'static str);
    let rows: [Row; 9] = [
        ("deliveries/s", |f| f.deliveries_per_s, "higher is better"),
        ("  at msg/s", |f| f.rate, ""),
        ("  p50 ms", |f| f.p50_ms, "lower is better"),
        ("  p99 ms", |f| f.p99_ms, "lower is better"),
        ("  server cores", |f| f.server_cpu_cores, ""),
        ("  bench cores", |f| f.bench_cpu_cores, ""),
        ("  other cores", |f| f.other_busy_cores, "disturbed unless ~0"),
        ("  missed", |f| f.missed, ""),
        ("server peak RSS KiB", |f| f.server_peak_rss_kib, "lower is better"),
    ];
    let base = columns.first().map(|(_, f)| f.clone()).unwrap_or_default();
    let base_name = columns.first().map_or("", |(name, _)| name.as_str());
    let mut header = format!("{:<22}", "");
    for (name, _) in columns {
        header.push_str(&format!("{name:>14}"));
    }
    for (name, _) in columns.iter().skip(1) {
        header.push_str(&format!("{:>20}", format!("{base_name}/{name}")));
    }
    let mut out = header + "\n";
    for (label, get, note) in rows {
        let mut line = format!("{label:<22}");
        for (_, figures) in columns {
            line.push_str(&format!("{:>14}", format_figure(get(figures))));
        }
        for (_, figures) in columns.iter().skip(1) {
            let (own, other) = (get(&base), get(figures));
            let ratio = if other == 0.0 { "-".to_owned() } else { format!("{:.2}", own / other) };
            line.push_str(&format!("{ratio:>20}"));
        }
        if !note.is_empty() {
            line.push_str(&format!("   ({note})"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn format_figure(x: f64) -> String {
    if x.abs() >= 100.0 || x == x.trunc() { format!("{x:.0}") } else { format!("{x:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_best_sustained_step_and_divides() {
        let search = serde_json::json!({
            "max_sustained_deliveries_per_s": 2000.0,
            "steps": [
                {"rate": 10.0, "sustained": true, "latency_ms": {"p50": 1.0, "p99": 2.0}},
                {"rate": 20.0, "sustained": true, "latency_ms": {"p50": 1.5, "p99": 3.0},
                 "server_cpu_cores": 0.5, "lost": 1, "gaps": 2},
                {"rate": 40.0, "sustained": false, "latency_ms": {"p50": 90.0, "p99": 900.0}}
            ]
        });
        let f = figures(&search);
        assert_eq!((f.rate, f.p99_ms, f.deliveries_per_s, f.missed), (20.0, 3.0, 2000.0, 3.0));
        let single = serde_json::json!({"rate": 5.0, "achieved_deliveries_per_s": 500.0,
                                        "latency_ms": {"p50": 1.0, "p99": 4.0}});
        let g = figures(&single);
        assert_eq!(g.deliveries_per_s, 500.0);
        let text = table(&[("chatroom".into(), f), ("nats".into(), g)]);
        assert!(text.contains("chatroom/nats"), "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("deliveries/s") && l.contains("4.00")),
            "{text}"
        );
    }
}
