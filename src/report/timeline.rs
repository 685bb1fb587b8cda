//! Sessions over the capture's time, in bounded memory: counts per time bin of established,
//! incomplete and failed sessions (per cause), by each session's first packet.
//!
//! Bins start at 100 ms and widen along a ladder (100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 1 d, then
//! ×10) whenever more than [`MAX_BINS`] are in use, so a capture of seconds and one of weeks both
//! fit. Each width divides the next, so the bins do not depend on the order sessions arrive in.
//! [`Timeline::display`] merges them into at most [`DISPLAY_BINS`] bins of a round width for the
//! printers.

use super::model::SessionReport;
use crate::capture::Timestamp;
use crate::diagnose::{Cause, Outcome};
use std::collections::BTreeMap;

/// Bins kept before widening.
const MAX_BINS: usize = 4096;
/// Bins shown at most.
pub const DISPLAY_BINS: usize = 60;
const NS: i64 = 1_000_000_000;
/// The widths bins take, in nanoseconds (past the last: ×10 each time).
const LADDER: [i64; 7] = [NS / 10, NS, 10 * NS, 60 * NS, 600 * NS, 3600 * NS, 86_400 * NS];
/// Round widths offered for display, in nanoseconds.
const ROUND: [i64; 24] = [
    NS / 10,
    NS / 5,
    NS / 2,
    NS,
    2 * NS,
    5 * NS,
    10 * NS,
    15 * NS,
    30 * NS,
    60 * NS,
    120 * NS,
    300 * NS,
    600 * NS,
    900 * NS,
    1800 * NS,
    3600 * NS,
    2 * 3600 * NS,
    3 * 3600 * NS,
    6 * 3600 * NS,
    12 * 3600 * NS,
    86_400 * NS,
    2 * 86_400 * NS,
    7 * 86_400 * NS,
    30 * 86_400 * NS,
];

/// The series of a bin, in this order.
pub const SERIES: [&str; 6] = [
    "timeout",
    "protocol",
    "certificate",
    "cipher",
    "established",
    "incomplete",
];

/// Counts per series in one bin.
pub type Counts = [u64; 6];

fn series(s: &SessionReport) -> usize {
    match (s.outcome, s.cause) {
        (Outcome::Failed, Some(Cause::Timeout)) => 0,
        (Outcome::Failed, Some(Cause::Protocol)) => 1,
        (Outcome::Failed, Some(Cause::Certificate)) => 2,
        (Outcome::Failed, Some(Cause::Cipher)) => 3,
        (Outcome::Established, _) => 4,
        _ => 5,
    }
}

/// Sessions per time bin.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Index into the width ladder.
    level: u32,
    bins: BTreeMap<i64, Counts>,
}

/// One bin as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    pub start: Timestamp,
    pub counts: Counts,
}

/// The bins to show: a round width, and every bin from the first session's to the last's.
#[derive(Debug, Clone)]
pub struct Display {
    /// Width of a bin in nanoseconds.
    pub width: i64,
    pub bins: Vec<Bin>,
}

impl Display {
    /// The largest total of one bin.
    pub fn peak(&self) -> u64 {
        self.bins.iter().map(|b| b.counts.iter().sum()).max().unwrap_or(0)
    }
}

fn width_of(level: u32) -> i64 {
    match LADDER.get(level as usize) {
        Some(w) => *w,
        None => {
            let past = level as usize - (LADDER.len() - 1);
            (0..past).fold(86_400 * NS, |w, _| w.saturating_mul(10))
        }
    }
}

impl Timeline {
    /// Counts one session (no-data connections are not sessions).
    pub fn add(&mut self, s: &SessionReport) {
        if s.no_data {
            return;
        }
        self.count(s.start, series(s));
    }

    fn count(&mut self, at: Timestamp, series: usize) {
        let key = at.0.div_euclid(width_of(self.level));
        if let Some(c) = self.bins.entry(key).or_default().get_mut(series) {
            *c += 1;
        }
        while self.bins.len() > MAX_BINS && self.level < 20 {
            let factor = width_of(self.level + 1) / width_of(self.level);
            self.level += 1;
            let old = std::mem::take(&mut self.bins);
            for (k, c) in old {
                let e = self.bins.entry(k.div_euclid(factor)).or_default();
                for (a, b) in e.iter_mut().zip(c) {
                    *a += b;
                }
            }
        }
    }

    /// Whether no session was counted.
    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// At most [`DISPLAY_BINS`] bins of a round width (a multiple of the kept width) covering the
    /// first to the last session, empty bins included.
    pub fn display(&self) -> Display {
        let width = width_of(self.level);
        let (Some((first, _)), Some((last, _))) = (self.bins.first_key_value(), self.bins.last_key_value()) else {
            return Display {
                width,
                bins: Vec::new(),
            };
        };
        let span = last.saturating_sub(*first).saturating_add(1).saturating_mul(width);
        let shown = ROUND
            .iter()
            .copied()
            .find(|w| *w >= width && w % width == 0 && span / w < DISPLAY_BINS as i64)
            .unwrap_or_else(|| {
                // Beyond the round widths: a multiple of the kept width.
                let k = (span / width) / (DISPLAY_BINS as i64 - 1) + 1;
                width.saturating_mul(k)
            });
        let start = first.saturating_mul(width).div_euclid(shown);
        let end = last.saturating_mul(width).div_euclid(shown);
        let mut bins: Vec<Bin> = (start..=end)
            .take(DISPLAY_BINS + 1)
            .map(|k| Bin {
                start: Timestamp(k.saturating_mul(shown)),
                counts: [0; 6],
            })
            .collect();
        for (k, c) in &self.bins {
            let i = k.saturating_mul(width).div_euclid(shown).saturating_sub(start);
            if let Some(b) = usize::try_from(i).ok().and_then(|i| bins.get_mut(i)) {
                for (a, n) in b.counts.iter_mut().zip(c) {
                    *a += n;
                }
            }
        }
        Display { width: shown, bins }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_widen_with_the_span_and_stay_round_and_bounded() {
        for (n, step) in [
            (10i64, NS),
            (5000, 60 * NS),
            (20_000, 3600 * NS),
            (3, 400 * 86_400 * NS),
        ] {
            let mut t = Timeline::default();
            let t0 = 1_700_000_000 * NS;
            for i in 0..n {
                t.count(Timestamp(t0 + i * step), (i % 6) as usize);
            }
            assert!(t.bins.len() <= MAX_BINS);
            let d = t.display();
            assert!(
                !d.bins.is_empty() && d.bins.len() <= DISPLAY_BINS,
                "{n}: {}",
                d.bins.len()
            );
            let total: u64 = d.bins.iter().flat_map(|b| b.counts).sum();
            assert_eq!(total, n as u64, "every session in a shown bin");
            assert!(d.peak() >= 1);
            assert_eq!(d.width % width_of(t.level), 0);
        }
        // Ten sessions one second apart: 1 s bins (or less), not a single bin.
        let mut t = Timeline::default();
        for i in 0..10 {
            t.count(Timestamp(i * NS), 4);
        }
        assert!(t.display().bins.len() >= 10);
    }
}
