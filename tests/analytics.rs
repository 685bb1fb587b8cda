//! The NDJSON in a real analytics engine: the lines of several real captures are loaded into
//! DuckDB (the `duckdb` Python package from PyPI) exactly as written, and the questions an
//! on-call engineer asks are answered there — failures per reason per minute, top failing
//! servers, established sessions (lean lines) by version, cipher and SNI with their leaves'
//! expiry, and a join on `network.community_id` with another tool's records of the same
//! connections (tshark's). Each answer is checked against the JSON document of the same runs.
//!
//! Needs a Python with `duckdb` (`TLSDIAG_ANALYTICS_PYTHON`, else `python3`) and tshark; skips
//! with the reason without them, and fails instead where `CI` is set (.ci/run installs both).
#![allow(
    clippy::indexing_slicing,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const CASES: &[&str] = &[
    "tls-mixed",
    "tls12-expired",
    "tls13-unknown-ca",
    "tls12-no-shared-cipher",
    "tcp-refused",
    "tcp-syn-unanswered-v4",
    "tls13-ok-openssl",
    "tls12-ok-python",
    "tls13-hostname-mismatch",
    "tls12-version-mismatch",
];

/// A Python that can `import duckdb`, or why there is none.
fn python() -> Result<String, String> {
    let py = std::env::var("TLSDIAG_ANALYTICS_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&py).args(["-c", "import duckdb"]).output() {
        Ok(o) if o.status.success() => Ok(py),
        Ok(_) => Err(format!("{py} has no duckdb module (pip install duckdb)")),
        Err(e) => Err(format!("{py}: {e}")),
    }
}

fn capture(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases").join(case);
    let mut f: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("case")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    f.sort();
    f.remove(0)
}

fn tlsdiag(file: &Path, format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .args(["analyze", "-q", "-f", format])
        .arg(file)
        .output()
        .expect("run tlsdiag");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn ndjson_answers_on_call_questions_in_duckdb() {
    let py = match python() {
        Ok(p) => p,
        Err(why) => return common::skip_unless_ci(&why),
    };
    if Command::new("tshark").arg("-v").output().is_err() {
        return common::skip_unless_ci("tshark not found (apt-get install tshark)");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ndjson = dir.path().join("sessions.ndjson");
    let flows = dir.path().join("flows.tsv");
    let (mut nd, mut fl) = (
        std::fs::File::create(&ndjson).expect("ndjson"),
        std::fs::File::create(&flows).expect("flows"),
    );
    // What the JSON documents of the same captures say: failures per (minute, reason) and per
    // server, and every session's community id.
    let mut per_minute: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut per_server: BTreeMap<String, u64> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    // Established sessions per (version, cipher, SNI): how many, and the leaf's earliest notAfter.
    let mut established: BTreeMap<[String; 3], (u64, Value)> = BTreeMap::new();
    for case in CASES {
        let file = capture(case);
        nd.write_all(tlsdiag(&file, "ndjson").as_bytes()).expect("write");
        let doc: Value = serde_json::from_str(&tlsdiag(&file, "json")).expect("JSON document");
        for s in doc["sessions"].as_array().expect("sessions") {
            ids.insert(s["network"]["community_id"].as_str().expect("community id").to_string());
            if s["outcome"] == "established" {
                let t = &s["tls"];
                let key = [&t["version"], &t["cipher"], &t["client"]["server_name"]].map(|v| v.to_string());
                let e = established.entry(key).or_insert((0, Value::Null));
                e.0 += 1;
                let not_after = &t["server"]["x509"]["not_after"];
                if !not_after.is_null() && (e.1.is_null() || not_after.as_str() < e.1.as_str()) {
                    e.1 = not_after.clone();
                }
            }
            if s["outcome"] != "failed" {
                continue;
            }
            let minute = s["start"].as_str().expect("start")[..16].to_string();
            *per_minute
                .entry((minute, s["reason"].as_str().expect("reason").into()))
                .or_default() += 1;
            let server = format!("{}:{}", s["server"]["ip"].as_str().unwrap(), s["server"]["port"]);
            *per_server.entry(server).or_default() += 1;
        }
        let shark = Command::new("tshark")
            .args(["-n", "--enable-protocol", "communityid", "-r"])
            .arg(&file)
            .args(["-Y", "tcp", "-T", "fields", "-e", "communityid", "-e", "tcp.stream"])
            .output()
            .expect("tshark");
        fl.write_all(&shark.stdout).expect("write");
    }
    drop((nd, fl));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/analytics/queries.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(&ndjson)
        .arg(&flows)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "queries.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Value = serde_json::from_slice(&out.stdout).expect("answers");
    println!("{answers}");

    let got: BTreeMap<(String, String), u64> = answers["per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()),
                r[2].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, per_minute, "failures per reason per minute");
    assert!(per_minute.len() >= 8, "{per_minute:?}");

    let mut servers: Vec<(String, u64)> = per_server.into_iter().collect();
    servers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<(String, u64)> = answers["top_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_u64().unwrap()))
        .collect();
    assert_eq!(
        top,
        servers.into_iter().take(5).collect::<Vec<_>>(),
        "top failing servers"
    );

    // The established sessions, written lean, answer as the JSON document says.
    let got: BTreeMap<[String; 3], (u64, Value)> = answers["established"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = [&r[0], &r[1], &r[2]].map(|v| v.to_string());
            (key, (r[3].as_u64().unwrap(), r[4].clone()))
        })
        .collect();
    assert_eq!(got, established, "established sessions by version, cipher and SNI");
    assert!(
        established.len() >= 2 && established.values().any(|v| !v.1.is_null()),
        "{established:?}"
    );

    // Every session joins tshark's record of its connection on network.community_id.
    assert_eq!(answers["sessions"][1].as_u64(), Some(ids.len() as u64));
    assert_eq!(
        answers["joined"].as_u64(),
        Some(ids.len() as u64),
        "sessions joined with tshark"
    );
    assert!(ids.len() >= 15, "{} sessions", ids.len());
}
