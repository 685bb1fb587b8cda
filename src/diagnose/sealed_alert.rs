//! An alert that cannot be read (encrypted, no key for it). One case still names its cause: in
//! TLS 1.2 a client that sends its key exchange, ChangeCipherSpec and Finished before it has
//! judged the server's certificate (NSS, the TLS stack of Firefox, checks the certificate
//! asynchronously and goes on with the handshake meanwhile) refuses the certificate with an
//! alert encrypted under the new keys, before the server's ChangeCipherSpec. Such an alert can
//! only answer the server's first flight, whose certificate chain is in the clear: a fault the
//! chain shows by itself (dates, the name asked for, a lone self-signed certificate) is the
//! likely reason; else the client rejected the server, most often its certificate.

use super::borrowed::cert_problem;
use super::classify::{GAVE_UP_AFTER_NS, fail, secs};
use super::{Confidence, Reason, Verdict};
use crate::flow::{At, Direction, Side, TcpFacts};
use crate::tls::{AlertEvent, TlsFacts};

/// The verdict for an unreadable fatal alert `a` that ended the handshake.
pub(super) fn verdict(a: &AlertEvent, tcp: &TcpFacts, tls: &TlsFacts, v: &mut Verdict) {
    let server = tcp.server;
    let sender = a.direction.sender();
    if let Some((waited, ccs)) = gave_up(a, tcp, tls) {
        return fail(
            v,
            Reason::HandshakeStalled,
            Side::Server,
            Confidence::Medium,
            format!(
                "{server} never answered the client's ChangeCipherSpec and Finished (frame {}): the client waited {}, then sent an encrypted alert ({} bytes, frame {}) and closed: it gave up waiting for the server's ChangeCipherSpec and Finished.",
                ccs.frame,
                secs(waited),
                a.record_len,
                a.at.frame
            ),
        );
    }
    if let Some((reason, why)) = refused_first_flight(a, tls) {
        let detail = why.map_or_else(
            || "its certificate chain shows no fault by itself (an issuer the client does not trust is the most common cause)".to_string(),
            |w| format!("the certificate chain shows why: {w}"),
        );
        return fail(
            v,
            reason,
            Side::Client,
            Confidence::Medium,
            format!(
                "The client most likely rejected {server}'s certificate: it sent its Finished and then an encrypted alert ({} bytes, frame {}) before the server's ChangeCipherSpec, so the alert answers the server's first flight; {detail}.",
                a.record_len, a.at.frame
            ),
        );
    }
    fail(
        v,
        Reason::FatalAlert,
        sender,
        Confidence::Medium,
        format!(
            "The {sender} sent an encrypted alert ({} bytes) during the handshake with {server}; its content cannot be read.",
            a.record_len
        ),
    )
}

/// TLS 1.2 or older: the client's encrypted alert long after its own ChangeCipherSpec, the server
/// silent since (JSSE's read timeout: user_canceled and close_notify, sealed): it gave up waiting.
/// How long it waited and its ChangeCipherSpec.
fn gave_up(a: &AlertEvent, tcp: &TcpFacts, tls: &TlsFacts) -> Option<(i64, At)> {
    // Timed from the server's last data (a TCP fact), not from the client's ChangeCipherSpec
    // record: a record's time is its segment's, and must not depend on how the stream was cut.
    let ccs = tls.ccs[Direction::ToServer]?;
    let server_last = tcp.dirs[Direction::ToClient].last_data?;
    let waited = a.at.ts.nanos_since(server_last.ts);
    (a.direction == Direction::ToServer
        && !tls.is_tls13()
        && tls.ccs[Direction::ToClient].is_none()
        && server_last.frame < a.at.frame
        && ccs.frame <= a.at.frame
        && waited >= GAVE_UP_AFTER_NS)
        .then_some((waited, ccs))
}

/// TLS 1.2 or older: the client's encrypted alert after its own ChangeCipherSpec and before the
/// server's, with the server's certificate read in the clear. The reason and the chain's fault.
fn refused_first_flight(a: &AlertEvent, tls: &TlsFacts) -> Option<(Reason, Option<String>)> {
    let client_ccs = tls.ccs[Direction::ToServer]?;
    let before_server_ccs = tls.ccs[Direction::ToClient].is_none_or(|s| s.frame > a.at.frame);
    if a.direction != Direction::ToServer
        || tls.is_tls13()
        || tls.server_certificates.is_empty()
        || client_ccs.frame > a.at.frame
        || !before_server_ccs
    {
        return None;
    }
    // A refusal is one alert; a client that gives up waiting for the server's answer says so
    // twice (JSSE: user_canceled, then close_notify; a long wait is read by `gave_up` first).
    let client_alerts = tls.alerts.iter().filter(|x| x.direction == Direction::ToServer).count();
    if client_alerts > 1 {
        return None;
    }
    let sni = tls.sni();
    Some(match cert_problem(&tls.server_certificates, sni, a.at.ts) {
        Some((reason, why)) => (reason, Some(why)),
        None => (Reason::RejectedByClient, None),
    })
}
