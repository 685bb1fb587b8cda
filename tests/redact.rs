//! `--redact` end to end, on a real capture whose client addresses are prefixes of the server's
//! (samples/cases/redact-prefix-addresses, made by samples/scripts/redact_cases.sh: client
//! 10.0.0.1 / fd0f::1, server 10.0.0.10 / fd0f::10; a refused connection, a version mismatch,
//! two established sessions), and on the link-type samples for the carve.
//!
//! Every format must show pseudonyms only, the server exactly, the same sentences as without
//! `--redact`, the same pseudonyms whatever the number of threads; a carve must hold no real
//! client address (IP header, link header, anywhere as text), pass tshark's checksum checks,
//! and analyze to the same verdicts.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use tlsdiag::capture::Capture;

const CLIENT4: &str = "10.0.0.1";
const CLIENT6: &str = "fd0f::1";
const SERVER4: &str = "10.0.0.10";
const SERVER6: &str = "fd0f::10";

fn case(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("case dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".pcap"))
        .collect();
    files.sort();
    files.into_iter().next().expect("a capture in the case")
}

fn prefix_case() -> PathBuf {
    case("redact-prefix-addresses")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsdiag-redact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

/// (exit code, stdout, stderr)
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .args(args)
        .output()
        .expect("run tlsdiag");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert!(code == 0 || code == 1, "{args:?}: exit {code}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Whether `text` names `addr` as an address of its own: an occurrence followed by a character
/// that continues an address ("10.0.0.1" in "10.0.0.10") does not count.
fn names_address(text: &str, addr: &str) -> bool {
    text.match_indices(addr).any(|(i, _)| {
        !text[i + addr.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_hexdigit() || c == '.')
    })
}

fn sessions(doc: &Value) -> Vec<Value> {
    doc["sessions"].as_array().cloned().unwrap_or_default()
}

fn server_label(s: &Value) -> String {
    let ip: IpAddr = s["server"]["ip"].as_str().unwrap().parse().unwrap();
    std::net::SocketAddr::new(ip, s["server"]["port"].as_u64().unwrap() as u16).to_string()
}

#[test]
fn every_format_shows_pseudonyms_only_and_the_exact_server() {
    let cap = prefix_case();
    let cap = cap.to_str().unwrap();
    for format in ["text", "markdown", "json", "ndjson"] {
        for threads in ["1", "2"] {
            let (code, out, err) = run(&["analyze", "--redact", "--all", "-f", format, "-j", threads, cap]);
            assert_eq!(code, 1, "{format}: {err}");
            for real in [CLIENT4, CLIENT6] {
                assert!(!names_address(&out, real), "{format} -j{threads} names {real}:\n{out}");
            }
            assert!(out.contains("198.18.0.1"), "{format}:\n{out}");
            // Markdown lists failed sessions only (IPv4 here).
            assert!(format == "markdown" || out.contains("2001:db8::1"), "{format}:\n{out}");
            // The sentences name the server exactly.
            if format == "text" || format == "markdown" {
                for sentence in [
                    "10.0.0.10:443 refused the connection",
                    "The handshake with 10.0.0.10:443 failed",
                ] {
                    // Markdown escapes what could start a list or a link ("10\." at a line's start).
                    let shown = if format == "markdown" {
                        out.replace('\\', "")
                    } else {
                        out.clone()
                    };
                    assert!(shown.contains(sentence), "{format}: no '{sentence}':\n{out}");
                }
            }
            if format == "text" {
                assert!(out.contains("Handshake with [fd0f::10]:443 completed"), "{out}");
                assert!(out.contains("198.18.0.1:46262 → 10.0.0.10:443"), "{out}");
            }
        }
    }
}

#[test]
fn redaction_changes_the_client_field_and_nothing_else_whatever_the_threads() {
    let cap = prefix_case();
    let cap = cap.to_str().unwrap();
    let plain = sessions(&json(&["analyze", "-f", "json", "-j", "1", cap]));
    let one = sessions(&json(&["analyze", "--redact", "-f", "json", "-j", "1", cap]));
    let two = sessions(&json(&["analyze", "--redact", "-f", "json", "-j", "2", cap]));
    assert_eq!(one, two, "pseudonyms depend on the number of threads");
    assert_eq!(plain.len(), 4);
    assert_eq!(plain.len(), one.len());
    // NDJSON streams (numbering clients as sessions are reported, in one order on any number
    // of threads): the same pseudonyms in this capture.
    let (_, nd, _) = run(&["analyze", "--redact", "-f", "ndjson", "-j", "1", cap]);
    let (_, nd2, _) = run(&["analyze", "--redact", "-f", "ndjson", "-j", "2", cap]);
    assert_eq!(nd, nd2, "NDJSON pseudonyms depend on the number of threads");
    // Lines come as connections end; the document is in id order.
    let mut streamed: Vec<(u64, String)> = nd
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v["tlsdiag"]["id"].as_u64()?, v["client"]["ip"].as_str()?.to_string())))
        .collect();
    streamed.sort();
    let streamed: Vec<String> = streamed.into_iter().map(|(_, ip)| ip).collect();
    let mut expect_ips = Vec::new();
    for (p, r) in plain.iter().zip(&one) {
        let real = p["client"]["ip"].as_str().unwrap();
        let alias = r["client"]["ip"].as_str().unwrap();
        expect_ips.push(alias.to_string());
        assert!(real == CLIENT4 || real == CLIENT6, "{real}");
        assert_eq!(alias, if real == CLIENT4 { "198.18.0.1" } else { "2001:db8::1" });
        let mut p2 = p.clone();
        p2["client"]["ip"] = Value::String(alias.to_string());
        // network.community_id is a hash of the real client address: left out under --redact.
        assert!(p["network"]["community_id"].is_string() && r["network"]["community_id"].is_null());
        p2["network"].as_object_mut().unwrap().remove("community_id");
        // So is the Wireshark display filter, which names it.
        assert!(p["display_filter"].is_string() && r["display_filter"].is_null());
        p2.as_object_mut().unwrap().remove("display_filter");
        assert_eq!(&p2, r, "redaction changed more than the client address");
        assert!(
            r["summary"].as_str().unwrap().contains(&server_label(r)),
            "{}",
            r["summary"]
        );
        assert!(r["server"]["ip"] == SERVER4 || r["server"]["ip"] == SERVER6);
    }
    assert_eq!(streamed, expect_ips);
}

/// The frames of a pcap: (link type, bytes).
fn frames(path: &Path) -> Vec<(tlsdiag::capture::LinkType, Vec<u8>)> {
    let mut cap = Capture::open(&[path.to_path_buf()]).expect("open carve");
    let mut v = Vec::new();
    while let Some(p) = cap.next_packet() {
        v.push((p.link, p.data.to_vec()));
    }
    v
}

/// The first frame's source MAC (Ethernet captures): the client's, the client sent the SYN;
/// none on loopback, where both ends share the zero MAC.
fn client_mac(path: &Path) -> Option<Vec<u8>> {
    let f = frames(path);
    let (link, data) = f.first()?;
    (*link == tlsdiag::capture::LinkType::ETHERNET && data[6..12] != data[0..6]).then(|| data[6..12].to_vec())
}

/// Checks a carve holds no real client address: not in any IP header (decoded), not in the
/// headers' bytes (link, IP, TCP), not as text; not as the 16-byte IPv6 address or the MAC
/// anywhere. (A 4-byte IPv4 address is not searched in encrypted payload, where it can occur
/// by chance.)
fn assert_no_client(carve: &Path, clients: &[IpAddr], mac: Option<&[u8]>) {
    let bytes = std::fs::read(carve).unwrap();
    for c in clients {
        let text = c.to_string();
        assert!(
            !names_address(&String::from_utf8_lossy(&bytes), &text),
            "{}: {text} as text",
            carve.display()
        );
        if let IpAddr::V6(a) = c {
            assert!(!bytes.windows(16).any(|w| w == a.octets()), "{}: {c}", carve.display());
        }
    }
    if let Some(mac) = mac {
        assert!(!bytes.windows(6).any(|w| w == mac), "{}: client MAC", carve.display());
    }
    for (link, data) in frames(carve) {
        let seg = tlsdiag::decode::decode(link, &data).expect("carved frames decode");
        assert!(
            !clients.contains(&seg.src) && !clients.contains(&seg.dst),
            "{}",
            carve.display()
        );
        // Link and IP headers (the TCP header's checksum, urgent pointer and options can spell
        // 10.0.0.1 by chance).
        let sliced = tlsdiag::decode::slice_frame(link, &data).unwrap();
        let Some(etherparse::TransportSlice::Tcp(tcp)) = &sliced.transport else {
            panic!("not TCP")
        };
        let headers = tcp.header_slice().as_ptr() as usize - data.as_ptr() as usize;
        for c in clients {
            if let IpAddr::V4(a) = c {
                assert!(
                    !data[..headers].windows(4).any(|w| w == a.octets()),
                    "{}: {c} in a header",
                    carve.display()
                );
            }
        }
    }
}

/// tshark's checksum verdict on a carve: Ok(()) clean, Err(report) otherwise; None without tshark.
fn tshark_checksums(path: &Path) -> Option<Result<(), String>> {
    let out = Command::new("tshark")
        .args([
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-n",
            "-q",
            "-z",
            "expert",
            "-r",
        ])
        .arg(path)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => return Some(Err(String::from_utf8_lossy(&o.stderr).into_owned())),
        Err(_) => {
            common::skip_unless_ci(
                "tshark not installed (apt-get install tshark): the carve's checksums were not checked by Wireshark",
            );
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.contains("Bad checksum") || text.to_lowercase().contains("checksum") {
        Some(Err(text))
    } else {
        Some(Ok(()))
    }
}

/// Who, and what was decided. (Summaries cite frame numbers, which change when a carve leaves
/// other traffic out; the prefix case compares them too, its carve keeps every frame.)
fn verdicts(doc: &Value, fields: &[&str]) -> Vec<Value> {
    sessions(doc)
        .iter()
        .map(|s| Value::Array(fields.iter().map(|f| s[*f].clone()).collect()))
        .collect()
}

const VERDICT: &[&str] = &["client", "server", "outcome", "cause", "reason", "side", "confidence"];
/// A carve of the failed sessions alone loses what the same server accepted in other sessions,
/// which some summaries and confidences cite.
const FAILED_VERDICT: &[&str] = &["client", "server", "outcome", "cause", "reason", "side"];

/// A summary with the numbers after "frame " / "frames " removed (a carve renumbers frames).
fn without_frame_numbers(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("frame") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let word = if tail.starts_with("frames ") {
            "frames "
        } else {
            "frame"
        };
        out.push_str(word);
        rest = tail[word.len()..].trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ' || c == '–');
        if word != "frame" || rest.len() < tail.len() - word.len() {
            out.push_str(" N");
        }
    }
    out.push_str(rest);
    out
}

/// Carves a case with --redact and checks the carve (returns the packets written).
fn check_redacted_carve(name: &str, cap: &Path, extra: &[&str]) -> usize {
    let all = tmp(&format!("{name}-sessions.pcap"));
    let failed = tmp(&format!("{name}-failed.pcap"));
    let _ = std::fs::remove_file(&all);
    let _ = std::fs::remove_file(&failed);
    let mut args = vec!["analyze", "--redact", "-f", "json"];
    args.extend_from_slice(extra);
    let (a, f) = (all.to_str().unwrap(), failed.to_str().unwrap());
    args.extend_from_slice(&["--write-sessions", a, "--write-failed", f, cap.to_str().unwrap()]);
    let (code, out, err) = run(&args);
    assert!(code == 0 || code == 1, "{name}: {err}");
    assert!(!err.contains("left out"), "{name}: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let plain = json(&[&["analyze", "-f", "json"], extra, &[cap.to_str().unwrap()]].concat());
    let clients: Vec<IpAddr> = sessions(&plain)
        .iter()
        .map(|s| s["client"]["ip"].as_str().unwrap().parse().unwrap())
        .collect();
    let servers: Vec<IpAddr> = sessions(&plain)
        .iter()
        .map(|s| s["server"]["ip"].as_str().unwrap().parse().unwrap())
        .collect();
    let clients: Vec<IpAddr> = clients.into_iter().filter(|c| !servers.contains(c)).collect();
    let mac = client_mac(cap);
    for carve in [&all, &failed] {
        assert_no_client(carve, &clients, mac.as_deref());
        match tshark_checksums(carve) {
            None => {}
            Some(r) => assert!(r.is_ok(), "{name}: {}: {r:?}", carve.display()),
        }
    }
    // The carve analyzes to the same verdicts, with the same pseudonyms.
    let again = json(&[&["analyze", "-f", "json"], extra, &[a]].concat());
    assert_eq!(
        verdicts(&again, VERDICT),
        verdicts(&report, VERDICT),
        "{name}: re-analysis of the carve differs"
    );
    let summaries = |d: &Value| -> Vec<String> {
        verdicts(d, &["summary"])
            .iter()
            .map(|v| without_frame_numbers(v[0].as_str().unwrap_or("")))
            .collect()
    };
    assert_eq!(summaries(&again), summaries(&report), "{name}");
    // Nothing left out for want of a safe rewrite: as many packets as a carve without --redact.
    let plain_carve = tmp(&format!("{name}-plain.pcap"));
    let (code, _, err) = run(&[
        &["analyze", "-q"],
        extra,
        &["--write-sessions", plain_carve.to_str().unwrap(), cap.to_str().unwrap()],
    ]
    .concat());
    assert!(code == 0 || code == 1, "{err}");
    assert_eq!(frames(&all).len(), frames(&plain_carve).len(), "{name}");
    let failed_again = json(&[&["analyze", "-f", "json"], extra, &[f]].concat());
    let failed_report: Vec<Value> = verdicts(&report, FAILED_VERDICT)
        .into_iter()
        .zip(sessions(&report))
        .filter(|(_, s)| s["outcome"] == "failed")
        .map(|(v, _)| v)
        .collect();
    assert_eq!(
        verdicts(&failed_again, FAILED_VERDICT),
        failed_report,
        "{name}: failed carve"
    );
    frames(&all).len()
}

#[test]
fn redacted_carve_of_prefix_addresses_is_clean_and_analyzes_the_same() {
    let cap = prefix_case();
    let n = check_redacted_carve("prefix", &cap, &[]);
    // The four sessions' frames; each final ACK after the FINs lies past its session's last frame.
    assert_eq!(n, frames(&cap).len() - 3);
    // The checksum check is real: a carve with one IP checksum spoiled is caught.
    let carve = tmp("prefix-sessions.pcap");
    let mut bytes = std::fs::read(&carve).unwrap();
    // Classic pcap: 24-byte file header, 16-byte record header, Ethernet 14, IPv4 checksum at 10.
    bytes[24 + 16 + 14 + 10] ^= 0x55;
    let spoiled = tmp("spoiled.pcap");
    std::fs::write(&spoiled, &bytes).unwrap();
    if let Some(r) = tshark_checksums(&spoiled) {
        assert!(r.is_err(), "tshark did not flag a spoiled checksum");
    }
}

#[test]
fn redacted_carves_of_every_link_type_are_clean_and_analyze_the_same() {
    for (name, extra) in [
        ("link-sll", &[][..]),
        ("link-sll2", &[]),
        ("link-vlan", &[]),
        ("link-qinq", &[]),
        ("link-null", &[]),
        ("link-rawip", &[]),
        ("tcp-ok-v6", &[]),
        ("tcp-port-8443", &["--port", "8443"]),
        ("tls-mixed", &[]),
    ] {
        let cap = case(name);
        let n = check_redacted_carve(name, &cap, extra);
        assert!(n > 0, "{name}: nothing carved");
    }
}

#[test]
fn live_refuses_redact_with_a_capture_file_of_real_addresses() {
    let out = tmp("live.pcap");
    let (code, _, err) = run(&["live", "--redact", "-w", out.to_str().unwrap(), "--count", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--redact") && err.contains("--write"), "{err}");
    assert!(!out.exists());
}

/// Directories of captures with several clients: the samples, and the peer corpus (in a plain
/// clone, where ../shared is absent, the samples alone, said on stdout; where CI is set the
/// corpus must be there).
fn multi_client_inputs() -> Vec<PathBuf> {
    let mut roots = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases")];
    if let Some(dir) = common::shared_suite("peer-corpus", "manifest.json", std::env::var_os("CI")) {
        roots.push(dir.join("pcaps"));
    }
    let mut v = Vec::new();
    for root in roots {
        let dirs = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        v.extend(dirs.filter_map(|e| e.ok().map(|e| e.path())).filter(|d| d.is_dir()));
    }
    v.sort();
    v
}

#[test]
fn pseudonyms_do_not_depend_on_the_number_of_threads() {
    let mut several = 0;
    for input in multi_client_inputs() {
        let p = input.to_str().unwrap();
        let ports = ["-p", "443", "-p", "8443", "-p", "3000"];
        let plain = json(&[&["analyze", "-f", "json"], &ports[..], &[p]].concat());
        let real: std::collections::BTreeSet<String> = sessions(&plain)
            .iter()
            .filter_map(|s| s["client"]["ip"].as_str().map(String::from))
            .collect();
        if real.len() < 2 {
            continue;
        }
        several += 1;
        let mut first: Option<(String, String, String)> = None;
        for threads in ["1", "2", "3"] {
            let args = |f: &'static str| {
                [
                    &["analyze", "--redact", "--all", "-f", f, "-j", threads],
                    &ports[..],
                    &[p],
                ]
                .concat()
            };
            let (_, j, _) = run(&args("json"));
            let (_, t, _) = run(&args("text"));
            let (_, nd, _) = run(&args("ndjson"));
            let doc: Value = serde_json::from_str(&j).unwrap();
            let aliases: std::collections::BTreeSet<String> = sessions(&doc)
                .iter()
                .filter_map(|s| s["client"]["ip"].as_str().map(String::from))
                .collect();
            assert_eq!(aliases.len(), real.len(), "{p}: one pseudonym per client");
            assert!(aliases.is_disjoint(&real), "{p}: {aliases:?}");
            let streamed: std::collections::BTreeSet<String> = nd
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["client"]["ip"].as_str().map(String::from))
                .collect();
            assert_eq!(streamed.len(), real.len(), "{p}: one NDJSON pseudonym per client");
            assert!(streamed.is_disjoint(&real), "{p}: {streamed:?}");
            match &first {
                None => first = Some((j, t, nd)),
                Some((j1, t1, nd1)) => {
                    assert!(*j1 == j, "{p}: JSON with -j{threads} differs from -j1");
                    assert!(*t1 == t, "{p}: text with -j{threads} differs from -j1");
                    assert!(*nd1 == nd, "{p}: NDJSON with -j{threads} differs from -j1");
                }
            }
        }
    }
    assert!(several >= 2, "{several}");
}
