//! One truth in every format: for each session, the JSON document and the NDJSON line state the
//! same facts (id, outcome, cause, reason, side, confidence, frames, start and end, evidence,
//! summary, join keys), on every sample and every peer-corpus capture (a lean line, which leaves
//! some out, is checked on what it states, and every sample again with `--detail full`); and the
//! ids are the sessions' first frames, the same for one thread and several.
#![allow(
    clippy::indexing_slicing,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(input: &Path, args: &[String], format: &str, threads: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .args(["analyze", "-q", "-f", format, "-j", threads])
        .args(args)
        .arg(input)
        .output()
        .expect("run tlsdiag");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The facts of one session that every format must agree on, from the JSON document's session.
fn from_json(s: &Value) -> Value {
    json!({
        "id": s["id"], "outcome": s["outcome"], "cause": s["cause"], "reason": s["reason"],
        "side": s["side"], "confidence": s["confidence"], "first_frame": s["first_frame"],
        "last_frame": s["last_frame"], "start": s["start"], "end": s["end"],
        "duration_ns": (s["duration_ms"].as_f64().expect("duration_ms") * 1e6).round() as u64,
        "evidence": s["evidence"], "summary": s["summary"], "warnings": s["warnings"],
        "community_id": s["network"]["community_id"], "ja3": s["tls"]["client"]["ja3"],
        "ja3s": s["tls"]["server"]["ja3s"], "ja4": s["ja4"], "display_filter": s["display_filter"],
    })
}

/// Facts a lean NDJSON line (an established session without `--detail full`) leaves out: its
/// evidence, summary sentence, display filter and end (`@timestamp` + `event.duration`).
const LEAN_LEAVES_OUT: [&str; 4] = ["evidence", "summary", "display_filter", "end"];

/// Whether an NDJSON session line is lean.
fn is_lean(l: &Value) -> bool {
    l["tlsdiag"]["summary"].is_null()
}

/// The same facts from an NDJSON session line (a lean line's first frame is its id, its start
/// is `@timestamp`).
fn from_ndjson(l: &Value) -> Value {
    let t = &l["tlsdiag"];
    let lean = is_lean(l);
    json!({
        "id": t["id"], "outcome": t["outcome"], "cause": t["cause"], "reason": t["reason"],
        "side": t["side"], "confidence": t["confidence"],
        "first_frame": if lean { &t["id"] } else { &t["first_frame"] },
        "last_frame": t["last_frame"],
        "start": if lean { &l["@timestamp"] } else { &l["event"]["start"] },
        "end": l["event"]["end"], "duration_ns": l["event"]["duration"],
        "lean": lean,
        "evidence": t["evidence"], "summary": l["message"],
        // A lean line leaves out an empty list of warnings.
        "warnings": if lean && t["warnings"].is_null() { json!([]) } else { t["warnings"].clone() },
        "community_id": l["network"]["community_id"], "ja3": l["tls"]["client"]["ja3"],
        "ja3s": l["tls"]["server"]["ja3s"], "ja4": t["ja4"], "display_filter": t["display_filter"],
    })
}

/// Compares the two formats on one input; returns the sessions compared and the differences.
fn compare(input: &Path, args: &[String]) -> (usize, Vec<String>) {
    let doc: Value = serde_json::from_str(&run(input, args, "json", "1")).expect("JSON document");
    let mut from_doc: Vec<Value> = doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(from_json)
        .collect();
    let mut from_lines: Vec<Value> = run(input, args, "ndjson", "1")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("NDJSON line"))
        .filter(|l| l["tlsdiag"]["record"] == "session")
        .map(|l| from_ndjson(&l))
        .collect();
    // NDJSON lines come as sessions are reported; the document is in capture order.
    from_lines.sort_by_key(|v| v["id"].as_u64());
    from_doc.sort_by_key(|v| v["id"].as_u64());
    let name = input.display().to_string();
    let mut diffs = Vec::new();
    if from_doc.len() != from_lines.len() {
        diffs.push(format!(
            "{name}: {} sessions in JSON, {} in NDJSON",
            from_doc.len(),
            from_lines.len()
        ));
    }
    for (a, b) in from_doc.iter().zip(&from_lines) {
        let lean = b["lean"] == true;
        if lean && a["outcome"] != "established" {
            diffs.push(format!(
                "{name} session {}: a lean line for a {} session",
                a["id"], a["outcome"]
            ));
        }
        for (k, v) in a.as_object().unwrap() {
            if lean && LEAN_LEAVES_OUT.contains(&k.as_str()) {
                continue;
            }
            if b[k] != *v {
                diffs.push(format!("{name} session {}: {k}: JSON {v} NDJSON {}", a["id"], b[k]));
            }
        }
    }
    (from_doc.len(), diffs)
}

#[test]
fn json_and_ndjson_state_the_same_facts_on_every_sample() {
    let (mut sessions, mut diffs) = (0, Vec::new());
    for (case, args) in common::sample_cases() {
        let (n, d) = compare(&case, &args);
        sessions += n;
        diffs.extend(d);
        // Every session in full: nothing left out, every fact compared.
        let full: Vec<String> = args.iter().cloned().chain(["--detail".into(), "full".into()]).collect();
        diffs.extend(compare(&case, &full).1);
    }
    println!("{sessions} sessions compared");
    assert!(sessions > 80, "{sessions} sessions");
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

#[test]
fn json_and_ndjson_state_the_same_facts_on_the_peer_corpus() {
    // A plain clone has no ../shared: the test prints why it skips and passes; where CI is
    // set (as .ci/run runs) a missing suite fails the test instead.
    let Some(corpus) = common::shared_suite("peer-corpus", "manifest.json", std::env::var_os("CI")) else {
        return;
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![corpus.join("pcaps")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("pcaps").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let (mut sessions, mut diffs) = (0, Vec::new());
    for f in &files {
        let (n, d) = compare(f, &[]);
        sessions += n;
        diffs.extend(d);
    }
    println!("{} captures, {sessions} sessions compared", files.len());
    assert!(
        files.len() > 50 && sessions > 100,
        "{} files, {sessions} sessions",
        files.len()
    );
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

#[test]
fn ids_follow_first_packets_whatever_the_threads() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases/tls-mixed");
    let ids = |threads: &str| -> Vec<(u64, u64)> {
        let doc: Value = serde_json::from_str(&run(&case, &[], "json", threads)).expect("JSON");
        doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_u64().unwrap(), s["first_frame"].as_u64().unwrap()))
            .collect()
    };
    let one = ids("1");
    assert!(one.len() > 5, "{} sessions", one.len());
    // Each session's id is its first frame: unique, in the order of first packets.
    for w in &one {
        assert_eq!(w.0, w.1, "{one:?}");
    }
    assert!(one.windows(2).all(|w| w[0].1 < w[1].1), "{one:?}");
    assert_eq!(ids("2"), one, "two threads number the sessions as one does");
    // The NDJSON lines (reported as connections end) carry the same numbers.
    let mut lines: Vec<(u64, u64)> = run(&case, &[], "ndjson", "1")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["tlsdiag"]["record"] == "session")
        .map(|l| {
            let first = &from_ndjson(&l)["first_frame"];
            (l["tlsdiag"]["id"].as_u64().unwrap(), first.as_u64().unwrap())
        })
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, one);
}
