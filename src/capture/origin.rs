//! Where each frame of a merged capture came from: the input file and the frame's number in it.
//!
//! Frame numbers in reports count across the merged capture (as in one file Wireshark would
//! make of them with mergecap); a user opening one of the inputs needs its own numbering. The
//! merge records runs (consecutive frames of one input) as it hands packets out, so the
//! number is found again afterwards by a binary search; nothing is kept per frame. At most
//! [`MAX_RUNS`] runs are kept (inputs that interleave packet by packet make one per packet);
//! frames past that are left without a file reference.

use std::sync::{Arc, Mutex, PoisonError};

/// Runs kept at most (24 bytes each).
pub const MAX_RUNS: usize = 4 << 20;

#[derive(Debug, Default)]
pub struct FrameOrigins {
    /// Input names, in the order given.
    names: Vec<Arc<str>>,
    /// (first frame of the run in the merged capture, input, its number in that input).
    runs: Vec<(u64, u32, u64)>,
    /// Runs were dropped past [`MAX_RUNS`]: frames after the last run kept are unknown.
    full: bool,
}

/// The origins, shared between the merge that records them and the reports that read them.
pub type SharedOrigins = Arc<Mutex<FrameOrigins>>;

impl FrameOrigins {
    pub fn new(names: Vec<Arc<str>>) -> FrameOrigins {
        FrameOrigins {
            names,
            runs: Vec::new(),
            full: false,
        }
    }

    /// Frame `frame` of the merged capture is frame `in_input` of input `input`, and starts a run.
    pub fn start_run(&mut self, frame: u64, input: usize, in_input: u64) {
        if self.runs.len() >= MAX_RUNS {
            self.full = true;
            return;
        }
        self.runs.push((frame, input as u32, in_input));
    }

    /// The input name and frame number there of frame `frame` of the merged capture.
    pub fn locate(&self, frame: u64) -> Option<(Arc<str>, u64)> {
        let i = self.runs.partition_point(|r| r.0 <= frame).checked_sub(1)?;
        if self.full && i + 1 == self.runs.len() {
            return None;
        }
        let &(first, input, in_input) = self.runs.get(i)?;
        let name = self.names.get(input as usize)?.clone();
        Some((name, in_input + (frame - first)))
    }
}

/// Locks the shared origins (a panic elsewhere leaves them consistent).
pub fn lock(o: &SharedOrigins) -> std::sync::MutexGuard<'_, FrameOrigins> {
    o.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_map_back_to_file_frames() {
        let mut o = FrameOrigins::new(vec!["a.pcap".into(), "b.pcap".into()]);
        o.start_run(1, 0, 1); // frames 1-3 from a (its 1-3)
        o.start_run(4, 1, 1); // frames 4-5 from b (its 1-2)
        o.start_run(6, 0, 4); // frame 6 from a (its 4)
        let at = |f| o.locate(f).map(|(n, k)| (n.to_string(), k));
        assert_eq!(at(0), None);
        assert_eq!(at(3), Some(("a.pcap".into(), 3)));
        assert_eq!(at(5), Some(("b.pcap".into(), 2)));
        assert_eq!(at(6), Some(("a.pcap".into(), 4)));
    }
}
