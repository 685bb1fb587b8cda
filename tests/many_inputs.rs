//! A directory of thousands of captures is one capture, read with a bounded number of open
//! files and bounded memory; an input that cannot be read is said on stderr and in the exit
//! status.
//!
//! The captures are the real packets of `samples/cases/tls-mixed`, replayed with shifted client
//! ports and later times, one packet per file, the files named in an order unrelated to time.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sample_packets() -> Vec<(i64, Vec<u8>)> {
    common::replicated_sample(1)
}

/// Runs `tlsdiag analyze --format json -o REPORT INPUT` under `ulimit -n NOFILE`, polling the
/// process's peak resident memory; returns (exit code, stderr, report, peak KiB).
fn run_limited(input: &Path, report: &Path, nofile: u32) -> (Option<i32>, String, serde_json::Value, u64) {
    let script = format!("ulimit -n {nofile} && exec \"$0\" analyze --format json -j 1 -o \"$1\" \"$2\"",);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_tlsdiag"))
        .arg(report)
        .arg(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let status_path = format!("/proc/{}/status", child.id());
    let started = Instant::now();
    let mut peak = 0u64;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "tlsdiag still running after 120 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).expect("stderr");
    let doc = std::fs::read(report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status.code(), err, doc, peak)
}

/// (client port, outcome, cause, reason) of every session, in report order.
fn verdicts(doc: &serde_json::Value) -> Vec<String> {
    doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {}",
                s["client"]["port"], s["outcome"], s["cause"], s["reason"]
            )
        })
        .collect()
}

#[test]
fn ten_thousand_captures_in_a_directory_under_a_low_open_file_limit() {
    let dir = std::env::temp_dir().join(format!("tlsdiag-many-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let caps = dir.join("captures");
    std::fs::create_dir_all(&caps).expect("tmp");
    let one = sample_packets().len() as u32;
    let packets = common::replicated_sample(10_000u32.div_ceil(one));
    let files = packets.len();
    assert!(files >= 10_000);
    // One packet per file, named in an order unrelated to time (a multiplicative scramble).
    for (i, p) in packets.iter().enumerate() {
        let name = (i as u64 * 7919) % files as u64;
        common::write_pcap(&caps.join(format!("part-{name:06}.pcap")), std::slice::from_ref(p));
    }
    let whole = dir.join("whole.pcap");
    common::write_pcap(&whole, &packets);

    let (code_whole, err_whole, doc_whole, _) = run_limited(&whole, &dir.join("whole.json"), 256);
    let (code, err, doc, peak) = run_limited(&caps, &dir.join("dir.json"), 256);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{files} captures under ulimit -n 256: exit {code:?}, peak {} MiB",
        peak / 1024
    );
    assert!(matches!(code_whole, Some(0 | 1)), "{err_whole}");
    assert_eq!(code, code_whole, "{err}");
    assert_eq!(doc["capture"]["packets"], doc_whole["capture"]["packets"]);
    assert_eq!(doc["capture"]["files"].as_array().map(Vec::len), Some(files));
    let (got, want) = (verdicts(&doc), verdicts(&doc_whole));
    assert_eq!(got.len(), want.len());
    assert!(
        want.iter()
            .any(|v| v.contains("\"failed\" \"certificate\" \"expired\"")),
        "{want:?}"
    );
    assert!(got == want, "the directory's verdicts differ from the single file's");
    assert!(!err.contains("skipped"), "{err}");
    assert!(peak < 200 * 1024, "peak memory {} MiB", peak / 1024);
}

/// Captures that all overlap in time (one per mirrored port, say) cannot be read one or two at
/// a time: under an open-file limit lower than the number the merge would open, every one is
/// still read, none skipped, with the same verdicts as the same packets in one file.
#[test]
fn overlapping_captures_under_an_open_file_limit_below_the_merge_cap() {
    let dir = std::env::temp_dir().join(format!("tlsdiag-overlap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let caps = dir.join("captures");
    std::fs::create_dir_all(&caps).expect("tmp");
    let one = sample_packets();
    let copies = 300;
    let packets = common::replicated_sample(copies);
    let mut files: Vec<Vec<(i64, Vec<u8>)>> = Vec::new();
    for (k, copy) in packets.chunks(one.len()).enumerate() {
        // Each copy back at the original times: every file overlaps every other.
        let shift = copy[0].0 - one[0].0;
        let copy: Vec<(i64, Vec<u8>)> = copy.iter().map(|(t, d)| (t - shift, d.clone())).collect();
        common::write_pcap(&caps.join(format!("mirror-{k:03}.pcap")), &copy);
        files.push(copy);
    }
    let mut whole: Vec<(i64, Vec<u8>)> = files.concat();
    whole.sort_by_key(|p| p.0);
    common::write_pcap(&dir.join("whole.pcap"), &whole);

    let (code_whole, err_whole, doc_whole, _) = run_limited(&dir.join("whole.pcap"), &dir.join("whole.json"), 1024);
    // 64 descriptors: fewer than two per input for the merge's usual 64 open inputs.
    let (code, err, doc, _) = run_limited(&caps, &dir.join("dir.json"), 64);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(code_whole, Some(0 | 1)), "{err_whole}");
    assert!(
        !err.contains("skipped") && !err.contains("Too many open files"),
        "{err}"
    );
    assert_eq!(code, code_whole, "{err}");
    assert_eq!(doc["capture"]["files"].as_array().map(Vec::len), Some(copies as usize));
    assert_eq!(doc["capture"]["packets"], doc_whole["capture"]["packets"]);
    let (mut got, mut want) = (verdicts(&doc), verdicts(&doc_whole));
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the directory's verdicts differ from the single file's");
}

#[test]
fn an_unreadable_capture_in_a_directory_is_an_error_after_the_report() {
    let dir = std::env::temp_dir().join(format!("tlsdiag-unreadable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let caps = dir.join("captures");
    std::fs::create_dir_all(&caps).expect("tmp");
    let packets = sample_packets();
    let half = packets.len() / 2;
    common::write_pcap(&caps.join("a.pcap"), &packets[..half]);
    common::write_pcap(&caps.join("c.pcap"), &packets[half..]);
    // A classic pcap magic and then nothing: a capture that cannot be read at all.
    std::fs::write(caps.join("b.pcap"), [0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).expect("write");
    std::fs::write(caps.join("notes.txt"), "not a capture\n").expect("write");
    let (code, err, doc, _) = run_limited(&caps, &dir.join("r.json"), 256);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("b.pcap")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("tlsdiag: error:"), "{err}");
    assert!(!err.contains("notes.txt"), "{err}");
    // The readable captures were analyzed whole: every packet of the sample.
    assert_eq!(doc["capture"]["packets"].as_u64(), Some(packets.len() as u64));
    let problems = doc["capture"]["input_problems"].to_string();
    assert!(problems.contains("b.pcap"), "{problems}");
}
