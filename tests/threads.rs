//! `--threads N` splits connections over workers by a hash of their 4-tuple; the report must be
//! the same, byte for byte, as with one thread.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn inputs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut roots = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases")];
    match common::shared_suite("peer-corpus", "manifest.json") {
        Ok(dir) => roots.push(dir.join("pcaps")),
        Err(why) => common::skip_unless_ci(&why),
    }
    for root in roots {
        let Ok(dirs) = std::fs::read_dir(&root) else { continue };
        for d in dirs.filter_map(|e| e.ok().map(|e| e.path())) {
            if d.is_dir() {
                v.push(d);
            }
        }
    }
    v.sort();
    v
}

fn report(threads: &str, input: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .args([
            "analyze",
            "-f",
            "json",
            "-p",
            "443",
            "-p",
            "8443",
            "-p",
            "3000",
            "--threads",
            threads,
        ])
        .arg(input)
        .output()
        .expect("run");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_thread_and_many_give_identical_reports() {
    let inputs = inputs();
    assert!(inputs.len() >= 10);
    for input in &inputs {
        let one = report("1", input);
        assert!(one.contains("schema_version"), "{}", input.display());
        for n in ["2", "3"] {
            let many = report(n, input);
            assert!(
                one == many,
                "{}: --threads {n} differs from one thread",
                input.display()
            );
        }
    }
}
