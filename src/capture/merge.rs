//! Several inputs read as one capture, merged in timestamp order.
//!
//! A single input is read straight through without copying. Several inputs (rotated files, a
//! directory) are merged by always taking the earliest pending packet; the pending packet of
//! each input is copied into a reusable per-input buffer, so a connection that spans files is
//! seen in order and becomes one connection.

use super::{CaptureError, CaptureErrorKind, FileReader, LinkType, Packet, StopReason, Timestamp};
use std::path::{Path, PathBuf};

struct Head {
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    data: Vec<u8>,
    live: bool,
}

/// The whole capture: every input, read in timestamp order.
pub struct Capture {
    readers: Vec<FileReader>,
    heads: Vec<Head>,
    /// The slot returned last time, to be refilled on the next call.
    refill: Option<usize>,
    /// Files inside directories that could not be read (permission, damage), with the reason.
    pub skipped: Vec<String>,
    /// Files inside directories skipped quietly because they are not captures (READMEs, notes).
    pub skipped_non_captures: u64,
    total_size: u64,
    /// Whether a stop request (Ctrl-C) ends the capture; a carve's second pass reads on.
    interruptible: bool,
}

impl Capture {
    /// Opens every input; directories contribute their capture files in name order.
    pub fn open(inputs: &[PathBuf]) -> Result<Capture, CaptureError> {
        let mut readers = Vec::new();
        let mut skipped = Vec::new();
        let mut skipped_non_captures = 0;
        let mut total_size = 0u64;
        for input in inputs {
            if input.as_os_str() != "-" && input.is_dir() {
                let before = readers.len();
                let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                    .map_err(|e| CaptureError {
                        input: input.clone(),
                        kind: CaptureErrorKind::Io(e),
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                entries.sort();
                for p in entries {
                    match FileReader::open(&p) {
                        Ok(r) => {
                            total_size += file_size(&p);
                            readers.push(r);
                        }
                        Err(e) => match e.kind {
                            CaptureErrorKind::NotACapture { .. } | CaptureErrorKind::Empty => skipped_non_captures += 1,
                            _ => skipped.push(e.to_string()),
                        },
                    }
                }
                if readers.len() == before {
                    return Err(CaptureError {
                        input: input.clone(),
                        kind: CaptureErrorKind::NoCapturesInDirectory,
                    });
                }
            } else {
                total_size += file_size(input);
                readers.push(FileReader::open(input)?);
            }
        }
        Ok(Capture::assemble(readers, skipped, skipped_non_captures, total_size))
    }

    /// Builds a capture over already opened readers (tests, stdin).
    pub fn from_readers(readers: Vec<FileReader>) -> Capture {
        Capture::assemble(readers, Vec::new(), 0, 0)
    }

    fn assemble(readers: Vec<FileReader>, skipped: Vec<String>, skipped_non_captures: u64, total_size: u64) -> Capture {
        let heads = readers
            .iter()
            .map(|_| Head {
                ts: Timestamp(0),
                link: LinkType(0),
                orig_len: 0,
                data: Vec::new(),
                live: false,
            })
            .collect();
        let mut cap = Capture {
            readers,
            heads,
            refill: None,
            skipped,
            skipped_non_captures,
            total_size,
            interruptible: true,
        };
        if cap.readers.len() > 1 {
            for i in 0..cap.readers.len() {
                cap.load(i);
            }
        }
        cap
    }

    fn load(&mut self, i: usize) {
        let (Some(head), Some(reader)) = (self.heads.get_mut(i), self.readers.get_mut(i)) else {
            return;
        };
        match reader.next_packet() {
            Some(p) => {
                head.ts = p.ts;
                head.link = p.link;
                head.orig_len = p.orig_len;
                head.data.clear();
                head.data.extend_from_slice(p.data);
                head.live = true;
            }
            None => head.live = false,
        }
    }

    /// The next packet of the capture in timestamp order, or `None` at the end.
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        // A stop request (Ctrl-C) ends the capture here, as if the input ended.
        if self.interruptible && crate::interrupt::requested() {
            return None;
        }
        if self.readers.len() == 1 {
            return self.readers.first_mut()?.next_packet();
        }
        if let Some(i) = self.refill.take() {
            self.load(i);
        }
        let mut best: Option<(usize, &Head)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if h.live && best.is_none_or(|(_, b)| h.ts < b.ts) {
                best = Some((i, h));
            }
        }
        let (i, h) = best?;
        self.refill = Some(i);
        Some(Packet {
            ts: h.ts,
            link: h.link,
            data: &h.data,
            orig_len: h.orig_len,
        })
    }

    /// As [`Capture::next_packet`], with the shared buffer the packet lies in when there is a
    /// single input (several inputs are merged through copies, so there is none).
    pub fn next_packet_shared(&mut self) -> Option<(Packet<'_>, Option<&std::sync::Arc<Vec<u8>>>)> {
        if self.interruptible && crate::interrupt::requested() {
            return None;
        }
        if self.readers.len() == 1 {
            return self
                .readers
                .first_mut()?
                .next_packet_shared()
                .map(|(p, b)| (p, Some(b)));
        }
        self.next_packet().map(|p| (p, None))
    }

    /// Reads the rest of a single plain capture file in chunks of `chunk` bytes (normally
    /// [`super::prefetch::CHUNK`]) that other threads may read ahead (see [`super::prefetch`]);
    /// `None` when there are several inputs or the input is standard input or compressed.
    pub fn prefetch(&mut self, chunk: usize) -> Option<std::sync::Arc<super::prefetch::Prefetch>> {
        match self.readers.as_mut_slice() {
            [only] => only.prefetch(chunk),
            _ => None,
        }
    }

    /// See [`FileReader::set_chunk_budget`] (a single input read in chunks; no effect otherwise).
    pub fn set_chunk_budget(&mut self, n: Option<u32>) {
        if let [only] = self.readers.as_mut_slice() {
            only.set_chunk_budget(n);
        }
    }

    /// Whether reading paused at the chunk budget (see [`FileReader::paused`]).
    pub fn paused(&self) -> bool {
        // After a stop request the capture has ended, paused or not.
        if self.interruptible && crate::interrupt::requested() {
            return false;
        }
        matches!(self.readers.as_slice(), [only] if only.paused())
    }

    /// Reads on after a stop request (a carve must reach the last frame the analysis read).
    pub fn ignore_interrupt(&mut self) {
        self.interruptible = false;
    }

    /// Names of the inputs actually read, in the order given.
    pub fn files(&self) -> Vec<String> {
        self.readers.iter().map(|r| r.name().display().to_string()).collect()
    }

    /// Why inputs ended early, one entry per damaged input.
    pub fn stops(&self) -> Vec<(String, StopReason)> {
        self.readers
            .iter()
            .filter_map(|r| r.stop.clone().map(|s| (r.name().display().to_string(), s)))
            .collect()
    }

    /// Damage the readers skipped over (file, description), the first few per input.
    pub fn damage(&self) -> Vec<(String, String)> {
        self.readers
            .iter()
            .flat_map(|r| r.damage.iter().map(|d| (r.name().display().to_string(), d.clone())))
            .collect()
    }

    /// Non-fatal oddities counted by the readers.
    pub fn oddities(&self) -> Vec<(&'static str, u64)> {
        self.readers.iter().flat_map(|r| r.oddities.iter().copied()).collect()
    }

    /// Sum of the input files' sizes in bytes (0 for stdin).
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Raw bytes read so far across inputs.
    pub fn raw_bytes_read(&self) -> u64 {
        self.readers.iter().map(|r| r.raw_bytes_read()).sum()
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
