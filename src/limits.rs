//! Every cap on attacker-controlled sizes, in one place, each with its reason.
//!
//! A breach is never a crash: it is counted under the key named next to each cap and shown in the
//! capture summary (`anomalies`), and the analysis goes on with what fits.

/// Largest pcap record or pcapng block accepted (bytes). Real frames are at most 256 KiB
/// (libpcap's maximum snap length); 16 MiB leaves room for odd tools while keeping a corrupt
/// length from allocating gigabytes. A pcap record may not exceed the file's snap length either
/// (at least 256 KiB). Breach: the header is taken as damaged and the reader resumes at the next
/// valid record (`capture_resynced`, `capture_bytes_skipped`), or the file stops there
/// (`capture_corrupt`) when none follows.
pub const MAX_CAPTURE_BLOCK: usize = 16 << 20;

/// Interfaces remembered per pcapng section. Breach: `pcapng_too_many_interfaces`.
pub const MAX_PCAPNG_INTERFACES: usize = 4096;

/// Default cap on TCP connections tracked at once (`--max-flows`). A connection that carried no
/// payload costs about 0.7 KiB of state plus table bookkeeping (its TLS state is allocated with
/// its first payload byte); measured under a SYN flood of one million half-open connections:
/// 131 MB peak with this default, 20 MB with `--max-flows 10000` (one thread). Real captures
/// hold far fewer connections at once. Breach: `flow_table_full` (the connection with the
/// earliest deadline is decided early, without a tombstone, to make room).
pub const DEFAULT_MAX_FLOWS: usize = 100_000;

/// Out-of-order bytes buffered per direction while waiting for a hole to fill. Past it the hole
/// is declared a gap and the data after it is delivered. Breach: `reassembly_buffer_full`.
pub const MAX_OOO_BYTES: usize = 256 * 1024;

/// Handshake bytes of one direction kept after delivery, so that a later copy of the same
/// sequence numbers can be compared with them (a forged or corrupted segment disagrees). Kept
/// only while the handshake is undecided and for a few segments after. Breach: later bytes are
/// not compared.
pub const MAX_CONFLICT_HISTORY: usize = 32 * 1024;

/// Out-of-order segments buffered per direction (bounds bookkeeping for tiny segments).
/// Breach: `reassembly_buffer_full`.
pub const MAX_OOO_SEGMENTS: usize = 512;

/// Largest TLS record payload accepted by the deframer: 2^14 plaintext + 2048 expansion, the
/// TLS 1.2 ciphertext maximum (RFC 5246 §6.2.3). A larger length means the stream is not TLS or
/// we lost sync. Breach: `tls_record_too_long`.
pub const MAX_TLS_RECORD: usize = (1 << 14) + 2048;

/// Largest handshake message reassembled (bytes). Handshake lengths are 24-bit (16 MiB);
/// certificate chains of post-quantum signatures reach ~350 KB. Breach: `handshake_too_long`
/// (the message is skipped, the session notes it).
pub const MAX_HANDSHAKE_MESSAGE: usize = 512 * 1024;

/// Certificates parsed per chain. Breach: `cert_chain_too_long` (the rest are counted, not parsed).
pub const MAX_CERT_CHAIN: usize = 10;

/// Parsed certificates remembered per thread (see `tls::cert::parse_cached`), and the largest
/// DER kept there: 256 × 16 KiB bounds the cache at 4 MiB per thread; real leaf and
/// intermediate certificates are 1–3 KB, larger ones are parsed every time.
pub const CERT_CACHE_ENTRIES: usize = 256;
pub const CERT_CACHE_MAX_DER: usize = 16 << 10;

/// Evidence entries kept per session (the first ones and the last ones matter most).
/// Breach: the session's `evidence_truncated` count.
pub const MAX_EVIDENCE: usize = 48;

/// Bytes of a non-TLS peer's first data kept to show what it spoke.
pub const FIRST_BYTES_KEPT: usize = 48;

/// Default idle time after which a connection is decided (seconds of packet time).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;

/// Default handshake timeout (seconds of packet time): a SYN or ClientHello unanswered this
/// long is a timeout even if the capture goes on.
pub const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 10;

/// A frame stamped more than this ahead of the capture's clock moves the clock only once the
/// next frame confirms the jump; a frame the next one falls back from by more than this stood
/// alone ahead of its neighbours: a damaged timestamp, counted as `timestamp_outlier` and kept
/// off the clock. One corrupt time would otherwise expire every connection open at that moment
/// and split each of them into a new connection per later packet. One second: any real pause
/// is confirmed by the next frame, whatever its length.
pub const TIMESTAMP_JUMP_NS: i64 = 1_000_000_000;

/// While a jump ahead of the clock is unconfirmed, its frame still finishes its own connection
/// if that connection's timer ran out by the frame's time (what the old clock would have done),
/// but only for jumps up to this: a frame an hour ahead of every other is far more likely a
/// damaged time than a late answer after an hour of silence, and its connection goes on.
pub const TIMESTAMP_LEAP_NS: i64 = 3_600 * 1_000_000_000;

/// Failed sessions held until the end of the capture so that their reason can use what the same
/// server accepted in *later* sessions (version and cipher failures). Past the cap they are decided
/// at once with what is known so far, so memory does not grow with the capture.
/// Breach: `deferred_decisions_full`.
pub const MAX_DEFERRED: usize = 1024;

/// Records of encrypted sizes kept per direction for the evidence (first N).
pub const MAX_RECORD_SIZES: usize = 8;

/// Capture files open at once when several inputs are merged (each holds a 256 KiB read buffer
/// and a file descriptor): rotated captures need one or two, so this only bounds captures that
/// all overlap in time, keeping 64 × 256 KiB = 16 MiB and well under a 256 open-file limit.
/// Breach: `inputs_read_out_of_order` (the input waits until another ends).
pub const MAX_OPEN_INPUTS: usize = 64;

/// Connections on unlisted ports waiting (after their SYN) for their client's first payload,
/// which decides whether they are followed as TLS (see `flow::watch`), per flow table. Entries
/// idle for the idle timeout are dropped first. Breach: `content_watch_full` (such a connection
/// is then followed only if a segment's payload is a ClientHello).
pub const MAX_WATCHED: usize = 65_536;

/// Segments kept per waiting connection (SYN, SYN-ACK, ACK, a server banner or two), and their
/// header and payload bytes. Breach: later segments are not kept (a banner past it drops the
/// connection from the watch).
pub const MAX_WATCH_SAVED: usize = 8;
pub const MAX_WATCH_SAVED_BYTES: usize = 2048;

/// Plaintext bytes of a STARTTLS or proxy preamble read per direction before the upgrade (a mail
/// server's EHLO answer or an XMPP server's stream features are a few hundred bytes, an IMAP
/// CAPABILITY line a kilobyte), and the longest line or message kept whole. Breach: the preamble
/// gives up; the connection is not read further (`tls_not_started`).
pub const MAX_PREAMBLE_BYTES: usize = 16 * 1024;
pub const MAX_PREAMBLE_UNIT: usize = 4096;

/// Default kernel capture buffer of `live` (KiB): room for about a second of a busy 100 Mbit/s
/// link while the analyzer parses a burst of certificates (libpcap's and tcpdump's default of
/// 2 MiB drops sooner). `live -B` changes it.
pub const DEFAULT_LIVE_BUFFER_KIB: u32 = 16 << 10;
