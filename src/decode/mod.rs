//! Decode: link type → (tunnels) → IP → TCP.
//!
//! What it is: a pure function from a frame's bytes and link type to a [`TcpSegment`] view, an
//! IP fragment to reassemble, or a reason the frame was skipped. Ethernet (with 802.1Q / QinQ
//! tags, and PPPoE sessions), Linux cooked SLL and SLL2, raw IP (link types 101, 12, 14, 228,
//! 229) and BSD NULL / LOOP are handled. Inside them, tunnels and shims are opened recursively
//! (at most [`MAX_LAYERS`] layers, see [`tunnel`]): VXLAN, VXLAN-GPE, Geneve, GRE (with
//! transparent Ethernet bridging and PPTP's enhanced GRE), ERSPAN I/II/III, GTP-U, MPLS label
//! stacks, IP-in-IP, IPv6-in-IP and Cisco MetaData. The session's addresses are always the
//! innermost IP header's. The plain case (Ethernet or raw IP, IPv4 or IPv6, TCP) is decoded
//! by hand ([`fast_path`]); everything else goes through the layer walker, which hands IP
//! headers to etherparse.
//!
//! What it is not: IP fragments are reassembled by [`fragments::Reassembler`], which the
//! pipeline owns (decoding is stateless). Frames skipped for an ether type, IP protocol or
//! tunnel variant that is not decoded are counted by type (see [`Skip::key`]).
//!
//! Guarantees: never panics on any input; a frame cut by the snap length yields the bytes that
//! were captured and says how many were missing.

mod checksum;
pub mod dedup;
pub mod fragments;
mod head;
mod names;
pub mod tunnel;

use crate::capture::LinkType;
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
pub use head::{FastHead, Head4, fast_head};
use std::net::IpAddr;
pub use tunnel::{Config, MAX_LAYERS};

/// TCP header flags that matter to us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A decoded TCP segment borrowing the frame.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Payload bytes captured.
    pub payload: &'a [u8],
    /// Payload bytes that were on the wire but not captured (snap length).
    pub missing: u32,
    /// The TCP header (with options), just before `payload` in the frame; for the checksum.
    pub tcp_header: &'a [u8],
    /// The IPv4 header (with options), just before `tcp_header`; empty for IPv6.
    pub ip4_header: &'a [u8],
}

/// What a segment's checksums say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// The TCP checksum (and the IPv4 header's) add up.
    Valid,
    /// One of them does not: damaged, forged, or left to the NIC (offload on the sending host).
    Invalid,
    /// Cannot be checked: bytes cut by the snap length, or headers not at hand.
    Unknown,
    /// Left to the NIC: the field holds only the pseudo-header's sum (Linux, checksum offload
    /// on the capturing sender) or zero.
    Offloaded,
}

/// Why a frame did not yield a TCP segment (counted by key, never fatal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not IP (ARP, LLDP, …): ordinary traffic, counted but not an anomaly.
    NotIp,
    /// IP but not TCP (UDP, ICMP, …).
    NotTcp,
    /// An IP fragment (reassembled by the pipeline, see [`Decoded::Fragment`]).
    Fragment,
    /// A link type we do not decode.
    UnknownLinkType,
    /// An ether type that is neither decoded nor ordinary non-IP traffic (it may hide IP).
    EtherType(u16),
    /// An IP protocol that is neither decoded nor ordinary (ESP, L2TPv3, SCTP, …).
    IpProtocol(u8),
    /// Header bytes missing or malformed at the named layer, or a tunnel variant not decoded.
    Malformed(&'static str),
}

impl Skip {
    /// Stable key for the counters (`skipped_ethertype_0x88e5`, `skipped_ip_protocol_50`, …).
    pub fn key(self) -> &'static str {
        match self {
            Skip::NotIp => "not_ip",
            Skip::NotTcp => "not_tcp",
            Skip::Fragment => "ip_fragment",
            Skip::UnknownLinkType => "unknown_link_type",
            Skip::EtherType(t) => names::ether_type(t),
            Skip::IpProtocol(p) => names::ip_protocol(p),
            Skip::Malformed(k) => k,
        }
    }

    /// Whether this is a capture anomaly worth reporting (as opposed to other traffic).
    pub fn is_anomaly(self) -> bool {
        !matches!(self, Skip::NotIp | Skip::NotTcp)
    }
}

/// What a frame holds: a TCP segment, or an IP fragment (the whole IP packet, header first).
#[derive(Clone, Copy, Debug)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    Fragment(&'a [u8]),
}

const ETH_PPPOE_SESSION: u16 = 0x8864;

/// Decodes one frame that was captured whole or cut by the snap length (`was_cut`): only a cut
/// frame can be missing payload; otherwise an IP length larger than the frame is a lie of the
/// header and nothing is reported missing. Tunnels on the default ports; fragments are skipped.
pub fn decode_frame(link: LinkType, data: &[u8], was_cut: bool) -> Result<TcpSegment<'_>, Skip> {
    match decode_packet(&Config::default(), link, data, was_cut)? {
        Decoded::Tcp(seg) => Ok(seg),
        Decoded::Fragment(_) => Err(Skip::Fragment),
    }
}

/// As [`decode_frame`] with the tunnel settings `cfg`, handing IP fragments back to the caller.
#[inline]
pub fn decode_packet<'a>(cfg: &Config, link: LinkType, data: &'a [u8], was_cut: bool) -> Result<Decoded<'a>, Skip> {
    match decode_fast(link, data, was_cut) {
        Some(seg) => Ok(Decoded::Tcp(seg)),
        None => decode_slow(cfg, link, data, was_cut),
    }
}

/// [`decode_packet`]'s common case alone (Ethernet or raw IP, then TCP; `None` for anything
/// else): the segment is built where the caller wants it, not moved through a `Result`.
#[inline(always)]
pub fn decode_fast(link: LinkType, data: &[u8], was_cut: bool) -> Option<TcpSegment<'_>> {
    let mut seg = fast_path(link, data)?;
    if !was_cut {
        seg.missing = 0;
    }
    Some(seg)
}

/// [`decode_packet`] for a frame [`decode_fast`] declined: every link type, tunnel and header.
pub fn decode_slow<'a>(cfg: &Config, link: LinkType, data: &'a [u8], was_cut: bool) -> Result<Decoded<'a>, Skip> {
    let mut d = decode_general(cfg, link, data)?;
    if let Decoded::Tcp(seg) = &mut d {
        if !was_cut {
            seg.missing = 0;
        }
    }
    Ok(d)
}

/// Whether frames of this link type are decoded (others are counted as `unknown_link_type`).
pub fn link_supported(link: LinkType) -> bool {
    matches!(
        link,
        LinkType::ETHERNET
            | LinkType::LINUX_SLL
            | LinkType::LINUX_SLL2
            | LinkType::RAW
            | LinkType::RAW_BSD12
            | LinkType::RAW_BSD14
            | LinkType::IPV4
            | LinkType::IPV6
            | LinkType::NULL
            | LinkType::LOOP
    )
}

/// Decodes one frame (tunnels on the default ports; fragments are skipped).
pub fn decode(link: LinkType, data: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    if let Some(seg) = fast_path(link, data) {
        return Ok(seg);
    }
    match decode_general(&Config::default(), link, data)? {
        Decoded::Tcp(seg) => Ok(seg),
        Decoded::Fragment(_) => Err(Skip::Fragment),
    }
}

fn be16(d: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(i)?, *d.get(i + 1)?]))
}

/// The common case decoded by hand: Ethernet (up to two VLAN tags) or raw IP, IPv4 without
/// fragmentation or IPv6 without extension headers, then TCP. Anything else (or anything odd)
/// returns `None` and goes through the layer walker and etherparse, which have the last word;
/// a test checks that both agree on every sample packet.
#[inline(always)]
fn fast_path(link: LinkType, d: &[u8]) -> Option<TcpSegment<'_>> {
    fast_ip(d, fast_link(link, d)?)
}

/// Where the fast path finds the IP header of a frame (Ethernet with up to two VLAN tags, or
/// raw IP); `None` for anything else.
#[inline(always)]
fn fast_link(link: LinkType, d: &[u8]) -> Option<usize> {
    match link {
        LinkType::ETHERNET => {
            let mut off = 12;
            let mut et = be16(d, off)?;
            for _ in 0..2 {
                if et == 0x8100 || et == 0x88a8 {
                    off += 4;
                    et = be16(d, off)?;
                }
            }
            if et != 0x0800 && et != 0x86dd {
                return None;
            }
            Some(off + 2)
        }
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => Some(0),
        _ => None,
    }
}

/// The IP header the fast path found.
#[derive(Clone, Copy)]
enum FastIp<'a> {
    V4(&'a [u8; 20]),
    V6(&'a [u8; 40]),
}

/// The fast path's checks on the IP packet at `ip`: IPv4 (unfragmented) or IPv6 (no extension
/// headers) carrying a whole TCP header. Gives the headers and where the TCP header and the IP
/// packet end, for [`fast_ip`] (which builds the segment) and [`fast_head`] (which reads the
/// headers into a record).
#[inline(always)]
fn fast_headers(d: &[u8], ip: usize) -> Option<FastHeaders<'_>> {
    let v = *d.get(ip)? >> 4;
    // Fixed-size views of the headers: one bounds check each, then plain field reads.
    let (iph, tcp, ip_end) = if v == 4 {
        let h: &[u8; 20] = d.get(ip..ip + 20)?.try_into().ok()?;
        let ihl = (h[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([h[2], h[3]]) as usize;
        let frag = u16::from_be_bytes([h[6], h[7]]);
        if ihl < 20 || total < ihl || frag & 0x3fff != 0 || h[9] != 6 || d.len() < ip + ihl {
            return None;
        }
        (FastIp::V4(h), ip + ihl, ip + total)
    } else if v == 6 {
        let h: &[u8; 40] = d.get(ip..ip + 40)?.try_into().ok()?;
        if h[6] != 6 {
            return None;
        }
        let plen = u16::from_be_bytes([h[4], h[5]]) as usize;
        (FastIp::V6(h), ip + 40, ip + 40 + plen)
    } else {
        return None;
    };
    let th: &[u8; 20] = d.get(tcp..tcp + 20)?.try_into().ok()?;
    let tcp_end = tcp + (th[12] >> 4) as usize * 4;
    if tcp_end < tcp + 20 || d.len() < tcp_end || ip_end < tcp_end {
        return None;
    }
    Some(FastHeaders {
        ip: iph,
        tcp: th,
        tcp_start: tcp,
        tcp_end,
        ip_end,
    })
}

/// What [`fast_headers`] found.
struct FastHeaders<'a> {
    ip: FastIp<'a>,
    /// The fixed part of the TCP header.
    tcp: &'a [u8; 20],
    tcp_start: usize,
    /// Where the TCP header (options included) ends: the payload's start.
    tcp_end: usize,
    /// Where the IP packet ends by its own length (may be past the captured bytes).
    ip_end: usize,
}

/// The IPv4 (unfragmented) or IPv6 (no extension headers) packet at `ip` in `d`, carrying TCP,
/// decoded by hand; `None` for anything else. Also the first try on a tunnel's inner packet.
#[inline(always)]
pub(super) fn fast_ip(d: &[u8], ip: usize) -> Option<TcpSegment<'_>> {
    let h = fast_headers(d, ip)?;
    let (src, dst, ip4_header) = match h.ip {
        FastIp::V4(v4) => {
            let s = [v4[12], v4[13], v4[14], v4[15]];
            let t = [v4[16], v4[17], v4[18], v4[19]];
            (IpAddr::from(s), IpAddr::from(t), d.get(ip..h.tcp_start)?)
        }
        FastIp::V6(v6) => {
            let mut s = [0u8; 16];
            let mut t = [0u8; 16];
            s.copy_from_slice(&v6[8..24]);
            t.copy_from_slice(&v6[24..40]);
            (IpAddr::from(s), IpAddr::from(t), &[][..])
        }
    };
    let th = h.tcp;
    let flags = th[13];
    let end = h.ip_end.min(d.len());
    Some(TcpSegment {
        src,
        dst,
        sport: u16::from_be_bytes([th[0], th[1]]),
        dport: u16::from_be_bytes([th[2], th[3]]),
        seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
        ack: u32::from_be_bytes([th[8], th[9], th[10], th[11]]),
        flags: TcpFlags {
            syn: flags & 0x02 != 0,
            ack: flags & 0x10 != 0,
            fin: flags & 0x01 != 0,
            rst: flags & 0x04 != 0,
        },
        payload: d.get(h.tcp_end..end)?,
        missing: (h.ip_end - end) as u32,
        tcp_header: d.get(h.tcp_start..h.tcp_end)?,
        ip4_header,
    })
}

/// Decodes one frame by its layers (every supported link type, tunnel and header).
fn decode_general<'a>(cfg: &Config, link: LinkType, data: &'a [u8]) -> Result<Decoded<'a>, Skip> {
    use tunnel::Next;
    let next = match link {
        LinkType::ETHERNET => Next::Ether(data),
        LinkType::LINUX_SLL => {
            let Some((head, rest)) = data.split_first_chunk::<16>() else {
                return Err(Skip::Malformed("short_sll"));
            };
            Next::EtherType(u16::from_be_bytes([head[14], head[15]]), rest)
        }
        LinkType::LINUX_SLL2 => {
            let Some((head, rest)) = data.split_first_chunk::<20>() else {
                return Err(Skip::Malformed("short_sll2"));
            };
            Next::EtherType(u16::from_be_bytes([head[0], head[1]]), rest)
        }
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 | LinkType::IPV4 | LinkType::IPV6 => Next::Ip(data),
        LinkType::NULL | LinkType::LOOP => {
            let Some((family, rest)) = data.split_first_chunk::<4>() else {
                return Err(Skip::Malformed("short_loopback_header"));
            };
            match loopback_family(*family) {
                2 | 24 | 28 | 30 => Next::Ip(rest),
                _ => return Err(Skip::NotIp),
            }
        }
        _ => return Err(Skip::UnknownLinkType),
    };
    tunnel::walk(cfg, data, next)
}

/// The address family of a NULL / LOOP header: in the capturing host's byte order (NULL) or
/// network order (LOOP); the values that matter are small, so look at whichever end is non-zero.
fn loopback_family(family: [u8; 4]) -> u32 {
    let le = u32::from_le_bytes(family);
    let be = u32::from_be_bytes(family);
    if le < 256 { le } else { be }
}

/// The frame's headers as etherparse slices of `data`, after the link layer of any supported
/// link type (for code that must locate the IP and TCP headers inside the frame, such as the
/// carve's address rewriting).
pub fn slice_frame(link: LinkType, data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    let sliced = match link {
        LinkType::ETHERNET => {
            let s = LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed("short_ethernet"))?;
            if s.net.is_none() {
                if let Some(p) = s.ether_payload() {
                    if p.ether_type.0 == ETH_PPPOE_SESSION {
                        return LaxSlicedPacket::from_ip(pppoe_ip(p.payload)?)
                            .map_err(|_| Skip::Malformed("bad_ip_header"));
                    }
                }
            }
            s
        }
        LinkType::LINUX_SLL => {
            let Some((head, rest)) = data.split_first_chunk::<16>() else {
                return Err(Skip::Malformed("short_sll"));
            };
            by_ether_type(u16::from_be_bytes([head[14], head[15]]), rest)?
        }
        LinkType::LINUX_SLL2 => {
            let Some((head, rest)) = data.split_first_chunk::<20>() else {
                return Err(Skip::Malformed("short_sll2"));
            };
            by_ether_type(u16::from_be_bytes([head[0], head[1]]), rest)?
        }
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 | LinkType::IPV4 | LinkType::IPV6 => {
            LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed("bad_ip_header"))?
        }
        LinkType::NULL | LinkType::LOOP => {
            let Some((family, rest)) = data.split_first_chunk::<4>() else {
                return Err(Skip::Malformed("short_loopback_header"));
            };
            match loopback_family(*family) {
                2 | 24 | 28 | 30 => LaxSlicedPacket::from_ip(rest).map_err(|_| Skip::Malformed("bad_ip_header"))?,
                _ => return Err(Skip::NotIp),
            }
        }
        _ => return Err(Skip::UnknownLinkType),
    };
    Ok(sliced)
}

/// The bytes of `frame` that `part` (a view of the same bytes) covers; empty if it is not in it.
fn sub_slice<'a>(frame: &'a [u8], part: &[u8]) -> &'a [u8] {
    let off = (part.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    off.checked_add(part.len())
        .and_then(|end| frame.get(off..end))
        .unwrap_or(&[])
}

fn by_ether_type(ether_type: u16, payload: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    match ether_type {
        0x0800 | 0x86dd => Ok(LaxSlicedPacket::from_ether_type(EtherType(ether_type), payload)),
        ETH_PPPOE_SESSION => {
            let ip = pppoe_ip(payload)?;
            LaxSlicedPacket::from_ip(ip).map_err(|_| Skip::Malformed("bad_ip_header"))
        }
        // 802.1Q / QinQ inside a cooked capture.
        0x8100 | 0x88a8 | 0x9100 => Ok(LaxSlicedPacket::from_ether_type(EtherType(ether_type), payload)),
        _ => Err(Skip::NotIp),
    }
}

/// PPPoE session header (6 bytes) + PPP protocol (2 bytes) → the IP packet, limited to the
/// PPPoE length (Ethernet padding follows short frames).
pub(super) fn pppoe_ip(p: &[u8]) -> Result<&[u8], Skip> {
    let Some((head, rest)) = p.split_first_chunk::<8>() else {
        return Err(Skip::Malformed("short_pppoe"));
    };
    // The PPPoE length counts the PPP protocol field (2 bytes) and the IP packet.
    let len = u16::from_be_bytes([head[4], head[5]]) as usize;
    let ip_len = len.saturating_sub(2).min(rest.len());
    match u16::from_be_bytes([head[6], head[7]]) {
        0x0021 | 0x0057 => Ok(rest.get(..ip_len).unwrap_or(rest)),
        _ => Err(Skip::NotIp),
    }
}

/// The TCP segment of a sliced packet; `frame` holds the packet (to find its IPv4 header).
pub(super) fn tcp_of<'a>(s: LaxSlicedPacket<'a>, frame: &'a [u8]) -> Result<TcpSegment<'a>, Skip> {
    let (src, dst, ip_payload, ip4_header) = match &s.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
                // The header view borrows the slicer: find the same bytes in the frame.
                sub_slice(frame, h.slice()),
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
                &[][..],
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Err(Skip::NotIp),
        None => {
            return Err(match s.stop_err {
                Some(_) => Skip::Malformed("bad_ip_header"),
                None => Skip::NotIp,
            });
        }
    };
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    if ip_payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
        return Err(Skip::Malformed("truncated_tcp_header"));
    };
    let payload = tcp.payload();
    let missing = if ip_payload.incomplete {
        declared_ip_payload_len(&s)
            .map(|d| d.saturating_sub(tcp.header_slice().len() + payload.len()) as u32)
            .unwrap_or(0)
    } else {
        0
    };
    Ok(TcpSegment {
        src,
        dst,
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        payload,
        missing,
        tcp_header: tcp.header_slice(),
        ip4_header,
    })
}

/// The IP payload length the header declares (to know how much the snap length cut).
fn declared_ip_payload_len(s: &LaxSlicedPacket<'_>) -> Option<usize> {
    match &s.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (h.total_len() as usize).checked_sub(h.ihl() as usize * 4)
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let ext_len = v6.extensions().slice().len();
            (v6.header().payload_length() as usize).checked_sub(ext_len)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ip_bits;
    use etherparse::PacketBuilder;

    fn tcp_v4_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 1000, 64000)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("build");
        v
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = tcp_v4_frame(b"hello");
        let s = decode(LinkType::ETHERNET, &f).expect("tcp");
        assert_eq!(
            (s.sport, s.dport, s.seq, s.payload, s.missing),
            (40000, 443, 1000, &b"hello"[..], 0)
        );
        assert!(s.flags.syn && !s.flags.ack);
    }

    #[test]
    fn checksums_valid_damaged_offloaded_and_unverifiable() {
        // etherparse writes right checksums (IPv4 header and TCP).
        let f = tcp_v4_frame(b"hello!!");
        let s = decode(LinkType::ETHERNET, &f).expect("tcp");
        assert_eq!(s.checksum(), Checksum::Valid);
        let Ok(Decoded::Tcp(general)) = decode_general(&Config::default(), LinkType::ETHERNET, &f) else {
            panic!("tcp")
        };
        assert_eq!(
            general.checksum(),
            Checksum::Valid,
            "the etherparse path finds the headers too"
        );
        // One payload bit flipped.
        let mut bad = f.clone();
        if let Some(b) = bad.last_mut() {
            *b ^= 1;
        }
        assert_eq!(
            decode(LinkType::ETHERNET, &bad).expect("tcp").checksum(),
            Checksum::Invalid
        );
        // A damaged IPv4 header checksum.
        let mut bad_ip = f.clone();
        bad_ip[14 + 10] ^= 0x40;
        assert_eq!(
            decode(LinkType::ETHERNET, &bad_ip).expect("tcp").checksum(),
            Checksum::Invalid
        );
        // Offload on the sender: the field holds the pseudo-header's sum (10.0.0.1, 10.0.0.2,
        // protocol 6, TCP length 20 + 7), or zero.
        let tcp_len = 20 + 7u32;
        let mut sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + tcp_len;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        for field in [sum as u16, 0] {
            let mut off = f.clone();
            off[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&field.to_be_bytes());
            let seg = decode(LinkType::ETHERNET, &off).expect("tcp");
            assert_eq!(
                seg.checksum(),
                Checksum::Offloaded,
                "field {field:#06x}, header {:02x?}",
                seg.tcp_header
            );
        }
        // Cut by the snap length: cannot be checked.
        let cut = decode_frame(LinkType::ETHERNET, &f[..f.len() - 2], true).expect("tcp");
        assert_eq!(cut.checksum(), Checksum::Unknown);
        // IPv6 pseudo-header.
        let b6 = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(40000, 443, 1000, 64000)
            .ack(5);
        let mut v6 = Vec::new();
        b6.write(&mut v6, b"odd").expect("build");
        assert_eq!(
            decode(LinkType::ETHERNET, &v6).expect("tcp").checksum(),
            Checksum::Valid
        );
        if let Some(b) = v6.last_mut() {
            *b ^= 0x80;
        }
        assert_eq!(
            decode(LinkType::ETHERNET, &v6).expect("tcp").checksum(),
            Checksum::Invalid
        );
    }

    #[test]
    fn snaplen_cut_reports_missing_bytes() {
        let f = tcp_v4_frame(&[7u8; 100]);
        let cut = &f[..f.len() - 60];
        let s = decode(LinkType::ETHERNET, cut).expect("tcp");
        assert_eq!((s.payload.len(), s.missing), (40, 60));
    }

    #[test]
    fn sll2_and_null_and_raw() {
        let f = tcp_v4_frame(b"x");
        let ip = &f[14..];
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
        sll2.extend_from_slice(ip);
        assert_eq!(decode(LinkType::LINUX_SLL2, &sll2).expect("sll2").dport, 443);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert_eq!(decode(LinkType::NULL, &null).expect("null").dport, 443);
        let mut lp = 2u32.to_be_bytes().to_vec();
        lp.extend_from_slice(ip);
        assert_eq!(decode(LinkType::LOOP, &lp).expect("loop").dport, 443);
        assert_eq!(decode(LinkType::RAW, ip).expect("raw").dport, 443);
        assert_eq!(decode(LinkType(147), ip).err(), Some(Skip::UnknownLinkType));
    }

    #[test]
    fn supported_link_types_are_the_decoded_ones() {
        for lt in 0..300 {
            let supported = link_supported(LinkType(lt));
            let unknown = matches!(decode(LinkType(lt), &[]), Err(Skip::UnknownLinkType));
            assert_eq!(supported, !unknown, "link type {lt}");
        }
    }

    /// Where a slice lies (the same bytes of the same frame, not just equal bytes).
    fn span(b: &[u8]) -> (usize, usize) {
        (b.as_ptr() as usize, b.len())
    }

    /// [`fast_head`] reads a frame exactly when [`decode_fast`] decodes it, with the segment's
    /// endpoints, and an IPv4 record rebuilds the very segment over the frame.
    fn assert_head_agrees(link: LinkType, d: &[u8], cut: bool, what: &str) {
        let seg = decode_fast(link, d, cut);
        let head = fast_head(link, d, cut);
        let ends = seg.map(|s| ((ip_bits(s.src), s.sport), (ip_bits(s.dst), s.dport)));
        assert_eq!(ends, head.map(|h| h.endpoints()), "{what}");
        if let (Some(s), Some(FastHead::V4(h))) = (seg, head) {
            let r = h.segment(d).expect("the record's frame");
            assert_eq!(
                (s.src, s.dst, s.sport, s.dport, s.seq, s.ack, s.flags, s.missing),
                (r.src, r.dst, r.sport, r.dport, r.seq, r.ack, r.flags, r.missing),
                "{what}"
            );
            assert_eq!(
                (span(s.payload), span(s.tcp_header), span(s.ip4_header)),
                (span(r.payload), span(r.tcp_header), span(r.ip4_header)),
                "{what}"
            );
        }
    }

    #[test]
    fn endpoints_are_read_exactly_where_the_fast_path_decodes() {
        // Every header byte of a few frames (IPv4, IPv6, VLAN-tagged) set to values that
        // matter to the checks: both accept the same frames, with the same endpoints.
        let v4 = tcp_v4_frame(b"hello");
        let mut v6 = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(40000, 443, 1000, 64000)
            .write(&mut v6, b"hello")
            .expect("build");
        let mut vlan = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(7.try_into().expect("vlan"))
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 1000, 64000)
            .write(&mut vlan, b"hello")
            .expect("build");
        let mut checked = 0;
        for (frame, link) in [
            (&v4, LinkType::ETHERNET),
            (&v6, LinkType::ETHERNET),
            (&vlan, LinkType::ETHERNET),
        ]
        .into_iter()
        .chain([(&v4, LinkType::RAW)])
        {
            let frame = if link == LinkType::RAW {
                frame.get(14..).expect("ip")
            } else {
                frame.as_slice()
            };
            for at in 0..frame.len().min(80) {
                for value in [
                    0u8, 1, 4, 5, 6, 0x08, 0x11, 0x20, 0x3f, 0x40, 0x45, 0x50, 0x60, 0x81, 0x86, 0xdd, 0xff,
                ] {
                    let mut f = frame.to_vec();
                    if let Some(b) = f.get_mut(at) {
                        *b = value;
                    }
                    for len in [f.len(), f.len().saturating_sub(7), 34, 54] {
                        let d = f.get(..len.min(f.len())).unwrap_or(&[]);
                        for cut in [false, true] {
                            assert_head_agrees(link, d, cut, &format!("byte {at} = {value:#x}, length {len}"));
                        }
                        checked += usize::from(fast_path(link, d).is_some());
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn fast_path_agrees_with_etherparse_on_every_sample_packet() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases");
        let mut checked = 0;
        for dir in std::fs::read_dir(root).expect("samples").filter_map(|e| e.ok()) {
            let Ok(mut cap) = crate::capture::Capture::open(&[dir.path()]) else {
                continue;
            };
            while let Some(p) = cap.next_packet() {
                // The headers read into a record give the segment's endpoints and the segment.
                let cut = (p.orig_len as usize) > p.data.len();
                assert_head_agrees(p.link, p.data, cut, &dir.path().display().to_string());
                if let Some(fast) = fast_path(p.link, p.data) {
                    let Ok(Decoded::Tcp(slow)) = decode_general(&Config::default(), p.link, p.data) else {
                        panic!("the layer walker decodes it too")
                    };
                    assert_eq!(
                        (
                            fast.src, fast.dst, fast.sport, fast.dport, fast.seq, fast.ack, fast.flags
                        ),
                        (
                            slow.src, slow.dst, slow.sport, slow.dport, slow.seq, slow.ack, slow.flags
                        )
                    );
                    assert_eq!(
                        (fast.payload, fast.missing),
                        (slow.payload, slow.missing),
                        "{}",
                        dir.path().display()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..80 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for lt in [0, 1, 101, 108, 113, 228, 229, 276] {
                let _ = decode(LinkType(lt), &junk);
            }
        }
    }
}
