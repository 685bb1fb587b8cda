//! Open newtypes for TLS protocol numbers: unknown values are kept and shown as numbers, because
//! an odd alert or version is exactly what a failure report must show.

use serde::{Serialize, Serializer};
use std::fmt;

/// A TLS protocol version as it appears on the wire (0x0303 = TLS 1.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16);

impl Version {
    pub const SSL2: Version = Version(0x0002);
    pub const SSL3: Version = Version(0x0300);
    pub const TLS10: Version = Version(0x0301);
    pub const TLS11: Version = Version(0x0302);
    pub const TLS12: Version = Version(0x0303);
    pub const TLS13: Version = Version(0x0304);

    /// Whether this is a GREASE value (RFC 8701).
    pub fn is_grease(self) -> bool {
        is_grease(self.0)
    }

    /// Short form used in JSON: "1.2", "1.3", "ssl3", or hex.
    pub fn short(self) -> String {
        match self {
            Version::SSL2 => "ssl2".into(),
            Version::SSL3 => "ssl3".into(),
            Version::TLS10 => "1.0".into(),
            Version::TLS11 => "1.1".into(),
            Version::TLS12 => "1.2".into(),
            Version::TLS13 => "1.3".into(),
            Version(v) if v & 0xff00 == 0x7f00 => format!("1.3-draft{}", v & 0xff),
            Version(v) if v & 0xff00 == 0x7e00 || v & 0xff00 == 0xfb00 => format!("1.3-experiment-0x{v:04x}"),
            Version(v) => format!("0x{v:04x}"),
        }
    }

    /// The display name of a final version ("TLS 1.2"), without allocating; `None` for drafts,
    /// experiments and unknown values (their [`fmt::Display`] form says what they are).
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Version::SSL2 => "SSL 2.0",
            Version::SSL3 => "SSL 3.0",
            Version::TLS10 => "TLS 1.0",
            Version::TLS11 => "TLS 1.1",
            Version::TLS12 => "TLS 1.2",
            Version::TLS13 => "TLS 1.3",
            _ => return None,
        })
    }

    /// Whether this is TLS 1.3, a TLS 1.3 draft (0x7fNN), or one of the experiment versions
    /// browsers and Facebook deployed during the drafts (0x7eNN, 0xfbNN).
    pub fn is_tls13(self) -> bool {
        self == Version::TLS13 || matches!(self.0 & 0xff00, 0x7f00 | 0x7e00 | 0xfb00)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.name() {
            return f.write_str(n);
        }
        match *self {
            v if v.0 >> 8 == 3 || v.is_tls13() => write!(f, "TLS {}", v.short()),
            v => write!(f, "version 0x{:04x}", v.0),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.short())
    }
}

/// Whether a 16-bit codepoint is GREASE (0x?a?a with equal bytes).
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// A TLS alert description (RFC 8446 §6, RFC 5246 §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertDescription(pub u8);

impl AlertDescription {
    pub const CLOSE_NOTIFY: AlertDescription = AlertDescription(0);
    pub const UNEXPECTED_MESSAGE: AlertDescription = AlertDescription(10);
    pub const BAD_RECORD_MAC: AlertDescription = AlertDescription(20);
    pub const HANDSHAKE_FAILURE: AlertDescription = AlertDescription(40);
    pub const NO_CERTIFICATE: AlertDescription = AlertDescription(41);
    pub const BAD_CERTIFICATE: AlertDescription = AlertDescription(42);
    pub const UNSUPPORTED_CERTIFICATE: AlertDescription = AlertDescription(43);
    pub const CERTIFICATE_REVOKED: AlertDescription = AlertDescription(44);
    pub const CERTIFICATE_EXPIRED: AlertDescription = AlertDescription(45);
    pub const CERTIFICATE_UNKNOWN: AlertDescription = AlertDescription(46);
    pub const ILLEGAL_PARAMETER: AlertDescription = AlertDescription(47);
    pub const UNKNOWN_CA: AlertDescription = AlertDescription(48);
    pub const ACCESS_DENIED: AlertDescription = AlertDescription(49);
    pub const DECODE_ERROR: AlertDescription = AlertDescription(50);
    pub const DECRYPT_ERROR: AlertDescription = AlertDescription(51);
    pub const PROTOCOL_VERSION: AlertDescription = AlertDescription(70);
    pub const INSUFFICIENT_SECURITY: AlertDescription = AlertDescription(71);
    pub const INTERNAL_ERROR: AlertDescription = AlertDescription(80);
    pub const INAPPROPRIATE_FALLBACK: AlertDescription = AlertDescription(86);
    pub const USER_CANCELED: AlertDescription = AlertDescription(90);
    pub const NO_RENEGOTIATION: AlertDescription = AlertDescription(100);
    pub const MISSING_EXTENSION: AlertDescription = AlertDescription(109);
    pub const UNSUPPORTED_EXTENSION: AlertDescription = AlertDescription(110);
    pub const UNRECOGNIZED_NAME: AlertDescription = AlertDescription(112);
    pub const BAD_CERTIFICATE_STATUS_RESPONSE: AlertDescription = AlertDescription(113);
    pub const UNKNOWN_PSK_IDENTITY: AlertDescription = AlertDescription(115);
    pub const CERTIFICATE_REQUIRED: AlertDescription = AlertDescription(116);
    pub const NO_APPLICATION_PROTOCOL: AlertDescription = AlertDescription(120);

    /// The RFC name in snake_case, or `None` for an unassigned value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            121 => "ech_required",
            _ => return None,
        })
    }
}

impl fmt::Display for AlertDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "alert_{}", self.0),
        }
    }
}

impl Serialize for AlertDescription {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.serialize_str(&format!("alert_{}", self.0)),
        }
    }
}

/// A cipher suite id; its IANA name comes from tls-parser's table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CipherSuite(pub u16);

/// tls-parser's suites sorted by id: a binary search finds one in a few comparisons, where its
/// own map hashes the id with SipHash (several times per session, the largest part of naming).
fn suites() -> &'static [(u16, &'static tls_parser::TlsCipherSuite)] {
    static SUITES: std::sync::OnceLock<Vec<(u16, &'static tls_parser::TlsCipherSuite)>> = std::sync::OnceLock::new();
    SUITES.get_or_init(|| {
        let mut v: Vec<_> = tls_parser::CIPHERS.entries().map(|(id, c)| (*id, c)).collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    })
}

impl CipherSuite {
    /// The suite's parameters in tls-parser's table, if it is known there.
    fn info(self) -> Option<&'static tls_parser::TlsCipherSuite> {
        let all = suites();
        all.binary_search_by_key(&self.0, |e| e.0)
            .ok()
            .and_then(|i| all.get(i))
            .map(|e| e.1)
    }

    /// The IANA name, or `None` if unknown (GREASE, private use).
    pub fn name(self) -> Option<&'static str> {
        self.info().map(|c| c.name)
    }

    /// Whether the suite gives forward secrecy (ephemeral key exchange, or any TLS 1.3 suite).
    pub fn forward_secret(self) -> Option<bool> {
        use tls_parser::TlsCipherKx as Kx;
        let c = self.info()?;
        Some(matches!(c.kx, Kx::Dhe | Kx::Ecdhe | Kx::Tls13 | Kx::Eccpwd))
    }

    /// Why the suite is weak (NULL, export, RC4, DES/3DES, anonymous, MD5), if it is.
    pub fn weakness(self) -> Option<&'static str> {
        use tls_parser::{TlsCipherAu as Au, TlsCipherEnc as Enc, TlsCipherMac as Mac};
        let c = self.info()?;
        if c.name.contains("EXPORT") {
            return Some("export-grade");
        }
        match (c.enc, c.au, c.mac) {
            (Enc::Null, _, _) => Some("no encryption"),
            (Enc::Rc4, _, _) => Some("RC4"),
            (Enc::Des | Enc::TripleDes | Enc::Rc2 | Enc::Idea, _, _) => Some("64-bit block cipher"),
            (_, Au::Null, _) => Some("anonymous (no authentication)"),
            (_, _, Mac::HmacMd5) => Some("MD5 MAC"),
            _ => None,
        }
    }

    /// Whether this is a signalling value rather than a real suite (SCSV or GREASE).
    pub fn is_signalling(self) -> bool {
        self.0 == 0x00ff || self.0 == 0x5600 || is_grease(self.0)
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

impl Serialize for CipherSuite {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A named group (supported_groups / key_share).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group(pub u16);

impl Group {
    /// The IANA name, or `None` if unknown.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            23 => "secp256r1",
            24 => "secp384r1",
            25 => "secp521r1",
            29 => "x25519",
            30 => "x448",
            256 => "ffdhe2048",
            257 => "ffdhe3072",
            258 => "ffdhe4096",
            259 => "ffdhe6144",
            260 => "ffdhe8192",
            0x11ec => "X25519MLKEM768",
            0x11eb => "SecP256r1MLKEM768",
            0x11ed => "SecP384r1MLKEM1024",
            0x6399 => "X25519Kyber768Draft00",
            _ => return None,
        })
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

impl Serialize for Group {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_unknowns() {
        assert_eq!(AlertDescription(48).to_string(), "unknown_ca(48)");
        assert_eq!(AlertDescription(200).to_string(), "alert_200");
        assert_eq!(Version(0x0303).short(), "1.2");
        assert_eq!(Version(0x7f12).short(), "1.3-draft18");
        assert_eq!(CipherSuite(0x1301).to_string(), "TLS_AES_128_GCM_SHA256");
        assert_eq!(CipherSuite(0x0a0a).to_string(), "0x0a0a");
        assert!(CipherSuite(0x0a0a).is_signalling());
        assert_eq!(CipherSuite(0x002f).forward_secret(), Some(false));
        assert_eq!(CipherSuite(0xc02f).forward_secret(), Some(true));
        assert_eq!(CipherSuite(0x0005).weakness(), Some("RC4"));
        assert_eq!(Group(29).to_string(), "x25519");
    }

    #[test]
    fn the_sorted_table_finds_every_suite_tls_parser_knows() {
        for id in 0..=u16::MAX {
            let want = tls_parser::TlsCipherSuite::from_id(id).map(|c| c.name);
            assert_eq!(CipherSuite(id).name(), want, "{id:#06x}");
        }
    }
}
