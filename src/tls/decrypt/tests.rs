#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use super::*;
use aes_gcm::aead::{Aead as _, KeyInit, Payload};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 8448 §3 (simple 1-RTT): the server handshake traffic secret's key and IV.
#[test]
fn expand_label_matches_rfc8448() {
    let secret =
        unhex("b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38");
    assert_eq!(
        expand_label(false, &secret, "key", 16).unwrap(),
        unhex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
    );
    assert_eq!(
        expand_label(false, &secret, "iv", 12).unwrap(),
        unhex("5d 31 3e b2 67 12 76 ee 13 00 0b 30")
    );
}

fn secrets(lines: &str) -> Secrets {
    let mut k = crate::tls::keylog::KeyLog::default();
    k.add_text("t", lines.as_bytes());
    k.get(&[7u8; 32]).cloned().unwrap()
}

/// Seals a TLS 1.3 record as a sender with `secret` would (aes-gcm directly).
fn seal13(secret: &[u8], seq: u64, inner: u8, content: &[u8]) -> Vec<u8> {
    let key = expand_label(false, secret, "key", 16).unwrap();
    let iv: [u8; 12] = expand_label(false, secret, "iv", 12).unwrap().try_into().unwrap();
    let mut pt = content.to_vec();
    pt.push(inner);
    pt.extend([0, 0, 0]);
    let len = (pt.len() + 16) as u16;
    let aad = [23, 3, 3, (len >> 8) as u8, len as u8];
    aes_gcm::Aes128Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt((&xor_nonce(&iv, seq)).into(), Payload { msg: &pt, aad: &aad })
        .unwrap()
}

/// A TLS 1.3 session (TLS_AES_128_GCM_SHA256) with the server's handshake and first
/// application secrets logged (hex), and its decryptor.
fn server13() -> (String, String, Decryptor) {
    let r = "07".repeat(32);
    let (shs, sap) = ("11".repeat(32), "22".repeat(32));
    let s = secrets(&format!(
        "SERVER_HANDSHAKE_TRAFFIC_SECRET {r} {shs}\nSERVER_TRAFFIC_SECRET_0 {r} {sap}\n"
    ));
    let h = Hello {
        client_random: &[7; 32],
        server_random: &[8; 32],
        version: 0x0304,
        suite: 0x1301,
        encrypt_then_mac: false,
    };
    let d = Decryptor::new(&s, &h).unwrap();
    (shs, sap, d)
}

#[test]
fn tls13_records_open_in_order_and_switch_keys_after_finished() {
    let (shs, sap, mut d) = server13();
    assert!(!d.wants(Direction::ToServer));
    let dir = Direction::ToClient;
    for seq in 0..3u64 {
        let rec = seal13(&unhex(&shs), seq, 22, &[20, 0, 0, 1, seq as u8]);
        match d.open(dir, 23, 0x0303, &rec) {
            Opened::Plain(22, pt) => assert_eq!(pt, vec![20, 0, 0, 1, seq as u8]),
            _ => panic!("record {seq} did not open"),
        }
    }
    d.finished(dir);
    // A record over the limit is not opened and spends no sequence number.
    assert!(matches!(d.open(dir, 23, 0x0303, &[0u8; 18_000]), Opened::Oversized));
    let alert = seal13(&unhex(&sap), 0, 21, &[2, 116]);
    assert!(matches!(d.open(dir, 23, 0x0303, &alert), Opened::Plain(21, pt) if pt == [2, 116]));
    // A damaged record stops the direction.
    let mut bad = seal13(&unhex(&sap), 1, 21, &[2, 40]);
    bad[0] ^= 1;
    assert!(matches!(d.open(dir, 23, 0x0303, &bad), Opened::Failed));
    assert!(matches!(d.open(dir, 23, 0x0303, &alert), Opened::NoKey));
    assert!(!format!("{d:?}").contains("11111111"));
}

/// Records left closed still spend their sequence numbers: the next record opened after them
/// (an alert after tickets and responses nobody reads) opens, whether the keys were derived
/// before the records passed or only after.
#[test]
fn records_passed_over_keep_the_sequence() {
    let dir = Direction::ToClient;
    for opened_first in [false, true] {
        let (shs, sap, mut d) = server13();
        let fin = seal13(&unhex(&shs), 0, 22, &[20, 0, 0, 1, 0]);
        assert!(matches!(d.open(dir, 23, 0x0303, &fin), Opened::Plain(22, _)));
        d.finished(dir);
        let mut seq = 0;
        if opened_first {
            let ticket = seal13(&unhex(&sap), 0, 22, &[4, 0, 0, 1, 0]);
            assert!(matches!(d.open(dir, 23, 0x0303, &ticket), Opened::Plain(22, _)));
            seq = 1;
        }
        for _ in 0..3 {
            d.pass(dir);
            seq += 1;
        }
        let alert = seal13(&unhex(&sap), seq, 21, &[1, 0]);
        assert!(
            matches!(d.open(dir, 23, 0x0303, &alert), Opened::Plain(21, pt) if pt == [1, 0]),
            "alert at sequence {seq} (keys derived first: {opened_first})"
        );
    }
}

/// After a KeyUpdate a direction's records open with the next secret's keys, from sequence 0.
#[test]
fn key_update_moves_on_to_the_next_secret() {
    let (shs, sap, mut d) = server13();
    let dir = Direction::ToClient;
    let fin = seal13(&unhex(&shs), 0, 22, &[20, 0, 0, 1, 0]);
    assert!(matches!(d.open(dir, 23, 0x0303, &fin), Opened::Plain(22, _)));
    d.finished(dir);
    let update = seal13(&unhex(&sap), 0, 22, &[24, 0, 0, 1, 0]);
    assert!(matches!(d.open(dir, 23, 0x0303, &update), Opened::Plain(22, _)));
    d.key_update(dir);
    let next = expand_label(false, &unhex(&sap), "traffic upd", 32).unwrap();
    let alert = seal13(&next, 0, 21, &[2, 40]);
    assert!(matches!(d.open(dir, 23, 0x0303, &alert), Opened::Plain(21, pt) if pt == [2, 40]));
}

#[test]
fn garbage_records_never_panic() {
    let r = "07".repeat(32);
    let ms = "33".repeat(48);
    let s = secrets(&format!(
        "CLIENT_RANDOM {r} {ms}\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\n",
        "44".repeat(48)
    ));
    let mut x = 99u32;
    for suite in [
        0x1301u16, 0x1302, 0x1303, 0x1304, 0x1305, 0xC02F, 0xCCA8, 0xC0AC, 0x002F, 0xC028, 0x003C,
    ] {
        for version in [0x0301u16, 0x0302, 0x0303, 0x0304] {
            for etm in [false, true] {
                let h = Hello {
                    client_random: &[7; 32],
                    server_random: &[9; 32],
                    version,
                    suite,
                    encrypt_then_mac: etm,
                };
                let Some(mut d) = Decryptor::new(&s, &h) else { continue };
                for n in [0usize, 1, 5, 8, 15, 16, 17, 24, 31, 32, 33, 48, 64, 65, 100] {
                    let body: Vec<u8> = (0..n)
                        .map(|_| {
                            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                            (x >> 16) as u8
                        })
                        .collect();
                    for dir in [Direction::ToServer, Direction::ToClient] {
                        let _ = d.open(dir, 22, 0x0303, &body);
                    }
                }
            }
        }
    }
}

/// CBC padding: each pad byte holds the pad's length; anything else does not unpad.
#[test]
fn cbc_unpad_takes_well_formed_padding_only() {
    assert_eq!(cbc_unpad(&[1, 2, 3, 0]), Some(3));
    assert_eq!(cbc_unpad(&[1, 2, 2, 2]), Some(1));
    assert_eq!(cbc_unpad(&[1, 3, 2, 2]), None);
    assert_eq!(cbc_unpad(&[3, 3, 3]), None);
    assert_eq!(cbc_unpad(&[]), None);
}
