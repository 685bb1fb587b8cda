//! A capture appended to a later one (`mergecap -a`, files concatenated, a clock stepped back)
//! is read on its own times: the same verdicts as the same packets in time order, and a lone
//! frame stamped far in the past changes nothing.
//!
//! The packets are the real ones of `samples/cases/tls-mixed`, replayed with shifted client
//! ports (see `common::replicated_sample`).

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::path::Path;

const HOUR_NS: i64 = 3_600_000_000_000;

fn analyze(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&common::analyze_stdout(path, &["--format", "json"])).expect("json")
}

fn verdicts(doc: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {} {}",
                s["client"]["port"], s["outcome"], s["cause"], s["reason"], s["incomplete_reason"]
            )
        })
        .collect();
    v.sort();
    v
}

fn anomaly(doc: &serde_json::Value, key: &str) -> u64 {
    doc["capture"]["anomalies"][key].as_u64().unwrap_or(0)
}

#[test]
fn a_capture_appended_to_a_later_one_keeps_the_verdicts_of_time_order() {
    let one = common::replicated_sample(1).len();
    let packets = common::replicated_sample(8);
    let half = 4 * one;
    // The first four copies an hour later, written first; the last four after them.
    let mut later: Vec<(i64, Vec<u8>)> = packets[..half].iter().map(|(t, d)| (t + HOUR_NS, d.clone())).collect();
    // Unanswered SYNs at its start: their handshake timers fall due inside the later part, in
    // the batch where the clock goes back, so two workers must tick at those times as one does.
    let t_later = later[0].0;
    later.extend(unanswered_syns(t_later - 1_000_000, 8));
    later.sort_by_key(|p| p.0);
    let earlier = &packets[half..];
    let dir = tempfile::tempdir().expect("tmp");
    let appended = dir.path().join("appended.pcap");
    let sorted = dir.path().join("sorted.pcap");
    let concat: Vec<(i64, Vec<u8>)> = later.iter().chain(earlier).cloned().collect();
    common::write_pcap(&appended, &concat);
    later.extend_from_slice(earlier);
    later.sort_by_key(|p| p.0);
    common::write_pcap(&sorted, &later);

    let (a, s) = (analyze(&appended), analyze(&sorted));
    assert_eq!(a["capture"]["packets"], s["capture"]["packets"]);
    assert_eq!(verdicts(&a), verdicts(&s));
    assert!(
        verdicts(&s).iter().any(|v| v.contains("\"expired\"")) && verdicts(&s).len() >= 8 * 8,
        "{:?}",
        verdicts(&s)
    );
    assert_eq!(
        verdicts(&s).iter().filter(|v| v.contains("\"syn_unanswered\"")).count(),
        8,
        "{:?}",
        verdicts(&s)
    );
    assert_eq!(
        anomaly(&a, "timestamp_restarted_earlier"),
        1,
        "{}",
        a["capture"]["anomalies"]
    );
    assert_eq!(a["capture"]["first_ts"], s["capture"]["first_ts"]);
    assert_eq!(a["capture"]["last_ts"], s["capture"]["last_ts"]);
    // The same report on one thread and on two, where the clock goes back inside a batch.
    for format in ["ndjson", "json"] {
        let one = common::analyze_stdout(&appended, &["--format", format, "--threads", "1"]);
        let two = common::analyze_stdout(&appended, &["--format", format, "--threads", "2"]);
        assert!(one == two, "{format}: --threads 1 and 2 differ");
    }
}

#[test]
fn a_lone_frame_stamped_an_hour_early_changes_no_verdict() {
    let packets = common::replicated_sample(4);
    let dir = tempfile::tempdir().expect("tmp");
    let clean = dir.path().join("clean.pcap");
    common::write_pcap(&clean, &packets);
    let clean_doc = analyze(&clean);
    let want = verdicts(&clean_doc);
    // One frame in the middle, then two frames apart, each an hour early.
    for picks in [vec![packets.len() / 2], vec![packets.len() / 3, packets.len() / 3 + 2]] {
        let mut damaged = packets.clone();
        for &k in &picks {
            damaged[k].0 -= HOUR_NS;
        }
        let path = dir.path().join("damaged.pcap");
        common::write_pcap(&path, &damaged);
        let doc = analyze(&path);
        assert_eq!(verdicts(&doc), want, "frames {picks:?} an hour early");
        assert_eq!(anomaly(&doc, "timestamp_restarted_earlier"), 0);
        assert!(
            anomaly(&doc, "timestamp_outlier") >= 1,
            "{}",
            doc["capture"]["anomalies"]
        );
        // The capture's span is the clean one's: the lone frames are not its start.
        assert_eq!(doc["capture"]["first_ts"], clean_doc["capture"]["first_ts"]);
        assert_eq!(doc["capture"]["last_ts"], clean_doc["capture"]["last_ts"]);
    }
}

/// The real packets of `samples/cases/tcp-syn-unanswered-v4` (a SYN and its retransmissions,
/// never answered) `copies` times with the client's port shifted, the first at `t0`.
fn unanswered_syns(t0: i64, copies: u16) -> Vec<(i64, Vec<u8>)> {
    use tlsdiag::capture::Capture;
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases/tcp-syn-unanswered-v4");
    let mut cap = Capture::open(&[sample]).expect("sample");
    let mut syns = Vec::new();
    while let Some(p) = cap.next_packet() {
        syns.push((p.ts.0, p.data.to_vec()));
    }
    let first = syns[0].0;
    let mut out = Vec::new();
    for i in 0..copies {
        for (ts, data) in &syns {
            let mut d = data.clone();
            // Ethernet + IPv4: the client's (source) port.
            let t = 14 + usize::from(d[14] & 0x0f) * 4;
            let port = u16::from_be_bytes([d[t], d[t + 1]]).wrapping_add(1000 + i);
            d[t..t + 2].copy_from_slice(&port.to_be_bytes());
            out.push((t0 + ts - first, d));
        }
    }
    out.sort_by_key(|p| p.0);
    out
}
