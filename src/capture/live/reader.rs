//! The capture thread of a live capture: it only reads packets and hands them on, in batches.
//!
//! What it is: a thread that owns the [`LiveCapture`], copies each packet the kernel hands over
//! into a batch (one buffer of packet bytes and a list of headers), and sends full batches, or
//! whatever it has when the kernel has nothing more, through a bounded queue to the analysis
//! thread ([`Reader::next`]). When nothing is waiting it sleeps in `poll(2)` on libpcap's
//! descriptor, so it wakes the moment the kernel hands over a block of packets (a sleep of fixed
//! length lets a small capture buffer fill and drop). It also reads the drop counters, writes the
//! `--write` file, honours `--count` and, on a stop request, reads what the kernel still holds.
//!
//! What it is not: it parses nothing; all the analysis stays on the thread that calls
//! [`Reader::next`].
//!
//! Guarantees: the read never waits for the analysis while the queue has room; when the queue is
//! full (the analysis is behind by [`QUEUE_BATCHES`] batches) the thread waits and the kernel
//! buffer takes the overflow, where losses are counted. Memory is bounded: at most
//! [`QUEUE_BATCHES`] + 3 batches of about [`BATCH_BYTES`] each exist, recycled, never freed and
//! reallocated per batch. The stop is bounded: at most [`DRAIN_AT_STOP`] packets after it.

use super::{Drops, LiveCapture, LiveError};
use crate::capture::{LinkType, Packet, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Packets in a batch at most.
pub const BATCH_PACKETS: usize = 1024;

/// Packet bytes in a batch: a batch goes out before a packet that would not fit (one packet
/// alone may be larger, up to the snap length).
pub const BATCH_BYTES: usize = 1 << 20;

/// Batches waiting for the analysis at most (about 8 MiB of packets at most).
pub const QUEUE_BATCHES: usize = 8;

/// Longest sleep on an idle descriptor before the stop flag is looked at again.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// How often the drop counters are read while packets come (and at every idle wake-up).
const STATS_EVERY: Duration = Duration::from_millis(50);

/// How often the `--write` file is flushed.
const SAVE_FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Packets still read after a stop request (what the kernel buffered before it).
pub const DRAIN_AT_STOP: u64 = 1 << 16;

/// How much nicer (setpriority(2)) the analysis thread is than the capture thread. When both
/// want the same core, the scheduler gives the capture thread about three times the share, and
/// a capture thread woken by the kernel preempts the analysis sooner: the kernel buffer is
/// emptied first, the analysis catches up from the queue. It only lowers tlsdiag's own
/// priority (no privilege needed; nothing else on the machine gets less).
pub const ANALYSIS_NICENESS: i32 = 5;

/// Where a packet's bytes end in the batch buffer, and its header.
#[derive(Clone, Copy, Debug)]
struct Rec {
    ts: Timestamp,
    orig_len: u32,
    end: usize,
}

/// Packets read in a row, with the capture's drop counters as they were then.
#[derive(Debug)]
pub struct Batch {
    data: Vec<u8>,
    recs: Vec<Rec>,
    /// Sent because it was full: more packets were waiting in the kernel.
    pub full: bool,
    /// The drop totals since the start, first seen at `drops_at` (wall clock): the losses
    /// happened before then.
    pub drops: Drops,
    pub drops_at: Timestamp,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES),
            recs: Vec::with_capacity(BATCH_PACKETS),
            full: false,
            drops: Drops::default(),
            drops_at: Timestamp(0),
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.recs.clear();
        self.full = false;
    }

    fn fits(&self, len: usize) -> bool {
        self.recs.is_empty() || self.data.len().saturating_add(len) <= BATCH_BYTES
    }

    fn push(&mut self, p: &Packet<'_>) {
        self.data.extend_from_slice(p.data);
        self.recs.push(Rec {
            ts: p.ts,
            orig_len: p.orig_len,
            end: self.data.len(),
        });
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// The time of the last packet.
    pub fn last_ts(&self) -> Option<Timestamp> {
        self.recs.last().map(|r| r.ts)
    }

    /// The packets, in the order they were read.
    pub fn packets(&self, link: LinkType) -> impl Iterator<Item = Packet<'_>> {
        let mut start = 0;
        self.recs.iter().map(move |r| {
            let data = self.data.get(start..r.end).unwrap_or_default();
            start = r.end;
            Packet {
                ts: r.ts,
                link,
                data,
                orig_len: r.orig_len,
            }
        })
    }
}

/// How the capture thread ended.
#[derive(Debug, Default)]
pub struct Ended {
    /// Packets read (and handed on) in all.
    pub packets: u64,
    /// The drop totals read after the last packet.
    pub drops: Drops,
    /// libpcap could not count drops here (the first error).
    pub stats_error: Option<String>,
    /// Reading failed (the interface went away, say).
    pub error: Option<LiveError>,
    /// The last flush of the `--write` file failed.
    pub save_error: Option<String>,
    /// `--count` packets were read.
    pub limit_reached: bool,
}

/// What [`Reader::next`] found.
#[derive(Debug)]
pub enum Next {
    Batch(Batch),
    /// Nothing within the wait.
    Idle,
    /// The capture thread is done (stopped, `--count` reached or an error): see [`Reader::finish`].
    Ended,
}

/// The analysis thread's end of a running capture thread.
pub struct Reader {
    rx: Receiver<Batch>,
    recycle: Sender<Batch>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Ended>>,
    link: LinkType,
}

impl Reader {
    /// Starts the capture thread; it stops by itself after `limit` packets when given. The
    /// calling thread, which analyzes, becomes [`ANALYSIS_NICENESS`] nicer (best effort).
    pub fn start(cap: LiveCapture, limit: Option<u64>) -> std::io::Result<Reader> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let (recycle, pool) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let link = cap.link();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture(cap, &tx, &pool, &flag, limit))?;
        yield_to_capture();
        Ok(Reader {
            rx,
            recycle,
            stop,
            thread: Some(thread),
            link,
        })
    }

    /// The link type of the packets.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The next batch, waiting at most `wait` for it.
    pub fn next(&self, wait: Duration) -> Next {
        match self.rx.recv_timeout(wait) {
            Ok(b) => Next::Batch(b),
            Err(RecvTimeoutError::Timeout) => Next::Idle,
            Err(RecvTimeoutError::Disconnected) => Next::Ended,
        }
    }

    /// Gives a batch's buffers back to the capture thread.
    pub fn recycle(&self, mut b: Batch) {
        b.clear();
        // The capture thread may be gone already: then the batch is simply freed.
        let _ = self.recycle.send(b);
    }

    /// Asks the capture thread to read what the kernel still holds (at most [`DRAIN_AT_STOP`]
    /// packets) and end; the batches keep coming through [`Reader::next`] until it says
    /// [`Next::Ended`].
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// How the capture thread ended, once [`Reader::next`] said [`Next::Ended`]; waits at most
    /// `limit` for it to finish and gives `None` if it did not.
    pub fn finish(mut self, limit: Duration) -> Option<Ended> {
        self.stop();
        let thread = self.thread.take()?;
        let deadline = Instant::now() + limit;
        while !thread.is_finished() {
            // A thread waiting on a full queue: empty it (what is left is not analyzed).
            while let Ok(b) = self.rx.try_recv() {
                drop(b);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().ok()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes the calling thread [`ANALYSIS_NICENESS`] nicer than it is (on Linux a thread's nice
/// value is its own; raising it needs no privilege). A refusal changes nothing but the share.
fn yield_to_capture() {
    use rustix::process::{getpriority_process, setpriority_process};
    let me = Some(rustix::thread::gettid());
    if let Ok(now) = getpriority_process(me) {
        let _ = setpriority_process(me, now.saturating_add(ANALYSIS_NICENESS).min(19));
    }
}

/// The drop counters as last read.
struct Counters {
    drops: Drops,
    /// When the current totals were first seen.
    at: Timestamp,
    /// New losses not yet handed on.
    news: bool,
    read_at: Instant,
    error: Option<String>,
}

impl Counters {
    fn refresh(&mut self, cap: &mut LiveCapture) {
        self.read_at = Instant::now();
        match cap.drops() {
            // A change is stamped with the time it was first seen: the losses happened before.
            Ok(d) if d.total() != self.drops.total() => {
                self.drops = d;
                self.at = Timestamp::now();
                self.news = true;
            }
            Ok(d) => {
                self.drops = d;
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
    }

    fn refresh_if_due(&mut self, cap: &mut LiveCapture) {
        if self.read_at.elapsed() >= STATS_EVERY {
            self.refresh(cap);
        }
    }
}

/// The capture thread's loop.
fn capture(
    mut cap: LiveCapture,
    tx: &SyncSender<Batch>,
    pool: &Receiver<Batch>,
    stop: &AtomicBool,
    limit: Option<u64>,
) -> Ended {
    let mut end = Ended::default();
    let mut counters = Counters {
        drops: Drops::default(),
        at: Timestamp::now(),
        news: false,
        read_at: Instant::now(),
        error: None,
    };
    let mut batch = Batch::new();
    let mut last_save_flush = Instant::now();
    let mut save_warned = false;
    let mut drain_until: Option<u64> = None;
    // Hands the batch on (with the counters) and takes an empty one; false once the analysis
    // thread is gone.
    let send = |batch: &mut Batch, full: bool, counters: &mut Counters| -> bool {
        counters.news = false;
        let fresh = pool.try_recv().unwrap_or_else(|_| Batch::new());
        let mut out = std::mem::replace(batch, fresh);
        out.full = full;
        out.drops = counters.drops;
        out.drops_at = counters.at;
        tx.send(out).is_ok()
    };
    let mut receiver_gone = false;
    loop {
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(end.packets.saturating_add(DRAIN_AT_STOP));
        }
        if limit.is_some_and(|n| end.packets >= n) {
            end.limit_reached = true;
            break;
        }
        if drain_until.is_some_and(|n| end.packets >= n) {
            break;
        }
        match cap.next_packet() {
            Ok(Some(p)) => {
                if !batch.fits(p.data.len()) && !send(&mut batch, true, &mut counters) {
                    receiver_gone = true;
                    break;
                }
                // `p` borrows the capture: it is copied before the capture is used again.
                batch.push(&p);
                end.packets += 1;
                if batch.len() >= BATCH_PACKETS {
                    counters.refresh_if_due(&mut cap);
                    if !send(&mut batch, true, &mut counters) {
                        receiver_gone = true;
                        break;
                    }
                }
            }
            Ok(None) => {
                if drain_until.is_some() {
                    break;
                }
                counters.refresh_if_due(&mut cap);
                // New losses go out at once, with no packet if need be, so that the sessions
                // decided meanwhile know of them.
                if (!batch.is_empty() || counters.news) && !send(&mut batch, false, &mut counters) {
                    receiver_gone = true;
                    break;
                }
                if last_save_flush.elapsed() >= SAVE_FLUSH_EVERY {
                    last_save_flush = Instant::now();
                    if let Err(e) = cap.flush_savefile() {
                        if !save_warned {
                            save_warned = true;
                            eprintln!("tlsdiag: warning: cannot write the capture file: {e}");
                        }
                    }
                }
                cap.wait(IDLE_WAIT);
            }
            Err(e) => {
                end.error = Some(e);
                break;
            }
        }
    }
    counters.refresh(&mut cap);
    if !receiver_gone && (!batch.is_empty() || counters.news) {
        send(&mut batch, false, &mut counters);
    }
    end.drops = counters.drops;
    end.stats_error = counters.error;
    end.save_error = cap.flush_savefile().err();
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_packets_apart_and_in_order() {
        let mut b = Batch::new();
        let frames: [&[u8]; 3] = [b"first", b"", b"third frame"];
        for (i, f) in frames.iter().enumerate() {
            let p = Packet {
                ts: Timestamp(i as i64),
                link: LinkType::ETHERNET,
                data: f,
                orig_len: 1500,
            };
            assert!(b.fits(f.len()));
            b.push(&p);
        }
        let got: Vec<(i64, Vec<u8>, u32)> = b
            .packets(LinkType::ETHERNET)
            .map(|p| (p.ts.0, p.data.to_vec(), p.orig_len))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, b"first".to_vec(), 1500),
                (1, Vec::new(), 1500),
                (2, b"third frame".to_vec(), 1500)
            ]
        );
        assert_eq!(b.last_ts(), Some(Timestamp(2)));
        b.clear();
        assert!(b.is_empty() && b.packets(LinkType::ETHERNET).next().is_none());
    }

    #[test]
    fn a_batch_fills_by_bytes_but_always_takes_one_packet() {
        let mut b = Batch::new();
        assert!(b.fits(BATCH_BYTES * 4), "an empty batch takes any packet");
        let big = vec![0u8; BATCH_BYTES - 10];
        b.push(&Packet {
            ts: Timestamp(0),
            link: LinkType::ETHERNET,
            data: &big,
            orig_len: 0,
        });
        assert!(b.fits(10));
        assert!(!b.fits(11));
    }
}
