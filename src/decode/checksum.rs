//! TCP and IPv4 header checksums of a decoded segment.

use super::{Checksum, TcpSegment};
use std::net::IpAddr;

/// The Internet checksum's sum of `b` (RFC 1071), not yet folded, below 2^35: 32-bit words in
/// the machine's byte order (the sum's byte order follows the words', §2(B)); a last partial word
/// is padded with zeros. Sums of parts that each start on a 32-bit word add up to the sum of the
/// whole. Written out rather than etherparse's, whose carry chain costs several times more on the
/// handshake bytes of every connection: 64-bit words with their carries added back (2^32 and
/// 2^64 are 1 in the ones' complement sum), two instructions each (add, add-with-carry), in four
/// independent sums so that the carry chains overlap.
#[inline]
pub(super) fn sum_words(b: &[u8]) -> u64 {
    let mut blocks = b.chunks_exact(32);
    let mut acc = [0u64; 4];
    for block in &mut blocks {
        for (a, w) in acc.iter_mut().zip(block.chunks_exact(8)) {
            let (s, carry) = a.overflowing_add(w.first_chunk::<8>().map_or(0, |w| u64::from_ne_bytes(*w)));
            *a = s + u64::from(carry);
        }
    }
    acc.iter().map(|a| (a & 0xffff_ffff) + (a >> 32)).sum::<u64>() + sum_short(blocks.remainder())
}

/// [`sum_words`] of a few bytes (a header, the end of a payload), below 2^33: 64-bit words
/// with the carries added back (2^32 and 2^64 are 1 in the ones' complement sum), then the
/// last bytes.
#[inline]
pub(super) fn sum_short(b: &[u8]) -> u64 {
    let mut words = b.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        let (s, carry) = acc.overflowing_add(w.first_chunk::<8>().map_or(0, |w| u64::from_ne_bytes(*w)));
        acc = s + u64::from(carry);
    }
    let tail = words.remainder();
    let (four, rest) = match tail.split_first_chunk::<4>() {
        Some((w, rest)) => (word(*w), rest),
        None => (0, tail),
    };
    let last = match *rest {
        [a] => [a, 0, 0, 0],
        [a, b] => [a, b, 0, 0],
        [a, b, c] => [a, b, c, 0],
        _ => [0; 4],
    };
    let (s, carry) = acc.overflowing_add(four + word(last));
    let acc = s + u64::from(carry);
    (acc & 0xffff_ffff) + (acc >> 32)
}

/// Folds a [`sum_words`] sum to 16 bits (0xffff: the checksum holds).
#[inline]
pub(super) fn fold(sum: u64) -> u16 {
    // 64 -> 33 -> 32 bits, then 32 -> 17 -> 16: each step adds the carries back in.
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// [`sum_words`] of a header, below 2^36: the fixed 20 bytes of IPv4 and TCP read as three
/// words, the options (if any) after them.
#[inline(always)]
fn sum_header(b: &[u8]) -> u64 {
    let Some((fixed, options)) = b.split_first_chunk::<20>() else {
        return sum_short(b);
    };
    let at = |i: usize| {
        fixed
            .get(i..)
            .and_then(|w| w.first_chunk::<8>())
            .map_or(0, |w| u64::from_ne_bytes(*w))
    };
    let (x, y) = (at(0), at(8));
    let z = fixed.last_chunk::<4>().map_or(0, |w| word(*w));
    let sum = (x & 0xffff_ffff) + (x >> 32) + (y & 0xffff_ffff) + (y >> 32) + z;
    if options.is_empty() {
        sum
    } else {
        sum + sum_short(options)
    }
}

/// A 32-bit word of the sum, from 4 bytes in the order they are on the wire.
#[inline]
fn word(b: [u8; 4]) -> u64 {
    u64::from(u32::from_ne_bytes(b))
}

/// The largest IP packet of an Ethernet link (its MTU).
const ETHERNET_MTU: usize = 1500;

impl TcpSegment<'_> {
    /// Whether the packet is larger than an Ethernet link carries: segments merged on receipt
    /// (GRO/LRO) or handed to the NIC to be cut (TSO), whose checksum is the first segment's or
    /// left to the NIC, so a wrong one says nothing about the bytes.
    pub fn offload_sized(&self) -> bool {
        let ip = if self.src.is_ipv4() {
            self.ip4_header.len().max(20)
        } else {
            40
        };
        ip + self.tcp_header.len() + self.payload.len() + self.missing as usize > ETHERNET_MTU
    }

    /// Verifies the IPv4 header checksum and the TCP checksum (over the IPv4 or IPv6
    /// pseudo-header, RFC 9293 §3.1 and RFC 8200 §8.1). Costs a pass over the payload: called
    /// only for segments that can change a verdict.
    pub fn checksum(&self) -> Checksum {
        if self.missing > 0 || self.tcp_header.len() < 20 {
            return Checksum::Unknown;
        }
        let tcp_len = self.tcp_header.len() + self.payload.len();
        // Pseudo-headers of 12 and 40 bytes and a header of a multiple of 4 bytes: every part
        // starts on a 32-bit word, as `sum_words` needs.
        let pseudo = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                if self.ip4_header.len() < 20 {
                    return Checksum::Unknown;
                }
                if fold(sum_header(self.ip4_header)) != 0xffff {
                    return Checksum::Invalid;
                }
                let Ok(len) = u16::try_from(tcp_len) else {
                    return Checksum::Unknown;
                };
                let [l0, l1] = len.to_be_bytes();
                word(s.octets()) + word(d.octets()) + word([0, 6, l0, l1])
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let Ok(len) = u32::try_from(tcp_len) else {
                    return Checksum::Unknown;
                };
                sum_short(&s.octets()) + sum_short(&d.octets()) + word(len.to_be_bytes()) + word([0, 0, 0, 6])
            }
            _ => return Checksum::Unknown,
        };
        let mut sum = pseudo + sum_header(self.tcp_header);
        if !self.payload.is_empty() {
            sum += sum_words(self.payload);
        }
        if fold(sum) == 0xffff {
            return Checksum::Valid;
        }
        // What a sender leaving the checksum to its NIC writes: the pseudo-header's sum.
        let partial = fold(pseudo).to_ne_bytes();
        let field = [
            self.tcp_header.get(16).copied().unwrap_or(0),
            self.tcp_header.get(17).copied().unwrap_or(0),
        ];
        if field == [0, 0] || field == partial {
            Checksum::Offloaded
        } else {
            Checksum::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 as written: 16-bit words, a last odd byte padded with a zero, carries folded.
    fn reference(b: &[u8]) -> u16 {
        let mut sum: u64 = b
            .chunks(2)
            .map(|w| u64::from(u16::from_ne_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn sums_every_length_and_offset_as_rfc_1071() {
        // Bytes that make every carry path run (runs of 0xff), at every length up to a few
        // blocks and from every alignment.
        let bytes: Vec<u8> = (0..400u32)
            .map(|i| if i % 7 < 4 { 0xff } else { (i * 37 % 251) as u8 })
            .collect();
        for start in 0..8 {
            for len in 0..300 {
                let b = &bytes[start..start + len];
                assert_eq!(fold(sum_words(b)), reference(b), "start {start} len {len}");
                assert_eq!(fold(sum_short(b)), reference(b), "start {start} len {len}");
                assert_eq!(fold(sum_header(b)), reference(b), "start {start} len {len}");
            }
        }
        assert_eq!(fold(sum_words(&[0xff; 1 << 16])), 0xffff);
        assert_eq!(fold(0), 0);
        assert_eq!(fold(u64::MAX), 0xffff);
    }
}
