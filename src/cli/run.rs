//! Runs a parsed command: the only place that wires capture, pipeline and report together.

use super::args::{AnalyzeArgs, Cli, Command, Format};
use crate::capture::Capture;
use crate::diagnose::catalog;
use crate::pipeline::{Analyzer, Options};
use crate::report::model::{Counts, Report, SessionReport};
use crate::report::{json, text};
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

/// Exit status when no session failed.
const EXIT_OK: u8 = 0;
/// Exit status when some session failed.
const EXIT_FAILED_SESSIONS: u8 = 1;
/// Exit status on error.
const EXIT_ERROR: u8 = 2;

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
        Command::Live(_) => live_unavailable(),
        Command::Analyze(args) => analyze(args),
    }
}

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
    let mut capture = match Capture::open(&args.inputs) {
        Ok(c) => c,
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
    };
    let mut analyzer = Analyzer::new(opts, true);
    let progress = progress_bar(&capture, args.quiet);
    let mut sessions: Vec<SessionReport> = Vec::new();
    let mut sink = |s: SessionReport| sessions.push(s);
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
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    let mut summary = analyzer.finish(&mut sink);
    summary.files = capture.files();
    for (file, stop) in capture.stops() {
        *summary.anomalies.entry(stop.key.to_string()).or_default() += 1;
        summary.input_problems.push(format!("{file}: {}", stop.detail));
        eprintln!("tlsdiag: warning: {file}: {}", stop.detail);
    }
    for (k, n) in capture.oddities() {
        *summary.anomalies.entry(k.to_string()).or_default() += n;
    }
    for s in &capture.skipped {
        summary.input_problems.push(format!("skipped {s}"));
    }
    sessions.sort_by_key(|s| (s.first_frame, s.id));
    let mut counts = Counts::default();
    for s in &sessions {
        counts.add(s);
    }
    let code = if counts.failed > 0 {
        EXIT_FAILED_SESSIONS
    } else {
        EXIT_OK
    };
    let report = Report {
        schema_version: crate::report::model::SCHEMA_VERSION,
        tool: format!("tlsdiag {}", env!("CARGO_PKG_VERSION")),
        capture: summary,
        counts,
        sessions,
    };
    let write = |out: &mut dyn Write| -> io::Result<()> {
        match args.format {
            Format::Text => text::write(
                out,
                &report,
                text::TextOptions {
                    quiet: args.quiet,
                    all: args.all,
                },
            ),
            Format::Json => json::write(out, &report),
        }?;
        out.flush()
    };
    let result = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => write(&mut io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("tlsdiag: cannot create {}: {e}", path.display());
                return ExitCode::from(EXIT_ERROR);
            }
        },
        None => write(&mut io::BufWriter::new(io::stdout().lock())),
    };
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
