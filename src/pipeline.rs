//! The pipeline driver: packets in, decided sessions out.
//!
//! [`Analyzer`] is sans-I/O: it takes packets (bytes + packet time) one at a time and hands each
//! session to a sink as soon as it is decided; [`Analyzer::finish`] decides what is left at the
//! end of the capture. Offline and live capture both drive it.
//!
//! [`Parallel`] is the same analysis on several threads. Each thread is a worker with its own
//! flow table, TLS sessions and diagnosis for the connections whose 4-tuple hashes to it (a
//! connection always lives on one worker), and any idle worker takes the reader's turn: it reads
//! the next stretch of the capture and reads each frame's endpoints to choose its worker, in a
//! batch that every worker then walks, decoding its own packets as one thread does. Reading is
//! thus shared by the threads instead of pinning one of them. Verdicts are identical to one thread's: each worker
//! sees its packets in capture order with the capture's clock, a session decided by a timer is
//! judged at its own deadline (not at whichever packet happened to advance the clock), the end of
//! the capture is the global last packet, and failures explained by server profiles are decided
//! at the end with the profiles of all workers merged. [`Parallel::in_order`] also hands the
//! sessions on in one order whatever the number of threads (NDJSON: see `ordered`).

mod accounting;
mod batch;
mod ordered;

pub use ordered::Sequential;

use crate::capture::{Capture, LinkType, Packet, Timestamp};
use crate::decode;
use crate::diagnose::{self, Context, Outcome, ServerProfiles};
use crate::flow::table::{Connection, FlowConfig, FlowTable};
use crate::flow::{At, EndKind, PortSet, TcpFacts};
use crate::limits;
use crate::report::model::{CaptureSummary, SessionReport};
use crate::tls::{Session, TlsFacts};
use accounting::Accounting;
use batch::{Batch, FramedPacket};
use ordered::{FromWorker, Gate, Merger};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};

/// Analysis settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub ports: Vec<u16>,
    pub handshake_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_flows: usize,
    /// How much of each session report is built.
    pub detail: Detail,
    /// Which UDP ports announce which tunnel.
    pub tunnels: decode::Config,
    /// Follow the listed ports only; without it, connections on other ports whose first client
    /// bytes are a ClientHello or a STARTTLS / proxy preamble are followed too.
    pub ports_only: bool,
}

/// How much of each decided session's report the pipeline builds.
///
/// Most sessions of a busy capture are established and a summary only counts them; building
/// their evidence and handshake details would cost more than the rest of the analysis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Detail {
    /// Every session in full ([`SessionReport::new`]): JSON, NDJSON, listings of every session.
    #[default]
    Full,
    /// Failed and incomplete sessions in full; established ones brief
    /// ([`SessionReport::brief`]: verdict, warnings, negotiated parameters, no evidence).
    FailuresInFull,
    /// Failed and incomplete sessions in full; established ones lean ([`SessionReport::lean`]:
    /// all a pipeline filters or joins on, without the offered suites, chain and evidence).
    EstablishedLean,
}

impl Detail {
    /// The report of a decided session at this level of detail.
    pub fn report(self, id: u64, tcp: &TcpFacts, tls: &TlsFacts, v: diagnose::Verdict) -> SessionReport {
        match (self, v.outcome) {
            (Detail::FailuresInFull, Outcome::Established) => SessionReport::brief(id, tcp, tls, v),
            (Detail::EstablishedLean, Outcome::Established) => SessionReport::lean(id, tcp, tls, v),
            _ => SessionReport::new(id, tcp, tls, v),
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ports: vec![443],
            handshake_timeout_secs: limits::DEFAULT_HANDSHAKE_TIMEOUT_SECS,
            idle_timeout_secs: limits::DEFAULT_IDLE_TIMEOUT_SECS,
            max_flows: limits::DEFAULT_MAX_FLOWS,
            detail: Detail::Full,
            tunnels: decode::Config::default(),
            ports_only: false,
        }
    }
}

impl Options {
    fn handshake_ns(&self) -> i64 {
        (self.handshake_timeout_secs as i64).saturating_mul(1_000_000_000)
    }
    fn idle_ns(&self) -> i64 {
        (self.idle_timeout_secs as i64).saturating_mul(1_000_000_000)
    }
}

/// A failed session whose reason depends on what the same server accepted elsewhere; it is
/// decided again with the complete profiles at the end of the capture.
struct Deferred {
    id: u64,
    tcp: TcpFacts,
    tls: Box<TlsFacts>,
}

/// What a core leaves at the end: its share of the state that is merged across workers.
struct CoreResult {
    profiles: ServerProfiles,
    deferred: Vec<Deferred>,
    anomalies: BTreeMap<&'static str, u64>,
    tcp_on_ports: u64,
}

/// Flow table, TLS sessions and diagnosis for the connections of one thread.
struct Core {
    opts: Options,
    table: FlowTable<Session>,
    profiles: ServerProfiles,
    deferred: Vec<Deferred>,
    anomalies: BTreeMap<&'static str, u64>,
    defer: bool,
    max_deferred: usize,
    /// Latest packet time seen by this core.
    now: Timestamp,
    /// Segments on the followed ports this core decoded (parallel runs decode on every worker).
    tcp_on_ports: u64,
    /// Copies of segments just seen (mirrors, tunnels): dropped before the flow table.
    copies: decode::dedup::Copies,
    /// IP fragments waiting for their datagram. Every worker of a parallel run reassembles
    /// every fragment (they are rare) and keeps the datagrams of its own connections.
    frags: decode::fragments::Reassembler,
    /// This core reports the reassembly counters (one core per capture).
    counts_fragments: bool,
}

impl Core {
    fn new(opts: Options, max_flows: usize, max_deferred: usize, defer: bool) -> Core {
        let cfg = FlowConfig {
            ports: opts.ports.clone(),
            content: !opts.ports_only,
            max_flows,
            idle_timeout_ns: opts.idle_ns(),
            // Streaming decides a silent handshake at its timeout; a file waits until idle, so a
            // handshake that pauses longer (a certificate picker, a slow OCSP fetch) and then
            // completes stays one session. The verdict uses the handshake timeout either way.
            handshake_timeout_ns: if defer { opts.idle_ns() } else { opts.handshake_ns() },
        };
        Core {
            opts,
            table: FlowTable::new(cfg),
            profiles: ServerProfiles::default(),
            deferred: Vec::new(),
            anomalies: BTreeMap::new(),
            defer,
            max_deferred,
            // Before any frame (times before 1970 are valid: a pcapng interface offset).
            now: Timestamp(i64::MIN),
            tcp_on_ports: 0,
            copies: decode::dedup::Copies::default(),
            frags: decode::fragments::Reassembler::default(),
            counts_fragments: true,
        }
    }

    /// Takes one decoded segment of a followed port.
    fn segment(&mut self, at: At, seg: &decode::TcpSegment<'_>, sink: &mut dyn FnMut(SessionReport)) {
        self.segment_printed(at, seg, decode::dedup::fingerprint(seg), sink);
    }

    /// [`Core::segment`] with the segment's copy fingerprint read already (where its headers
    /// were in cache).
    #[inline(always)]
    fn segment_printed(
        &mut self,
        at: At,
        seg: &decode::TcpSegment<'_>,
        print: Option<u64>,
        sink: &mut dyn FnMut(SessionReport),
    ) {
        if self.copies.seen(print, at.ts) {
            return;
        }
        // The clock is the capture's (set by `tick` before each frame), not this frame's time:
        // a frame stamped ahead of it moves it only once the next frame confirms the jump.
        let mut done = Vec::new();
        self.table.segment_on_clock(at, self.now, seg, &mut |c| done.push(c));
        // Most segments end no connection: no iterator to build and drop for them.
        if !done.is_empty() {
            for c in done {
                self.decide(c, sink);
            }
        }
        if !self.defer {
            // Streaming: report a session the moment its outcome is known, not at its close.
            let now = self.now;
            if let Some(c) = self.table.take_just_decided() {
                c.reported = true;
                if !diagnose::reportable(&c.tcp, c.handler.facts()) {
                    return;
                }
                let (tcp, tls) = (&c.tcp, c.handler.facts());
                // A session's id is its first frame: unique, in the order of first packets
                // whatever the order verdicts come in or the threads (`frame.number == id`).
                let id = c.tcp.first.frame;
                let ctx = Context {
                    capture_end: now,
                    handshake_timeout_ns: self.opts.handshake_ns(),
                    profile: self.profiles.get(&tcp.server),
                };
                let v = diagnose::diagnose(tcp, tls, &ctx);
                self.profiles.observe(tcp, tls, v.outcome == Outcome::Established);
                sink(self.opts.detail.report(id, tcp, tls, v));
            }
        }
    }

    /// Moves the clock to `now` and finishes the connections due by then. Called before every
    /// segment: inlined, it is a comparison when no timer is due (the common case).
    #[inline(always)]
    fn tick(&mut self, now: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        if now > self.now {
            self.now = now;
        } else if now < self.now {
            self.clock_back(now);
        }
        if self.table.due(now) {
            self.expire(now, sink);
        }
    }

    /// The capture's clock only moves on, unless it restarted earlier (an appended capture,
    /// see `Accounting::fell_back`).
    #[cold]
    #[inline(never)]
    fn clock_back(&mut self, now: Timestamp) {
        if now.0 < self.now.0.saturating_sub(limits::TIMESTAMP_JUMP_NS) {
            self.now = now;
        }
    }

    /// Finishes and decides the connections whose timers are due at `now`.
    #[inline(never)]
    fn expire(&mut self, now: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        let mut done = Vec::new();
        self.table.advance(now, &mut |c| done.push(c));
        for c in done {
            self.decide(c, sink);
        }
    }

    /// The time a finished connection is judged at: its own deadline for timer expiries, the
    /// closing packet for RST/FIN, the capture's end otherwise.
    fn judged_at(&self, tcp: &TcpFacts, capture_end: Timestamp) -> Timestamp {
        match tcp.end {
            EndKind::HandshakeTimeout => tcp.last.ts.add_nanos(self.opts.handshake_ns()),
            EndKind::IdleTimeout => tcp.last.ts.add_nanos(self.opts.idle_ns()),
            EndKind::Reset | EndKind::Closed => tcp.last.ts,
            EndKind::Evicted => self.now,
            EndKind::CaptureEnd => capture_end,
        }
    }

    fn decide_at(&mut self, c: Box<Connection<Session>>, capture_end: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        if c.reported {
            for (k, n) in &c.handler.facts().anomalies {
                *self.anomalies.entry(k).or_default() += *n as u64;
            }
            return;
        }
        let id = c.tcp.first.frame;
        // Read in place: most sessions are reported from here and the connection is dropped;
        // only a deferred one is taken apart (moving it out of its box copies it whole).
        let tls = c.handler.facts();
        for (k, n) in &tls.anomalies {
            *self.anomalies.entry(k).or_default() += *n as u64;
        }
        if !diagnose::reportable(&c.tcp, tls) {
            // An unlisted port whose connection never reached TLS: not a TLS session.
            return;
        }
        let ctx = Context {
            capture_end: self.judged_at(&c.tcp, capture_end),
            handshake_timeout_ns: self.opts.handshake_ns(),
            profile: self.profiles.get(&c.tcp.server),
        };
        let v = diagnose::diagnose(&c.tcp, tls, &ctx);
        self.profiles.observe(&c.tcp, tls, v.outcome == Outcome::Established);
        if v.uses_profile && self.defer {
            if self.deferred.len() < self.max_deferred {
                let c = *c;
                self.deferred.push(Deferred {
                    id,
                    tcp: c.tcp,
                    tls: Box::new(c.handler.into_facts()),
                });
                return;
            }
            *self.anomalies.entry("deferred_decisions_full").or_default() += 1;
        }
        sink(self.opts.detail.report(id, &c.tcp, tls, v));
    }

    fn decide(&mut self, c: Box<Connection<Session>>, sink: &mut dyn FnMut(SessionReport)) {
        let now = self.now;
        self.decide_at(c, now, sink);
    }

    /// Decides every connection still open (at `capture_end`) and returns the mergeable state.
    fn finish(mut self, capture_end: Timestamp, sink: &mut dyn FnMut(SessionReport)) -> CoreResult {
        // First the timers due by the end of the capture (whatever frames moved the clock, on
        // this thread or another), then everything still open.
        self.tick(capture_end, sink);
        let mut done = Vec::new();
        self.table.finish_all(&mut |c| done.push(c));
        for c in done {
            self.decide_at(c, capture_end, sink);
        }
        let copies = ("duplicate_copies_ignored", self.copies.copies);
        let watch = ("content_watch_full", self.table.watch_full());
        for (k, n) in self.table.counters.anomalies().into_iter().chain([copies, watch]) {
            if n > 0 {
                *self.anomalies.entry(k).or_default() += n;
            }
        }
        if self.counts_fragments {
            self.frags.finish();
            for (k, n) in self.frags.counters.anomalies() {
                *self.anomalies.entry(k).or_default() += n;
            }
        }
        CoreResult {
            profiles: self.profiles,
            deferred: self.deferred,
            anomalies: self.anomalies,
            tcp_on_ports: self.tcp_on_ports,
        }
    }
}

/// The analysis state of one capture, on the calling thread.
pub struct Analyzer {
    opts: Options,
    core: Core,
    acct: Accounting,
}

impl Analyzer {
    /// A fresh analyzer. With `defer_profile_decisions`, failures explained by what the same
    /// server accepted elsewhere wait for the end of the capture (better reasons); without,
    /// every session is handed out as soon as it is decided (streaming).
    pub fn new(opts: Options, defer_profile_decisions: bool) -> Analyzer {
        let core = Core::new(
            opts.clone(),
            opts.max_flows,
            limits::MAX_DEFERRED,
            defer_profile_decisions,
        );
        Analyzer {
            opts,
            core,
            acct: Accounting::default(),
        }
    }

    /// Counts a non-fatal anomaly.
    pub fn anomaly(&mut self, key: &'static str, n: u64) {
        *self.acct.anomalies.entry(key).or_default() += n;
    }

    /// Frames seen so far.
    pub fn frames(&self) -> u64 {
        self.acct.frame
    }

    /// Takes one captured frame.
    pub fn packet(&mut self, p: &Packet<'_>, sink: &mut dyn FnMut(SessionReport)) {
        let at = self.acct.frame(p);
        let cut = (p.orig_len as usize) > p.data.len();
        if let Some(seg) = decode::decode_fast(p.link, p.data, cut) {
            return self.tcp(at, &seg, sink);
        }
        match decode::decode_slow(&self.opts.tunnels, p.link, p.data, cut) {
            Ok(decode::Decoded::Tcp(seg)) => self.tcp(at, &seg, sink),
            Ok(decode::Decoded::Fragment(ip)) => {
                let Some(datagram) = self.core.frags.add(ip, p.ts) else {
                    return;
                };
                match decode::decode_packet(&self.opts.tunnels, LinkType::RAW, &datagram, false) {
                    Ok(decode::Decoded::Tcp(seg)) => self.tcp(at, &seg, sink),
                    Ok(decode::Decoded::Fragment(_)) => self.acct.anomaly("ip_fragment_nested"),
                    Err(skip) => {
                        if skip.is_anomaly() {
                            self.acct.anomaly(skip.key());
                        }
                    }
                }
            }
            Err(skip) => {
                if skip.is_anomaly() {
                    self.acct.anomaly(skip.key());
                }
            }
        }
    }

    /// Takes one decoded segment.
    #[inline(always)]
    fn tcp(&mut self, at: At, seg: &decode::TcpSegment<'_>, sink: &mut dyn FnMut(SessionReport)) {
        // On a listed port, or on any port when connections are also chosen by their content.
        if self.core.table.listed(seg) {
            self.acct.tcp_on_ports += 1;
        } else if !self.core.table.by_content() {
            return;
        }
        if seg.missing > 0 {
            self.acct.anomaly("snaplen_truncated_frames");
        }
        // Timers run on the capture's clock (the latest time of any frame so far), so a frame
        // stamped in the past cannot revive what that clock already expired.
        self.core.tick(self.acct.last_ts, sink);
        self.core.segment(at, seg, sink);
    }

    /// Advances packet time without a packet (live mode on an idle interface).
    pub fn tick(&mut self, now: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        self.core.tick(now, sink);
    }

    /// Decides every connection still open, then the deferred ones; returns the capture summary.
    pub fn finish(self, sink: &mut dyn FnMut(SessionReport)) -> CaptureSummary {
        self.finish_with_profiles(sink).0
    }

    /// As [`Analyzer::finish`], also returning what each server accepted.
    pub fn finish_with_profiles(self, sink: &mut dyn FnMut(SessionReport)) -> (CaptureSummary, ServerProfiles) {
        let end = self.acct.end();
        let result = self.core.finish(end, sink);
        self.acct.conclude(&self.opts, vec![result], sink)
    }

    /// Server profiles learned so far (for reports).
    pub fn profiles(&self) -> &ServerProfiles {
        &self.core.profiles
    }
}

/// Bytes of packets framed per turn when the input is read as a stream (standard input, gzip,
/// several files); a file read in chunks is framed a chunk per turn.
const BATCH_BYTES: usize = 512 * 1024;
/// Packets framed per turn at most when read as a stream (bounds a turn of tiny or empty frames;
/// a chunk holds at most 64 Ki records of 16 bytes).
const BATCH_PACKETS: usize = 16 * 1024;
/// Batches waiting per worker before nobody frames more (bounds memory: the capture's buffers
/// stay alive while a batch points into them).
const QUEUE_MAX: usize = 6;
/// Emptied batches kept for reuse (every batch in flight is in the queues).
const FREE_MAX: usize = QUEUE_MAX + 2;
/// Decided sessions of the other workers waiting for the calling thread (bounds memory when
/// sessions are decided faster than they are printed, e.g. under a SYN flood); shared out
/// between the workers.
const RESULTS_IN_FLIGHT: usize = 4096;
/// How long a waiting worker sleeps before it looks again (the calling thread delivers the
/// other workers' sessions then, so a worker blocked on a full result channel goes on).
const WAIT: std::time::Duration = std::time::Duration::from_millis(5);
/// A worker frames more of the capture when some worker has fewer batches waiting than this.
const READ_AHEAD: usize = 2;

/// What a worker makes of each session it decides before handing it on (see
/// [`Parallel::run_prepared`]).
pub type Prepare<'a> = &'a (dyn Fn(&mut SessionReport) -> Option<Vec<u8>> + Sync);

/// The analysis of one capture on several threads (see the module documentation).
pub struct Parallel {
    opts: Options,
    threads: usize,
    defer: bool,
    ordered: bool,
}

/// The capture, framed in order by whichever worker holds the framing turn.
struct Source<'c> {
    capture: &'c mut Capture,
    acct: Accounting,
    /// The file is read in chunks (see `capture::prefetch`): one chunk per turn.
    chunked: bool,
}

impl Source<'_> {
    /// Frames the next stretch into `out`: one chunk, or `BATCH_BYTES` of packets; returns
    /// whether the capture ended.
    fn frame(&mut self, out: &mut Batch) -> bool {
        out.clear();
        if self.chunked {
            self.capture.set_chunk_budget(Some(1));
        }
        let mut bytes = 0;
        let mut eof = true;
        let restarts = self.acct.restarts;
        while let Some((p, shared)) = self.capture.next_packet_shared() {
            let at = self.acct.frame(&p);
            let addr = p.data.as_ptr() as usize;
            let inside = shared.and_then(|buf| {
                let off = addr.checked_sub(buf.as_ptr() as usize)?;
                (off + p.data.len() <= buf.len() && off <= u32::MAX as usize).then_some((buf, off))
            });
            let (buf, start) = match inside {
                Some((arc, off)) => {
                    if !out.shared.last().is_some_and(|last| Arc::ptr_eq(last, arc)) {
                        out.shared.push(arc.clone());
                    }
                    ((out.shared.len() - 1) as u32, off as u32)
                }
                None => {
                    let off = out.data.len() as u32;
                    out.data.extend_from_slice(p.data);
                    (u32::MAX, off)
                }
            };
            out.packets.push(FramedPacket {
                at,
                clock: self.acct.last_ts,
                link: p.link,
                buf,
                start,
                len: p.data.len() as u32,
                cut: (p.orig_len as usize) > p.data.len(),
            });
            bytes += p.data.len();
            let full = || bytes >= BATCH_BYTES || out.data.len() >= BATCH_BYTES || out.packets.len() >= BATCH_PACKETS;
            if !self.chunked && full() {
                eof = false;
                break;
            }
        }
        if self.chunked && self.capture.paused() {
            eof = false;
        }
        out.clock = self.acct.last_ts;
        out.clock_back = self.acct.restarts != restarts;
        out.last_frame = out.packets.last().map_or(0, |p| p.at.frame);
        eof
    }
}

/// Who has what to do.
struct Sched {
    /// Each worker's batches, in capture order.
    queues: Vec<VecDeque<Arc<Batch>>>,
    /// Batches dispatched out of turn, by sequence number, until the earlier ones are queued.
    decoded: BTreeMap<u64, Arc<Batch>>,
    /// Sequence number of the next framed stretch, and of the next batch to queue.
    next_framed: u64,
    next_queued: u64,
    /// A worker holds the framing turn.
    framing: bool,
    /// Batches every worker is done with, emptied, to frame into again (their vectors reused).
    free: Vec<Batch>,
    /// Packets in the last framed stretch (room reserved in a batch framed for the first time).
    last_packets: usize,
    /// Read in chunks: the chunk the next framing turn takes (turns follow the file).
    next_chunk: u64,
    /// The capture ended (the last stretch is framed).
    exhausted: bool,
    /// A worker panicked (a bug): everyone stops instead of waiting for it forever.
    aborted: bool,
}

impl Sched {
    fn queues_low(&self) -> bool {
        self.queues.iter().map(VecDeque::len).min().unwrap_or(0) < READ_AHEAD
    }
    /// Some worker has `QUEUE_MAX` batches waiting, counting those framed and not yet queued
    /// (a worker held up while it dispatches a stretch must not let the others frame on and on:
    /// every batch keeps its part of the capture in memory).
    fn queues_full(&self) -> bool {
        let unqueued = (self.next_framed - self.next_queued) as usize;
        self.queues.iter().any(|q| q.len() + unqueued >= QUEUE_MAX)
    }
    /// Everything framed is queued.
    fn settled(&self) -> bool {
        self.next_queued == self.next_framed
    }
}

struct Shared<'c> {
    source: Mutex<Source<'c>>,
    sched: Mutex<Sched>,
    wake: Condvar,
    /// Raw input bytes read so far (for progress).
    read_bytes: AtomicU64,
    /// The capture file in chunks, when it is a plain file.
    prefetch: Option<Arc<crate::capture::prefetch::Prefetch>>,
    ports: PortSet,
    /// The number of workers.
    workers: usize,
    /// Sessions are handed on in order (see `ordered`), held back by `gate`.
    ordered: bool,
    gate: Gate,
}

impl Parallel {
    /// An analysis on `threads` threads (at least 1; the calling thread is one of them).
    pub fn new(opts: Options, threads: usize, defer_profile_decisions: bool) -> Parallel {
        Parallel {
            opts,
            threads: threads.max(1),
            defer: defer_profile_decisions,
            ordered: false,
        }
    }

    /// Hands sessions on in the order of one thread's [`Sequential`] in order, whatever the
    /// number of threads (see `pipeline::ordered`), instead of as they are decided.
    pub fn in_order(mut self) -> Parallel {
        self.ordered = true;
        self
    }

    /// Analyzes the whole capture. Decided sessions reach `sink` on the calling thread;
    /// `progress` is called there now and then with the raw input bytes read so far.
    pub fn run(
        self,
        capture: &mut Capture,
        sink: &mut dyn FnMut(SessionReport),
        progress: &mut dyn FnMut(u64),
    ) -> (CaptureSummary, ServerProfiles) {
        self.run_prepared(capture, &|_| None, &mut |s, _| sink(s), progress)
    }

    /// As [`Parallel::run`], each session first passed to `prepare` on the thread that decided
    /// it (work shared out, e.g. writing its NDJSON line); the sink gets what `prepare` returned
    /// (`None` for the sessions decided at the very end, on the calling thread).
    pub fn run_prepared(
        self,
        capture: &mut Capture,
        prepare: Prepare<'_>,
        sink: &mut dyn FnMut(SessionReport, Option<Vec<u8>>),
        progress: &mut dyn FnMut(u64),
    ) -> (CaptureSummary, ServerProfiles) {
        let n = self.threads;
        // A plain file is read in chunks: each worker copies a chunk from the file itself and
        // frames it while it is in that core's cache, so copying is shared out too.
        let prefetch = if n > 1 {
            capture.prefetch(crate::capture::prefetch::CHUNK)
        } else {
            None
        };
        let shared = Shared {
            source: Mutex::new(Source {
                capture,
                acct: Accounting::default(),
                chunked: prefetch.is_some(),
            }),
            sched: Mutex::new(Sched {
                queues: (0..n).map(|_| VecDeque::new()).collect(),
                decoded: BTreeMap::new(),
                next_framed: 0,
                next_queued: 0,
                framing: false,
                free: Vec::new(),
                // Until a stretch is framed: a chunk of full-size frames.
                last_packets: 1024,
                next_chunk: 0,
                exhausted: false,
                aborted: false,
            }),
            wake: Condvar::new(),
            read_bytes: AtomicU64::new(0),
            prefetch,
            ports: PortSet::new(&self.opts.ports),
            workers: n,
            ordered: self.ordered,
            gate: Gate::default(),
        };
        let core = |opts: &Options| {
            Core::new(
                opts.clone(),
                (opts.max_flows / n).max(1),
                (limits::MAX_DEFERRED / n).max(1),
                self.defer,
            )
        };
        let in_flight = (RESULTS_IN_FLIGHT / n).max(64);
        // One channel per worker (in order, each worker's sessions are merged with the others');
        // worker 0's is opened at the end, when its end is decided on a thread of its own.
        let mut rxs: Vec<Option<mpsc::Receiver<FromWorker>>> = vec![None];
        let merger = std::cell::RefCell::new(Merger::new(&mut *sink, n, self.ordered));
        let results = std::thread::scope(|scope| {
            for me in 1..n {
                let (tx, rx) = mpsc::sync_channel::<FromWorker>(in_flight);
                rxs.push(Some(rx));
                let (shared, mut core) = (&shared, core(&self.opts));
                core.counts_fragments = false;
                scope.spawn(move || {
                    let mut out = |frame: u64, mut s: SessionReport| {
                        let line = prepare(&mut s);
                        let _ = tx.send(FromWorker::Session(frame, Box::new(s), line));
                    };
                    let mut between = |done: Option<u64>| {
                        if let Some(d) = done.filter(|_| shared.ordered) {
                            let _ = tx.send(FromWorker::Progress(d));
                        }
                    };
                    work(me, &mut core, shared, &mut out, &mut between);
                    end_of(core, shared, &tx, prepare);
                });
            }
            // The calling thread is worker 0, and hands every decided session to the sink: its
            // own at once (in order: into the window), the other workers' after each batch.
            let mut core0 = core(&self.opts);
            {
                let mut out = |frame: u64, mut s: SessionReport| {
                    let line = prepare(&mut s);
                    merger.borrow_mut().session(0, frame, Box::new(s), line);
                };
                let mut between = |done: Option<u64>| {
                    let mut m = merger.borrow_mut();
                    if let Some(d) = done {
                        m.progress(0, d);
                    }
                    m.drain(&rxs, &shared.gate);
                    progress(shared.read_bytes.load(Ordering::Relaxed));
                };
                work(0, &mut core0, &shared, &mut out, &mut between);
            }
            let (tx, rx) = mpsc::sync_channel::<FromWorker>(in_flight);
            if let Some(r) = rxs.first_mut() {
                *r = Some(rx);
            }
            let shared = &shared;
            scope.spawn(move || end_of(core0, shared, &tx, prepare));
            merger.into_inner().finish(&rxs, &shared.gate)
        });
        let acct = std::mem::take(&mut lock(&shared.source).acct);
        acct.conclude(&self.opts, results, &mut |s| sink(s, None))
    }
}

/// A worker's end: decides what is left at the end of the capture, then sends its results.
fn end_of(core: Core, shared: &Shared<'_>, tx: &mpsc::SyncSender<FromWorker>, prepare: Prepare<'_>) {
    let mut out = |frame: u64, mut s: SessionReport| {
        let line = prepare(&mut s);
        let _ = tx.send(FromWorker::Session(frame, Box::new(s), line));
    };
    let end = lock(&shared.source).acct.end();
    let result = ordered::finish(core, end, shared.ordered, &mut out);
    let _ = tx.send(FromWorker::Done(result));
}

/// Locks a mutex; a worker that panicked (it cannot, short of a bug) leaves consistent data.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops every worker when one panics (a bug): the others would wait for it forever. The
/// panic itself goes on (`thread::scope` raises it again in the calling thread).
struct AbortOnPanic<'a, 'c>(&'a Shared<'c>);

impl Drop for AbortOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(&self.0.sched).aborted = true;
            self.0.wake.notify_all();
            if let Some(p) = &self.0.prefetch {
                p.abort();
            }
        }
    }
}

/// One worker's loop. In order of preference: frame the next stretch of the capture when some
/// worker is about to run dry (a file read in chunks: only the chunk this worker copied, in
/// file order), work through its own batches, copy the next chunk of the file while it waits
/// for its framing turn, else sleep. Sessions go to `out` with the frame that decided them;
/// `between` runs after each batch, with the frame walked up to, and while waiting (the calling
/// thread delivers sessions there).
fn work(
    me: usize,
    core: &mut Core,
    shared: &Shared<'_>,
    out: &mut dyn FnMut(u64, SessionReport),
    between: &mut dyn FnMut(Option<u64>),
) {
    let _abort = AbortOnPanic(shared);
    // The chunk this worker copied from the file, waiting for its framing turn.
    let mut copied: Option<u64> = None;
    // Every frame up to this one is walked.
    let mut done = 0;
    let mut st = lock(&shared.sched);
    loop {
        if st.aborted {
            return;
        }
        let chunked = shared.prefetch.is_some();
        let my_turn = if let Some(p) = &shared.prefetch {
            // The chunk this worker copied is next, or the file ends there (whoever comes
            // first finds the end).
            copied.is_some_and(|k| k == st.next_chunk) || p.ends_before(st.next_chunk)
        } else {
            st.queues_low()
        };
        if my_turn && !st.exhausted && !st.framing && !st.queues_full() {
            st.framing = true;
            let seq = st.next_framed;
            st.next_framed += 1;
            let mut batch = st.free.pop().unwrap_or_default();
            batch.reserve(st.last_packets);
            drop(st);
            let eof = {
                let mut src = lock(&shared.source);
                let eof = src.frame(&mut batch);
                shared.read_bytes.store(src.capture.raw_bytes_read(), Ordering::Relaxed);
                eof
            };
            st = lock(&shared.sched);
            st.framing = false;
            st.exhausted |= eof;
            if chunked {
                st.next_chunk += 1;
                copied = None;
            }
            drop(st);
            shared.wake.notify_all();
            // Choose each packet's worker while the stretch is in this core's cache, unlocked.
            batch::dispatch(&mut batch, shared, core);
            let packets = batch.packets.len();
            let batch = Arc::new(batch);
            st = lock(&shared.sched);
            st.last_packets = packets;
            st.decoded.insert(seq, batch);
            loop {
                let next = st.next_queued;
                let Some(b) = st.decoded.remove(&next) else { break };
                st.next_queued += 1;
                for q in &mut st.queues {
                    q.push_back(b.clone());
                }
            }
            shared.wake.notify_all();
            continue;
        }
        // In order, a worker ahead of the slowest waits while the reorder window is full.
        let held_back = shared.ordered && shared.gate.holds_back(done);
        if let Some(b) = st
            .queues
            .get_mut(me)
            .filter(|_| !held_back)
            .and_then(VecDeque::pop_front)
        {
            drop(st);
            shared.wake.notify_all();
            batch::walk(core, shared, me, &b, out);
            done = done.max(b.last_frame);
            // The last worker done with a batch lets go of the capture's buffers at once (the
            // file's chunks are read into them again) and keeps the batch for the next framing.
            let free = Arc::into_inner(b).map(|mut b| {
                b.clear();
                b
            });
            between(Some(done));
            st = lock(&shared.sched);
            if let Some(b) = free.filter(|_| st.free.len() < FREE_MAX) {
                st.free.push(b);
            }
            continue;
        }
        if st.exhausted && st.settled() && st.queues.get(me).is_none_or(VecDeque::is_empty) {
            break;
        }
        if chunked && copied.is_none() && !st.exhausted {
            if let Some(p) = &shared.prefetch {
                drop(st);
                copied = p.claim_next();
                st = lock(&shared.sched);
                if copied.is_some() {
                    continue;
                }
            }
        }
        // The calling thread delivers sessions here: not while holding the others up.
        drop(st);
        between(None);
        st = lock(&shared.sched);
        st = shared
            .wake
            .wait_timeout(st, WAIT)
            .map(|(st, _)| st)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}
