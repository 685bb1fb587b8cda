//! The pipeline driver: packets in, decided sessions out.
//!
//! [`Analyzer`] is sans-I/O: it takes packets (bytes + packet time) one at a time and hands each
//! session to a sink as soon as it is decided; [`Analyzer::finish`] decides what is left at the
//! end of the capture. Offline and live capture both drive it.

use crate::capture::{Packet, Timestamp};
use crate::decode;
use crate::diagnose::{self, Context, Outcome, ServerProfiles};
use crate::flow::table::{Connection, FlowConfig, FlowTable};
use crate::flow::{At, TcpFacts};
use crate::limits;
use crate::report::model::{CaptureSummary, SessionReport};
use crate::tls::{Session, TlsFacts};
use std::collections::BTreeMap;

/// Analysis settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub ports: Vec<u16>,
    pub handshake_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_flows: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ports: vec![443],
            handshake_timeout_secs: limits::DEFAULT_HANDSHAKE_TIMEOUT_SECS,
            idle_timeout_secs: limits::DEFAULT_IDLE_TIMEOUT_SECS,
            max_flows: limits::DEFAULT_MAX_FLOWS,
        }
    }
}

/// A failed session whose reason depends on what the same server accepted elsewhere; it is
/// decided again with the complete profiles at the end of the capture.
struct Deferred {
    id: u64,
    tcp: TcpFacts,
    tls: Box<TlsFacts>,
}

/// The analysis state of one capture.
pub struct Analyzer {
    opts: Options,
    table: FlowTable<Session>,
    frame: u64,
    first_ts: Option<Timestamp>,
    last_ts: Timestamp,
    bytes: u64,
    tcp_on_ports: u64,
    anomalies: BTreeMap<&'static str, u64>,
    profiles: ServerProfiles,
    next_id: u64,
    deferred: Vec<Deferred>,
    /// When true, failures that depend on server profiles wait for the end of the capture
    /// (better reasons); when false they are decided at once (streaming).
    defer_profile_decisions: bool,
}

impl Analyzer {
    /// A fresh analyzer.
    pub fn new(opts: Options, defer_profile_decisions: bool) -> Analyzer {
        let cfg = FlowConfig {
            ports: opts.ports.clone(),
            max_flows: opts.max_flows,
            idle_timeout_ns: (opts.idle_timeout_secs as i64).saturating_mul(1_000_000_000),
            handshake_timeout_ns: (opts.handshake_timeout_secs as i64).saturating_mul(1_000_000_000),
        };
        Analyzer {
            opts,
            table: FlowTable::new(cfg),
            frame: 0,
            first_ts: None,
            last_ts: Timestamp(0),
            bytes: 0,
            tcp_on_ports: 0,
            anomalies: BTreeMap::new(),
            profiles: ServerProfiles::default(),
            next_id: 1,
            deferred: Vec::new(),
            defer_profile_decisions,
        }
    }

    /// Counts a non-fatal anomaly.
    pub fn anomaly(&mut self, key: &'static str, n: u64) {
        *self.anomalies.entry(key).or_default() += n;
    }

    /// Frames seen so far.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// Takes one captured frame.
    pub fn packet(&mut self, p: &Packet<'_>, sink: &mut dyn FnMut(SessionReport)) {
        self.frame += 1;
        self.bytes += p.data.len() as u64;
        if p.ts < self.last_ts && self.first_ts.is_some() {
            self.anomaly("timestamp_went_backwards", 1);
        } else {
            self.last_ts = p.ts;
        }
        self.first_ts.get_or_insert(p.ts);
        let at = At {
            frame: self.frame,
            ts: p.ts,
        };
        match decode::decode_frame(p.link, p.data, (p.orig_len as usize) > p.data.len()) {
            Ok(seg) => {
                if !self.table.wants(&seg) {
                    return;
                }
                self.tcp_on_ports += 1;
                if seg.missing > 0 {
                    self.anomaly("snaplen_truncated_frames", 1);
                }
                let mut done = Vec::new();
                self.table.segment(at, &seg, &mut |c| done.push(c));
                self.decide_all(done, at.ts, sink);
            }
            Err(skip) => {
                if skip.is_anomaly() {
                    self.anomaly(skip.key(), 1);
                }
            }
        }
    }

    /// Advances packet time without a packet (live mode on an idle interface).
    pub fn tick(&mut self, now: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        let mut done = Vec::new();
        self.table.advance(now, &mut |c| done.push(c));
        self.decide_all(done, now, sink);
    }

    fn decide_all(&mut self, done: Vec<Connection<Session>>, now: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        for c in done {
            self.decide(c, now, sink);
        }
    }

    fn decide(&mut self, c: Connection<Session>, now: Timestamp, sink: &mut dyn FnMut(SessionReport)) {
        let id = self.next_id;
        self.next_id += 1;
        let tls = c.handler.facts;
        for (k, n) in &tls.anomalies {
            self.anomaly(k, *n as u64);
        }
        let ctx = Context {
            capture_end: now.max(self.last_ts),
            handshake_timeout_ns: (self.opts.handshake_timeout_secs as i64).saturating_mul(1_000_000_000),
            profile: self.profiles.get(&c.tcp.server),
        };
        let v = diagnose::diagnose(&c.tcp, &tls, &ctx);
        if v.outcome == Outcome::Established {
            self.profiles.learn(c.tcp.server, &tls);
        }
        if v.uses_profile && self.defer_profile_decisions {
            self.deferred.push(Deferred {
                id,
                tcp: c.tcp,
                tls: Box::new(tls),
            });
            return;
        }
        sink(SessionReport::new(id, &c.tcp, &tls, &v));
    }

    /// Decides every connection still open, then the deferred ones; returns the capture summary.
    pub fn finish(self, sink: &mut dyn FnMut(SessionReport)) -> CaptureSummary {
        self.finish_with_profiles(sink).0
    }

    /// As [`Analyzer::finish`], also returning what each server accepted.
    pub fn finish_with_profiles(mut self, sink: &mut dyn FnMut(SessionReport)) -> (CaptureSummary, ServerProfiles) {
        let mut done = Vec::new();
        self.table.finish_all(&mut |c| done.push(c));
        let end = self.last_ts;
        self.decide_all(done, end, sink);
        for d in std::mem::take(&mut self.deferred) {
            let ctx = Context {
                capture_end: end,
                handshake_timeout_ns: (self.opts.handshake_timeout_secs as i64).saturating_mul(1_000_000_000),
                profile: self.profiles.get(&d.tcp.server),
            };
            let v = diagnose::diagnose(&d.tcp, &d.tls, &ctx);
            sink(SessionReport::new(d.id, &d.tcp, &d.tls, &v));
        }
        let c = &self.table.counters;
        let caps = [
            ("flow_table_full", c.flow_table_full),
            ("reassembly_buffer_full", c.reassembly_buffer_full),
            ("tcp_port_reuse", c.port_reuse),
        ];
        for (k, n) in caps {
            if n > 0 {
                self.anomaly(k, n);
            }
        }
        let summary = CaptureSummary {
            files: Vec::new(),
            packets: self.frame,
            bytes: self.bytes,
            first_ts: self.first_ts.map(|t| t.rfc3339()),
            last_ts: self.first_ts.map(|_| self.last_ts.rfc3339()),
            duration_s: self.first_ts.map(|f| self.last_ts.secs_since(f)).unwrap_or(0.0),
            tcp_packets_on_ports: self.tcp_on_ports,
            ports: self.opts.ports.clone(),
            anomalies: self.anomalies.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            input_problems: Vec::new(),
            filter: None,
            redacted: false,
        };
        (summary, self.profiles)
    }

    /// Server profiles learned so far (for reports).
    pub fn profiles(&self) -> &ServerProfiles {
        &self.profiles
    }
}
