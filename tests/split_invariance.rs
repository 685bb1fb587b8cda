//! Verdicts must not depend on how the byte streams were cut into segments.
//!
//! Every sample capture is read once with a recording stream handler; each connection's
//! ordered chunks are then fed to a fresh TLS session coalesced (whole), byte by byte, and at
//! pseudo-random split points, and the verdicts and key TLS facts must be identical.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use tlsdiag::capture::{Capture, Timestamp};
use tlsdiag::diagnose::{Context, Verdict, diagnose};
use tlsdiag::flow::table::{Connection, Decided, FlowConfig, FlowTable};
use tlsdiag::flow::{At, Chunk, Direction, StreamHandler};
use tlsdiag::tls::Session;

#[derive(Default)]
struct Recorder {
    session: Session,
    log: Vec<(Direction, Piece, At)>,
}

#[derive(Clone)]
enum Piece {
    Data(Vec<u8>),
    Gap(u64),
    Cut(u64),
}

impl StreamHandler for Recorder {
    fn on_chunk(&mut self, dir: Direction, chunk: Chunk<'_>, at: At) {
        self.log.push((
            dir,
            match chunk {
                Chunk::Data(d) => Piece::Data(d.to_vec()),
                Chunk::Gap(n) => Piece::Gap(n),
                Chunk::Cut(n) => Piece::Cut(n),
            },
            at,
        ));
        self.session.on_chunk(dir, chunk, at);
    }
    fn wants_data(&self, dir: Direction) -> bool {
        self.session.wants_data(dir)
    }
}

impl Decided for Recorder {
    fn decided(&self) -> bool {
        self.session.decided()
    }
}

fn sample_captures() -> Vec<(PathBuf, Vec<u16>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cases");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("samples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    for d in dirs {
        let mut ports = vec![443u16];
        if let Ok(text) = std::fs::read_to_string(d.join("expected.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                let args: Vec<String> = v["args"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                for w in args.windows(2) {
                    if w[0] == "--port" || w[0] == "-p" {
                        if let Ok(p) = w[1].parse() {
                            ports.push(p);
                        }
                    }
                }
            }
        }
        out.push((d, ports));
    }
    out
}

fn run(dir: &Path, ports: Vec<u16>) -> (Vec<Connection<Recorder>>, Timestamp) {
    let mut cap = Capture::open(&[dir.to_path_buf()]).expect("open");
    let mut table: FlowTable<Recorder> = FlowTable::new(FlowConfig {
        ports,
        // TLS found by content too: the STARTTLS and proxy preambles at every split.
        content: true,
        max_flows: 10_000,
        idle_timeout_ns: 300_000_000_000,
        handshake_timeout_ns: 10_000_000_000,
    });
    let mut done = Vec::new();
    let mut frame = 0;
    let mut last = Timestamp(0);
    while let Some(p) = cap.next_packet() {
        frame += 1;
        last = last.max(p.ts);
        if let Ok(seg) = tlsdiag::decode::decode(p.link, p.data) {
            if table.wants(&seg) {
                table.segment(At { frame, ts: p.ts }, &seg, &mut |c| done.push(*c));
            }
        }
    }
    table.finish_all(&mut |c| done.push(*c));
    (done, last)
}

fn replay(log: &[(Direction, Piece, At)], split: &mut dyn FnMut(usize) -> Vec<usize>) -> Session {
    let mut s = Session::default();
    for (dir, piece, at) in log {
        if !s.wants_data(*dir) {
            continue;
        }
        match piece {
            Piece::Gap(n) => s.on_chunk(*dir, Chunk::Gap(*n), *at),
            Piece::Cut(n) => s.on_chunk(*dir, Chunk::Cut(*n), *at),
            Piece::Data(d) => {
                let mut start = 0;
                for len in split(d.len()) {
                    if !s.wants_data(*dir) {
                        break;
                    }
                    s.on_chunk(*dir, Chunk::Data(&d[start..start + len]), *at);
                    start += len;
                }
            }
        }
    }
    s
}

/// Consecutive data pieces of the same direction merged into one.
fn coalesce(log: &[(Direction, Piece, At)]) -> Vec<(Direction, Piece, At)> {
    let mut out: Vec<(Direction, Piece, At)> = Vec::new();
    for (dir, piece, at) in log {
        if let (Some((d0, Piece::Data(buf), at0)), Piece::Data(d)) = (out.last_mut(), piece) {
            if d0 == dir {
                buf.extend_from_slice(d);
                *at0 = *at;
                continue;
            }
        }
        out.push((*dir, piece.clone(), *at));
    }
    out
}

fn key(v: &Verdict) -> String {
    format!(
        "{:?} {:?} {:?} {:?}",
        v.outcome,
        v.failure.map(|f| f.reason.id()),
        v.failure.map(|f| f.side),
        v.incomplete_reason
    )
}

fn facts_key(s: &Session) -> String {
    let f = s.facts();
    format!(
        "v={:?} sni={:?} certs={} alerts={:?} hist={} enc={:?} preamble={:?}",
        f.version(),
        f.client_hello.as_ref().and_then(|c| c.server_name.clone()),
        f.server_certificates.len(),
        f.alerts
            .iter()
            .map(|a| (a.description, a.encrypted))
            .collect::<Vec<_>>(),
        f.history,
        f.encrypted_records,
        f.preamble
            .as_ref()
            .map(|p| (p.protocol, p.outcome, p.request.clone(), p.reply.clone())),
    )
}

#[test]
fn verdicts_do_not_depend_on_segmentation() {
    let mut checked = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for (dir, ports) in sample_captures() {
        let (conns, end) = run(&dir, ports);
        for c in conns {
            let ctx = Context {
                capture_end: end,
                handshake_timeout_ns: 10_000_000_000,
                profile: None,
            };
            let want = diagnose(&c.tcp, c.handler.session.facts(), &ctx);
            let want_facts = facts_key(&c.handler.session);
            let whole = coalesce(&c.handler.log);
            let variants: Vec<(&str, Session)> = vec![
                ("whole", replay(&whole, &mut |n| vec![n])),
                ("byte by byte", replay(&c.handler.log, &mut |n| vec![1; n])),
                (
                    "random splits",
                    replay(&c.handler.log, &mut |n| {
                        let mut parts = Vec::new();
                        let mut left = n;
                        while left > 0 {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            let take = (1 + (seed % 700) as usize).min(left);
                            parts.push(take);
                            left -= take;
                        }
                        parts
                    }),
                ),
            ];
            for (name, s) in variants {
                let got = diagnose(&c.tcp, s.facts(), &ctx);
                assert_eq!(
                    key(&got),
                    key(&want),
                    "{}: connection from frame {} fed {name}",
                    dir.display(),
                    c.tcp.first.frame
                );
                assert_eq!(
                    facts_key(&s),
                    want_facts,
                    "{}: connection from frame {} fed {name}",
                    dir.display(),
                    c.tcp.first.frame
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} connections checked");
}
