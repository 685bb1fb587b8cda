//! The ladder diagram of a failure group's representative session: client and server columns,
//! one arrow per evidence step with its frame number and time since the session's start,
//! alerts, FIN and RST tagged by name and dash, decrypted steps tagged, and the step where the
//! handshake failed highlighted (band, colour, thicker line and the words "FAILED HERE").
//! Text alternatives: the SVG's `<title>`/`<desc>` and an ordered list of the same steps.

use super::{clip, e};
use crate::diagnose::Evidence;
use crate::flow::Direction;
use crate::report::digest::Group;
use crate::report::steps::{self, Kind};
use crate::report::units;
use std::io::{self, Write};

/// Steps drawn at most (the rest are counted under the diagram).
pub const STEPS: usize = 40;
const W: f64 = 600.0;
const CLIENT_X: f64 = 140.0;
const SERVER_X: f64 = 580.0;
const HEAD: f64 = 52.0;
const ROW: f64 = 40.0;
const GAP_ROW: f64 = 18.0;
/// Label characters that fit between the columns.
const LABEL: usize = 62;
const FAIL: &str = "#D55E00";

fn dash(k: Kind) -> &'static str {
    match k {
        Kind::Alert => " stroke-dasharray=\"7 3\"",
        Kind::Rst => " stroke-dasharray=\"2 2\"",
        Kind::Fin => " stroke-dasharray=\"5 2 1 2\"",
        _ => "",
    }
}

fn step_words(e: &Evidence, dt: f64) -> String {
    let who = match e.direction {
        Some(Direction::ToServer) => "client → server",
        Some(Direction::ToClient) => "server → client",
        None => "capture",
    };
    format!("frame {}, {}, {who}: {}", e.frame, units::offset(dt), e.what)
}

/// Writes the diagram and its text alternative for group number `n`.
pub fn write(out: &mut dyn Write, n: usize, g: &Group) -> io::Result<()> {
    let s = &g.representative;
    let fail = steps::failing(s);
    let shown: Vec<(usize, &Evidence)> = s.evidence.iter().enumerate().take(STEPS).collect();
    // Rows: steps, with a thin row for each pause of a second or more.
    let mut y = HEAD;
    let mut rows: Vec<(f64, Option<f64>)> = Vec::with_capacity(shown.len());
    let mut prev: Option<f64> = None;
    for (_, ev) in &shown {
        let dt = ev.ts.secs_since(s.start_ts);
        let pause = prev.filter(|p| dt - p >= 1.0).map(|p| dt - p);
        if pause.is_some() {
            y += GAP_ROW;
        }
        rows.push((y, pause));
        y += ROW;
        prev = Some(dt);
    }
    let h = y + 10.0;
    let failed_words = fail
        .and_then(|i| s.evidence.get(i))
        .map(|ev| format!(" It failed at {}.", step_words(ev, ev.ts.secs_since(s.start_ts))))
        .unwrap_or_default();
    let desc = format!(
        "Handshake between client {} and server {}, frames {} to {}: {} step(s).{failed_words}",
        s.client.endpoint(),
        g.server,
        s.first_frame,
        s.last_frame,
        s.evidence.len()
    );
    let sni = if g.sni.is_empty() {
        String::new()
    } else {
        format!(" ({})", clip(&g.sni, 36))
    };
    writeln!(
        out,
        "<div class=\"ladder scroll\"><svg viewBox=\"0 0 {W} {h}\" role=\"img\" aria-labelledby=\"l{n}-t l{n}-d\" data-group=\"{n}\" font-family=\"system-ui,sans-serif\">\
         <title id=\"l{n}-t\">Ladder diagram of group {n}'s first session</title><desc id=\"l{n}-d\">{}</desc>\
         <defs><marker id=\"ah{n}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"11\" markerHeight=\"11\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#222\"/></marker>\
         <marker id=\"af{n}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"11\" markerHeight=\"11\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{FAIL}\"/></marker></defs>",
        e(&desc)
    )?;
    // Column heads and lifelines.
    writeln!(
        out,
        "<text x=\"6\" y=\"16\" font-size=\"11\" fill=\"#555\">frame</text><text x=\"6\" y=\"30\" font-size=\"11\" fill=\"#555\">time</text>\
         <text x=\"{CLIENT_X}\" y=\"16\" font-size=\"13\" font-weight=\"700\" text-anchor=\"middle\">Client</text>\
         <text x=\"{CLIENT_X}\" y=\"32\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
         <text x=\"{SERVER_X}\" y=\"16\" font-size=\"13\" font-weight=\"700\" text-anchor=\"end\">Server</text>\
         <text x=\"{SERVER_X}\" y=\"32\" font-size=\"11\" text-anchor=\"end\">{}</text>\
         <line x1=\"{CLIENT_X}\" y1=\"40\" x2=\"{CLIENT_X}\" y2=\"{y}\" stroke=\"#777\" stroke-width=\"2\"/>\
         <line x1=\"{SERVER_X}\" y1=\"40\" x2=\"{SERVER_X}\" y2=\"{y}\" stroke=\"#777\" stroke-width=\"2\"/>",
        e(&s.client.endpoint().to_string()),
        e(&format!("{}{sni}", g.server))
    )?;
    for ((i, ev), (top, pause)) in shown.iter().zip(&rows) {
        if let Some(p) = pause {
            writeln!(
                out,
                "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\" text-anchor=\"middle\" font-style=\"italic\">⋯ {} later ⋯</text>",
                (CLIENT_X + SERVER_X) / 2.0,
                top - 5.0,
                e(&units::duration(*p))
            )?;
        }
        let unanswered = steps::unanswered(s);
        step(out, n, s.start_ts, ev, *top, fail == Some(*i), unanswered)?;
    }
    writeln!(out, "</svg></div>")?;
    if s.evidence.len() > STEPS {
        writeln!(
            out,
            "<p class=\"note\">{} more steps are not drawn.</p>",
            s.evidence.len() - STEPS
        )?;
    }
    if s.evidence_truncated > 0 {
        writeln!(
            out,
            "<p class=\"note\">{} more events were left out of the session's evidence.</p>",
            s.evidence_truncated
        )?;
    }
    // The same steps as text.
    let marker = format!("{} — ", steps::failing_words(s));
    writeln!(out, "<details><summary>The steps as text</summary><ol class=\"steps\">")?;
    for (i, ev) in s.evidence.iter().enumerate() {
        let failing = fail == Some(i);
        writeln!(
            out,
            "<li{}>{}{}</li>",
            if failing { " class=\"fail\"" } else { "" },
            if failing { marker.as_str() } else { "" },
            e(&step_words(ev, ev.ts.secs_since(s.start_ts)))
        )?;
    }
    writeln!(out, "</ol></details>")
}

fn step(
    out: &mut dyn Write,
    n: usize,
    start: crate::capture::Timestamp,
    ev: &Evidence,
    top: f64,
    failing: bool,
    unanswered: bool,
) -> io::Result<()> {
    let kind = Kind::of(ev);
    let dt = ev.ts.secs_since(start);
    let arrow_y = top + 27.0;
    let mut tags = Vec::new();
    if failing {
        tags.push(if unanswered { "✖ NO ANSWER" } else { "✖ FAILED HERE" });
    }
    // Alerts, FIN and RST name themselves; their lines have their own dashes.
    if steps::decrypted(ev) {
        tags.push("decrypted");
    }
    let tag = if tags.is_empty() {
        String::new()
    } else {
        format!("[{}] ", tags.join(", "))
    };
    write!(
        out,
        "<g class=\"step kind-{}{}\" data-frame=\"{}\"><title>{}</title>",
        kind.label().to_ascii_lowercase(),
        if failing { " failing" } else { "" },
        ev.frame,
        e(&step_words(ev, dt))
    )?;
    if failing {
        write!(
            out,
            "<rect x=\"2\" y=\"{:.1}\" width=\"{}\" height=\"{ROW}\" fill=\"#F0E442\" fill-opacity=\".45\" stroke=\"{FAIL}\" stroke-width=\"1\"/>",
            top + 1.0,
            W - 4.0
        )?;
    }
    let colour = if failing { FAIL } else { "#222" };
    write!(
        out,
        "<text x=\"6\" y=\"{:.1}\" font-size=\"12\" font-weight=\"700\">{}</text><text x=\"6\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">{}</text>",
        top + 16.0,
        ev.frame,
        top + 31.0,
        e(&units::offset(dt))
    )?;
    let label = format!("{tag}{}", clip(&ev.what, LABEL.saturating_sub(tag.chars().count())));
    let weight = if failing || kind == Kind::Alert { "700" } else { "400" };
    write!(
        out,
        "<text x=\"{}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" font-weight=\"{weight}\" fill=\"{colour}\">{}</text>",
        (CLIENT_X + SERVER_X) / 2.0,
        top + 18.0,
        e(&label)
    )?;
    match ev.direction {
        Some(d) => {
            let (x1, x2) = match d {
                Direction::ToServer => (CLIENT_X, SERVER_X - 2.0),
                Direction::ToClient => (SERVER_X, CLIENT_X + 2.0),
            };
            let width = if failing {
                3.0
            } else if kind == Kind::Syn {
                1.0
            } else {
                1.6
            };
            let marker = if failing { "af" } else { "ah" };
            write!(
                out,
                "<line x1=\"{x1}\" y1=\"{arrow_y:.1}\" x2=\"{x2}\" y2=\"{arrow_y:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"{} marker-end=\"url(#{marker}{n})\"/>",
                dash(kind)
            )?;
            if kind == Kind::Rst || kind == Kind::Fin {
                // A bar at the sender's end: the connection closed there.
                write!(
                    out,
                    "<line x1=\"{x1}\" y1=\"{:.1}\" x2=\"{x1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>",
                    arrow_y - 6.0,
                    arrow_y + 6.0
                )?;
            }
        }
        None => {
            write!(
                out,
                "<rect x=\"{}\" y=\"{:.1}\" width=\"{}\" height=\"10\" fill=\"none\" stroke=\"{colour}\" stroke-dasharray=\"2 2\"/>",
                CLIENT_X,
                arrow_y - 5.0,
                SERVER_X - CLIENT_X
            )?;
        }
    }
    writeln!(out, "</g>")
}
