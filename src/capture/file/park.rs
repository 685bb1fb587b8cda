//! Letting go of an input's file between packets, and taking it up again where it stopped.
//!
//! A merge of many inputs that overlap in time needs every one of them at hand, but may hold
//! only so many files open. A plain capture file (not standard input, not a FIFO, not gzip) can
//! be closed after any packet and reopened later at the byte where its next record starts: only
//! that offset and the parsing state (format, interfaces, the resynchronisation references) are
//! kept, not the read buffer, so a parked input costs a few hundred bytes.
//!
//! The reopened file must be the one let go of (same device and inode): one replaced in the
//! meantime is an error, never read as if it went on.

use super::FileReader;
use crate::capture::source::Counting;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Read buffer of a reader taken up again (it grows for a longer record).
const UNPARKED_BUFFER: usize = 16 << 10;

impl FileReader {
    /// Whether [`FileReader::park`] can let go of the file: a regular file read directly (not
    /// decompressed, not read ahead in chunks).
    pub fn can_park(&self) -> bool {
        self.file.is_some() && !self.gzip && self.prefetch.is_none() && self.parked.is_none()
    }

    /// Whether the reader let go of its file.
    pub fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Closes the file and drops the read buffer, keeping where the next record starts; false
    /// (and nothing changes) if the reader cannot ([`FileReader::can_park`]).
    pub fn park(&mut self) -> bool {
        if !self.can_park() {
            return false;
        }
        let Some(id) = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()))
        else {
            return false;
        };
        self.src = Box::new(io::empty());
        self.file = None;
        self.buf = Arc::new(Vec::new());
        self.spare.clear();
        self.start = 0;
        self.end = 0;
        self.eof = false;
        // What was read beyond the next record is read again after the reopen.
        self.raw_bytes.store(self.offset, Ordering::Relaxed);
        self.parked = Some(id);
        true
    }

    /// Reopens a parked reader's file at the next record. An error if the file cannot be
    /// opened (the reader stays parked and may be taken up later) or is no longer the same
    /// file (the caller ends the input).
    pub fn unpark(&mut self) -> io::Result<()> {
        let Some((dev, ino)) = self.parked else {
            return Ok(());
        };
        let mut f = std::fs::File::open(&self.name)?;
        let meta = f.metadata()?;
        if (meta.dev(), meta.ino()) != (dev, ino) || meta.len() < self.offset {
            self.parked = None;
            self.eof = true;
            return Err(io::Error::other("the file was replaced or truncated while it was read"));
        }
        f.seek(SeekFrom::Start(self.offset))?;
        self.file = Some(f.try_clone()?);
        self.src = Box::new(Counting {
            inner: f,
            count: self.raw_bytes.clone(),
        });
        // Smaller than a fresh reader's: an input taken up among many that overlap in time is
        // often parked again after a few packets, and each time reads its buffer's worth anew.
        self.buf = Arc::new(vec![0; UNPARKED_BUFFER]);
        self.parked = None;
        Ok(())
    }
}
