//! One capture file (or standard input): classic pcap or pcapng, plain or gzip-compressed.
//!
//! The reader keeps one growable buffer and hands out packets that borrow it, so reading costs
//! no allocation per packet. Formats are parsed here by hand because they are small and because
//! we need exact byte offsets for error messages and bounded buffers for hostile lengths.

use super::prefetch::{LEAD, Prefetch};
use super::source::{Counting, interruptible};
use super::{CaptureError, CaptureErrorKind, LinkType, Packet, StopReason, Timestamp};
use crate::limits::MAX_CAPTURE_BLOCK;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Read size: every input of a merged capture (a directory of rotated files) holds one such
/// buffer from the start, so it stays small; 256 KiB reads are as fast as 4 MiB ones (measured
/// on the 1.2 GB benchmark capture) and 120 inputs cost 40 MB instead of 400 MB.
const INITIAL_BUFFER: usize = 256 << 10;
/// Buffers kept for reuse in a parallel run: enough for every batch the workers may hold at
/// once (8 batches of 1 MiB, each spanning up to 5 buffers), so the steady state allocates no
/// new buffer; bounds this reserve at 12 MiB.
const SPARE_BUFFERS: usize = 48;

/// A pcap record may always claim this much (tcpdump's largest snap length), whatever the
/// file's snap length says.
const RESYNC_MAX_RECORD: usize = 256 << 10;
/// Records that must follow one another, each plausible, for reading to resume at a position
/// after a damaged record header (fewer where the file ends).
const RESYNC_CHAIN: usize = 3;
/// How far from the last valid record's time a record found by resynchronisation may be.
const RESYNC_SECS: u32 = 86_400;
/// Bytes searched per step of a resynchronisation (plus the span of a chain).
const RESYNC_STEP: usize = 1 << 20;
/// Damage descriptions kept per input (the rest are only counted).
const DAMAGE_NOTES: usize = 8;

/// Classic pcap magic numbers as the file's first bytes: big-endian, nanosecond times, record
/// header size (24 for the "modified pcap" of old Linux patches).
const PCAP_MAGICS: [([u8; 4], bool, bool, usize); 6] = [
    ([0xd4, 0xc3, 0xb2, 0xa1], false, false, 16),
    ([0xa1, 0xb2, 0xc3, 0xd4], true, false, 16),
    ([0x4d, 0x3c, 0xb2, 0xa1], false, true, 16),
    ([0xa1, 0xb2, 0x3c, 0x4d], true, true, 16),
    ([0x34, 0xcd, 0xb2, 0xa1], false, false, 24),
    ([0xa1, 0xb2, 0xcd, 0x34], true, false, 24),
];
/// A pcapng section header block's type, as its first bytes (the same in either byte order).
const PCAPNG_SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The byte order a pcapng section header block declares (its bytes 8..12), if it declares one.
fn section_endian(block: &[u8]) -> Option<Endian> {
    match block.get(8..12)? {
        [0x4d, 0x3c, 0x2b, 0x1a] => Some(Endian { big: false }),
        [0x1a, 0x2b, 0x3c, 0x4d] => Some(Endian { big: true }),
        _ => None,
    }
}

/// Whether `block` starts with a pcapng block type we know of (a section header only with its
/// byte-order magic): the test a damaged reader uses to find its way again.
fn known_block(e: Endian, block: &[u8]) -> bool {
    match e.u32(block, 0) {
        0x0A0D_0D0A => section_endian(block).is_some(),
        t => matches!(t, 1..=6 | 9 | 10 | 0x0BAD | 0x4000_0BAD),
    }
}

#[derive(Clone, Copy, Debug)]
struct Endian {
    big: bool,
}

impl Endian {
    /// The 16-bit field at `at` (0 past the end of `b`: callers check lengths first).
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = b
            .get(at..)
            .and_then(|b| b.first_chunk::<2>())
            .copied()
            .unwrap_or_default();
        if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    /// The 32-bit field at `at` (0 past the end of `b`: callers check lengths first).
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = b
            .get(at..)
            .and_then(|b| b.first_chunk::<4>())
            .copied()
            .unwrap_or_default();
        if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    /// The 64-bit field at `at` (0 past the end of `b`: callers check lengths first).
    fn i64(self, b: &[u8], at: usize) -> i64 {
        let a = b
            .get(at..)
            .and_then(|b| b.first_chunk::<8>())
            .copied()
            .unwrap_or_default();
        if self.big {
            i64::from_be_bytes(a)
        } else {
            i64::from_le_bytes(a)
        }
    }
}

/// One pcapng interface: its link type and how to turn its timestamps into nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    /// Timestamp units per second (10^n or 2^n).
    units_per_sec: u64,
    offset_secs: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        endian: Endian,
        nanos: bool,
        link: LinkType,
        record_header: usize,
        /// The longest captured length a record may claim: the file's snap length, at least
        /// [`RESYNC_MAX_RECORD`], at most [`MAX_CAPTURE_BLOCK`]. A longer one is a damaged header.
        max_record: usize,
    },
    PcapNg {
        endian: Endian,
        interfaces: Vec<Interface>,
    },
}

/// Where the next packet lies in the buffer.
struct Pos {
    ts: Timestamp,
    link: LinkType,
    start: usize,
    len: usize,
    orig_len: u32,
}

/// Reader for one capture input.
pub struct FileReader {
    name: PathBuf,
    src: Box<dyn Read + Send>,
    /// Shared so a parallel run can hand packets to worker threads without copying them; a
    /// buffer still held by a worker is never written again (the next read goes to a new one).
    buf: Arc<Vec<u8>>,
    /// Buffers handed out before, reused once every worker has let go of them.
    spare: Vec<Arc<Vec<u8>>>,
    start: usize,
    end: usize,
    eof: bool,
    /// File offset (decompressed) of `buf[start]`.
    offset: u64,
    format: Format,
    raw_bytes: Arc<AtomicU64>,
    /// Why the file ended early, if it did.
    pub stop: Option<StopReason>,
    /// Non-fatal oddities met while reading (key, count).
    pub oddities: Vec<(&'static str, u64)>,
    pub gzip: bool,
    /// The file itself, when the input is a regular file (for reading ahead in chunks).
    file: Option<std::fs::File>,
    /// Chunks read ahead by other threads, once [`FileReader::prefetch`] was called.
    prefetch: Option<(Arc<Prefetch>, u64)>,
    /// How many more chunks reading may take before it pauses (`None`: no limit).
    chunk_budget: Option<u32>,
    /// Reading stopped because the chunk budget ran out (not the end of the input).
    paused: bool,
    /// A damaged record header was met: the reader is looking for the next valid record.
    resync: Option<Resync>,
    /// Seconds of the last pcap record whose time fits the capture's (a record found by
    /// resynchronisation must be near): a record far from it counts only once a second record
    /// agrees, so one damaged time or one misread record does not move it.
    last_secs: Option<u32>,
    /// The time of the last record that did not fit `last_secs`.
    odd_secs: Option<u32>,
    /// What the reader skipped over (the first [`DAMAGE_NOTES`]; all are counted).
    pub damage: Vec<String>,
}

/// A search for the next valid record after a damaged record header.
#[derive(Clone, Debug)]
struct Resync {
    /// File offset of the damaged header.
    from: u64,
    /// What was wrong with it, naming its offset.
    what: String,
}

impl FileReader {
    /// Opens a path (`-` is standard input), detects gzip and the capture format.
    pub fn open(path: &Path) -> Result<FileReader, CaptureError> {
        let err = |kind| CaptureError {
            input: path.to_path_buf(),
            kind,
        };
        let mut file = None;
        // A pipe is read so that a stop request (Ctrl-C) ends it without waiting for the writer.
        let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
            interruptible(io::stdin())
        } else {
            let f = std::fs::File::open(path).map_err(|e| err(CaptureErrorKind::Io(e)))?;
            let meta = f.metadata().ok();
            if meta.as_ref().is_some_and(|m| m.is_dir()) {
                return Err(err(CaptureErrorKind::NotACapture {
                    looks_like: "a directory".into(),
                }));
            }
            if !meta.is_some_and(|m| m.is_file()) {
                interruptible(f)
            } else {
                file = f.try_clone().ok();
                Box::new(f)
            }
        };
        let mut r = Self::from_reader(path.to_path_buf(), raw)?;
        if !r.gzip {
            r.file = file;
        }
        Ok(r)
    }

    /// Builds a reader over any byte source (used for stdin, files and tests).
    pub fn from_reader(name: PathBuf, raw: Box<dyn Read + Send>) -> Result<FileReader, CaptureError> {
        let err = |kind| CaptureError {
            input: name.clone(),
            kind,
        };
        let raw_bytes = Arc::new(AtomicU64::new(0));
        let mut counted = Counting {
            inner: raw,
            count: raw_bytes.clone(),
        };
        // Peek at the first bytes to recognise gzip, then read them again through the chain.
        let mut head = Vec::with_capacity(2);
        while head.len() < 2 {
            let mut b = [0u8; 1];
            match counted.read(&mut b) {
                Ok(0) => break,
                Ok(_) => head.extend_from_slice(&b),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(CaptureErrorKind::Io(e))),
            }
        }
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let chained = io::Cursor::new(head).chain(counted);
        let src: Box<dyn Read + Send> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(
                256 * 1024,
                chained,
            )))
        } else {
            Box::new(chained)
        };
        let mut r = FileReader {
            name: name.clone(),
            src,
            buf: Arc::new(vec![0; INITIAL_BUFFER]),
            spare: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            format: Format::PcapNg {
                endian: Endian { big: false },
                interfaces: Vec::new(),
            },
            raw_bytes,
            stop: None,
            oddities: Vec::new(),
            gzip,
            file: None,
            prefetch: None,
            chunk_budget: None,
            paused: false,
            resync: None,
            last_secs: None,
            odd_secs: None,
            damage: Vec::new(),
        };
        r.read_file_header().map_err(err)?;
        Ok(r)
    }

    /// From now on, reads the rest of the file in chunks that any thread may read ahead through
    /// the returned handle ([`Prefetch::read_ahead`]). `None` for inputs that are not a plain
    /// regular file (standard input, gzip), which are read on as before.
    pub fn prefetch(&mut self, chunk: usize) -> Option<Arc<Prefetch>> {
        if let Some((p, _)) = &self.prefetch {
            return Some(p.clone());
        }
        let file = self.file.take()?;
        // The chunks start at the next unread record: what `src` read beyond it is dropped
        // and read again from the chunks.
        self.end = self.start;
        self.raw_bytes.store(self.offset, Ordering::Relaxed);
        let p = Arc::new(Prefetch::new(file, self.offset, chunk));
        self.prefetch = Some((p.clone(), 0));
        Some(p)
    }

    /// When reading ahead in chunks: from now on take at most `n` more chunks, then pause
    /// ([`FileReader::paused`]) until the budget is set again; `None` lifts the limit. The
    /// thread that takes a chunk copies it (if nobody read it ahead) and frames it while it is
    /// in that core's cache.
    pub fn set_chunk_budget(&mut self, n: Option<u32>) {
        self.chunk_budget = n;
    }

    /// Whether the last `next_packet` came back empty because the chunk budget ran out (more
    /// packets may follow), not because the input ended.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// `fill` from chunks read ahead: the next chunk becomes the buffer, with the unread end of
    /// the current one copied just before its bytes (or both joined in a new buffer when the
    /// remainder is longer than the room there).
    fn fill_from_chunks(&mut self, need: usize) -> io::Result<bool> {
        while self.avail() < need {
            if self.eof {
                return Ok(false);
            }
            let Some((pf, next)) = &mut self.prefetch else {
                return Ok(false);
            };
            if let Some(budget) = &mut self.chunk_budget {
                if *budget == 0 {
                    self.paused = true;
                    return Ok(false);
                }
                *budget -= 1;
            }
            let (pf, k) = (pf.clone(), *next);
            *next += 1;
            let (mut chunk, n) = pf.take(k)?;
            if n == 0 {
                self.eof = true;
                continue;
            }
            self.raw_bytes.fetch_add(n as u64, Ordering::Relaxed);
            let rest_len = self.end - self.start;
            let unique_chunk = Arc::get_mut(&mut chunk).is_some();
            let bytes = chunk.get(LEAD..LEAD + n).unwrap_or(&[]);
            if rest_len > LEAD || !unique_chunk {
                // A record longer than the room before a chunk: it grows in a buffer of its own,
                // reserved once for the whole record (a hostile length cannot make every chunk
                // copy the record again).
                let (start, end) = (self.start, self.end);
                match Arc::get_mut(&mut self.buf) {
                    Some(b) if b.len() != pf.buffer_len() => {
                        b.truncate(end);
                        b.drain(..start);
                        b.reserve(need.saturating_sub(b.len()));
                        b.extend_from_slice(bytes);
                    }
                    _ => {
                        let mut b = Vec::with_capacity(need.max(rest_len + n));
                        b.extend_from_slice(self.buf.get(start..end).unwrap_or(&[]));
                        b.extend_from_slice(bytes);
                        let old = std::mem::replace(&mut self.buf, Arc::new(b));
                        pf.recycle(old);
                    }
                }
                pf.recycle(chunk);
                self.start = 0;
                self.end = self.buf.len();
                continue;
            }
            // The unread end of the current buffer goes just before the chunk's bytes.
            let rest = self.buf.get(self.start..self.end).unwrap_or(&[]);
            if let Some(to) = Arc::get_mut(&mut chunk).and_then(|b| b.get_mut(LEAD - rest.len()..LEAD)) {
                to.copy_from_slice(rest);
            }
            let old = std::mem::replace(&mut self.buf, chunk);
            pf.recycle(old);
            self.start = LEAD - rest_len;
            self.end = LEAD + n;
        }
        Ok(true)
    }

    /// The buffer the last packet was read into (for handing packets to threads without a copy).
    pub fn buffer(&self) -> &Arc<Vec<u8>> {
        &self.buf
    }

    /// The input's name as given.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Bytes consumed from the underlying file so far (compressed bytes for gzip input).
    pub fn raw_bytes_read(&self) -> u64 {
        self.raw_bytes.load(Ordering::Relaxed)
    }

    /// A shared counter of raw bytes read, for a progress bar on another thread.
    pub fn raw_counter(&self) -> Arc<AtomicU64> {
        self.raw_bytes.clone()
    }

    /// `len` buffered bytes from `from` past the read position (empty if they are not all
    /// there: callers `fill` first).
    fn window(&self, from: usize, len: usize) -> &[u8] {
        let at = self.start + from;
        self.buf.get(at..at + len).unwrap_or(&[])
    }

    fn avail(&self) -> usize {
        self.end - self.start
    }

    /// Makes at least `need` bytes available; returns false at end of input before that.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.prefetch.is_some() {
            return self.fill_from_chunks(need);
        }
        while self.avail() < need {
            if self.eof {
                return Ok(false);
            }
            if Arc::strong_count(&self.buf) > 1 {
                // Packets of this buffer are still with worker threads: continue in another one.
                let avail = self.avail();
                let size = self.buf.len().max(need.next_power_of_two());
                let mut next = match self
                    .spare
                    .iter()
                    .position(|b| Arc::strong_count(b) == 1 && b.len() >= size)
                {
                    Some(i) => self.spare.swap_remove(i),
                    None => Arc::new(vec![0; size]),
                };
                let old = std::mem::replace(&mut self.buf, Arc::new(Vec::new()));
                let rest = old.get(self.start..self.end).unwrap_or(&[]);
                if let Some(to) = Arc::make_mut(&mut next).get_mut(..rest.len()) {
                    to.copy_from_slice(rest);
                }
                self.buf = next;
                if self.spare.len() < SPARE_BUFFERS {
                    self.spare.push(old);
                }
                self.start = 0;
                self.end = avail;
            }
            let (start, end) = (self.start, self.end);
            let buf = Arc::make_mut(&mut self.buf);
            if start > 0 {
                // Move the (small) remainder to the front so every read fills most of the buffer.
                buf.copy_within(start..end, 0);
                self.end -= start;
                self.start = 0;
            }
            if buf.len() < need {
                // A block larger than the buffer (bounded by MAX_CAPTURE_BLOCK).
                buf.resize(need.next_power_of_two(), 0);
            }
            let Some(space) = buf.get_mut(self.end..) else {
                return Ok(false);
            };
            match self.src.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn read_file_header(&mut self) -> Result<(), CaptureErrorKind> {
        self.fill(24).map_err(CaptureErrorKind::Io)?;
        let have = self.avail();
        if have == 0 {
            return Err(CaptureErrorKind::Empty);
        }
        let head = self.window(0, have);
        let Some(&magic) = head.first_chunk::<4>() else {
            return Err(CaptureErrorKind::NotACapture {
                looks_like: describe(head, self.gzip),
            });
        };
        let pcap = PCAP_MAGICS.iter().find(|m| m.0 == magic);
        if let Some(&(_, big, nanos, record_header)) = pcap {
            if have < 24 {
                return Err(CaptureErrorKind::Truncated {
                    what: "pcap file header",
                    need: 24,
                    have,
                });
            }
            let e = Endian { big };
            let link = LinkType(e.u32(head, 20) & 0x0fff_ffff);
            let snaplen = e.u32(head, 16) as usize;
            self.format = Format::Pcap {
                endian: e,
                nanos,
                link,
                record_header,
                max_record: snaplen.clamp(RESYNC_MAX_RECORD, MAX_CAPTURE_BLOCK),
            };
            self.consume(24);
            return Ok(());
        }
        if magic == PCAPNG_SHB {
            // pcapng: the section header block is parsed by the block loop, but a file whose
            // first section header is not whole cannot be read at all: say so here.
            let what = "pcapng section header";
            self.fill(12).map_err(CaptureErrorKind::Io)?;
            let have = self.avail();
            if have < 12 {
                return Err(CaptureErrorKind::Truncated { what, need: 12, have });
            }
            let head = self.window(0, 12);
            let Some(endian) = section_endian(head) else {
                return Err(CaptureErrorKind::Corrupt {
                    offset: 0,
                    what: "pcapng section header has no byte-order magic".into(),
                });
            };
            let blen = endian.u32(head, 4) as usize;
            if !(28..=MAX_CAPTURE_BLOCK).contains(&blen) {
                return Err(CaptureErrorKind::Corrupt {
                    offset: 0,
                    what: format!("pcapng section header has impossible length {blen}"),
                });
            }
            self.fill(blen).map_err(CaptureErrorKind::Io)?;
            let have = self.avail();
            if have < blen {
                return Err(CaptureErrorKind::Truncated { what, need: blen, have });
            }
            return Ok(());
        }
        Err(CaptureErrorKind::NotACapture {
            looks_like: describe(head, self.gzip),
        })
    }

    /// The stop detail for a read error at `offset` (for gzip input, a damaged or cut stream).
    fn read_error(&self, offset: u64, e: &io::Error) -> String {
        if self.gzip {
            format!("gzip data broken after byte {offset} of the capture inside: {e}")
        } else {
            format!("read error at byte {offset}: {e}")
        }
    }

    fn stop_with(&mut self, key: &'static str, detail: String) {
        self.stop = Some(StopReason { key, detail });
        self.eof = true;
        self.start = self.end;
    }

    fn oddity(&mut self, key: &'static str) {
        self.add_oddity(key, 1);
    }

    fn add_oddity(&mut self, key: &'static str, n: u64) {
        if let Some(e) = self.oddities.iter_mut().find(|(k, _)| *k == key) {
            e.1 += n;
        } else {
            self.oddities.push((key, n));
        }
    }

    /// The next packet, or `None` at the end of the input (check [`FileReader::stop`]).
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        self.next_packet_shared().map(|(p, _)| p)
    }

    /// The next packet and the shared buffer it lies in.
    pub fn next_packet_shared(&mut self) -> Option<(Packet<'_>, &Arc<Vec<u8>>)> {
        self.paused = false;
        if self.stop.is_some() {
            return None;
        }
        let pos = match self.format {
            Format::Pcap { .. } => self.next_pcap(),
            Format::PcapNg { .. } => self.next_pcapng(),
        }?;
        let buf = &self.buf;
        let packet = Packet {
            ts: pos.ts,
            link: pos.link,
            data: buf.get(pos.start..pos.start + pos.len).unwrap_or(&[]),
            orig_len: pos.orig_len,
        };
        Some((packet, buf))
    }

    fn next_pcap(&mut self) -> Option<Pos> {
        let Format::Pcap {
            endian,
            nanos,
            link,
            record_header,
            max_record,
        } = self.format
        else {
            return None;
        };
        if self.resync.is_some() && !self.resync_pcap(endian, nanos, record_header, max_record) {
            return None;
        }
        // The common case: the whole record is already in the buffer (one bounds check).
        if let Some(h) = self.buf.get(self.start..self.end).and_then(|b| b.get(..record_header)) {
            let incl = endian.u32(h, 8) as usize;
            let total = record_header + incl;
            if incl <= max_record && self.end - self.start >= total {
                let secs = endian.u32(h, 0);
                let frac = endian.u32(h, 4) as i64;
                let orig = endian.u32(h, 12);
                self.note_secs(secs);
                let ts = Timestamp::from_parts(secs as i64, if nanos { frac } else { frac * 1000 });
                let s = self.start + record_header;
                self.consume(total);
                return Some(Pos {
                    ts,
                    link,
                    start: s,
                    len: incl,
                    orig_len: orig.max(incl as u32),
                });
            }
        }
        let offset = self.offset;
        match self.fill(record_header) {
            Ok(true) => {}
            Ok(false) => {
                if self.paused {
                    return None;
                }
                if self.avail() > 0 {
                    let have = self.avail();
                    self.stop_with(
                        "capture_truncated",
                        format!("record header at byte {offset} cut short ({have} of {record_header} bytes)"),
                    );
                }
                return None;
            }
            Err(e) => {
                self.stop_with("capture_read_error", self.read_error(offset, &e));
                return None;
            }
        }
        let h = self.window(0, record_header);
        let secs = endian.u32(h, 0);
        let frac = endian.u32(h, 4) as i64;
        let incl = endian.u32(h, 8) as usize;
        let orig = endian.u32(h, 12);
        if incl > max_record {
            // A damaged record header: look for the next valid record rather than give up on
            // the rest of the file.
            self.resync = Some(Resync {
                from: offset,
                what: format!("record at byte {offset} claims {incl} bytes"),
            });
            return self.next_pcap();
        }
        let total = record_header + incl;
        match self.fill(total) {
            Ok(true) => {}
            Ok(false) => {
                if self.paused {
                    return None;
                }
                let have = self.avail();
                self.stop_with(
                    "capture_truncated",
                    format!("last record at byte {offset} cut short ({have} of {total} bytes)"),
                );
                return None;
            }
            Err(e) => {
                self.stop_with("capture_read_error", self.read_error(offset, &e));
                return None;
            }
        }
        self.note_secs(secs);
        let ts = Timestamp::from_parts(secs as i64, if nanos { frac } else { frac * 1000 });
        let s = self.start + record_header;
        self.consume(total);
        Some(Pos {
            ts,
            link,
            start: s,
            len: incl,
            orig_len: orig.max(incl as u32),
        })
    }

    /// Searches for the next valid pcap record after a damaged header: the first position from
    /// which [`RESYNC_CHAIN`] plausible records follow one another (or run exactly to the end
    /// of the file). Plausible: a time within [`RESYNC_SECS`] of the last valid record, a
    /// fraction under one second, 1 to [`RESYNC_MAX_RECORD`] captured bytes (so a zeroed stretch
    /// is skipped, not read as empty records) and an original length at least that.
    fn resync_pcap(&mut self, e: Endian, nanos: bool, record_header: usize, max_record: usize) -> bool {
        let max_len = max_record.min(RESYNC_MAX_RECORD);
        let near = self.last_secs;
        let plausible = move |h: &[u8]| -> Option<usize> {
            let (secs, frac) = (e.u32(h, 0), e.u32(h, 4));
            let (incl, orig) = (e.u32(h, 8) as usize, e.u32(h, 12) as usize);
            let ok = h.len() >= record_header
                && frac < if nanos { 1_000_000_000 } else { 1_000_000 }
                && near.is_none_or(|n| n.abs_diff(secs) <= RESYNC_SECS)
                && (1..=max_len).contains(&incl)
                && (incl..=MAX_CAPTURE_BLOCK).contains(&orig);
            ok.then_some(record_header + incl)
        };
        self.resync(record_header + max_len, &plausible)
    }

    /// As [`FileReader::resync_pcap`] for pcapng: a plausible block has a known type, a length
    /// of 12 bytes to [`RESYNC_MAX_RECORD`] (plus room for the block's fields), a multiple of 4,
    /// repeated at its end; a packet block names a known interface.
    fn resync_pcapng(&mut self, e: Endian) -> bool {
        let max_len = RESYNC_MAX_RECORD + 64;
        let interfaces = match &self.format {
            Format::PcapNg { interfaces, .. } => interfaces.len(),
            Format::Pcap { .. } => 0,
        };
        let plausible = move |b: &[u8]| -> Option<usize> {
            let (btype, blen) = (e.u32(b, 0), e.u32(b, 4) as usize);
            let ok = known_block(e, b)
                && (12..=max_len).contains(&blen)
                && blen % 4 == 0
                && b.len() >= blen
                && e.u32(b, blen - 4) as usize == blen
                && (!matches!(btype, 5 | 6) || (e.u32(b, 8) as usize) < interfaces);
            ok.then_some(blen)
        };
        self.resync(max_len, &plausible)
    }

    /// Moves the reader to the first position from which [`RESYNC_CHAIN`] records (or blocks)
    /// that `plausible` accepts follow one another, each at most `max_len` bytes, or run
    /// exactly to the end of the input. `plausible` gets the bytes from a position to the end
    /// of the window and returns the size of the record there. Returns true with the reader
    /// there; false when paused (the search goes on at the next call) or at the end of the
    /// input (then the input stops as corrupt).
    fn resync(&mut self, max_len: usize, plausible: &dyn Fn(&[u8]) -> Option<usize>) -> bool {
        let Some(r) = self.resync.take() else { return true };
        let unit = match self.format {
            Format::Pcap { .. } => "record",
            Format::PcapNg { .. } => "block",
        };
        let span = RESYNC_CHAIN * max_len;
        loop {
            let want = RESYNC_STEP + span;
            match self.fill(want) {
                Ok(_) => {}
                Err(err) => {
                    self.stop_with("capture_read_error", self.read_error(self.offset, &err));
                    return false;
                }
            }
            if self.paused {
                self.resync = Some(r);
                return false;
            }
            let avail = self.avail();
            let at_end = avail < want;
            let w = self.window(0, avail);
            let last = if at_end { avail } else { avail - span };
            let chained = |p: usize| {
                let mut q = p;
                for k in 0..RESYNC_CHAIN {
                    if q == w.len() && at_end {
                        return k > 0;
                    }
                    let Some(size) = w.get(q..).and_then(plausible) else {
                        return false;
                    };
                    q += size;
                    if q > w.len() {
                        return false;
                    }
                }
                true
            };
            let found = (0..last).find(|&p| chained(p));
            self.consume(found.unwrap_or(last));
            let skipped = self.offset.saturating_sub(r.from);
            if found.is_some() {
                self.add_oddity("capture_resynced", 1);
                self.add_oddity("capture_bytes_skipped", skipped);
                self.note_damage(format!(
                    "{}: skipped {skipped} bytes to the next valid {unit}, at byte {}",
                    r.what, self.offset
                ));
                return true;
            }
            if at_end {
                self.stop_with(
                    "capture_corrupt",
                    format!(
                        "{}, and no valid {unit} follows in the {skipped} bytes after it",
                        r.what
                    ),
                );
                return false;
            }
        }
    }

    /// Whether a valid pcapng block starts `at` bytes past the read position (or the input ends
    /// exactly there, or with the start of a block cut short). `None` when reading paused first.
    fn block_follows(&mut self, at: usize, e: Endian) -> Option<bool> {
        let filled = self.fill(at + 12).unwrap_or(false);
        if !filled && self.paused {
            return None;
        }
        let avail = self.avail();
        if avail <= at {
            return Some(avail == at);
        }
        let head = self.window(at, (avail - at).min(12));
        let blen = e.u32(head, 4) as usize;
        if head.len() < 12 || !known_block(e, head) || !(12..=MAX_CAPTURE_BLOCK).contains(&blen) || blen % 4 != 0 {
            return Some(false);
        }
        let filled = self.fill(at + blen).unwrap_or(false);
        if !filled {
            // Paused, or the next block is the file's last and cut short.
            return if self.paused { None } else { Some(true) };
        }
        Some(e.u32(self.window(at, blen), blen - 4) as usize == blen)
    }

    /// Follows the capture's time for [`FileReader::resync_pcap`] (see `last_secs`).
    fn note_secs(&mut self, secs: u32) {
        let near = |t: Option<u32>| t.is_some_and(|t| t.abs_diff(secs) <= RESYNC_SECS);
        if self.last_secs.is_none() || near(self.last_secs) || near(self.odd_secs) {
            self.last_secs = Some(secs);
        } else {
            self.odd_secs = Some(secs);
        }
    }

    fn note_damage(&mut self, what: String) {
        if self.damage.len() < DAMAGE_NOTES {
            self.damage.push(what);
        }
    }

    fn next_pcapng(&mut self) -> Option<Pos> {
        loop {
            if self.resync.is_some() {
                let Format::PcapNg { endian, .. } = self.format else {
                    return None;
                };
                if !self.resync_pcapng(endian) {
                    return None;
                }
            }
            let offset = self.offset;
            match self.fill(12) {
                Ok(true) => {}
                Ok(false) => {
                    if self.paused {
                        return None;
                    }
                    if self.avail() > 0 {
                        let have = self.avail();
                        self.stop_with(
                            "capture_truncated",
                            format!("block header at byte {offset} cut short ({have} bytes)"),
                        );
                    }
                    return None;
                }
                Err(e) => {
                    self.stop_with("capture_read_error", self.read_error(offset, &e));
                    return None;
                }
            }
            let head = self.window(0, 12);
            let endian = if head.starts_with(&PCAPNG_SHB) {
                let Some(endian) = section_endian(head) else {
                    self.stop_with(
                        "capture_corrupt",
                        format!("section header at byte {offset} has no byte-order magic"),
                    );
                    return None;
                };
                endian
            } else {
                match &self.format {
                    Format::PcapNg { endian, .. } => *endian,
                    Format::Pcap { .. } => return None,
                }
            };
            let btype = endian.u32(head, 0);
            let blen = endian.u32(head, 4) as usize;
            if !(12..=MAX_CAPTURE_BLOCK).contains(&blen) || blen % 4 != 0 {
                // A damaged block header: look for the next valid block.
                self.resync = Some(Resync {
                    from: offset,
                    what: format!("block at byte {offset} has impossible length {blen}"),
                });
                continue;
            }
            match self.fill(blen) {
                Ok(true) => {}
                Ok(false) => {
                    if self.paused {
                        return None;
                    }
                    let have = self.avail();
                    self.stop_with(
                        "capture_truncated",
                        format!("last block at byte {offset} cut short ({have} of {blen} bytes)"),
                    );
                    return None;
                }
                Err(e) => {
                    self.stop_with("capture_read_error", self.read_error(offset, &e));
                    return None;
                }
            }
            let trailer = endian.u32(self.window(0, blen), blen - 4) as usize;
            if trailer != blen {
                // The length at the block's end disagrees with its start: one of them is damaged.
                // If a valid block follows where the start says, only the end is: read the block.
                match self.block_follows(blen, endian) {
                    None => return None,
                    Some(true) => self.oddity("pcapng_block_trailer_damaged"),
                    Some(false) => {
                        self.resync = Some(Resync {
                            from: offset,
                            what: format!("block at byte {offset} claims {blen} bytes but ends with length {trailer}"),
                        });
                        continue;
                    }
                }
            }
            let body_start = self.start + 8;
            let body_end = self.start + blen - 4;
            match btype {
                0x0A0D_0D0A => {
                    self.format = Format::PcapNg {
                        endian,
                        interfaces: Vec::new(),
                    };
                    self.consume(blen);
                }
                1 => {
                    let body = self.buf.get(body_start..body_end).unwrap_or(&[]);
                    let iface = parse_idb(endian, body);
                    self.consume(blen);
                    match iface {
                        Some(i) => {
                            if let Format::PcapNg { interfaces, .. } = &mut self.format {
                                if interfaces.len() < crate::limits::MAX_PCAPNG_INTERFACES {
                                    interfaces.push(i);
                                } else {
                                    self.oddity("pcapng_too_many_interfaces");
                                }
                            }
                        }
                        None => self.oddity("pcapng_bad_interface_block"),
                    }
                }
                6 | 2 | 3 => {
                    let body = self.buf.get(body_start..body_end).unwrap_or(&[]);
                    let Format::PcapNg { interfaces, .. } = &self.format else {
                        return None;
                    };
                    let parsed = parse_packet_block(endian, btype, body, interfaces);
                    match parsed {
                        Ok((ts, link, rel_start, caplen, orig)) => {
                            let s = body_start + rel_start;
                            self.consume(blen);
                            return Some(Pos {
                                ts,
                                link,
                                start: s,
                                len: caplen,
                                orig_len: orig.max(caplen as u32),
                            });
                        }
                        Err(key) => {
                            self.consume(blen);
                            self.oddity(key);
                        }
                    }
                }
                _ => self.consume(blen),
            }
        }
    }
}

fn parse_idb(e: Endian, body: &[u8]) -> Option<Interface> {
    if body.len() < 8 {
        return None;
    }
    let link = LinkType(e.u16(body, 0) as u32);
    let snaplen = e.u32(body, 4);
    let mut units_per_sec = 1_000_000u64;
    let mut offset_secs = 0i64;
    let mut opts = body.get(8..).unwrap_or(&[]);
    while opts.len() >= 4 {
        let code = e.u16(opts, 0);
        let len = e.u16(opts, 2) as usize;
        let padded = (len + 3) & !3;
        let Some(val) = opts.get(4..4 + len) else {
            break;
        };
        match code {
            0 => break,
            9 if len >= 1 => {
                let v = val.first().copied().unwrap_or(6);
                let exp = (v & 0x7f) as u32;
                units_per_sec = if v & 0x80 == 0 {
                    10u64.checked_pow(exp).unwrap_or(1_000_000)
                } else {
                    1u64.checked_shl(exp).unwrap_or(1_000_000)
                };
                if units_per_sec == 0 {
                    units_per_sec = 1_000_000;
                }
            }
            14 if len >= 8 => offset_secs = e.i64(val, 0),
            _ => {}
        }
        let Some(rest) = opts.get(4 + padded..) else {
            break;
        };
        opts = rest;
    }
    Some(Interface {
        link,
        snaplen,
        units_per_sec,
        offset_secs,
    })
}

type BlockPacket = (Timestamp, LinkType, usize, usize, u32);

fn parse_packet_block(
    e: Endian,
    btype: u32,
    body: &[u8],
    interfaces: &[Interface],
) -> Result<BlockPacket, &'static str> {
    let (iface_id, ts_raw, data_start, caplen, orig) = match btype {
        6 => {
            if body.len() < 20 {
                return Err("pcapng_short_packet_block");
            }
            let ts = ((e.u32(body, 4) as u64) << 32) | e.u32(body, 8) as u64;
            (
                e.u32(body, 0) as usize,
                Some(ts),
                20,
                e.u32(body, 12) as usize,
                e.u32(body, 16),
            )
        }
        2 => {
            if body.len() < 20 {
                return Err("pcapng_short_packet_block");
            }
            let ts = ((e.u32(body, 4) as u64) << 32) | e.u32(body, 8) as u64;
            (
                e.u16(body, 0) as usize,
                Some(ts),
                20,
                e.u32(body, 12) as usize,
                e.u32(body, 16),
            )
        }
        _ => {
            // Simple packet block: no timestamp, interface 0, captured length implied.
            if body.len() < 4 {
                return Err("pcapng_short_packet_block");
            }
            let orig = e.u32(body, 0);
            let snap = interfaces.first().map(|i| i.snaplen).unwrap_or(0);
            let mut cap = (body.len() - 4).min(orig as usize);
            if snap > 0 {
                cap = cap.min(snap as usize);
            }
            (0, None, 4, cap, orig)
        }
    };
    let Some(iface) = interfaces.get(iface_id) else {
        return Err("pcapng_unknown_interface");
    };
    if data_start + caplen > body.len() {
        return Err("pcapng_packet_longer_than_block");
    }
    let ts = match ts_raw {
        Some(raw) => {
            let per = iface.units_per_sec as u128;
            let secs = (raw as u128 / per) as i64;
            let rem = (raw as u128 % per) * 1_000_000_000 / per;
            Timestamp::from_parts(secs.saturating_add(iface.offset_secs), rem as i64)
        }
        None => Timestamp(0),
    };
    Ok((ts, iface.link, data_start, caplen, orig))
}

/// Compressed files and captures in formats other than pcap / pcapng, by their magic bytes.
fn other_format(head: &[u8]) -> Option<&'static str> {
    const KNOWN: [(&[u8], &str); 8] = [
        (b"\xfd7zXZ\x00", "xz-compressed data (decompress it first: unxz)"),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data (decompress it first: unzstd)",
        ),
        (b"BZh", "bzip2-compressed data (decompress it first: bunzip2)"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (
            b"snoop\x00\x00\x00",
            "a Solaris snoop capture (convert it: editcap -F pcap)",
        ),
        (b"GMBU", "a Network Monitor capture (convert it: editcap -F pcap)"),
        (b"XCP\x00", "a NetXray / Sniffer capture (convert it: editcap -F pcap)"),
        (b"\x7fELF", "an executable"),
    ];
    if head.get(257..262) == Some(b"ustar") {
        return Some("a tar archive");
    }
    KNOWN
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, kind)| *kind)
}

fn hex<'a>(bytes: impl Iterator<Item = &'a u8>) -> String {
    bytes.map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// A file that starts a few bits away from a capture's magic number: a capture whose first bytes
/// were damaged (a flipped bit, a bad copy), not some other kind of file.
fn damaged_magic(head: &[u8]) -> Option<String> {
    let got = head.first_chunk::<4>()?;
    let distance = |m: &[u8; 4]| m.iter().zip(got).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>();
    let magics = PCAP_MAGICS
        .iter()
        .map(|m| (&m.0, "pcap"))
        .chain([(&PCAPNG_SHB, "pcapng")]);
    let (magic, kind) = magics.min_by_key(|(m, _)| distance(m))?;
    (1..=3).contains(&distance(magic)).then(|| {
        format!(
            "a {kind} capture with a damaged magic number: it starts {}, a {kind} file starts {}",
            hex(got.iter()),
            hex(magic.iter())
        )
    })
}

/// Says what a non-capture file looks like, for the error message.
fn describe(head: &[u8], gzip: bool) -> String {
    let lower: Vec<u8> = head.iter().take(64).map(|b| b.to_ascii_lowercase()).collect();
    let starts = |p: &[u8]| lower.starts_with(p);
    let kind = if starts(b"<!doctype html") || starts(b"<html") || lower.windows(5).any(|w| w == b"<html") {
        "HTML".to_string()
    } else if starts(b"pk\x03\x04") {
        "a zip archive".to_string()
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "gzip data".to_string()
    } else if let Some(kind) = other_format(head) {
        kind.to_string()
    } else if starts(b"{") || starts(b"[") {
        "JSON or text".to_string()
    } else if head
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "text".to_string()
    } else if let Some(kind) = damaged_magic(head) {
        kind
    } else {
        format!("unknown data starting {}", hex(head.iter().take(8)))
    };
    if gzip { format!("gzip of {kind}") } else { kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: Vec<u8>) -> Result<FileReader, CaptureError> {
        FileReader::from_reader(PathBuf::from("t"), Box::new(io::Cursor::new(bytes)))
    }

    fn pcap_header(big: bool, magic: u32, link: u32) -> Vec<u8> {
        let mut v = Vec::new();
        let put32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
        put32(&mut v, magic);
        v.extend_from_slice(&if big { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
        put32(&mut v, 0);
        put32(&mut v, 0);
        put32(&mut v, 65535);
        put32(&mut v, link);
        v
    }

    fn record(big: bool, secs: u32, frac: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [secs, frac, data.len() as u32, data.len() as u32] {
            v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn resumes_after_a_damaged_record_header_and_skips_zeros() {
        for big in [false, true] {
            let mut f = pcap_header(big, 0xa1b2c3d4, 1);
            f.extend(record(big, 1_700_000_000, 1, b"first packet"));
            // A damaged time just before: the search must not look for records near it.
            f.extend(record(big, 1_700_000_000 ^ (1 << 28), 1, b"odd time"));
            let damaged = f.len();
            let mut bad = record(big, 1_700_000_000, 2, b"lost");
            bad[8..12].copy_from_slice(&[0xff; 4]);
            f.extend(bad);
            f.extend(vec![0u8; 5000]); // a zeroed stretch: not 300 empty records
            let resumed = f.len();
            for n in 0..4u32 {
                f.extend(record(big, 1_700_000_001, n, format!("after {n}").as_bytes()));
            }
            let mut r = reader(f).expect("reader");
            let mut got = Vec::new();
            while let Some(p) = r.next_packet() {
                got.push(String::from_utf8_lossy(p.data).to_string());
            }
            assert_eq!(
                got,
                ["first packet", "odd time", "after 0", "after 1", "after 2", "after 3"]
            );
            assert!(r.stop.is_none(), "{:?}", r.stop);
            assert!(r.oddities.contains(&("capture_resynced", 1)), "{:?}", r.oddities);
            assert!(
                r.oddities
                    .contains(&("capture_bytes_skipped", (resumed - damaged) as u64))
            );
            assert_eq!(
                r.damage,
                [format!(
                    "record at byte {damaged} claims 4294967295 bytes: skipped {} bytes to the next valid record, at byte {resumed}",
                    resumed - damaged
                )]
            );
        }
    }

    #[test]
    fn a_damaged_record_header_with_nothing_valid_after_it_stops_the_file() {
        let mut f = pcap_header(false, 0xa1b2c3d4, 1);
        f.extend(record(false, 1_700_000_000, 1, b"only packet"));
        f.extend(0xffff_ffffu32.to_le_bytes().repeat(100));
        let mut r = reader(f).expect("reader");
        assert!(r.next_packet().is_some());
        assert!(r.next_packet().is_none());
        let stop = r.stop.expect("stopped");
        assert_eq!(stop.key, "capture_corrupt");
        assert!(
            stop.detail.contains(
                "record at byte 51 claims 4294967295 bytes, and no valid record follows in the 400 bytes after it"
            ),
            "{}",
            stop.detail
        );
    }

    #[test]
    fn reads_both_byte_orders_and_resolutions() {
        for (big, magic, frac, want_ns) in [
            (false, 0xa1b2c3d4u32, 5u32, 5000i64),
            (true, 0xa1b2c3d4, 5, 5000),
            (false, 0xa1b23c4d, 5, 5),
            (true, 0xa1b23c4d, 5, 5),
        ] {
            let mut f = pcap_header(big, magic, 1);
            f.extend(record(big, 10, frac, b"abcd"));
            f.extend(record(big, 11, 0, b"xy"));
            let mut r = reader(f).expect("header");
            let p = r.next_packet().expect("first");
            assert_eq!(p.ts, Timestamp::from_parts(10, want_ns));
            assert_eq!(p.data, b"abcd");
            assert_eq!(p.link, LinkType::ETHERNET);
            assert_eq!(r.next_packet().expect("second").data, b"xy");
            assert!(r.next_packet().is_none());
            assert!(r.stop.is_none());
        }
    }

    #[test]
    fn truncated_last_record_is_a_stop_not_an_error() {
        let mut f = pcap_header(false, 0xa1b2c3d4, 1);
        f.extend(record(false, 1, 0, b"abcd"));
        let mut cut = record(false, 2, 0, b"abcdefgh");
        cut.truncate(20);
        f.extend(cut);
        let mut r = reader(f).expect("header");
        assert!(r.next_packet().is_some());
        assert!(r.next_packet().is_none());
        assert_eq!(r.stop.as_ref().map(|s| s.key), Some("capture_truncated"));
    }

    #[test]
    fn enormous_record_length_stops_without_allocating() {
        let mut f = pcap_header(false, 0xa1b2c3d4, 1);
        let mut rec = record(false, 1, 0, b"");
        rec[8..12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        f.extend(rec);
        let mut r = reader(f).expect("header");
        assert!(r.next_packet().is_none());
        assert_eq!(r.stop.as_ref().map(|s| s.key), Some("capture_corrupt"));
    }

    #[test]
    fn not_a_capture_says_what_it_looks_like() {
        let e = reader(b"<!DOCTYPE html><html></html>".to_vec()).err().expect("error");
        assert!(e.to_string().contains("HTML"), "{e}");
        let e = reader(Vec::new()).err().expect("error");
        assert!(e.to_string().contains("empty"), "{e}");
        let e = reader(b"hello world, this is text\n".to_vec()).err().expect("error");
        assert!(e.to_string().contains("text"), "{e}");
        let e = reader(b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46".to_vec())
            .err()
            .expect("error");
        assert!(e.to_string().contains("xz-compressed data (decompress it first"), "{e}");
        let e = reader(b"BZh91AY&SY".to_vec()).err().expect("error");
        assert!(e.to_string().contains("bzip2"), "{e}");
        // One flipped bit in a pcap magic: a damaged capture, not unknown data.
        let mut damaged = pcap_header(false, 0xa1b2_c3d4, 1);
        damaged[0] ^= 0x01;
        let e = reader(damaged).err().expect("error");
        assert!(
            e.to_string().contains(
                "a pcap capture with a damaged magic number: it starts d5 c3 b2 a1, a pcap file starts d4 c3 b2 a1"
            ),
            "{e}"
        );
        let e = reader(b"\x0a\x0d\x0c\x0a\x1c\x00\x00\x00".to_vec())
            .err()
            .expect("error");
        assert!(
            e.to_string().contains("a pcapng capture with a damaged magic number"),
            "{e}"
        );
        // Far from every magic: still unknown data.
        let e = reader(b"\x00\x11\x22\x33\x44\x55\x66\x77".to_vec())
            .err()
            .expect("error");
        assert!(e.to_string().contains("unknown data starting 00 11 22 33"), "{e}");
    }

    #[test]
    fn pcapng_without_a_whole_section_header_is_an_error_naming_it() {
        let mut shb = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        assert!(reader(shb.clone()).is_ok());
        for cut in [4, 11, 12, 27] {
            let e = reader(shb[..cut].to_vec()).err().expect("error");
            assert!(e.to_string().contains("truncated pcapng section header"), "{e}");
        }
        let mut bad = shb.clone();
        bad[8..12].copy_from_slice(b"ABCD");
        let e = reader(bad).err().expect("error");
        assert!(e.to_string().contains("byte-order magic"), "{e}");
        let mut huge = shb;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = reader(huge).err().expect("error");
        assert!(e.to_string().contains("impossible length"), "{e}");
    }

    #[test]
    fn pcapng_with_two_interfaces_and_resolutions() {
        fn block(t: u32, body: &[u8]) -> Vec<u8> {
            let len = 12 + body.len().div_ceil(4) * 4;
            let mut v = Vec::new();
            v.extend_from_slice(&t.to_le_bytes());
            v.extend_from_slice(&(len as u32).to_le_bytes());
            v.extend_from_slice(body);
            v.resize(len - 4, 0);
            v.extend_from_slice(&(len as u32).to_le_bytes());
            v
        }
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut f = block(0x0a0d0d0a, &shb);
        let mut idb0 = vec![1, 0, 0, 0, 0, 0, 1, 0];
        idb0.extend_from_slice(&[0, 0, 0, 0]);
        f.extend(block(1, &idb0));
        let mut idb1 = vec![101, 0, 0, 0, 0, 0, 1, 0];
        idb1.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]); // if_tsresol = 10^-9
        f.extend(block(1, &idb1));
        let epb = |iface: u32, ts: u64, data: &[u8]| {
            let mut b = Vec::new();
            b.extend_from_slice(&iface.to_le_bytes());
            b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            b.extend_from_slice(&(ts as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(data);
            block(6, &b)
        };
        f.extend(epb(0, 1_500_000, b"eth"));
        f.extend(epb(1, 2_000_000_007, b"raw-ip"));
        let mut r = reader(f).expect("header");
        let p = r.next_packet().expect("p0");
        assert_eq!(
            (p.ts, p.link, p.data),
            (Timestamp::from_parts(1, 500_000_000), LinkType::ETHERNET, &b"eth"[..])
        );
        let p = r.next_packet().expect("p1");
        assert_eq!(
            (p.ts, p.link, p.data),
            (Timestamp::from_parts(2, 7), LinkType::RAW, &b"raw-ip"[..])
        );
        assert!(r.next_packet().is_none());
        assert!(r.stop.is_none());
    }
}
