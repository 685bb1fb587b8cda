//! The timeline: sessions per time bin as stacked SVG bars (failed per cause, established,
//! incomplete), each series with its colour, pattern and label, and a table of the same counts
//! as the text alternative.

use super::{COLOURS, e, swatch};
use crate::capture::Timestamp;
use crate::report::timeline::{Display, SERIES, Timeline};
use crate::report::units;
use std::io::{self, Write};

/// Pattern overlays, in series order: diagonal, dots, cross-hatch, vertical, none, horizontal.
const PATTERNS: [&str; 6] = [
    "<path d=\"M-1,1 l2,-2 M0,10 l10,-10 M9,11 l2,-2\" stroke=\"#000\" stroke-opacity=\".55\" stroke-width=\"1.4\"/>",
    "<circle cx=\"3\" cy=\"3\" r=\"1.6\" fill=\"#000\" fill-opacity=\".55\"/><circle cx=\"8\" cy=\"8\" r=\"1.6\" fill=\"#000\" fill-opacity=\".55\"/>",
    "<path d=\"M0,0 L10,10 M10,0 L0,10\" stroke=\"#000\" stroke-opacity=\".55\" stroke-width=\"1.2\"/>",
    "<path d=\"M3,0 V10 M8,0 V10\" stroke=\"#fff\" stroke-opacity=\".8\" stroke-width=\"1.4\"/>",
    "",
    "<path d=\"M0,3 H10 M0,8 H10\" stroke=\"#000\" stroke-opacity=\".45\" stroke-width=\"1.2\"/>",
];

/// The shared pattern definitions (referenced by the bars, the legend and the header's chips).
pub fn defs(out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\" focusable=\"false\"><defs>"
    )?;
    for (i, (c, p)) in COLOURS.iter().zip(PATTERNS).enumerate() {
        write!(
            out,
            "<pattern id=\"pat{i}\" width=\"10\" height=\"10\" patternUnits=\"userSpaceOnUse\"><rect width=\"10\" height=\"10\" fill=\"{c}\"/>{p}</pattern>"
        )?;
    }
    writeln!(out, "</defs></svg>")
}

/// `HH:MM:SS` (or the date and `HH:MM` when bins are an hour or wider) of a bin start.
fn label(t: Timestamp, width: i64) -> String {
    let s = t.rfc3339();
    let (date, time) = (s.get(0..10).unwrap_or(""), s.get(11..19).unwrap_or(""));
    if width >= 3600 * 1_000_000_000 {
        format!("{date} {}", time.get(0..5).unwrap_or(""))
    } else if width < 1_000_000_000 {
        s.get(11..21).unwrap_or("").to_string()
    } else {
        time.to_string()
    }
}

/// What a bin holds, in words: "2 established, 1 certificate".
fn words(counts: &[u64; 6]) -> String {
    let v: Vec<String> = SERIES
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{} {s}", units::count(*n)))
        .collect();
    if v.is_empty() { "none".to_string() } else { v.join(", ") }
}

/// The timeline section.
pub fn section(out: &mut dyn Write, t: &Timeline) -> io::Result<()> {
    writeln!(out, "<section id=\"timeline\" class=\"timeline\">\n<h2>Timeline</h2>")?;
    if t.is_empty() {
        writeln!(out, "<p>No TLS session in this capture.</p>\n</section>")?;
        return Ok(());
    }
    let d = t.display();
    let width_s = d.width as f64 / 1e9;
    write!(
        out,
        "<p>Sessions by first packet, per {} (UTC). ",
        e(&units::duration(width_s))
    )?;
    for (i, s) in SERIES.iter().enumerate() {
        let name = if i < 4 { format!("failed: {s}") } else { s.to_string() };
        write!(out, "<span class=\"chip\">{}{}</span>", swatch(i), e(&name))?;
    }
    writeln!(out, "</p>")?;
    // Failures on a scale of their own (they are often a sliver of all sessions), then all.
    let failed: u64 = d.bins.iter().flat_map(|b| b.counts.iter().take(4)).sum();
    if failed > 0 {
        writeln!(out, "<h3>Failed sessions</h3>")?;
        bars(out, &d, 4, "tf")?;
    }
    writeln!(out, "<h3>All sessions</h3>")?;
    bars(out, &d, SERIES.len(), "ta")?;
    table(out, &d)?;
    writeln!(out, "</section>")
}

/// Stacked bars of the first `series` series; `id` prefixes the SVG's element ids.
fn bars(out: &mut dyn Write, d: &Display, series: usize, id: &str) -> io::Result<()> {
    let (w, h, left, top, plot_h) = (1000.0, 230.0, 48.0, 10.0, 180.0);
    let n = d.bins.len().max(1) as f64;
    let bar = (w - left - 8.0) / n;
    let total_of = |b: &crate::report::timeline::Bin| -> u64 { b.counts.iter().take(series).sum() };
    let peak_n = d.bins.iter().map(total_of).max().unwrap_or(0);
    let peak = peak_n.max(1) as f64;
    let failed: u64 = d.bins.iter().flat_map(|b| b.counts.iter().take(4)).sum();
    let first_fail = d
        .bins
        .iter()
        .find(|b| b.counts.iter().take(4).any(|c| *c > 0))
        .map(|b| label(b.start, d.width));
    let desc = format!(
        "{} bins of {}; at most {} {} in one bin; {} failed in all{}.",
        d.bins.len(),
        units::duration(d.width as f64 / 1e9),
        units::count(peak_n),
        if series == 4 { "failed sessions" } else { "sessions" },
        units::count(failed),
        first_fail
            .map(|f| format!(", the first in the bin at {f}"))
            .unwrap_or_default()
    );
    writeln!(
        out,
        "<div class=\"scroll\"><svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        if series == 4 {
            "Failed sessions over time"
        } else {
            "Sessions over time"
        },
        e(&desc)
    )?;
    // Axes and the peak.
    let base = top + plot_h;
    writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{base}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{base}\" font-size=\"12\" text-anchor=\"end\">0</text>",
        w - 8.0,
        left - 4.0,
        top + 10.0,
        units::count(peak_n),
        left - 4.0
    )?;
    for (i, b) in d.bins.iter().enumerate() {
        let x = left + i as f64 * bar;
        if total_of(b) == 0 {
            continue;
        }
        write!(
            out,
            "<g><title>{}: {}</title>",
            e(&label(b.start, d.width)),
            e(&words(&b.counts))
        )?;
        let mut y = base;
        for (s, c) in b.counts.iter().enumerate().take(series) {
            if *c == 0 {
                continue;
            }
            let hgt = (*c as f64 / peak * plot_h).max(1.5);
            y -= hgt;
            write!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" fill=\"url(#pat{s})\" stroke=\"#222\" stroke-width=\".5\"/>",
                x + bar * 0.08,
                (bar * 0.84).max(0.5)
            )?;
        }
        writeln!(out, "</g>")?;
    }
    // Time labels: first, middle and last bin.
    let mut marks = vec![0, d.bins.len() / 2, d.bins.len().saturating_sub(1)];
    marks.dedup();
    for (k, i) in marks.iter().enumerate() {
        if let Some(b) = d.bins.get(*i) {
            let anchor = match k {
                0 => "start",
                _ if *i + 1 == d.bins.len() => "end",
                _ => "middle",
            };
            let x = match anchor {
                "end" => left + (*i as f64 + 1.0) * bar,
                "middle" => left + (*i as f64 + 0.5) * bar,
                _ => left + *i as f64 * bar,
            };
            write!(
                out,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"13\" text-anchor=\"{anchor}\">{}</text>",
                base + 18.0,
                e(&label(b.start, d.width))
            )?;
        }
    }
    writeln!(out, "</svg></div>")
}

fn table(out: &mut dyn Write, d: &Display) -> io::Result<()> {
    writeln!(
        out,
        "<details><summary>The same as a table</summary><div class=\"scroll\"><table>\n<thead><tr><th>Bin start (UTC)</th><th>Established</th><th>Failed (by cause)</th><th>Incomplete</th></tr></thead><tbody>"
    )?;
    for b in d.bins.iter().filter(|b| b.counts.iter().any(|c| *c > 0)) {
        let [t, p, c, x, est, inc] = b.counts;
        let failed = words(&[t, p, c, x, 0, 0]);
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            e(&b.start.rfc3339()),
            units::count(est),
            e(&failed),
            units::count(inc)
        )?;
    }
    writeln!(out, "</tbody></table></div></details>")
}
