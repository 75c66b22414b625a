//! When a link's timeline holds it down: the windows recovery is measured from.

use std::time::Duration;

use crate::model::Timeline;

/// The windows in which `timeline` takes the link down (blackouts, flap cycles and phases that
/// set `down`), merged where they touch, that end before `until`: an outage that ends later
/// has no traffic after it to recover. Phases that take down one direction count too.
pub fn outages(timeline: &Timeline, until: Duration) -> Vec<(Duration, Duration)> {
    let mut windows: Vec<(Duration, Duration)> =
        timeline.blackouts.iter().map(|b| (b.at, b.at.saturating_add(b.duration))).collect();
    if let Some(flap) = timeline.flap
        && !flap.period.is_zero()
        && !flap.down_for.is_zero()
    {
        let stop = flap.to.unwrap_or(until).min(until);
        let mut start = flap.from;
        while start < stop {
            windows.push((start, (start + flap.down_for).min(stop)));
            start += flap.period;
        }
    }
    for phase in &timeline.phases {
        if phase.set.down == Some(true) {
            windows.push((phase.from, phase.to.unwrap_or(Duration::MAX)));
        }
    }
    windows.sort();
    let mut merged: Vec<(Duration, Duration)> = Vec::new();
    for (from, to) in windows {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged.retain(|&(from, to)| to > from && to < until);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Blackout, Flap, ImpairmentOverride, Phase, Target};

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn blackouts_flaps_and_down_phases_merge_and_clip() {
        let timeline = Timeline {
            blackouts: vec![
                Blackout { at: s(2), duration: s(2) },
                Blackout { at: s(3), duration: s(3) },
                Blackout { at: s(28), duration: s(5) },
            ],
            flap: Some(Flap { period: s(2), down_for: s(1), from: s(10), to: Some(s(15)) }),
            phases: vec![Phase {
                from: s(20),
                to: Some(s(22)),
                applies_to: Target::Up,
                set: ImpairmentOverride { down: Some(true), ..ImpairmentOverride::default() },
            }],
            ..Timeline::default()
        };
        assert_eq!(
            outages(&timeline, s(30)),
            vec![(s(2), s(6)), (s(10), s(11)), (s(12), s(13)), (s(14), s(15)), (s(20), s(22))]
        );
        assert!(outages(&Timeline::default(), s(30)).is_empty());
    }
}
