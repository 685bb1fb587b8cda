//! The default capture filter of `tlsdiag live`: what the analysis can use, nothing more.
//!
//! What it is: the BPF expression built from what the analysis follows ([`Selection`]): TCP
//! (every port, or the listed ports under `--ports-only`), the carriers of the tunnels the
//! decoder opens (UDP to the VXLAN ports, VXLAN-GPE, Geneve, GTP-U, L2TP, Teredo; IP protocols
//! 4, 41 and 47 over IPv4 and IPv6; MPLS, Cisco MetaData, PPPoE session, 802.1ah, VN-Tag and
//! E-tag ether types), IPv4 and IPv6 fragments (a non-first fragment has no TCP header), and
//! all of these again behind one or two VLAN tags. The decoder's list is in `decode::tunnel`.
//!
//! What it is not: the user's `--filter`, which replaces it whole; it selects no session (the
//! analysis still decides which connections are TLS).
//!
//! Guarantees: [`candidates`] gives the full filter first, then the same without the VLAN part
//! (libpcap has no `vlan` for the `any` device's Linux cooked header, raw IP or BSD loopback);
//! one compiles on every link type a live capture gives, and every candidate compiles on
//! Ethernet (tested below on a dead handle, with the frames each
//! must take or leave). The `vlan` keyword moves libpcap's offsets for everything after it, so
//! it comes last, once for a single tag and once more inside for QinQ; on a Linux interface the
//! first `vlan` also matches a tag the kernel moved out of the frame, and then moves nothing.

use crate::decode::tunnel::{MAX_VXLAN_PORTS, VXLAN_PORT};

/// UDP destination ports that announce a tunnel whatever `--vxlan-port` says: VXLAN-GPE,
/// Geneve (the decoder looks at the destination port only).
const UDP_DST_TUNNEL_PORTS: [u16; 2] = [4790, 6081];
/// UDP ports (source or destination) that announce a tunnel: GTP-U, L2TP, Teredo.
const UDP_TUNNEL_PORTS: [u16; 3] = [2152, 1701, 3544];
/// IP protocols (IPv4 protocol, IPv6 next header) of tunnels: IP-in-IP, IPv6-in-IP, GRE
/// (and ERSPAN over it).
const IP_TUNNEL_PROTOCOLS: [u8; 3] = [4, 41, 47];
/// Ether types of shims and tunnels: MPLS unicast and multicast, Cisco MetaData, PPPoE
/// session, 802.1ah PBB, VN-Tag, 802.1BR E-tag (VLAN tags: see the module notes).
const TUNNEL_ETHER_TYPES: [u16; 7] = [0x8847, 0x8848, 0x8909, 0x8864, 0x88e7, 0x8926, 0x893f];

/// What the analysis follows, from which the default filter is built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// The listed TLS ports (`-p`).
    pub ports: Vec<u16>,
    /// `--ports-only`: TCP on the listed ports only; otherwise TCP on every port.
    pub ports_only: bool,
    /// `--vxlan-port` (the first [`MAX_VXLAN_PORTS`]; none: 4789), as `decode::Config` takes them.
    pub vxlan_ports: Vec<u16>,
}

/// The BPF filter that selects TCP on the followed ports.
pub fn port_filter(ports: &[u16]) -> String {
    match ports {
        [] => "tcp".to_string(),
        [p] => format!("tcp port {p}"),
        ps => {
            let alts: Vec<String> = ps.iter().map(|p| format!("port {p}")).collect();
            format!("tcp and ({})", alts.join(" or "))
        }
    }
}

/// The default filter's candidates, best first: with VLAN-tagged copies, then without (for
/// link types libpcap has no `vlan` for: the `any` device's Linux cooked header, raw IP, BSD
/// loopback). The capture applies the first that compiles.
pub fn candidates(sel: &Selection) -> [String; 2] {
    let core = format!("{} or {}", ip_part(sel), ether_part());
    [format!("{core} or (vlan and ({core} or (vlan and ({core}))))"), core]
}

/// The full default filter (the first of [`candidates`]).
pub fn default_filter(sel: &Selection) -> String {
    let [full, _] = candidates(sel);
    full
}

/// The ether types of shims and tunnels.
fn ether_part() -> String {
    let ether: Vec<String> = TUNNEL_ETHER_TYPES
        .iter()
        .map(|t| format!("ether proto {t:#06x}"))
        .collect();
    ether.join(" or ")
}

/// What is read at the IP layer: TCP, the tunnels' UDP ports and IP protocols, fragments.
fn ip_part(sel: &Selection) -> String {
    let tcp = if sel.ports_only {
        port_filter(&sel.ports)
    } else {
        "tcp".to_string()
    };
    let mut vxlan: Vec<u16> = sel
        .vxlan_ports
        .iter()
        .copied()
        .take(MAX_VXLAN_PORTS)
        .filter(|p| *p != 0)
        .collect();
    if sel.vxlan_ports.is_empty() {
        vxlan.push(VXLAN_PORT);
    }
    let mut udp: Vec<String> = Vec::new();
    for p in vxlan.iter().chain(&UDP_DST_TUNNEL_PORTS) {
        let alt = format!("dst port {p}");
        if !udp.contains(&alt) {
            udp.push(alt);
        }
    }
    udp.extend(UDP_TUNNEL_PORTS.iter().map(|p| format!("port {p}")));
    let ip: Vec<String> = IP_TUNNEL_PROTOCOLS
        .iter()
        .flat_map(|p| [format!("ip proto {p}"), format!("ip6 proto {p}")])
        .collect();
    // IPv4: more fragments or a fragment offset; IPv6: a fragment header right after the
    // fixed header (libpcap's `ip6 proto 6` already looks one fragment header further).
    let fragments = "(ip[6:2] & 0x3fff != 0) or ip6[6] = 44";
    format!(
        "{tcp} or (udp and ({})) or {} or {fragments}",
        udp.join(" or "),
        ip.join(" or ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType as Link;
    use crate::decode::{Config, Decoded, decode_packet};
    use etherparse::{IpNumber, PacketBuilder};

    fn sel(ports: &[u16], ports_only: bool, vxlan: &[u16]) -> Selection {
        Selection {
            ports: ports.to_vec(),
            ports_only,
            vxlan_ports: vxlan.to_vec(),
        }
    }

    fn program(filter: &str, link: pcap::Linktype) -> Result<pcap::BpfProgram, pcap::Error> {
        pcap::Capture::dead(link).and_then(|c| c.compile(filter, true))
    }

    fn compiled(filter: &str) -> pcap::BpfProgram {
        program(filter, pcap::Linktype::ETHERNET).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    /// Every selection a user can ask for (ports, --ports-only, VXLAN ports).
    fn selections() -> Vec<Selection> {
        let mut v = Vec::new();
        for ports in [&[][..], &[443], &[443, 8443], &[443, 8443, 993, 4433, 10443]] {
            for only in [false, true] {
                for vxlan in [&[][..], &[8472], &[4789, 8472], &[4789, 4790, 6081, 8472, 9999], &[0]] {
                    v.push(sel(ports, only, vxlan));
                }
            }
        }
        v
    }

    #[test]
    fn port_filters() {
        assert_eq!(port_filter(&[443]), "tcp port 443");
        assert_eq!(port_filter(&[443, 8443]), "tcp and (port 443 or port 8443)");
        assert_eq!(port_filter(&[]), "tcp");
    }

    #[test]
    fn every_filter_compiles() {
        for s in selections() {
            let [full, core] = candidates(&s);
            let p = compiled(&full);
            // The kernel takes at most 4096 instructions (BPF_MAXINSNS).
            assert!(
                p.get_instructions().len() < 4096,
                "{} instructions",
                p.get_instructions().len()
            );
            compiled(&core);
        }
    }

    #[test]
    fn every_link_type_takes_one_candidate() {
        // `any` is Linux cooked (v1 or v2), tun devices raw IP; libpcap has no `vlan` for them.
        let [full, core] = candidates(&sel(&[443], false, &[]));
        assert!(program(&full, pcap::Linktype::ETHERNET).is_ok());
        let links = [
            pcap::Linktype::LINUX_SLL,
            pcap::Linktype::LINUX_SLL2,
            pcap::Linktype(12), // DLT_RAW (LINKTYPE_RAW 101 in files)
            pcap::Linktype::NULL,
        ];
        for link in links {
            assert!(
                program(&full, link).is_err(),
                "link type {}: no fallback needed?",
                link.0
            );
            if let Err(e) = program(&core, link) {
                panic!("link type {}: {e}", link.0);
            }
        }
    }

    #[test]
    fn the_vxlan_ports_replace_4789() {
        let f = default_filter(&sel(&[443], false, &[8472]));
        assert!(f.contains("dst port 8472") && !f.contains("4789"), "{f}");
        let f = default_filter(&sel(&[443], false, &[]));
        assert!(f.contains("dst port 4789"), "{f}");
        // The first four, as the decoder takes them.
        let f = default_filter(&sel(&[443], false, &[1, 2, 3, 4, 5]));
        assert!(f.contains("dst port 4 ") && !f.contains("dst port 5 "), "{f}");
    }

    // Hand-built frames: an inner TCP segment, and the tunnels and tags around it.

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn ip_tcp(dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([10, 1, 0, 2], [10, 1, 0, 1], 64)
            .tcp(40000, dport, 1, 1000)
            .syn()
            .write(&mut v, &[])
            .expect("ip");
        v
    }

    fn ip6_tcp(dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6([0x20; 16], [0x21; 16], 64)
            .tcp(40000, dport, 1, 1000)
            .syn()
            .write(&mut v, &[])
            .expect("ip6");
        v
    }

    fn ether(et: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = [MAC, MAC].concat();
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn tcp_frame(dport: u16) -> Vec<u8> {
        ether(0x0800, &ip_tcp(dport))
    }

    /// An outer IPv4 packet of `proto` in an Ethernet frame.
    fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .write(&mut v, IpNumber(proto), payload)
            .expect("outer ip");
        v
    }

    fn outer_ip6(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv6([0x30; 16], [0x31; 16], 64)
            .write(&mut v, IpNumber(proto), payload)
            .expect("outer ip6");
        v
    }

    fn outer_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(sport, dport)
            .write(&mut v, payload)
            .expect("outer udp");
        v
    }

    fn vxlan(dport: u16) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0, 0, 0, 100, 0];
        p.extend_from_slice(&tcp_frame(443));
        outer_udp(50000, dport, &p)
    }

    fn vlan(tpid: u16, inner_et: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = [MAC, MAC].concat();
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&[0, 100]);
        f.extend_from_slice(&inner_et.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An IPv4 fragment at `offset` (8-byte units) of a TCP datagram.
    fn ipv4_fragment(offset: u16, more: bool) -> Vec<u8> {
        let mut ip = ip_tcp(443);
        let word = offset | if more { 0x2000 } else { 0 };
        ip[6..8].copy_from_slice(&word.to_be_bytes());
        ip[10..12].fill(0);
        let sum = ip[..20]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        ether(0x0800, &ip)
    }

    /// An IPv6 packet whose next header is a fragment header at `offset` (8-byte units).
    fn ipv6_fragment(offset: u16) -> Vec<u8> {
        let mut frag = vec![6, 0];
        frag.extend_from_slice(&((offset << 3) | 1).to_be_bytes());
        frag.extend_from_slice(&[0, 0, 0, 7]);
        frag.extend_from_slice(&[0u8; 24]);
        outer_ip6(44, &frag)
    }

    fn gtp_u(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x30, 0xff];
        p.extend_from_slice(&u16::try_from(payload.len()).expect("len").to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(payload);
        p
    }

    /// Frames the analysis uses and the filter must take, by name: each bare, behind an
    /// 802.1Q tag and behind QinQ tags.
    fn wanted(vxlan_port: u16) -> Vec<(String, Vec<u8>)> {
        let mut gre = vec![0, 0, 0x08, 0x00];
        gre.extend_from_slice(&ip_tcp(443));
        let mut geneve = vec![0, 0, 0x65, 0x58, 0, 0, 100, 0];
        geneve.extend_from_slice(&tcp_frame(443));
        let mut mpls = vec![0x00, 0x06, 0x41, 0x40];
        mpls.extend_from_slice(&ip_tcp(443));
        let mut cmd = vec![0x01, 0x01, 0x00, 0x01, 0x00, 0x10, 0x08, 0x00];
        cmd.extend_from_slice(&ip_tcp(443));
        let bare = [
            ("tcp 443", tcp_frame(443)),
            ("tcp 8443", tcp_frame(8443)),
            ("tcp over ipv6", ether(0x86dd, &ip6_tcp(443))),
            ("vxlan", vxlan(vxlan_port)),
            ("geneve", outer_udp(50000, 6081, &geneve)),
            ("gtp-u", outer_udp(2152, 2152, &gtp_u(&ip_tcp(443)))),
            ("gre", outer_ip(47, &gre)),
            ("gre over ipv6", outer_ip6(47, &gre)),
            ("ip-in-ip", outer_ip(4, &ip_tcp(443))),
            ("ipv6-in-ip", outer_ip(41, &ip6_tcp(443))),
            ("mpls", ether(0x8847, &mpls)),
            ("cisco metadata", ether(0x8909, &cmd)),
            ("ipv4 first fragment", ipv4_fragment(0, true)),
            ("ipv4 later fragment", ipv4_fragment(64, false)),
            ("ipv6 first fragment", ipv6_fragment(0)),
            ("ipv6 later fragment", ipv6_fragment(64)),
        ];
        let mut all = Vec::new();
        for (name, f) in bare {
            let et = u16::from_be_bytes([f[12], f[13]]);
            let rest = &f[14..];
            all.push((format!("{name} in a vlan tag"), vlan(0x8100, et, rest)));
            let mut inner_tag = vec![0, 200];
            inner_tag.extend_from_slice(&et.to_be_bytes());
            inner_tag.extend_from_slice(rest);
            all.push((format!("{name} in qinq tags"), vlan(0x88a8, 0x8100, &inner_tag)));
            all.push((name.to_string(), f));
        }
        all
    }

    /// Frames the analysis cannot use and the filter must leave.
    fn unwanted() -> Vec<(&'static str, Vec<u8>)> {
        let mut dns = outer_udp(50000, 53, &[0u8; 20]);
        let tagged_dns = vlan(0x8100, 0x0800, &dns.split_off(14));
        let mut arp = ether(0x0806, &[0u8; 28]);
        arp.truncate(42);
        vec![
            ("dns", outer_udp(50000, 53, &[0u8; 20])),
            ("dns in a vlan tag", tagged_dns),
            ("vxlan port as source only", outer_udp(4789, 50000, &[0u8; 40])),
            ("icmp", outer_ip(1, &[8, 0, 0, 0, 0, 0, 0, 0])),
            ("arp", arp),
            ("lldp", ether(0x88cc, &[0u8; 40])),
        ]
    }

    fn usable(cfg: &Config, f: &[u8]) -> bool {
        matches!(
            decode_packet(cfg, Link::ETHERNET, f, false),
            Ok(Decoded::Tcp(_) | Decoded::Fragment(_))
        )
    }

    #[test]
    fn the_filter_takes_what_the_analysis_uses() {
        for vxlan_port in [4789, 8472] {
            let cfg = Config::with_vxlan_ports(&[vxlan_port]);
            for only in [false, true] {
                let filter = default_filter(&sel(&[443], only, &[vxlan_port]));
                let p = compiled(&filter);
                for (name, f) in wanted(vxlan_port) {
                    assert!(usable(&cfg, &f), "the decoder does not take the {name} frame");
                    let want = !(only && name.starts_with("tcp 8443"));
                    assert_eq!(
                        p.filter(&f),
                        want,
                        "{name}, vxlan {vxlan_port}, ports only {only}: {filter}"
                    );
                }
                for (name, f) in unwanted() {
                    assert!(!usable(&cfg, &f), "the decoder takes the {name} frame");
                    assert!(!p.filter(&f), "{name}: {filter}");
                }
            }
        }
    }

    #[test]
    fn without_its_port_vxlan_is_left() {
        let p = compiled(&default_filter(&sel(&[443], true, &[8472])));
        assert!(p.filter(&vxlan(8472)));
        assert!(
            !p.filter(&vxlan(4789)),
            "4789 is not VXLAN once --vxlan-port names others"
        );
    }

    /// On the committed sample captures: every frame the decoder turns into a TCP segment or an
    /// IP fragment passes the default filter of the capture's link type (as a live capture
    /// would choose it).
    #[test]
    fn the_filter_takes_every_usable_frame_of_the_samples() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases");
        let Ok(dirs) = std::fs::read_dir(&root) else {
            panic!("no {}", root.display());
        };
        let vxlan = [4789, 8472];
        let cfg = Config::with_vxlan_ports(&vxlan);
        let (mut files, mut frames) = (0, 0);
        for dir in dirs.flatten() {
            for file in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let path = file.path();
                let name = path.to_string_lossy().into_owned();
                if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                    continue;
                }
                let Ok(mut cap) = pcap::Capture::from_file(&path) else {
                    continue; // deliberately broken files
                };
                let link = cap.get_datalink();
                let Some(p) = candidates(&sel(&[443], false, &vxlan))
                    .iter()
                    .find_map(|f| program(f, link).ok())
                else {
                    panic!("{name}: no candidate compiles for link type {}", link.0);
                };
                files += 1;
                let mut n = 0u32;
                while let Ok(pkt) = cap.next_packet() {
                    n += 1;
                    let cut = pkt.header.caplen < pkt.header.len;
                    let ok = matches!(
                        decode_packet(&cfg, Link(link.0 as u32), pkt.data, cut),
                        Ok(Decoded::Tcp(_) | Decoded::Fragment(_))
                    );
                    if ok {
                        frames += 1;
                        assert!(p.filter(pkt.data), "{name}: frame {n} is usable but filtered out");
                    }
                }
            }
        }
        assert!(files > 50 && frames > 1000, "{files} files, {frames} frames");
    }
}
