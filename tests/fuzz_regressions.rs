//! The fuzz targets' checks (fuzz/harness.rs) on every input a fuzzer found a bug with
//! (fuzz/regressions/<target>/) and on every committed seed (fuzz/corpus/<target>/), so what
//! the fuzzers found stays fixed under plain `cargo test`, without cargo-fuzz or nightly.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("capture_reader", harness::capture_reader),
    ("decode", harness::decode),
    ("reassembly", harness::reassembly),
    ("tls_session", harness::tls_session),
    ("pipeline", harness::pipeline),
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

#[test]
fn inputs_that_found_bugs_stay_fixed() {
    let n = run_all("regressions");
    assert!(n >= 3, "only {n} regression inputs");
}

#[test]
fn seed_corpora_pass_the_fuzz_checks() {
    let n = run_all("corpus");
    assert!(n >= 100, "only {n} seeds");
}
