//! The fuzz targets' bodies, shared by the libFuzzer binaries in fuzz_targets/ and by the
//! regression test `tests/fuzz_regressions.rs` of the main crate (which includes this file with
//! `#[path]`), so every crash input found stays a test that runs with `cargo test`.
//!
//! Each function takes the fuzzer's bytes and panics when an invariant breaks.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::PathBuf;
use tlsdiag::capture::{Capture, FileReader, LinkType, Timestamp};
use tlsdiag::decode::{self as dec, Skip};
use tlsdiag::flow::reassembly::Reassembler;
use tlsdiag::flow::{At, Chunk, Direction, SeqNumber, StreamHandler};
use tlsdiag::limits::{MAX_CAPTURE_BLOCK, MAX_CERT_CHAIN, MAX_OOO_BYTES, MAX_RECORD_SIZES};
use tlsdiag::pipeline::{Analyzer, Detail, Options, Parallel};
use tlsdiag::report::model::{Counts, Report, SCHEMA_VERSION, ServerSummary, SessionReport};
use tlsdiag::report::pseudonymize::{self, Redactor};
use tlsdiag::report::{html, json, markdown, ndjson, text};
use tlsdiag::tls::Session;

// ---- capture_reader ----------------------------------------------------------------------------

/// Capture readers from raw bytes: classic pcap, pcapng, gzip of either.
///
/// Invariants: never panics; every packet fits the block cap and the input (unless gzip); the
/// number of packets is bounded by the input size (every record or block consumes bytes).
pub fn capture_reader(data: &[u8]) {
    let Ok(mut r) = FileReader::from_reader(PathBuf::from("fuzz.pcap"), Box::new(Cursor::new(data.to_vec()))) else {
        return;
    };
    let gzip = r.gzip;
    let mut packets = 0usize;
    let mut bytes = 0usize;
    while let Some(p) = r.next_packet() {
        assert!(p.data.len() <= MAX_CAPTURE_BLOCK);
        assert!(p.orig_len as usize >= p.data.len());
        packets += 1;
        bytes += p.data.len();
        if !gzip {
            // A pcap record header is 16 bytes and a pcapng block at least 12.
            assert!(
                packets <= data.len() / 12,
                "{packets} packets from {} bytes",
                data.len()
            );
            assert!(bytes <= data.len());
        }
    }
    if let Some(s) = &r.stop {
        assert!(!s.key.is_empty() && !s.detail.is_empty());
    }
    // Damage skipped over is described (a few notes at most) and never more than the input.
    assert!(r.damage.len() <= 8 && r.damage.iter().all(|d| d.contains("at byte")));
    for (key, n) in &r.oddities {
        if *key == "capture_bytes_skipped" && !gzip {
            assert!(*n as usize <= data.len(), "{n} bytes skipped of {}", data.len());
        }
    }
    // A stopped reader stays stopped.
    assert!(r.next_packet().is_none());
}

// ---- decode ------------------------------------------------------------------------------------

const LINKS: [u32; 12] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147, 0x0fff_ffff];

/// Frame decoding: the first byte picks a link type, the rest is the frame.
///
/// Invariants: never panics; a segment's payload lies inside the frame; a frame not cut by the
/// snap length never reports missing bytes.
pub fn decode(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LinkType(LINKS[sel as usize % LINKS.len()]);
    let plain = dec::decode(link, frame);
    for was_cut in [false, true] {
        match dec::decode_frame(link, frame, was_cut) {
            Ok(seg) => {
                let f0 = frame.as_ptr() as usize;
                let p0 = seg.payload.as_ptr() as usize;
                assert!(
                    seg.payload.is_empty() || (p0 >= f0 && p0 + seg.payload.len() <= f0 + frame.len()),
                    "payload outside the frame"
                );
                if !was_cut {
                    assert_eq!(seg.missing, 0);
                }
                assert!(plain.is_ok());
                if !was_cut {
                    redact_invariants(link, frame, &seg);
                }
                assert!(dec::link_supported(link));
            }
            Err(skip) => {
                assert!(!skip.key().is_empty());
                assert!(plain.is_err());
                assert_eq!(skip == Skip::UnknownLinkType, !dec::link_supported(link));
            }
        }
    }
}

/// `--redact`'s carve rewrite of a decoded frame: never panics; a rewritten frame keeps its
/// length, still decodes, and names the pseudonym where it named the client.
fn redact_invariants(link: LinkType, frame: &[u8], seg: &dec::TcpSegment<'_>) {
    let client = tlsdiag::flow::Endpoint {
        ip: seg.src,
        port: seg.sport,
    };
    let alias = Redactor::default().pseudonym(seg.src);
    let p = tlsdiag::capture::Packet {
        ts: tlsdiag::capture::Timestamp(0),
        link,
        data: frame,
        orig_len: frame.len() as u32,
    };
    if let Some(out) = pseudonymize::rewrite_frame(&p, client, alias) {
        assert_eq!(out.len(), frame.len());
        let again = dec::decode(link, &out).expect("a rewritten frame decodes");
        assert_eq!((again.src, again.sport), (alias, seg.sport));
        assert_eq!((again.dst, again.dport), (seg.dst, seg.dport));
    }
}

// ---- reassembly --------------------------------------------------------------------------------

fn content(seq: u32) -> u8 {
    (seq.wrapping_mul(0x9e37_79b1) >> 24) as u8
}

/// What the harness knows of the delivered stream.
struct Out {
    /// Sequence number of the next byte to be delivered, once known.
    pos: Option<u32>,
    delivered: u64,
    gaps: u64,
}

impl Out {
    fn take(&mut self, c: Chunk<'_>, record: usize) {
        let pos = self.pos.as_mut().expect("delivery before the stream start is known");
        match c {
            Chunk::Data(d) => {
                assert!(!d.is_empty(), "empty data chunk");
                for (k, b) in d.iter().enumerate() {
                    assert_eq!(*b, content(pos.wrapping_add(k as u32)), "wrong byte (record {record})");
                }
                *pos = pos.wrapping_add(d.len() as u32);
                self.delivered += d.len() as u64;
            }
            Chunk::Gap(n) | Chunk::Cut(n) => {
                assert!(n > 0, "empty gap");
                *pos = pos.wrapping_add(n as u32);
                self.gaps += n;
            }
        }
    }
}

/// TCP reassembly from arbitrary segment sequences.
///
/// Input: `[flags:1][base:4]` then records of `[off:2][len:2][op:1]`. A segment carries the
/// stream's true bytes for its sequence numbers (`content(seq)`), so whatever order, overlap,
/// duplication, wraparound or loss the fuzzer makes, every byte delivered must be the byte of
/// the sequence number it is delivered at. Also checked: never more bytes delivered than given,
/// the out-of-order buffer within its cap, no panic, no runaway recursion.
pub fn reassembly(data: &[u8]) {
    if data.len() < 5 {
        return;
    }
    let flags = data[0];
    let base = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let mut r = Reassembler::default();
    // The harness's own idea of where delivery starts (mirrors the documented contract).
    let mut start: Option<u32> = None;
    if flags & 1 != 0 {
        r.syn(SeqNumber(base));
        start = Some(base.wrapping_add(1));
    }
    let mut out = Out {
        pos: start,
        delivered: 0,
        gaps: 0,
    };
    let mut given = 0u64;
    let mut payload = Vec::new();
    for (i, rec) in data[5..].chunks_exact(5).enumerate().take(256) {
        let off = u16::from_le_bytes([rec[0], rec[1]]) as u32;
        let mut len = u16::from_le_bytes([rec[2], rec[3]]) as usize;
        let op = rec[4];
        if op & 0x80 != 0 {
            len <<= 4; // up to 1 MiB: larger than the out-of-order cap
        }
        let off = if op & 0x20 != 0 { off << 12 } else { off };
        let seq = if op & 0x40 != 0 {
            base.wrapping_sub(off)
        } else {
            base.wrapping_add(off)
        };
        if given + len as u64 > 16 << 20 {
            break;
        }
        if op & 1 != 0 && start.is_none() {
            start = Some(seq.wrapping_add(1));
            out.pos = start;
        }
        if op & 1 != 0 {
            r.syn(SeqNumber(seq));
        }
        payload.clear();
        payload.extend((0..len).map(|k| content(seq.wrapping_add(k as u32))));
        if len > 0 && start.is_none() {
            start = Some(seq);
            out.pos = start;
        }
        given += len as u64;
        let mut sink = |c: Chunk<'_>| out.take(c, i);
        let note = r.segment(SeqNumber(seq), &payload, i as u64, &mut sink);
        assert!(note.gap_bytes == 0 || note.buffer_full);
        // Every copy carries the stream's own bytes: nothing can disagree.
        assert_eq!(
            note.conflict, None,
            "segment {i}: copies of one stream reported in conflict"
        );
        if op & 2 != 0 {
            r.skip_missing((off & 0xfff) as u64, &mut sink);
        }
        if op & 4 != 0 {
            r.flush(&mut sink);
            assert_eq!(r.buffered(), 0);
        }
        if op & 8 != 0 {
            r.abandon();
            assert_eq!(r.buffered(), 0);
        }
        assert!(r.buffered() <= MAX_OOO_BYTES, "buffered {} bytes", r.buffered());
        assert!(out.delivered <= given, "delivered {} of {given} bytes", out.delivered);
    }
    r.flush(&mut |c: Chunk<'_>| out.take(c, usize::MAX));
    assert_eq!(r.buffered(), 0);
    assert!(out.delivered <= given);
}

// ---- tls_session -------------------------------------------------------------------------------

enum Op<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
}

fn parse(mut b: &[u8]) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    while b.len() >= 2 && ops.len() < 4096 {
        let (op, len) = (b[0], b[1] as usize | ((b[0] as usize & 0x1f) << 8));
        b = &b[2..];
        let dir = if op & 0x80 != 0 {
            Direction::ToClient
        } else {
            Direction::ToServer
        };
        if op & 0x40 != 0 {
            let n = if op & 0x20 != 0 {
                (len as u64) << 12
            } else {
                len as u64 & 0xff
            };
            ops.push(Op::Gap(dir, n));
        } else {
            let n = len.min(b.len());
            ops.push(Op::Data(dir, &b[..n]));
            b = &b[n..];
        }
    }
    ops
}

fn feed(ops: &[Op<'_>], split: usize) -> Session {
    let mut s = Session::default();
    for (i, op) in ops.iter().enumerate() {
        let at = At {
            frame: i as u64 + 1,
            ts: Timestamp(i as i64 * 1_000_000),
        };
        match *op {
            Op::Gap(dir, n) => {
                if s.wants_data(dir) {
                    s.on_chunk(dir, Chunk::Gap(n), at);
                }
            }
            Op::Data(dir, d) => {
                for piece in d.chunks(split) {
                    if !s.wants_data(dir) {
                        break;
                    }
                    s.on_chunk(dir, Chunk::Data(piece), at);
                }
            }
        }
    }
    s
}

fn key(s: &Session) -> String {
    let f = s.facts();
    format!(
        "v={:?} ch={:?} sh={:?} certs={} alerts={:?} hist={} enc={:?} not_tls={:?} ccs={:?} fin={:?} t13={:?}",
        f.version(),
        f.client_hello
            .as_ref()
            .map(|c| (&c.server_name, &c.cipher_suites, c.legacy_version)),
        f.server_hello.as_ref().map(|h| (h.version, h.cipher_suite)),
        f.server_certificates.len(),
        f.alerts
            .iter()
            .map(|a| (a.direction, a.at.frame, a.description, a.encrypted))
            .collect::<Vec<_>>(),
        f.history,
        f.encrypted_records,
        f.not_tls,
        f.ccs.map(|a| a.map(|a| a.frame)),
        f.finished.map(|a| a.map(|a| a.frame)),
        (
            f.tls13.client_first.map(|r| (r.at.frame, r.len)),
            f.tls13.server_after_client.map(|r| (r.at.frame, r.len))
        ),
    )
}

/// The TLS deframer and handshake parsing: both directions' byte streams, with gaps, into one
/// `tlsdiag::tls::Session` through the flow layer's `StreamHandler` trait.
///
/// Input: `[split:1]` then ops `[op:1][len:1]` (+ `len` data bytes for data ops): op bit 7 is
/// the direction, bit 6 makes it a gap (bit 5: a large one), bits 0-4 extend the length.
/// The same ops are fed twice: as given, and with every data chunk cut into pieces of at most
/// `split` bytes; the key facts must be identical (the deframer's guarantee: verdicts do not
/// depend on segmentation). Also: no panic, bounded facts, serializable facts.
pub fn tls_session(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let ops = parse(rest);
    let whole = feed(&ops, usize::MAX);
    let f = whole.facts();
    assert!(f.alerts.len() <= 8);
    assert!(f.history.len() <= 100);
    assert!(f.first_encrypted.iter().all(|v| v.len() <= MAX_RECORD_SIZES));
    assert!(f.server_certificates.len() <= MAX_CERT_CHAIN);
    assert!(serde_json::to_string(f).is_ok());
    let _ = whole.outcome_known();
    let _ = f.handshake_complete();
    let pieces = feed(&ops, (split as usize % 64).max(1));
    assert_eq!(key(&whole), key(&pieces), "facts depend on segmentation");
}

// ---- keylog ------------------------------------------------------------------------------------

/// The key log parser and the record opener (`tlsdiag::tls::keylog`, `tlsdiag::tls::decrypt`).
///
/// Input: `[sel:1]` then bytes that are both a key log's text and a series of records
/// `[len:1][body: len bytes]`. `sel` picks the version and suite of a session whose secrets are
/// fixed (every label logged) and the direction/content-type pattern of the records; every
/// seventh record is passed over unread (`Decryptor::pass`), and every body also goes through the
/// HTTP status reader (`tlsdiag::tls::http_status`).
/// Invariants: never panics; every line is counted at most once; at most 8 bad lines are kept;
/// a plaintext is never longer than its record; a direction whose record did not open stays
/// closed (no key, never a guess); no debug output shows a secret.
pub fn keylog(data: &[u8]) {
    use tlsdiag::tls::decrypt::{Decryptor, Hello, Opened};
    use tlsdiag::tls::keylog::KeyLog;
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut k = KeyLog::default();
    k.add_text("fuzz", rest);
    let lines = rest.split(|&c| c == b'\n').count() as u64;
    let st = &k.stats;
    assert!(st.entries + st.unknown_labels + st.malformed + st.over_cap <= lines);
    assert!(st.bad_lines.len() <= 8 && st.too_long <= st.malformed);
    let random = "07".repeat(32);
    let secret = "5a".repeat(48);
    let mut text = String::new();
    for l in [
        "CLIENT_RANDOM",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        text.push_str(&format!("{l} {random} {secret}\n"));
    }
    let mut fixed = KeyLog::default();
    fixed.add_text("fixed", text.as_bytes());
    let secrets = fixed.get(&[7; 32]).expect("fixed secrets").clone();
    assert!(!format!("{secrets:?}{fixed:?}").contains("5a5a5a5a"));
    const SUITES: [u16; 12] = [
        0x1301, 0x1302, 0x1303, 0x1304, 0x1305, 0xC02F, 0xC030, 0xCCA8, 0xC0AC, 0xC0AE, 0x002F, 0xC028,
    ];
    let suite = SUITES[usize::from(sel & 0x0f) % SUITES.len()];
    let version = if suite >> 8 == 0x13 {
        0x0304
    } else {
        0x0301 + u16::from((sel >> 4) & 3).min(2)
    };
    let h = Hello {
        client_random: &[7; 32],
        server_random: &[9; 32],
        version,
        suite,
        encrypt_then_mac: sel & 0x40 != 0,
    };
    let Some(mut d) = Decryptor::new(&secrets, &h) else {
        return;
    };
    let mut rest = rest;
    let mut i = 0u32;
    while let Some((&len, more)) = rest.split_first() {
        let (body, after) = more.split_at(usize::from(len).min(more.len()));
        rest = after;
        let dir = if (u32::from(sel) >> (i % 8)) & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let typ = [23u8, 22, 21][(i % 3) as usize];
        // The HTTP status reader sees decrypted bytes: any bytes give a number below 1000 or none.
        assert!(tlsdiag::tls::http_status::response_status(body, i % 2 == 0).is_none_or(|s| s < 1000));
        let _ = tlsdiag::tls::http_status::cert_refusal(body);
        if i % 7 == 6 {
            // A record left closed: it spends a sequence number, never a key.
            d.pass(dir);
            i += 1;
            continue;
        }
        match d.open(dir, typ, 0x0303, body) {
            Opened::Plain(_, pt) => assert!(pt.len() <= body.len()),
            Opened::Failed => assert!(!d.wants(dir), "a direction that failed stays closed"),
            Opened::Oversized => assert!(body.len() > 1 << 14),
            Opened::NoKey | Opened::Skipped => {}
        }
        if i % 5 == 4 {
            d.finished(dir);
        }
        i += 1;
    }
    assert!(!format!("{d:?}").contains("5a5a5a5a"));
}

// ---- pipeline ----------------------------------------------------------------------------------

fn reader(data: &[u8], name: &str) -> Option<FileReader> {
    FileReader::from_reader(PathBuf::from(name), Box::new(Cursor::new(data.to_vec()))).ok()
}

/// The whole pipeline from a capture file's bytes to every report format.
///
/// bytes → `FileReader` → `Capture` (one input, or the same input twice to exercise the merge)
/// → `Analyzer::packet` / `finish` → `SessionReport`s → `Report` → JSON, NDJSON, text and
/// Markdown printers, with redaction. Options come from the input length so the seeds stay
/// plain capture files: a tiny flow table (eviction), short timeouts, a second port.
/// Invariants: never panics; every session report serializes; counts add up.
pub fn pipeline(data: &[u8]) {
    let knobs = data.len() % 8;
    let Some(first) = reader(data, "a.pcap") else {
        return;
    };
    let mut readers = vec![first];
    if knobs & 4 != 0 {
        readers.extend(reader(data, "b.pcap"));
    }
    let mut capture = Capture::from_readers(readers);
    let opts = Options {
        ports: vec![443, 8443],
        handshake_timeout_secs: if knobs & 2 != 0 { 1 } else { 10 },
        idle_timeout_secs: if knobs & 2 != 0 { 2 } else { 300 },
        max_flows: if knobs & 1 != 0 { 2 } else { 10_000 },
        detail: Detail::Full,
        tunnels: Default::default(),
        ports_only: knobs & 4 != 0,
    };
    let streaming = knobs & 2 != 0;
    let mut analyzer = Analyzer::new(opts, !streaming);
    let mut sessions: Vec<SessionReport> = Vec::new();
    let mut sink = |s: SessionReport| {
        assert!(serde_json::to_string(&s).is_ok());
        sessions.push(s);
    };
    while let Some(p) = capture.next_packet() {
        analyzer.packet(&p, &mut sink);
    }
    let frames = analyzer.frames();
    let (mut summary, profiles) = analyzer.finish_with_profiles(&mut sink);
    assert_eq!(summary.packets, frames);
    summary.files = capture.files();
    for (file, stop) in capture.stops() {
        *summary.anomalies.entry(stop.key.to_string()).or_default() += 1;
        summary.input_problems.push(format!("{file}: {}", stop.detail));
    }
    for (k, n) in capture.oddities() {
        *summary.anomalies.entry(k.to_string()).or_default() += n;
    }
    let mut counts = Counts::default();
    let mut redactor = Redactor::default();
    for s in &mut sessions {
        counts.add(s);
        if knobs & 1 != 0 {
            redactor.apply(s);
        }
    }
    assert_eq!(
        counts.established + counts.failed + counts.incomplete + counts.no_data_connections,
        sessions.len() as u64
    );
    sessions.sort_by_key(|s| (s.first_frame, s.id));
    let report = Report {
        schema_version: SCHEMA_VERSION,
        tool: "tlsdiag fuzz".into(),
        capture: summary,
        counts,
        servers: ServerSummary::from_profiles(&profiles),
        sessions,
    };
    let mut out = Vec::new();
    json::write(&mut out, &report).expect("json");
    assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
    out.clear();
    for s in &report.sessions {
        ndjson::write_session(&mut out, s).expect("ndjson");
    }
    ndjson::write_summary(&mut out, &report).expect("ndjson summary");
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!(serde_json::from_slice::<serde_json::Value>(line).is_ok());
    }
    out.clear();
    text::write(
        &mut out,
        &report,
        text::TextOptions {
            quiet: false,
            all: true,
        },
    )
    .expect("text");
    out.clear();
    markdown::write(&mut out, &report, "", knobs & 1 != 0, knobs & 2 != 0).expect("markdown");
    out.clear();
    html::write(&mut out, &report, "", knobs & 1 != 0).expect("html");
    let page = std::str::from_utf8(&out).expect("the HTML report is UTF-8");
    assert!(
        !page.contains("<script") && !page.contains(" src="),
        "the HTML report fetches nothing"
    );
}

// ---- threads -----------------------------------------------------------------------------------

/// Session reports as comparable JSON, in capture order, without the run-specific id.
fn comparable(mut sessions: Vec<SessionReport>) -> Vec<String> {
    sessions.sort_by_key(|s| s.first_frame);
    sessions
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).expect("session serializes");
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
            }
            v.to_string()
        })
        .collect()
}

/// Differential: the same capture analyzed on one thread (`Analyzer`) and split over two
/// workers (`Parallel`) must give the same sessions and the same capture summary, as
/// `--threads` promises (tests/threads.rs checks it on the samples; this on hostile input).
///
/// Found so far (fixed; inputs in fuzz/regressions/threads/): connections past their deadline
/// when the capture ends with other traffic, and frames stamped in the past across workers.
pub fn threads(data: &[u8]) {
    let opts = Options {
        ports: vec![443, 8443],
        handshake_timeout_secs: 10,
        idle_timeout_secs: 300,
        max_flows: 10_000,
        detail: Detail::Full,
        tunnels: Default::default(),
        ports_only: false,
    };
    let (Some(mut r), Some(r2)) = (reader(data, "a.pcap"), reader(data, "a.pcap")) else {
        return;
    };
    let mut one_sessions = Vec::new();
    let mut many_sessions = Vec::new();
    let mut one = Analyzer::new(opts.clone(), true);
    while let Some(p) = r.next_packet() {
        one.packet(&p, &mut |s| one_sessions.push(s));
    }
    let (one_summary, _) = one.finish_with_profiles(&mut |s| one_sessions.push(s));
    // The parallel side reads a real file, so that it also reads ahead in chunks (small ones
    // here, so that every input crosses many chunk boundaries).
    let path = std::env::temp_dir().join(format!("tlsdiag-fuzz-threads-{}.pcap", std::process::id()));
    let opened = std::fs::write(&path, data)
        .ok()
        .and_then(|()| Capture::open(std::slice::from_ref(&path)).ok());
    let mut capture = match opened {
        Some(mut c) => {
            let _ = c.prefetch(97);
            c
        }
        None => Capture::from_readers(vec![r2]),
    };
    let (many_summary, _) = Parallel::new(opts, 2, true).run(&mut capture, &mut |s| many_sessions.push(s), &mut |_| {});
    // Reading in chunks ends the same way as reading straight through: the same stop, the same
    // damage skipped over, the same counts.
    let straight = (r.stop.clone(), r.oddities.clone(), r.damage.clone());
    let chunked = (
        capture.stops().into_iter().next().map(|(_, s)| s),
        capture.oddities(),
        capture.damage().into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
    );
    assert_eq!(straight, chunked, "the reader ends differently in chunks");
    assert_eq!(
        serde_json::to_string(&one_summary).expect("summary"),
        serde_json::to_string(&many_summary).expect("summary"),
        "capture summaries differ"
    );
    let (a, b) = (comparable(one_sessions), comparable(many_sessions));
    assert_eq!(a.len(), b.len(), "session counts differ");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "one thread vs two");
    }
}

// ---- escape ------------------------------------------------------------------------------------

/// The report's escaping layer (`report::escape`) on any string (the bytes, UTF-8 decoded with
/// replacement characters).
///
/// Invariants: `terminal` output holds no control character (C0, DEL, C1) nor bidi control,
/// zero-width character or line/paragraph separator, and escaping it again changes nothing;
/// `markdown` output holds none either, every backslash in it escapes an ASCII punctuation
/// character, every character that starts Markdown syntax (`[ ] < > ! & * _ \` | ~ ^ @ \`) is
/// escaped, no `://` or `www.` is left whole, and removing the escapes gives `terminal`'s
/// output back (what a CommonMark renderer shows).
pub fn escape(data: &[u8]) {
    use tlsdiag::report::escape::{markdown, terminal};
    let hidden = |c: char| {
        c.is_control()
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{2028}'..='\u{202e}').contains(&c)
            || ('\u{2060}'..='\u{2069}').contains(&c)
            || c == '\u{feff}'
    };
    let s = String::from_utf8_lossy(data);
    let t = terminal(&s);
    assert!(!t.chars().any(hidden), "terminal left a hidden char in {t:?}");
    assert_eq!(terminal(&t), t, "terminal is not idempotent");
    assert!(t.len() >= s.len(), "terminal dropped characters");
    let m = markdown(&s);
    assert!(!m.chars().any(hidden), "markdown left a hidden char in {m:?}");
    let mut shown = String::with_capacity(m.len());
    let mut chars = m.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let next = chars.next();
            assert!(
                next.is_some_and(|n| n.is_ascii_punctuation()),
                "a backslash escapes nothing in {m:?}"
            );
            shown.extend(next);
        } else {
            assert!(!"[]<>!&*_`|~^@".contains(c), "unescaped {c:?} in {m:?}");
            assert!(
                c != ':' || chars.peek() != Some(&'/'),
                "URL autolink left whole in {m:?}"
            );
            shown.push(c);
        }
    }
    assert!(
        !m.to_ascii_lowercase().contains("www."),
        "www autolink left whole in {m:?}"
    );
    assert_eq!(shown, t, "markdown does not render as the terminal text");
}
