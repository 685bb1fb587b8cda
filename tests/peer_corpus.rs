//! Conformance against the peer corpus: public captures from the Zeek, Suricata, nDPI, Arkime and
//! ja4 test suites with per-session expectations (`../shared/peer-corpus`, see its MANIFEST.md).
//!
//! Without `../shared` (a plain clone) the tests print why and skip; with `CI` set (as `.ci/run`
//! sets it) a missing suite fails them: each reads `std::env::var_os("CI")` and hands it to
//! `common::shared_suite`.
//!
//! For every capture the built `tlsdiag` runs with `-p` for each server port the manifest lists
//! (plus 443). No capture may end with exit status 2, and the exit status must match the report
//! (1 exactly when a session failed). Each manifest session is matched to ours by its 4-tuple
//! (either orientation) and compared on:
//!
//! - `present`: we report a session for the 4-tuple at all;
//! - `sessions`: we report as many sessions for the 4-tuple as the peer (no phantom splits);
//! - `established`: the peer's established flag (Zeek ssl.log where it exists, else the manifest's
//!   tshark heuristic) against `outcome == "established"`;
//! - `verdict`: the manifest's derived verdict against our outcome — success = established,
//!   failure = failed, incomplete-at-eof = incomplete or failed/timeout (a passive analyzer times
//!   it out), indeterminate = incomplete, not-tls = failed with `plaintext_client`/`not_tls` or
//!   a plaintext connection (incomplete/`plaintext`: no TLS on either side, not a session);
//! - `alert`: for sessions that did not establish, the peer's last alert against our last alert
//!   (`encrypted_alert` for an encrypted one). Alerts after an established handshake are not
//!   compared: tlsdiag stops reading a session once its handshake outcome is known;
//! - `cause`: the manifest's derived cause hint against our cause, when we say failed.
//!
//! Every disagreement must be listed in `tests/peer_corpus/known_differences.json` with the
//! peer's and our rendering and why we differ. An entry that no longer matches what we say makes
//! the test fail too, so the list stays true: remove or update it (the failure message says how).
//!
//! The agreement figure is printed (`cargo test --release --test peer_corpus -- --nocapture`).

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn known_differences_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer_corpus/known_differences.json")
}

/// An endpoint as the manifest writes it (`1.2.3.4:443`, `fd42::1:3000`).
fn parse_endpoint(s: &str) -> (IpAddr, u16) {
    let (ip, port) = s
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("bad endpoint {s:?} in manifest"));
    (
        ip.parse().unwrap_or_else(|e| panic!("bad IP in {s:?}: {e}")),
        port.parse().unwrap_or_else(|e| panic!("bad port in {s:?}: {e}")),
    )
}

fn our_endpoint(v: &Value) -> (IpAddr, u16) {
    let ip = v["ip"].as_str().unwrap_or_default();
    (
        ip.parse()
            .unwrap_or_else(|e| panic!("bad IP {ip:?} in our report: {e}")),
        v["port"].as_u64().unwrap_or_default() as u16,
    )
}

type TupleKey = ((IpAddr, u16), (IpAddr, u16));

fn tuple_key(a: (IpAddr, u16), b: (IpAddr, u16)) -> TupleKey {
    if a <= b { (a, b) } else { (b, a) }
}

/// Every capture file under `pcaps/`, relative to the corpus directory, sorted.
fn capture_files(corpus: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&corpus.join("pcaps"), &mut files);
    let mut rel: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(corpus)
                .expect("under corpus")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    rel.sort();
    rel
}

struct Run {
    code: i32,
    doc: Value,
    stderr: String,
}

fn run_tlsdiag(corpus: &Path, file: &str, ports: &BTreeSet<u16>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsdiag"));
    cmd.arg("analyze").args(["--format", "json"]);
    for p in ports {
        cmd.arg("-p").arg(p.to_string());
    }
    cmd.arg(corpus.join(file));
    let out = cmd.output().expect("run tlsdiag");
    Run {
        code: out.status.code().unwrap_or(-1),
        doc: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How the peer's expectation for a session is rendered in messages and in the known list.
fn render_peer(m: &Value) -> String {
    let verdict = m["verdict"].as_str().unwrap_or("-");
    let cause = m["cause_hint"].as_str().map(|c| format!("/{c}")).unwrap_or_default();
    let est = match m["established"].as_bool() {
        Some(true) => "true",
        Some(false) => "false",
        None => "-",
    };
    let alert = m["last_alert"].as_str().unwrap_or("-");
    format!("{verdict}{cause}, established={est}, last_alert={alert}")
}

/// Our last alert in a session: its name, or `encrypted_alert`. (The alert list is
/// `tls.alerts` in schema 1.0 as first published, `handshake.alerts` in its ECS-style layout.)
/// Our last alert in Zeek's sense: the last one sent in the clear. Zeek's `last_alert` names
/// only alerts it can parse, so an encrypted alert (which we report as such, and the tshark
/// heuristic as `encrypted_alert`) has no counterpart in a Zeek-stated ground truth and is not
/// compared with it; `render_ours` still shows it.
fn our_last_plaintext_alert(s: &Value) -> Option<String> {
    let list = [&s["tls"]["alerts"], &s["handshake"]["alerts"]]
        .into_iter()
        .find_map(|v| v.as_array())?;
    list.iter()
        .rev()
        .find(|a| a["encrypted"].as_bool() != Some(true))
        .map(|a| a["description"].as_str().unwrap_or("?").to_string())
}

/// Our last alert as the report shows it (an encrypted one named `encrypted_alert`).
fn our_last_alert(s: &Value) -> Option<String> {
    let list = [&s["tls"]["alerts"], &s["handshake"]["alerts"]]
        .into_iter()
        .find_map(|v| v.as_array())?;
    let a = list.last()?;
    if a["encrypted"].as_bool() == Some(true) {
        Some("encrypted_alert".into())
    } else {
        Some(a["description"].as_str().unwrap_or("?").to_string())
    }
}

fn render_ours(s: Option<&Value>, count: usize) -> String {
    let Some(s) = s else {
        return "none".into();
    };
    let outcome = s["outcome"].as_str().unwrap_or("?");
    let mut out = match outcome {
        "failed" => format!(
            "failed/{}/{}",
            s["cause"].as_str().unwrap_or("?"),
            s["reason"].as_str().unwrap_or("?")
        ),
        "incomplete" => format!("incomplete/{}", s["incomplete_reason"].as_str().unwrap_or("?")),
        other => other.to_string(),
    };
    out.push_str(&format!(
        ", last_alert={}",
        our_last_alert(s).unwrap_or_else(|| "-".into())
    ));
    if count > 1 {
        out.push_str(&format!(", sessions={count}"));
    }
    out
}

/// Whether the ground truth comes from Zeek itself rather than the tshark heuristic.
fn zeek_stated(m: &Value) -> bool {
    let b = m["ground_truth_basis"].as_str().unwrap_or("");
    b.starts_with("zeek ssl.log") || b.starts_with("zeek stdout") || b.starts_with("zeek test stdout")
}

/// The checks on which one matched session disagrees.
fn disagreements(m: &Value, ours: Option<&Value>, count: usize, peer_count: usize) -> Vec<&'static str> {
    let Some(o) = ours else {
        return vec!["present"];
    };
    let mut out = Vec::new();
    if count > peer_count {
        out.push("sessions");
    }
    let outcome = o["outcome"].as_str().unwrap_or("");
    let cause = o["cause"].as_str();
    let reason = o["reason"].as_str();
    if let Some(est) = m["established"].as_bool() {
        if est != (outcome == "established") {
            out.push("established");
        }
    }
    let verdict_ok = match m["verdict"].as_str() {
        Some("success") => Some(outcome == "established"),
        Some("failure") => Some(outcome == "failed"),
        Some("incomplete-at-eof") => Some(outcome == "incomplete" || (outcome == "failed" && cause == Some("timeout"))),
        Some("indeterminate") => Some(outcome == "incomplete"),
        Some("not-tls") => Some(
            (outcome == "failed" && matches!(reason, Some("plaintext_client" | "not_tls")))
                || (outcome == "incomplete" && o["incomplete_reason"] == "plaintext"),
        ),
        _ => None,
    };
    if verdict_ok == Some(false) {
        out.push("verdict");
    }
    let not_established = m["established"].as_bool() == Some(false) || m["verdict"].as_str() != Some("success");
    if not_established && m["verdict"].is_string() {
        let peer_alert = m["last_alert"].as_str().map(str::to_string);
        let our_alert = if zeek_stated(m) {
            our_last_plaintext_alert(o)
        } else {
            our_last_alert(o)
        };
        if (peer_alert.is_some() || our_alert.is_some()) && peer_alert != our_alert {
            out.push("alert");
        }
    }
    if let Some(hint) = m["cause_hint"].as_str() {
        if outcome == "failed" && cause != Some(hint) {
            out.push("cause");
        }
    }
    out
}

#[derive(Debug)]
struct Known {
    index: usize,
    file: String,
    session: String,
    checks: Vec<String>,
    peer: String,
    ours: String,
    class: String,
}

fn load_known() -> Vec<Known> {
    let path = known_differences_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let entries = doc["differences"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no \"differences\" array", path.display()));
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let s = |k: &str| -> String {
                e[k].as_str()
                    .unwrap_or_else(|| panic!("known difference #{i}: missing string field {k:?}"))
                    .to_string()
            };
            let checks: Vec<String> = e["checks"]
                .as_array()
                .unwrap_or_else(|| panic!("known difference #{i}: missing \"checks\""))
                .iter()
                .map(|c| c.as_str().expect("check name").to_string())
                .collect();
            let class = s("class");
            assert!(
                matches!(class.as_str(), "bug" | "justified" | "ambiguity"),
                "known difference #{i}: class must be bug, justified or ambiguity, not {class:?}"
            );
            assert!(s("why").len() >= 20, "known difference #{i}: say why we differ");
            Known {
                index: i,
                file: s("file"),
                session: s("session"),
                checks,
                peer: s("peer"),
                ours: s("ours"),
                class,
            }
        })
        .collect()
}

/// One compared manifest session.
struct Compared {
    file: String,
    session: String,
    zeek: bool,
    failed_checks: Vec<&'static str>,
    peer: String,
    ours: String,
}

/// Runs tlsdiag on every job in parallel (one thread per chunk).
fn run_all(corpus: &Path, jobs: &[(String, BTreeSet<u16>)]) -> BTreeMap<String, Run> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(4)
        .min(16);
    let chunk = jobs.len().div_ceil(threads).max(1);
    let mut runs: BTreeMap<String, Run> = BTreeMap::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                let corpus = &corpus;
                scope.spawn(move || {
                    part.iter()
                        .map(|(f, ports)| (f.clone(), run_tlsdiag(corpus, f, ports)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            runs.extend(h.join().expect("runner thread"));
        }
    });
    runs
}

/// Compares every manifest session with what we reported; returns them and the number of sessions
/// without a peer statement.
fn compare_all(by_file: &BTreeMap<String, &Value>, runs: &BTreeMap<String, Run>) -> (Vec<Compared>, usize) {
    let mut compared: Vec<Compared> = Vec::new();
    let mut not_compared = 0usize;
    for (f, e) in by_file {
        let run = &runs[f];
        let mut ours: BTreeMap<TupleKey, Vec<&Value>> = BTreeMap::new();
        for s in run.doc["sessions"].as_array().into_iter().flatten() {
            let k = tuple_key(our_endpoint(&s["client"]), our_endpoint(&s["server"]));
            ours.entry(k).or_default().push(s);
        }
        for list in ours.values_mut() {
            list.sort_by_key(|s| s["first_frame"].as_u64().unwrap_or(0));
        }
        let sessions = e["sessions"].as_array().cloned().unwrap_or_default();
        let mut peer_count: BTreeMap<TupleKey, usize> = BTreeMap::new();
        for m in &sessions {
            let k = tuple_key(
                parse_endpoint(m["client"].as_str().expect("client")),
                parse_endpoint(m["server"].as_str().expect("server")),
            );
            *peer_count.entry(k).or_default() += 1;
        }
        let mut nth: BTreeMap<TupleKey, usize> = BTreeMap::new();
        for m in &sessions {
            let client = m["client"].as_str().expect("client");
            let server = m["server"].as_str().expect("server");
            let k = tuple_key(parse_endpoint(client), parse_endpoint(server));
            let i = {
                let n = nth.entry(k).or_default();
                *n += 1;
                *n - 1
            };
            if m["established"].is_null() && m["verdict"].is_null() {
                // The peer states nothing about this session (nDPI flow line without TLS).
                not_compared += 1;
                continue;
            }
            let list = ours.get(&k);
            let mine = list.and_then(|l| l.get(i)).copied();
            let real_count = list
                .map(|l| {
                    l.iter()
                        .filter(|s| s["incomplete_reason"] != "no_data" && s["incomplete_reason"] != "plaintext")
                        .count()
                })
                .unwrap_or(0);
            let pc = peer_count[&k];
            compared.push(Compared {
                file: f.clone(),
                session: format!("{client} -> {server}"),
                zeek: zeek_stated(m),
                failed_checks: disagreements(m, mine, real_count, pc),
                peer: render_peer(m),
                ours: render_ours(mine, real_count),
            });
        }
    }

    (compared, not_compared)
}

#[test]
fn peer_corpus_conformance() {
    // A plain clone has no ../shared: the test prints why it skips and passes; where CI is
    // set (as .ci/run runs) a missing suite fails the test instead.
    let Some(corpus) = common::shared_suite("peer-corpus", "manifest.json", std::env::var_os("CI")) else {
        return;
    };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("manifest.json")).expect("read manifest.json"))
            .expect("manifest.json is JSON");
    let entries = manifest.as_array().expect("manifest is an array");
    let by_file: BTreeMap<String, &Value> = entries
        .iter()
        .map(|e| (e["file"].as_str().expect("file").to_string(), e))
        .collect();

    // Every capture on disk runs, listed in the manifest or not; every listed one must exist.
    let files = capture_files(&corpus);
    for f in by_file.keys() {
        assert!(files.contains(f), "manifest lists {f}, which is not in the corpus");
    }
    assert!(
        files.len() >= 100,
        "only {} captures in {}",
        files.len(),
        corpus.display()
    );

    let jobs: Vec<(String, BTreeSet<u16>)> = files
        .iter()
        .map(|f| {
            let mut ports = BTreeSet::from([443u16]);
            if let Some(e) = by_file.get(f) {
                for s in e["sessions"].as_array().into_iter().flatten() {
                    if let Some(srv) = s["server"].as_str() {
                        ports.insert(parse_endpoint(srv).1);
                    }
                }
            }
            (f.clone(), ports)
        })
        .collect();

    let runs = run_all(&corpus, &jobs);

    // Exit status: never 2, and 1 exactly when the report has a failed session.
    let mut hard_errors = Vec::new();
    for (f, r) in &runs {
        if r.code == 2 || r.doc.is_null() {
            hard_errors.push(format!("{f}: exit status {} ({})", r.code, r.stderr.trim()));
            continue;
        }
        let failed = r.doc["counts"]["failed"].as_u64().unwrap_or(0);
        let want = if failed > 0 { 1 } else { 0 };
        if r.code != want {
            hard_errors.push(format!(
                "{f}: exit status {}, but the report counts {failed} failed",
                r.code
            ));
        }
    }
    assert!(
        hard_errors.is_empty(),
        "captures not read cleanly:\n  {}",
        hard_errors.join("\n  ")
    );

    let (compared, not_compared) = compare_all(&by_file, &runs);

    // Match disagreements against the known list.
    let known = load_known();
    let mut used = vec![false; known.len()];
    let mut problems: Vec<String> = Vec::new();
    let mut explained: BTreeMap<String, usize> = BTreeMap::new();
    for c in compared.iter().filter(|c| !c.failed_checks.is_empty()) {
        let entry = known
            .iter()
            .find(|k| k.file == c.file && (k.session == c.session || k.session == "*"));
        match entry {
            None => problems.push(format!(
                "unexplained disagreement ({}):\n    {{\"file\": {:?}, \"session\": {:?}, \"checks\": {:?}, \"peer\": {:?}, \"ours\": {:?}, \"class\": \"?\", \"why\": \"?\"}}",
                c.failed_checks.join(", "),
                c.file,
                c.session,
                c.failed_checks,
                c.peer,
                c.ours
            )),
            Some(k) => {
                used[k.index] = true;
                let missing: Vec<&&str> = c
                    .failed_checks
                    .iter()
                    .filter(|x| !k.checks.iter().any(|y| y == **x))
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "{} {}: also disagrees on {missing:?} (known entry #{} lists {:?}); now peer: {} | ours: {}",
                        c.file, c.session, k.index, k.checks, c.peer, c.ours
                    ));
                }
                if k.peer != c.peer || k.ours != c.ours {
                    problems.push(format!(
                        "{} {}: known entry #{} is out of date:\n    entry says peer {:?}, ours {:?}\n    now       peer {:?}, ours {:?}",
                        c.file, c.session, k.index, k.peer, k.ours, c.peer, c.ours
                    ));
                }
                *explained.entry(k.class.clone()).or_default() += 1;
            }
        }
    }
    for (k, u) in known.iter().zip(&used) {
        if !u {
            problems.push(format!(
                "known entry #{} ({} {}: peer {:?}, ours {:?}) no longer disagrees: remove it from {}",
                k.index,
                k.file,
                k.session,
                k.peer,
                k.ours,
                known_differences_path().display()
            ));
        }
    }

    // The figure.
    let total = compared.len();
    let agree = compared.iter().filter(|c| c.failed_checks.is_empty()).count();
    let zeek_total = compared.iter().filter(|c| c.zeek).count();
    let zeek_agree = compared.iter().filter(|c| c.zeek && c.failed_checks.is_empty()).count();
    let mut per_check: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &compared {
        for x in &c.failed_checks {
            *per_check.entry(x).or_default() += 1;
        }
    }
    println!(
        "peer corpus: {} captures run, none with exit status 2; {agree}/{total} sessions agree ({:.1}%); \
         Zeek-stated ground truth {zeek_agree}/{zeek_total}; tshark-heuristic ground truth {}/{}; \
         {not_compared} sessions without a peer statement not compared",
        runs.len(),
        100.0 * agree as f64 / total.max(1) as f64,
        agree - zeek_agree,
        total - zeek_total,
    );
    let excused = explained.get("justified").copied().unwrap_or(0) + explained.get("ambiguity").copied().unwrap_or(0);
    println!(
        "in scope (sessions whose difference is justified or a manifest ambiguity set aside): {agree}/{} agree ({:.1}%)",
        total - excused,
        100.0 * agree as f64 / (total - excused).max(1) as f64
    );
    println!("disagreements by check: {per_check:?}; known differences by class (sessions): {explained:?}");

    // The same captures without -p: only 443 is listed, TLS elsewhere is found by its content.
    // Every session that agrees with the peer when its port is listed must agree without it.
    let jobs_bare: Vec<(String, BTreeSet<u16>)> = files.iter().map(|f| (f.clone(), BTreeSet::new())).collect();
    let runs_bare = run_all(&corpus, &jobs_bare);
    let (compared_bare, _) = compare_all(&by_file, &runs_bare);
    let agree_bare = compared_bare.iter().filter(|c| c.failed_checks.is_empty()).count();
    println!(
        "without -p: {agree_bare}/{} sessions agree ({:.1}%)",
        compared_bare.len(),
        100.0 * agree_bare as f64 / compared_bare.len().max(1) as f64
    );
    for (with, bare) in compared.iter().zip(&compared_bare) {
        if with.failed_checks.is_empty() && !bare.failed_checks.is_empty() {
            problems.push(format!(
                "{} {}: agrees with -p, not without ({:?}): ours {}",
                bare.file, bare.session, bare.failed_checks, bare.ours
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "{} problem(s) against the peer corpus (known list: {}):\n  {}",
        problems.len(),
        known_differences_path().display(),
        problems.join("\n  ")
    );
}
