//! IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes and time.
//!
//! What it is: [`Reassembler::add`] takes the IP packets [`super::decode_packet`] hands back as
//! [`super::Decoded::Fragment`] (the outermost fragmented header of a frame: a tunnel's outer
//! packet, or the inner one) and returns the whole datagram, rebuilt as an unfragmented IP
//! packet, once its fragments are all in; the caller decodes it again as raw IP.
//!
//! Datagrams are told apart by version, addresses, identification and protocol (RFC 791,
//! RFC 8200 §4.5). Overlapping fragments (RFC 5722 forbids them in IPv6; in IPv4 they are an
//! evasion trick) are counted; the bytes that came first are kept. At most [`MAX_DATAGRAMS`]
//! datagrams and [`MAX_BYTES`] bytes wait at once (the oldest is dropped past either), each at
//! most [`TIMEOUT_NS`] after its first fragment (Linux's `ipfrag_time`) and
//! [`MAX_PIECES`] separate pieces. Written by hand rather than with etherparse's `defrag`,
//! which neither bounds memory nor reports overlaps.

use crate::capture::Timestamp;
use etherparse::{Ipv6ExtensionSlice, LaxNetSlice, LaxSlicedPacket};
use std::collections::{HashMap, VecDeque};

/// Datagrams waiting for fragments at most.
pub const MAX_DATAGRAMS: usize = 1024;
/// Bytes of waiting datagrams at most.
pub const MAX_BYTES: usize = 8 << 20;
/// How long a datagram waits for its fragments after the first.
pub const TIMEOUT_NS: i64 = 30_000_000_000;
/// Separate pieces (runs of received bytes) of one datagram at most.
pub const MAX_PIECES: usize = 64;
/// Largest reassembled IP payload (the 16-bit length fields).
const MAX_PAYLOAD: usize = 65_535;

/// What reassembly counted (capture anomalies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams rebuilt from their fragments.
    pub reassembled: u64,
    /// Fragments that overlapped bytes already received.
    pub overlaps: u64,
    /// Datagrams given up: timed out, pushed out by the bounds, too many pieces, or still
    /// incomplete at the end of the capture.
    pub incomplete: u64,
    /// Fragments whose offset and length go past 65,535 bytes or contradict the datagram's end.
    pub malformed: u64,
}

impl Counters {
    /// The counters under their anomaly keys (zeros left out).
    pub fn anomalies(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("ip_datagrams_reassembled", self.reassembled),
            ("ip_fragment_overlap", self.overlaps),
            ("ip_fragments_incomplete", self.incomplete),
            ("ip_fragment_malformed", self.malformed),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
}

struct Pending {
    /// Which entry of the arrival order is this datagram's (older entries of the same key
    /// belong to datagrams already gone).
    generation: u64,
    /// The header of the fragment at offset 0 (IPv4 with options, or IPv6's fixed 40 bytes).
    header: Vec<u8>,
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    have: Vec<(usize, usize)>,
    /// The datagram's length, once the last fragment came.
    end: Option<usize>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.header.len() + self.data.len()
    }
}

/// One fragment, read from its IP packet.
struct Piece<'a> {
    key: Key,
    offset: usize,
    more: bool,
    header: &'a [u8],
    payload: &'a [u8],
}

fn piece(ip: &[u8]) -> Option<Piece<'_>> {
    let s = LaxSlicedPacket::from_ip(ip).ok()?;
    match s.net? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let mut src = [0; 16];
            let mut dst = [0; 16];
            src.get_mut(..4)?.copy_from_slice(&h.source());
            dst.get_mut(..4)?.copy_from_slice(&h.destination());
            Some(Piece {
                key: Key {
                    v6: false,
                    src,
                    dst,
                    id: u32::from(h.identification()),
                    proto: h.protocol().0,
                },
                offset: usize::from(h.fragments_offset().byte_offset()),
                more: h.more_fragments(),
                // The header starts the packet (the view borrows the slicer).
                header: ip.get(..h.slice().len())?,
                payload: v4.payload().payload,
            })
        }
        LaxNetSlice::Ipv6(v6) => {
            let frag = v6.extensions().clone().into_iter().find_map(|e| match e {
                Ipv6ExtensionSlice::Fragment(f) => Some(f.to_header()),
                _ => None,
            })?;
            let h = v6.header();
            Some(Piece {
                key: Key {
                    v6: true,
                    src: h.source(),
                    dst: h.destination(),
                    id: frag.identification,
                    proto: frag.next_header.0,
                },
                offset: usize::from(frag.fragment_offset.byte_offset()),
                more: frag.more_fragments,
                header: ip.get(..40)?,
                payload: v6.payload().payload,
            })
        }
        LaxNetSlice::Arp(_) => None,
    }
}

/// Fragments waiting for the rest of their datagram.
#[derive(Default)]
pub struct Reassembler {
    pending: HashMap<Key, Pending>,
    /// Datagrams in order of their first fragment (with entries of datagrams already gone,
    /// skipped when met; compacted past [`MAX_DATAGRAMS`] × 4): the oldest goes first.
    order: VecDeque<(Key, u64, Timestamp)>,
    next_generation: u64,
    bytes: usize,
    pub counters: Counters,
}

impl Reassembler {
    /// Takes one fragment (an IP packet) seen at `now`; returns the rebuilt IP packet when it
    /// completes its datagram.
    pub fn add(&mut self, ip: &[u8], now: Timestamp) -> Option<Vec<u8>> {
        self.expire(now);
        let Some(p) = piece(ip) else {
            self.counters.malformed += 1;
            return None;
        };
        let end = p.offset + p.payload.len();
        if end > MAX_PAYLOAD {
            self.counters.malformed += 1;
            return None;
        }
        if !self.pending.contains_key(&p.key) {
            while !self.pending.is_empty() && (self.pending.len() >= MAX_DATAGRAMS || self.bytes + end > MAX_BYTES) {
                self.drop_oldest();
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            self.pending.insert(
                p.key,
                Pending {
                    generation,
                    header: Vec::new(),
                    data: Vec::new(),
                    have: Vec::new(),
                    end: None,
                },
            );
            self.order.push_back((p.key, generation, now));
            if self.order.len() > MAX_DATAGRAMS * 4 {
                let live = &self.pending;
                self.order
                    .retain(|(k, g, _)| live.get(k).is_some_and(|d| d.generation == *g));
            }
        }
        let key = p.key;
        let d = self.pending.get_mut(&key)?;
        let before = d.bytes();
        if let Some(e) = d.end {
            if end > e || (!p.more && end != e) {
                self.counters.malformed += 1;
                return None;
            }
        } else if !p.more {
            d.end = Some(end);
        }
        if p.offset == 0 && d.header.is_empty() {
            d.header.extend_from_slice(p.header);
        }
        if d.data.len() < end {
            d.data.resize(end, 0);
        }
        // Copy the bytes no earlier fragment brought (the first copy wins), then merge ranges.
        let mut at = p.offset;
        let mut overlapped = false;
        for &(s, e) in &d.have {
            if e <= at || s >= end {
                continue;
            }
            overlapped = true;
            if s > at {
                copy(&mut d.data, p.payload, p.offset, at, s);
            }
            at = at.max(e);
        }
        if at < end {
            copy(&mut d.data, p.payload, p.offset, at, end);
        }
        if overlapped {
            self.counters.overlaps += 1;
        }
        d.have.push((p.offset, end));
        d.have.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(d.have.len());
        for &(s, e) in &d.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        d.have = merged;
        let complete = d.end.is_some_and(|e| d.have == [(0, e)]) && !d.header.is_empty();
        let too_many = d.have.len() > MAX_PIECES;
        self.bytes = (self.bytes + d.bytes()).saturating_sub(before);
        if too_many {
            self.take(&key);
            self.counters.incomplete += 1;
            return None;
        }
        if !complete {
            return None;
        }
        let d = self.take(&key)?;
        self.counters.reassembled += 1;
        rebuild(&key, &d)
    }

    /// Gives up the datagrams still waiting (the end of the capture).
    pub fn finish(&mut self) {
        self.counters.incomplete += self.pending.len() as u64;
        self.pending.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// Gives up the datagrams whose first fragment came more than [`TIMEOUT_NS`] before `now`.
    fn expire(&mut self, now: Timestamp) {
        while let Some(&(key, generation, first)) = self.order.front() {
            let live = self.pending.get(&key).is_some_and(|d| d.generation == generation);
            if live && now.0.saturating_sub(first.0) <= TIMEOUT_NS {
                break;
            }
            self.order.pop_front();
            if live {
                self.take(&key);
                self.counters.incomplete += 1;
            }
        }
    }

    /// Gives up the datagram whose first fragment came first.
    fn drop_oldest(&mut self) {
        while let Some((key, generation, _)) = self.order.pop_front() {
            if self.pending.get(&key).is_some_and(|d| d.generation == generation) {
                self.take(&key);
                self.counters.incomplete += 1;
                return;
            }
        }
        // Only stale entries: nothing is waiting, in the order at least; start afresh.
        self.counters.incomplete += self.pending.len() as u64;
        self.pending.clear();
        self.bytes = 0;
    }

    fn take(&mut self, key: &Key) -> Option<Pending> {
        let d = self.pending.remove(key)?;
        self.bytes = self.bytes.saturating_sub(d.bytes());
        Some(d)
    }
}

/// Copies `payload` (which starts at datagram offset `base`) for datagram bytes `from..to`.
fn copy(data: &mut [u8], payload: &[u8], base: usize, from: usize, to: usize) {
    if let (Some(dst), Some(src)) = (data.get_mut(from..to), payload.get(from - base..to - base)) {
        dst.copy_from_slice(src);
    }
}

/// The datagram as one unfragmented IP packet: the first fragment's header with the length,
/// fragment fields and (IPv4) header checksum redone; IPv6 extension headers before the
/// fragment header are left out.
fn rebuild(key: &Key, d: &Pending) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(d.header.len().max(40) + d.data.len());
    if key.v6 {
        out.extend_from_slice(d.header.get(..40)?);
        let len = u16::try_from(d.data.len()).ok()?;
        out.get_mut(4..6)?.copy_from_slice(&len.to_be_bytes());
        *out.get_mut(6)? = key.proto;
    } else {
        out.extend_from_slice(&d.header);
        let total = u16::try_from(d.header.len() + d.data.len()).ok()?;
        out.get_mut(2..4)?.copy_from_slice(&total.to_be_bytes());
        out.get_mut(6..8)?.copy_from_slice(&[0, 0]);
        out.get_mut(10..12)?.copy_from_slice(&[0, 0]);
        let sum = !super::checksum::fold(super::checksum::sum_words(&out));
        // `sum_words` adds words in the machine's byte order: store the result the same way.
        out.get_mut(10..12)?.copy_from_slice(&sum.to_ne_bytes());
    }
    out.extend_from_slice(&d.data);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::decode::{Checksum, Decoded, decode_packet};
    use etherparse::PacketBuilder;

    /// An IPv4/TCP packet cut into fragments of `size` payload bytes (hand-made for the parser).
    fn v4_fragments(payload: &[u8], size: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut whole = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 7, 1000)
            .ack(1)
            .write(&mut whole, payload)
            .expect("build");
        let body = whole[20..].to_vec();
        let mut out = Vec::new();
        for (i, chunk) in body.chunks(size).enumerate() {
            let off = i * size;
            let more = off + chunk.len() < body.len();
            let mut h = whole[..20].to_vec();
            h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            let ff = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&ff.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let c = !crate::decode::checksum::fold(crate::decode::checksum::sum_words(&h));
            h[10..12].copy_from_slice(&c.to_ne_bytes());
            h.extend_from_slice(chunk);
            out.push(h);
        }
        (whole, out)
    }

    fn fragment_bytes(f: &[u8]) -> &[u8] {
        match decode_packet(&Default::default(), LinkType::RAW, f, false) {
            Ok(Decoded::Fragment(ip)) => ip,
            other => panic!("not a fragment: {other:?}"),
        }
    }

    #[test]
    fn v4_in_any_order_rebuilds_the_packet() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let (whole, mut frags) = v4_fragments(&payload, 64);
        frags.reverse();
        let mut r = Reassembler::default();
        let mut got = None;
        for f in &frags {
            got = r.add(fragment_bytes(f), Timestamp(0)).or(got);
        }
        let got = got.expect("complete");
        assert_eq!(got[20..], whole[20..], "the TCP segment whole again");
        assert_eq!(
            (got[2..4].to_vec(), got[6..8].to_vec()),
            (whole[2..4].to_vec(), vec![0, 0])
        );
        let Ok(Decoded::Tcp(seg)) = decode_packet(&Default::default(), LinkType::RAW, &got, false) else {
            panic!("tcp")
        };
        assert_eq!((seg.payload, seg.checksum()), (&payload[..], Checksum::Valid));
        assert_eq!(r.counters.reassembled, 1);
        assert_eq!(r.counters.overlaps, 0);
    }

    #[test]
    fn overlap_is_counted_and_first_bytes_win() {
        let (_, frags) = v4_fragments(&[1u8; 100], 32);
        let mut r = Reassembler::default();
        assert!(r.add(fragment_bytes(&frags[0]), Timestamp(0)).is_none());
        assert!(r.add(fragment_bytes(&frags[0]), Timestamp(0)).is_none());
        assert_eq!(r.counters.overlaps, 1);
        let mut done = None;
        for f in &frags[1..] {
            done = r.add(fragment_bytes(f), Timestamp(0)).or(done);
        }
        assert!(done.is_some());
    }

    #[test]
    fn bounded_in_time_and_count() {
        let (_, frags) = v4_fragments(&[1u8; 100], 32);
        let mut r = Reassembler::default();
        r.add(fragment_bytes(&frags[0]), Timestamp(0));
        // The rest comes after the timeout: the first fragment is gone, nothing completes.
        let mut done = None;
        for f in &frags[1..] {
            done = r.add(fragment_bytes(f), Timestamp(TIMEOUT_NS + 1)).or(done);
        }
        assert!(done.is_none());
        assert_eq!(r.counters.incomplete, 1);
        // Many datagrams that never complete: at most MAX_DATAGRAMS wait.
        for id in 0..(MAX_DATAGRAMS as u16 + 10) {
            let mut f = frags[0].clone();
            f[4..6].copy_from_slice(&id.to_be_bytes());
            r.add(fragment_bytes(&f), Timestamp(TIMEOUT_NS + 2));
        }
        assert!(r.pending.len() <= MAX_DATAGRAMS);
        assert!(r.bytes <= MAX_BYTES);
        r.finish();
        assert!(r.pending.is_empty() && r.bytes == 0);
    }

    #[test]
    fn v6_fragments_rebuild() {
        let payload = [9u8; 200];
        let mut whole = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .tcp(40000, 443, 7, 1000)
            .ack(1)
            .write(&mut whole, &payload)
            .expect("build");
        let body = &whole[40..];
        let mut r = Reassembler::default();
        let mut got = None;
        for (i, chunk) in body.chunks(96).enumerate() {
            let off = i * 96;
            let more = off + chunk.len() < body.len();
            let mut f = whole[..40].to_vec();
            f[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
            f[6] = 44;
            let ff = ((off / 8) as u16) << 3 | u16::from(more);
            f.extend_from_slice(&[6, 0]);
            f.extend_from_slice(&ff.to_be_bytes());
            f.extend_from_slice(&77u32.to_be_bytes());
            f.extend_from_slice(chunk);
            got = r.add(fragment_bytes(&f), Timestamp(0)).or(got);
        }
        assert_eq!(
            got.expect("complete"),
            whole,
            "the fragment header gone, lengths redone"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut r = Reassembler::default();
        for len in 0..80 {
            let mut junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            if let Some(b) = junk.first_mut() {
                *b = 0x45;
            }
            let _ = r.add(&junk, Timestamp(len as i64));
        }
    }
}
