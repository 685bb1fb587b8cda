//! The layer walker: Ethernet, shims and tunnels down to the innermost IP packet.
//!
//! What it is: a loop over layers, each step turning the bytes of one layer into the next one
//! ([`Next`]), at most [`MAX_LAYERS`] steps (a frame nesting deeper is counted as
//! `tunnel_too_deep`). Layers opened, by how they are announced:
//!
//! | announced by                     | layer                                   | next          |
//! |----------------------------------|-----------------------------------------|---------------|
//! | ether type 0x8100 0x88a8 0x9100  | VLAN tag                                | ether type    |
//! | ether type 0x8864                | PPPoE session                           | IP            |
//! | ether type 0x8847 0x8848         | MPLS label stack (≤ 16 labels)          | IP / Ethernet |
//! | ether type 0x8909                | Cisco MetaData (SGT)                    | ether type    |
//! | ether type 0x6558                | transparent Ethernet bridging           | Ethernet      |
//! | ether type 0x88e7                | 802.1ah PBB (MAC-in-MAC) I-tag          | Ethernet      |
//! | ether type 0x8926, 0x893f        | VN-Tag, 802.1BR E-tag                   | ether type    |
//! | IP protocol 4, 41                | IP-in-IP, IPv6-in-IP                    | IP            |
//! | IP protocol 47                   | GRE (RFC 2784/2890), enhanced GRE (PPTP), ERSPAN I/II/III | ether type / Ethernet / IP |
//! | UDP port 4789 (configurable)     | VXLAN (RFC 7348)                        | Ethernet      |
//! | UDP port 4790                    | VXLAN-GPE                               | IP / Ethernet |
//! | UDP port 6081                    | Geneve (RFC 8926), with options         | ether type    |
//! | UDP port 2152                    | GTP-U G-PDU, with extension headers     | IP            |
//! | UDP port 1701                    | L2TPv2 data message (PPP)               | IP            |
//! | UDP port 3544                    | Teredo (RFC 4380)                       | IPv6          |
//!
//! Tunnel headers are read by hand (etherparse has none of them), every length checked against
//! the bytes at hand; IP headers are etherparse's. The outer headers are dropped: a segment's
//! addresses and ports are the innermost packet's.

use super::{Decoded, Skip, TcpSegment, be16, fast_ip, pppoe_ip, tcp_of};
use etherparse::LaxSlicedPacket;

/// Layers opened at most in one frame (each VLAN tag, label stack, tunnel and IP header is one).
pub const MAX_LAYERS: usize = 16;
/// MPLS labels popped at most.
const MAX_LABELS: usize = 16;
/// GTP-U extension headers skipped at most.
const MAX_GTP_EXTENSIONS: usize = 16;
/// UDP ports announcing VXLAN that can be configured at once.
pub const MAX_VXLAN_PORTS: usize = 4;

/// Which UDP ports announce which tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// VXLAN ports (0: unused slot).
    vxlan: [u16; MAX_VXLAN_PORTS],
}

impl Default for Config {
    fn default() -> Config {
        Config {
            vxlan: [VXLAN_PORT, 0, 0, 0],
        }
    }
}

/// The IANA port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;
const VXLAN_GPE_PORT: u16 = 4790;
const GENEVE_PORT: u16 = 6081;
const GTP_U_PORT: u16 = 2152;
const L2TP_PORT: u16 = 1701;
const TEREDO_PORT: u16 = 3544;

impl Config {
    /// VXLAN on these UDP ports (the first [`MAX_VXLAN_PORTS`]) instead of 4789 alone; an
    /// empty list keeps 4789.
    pub fn with_vxlan_ports(ports: &[u16]) -> Config {
        let mut c = Config::default();
        if !ports.is_empty() {
            c.vxlan = [0; MAX_VXLAN_PORTS];
            for (slot, p) in c.vxlan.iter_mut().zip(ports) {
                *slot = *p;
            }
        }
        c
    }

    fn is_vxlan(&self, port: u16) -> bool {
        port != 0 && self.vxlan.contains(&port)
    }
}

/// The next layer to open.
#[derive(Clone, Copy, Debug)]
pub(super) enum Next<'a> {
    /// An Ethernet frame (destination MAC first).
    Ether(&'a [u8]),
    /// What follows an ether type field (or a protocol field with ether type values).
    EtherType(u16, &'a [u8]),
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
}

/// Opens the layers of `frame` from `next` on, down to a TCP segment or an IP fragment.
pub(super) fn walk<'a>(cfg: &Config, frame: &'a [u8], mut next: Next<'a>) -> Result<Decoded<'a>, Skip> {
    for _ in 0..MAX_LAYERS {
        next = match next {
            Next::Ether(d) => match be16(d, 12) {
                Some(et) => Next::EtherType(et, d.get(14..).unwrap_or(&[])),
                None => return Err(Skip::Malformed("short_ethernet")),
            },
            Next::EtherType(et, d) => ether_type(et, d)?,
            Next::Ip(d) => match ip(cfg, frame, d)? {
                Step::Done(found) => return Ok(found),
                Step::Next(n) => n,
            },
        };
    }
    Err(Skip::Malformed("tunnel_too_deep"))
}

enum Step<'a> {
    Done(Decoded<'a>),
    Next(Next<'a>),
}

/// Ether types of ordinary traffic that carries no IP: skipped without an anomaly.
fn ordinary_non_ip(et: u16) -> bool {
    et < 0x0600 // an 802.3 length: LLC (STP, CDP, …)
        || matches!(
            et,
            0x0806 // ARP
                | 0x8035 // RARP
                | 0x8863 // PPPoE discovery
                | 0x8808 // Ethernet flow control
                | 0x8809 // slow protocols (LACP)
                | 0x888e // 802.1X
                | 0x88cc // LLDP
                | 0x88f7 // PTP
                | 0x8902 // CFM
                | 0x9000 // loopback test
                | 0x88e1 // HomePlug
                | 0x893a // IEEE 1905
                | 0x8899 // Realtek
        )
}

fn ether_type(et: u16, d: &[u8]) -> Result<Next<'_>, Skip> {
    Ok(match et {
        0x0800 | 0x86dd => Next::Ip(d),
        0x8100 | 0x88a8 | 0x9100 => match be16(d, 2) {
            Some(inner) => Next::EtherType(inner, d.get(4..).unwrap_or(&[])),
            None => return Err(Skip::Malformed("short_vlan_tag")),
        },
        0x8864 => Next::Ip(pppoe_ip(d)?),
        0x8847 | 0x8848 => mpls(d)?,
        // Cisco MetaData: version, length, options, SGT (6 bytes), then the ether type.
        0x8909 => match be16(d, 6) {
            Some(inner) => Next::EtherType(inner, d.get(8..).unwrap_or(&[])),
            None => return Err(Skip::Malformed("short_cisco_metadata")),
        },
        0x6558 => Next::Ether(d),
        // PBB: a 4-byte I-tag, then the customer's MAC addresses and ether type.
        0x88e7 => match d.get(4..) {
            Some(inner) if inner.len() >= 14 => Next::Ether(inner),
            _ => return Err(Skip::Malformed("short_pbb")),
        },
        // VN-Tag (4 bytes) and E-tag (6 bytes), then the ether type.
        0x8926 | 0x893f => {
            let tag = if et == 0x8926 { 4 } else { 6 };
            match be16(d, tag) {
                Some(inner) => Next::EtherType(inner, d.get(tag + 2..).unwrap_or(&[])),
                None => return Err(Skip::Malformed("short_vn_tag")),
            }
        }
        et if ordinary_non_ip(et) => return Err(Skip::NotIp),
        et => return Err(Skip::EtherType(et)),
    })
}

/// An MPLS label stack, then what the bottom label carries: IPv4 or IPv6 by its version
/// nibble, else an Ethernet pseudowire with or without the 4-byte control word (the one whose
/// Ethernet header announces a plausible ether type; none: without).
fn mpls(d: &[u8]) -> Result<Next<'_>, Skip> {
    let mut off = 0;
    for _ in 0..MAX_LABELS {
        let Some(label) = d.get(off..off + 4) else {
            return Err(Skip::Malformed("short_mpls"));
        };
        off += 4;
        if label.get(2).is_some_and(|b| b & 1 == 1) {
            let rest = d.get(off..).unwrap_or(&[]);
            return Ok(match rest.first().map(|b| b >> 4) {
                Some(4 | 6) => Next::Ip(rest),
                Some(0) if !plausible_ether_type(be16(rest, 12)) && plausible_ether_type(be16(rest, 16)) => {
                    Next::Ether(rest.get(4..).unwrap_or(&[]))
                }
                Some(_) => Next::Ether(rest),
                None => return Err(Skip::Malformed("short_mpls")),
            });
        }
    }
    Err(Skip::Malformed("mpls_stack_too_deep"))
}

fn plausible_ether_type(et: Option<u16>) -> bool {
    matches!(et, Some(0x0800 | 0x86dd | 0x8100 | 0x88a8 | 0x8847 | 0x0806))
}

/// IP protocols of ordinary traffic that is not TCP and carries none: skipped without an
/// anomaly (ICMP, IGMP, ICMPv6, no next header, OSPF, PIM, VRRP).
fn ordinary_protocol(p: u8) -> bool {
    matches!(p, 1 | 2 | 58 | 59 | 89 | 103 | 112)
}

/// An IP packet: its TCP segment, its fragment, or the tunnel it carries.
fn ip<'a>(cfg: &Config, frame: &'a [u8], d: &'a [u8]) -> Result<Step<'a>, Skip> {
    if let Some(seg) = fast_ip(d, 0) {
        return Ok(Step::Done(Decoded::Tcp(seg)));
    }
    let s = LaxSlicedPacket::from_ip(d).map_err(|_| Skip::Malformed("bad_ip_header"))?;
    let Some(p) = s.ip_payload() else {
        return Err(match s.stop_err {
            Some(_) => Skip::Malformed("bad_ip_header"),
            None => Skip::NotIp,
        });
    };
    if p.fragmented {
        return Ok(Step::Done(Decoded::Fragment(d)));
    }
    let payload = p.payload;
    Ok(Step::Next(match p.ip_number.0 {
        6 => return tcp_of(s, frame).map(|seg: TcpSegment<'a>| Step::Done(Decoded::Tcp(seg))),
        4 | 41 => Next::Ip(payload),
        47 => gre(payload)?,
        17 => match udp(cfg, payload)? {
            Some(n) => n,
            None => return Err(Skip::NotTcp),
        },
        n if ordinary_protocol(n) => return Err(Skip::NotTcp),
        n => return Err(Skip::IpProtocol(n)),
    }))
}

/// A UDP datagram: the tunnel its port announces, or `None` (ordinary UDP).
fn udp<'a>(cfg: &Config, d: &'a [u8]) -> Result<Option<Next<'a>>, Skip> {
    let (Some(sport), Some(dport), Some(len)) = (be16(d, 0), be16(d, 2), be16(d, 4)) else {
        return Err(Skip::Malformed("short_udp"));
    };
    // The UDP length bounds the payload (Ethernet padding follows short frames); a length
    // shorter than the header is a lie: take what was captured.
    let end = if len >= 8 {
        usize::from(len).min(d.len())
    } else {
        d.len()
    };
    let p = d.get(8..end).unwrap_or(&[]);
    Ok(Some(if cfg.is_vxlan(dport) {
        match p.get(8..) {
            Some(inner) => Next::Ether(inner),
            None => return Err(Skip::Malformed("short_vxlan")),
        }
    } else if dport == VXLAN_GPE_PORT {
        vxlan_gpe(p)?
    } else if dport == GENEVE_PORT {
        geneve(p)?
    } else if dport == GTP_U_PORT || sport == GTP_U_PORT {
        match gtp_u(p)? {
            Some(n) => n,
            None => return Ok(None),
        }
    } else if dport == L2TP_PORT || sport == L2TP_PORT {
        match l2tp(p)? {
            Some(n) => n,
            None => return Ok(None),
        }
    } else if dport == TEREDO_PORT || sport == TEREDO_PORT {
        match teredo(p) {
            Some(n) => n,
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    }))
}

/// VXLAN-GPE: the next protocol byte says what follows the 8-byte header.
fn vxlan_gpe(p: &[u8]) -> Result<Next<'_>, Skip> {
    let (Some(proto), Some(inner)) = (p.get(3), p.get(8..)) else {
        return Err(Skip::Malformed("short_vxlan_gpe"));
    };
    match proto {
        1 | 2 => Ok(Next::Ip(inner)),
        3 => Ok(Next::Ether(inner)),
        _ => Err(Skip::Malformed("vxlan_gpe_protocol_not_decoded")),
    }
}

/// Geneve: version 0, options of `opt_len` 4-byte words, then what the protocol type names.
fn geneve(p: &[u8]) -> Result<Next<'_>, Skip> {
    let (Some(b0), Some(proto)) = (p.first(), be16(p, 2)) else {
        return Err(Skip::Malformed("short_geneve"));
    };
    if b0 >> 6 != 0 {
        return Err(Skip::Malformed("geneve_version_not_decoded"));
    }
    let hlen = 8 + usize::from(b0 & 0x3f) * 4;
    match p.get(hlen..) {
        Some(inner) => Ok(Next::EtherType(proto, inner)),
        None => Err(Skip::Malformed("short_geneve")),
    }
}

/// L2TPv2 (RFC 2661 §3.1): a data message's PPP frame; `None` for control messages and
/// other versions (L2TPv3 over UDP is not decoded: its session header length is configured).
fn l2tp(p: &[u8]) -> Result<Option<Next<'_>>, Skip> {
    let Some(flags) = be16(p, 0) else {
        return Err(Skip::Malformed("short_l2tp"));
    };
    if flags & 0x8000 != 0 || flags & 0x000f != 2 {
        return Ok(None);
    }
    let mut off = 2 + if flags & 0x4000 != 0 { 2 } else { 0 } + 4;
    if flags & 0x0800 != 0 {
        off += 4;
    }
    if flags & 0x0200 != 0 {
        let Some(pad) = be16(p, off) else {
            return Err(Skip::Malformed("short_l2tp"));
        };
        off += 2 + usize::from(pad);
    }
    match p.get(off..) {
        Some(ppp_frame) => ppp(ppp_frame).map(Some),
        None => Err(Skip::Malformed("short_l2tp")),
    }
}

/// Teredo (RFC 4380 §5.1.1): an IPv6 packet, after an optional authentication indicator
/// (type 0x0001) and origin indication (type 0x0000, 8 bytes); `None` if no IPv6 packet.
fn teredo(p: &[u8]) -> Option<Next<'_>> {
    let mut p = p;
    if be16(p, 0) == Some(0x0001) {
        let id_len = usize::from(*p.get(2)?);
        let auth_len = usize::from(*p.get(3)?);
        p = p.get(4 + id_len + auth_len + 9..)?;
    }
    if be16(p, 0) == Some(0x0000) {
        p = p.get(8..)?;
    }
    (p.first().map(|b| b >> 4) == Some(6) && p.len() >= 40).then_some(Next::Ip(p))
}

/// GTP-U (3GPP TS 29.281): a G-PDU's user packet (IPv4 or IPv6), after the optional sequence
/// number, N-PDU number and extension headers; `None` for GTP-U signalling (echo, error
/// indication, end marker) and GTP'.
fn gtp_u(p: &[u8]) -> Result<Option<Next<'_>>, Skip> {
    let (Some(&flags), Some(&msg), Some(len)) = (p.first(), p.get(1), be16(p, 2)) else {
        return Err(Skip::Malformed("short_gtp"));
    };
    if flags >> 5 != 1 {
        return Err(Skip::Malformed("gtp_version_not_decoded"));
    }
    if flags & 0x10 == 0 || msg != 0xff {
        return Ok(None);
    }
    let end = (8 + usize::from(len)).min(p.len());
    let mut off = 8;
    if flags & 0x07 != 0 {
        let Some(&first) = p.get(11) else {
            return Err(Skip::Malformed("short_gtp"));
        };
        off = 12;
        let mut next_type = if flags & 0x04 != 0 { first } else { 0 };
        let mut n = 0;
        while next_type != 0 {
            n += 1;
            // Each extension: length in 4-byte words (≥ 1), contents, next extension type.
            let words = p.get(off).copied().unwrap_or(0);
            if n > MAX_GTP_EXTENSIONS || words == 0 {
                return Err(Skip::Malformed("bad_gtp_extension"));
            }
            off += usize::from(words) * 4;
            let Some(&t) = p.get(off - 1) else {
                return Err(Skip::Malformed("short_gtp"));
            };
            next_type = t;
        }
    }
    let inner = p.get(off..end).unwrap_or(&[]);
    match inner.first().map(|b| b >> 4) {
        Some(4 | 6) => Ok(Some(Next::Ip(inner))),
        Some(_) => Err(Skip::Malformed("gtp_payload_not_ip")),
        None => Err(Skip::Malformed("short_gtp")),
    }
}

/// GRE: version 0 (RFC 2784 with RFC 2890's key and sequence number) or version 1 (PPTP's
/// enhanced GRE, carrying PPP), then the protocol type: ERSPAN I/II (0x88be), ERSPAN III
/// (0x22eb), or any ether type (0x6558: bridged Ethernet).
fn gre(d: &[u8]) -> Result<Next<'_>, Skip> {
    let (Some(&b0), Some(&b1), Some(proto)) = (d.first(), d.get(1), be16(d, 2)) else {
        return Err(Skip::Malformed("short_gre"));
    };
    let (checksum, routing, key, seq) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x10 != 0);
    let hlen = match b1 & 0x07 {
        0 if routing => return Err(Skip::Malformed("gre_source_route_not_decoded")),
        0 => 4 + 4 * (usize::from(checksum || routing) + usize::from(key) + usize::from(seq)),
        1 => 8 + 4 * (usize::from(seq) + usize::from(b1 & 0x80 != 0)),
        _ => return Err(Skip::Malformed("gre_version_not_decoded")),
    };
    let Some(p) = d.get(hlen..) else {
        return Err(Skip::Malformed("short_gre"));
    };
    match proto {
        0x880b => ppp(p),
        // ERSPAN type I has no header (and no sequence number); type II has 8 bytes.
        0x88be if !seq => Ok(Next::Ether(p)),
        0x88be => match (p.first().map(|b| b >> 4), p.get(8..)) {
            (Some(1), Some(inner)) => Ok(Next::Ether(inner)),
            (Some(_), Some(_)) => Err(Skip::Malformed("erspan_version_not_decoded")),
            _ => Err(Skip::Malformed("short_erspan")),
        },
        0x22eb => erspan3(p),
        et => Ok(Next::EtherType(et, p)),
    }
}

/// ERSPAN type III: 12 bytes, 8 more with the platform-specific subheader (O flag), then the
/// mirrored frame if its frame type is Ethernet (0).
fn erspan3(p: &[u8]) -> Result<Next<'_>, Skip> {
    let Some(bits) = be16(p, 10) else {
        return Err(Skip::Malformed("short_erspan"));
    };
    if p.first().map(|b| b >> 4) != Some(2) {
        return Err(Skip::Malformed("erspan_version_not_decoded"));
    }
    if (bits >> 10) & 0x1f != 0 {
        return Err(Skip::Malformed("erspan_frame_type_not_decoded"));
    }
    let hlen = if bits & 1 == 1 { 20 } else { 12 };
    match p.get(hlen..) {
        Some(inner) => Ok(Next::Ether(inner)),
        None => Err(Skip::Malformed("short_erspan")),
    }
}

/// PPP in enhanced GRE: optional address and control bytes (ff 03), a one- or two-byte
/// protocol, then IPv4 (0x21) or IPv6 (0x57).
fn ppp(p: &[u8]) -> Result<Next<'_>, Skip> {
    let p = if p.starts_with(&[0xff, 0x03]) {
        p.get(2..).unwrap_or(&[])
    } else {
        p
    };
    let (proto, rest) = match p.first() {
        Some(b) if b & 1 == 1 => (u16::from(*b), p.get(1..)),
        Some(_) => (be16(p, 0).unwrap_or(0), p.get(2..)),
        None => return Err(Skip::Malformed("short_ppp")),
    };
    match (proto, rest) {
        (0x21 | 0x57, Some(ip)) => Ok(Next::Ip(ip)),
        _ => Err(Skip::NotIp),
    }
}

#[cfg(test)]
mod tests {
    //! Hand-made headers for the variants the sample captures do not hold (real captures of
    //! every tunnel the relay makes are in samples/cases/tunnel-*), and hostile bytes.
    use super::*;
    use crate::capture::LinkType;
    use crate::decode::{Decoded, decode_packet};
    use etherparse::{IpNumber, PacketBuilder};

    /// An Ethernet/IPv4/TCP frame and its IPv4 packet.
    fn inner() -> (Vec<u8>, Vec<u8>) {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64)
            .tcp(40000, 443, 1000, 64000)
            .syn()
            .write(&mut f, &[])
            .expect("build");
        let ip = f[14..].to_vec();
        (f, ip)
    }

    fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([3; 6], [4; 6])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .write(&mut f, IpNumber(proto), payload)
            .expect("build");
        f
    }

    fn outer_udp(dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([3; 6], [4; 6])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(50000, dport)
            .write(&mut f, payload)
            .expect("build");
        f
    }

    fn inner_addresses(frame: &[u8]) -> Result<(std::net::IpAddr, u16), Skip> {
        match decode_packet(&Config::default(), LinkType::ETHERNET, frame, false)? {
            Decoded::Tcp(s) => Ok((s.src, s.dport)),
            Decoded::Fragment(_) => Err(Skip::Fragment),
        }
    }

    #[test]
    fn variants_without_a_sample_capture() {
        let (eth, ip) = inner();
        let want = Ok(([10, 9, 0, 1].into(), 443));
        // VXLAN-GPE carrying IPv4 (next protocol 1).
        let mut gpe = vec![0x0c, 0, 0, 1, 0, 0, 100, 0];
        gpe.extend_from_slice(&ip);
        assert_eq!(inner_addresses(&outer_udp(4790, &gpe)), want);
        // MPLS pseudowire with the control word, then Ethernet.
        let mut pw = eth[..12].to_vec();
        pw.extend_from_slice(&[0x88, 0x47, 0, 0x64, 0x01, 0x40, 0, 0, 0, 0]);
        pw.extend_from_slice(&eth);
        assert_eq!(inner_addresses(&pw), want);
        // MPLS pseudowire without it (the destination MAC starts with a 0 nibble).
        let mut pw2 = eth[..12].to_vec();
        pw2.extend_from_slice(&[0x88, 0x47, 0, 0x64, 0x01, 0x40]);
        let mut e0 = eth.clone();
        e0[0] = 0x00;
        pw2.extend_from_slice(&e0);
        assert_eq!(inner_addresses(&pw2), want);
        // PPTP's enhanced GRE (version 1, key, sequence) with PPP carrying IPv4.
        let mut pptp = vec![0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 7, 0, 0, 0, 1];
        pptp.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
        pptp.extend_from_slice(&ip);
        assert_eq!(inner_addresses(&outer_ip(47, &pptp)), want);
        // ERSPAN type I: GRE 0x88be without a sequence number, no ERSPAN header.
        let mut e1 = vec![0, 0, 0x88, 0xbe];
        e1.extend_from_slice(&eth);
        assert_eq!(inner_addresses(&outer_ip(47, &e1)), want);
        // GTP-U echo request: signalling, not user traffic.
        let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(inner_addresses(&outer_udp(2152, &echo)), Err(Skip::NotTcp));
        // Geneve carrying IPv4 directly (protocol 0x0800), no options.
        let mut geneve_ip = vec![0, 0, 0x08, 0x00, 0, 0, 1, 0];
        geneve_ip.extend_from_slice(&ip);
        assert_eq!(inner_addresses(&outer_udp(6081, &geneve_ip)), want);
        // Not decoded, counted by type.
        assert_eq!(inner_addresses(&outer_ip(50, &[0; 40])), Err(Skip::IpProtocol(50)));
        let mut macsec = eth[..12].to_vec();
        macsec.extend_from_slice(&[0x88, 0xe5, 0, 0]);
        assert_eq!(inner_addresses(&macsec), Err(Skip::EtherType(0x88e5)));
        assert_eq!(Skip::EtherType(0x88e5).key(), "skipped_ethertype_0x88e5");
        let mut arp = eth[..12].to_vec();
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(inner_addresses(&arp), Err(Skip::NotIp));
        // L2TPv2 data message (length and sequence fields) with PPP carrying IPv4.
        let mut l2tp = vec![0x48, 0x02, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0xff, 0x03, 0x00, 0x21];
        l2tp.extend_from_slice(&ip);
        assert_eq!(inner_addresses(&outer_udp(1701, &l2tp)), want);
        // 802.1ah PBB: I-tag, then the customer frame.
        let mut pbb = eth[..12].to_vec();
        pbb.extend_from_slice(&[0x88, 0xe7, 0, 0, 0, 5]);
        pbb.extend_from_slice(&eth);
        assert_eq!(inner_addresses(&pbb), want);
        // VN-Tag and E-tag, then IPv4.
        for (et, tag) in [(0x8926u16, 4usize), (0x893f, 6)] {
            let mut f = eth[..12].to_vec();
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&vec![0; tag]);
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&ip);
            assert_eq!(inner_addresses(&f), want);
        }
        // Teredo: origin indication, then IPv6.
        let mut v6 = Vec::new();
        PacketBuilder::ipv6([0x20; 16], [0x30; 16], 64)
            .tcp(40000, 443, 1, 1000)
            .syn()
            .write(&mut v6, &[])
            .expect("build");
        let mut teredo = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
        teredo.extend_from_slice(&v6);
        assert_eq!(
            inner_addresses(&outer_udp(3544, &teredo)),
            Ok(([0x20u8; 16].into(), 443))
        );
        // Ordinary UDP stays ordinary.
        assert_eq!(inner_addresses(&outer_udp(53, &[0; 20])), Err(Skip::NotTcp));
    }

    #[test]
    fn nesting_is_bounded() {
        let (_, ip) = inner();
        // IP-in-IP nested deeper than MAX_LAYERS: counted, not followed.
        let mut pkt = ip.clone();
        for _ in 0..MAX_LAYERS {
            let mut o = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
                .write(&mut o, IpNumber(4), &pkt)
                .expect("build");
            pkt = o;
        }
        let r = decode_packet(&Config::default(), LinkType::RAW, &pkt, false);
        assert!(matches!(r, Err(Skip::Malformed("tunnel_too_deep"))), "{r:?}");
        // A few levels are fine.
        let mut pkt = ip;
        for _ in 0..3 {
            let mut o = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
                .write(&mut o, IpNumber(4), &pkt)
                .expect("build");
            pkt = o;
        }
        let r = decode_packet(&Config::default(), LinkType::RAW, &pkt, false);
        assert!(matches!(r, Ok(Decoded::Tcp(_))), "{r:?}");
    }

    #[test]
    fn hostile_bytes_behind_every_tunnel_never_panic() {
        let cfg = Config::with_vxlan_ports(&[4789, 8472]);
        for seed in 0..40u32 {
            for len in 0..90 {
                let junk: Vec<u8> = (0..len).map(|i| ((i as u32 * 37 + seed * 101) % 251) as u8).collect();
                let mut frames = vec![outer_ip(47, &junk), outer_ip(4, &junk), outer_ip(41, &junk)];
                for port in [4789, 8472, 4790, 6081, 2152, 1701, 3544] {
                    frames.push(outer_udp(port, &junk));
                }
                for et in [0x8847u16, 0x8909, 0x6558, 0x8100, 0x8864, 0x88e7, 0x8926, 0x893f] {
                    let mut f = vec![0u8; 12];
                    f.extend_from_slice(&et.to_be_bytes());
                    f.extend_from_slice(&junk);
                    frames.push(f);
                }
                for f in &frames {
                    for cut in [f.len(), f.len().saturating_sub(3), f.len() / 2] {
                        let _ = decode_packet(&cfg, LinkType::ETHERNET, &f[..cut], true);
                    }
                }
            }
        }
    }
}
