//! `--keylog`: reading the key logs before the capture, and saying afterwards what they held
//! (counts and line numbers, never a secret).

use crate::report::model::CaptureSummary;
use crate::tls::keylog::{self, Source};

/// The files `--keylog` names (those that can be named: `env` without SSLKEYLOGFILE is said by
/// [`load`]), which no output may write over.
pub fn paths(args: &[String]) -> Vec<std::path::PathBuf> {
    args.iter().filter_map(|a| Source::parse(a).path().ok()).collect()
}

/// Reads the `--keylog` files into the run's key store; returns what could not be read (each
/// also said on stderr). `live` re-reads them as they grow.
pub fn load(args: &[String], live: bool) -> Vec<String> {
    if args.is_empty() {
        return Vec::new();
    }
    let sources: Vec<Source> = args.iter().map(|a| Source::parse(a)).collect();
    let problems = keylog::install(&sources, live);
    for p in &problems {
        eprintln!("tlsdiag: warning: {p}");
    }
    if live {
        keylog::set_refreshing();
    }
    problems
}

/// Adds what reading the key logs met (given files and Decryption Secrets Blocks) to the
/// summary: counts as anomalies, the first malformed lines by number as input problems.
pub fn summarize(summary: &mut CaptureSummary, problems: Vec<String>) {
    summary.input_problems.extend(problems);
    if !keylog::active() {
        return;
    }
    let st = keylog::stats();
    for (key, n) in [
        ("keylog_unknown_label", st.unknown_labels),
        ("keylog_malformed_line", st.malformed),
        ("keylog_line_too_long", st.too_long),
        ("keylog_entries_over_cap", st.over_cap),
    ] {
        if n > 0 {
            *summary.anomalies.entry(key.to_string()).or_default() += n;
        }
    }
    for (source, line, what) in &st.bad_lines {
        let line = format!("key log {source}: line {line} skipped: {what}");
        eprintln!("tlsdiag: warning: {line}");
        summary.input_problems.push(line);
    }
    if st.malformed as usize > st.bad_lines.len() {
        summary
            .input_problems
            .push(format!("key log: {} malformed line(s) skipped in all", st.malformed));
    }
}
