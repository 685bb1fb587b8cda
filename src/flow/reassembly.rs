//! Per-direction TCP reassembly.
//!
//! What it is: turns segments in capture order into the direction's byte stream in sequence
//! order. Retransmitted and overlapping bytes are delivered once (the first copy wins);
//! out-of-order segments wait in a bounded buffer; a hole that is still open when the buffer is
//! full, or when the stream is flushed (FIN, RST, expiry, end of capture), becomes an explicit
//! [`Chunk::Gap`] and delivery goes on after it.
//!
//! What it is not: it does not look at ACKs (a passive observer may see only one direction) and
//! it does not decide which side is which.

use super::{Chunk, SeqNumber};
use crate::limits::{MAX_OOO_BYTES, MAX_OOO_SEGMENTS};

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
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Next sequence number expected; `None` until the stream's start is known.
    next: Option<SeqNumber>,
    /// Segments ahead of `next`, sorted by sequence number, non-overlapping with `next`.
    pending: Vec<(SeqNumber, Vec<u8>)>,
    pending_bytes: usize,
}

impl Reassembler {
    /// Sets the stream start from a SYN's sequence number (data begins one after it).
    pub fn syn(&mut self, isn: SeqNumber) {
        if self.next.is_none() {
            self.next = Some(isn.plus(1));
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

    /// Takes one segment's payload; delivers whatever became contiguous to `sink`.
    pub fn segment(&mut self, seq: SeqNumber, payload: &[u8], sink: &mut dyn FnMut(Chunk<'_>)) -> SegmentNote {
        // Never recursive: a hostile stream cannot grow the stack.
        let mut note = SegmentNote::default();
        if payload.is_empty() {
            return note;
        }
        let mut next = *self.next.get_or_insert(seq);
        let mut rel = seq.diff(next);
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
            let Some(fresh) = payload.get(skip..).filter(|f| !f.is_empty()) else {
                note.retransmission = !note.buffer_full;
                return note;
            };
            self.next = Some(next.plus(fresh.len()));
            sink(Chunk::Data(fresh));
            self.drain(sink);
            return note;
        }
        let pos = self.pending.partition_point(|(s, _)| s.diff(seq) < 0);
        if let Some((s, d)) = self.pending.get(pos) {
            if *s == seq && d.len() >= payload.len() {
                note.retransmission = true;
                return note;
            }
        }
        self.pending_bytes += payload.len();
        self.pending.insert(pos, (seq, payload.to_vec()));
        note
    }

    /// Delivers buffered segments that are now contiguous with `next`.
    fn drain(&mut self, sink: &mut dyn FnMut(Chunk<'_>)) {
        while let Some((seq, _)) = self.pending.first() {
            let Some(next) = self.next else { return };
            let rel = seq.diff(next);
            if rel > 0 {
                return;
            }
            let (_, data) = self.pending.remove(0);
            self.pending_bytes -= data.len();
            let skip = (-rel) as usize;
            if let Some(fresh) = data.get(skip..).filter(|f| !f.is_empty()) {
                self.next = Some(next.plus(fresh.len()));
                sink(Chunk::Data(fresh));
            }
        }
    }

    /// Declares the hole before the first buffered segment lost; returns its length.
    fn give_up_first_hole(&mut self, sink: &mut dyn FnMut(Chunk<'_>)) -> u64 {
        let (Some(next), Some((seq, _))) = (self.next, self.pending.first()) else {
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
        while let (Some(next), Some((first, _))) = (self.next, self.pending.first()) {
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
            sink(Chunk::Gap(len));
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

    /// Drops buffered data and stops tracking (the handler no longer needs this direction).
    pub fn abandon(&mut self) {
        self.pending = Vec::new();
        self.pending_bytes = 0;
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
            Chunk::Gap(n) => gaps += n,
        };
        for (s, d) in segs {
            r.segment(SeqNumber(*s), d, &mut sink);
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
