//! The one report model every printer reads: a capture summary and one record per session.

use crate::capture::Timestamp;
use crate::diagnose::{Cause, Evidence, Outcome, Verdict, Warning};
use crate::flow::{Direction, EndKind, Endpoint, TcpFacts};
use crate::tls::TlsFacts;
use crate::tls::cert::{CertInfo, secs_rfc3339};
use schemars::JsonSchema;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub use super::ids::{CommunityId, DisplayFilter};

/// Version of the JSON document layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: &str = "1.0";

/// An address and port.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Addr {
    /// IP address (IPv4 or IPv6). With --redact, client addresses are pseudonyms from 198.18.0.0/15 (then 240.0.0.0/4) or 2001:db8::/32.
    #[schemars(schema_with = "crate::report::schema::ip")]
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl Addr {
    /// The same address and port as a flow endpoint.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            ip: self.ip,
            port: self.port,
        }
    }
}

impl From<Endpoint> for Addr {
    fn from(e: Endpoint) -> Addr {
        Addr { ip: e.ip, port: e.port }
    }
}

/// A distinguished name in ECS form.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistinguishedName {
    /// The full distinguished name from the parsed RDNs in the certificate's order, values escaped as RFC 4514 says (controls as `\\XX`).
    pub distinguished_name: String,
    /// The CN attribute values, exact (from the parsed attributes).
    pub common_name: Vec<String>,
}

impl DistinguishedName {
    fn new(dn: &str, common_names: &[String]) -> DistinguishedName {
        DistinguishedName {
            distinguished_name: dn.to_string(),
            common_name: common_names.to_vec(),
        }
    }
}

/// Certificate fields with Elastic Common Schema `x509.*` names, plus our own facts.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct X509 {
    /// Subject (ECS x509.subject).
    pub subject: DistinguishedName,
    /// Issuer (ECS x509.issuer).
    pub issuer: DistinguishedName,
    /// Serial number: upper-case hex without separators (ECS x509.serial_number).
    pub serial_number: String,
    /// Start of validity (RFC 3339).
    #[schemars(schema_with = "crate::report::schema::date_time")]
    pub not_before: String,
    /// End of validity (RFC 3339).
    #[schemars(schema_with = "crate::report::schema::date_time")]
    pub not_after: String,
    /// subjectAltName DNS names and IP addresses.
    pub alternative_names: Vec<String>,
    /// RSA, EC, DSA ...
    pub public_key_algorithm: String,
    /// Key size in bits.
    pub public_key_size: usize,
    /// Signature algorithm (e.g. sha256WithRSAEncryption).
    pub signature_algorithm: String,
}

impl From<&CertInfo> for X509 {
    fn from(c: &CertInfo) -> X509 {
        let mut names = c.san_dns.clone();
        names.extend(c.san_ip.iter().cloned());
        X509 {
            subject: DistinguishedName::new(&c.subject, &c.subject_cns),
            issuer: DistinguishedName::new(&c.issuer, &c.issuer_cns),
            serial_number: ecs_serial(&c.serial),
            not_before: secs_rfc3339(c.not_before),
            not_after: secs_rfc3339(c.not_after),
            alternative_names: names,
            public_key_algorithm: c.key_type.clone(),
            public_key_size: c.key_bits,
            signature_algorithm: c.signature_algorithm.clone(),
        }
    }
}

/// A serial number as ECS asks: hex digits without separators, upper case.
fn ecs_serial(serial: &str) -> String {
    serial
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// One certificate of the server's chain, with what we judged of it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainCert {
    /// Certificate fields (ECS x509 names).
    pub x509: X509,
    /// SHA-256 fingerprint of the DER certificate, lower-case hex.
    pub sha256: String,
    /// Subject and issuer are the same name.
    pub self_signed: bool,
    /// basicConstraints CA:true.
    pub is_ca: bool,
    /// Why the DER could not be parsed (other fields are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

impl From<&CertInfo> for ChainCert {
    fn from(c: &CertInfo) -> ChainCert {
        ChainCert {
            x509: X509::from(c),
            sha256: c.sha256.clone(),
            self_signed: c.self_signed,
            is_ca: c.is_ca,
            parse_error: c.parse_error.clone(),
        }
    }
}

/// ECS `tls.client.*`.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsClientEcs {
    /// SNI the client asked for (ECS tls.client.server_name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Cipher suites the client offered, by IANA name (ECS tls.client.supported_ciphers).
    pub supported_ciphers: Vec<Cow<'static, str>>,
    /// JA3 of the ClientHello, MD5 hex as tshark's tls.handshake.ja3 (ECS tls.client.ja3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
}

/// ECS `hash.*`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hash {
    /// SHA-256 of the DER certificate, upper-case hex (ECS tls.server.hash.sha256).
    pub sha256: String,
    /// SHA-1 of the DER certificate, upper-case hex (ECS tls.server.hash.sha1).
    pub sha1: String,
}

/// ECS `tls.server.*`.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsServerEcs {
    /// Leaf certificate (ECS tls.server.x509).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509>,
    /// Leaf certificate hash (ECS tls.server.hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
    /// Leaf certificate notAfter (ECS tls.server.not_after).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    #[serde(default)]
    pub not_after: Option<String>,
    /// Leaf certificate notBefore (ECS tls.server.not_before).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    #[serde(default)]
    pub not_before: Option<String>,
    /// JA3S of the ServerHello, MD5 hex as tshark's tls.handshake.ja3s (ECS tls.server.ja3s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<String>,
}

/// ECS `tls.*`: only fields the Elastic Common Schema defines.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsReport {
    /// Negotiated version ("1.2", "1.3", "3.0" for SSL 3.0 ...), from the ServerHello (ECS tls.version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// "tls" or "ssl" (ECS tls.version_protocol).
    pub version_protocol: &'static str,
    /// Negotiated cipher suite, IANA name (ECS tls.cipher).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Negotiated key-exchange group (ECS tls.curve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// ALPN protocol the server chose (ECS tls.next_protocol).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_protocol: Option<String>,
    /// The handshake completed (ECS tls.established).
    pub established: bool,
    /// The session resumed an earlier one (ECS tls.resumed).
    pub resumed: bool,
    /// ECS tls.client fields.
    pub client: TlsClientEcs,
    /// ECS tls.server fields (certificates only when sent in clear, TLS <= 1.2).
    pub server: TlsServerEcs,
}

/// Our handshake details beyond ECS.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Handshake {
    /// Versions the client offered (supported_versions, else the legacy version), highest first as sent.
    pub offered_versions: Vec<Cow<'static, str>>,
    /// Groups from the client's supported_groups extension.
    pub supported_groups: Vec<Cow<'static, str>>,
    /// Groups the client sent key shares for (TLS 1.3).
    pub key_share_groups: Vec<Cow<'static, str>>,
    /// Application protocols the client offered.
    pub alpn: Vec<String>,
    /// The client offered a session ticket or a PSK, or a session id while not offering TLS 1.3 (a TLS 1.3 client sends a random session id for middlebox compatibility, RFC 8446 appendix D.4, so the id alone says nothing).
    pub resumption_attempt: bool,
    /// The ClientHello used the SSLv2-compatible format.
    pub sslv2_format: bool,
    /// Certificates in the client's Certificate message (0 = empty), when one was sent in clear (TLS <= 1.2) or decrypted with the key log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate_count: Option<usize>,
    /// The server sent a CertificateRequest (visible in TLS <= 1.2).
    pub certificate_requested: bool,
    /// The server sent a HelloRetryRequest (TLS 1.3).
    pub hello_retry_request: bool,
    /// The server's chain as sent, leaf first.
    pub certificate_chain: Vec<ChainCert>,
    /// Message history: client upper case, server lower case (as Zeek's ssl_history).
    pub history: String,
    /// Alerts seen, plaintext or encrypted, in order.
    pub alerts: Vec<AlertReport>,
    /// Encrypted records seen [client→server, server→client].
    pub encrypted_records: [u64; 2],
    /// Times the record framing lost sync after missing bytes [client→server, server→client].
    pub lost_sync: [u32; 2],
    /// The plaintext preamble before TLS (STARTTLS, a proxy), when TLS did not start at the connection's first byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preamble: Option<PreambleReport>,
    /// What decryption with the key log gave (only in a run with a key log: --keylog, or
    /// Decryption Secrets Blocks in the capture).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub decryption: Option<super::decryption::DecryptionReport>,
}

/// The plaintext in front of a TLS handshake: a STARTTLS-style upgrade or a proxy tunnel.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreambleReport {
    /// smtp, imap, pop3, ftp, xmpp, ldap, postgres, http_connect, socks4 or socks5.
    pub protocol: crate::tls::preamble::Protocol,
    /// not_requested, requested, upgraded (TLS followed the go-ahead), refused, gave_up (past the caps or broken).
    pub outcome: crate::tls::preamble::PreambleOutcome,
    /// The client's request (upgrade command or proxy request), printable ASCII with other bytes as \xNN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Frame of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_frame: Option<u64>,
    /// The server's (or proxy's) answer, escaped as the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Frame of the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_frame: Option<u64>,
    /// Proxies: the host and port the client asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl PreambleReport {
    fn of(p: &crate::tls::preamble::PreambleFacts) -> PreambleReport {
        PreambleReport {
            protocol: p.protocol,
            outcome: p.outcome,
            request: p.request.as_ref().map(|(_, r)| r.clone()),
            request_frame: p.request.as_ref().map(|(a, _)| a.frame),
            reply: p.reply.as_ref().map(|(_, r)| r.clone()),
            reply_frame: p.reply.as_ref().map(|(a, _)| a.frame),
            target: p.target.clone(),
        }
    }
}

/// ECS `event.*` for a session.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventEcs {
    /// ECS event.kind: always "event".
    pub kind: &'static str,
    /// ECS event.category: ["network"].
    pub category: [&'static str; 1],
    /// ECS event.type: ["connection"].
    #[serde(rename = "type")]
    pub kind_type: [&'static str; 1],
    /// ECS event.dataset: "tlsdiag.session".
    pub dataset: &'static str,
    /// First packet of the session (RFC 3339, UTC).
    #[schemars(schema_with = "crate::report::schema::date_time")]
    pub start: Timestamp,
    /// Last packet of the session (RFC 3339, UTC).
    #[schemars(schema_with = "crate::report::schema::date_time")]
    pub end: Timestamp,
    /// Nanoseconds.
    pub duration: i64,
    /// `success` (established), `failure` (failed) or `unknown` (incomplete).
    pub outcome: &'static str,
}

/// ECS `network.*`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkEcs {
    /// Always "tcp".
    pub transport: &'static str,
    /// "ipv4" or "ipv6".
    #[serde(rename = "type")]
    pub ip_type: &'static str,
    /// Always "tls".
    pub protocol: &'static str,
    /// Community ID v1 of the connection (ECS network.community_id), seed 0 unless --community-id-seed says otherwise; left out under --redact (a hash of the real client address could be brute-forced back to it).
    #[serde(default, skip_serializing_if = "CommunityId::is_none")]
    #[schemars(with = "Option<String>")]
    pub community_id: CommunityId,
}

/// An alert in the report.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertReport {
    /// Frame of the record that carried the alert.
    pub frame: u64,
    /// Sender: client or server.
    pub from: String,
    /// warning, fatal, or unknown when encrypted.
    pub level: String,
    /// RFC name of the alert (e.g. handshake_failure), or "encrypted".
    pub description: String,
    /// The alert was encrypted (its content cannot be read).
    pub encrypted: bool,
    /// Payload length of the alert record in bytes.
    pub record_len: usize,
}

/// TCP facts of a session.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpReport {
    /// SYNs the client sent (retransmissions included).
    pub syn_count: u32,
    /// A SYN-ACK was seen.
    pub syn_ack: bool,
    /// The connection began before the capture (no SYN or SYN-ACK seen).
    pub midstream: bool,
    /// How the connection's record ended (reset, closed, handshake_timeout, idle_timeout, capture_end, evicted).
    pub end: EndKind,
    /// Packets [client→server, server→client].
    pub packets: [u64; 2],
    /// Payload bytes [client→server, server→client].
    pub payload_bytes: [u64; 2],
    /// Segments whose bytes had all been seen before [client→server, server→client].
    pub retransmissions: [u32; 2],
    /// Segments that arrived ahead of a hole [client→server, server→client].
    pub out_of_order: [u32; 2],
    /// Holes never filled [client→server, server→client].
    pub gaps: [u32; 2],
    /// Bytes in those holes [client→server, server→client].
    pub gap_bytes: [u64; 2],
}

/// One session's record.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionReport {
    /// The frame number of the session's first packet: unique, in the order of first packets, the same for any number of threads and in every format (`frame.number == id` in Wireshark).
    pub id: u64,
    /// The client (sender of the SYN, else by port).
    pub client: Addr,
    /// The server (the followed port).
    pub server: Addr,
    /// First packet of the session (RFC 3339, UTC).
    #[schemars(schema_with = "crate::report::schema::date_time")]
    pub start: Timestamp,
    /// Last packet of the session (RFC 3339, UTC).
    #[schemars(schema_with = "crate::report::schema::date_time")]
    pub end: Timestamp,
    /// Milliseconds from the first to the last packet.
    pub duration_ms: f64,
    /// Frame number of the first packet (from 1, across the whole capture).
    pub first_frame: u64,
    /// Frame number of the last packet.
    pub last_frame: u64,
    /// established, failed or incomplete.
    pub outcome: Outcome,
    /// Failed sessions: timeout, protocol, certificate or cipher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// Failed sessions: a reason id from docs/reasons.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::reason")]
    #[serde(default)]
    pub reason: Option<String>,
    /// Failed sessions: who ended the handshake (client, server, network, unknown): the sender of the alert, RST or FIN, or for timeouts the peer that went silent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::side")]
    #[serde(default)]
    pub side: Option<String>,
    /// high (explicit evidence), medium (inferred from sizes and timing), low (capture quality limits what can be said).
    #[schemars(schema_with = "crate::report::schema::confidence")]
    pub confidence: String,
    /// Failed sessions: the error a browser (Chrome) most likely showed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_error: Option<String>,
    /// Failed sessions: one line on what to fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Incomplete sessions: midstream, capture_ended, capture_truncated (the snap length cut the handshake's packets), one_direction, server_banner (the server spoke first, the client never sent a byte), tls_not_started (a STARTTLS/proxy preamble that never led to TLS), or no_data for TCP connections without payload and plaintext for plaintext on both sides (neither counted as sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// One sentence for a ticket.
    pub summary: String,
    /// Key events in frame order: frame, time, direction, what.
    pub evidence: Vec<Evidence>,
    /// Evidence entries left out by the cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub evidence_truncated: u32,
    /// Established sessions: problems worth fixing before they fail.
    pub warnings: Vec<Warning>,
    /// Capture-quality problems that lowered the confidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality_notes: Vec<String>,
    /// ECS event fields.
    pub event: EventEcs,
    /// ECS network fields.
    pub network: NetworkEcs,
    /// ECS tls fields (only fields ECS defines).
    pub tls: TlsReport,
    /// JA4 of the ClientHello (FoxIO's specification), e.g. t13d1516h2_8daaf6152771_e5627efa2ab1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// A Wireshark display filter that selects exactly this session's packets in the capture (addresses, ports and frame range); left out under --redact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_filter: Option<DisplayFilter>,
    /// Handshake details beyond ECS.
    pub handshake: Handshake,
    /// TCP facts of the connection.
    pub tcp: TcpReport,
    #[serde(skip)]
    pub start_ts: Timestamp,
    #[serde(skip)]
    pub no_data: bool,
    /// How much of the session this record holds (NDJSON writes a lean record as a lean line).
    #[serde(skip)]
    pub level: Level,
    /// A hello was seen: TLS was found on this server port.
    #[serde(skip)]
    pub tls_seen: bool,
    /// The ClientHello random, when the run's key log has keys for it (carving keeps them).
    #[serde(skip)]
    pub keylog_random: Option<[u8; 32]>,
}

/// How much of a session a record holds (see [`SessionReport::new`], [`SessionReport::lean`],
/// [`SessionReport::brief`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Full,
    Lean,
    Brief,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SessionReport {
    /// Gives each evidence frame of a merged capture its input file and number there.
    pub fn locate_frames(&mut self, origins: &crate::capture::origin::FrameOrigins) {
        for e in &mut self.evidence {
            if let Some((file, n)) = origins.locate(e.frame) {
                e.file = Some(file);
                e.file_frame = Some(n);
            }
        }
    }

    /// Builds the record of one decided session.
    pub fn new(id: u64, tcp: &TcpFacts, tls: &TlsFacts, v: Verdict) -> SessionReport {
        SessionReport::build(id, tcp, tls, v, Level::Full)
    }

    /// A session record for pipelines, in at most about 1 KB: everything a user filters or
    /// joins on (ECS core, verdict, version, cipher, SNI, ALPN, fingerprints and ids, the leaf
    /// certificate's summary and hashes, warnings, the handshake's small facts) without the bulk
    /// (the offered suites, the certificate chain, the evidence). The default for established
    /// sessions in JSON and NDJSON (`--detail full` gives them whole).
    pub fn lean(id: u64, tcp: &TcpFacts, tls: &TlsFacts, v: Verdict) -> SessionReport {
        SessionReport::build(id, tcp, tls, v, Level::Lean)
    }

    /// A session record without the parts only a full listing shows: evidence, handshake
    /// details (offered suites, groups, chain, alerts) and the leaf certificate's ECS fields
    /// are left empty; identity, times, outcome, verdict, warnings and the negotiated
    /// parameters are filled. For reports that count established sessions without showing them
    /// (see [`crate::pipeline::Detail`]).
    pub fn brief(id: u64, tcp: &TcpFacts, tls: &TlsFacts, v: Verdict) -> SessionReport {
        SessionReport::build(id, tcp, tls, v, Level::Brief)
    }

    fn build(id: u64, tcp: &TcpFacts, tls: &TlsFacts, v: Verdict, level: Level) -> SessionReport {
        let full = level == Level::Full;
        // What a pipeline filters and joins on: in full and lean records, never in brief ones.
        let ids = level != Level::Brief;
        let (evidence, evidence_truncated) = if full {
            crate::diagnose::evidence(tcp, tls, &v)
        } else {
            (Vec::new(), 0)
        };
        let f = v.failure;
        let sh = tls.server_hello.as_ref();
        let ch = tls.client_hello.as_ref();
        let leaf = tls.server_certificates.first();
        // Fingerprints only where a report shows them: a brief record (an established session of
        // a text report) never does.
        let client_ids = ch.filter(|_| ids).map(|c| crate::tls::fingerprint::client_ids(c));
        let ja3s = sh.filter(|_| ids).map(|s| crate::tls::fingerprint::server_id(s));
        let tls_report = TlsReport {
            // ECS and Elastic's own pipelines write SSL 3.0 as "3.0" with version_protocol "ssl".
            version: sh.map(|s| match s.version {
                crate::tls::names::Version::SSL2 => "2.0".into(),
                crate::tls::names::Version::SSL3 => "3.0".into(),
                v => v.short(),
            }),
            version_protocol: if sh.is_some_and(|s| s.version <= crate::tls::names::Version::SSL3) {
                "ssl"
            } else {
                "tls"
            },
            cipher: sh.map(|s| s.cipher_suite.to_string()),
            curve: sh
                .and_then(|s| s.group)
                .or(tls.server_key_exchange_group)
                .map(|g| g.to_string()),
            next_protocol: sh.and_then(|s| s.alpn.clone()),
            established: v.outcome == Outcome::Established,
            resumed: resumed(tls),
            client: TlsClientEcs {
                server_name: ch.and_then(|c| c.server_name.clone()),
                supported_ciphers: ch
                    .filter(|_| full)
                    .map(|c| c.cipher_suites.iter().map(|s| static_or(s.name(), s)).collect())
                    .unwrap_or_default(),
                ja3: client_ids.as_ref().and_then(|c| c.0.clone()),
            },
            server: if !ids {
                TlsServerEcs {
                    ja3s: ja3s.clone(),
                    ..TlsServerEcs::default()
                }
            } else {
                TlsServerEcs {
                    x509: leaf.filter(|c| c.parse_error.is_none()).map(|c| X509::from(&**c)),
                    hash: leaf.map(|c| Hash {
                        sha256: c.sha256.to_uppercase(),
                        sha1: c.sha1.to_uppercase(),
                    }),
                    not_after: leaf
                        .filter(|c| c.parse_error.is_none())
                        .map(|c| secs_rfc3339(c.not_after)),
                    not_before: leaf
                        .filter(|c| c.parse_error.is_none())
                        .map(|c| secs_rfc3339(c.not_before)),
                    ja3s: ja3s.clone(),
                }
            },
        };
        let handshake = if level == Level::Brief {
            Handshake::default()
        } else {
            Handshake {
                offered_versions: ch
                    .map(|c| c.offered_versions().iter().map(|v| Cow::Owned(v.short())).collect())
                    .unwrap_or_default(),
                supported_groups: ch
                    .map(|c| c.supported_groups.iter().map(|g| static_or(g.name(), g)).collect())
                    .unwrap_or_default(),
                key_share_groups: ch
                    .map(|c| c.key_share_groups.iter().map(|g| static_or(g.name(), g)).collect())
                    .unwrap_or_default(),
                alpn: ch.map(|c| c.alpn.clone()).unwrap_or_default(),
                // A TLS 1.3 client's session id is a compatibility placeholder, unless a TLS 1.2
                // server took it up and resumed.
                resumption_attempt: ch
                    .is_some_and(|c| c.resumption_attempt() || (c.session_id_len > 0 && !c.max_version().is_tls13()))
                    || resumed(tls),
                sslv2_format: ch.is_some_and(|c| c.sslv2_format),
                client_certificate_count: tls.client_certificate.map(|(_, n)| n),
                certificate_requested: tls.certificate_request.is_some(),
                hello_retry_request: tls.hello_retry_request.is_some(),
                certificate_chain: if full {
                    tls.server_certificates.iter().map(|c| ChainCert::from(&**c)).collect()
                } else {
                    Vec::new()
                },
                history: tls.history.clone(),
                alerts: tls
                    .alerts
                    .iter()
                    .map(|a| AlertReport {
                        frame: a.at.frame,
                        from: a.direction.sender().to_string(),
                        level: match a.level {
                            Some(1) => "warning".into(),
                            Some(2) => "fatal".into(),
                            Some(n) => format!("level_{n}"),
                            None => "unknown".into(),
                        },
                        description: a
                            .description
                            .map(|d| d.name().map(String::from).unwrap_or(format!("alert_{}", d.0)))
                            .unwrap_or_else(|| "encrypted".into()),
                        encrypted: a.encrypted,
                        record_len: a.record_len,
                    })
                    .collect(),
                encrypted_records: tls.encrypted_records.0,
                lost_sync: tls.lost_sync.0,
                preamble: tls.preamble.as_deref().map(PreambleReport::of),
                decryption: tls.keys.as_deref().map(super::decryption::DecryptionReport::new),
            }
        };
        let (start, end) = (tcp.first.ts, tcp.last.ts);
        let event = EventEcs {
            kind: "event",
            category: ["network"],
            kind_type: ["connection"],
            dataset: "tlsdiag.session",
            start,
            end,
            duration: tcp.last.ts.nanos_since(tcp.first.ts),
            outcome: match v.outcome {
                Outcome::Established => "success",
                Outcome::Failed => "failure",
                Outcome::Incomplete => "unknown",
            },
        };
        let network = NetworkEcs {
            transport: "tcp",
            ip_type: if tcp.server.ip.is_ipv4() { "ipv4" } else { "ipv6" },
            protocol: "tls",
            community_id: CommunityId::of(tcp.client, tcp.server, 0),
        };
        let d = &tcp.dirs;
        SessionReport {
            id,
            client: tcp.client.into(),
            server: tcp.server.into(),
            start,
            end,
            duration_ms: tcp.last.ts.nanos_since(tcp.first.ts) as f64 / 1e6,
            first_frame: tcp.first.frame,
            last_frame: tcp.last.frame,
            outcome: v.outcome,
            cause: f.map(|f| f.reason.cause()),
            reason: f.map(|f| f.reason.id().to_string()),
            side: f.map(|f| f.side.to_string()),
            confidence: v.confidence.id().to_string(),
            browser_error: f.map(|f| f.reason.browser_error().to_string()),
            hint: f.map(|f| f.reason.hint().to_string()),
            incomplete_reason: v.incomplete_reason.map(String::from),
            summary: v.summary,
            evidence,
            evidence_truncated,
            warnings: v.warnings,
            quality_notes: v.quality_notes,
            event,
            network,
            tls: tls_report,
            ja4: client_ids.filter(|_| ch.is_some_and(|c| !c.sslv2_format)).map(|c| c.1),
            display_filter: ids.then(|| DisplayFilter::of(tcp)),
            handshake,
            tcp: TcpReport {
                syn_count: tcp.syn_count,
                syn_ack: tcp.syn_ack.is_some(),
                midstream: tcp.midstream,
                end: tcp.end,
                packets: d.0.each_ref().map(|x| x.packets),
                payload_bytes: d.0.each_ref().map(|x| x.payload_bytes),
                retransmissions: d.0.each_ref().map(|x| x.retransmissions),
                out_of_order: d.0.each_ref().map(|x| x.out_of_order),
                gaps: d.0.each_ref().map(|x| x.gaps),
                gap_bytes: d.0.each_ref().map(|x| x.gap_bytes),
            },
            start_ts: tcp.first.ts,
            no_data: v.no_data,
            tls_seen: tls.tls_seen(),
            level,
            keylog_random: tls.keys.as_ref().and_then(|k| k.client_random),
        }
    }

    /// Sets `network.community_id` for the run's options: computed with `seed`, or left out
    /// (`None`, for --redact: it is a hash of the real client address).
    pub fn set_community_id(&mut self, seed: Option<u16>) {
        self.network.community_id = match seed {
            Some(seed) => CommunityId::of(self.client.endpoint(), self.server.endpoint(), seed),
            None => CommunityId::default(),
        };
    }

    /// The identifiers other tools join on, for a session header: Community ID, JA4, JA3, JA3S.
    pub fn ids(&self) -> Vec<String> {
        let community_id = self.network.community_id.value();
        [
            ("community_id", community_id.as_deref()),
            ("ja4", self.ja4.as_deref()),
            ("ja3", self.tls.client.ja3.as_deref()),
            ("ja3s", self.tls.server.ja3s.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
        .collect()
    }

    /// The SNI, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.tls.client.server_name.as_deref()
    }
}

/// Whether the session resumed an earlier one (session id echo, or an accepted PSK).
fn resumed(tls: &TlsFacts) -> bool {
    match (&tls.client_hello, &tls.server_hello) {
        (Some(_), Some(sh)) if sh.version.is_tls13() => sh.psk_accepted,
        (Some(ch), Some(sh)) => {
            (ch.session_id_len > 0
                && !sh.session_id.is_empty()
                && tls.server_certificate.is_none()
                && tls.ccs[Direction::ToClient].is_some())
                || (ch.session_ticket && tls.server_certificate.is_none() && tls.ccs[Direction::ToClient].is_some())
        }
        _ => false,
    }
}

/// Counts and facts of the whole capture.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSummary {
    /// Input files, in the order given.
    pub files: Vec<String>,
    /// Frames read (all link types and protocols).
    pub packets: u64,
    /// Captured bytes of all frames.
    pub bytes: u64,
    /// Time of the first frame (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    #[serde(default)]
    pub first_ts: Option<String>,
    /// Time of the last frame (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    #[serde(default)]
    pub last_ts: Option<String>,
    /// Seconds from the first to the last frame.
    pub duration_s: f64,
    /// TCP segments to or from the followed ports.
    pub tcp_packets_on_ports: u64,
    /// TLS server ports followed.
    pub ports: Vec<u16>,
    /// Non-fatal problems by key (corrupt blocks, fragments, snaplen cuts, caps breached …).
    pub anomalies: BTreeMap<String, u64>,
    /// Inputs that ended early, with the reason.
    pub input_problems: Vec<String>,
    /// The filters that selected the sessions of this report (absent: every session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// With a filter: the sessions of the capture before filtering (counts.sessions is how many were selected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_total: Option<u64>,
    /// With a filter: the failed sessions of the capture before filtering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_total: Option<u64>,
    /// Client addresses were replaced by pseudonyms.
    pub redacted: bool,
}

/// Session counts.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// TLS sessions (TCP connections on the followed ports that carried data or failed at TCP level).
    pub sessions: u64,
    /// Sessions whose handshake completed.
    pub established: u64,
    /// Sessions that failed (each has a cause and reason).
    pub failed: u64,
    /// Sessions that cannot be judged (capture started or ended mid-handshake, one direction only).
    pub incomplete: u64,
    /// TCP connections that carried no data (health checks), not counted as sessions.
    pub no_data_connections: u64,
    /// Connections on a listed port that spoke plaintext on both sides (plain HTTP on 443): not TLS, not counted as sessions.
    #[serde(default)]
    pub plaintext_connections: u64,
    /// Failed sessions per cause id.
    pub failed_by_cause: BTreeMap<String, u64>,
    /// Failed sessions per reason id.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Established sessions per warning id.
    pub warnings: BTreeMap<String, u64>,
    /// Sessions in which TLS was seen (a ClientHello or ServerHello), per server port: where TLS was found, listed ports or not.
    #[serde(default)]
    pub tls_ports: BTreeMap<u16, u64>,
}

impl Counts {
    /// Adds one session.
    pub fn add(&mut self, s: &SessionReport) {
        if s.no_data {
            if s.incomplete_reason.as_deref() == Some("plaintext") {
                self.plaintext_connections += 1;
            } else {
                self.no_data_connections += 1;
            }
            return;
        }
        self.sessions += 1;
        match s.outcome {
            Outcome::Established => self.established += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Incomplete => self.incomplete += 1,
        }
        if let Some(c) = s.cause {
            *self.failed_by_cause.entry(c.id().to_string()).or_default() += 1;
        }
        if let Some(r) = &s.reason {
            *self.failed_by_reason.entry(r.clone()).or_default() += 1;
        }
        for w in &s.warnings {
            *self.warnings.entry(w.id.to_string()).or_default() += 1;
        }
        if s.tls_seen {
            *self.tls_ports.entry(s.server.port).or_default() += 1;
        }
    }
}

/// The ports TLS was found on, with their session counts: `443 (12), 8443 (1)`.
pub fn tls_ports_line(ports: &BTreeMap<u16, u64>) -> String {
    ports
        .iter()
        .map(|(p, n)| format!("{p} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one server accepted in the established sessions of the capture.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSummary {
    /// Server address and port.
    pub server: Addr,
    /// Established sessions with this server in the capture.
    pub established: u64,
    /// TLS versions it negotiated.
    pub versions: Vec<String>,
    /// Cipher suites it chose.
    pub suites: Vec<String>,
    /// Key-exchange groups it chose.
    pub groups: Vec<String>,
    /// Server names (SNI) clients asked it for.
    pub server_names: Vec<String>,
}

impl ServerSummary {
    /// What it accepted, as one phrase: versions, suites and groups.
    pub fn accepted(&self) -> String {
        let groups = if self.groups.is_empty() {
            String::new()
        } else {
            format!("; groups {}", self.groups.join(", "))
        };
        format!(
            "{}; suites {}{groups}",
            self.versions.join(", "),
            self.suites.join(", ")
        )
    }

    /// Summaries of every profiled server, busiest first.
    pub fn from_profiles(p: &crate::diagnose::ServerProfiles) -> Vec<ServerSummary> {
        let mut v: Vec<ServerSummary> = p
            .iter()
            .map(|(ep, prof)| ServerSummary {
                server: (*ep).into(),
                established: prof.established,
                versions: prof.versions.iter().rev().map(|v| v.to_string()).collect(),
                suites: prof.suites.iter().map(|s| s.to_string()).collect(),
                groups: prof.groups.iter().map(|g| g.to_string()).collect(),
                server_names: prof.server_names.iter().cloned().collect(),
            })
            .collect();
        v.sort_by(|a, b| {
            b.established
                .cmp(&a.established)
                .then(a.server.ip.cmp(&b.server.ip))
                .then(a.server.port.cmp(&b.server.port))
        });
        v
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Version of this document's layout; a change that breaks readers changes the major number.
    pub schema_version: &'static str,
    /// The program and version that wrote the document.
    pub tool: String,
    /// What was read.
    pub capture: CaptureSummary,
    /// Session counts.
    pub counts: Counts,
    /// What each server accepted in established sessions (explains version and cipher failures).
    pub servers: Vec<ServerSummary>,
    /// Every session, in capture order.
    pub sessions: Vec<SessionReport>,
}

/// A known name without allocating, else the value's display form.
fn static_or(name: Option<&'static str>, v: &dyn std::fmt::Display) -> Cow<'static, str> {
    match name {
        Some(n) => Cow::Borrowed(n),
        None => Cow::Owned(v.to_string()),
    }
}

impl Report {
    /// A report of this tool over a capture, with the server profiles it learned; sessions are
    /// added by the caller (or streamed elsewhere).
    pub fn new(capture: CaptureSummary, counts: Counts, profiles: &crate::diagnose::ServerProfiles) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: format!("tlsdiag {}", env!("CARGO_PKG_VERSION")),
            capture,
            counts,
            servers: ServerSummary::from_profiles(profiles),
            sessions: Vec::new(),
        }
    }
}
