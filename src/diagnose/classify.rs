//! The classifier: ordered rules from the most explicit evidence (a non-TLS peer, a plaintext
//! alert) to the least (sizes of encrypted records, silence). Each rule names its evidence.

use super::cert_checks::cert_problem;
use super::quality::quality_notes;
use super::warnings::warnings;
use super::{Confidence, Context, Evidence, Failure, Outcome, Reason, Verdict};
use crate::flow::{At, Direction, EndKind, Side, TcpFacts};
use crate::limits::MAX_EVIDENCE;
use crate::tls::cert::secs_rfc3339;
use crate::tls::names::{AlertDescription as A, Version};
use crate::tls::{AlertEvent, TlsFacts, alert_sized};
use std::fmt::Write as _;

/// A waiting side that closes after at least this much silence gave up waiting (a timeout),
/// rather than aborting the handshake.
const GAVE_UP_AFTER_NS: i64 = 1_000_000_000;

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
    };
    classify(tcp, tls, ctx, &mut v);
    super::keys::note_summary(tls, &mut v);
    if !v.quality_notes.is_empty() {
        v.confidence = v.confidence.min(Confidence::Low);
        if let Some(f) = &mut v.failure {
            f.confidence = f.confidence.min(Confidence::Low);
        }
    }
    if let Some(f) = &v.failure {
        v.confidence = f.confidence;
        // Version and cipher failures are explained by what the same server accepted elsewhere.
        if f.reason == Reason::VersionMismatch || f.reason.cause() == super::Cause::Cipher {
            v.uses_profile = true;
        }
    }
    v
}

fn fail(v: &mut Verdict, reason: Reason, side: Side, confidence: Confidence, summary: String) {
    v.outcome = Outcome::Failed;
    v.failure = Some(Failure {
        reason,
        side,
        confidence,
    });
    v.summary = summary;
}

fn incomplete(v: &mut Verdict, why: &'static str, confidence: Confidence, summary: String) {
    v.outcome = Outcome::Incomplete;
    v.incomplete_reason = Some(why);
    v.confidence = confidence;
    v.summary = summary;
}

fn secs(ns: i64) -> String {
    format!("{:.1} s", ns as f64 / 1e9)
}

fn classify(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    let client_seen = tcp.dirs[Direction::ToServer].packets > 0;
    let server_seen = tcp.dirs[Direction::ToClient].packets > 0;

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
        return tcp_only(tcp, ctx, v);
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

    // A start outside the capture.
    if tls.client_hello.is_none() && !tls.not_tls[Direction::ToServer] {
        if tcp.midstream || tls.lost_sync[Direction::ToServer] > 0 {
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
    if let Some(a) = tls
        .alerts
        .iter()
        .find(|a| a.fatal() && complete_at.is_none_or(|c| a.at.frame < c))
    {
        if !a.encrypted || !tls.is_tls13() {
            return alert_verdict(a, tcp, tls, ctx, v);
        }
    }

    // TLS 1.3: read the encrypted records' sizes and order.
    if tls.is_tls13() {
        let p = &tls.tls13;
        if let Some(c) = p.client_first.filter(|c| alert_sized(c.len)) {
            if p.client_flight_records <= 1 {
                return fail(
                    v,
                    Reason::RejectedByClient,
                    Side::Client,
                    Confidence::Medium,
                    format!(
                        "The client answered {server}'s TLS 1.3 flight with an alert-sized encrypted record ({} bytes; a Finished is at least 53) and sent no application data: it rejected the server, most often its certificate.",
                        c.len
                    ),
                );
            }
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

    stalled_or_closed(tcp, tls, ctx, v)
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
        && !alert_sized(finished.len)
        && alert_sized(last.len)
        && closed.frame >= last.at.frame;
    (pattern && soon).then(|| super::Warning {
        id: "closed_without_data",
        detail: format!(
            "the client sent its Finished and a close_notify-sized record ({} bytes, frame {}), then closed the connection (frame {}) without a request: if this was not a health check, the client may have rejected the certificate after the handshake (curl with OpenSSL checks the name then)",
            last.len, last.at.frame, closed.frame
        ),
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

fn tcp_only(tcp: &TcpFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    if tcp.syn_count > 0 && tcp.syn_ack.is_none() {
        if let Some(rst) = tcp.dirs[Direction::ToClient].rst {
            return fail(
                v,
                Reason::ConnectionRefused,
                Side::Server,
                Confidence::High,
                format!(
                    "{server} refused the connection: its RST (frame {}) answered the SYN.",
                    rst.frame
                ),
            );
        }
        let first = tcp.syns.first().map(|a| a.ts).unwrap_or(tcp.first.ts);
        let waited = ctx.capture_end.nanos_since(first).max(tcp.last.ts.nanos_since(first));
        if tcp.syn_count >= 3 || waited >= ctx.handshake_timeout_ns || tcp.end == EndKind::HandshakeTimeout {
            return fail(
                v,
                Reason::SynUnanswered,
                Side::Server,
                if tcp.syn_count >= 2 {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                format!(
                    "The client sent {} SYN{} to {server} over {} and never got an answer: the server is down or a firewall drops the traffic.",
                    tcp.syn_count,
                    if tcp.syn_count == 1 { "" } else { "s" },
                    secs(tcp.last.ts.nanos_since(first))
                ),
            );
        }
        return incomplete(
            v,
            "capture_ended",
            Confidence::Medium,
            format!(
                "The capture ended {} after the SYN to {server}, too soon to call it a timeout.",
                secs(waited)
            ),
        );
    }
    // The server closed a connection before the client sent anything: a failure to connect.
    if tcp.syn_ack.is_some() || !tcp.midstream {
        let opened = tcp.syn_ack.map(|a| a.ts).unwrap_or(tcp.first.ts);
        if let Some((side, at, rst)) = tcp.first_close() {
            // Closing at once refuses the connection; closing an unused one later is a timeout of
            // the server's own (preconnects, pools) and not a failure.
            if side == Side::Server && at.ts.nanos_since(opened) < GAVE_UP_AFTER_NS {
                return fail(
                    v,
                    if rst {
                        Reason::ResetDuringHandshake
                    } else {
                        Reason::ClosedDuringHandshake
                    },
                    Side::Server,
                    Confidence::High,
                    format!(
                        "{server} {} the connection (frame {}) before the client sent its ClientHello.",
                        if rst { "reset" } else { "closed" },
                        at.frame
                    ),
                );
            }
        }
    }
    v.no_data = true;
    incomplete(
        v,
        "no_data",
        Confidence::High,
        format!("TCP connection to {server} carried no data (health check or idle connection)."),
    );
}

/// Who must speak next: the side that did not send the last handshake data.
fn owing(tcp: &TcpFacts, tls: &TlsFacts) -> Direction {
    // Handshake progress (records that move the handshake on), else raw TCP data.
    let last = |i: Direction| {
        tls.last_progress[i]
            .or(tcp.dirs[i].last_data)
            .map(|a| a.frame)
            .unwrap_or(0)
    };
    let c = last(Direction::ToServer);
    let s = last(Direction::ToClient);
    if s > c {
        Direction::ToServer
    } else {
        Direction::ToClient
    }
}

fn stalled_or_closed(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    let mut owe = owing(tcp, tls);
    // Data the silent side never acknowledged never reached it: the network lost it, and the
    // "silent" side was in fact waiting for it.
    let lost = tcp.unacked(owe.flip());
    let network_loss = lost > 0 && tcp.dirs[owe].packets > 0 && tcp.dirs[owe.flip()].retransmissions > 0;
    if network_loss {
        owe = owe.flip();
    }
    let silent = if network_loss { Side::Network } else { owe.sender() };
    let waiting = owe.flip().sender();
    let server_sent_nothing = tcp.dirs[Direction::ToClient].payload_bytes == 0;
    let last_msg = match owe {
        Direction::ToClient => tls.last_message[Direction::ToServer],
        Direction::ToServer => tls.last_message[Direction::ToClient],
    };
    let loss_note = if network_loss {
        let from = owe.sender();
        format!(
            " The {from}'s last {lost} bytes were never acknowledged although it retransmitted {} time(s): they were lost on the path (an MTU black hole drops exactly the large segments of a certificate flight).",
            tcp.dirs[owe].retransmissions
        )
    } else {
        String::new()
    };
    let after = last_msg
        .map(|(n, a)| format!("after the {}'s {n} (frame {})", waiting, a.frame))
        .unwrap_or_default();
    let waiting_last = tcp.dirs[owe.flip()].last_data.map(|a| a.ts).unwrap_or(tcp.first.ts);
    let close = tcp.first_close().map(|(side, at, rst)| ((side, at), rst));
    if let Some(((closer, at), is_rst)) = close {
        let waited = at.ts.nanos_since(waiting_last);
        if closer == waiting && waited >= GAVE_UP_AFTER_NS {
            let reason = if server_sent_nothing {
                Reason::ServerSilent
            } else {
                Reason::HandshakeStalled
            };
            return fail(
                v,
                reason,
                silent,
                Confidence::High,
                if server_sent_nothing {
                    format!(
                        "{server} never answered the ClientHello; the client gave up after {} and {} the connection.",
                        secs(waited),
                        if is_rst { "reset" } else { "closed" }
                    )
                } else if network_loss {
                    format!(
                        "The handshake stalled {after}: nothing arrived for {}, then the {waiting} {} the connection.{loss_note}",
                        secs(waited),
                        if is_rst { "reset" } else { "closed" }
                    )
                } else {
                    format!(
                        "The handshake stalled {after}: the {silent} sent nothing for {}, then the {waiting} {} the connection.",
                        secs(waited),
                        if is_rst { "reset" } else { "closed" }
                    )
                },
            );
        }
        let reason = if is_rst {
            Reason::ResetDuringHandshake
        } else {
            Reason::ClosedDuringHandshake
        };
        let state = last_msg
            .map(|(n, a)| format!(" after the {n} in frame {}", a.frame))
            .unwrap_or_default();
        return fail(
            v,
            reason,
            closer,
            Confidence::High,
            format!(
                "The {closer} {} the connection (frame {}){state}, before the TLS handshake with {server} completed, without a TLS alert.",
                if is_rst { "reset" } else { "closed" },
                at.frame
            ),
        );
    }
    let silent_for = ctx.capture_end.nanos_since(tcp.last.ts);
    let waited = ctx.capture_end.nanos_since(waiting_last);
    if tcp.end == EndKind::HandshakeTimeout || waited >= ctx.handshake_timeout_ns {
        let reason = if server_sent_nothing {
            Reason::ServerSilent
        } else {
            Reason::HandshakeStalled
        };
        return fail(
            v,
            reason,
            silent,
            Confidence::Medium,
            if server_sent_nothing {
                format!(
                    "{server} never answered the ClientHello ({} without an answer).",
                    secs(waited)
                )
            } else {
                format!(
                    "The handshake stalled {after}: nothing came for {}.{loss_note}",
                    secs(waited)
                )
            },
        );
    }
    incomplete(
        v,
        "capture_ended",
        Confidence::Medium,
        format!(
            "The capture ended {} after the last packet, during the handshake with {server}.",
            secs(silent_for)
        ),
    );
}

fn alert_verdict(a: &AlertEvent, tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    let sender = a.direction.sender();
    let Some(desc) = a.description else {
        return fail(
            v,
            Reason::FatalAlert,
            sender,
            Confidence::Medium,
            format!(
                "The {sender} sent an encrypted alert ({} bytes) during the handshake with {server}; its content cannot be read.",
                a.record_len
            ),
        );
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
        let facts = cert_problem(tls, a.at.ts);
        let (reason, detail) = match (desc, facts) {
            (A::CERTIFICATE_REVOKED, _) => (Reason::Revoked, "the client found it revoked".to_string()),
            (A::CERTIFICATE_EXPIRED, Some((r @ (Reason::Expired | Reason::NotYetValid), d))) => (r, d),
            (A::CERTIFICATE_EXPIRED, _) => (Reason::Expired, "the client reports it expired".to_string()),
            (A::UNKNOWN_CA, Some((Reason::SelfSigned, d))) => (Reason::SelfSigned, d),
            (A::UNKNOWN_CA, _) => (Reason::UnknownCa, "the client does not trust its issuer".to_string()),
            (_, Some((r, d))) => (r, d),
            (A::UNSUPPORTED_CERTIFICATE, None) => (
                Reason::BadCertificate,
                "the client cannot use this certificate type".to_string(),
            ),
            (A::BAD_CERTIFICATE, None)
                if (!tls.is_tls13() || tls.decrypted()) && !tls.server_certificates.is_empty() =>
            {
                (
                    Reason::BadCertificate,
                    "the client found the certificate bad".to_string(),
                )
            }
            _ => (Reason::RejectedByClient, "the client rejected it".to_string()),
        };
        return fail(
            v,
            reason,
            Side::Client,
            Confidence::High,
            format!("The client rejected {server}'s certificate: {detail}; {said}."),
        );
    }
    if client_cert_alert || (desc == A::HANDSHAKE_FAILURE && sender == Side::Server && cert_req && !before_sh) {
        let client_visible = !tls.is_tls13() || tls.keys.as_ref().is_some_and(|k| k.client_read());
        let missing = desc == A::CERTIFICATE_REQUIRED || (client_visible && client_cert.is_none_or(|n| n == 0));
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
        A::HANDSHAKE_FAILURE if sender == Side::Server && before_sh => cipher_reason(tls, ctx),
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
        A::ILLEGAL_PARAMETER
            if sender == Side::Client && tls.server_hello.as_ref().is_some_and(|s| s.downgrade_sentinel) =>
        {
            (
                Reason::DowngradeRejected,
                Confidence::High,
                "the ServerHello carries the TLS 1.3 downgrade sentinel and the client refused it".into(),
            )
        }
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
        A::ILLEGAL_PARAMETER => (Reason::IllegalParameter, Confidence::High, String::new()),
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

fn list(vs: &[Version]) -> String {
    let mut v: Vec<String> = vs.iter().map(|v| v.to_string()).collect();
    v.dedup();
    v.join(", ")
}

/// handshake_failure from the server right after the ClientHello: which mismatch?
///
/// With a profile of the same server (what it negotiated in other sessions) the answer is read
/// from the data; without one, from what every TLS 1.3 server must implement (RFC 8446 §9.1:
/// TLS_AES_128_GCM_SHA256 and secp256r1 key exchange).
fn cipher_reason(tls: &TlsFacts, ctx: &Context<'_>) -> (Reason, Confidence, String) {
    let Some(ch) = tls.client_hello.as_ref() else {
        return (
            Reason::NoSharedCipher,
            Confidence::Low,
            "the server refused the ClientHello".into(),
        );
    };
    let offered_versions = ch.offered_versions();
    let suites: Vec<_> = ch.real_suites().collect();
    let tls13_only = !offered_versions.is_empty() && offered_versions.iter().all(|v| v.is_tls13());
    let is13 = |s: &crate::tls::names::CipherSuite| (0x1301..=0x1305).contains(&s.0);
    if let Some(p) = ctx.profile.filter(|p| p.established > 0) {
        let n = p.established;
        let accepted: Vec<String> = p.versions.iter().map(|v| v.to_string()).collect();
        let min_accepted = p.versions.iter().copied().min();
        if ch.max_version() < Version::TLS12 && min_accepted.is_some_and(|m| m > ch.max_version()) {
            return (
                Reason::VersionMismatch,
                Confidence::High,
                format!(
                    "the client offered only {}; this server negotiated {} in {n} other session(s)",
                    list(&offered_versions),
                    accepted.join(", ")
                ),
            );
        }
        // Compare suites of the same family only: TLS 1.3 suites never match TLS 1.2 ones.
        let known12: Vec<_> = p.suites.iter().filter(|s| !is13(s)).collect();
        let offered12: Vec<_> = suites.iter().filter(|s| !is13(s)).collect();
        if !tls13_only && !known12.is_empty() && !offered12.is_empty() && !offered12.iter().any(|s| known12.contains(s))
        {
            return (
                Reason::NoSharedCipher,
                Confidence::Medium,
                format!(
                    "none of the client's {} TLS 1.2 suites is among the {} this server accepted in {n} other session(s)",
                    offered12.len(),
                    known12.len()
                ),
            );
        }
        let groups = if ch.supported_groups.is_empty() {
            &ch.key_share_groups
        } else {
            &ch.supported_groups
        };
        if !p.groups.is_empty() && !groups.is_empty() && !groups.iter().any(|g| p.groups.contains(g)) {
            return (
                Reason::NoSharedGroup,
                Confidence::High,
                format!(
                    "the client offered groups [{}]; this server used only [{}] in {n} other session(s)",
                    groups.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", "),
                    p.groups.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    if ch.max_version() < Version::TLS12 && ch.max_version() >= Version::SSL3 {
        return (
            Reason::VersionMismatch,
            Confidence::Medium,
            format!(
                "the client offered only {}, which current servers refuse",
                list(&offered_versions)
            ),
        );
    }
    if tls13_only {
        let groups = if ch.supported_groups.is_empty() {
            &ch.key_share_groups
        } else {
            &ch.supported_groups
        };
        let mti_group = groups.iter().any(|g| g.0 == 23 || g.0 == 29);
        let mti_suite = suites.iter().any(|s| s.0 == 0x1301);
        return if !groups.is_empty() && !mti_group {
            (
                Reason::NoSharedGroup,
                Confidence::Medium,
                format!(
                    "the client offered only the groups [{}], neither x25519 nor secp256r1, which most servers require",
                    groups.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
        } else if !mti_suite {
            (
                Reason::NoSharedCipher,
                Confidence::Medium,
                format!(
                    "the client offered only [{}], without the mandatory TLS_AES_128_GCM_SHA256",
                    suites.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
        } else {
            (
                Reason::VersionMismatch,
                Confidence::Medium,
                "the client offered only TLS 1.3, with the mandatory suite and groups; a TLS 1.3 server would have accepted it, so this server most likely does not speak TLS 1.3".into(),
            )
        };
    }
    if !suites.is_empty() && suites.iter().all(|s| s.weakness().is_some()) {
        return (
            Reason::NoSharedCipher,
            Confidence::High,
            format!("the client offered only weak suites ({})", suites.len()),
        );
    }
    (
        Reason::NoSharedCipher,
        Confidence::Medium,
        format!(
            "the server refused the ClientHello ({} suites offered); most often no common cipher suite",
            suites.len()
        ),
    )
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// The evidence of a decided session: its key events in frame order, at most
/// [`MAX_EVIDENCE`] of them (the first and the last halves), and how many were left out.
///
/// Built only when a report shows it (not for every session the classifier judges): it is
/// words for people, and most of a capture's sessions are counted, never shown.
pub fn evidence(tcp: &TcpFacts, tls: &TlsFacts, v: &Verdict) -> (Vec<Evidence>, u32) {
    let mut ev: Vec<Evidence> = Vec::new();
    let mut push = |at: At, dir: Option<Direction>, what: String| {
        ev.push(Evidence {
            frame: at.frame,
            ts: at.ts,
            direction: dir,
            what,
        })
    };
    let syn0 = tcp.syns.first().copied();
    for (i, s) in tcp.syns.iter().enumerate() {
        let what = match (i, syn0) {
            (0, _) => "SYN".to_string(),
            (_, Some(s0)) => format!("SYN retransmission #{i} (+{})", secs(s.ts.nanos_since(s0.ts))),
            _ => "SYN".to_string(),
        };
        push(*s, Some(Direction::ToServer), what);
    }
    if tcp.syn_count as usize > tcp.syns.len() {
        push(
            tcp.syns.last().copied().unwrap_or(tcp.first),
            Some(Direction::ToServer),
            format!("{} SYNs in all", tcp.syn_count),
        );
    }
    if let Some(a) = tcp.syn_ack {
        push(a, Some(Direction::ToClient), "SYN-ACK".into());
    }
    if let Some(ch) = &tls.client_hello {
        let mut what = if ch.sslv2_format {
            "SSLv2-format ClientHello".to_string()
        } else {
            "ClientHello".to_string()
        };
        if let Some(n) = &ch.server_name {
            what.push_str(&format!(" SNI={n}"));
        }
        what.push_str(&format!(", offers {}", list(&ch.offered_versions())));
        what.push_str(&format!(", {} suites", ch.real_suites().count()));
        if !ch.supported_groups.is_empty() {
            what.push_str(&format!(
                ", groups [{}]",
                ch.supported_groups
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        if !ch.alpn.is_empty() {
            what.push_str(&format!(", ALPN [{}]", ch.alpn.join(",")));
        }
        push(ch.at, Some(Direction::ToServer), what);
    }
    if let Some(h) = &tls.hello_retry_request {
        push(
            h.at,
            Some(Direction::ToClient),
            format!(
                "HelloRetryRequest{}",
                h.group.map(|g| format!(" asks for {g}")).unwrap_or_default()
            ),
        );
    }
    if let Some(ch) = &tls.client_hello_retry {
        push(ch.at, Some(Direction::ToServer), "second ClientHello".into());
    }
    if let Some(sh) = &tls.server_hello {
        push(
            sh.at,
            Some(Direction::ToClient),
            format!(
                "ServerHello {}, {}{}",
                sh.version,
                sh.cipher_suite,
                sh.group.map(|g| format!(", {g}")).unwrap_or_default()
            ),
        );
    }
    if let Some(at) = tls.server_certificate {
        let now = at.ts.secs();
        let what = match tls.server_certificates.first() {
            Some(c) if c.parse_error.is_none() => {
                let state = if now > c.not_after {
                    format!(", EXPIRED {} days before this frame", (now - c.not_after) / 86_400)
                } else if now < c.not_before {
                    " , NOT YET VALID at this frame".to_string()
                } else {
                    String::new()
                };
                format!(
                    "Certificate ({} in chain): {} issued by {}, valid {} to {}{state}",
                    tls.server_certificate_count,
                    c.subject,
                    c.issuer,
                    secs_rfc3339(c.not_before),
                    secs_rfc3339(c.not_after)
                )
            }
            _ => format!("Certificate ({} in chain, not parsed)", tls.server_certificate_count),
        };
        push(at, Some(Direction::ToClient), what);
    }
    if let Some(at) = tls.certificate_request {
        push(
            at,
            Some(Direction::ToClient),
            "CertificateRequest (server asks for a client certificate)".into(),
        );
    }
    if let Some(at) = tls.server_hello_done {
        push(at, Some(Direction::ToClient), "ServerHelloDone".into());
    }
    if let Some((at, n)) = tls.client_certificate {
        push(
            at,
            Some(Direction::ToServer),
            if n == 0 {
                "client Certificate: EMPTY (no client certificate)".into()
            } else {
                format!("client Certificate ({n} in chain)")
            },
        );
    }
    for d in [Direction::ToServer, Direction::ToClient] {
        let i = d;
        if let Some(at) = tls.ccs[i] {
            push(at, Some(d), "ChangeCipherSpec".into());
        }
        if let Some(at) = tls.finished[i] {
            push(at, Some(d), "Finished (encrypted)".into());
        }
        if let Some(fb) = &tls.first_bytes[i] {
            push(
                fb.at,
                Some(d),
                format!("not TLS ({}): \"{}\"", fb.looks_like, short(&fb.shown, 60)),
            );
        }
    }
    if tls.is_tls13() {
        let p = &tls.tls13;
        if p.server_flight_records > 0 {
            if let Some(r) = tls.first_encrypted[Direction::ToClient].first() {
                push(
                    r.at,
                    Some(Direction::ToClient),
                    format!(
                        "server's encrypted flight: {} record(s), {} bytes",
                        p.server_flight_records, p.server_flight_bytes
                    ),
                );
            }
        }
        if let Some(c) = p.client_first {
            let kind = if alert_sized(c.len) {
                "alert-sized"
            } else {
                "Finished-sized or larger"
            };
            push(
                c.at,
                Some(Direction::ToServer),
                format!("client's first encrypted record: {} bytes ({kind})", c.len),
            );
        }
        if let Some(s) = p.server_after_client {
            let kind = if alert_sized(s.len) { "alert-sized" } else { "data" };
            push(
                s.at,
                Some(Direction::ToClient),
                format!("server's next encrypted record: {} bytes ({kind})", s.len),
            );
        }
    }
    for a in &tls.alerts {
        let what = match a.description {
            Some(d) => format!("Alert {} {d}", if a.level == Some(2) { "fatal" } else { "warning" }),
            None => format!("encrypted Alert ({} bytes)", a.record_len),
        };
        push(a.at, Some(a.direction), what);
    }
    for d in [Direction::ToServer, Direction::ToClient] {
        let i = d;
        if let Some(at) = tcp.dirs[i].fin {
            push(at, Some(d), "FIN".into());
        }
        if let Some(at) = tcp.dirs[i].rst {
            push(at, Some(d), "RST".into());
        }
    }
    super::keys::annotate(&mut ev, tls);
    ev.sort_by_key(|e| e.frame);
    let last = tcp.last;
    if tcp.end == EndKind::CaptureEnd || tcp.end == EndKind::HandshakeTimeout {
        let idle = v.judged_at.nanos_since(last.ts);
        if idle > 0 && !tls.handshake_complete() {
            ev.push(Evidence {
                frame: last.frame,
                ts: last.ts,
                direction: None,
                what: format!("last packet; silence for {} until the end of the capture", secs(idle)),
            });
        }
    }
    let mut truncated = 0;
    if ev.len() > MAX_EVIDENCE {
        truncated = (ev.len() - MAX_EVIDENCE) as u32;
        let tail = ev.split_off(ev.len() - MAX_EVIDENCE / 2);
        ev.truncate(MAX_EVIDENCE / 2);
        ev.extend(tail);
    }
    (ev, truncated)
}
