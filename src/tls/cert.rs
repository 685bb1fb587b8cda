//! Certificate facts, parsed with x509-parser, and the checks a passive observer can make:
//! validity against the capture's own time, name coverage of the SNI, self-signature, chain order.
//!
//! What it is not: a trust-store validation. The client's roots are unknown to us; "unknown CA"
//! comes from the client's alert, and "self-signed" / "issuer missing from the chain" are facts
//! we report as evidence.

use crate::limits::{CERT_CACHE_ENTRIES, CERT_CACHE_MAX_DER};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// One certificate of a chain.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CertInfo {
    /// Subject and issuer rendered from the parsed RDNs (see [`super::dn`]).
    pub subject: String,
    pub issuer: String,
    /// The subject's CN values, exact, from the parsed attributes (not from `subject`).
    pub subject_cns: Vec<String>,
    /// The issuer's CN values, exact.
    pub issuer_cns: Vec<String>,
    pub serial: String,
    /// DNS names and IP addresses from subjectAltName.
    pub san_dns: Vec<String>,
    pub san_ip: Vec<String>,
    /// Validity as seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub key_type: String,
    pub key_bits: usize,
    pub signature_algorithm: String,
    pub sha256: String,
    /// SHA-1 of the DER certificate, lower-case hex (what many inventories and ECS
    /// tls.server.hash.sha1 still key on).
    pub sha1: String,
    pub self_signed: bool,
    pub is_ca: bool,
    /// Set when the DER could not be parsed (the other fields are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

impl CertInfo {
    /// Parses one DER certificate; never fails (a parse error is recorded in the result).
    pub fn from_der(der: &[u8]) -> CertInfo {
        let sha256 = hex(&Sha256::digest(der));
        let sha1 = hex(&sha1::Sha1::digest(der));
        let x = match X509Certificate::from_der(der) {
            Ok((_, x)) => x,
            Err(e) => {
                return CertInfo {
                    sha256,
                    sha1,
                    parse_error: Some(e.to_string()),
                    ..CertInfo::default()
                };
            }
        };
        let subject = super::dn::from_name(x.subject());
        let issuer = super::dn::from_name(x.issuer());
        let mut info = CertInfo {
            subject: subject.rendered,
            issuer: issuer.rendered,
            subject_cns: subject.common_names,
            issuer_cns: issuer.common_names,
            serial: x.raw_serial_as_string(),
            not_before: x.validity().not_before.timestamp(),
            not_after: x.validity().not_after.timestamp(),
            sha256,
            sha1,
            self_signed: x.subject().as_raw() == x.issuer().as_raw(),
            is_ca: x.is_ca(),
            ..CertInfo::default()
        };
        if let Ok(Some(san)) = x.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => info.san_dns.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            info.san_ip.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let (key_type, key_bits) = match x.public_key().parsed() {
            Ok(PublicKey::RSA(r)) => ("RSA", r.key_size()),
            Ok(PublicKey::EC(e)) => ("EC", e.key_size()),
            Ok(PublicKey::DSA(_)) => ("DSA", 0),
            Ok(k) => ("other", k.key_size()),
            Err(_) => ("unknown", 0),
        };
        info.key_type = key_type.to_string();
        info.key_bits = key_bits;
        let oid = &x.signature_algorithm.algorithm;
        info.signature_algorithm = x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
            .map(|s| s.to_string())
            .unwrap_or_else(|_| oid.to_id_string());
        info
    }

    /// Whether the certificate is valid at `secs` (seconds since the epoch).
    pub fn valid_at(&self, secs: i64) -> bool {
        self.parse_error.is_none() && self.not_before <= secs && secs <= self.not_after
    }

    /// Whether the certificate covers `name` (a DNS name or an IP literal), RFC 6125 style:
    /// SAN entries if any, else the subject CN; one left-most wildcard label.
    pub fn covers(&self, name: &str) -> bool {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self.san_ip.iter().any(|s| s.parse::<IpAddr>().ok() == Some(ip));
        }
        if self.san_dns.is_empty() {
            self.subject_cns.iter().any(|pat| name_matches(pat, name))
        } else {
            self.san_dns.iter().any(|pat| name_matches(pat, name))
        }
    }

    /// The names [`CertInfo::covers`] checks, for a sentence: the SAN entries, else the
    /// subject's CN values, else the whole subject.
    pub fn covered_names(&self) -> String {
        // A summary line, not the list: a certificate may carry thousands of names.
        const SHOWN: usize = 8;
        let sans: Vec<&String> = self.san_dns.iter().chain(&self.san_ip).collect();
        let names = if sans.is_empty() {
            self.subject_cns.iter().collect()
        } else {
            sans
        };
        if names.is_empty() {
            return self.subject.clone();
        }
        let mut out = names
            .iter()
            .take(SHOWN)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            out.push_str(&format!(" and {} more", names.len() - SHOWN));
        }
        out
    }

    /// Whether the signature uses SHA-1 or MD5.
    pub fn weak_signature(&self) -> bool {
        let s = self.signature_algorithm.as_bytes();
        [b"sha1".as_slice(), b"md5"]
            .iter()
            .any(|w| s.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w)))
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.trim_end_matches('.');
    let n = name.trim_end_matches('.');
    match p.strip_prefix("*.") {
        Some(rest) => match n.split_once('.') {
            Some((label, tail)) => !label.is_empty() && tail.eq_ignore_ascii_case(rest),
            None => false,
        },
        None => p.eq_ignore_ascii_case(n),
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        Some(IpAddr::from(a))
    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
        Some(IpAddr::from(a))
    } else {
        None
    }
}

/// A server's certificate is sent again in every full handshake with it: a busy capture holds
/// the same few DER blobs thousands of times. Each thread keeps the last parsed ones
/// (direct-mapped by a hash of the DER, compared in full), so a repeat costs a hash and a
/// comparison instead of an X.509 parse and a SHA-256. The result is the same either way.
struct CertCache {
    slots: Vec<Option<CachedCert>>,
}

/// A certificate's DER and what was parsed from it.
type CachedCert = (Box<[u8]>, Arc<CertInfo>);

thread_local! {
    static CERT_CACHE: RefCell<CertCache> = RefCell::new(CertCache {
        slots: vec![None; CERT_CACHE_ENTRIES],
    });
}

/// [`CertInfo::from_der`], remembered per thread (see [`CertCache`]).
pub fn parse_cached(der: &[u8]) -> Arc<CertInfo> {
    if der.len() > CERT_CACHE_MAX_DER {
        return Arc::new(CertInfo::from_der(der));
    }
    // The slot from the length and the last bytes (the signature, different in every
    // certificate): hashing all of it cost more than the lookup saves. A match is confirmed on
    // the whole encoding below.
    let mut h = crate::flow::FlowHashBuilder::fixed().build_hasher();
    h.write_usize(der.len());
    for w in der.get(der.len().saturating_sub(128)..).unwrap_or(der).chunks_exact(8) {
        h.write_u64(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
    }
    let slot = (h.finish() % CERT_CACHE_ENTRIES as u64) as usize;
    CERT_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(Some((known, info))) = cache.slots.get(slot) {
            if **known == *der {
                return info.clone();
            }
        }
        let info = Arc::new(CertInfo::from_der(der));
        if let Some(s) = cache.slots.get_mut(slot) {
            *s = Some((der.into(), info.clone()));
        }
        info
    })
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Formats seconds since the epoch as an RFC 3339 date-time (UTC).
pub fn secs_rfc3339(secs: i64) -> String {
    let t = crate::capture::Timestamp::from_parts(secs, 0).rfc3339();
    // Certificate dates have no sub-second part.
    format!("{}Z", &t[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label() {
        assert!(name_matches("*.example.test", "a.example.test"));
        assert!(!name_matches("*.example.test", "a.b.example.test"));
        assert!(!name_matches("*.example.test", "example.test"));
        assert!(name_matches("Good.Test.", "good.test"));
    }

    #[test]
    fn garbage_der_is_recorded_not_fatal() {
        let c = CertInfo::from_der(b"\x30\x03\x01\x02");
        assert!(c.parse_error.is_some());
        assert!(!c.valid_at(0));
        assert_eq!(c.sha256.len(), 64);
    }

    /// A summary names at most 8 of a certificate's names and counts the rest.
    #[test]
    fn covered_names_are_capped_in_a_summary() {
        let mut c = CertInfo::from_der(include_bytes!("testdata/comma-in-o.der"));
        assert_eq!(c.covered_names(), "attacker.test");
        c.san_dns = (0..10_000).map(|i| format!("n{i}.test")).collect();
        let s = c.covered_names();
        assert!(
            s.starts_with("n0.test, n1.test") && s.ends_with("n7.test and 9992 more"),
            "{s}"
        );
    }

    /// `O="evil, CN=victim.test", CN=attacker.test` (made with openssl) covers attacker.test only.
    #[test]
    fn a_cn_inside_another_value_covers_nothing() {
        let c = CertInfo::from_der(include_bytes!("testdata/comma-in-o.der"));
        assert!(c.san_dns.is_empty());
        assert!(c.covers("attacker.test"));
        assert!(!c.covers("victim.test"));
        assert_eq!(c.subject_cns, vec!["attacker.test".to_string()]);
    }
}
