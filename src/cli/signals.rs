//! SIGINT and SIGTERM during `analyze`.
//!
//! The first signal asks the capture to stop (see [`crate::interrupt`]): reading ends, every
//! session still open is decided as at the end of the capture, the full report of what was
//! read is printed and every output is written and renamed into place; the exit status is the
//! usual one (0 or 1), and the report names the signal (a signal before the capture's first
//! bytes exits with [`EXIT_SECOND_SIGNAL`], nothing having been read). A second signal, [`SECOND_AFTER`] or
//! more after the first, exits at once with status [`EXIT_SECOND_SIGNAL`], removing the
//! temporary files of outputs not yet complete (an older file at an output path stays as it
//! was). Copies of one signal that arrive together (`timeout` signals the child and then its
//! process group) count once.

use super::outputs;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::time::{Duration, Instant};

/// Exit status when a second signal ends the run, or the first one comes before any capture
/// was read (128 + SIGINT, as a shell reports Ctrl-C).
pub(super) const EXIT_SECOND_SIGNAL: u8 = 130;

/// A signal this long after the first one exits at once.
const SECOND_AFTER: Duration = Duration::from_millis(250);

/// The usual name of a signal number.
pub(super) fn name(sig: i32) -> String {
    match sig {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// Catches SIGINT and SIGTERM on a thread of their own; `Err` says why they cannot be.
pub(super) fn install() -> Result<(), String> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("tlsdiag-signals".into())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            for sig in signals.forever() {
                match first {
                    None => {
                        first = Some(Instant::now());
                        crate::interrupt::request(sig);
                        eprintln!(
                            "tlsdiag: {}: stopping; deciding the open sessions and writing the report of what was read (a second signal exits at once)",
                            name(sig)
                        );
                    }
                    Some(t) if t.elapsed() >= SECOND_AFTER => {
                        outputs::discard_pending();
                        eprintln!("tlsdiag: {}: exiting at once, without the report", name(sig));
                        std::process::exit(i32::from(EXIT_SECOND_SIGNAL));
                    }
                    Some(_) => {}
                }
            }
        })
        .map(drop)
        .map_err(|e| e.to_string())
}
