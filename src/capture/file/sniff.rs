//! Naming what a file that is not a capture looks like, for the one-line error.

use super::{PCAP_MAGICS, PCAPNG_SHB};

/// Compressed files and captures in formats other than pcap / pcapng, by their magic bytes.
fn other_format(head: &[u8]) -> Option<&'static str> {
    const KNOWN: [(&[u8], &str); 8] = [
        (b"\xfd7zXZ\x00", "xz-compressed data (decompress it first: unxz)"),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data (decompress it first: unzstd)",
        ),
        (b"BZh", "bzip2-compressed data (decompress it first: bunzip2)"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (
            b"snoop\x00\x00\x00",
            "a Solaris snoop capture (convert it: editcap -F pcap)",
        ),
        (b"GMBU", "a Network Monitor capture (convert it: editcap -F pcap)"),
        (b"XCP\x00", "a NetXray / Sniffer capture (convert it: editcap -F pcap)"),
        (b"\x7fELF", "an executable"),
    ];
    if head.get(257..262) == Some(b"ustar") {
        return Some("a tar archive");
    }
    KNOWN
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, kind)| *kind)
}

fn hex<'a>(bytes: impl Iterator<Item = &'a u8>) -> String {
    bytes.map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// A file that starts a few bits away from a capture's magic number: a capture whose first bytes
/// were damaged (a flipped bit, a bad copy), not some other kind of file.
fn damaged_magic(head: &[u8]) -> Option<String> {
    let got = head.first_chunk::<4>()?;
    let distance = |m: &[u8; 4]| m.iter().zip(got).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>();
    let magics = PCAP_MAGICS
        .iter()
        .map(|m| (&m.0, "pcap"))
        .chain([(&PCAPNG_SHB, "pcapng")]);
    let (magic, kind) = magics.min_by_key(|(m, _)| distance(m))?;
    (1..=3).contains(&distance(magic)).then(|| {
        format!(
            "a {kind} capture with a damaged magic number: it starts {}, a {kind} file starts {}",
            hex(got.iter()),
            hex(magic.iter())
        )
    })
}

/// Says what a non-capture file looks like, for the error message.
pub(super) fn describe(head: &[u8], gzip: bool) -> String {
    let lower: Vec<u8> = head.iter().take(64).map(|b| b.to_ascii_lowercase()).collect();
    let starts = |p: &[u8]| lower.starts_with(p);
    let kind = if starts(b"<!doctype html") || starts(b"<html") || lower.windows(5).any(|w| w == b"<html") {
        "HTML".to_string()
    } else if starts(b"pk\x03\x04") {
        "a zip archive".to_string()
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "gzip data".to_string()
    } else if let Some(kind) = other_format(head) {
        kind.to_string()
    } else if starts(b"{") || starts(b"[") {
        "JSON or text".to_string()
    } else if head
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "text".to_string()
    } else if let Some(kind) = damaged_magic(head) {
        kind
    } else {
        format!("unknown data starting {}", hex(head.iter().take(8)))
    };
    if gzip { format!("gzip of {kind}") } else { kind }
}
