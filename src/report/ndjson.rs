//! The NDJSON printer: one line per session as soon as it is reported, then one summary line.
//! Its JSON Schema ([`schema`]) is committed as docs/schema-ndjson.json.
//!
//! Lines follow the Elastic Common Schema (`@timestamp`, `event.*`, `client.*`, `server.*`,
//! `network.*`, `tls.*`) so standard log shippers can send them unchanged to Elasticsearch,
//! OpenSearch or Splunk; everything of ours lives under `tlsdiag.*`, where `tlsdiag.record`
//! says whether the line is a `session` or the final `summary`.

use super::json::io_error;
use super::model::{Addr, CaptureSummary, CommunityId, Counts, EventEcs, Level, NetworkEcs, Report, SessionReport};
use super::ndjson_parts::{HandshakeLine, TcpLine, TlsLine};
use crate::diagnose::{Cause, Evidence, Outcome, Warning};
use schemars::JsonSchema;
use serde::Serialize;
use std::io::{self, Write};

/// The ECS release whose field reference the lines follow (elastic/ecs `generated/ecs/ecs_flat.yml`,
/// checked by tests/ecs.rs against `../shared/reference/ecs_flat.yml`).
pub const ECS_VERSION: &str = "8.17.0";

#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Ecs {
    /// The ECS release the line follows.
    version: &'static str,
}

/// ECS `event.*` of a session line: the session's event fields plus the reason id.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EventLine<'a> {
    /// ECS event.kind: always "event".
    kind: &'static str,
    /// ECS event.category: ["network"].
    category: [&'static str; 1],
    /// ECS event.type: ["connection"].
    #[serde(rename = "type")]
    kind_type: [&'static str; 1],
    /// ECS event.dataset: "tlsdiag.session".
    dataset: &'static str,
    /// First packet of the session (RFC 3339, UTC). Full lines only (lean: `@timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    start: Option<&'a crate::capture::Timestamp>,
    /// Last packet of the session (RFC 3339, UTC). Full lines only (lean: `@timestamp` + `event.duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    end: Option<&'a crate::capture::Timestamp>,
    /// Nanoseconds.
    duration: i64,
    /// `success` (established), `failure` (failed) or `unknown` (incomplete).
    outcome: &'static str,
    /// ECS event.reason: the reason id of a failure (docs/reasons.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::reason")]
    reason: Option<&'a str>,
}

impl<'a> EventLine<'a> {
    fn of(e: &'a EventEcs, reason: Option<&'a str>, full: bool) -> EventLine<'a> {
        EventLine {
            kind: e.kind,
            category: e.category,
            kind_type: e.kind_type,
            dataset: e.dataset,
            start: full.then_some(&e.start),
            end: full.then_some(&e.end),
            duration: e.duration,
            outcome: e.outcome,
            reason,
        }
    }
}

/// A session's NDJSON line: ECS fields, ours under `tlsdiag`.
///
/// A session line is full (failed and incomplete sessions; every session with `--detail full`)
/// or lean (established sessions by default): a lean line keeps every field a user filters or
/// joins on and leaves out the bulk (offered lists, chain, evidence), copies of values another
/// field holds (`source`/`destination` = `client`/`server`, `event.start` = `@timestamp`,
/// `event.end` = `@timestamp` + `event.duration`, `tlsdiag.first_frame` = `tlsdiag.id`;
/// `message` and `tlsdiag.summary` restate `tls.*`; `tlsdiag.display_filter` is built from the
/// addresses and frames) and facts at their usual value. Required fields are in every session
/// line; the descriptions say which others a lean line leaves out.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SessionLine<'a> {
    /// The session's first packet (RFC 3339, UTC).
    #[serde(rename = "@timestamp")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    timestamp: &'a crate::capture::Timestamp,
    ecs: Ecs,
    /// ECS message: the session's summary sentence. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    /// ECS event.
    event: EventLine<'a>,
    /// ECS source: the connection's initiator, as `client`. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a Addr>,
    /// ECS destination: the responder, as `server`. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a Addr>,
    /// ECS client.
    client: &'a Addr,
    /// ECS server.
    server: &'a Addr,
    /// ECS network.
    network: NetworkLine<'a>,
    /// ECS tls: only on a connection that carried TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsLine<'a>>,
    /// tlsdiag's own fields.
    tlsdiag: SessionNs<'a>,
}

/// The last NDJSON line of a run: the capture and its counts under `tlsdiag`.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SummaryLine<'a> {
    /// The capture's last packet (the time of writing for an empty capture).
    #[serde(rename = "@timestamp")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    timestamp: String,
    ecs: Ecs,
    /// tlsdiag's own fields.
    tlsdiag: SummaryNs<'a>,
}

/// ECS `network.*` of a session line: `network.protocol` only when the connection carried TLS.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NetworkLine<'a> {
    transport: &'a str,
    #[serde(rename = "type")]
    ip_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    /// Community ID v1 of the connection (left out under --redact).
    #[serde(skip_serializing_if = "CommunityId::is_none")]
    #[schemars(with = "Option<String>")]
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

/// Our fields of one session, under `tlsdiag.*` (as in the JSON document's sessions).
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SessionNs<'a> {
    /// "session".
    record: &'static str,
    /// Version of tlsdiag's fields (as the JSON document's).
    schema_version: &'static str,
    /// The frame number of the session's first packet (as the JSON document's `id`).
    id: u64,
    /// established, failed or incomplete.
    outcome: Outcome,
    /// Failed sessions: timeout, protocol, certificate or cipher.
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    /// Failed sessions: a reason id from docs/reasons.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::reason")]
    reason: Option<&'a str>,
    /// Failed sessions: who ended the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::report::schema::side")]
    side: Option<&'a str>,
    /// high, medium or low.
    #[schemars(schema_with = "crate::report::schema::confidence")]
    confidence: &'a str,
    /// Failed sessions: the error a browser (Chrome) most likely showed.
    #[serde(skip_serializing_if = "Option::is_none")]
    browser_error: Option<&'a str>,
    /// Failed sessions: one line on what to fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    /// Incomplete sessions: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete_reason: Option<&'a str>,
    /// One sentence for a ticket (also ECS `message`). Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    /// Frame number of the first packet. Full lines only (lean: `tlsdiag.id`, the same number).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_frame: Option<u64>,
    /// Frame number of the last packet.
    last_frame: u64,
    /// Key events in frame order. Full lines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a [Evidence]>,
    /// Evidence entries left out by the cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    evidence_truncated: u32,
    /// Established sessions: problems worth fixing before they fail (lean lines: left out when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [Warning]>,
    /// Capture-quality problems that lowered the confidence.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    quality_notes: &'a [String],
    /// JA4 of the ClientHello.
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    /// A Wireshark display filter selecting exactly this session's packets (full lines only, not under --redact; lean: `client`, `server`, `tlsdiag.id` and `tlsdiag.last_frame` say the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    display_filter: Option<&'a super::ids::DisplayFilter>,
    /// Handshake details beyond ECS.
    handshake: HandshakeLine<'a>,
    /// TCP facts of the connection.
    tcp: TcpLine,
}

/// Our fields of the summary line.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SummaryNs<'a> {
    /// "summary".
    record: &'static str,
    /// Version of tlsdiag's fields.
    schema_version: &'static str,
    /// The capture (as the JSON document's `capture`).
    capture: &'a CaptureSummary,
    /// Sessions by outcome, cause and reason (as the JSON document's `counts`).
    counts: &'a Counts,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

thread_local! {
    /// The line being written, kept between lines (grown once to the longest line).
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Serializes `line` into one buffer and hands it to `out` whole: one write per line, not one
/// per field, and never half a line in the output.
fn write_line(out: &mut dyn Write, line: &impl Serialize) -> io::Result<()> {
    LINE.with_borrow_mut(|buf| {
        buf.clear();
        serde_json::to_writer(&mut *buf, line).map_err(io_error)?;
        buf.push(b'\n');
        out.write_all(buf)
    })
}

/// Writes one session as one line.
pub fn write_session(out: &mut dyn Write, s: &SessionReport) -> io::Result<()> {
    // A connection that carried no TLS (refused, unanswered, another protocol) has no tls.*.
    let carried_tls =
        s.tls.client.ja3.is_some() || s.ja4.is_some() || s.tls.version.is_some() || !s.handshake.history.is_empty();
    // Established sessions are lean unless the run asked for every session in full.
    let full = s.level != Level::Lean;
    let line = SessionLine {
        timestamp: &s.start,
        ecs: Ecs { version: ECS_VERSION },
        message: full.then_some(s.summary.as_str()),
        event: EventLine::of(&s.event, s.reason.as_deref(), full),
        source: full.then_some(&s.client),
        destination: full.then_some(&s.server),
        client: &s.client,
        server: &s.server,
        network: NetworkLine::of(&s.network, carried_tls),
        tls: carried_tls.then(|| TlsLine::of(&s.tls, full)),
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
            summary: full.then_some(s.summary.as_str()),
            first_frame: full.then_some(s.first_frame),
            last_frame: s.last_frame,
            evidence: full.then_some(s.evidence.as_slice()),
            evidence_truncated: s.evidence_truncated,
            warnings: (full || !s.warnings.is_empty()).then_some(s.warnings.as_slice()),
            quality_notes: &s.quality_notes,
            ja4: s.ja4.as_deref(),
            display_filter: s.display_filter.as_ref().filter(|_| full),
            handshake: HandshakeLine::of(&s.handshake, full),
            tcp: TcpLine::of(&s.tcp, full),
        },
    };
    write_line(out, &line)
}

/// Writes the final summary line (`tlsdiag.record` = `summary`).
pub fn write_summary(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    // An empty capture has no packet time: the summary is then stamped with the time it is written.
    let timestamp = r
        .capture
        .last_ts
        .clone()
        .unwrap_or_else(|| crate::capture::Timestamp::now().rfc3339());
    let line = SummaryLine {
        timestamp,
        ecs: Ecs { version: ECS_VERSION },
        tlsdiag: SummaryNs {
            record: "summary",
            schema_version: super::model::SCHEMA_VERSION,
            capture: &r.capture,
            counts: &r.counts,
        },
    };
    write_line(out, &line)
}

/// Any NDJSON line: a session, or the final summary (`tlsdiag.record` says which).
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "built only for its JSON Schema")]
enum AnyLine<'a> {
    Session(Box<SessionLine<'a>>),
    Summary(Box<SummaryLine<'a>>),
}

/// The JSON Schema of one NDJSON line (committed as docs/schema-ndjson.json).
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(AnyLine<'static>)
}
