//! Sessions handed on in one order whatever the number of threads (NDJSON).
//!
//! NDJSON writes each session as it is handed on, so the order of its lines is part of the
//! report. The order is the capture's: by the frame at which a session was decided, then by its
//! id (its first frame), for sessions decided at the same frame (a frame that moves the clock
//! past several connections' timers). Sessions decided at the end of the capture come last:
//! first those the capture's last timers decide, then those still open, then those whose reason
//! waited for every server's profile, each group by id. One thread gives this order by sorting
//! the few sessions of each frame ([`Sequential`]).
//!
//! On several threads, each worker walks every batch: it ticks its timers at the other
//! workers' segments where one thread would have (only where a timer is due: `batch::walk`), so
//! a session gets the same deciding frame on any number of threads. The calling thread keeps the
//! sessions the workers decided in a reorder window ([`Merger`]) and hands one on once every
//! worker has walked past its frame (each says how far it got after every batch), so lines
//! leave at most a few batches after their verdict rather than the moment it is reached: that
//! is the price of the same bytes on every run. The window is bounded: the batch queues bound
//! how far a worker runs ahead, and past [`HELD_MAX`] sessions a worker ahead of the slowest
//! waits ([`Gate`]). At the end every worker's remaining sessions are merged by id, pulling
//! from the worker that holds the others back, so nothing waits in memory beyond one session
//! per worker.

use super::{Analyzer, Core, CoreResult};
use crate::capture::{Packet, Timestamp};
use crate::diagnose::ServerProfiles;
use crate::report::model::{CaptureSummary, SessionReport};
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};

/// The deciding "frame" of the sessions the capture's last timers decide.
pub(super) const END_TICK: u64 = u64::MAX - 1;
/// The deciding "frame" of the sessions still open at the end of the capture.
pub(super) const END: u64 = u64::MAX;
/// Sessions held in the reorder window past which a worker ahead of the slowest waits.
const HELD_MAX: usize = 2048;

/// Where a session goes in the order: (deciding frame, id).
type Key = (u64, u64);

/// What a worker sends the calling thread.
pub(super) enum FromWorker {
    /// A decided session, the frame that decided it, and what `prepare` made of it.
    Session(u64, Box<SessionReport>, Option<Vec<u8>>),
    /// The worker has walked every frame up to this one.
    Progress(u64),
    /// The worker's share of the state merged across workers; nothing follows.
    Done(CoreResult),
}

/// A session in the reorder window.
struct Held(Key, Box<SessionReport>, Option<Vec<u8>>);

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.0 == other.0
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Held) -> CmpOrdering {
        self.0.cmp(&other.0)
    }
}

/// What the workers read of the reorder window: how far every worker has walked, and how many
/// sessions wait.
#[derive(Default)]
pub(super) struct Gate {
    watermark: AtomicU64,
    held: AtomicUsize,
}

impl Gate {
    /// Whether a worker that has walked every frame up to `done` waits before its next batch:
    /// the window is full and the worker is ahead of the slowest (which never waits).
    pub(super) fn holds_back(&self, done: u64) -> bool {
        self.held.load(Ordering::Relaxed) > HELD_MAX && done > self.watermark.load(Ordering::Relaxed)
    }
}

/// Decides what is left on a worker at the end of the capture: in order, the sessions its last
/// timers decide (by id), then those still open (by id, as the flow table hands them out).
pub(super) fn finish(
    mut core: Core,
    end: Timestamp,
    ordered: bool,
    out: &mut dyn FnMut(u64, SessionReport),
) -> CoreResult {
    if ordered {
        let mut ticked = Vec::new();
        core.tick(end, &mut |s| ticked.push(s));
        ticked.sort_unstable_by_key(|s| s.id);
        for s in ticked {
            out(END_TICK, s);
        }
    }
    core.finish(end, &mut |s| out(END, s))
}

/// The calling thread's end of a parallel run: hands the workers' sessions to the sink, as
/// they come or (in order) through the reorder window.
pub(super) struct Merger<'s> {
    sink: &'s mut dyn FnMut(SessionReport, Option<Vec<u8>>),
    ordered: bool,
    window: BinaryHeap<Reverse<Held>>,
    /// Per worker, a key every session it sends from now on comes after.
    after: Vec<Key>,
    /// The workers' results, each with its worker.
    results: Vec<(usize, CoreResult)>,
}

impl<'s> Merger<'s> {
    pub(super) fn new(
        sink: &'s mut dyn FnMut(SessionReport, Option<Vec<u8>>),
        workers: usize,
        ordered: bool,
    ) -> Merger<'s> {
        Merger {
            sink,
            ordered,
            window: BinaryHeap::new(),
            after: vec![(0, 0); workers],
            results: Vec::with_capacity(workers),
        }
    }

    /// A session worker `w` decided at `frame`.
    pub(super) fn session(&mut self, w: usize, frame: u64, s: Box<SessionReport>, line: Option<Vec<u8>>) {
        if !self.ordered {
            return (self.sink)(*s, line);
        }
        let key = (frame, s.id);
        if frame >= END_TICK {
            // A worker's end comes in key order.
            if let Some(a) = self.after.get_mut(w) {
                *a = key;
            }
        }
        self.window.push(Reverse(Held(key, s, line)));
    }

    /// Worker `w` has walked every frame up to `frame`.
    pub(super) fn progress(&mut self, w: usize, frame: u64) {
        if let Some(a) = self.after.get_mut(w) {
            *a = (*a).max((frame, u64::MAX));
        }
    }

    fn take(&mut self, w: usize, msg: FromWorker) {
        match msg {
            FromWorker::Session(frame, s, line) => self.session(w, frame, s, line),
            FromWorker::Progress(frame) => self.progress(w, frame),
            FromWorker::Done(r) => {
                self.results.push((w, r));
                self.progress(w, END);
            }
        }
    }

    /// Takes every message waiting from the open workers (closing those that hung up); returns
    /// whether there was any.
    fn take_any(&mut self, rxs: &[Option<Receiver<FromWorker>>], open: &mut [bool]) -> bool {
        let mut took = false;
        for (w, rx) in rxs.iter().enumerate() {
            let Some(rx) = rx.as_ref().filter(|_| open.get(w).copied().unwrap_or(false)) else {
                continue;
            };
            loop {
                match rx.try_recv() {
                    Ok(msg) => {
                        self.take(w, msg);
                        took = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if let Some(o) = open.get_mut(w) {
                            *o = false;
                        }
                        took = true;
                        break;
                    }
                }
            }
        }
        took
    }

    /// Takes what the workers sent so far and hands on what no worker can precede any more.
    pub(super) fn drain(&mut self, rxs: &[Option<Receiver<FromWorker>>], gate: &Gate) {
        for (w, rx) in rxs.iter().enumerate() {
            let Some(rx) = rx else { continue };
            while let Ok(msg) = rx.try_recv() {
                self.take(w, msg);
            }
        }
        self.release(gate);
    }

    fn release(&mut self, gate: &Gate) {
        if !self.ordered {
            return;
        }
        let upto = self.after.iter().min().copied().unwrap_or((END, u64::MAX));
        while self.window.peek().is_some_and(|Reverse(h)| h.0 <= upto) {
            if let Some(Reverse(h)) = self.window.pop() {
                (self.sink)(*h.1, h.2);
            }
        }
        gate.watermark.store(upto.0, Ordering::Relaxed);
        gate.held.store(self.window.len(), Ordering::Relaxed);
    }

    /// Takes everything the workers still send, until each has hung up, and hands it on: in
    /// order, always from the worker that holds the others back. Returns the workers' results
    /// in worker order, whatever order they finished in (merging server profiles keeps the
    /// first certificate seen for a name: the verdicts they explain must not depend on timing).
    pub(super) fn finish(mut self, rxs: &[Option<Receiver<FromWorker>>], gate: &Gate) -> Vec<CoreResult> {
        let mut open: Vec<bool> = rxs.iter().map(Option::is_some).collect();
        loop {
            // As they come, from whichever worker: none waits on a full channel for another.
            if !self.ordered && self.take_any(rxs, &mut open) {
                continue;
            }
            let next = (0..rxs.len())
                .filter(|&w| open.get(w).copied().unwrap_or(false))
                .min_by_key(|&w| if self.ordered { self.after.get(w).copied() } else { None });
            let Some(rx) = next.and_then(|w| Some((w, rxs.get(w)?.as_ref()?))) else {
                break;
            };
            let got = if self.ordered {
                rx.1.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.1.recv_timeout(std::time::Duration::from_millis(1))
            };
            match got {
                Ok(msg) => self.take(rx.0, msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if let Some(o) = open.get_mut(rx.0) {
                        *o = false;
                    }
                    self.progress(rx.0, END);
                }
            }
            self.release(gate);
        }
        self.release(gate);
        self.results.sort_by_key(|(w, _)| *w);
        self.results.into_iter().map(|(_, r)| r).collect()
    }
}

/// The analysis on the calling thread, handing sessions on as they are decided or, `in_order`,
/// those of each frame by id (the order of a parallel run in order).
pub struct Sequential {
    analyzer: Analyzer,
    held: Option<Vec<SessionReport>>,
}

impl Sequential {
    pub fn new(analyzer: Analyzer, in_order: bool) -> Sequential {
        Sequential {
            analyzer,
            held: in_order.then(Vec::new),
        }
    }

    /// Takes one captured frame (see [`Analyzer::packet`]).
    #[inline]
    pub fn packet(&mut self, p: &Packet<'_>, sink: &mut dyn FnMut(SessionReport)) {
        let Some(held) = &mut self.held else {
            return self.analyzer.packet(p, sink);
        };
        self.analyzer.packet(p, &mut |s| held.push(s));
        // Most frames decide nothing: no sort, no drain.
        if held.is_empty() {
            return;
        }
        if held.len() > 1 {
            held.sort_unstable_by_key(|s| s.id);
        }
        for s in held.drain(..) {
            sink(s);
        }
    }

    /// Decides what is left (see [`Analyzer::finish_with_profiles`]).
    pub fn finish_with_profiles(self, sink: &mut dyn FnMut(SessionReport)) -> (CaptureSummary, ServerProfiles) {
        let Analyzer { opts, core, acct } = self.analyzer;
        let end = acct.end();
        let result = finish(core, end, self.held.is_some(), &mut |_, s| sink(s));
        acct.conclude(&opts, vec![result], sink)
    }
}
