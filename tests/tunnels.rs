//! Issue 18 on real captures: tunnelled, mirrored and fragmented TLS is found with its inner
//! addresses (never the tunnel's 192.0.2.x), the same on one thread and two; a capture made
//! of several files gives every evidence frame its file and its number there.
//!
//! The captures are made by `samples/scripts/tunnel_cases.sh` (curl and openssl s_server
//! through samples/scripts/relay.py + encap.py, and a router namespace with a small MTU) and
//! `samples/scripts/tcp_cases.sh` (cap-rotated: tcpdump -G rotation).

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn analyze(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .arg("analyze")
        .args(args)
        .output()
        .expect("run tlsdiag");
    let doc = if args.contains(&"json") {
        serde_json::from_slice(&out.stdout).expect("json report")
    } else {
        Value::String(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    (out.status.code().unwrap_or(-1), doc)
}

/// The tunnel, mirror and fragment cases, with their extra arguments.
fn cases() -> Vec<(PathBuf, Vec<String>)> {
    common::sample_cases()
        .into_iter()
        .filter(|(d, _)| {
            let n = d.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("tunnel-") || n.starts_with("mirror-") || n.starts_with("ip-fragments")
        })
        .collect()
}

fn capture_of(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    dir.join(format!("{name}.pcap")).to_string_lossy().into_owned()
}

#[test]
fn tunnelled_sessions_have_their_inner_addresses_on_any_thread_count() {
    let cases = cases();
    assert!(cases.len() >= 14, "the tunnel cases: {}", cases.len());
    for (dir, extra) in &cases {
        let cap = capture_of(dir);
        let mut reports = Vec::new();
        for threads in ["1", "2"] {
            let mut args: Vec<&str> = vec!["-f", "json", "--threads", threads];
            args.extend(extra.iter().map(String::as_str));
            args.push(&cap);
            let (_, doc) = analyze(&args);
            let sessions = doc["sessions"].as_array().expect("sessions").clone();
            assert!(!sessions.is_empty(), "{cap}: no session");
            for s in &sessions {
                for side in ["client", "server"] {
                    let ip = s[side]["ip"].as_str().unwrap();
                    assert!(
                        ip.starts_with("10.77.1.") || ip.starts_with("10.78.") || ip.starts_with("fd77:1::"),
                        "{cap}: {side} {ip} is not an inner address"
                    );
                }
                assert_eq!(s["server"]["port"], 443, "{cap}");
            }
            let verdicts: Vec<(Value, Value, Value)> = sessions
                .iter()
                .map(|s| (s["client"].clone(), s["outcome"].clone(), s["reason"].clone()))
                .collect();
            reports.push((verdicts, doc["capture"]["anomalies"].clone()));
        }
        assert_eq!(reports[0], reports[1], "{cap}: one thread and two disagree");
    }
}

#[test]
fn without_the_vxlan_port_the_tunnel_is_ordinary_udp() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases/tunnel-vxlan-port");
    let cap = capture_of(&dir);
    let (_, doc) = analyze(&["-f", "json", &cap]);
    assert_eq!(
        doc["sessions"].as_array().map(Vec::len),
        Some(0),
        "8472 is not VXLAN unless told"
    );
    let (_, doc) = analyze(&["-f", "json", "--vxlan-port", "8472", &cap]);
    assert_eq!(doc["sessions"].as_array().map(Vec::len), Some(1));
}

/// The time of frame `n` (from 1) of one capture file, as the reports write it.
fn frame_time(file: &str, n: u64) -> String {
    let mut cap = tlsdiag::capture::Capture::open(&[PathBuf::from(file)]).expect("open");
    let mut k = 0;
    while let Some(p) = cap.next_packet() {
        k += 1;
        if k == n {
            return p.ts.rfc3339();
        }
    }
    panic!("{file} has {k} frames, not {n}");
}

#[test]
fn evidence_frames_of_several_files_name_their_file_and_frame() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases/cap-rotated");
    let f1 = dir.join("cap-rotated-1.pcap").to_string_lossy().into_owned();
    let f2 = dir.join("cap-rotated-2.pcap").to_string_lossy().into_owned();
    let (_, doc) = analyze(&["-f", "json", "--detail", "full", &f1, &f2]);
    let mut seen = [0, 0];
    for s in doc["sessions"].as_array().unwrap() {
        for e in s["evidence"].as_array().unwrap() {
            let file = e["file"].as_str().expect("file");
            let n = e["file_frame"].as_u64().expect("file_frame");
            assert_eq!(e["ts"].as_str().unwrap(), frame_time(file, n), "{e}");
            seen[usize::from(file == f2)] += 1;
            // Frames of the second file are numbered after the first file's in the merge.
            assert!(e["frame"].as_u64().unwrap() >= n);
        }
    }
    assert!(seen[0] > 0 && seen[1] > 0, "evidence from both files: {seen:?}");
    // Text and Markdown say it too.
    let (_, text) = analyze(&["--all", &f1, &f2]);
    assert!(text.as_str().unwrap().contains("cap-rotated-2.pcap, frame "), "{text}");
    // One file: frame numbers are the file's; nothing added.
    let (_, one) = analyze(&["-f", "json", &f1]);
    for s in one["sessions"].as_array().unwrap() {
        for e in s["evidence"].as_array().unwrap() {
            assert!(e.get("file").is_none() && e.get("file_frame").is_none(), "{e}");
        }
    }
}

#[test]
fn carves_keep_the_fragments_of_their_sessions() {
    for name in ["ip-fragments", "ip-fragments-v6-overlap"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases").join(name);
        let cap = capture_of(&dir);
        let out = std::env::temp_dir().join(format!("tlsdiag-tunnels-{}-{name}.pcap", std::process::id()));
        let out_s = out.to_string_lossy().into_owned();
        let (_, whole) = analyze(&["-f", "json", "--write-sessions", &out_s, &cap]);
        let (_, carved) = analyze(&["-f", "json", &out_s]);
        let _ = std::fs::remove_file(&out);
        let key = "ip_datagrams_reassembled";
        assert!(whole["capture"]["anomalies"][key].as_u64().unwrap() > 0, "{name}");
        assert_eq!(
            whole["capture"]["anomalies"][key], carved["capture"]["anomalies"][key],
            "{name}: the carve holds every fragment"
        );
        let verdicts = |d: &Value| -> Vec<(Value, Value)> {
            d["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["outcome"].clone(), s["tls"]["version"].clone()))
                .collect()
        };
        assert_eq!(verdicts(&whole), verdicts(&carved), "{name}");
    }
}
