//! The Markdown printer: a ticket-ready report. Plain tables and fenced code blocks only, so it
//! renders the same on GitHub, GitLab and Jira (Markdown mode).
//!
//! Every string that may hold bytes from the capture (SNI, certificate names, the summary and
//! warning sentences built around them, file names) goes through [`escape::markdown`] in prose
//! and table cells, and through [`escape::terminal`] inside the fenced timeline (where
//! backslashes are literal and only a line break could end the fence): the rendered report holds
//! no link, image or HTML taken from the capture. The per-group Mermaid sequence diagram takes
//! wire strings only through [`escape::mermaid`] (see [`super::mermaid`]).
//!
//! Fits a ticket: no table wider than six columns (the rest of a group goes in its section),
//! human units (units.rs), input files listed once in the header.

use super::digest::{Digest, Group};
use super::escape;
use super::model::Report;
use super::{mermaid, steps, units};
use std::io::{self, Write};

/// Failure groups shown in full (the table lists them all).
const GROUPS_DETAILED: usize = 20;
/// Timeline lines per representative session.
const TIMELINE_LINES: usize = 24;
/// Input files named in the header (the rest are counted).
const FILES_NAMED: usize = 10;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Writes the Markdown report of a report whose `sessions` are all its sessions.
pub fn write(out: &mut dyn Write, r: &Report, filter: &str, redacted: bool, diagrams: bool) -> io::Result<()> {
    let mut digest = Digest::new(0);
    for s in &r.sessions {
        digest.add(s);
    }
    write_digest(out, r, &digest, filter, redacted, diagrams)
}

/// Writes the Markdown report from a digest (bounded memory whatever the number of sessions);
/// `diagrams`: a Mermaid sequence diagram per failure group.
pub fn write_digest(
    out: &mut dyn Write,
    r: &Report,
    digest: &Digest,
    filter: &str,
    redacted: bool,
    diagrams: bool,
) -> io::Result<()> {
    let c = &r.counts;
    let cap = &r.capture;
    match (cap.sessions_total, cap.failed_total) {
        // A filtered report says so, with both counts.
        (Some(total), Some(failed_total)) => writeln!(
            out,
            "# TLS handshake failures: {} selected of {total} sessions ({failed_total} failed in all), {} of them failed",
            c.sessions, c.failed
        )?,
        _ => writeln!(
            out,
            "# TLS handshake failures: {} of {} sessions failed",
            c.failed, c.sessions
        )?,
    }
    writeln!(out)?;
    writeln!(out, "| | |")?;
    writeln!(out, "|---|---|")?;
    let files = match cap.files.as_slice() {
        [] => "standard input".to_string(),
        names => {
            let mut v: Vec<String> = names.iter().take(FILES_NAMED).map(|f| escape::markdown(f)).collect();
            if names.len() > FILES_NAMED {
                v.push(format!("and {} more", units::count((names.len() - FILES_NAMED) as u64)));
            }
            v.join(", ")
        }
    };
    writeln!(
        out,
        "| {} | {files} |",
        if cap.files.len() > 1 { "Files" } else { "File" }
    )?;
    writeln!(
        out,
        "| Packets | {} ({}) |",
        units::count(cap.packets),
        units::bytes(cap.bytes)
    )?;
    if let (Some(a), Some(b)) = (&cap.first_ts, &cap.last_ts) {
        writeln!(
            out,
            "| Time span | {} UTC ({}) |",
            units::span_rfc3339(a, b),
            units::duration(cap.duration_s)
        )?;
    }
    writeln!(
        out,
        "| TLS ports | {} |",
        cap.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
    )?;
    if !c.tls_ports.is_empty() {
        writeln!(
            out,
            "| TLS found on ports | {} |",
            super::model::tls_ports_line(&c.tls_ports)
        )?;
    }
    writeln!(
        out,
        "| Sessions | {}: {} established, {} failed, {} incomplete |",
        units::count(c.sessions),
        units::count(c.established),
        units::count(c.failed),
        units::count(c.incomplete)
    )?;
    if !c.failed_by_cause.is_empty() {
        let v: Vec<String> = c
            .failed_by_cause
            .iter()
            .map(|(k, n)| format!("{k} {}", units::count(*n)))
            .collect();
        writeln!(out, "| Failed by cause | {} |", v.join(" · "))?;
    }
    if c.no_data_connections > 0 {
        writeln!(
            out,
            "| TCP connections without data | {} (not counted as sessions) |",
            units::count(c.no_data_connections)
        )?;
    }
    if c.plaintext_connections > 0 {
        writeln!(
            out,
            "| Plaintext connections (no TLS on either side) | {} (not counted as sessions) |",
            units::count(c.plaintext_connections)
        )?;
    }
    if !filter.is_empty() {
        writeln!(out, "| Filter | `{}` |", cell(filter))?;
    }
    if redacted {
        writeln!(
            out,
            "| Client addresses | pseudonymised (198.18.0.0/15, 2001:db8::/32), stable within this report |"
        )?;
    }
    if !cap.anomalies.is_empty() {
        let v: Vec<String> = cap.anomalies.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(out, "| Capture anomalies | {} |", cell(&v.join(", ")))?;
    }
    writeln!(out)?;

    let groups = digest.sorted_groups();
    if groups.is_empty() {
        writeln!(out, "No failed TLS session in this capture.")?;
        writeln!(out)?;
    } else {
        writeln!(out, "## Failures")?;
        writeln!(out)?;
        writeln!(out, "| # | Server (SNI) | Cause | Reason | Sessions | Clients |")?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for (i, g) in groups.iter().enumerate() {
            writeln!(
                out,
                "| {} | {}{} | {} | `{}` | {} | {} |",
                i + 1,
                g.server,
                if g.sni.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", escape::markdown(&g.sni))
                },
                g.cause,
                g.reason,
                units::count(g.count),
                g.clients_label()
            )?;
        }
        writeln!(out)?;
        for (i, g) in groups.iter().enumerate().take(GROUPS_DETAILED) {
            group_section(out, i + 1, g, r, diagrams)?;
        }
        if groups.len() > GROUPS_DETAILED {
            writeln!(
                out,
                "_{} more groups are listed in the table above only._",
                groups.len() - GROUPS_DETAILED
            )?;
            writeln!(out)?;
        }
    }

    warnings_section(out, digest)?;
    Ok(())
}

fn group_section(out: &mut dyn Write, n: usize, g: &Group, r: &Report, diagrams: bool) -> io::Result<()> {
    let rep = &g.representative;
    let sni = if g.sni.is_empty() {
        String::new()
    } else {
        format!(" ({})", escape::markdown(&g.sni))
    };
    writeln!(
        out,
        "### {n}. {}/{} — {}{sni}: {} session(s)",
        g.cause,
        g.reason,
        g.server,
        units::count(g.count)
    )?;
    writeln!(out)?;
    writeln!(out, "- **What happened:** {}", escape::markdown(&rep.summary))?;
    writeln!(out, "- **Seen:** {} (UTC)", units::span(g.first_start, g.last_end))?;
    if let Some(b) = &rep.browser_error {
        writeln!(out, "- **Browser would show:** {b}")?;
    }
    if let Some(h) = &rep.hint {
        writeln!(out, "- **Fix:** {h}")?;
    }
    if let Some(side) = steps::side_phrase(rep) {
        writeln!(out, "- **Who:** {side} (confidence {})", rep.confidence)?;
    }
    // Our own strings (base64 and hex), safe in a code span.
    let ids = rep.ids();
    if !ids.is_empty() {
        let ids: Vec<String> = ids
            .iter()
            .map(|i| match i.split_once(' ') {
                Some((k, v)) => format!("{k} `{v}`"),
                None => i.clone(),
            })
            .collect();
        writeln!(out, "- **Ids (first session):** {}", ids.join(", "))?;
    }
    if let Some(f) = &rep.display_filter {
        writeln!(out, "- **Wireshark filter (first session):** `{f}`")?;
    }
    let clients = &g.clients;
    let list: Vec<String> = clients
        .iter()
        .take(10)
        .map(|(ip, k)| if *k > 1 { format!("{ip} ×{k}") } else { ip.to_string() })
        .collect();
    writeln!(
        out,
        "- **Affected clients ({}):** {}{}",
        g.clients_label(),
        list.join(", "),
        if clients.len() > 10 { ", …" } else { "" }
    )?;
    let repeats: usize = clients.values().filter(|k| **k > 1).count();
    if repeats > 0 {
        let fallback = if g.offered_max.len() > 1 {
            format!(
                "; highest version offered varied ({}): a version fallback",
                g.offered_max.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "- **Repeated attempts:** {repeats} client(s) tried more than once (retries){fallback}"
        )?;
    }
    if let Some(p) = g.explaining_profile(r) {
        writeln!(
            out,
            "- **What this server accepted in {} other session(s):** {}",
            p.established,
            p.accepted()
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Representative session ({} → {}, frames {}–{}, started {}):",
        rep.client.ip, g.server, rep.first_frame, rep.last_frame, rep.start
    )?;
    writeln!(out)?;
    if diagrams {
        mermaid::write(out, rep)?;
        writeln!(out)?;
    }
    writeln!(out, "```")?;
    writeln!(out, "  frame      time  dir  message")?;
    let failing = steps::failing(rep);
    for (i, e) in rep.evidence.iter().enumerate().take(TIMELINE_LINES) {
        writeln!(
            out,
            "{:>7} {:>+8.3}s  {}  {}{}{}",
            e.frame,
            e.ts.secs_since(rep.start_ts),
            e.direction.map(|d| d.arrow()).unwrap_or("   "),
            escape::terminal(&e.what).replace("```", "'''"),
            super::text::file_ref(e).replace("```", "'''"),
            if failing == Some(i) { "   <- failed here" } else { "" }
        )?;
    }
    if rep.evidence.len() > TIMELINE_LINES {
        writeln!(out, "    … {} more events", rep.evidence.len() - TIMELINE_LINES)?;
    }
    writeln!(out, "```")?;
    writeln!(out)?;
    Ok(())
}

fn warnings_section(out: &mut dyn Write, digest: &Digest) -> io::Result<()> {
    let rows = &digest.warnings;
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "## Established sessions with warnings")?;
    writeln!(out)?;
    writeln!(out, "| Server | SNI | Warning | Sessions | Detail |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for ((server, sni, id), (n, detail)) in rows.iter() {
        writeln!(
            out,
            "| {server} | {} | `{id}` | {} | {} |",
            if sni.is_empty() {
                "—".to_string()
            } else {
                escape::markdown(sni)
            },
            units::count(*n),
            escape::markdown(detail)
        )?;
    }
    writeln!(out)?;
    Ok(())
}
