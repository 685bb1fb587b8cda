//! Flow: TCP connections on the TLS ports, rebuilt as two ordered byte streams.
//!
//! What it is: the connection table ([`table::FlowTable`]), per-direction reassembly
//! ([`reassembly::Reassembler`]) and the TCP facts a verdict needs ([`TcpFacts`]: who sent SYN,
//! SYN-ACK, FIN and RST, when, with which frame).
//!
//! What it is not: it knows nothing of TLS. Ordered bytes and gaps go to a [`StreamHandler`]
//! (the TLS session) that the table owns per connection.
//!
//! Guarantees: sequence numbers compare with wraparound; retransmitted, overlapping and
//! out-of-order data is delivered once and in order; a hole that cannot be filled is delivered
//! as an explicit [`Chunk::Gap`]; data is flushed at FIN, RST, idle expiry and end of capture.
//! Memory is bounded by the caps in [`crate::limits`], per connection and for the table.

pub mod community_id;
pub mod reassembly;
mod resume;
pub mod table;
pub mod watch;

use crate::capture::Timestamp;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// A TCP sequence number: arithmetic and comparison modulo 2^32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance from `other` to `self` (positive when `self` is ahead).
    pub fn diff(self, other: SeqNumber) -> i64 {
        self.0.wrapping_sub(other.0) as i32 as i64
    }

    /// `self + n`, wrapping.
    pub fn plus(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n as u32))
    }

    /// Whether `self` comes after `other` in sequence space.
    pub fn after(self, other: SeqNumber) -> bool {
        self.diff(other) > 0
    }
}

/// Which way data flows, relative to the client and server roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    /// 0 for to-server, 1 for to-client (for per-direction arrays).
    pub fn idx(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// The other direction.
    pub fn flip(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    /// The party that sends in this direction.
    pub fn sender(self) -> Side {
        match self {
            Direction::ToServer => Side::Client,
            Direction::ToClient => Side::Server,
        }
    }

    /// Arrow for timelines: `C→S` or `S→C`.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ToServer => "C→S",
            Direction::ToClient => "S→C",
        }
    }
}

/// The TCP ports followed as TLS: a lookup table answering for every port number.
#[derive(Clone, Debug)]
pub struct PortSet(Box<[u64]>);

impl PortSet {
    /// The set of these ports.
    pub fn new(ports: &[u16]) -> PortSet {
        // One bit per port (8 KiB): asked twice per packet with random client ports, so it
        // must stay in the nearest caches.
        let mut all = vec![0u64; (1 << 16) / 64];
        for p in ports {
            if let Some(word) = all.get_mut(usize::from(*p) / 64) {
                *word |= 1 << (p % 64);
            }
        }
        PortSet(all.into_boxed_slice())
    }

    /// Whether `port` is followed.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.0
            .get(usize::from(port) / 64)
            .is_some_and(|w| w >> (port % 64) & 1 == 1)
    }
}

/// One value per direction, indexed by [`Direction`] (never by a number, so no index can be
/// out of range).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PerDir<T>(pub [T; 2]);

impl<T> PerDir<T> {
    /// The values for client→server and server→client.
    pub fn new(to_server: T, to_client: T) -> PerDir<T> {
        PerDir([to_server, to_client])
    }

    /// Both values, client→server first.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// Both values, client→server first.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.0.iter_mut()
    }

    /// The values mapped one by one.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerDir<U> {
        PerDir(self.0.map(f))
    }

    /// Each direction with its value, client→server first.
    pub fn each(&self) -> impl Iterator<Item = (Direction, &T)> {
        [Direction::ToServer, Direction::ToClient]
            .into_iter()
            .zip(self.0.iter())
    }
}

impl<T> std::ops::Index<Direction> for PerDir<T> {
    type Output = T;
    fn index(&self, d: Direction) -> &T {
        let [to_server, to_client] = &self.0;
        match d {
            Direction::ToServer => to_server,
            Direction::ToClient => to_client,
        }
    }
}

impl<T> std::ops::IndexMut<Direction> for PerDir<T> {
    fn index_mut(&mut self, d: Direction) -> &mut T {
        let [to_server, to_client] = &mut self.0;
        match d {
            Direction::ToServer => to_server,
            Direction::ToClient => to_client,
        }
    }
}

/// A party of the connection (or something between them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
    Network,
    Unknown,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
            Side::Network => "network",
            Side::Unknown => "unknown",
        })
    }
}

/// An IP address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    /// A decoded segment's sender and receiver.
    #[inline]
    pub fn ends_of(seg: &crate::decode::TcpSegment<'_>) -> (Endpoint, Endpoint) {
        (
            Endpoint {
                ip: seg.src,
                port: seg.sport,
            },
            Endpoint {
                ip: seg.dst,
                port: seg.dport,
            },
        )
    }

    /// Appends the display form (`1.2.3.4:443`, `[::1]:443`) to `out`. Summaries of every
    /// session name the server: IPv4 is written by hand, several times cheaper than the
    /// formatter.
    pub fn push_to(&self, out: &mut String) {
        match self.ip {
            IpAddr::V4(v4) => {
                // Written into a buffer of the longest form ("255.255.255.255:65535") and
                // appended once: a push per character costs several times more.
                let mut buf = [0u8; 21];
                let mut at = 0;
                for (i, b) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        at = put_byte(&mut buf, at, b'.');
                    }
                    at = put_decimal(&mut buf, at, u32::from(b));
                }
                at = put_byte(&mut buf, at, b':');
                at = put_decimal(&mut buf, at, u32::from(self.port));
                out.push_str(std::str::from_utf8(buf.get(..at).unwrap_or(&[])).unwrap_or(""));
            }
            IpAddr::V6(_) => {
                use std::fmt::Write as _;
                let _ = write!(out, "{self}");
            }
        }
    }
}

/// Writes `b` into `buf` at `at`; returns the new end.
fn put_byte(buf: &mut [u8], at: usize, b: u8) -> usize {
    if let Some(to) = buf.get_mut(at) {
        *to = b;
    }
    at + 1
}

/// Writes `v` (at most 5 digits: an octet or a port) in decimal into `buf` at `at`; returns the
/// new end.
fn put_decimal(buf: &mut [u8], at: usize, v: u32) -> usize {
    let len = match v {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    };
    let mut n = v;
    for i in (at..at + len).rev() {
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
    }
    at + len
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Canonical key of a connection: the two endpoints, lower first (address, then port), packed
/// for a cheap hash and comparison (it is computed and looked up for every packet). An IPv4
/// address and its IPv4-mapped IPv6 form are different connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKey {
    /// Both addresses IPv4: the lower endpoint's in the high half of `addrs`.
    V4 {
        addrs: u64,
        /// Port of the lower endpoint in the high half, of the other in the low half.
        ports: u32,
    },
    /// Otherwise: the addresses as 128 bits (an IPv4 one in the low 32).
    V6 { lo: u128, hi: u128, ports: u32 },
}

/// An address as 128 bits (IPv4 in the low 32), as keys and the workers' split read it.
pub fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl std::hash::Hash for FlowKey {
    /// The words of the addresses as 128 bits each, then the ports and family: the same hash
    /// whatever the key's form (it splits connections between workers: see [`ShortHash`] for
    /// tables).
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (lo, hi, ports, family) = match *self {
            FlowKey::V4 { addrs, ports } => (u128::from(addrs >> 32), u128::from(addrs as u32), ports, 4u64),
            FlowKey::V6 { lo, hi, ports } => (lo, hi, ports, 6),
        };
        h.write_u64(lo as u64);
        h.write_u64((lo >> 64) as u64);
        h.write_u64(hi as u64);
        h.write_u64((hi >> 64) as u64);
        h.write_u64(u64::from(ports) | family << 32);
    }
}

/// A [`FlowKey`] hashed in as few words as it takes: two for IPv4 (a connection table looks its
/// key up for every packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortHash(pub FlowKey);

impl std::hash::Hash for ShortHash {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self.0 {
            FlowKey::V4 { addrs, ports } => {
                h.write_u64(addrs);
                h.write_u64(u64::from(ports) | 4 << 32);
            }
            key @ FlowKey::V6 { .. } => key.hash(h),
        }
    }
}

impl FlowKey {
    /// The key of a decoded segment's connection.
    #[inline]
    pub fn of(seg: &crate::decode::TcpSegment<'_>) -> FlowKey {
        FlowKey::from_parts(seg.src, seg.sport, seg.dst, seg.dport)
    }

    /// The key of a packet from `a` to `b` (same key for both directions).
    #[inline]
    pub fn new(a: Endpoint, b: Endpoint) -> FlowKey {
        FlowKey::from_parts(a.ip, a.port, b.ip, b.port)
    }

    #[inline]
    fn from_parts(a: IpAddr, a_port: u16, b: IpAddr, b_port: u16) -> FlowKey {
        if let (IpAddr::V4(a), IpAddr::V4(b)) = (a, b) {
            // One word per endpoint, address then port: ordered as the pairs are.
            let a = u64::from(u32::from(a)) << 16 | u64::from(a_port);
            let b = u64::from(u32::from(b)) << 16 | u64::from(b_port);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            return FlowKey::V4 {
                addrs: (lo >> 16) << 32 | hi >> 16,
                ports: ((lo & 0xffff) << 16 | (hi & 0xffff)) as u32,
            };
        }
        let (a, b) = ((ip_bits(a), a_port), (ip_bits(b), b_port));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey::V6 {
            lo: lo.0,
            hi: hi.0,
            ports: u32::from(lo.1) << 16 | u32::from(hi.1),
        }
    }
}

/// Where something happened: a frame number (from 1, across the whole capture) and its time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct At {
    pub frame: u64,
    #[serde(skip)]
    pub ts: Timestamp,
}

/// How the client and server roles were decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    Syn,
    SynAck,
    Port,
    /// The sender of the ClientHello or of the preamble's first bytes (an unlisted port).
    Content,
}

/// Why the connection's record was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndKind {
    Reset,
    Closed,
    HandshakeTimeout,
    IdleTimeout,
    CaptureEnd,
    Evicted,
}

/// Per-direction counters and markers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirFacts {
    pub packets: u64,
    /// Packets with the ACK flag (a client ACK after its SYN proves a SYN-ACK was sent).
    pub acks: u64,
    // Fields every packet reads or writes come first: they share the first cache lines.
    /// One past the highest sequence number of data sent in this direction.
    #[serde(skip)]
    pub seq_end: Option<SeqNumber>,
    /// Highest acknowledgment number sent in this direction (covers the other direction's data).
    #[serde(skip)]
    pub ack_max: Option<SeqNumber>,
    pub payload_bytes: u64,
    pub first_packet: Option<At>,
    pub last_packet: Option<At>,
    pub first_data: Option<At>,
    pub last_data: Option<At>,
    pub fin: Option<At>,
    pub rst: Option<At>,
    pub retransmissions: u32,
    pub out_of_order: u32,
    pub gaps: u32,
    pub gap_bytes: u64,
    /// Payload bytes cut by the snap length.
    pub snaplen_missing: u64,
    /// Segments whose bytes disagreed with a copy of the same sequence numbers seen before.
    #[serde(skip)]
    pub overlap_conflicts: u32,
    /// The first such disagreement.
    #[serde(skip)]
    pub first_conflict: Option<ConflictAt>,
    /// Segments not used because their TCP or IPv4 checksum was wrong while this direction's
    /// other segments had valid ones.
    #[serde(skip)]
    pub bad_checksums: u32,
}

/// Bytes sent twice with different contents, for the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConflictAt {
    /// Relative sequence numbers (Wireshark's: the first data byte after the SYN is 1) of the
    /// first and one-past-last bytes that disagree.
    pub start: i64,
    pub end: i64,
    /// The frame whose copy was used, and the frame that disagreed with it.
    pub kept_frame: u64,
    pub other_frame: u64,
}

/// Everything TCP says about one connection.
#[derive(Clone, Debug, Serialize)]
pub struct TcpFacts {
    pub client: Endpoint,
    pub server: Endpoint,
    pub roles: RoleSource,
    pub first: At,
    pub last: At,
    /// Client SYNs (the first few; `syn_count` has them all).
    pub syns: Vec<At>,
    pub syn_count: u32,
    pub syn_ack: Option<At>,
    pub syn_ack_count: u32,
    /// Whether the connection began in the capture (a SYN or SYN-ACK was seen).
    pub midstream: bool,
    pub dirs: PerDir<DirFacts>,
    pub end: EndKind,
    /// Followed for its content (a ClientHello or a preamble on an unlisted port), not its port.
    #[serde(skip)]
    pub by_content: bool,
    /// The first acknowledgment the server sent and the sequence number of the client's first
    /// data: in a connection joined late, equal when none of the client's bytes between the
    /// server's first packet and the client's first data is missing from the capture.
    #[serde(skip)]
    pub server_first_ack: Option<SeqNumber>,
    #[serde(skip)]
    pub client_first_seq: Option<SeqNumber>,
}

impl TcpFacts {
    /// The facts of one direction.
    pub fn dir(&self, d: Direction) -> &DirFacts {
        &self.dirs[d]
    }

    /// Whether any payload was seen in either direction.
    pub fn carried_data(&self) -> bool {
        self.dirs.iter().any(|d| d.payload_bytes > 0 || d.snaplen_missing > 0)
    }

    /// The first RST of the connection and who sent it.
    pub fn first_rst(&self) -> Option<(Side, At)> {
        let c = self.dirs[Direction::ToServer].rst.map(|a| (Side::Client, a));
        let s = self.dirs[Direction::ToClient].rst.map(|a| (Side::Server, a));
        match (c, s) {
            (Some(c), Some(s)) => Some(if c.1.frame <= s.1.frame { c } else { s }),
            (a, b) => a.or(b),
        }
    }

    /// The first FIN of the connection and who sent it.
    pub fn first_fin(&self) -> Option<(Side, At)> {
        let c = self.dirs[Direction::ToServer].fin.map(|a| (Side::Client, a));
        let s = self.dirs[Direction::ToClient].fin.map(|a| (Side::Server, a));
        match (c, s) {
            (Some(c), Some(s)) => Some(if c.1.frame <= s.1.frame { c } else { s }),
            (a, b) => a.or(b),
        }
    }

    /// Bytes of direction `d`'s data that the other side never acknowledged (0 if unknown).
    pub fn unacked(&self, d: Direction) -> u64 {
        match (self.dirs[d].seq_end, self.dirs[d.flip()].ack_max) {
            (Some(end), Some(ack)) => end.diff(ack).max(0) as u64,
            _ => 0,
        }
    }

    /// The first RST or FIN of the connection (whichever came first), who sent it, and whether it
    /// was a RST.
    pub fn first_close(&self) -> Option<(Side, At, bool)> {
        match (self.first_rst(), self.first_fin()) {
            (Some(r), Some(f)) if f.1.frame < r.1.frame => Some((f.0, f.1, false)),
            (Some(r), _) => Some((r.0, r.1, true)),
            (None, Some(f)) => Some((f.0, f.1, false)),
            (None, None) => None,
        }
    }

    /// Whether either direction carried bytes sent twice with different contents.
    pub fn conflicted(&self) -> bool {
        self.dirs.iter().any(|d| d.overlap_conflicts > 0)
    }

    /// Whether either direction lost data (gaps or snap-length cuts).
    pub fn lossy(&self) -> bool {
        self.dirs.iter().any(|d| d.gaps > 0 || d.snaplen_missing > 0)
    }
}

/// A piece of a reassembled stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// In-order bytes.
    Data(&'a [u8]),
    /// Bytes that were never seen (lost, or given up on).
    Gap(u64),
    /// The tail of a captured segment cut by the snap length: never seen either, but the bytes
    /// that come next follow them for certain.
    Cut(u64),
}

/// Receives each direction's ordered bytes; implemented by the TLS session.
pub trait StreamHandler {
    /// Called with ordered data or a gap of one direction, at the frame that made it available.
    fn on_chunk(&mut self, dir: Direction, chunk: Chunk<'_>, at: At);

    /// Whether the handler still needs this direction's bytes (false once the outcome is known,
    /// so application data is skipped without copying).
    fn wants_data(&self, dir: Direction) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key hashes as five words whatever its form (the workers' split stays as it was), and
    /// the table's short hash of an IPv4 key as two.
    #[test]
    fn keys_hash_as_their_words() {
        #[derive(Default)]
        struct Words(Vec<u64>);
        impl std::hash::Hasher for Words {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, _: &[u8]) {
                unreachable!("keys write words")
            }
            fn write_u64(&mut self, v: u64) {
                self.0.push(v);
            }
        }
        let words = |k: &dyn Fn(&mut Words)| {
            let mut w = Words::default();
            k(&mut w);
            w.0
        };
        use std::hash::Hash;
        let key = FlowKey::from_parts("10.0.0.2".parse().unwrap(), 443, "10.0.0.1".parse().unwrap(), 50000);
        let (a, b) = (0x0a00_0001u64, 0x0a00_0002u64);
        let ports = u64::from(50000u16) << 16 | 443;
        assert_eq!(words(&|h| key.hash(h)), [a, 0, b, 0, ports | 4 << 32]);
        assert_eq!(words(&|h| ShortHash(key).hash(h)), [a << 32 | b, ports | 4 << 32]);
        let v6 = FlowKey::from_parts("::1".parse().unwrap(), 1, "::2".parse().unwrap(), 2);
        assert_eq!(words(&|h| ShortHash(v6).hash(h)), words(&|h| v6.hash(h)));
        assert_eq!(words(&|h| v6.hash(h)), [1, 0, 2, 0, (1 << 16 | 2) | 6 << 32]);
    }

    /// IPv4 keys are ordered as the (address, port) pairs are, the same both ways.
    #[test]
    fn ipv4_keys_as_the_general_order_makes_them() {
        let general = |a: IpAddr, ap: u16, b: IpAddr, bp: u16| {
            let (a, b) = ((ip_bits(a), ap), (ip_bits(b), bp));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            FlowKey::V4 {
                addrs: (lo.0 as u64) << 32 | hi.0 as u64,
                ports: u32::from(lo.1) << 16 | u32::from(hi.1),
            }
        };
        let ips = ["10.0.0.1", "10.0.0.2", "255.255.255.255", "0.0.0.0", "192.168.1.1"];
        for a in ips {
            for b in ips {
                for (ap, bp) in [(443, 50000), (50000, 443), (1, 1), (0, 65535), (65535, 0)] {
                    let (a, b) = (a.parse().unwrap(), b.parse().unwrap());
                    assert_eq!(FlowKey::from_parts(a, ap, b, bp), general(a, ap, b, bp));
                    assert_eq!(FlowKey::from_parts(a, ap, b, bp), FlowKey::from_parts(b, bp, a, ap));
                }
            }
        }
    }

    #[test]
    fn endpoints_are_written_as_displayed() {
        for (ip, port) in [
            ("0.0.0.0", 0u16),
            ("10.9.99.100", 443),
            ("255.200.1.19", 65535),
            ("::1", 8443),
        ] {
            let e = Endpoint {
                ip: ip.parse().expect("ip"),
                port,
            };
            let mut s = String::new();
            e.push_to(&mut s);
            assert_eq!(s, e.to_string());
        }
    }

    #[test]
    fn seq_numbers_wrap() {
        let a = SeqNumber(0xffff_fff0);
        let b = a.plus(0x20);
        assert_eq!(b, SeqNumber(0x10));
        assert!(b.after(a));
        assert!(!a.after(b));
        assert_eq!(b.diff(a), 0x20);
        assert_eq!(a.diff(b), -0x20);
    }
}

/// A fast hasher for flow keys, seeded at random per table so that remote peers cannot
/// predict collisions (keys are attacker-chosen on a live interface). Multiply-rotate mixing
/// over the key's few bytes: several times cheaper than SipHash on the per-packet lookup.
#[derive(Clone, Copy, Debug)]
pub struct FlowHasher(u64);

impl std::hash::Hasher for FlowHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            for (to, from) in b.iter_mut().zip(chunk) {
                *to = *from;
            }
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(v as u64);
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }
}

/// Builds [`FlowHasher`]s from one random seed.
#[derive(Clone, Copy, Debug)]
pub struct FlowHashBuilder(u64);

impl Default for FlowHashBuilder {
    fn default() -> FlowHashBuilder {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        FlowHashBuilder(h.finish())
    }
}

impl FlowHashBuilder {
    /// A fixed seed: the same hashes on every run (for splitting work, not for tables that face
    /// attacker-chosen keys).
    pub fn fixed() -> FlowHashBuilder {
        FlowHashBuilder(0x9e37_79b9_7f4a_7c15)
    }
}

impl std::hash::BuildHasher for FlowHashBuilder {
    type Hasher = FlowHasher;
    fn build_hasher(&self) -> FlowHasher {
        FlowHasher(self.0)
    }
}
