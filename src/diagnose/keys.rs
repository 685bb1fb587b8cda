//! What the key log changed for a session, in the verdict's words: the evidence says which
//! messages were decrypted with the key log, and a session the key log had no keys for (in a run
//! that has a key log) says its verdict is inferred. Never a secret: only counts and names.

use super::{Evidence, Outcome, Reason, Verdict};
use crate::flow::{At, Direction};
use crate::tls::{ClientNext, TlsFacts};

/// Suffix of an evidence line whose message was read from a decrypted record.
pub const DECRYPTED: &str = " (decrypted with key log)";

/// The decrypted messages' evidence: lines naming an already listed message (certificates,
/// alerts, Finished) get [`DECRYPTED`]; the others (EncryptedExtensions, CertificateVerify, …)
/// are added; one line says what the key log gave.
pub fn annotate(ev: &mut Vec<Evidence>, tls: &TlsFacts) {
    let Some(k) = tls.keys.as_deref() else { return };
    for &(dir, name, at) in &k.messages {
        let listed = ev.iter_mut().find(|e| {
            e.frame == at.frame
                && e.direction == Some(dir)
                && !e.what.ends_with(DECRYPTED)
                && match name {
                    "Certificate" => e.what.starts_with("Certificate") || e.what.starts_with("client Certificate"),
                    "Alert" => e.what.starts_with("Alert"),
                    _ => e.what.starts_with(name),
                }
        });
        match listed {
            Some(e) => {
                if let Some(s) = e.what.strip_suffix(" (encrypted)") {
                    e.what = s.to_string();
                }
                e.what.push_str(DECRYPTED);
            }
            None => ev.push(line(at, Some(dir), format!("{name}{DECRYPTED}"))),
        }
    }
    let at = tls.server_hello.as_ref().map(|s| s.at);
    let Some(at) = at else { return };
    let failed = k.failed.iter().sum::<u32>();
    let what = if !k.found {
        "key log: no keys for this session's client random; its encrypted records were not read".to_string()
    } else if !k.usable {
        "key log: keys found, but not for this session's version or cipher suite".to_string()
    } else {
        let mut s = format!(
            "key log: {} client and {} server record(s) decrypted",
            k.opened[Direction::ToServer],
            k.opened[Direction::ToClient]
        );
        if failed > 0 {
            s.push_str(&format!(
                ", {failed} did not open (wrong keys or damaged bytes): what follows them is inferred"
            ));
        }
        s
    };
    ev.push(line(at, None, what));
}

fn line(at: At, direction: Option<Direction>, what: String) -> Evidence {
    Evidence::new(at, direction, what)
}

/// The summary says when a failed or incomplete verdict rests on decrypted messages, or was
/// inferred because the key log had no keys for the session.
pub fn note_summary(tls: &TlsFacts, v: &mut Verdict) {
    let Some(k) = tls.keys.as_deref() else { return };
    if v.outcome == Outcome::Established || v.summary.is_empty() {
        return;
    }
    let failed: u32 = k.failed.iter().sum();
    if k.any_read() {
        v.summary
            .push_str(" Read from the handshake decrypted with the key log");
        if failed > 0 {
            v.summary.push_str(&format!(
                " ({failed} record(s) did not open: damaged, as the peer's answer shows, or not for these keys)"
            ));
        }
        v.summary.push('.');
    } else if !k.found && tls.server_hello.is_some() {
        v.summary
            .push_str(" The key log has no keys for this session: inferred from what is visible without them.");
    } else if failed > 0 {
        v.summary
            .push_str(" Its records did not open with the key log's keys: inferred from what is visible without them.");
    }
}

/// How soon after its Finished a client's close counts as leaving at once.
const AT_ONCE_NS: i64 = 2_000_000_000;

/// A completed handshake the client left at once: with keys, its first record after its
/// Finished is an alert (close_notify), not a request, and the server's certificate does not
/// cover the name the client asked for. Clients that check the name only after the handshake
/// (curl with OpenSSL) end this way on a name mismatch. Returns the verdict's summary.
pub fn name_refused_after_handshake(tls: &TlsFacts, server: &dyn std::fmt::Display) -> Option<String> {
    let Some(ClientNext::Alert(desc, at)) = tls.keys.as_deref()?.client_next else {
        return None;
    };
    // At once: a connection kept open and closed later (a pool, an idle keep-alive) is not a
    // refusal of the name.
    let finished = tls.finished[crate::flow::Direction::ToServer]?;
    if at.ts.nanos_since(finished.ts) > AT_ONCE_NS {
        return None;
    }
    let sni = tls.sni()?;
    let leaf = tls.server_certificates.first()?;
    if !tls.sni_not_covered() {
        return None;
    }
    Some(format!(
        "The client rejected {server}'s certificate: it covers {} but the client asked for {sni}; the handshake completed and the client's first record after it is a {desc} alert (frame {}, decrypted with the key log), not a request: it checked the name after the handshake (as curl does) and gave up.",
        leaf.covered_names(),
        at.frame
    ))
}

/// A completed handshake whose server asked for a client certificate and then refused the first
/// request with a page that says why: servers that check the certificate only after the
/// handshake (nginx's `ssl_verify_client on`: HTTP 400 with "No required SSL certificate was
/// sent" or "The SSL certificate error") refuse this way instead of with an alert. With keys
/// only: read off the server's first decrypted response. A bare error status says nothing about
/// the certificate (an application's own 400 or 403 under an optional client certificate), so it
/// changes no verdict. Returns the verdict's summary.
pub fn certificate_refused_after_handshake(tls: &TlsFacts, server: &dyn std::fmt::Display) -> Option<(Reason, String)> {
    use crate::tls::http_status::CertRefusal;
    let answer = tls.keys.as_deref()?.server_answer?;
    let asked = tls.certificate_request?;
    let (sent, n) = tls.client_certificate?;
    let (reason, what) = match answer.refusal? {
        CertRefusal::Missing => (
            Reason::ClientCertificateMissing,
            format!(
                "requires a client certificate and the client sent none: the server asked for one (CertificateRequest, frame {}), the client's Certificate was empty (frame {})",
                asked.frame, sent.frame
            ),
        ),
        CertRefusal::Rejected => (
            Reason::ClientCertificateRejected,
            format!(
                "rejected the client's certificate: the server asked for one (CertificateRequest, frame {}), the client sent {n} certificate(s) (frame {})",
                asked.frame, sent.frame
            ),
        ),
    };
    let status = answer
        .status
        .map(|s| format!(" HTTP status {s} and"))
        .unwrap_or_default();
    Some((
        reason,
        format!(
            "{server} {what}; after the handshake completed the server refused the first request with{status} an error page that says so (frame {}, decrypted with the key log): it checks the certificate after the handshake, as nginx does.",
            answer.at.frame
        ),
    ))
}
