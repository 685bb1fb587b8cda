//! The one report model every printer reads: a capture summary and one record per session.

use crate::capture::Timestamp;
use crate::diagnose::{Cause, Evidence, Outcome, Verdict, Warning};
use crate::flow::{EndKind, Endpoint, TcpFacts};
use crate::tls::TlsFacts;
use crate::tls::cert::{CertInfo, secs_rfc3339};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// Version of the JSON document layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: &str = "1.0";

/// An address and port.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Addr {
    pub ip: String,
    pub port: u16,
}

impl From<Endpoint> for Addr {
    fn from(e: Endpoint) -> Addr {
        Addr {
            ip: e.ip.to_string(),
            port: e.port,
        }
    }
}

/// A distinguished name in ECS form.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DistinguishedName {
    pub distinguished_name: String,
    pub common_name: Vec<String>,
}

impl DistinguishedName {
    fn from_dn(dn: &str) -> DistinguishedName {
        DistinguishedName {
            distinguished_name: dn.to_string(),
            common_name: dn
                .split(',')
                .filter_map(|p| p.trim().strip_prefix("CN=").map(String::from))
                .collect(),
        }
    }
}

/// Certificate fields with Elastic Common Schema `x509.*` names, plus our own facts.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct X509 {
    pub subject: DistinguishedName,
    pub issuer: DistinguishedName,
    pub serial_number: String,
    pub not_before: String,
    pub not_after: String,
    pub alternative_names: Vec<String>,
    pub public_key_algorithm: String,
    pub public_key_size: usize,
    pub signature_algorithm: String,
}

impl From<&CertInfo> for X509 {
    fn from(c: &CertInfo) -> X509 {
        let mut names = c.san_dns.clone();
        names.extend(c.san_ip.iter().cloned());
        X509 {
            subject: DistinguishedName::from_dn(&c.subject),
            issuer: DistinguishedName::from_dn(&c.issuer),
            serial_number: c.serial.clone(),
            not_before: secs_rfc3339(c.not_before),
            not_after: secs_rfc3339(c.not_after),
            alternative_names: names,
            public_key_algorithm: c.key_type.clone(),
            public_key_size: c.key_bits,
            signature_algorithm: c.signature_algorithm.clone(),
        }
    }
}

/// One certificate of the server's chain, with what we judged of it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ChainCert {
    pub x509: X509,
    pub sha256: String,
    pub self_signed: bool,
    pub is_ca: bool,
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
pub struct TlsClientEcs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub supported_ciphers: Vec<String>,
}

/// ECS `hash.*`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Hash {
    pub sha256: String,
}

/// ECS `tls.server.*`.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct TlsServerEcs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
}

/// ECS `tls.*`: only fields the Elastic Common Schema defines.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct TlsReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub version_protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_protocol: Option<String>,
    pub established: bool,
    pub resumed: bool,
    pub client: TlsClientEcs,
    pub server: TlsServerEcs,
}

/// Our handshake details beyond ECS.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Handshake {
    pub offered_versions: Vec<String>,
    pub supported_groups: Vec<String>,
    pub key_share_groups: Vec<String>,
    pub alpn: Vec<String>,
    pub resumption_attempt: bool,
    pub sslv2_format: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate_count: Option<usize>,
    pub certificate_requested: bool,
    pub hello_retry_request: bool,
    /// The server's chain as sent, leaf first.
    pub certificate_chain: Vec<ChainCert>,
    /// Message history: client upper case, server lower case (as Zeek's ssl_history).
    pub history: String,
    pub alerts: Vec<AlertReport>,
    /// Encrypted records seen [client→server, server→client].
    pub encrypted_records: [u64; 2],
    /// Times the record framing lost sync after missing bytes [client→server, server→client].
    pub lost_sync: [u32; 2],
}

/// ECS `event.*` for a session.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct EventEcs {
    pub kind: &'static str,
    pub category: [&'static str; 1],
    #[serde(rename = "type")]
    pub kind_type: [&'static str; 1],
    pub dataset: &'static str,
    pub start: String,
    pub end: String,
    /// Nanoseconds.
    pub duration: i64,
    /// `success` (established), `failure` (failed) or `unknown` (incomplete).
    pub outcome: &'static str,
}

/// ECS `network.*`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NetworkEcs {
    pub transport: &'static str,
    #[serde(rename = "type")]
    pub ip_type: &'static str,
    pub protocol: &'static str,
}

/// An alert in the report.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AlertReport {
    pub frame: u64,
    pub from: String,
    pub level: String,
    pub description: String,
    pub encrypted: bool,
    pub record_len: usize,
}

/// TCP facts of a session.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TcpReport {
    pub syn_count: u32,
    pub syn_ack: bool,
    pub midstream: bool,
    pub end: EndKind,
    pub packets: [u64; 2],
    pub payload_bytes: [u64; 2],
    pub retransmissions: [u32; 2],
    pub out_of_order: [u32; 2],
    pub gaps: [u32; 2],
    pub gap_bytes: [u64; 2],
}

/// One session's record.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SessionReport {
    pub id: u64,
    pub client: Addr,
    pub server: Addr,
    pub start: String,
    pub end: String,
    pub duration_ms: f64,
    pub first_frame: u64,
    pub last_frame: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    pub confidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    #[serde(skip_serializing_if = "is_zero")]
    pub evidence_truncated: u32,
    pub warnings: Vec<Warning>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quality_notes: Vec<String>,
    pub event: EventEcs,
    pub network: NetworkEcs,
    pub tls: TlsReport,
    pub handshake: Handshake,
    pub tcp: TcpReport,
    #[serde(skip)]
    pub start_ts: Timestamp,
    #[serde(skip)]
    pub no_data: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SessionReport {
    /// Builds the record of one decided session.
    pub fn new(id: u64, tcp: &TcpFacts, tls: &TlsFacts, v: &Verdict) -> SessionReport {
        let f = v.failure;
        let sh = tls.server_hello.as_ref();
        let ch = tls.client_hello.as_ref();
        let leaf = tls.server_certificates.first();
        let tls_report = TlsReport {
            version: sh.map(|s| s.version.short()),
            version_protocol: if sh.is_some_and(|s| s.version <= crate::tls::names::Version::SSL3) {
                "ssl"
            } else {
                "tls"
            },
            cipher: sh.map(|s| s.cipher_suite.to_string()),
            curve: sh.and_then(|s| s.group).map(|g| g.to_string()),
            next_protocol: sh.and_then(|s| s.alpn.clone()),
            established: v.outcome == Outcome::Established,
            resumed: resumed(tls),
            client: TlsClientEcs {
                server_name: ch.and_then(|c| c.server_name.clone()),
                supported_ciphers: ch
                    .map(|c| c.cipher_suites.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
            },
            server: TlsServerEcs {
                x509: leaf.filter(|c| c.parse_error.is_none()).map(X509::from),
                hash: leaf.map(|c| Hash {
                    sha256: c.sha256.to_uppercase(),
                }),
                not_after: leaf
                    .filter(|c| c.parse_error.is_none())
                    .map(|c| secs_rfc3339(c.not_after)),
                not_before: leaf
                    .filter(|c| c.parse_error.is_none())
                    .map(|c| secs_rfc3339(c.not_before)),
            },
        };
        let handshake = Handshake {
            offered_versions: ch
                .map(|c| c.offered_versions().iter().map(|v| v.short()).collect())
                .unwrap_or_default(),
            supported_groups: ch
                .map(|c| c.supported_groups.iter().map(|g| g.to_string()).collect())
                .unwrap_or_default(),
            key_share_groups: ch
                .map(|c| c.key_share_groups.iter().map(|g| g.to_string()).collect())
                .unwrap_or_default(),
            alpn: ch.map(|c| c.alpn.clone()).unwrap_or_default(),
            resumption_attempt: ch.is_some_and(|c| c.resumption_attempt() || c.session_id_len > 0),
            sslv2_format: ch.is_some_and(|c| c.sslv2_format),
            client_certificate_count: tls.client_certificate.map(|(_, n)| n),
            certificate_requested: tls.certificate_request.is_some(),
            hello_retry_request: tls.hello_retry_request.is_some(),
            certificate_chain: tls.server_certificates.iter().map(ChainCert::from).collect(),
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
            encrypted_records: tls.encrypted_records,
            lost_sync: tls.lost_sync,
        };
        let event = EventEcs {
            kind: "event",
            category: ["network"],
            kind_type: ["connection"],
            dataset: "tlsdiag.session",
            start: tcp.first.ts.rfc3339(),
            end: tcp.last.ts.rfc3339(),
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
        };
        let d = &tcp.dirs;
        SessionReport {
            id,
            client: tcp.client.into(),
            server: tcp.server.into(),
            start: tcp.first.ts.rfc3339(),
            end: tcp.last.ts.rfc3339(),
            duration_ms: tcp.last.ts.nanos_since(tcp.first.ts) as f64 / 1e6,
            first_frame: tcp.first.frame,
            last_frame: tcp.last.frame,
            outcome: v.outcome,
            cause: f.map(|f| f.reason.cause()),
            reason: f.map(|f| f.reason.id().to_string()),
            side: f.map(|f| f.side.to_string()),
            confidence: format!("{:?}", v.confidence).to_lowercase(),
            browser_error: f.map(|f| f.reason.browser_error().to_string()),
            hint: f.map(|f| f.reason.hint().to_string()),
            incomplete_reason: v.incomplete_reason.map(String::from),
            summary: v.summary.clone(),
            evidence: v.evidence.clone(),
            evidence_truncated: v.evidence_truncated,
            warnings: v.warnings.clone(),
            quality_notes: v.quality_notes.clone(),
            event,
            network,
            tls: tls_report,
            handshake,
            tcp: TcpReport {
                syn_count: tcp.syn_count,
                syn_ack: tcp.syn_ack.is_some(),
                midstream: tcp.midstream,
                end: tcp.end,
                packets: [d[0].packets, d[1].packets],
                payload_bytes: [d[0].payload_bytes, d[1].payload_bytes],
                retransmissions: [d[0].retransmissions, d[1].retransmissions],
                out_of_order: [d[0].out_of_order, d[1].out_of_order],
                gaps: [d[0].gaps, d[1].gaps],
                gap_bytes: [d[0].gap_bytes, d[1].gap_bytes],
            },
            start_ts: tcp.first.ts,
            no_data: v.no_data,
        }
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
                && tls.ccs[1].is_some())
                || (ch.session_ticket && tls.server_certificate.is_none() && tls.ccs[1].is_some())
        }
        _ => false,
    }
}

/// Counts and facts of the whole capture.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct CaptureSummary {
    pub files: Vec<String>,
    pub packets: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<String>,
    pub duration_s: f64,
    pub tcp_packets_on_ports: u64,
    pub ports: Vec<u16>,
    /// Non-fatal problems by key (corrupt blocks, fragments, snaplen cuts, caps breached …).
    pub anomalies: BTreeMap<String, u64>,
    /// Inputs that ended early, with the reason.
    pub input_problems: Vec<String>,
    /// Sessions left out by the filters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Client addresses were replaced by pseudonyms.
    pub redacted: bool,
}

/// Session counts.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Counts {
    pub sessions: u64,
    pub established: u64,
    pub failed: u64,
    pub incomplete: u64,
    pub no_data_connections: u64,
    pub failed_by_cause: BTreeMap<String, u64>,
    pub failed_by_reason: BTreeMap<String, u64>,
    pub warnings: BTreeMap<String, u64>,
}

impl Counts {
    /// Adds one session.
    pub fn add(&mut self, s: &SessionReport) {
        if s.no_data {
            self.no_data_connections += 1;
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
    }
}

/// What one server accepted in the established sessions of the capture.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ServerSummary {
    pub server: Addr,
    pub established: u64,
    pub versions: Vec<String>,
    pub suites: Vec<String>,
    pub groups: Vec<String>,
    pub server_names: Vec<String>,
}

impl ServerSummary {
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
        v.sort_by(|a, b| b.established.cmp(&a.established).then(a.server.ip.cmp(&b.server.ip)));
        v
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Report {
    pub schema_version: &'static str,
    pub tool: String,
    pub capture: CaptureSummary,
    pub counts: Counts,
    /// What each server accepted in established sessions (explains version and cipher failures).
    pub servers: Vec<ServerSummary>,
    pub sessions: Vec<SessionReport>,
}
