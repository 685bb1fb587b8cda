//! Conformance on `../shared/keylog-corpus/`: public TLS captures with their key logs (or
//! Decryption Secrets Blocks) and, per session, what tshark decrypts from them (manifest.json).
//! What tlsdiag decrypts must be those facts: the keys are found and every record it reads
//! opens, the server's certificates (by SHA-256), the client's certificate count, the ALPN
//! protocol, the handshake messages (in tshark's order, up to where tlsdiag stops reading) and
//! every alert it reports (sender, level, description, frame). A handshake tshark shows complete
//! (both Finished) is established. The corpus is read in place; nothing is copied.
//!
//! Without `../shared` (a plain clone) the tests print why and skip; with `CI` set (as `.ci/run`
//! sets it) a missing suite fails them: each reads `std::env::var_os("CI")` and hands it to
//! `common::shared_suite`.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn analyze(corpus: &Path, cap: &Value, with_keys: bool) -> Value {
    let ports: BTreeSet<String> = cap["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["server"].as_str().unwrap().rsplit(':').next().unwrap().to_string())
        .collect();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tlsdiag"));
    c.args(["analyze", "--format", "json", "--all"]);
    for p in &ports {
        c.args(["-p", p]);
    }
    if with_keys && cap["keys"]["kind"] == "keylog" {
        c.arg("--keylog")
            .arg(corpus.join(cap["keys"]["file"].as_str().unwrap()));
    }
    c.arg(corpus.join(cap["file"].as_str().unwrap()));
    let out = c.output().expect("run tlsdiag");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{}: bad JSON: {e}", cap["id"]))
}

fn client_of(s: &Value) -> String {
    let ip = s["client"]["ip"].as_str().unwrap();
    let port = &s["client"]["port"];
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// tshark's alert description ("Certificate Unknown") as tlsdiag names it (certificate_unknown).
fn alert_name(tshark: &str) -> String {
    tshark.to_ascii_lowercase().replace(' ', "_")
}

/// Checks one session against tshark's facts; returns what disagrees.
fn check(id: &str, want: &Value, got: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let who = format!("{id} {}", want["client"].as_str().unwrap_or("?"));
    let hs = &got["handshake"];
    let dec = &hs["decryption"];
    if want["keylog_labels"].as_array().is_some_and(|l| !l.is_empty()) {
        if dec["keys_found"] != true {
            errs.push(format!("{who}: keys not found"));
        }
        if dec["records_not_decrypted"] != serde_json::json!([0, 0]) {
            errs.push(format!("{who}: records did not open: {dec}"));
        }
    }
    // Certificates, by hash, leaf first.
    let want_certs: Vec<&str> = want["certificates_server"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["sha256"].as_str()).collect())
        .unwrap_or_default();
    let got_certs: Vec<&str> = hs["certificate_chain"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["sha256"].as_str()).collect())
        .unwrap_or_default();
    if want_certs != got_certs {
        errs.push(format!("{who}: certificates {got_certs:?}, tshark {want_certs:?}"));
    }
    if want["client_certificate_message_count"].as_u64().unwrap_or(0) > 0 {
        let n = want["certificates_client"].as_array().map_or(0, Vec::len);
        if hs["client_certificate_count"].as_u64() != Some(n as u64) {
            errs.push(format!(
                "{who}: client certificates {}, tshark {n}",
                hs["client_certificate_count"]
            ));
        }
    }
    if want["alpn"] != got["tls"]["next_protocol"] && !(want["alpn"].is_null() && got["tls"]["next_protocol"].is_null())
    {
        errs.push(format!(
            "{who}: ALPN {}, tshark {}",
            got["tls"]["next_protocol"], want["alpn"]
        ));
    }
    // Decrypted handshake messages: in tshark's order, as far as tlsdiag read.
    let tls13 = want["version"] == "TLS 1.3";
    for (side, key) in [("server", "handshake_server"), ("client", "handshake_client")] {
        let theirs: Vec<&str> = want[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m.as_str())
            .filter(|m| {
                if tls13 {
                    !matches!(*m, "ClientHello" | "ServerHello")
                } else {
                    *m == "Finished"
                }
            })
            .collect();
        let ours: Vec<String> = dec["messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str())
                    .filter_map(|m| m.strip_prefix(&format!("{side} ")))
                    .filter(|m| *m != "Alert")
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if ours.len() > theirs.len() || ours.iter().zip(&theirs).any(|(a, b)| a != b) {
            errs.push(format!("{who}: {side} messages {ours:?}, tshark {theirs:?}"));
        }
        if want["keylog_labels"].as_array().is_some_and(|l| !l.is_empty())
            && theirs.contains(&"Finished")
            && ours.is_empty()
        {
            errs.push(format!("{who}: no {side} message decrypted"));
        }
    }
    // Every alert tlsdiag reports is one tshark shows, the same.
    let theirs: Vec<(String, u64, String, u64)> = want["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["from"].as_str().unwrap().to_string(),
                a["level_code"].as_u64().unwrap_or(0),
                alert_name(a["description"].as_str().unwrap_or("")),
                a["frame"].as_u64().unwrap(),
            )
        })
        .collect();
    for a in hs["alerts"].as_array().unwrap() {
        let level = match a["level"].as_str() {
            Some("fatal") => 2,
            Some("warning") => 1,
            _ => 0,
        };
        let ours = (
            a["from"].as_str().unwrap().to_string(),
            level,
            a["description"].as_str().unwrap_or("").to_string(),
            a["frame"].as_u64().unwrap(),
        );
        if a["encrypted"] == false && !theirs.contains(&ours) {
            errs.push(format!("{who}: alert {ours:?} is not among tshark's {theirs:?}"));
        }
    }
    // Both Finished in tshark's view: established, and sure of it.
    let finished = |k: &str| want[k].as_array().unwrap().iter().any(|m| m == "Finished");
    if finished("handshake_client") && finished("handshake_server") {
        if got["outcome"] != "established" || got["confidence"] != "high" {
            errs.push(format!(
                "{who}: {} {} ({}), tshark shows both Finished",
                got["outcome"], got["confidence"], got["summary"]
            ));
        }
    } else if theirs.iter().any(|a| a.1 == 2) && got["outcome"] != "failed" {
        errs.push(format!(
            "{who}: {} but tshark shows a fatal alert in the handshake",
            got["outcome"]
        ));
    }
    errs
}

#[test]
fn what_tlsdiag_decrypts_is_what_wireshark_decrypts() {
    // A plain clone has no ../shared: the test prints why it skips and passes; where CI is
    // set (as .ci/run runs) a missing suite fails the test instead.
    let Some(corpus) = common::shared_suite("keylog-corpus", "manifest.json", std::env::var_os("CI")) else {
        return;
    };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("manifest.json")).expect("manifest")).expect("json");
    let caps = manifest["captures"].as_array().expect("captures");
    assert!(caps.len() >= 20, "{} captures", caps.len());
    let (mut errs, mut sessions, mut tls13) = (Vec::new(), 0, 0);
    for cap in caps {
        let id = cap["id"].as_str().unwrap();
        let doc = analyze(&corpus, cap, true);
        let got = doc["sessions"].as_array().unwrap();
        for want in cap["sessions"].as_array().unwrap() {
            let client = want["client"].as_str().unwrap();
            match got.iter().find(|s| client_of(s) == client) {
                Some(s) => {
                    sessions += 1;
                    tls13 +=
                        usize::from(want["version"] == "TLS 1.3" && s["handshake"]["decryption"]["keys_found"] == true);
                    errs.extend(check(id, want, s));
                }
                None => errs.push(format!("{id}: no session for client {client}")),
            }
        }
    }
    assert!(
        errs.is_empty(),
        "{} disagreements:\n  {}",
        errs.len(),
        errs.join("\n  ")
    );
    assert!(
        sessions >= 30 && tls13 >= 15,
        "{sessions} sessions, {tls13} TLS 1.3 with keys"
    );
}

#[test]
fn dsb_and_its_key_files_agree() {
    // A plain clone has no ../shared: the test prints why it skips and passes; where CI is
    // set (as .ci/run runs) a missing suite fails the test instead.
    let Some(corpus) = common::shared_suite("keylog-corpus", "manifest.json", std::env::var_os("CI")) else {
        return;
    };
    if Command::new("editcap").arg("-h").output().is_err() {
        return common::skip_unless_ci("editcap not installed");
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("manifest.json")).expect("manifest")).expect("json");
    let mut checked = 0;
    for cap in manifest["captures"].as_array().unwrap() {
        if cap["keys"]["kind"] != "pcapng-dsb" {
            continue;
        }
        let file = corpus.join(cap["file"].as_str().unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let bare = tmp.path().join("bare.pcapng");
        assert!(
            Command::new("editcap")
                .arg("--discard-all-secrets")
                .arg(&file)
                .arg(&bare)
                .status()
                .unwrap()
                .success()
        );
        let with_dsb = analyze(&corpus, cap, true);
        let mut c = Command::new(env!("CARGO_BIN_EXE_tlsdiag"));
        c.args(["analyze", "--format", "json", "--all"]);
        for k in cap["keys"]["alternative_keylog_files"].as_array().unwrap() {
            c.arg("--keylog").arg(corpus.join(k.as_str().unwrap()));
        }
        c.arg(&bare);
        let with_files: Value = serde_json::from_slice(&c.output().unwrap().stdout).unwrap();
        let v = |d: &Value| -> Vec<(Value, Value, Value, Value)> {
            d["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["outcome"].clone(),
                        s["confidence"].clone(),
                        s["handshake"]["decryption"].clone(),
                        s["summary"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(v(&with_dsb), v(&with_files), "{}", cap["id"]);
        assert!(
            with_dsb["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["handshake"]["decryption"]["keys_found"] == true)
        );
        checked += 1;
    }
    assert!(checked >= 1);
}
