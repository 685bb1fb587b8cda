//! One capture file (or standard input): classic pcap or pcapng, plain or gzip-compressed.
//!
//! The reader keeps one growable buffer and hands out packets that borrow it, so reading costs
//! no allocation per packet. Formats are parsed here by hand because they are small and because
//! we need exact byte offsets for error messages and bounded buffers for hostile lengths.

mod park;
mod pcapng;
mod resync;
mod sniff;
#[cfg(test)]
mod tests;

use self::pcapng::{parse_idb, parse_packet_block};
use self::resync::{RESYNC_MAX_RECORD, Resync};
use self::sniff::describe;
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

#[derive(Clone, Copy, Debug)]
struct Endian {
    big: bool,
}

impl Endian {
    /// The `N` bytes at `at` (zeros past the end of `b`: callers check lengths first).
    fn bytes<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
        b.get(at..)
            .and_then(|b| b.first_chunk::<N>())
            .copied()
            .unwrap_or([0; N])
    }
    /// The 16-bit field at `at`.
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = Self::bytes(b, at);
        if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    /// The 32-bit field at `at`.
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = Self::bytes(b, at);
        if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    /// A pcap record header's four 32-bit fields (seconds, fraction, captured and original
    /// length), from its first 16 bytes in one piece: read for every packet.
    fn record_fields(self, h: &[u8; 16]) -> [u32; 4] {
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3] = *h;
        let words = [[a0, a1, a2, a3], [b0, b1, b2, b3], [c0, c1, c2, c3], [d0, d1, d2, d3]];
        if self.big {
            words.map(u32::from_be_bytes)
        } else {
            words.map(u32::from_le_bytes)
        }
    }
    /// The 64-bit field at `at`.
    fn i64(self, b: &[u8], at: usize) -> i64 {
        let a = Self::bytes(b, at);
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
    /// `last_secs` before its latest jump: a search also accepts records near it, so a short
    /// run of misread records that moved the reference cannot make every later record look
    /// implausible.
    prev_secs: Option<u32>,
    /// What the reader skipped over (the first [`DAMAGE_NOTES`]; all are counted).
    pub damage: Vec<String>,
    /// The file let go of by [`FileReader::park`]: its device and inode, to find it again.
    parked: Option<(u64, u64)>,
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
            prev_secs: None,
            damage: Vec::new(),
            parked: None,
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
                    Some(b) if b.capacity() != pf.buffer_len() => {
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
        if let Some(h) = self
            .buf
            .get(self.start..self.end)
            .filter(|b| b.len() >= record_header)
            .and_then(|b| b.first_chunk::<16>())
        {
            let [secs, frac, incl, orig] = endian.record_fields(h);
            let (frac, incl) = (frac as i64, incl as usize);
            let total = record_header + incl;
            if incl <= max_record && self.end - self.start >= total {
                self.note_secs(secs, incl, frac, nanos);
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
        self.note_secs(secs, incl, frac, nanos);
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
                pcapng::DECRYPTION_SECRETS_BLOCK => {
                    let body = self.buf.get(body_start..body_end).unwrap_or(&[]);
                    let found = pcapng::decryption_secrets(endian, body);
                    let name = self.name.display().to_string();
                    self.consume(blen);
                    match found {
                        Some(text) => {
                            crate::tls::keylog::add_text(&format!("{name} (Decryption Secrets Block)"), &text)
                        }
                        None => self.oddity("pcapng_secrets_block_not_tls"),
                    }
                }
                _ => self.consume(blen),
            }
        }
    }
}
