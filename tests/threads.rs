//! `--threads N` splits connections over workers by a hash of their 4-tuple; the report must be
//! the same, byte for byte, as with one thread: the JSON document, and NDJSON, whose lines
//! leave in one order (by the frame that decided each session, then by id) on any number of
//! threads, with or without `--redact`.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn inputs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut roots = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases")];
    if let Some(dir) = common::shared_suite("peer-corpus", "manifest.json", std::env::var_os("CI")) {
        roots.push(dir.join("pcaps"));
    }
    for root in roots {
        let Ok(dirs) = std::fs::read_dir(&root) else { continue };
        for d in dirs.filter_map(|e| e.ok().map(|e| e.path())) {
            if d.is_dir() {
                v.push(d);
            }
        }
    }
    v.sort();
    v
}

fn report(threads: &str, input: &Path) -> String {
    run(&["-f", "json", "--threads", threads], input)
}

fn run(args: &[&str], input: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .args(["analyze", "-p", "443", "-p", "8443", "-p", "3000"])
        .args(args)
        .arg(input)
        .output()
        .expect("run");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_thread_and_many_give_identical_reports() {
    let inputs = inputs();
    assert!(inputs.len() >= 10);
    for input in &inputs {
        let one = report("1", input);
        assert!(one.contains("schema_version"), "{}", input.display());
        for n in ["2", "3"] {
            let many = report(n, input);
            assert!(
                one == many,
                "{}: --threads {n} differs from one thread",
                input.display()
            );
        }
    }
}

#[test]
fn ndjson_lines_are_the_same_on_any_number_of_threads() {
    let inputs = inputs();
    assert!(inputs.len() >= 10);
    let mut lines = 0;
    for input in &inputs {
        for redact in [&[][..], &["--redact"][..]] {
            let args = |n: &'static str| [&["-f", "ndjson", "-j", n][..], redact].concat();
            let one = run(&args("1"), input);
            let last = one.lines().last().unwrap_or_default();
            assert!(last.contains(r#""record":"summary""#), "{}: {last}", input.display());
            lines += one.lines().count();
            for n in ["2", "3"] {
                let many = run(&args(n), input);
                assert!(
                    one == many,
                    "{} {redact:?}: NDJSON with --threads {n} differs from one thread",
                    input.display()
                );
            }
        }
    }
    assert!(lines > 400, "{lines} lines");
}

/// The real packets of `samples/cases/tls-mixed` `copies` times over, each copy with its own
/// client ports and started 20 ms after the previous one, so that hundreds of connections are
/// alive at once; every third copy without its FIN and RST segments (a capture that missed
/// them), so its connections end by a timer at a frame of other connections.
fn crowded(copies: u32) -> Vec<(i64, Vec<u8>)> {
    let one = common::replicated_sample(1);
    let t0 = one[0].0;
    let mut all = Vec::new();
    for i in 0..copies {
        for (ts, data) in &one {
            let mut d = data.clone();
            let t = 14 + ((d[14] & 0x0f) as usize) * 4;
            if i % 3 == 2 && d[t + 13] & 0x05 != 0 {
                continue;
            }
            let (sp, dp) = (
                u16::from_be_bytes([d[t], d[t + 1]]),
                u16::from_be_bytes([d[t + 2], d[t + 3]]),
            );
            let client = |p: u16| (1024 + (u32::from(p) * 7 + i * 61) % 64000) as u16;
            let at = if dp == 443 { t } else { t + 2 };
            let old = u16::from_be_bytes([d[at], d[at + 1]]);
            let new = client(if dp == 443 { sp } else { dp });
            d[at..at + 2].copy_from_slice(&new.to_be_bytes());
            // The TCP checksum still holds (RFC 1624: HC' = ~(~HC + ~m + m')).
            let hc = u16::from_be_bytes([d[t + 16], d[t + 17]]);
            let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            d[t + 16..t + 18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            all.push((ts - t0 + i64::from(i) * 20_000_000, d));
        }
    }
    all.sort_by_key(|p| p.0);
    all
}

/// Over many batches, with sessions decided by timers at other workers' frames, and the
/// reorder window full: one file read in chunks, and the same packets in three files read as
/// one stream.
#[test]
fn ndjson_order_holds_over_many_batches_and_timers() {
    let packets = crowded(250);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("crowded.pcap");
    common::write_pcap(&file, &packets);
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).expect("mkdir");
    for (i, part) in packets.chunks(packets.len().div_ceil(3)).enumerate() {
        common::write_pcap(&parts.join(format!("part{i}.pcap")), part);
    }
    assert!(std::fs::metadata(&file).expect("size").len() > 4 << 20);
    for input in [&file, &parts] {
        for redact in [&[][..], &["--redact"][..]] {
            let args = |n: &'static str| [&["-f", "ndjson", "--idle-timeout", "1", "-j", n][..], redact].concat();
            let one = run(&args("1"), input);
            let ends: Vec<String> = one
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["tlsdiag"]["tcp"]["end"].as_str().map(String::from))
                .collect();
            let timers = ends.iter().filter(|e| e.ends_with("_timeout")).count();
            assert!(one.lines().count() > 1500, "{}", one.lines().count());
            assert!(timers > 500, "{timers} sessions ended by a timer");
            for n in ["2", "3", "4"] {
                let many = run(&args(n), input);
                assert!(
                    one == many,
                    "{} {redact:?}: NDJSON with --threads {n} differs from one thread",
                    input.display()
                );
            }
        }
    }
}
