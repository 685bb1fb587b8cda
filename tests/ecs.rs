//! Every NDJSON line is a valid Elastic Common Schema document: each field outside `tlsdiag.*`
//! exists in the ECS field reference (`../shared/reference/ecs_flat.yml`, read in place), with a
//! value of its type and, where the reference lists them, one of its allowed values; every line
//! has `ecs.version` and a valid `@timestamp`.
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
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

/// One field of the reference: its type and allowed values (empty: any).
struct Field {
    kind: String,
    allowed: BTreeSet<String>,
}

fn load_ecs(dir: &Path) -> BTreeMap<String, Field> {
    let text = std::fs::read_to_string(dir.join("ecs_flat.yml")).expect("read ecs_flat.yml");
    let docs = YamlLoader::load_from_str(&text).expect("ecs_flat.yml is YAML");
    let Yaml::Hash(fields) = &docs[0] else {
        panic!("ecs_flat.yml is a map")
    };
    let mut out = BTreeMap::new();
    for (name, def) in fields {
        let (Some(name), Some(kind)) = (name.as_str(), def["type"].as_str()) else {
            continue;
        };
        let allowed = def["allowed_values"]
            .as_vec()
            .map(|v| v.iter().filter_map(|a| a["name"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        out.insert(
            name.to_string(),
            Field {
                kind: kind.to_string(),
                allowed,
            },
        );
    }
    out
}

/// An RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let ok_head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let rest = &s[19.min(s.len())..];
    let rest = rest
        .strip_prefix('.')
        .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
        .unwrap_or(rest);
    ok_head && (rest == "Z" || (rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-'))))
}

fn check_scalar(path: &str, v: &Value, f: &Field, problems: &mut Vec<String>) {
    let ok = match f.kind.as_str() {
        "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text" => v.is_string(),
        "long" | "integer" | "short" | "byte" | "unsigned_long" => v.is_i64() || v.is_u64(),
        "float" | "double" | "scaled_float" | "half_float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "date" => v.as_str().is_some_and(is_date),
        "ip" => v.as_str().is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
        other => {
            problems.push(format!("{path}: ECS type {other} holds a scalar {v}"));
            return;
        }
    };
    if !ok {
        problems.push(format!("{path}: {v} is not a valid {}", f.kind));
    }
    if !f.allowed.is_empty() && !v.as_str().is_some_and(|s| f.allowed.contains(s)) {
        problems.push(format!("{path}: {v} is not one of {:?}", f.allowed));
    }
}

fn check(path: &str, v: &Value, ecs: &BTreeMap<String, Field>, problems: &mut Vec<String>) {
    if path == "tlsdiag" {
        return;
    }
    match (v, ecs.get(path)) {
        (Value::Object(_), Some(f)) if matches!(f.kind.as_str(), "object" | "flattened" | "nested") => {}
        (Value::Object(m), _) => {
            for (k, sub) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check(&p, sub, ecs, problems);
            }
        }
        (_, None) => problems.push(format!("{path}: not an ECS field")),
        (Value::Array(items), Some(f)) => {
            for item in items {
                check_scalar(path, item, f, problems);
            }
        }
        (Value::Null, Some(_)) => problems.push(format!("{path}: null")),
        (_, Some(f)) => check_scalar(path, v, f, problems),
    }
}

fn ndjson(input: &Path, args: &[String]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .args(["analyze", "-f", "ndjson"])
        .args(args)
        .arg(input)
        .output()
        .expect("run tlsdiag");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", input.display())))
        .collect()
}

#[test]
fn ndjson_lines_follow_the_ecs_reference() {
    // A plain clone has no ../shared: the test prints why it skips and passes; where CI is
    // set (as .ci/run runs) a missing suite fails the test instead.
    let Some(dir) = common::shared_suite("reference", "ecs_flat.yml", std::env::var_os("CI")) else {
        return;
    };
    let ecs = load_ecs(&dir);
    assert!(ecs.len() > 1000, "{} ECS fields", ecs.len());
    let mut problems = BTreeSet::new();
    let (mut lines, mut with_tls, mut serials) = (0, 0, 0);
    for (case, args) in common::sample_cases() {
        for line in ndjson(&case, &args) {
            let mut p = Vec::new();
            check("", &line, &ecs, &mut p);
            if line["ecs"]["version"].as_str().is_none_or(str::is_empty) {
                p.push("ecs.version missing".into());
            }
            if !line["@timestamp"].as_str().is_some_and(is_date) {
                p.push(format!("@timestamp {}", line["@timestamp"]));
            }
            if let Some(serial) = line["tls"]["server"]["x509"]["serial_number"].as_str() {
                serials += 1;
                if serial.is_empty() || serial.chars().any(|c| !c.is_ascii_hexdigit() || c.is_ascii_lowercase()) {
                    p.push(format!(
                        "tls.server.x509.serial_number {serial}: ECS wants upper-case hex"
                    ));
                }
            }
            // A connection that carried no TLS has no tls.* (refused, unanswered SYN, plain text).
            if line["tlsdiag"]["record"] == "session" {
                let carried = !line["tlsdiag"]["handshake"]["history"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty()
                    || line["tls"]["version"].is_string()
                    || line["tlsdiag"]["ja4"].is_string();
                if !carried && !line["tls"].is_null() {
                    p.push("tls.* on a connection without TLS".into());
                }
                with_tls += usize::from(!line["tls"].is_null());
            }
            for x in p {
                problems.insert(format!("{}: {x}", case.file_name().unwrap().to_string_lossy()));
            }
            lines += 1;
        }
    }
    println!(
        "{lines} NDJSON lines checked against {} ECS fields ({with_tls} with tls.*, {serials} serials)",
        ecs.len()
    );
    assert!(
        with_tls > 50 && serials > 10,
        "{with_tls} lines with tls.*, {serials} serials"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn an_empty_capture_has_a_valid_summary_line() {
    let dir = std::env::temp_dir().join(format!("tlsdiag-ecs-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let p = dir.join("empty.pcap");
    // A classic pcap header (Ethernet) and no packet.
    let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&p, h).expect("write");
    let lines = ndjson(&p, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["@timestamp"].as_str().is_some_and(is_date), "{}", lines[0]);
    assert!(lines[0]["ecs"]["version"].is_string());
}
