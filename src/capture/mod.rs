//! Capture: the only input I/O of tlsdiag.
//!
//! What it is: readers for classic pcap (either byte order, micro- or nanosecond, and the
//! Kuznetzov variant), pcapng (several sections and interfaces, each with its own link type and
//! timestamp resolution), gzip-compressed captures, standard input, directories of captures, and a
//! merge of several inputs into one capture in timestamp order (rotated files). With the cargo
//! feature `live`, `live` captures from a network interface through libpcap.
//!
//! What it is not: it does not decode frames (see [`crate::decode`]) and it never allocates per
//! packet: a packet borrows the reader's buffer until the next call.
//!
//! Guarantees: a file that cannot be read at all is a [`CaptureError`] naming the file and the
//! reason; damage after a good header (a corrupt block, a truncated last record) ends that file
//! with a [`StopReason`] that the caller counts as an anomaly, and the run goes on. Every length
//! read from the file is checked against [`crate::limits::MAX_CAPTURE_BLOCK`] before any buffer
//! grows.

mod file;
#[cfg(feature = "live")]
pub mod live;
mod merge;
pub mod origin;
pub mod prefetch;
mod source;

pub use file::FileReader;
pub use merge::Capture;

use std::fmt;
use std::path::PathBuf;

/// Packet time: nanoseconds since the Unix epoch (UTC). All of tlsdiag runs on packet time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from seconds and nanoseconds.
    pub fn from_parts(secs: i64, nanos: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// The wall clock: packet time in live capture (the kernel stamps packets with the same
    /// clock), and the time of the summary line of an empty capture. The analysis of a file
    /// runs on packet time only.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_parts(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i64::from(d.subsec_nanos()),
        )
    }

    /// Whole seconds since the epoch (floor).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Nanoseconds elapsed from `earlier` to `self` (negative if `earlier` is later).
    pub fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Seconds elapsed from `earlier` to `self`, as a float for display.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        self.nanos_since(earlier) as f64 / 1e9
    }

    /// Adds a number of nanoseconds.
    pub fn add_nanos(self, nanos: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2026-11-24T06:28:29.123456Z`.
    pub fn rfc3339(self) -> String {
        let mut b = [0u8; RFC3339_LEN];
        match self.rfc3339_in(&mut b) {
            Some(text) => text.to_string(),
            None => self.rfc3339_wide(),
        }
    }

    /// The fraction of the second as written: microseconds (what pcap and most pcapng files
    /// hold), or nanoseconds when the capture has them; the capture's full precision, never a
    /// made-up digit. Returns the value and its digit count.
    fn fraction(self) -> (i64, usize) {
        let nanos = self.0.rem_euclid(1_000_000_000);
        if nanos % 1000 == 0 {
            (nanos / 1000, 6)
        } else {
            (nanos, 9)
        }
    }

    /// The RFC 3339 form written into `b` (years 0 to 9999), without allocating: every session
    /// report carries several, so the digits are written in place, no formatter.
    fn rfc3339_in(self, b: &mut [u8; RFC3339_LEN]) -> Option<&str> {
        let secs = self.secs();
        let (frac, digits) = self.fraction();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        *b = *b"0000-00-00T00:00:00.000000000Z";
        let mut put = |at: usize, width: usize, mut v: u64| {
            for c in b.iter_mut().skip(at).take(width).rev() {
                *c = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y as u64);
        put(5, 2, u64::from(m));
        put(8, 2, u64::from(d));
        put(11, 2, (sod / 3600) as u64);
        put(14, 2, ((sod / 60) % 60) as u64);
        put(17, 2, (sod % 60) as u64);
        put(20, digits, frac as u64);
        let end = 20 + digits;
        *b.get_mut(end)? = b'Z';
        std::str::from_utf8(b.get(..=end)?).ok()
    }

    /// The RFC 3339 form of a year outside 0 to 9999.
    fn rfc3339_wide(self) -> String {
        let secs = self.secs();
        let (frac, digits) = self.fraction();
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:0digits$}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

/// Longest RFC 3339 form of a year 0 to 9999: nanoseconds and the `Z`.
const RFC3339_LEN: usize = 30;

/// Serialized as its RFC 3339 form (reports store times as timestamps and write them as text),
/// written on the stack.
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut b = [0u8; RFC3339_LEN];
        match self.rfc3339_in(&mut b) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&self.rfc3339_wide()),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b = [0u8; RFC3339_LEN];
        match self.rfc3339_in(&mut b) {
            Some(text) => f.write_str(text),
            None => f.write_str(&self.rfc3339_wide()),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's published algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A link-layer header type as stored in pcap and pcapng (an open set: unknown values are kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The usual short name (as tcpdump prints it) or the number.
    pub fn name(self) -> String {
        match self {
            LinkType::NULL => "NULL".into(),
            LinkType::ETHERNET => "EN10MB".into(),
            LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => "RAW".into(),
            LinkType::LOOP => "LOOP".into(),
            LinkType::LINUX_SLL => "LINUX_SLL".into(),
            LinkType::IPV4 => "IPV4".into(),
            LinkType::IPV6 => "IPV6".into(),
            LinkType::LINUX_SLL2 => "LINUX_SLL2".into(),
            LinkType(n) => format!("linktype {n}"),
        }
    }
}

/// One captured frame, borrowed from the reader until its next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Captured bytes (may be shorter than `orig_len` when cut by the snap length).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
}

/// Why a file stopped before its natural end; counted as a capture anomaly, never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopReason {
    /// Stable snake_case key for the anomaly counters.
    pub key: &'static str,
    /// Human sentence naming the file position.
    pub detail: String,
}

/// A capture input that could not be read at all.
#[derive(Debug)]
pub struct CaptureError {
    pub input: PathBuf,
    pub kind: CaptureErrorKind,
}

/// What made an input unreadable.
#[derive(Debug)]
pub enum CaptureErrorKind {
    Io(std::io::Error),
    Empty,
    NotACapture {
        looks_like: String,
    },
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    Corrupt {
        offset: u64,
        what: String,
    },
    NoCapturesInDirectory,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.input.display();
        match &self.kind {
            CaptureErrorKind::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                write!(f, "{name}: permission denied")
            }
            CaptureErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write!(f, "{name}: no such file or directory")
            }
            CaptureErrorKind::Io(e) => write!(f, "{name}: {e}"),
            CaptureErrorKind::Empty => write!(f, "{name}: empty file, not a capture"),
            CaptureErrorKind::NotACapture { looks_like } => {
                write!(f, "{name}: not a pcap or pcapng capture (looks like {looks_like})")
            }
            CaptureErrorKind::Truncated { what, need, have } => {
                write!(f, "{name}: truncated {what}: need {need} bytes, file has {have}")
            }
            CaptureErrorKind::Corrupt { offset, what } => {
                write!(f, "{name}: corrupt at byte {offset}: {what}")
            }
            CaptureErrorKind::NoCapturesInDirectory => {
                write!(f, "{name}: directory holds no capture files")
            }
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            CaptureErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00.000000Z");
        let t = Timestamp::from_parts(1_795_501_709, 123_456_789);
        assert_eq!(t.rfc3339(), "2026-11-24T06:28:29.123456789Z", "nanoseconds kept");
        let t = Timestamp::from_parts(1_795_501_709, 123_456_000);
        assert_eq!(t.rfc3339(), "2026-11-24T06:28:29.123456Z");
        assert_eq!(
            Timestamp::from_parts(951_782_400, 0).rfc3339(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(Timestamp(-1_000_000_000).rfc3339(), "1969-12-31T23:59:59.000000Z");
    }
}
