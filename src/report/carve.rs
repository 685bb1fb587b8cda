//! Carving: the packets of chosen sessions written to a small pcap for a ticket.
//!
//! The capture is read a second time; a frame is written when it decodes to a TCP segment of a
//! chosen connection (by 4-tuple) and lies within that session's frame range, so a carved file
//! never holds packets of other sessions, even when a 4-tuple was reused. An IP fragment (whose
//! later pieces carry no ports) goes with a chosen session between the same two addresses
//! whose frame range holds it. The file is a classic nanosecond pcap that Wireshark and tlsdiag
//! read; when the run's key log has keys for carved sessions it is a pcapng whose Decryption
//! Secrets Block holds those sessions' lines only ([`super::carve_pcapng`]).

use super::model::SessionReport;
use super::pseudonymize::{self, Redactor};
use crate::capture::{Capture, LinkType, Packet};
use crate::decode;
use crate::flow::{Endpoint, FlowKey};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

/// The sessions to carve: 4-tuple → frame ranges.
#[derive(Clone, Debug, Default)]
pub struct CarveSet {
    /// Frame ranges and the client of each session.
    ranges: HashMap<FlowKey, Vec<(u64, u64, Endpoint)>>,
    /// Per session: client and server addresses, frame range, client (for IP fragments).
    pairs: Vec<(IpAddr, IpAddr, u64, u64, Endpoint)>,
    first: Option<u64>,
    last: u64,
    /// ClientHello randoms of carved sessions the key log has keys for.
    randoms: Vec<[u8; 32]>,
}

impl CarveSet {
    /// Adds one session (its real addresses: build the set before any redaction).
    pub fn add(&mut self, s: &SessionReport) {
        let client = s.client.endpoint();
        let key = FlowKey::new(client, s.server.endpoint());
        self.ranges
            .entry(key)
            .or_default()
            .push((s.first_frame, s.last_frame, client));
        self.pairs
            .push((client.ip, s.server.ip, s.first_frame, s.last_frame, client));
        self.first = Some(self.first.map_or(s.first_frame, |f| f.min(s.first_frame)));
        self.last = self.last.max(s.last_frame);
        if let Some(r) = s.keylog_random {
            self.randoms.push(r);
        }
    }

    /// Whether no session was added.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The client of the chosen session this frame belongs to, if any.
    fn wants(&self, frame: u64, p: &Packet<'_>) -> Option<Endpoint> {
        if self.first.is_none_or(|f| frame < f) || frame > self.last {
            return None;
        }
        let seg = match decode::decode_packet(&decode::Config::default(), p.link, p.data, false).ok()? {
            decode::Decoded::Tcp(seg) => seg,
            decode::Decoded::Fragment(ip) => return self.fragment_of(frame, ip),
        };
        let key = FlowKey::of(&seg);
        self.ranges
            .get(&key)?
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&frame))
            .map(|r| r.2)
    }
}

impl CarveSet {
    /// The client of the chosen session an IP fragment (an IP packet) belongs to: the one
    /// between its two addresses whose frame range holds it.
    fn fragment_of(&self, frame: u64, ip: &[u8]) -> Option<Endpoint> {
        let (src, dst) = match ip.first()? >> 4 {
            4 => {
                let a: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
                let b: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
                (IpAddr::from(a), IpAddr::from(b))
            }
            6 => {
                let a: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
                let b: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
                (IpAddr::from(a), IpAddr::from(b))
            }
            _ => return None,
        };
        self.pairs
            .iter()
            .find(|(c, s, a, b, _)| ((*c, *s) == (src, dst) || (*c, *s) == (dst, src)) && (*a..=*b).contains(&frame))
            .map(|p| p.4)
    }
}

/// What a carve wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct CarveStats {
    pub packets: u64,
    /// Frames of chosen sessions left out because their link type differs from the file's.
    pub other_link_type: u64,
    /// With `--redact`: frames of chosen sessions left out because their client address could
    /// not be rewritten safely (IP fragments, IPv6 extension headers).
    pub not_rewritable: u64,
}

/// Reads the capture again (`cap`, opened anew on the same inputs: never standard input) and
/// writes the chosen sessions' packets to `out`, named `name` in messages; the caller makes it
/// a temporary file and renames it into place once complete. With a redactor, client addresses
/// are rewritten to the report's pseudonyms (see [`pseudonymize::rewrite_frame`]).
pub fn carve(
    mut cap: Capture,
    set: &CarveSet,
    out: &mut dyn Write,
    name: &Path,
    redactor: Option<&Redactor>,
) -> Result<CarveStats, String> {
    let keys = crate::tls::keylog::lines_for(&set.randoms);
    let mut w = if keys.is_empty() {
        Writer::Pcap(PcapWriter::new(out))
    } else {
        Writer::Ng(super::carve_pcapng::PcapngWriter::new(out, keys))
    };
    let mut stats = CarveStats::default();
    let mut frame = 0u64;
    let io_err = |e: io::Error| format!("cannot write {}: {e}", name.display());
    while let Some(p) = cap.next_packet() {
        frame += 1;
        if frame > set.last {
            break;
        }
        if let Some(client) = set.wants(frame, &p) {
            let rewritten;
            let p = match redactor {
                None => p,
                Some(r) => match r
                    .get(client.ip)
                    .and_then(|a| pseudonymize::rewrite_frame(&p, client, a))
                {
                    Some(data) => {
                        rewritten = data;
                        Packet { data: &rewritten, ..p }
                    }
                    None => {
                        stats.not_rewritable += 1;
                        continue;
                    }
                },
            };
            if w.write(&p).map_err(io_err)? {
                stats.packets += 1;
            } else {
                stats.other_link_type += 1;
            }
        }
    }
    w.finish().map_err(io_err)?;
    Ok(stats)
}

/// The carved file: pcap, or pcapng with the carved sessions' keys.
enum Writer<'a> {
    Pcap(PcapWriter<&'a mut dyn Write>),
    Ng(super::carve_pcapng::PcapngWriter<&'a mut dyn Write>),
}

impl Writer<'_> {
    fn write(&mut self, p: &Packet<'_>) -> io::Result<bool> {
        match self {
            Writer::Pcap(w) => w.write(p),
            Writer::Ng(w) => w.write(p),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Writer::Pcap(w) => w.finish(),
            Writer::Ng(w) => w.finish(),
        }
    }
}

/// A classic pcap writer with nanosecond timestamps; one link type per file.
pub struct PcapWriter<W: Write> {
    w: W,
    link: Option<LinkType>,
}

impl<W: Write> PcapWriter<W> {
    /// A writer; the file header is written with the first packet (or at `finish`).
    pub fn new(w: W) -> PcapWriter<W> {
        PcapWriter { w, link: None }
    }

    fn header(&mut self, link: LinkType) -> io::Result<()> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&link.0.to_le_bytes());
        self.w.write_all(&h)?;
        self.link = Some(link);
        Ok(())
    }

    /// Writes one packet; returns false (and writes nothing) if its link type differs.
    pub fn write(&mut self, p: &Packet<'_>) -> io::Result<bool> {
        match self.link {
            None => self.header(p.link)?,
            Some(l) if l != p.link => return Ok(false),
            Some(_) => {}
        }
        let secs = p.ts.secs();
        let nanos = p.ts.0.rem_euclid(1_000_000_000);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(secs.clamp(0, u32::MAX as i64) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(nanos as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(p.data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&p.orig_len.max(p.data.len() as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(p.data)?;
        Ok(true)
    }

    /// Writes the header if no packet came, and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        if self.link.is_none() {
            self.header(LinkType::ETHERNET)?;
        }
        self.w.flush()
    }
}
