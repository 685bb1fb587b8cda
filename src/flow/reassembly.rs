//! Per-direction TCP reassembly.
//!
//! What it is: turns segments in capture order into the direction's byte stream in sequence
//! order. Retransmitted and overlapping bytes are delivered once (the first copy wins);
//! out-of-order segments wait in a bounded buffer; a hole that is still open when the buffer is
//! full, or when the stream is flushed (FIN, RST, expiry, end of capture), becomes an explicit
//! [`Chunk::Gap`] and delivery goes on after it.
//!
//! Overlaps are compared: the handshake bytes already delivered (up to
//! [`MAX_CONFLICT_HISTORY`] per direction, while the handshake is undecided and for
//! [`HISTORY_AFTER_DECISION`] segments after) and the bytes waiting in the buffer are kept, and a
//! later copy of the same sequence numbers with other contents is reported as a [`Conflict`] (as
//! Suricata's stream events do). The first copy stays the one delivered: delivery is streamed as
//! bytes arrive and cannot wait for a copy that may never come. A forgery placed ahead of the
//! real bytes (a TTL-limited injection reaches the sensor first) is therefore what the TLS
//! parser saw, and the conflict is what makes the verdict say so and lowers its confidence.
//!
//! What it is not: it does not look at ACKs (a passive observer may see only one direction) and
//! it does not decide which side is which.

use super::{Chunk, SeqNumber};
use crate::limits::{MAX_CONFLICT_HISTORY, MAX_OOO_BYTES, MAX_OOO_SEGMENTS};

/// Segments of a direction, after its handshake outcome is known, still compared with the kept
/// handshake bytes (a forged copy decides the outcome; the real copy follows it closely).
pub const HISTORY_AFTER_DECISION: u32 = 16;

/// Frames remembered for the kept bytes (which frame delivered which bytes).
const HISTORY_FRAMES: usize = 64;

/// Buffers for kept bytes, reused per thread: every connection keeps its handshake for a moment,
/// and allocating (and the allocator handing pages back to the system) for each one costs more
/// than the comparison. Bounded: at most this many wait for reuse.
const SPARE_HISTORIES: usize = 256;

type Frames = Vec<(SeqNumber, u64)>;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<(Vec<u8>, Frames)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A cleared history buffer pair, reused when one is spare.
fn spare_history() -> (Vec<u8>, Frames) {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| (Vec::with_capacity(4096), Vec::with_capacity(HISTORY_FRAMES)))
}

/// Gives a history buffer pair back for reuse.
fn recycle(mut bytes: Vec<u8>, mut frames: Frames) {
    if bytes.capacity() == 0 || bytes.capacity() > MAX_CONFLICT_HISTORY {
        return;
    }
    bytes.clear();
    frames.clear();
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_HISTORIES {
            s.push((bytes, frames));
        }
    });
}

/// Bytes sent twice with different contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// First sequence number whose bytes disagree.
    pub start: SeqNumber,
    /// One past the last sequence number whose bytes disagree.
    pub end: SeqNumber,
    /// The frame whose copy was kept (the first one seen).
    pub kept_frame: u64,
    /// The frame whose copy disagreed with it.
    pub other_frame: u64,
}

/// What happened to one segment, for the TCP counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentNote {
    /// Every byte had been delivered before.
    pub retransmission: bool,
    /// The segment arrived ahead of a hole.
    pub out_of_order: bool,
    /// A hole was given up as a gap of this many bytes.
    pub gap_bytes: u64,
    /// The out-of-order buffer was full.
    pub buffer_full: bool,
    /// Some of its bytes disagreed with a copy seen before.
    pub conflict: Option<Conflict>,
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Next sequence number expected; `None` until the stream's start is known.
    next: Option<SeqNumber>,
    /// Segments ahead of `next`, sorted by sequence number, with the frame that brought them.
    pending: Vec<(SeqNumber, Vec<u8>, u64)>,
    pending_bytes: usize,
    /// Sequence number of the stream's first byte (for relative numbers).
    origin: Option<SeqNumber>,
    /// Delivered bytes kept for comparison: `hist` holds the bytes from `hist_start` on.
    hist: Vec<u8>,
    hist_start: SeqNumber,
    /// Where each kept frame's bytes begin (at most [`HISTORY_FRAMES`]).
    hist_frames: Vec<(SeqNumber, u64)>,
    /// Recording stopped (the cap was reached or the handshake was decided).
    hist_closed: bool,
    /// Segments still compared after the handshake was decided.
    checks_left: u32,
}

/// The first and one-past-last index where `a` and `b` differ, if they do.
fn differ(a: &[u8], b: &[u8]) -> Option<(usize, usize)> {
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let n = a.len().min(b.len());
    let last = a
        .get(..n)
        .unwrap_or(a)
        .iter()
        .zip(b)
        .rposition(|(x, y)| x != y)
        .unwrap_or(first);
    Some((first, last + 1))
}

/// Compares `payload` at `seq` with `kept` at `kept_seq`; the disagreeing range, if any.
fn compare(seq: SeqNumber, payload: &[u8], kept_seq: SeqNumber, kept: &[u8]) -> Option<(SeqNumber, SeqNumber)> {
    let rel = seq.diff(kept_seq);
    let (a, b) = if rel >= 0 {
        (kept.get(rel as usize..)?, payload)
    } else {
        (kept, payload.get((-rel) as usize..)?)
    };
    let base = if rel >= 0 { seq } else { kept_seq };
    let (i, j) = differ(a, b)?;
    Some((base.plus(i), base.plus(j)))
}

impl Reassembler {
    /// Sets the stream start from a SYN's sequence number (data begins one after it).
    pub fn syn(&mut self, isn: SeqNumber) {
        if self.next.is_none() {
            self.next = Some(isn.plus(1));
            self.origin = Some(isn.plus(1));
        }
    }

    /// Whether the stream start is known.
    pub fn started(&self) -> bool {
        self.next.is_some()
    }

    /// Bytes held waiting for a hole to fill.
    pub fn buffered(&self) -> usize {
        self.pending_bytes
    }

    /// A sequence number relative to the stream's start, as Wireshark shows it (the first data
    /// byte after a SYN is 1).
    pub fn relative(&self, seq: SeqNumber) -> i64 {
        self.origin.map_or(0, |o| seq.diff(o) + 1)
    }

    /// Keeps delivered bytes for comparison.
    fn record(&mut self, seq: SeqNumber, data: &[u8], frame: u64) {
        if self.hist_closed {
            return;
        }
        if self.hist.capacity() == 0 {
            (self.hist, self.hist_frames) = spare_history();
        }
        if self.hist.is_empty() || self.hist_start.plus(self.hist.len()) != seq {
            // First bytes, or bytes after a gap: start again from here.
            self.hist.clear();
            self.hist_frames.clear();
            self.hist_start = seq;
        }
        let room = MAX_CONFLICT_HISTORY.saturating_sub(self.hist.len());
        let take = data.get(..room.min(data.len())).unwrap_or(data);
        if take.is_empty() {
            self.hist_closed = true;
            return;
        }
        if self.hist_frames.len() < HISTORY_FRAMES && self.hist_frames.last().is_none_or(|l| l.1 != frame) {
            self.hist_frames.push((seq, frame));
        }
        self.hist.extend_from_slice(take);
    }

    /// The frame that delivered the kept byte at `seq`.
    fn hist_frame(&self, seq: SeqNumber) -> u64 {
        let i = self.hist_frames.partition_point(|(s, _)| s.diff(seq) <= 0);
        i.checked_sub(1)
            .and_then(|i| self.hist_frames.get(i))
            .map_or(0, |f| f.1)
    }

    /// Compares a segment with every copy of its bytes seen before (kept and buffered).
    fn compare_all(&self, seq: SeqNumber, payload: &[u8], frame: u64) -> Option<Conflict> {
        let mut found: Option<Conflict> = None;
        let mut widen = |start: SeqNumber, end: SeqNumber, kept_frame: u64| match &mut found {
            None => {
                found = Some(Conflict {
                    start,
                    end,
                    kept_frame,
                    other_frame: frame,
                })
            }
            Some(c) => {
                if c.start.after(start) {
                    c.start = start;
                    c.kept_frame = kept_frame;
                }
                if end.after(c.end) {
                    c.end = end;
                }
            }
        };
        if !self.hist.is_empty() {
            if let Some((s, e)) = compare(seq, payload, self.hist_start, &self.hist) {
                widen(s, e, self.hist_frame(s));
            }
        }
        for (s, d, f) in &self.pending {
            if let Some((a, b)) = compare(seq, payload, *s, d) {
                widen(a, b, *f);
            }
        }
        found
    }

    /// Takes one segment's payload, brought by `frame`; delivers whatever became contiguous to
    /// `sink`.
    pub fn segment(
        &mut self,
        seq: SeqNumber,
        payload: &[u8],
        frame: u64,
        sink: &mut dyn FnMut(Chunk<'_>),
    ) -> SegmentNote {
        // Never recursive: a hostile stream cannot grow the stack.
        let mut note = SegmentNote::default();
        if payload.is_empty() {
            return note;
        }
        self.origin.get_or_insert(seq);
        let mut next = *self.next.get_or_insert(seq);
        let mut rel = seq.diff(next);
        // A keep-alive probe: one zero byte at the last sequence number sent (Windows; Linux
        // sends none). An old byte, never a conflict.
        if rel == -1 && payload == [0] {
            note.retransmission = true;
            return note;
        }
        // Only a segment that overlaps bytes seen before can disagree with them.
        if rel < 0 || !self.pending.is_empty() {
            note.conflict = self.compare_all(seq, payload, frame);
        }
        if rel > 0 {
            note.out_of_order = true;
        }
        // Ahead of a hole and no room to keep it: give up holes (oldest first) until it fits or
        // is in order. Each round removes a buffered segment or the hole before this one.
        while rel > 0 && (self.pending_bytes + payload.len() > MAX_OOO_BYTES || self.pending.len() >= MAX_OOO_SEGMENTS)
        {
            note.buffer_full = true;
            if self.pending.is_empty() {
                // Larger than the whole buffer: the hole before it is lost.
                sink(Chunk::Gap(rel as u64));
                note.gap_bytes += rel as u64;
                self.next = Some(seq);
            } else {
                note.gap_bytes += self.give_up_first_hole(sink);
            }
            next = self.next.unwrap_or(seq);
            rel = seq.diff(next);
        }
        if rel <= 0 {
            let skip = (-rel) as usize;
            if payload.len() <= skip {
                note.retransmission = !note.buffer_full;
                return note;
            }
            self.deliver_in_order(seq, payload, frame, sink);
            return note;
        }
        // Out of order: keep only the bytes no buffered copy holds yet (the first copy wins), so
        // buffered segments never overlap one another.
        let end = seq.plus(payload.len());
        let mut from = seq;
        let mut pieces: Vec<(SeqNumber, SeqNumber)> = Vec::new();
        let first = self.pending.partition_point(|(s, d, _)| !s.plus(d.len()).after(seq));
        for (s, d, _) in self.pending.iter().skip(first) {
            if !end.after(*s) {
                break;
            }
            if s.after(from) {
                pieces.push((from, *s));
            }
            let e = s.plus(d.len());
            if e.after(from) {
                from = e;
            }
        }
        if end.after(from) {
            pieces.push((from, end));
        }
        if pieces.is_empty() {
            note.retransmission = true;
            return note;
        }
        for (a, b) in pieces {
            let (i, j) = (a.diff(seq) as usize, b.diff(seq) as usize);
            let Some(part) = payload.get(i..j) else { continue };
            let pos = self.pending.partition_point(|(s, _, _)| s.diff(a) < 0);
            self.pending_bytes += part.len();
            self.pending.insert(pos, (a, part.to_vec(), frame));
        }
        note
    }

    /// Delivers an in-order segment (it starts at or before `next`): up to each buffered
    /// segment it reaches, that segment, then the rest; buffered bytes came first and win.
    fn deliver_in_order(&mut self, seq: SeqNumber, payload: &[u8], frame: u64, sink: &mut dyn FnMut(Chunk<'_>)) {
        // Each round delivers at least one buffered segment or ends: bounded by the buffer.
        loop {
            let Some(next) = self.next else { return };
            let Some(fresh) = payload.get(next.diff(seq).max(0) as usize..).filter(|f| !f.is_empty()) else {
                return;
            };
            let cut = match self.pending.first() {
                Some((s, _, _)) if (s.diff(next) as i128) < fresh.len() as i128 => s.diff(next).max(0) as usize,
                _ => fresh.len(),
            };
            let part = fresh.get(..cut).unwrap_or(fresh);
            if !part.is_empty() {
                self.next = Some(next.plus(part.len()));
                self.record(next, part, frame);
                sink(Chunk::Data(part));
            }
            let before = self.pending.len();
            self.drain(sink);
            if cut == fresh.len() || self.pending.len() == before {
                return;
            }
        }
    }

    /// Compares a segment the handler no longer reads with the kept handshake bytes (for
    /// [`HISTORY_AFTER_DECISION`] segments after [`Reassembler::abandon`]); frees them after.
    pub fn check(&mut self, seq: SeqNumber, payload: &[u8], frame: u64) -> Option<Conflict> {
        if self.hist.is_empty() || payload.is_empty() {
            return None;
        }
        if !self.hist_closed {
            // The other direction decided the handshake: this one stops here too.
            self.abandon();
        }
        // One zero byte may be a keep-alive probe (at the last byte sent): not compared.
        let found = if payload != [0] {
            self.compare_all(seq, payload, frame)
        } else {
            None
        };
        self.checks_left = self.checks_left.saturating_sub(1);
        if self.checks_left == 0 {
            self.free_history();
        }
        found
    }

    /// Whether kept bytes still wait to be compared with later copies.
    pub fn checking(&self) -> bool {
        !self.hist.is_empty()
    }

    /// The peer acknowledged up to `ack`: kept bytes it covers are let go, whether or not the
    /// handshake is decided. The copy the peer acknowledged passed the sensor before its ACK did,
    /// so a copy that disagreed with what was delivered has been compared already; one sent
    /// after is not the one the peer answered. (Kept bytes stay few: those in flight.)
    pub fn acked_kept(&mut self, ack: SeqNumber) {
        if self.hist.is_empty() || self.hist_start.plus(self.hist.len()).after(ack) {
            return;
        }
        if self.hist_closed {
            self.free_history();
        } else {
            // Recording goes on from the next byte, in the same (warm) buffer.
            self.hist_start = self.hist_start.plus(self.hist.len());
            self.hist.clear();
            self.hist_frames.clear();
        }
    }

    /// Whether `len` bytes at `seq` overlap the kept bytes (only those can conflict after the
    /// handshake's outcome; the application data after them is skipped cheaply).
    pub fn overlaps_kept(&self, seq: SeqNumber, len: usize) -> bool {
        !self.hist.is_empty()
            && self.hist_start.plus(self.hist.len()).after(seq)
            && seq.plus(len).after(self.hist_start)
    }

    /// Delivers buffered segments that are now contiguous with `next`.
    fn drain(&mut self, sink: &mut dyn FnMut(Chunk<'_>)) {
        while let Some((seq, _, _)) = self.pending.first() {
            let Some(next) = self.next else { return };
            let rel = seq.diff(next);
            if rel > 0 {
                return;
            }
            let (_, data, frame) = self.pending.remove(0);
            self.pending_bytes -= data.len();
            let skip = (-rel) as usize;
            if let Some(fresh) = data.get(skip..).filter(|f| !f.is_empty()) {
                self.next = Some(next.plus(fresh.len()));
                self.record(next, fresh, frame);
                sink(Chunk::Data(fresh));
            }
        }
    }

    /// Declares the hole before the first buffered segment lost; returns its length.
    fn give_up_first_hole(&mut self, sink: &mut dyn FnMut(Chunk<'_>)) -> u64 {
        let (Some(next), Some((seq, _, _))) = (self.next, self.pending.first()) else {
            return 0;
        };
        let hole = seq.diff(next).max(0) as u64;
        if hole > 0 {
            sink(Chunk::Gap(hole));
            self.next = Some(*seq);
        }
        self.drain(sink);
        hole
    }

    /// The peer acknowledged up to `ack`: holes before it were lost by the capture, not the
    /// network, and will never be filled. Declares them gaps and delivers what follows; returns
    /// the gap length declared.
    pub fn acked(&mut self, ack: SeqNumber, sink: &mut dyn FnMut(Chunk<'_>)) -> u64 {
        let mut gaps = 0;
        while let (Some(next), Some((first, _, _))) = (self.next, self.pending.first()) {
            if !ack.after(next) || first.after(ack) {
                break;
            }
            gaps += self.give_up_first_hole(sink);
        }
        gaps
    }

    /// Marks `len` bytes after the current position as missing (snap-length cut) and skips them.
    pub fn skip_missing(&mut self, len: u64, sink: &mut dyn FnMut(Chunk<'_>)) {
        if len == 0 {
            return;
        }
        if let Some(next) = self.next {
            self.next = Some(next.plus(len as usize));
            sink(Chunk::Cut(len));
            self.drain(sink);
        }
    }

    /// Delivers everything still buffered, declaring each remaining hole as a gap.
    /// Returns the total gap length declared.
    pub fn flush(&mut self, sink: &mut dyn FnMut(Chunk<'_>)) -> u64 {
        let mut gaps = 0;
        while !self.pending.is_empty() {
            gaps += self.give_up_first_hole(sink);
        }
        gaps
    }

    /// Drops buffered data and stops delivering (the handler no longer needs this direction).
    /// The kept handshake bytes stay for [`HISTORY_AFTER_DECISION`] more segments (see
    /// [`Reassembler::check`]).
    pub fn abandon(&mut self) {
        self.pending = Vec::new();
        self.pending_bytes = 0;
        self.hist_closed = true;
        self.checks_left = HISTORY_AFTER_DECISION;
        if self.hist.is_empty() {
            self.free_history();
        }
    }

    /// Lets the kept bytes go (their buffers are reused by later connections).
    fn free_history(&mut self) {
        recycle(std::mem::take(&mut self.hist), std::mem::take(&mut self.hist_frames));
    }
}

impl Drop for Reassembler {
    fn drop(&mut self) {
        self.free_history();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(segs: &[(u32, Vec<u8>)], isn: Option<u32>) -> (Vec<u8>, u64) {
        let mut r = Reassembler::default();
        if let Some(i) = isn {
            r.syn(SeqNumber(i));
        }
        let mut out = Vec::new();
        let mut gaps = 0u64;
        let mut sink = |c: Chunk<'_>| match c {
            Chunk::Data(d) => out.extend_from_slice(d),
            Chunk::Gap(n) | Chunk::Cut(n) => gaps += n,
        };
        for (s, d) in segs {
            r.segment(SeqNumber(*s), d, 0, &mut sink);
        }
        r.flush(&mut sink);
        (out, gaps)
    }

    #[test]
    fn in_order_out_of_order_and_retransmissions() {
        let isn = 0xffff_fffe; // data starts at 0xffffffff and wraps
        let segs = vec![
            (0xffff_ffffu32, b"ab".to_vec()),
            (0x0000_0003, b"ef".to_vec()),
            (0x0000_0001, b"cd".to_vec()),
            (0xffff_ffff, b"ab".to_vec()),
            (0x0000_0002, b"def".to_vec()),
        ];
        let (out, gaps) = run(&segs, Some(isn));
        assert_eq!(out, b"abcdef");
        assert_eq!(gaps, 0);
    }

    #[test]
    fn hole_becomes_explicit_gap_at_flush() {
        let segs = vec![(101u32, b"abc".to_vec()), (110, b"xyz".to_vec())];
        let (out, gaps) = run(&segs, Some(100));
        assert_eq!(out, b"abcxyz");
        assert_eq!(gaps, 6);
    }

    #[test]
    fn midstream_pickup_starts_at_first_segment() {
        let segs = vec![(5000u32, b"hello".to_vec()), (5005, b" world".to_vec())];
        assert_eq!(run(&segs, None).0, b"hello world");
    }

    /// Reference model: a map from absolute offset to the first byte seen there.
    fn model(stream: &[u8], segs: &[(usize, usize)]) -> Vec<u8> {
        let mut seen = vec![false; stream.len()];
        for &(off, len) in segs {
            for s in seen.iter_mut().skip(off).take(len) {
                *s = true;
            }
        }
        stream.iter().zip(seen).filter(|(_, s)| *s).map(|(b, _)| *b).collect()
    }

    /// Feeds segments `(seq, bytes, frame)`; returns the delivered bytes and the conflicts.
    fn run_frames(segs: &[(u32, Vec<u8>, u64)], isn: u32) -> (Vec<u8>, Vec<Conflict>) {
        let mut r = Reassembler::default();
        r.syn(SeqNumber(isn));
        let mut out = Vec::new();
        let mut conflicts = Vec::new();
        let mut sink = |c: Chunk<'_>| {
            if let Chunk::Data(d) = c {
                out.extend_from_slice(d)
            }
        };
        for (s, d, f) in segs {
            if let Some(c) = r.segment(SeqNumber(*s), d, *f, &mut sink).conflict {
                conflicts.push(c);
            }
        }
        r.flush(&mut sink);
        (out, conflicts)
    }

    #[test]
    fn overlap_that_agrees_is_no_conflict() {
        let segs = vec![
            (101u32, b"hello world".to_vec(), 1),
            (101, b"hello".to_vec(), 2),
            (104, b"lo wor".to_vec(), 3),
            (120, b"later".to_vec(), 4),
            (120, b"lat".to_vec(), 5),
            (112, b"and then".to_vec(), 6),
        ];
        let (out, conflicts) = run_frames(&segs, 100);
        assert_eq!(out, b"hello worldand thenlater");
        assert!(conflicts.is_empty(), "{conflicts:?}");
    }

    #[test]
    fn overlap_that_disagrees_is_counted_and_the_first_copy_kept() {
        // A forged alert at the real record's sequence number, then the real bytes.
        let forged = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
        let real = b"\x16\x03\x03\x00\x5aSERVERHELLO".to_vec();
        let segs = vec![(1001u32, forged.clone(), 7), (1001, real.clone(), 8)];
        let (out, conflicts) = run_frames(&segs, 1000);
        let mut want = forged.clone();
        want.extend_from_slice(&real[forged.len()..]);
        assert_eq!(
            out, want,
            "first copy kept, the rest of the later one delivered after it"
        );
        assert_eq!(
            conflicts,
            vec![Conflict {
                start: SeqNumber(1001),
                end: SeqNumber(1001 + 7),
                kept_frame: 7,
                other_frame: 8,
            }]
        );
        // Relative numbers as Wireshark shows them: the first data byte is 1.
        let mut r = Reassembler::default();
        r.syn(SeqNumber(1000));
        assert_eq!(r.relative(SeqNumber(1001)), 1);
    }

    #[test]
    fn keep_alive_probe_with_a_zero_byte_is_no_conflict() {
        let segs = vec![
            (101u32, b"hello".to_vec(), 1),
            (105, vec![0], 2),
            (106, b"!".to_vec(), 3),
        ];
        let (out, conflicts) = run_frames(&segs, 100);
        assert_eq!(out, b"hello!");
        assert!(conflicts.is_empty(), "{conflicts:?}");
    }

    #[test]
    fn disagreeing_copies_both_waiting_in_the_buffer_are_counted() {
        let segs = vec![
            (110u32, b"abcdef".to_vec(), 1),
            (112, b"XX".to_vec(), 2),
            (101, b"012345678".to_vec(), 3),
        ];
        let (out, conflicts) = run_frames(&segs, 100);
        assert_eq!(out, b"012345678abcdef");
        assert_eq!(conflicts.len(), 1);
        assert_eq!((conflicts[0].start, conflicts[0].end), (SeqNumber(112), SeqNumber(114)));
        assert_eq!((conflicts[0].kept_frame, conflicts[0].other_frame), (1, 2));
    }

    #[test]
    fn kept_bytes_are_still_compared_a_few_segments_after_the_decision() {
        let mut r = Reassembler::default();
        r.syn(SeqNumber(0));
        let mut sink = |_: Chunk<'_>| {};
        r.segment(SeqNumber(1), b"\x15\x03\x03\x00\x02\x02\x28", 5, &mut sink);
        r.abandon();
        assert!(r.checking());
        let c = r.check(SeqNumber(1), b"\x16\x03\x03\x00\x40rest", 6).expect("conflict");
        assert_eq!((c.kept_frame, c.other_frame), (5, 6));
        assert_eq!(r.check(SeqNumber(1), b"\x15\x03\x03", 7), None);
        r.acked_kept(SeqNumber(5));
        assert!(r.checking(), "not all kept bytes acknowledged yet");
        for f in 0..HISTORY_AFTER_DECISION {
            r.check(SeqNumber(100), b"x", 8 + u64::from(f));
        }
        assert!(!r.checking(), "the kept bytes are freed");
    }

    /// The span of the bytes in conflict, whatever the segmentation.
    fn span(conflicts: &[Conflict]) -> Option<(u32, u32)> {
        let start = conflicts.iter().map(|c| c.start.0).min()?;
        let end = conflicts.iter().map(|c| c.end.0).max()?;
        Some((start, end))
    }

    proptest! {
        #[test]
        fn conflicts_do_not_depend_on_segmentation(
            len in 1usize..200,
            at in 0usize..200,
            flen in 1usize..60,
            flips in proptest::collection::vec((0usize..60, 1u8..=255), 0..4),
            forged_first in any::<bool>(),
        ) {
            // No zero bytes: one zero byte just behind the stream's end is a keep-alive probe,
            // never compared (see `keep_alive_probe_with_a_zero_byte_is_no_conflict`).
            let real: Vec<u8> = (0..len).map(|i| (i * 7 % 250 + 1) as u8).collect();
            let at = at % len;
            let flen = flen.min(len - at);
            let mut forged = real[at..at + flen].to_vec();
            for (i, x) in &flips {
                let i = i % flen;
                forged[i] = (forged[i] ^ x).max(1);
            }
            let isn = 5000u32;
            let seq = |off: usize| isn + 1 + off as u32;
            let whole_real = vec![(seq(0), real.clone(), 2)];
            let whole_forged = vec![(seq(at), forged.clone(), 1)];
            let bytes_real: Vec<_> = real.iter().enumerate().map(|(i, b)| (seq(i), vec![*b], 2)).collect();
            let bytes_forged: Vec<_> = forged.iter().enumerate().map(|(i, b)| (seq(at + i), vec![*b], 1)).collect();
            let order = |a: Vec<(u32, Vec<u8>, u64)>, b: Vec<(u32, Vec<u8>, u64)>| {
                if forged_first { [b, a].concat() } else { [a, b].concat() }
            };
            let (out1, c1) = run_frames(&order(whole_real, whole_forged), isn);
            let (out2, c2) = run_frames(&order(bytes_real, bytes_forged), isn);
            prop_assert_eq!(&out1, &out2);
            prop_assert_eq!(span(&c1), span(&c2));
            prop_assert_eq!(c1.is_empty(), flips.is_empty() || forged == real[at..at + flen]);
        }
    }

    proptest! {
        #[test]
        fn matches_model_under_reordering_overlap_duplicates(
            isn in any::<u32>(),
            len in 1usize..3000,
            cuts in proptest::collection::vec((0usize..3000, 1usize..400), 1..40),
            order in proptest::collection::vec(any::<u32>(), 40),
            drop_some in any::<bool>(),
        ) {
            let stream: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            // Segments covering the stream, plus random overlapping extra ones.
            let mut segs: Vec<(usize, usize)> = (0..len).step_by(300).map(|o| (o, 300.min(len - o))).collect();
            for (o, l) in cuts {
                let o = o % len;
                segs.push((o, l.min(len - o)));
            }
            if drop_some && segs.len() > 2 {
                segs.remove(1);
            }
            let mut idx: Vec<usize> = (0..segs.len()).collect();
            idx.sort_by_key(|i| order[i % order.len()].wrapping_mul(*i as u32 + 1));
            let shuffled: Vec<(u32, Vec<u8>)> = idx.iter().map(|&i| {
                let (o, l) = segs[i];
                (isn.wrapping_add(1).wrapping_add(o as u32), stream[o..o + l].to_vec())
            }).collect();
            let (out, gaps) = run(&shuffled, Some(isn));
            let want = model(&stream, &segs);
            let covered_until = segs.iter().map(|(o, l)| o + l).max().unwrap_or(0);
            prop_assert_eq!(&out, &want);
            prop_assert_eq!(out.len() as u64 + gaps, covered_until as u64);
        }
    }
}
