//! Memory grows with the connections alive at once, not with the capture: the same traffic
//! pattern twice as long must not need twice the memory.
//!
//! The capture is the real sessions of `samples/cases/tls-mixed` replayed many times with new
//! client ports and later times (one connection alive at a time), written to a temporary file and
//! analyzed in this process through the library; the process's peak resident memory (VmHWM) is
//! read after the 1x run and after the 2x run.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};
use tlsdiag::capture::{Capture, LinkType, Packet, Timestamp};
use tlsdiag::pipeline::{Analyzer, Options};
use tlsdiag::report::carve::PcapWriter;
use tlsdiag::report::digest::Digest;
use tlsdiag::report::model::Counts;

/// Peak resident set size of this process in KiB (Linux), if known.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes the sample's packets `copies` times, each copy with client ports shifted and times
/// moved on, as a classic pcap.
fn replicate(copies: u32, out: &Path) -> u64 {
    let mut w = PcapWriter::new(std::io::BufWriter::new(std::fs::File::create(out).expect("create")));
    let mut bytes = 0u64;
    for (ns, d) in common::replicated_sample(copies) {
        let p = Packet {
            ts: Timestamp(ns),
            link: LinkType::ETHERNET,
            data: &d,
            orig_len: d.len() as u32,
        };
        assert!(w.write(&p).expect("write"));
        bytes += 16 + d.len() as u64;
    }
    w.finish().expect("flush");
    bytes
}

/// Analyzes a file as `tlsdiag analyze` (text) does and returns the session count.
fn analyze(path: &Path) -> Counts {
    let mut cap = Capture::open(&[path.to_path_buf()]).expect("open");
    let mut analyzer = Analyzer::new(Options::default(), true);
    let mut counts = Counts::default();
    let mut digest = Digest::new(0);
    let mut sink = |s: tlsdiag::report::model::SessionReport| {
        counts.add(&s);
        digest.add(&s);
    };
    while let Some(p) = cap.next_packet() {
        analyzer.packet(&p, &mut sink);
    }
    analyzer.finish(&mut sink);
    counts
}

#[test]
fn doubling_the_capture_does_not_double_the_memory() {
    let dir = std::env::temp_dir().join(format!("tlsdiag-flat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let (one, two): (PathBuf, PathBuf) = (dir.join("x1.pcap"), dir.join("x2.pcap"));
    let b1 = replicate(1500, &one);
    let b2 = replicate(3000, &two);
    assert!(b2 >= 2 * b1 - 1000);
    let Some(start) = vm_hwm_kib() else {
        println!("note: /proc/self/status has no VmHWM here; memory not measured");
        return;
    };
    let c1 = analyze(&one);
    let after1 = vm_hwm_kib().unwrap_or(start);
    let c2 = analyze(&two);
    let after2 = vm_hwm_kib().unwrap_or(after1);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(c1.sessions, 1500 * 8);
    assert_eq!(c2.sessions, 3000 * 8);
    assert_eq!(c2.failed, 2 * c1.failed);
    let grow1 = after1.saturating_sub(start);
    let grow2 = after2.saturating_sub(start);
    println!(
        "capture {} KiB → peak +{grow1} KiB; capture {} KiB → peak +{grow2} KiB",
        b1 / 1024,
        b2 / 1024
    );
    // Twice the capture may not cost more than a quarter more memory (plus 4 MiB of noise).
    assert!(
        grow2 <= grow1 + grow1 / 4 + 4096,
        "memory grew with the capture: +{grow1} KiB then +{grow2} KiB"
    );
}
