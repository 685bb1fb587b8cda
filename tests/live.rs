//! `tlsdiag live` end to end: a pair of network namespaces joined by a veth, real OpenSSL
//! servers and clients, tlsdiag sniffing the server's side, SIGINT/SIGTERM at the end.
//!
//! Checks: each verdict is streamed before the stop and within a second of being decided; the
//! summary line after SIGINT; the text format after SIGTERM; the `--write` capture analyzed
//! offline gives the same verdicts; the one-line errors (no such interface, interface down,
//! filter, permission). `replay` (tests/live/replay.rs): tunnelled, VLAN-tagged, fragmented and
//! any-port sample captures replayed onto the veth, found as `analyze` finds them.
//!
//! Needs root (packet capture and `ip netns`); skips with a message where the machine does not
//! allow it. Every wait is bounded; only processes started here are stopped, by PID.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
#![cfg(feature = "live")]

mod common;
// Replays of tunnelled, tagged and fragmented sample captures (in tests/live/, one binary).
#[path = "live/replay.rs"]
mod replay;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SERVER_IP: &str = "10.77.0.1";
const CLIENT_IP: &str = "10.77.0.2";
const PORT_OK: u16 = 443;
const PORT_EXPIRED: u16 = 8443;
const PORT_TLS13_ONLY: u16 = 9443;
const PORT_DROPPED: u16 = 10443;
/// Seconds; short so the unanswered SYN is decided quickly (SYNs at 0, 1, 3 s → decided at 6 s).
const HANDSHAKE_TIMEOUT: &str = "3";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tlsdiag")
}

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/certs")
}

/// Runs a command to completion within `limit`; (exit code, stdout, stderr).
fn run(cmd: &mut Command, limit: Duration) -> (i32, String, String) {
    let mut child = Proc::spawn(cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()));
    let out = child.0.stdout.take().map(drain);
    let err = child.0.stderr.take().map(drain);
    let code = child
        .wait(limit)
        .unwrap_or_else(|| panic!("{cmd:?} did not finish within {limit:?}"));
    let text = |h: Option<thread::JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    (code, text(out), text(err))
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Runs a setup command that must succeed.
fn must(args: &[&str]) {
    let (code, out, err) = run(Command::new(args[0]).args(&args[1..]), Duration::from_secs(20));
    assert_eq!(code, 0, "{args:?} failed: {out}{err}");
}

/// A process started by this test; killed (by its PID) and reaped when dropped.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        Proc(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends a signal by name ("INT", "TERM") to this process only.
    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits up to `limit` for the exit; the exit code (-1 for a signal), or None on timeout.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Two network namespaces (server, client) joined by a veth pair; deleted when dropped.
struct Netns {
    server: String,
    client: String,
    server_if: String,
    client_if: String,
}

impl Netns {
    /// None when the machine does not allow network namespaces.
    fn create() -> Option<Netns> {
        Netns::create_tagged("")
    }

    /// As [`Netns::create`], with `tag` in the names (tests run at once in one process).
    fn create_tagged(tag: &str) -> Option<Netns> {
        let pid = std::process::id();
        let server = format!("tdl-s{tag}-{pid}");
        let client = format!("tdl-c{tag}-{pid}");
        let (code, _, err) = run(
            Command::new("ip").args(["netns", "add", &server]),
            Duration::from_secs(10),
        );
        if code != 0 {
            eprintln!("SKIP live capture test: `ip netns add` failed: {}", err.trim());
            return None;
        }
        let mut ns = Netns {
            server: server.clone(),
            client: String::new(),
            server_if: format!("tdvs{tag}{pid}"),
            client_if: format!("tdvc{tag}{pid}"),
        };
        must(&["ip", "netns", "add", &client]);
        ns.client = client.clone();
        let client_if = ns.client_if.clone();
        must(&[
            "ip",
            "link",
            "add",
            &ns.server_if,
            "netns",
            &server,
            "type",
            "veth",
            "peer",
            "name",
            &client_if,
            "netns",
            &client,
        ]);
        for (n, dev, ip) in [(&server, &ns.server_if, SERVER_IP), (&client, &client_if, CLIENT_IP)] {
            must(&["ip", "-n", n, "addr", "add", &format!("{ip}/24"), "dev", dev]);
            must(&["ip", "-n", n, "link", "set", dev, "up"]);
            must(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        Some(ns)
    }

    fn exec(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Drops every packet to `port` in the server namespace (iptables, or nft).
    fn drop_port(&self, port: u16) {
        let p = port.to_string();
        let (code, _, err1) = run(
            self.exec(&self.server, "iptables")
                .args(["-A", "INPUT", "-p", "tcp", "--dport", &p, "-j", "DROP"]),
            Duration::from_secs(10),
        );
        if code == 0 {
            return;
        }
        let rules = format!(
            "add table inet tdl\nadd chain inet tdl input {{ type filter hook input priority 0; }}\nadd rule inet tdl input tcp dport {p} drop\n"
        );
        let file = std::env::temp_dir().join(format!("tdl-nft-{}", std::process::id()));
        std::fs::write(&file, rules).expect("nft rules");
        let (code, _, err2) = run(
            self.exec(&self.server, "nft").args(["-f", &file.to_string_lossy()]),
            Duration::from_secs(10),
        );
        let _ = std::fs::remove_file(&file);
        assert_eq!(code, 0, "cannot drop port {port}: iptables: {err1} nft: {err2}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and with it the pair.
        for n in [&self.server, &self.client] {
            if !n.is_empty() {
                let _ = Command::new("ip").args(["netns", "del", n]).status();
            }
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A line of output and the wall-clock time it was read.
type Line = (SystemTime, String);

/// Reads lines from a child's pipe into a channel, stamping each.
fn lines(r: impl Read + Send + 'static) -> Receiver<Line> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send((SystemTime::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// `openssl s_client` in the client namespace to good.test on the server's `port`, verifying
/// with the CA file `ca`.
fn s_client(ns: &Netns, port: u16, ca: &str) -> Command {
    let mut cmd = ns.exec(&ns.client, "openssl");
    cmd.args(["s_client", "-connect", &format!("{SERVER_IP}:{port}")])
        .args([
            "-servername",
            "good.test",
            "-CAfile",
            ca,
            "-verify_return_error",
            "-brief",
        ]);
    cmd
}

/// Starts `cmd` (a `tlsdiag live` run) with its output and errors read line by line.
fn spawn_sniffer(cmd: &mut Command) -> (Proc, Receiver<Line>, Receiver<Line>) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    let out = lines(p.0.stdout.take().expect("stdout"));
    let err = lines(p.0.stderr.take().expect("stderr"));
    (p, out, err)
}

/// Waits until a line satisfies `pred` (keeping every line read in `seen`).
fn wait_for(rx: &Receiver<Line>, seen: &mut Vec<Line>, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + limit;
    if seen.iter().any(|(_, l)| pred(l)) {
        return;
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = pred(&line.1);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!(
                "no {what} within {limit:?}; lines so far:\n{}",
                seen.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n")
            ),
        }
    }
}

/// Reads the rest of the lines until the pipe closes (bounded).
fn rest(rx: &Receiver<Line>, seen: &mut Vec<Line>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("output did not end within {limit:?}"),
        }
    }
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// A session line reduced to what must match: server port, client port, outcome, reason.
fn verdict(v: &serde_json::Value) -> (u64, u64, String, String) {
    let t = &v["tlsdiag"];
    (
        v["server"]["port"].as_u64().unwrap_or(0),
        v["client"]["port"].as_u64().unwrap_or(0),
        t["outcome"].as_str().unwrap_or("").to_string(),
        t["reason"].as_str().unwrap_or("-").to_string(),
    )
}

fn is_session_to(line: &str, port: u16) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .map(|v| v["tlsdiag"]["record"] == "session" && v["server"]["port"] == port)
        .unwrap_or(false)
}

/// An RFC 3339 UTC time as seconds since the epoch (the format the reports use).
fn rfc3339_secs(s: &str) -> f64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').expect("rfc3339");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().expect("date")).collect();
    let (y, m, day) = (d[0], d[1], d[2]);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t: Vec<f64> = time.split(':').map(|x| x.parse().expect("time")).collect();
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[test]
fn live_capture_streams_verdicts_of_real_tls_sessions() {
    if !is_root() {
        eprintln!("SKIP live capture test: needs root (packet capture and network namespaces)");
        return;
    }
    let Some(ns) = Netns::create() else { return };
    ns.drop_port(PORT_DROPPED);
    let tmp = std::env::temp_dir().join(format!("tlsdiag-live-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let pcap = tmp.join("live.pcap");
    let text_out = tmp.join("live.txt");
    let certs = certs();
    let c = |f: &str| certs.join(f).to_string_lossy().into_owned();

    // Servers in the server namespace.
    let server = |port: u16, cert: &str, key: &str, extra: &[&str]| {
        let mut cmd = ns.exec(&ns.server, "openssl");
        cmd.args([
            "s_server",
            "-www",
            "-accept",
            &port.to_string(),
            "-cert",
            &c(cert),
            "-key",
            &c(key),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        Proc::spawn(&mut cmd)
    };
    let _servers = [
        server(PORT_OK, "good.pem", "good.key", &[]),
        server(PORT_EXPIRED, "expired.pem", "expired.key", &[]),
        server(PORT_TLS13_ONLY, "good.pem", "good.key", &["-tls1_3"]),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = run(ns.exec(&ns.server, "ss").args(["-ltnH"]), Duration::from_secs(5));
        if [PORT_OK, PORT_EXPIRED, PORT_TLS13_ONLY]
            .iter()
            .all(|p| out.contains(&format!(":{p} ")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the openssl servers did not start listening: {out}"
        );
        thread::sleep(Duration::from_millis(50));
    }

    // Two sniffers on the server's veth: NDJSON on stdout (stopped by SIGINT), and text to a
    // file with other capture options (stopped by SIGTERM).
    let port_args: Vec<String> = [PORT_OK, PORT_EXPIRED, PORT_TLS13_ONLY, PORT_DROPPED]
        .iter()
        .flat_map(|p| ["-p".to_string(), p.to_string()])
        .collect();
    let sniffer = |extra: &[&str]| {
        let mut cmd = ns.exec(&ns.server, bin());
        cmd.args(["live", "-i", &ns.server_if, "--handshake-timeout", HANDSHAKE_TIMEOUT])
            .args(&port_args)
            .args(extra);
        spawn_sniffer(&mut cmd)
    };
    let pcap_s = pcap.to_string_lossy().into_owned();
    let (mut nd, nd_out, nd_err) = sniffer(&["--format", "ndjson", "--write", &pcap_s]);
    let text_s = text_out.to_string_lossy().into_owned();
    let (mut tx, _tx_out, tx_err) = sniffer(&[
        "--format",
        "text",
        "-o",
        &text_s,
        "--no-promisc",
        "--snaplen",
        "65535",
        "--redact",
    ]);
    let mut nd_seen = Vec::new();
    let mut nd_log = Vec::new();
    let mut tx_log = Vec::new();
    wait_for(
        &nd_err,
        &mut nd_log,
        Duration::from_secs(10),
        "ndjson sniffer start",
        |l| l.contains("listening on"),
    );
    wait_for(
        &tx_err,
        &mut tx_log,
        Duration::from_secs(10),
        "text sniffer start",
        |l| l.contains("listening on"),
    );

    // Real clients in the client namespace.
    let client = |port: u16, extra: &[&str]| {
        let mut cmd = s_client(&ns, port, &c("ca.pem"));
        cmd.args(extra);
        cmd
    };
    let limit = Duration::from_secs(20);
    let (code, _, err) = run(&mut client(PORT_OK, &[]), limit);
    assert_eq!(code, 0, "the good handshake failed: {err}");
    wait_for(&nd_out, &mut nd_seen, limit, "verdict of the good session", |l| {
        is_session_to(l, PORT_OK)
    });
    let (code, _, err) = run(&mut client(PORT_EXPIRED, &[]), limit);
    assert_ne!(code, 0, "the client accepted an expired certificate: {err}");
    let (code, _, err) = run(&mut client(PORT_TLS13_ONLY, &["-tls1_2"]), limit);
    assert_ne!(code, 0, "TLS 1.2 against a TLS 1.3-only server worked: {err}");
    for port in [PORT_EXPIRED, PORT_TLS13_ONLY] {
        wait_for(
            &nd_out,
            &mut nd_seen,
            limit,
            &format!("verdict of the session to {port}"),
            |l| is_session_to(l, port),
        );
    }
    // The unanswered SYN: decided by the handshake timeout while the interface is idle.
    let syn_client = Proc::spawn(
        client(PORT_DROPPED, &[])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for(&nd_out, &mut nd_seen, limit, "verdict of the unanswered SYN", |l| {
        is_session_to(l, PORT_DROPPED)
    });
    drop(syn_client);
    // A connection in flight when the capture stops must still be reported.
    let in_flight = Proc::spawn(
        client(PORT_DROPPED, &[])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    thread::sleep(Duration::from_millis(400));
    let streamed = nd_seen.len();
    let stop_time = SystemTime::now();
    nd.signal("INT");
    tx.signal("TERM");
    let nd_code = nd
        .wait(Duration::from_secs(15))
        .expect("tlsdiag live did not stop after SIGINT");
    let tx_code = tx
        .wait(Duration::from_secs(15))
        .expect("tlsdiag live did not stop after SIGTERM");
    drop(in_flight);
    rest(&nd_out, &mut nd_seen, Duration::from_secs(10));
    rest(&nd_err, &mut nd_log, Duration::from_secs(10));
    rest(&tx_err, &mut tx_log, Duration::from_secs(10));
    let log = |l: &[Line]| l.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("\n");
    eprintln!("ndjson sniffer stderr:\n{}", log(&nd_log));
    eprintln!("text sniffer stderr:\n{}", log(&tx_log));

    // Streamed verdicts.
    assert_eq!(nd_code, 1, "exit status with failed sessions");
    let sessions: Vec<(SystemTime, serde_json::Value)> = nd_seen
        .iter()
        .map(|(t, l)| (*t, json(l)))
        .filter(|(_, v)| v["tlsdiag"]["record"] == "session")
        .collect();
    let summary = json(&nd_seen.last().expect("a summary line").1);
    assert_eq!(summary["tlsdiag"]["record"], "summary", "last line is the summary");
    let got: Vec<(u64, String, String)> = sessions
        .iter()
        .map(|(_, v)| {
            let (sp, _, o, r) = verdict(v);
            (sp, o, r)
        })
        .collect();
    let want = |p: u16, o: &str, r: &str| (u64::from(p), o.to_string(), r.to_string());
    assert_eq!(
        got,
        vec![
            want(PORT_OK, "established", "-"),
            want(PORT_EXPIRED, "failed", "expired"),
            want(PORT_TLS13_ONLY, "failed", "version_mismatch"),
            want(PORT_DROPPED, "failed", "syn_unanswered"),
            want(PORT_DROPPED, "incomplete", "-"),
        ],
        "streamed verdicts"
    );
    let causes: Vec<&str> = sessions
        .iter()
        .map(|(_, v)| v["tlsdiag"]["cause"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(causes, ["-", "certificate", "protocol", "timeout", "-"]);
    assert_eq!(
        sessions[0].1["tls"]["client"]["server_name"], "good.test",
        "SNI in the streamed line"
    );
    // Streaming: the first four came before the stop, each within a second of its decision
    // (the last packet, or for the SYN its first SYN plus the handshake timeout: retransmitted
    // SYNs do not restart it).
    assert!(streamed >= 4, "only {streamed} verdicts before SIGINT");
    for (i, (read_at, v)) in sessions.iter().enumerate().take(4) {
        assert!(*read_at < stop_time, "verdict {i} came after SIGINT");
        // A lean line (established) has no event.start/end: @timestamp and its duration say them.
        let start = rfc3339_secs(v["@timestamp"].as_str().expect("@timestamp"));
        let end = start + v["event"]["duration"].as_f64().expect("event.duration") / 1e9;
        let decided = if i == 3 {
            start + HANDSHAKE_TIMEOUT.parse::<f64>().expect("timeout")
        } else {
            end
        };
        let delay = epoch_secs(*read_at) - decided;
        eprintln!("verdict {i} streamed {:.0} ms after it was decided", delay * 1000.0);
        assert!(
            (-0.5..1.0).contains(&delay),
            "verdict {i} read {delay:.3} s after it was decided"
        );
    }
    assert!(
        sessions[4].0 >= stop_time,
        "the in-flight session is decided at the stop"
    );
    let counts = &summary["tlsdiag"]["counts"];
    assert_eq!(counts["sessions"], 5, "summary: {summary}");
    assert_eq!(counts["established"], 1);
    assert_eq!(counts["failed"], 3);
    assert_eq!(counts["incomplete"], 1);
    assert_eq!(counts["failed_by_cause"]["certificate"], 1);
    assert_eq!(counts["failed_by_cause"]["protocol"], 1);
    assert_eq!(counts["failed_by_cause"]["timeout"], 1);
    let capture = &summary["tlsdiag"]["capture"];
    assert!(capture["packets"].as_u64().unwrap_or(0) >= 20, "summary: {summary}");
    assert!(
        capture["anomalies"].get("kernel_dropped_packets").is_none(),
        "no drops expected"
    );
    assert!(log(&nd_log).contains("0 dropped by the kernel"), "drops reported");

    // The text sniffer (other options, stopped by SIGTERM).
    assert_eq!(tx_code, 1, "text sniffer exit status");
    let text = std::fs::read_to_string(&text_out).expect("text output");
    let text_lines: Vec<&str> = text.lines().collect();
    let expect_text = [
        "ESTABLISHED TLS 1.3",
        "FAILED certificate/expired",
        "FAILED protocol/version_mismatch",
        "FAILED timeout/syn_unanswered",
        "INCOMPLETE",
    ];
    for (line, want) in text_lines.iter().zip(expect_text) {
        assert!(line.contains(want), "text line {line:?} lacks {want:?}\n{text}");
        assert!(line.contains(&format!("→ {SERVER_IP}:")), "{line}");
        // --redact: the client is a pseudonym, the server stays.
        assert!(line.contains("  198.18.0.1:"), "{line}");
    }
    assert!(!text.contains(CLIENT_IP), "--redact leaked the client address:\n{text}");
    assert!(
        text_lines[0].contains(" good.test "),
        "SNI in the text line: {}",
        text_lines[0]
    );
    assert!(text.contains("  established  1\n"), "{text}");
    assert!(text.contains("  failed       3"), "{text}");
    assert!(text.contains("  incomplete   1\n"), "{text}");
    assert!(text.contains("in interface tdvs"), "{text}");

    // The saved capture gives the same verdicts offline.
    let mut offline_cmd = Command::new(bin());
    offline_cmd
        .args([
            "analyze",
            "--format",
            "ndjson",
            "--handshake-timeout",
            HANDSHAKE_TIMEOUT,
        ])
        .args(&port_args)
        .arg(&pcap);
    let (code, out, err) = run(&mut offline_cmd, Duration::from_secs(30));
    assert_eq!(code, 1, "offline analysis of the --write capture: {err}");
    let mut offline: Vec<_> = out
        .lines()
        .map(json)
        .filter(|v| v["tlsdiag"]["record"] == "session")
        .map(|v| verdict(&v))
        .collect();
    let mut live: Vec<_> = sessions.iter().map(|(_, v)| verdict(v)).collect();
    offline.sort();
    live.sort();
    assert_eq!(offline, live, "offline verdicts of the --write capture");
    assert!(!live.iter().any(|v| v.1 == 0), "client ports present");

    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn live_errors_are_one_line_with_status_2() {
    if !is_root() {
        eprintln!("SKIP live error test: needs root");
        return;
    }
    let one_line = |args: &[&str], want: &str| {
        let (code, out, err) = run(Command::new(bin()).args(args), Duration::from_secs(20));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
    };
    one_line(&["live", "-i", "tdl-nosuch0"], "no such interface");
    // Outputs are checked before the capture starts: one file for both, a missing directory.
    let same = std::env::temp_dir().join(format!("tdl-same-{}", std::process::id()));
    let same = same.to_string_lossy().into_owned();
    one_line(&["live", "-i", "lo", "-o", &same, "-w", &same], "both name");
    assert!(!std::path::Path::new(&same).exists(), "nothing written to {same}");
    // A key log is an input, even one not there yet (read as it appears).
    one_line(&["live", "-i", "lo", "--keylog", &same, "-w", &same], "is the key log");
    assert!(!std::path::Path::new(&same).exists(), "nothing written to {same}");
    one_line(
        &["live", "-i", "lo", "-w", "/nonexistent-tdl-dir/x.pcap"],
        "does not exist",
    );
    one_line(&["live", "-i", "lo", "--filter", "tcp port 99999"], "does not compile");
    one_line(&["live", "-i", "lo", "--filter", "not a filter ("], "does not compile");
    // A fresh namespace's loopback is down.
    let pid = std::process::id();
    let name = format!("tdl-e-{pid}");
    let (code, _, _) = run(
        Command::new("ip").args(["netns", "add", &name]),
        Duration::from_secs(10),
    );
    if code == 0 {
        let ns = Netns {
            server: name.clone(),
            client: String::new(),
            server_if: String::new(),
            client_if: String::new(),
        };
        let (code, _, err) = run(
            ns.exec(&name, bin()).args(["live", "-i", "lo"]),
            Duration::from_secs(20),
        );
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("interface is down"), "{err}");
    } else {
        eprintln!("SKIP interface-down check: `ip netns add` failed");
    }
    // Without privileges (as nobody), when setpriv exists and nobody can run the binary.
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP permission check: no setpriv");
        return;
    }
    let (code, _, err) = run(
        Command::new("setpriv").args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin(),
            "live",
            "-i",
            "lo",
        ]),
        Duration::from_secs(20),
    );
    if err.contains("tlsdiag: ") && err.contains("permission denied") {
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("permission denied") && err.contains("setcap"), "{err}");
    } else {
        eprintln!(
            "SKIP permission check: cannot run the binary as nobody ({})",
            err.trim()
        );
    }
}

/// What the live loop relies on, without root: the analyzer's clock tick decides a pending
/// handshake after the handshake timeout even when no further packet comes.
mod ticks {
    use etherparse::PacketBuilder;
    use tlsdiag::capture::{LinkType, Packet, Timestamp};
    use tlsdiag::pipeline::{Analyzer, Options};
    use tlsdiag::report::model::SessionReport;

    const T0: i64 = 1_795_000_000;

    fn frame(sport: u16, seq: u32, syn: bool, ack: Option<u32>, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .tcp(sport, 443, seq, 64000);
        let b = if syn { b.syn() } else { b };
        let b = match ack {
            Some(a) => b.ack(a),
            None => b,
        };
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("frame");
        v
    }

    fn reply(dport: u16, seq: u32, ack: u32) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2; 6], [1; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(443, dport, seq, 64000)
            .syn()
            .ack(ack);
        let mut v = Vec::new();
        b.write(&mut v, &[]).expect("frame");
        v
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_parts(T0, 0).add_nanos(ms * 1_000_000)
    }

    fn feed(a: &mut Analyzer, ms: i64, data: &[u8], out: &mut Vec<SessionReport>) {
        let p = Packet {
            ts: at(ms),
            link: LinkType::ETHERNET,
            data,
            orig_len: data.len() as u32,
        };
        a.packet(&p, &mut |s| out.push(s));
    }

    fn analyzer() -> Analyzer {
        Analyzer::new(
            Options {
                handshake_timeout_secs: 3,
                ..Options::default()
            },
            false,
        )
    }

    #[test]
    fn an_unanswered_syn_is_decided_by_the_clock() {
        let mut a = analyzer();
        let mut out = Vec::new();
        feed(&mut a, 0, &frame(40000, 1000, true, None, &[]), &mut out);
        feed(&mut a, 1000, &frame(40000, 1000, true, None, &[]), &mut out);
        a.tick(at(2900), &mut |s| out.push(s));
        assert!(out.is_empty(), "decided before the timeout after the first SYN");
        // The timeout runs from the first SYN: the retransmission at 1 s does not restart it
        // (a client counts its own give-up time from its first SYN).
        a.tick(at(3100), &mut |s| out.push(s));
        assert_eq!(out.len(), 1, "decided by the tick, 3 s after the first SYN");
        assert_eq!(out[0].reason.as_deref(), Some("syn_unanswered"));
    }

    #[test]
    fn an_unanswered_client_hello_is_decided_by_the_clock() {
        let mut a = analyzer();
        let mut out = Vec::new();
        feed(&mut a, 0, &frame(40001, 1000, true, None, &[]), &mut out);
        feed(&mut a, 1, &reply(40001, 5000, 1001), &mut out);
        feed(&mut a, 2, &frame(40001, 1001, false, Some(5001), &[]), &mut out);
        // A ClientHello record header and a little of its body: a handshake now waits.
        let hello = [0x16, 0x03, 0x01, 0x00, 0x30, 0x01, 0x00, 0x00, 0x2c, 0x03, 0x03];
        feed(&mut a, 3, &frame(40001, 1001, false, Some(5001), &hello), &mut out);
        a.tick(at(2900), &mut |s| out.push(s));
        assert!(out.is_empty(), "decided before the handshake timeout");
        a.tick(at(3100), &mut |s| out.push(s));
        assert_eq!(out.len(), 1, "decided by the tick, not after the idle timeout");
        assert_eq!(out[0].cause.map(|c| c.id()), Some("timeout"), "{}", out[0].summary);
    }
}

/// Lost packets are counted and said: tlsdiag, with a capture buffer of 256 KiB, is stopped
/// (SIGSTOP) while an 8 MiB download over real TLS crosses the interface, so the kernel must
/// drop; after SIGCONT a new handshake is still reported (with high confidence: it began after
/// the loss), and at the exit libpcap's counters appear on standard error and in the summary.
#[test]
fn live_capture_reports_kernel_drops() {
    if !is_root() {
        eprintln!("SKIP live drop test: needs root (packet capture and network namespaces)");
        return;
    }
    let Some(ns) = Netns::create_tagged("d") else { return };
    let tmp = std::env::temp_dir().join(format!("tlsdiag-live-drops-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let big: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(tmp.join("big"), &big).expect("download file");
    let certs = certs();
    let c = |f: &str| certs.join(f).to_string_lossy().into_owned();
    let (download_port, clean_port) = (PORT_OK, PORT_EXPIRED);
    // -WWW serves files of the working directory; -www a status page.
    let server = |port: u16, mode: &str| {
        let mut cmd = ns.exec(&ns.server, "openssl");
        cmd.args(["s_server", mode, "-accept", &port.to_string()])
            .args(["-cert", &c("good.pem"), "-key", &c("good.key")])
            .current_dir(&tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Proc::spawn(&mut cmd)
    };
    let _servers = [server(download_port, "-WWW"), server(clean_port, "-www")];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = run(ns.exec(&ns.server, "ss").args(["-ltnH"]), Duration::from_secs(5));
        if [download_port, clean_port]
            .iter()
            .all(|p| out.contains(&format!(":{p} ")))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the openssl servers did not start: {out}");
        thread::sleep(Duration::from_millis(50));
    }

    let mut cmd = ns.exec(&ns.server, bin());
    cmd.args(["live", "-i", &ns.server_if, "-B", "256", "--format", "ndjson"])
        .args(["-p", &download_port.to_string(), "-p", &clean_port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut sniffer = Proc::spawn(&mut cmd);
    let out = lines(sniffer.0.stdout.take().expect("stdout"));
    let err = lines(sniffer.0.stderr.take().expect("stderr"));
    let (mut seen, mut log) = (Vec::new(), Vec::new());
    wait_for(&err, &mut log, Duration::from_secs(10), "sniffer start", |l| {
        l.contains("listening on")
    });
    assert!(log[0].1.contains("buffer 256 KiB"), "{}", log[0].1);

    // The download while the sniffer cannot read.
    sniffer.signal("STOP");
    let mut get = ns.exec(&ns.client, "openssl");
    get.args(["s_client", "-connect", &format!("{SERVER_IP}:{download_port}")])
        .args(["-servername", "good.test", "-CAfile", &c("ca.pem"), "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut download = Proc::spawn(&mut get);
    // The request; stdin stays open until the server has sent the file and closed.
    let mut stdin = download.0.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, b"GET /big HTTP/1.0\r\n\r\n").expect("request");
    // The body is binary: counted in bytes.
    let mut body_pipe = download.0.stdout.take().expect("stdout");
    let body = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = body_pipe.read_to_end(&mut v);
        v
    });
    let get_err = download.0.stderr.take().map(drain).expect("stderr");
    let code = download.wait(Duration::from_secs(30));
    drop(stdin);
    sniffer.signal("CONT");
    assert_eq!(code, Some(0), "the download did not finish");
    let got = body.join().expect("download output");
    let get_err = get_err.join().expect("download errors");
    assert!(
        got.len() >= big.len(),
        "downloaded {} bytes of {}: {get_err}",
        got.len(),
        big.len()
    );

    // A handshake after the loss is still reported.
    thread::sleep(Duration::from_millis(500));
    let mut hello = s_client(&ns, clean_port, &c("ca.pem"));
    let (code, _, e) = run(&mut hello, Duration::from_secs(20));
    assert_eq!(code, 0, "the handshake after the loss failed: {e}");
    wait_for(
        &out,
        &mut seen,
        Duration::from_secs(20),
        "verdict after the loss",
        |l| is_session_to(l, clean_port),
    );
    sniffer.signal("INT");
    let status = sniffer
        .wait(Duration::from_secs(15))
        .expect("tlsdiag live did not stop");
    rest(&out, &mut seen, Duration::from_secs(10));
    rest(&err, &mut log, Duration::from_secs(10));
    let log: Vec<&str> = log.iter().map(|(_, l)| l.as_str()).collect();
    eprintln!("sniffer stderr:\n{}", log.join("\n"));
    assert!(status == 0 || status == 1, "exit status {status}");

    let records: Vec<serde_json::Value> = seen.iter().map(|(_, l)| json(l)).collect();
    let clean = records
        .iter()
        .find(|v| v["tlsdiag"]["record"] == "session" && v["server"]["port"] == clean_port)
        .expect("the session after the loss");
    assert_eq!(clean["tlsdiag"]["outcome"], "established", "{clean}");
    assert_eq!(clean["tlsdiag"]["confidence"], "high", "opened after the loss: {clean}");
    // The download's handshake came before the buffer overflowed (its confidence depends on
    // whether its verdict was out before the loss was counted).
    assert!(
        records.iter().any(|v| v["tlsdiag"]["record"] == "session"
            && v["server"]["port"] == download_port
            && v["tlsdiag"]["outcome"] == "established"),
        "the download's session: {records:?}"
    );
    // libpcap's counters: the exit line, the warning, the summary.
    let exit_line = log
        .iter()
        .find(|l| l.contains(" packets captured on "))
        .expect("the exit line with the counters");
    let number_before = |what: &str| -> u64 {
        let head = &exit_line[..exit_line
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} in {exit_line}"))];
        head.rsplit(|ch: char| !ch.is_ascii_digit())
            .find(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no count before {what:?} in {exit_line}"))
    };
    let kernel = number_before(" dropped by the kernel");
    let captured = number_before(" packets captured on ");
    assert!(
        kernel > 0,
        "an 8 MiB download into a stopped 256 KiB capture lost nothing: {exit_line}"
    );
    assert!(captured > 0, "{exit_line}");
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("WARNING: {kernel} packet(s) were lost by the capture"))),
        "the loss warning"
    );
    let summary = records.last().expect("summary line");
    assert_eq!(summary["tlsdiag"]["record"], "summary");
    assert_eq!(
        summary["tlsdiag"]["capture"]["anomalies"]["kernel_dropped_packets"], kernel,
        "summary: {summary}"
    );
    assert_eq!(summary["tlsdiag"]["capture"]["packets"], captured, "summary: {summary}");
    let _ = std::fs::remove_dir_all(&tmp);
}
