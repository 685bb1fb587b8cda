//! Capture-quality notes (sequence numbers in them are relative and inclusive, as Wireshark
//! shows them): what in the capture makes a verdict less sure (bytes missing, bytes
//! sent twice with different contents). A session with a note is never `high` confidence.

use crate::flow::{Direction, TcpFacts};
use crate::tls::TlsFacts;

/// The notes of one session, in direction order.
pub fn quality_notes(tcp: &TcpFacts, tls: &TlsFacts) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in tcp.dirs.each() {
        let who = if i == Direction::ToServer {
            "client→server"
        } else {
            "server→client"
        };
        if d.gap_bytes > 0 && tls.lost_sync[i] + tls.handshake_messages_lost[i] > 0 {
            out.push(format!(
                "{who}: {} bytes missing from the capture in {} gap(s)",
                d.gap_bytes, d.gaps
            ));
        }
        if d.snaplen_missing > 0 && tls.handshake_messages_lost[i] > 0 {
            out.push(format!("{who}: {} bytes cut by the snap length", d.snaplen_missing));
        }
        if let Some(c) = d.first_conflict {
            // The first copy is the one analysed (see flow::reassembly); a forgery injected
            // ahead of the real bytes is that first copy.
            let mut note = format!(
                "{who}: bytes at seq {}..{} were sent twice with different contents (frames {} and {}): \
                 a forged or corrupted segment; the verdict rests on the first copy (frame {})",
                c.start,
                c.end - 1,
                c.kept_frame,
                c.other_frame,
                c.kept_frame
            );
            if d.overlap_conflicts > 1 {
                note.push_str(&format!("; {} segments disagreed in all", d.overlap_conflicts));
            }
            let in_hello = i == Direction::ToServer && tls.at_client_hello.is_none_or(|at| c.kept_frame <= at.frame);
            if in_hello {
                note.push_str("; the ClientHello lies in those bytes: the SNI and offer reported may be forged");
            }
            out.push(note);
        }
    }
    out
}
