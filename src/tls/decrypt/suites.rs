//! Which cipher suites can be opened, and with what.

use super::cipher::{AeadKind, MacKind};

/// The PRF of a TLS 1.0-1.2 suite (TLS 1.0 and 1.1 always use MD5 and SHA-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prf {
    Md5Sha1,
    Sha256,
    Sha384,
}

/// The bulk cipher of a TLS 1.0-1.2 suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bulk {
    Aead(AeadKind),
    Cbc { key_len: usize, mac: MacKind },
}

#[derive(Clone, Copy, Debug)]
pub struct Suite12 {
    pub bulk: Bulk,
    pub prf: Prf,
}

/// A TLS 1.3 suite's AEAD and whether its hash is SHA-384.
pub fn suite13(id: u16) -> Option<(AeadKind, bool)> {
    Some(match id {
        0x1301 => (AeadKind::Aes128Gcm, false),
        0x1302 => (AeadKind::Aes256Gcm, true),
        0x1303 => (AeadKind::ChaCha20Poly1305, false),
        0x1304 => (AeadKind::Aes128Ccm, false),
        0x1305 => (AeadKind::Aes128Ccm8, false),
        _ => return None,
    })
}

/// The TLS 1.0-1.2 suites with AES-GCM, AES-CCM, ChaCha20-Poly1305 or AES-CBC (RSA, DHE, ECDHE key
/// exchanges): the bulk cipher and PRF.
pub fn suite12(id: u16) -> Option<Suite12> {
    use AeadKind as A;
    let aead = |k, prf| Suite12 {
        bulk: Bulk::Aead(k),
        prf,
    };
    let cbc = |key_len, mac, prf| Suite12 {
        bulk: Bulk::Cbc { key_len, mac },
        prf,
    };
    Some(match id {
        0x009C | 0x009E | 0xC02B | 0xC02F | 0x00A2 | 0x00A4 => aead(A::Aes128Gcm, Prf::Sha256),
        0x009D | 0x009F | 0xC02C | 0xC030 | 0x00A3 | 0x00A5 => aead(A::Aes256Gcm, Prf::Sha384),
        0xCCA8..=0xCCAA => aead(A::ChaCha20Poly1305, Prf::Sha256),
        0xC09C | 0xC09E | 0xC0AC => aead(A::Aes128Ccm, Prf::Sha256),
        0xC09D | 0xC09F | 0xC0AD => aead(A::Aes256Ccm, Prf::Sha256),
        0xC0A0 | 0xC0A2 | 0xC0AE => aead(A::Aes128Ccm8, Prf::Sha256),
        0xC0A1 | 0xC0A3 | 0xC0AF => aead(A::Aes256Ccm8, Prf::Sha256),
        0x002F | 0x0033 | 0x0032 | 0xC009 | 0xC013 | 0xC004 | 0xC00E => cbc(16, MacKind::Sha1, Prf::Sha256),
        0x0035 | 0x0039 | 0x0038 | 0xC00A | 0xC014 | 0xC005 | 0xC00F => cbc(32, MacKind::Sha1, Prf::Sha256),
        0x003C | 0x0067 | 0x0040 | 0xC023 | 0xC027 => cbc(16, MacKind::Sha256, Prf::Sha256),
        0x003D | 0x006B | 0x006A => cbc(32, MacKind::Sha256, Prf::Sha256),
        0xC024 | 0xC028 => cbc(32, MacKind::Sha384, Prf::Sha384),
        _ => return None,
    })
}
