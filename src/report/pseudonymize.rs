//! `--redact`: pseudonyms for client addresses, applied to the address fields of the report and
//! to the packets of a carved capture.
//!
//! No sentence of a report is edited: diagnosis text names servers, never clients, and every
//! client address a printer shows comes from the `client` field, which holds the pseudonym. The
//! carve rewrites the client's address in the IP header (and its MAC address in the link
//! header), with the IP and TCP checksums updated, so the carved file and the report name the
//! same pseudonyms.
//!
//! Pseudonyms come from ranges reserved for documentation and benchmarks (198.18.0.0/15 for
//! IPv4, then 240.0.0.0/4 past 131,071 clients; 2001:db8::/32 for IPv6), so SIEM pipelines that
//! map `client.ip` as an IP keep working. An address seen in the capture (a server's, say) is
//! never handed out as a pseudonym. The n-th client gets the n-th pseudonym; for a report
//! written at the end, clients are numbered in the order of their first session's first frame,
//! which does not depend on the number of threads.

use super::model::SessionReport;
use crate::capture::{LinkType, Packet};
use crate::decode;
use crate::flow::Endpoint;
use etherparse::checksum::Sum16BitWords;
use etherparse::{LaxNetSlice, TransportSlice};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 pseudonyms available in 198.18.0.0/15 (the network address left out).
const BENCHMARK_V4: u32 = 0x1_ffff;

/// Client address → pseudonym, for one run.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Clients seen but not yet given a pseudonym, with their earliest first frame.
    pending: HashMap<IpAddr, u64>,
    /// Real addresses seen in the capture (clients and servers): never handed out.
    real: HashSet<IpAddr>,
    given: HashMap<IpAddr, IpAddr>,
    /// Pseudonyms handed out so far, [IPv4, IPv6].
    next: [u128; 2],
}

impl Redactor {
    /// Notes a session whose client gets its pseudonym later, at [`Redactor::assign_pending`].
    pub fn observe(&mut self, s: &SessionReport) {
        self.real.insert(s.server.ip);
        self.real.insert(s.client.ip);
        if !self.given.contains_key(&s.client.ip) {
            let f = self.pending.entry(s.client.ip).or_insert(s.first_frame);
            *f = (*f).min(s.first_frame);
        }
    }

    /// Gives every observed client its pseudonym, in the order of its first frame.
    pub fn assign_pending(&mut self) {
        let mut v: Vec<(u64, IpAddr)> = self.pending.drain().map(|(ip, f)| (f, ip)).collect();
        v.sort_unstable();
        for (_, ip) in v {
            self.give(ip);
        }
    }

    /// The pseudonym of one client address, handed out now if it has none (streamed output).
    pub fn pseudonym(&mut self, ip: IpAddr) -> IpAddr {
        if let Some(a) = self.given.get(&ip) {
            return *a;
        }
        self.real.insert(ip);
        self.give(ip)
    }

    /// The pseudonym already given to `ip`, if any.
    pub fn get(&self, ip: IpAddr) -> Option<IpAddr> {
        self.given.get(&ip).copied()
    }

    /// Redacts one streamed session: its client address field becomes the pseudonym.
    pub fn apply(&mut self, s: &mut SessionReport) {
        self.real.insert(s.server.ip);
        s.client.ip = self.pseudonym(s.client.ip);
    }

    /// Redacts a session observed earlier (after [`Redactor::assign_pending`]). A client without
    /// a pseudonym (never observed) is shown as the unspecified address, never as itself.
    pub fn apply_assigned(&self, s: &mut SessionReport) {
        s.client.ip = self.alias_or_unspecified(s.client.ip);
    }

    /// The pseudonym of `ip`, or the unspecified address of its family.
    pub fn alias_or_unspecified(&self, ip: IpAddr) -> IpAddr {
        self.get(ip).unwrap_or(match ip {
            IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        })
    }

    /// Every pseudonym given: real → pseudonym.
    pub fn table(&self) -> &HashMap<IpAddr, IpAddr> {
        &self.given
    }

    fn give(&mut self, ip: IpAddr) -> IpAddr {
        let fam = usize::from(ip.is_ipv6());
        // Skips pseudonyms that are real addresses of this capture: at most `real.len()` steps.
        for _ in 0..=self.real.len() {
            let n = self.next.get(fam).copied().unwrap_or(0) + 1;
            if let Some(c) = self.next.get_mut(fam) {
                *c = n;
            }
            let alias = candidate(ip, n);
            if !self.real.contains(&alias) {
                self.given.insert(ip, alias);
                return alias;
            }
        }
        let alias = candidate(ip, u128::MAX);
        self.given.insert(ip, alias);
        alias
    }
}

/// The n-th pseudonym of `ip`'s family (n from 1).
fn candidate(ip: IpAddr, n: u128) -> IpAddr {
    match ip {
        IpAddr::V4(_) => {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            if n <= BENCHMARK_V4 {
                Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n).into()
            } else {
                let past = (n - BENCHMARK_V4).min(0x0fff_fffe);
                Ipv4Addr::from(u32::from(Ipv4Addr::new(240, 0, 0, 0)) + past).into()
            }
        }
        IpAddr::V6(_) => {
            let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
            Ipv6Addr::from(base + (n & ((1u128 << 96) - 1))).into()
        }
    }
}

/// A locally administered unicast MAC address standing for the client whose pseudonym is
/// `alias`: 02:00 and the pseudonym's last four bytes.
pub fn pseudonym_mac(alias: IpAddr) -> [u8; 6] {
    let tail = match alias {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, tail[0], tail[1], tail[2], tail[3]]
}

/// One frame with the client's address replaced by `alias`: in the IP header (checksum updated),
/// in the TCP checksum, and as the client's link-layer address (Ethernet source or destination,
/// Linux cooked capture sender). `None` when the frame cannot be rewritten safely (not IP/TCP as
/// decoded, an IP fragment, IPv6 extension headers, neither end the client): the caller leaves it
/// out rather than write a real address.
///
/// Checksums: the IPv4 header checksum and the TCP checksum are updated incrementally (RFC 1624),
/// so a valid checksum stays valid and a wrong one stays wrong by the same amount (a re-analysis
/// judges the segment as the original analysis did). One left by checksum offload (an IPv4 header
/// checksum of zero; a TCP checksum of zero or the bare pseudo-header sum, on a segment captured
/// whole) is computed in full instead: Wireshark then opens the carve without checksum errors.
pub fn rewrite_frame(p: &Packet<'_>, client: Endpoint, alias: IpAddr) -> Option<Vec<u8>> {
    let data = p.data;
    if client.ip.is_ipv4() != alias.is_ipv4() {
        return None;
    }
    let s = decode::slice_frame(p.link, data).ok()?;
    let base = data.as_ptr() as usize;
    let offset = |part: &[u8]| (part.as_ptr() as usize).checked_sub(base);
    let (ip_off, src_at, dst_at, addr_len, payload) = match &s.net {
        Some(LaxNetSlice::Ipv4(v4)) => (offset(v4.header().slice())?, 12, 16, 4, v4.payload()),
        Some(LaxNetSlice::Ipv6(v6)) => {
            if !v6.extensions().slice().is_empty() {
                return None;
            }
            (offset(v6.header().slice())?, 8, 24, 16, v6.payload())
        }
        _ => return None,
    };
    if payload.fragmented || payload.ip_number != etherparse::IpNumber::TCP {
        return None;
    }
    let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
        return None;
    };
    let tcp_off = offset(tcp.header_slice())?;
    let tcp_len = tcp.slice().len();
    let complete = !payload.incomplete;
    let (src_ip, dst_ip) = addresses(&s.net)?;
    let to_server = if src_ip == client.ip && tcp.source_port() == client.port {
        true
    } else if dst_ip == client.ip && tcp.destination_port() == client.port {
        false
    } else {
        return None;
    };
    let new_addr = ip_bytes(alias);
    let old_addr = ip_bytes(client.ip);
    let at = ip_off + if to_server { src_at } else { dst_at };

    let mut out = data.to_vec();
    out.get_mut(at..at + addr_len)?
        .copy_from_slice(new_addr.get(..addr_len)?);
    if let Some(LaxNetSlice::Ipv4(v4)) = &s.net {
        let header = v4.header().slice();
        let ck = ip_off + 10;
        let old = be16(&out, ck)?;
        let valid = Sum16BitWords::new().add_slice(header).ones_complement() == 0;
        let new = if old == 0 && !valid {
            // Left zero by checksum offload: computed over the rewritten header.
            out.get_mut(ck..ck + 2)?.copy_from_slice(&[0, 0]);
            let rewritten = out.get(ip_off..ip_off + header.len())?;
            Sum16BitWords::new().add_slice(rewritten).ones_complement().to_be()
        } else {
            incremental(old, old_addr.get(..4)?, new_addr.get(..4)?)
        };
        out.get_mut(ck..ck + 2)?.copy_from_slice(&new.to_be_bytes());
    }
    let ck = tcp_off + 16;
    let old = be16(data, ck)?;
    let orig_sum = tcp_sum(&s.net, data.get(tcp_off..tcp_off + tcp_len)?, None)?;
    let pseudo_only = tcp_sum(&s.net, &[], Some(tcp_len))?;
    // Offload leaves zero or the (folded) pseudo-header sum; the result of a sum is big-endian
    // only after `to_be` (etherparse sums in native byte order).
    let partial = pseudo_only.ones_complement().to_be();
    let offloaded = old == 0 || old == !partial || old == partial;
    let new = if complete && orig_sum.ones_complement() != 0 && offloaded {
        // Computed over the rewritten addresses and the segment with a zero checksum field.
        out.get_mut(ck..ck + 2)?.copy_from_slice(&[0, 0]);
        let (src, dst) = if to_server { (alias, dst_ip) } else { (src_ip, alias) };
        full_tcp_checksum(src, dst, out.get(tcp_off..tcp_off + tcp_len)?)
    } else if old == 0 && !complete {
        0
    } else {
        incremental(old, old_addr.get(..addr_len)?, new_addr.get(..addr_len)?)
    };
    out.get_mut(ck..ck + 2)?.copy_from_slice(&new.to_be_bytes());
    rewrite_link_address(p.link, &mut out, ip_off, to_server, pseudonym_mac(alias));
    Some(out)
}

fn addresses(net: &Option<LaxNetSlice<'_>>) -> Option<(IpAddr, IpAddr)> {
    match net {
        Some(LaxNetSlice::Ipv4(v4)) => Some((v4.header().source_addr().into(), v4.header().destination_addr().into())),
        Some(LaxNetSlice::Ipv6(v6)) => Some((v6.header().source_addr().into(), v6.header().destination_addr().into())),
        _ => None,
    }
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

fn be16(d: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(i)?, *d.get(i + 1)?]))
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') over the changed 16-bit words.
fn incremental(old: u16, from: &[u8], to: &[u8]) -> u16 {
    let mut sum = Sum16BitWords::new().add_2bytes((!old).to_be_bytes());
    for (m, m2) in from.chunks(2).zip(to.chunks(2)) {
        let w = u16::from_be_bytes([m.first().copied().unwrap_or(0), m.get(1).copied().unwrap_or(0)]);
        sum = sum.add_2bytes((!w).to_be_bytes()).add_slice(m2);
    }
    sum.ones_complement().to_be()
}

/// Sum of the TCP pseudo-header (with the segment length, or `len` when given) and `segment`.
fn tcp_sum(net: &Option<LaxNetSlice<'_>>, segment: &[u8], len: Option<usize>) -> Option<Sum16BitWords> {
    let (src, dst) = addresses(net)?;
    Some(pseudo_header(src, dst, len.unwrap_or(segment.len())).add_slice(segment))
}

fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Sum16BitWords {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Sum16BitWords::new()
            .add_slice(&s.octets())
            .add_slice(&d.octets())
            .add_2bytes([0, 6])
            .add_2bytes((len as u16).to_be_bytes()),
        _ => Sum16BitWords::new()
            .add_slice(&ip_bytes(src))
            .add_slice(&ip_bytes(dst))
            .add_slice(&(len as u32).to_be_bytes())
            .add_2bytes([0, 6]),
    }
}

fn full_tcp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    pseudo_header(src, dst, segment.len())
        .add_slice(segment)
        .ones_complement()
        .to_be()
}

/// The client's link-layer address, where the link header carries one: Ethernet (source toward
/// the server, destination toward the client), Linux cooked v1/v2 (the sender's address, the
/// client's on frames toward the server).
fn rewrite_link_address(link: LinkType, out: &mut [u8], ip_off: usize, to_server: bool, mac: [u8; 6]) {
    let (at, len) = match link {
        LinkType::ETHERNET if ip_off >= 14 => (if to_server { 6 } else { 0 }, 6),
        LinkType::LINUX_SLL if to_server => (6, usize::from(be16(out, 4).unwrap_or(0)).min(8)),
        LinkType::LINUX_SLL2 if to_server => (12, usize::from(out.get(11).copied().unwrap_or(0)).min(8)),
        _ => return,
    };
    if let Some(dst) = out.get_mut(at..at + len) {
        for (i, b) in dst.iter_mut().enumerate() {
            *b = mac.get(i).copied().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use etherparse::PacketBuilder;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn pseudonyms_are_stable_distinct_and_never_real_addresses() {
        let mut r = Redactor::default();
        let a = r.pseudonym(ip("10.1.2.3"));
        let b = r.pseudonym(ip("10.9.9.9"));
        assert_eq!(r.pseudonym(ip("10.1.2.3")), a);
        assert_ne!(a, b);
        assert_eq!(a, ip("198.18.0.1"));
        assert_eq!(r.pseudonym(ip("fd00::1")), ip("2001:db8::1"));
        // A real address that is also a candidate is skipped.
        let mut r = Redactor::default();
        r.real.insert(ip("198.18.0.1"));
        assert_eq!(r.pseudonym(ip("10.0.0.1")), ip("198.18.0.2"));
        assert_eq!(candidate(ip("10.0.0.1"), u128::from(BENCHMARK_V4) + 1), ip("240.0.0.1"));
        assert_eq!(r.alias_or_unspecified(ip("10.7.7.7")), ip("0.0.0.0"));
    }

    #[test]
    fn deferred_numbering_follows_first_frames_not_arrival() {
        let mut r = Redactor::default();
        for (client, frame) in [("10.0.0.3", 30), ("10.0.0.1", 50), ("10.0.0.2", 10), ("10.0.0.1", 5)] {
            r.real.insert(ip(client));
            let f = r.pending.entry(ip(client)).or_insert(frame);
            *f = (*f).min(frame);
        }
        r.assign_pending();
        assert_eq!(r.get(ip("10.0.0.1")), Some(ip("198.18.0.1")));
        assert_eq!(r.get(ip("10.0.0.2")), Some(ip("198.18.0.2")));
        assert_eq!(r.get(ip("10.0.0.3")), Some(ip("198.18.0.3")));
    }

    fn frame(v6: bool, from_client: bool, payload: &[u8]) -> Vec<u8> {
        let (smac, dmac) = if from_client {
            ([1; 6], [2; 6])
        } else {
            ([2; 6], [1; 6])
        };
        let eth = PacketBuilder::ethernet2(smac, dmac);
        let (sp, dp) = if from_client { (40000, 443) } else { (443, 40000) };
        let b = if v6 {
            let (c, s) = (ip_bytes(ip("fd0f::1")), ip_bytes(ip("fd0f::10")));
            let (a, z) = if from_client { (c, s) } else { (s, c) };
            eth.ipv6(a, z, 64).tcp(sp, dp, 7, 1000)
        } else {
            let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 10]);
            let (a, z) = if from_client { (c, s) } else { (s, c) };
            eth.ipv4(a, z, 64).tcp(sp, dp, 7, 1000)
        };
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap_or_default();
        v
    }

    fn valid(link: LinkType, d: &[u8]) -> bool {
        let s = decode::slice_frame(link, d).ok();
        let Some(s) = s else { return false };
        let Some(TransportSlice::Tcp(t)) = &s.transport else {
            return false;
        };
        let ip_ok = match &s.net {
            Some(LaxNetSlice::Ipv4(v4)) => Sum16BitWords::new().add_slice(v4.header().slice()).ones_complement() == 0,
            _ => true,
        };
        ip_ok && tcp_sum(&s.net, t.slice(), None).is_some_and(|x| x.ones_complement() == 0)
    }

    #[test]
    fn rewritten_frames_keep_valid_checksums_and_name_only_the_pseudonym() {
        for v6 in [false, true] {
            for from_client in [true, false] {
                let f = frame(v6, from_client, b"hello tls");
                assert!(valid(LinkType::ETHERNET, &f));
                let (client, alias) = if v6 {
                    (ip("fd0f::1"), ip("2001:db8::1"))
                } else {
                    (ip("10.0.0.1"), ip("198.18.0.1"))
                };
                let p = Packet {
                    ts: Timestamp(0),
                    link: LinkType::ETHERNET,
                    data: &f,
                    orig_len: f.len() as u32,
                };
                let ep = Endpoint {
                    ip: client,
                    port: 40000,
                };
                let out = rewrite_frame(&p, ep, alias).unwrap_or_default();
                assert!(valid(LinkType::ETHERNET, &out), "v6 {v6} from_client {from_client}");
                let seg = decode::decode(LinkType::ETHERNET, &out).ok();
                let (src, dst) = seg.map(|s| (s.src, s.dst)).unwrap_or((alias, alias));
                let server = if v6 { ip("fd0f::10") } else { ip("10.0.0.10") };
                assert_eq!(if from_client { (src, dst) } else { (dst, src) }, (alias, server));
                let mac = pseudonym_mac(alias);
                let at = if from_client { 6 } else { 0 };
                assert_eq!(out.get(at..at + 6), Some(&mac[..]));
                // The server's end is untouched: port 443 is not the client's port.
                let wrong = Endpoint {
                    ip: server,
                    port: 40000,
                };
                assert!(rewrite_frame(&p, wrong, alias).is_none());
            }
        }
    }

    #[test]
    fn bad_checksums_stay_bad_and_offloaded_ones_are_computed() {
        let mut f = frame(false, true, b"payload");
        let ck = 14 + 20 + 16;
        let p = |d: &[u8]| -> Option<Vec<u8>> {
            let pk = Packet {
                ts: Timestamp(0),
                link: LinkType::ETHERNET,
                data: d,
                orig_len: d.len() as u32,
            };
            rewrite_frame(
                &pk,
                Endpoint {
                    ip: ip("10.0.0.1"),
                    port: 40000,
                },
                ip("198.18.0.1"),
            )
        };
        // Wrong by one: still wrong by one after the rewrite.
        let good = be16(&f, ck).unwrap_or(0);
        if let Some(x) = f.get_mut(ck + 1) {
            *x ^= 1;
        }
        let out = p(&f).unwrap_or_default();
        assert!(!valid(LinkType::ETHERNET, &out));
        // Offloaded (zero): computed.
        if let Some(x) = f.get_mut(ck..ck + 2) {
            x.copy_from_slice(&[0, 0]);
        }
        let out = p(&f).unwrap_or_default();
        assert!(valid(LinkType::ETHERNET, &out));
        assert_ne!(good, 0);
        // An IPv4 header checksum left zero by offload: computed too.
        if let Some(x) = f.get_mut(14 + 10..14 + 12) {
            x.copy_from_slice(&[0, 0]);
        }
        let out = p(&f).unwrap_or_default();
        assert!(valid(LinkType::ETHERNET, &out));
        // A fragment is left out.
        let mut frag = frame(false, true, b"x");
        if let Some(x) = frag.get_mut(14 + 6) {
            *x |= 0x20;
        }
        assert!(p(&frag).is_none());
    }

    #[test]
    fn cooked_captures_lose_the_clients_link_address() {
        let f = frame(false, true, b"x");
        let ipb = f.get(14..).unwrap_or_default();
        let mut sll = vec![0, 0, 0, 1, 0, 6, 9, 9, 9, 9, 9, 9, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ipb);
        let p = Packet {
            ts: Timestamp(0),
            link: LinkType::LINUX_SLL,
            data: &sll,
            orig_len: sll.len() as u32,
        };
        let out = rewrite_frame(
            &p,
            Endpoint {
                ip: ip("10.0.0.1"),
                port: 40000,
            },
            ip("198.18.0.1"),
        )
        .unwrap_or_default();
        assert_eq!(out.get(6..14), Some(&[2, 0, 198, 18, 0, 1, 0, 0][..]));
        assert!(valid(LinkType::LINUX_SLL, &out));
    }
}
