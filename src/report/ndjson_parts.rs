//! The parts of an NDJSON session line that differ between a full line and a lean one: `tls.*`,
//! `tlsdiag.handshake` and `tlsdiag.tcp`, borrowed from the report model (nothing copied).
//!
//! A lean line (an established session, unless `--detail full`) keeps every field a user filters
//! or joins on and leaves out the rest: the offered lists, the chain, the leaf certificate's
//! long forms (distinguished names, key and signature algorithms, notBefore), copies of values
//! another field already holds, and the handshake and TCP facts at their usual value (false,
//! zero, `[0, 0]`, one SYN answered). A field a lean line may leave out is optional in the
//! schema; a required field is in every session line.

use super::model::{
    AlertReport, ChainCert, DistinguishedName, Handshake, Hash, PreambleReport, TcpReport, TlsReport, X509,
};
use crate::flow::EndKind;
use schemars::JsonSchema;
use serde::Serialize;
use std::borrow::Cow;

/// Some(v) in a full line, and in a lean one only when `keep` says so.
fn when<T>(full: bool, keep: bool, v: T) -> Option<T> {
    (full || keep).then_some(v)
}

/// ECS `tls.*`.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsLine<'a> {
    /// Negotiated version ("1.2", "1.3", "3.0" for SSL 3.0 ...), from the ServerHello (ECS tls.version).
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    /// "tls" or "ssl" (ECS tls.version_protocol).
    version_protocol: &'static str,
    /// Negotiated cipher suite, IANA name (ECS tls.cipher).
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher: Option<&'a str>,
    /// Negotiated key-exchange group (ECS tls.curve).
    #[serde(skip_serializing_if = "Option::is_none")]
    curve: Option<&'a str>,
    /// ALPN protocol the server chose (ECS tls.next_protocol).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_protocol: Option<&'a str>,
    /// The handshake completed (ECS tls.established).
    established: bool,
    /// The session resumed an earlier one (ECS tls.resumed).
    resumed: bool,
    /// ECS tls.client fields.
    client: TlsClientLine<'a>,
    /// ECS tls.server fields (certificates only when sent in clear, TLS <= 1.2, or decrypted).
    server: TlsServerLine<'a>,
}

/// ECS `tls.client.*`.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TlsClientLine<'a> {
    /// SNI the client asked for (ECS tls.client.server_name).
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    /// Cipher suites the client offered, by IANA name (ECS tls.client.supported_ciphers). Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    supported_ciphers: Option<&'a [Cow<'static, str>]>,
    /// JA3 of the ClientHello, MD5 hex as tshark's tls.handshake.ja3 (ECS tls.client.ja3).
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<&'a str>,
}

/// ECS `tls.server.*`.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TlsServerLine<'a> {
    /// Leaf certificate (ECS tls.server.x509); a lean line holds its summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    x509: Option<X509Line<'a>>,
    /// Leaf certificate hash (ECS tls.server.hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<&'a Hash>,
    /// Leaf certificate notAfter (ECS tls.server.not_after). Full lines only (lean: tls.server.x509.not_after).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    #[serde(default)]
    not_after: Option<&'a str>,
    /// Leaf certificate notBefore (ECS tls.server.not_before). Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    #[serde(default)]
    not_before: Option<&'a str>,
    /// JA3S of the ServerHello, MD5 hex as tshark's tls.handshake.ja3s (ECS tls.server.ja3s).
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<&'a str>,
}

/// ECS `x509.*` of the leaf certificate.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct X509Line<'a> {
    /// Subject (ECS x509.subject).
    subject: NameLine<'a>,
    /// Issuer (ECS x509.issuer).
    issuer: NameLine<'a>,
    /// Serial number: upper-case hex without separators (ECS x509.serial_number).
    serial_number: &'a str,
    /// Start of validity (RFC 3339). Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    #[serde(default)]
    not_before: Option<&'a str>,
    /// End of validity (RFC 3339).
    #[schemars(schema_with = "crate::report::schema::date_time")]
    not_after: &'a str,
    /// subjectAltName DNS names and IP addresses.
    alternative_names: &'a [String],
    /// RSA, EC, DSA ... Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_algorithm: Option<&'a str>,
    /// Key size in bits. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_size: Option<usize>,
    /// Signature algorithm (e.g. sha256WithRSAEncryption). Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_algorithm: Option<&'a str>,
}

/// A distinguished name in ECS form.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NameLine<'a> {
    /// The full distinguished name, values escaped as RFC 4514 says. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    distinguished_name: Option<&'a str>,
    /// The CN attribute values, exact.
    common_name: &'a [String],
}

impl<'a> NameLine<'a> {
    fn of(n: &'a DistinguishedName, full: bool) -> NameLine<'a> {
        NameLine {
            distinguished_name: full.then_some(n.distinguished_name.as_str()),
            common_name: &n.common_name,
        }
    }
}

impl<'a> X509Line<'a> {
    fn of(x: &'a X509, full: bool) -> X509Line<'a> {
        X509Line {
            subject: NameLine::of(&x.subject, full),
            issuer: NameLine::of(&x.issuer, full),
            serial_number: &x.serial_number,
            not_before: full.then_some(x.not_before.as_str()),
            not_after: &x.not_after,
            alternative_names: &x.alternative_names,
            public_key_algorithm: full.then_some(x.public_key_algorithm.as_str()),
            public_key_size: full.then_some(x.public_key_size),
            signature_algorithm: full.then_some(x.signature_algorithm.as_str()),
        }
    }
}

impl<'a> TlsLine<'a> {
    /// `tls.*` of a session, full or lean.
    pub fn of(t: &'a TlsReport, full: bool) -> TlsLine<'a> {
        TlsLine {
            version: t.version.as_deref(),
            version_protocol: t.version_protocol,
            cipher: t.cipher.as_deref(),
            curve: t.curve.as_deref(),
            next_protocol: t.next_protocol.as_deref(),
            established: t.established,
            resumed: t.resumed,
            client: TlsClientLine {
                server_name: t.client.server_name.as_deref(),
                supported_ciphers: full.then_some(t.client.supported_ciphers.as_slice()),
                ja3: t.client.ja3.as_deref(),
            },
            server: TlsServerLine {
                x509: t.server.x509.as_ref().map(|x| X509Line::of(x, full)),
                hash: t.server.hash.as_ref(),
                not_after: t.server.not_after.as_deref().filter(|_| full),
                not_before: t.server.not_before.as_deref().filter(|_| full),
                ja3s: t.server.ja3s.as_deref(),
            },
        }
    }
}

/// `tlsdiag.handshake`: handshake details beyond ECS.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandshakeLine<'a> {
    /// Versions the client offered (supported_versions, else the legacy version), highest first as sent. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    offered_versions: Option<&'a [Cow<'static, str>]>,
    /// Groups from the client's supported_groups extension. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    supported_groups: Option<&'a [Cow<'static, str>]>,
    /// Groups the client sent key shares for (TLS 1.3). Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    key_share_groups: Option<&'a [Cow<'static, str>]>,
    /// Application protocols the client offered (lean lines: left out when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    alpn: Option<&'a [String]>,
    /// The client offered a session ticket or a PSK, or a session id while not offering TLS 1.3 (lean lines: left out when false).
    #[serde(skip_serializing_if = "Option::is_none")]
    resumption_attempt: Option<bool>,
    /// The ClientHello used the SSLv2-compatible format (lean lines: left out when false).
    #[serde(skip_serializing_if = "Option::is_none")]
    sslv2_format: Option<bool>,
    /// Certificates in the client's Certificate message (0 = empty), when one was sent in clear (TLS <= 1.2) or decrypted with the key log.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_certificate_count: Option<usize>,
    /// The server sent a CertificateRequest (visible in TLS <= 1.2; lean lines: left out when false).
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_requested: Option<bool>,
    /// The server sent a HelloRetryRequest (TLS 1.3; lean lines: left out when false).
    #[serde(skip_serializing_if = "Option::is_none")]
    hello_retry_request: Option<bool>,
    /// The server's chain as sent, leaf first. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_chain: Option<&'a [ChainCert]>,
    /// Message history: client upper case, server lower case (as Zeek's ssl_history). Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<&'a str>,
    /// Alerts seen, plaintext or encrypted, in order (lean lines: left out when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<&'a [AlertReport]>,
    /// Encrypted records seen [client→server, server→client]. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_records: Option<[u64; 2]>,
    /// Times the record framing lost sync after missing bytes [client→server, server→client] (lean lines: left out when [0, 0]).
    #[serde(skip_serializing_if = "Option::is_none")]
    lost_sync: Option<[u32; 2]>,
    /// The plaintext preamble before TLS (STARTTLS, a proxy), when TLS did not start at the connection's first byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    preamble: Option<&'a PreambleReport>,
    /// What decryption with the key log gave (only in a run with a key log).
    #[serde(skip_serializing_if = "Option::is_none")]
    decryption: Option<&'a super::decryption::DecryptionReport>,
}

impl<'a> HandshakeLine<'a> {
    /// `tlsdiag.handshake` of a session, full or lean.
    pub fn of(h: &'a Handshake, full: bool) -> HandshakeLine<'a> {
        HandshakeLine {
            offered_versions: full.then_some(h.offered_versions.as_slice()),
            supported_groups: full.then_some(h.supported_groups.as_slice()),
            key_share_groups: full.then_some(h.key_share_groups.as_slice()),
            alpn: when(full, !h.alpn.is_empty(), h.alpn.as_slice()),
            resumption_attempt: when(full, h.resumption_attempt, h.resumption_attempt),
            sslv2_format: when(full, h.sslv2_format, h.sslv2_format),
            client_certificate_count: h.client_certificate_count,
            certificate_requested: when(full, h.certificate_requested, h.certificate_requested),
            hello_retry_request: when(full, h.hello_retry_request, h.hello_retry_request),
            certificate_chain: full.then_some(h.certificate_chain.as_slice()),
            history: full.then_some(h.history.as_str()),
            alerts: when(full, !h.alerts.is_empty(), h.alerts.as_slice()),
            encrypted_records: full.then_some(h.encrypted_records),
            lost_sync: when(full, h.lost_sync != [0, 0], h.lost_sync),
            preamble: h.preamble.as_ref(),
            decryption: h.decryption.as_ref(),
        }
    }
}

/// `tlsdiag.tcp`: TCP facts of the connection.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpLine {
    /// SYNs the client sent, retransmissions included (lean lines: left out when 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    syn_count: Option<u32>,
    /// A SYN-ACK was seen (lean lines: left out when true).
    #[serde(skip_serializing_if = "Option::is_none")]
    syn_ack: Option<bool>,
    /// The connection began before the capture (lean lines: left out when false).
    #[serde(skip_serializing_if = "Option::is_none")]
    midstream: Option<bool>,
    /// How the connection's record ended (reset, closed, handshake_timeout, idle_timeout, capture_end, evicted; lean lines: left out when closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<EndKind>,
    /// Packets [client→server, server→client].
    packets: [u64; 2],
    /// Payload bytes [client→server, server→client].
    payload_bytes: [u64; 2],
    /// Segments whose bytes had all been seen before [client→server, server→client] (lean lines: left out when [0, 0]).
    #[serde(skip_serializing_if = "Option::is_none")]
    retransmissions: Option<[u32; 2]>,
    /// Segments that arrived ahead of a hole [client→server, server→client] (lean lines: left out when [0, 0]).
    #[serde(skip_serializing_if = "Option::is_none")]
    out_of_order: Option<[u32; 2]>,
    /// Holes never filled [client→server, server→client] (lean lines: left out when [0, 0]).
    #[serde(skip_serializing_if = "Option::is_none")]
    gaps: Option<[u32; 2]>,
    /// Bytes in those holes [client→server, server→client] (lean lines: left out when [0, 0]).
    #[serde(skip_serializing_if = "Option::is_none")]
    gap_bytes: Option<[u64; 2]>,
}

impl TcpLine {
    /// `tlsdiag.tcp` of a session, full or lean.
    pub fn of(t: &TcpReport, full: bool) -> TcpLine {
        TcpLine {
            syn_count: when(full, t.syn_count != 1, t.syn_count),
            syn_ack: when(full, !t.syn_ack, t.syn_ack),
            midstream: when(full, t.midstream, t.midstream),
            end: when(full, t.end != EndKind::Closed, t.end),
            packets: t.packets,
            payload_bytes: t.payload_bytes,
            retransmissions: when(full, t.retransmissions != [0, 0], t.retransmissions),
            out_of_order: when(full, t.out_of_order != [0, 0], t.out_of_order),
            gaps: when(full, t.gaps != [0, 0], t.gaps),
            gap_bytes: when(full, t.gap_bytes != [0, 0], t.gap_bytes),
        }
    }
}
