//! The batches the reader hands to the worker threads.

use crate::capture::{LinkType, Timestamp};
use crate::decode;
use crate::flow::At;
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
