//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// A conformance suite in `../shared/` beside the repository (e.g. `peer-corpus`), if present.
///
/// A plain clone has nothing beside it: the caller's test then prints why it skips and passes.
/// Where the `CI` environment variable is set the suite must be there, so a missing corpus
/// fails instead of silently testing less.
pub fn shared_suite(name: &str, marker: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(name);
    if dir.join(marker).is_file() {
        return Some(dir);
    }
    let why = format!(
        "{} not found (expected ../shared/{name}/{marker} beside the repository)",
        dir.display()
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}; CI is set, so this suite must run");
    }
    println!("note: skipped: {why}; set CI=1 to make this an error");
    None
}
