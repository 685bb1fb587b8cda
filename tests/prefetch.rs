//! Reading a capture file ahead in chunks (what `--threads` does with a plain file) must give
//! exactly the packets, times and stop reasons of reading it straight through: records of every
//! size cut by chunk boundaries anywhere, records longer than a chunk and longer than the room
//! kept before a chunk, pcap and pcapng, files cut short, and a second thread reading ahead.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use tlsdiag::capture::Capture;

/// Frame sizes: small, Ethernet, jumbo, just over and well over the 64 KiB kept before a chunk.
const SIZES: [usize; 9] = [60, 1514, 54, 9000, 66_000, 70_000, 1, 300_000, 777];

fn frame(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + n * 13) as u8).collect()
}

fn pcap(records: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&(1u32 << 20).to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for n in 0..records {
        let len = SIZES[n % SIZES.len()];
        v.extend_from_slice(&(1_700_000_000 + n as u32).to_le_bytes());
        v.extend_from_slice(&(n as u32 % 1_000_000).to_le_bytes());
        v.extend_from_slice(&(len as u32).to_le_bytes());
        v.extend_from_slice(&(len as u32 + 3).to_le_bytes());
        v.extend_from_slice(&frame(n, len));
    }
    v
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

fn pcapng(records: usize) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut v = block(0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    v.extend(block(1, &idb));
    for n in 0..records {
        let len = SIZES[(n + 3) % SIZES.len()];
        let ts = (1_700_000_000u64 + n as u64) * 1_000_000 + n as u64;
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(len as u32).to_le_bytes());
        epb.extend_from_slice(&(len as u32).to_le_bytes());
        epb.extend_from_slice(&frame(n, len));
        v.extend(block(6, &epb));
    }
    v
}

/// A packet as read: time, link type, length on the wire, bytes.
type Read = (i64, u32, u32, Vec<u8>);

/// Every packet and how the file ended.
fn read_all(path: &Path, chunk: Option<usize>, helper: bool) -> (Vec<Read>, Vec<String>) {
    let mut cap = Capture::open(&[path.to_path_buf()]).expect("open");
    let prefetch = chunk.map(|c| cap.prefetch(c).expect("a plain file reads ahead"));
    let mut out = Vec::new();
    std::thread::scope(|s| {
        if let (Some(p), true) = (&prefetch, helper) {
            // A second thread copying chunks ahead as a worker would, while this one frames.
            s.spawn(move || {
                for _ in 0..10_000 {
                    if p.claim_next().is_none() {
                        break;
                    }
                }
            });
        }
        while let Some(p) = cap.next_packet() {
            out.push((p.ts.0, p.link.0, p.orig_len, p.data.to_vec()));
        }
    });
    let mut ends: Vec<String> = cap.stops().into_iter().map(|(_, s)| s.detail).collect();
    ends.extend(cap.damage().into_iter().map(|(_, d)| d));
    (out, ends)
}

/// `pcapng(records)` with the block length of the given packet blocks overwritten.
fn damaged_pcapng(records: usize, damaged: &[usize]) -> Vec<u8> {
    let mut v = pcapng(records);
    let mut off = 0;
    let mut n = 0;
    while off + 8 <= v.len() {
        let kind = u32::from_le_bytes(v[off..off + 4].try_into().unwrap());
        let len = u32::from_le_bytes(v[off + 4..off + 8].try_into().unwrap()) as usize;
        if kind == 6 {
            if damaged.contains(&n) {
                v[off + 4..off + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
            }
            n += 1;
        }
        off += len;
    }
    v
}

/// `pcap(records)` with the captured length of the given records overwritten (damaged headers
/// the reader resynchronises after).
fn damaged_pcap(records: usize, damaged: &[usize]) -> Vec<u8> {
    let mut v = pcap(records);
    let mut off = 24;
    for n in 0..records {
        let len = SIZES[n % SIZES.len()];
        if damaged.contains(&n) {
            v[off + 8..off + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        }
        off += 16 + len;
    }
    v
}

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsdiag-prefetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

#[test]
fn chunks_read_ahead_give_the_same_packets_as_reading_straight_through() {
    for (name, bytes) in [
        ("a.pcap", pcap(60)),
        ("b.pcapng", pcapng(60)),
        ("damaged.pcap", damaged_pcap(60, &[2, 19, 20, 37])),
        // (Its frame sizes are shifted by 3: the 300 KB ones are packets 4, 13, 22 ...)
        ("damaged.pcapng", damaged_pcapng(60, &[4, 22, 23, 40])),
    ] {
        // Whole, and cut inside a record header, inside a record and inside the big ones.
        let cuts = [bytes.len(), bytes.len() - 5, bytes.len() / 2 + 3, 300_000, 700_001];
        for cut in cuts {
            let path = temp(name, &bytes[..cut]);
            let want = read_all(&path, None, false);
            assert!(!want.0.is_empty(), "{name} cut at {cut}: no packets");
            if name.starts_with("damaged") && cut == bytes.len() {
                // Four packets are lost (two in a row); reading goes on at the next valid
                // record (three plausible ones in a row, none over 256 KiB).
                assert_eq!(want.0.len(), 56, "{:?}", want.1);
                assert_eq!(want.1.len(), 3, "{:?}", want.1);
                assert!(want.1.iter().all(|d| d.contains("skipped")), "{:?}", want.1);
            }
            for chunk in [509, 4096, 65_536, 100_000, 1 << 20] {
                for helper in [false, true] {
                    let got = read_all(&path, Some(chunk), helper);
                    assert_eq!(got.0.len(), want.0.len(), "{name} cut at {cut}, chunk {chunk}");
                    assert!(got.0 == want.0, "{name} cut at {cut}, chunk {chunk}: packets differ");
                    assert_eq!(got.1, want.1, "{name} cut at {cut}, chunk {chunk}: stop reasons differ");
                }
            }
        }
    }
}

#[test]
fn standard_input_and_gzip_are_not_read_ahead() {
    let path = temp("c.pcap.gz", &{
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&pcap(5)).expect("gzip");
        e.finish().expect("gzip")
    });
    let mut cap = Capture::open(&[path]).expect("open");
    assert!(cap.prefetch(4096).is_none());
    let mut n = 0;
    while cap.next_packet().is_some() {
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn a_reader_thread_copying_ahead_gives_the_same_packets_and_stops_with_the_capture() {
    // Several 1 MiB chunks (the read-ahead's size), damaged and whole.
    for (name, bytes) in [
        ("ahead.pcap", pcap(200)),
        ("ahead-damaged.pcapng", damaged_pcapng(200, &[4, 22, 23, 140])),
    ] {
        let path = temp(name, &bytes);
        let want = read_all(&path, None, false);
        let mut cap = Capture::open(std::slice::from_ref(&path)).expect("open");
        cap.read_ahead();
        // The thread copies ahead of the reader: the chunk it takes and the next, `AHEAD` in all.
        let pf = cap
            .prefetch(tlsdiag::capture::prefetch::CHUNK)
            .expect("reading in chunks");
        assert!(cap.next_packet().is_some());
        let t0 = std::time::Instant::now();
        while pf.chunks_claimed() < tlsdiag::capture::prefetch::AHEAD
            && t0.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(
            pf.chunks_claimed(),
            tlsdiag::capture::prefetch::AHEAD,
            "{name}: chunks read ahead"
        );
        drop(cap);
        let mut cap = Capture::open(std::slice::from_ref(&path)).expect("open");
        cap.read_ahead();
        let mut got = Vec::new();
        while let Some(p) = cap.next_packet() {
            got.push((p.ts.0, p.link.0, p.orig_len, p.data.to_vec()));
        }
        let mut ends: Vec<String> = cap.stops().into_iter().map(|(_, s)| s.detail).collect();
        ends.extend(cap.damage().into_iter().map(|(_, d)| d));
        assert_eq!(got.len(), want.0.len(), "{name}");
        assert!(got == want.0, "{name}: packets differ");
        assert_eq!(ends, want.1, "{name}: stop reasons differ");

        // Abandoned after a few packets (a stop request): dropping the capture stops and joins
        // the reader thread at once, although it waits for the reader to move on.
        let mut cap = Capture::open(std::slice::from_ref(&path)).expect("open");
        cap.read_ahead();
        for _ in 0..3 {
            assert!(cap.next_packet().is_some());
        }
        let t0 = std::time::Instant::now();
        drop(cap);
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "{:?}", t0.elapsed());
    }
}
