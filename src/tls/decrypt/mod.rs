//! Opening TLS records with key log secrets (see [`super::keylog`]).
//!
//! TLS 1.3: the traffic secrets are logged, so each direction's key and IV come from
//! HKDF-Expand-Label (RFC 8446 §7.3); handshake keys until that side's Finished, then its first
//! application keys (post-handshake alerts, tickets). Each key and IV is derived once, when the
//! first record that needs it comes (one HMAC key setup per secret for both): with SHA-384
//! suites the HMAC compressions are most of decryption's cost, so a direction that never sends
//! a record under a secret never pays for it. TLS 1.0-1.2: the key block comes from the
//! logged master secret with the version's PRF (RFC 5246 §6.3, RFC 2246 §5), and the records
//! after ChangeCipherSpec (Finished, alerts) open with the suite's AEAD or CBC-HMAC
//! (encrypt-then-MAC aware, RFC 7366).
//!
//! Nothing here logs or returns a secret or a key: only plaintext records, which the session
//! parses and drops. A record that does not open stops decryption of its direction (the sequence
//! number is lost) and is counted; the session then goes on from record sizes, as without keys.

mod cipher;
mod suites;

use self::cipher::{Aead, MacKind, cbc_decrypt};
use self::suites::{Bulk, Prf, suite12, suite13};
use super::keylog::{Label, Secrets};
use crate::flow::{Direction, PerDir};
use hkdf::Hkdf;
use sha2::{Sha256, Sha384};

/// The largest plaintext of a TLS record (plus the TLS 1.3 content type and a little slack).
const MAX_PLAINTEXT: usize = (1 << 14) + 256;

/// What opening a record gave.
pub enum Opened {
    /// The record's real content type and its plaintext.
    Plain(u8, Vec<u8>),
    /// This direction has no key (not logged, or decryption of it stopped).
    NoKey,
    /// The record did not open (wrong key, damaged bytes): decryption of this direction stops.
    Failed,
    /// TLS 1.3 client records that do not open with the handshake key before one did: early data
    /// (0-RTT), kept opaque without stopping.
    Skipped,
    /// A record longer than any peer accepts (RFC 8446 §5.2, RFC 5246 §6.2.3): the peer answers
    /// it with record_overflow without reading it, so it is not opened and costs no sequence
    /// number; it says nothing about the keys.
    Oversized,
}

enum Keys {
    /// TLS 1.3 and TLS 1.2 ChaCha20-Poly1305: nonce = IV xor sequence number.
    XorNonce { aead: Aead, iv: [u8; 12] },
    /// TLS 1.2 GCM and CCM: nonce = 4-byte salt, then the record's 8-byte explicit nonce.
    ExplicitNonce { aead: Aead, salt: [u8; 4] },
    /// TLS 1.0-1.2 CBC with HMAC; `iv` is the chained IV of TLS 1.0 (None: explicit per record).
    Cbc {
        key: Vec<u8>,
        mac: MacKind,
        mac_key: Vec<u8>,
        iv: Option<[u8; 16]>,
        encrypt_then_mac: bool,
    },
}

struct DirKeys {
    keys: Keys,
    seq: u64,
}

/// The longest secret the key log keeps (its `MAX_SECRET`).
const MAX_SECRET: usize = 64;

/// A TLS 1.3 traffic secret whose key and IV are not derived yet (a copy: no allocation).
#[derive(Clone)]
struct Secret13 {
    bytes: [u8; MAX_SECRET],
    len: usize,
}

impl Secret13 {
    /// The secret, if the suite is a TLS 1.3 one and HKDF can take it as a pseudorandom key
    /// (at least the hash's length): exactly the secrets whose keys derive.
    fn new(suite: u16, secret: Option<&[u8]>) -> Option<Secret13> {
        let (_, sha384) = suite13(suite)?;
        let secret = secret?;
        let hash_len = if sha384 { 48 } else { 32 };
        if secret.len() < hash_len || secret.len() > MAX_SECRET {
            return None;
        }
        let mut bytes = [0u8; MAX_SECRET];
        bytes.get_mut(..secret.len())?.copy_from_slice(secret);
        Some(Secret13 {
            bytes,
            len: secret.len(),
        })
    }

    fn get(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Record decryption state of one session.
pub struct Decryptor {
    tls13: bool,
    /// The negotiated suite (TLS 1.3: which AEAD and hash derive the keys).
    suite: u16,
    /// Keys in use, per direction.
    dirs: PerDir<Option<DirKeys>>,
    /// TLS 1.3: the secret of the direction's current keys while they are not derived yet.
    pending: PerDir<Option<Secret13>>,
    /// TLS 1.3 application secrets, current once that side's Finished was read.
    next: PerDir<Option<Secret13>>,
    /// Whether a record of that direction opened.
    opened_any: PerDir<bool>,
    /// TLS 1.3: whether the direction is still under handshake keys.
    in_handshake: PerDir<bool>,
    /// Records passed over under keys not derived yet (their sequence numbers are spent).
    passed: PerDir<u64>,
    /// TLS 1.3: the application secret of the direction's current keys, kept for a KeyUpdate.
    current: PerDir<Option<Secret13>>,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material, ever.
        f.debug_struct("Decryptor")
            .field("tls13", &self.tls13)
            .field(
                "keys",
                &[Direction::ToServer, Direction::ToClient].map(|d| self.wants(d)),
            )
            .finish()
    }
}

/// A secret keyed into HKDF once (the HMAC key setup), for several labels.
#[allow(
    clippy::large_enum_variant,
    reason = "lives on the stack for the two expansions of one secret; boxing it cost two allocations per key"
)]
enum Prk {
    Sha256(Hkdf<Sha256>),
    Sha384(Hkdf<Sha384>),
}

impl Prk {
    fn new(sha384: bool, secret: &[u8]) -> Option<Prk> {
        Some(if sha384 {
            Prk::Sha384(Hkdf::<Sha384>::from_prk(secret).ok()?)
        } else {
            Prk::Sha256(Hkdf::<Sha256>::from_prk(secret).ok()?)
        })
    }

    /// HKDF-Expand-Label(secret, label, "", out.len()) of RFC 8446 §7.1, into `out`.
    fn expand_label(&self, label: &str, out: &mut [u8]) -> Option<()> {
        const PREFIX: &[u8] = b"tls13 ";
        let len = u16::try_from(out.len()).ok()?.to_be_bytes();
        let full_len = u8::try_from(PREFIX.len() + label.len()).ok()?;
        // uint16 length, opaque label<7..255> ("tls13 " + label), opaque context<0..255> (empty).
        let mut info = [0u8; 4 + 255];
        let n = 4 + usize::from(full_len);
        let parts = [&len[..], &[full_len], PREFIX, label.as_bytes(), &[0]];
        let mut pos = 0;
        for p in parts {
            info.get_mut(pos..pos + p.len())?.copy_from_slice(p);
            pos += p.len();
        }
        let info = info.get(..n)?;
        match self {
            Prk::Sha256(h) => h.expand(info, out).ok(),
            Prk::Sha384(h) => h.expand(info, out).ok(),
        }
    }
}

/// HKDF-Expand-Label(secret, label, "", len) of RFC 8446 §7.1.
#[cfg(test)]
fn expand_label(sha384: bool, secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    Prk::new(sha384, secret)?.expand_label(label, &mut out)?;
    Some(out)
}

/// A TLS 1.3 direction's key and IV from its traffic secret (RFC 8446 §7.3).
fn tls13_keys(suite: u16, secret: &[u8]) -> Option<DirKeys> {
    let (kind, sha384) = suite13(suite)?;
    let prk = Prk::new(sha384, secret)?;
    let mut key = [0u8; 32];
    let key = key.get_mut(..kind.key_len())?;
    prk.expand_label("key", key)?;
    let mut iv = [0u8; 12];
    prk.expand_label("iv", &mut iv)?;
    Some(DirKeys {
        keys: Keys::XorNonce {
            aead: Aead::new(kind, key)?,
            iv,
        },
        seq: 0,
    })
}

/// P_hash of RFC 5246 §5 over the seed `label + seed`, XORed into `out` (no allocation).
fn p_hash<M: hmac::Mac + hmac::digest::KeyInit + Clone>(secret: &[u8], seed: &[&[u8]], out: &mut [u8]) -> Option<()> {
    let mac = <M as hmac::digest::KeyInit>::new_from_slice(secret).ok()?;
    let with_seed = |mut m: M| {
        for part in seed {
            m.update(part);
        }
        m
    };
    // A(1) = HMAC(secret, seed).
    let mut a = with_seed(mac.clone()).finalize().into_bytes();
    let mut pos = 0;
    while pos < out.len() {
        let mut m = mac.clone();
        m.update(&a);
        let block = with_seed(m).finalize().into_bytes();
        for (o, b) in out.iter_mut().skip(pos).zip(block.iter()) {
            *o ^= *b;
        }
        pos += block.len();
        if pos < out.len() {
            // A(i+1), only when another block is wanted.
            let mut m = mac.clone();
            m.update(&a);
            a = m.finalize().into_bytes();
        }
    }
    Some(())
}

/// The longest key block: two MAC keys (SHA-384), two AES-256 keys, two CBC IVs.
const MAX_KEY_BLOCK: usize = 2 * (48 + 32 + 16);

/// The TLS PRF of the version and suite: PRF(secret, label, seed) into `out`.
fn prf(kind: Prf, secret: &[u8], label: &[u8], seed: [&[u8]; 2], out: &mut [u8]) -> Option<()> {
    use hmac::Hmac;
    let [s1, s2] = seed;
    let full = &[label, s1, s2];
    out.fill(0);
    match kind {
        Prf::Sha256 => p_hash::<Hmac<Sha256>>(secret, full, out)?,
        Prf::Sha384 => p_hash::<Hmac<Sha384>>(secret, full, out)?,
        Prf::Md5Sha1 => {
            // RFC 2246 §5: the secret's halves (overlapping by a byte when odd) through MD5 and SHA-1.
            let half = secret.len().div_ceil(2);
            let s1 = secret.get(..half)?;
            let s2 = secret.get(secret.len() - half..)?;
            p_hash::<Hmac<md5::Md5>>(s1, full, out)?;
            p_hash::<Hmac<sha1::Sha1>>(s2, full, out)?;
        }
    }
    Some(())
}

/// The handshake facts decryption needs.
pub struct Hello<'a> {
    pub client_random: &'a [u8; 32],
    pub server_random: &'a [u8; 32],
    /// Negotiated version (0x0301..0x0304).
    pub version: u16,
    pub suite: u16,
    /// Both hellos carried encrypt_then_mac (only the ServerHello's matters: it answers).
    pub encrypt_then_mac: bool,
}

impl Decryptor {
    /// Keys for a session, if the key log has what its version needs and the suite is known.
    pub fn new(secrets: &Secrets, h: &Hello<'_>) -> Option<Decryptor> {
        if h.version == 0x0304 {
            // Kept as secrets; each direction's keys are derived at its first record.
            let pending = PerDir::new(
                Secret13::new(h.suite, secrets.get(Label::ClientHandshakeTrafficSecret)),
                Secret13::new(h.suite, secrets.get(Label::ServerHandshakeTrafficSecret)),
            );
            let next = PerDir::new(
                Secret13::new(h.suite, secrets.get(Label::ClientTrafficSecret0)),
                Secret13::new(h.suite, secrets.get(Label::ServerTrafficSecret0)),
            );
            if pending.iter().all(Option::is_none) && next.iter().all(Option::is_none) {
                return None;
            }
            return Some(Decryptor {
                tls13: true,
                suite: h.suite,
                dirs: PerDir::default(),
                pending,
                next,
                opened_any: PerDir::default(),
                in_handshake: PerDir::new(true, true),
                passed: PerDir::default(),
                current: PerDir::default(),
            });
        }
        let master = secrets.get(Label::ClientRandom)?;
        let s = suite12(h.suite)?;
        let prf_kind = if h.version < 0x0303 { Prf::Md5Sha1 } else { s.prf };
        let (mac_len, key_len, iv_len) = match s.bulk {
            Bulk::Aead(k) => (
                0,
                k.key_len(),
                if k == cipher::AeadKind::ChaCha20Poly1305 { 12 } else { 4 },
            ),
            Bulk::Cbc { key_len, mac } => (mac.len(), key_len, 16),
        };
        let mut key_block = [0u8; MAX_KEY_BLOCK];
        let block = key_block.get_mut(..2 * (mac_len + key_len + iv_len))?;
        prf(
            prf_kind,
            master,
            b"key expansion",
            [h.server_random, h.client_random],
            block,
        )?;
        let mut rest: &[u8] = block;
        let mut take = |n: usize| -> &[u8] {
            let (v, r) = rest.split_at_checked(n).unwrap_or((&[], &[]));
            rest = r;
            v
        };
        let (cmac, smac) = (take(mac_len), take(mac_len));
        let (ckey, skey) = (take(key_len), take(key_len));
        let (civ, siv) = (take(iv_len), take(iv_len));
        let make = |key: &[u8], mac_key: &[u8], iv: &[u8]| -> Option<DirKeys> {
            let keys = match s.bulk {
                Bulk::Aead(k) if k == cipher::AeadKind::ChaCha20Poly1305 => Keys::XorNonce {
                    aead: Aead::new(k, key)?,
                    iv: iv.try_into().ok()?,
                },
                Bulk::Aead(k) => Keys::ExplicitNonce {
                    aead: Aead::new(k, key)?,
                    salt: iv.try_into().ok()?,
                },
                Bulk::Cbc { mac, .. } => Keys::Cbc {
                    key: key.to_vec(),
                    mac,
                    mac_key: mac_key.to_vec(),
                    iv: if h.version < 0x0302 {
                        Some(iv.try_into().ok()?)
                    } else {
                        None
                    },
                    encrypt_then_mac: h.encrypt_then_mac,
                },
            };
            Some(DirKeys { keys, seq: 0 })
        };
        Some(Decryptor {
            tls13: false,
            suite: h.suite,
            dirs: PerDir::new(make(ckey, cmac, civ), make(skey, smac, siv)),
            pending: PerDir::default(),
            next: PerDir::default(),
            opened_any: PerDir::default(),
            in_handshake: PerDir::default(),
            passed: PerDir::default(),
            current: PerDir::default(),
        })
    }

    /// Whether records of this direction are to be opened.
    pub fn wants(&self, dir: Direction) -> bool {
        self.dirs[dir].is_some() || self.pending[dir].is_some()
    }

    /// TLS 1.3: the direction's Finished was read; its next records use application keys.
    pub fn finished(&mut self, dir: Direction) {
        if self.tls13 && self.in_handshake[dir] {
            self.in_handshake[dir] = false;
            self.dirs[dir] = None;
            self.pending[dir] = self.next[dir].take();
            self.passed[dir] = 0;
        }
    }

    /// A record of this direction under its current keys that is left closed (application data
    /// nobody reads): it spends a sequence number, so the next record that is opened still opens.
    /// TLS 1.0 CBC chains each record's IV from the one before, which a record passed over does
    /// not give: that direction stops (its next records are not opened, and not counted as failed).
    pub fn pass(&mut self, dir: Direction) {
        match self.dirs[dir].as_mut() {
            Some(DirKeys {
                keys: Keys::Cbc { iv: Some(_), .. },
                ..
            }) => self.dirs[dir] = None,
            Some(k) => k.seq = k.seq.wrapping_add(1),
            None if self.pending[dir].is_some() => self.passed[dir] += 1,
            None => {}
        }
    }

    /// TLS 1.3: the direction sent a KeyUpdate (RFC 8446 §4.6.3): its next records use the keys of
    /// the next application secret, HKDF-Expand-Label(secret, "traffic upd", "", Hash.length),
    /// from sequence number 0.
    pub fn key_update(&mut self, dir: Direction) {
        let next = self.current[dir].take().and_then(|cur| {
            let (_, sha384) = suite13(self.suite)?;
            let mut out = [0u8; 48];
            let out = out.get_mut(..if sha384 { 48 } else { 32 })?;
            Prk::new(sha384, cur.get())?.expand_label("traffic upd", out)?;
            Secret13::new(self.suite, Some(out))
        });
        if self.tls13 && !self.in_handshake[dir] {
            self.dirs[dir] = None;
            self.pending[dir] = next;
            self.passed[dir] = 0;
        }
    }

    /// Opens one record (header fields and body as on the wire).
    pub fn open(&mut self, dir: Direction, typ: u8, version: u16, body: &[u8]) -> Opened {
        let tls13 = self.tls13;
        if body.len() > (1 << 14) + if tls13 { 256 } else { 2048 } {
            return Opened::Oversized;
        }
        if self.dirs[dir].is_none() {
            if let Some(s) = self.pending[dir].take() {
                self.dirs[dir] = tls13_keys(self.suite, s.get()).map(|k| DirKeys {
                    seq: self.passed[dir],
                    ..k
                });
                // Application secrets are kept for a KeyUpdate (handshake ones are never updated).
                if !self.in_handshake[dir] {
                    self.current[dir] = Some(s);
                }
            }
        }
        let Some(k) = self.dirs[dir].as_mut() else {
            return Opened::NoKey;
        };
        let out = if tls13 {
            open13(k, typ, version, body)
        } else {
            open12(k, typ, version, body)
        };
        match out {
            Some(p) => {
                k.seq = k.seq.wrapping_add(1);
                self.opened_any[dir] = true;
                p
            }
            None if tls13 && dir == Direction::ToServer && !self.opened_any[dir] && self.in_handshake[dir] => {
                Opened::Skipped
            }
            None => {
                self.dirs[dir] = None;
                self.next[dir] = None;
                Opened::Failed
            }
        }
    }
}

fn xor_nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *iv;
    for (b, s) in n.iter_mut().skip(4).zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

fn open13(k: &DirKeys, typ: u8, version: u16, body: &[u8]) -> Option<Opened> {
    let Keys::XorNonce { aead, iv } = &k.keys else {
        return None;
    };
    if body.len() > MAX_PLAINTEXT + 256 {
        return None;
    }
    let len = u16::try_from(body.len()).ok()?.to_be_bytes();
    let v = version.to_be_bytes();
    let aad = [typ, v[0], v[1], len[0], len[1]];
    let mut pt = open_spare(aead, &xor_nonce(iv, k.seq), &aad, body)?;
    // TLSInnerPlaintext: content, content type, zero padding.
    let Some(end) = pt.iter().rposition(|&b| b != 0) else {
        recycle(pt);
        return None;
    };
    let inner = pt.get(end).copied().unwrap_or(0);
    pt.truncate(end);
    Some(Opened::Plain(inner, pt))
}

/// The largest plaintext buffer kept for reuse (a record's worth).
const SPARE_CAPACITY: usize = MAX_PLAINTEXT + 2048;

thread_local! {
    /// A plaintext buffer given back by [`recycle`]: each record opens into it, so a thread
    /// allocates for plaintext once rather than once per record.
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

fn spare() -> Vec<u8> {
    SPARE.with(std::cell::Cell::take)
}

/// Gives back the plaintext of an [`Opened::Plain`] once read, for the next record to open
/// into (optional: dropping it is fine). Like a freed buffer, its bytes stay in memory until
/// overwritten; they never reach a report.
pub fn recycle(mut pt: Vec<u8>) {
    if pt.capacity() <= SPARE_CAPACITY {
        pt.clear();
        SPARE.with(|s| s.set(pt));
    }
}

/// [`Aead::open`] into the spare buffer; it goes back if the record does not open.
fn open_spare(aead: &Aead, nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    let mut pt = spare();
    if aead.open(nonce, aad, ct, &mut pt).is_none() {
        recycle(pt);
        return None;
    }
    Some(pt)
}

fn open12(k: &mut DirKeys, typ: u8, version: u16, body: &[u8]) -> Option<Opened> {
    let v = version.to_be_bytes();
    let seq = k.seq.to_be_bytes();
    // The AEAD's additional data and the MAC's header: sequence number, type, version, length.
    let aad = |len: usize| -> Option<[u8; 13]> {
        let l = u16::try_from(len).ok()?.to_be_bytes();
        let mut a = [0u8; 13];
        for (o, b) in a.iter_mut().zip(seq.iter().chain(&[typ, v[0], v[1], l[0], l[1]])) {
            *o = *b;
        }
        Some(a)
    };
    if body.len() > MAX_PLAINTEXT + 2048 {
        return None;
    }
    match &mut k.keys {
        Keys::XorNonce { aead, iv } => {
            let plen = body.len().checked_sub(16)?;
            let pt = open_spare(aead, &xor_nonce(iv, k.seq), &aad(plen)?, body)?;
            Some(Opened::Plain(typ, pt))
        }
        Keys::ExplicitNonce { aead, salt } => {
            let (explicit, ct) = body.split_at_checked(8)?;
            let tag = if matches!(aead, Aead::Aes128Ccm8(_) | Aead::Aes256Ccm8(_)) {
                8
            } else {
                16
            };
            let plen = ct.len().checked_sub(tag)?;
            let mut nonce = [0u8; 12];
            for (n, b) in nonce.iter_mut().zip(salt.iter().chain(explicit)) {
                *n = *b;
            }
            let pt = open_spare(aead, &nonce, &aad(plen)?, ct)?;
            Some(Opened::Plain(typ, pt))
        }
        Keys::Cbc {
            key,
            mac,
            mac_key,
            iv,
            encrypt_then_mac,
        } => {
            let ml = mac.len();
            // TLS 1.0 chains the IV from the previous record; later versions send it first.
            let (ivb, mut enc): ([u8; 16], &[u8]) = match iv {
                Some(chained) => (*chained, body),
                None => {
                    let (i, c) = body.split_at_checked(16)?;
                    (i.try_into().ok()?, c)
                }
            };
            if *encrypt_then_mac {
                let (e, tag) = enc.split_at_checked(enc.len().checked_sub(ml)?)?;
                let macd = body.get(..body.len() - ml)?;
                if !mac.verify(mac_key, &[&aad(macd.len())?, macd], tag) {
                    return None;
                }
                enc = e;
            }
            let next_iv: Option<[u8; 16]> = enc.get(enc.len().saturating_sub(16)..).and_then(|t| t.try_into().ok());
            let mut ct = spare();
            ct.extend_from_slice(enc);
            if !cbc_decrypt(key, &ivb, &mut ct) {
                recycle(ct);
                return None;
            }
            let Some(unpadded) = cbc_unpad(&ct) else {
                recycle(ct);
                return None;
            };
            ct.truncate(unpadded);
            if !*encrypt_then_mac {
                let Some(clen) = ct.len().checked_sub(ml) else {
                    recycle(ct);
                    return None;
                };
                let (content, tag) = ct.split_at(clen);
                let ok = aad(clen).is_some_and(|a| mac.verify(mac_key, &[&a, content], tag));
                if !ok {
                    recycle(ct);
                    return None;
                }
                ct.truncate(clen);
            }
            if let (Some(chained), Some(n)) = (iv.as_mut(), next_iv) {
                *chained = n;
            }
            Some(Opened::Plain(typ, ct))
        }
    }
}

/// The length of a CBC plaintext without its padding (each pad byte holds the pad's length),
/// if the padding is well formed.
fn cbc_unpad(pt: &[u8]) -> Option<usize> {
    let pad = usize::from(*pt.last()?);
    let unpadded = pt.len().checked_sub(pad + 1)?;
    pt.get(unpadded..)?
        .iter()
        .all(|&b| usize::from(b) == pad)
        .then_some(unpadded)
}

#[cfg(test)]
mod tests;
