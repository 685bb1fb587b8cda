//! Cipher reasons read from the ClientHello: a server that answers a ClientHello at once with
//! handshake_failure says nothing more, so the mismatch is found by comparing what the client
//! offered (versions, suites, groups, signature algorithms) with what the same server negotiated
//! in other sessions of the capture ([`super::ServerProfile`]) and with what any server can use
//! (RFC 8446 §9.1: TLS_AES_128_GCM_SHA256, secp256r1, rsa_pss_rsae_sha256/ecdsa_secp256r1_sha256).
//!
//! Order of evidence: no version in common (never when the client offered a version this server
//! negotiated elsewhere), then suites, groups and signature algorithms, each decided first from
//! the server's own sessions (stronger), then from what every server needs (weaker).

use super::classify::list;
use super::{Confidence, Context, Reason, ServerProfile};
use crate::tls::TlsFacts;
use crate::tls::hello::ClientHello;
use crate::tls::names::{CipherSuite, Group, Version};

/// TLS 1.3 cipher suites (RFC 8446 and RFC 9150 are in 0x13xx).
fn is13(s: &CipherSuite) -> bool {
    (0x1301..=0x13ff).contains(&s.0)
}

/// Signature schemes a certificate of `key` can sign the handshake with (RFC 8446 §4.2.3; in
/// TLS 1.2 also PKCS#1 v1.5 and SHA-1 schemes, RFC 5246 §7.4.1.4.1).
fn schemes_for(key: &str, tls12: bool) -> &'static [u16] {
    match (key, tls12) {
        ("RSA", false) => &[0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b],
        ("RSA", true) => &[
            0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b, 0x0401, 0x0501, 0x0601, 0x0201,
        ],
        ("EC", false) => &[0x0403, 0x0503, 0x0603],
        ("EC", true) => &[0x0403, 0x0503, 0x0603, 0x0203],
        _ => &[],
    }
}

/// Schemes some common server certificate can use: RSA-PSS, ECDSA and EdDSA, and for TLS 1.2
/// also RSA PKCS#1 v1.5.
fn usable_by_any(scheme: u16, tls12: bool) -> bool {
    matches!(scheme, 0x0804..=0x080b | 0x0403 | 0x0503 | 0x0603)
        || (tls12 && matches!(scheme, 0x0401 | 0x0501 | 0x0601 | 0x0201 | 0x0203))
}

fn groups_of(ch: &ClientHello) -> &[Group] {
    if ch.supported_groups.is_empty() {
        &ch.key_share_groups
    } else {
        &ch.supported_groups
    }
}

fn join<T: std::fmt::Display>(it: impl IntoIterator<Item = T>) -> String {
    it.into_iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

fn scheme_list(s: &[u16]) -> String {
    join(s.iter().map(|v| format!("0x{v:04x}")))
}

/// handshake_failure from the server right after the ClientHello: which mismatch?
pub(super) fn cipher_reason(tls: &TlsFacts, ctx: &Context<'_>) -> (Reason, Confidence, String) {
    let Some(ch) = tls.client_hello.as_ref() else {
        return (
            Reason::NoSharedCipher,
            Confidence::Low,
            "the server refused the ClientHello".into(),
        );
    };
    let offered = ch.offered_versions();
    let profile = ctx.profile.filter(|p| p.established > 0);
    // A version the client offered that this server negotiated elsewhere: the versions match.
    let version_shared = profile.is_some_and(|p| offered.iter().any(|v| p.versions.contains(v)));
    if let Some(p) = profile {
        let min_accepted = p.versions.iter().copied().min();
        if !version_shared && ch.max_version() < Version::TLS12 && min_accepted.is_some_and(|m| m > ch.max_version()) {
            return (
                Reason::VersionMismatch,
                Confidence::High,
                format!(
                    "the client offered only {}; this server negotiated {} in {} other session(s)",
                    list(&offered),
                    join(p.versions.iter()),
                    p.established
                ),
            );
        }
        if let Some(found) = from_profile(ch, p, version_shared) {
            return found;
        }
    }
    if !version_shared && ch.max_version() < Version::TLS12 && ch.max_version() >= Version::SSL3 {
        return (
            Reason::VersionMismatch,
            Confidence::Medium,
            format!(
                "the client offered only {}, which current servers refuse",
                list(&offered)
            ),
        );
    }
    if let Some(found) = from_any_server(ch) {
        return found;
    }
    let suites: Vec<CipherSuite> = ch.real_suites().collect();
    let tls13_only = !offered.is_empty() && offered.iter().all(|v| v.is_tls13());
    if tls13_only && !version_shared {
        if let [g] = groups_of(ch) {
            // A client narrowed to one group: a server without it refuses with
            // handshake_failure, and TLS 1.3 servers are the rule now.
            return (
                Reason::NoSharedGroup,
                Confidence::Medium,
                format!(
                    "the client offered TLS 1.3 with the single group {g}; this server most likely does not accept it (or does not speak TLS 1.3)"
                ),
            );
        }
        return (
            Reason::VersionMismatch,
            Confidence::Medium,
            "the client offered only TLS 1.3, with the mandatory suite, group and signature algorithms; a TLS 1.3 server would have accepted it, so this server most likely does not speak TLS 1.3".into(),
        );
    }
    // At most TLS 1.2, with the ECDHE AES-GCM suites (RSA and ECDSA), a group every TLS 1.2
    // server accepts and a name: what is left is a server that wants TLS 1.3 (Mozilla's "modern"
    // profile). Without a name, a CDN refusing the nameless hello is likelier.
    let max12 =
        !offered.is_empty() && offered.iter().all(|v| *v <= Version::TLS12) && offered.contains(&Version::TLS12);
    let mainstream = [0xc02b, 0xc02f].iter().all(|m| suites.iter().any(|s| s.0 == *m))
        && groups_of(ch).iter().any(|g| g.0 == 23 || g.0 == 29);
    if max12 && mainstream && ch.server_name.is_some() && !version_shared {
        return (
            Reason::VersionMismatch,
            Confidence::Medium,
            format!(
                "the client offered at most TLS 1.2 with the suites and groups every TLS 1.2 server accepts ({} suites); this server most likely requires TLS 1.3",
                suites.len()
            ),
        );
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
        if version_shared {
            Confidence::Low
        } else {
            Confidence::Medium
        },
        format!(
            "the server refused the ClientHello ({} suites offered){}; most often no common cipher suite",
            suites.len(),
            if version_shared {
                ", although it negotiated a version the client offered in other sessions"
            } else {
                ""
            }
        ),
    )
}

/// The mismatch read from what this server negotiated in its established sessions.
fn from_profile(ch: &ClientHello, p: &ServerProfile, version_shared: bool) -> Option<(Reason, Confidence, String)> {
    let n = p.established;
    let offered = ch.offered_versions();
    let suites: Vec<CipherSuite> = ch.real_suites().collect();
    let offers13 = offered.iter().any(|v| v.is_tls13());
    let offers12 = offered.iter().any(|v| !v.is_tls13());
    // Suites, per family (TLS 1.3 suites never match TLS 1.2 ones), over the versions both use.
    let known13: Vec<_> = p.suites.iter().filter(|s| is13(s)).collect();
    let known12: Vec<_> = p.suites.iter().filter(|s| !is13(s)).collect();
    let offered13: Vec<_> = suites.iter().filter(|s| is13(s)).collect();
    let offered12: Vec<_> = suites.iter().filter(|s| !is13(s)).collect();
    let fam13 = offers13 && !known13.is_empty();
    let fam12 = offers12 && !known12.is_empty() && !offered12.is_empty();
    let shared13 = offered13.iter().any(|s| known13.contains(s));
    let shared12 = offered12.iter().any(|s| known12.contains(s));
    if (fam13 || fam12) && !(fam13 && shared13) && !(fam12 && shared12) {
        let (o, k) = if fam13 {
            (offered13.len(), known13.len())
        } else {
            (offered12.len(), known12.len())
        };
        return Some((
            Reason::NoSharedCipher,
            Confidence::Medium,
            format!(
                "none of the client's {o} {} suites is among the {k} this server accepted in {n} other session(s)",
                if fam13 { "TLS 1.3" } else { "TLS 1.2" }
            ),
        ));
    }
    let groups = groups_of(ch);
    if !p.groups.is_empty() && !groups.is_empty() && !groups.iter().any(|g| p.groups.contains(g)) {
        return Some((
            Reason::NoSharedGroup,
            Confidence::High,
            format!(
                "the client offered groups [{}]; this server used only [{}] in {n} other session(s)",
                join(groups.iter()),
                join(p.groups.iter())
            ),
        ));
    }
    if ch.signature_algorithms.is_empty() {
        return None;
    }
    // The server's key type, when a session showed its certificate: its schemes.
    let tls12 = !(offers13 && p.versions.iter().any(|v| v.is_tls13()));
    let by_key: Vec<u16> = p
        .key_types
        .iter()
        .flat_map(|k| schemes_for(k, tls12).iter().copied())
        .collect();
    if !by_key.is_empty() && !ch.signature_algorithms.iter().any(|s| by_key.contains(s)) {
        return Some((
            Reason::NoSharedSignatureAlgorithm,
            Confidence::High,
            format!(
                "the client offered signature algorithms [{}]; this server's {} certificate (seen in other sessions) needs one of [{}]",
                scheme_list(&ch.signature_algorithms),
                join(p.key_types.iter()),
                scheme_list(&by_key)
            ),
        ));
    }
    // Every client that got through offered at least one of these: the server signs with one.
    if let Some(common) = p.sigalgs_common.as_ref().filter(|c| !c.is_empty()) {
        let sig = &ch.signature_algorithms;
        if !sig.iter().any(|s| common.contains(s)) {
            return Some((
                Reason::NoSharedSignatureAlgorithm,
                Confidence::Medium,
                format!(
                    "the client offered signature algorithms [{}], none of [{}] that every client offered in this server's {n} established session(s)",
                    scheme_list(&ch.signature_algorithms),
                    scheme_list(&common.iter().copied().collect::<Vec<_>>())
                ),
            ));
        }
        // By elimination: version, a suite and a group this server negotiated were all offered,
        // so what sets this client apart is the signature algorithms it left out.
        let group_shared = p.groups.is_empty() || groups.iter().any(|g| p.groups.contains(g));
        let suite_shared = (fam13 && shared13) || (fam12 && shared12);
        let missing: Vec<u16> = common.iter().copied().filter(|s| !sig.contains(s)).collect();
        if version_shared && suite_shared && group_shared && !missing.is_empty() {
            return Some((
                Reason::NoSharedSignatureAlgorithm,
                Confidence::Medium,
                format!(
                    "the client offered a version, a suite and a group this server negotiated in {n} other session(s), but left out the signature algorithms [{}] that every accepted client offered (it offered [{}])",
                    scheme_list(&missing),
                    scheme_list(sig)
                ),
            ));
        }
    }
    None
}

/// The mismatch read from what any server needs (no session of this server to compare with).
fn from_any_server(ch: &ClientHello) -> Option<(Reason, Confidence, String)> {
    let offered = ch.offered_versions();
    let tls13_only = !offered.is_empty() && offered.iter().all(|v| v.is_tls13());
    let suites: Vec<CipherSuite> = ch.real_suites().collect();
    let groups = groups_of(ch);
    if tls13_only && !groups.is_empty() && !groups.iter().any(|g| g.0 == 23 || g.0 == 29) {
        return Some((
            Reason::NoSharedGroup,
            Confidence::Medium,
            format!(
                "the client offered only the groups [{}], neither x25519 nor secp256r1, which most servers require",
                join(groups.iter())
            ),
        ));
    }
    if tls13_only && !suites.iter().any(|s| s.0 == 0x1301) {
        return Some((
            Reason::NoSharedCipher,
            Confidence::Medium,
            format!(
                "the client offered only [{}], without the mandatory TLS_AES_128_GCM_SHA256",
                join(suites.iter())
            ),
        ));
    }
    let sig = &ch.signature_algorithms;
    if !sig.is_empty() && !sig.iter().any(|s| usable_by_any(*s, !tls13_only)) {
        return Some((
            Reason::NoSharedSignatureAlgorithm,
            Confidence::Medium,
            format!(
                "the client offered only the signature algorithms [{}], none of which a server certificate (RSA, ECDSA, EdDSA) can use in {}",
                scheme_list(sig),
                if tls13_only {
                    "a TLS 1.3 handshake (PKCS#1 v1.5 and SHA-1 schemes are not allowed there)"
                } else {
                    "the handshake"
                }
            ),
        ));
    }
    if tls13_only && !sig.is_empty() && !sig.iter().any(|s| matches!(s, 0x0804 | 0x0403)) {
        return Some((
            Reason::NoSharedSignatureAlgorithm,
            Confidence::Low,
            format!(
                "the client offered signature algorithms [{}], without the mandatory rsa_pss_rsae_sha256 and ecdsa_secp256r1_sha256",
                scheme_list(sig)
            ),
        ));
    }
    None
}
