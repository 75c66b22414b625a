//! Admission of new connections: caps on connections in all and per client address, and QUIC
//! Retry (address validation) when handshakes pile up.
//!
//! A Retry costs an honest client one round trip, which matters on a weak network, so it is
//! asked for only under load: when more than `retry_above_handshakes` handshakes are in
//! progress, as during a flood of spoofed Initial packets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::ServerConfig;

/// What to do with a new connection attempt.
#[derive(Debug)]
pub enum Admit {
    /// Accept it; the guard keeps it counted until dropped.
    Accept(Admitted),
    /// Ask the client to prove its address first (QUIC Retry).
    Retry,
    /// Refuse it: a connection limit is reached.
    Refuse(&'static str),
}

/// Counts connections per client address and handshakes in progress.
#[derive(Debug)]
pub struct Admission {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    handshaking: AtomicUsize,
    max_connections: usize,
    max_per_ip: usize,
    retry_above: usize,
}

/// Keeps one admitted connection counted; dropping it releases the count.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
    handshake: Option<Handshake>,
}

/// Counts one handshake as in progress until dropped.
#[derive(Debug)]
pub struct Handshake(Arc<Admission>);

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.handshaking.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admitted {
    /// The guard of the connection's handshake: drop it when the handshake completed or failed.
    pub fn take_handshake(&mut self) -> Option<Handshake> {
        self.handshake.take()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut per_ip = self.admission.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    /// Limits from `config`.
    pub fn new(config: &ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            per_ip: Mutex::default(),
            handshaking: AtomicUsize::new(0),
            max_connections: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            retry_above: config.retry_above_handshakes,
        })
    }

    /// Decides about an attempt from `ip`, whose address is already `validated` (it came back
    /// with a Retry token) or not, while `open` connections exist.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, validated: bool, open: usize) -> Admit {
        if open >= self.max_connections {
            return Admit::Refuse("server connection limit reached");
        }
        if !validated && self.handshaking.load(Ordering::Relaxed) >= self.retry_above {
            return Admit::Retry;
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Admit::Refuse("connection limit per address reached");
        }
        *count += 1;
        self.handshaking.fetch_add(1, Ordering::Relaxed);
        let handshake = Some(Handshake(self.clone()));
        Admit::Accept(Admitted { admission: self.clone(), ip, handshake })
    }

    /// How many connections `ip` has.
    pub fn connections_from(&self, ip: IpAddr) -> usize {
        self.per_ip.lock().unwrap_or_else(|e| e.into_inner()).get(&ip).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_connections: usize, max_per_ip: usize, retry_above: usize) -> Arc<Admission> {
        let config = ServerConfig {
            max_connections,
            max_connections_per_ip: max_per_ip,
            retry_above_handshakes: retry_above,
            ..ServerConfig::default()
        };
        Admission::new(&config)
    }

    #[test]
    fn per_address_limit_and_release() {
        let admission = admission(100, 2, 100);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = admission.admit(a, false, 0);
        let second = admission.admit(a, false, 1);
        assert!(matches!(admission.admit(a, false, 2), Admit::Refuse(_)));
        assert!(matches!(admission.admit(b, false, 2), Admit::Accept(_)));
        drop(first);
        assert_eq!(admission.connections_from(a), 1);
        assert!(matches!(admission.admit(a, false, 1), Admit::Accept(_)));
        drop(second);
    }

    #[test]
    fn retry_under_handshake_load_and_total_cap() {
        let admission = admission(10, 100, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut first = match admission.admit(ip, false, 0) {
            Admit::Accept(guard) => guard,
            other => panic!("{other:?}"),
        };
        let _second = admission.admit(ip, false, 0);
        assert!(matches!(admission.admit(ip, false, 0), Admit::Retry));
        assert!(matches!(admission.admit(ip, true, 0), Admit::Accept(_)), "validated: no retry");
        drop(first.take_handshake());
        assert!(matches!(admission.admit(ip, false, 0), Admit::Accept(_)));
        assert!(matches!(admission.admit(ip, true, 10), Admit::Refuse(_)));
    }
}
