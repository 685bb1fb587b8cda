//! TCP and IPv4 header checksums of a decoded segment.

use super::{Checksum, TcpSegment};
use std::net::IpAddr;

/// The Internet checksum's sum of `b` (RFC 1071), not yet folded: 32-bit words in the machine's
/// byte order (the sum's byte order follows the words', §2(B)); a last partial word is padded with
/// zeros. Sums of parts that each start on a 32-bit word add up to the sum of the whole. Written
/// out rather than etherparse's, whose carry chain costs several times more on the handshake
/// bytes of every connection; the loop vectorises.
pub(super) fn sum_words(b: &[u8]) -> u64 {
    let mut words = b.chunks_exact(4);
    let mut sum: u64 = (&mut words)
        .map(|w| u64::from(w.first_chunk::<4>().map_or(0, |w| u32::from_ne_bytes(*w))))
        .sum();
    let mut last = [0u8; 4];
    for (to, from) in last.iter_mut().zip(words.remainder()) {
        *to = *from;
    }
    sum += u64::from(u32::from_ne_bytes(last));
    sum
}

/// Folds a [`sum_words`] sum to 16 bits (0xffff: the checksum holds).
pub(super) fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
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
                if fold(sum_words(self.ip4_header)) != 0xffff {
                    return Checksum::Invalid;
                }
                let Ok(len) = u16::try_from(tcp_len) else {
                    return Checksum::Unknown;
                };
                let [l0, l1] = len.to_be_bytes();
                sum_words(&s.octets()) + sum_words(&d.octets()) + sum_words(&[0, 6, l0, l1])
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let Ok(len) = u32::try_from(tcp_len) else {
                    return Checksum::Unknown;
                };
                sum_words(&s.octets())
                    + sum_words(&d.octets())
                    + sum_words(&len.to_be_bytes())
                    + sum_words(&[0, 0, 0, 6])
            }
            _ => return Checksum::Unknown,
        };
        if fold(pseudo + sum_words(self.tcp_header) + sum_words(self.payload)) == 0xffff {
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
