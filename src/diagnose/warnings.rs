//! Warnings on sessions that worked: problems worth fixing before they fail.

use super::Warning;
use crate::tls::TlsFacts;
use crate::tls::names::Version;

/// Days before expiry that trigger `cert_expiring_soon`.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Warnings for an established session, judged at `now_secs` (packet time).
pub fn warnings(tls: &TlsFacts, now_secs: i64) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut add = |id: &'static str, detail: String| out.push(Warning { id, detail });
    if let Some(sh) = &tls.server_hello {
        if sh.version < Version::TLS12 {
            add(
                "legacy_version",
                format!("negotiated {} (deprecated by RFC 8996)", sh.version),
            );
        }
        if sh.cipher_suite.forward_secret() == Some(false) {
            add(
                "no_forward_secrecy",
                format!("{} uses static RSA key exchange", sh.cipher_suite),
            );
        }
        if let Some(w) = sh.cipher_suite.weakness() {
            add("weak_cipher", format!("{} ({w})", sh.cipher_suite));
        }
    }
    if let Some(leaf) = tls.server_certificates.first().filter(|c| c.parse_error.is_none()) {
        let days_left = (leaf.not_after - now_secs).div_euclid(86_400);
        if now_secs > leaf.not_after {
            add(
                "cert_expired",
                format!(
                    "certificate expired {} days before the capture, yet the handshake completed",
                    -days_left
                ),
            );
        } else if now_secs < leaf.not_before {
            add(
                "cert_not_yet_valid",
                "certificate not yet valid at capture time, yet the handshake completed".into(),
            );
        } else if days_left < EXPIRY_WARNING_DAYS {
            add(
                "cert_expiring_soon",
                format!(
                    "certificate expires in {days_left} days ({})",
                    crate::tls::cert::secs_rfc3339(leaf.not_after)
                ),
            );
        }
        if let Some(name) = tls.sni() {
            if !leaf.covers(name) {
                add(
                    "sni_not_in_certificate",
                    format!("certificate does not cover {name} (it covers {})", leaf.covered_names()),
                );
            }
        }
        if leaf.key_type == "RSA" && leaf.key_bits > 0 && leaf.key_bits < 2048 {
            add("weak_rsa_key", format!("RSA key of {} bits", leaf.key_bits));
        }
        if leaf.self_signed {
            add("self_signed_certificate", format!("self-signed: {}", leaf.subject));
        }
    }
    let n = tls.server_certificates.len();
    if let Some(c) = tls
        .server_certificates
        .iter()
        .enumerate()
        .find(|(i, c)| c.weak_signature() && !(*i + 1 == n && c.self_signed && n > 1))
    {
        add(
            "sha1_signature",
            format!("{} signed with {}", c.1.subject, c.1.signature_algorithm),
        );
    }
    out
}
