//! The text printer: a summary, then one block per failed session, readable in a terminal and
//! pasteable into a ticket.

use super::digest::Digest;
use super::escape;
use super::model::{Report, SessionReport};
use super::steps;
use crate::capture::Timestamp;
use crate::diagnose::{Outcome, Reason};
use crate::flow::Direction;
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;

/// Writes one line of the report through [`terminal_line`].
macro_rules! tline {
    ($out:expr, $($arg:tt)*) => {
        terminal_line($out, format_args!($($arg)*))
    };
}

/// The text printer's one escaping point: every line (our words and the names, SNI, alert text
/// and first bytes from the capture inside them) goes out through [`escape::terminal`], so no
/// control or invisible character from the wire reaches the terminal and no string can start
/// a line of its own.
fn terminal_line(out: &mut dyn Write, args: fmt::Arguments<'_>) -> io::Result<()> {
    match args.as_str() {
        Some(s) => out.write_all(escape::terminal(s).as_bytes())?,
        None => out.write_all(escape::terminal(&args.to_string()).as_bytes())?,
    }
    out.write_all(b"\n")
}

/// What the text report shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// Only the summary.
    pub quiet: bool,
    /// A block for every session, not only the failed ones.
    pub all: bool,
}

/// Writes the text report of a report whose `sessions` are all the sessions to show.
pub fn write(out: &mut dyn Write, r: &Report, opts: TextOptions) -> io::Result<()> {
    let mut digest = Digest::new(if opts.all { usize::MAX } else { 0 });
    for s in &r.sessions {
        digest.add(s);
    }
    write_digest(out, r, &digest, opts)
}

/// Writes the text report from a digest (bounded memory whatever the number of sessions).
pub fn write_digest(out: &mut dyn Write, r: &Report, digest: &Digest, opts: TextOptions) -> io::Result<()> {
    let c = &r.counts;
    let cap = &r.capture;
    let files = match cap.files.as_slice() {
        [] => "stdin".to_string(),
        [one] => one.clone(),
        more => format!("{} files", more.len()),
    };
    // A filtered report says so, with both counts.
    let shown = match (&cap.filter, cap.sessions_total) {
        (Some(f), Some(total)) => format!("{} of {total} TLS session(s) selected by {f},", c.sessions),
        _ => format!("{} TLS session(s)", c.sessions),
    };
    tline!(
        out,
        "tlsdiag: {shown} on port {} in {} ({} packets, {:.1} s{})",
        // The listed ports, and those TLS was found on by its content.
        cap.ports
            .iter()
            .chain(c.tls_ports.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
        files,
        cap.packets,
        cap.duration_s,
        cap.first_ts.as_ref().map(|t| format!(", from {t}")).unwrap_or_default()
    )?;
    if !c.tls_ports.is_empty() {
        tline!(
            out,
            "  TLS found on port(s) {}",
            super::model::tls_ports_line(&c.tls_ports)
        )?;
    }
    tline!(out, "  established  {}", c.established)?;
    let causes: Vec<String> = c.failed_by_cause.iter().map(|(k, v)| format!("{k} {v}")).collect();
    tline!(
        out,
        "  failed       {}{}",
        c.failed,
        if causes.is_empty() {
            String::new()
        } else {
            format!("   ({})", causes.join(", "))
        }
    )?;
    tline!(out, "  incomplete   {}", c.incomplete)?;
    if c.no_data_connections > 0 {
        tline!(
            out,
            "  TCP connections without data (not counted as sessions): {}",
            c.no_data_connections
        )?;
    }
    if c.plaintext_connections > 0 {
        tline!(
            out,
            "  plaintext connections, no TLS on either side (not counted as sessions): {}",
            c.plaintext_connections
        )?;
    }
    if !cap.anomalies.is_empty() {
        let a: Vec<String> = cap.anomalies.iter().map(|(k, v)| format!("{k} {v}")).collect();
        tline!(out, "  capture anomalies: {}", a.join(", "))?;
    }
    for p in &cap.input_problems {
        tline!(out, "  input problem: {p}")?;
    }
    if !c.warnings.is_empty() {
        let w: Vec<String> = c.warnings.iter().map(|(k, v)| format!("{k} {v}")).collect();
        tline!(out, "  warnings on established sessions: {}", w.join(", "))?;
    }
    if c.failed > 0 {
        writeln!(out)?;
        tline!(out, "Failures by reason:")?;
        let mut by_reason: Vec<(&str, &str, u64, &str)> = c
            .failed_by_reason
            .iter()
            .filter_map(|(id, n)| Reason::from_id(id).map(|r| (r.cause().id(), r.id(), *n, r.browser_error())))
            .collect();
        by_reason.sort();
        for (cause, reason, n, browser) in by_reason {
            tline!(out, "  {:<40} {:>5}   {}", format!("{cause}/{reason}"), n, browser)?;
        }
        let mut top: Vec<(String, u64, u64)> = digest.server_counts().filter(|(_, f, _)| *f > 0).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        writeln!(out)?;
        tline!(out, "Top failing servers:")?;
        for (srv, f, t) in top.iter().take(10) {
            tline!(out, "  {srv:<48} {f} failed of {t}")?;
        }
    }
    if opts.quiet {
        return Ok(());
    }
    let shown = if opts.all { &digest.all } else { &digest.failures };
    for s in shown.sorted() {
        writeln!(out)?;
        block(out, s)?;
    }
    if shown.dropped() > 0 {
        writeln!(out)?;
        tline!(
            out,
            "… {} more {} not shown: narrow with --cause, --reason, --server or --sni, or use --format json or markdown.",
            shown.dropped(),
            if opts.all { "sessions" } else { "failed sessions" }
        )?;
    }
    Ok(())
}

fn block(out: &mut dyn Write, s: &SessionReport) -> io::Result<()> {
    let verdict = match (&s.cause, &s.reason) {
        (Some(c), Some(r)) => format!("FAILED {c}/{r}"),
        _ => s.outcome.id().to_uppercase(),
    };
    // A failure's header starts with the step where it failed, then the verdict.
    let step = steps::failing(s).and_then(|i| s.evidence.get(i)).map(|e| {
        let who = match e.direction {
            Some(Direction::ToServer) => " (client → server)",
            Some(Direction::ToClient) => " (server → client)",
            None => "",
        };
        let unanswered = if steps::unanswered(s) { " unanswered" } else { "" };
        format!("Frame {}{who}{unanswered}: {} — ", e.frame, clip(&e.what, 80))
    });
    tline!(out, "── {}{verdict} ──", step.unwrap_or_default())?;
    let sni = s.server_name().map(|n| format!(" ({n})")).unwrap_or_default();
    let mut meta = vec![format!(
        "{}:{} → {}:{}{sni}",
        s.client.ip, s.client.port, s.server.ip, s.server.port
    )];
    if let Some(side) = steps::side_phrase(s) {
        meta.push(side);
    }
    if let Some(v) = &s.tls.version {
        meta.push(format!("TLS {v}"));
    }
    meta.push(format!("frames {}–{}", s.first_frame, s.last_frame));
    meta.push(format!("started {}", s.start));
    meta.push(format!("confidence {}", s.confidence));
    tline!(out, "  {}", meta.join(", "))?;
    tline!(out, "  {}", s.summary)?;
    if let Some(b) = &s.browser_error {
        tline!(out, "  Browser would show: {b}")?;
    }
    if let Some(h) = &s.hint {
        tline!(out, "  Fix: {h}")?;
    }
    for w in &s.warnings {
        tline!(out, "  Warning {}: {}", w.id, w.detail)?;
    }
    for q in &s.quality_notes {
        tline!(out, "  Capture quality: {q}")?;
    }
    if !s.evidence.is_empty() {
        tline!(out, "  Evidence (frame, time since start, direction):")?;
        for e in &s.evidence {
            let dt = e.ts.secs_since(s.start_ts);
            tline!(
                out,
                "    {:>7}  {:>+9.3}s  {}  {}{}",
                e.frame,
                dt,
                e.direction.map(|d| d.arrow()).unwrap_or("   "),
                e.what,
                file_ref(e)
            )?;
        }
        if s.evidence_truncated > 0 {
            tline!(out, "    ({} more events not shown)", s.evidence_truncated)?;
        }
    }
    if !s.handshake.history.is_empty() {
        tline!(out, "  History: {}", s.handshake.history)?;
    }
    let ids = s.ids();
    if !ids.is_empty() {
        tline!(out, "  Ids: {}", ids.join(", "))?;
    }
    if let Some(f) = &s.display_filter {
        tline!(out, "  Wireshark: {f}")?;
    }
    Ok(())
}

/// The `live` text line of one decided session: time, client → server, SNI, outcome, reason,
/// summary, on one line escaped by [`escape::terminal`] (a name from the wire can neither start
/// a line of its own nor drive the terminal).
pub fn session_line(s: &SessionReport) -> String {
    let verdict = match (s.outcome, &s.cause, &s.reason) {
        (Outcome::Failed, Some(c), Some(r)) => format!("FAILED {c}/{r}"),
        (Outcome::Established, _, _) => match &s.tls.version {
            Some(v) => format!("ESTABLISHED TLS {v}"),
            None => "ESTABLISHED".to_string(),
        },
        (o, _, _) => o.id().to_uppercase(),
    };
    let confidence = if s.confidence == "high" {
        String::new()
    } else {
        format!(" [confidence {}]", s.confidence)
    };
    let line = format!(
        "{}  {} → {}  {}  {verdict}{confidence}  {}",
        s.start,
        SocketAddr::new(s.client.ip, s.client.port),
        SocketAddr::new(s.server.ip, s.server.port),
        s.server_name().unwrap_or("-"),
        s.summary
    );
    escape::terminal(&line).into_owned()
}

/// At most `n` characters of `s`, with `…` when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().nth(n).is_none() {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Formats a timestamp for a human (UTC).
pub fn human_ts(t: Timestamp) -> String {
    t.rfc3339()
}

/// `  [file b.pcap, frame 12]` for an evidence frame of a merged capture; empty otherwise.
pub fn file_ref(e: &crate::diagnose::Evidence) -> String {
    match (&e.file, e.file_frame) {
        (Some(f), Some(n)) => format!("  [{}, frame {n}]", escape::terminal(f)),
        _ => String::new(),
    }
}
