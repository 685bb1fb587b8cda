//! TCP checksums on real captures (samples/scripts/forged_cases.sh): what `TcpSegment::checksum`
//! says of every segment, against tshark's own verdict recorded when the captures were made.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::collections::BTreeMap;
use std::path::Path;
use tlsdiag::capture::Capture;
use tlsdiag::decode::{Checksum, decode_frame};

/// Per sender port (443 = the server), how many segments got each checksum verdict.
fn verdicts(case: &str) -> BTreeMap<(bool, &'static str), usize> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases").join(case);
    let mut cap = Capture::open(&[dir]).expect("sample");
    let mut out = BTreeMap::new();
    while let Some(p) = cap.next_packet() {
        let Ok(seg) = decode_frame(p.link, p.data, p.orig_len as usize > p.data.len()) else {
            continue;
        };
        let what = match seg.checksum() {
            Checksum::Valid => "valid",
            Checksum::Invalid => "invalid",
            Checksum::Offloaded => "offloaded",
            Checksum::Unknown => "unknown",
        };
        *out.entry((seg.sport == 443, what)).or_default() += 1;
    }
    out
}

#[test]
fn a_sender_side_capture_with_offload_has_offloaded_checksums_not_wrong_ones() {
    let v = verdicts("tcp-offload-sender");
    // tshark: every client segment carrying data has a wrong checksum, every server one is right.
    assert!(v.get(&(false, "offloaded")).copied().unwrap_or(0) >= 10, "{v:?}");
    assert_eq!(v.get(&(false, "invalid")), None, "{v:?}");
    assert_eq!(v.get(&(true, "invalid")), None, "{v:?}");
    assert_eq!(v.get(&(true, "offloaded")), None, "{v:?}");
    assert!(v.get(&(true, "valid")).copied().unwrap_or(0) >= 10, "{v:?}");
}

#[test]
fn a_damaged_segment_is_the_only_invalid_one() {
    let v = verdicts("tcp-bad-checksum-alert");
    assert_eq!(v.get(&(true, "invalid")), Some(&1), "{v:?}");
    assert_eq!(v.get(&(false, "invalid")), None, "{v:?}");
    assert_eq!(
        v.keys().filter(|(_, w)| *w == "offloaded" || *w == "unknown").count(),
        0,
        "{v:?}"
    );
}
