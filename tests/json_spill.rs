//! The JSON document's sessions, spilled to the temporary file and read back: the same array
//! as when every session stays in memory, in capture order, whatever order the sessions were
//! decided in and however small the slices read back and the gaps read through.
//!
//! The sessions are the real sessions of `samples/cases/tls-mixed` replayed many times with new
//! client ports and later times (as tests/flat_memory.rs), analyzed in this process through the
//! library, then stored in a scrambled order.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use tlsdiag::capture::{LinkType, Packet, Timestamp};
use tlsdiag::pipeline::{Analyzer, Options};
use tlsdiag::report::digest::SessionStore;
use tlsdiag::report::model::SessionReport;

fn sessions(copies: u32) -> Vec<SessionReport> {
    let mut analyzer = Analyzer::new(Options::default(), true);
    let mut out = Vec::new();
    for (ns, d) in common::replicated_sample(copies) {
        let p = Packet {
            ts: Timestamp(ns),
            link: LinkType::ETHERNET,
            data: &d,
            orig_len: d.len() as u32,
        };
        analyzer.packet(&p, &mut |s| out.push(s));
    }
    analyzer.finish(&mut |s| out.push(s));
    out
}

fn array(store: &mut SessionStore) -> Vec<u8> {
    let mut out = Vec::new();
    store.write_array(&mut out).expect("write");
    out
}

#[test]
fn spilled_sessions_read_back_in_capture_order() {
    let all = sessions(40);
    assert!(all.len() > 300, "{} sessions", all.len());
    // Decided out of capture order: a fixed permutation (stride coprime with the count).
    let n = all.len();
    let stride = (2..n).find(|s| gcd(*s, n) == 1 && *s > n / 3).expect("stride");
    let order: Vec<usize> = (0..n).map(|i| (i * stride) % n).collect();

    let mut memory = SessionStore::default();
    for s in &all {
        memory.add(s).expect("add");
    }
    let want = array(&mut memory);
    let doc: serde_json::Value = serde_json::from_slice(&want).expect("a JSON array");
    let ids: Vec<u64> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), n);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "capture order");

    // All spilled, part spilled; slices of a few sessions, gaps read through or skipped.
    for (memory, slice, gap) in [
        (0, 16 << 10, 1 << 10),
        (0, 1, 0),
        (64 << 10, 48 << 10, 1 << 20),
        (0, 1 << 20, 0),
    ] {
        let mut store = SessionStore::with_limits(memory, slice, gap);
        for &i in &order {
            store.add(&all[i]).expect("add");
        }
        assert_eq!(store.len(), n);
        assert!(
            array(&mut store) == want,
            "memory {memory}, slice {slice}, gap {gap}: not the in-memory array"
        );
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
