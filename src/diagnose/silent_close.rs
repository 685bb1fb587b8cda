//! Closes without an alert that still name a cause. Some stacks refuse a certificate outside
//! the TLS state machine and end the connection with a bare FIN or RST: Node.js checks the
//! server's certificate after its handshake and destroys the socket (TLS 1.3: before its own
//! Finished leaves), and a Node.js server checks the client's certificate the same way. What is
//! read: the certificate messages (decrypted with the key log in TLS 1.3, in the clear in TLS
//! 1.2), who closed, and whether the closing side had answered the other's last flight. Closes
//! that prove nothing are left to the other rules: a client's at a CertificateRequest (a browser
//! asking its user, for an optional certificate too; a scanner), and a TLS 1.2 client's right
//! after a completed handshake (a health check, a spare connection). A close after a long
//! silence is a stall ([`super::stall`]); one with an alert is read from the alert.

use super::borrowed::{bad_certificate_why, cert_problem};
use super::classify::{GAVE_UP_AFTER_NS, fail};
use super::{Confidence, Reason, Verdict};
use crate::flow::{At, Direction, Side, TcpFacts};
use crate::tls::{AlertEvent, TlsFacts};

/// A fatal alert sent after the peer closed the connection without answering the sender's last
/// handshake message answers that close (OpenSSL says decode_error, GnuTLS unexpected_message
/// at an end of stream in mid-handshake): the close ended the handshake, not the alert.
pub(super) fn answers_close(a: &AlertEvent, tcp: &TcpFacts, tls: &TlsFacts) -> bool {
    let peer = a.direction.flip();
    let Some((closer, closed, _)) = tcp.first_close() else {
        return false;
    };
    if closer != peer.sender() || closed.frame >= a.at.frame {
        return false;
    }
    let sent = [
        tls.last_message[a.direction].map(|(_, at)| at.frame),
        tls.ccs[a.direction].map(|at| at.frame),
    ]
    .into_iter()
    .flatten()
    .filter(|f| *f <= a.at.frame)
    .max();
    let peer_last = tcp.dirs[peer].last_data.map(|at| at.frame).unwrap_or(0);
    sent.is_some_and(|s| peer_last < s)
}

/// The close, if it came from `side` without any alert of its own, soon after `after` (or
/// before it: the frame of a message is that of the segment that completed it, so a message and
/// what its sender sent after the close can share the later one).
fn quiet_close(tcp: &TcpFacts, tls: &TlsFacts, side: Side, after: At) -> Option<(At, bool)> {
    let (closer, at, rst) = tcp.first_close()?;
    let own = match side {
        Side::Client => Direction::ToServer,
        _ => Direction::ToClient,
    };
    let alerted = tls.alerts.iter().any(|a| a.direction == own && a.at.frame < at.frame);
    (closer == side && !alerted && at.ts.nanos_since(after.ts) < GAVE_UP_AFTER_NS).then_some((at, rst))
}

fn closed(rst: bool) -> &'static str {
    if rst { "reset" } else { "closed" }
}

/// A handshake that did not complete, ended by a quiet close (see the module's text): the
/// client's, right after the server's certificate flight it did not answer; or the server's,
/// right after the client's certificate flight it asked for. Returns whether it gave a verdict.
pub(super) fn during_handshake(tcp: &TcpFacts, tls: &TlsFacts, v: &mut Verdict) -> bool {
    client_left(tcp, tls, v) || server_left(tcp, tls, v)
}

/// TLS 1.3 with keys: the client closed right after the server's flight (its Finished read),
/// before sending a single record. A TLS 1.2 client that refuses a certificate before its key
/// exchange says so with an alert; one that closes there silently was not shown to check
/// anything.
fn client_left(tcp: &TcpFacts, tls: &TlsFacts, v: &mut Verdict) -> bool {
    if !tls.is_tls13() || tls.tls13.client_first.is_some() {
        return false;
    }
    let Some(end) = tls.finished[Direction::ToClient].filter(|_| tls.decrypted()) else {
        return false;
    };
    // Timed from the flight's end: what the server sends after the close (an alert answering
    // it) must not hide the close.
    let Some((at, rst)) = quiet_close(tcp, tls, Side::Client, end) else {
        return false;
    };
    let server = tcp.server;
    let how = format!(
        "the client {} the connection (frame {}) right after the server's flight ended (frame {}), without answering it and without an alert",
        closed(rst),
        at.frame,
        end.frame
    );
    if let Some((reason, confidence, detail)) = certificate_fault(tls, at) {
        fail(
            v,
            reason,
            Side::Client,
            confidence,
            format!(
                "The client rejected {server}'s certificate: {detail}; {how}: it checks the certificate outside the handshake and refuses it by closing (as Node.js does)."
            ),
        );
        return true;
    }
    // After a CertificateRequest a bare close says nothing more sure: a browser closes there to
    // ask its user for a certificate and connects again (whether it is required or optional),
    // and so does a scanner.
    if tls.certificate_request.is_some() || tls.server_certificates.is_empty() || tls.sni().is_none() {
        return false;
    }
    let (reason, detail) = bad_certificate_why(&tls.server_certificates, "said nothing");
    fail(
        v,
        reason,
        Side::Client,
        Confidence::Medium,
        format!("The client most likely rejected {server}'s certificate: {how}; {detail}."),
    );
    true
}

/// A certificate fault the chain shows by itself (dates against the capture, the name asked
/// for, a lone self-signed certificate), with the confidence a silent refusal of it deserves: a
/// date or name every validating client refuses (high), a self-signed certificate some trust on
/// purpose (medium).
fn certificate_fault(tls: &TlsFacts, now: At) -> Option<(Reason, Confidence, String)> {
    let (reason, detail) = cert_problem(&tls.server_certificates, tls.sni(), now.ts)?;
    let confidence = if reason == Reason::SelfSigned {
        Confidence::Medium
    } else {
        Confidence::High
    };
    Some((reason, confidence, detail))
}

fn server_left(tcp: &TcpFacts, tls: &TlsFacts, v: &mut Verdict) -> bool {
    let (Some(asked), Some((sent, n))) = (tls.certificate_request, tls.client_certificate) else {
        return false;
    };
    // The client's flight (Certificate, then its Finished) and nothing from the server after it.
    let flight = tls.finished[Direction::ToServer].map_or(sent, |f| if f.frame > sent.frame { f } else { sent });
    let answered = tcp.dirs[Direction::ToClient]
        .last_data
        .is_some_and(|a| a.frame > sent.frame);
    if answered {
        return false;
    }
    let Some((at, rst)) = quiet_close(tcp, tls, Side::Server, flight) else {
        return false;
    };
    let server = tcp.server;
    let (reason, confidence, what) = if n == 0 {
        (
            Reason::ClientCertificateMissing,
            Confidence::High,
            "requires a client certificate and the client sent none".to_string(),
        )
    } else {
        (
            Reason::ClientCertificateRejected,
            Confidence::Medium,
            format!("most likely rejected the client's certificate ({n} certificate(s))"),
        )
    };
    fail(
        v,
        reason,
        Side::Server,
        confidence,
        format!(
            "{server} {what}: it asked for one (CertificateRequest, frame {}), the client answered (frame {}), and the server {} the connection (frame {}) at once, without an alert or any record: it checks the certificate outside the handshake and refuses it by closing (as a Node.js server does).",
            asked.frame,
            sent.frame,
            closed(rst),
            at.frame
        ),
    );
    true
}
