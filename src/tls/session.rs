//! The per-connection TLS state: deframer, handshake reassembly and facts, per direction.

use super::cert::CertInfo;
mod complete;
mod gap;
mod handshake;
mod progress13;
mod sslv2;
mod start;

use super::hello::{ClientHello, ServerHello};
use super::names::{AlertDescription, Version};
use super::preamble::{Preamble, PreambleFacts, PreambleOutcome, needs_more};
use super::{alert_sized, content};
use crate::flow::table::Decided;
use crate::flow::{At, Chunk, Direction, PerDir, StreamHandler};
use crate::limits::{FIRST_BYTES_KEPT, MAX_RECORD_SIZES, MAX_TLS_RECORD};
use crate::tls::proxy_header::{HeaderReader, Read};
pub use progress13::{Tls13Progress, finished_record_len};
use serde::Serialize;
use std::sync::{Arc, LazyLock};

#[path = "session_decrypt.rs"]
mod crypt;
pub use crypt::{ClientNext, KeyUse, ServerAnswer};

/// Alerts remembered per session.
const ALERTS_KEPT: usize = 8;
/// Longest history string (as Zeek's `ssl_history`).
const HISTORY_MAX: usize = 100;

/// An alert seen on the wire.
#[derive(Clone, Debug, Serialize)]
pub struct AlertEvent {
    pub direction: Direction,
    pub at: At,
    /// `None` when the alert was encrypted (its content is unknown).
    pub level: Option<u8>,
    pub description: Option<AlertDescription>,
    pub encrypted: bool,
    /// Record payload length (shows why an encrypted record was taken for an alert).
    pub record_len: usize,
}

impl AlertEvent {
    /// Whether the alert is fatal (level 2), or encrypted (assumed to end the session).
    /// Whether the alert ends the session: fatal, encrypted, or an error sent with level
    /// "warning" (TLS 1.3 ignores the level, RFC 8446 §6; only a few alerts are real warnings).
    pub fn fatal(&self) -> bool {
        let benign = matches!(self.description.map(|d| d.0), Some(0 | 90 | 100 | 112));
        self.level == Some(2) || self.encrypted || (self.level == Some(1) && !benign)
    }
}

/// An encrypted record: where it started and its payload length.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EncRecord {
    pub at: At,
    pub len: usize,
    pub content_type: u8,
}

/// The first bytes of a direction that did not speak TLS.
#[derive(Clone, Debug, Serialize)]
pub struct FirstBytes {
    pub at: At,
    /// Printable text (escaped) when the bytes look like text, else hex.
    pub shown: String,
    pub looks_like: &'static str,
}

/// Everything the TLS layer learned about one session.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsFacts {
    pub client_hello: Option<Box<ClientHello>>,
    /// The ClientHello sent again after a HelloRetryRequest.
    pub client_hello_retry: Option<Box<ClientHello>>,
    pub hello_retry_request: Option<Box<ServerHello>>,
    pub server_hello: Option<Box<ServerHello>>,
    pub server_certificates: Vec<Arc<CertInfo>>,
    pub server_certificate_count: usize,
    pub server_certificate: Option<At>,
    pub certificate_request: Option<At>,
    pub server_key_exchange: Option<At>,
    /// The named group of an ECDHE ServerKeyExchange (TLS 1.2 and before; ECS tls.curve).
    pub server_key_exchange_group: Option<super::names::Group>,
    pub server_hello_done: Option<At>,
    /// Client Certificate message: frame and number of certificates (0 = empty).
    pub client_certificate: Option<(At, usize)>,
    pub client_key_exchange: Option<At>,
    pub new_session_ticket: Option<At>,
    pub ccs: PerDir<Option<At>>,
    /// Encrypted Finished (TLS <= 1.2: the first handshake record after ChangeCipherSpec).
    pub finished: PerDir<Option<At>>,
    pub alerts: Vec<AlertEvent>,
    pub encrypted_records: PerDir<u64>,
    pub encrypted_bytes: PerDir<u64>,
    pub first_encrypted: PerDir<Vec<EncRecord>>,
    pub tls13: Tls13Progress,
    pub first_bytes: PerDir<Option<FirstBytes>>,
    pub not_tls: PerDir<bool>,
    pub sslv2_server_hello: bool,
    pub lost_sync: PerDir<u32>,
    pub handshake_messages_lost: PerDir<u32>,
    pub records: PerDir<u64>,
    pub history: String,
    /// Counted oddities (key → count) seen in this session.
    pub anomalies: Vec<(&'static str, u32)>,
    #[serde(skip)]
    pub at_first_record: PerDir<Option<At>>,
    #[serde(skip)]
    pub at_server_hello: Option<At>,
    /// The ServerHello's version, beside it: asked after every record (is this TLS 1.3?),
    /// where reading it through the ServerHello's box would cost a cache miss.
    #[serde(skip)]
    pub negotiated: Option<Version>,
    #[serde(skip)]
    pub at_client_hello: Option<At>,
    /// The last record that moved the handshake on, per direction (heartbeats excluded).
    #[serde(skip)]
    pub last_progress: PerDir<Option<At>>,
    /// Bytes of a record still expected when the data stopped, per direction (a cut-off record
    /// means the capture misses packets, or the sender stopped mid-record).
    pub pending_record: PerDir<usize>,
    /// The last handshake message name per direction and where (for "stalled after X").
    pub last_message: PerDir<Option<(&'static str, At)>>,
    /// The plaintext preamble before TLS (STARTTLS, a proxy), if there was one.
    pub preamble: Option<Box<PreambleFacts>>,
    /// The server sent non-TLS bytes (a banner, `first_bytes` to the client) before its client
    /// sent anything.
    pub server_spoke_first: bool,
    /// After a proxy's go-ahead, the client sent something other than TLS through the tunnel.
    pub tunnel_not_tls: bool,
    /// What the session did with the run's key log (None: the run has none, or no ServerHello).
    pub keys: Option<Box<KeyUse>>,
}

impl TlsFacts {
    /// The server's Certificate message at `at` with its chain (DER certificates, the first at
    /// most [`crate::limits::MAX_CERT_CHAIN`] kept, each parsed once per thread).
    pub(super) fn set_server_chain(&mut self, at: At, chain: &[&[u8]]) {
        self.server_certificate = Some(at);
        self.server_certificate_count = chain.len();
        if chain.len() > crate::limits::MAX_CERT_CHAIN {
            self.note("cert_chain_too_long");
        }
        self.server_certificates = chain
            .iter()
            .take(crate::limits::MAX_CERT_CHAIN)
            .map(|c| super::cert::parse_cached(c))
            .collect();
    }

    /// The negotiated version, if a ServerHello was seen.
    pub fn version(&self) -> Option<Version> {
        self.negotiated
    }

    /// Whether TLS began: a hello was seen in either direction.
    /// Whether a TLS record was read in either direction (a hello or not).
    pub fn records_seen(&self) -> bool {
        self.records.iter().any(|n| *n > 0)
    }

    pub fn tls_seen(&self) -> bool {
        self.client_hello.is_some() || self.server_hello.is_some() || self.sslv2_server_hello
    }

    /// The preamble's outcome, if there was one.
    pub fn preamble_outcome(&self) -> Option<PreambleOutcome> {
        self.preamble.as_ref().map(|p| p.outcome)
    }

    /// The ServerHello's cipher suite (0 before it).
    pub fn suite(&self) -> u16 {
        self.server_hello.as_ref().map_or(0, |sh| sh.cipher_suite.0)
    }

    /// The server name the ClientHello asked for (SNI), if any.
    pub fn sni(&self) -> Option<&str> {
        self.client_hello.as_ref().and_then(|c| c.server_name.as_deref())
    }

    /// Whether TLS 1.3 was negotiated.
    pub fn is_tls13(&self) -> bool {
        self.version().is_some_and(|v| v.is_tls13())
    }

    /// The first fatal (or encrypted) alert.
    pub fn first_fatal_alert(&self) -> Option<&AlertEvent> {
        self.alerts.iter().find(|a| a.fatal())
    }

    /// Whether the encrypted handshake of the server was read with the key log.
    pub fn decrypted(&self) -> bool {
        self.keys.as_ref().is_some_and(|k| k.server_read())
    }

    /// TLS 1.3: the server's answer to the client's flight, when it reads as a rejection:
    /// alert-sized records and nothing else (GnuTLS sends a second alert when the client's
    /// request comes after its first), the first soon after a flight the client did not end with its
    /// own close_notify (then the server's record is merely the answering close_notify).
    pub fn server_rejected_client(&self) -> Option<EncRecord> {
        let p = &self.tls13;
        let (c, s, last) = (p.client_first?, p.server_after_client?, p.client_flight_last?);
        let soon = s.at.ts.nanos_since(last.at.ts) < 1_000_000_000;
        let alert = |d, r: EncRecord| p.alert_sized(d, r.len);
        (!alert(Direction::ToServer, c)
            && alert(Direction::ToClient, s)
            && p.server_after_client_data == 0
            && !p.client_closed
            && soon)
            .then_some(s)
    }

    fn note(&mut self, key: &'static str) {
        match self.anomalies.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 += 1,
            None => self.anomalies.push((key, 1)),
        }
    }

    fn hist(&mut self, dir: Direction, c: char, collapse: bool) {
        let ch = if dir == Direction::ToServer {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        if collapse && self.history.ends_with(ch) {
            return;
        }
        if self.history.len() < HISTORY_MAX {
            self.history.push(ch);
        }
    }
}

/// What the first bytes of a direction are.
enum Start {
    Tls,
    /// An SSLv2-format record of `total` bytes (header included).
    Sslv2 {
        total: usize,
    },
    NotTls,
    /// A recognised STARTTLS or proxy preamble.
    Preamble,
    /// A server's banner before its client spoke.
    Banner,
    /// A PROXY protocol header before the client's TLS (see [`crate::tls::proxy_header`]).
    ProxyHeader,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// Nothing seen yet in this direction.
    #[default]
    Start,
    /// Framing records.
    Records,
    /// Looking for a plausible record header after lost data.
    Resync,
    /// The peer does not speak TLS, or we stopped caring.
    Stopped,
    /// Plaintext before TLS (see [`super::preamble`]).
    Preamble,
    /// The server spoke first; waiting for the client (the banner's further bytes are skipped).
    Banner,
    /// Skipping a PROXY protocol header; TLS starts after it.
    ProxyHeader,
}

#[derive(Debug, Default)]
struct DirState {
    mode: Mode,
    /// Header bytes (and, for records we parse, the body) of the record being read.
    rec: Vec<u8>,
    /// Body bytes of an opaque record still to skip.
    skip: usize,
    /// Handshake message bytes being reassembled.
    hs: Vec<u8>,
    /// Bytes of an oversized handshake message still to skip.
    hs_skip: usize,
    after_ccs: bool,
    /// Version field of the last plaintext record (the ClientHello's record version).
    rec_version: Version,
    /// Bytes kept to classify the first data of the direction.
    first: Vec<u8>,
    first_at: Option<At>,
    proxy: HeaderReader,
}

/// The TLS side of one TCP connection.
///
/// Its state is allocated with the connection's first payload byte: a connection that never
/// carries data (a health check, a SYN flood) costs one pointer here.
#[derive(Debug, Default)]
pub struct Session {
    state: Option<Box<State>>,
    /// Copies of the state's flags that every packet of the connection asks about, kept here
    /// so that asking costs no trip to the boxed state: its outcome is known, and the
    /// directions whose bytes are no longer read.
    done: bool,
    stopped: PerDir<bool>,
}

/// The facts of a session that saw no payload.
static NO_FACTS: LazyLock<TlsFacts> = LazyLock::new(TlsFacts::default);

impl Session {
    /// What the TLS layer learned so far.
    pub fn facts(&self) -> &TlsFacts {
        self.state.as_ref().map_or(&NO_FACTS, |s| &s.facts)
    }

    /// What the TLS layer learned, taken out of the session.
    pub fn into_facts(self) -> TlsFacts {
        self.state.map(|s| s.facts).unwrap_or_default()
    }

    /// Whether the handshake's outcome is known (established, a fatal alert, or not TLS).
    pub fn outcome_known(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.outcome_known())
    }
}

impl Decided for Session {
    fn decided(&self) -> bool {
        self.done
    }
}

impl StreamHandler for Session {
    fn on_chunk(&mut self, dir: Direction, chunk: Chunk<'_>, at: At) {
        let st = self.state.get_or_insert_with(Box::default);
        st.on_chunk(dir, chunk, at);
        self.done = st.done;
        self.stopped = PerDir(st.dirs.0.each_ref().map(|d| d.mode == Mode::Stopped));
    }

    fn wants_data(&self, dir: Direction) -> bool {
        !self.done && !self.stopped[dir]
    }
}

/// The state of a session that saw payload.
#[derive(Debug, Default)]
struct State {
    dirs: PerDir<DirState>,
    facts: TlsFacts,
    /// The outcome is known: bytes after this point are not read (identical facts whatever
    /// the segmentation).
    done: bool,
    /// The plaintext preamble being followed.
    preamble: Option<Box<Preamble>>,
    /// A server's first bytes before its client spoke (at most [`FIRST_BYTES_KEPT`]).
    banner: Vec<u8>,
    /// Decryption state (only in a run with a key log, from the ClientHello on).
    crypt: Option<Box<crypt::Crypt>>,
}

impl State {
    fn on_chunk(&mut self, dir: Direction, chunk: Chunk<'_>, at: At) {
        match chunk {
            Chunk::Data(d) => self.data(dir, d, at),
            Chunk::Gap(n) => self.gap(dir, n, false),
            Chunk::Cut(n) => self.gap(dir, n, true),
        }
        let st = &self.dirs[dir];
        self.facts.pending_record[dir] = if st.mode != Mode::Records {
            0
        } else if st.skip > 0 {
            st.skip
        } else if st.rec.len() >= 5 {
            (be16(&st.rec, 3) as usize + 5).saturating_sub(st.rec.len())
        } else {
            usize::from(!st.rec.is_empty())
        };
    }
}

/// The byte at `i`, or 0 past the end (callers check lengths first: wire bytes are never
/// indexed unchecked).
fn byte(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The big-endian 16-bit field at `i`, or 0 past the end.
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([byte(b, i), byte(b, i + 1)])
}

/// The big-endian 24-bit field at `i` (handshake lengths), or 0 past the end.
fn be24(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([0, byte(b, i), byte(b, i + 1), byte(b, i + 2)])
}

/// `b[from..to]`, or what of it exists.
fn part(b: &[u8], from: usize, to: usize) -> &[u8] {
    let to = to.min(b.len());
    b.get(from.min(to)..to).unwrap_or(&[])
}

/// The length of a record header's body if its type and version are those of TLS (any length).
fn header_len(h: &[u8]) -> Option<usize> {
    let &[typ, major, minor, l0, l1] = h.first_chunk::<5>()?;
    let tls = (content::CHANGE_CIPHER_SPEC..=content::HEARTBEAT).contains(&typ) && major == 3 && minor <= 4;
    tls.then_some(u16::from_be_bytes([l0, l1]) as usize)
}

/// Whether five bytes look like a TLS record header we accept.
fn plausible_header(h: &[u8]) -> bool {
    header_len(h).is_some_and(|l| l <= MAX_TLS_RECORD)
}

/// Whether a header is a TLS record header in every way but its length, which is over the cap
/// (counted as `tls_record_too_long`, the breach of [`MAX_TLS_RECORD`]).
fn too_long_header(h: &[u8]) -> bool {
    header_len(h).is_some_and(|l| l > MAX_TLS_RECORD)
}

impl State {
    /// Whether the handshake's outcome is known (established, a fatal alert, or not TLS).
    fn outcome_known(&self) -> bool {
        let f = &self.facts;
        f.not_tls.iter().any(|x| *x)
            || f.tunnel_not_tls
            || matches!(
                f.preamble_outcome(),
                Some(PreambleOutcome::Refused | PreambleOutcome::GaveUp)
            )
            || f.first_fatal_alert().is_some()
            || (f.handshake_complete() && !(self.crypt.is_some() && self.crypt_reads_on()) && !f.awaits_client_next())
            || f.tls13
                .client_first
                .is_some_and(|c| f.tls13.alert_sized(Direction::ToServer, c.len))
    }

    fn data(&mut self, dir: Direction, mut data: &[u8], at: At) {
        let d = dir;
        while !data.is_empty() && !self.done {
            match self.dirs[d].mode {
                Mode::Stopped => return,
                Mode::Start => {
                    let st = &mut self.dirs[d];
                    st.first_at.get_or_insert(at);
                    let take = FIRST_BYTES_KEPT.saturating_sub(st.first.len()).min(data.len()).max(1);
                    let (head, rest) = data.split_at_checked(take).unwrap_or((data, &[]));
                    st.first.extend_from_slice(head);
                    data = rest;
                    // Wait for a whole record header only when the first byte could start one.
                    let b0 = byte(&st.first, 0);
                    let could_be_tls =
                        (content::CHANGE_CIPHER_SPEC..=content::HEARTBEAT).contains(&b0) || b0 & 0x80 != 0;
                    if st.first.len() < 5 && could_be_tls {
                        continue;
                    }
                    // Nor before a client's plaintext could be told from a preamble's start.
                    if dir == Direction::ToServer && !could_be_tls && self.preamble.is_none() && needs_more(&st.first) {
                        continue;
                    }
                    // Nor before a plaintext client's server has shown its status line (a TLS
                    // server's HTTP 400 is not a plaintext service: see the classifier).
                    let plain_client = self.facts.not_tls[Direction::ToServer];
                    if dir == Direction::ToClient
                        && plain_client
                        && !could_be_tls
                        && st.first.len() < 12
                        && !st.first.contains(&b'\n')
                    {
                        continue;
                    }
                    // An SSLv2 ClientHello is parsed from the bytes kept here: wait for its end
                    // (within FIRST_BYTES_KEPT) so what it offers never depends on segmentation.
                    if b0 & 0x80 != 0 && dir == Direction::ToServer && byte(&st.first, 2) == 1 {
                        let total = 2 + ((((b0 & 0x7f) as usize) << 8) | byte(&st.first, 1) as usize);
                        if st.first.len() < total.min(FIRST_BYTES_KEPT) {
                            continue;
                        }
                    }
                    let first = std::mem::take(&mut st.first);
                    match self.classify_start(dir, &first, at) {
                        Start::Tls => {
                            // Framed exactly as the bytes that follow will be (SSLv2 records once
                            // the server answered in SSLv2), however many of them came first.
                            self.dirs[d].mode = Mode::Records;
                            self.data(dir, &first, at);
                        }
                        Start::Sslv2 { total } => {
                            self.dirs[d].mode = Mode::Records;
                            match first.get(total..).filter(|r| !r.is_empty()) {
                                Some(rest) => self.data(dir, rest, at),
                                None => self.dirs[d].skip = total.saturating_sub(first.len()),
                            }
                        }
                        Start::Preamble => self.data(dir, &first, at),
                        Start::ProxyHeader => {
                            self.dirs[d].mode = Mode::ProxyHeader;
                            self.data(dir, &first, at);
                        }
                        Start::NotTls | Start::Banner => {}
                    }
                }
                Mode::Banner => return,
                Mode::ProxyHeader => match self.dirs[d].proxy.feed(data) {
                    Read::More => return,
                    Read::Done(used) => {
                        // The client's stream starts again after the header.
                        let st = &mut self.dirs[d];
                        st.mode = Mode::Start;
                        st.first_at = None;
                        // A second header (chained proxies) is read afresh.
                        st.proxy = Default::default();
                        data = data.get(used..).unwrap_or(&[]);
                    }
                    Read::NotAHeader => {
                        self.facts.not_tls[d] = true;
                        self.stop_all();
                        return;
                    }
                },
                Mode::Preamble => {
                    let rest = self.preamble_data(dir, data, at);
                    data = &[];
                    if let Some(rest) = rest.filter(|r| !r.is_empty()) {
                        self.data(dir, &rest, at);
                    }
                }
                Mode::Records => {
                    let used = if self.facts.sslv2_server_hello {
                        self.sslv2_records(dir, data, at)
                    } else {
                        self.records(dir, data, at)
                    };
                    data = data.get(used..).unwrap_or(&[]);
                }
                Mode::Resync => {
                    // Positions are tried in stream order, each once its 5 header bytes are
                    // there, so where framing resumes never depends on how the bytes were cut;
                    // `rec` keeps the (at most 4) last bytes whose positions could not be tried.
                    let tail = std::mem::take(&mut self.dirs[d].rec);
                    let in_tail = (0..tail.len()).find(|&p| {
                        let mut h = [0u8; 5];
                        let from_tail = tail.len() - p;
                        if from_tail + data.len() < 5 {
                            return false;
                        }
                        for (to, from) in h.iter_mut().zip(tail.iter().skip(p).chain(data)) {
                            *to = *from;
                        }
                        plausible_header(&h)
                    });
                    if let Some(p) = in_tail {
                        self.dirs[d].mode = Mode::Records;
                        // Fewer than 5 bytes: the header is completed from `data` next round.
                        self.records(dir, tail.get(p..).unwrap_or(&[]), at);
                        continue;
                    }
                    match (0..data.len().saturating_sub(4)).find(|&p| plausible_header(data.get(p..).unwrap_or(&[]))) {
                        Some(p) => {
                            self.dirs[d].mode = Mode::Records;
                            data = data.get(p..).unwrap_or(&[]);
                        }
                        None => {
                            let mut keep = tail;
                            keep.extend_from_slice(data.get(data.len().saturating_sub(4)..).unwrap_or(&[]));
                            let excess = keep.len().saturating_sub(4);
                            keep.drain(..excess);
                            self.dirs[d].rec = keep;
                            data = &[];
                        }
                    }
                }
            }
        }
    }

    /// Decides from the first bytes of a direction whether it speaks TLS (or SSLv2).
    fn classify_start(&mut self, dir: Direction, first: &[u8], at: At) -> Start {
        let d = dir;
        let at0 = self.dirs[d].first_at.unwrap_or(at);
        if let Some(start) = self.plaintext_start(dir, first, at0) {
            return start;
        }
        let want_type = |t: u8| match dir {
            Direction::ToServer => t == content::HANDSHAKE,
            Direction::ToClient => t == content::HANDSHAKE || t == content::ALERT,
        };
        if first.len() >= 5 && plausible_header(first) && want_type(byte(first, 0)) {
            self.facts.at_first_record[d] = Some(at);
            return Start::Tls;
        }
        // SSLv2 record: 2-byte header with the high bit set, then the message type.
        if first.len() >= 5 && byte(first, 0) & 0x80 != 0 {
            let msg = byte(first, 2);
            let total = 2 + ((((byte(first, 0) & 0x7f) as usize) << 8) | byte(first, 1) as usize);
            if dir == Direction::ToServer && msg == 1 {
                // The record only (bytes after it may have come in the same chunk).
                self.sslv2_client_hello(part(first, 0, total.max(5)), at);
                self.facts.last_progress[d] = Some(at);
                return Start::Sslv2 { total };
            }
            if dir == Direction::ToClient && msg == 4 {
                self.facts.sslv2_server_hello = true;
                self.facts.last_progress[d] = Some(at);
                self.facts.hist(dir, 's', false);
                return Start::Sslv2 { total };
            }
        }
        if too_long_header(first) && want_type(byte(first, 0)) {
            // A TLS record header but for its length: still not TLS we can read; say why.
            self.facts.note("tls_record_too_long");
        }
        self.facts.not_tls[d] = true;
        self.facts.first_bytes[d] = Some(start::first_bytes(first, at0));
        self.facts.hist(dir, 'q', false);
        self.dirs[d].mode = Mode::Stopped;
        // A plaintext client: the server's first bytes, if it has not spoken yet, still tell a
        // plaintext service (no TLS on either side) from a TLS server turning the client away.
        let server = &self.dirs[Direction::ToClient];
        self.done = dir == Direction::ToClient || server.mode != Mode::Start || server.first_at.is_some();
        Start::NotTls
    }

    /// Frames records from `data`; returns how many bytes were used (all, unless the mode changed).
    fn records(&mut self, dir: Direction, data: &[u8], at: At) -> usize {
        let d = dir;
        let mut i = 0;
        while i < data.len() {
            if self.dirs[d].mode != Mode::Records || self.done {
                return i;
            }
            let st = &mut self.dirs[d];
            if st.skip > 0 {
                let take = st.skip.min(data.len() - i);
                st.skip -= take;
                i += take;
                continue;
            }
            if st.rec.is_empty() {
                // The common case: a whole record inside this chunk is read in place, without
                // copying it into the record buffer (same checks, same order as below).
                if let Some(h) = data.get(i..i + 5) {
                    let (typ, len) = (byte(h, 0), be16(h, 3) as usize);
                    if plausible_header(h) && !self.opaque(dir, typ, len) {
                        if let Some(body) = data.get(i + 5..i + 5 + len) {
                            let version = Version(be16(h, 1));
                            self.facts.records[d] += 1;
                            i += 5 + len;
                            self.record(dir, typ, version, body, at);
                            self.done = self.outcome_known();
                            continue;
                        }
                    }
                }
            }
            let st = &mut self.dirs[d];
            if st.rec.len() < 5 {
                let take = (5 - st.rec.len()).min(data.len() - i);
                st.rec.extend_from_slice(part(data, i, i + take));
                i += take;
                if st.rec.len() < 5 {
                    return i;
                }
                if !plausible_header(&st.rec) {
                    let key = if too_long_header(&st.rec) {
                        "tls_record_too_long"
                    } else {
                        "tls_bad_record_header"
                    };
                    st.rec.clear();
                    self.lose_sync(dir, key);
                    return i;
                }
                let typ = byte(&st.rec, 0);
                let len = be16(&st.rec, 3) as usize;
                let version = Version(be16(&st.rec, 1));
                self.facts.records[d] += 1;
                if self.opaque(dir, typ, len) {
                    self.dirs[d].rec.clear();
                    self.dirs[d].skip = len;
                    if self.crypt.is_some() {
                        self.crypt_pass(dir, typ);
                    }
                    self.opaque_record(dir, typ, len, at);
                    self.done = self.outcome_known();
                    continue;
                }
                if len == 0 {
                    self.dirs[d].rec.clear();
                    self.record(dir, typ, version, &[], at);
                    self.done = self.outcome_known();
                }
                continue;
            }
            let len = be16(&st.rec, 3) as usize;
            let have = st.rec.len() - 5;
            let take = len.saturating_sub(have).min(data.len() - i);
            // Room for the whole record at once rather than by doubling as its segments arrive,
            // but never more than four times the bytes that came (a header alone reserves
            // nothing: its length field is the sender's word).
            let want = (5 + len).min(st.rec.len() + 4 * take);
            st.rec.reserve(want.saturating_sub(st.rec.len()));
            st.rec.extend_from_slice(part(data, i, i + take));
            i += take;
            if st.rec.len() - 5 == len {
                let mut rec = std::mem::take(&mut self.dirs[d].rec);
                let version = Version(be16(&rec, 1));
                self.record(dir, byte(&rec, 0), version, part(&rec, 5, rec.len()), at);
                rec.clear();
                self.dirs[d].rec = rec;
                self.done = self.outcome_known();
            }
        }
        i
    }

    /// Whether a record of this type and length is opaque to us (encrypted), so its body is only
    /// counted.
    fn opaque(&self, dir: Direction, typ: u8, len: usize) -> bool {
        let st = &self.dirs[dir];
        let opaque = match typ {
            content::APPLICATION_DATA | content::HEARTBEAT => true,
            content::HANDSHAKE | content::ALERT => st.after_ccs,
            _ => false,
        };
        opaque && (self.crypt.is_none() || !self.crypt_wants(dir, typ, len))
    }

    fn opaque_record(&mut self, dir: Direction, typ: u8, len: usize, at: At) {
        if self.crypt.is_some() {
            self.crypt_client_next(dir, None, at);
        }
        let d = dir;
        let f = &mut self.facts;
        let rec = EncRecord {
            at,
            len,
            content_type: typ,
        };
        f.encrypted_records[d] += 1;
        f.encrypted_bytes[d] += len as u64;
        if typ != content::HEARTBEAT {
            f.last_progress[d] = Some(at);
        }
        if f.first_encrypted[d].len() < MAX_RECORD_SIZES {
            if f.first_encrypted[d].capacity() == 0 {
                f.first_encrypted[d].reserve_exact(MAX_RECORD_SIZES);
            }
            f.first_encrypted[d].push(rec);
        }
        match typ {
            content::HANDSHAKE => {
                // TLS <= 1.2: the first handshake record after ChangeCipherSpec is Finished.
                if f.finished[d].is_none() {
                    f.finished[d] = Some(at);
                    f.hist(dir, 'f', false);
                    f.last_message[d] = Some(("Finished", at));
                } else {
                    f.hist(dir, 'h', true);
                }
            }
            content::ALERT => {
                f.hist(dir, 'l', false);
                if f.alerts.len() < ALERTS_KEPT {
                    f.alerts.push(AlertEvent {
                        direction: dir,
                        at,
                        level: None,
                        description: None,
                        encrypted: true,
                        record_len: len,
                    });
                }
            }
            content::HEARTBEAT => f.hist(dir, 'b', true),
            _ => {
                f.hist(dir, 'd', true);
                if f.is_tls13() {
                    self.tls13_record(dir, rec);
                } else if f.server_hello.is_none() && dir == Direction::ToServer && f.client_hello.is_some() {
                    // 0-RTT data before the ServerHello, or a stream we joined late.
                    f.note("application_data_before_server_hello");
                }
            }
        }
    }

    fn tls13_record(&mut self, dir: Direction, rec: EncRecord) {
        let suite = self.facts.suite();
        self.facts.tls13.record(dir, rec, suite);
    }

    /// One complete plaintext record.
    fn record(&mut self, dir: Direction, typ: u8, version: Version, body: &[u8], at: At) {
        let d = dir;
        if self.crypt.is_some() && self.crypt_wants(dir, typ, body.len()) {
            return self.crypt_record(dir, typ, version.0, body, at);
        }
        self.dirs[d].rec_version = version;
        match typ {
            content::CHANGE_CIPHER_SPEC => {
                self.facts.ccs[d].get_or_insert(at);
                self.facts.last_progress[d] = Some(at);
                self.facts.hist(dir, 'i', false);
                // In TLS 1.3 the CCS is a compatibility no-op; records stay type 23 anyway.
                if !self.facts.is_tls13() && self.facts.hello_retry_request.is_none() {
                    self.dirs[d].after_ccs = true;
                }
            }
            content::ALERT if body.len() != 2 => {
                // A plaintext alert is 2 bytes; anything else is sealed (or broken): keep its size.
                self.facts.hist(dir, 'l', false);
                self.facts.last_progress[d] = Some(at);
                if self.facts.alerts.len() < ALERTS_KEPT {
                    self.facts.alerts.push(AlertEvent {
                        direction: dir,
                        at,
                        level: None,
                        description: None,
                        encrypted: true,
                        record_len: body.len(),
                    });
                }
            }
            content::ALERT => {
                self.facts.last_progress[d] = Some(at);
                for a in body.chunks_exact(2) {
                    self.facts.hist(dir, 'l', false);
                    if self.facts.alerts.len() < ALERTS_KEPT {
                        self.facts.alerts.push(AlertEvent {
                            direction: dir,
                            at,
                            level: Some(byte(a, 0)),
                            description: Some(AlertDescription(byte(a, 1))),
                            encrypted: false,
                            record_len: body.len(),
                        });
                    }
                }
            }
            content::HANDSHAKE => self.handshake_bytes(dir, body, at),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
