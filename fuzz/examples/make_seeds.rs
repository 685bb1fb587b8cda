//! Writes the seed corpora under fuzz/corpus/<target>/ from the sample captures.
//!
//! Run from fuzz/: `cargo run --release --example make_seeds`. Seeds are small on purpose
//! (captures cut at a record boundary near 16 KB, TLS streams near 8 KB) so the fuzzer mutates
//! what matters; the files are named by content hash, so re-running is idempotent.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use tlsdiag::capture::{FileReader, Timestamp};
use tlsdiag::flow::table::{Decided, FlowConfig, FlowTable};
use tlsdiag::flow::{At, Chunk, Direction, StreamHandler};
use tlsdiag::tls::Session;

const CAPTURE_SEED_MAX: usize = 16 * 1024;
const TLS_SEED_MAX: usize = 8 * 1024;
/// Link types in the order of the `decode` target's selector table.
const LINKS: [u32; 12] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147, 0x0fff_ffff];

fn write_seed(target: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    std::fs::write(dir.join(format!("seed-{:016x}", h.finish())), bytes).expect("write seed");
}

/// The capture cut at the last record or block boundary before `max` bytes (whole if smaller).
fn cut_at_boundary(b: &[u8], max: usize) -> Vec<u8> {
    if b.len() <= max || b.len() < 24 {
        return b.to_vec();
    }
    let magic = [b[0], b[1], b[2], b[3]];
    let pcapng = magic == [0x0a, 0x0d, 0x0d, 0x0a];
    let big = if pcapng {
        b[8..12] == [0x1a, 0x2b, 0x3c, 0x4d]
    } else {
        magic[0] == 0xa1
    };
    let u32_at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let (mut pos, mut end) = if pcapng { (0, 0) } else { (24, 24) };
    while pos + 16 <= b.len() {
        let next = if pcapng {
            pos + u32_at(pos + 4) as usize
        } else {
            pos + 16 + u32_at(pos + 8) as usize
        };
        if next > max || next > b.len() || next <= pos {
            break;
        }
        end = next;
        pos = next;
    }
    b[..end].to_vec()
}

fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("../samples/cases").expect("samples").flatten() {
        for f in std::fs::read_dir(e.path()).expect("case").flatten() {
            let p = f.path();
            if p.to_string_lossy().contains(".pcap") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[derive(Default)]
struct Recorder {
    session: Session,
    log: Vec<(Direction, Option<Vec<u8>>, u64)>,
}

impl StreamHandler for Recorder {
    fn on_chunk(&mut self, dir: Direction, chunk: Chunk<'_>, at: At) {
        self.log.push(match chunk {
            Chunk::Data(d) => (dir, Some(d.to_vec()), 0),
            Chunk::Gap(n) | Chunk::Cut(n) => (dir, None, n),
        });
        self.session.on_chunk(dir, chunk, at);
    }
    fn wants_data(&self, _dir: Direction) -> bool {
        true
    }
}

impl Decided for Recorder {
    fn decided(&self) -> bool {
        false
    }
}

/// One connection's chunks in the `tls_session` target's op format.
fn tls_ops(log: &[(Direction, Option<Vec<u8>>, u64)]) -> Vec<u8> {
    let mut out = vec![7u8]; // split pieces of at most 7 bytes in the second feed
    for (dir, data, gap) in log {
        let dbit = if *dir == Direction::ToClient { 0x80u8 } else { 0 };
        match data {
            Some(d) => {
                for piece in d.chunks(0x1fff) {
                    if out.len() + piece.len() + 2 > TLS_SEED_MAX {
                        return out;
                    }
                    out.push(dbit | (piece.len() >> 8) as u8);
                    out.push(piece.len() as u8);
                    out.extend_from_slice(piece);
                }
            }
            None => {
                let n = (*gap).min(255) as u8;
                out.extend_from_slice(&[dbit | 0x40, n]);
            }
        }
    }
    out
}

fn main() {
    let mut seen_links = std::collections::HashMap::<u32, usize>::new();
    for path in captures() {
        let bytes = std::fs::read(&path).expect("read sample");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let seed = cut_at_boundary(&bytes, CAPTURE_SEED_MAX);
        // Every case feeds the pipeline; the capture reader needs only the format variants.
        write_seed("pipeline", &seed);
        if name.starts_with("cap-") || name.starts_with("link-") || name == "tls-mixed.pcap" {
            write_seed("capture_reader", &seed);
        }
        // Frames for the decoder: the first few of each link type.
        let Ok(mut r) = FileReader::from_reader(path.clone(), Box::new(std::io::Cursor::new(bytes.clone()))) else {
            continue;
        };
        let mut frames = 0;
        while let Some(p) = r.next_packet() {
            frames += 1;
            let n = seen_links.entry(p.link.0).or_default();
            if *n < 12 && frames % 3 == 1 {
                *n += 1;
                if let Some(sel) = LINKS.iter().position(|l| *l == p.link.0) {
                    let mut s = vec![sel as u8];
                    s.extend_from_slice(p.data);
                    write_seed("decode", &s);
                }
            }
        }
        // Each connection's ordered byte streams for the TLS session target.
        let mut r = FileReader::from_reader(path.clone(), Box::new(std::io::Cursor::new(bytes))).expect("reopen");
        let mut table: FlowTable<Recorder> = FlowTable::new(FlowConfig {
            ports: vec![443, 8443],
            content: false,
            max_flows: 10_000,
            idle_timeout_ns: 300_000_000_000,
            handshake_timeout_ns: 10_000_000_000,
        });
        let mut done = Vec::new();
        let mut frame = 0;
        let mut last = Timestamp(0);
        while let Some(p) = r.next_packet() {
            frame += 1;
            last = last.max(p.ts);
            if let Ok(seg) = tlsdiag::decode::decode(p.link, p.data)
                && table.wants(&seg)
            {
                table.segment(At { frame, ts: p.ts }, &seg, &mut |c| done.push(c));
            }
        }
        table.finish_all(&mut |c| done.push(c));
        // Several connections: worth splitting over workers.
        if done.len() >= 2 {
            write_seed("threads", &seed);
        }
        for c in done {
            if c.handler.log.iter().any(|(_, d, _)| d.is_some()) {
                write_seed("tls_session", &tls_ops(&c.handler.log));
            }
        }
    }
    // A gzip seed for the capture reader.
    let tls = std::fs::read("../samples/cases/tls12-ok-openssl/tls12-ok-openssl.pcap").expect("sample");
    let mut gz = flate2_free_gzip_stored(&tls);
    write_seed("capture_reader", &gz);
    gz.clear();
    // Reassembly: in order, reordered, overlapping, duplicated, wrapping, far ahead, big.
    let rec = |off: u16, len: u16, op: u8| -> Vec<u8> {
        let mut v = off.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.push(op);
        v
    };
    // (flags, base sequence number, records of (offset, length, op)).
    type Seed = (u8, u32, Vec<(u16, u16, u8)>);
    let seeds: Vec<Seed> = vec![
        (1, 1000, vec![(1, 100, 0), (101, 100, 0), (201, 50, 0)]),
        (
            1,
            0xffff_ff00,
            vec![(201, 100, 0), (1, 100, 0), (101, 100, 0), (50, 300, 0)],
        ),
        (0, 7, vec![(0, 10, 0), (20, 10, 0), (5, 30, 0), (0, 40, 0), (40, 5, 4)]),
        (1, 0, vec![(1, 10, 0), (100, 100, 0x80), (30, 10, 2), (1, 500, 0x84)]),
        (
            0,
            0xffff_fff0,
            vec![(0, 64, 0), (3, 1, 0x20), (2, 1, 0x40), (64, 64, 8), (128, 64, 0)],
        ),
    ];
    for (flags, base, recs) in seeds {
        let mut v = vec![flags];
        v.extend_from_slice(&base.to_le_bytes());
        for (o, l, op) in recs {
            v.extend(rec(o, l, op));
        }
        write_seed("reassembly", &v);
    }
}

/// A gzip member with stored (uncompressed) deflate blocks, so no compression crate is needed.
fn flate2_free_gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(65535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        out.extend_from_slice(&(c.len() as u16).to_le_bytes());
        out.extend_from_slice(&(!(c.len() as u16)).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
