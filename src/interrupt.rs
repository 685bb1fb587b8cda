//! A request to stop reading the capture (the first SIGINT or SIGTERM of `analyze`).
//!
//! The signal handler (in [`crate::cli`]) records the signal here; the capture then ends as if
//! the input ended: [`crate::capture::Capture`] hands out no further packet, and a blocking
//! input (standard input, a FIFO) stops waiting for bytes. Everything after the stop — the
//! sessions still open decided as at the end of the capture, the report, the outputs — runs as
//! for a capture that ended there. The state is process-wide because a signal is.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked to stop (0: none yet).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Asks every capture of the process to stop reading; the first request's signal is kept.
pub fn request(signal: i32) {
    let _ = SIGNAL.compare_exchange(0, signal.max(1), Ordering::SeqCst, Ordering::SeqCst);
}

/// Whether a stop was requested (one relaxed load: cheap enough for every packet).
#[inline]
pub fn requested() -> bool {
    SIGNAL.load(Ordering::Relaxed) != 0
}

/// The signal that asked to stop, if one did.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
