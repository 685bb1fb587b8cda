//! tlsdiag: a passive analyzer that reads packet captures and says, for every TLS session on the
//! followed ports, whether it was established, failed or cannot be judged — and when it failed,
//! why: `timeout`, `protocol`, `certificate` or `cipher`, with a precise reason from a published
//! catalog, the evidence (frames and times), the side that ended it, a confidence, the error a
//! browser would have shown and a hint.
//!
//! # Architecture
//!
//! The modules are the pipeline's stages; dependencies point one way, down this list:
//!
//! ```text
//! capture  →  decode  →  flow          →  tls         →  diagnose   →  report
//! files,      link →     connections,     records,       verdict:      text, json
//! stdin,      IP → TCP   reassembly,      handshakes,    cause,
//! merge                  gaps, FIN/RST    alerts, certs  reason, evidence
//! ```
//!
//! - [`capture`] is the only input I/O; [`report`] and [`cli`] the only output I/O.
//! - Everything between is a deterministic function of packet bytes and packet timestamps
//!   (never the wall clock): [`pipeline::Analyzer`] takes packets and hands out decided sessions.
//! - Every cap on attacker-controlled sizes lives in [`limits`], each breach is counted.
//!
//! | stage | module | guarantees |
//! |---|---|---|
//! | capture | [`capture`] | pcap / pcapng / gzip / stdin / directories; bounded buffers; damage is a counted stop, not a crash |
//! | decode | [`decode`] | Ethernet (VLAN, QinQ, PPPoE), SLL, SLL2, raw IP, NULL/LOOP; IPv4/IPv6; never panics |
//! | flow | [`flow`] | wraparound-safe reassembly, explicit gaps, flush at FIN/RST/expiry/end |
//! | tls | [`tls`] | own record framing and handshake reassembly; tls-parser and x509-parser for contents |
//! | diagnose | [`diagnose`] | one catalog of reasons; capture-quality problems never invent a failure |
//! | report | [`report`] | one model, thin printers, a versioned JSON document |

pub mod capture;
pub mod cli;
pub mod decode;
pub mod diagnose;
pub mod flow;
pub mod interrupt;
pub mod limits;
pub mod pipeline;
pub mod report;
pub mod tls;
