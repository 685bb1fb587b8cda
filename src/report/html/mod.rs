//! The HTML printer: one self-contained page to look at — the capture, a timeline of sessions
//! (`timeline`), the failure groups with a ladder diagram of a representative session each
//! (`ladder`), established sessions with warnings and capture anomalies.
//!
//! Self-contained and inert: styles inline, no script, no link, image or font to fetch, and a
//! Content-Security-Policy of `default-src 'none'` that forbids any fetch a browser might
//! otherwise try. Every string — ours and the capture's alike — goes out through
//! [`escape::html`], so nothing from the wire becomes an element, attribute or entity. Colours
//! are the Okabe–Ito palette, and every series also has a pattern and a text label.
//!
//! Built from the [`Digest`] (the text and Markdown path): bounded whatever the capture's size —
//! the timeline aggregates, and diagrams are drawn for the first [`GROUPS_DRAWN`] groups only.

mod ladder;
mod timeline;

use super::digest::{Digest, Group};
use super::escape;
use super::model::Report;
use super::units;
use std::io::{self, Write};

/// Failure groups drawn with a diagram (the table lists up to [`GROUPS_LISTED`]).
pub const GROUPS_DRAWN: usize = 50;
/// Failure groups listed in the table.
const GROUPS_LISTED: usize = 1000;
/// Rows of the warnings table.
const WARNINGS_LISTED: usize = 1000;

/// HTML text of any string (the one escaping point of this printer).
pub(crate) fn e(s: &str) -> String {
    escape::html(s)
}

/// At most `n` characters of `s`, with `…` when cut (before escaping).
pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.chars().nth(n).is_none() {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Series colours (Okabe–Ito) and pattern ids, in [`super::timeline::SERIES`] order.
pub(crate) const COLOURS: [&str; 6] = ["#E69F00", "#CC79A7", "#D55E00", "#0072B2", "#009E73", "#999999"];

const STYLE: &str = r#"
:root{--fg:#111;--muted:#555;--line:#ccc;--bg:#fff;--fail:#D55E00;--hl:#F0E442}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;padding:12px;max-width:1200px;overflow-wrap:break-word}
h1{font-size:1.35em;margin:.2em 0 .5em}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:2px solid var(--fg)}h3{font-size:1.02em;margin:1.2em 0 .3em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15em .9em;margin:0}
dl.facts dt{font-weight:600;color:var(--muted)}dl.facts dd{margin:0}
@media (max-width:560px){dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.35em}}
table{border-collapse:collapse;width:100%;margin:.4em 0}th,td{border:1px solid var(--line);padding:.25em .45em;text-align:left;vertical-align:top}
th{background:#f2f2f2;white-space:nowrap}td.n{text-align:right;white-space:nowrap}
.scroll{overflow-x:auto}
@media (max-width:560px){table.cards thead{display:none}table.cards tr{display:block;border:1px solid var(--line);margin:.4em 0}table.cards td{display:flex;gap:.6em;border:0;text-align:left;white-space:normal}table.cards td::before{content:attr(data-label);font-weight:600;color:var(--muted);min-width:5.5em}}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em;overflow-wrap:anywhere}

.chip{display:inline-flex;align-items:center;gap:.3em;margin-right:.9em;white-space:nowrap}
.chip svg{width:1.1em;height:1.1em;border:1px solid #333}
.group{border:1px solid var(--line);border-left:6px solid var(--fail);padding:.3em .8em .6em;margin:1em 0;break-inside:avoid-page}
.ladder svg{width:100%;min-width:460px;max-width:820px;height:auto;display:block}
.timeline svg.chart{width:100%;min-width:540px;height:auto;display:block}
details{margin:.4em 0}summary{cursor:pointer;color:var(--muted)}
.note{color:var(--muted);font-style:italic}
ol.steps{padding-left:1.4em;font-size:.93em}ol.steps li.fail{font-weight:700}
@media print{body{max-width:none;font-size:11pt;padding:0}.timeline svg.chart{min-width:0}.group{page-break-inside:avoid}details>summary{display:none}details{display:block}.ladder svg{min-width:0}a{color:inherit;text-decoration:none}}
"#;

/// Writes the HTML report of a report whose `sessions` are all its sessions.
pub fn write(out: &mut dyn Write, r: &Report, filter: &str, redacted: bool) -> io::Result<()> {
    let mut digest = Digest::new(0);
    for s in &r.sessions {
        digest.add(s);
    }
    write_digest(out, r, &digest, filter, redacted)
}

/// Writes the HTML report from a digest (bounded memory whatever the number of sessions).
pub fn write_digest(out: &mut dyn Write, r: &Report, digest: &Digest, filter: &str, redacted: bool) -> io::Result<()> {
    let c = &r.counts;
    let title = format!(
        "TLS handshake failures: {} of {} sessions failed",
        units::count(c.failed),
        units::count(c.sessions)
    );
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"generator\" content=\"{}\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        e(&r.tool),
        e(&title)
    )?;
    timeline::defs(out)?;
    writeln!(out, "<header>\n<h1>{}</h1>", e(&title))?;
    header(out, r, filter, redacted)?;
    writeln!(out, "</header>")?;
    writeln!(out, "<main>")?;
    timeline::section(out, &digest.timeline)?;
    let groups = digest.sorted_groups();
    failures(out, r, &groups)?;
    warnings(out, digest)?;
    anomalies(out, r)?;
    writeln!(
        out,
        "</main>\n<footer><p class=\"note\">Written by {} from the capture alone. Times are UTC.</p></footer>\n</body>\n</html>",
        e(&r.tool)
    )
}

/// One `<dt>`/`<dd>` pair; `dd` is HTML already escaped.
fn fact(out: &mut dyn Write, dt: &str, dd: &str) -> io::Result<()> {
    writeln!(out, "<dt>{}</dt><dd>{dd}</dd>", e(dt))
}

fn header(out: &mut dyn Write, r: &Report, filter: &str, redacted: bool) -> io::Result<()> {
    let c = &r.counts;
    let cap = &r.capture;
    writeln!(out, "<dl class=\"facts\">")?;
    let files = if cap.files.is_empty() {
        "standard input".to_string()
    } else {
        cap.files
            .iter()
            .map(|f| format!("<code>{}</code>", e(f)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    fact(out, if cap.files.len() > 1 { "Files" } else { "File" }, &files)?;
    if let (Some(a), Some(b)) = (&cap.first_ts, &cap.last_ts) {
        fact(
            out,
            "Time span",
            &e(&format!(
                "{} UTC ({})",
                units::span_rfc3339(a, b),
                units::duration(cap.duration_s)
            )),
        )?;
    }
    fact(
        out,
        "Packets",
        &format!(
            "{} ({}), TLS port(s) {}",
            units::count(cap.packets),
            e(&units::bytes(cap.bytes)),
            e(&cap.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))
        ),
    )?;
    let mut sessions = format!(
        "{}: {} established, {} failed, {} incomplete",
        units::count(c.sessions),
        units::count(c.established),
        units::count(c.failed),
        units::count(c.incomplete)
    );
    if let (Some(total), Some(failed_total)) = (cap.sessions_total, cap.failed_total) {
        sessions.push_str(&format!(
            " (selected of {} in the capture, {} failed in all)",
            units::count(total),
            units::count(failed_total)
        ));
    }
    fact(out, "Sessions", &e(&sessions))?;
    if !c.failed_by_cause.is_empty() {
        let chips: Vec<String> = c
            .failed_by_cause
            .iter()
            .map(|(k, n)| {
                let i = super::timeline::SERIES.iter().position(|s| s == k).unwrap_or(5);
                format!("<span class=\"chip\">{}{} {}</span>", swatch(i), e(k), units::count(*n))
            })
            .collect();
        fact(out, "Failed by cause", &chips.join(""))?;
    }
    if c.no_data_connections > 0 {
        fact(
            out,
            "TCP connections without data",
            &format!("{} (not counted as sessions)", units::count(c.no_data_connections)),
        )?;
    }
    if c.plaintext_connections > 0 {
        fact(
            out,
            "Plaintext connections (no TLS on either side)",
            &format!("{} (not counted as sessions)", units::count(c.plaintext_connections)),
        )?;
    }
    let filters = if filter.is_empty() {
        "none (every session)".to_string()
    } else {
        format!("<code>{}</code>", e(filter))
    };
    fact(out, "Filters", &filters)?;
    if redacted {
        fact(
            out,
            "Client addresses",
            "pseudonymised (198.18.0.0/15, 2001:db8::/32), stable within this report",
        )?;
    }
    writeln!(out, "</dl>")
}

/// A small square filled with series `i`'s colour and pattern.
pub(crate) fn swatch(i: usize) -> String {
    format!(
        "<svg viewBox=\"0 0 10 10\" aria-hidden=\"true\"><rect width=\"10\" height=\"10\" fill=\"url(#pat{i})\"/></svg>"
    )
}

fn failures(out: &mut dyn Write, r: &Report, groups: &[&Group]) -> io::Result<()> {
    writeln!(out, "<section id=\"failures\">\n<h2>Failures</h2>")?;
    if groups.is_empty() {
        writeln!(out, "<p>No failed TLS session in this capture.</p>\n</section>")?;
        return Ok(());
    }
    writeln!(
        out,
        "<div class=\"scroll\"><table class=\"cards\">\n<thead><tr><th>#</th><th>Server (SNI)</th><th>Cause / reason</th><th>Sessions</th><th>Clients</th><th>First → last seen</th></tr></thead>\n<tbody>"
    )?;
    for (i, g) in groups.iter().enumerate().take(GROUPS_LISTED) {
        let n = i + 1;
        let link = if n <= GROUPS_DRAWN {
            format!("<a href=\"#g{n}\">{n}</a>")
        } else {
            n.to_string()
        };
        writeln!(
            out,
            "<tr><td class=\"n\" data-label=\"#\">{link}</td><td data-label=\"Server\">{}</td><td data-label=\"Reason\"><span>{}/<code>{}</code></span></td><td class=\"n\" data-label=\"Sessions\">{}</td><td class=\"n\" data-label=\"Clients\">{}</td><td data-label=\"Seen\">{}</td></tr>",
            server_sni(g),
            e(&g.cause),
            e(&g.reason),
            units::count(g.count),
            e(&g.clients_label()),
            e(&units::span(g.first_start, g.last_end))
        )?;
    }
    writeln!(out, "</tbody></table></div>")?;
    if groups.len() > GROUPS_LISTED {
        writeln!(
            out,
            "<p class=\"note\">{} more groups are not listed (see the JSON document).</p>",
            units::count((groups.len() - GROUPS_LISTED) as u64)
        )?;
    }
    if groups.len() > GROUPS_DRAWN {
        writeln!(
            out,
            "<p class=\"note\">Diagrams are drawn for the {GROUPS_DRAWN} largest groups; the other {} are in the table only.</p>",
            units::count((groups.len() - GROUPS_DRAWN) as u64)
        )?;
    }
    for (i, g) in groups.iter().enumerate().take(GROUPS_DRAWN) {
        group(out, i + 1, g, r)?;
    }
    writeln!(out, "</section>")
}

fn server_sni(g: &Group) -> String {
    if g.sni.is_empty() {
        e(&g.server)
    } else {
        format!("{} ({})", e(&g.server), e(&clip(&g.sni, 80)))
    }
}

fn group(out: &mut dyn Write, n: usize, g: &Group, r: &Report) -> io::Result<()> {
    let rep = &g.representative;
    writeln!(
        out,
        "<section class=\"group\" id=\"g{n}\" data-group=\"{n}\" data-first-frame=\"{}\">\n<h3>{n}. {}/{} — {}: {} session(s)</h3>\n<dl class=\"facts\">",
        rep.first_frame,
        e(&g.cause),
        e(&g.reason),
        server_sni(g),
        units::count(g.count)
    )?;
    fact(out, "What happened", &e(&rep.summary))?;
    if let Some(b) = &rep.browser_error {
        fact(out, "Browser would show", &format!("<code>{}</code>", e(b)))?;
    }
    if let Some(h) = &rep.hint {
        fact(out, "Fix", &e(h))?;
    }
    if let Some(side) = super::steps::side_phrase(rep) {
        fact(out, "Who", &e(&format!("{side} (confidence {})", rep.confidence)))?;
    }
    let list: Vec<String> = g
        .clients
        .iter()
        .take(10)
        .map(|(ip, k)| if *k > 1 { format!("{ip} ×{k}") } else { ip.to_string() })
        .collect();
    fact(
        out,
        &format!("Clients ({})", g.clients_label()),
        &e(&format!(
            "{}{}",
            list.join(", "),
            if g.clients.len() > 10 { ", …" } else { "" }
        )),
    )?;
    fact(
        out,
        "First → last seen",
        &e(&format!("{} (UTC)", units::span(g.first_start, g.last_end))),
    )?;
    if let Some(p) = g.explaining_profile(r) {
        fact(
            out,
            "This server accepted",
            &e(&format!("in {} other session(s): {}", p.established, p.accepted())),
        )?;
    }
    let ids = rep.ids();
    if !ids.is_empty() {
        fact(
            out,
            "Ids (this session)",
            &format!("<code>{}</code>", e(&ids.join(", "))),
        )?;
    }
    if let Some(f) = &rep.display_filter {
        fact(out, "Wireshark filter", &format!("<code>{}</code>", e(&f.to_string())))?;
    }
    writeln!(out, "</dl>")?;
    ladder::write(out, n, g)?;
    writeln!(out, "</section>")
}

fn warnings(out: &mut dyn Write, digest: &Digest) -> io::Result<()> {
    let rows = &digest.warnings;
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<section id=\"warnings\">\n<h2>Established sessions with warnings</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>Server (SNI)</th><th>Warning</th><th>Sessions</th><th>Detail</th></tr></thead>\n<tbody>"
    )?;
    for ((server, sni, id), (n, detail)) in rows.iter().take(WARNINGS_LISTED) {
        let who = if sni.is_empty() {
            e(server)
        } else {
            format!("{} ({})", e(server), e(&clip(sni, 80)))
        };
        writeln!(
            out,
            "<tr><td>{who}</td><td><code>{}</code></td><td class=\"n\">{}</td><td>{}</td></tr>",
            e(id),
            units::count(*n),
            e(detail)
        )?;
    }
    writeln!(out, "</tbody></table></div>")?;
    if rows.len() > WARNINGS_LISTED {
        writeln!(
            out,
            "<p class=\"note\">{} more rows are not listed.</p>",
            units::count((rows.len() - WARNINGS_LISTED) as u64)
        )?;
    }
    writeln!(out, "</section>")
}

fn anomalies(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let cap = &r.capture;
    writeln!(out, "<section id=\"anomalies\">\n<h2>Capture anomalies</h2>")?;
    if cap.anomalies.is_empty() && cap.input_problems.is_empty() {
        writeln!(out, "<p>None: the capture read cleanly.</p>\n</section>")?;
        return Ok(());
    }
    writeln!(out, "<ul>")?;
    for (k, n) in &cap.anomalies {
        writeln!(out, "<li><code>{}</code>: {}</li>", e(k), units::count(*n))?;
    }
    for p in &cap.input_problems {
        writeln!(out, "<li>Input problem: {}</li>", e(p))?;
    }
    writeln!(out, "</ul>\n</section>")
}
