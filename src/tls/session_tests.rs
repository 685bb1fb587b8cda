//! Unit tests of the session's deframer and handshake reassembly.
use super::*;
use crate::capture::Timestamp;
use crate::limits::MAX_HANDSHAKE_MESSAGE;

fn at(frame: u64) -> At {
    At {
        frame,
        ts: Timestamp(frame as i64),
    }
}

fn record(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![typ, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
    v.extend_from_slice(body);
    v
}

#[test]
fn http_answer_is_not_tls() {
    let mut s = Session::default();
    s.on_chunk(
        Direction::ToServer,
        Chunk::Data(&record(content::HANDSHAKE, &[1, 0, 0, 0])),
        at(2),
    );
    s.on_chunk(Direction::ToClient, Chunk::Data(b"HTTP/1.1 400 Bad Request\r\n"), at(3));
    assert!(s.facts().not_tls[Direction::ToClient]);
    assert_eq!(
        s.facts().first_bytes[Direction::ToClient]
            .as_ref()
            .map(|f| f.looks_like),
        Some("HTTP response")
    );
    assert!(s.outcome_known());
}

#[test]
fn banner_waits_for_the_client_and_a_preamble_leads_to_tls() {
    // A banner to a silent client is not (yet) a failure.
    let mut s = Session::default();
    s.on_chunk(Direction::ToClient, Chunk::Data(b"220 mx ESMTP\r\n"), at(4));
    assert!(!s.outcome_known());
    assert!(s.facts().server_spoke_first && !s.facts().not_tls[Direction::ToClient]);
    // The client answers with SMTP, asks for TLS; the server agrees; TLS follows.
    s.on_chunk(Direction::ToServer, Chunk::Data(b"EHLO c\r\n"), at(5));
    s.on_chunk(Direction::ToClient, Chunk::Data(b"250-mx\r\n250 STARTTLS\r\n"), at(6));
    s.on_chunk(Direction::ToServer, Chunk::Data(b"STARTTLS\r\n"), at(7));
    s.on_chunk(Direction::ToClient, Chunk::Data(b"220 go ahead\r\n"), at(8));
    s.on_chunk(
        Direction::ToServer,
        Chunk::Data(&record(content::HANDSHAKE, &[1, 0, 0, 0])),
        at(9),
    );
    s.on_chunk(
        Direction::ToClient,
        Chunk::Data(&record(content::ALERT, &[2, 40])),
        at(10),
    );
    let f = s.facts();
    assert_eq!(f.at_client_hello.map(|a| a.frame), Some(9));
    assert_eq!(f.first_fatal_alert().map(|a| a.at.frame), Some(10));
    assert_eq!(
        f.preamble.as_ref().map(|p| p.outcome),
        Some(super::super::preamble::PreambleOutcome::Upgraded)
    );
    // A banner answered by a ClientHello: the server does not speak TLS.
    let mut s = Session::default();
    s.on_chunk(Direction::ToClient, Chunk::Data(b"SSH-2.0-x\r\n"), at(1));
    s.on_chunk(
        Direction::ToServer,
        Chunk::Data(&record(content::HANDSHAKE, &[1, 0, 0, 0])),
        at(2),
    );
    assert!(s.facts().not_tls[Direction::ToClient] && s.outcome_known());
}

#[test]
fn plaintext_alert_split_over_chunks() {
    let bytes = record(content::ALERT, &[2, 40]);
    for split in 1..bytes.len() {
        let mut s = Session::default();
        s.on_chunk(Direction::ToClient, Chunk::Data(&bytes[..split]), at(4));
        s.on_chunk(Direction::ToClient, Chunk::Data(&bytes[split..]), at(5));
        let a = s.facts().first_fatal_alert().expect("alert");
        assert_eq!(a.description, Some(AlertDescription::HANDSHAKE_FAILURE));
        assert_eq!(a.at.frame, 5);
    }
}

#[test]
fn handshake_message_across_records_and_gap_inside_opaque_record() {
    // A ServerHelloDone split over two records.
    let mut s = Session::default();
    let mut bytes = record(content::HANDSHAKE, &[14, 0]);
    bytes.extend(record(content::HANDSHAKE, &[0, 0]));
    s.on_chunk(Direction::ToClient, Chunk::Data(&bytes), at(7));
    assert_eq!(s.facts().server_hello_done.map(|a| a.frame), Some(7));
    // An application-data record with a hole inside keeps the deframer in sync.
    let app = record(content::APPLICATION_DATA, &[0u8; 100]);
    s.on_chunk(Direction::ToClient, Chunk::Data(&app[..20]), at(8));
    s.on_chunk(Direction::ToClient, Chunk::Gap(30), at(9));
    s.on_chunk(Direction::ToClient, Chunk::Data(&app[50..]), at(9));
    s.on_chunk(
        Direction::ToClient,
        Chunk::Data(&record(content::ALERT, &[2, 10])),
        at(10),
    );
    assert_eq!(s.facts().lost_sync[Direction::ToClient], 0);
    assert_eq!(
        s.facts().first_fatal_alert().and_then(|a| a.description),
        Some(AlertDescription::UNEXPECTED_MESSAGE)
    );
}

#[test]
fn snap_length_cut_at_a_record_end_keeps_sync() {
    // A handshake record (a Certificate) whose last 30 bytes the snap length cut: the next
    // segment starts with the next record (a loss of the same length is not taken as proof).
    for (chunk, lost) in [(Chunk::Cut(30), 0), (Chunk::Gap(30), 1)] {
        let mut s = Session::default();
        let mut body = vec![11, 0, 0, 96];
        body.resize(100, 0);
        let cert = record(content::HANDSHAKE, &body);
        let bytes = cert[..75].to_vec();
        s.on_chunk(Direction::ToClient, Chunk::Data(&bytes), at(1));
        s.on_chunk(Direction::ToClient, chunk, at(1));
        s.on_chunk(
            Direction::ToClient,
            Chunk::Data(&record(content::ALERT, &[2, 40])),
            at(2),
        );
        assert_eq!(s.facts().lost_sync[Direction::ToClient], lost);
    }
}

#[test]
fn resync_after_gap_at_unknown_position() {
    let mut s = Session::default();
    s.on_chunk(
        Direction::ToClient,
        Chunk::Data(&record(content::HANDSHAKE, &[14, 0, 0, 0])),
        at(1),
    );
    s.on_chunk(Direction::ToClient, Chunk::Gap(1000), at(2));
    let mut junk = vec![0x99u8; 7];
    junk.extend(record(content::ALERT, &[2, 80]));
    s.on_chunk(Direction::ToClient, Chunk::Data(&junk), at(3));
    assert_eq!(s.facts().lost_sync[Direction::ToClient], 1);
    assert_eq!(
        s.facts().first_fatal_alert().and_then(|a| a.description),
        Some(AlertDescription::INTERNAL_ERROR)
    );
}

#[test]
fn garbage_never_panics_and_stays_bounded() {
    let mut s = Session::default();
    let mut x: u32 = 12345;
    for i in 0..2000u64 {
        let chunk: Vec<u8> = (0..(i % 97) as usize)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let dir = if i % 3 == 0 {
            Direction::ToClient
        } else {
            Direction::ToServer
        };
        if i % 50 == 0 {
            s.on_chunk(dir, Chunk::Gap(i), at(i));
        }
        s.on_chunk(dir, Chunk::Data(&chunk), at(i));
    }
    assert!(
        s.state
            .iter()
            .flat_map(|st| st.dirs.iter())
            .all(|d| d.rec.capacity() <= 2 * (MAX_TLS_RECORD + 5)
                && d.hs.len() <= MAX_HANDSHAKE_MESSAGE + MAX_TLS_RECORD)
    );
}
