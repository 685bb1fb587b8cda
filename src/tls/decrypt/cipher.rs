//! The record ciphers of TLS 1.2 and 1.3, over RustCrypto: AEADs (GCM, CCM, CCM-8,
//! ChaCha20-Poly1305) and AES-CBC with HMAC (SHA-1, SHA-256, SHA-384). No primitive is written
//! here; this only picks them and applies the record layer's nonce, AAD, MAC and padding rules.

use aes::{Aes128, Aes128Enc, Aes256, Aes256Enc};
use aes_gcm::AesGcm;
use aes_gcm::aead::consts::{U8, U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::generic_array::typenum::Unsigned;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use ccm::Ccm;
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384};

/// The AEAD algorithms of TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadKind {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
    Aes128Ccm,
    Aes256Ccm,
    Aes128Ccm8,
    Aes256Ccm8,
}

impl AeadKind {
    pub fn key_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm | AeadKind::Aes128Ccm | AeadKind::Aes128Ccm8 => 16,
            _ => 32,
        }
    }
}

// GCM and CCM only ever run AES forwards (counter mode, CBC-MAC): the encryption-only key
// schedule skips the decryption round keys that `Aes128`/`Aes256` would also expand.
type Aes128Gcm = AesGcm<Aes128Enc, U12>;
type Aes256Gcm = AesGcm<Aes256Enc, U12>;

/// A keyed AEAD.
pub enum Aead {
    Aes128Gcm(Box<Aes128Gcm>),
    Aes256Gcm(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
    Aes128Ccm(Box<Ccm<Aes128Enc, U16, U12>>),
    Aes256Ccm(Box<Ccm<Aes256Enc, U16, U12>>),
    Aes128Ccm8(Box<Ccm<Aes128Enc, U8, U12>>),
    Aes256Ccm8(Box<Ccm<Aes256Enc, U8, U12>>),
}

/// Opens `ct` (ciphertext, then the tag) into `out`, in place there: no allocation once `out`
/// has grown to a record's size.
fn open_into<A: AeadInPlace<NonceSize = U12>>(
    a: &A,
    nonce: &[u8; 12],
    aad: &[u8],
    ct: &[u8],
    out: &mut Vec<u8>,
) -> Option<()> {
    let (msg, tag) = ct.split_at_checked(ct.len().checked_sub(A::TagSize::USIZE)?)?;
    let tag = GenericArray::from_exact_iter(tag.iter().copied())?;
    out.clear();
    out.extend_from_slice(msg);
    a.decrypt_in_place_detached(&GenericArray::from(*nonce), aad, out, &tag)
        .ok()
}

impl Aead {
    pub fn new(kind: AeadKind, key: &[u8]) -> Option<Aead> {
        Some(match kind {
            AeadKind::Aes128Gcm => Aead::Aes128Gcm(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            AeadKind::Aes256Gcm => Aead::Aes256Gcm(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            AeadKind::ChaCha20Poly1305 => Aead::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?)),
            AeadKind::Aes128Ccm => Aead::Aes128Ccm(Box::new(Ccm::new_from_slice(key).ok()?)),
            AeadKind::Aes256Ccm => Aead::Aes256Ccm(Box::new(Ccm::new_from_slice(key).ok()?)),
            AeadKind::Aes128Ccm8 => Aead::Aes128Ccm8(Box::new(Ccm::new_from_slice(key).ok()?)),
            AeadKind::Aes256Ccm8 => Aead::Aes256Ccm8(Box::new(Ccm::new_from_slice(key).ok()?)),
        })
    }

    /// Opens `ct` (ciphertext and tag) into `out` (cleared first); `None` if the tag does not
    /// verify (what `out` then holds is not plaintext).
    pub fn open(&self, nonce: &[u8; 12], aad: &[u8], ct: &[u8], out: &mut Vec<u8>) -> Option<()> {
        match self {
            Aead::Aes128Gcm(a) => open_into(&**a, nonce, aad, ct, out),
            Aead::Aes256Gcm(a) => open_into(&**a, nonce, aad, ct, out),
            Aead::ChaCha(a) => open_into(&**a, nonce, aad, ct, out),
            Aead::Aes128Ccm(a) => open_into(&**a, nonce, aad, ct, out),
            Aead::Aes256Ccm(a) => open_into(&**a, nonce, aad, ct, out),
            Aead::Aes128Ccm8(a) => open_into(&**a, nonce, aad, ct, out),
            Aead::Aes256Ccm8(a) => open_into(&**a, nonce, aad, ct, out),
        }
    }
}

/// The HMAC of a CBC suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacKind {
    Sha1,
    Sha256,
    Sha384,
}

impl MacKind {
    pub fn len(self) -> usize {
        match self {
            MacKind::Sha1 => 20,
            MacKind::Sha256 => 32,
            MacKind::Sha384 => 48,
        }
    }

    /// Whether `tag` is the HMAC over the concatenation of `parts` (compared in constant time,
    /// without allocating).
    pub fn verify(self, key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    for p in parts {
                        m.update(p);
                    }
                    m.verify_slice(tag).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            MacKind::Sha1 => run::<Hmac<Sha1>>(key, parts, tag),
            MacKind::Sha256 => run::<Hmac<Sha256>>(key, parts, tag),
            MacKind::Sha384 => run::<Hmac<Sha384>>(key, parts, tag),
        }
    }
}

/// AES-CBC decryption of whole blocks in place; `false` if the key, IV or length is wrong.
pub fn cbc_decrypt(key: &[u8], iv: &[u8], buf: &mut [u8]) -> bool {
    use cbc::cipher::block_padding::NoPadding;
    use cbc::cipher::{BlockDecryptMut, KeyIvInit};
    if buf.is_empty() || buf.len() % 16 != 0 {
        return false;
    }
    match key.len() {
        16 => cbc::Decryptor::<Aes128>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<NoPadding>(buf).ok())
            .is_some(),
        32 => cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
            .ok()
            .and_then(|d| d.decrypt_padded_mut::<NoPadding>(buf).ok())
            .is_some(),
        _ => false,
    }
}
