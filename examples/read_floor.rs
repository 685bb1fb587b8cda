//! The floor of the benchmark (issue 6): a bare pass over the pcap records with tlsdiag's own
//! reader — open, iterate `next_packet()`, touch the first and last byte of every packet, count
//! packets and bytes. No decoding, no flows. tlsdiag cannot be faster than this.
//!
//! ```text
//! cargo run --release --example read_floor -- FILE...
//! ```
//!
//! Prints one JSON line: packets, captured bytes, file bytes, seconds, MB/s (10^6 bytes of file
//! per second) and a checksum of the touched bytes (so the pass cannot be optimised away).

use std::path::PathBuf;
use std::time::Instant;

use tlsdiag::capture::Capture;

fn main() {
    let inputs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if inputs.is_empty() {
        eprintln!("usage: read_floor FILE...");
        std::process::exit(2);
    }
    let started = Instant::now();
    let mut cap = match Capture::open(&inputs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("read_floor: {e}");
            std::process::exit(2);
        }
    };
    let (mut packets, mut bytes, mut touch) = (0u64, 0u64, 0u64);
    while let Some(p) = cap.next_packet() {
        packets += 1;
        bytes += p.data.len() as u64;
        if let (Some(&a), Some(&b)) = (p.data.first(), p.data.last()) {
            touch = touch.wrapping_mul(31).wrapping_add(u64::from(a) << 8 | u64::from(b));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let file_bytes = cap.total_size();
    println!(
        "{{\"packets\": {packets}, \"captured_bytes\": {bytes}, \"file_bytes\": {file_bytes}, \"seconds\": {secs:.6}, \"mb_per_s\": {:.1}, \"touch\": {touch}}}",
        file_bytes as f64 / 1e6 / secs.max(1e-9)
    );
}
