//! Content selection: TCP connections on ports that are not listed, followed once their first
//! client bytes are a TLS (or SSLv2) ClientHello or a recognised STARTTLS / proxy preamble.
//!
//! What it is: a small table of connections on unlisted ports that opened (SYN or SYN-ACK seen)
//! and have not yet shown their client's first payload. It keeps their few segments before
//! that payload (the handshake, a server's banner), so that a connection chosen by its content
//! is handed to the connection table whole, from its SYN, as if its port had been listed. The
//! decision is made once, on the client's first payload bytes; then the entry is dropped either
//! way. A connection seen without its start is followed only when a segment's payload is a
//! ClientHello.
//!
//! What it is not: reassembly. The first payload segment alone decides.
//!
//! Guarantees: a handful of machine words per waiting connection, at most [`MAX_WATCHED`]
//! of them and [`MAX_SAVED`] segments of at most [`MAX_SAVED_BYTES`] bytes each; when full,
//! entries idle for longer than the idle timeout are dropped first, and a connection that finds
//! no room is counted (`content_watch_full`) and followed only if its payload is a ClientHello.

use super::{At, Endpoint, FlowHashBuilder, FlowKey};
use crate::capture::Timestamp;
use crate::decode::{TcpFlags, TcpSegment};
use crate::limits::MAX_TLS_RECORD;
use crate::tls::preamble;
use std::collections::HashMap;
use std::net::IpAddr;

pub use crate::limits::{MAX_WATCH_SAVED as MAX_SAVED, MAX_WATCH_SAVED_BYTES as MAX_SAVED_BYTES, MAX_WATCHED};
/// How often (packet time) a full table is swept at most.
const SWEEP_EVERY_NS: i64 = 1_000_000_000;

/// A segment kept until its connection is decided.
#[derive(Debug)]
pub struct Saved {
    pub at: At,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    missing: u32,
    /// IPv4 header, TCP header and payload, one after the other.
    bytes: Vec<u8>,
    ip4_len: usize,
    tcp_len: usize,
}

impl Saved {
    fn of(at: At, seg: &TcpSegment<'_>) -> Saved {
        let mut bytes = Vec::with_capacity(seg.ip4_header.len() + seg.tcp_header.len() + seg.payload.len());
        bytes.extend_from_slice(seg.ip4_header);
        bytes.extend_from_slice(seg.tcp_header);
        bytes.extend_from_slice(seg.payload);
        Saved {
            at,
            src: seg.src,
            dst: seg.dst,
            sport: seg.sport,
            dport: seg.dport,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            missing: seg.missing,
            bytes,
            ip4_len: seg.ip4_header.len(),
            tcp_len: seg.tcp_header.len(),
        }
    }

    /// The segment again, borrowing the kept bytes.
    pub fn segment(&self) -> TcpSegment<'_> {
        let (ip4, rest) = self.bytes.split_at(self.ip4_len.min(self.bytes.len()));
        let (tcp, payload) = rest.split_at(self.tcp_len.min(rest.len()));
        TcpSegment {
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            payload,
            missing: self.missing,
            tcp_header: tcp,
            ip4_header: ip4,
        }
    }
}

/// A connection waiting for its client's first payload.
#[derive(Debug)]
struct Waiting {
    client: Endpoint,
    /// The client's first data byte's sequence number, when its SYN was seen.
    client_data_seq: Option<u32>,
    last: Timestamp,
    saved: Vec<Saved>,
    saved_bytes: usize,
    /// The server's first payload bytes (a banner), for recognising the preamble.
    banner: Vec<u8>,
}

/// What to do with a segment on an unlisted port.
#[derive(Debug)]
pub enum Decision {
    /// Not followed (yet).
    Skip,
    /// Followed from now: replay these segments first (in order), then the current one; the
    /// client is this endpoint.
    Follow { replay: Vec<Saved>, client: Endpoint },
}

/// The table of connections waiting for their first client payload (see the module doc).
#[derive(Debug, Default)]
pub struct Watch {
    waiting: HashMap<FlowKey, Box<Waiting>, FlowHashBuilder>,
    last_sweep: Option<Timestamp>,
    /// Connections that found the table full.
    pub full: u64,
}

impl Watch {
    /// Takes one segment on an unlisted port that the connection table does not hold.
    pub fn segment(&mut self, at: At, seg: &TcpSegment<'_>, idle_ns: i64) -> Decision {
        let key = FlowKey::of(seg);
        let (src, dst) = Endpoint::ends_of(seg);
        let Some(w) = self.waiting.get_mut(&key) else {
            if seg.flags.syn && !seg.flags.ack && preamble::looks_like_client_hello(seg.payload) {
                // TCP Fast Open: the ClientHello rides in the SYN itself.
                return Decision::Follow {
                    replay: Vec::new(),
                    client: src,
                };
            }
            if seg.flags.syn {
                // SYN: the sender is the client; SYN-ACK (its SYN missed): the receiver.
                let (client, data_seq) = if seg.flags.ack {
                    (dst, None)
                } else {
                    (src, Some(seg.seq.wrapping_add(1)))
                };
                if !self.room(at.ts, idle_ns) {
                    self.full += 1;
                    return Decision::Skip;
                }
                let mut w = Box::new(Waiting {
                    client,
                    client_data_seq: data_seq,
                    last: at.ts,
                    saved: Vec::new(),
                    saved_bytes: 0,
                    banner: Vec::new(),
                });
                w.save(at, seg);
                self.waiting.insert(key, w);
                return Decision::Skip;
            }
            // Seen without its start: only a ClientHello is proof enough, or (a long-lived
            // connection that began before the capture) a payload made of whole TLS records.
            if preamble::looks_like_client_hello(seg.payload) {
                return Decision::Follow {
                    replay: Vec::new(),
                    client: src,
                };
            }
            if let Some(from_server) = tls_records(seg.payload) {
                // A ServerHello names its sender; else the side on the higher (ephemeral) port.
                let client = if from_server || seg.sport < seg.dport { dst } else { src };
                return Decision::Follow {
                    replay: Vec::new(),
                    client,
                };
            }
            return Decision::Skip;
        };
        w.last = w.last.max(at.ts);
        if seg.flags.syn && !seg.flags.ack && src == w.client {
            w.client_data_seq.get_or_insert(seg.seq.wrapping_add(1));
        }
        if seg.payload.is_empty() {
            if seg.flags.rst || seg.flags.fin {
                self.waiting.remove(&key);
            } else {
                w.save(at, seg);
            }
            return Decision::Skip;
        }
        if src != w.client {
            // The server spoke first: keep its banner for the client's answer.
            if w.saved.len() >= MAX_SAVED || w.saved_bytes + seg.payload.len() > MAX_SAVED_BYTES || seg.flags.rst {
                self.waiting.remove(&key);
            } else {
                let keep = preamble_banner_room(&w.banner, seg.payload);
                w.banner.extend_from_slice(keep);
                w.save(at, seg);
            }
            return Decision::Skip;
        }
        let first = w.client_data_seq.is_none_or(|s| s == seg.seq);
        let banner = (!w.banner.is_empty()).then_some(w.banner.as_slice());
        let follow = preamble::looks_like_client_hello(seg.payload)
            || (first
                && w.client_data_seq.is_some()
                && (preamble::recognise(seg.payload, banner).is_some()
                    || crate::tls::proxy_header::starts_header(seg.payload)));
        let Some(w) = self.waiting.remove(&key) else {
            return Decision::Skip;
        };
        if follow {
            Decision::Follow {
                replay: w.saved,
                client: w.client,
            }
        } else {
            Decision::Skip
        }
    }

    /// Whether there is room for one more entry, sweeping idle ones when full.
    fn room(&mut self, now: Timestamp, idle_ns: i64) -> bool {
        if self.waiting.len() < MAX_WATCHED {
            return true;
        }
        if self
            .last_sweep
            .is_some_and(|t| now.0.saturating_sub(t.0) < SWEEP_EVERY_NS)
        {
            return false;
        }
        self.last_sweep = Some(now);
        let cutoff = now.0.saturating_sub(idle_ns);
        self.waiting.retain(|_, w| w.last.0 > cutoff);
        self.waiting.len() < MAX_WATCHED
    }

    /// Connections waiting now.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no connection waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// Whether `b` is TLS seen mid-connection: whole TLS records that fill it exactly (at most
/// [`MAX_RECORDS_SEEN`], each of a TLS type, version 3.1-3.3, a plausible length), or at least
/// two whole ones and the start of a third. `Some(true)` when it starts with a ServerHello.
fn tls_records(b: &[u8]) -> Option<bool> {
    let mut at = 0usize;
    let mut whole = 0usize;
    while let Some(&[typ, major, minor, l0, l1]) = b.get(at..).and_then(|r| r.first_chunk::<5>()) {
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if !(20..=23).contains(&typ) || major != 3 || !(1..=3).contains(&minor) || len == 0 || len > MAX_TLS_RECORD {
            return None;
        }
        at = at.saturating_add(5 + len);
        if at > b.len() {
            break;
        }
        whole += 1;
        if at == b.len() || whole >= MAX_RECORDS_SEEN {
            break;
        }
    }
    let ok = (whole > 0 && at == b.len()) || whole >= 2;
    ok.then(|| b.first() == Some(&22) && b.get(5) == Some(&2))
}

/// Records [`tls_records`] reads at most.
const MAX_RECORDS_SEEN: usize = 16;

/// The part of `more` that still fits in a banner of [`crate::limits::FIRST_BYTES_KEPT`] bytes.
fn preamble_banner_room<'a>(banner: &[u8], more: &'a [u8]) -> &'a [u8] {
    let room = crate::limits::FIRST_BYTES_KEPT.saturating_sub(banner.len());
    more.get(..room.min(more.len())).unwrap_or(&[])
}

impl Waiting {
    fn save(&mut self, at: At, seg: &TcpSegment<'_>) {
        let n = seg.ip4_header.len() + seg.tcp_header.len() + seg.payload.len();
        if self.saved.len() < MAX_SAVED && self.saved_bytes + n <= MAX_SAVED_BYTES {
            self.saved_bytes += n;
            self.saved.push(Saved::of(at, seg));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    fn seg<'a>(from_client: bool, flags: TcpFlags, seq: u32, payload: &'a [u8]) -> TcpSegment<'a> {
        let (c, s): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (src, dst, sport, dport) = if from_client {
            (c, s, 40000, 993)
        } else {
            (s, c, 993, 40000)
        };
        TcpSegment {
            src,
            dst,
            sport,
            dport,
            seq,
            ack: 0,
            flags,
            payload,
            missing: 0,
            tcp_header: &[],
            ip4_header: &[],
        }
    }

    fn at(frame: u64) -> At {
        At {
            frame,
            ts: Timestamp(frame as i64),
        }
    }

    const SYN: TcpFlags = TcpFlags {
        syn: true,
        ack: false,
        fin: false,
        rst: false,
    };
    const SYNACK: TcpFlags = TcpFlags {
        syn: true,
        ack: true,
        fin: false,
        rst: false,
    };
    const ACK: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
    };

    #[test]
    fn client_hello_after_handshake_is_followed_with_its_start() {
        let mut w = Watch::default();
        assert!(matches!(w.segment(at(1), &seg(true, SYN, 99, b""), 1), Decision::Skip));
        assert!(matches!(
            w.segment(at(2), &seg(false, SYNACK, 5, b""), 1),
            Decision::Skip
        ));
        assert!(matches!(w.segment(at(3), &seg(true, ACK, 100, b""), 1), Decision::Skip));
        let hello = [0x16, 3, 1, 0, 10, 1, 0, 0, 6, 3, 3];
        match w.segment(at(4), &seg(true, ACK, 100, &hello), 1) {
            Decision::Follow { replay, client } => {
                assert_eq!(replay.len(), 3);
                assert_eq!(client.port, 40000);
                assert_eq!(replay[1].segment().seq, 5);
            }
            Decision::Skip => panic!("a ClientHello is followed"),
        }
        assert!(w.is_empty());
    }

    #[test]
    fn plaintext_is_dropped_and_banner_helps_recognise() {
        let mut w = Watch::default();
        w.segment(at(1), &seg(true, SYN, 0, b""), 1);
        assert!(matches!(
            w.segment(at(2), &seg(true, ACK, 1, b"GET / HTTP/1.1\r\n"), 1),
            Decision::Skip
        ));
        assert!(w.is_empty());
        w.segment(at(3), &seg(true, SYN, 0, b""), 1);
        w.segment(at(4), &seg(false, ACK, 7, b"* OK IMAP ready\r\n"), 1);
        assert!(matches!(
            w.segment(at(5), &seg(true, ACK, 1, b"a ID (\"x\")\r\n"), 1),
            Decision::Follow { .. }
        ));
        // Not the first bytes (the SYN says where they start): no preamble.
        w.segment(at(6), &seg(true, SYN, 0, b""), 1);
        assert!(matches!(
            w.segment(at(7), &seg(true, ACK, 50, b"EHLO x\r\n"), 1),
            Decision::Skip
        ));
    }

    #[test]
    fn whole_tls_records_mid_connection_are_followed() {
        let mut w = Watch::default();
        // Two application-data records filling the segment, from the server's port.
        let mut recs = vec![0x17, 3, 3, 0, 3, 1, 2, 3, 0x17, 3, 3, 0, 1, 9];
        match w.segment(at(1), &seg(false, ACK, 9, &recs), 1) {
            Decision::Follow { client, .. } => assert_eq!(client.port, 40000),
            Decision::Skip => panic!("whole records not followed"),
        }
        // A record cut short, alone: too little to go on; text is not TLS.
        recs.truncate(6);
        assert!(matches!(w.segment(at(2), &seg(true, ACK, 9, &recs), 1), Decision::Skip));
        assert!(matches!(
            w.segment(at(3), &seg(true, ACK, 9, b"\x17\x03\x03 hello"), 1),
            Decision::Skip
        ));
        assert_eq!(tls_records(&[22, 3, 3, 0, 4, 2, 0, 0, 0]), Some(true));
        assert_eq!(tls_records(&[21, 3, 3, 0, 2, 2, 40]), Some(false));
        assert_eq!(tls_records(&[24, 3, 3, 0, 2, 2, 40]), None);
        assert_eq!(tls_records(&[]), None);
    }

    #[test]
    fn client_hello_in_a_syn_is_followed_at_once() {
        let mut w = Watch::default();
        let hello = [0x16, 3, 1, 0, 200, 1, 0, 0, 196];
        match w.segment(at(1), &seg(true, SYN, 7, &hello), 1) {
            Decision::Follow { client, replay } => {
                assert_eq!(client.port, 40000);
                assert!(replay.is_empty());
            }
            Decision::Skip => panic!("TCP Fast Open ClientHello not followed"),
        }
        assert!(w.is_empty());
    }
}
