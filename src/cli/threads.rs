//! The default number of analysis threads: the cores this process may use, less those that
//! other processes keep busy when the run starts.
//!
//! Why: connections are split between the threads by their 4-tuple, so a run goes at the pace of
//! its slowest thread. With one of two cores taken by another process, two threads share the one
//! free core and a half, and the run is slower than one thread alone (measured 1.31× on the
//! benchmark capture). `-j N` is always taken as given.
//!
//! How: the number of runnable tasks in `/proc/loadavg` (an instant count, not an average),
//! read a few times a millisecond apart; the smallest reading, less this process, is the number
//! of cores others use. Only when this process may use every core of the host: in a container or
//! under a CPU mask, the host's counts say nothing about our cores, and all of them are used.

use std::time::Duration;

/// Readings of the runnable count.
const SAMPLES: usize = 3;
/// Pause between readings.
const PAUSE: Duration = Duration::from_millis(1);

/// The default thread count: the usable cores less the busy ones, at least one. A one-thread
/// analysis with a core to spare also copies its input ahead on that core
/// (`Capture::read_ahead`).
pub fn free_cores() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 || host_cpus() != Some(cores) {
        return cores;
    }
    let busy = (0..SAMPLES)
        .filter_map(|i| {
            if i > 0 {
                std::thread::sleep(PAUSE);
            }
            runnable()
        })
        .min()
        .map_or(0, |r| r.saturating_sub(1));
    threads_for(cores, busy)
}

/// Threads for `cores` usable cores of which `busy` run other work.
fn threads_for(cores: usize, busy: usize) -> usize {
    cores.saturating_sub(busy).max(1)
}

/// CPUs of the host (`cpuN` lines of `/proc/stat`).
fn host_cpus() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let n = stat
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .and_then(|r| r.chars().next())
                .is_some_and(|c| c.is_ascii_digit())
        })
        .count();
    (n > 0).then_some(n)
}

/// Tasks runnable right now, this one included (`/proc/loadavg`'s fourth field, "3/245").
fn runnable() -> Option<usize> {
    parse_runnable(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn parse_runnable(loadavg: &str) -> Option<usize> {
    loadavg.split_whitespace().nth(3)?.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_runnable_count() {
        assert_eq!(parse_runnable("1.83 1.50 2.00 3/245 12345\n"), Some(3));
        assert_eq!(parse_runnable("1.83 1.50 2.00"), None);
        assert_eq!(parse_runnable("1 1 1 x/2 3"), None);
    }

    #[test]
    fn busy_cores_are_left_to_their_work() {
        assert_eq!(threads_for(2, 0), 2);
        assert_eq!(threads_for(2, 1), 1);
        assert_eq!(threads_for(2, 5), 1);
        assert_eq!(threads_for(8, 3), 5);
    }

    #[test]
    fn on_this_machine_at_least_one_and_at_most_the_cores() {
        let n = free_cores();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!((1..=cores).contains(&n), "{n} threads for {cores} cores");
    }
}
