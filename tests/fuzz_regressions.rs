//! The fuzz targets' checks (fuzz/harness.rs) on every input a fuzzer found a bug with
//! (fuzz/regressions/<target>/) and on every committed seed (fuzz/corpus/<target>/), so what
//! the fuzzers found stays fixed under plain `cargo test`, without cargo-fuzz or nightly.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 8] = [
    ("capture_reader", harness::capture_reader),
    ("decode", harness::decode),
    ("reassembly", harness::reassembly),
    ("tls_session", harness::tls_session),
    ("pipeline", harness::pipeline),
    ("threads", harness::threads),
    ("escape", harness::escape),
    ("keylog", harness::keylog),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn run_all(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind);
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, target) in TARGETS {
        for f in files(&root.join(name)) {
            let bytes = std::fs::read(&f).expect("read input");
            ran += 1;
            if std::panic::catch_unwind(|| target(&bytes)).is_err() {
                failures.push(format!("{name}: {}", f.display()));
            }
        }
    }
    assert!(failures.is_empty(), "fuzz checks failed on:\n{}", failures.join("\n"));
    ran
}

proptest::proptest! {
    /// The `escape` target's checks on random bytes, where cargo-fuzz is not installed.
    #[test]
    fn escape_checks_hold_on_random_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        harness::escape(&data);
    }

    /// The `keylog` target's checks (key log parser, record opener) on random bytes.
    #[test]
    fn keylog_checks_hold_on_random_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        harness::keylog(&data);
    }
}

#[test]
fn inputs_that_found_bugs_stay_fixed() {
    let n = run_all("regressions");
    assert!(n >= 4, "only {n} regression inputs");
}

#[test]
fn seed_corpora_pass_the_fuzz_checks() {
    let n = run_all("corpus");
    assert!(n >= 100, "only {n} seeds");
}

/// Found by the `threads` target: a SYN to port 443, then 1000 s later a frame of other
/// traffic. On one thread the connection ends as `capture_end`, on two as `idle_timeout`:
/// `Analyzer` does not advance its table on frames off the followed ports (src/pipeline.rs).
/// Fixed: every core first expires the timers due by the end of the capture.
#[test]
fn threads_agree_when_the_capture_ends_with_other_traffic() {
    let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 101, 0, 0, 0]);
    let ip = |proto: u8, len: u8| {
        let mut v = vec![
            0x45, 0, 0, len, 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        v.resize(len as usize, 0);
        v
    };
    let mut syn = ip(6, 40);
    syn[20..24].copy_from_slice(&[0x9c, 0x40, 0x01, 0xbb]); // 40000 → 443
    syn[32] = 0x50;
    syn[33] = 0x02;
    let mut udp = ip(17, 28);
    udp[20..24].copy_from_slice(&[0x14, 0xe9, 0x14, 0xe9]);
    for (secs, frame) in [(1_700_000_000u32, syn), (1_700_001_000, udp)] {
        for x in [secs, 0, frame.len() as u32, frame.len() as u32] {
            f.extend_from_slice(&x.to_le_bytes());
        }
        f.extend_from_slice(&frame);
    }
    harness::threads(&f);
}
