//! `tlsdiag live` on what a mirror port or a cloud traffic mirror delivers: the committed sample
//! captures of tunnelled (VXLAN on 4789 and 8472, Geneve, GRE, ERSPAN II/III, GTP-U, IP-in-IP,
//! 6in4, MPLS, Cisco MetaData), VLAN and QinQ tagged, IP-fragmented (IPv4 and IPv6), mirrored
//! twice, STARTTLS and non-443 TLS traffic, replayed with tcpreplay onto one end of a veth pair
//! while three sniffers listen on the other: the default filter, `--ports-only`, and a user
//! `--filter`. Each must find exactly the sessions `tlsdiag analyze` finds in the same files
//! with the same selection (inner addresses and ports, outcome, reason).
//!
//! Needs root, network namespaces and tcpreplay (skips saying why; without tcpreplay, fails
//! where CI is set). Bounded: the sniffers stop by `--duration`, every wait has a limit, and
//! only processes started here are stopped, by PID.

use super::*;

/// The sample cases replayed, in this order.
const CASES: [&str; 22] = [
    "tunnel-vxlan",
    "tunnel-vxlan-port",
    "tunnel-geneve",
    "tunnel-gre",
    "tunnel-gre-teb",
    "tunnel-erspan2",
    "tunnel-erspan3",
    "tunnel-gtpu",
    "tunnel-ipip",
    "tunnel-6in4",
    "tunnel-mpls",
    "tunnel-cmd",
    "link-vlan",
    "link-qinq",
    "ip-fragments",
    "ip-fragments-v6-overlap",
    "tls-any-port",
    "tcp-port-8443",
    "starttls-smtp",
    "starttls-imap",
    "mirror-both-copies",
    "mirror-inner-outer",
];

/// VXLAN ports for every run: the IANA port and Linux's (tunnel-vxlan-port uses 8472).
const VXLAN_PORTS: &str = "4789,8472";
/// How long each sniffer runs (the replay takes about 3 s).
const SNIFF_SECS: u64 = 8;
/// The user filter of the third sniffer: the old default.
const USER_FILTER: &str = "tcp port 443";

/// A session as both sides must agree on: client, server (inner addresses), outcome, reason.
type Key = (String, u64, String, u64, String, String);

fn key(v: &serde_json::Value) -> Key {
    let t = &v["tlsdiag"];
    (
        v["client"]["ip"].as_str().unwrap_or("").to_string(),
        v["client"]["port"].as_u64().unwrap_or(0),
        v["server"]["ip"].as_str().unwrap_or("").to_string(),
        v["server"]["port"].as_u64().unwrap_or(0),
        t["outcome"].as_str().unwrap_or("").to_string(),
        t["reason"].as_str().unwrap_or("-").to_string(),
    )
}

fn sessions(ndjson: &str) -> Vec<Key> {
    let mut v: Vec<Key> = ndjson
        .lines()
        .map(json)
        .filter(|v| v["tlsdiag"]["record"] == "session")
        .map(|v| key(&v))
        .collect();
    v.sort();
    v
}

fn capture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/cases")
        .join(case)
        .join(format!("{case}.pcap"))
}

/// `tlsdiag analyze` of one file with the selection flags `extra`: its sessions.
fn offline(case: &str, extra: &[&str]) -> Vec<Key> {
    let cap = capture(case);
    let (code, out, err) = run(
        Command::new(bin())
            .args(["analyze", "--format", "ndjson", "--vxlan-port", VXLAN_PORTS])
            .args(extra)
            .arg(&cap),
        Duration::from_secs(30),
    );
    assert!(code == 0 || code == 1, "analyze {}: {err}", cap.display());
    sessions(&out)
}

/// The number of sessions a case's expected.json lists.
fn expected_sessions(case: &str) -> usize {
    let path = capture(case).with_file_name("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    json(&text)["sessions"].as_array().map_or(0, Vec::len)
}

#[test]
fn live_finds_tunnelled_tagged_fragmented_and_any_port_tls_as_analyze_does() {
    if !is_root() {
        eprintln!("SKIP live replay test: needs root (packet capture and network namespaces)");
        return;
    }
    if Command::new("tcpreplay").arg("--version").output().is_err() {
        common::skip_unless_ci("live replay test: no tcpreplay (apt-get install tcpreplay)");
        return;
    }
    let started = Instant::now();
    // What analyze says, file by file (no two files share a connection).
    let mut want_all = Vec::new();
    let mut want_only = Vec::new();
    let mut hidden_from_user_filter = Vec::new();
    for case in CASES {
        let all = offline(case, &[]);
        assert_eq!(
            all.len(),
            expected_sessions(case),
            "{case}: analyze against expected.json"
        );
        want_only.extend(offline(case, &["--ports-only"]));
        // Tunnels and other ports: nothing of them passes `tcp port 443`.
        if case.starts_with("tunnel-") || case == "tls-any-port" {
            hidden_from_user_filter.extend(all.iter().cloned());
        }
        want_all.extend(all);
    }
    want_all.sort();
    want_only.sort();
    assert!(
        want_only.len() < want_all.len(),
        "--ports-only leaves out the other ports"
    );

    let Some(ns) = Netns::create_tagged("r") else { return };
    // The tunnelled frames are up to 1,572 bytes: room for them on the veth.
    for (n, dev) in [(&ns.server, &ns.server_if), (&ns.client, &ns.client_if)] {
        must(&["ip", "-n", n, "link", "set", dev, "mtu", "9000"]);
    }
    let sniffer = |extra: &[&str]| {
        let mut cmd = ns.exec(&ns.server, bin());
        cmd.args(["live", "-i", &ns.server_if, "--format", "ndjson", "-B", "1024"])
            .args(["--duration", &SNIFF_SECS.to_string(), "--vxlan-port", VXLAN_PORTS])
            .args(extra);
        spawn_sniffer(&mut cmd)
    };
    let mut sniffers = [
        ("default", sniffer(&[])),
        ("--ports-only", sniffer(&["--ports-only"])),
        ("--filter", sniffer(&["--filter", USER_FILTER])),
    ];
    let mut logs: Vec<Vec<Line>> = vec![Vec::new(); sniffers.len()];
    for ((name, (_, _, err)), log) in sniffers.iter().zip(logs.iter_mut()) {
        wait_for(
            err,
            log,
            Duration::from_secs(10),
            &format!("{name} sniffer start"),
            |l| l.contains("listening on"),
        );
    }
    let sniffing_since = Instant::now();
    let files: Vec<String> = CASES
        .iter()
        .map(|c| capture(c).to_string_lossy().into_owned())
        .collect();
    let (code, out, err) = run(
        ns.exec(&ns.client, "tcpreplay")
            .args(["-i", &ns.client_if, "--multiplier", "2"])
            .args(&files),
        Duration::from_secs(20),
    );
    let replay_secs = sniffing_since.elapsed().as_secs_f64();
    eprintln!("tcpreplay ({replay_secs:.1} s):\n{out}{err}");
    assert_eq!(code, 0, "tcpreplay failed: {out}{err}");
    let count = |what: &str| -> Option<u64> {
        let line = out.lines().find(|l| l.trim_start().starts_with(what))?;
        line.rsplit(char::is_whitespace).next()?.parse().ok()
    };
    assert_eq!(
        count("Failed packets:"),
        Some(0),
        "tcpreplay could not send every frame"
    );
    assert!(count("Successful packets:").unwrap_or(0) > 600, "frames sent");
    assert!(
        replay_secs < SNIFF_SECS as f64 - 1.0,
        "the replay took {replay_secs:.1} s, longer than the sniffers listen"
    );

    let mut found: Vec<(Vec<Key>, serde_json::Value)> = Vec::new();
    for ((name, (p, out, err)), log) in sniffers.iter_mut().zip(logs.iter_mut()) {
        let code = p
            .wait(Duration::from_secs(SNIFF_SECS + 15))
            .unwrap_or_else(|| panic!("the {name} sniffer did not stop after --duration"));
        let mut seen = Vec::new();
        rest(out, &mut seen, Duration::from_secs(10));
        rest(err, log, Duration::from_secs(10));
        let text = |l: &[Line]| l.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("\n");
        eprintln!("{name} sniffer stderr:\n{}", text(log));
        assert!(code == 0 || code == 1, "{name} sniffer exit status {code}");
        let summary = json(&seen.last().expect("a summary line").1);
        assert_eq!(summary["tlsdiag"]["record"], "summary", "{name}: last line");
        assert!(
            summary["tlsdiag"]["capture"]["anomalies"]
                .get("kernel_dropped_packets")
                .is_none(),
            "{name}: the capture lost packets: {summary}"
        );
        found.push((sessions(&text(&seen)), summary));
    }
    let [(all, all_summary), (only, only_summary), (user, _)] = <[_; 3]>::try_from(found).expect("three sniffers");
    let startup = |i: usize| logs[i][0].1.clone();

    // The default filter: the tunnels' carriers, fragments and VLAN-tagged copies are in it.
    for part in [
        "tcp or ",
        "dst port 8472",
        "ip proto 47",
        "ether proto 0x8909",
        "ip6[6] = 44",
        "vlan and (",
    ] {
        assert!(
            startup(0).contains(part),
            "default filter lacks {part:?}: {}",
            startup(0)
        );
    }
    assert!(startup(1).contains("filter \"tcp port 443 or "), "{}", startup(1));
    assert!(
        startup(2).contains(&format!("filter \"{USER_FILTER}\",")),
        "{}",
        startup(2)
    );

    assert_eq!(all, want_all, "default filter: live sessions against analyze's");
    assert_eq!(
        only, want_only,
        "--ports-only: live sessions against analyze --ports-only's"
    );
    // The ports-only filter keeps the other ports' TCP out of the capture itself.
    let packets = |s: &serde_json::Value| s["tlsdiag"]["capture"]["packets"].as_u64().unwrap_or(0);
    assert!(
        packets(&only_summary) < packets(&all_summary),
        "--ports-only captured {} packets, the default {}",
        packets(&only_summary),
        packets(&all_summary)
    );
    // A user filter replaces the default whole: no tunnel, no other port. (Its verdicts may
    // differ: `tcp port 443` drops the fragments after the first, so the fragmented
    // ClientHello's session is incomplete there.)
    assert!(!user.is_empty(), "the plain port-443 sessions pass `{USER_FILTER}`");
    let conn = |k: &Key| (k.0.clone(), k.1, k.2.clone(), k.3);
    for s in &user {
        assert!(
            all.iter().any(|a| conn(a) == conn(s)),
            "--filter found a connection the default did not: {s:?}"
        );
        assert!(
            !hidden_from_user_filter.iter().any(|h| conn(h) == conn(s)),
            "{s:?} came through `{USER_FILTER}`"
        );
    }
    eprintln!(
        "live replay: {} sessions (default), {} (--ports-only), {} (--filter {USER_FILTER:?}) in {:.1} s",
        all.len(),
        only.len(),
        user.len(),
        started.elapsed().as_secs_f64()
    );
}
