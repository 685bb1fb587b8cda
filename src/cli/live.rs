//! `tlsdiag live` and `tlsdiag interfaces`: the live run loop (cargo feature `live`).
//!
//! What it is: the analysis thread's loop. It takes the batches of packets the capture thread
//! ([`Reader`]) reads, feeds them to the [`Analyzer`], advances its clock every [`TICK`] on an
//! idle interface, prints each session the moment it is decided (one text line, or one NDJSON
//! line), and on Ctrl-C, SIGTERM, `--duration`, `--count` or a closed output decides every
//! session in flight and prints the summary.
//!
//! What it is not: it decides nothing itself, except one thing only the capture can know: a
//! session open while libpcap reported lost packets gets `confidence: low` and a quality note.
//!
//! Guarantees: memory stays flat however long it runs: sessions are written out as they come
//! and only their counts are kept; the analyzer's caps bound the connections in flight; the
//! record of packet losses is bounded ([`MAX_DROP_WINDOWS`]).

use super::args::{LiveArgs, LiveFormat};
use super::outputs::{self, Flag, Output, Target};
use super::run::{EXIT_ERROR, EXIT_FAILED_SESSIONS, EXIT_OK};
use crate::capture::Timestamp;
use crate::capture::live::{self, CaptureFilter, Drops, LiveCapture, LiveConfig, LiveError, Next, Reader};
use crate::pipeline::{Analyzer, Detail, Options};
use crate::report::model::{Counts, Report, SessionReport};
use crate::report::pseudonymize::Redactor;
use crate::report::{ndjson, text};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How often the analyzer's clock advances when no packet comes (so an unanswered SYN is
/// decided within this long of its handshake timeout).
const TICK: Duration = Duration::from_millis(200);

/// How far behind the wall clock the ticks run, so a packet stamped by the kernel just before
/// a tick but not yet read cannot arrive "after" a timeout decided without it.
const TICK_LAG_NS: i64 = 50_000_000;

/// Longest wait for a batch before the stop signals are looked at again.
const WAIT: Duration = Duration::from_millis(50);

/// How long the capture thread may take to read what the kernel holds at the stop.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// A signal this long after the first one exits at once, without the summary.
const SECOND_SIGNAL_AFTER: Duration = Duration::from_secs(1);

/// Loss windows remembered; past it the oldest two merge (a wider window: more sessions
/// flagged, never fewer).
const MAX_DROP_WINDOWS: usize = 64;

/// Lists the devices: `tlsdiag interfaces`.
pub fn interfaces() -> ExitCode {
    let list = match live::interfaces() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tlsdiag: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let mut out = io::stdout().lock();
    let mut r = Ok(());
    for d in &list {
        let mut flags = vec![if d.up { "up" } else { "down" }];
        if d.running {
            flags.push("running");
        }
        if d.loopback {
            flags.push("loopback");
        }
        let mut line = format!("{:<16} {:<22}", d.name, flags.join(","));
        if !d.addresses.is_empty() {
            line.push_str(&format!(" {}", d.addresses.join(" ")));
        }
        if let Some(desc) = &d.description {
            line.push_str(&format!("  ({desc})"));
        }
        r = r.and_then(|_| writeln!(out, "{}", line.trim_end()));
    }
    match r.and_then(|_| out.flush()) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("tlsdiag: cannot write: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Why the capture stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Signal,
    Duration,
    Count,
    OutputClosed,
    ReadError,
}

impl Stop {
    fn describe(self) -> &'static str {
        match self {
            Stop::Signal => "interrupted",
            Stop::Duration => "--duration reached",
            Stop::Count => "--count reached",
            Stop::OutputClosed => "output closed",
            Stop::ReadError => "capture error",
        }
    }
}

/// Sniffs an interface: `tlsdiag live`.
pub fn live(args: LiveArgs) -> ExitCode {
    let Some(interface) = args.interface.clone().or_else(live::default_interface) else {
        eprintln!("tlsdiag: no interface to capture on; name one with -i (see `tlsdiag interfaces`)");
        return ExitCode::from(EXIT_ERROR);
    };
    let mut ports = args.ports.clone();
    ports.sort_unstable();
    ports.dedup();
    let cfg = LiveConfig {
        interface: interface.clone(),
        filter: match &args.filter {
            Some(f) => CaptureFilter::User(f.clone()),
            None => CaptureFilter::Default(live::Selection {
                ports: ports.clone(),
                ports_only: args.selection.ports_only,
                vxlan_ports: args.selection.vxlan_ports.clone(),
            }),
        },
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_kib: args.buffer_size,
        immediate: args.immediate,
    };
    // Both outputs checked before the capture starts, written under a temporary name beside
    // the target and renamed into place when the capture stops.
    let flags = [
        Flag {
            name: "-o",
            path: args.output.as_deref(),
            stdout_ok: true,
        },
        Flag {
            name: "-w",
            path: args.write.as_deref(),
            stdout_ok: false,
        },
    ];
    let (out_to, write_to) = match outputs::plan(&[], &super::keys::paths(&args.keylog), &flags, false)
        .map(<[Option<Target>; 2]>::try_from)
    {
        Ok(Ok([out, write])) => (out.unwrap_or(Target::Stdout), write),
        Ok(Err(_)) => return ExitCode::from(EXIT_ERROR),
        Err(e) => {
            eprintln!("tlsdiag: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let keylog_problems = super::keys::load(&args.keylog, true);
    let mut cap = match LiveCapture::open(&cfg) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let mut saved = None;
    if let Some(target) = &write_to {
        let o = match Output::create(target) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("tlsdiag: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        };
        // libpcap writes the capture file itself: into the temporary file, by its path.
        if let Err(e) = cap.save_to(o.temp_path().unwrap_or(target.shown())) {
            return fail(&e);
        }
        saved = Some(o);
    }
    let out = match Output::create(&out_to) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tlsdiag: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let signals = Arc::new(AtomicU32::new(0));
    let handler_signals = Arc::clone(&signals);
    let mut first_signal: Option<Instant> = None;
    if let Err(e) = ctrlc::set_handler(move || {
        handler_signals.fetch_add(1, Ordering::SeqCst);
        // A second signal a while after the first means "now": the stop is stuck (a blocked
        // output, say). Copies that come together (`timeout` signals the child and then its
        // process group) do not count.
        match first_signal {
            None => first_signal = Some(Instant::now()),
            Some(t) if t.elapsed() >= SECOND_SIGNAL_AFTER => {
                eprintln!("tlsdiag: second signal: exiting without the summary");
                std::process::exit(i32::from(EXIT_ERROR));
            }
            Some(_) => {}
        }
    }) {
        eprintln!("tlsdiag: warning: cannot catch Ctrl-C ({e}); stop with --duration or --count");
    }
    let opts = Options {
        ports: ports.clone(),
        handshake_timeout_secs: args.handshake_timeout,
        idle_timeout_secs: args.idle_timeout,
        max_flows: args.max_flows.max(1),
        // As offline: other ports are followed by their content unless --ports-only (the
        // default capture filter lets their TCP through then).
        ports_only: args.selection.ports_only,
        // The text lines show only the verdict of established sessions; NDJSON shows all.
        detail: if args.format == LiveFormat::Text {
            Detail::FailuresInFull
        } else if args.detail == super::args::DetailArg::Lean {
            Detail::EstablishedLean
        } else {
            Detail::Full
        },
        tunnels: crate::decode::Config::with_vxlan_ports(&args.selection.vxlan_ports),
    };
    let mut analyzer = Analyzer::new(opts, false);
    let mut run = Streamer {
        // Each verdict leaves within flusher::MAX_WAIT; under load, lines leave in blocks.
        out: super::flusher::Writer::new(out, true),
        format: args.format,
        counts: Counts::default(),
        drops: DropLedger::new(Timestamp::now()),
        write_error: None,
        redactor: args.redact.then(Redactor::default),
        community_id: (!args.redact).then_some(args.community_id_seed),
    };
    eprintln!(
        "tlsdiag: listening on {interface} ({}), filter \"{}\", snaplen {}, buffer {} KiB{}{}; Ctrl-C to stop",
        cap.link().name(),
        cap.filter(),
        cfg.snaplen,
        cfg.buffer_kib,
        if cfg.immediate { ", immediate mode" } else { "" },
        if cfg.promisc { "" } else { ", not promiscuous" }
    );
    // The capture thread only reads; this one analyzes what it hands over.
    let reader = match Reader::start(cap, args.count) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tlsdiag: cannot start the capture thread: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let link = reader.link();

    let started = Instant::now();
    let duration = args.duration.map(Duration::from_secs);
    let mut last_tick = started;
    let mut packets: u64 = 0;
    let mut last_packet_ts: Option<Timestamp> = None;
    let mut ended = false;
    let stop = loop {
        if signals.load(Ordering::SeqCst) > 0 {
            break Stop::Signal;
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break Stop::Duration;
        }
        if run.write_error.is_some() {
            break Stop::OutputClosed;
        }
        let busy = match reader.next(WAIT.min(TICK.saturating_sub(last_tick.elapsed()))) {
            Next::Batch(b) => {
                // Losses are known before the sessions that may have lost packets are decided.
                run.drops.record(b.drops, b.drops_at);
                for p in b.packets(link) {
                    analyzer.packet(&p, &mut |s| run.session(s));
                }
                packets += b.len() as u64;
                last_packet_ts = b.last_ts().or(last_packet_ts);
                let full = b.full;
                reader.recycle(b);
                full
            }
            Next::Idle => false,
            Next::Ended => {
                ended = true;
                break Stop::Count;
            }
        };
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            // With packets still waiting, only their time is safe to advance to.
            let now = match (busy, last_packet_ts) {
                (true, Some(ts)) => ts,
                _ => Timestamp::now().add_nanos(-TICK_LAG_NS),
            };
            analyzer.tick(now, &mut |s| run.session(s));
        }
        run.flush();
    };

    // What the kernel buffered before the stop still belongs to the capture: the capture thread
    // reads it (bounded) and ends.
    reader.stop();
    let analyze_rest = matches!(stop, Stop::Signal | Stop::Duration);
    let drain_deadline = Instant::now() + STOP_LIMIT;
    while !ended && Instant::now() < drain_deadline {
        match reader.next(WAIT) {
            Next::Batch(b) => {
                if analyze_rest && run.write_error.is_none() {
                    run.drops.record(b.drops, b.drops_at);
                    for p in b.packets(link) {
                        analyzer.packet(&p, &mut |s| run.session(s));
                    }
                    packets += b.len() as u64;
                }
                reader.recycle(b);
            }
            Next::Idle => {}
            Next::Ended => ended = true,
        }
    }
    let end = reader.finish(Duration::from_secs(1)).unwrap_or_else(|| {
        eprintln!("tlsdiag: warning: the capture thread did not stop; the last loss counts are missing");
        live::Ended {
            drops: run.drops.seen,
            ..Default::default()
        }
    });
    let saved_packets = end.packets;
    let stop = match stop {
        Stop::Count if end.error.is_some() => Stop::ReadError,
        Stop::Count if !end.limit_reached => Stop::ReadError,
        other => other,
    };
    let read_error = end.error;
    if let Some(e) = &end.stats_error {
        eprintln!("tlsdiag: warning: libpcap cannot count lost packets here ({e})");
    }
    run.drops.record(end.drops, Timestamp::now());
    if stop != Stop::ReadError && read_error.is_none() {
        analyzer.tick(Timestamp::now().add_nanos(-TICK_LAG_NS), &mut |s| run.session(s));
    }
    let (mut summary, profiles) = analyzer.finish_with_profiles(&mut |s| run.session(s));
    let save_error = end
        .save_error
        .map_or(Ok(()), Err)
        .and_then(|_| saved.map_or(Ok(()), |o| o.commit().map_err(|e| e.to_string())))
        .err();
    let drops = run.drops.seen;
    summary.files = vec![format!("interface {interface}")];
    summary.redacted = args.redact;
    if drops.kernel > 0 {
        summary.anomalies.insert("kernel_dropped_packets".into(), drops.kernel);
    }
    if drops.interface > 0 {
        summary
            .anomalies
            .insert("interface_dropped_packets".into(), drops.interface);
    }
    if drops.total() > 0 {
        summary.input_problems.push(format!(
            "the capture lost {} packet(s) ({} dropped by the kernel buffer, {} by the interface); {} session verdict(s) open at the time have low confidence",
            drops.total(),
            drops.kernel,
            drops.interface,
            run.drops.sessions_affected
        ));
    }
    if let Some(e) = &read_error {
        summary.input_problems.push(format!("the capture stopped early: {e}"));
    }
    super::keys::summarize(&mut summary, keylog_problems);
    let counts = std::mem::take(&mut run.counts);
    let code = if counts.failed > 0 {
        EXIT_FAILED_SESSIONS
    } else {
        EXIT_OK
    };
    let report = Report::new(summary, counts, &profiles);
    run.summary(&report);
    let Streamer {
        out,
        drops: ledger,
        mut write_error,
        ..
    } = run;
    if write_error.is_none() {
        if let Err(e) = out.commit() {
            write_error = Some(e);
        }
    }

    eprintln!(
        "tlsdiag: {} ({}): {packets} packets captured on {interface} in {:.1} s; {} dropped by the kernel, {} by the interface",
        stop.describe(),
        if report.counts.failed > 0 {
            format!("{} failed of {} sessions", report.counts.failed, report.counts.sessions)
        } else {
            format!("{} sessions, none failed", report.counts.sessions)
        },
        started.elapsed().as_secs_f64(),
        drops.kernel,
        drops.interface
    );
    if drops.total() > 0 {
        eprintln!(
            "tlsdiag: WARNING: {} packet(s) were lost by the capture; {} verdict(s) may be wrong and say `confidence: low`",
            drops.total(),
            ledger.sessions_affected
        );
    }
    if let Some(e) = save_error {
        eprintln!("tlsdiag: cannot write the capture file: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    if let Some(path) = &args.write {
        eprintln!("tlsdiag: saved {saved_packets} packets to {}", path.display());
    }
    if let Some(e) = read_error {
        eprintln!("tlsdiag: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    match write_error {
        None => ExitCode::from(code),
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Some(e) => {
            eprintln!("tlsdiag: cannot write the verdicts: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn fail(e: &LiveError) -> ExitCode {
    eprintln!("tlsdiag: {e}");
    ExitCode::from(EXIT_ERROR)
}

/// Writes sessions as they are decided and keeps only their counts.
struct Streamer {
    out: super::flusher::Writer,
    format: LiveFormat,
    counts: Counts,
    drops: DropLedger,
    /// The first write error; once set, nothing more is written and the capture stops.
    write_error: Option<io::Error>,
    /// `--redact`: each client's pseudonym, given as its first session is decided.
    redactor: Option<Redactor>,
    /// Seed of network.community_id; `None` leaves it out (under --redact).
    community_id: Option<u16>,
}

impl Streamer {
    fn session(&mut self, mut s: SessionReport) {
        if self.community_id != Some(0) {
            s.set_community_id(self.community_id);
        }
        if self.redactor.is_some() {
            // It names the real client address.
            s.display_filter = None;
        }
        if let Some(r) = &mut self.redactor {
            r.apply(&mut s);
        }
        self.drops.annotate(&mut s);
        self.counts.add(&s);
        if self.write_error.is_some() {
            return;
        }
        let r = match self.format {
            LiveFormat::Ndjson => ndjson::write_session(&mut self.out, &s),
            // Health checks (no data) are counted in the summary, not listed one by one.
            LiveFormat::Text if s.no_data => return,
            LiveFormat::Text => writeln!(self.out, "{}", text::session_line(&s)),
        };
        if let Err(e) = r {
            self.write_error = Some(e);
        }
    }

    /// The flusher writes the lines out; a write error it met stops the capture.
    fn flush(&mut self) {
        if self.write_error.is_none() {
            if let Err(e) = self.out.check() {
                self.write_error = Some(e);
            }
        }
    }

    fn summary(&mut self, report: &Report) {
        if self.write_error.is_some() {
            return;
        }
        let r = match self.format {
            LiveFormat::Ndjson => ndjson::write_summary(&mut self.out, report),
            LiveFormat::Text => writeln!(self.out).and_then(|_| {
                text::write(
                    &mut self.out,
                    report,
                    text::TextOptions {
                        quiet: true,
                        ..Default::default()
                    },
                )
            }),
        };
        if let Err(e) = r.and_then(|_| self.out.flush()) {
            self.write_error = Some(e);
        }
    }
}

/// A stretch of wall-clock time in which libpcap reported lost packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DropWindow {
    from: Timestamp,
    to: Timestamp,
    lost: u64,
}

/// Packet losses as time windows, so the sessions open during one can say so.
struct DropLedger {
    windows: VecDeque<DropWindow>,
    /// Totals at the last poll.
    seen: Drops,
    last_poll: Timestamp,
    sessions_affected: u64,
}

impl DropLedger {
    fn new(now: Timestamp) -> DropLedger {
        DropLedger {
            windows: VecDeque::new(),
            seen: Drops::default(),
            last_poll: now,
            sessions_affected: 0,
        }
    }

    /// Takes new totals read at `now`.
    fn record(&mut self, d: Drops, now: Timestamp) {
        let lost = d.total().saturating_sub(self.seen.total());
        if lost > 0 {
            self.windows.push_back(DropWindow {
                from: self.last_poll,
                to: now,
                lost,
            });
            if self.windows.len() > MAX_DROP_WINDOWS {
                if let (Some(a), Some(b)) = (self.windows.pop_front(), self.windows.pop_front()) {
                    self.windows.push_front(DropWindow {
                        from: a.from.min(b.from),
                        to: a.to.max(b.to),
                        lost: a.lost.saturating_add(b.lost),
                    });
                }
            }
        }
        self.seen = d;
        self.last_poll = now;
    }

    /// Lowers the confidence of a session decided now that was open during a loss.
    fn annotate(&mut self, s: &mut SessionReport) {
        let lost: u64 = self.windows.iter().filter(|w| w.to >= s.start_ts).map(|w| w.lost).sum();
        if lost == 0 {
            return;
        }
        self.sessions_affected += 1;
        s.confidence = "low".to_string();
        s.quality_notes.push(format!(
            "the capture lost {lost} packet(s) (kernel or interface drops) while this session was open; missing packets can look like a failure"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_parts(s, 0)
    }

    #[test]
    fn losses_flag_only_sessions_open_at_the_time() {
        let mut l = DropLedger::new(ts(100));
        l.record(Drops::default(), ts(101));
        l.record(
            Drops {
                received: 10,
                kernel: 3,
                interface: 1,
            },
            ts(102),
        );
        assert_eq!(
            l.windows.iter().copied().collect::<Vec<_>>(),
            vec![DropWindow {
                from: ts(101),
                to: ts(102),
                lost: 4
            }]
        );
        let lost_for = |l: &DropLedger, start: i64| -> u64 {
            l.windows.iter().filter(|w| w.to >= ts(start)).map(|w| w.lost).sum()
        };
        assert_eq!(lost_for(&l, 90), 4, "open before and during the loss");
        assert_eq!(lost_for(&l, 103), 0, "started after the loss");
    }

    #[test]
    fn loss_windows_stay_bounded() {
        let mut l = DropLedger::new(ts(0));
        for i in 1..=1000 {
            l.record(
                Drops {
                    received: 0,
                    kernel: i,
                    interface: 0,
                },
                ts(i as i64),
            );
        }
        assert!(l.windows.len() <= MAX_DROP_WINDOWS);
        assert_eq!(l.windows.iter().map(|w| w.lost).sum::<u64>(), 1000);
        assert_eq!(l.windows.front().map(|w| w.from), Some(ts(0)));
    }
}
