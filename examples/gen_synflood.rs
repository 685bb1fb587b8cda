//! A SYN flood for the memory caps (issue 6): `--count` SYNs to one server's port 443, each from
//! its own client address and port, 1 µs apart and never answered, so every one of them is a
//! half-open connection alive at the same time (well inside the handshake timeout).
//!
//! ```text
//! cargo run --release --example gen_synflood -- --out FILE [--count 1000000]
//! ```
//!
//! Writes a classic pcap with tlsdiag's own writer (Ethernet, IPv4, TCP SYN with an MSS option,
//! valid checksums). What a
//! flood looks like on the wire is simple enough to write directly: the point is the number of
//! connections, not the TLS stacks (the benchmark's sessions are real, see gen_bench.rs).

#![allow(
    clippy::indexing_slicing,
    reason = "a test-input generator writing fixed-size headers it builds itself"
)]

use std::io::BufWriter;
use tlsdiag::capture::{LinkType, Packet, Timestamp};
use tlsdiag::report::carve::PcapWriter;

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for c in chunks {
        for pair in c.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = None;
    let mut count: u32 = 1_000_000;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--out" => out = args.get(i + 1).cloned(),
            "--count" => count = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(count),
            other => {
                eprintln!("gen_synflood: unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let Some(out) = out else {
        eprintln!("usage: gen_synflood --out FILE [--count N]");
        std::process::exit(2);
    };
    let f = std::fs::File::create(&out).unwrap_or_else(|e| {
        eprintln!("gen_synflood: {out}: {e}");
        std::process::exit(2);
    });
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, f));
    let mut ok = true;
    let server = [203u8, 0, 113, 10];
    let t0: i64 = 1_795_500_000 * 1_000_000_000;
    for n in 0..count {
        // Clients spread over 100.64.0.0/10, ports 1024–65535.
        let client = (0x6440_0000u32 | (n / 64_000)).to_be_bytes();
        let port = 1024 + (n % 64_000) as u16;
        let seq = n.wrapping_mul(2_654_435_761);
        let mut tcp = [0u8; 24];
        tcp[0..2].copy_from_slice(&port.to_be_bytes());
        tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[12] = 6 << 4;
        tcp[13] = 0x02;
        tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
        tcp[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&client);
        pseudo[4..8].copy_from_slice(&server);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&24u16.to_be_bytes());
        let c = checksum(&[&pseudo, &tcp]);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&44u16.to_be_bytes());
        ip[4..6].copy_from_slice(&(n as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&client);
        ip[16..20].copy_from_slice(&server);
        let c = checksum(&[&ip]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut frame = Vec::with_capacity(58);
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);
        let p = Packet {
            ts: Timestamp(t0 + i64::from(n) * 1_000),
            link: LinkType::ETHERNET,
            data: &frame,
            orig_len: frame.len() as u32,
        };
        ok &= w.write(&p).is_ok();
    }
    if !ok || w.finish().is_err() {
        eprintln!("gen_synflood: cannot write {out}");
        std::process::exit(2);
    }
    println!("wrote {out}: {count} SYNs from distinct clients to 203.0.113.10:443");
}
