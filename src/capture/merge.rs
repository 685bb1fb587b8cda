//! Several inputs read as one capture, merged in timestamp order.
//!
//! A single input is read straight through without copying. Several inputs (rotated files, a
//! directory) are merged by always taking the earliest pending packet (ties go to the input
//! given first); the pending packet of each open input is copied into a reusable buffer, so a
//! connection that spans files is seen in order and becomes one connection.
//!
//! Inputs are opened lazily: opening a capture first notes each file's first packet time and
//! closes it again, and a file is reopened only when the merge reaches that time, then closed at
//! its end. Rotated captures therefore hold one or two files open at a time whatever their
//! number (a directory of 10,000 captures runs under `ulimit -n 256` in a few megabytes). At
//! most [`MAX_OPEN_INPUTS`] files are open at once, fewer under a low open-file limit (see
//! [`open_cap`]). Inputs that overlap in time beyond that stay in time order: the open input
//! whose next packet comes last lets go of its file (it is *parked*, see
//! `FileReader::park`) and is taken up again at its next packet. Only inputs that cannot be
//! parked (gzip, a FIFO) ever wait for another to end and are then read out of time order,
//! counted as `inputs_read_out_of_order`. A reopen refused for lack of file descriptors parks
//! another input, or waits like those: an input is never skipped for that.

use super::{CaptureError, CaptureErrorKind, FileReader, LinkType, Packet, StopReason, Timestamp};
use crate::limits::MAX_OPEN_INPUTS;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::{Path, PathBuf};

/// The pending packet of an open input.
struct Head {
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    data: Vec<u8>,
}

/// One input of a merged capture.
enum Slot {
    /// Not open: its first packet is at `first`.
    Closed { path: PathBuf, first: Timestamp },
    /// Open, with its next packet in `head`; or parked (its file let go of, see
    /// [`FileReader::park`]), still with its next packet.
    Open { reader: Box<FileReader>, head: Head },
    /// Read to its end, with what it said about itself; `None` when it could not be reopened.
    Done(Option<Box<Ended>>),
}

/// What an input that was read said about itself, kept after it is closed.
#[derive(Clone, Debug)]
struct Ended {
    name: String,
    stop: Option<StopReason>,
    damage: Vec<String>,
    oddities: Vec<(&'static str, u64)>,
    raw_bytes: u64,
}

impl Ended {
    fn of(r: &FileReader) -> Ended {
        Ended {
            name: r.name().display().to_string(),
            stop: r.stop.clone(),
            damage: r.damage.clone(),
            oddities: r.oddities.clone(),
            raw_bytes: r.raw_bytes_read(),
        }
    }
}

/// Several inputs in timestamp order.
struct Merge {
    slots: Vec<Slot>,
    /// (time of the slot's next packet, slot): the earliest first, ties to the lower slot.
    queue: BinaryHeap<Reverse<(Timestamp, usize)>>,
    /// Closed or parked inputs whose turn came while `cap` were open and none could be parked.
    deferred: VecDeque<usize>,
    /// Inputs holding their file (open and not parked).
    open: usize,
    /// Inputs open at most at once: [`open_cap`], lowered if a reopen still ran out of file
    /// descriptors.
    cap: usize,
    /// The slot returned last time, to be refilled on the next call.
    refill: Option<usize>,
    /// Inputs that could be read when noted but not when reopened.
    failed: Vec<String>,
    out_of_order: u64,
    /// Packets handed out, in all and per input; the input of the last one.
    handed: u64,
    handed_per_input: Vec<u64>,
    last_input: Option<usize>,
    /// Where each frame came from (read by the reports).
    origins: super::origin::SharedOrigins,
}

/// The whole capture: every input, read in timestamp order.
pub struct Capture {
    /// A single input, read straight through.
    single: Option<FileReader>,
    merge: Option<Merge>,
    /// Inputs that could not be read (permission, damage, gone when reopened), with the reason.
    pub skipped: Vec<String>,
    /// Files inside directories skipped quietly because they are not captures (READMEs, notes).
    pub skipped_non_captures: u64,
    total_size: u64,
    /// Whether a stop request (Ctrl-C) ends the capture; a carve's second pass reads on.
    interruptible: bool,
    /// The thread copying the file ahead of a one-thread analysis, if started.
    ahead: Option<super::prefetch::ReadAhead>,
}

impl Capture {
    /// Opens every input; directories contribute their capture files in name order. Only a
    /// single input stays open; several are noted (first packet time) and closed again.
    pub fn open(inputs: &[PathBuf]) -> Result<Capture, CaptureError> {
        if let [only] = inputs {
            if only.as_os_str() == "-" || !only.is_dir() {
                return Ok(Capture {
                    total_size: file_size(only),
                    ..Capture::single(FileReader::open(only)?)
                });
            }
        }
        // Every path to read, with the index of the directory input it came from.
        let mut paths: Vec<(PathBuf, Option<usize>)> = Vec::new();
        for (k, input) in inputs.iter().enumerate() {
            if input.as_os_str() != "-" && input.is_dir() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                    .map_err(|e| CaptureError {
                        input: input.clone(),
                        kind: CaptureErrorKind::Io(e),
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                entries.sort();
                paths.extend(entries.into_iter().map(|p| (p, Some(k))));
            } else {
                paths.push((input.clone(), None));
            }
        }
        let total_size = paths.iter().map(|(p, _)| file_size(p)).sum();
        let mut skipped = Vec::new();
        let mut skipped_non_captures = 0;
        let mut slots = Vec::new();
        let mut from_dir = vec![0usize; inputs.len()];
        for (path, dir) in paths {
            let mut reader = match FileReader::open(&path) {
                Ok(r) => r,
                Err(e) if dir.is_none() => return Err(e),
                Err(e) => {
                    match e.kind {
                        CaptureErrorKind::NotACapture { .. } | CaptureErrorKind::Empty => skipped_non_captures += 1,
                        _ => skipped.push(e.to_string()),
                    }
                    continue;
                }
            };
            if let Some(n) = dir.and_then(|k| from_dir.get_mut(k)) {
                *n += 1;
            }
            let mut head = Head::default();
            let first = load(&mut reader, &mut head);
            let seekable = path.as_os_str() != "-" && std::fs::metadata(&path).is_ok_and(|m| m.is_file());
            match first {
                None => slots.push(Slot::Done(Some(Box::new(Ended::of(&reader))))),
                // Standard input and FIFOs cannot be read twice: they stay open.
                Some(_) if !seekable => {
                    slots.push(Slot::Open {
                        reader: Box::new(reader),
                        head,
                    });
                }
                Some(first) => slots.push(Slot::Closed { path, first }),
            }
        }
        for (input, n) in inputs.iter().zip(&from_dir) {
            if *n == 0 && input.as_os_str() != "-" && input.is_dir() {
                return Err(CaptureError {
                    input: input.clone(),
                    kind: CaptureErrorKind::NoCapturesInDirectory,
                });
            }
        }
        let mut cap = match slots.as_slice() {
            // One input (a file, or the only capture of a directory): read straight through,
            // opened afresh so that it can be read ahead in chunks.
            [Slot::Closed { path, .. }] => Capture::single(FileReader::open(path)?),
            _ => Capture::assemble(slots),
        };
        cap.skipped = skipped;
        cap.skipped_non_captures = skipped_non_captures;
        cap.total_size = total_size;
        Ok(cap)
    }

    fn single(reader: FileReader) -> Capture {
        Capture {
            single: Some(reader),
            merge: None,
            skipped: Vec::new(),
            skipped_non_captures: 0,
            total_size: 0,
            interruptible: true,
            ahead: None,
        }
    }

    /// Builds a capture over already opened readers (tests, stdin); they stay open.
    pub fn from_readers(mut readers: Vec<FileReader>) -> Capture {
        if readers.len() == 1 {
            if let Some(r) = readers.pop() {
                return Capture::single(r);
            }
        }
        let mut slots = Vec::new();
        for mut reader in readers {
            let mut head = Head::default();
            if load(&mut reader, &mut head).is_some() {
                slots.push(Slot::Open {
                    reader: Box::new(reader),
                    head,
                });
            } else {
                slots.push(Slot::Done(Some(Box::new(Ended::of(&reader)))));
            }
        }
        Capture::assemble(slots)
    }

    fn assemble(slots: Vec<Slot>) -> Capture {
        let names = slots
            .iter()
            .map(|s| -> std::sync::Arc<str> {
                match s {
                    Slot::Closed { path, .. } => path.display().to_string().into(),
                    Slot::Open { reader, .. } => reader.name().display().to_string().into(),
                    Slot::Done(e) => e.as_ref().map(|e| e.name.as_str()).unwrap_or("").into(),
                }
            })
            .collect();
        let inputs = slots.len();
        let mut queue = BinaryHeap::new();
        let mut open = 0;
        for (i, s) in slots.iter().enumerate() {
            match s {
                Slot::Closed { first, .. } => queue.push(Reverse((*first, i))),
                Slot::Open { head, .. } => {
                    open += 1;
                    queue.push(Reverse((head.ts, i)));
                }
                Slot::Done(_) => {}
            }
        }
        Capture {
            single: None,
            merge: Some(Merge {
                slots,
                queue,
                deferred: VecDeque::new(),
                open,
                cap: open_cap(),
                refill: None,
                failed: Vec::new(),
                out_of_order: 0,
                handed: 0,
                handed_per_input: vec![0; inputs],
                last_input: None,
                origins: std::sync::Arc::new(std::sync::Mutex::new(super::origin::FrameOrigins::new(names))),
            }),
            skipped: Vec::new(),
            skipped_non_captures: 0,
            total_size: 0,
            interruptible: true,
            ahead: None,
        }
    }

    /// The next packet of the capture in timestamp order, or `None` at the end.
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        // A stop request (Ctrl-C) ends the capture here, as if the input ended.
        if self.interruptible && crate::interrupt::requested() {
            return None;
        }
        match &mut self.single {
            Some(r) => r.next_packet(),
            None => self.merge.as_mut()?.next_packet(),
        }
    }

    /// As [`Capture::next_packet`], with the shared buffer the packet lies in when there is a
    /// single input (several inputs are merged through copies, so there is none).
    pub fn next_packet_shared(&mut self) -> Option<(Packet<'_>, Option<&std::sync::Arc<Vec<u8>>>)> {
        if self.interruptible && crate::interrupt::requested() {
            return None;
        }
        match &mut self.single {
            Some(r) => r.next_packet_shared().map(|(p, b)| (p, Some(b))),
            None => self.merge.as_mut()?.next_packet().map(|p| (p, None)),
        }
    }

    /// Reads the rest of a single plain capture file in chunks of `chunk` bytes (normally
    /// [`super::prefetch::CHUNK`]) that other threads may read ahead (see [`super::prefetch`]);
    /// `None` when there are several inputs or the input is standard input or compressed.
    pub fn prefetch(&mut self, chunk: usize) -> Option<std::sync::Arc<super::prefetch::Prefetch>> {
        self.single.as_mut()?.prefetch(chunk)
    }

    /// For an analysis on one thread: a single plain capture file is from now on copied ahead
    /// of it by another thread (the copy from the page cache is otherwise a third of the time
    /// on bulk traffic). Nothing changes for other inputs, nor in what is read.
    pub fn read_ahead(&mut self) {
        if self.ahead.is_none() {
            if let Some(p) = self.prefetch(super::prefetch::CHUNK) {
                self.ahead = super::prefetch::ReadAhead::start(p);
            }
        }
    }

    /// See [`FileReader::set_chunk_budget`] (a single input read in chunks; no effect otherwise).
    pub fn set_chunk_budget(&mut self, n: Option<u32>) {
        if let Some(r) = &mut self.single {
            r.set_chunk_budget(n);
        }
    }

    /// Whether reading paused at the chunk budget (see [`FileReader::paused`]).
    pub fn paused(&self) -> bool {
        // After a stop request the capture has ended, paused or not.
        if self.interruptible && crate::interrupt::requested() {
            return false;
        }
        self.single.as_ref().is_some_and(|r| r.paused())
    }

    /// Reads on after a stop request (a carve must reach the last frame the analysis read).
    pub fn ignore_interrupt(&mut self) {
        self.interruptible = false;
    }

    /// What every input said so far, in the order given (open inputs as they are now).
    fn reports(&self) -> Vec<Ended> {
        if let Some(r) = &self.single {
            return vec![Ended::of(r)];
        }
        let Some(m) = &self.merge else { return Vec::new() };
        m.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Done(e) => e.as_deref().cloned(),
                Slot::Open { reader, .. } => Some(Ended::of(reader)),
                Slot::Closed { path, .. } => Some(Ended {
                    name: path.display().to_string(),
                    stop: None,
                    damage: Vec::new(),
                    oddities: Vec::new(),
                    raw_bytes: 0,
                }),
            })
            .collect()
    }

    /// Where each frame came from, when several inputs are merged (`None`: one input, whose
    /// frame numbers are the file's).
    pub fn origins(&self) -> Option<super::origin::SharedOrigins> {
        self.merge.as_ref().map(|m| m.origins.clone())
    }

    /// Names of the inputs read, in the order given.
    pub fn files(&self) -> Vec<String> {
        self.reports().into_iter().map(|e| e.name).collect()
    }

    /// Why inputs ended early, one entry per damaged input.
    pub fn stops(&self) -> Vec<(String, StopReason)> {
        self.reports()
            .into_iter()
            .filter_map(|e| e.stop.map(|s| (e.name, s)))
            .collect()
    }

    /// Damage the readers skipped over (file, description), the first few per input.
    pub fn damage(&self) -> Vec<(String, String)> {
        self.reports()
            .into_iter()
            .flat_map(|e| e.damage.into_iter().map(move |d| (e.name.clone(), d)))
            .collect()
    }

    /// Non-fatal oddities counted by the readers and the merge.
    pub fn oddities(&self) -> Vec<(&'static str, u64)> {
        let mut all: Vec<(&'static str, u64)> = self.reports().into_iter().flat_map(|e| e.oddities).collect();
        if let Some(m) = self.merge.as_ref().filter(|m| m.out_of_order > 0) {
            all.push(("inputs_read_out_of_order", m.out_of_order));
        }
        all
    }

    /// Inputs that could not be read: those skipped when the capture was opened and those that
    /// failed when reopened.
    pub fn unreadable(&self) -> Vec<String> {
        let mut all = self.skipped.clone();
        if let Some(m) = &self.merge {
            all.extend(m.failed.iter().cloned());
        }
        all
    }

    /// Sum of the input files' sizes in bytes (0 for stdin).
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Raw bytes read so far across inputs.
    pub fn raw_bytes_read(&self) -> u64 {
        if let Some(r) = &self.single {
            return r.raw_bytes_read();
        }
        let Some(m) = &self.merge else { return 0 };
        m.slots
            .iter()
            .map(|s| match s {
                Slot::Done(Some(e)) => e.raw_bytes,
                Slot::Open { reader, .. } => reader.raw_bytes_read(),
                _ => 0,
            })
            .sum()
    }
}

impl Merge {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        if let Some(i) = self.refill.take() {
            self.advance(i);
        }
        let i = loop {
            let Reverse((ts, i)) = self.queue.pop()?;
            match self.slots.get(i) {
                Some(Slot::Open { reader, .. }) if !reader.is_parked() => break i,
                Some(Slot::Open { .. } | Slot::Closed { .. }) => {
                    if self.open >= self.cap && !self.park_one() {
                        self.deferred.push_back(i);
                        continue;
                    }
                    // Reopened: its first packet is normally the one noted; if not, queue it
                    // at its own time.
                    match self.reopen(i) {
                        Reopen::At(t) if t == ts => break i,
                        Reopen::At(t) => self.queue.push(Reverse((t, i))),
                        // Out of descriptors: the cap went down to what is open; try again
                        // (parking another), or wait for an input to end.
                        Reopen::Busy if self.park_one() => self.queue.push(Reverse((ts, i))),
                        Reopen::Busy => self.deferred.push_back(i),
                        Reopen::Gone => {}
                    }
                }
                _ => {}
            }
        };
        self.refill = Some(i);
        self.handed += 1;
        if let Some(n) = self.handed_per_input.get_mut(i) {
            *n += 1;
            if self.last_input != Some(i) {
                self.last_input = Some(i);
                super::origin::lock(&self.origins).start_run(self.handed, i, *n);
            }
        }
        match self.slots.get(i) {
            Some(Slot::Open { head, .. }) => Some(Packet {
                ts: head.ts,
                link: head.link,
                data: &head.data,
                orig_len: head.orig_len,
            }),
            _ => None,
        }
    }

    /// Lets go of the file of the open input whose next packet comes last, if one can be
    /// parked; whether one was.
    fn park_one(&mut self) -> bool {
        let latest = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(k, s)| match s {
                Slot::Open { reader, head } if reader.can_park() => Some((head.ts, k)),
                _ => None,
            })
            .max();
        let Some((_, k)) = latest else { return false };
        let Some(Slot::Open { reader, .. }) = self.slots.get_mut(k) else {
            return false;
        };
        if !reader.park() {
            return false;
        }
        self.open = self.open.saturating_sub(1);
        true
    }

    /// Opens a closed input and loads its first packet, or takes up a parked one.
    fn reopen(&mut self, i: usize) -> Reopen {
        let Some(slot) = self.slots.get_mut(i) else {
            return Reopen::Gone;
        };
        // The time of its next packet (`None`: empty), or why it could not be opened and
        // whether for want of a file descriptor.
        let opened: Result<Option<Timestamp>, (bool, String)> = match slot {
            Slot::Open { reader, head } => reader
                .unpark()
                .map(|()| Some(head.ts))
                .map_err(|e| (out_of_descriptors(&e), format!("{}: {e}", reader.name().display()))),
            Slot::Closed { path, .. } => match FileReader::open(path) {
                Ok(mut reader) => {
                    let mut head = Head::default();
                    let t = load(&mut reader, &mut head);
                    *slot = match t {
                        Some(_) => Slot::Open {
                            reader: Box::new(reader),
                            head,
                        },
                        None => Slot::Done(Some(Box::new(Ended::of(&reader)))),
                    };
                    Ok(t)
                }
                Err(e) => Err((
                    matches!(&e.kind, CaptureErrorKind::Io(io) if out_of_descriptors(io)),
                    e.to_string(),
                )),
            },
            Slot::Done(_) => return Reopen::Gone,
        };
        match opened {
            Ok(Some(t)) => {
                self.open += 1;
                Reopen::At(t)
            }
            Ok(None) => Reopen::Gone,
            // Out of file descriptors while other inputs hold some: wait for one to end, and
            // open no more at once from now on.
            Err((true, _)) if self.open > 0 => {
                self.cap = self.open;
                Reopen::Busy
            }
            Err((_, why)) => {
                self.failed.push(why);
                if let Some(s) = self.slots.get_mut(i) {
                    *s = Slot::Done(None);
                }
                Reopen::Gone
            }
        }
    }

    /// Loads the next packet of slot `i` after its last one was returned; closes it at its end.
    fn advance(&mut self, i: usize) {
        let Some(Slot::Open { reader, head }) = self.slots.get_mut(i) else {
            return;
        };
        if let Some(t) = load(reader, head) {
            self.queue.push(Reverse((t, i)));
            return;
        }
        let ended = Ended::of(reader);
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot::Done(Some(Box::new(ended)));
        }
        self.open = self.open.saturating_sub(1);
        // A file ended: one that had to wait for a free place opens now, out of time order.
        while let Some(j) = self.deferred.pop_front() {
            match self.reopen(j) {
                Reopen::At(t) => {
                    self.out_of_order += 1;
                    self.queue.push(Reverse((t, j)));
                    break;
                }
                Reopen::Busy => {
                    self.deferred.push_front(j);
                    break;
                }
                Reopen::Gone => {}
            }
        }
    }
}

/// What reopening an input gave.
enum Reopen {
    /// Open, its next packet at this time.
    At(Timestamp),
    /// Not now: no file descriptor left while other inputs are open.
    Busy,
    /// Done: unreadable (counted) or empty.
    Gone,
}

/// Descriptors an open input holds (the file, and a second handle for reading it in chunks).
const FDS_PER_INPUT: u64 = 2;
/// Descriptors left for everything else: standard streams, outputs, the JSON spill, the
/// key logs, threads' wake-ups.
const FDS_RESERVED: u64 = 32;

/// Inputs that may be open at once: [`MAX_OPEN_INPUTS`], or fewer so that they fit in the
/// process's open-file limit beside [`FDS_RESERVED`] others (at least one).
fn open_cap() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    cap_for_limit(soft)
}

fn cap_for_limit(soft: Option<u64>) -> usize {
    let Some(soft) = soft else { return MAX_OPEN_INPUTS };
    let fit = soft.saturating_sub(FDS_RESERVED) / FDS_PER_INPUT;
    usize::try_from(fit).unwrap_or(usize::MAX).clamp(1, MAX_OPEN_INPUTS)
}

/// Whether opening failed for want of a file descriptor (the process's or the system's).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::MFILE, Errno::NFILE]
        .iter()
        .any(|n| e.raw_os_error() == Some(n.raw_os_error()))
}

impl Default for Head {
    fn default() -> Head {
        Head {
            ts: Timestamp(0),
            link: LinkType(0),
            orig_len: 0,
            data: Vec::new(),
        }
    }
}

/// Reads the next packet of `reader` into `head`; its time, or `None` at the end.
fn load(reader: &mut FileReader, head: &mut Head) -> Option<Timestamp> {
    let p = reader.next_packet()?;
    head.ts = p.ts;
    head.link = p.link;
    head.orig_len = p.orig_len;
    head.data.clear();
    head.data.extend_from_slice(p.data);
    Some(p.ts)
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_cap_fits_the_open_file_limit() {
        assert_eq!(cap_for_limit(None), MAX_OPEN_INPUTS);
        assert_eq!(cap_for_limit(Some(1 << 20)), MAX_OPEN_INPUTS);
        assert_eq!(cap_for_limit(Some(256)), 64);
        assert_eq!(cap_for_limit(Some(128)), 48);
        assert_eq!(cap_for_limit(Some(64)), 16);
        assert_eq!(cap_for_limit(Some(20)), 1);
    }
}
