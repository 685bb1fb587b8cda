//! Live capture: packets from a network interface through libpcap (cargo feature `live`).
//!
//! What it is: opening a device (snap length, kernel buffer size, promiscuous mode, immediate
//! mode, a BPF filter), handing out its packets without ever blocking, sleeping in `poll(2)`
//! until the kernel has packets, saving every packet to a pcap file when asked, and the kernel's
//! and the interface's drop counters; plus the list of devices. The capture thread that drives
//! it during `tlsdiag live` is [`Reader`] (in `reader`).
//!
//! What it is not: it decides nothing and knows no clock but the packets' own timestamps; the run
//! loop (`tlsdiag live`, in the cli) drives the analyzer, the clock ticks and the stop signals.
//!
//! Guarantees: [`LiveCapture::next_packet`] returns at once, with a packet or with `None` when
//! nothing is waiting. The handle is non-blocking on purpose: on Linux a read timeout does not
//! fire on an idle interface (TPACKET_V3 starts the timer at the first packet, libpcap issue
//! #1001), so a blocking read could never notice a stop request; [`LiveCapture::wait`] sleeps
//! until packets come or a timeout passes, whichever is first. Every
//! failure to start is a [`LiveError`] that reads as one line and names its kind (no permission,
//! no such interface, interface down, bad filter).

pub mod filter;
mod reader;

pub use filter::{Selection, default_filter, port_filter};
pub use reader::{BATCH_BYTES, BATCH_PACKETS, Batch, DRAIN_AT_STOP, Ended, Next, QUEUE_BATCHES, Reader};

use super::{LinkType, Packet, Timestamp};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default snap length: libpcap's maximum, so certificate chains in jumbo or GRO-merged
/// frames are never cut.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// libpcap read timeout (ms): on Linux, how long the kernel holds a partly filled block of
/// the capture ring before handing it over, so the most a packet waits before tlsdiag reads it.
///
/// Not immediate mode unless asked (`--immediate`): libpcap then falls back from TPACKET_V3 (blocks of packets
/// packed end to end) to TPACKET_V2, whose ring slots are each sized for the snap length when
/// the interface offloads segmentation; with a 256 KiB snap length a 16 MiB ring then holds
/// 64 packets and drops thousands in a two-second stall (measured on a veth pair).
const READ_TIMEOUT_MS: i32 = 100;

/// How to open the capture.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    /// The capture filter.
    pub filter: CaptureFilter,
    pub snaplen: u32,
    pub promisc: bool,
    /// Kernel capture buffer, KiB.
    pub buffer_kib: u32,
    /// libpcap immediate mode (see [`READ_TIMEOUT_MS`]).
    pub immediate: bool,
}

/// The capture filter to apply.
#[derive(Clone, Debug)]
pub enum CaptureFilter {
    /// `--filter`: a BPF expression applied as given.
    User(String),
    /// The default, built from what the analysis follows: the first of
    /// [`filter::candidates`] that compiles on the interface's link type.
    Default(Selection),
}

impl CaptureFilter {
    /// The expressions to try, in order.
    fn candidates(&self) -> Vec<String> {
        match self {
            CaptureFilter::User(f) => vec![f.clone()],
            CaptureFilter::Default(sel) => filter::candidates(sel).to_vec(),
        }
    }
}

/// Packets lost before they reached tlsdiag, as libpcap counts them (totals since the start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Packets the kernel handed to the capture (platform-specific: on Linux `lo` counts
    /// each packet twice, so only the drop counters are used to judge loss).
    pub received: u64,
    /// Dropped because the capture buffer was full (tlsdiag fell behind).
    pub kernel: u64,
    /// Dropped by the network interface or its driver (every packet it dropped, including
    /// ones the filter would not have kept).
    pub interface: u64,
}

impl Drops {
    /// Every lost packet.
    pub fn total(&self) -> u64 {
        self.kernel.saturating_add(self.interface)
    }
}

/// What went wrong when starting a live capture.
#[derive(Debug)]
pub enum LiveErrorKind {
    /// The interface does not exist; the names that do.
    NoSuchInterface { available: Vec<String> },
    /// The interface exists but is administratively down.
    InterfaceDown,
    /// Capturing needs root or the capabilities `cap_net_raw,cap_net_admin`.
    Permission { detail: String },
    /// The BPF filter does not compile.
    Filter { filter: String, detail: String },
    /// The `--write` file cannot be created.
    Savefile { path: PathBuf, detail: String },
    /// Listing the devices failed.
    List { detail: String },
    /// Anything else libpcap reported (reading after the start, for instance).
    Pcap { detail: String },
}

/// A live-capture error naming the interface.
#[derive(Debug)]
pub struct LiveError {
    pub interface: String,
    pub kind: LiveErrorKind,
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.interface;
        match &self.kind {
            LiveErrorKind::NoSuchInterface { available } if available.is_empty() => {
                write!(f, "{i}: no such interface")
            }
            LiveErrorKind::NoSuchInterface { available } => {
                write!(f, "{i}: no such interface (available: {})", available.join(", "))
            }
            LiveErrorKind::InterfaceDown => {
                write!(f, "{i}: interface is down (bring it up with `ip link set {i} up`)")
            }
            LiveErrorKind::Permission { detail } => write!(
                f,
                "{i}: permission denied ({detail}); run as root or grant the capabilities: sudo setcap cap_net_raw,cap_net_admin+eip {}",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "tlsdiag".into())
            ),
            LiveErrorKind::Filter { filter, detail } => {
                write!(f, "{i}: capture filter \"{filter}\" does not compile: {detail}")
            }
            LiveErrorKind::Savefile { path, detail } => {
                write!(f, "cannot create {}: {detail}", path.display())
            }
            LiveErrorKind::List { detail } => write!(f, "cannot list interfaces: {detail}"),
            LiveErrorKind::Pcap { detail } => write!(f, "{i}: {detail}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// The message of a libpcap error without the crate's "libpcap error: " prefix.
fn detail(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One capture device as `tlsdiag interfaces` lists it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub name: String,
    pub description: Option<String>,
    pub up: bool,
    pub running: bool,
    pub loopback: bool,
    pub addresses: Vec<String>,
}

/// Every device libpcap can capture on.
pub fn interfaces() -> Result<Vec<DeviceInfo>, LiveError> {
    let list = pcap::Device::list().map_err(|e| LiveError {
        interface: String::new(),
        kind: LiveErrorKind::List { detail: detail(&e) },
    })?;
    Ok(list
        .into_iter()
        .map(|d| DeviceInfo {
            up: d.flags.is_up(),
            running: d.flags.is_running(),
            loopback: d.flags.is_loopback(),
            addresses: d.addresses.iter().map(|a| a.addr.to_string()).collect(),
            description: d.desc,
            name: d.name,
        })
        .collect())
}

/// libpcap's default device (the first one that is up and not a loopback), if any.
pub fn default_interface() -> Option<String> {
    pcap::Device::lookup().ok().flatten().map(|d| d.name)
}

/// An open live capture.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    interface: String,
    /// The filter applied.
    filter: String,
    savefile: Option<pcap::Savefile>,
    /// Last raw libpcap counters (32-bit, they wrap on long runs) and the 64-bit totals.
    last_raw: Option<pcap::Stat>,
    drops: Drops,
}

impl LiveCapture {
    /// Opens the interface, applies the filter and switches to non-blocking reads.
    pub fn open(cfg: &LiveConfig) -> Result<LiveCapture, LiveError> {
        let err = |kind| LiveError {
            interface: cfg.interface.clone(),
            kind,
        };
        // Check the name and the state first: libpcap's own messages for these are vague.
        if let Ok(devices) = pcap::Device::list() {
            match devices.iter().find(|d| d.name == cfg.interface) {
                None => {
                    return Err(err(LiveErrorKind::NoSuchInterface {
                        available: devices.into_iter().map(|d| d.name).collect(),
                    }));
                }
                Some(d) if !d.flags.is_up() && d.name != "any" => {
                    return Err(err(LiveErrorKind::InterfaceDown));
                }
                Some(_) => {}
            }
        }
        let snaplen = i32::try_from(cfg.snaplen).unwrap_or(i32::MAX);
        let cap = pcap::Capture::from_device(cfg.interface.as_str())
            .map_err(|e| err(classify_open_error(&e)))?
            .promisc(cfg.promisc)
            .snaplen(snaplen)
            .timeout(READ_TIMEOUT_MS)
            .immediate_mode(cfg.immediate)
            .buffer_size(i32::try_from(u64::from(cfg.buffer_kib) * 1024).unwrap_or(i32::MAX))
            .open()
            .map_err(|e| err(classify_open_error(&e)))?;
        let mut cap = cap.setnonblock().map_err(|e| err(classify_open_error(&e)))?;
        // The first candidate that compiles on this link type; if none does, the first's error.
        let mut first_error = None;
        let mut applied = None;
        for f in cfg.filter.candidates() {
            match cap.filter(&f, true) {
                Ok(()) => {
                    applied = Some(f);
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert((f, detail(&e)));
                }
            }
        }
        let Some(filter) = applied else {
            let (filter, detail) = first_error.unwrap_or_default();
            return Err(err(LiveErrorKind::Filter { filter, detail }));
        };
        let link = LinkType(cap.get_datalink().0 as u32);
        Ok(LiveCapture {
            cap,
            link,
            interface: cfg.interface.clone(),
            filter,
            savefile: None,
            last_raw: None,
            drops: Drops::default(),
        })
    }

    /// The link type of the interface (Ethernet, Linux cooked on `any`, …).
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The capture filter applied (the default's candidate that compiled, or the user's).
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// From now on, saves every captured packet to `path` (classic pcap, this link type).
    pub fn save_to(&mut self, path: &Path) -> Result<(), LiveError> {
        let sf = self.cap.savefile(path).map_err(|e| LiveError {
            interface: self.interface.clone(),
            kind: LiveErrorKind::Savefile {
                path: path.to_path_buf(),
                detail: detail(&e),
            },
        })?;
        self.savefile = Some(sf);
        Ok(())
    }

    /// The next waiting packet (already saved when `--write` is on), or `None` at once if
    /// nothing is waiting. An error means the capture cannot go on (the interface went away).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        match self.cap.next_packet() {
            Ok(p) => {
                if let Some(sf) = &mut self.savefile {
                    sf.write(&p);
                }
                Ok(Some(Packet {
                    ts: timestamp(p.header),
                    link: self.link,
                    data: p.data,
                    orig_len: p.header.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(e) => Err(LiveError {
                interface: self.interface.clone(),
                kind: LiveErrorKind::Pcap { detail: detail(&e) },
            }),
        }
    }

    /// Sleeps until the kernel hands over packets, or at most `timeout` (a non-blocking handle
    /// has nothing else to wait on: see the module's notes on read timeouts).
    pub fn wait(&self, timeout: Duration) {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut fds = [PollFd::new(&self.cap, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        match poll(&mut fds, Some(&ts)) {
            Ok(_) => {}
            Err(e) if e == rustix::io::Errno::INTR => {}
            // A descriptor poll(2) refuses: no worse than a short sleep.
            Err(_) => std::thread::sleep(timeout.min(Duration::from_millis(5))),
        }
    }

    /// Writes the saved packets out to the file so far.
    pub fn flush_savefile(&mut self) -> Result<(), String> {
        match &mut self.savefile {
            Some(sf) => sf.flush().map_err(|e| detail(&e)),
            None => Ok(()),
        }
    }

    /// Reads libpcap's counters and returns the totals since the start (64-bit, wrap-safe).
    pub fn drops(&mut self) -> Result<Drops, String> {
        let now = self.cap.stats().map_err(|e| detail(&e))?;
        let prev = self.last_raw.unwrap_or(pcap::Stat {
            received: 0,
            dropped: 0,
            if_dropped: 0,
        });
        self.drops.received += u64::from(now.received.wrapping_sub(prev.received));
        self.drops.kernel += u64::from(now.dropped.wrapping_sub(prev.dropped));
        self.drops.interface += u64::from(now.if_dropped.wrapping_sub(prev.if_dropped));
        self.last_raw = Some(now);
        Ok(self.drops)
    }
}

/// Sorts libpcap's open errors into the kinds a user can act on.
fn classify_open_error(e: &pcap::Error) -> LiveErrorKind {
    let d = detail(e);
    let lower = d.to_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        LiveErrorKind::Permission { detail: d }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        LiveErrorKind::NoSuchInterface { available: Vec::new() }
    } else if lower.contains("not up") || lower.contains("is down") {
        LiveErrorKind::InterfaceDown
    } else {
        LiveErrorKind::Pcap { detail: d }
    }
}

/// A libpcap header time (microseconds) as packet time.
#[allow(
    clippy::unnecessary_cast,
    reason = "time_t and suseconds_t are i32 on 32-bit targets"
)]
fn timestamp(h: &pcap::PacketHeader) -> Timestamp {
    Timestamp::from_parts(h.ts.tv_sec as i64, (h.ts.tv_usec as i64).saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_are_sorted() {
        let e = pcap::Error::PcapError("socket: Operation not permitted".into());
        assert!(matches!(classify_open_error(&e), LiveErrorKind::Permission { .. }));
        let e = pcap::Error::PcapError("nosuch0: No such device exists (SIOCGIFHWADDR: No such device)".into());
        assert!(matches!(classify_open_error(&e), LiveErrorKind::NoSuchInterface { .. }));
        let e = pcap::Error::PcapError("eth9: That device is not up".into());
        assert!(matches!(classify_open_error(&e), LiveErrorKind::InterfaceDown));
    }
}
