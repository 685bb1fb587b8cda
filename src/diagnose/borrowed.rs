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
use std::net::IpAddr;
use std::sync::Arc;

/// Certificates remembered per server (one per server name and leaf certificate).
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
    /// The server showed another certificate for this name that the list no longer holds (it
    /// is bounded): the name lends none.
    pub several: bool,
}

/// Remembers the certificate a session shows in the clear: one entry per name and leaf
/// certificate, from the session with the lowest first frame that showed it. What is kept is
/// the same whatever order sessions are decided in and however they are split between threads
/// (see [`merge`]).
pub(super) fn remember(list: &mut Vec<SeenCertificate>, tcp: &TcpFacts, tls: &TlsFacts) {
    let (Some(at), Some(leaf)) = (tls.server_certificate, tls.server_certificates.first()) else {
        return;
    };
    if leaf.parse_error.is_some() {
        return;
    }
    let sni = tls.sni();
    let first_frame = tcp.first.frame;
    // Most sessions show a certificate already credited to an earlier one: nothing to build.
    if list
        .iter()
        .any(|c| same(c, sni, &leaf.sha256) && c.first_frame <= first_frame)
    {
        return;
    }
    add(
        list,
        SeenCertificate {
            sni: sni.map(String::from),
            chain: tls.server_certificates.clone(),
            at,
            client: tcp.client,
            first_frame,
            several: false,
        },
    );
}

/// Adds another worker's certificates (the same rule as [`remember`]).
pub(super) fn merge(list: &mut Vec<SeenCertificate>, other: Vec<SeenCertificate>) {
    for c in other {
        add(list, c);
    }
}

fn same(c: &SeenCertificate, sni: Option<&str>, sha256: &str) -> bool {
    c.sni.as_deref() == sni && c.chain.first().is_some_and(|l| l.sha256 == sha256)
}

/// Puts `new` in the list: in place of the entry for the same name and leaf if it was seen
/// earlier, else in a free place, else in place of the entry seen last (or not at all if that
/// is `new`). An entry that goes leaves its name marked [`SeenCertificate::several`] on the
/// entries still there.
fn add(list: &mut Vec<SeenCertificate>, new: SeenCertificate) {
    let sha256 = new.chain.first().map(|l| l.sha256.clone()).unwrap_or_default();
    if let Some(old) = list.iter_mut().find(|c| same(c, new.sni.as_deref(), &sha256)) {
        let several = old.several || new.several;
        if new.first_frame < old.first_frame {
            *old = new;
        }
        old.several = several;
        return;
    }
    if list.len() < MAX_CERTS_PER_SERVER {
        list.push(new);
        return;
    }
    let last = list
        .iter_mut()
        .max_by_key(|c| c.first_frame)
        .filter(|c| c.first_frame > new.first_frame);
    let gone = match last {
        Some(slot) => std::mem::replace(slot, new),
        None => new,
    };
    for c in list.iter_mut().filter(|c| c.sni == gone.sni) {
        c.several = true;
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
    let sni = tls.sni();
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

/// The certificate seen in another session of the same server for the same name, if the server
/// showed only one for that name: a server that showed several (certificates rotated, or
/// backends with different ones) leaves unknown which one this session got.
fn seen_elsewhere<'a>(tcp: &TcpFacts, sni: Option<&str>, ctx: &Context<'a>) -> Option<&'a SeenCertificate> {
    only_one(&ctx.profile?.certificates, sni, tcp.first.frame)
}

/// The one certificate of `list` for `sni` seen in a session other than `own_frame`'s (and the
/// only one the server showed for it: not [`SeenCertificate::several`]).
fn only_one<'a>(list: &'a [SeenCertificate], sni: Option<&str>, own_frame: u64) -> Option<&'a SeenCertificate> {
    let mut seen = list
        .iter()
        .filter(|c| c.sni.as_deref() == sni && c.first_frame != own_frame);
    let one = seen.next()?;
    (seen.next().is_none() && !one.several).then_some(one)
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
    let Some(name) = tls.sni() else {
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
            "certificate does not cover {name} (it covers {}), as seen in this server's session from {} (frame {}); this session's certificate is encrypted",
            leaf.covered_names(),
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
    let dates = |c: &CertInfo| {
        if now_s > c.not_after {
            Some((
                Reason::Expired,
                format!(
                    "{} expired on {} ({} days before the capture)",
                    c.subject,
                    secs_rfc3339(c.not_after),
                    (now_s - c.not_after) / 86_400
                ),
            ))
        } else if now_s < c.not_before {
            Some((
                Reason::NotYetValid,
                format!(
                    "{} is valid only from {} ({} days after the capture)",
                    c.subject,
                    secs_rfc3339(c.not_before),
                    (c.not_before - now_s) / 86_400 + 1
                ),
            ))
        } else {
            None
        }
    };
    if let Some(found) = dates(leaf) {
        return Some(found);
    }
    // The leaf's name before the dates of the certificates above it: every client checks the
    // name, while a path builder may go around an expired certificate the server still sends
    // (a cross-signed root past its date, as Let's Encrypt's chain carried in 2021).
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
    for (i, c) in chain.iter().enumerate().skip(1) {
        if c.parse_error.is_some() || (i + 1 == chain_len && c.self_signed) {
            continue;
        }
        if let Some(found) = dates(c) {
            return Some(found);
        }
    }
    if leaf.self_signed && chain_len == 1 {
        return Some((Reason::SelfSigned, format!("{} is self-signed", leaf.subject)));
    }
    None
}

/// A client that sent no server name most likely connected to an IP address (clients send none
/// for an address, RFC 6066 §3) and checked that address against the certificate: the words
/// when the leaf does not cover the server's address; `None` when it does (or no leaf reads).
pub(super) fn address_not_covered(chain: &[Arc<CertInfo>], server: IpAddr) -> Option<String> {
    let leaf = chain.first().filter(|c| c.parse_error.is_none())?;
    let ip = server.to_canonical().to_string();
    (!leaf.covers(&ip)).then(|| {
        format!(
            "the client sent no server name, as clients connecting to an IP address do, and the certificate covers {} but not the server's address {ip}",
            leaf.covered_names()
        )
    })
}

/// A client's refusal that names no fault (a bad_certificate alert: GnuTLS; certificate_unknown:
/// BoringSSL, Java; no alert at all) of a chain [`cert_problem`] finds nothing wrong with (dates,
/// name, self-signature): what is left is most often an issuer it does not trust (unknown_ca); a
/// weak key or a SHA-1 signature (refused as insecure) keeps the plain bad_certificate. `said`:
/// what the client said, in the words "the client (which `said`)".
pub(super) fn bad_certificate_why(chain: &[Arc<CertInfo>], said: &str) -> (Reason, String) {
    let n = chain.len();
    // What current clients refuse by policy: an RSA key under 2048 bits, a SHA-1 or MD5
    // signature (a root's own signature is not checked).
    let weakness = chain.iter().enumerate().find_map(|(i, c)| {
        let root = i > 0 && i + 1 == n && c.self_signed;
        if c.key_type == "RSA" && c.key_bits > 0 && c.key_bits < 2048 {
            Some(format!("{} has an RSA key of {} bits", c.subject, c.key_bits))
        } else if !root && c.weak_signature() {
            Some(format!("{} is signed with {}", c.subject, c.signature_algorithm))
        } else {
            None
        }
    });
    match chain.first() {
        // Only a subject CN names the host: current clients (browsers, Go, Node.js) look for
        // the name in the subjectAltName alone, so they find none.
        Some(leaf) if leaf.parse_error.is_none() && leaf.san_dns.is_empty() && leaf.san_ip.is_empty() => (
            Reason::HostnameMismatch,
            format!(
                "it names its host only in its subject CN ({}), with no subjectAltName, which current clients do not read; the client (which {said}) most likely found no name for the host it asked for",
                leaf.subject
            ),
        ),
        Some(leaf) if weakness.is_none() && leaf.parse_error.is_none() => (
            Reason::UnknownCa,
            format!(
                "its dates and names are right and it is not self-signed, so the client (which {said}) most likely does not trust its CA: {}",
                super::chain::untrusted_issuer(chain).unwrap_or_else(|| leaf.issuer.clone())
            ),
        ),
        _ => (
            Reason::BadCertificate,
            match weakness {
                Some(w) => format!("most likely because {w}, which clients at current security levels refuse"),
                None => "the client found the certificate bad".to_string(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
    use super::*;

    /// A real certificate from the samples' PKI, parsed as a capture's would be.
    fn cert(name: &str) -> Arc<CertInfo> {
        let path = format!("{}/samples/certs/{name}.pem", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read(path).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        Arc::new(CertInfo::from_der(&pem.contents))
    }

    fn seen(sni: &str, leaf: &Arc<CertInfo>, first_frame: u64) -> SeenCertificate {
        SeenCertificate {
            sni: Some(sni.into()),
            chain: vec![leaf.clone()],
            at: At::default(),
            client: Endpoint {
                ip: std::net::Ipv4Addr::new(10, 0, 0, 1).into(),
                port: 40_000,
            },
            first_frame,
            several: false,
        }
    }

    fn key(list: &[SeenCertificate]) -> Vec<(Option<String>, String, u64)> {
        let mut k: Vec<_> = list
            .iter()
            .map(|c| (c.sni.clone(), c.chain[0].sha256.clone(), c.first_frame))
            .collect();
        k.sort();
        k
    }

    /// A bad_certificate alert for a clean chain reads as an untrusted issuer; for a weak key or
    /// a SHA-1 signature (what GnuTLS refuses as insecure) it stays bad_certificate.
    #[test]
    fn bad_certificate_reads_as_unknown_ca_only_on_a_clean_chain() {
        // A host named only in the subject CN (no subjectAltName): a name fault, not the issuer.
        let cn_only = Arc::new(CertInfo::from_der(include_bytes!("../tls/testdata/comma-in-o.der")));
        assert_eq!(
            bad_certificate_why(&[cn_only], "says only certificate_unknown").0,
            Reason::HostnameMismatch
        );
        let (r, d) = bad_certificate_why(&[cert("untrusted")], "says only bad_certificate");
        assert_eq!(r, Reason::UnknownCa);
        assert!(d.contains("tlsdiag Other CA"), "{d}");
        assert_eq!(bad_certificate_why(&[cert("weak")], "").0, Reason::BadCertificate);
        assert_eq!(bad_certificate_why(&[cert("sha1")], "").0, Reason::BadCertificate);
        assert_eq!(bad_certificate_why(&[cert("rsa1024")], "").0, Reason::BadCertificate);
        assert_eq!(bad_certificate_why(&[], "").0, Reason::BadCertificate);
    }

    /// Whatever order the sessions come in and however they are split between workers, the
    /// merged list is the same: per name and leaf, the session with the lowest first frame.
    #[test]
    fn what_is_remembered_does_not_depend_on_order_or_split() {
        let (good, expired, other) = (cert("good"), cert("expired"), cert("other"));
        let mut all = vec![
            seen("good.test", &good, 40),
            seen("good.test", &expired, 7),
            seen("good.test", &good, 3),
            seen("other.test", &other, 90),
            seen("good.test", &expired, 55),
        ];
        for n in 10..20 {
            all.push(seen(&format!("n{n}.test"), &other, 100 + n));
        }
        let one_thread = {
            let mut l = Vec::new();
            merge(&mut l, all.clone());
            l
        };
        assert_eq!(one_thread.len(), MAX_CERTS_PER_SERVER);
        for rotate in 0..all.len() {
            for split in 0..all.len() {
                let mut order = all.clone();
                order.rotate_left(rotate);
                let (a, b) = order.split_at(split);
                let (mut w0, mut w1) = (Vec::new(), Vec::new());
                merge(&mut w0, a.to_vec());
                merge(&mut w1, b.to_vec());
                let (mut ab, mut ba) = (w0.clone(), w1.clone());
                merge(&mut ab, w1);
                merge(&mut ba, w0);
                assert_eq!(key(&ab), key(&one_thread), "rotate {rotate} split {split}");
                assert_eq!(key(&ba), key(&one_thread), "rotate {rotate} split {split}");
            }
        }
        let good_test: Vec<_> = one_thread
            .iter()
            .filter(|c| c.sni.as_deref() == Some("good.test"))
            .collect();
        assert_eq!(good_test.len(), 2);
        assert!(
            good_test
                .iter()
                .any(|c| c.first_frame == 3 && c.chain[0].sha256 == good.sha256)
        );
        assert!(
            good_test
                .iter()
                .any(|c| c.first_frame == 7 && c.chain[0].sha256 == expired.sha256)
        );
    }

    /// A name the server showed two certificates for lends neither; one it showed one for lends
    /// it, except to the session that showed it.
    #[test]
    fn only_a_name_with_one_certificate_lends_it() {
        let (good, expired) = (cert("good"), cert("expired"));
        let list = vec![
            seen("good.test", &good, 3),
            seen("good.test", &expired, 7),
            seen("x.test", &expired, 9),
        ];
        assert!(only_one(&list, Some("good.test"), 100).is_none());
        assert_eq!(only_one(&list, Some("x.test"), 100).map(|c| c.first_frame), Some(9));
        assert!(only_one(&list, Some("x.test"), 9).is_none());
        assert!(only_one(&list, Some("y.test"), 100).is_none());
    }

    /// A full list lets the entry seen last go; a name left with one of its certificates
    /// lends none, whether the other went or never got in.
    #[test]
    fn a_name_whose_other_certificate_was_let_go_lends_none() {
        let (good, expired, other) = (cert("good"), cert("expired"), cert("other"));
        let mut list = Vec::new();
        for n in 0..MAX_CERTS_PER_SERVER as u64 - 1 {
            add(&mut list, seen(&format!("n{n}.test"), &other, 10 + n));
        }
        add(&mut list, seen("good.test", &good, 100));
        assert_eq!(only_one(&list, Some("good.test"), 0).map(|c| c.first_frame), Some(100));
        // Later than every entry: does not get in, but the name now has two certificates.
        add(&mut list, seen("good.test", &expired, 200));
        assert_eq!(list.len(), MAX_CERTS_PER_SERVER);
        assert!(only_one(&list, Some("good.test"), 0).is_none());
        // The same from the other side: the earlier certificate comes in and pushes out the
        // later one of the same name.
        let mut list: Vec<_> = (0..MAX_CERTS_PER_SERVER as u64 - 1)
            .map(|n| seen(&format!("n{n}.test"), &other, 10 + n))
            .collect();
        list.push(seen("good.test", &expired, 200));
        add(&mut list, seen("good.test", &good, 5));
        assert!(list.iter().all(|c| c.first_frame != 200));
        assert!(only_one(&list, Some("good.test"), 0).is_none());
        // Merged from another worker, the mark stays.
        let mut merged: Vec<_> = Vec::new();
        merge(&mut merged, list);
        assert!(only_one(&merged, Some("good.test"), 0).is_none());
        assert_eq!(only_one(&merged, Some("n0.test"), 0).map(|c| c.first_frame), Some(10));
    }
}
