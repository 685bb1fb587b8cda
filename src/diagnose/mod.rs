//! Diagnose: from a connection's TCP and TLS facts to a verdict.
//!
//! What it is: the reason catalog ([`catalog`]) and the classifier ([`diagnose`]) that gives
//! every session an outcome (`established`, `failed`, `incomplete`), and every failure exactly one
//! cause and reason, the side that ended it, a confidence, evidence (frames and times), and for
//! established sessions the warnings worth fixing ([`warnings`]).
//!
//! What it is not: it reads no bytes and keeps no state between sessions, except what the caller
//! passes in [`Context`] (capture end time, timeouts, and what the same server accepted in other
//! sessions of the capture).
//!
//! Guarantees: capture-quality problems (gaps, one direction only, a start outside the capture)
//! lower the confidence or make the session `incomplete`; they never invent a failure. Bytes sent
//! twice with different contents (a forged or corrupted segment) keep a verdict from `high`.

mod after_finished;
mod borrowed;
pub mod catalog;
mod chain;
mod cipher;
mod classify;
mod evidence;
mod keys;
mod preamble;
pub mod profile;
mod quality;
mod sealed_alert;
mod server_abort13;
mod silent_close;
mod stall;
pub mod warnings;

pub use catalog::{Cause, Reason};
pub use classify::diagnose;
pub use evidence::evidence;
pub use preamble::reportable;
pub use profile::{ServerProfile, ServerProfiles};

use crate::capture::Timestamp;
use crate::flow::{Direction, Side};
use schemars::JsonSchema;
use serde::Serialize;

/// How sure the verdict is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    /// The snake_case id.
    pub fn id(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// The session's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Established,
    Failed,
    Incomplete,
}

impl Outcome {
    /// The snake_case id.
    pub fn id(self) -> &'static str {
        match self {
            Outcome::Established => "established",
            Outcome::Failed => "failed",
            Outcome::Incomplete => "incomplete",
        }
    }
}

/// One piece of evidence: a frame, its time, the direction and what was seen.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Frame number, counted from 1 across the whole capture as Wireshark counts them.
    pub frame: u64,
    /// Time of the frame (RFC 3339, UTC).
    #[serde(serialize_with = "ser_ts")]
    #[schemars(schema_with = "crate::report::schema::date_time")]
    pub ts: Timestamp,
    /// to_server (client→server) or to_client (server→client); absent for capture-level facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// What was seen, in words (message, alert, TCP flag, silence).
    pub what: String,
    /// With several input files: the file the frame came from (as named on the command line).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub file: Option<std::sync::Arc<str>>,
    /// With several input files: the frame's number within `file` (what Wireshark shows when
    /// that file is opened alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_frame: Option<u64>,
}

impl Evidence {
    /// An event at `at` (no file reference: the pipeline sees one merged capture).
    pub fn new(at: crate::flow::At, direction: Option<Direction>, what: String) -> Evidence {
        Evidence {
            frame: at.frame,
            ts: at.ts,
            direction,
            what,
            file: None,
            file_frame: None,
        }
    }
}

fn ser_ts<S: serde::Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts.rfc3339())
}

/// A failure: reason (which implies the cause), who ended it, how sure we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub side: Side,
    pub confidence: Confidence,
}

/// A warning on an established session.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// Warning id: cert_expiring_soon, cert_expired, cert_not_yet_valid, legacy_version, no_forward_secrecy, weak_cipher, sni_not_in_certificate, sha1_signature, weak_rsa_key, self_signed_certificate, closed_without_data (TLS 1.3: the client closed right after the handshake without a request).
    pub id: &'static str,
    /// What exactly, in words.
    pub detail: String,
}

/// What the classifier concluded for one session.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub outcome: Outcome,
    pub failure: Option<Failure>,
    /// Confidence of the outcome itself (for established and incomplete sessions too).
    pub confidence: Confidence,
    /// Why an `incomplete` session could not be judged.
    pub incomplete_reason: Option<&'static str>,
    /// One sentence a support engineer can paste into a ticket.
    pub summary: String,
    /// The time the session was judged at (the capture's end, or the deadline that expired):
    /// the end of the silence the evidence reports.
    pub judged_at: Timestamp,
    pub warnings: Vec<Warning>,
    /// Capture-quality notes that lowered the confidence.
    pub quality_notes: Vec<String>,
    /// A TCP connection that carried no payload and did not fail at TCP level (health check).
    pub no_data: bool,
    /// The verdict depends on what the server accepted in other sessions: re-check at the end.
    pub uses_profile: bool,
    /// Where a certificate borrowed from another session of the same server was seen.
    pub borrowed: Option<Evidence>,
}

/// What the classifier may know beyond the session itself.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Time of the last packet of the capture (or the live clock when deciding live).
    pub capture_end: Timestamp,
    pub handshake_timeout_ns: i64,
    /// What the same server accepted in other sessions, if known.
    pub profile: Option<&'a ServerProfile>,
}
