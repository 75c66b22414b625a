//! The accounting of a run: what was sent, who was owed it, what arrived, and what that adds up
//! to. Plain state with no clock and no network: the runner records facts with times relative
//! to the start of the run, and [`Ledger::finish`] turns them into [`Metrics`].
//!
//! The rules:
//!
//! - **sent**: messages the server accepted (it gave them a sequence number). Known from the
//!   acknowledgement; when an acknowledgement was lost, from a delivery of the message; and
//!   where neither says anything, from the hole the message left in the room's sequence
//!   numbers (they have no holes), so such a message still counts, with no send time.
//! - **owed** (`expected`): a message is owed to each member of its room that was in the room
//!   when the server accepted it: from the sequence number its join returned
//!   (`next_seq`), to the highest sequence number the runner knew of when the member started
//!   to leave. A message accepted while a leave was under way is owed only if it was delivered.
//!   A connection lost and replaced does not end a membership: the user never chose to leave.
//! - **delivered**: owed messages that arrived at least once; further copies are
//!   **duplicates**. A first arrival with a lower sequence number than one already delivered to
//!   that member in that room is **out of order**.
//! - **gaps_reported**: owed messages that did not arrive but that a gap event covered;
//!   **lost**: owed, not delivered, not covered.
//! - **latency**: receive time minus send time of each first delivery, both on the runner's
//!   clock (the send time travels in the message text, see [`MessageTag`]).
//! - **recovery**: for each outage of a proxy and each client behind it, the time from the
//!   outage's end to the client's next delivery; a client that receives nothing more is
//!   **unrecovered**.
//! - **reconnects**: connections after each client's first; the time from the end of one
//!   connection to the start of the next is the reconnection time.
//! - **migrations**: NAT rebinds after which every client behind the proxy that was connected
//!   at the rebind received, on that same connection, a message sent after the rebind.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest text a [`MessageTag`] takes; messages are at least this long.
pub const MAX_TAG_LEN: usize = 48;

/// Index of a client in the run.
pub type ClientId = usize;

/// Index of a proxy in the run.
pub type ProxyId = usize;

/// What the runner writes at the start of every message text: a unique id and the send time,
/// then filler derived from the id up to the wanted size, so that a receiver can tell which
/// message it got, when it was sent, and whether the text arrived intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageTag {
    /// Unique in the run.
    pub id: u64,
    /// When the sender sent it, from the start of the run, in microseconds.
    pub sent_us: u64,
}

impl MessageTag {
    /// The text of a message of `size` bytes (more if the tag itself is longer).
    pub fn encode(&self, size: usize) -> String {
        let mut text = format!("nsm {} {} ", self.id, self.sent_us);
        let start = text.len();
        text.extend((start..size.max(start)).map(|i| filler(self.id, i)));
        text
    }

    /// The tag of a runner's message, and whether the rest of the text is the filler it should
    /// be. `None` if the text carries no tag.
    pub fn decode(text: &str) -> Option<(Self, bool)> {
        let mut parts = text.splitn(4, ' ');
        if parts.next()? != "nsm" {
            return None;
        }
        let id = parts.next()?.parse().ok()?;
        let sent_us = parts.next()?.parse().ok()?;
        let tag = Self { id, sent_us };
        let start = text.len() - parts.next()?.len();
        let intact =
            text[start..].bytes().enumerate().all(|(i, b)| filler(id, start + i) == b as char);
        Some((tag, intact))
    }

    /// The send time.
    pub fn sent_at(&self) -> Duration {
        Duration::from_micros(self.sent_us)
    }
}

fn filler(id: u64, position: usize) -> char {
    char::from(b'a' + ((id.wrapping_add(position as u64)) % 26) as u8)
}

/// A message the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Accepted {
    /// Its tag id, when known.
    id: Option<u64>,
    /// When it was sent, when known.
    sent_at: Option<Duration>,
}

/// One arrival of a room message at a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delivery {
    seq: u64,
    at: Duration,
    /// The client's connection it came on (0 for the first).
    connection: u32,
    tag: Option<MessageTag>,
    intact: bool,
}

/// A client's presence in one room.
#[derive(Debug, Clone, Default)]
struct Membership {
    /// The first message it is owed (`next_seq` of its first join).
    join_seq: u64,
    /// Once it started leaving: the first message it is not surely owed.
    owed_before: Option<u64>,
    /// Arrivals, in the order they came.
    deliveries: Vec<Delivery>,
    /// Gap events: `from..=to`.
    gaps: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Default)]
struct ClientRecord {
    proxy: Option<ProxyId>,
    /// When each connection was established, and whether it resumed the session.
    ups: Vec<(Duration, bool)>,
    /// When connections ended.
    downs: Vec<Duration>,
}

impl ClientRecord {
    /// The connection in use at `t`, if one was.
    fn connection_at(&self, t: Duration) -> Option<u32> {
        let index = self.ups.iter().rposition(|&(up, _)| up <= t)?;
        let up = self.ups[index].0;
        let ended = self.downs.iter().any(|&down| down >= up && down <= t);
        (!ended).then_some(index as u32)
    }
}

#[derive(Debug, Clone, Default)]
struct ProxyRecord {
    outages: Vec<(Duration, Duration)>,
    rebinds: Vec<Duration>,
}

/// Counts so far, for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Messages acknowledged.
    pub sent: u64,
    /// Arrivals, duplicates included.
    pub arrivals: u64,
    /// Reconnections.
    pub reconnects: u64,
}

/// The facts of a run. See the [module docs](self) for what they add up to.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Accepted messages per room, by sequence number.
    rooms: BTreeMap<String, BTreeMap<u64, Accepted>>,
    members: BTreeMap<(ClientId, String), Membership>,
    clients: BTreeMap<ClientId, ClientRecord>,
    proxies: BTreeMap<ProxyId, ProxyRecord>,
    send_failed: u64,
    connect_failures: u64,
    connect_times: Vec<Duration>,
    arrivals: u64,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Client `client` sits behind `proxy` (`None`: a direct path).
    pub fn client_behind(&mut self, client: ClientId, proxy: Option<ProxyId>) {
        self.clients.entry(client).or_default().proxy = proxy;
    }

    /// A connection attempt failed.
    pub fn connect_failed(&mut self) {
        self.connect_failures += 1;
    }

    /// A connection of `client` was established at `at`; `took` is how long its handshake
    /// took, when known; `resumed` when it resumed the previous session. Returns the
    /// connection's number (0 for the first).
    pub fn connected(
        &mut self,
        client: ClientId,
        at: Duration,
        took: Option<Duration>,
        resumed: bool,
    ) -> u32 {
        self.connect_times.extend(took);
        let record = self.clients.entry(client).or_default();
        record.ups.push((at, resumed));
        (record.ups.len() - 1) as u32
    }

    /// The connection of `client` ended at `at`.
    pub fn disconnected(&mut self, client: ClientId, at: Duration) {
        self.clients.entry(client).or_default().downs.push(at);
    }

    /// `client` joined `room`; its first message is `next_seq`. A later join of the same room
    /// (after a reconnection) does not move the start of the membership.
    pub fn joined(&mut self, client: ClientId, room: &str, next_seq: u64) {
        self.members
            .entry((client, room.to_owned()))
            .or_insert_with(|| Membership { join_seq: next_seq, ..Membership::default() });
    }

    /// `client` starts to leave `room`: it is surely owed what the runner knows was accepted
    /// so far, and later messages only if they arrive.
    pub fn leaving(&mut self, client: ClientId, room: &str) {
        let known = self.highest_known_seq(room);
        if let Some(member) = self.members.get_mut(&(client, room.to_owned())) {
            let end = known.map_or(member.join_seq, |k| (k + 1).max(member.join_seq));
            member.owed_before.get_or_insert(end);
        }
    }

    /// The server accepted message `id`, sent at `sent_at`, as `seq` of `room`.
    pub fn accepted(&mut self, room: &str, seq: u64, id: u64, sent_at: Duration) {
        self.rooms
            .entry(room.to_owned())
            .or_default()
            .insert(seq, Accepted { id: Some(id), sent_at: Some(sent_at) });
    }

    /// A send was not acknowledged (refused, failed, or not tried for want of a connection).
    pub fn send_failed(&mut self) {
        self.send_failed += 1;
    }

    /// Message `seq` of `room` arrived at `client` at `at` on its connection `connection`.
    pub fn delivered(
        &mut self,
        client: ClientId,
        room: &str,
        seq: u64,
        text: &str,
        at: Duration,
        connection: u32,
    ) {
        self.arrivals += 1;
        let (tag, intact) = match MessageTag::decode(text) {
            Some((tag, intact)) => (Some(tag), intact),
            None => (None, false),
        };
        let member = self.members.entry((client, room.to_owned())).or_insert_with(|| {
            // Content before the join's answer: the membership starts here at the latest.
            Membership { join_seq: seq, ..Membership::default() }
        });
        member.deliveries.push(Delivery { seq, at, connection, tag, intact });
    }

    /// `client` was told that messages `from..=to` of `room` will not arrive.
    pub fn gap(&mut self, client: ClientId, room: &str, from: u64, to: u64) {
        if let Some(member) = self.members.get_mut(&(client, room.to_owned())) {
            member.gaps.push((from.min(to), from.max(to)));
        }
    }

    /// The link of `proxy` was down from `from` to `to`.
    pub fn outage(&mut self, proxy: ProxyId, from: Duration, to: Duration) {
        self.proxies.entry(proxy).or_default().outages.push((from, to));
    }

    /// The NAT of `proxy` rebound at `at`.
    pub fn rebind(&mut self, proxy: ProxyId, at: Duration) {
        self.proxies.entry(proxy).or_default().rebinds.push(at);
    }

    /// Counts so far.
    pub fn progress(&self) -> Progress {
        Progress {
            sent: self.rooms.values().map(|r| r.len() as u64).sum(),
            arrivals: self.arrivals,
            reconnects: self.reconnects(),
        }
    }

    fn reconnects(&self) -> u64 {
        self.clients.values().map(|c| c.ups.len().saturating_sub(1) as u64).sum()
    }

    /// For each connection after a client's first: how long the client was without one.
    fn offline_times(&self) -> Vec<Duration> {
        let mut times = Vec::new();
        for client in self.clients.values() {
            for &(up, _) in client.ups.iter().skip(1) {
                if let Some(down) = client.downs.iter().copied().filter(|&d| d <= up).max() {
                    times.push(up - down);
                }
            }
        }
        times
    }

    fn highest_known_seq(&self, room: &str) -> Option<u64> {
        let accepted = self.rooms.get(room).and_then(|r| r.keys().next_back().copied());
        let delivered = self
            .members
            .iter()
            .filter(|((_, r), _)| r == room)
            .flat_map(|(_, m)| m.deliveries.iter().map(|d| d.seq))
            .max();
        accepted.max(delivered)
    }

    /// Every room's accepted messages: acknowledged, seen in deliveries, or inferred from holes.
    fn all_accepted(&self) -> BTreeMap<String, BTreeMap<u64, Accepted>> {
        let mut rooms = self.rooms.clone();
        for ((_, room), member) in &self.members {
            let accepted = rooms.entry(room.clone()).or_default();
            for d in &member.deliveries {
                let seen =
                    Accepted { id: d.tag.map(|t| t.id), sent_at: d.tag.map(|t| t.sent_at()) };
                accepted.entry(d.seq).or_insert(seen);
            }
        }
        for (room, accepted) in &mut rooms {
            let first_join =
                self.members.iter().filter(|((_, r), _)| r == room).map(|(_, m)| m.join_seq).min();
            let (Some(&lowest), Some(&highest)) =
                (accepted.keys().next(), accepted.keys().next_back())
            else {
                continue;
            };
            let from = first_join.unwrap_or(lowest).min(lowest);
            for seq in from..highest {
                accepted.entry(seq).or_insert(Accepted { id: None, sent_at: None });
            }
        }
        rooms
    }

    /// What the facts add up to.
    pub fn finish(&self) -> Metrics {
        let rooms = self.all_accepted();
        let mut m = Metrics {
            sent: rooms.values().map(|r| r.len() as u64).sum(),
            send_failed: self.send_failed,
            connect_failures: self.connect_failures,
            connect: Percentiles::of(&self.connect_times),
            reconnects: self.reconnects(),
            reconnect: Percentiles::of(&self.offline_times()),
            resumes: self
                .clients
                .values()
                .map(|c| c.ups.iter().filter(|(_, resumed)| *resumed).count() as u64)
                .sum(),
            ..Metrics::default()
        };
        let mut latencies = Vec::new();
        let empty = BTreeMap::new();
        for ((_, room), member) in &self.members {
            let accepted = rooms.get(room).unwrap_or(&empty);
            let mut first: BTreeMap<u64, Delivery> = BTreeMap::new();
            let mut highest = None;
            for d in &member.deliveries {
                if first.contains_key(&d.seq) {
                    m.duplicates += 1;
                    continue;
                }
                if highest.is_some_and(|h| d.seq < h) {
                    m.out_of_order += 1;
                }
                highest = highest.max(Some(d.seq));
                let expected_id = accepted.get(&d.seq).and_then(|a| a.id);
                let matches = match (d.tag, expected_id) {
                    (Some(tag), Some(id)) => tag.id == id,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if !(d.intact && matches) {
                    m.wrong_content += 1;
                }
                first.insert(d.seq, *d);
            }
            for (&seq, info) in accepted.range(member.join_seq..) {
                let arrived = first.get(&seq);
                let surely_owed = member.owed_before.is_none_or(|end| seq < end);
                if !surely_owed && arrived.is_none() {
                    continue;
                }
                m.expected += 1;
                match arrived {
                    Some(d) => {
                        m.delivered += 1;
                        if let Some(sent_at) = info.sent_at.or(d.tag.map(|t| t.sent_at())) {
                            latencies.push(d.at.saturating_sub(sent_at));
                        }
                    }
                    None if member.gaps.iter().any(|&(from, to)| (from..=to).contains(&seq)) => {
                        m.gaps_reported += 1;
                    }
                    None => m.lost += 1,
                }
            }
            // Arrivals from before the membership's first owed message still count as
            // delivered: the member evidently was in the room.
            let early = first.range(..member.join_seq).count() as u64;
            m.expected += early;
            m.delivered += early;
        }
        m.latency = Percentiles::of(&latencies);
        self.recovery_and_migrations(&mut m);
        m
    }

    fn recovery_and_migrations(&self, m: &mut Metrics) {
        let mut arrivals: BTreeMap<ClientId, Vec<&Delivery>> = BTreeMap::new();
        for ((client, _), member) in &self.members {
            arrivals.entry(*client).or_default().extend(member.deliveries.iter());
        }
        let behind = |proxy: ProxyId| {
            self.clients.iter().filter(move |(_, c)| c.proxy == Some(proxy)).map(|(&id, c)| (id, c))
        };
        let mut recoveries = Vec::new();
        for (&proxy, record) in &self.proxies {
            m.rebinds += record.rebinds.len() as u64;
            for &(_, end) in &record.outages {
                for (client, _) in behind(proxy) {
                    if !self.members.keys().any(|(c, _)| *c == client) {
                        continue;
                    }
                    let next = arrivals
                        .get(&client)
                        .and_then(|a| a.iter().filter(|d| d.at >= end).map(|d| d.at).min());
                    match next {
                        Some(at) => recoveries.push(at - end),
                        None => m.unrecovered += 1,
                    }
                }
            }
            for &at in &record.rebinds {
                let mut checked = 0;
                let mut migrated = 0;
                for (client, c) in behind(proxy) {
                    let Some(connection) = c.connection_at(at) else { continue };
                    checked += 1;
                    let carried = arrivals.get(&client).is_some_and(|a| {
                        a.iter().any(|d| {
                            d.connection == connection && d.tag.is_some_and(|t| t.sent_at() > at)
                        })
                    });
                    if carried {
                        migrated += 1;
                    }
                }
                if checked > 0 && migrated == checked {
                    m.migrations += 1;
                }
            }
        }
        m.recovery = Percentiles::of(&recoveries);
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many samples.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `samples`, to about 0.1 % (an HDR histogram with three significant
    /// digits), rounded to 0.1 ms; all zero without samples.
    pub fn of(samples: &[Duration]) -> Self {
        // One microsecond to one hour; longer values are clamped, which no run reaches.
        let Ok(mut histogram) =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        else {
            return Self::default();
        };
        for sample in samples {
            let micros = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX).max(1);
            histogram.saturating_record(micros);
        }
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| (micros as f64 / 100.0).round() / 10.0;
        // The middle of the bucket a quantile falls in, rather than its top, and the exact
        // maximum.
        let max = samples.iter().max().copied().unwrap_or_default();
        let max_micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        let quantile = |q: f64| {
            ms(histogram.median_equivalent(histogram.value_at_quantile(q)).min(max_micros))
        };
        Self {
            samples: histogram.len(),
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
            max: ms(max_micros),
        }
    }
}

/// What a run's facts add up to. See the [module docs](self) for each count's rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Messages the server accepted.
    pub sent: u64,
    /// Sends the server did not acknowledge.
    pub send_failed: u64,
    /// Deliveries owed to members present when the server accepted the message.
    pub expected: u64,
    /// Owed deliveries that arrived (once or more).
    pub delivered: u64,
    /// Extra arrivals of an already delivered message.
    pub duplicates: u64,
    /// First arrivals below a sequence number already delivered.
    pub out_of_order: u64,
    /// Owed deliveries that did not arrive but were reported by a gap event.
    pub gaps_reported: u64,
    /// Owed deliveries that neither arrived nor were reported.
    pub lost: u64,
    /// First arrivals whose text is not what was sent under that sequence number.
    pub wrong_content: u64,
    /// Send-to-receive latency of first arrivals.
    pub latency: Percentiles,
    /// Connections established after a client's first.
    pub reconnects: u64,
    /// For each reconnection, how long the client was without a connection.
    pub reconnect: Percentiles,
    /// Connections that resumed the previous session.
    pub resumes: u64,
    /// NAT rebinds recorded.
    pub rebinds: u64,
    /// NAT rebinds survived on the same connections.
    pub migrations: u64,
    /// From the end of each outage to the next arrival at each affected client.
    pub recovery: Percentiles,
    /// Outage ends after which an affected client received nothing more.
    pub unrecovered: u64,
    /// Time to establish each connection (QUIC handshake and hello).
    pub connect: Percentiles,
    /// Connection attempts that failed.
    pub connect_failures: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Percentiles are exact to the histogram's three significant digits.
    fn assert_close(actual: f64, wanted: f64) {
        assert!((actual - wanted).abs() <= wanted * 0.002, "{actual} is not about {wanted}");
    }

    fn text(id: u64, sent_ms: u64) -> String {
        MessageTag { id, sent_us: sent_ms * 1000 }.encode(80)
    }

    /// Client 0 sends `ids` as seqs `first..` in "lobby" at 10 ms intervals.
    fn send_all(ledger: &mut Ledger, first: u64, ids: std::ops::Range<u64>) {
        for (i, id) in ids.enumerate() {
            ledger.accepted("lobby", first + i as u64, id, ms(10 * id));
        }
    }

    #[test]
    fn tags_round_trip_and_detect_tampering() {
        let tag = MessageTag { id: u64::MAX, sent_us: u64::MAX };
        let text = tag.encode(200);
        assert_eq!(text.len(), 200);
        assert!(text.len() >= format!("nsm {} {} ", u64::MAX, u64::MAX).len());
        assert!(MAX_TAG_LEN >= format!("nsm {} {} ", u64::MAX, u64::MAX).len());
        assert_eq!(MessageTag::decode(&text), Some((tag, true)));
        let mut bytes = text.into_bytes();
        bytes[150] = b'#';
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(MessageTag::decode(&tampered), Some((tag, false)));
        let truncated = &tampered[..100];
        assert_eq!(MessageTag::decode(truncated).map(|(t, _)| t), Some(tag));
        assert_eq!(MessageTag::decode("hello"), None);
        let short = MessageTag { id: 1, sent_us: 2 }.encode(0);
        assert_eq!(short, "nsm 1 2 ");
        assert_eq!(MessageTag::decode(&short), Some((MessageTag { id: 1, sent_us: 2 }, true)));
    }

    #[test]
    fn a_perfect_run_adds_up() {
        let mut ledger = Ledger::new();
        ledger.joined(0, "lobby", 1);
        ledger.joined(1, "lobby", 1);
        send_all(&mut ledger, 1, 0..10);
        for client in 0..2 {
            for id in 0..10 {
                ledger.delivered(client, "lobby", id + 1, &text(id, 10 * id), ms(10 * id + 25), 0);
            }
        }
        let m = ledger.finish();
        assert_eq!((m.sent, m.expected, m.delivered), (10, 20, 20));
        assert_eq!((m.duplicates, m.out_of_order, m.lost, m.gaps_reported), (0, 0, 0, 0));
        assert_eq!(m.wrong_content, 0);
        assert_eq!(m.latency.samples, 20);
        assert_close(m.latency.p50, 25.0);
        assert_eq!(m.latency.max, 25.0);
    }

    #[test]
    fn duplicates_reordering_gaps_and_losses_are_told_apart() {
        let mut ledger = Ledger::new();
        ledger.joined(0, "lobby", 1);
        send_all(&mut ledger, 1, 0..8);
        // seq 1, 3, 2 (late), 2 again (duplicate), 4; 5..=6 reported by a gap; 7, 8 lost.
        for (seq, at) in [(1, 20), (3, 40), (2, 45), (2, 46), (4, 60)] {
            ledger.delivered(0, "lobby", seq, &text(seq - 1, 10 * (seq - 1)), ms(at), 0);
        }
        ledger.gap(0, "lobby", 5, 6);
        let m = ledger.finish();
        assert_eq!(m.sent, 8);
        assert_eq!(m.expected, 8);
        assert_eq!(m.delivered, 4);
        assert_eq!(m.duplicates, 1);
        assert_eq!(m.out_of_order, 1);
        assert_eq!(m.gaps_reported, 2);
        assert_eq!(m.lost, 2);
        assert_eq!(m.expected, m.delivered + m.gaps_reported + m.lost);
    }

    #[test]
    fn only_members_present_at_acceptance_are_owed() {
        let mut ledger = Ledger::new();
        ledger.joined(0, "lobby", 0);
        send_all(&mut ledger, 0, 0..5);
        // Client 1 joins when seq 5 is next; client 2 leaves after seq 2 was known.
        ledger.joined(1, "lobby", 5);
        ledger.joined(2, "lobby", 0);
        ledger.accepted("lobby", 5, 5, ms(50));
        for seq in 0..6 {
            ledger.delivered(0, "lobby", seq, &text(seq, 10 * seq), ms(10 * seq + 5), 0);
        }
        ledger.delivered(1, "lobby", 5, &text(5, 50), ms(55), 0);
        let mut leaving = ledger.clone();
        // Leave while seqs 0..=5 are known: owed all six.
        leaving.leaving(2, "lobby");
        leaving.accepted("lobby", 6, 6, ms(60));
        let m = leaving.finish();
        assert_eq!(m.sent, 7);
        // Client 0 stays: owed 0..=6, got 0..=5. Client 1 joined at 5: owed 5..=6, got 5.
        // Client 2 left when 5 was the highest known: surely owed 0..=5, and 6 only if it
        // arrived (it did not); it got nothing.
        assert_eq!(m.expected, 7 + 2 + 6);
        assert_eq!(m.delivered, 6 + 1);
        assert_eq!(m.lost, 1 + 1 + 6);
    }

    #[test]
    fn a_message_during_a_leave_counts_only_if_it_arrived() {
        let mut ledger = Ledger::new();
        ledger.joined(0, "lobby", 1);
        ledger.accepted("lobby", 1, 1, ms(10));
        ledger.delivered(0, "lobby", 1, &text(1, 10), ms(20), 0);
        ledger.leaving(0, "lobby");
        ledger.accepted("lobby", 2, 2, ms(30));
        ledger.accepted("lobby", 3, 3, ms(40));
        ledger.delivered(0, "lobby", 2, &text(2, 30), ms(50), 0);
        let m = ledger.finish();
        assert_eq!((m.expected, m.delivered, m.lost), (2, 2, 0));
    }

    #[test]
    fn lost_acknowledgements_are_recovered_from_deliveries_and_holes() {
        let mut ledger = Ledger::new();
        ledger.joined(0, "lobby", 1);
        ledger.joined(1, "lobby", 1);
        ledger.accepted("lobby", 1, 10, ms(0));
        // Seq 2: acknowledgement lost, delivered to client 1 only. Seq 3: acknowledgement lost
        // and delivered to nobody. Seq 4: acknowledged.
        ledger.delivered(1, "lobby", 2, &text(11, 5), ms(30), 0);
        ledger.accepted("lobby", 4, 13, ms(20));
        let m = ledger.finish();
        assert_eq!(m.sent, 4);
        assert_eq!(m.expected, 8);
        assert_eq!(m.delivered, 1);
        assert_eq!(m.lost, 7);
        assert_eq!(m.latency.samples, 1);
        assert_close(m.latency.p50, 25.0);
    }

    #[test]
    fn wrong_content_is_counted() {
        let mut ledger = Ledger::new();
        ledger.joined(0, "lobby", 1);
        ledger.accepted("lobby", 1, 1, ms(0));
        ledger.accepted("lobby", 2, 2, ms(0));
        ledger.accepted("lobby", 3, 3, ms(0));
        ledger.delivered(0, "lobby", 1, &text(2, 0), ms(1), 0); // another message's text
        ledger.delivered(0, "lobby", 2, "plain text", ms(1), 0); // no tag
        let mut garbled = text(3, 0);
        garbled.replace_range(70..71, "#");
        ledger.delivered(0, "lobby", 3, &garbled, ms(1), 0);
        let m = ledger.finish();
        assert_eq!(m.wrong_content, 3);
        assert_eq!(m.delivered, 3);
    }

    #[test]
    fn reconnects_and_resumes_are_counted_per_client() {
        let mut ledger = Ledger::new();
        assert_eq!(ledger.connected(0, ms(0), Some(ms(5)), false), 0);
        ledger.disconnected(0, ms(100));
        assert_eq!(ledger.connected(0, ms(200), None, true), 1);
        ledger.disconnected(0, ms(300));
        assert_eq!(ledger.connected(0, ms(400), Some(ms(7)), false), 2);
        ledger.connected(1, ms(0), Some(ms(9)), false);
        ledger.connect_failed();
        let m = ledger.finish();
        assert_eq!((m.reconnects, m.resumes, m.connect_failures), (2, 1, 1));
        assert_eq!(m.connect.samples, 3);
        assert_eq!(m.connect.max, 9.0);
        assert_eq!(m.reconnect.samples, 2);
        assert_eq!(m.reconnect.max, 100.0);
        assert_eq!(ledger.progress().reconnects, 2);
    }

    #[test]
    fn recovery_is_measured_from_each_outage_end_to_the_next_arrival() {
        let mut ledger = Ledger::new();
        ledger.client_behind(0, Some(0));
        ledger.client_behind(1, Some(0));
        ledger.client_behind(2, None);
        for client in 0..3 {
            ledger.joined(client, "lobby", 1);
        }
        send_all(&mut ledger, 1, 0..3);
        ledger.outage(0, ms(1000), ms(3000));
        ledger.outage(0, ms(5000), ms(6000));
        ledger.delivered(0, "lobby", 1, &text(0, 0), ms(3400), 0);
        ledger.delivered(1, "lobby", 1, &text(0, 0), ms(3100), 0);
        ledger.delivered(0, "lobby", 2, &text(1, 10), ms(6500), 0);
        ledger.delivered(2, "lobby", 2, &text(1, 10), ms(6500), 0);
        let m = ledger.finish();
        // Outage 1: 400 and 100 ms. Outage 2: client 0 after 500 ms; client 1 never.
        assert_eq!(m.recovery.samples, 3);
        assert_close(m.recovery.p50, 400.0);
        assert_eq!(m.recovery.max, 500.0);
        assert_eq!(m.unrecovered, 1);
    }

    #[test]
    fn a_rebind_is_a_migration_only_if_the_same_connection_carries_later_messages() {
        let mut ledger = Ledger::new();
        ledger.client_behind(0, Some(0));
        ledger.client_behind(1, Some(1));
        for client in 0..2 {
            ledger.joined(client, "lobby", 1);
            ledger.connected(client, ms(0), Some(ms(5)), false);
        }
        send_all(&mut ledger, 1, 0..4);
        // Proxy 0 rebinds at 15 ms; client 0 gets message 2 (sent at 20 ms) on connection 0.
        ledger.rebind(0, ms(15));
        ledger.delivered(0, "lobby", 3, &text(2, 20), ms(40), 0);
        // Proxy 1 rebinds at 15 ms; client 1's connection dies; message 3 comes on connection 1.
        ledger.rebind(1, ms(15));
        ledger.delivered(1, "lobby", 2, &text(1, 10), ms(16), 0); // sent before the rebind
        ledger.disconnected(1, ms(5000));
        ledger.connected(1, ms(6000), Some(ms(5)), false);
        ledger.delivered(1, "lobby", 4, &text(3, 30), ms(6100), 1);
        // Proxy 0 rebinds again at 50 ms: nothing later arrives.
        ledger.rebind(0, ms(50));
        let m = ledger.finish();
        assert_eq!(m.rebinds, 3);
        assert_eq!(m.migrations, 1);
        assert_eq!(m.reconnects, 1);
    }

    #[test]
    fn percentiles_of_nothing_are_zero() {
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
        let p = Percentiles::of(&(1..=100).map(ms).collect::<Vec<_>>());
        assert_eq!(p.samples, 100);
        assert_close(p.p50, 50.0);
        assert_close(p.p90, 90.0);
        assert_close(p.p99, 99.0);
        assert_eq!(p.max, 100.0);
    }
}
