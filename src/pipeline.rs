//! The pipeline driver: packets in, decided sessions out.
//!
//! [`Analyzer`] is sans-I/O: it takes packets (bytes + packet time) one at a time and hands each
//! session to a sink as soon as it is decided; [`Analyzer::finish`] decides what is left at the
//! end of the capture. Offline and live capture both drive it.
//!
//! [`Parallel`] is the same analysis on several threads. Each thread is a worker with its own
//! flow table, TLS sessions and diagnosis for the connections whose 4-tuple hashes to it (a
//! connection always lives on one worker), and any idle worker takes the reader's turn: it reads
//! the next stretch of the capture, decodes each frame's headers once and appends the packet to
//! its worker's list in a batch that every worker then walks. Reading is thus shared by the
//! threads instead of pinning one of them. Verdicts are identical to one thread's: each worker
//! sees its packets in capture order with the capture's clock, a session decided by a timer is
//! judged at its own deadline (not at whichever packet happened to advance the clock), the end of
//! the capture is the global last packet, and failures explained by server profiles are decided
//! at the end with the profiles of all workers merged.

mod accounting;
mod batch;

use crate::capture::{Capture, LinkType, Packet, Timestamp};
use crate::decode;
use crate::diagnose::{self, Context, Outcome, ServerProfiles};
use crate::flow::table::{Connection, FlowConfig, FlowTable};
use crate::flow::{At, EndKind, FlowKey, PortSet, TcpFacts};
use crate::limits;
use crate::report::model::{CaptureSummary, SessionReport};
use crate::tls::{Session, TlsFacts};
use accounting::Accounting;
use batch::{Batch, BatchPacket, FragmentRef, Framed, FramedPacket};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::hash::BuildHasher;
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
        if self.copies.is_copy(seg, at.ts) {
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

    #[inline]
    fn tick(&mut self, now: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        self.now = self.now.max(now);
        if !self.table.due(now) {
            return;
        }
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
    #[inline]
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
/// Decided sessions of the other workers waiting for the calling thread (bounds memory when
/// sessions are decided faster than they are printed, e.g. under a SYN flood).
const RESULTS_IN_FLIGHT: usize = 4096;
/// How long a waiting worker sleeps before it looks again (the calling thread delivers the
/// other workers' sessions then, so a worker blocked on a full result channel goes on).
const WAIT: std::time::Duration = std::time::Duration::from_millis(5);
/// A worker frames more of the capture when some worker has fewer batches waiting than this.
const READ_AHEAD: usize = 2;

enum FromWorker {
    Session(Box<SessionReport>),
    Done(CoreResult),
}

/// The analysis of one capture on several threads (see the module documentation).
pub struct Parallel {
    opts: Options,
    threads: usize,
    defer: bool,
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
    fn frame(&mut self, out: &mut Framed) -> bool {
        out.shared.clear();
        out.data.clear();
        out.packets.clear();
        if self.chunked {
            self.capture.set_chunk_budget(Some(1));
        }
        let mut bytes = 0;
        let mut eof = true;
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
            let full = bytes >= BATCH_BYTES || out.data.len() >= BATCH_BYTES || out.packets.len() >= BATCH_PACKETS;
            if !self.chunked && full {
                eof = false;
                break;
            }
        }
        if self.chunked && self.capture.paused() {
            eof = false;
        }
        out.clock = self.acct.last_ts;
        eof
    }
}

/// Decodes a framed stretch and splits it over the workers by connection (counting what the
/// decoder skipped on `core`); the batch keeps the stretch's buffers alive.
fn dispatch(
    framed: &mut Framed,
    into: &mut Batch,
    ports: &PortSet,
    content: bool,
    hasher: &crate::flow::FlowHashBuilder,
    core: &mut Core,
) {
    let workers = into.lists.len();
    for p in &framed.packets {
        let data = framed.bytes_of(p);
        let decoded = match decode::decode_fast(p.link, data, p.cut) {
            Some(seg) => Ok(decode::Decoded::Tcp(seg)),
            None => decode::decode_slow(&core.opts.tunnels, p.link, data, p.cut),
        };
        let seg = match decoded {
            Ok(decode::Decoded::Tcp(seg)) => seg,
            Ok(decode::Decoded::Fragment(ip)) => {
                let skip = (ip.as_ptr() as usize).saturating_sub(data.as_ptr() as usize);
                into.fragments.push(FragmentRef {
                    at: p.at,
                    clock: p.clock,
                    buf: p.buf,
                    start: p.start + skip as u32,
                    len: ip.len() as u32,
                });
                continue;
            }
            Err(skip) => {
                if skip.is_anomaly() {
                    *core.anomalies.entry(skip.key()).or_default() += 1;
                }
                continue;
            }
        };
        if ports.contains(seg.sport) || ports.contains(seg.dport) {
            core.tcp_on_ports += 1;
        } else if !content {
            continue;
        }
        if seg.missing > 0 {
            *core.anomalies.entry("snaplen_truncated_frames").or_default() += 1;
        }
        // Multiply-shift maps the hash onto the workers without a division (Lemire's fastrange).
        let h = hasher.hash_one(FlowKey::of(&seg));
        let w = ((u128::from(h) * workers as u128) >> 64) as usize;
        let skip = (seg.payload.as_ptr() as usize).saturating_sub(data.as_ptr() as usize);
        // The headers go with the payload when they lie just before it (they always do; a
        // header that did not would be left out and the segment's checksum not checked).
        let ends_at = |h: &[u8], at: usize| h.as_ptr() as usize + h.len() == at;
        let tcp_ok = ends_at(seg.tcp_header, seg.payload.as_ptr() as usize);
        let ip_ok = tcp_ok && ends_at(seg.ip4_header, seg.tcp_header.as_ptr() as usize);
        let tcp_hlen = if tcp_ok {
            u8::try_from(seg.tcp_header.len()).unwrap_or(0)
        } else {
            0
        };
        let ip4_hlen = if ip_ok {
            u8::try_from(seg.ip4_header.len()).unwrap_or(0)
        } else {
            0
        };
        if let Some(list) = into.lists.get_mut(w) {
            list.push(BatchPacket {
                at: p.at,
                clock: p.clock,
                src: seg.src,
                dst: seg.dst,
                sport: seg.sport,
                dport: seg.dport,
                seq: seg.seq,
                ack: seg.ack,
                flags: seg.flags,
                missing: seg.missing,
                buf: p.buf,
                start: p.start + skip as u32,
                len: seg.payload.len() as u32,
                tcp_hlen,
                ip4_hlen,
            });
        }
    }
    std::mem::swap(&mut into.shared, &mut framed.shared);
    std::mem::swap(&mut into.data, &mut framed.data);
    into.clock = framed.clock;
}

/// Takes one IP fragment on worker `me`: a datagram it completes goes on if its connection
/// is this worker's (the same choice `dispatch` makes).
fn fragment(
    core: &mut Core,
    shared: &Shared<'_>,
    workers: usize,
    me: usize,
    b: &Batch,
    f: &FragmentRef,
    out: &mut dyn FnMut(SessionReport),
) {
    let Some(datagram) = b
        .bytes(f.buf, f.start, f.len)
        .and_then(|ip| core.frags.add(ip, f.at.ts))
    else {
        return;
    };
    let skip = match decode::decode_packet(&core.opts.tunnels, LinkType::RAW, &datagram, false) {
        Ok(decode::Decoded::Tcp(seg)) => {
            if !(shared.ports.contains(seg.sport) || shared.ports.contains(seg.dport)) {
                return;
            }
            let h = shared.hasher.hash_one(FlowKey::of(&seg));
            if ((u128::from(h) * workers as u128) >> 64) as usize != me {
                return;
            }
            core.tcp_on_ports += 1;
            core.tick(f.clock, out);
            core.segment(f.at, &seg, out);
            return;
        }
        Ok(decode::Decoded::Fragment(_)) => "ip_fragment_nested",
        Err(skip) if skip.is_anomaly() => skip.key(),
        Err(_) => return,
    };
    if core.counts_fragments {
        *core.anomalies.entry(skip).or_default() += 1;
    }
}

/// Who has what to do.
struct Sched {
    /// Each worker's batches, in capture order.
    queues: Vec<VecDeque<Arc<Batch>>>,
    /// Batches decoded out of turn, by sequence number, until the earlier ones are queued.
    decoded: BTreeMap<u64, Arc<Batch>>,
    /// Sequence number of the next framed stretch, and of the next batch to queue.
    next_framed: u64,
    next_queued: u64,
    /// A worker holds the framing turn.
    framing: bool,
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
    fn queues_full(&self) -> bool {
        self.queues.iter().any(|q| q.len() >= QUEUE_MAX)
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
    /// Fixed-seed hash for choosing workers (the same split on every run).
    hasher: crate::flow::FlowHashBuilder,
}

impl Parallel {
    /// An analysis on `threads` threads (at least 1; the calling thread is one of them).
    pub fn new(opts: Options, threads: usize, defer_profile_decisions: bool) -> Parallel {
        Parallel {
            opts,
            threads: threads.max(1),
            defer: defer_profile_decisions,
        }
    }

    /// Analyzes the whole capture. Decided sessions reach `sink` on the calling thread;
    /// `progress` is called there now and then with the raw input bytes read so far.
    pub fn run(
        self,
        capture: &mut Capture,
        sink: &mut dyn FnMut(SessionReport),
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
                next_chunk: 0,
                exhausted: false,
                aborted: false,
            }),
            wake: Condvar::new(),
            read_bytes: AtomicU64::new(0),
            prefetch,
            ports: PortSet::new(&self.opts.ports),
            hasher: crate::flow::FlowHashBuilder::fixed(),
        };
        let core = |opts: &Options| {
            Core::new(
                opts.clone(),
                (opts.max_flows / n).max(1),
                (limits::MAX_DEFERRED / n).max(1),
                self.defer,
            )
        };
        let (tx, rx) = mpsc::sync_channel::<FromWorker>(RESULTS_IN_FLIGHT);
        let mut results = Vec::with_capacity(n);
        let cell = std::cell::RefCell::new(&mut *sink);
        std::thread::scope(|scope| {
            for me in 1..n {
                let (tx, shared, mut core) = (tx.clone(), &shared, core(&self.opts));
                core.counts_fragments = false;
                scope.spawn(move || {
                    let mut out = |s: SessionReport| {
                        let _ = tx.send(FromWorker::Session(Box::new(s)));
                    };
                    work(me, &mut core, shared, &mut out, &mut || {});
                    let end = lock(&shared.source).acct.end();
                    let result = core.finish(end, &mut out);
                    let _ = tx.send(FromWorker::Done(result));
                });
            }
            drop(tx);
            // The calling thread is worker 0, and hands every decided session to the sink: its
            // own at once, the other workers' from the channel after each of its batches.
            let mut core0 = core(&self.opts);
            let sink = &cell;
            let deliver = |msg: FromWorker, results: &mut Vec<CoreResult>| match msg {
                FromWorker::Session(s) => (sink.borrow_mut())(*s),
                FromWorker::Done(r) => results.push(r),
            };
            {
                let mut out = |s: SessionReport| (sink.borrow_mut())(s);
                let mut between = || {
                    while let Ok(msg) = rx.try_recv() {
                        deliver(msg, &mut results);
                    }
                    progress(shared.read_bytes.load(Ordering::Relaxed));
                };
                work(0, &mut core0, &shared, &mut out, &mut between);
            }
            let end = lock(&shared.source).acct.end();
            let r0 = core0.finish(end, &mut |s| (sink.borrow_mut())(s));
            results.push(r0);
            while let Ok(msg) = rx.recv() {
                deliver(msg, &mut results);
            }
        });
        let sink = cell.into_inner();
        let acct = std::mem::take(&mut lock(&shared.source).acct);
        acct.conclude(&self.opts, results, sink)
    }
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
/// for its framing turn, else sleep. `between` runs after each batch (the calling thread
/// delivers sessions there).
fn work(
    me: usize,
    core: &mut Core,
    shared: &Shared<'_>,
    out: &mut dyn FnMut(SessionReport),
    between: &mut dyn FnMut(),
) {
    let workers = lock(&shared.sched).queues.len();
    let _abort = AbortOnPanic(shared);
    // The chunk this worker copied from the file, waiting for its framing turn.
    let mut copied: Option<u64> = None;
    let mut framed = Framed::default();
    let mut spare: Vec<Arc<Batch>> = Vec::new();
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
            drop(st);
            let eof = {
                let mut src = lock(&shared.source);
                let eof = src.frame(&mut framed);
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
            // Decode and split the stretch while it is in this core's cache, without a lock.
            let mut batch = match spare.iter().position(|b| Arc::strong_count(b) == 1) {
                Some(i) => {
                    let mut arc = spare.swap_remove(i);
                    Arc::get_mut(&mut arc).map(std::mem::take).unwrap_or_default()
                }
                None => Batch::default(),
            };
            batch.clear(workers);
            dispatch(
                &mut framed,
                &mut batch,
                &shared.ports,
                !core.opts.ports_only,
                &shared.hasher,
                core,
            );
            let batch = Arc::new(batch);
            if spare.len() < QUEUE_MAX + 2 {
                spare.push(batch.clone());
            }
            st = lock(&shared.sched);
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
        if let Some(b) = st.queues.get_mut(me).and_then(VecDeque::pop_front) {
            drop(st);
            shared.wake.notify_all();
            let mut frags = b.fragments.iter().peekable();
            for p in b.lists.get(me).map(Vec::as_slice).unwrap_or(&[]) {
                while let Some(f) = frags.next_if(|f| f.at.frame < p.at.frame) {
                    fragment(core, shared, workers, me, &b, f, out);
                }
                core.tick(p.clock, out);
                core.segment(p.at, &b.segment(p), out);
            }
            for f in frags {
                fragment(core, shared, workers, me, &b, f, out);
            }
            core.tick(b.clock, out);
            drop(b);
            // Batches every worker is done with let go of the capture's buffers at once.
            for b in &mut spare {
                if let Some(b) = Arc::get_mut(b) {
                    b.shared.clear();
                }
            }
            between();
            st = lock(&shared.sched);
            continue;
        }
        if st.exhausted && st.settled() {
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
        between();
        st = lock(&shared.sched);
        st = shared
            .wake
            .wait_timeout(st, WAIT)
            .map(|(st, _)| st)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}
