//! Runs every bench mode tiny (a few clients, about a second) and checks that the JSON report
//! has its fields and that they are sane. No timing thresholds: benchmarks measure, tests
//! check behaviour.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest one tiny run may take before the test gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The chatroom-server binary of this build profile, built once per test process.
fn server_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let bench = PathBuf::from(env!("CARGO_BIN_EXE_chatroom-bench"));
            let profile_dir = bench.parent().expect("target dir").to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "--quiet", "-p", "chatroom-server", "--bin", "chatroom-server"]);
            if profile_dir.file_name().is_some_and(|name| name == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build for chatroom-server");
            assert!(status.success(), "building chatroom-server failed");
            profile_dir.join("chatroom-server")
        })
        .clone()
}

/// Runs the bench with `args` (plus --json --quiet) and returns its report.
fn bench(args: &[&str]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom-bench"));
    command.args(args).args(["--json", "--quiet"]);
    if !args.iter().any(|a| a.starts_with("--target")) {
        command.arg("--server-bin").arg(server_binary());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chatroom-bench");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().expect("wait for chatroom-bench").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chatroom-bench {args:?} took longer than {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("read chatroom-bench output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chatroom-bench {args:?} failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got:\n{stdout}\n{stderr}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn number(report: &Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {report}"))
}

fn count(report: &Value, key: &str) -> u64 {
    report[key].as_u64().unwrap_or_else(|| panic!("{key} is not a count in {report}"))
}

/// The checks every sending mode's report passes.
fn check_phase(report: &Value, clients: u64) {
    assert_eq!(count(report, "connected"), clients, "{report}");
    assert_eq!(count(report, "connect_failures"), 0, "{report}");
    assert!(number(report, "offered_deliveries_per_s") > 0.0, "{report}");
    assert!(number(report, "achieved_deliveries_per_s") >= 0.0, "{report}");
    assert!(count(report, "sent") > 0, "{report}");
    assert!(count(report, "delivered") > 0, "{report}");
    assert!(count(report, "delivered") <= count(report, "expected"), "{report}");
    for key in ["lost", "gaps", "errors"] {
        count(report, key);
    }
    assert!(report["error_kinds"].is_object(), "{report}");
    let latency = &report["latency_ms"];
    assert!(count(latency, "samples") > 0, "{report}");
    let (p50, p90, p99, max) = (
        number(latency, "p50"),
        number(latency, "p90"),
        number(latency, "p99"),
        number(latency, "max"),
    );
    assert!(0.0 <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{report}");
    assert!(number(report, "bench_cpu_s") >= 0.0, "{report}");
    assert!(report["sustained"].is_boolean(), "{report}");
}

/// The server's counters, where the bench started the server.
fn check_server_figures(report: &Value) {
    assert!(number(report, "server_cpu_s") >= 0.0, "{report}");
    assert!(count(report, "server_peak_rss_kib") > 0, "{report}");
    assert!(count(report, "server_rss_kib") > 0, "{report}");
}

#[test]
fn fanout_against_a_spawned_server() {
    let report = bench(&[
        "fanout",
        "--clients",
        "4",
        "--rooms",
        "2",
        "--senders",
        "2",
        "--rate",
        "20",
        "--duration",
        "1",
        "--drain",
        "2",
        "--settle",
        "0.2",
    ]);
    assert_eq!(report["mode"], "fanout");
    assert_eq!(report["target"], "chatroom");
    assert_eq!(report["server"], "spawned");
    assert_eq!(count(&report, "clients"), 4);
    assert_eq!(count(&report, "rooms"), 2);
    assert_eq!(count(&report, "senders"), 2);
    assert_eq!(number(&report, "rate"), 20.0);
    assert_eq!(number(&report, "duration_s"), 1.0);
    // Two senders, one in each room of two members: 20 msg/s × 2 members.
    assert_eq!(number(&report, "offered_deliveries_per_s"), 40.0);
    check_phase(&report, 4);
    check_server_figures(&report);
}

#[test]
fn search_steps_up() {
    let report = bench(&[
        "search",
        "--clients",
        "3",
        "--rate",
        "10",
        "--max-steps",
        "2",
        "--duration",
        "0.5",
        "--drain",
        "1",
        "--settle",
        "0.2",
    ]);
    assert_eq!(report["mode"], "search");
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{report}");
    assert_eq!(number(&steps[0], "rate"), 10.0);
    assert!(number(&steps[1], "rate") != 10.0, "{report}");
    number(&report, "max_sustained_deliveries_per_s");
}

#[test]
fn connections_ramp_and_memory() {
    let report = bench(&["connections", "--clients", "8", "--rooms", "2", "--idle", "0.5"]);
    assert_eq!(report["mode"], "connections");
    assert_eq!(count(&report, "connected"), 8, "{report}");
    assert_eq!(count(&report, "joined"), 8, "{report}");
    assert_eq!(count(&report, "connections_held"), 8, "{report}");
    assert!(number(&report, "handshakes_per_s") > 0.0, "{report}");
    assert_eq!(count(&report["connect_ms"], "samples"), 8, "{report}");
    // Memory can shrink between two readings, so only the sign-free facts are checked.
    number(&report, "server_rss_per_connection_kib");
    assert!(count(&report, "server_rss_idle_kib") > 0, "{report}");
    assert!(number(&report, "server_cpu_ms_per_handshake") >= 0.0, "{report}");
    assert_eq!(count(&report, "errors"), 0, "{report}");
}

#[test]
fn latency_on_loopback() {
    let report =
        bench(&["latency", "--clients", "3", "--senders", "1", "--duration", "1", "--drain", "1"]);
    assert_eq!(report["mode"], "latency");
    assert!(report.get("netsim").is_none(), "{report}");
    check_phase(&report, 3);
    check_server_figures(&report);
}

#[test]
fn latency_through_a_netsim_profile() {
    let report = bench(&[
        "latency",
        "--netsim",
        "lte",
        "--clients",
        "2",
        "--senders",
        "1",
        "--duration",
        "1",
        "--drain",
        "2",
    ]);
    assert_eq!(report["mode"], "latency");
    assert_eq!(report["netsim"]["profile"], "lte", "{report}");
    assert_eq!(count(&report["netsim"], "proxies"), 2, "{report}");
    check_phase(&report, 2);
}

/// A nats-server on a free loopback port, stopped when dropped.
struct NatsServer {
    child: Child,
    port: u16,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_server() -> Option<NatsServer> {
    let found =
        Command::new("nats-server").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(NatsServer { child, port })
}

#[test]
fn fanout_against_nats_when_installed() {
    let Some(nats) = nats_server() else {
        println!("skipped: nats-server is not on PATH (bench/compare.sh installs it)");
        return;
    };
    let target = format!("--target=nats://127.0.0.1:{}", nats.port);
    let pid = nats.child.id().to_string();
    let report = bench(&[
        "fanout",
        &target,
        "--server-pid",
        &pid,
        "--clients",
        "4",
        "--rooms",
        "2",
        "--senders",
        "2",
        "--rate",
        "20",
        "--duration",
        "1",
        "--drain",
        "2",
        "--settle",
        "0.2",
    ]);
    assert_eq!(report["target"], "nats");
    check_phase(&report, 4);
    check_server_figures(&report);
}
