//! Helpers shared by the integration tests (each test binary uses some of them).
#![allow(dead_code, reason = "every test binary compiles this module and uses a part of it")]
#![allow(
    clippy::indexing_slicing,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use tlsdiag::capture::{Capture, LinkType};

/// Every case directory under `samples/cases/` with the extra arguments its expected.json
/// passes (`args`), in name order.
pub fn sample_cases() -> Vec<(PathBuf, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases");
    let mut v: Vec<(PathBuf, Vec<String>)> = std::fs::read_dir(root)
        .expect("cases")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.join("expected.json").is_file())
        .map(|d| {
            let exp: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).expect("read")).expect("json");
            let args = exp["args"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default();
            (d, args)
        })
        .collect();
    v.sort();
    v
}

/// The real packets of `samples/cases/tls-mixed` (time in ns, Ethernet frame) `copies` times,
/// each copy with the client's port shifted and moved on in time, in time order: many real
/// sessions, one alive at a time.
pub fn replicated_sample(copies: u32) -> Vec<(i64, Vec<u8>)> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases/tls-mixed");
    let mut packets: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut cap = Capture::open(&[sample]).expect("sample");
    while let Some(p) = cap.next_packet() {
        assert_eq!(p.link, LinkType::ETHERNET);
        packets.push((p.ts.0, p.data.to_vec()));
    }
    let t0 = packets[0].0;
    let span = packets.last().map(|p| p.0 - t0).unwrap_or(0) + 1_000_000_000;
    let mut out = Vec::with_capacity(packets.len() * copies as usize);
    for i in 0..copies {
        for (ts, data) in &packets {
            let mut d = data.clone();
            // Ethernet + IPv4 (IHL from the header): shift the client's port (the non-443 one).
            let ihl = ((d[14] & 0x0f) as usize) * 4;
            let t = 14 + ihl;
            let (sp, dp) = (
                u16::from_be_bytes([d[t], d[t + 1]]),
                u16::from_be_bytes([d[t + 2], d[t + 3]]),
            );
            let shift = |p: u16| 1024 + ((p as u32 + i * 97) % 60000) as u16;
            if dp == 443 {
                d[t..t + 2].copy_from_slice(&shift(sp).to_be_bytes());
            } else {
                d[t + 2..t + 4].copy_from_slice(&shift(dp).to_be_bytes());
            }
            out.push((ts - t0 + span * i as i64 + t0, d));
        }
    }
    out
}

/// Writes Ethernet frames (time in ns, bytes) as a pcap file.
pub fn write_pcap(path: &Path, packets: &[(i64, Vec<u8>)]) {
    use tlsdiag::capture::{Packet, Timestamp};
    let file = std::fs::File::create(path).expect("create");
    let mut w = tlsdiag::report::carve::PcapWriter::new(std::io::BufWriter::new(file));
    for (ts, d) in packets {
        let p = Packet {
            ts: Timestamp(*ts),
            link: LinkType::ETHERNET,
            data: d,
            orig_len: d.len() as u32,
        };
        assert!(w.write(&p).expect("write"));
    }
    w.finish().expect("flush");
}

/// A conformance suite in `../shared/` beside the repository (e.g. `peer-corpus`). `ci` is the
/// calling test's `CI` variable (`std::env::var_os("CI")`, read where the test is, so each
/// conformance test says it depends on it). A plain clone has nothing beside it: without `CI`
/// the test is told to skip (`None`, with the reason printed); with `CI` set and non-empty, as
/// `.ci/run` sets it, a missing suite fails the test.
pub fn shared_suite(name: &str, marker: &str, ci: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(name);
    if dir.join(marker).is_file() {
        return Some(dir);
    }
    let why = format!(
        "{} not found (expected ../shared/{name}/{marker} beside the repository)",
        dir.display()
    );
    skip_or_fail(&why, ci.is_some_and(|v| !v.is_empty()));
    None
}

/// Whether the `CI` environment variable is set (non-empty), as `.ci/run` sets it: a test that
/// lacks a suite or a tool fails there instead of skipping.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A tool a test needs is missing (`why`): fails where CI is set, else prints why it skips.
pub fn skip_unless_ci(why: &str) {
    skip_or_fail(why, in_ci());
}

/// Fails with `why` where CI is set, else prints why the test skips.
fn skip_or_fail(why: &str, ci: bool) {
    assert!(
        !ci,
        "{why}; CI is set, so this test must run (.ci/run installs its tools; ../shared must be beside the clone)"
    );
    println!("note: skipped: {why}; set CI=1 to make this an error");
}

/// `tlsdiag analyze ARGS -o - INPUT`, expecting a report (exit 0 or 1); its standard output.
pub fn analyze_stdout(input: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .arg("analyze")
        .args(args)
        .args(["-o", "-"])
        .arg(input)
        .output()
        .expect("run");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
