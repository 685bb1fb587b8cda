//! The classifier: ordered rules from the most explicit evidence (a non-TLS peer, a plaintext
//! alert) to the least (sizes of encrypted records, silence). Each rule names its evidence.

use super::quality::quality_notes;
use super::warnings::warnings;
use super::{Confidence, Context, Failure, Outcome, Reason, Verdict};
use crate::flow::{Direction, Side, TcpFacts};
use crate::tls::names::{AlertDescription as A, Version};
use crate::tls::{AlertEvent, TlsFacts};
use std::fmt::Write as _;

/// A waiting side that closes after at least this much silence gave up waiting (a timeout),
/// rather than aborting the handshake.
pub(super) const GAVE_UP_AFTER_NS: i64 = 1_000_000_000;

/// Client flight sizes (TLS 1.3, encrypted) above this carry a certificate.
const CLIENT_FLIGHT_WITH_CERT: usize = 200;

/// Gives one session its verdict.
pub fn diagnose(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>) -> Verdict {
    let mut v = Verdict {
        outcome: Outcome::Incomplete,
        failure: None,
        confidence: Confidence::High,
        incomplete_reason: None,
        summary: String::new(),
        judged_at: ctx.capture_end,
        warnings: Vec::new(),
        quality_notes: quality_notes(tcp, tls),
        no_data: false,
        uses_profile: false,
        borrowed: None,
    };
    classify(tcp, tls, ctx, &mut v);
    super::borrowed::apply(tcp, tls, ctx, &mut v);
    super::keys::note_summary(tls, &mut v);
    if late_start(tcp, tls) {
        // Read without the ClientHello: no name or offer to check, no client random for keys.
        v.summary.push_str(
            " The capture starts after the ClientHello: the name and offer checks and key-log matching were not possible.",
        );
        if let Some(f) = &mut v.failure {
            f.confidence = f.confidence.min(Confidence::Medium);
        }
    }
    if !v.quality_notes.is_empty() {
        v.confidence = v.confidence.min(Confidence::Low);
        if let Some(f) = &mut v.failure {
            f.confidence = f.confidence.min(Confidence::Low);
        }
    }
    if let Some(f) = &v.failure {
        v.confidence = f.confidence;
        // Version and cipher failures are explained by what the same server accepted elsewhere.
        // So are TLS 1.3 certificate rejections, by the certificate it showed elsewhere.
        if f.reason == Reason::VersionMismatch
            || f.reason.cause() == super::Cause::Cipher
            || v.borrowed.is_some()
            || f.reason == Reason::RejectedByClient
        {
            v.uses_profile = true;
        }
    }
    v
}

pub(super) fn fail(v: &mut Verdict, reason: Reason, side: Side, confidence: Confidence, summary: String) {
    v.outcome = Outcome::Failed;
    v.failure = Some(Failure {
        reason,
        side,
        confidence,
    });
    v.summary = summary;
}

pub(super) fn incomplete(v: &mut Verdict, why: &'static str, confidence: Confidence, summary: String) {
    v.outcome = Outcome::Incomplete;
    v.incomplete_reason = Some(why);
    v.confidence = confidence;
    v.summary = summary;
}

pub(super) fn secs(ns: i64) -> String {
    format!("{:.1} s", ns as f64 / 1e9)
}

/// No SYN, no SYN-ACK and no payload either way.
fn midstream_without_data(tcp: &TcpFacts) -> bool {
    tcp.syns.is_empty() && tcp.syn_ack.is_none() && !tcp.carried_data()
}

fn classify(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    let client_seen = tcp.dirs[Direction::ToServer].packets > 0;
    let server_seen = tcp.dirs[Direction::ToClient].packets > 0;

    // Neither a handshake nor a byte of payload (the last ACKs of a connection whose start was
    // not captured, keep-alives on a one-way mirror): a TCP connection without data, not a
    // session seen from one side.
    if (!server_seen || !client_seen) && midstream_without_data(tcp) {
        return super::stall::tcp_only(tcp, ctx, v);
    }
    // A capture with one direction only cannot tell silence from absence.
    if !server_seen && tcp.dirs[Direction::ToServer].acks > 0 && tcp.syn_ack.is_none() {
        return incomplete(
            v,
            "one_direction",
            Confidence::Low,
            format!(
                "Only the client's packets to {server} are in the capture (its ACKs show the server answered), so the handshake cannot be judged."
            ),
        );
    }
    if !client_seen {
        return incomplete(
            v,
            "one_direction",
            Confidence::Low,
            format!("Only the server's packets from {server} are in the capture, so the handshake cannot be judged."),
        );
    }

    // TCP only: no payload at all.
    if !tcp.carried_data() {
        return super::stall::tcp_only(tcp, ctx, v);
    }

    // Plaintext before TLS (STARTTLS, a proxy), or a server's banner to a silent client.
    if super::preamble::verdict(tcp, tls, v) {
        return;
    }

    // A connection joined late whose last record is cut off: the capture misses packets
    // (a filtered or sampled capture), so silence proves nothing.
    let closed = tcp.first_rst().is_some() || tcp.first_fin().is_some();
    if tcp.midstream && !closed && !tls.handshake_complete() && tls.pending_record.iter().any(|n| *n > 0) {
        return incomplete(
            v,
            "capture_ended",
            Confidence::Low,
            format!(
                "The capture holds only part of this connection to {server} (no SYN, and its last TLS record is cut off), so the handshake cannot be judged."
            ),
        );
    }

    // Joined midway and not one TLS record in either direction (plain HTTP keep-alive on 443):
    // nothing says it is TLS, so it is no TLS session.
    if tcp.midstream
        && !tls.records_seen()
        && !tls.tls_seen()
        && tls.preamble.is_none()
        && tcp.dirs.iter().all(|d| d.snaplen_missing == 0)
    {
        v.no_data = true;
        return incomplete(
            v,
            "plaintext",
            Confidence::Medium,
            format!(
                "The capture joined this connection to {server} midway and no TLS record was found in it: not TLS."
            ),
        );
    }

    // The snap length cut handshake messages of a connection whose start is here and whose
    // server answered: what is missing cannot be read as a stall or a close; a whole plaintext
    // fatal alert still says how it ended (at low confidence).
    let truncated = !tcp.midstream
        && tcp.dirs.iter().any(|d| d.snaplen_missing > 0)
        && (tls.lost_sync.iter().any(|n| *n > 0) || tls.handshake_messages_lost.iter().any(|n| *n > 0));
    if truncated
        && !tls.handshake_complete()
        && !tls.not_tls.iter().any(|x| *x)
        && tcp.dirs[Direction::ToClient].payload_bytes > 0
        && !tls.alerts.iter().any(|a| a.fatal() && !a.encrypted)
    {
        return incomplete(
            v,
            "capture_truncated",
            Confidence::Medium,
            format!(
                "The capture's snap length cut this connection's packets to {server} short, so its handshake cannot be read (capture again with a larger -s)."
            ),
        );
    }

    // A start outside the capture, unless it is a clean late start ([`late_start`]): judged by
    // the rules below (those that need the ClientHello's offer or name do without).
    if tls.client_hello.is_none() && !tls.not_tls[Direction::ToServer] {
        if !truncated && (tcp.midstream || tls.lost_sync[Direction::ToServer] > 0) && !late_start(tcp, tls) {
            return incomplete(
                v,
                "midstream",
                Confidence::Medium,
                format!(
                    "The capture starts in the middle of this connection to {server}; its handshake is not in the capture."
                ),
            );
        }
        if tcp.dirs[Direction::ToServer].payload_bytes == 0 {
            // The server spoke first: SMTP-style banner or a server talking to a silent client.
            if tls.not_tls[Direction::ToClient] {
                let fb = tls.first_bytes[Direction::ToClient].as_ref();
                return fail(
                    v,
                    Reason::NotTls,
                    Side::Server,
                    Confidence::High,
                    format!(
                        "The server {server} spoke first with {} instead of waiting for a TLS ClientHello.",
                        fb.map(|f| f.looks_like).unwrap_or("non-TLS data")
                    ),
                );
            }
        }
    }

    if tls.not_tls[Direction::ToServer] && super::preamble::plaintext_service(tls) {
        // Both ends spoke plaintext (plain HTTP on 443): no TLS session, and no failure.
        v.no_data = true;
        return incomplete(
            v,
            "plaintext",
            Confidence::High,
            format!("The connection to {server} spoke plaintext on both sides: not TLS."),
        );
    }
    if tls.not_tls[Direction::ToServer] {
        let fb = tls.first_bytes[Direction::ToServer].as_ref();
        return fail(
            v,
            Reason::PlaintextClient,
            Side::Client,
            Confidence::High,
            format!(
                "The client sent {} to the TLS port {} instead of a TLS ClientHello: \"{}\".",
                fb.map(|f| f.looks_like).unwrap_or("non-TLS data"),
                server.port,
                fb.map(|f| short(&f.shown, 40)).unwrap_or_default()
            ),
        );
    }
    if tls.not_tls[Direction::ToClient] {
        let fb = tls.first_bytes[Direction::ToClient].as_ref();
        return fail(
            v,
            Reason::NotTls,
            Side::Server,
            Confidence::High,
            format!(
                "The server {server} answered the ClientHello with {} instead of TLS: \"{}\".",
                fb.map(|f| f.looks_like).unwrap_or("non-TLS data"),
                fb.map(|f| short(&f.shown, 40)).unwrap_or_default()
            ),
        );
    }

    // Alerts that came before the handshake completed.
    let complete_at = completion_frame(tls);
    if let Some(a) = tls.alerts.iter().find(|a| {
        a.fatal() && complete_at.is_none_or(|c| a.at.frame < c) && !super::silent_close::answers_close(a, tcp, tls)
    }) {
        if !a.encrypted || !tls.is_tls13() {
            return alert_verdict(a, tcp, tls, ctx, v);
        }
    }

    // TLS 1.3: read the encrypted records' sizes and order.
    if tls.is_tls13() {
        let p = &tls.tls13;
        if super::stall::tls13_client_ended(tcp, tls, v) || super::server_abort13::aborted(tcp, tls, v) {
            return;
        }
        if let Some(s) = tls.server_rejected_client() {
            // A sealed close_notify answering the client's own close is not a rejection.
            let client_closed_before = tcp
                .dir(Direction::ToServer)
                .fin
                .or(tcp.dir(Direction::ToServer).rst)
                .is_some_and(|a| a.frame < s.at.frame);
            if !client_closed_before {
                let (reason, what) = if p.client_flight_bytes >= CLIENT_FLIGHT_WITH_CERT {
                    (Reason::ClientCertificateRejected, "rejected the client's certificate")
                } else {
                    (
                        Reason::ClientCertificateMissing,
                        "required a client certificate the client did not send",
                    )
                };
                return fail(
                    v,
                    reason,
                    Side::Server,
                    Confidence::Medium,
                    format!(
                        "The server {server} answered the client's TLS 1.3 flight ({} bytes) with an alert-sized encrypted record ({} bytes) and no data: it most likely {what}.",
                        p.client_flight_bytes, s.len
                    ),
                );
            }
        }
    }

    if tls.handshake_complete() {
        if let Some(summary) = super::keys::name_refused_after_handshake(tls, &server) {
            return fail(v, Reason::HostnameMismatch, Side::Client, Confidence::High, summary);
        }
        if super::after_finished::client_refused(tcp, tls, ctx, v) {
            return;
        }
        if let Some((reason, summary)) = super::keys::certificate_refused_after_handshake(tls, &server) {
            return fail(v, reason, Side::Server, Confidence::High, summary);
        }
        return established(tcp, tls, ctx, v, Confidence::High);
    }
    if tls.is_tls13() && tls.tls13.client_first.is_some() {
        // The client sent its Finished-sized flight; nothing from the server contradicts it.
        // A server that closes right after the client's flight refused it; one that closes after
        // a long quiet spell (no tickets, nothing to say) merely ended an idle connection.
        // Timed from the client's first record of that flight: what the client sends after the
        // server closed (its own close_notify) must not make an idle close look like a refusal.
        let flight_end = tls.tls13.client_first.map(|r| r.at.ts).unwrap_or(tcp.first.ts);
        let server_closed_first = tcp
            .first_close()
            .is_some_and(|(s, at, _)| s == Side::Server && at.ts.nanos_since(flight_end) < GAVE_UP_AFTER_NS);
        if !server_closed_first {
            return established(tcp, tls, ctx, v, Confidence::Medium);
        }
    }

    if super::silent_close::during_handshake(tcp, tls, v) {
        return;
    }
    super::stall::stalled_or_closed(tcp, tls, ctx, v)
}

/// A capture that starts cleanly between the ClientHello and the ServerHello (a capture started
/// while the failure was being reproduced): no SYN, the ServerHello read, both directions read
/// from a record boundary on, and the client's first data exactly where the server's first
/// acknowledgment says its stream stood (none of its bytes lost before). It still holds the
/// server's side of the handshake and what the client answered.
pub(super) fn late_start(tcp: &TcpFacts, tls: &TlsFacts) -> bool {
    tcp.midstream
        && tls.client_hello.is_none()
        && tls.server_hello.is_some()
        && tls.lost_sync.iter().all(|n| *n == 0)
        && tcp.client_first_seq.is_some()
        && tcp.client_first_seq == tcp.server_first_ack
}

/// Frame at which the handshake completed, if it did.
fn completion_frame(tls: &TlsFacts) -> Option<u64> {
    if !tls.handshake_complete() {
        return None;
    }
    if tls.is_tls13() {
        tls.tls13.server_after_client.map(|r| r.at.frame)
    } else {
        match (tls.finished[Direction::ToServer], tls.finished[Direction::ToClient]) {
            (Some(a), Some(b)) => Some(a.frame.max(b.frame)),
            _ => None,
        }
    }
}

fn established(tcp: &TcpFacts, tls: &TlsFacts, _ctx: &Context<'_>, v: &mut Verdict, confidence: Confidence) {
    v.outcome = Outcome::Established;
    v.confidence = confidence;
    let now = tls.server_hello.as_ref().map(|s| s.at.ts).unwrap_or(tcp.first.ts);
    v.warnings = warnings(tls, now.secs());
    if let Some(w) = closed_without_data(tcp, tls) {
        v.warnings.push(w);
    }
    let sh = tls.server_hello.as_ref();
    // Every established session gets one: built by hand, the formatter machinery would cost
    // more than the rest of its verdict.
    let mut summary = String::with_capacity(96);
    summary.push_str("Handshake with ");
    tcp.server.push_to(&mut summary);
    summary.push_str(" completed");
    if let Some(sh) = sh {
        summary.push_str(": ");
        push_name(&mut summary, sh.version.name(), &sh.version);
        summary.push_str(", ");
        push_name(&mut summary, sh.cipher_suite.name(), &sh.cipher_suite);
        if let Some(g) = sh.group {
            summary.push_str(", ");
            push_name(&mut summary, g.name(), &g);
        }
    }
    summary.push('.');
    v.summary = summary;
}

/// TLS 1.3: after the server's flight the client sent exactly two records, its Finished and a
/// close_notify-sized one soon after, and closed the connection first, without a request.
/// Clients that check the certificate's name only after the handshake (curl with OpenSSL, for
/// one) end this way on a name mismatch, with no alert anyone could read; so does a
/// handshake-only health check. Worth a look, not a failure.
///
/// Records are counted on the reassembled stream, so a retransmission or a keep-alive probe does
/// not hide the pattern. Not flagged: a client that sent a certificate (more records), a padded
/// close_notify, a close long after the handshake (an idle connection), and a close_notify that
/// comes after the server's first post-handshake record (a session ticket): the handshake is
/// complete then and the rest of the stream is not read. A 2-byte request would look the same:
/// record sizes are all there is to read.
fn closed_without_data(tcp: &TcpFacts, tls: &TlsFacts) -> Option<super::Warning> {
    let p = &tls.tls13;
    let (finished, last) = (p.client_first?, p.client_last?);
    let (side, closed, _) = tcp.first_close()?;
    let soon = last.at.ts.nanos_since(finished.at.ts) < GAVE_UP_AFTER_NS
        && closed.ts.nanos_since(last.at.ts) < GAVE_UP_AFTER_NS;
    let pattern = tls.is_tls13()
        && side == Side::Client
        && p.client_records == 2
        && !p.alert_sized(Direction::ToServer, finished.len)
        && p.alert_sized(Direction::ToServer, last.len)
        && closed.frame >= last.at.frame;
    if !(pattern && soon) {
        return None;
    }
    let mut detail = format!(
        "the client sent its Finished and a close_notify-sized record ({} bytes, frame {}), then closed the connection (frame {}) without a request: if this was not a health check, the client may have rejected the certificate after the handshake (curl with OpenSSL checks the name then)",
        last.len, last.at.frame, closed.frame
    );
    // With the chain decrypted and no name asked for, the address is what such a client checked.
    if tls.sni().is_none() {
        if let Some(why) = super::borrowed::address_not_covered(&tls.server_certificates, tcp.server.ip) {
            detail.push_str("; ");
            detail.push_str(&why);
        }
    }
    Some(super::Warning {
        id: "closed_without_data",
        detail,
    })
}

/// Appends a known name, else the value's display form.
fn push_name(out: &mut String, name: Option<&'static str>, v: &dyn std::fmt::Display) {
    match name {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "{v}");
        }
    }
}

/// A client's illegal_parameter read as the TLS 1.3 downgrade sentinel (a TLS 1.3 server sets it
/// whenever it chooses TLS 1.2, whatever the client offered): certain when the client offered more
/// than the server chose; when the hello seen offers no more but the server chose a suite it
/// offered, its higher offer was most likely taken out in front of this capture point.
fn downgrade(tls: &TlsFacts) -> Option<(Reason, Confidence, String)> {
    let (sh, ch) = (tls.server_hello.as_ref()?, tls.client_hello.as_ref()?);
    if !sh.downgrade_sentinel {
        return None;
    }
    if ch.max_version() > sh.version {
        return Some((
            Reason::DowngradeRejected,
            Confidence::High,
            "the ServerHello carries the TLS 1.3 downgrade sentinel and the client refused it".into(),
        ));
    }
    ch.real_suites().any(|s| s == sh.cipher_suite).then(|| {
        (
            Reason::DowngradeRejected,
            Confidence::Medium,
            format!(
                "the ServerHello carries the TLS 1.3 downgrade sentinel, and the client refused it although the hello seen here offers only up to {}: a client that speaks TLS 1.3 most likely had its offer taken out of the ClientHello in front of this capture point (a middlebox rewriting it)",
                ch.max_version()
            ),
        )
    })
}

pub(super) fn alert_verdict(a: &AlertEvent, tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    let sender = a.direction.sender();
    let Some(desc) = a.description else {
        return super::sealed_alert::verdict(a, tcp, tls, v);
    };
    let before_sh = tls.server_hello.as_ref().is_none_or(|sh| sh.at.frame > a.at.frame);
    let cert_req = tls.certificate_request.is_some();
    let client_cert = tls.client_certificate.map(|(_, n)| n);
    let said = format!("the {sender} sent a fatal {} alert (frame {})", desc, a.at.frame);
    let dhe = tls.server_hello.as_ref().is_some_and(|sh| {
        sh.cipher_suite.name().is_some_and(|n| n.contains("_DHE_")) && tls.server_key_exchange.is_some()
    });
    let server_cert_alert = sender == Side::Client
        && matches!(
            desc,
            A::BAD_CERTIFICATE
                | A::UNSUPPORTED_CERTIFICATE
                | A::CERTIFICATE_REVOKED
                | A::CERTIFICATE_EXPIRED
                | A::CERTIFICATE_UNKNOWN
                | A::UNKNOWN_CA
                | A::ACCESS_DENIED
        );
    let client_cert_alert = sender == Side::Server
        && matches!(
            desc,
            A::BAD_CERTIFICATE
                | A::UNSUPPORTED_CERTIFICATE
                | A::CERTIFICATE_REVOKED
                | A::CERTIFICATE_EXPIRED
                | A::CERTIFICATE_UNKNOWN
                | A::UNKNOWN_CA
                | A::ACCESS_DENIED
                | A::CERTIFICATE_REQUIRED
        );

    if server_cert_alert {
        let facts = super::borrowed::cert_problem(&tls.server_certificates, tls.sni(), a.at.ts);
        let facts_none = facts.is_none();
        let (reason, detail) = match (desc, facts) {
            (A::CERTIFICATE_REVOKED, _) => (Reason::Revoked, "the client found it revoked".to_string()),
            (A::CERTIFICATE_EXPIRED, Some((r @ (Reason::Expired | Reason::NotYetValid), d))) => (r, d),
            (A::CERTIFICATE_EXPIRED, _) => (Reason::Expired, "the client reports it expired".to_string()),
            (A::UNKNOWN_CA, Some((Reason::SelfSigned, d))) => (Reason::SelfSigned, d),
            // A self-signed certificate refused with bad_certificate by a client that sent no
            // name: OpenSSL-based clients say unknown_ca for the self-signature, so the address
            // it does not cover is the likelier complaint (a pinned certificate, reached by IP).
            (A::BAD_CERTIFICATE, Some((Reason::SelfSigned, d))) => match tls
                .sni()
                .is_none()
                .then(|| super::borrowed::address_not_covered(&tls.server_certificates, server.ip))
                .flatten()
            {
                Some(a) => (Reason::HostnameMismatch, a),
                None => (Reason::SelfSigned, d),
            },
            (A::UNKNOWN_CA, _) => (
                Reason::UnknownCa,
                super::chain::untrusted_issuer(&tls.server_certificates)
                    .unwrap_or_else(|| "the client does not trust its issuer".to_string()),
            ),
            (_, Some((r, d))) => (r, d),
            (A::UNSUPPORTED_CERTIFICATE, None) => (
                Reason::BadCertificate,
                "the client cannot use this certificate type".to_string(),
            ),
            // Read further only with a name the chain was checked against (without one, an IP
            // address the certificate does not cover would read as an untrusted issuer).
            (A::BAD_CERTIFICATE | A::CERTIFICATE_UNKNOWN, None)
                if (!tls.is_tls13() || tls.decrypted()) && !tls.server_certificates.is_empty() =>
            {
                // Without a name, an address the certificate does not cover: OpenSSL-based
                // clients (curl, Python) say bad_certificate for it and unknown_ca for an
                // issuer; certificate_unknown (Java, Chromium) names nothing, so there the
                // address is only a fact beside the refusal.
                let address = match tls.sni() {
                    None => super::borrowed::address_not_covered(&tls.server_certificates, server.ip),
                    Some(_) => None,
                };
                match address {
                    Some(d) if desc == A::BAD_CERTIFICATE => (Reason::HostnameMismatch, d),
                    Some(d) => (Reason::RejectedByClient, format!("the client rejected it; {d}")),
                    None if tls.sni().is_some() => super::borrowed::bad_certificate_why(
                        &tls.server_certificates,
                        &format!("says only {}", desc.name().unwrap_or("an alert")),
                    ),
                    None if desc == A::CERTIFICATE_UNKNOWN => {
                        (Reason::RejectedByClient, "the client rejected it".to_string())
                    }
                    None => (
                        Reason::BadCertificate,
                        "the client found the certificate bad".to_string(),
                    ),
                }
            }
            _ => (Reason::RejectedByClient, "the client rejected it".to_string()),
        };
        // GnuTLS says bad_certificate, BoringSSL (Chrome) and Java certificate_unknown, whatever
        // they found: an issuer read off a clean chain is an inference, not the client's word.
        // (Without a name, a name mismatch is the address's: inferred too.)
        let inferred =
            matches!(reason, Reason::UnknownCa | Reason::HostnameMismatch) && (facts_none || tls.sni().is_none());
        let confidence = if matches!(desc, A::BAD_CERTIFICATE | A::CERTIFICATE_UNKNOWN) && inferred {
            Confidence::Medium
        } else {
            Confidence::High
        };
        return fail(
            v,
            reason,
            Side::Client,
            confidence,
            format!("The client rejected {server}'s certificate: {detail}; {said}."),
        );
    }
    // Asked for a certificate, the client sent an empty one: whatever fatal alert the server
    // sends next (GnuTLS: decode_error) says the certificate was missing.
    let empty_answer = sender == Side::Server && cert_req && client_cert == Some(0);
    if client_cert_alert
        || empty_answer
        || (desc == A::HANDSHAKE_FAILURE && sender == Side::Server && cert_req && !before_sh)
    {
        let client_visible = !tls.is_tls13() || tls.keys.as_ref().is_some_and(|k| k.client_read());
        let missing =
            empty_answer || desc == A::CERTIFICATE_REQUIRED || (client_visible && client_cert.is_none_or(|n| n == 0));
        let (reason, what) = if missing {
            (
                Reason::ClientCertificateMissing,
                "requires a client certificate and the client sent none",
            )
        } else {
            (Reason::ClientCertificateRejected, "rejected the client's certificate")
        };
        return fail(
            v,
            reason,
            Side::Server,
            Confidence::High,
            format!("{server} {what}: {said}."),
        );
    }

    // The server chose TLS 1.0/1.1 although the client offered TLS 1.2 or later, and the client
    // gave up at once with an alert that names no version: current stacks refuse the old
    // versions' signatures and hashes (RFC 8996) and say so with internal_error or
    // handshake_failure; browsers show a version error.
    let legacy_choice = tls
        .server_hello
        .as_ref()
        .filter(|sh| sh.version < Version::TLS12 && !sh.version.is_tls13());
    if let (Some(sh), Some(ch)) = (legacy_choice, tls.client_hello.as_ref()) {
        let max = ch.max_version();
        // internal_error whatever the key exchange (OpenSSL 3 refuses the legacy signature of a
        // DHE or RSA exchange alike); handshake_failure only without DHE, where it would rather
        // be about the DH parameters (below). insufficient_security names the parameters, not
        // the version, and keeps its own reason.
        let refusal = desc == A::INTERNAL_ERROR || (desc == A::HANDSHAKE_FAILURE && !dhe);
        if sender == Side::Client && !before_sh && refusal && max >= Version::TLS12 {
            // A hello without supported_versions accepts every version up to its own.
            let offered = if ch.supported_versions.is_empty() {
                sh.version <= ch.legacy_version
            } else {
                ch.supported_versions.contains(&sh.version)
            };
            let how = if offered {
                "an obsolete version the client offered but refuses to use"
            } else {
                "an obsolete version the client did not offer"
            };
            return fail(
                v,
                Reason::VersionMismatch,
                Side::Client,
                Confidence::Medium,
                format!(
                    "{server} chose {}, {how} (it supports up to {max}): {said}.",
                    sh.version
                ),
            );
        }
    }

    let (reason, confidence, detail) = match desc {
        A::HANDSHAKE_FAILURE if sender == Side::Server && before_sh => super::cipher::cipher_reason(tls, ctx),
        A::HANDSHAKE_FAILURE if sender == Side::Client && dhe => (
            Reason::WeakParameters,
            Confidence::Medium,
            "the client refused the server's DHE parameters".to_string(),
        ),
        A::INSUFFICIENT_SECURITY if sender == Side::Client && dhe => (
            Reason::InsufficientSecurity,
            Confidence::High,
            "the client found the server's DHE parameters too weak".to_string(),
        ),
        A::INSUFFICIENT_SECURITY => (
            Reason::InsufficientSecurity,
            Confidence::High,
            "the offered parameters were too weak for the peer".into(),
        ),
        A::PROTOCOL_VERSION => (Reason::VersionMismatch, Confidence::High, version_detail(tls, ctx)),
        A::INAPPROPRIATE_FALLBACK => (
            Reason::DowngradeRejected,
            Confidence::High,
            "the client retried with a lower version (TLS_FALLBACK_SCSV) and the server refused the downgrade".into(),
        ),
        A::UNRECOGNIZED_NAME => (
            Reason::SniRejected,
            Confidence::High,
            format!(
                "the server does not serve the name {}",
                tls.client_hello
                    .as_ref()
                    .and_then(|c| c.server_name.clone())
                    .unwrap_or_else(|| "(no SNI sent)".into())
            ),
        ),
        A::NO_APPLICATION_PROTOCOL => (
            Reason::AlpnMismatch,
            Confidence::High,
            format!(
                "the client offered ALPN [{}] and the server supports none of them",
                tls.client_hello.as_ref().map(|c| c.alpn.join(", ")).unwrap_or_default()
            ),
        ),
        A::UNEXPECTED_MESSAGE => (Reason::UnexpectedMessage, Confidence::High, String::new()),
        A::DECODE_ERROR => (Reason::DecodeError, Confidence::High, String::new()),
        A::ILLEGAL_PARAMETER => downgrade(tls).filter(|_| sender == Side::Client).unwrap_or((
            Reason::IllegalParameter,
            Confidence::High,
            String::new(),
        )),
        A::DECRYPT_ERROR => (Reason::DecryptError, Confidence::High, String::new()),
        A::BAD_RECORD_MAC => (Reason::BadRecordMac, Confidence::High, String::new()),
        A::INTERNAL_ERROR => (Reason::InternalError, Confidence::High, String::new()),
        _ => (Reason::FatalAlert, Confidence::High, String::new()),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    fail(
        v,
        reason,
        sender,
        confidence,
        format!(
            "The handshake with {server} failed{detail}; {said}{}.",
            if before_sh && sender == Side::Server {
                ", right after the ClientHello"
            } else {
                ""
            }
        ),
    );
}

fn version_detail(tls: &TlsFacts, ctx: &Context<'_>) -> String {
    let offered = tls
        .client_hello
        .as_ref()
        .map(|c| list(&c.offered_versions()))
        .unwrap_or_default();
    match ctx.profile.filter(|p| !p.versions.is_empty()) {
        Some(p) => format!(
            "the client offered {offered}; this server negotiated only {} in {} other session(s)",
            list(&p.versions.iter().copied().collect::<Vec<_>>()),
            p.established
        ),
        None => format!("the client offered {offered}"),
    }
}

pub(super) fn list(vs: &[Version]) -> String {
    let mut v: Vec<String> = vs.iter().map(|v| v.to_string()).collect();
    v.dedup();
    v.join(", ")
}

pub(super) fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
