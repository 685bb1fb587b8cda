//! NSS key logs (SSLKEYLOGFILE, RFC 9850): the secrets a client or server logged, keyed by the
//! ClientHello random, from `--keylog FILE` and from pcapng Decryption Secrets Blocks.
//!
//! Parsing is never fatal: unknown labels are skipped and counted, malformed lines are counted
//! with their line number, and lines and entries are capped ([`MAX_KEYLOG_LINE`],
//! [`MAX_KEYLOG_ENTRIES`]). Secrets never leave this module and [`super::decrypt`] in any report:
//! only counts and line numbers do.
//!
//! The run's key log is one process-wide store ([`install`], [`add_text`], [`lookup`]): sessions
//! are created by the flow table without arguments, and ask for their keys once, at the
//! ServerHello, and only when a key log was given ([`active`]), so a run without keys does no
//! work for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

/// Longest key log line read (longer lines are counted and skipped).
pub const MAX_KEYLOG_LINE: usize = 1024;
/// Most client randoms kept (further ones are counted and dropped).
pub const MAX_KEYLOG_ENTRIES: usize = 1_000_000;
/// Longest secret accepted, in bytes (TLS secrets are 48 bytes at most: SHA-384).
const MAX_SECRET: usize = 64;
/// Most bytes read from one key log file (a key log of a million sessions is about 800 MB less).
pub const MAX_KEYLOG_BYTES: u64 = 256 << 20;
/// Malformed lines remembered by number (all are counted).
const BAD_LINES_KEPT: usize = 8;

/// A secret as logged (32 or 48 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never printed, not even in debug output.
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// The NSS labels, in the order lines are written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    ClientRandom,
    ClientEarlyTrafficSecret,
    ClientHandshakeTrafficSecret,
    ServerHandshakeTrafficSecret,
    ClientTrafficSecret0,
    ServerTrafficSecret0,
    EarlyExporterSecret,
    ExporterSecret,
}

impl Label {
    pub const ALL: [Label; 8] = [
        Label::ClientRandom,
        Label::ClientEarlyTrafficSecret,
        Label::ClientHandshakeTrafficSecret,
        Label::ServerHandshakeTrafficSecret,
        Label::ClientTrafficSecret0,
        Label::ServerTrafficSecret0,
        Label::EarlyExporterSecret,
        Label::ExporterSecret,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Label::ClientRandom => "CLIENT_RANDOM",
            Label::ClientEarlyTrafficSecret => "CLIENT_EARLY_TRAFFIC_SECRET",
            Label::ClientHandshakeTrafficSecret => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            Label::ServerHandshakeTrafficSecret => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            Label::ClientTrafficSecret0 => "CLIENT_TRAFFIC_SECRET_0",
            Label::ServerTrafficSecret0 => "SERVER_TRAFFIC_SECRET_0",
            Label::EarlyExporterSecret => "EARLY_EXPORTER_SECRET",
            Label::ExporterSecret => "EXPORTER_SECRET",
        }
    }

    fn parse(s: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Every secret logged for one ClientHello random.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    slots: [Option<Secret>; 8],
}

impl Secrets {
    pub fn get(&self, l: Label) -> Option<&[u8]> {
        self.slots
            .get(l.index())
            .and_then(|s| s.as_ref())
            .map(|s| s.0.as_slice())
    }

    fn set(&mut self, l: Label, s: Secret) {
        if let Some(slot) = self.slots.get_mut(l.index()) {
            *slot = Some(s);
        }
    }

    /// Whether any secret is there.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The key log lines of these secrets (for a carved capture's Decryption Secrets Block).
    pub fn lines(&self, client_random: &[u8; 32], out: &mut String) {
        for l in Label::ALL {
            if let Some(s) = self.get(l) {
                out.push_str(l.name());
                out.push(' ');
                out.push_str(&hex(client_random));
                out.push(' ');
                out.push_str(&hex(s));
                out.push('\n');
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// What reading key logs met (counts and line numbers only, never secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines with a known label and valid values.
    pub entries: u64,
    /// Lines whose label is not an NSS TLS label (skipped).
    pub unknown_labels: u64,
    /// Lines that are neither comments nor valid entries.
    pub malformed: u64,
    /// Lines over [`MAX_KEYLOG_LINE`].
    pub too_long: u64,
    /// Entries dropped over [`MAX_KEYLOG_ENTRIES`].
    pub over_cap: u64,
    /// The first malformed lines: (source, line number, what is wrong).
    pub bad_lines: Vec<(String, u64, &'static str)>,
}

/// Key log secrets by ClientHello random.
#[derive(Debug, Default)]
pub struct KeyLog {
    map: HashMap<[u8; 32], Secrets>,
    pub stats: Stats,
}

/// A key log saved as UTF-16 with its byte-order mark (Windows PowerShell 5 writes `>` and
/// `Out-File` that way), as UTF-8 text; anything else is read as it is.
fn utf16_text(text: &[u8]) -> Option<String> {
    let le = match text {
        [0xff, 0xfe, ..] => true,
        [0xfe, 0xff, ..] => false,
        _ => return None,
    };
    let units = text.get(2..)?.chunks_exact(2).map(|p| match p {
        [a, b] if le => u16::from_le_bytes([*a, *b]),
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    });
    Some(
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 2 * MAX_SECRET.max(32) {
        return None;
    }
    let b = s.as_bytes();
    let digit = |c: u8| (c as char).to_digit(16);
    b.chunks_exact(2)
        .map(|p| match p {
            [h, l] => Some((digit(*h)? * 16 + digit(*l)?) as u8),
            _ => None,
        })
        .collect()
}

impl KeyLog {
    /// Parses key log text (`source` names it in the line notes).
    pub fn add_text(&mut self, source: &str, text: &[u8]) {
        if let Some(text) = utf16_text(text) {
            return self.add_text(source, text.as_bytes());
        }
        for (n, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line_no = n as u64 + 1;
            if raw.len() > MAX_KEYLOG_LINE {
                self.stats.too_long += 1;
                self.bad(source, line_no, "line too long");
                continue;
            }
            let Ok(line) = std::str::from_utf8(raw) else {
                self.bad(source, line_no, "not text");
                continue;
            };
            // A byte-order mark (a key log saved by a Windows editor) is not part of the label.
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut f = line.split_ascii_whitespace();
            let (Some(label), Some(random), Some(secret), None) = (f.next(), f.next(), f.next(), f.next()) else {
                self.bad(source, line_no, "not three fields");
                continue;
            };
            let Some(label) = Label::parse(label) else {
                // RSA, TLS 1.2 SSL-session labels, QUIC or other protocols: not ours.
                self.stats.unknown_labels += 1;
                continue;
            };
            let Some(random) = unhex(random).and_then(|r| <[u8; 32]>::try_from(r).ok()) else {
                self.bad(source, line_no, "client random is not 32 bytes of hex");
                continue;
            };
            let Some(secret) = unhex(secret).filter(|s| (16..=MAX_SECRET).contains(&s.len())) else {
                self.bad(source, line_no, "secret is not hex of a plausible length");
                continue;
            };
            if label == Label::ClientRandom && secret.len() != 48 {
                self.bad(source, line_no, "master secret is not 48 bytes");
                continue;
            }
            if !self.map.contains_key(&random) && self.map.len() >= MAX_KEYLOG_ENTRIES {
                self.stats.over_cap += 1;
                continue;
            }
            self.stats.entries += 1;
            self.map.entry(random).or_default().set(label, Secret(secret));
        }
    }

    fn bad(&mut self, source: &str, line: u64, what: &'static str) {
        self.stats.malformed += 1;
        if self.stats.bad_lines.len() < BAD_LINES_KEPT {
            self.stats.bad_lines.push((source.to_string(), line, what));
        }
    }

    /// The secrets logged for a ClientHello random.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.map.get(client_random)
    }

    /// How many client randoms have secrets.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Where `--keylog` reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// `--keylog env`: the file named by `SSLKEYLOGFILE`.
    Env,
}

impl Source {
    pub fn parse(arg: &str) -> Source {
        if arg == "env" {
            Source::Env
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    /// The file to read.
    pub fn path(&self) -> Result<PathBuf, String> {
        match self {
            Source::File(p) => Ok(p.clone()),
            Source::Env => std::env::var_os("SSLKEYLOGFILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| "--keylog env: SSLKEYLOGFILE is not set".to_string()),
        }
    }
}

/// Reads at most `cap` bytes of a key log file from byte `from` on.
fn read_file(path: &Path, from: u64, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    // Not from the start only: a pipe (`--keylog <(...)`) cannot seek.
    if from > 0 {
        f.seek(SeekFrom::Start(from))?;
    }
    // Sized once: a key log of hundreds of MiB is not read into a buffer twice its size.
    let len = f.metadata().map_or(0, |m| m.len().saturating_sub(from).min(cap));
    let mut v = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(cap).read_to_end(&mut v)?;
    Ok(v)
}

/// A key log file, or of one larger than `cap` bytes its newest part: the last `cap` bytes from
/// their first whole line (clients append to their key log for as long as it is set, so the
/// keys of a recent capture are at its end). Returns the text and the byte it starts at.
fn read_newest(path: &Path, cap: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let len = std::fs::metadata(path)?.len();
    if len <= cap {
        return Ok((read_file(path, 0, cap)?, 0));
    }
    let from = len - cap;
    let mut text = read_file(path, from, cap)?;
    // The first line is cut unless the byte before it ends a line.
    let whole_first = read_file(path, from - 1, 1)?.first() == Some(&b'\n');
    let skip = if whole_first {
        0
    } else {
        text.iter().position(|&c| c == b'\n').map_or(text.len(), |i| i + 1)
    };
    text.drain(..skip);
    Ok((text, from + skip as u64))
}

/// The run's key log.
struct Store {
    log: RwLock<KeyLog>,
    /// Files given with `--keylog`, and how many bytes of each were read (live re-reads).
    files: RwLock<Vec<(PathBuf, u64)>>,
}

static STORE: LazyLock<Arc<Store>> = LazyLock::new(|| {
    Arc::new(Store {
        log: RwLock::new(KeyLog::default()),
        files: RwLock::new(Vec::new()),
    })
});
static ACTIVE: AtomicBool = AtomicBool::new(false);
static REFRESHING: AtomicBool = AtomicBool::new(false);
/// When the files were last re-read (milliseconds since the store was made).
static LAST_REFRESH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static STARTED: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);
/// Least time between two re-reads of a growing key log.
const REFRESH_EVERY_MS: u64 = 100;

/// `live`: re-read the `--keylog` files as they grow when a session's keys are not there yet.
pub fn set_refreshing() {
    LazyLock::force(&STARTED);
    REFRESHING.store(true, Ordering::Relaxed);
}

/// Whether key logs are re-read as they grow.
pub fn refreshing() -> bool {
    REFRESHING.load(Ordering::Relaxed)
}

/// Whether the run has a key log (given with `--keylog` or found in the capture).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Reads `--keylog` files into the run's store; returns a message per file that could not be
/// read. With `live`, a file that is not there yet is watched for (read when it appears).
pub fn install(sources: &[Source], live: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for s in sources {
        let path = match s.path() {
            Ok(p) => p,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let (text, start) = match read_newest(&path, MAX_KEYLOG_BYTES) {
            Ok(t) => t,
            Err(e) if live && e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!(
                    "--keylog {}: not there yet; read as it appears",
                    path.display()
                ));
                (Vec::new(), 0)
            }
            Err(e) => {
                problems.push(format!("--keylog {}: {e}", path.display()));
                continue;
            }
        };
        let mut name = path.display().to_string();
        if start > 0 {
            problems.push(format!(
                "--keylog {}: larger than {} MiB; only its newest {} MiB read (from byte {start}), so the keys of sessions older than those are missing",
                path.display(),
                MAX_KEYLOG_BYTES >> 20,
                (text.len() + (1 << 19)) >> 20
            ));
            name = format!("{name} (from byte {start})");
        }
        STORE
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add_text(&name, &text);
        // A growing file is read on from its last whole line.
        let done = start + text.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1) as u64;
        STORE
            .files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((path, done));
        ACTIVE.store(true, Ordering::Relaxed);
    }
    problems
}

/// Adds key log text found in the capture (a pcapng Decryption Secrets Block).
pub fn add_text(source: &str, text: &[u8]) {
    STORE
        .log
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .add_text(source, text);
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Re-reads what was appended to the `--keylog` files since they were last read (a key log that
/// grows while `live` captures). Lines cut at the end are read again next time.
pub fn refresh() {
    if !active() {
        return;
    }
    let now = STARTED.elapsed().as_millis() as u64;
    let last = LAST_REFRESH.load(Ordering::Relaxed);
    if now.saturating_sub(last) < REFRESH_EVERY_MS && last != 0 {
        return;
    }
    LAST_REFRESH.store(now.max(1), Ordering::Relaxed);
    let mut files = STORE.files.write().unwrap_or_else(PoisonError::into_inner);
    for (path, done) in files.iter_mut() {
        if std::fs::metadata(&*path).is_ok_and(|m| m.len() < *done) {
            // The file was truncated or replaced: read it all again.
            *done = 0;
        }
        // At most the cap at a time (the store's entries are capped too).
        let Ok(new) = read_file(path, *done, MAX_KEYLOG_BYTES) else {
            continue;
        };
        // Only whole lines.
        let Some(end) = new.iter().rposition(|&c| c == b'\n') else {
            continue;
        };
        let whole = new.get(..=end).unwrap_or(&[]);
        STORE
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add_text(&path.display().to_string(), whole);
        *done += whole.len() as u64;
    }
}

/// The secrets of a ClientHello random, if the run has them.
pub fn lookup(client_random: &[u8; 32]) -> Option<Secrets> {
    with_secrets(client_random, Secrets::clone)
}

/// `f` of the secrets of a ClientHello random, if the run has them (no copy of the secrets).
pub fn with_secrets<R>(client_random: &[u8; 32], f: impl FnOnce(&Secrets) -> R) -> Option<R> {
    if !active() {
        return None;
    }
    STORE
        .log
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(client_random)
        .map(f)
}

/// What reading the run's key logs met.
pub fn stats() -> Stats {
    STORE.log.read().unwrap_or_else(PoisonError::into_inner).stats.clone()
}

/// The key log lines of the given client randoms (those the run has secrets for).
pub fn lines_for<'a>(randoms: impl IntoIterator<Item = &'a [u8; 32]>) -> String {
    let log = STORE.log.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::new();
    for r in randoms {
        if let Some(s) = log.get(r) {
            s.lines(r, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "0102030405060708091011121314151617181920212223242526272829303132";

    #[test]
    fn parses_every_label_and_counts_the_rest() {
        let s48 = "aa".repeat(48);
        let s32 = "bb".repeat(32);
        let mut text = String::from("# comment\n\n");
        for l in Label::ALL {
            let s = if l == Label::ClientRandom { &s48 } else { &s32 };
            text.push_str(&format!("{} {R} {s}\n", l.name()));
        }
        text.push_str(&format!("RSA 0011 {s32}\n"));
        text.push_str(&format!("CLIENT_TRAFFIC_SECRET_1 {R} {s32}\n"));
        text.push_str("CLIENT_RANDOM zz\n");
        text.push_str(&format!("CLIENT_RANDOM {R} abc\n"));
        text.push_str(&format!("CLIENT_RANDOM {} {s48}\n", &R[2..]));
        text.push_str(&"x".repeat(MAX_KEYLOG_LINE + 1));
        let mut k = KeyLog::default();
        k.add_text("keys.txt", text.as_bytes());
        assert_eq!(k.stats.entries, 8);
        assert_eq!(k.stats.unknown_labels, 2);
        assert_eq!(k.stats.malformed, 4);
        assert_eq!(k.stats.too_long, 1);
        let lines: Vec<u64> = k.stats.bad_lines.iter().map(|b| b.1).collect();
        assert_eq!(lines, vec![13, 14, 15, 16]);
        let r: [u8; 32] = unhex(R).unwrap().try_into().unwrap();
        let s = k.get(&r).unwrap();
        assert_eq!(s.get(Label::ClientRandom).map(<[u8]>::len), Some(48));
        assert_eq!(s.get(Label::ExporterSecret).map(<[u8]>::len), Some(32));
        let mut back = String::new();
        s.lines(&r, &mut back);
        assert_eq!(back.lines().count(), 8);
        assert!(format!("{s:?}").find("aaaa").is_none(), "debug output shows no secret");
    }

    #[test]
    fn a_key_log_over_the_cap_is_read_from_its_newest_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        let line = |i: u8| format!("CLIENT_RANDOM {} {}\n", format!("{i:02x}").repeat(32), "cc".repeat(48));
        let text: String = (1..=4).map(line).collect();
        std::fs::write(&path, &text).unwrap();
        let n = line(1).len() as u64;
        let (all, start) = read_newest(&path, 10 * n).unwrap();
        assert_eq!((all.len(), start), (text.len(), 0));
        // Two and a half lines fit: the cut one is dropped, the last two are read whole.
        let (tail, start) = read_newest(&path, 2 * n + n / 2).unwrap();
        assert_eq!((tail.as_slice(), start), (&text.as_bytes()[2 * n as usize..], 2 * n));
        // Exactly two lines fit: both are whole.
        let (tail, start) = read_newest(&path, 2 * n).unwrap();
        assert_eq!((tail.len() as u64, start), (2 * n, 2 * n));
        let mut k = KeyLog::default();
        k.add_text("keys.txt", &tail);
        assert_eq!((k.len(), k.stats.malformed), (2, 0));
    }

    #[test]
    fn garbage_is_never_fatal() {
        let mut k = KeyLog::default();
        let junk: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        k.add_text("junk", &junk);
        k.add_text("crlf", format!("CLIENT_RANDOM {R} {}\r\n", "cc".repeat(48)).as_bytes());
        assert_eq!(k.len(), 1);
        assert!(k.stats.bad_lines.len() <= BAD_LINES_KEPT);
    }
}
