//! The model's statistics and schedules, checked by stepping time by hand.
//!
//! Rates are measured over 100 000 packets and must match their parameter within ±0.5
//! percentage points. For a rate p the measured fraction has a standard deviation of
//! sqrt(p(1-p)/n): 0.095 pp at p = 10 %, 0.044 pp at 2 %, so ±0.5 pp is at least 5.3 σ for the
//! rates used here. Being off by that much means the model is wrong, not unlucky (and the seeds
//! are fixed, so the tests cannot flake either way).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::*;

const N: usize = 100_000;
/// ±0.5 percentage points, ≥ 5 σ for p ≤ 10 % at n = 100 000 (see the module docs).
const RATE_TOLERANCE: f64 = 0.005;
const SEED: u64 = 0x5eed;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn model(link: LinkConfig, start: Instant) -> Model {
    Model::new(link, SEED, start).expect("valid configuration")
}

fn symmetric(impairment: Impairment) -> LinkConfig {
    LinkConfig::symmetric(impairment)
}

/// Offers `n` packets of `len` bytes, one every `spacing`, and returns each one's send time and
/// decision.
fn offer(
    model: &mut Model,
    direction: Direction,
    start: Instant,
    n: usize,
    spacing: Duration,
    len: usize,
) -> Vec<(Instant, Decision)> {
    let mut packet = vec![0u8; len];
    (0..n)
        .map(|i| {
            let now = start + spacing * i as u32;
            (now, model.decide(direction, now, &mut packet))
        })
        .collect()
}

fn delivered_at(decision: &Decision) -> Option<Instant> {
    match decision {
        Decision::Deliver { at, .. } => Some(*at),
        Decision::Drop(_) => None,
    }
}

fn assert_rate(what: &str, count: usize, n: usize, expected: f64) {
    let measured = count as f64 / n as f64;
    eprintln!("{what}: measured {measured:.5}, expected {expected}");
    assert!(
        (measured - expected).abs() <= RATE_TOLERANCE,
        "{what}: measured {measured:.5}, expected {expected} ± {RATE_TOLERANCE}"
    );
}

/// Lengths of the runs of consecutive drops.
fn drop_runs(decisions: &[(Instant, Decision)]) -> Vec<usize> {
    let mut runs = Vec::new();
    let mut run = 0;
    for (_, decision) in decisions {
        if matches!(decision, Decision::Drop(_)) {
            run += 1;
        } else if run > 0 {
            runs.push(run);
            run = 0;
        }
    }
    if run > 0 {
        runs.push(run);
    }
    runs
}

#[test]
fn a_default_link_is_perfect() {
    let start = Instant::now();
    let mut m = model(LinkConfig::default(), start);
    for (now, decision) in offer(&mut m, Direction::Up, start, 1000, ms(1), 100) {
        assert_eq!(decision, Decision::Deliver { at: now, copies: vec![], corrupted: false });
    }
    assert_eq!(m.stats().up.passed, 1000);
    assert_eq!(m.stats().down, DirectionStats::default());
}

#[test]
fn random_loss_matches_its_rate() {
    for loss in [0.02, 0.10] {
        let start = Instant::now();
        let mut m = model(symmetric(Impairment { loss, ..Impairment::default() }), start);
        let decisions = offer(&mut m, Direction::Down, start, N, ms(1), 100);
        let dropped =
            decisions.iter().filter(|(_, d)| *d == Decision::Drop(DropReason::Random)).count();
        assert_rate("loss", dropped, N, loss);
        let stats = m.stats().down;
        assert_eq!(stats.dropped_random as usize, dropped);
        assert_eq!(stats.packets_in, stats.passed + stats.dropped());
    }
}

#[test]
fn duplication_matches_its_rate_and_the_copy_comes_later() {
    let start = Instant::now();
    let impairment = Impairment { duplicate: 0.05, delay: ms(20), ..Impairment::default() };
    let mut m = model(symmetric(impairment), start);
    let mut duplicated = 0;
    for (_, decision) in offer(&mut m, Direction::Up, start, N, ms(1), 100) {
        let Decision::Deliver { at, copies, .. } = decision else { panic!("nothing is lost") };
        if !copies.is_empty() {
            assert_eq!(copies, vec![at + DUPLICATE_SPACING]);
            duplicated += 1;
        }
    }
    assert_rate("duplicate", duplicated, N, 0.05);
    assert_eq!(m.stats().up.duplicated, duplicated as u64);
}

#[test]
fn reordering_matches_its_rate_and_held_packets_are_overtaken() {
    let start = Instant::now();
    let impairment = Impairment { reorder: 0.05, delay: ms(20), ..Impairment::default() };
    assert_eq!(impairment.effective_reorder_delay(), ms(20));
    let mut m = model(symmetric(impairment), start);
    let decisions = offer(&mut m, Direction::Up, start, N, ms(1), 100);
    let arrivals: Vec<Instant> = decisions.iter().filter_map(|(_, d)| delivered_at(d)).collect();
    // A packet is out of order if some later-sent packet arrives before it.
    let mut overtaken = 0;
    let mut earliest_later: Option<Instant> = None;
    for &at in arrivals.iter().rev() {
        if earliest_later.is_some_and(|later| later < at) {
            overtaken += 1;
        }
        earliest_later = Some(earliest_later.map_or(at, |later| later.min(at)));
    }
    let held = m.stats().up.reordered as usize;
    assert_rate("reorder (held)", held, N, 0.05);
    assert_rate("reorder (overtaken)", overtaken, N, 0.05);
}

#[test]
fn corruption_matches_its_rate_and_flips_one_to_three_bytes() {
    let start = Instant::now();
    let mut m = model(symmetric(Impairment { corrupt: 0.05, ..Impairment::default() }), start);
    let mut flips_seen = [0usize; 4];
    for i in 0..N {
        let mut packet = vec![0u8; 100];
        let decision = m.decide(Direction::Up, start + ms(i as u64), &mut packet);
        let flipped = packet.iter().filter(|&&b| b != 0).count();
        let Decision::Deliver { corrupted, .. } = decision else { panic!("nothing is lost") };
        assert_eq!(corrupted, flipped > 0, "the flag says whether bytes changed");
        assert!(flipped <= 3);
        flips_seen[flipped] += 1;
    }
    let corrupted = N - flips_seen[0];
    assert_rate("corrupt", corrupted, N, 0.05);
    assert!(flips_seen[1..].iter().all(|&n| n > 0), "1, 2 and 3 flips all occur: {flips_seen:?}");
    // An empty packet has nothing to corrupt.
    let decision = m.decide(Direction::Up, start + ms(N as u64), &mut []);
    assert!(matches!(decision, Decision::Deliver { corrupted: false, .. }));
}

#[test]
fn gilbert_elliott_bursts_last_one_over_r_packets() {
    // 500 000 packets with p = 1 %, r = 25 %: ~4 800 bursts of geometric length (mean 4,
    // variance (1-r)/r² = 12), so the mean's standard deviation is ~0.05 packets; ±0.25 is 5 σ.
    // The loss fraction p/(p+r) ≈ 3.85 % has a coefficient of variation of ~2 % over that many
    // bursts; ±10 % relative is 5 σ.
    let (p, r, n) = (0.01, 0.25, 500_000);
    let start = Instant::now();
    let impairment = Impairment { ge_p: p, ge_r: r, ..Impairment::default() };
    let mut m = model(symmetric(impairment), start);
    let decisions = offer(&mut m, Direction::Up, start, n, ms(1), 10);
    let runs = drop_runs(&decisions);
    let mean = runs.iter().sum::<usize>() as f64 / runs.len() as f64;
    eprintln!("{} bursts, mean length {mean:.3}", runs.len());
    assert!((mean - 1.0 / r).abs() <= 0.25, "mean burst {mean:.3}, expected {}", 1.0 / r);
    let loss = m.stats().up.dropped_burst as f64 / n as f64;
    let expected = p / (p + r);
    eprintln!("burst loss {loss:.5}, expected {expected:.5}");
    assert!((loss / expected - 1.0).abs() <= 0.10, "loss {loss:.4}, expected {expected:.4}");
    assert_eq!(m.stats().up.dropped_random, 0);
}

#[test]
fn the_cap_on_consecutive_drops_holds() {
    let start = Instant::now();
    // Long bursts (mean 20 packets) plus 30 % random loss: without the cap, runs far beyond 3.
    let impairment = Impairment {
        loss: 0.3,
        ge_p: 0.05,
        ge_r: 0.05,
        max_consecutive_drops: Some(3),
        ..Impairment::default()
    };
    let mut m = model(symmetric(impairment), start);
    let decisions = offer(&mut m, Direction::Down, start, N, ms(1), 10);
    let runs = drop_runs(&decisions);
    assert_eq!(runs.iter().max(), Some(&3), "runs reach the cap and never pass it");
    assert!(m.stats().down.loss_capped > 0);

    let mut uncapped =
        model(symmetric(Impairment { max_consecutive_drops: None, ..impairment }), start);
    let longest = drop_runs(&offer(&mut uncapped, Direction::Down, start, N, ms(1), 10));
    assert!(longest.iter().max() > Some(&10), "the same link without the cap has long bursts");
}

#[test]
fn the_rate_limit_bounds_throughput() {
    // 1000 kbit/s = 125 000 B/s; 1250-byte packets take 10 ms each. Offered: one every 5 ms,
    // twice the capacity, for 10 s.
    let start = Instant::now();
    let impairment = Impairment { rate_kbps: Some(1000), ..Impairment::default() };
    let mut m = model(symmetric(impairment), start);
    let decisions = offer(&mut m, Direction::Up, start, 2000, ms(5), 1250);
    let mut bytes_per_second = [0u64; 12];
    for at in decisions.iter().filter_map(|(_, d)| delivered_at(d)) {
        let second = (at - start).as_secs() as usize;
        bytes_per_second[second] += 1250;
    }
    for (second, &bytes) in bytes_per_second.iter().enumerate() {
        assert!(bytes <= 125_000, "second {second}: {bytes} bytes exceeds the rate");
    }
    // The link stays busy: every full second carries what the rate allows.
    assert!(bytes_per_second[1..10].iter().all(|&b| b >= 125_000 - 1250), "{bytes_per_second:?}");
    let stats = m.stats().up;
    assert!(stats.dropped_queue > 0, "overload overflows the queue");
    assert_eq!(stats.max_queue_depth, u64::from(DEFAULT_QUEUE_PACKETS));
    assert_eq!(stats.packets_in, stats.passed + stats.dropped_queue);
}

#[test]
fn queueing_delay_grows_with_offered_load() {
    // Poisson arrivals of 1250-byte packets on a 1000 kbit/s link (capacity 100 packets/s).
    let mean_delay = |load: f64| {
        let start = Instant::now();
        let impairment = Impairment { rate_kbps: Some(1000), ..Impairment::default() };
        let mut m = model(symmetric(impairment), start);
        let mut arrivals = ChaCha8Rng::seed_from_u64(7);
        let mut now = start;
        let mut total = Duration::ZERO;
        let mut delivered = 0u32;
        let mut packet = vec![0u8; 1250];
        for _ in 0..5000 {
            let u = (arrivals.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            now += Duration::from_secs_f64(-(1.0 - u).ln() / (100.0 * load));
            if let Some(at) = delivered_at(&m.decide(Direction::Up, now, &mut packet)) {
                total += at - now;
                delivered += 1;
            }
        }
        (total / delivered, m.stats().up)
    };
    let (light, light_stats) = mean_delay(0.3);
    let (heavy, _) = mean_delay(0.9);
    let (overload, overload_stats) = mean_delay(1.5);
    eprintln!("mean delay at load 0.3: {light:?}, 0.9: {heavy:?}, 1.5: {overload:?}");
    // Poisson arrivals, fixed service time: an M/D/1 queue, whose mean time in system is
    // S + ρS / (2(1-ρ)) = 10 + 2.14 ms at ρ = 0.3 (Pollaczek-Khinchine).
    let expected = 10.0 + 0.3 * 10.0 / (2.0 * 0.7);
    let measured = light.as_secs_f64() * 1000.0;
    assert!((measured / expected - 1.0).abs() < 0.05, "{measured:.2} ms, M/D/1 says {expected:.2}");
    assert!(light < heavy && heavy < overload, "{light:?} < {heavy:?} < {overload:?}");
    assert_eq!(light_stats.dropped_queue, 0);
    assert!(overload_stats.dropped_queue > 0);
    // A full queue of 64 packets at 10 ms each: ~640 ms of bufferbloat, never more.
    assert!(overload > ms(400) && overload <= ms(650), "{overload:?}");
}

#[test]
fn jitter_is_uniform_around_the_delay() {
    let start = Instant::now();
    let impairment = Impairment { delay: ms(50), jitter: ms(10), ..Impairment::default() };
    let mut m = model(symmetric(impairment), start);
    let mut total = Duration::ZERO;
    for (now, decision) in offer(&mut m, Direction::Up, start, N, ms(1), 10) {
        let delay = delivered_at(&decision).expect("nothing is lost") - now;
        assert!(delay >= ms(40) && delay <= ms(60), "{delay:?}");
        total += delay;
    }
    // Uniform over ±10 ms has σ = 5.8 ms; the mean of 100 000 has σ = 0.018 ms; 0.1 ms is 5 σ.
    let mean = total / N as u32;
    assert!(mean.abs_diff(ms(50)) <= Duration::from_micros(100), "mean delay {mean:?}");
}

#[test]
fn a_blackout_drops_everything_in_its_window_and_nothing_outside() {
    let start = Instant::now();
    let mut link = LinkConfig::default();
    link.timeline.blackouts.push(Blackout { at: ms(1000), duration: ms(2000) });
    let mut m = model(link, start);
    for direction in Direction::ALL {
        for (now, decision) in offer(&mut m, direction, start, 4000, ms(1), 10) {
            let in_window = (ms(1000)..ms(3000)).contains(&(now - start));
            let dropped = decision == Decision::Drop(DropReason::Blackout);
            assert_eq!(dropped, in_window, "{direction:?} at {:?}", now - start);
        }
    }
    assert_eq!(m.stats().up.dropped_blackout, 2000);
    assert_eq!(m.stats().down.dropped_blackout, 2000);
}

#[test]
fn a_flapping_link_is_down_at_the_start_of_each_period() {
    let start = Instant::now();
    let mut link = LinkConfig::default();
    link.timeline.flap =
        Some(Flap { period: ms(1000), down_for: ms(250), from: ms(500), to: Some(ms(3500)) });
    let mut m = model(link, start);
    for (now, decision) in offer(&mut m, Direction::Up, start, 5000, ms(1), 10) {
        let t = (now - start).as_millis() as u64;
        let down = (500..3500).contains(&t) && (t - 500) % 1000 < 250;
        assert_eq!(decision == Decision::Drop(DropReason::Blackout), down, "at {t} ms");
    }
}

#[test]
fn blackouts_on_demand_and_set_down() {
    let start = Instant::now();
    let mut m = model(LinkConfig::default(), start);
    let mut packet = [0u8; 10];
    m.blackout_now(start + ms(100), ms(50));
    assert!(matches!(
        m.decide(Direction::Up, start + ms(99), &mut packet),
        Decision::Deliver { .. }
    ));
    assert_eq!(
        m.decide(Direction::Up, start + ms(100), &mut packet),
        Decision::Drop(DropReason::Blackout)
    );
    assert_eq!(
        m.decide(Direction::Down, start + ms(149), &mut packet),
        Decision::Drop(DropReason::Blackout)
    );
    assert!(matches!(
        m.decide(Direction::Up, start + ms(150), &mut packet),
        Decision::Deliver { .. }
    ));
    m.set_down(true);
    assert_eq!(
        m.decide(Direction::Down, start + ms(200), &mut packet),
        Decision::Drop(DropReason::Blackout)
    );
    m.set_down(false);
    assert!(matches!(
        m.decide(Direction::Down, start + ms(201), &mut packet),
        Decision::Deliver { .. }
    ));
}

#[test]
fn timeline_phases_switch_at_the_right_times() {
    let start = Instant::now();
    let mut link = LinkConfig::default();
    link.timeline.phases = vec![
        Phase {
            from: ms(1000),
            to: Some(ms(2000)),
            applies_to: Target::Both,
            set: ImpairmentOverride { loss: Some(1.0), ..ImpairmentOverride::default() },
        },
        Phase {
            from: ms(2000),
            to: None,
            applies_to: Target::Up,
            set: ImpairmentOverride { delay: Some(ms(100)), ..ImpairmentOverride::default() },
        },
    ];
    let mut m = model(link, start);
    let mut packet = [0u8; 10];
    let mut at = |m: &mut Model, direction, t: u64| m.decide(direction, start + ms(t), &mut packet);
    let delivered =
        |t: u64| Decision::Deliver { at: start + ms(t), copies: vec![], corrupted: false };
    assert_eq!(at(&mut m, Direction::Up, 999), delivered(999));
    assert_eq!(at(&mut m, Direction::Up, 1000), Decision::Drop(DropReason::Random));
    assert_eq!(at(&mut m, Direction::Down, 1999), Decision::Drop(DropReason::Random));
    assert_eq!(at(&mut m, Direction::Up, 2000), delivered(2100));
    assert_eq!(at(&mut m, Direction::Down, 2000), delivered(2000));
    assert_eq!(m.impairment_at(Direction::Up, start + ms(1500)).loss, 1.0);
    assert_eq!(m.impairment_at(Direction::Up, start + ms(5000)).delay, ms(100));
    assert_eq!(m.impairment_at(Direction::Down, start + ms(5000)), Impairment::default());
}

#[test]
fn set_impairment_replaces_the_base_of_the_targeted_directions() {
    let start = Instant::now();
    let mut m = model(LinkConfig::default(), start);
    let lossy = Impairment { loss: 1.0, ..Impairment::default() };
    m.set_impairment(Target::Down, lossy).expect("valid");
    let mut packet = [0u8; 10];
    assert!(matches!(m.decide(Direction::Up, start, &mut packet), Decision::Deliver { .. }));
    assert_eq!(m.decide(Direction::Down, start, &mut packet), Decision::Drop(DropReason::Random));
    assert_eq!(m.base_impairment(Direction::Down), lossy);
    let invalid = Impairment { loss: 2.0, ..Impairment::default() };
    assert!(matches!(
        m.set_impairment(Target::Both, invalid),
        Err(ConfigError::Probability { name: "loss", .. })
    ));
}

fn everything() -> LinkConfig {
    let impairment = Impairment {
        loss: 0.05,
        ge_p: 0.01,
        ge_r: 0.3,
        delay: ms(30),
        jitter: ms(5),
        reorder: 0.02,
        duplicate: 0.02,
        corrupt: 0.02,
        rate_kbps: Some(5000),
        ..Impairment::default()
    };
    LinkConfig::symmetric(impairment)
}

/// Alternates directions, so that the two streams are exercised together.
fn run_everything(seed: u64, start: Instant) -> (Vec<Decision>, Vec<Vec<u8>>) {
    let mut m = Model::new(everything(), seed, start).expect("valid");
    let mut decisions = Vec::new();
    let mut payloads = Vec::new();
    for i in 0..20_000u32 {
        let direction = if i % 2 == 0 { Direction::Up } else { Direction::Down };
        let mut packet: Vec<u8> = (0..200).map(|b| (b + i) as u8).collect();
        decisions.push(m.decide(
            direction,
            start + Duration::from_micros(u64::from(i) * 500),
            &mut packet,
        ));
        payloads.push(packet);
    }
    (decisions, payloads)
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let start = Instant::now();
    let first = run_everything(42, start);
    assert_eq!(first, run_everything(42, start));
    let other = run_everything(43, start);
    assert_ne!(first.0, other.0);
    assert_ne!(first.1, other.1);
}

#[test]
fn changing_one_knob_leaves_the_others_outcomes_alone() {
    // Every packet takes the same draws, so the same packets are lost whatever the delay.
    let start = Instant::now();
    let lost = |delay| {
        let impairment = Impairment { loss: 0.1, delay, ..Impairment::default() };
        let mut m = model(symmetric(impairment), start);
        offer(&mut m, Direction::Up, start, 10_000, ms(1), 10)
            .into_iter()
            .map(|(_, d)| matches!(d, Decision::Drop(_)))
            .collect::<Vec<_>>()
    };
    assert_eq!(lost(ms(0)), lost(ms(300)));
}

#[test]
fn rebinds_follow_the_schedule_and_alternate_addresses() {
    let start = Instant::now();
    let extra = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut link = LinkConfig::default();
    link.timeline.rebind_at = vec![ms(3000), ms(1000)];
    link.timeline.rebind_every = Some(ms(5000));
    link.timeline.rebind_address = Some(extra);
    let mut m = model(link, start);
    assert_eq!(m.next_rebind_at(), Some(start + ms(1000)));
    assert_eq!(m.rebind_due(start + ms(999)), None);
    assert_eq!(m.rebind_due(start + ms(1000)), Some(RebindKind::Address(extra)));
    assert_eq!(m.rebind_due(start + ms(1001)), None);
    assert_eq!(m.next_rebind_at(), Some(start + ms(3000)));
    assert_eq!(m.rebind_due(start + ms(3000)), Some(RebindKind::Port));
    assert_eq!(m.rebind_due(start + ms(5000)), Some(RebindKind::Address(extra)));
    assert_eq!(m.rebind_now(), RebindKind::Port);
    // Polled late: one rebind for the missed ones, then back on the 5 s grid.
    assert_eq!(m.rebind_due(start + ms(27_000)), Some(RebindKind::Address(extra)));
    assert_eq!(m.next_rebind_at(), Some(start + ms(30_000)));
    assert_eq!(m.stats().rebinds, 5);
}

#[test]
fn invalid_configurations_are_refused() {
    let start = Instant::now();
    let bad = |link: LinkConfig| Model::new(link, 0, start).err();
    assert!(matches!(
        bad(symmetric(Impairment { duplicate: -0.1, ..Impairment::default() })),
        Some(ConfigError::Probability { name: "duplicate", .. })
    ));
    assert_eq!(
        bad(symmetric(Impairment { rate_kbps: Some(0), ..Impairment::default() })),
        Some(ConfigError::ZeroRate)
    );
    assert!(matches!(
        bad(symmetric(Impairment { delay: Duration::from_secs(3600), ..Impairment::default() })),
        Some(ConfigError::TooLong { name: "delay", .. })
    ));
    let mut link = LinkConfig::default();
    link.timeline.rebind_every = Some(Duration::ZERO);
    assert_eq!(bad(link), Some(ConfigError::ZeroRebindInterval));
    let mut link = LinkConfig::default();
    link.timeline.flap = Some(Flap { period: ms(100), down_for: ms(200), from: ms(0), to: None });
    assert_eq!(bad(link), Some(ConfigError::Flap));
    let mut link = LinkConfig::default();
    link.timeline.phases.push(Phase {
        from: ms(10),
        to: Some(ms(10)),
        applies_to: Target::Both,
        set: ImpairmentOverride::default(),
    });
    assert_eq!(bad(link), Some(ConfigError::EmptyPhase { index: 0 }));
}

#[test]
fn a_link_reads_from_a_scenario_file_and_round_trips() {
    let text = r#"
        [up]
        loss = "2%"
        delay = "50ms"
        max_consecutive_drops = 3

        [down]
        loss = 0.3
        rate_kbps = 750
        jitter = "10ms"

        [timeline]
        rebind_every = "5s"
        rebind_address = "127.0.0.2"
        blackouts = [{ at = "10s", duration = "2s" }]
        flap = { period = "1m", down_for = "500ms" }

        [[timeline.phases]]
        from = "1s"
        to = "1.5s"
        applies_to = "down"
        set = { loss = "100%", delay = "250ms" }
    "#;
    let link: LinkConfig = toml::from_str(text).expect("parses");
    assert_eq!(link.up.loss, 0.02);
    assert_eq!(link.up.delay, ms(50));
    assert_eq!(link.up.max_consecutive_drops, Some(3));
    assert_eq!(link.down.rate_kbps, Some(750));
    assert_eq!(link.down.queue_packets, DEFAULT_QUEUE_PACKETS);
    assert_eq!(link.timeline.blackouts, vec![Blackout { at: ms(10_000), duration: ms(2000) }]);
    assert_eq!(link.timeline.phases[0].to, Some(ms(1500)));
    assert_eq!(link.timeline.phases[0].set.loss, Some(1.0));
    assert_eq!(link.timeline.flap.map(|f| f.from), Some(Duration::ZERO));
    link.validate().expect("valid");

    let json = serde_json::to_string(&link).expect("serializes");
    assert_eq!(serde_json::from_str::<LinkConfig>(&json).expect("reads back"), link);
    let written = toml::to_string(&link).expect("serializes to toml");
    assert_eq!(toml::from_str::<LinkConfig>(&written).expect("reads back"), link);

    for typo in ["[up]\nlos = 0.1", "[up]\nloss = \"150%\"", "[up]\ndelay = \"5\""] {
        assert!(toml::from_str::<LinkConfig>(typo).is_err(), "{typo:?} should be refused");
    }
}
