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
  tlsdiag analyze -f html -o report.html trace.pcap   a page with a timeline and handshake diagrams
  tlsdiag reasons                            the catalog of failure reasons

Outputs are checked before anything is read (none may be an input) and land whole or not at all.
Ctrl-C or SIGTERM stops reading: the report of what was read is printed; a second one exits at once.
Exit status: 0 no failed session, 1 failed sessions found, 2 error, 130 a second Ctrl-C.";

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
    /// One line per session as soon as it is decided, then a summary line (Elastic Common Schema).
    Ndjson,
    /// A ticket-ready report: failures grouped by server, name, cause and reason.
    Markdown,
    /// One self-contained page: timeline, failure groups with a ladder diagram each.
    Html,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyze capture files (pcap, pcapng, gzip-compressed, directories, `-` for stdin).
    #[command(after_help = EXAMPLES)]
    Analyze(AnalyzeArgs),
    /// Sniff a live interface (needs the `live` build feature).
    Live(LiveArgs),
    /// List the network interfaces `live` can capture on (needs the `live` build feature).
    Interfaces,
    /// Print the JSON Schema of `analyze --format json` (committed as docs/schema.json).
    Schema {
        /// The schema of one `--format ndjson` line instead (committed as docs/schema-ndjson.json).
        #[arg(long)]
        ndjson: bool,
    },
    /// Print the catalog of failure reasons.
    Reasons {
        /// As the Markdown table published in docs/reasons.md.
        #[arg(long)]
        markdown: bool,
    },
}

/// How much of an established session the JSON and NDJSON records hold.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailArg {
    Lean,
    Full,
}

/// Flags of `analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files or directories; `-` reads standard input. Several inputs are one capture.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// TLS server port to follow (repeatable, or a comma-separated list: -p 443,8443).
    #[arg(
        short,
        long = "port",
        value_name = "PORT",
        default_value = "443",
        value_delimiter = ','
    )]
    pub ports: Vec<u16>,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Markdown: leave out the Mermaid sequence diagram of each failure group (for trackers that
    /// do not draw `mermaid` blocks; the plain timeline stays).
    #[arg(long)]
    pub no_mermaid: bool,
    /// Write the report to FILE instead of standard output (`-`: standard output); written
    /// beside FILE and renamed into place when complete.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Text: print only the summary; no progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Text and Markdown: print a block for every session, not only the failed ones; JSON and
    /// NDJSON: every session in full (`--detail full`).
    #[arg(long)]
    pub all: bool,
    /// JSON and NDJSON: how much of an established session to write. `lean` (default): what
    /// pipelines filter and join on, about 1 KB (verdict, version, cipher, SNI, ALPN,
    /// fingerprints and ids, the leaf certificate's summary, warnings); `full`: also the offered
    /// suites, the certificate chain and the evidence (as `--all` does). Failed and incomplete
    /// sessions are always written in full.
    #[arg(long, value_enum, default_value_t = DetailArg::Lean)]
    pub detail: DetailArg,
    /// Keep only sessions with these outcomes (established, failed, incomplete; comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "OUTCOME")]
    pub outcome: Vec<String>,
    /// Keep only failures of these causes (timeout, protocol, certificate, cipher).
    #[arg(long, value_delimiter = ',', value_name = "CAUSE")]
    pub cause: Vec<String>,
    /// Keep only failures with these reason ids (see `tlsdiag reasons`).
    #[arg(long, value_delimiter = ',', value_name = "REASON")]
    pub reason: Vec<String>,
    /// Keep only sessions to these servers (IP, IP:PORT or [IPv6]:PORT).
    #[arg(long, value_delimiter = ',', value_name = "ADDR")]
    pub server: Vec<String>,
    /// Keep only sessions whose SNI matches (exact, or `*.example.com`).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub sni: Vec<String>,
    /// Replace client addresses by stable pseudonyms (servers, names and certificates stay);
    /// network.community_id is then left out.
    #[arg(long)]
    pub redact: bool,
    /// Seed of the Community ID flow hash (network.community_id), as Zeek's and Suricata's.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub community_id_seed: u16,
    /// Write every packet of the failed sessions to FILE (pcap; reads the input files again, so
    /// not from standard input or a FIFO).
    #[arg(long, value_name = "FILE")]
    pub write_failed: Option<PathBuf>,
    /// Write every packet of the selected sessions (after the filters above) to FILE (pcap).
    #[arg(long, value_name = "FILE")]
    pub write_sessions: Option<PathBuf>,
    /// Seconds of silence (packet time) after which a pending handshake is a timeout.
    #[arg(long, value_name = "SECS", default_value_t = crate::limits::DEFAULT_HANDSHAKE_TIMEOUT_SECS)]
    pub handshake_timeout: u64,
    /// Seconds of silence (packet time) after which a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = crate::limits::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    /// Connections tracked at once; past it the oldest idle one is decided early.
    #[arg(long, value_name = "N", default_value_t = crate::limits::DEFAULT_MAX_FLOWS)]
    pub max_flows: usize,
    /// Worker threads (connections are split by a hash of their 4-tuple; verdicts are the same
    /// as with one thread). Default: the available cores, less those other processes keep
    /// busy when the run starts (a thread sharing a core with other work slows every thread).
    /// With one thread and a core to spare, a plain file is also copied ahead on that core.
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
    /// TLS key log (NSS format, as SSLKEYLOGFILE) to decrypt handshakes with; repeatable.
    /// `--keylog env` reads the file named by the SSLKEYLOGFILE environment variable. Keys
    /// embedded in a pcapng capture (Decryption Secrets Blocks) are used without this flag.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<String>,
}

/// Which connections and tunnels are followed, beyond `-p` (`live`; `analyze` has the same
/// flags as its own fields until src/cli/run.rs reads them from here).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionArgs {
    /// UDP port that carries VXLAN (repeatable, or a comma-separated list, up to 4; default
    /// 4789, e.g. 8472 for Linux's own default). Geneve (6081), VXLAN-GPE (4790), GTP-U (2152),
    /// GRE, ERSPAN, MPLS, IP-in-IP and Cisco MetaData are opened whatever this says.
    #[arg(long = "vxlan-port", value_name = "PORT", value_delimiter = ',')]
    pub vxlan_ports: Vec<u16>,
    /// Follow only the listed ports. Without it, a connection on any other port is followed
    /// too once its client's first bytes are a TLS ClientHello, or a STARTTLS (SMTP, IMAP, POP3,
    /// FTP, XMPP, LDAP, PostgreSQL) or proxy (HTTP CONNECT, SOCKS) preamble leading to TLS.
    #[arg(long)]
    pub ports_only: bool,
}

/// Flags of `live`.
#[derive(clap::Args, Debug)]
#[command(after_help = LIVE_EXAMPLES)]
pub struct LiveArgs {
    /// Interface to sniff (see `tlsdiag interfaces`); default: libpcap's first device.
    #[arg(short, long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// TLS server port to follow (repeatable, or a comma-separated list: -p 443,8443).
    #[arg(
        short,
        long = "port",
        value_name = "PORT",
        default_value = "443",
        value_delimiter = ','
    )]
    pub ports: Vec<u16>,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Capture filter (BPF syntax) instead of the default: TCP (on the listed ports only with
    /// --ports-only), the tunnels' carriers (UDP to the VXLAN ports, 4790, 6081, 2152, 1701,
    /// 3544; GRE, IP-in-IP, MPLS, Cisco MetaData), IP fragments, and all of it VLAN-tagged.
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Bytes captured per packet.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(256..=262_144))]
    pub snaplen: u32,
    /// Kernel capture buffer in KiB (as tcpdump's -B): what absorbs a burst while the analysis
    /// catches up. Larger buffers lose fewer packets at high rates.
    #[arg(short = 'B', long, value_name = "KIB", default_value_t = crate::limits::DEFAULT_LIVE_BUFFER_KIB, value_parser = clap::value_parser!(u32).range(256..=4_194_304))]
    pub buffer_size: u32,
    /// libpcap immediate mode: each packet handed over at once instead of in blocks of the
    /// capture ring (lower latency, but on Linux the ring then holds far fewer packets).
    #[arg(long)]
    pub immediate: bool,
    /// Output format: one line per session as soon as it is decided, then a summary.
    #[arg(short, long, value_enum, default_value_t = LiveFormat::Text)]
    pub format: LiveFormat,
    /// NDJSON: how much of an established session to write (as `analyze --detail`).
    #[arg(long, value_enum, default_value_t = DetailArg::Lean)]
    pub detail: DetailArg,
    /// Write the verdicts to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Stop after SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Stop after N captured packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Seconds of silence after which a pending handshake is a timeout.
    #[arg(long, value_name = "SECS", default_value_t = crate::limits::DEFAULT_HANDSHAKE_TIMEOUT_SECS)]
    pub handshake_timeout: u64,
    /// Seconds of silence after which a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = crate::limits::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    /// Connections tracked at once; past it the oldest idle one is decided early.
    #[arg(long, value_name = "N", default_value_t = crate::limits::DEFAULT_MAX_FLOWS)]
    pub max_flows: usize,
    /// Save every captured packet to FILE (pcap), to attach to a ticket or analyze again.
    #[arg(short, long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Replace client addresses by stable pseudonyms in every line (servers, names and
    /// certificates stay); not with --write, whose capture holds the real addresses.
    #[arg(long, conflicts_with = "write")]
    pub redact: bool,
    /// Seed of the Community ID flow hash (network.community_id), as Zeek's and Suricata's.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub community_id_seed: u16,
    /// TLS key log (NSS format, as SSLKEYLOGFILE) to decrypt handshakes with; repeatable; re-read
    /// as it grows while capturing.
    /// `--keylog env` reads the file named by the SSLKEYLOGFILE environment variable. Keys
    /// embedded in a pcapng capture (Decryption Secrets Blocks) are used without this flag.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<String>,
}

/// Output formats of `live`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LiveFormat {
    /// One line per decided session, then the text summary.
    Text,
    /// One JSON line per decided session, then a summary line (Elastic Common Schema).
    Ndjson,
}

const LIVE_EXAMPLES: &str = "Examples:
  tlsdiag live -i eth0                       verdicts as they happen: port 443, TLS on any other
                                             port, inside tunnels (VXLAN, Geneve, GRE, ...) too
  tlsdiag live -i eth0 --vxlan-port 4789,8472   VXLAN on UDP 8472 as well (a mirror's port)
  tlsdiag live -i eth0 -p 443,8443 --ports-only --write repro.pcap
  tlsdiag live -i any --format ndjson -o verdicts.ndjson --duration 3600
  tlsdiag interfaces                         the devices to capture on

Ctrl-C or SIGTERM stops the capture: sessions in flight are decided, then the summary.
Needs root, or: sudo setcap cap_net_raw,cap_net_admin+eip $(command -v tlsdiag)
Exit status: 0 no failed session, 1 failed sessions found, 2 error.";
