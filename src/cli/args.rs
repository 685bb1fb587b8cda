//! The flags, with clap.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "Examples:
  tlsdiag analyze trace.pcap                 why did the TLS sessions on port 443 fail?
  tlsdiag analyze -p 8443 -p 443 trace.pcapng
  tlsdiag analyze rotated/                   every capture in the directory, as one capture
  tlsdiag analyze a.pcap.gz b.pcap.gz        several files merged in time order
  tcpdump -w - port 443 | tlsdiag analyze -  read standard input
  tlsdiag analyze --format json -o out.json trace.pcap
  tlsdiag reasons                            the catalog of failure reasons

Exit status: 0 no failed session, 1 failed sessions found, 2 error.";

/// Passive TLS handshake failure analyzer: reads captures and says why each TLS session failed.
#[derive(Parser, Debug)]
#[command(name = "tlsdiag", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Summary and one block per failed session.
    Text,
    /// One JSON document (see docs/schema.json).
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyze capture files (pcap, pcapng, gzip-compressed, directories, `-` for stdin).
    #[command(after_help = EXAMPLES)]
    Analyze(AnalyzeArgs),
    /// Sniff a live interface (needs the `live` build feature).
    Live(LiveArgs),
    /// Print the catalog of failure reasons.
    Reasons {
        /// As the Markdown table published in docs/reasons.md.
        #[arg(long)]
        markdown: bool,
    },
}

/// Flags of `analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files or directories; `-` reads standard input. Several inputs are one capture.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// TLS server port to follow (repeatable).
    #[arg(short, long = "port", value_name = "PORT", default_value = "443")]
    pub ports: Vec<u16>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Text: print only the summary; no progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Text: print a block for every session, not only the failed ones.
    #[arg(long)]
    pub all: bool,
    /// Seconds of silence (packet time) after which a pending handshake is a timeout.
    #[arg(long, value_name = "SECS", default_value_t = crate::limits::DEFAULT_HANDSHAKE_TIMEOUT_SECS)]
    pub handshake_timeout: u64,
    /// Seconds of silence (packet time) after which a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = crate::limits::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    /// Connections tracked at once; past it the oldest idle one is decided early.
    #[arg(long, value_name = "N", default_value_t = crate::limits::DEFAULT_MAX_FLOWS)]
    pub max_flows: usize,
}

/// Flags of `live`.
#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Interface to sniff.
    #[arg(short, long)]
    pub interface: Option<String>,
    /// TLS server port to follow (repeatable).
    #[arg(short, long = "port", value_name = "PORT", default_value = "443")]
    pub ports: Vec<u16>,
}
