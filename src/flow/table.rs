//! The connection table: finds each segment's connection, keeps its TCP facts, feeds its
//! reassemblers, and hands finished connections back to the caller.
//!
//! A connection is finished at RST, when both sides have sent FIN, when it has been silent for
//! the handshake timeout while a handshake is pending (an unanswered SYN or ClientHello), when it
//! has been idle for the idle timeout, when the table is full and it is the oldest, or at the end
//! of the capture. All times are packet times. A finished connection leaves a short-lived
//! tombstone so late ACKs and retransmissions do not start a phantom connection, while a new SYN
//! on the same 4-tuple starts a new one.

use super::reassembly::{Conflict, Reassembler};
use super::resume::{RESUME_NS, Resume};
use super::watch::{Decision, Watch};
use super::{
    At, Chunk, ConflictAt, Direction, EndKind, Endpoint, FlowKey, PerDir, PortSet, RoleSource, SeqNumber, ShortHash,
    StreamHandler, TcpFacts,
};
use crate::capture::Timestamp;
use crate::decode::{Checksum, TcpSegment};
use crate::limits::TIMESTAMP_LEAP_NS;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// How long a finished connection's 4-tuple absorbs stray packets (nanoseconds of packet time).
const LINGER_NS: i64 = 5_000_000_000;

/// How long the tombstone lives after a late packet: retransmissions of a final segment back off
/// exponentially (0.2 s, 0.4 s … 25 s), so once they start, keep absorbing them for a minute.
const LATE_LINGER_NS: i64 = 60_000_000_000;

/// SYNs remembered per connection for the evidence.
const SYNS_KEPT: usize = 8;

/// Table settings.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Server ports to follow; a segment is ours if either port is in the set.
    pub ports: Vec<u16>,
    /// Also follow connections on other ports whose first client bytes are a ClientHello or a
    /// recognised STARTTLS / proxy preamble (see [`super::watch`]).
    pub content: bool,
    pub max_flows: usize,
    pub idle_timeout_ns: i64,
    pub handshake_timeout_ns: i64,
}

/// Tells the table whether a connection's handshake outcome is known yet.
pub trait Decided {
    /// True once the handshake's outcome is known (only idle expiry applies then).
    fn decided(&self) -> bool;
}

/// One live connection: its TCP facts and its stream handler.
pub struct Connection<H> {
    pub tcp: TcpFacts,
    pub handler: H,
    /// The session was already reported when its outcome became known (streaming).
    pub reported: bool,
    reasm: PerDir<Reassembler>,
    client_isn: Option<SeqNumber>,
    /// Whether each direction has shown a valid checksum (see [`FlowTable::segment_on_clock`]).
    checksum_seen_valid: PerDir<bool>,
    /// A data segment per direction set aside for a wrong checksum (see [`settle_held`]).
    held: PerDir<Option<Box<Held>>>,
    /// Whether each direction's reassembler keeps bytes to compare (a copy of
    /// `Reassembler::checking`, read on every packet without touching the reassembler).
    kept: PerDir<bool>,
}

/// A data segment with a wrong checksum, waiting to be replaced or proved taken.
struct Held {
    seq: SeqNumber,
    payload: Vec<u8>,
    at: At,
}

/// A table entry: two words, so the slot array of a busy capture stays in the CPU's caches
/// (every packet reads one entry; the connection or tombstone behind it is boxed).
enum Slot<H> {
    Live(Box<Connection<H>>),
    Tombstone(Box<Tomb>),
    Free,
}

/// What a finished connection leaves behind for a while (see the module documentation).
struct Tomb {
    until: Timestamp,
    key: FlowKey,
    client: Endpoint,
    client_isn: Option<SeqNumber>,
    /// An idle-expired connection's next sequence numbers (see [`super::resume`]).
    resume: Option<Resume>,
}

/// Counters of the table's own events, by stable key.
#[derive(Clone, Debug, Default)]
pub struct TableCounters {
    pub connections: u64,
    pub flow_table_full: u64,
    pub reassembly_buffer_full: u64,
    pub port_reuse: u64,
    pub late_packets: u64,
    /// Segments whose bytes disagreed with a copy seen before (`tcp_overlap_conflict`).
    pub overlap_conflicts: u64,
    /// Segments not used for a wrong checksum (`tcp_bad_checksum`).
    pub bad_checksums: u64,
    /// Connections that continued after their idle expiry (`tcp_idle_resumed`).
    pub idle_resumed: u64,
}

impl TableCounters {
    /// The counters the capture reports as anomalies, by stable key.
    pub fn anomalies(&self) -> [(&'static str, u64); 6] {
        [
            ("flow_table_full", self.flow_table_full),
            ("reassembly_buffer_full", self.reassembly_buffer_full),
            ("tcp_port_reuse", self.port_reuse),
            ("tcp_overlap_conflict", self.overlap_conflicts),
            ("tcp_bad_checksum", self.bad_checksums),
            ("tcp_idle_resumed", self.idle_resumed),
        ]
    }
}

/// The connection table.
pub struct FlowTable<H> {
    cfg: FlowConfig,
    port_set: PortSet,
    map: HashMap<ShortHash, usize, super::FlowHashBuilder>,
    slots: Vec<Slot<H>>,
    gens: Vec<u64>,
    free: Vec<usize>,
    live: usize,
    timers: BinaryHeap<Reverse<(i64, usize, u64)>>,
    /// The connection whose outcome became known with the last segment (slot, generation).
    just_decided: Option<(usize, u64)>,
    /// Tombstones that remember an idle-expired connection (at most `max_flows`).
    resumable: usize,
    pub counters: TableCounters,
    /// Connections on unlisted ports waiting for their first client payload.
    watch: Watch,
    /// The client of the connection being replayed from the watch (its roles, when no SYN says).
    client_hint: Option<Endpoint>,
}

#[allow(
    clippy::indexing_slicing,
    reason = "slot numbers index the table's own `slots` and `gens` (always the same length): they are handed out by `create` and held by the map and the timers, never read from packet bytes"
)]
impl<H: StreamHandler + Decided + Default> FlowTable<H> {
    /// An empty table.
    pub fn new(cfg: FlowConfig) -> FlowTable<H> {
        let port_set = PortSet::new(&cfg.ports);
        FlowTable {
            cfg,
            port_set,
            map: HashMap::default(),
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            live: 0,
            timers: BinaryHeap::new(),
            just_decided: None,
            resumable: 0,
            counters: TableCounters::default(),
            watch: Watch::default(),
            client_hint: None,
        }
    }

    /// Connections that found the content watch full (`content_watch_full`).
    pub fn watch_full(&self) -> u64 {
        self.watch.full
    }

    /// The connection whose handshake outcome became known with the last segment, if it is
    /// still open (a closed one was already handed out), for reporting it at once.
    pub fn take_just_decided(&mut self) -> Option<&mut Connection<H>> {
        let (slot, generation) = self.just_decided.take()?;
        if self.gens.get(slot) != Some(&generation) {
            return None;
        }
        match self.slots.get_mut(slot) {
            Some(Slot::Live(c)) => Some(c),
            _ => None,
        }
    }

    /// Whether a segment may belong to a followed connection: on a listed port, or on any port
    /// when connections are also chosen by their content.
    pub fn wants(&self, seg: &TcpSegment<'_>) -> bool {
        self.by_content() || self.listed(seg)
    }

    /// Whether connections on unlisted ports are also followed, when their content is TLS.
    pub fn by_content(&self) -> bool {
        self.cfg.content
    }

    /// Whether a segment is on a listed port.
    pub fn listed(&self, seg: &TcpSegment<'_>) -> bool {
        self.port_set.contains(seg.sport) || self.port_set.contains(seg.dport)
    }

    /// Connections alive now.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Sets a timer for a slot's generation. Timers are never removed when a connection ends
    /// or its deadline moves (the stale entry is skipped when it comes due), so once the heap
    /// holds several times more entries than there are slots, the stale ones are dropped:
    /// memory stays proportional to the connections alive, not to the connections of the last
    /// idle timeout. A slot keeps at most a few current entries (set at creation, on its first
    /// wait for an answer, and at its end).
    fn arm(&mut self, due: i64, slot: usize, generation: u64) {
        self.timers.push(Reverse((due, slot, generation)));
        if self.timers.len() > 4 * self.slots.len() + 4096 {
            let (gens, slots) = (&self.gens, &self.slots);
            self.timers.retain(|Reverse((_, slot, generation))| {
                gens.get(*slot) == Some(generation) && !matches!(slots.get(*slot), Some(Slot::Free) | None)
            });
        }
    }

    /// Whether a timer (a connection's deadline or a tombstone's end) is due at `now`.
    #[inline(always)]
    pub fn due(&self, now: Timestamp) -> bool {
        self.timers
            .peek()
            .is_some_and(|Reverse((deadline, _, _))| *deadline <= now.0)
    }

    /// Finishes connections whose deadline has passed at `now` (packet time or a live clock tick).
    pub fn advance(&mut self, now: Timestamp, out: &mut dyn FnMut(Box<Connection<H>>)) {
        while let Some(Reverse((deadline, slot, generation))) = self.timers.peek().copied() {
            if deadline > now.0 {
                break;
            }
            self.timers.pop();
            if self.gens[slot] != generation {
                continue;
            }
            match &self.slots[slot] {
                Slot::Live(c) => {
                    let due = self.deadline(c);
                    if due > now.0 {
                        self.arm(due, slot, generation);
                        continue;
                    }
                    let end = self.timer_end(c);
                    self.finish(slot, end, out);
                }
                Slot::Tombstone(t) => {
                    if t.until.0 > now.0 {
                        let until = t.until.0;
                        self.arm(until, slot, generation);
                    } else {
                        self.release(slot);
                    }
                }
                Slot::Free => {}
            }
        }
    }

    /// How a connection whose timer ran out ends.
    fn timer_end(&self, c: &Connection<H>) -> EndKind {
        if c.handler.decided() || !pending(c) {
            EndKind::IdleTimeout
        } else {
            EndKind::HandshakeTimeout
        }
    }

    /// When the connection's timer runs out. A pending handshake times out counted from the
    /// connection's first SYN while no SYN-ACK came (retransmitted SYNs do not move it: a client
    /// gives up counting from its first), else from the last payload byte either side sent (ACKs,
    /// keep-alives and SYN retransmissions are not an answer); an idle connection from its last
    /// packet.
    fn deadline(&self, c: &Connection<H>) -> i64 {
        if !c.handler.decided() && pending(c) {
            let t = &c.tcp;
            let since = match t.syns.first() {
                Some(syn) if t.syn_ack.is_none() => syn.ts,
                _ => t
                    .dirs
                    .iter()
                    .filter_map(|d| d.last_data)
                    .map(|a| a.ts)
                    .max()
                    .unwrap_or(t.last.ts),
            };
            return since.0.saturating_add(self.cfg.handshake_timeout_ns);
        }
        c.tcp.last.ts.0.saturating_add(self.cfg.idle_timeout_ns)
    }

    /// Takes one segment of a followed port, first finishing the connections due by its time.
    pub fn segment(&mut self, at: At, seg: &TcpSegment<'_>, out: &mut dyn FnMut(Box<Connection<H>>)) {
        self.segment_on_clock(at, at.ts, seg, out);
    }

    /// Takes one segment on the capture's `clock`: the connections due by the clock are finished
    /// first. A segment stamped ahead of the clock (a jump not yet confirmed by the next frame,
    /// or a damaged timestamp) moves no other connection's timers; its own connection is finished
    /// first if its deadline has passed by the segment's time, as it would have been had the
    /// clock moved (and, when the segment opens a connection in a full table, every connection
    /// due by then, so that room is made by timeouts rather than evictions), unless the jump is
    /// over [`TIMESTAMP_LEAP_NS`] (then a damaged time is far likelier than a connection
    /// answering after so long a silence of the whole capture).
    pub fn segment_on_clock(
        &mut self,
        at: At,
        clock: Timestamp,
        seg: &TcpSegment<'_>,
        out: &mut dyn FnMut(Box<Connection<H>>),
    ) {
        // Usually nothing: the caller's tick has just taken what was due by the clock.
        if self.due(clock) {
            self.advance(clock, out);
        }
        if !self.listed(seg) && !self.map.contains_key(&ShortHash(FlowKey::of(seg))) {
            return self.unlisted(at, clock, seg, out);
        }
        self.track(at, clock, seg, out);
    }

    /// Takes one segment of a followed connection on the clock (see
    /// [`FlowTable::segment_on_clock`]); inlined into its two callers so that the listed ports'
    /// path stays one function.
    #[inline(always)]
    fn track(&mut self, at: At, clock: Timestamp, seg: &TcpSegment<'_>, out: &mut dyn FnMut(Box<Connection<H>>)) {
        let (src, dst) = Endpoint::ends_of(seg);
        let key = FlowKey::new(src, dst);
        if at.ts > clock && at.ts.0.saturating_sub(clock.0) <= TIMESTAMP_LEAP_NS {
            match self.map.get(&ShortHash(key)).map(|&slot| (slot, &self.slots[slot])) {
                Some((slot, Slot::Live(c))) if self.deadline(c) <= at.ts.0 => {
                    let end = self.timer_end(c);
                    self.finish(slot, end, out);
                }
                Some((_, Slot::Live(_))) => {}
                _ if self.live >= self.cfg.max_flows => {
                    // A new connection needs room: what had timed out by this frame's time
                    // goes first (as timeouts, not evictions).
                    self.advance(at.ts, out);
                }
                _ => {}
            }
        }
        let is_new_syn = seg.flags.syn && !seg.flags.ack;
        let slot = match self.map.get(&ShortHash(key)).copied() {
            Some(slot) => match &self.slots[slot] {
                Slot::Live(c) => {
                    let reuse = is_new_syn
                        && c.client_isn.is_none_or(|isn| isn != SeqNumber(seg.seq))
                        && (c.tcp.syn_ack.is_some()
                            || c.tcp.dirs.iter().any(|d| d.payload_bytes > 0)
                            || c.tcp.client == src);
                    if reuse {
                        self.counters.port_reuse += 1;
                        self.finish(slot, EndKind::Closed, out);
                        self.release(slot);
                        self.create(key, at, seg, src, dst, out)
                    } else {
                        slot
                    }
                }
                Slot::Tombstone(t) => {
                    let dir = if t.client == src {
                        Direction::ToServer
                    } else {
                        Direction::ToClient
                    };
                    let linger_over = t.resume.is_some_and(|r| at.ts > r.linger_until);
                    if is_new_syn && (t.client != src || t.client_isn != Some(SeqNumber(seg.seq))) {
                        self.release(slot);
                        self.create(key, at, seg, src, dst, out)
                    } else if let Some(r) = self.resume_mut(slot).and_then(|r| r.continues(dir, seg).then_some(r)) {
                        // The idle connection goes on: it stays the session it was.
                        if !r.resumed {
                            r.resumed = true;
                            self.counters.idle_resumed += 1;
                        }
                        if let Slot::Tombstone(t) = &mut self.slots[slot] {
                            t.until = t.until.max(at.ts.add_nanos(RESUME_NS));
                        }
                        return;
                    } else if linger_over {
                        self.release(slot);
                        self.create(key, at, seg, src, dst, out)
                    } else {
                        // Late retransmissions keep the tombstone alive, so they never start a
                        // phantom connection however long the peer keeps retransmitting.
                        self.counters.late_packets += 1;
                        let new_until = at.ts.add_nanos(LATE_LINGER_NS);
                        if let Slot::Tombstone(t) = &mut self.slots[slot] {
                            if new_until > t.until {
                                t.until = new_until;
                            }
                        }
                        return;
                    }
                }
                Slot::Free => self.create(key, at, seg, src, dst, out),
            },
            None => self.create(key, at, seg, src, dst, out),
        };
        // The timer set at creation used the idle timeout; the handshake timeout applies once
        // the connection waits for an answer (its first SYN or first payload), so re-arm then.
        let Slot::Live(c) = &mut self.slots[slot] else { return };
        let was_decided = c.handler.decided();
        let was_pending = !was_decided && pending(c);
        let dir = if c.tcp.client == src {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let d = dir;
        c.tcp.last = at;
        let f = &mut c.tcp.dirs[d];
        f.packets += 1;
        if seg.flags.ack && !seg.flags.syn {
            f.acks += 1;
        }
        let first_packet = f.first_packet.is_none();
        f.first_packet.get_or_insert(at);
        f.last_packet = Some(at);
        if first_packet && dir == Direction::ToClient && seg.flags.ack {
            c.tcp.server_first_ack = Some(SeqNumber(seg.ack));
        }
        // Checksums (the packet is counted above, whatever they say): a segment that can change
        // the verdict (control flags, or bytes the handshake still reads or compares) is
        // verified. A wrong one is not used once its direction has shown valid checksums (data is
        // set aside, see `settle_held`). Used as they are: a checksum left to the NIC (captured on
        // the sending host with offload: the field holds the pseudo-header's sum, or zero), a
        // direction whose every checksum is wrong (offload of another kind), and a packet larger
        // than the link's MTU (merged by GRO or left to TSO: its checksum is not the bytes').
        let carries = !seg.payload.is_empty()
            && (c.handler.wants_data(dir)
                || (c.kept[d] && c.reasm[d].overlaps_kept(SeqNumber(seg.seq), seg.payload.len())));
        if (seg.flags.syn || seg.flags.fin || seg.flags.rst || carries) && !seg.offload_sized() {
            match seg.checksum() {
                Checksum::Valid => c.checksum_seen_valid[d] = true,
                Checksum::Invalid if c.checksum_seen_valid[d] => {
                    let control = seg.flags.syn || seg.flags.fin || seg.flags.rst;
                    if !control && seg.missing == 0 && c.held[d].is_none() {
                        // Set aside until a good copy replaces it or the peer proves it took it.
                        let data_seq = SeqNumber(seg.seq);
                        c.held[d] = Some(Box::new(Held {
                            seq: data_seq,
                            payload: seg.payload.to_vec(),
                            at,
                        }));
                    } else {
                        c.tcp.dirs[d].bad_checksums += 1;
                        self.counters.bad_checksums += 1;
                    }
                    return;
                }
                Checksum::Invalid | Checksum::Unknown | Checksum::Offloaded => {}
            }
        }
        if c.held.iter().any(Option::is_some) {
            let data_seq = if seg.flags.syn {
                SeqNumber(seg.seq).plus(1)
            } else {
                SeqNumber(seg.seq)
            };
            settle_held(c, dir, data_seq, seg, &mut self.counters);
        }
        if seg.flags.syn {
            if seg.flags.ack {
                if dir == Direction::ToClient {
                    c.tcp.syn_ack_count += 1;
                    c.tcp.syn_ack.get_or_insert(at);
                }
            } else if dir == Direction::ToServer {
                c.tcp.syn_count += 1;
                if c.tcp.syns.len() < SYNS_KEPT {
                    c.tcp.syns.push(at);
                }
                c.client_isn.get_or_insert(SeqNumber(seg.seq));
            }
            c.reasm[d].syn(SeqNumber(seg.seq));
        }
        let data_seq = if seg.flags.syn {
            SeqNumber(seg.seq).plus(1)
        } else {
            SeqNumber(seg.seq)
        };
        {
            let f = &mut c.tcp.dirs[d];
            if !seg.payload.is_empty() || seg.missing > 0 {
                let end = data_seq.plus(seg.payload.len() + seg.missing as usize);
                f.seq_end = Some(f.seq_end.map_or(end, |e| if end.after(e) { end } else { e }));
            }
            if seg.flags.ack {
                let a = SeqNumber(seg.ack);
                f.ack_max = Some(f.ack_max.map_or(a, |m| if a.after(m) { a } else { m }));
            }
        }
        if seg.flags.ack && c.kept[dir.flip()] {
            c.reasm[dir.flip()].acked_kept(SeqNumber(seg.ack));
            c.kept[dir.flip()] = c.reasm[dir.flip()].checking();
        }
        if seg.flags.ack {
            // The peer acknowledged bytes we never saw: the capture lost them, nothing will fill
            // the hole, so deliver what waits behind it now (order across directions matters).
            let o = dir.flip();
            if c.reasm[o].buffered() > 0 && c.handler.wants_data(o) {
                let handler = &mut c.handler;
                let mut sink = |chunk: Chunk<'_>| handler.on_chunk(o, chunk, at);
                let gap = c.reasm[o].acked(SeqNumber(seg.ack), &mut sink);
                if gap > 0 {
                    c.tcp.dirs[o].gaps += 1;
                    c.tcp.dirs[o].gap_bytes += gap;
                }
            }
        }
        if !seg.payload.is_empty() || seg.missing > 0 {
            take_data(c, dir, data_seq, seg.payload, seg.missing, at, &mut self.counters);
        }
        let f = &mut c.tcp.dirs[d];
        if seg.flags.fin && f.fin.is_none() {
            f.fin = Some(at);
        }
        if seg.flags.rst && f.rst.is_none() {
            f.rst = Some(at);
        }
        let both_fin = c.tcp.dirs[Direction::ToServer].fin.is_some() && c.tcp.dirs[Direction::ToClient].fin.is_some();
        let decided = c.handler.decided();
        let starts_waiting = !was_pending && !decided && pending(c);
        if !was_decided && decided {
            self.just_decided = Some((slot, self.gens[slot]));
        }
        if seg.flags.rst {
            self.finish(slot, EndKind::Reset, out);
        } else if both_fin {
            self.finish(slot, EndKind::Closed, out);
        } else if starts_waiting {
            if let Slot::Live(c) = &self.slots[slot] {
                let due = self.deadline(c);
                self.arm(due, slot, self.gens[slot]);
            }
        }
    }

    /// A segment on an unlisted port of a connection the table does not hold: followed only
    /// once its content says TLS (see [`super::watch`]); then the segments kept until that
    /// moment are replayed first, so the connection is whole from its SYN. Kept out of the
    /// listed ports' path.
    #[cold]
    #[inline(never)]
    fn unlisted(&mut self, at: At, clock: Timestamp, seg: &TcpSegment<'_>, out: &mut dyn FnMut(Box<Connection<H>>)) {
        if !self.cfg.content {
            return;
        }
        if let Decision::Follow { replay, client } = self.watch.segment(at, seg, self.cfg.idle_timeout_ns) {
            self.client_hint = Some(client);
            let kept = replay.iter().map(|r| (r.at, r.segment()));
            for (at, seg) in kept.chain(std::iter::once((at, *seg))) {
                self.track(at, clock, &seg, out);
            }
            self.client_hint = None;
        }
    }

    fn create(
        &mut self,
        key: FlowKey,
        at: At,
        seg: &TcpSegment<'_>,
        src: Endpoint,
        dst: Endpoint,
        out: &mut dyn FnMut(Box<Connection<H>>),
    ) -> usize {
        if self.live >= self.cfg.max_flows {
            self.counters.flow_table_full += 1;
            self.evict_oldest(out);
        }
        let (client, server, roles) = if seg.flags.syn && !seg.flags.ack {
            (src, dst, RoleSource::Syn)
        } else if seg.flags.syn && seg.flags.ack {
            (dst, src, RoleSource::SynAck)
        } else if let Some(hint) = self.client_hint {
            // Chosen by its content: the sender of the ClientHello or preamble is the client.
            if hint == src {
                (src, dst, RoleSource::Content)
            } else {
                (dst, src, RoleSource::Content)
            }
        } else {
            let sp = self.port_set.contains(src.port);
            let dp = self.port_set.contains(dst.port);
            if dp && (!sp || dst.port <= src.port) {
                (src, dst, RoleSource::Port)
            } else {
                (dst, src, RoleSource::Port)
            }
        };
        let tcp = TcpFacts {
            client,
            server,
            roles,
            first: at,
            last: at,
            syns: Vec::new(),
            syn_count: 0,
            syn_ack: None,
            syn_ack_count: 0,
            midstream: !seg.flags.syn,
            dirs: PerDir::default(),
            end: EndKind::CaptureEnd,
            by_content: !(self.port_set.contains(src.port) || self.port_set.contains(dst.port)),
            server_first_ack: None,
            client_first_seq: None,
        };
        let conn = Connection {
            tcp,
            handler: H::default(),
            reported: false,
            reasm: PerDir::default(),
            client_isn: None,
            checksum_seen_valid: PerDir::default(),
            held: PerDir::default(),
            kept: PerDir::default(),
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Slot::Live(Box::new(conn));
                s
            }
            None => {
                self.slots.push(Slot::Live(Box::new(conn)));
                self.gens.push(0);
                self.slots.len() - 1
            }
        };
        self.gens[slot] += 1;
        self.map.insert(ShortHash(key), slot);
        self.live += 1;
        self.counters.connections += 1;
        if let Slot::Live(c) = &self.slots[slot] {
            let due = self.deadline(c);
            self.arm(due, slot, self.gens[slot]);
        }
        slot
    }

    /// Finishes the live connection with the earliest deadline, to make room.
    ///
    /// Tombstones met on the way are released too: under this pressure their memory matters more
    /// than absorbing a late retransmission. The evicted connection leaves no tombstone.
    fn evict_oldest(&mut self, out: &mut dyn FnMut(Box<Connection<H>>)) {
        while let Some(Reverse((_, slot, generation))) = self.timers.pop() {
            if self.gens[slot] != generation {
                continue;
            }
            match self.slots[slot] {
                Slot::Live(_) => {
                    self.finish(slot, EndKind::Evicted, out);
                    self.release(slot);
                    break;
                }
                Slot::Tombstone(_) => self.release(slot),
                Slot::Free => {}
            }
        }
    }

    /// Flushes, emits and tombstones one live connection.
    fn finish(&mut self, slot: usize, end: EndKind, out: &mut dyn FnMut(Box<Connection<H>>)) {
        let Slot::Live(mut c) = std::mem::replace(&mut self.slots[slot], Slot::Free) else {
            return;
        };
        // Nothing replaced a segment set aside for its checksum: its bytes are all there is.
        for d in [Direction::ToServer, Direction::ToClient] {
            use_held(&mut c, d, &mut self.counters);
        }
        flush(&mut c);
        c.tcp.end = end;
        let mut until = c.tcp.last.ts.add_nanos(LINGER_NS);
        // A connection whose timer ran out may continue later: remember where it stood, if its
        // handshake was decided (or never in the capture: joined midstream, it waits for none).
        let timer = matches!(end, EndKind::IdleTimeout | EndKind::HandshakeTimeout);
        let resume = (timer && (c.handler.decided() || c.tcp.midstream) && self.resumable < self.cfg.max_flows)
            .then(|| Resume::of(&c.tcp, until));
        if resume.is_some() {
            self.resumable += 1;
            until = c.tcp.last.ts.add_nanos(RESUME_NS);
        }
        let key = FlowKey::new(c.tcp.client, c.tcp.server);
        self.slots[slot] = Slot::Tombstone(Box::new(Tomb {
            until,
            key,
            client: c.tcp.client,
            client_isn: c.client_isn,
            resume,
        }));
        self.live -= 1;
        self.arm(until.0, slot, self.gens[slot]);
        out(c);
    }

    fn release(&mut self, slot: usize) {
        if let Slot::Live(_) = self.slots[slot] {
            self.live -= 1;
        }
        let key = match &self.slots[slot] {
            Slot::Live(c) => Some(FlowKey::new(c.tcp.client, c.tcp.server)),
            Slot::Tombstone(t) => {
                if t.resume.is_some() {
                    self.resumable -= 1;
                }
                Some(t.key)
            }
            Slot::Free => None,
        };
        self.slots[slot] = Slot::Free;
        self.gens[slot] += 1;
        self.free.push(slot);
        if let Some(k) = key {
            if self.map.get(&ShortHash(k)) == Some(&slot) {
                self.map.remove(&ShortHash(k));
            }
        }
    }

    /// The idle-expiry memory of a tombstone.
    fn resume_mut(&mut self, slot: usize) -> Option<&mut Resume> {
        match &mut self.slots[slot] {
            Slot::Tombstone(t) => t.resume.as_mut(),
            _ => None,
        }
    }

    /// Finishes every live connection (end of capture or stop of a live run).
    pub fn finish_all(&mut self, out: &mut dyn FnMut(Box<Connection<H>>)) {
        let mut live: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Live(c) => Some((c.tcp.first.frame, i)),
                _ => None,
            })
            .collect();
        live.sort_unstable();
        for (_, slot) in live {
            self.finish(slot, EndKind::CaptureEnd, out);
        }
        self.map.clear();
        self.slots.clear();
        self.gens.clear();
        self.free.clear();
        self.timers.clear();
        self.live = 0;
        self.resumable = 0;
    }
}

/// Whether the connection waits for an answer (SYN unanswered, or a handshake in progress).
fn pending<H>(c: &Connection<H>) -> bool {
    (c.tcp.syn_count > 0 && c.tcp.syn_ack.is_none()) || c.tcp.dirs.iter().any(|d| d.payload_bytes > 0)
}

/// Takes one segment's payload (or the bytes the snap length cut) in direction `dir`.
#[inline(always)]
fn take_data<H: StreamHandler>(
    c: &mut Connection<H>,
    dir: Direction,
    data_seq: SeqNumber,
    payload: &[u8],
    missing: u32,
    at: At,
    counters: &mut TableCounters,
) {
    let d = dir;
    let f = &mut c.tcp.dirs[d];
    f.payload_bytes += payload.len() as u64;
    f.snaplen_missing += missing as u64;
    if f.first_data.is_none() && dir == Direction::ToServer {
        c.tcp.client_first_seq = Some(data_seq);
    }
    let f = &mut c.tcp.dirs[d];
    f.first_data.get_or_insert(at);
    f.last_data = Some(at);
    if c.handler.wants_data(dir) {
        let handler = &mut c.handler;
        let mut sink = |chunk: Chunk<'_>| handler.on_chunk(dir, chunk, at);
        if !c.reasm[d].started() {
            // No SYN for this direction: its first bytes may be anywhere in the stream.
            sink(Chunk::Gap(0));
        }
        let note = c.reasm[d].segment(data_seq, payload, at.frame, &mut sink);
        if missing > 0 && !note.retransmission {
            c.reasm[d].skip_missing(missing as u64, &mut sink);
        }
        let f = &mut c.tcp.dirs[d];
        if note.retransmission {
            f.retransmissions += 1;
        }
        if note.out_of_order {
            f.out_of_order += 1;
        }
        if note.gap_bytes > 0 {
            f.gaps += 1;
            f.gap_bytes += note.gap_bytes;
        }
        if note.buffer_full {
            counters.reassembly_buffer_full += 1;
        }
        if let Some(conflict) = note.conflict {
            note_conflict(c, d, conflict, counters);
        }
        if !c.handler.wants_data(dir) {
            c.reasm[d].abandon();
        }
        c.kept[d] = c.reasm[d].checking();
    } else if c.kept[d] {
        if let Some(conflict) = c.reasm[d].check(data_seq, payload, at.frame) {
            note_conflict(c, d, conflict, counters);
        }
        c.kept[d] = c.reasm[d].checking();
    }
}

/// Settles the data segments set aside for a wrong checksum, before `seg` (sent in `dir`, its
/// data at `data_seq`) is used: a copy of the same bytes with a good checksum replaces one (it
/// is dropped and counted); the peer acknowledging its bytes proves the receiver took it (a
/// capture rewritten after the fact, or damaged on the way to the sensor only), so it is used.
fn settle_held<H: StreamHandler>(
    c: &mut Connection<H>,
    dir: Direction,
    data_seq: SeqNumber,
    seg: &TcpSegment<'_>,
    counters: &mut TableCounters,
) {
    if let Some(h) = &c.held[dir] {
        let end = data_seq.plus(seg.payload.len());
        if !seg.payload.is_empty() && h.seq.diff(data_seq) >= 0 && end.after(h.seq) {
            c.held[dir] = None;
            c.tcp.dirs[dir].bad_checksums += 1;
            counters.bad_checksums += 1;
        }
    }
    let o = dir.flip();
    if seg.flags.ack && c.held[o].as_ref().is_some_and(|h| SeqNumber(seg.ack).after(h.seq)) {
        use_held(c, o, counters);
    }
}

/// Uses the segment set aside in direction `d` after all.
fn use_held<H: StreamHandler>(c: &mut Connection<H>, d: Direction, counters: &mut TableCounters) {
    if let Some(h) = c.held[d].take() {
        take_data(c, d, h.seq, &h.payload, 0, h.at, counters);
    }
}

/// Counts bytes sent twice with different contents and keeps the first such event.
fn note_conflict<H>(c: &mut Connection<H>, d: Direction, conflict: Conflict, counters: &mut TableCounters) {
    counters.overlap_conflicts += 1;
    let r = &c.reasm[d];
    let at = ConflictAt {
        start: r.relative(conflict.start),
        end: r.relative(conflict.end),
        kept_frame: conflict.kept_frame,
        other_frame: conflict.other_frame,
    };
    let f = &mut c.tcp.dirs[d];
    f.overlap_conflicts += 1;
    f.first_conflict.get_or_insert(at);
}

/// Delivers whatever each direction still buffers, with explicit gaps for the holes.
fn flush<H: StreamHandler>(c: &mut Connection<H>) {
    for dir in [Direction::ToServer, Direction::ToClient] {
        let d = dir;
        if c.reasm[d].buffered() == 0 {
            continue;
        }
        let at = c.tcp.dirs[d].last_packet.unwrap_or(c.tcp.last);
        let handler = &mut c.handler;
        let mut sink = |chunk: Chunk<'_>| handler.on_chunk(dir, chunk, at);
        let gap = c.reasm[d].flush(&mut sink);
        if gap > 0 {
            c.tcp.dirs[d].gaps += 1;
            c.tcp.dirs[d].gap_bytes += gap;
        }
    }
}
