//! Byte sources under a capture reader: a counter of raw bytes (for progress), and a pipe
//! reader that a stop request (see [`crate::interrupt`]) ends even while it waits for bytes.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// Bytes read from a pipe at a time.
const PIPE_BLOCK: usize = 256 << 10;
/// Blocks read ahead of the reader (bounds the memory a fast writer can fill: 1 MiB).
const PIPE_AHEAD: usize = 4;
/// How often a reader waiting for a pipe looks whether a stop was requested.
const STOP_POLL: Duration = Duration::from_millis(20);

/// Counts bytes read from the underlying file (before decompression), for progress display.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A pipe (standard input, a FIFO) read on a thread of its own, so that a stop request ends
/// the input at once instead of after the writer's next bytes: a blocked `read` cannot be
/// called off. After a stop the reader sees the end of the input; the thread stays blocked in
/// its `read` until the writer writes or closes, or the process exits.
pub(super) fn interruptible<R: Read + Send + 'static>(mut inner: R) -> Box<dyn Read + Send> {
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(PIPE_AHEAD);
    let spawned = std::thread::Builder::new().name("tlsdiag-pipe".into()).spawn(move || {
        loop {
            let mut block = vec![0u8; PIPE_BLOCK];
            let r = loop {
                match inner.read(&mut block) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => break r,
                }
            };
            let last = !matches!(r, Ok(n) if n > 0);
            let msg = r.map(|n| {
                block.truncate(n);
                block
            });
            // The reader is gone (the capture ended or stopped): nothing more to do.
            if tx.send(msg).is_err() || last {
                return;
            }
        }
    });
    match spawned {
        Ok(_) => Box::new(Pipe {
            rx,
            block: Vec::new(),
            at: 0,
        }),
        // No thread to be had (the reader went with the closure): say so on the first read.
        Err(_) => Box::new(NoThread),
    }
}

struct Pipe {
    rx: Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    at: usize,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.block.len() {
            if crate::interrupt::requested() {
                return Ok(0);
            }
            match self.rx.recv_timeout(STOP_POLL) {
                Ok(Ok(block)) if block.is_empty() => return Ok(0),
                Ok(Ok(block)) => {
                    self.block = block;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let rest = self.block.get(self.at..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        self.at += n;
        Ok(n)
    }
}

/// The input when no thread could be started for it.
struct NoThread;

impl Read for NoThread {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("cannot start a thread to read the pipe"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_reads_every_byte_in_order() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = interruptible(io::Cursor::new(data.clone()));
        let mut got = Vec::new();
        let mut buf = [0u8; 7777];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
    }
}
