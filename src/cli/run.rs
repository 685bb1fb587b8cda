//! Runs a parsed command: the only place that wires capture, pipeline and report together.

use super::args::{AnalyzeArgs, Cli, Command, DetailArg, Format};
use super::outputs::{self, Flag, Output, Target};
use crate::capture::Capture;
use crate::diagnose::Outcome;
use crate::diagnose::catalog;
use crate::pipeline::{Analyzer, Detail, Options, Parallel, Sequential};
use crate::report::carve::{self, CarveSet};
use crate::report::digest::{Digest, SessionStore, TEXT_BLOCKS};
use crate::report::model::{Counts, Report, SessionReport};
use crate::report::pseudonymize::Redactor;
use crate::report::select::Selection;
use crate::report::{html, json, markdown, ndjson, text};
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

/// Exit status when no session failed.
pub(super) const EXIT_OK: u8 = 0;
/// Exit status when some session failed.
pub(super) const EXIT_FAILED_SESSIONS: u8 = 1;
/// Exit status on error.
pub(super) const EXIT_ERROR: u8 = 2;
/// NDJSON line buffers kept for reuse (the lines in flight between the threads, at most).
const SPARE_LINES: usize = 8192;

/// Runs the command and returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Reasons { markdown } => {
            let text = if markdown {
                catalog::markdown_table()
            } else {
                catalog::Reason::ALL
                    .iter()
                    .map(|r| format!("{:<28} {:<12} {}\n", r.id(), r.cause().id(), r.meaning()))
                    .collect()
            };
            finish_output(io::stdout().lock().write_all(text.as_bytes()), EXIT_OK)
        }
        #[cfg(feature = "live")]
        Command::Live(args) => super::live::live(args),
        #[cfg(feature = "live")]
        Command::Interfaces => super::live::interfaces(),
        #[cfg(not(feature = "live"))]
        Command::Live(_) | Command::Interfaces => live_unavailable(),
        Command::Analyze(args) => analyze(args),
        Command::Schema { ndjson } => {
            let schema = if ndjson {
                crate::report::ndjson::schema()
            } else {
                schemars::schema_for!(crate::report::model::Report)
            };
            let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
            finish_output(io::stdout().lock().write_all(text.as_bytes()), EXIT_OK)
        }
    }
}

#[cfg(not(feature = "live"))]
fn live_unavailable() -> ExitCode {
    eprintln!(
        "tlsdiag: live capture is not in this build; install libpcap (Debian: apt-get install libpcap-dev) and build with `cargo build --release --features live`"
    );
    ExitCode::from(EXIT_ERROR)
}

fn finish_output(r: io::Result<()>, code: u8) -> ExitCode {
    match r {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            eprintln!("tlsdiag: cannot write the report: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn analyze(args: AnalyzeArgs) -> ExitCode {
    let selection = match Selection::parse(&args.outcome, &args.cause, &args.reason, &args.server, &args.sni) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tlsdiag: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    // Every output is checked before anything is read: none may be an input, two may not be
    // one file, each must be writable, and carving needs inputs that can be read twice.
    let flags = [
        Flag {
            name: "-o",
            path: args.output.as_deref(),
            stdout_ok: true,
        },
        Flag {
            name: "--write-failed",
            path: args.write_failed.as_deref(),
            stdout_ok: false,
        },
        Flag {
            name: "--write-sessions",
            path: args.write_sessions.as_deref(),
            stdout_ok: false,
        },
    ];
    let carving = args.write_failed.is_some() || args.write_sessions.is_some();
    let (report_to, failed_to, sessions_to) =
        match outputs::plan(&args.inputs, &super::keys::paths(&args.keylog), &flags, carving) {
            Ok(t) => match <[Option<Target>; 3]>::try_from(t) {
                Ok([report, failed, sessions]) => (report.unwrap_or(Target::Stdout), failed, sessions),
                Err(_) => return ExitCode::from(EXIT_ERROR),
            },
            Err(e) => {
                eprintln!("tlsdiag: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        };
    if let Err(e) = super::signals::install() {
        eprintln!("tlsdiag: warning: cannot catch Ctrl-C ({e}); an interrupted run prints nothing");
    }
    if args.inputs.iter().any(|p| p.as_os_str() == "-") && io::stdin().is_terminal() {
        eprintln!("tlsdiag: waiting for a capture on standard input (e.g. tcpdump -w - ... | tlsdiag analyze -)");
    }
    let keylog_problems = super::keys::load(&args.keylog, false);
    let mut capture = match Capture::open(&args.inputs) {
        Ok(c) => c,
        Err(_) if crate::interrupt::signal().is_some() => {
            let sig = crate::interrupt::signal().map(super::signals::name).unwrap_or_default();
            eprintln!("tlsdiag: interrupted by {sig} before a capture was read");
            return ExitCode::from(super::signals::EXIT_SECOND_SIGNAL);
        }
        Err(e) => {
            eprintln!("tlsdiag: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    // Written to a temporary file beside the target, renamed into place once complete.
    let out = match Output::create(&report_to) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tlsdiag: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let mut ports = args.ports.clone();
    ports.sort_unstable();
    ports.dedup();
    let opts = Options {
        ports,
        handshake_timeout_secs: args.handshake_timeout,
        idle_timeout_secs: args.idle_timeout,
        max_flows: args.max_flows.max(1),
        ports_only: args.selection.ports_only,
        // Text, Markdown and HTML show established sessions only as counts and warnings, unless
        // `--all` lists every session in full.
        detail: if matches!(args.format, Format::Text | Format::Markdown | Format::Html) && !args.all {
            Detail::FailuresInFull
        } else if matches!(args.format, Format::Json | Format::Ndjson) && args.detail == DetailArg::Lean && !args.all {
            Detail::EstablishedLean
        } else {
            Detail::Full
        },
        tunnels: crate::decode::Config::with_vxlan_ports(&args.selection.vxlan_ports),
    };
    // NDJSON writes each session as soon as it is reported. From files, a session is reported
    // when its connection ends, as in every other format (one truth: the same frames, end,
    // evidence and summary as the JSON document). From a pipe, whose end may never come, a
    // session is reported the moment its verdict is known, as `live` does.
    let streaming = args.format == Format::Ndjson;
    let verdict_time = streaming && args.inputs.iter().any(|p| is_stream(p));
    // Lines leave in large blocks; from a pipe, none waits more than flusher::MAX_WAIT.
    let mut out = super::flusher::Writer::new(out, verdict_time);
    // Read only when needed (a few readings a millisecond apart): for the default thread count,
    // and for whether one thread has a core to spare for reading ahead.
    let free_cores = match args.threads {
        Some(n) if n > 1 => 0,
        _ => super::threads::free_cores(),
    };
    let threads = args.threads.unwrap_or(free_cores).max(1);
    // NDJSON lines leave in one order whatever the threads: by the frame that decided each
    // session, then by id (see `pipeline::ordered`). From a pipe, one thread: a verdict reached
    // at once is judged with the server profiles learned so far, which on several threads would
    // be each worker's own (and so depend on the thread count).
    let parallel = threads > 1 && !verdict_time;
    let progress = progress_bar(&capture, args.quiet);

    // Sessions pass the filters, feed the carve sets (real addresses), are redacted (streamed
    // NDJSON at once; otherwise at the end, numbering clients by first frame whatever the
    // threads' timing), then are either streamed (NDJSON) or kept for the report.
    let mut counts = Counts::default();
    // Bounded memory whatever the number of sessions: the JSON document keeps every session
    // serialized (spilling to a temporary file past a cap); text and Markdown keep a digest.
    let mut store = SessionStore::default();
    let mut digest = Digest::new(if args.all { TEXT_BLOCKS * 5 } else { 0 });
    let mut carve_failed = CarveSet::default();
    let mut carve_selected = CarveSet::default();
    let mut redactor = Redactor::default();
    let mut write_error: Option<io::Error> = None;
    let community_id = (!args.redact).then_some(args.community_id_seed);
    // Every session, before the filters: a filtered report gives both counts.
    let mut total = Counts::default();
    let origins = capture.origins();
    // What is done to each session alone; on several threads, on the thread that decided it.
    let prepare = |s: &mut SessionReport| {
        if let Some(o) = &origins {
            s.locate_frames(&crate::capture::origin::lock(o));
        }
        if community_id != Some(0) {
            s.set_community_id(community_id);
        }
        if args.redact {
            // It names the real client address.
            s.display_filter = None;
        }
    };
    // An NDJSON line is written there too, unless pseudonyms (numbered in the order of the
    // lines, on this thread) go in it. Its buffer comes back here once the line is out: buffers
    // freed on another thread than the one that took them would have the allocator hand their
    // pages back and fault them in again.
    let spare_lines = std::sync::Mutex::new(Vec::<Vec<u8>>::new());
    let line = |s: &mut SessionReport| -> Option<Vec<u8>> {
        if !streaming || args.redact {
            return None;
        }
        prepare(s);
        let spare = spare_lines.lock().ok().and_then(|mut v| v.pop());
        let mut line = spare.unwrap_or_else(|| Vec::with_capacity(2048));
        ndjson::write_session(&mut line, s).ok().map(|_| line)
    };
    let mut sink = |mut s: SessionReport, line: Option<Vec<u8>>| {
        if line.is_none() {
            prepare(&mut s);
        }
        let reuse = |mut line: Vec<u8>| {
            line.clear();
            if let Ok(mut spare) = spare_lines.lock() {
                if spare.len() < SPARE_LINES {
                    spare.push(line);
                }
            }
        };
        total.add(&s);
        if !selection.matches(&s) {
            if let Some(line) = line {
                reuse(line);
            }
            return;
        }
        if s.outcome == Outcome::Failed && args.write_failed.is_some() {
            carve_failed.add(&s);
        }
        if args.write_sessions.is_some() && !s.no_data {
            carve_selected.add(&s);
        }
        if args.redact {
            if streaming {
                redactor.apply(&mut s);
            } else {
                redactor.observe(&s);
            }
        }
        counts.add(&s);
        if streaming {
            if write_error.is_none() {
                // In blocks; from a pipe the flusher sends each verdict out within MAX_WAIT.
                let written = match &line {
                    Some(line) => out.write_all(line),
                    None => ndjson::write_session(&mut out, &s),
                };
                if let Err(e) = written {
                    write_error = Some(e);
                }
                if let Some(line) = line {
                    reuse(line);
                }
            }
        } else if args.format == Format::Json {
            if write_error.is_none() {
                if let Err(e) = store.add(&s) {
                    write_error = Some(e);
                }
            }
        } else {
            digest.add(&s);
        }
    };
    let (mut summary, profiles) = if parallel {
        let mut update = |bytes: u64| {
            if let Some(pb) = &progress {
                pb.set_position(bytes);
            }
        };
        let parallel = Parallel::new(opts, threads, true);
        let parallel = if streaming { parallel.in_order() } else { parallel };
        parallel.run_prepared(&mut capture, &line, &mut sink, &mut update)
    } else {
        let mut sink = |s: SessionReport| sink(s, None);
        let mut analyzer = Sequential::new(Analyzer::new(opts, !verdict_time), streaming);
        // One analysis thread: with a core to spare, the file's copy from the page cache
        // overlaps it (with none, the copy would only take turns with the analysis).
        if free_cores > 1 {
            capture.read_ahead();
        }
        let mut since_update = 0u64;
        while let Some(p) = capture.next_packet() {
            analyzer.packet(&p, &mut sink);
            since_update += 1;
            if since_update >= 4096 {
                since_update = 0;
                if let Some(pb) = &progress {
                    pb.set_position(capture.raw_bytes_read());
                }
            }
        }
        analyzer.finish_with_profiles(&mut sink)
    };
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    summary.files = capture.files();
    // Damage skipped over first: a file's stop, if any, comes after it.
    for (file, what) in capture.damage() {
        summary.input_problems.push(format!("{file}: {what}"));
        eprintln!("tlsdiag: warning: {file}: {what}");
    }
    let interrupted = crate::interrupt::signal();
    for (file, stop) in capture.stops() {
        // A pipe cut by the stop request ends mid-record: that cut is the interruption's.
        if interrupted.is_some() && stop.key == "capture_truncated" {
            continue;
        }
        *summary.anomalies.entry(stop.key.to_string()).or_default() += 1;
        summary.input_problems.push(format!("{file}: {}", stop.detail));
        eprintln!("tlsdiag: warning: {file}: {}", stop.detail);
    }
    for (k, n) in capture.oddities() {
        *summary.anomalies.entry(k.to_string()).or_default() += n;
    }
    // An input that could not be read is an error: said on stderr and in the exit status, after
    // the report of everything that could be read.
    let unreadable = capture.unreadable();
    for s in &unreadable {
        summary.input_problems.push(format!("skipped {s}"));
        eprintln!("tlsdiag: error: skipped {s}");
    }
    if let Some(sig) = interrupted {
        let line = format!(
            "interrupted by {} after {} packets: the report covers what was read; sessions still open were decided as at the end of the capture",
            super::signals::name(sig),
            summary.packets
        );
        eprintln!("tlsdiag: warning: {line}");
        summary.input_problems.push(line);
    }
    super::keys::summarize(&mut summary, keylog_problems);
    if !selection.is_empty() {
        summary.filter = Some(selection.describe());
        summary.sessions_total = Some(total.sessions);
        summary.failed_total = Some(total.failed);
    }
    summary.redacted = args.redact;
    if args.redact && !streaming {
        redactor.assign_pending();
        digest.redact(&redactor);
        store.redact(&redactor);
    }
    let code = if !unreadable.is_empty() {
        EXIT_ERROR
    } else if counts.failed > 0 {
        EXIT_FAILED_SESSIONS
    } else {
        EXIT_OK
    };
    let report = Report::new(summary, counts, &profiles);
    let result = match write_error {
        Some(e) => Err(e),
        None => match args.format {
            Format::Text => text::write_digest(
                &mut out,
                &report,
                &digest,
                text::TextOptions {
                    quiet: args.quiet,
                    all: args.all,
                },
            ),
            // Sessions in capture order, numbered from 1: the same whatever the number of threads.
            Format::Json => json::write_with_store(&mut out, &report, &mut store),
            Format::Ndjson => ndjson::write_summary(&mut out, &report),
            Format::Markdown => markdown::write_digest(
                &mut out,
                &report,
                &digest,
                &selection.describe(),
                args.redact,
                !args.no_mermaid,
            ),
            Format::Html => html::write_digest(&mut out, &report, &digest, &selection.describe(), args.redact),
        }
        .and_then(|_| out.commit()),
    };
    if let Err(e) = &result {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!(
                "tlsdiag: cannot write the report to {}: {e}",
                report_to.shown().display()
            );
            return ExitCode::from(EXIT_ERROR);
        }
    }
    // Both carves open the capture again before either writes a file: a carve that lands in an
    // input directory is not read as part of the capture by the other.
    let mut carves = Vec::new();
    for (set, target) in [(&carve_failed, &failed_to), (&carve_selected, &sessions_to)] {
        let Some(target) = target else { continue };
        match Capture::open(&args.inputs) {
            Ok(mut cap) => {
                // The second pass reaches the last frame the first one read, stop request or not.
                cap.ignore_interrupt();
                carves.push((set, target, cap));
            }
            Err(e) => {
                eprintln!("tlsdiag: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    for (set, target, cap) in carves {
        let shown = target.shown();
        let written = Output::create(target).and_then(|mut o| {
            let st = carve::carve(cap, set, &mut o, shown, args.redact.then_some(&redactor))?;
            o.commit()
                .map_err(|e| format!("cannot write {}: {e}", shown.display()))?;
            Ok(st)
        });
        match written {
            Ok(st) => {
                if !args.quiet {
                    eprintln!("tlsdiag: wrote {} packets to {}", st.packets, shown.display());
                }
                if st.not_rewritable > 0 {
                    eprintln!(
                        "tlsdiag: warning: {} packets whose client address could not be rewritten (IP fragments, IPv6 extension headers) were left out of {}",
                        st.not_rewritable,
                        shown.display()
                    );
                }
                if st.other_link_type > 0 {
                    eprintln!(
                        "tlsdiag: warning: {} packets with another link type were left out of {}",
                        st.other_link_type,
                        shown.display()
                    );
                }
            }
            Err(e) => {
                eprintln!("tlsdiag: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    finish_output(result, code)
}

fn progress_bar(capture: &Capture, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !io::stderr().is_terminal() || capture.total_size() < 16 << 20 {
        return None;
    }
    let pb = indicatif::ProgressBar::new(capture.total_size());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        pb.set_style(style);
    }
    Some(pb)
}

/// Whether an input is read as a stream (standard input, a FIFO, a socket or a device).
fn is_stream(p: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    p.as_os_str() == "-"
        || std::fs::metadata(p)
            .map(|m| {
                let t = m.file_type();
                t.is_fifo() || t.is_socket() || t.is_char_device()
            })
            .unwrap_or(false)
}
