//! The command line as a user runs it: inputs of every kind, errors, exit statuses.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
}

fn sample(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases").join(case);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("case")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".pcap"))
        .collect();
    files.sort();
    files.into_iter().next().expect("a capture in the case")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsdiag-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

/// (exit code, stdout, stderr)
fn run(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = bin()
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(data) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(data).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The verdicts of a JSON report, as comparable lines.
fn verdicts(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    v["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {}",
                s["client"]["port"], s["outcome"], s["reason"], s["first_frame"]
            )
        })
        .collect()
}

#[test]
fn unreadable_inputs_exit_2_with_one_line_naming_the_file() {
    let missing = tmp("does-not-exist.pcap");
    let (code, out, err) = run(&["analyze", missing.to_str().expect("utf8")], None);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("does-not-exist.pcap") && err.contains("no such file"),
        "{err}"
    );

    let html = tmp("page.pcap");
    std::fs::write(&html, "<!DOCTYPE html><html><body>login</body></html>").expect("write");
    let (code, _, err) = run(&["analyze", html.to_str().expect("utf8")], None);
    assert_eq!(code, 2);
    assert!(err.contains("page.pcap") && err.contains("HTML"), "{err}");

    let empty = tmp("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let (code, _, err) = run(&["analyze", empty.to_str().expect("utf8")], None);
    assert_eq!(code, 2);
    assert!(err.contains("empty"), "{err}");

    let gz_text = tmp("notes.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"just some notes, not a capture\n").expect("gz");
    std::fs::write(&gz_text, enc.finish().expect("gz")).expect("write");
    let (code, _, err) = run(&["analyze", gz_text.to_str().expect("utf8")], None);
    assert_eq!(code, 2);
    assert!(err.contains("gzip of text"), "{err}");
}

#[test]
fn gzip_stdin_and_plain_give_the_same_verdicts() {
    let pcap = sample("tls-mixed");
    let p = pcap.to_str().expect("utf8");
    let (code, plain, _) = run(&["analyze", "--format", "json", p], None);
    assert_eq!(code, 1, "tls-mixed has failures");
    let bytes = std::fs::read(&pcap).expect("read");
    let gz = tmp("mixed.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).expect("gz");
    std::fs::write(&gz, enc.finish().expect("gz")).expect("write");
    let (code_gz, gzipped, _) = run(&["analyze", "--format", "json", gz.to_str().expect("utf8")], None);
    let (code_in, stdin, _) = run(&["analyze", "--format", "json", "-"], Some(&bytes));
    assert_eq!((code_gz, code_in), (1, 1));
    assert!(!verdicts(&plain).is_empty());
    assert_eq!(verdicts(&plain), verdicts(&gzipped));
    assert_eq!(verdicts(&plain), verdicts(&stdin));
}

#[test]
fn truncated_file_is_counted_and_analyzed_up_to_the_cut() {
    let pcap = sample("tls-mixed");
    let bytes = std::fs::read(&pcap).expect("read");
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 37]).expect("write");
    let (code, out, err) = run(&["analyze", "--format", "json", cut.to_str().expect("utf8")], None);
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["capture"]["anomalies"]["capture_truncated"], 1, "{out}");
    assert!(err.contains("cut short"), "{err}");
    assert!(v["counts"]["sessions"].as_u64().unwrap_or(0) >= 7);
}

#[test]
fn output_file_and_exit_status_follow_the_verdicts() {
    let ok = sample("tls13-ok-openssl");
    let out = tmp("report.json");
    let (code, stdout, _) = run(
        &[
            "analyze",
            "-f",
            "json",
            "-o",
            out.to_str().expect("utf8"),
            ok.to_str().expect("utf8"),
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(stdout.is_empty());
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(doc["schema_version"], "1.0");
    assert_eq!(doc["counts"]["established"], 1);
}

#[test]
fn broken_pipe_is_not_an_error() {
    // Every sample capture as one input: far more JSON than a pipe buffer holds.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases");
    let mut inputs: Vec<String> = std::fs::read_dir(&root)
        .expect("cases")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.join("expected.json").is_file())
        .map(|d| {
            sample(d.file_name().and_then(|n| n.to_str()).expect("name"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    inputs.sort();
    let mut child = bin()
        .args(["analyze", "--format", "json", "-p", "443", "-p", "8443"])
        .args(&inputs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn help_shows_examples_and_reasons_lists_the_catalog() {
    let (code, out, _) = run(&["analyze", "--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("Examples:") && out.contains("--port"), "{out}");
    let (code, out, _) = run(&["reasons"], None);
    assert_eq!(code, 0);
    for id in ["syn_unanswered", "rejected_by_client", "no_shared_group", "not_tls"] {
        assert!(out.contains(id), "{id} missing");
    }
    if cfg!(not(feature = "live")) {
        // Without the feature the subcommand says how to get it (tests/live.rs covers it with).
        let (code, _, err) = run(&["live", "-i", "lo"], None);
        assert_eq!(code, 2);
        assert!(err.contains("--features live"), "{err}");
    }
}

#[test]
fn ports_may_be_a_comma_separated_list() {
    let a = sample("tls13-ok-port8443");
    let b = sample("tls13-ok-openssl");
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());
    let (code_default, out_default, _) = run(&["analyze", "--format", "json", "--ports-only", &a, &b], None);
    let (code_content, out_content, _) = run(&["analyze", "--format", "json", &a, &b], None);
    let (code_rep, out_rep, err_rep) = run(
        &["analyze", "--format", "json", "-p", "443", "-p", "8443", &a, &b],
        None,
    );
    let (code_list, out_list, err_list) = run(&["analyze", "--format", "json", "-p", "443,8443", &a, &b], None);
    assert_eq!(code_rep, 0, "{err_rep}");
    assert_eq!(code_list, 0, "{err_list}");
    assert_eq!(verdicts(&out_rep), verdicts(&out_list));
    // With --ports-only the 8443 session is only followed when 8443 is asked for; without it,
    // its ClientHello is found on the unlisted port.
    assert_eq!(code_default, 0);
    assert!(verdicts(&out_list).len() > verdicts(&out_default).len());
    assert_eq!(code_content, 0);
    assert_eq!(verdicts(&out_content), verdicts(&out_list));
    let (code, _, err) = run(&["analyze", "-p", "443,x", &a], None);
    assert_eq!(code, 2);
    assert!(err.contains("443,x") || err.contains("'x'"), "{err}");
}

#[test]
fn tls_on_unlisted_ports_is_found_by_content_and_each_format_names_the_ports() {
    let f = sample("tls-any-port");
    let f = f.to_string_lossy();
    let (code, json, err) = run(&["analyze", "--format", "json", &f], None);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        doc["counts"]["tls_ports"],
        serde_json::json!({"993": 1, "4433": 1, "8443": 1}),
        "JSON names the ports TLS was found on"
    );
    assert_eq!(doc["capture"]["ports"], serde_json::json!([443]));
    let line = "993 (1), 4433 (1), 8443 (1)";
    let (_, text, _) = run(&["analyze", &f], None);
    assert!(text.contains(&format!("TLS found on port(s) {line}")), "{text}");
    assert!(
        text.starts_with("tlsdiag: 3 TLS session(s) on port 443,993,4433,8443 "),
        "{text}"
    );
    let (_, md, _) = run(&["analyze", "--format", "markdown", &f], None);
    assert!(md.contains(&format!("| TLS found on ports | {line} |")), "{md}");
    // Strictly port-based selection: the default port has no TLS here; a listed port does.
    let (code, json, _) = run(&["analyze", "--format", "json", "--ports-only", &f], None);
    assert_eq!(code, 0);
    assert!(verdicts(&json).is_empty(), "{json}");
    let (_, json, _) = run(&["analyze", "--format", "json", "--ports-only", "-p", "993", &f], None);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(doc["counts"]["tls_ports"], serde_json::json!({"993": 1}));
}

#[test]
fn listed_ports_judge_connections_that_never_reached_tls_and_unlisted_ones_skip_them() {
    let outcomes = |args: &[&str], case: &str| -> Vec<String> {
        let f = sample(case);
        let f = f.to_string_lossy();
        let mut all = vec!["analyze", "--format", "json"];
        all.extend_from_slice(args);
        all.push(&f);
        let (code, json, err) = run(&all, None);
        assert!(code == 0 || code == 1, "{err}");
        let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
        doc["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| {
                let why = s["reason"].as_str().or(s["incomplete_reason"].as_str()).unwrap_or("-");
                format!("{} {} {why}", s["server"]["port"], s["outcome"].as_str().unwrap_or("?"))
            })
            .collect()
    };
    // Plain SMTP that never asks for TLS: a session only when port 25 is listed.
    assert_eq!(
        outcomes(&["-p", "25"], "starttls-smtp-refused"),
        ["25 incomplete tls_not_started", "25 failed starttls_refused"]
    );
    assert_eq!(outcomes(&[], "starttls-smtp-refused"), ["25 failed starttls_refused"]);
    // A banner to a silent client: judged (not failed) where the port is listed.
    assert_eq!(
        outcomes(&["-p", "443,2525"], "tcp-server-banner"),
        ["443 incomplete server_banner", "2525 incomplete server_banner"]
    );
    assert_eq!(outcomes(&[], "tcp-server-banner"), ["443 incomplete server_banner"]);
}
