//! Capture-wide accounting on the thread that reads packets: frame numbers, the capture's clock
//! (with damaged timestamps held back until later frames confirm them), bytes and anomalies.

use crate::capture::{Packet, Timestamp};
use crate::flow::At;
use crate::limits;
use std::collections::BTreeMap;

/// The capture's clock before a frame time has been confirmed.
const NO_CLOCK: Timestamp = Timestamp(i64::MIN);
/// Frames after a jump that must agree with it before the clock follows (see `Accounting::frame`).
const JUMP_AGREEMENT: u8 = 2;
/// Jumps waiting at once; past it the oldest is taken.
const PENDING_MAX: usize = 4;

/// Capture-wide counters kept by the thread that reads packets.
#[derive(Default)]
pub(super) struct Accounting {
    pub(super) frame: u64,
    pub(super) first_ts: Option<Timestamp>,
    /// The capture's clock: the latest frame time, jumps confirmed (see [`Accounting::frame`]).
    pub(super) last_ts: Timestamp,
    /// Frames stamped more than [`limits::TIMESTAMP_JUMP_NS`] ahead of the clock, each with the
    /// number of later frames that agreed with it: the clock follows once [`JUMP_AGREEMENT`] do.
    pub(super) pending: Vec<(Timestamp, u8)>,
    pub(super) bytes: u64,
    pub(super) tcp_on_ports: u64,
    pub(super) anomalies: BTreeMap<&'static str, u64>,
}

impl Accounting {
    /// Counts one frame and returns its number and time.
    ///
    /// The clock is the latest frame time, except that a frame stamped more than
    /// [`limits::TIMESTAMP_JUMP_NS`] ahead of it moves it only once the next [`JUMP_AGREEMENT`]
    /// frames agree (none falls back more than that below it); a frame that one of them falls
    /// back below stood alone ahead of its neighbours: a damaged time, counted as
    /// `timestamp_outlier` and never on the clock. Two, because a damaged record header can
    /// be followed by a misread one before the reader finds its way again. The first frame's
    /// time is held the same way.
    pub(super) fn frame(&mut self, p: &Packet<'_>) -> At {
        self.frame += 1;
        self.bytes += p.data.len() as u64;
        if self.first_ts.is_none() {
            self.first_ts = Some(p.ts);
            self.last_ts = NO_CLOCK;
            self.pending.reserve(PENDING_MAX);
        } else if !self.pending.is_empty() {
            self.settle(p.ts);
        }
        if p.ts.0 > self.last_ts.0.saturating_add(limits::TIMESTAMP_JUMP_NS) {
            if self.pending.len() >= PENDING_MAX {
                // Jump after jump: the oldest has waited long enough.
                let (oldest, _) = self.pending.remove(0);
                self.last_ts = self.last_ts.max(oldest);
            }
            self.pending.push((p.ts, 0));
        } else if p.ts < self.last_ts {
            *self.anomalies.entry("timestamp_went_backwards").or_default() += 1;
        } else {
            self.last_ts = p.ts;
        }
        At {
            frame: self.frame,
            ts: p.ts,
        }
    }

    /// Lets the frame at `ts` agree with the pending jumps or refute them.
    fn settle(&mut self, ts: Timestamp) {
        // Until a time is confirmed, the capture's start is the earliest time still pending.
        let first = (self.last_ts == NO_CLOCK).then_some(self.first_ts).flatten();
        let (mut clock, mut outliers, mut first_refuted) = (self.last_ts, 0, false);
        self.pending.retain_mut(|(jump, agreed)| {
            if ts.0 < jump.0.saturating_sub(limits::TIMESTAMP_JUMP_NS) {
                outliers += 1;
                first_refuted |= first == Some(*jump);
                return false;
            }
            *agreed += 1;
            if *agreed >= JUMP_AGREEMENT {
                clock = clock.max(*jump);
                return false;
            }
            true
        });
        self.last_ts = clock;
        if outliers > 0 {
            *self.anomalies.entry("timestamp_outlier").or_default() += outliers;
        }
        if first_refuted {
            // The capture starts with the first frame whose time holds.
            self.first_ts = self.pending.first().map(|(t, _)| *t).or(Some(ts));
        }
    }

    pub(super) fn anomaly(&mut self, key: &'static str) {
        *self.anomalies.entry(key).or_default() += 1;
    }

    /// The capture's end: the clock, or the jumps ahead of it that nothing came after to confirm
    /// or refute: taken as real up to [`limits::TIMESTAMP_LEAP_NS`] past the clock, as damaged
    /// times beyond (a capture whose frames are all pending ends at the first of them).
    pub(super) fn end(&self) -> Timestamp {
        let mut end = self.last_ts;
        for &(jump, _) in &self.pending {
            if end == NO_CLOCK || jump.0.saturating_sub(end.0) <= limits::TIMESTAMP_LEAP_NS {
                end = end.max(jump);
            }
        }
        end
    }
}
