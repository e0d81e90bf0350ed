//! Taking turns, percentiles, durations written for people, and what the machine was doing;
//! shared by `benches/scale.rs`, `benches/gateway.rs` and the casbin-rs peer.

use std::hint::black_box;
use std::time::{Duration, Instant};

pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Latency statistics, in nanoseconds; percentiles are nearest-rank.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: u64,
}

impl Stats {
    pub fn of(v: &[u64]) -> Self {
        let mut v = v.to_vec();
        v.sort_unstable();
        // Nearest rank: the smallest value with at least p% of the values at or below it.
        let pct = |p: f64| {
            let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
            v.get(rank.clamp(1, v.len().max(1)) - 1)
                .copied()
                .unwrap_or(0)
        };
        let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
        Self {
            n: v.len(),
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
            max: v.last().copied().unwrap_or(0),
            mean: u64::try_from(sum / (v.len().max(1) as u128)).unwrap_or(u64::MAX),
        }
    }

    /// `p50 | p90 | p99 | max | mean`
    pub fn cells(&self) -> String {
        format!(
            "{} | {} | {} | {} | {}",
            t(self.p50),
            t(self.p90),
            t(self.p99),
            t(self.max),
            t(self.mean)
        )
    }

    /// `large / small` for p50, p90, p99 and the mean, as `a | b | c | d`.
    pub fn ratios(&self, small: &Stats) -> String {
        let r = |a: u64, b: u64| format!("{:.2}×", a as f64 / (b.max(1) as f64));
        format!(
            "{} | {} | {} | {}",
            r(self.p50, small.p50),
            r(self.p90, small.p90),
            r(self.p99, small.p99),
            r(self.mean, small.mean)
        )
    }
}

/// A duration in nanoseconds, written for people: `420 ns`, `3.2 µs`, `1.25 ms`.
pub fn t(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e5 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e8 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.0} ms", ns / 1e6)
    }
}

pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// This process's resident memory, in bytes (`VmRSS` of /proc/self/status; 0 elsewhere).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// What else the machine is doing: load average and how many `rustc` are running
/// (what `pgrep -x rustc` would list).
pub fn machine() -> String {
    let rustc = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "rustc")
                })
                .count()
        })
        .unwrap_or(0);
    format!(
        "{} cores, load average {}, {rustc} rustc running",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}
/// The two data sets take turns in `slices` slices of their checks, each set going first in
/// every other slice so that neither always follows the other.
pub fn turns(slices: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..slices).flat_map(|slice| {
        let order = if slice % 2 == 0 { [0, 1] } else { [1, 0] };
        order.map(|set| (slice, set))
    })
}

pub fn slice_of<T>(v: &[T], slice: usize, slices: usize) -> &[T] {
    let chunk = v.len().div_ceil(slices);
    let start = (slice * chunk).min(v.len());
    &v[start..(start + chunk).min(v.len())]
}

/// What timing nothing costs: the median of many `Instant::now()` → `elapsed()` pairs, in
/// nanoseconds. Every latency in the tables includes it once.
pub fn timer_overhead() -> u64 {
    let v: Vec<u64> = (0..100_000)
        .map(|_| {
            let began = Instant::now();
            black_box(());
            nanos(began.elapsed())
        })
        .collect();
    Stats::of(&v).p50
}
