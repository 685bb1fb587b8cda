//! Key logs end to end, on the real captures and key logs of `samples/cases/keylog-*` (made by
//! samples/scripts/keylog_cases.sh): keys turn inferred verdicts into exact ones, a key log given
//! with `--keylog` and the same keys embedded as a pcapng Decryption Secrets Block give identical
//! verdicts, no secret appears in any output, and sessions without keys say so.

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

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tlsdiag")
}

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases").join(name)
}

/// The capture of a case (its one .pcap or .pcapng).
fn capture(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .expect("a capture")
}

/// Every keylog-* case with a keys.txt.
fn keyed_cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("keylog-"))
                && p.join("keys.txt").is_file()
        })
        .collect();
    v.sort();
    assert!(v.len() >= 12, "expected the keylog-* sample cases, found {}", v.len());
    v
}

struct Run {
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.arg("analyze").args(args).env_remove("SSLKEYLOGFILE");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run tlsdiag");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(args: &[&str]) -> Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let r = run(&a, &[]);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: bad JSON ({e}); stderr: {}", r.stderr))
}

/// (outcome, reason, side, confidence, summary) of every session.
fn verdicts(doc: &Value) -> Vec<(String, String, String, String, String)> {
    doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or("-").to_string();
            (f("outcome"), f("reason"), f("side"), f("confidence"), f("summary"))
        })
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn keys_turn_an_inferred_tls13_verdict_into_the_exact_reason() {
    let dir = case("keylog-tls13-expired");
    let cap = capture(&dir);
    let keys = dir.join("keys.txt");
    let without = json(&[p(&cap)]);
    let with = json(&["--keylog", p(&keys), p(&cap)]);
    let (w0, w1) = (&without["sessions"][0], &with["sessions"][0]);
    assert_eq!(w0["reason"], "rejected_by_client");
    assert_eq!(w0["confidence"], "medium");
    assert!(w0["handshake"]["certificate_chain"].as_array().unwrap().is_empty());
    assert!(
        w0["handshake"].get("decryption").is_none(),
        "no key log, no decryption field"
    );
    assert_eq!(w1["reason"], "expired");
    assert_eq!(w1["confidence"], "high");
    assert_eq!(w1["handshake"]["certificate_chain"].as_array().unwrap().len(), 1);
    let alerts = w1["handshake"]["alerts"].as_array().unwrap();
    assert_eq!(alerts[0]["description"], "bad_certificate");
    assert_eq!(alerts[0]["encrypted"], false);
    let d = &w1["handshake"]["decryption"];
    assert_eq!(d["keys_found"], true);
    assert!(d["records_decrypted"][1].as_u64().unwrap() >= 4);
    assert!(
        d["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "server Certificate")
    );
    let evidence: Vec<&str> = w1["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"].as_str())
        .collect();
    assert!(
        evidence
            .iter()
            .any(|e| e.starts_with("Certificate") && e.ends_with("(decrypted with key log)")),
        "{evidence:?}"
    );
    assert!(w1["summary"].as_str().unwrap().contains("decrypted with the key log"));
}

#[test]
fn a_decryption_secrets_block_gives_the_verdicts_of_the_key_log_file() {
    // The committed case made with editcap --inject-secrets.
    let dsb = json(&[p(&capture(&case("keylog-tls13-dsb")))]);
    let src = case("keylog-tls13-expired");
    let file = json(&["--keylog", p(&src.join("keys.txt")), p(&capture(&src))]);
    assert_eq!(verdicts(&dsb), verdicts(&file));
    assert_eq!(dsb["sessions"][0]["reason"], "expired");
    // Every other case, its keys injected here.
    if Command::new("editcap").arg("-h").output().is_err() {
        return common::skip_unless_ci("the editcap part: editcap not installed");
    }
    let tmp = tempfile::tempdir().unwrap();
    for dir in keyed_cases() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let out = tmp.path().join(format!("{name}.pcapng"));
        let st = Command::new("editcap")
            .arg("--inject-secrets")
            .arg(format!("tls,{}", p(&dir.join("keys.txt"))))
            .arg(capture(&dir))
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success(), "{name}: editcap failed");
        let a = json(&["--keylog", p(&dir.join("keys.txt")), p(&capture(&dir))]);
        let b = json(&[p(&out)]);
        assert_eq!(verdicts(&a), verdicts(&b), "{name}: --keylog and DSB disagree");
        assert_eq!(a["capture"]["anomalies"], b["capture"]["anomalies"], "{name}");
    }
}

/// The secrets of a key log file: the third field of every line that has one of hex.
fn secrets(keys: &Path) -> Vec<String> {
    std::fs::read_to_string(keys)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| s.len() >= 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

#[test]
fn no_key_material_in_any_output() {
    let mut checked = 0;
    for dir in keyed_cases() {
        let keys = dir.join("keys.txt");
        let cap = capture(&dir);
        let secrets = secrets(&keys);
        let text = std::fs::read_to_string(&keys).unwrap();
        if text.lines().all(|l| l.starts_with('#') || l.trim().is_empty()) {
            // A TLS 1.2 client that gave up before its ClientKeyExchange logged nothing (Python
            // writes its header comment all the same).
            continue;
        }
        assert!(!secrets.is_empty(), "{}: no secrets in keys.txt", dir.display());
        for format in ["text", "json", "ndjson", "markdown"] {
            for extra in [&[][..], &["--all"][..]] {
                let mut args = vec!["--format", format, "--keylog", p(&keys)];
                args.extend_from_slice(extra);
                args.push(p(&cap));
                let r = run(&args, &[]);
                assert!(!r.stdout.is_empty());
                let all = format!("{}\n{}", r.stdout, r.stderr).to_ascii_lowercase();
                for s in &secrets {
                    // Any 16 hex digits of a secret would already be a leak.
                    for w in s.as_bytes().chunks(16).filter(|w| w.len() == 16) {
                        let w = std::str::from_utf8(w).unwrap();
                        assert!(
                            !all.contains(w),
                            "{}: {format} output shows key material",
                            dir.display()
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 12 * 8);
}

#[test]
fn a_session_without_keys_says_its_keys_are_missing() {
    let dir = case("keylog-partial-keys");
    let doc = json(&["--keylog", p(&dir.join("keys.txt")), p(&capture(&dir))]);
    let s = doc["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["confidence"], "high");
    assert_eq!(s[0]["handshake"]["decryption"]["keys_found"], true);
    assert_eq!(s[1]["handshake"]["decryption"]["keys_found"], false);
    assert_eq!(s[1]["confidence"], "medium");
    let summary = s[1]["summary"].as_str().unwrap();
    assert!(summary.contains("no keys for this session"), "{summary}");
    let ev = s[1]["evidence"].to_string();
    assert!(ev.contains("no keys for this session's client random"), "{ev}");
}

#[test]
fn keylog_env_reads_sslkeylogfile_and_only_when_asked() {
    let dir = case("keylog-tls13-self-signed");
    let cap = capture(&dir);
    let keys = dir.join("keys.txt");
    let with_env = run(
        &["--format", "json", "--keylog", "env", p(&cap)],
        &[("SSLKEYLOGFILE", p(&keys))],
    );
    let doc: Value = serde_json::from_str(&with_env.stdout).unwrap();
    assert_eq!(doc["sessions"][0]["reason"], "self_signed");
    // Without --keylog env the variable is not read.
    let not_asked = run(&["--format", "json", p(&cap)], &[("SSLKEYLOGFILE", p(&keys))]);
    let doc: Value = serde_json::from_str(&not_asked.stdout).unwrap();
    assert_eq!(doc["sessions"][0]["reason"], "rejected_by_client");
    // Asked but unset: said, and the analysis goes on without keys.
    let unset = run(&["--format", "json", "--keylog", "env", p(&cap)], &[]);
    assert!(unset.stderr.contains("SSLKEYLOGFILE is not set"), "{}", unset.stderr);
    let doc: Value = serde_json::from_str(&unset.stdout).unwrap();
    assert_eq!(doc["sessions"][0]["reason"], "rejected_by_client");
    assert!(
        doc["capture"]["input_problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("SSLKEYLOGFILE"))
    );
}

#[test]
fn a_damaged_key_log_is_read_around_its_bad_lines() {
    let dir = case("keylog-damaged-keylog");
    let doc = json(&["--keylog", p(&dir.join("keys.txt")), p(&capture(&dir))]);
    assert_eq!(doc["sessions"][0]["reason"], "client_certificate_missing");
    assert_eq!(doc["sessions"][0]["confidence"], "high");
    let problems: Vec<&str> = doc["capture"]["input_problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for line in [3, 4, 5, 6] {
        assert!(
            problems.iter().any(|p| p.contains(&format!("line {line} skipped"))),
            "line {line}: {problems:?}"
        );
    }
}

/// A key log saved by a Windows tool (a UTF-8 byte-order mark and CRLF line ends, or UTF-16
/// with its mark) gives the verdicts of the plain file; one that lost the client's lines still
/// shows the server's certificate and names its fault, at medium confidence.
#[test]
fn a_key_log_from_windows_or_with_one_side_missing() {
    let dir = case("keylog-tls13-expired");
    let cap = capture(&dir);
    let text = std::fs::read_to_string(dir.join("keys.txt")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let plain = verdicts(&json(&["--keylog", p(&dir.join("keys.txt")), p(&cap)]));
    assert_eq!(plain[0].1, "expired");
    let crlf = text.replace('\n', "\r\n");
    let mut utf8_bom = vec![0xef, 0xbb, 0xbf];
    utf8_bom.extend_from_slice(crlf.as_bytes());
    let mut utf16le = vec![0xff, 0xfe];
    utf16le.extend(crlf.encode_utf16().flat_map(u16::to_le_bytes));
    let mut utf16be = vec![0xfe, 0xff];
    utf16be.extend(crlf.encode_utf16().flat_map(u16::to_be_bytes));
    for (name, bytes) in [("utf8-bom", utf8_bom), ("utf16le", utf16le), ("utf16be", utf16be)] {
        let keys = tmp.path().join(name);
        std::fs::write(&keys, bytes).unwrap();
        let doc = json(&["--keylog", p(&keys), p(&cap)]);
        assert_eq!(verdicts(&doc), plain, "{name}");
        assert!(
            doc["capture"]["anomalies"].as_object().is_none_or(|a| a.is_empty()),
            "{name}: {}",
            doc["capture"]["anomalies"]
        );
    }
    // Only the server's secrets: its flight (and certificate) opens, the client's alert does not.
    let server_only: String = text
        .lines()
        .filter(|l| l.starts_with("SERVER_"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!server_only.is_empty() && server_only.lines().count() < text.lines().count());
    let keys = tmp.path().join("server-only");
    std::fs::write(&keys, server_only).unwrap();
    let doc = json(&["--keylog", p(&keys), p(&cap)]);
    let s = &doc["sessions"][0];
    assert_eq!(
        (s["reason"].as_str(), s["side"].as_str(), s["confidence"].as_str()),
        (Some("expired"), Some("client"), Some("medium")),
        "{}",
        s["summary"]
    );
    assert!(
        s["summary"].as_str().unwrap().contains("alert is unread"),
        "{}",
        s["summary"]
    );
}

/// A client connecting to an IP address sends no server name: the address is the name it
/// checked, so a refusal of a certificate that does not cover it names the mismatch, and curl's
/// close after the handshake says which address.
#[test]
fn an_address_the_certificate_does_not_cover_is_the_name_mismatch() {
    for (name, keyed) in [
        ("keylog-py-ip-mismatch-tls13", true),
        ("keylog-py-ip-mismatch-tls12", false),
    ] {
        let dir = case(name);
        let doc = json(&["--keylog", p(&dir.join("keys.txt")), p(&capture(&dir))]);
        let s = &doc["sessions"][0];
        assert_eq!(s["reason"], "hostname_mismatch", "{name}: {}", s["summary"]);
        assert!(
            s["summary"]
                .as_str()
                .unwrap()
                .contains("not the server's address 127.0.0.2"),
            "{name}"
        );
        // TLS 1.2 shows the certificate without keys; TLS 1.3 needs them.
        let bare = json(&[p(&capture(&dir))]);
        assert_eq!(
            bare["sessions"][0]["reason"] == "hostname_mismatch",
            !keyed,
            "{name} without keys"
        );
    }
    let dir = case("keylog-curl-ip-closed-tls13");
    let doc = json(&["--keylog", p(&dir.join("keys.txt")), p(&capture(&dir))]);
    let s = &doc["sessions"][0];
    assert_eq!(s["outcome"], "established");
    let w = s["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "closed_without_data")
        .expect("warning");
    assert!(
        w["detail"]
            .as_str()
            .unwrap()
            .contains("not the server's address 127.0.0.2"),
        "{w}"
    );
}

/// A server that leaves out its intermediate certificate: unknown_ca, and the summary says the
/// chain stops before the leaf's issuer (the certificate read with keys in TLS 1.3).
#[test]
fn a_chain_without_its_intermediate_says_where_it_stops() {
    for name in ["keylog-py-no-intermediate-tls13", "keylog-py-no-intermediate-tls12"] {
        let dir = case(name);
        let doc = json(&["--keylog", p(&dir.join("keys.txt")), p(&capture(&dir))]);
        let s = &doc["sessions"][0];
        assert_eq!(
            (s["reason"].as_str(), s["confidence"].as_str()),
            (Some("unknown_ca"), Some("high")),
            "{name}"
        );
        let summary = s["summary"].as_str().unwrap();
        assert!(
            summary.contains("issued by O=tlsdiag tests, CN=tlsdiag Intermediate CA, which it does not include"),
            "{name}: {summary}"
        );
    }
}

#[test]
fn every_tls13_suite_and_tls12_aead_and_cbc_open() {
    let suites = json(&[
        "--keylog",
        p(&case("keylog-tls13-suites").join("keys.txt")),
        p(&capture(&case("keylog-tls13-suites"))),
    ]);
    let ciphers: Vec<&str> = suites["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let d = &s["handshake"]["decryption"];
            assert_eq!(d["records_not_decrypted"], serde_json::json!([0, 0]), "{s}");
            assert!(d["records_decrypted"][0].as_u64().unwrap() > 0 && d["records_decrypted"][1].as_u64().unwrap() > 0);
            s["tls"]["cipher"].as_str().unwrap()
        })
        .collect();
    for want in [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    ] {
        assert!(ciphers.contains(&want), "{want} not in {ciphers:?}");
    }
    for (name, cipher) in [
        ("keylog-tls12-gcm-alert", "GCM"),
        ("keylog-tls12-cbc-alert", "CBC"),
        ("keylog-tls12-cbc-mte-alert", "CBC"),
        ("keylog-tls10-cbc-alert", "CBC"),
    ] {
        let dir = case(name);
        let doc = json(&["--keylog", p(&dir.join("keys.txt")), p(&capture(&dir))]);
        let s = &doc["sessions"][0];
        assert!(s["tls"]["cipher"].as_str().unwrap().contains(cipher), "{name}");
        assert_eq!(s["reason"], "bad_record_mac", "{name}");
        let d = &s["handshake"]["decryption"];
        // The client's Finished and alert opened; the server's damaged Finished did not.
        assert_eq!(d["records_decrypted"][0], 2, "{name}: {d}");
        assert_eq!(d["records_not_decrypted"][1], 1, "{name}: {d}");
        assert_eq!(
            d["messages"],
            serde_json::json!(["client Finished", "client Alert"]),
            "{name}"
        );
    }
}

#[test]
fn carving_keeps_the_carved_sessions_keys_and_only_theirs() {
    let failed = case("keylog-tls13-client-cert-missing");
    let ok = case("keylog-python-ok");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("failed.pcapng");
    let r = run(
        &[
            "--quiet",
            "--keylog",
            p(&failed.join("keys.txt")),
            "--keylog",
            p(&ok.join("keys.txt")),
            "--write-failed",
            p(&out),
            p(&capture(&failed)),
            p(&capture(&ok)),
        ],
        &[],
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "pcapng");
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    let random = |keys: &Path| -> String {
        std::fs::read_to_string(keys)
            .unwrap()
            .lines()
            .find_map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .filter(|r| r.len() == 64)
                    .map(str::to_ascii_lowercase)
            })
            .unwrap()
    };
    assert!(
        text.contains(&random(&failed.join("keys.txt"))),
        "the failed session's keys"
    );
    assert!(
        !text.contains(&random(&ok.join("keys.txt"))),
        "no keys of a session not carved"
    );
    // Re-analyzed without --keylog: the same verdict, from the embedded keys.
    let again = json(&[p(&out)]);
    let orig = json(&["--keylog", p(&failed.join("keys.txt")), p(&capture(&failed))]);
    assert_eq!(verdicts(&again), verdicts(&orig));
    assert_eq!(again["sessions"][0]["confidence"], "high");
    // Without keys the carve stays a classic pcap.
    let plain = tmp.path().join("plain.pcap");
    run(&["--quiet", "--write-failed", p(&plain), p(&capture(&failed))], &[]);
    assert_eq!(&std::fs::read(&plain).unwrap()[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    // Wireshark reads the alert with no key file.
    if let Ok(o) = Command::new("tshark")
        .args([
            "-n",
            "-r",
            p(&out),
            "-Y",
            "tls.alert_message",
            "-T",
            "fields",
            "-e",
            "tls.alert_message.desc",
        ])
        .output()
    {
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "116",
            "tshark decrypts the carved file"
        );
    } else {
        common::skip_unless_ci("tshark's decryption of the carve: tshark not installed");
    }
}

/// `live --keylog FILE`: the file may appear and grow while capturing; what was appended is read
/// on the next look-up (whole lines only, so a line being written is not lost).
#[test]
fn a_growing_key_log_is_read_on_as_it_grows() {
    use std::io::Write as _;
    use tlsdiag::tls::keylog::{self, Label, Source};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keys.log");
    let problems = keylog::install(&[Source::File(path.clone())], true);
    assert!(
        problems.len() == 1 && problems[0].contains("not there yet"),
        "{problems:?}"
    );
    assert!(keylog::active());
    keylog::set_refreshing();
    let (r1, r2) = ([0x11u8; 32], [0x22u8; 32]);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let line2 = format!("CLIENT_RANDOM {} {}\n", hex(&r2), "cd".repeat(48));
    let mut f = std::fs::File::create(&path).unwrap();
    write!(f, "CLIENT_RANDOM {} {}\n{}", hex(&r1), "ab".repeat(48), &line2[..20]).unwrap();
    f.flush().unwrap();
    keylog::refresh();
    assert!(keylog::lookup(&r1).and_then(|s| s.get(Label::ClientRandom).map(<[u8]>::len)) == Some(48));
    assert!(keylog::lookup(&r2).is_none(), "half a line is not read yet");
    std::thread::sleep(std::time::Duration::from_millis(150));
    f.write_all(&line2.as_bytes()[20..]).unwrap();
    f.flush().unwrap();
    keylog::refresh();
    assert!(keylog::lookup(&r2).is_some(), "the rest of the line was read");
    assert_eq!(keylog::stats().malformed, 0);
}
