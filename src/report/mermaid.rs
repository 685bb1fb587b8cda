//! A session's handshake as a Mermaid `sequenceDiagram` (GitHub and GitLab draw a fenced
//! `mermaid` block; other trackers show its text, which still reads as a ladder).
//!
//! Nothing from the wire reaches the diagram but through [`escape::mermaid`] (a safe ASCII set:
//! no `;`, `#`, `%`, quotes, colons, angle brackets or line breaks), so a name cannot end a
//! statement, start a directive or an entity, or carry HTML into the renderer.

use super::escape;
use super::model::SessionReport;
use super::steps::{self, Kind};
use super::units;
use crate::flow::Direction;
use std::io::{self, Write};

/// Steps drawn at most.
pub const STEPS: usize = 24;
/// Characters of a step's words.
const WORDS: usize = 64;

/// Writes the fenced block (the fence lines included).
pub fn write(out: &mut dyn Write, s: &SessionReport) -> io::Result<()> {
    let fail = steps::failing(s);
    writeln!(out, "```mermaid")?;
    writeln!(out, "sequenceDiagram")?;
    writeln!(out, "    participant C as Client")?;
    writeln!(out, "    participant S as Server")?;
    let mut prev: Option<f64> = None;
    for (i, e) in s.evidence.iter().enumerate().take(STEPS) {
        let dt = e.ts.secs_since(s.start_ts);
        if let Some(p) = prev.filter(|p| dt - p >= 1.0) {
            writeln!(
                out,
                "    Note over C,S: {} later",
                escape::mermaid(&units::duration(dt - p), 20)
            )?;
        }
        prev = Some(dt);
        let failing = fail == Some(i);
        let kind = Kind::of(e);
        let words = format!(
            "{} ({}) {}{}{}",
            e.frame,
            units::offset(dt),
            if failing { steps::failing_words(s) } else { "" },
            if failing { ", " } else { "" },
            e.what
        );
        let text = escape::mermaid(&words, WORDS);
        let arrow = match (failing, kind) {
            (true, _) => "-x",
            (_, Kind::Fin | Kind::Rst) => "--)",
            _ => "->>",
        };
        if failing {
            writeln!(out, "    rect rgb(240, 228, 66)")?;
        }
        match e.direction {
            Some(Direction::ToServer) => writeln!(out, "    C{arrow}S: {text}")?,
            Some(Direction::ToClient) => writeln!(out, "    S{arrow}C: {text}")?,
            None => writeln!(out, "    Note over C,S: {text}")?,
        }
        if failing {
            writeln!(out, "    end")?;
        }
    }
    if s.evidence.len() > STEPS {
        writeln!(out, "    Note over C,S: {} more steps", s.evidence.len() - STEPS)?;
    }
    writeln!(out, "```")
}
