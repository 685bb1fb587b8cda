//! The NDJSON printer: one line per session as soon as it is decided, then one summary line.
//!
//! Lines follow the Elastic Common Schema (`@timestamp`, `event.*`, `client.*`, `server.*`,
//! `network.*`, `tls.*`) so standard log shippers can send them unchanged to Elasticsearch,
//! OpenSearch or Splunk; everything of ours lives under `tlsdiag.*`, where `tlsdiag.record`
//! says whether the line is a `session` or the final `summary`.

use super::json::io_error;
use super::model::{
    Addr, CaptureSummary, CommunityId, Counts, EventEcs, Handshake, NetworkEcs, Report, SessionReport, TcpReport,
    TlsReport,
};
use crate::diagnose::{Cause, Evidence, Outcome, Warning};
use serde::Serialize;
use std::io::{self, Write};

/// The ECS release whose field reference the lines follow (elastic/ecs `generated/ecs/ecs_flat.yml`,
/// checked by tests/ecs.rs against `../shared/reference/ecs_flat.yml`).
pub const ECS_VERSION: &str = "8.17.0";

#[derive(Serialize)]
struct Ecs {
    version: &'static str,
}

/// ECS `event.*` of a session line: the session's event fields plus the reason id.
#[derive(Serialize)]
struct EventLine<'a> {
    #[serde(flatten)]
    event: &'a EventEcs,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: Ecs,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<EventLine<'a>>,
    /// ECS source/destination: the connection's initiator and responder, as client/server.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<NetworkLine<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a TlsReport>,
    tlsdiag: T,
}

/// ECS `network.*` of a session line: `network.protocol` only when the connection carried TLS.
#[derive(Serialize)]
struct NetworkLine<'a> {
    transport: &'a str,
    #[serde(rename = "type")]
    ip_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "CommunityId::is_none")]
    community_id: &'a CommunityId,
}

impl<'a> NetworkLine<'a> {
    fn of(n: &'a NetworkEcs, carried_tls: bool) -> NetworkLine<'a> {
        NetworkLine {
            transport: n.transport,
            ip_type: n.ip_type,
            protocol: carried_tls.then_some(n.protocol),
            community_id: &n.community_id,
        }
    }
}

/// Our fields of one session, under `tlsdiag.*`.
#[derive(Serialize)]
struct SessionNs<'a> {
    record: &'static str,
    schema_version: &'static str,
    id: u64,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    side: Option<&'a str>,
    confidence: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    browser_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete_reason: Option<&'a str>,
    summary: &'a str,
    first_frame: u64,
    last_frame: u64,
    evidence: &'a [Evidence],
    warnings: &'a [Warning],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    quality_notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_filter: Option<&'a str>,
    handshake: &'a Handshake,
    tcp: &'a TcpReport,
}

/// Our fields of the summary line.
#[derive(Serialize)]
struct SummaryNs<'a> {
    record: &'static str,
    schema_version: &'static str,
    capture: &'a CaptureSummary,
    counts: &'a Counts,
}

/// Writes one session as one line.
pub fn write_session(out: &mut dyn Write, s: &SessionReport) -> io::Result<()> {
    // A connection that carried no TLS (refused, unanswered, another protocol) has no tls.*.
    let carried_tls =
        s.tls.client.ja3.is_some() || s.ja4.is_some() || s.tls.version.is_some() || !s.handshake.history.is_empty();
    let line = Line {
        timestamp: s.start.rfc3339(),
        ecs: Ecs { version: ECS_VERSION },
        message: Some(&s.summary),
        event: Some(EventLine {
            event: &s.event,
            reason: s.reason.as_deref(),
        }),
        source: Some(&s.client),
        destination: Some(&s.server),
        client: Some(&s.client),
        server: Some(&s.server),
        network: Some(NetworkLine::of(&s.network, carried_tls)),
        tls: carried_tls.then_some(&s.tls),
        tlsdiag: SessionNs {
            record: "session",
            schema_version: super::model::SCHEMA_VERSION,
            id: s.id,
            outcome: s.outcome,
            cause: s.cause,
            reason: s.reason.as_deref(),
            side: s.side.as_deref(),
            confidence: &s.confidence,
            browser_error: s.browser_error.as_deref(),
            hint: s.hint.as_deref(),
            incomplete_reason: s.incomplete_reason.as_deref(),
            summary: &s.summary,
            first_frame: s.first_frame,
            last_frame: s.last_frame,
            evidence: &s.evidence,
            warnings: &s.warnings,
            quality_notes: &s.quality_notes,
            ja4: s.ja4.as_deref(),
            display_filter: s.display_filter.as_deref(),
            handshake: &s.handshake,
            tcp: &s.tcp,
        },
    };
    serde_json::to_writer(&mut *out, &line).map_err(io_error)?;
    out.write_all(b"\n")
}

/// Writes the final summary line (`tlsdiag.record` = `summary`).
pub fn write_summary(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    // An empty capture has no packet time: the summary is then stamped with the time it is written.
    let timestamp = r
        .capture
        .last_ts
        .clone()
        .unwrap_or_else(|| crate::capture::Timestamp::now().rfc3339());
    let line = Line {
        timestamp,
        ecs: Ecs { version: ECS_VERSION },
        message: None,
        event: None,
        source: None,
        destination: None,
        client: None,
        server: None,
        network: None,
        tls: None,
        tlsdiag: SummaryNs {
            record: "summary",
            schema_version: super::model::SCHEMA_VERSION,
            capture: &r.capture,
            counts: &r.counts,
        },
    };
    serde_json::to_writer(&mut *out, &line).map_err(io_error)?;
    out.write_all(b"\n")
}
