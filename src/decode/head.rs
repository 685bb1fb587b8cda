//! The fast path's headers in a few words, read once where the frame is in cache.
//!
//! A parallel run frames a stretch of the capture on one thread and analyses each packet on the
//! thread of its connection. Reading the headers again there costs a cache miss per packet (the
//! frame was last touched by the other core); [`fast_head`] reads them while framing and keeps
//! what [`super::decode_fast`] would decode of an IPv4 segment as a small copyable record, from
//! which [`Head4::segment`] rebuilds the same segment over the frame without reading its
//! headers. IPv6 gives only the endpoints (its addresses would double the record; the thread
//! of its connection decodes it again).

use super::{FastHeaders, FastIp, TcpFlags, TcpSegment, fast_headers, fast_link};
use crate::capture::LinkType;
use std::net::{IpAddr, Ipv4Addr};

/// What [`fast_head`] read of a frame the fast path decodes.
#[derive(Clone, Copy, Debug)]
pub enum FastHead {
    /// IPv4: everything the segment needs.
    V4(Head4),
    /// IPv6: the endpoints (address bits and port).
    V6((u128, u16), (u128, u16)),
}

/// An IPv4 segment as [`super::decode_fast`] decodes it, without the frame: addresses, ports,
/// sequence numbers and flags, and where the headers and the payload lie in the frame.
#[derive(Clone, Copy, Debug)]
pub struct Head4 {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    /// Where the IP header, the TCP header and the payload start (at most 22 + 60 + 60).
    ip: u8,
    tcp: u8,
    payload: u8,
    /// The TCP flags byte.
    flags: u8,
    /// Where the IP packet ends by its own length, or by the frame's when it was not cut (a
    /// length past an uncut frame is the header's lie: nothing is missing).
    ip_end: u32,
}

impl FastHead {
    /// Source and destination: address bits (IPv4 in the low 32) and port.
    #[inline(always)]
    pub fn endpoints(&self) -> ((u128, u16), (u128, u16)) {
        match self {
            FastHead::V4(h) => ((u128::from(h.src), h.sport), (u128::from(h.dst), h.dport)),
            FastHead::V6(a, b) => (*a, *b),
        }
    }
}

/// The headers of a frame exactly when [`super::decode_fast`] decodes it (`was_cut`: the frame
/// was cut by the snap length).
#[inline(always)]
pub fn fast_head(link: LinkType, d: &[u8], was_cut: bool) -> Option<FastHead> {
    let ip = fast_link(link, d)?;
    let FastHeaders {
        ip: iph,
        tcp: th,
        tcp_start,
        tcp_end,
        ip_end,
    } = fast_headers(d, ip)?;
    let sport = u16::from_be_bytes([th[0], th[1]]);
    let dport = u16::from_be_bytes([th[2], th[3]]);
    match iph {
        FastIp::V4(h) => Some(FastHead::V4(Head4 {
            src: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            dst: u32::from_be_bytes([h[16], h[17], h[18], h[19]]),
            sport,
            dport,
            seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
            ack: u32::from_be_bytes([th[8], th[9], th[10], th[11]]),
            ip: u8::try_from(ip).ok()?,
            tcp: u8::try_from(tcp_start).ok()?,
            payload: u8::try_from(tcp_end).ok()?,
            flags: th[13],
            ip_end: u32::try_from(if was_cut { ip_end } else { ip_end.min(d.len()) }).ok()?,
        })),
        FastIp::V6(h) => {
            let (mut s, mut t) = ([0u8; 16], [0u8; 16]);
            s.copy_from_slice(&h[8..24]);
            t.copy_from_slice(&h[24..40]);
            Some(FastHead::V6(
                (u128::from_be_bytes(s), sport),
                (u128::from_be_bytes(t), dport),
            ))
        }
    }
}

impl Head4 {
    /// The segment [`super::decode_fast`] decodes from `d`, the frame this was read from
    /// (`None` if `d` is not long enough for it: another frame).
    #[inline(always)]
    pub fn segment<'a>(&self, d: &'a [u8]) -> Option<TcpSegment<'a>> {
        let (ip, tcp, payload) = (usize::from(self.ip), usize::from(self.tcp), usize::from(self.payload));
        let ip_end = self.ip_end as usize;
        let end = ip_end.min(d.len());
        Some(TcpSegment {
            src: IpAddr::V4(Ipv4Addr::from(self.src)),
            dst: IpAddr::V4(Ipv4Addr::from(self.dst)),
            sport: self.sport,
            dport: self.dport,
            seq: self.seq,
            ack: self.ack,
            flags: TcpFlags {
                syn: self.flags & 0x02 != 0,
                ack: self.flags & 0x10 != 0,
                fin: self.flags & 0x01 != 0,
                rst: self.flags & 0x04 != 0,
            },
            payload: d.get(payload..end)?,
            missing: (ip_end - end) as u32,
            tcp_header: d.get(tcp..payload)?,
            ip4_header: d.get(ip..tcp)?,
        })
    }
}
