//! The same packet seen twice: once per copy of a mirror, or inside and outside a tunnel.
//!
//! What it is: a small direct-mapped table of fingerprints of recent TCP segments (ports,
//! sequence and acknowledgment numbers, flags, payload length on the wire, the TCP checksum field and the
//! IPv4 identification: the checksum covers the addresses and the payload, so two segments
//! with the same fingerprint carry the same bytes). A segment whose fingerprint was seen less
//! than [`WINDOW_NS`] before is a copy, not a retransmission: a sender that retransmits
//! changes the IPv4 identification (and the TCP timestamp option, which the checksum covers),
//! and no retransmission timer fires that fast. Copies are counted, not analyzed twice.
//!
//! Bounded: [`SLOTS`] entries, overwritten in turn; a fingerprint pushed out early only lets a
//! copy through (as before this existed), it never drops a segment that was not seen.

use super::TcpSegment;
use crate::capture::Timestamp;

/// Entries of the table: 8 bytes each, 8 KiB in all, so the table stays in the nearest caches
/// while the capture's bytes stream past (a larger one missed them on every packet and cost more
/// than the rest of the check; copies come within a few packets of each other).
pub const SLOTS: usize = 1024;
/// Two sightings of a segment closer than this are copies of one packet.
pub const WINDOW_NS: i64 = 5_000_000;
/// Times are kept in units of 2^10 ns (about a microsecond), in the slot's low 32 bits: they wrap
/// every 73 minutes, and a wrapped comparison only matters for identical 32-bit fingerprints.
const TIME_SHIFT: u32 = 10;

/// Ages below this many time units (of 2^10 ns) are within [`WINDOW_NS`].
const WINDOW_UNITS: u32 = ((WINDOW_NS + (1 << TIME_SHIFT) - 1) >> TIME_SHIFT) as u32;

/// Recently seen segments: the fingerprint's high 32 bits and the time, packed in one word.
pub struct Copies {
    slots: Box<[u64; SLOTS]>,
    /// Segments dropped as copies.
    pub copies: u64,
}

impl Default for Copies {
    fn default() -> Copies {
        Copies {
            slots: Box::new([0; SLOTS]),
            copies: 0,
        }
    }
}

/// The segment's fingerprint, from the TCP header's first 18 bytes read as they are (ports,
/// sequence and acknowledgment numbers, flags, window and checksum), the IPv4 identification
/// and the length on the wire; `None` for a header shorter than TCP's fixed part. Read where the
/// headers are in cache (a parallel run's framing worker), it is handed to [`Copies::seen`].
#[inline(always)]
pub fn fingerprint(seg: &TcpSegment<'_>) -> Option<u64> {
    let t = seg.tcp_header.first_chunk::<20>()?;
    let a = u64::from_ne_bytes(*t.first_chunk::<8>()?);
    let b = u64::from_ne_bytes(*t.get(8..)?.first_chunk::<8>()?);
    let ck = u64::from(u16::from_ne_bytes(*t.get(16..)?.first_chunk::<2>()?));
    let id = seg
        .ip4_header
        .get(4..)
        .and_then(|i| i.first_chunk::<2>())
        .map_or(0, |i| u64::from(u16::from_ne_bytes(*i)));
    // The length on the wire: a copy inside a tunnel may be cut shorter by the snap length.
    let len = seg.payload.len() as u64 + u64::from(seg.missing);
    let c = len << 32 | id << 16 | ck;
    // Multiply-xor mixing (as in wyhash / FxHash): two rounds, then the high half folded onto
    // the low one (which picks the slot); cheap, and good enough for a cache.
    let x = (a ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ b.rotate_left(32);
    let h = (x ^ c).wrapping_mul(0x94d0_49bb_1331_11eb);
    Some(h ^ (h >> 32))
}

impl Copies {
    /// Whether `seg`, seen at `ts`, is a copy of a segment seen just before (then counted).
    #[inline(always)]
    pub fn is_copy(&mut self, seg: &TcpSegment<'_>, ts: Timestamp) -> bool {
        self.seen(fingerprint(seg), ts)
    }

    /// [`Copies::is_copy`] for a segment whose [`fingerprint`] is `print`.
    #[inline(always)]
    pub fn seen(&mut self, print: Option<u64>, ts: Timestamp) -> bool {
        let Some(h) = print else {
            return false;
        };
        let Some(slot) = self.slots.get_mut((h as usize) & (SLOTS - 1)) else {
            return false;
        };
        // Never 0 (an empty slot): the tag's low bit is set.
        let tag = (h >> 32) | 1;
        let now = (ts.0 >> TIME_SHIFT) as u32;
        let seen = *slot;
        // The age in time units, wrapping: a time before the slot's is a huge one.
        if seen >> 32 == tag && now.wrapping_sub(seen as u32) < WINDOW_UNITS {
            self.copies += 1;
            return true;
        }
        *slot = tag << 32 | u64::from(now);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use etherparse::PacketBuilder;

    fn frame(ip_id: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut ip = etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, [10, 0, 0, 1], [10, 0, 0, 2])
            .expect("header");
        ip.identification = ip_id;
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .tcp(40000, 443, 1000, 64000)
            .ack(5)
            .write(&mut v, payload)
            .expect("build");
        v
    }

    #[test]
    fn copies_within_the_window_only() {
        let mut c = Copies::default();
        let a = frame(1, b"hello");
        let seg = crate::decode::decode(LinkType::ETHERNET, &a).expect("tcp");
        assert!(!c.is_copy(&seg, Timestamp(0)));
        assert!(c.is_copy(&seg, Timestamp(1000)), "the mirror's second copy");
        assert!(!c.is_copy(&seg, Timestamp(WINDOW_NS * 3)), "later: a retransmission");
        // A retransmission with another IPv4 identification is never a copy.
        let b = frame(2, b"hello");
        let seg2 = crate::decode::decode(LinkType::ETHERNET, &b).expect("tcp");
        assert!(!c.is_copy(&seg2, Timestamp(WINDOW_NS * 3 + 1)));
        assert_eq!(c.copies, 1);
    }
}
