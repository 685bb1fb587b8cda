//! Borrowed certificates: a TLS 1.3 client that rejects the server after its encrypted flight
//! leaves the certificate unreadable without keys, but the same server (IP, port and SNI) often
//! shows it elsewhere in the capture: a TLS 1.2 session, or an earlier or later one. The
//! certificate seen there is checked like the session's own; a problem found turns
//! `rejected_by_client` into the specific reason, at medium confidence, with evidence naming
//! where the certificate was seen. Sessions are decided at the end, as with server profiles.

use super::{Confidence, Context, Evidence, Reason, Verdict};
use crate::capture::Timestamp;
use crate::flow::{At, Direction, Endpoint, TcpFacts};
use crate::tls::TlsFacts;
use crate::tls::cert::{CertInfo, secs_rfc3339};
use std::sync::Arc;

/// Certificates remembered per server (one per server name).
const MAX_CERTS_PER_SERVER: usize = 8;

/// A certificate chain a server presented in the clear.
#[derive(Clone, Debug)]
pub struct SeenCertificate {
    /// The name the client asked for (SNI).
    pub sni: Option<String>,
    pub chain: Vec<Arc<CertInfo>>,
    /// The frame of the Certificate message.
    pub at: At,
    /// The session it was seen in: its client and first frame.
    pub client: Endpoint,
    pub first_frame: u64,
}

/// Remembers the certificate a session shows in the clear (the first one per name).
pub(super) fn remember(list: &mut Vec<SeenCertificate>, tcp: &TcpFacts, tls: &TlsFacts) {
    let (Some(at), Some(leaf)) = (tls.server_certificate, tls.server_certificates.first()) else {
        return;
    };
    if leaf.parse_error.is_some() || list.len() >= MAX_CERTS_PER_SERVER {
        return;
    }
    let sni = tls.client_hello.as_ref().and_then(|c| c.server_name.clone());
    if list.iter().any(|c| c.sni == sni) {
        return;
    }
    list.push(SeenCertificate {
        sni,
        chain: tls.server_certificates.clone(),
        at,
        client: tcp.client,
        first_frame: tcp.first.frame,
    });
}

/// Adds another worker's certificates.
pub(super) fn merge(list: &mut Vec<SeenCertificate>, other: Vec<SeenCertificate>) {
    for c in other {
        if list.len() < MAX_CERTS_PER_SERVER && !list.iter().any(|m| m.sni == c.sni) {
            list.push(c);
        }
    }
}

/// A TLS 1.3 `rejected_by_client` whose certificate was encrypted: the reason the same server's
/// certificate, seen in another session, explains.
pub(super) fn apply(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    if v.warnings.iter().any(|w| w.id == "closed_without_data") {
        return name_warning(tcp, tls, ctx, v);
    }
    let Some(f) = v.failure.as_mut() else { return };
    if f.reason != Reason::RejectedByClient || !tls.server_certificates.is_empty() {
        return;
    }
    let sni = tls.client_hello.as_ref().and_then(|c| c.server_name.as_deref());
    let Some(seen) = seen_elsewhere(tcp, sni, ctx) else {
        return;
    };
    let now = tls.server_hello.as_ref().map(|s| s.at.ts).unwrap_or(tcp.first.ts);
    let Some((reason, detail)) = cert_problem(&seen.chain, sni, now) else {
        return;
    };
    f.reason = reason;
    f.confidence = f.confidence.min(Confidence::Medium);
    v.confidence = f.confidence;
    let server = tcp.server;
    let (client, frame) = (seen.client, seen.at.frame);
    v.summary = format!(
        "The client rejected {server}'s certificate after its encrypted TLS 1.3 flight; the certificate this server presented{} in the session from {client} (frame {frame}) shows why: {detail}.",
        sni.map(|n| format!(" for {n}")).unwrap_or_default()
    );
    v.borrowed = Some(Evidence::new(
        seen.at,
        Some(Direction::ToClient),
        format!(
            "Certificate of the same server{} seen in another session ({client} → {server}, from frame {}): {} issued by {}, valid {} to {}",
            sni.map(|n| format!(" and name {n}")).unwrap_or_default(),
            seen.first_frame,
            seen.chain.first().map(|c| c.subject.as_str()).unwrap_or(""),
            seen.chain.first().map(|c| c.issuer.as_str()).unwrap_or(""),
            seen.chain
                .first()
                .map(|c| secs_rfc3339(c.not_before))
                .unwrap_or_default(),
            seen.chain
                .first()
                .map(|c| secs_rfc3339(c.not_after))
                .unwrap_or_default(),
        ),
    ));
}

/// The certificate seen in another session of the same server for the same name.
fn seen_elsewhere<'a>(tcp: &TcpFacts, sni: Option<&str>, ctx: &Context<'a>) -> Option<&'a SeenCertificate> {
    ctx.profile.and_then(|p| {
        p.certificates
            .iter()
            .find(|c| c.sni.as_deref() == sni && c.first_frame != tcp.first.frame)
    })
}

/// A TLS 1.3 client that closed right after the handshake without a request
/// (`closed_without_data`) may have refused the certificate's name: when the certificate the
/// same server showed elsewhere does not cover the name, say so as TLS 1.2 would
/// (`sni_not_in_certificate`).
fn name_warning(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    v.uses_profile = true;
    if !tls.server_certificates.is_empty() || v.warnings.iter().any(|w| w.id == "sni_not_in_certificate") {
        return;
    }
    let Some(name) = tls.client_hello.as_ref().and_then(|c| c.server_name.as_deref()) else {
        return;
    };
    let Some(seen) = seen_elsewhere(tcp, Some(name), ctx) else {
        return;
    };
    let Some(leaf) = seen
        .chain
        .first()
        .filter(|c| c.parse_error.is_none() && !c.covers(name))
    else {
        return;
    };
    v.warnings.push(super::Warning {
        id: "sni_not_in_certificate",
        detail: format!(
            "certificate does not cover {name} (SAN: {}), as seen in this server's session from {} (frame {}); this session's certificate is encrypted",
            leaf.san_dns.join(", "),
            seen.client,
            seen.at.frame
        ),
    });
}

/// A server certificate chain's problem, judged at `now` for the name `sni` from the
/// certificates alone.
pub(super) fn cert_problem(chain: &[Arc<CertInfo>], sni: Option<&str>, now: Timestamp) -> Option<(Reason, String)> {
    let leaf = chain.first().filter(|c| c.parse_error.is_none())?;
    let now_s = now.secs();
    let chain_len = chain.len();
    for (i, c) in chain.iter().enumerate() {
        if c.parse_error.is_some() || (i > 0 && i + 1 == chain_len && c.self_signed) {
            continue;
        }
        if now_s > c.not_after {
            return Some((
                Reason::Expired,
                format!(
                    "{} expired on {} ({} days before the capture)",
                    c.subject,
                    secs_rfc3339(c.not_after),
                    (now_s - c.not_after) / 86_400
                ),
            ));
        }
        if now_s < c.not_before {
            return Some((
                Reason::NotYetValid,
                format!(
                    "{} is valid only from {} ({} days after the capture)",
                    c.subject,
                    secs_rfc3339(c.not_before),
                    (c.not_before - now_s) / 86_400 + 1
                ),
            ));
        }
    }
    if let Some(name) = sni {
        if !leaf.covers(name) {
            return Some((
                Reason::HostnameMismatch,
                format!(
                    "the certificate covers {} but the client asked for {name}",
                    leaf.covered_names()
                ),
            ));
        }
    }
    if leaf.self_signed && chain_len == 1 {
        return Some((Reason::SelfSigned, format!("{} is self-signed", leaf.subject)));
    }
    None
}
