//! Finding the way again after a damaged record header or block: the reader searches for the
//! next position from which several plausible records follow one another, instead of dropping
//! the rest of the file. What it is not: a repair; every skipped stretch is counted and named.

use super::{Endian, FileReader, Format, section_endian};
use crate::limits::MAX_CAPTURE_BLOCK;

/// A pcap record may always claim this much (tcpdump's largest snap length), whatever the
/// file's snap length says.
pub(super) const RESYNC_MAX_RECORD: usize = 256 << 10;
/// Records that must follow one another, each plausible, for reading to resume at a position
/// after a damaged record header (fewer where the file ends).
const RESYNC_CHAIN: usize = 3;
/// How far from the last valid record's time a record found by resynchronisation may be.
const RESYNC_SECS: u32 = 86_400;
/// Bytes searched per step of a resynchronisation (plus the span of a chain).
const RESYNC_STEP: usize = 1 << 20;

/// Whether `block` starts with a pcapng block type we know of (a section header only with its
/// byte-order magic): the test a damaged reader uses to find its way again.
pub(super) fn known_block(e: Endian, block: &[u8]) -> bool {
    match e.u32(block, 0) {
        0x0A0D_0D0A => section_endian(block).is_some(),
        t => matches!(t, 1..=6 | 9 | 10 | 0x0BAD | 0x4000_0BAD),
    }
}

/// A search for the next valid record after a damaged record header.
#[derive(Clone, Debug)]
pub(super) struct Resync {
    /// File offset of the damaged header.
    pub(super) from: u64,
    /// What was wrong with it, naming its offset.
    pub(super) what: String,
}

impl FileReader {
    /// Searches for the next valid pcap record after a damaged header: the first position from
    /// which [`RESYNC_CHAIN`] plausible records follow one another (or run exactly to the end
    /// of the file). Plausible: a time within [`RESYNC_SECS`] of the last valid record, a
    /// fraction under one second, 1 to [`RESYNC_MAX_RECORD`] captured bytes (so a zeroed stretch
    /// is skipped, not read as empty records) and an original length at least that.
    pub(super) fn resync_pcap(&mut self, e: Endian, nanos: bool, record_header: usize, max_record: usize) -> bool {
        let max_len = max_record.min(RESYNC_MAX_RECORD);
        let refs = [self.last_secs, self.prev_secs];
        let plausible = move |h: &[u8]| -> Option<usize> {
            let (secs, frac) = (e.u32(h, 0), e.u32(h, 4));
            let (incl, orig) = (e.u32(h, 8) as usize, e.u32(h, 12) as usize);
            let ok = h.len() >= record_header
                && frac < if nanos { 1_000_000_000 } else { 1_000_000 }
                && (refs[0].is_none() || refs.iter().flatten().any(|n| n.abs_diff(secs) <= RESYNC_SECS))
                && (1..=max_len).contains(&incl)
                && (incl..=MAX_CAPTURE_BLOCK).contains(&orig);
            ok.then_some(record_header + incl)
        };
        self.resync(record_header + max_len, &plausible)
    }

    /// As [`FileReader::resync_pcap`] for pcapng: a plausible block has a known type, a length
    /// of 12 bytes to [`RESYNC_MAX_RECORD`] (plus room for the block's fields), a multiple of 4,
    /// repeated at its end; a packet block names a known interface.
    pub(super) fn resync_pcapng(&mut self, e: Endian) -> bool {
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
    pub(super) fn resync(&mut self, max_len: usize, plausible: &dyn Fn(&[u8]) -> Option<usize>) -> bool {
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
    pub(super) fn block_follows(&mut self, at: usize, e: Endian) -> Option<bool> {
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

    /// Follows the capture's time for [`FileReader::resync_pcap`] (see `last_secs`). A record
    /// without bytes or with an impossible fraction of a second is not a time to follow: a
    /// zeroed stretch read as empty records would otherwise move the reference to 1970.
    #[inline]
    pub(super) fn note_secs(&mut self, secs: u32, incl: usize, frac: i64, nanos: bool) {
        if incl == 0 || frac >= if nanos { 1_000_000_000 } else { 1_000_000 } {
            return;
        }
        let near = |t: Option<u32>| t.is_some_and(|t| t.abs_diff(secs) <= RESYNC_SECS);
        if self.last_secs.is_none() || near(self.last_secs) {
            self.last_secs = Some(secs);
        } else if near(self.odd_secs) {
            self.prev_secs = self.last_secs;
            self.last_secs = Some(secs);
        } else {
            self.odd_secs = Some(secs);
        }
    }
}
