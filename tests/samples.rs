//! End-to-end: runs the built `tlsdiag` on every case under `samples/cases/` and checks the
//! verdicts against the case's `expected.json` (see samples/CONVENTIONS.md).

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tlsdiag")
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases")
}

fn is_capture(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    n.ends_with(".pcap")
        || n.ends_with(".pcapng")
        || n.ends_with(".pcap.gz")
        || n.ends_with(".pcapng.gz")
        || n.contains(".pcap")
}

/// The capture files of a case: `inputs` from expected.json, or every capture in name order.
fn inputs(dir: &Path, expected: &Value) -> Vec<PathBuf> {
    if let Some(list) = expected.get("inputs").and_then(|v| v.as_array()) {
        return list.iter().filter_map(|v| v.as_str()).map(|n| dir.join(n)).collect();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("case dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_capture(p))
        .collect();
    files.sort();
    files
}

/// The case's extra arguments; the file after `--keylog` is relative to the case directory.
fn extra_args(expected: &Value, dir: &Path) -> Vec<String> {
    let args: Vec<String> = expected
        .get("args")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let after_keylog = i > 0 && args[i - 1] == "--keylog" && a != "env";
        out.push(if after_keylog {
            dir.join(a).to_string_lossy().into_owned()
        } else {
            a.clone()
        });
    }
    out
}

/// Runs `tlsdiag analyze --format json` and returns (exit code, document).
pub fn analyze_json(files: &[PathBuf], args: &[String]) -> (i32, Value) {
    let out = Command::new(bin())
        .arg("analyze")
        .args(args)
        .args(["--format", "json"])
        .args(files)
        .output()
        .expect("run tlsdiag");
    let code = out.status.code().unwrap_or(-1);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{files:?}: bad JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, doc)
}

/// Sessions of a report that count as TLS sessions (no-data and plaintext connections are apart).
fn sessions(doc: &Value) -> Vec<&Value> {
    doc["sessions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["incomplete_reason"] != "no_data" && s["incomplete_reason"] != "plaintext")
                .collect()
        })
        .unwrap_or_default()
}

fn check_case(dir: &Path) -> Result<usize, String> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
    let text = std::fs::read_to_string(dir.join("expected.json")).map_err(|e| format!("{name}: {e}"))?;
    let expected: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: expected.json: {e}"))?;
    let files = inputs(dir, &expected);
    if files.is_empty() {
        return Err(format!("{name}: no capture files"));
    }
    let (code, doc) = analyze_json(&files, &extra_args(&expected, dir));
    let got = sessions(&doc);
    let want = expected["sessions"].as_array().cloned().unwrap_or_default();
    let mut errors = Vec::new();
    if got.len() != want.len() {
        errors.push(format!(
            "{} sessions, expected {}: got [{}]",
            got.len(),
            want.len(),
            got.iter()
                .map(|s| format!(
                    "{}/{}",
                    s["outcome"].as_str().unwrap_or("?"),
                    s["reason"].as_str().unwrap_or("-")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        for key in ["outcome", "cause", "reason", "side"] {
            if let Some(wv) = w.get(key) {
                if g.get(key) != Some(wv) {
                    errors.push(format!(
                        "session {} (frame {}): {key} = {}, expected {} — {}",
                        i + 1,
                        g["first_frame"],
                        g.get(key).unwrap_or(&Value::Null),
                        wv,
                        g["summary"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        if let Some(v) = w.get("tls_version") {
            if g["tls"]["version"] != *v {
                errors.push(format!(
                    "session {}: tls.version = {}, expected {v}",
                    i + 1,
                    g["tls"]["version"]
                ));
            }
        }
        if let Some(v) = w.get("incomplete_reason") {
            if g["incomplete_reason"] != *v {
                errors.push(format!(
                    "session {}: incomplete_reason = {}, expected {v}",
                    i + 1,
                    g["incomplete_reason"]
                ));
            }
        }
        if let Some(v) = w.get("preamble") {
            if g["handshake"]["preamble"]["protocol"] != *v {
                errors.push(format!(
                    "session {}: handshake.preamble.protocol = {}, expected {v}",
                    i + 1,
                    g["handshake"]["preamble"]["protocol"]
                ));
            }
        }
        if let Some(v) = w.get("server_port") {
            if g["server"]["port"] != *v {
                errors.push(format!(
                    "session {}: server.port = {}, expected {v}",
                    i + 1,
                    g["server"]["port"]
                ));
            }
        }
        if let Some(v) = w.get("ip_version").and_then(|v| v.as_u64()) {
            let ip = g["server"]["ip"].as_str().unwrap_or("");
            let is_v6 = ip.contains(':');
            if is_v6 != (v == 6) {
                errors.push(format!("session {}: server ip {ip}, expected IPv{v}", i + 1));
            }
        }
        if let Some(v) = w.get("confidence") {
            if g["confidence"] != *v {
                errors.push(format!(
                    "session {}: confidence {}, expected {v}",
                    i + 1,
                    g["confidence"]
                ));
            }
        }
        if let Some(v) = w.get("confidence_not") {
            if g["confidence"] == *v {
                errors.push(format!(
                    "session {}: confidence {v}, expected anything else — {}",
                    i + 1,
                    g["summary"].as_str().unwrap_or("")
                ));
            }
        }
        if let Some(v) = w.get("quality_note_contains").and_then(|v| v.as_str()) {
            let notes: Vec<&str> = g["quality_notes"]
                .as_array()
                .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
                .unwrap_or_default();
            if !notes.iter().any(|n| n.contains(v)) {
                errors.push(format!("session {}: no quality note contains {v:?}: {notes:?}", i + 1));
            }
        }
        // Warnings are exact: a sample lists every one it must carry, and one without a
        // "warnings" list must carry none (so a warning cannot spread to sessions unnoticed).
        let mut have: Vec<&str> = g["warnings"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["id"].as_str()).collect())
            .unwrap_or_default();
        let mut want_ws: Vec<&str> = w
            .get("warnings")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        have.sort_unstable();
        want_ws.sort_unstable();
        if have != want_ws {
            errors.push(format!("session {}: warnings {have:?}, expected {want_ws:?}", i + 1));
        }
    }
    if let Some(n) = expected.get("plaintext_connections") {
        if doc["counts"]["plaintext_connections"] != *n {
            errors.push(format!(
                "plaintext_connections = {}, expected {n}",
                doc["counts"]["plaintext_connections"]
            ));
        }
    }
    if let Some(n) = expected.get("no_data_connections") {
        if doc["counts"]["no_data_connections"] != *n {
            errors.push(format!(
                "no_data_connections = {}, expected {n}",
                doc["counts"]["no_data_connections"]
            ));
        }
    }
    // Anomaly counters: each listed one exactly; the forged/damaged-TCP counters are absent
    // unless listed (so `"anomalies": {}` says none of them).
    if let Some(want_an) = expected.get("anomalies").and_then(|v| v.as_object()) {
        let have = &doc["capture"]["anomalies"];
        for (k, n) in want_an {
            if have[k.as_str()] != *n {
                errors.push(format!("anomaly {k} = {}, expected {n}", have[k.as_str()]));
            }
        }
        for k in ["tcp_overlap_conflict", "tcp_bad_checksum"] {
            if !want_an.contains_key(k) && !have[k].is_null() {
                errors.push(format!("anomaly {k} = {}, expected none", have[k]));
            }
        }
    }
    let any_failed = want.iter().any(|w| w["outcome"] == "failed");
    let want_code = if any_failed { 1 } else { 0 };
    if errors.is_empty() && code != want_code {
        errors.push(format!("exit status {code}, expected {want_code}"));
    }
    if errors.is_empty() {
        Ok(want.len())
    } else {
        Err(format!("{name}:\n    {}", errors.join("\n    ")))
    }
}

#[test]
fn every_sample_case_gets_its_expected_verdicts() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("samples/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "expected the sample cases, found {}", dirs.len());
    let mut failures = Vec::new();
    let mut sessions = 0;
    for d in &dirs {
        match check_case(d) {
            Ok(n) => sessions += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n  {}",
        failures.len(),
        dirs.len(),
        failures.join("\n  ")
    );
    assert!(sessions > 0);
}

/// The keyed benchmark's input (bench/keyed-samples, `bench/run.sh --keyed`): the benchmark mix's
/// TLS sessions captured again with their key logs, each judged with its keys as its
/// expected.json says (the linked, key-less cases are the samples/cases ones checked above).
#[test]
fn every_keyed_bench_case_gets_its_expected_verdicts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/keyed-samples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("bench/keyed-samples exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.is_symlink() && p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 10,
        "expected the keyed benchmark cases, found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs.iter().filter_map(|d| check_case(d).err()).collect();
    assert!(
        failures.is_empty(),
        "keyed benchmark cases disagree:\n  {}",
        failures.join("\n  ")
    );
}

/// Every reason of the catalog (`tlsdiag reasons`) is the expected verdict of at least one real
/// capture under samples/cases, so no reason is only ever reached by hand-made bytes.
#[test]
fn every_catalog_reason_has_a_real_capture() {
    let out = Command::new(bin())
        .arg("reasons")
        .output()
        .expect("run tlsdiag reasons");
    let catalog: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(catalog.len() >= 30, "catalog: {catalog:?}");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(cases_dir()).expect("cases") {
        let path = entry.expect("entry").path().join("expected.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let expected: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for s in expected["sessions"].as_array().into_iter().flatten() {
            if let Some(r) = s["reason"].as_str() {
                seen.insert(r.to_string());
            }
        }
    }
    let missing: Vec<&String> = catalog.iter().filter(|r| !seen.contains(*r)).collect();
    assert!(missing.is_empty(), "reasons with no real capture: {missing:?}");
}
