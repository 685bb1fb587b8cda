//! The batches the framing worker hands to every worker.

use super::{Core, Shared};
use crate::capture::{LinkType, Timestamp};
use crate::decode;
use crate::flow::{At, ip_bits};
use crate::report::model::SessionReport;
use std::sync::Arc;

/// One stretch of the capture as framed, in order, shared by all the workers: where each packet
/// lies, its frame number, time and the capture's clock, and which worker takes it. The worker
/// that framed the stretch reads each frame's headers once, while they are in its cache, to
/// choose its worker and to keep what the segment needs in a small record ([`dispatch`]); every
/// worker then walks its own records and rebuilds each segment over the frame without reading
/// its headers again (on the other core they would be a cache miss per packet).
#[derive(Default)]
pub(super) struct Batch {
    /// The capture's buffers the packets lie in (kept alive by the batch).
    pub(super) shared: Vec<Arc<Vec<u8>>>,
    /// Copies of packets that were not in a shared buffer (merged inputs).
    pub(super) data: Vec<u8>,
    pub(super) packets: Vec<FramedPacket>,
    /// Per packet, the worker that takes it, or [`SKIP`] or [`EVERY`] (in order only: the
    /// other workers' timers tick at it).
    pub(super) owners: Vec<u32>,
    /// Per worker, the packets it takes, IP fragments included, in order: a worker walks its
    /// own list, not a branch per packet of every worker's.
    pub(super) lists: Vec<Vec<Own>>,
    /// Packet time reached by the whole capture at the end of the stretch.
    pub(super) clock: Timestamp,
    /// The clock restarted earlier within the stretch (see `Accounting::fell_back`): it does
    /// not only move on along the packets.
    pub(super) clock_back: bool,
    /// The number of the stretch's last frame (0: none).
    pub(super) last_frame: u64,
}

/// A packet of a worker's list: what the worker needs of its [`FramedPacket`] and what the
/// framing worker read of its headers (the worker reads its own list, not the batch's packets).
#[derive(Clone, Copy)]
pub(super) struct Own {
    /// The packet's index in the batch.
    i: u32,
    /// Where its bytes lie (as in [`FramedPacket`]).
    buf: u32,
    start: u32,
    len: u32,
    at: At,
    clock: Timestamp,
    what: What,
}

/// What the framing worker made of a packet.
#[derive(Clone, Copy)]
enum What {
    /// An IPv4 segment of the fast path, its headers read, and its copy fingerprint
    /// ([`decode::dedup::fingerprint`]).
    Fast(decode::Head4, u64),
    /// Any other segment (IPv6, tunnels, other link types): the worker decodes it.
    Decode,
    /// An IP fragment (every worker takes each).
    Fragment,
}

pub(super) struct FramedPacket {
    pub(super) at: At,
    /// The capture's clock when the packet was read (see `Analyzer::packet`).
    pub(super) clock: Timestamp,
    pub(super) link: LinkType,
    /// Index into `shared`, or `u32::MAX` for `data`; offset and length there.
    pub(super) buf: u32,
    pub(super) start: u32,
    pub(super) len: u32,
    /// The frame was cut by the snap length.
    pub(super) cut: bool,
}

impl Batch {
    fn bytes_of(&self, p: &FramedPacket) -> &[u8] {
        self.bytes_at(p.buf, p.start, p.len)
    }

    #[inline(always)]
    fn bytes_at(&self, buf: u32, start: u32, len: u32) -> &[u8] {
        let range = start as usize..start as usize + len as usize;
        let bytes = if buf == u32::MAX {
            self.data.get(range)
        } else {
            self.shared.get(buf as usize).and_then(|b| b.get(range))
        };
        bytes.unwrap_or(&[])
    }

    /// Room for `packets` more packets.
    pub(super) fn reserve(&mut self, packets: usize) {
        self.packets.reserve(packets);
    }

    pub(super) fn clear(&mut self) {
        self.shared.clear();
        self.data.clear();
        self.packets.clear();
        self.owners.clear();
        for l in &mut self.lists {
            l.clear();
        }
        self.clock = Timestamp::default();
        self.clock_back = false;
        self.last_frame = 0;
    }
}

/// A packet no worker takes (not TCP, or a connection not followed; counted by `dispatch`).
const SKIP: u32 = u32::MAX;
/// An IP fragment: every worker reassembles every fragment and keeps the datagrams of its own
/// connections (they are rare).
const EVERY: u32 = u32::MAX - 1;

/// The worker of the connection between two endpoints (address bits, IPv4 in the low 32, and
/// port) among `workers`: the same for both directions, and on every run.
#[inline(always)]
fn worker_of(a: (u128, u16), b: (u128, u16), workers: usize) -> usize {
    let end = |(ip, port): (u128, u16)| ((ip as u64) ^ ((ip >> 64) as u64)).rotate_left(16) ^ u64::from(port);
    let (x, y) = (end(a), end(b));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let h = (lo.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29) ^ hi).wrapping_mul(0xff51_afd7_ed55_8ccd);
    // Multiply-shift maps the hash onto the workers without a division (Lemire's fastrange).
    ((u128::from(h) * workers as u128) >> 64) as usize
}

/// The worker of a segment's connection.
fn worker_of_segment(seg: &decode::TcpSegment<'_>, workers: usize) -> usize {
    worker_of((ip_bits(seg.src), seg.sport), (ip_bits(seg.dst), seg.dport), workers)
}

/// Decodes a framed stretch just enough to choose each packet's worker by its connection
/// (counting on `core` what the decoder skipped and the segments on the listed ports).
pub(super) fn dispatch(b: &mut Batch, shared: &Shared<'_>, core: &mut Core) {
    let mut owners = std::mem::take(&mut b.owners);
    let mut lists = std::mem::take(&mut b.lists);
    owners.clear();
    if shared.ordered {
        owners.reserve(b.packets.len());
    }
    lists.resize_with(shared.workers, Vec::new);
    for l in &mut lists {
        l.clear();
        l.reserve(b.packets.len() / shared.workers.max(1) + 64);
    }
    let content = !core.opts.ports_only;
    for (i, p) in b.packets.iter().enumerate() {
        let data = b.bytes_of(p);
        let i = i as u32;
        // The common case: the headers read into a record, no segment built.
        let (owner, what) = match decode::fast_head(p.link, data, p.cut) {
            Some(head) => {
                let (src, dst) = head.endpoints();
                let what = match head {
                    decode::FastHead::V4(h) => match h.segment(data).as_ref().and_then(decode::dedup::fingerprint) {
                        Some(print) => What::Fast(h, print),
                        None => What::Decode,
                    },
                    decode::FastHead::V6(..) => What::Decode,
                };
                (owner_of(core, shared, content, src, dst), what)
            }
            None => {
                let owner = owner_slow(core, shared, content, p, data);
                let what = if owner == EVERY { What::Fragment } else { What::Decode };
                (owner, what)
            }
        };
        let own = Own {
            i,
            buf: p.buf,
            start: p.start,
            len: p.len,
            at: p.at,
            clock: p.clock,
            what,
        };
        if shared.ordered {
            owners.push(owner);
        }
        match lists.get_mut(owner as usize) {
            Some(l) => l.push(own),
            None if owner == EVERY => lists.iter_mut().for_each(|l| l.push(own)),
            None => {}
        }
    }
    b.owners = owners;
    b.lists = lists;
}

/// [`dispatch`] for a frame the fast path declined: tunnels, fragments, other traffic.
#[cold]
#[inline(never)]
fn owner_slow(core: &mut Core, shared: &Shared<'_>, content: bool, p: &FramedPacket, data: &[u8]) -> u32 {
    match decode::decode_slow(&core.opts.tunnels, p.link, data, p.cut) {
        Ok(decode::Decoded::Tcp(seg)) => owner_of(
            core,
            shared,
            content,
            (ip_bits(seg.src), seg.sport),
            (ip_bits(seg.dst), seg.dport),
        ),
        Ok(decode::Decoded::Fragment(_)) => EVERY,
        Err(skip) => {
            if skip.is_anomaly() {
                *core.anomalies.entry(skip.key()).or_default() += 1;
            }
            SKIP
        }
    }
}

/// The worker of a segment between `src` and `dst`, or [`SKIP`] if it is not followed.
#[inline(always)]
fn owner_of(core: &mut Core, shared: &Shared<'_>, content: bool, src: (u128, u16), dst: (u128, u16)) -> u32 {
    // Followed as one thread follows it (`Analyzer::tcp`): on a listed port, or on any port
    // when connections are also chosen by their content.
    if shared.ports.contains(src.1) || shared.ports.contains(dst.1) {
        core.tcp_on_ports += 1;
    } else if !content {
        return SKIP;
    }
    worker_of(src, dst, shared.workers) as u32
}

/// Worker `me` walks a batch: it takes its own segments and every IP fragment in capture order;
/// each decided session goes to `out` with the frame that decided it. In order (NDJSON), the
/// worker also ticks its timers at the other workers' segments where one thread would (where a
/// timer is due), so a session gets the deciding frame it gets on one thread; otherwise it ends
/// the batch on the batch's clock.
pub(super) fn walk(
    core: &mut Core,
    shared: &Shared<'_>,
    me: usize,
    b: &Batch,
    out: &mut dyn FnMut(u64, SessionReport),
) {
    let me32 = me as u32;
    // In order: the packets before this one are ticked at where due.
    let mut ticked = 0;
    for own in b.lists.get(me).map(Vec::as_slice).unwrap_or(&[]) {
        let i = own.i as usize;
        if shared.ordered {
            ticks(core, b, me32, ticked..i, out);
            ticked = i + 1;
        }
        let data = b.bytes_at(own.buf, own.start, own.len);
        let frame = own.at.frame;
        let (seg, print) = match own.what {
            What::Fast(head, print) => (head.segment(data), Some(print)),
            What::Decode => {
                let Some(p) = b.packets.get(i) else { continue };
                let seg = decode::decode_fast(p.link, data, p.cut).or_else(|| {
                    match decode::decode_slow(&core.opts.tunnels, p.link, data, p.cut) {
                        Ok(decode::Decoded::Tcp(seg)) => Some(seg),
                        _ => None,
                    }
                });
                (seg, seg.as_ref().and_then(decode::dedup::fingerprint))
            }
            What::Fragment => {
                if let Some(p) = b.packets.get(i) {
                    fragment(core, shared, me, b, p, out);
                }
                continue;
            }
        };
        // `dispatch` decoded this frame to a segment: it decodes the same again.
        let Some(seg) = seg else { continue };
        if seg.missing > 0 {
            *core.anomalies.entry("snaplen_truncated_frames").or_default() += 1;
        }
        core.tick(own.clock, &mut |s| out(frame, s));
        core.segment_printed(own.at, &seg, print, &mut |s| out(frame, s));
    }
    if shared.ordered {
        ticks(core, b, me32, ticked..b.packets.len(), out);
    } else {
        if b.clock_back {
            // The timers due before the clock went back are due there, not at the end.
            for p in &b.packets {
                if core.table.due(p.clock) {
                    let frame = p.at.frame;
                    core.tick(p.clock, &mut |s| out(frame, s));
                }
            }
        }
        core.tick(b.clock, &mut |s| out(b.last_frame, s));
    }
}

/// In order: ticks `core` at the other workers' segments among the packets `range` where one of
/// its timers is due, as one thread ticks at every followed segment. Unless the clock restarted
/// earlier within the batch, clocks never go back along it, so when no timer is due by the
/// clock of the range's last packet, none is before.
fn ticks(
    core: &mut Core,
    b: &Batch,
    me32: u32,
    range: std::ops::Range<usize>,
    out: &mut dyn FnMut(u64, SessionReport),
) {
    let last = range.end.checked_sub(1).filter(|&l| l >= range.start);
    if !b.clock_back
        && !last
            .and_then(|l| b.packets.get(l))
            .is_some_and(|p| core.table.due(p.clock))
    {
        return;
    }
    let packets = b.packets.get(range.clone()).unwrap_or(&[]);
    let owners = b.owners.get(range).unwrap_or(&[]);
    for (p, &owner) in packets.iter().zip(owners) {
        if owner != me32 && owner != SKIP && owner != EVERY && core.table.due(p.clock) {
            let frame = p.at.frame;
            core.tick(p.clock, &mut |s| out(frame, s));
        }
    }
}

/// Takes one IP fragment on worker `me`: a datagram it completes goes on if its connection
/// is this worker's (the same choice as for a segment); in order, any other followed datagram
/// is a tick, as on one thread.
#[cold]
fn fragment(
    core: &mut Core,
    shared: &Shared<'_>,
    me: usize,
    b: &Batch,
    p: &FramedPacket,
    out: &mut dyn FnMut(u64, SessionReport),
) {
    let Ok(decode::Decoded::Fragment(ip)) = decode::decode_slow(&core.opts.tunnels, p.link, b.bytes_of(p), p.cut)
    else {
        return;
    };
    let Some(datagram) = core.frags.add(ip, p.at.ts) else {
        return;
    };
    let skip = match decode::decode_packet(&core.opts.tunnels, LinkType::RAW, &datagram, false) {
        Ok(decode::Decoded::Tcp(seg)) => {
            let listed = shared.ports.contains(seg.sport) || shared.ports.contains(seg.dport);
            if !listed && core.opts.ports_only {
                return;
            }
            let frame = p.at.frame;
            if shared.ordered {
                core.tick(p.clock, &mut |s| out(frame, s));
            }
            if worker_of_segment(&seg, shared.workers) == me {
                if listed {
                    core.tcp_on_ports += 1;
                }
                if !shared.ordered {
                    core.tick(p.clock, &mut |s| out(frame, s));
                }
                core.segment(p.at, &seg, &mut |s| out(frame, s));
            }
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
