//! Counter keys for skipped ether types and IP protocols (`skipped_ethertype_0x88e5`,
//! `skipped_ip_protocol_50`).
//!
//! Counters are keyed by `&'static str`; a key per value seen is made once and kept for the
//! life of the process. At most [`MAX_NAMES`] distinct keys are made (a capture of random ether
//! types cannot grow memory); the rest share `skipped_ethertype_other` /
//! `skipped_ip_protocol_other`.

use std::sync::{Mutex, PoisonError};

/// Distinct keys made at most.
const MAX_NAMES: usize = 256;

static NAMES: Mutex<Vec<(u32, &'static str)>> = Mutex::new(Vec::new());

fn intern(id: u32, make: impl FnOnce() -> String, other: &'static str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, name)) = names.iter().find(|(i, _)| *i == id) {
        return name;
    }
    if names.len() >= MAX_NAMES {
        return other;
    }
    let name: &'static str = Box::leak(make().into_boxed_str());
    names.push((id, name));
    name
}

/// The key for frames skipped for their ether type.
pub(super) fn ether_type(t: u16) -> &'static str {
    intern(
        0x1_0000 | u32::from(t),
        || format!("skipped_ethertype_{t:#06x}"),
        "skipped_ethertype_other",
    )
}

/// The key for frames skipped for their IP protocol.
pub(super) fn ip_protocol(p: u8) -> &'static str {
    intern(
        0x2_0000 | u32::from(p),
        || format!("skipped_ip_protocol_{p}"),
        "skipped_ip_protocol_other",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_stable_and_readable() {
        assert_eq!(super::ether_type(0x88e5), "skipped_ethertype_0x88e5");
        assert_eq!(super::ether_type(0x88e5).as_ptr(), super::ether_type(0x88e5).as_ptr());
        assert_eq!(super::ip_protocol(50), "skipped_ip_protocol_50");
    }
}
