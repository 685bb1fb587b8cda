//! Benchmark input generator (issue 6): a classic pcap shaped like a busy HTTPS edge, built from
//! the REAL TLS and TCP sessions in `samples/cases/*/`.
//!
//! ```text
//! cargo run --release --example gen_bench -- --out FILE --size-mb 1200 [--seed N] [--samples DIR]
//! ```
//!
//! How it is made:
//! - Every packet of a short session is a packet of a real sample capture (made on this machine by
//!   OpenSSL, GnuTLS, curl/nginx, Python; see `samples/README.md`), replayed with rewritten MAC
//!   and IPv4 addresses, client port, TTL, IP ID, sequence and acknowledgement numbers (new random
//!   initial sequence numbers, consistent offsets) and times. Loopback segments larger than an
//!   Ethernet MTU are re-split into ≤ 1514-byte frames (the payload bytes are unchanged), and the
//!   MSS option of SYNs says 1460. The IPv4 header checksum and the TCP checksum are both
//!   recomputed (valid) for every frame.
//! - Times: gaps longer than 200 ms in the sample (SYN retransmission timers, a client giving up
//!   after 5 s) are kept as they are; shorter gaps are stretched ×3 and every server→client then
//!   client→server turn costs the session's round-trip time (4–150 ms): the view of a tap next to
//!   the server. Established short sessions stay idle (keep-alive, mean 0.6 s) before their first
//!   FIN; the second connection of a resumption pair comes 0.05–3 s after the first.
//! - Bulk transfers: the real handshake and request of an established sample, then many MB of
//!   generated server→client TLS application-data records (16 KiB plaintext, 16 406 bytes on the
//!   wire, random ciphertext) in 1448-byte segments paced at the transfer's rate, with a client
//!   ACK every 2 segments one RTT later, then the sample's own ending (tickets, close_notify,
//!   FINs) with its sequence numbers shifted by the inserted bytes.
//! - Sessions start at random times (uniform) over the capture, so hundreds are open at once.
//!
//! Output: FILE (pcap, Ethernet, microsecond timestamps, monotonic), FILE.truth.json (what was
//! generated and the verdict counts tlsdiag should report) and FILE.truth.tsv (the expected
//! verdict of every connection, by client address and port). Same seed, same samples: same bytes.

#![allow(
    clippy::indexing_slicing,
    reason = "a benchmark generator over our own sample captures, not the analyzer: a panic there is a bug report about the generator"
)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use tlsdiag::capture::{Capture, LinkType};

/// 2026-11-24T09:00:00Z, the day the samples were captured (their certificates are judged
/// against packet time, so the replayed sessions keep the same verdicts).
const BASE_EPOCH_S: i64 = 1_795_510_800;
const NS: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
const US: i64 = 1_000;
/// Ethernet payload limit (IP MTU).
const MTU: usize = 1500;
/// A bulk TLS record on the wire: 5-byte header + 16 384 plaintext + 1 type + 16 tag.
const REC_BODY: usize = 16_401;
const REC_WIRE: u64 = 5 + REC_BODY as u64;
const REC_HDR: [u8; 5] = [0x17, 0x03, 0x03, (REC_BODY >> 8) as u8, (REC_BODY & 0xff) as u8];
const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const POOL_LEN: usize = 1 << 21;
/// Short sessions start no later than this before the end of the capture, so that every
/// timeout (SYN retries, silent server) is over well before the capture ends.
const SHORT_TAIL_NS: i64 = 20 * NS;

/// Short-session kinds: sample case and relative weight (instances).
const SHORT_KINDS: &[(&str, u32)] = &[
    ("tls13-ok-curl-nginx", 2600),
    ("tls13-ok-openssl", 1800),
    ("tls12-ok-openssl", 1300),
    ("tls12-ok-python", 500),
    ("tls13-ok-gnutls", 500),
    ("tls13-hrr", 200),
    ("tls13-resumption", 1300),
    ("tls12-resumption", 800),
    ("tls12-expired", 60),
    ("tls13-expired", 60),
    ("tls12-unknown-ca", 50),
    ("tls13-unknown-ca", 50),
    ("tls13-rejected-by-client-gnutls", 60),
    ("tls12-no-shared-cipher", 50),
    ("tls13-no-shared-cipher", 30),
    ("tls13-version-mismatch", 40),
    ("tls12-version-mismatch", 40),
    ("tcp-server-silent", 40),
    ("tcp-syn-unanswered-v4", 80),
    ("tcp-refused", 30),
];
/// Bulk transfers: the established samples whose handshake precedes the generated data.
const BULK_KINDS: &[(&str, u32)] = &[
    ("tls13-ok-curl-nginx", 2),
    ("tls13-ok-openssl", 1),
    ("tls12-ok-openssl", 1),
];
/// Share of the file's bytes in short sessions; the rest is bulk.
const SHORT_SHARE: f64 = 0.25;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness (splitmix64), one stream per session.

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D);
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as u64) as i64
    }
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
    fn pick(&mut self, weights: &[(&str, u32)]) -> usize {
        let total: u64 = weights.iter().map(|w| w.1 as u64).sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < w.1 as u64 {
                return i;
            }
            x -= w.1 as u64;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------------------------
// Templates: the packets of one sample capture.

#[derive(Clone)]
struct Expect {
    outcome: String,
    cause: Option<String>,
    reason: Option<String>,
    resumed: bool,
}

struct TPkt {
    conn: usize,
    to_server: bool,
    /// Original time since the template's first packet.
    t_ns: i64,
    /// Ethernet + IPv4 + TCP + payload, with the sample's values.
    frame: Vec<u8>,
    tcp_off: usize,
    pay_off: usize,
    flags: u8,
    seq: u32,
    ack: u32,
    /// A continuation piece of a segment re-split to the MTU.
    piece: bool,
    /// The first packet with FIN of its connection (keep-alive idle goes before it).
    first_fin: bool,
    /// The first packet of a connection other than the first.
    new_conn: bool,
}

impl TPkt {
    fn payload_len(&self) -> usize {
        self.frame.len() - self.pay_off
    }
}

struct TConn {
    c_isn: Option<u32>,
    s_isn: Option<u32>,
    expect: Expect,
}

struct Template {
    name: String,
    pkts: Vec<TPkt>,
    conns: Vec<TConn>,
    /// File bytes of one replay (record headers included).
    bytes: u64,
}

/// Bulk-transfer facts of a single-connection established template.
struct BulkShape {
    /// Index of the client's request (first client record of application data): bulk follows it.
    splice: usize,
    /// Server and client next sequence numbers (relative to their ISNs) at the splice.
    pos_s: u32,
    pos_c: u32,
    /// Header of a server data segment and of a client pure ACK (Ethernet+IP+TCP).
    data_hdr: Vec<u8>,
    data_tcp_off: usize,
    ack_hdr: Vec<u8>,
    ack_tcp_off: usize,
    mss: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Offset of the TSval field of a TCP timestamps option, if the header has one.
fn tsval_offset(frame: &[u8], tcp_off: usize) -> Option<usize> {
    let thl = ((frame[tcp_off + 12] >> 4) as usize) * 4;
    let mut i = tcp_off + 20;
    let end = tcp_off + thl;
    while i < end {
        match frame[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let len = *frame.get(i + 1)? as usize;
                if len < 2 {
                    return None;
                }
                if kind == 8 && len == 10 {
                    return Some(i + 2);
                }
                i += len;
            }
        }
    }
    None
}

/// Moves the TCP timestamps option (TSval, and TSecr when set) by the milliseconds a replayed
/// packet was moved in time, so that they keep following the new times.
fn shift_timestamps(frame: &mut [u8], tcp_off: usize, delta_ms: i64) {
    if let Some(at) = tsval_offset(frame, tcp_off) {
        let d = delta_ms as u32;
        let v = be32(frame, at).wrapping_add(d);
        put32(frame, at, v);
        let e = be32(frame, at + 4);
        if e != 0 {
            put32(frame, at + 4, e.wrapping_add(d));
        }
    }
}

/// Sets the MSS option of a SYN to at most 1460 (the samples were made on loopback).
fn clamp_mss(frame: &mut [u8], tcp_off: usize) {
    let thl = ((frame[tcp_off + 12] >> 4) as usize) * 4;
    let mut i = tcp_off + 20;
    let end = tcp_off + thl;
    while i + 1 < end {
        match frame[i] {
            0 => return,
            1 => i += 1,
            kind => {
                let len = frame[i + 1] as usize;
                if len < 2 {
                    return;
                }
                if kind == 2 && len == 4 && be16(frame, i + 2) > 1460 {
                    put16(frame, i + 2, 1460);
                }
                i += len;
            }
        }
    }
}

fn read_expect(dir: &Path, name: &str) -> Result<Vec<Expect>, String> {
    let path = dir.join("expected.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let sessions = v["sessions"]
        .as_array()
        .ok_or(format!("{}: no sessions", path.display()))?;
    Ok(sessions
        .iter()
        .enumerate()
        .map(|(k, s)| Expect {
            outcome: s["outcome"].as_str().unwrap_or("?").to_string(),
            cause: s["cause"].as_str().map(str::to_string),
            reason: s["reason"].as_str().map(str::to_string),
            resumed: name.ends_with("-resumption") && k == 1,
        })
        .collect())
}

fn load_template(samples: &Path, name: &str) -> Result<Template, String> {
    let dir = samples.join(name);
    let pcap = dir.join(format!("{name}.pcap"));
    let expect = read_expect(&dir, name)?;
    let mut cap = Capture::open(std::slice::from_ref(&pcap)).map_err(|e| e.to_string())?;
    let mut pkts: Vec<TPkt> = Vec::new();
    let mut conn_ports: Vec<u16> = Vec::new();
    let mut first_ts = None;
    while let Some(p) = cap.next_packet() {
        if p.link != LinkType::ETHERNET {
            return Err(format!("{name}: link type {} (want Ethernet)", p.link.name()));
        }
        let d = p.data;
        if d.len() < 14 + 20 || be16(d, 12) != 0x0800 || d[14] >> 4 != 4 || d[14 + 9] != 6 {
            return Err(format!("{name}: a frame that is not Ethernet/IPv4/TCP"));
        }
        let ihl = ((d[14] & 0x0f) as usize) * 4;
        let ip_len = be16(d, 16) as usize;
        let tcp_off = 14 + ihl;
        let thl = ((d[tcp_off + 12] >> 4) as usize) * 4;
        if d.len() < 14 + ip_len || ip_len < ihl + thl {
            return Err(format!("{name}: a cut or malformed frame"));
        }
        let t0 = *first_ts.get_or_insert(p.ts);
        let sport = be16(d, tcp_off);
        let dport = be16(d, tcp_off + 2);
        let to_server = dport == 443;
        let cport = if to_server { sport } else { dport };
        let conn = match conn_ports.iter().position(|&c| c == cport) {
            Some(i) => i,
            None => {
                conn_ports.push(cport);
                conn_ports.len() - 1
            }
        };
        let frame = d[..14 + ip_len].to_vec();
        let flags = frame[tcp_off + 13];
        let seq = be32(&frame, tcp_off + 4);
        let ack = be32(&frame, tcp_off + 8);
        let pay_off = tcp_off + thl;
        let max_pay = MTU - ihl - thl;
        let payload = frame.len() - pay_off;
        let t_ns = p.ts.nanos_since(t0);
        if payload <= max_pay {
            let mut frame = frame;
            if flags & SYN != 0 {
                clamp_mss(&mut frame, tcp_off);
            }
            pkts.push(TPkt {
                conn,
                to_server,
                t_ns,
                frame,
                tcp_off,
                pay_off,
                flags,
                seq,
                ack,
                piece: false,
                first_fin: false,
                new_conn: false,
            });
        } else {
            // Re-split a loopback super-segment into MTU-sized segments (same bytes).
            let n = payload.div_ceil(max_pay);
            for k in 0..n {
                let a = pay_off + k * max_pay;
                let b = (a + max_pay).min(frame.len());
                let mut f = frame[..pay_off].to_vec();
                f.extend_from_slice(&frame[a..b]);
                let last = k + 1 == n;
                let fl = if last { flags } else { flags & !(FIN | PSH) };
                f[tcp_off + 13] = fl;
                let s = seq.wrapping_add((k * max_pay) as u32);
                put32(&mut f, tcp_off + 4, s);
                pkts.push(TPkt {
                    conn,
                    to_server,
                    t_ns,
                    frame: f,
                    tcp_off,
                    pay_off,
                    flags: fl,
                    seq: s,
                    ack,
                    piece: k > 0,
                    first_fin: false,
                    new_conn: false,
                });
            }
        }
    }
    if conn_ports.len() != expect.len() {
        return Err(format!(
            "{name}: {} connections but expected.json lists {} sessions",
            conn_ports.len(),
            expect.len()
        ));
    }
    let mut conns: Vec<TConn> = expect
        .into_iter()
        .map(|e| TConn {
            c_isn: None,
            s_isn: None,
            expect: e,
        })
        .collect();
    let mut seen_fin = vec![false; conns.len()];
    let mut seen_conn = vec![false; conns.len()];
    for p in &mut pkts {
        let c = &mut conns[p.conn];
        if p.flags & SYN != 0 {
            if p.to_server {
                c.c_isn.get_or_insert(p.seq);
            } else {
                c.s_isn.get_or_insert(p.seq);
            }
        }
        if p.flags & FIN != 0 && !seen_fin[p.conn] {
            seen_fin[p.conn] = true;
            p.first_fin = true;
        }
        if !seen_conn[p.conn] {
            seen_conn[p.conn] = true;
            p.new_conn = p.conn > 0;
        }
    }
    let bytes = pkts.iter().map(|p| 16 + p.frame.len() as u64).sum();
    Ok(Template {
        name: name.to_string(),
        pkts,
        conns,
        bytes,
    })
}

fn bulk_shape(t: &Template) -> Result<BulkShape, String> {
    let err = |w: &str| format!("{}: cannot be a bulk template: {w}", t.name);
    if t.conns.len() != 1 {
        return Err(err("more than one connection"));
    }
    let c = &t.conns[0];
    let (c_isn, s_isn) = (c.c_isn.ok_or(err("no SYN"))?, c.s_isn.ok_or(err("no SYN-ACK"))?);
    let splice = t
        .pkts
        .iter()
        .position(|p| p.to_server && p.payload_len() > 0 && p.frame[p.pay_off] == 0x17)
        .ok_or(err("no client application data"))?;
    let mut pos_s = 1u32;
    let mut pos_c = 1u32;
    for p in &t.pkts[..=splice] {
        let end = p.seq.wrapping_add(p.payload_len() as u32);
        if p.to_server {
            pos_c = pos_c.max(end.wrapping_sub(c_isn));
        } else {
            pos_s = pos_s.max(end.wrapping_sub(s_isn));
        }
    }
    let data = t
        .pkts
        .iter()
        .find(|p| !p.to_server && p.payload_len() > 0)
        .ok_or(err("no server data"))?;
    let ackp = t
        .pkts
        .iter()
        .find(|p| p.to_server && p.payload_len() == 0 && p.flags == ACK)
        .ok_or(err("no client pure ACK"))?;
    let ihl = data.tcp_off - 14;
    let thl = data.pay_off - data.tcp_off;
    Ok(BulkShape {
        splice,
        pos_s,
        pos_c,
        data_hdr: data.frame[..data.pay_off].to_vec(),
        data_tcp_off: data.tcp_off,
        ack_hdr: ackp.frame[..ackp.pay_off].to_vec(),
        ack_tcp_off: ackp.tcp_off,
        mss: MTU - ihl - thl,
    })
}

// ---------------------------------------------------------------------------------------------
// Sessions: one replay of a template (optionally with a bulk transfer spliced in).

#[derive(Clone, Copy)]
struct ConnParams {
    client_ip: [u8; 4],
    client_port: u16,
    c_isn: u32,
    s_isn: u32,
}

struct BulkState {
    shape: usize,
    /// Application-data bytes inserted (whole records).
    bytes: u64,
    nseg: u64,
    nack: u64,
    seg_k: u64,
    ack_j: u64,
    /// Time of segment 0 and nanoseconds between segments.
    t0: i64,
    d_ns: f64,
    salt: usize,
    in_bulk: bool,
    done: bool,
}

struct Session {
    tpl: usize,
    kind: usize,
    server_ip: [u8; 4],
    server_mac: [u8; 6],
    conns: Vec<ConnParams>,
    ttl: u8,
    ip_id: [u16; 2],
    rtt: i64,
    rng: Rng,
    idx: usize,
    next_t: i64,
    prev_to_server: bool,
    started: bool,
    start: i64,
    is_bulk: bool,
    bulk: Option<BulkState>,
}

impl BulkState {
    fn seg_time(&self, k: u64) -> i64 {
        self.t0 + (k as f64 * self.d_ns) as i64
    }
    fn ack_time(&self, j: u64, rtt: i64) -> i64 {
        self.seg_time((2 * j + 1).min(self.nseg - 1)) + rtt + 30 * US
    }
    /// Next bulk packet: (time, is_data).
    fn next(&self, rtt: i64) -> Option<(i64, bool)> {
        let d = (self.seg_k < self.nseg).then(|| self.seg_time(self.seg_k));
        let a = (self.ack_j < self.nack).then(|| self.ack_time(self.ack_j, rtt));
        match (d, a) {
            (Some(d), Some(a)) if d <= a => Some((d, true)),
            (Some(d), None) => Some((d, true)),
            (_, Some(a)) => Some((a, false)),
            (None, None) => None,
        }
    }
}

fn bulk_counts(bytes: u64, mss: usize) -> (u64, u64) {
    let nseg = bytes.div_ceil(mss as u64);
    (nseg, nseg.div_ceil(2))
}

/// A client address and port that no other session uses (injective in the session id).
fn client_addr(id: u64, k: usize) -> ([u8; 4], u16) {
    assert!(id < (1 << 22), "too many sessions");
    let x = (id.wrapping_mul(0x9E37_79B1)) & ((1 << 22) - 1);
    let low = x & 0xffff;
    let high = x >> 16;
    let ip = 0x6440_0000u32 + (low as u32) * 61 + 1;
    let port = 32768 + ((high * 433 + low * 7) % 28000) as u16 + k as u16;
    (ip.to_be_bytes(), port)
}

// ---------------------------------------------------------------------------------------------
// Frame writing.

fn csum_add(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rem = chunks.remainder();
    let mut i = 0;
    while i < rem.len() {
        let hi = rem[i] as u64;
        let lo = rem.get(i + 1).copied().unwrap_or(0) as u64;
        acc += (hi << 8) | lo;
        i += 2;
    }
    acc
}

fn csum_fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

struct Out {
    w: BufWriter<File>,
    /// Session times are relative to the capture start; this is added when writing.
    base: i64,
    packets: u64,
    bytes: u64,
    last_ts: i64,
    first_ts: Option<i64>,
}

impl Out {
    fn record(&mut self, ts: i64, frame: &[u8]) -> io::Result<()> {
        debug_assert!(ts >= self.last_ts);
        self.last_ts = ts;
        self.first_ts.get_or_insert(ts);
        let us = (self.base + ts) / US;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(frame)?;
        self.packets += 1;
        self.bytes += 16 + frame.len() as u64;
        Ok(())
    }
}

/// Rewrites addresses, TTL, IP ID, sequence numbers; recomputes the IPv4 and TCP checksums.
#[allow(clippy::too_many_arguments)]
fn finish(f: &mut [u8], tcp_off: usize, to_server: bool, s: &Session, cp: &ConnParams, ip_id: u16, seq: u32, ack: u32) {
    if to_server {
        f[0..6].copy_from_slice(&s.server_mac);
        f[6..12].copy_from_slice(&ROUTER_MAC);
    } else {
        f[0..6].copy_from_slice(&ROUTER_MAC);
        f[6..12].copy_from_slice(&s.server_mac);
    }
    let (src, dst) = if to_server {
        (cp.client_ip, s.server_ip)
    } else {
        (s.server_ip, cp.client_ip)
    };
    let ip_len = f.len() - 14;
    put16(f, 16, ip_len as u16);
    put16(f, 18, ip_id);
    f[22] = if to_server { s.ttl } else { 64 };
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    put16(f, 24, 0);
    let ipc = csum_fold(csum_add(0, &f[14..tcp_off]));
    put16(f, 24, ipc);
    put16(f, if to_server { tcp_off } else { tcp_off + 2 }, cp.client_port);
    put32(f, tcp_off + 4, seq);
    put32(f, tcp_off + 8, ack);
    put16(f, tcp_off + 16, 0);
    let tcp_len = (f.len() - tcp_off) as u64;
    let mut acc = csum_add(0, &src);
    acc = csum_add(acc, &dst);
    acc += 6 + tcp_len;
    acc = csum_add(acc, &f[tcp_off..]);
    let c = csum_fold(acc);
    put16(f, tcp_off + 16, c);
}

struct World {
    tpls: Vec<Template>,
    shapes: Vec<(usize, BulkShape)>,
    pool: Vec<u8>,
    scratch: Vec<u8>,
}

impl Session {
    fn dir_ip_id(&mut self, to_server: bool) -> u16 {
        let i = usize::from(!to_server);
        self.ip_id[i] = self.ip_id[i].wrapping_add(1);
        self.ip_id[i]
    }

    /// Time of template packet `i` given the previous packet's time.
    fn tpl_time(&mut self, w: &World, i: usize, prev_t: i64) -> i64 {
        let t = &w.tpls[self.tpl];
        let p = &t.pkts[i];
        if i == 0 {
            return prev_t;
        }
        let q = &t.pkts[i - 1];
        let mut gap = if p.piece {
            12 * US
        } else if p.new_conn {
            self.rng.range_i64(50 * MS, 3 * NS)
        } else {
            let orig = (p.t_ns - q.t_ns).max(0);
            if orig > 200 * MS {
                orig
            } else {
                let turn = if p.to_server && !self.prev_to_server {
                    self.rtt
                } else {
                    0
                };
                orig * 3 + turn + self.rng.range_i64(US, 20 * US)
            }
        };
        if p.first_fin && t.conns[p.conn].expect.outcome == "established" && !self.is_bulk {
            // Keep-alive idle before the close: exponential, mean 0.6 s, at most 8 s.
            let idle = -(1.0 - self.rng.unit()).ln() * 0.6;
            gap += (idle.min(8.0) * NS as f64) as i64;
        }
        prev_t + gap
    }

    /// Writes the packet due at `self.next_t` and moves on; false when the session is over.
    fn emit(&mut self, w: &mut World, out: &mut Out) -> io::Result<bool> {
        let now = self.next_t;
        let mut bulk = self.bulk.take();
        let more = match bulk.as_mut() {
            Some(b) if b.in_bulk => self.emit_bulk(w, out, b, now)?,
            _ => self.emit_tpl(w, out, bulk.as_mut(), now)?,
        };
        self.bulk = bulk;
        Ok(more)
    }

    fn emit_tpl(&mut self, w: &mut World, out: &mut Out, bulk: Option<&mut BulkState>, now: i64) -> io::Result<bool> {
        let tpl = &w.tpls[self.tpl];
        let p = &tpl.pkts[self.idx];
        let tc = &tpl.conns[p.conn];
        let cp = self.conns[p.conn];
        let (my_t, my_n, other_t, other_n) = if p.to_server {
            (tc.c_isn, cp.c_isn, tc.s_isn, cp.s_isn)
        } else {
            (tc.s_isn, cp.s_isn, tc.c_isn, cp.c_isn)
        };
        let after_bulk = bulk.as_ref().is_some_and(|b| b.done);
        let shift = bulk.as_ref().map_or(0, |b| b.bytes as u32);
        let pos_s = bulk.as_ref().map_or(0, |b| w.shapes[b.shape].1.pos_s);
        let seq = match my_t {
            Some(t0) => {
                let rel = p.seq.wrapping_sub(t0);
                let rel = if after_bulk && !p.to_server {
                    rel.wrapping_add(shift)
                } else {
                    rel
                };
                my_n.wrapping_add(rel)
            }
            None => p.seq,
        };
        let ack = match other_t {
            Some(t0) if p.flags & ACK != 0 => {
                let rel = p.ack.wrapping_sub(t0);
                let rel = if after_bulk && p.to_server {
                    rel.max(pos_s).wrapping_add(shift)
                } else {
                    rel
                };
                other_n.wrapping_add(rel)
            }
            _ => p.ack,
        };
        let to_server = p.to_server;
        let tcp_off = p.tcp_off;
        let ip_id = self.dir_ip_id(to_server);
        let mut f = std::mem::take(&mut w.scratch);
        f.clear();
        f.extend_from_slice(&w.tpls[self.tpl].pkts[self.idx].frame);
        shift_timestamps(
            &mut f,
            tcp_off,
            (now - self.start - w.tpls[self.tpl].pkts[self.idx].t_ns) / MS,
        );
        finish(&mut f, tcp_off, to_server, self, &cp, ip_id, seq, ack);
        out.record(now, &f)?;
        w.scratch = f;
        self.prev_to_server = to_server;

        // Where next?
        if let Some(b) = bulk {
            let shape = &w.shapes[b.shape].1;
            if !b.done && self.idx == shape.splice {
                b.in_bulk = true;
                b.t0 = now + self.rtt / 8 + 200 * US;
                self.next_t = b.t0;
                return Ok(true);
            }
        }
        if self.idx + 1 >= w.tpls[self.tpl].pkts.len() {
            return Ok(false);
        }
        self.idx += 1;
        self.next_t = self.tpl_time(w, self.idx, now);
        Ok(true)
    }

    fn emit_bulk(&mut self, w: &mut World, out: &mut Out, b: &mut BulkState, now: i64) -> io::Result<bool> {
        let Some((_, is_data)) = b.next(self.rtt) else {
            return Ok(false);
        };
        let shape = &w.shapes[b.shape].1;
        let cp = self.conns[0];
        let mut f = std::mem::take(&mut w.scratch);
        f.clear();
        let delta_ms = (now - self.start - w.tpls[self.tpl].pkts[shape.splice].t_ns) / MS;
        if is_data {
            let a = b.seg_k * shape.mss as u64;
            let e = (a + shape.mss as u64).min(b.bytes);
            let len = (e - a) as usize;
            f.extend_from_slice(&shape.data_hdr);
            let pay_off = f.len();
            let off = (a as usize).wrapping_add(b.salt) % (POOL_LEN - 2 * MTU);
            f.extend_from_slice(&w.pool[off..off + len]);
            // Record headers that fall in this segment.
            let mut r = a.saturating_sub(4) / REC_WIRE;
            while r * REC_WIRE < e {
                for (i, &h) in REC_HDR.iter().enumerate() {
                    let pos = r * REC_WIRE + i as u64;
                    if pos >= a && pos < e {
                        f[pay_off + (pos - a) as usize] = h;
                    }
                }
                r += 1;
            }
            let tcp_off = shape.data_tcp_off;
            let push = e % REC_WIRE == 0 || e == b.bytes;
            f[tcp_off + 13] = if push { ACK | PSH } else { ACK };
            shift_timestamps(&mut f, tcp_off, delta_ms);
            let seq = cp.s_isn.wrapping_add(shape.pos_s).wrapping_add(a as u32);
            let ack = cp.c_isn.wrapping_add(shape.pos_c);
            let ip_id = self.dir_ip_id(false);
            finish(&mut f, tcp_off, false, self, &cp, ip_id, seq, ack);
            b.seg_k += 1;
            self.prev_to_server = false;
        } else {
            let acked = ((2 * b.ack_j + 2) * shape.mss as u64).min(b.bytes);
            f.extend_from_slice(&shape.ack_hdr);
            let tcp_off = shape.ack_tcp_off;
            shift_timestamps(&mut f, tcp_off, delta_ms);
            let seq = cp.c_isn.wrapping_add(shape.pos_c);
            let ack = cp.s_isn.wrapping_add(shape.pos_s).wrapping_add(acked as u32);
            let ip_id = self.dir_ip_id(true);
            finish(&mut f, tcp_off, true, self, &cp, ip_id, seq, ack);
            b.ack_j += 1;
            self.prev_to_server = true;
        }
        out.record(now, &f)?;
        w.scratch = f;
        if let Some((t, _)) = b.next(self.rtt) {
            self.next_t = t;
            return Ok(true);
        }
        // Bulk over: the template's ending, shifted.
        b.in_bulk = false;
        b.done = true;
        if self.idx + 1 >= w.tpls[self.tpl].pkts.len() {
            return Ok(false);
        }
        self.idx += 1;
        self.bulk_tail_time(w, now);
        Ok(true)
    }

    fn bulk_tail_time(&mut self, w: &World, now: i64) {
        let p = &w.tpls[self.tpl].pkts[self.idx];
        let turn = if p.to_server { self.rtt / 4 } else { 0 };
        self.next_t = now + 50 * US + turn + self.rng.range_i64(US, 20 * US);
    }
}

// ---------------------------------------------------------------------------------------------

struct Args {
    out: PathBuf,
    size_mb: f64,
    seed: u64,
    samples: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut size_mb: f64 = 1200.0;
    let mut seed = 1u64;
    let mut samples = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/cases"));
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--out" | "-o" => out = Some(PathBuf::from(val()?)),
            "--size-mb" => size_mb = val()?.parse().map_err(|e| format!("--size-mb: {e}"))?,
            "--seed" => seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--samples" => samples = PathBuf::from(val()?),
            "-h" | "--help" => {
                println!("usage: gen_bench --out FILE [--size-mb 1200] [--seed 1] [--samples samples/cases]");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let out = out.ok_or("--out FILE is required")?;
    if !size_mb.is_finite() || size_mb <= 0.0 {
        return Err("--size-mb must be positive".into());
    }
    Ok(Args {
        out,
        size_mb,
        seed,
        samples,
    })
}

#[derive(Default, Clone)]
struct KindStats {
    role: &'static str,
    instances: u64,
    connections: u64,
    packets: u64,
    bytes: u64,
    app_bytes: u64,
}

fn kind_of(kinds: &mut Vec<(String, KindStats)>, name: String, role: &'static str) -> usize {
    match kinds.iter().position(|k| k.0 == name) {
        Some(i) => i,
        None => {
            kinds.push((
                name,
                KindStats {
                    role,
                    ..Default::default()
                },
            ));
            kinds.len() - 1
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("gen_bench: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let started = Instant::now();
    let mut tpls = Vec::new();
    let mut short_idx = Vec::new();
    for (name, _) in SHORT_KINDS {
        short_idx.push(tpls.len());
        tpls.push(load_template(&args.samples, name)?);
    }
    let mut shapes = Vec::new();
    for (name, _) in BULK_KINDS {
        let i = tpls
            .iter()
            .position(|t| t.name == *name)
            .ok_or(format!("bulk template {name} missing"))?;
        shapes.push((i, bulk_shape(&tpls[i])?));
    }

    let target = (args.size_mb * 1e6) as u64;
    let dur_ns = ((args.size_mb / 20.0).max(30.0) * NS as f64) as i64;
    let mut plan = Rng::new(args.seed, u64::MAX);
    let mut sessions: Vec<Session> = Vec::new();
    let mut kinds: Vec<(String, KindStats)> = Vec::new();
    let new_session = |id: u64, tpl: usize, kind: usize, start: i64, tpls: &[Template], seed: u64| -> Session {
        let mut rng = Rng::new(seed, id);
        let conns = (0..tpls[tpl].conns.len())
            .map(|k| {
                let (client_ip, client_port) = client_addr(id, k);
                ConnParams {
                    client_ip,
                    client_port,
                    c_isn: rng.next() as u32,
                    s_isn: rng.next() as u32,
                }
            })
            .collect();
        let srv = rng.below(16) as u8;
        let rtt = (rng.log_uniform(4.0, 150.0) * MS as f64) as i64;
        Session {
            tpl,
            kind,
            server_ip: [203, 0, 113, 10 + srv],
            server_mac: [0x02, 0x42, 0xcb, 0x00, 0x71, 0x10 + srv],
            conns,
            ttl: 64 - (6 + rng.below(18)) as u8,
            ip_id: [rng.next() as u16, rng.next() as u16],
            rtt,
            idx: 0,
            next_t: start,
            prev_to_server: true,
            started: false,
            start,
            is_bulk: false,
            bulk: None,
            rng,
        }
    };

    // Short sessions: a quarter of the bytes.
    let short_budget = (target as f64 * SHORT_SHARE) as u64;
    let mut short_bytes = 0u64;
    let span_short = (dur_ns - SHORT_TAIL_NS).max(NS);
    while short_bytes < short_budget {
        let k = plan.pick(SHORT_KINDS);
        let tpl = short_idx[k];
        let kind = kind_of(&mut kinds, tpls[tpl].name.clone(), "short");
        let start = plan.range_i64(0, span_short);
        let id = sessions.len() as u64;
        sessions.push(new_session(id, tpl, kind, start, &tpls, args.seed));
        short_bytes += tpls[tpl].bytes;
    }
    // Bulk transfers fill the rest, to the byte.
    let mut remaining = target.saturating_sub(24 + short_bytes);
    let bulk_file_bytes = |s: &BulkShape, t: &Template, nrec: u64| -> u64 {
        let b = nrec * REC_WIRE;
        let (nseg, nack) = bulk_counts(b, s.mss);
        t.bytes + nseg * (16 + s.data_hdr.len() as u64) + b + nack * (16 + s.ack_hdr.len() as u64)
    };
    loop {
        let si = plan.pick(BULK_KINDS);
        let (tpl, shape) = (&shapes[si].0, &shapes[si].1);
        let t = &tpls[*tpl];
        if remaining < bulk_file_bytes(shape, t, 1) {
            break;
        }
        let want = plan.log_uniform(2e6, 48e6);
        let mut nrec = ((want / REC_WIRE as f64) as u64).max(1);
        let fits = |n: u64| bulk_file_bytes(shape, t, n) <= remaining;
        if !fits(nrec) || remaining - bulk_file_bytes(shape, t, nrec) < 3_000_000 {
            // Last transfer: the largest that fits.
            let (mut lo, mut hi) = (1u64, remaining / REC_WIRE + 1);
            while lo + 1 < hi {
                let mid = (lo + hi) / 2;
                if fits(mid) { lo = mid } else { hi = mid }
            }
            nrec = lo;
        }
        remaining -= bulk_file_bytes(shape, t, nrec);
        let bytes = nrec * REC_WIRE;
        let (nseg, nack) = bulk_counts(bytes, shape.mss);
        let span = ((0.3 + 0.6 * plan.unit()) * (dur_ns - 2 * NS) as f64) as i64;
        let start = plan.range_i64(0, (dur_ns - NS - span).max(1));
        let kind = kind_of(&mut kinds, format!("bulk/{}", t.name), "bulk");
        let id = sessions.len() as u64;
        let mut s = new_session(id, *tpl, kind, start, &tpls, args.seed);
        let salt = s.rng.below(POOL_LEN as u64) as usize;
        s.is_bulk = true;
        s.bulk = Some(BulkState {
            shape: si,
            bytes,
            nseg,
            nack,
            seg_k: 0,
            ack_j: 0,
            t0: 0,
            d_ns: span as f64 / nseg as f64,
            salt,
            in_bulk: false,
            done: false,
        });
        kinds[kind].1.app_bytes += bytes;
        sessions.push(s);
    }

    // Truth: the expected verdict of every connection.
    let mut tsv = String::from("client\tserver\tkind\toutcome\tcause\treason\tresumed\n");
    let mut truth = BTreeMap::<String, u64>::new();
    let mut by_cause = BTreeMap::<String, u64>::new();
    let mut by_reason = BTreeMap::<String, u64>::new();
    for s in &sessions {
        let t = &tpls[s.tpl];
        kinds[s.kind].1.instances += 1;
        for (k, c) in t.conns.iter().enumerate() {
            let e = &c.expect;
            kinds[s.kind].1.connections += 1;
            *truth.entry(e.outcome.clone()).or_default() += 1;
            if e.resumed {
                *truth.entry("resumed".into()).or_default() += 1;
            }
            if let Some(c) = &e.cause {
                *by_cause.entry(c.clone()).or_default() += 1;
            }
            if let Some(r) = &e.reason {
                *by_reason.entry(r.clone()).or_default() += 1;
            }
            let ip = s.conns[k].client_ip;
            let sip = s.server_ip;
            tsv.push_str(&format!(
                "{}.{}.{}.{}:{}\t{}.{}.{}.{}:443\t{}\t{}\t{}\t{}\t{}\n",
                ip[0],
                ip[1],
                ip[2],
                ip[3],
                s.conns[k].client_port,
                sip[0],
                sip[1],
                sip[2],
                sip[3],
                kinds[s.kind].0,
                e.outcome,
                e.cause.as_deref().unwrap_or("-"),
                e.reason.as_deref().unwrap_or("-"),
                e.resumed
            ));
        }
    }

    // Write: always the earliest pending packet of all sessions.
    let file = File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut out = Out {
        w: BufWriter::with_capacity(4 << 20, file),
        base: BASE_EPOCH_S * NS,
        packets: 0,
        bytes: 24,
        last_ts: i64::MIN,
        first_ts: None,
    };
    let mut gh = [0u8; 24];
    gh[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    gh[4..6].copy_from_slice(&2u16.to_le_bytes());
    gh[6..8].copy_from_slice(&4u16.to_le_bytes());
    gh[16..20].copy_from_slice(&65_535u32.to_le_bytes());
    gh[20..24].copy_from_slice(&1u32.to_le_bytes());
    out.w.write_all(&gh).map_err(|e| e.to_string())?;
    let mut pool = vec![0u8; POOL_LEN];
    let mut prng = Rng::new(args.seed, u64::MAX - 1);
    for c in pool.chunks_mut(8) {
        let v = prng.next().to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
    let mut world = World {
        tpls,
        shapes,
        pool,
        scratch: Vec::with_capacity(2048),
    };
    let mut heap: BinaryHeap<Reverse<(i64, u32)>> = BinaryHeap::with_capacity(sessions.len());
    for (i, s) in sessions.iter().enumerate() {
        heap.push(Reverse((s.next_t, i as u32)));
    }
    let (mut active, mut peak_active) = (0u64, 0u64);
    while let Some(Reverse((t, i))) = heap.pop() {
        let s = &mut sessions[i as usize];
        if !s.started {
            s.started = true;
            active += 1;
            peak_active = peak_active.max(active);
        }
        debug_assert_eq!(t, s.next_t);
        let (p0, b0) = (out.packets, out.bytes);
        let more = s
            .emit(&mut world, &mut out)
            .map_err(|e| format!("{}: {e}", args.out.display()))?;
        let ks = &mut kinds[s.kind].1;
        ks.packets += out.packets - p0;
        ks.bytes += out.bytes - b0;
        if more {
            heap.push(Reverse((s.next_t, i)));
        } else {
            active -= 1;
            s.conns = Vec::new();
        }
    }
    out.w.flush().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();

    let established = truth.get("established").copied().unwrap_or(0);
    let failed = truth.get("failed").copied().unwrap_or(0);
    let incomplete = truth.get("incomplete").copied().unwrap_or(0);
    let total_sessions = established + failed + incomplete;
    let first = out.first_ts.unwrap_or(0);
    let duration_s = (out.last_ts - first) as f64 / 1e9;
    let bulk_bytes: u64 = kinds.iter().filter(|k| k.1.role == "bulk").map(|k| k.1.bytes).sum();
    let kinds_json: Vec<_> = kinds
        .iter()
        .map(|(name, k)| {
            json!({"kind": name, "role": k.role, "instances": k.instances, "connections": k.connections,
                   "packets": k.packets, "bytes": k.bytes, "app_data_bytes": k.app_bytes})
        })
        .collect();
    let doc = json!({
        "generator": "examples/gen_bench.rs",
        "how": "real sample sessions (samples/cases) replayed with rewritten addresses, ports, ISNs, times; bulk = generated TLS application-data records after real handshakes",
        "seed": args.seed,
        "size_mb_target": args.size_mb,
        "file": args.out.file_name().map(|n| n.to_string_lossy().to_string()),
        "file_bytes": out.bytes,
        "packets": out.packets,
        "link": "EN10MB",
        "first_ts_s": (BASE_EPOCH_S * NS + first) as f64 / 1e9,
        "duration_s": duration_s,
        "max_frame_bytes": 1514,
        "peak_concurrent_sessions": peak_active,
        "bulk_share_of_bytes": bulk_bytes as f64 / out.bytes as f64,
        "tcp_checksums": "recomputed",
        "expected": {
            "sessions": total_sessions,
            "established": established,
            "failed": failed,
            "incomplete": incomplete,
            "no_data_connections": 0,
            "resumed": truth.get("resumed").copied().unwrap_or(0),
            "failed_by_cause": by_cause,
            "failed_by_reason": by_reason,
        },
        "kinds": kinds_json,
        "generate_seconds": elapsed,
    });
    let truth_path = PathBuf::from(format!("{}.truth.json", args.out.display()));
    let tsv_path = PathBuf::from(format!("{}.truth.tsv", args.out.display()));
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&truth_path, text + "\n").map_err(|e| format!("{}: {e}", truth_path.display()))?;
    std::fs::write(&tsv_path, tsv).map_err(|e| format!("{}: {e}", tsv_path.display()))?;

    println!(
        "{:<34} {:>5} {:>9} {:>7} {:>10} {:>12}  expected",
        "kind", "role", "instances", "conns", "packets", "MB"
    );
    for (name, k) in &kinds {
        let tpl_expect = world
            .tpls
            .iter()
            .find(|t| name.trim_start_matches("bulk/") == t.name)
            .map(|t| {
                t.conns
                    .iter()
                    .map(|c| match &c.expect.reason {
                        Some(r) => format!("{}/{}", c.expect.outcome, r),
                        None => c.expect.outcome.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "{:<34} {:>5} {:>9} {:>7} {:>10} {:>12.1}  {}",
            name,
            k.role,
            k.instances,
            k.connections,
            k.packets,
            k.bytes as f64 / 1e6,
            tpl_expect
        );
    }
    println!(
        "total: {} sessions ({} established, {} failed), {} packets, {} bytes ({:.1} MB, {:.0}% in bulk), {:.1} s of traffic, peak {} concurrent sessions",
        total_sessions,
        established,
        failed,
        out.packets,
        out.bytes,
        out.bytes as f64 / 1e6,
        100.0 * bulk_bytes as f64 / out.bytes as f64,
        duration_s,
        peak_active
    );
    println!(
        "wrote {} in {:.2} s ({:.0} MB/s); truth: {}, {}",
        args.out.display(),
        elapsed,
        out.bytes as f64 / 1e6 / elapsed,
        truth_path.display(),
        tsv_path.display()
    );
    Ok(())
}
