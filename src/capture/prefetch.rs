//! Reading a capture file ahead, in chunks, on whichever threads are idle.
//!
//! Copying the file from the page cache is a fixed cost of about a third of a pass over a
//! capture of bulk transfers; read one buffer at a time by the thread that frames the records,
//! it would bound a parallel run by that one thread. [`Prefetch`] reads a regular file in
//! fixed-size chunks at known offsets (`pread`), so any worker can copy the next chunks while
//! another frames the current one, and hands them to the [`super::FileReader`] strictly in file
//! order.
//!
//! What it is not: a cache. At most `ahead` chunks are read before the reader takes them, and
//! chunk buffers are reused once every batch that points into them is gone.
//!
//! Guarantees: the reader sees exactly the bytes a sequential `read` would give (a file that
//! grows while it is read is read up to where the first empty read happened), errors are handed
//! to the reader at the chunk where they happened, and memory is bounded by the cap on buffers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Bytes of file per chunk.
pub const CHUNK: usize = 1 << 20;
/// Room before a chunk's bytes where the reader copies the unread end of the previous chunk, so
/// that a record spanning two chunks lies in one piece (a longer remainder is joined in a new
/// buffer: only blocks over 64 KiB, rare outside odd captures).
pub const LEAD: usize = 64 << 10;
/// Chunk buffers kept for reuse: the chunks read ahead plus those still pointed into by batches
/// in flight; bounds the reserve at about 34 MiB.
const POOL: usize = 32;

/// A chunk read from the file: its buffer (the bytes start at [`LEAD`]) and how many were read.
pub type Chunk = (Arc<Vec<u8>>, usize);

struct State {
    /// Chunks read and not yet taken, by index.
    ready: BTreeMap<u64, io::Result<Chunk>>,
    /// First chunk index at or past the end of the file, once a read came back empty.
    end: Option<u64>,
    /// Buffers to reuse.
    pool: Vec<Arc<Vec<u8>>>,
    /// A read error met after some bytes of a chunk were read: those bytes go to the reader,
    /// the error comes as the next chunk.
    error: Option<(u64, io::Error)>,
    /// The run is being abandoned (a worker failed): nobody waits for chunks any more.
    aborted: bool,
    /// The chunk the reader takes next (chunks before it are consumed).
    taken: u64,
}

/// Chunks of one regular file, read ahead by any thread and taken in order by its reader.
pub struct Prefetch {
    file: File,
    /// File offset of chunk 0.
    base: u64,
    /// Bytes per chunk ([`CHUNK`], smaller in tests).
    chunk: usize,
    /// Next chunk index nobody has started to read.
    claimed: AtomicU64,
    state: Mutex<State>,
    arrived: Condvar,
    /// The reader moved on to a later chunk (a read-ahead thread may copy one more).
    moved: Condvar,
}

impl Prefetch {
    /// Chunks of `chunk` bytes (at least 1) of `file` from byte `base` on.
    pub fn new(file: File, base: u64, chunk: usize) -> Prefetch {
        Prefetch {
            file,
            base,
            chunk: chunk.max(1),
            claimed: AtomicU64::new(0),
            state: Mutex::new(State {
                ready: BTreeMap::new(),
                end: None,
                pool: Vec::new(),
                error: None,
                aborted: false,
                taken: 0,
            }),
            arrived: Condvar::new(),
            moved: Condvar::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the next chunk nobody has started to read, for the reader to take later; returns
    /// its index, or `None` past the end of the file.
    pub fn claim_next(&self) -> Option<u64> {
        loop {
            let k = self.claimed.load(Ordering::Acquire);
            if self.state().end.is_some_and(|e| k >= e) {
                return None;
            }
            if self
                .claimed
                .compare_exchange(k, k + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let chunk = self.read_chunk(k);
                self.state().ready.insert(k, chunk);
                self.arrived.notify_all();
                return Some(k);
            }
        }
    }

    /// Chunks some thread has started to read (the reader's own included).
    pub fn chunks_claimed(&self) -> u64 {
        self.claimed.load(Ordering::Acquire)
    }

    /// Capacity of a chunk buffer (the room before the bytes and the chunk); it holds the room
    /// and the bytes read.
    pub fn buffer_len(&self) -> usize {
        LEAD + self.chunk
    }

    /// Whether the file is known to end before chunk `k` (taking it gives the end).
    pub fn ends_before(&self, k: u64) -> bool {
        self.state().end.is_some_and(|e| k >= e)
    }

    /// Chunk `k` for the reader, reading it here if nobody has started to; waits while another
    /// thread reads it. An empty chunk is the end of the file.
    pub fn take(&self, k: u64) -> io::Result<Chunk> {
        let mut st = self.state();
        if k > st.taken {
            st.taken = k;
            self.moved.notify_all();
        }
        loop {
            if st.error.as_ref().is_some_and(|(at, _)| *at == k) {
                if let Some((_, e)) = st.error.take() {
                    return Err(e);
                }
            }
            // Past the end the file stops, even if a chunk was read there later (a file that
            // grew while it was read would otherwise be joined across a hole).
            if st.end.is_some_and(|e| k >= e) {
                st.ready.remove(&k);
                return Ok((Arc::new(Vec::new()), 0));
            }
            if let Some(chunk) = st.ready.remove(&k) {
                return chunk;
            }
            if st.aborted {
                return Err(io::Error::other("analysis abandoned"));
            }
            if self
                .claimed
                .compare_exchange(k, k + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                drop(st);
                return self.read_chunk(k);
            }
            st = self
                .arrived
                .wait_timeout(st, std::time::Duration::from_millis(50))
                .map(|(st, _)| st)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Stops every wait for chunks (a worker of the run failed).
    pub fn abort(&self) {
        self.state().aborted = true;
        self.arrived.notify_all();
        self.moved.notify_all();
    }

    /// Copies chunks in file order, `ahead` of them from the one the reader takes next (that one
    /// included), until the file ends or [`Prefetch::abort`].
    fn read_ahead(&self, ahead: u64) {
        loop {
            {
                let mut st = self.state();
                loop {
                    let k = self.claimed.load(Ordering::Acquire);
                    if st.aborted || st.end.is_some_and(|e| k >= e) {
                        return;
                    }
                    if k < st.taken.saturating_add(ahead) {
                        break;
                    }
                    st = self
                        .moved
                        .wait_timeout(st, std::time::Duration::from_millis(50))
                        .map(|(st, _)| st)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            }
            if self.claim_next().is_none() {
                return;
            }
        }
    }

    /// Gives a buffer back once the reader has moved past it (reused when no batch holds it).
    pub fn recycle(&self, buf: Arc<Vec<u8>>) {
        if buf.capacity() == LEAD + self.chunk {
            let mut st = self.state();
            if st.pool.len() < POOL {
                st.pool.push(buf);
            }
        }
    }

    fn read_chunk(&self, k: u64) -> io::Result<Chunk> {
        let mut buf = {
            let mut st = self.state();
            match st.pool.iter().position(|b| Arc::strong_count(b) == 1) {
                Some(i) => st.pool.swap_remove(i),
                None => Arc::new(Vec::with_capacity(LEAD + self.chunk)),
            }
        };
        let offset = self.base + k * self.chunk as u64;
        let (n, result) = match Arc::get_mut(&mut buf) {
            Some(b) => self.read_into(b, offset),
            None => (0, Err(io::Error::other("chunk buffer in use"))),
        };
        let mut st = self.state();
        if n < self.chunk {
            // Short read: the file ends in this chunk (or an error stops it here).
            // An empty clean read: the file ends before this chunk; otherwise after it (an error
            // is handed out at this chunk or, after some bytes, at the next one).
            let end = if n == 0 && result.is_ok() { k } else { k + 1 };
            st.end = Some(st.end.map_or(end, |e| e.min(end)));
        }
        match result {
            Ok(()) => Ok((buf, n)),
            // What was read before the error is delivered; the error follows as the next chunk.
            Err(e) if n > 0 => {
                st.error = Some((k + 1, e));
                Ok((buf, n))
            }
            Err(e) => Err(e),
        }
    }
}

impl Prefetch {
    /// Reads the chunk at `offset` into `b` after [`LEAD`] bytes of room; returns how many bytes
    /// were read (`b` holds the room and those), and the error that stopped the read early.
    fn read_into(&self, b: &mut Vec<u8>, offset: u64) -> (usize, io::Result<()>) {
        let want = LEAD + self.chunk;
        // The room before the bytes is initialized (a new buffer's is zeroed, 64 KiB).
        b.truncate(LEAD);
        b.resize(LEAD, 0);
        let mut n = 0;
        if b.capacity() == want {
            // Straight into the spare capacity, which is never zeroed first (a new buffer is
            // 1 MiB of memset otherwise); the capacity bounds the read to the chunk.
            loop {
                if b.len() >= want {
                    return (n, Ok(()));
                }
                match rustix::io::pread(&self.file, rustix::buffer::spare_capacity(b), offset + n as u64) {
                    Ok(0) => return (n, Ok(())),
                    Ok(got) => n += got,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return (n, Err(e.into())),
                }
            }
        }
        // A buffer of another capacity (not one this pool made): read into initialized bytes.
        b.resize(want, 0);
        let result = match b.get_mut(LEAD..) {
            Some(space) => loop {
                let Some(rest) = space.get_mut(n..).filter(|r| !r.is_empty()) else {
                    break Ok(());
                };
                match self.file.read_at(rest, offset + n as u64) {
                    Ok(0) => break Ok(()),
                    Ok(got) => n += got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            },
            None => Err(io::Error::other("chunk buffer too short")),
        };
        b.truncate(LEAD + n);
        (n, result)
    }
}

/// Chunks a [`ReadAhead`] thread copies before the reader needs them: enough to cover a burst of
/// small packets, few enough that the copies are still in the shared cache when framed.
pub const AHEAD: u64 = 4;

/// A thread that copies a file's chunks ahead of its one reader, so that the analysis does not
/// wait for the kernel's copy (about a third of a pass over bulk traffic) on one thread. Stopped
/// and joined when dropped.
pub struct ReadAhead {
    prefetch: Arc<Prefetch>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts copying `prefetch`'s chunks ahead; `None` if no thread could be started (the
    /// reader then copies each chunk itself, as before).
    pub fn start(prefetch: Arc<Prefetch>) -> Option<ReadAhead> {
        let p = prefetch.clone();
        let thread = std::thread::Builder::new()
            .name("tlsdiag-read".into())
            .spawn(move || p.read_ahead(AHEAD))
            .ok()?;
        Some(ReadAhead {
            prefetch,
            thread: Some(thread),
        })
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.prefetch.abort();
        if let Some(t) = self.thread.take() {
            // The thread returns at the abort, or after the one read it is in.
            let _ = t.join();
        }
    }
}
