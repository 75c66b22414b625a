//! The scenario runner end to end: a tiny scenario through the library API, and the `netsim
//! run` binary's output and exit status. Each run takes its duration plus its drain plus about
//! a second.

use std::process::Command;

use chatroom_netsim::runner::{self, RunOptions};
use chatroom_netsim::scenario::Scenario;

/// Three clients, one behind a delayed link that rebinds its NAT once, one direct; a few
/// seconds of chat.
const TINY: &str = r#"
    seed = 99
    duration = "3s"
    drain = "2s"

    [server]
    idle_timeout = "10s"
    keep_alive = "2s"

    [links.slow]
    up = { delay = "20ms" }
    down = { delay = "20ms" }
    timeline.rebind_at = ["1500ms"]

    [[clients]]
    name = "phone"
    count = 2
    rooms = ["lobby"]
    link = "slow"
    rate = 4.0
    size = 64
    size_max = 256

    [[clients]]
    name = "desk"
    rooms = ["lobby"]
    rate = 4.0

    [expect]
    lost = 0
    duplicates = 0
    max_reconnects = 0
"#;

#[tokio::test]
async fn a_tiny_scenario_reports_sane_figures() {
    let scenario = Scenario::from_toml(TINY, "tiny").expect("valid scenario");
    let options = RunOptions { seed: Some(7), ..RunOptions::default() };
    let report = runner::run(&scenario, &options).await.expect("run");
    let line = report.to_json_line();
    assert!(!line.contains('\n'));
    let json: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    let context = format!("seed 7: {line}");
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
    ] {
        assert!(json.get(key).is_some(), "no {key}: {context}");
    }
    let n =
        |key: &str| json[key].as_u64().unwrap_or_else(|| panic!("{key} not a count: {context}"));
    assert_eq!(json["scenario"], "tiny");
    assert_eq!(json["seed"], 7, "--seed overrides the file's");
    assert_eq!(n("clients"), 3);
    // 3 clients × 4 messages/s × 3 s, give or take the start phases and connection set-up.
    assert!((20..=40).contains(&n("sent")), "{context}");
    assert!(n("expected") >= n("sent"), "each message is owed at least to its sender: {context}");
    assert!(n("expected") <= 3 * n("sent"), "{context}");
    assert!(n("delivered") <= n("expected"), "{context}");
    assert_eq!(n("expected"), n("delivered") + n("gaps_reported") + n("lost"), "{context}");
    let latency = &json["latency_ms"];
    let p50 = latency["p50"].as_f64().expect("p50");
    assert!(p50 > 0.0 && p50 <= latency["p99"].as_f64().unwrap(), "{context}");
    assert!(latency["p99"].as_f64().unwrap() <= latency["max"].as_f64().unwrap(), "{context}");
    assert_eq!(latency["samples"].as_u64(), Some(n("delivered")), "{context}");
    assert_eq!(json["rebinds"], 2, "one rebind for each phone's proxy: {context}");
    assert!(json["proxy"]["up"]["packets_in"].as_u64().unwrap() > 0, "{context}");
    assert_eq!(json["proxy"]["rebinds"], 2, "{context}");
    for key in ["lost", "duplicates", "max_reconnects"] {
        let check = &json["expectations"][key];
        assert!(check["ok"].is_boolean() && check["wanted"] == 0, "{key}: {context}");
    }
    // What today's code achieves on this gentle link; the figures above hold whatever it does.
    assert_eq!(n("lost"), 0, "{context}");
    assert_eq!(n("duplicates"), 0, "{context}");
    assert_eq!(n("out_of_order"), 0, "{context}");
    assert_eq!(n("migrations"), 2, "both rebinds migrated: {context}");
}

#[test]
fn the_binary_prints_one_json_line_per_scenario_and_fails_on_a_missed_expectation() {
    let dir = std::env::temp_dir().join(format!("netsim-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = |name: &str, expect: &str| {
        let path = dir.join(format!("{name}.toml"));
        let text = format!(
            "duration = \"2s\"\ndrain = \"1s\"\n[[clients]]\nname = \"c\"\ncount = 2\n\
             rooms = [\"r\"]\nrate = 3.0\n[expect]\n{expect}\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let passing = scenario("passing", "lost = 0");
    // Latency on loopback is above zero, so this expectation must fail.
    let failing = scenario("failing", "max_latency_ms = 0");
    let output = Command::new(env!("CARGO_BIN_EXE_netsim"))
        .args(["run", "--json", "--seed", "5"])
        .arg(&passing)
        .arg(&failing)
        .output()
        .expect("run netsim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one JSON object per scenario: {stdout}");
    let reports: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(reports[0]["scenario"], "passing");
    assert_eq!(reports[0]["seed"], 5);
    assert_eq!(reports[0]["ok"], true, "{stdout}");
    assert_eq!(reports[1]["ok"], false, "{stdout}");
    assert_eq!(reports[1]["expectations"]["max_latency_ms"]["ok"], false);
    assert!(stderr.contains("seed 5"), "the seed is printed: {stderr}");
    assert!(stderr.contains("FAIL: max_latency_ms"), "the summary table names it: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
