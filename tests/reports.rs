//! Reports for tickets and pipelines: Markdown groups and counts, JSON against the committed
//! schema, NDJSON streaming, carve-and-reanalyze, redaction.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn capture_of(case: &str) -> PathBuf {
    let dir = root().join("samples/cases").join(case);
    let mut f: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("case")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".pcap"))
        .collect();
    f.sort();
    f.remove(0)
}

fn run(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsdiag-reports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    dir.join(name)
}

#[test]
fn committed_schema_is_current() {
    let (code, generated) = run(&["schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("docs/schema.json")).expect("docs/schema.json");
    assert!(
        committed == generated,
        "docs/schema.json is out of date: regenerate it with `cargo run -- schema > docs/schema.json`"
    );
}

/// A validator of the committed schema that also checks formats (date-time, ipv4, ipv6).
fn strict_validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("valid schema")
}

#[test]
fn the_schema_rejects_broken_documents() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/schema.json")).expect("schema")).expect("json");
    let validator = strict_validator(&schema);
    let pcap = capture_of("tls-mixed");
    let (_, out) = run(&[
        "analyze",
        "--format",
        "json",
        "--detail",
        "full",
        pcap.to_str().expect("utf8"),
    ]);
    let good: Value = serde_json::from_str(&out).expect("json");
    assert!(validator.is_valid(&good), "the real document must validate");
    type Break = fn(&mut Value);
    let breaks: [(&str, Break); 16] = [
        ("unknown top-level field", |d| d["extra"] = Value::Bool(true)),
        ("unknown session field", |d| d["sessions"][0]["colour"] = "red".into()),
        ("unknown nested field", |d| {
            d["sessions"][0]["client"]["mac"] = "x".into()
        }),
        ("impossible IPv4", |d| {
            d["sessions"][0]["client"]["ip"] = "999.1.1.1".into()
        }),
        ("not an IP", |d| d["sessions"][0]["server"]["ip"] = "localhost".into()),
        ("bogus start", |d| d["sessions"][0]["start"] = "yesterday".into()),
        ("impossible evidence time", |d| {
            d["sessions"][0]["evidence"][0]["ts"] = "2026-13-45T99:00:00Z".into()
        }),
        ("bogus capture time", |d| d["capture"]["first_ts"] = "soon".into()),
        ("unknown outcome", |d| d["sessions"][0]["outcome"] = "maybe".into()),
        ("unknown cause", |d| d["sessions"][1]["cause"] = "network".into()),
        ("unknown reason", |d| {
            d["sessions"][1]["reason"] = "made_up_reason".into()
        }),
        ("unknown confidence", |d| {
            d["sessions"][0]["confidence"] = "certain".into()
        }),
        ("unknown side", |d| d["sessions"][1]["side"] = "router".into()),
        ("id as a string", |d| d["sessions"][0]["id"] = "1".into()),
        ("port out of range", |d| {
            d["sessions"][0]["server"]["port"] = 70000.into()
        }),
        ("missing summary", |d| {
            d["sessions"][0].as_object_mut().expect("object").remove("summary");
        }),
    ];
    for (what, f) in breaks {
        let mut doc = good.clone();
        f(&mut doc);
        assert!(!validator.is_valid(&doc), "the schema accepts a document with {what}");
    }
}

#[test]
fn json_of_every_sample_validates_against_the_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/schema.json")).expect("schema")).expect("json");
    let validator = strict_validator(&schema);
    let mut n = 0;
    for (dir, args) in common::sample_cases() {
        let mut a: Vec<String> = vec!["analyze".into(), "--format".into(), "json".into()];
        a.extend(args);
        a.push(dir.to_string_lossy().into_owned());
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, out) = run(&refs);
        assert!(code == 0 || code == 1, "{}: exit {code}", dir.display());
        let doc: Value = serde_json::from_str(&out).expect("json");
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {}", dir.display(), errors.join("; "));
        n += doc["sessions"].as_array().map(|s| s.len()).unwrap_or(0);
    }
    assert!(n > 70, "only {n} sessions validated");
}

#[test]
fn established_sessions_are_lean_unless_asked_and_failures_full() {
    let pcap = capture_of("tls-mixed");
    let lines = |extra: &[&str]| -> Vec<Value> {
        let mut a = vec!["analyze", "-f", "ndjson"];
        a.extend_from_slice(extra);
        a.push(pcap.to_str().expect("utf8"));
        run(&a)
            .1
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let (lean, full) = (lines(&[]), lines(&["--detail", "full"]));
    assert_eq!(lean.len(), full.len());
    let (mut established, mut failed, mut certs) = (0, 0, 0);
    for (l, f) in lean.iter().zip(&full) {
        let t = &l["tlsdiag"];
        if t["record"] != "session" {
            continue;
        }
        // The same verdict and join ids either way.
        for k in ["id", "outcome", "reason", "ja4", "confidence", "last_frame"] {
            assert_eq!(t[k], f["tlsdiag"][k], "{k}");
        }
        // A lean line leaves out an empty list of warnings; any it has are the full line's.
        let none: Value = serde_json::json!([]);
        let lean_warnings = if t["warnings"].is_null() { &none } else { &t["warnings"] };
        assert_eq!(lean_warnings, &f["tlsdiag"]["warnings"], "warnings");
        for k in ["client", "server", "@timestamp", "network"] {
            assert_eq!(l[k], f[k], "{k}");
        }
        assert_eq!(l["tls"]["client"]["ja3"], f["tls"]["client"]["ja3"]);
        assert_eq!(l["tls"]["server"]["hash"], f["tls"]["server"]["hash"]);
        // Whatever a lean line says, the full line says the same.
        let mut leaves = Vec::new();
        differing_leaves(l, f, "", &mut leaves);
        assert!(leaves.is_empty(), "lean fields not in the full line: {leaves:?}");
        if t["outcome"] == "established" {
            established += 1;
            // Lean: no offered suites, chain, evidence or copies; the leaf's summary stays.
            for absent in [
                &l["tls"]["client"]["supported_ciphers"],
                &t["handshake"]["certificate_chain"],
                &t["handshake"]["supported_groups"],
                &t["evidence"],
                &t["summary"],
                &t["display_filter"],
                &t["first_frame"],
                &l["message"],
                &l["source"],
                &l["event"]["start"],
            ] {
                assert!(absent.is_null(), "{absent} in a lean line");
            }
            // The first frame is the id; start and end are @timestamp and @timestamp + duration.
            assert_eq!(f["tlsdiag"]["first_frame"], t["id"]);
            assert_eq!(f["event"]["start"], l["@timestamp"]);
            assert_eq!(f["event"]["duration"], l["event"]["duration"]);
            if let Some(x) = f["tls"]["server"]["x509"].as_object() {
                let lx = &l["tls"]["server"]["x509"];
                for k in ["serial_number", "not_after", "alternative_names"] {
                    assert_eq!(lx[k], x[k], "the leaf's summary stays: {k}");
                }
                assert_eq!(lx["subject"]["common_name"], x["subject"]["common_name"]);
                assert_eq!(lx["issuer"]["common_name"], x["issuer"]["common_name"]);
                certs += 1;
            }
            assert!(!f["tls"]["client"]["supported_ciphers"].as_array().unwrap().is_empty());
            assert!(!f["tlsdiag"]["evidence"].as_array().unwrap().is_empty());
            let (small, big) = (l.to_string().len(), f.to_string().len());
            assert!(small < 1400 && small * 2 < big, "{small} vs {big} bytes");
        } else {
            failed += 1;
            assert_eq!(l, f, "a failed session is written in full");
        }
    }
    assert!(
        established >= 2 && failed >= 5 && certs >= 1,
        "{established} established ({certs} with a certificate), {failed} failed"
    );
}

/// The leaves of `small` that `big` does not hold with the same value (paths like `/tls/cipher`).
fn differing_leaves(small: &Value, big: &Value, path: &str, out: &mut Vec<String>) {
    match small.as_object() {
        Some(m) => {
            for (k, v) in m {
                differing_leaves(v, &big[k.as_str()], &format!("{path}/{k}"), out);
            }
        }
        None if small != big => out.push(format!("{path}: {small} vs {big}")),
        None => {}
    }
}

#[test]
fn committed_ndjson_schema_is_current() {
    let (code, generated) = run(&["schema", "--ndjson"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("docs/schema-ndjson.json")).expect("docs/schema-ndjson.json");
    assert!(
        generated == committed,
        "docs/schema-ndjson.json is out of date: regenerate it with `cargo run -- schema --ndjson > docs/schema-ndjson.json`"
    );
}

#[test]
fn ndjson_of_every_sample_validates_against_its_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/schema-ndjson.json")).expect("schema"))
            .expect("json");
    let validator = strict_validator(&schema);
    let (mut sessions, mut summaries) = (0, 0);
    for (dir, args) in common::sample_cases() {
        let mut a: Vec<String> = vec!["analyze".into(), "--format".into(), "ndjson".into()];
        a.extend(args);
        a.push(dir.to_string_lossy().into_owned());
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, out) = run(&refs);
        assert!(code == 0 || code == 1, "{}: exit {code}", dir.display());
        for l in out.lines() {
            let line: Value = serde_json::from_str(l).expect("json line");
            let errors: Vec<String> = validator
                .iter_errors(&line)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {}", dir.display(), errors.join("; "));
            match line["tlsdiag"]["record"].as_str() {
                Some("session") => sessions += 1,
                Some("summary") => summaries += 1,
                other => panic!("record {other:?}"),
            }
        }
    }
    assert!(sessions > 70, "only {sessions} session lines validated");
    assert_eq!(summaries, common::sample_cases().len(), "one summary line per run");
    // The schema is strict: a line with an unknown field, a bad address or a bad date fails.
    let (_, out) = run(&[
        "analyze",
        "-f",
        "ndjson",
        capture_of("tls-mixed").to_str().expect("utf8"),
    ]);
    let good: Value = serde_json::from_str(out.lines().next().expect("a line")).expect("json");
    assert!(validator.is_valid(&good));
    for (what, path, value) in [
        ("an unknown top-level field", "/extra", Value::from(1)),
        ("an unknown tlsdiag field", "/tlsdiag/extra", Value::from(1)),
        ("a bad client address", "/client/ip", Value::from("10.0.0.300")),
        ("a bad date", "/@timestamp", Value::from("yesterday")),
        ("an unknown reason", "/tlsdiag/reason", Value::from("because")),
    ] {
        let mut bad = good.clone();
        let (parent, key) = path.rsplit_once('/').expect("path");
        let target = if parent.is_empty() {
            Some(&mut bad)
        } else {
            bad.pointer_mut(parent)
        };
        target
            .expect("parent")
            .as_object_mut()
            .expect("object")
            .insert(key.into(), value);
        assert!(
            !validator.is_valid(&bad),
            "the NDJSON schema accepts a line with {what}"
        );
    }
}

#[test]
fn markdown_groups_failures_with_counts_causes_and_hints() {
    let pcap = capture_of("tls-mixed");
    let (code, md) = run(&["analyze", "--format", "markdown", pcap.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(
        md.starts_with("# TLS handshake failures: 6 of 8 sessions failed"),
        "{md}"
    );
    assert!(md.contains("| Sessions | 8: 2 established, 6 failed, 0 incomplete |"));
    // One table row per (server, SNI, cause, reason) with its count.
    for (cause, reason) in [
        ("certificate", "expired"),
        ("certificate", "unknown_ca"),
        ("certificate", "hostname_mismatch"),
        ("cipher", "no_shared_cipher"),
        ("protocol", "version_mismatch"),
        ("timeout", "server_silent"),
    ] {
        let row = format!("| 127.0.0.1:443 (good.test) | {cause} | `{reason}` | 1 | 1 |");
        assert!(md.contains(&row), "missing row {row}\n{md}");
        assert!(md.contains(&format!("{cause}/{reason} — 127.0.0.1:443 (good.test): 1 session(s)")));
    }
    assert!(md.contains("- **Fix:** Renew the certificate"));
    assert!(md.contains("ERR_CERT_DATE_INVALID"));
    // Every group has a timeline in a fenced block, its failing step marked, and a sequence
    // diagram (Mermaid) whose one crossed arrow is that step.
    assert_eq!(md.matches("```\n  frame").count(), 6);
    assert_eq!(md.matches("<- failed here").count(), 6);
    assert_eq!(md.matches("```mermaid\nsequenceDiagram\n").count(), 6);
    assert!(
        md.contains("    C-xS: 26 (+0.002 s) FAILED HERE, Alert fatal certificate_expired(45)\n"),
        "{md}"
    );
    // Fits a ticket: no table wider than six columns; human units; the file named once.
    for line in md.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count() - 1;
        assert!(cells <= 6, "{cells} columns: {line}");
    }
    assert!(md.contains("| Packets | 94 (23 kB) |"), "{md}");
    assert_eq!(md.matches("tls-mixed.pcap").count(), 1, "{md}");
    // Without diagrams: the same report less the Mermaid blocks.
    let (_, plain) = run(&[
        "analyze",
        "-f",
        "markdown",
        "--no-mermaid",
        pcap.to_str().expect("utf8"),
    ]);
    assert!(!plain.contains("```mermaid") && plain.contains("<- failed here"));
    // No established session shows up as a failure group.
    assert!(!md.contains("| established |"));
}

#[test]
fn markdown_lists_warnings_of_established_sessions() {
    let pcap = capture_of("tls12-warn-expiring");
    let (code, md) = run(&["analyze", "-f", "markdown", pcap.to_str().expect("utf8")]);
    assert_eq!(code, 0);
    assert!(md.contains("No failed TLS session"));
    assert!(md.contains("## Established sessions with warnings"));
    assert!(md.contains("`cert_expiring_soon`"));
}

#[test]
fn ndjson_lines_parse_one_by_one_and_end_with_a_summary() {
    let pcap = capture_of("tls-mixed");
    let (code, out) = run(&["analyze", "--format", "ndjson", pcap.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 9, "8 sessions + summary");
    for l in &lines[..8] {
        assert_eq!(l["tlsdiag"]["record"], "session");
        assert!(l["@timestamp"].is_string() && l["client"]["ip"].is_string() && l["server"]["port"].is_number());
        assert!(l["event"]["outcome"].is_string());
        assert!(l.get("outcome").is_none(), "own fields live under tlsdiag.*");
    }
    let last = &lines[8];
    assert_eq!(last["tlsdiag"]["record"], "summary");
    assert_eq!(last["tlsdiag"]["counts"]["failed"], 6);
    let failures = lines.iter().filter(|l| l["event"]["outcome"] == "failure").count();
    assert_eq!(failures, 6);
}

#[test]
fn ndjson_streams_verdicts_before_the_capture_ends() {
    let pcap = std::fs::read(capture_of("tls-mixed")).expect("read");
    let mut child = bin()
        .args(["analyze", "--format", "ndjson", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Half of the capture: the first sessions are closed in it.
    stdin.write_all(&pcap[..pcap.len() / 2]).expect("write");
    stdin.flush().expect("flush");
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a verdict before the end of input");
    let v: Value = serde_json::from_str(&first).expect("json");
    assert_eq!(v["tlsdiag"]["record"], "session");
    stdin.write_all(&pcap[pcap.len() / 2..]).expect("write");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rest = Vec::new();
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        rest.push(l);
    }
    let status = child.wait().expect("wait");
    reader.join().expect("reader");
    assert_eq!(status.code(), Some(1));
    assert_eq!(rest.len() + 1, 9);
}

/// The records of a classic pcap file, each with its header: (global header, records).
fn pcap_records(pcap: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let le = match pcap[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a classic pcap"),
    };
    let (head, mut rest) = pcap.split_at(24);
    let mut records = Vec::new();
    while rest.len() >= 16 {
        let b: [u8; 4] = rest[8..12].try_into().unwrap();
        let len = if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as usize;
        let (r, tail) = rest.split_at(16 + len);
        records.push(r);
        rest = tail;
    }
    (head, records)
}

/// NDJSON from a pipe: each verdict reaches the reader within 100 ms of the packet that decided
/// it, although the output is buffered and the pipe goes quiet right after that packet (the
/// flusher, not the next packet, sends it). The capture is fed one packet at a time; after each
/// deciding packet (a line's `last_frame` in a first run), the feeder waits for the line.
#[test]
fn ndjson_from_a_pipe_arrives_within_100_ms() {
    let pcap = std::fs::read(capture_of("tls-mixed")).expect("read");
    let spawn = || {
        bin()
            .args(["analyze", "-q", "--format", "ndjson", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    // First run, all at once: the frames that decide a verdict.
    let mut child = spawn();
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = {
        let pcap = pcap.clone();
        std::thread::spawn(move || stdin.write_all(&pcap))
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    feeder.join().expect("feeder").expect("write");
    child.wait().expect("wait");
    let deciding: std::collections::BTreeSet<u64> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|v| v["tlsdiag"]["record"] == "session")
        .map(|v| v["tlsdiag"]["last_frame"].as_u64().expect("last_frame"))
        .collect();
    assert!(deciding.len() >= 6, "{deciding:?}");

    // Second run, one packet at a time, pausing at most a second after each deciding packet.
    let mut child = spawn();
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let (head, records) = pcap_records(&pcap);
    stdin.write_all(head).expect("write");
    let mut delays = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let frame = i as u64 + 1;
        stdin.write_all(r).expect("write");
        stdin.flush().expect("flush");
        let written = Instant::now();
        if let Ok((_, l)) = rx.try_recv() {
            panic!("a line before its deciding packet was written (frame {frame}): {l}");
        }
        if !deciding.contains(&frame) {
            continue;
        }
        let (at, line) = rx
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_else(|_| panic!("no verdict within a second of frame {frame}"));
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["tlsdiag"]["last_frame"], frame, "{line}");
        delays.push(at.duration_since(written));
    }
    drop(stdin);
    let rest: Vec<(Instant, String)> = rx.iter().collect();
    reader.join().expect("reader");
    child.wait().expect("wait");
    assert_eq!(rest.len(), 1, "only the summary line is left");
    let last: Value = serde_json::from_str(&rest[0].1).expect("json");
    assert_eq!(last["tlsdiag"]["record"], "summary");
    println!("delays from the deciding packet to the line: {delays:?}");
    assert_eq!(delays.len(), deciding.len());
    let worst = delays.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_millis(100),
        "a verdict waited {worst:?}: {delays:?}"
    );
}

/// (client port, outcome, reason) of every session.
fn verdicts(doc: &Value) -> Vec<(u64, String, String)> {
    let mut v: Vec<(u64, String, String)> = doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            (
                s["client"]["port"].as_u64().unwrap_or(0),
                s["outcome"].as_str().unwrap_or("").to_string(),
                s["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn carved_failures_reanalyze_to_the_same_failures_and_nothing_else() {
    for case in [
        "tls-mixed",
        "tcp-syn-unanswered-v4",
        "cap-pcapng-two-interfaces",
        "tcp-stall-pmtu",
    ] {
        let pcap = capture_of(case);
        let carved = tmp(&format!("{case}-failed.pcap"));
        let (code, out) = run(&[
            "analyze",
            "-f",
            "json",
            "--write-failed",
            carved.to_str().expect("utf8"),
            pcap.to_str().expect("utf8"),
        ]);
        assert_eq!(code, 1, "{case}");
        let doc: Value = serde_json::from_str(&out).expect("json");
        let want: Vec<_> = verdicts(&doc).into_iter().filter(|v| v.1 == "failed").collect();
        let (code2, out2) = run(&["analyze", "-f", "json", carved.to_str().expect("utf8")]);
        assert_eq!(code2, 1, "{case}: carved file");
        let again = verdicts(&serde_json::from_str(&out2).expect("json"));
        assert_eq!(again, want, "{case}: the carved file holds exactly the failed sessions");
    }
}

#[test]
fn carving_selected_sessions_by_filter() {
    let pcap = capture_of("tls-mixed");
    let carved = tmp("cert-failures.pcap");
    let (code, _) = run(&[
        "analyze",
        "--cause",
        "certificate",
        "--write-sessions",
        carved.to_str().expect("utf8"),
        pcap.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1);
    let (_, out) = run(&["analyze", "-f", "json", carved.to_str().expect("utf8")]);
    let doc: Value = serde_json::from_str(&out).expect("json");
    let reasons: Vec<String> = verdicts(&doc).into_iter().map(|v| v.2).collect();
    let mut sorted = reasons.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["expired", "hostname_mismatch", "unknown_ca"]);
}

#[test]
fn filters_select_and_are_validated() {
    let pcap = capture_of("tls-mixed");
    let p = pcap.to_str().expect("utf8");
    let (_, out) = run(&["analyze", "-f", "json", "--outcome", "established", p]);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["counts"]["sessions"], 2);
    assert_eq!(doc["counts"]["failed"], 0);
    let (code, out) = run(&[
        "analyze",
        "-f",
        "json",
        "--reason",
        "server_silent,expired",
        "--server",
        "127.0.0.1:443",
        p,
    ]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["counts"]["failed"], 2);
    assert_eq!(
        doc["capture"]["filter"],
        "reason=server_silent,expired server=127.0.0.1:443"
    );
    let (_, out) = run(&["analyze", "-f", "json", "--sni", "*.nowhere.test", p]);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["counts"]["sessions"], 0);
    let bad = bin().args(["analyze", "--cause", "certs", p]).output().expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown cause 'certs'"));
}

#[test]
fn redaction_leaves_no_client_address_in_any_output() {
    // Client 10.77.x.1 and server 10.77.x.2 live in namespaces, so the two differ.
    for case in ["tcp-server-silent", "cap-pcapng-two-interfaces", "tcp-ok-v6"] {
        let pcap = capture_of(case);
        let p = pcap.to_str().expect("utf8");
        let (_, plain) = run(&["analyze", "-f", "json", p]);
        let doc: Value = serde_json::from_str(&plain).expect("json");
        let clients: Vec<String> = doc["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["client"]["ip"].as_str().unwrap_or("").to_string())
            .collect();
        let server = doc["sessions"][0]["server"]["ip"].as_str().unwrap_or("").to_string();
        assert!(!clients.is_empty());
        for format in ["text", "json", "ndjson", "markdown"] {
            let (_, out) = run(&["analyze", "--all", "--redact", "-f", format, p]);
            for c in &clients {
                assert!(!out.contains(c.as_str()), "{case} {format}: client {c} leaked");
            }
            if format != "markdown" {
                // Markdown lists failures only; the others list every session.
                assert!(out.contains(&server), "{case} {format}: server address must stay");
            }
        }
    }
    // Stable pseudonyms: the same client gets the same pseudonym within a report.
    let (_, out) = run(&[
        "analyze",
        "-f",
        "json",
        "--redact",
        capture_of("tls-mixed").to_str().expect("utf8"),
    ]);
    let doc: Value = serde_json::from_str(&out).expect("json");
    let ips: std::collections::BTreeSet<&str> = doc["sessions"]
        .as_array()
        .expect("s")
        .iter()
        .filter_map(|s| s["client"]["ip"].as_str())
        .collect();
    assert_eq!(ips.len(), 1, "one client in tls-mixed, one pseudonym: {ips:?}");
    assert_eq!(doc["capture"]["redacted"], true);
}

#[test]
fn report_file_reads_back() {
    let out = tmp("r.md");
    let (code, stdout) = run(&[
        "analyze",
        "-f",
        "markdown",
        "-o",
        out.to_str().expect("utf8"),
        capture_of("tls-mixed").to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    let mut s = String::new();
    std::fs::File::open(Path::new(&out))
        .expect("open")
        .read_to_string(&mut s)
        .expect("read");
    assert!(s.contains("## Failures"));
}

#[test]
fn a_filtered_report_names_its_filter_and_both_counts() {
    let pcap = capture_of("tls-mixed");
    let p = pcap.to_str().expect("utf8");
    let (code, text) = run(&["analyze", "--outcome", "failed", p]);
    assert_eq!(code, 1);
    assert!(
        text.starts_with("tlsdiag: 6 of 8 TLS session(s) selected by outcome=failed,"),
        "{text}"
    );
    let (_, md) = run(&["analyze", "-f", "markdown", "--cause", "certificate", p]);
    assert!(
        md.starts_with("# TLS handshake failures: 3 selected of 8 sessions (6 failed in all), 3 of them failed"),
        "{md}"
    );
    let (_, json) = run(&["analyze", "-f", "json", "--outcome", "established", p]);
    let doc: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(doc["capture"]["filter"], "outcome=established");
    assert_eq!(doc["capture"]["sessions_total"], 8);
    assert_eq!(doc["capture"]["failed_total"], 6);
    assert_eq!(doc["counts"]["sessions"], 2);
    // Unfiltered: no totals, the counts are the capture's.
    let (_, json) = run(&["analyze", "-f", "json", p]);
    let doc: Value = serde_json::from_str(&json).expect("json");
    assert!(doc["capture"]["sessions_total"].is_null());
}

#[test]
fn text_blocks_start_with_the_failing_step_and_do_not_contradict_themselves() {
    let pcap = capture_of("tls-mixed");
    let (_, text) = run(&["analyze", pcap.to_str().expect("utf8")]);
    assert!(
        text.contains(
            "── Frame 26 (client → server): Alert fatal certificate_expired(45) — FAILED certificate/expired ──"
        ),
        "{text}"
    );
    // The silent server: its block names the unanswered ClientHello and says who went silent,
    // not "ended by server" above "the client … closed the connection".
    let block = text
        .split("\n\n")
        .find(|b| b.contains("FAILED timeout/server_silent"))
        .expect("server_silent block");
    assert!(
        block.starts_with("── Frame 64 (client → server) unanswered: ClientHello"),
        "{block}"
    );
    assert!(
        block.contains("server went silent") && !block.contains("ended by server"),
        "{block}"
    );
    // A refusal is ended by the server's RST, not a silence.
    let (_, text) = run(&["analyze", capture_of("tcp-refused").to_str().expect("utf8")]);
    assert!(text.contains("── Frame 2 (server → client): RST — FAILED timeout/connection_refused ──"));
    assert!(
        text.contains("ended by server") && !text.contains("went silent"),
        "{text}"
    );
}

/// The text report's "Top failing servers" counts, per server and SNI, what the JSON document
/// lists: failed and total sessions, labelled `ip:port (SNI)` (IPv6 in brackets).
#[test]
fn top_failing_servers_count_what_the_json_document_lists() {
    let cases: Vec<String> = [
        "tls-mixed",
        "starttls-smtp-refused",
        "tcp-forged-sni",
        "tcp-syn-unanswered-v6",
    ]
    .iter()
    .map(|c| root().join("samples/cases").join(c).to_string_lossy().into_owned())
    .collect();
    let args: Vec<&str> = cases.iter().map(String::as_str).collect();
    let (_, json) = run(&[&["analyze", "-f", "json"], args.as_slice()].concat());
    let doc: Value = serde_json::from_str(&json).expect("json");
    let mut want: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for s in doc["sessions"].as_array().expect("sessions") {
        let ip = s["server"]["ip"].as_str().expect("ip");
        let mut label = if ip.contains(':') {
            format!("[{ip}]:{}", s["server"]["port"])
        } else {
            format!("{ip}:{}", s["server"]["port"])
        };
        if let Some(sni) = s["tls"]["client"]["server_name"].as_str() {
            label.push_str(&format!(" ({sni})"));
        }
        let e = want.entry(label).or_default();
        e.0 += u64::from(s["outcome"] == "failed");
        e.1 += 1;
    }
    let mut want: Vec<(String, u64, u64)> = want
        .into_iter()
        .filter(|(_, (f, _))| *f > 0)
        .map(|(l, (f, t))| (l, f, t))
        .collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert!(want.len() >= 3, "{want:?}");
    assert!(want.iter().any(|w| w.0.starts_with('[')), "an IPv6 server: {want:?}");

    let (_, text) = run(&[&["analyze"], args.as_slice()].concat());
    let got: Vec<(String, u64, u64)> = text
        .lines()
        .skip_while(|l| *l != "Top failing servers:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (label, counts) = l.trim().rsplit_once("  ").expect("label and counts");
            let (f, t) = counts.trim().split_once(" failed of ").expect("counts");
            (
                label.trim().to_string(),
                f.parse().expect("failed"),
                t.parse().expect("total"),
            )
        })
        .collect();
    assert_eq!(got, want);
}
