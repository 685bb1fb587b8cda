//! The report's writer for verdicts that must not wait: NDJSON from a pipe (`-`, a FIFO) and
//! from `live`. Lines are buffered and leave in large blocks, but none waits in the buffer
//! longer than [`MAX_WAIT`]: a flusher thread writes the buffer out that long after the first
//! line that entered it, even while the analysis is blocked reading a quiet pipe. From files
//! (nothing waits for a verdict) the output is a plain buffer, flushed when full.
//!
//! The bound the user sees is [`MAX_WAIT`] plus the flusher's wake-up on a busy machine; 100 ms
//! is the promise (tests/reports.rs `ndjson_from_a_pipe_arrives_within_100_ms`).

use super::outputs::Output;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a written line waits in the buffer before the flusher writes it out.
pub const MAX_WAIT: Duration = Duration::from_millis(40);

/// The report's destination: a plain buffered output, or one with a flusher thread.
pub(super) enum Writer {
    /// Buffered, flushed when full and at the end.
    Blocks(Output),
    /// Buffered, and flushed at most [`MAX_WAIT`] after a line entered the buffer.
    Timed(Timed),
}

impl Writer {
    /// A writer for `out`: with a flusher thread when verdicts must not wait.
    pub(super) fn new(out: Output, timed: bool) -> Writer {
        if timed {
            Writer::Timed(Timed::start(out, MAX_WAIT))
        } else {
            Writer::Blocks(out)
        }
    }

    /// The error the flusher met writing the output, if any (once).
    #[cfg_attr(not(feature = "live"), allow(dead_code, reason = "used by `live`"))]
    pub(super) fn check(&mut self) -> io::Result<()> {
        match self {
            Writer::Blocks(_) => Ok(()),
            Writer::Timed(t) => t.shared.lock().error.take().map_or(Ok(()), Err),
        }
    }

    /// Stops the flusher (if any) and commits the output (see [`Output::commit`]).
    pub(super) fn commit(self) -> io::Result<()> {
        match self {
            Writer::Blocks(o) => o.commit(),
            Writer::Timed(t) => t.stop()?.commit(),
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Writer::Blocks(o) => o.write(buf),
            Writer::Timed(t) => t.write_all(buf).map(|_| buf.len()),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Writer::Blocks(o) => o.write_all(buf),
            Writer::Timed(t) => t.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Writer::Blocks(o) => o.flush(),
            Writer::Timed(t) => t.flush(),
        }
    }
}

struct State {
    /// `None` once the flusher has stopped and handed the output back.
    out: Option<Output>,
    /// When the oldest unflushed byte was written.
    since: Option<Instant>,
    /// The writer asked the flusher to stop.
    done: bool,
    /// The flusher's last write error, given to the next writer call.
    error: Option<io::Error>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An output with a flusher thread (see the module documentation).
pub(super) struct Timed {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl Timed {
    fn start(out: Output, max_wait: Duration) -> Timed {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out: Some(out),
                since: None,
                done: false,
                error: None,
            }),
            wake: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("flusher".into())
            .spawn(move || flush_loop(&s, max_wait))
            .ok();
        Timed { shared, flusher }
    }

    /// Writes `buf` into the buffer; the first bytes after a flush start the wait.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.shared.lock();
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        let Some(out) = st.out.as_mut() else {
            return Err(io::Error::other("output already closed"));
        };
        out.write_all(buf)?;
        if st.since.is_none() {
            st.since = Some(Instant::now());
            // Without a flusher thread (it could not be started), every write goes out at once.
            if self.flusher.is_none() {
                st.since = None;
                return st.out.as_mut().map_or(Ok(()), Output::flush);
            }
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut st = self.shared.lock();
        st.since = None;
        match st.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }

    /// Stops the flusher and gives the output back.
    fn stop(mut self) -> io::Result<Output> {
        self.shared.lock().done = true;
        self.shared.wake.notify_one();
        if let Some(f) = self.flusher.take() {
            // A panicked flusher leaves the output in the state: the error is in `error`.
            let _ = f.join();
        }
        let mut st = self.shared.lock();
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        st.out.take().ok_or_else(|| io::Error::other("output already closed"))
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        self.shared.lock().done = true;
        self.shared.wake.notify_one();
        if let Some(f) = self.flusher.take() {
            let _ = f.join();
        }
    }
}

/// The flusher: sleeps until a line has waited `max_wait`, writes the buffer out, and so on
/// until told to stop.
fn flush_loop(shared: &Shared, max_wait: Duration) {
    let mut st = shared.lock();
    while !st.done {
        let Some(since) = st.since else {
            st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let due = since + max_wait;
        let now = Instant::now();
        if now < due {
            st = shared
                .wake
                .wait_timeout(st, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        st.since = None;
        if let Some(Err(e)) = st.out.as_mut().map(Output::flush) {
            st.error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
    use super::*;
    use crate::cli::outputs::Target;

    #[test]
    fn a_line_reaches_the_file_within_the_wait_and_blocks_otherwise_stay_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let special = std::fs::File::create(&path).unwrap();
        drop(special);
        let target = Target::Special { shown: path.clone() };
        let mut w = Writer::new(Output::create(&target).unwrap(), true);
        w.write_all(b"{\"a\":1}\n").unwrap();
        // Nothing is flushed at once ...
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
        // ... but within the wait (and a margin for a busy machine), bounded in time.
        let start = Instant::now();
        while std::fs::read(&path).unwrap().is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let waited = start.elapsed();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n");
        assert!(
            waited >= MAX_WAIT / 2 && waited < Duration::from_millis(100),
            "{waited:?}"
        );
        w.write_all(b"{\"b\":2}\n").unwrap();
        w.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
    }
}
