//! Verdicts of connections whose TLS does not start at their first byte: a refused STARTTLS or
//! proxy request, a plaintext protocol that never asked for TLS, and a server that spoke first
//! to a client that never sent a byte. See [`crate::tls::preamble`] for what is recognised.

use super::classify::short;
use super::{Confidence, Failure, Outcome, Reason, Verdict};
use crate::flow::{Direction, Side, TcpFacts};
use crate::tls::TlsFacts;
use crate::tls::preamble::PreambleOutcome;

/// Whether a decided connection is a TLS session to report: every connection on a listed port;
/// on other ports (followed for their content) only one that reached TLS (a hello, or TLS
/// records: a hello cut by the snap length, a connection older than the capture), or whose
/// request for TLS (STARTTLS, a proxy tunnel) was refused.
pub fn reportable(tcp: &TcpFacts, tls: &TlsFacts) -> bool {
    !tcp.by_content
        || tls.tls_seen()
        || (tls.records_seen() && !tls.not_tls.iter().any(|x| *x))
        || tls.preamble_outcome() == Some(PreambleOutcome::Refused)
}

/// Whether a client's plaintext was answered in plaintext by a server that is no TLS server:
/// both ends agree, so the connection is not a TLS session. A TLS server that turns a plaintext
/// client away answers with a TLS alert or an HTTP 400 (nginx, Apache, Go) or 497: the client's
/// error, judged by the TLS rules.
pub(super) fn plaintext_service(tls: &TlsFacts) -> bool {
    let server = Direction::ToClient;
    if !tls.not_tls[server] {
        return false;
    }
    if tls.server_spoke_first {
        // A banner answered in plaintext (the client's first bytes are not TLS either).
        return tls.not_tls[Direction::ToServer];
    }
    let Some(fb) = tls.first_bytes[server].as_ref() else {
        return false;
    };
    // The status line's ASCII survives the escaping of `shown` unchanged.
    let status = crate::tls::http_status::response_status(fb.shown.as_bytes(), false);
    !matches!(status, Some(400 | 497))
}

fn incomplete(v: &mut Verdict, why: &'static str, summary: String) {
    v.outcome = Outcome::Incomplete;
    v.incomplete_reason = Some(why);
    v.confidence = Confidence::High;
    v.summary = summary;
}

/// The verdict when the preamble or a server's banner decides it; false leaves the session to
/// the TLS rules.
pub(super) fn verdict(tcp: &TcpFacts, tls: &TlsFacts, v: &mut Verdict) -> bool {
    let server = tcp.server;
    if let Some(p) = &tls.preamble {
        let name = p.protocol.name();
        let reply = p.reply.as_ref().map(|(_, r)| short(r, 60)).unwrap_or_default();
        match p.outcome {
            PreambleOutcome::Refused => {
                let (reason, what) = if p.protocol.is_proxy() {
                    (Reason::ProxyRefused, "tunnel")
                } else {
                    (Reason::StarttlsRefused, "upgrade to TLS")
                };
                let target = p.target.as_ref().map(|t| format!(" to {t}")).unwrap_or_default();
                v.outcome = Outcome::Failed;
                v.failure = Some(Failure {
                    reason,
                    side: Side::Server,
                    confidence: Confidence::High,
                });
                v.summary =
                    format!("{server} refused the {name} {what}{target}: \"{reply}\"; no TLS handshake followed.");
                return true;
            }
            _ if tls.tunnel_not_tls => {
                let target = p.target.as_ref().map(|t| format!(" to {t}")).unwrap_or_default();
                incomplete(
                    v,
                    "tls_not_started",
                    format!("The {name} tunnel{target} through {server} carried something other than TLS."),
                );
                return true;
            }
            PreambleOutcome::Upgraded => return false,
            _ if tls.tls_seen() => return false,
            PreambleOutcome::Requested => {
                incomplete(
                    v,
                    "tls_not_started",
                    format!("The client asked {server} for {name}; no answer came before the connection ended."),
                );
                return true;
            }
            PreambleOutcome::NotRequested | PreambleOutcome::GaveUp => {
                incomplete(
                    v,
                    "tls_not_started",
                    format!(
                        "The connection to {server} spoke {} in plaintext and never started TLS.",
                        p.protocol.plain_name()
                    ),
                );
                return true;
            }
        }
    }
    if tls.server_spoke_first && !tls.not_tls[Direction::ToClient] && tcp.dirs[Direction::ToServer].payload_bytes == 0 {
        let fb = tls.first_bytes[Direction::ToClient].as_ref();
        incomplete(
            v,
            "server_banner",
            format!(
                "The server {server} spoke first ({}: \"{}\") and the client never sent a byte: no TLS was attempted.",
                fb.map(|f| f.looks_like).unwrap_or("data"),
                fb.map(|f| short(&f.shown, 40)).unwrap_or_default()
            ),
        );
        return true;
    }
    false
}
