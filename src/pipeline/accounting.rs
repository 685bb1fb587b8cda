//! Capture-wide accounting kept by the thread that reads packets: frame numbers, the capture's
//! clock (with damaged timestamps held back), bytes and anomalies; at the end, the merge of the
//! workers' results into the capture summary.

use super::{CoreResult, Options};
use crate::capture::{Packet, Timestamp};
use crate::diagnose::{self, Context, ServerProfiles};
use crate::flow::{At, EndKind};
use crate::limits;
use crate::report::model::{CaptureSummary, SessionReport};
use std::collections::BTreeMap;

/// The capture's clock before a frame time has been confirmed.
const NO_CLOCK: Timestamp = Timestamp(i64::MIN);
/// Frames after a jump that must agree with it before the clock follows (see `Accounting::frame`).
const JUMP_AGREEMENT: u8 = 2;
/// Jumps waiting at once; past it the oldest is taken.
const PENDING_MAX: usize = 4;
/// Frames after a restart of the clock at a frame far behind it during which a frame back near
/// the clock it left shows the restart came from a lone late frame, and undoes it.
const RESTART_AGREEMENT: u64 = 3;

/// The clock restarted earlier at a frame far behind it (see `Accounting::fell_back`), with
/// what it replaced, to be put back if the restart proves to come from a lone frame.
#[derive(Clone, Copy)]
struct Restart {
    at_frame: u64,
    held: Timestamp,
    first_ts: Option<Timestamp>,
    latest: Option<Timestamp>,
}

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
    /// The last restart of the clock at a frame far behind it.
    restart: Option<Restart>,
    /// The latest clock before the clock restarted earlier (the capture ends at the later).
    latest: Option<Timestamp>,
    /// Times the clock restarted earlier (undone ones included): a stretch of frames across
    /// which it did has a clock that goes back.
    pub(super) restarts: u64,
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
    #[inline(always)]
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
            self.ahead(p.ts);
        } else if p.ts < self.last_ts {
            *self.anomalies.entry("timestamp_went_backwards").or_default() += 1;
            if p.ts.0 < self.last_ts.0.saturating_sub(limits::TIMESTAMP_JUMP_NS) {
                self.fell_back(p.ts);
            }
        } else {
            self.last_ts = p.ts;
        }
        At {
            frame: self.frame,
            ts: p.ts,
        }
    }

    /// A frame more than [`limits::TIMESTAMP_JUMP_NS`] ahead of the clock: held as a jump until
    /// later frames confirm it, unless it shows that a restart of the clock just before came
    /// from a lone late frame (see [`Accounting::fell_back`]).
    #[inline(never)]
    fn ahead(&mut self, ts: Timestamp) {
        if let Some(r) = self.restart.take() {
            if self.frame.saturating_sub(r.at_frame) <= RESTART_AGREEMENT
                && ts.0 >= r.held.0.saturating_sub(limits::TIMESTAMP_JUMP_NS)
            {
                // Back near the clock left: the frame behind was alone, late or damaged. The
                // capture's span is as before it; the clock goes back once this frame's time is
                // confirmed like any jump (until then the timers stay held, so a connection
                // the lone frame touched is not timed out against it).
                self.first_ts = r.first_ts;
                self.latest = Some(r.latest.map_or(r.held, |l| l.max(r.held)));
                if let Some(n) = self.anomalies.get_mut("timestamp_restarted_earlier") {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.anomalies.remove("timestamp_restarted_earlier");
                    }
                }
                *self.anomalies.entry("timestamp_outlier").or_default() += 1;
            }
        }
        if self.pending.len() >= PENDING_MAX {
            // Jump after jump: the oldest has waited long enough.
            let (oldest, _) = self.pending.remove(0);
            self.last_ts = self.last_ts.max(oldest);
        }
        self.pending.push((ts, 0));
    }

    /// A frame more than [`limits::TIMESTAMP_JUMP_NS`] behind the clock. The clock restarts at
    /// its time: a capture appended to a later one (`mergecap -a`, files concatenated, a clock
    /// stepped back) is then read on its own times, and its connections do not time out at once
    /// against the later part's clock. Counted as `timestamp_restarted_earlier`. If a frame back
    /// near the old clock follows within [`RESTART_AGREEMENT`] frames, the frame behind was a
    /// lone late or damaged one: the restart is undone (see [`Accounting::ahead`]) and the frame
    /// counted as `timestamp_outlier`; meanwhile the timers were only held back.
    #[inline(never)]
    fn fell_back(&mut self, ts: Timestamp) {
        self.restart = Some(Restart {
            at_frame: self.frame,
            held: self.last_ts,
            first_ts: self.first_ts,
            latest: self.latest,
        });
        self.latest = Some(self.end());
        self.first_ts = self.first_ts.map(|f| f.min(ts));
        self.pending.clear();
        self.last_ts = ts;
        self.restarts += 1;
        *self.anomalies.entry("timestamp_restarted_earlier").or_default() += 1;
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
        self.latest.map_or(end, |l| l.max(end))
    }

    /// Merges the cores' results, decides the deferred sessions, and builds the summary.
    pub(super) fn conclude(
        mut self,
        opts: &Options,
        results: Vec<CoreResult>,
        sink: &mut dyn FnMut(SessionReport),
    ) -> (CaptureSummary, ServerProfiles) {
        let end = self.end();
        let never_confirmed = self.pending.iter().filter(|(jump, _)| *jump > end).count();
        if never_confirmed > 0 {
            *self.anomalies.entry("timestamp_outlier").or_default() += never_confirmed as u64;
        }
        self.last_ts = end;
        self.pending.clear();
        let mut profiles = ServerProfiles::default();
        let mut deferred = Vec::new();
        for r in results {
            self.tcp_on_ports += r.tcp_on_ports;
            profiles.merge(r.profiles);
            deferred.extend(r.deferred);
            for (k, n) in r.anomalies {
                *self.anomalies.entry(k).or_default() += n;
            }
        }
        deferred.sort_by_key(|d| d.tcp.first.frame);
        for d in deferred {
            let ctx = Context {
                capture_end: match d.tcp.end {
                    EndKind::HandshakeTimeout => d.tcp.last.ts.add_nanos(opts.handshake_ns()),
                    EndKind::IdleTimeout => d.tcp.last.ts.add_nanos(opts.idle_ns()),
                    EndKind::Reset | EndKind::Closed => d.tcp.last.ts,
                    EndKind::Evicted | EndKind::CaptureEnd => self.last_ts,
                },
                handshake_timeout_ns: opts.handshake_ns(),
                profile: profiles.get(&d.tcp.server),
            };
            let v = diagnose::diagnose(&d.tcp, &d.tls, &ctx);
            sink(opts.detail.report(d.id, &d.tcp, &d.tls, v));
        }
        let summary = CaptureSummary {
            files: Vec::new(),
            packets: self.frame,
            bytes: self.bytes,
            first_ts: self.first_ts.map(|t| t.rfc3339()),
            last_ts: self.first_ts.map(|_| self.last_ts.rfc3339()),
            duration_s: self.first_ts.map(|f| self.last_ts.secs_since(f)).unwrap_or(0.0),
            tcp_packets_on_ports: self.tcp_on_ports,
            ports: opts.ports.clone(),
            anomalies: self.anomalies.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..CaptureSummary::default()
        };
        (summary, profiles)
    }
}
