//! CPU time and memory of a process, from Linux's `/proc`: the server's, to say what a run
//! cost it, and the bench's own, to say how much of the machine the load generator took.
//!
//! On other systems, or for a process that is gone, every figure reads as zero: the bench
//! still runs, it just cannot say what the server used.

use std::path::PathBuf;
use std::sync::OnceLock;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU time so far, in seconds.
    pub cpu_s: f64,
    /// Resident memory now, in KiB.
    pub rss_kib: u64,
    /// The most resident memory so far (the high-water mark), in KiB.
    pub peak_rss_kib: u64,
}

/// A process whose counters can be read.
#[derive(Debug, Clone)]
pub struct ProcWatch {
    dir: PathBuf,
}

impl ProcWatch {
    /// The process with id `pid`.
    pub fn pid(pid: u32) -> Self {
        Self { dir: PathBuf::from(format!("/proc/{pid}")) }
    }

    /// This process.
    pub fn current() -> Self {
        Self { dir: PathBuf::from("/proc/self") }
    }

    /// Its counters now; zeros where they cannot be read.
    pub fn sample(&self) -> ProcSample {
        let mut sample = ProcSample::default();
        if let Ok(stat) = std::fs::read_to_string(self.dir.join("stat")) {
            sample.cpu_s = cpu_seconds(&stat).unwrap_or(0.0);
        }
        if let Ok(status) = std::fs::read_to_string(self.dir.join("status")) {
            sample.rss_kib = status_kib(&status, "VmRSS:").unwrap_or(0);
            sample.peak_rss_kib = status_kib(&status, "VmHWM:").unwrap_or(0);
        }
        sample
    }
}

/// Machine-wide counters: what every process together used, and UDP datagrams the kernel
/// dropped because a socket's receive buffer was full (on loopback, the only way a datagram is
/// lost, and a cause of QUIC loss recovery and latency spikes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineSample {
    /// CPU time of every core that was not idle, in seconds.
    pub busy_s: f64,
    /// `Udp: RcvbufErrors` of `/proc/net/snmp`.
    pub udp_rcvbuf_errors: u64,
}

impl MachineSample {
    /// The counters now; zeros where they cannot be read.
    pub fn now() -> Self {
        let busy_s = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| machine_busy_ticks(&stat))
            .map_or(0.0, |ticks| ticks as f64 / clock_ticks_per_second());
        let udp_rcvbuf_errors = std::fs::read_to_string("/proc/net/snmp")
            .ok()
            .and_then(|snmp| snmp_counter(&snmp, "Udp:", "RcvbufErrors"))
            .unwrap_or(0);
        Self { busy_s, udp_rcvbuf_errors }
    }
}

/// Non-idle ticks of all cores, from the `cpu` line of `/proc/stat`: everything but `idle`
/// and `iowait` (guest time is already inside `user`).
fn machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map_while(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    Some(total - fields.get(3)? - fields.get(4).copied().unwrap_or(0))
}

/// A counter of `/proc/net/snmp`, whose protocols each have a line of names and one of values.
fn snmp_counter(snmp: &str, protocol: &str, name: &str) -> Option<u64> {
    let mut lines = snmp.lines().filter(|line| line.starts_with(protocol));
    let names = lines.next()?;
    let values = lines.next()?;
    let index = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(index)?.parse().ok()
}

/// `utime + stime` of a `/proc/PID/stat` line, in seconds.
fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces; fields are counted
    // after its closing parenthesis, where field 3 (the state) comes first.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the state.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_second())
}

/// A `kB` line of `/proc/PID/status`, such as `VmHWM:     1234 kB`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The unit of the stat file's CPU times (`USER_HZ`). Asked of `getconf` once, since reading
/// it directly needs `sysconf` (unsafe code); 100 on every mainstream Linux build.
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "42 (chatroom server) S 1 42 42 0 -1 4194560 900 0 0 0 250 150 0 0 20 0 \
                    5 0 100 1000 300 18446744073709551615";
        let seconds = cpu_seconds(stat).unwrap();
        assert!((seconds - 400.0 / clock_ticks_per_second()).abs() < 1e-9);
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn parses_status_lines() {
        let status = "Name:\tchatroom-server\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn parses_machine_counters() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 50 2 25 500 10 0 1 1 0 0\n";
        assert_eq!(machine_busy_ticks(stat), Some(100 + 5 + 50 + 1 + 2 + 3));
        let snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    Udp: 471151 846 45914 517928 45914 0\n";
        assert_eq!(snmp_counter(snmp, "Udp:", "RcvbufErrors"), Some(45914));
        assert_eq!(snmp_counter(snmp, "Udp:", "Nothing"), None);
    }

    #[test]
    fn reads_this_process() {
        let sample = ProcWatch::current().sample();
        if cfg!(target_os = "linux") {
            assert!(sample.rss_kib > 0);
            assert!(sample.peak_rss_kib >= sample.rss_kib);
        }
    }
}
