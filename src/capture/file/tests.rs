//! Unit tests of the capture reader on hand-made bytes.

use super::*;

fn reader(bytes: Vec<u8>) -> Result<FileReader, CaptureError> {
    FileReader::from_reader(PathBuf::from("t"), Box::new(io::Cursor::new(bytes)))
}

fn pcap_header(big: bool, magic: u32, link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let put32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    put32(&mut v, magic);
    v.extend_from_slice(&if big { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
    put32(&mut v, 0);
    put32(&mut v, 0);
    put32(&mut v, 65535);
    put32(&mut v, link);
    v
}

fn record(big: bool, secs: u32, frac: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [secs, frac, data.len() as u32, data.len() as u32] {
        v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    }
    v.extend_from_slice(data);
    v
}

#[test]
fn resumes_after_a_damaged_record_header_and_skips_zeros() {
    for big in [false, true] {
        let mut f = pcap_header(big, 0xa1b2c3d4, 1);
        f.extend(record(big, 1_700_000_000, 1, b"first packet"));
        // A damaged time just before: the search must not look for records near it.
        f.extend(record(big, 1_700_000_000 ^ (1 << 28), 1, b"odd time"));
        let damaged = f.len();
        let mut bad = record(big, 1_700_000_000, 2, b"lost");
        bad[8..12].copy_from_slice(&[0xff; 4]);
        f.extend(bad);
        f.extend(vec![0u8; 5000]); // a zeroed stretch: not 300 empty records
        let resumed = f.len();
        for n in 0..4u32 {
            f.extend(record(big, 1_700_000_001, n, format!("after {n}").as_bytes()));
        }
        let mut r = reader(f).expect("reader");
        let mut got = Vec::new();
        while let Some(p) = r.next_packet() {
            got.push(String::from_utf8_lossy(p.data).to_string());
        }
        assert_eq!(
            got,
            ["first packet", "odd time", "after 0", "after 1", "after 2", "after 3"]
        );
        assert!(r.stop.is_none(), "{:?}", r.stop);
        assert!(r.oddities.contains(&("capture_resynced", 1)), "{:?}", r.oddities);
        assert!(
            r.oddities
                .contains(&("capture_bytes_skipped", (resumed - damaged) as u64))
        );
        assert_eq!(
            r.damage,
            [format!(
                "record at byte {damaged} claims 4294967295 bytes: skipped {} bytes to the next valid record, at byte {resumed}",
                resumed - damaged
            )]
        );
    }
}

#[test]
fn a_damaged_record_header_with_nothing_valid_after_it_stops_the_file() {
    let mut f = pcap_header(false, 0xa1b2c3d4, 1);
    f.extend(record(false, 1_700_000_000, 1, b"only packet"));
    f.extend(0xffff_ffffu32.to_le_bytes().repeat(100));
    let mut r = reader(f).expect("reader");
    assert!(r.next_packet().is_some());
    assert!(r.next_packet().is_none());
    let stop = r.stop.expect("stopped");
    assert_eq!(stop.key, "capture_corrupt");
    assert!(
        stop.detail.contains(
            "record at byte 51 claims 4294967295 bytes, and no valid record follows in the 400 bytes after it"
        ),
        "{}",
        stop.detail
    );
}

#[test]
fn reads_both_byte_orders_and_resolutions() {
    for (big, magic, frac, want_ns) in [
        (false, 0xa1b2c3d4u32, 5u32, 5000i64),
        (true, 0xa1b2c3d4, 5, 5000),
        (false, 0xa1b23c4d, 5, 5),
        (true, 0xa1b23c4d, 5, 5),
    ] {
        let mut f = pcap_header(big, magic, 1);
        f.extend(record(big, 10, frac, b"abcd"));
        f.extend(record(big, 11, 0, b"xy"));
        let mut r = reader(f).expect("header");
        let p = r.next_packet().expect("first");
        assert_eq!(p.ts, Timestamp::from_parts(10, want_ns));
        assert_eq!(p.data, b"abcd");
        assert_eq!(p.link, LinkType::ETHERNET);
        assert_eq!(r.next_packet().expect("second").data, b"xy");
        assert!(r.next_packet().is_none());
        assert!(r.stop.is_none());
    }
}

#[test]
fn truncated_last_record_is_a_stop_not_an_error() {
    let mut f = pcap_header(false, 0xa1b2c3d4, 1);
    f.extend(record(false, 1, 0, b"abcd"));
    let mut cut = record(false, 2, 0, b"abcdefgh");
    cut.truncate(20);
    f.extend(cut);
    let mut r = reader(f).expect("header");
    assert!(r.next_packet().is_some());
    assert!(r.next_packet().is_none());
    assert_eq!(r.stop.as_ref().map(|s| s.key), Some("capture_truncated"));
}

#[test]
fn enormous_record_length_stops_without_allocating() {
    let mut f = pcap_header(false, 0xa1b2c3d4, 1);
    let mut rec = record(false, 1, 0, b"");
    rec[8..12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    f.extend(rec);
    let mut r = reader(f).expect("header");
    assert!(r.next_packet().is_none());
    assert_eq!(r.stop.as_ref().map(|s| s.key), Some("capture_corrupt"));
}

#[test]
fn not_a_capture_says_what_it_looks_like() {
    let e = reader(b"<!DOCTYPE html><html></html>".to_vec()).err().expect("error");
    assert!(e.to_string().contains("HTML"), "{e}");
    let e = reader(Vec::new()).err().expect("error");
    assert!(e.to_string().contains("empty"), "{e}");
    let e = reader(b"hello world, this is text\n".to_vec()).err().expect("error");
    assert!(e.to_string().contains("text"), "{e}");
    let e = reader(b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46".to_vec())
        .err()
        .expect("error");
    assert!(e.to_string().contains("xz-compressed data (decompress it first"), "{e}");
    let e = reader(b"BZh91AY&SY".to_vec()).err().expect("error");
    assert!(e.to_string().contains("bzip2"), "{e}");
    // One flipped bit in a pcap magic: a damaged capture, not unknown data.
    let mut damaged = pcap_header(false, 0xa1b2_c3d4, 1);
    damaged[0] ^= 0x01;
    let e = reader(damaged).err().expect("error");
    assert!(
        e.to_string().contains(
            "a pcap capture with a damaged magic number: it starts d5 c3 b2 a1, a pcap file starts d4 c3 b2 a1"
        ),
        "{e}"
    );
    let e = reader(b"\x0a\x0d\x0c\x0a\x1c\x00\x00\x00".to_vec())
        .err()
        .expect("error");
    assert!(
        e.to_string().contains("a pcapng capture with a damaged magic number"),
        "{e}"
    );
    // Far from every magic: still unknown data.
    let e = reader(b"\x00\x11\x22\x33\x44\x55\x66\x77".to_vec())
        .err()
        .expect("error");
    assert!(e.to_string().contains("unknown data starting 00 11 22 33"), "{e}");
}

#[test]
fn pcapng_without_a_whole_section_header_is_an_error_naming_it() {
    let mut shb = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    shb.extend_from_slice(&28u32.to_le_bytes());
    assert!(reader(shb.clone()).is_ok());
    for cut in [4, 11, 12, 27] {
        let e = reader(shb[..cut].to_vec()).err().expect("error");
        assert!(e.to_string().contains("truncated pcapng section header"), "{e}");
    }
    let mut bad = shb.clone();
    bad[8..12].copy_from_slice(b"ABCD");
    let e = reader(bad).err().expect("error");
    assert!(e.to_string().contains("byte-order magic"), "{e}");
    let mut huge = shb;
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = reader(huge).err().expect("error");
    assert!(e.to_string().contains("impossible length"), "{e}");
}

#[test]
fn pcapng_with_two_interfaces_and_resolutions() {
    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut v = Vec::new();
        v.extend_from_slice(&t.to_le_bytes());
        v.extend_from_slice(&(len as u32).to_le_bytes());
        v.extend_from_slice(body);
        v.resize(len - 4, 0);
        v.extend_from_slice(&(len as u32).to_le_bytes());
        v
    }
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut f = block(0x0a0d0d0a, &shb);
    let mut idb0 = vec![1, 0, 0, 0, 0, 0, 1, 0];
    idb0.extend_from_slice(&[0, 0, 0, 0]);
    f.extend(block(1, &idb0));
    let mut idb1 = vec![101, 0, 0, 0, 0, 0, 1, 0];
    idb1.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]); // if_tsresol = 10^-9
    f.extend(block(1, &idb1));
    let epb = |iface: u32, ts: u64, data: &[u8]| {
        let mut b = Vec::new();
        b.extend_from_slice(&iface.to_le_bytes());
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        block(6, &b)
    };
    f.extend(epb(0, 1_500_000, b"eth"));
    f.extend(epb(1, 2_000_000_007, b"raw-ip"));
    let mut r = reader(f).expect("header");
    let p = r.next_packet().expect("p0");
    assert_eq!(
        (p.ts, p.link, p.data),
        (Timestamp::from_parts(1, 500_000_000), LinkType::ETHERNET, &b"eth"[..])
    );
    let p = r.next_packet().expect("p1");
    assert_eq!(
        (p.ts, p.link, p.data),
        (Timestamp::from_parts(2, 7), LinkType::RAW, &b"raw-ip"[..])
    );
    assert!(r.next_packet().is_none());
    assert!(r.stop.is_none());
}

/// Reads every packet's bytes (lossy text) and returns them with the reader.
fn read_all(f: Vec<u8>) -> (Vec<String>, FileReader) {
    let mut r = reader(f).expect("reader");
    let mut got = Vec::new();
    while let Some(p) = r.next_packet() {
        got.push(String::from_utf8_lossy(p.data).to_string());
    }
    (got, r)
}

/// A capture: one good record, `junk`, a record header claiming 4 GB, then four good records a
/// second later.
fn damaged_after(junk: &[u8]) -> Vec<u8> {
    let mut f = pcap_header(false, 0xa1b2c3d4, 1);
    f.extend(record(false, 1_700_000_000, 1, b"first packet"));
    f.extend_from_slice(junk);
    let mut bad = record(false, 1_700_000_000, 2, b"lost");
    bad[8..12].copy_from_slice(&[0xff; 4]);
    f.extend(bad);
    for n in 0..4u32 {
        f.extend(record(false, 1_700_000_001, n, format!("after {n}").as_bytes()));
    }
    f
}

#[test]
fn zero_bytes_before_a_damaged_header_do_not_hide_the_rest_of_the_file() {
    // 32 zero bytes read as two empty records at time 0, then a damaged header: the search must
    // still look for records near the capture's time, not near 1970.
    let (got, r) = read_all(damaged_after(&[0u8; 32]));
    assert_eq!(
        got,
        ["first packet", "", "", "after 0", "after 1", "after 2", "after 3"]
    );
    assert!(r.stop.is_none(), "{:?}", r.stop);
    assert!(r.oddities.contains(&("capture_resynced", 1)), "{:?}", r.oddities);
}

#[test]
fn misread_records_that_agree_on_a_wrong_time_do_not_hide_the_rest_of_the_file() {
    // Two short records agreeing on an impossible time move the reference; the search still
    // accepts records near the time before that jump.
    let mut junk = record(false, 5, 0, b"x");
    junk.extend(record(false, 5, 0, b"y"));
    let (got, r) = read_all(damaged_after(&junk));
    assert_eq!(
        got,
        ["first packet", "x", "y", "after 0", "after 1", "after 2", "after 3"]
    );
    assert!(r.stop.is_none(), "{:?}", r.stop);
}

#[test]
fn a_parked_reader_goes_on_at_its_next_record_and_refuses_a_replaced_file() {
    let mut f = pcap_header(false, 0xa1b2c3d4, 1);
    for k in 0..40u32 {
        f.extend(record(false, 1_700_000_000 + k, 0, format!("packet {k}").as_bytes()));
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("a.pcap");
    std::fs::write(&path, &f).expect("write");
    let straight = read_all(f.clone()).0;
    let mut r = FileReader::open(&path).expect("open");
    let mut got = Vec::new();
    let mut k = 0;
    while let Some(p) = r.next_packet() {
        got.push(String::from_utf8_lossy(p.data).into_owned());
        k += 1;
        // Let go of the file after every few packets, as a merge of many inputs does.
        if k % 7 == 0 {
            assert!(r.park());
            assert!(r.is_parked() && !r.can_park());
            r.unpark().expect("unpark");
        }
    }
    assert_eq!(got, straight);
    assert!(r.stop.is_none(), "{:?}", r.stop);

    // A file replaced while parked is not read as if it went on.
    let mut r = FileReader::open(&path).expect("open");
    assert!(r.next_packet().is_some());
    assert!(r.park());
    // (Written beside it first, so that it is another inode, then renamed over it.)
    let other = dir.path().join("b.pcap");
    std::fs::write(&other, &f).expect("write");
    std::fs::rename(&other, &path).expect("rename");
    assert!(r.unpark().is_err());
    assert!(r.next_packet().is_none());
    // Standard input and gzip cannot be parked.
    assert!(!reader(f).expect("cursor").can_park());
}
