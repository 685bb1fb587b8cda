//! The batches the reader hands to the worker threads.

use super::{Core, Shared, ordered};
use crate::capture::{LinkType, Timestamp};
use crate::decode;
use crate::flow::{At, FlowKey, PortSet};
use crate::report::model::SessionReport;
use std::hash::BuildHasher;
use std::sync::Arc;

/// Packets handed to the workers in one message, shared by all of them: each worker reads the
/// list of its own connections' packets. The packets are slices of the reader's buffers (kept
/// alive by the batch), or copies for packets that were not in a shared buffer.
#[derive(Default)]
pub(super) struct Batch {
    /// The reader's buffers the packets point into.
    pub(super) shared: Vec<Arc<Vec<u8>>>,
    /// Copies of packets that were not in a shared buffer (merged inputs).
    pub(super) data: Vec<u8>,
    /// Per worker, its packets in capture order.
    pub(super) lists: Vec<Vec<BatchPacket>>,
    /// IP fragments, in capture order, for every worker (each reassembles them all and keeps
    /// the datagrams of its own connections).
    pub(super) fragments: Vec<FragmentRef>,
    /// Bytes of packets in the batch.
    pub(super) bytes: usize,
    /// Packet time reached by the whole capture when the batch was sent.
    pub(super) clock: Timestamp,
    /// The number of the stretch's last frame (0: none).
    pub(super) last_frame: u64,
}

/// One packet for a worker, decoded by the reader: the worker needs only the header fields and
/// the payload (read only while the connection's handshake is undecided), so it never touches
/// the frame's headers again.
pub(super) struct BatchPacket {
    pub(super) at: At,
    /// The capture's clock when the packet was read (see `Analyzer::packet`).
    pub(super) clock: Timestamp,
    pub(super) src: std::net::IpAddr,
    pub(super) dst: std::net::IpAddr,
    pub(super) sport: u16,
    pub(super) dport: u16,
    pub(super) seq: u32,
    pub(super) ack: u32,
    pub(super) flags: decode::TcpFlags,
    pub(super) missing: u32,
    /// Payload: index into `shared`, or `u32::MAX` for `data`; offset and length there.
    pub(super) buf: u32,
    pub(super) start: u32,
    pub(super) len: u32,
    /// Lengths of the TCP header and the IPv4 header just before the payload (0: not at hand),
    /// for the checksum.
    pub(super) tcp_hlen: u8,
    pub(super) ip4_hlen: u8,
}

/// Where an IP fragment (the whole IP packet) lies in the batch's buffers.
pub(super) struct FragmentRef {
    pub(super) at: At,
    pub(super) clock: Timestamp,
    pub(super) buf: u32,
    pub(super) start: u32,
    pub(super) len: u32,
}

impl Batch {
    /// The bytes at `start..start + len` of buffer `buf` (`u32::MAX`: the copies).
    pub(super) fn bytes(&self, buf: u32, start: u32, len: u32) -> Option<&[u8]> {
        let range = start as usize..start as usize + len as usize;
        if buf == u32::MAX {
            self.data.get(range)
        } else {
            self.shared.get(buf as usize).and_then(|b| b.get(range))
        }
    }

    /// The segment of a packet, its payload in the batch's buffers.
    pub(super) fn segment<'a>(&'a self, p: &BatchPacket) -> decode::TcpSegment<'a> {
        let range = p.start as usize..p.start as usize + p.len as usize;
        let payload = if p.buf == u32::MAX {
            self.data.get(range)
        } else {
            self.shared.get(p.buf as usize).and_then(|b| b.get(range))
        };
        let buf = if p.buf == u32::MAX {
            Some(self.data.as_slice())
        } else {
            self.shared.get(p.buf as usize).map(|b| b.as_slice())
        };
        let start = p.start as usize;
        let tcp_start = start.saturating_sub(usize::from(p.tcp_hlen));
        let ip_start = tcp_start.saturating_sub(usize::from(p.ip4_hlen));
        decode::TcpSegment {
            src: p.src,
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            seq: p.seq,
            ack: p.ack,
            flags: p.flags,
            payload: payload.unwrap_or(&[]),
            missing: p.missing,
            tcp_header: buf.and_then(|b| b.get(tcp_start..start)).unwrap_or(&[]),
            ip4_header: buf.and_then(|b| b.get(ip_start..tcp_start)).unwrap_or(&[]),
        }
    }

    pub(super) fn clear(&mut self, workers: usize) {
        self.shared.clear();
        self.data.clear();
        self.lists.resize_with(workers, Vec::new);
        for l in &mut self.lists {
            l.clear();
        }
        self.fragments.clear();
        self.bytes = 0;
        self.last_frame = 0;
    }
}

/// One stretch of the capture as framed, in order: where each packet lies, its frame number,
/// time and the capture's clock. Framing is the only step that must follow the file in order;
/// decoding a stretch and splitting it over the workers is done after, without any lock.
#[derive(Default)]
pub(super) struct Framed {
    /// The capture's buffers the packets lie in.
    pub(super) shared: Vec<Arc<Vec<u8>>>,
    /// Copies of packets that were not in a shared buffer (merged inputs).
    pub(super) data: Vec<u8>,
    pub(super) packets: Vec<FramedPacket>,
    /// The capture's clock at the end of the stretch.
    pub(super) clock: Timestamp,
}

pub(super) struct FramedPacket {
    pub(super) at: At,
    pub(super) clock: Timestamp,
    pub(super) link: LinkType,
    /// Index into `shared`, or `u32::MAX` for `data`; offset and length there.
    pub(super) buf: u32,
    pub(super) start: u32,
    pub(super) len: u32,
    /// The frame was cut by the snap length.
    pub(super) cut: bool,
}

impl Framed {
    pub(super) fn bytes_of(&self, p: &FramedPacket) -> &[u8] {
        let range = p.start as usize..p.start as usize + p.len as usize;
        let bytes = if p.buf == u32::MAX {
            self.data.get(range)
        } else {
            self.shared.get(p.buf as usize).and_then(|b| b.get(range))
        };
        bytes.unwrap_or(&[])
    }
}

/// Decodes a framed stretch and splits it over the workers by connection (counting what the
/// decoder skipped on `core`); the batch keeps the stretch's buffers alive.
pub(super) fn dispatch(
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
    into.last_frame = framed.packets.last().map_or(0, |p| p.at.frame);
    std::mem::swap(&mut into.shared, &mut framed.shared);
    std::mem::swap(&mut into.data, &mut framed.data);
    into.clock = framed.clock;
}

/// Worker `me` takes its packets of a batch, and the IP fragments every worker reassembles, in
/// capture order; each decided session goes to `out` with the frame that decided it. In order
/// (NDJSON), the worker also ticks its timers at the other workers' frames where one thread
/// would (see [`ordered::Ticks`]); otherwise it ends the batch on the batch's clock.
pub(super) fn walk(
    core: &mut Core,
    shared: &Shared<'_>,
    me: usize,
    b: &Batch,
    out: &mut dyn FnMut(u64, SessionReport),
) {
    let mut frags = b.fragments.iter().peekable();
    let mut ticks = ordered::Ticks::new(if shared.ordered { b.lists.len() } else { 0 });
    for p in b.lists.get(me).map(Vec::as_slice).unwrap_or(&[]) {
        while let Some(f) = frags.next_if(|f| f.at.frame < p.at.frame) {
            fragment(core, shared, me, b, f, &mut ticks, out);
        }
        let frame = p.at.frame;
        if shared.ordered {
            ticks.tick_at(core, b, me, (frame, p.clock), out);
        } else {
            core.tick(p.clock, &mut |s| out(frame, s));
        }
        core.segment(p.at, &b.segment(p), &mut |s| out(frame, s));
    }
    for f in frags {
        fragment(core, shared, me, b, f, &mut ticks, out);
    }
    if !shared.ordered {
        core.tick(b.clock, &mut |s| out(b.last_frame, s));
    } else {
        ticks.catch_up(core, b, me, (u64::MAX, b.clock), out);
    }
}

/// Takes one IP fragment on worker `me`: a datagram it completes goes on if its connection
/// is this worker's (the same choice `dispatch` makes); in order, any other followed datagram
/// is a tick, as on one thread.
fn fragment(
    core: &mut Core,
    shared: &Shared<'_>,
    me: usize,
    b: &Batch,
    f: &FragmentRef,
    ticks: &mut ordered::Ticks,
    out: &mut dyn FnMut(u64, SessionReport),
) {
    let Some(datagram) = b
        .bytes(f.buf, f.start, f.len)
        .and_then(|ip| core.frags.add(ip, f.at.ts))
    else {
        return;
    };
    let skip = match decode::decode_packet(&core.opts.tunnels, LinkType::RAW, &datagram, false) {
        Ok(decode::Decoded::Tcp(seg)) => {
            // Followed as one thread follows it (`Analyzer::tcp`): on a listed port, or on any
            // port when connections are also chosen by their content.
            let listed = shared.ports.contains(seg.sport) || shared.ports.contains(seg.dport);
            if !listed && core.opts.ports_only {
                return;
            }
            let frame = f.at.frame;
            if shared.ordered {
                ticks.tick_at(core, b, me, (frame, f.clock), out);
            }
            let h = shared.hasher.hash_one(FlowKey::of(&seg));
            let workers = b.lists.len();
            if ((u128::from(h) * workers as u128) >> 64) as usize == me {
                if listed {
                    core.tcp_on_ports += 1;
                }
                if !shared.ordered {
                    core.tick(f.clock, &mut |s| out(frame, s));
                }
                core.segment(f.at, &seg, &mut |s| out(frame, s));
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
