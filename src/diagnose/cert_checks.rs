//! The server certificate's own problems (dates, name, self-signed), judged from the chain the
//! session showed: in clear (TLS <= 1.2) or decrypted with a key log (TLS 1.3).

use super::Reason;
use crate::capture::Timestamp;
use crate::tls::TlsFacts;
use crate::tls::cert::secs_rfc3339;

/// The server certificate's problem, judged at `now` from the certificate alone.
pub(super) fn cert_problem(tls: &TlsFacts, now: Timestamp) -> Option<(Reason, String)> {
    let leaf = tls.server_certificates.first().filter(|c| c.parse_error.is_none())?;
    let now_s = now.secs();
    let chain_len = tls.server_certificates.len();
    for (i, c) in tls.server_certificates.iter().enumerate() {
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
    if let Some(name) = tls.client_hello.as_ref().and_then(|c| c.server_name.as_deref()) {
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
