//! A session's evidence as the steps of a handshake diagram, shared by the HTML ladder, the
//! Markdown sequence diagram and the text block's header: what each step is (a TLS message, an
//! alert, FIN, RST, a capture-level fact) and which one is where the handshake failed.

use super::model::SessionReport;
use crate::diagnose::{Cause, Evidence, Outcome};
use crate::flow::Direction;

/// What kind of step an evidence line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Syn,
    Alert,
    Fin,
    Rst,
    /// A TLS message or flight.
    Message,
    /// A fact with no direction (silence, capture end).
    Note,
}

impl Kind {
    /// Classifies an evidence line by its words (our own sentence starts, never the wire's).
    pub fn of(e: &Evidence) -> Kind {
        let w = e.what.as_str();
        if e.direction.is_none() {
            Kind::Note
        } else if w.starts_with("Alert") || w.starts_with("alert") {
            Kind::Alert
        } else if w.starts_with("RST") {
            Kind::Rst
        } else if w.starts_with("FIN") {
            Kind::Fin
        } else if w.starts_with("SYN") {
            Kind::Syn
        } else {
            Kind::Message
        }
    }

    /// A short label for the marker (not relying on colour).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Syn => "SYN",
            Kind::Alert => "ALERT",
            Kind::Fin => "FIN",
            Kind::Rst => "RST",
            Kind::Message => "TLS",
            Kind::Note => "NOTE",
        }
    }
}

/// Whether an evidence line names decrypted content (key log given).
pub fn decrypted(e: &Evidence) -> bool {
    e.what.contains("decrypted")
}

/// The frame named as "(frame N)" in the session's summary, our own sentence.
fn summary_frame(summary: &str) -> Option<u64> {
    let mut rest = summary;
    while let Some(i) = rest.find("frame ") {
        let after = rest.get(i + 6..).unwrap_or("");
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
        rest = after;
    }
    None
}

/// The index in `s.evidence` of the step where the handshake failed: the frame the summary
/// names, else the step that showed another protocol, else for a timeout the last step the
/// silent peer left unanswered, else the first fatal alert (any alert), else the ending side's
/// RST or FIN, else the first RST, else the first FIN. `None` for sessions that did not fail.
pub fn failing(s: &SessionReport) -> Option<usize> {
    if s.outcome != Outcome::Failed || s.evidence.is_empty() {
        return None;
    }
    let ev = &s.evidence;
    let rank = |e: &Evidence| match Kind::of(e) {
        Kind::Alert => 0,
        Kind::Rst => 1,
        Kind::Fin => 2,
        _ => 3,
    };
    if let Some(f) = summary_frame(&s.summary) {
        // Several steps may share a frame: prefer the alert, RST, FIN in it.
        let best = ev
            .iter()
            .enumerate()
            .filter(|(_, e)| e.frame == f)
            .min_by_key(|(i, e)| (rank(e), *i))
            .map(|(i, _)| i);
        if best.is_some() {
            return best;
        }
    }
    // Another protocol where TLS was expected: the step that showed it.
    if let Some(i) = ev.iter().position(|e| e.what.starts_with("not TLS")) {
        return Some(i);
    }
    if s.cause == Some(Cause::Timeout) {
        // The last step before the silence: what the silent peer never answered.
        return ev
            .iter()
            .rposition(|e| !matches!(Kind::of(e), Kind::Fin | Kind::Rst | Kind::Note))
            .or(Some(ev.len() - 1));
    }
    let first = |k: Kind| ev.iter().position(|e| Kind::of(e) == k);
    if let Some(i) = ev
        .iter()
        .position(|e| Kind::of(e) == Kind::Alert && e.what.contains("fatal"))
        .or_else(|| first(Kind::Alert))
        .or_else(|| {
            // The side that ended it: its RST or FIN.
            let side = match s.side.as_deref() {
                Some("client") => Some(Direction::ToServer),
                Some("server") => Some(Direction::ToClient),
                _ => None,
            };
            ev.iter()
                .position(|e| side.is_some() && e.direction == side && matches!(Kind::of(e), Kind::Rst | Kind::Fin))
        })
        .or_else(|| first(Kind::Rst))
    {
        return Some(i);
    }
    first(Kind::Fin).or(Some(ev.len() - 1))
}

/// Whether the failing step is one the silent peer left unanswered (a timeout's last message
/// or SYN), rather than an alert, RST or FIN that ended the handshake.
pub fn unanswered(s: &SessionReport) -> bool {
    s.cause == Some(Cause::Timeout)
        && failing(s)
            .and_then(|i| s.evidence.get(i))
            .is_some_and(|e| matches!(Kind::of(e), Kind::Syn | Kind::Message | Kind::Note))
}

/// The words that mark the failing step.
pub fn failing_words(s: &SessionReport) -> &'static str {
    if unanswered(s) { "NO ANSWER" } else { "FAILED HERE" }
}

/// Who is meant by `s.side` in words: the side that went silent when the failing step went
/// unanswered, otherwise the side that ended the handshake (a refusal's RST included).
pub fn side_phrase(s: &SessionReport) -> Option<String> {
    let side = s.side.as_deref()?;
    Some(if unanswered(s) {
        format!("{side} went silent")
    } else {
        format!("ended by {side}")
    })
}

/// The direction as a short arrow word for diagrams.
pub fn sender(d: Option<Direction>) -> &'static str {
    match d {
        Some(Direction::ToServer) => "client",
        Some(Direction::ToClient) => "server",
        None => "capture",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_frame_finds_the_first_number() {
        assert_eq!(summary_frame("x sent a fatal alert (frame 26)."), Some(26));
        assert_eq!(
            summary_frame("closed (frame 6) after the ClientHello in frame 4"),
            Some(6)
        );
        assert_eq!(summary_frame("no frame here"), None);
    }
}
