//! The fan-out workload, the same for every server: connect the members, then run phases in
//! which the senders send at a fixed rate while every member counts what arrives.
//!
//! ```text
//! open:   rooms ─ members connect (bounded concurrency) ─ join room i % rooms ─ settle
//! phase:  senders tick at rate / senders ─ publish tagged text ─ ack: expected += room size
//!         readers: decode tag ─ latency = now − sent (one clock) ─ count
//!         end of sending ─ drain until every owed delivery arrived (or the drain ends)
//!         ─ flush: every reader hands over its tally ─ figures
//! ```
//!
//! Every loop is bounded: connecting by a ramp deadline, sending by the phase's duration,
//! waiting by the drain, collecting by a timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use chatroom_client::Client;
use chatroom_netsim::ledger::{MessageTag, Percentiles};
use chatroom_netsim::model::LinkConfig;
use chatroom_netsim::proxy::{Proxy, ProxyConfig, ProxyHandle};
use chatroom_netsim::runner::derive_seed;
use futures_util::StreamExt as _;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::chatroom::ChatroomConnector;
use crate::member::{Control, ErrorCounts, Publisher, Reader, Shared, Tally, count_error, tag_id};
use crate::nats::NatsConnector;
use crate::procfs::{MachineSample, ProcSample, ProcWatch};
use crate::report::{PhaseReport, round3};
use crate::target::Target;

/// Sends one sender may have waiting for their answer; a tick beyond it is skipped and
/// counted, rather than piling requests up behind a server that cannot keep up.
const MAX_IN_FLIGHT_PER_SENDER: usize = 1024;

/// How often progress lines are printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// How long readers get to hand over their tallies.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(10);

/// After a phase, the next starts only once no message has arrived for this long, so that an
/// overloaded phase's backlog does not weigh on the next.
const QUIET: Duration = Duration::from_millis(500);

/// The longest wait for that quiet.
const QUIET_TIMEOUT: Duration = Duration::from_secs(20);

/// How long closing every member may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long one member may take to connect and join; the client library's own connect
/// timeout (10 s) plus a join.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(20);

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Members.
    pub clients: usize,
    /// Rooms.
    pub rooms: usize,
    /// Members that send.
    pub senders: usize,
    /// Message text size in bytes.
    pub size: usize,
    /// Members connecting at once.
    pub concurrency: usize,
    /// The ramp gives up after this long.
    pub ramp_timeout: Duration,
    /// Pause between the ramp and the first phase, for join announcements to die down.
    pub settle: Duration,
    /// How long after sending a phase waits for late deliveries.
    pub drain: Duration,
    /// Members reach the server through netsim proxies with this link, one proxy each,
    /// seeded from this seed.
    pub link: Option<(LinkConfig, u64)>,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// Connected members, ready to run phases.
pub struct Session {
    plan: Plan,
    shared: Arc<Shared>,
    control: watch::Sender<Control>,
    tallies: mpsc::UnboundedReceiver<Tally>,
    /// Each member's room and publisher, by index; `None` where it failed.
    members: Vec<Option<(usize, Publisher)>>,
    room_sizes: Vec<u64>,
    phase: u32,
    watch: Option<ProcWatch>,
    bench: ProcWatch,
    setup: Option<Client>,
    proxies: Vec<ProxyHandle>,
    /// Members that failed to connect or join, by why.
    pub connect_errors: ErrorCounts,
    /// How long the ramp took.
    pub ramp: Duration,
}

impl Session {
    /// Creates the rooms and connects every member.
    pub async fn open(
        target: &Target,
        plan: Plan,
        watch: Option<ProcWatch>,
    ) -> anyhow::Result<Self> {
        if plan.clients == 0 || plan.rooms == 0 || plan.senders > plan.clients {
            bail!("need clients ≥ 1, rooms ≥ 1 and senders ≤ clients");
        }
        if plan.rooms > plan.clients {
            bail!(
                "more rooms ({}) than clients ({}): some rooms would be empty",
                plan.rooms,
                plan.clients
            );
        }
        let say = |line: String| {
            if plan.progress {
                eprintln!("{line}");
            }
        };
        // Names unique to the run, so that a server the bench did not start can be reused.
        let nonce = format!("{:06x}", std::process::id() ^ (rand_suffix() & 0xFF_FFFF));
        let room_names: Vec<String> =
            (0..plan.rooms).map(|r| format!("bench-{nonce}-{r}")).collect();
        let (tally_tx, tallies) = mpsc::unbounded_channel();
        let (control, control_rx) = watch::channel(Control::Run);
        let shared = Arc::new(Shared::new());

        let mut setup = None;
        let mut proxies = Vec::new();
        match target {
            Target::Chatroom { addr, .. } => {
                let connector = chatroom_connector(target);
                setup = Some(connector.setup(&format!("bench-{nonce}-setup"), &room_names).await?);
                if let Some((link, seed)) = &plan.link {
                    for index in 0..plan.clients {
                        let config = ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), *addr)
                            .with_link(link.clone())
                            .with_seed(derive_seed(*seed, 1, index as u64));
                        proxies.push(Proxy::start(config).await?);
                    }
                }
            }
            Target::Nats { url, tls, ca } => {
                if plan.link.is_some() {
                    bail!("netsim proxies relay UDP; they cannot carry NATS (TCP)");
                }
                NatsConnector { url: url.clone(), tls: *tls, ca: ca.clone() }.probe().await?;
            }
        }

        say(format!(
            "connecting {} members to {} rooms on {}",
            plan.clients,
            plan.rooms,
            target.label()
        ));
        let began = Instant::now();
        let deadline = began + plan.ramp_timeout;
        let done = Arc::new(AtomicU64::new(0));
        let ticker = plan.progress.then(|| {
            let done = done.clone();
            let total = plan.clients;
            tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
                loop {
                    tick.tick().await;
                    eprintln!(
                        "  ramp {:>5.1}s: {}/{total} members",
                        began.elapsed().as_secs_f64(),
                        done.load(Ordering::Relaxed)
                    );
                }
            })
        });
        let connects = futures_util::stream::iter(0..plan.clients)
            .map(|index| {
                let room = index % plan.rooms;
                let reader = Reader::new(shared.clone(), tally_tx.clone());
                let control = control_rx.clone();
                let room_name = room_names[room].clone();
                let via = proxies.get(index).map(ProxyHandle::local_addr);
                let done = done.clone();
                let user = format!("bench-{nonce}-{index}");
                async move {
                    let attempt = async {
                        match target {
                            Target::Chatroom { addr, .. } => {
                                chatroom_connector(target)
                                    .member(
                                        via.unwrap_or(*addr),
                                        &user,
                                        &room_name,
                                        reader,
                                        control,
                                    )
                                    .await
                            }
                            Target::Nats { url, tls, ca } => {
                                let connector =
                                    NatsConnector { url: url.clone(), tls: *tls, ca: ca.clone() };
                                connector
                                    .member(&format!("bench.{room_name}"), reader, control)
                                    .await
                            }
                        }
                    };
                    let limit = deadline.min(Instant::now() + MEMBER_TIMEOUT);
                    let result = match timeout_at(limit, attempt).await {
                        Ok(result) => result,
                        Err(_) => Err("connect: timed out".to_owned()),
                    };
                    done.fetch_add(1, Ordering::Relaxed);
                    (index, room, result)
                }
            })
            .buffer_unordered(plan.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        if let Some(ticker) = ticker {
            ticker.abort();
        }
        let ramp = began.elapsed();

        let mut members: Vec<Option<(usize, Publisher)>> =
            (0..plan.clients).map(|_| None).collect();
        let mut room_sizes = vec![0u64; plan.rooms];
        let mut connect_errors = ErrorCounts::new();
        for (index, room, result) in connects {
            match result {
                Ok(publisher) => {
                    room_sizes[room] += 1;
                    members[index] = Some((room, publisher));
                }
                Err(kind) => count_error(&mut connect_errors, kind),
            }
        }
        let connected = members.iter().flatten().count();
        say(format!(
            "  {connected}/{} members connected in {:.1}s{}",
            plan.clients,
            ramp.as_secs_f64(),
            if connect_errors.is_empty() {
                String::new()
            } else {
                format!(" (failures: {connect_errors:?})")
            }
        ));
        if connected == 0 {
            bail!("no member could connect: {connect_errors:?}");
        }
        tokio::time::sleep(plan.settle).await;
        Ok(Self {
            plan,
            shared,
            control,
            tallies,
            members,
            room_sizes,
            phase: 0,
            watch,
            bench: ProcWatch::current(),
            setup,
            proxies,
            connect_errors,
            ramp,
        })
    }

    /// Members connected and joined.
    pub fn connected(&self) -> usize {
        self.members.iter().flatten().count()
    }

    /// Members that failed.
    pub fn connect_failures(&self) -> u64 {
        self.connect_errors.values().sum()
    }

    /// Sends at `rate` messages per second (over all senders) for `duration`, waits for the
    /// deliveries, and reports.
    pub async fn run_phase(&mut self, rate: f64, duration: Duration) -> PhaseReport {
        let phase = self.phase;
        self.phase += 1;
        let shared = self.shared.clone();
        shared.arrivals.store(0, Ordering::Relaxed);
        shared.expected.store(0, Ordering::Relaxed);
        let server_before = self.watch.as_ref().map(ProcWatch::sample);
        let bench_before = self.bench.sample();
        let machine_before = MachineSample::now();
        let began = Instant::now();
        let start = began + Duration::from_millis(10);
        let end = start + duration;
        let hard_end = end + self.plan.drain;
        shared.send_end_us.store((end - shared.start).as_micros() as u64, Ordering::Relaxed);

        let per_sender = rate / self.plan.senders.max(1) as f64;
        let mut offered = 0.0;
        let mut senders = JoinSet::new();
        for index in 0..self.plan.senders {
            let room = index % self.plan.rooms;
            offered += per_sender * self.room_sizes[room] as f64;
            let Some((_, publisher)) = &self.members[index] else { continue };
            if per_sender <= 0.0 {
                continue;
            }
            let job = SendJob {
                publisher: publisher.clone(),
                index,
                phase,
                interval: Duration::from_secs_f64(1.0 / per_sender),
                // Senders start spread over one interval, not in lockstep.
                first: start
                    + Duration::from_secs_f64(
                        (index as f64 / self.plan.senders as f64) / per_sender,
                    ),
                end,
                hard_end,
                size: self.plan.size,
                room_size: self.room_sizes[room],
                shared: shared.clone(),
            };
            senders.spawn(job.run());
        }
        if self.plan.progress {
            eprintln!(
                "  phase {phase}: {rate} msg/s for {:.0}s, offered {offered:.0} deliveries/s",
                duration.as_secs_f64()
            );
        }

        let mut next_progress = began + PROGRESS_EVERY;
        while next_progress < end {
            sleep_until(next_progress).await;
            if self.plan.progress {
                eprintln!(
                    "  t={:>5.1}s  arrivals {}  owed {}",
                    began.elapsed().as_secs_f64(),
                    shared.arrivals.load(Ordering::Relaxed),
                    shared.expected.load(Ordering::Relaxed)
                );
            }
            next_progress += PROGRESS_EVERY;
        }
        let mut sent = SendTally::default();
        while let Ok(Some(result)) =
            timeout_at(hard_end + Duration::from_secs(1), senders.join_next()).await
        {
            if let Ok(tally) = result {
                sent.merge(tally);
            }
        }
        senders.abort_all();
        // Late deliveries: until every owed one arrived, or the drain is over.
        while Instant::now() < hard_end
            && shared.arrivals.load(Ordering::Relaxed) < shared.expected.load(Ordering::Relaxed)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wall = began.elapsed();
        let server_after = self.watch.as_ref().map(ProcWatch::sample);
        let bench_after = self.bench.sample();
        let machine_after = MachineSample::now();

        let tally = self.collect(phase).await;
        let mut errors = sent.errors.clone();
        if tally.corrupt > 0 {
            *errors.entry("corrupt_delivery".into()).or_default() += tally.corrupt;
        }
        if tally.disconnected > 0 {
            *errors.entry("member_disconnected".into()).or_default() += tally.disconnected;
        }
        if sent.skipped > 0 {
            *errors.entry("send_skipped_in_flight_cap".into()).or_default() += sent.skipped;
        }
        let expected = shared.expected.load(Ordering::Relaxed);
        let achieved = tally.in_window as f64 / duration.as_secs_f64();
        let latency = Percentiles::of(&tally.latencies);
        let cpu = |before: ProcSample, after: ProcSample| after.cpu_s - before.cpu_s;
        let server_cpu = server_before.zip(server_after).map(|(b, a)| cpu(b, a));
        let machine_busy = machine_after.busy_s - machine_before.busy_s;
        let mut report = PhaseReport {
            rate,
            duration_s: duration.as_secs_f64(),
            offered_deliveries_per_s: round3(offered),
            achieved_deliveries_per_s: round3(achieved),
            sent: sent.sent,
            expected,
            delivered: tally.deliveries,
            lost: expected.saturating_sub(tally.deliveries + tally.gap_messages),
            gaps: tally.gap_messages,
            gap_events: tally.gap_events,
            reconnects: tally.reconnects,
            latency_ms: latency,
            server_cpu_s: server_cpu.map(round3),
            server_cpu_cores: server_cpu.map(|c| round3(c / wall.as_secs_f64())),
            server_rss_kib: server_after.map(|s| s.rss_kib),
            server_peak_rss_kib: server_after.map(|s| s.peak_rss_kib),
            bench_cpu_s: round3(cpu(bench_before, bench_after)),
            bench_cpu_cores: round3(cpu(bench_before, bench_after) / wall.as_secs_f64()),
            machine_busy_cores: round3(machine_busy / wall.as_secs_f64()),
            other_busy_cores: round3(
                (machine_busy - server_cpu.unwrap_or(0.0) - cpu(bench_before, bench_after))
                    .max(0.0)
                    / wall.as_secs_f64(),
            ),
            udp_rcvbuf_errors: machine_after
                .udp_rcvbuf_errors
                .saturating_sub(machine_before.udp_rcvbuf_errors),
            wall_s: round3(wall.as_secs_f64()),
            sustained: false,
            errors: errors.values().sum(),
            error_kinds: errors,
        };
        report.sustained = report.meets_criterion();
        self.wait_for_quiet().await;
        if self.plan.progress {
            eprintln!(
                "  phase {phase}: achieved {:.0}/{:.0} deliveries/s, p50 {} ms, p99 {} ms, lost {}, gaps {}{}",
                report.achieved_deliveries_per_s,
                report.offered_deliveries_per_s,
                report.latency_ms.p50,
                report.latency_ms.p99,
                report.lost,
                report.gaps,
                if report.sustained { "" } else { " — not sustained" }
            );
        }
        report
    }

    /// Waits until messages stop arriving (bounded by [`QUIET_TIMEOUT`]).
    async fn wait_for_quiet(&self) {
        let deadline = Instant::now() + QUIET_TIMEOUT;
        let mut seen = self.shared.any_arrivals.load(Ordering::Relaxed);
        while Instant::now() < deadline {
            tokio::time::sleep(QUIET).await;
            let now = self.shared.any_arrivals.load(Ordering::Relaxed);
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Asks every reader for its tally of `phase` and adds them up.
    async fn collect(&mut self, phase: u32) -> Tally {
        let _ = self.control.send(Control::Flush(phase));
        let readers = self.connected();
        let mut total = Tally::default();
        let deadline = Instant::now() + COLLECT_TIMEOUT;
        for _ in 0..readers {
            match timeout_at(deadline, self.tallies.recv()).await {
                Ok(Some(tally)) => total.merge(tally),
                _ => break,
            }
        }
        total
    }

    /// Stops the readers and closes every member, the set-up client and the proxies.
    pub async fn close(mut self) {
        let _ = self.control.send(Control::Stop);
        let publishers: Vec<Publisher> =
            self.members.drain(..).flatten().map(|(_, publisher)| publisher).collect();
        let closing = futures_util::stream::iter(publishers)
            .map(Publisher::close)
            .buffer_unordered(256)
            .collect::<Vec<()>>();
        let _ = timeout(CLOSE_TIMEOUT, closing).await;
        if let Some(setup) = self.setup.take() {
            let _ = timeout(Duration::from_secs(3), setup.close()).await;
        }
        for proxy in &self.proxies {
            proxy.shutdown().await;
        }
    }
}

/// The chatroom connector for a chatroom target.
fn chatroom_connector(target: &Target) -> ChatroomConnector {
    match target {
        Target::Chatroom { addr, ca, server_name } => {
            ChatroomConnector { addr: *addr, ca: ca.clone(), server_name: server_name.clone() }
        }
        Target::Nats { .. } => unreachable!("only called for chatroom targets"),
    }
}

/// A few random bits without a random-number crate: the low bits of the clock.
fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// What one sender did in a phase.
#[derive(Debug, Default)]
struct SendTally {
    sent: u64,
    skipped: u64,
    errors: ErrorCounts,
}

impl SendTally {
    fn merge(&mut self, other: SendTally) {
        self.sent += other.sent;
        self.skipped += other.skipped;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }
}

/// One sender's part of a phase.
struct SendJob {
    publisher: Publisher,
    index: usize,
    phase: u32,
    interval: Duration,
    first: Instant,
    end: Instant,
    hard_end: Instant,
    size: usize,
    room_size: u64,
    shared: Arc<Shared>,
}

impl SendJob {
    async fn run(self) -> SendTally {
        let mut tally = SendTally::default();
        let pending = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_SENDER));
        let mut sends: JoinSet<Result<(), String>> = JoinSet::new();
        let mut next = self.first;
        let mut count = 0u64;
        while next < self.end {
            if next > Instant::now() {
                sleep_until(next).await;
            } else if count % 64 == 0 {
                // Behind schedule: catch up, but let the readers on this thread run.
                tokio::task::yield_now().await;
            }
            next += self.interval;
            while let Some(result) = sends.try_join_next() {
                account(&mut tally, result);
            }
            let Ok(permit) = pending.clone().try_acquire_owned() else {
                tally.skipped += 1;
                continue;
            };
            let id = tag_id(self.phase, self.index, count);
            count += 1;
            let publisher = self.publisher.clone();
            let shared = self.shared.clone();
            let (size, room_size) = (self.size, self.room_size);
            sends.spawn(async move {
                let sent_us = shared.now().as_micros() as u64;
                let result = publisher.publish(MessageTag { id, sent_us }.encode(size)).await;
                if result.is_ok() {
                    shared.expected.fetch_add(room_size, Ordering::Relaxed);
                }
                drop(permit);
                result
            });
        }
        while let Ok(Some(result)) = timeout_at(self.hard_end, sends.join_next()).await {
            account(&mut tally, result);
        }
        let unanswered = sends.len() as u64;
        if unanswered > 0 {
            *tally.errors.entry("send_unanswered_by_drain_end".into()).or_default() += unanswered;
        }
        sends.abort_all();
        tally
    }
}

fn account(tally: &mut SendTally, result: Result<Result<(), String>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => tally.sent += 1,
        Ok(Err(kind)) => count_error(&mut tally.errors, kind),
        Err(_) => count_error(&mut tally.errors, "send_task_failed"),
    }
}
