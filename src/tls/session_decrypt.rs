//! The session's side of decryption: finding its keys by ClientHello random, opening its
//! encrypted records, and feeding the plaintext handshake messages and alerts to the same
//! parsing as cleartext ones. Only runs when the run has a key log ([`keylog::active`]).

use super::{ALERTS_KEPT, AlertEvent, State, TlsFacts, be24, byte, part};
use crate::flow::{At, Direction, PerDir};
use crate::tls::decrypt::{self, Decryptor, Hello, Opened};
use crate::tls::hello::ServerHello;
use crate::tls::http_status::{CertRefusal, cert_refusal, response_status};
use crate::tls::keylog;
use crate::tls::names::AlertDescription;
use crate::tls::{alert_sized, content};
use serde::Serialize;

/// Decrypted handshake messages remembered per session (for the evidence).
const MESSAGES_KEPT: usize = 16;

/// What the session did with the run's key log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeyUse {
    /// The key log has secrets for this session's ClientHello random.
    pub found: bool,
    /// The secrets fit the negotiated version and suite (records could be opened).
    pub usable: bool,
    /// Records opened, per direction.
    pub opened: PerDir<u32>,
    /// Records that did not open (wrong key or damaged bytes), per direction.
    pub failed: PerDir<u32>,
    /// TLS 1.3 early data records left closed.
    pub early_data_skipped: u32,
    /// TLS 1.3: the direction moved on to its application keys after its Finished.
    pub application_keys: PerDir<bool>,
    /// Decrypted handshake messages: direction, name, where.
    pub messages: Vec<(Direction, &'static str, At)>,
    /// After a record of one direction did not open, the other side sent application data that
    /// did: it accepted what it received, so the handshake went on.
    pub peer_went_on: bool,
    /// The client's first record after its Finished (see [`ClientNext`]).
    #[serde(skip)]
    pub client_next: Option<ClientNext>,
    /// The ClientHello random the keys were found for (public: it is in the ClientHello).
    #[serde(skip)]
    pub client_random: Option<[u8; 32]>,
    /// The server's first response, read only when it asked for a client certificate (see
    /// [`State::crypt_awaits_server`]).
    #[serde(skip)]
    pub server_answer: Option<ServerAnswer>,
    /// The status read so far, and the server application records opened looking for the answer.
    #[serde(skip)]
    pub answer_status: Option<u16>,
    #[serde(skip)]
    pub answer_records: u8,
}

/// What the server's first response said, and where (never the response itself: only the
/// status number and whether its page refuses the client's certificate,
/// [`crate::tls::http_status`]).
#[derive(Clone, Copy, Debug)]
pub struct ServerAnswer {
    pub status: Option<u16>,
    pub refusal: Option<CertRefusal>,
    pub at: At,
}

/// Server application records opened looking for its first response (HTTP/2 sends settings
/// first, and its page may follow its status; TLS 1.3 tickets are handshake records and do not
/// count).
const ANSWER_RECORDS_READ: u8 = 4;

impl KeyUse {
    /// Whether the server's encrypted handshake was read (its certificate, its alerts).
    pub fn server_read(&self) -> bool {
        self.opened[Direction::ToClient] > 0
    }

    /// Whether the client's encrypted handshake was read (its certificate, its alerts).
    pub fn client_read(&self) -> bool {
        self.opened[Direction::ToServer] > 0
    }

    /// One direction's records opened and the other's did not: the keys are right, so the
    /// record that failed was damaged on the way, and its receiver did not accept it (unless it
    /// then sent application data, [`KeyUse::peer_went_on`]).
    pub fn damaged(&self) -> bool {
        let [c, s] = [Direction::ToServer, Direction::ToClient];
        let one_sided = (self.opened[c] > 0 && self.failed[s] > 0) || (self.opened[s] > 0 && self.failed[c] > 0);
        one_sided && !self.peer_went_on
    }

    /// Whether any record opened.
    pub fn any_read(&self) -> bool {
        self.opened.iter().any(|n| *n > 0)
    }
}

/// The client's first record after its Finished, in a session whose keys opened: whether it went
/// on (application data, or anything but an alert) or closed at once with an alert it sealed.
#[derive(Clone, Copy, Debug)]
pub enum ClientNext {
    Alert(AlertDescription, At),
    Data(At),
}

/// Decryption state of a session in a run with a key log.
#[derive(Debug, Default)]
pub(super) struct Crypt {
    client_random: Option<[u8; 32]>,
    /// Set once the ServerHello was read: keys to look up on the first encrypted record.
    hello: Option<PendingHello>,
    dec: Option<Decryptor>,
    /// Decryption gave up (no keys, unknown suite): records are opaque again.
    off: bool,
    /// Handshake messages now parsed come from a decrypted record.
    pub(super) in_plaintext: bool,
}

#[derive(Debug)]
struct PendingHello {
    server_random: [u8; 32],
    version: u16,
    suite: u16,
    encrypt_then_mac: bool,
}

/// The 32-byte random of a hello message (header included).
fn random(msg: &[u8]) -> Option<[u8; 32]> {
    part(msg, 6, 38).try_into().ok()
}

impl Crypt {
    /// Whether records of this direction go to the decryptor rather than being skipped.
    pub(super) fn wants(&self, dir: Direction) -> bool {
        !self.off && self.hello.is_some() && self.dec.as_ref().is_none_or(|d| d.wants(dir))
    }
}

impl State {
    /// A ClientHello: keep its random if the run has keys.
    pub(super) fn crypt_client_hello(&mut self, msg: &[u8]) {
        if !keylog::active() {
            return;
        }
        let c = self.crypt.get_or_insert_with(Box::default);
        if c.client_random.is_none() {
            c.client_random = random(msg);
        }
    }

    /// A (real, not retry) ServerHello: what the keys will be derived for.
    pub(super) fn crypt_server_hello(&mut self, msg: &[u8], sh: &ServerHello) {
        let Some(c) = self.crypt.as_mut() else { return };
        let Some(server_random) = random(msg) else {
            c.off = true;
            return;
        };
        c.hello = Some(PendingHello {
            server_random,
            version: sh.version.0,
            suite: sh.cipher_suite.0,
            encrypt_then_mac: sh.extensions.as_slice().contains(&22),
        });
    }

    /// Looks the session's keys up (once; in `live`, again as the key log grows).
    fn crypt_start(&mut self) {
        let Some(c) = self.crypt.as_mut() else { return };
        if c.dec.is_some() || c.off {
            return;
        }
        let (Some(cr), Some(h)) = (c.client_random, c.hello.as_ref()) else {
            c.off = true;
            return;
        };
        let hello = Hello {
            client_random: &cr,
            server_random: &h.server_random,
            version: h.version,
            suite: h.suite,
            encrypt_then_mac: h.encrypt_then_mac,
        };
        // The decryptor is made under the key log's lock, from the secrets in place.
        let mut dec = keylog::with_secrets(&cr, |s| Decryptor::new(s, &hello));
        if dec.is_none() && keylog::refreshing() {
            keylog::refresh();
            dec = keylog::with_secrets(&cr, |s| Decryptor::new(s, &hello));
        }
        let ku = self.facts.keys.get_or_insert_with(Box::default);
        let Some(dec) = dec else {
            if !keylog::refreshing() {
                c.off = true;
            }
            return;
        };
        ku.found = true;
        ku.client_random = Some(cr);
        c.dec = dec;
        ku.usable = c.dec.is_some();
        if c.dec.is_none() {
            c.off = true;
        }
    }

    /// Whether this record (type, body length) is an encrypted one the decryptor should see.
    ///
    /// Only what the diagnosis reads: the handshake, and after it alerts. Application data is
    /// opened only to learn whether a side went on after the other's record did not open
    /// ([`KeyUse::peer_went_on`]). In TLS 1.3 a record under a side's application keys (after
    /// its Finished) is opened only when it has an alert's size (as without keys, where that size
    /// is what reads as an alert) or when the other side's record did not open: a ticket, a
    /// request or a response is not, and its keys are then never derived.
    pub(super) fn crypt_wants(&self, dir: Direction, typ: u8, len: usize) -> bool {
        let Some(c) = self.crypt.as_ref() else { return false };
        if !c.wants(dir) {
            return false;
        }
        let other_failed = self.facts.keys.as_ref().is_some_and(|k| k.failed[dir.flip()] > 0);
        let answer = dir == Direction::ToClient && self.crypt_awaits_server();
        if self.facts.is_tls13() {
            typ == content::APPLICATION_DATA
                && (self.facts.finished[dir].is_none() || alert_sized(len) || other_failed || answer)
        } else {
            self.dirs[dir].after_ccs
                && match typ {
                    content::HANDSHAKE | content::ALERT => true,
                    content::APPLICATION_DATA => other_failed || answer,
                    _ => false,
                }
        }
    }

    /// A sealed record left closed (not wanted): its sequence number is spent all the same.
    pub(super) fn crypt_pass(&mut self, dir: Direction, typ: u8) {
        let sealed = if self.facts.is_tls13() {
            typ == content::APPLICATION_DATA
        } else {
            self.dirs[dir].after_ccs
        };
        if let Some(d) = self.crypt.as_mut().and_then(|c| c.dec.as_mut()).filter(|_| sealed) {
            d.pass(dir);
        }
    }

    /// Whether the server's first response is still to be read: it asked for a client
    /// certificate, the client answered, and the handshake completed. A server that checks the
    /// certificate only then (nginx) refuses in its answer, not with an alert.
    pub(super) fn crypt_awaits_server(&self) -> bool {
        let f = &self.facts;
        f.certificate_request.is_some()
            && f.client_certificate.is_some()
            && f.finished[Direction::ToClient].is_some()
            && f.keys
                .as_deref()
                .is_some_and(|k| k.usable && k.server_answer.is_none() && k.answer_records < ANSWER_RECORDS_READ)
            && self.crypt.as_ref().is_some_and(|c| c.wants(Direction::ToClient))
    }

    /// An encrypted record, opened if the keys allow. The size-based facts are kept exactly as
    /// without keys, so a record that does not open leaves the session as it would have been.
    pub(super) fn crypt_record(&mut self, dir: Direction, typ: u8, version: u16, body: &[u8], at: At) {
        let after_finished = self.facts.finished[dir].is_some();
        self.crypt_start();
        self.facts.keys.get_or_insert_with(Box::default);
        let opened = match self.crypt.as_mut().and_then(|c| c.dec.as_mut()) {
            Some(d) => d.open(dir, typ, version, body),
            None => Opened::NoKey,
        };
        let tls13 = self.facts.is_tls13();
        let plain = match opened {
            Opened::Plain(inner, pt) => Some((inner, pt)),
            Opened::Failed => {
                if let Some(k) = self.facts.keys.as_mut() {
                    k.failed[dir] += 1;
                }
                self.facts.note("tls_record_not_decrypted");
                None
            }
            Opened::Skipped => {
                if let Some(k) = self.facts.keys.as_mut() {
                    k.early_data_skipped += 1;
                }
                None
            }
            Opened::NoKey | Opened::Oversized => None,
        };
        if after_finished {
            let alert = match &plain {
                Some((content::ALERT, pt)) => Some(AlertDescription(byte(pt, 1))),
                _ => None,
            };
            self.crypt_client_next(dir, alert, at);
        }
        // A TLS <= 1.2 alert that opened is recorded as read, not as an encrypted one.
        if tls13 || typ != content::ALERT || plain.is_none() {
            self.opaque_record(dir, typ, body.len(), at);
        }
        let Some((inner, pt)) = plain else { return };
        if let Some(k) = self.facts.keys.as_mut() {
            k.opened[dir] += 1;
        }
        match inner {
            content::HANDSHAKE if tls13 => {
                let was = self.facts.finished[dir];
                if let Some(c) = self.crypt.as_mut() {
                    c.in_plaintext = true;
                }
                self.handshake_bytes(dir, &pt, at);
                if let Some(c) = self.crypt.as_mut() {
                    c.in_plaintext = false;
                    if was.is_some() && key_update(&pt) {
                        if let Some(d) = c.dec.as_mut() {
                            d.key_update(dir);
                        }
                    }
                    if was.is_none() && self.facts.finished[dir].is_some() {
                        if let Some(d) = c.dec.as_mut() {
                            d.finished(dir);
                            if let Some(k) = self.facts.keys.as_mut() {
                                k.application_keys[dir] = d.wants(dir);
                            }
                        }
                    }
                }
            }
            // TLS <= 1.2: Finished (already placed by its position after ChangeCipherSpec).
            content::HANDSHAKE if byte(&pt, 0) == 20 => self.note_decrypted(dir, "Finished", at),
            content::ALERT => {
                self.facts.hist(dir, 'l', false);
                self.facts.last_progress[dir] = Some(at);
                for a in pt.chunks_exact(2).take(ALERTS_KEPT) {
                    if self.facts.alerts.len() < ALERTS_KEPT {
                        self.facts.alerts.push(AlertEvent {
                            direction: dir,
                            at,
                            level: Some(byte(a, 0)),
                            description: Some(AlertDescription(byte(a, 1))),
                            encrypted: false,
                            record_len: body.len(),
                        });
                    }
                }
                self.note_decrypted(dir, "Alert", at);
            }
            content::APPLICATION_DATA => {
                // Dropped unread; only that it came matters, and what the awaited answer says.
                let answer = dir == Direction::ToClient && self.crypt_awaits_server();
                let h2 = self.facts.server_hello.as_ref().and_then(|sh| sh.alpn.as_deref()) == Some("h2");
                if let Some(k) = self.facts.keys.as_mut() {
                    k.peer_went_on |= k.failed[dir.flip()] > 0;
                    if answer {
                        k.answer_records += 1;
                        // An interim 1xx is not the answer.
                        k.answer_status = k.answer_status.or(response_status(&pt, h2).filter(|s| *s >= 200));
                        let refusal = cert_refusal(&pt);
                        if refusal.is_some()
                            || k.answer_status.is_some_and(|s| !(400..500).contains(&s))
                            || k.answer_records >= ANSWER_RECORDS_READ
                        {
                            k.server_answer = Some(ServerAnswer {
                                status: k.answer_status,
                                refusal,
                                at,
                            });
                        }
                    }
                }
                if answer && self.facts.keys.as_ref().is_some_and(|k| k.server_answer.is_some()) {
                    self.note_decrypted(dir, "HTTP response", at);
                }
            }
            _ => {}
        }
        decrypt::recycle(pt);
    }

    /// Notes the client's first record after its Finished (`alert`: its decrypted description),
    /// in a session whose keys opened. Called for every encrypted record of a keyed session; the
    /// first call after the client's Finished decides.
    pub(super) fn crypt_client_next(&mut self, dir: Direction, alert: Option<AlertDescription>, at: At) {
        if dir != Direction::ToServer || self.facts.finished[dir].is_none() {
            return;
        }
        if let Some(k) = self.facts.keys.as_mut().filter(|k| k.usable && k.client_next.is_none()) {
            k.client_next = Some(match alert {
                Some(a) => ClientNext::Alert(a, at),
                None => ClientNext::Data(at),
            });
        }
    }

    /// Whether a completed handshake is still read: with keys, for the client's next record when
    /// the certificate does not cover the client's SNI and its answer is not yet seen (a client
    /// that checks the name after the handshake closes at once with an alert), or for the
    /// server's first response ([`State::crypt_awaits_server`]).
    pub(super) fn crypt_reads_on(&self) -> bool {
        self.facts
            .keys
            .as_deref()
            .is_some_and(|k| k.usable && k.client_next.is_none())
            && self.facts.sni_not_covered()
            || self.crypt_awaits_server()
    }

    /// Notes a message read from a decrypted record (for the evidence).
    pub(super) fn note_decrypted(&mut self, dir: Direction, name: &'static str, at: At) {
        if let Some(k) = self.facts.keys.as_mut() {
            if k.messages.len() < MESSAGES_KEPT {
                if k.messages.capacity() == 0 {
                    // One allocation for a handshake's usual few messages.
                    k.messages.reserve_exact(8);
                }
                k.messages.push((dir, name, at));
            }
        }
    }

    /// Whether handshake messages now parsed come from a decrypted record.
    pub(super) fn in_plaintext(&self) -> bool {
        self.crypt.as_ref().is_some_and(|c| c.in_plaintext)
    }
}

impl TlsFacts {
    /// Whether the server's (parsed) certificate does not cover the ClientHello's SNI.
    pub fn sni_not_covered(&self) -> bool {
        let name = self.sni();
        match (name, self.server_certificates.first()) {
            (Some(n), Some(leaf)) => leaf.parse_error.is_none() && !leaf.covers(n),
            _ => false,
        }
    }
}

/// DER certificates of a TLS 1.3 Certificate message (header included); empty if malformed.
pub(super) fn certificate_chain13(msg: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let ctx_len = usize::from(byte(msg, 4));
    let at = 5 + ctx_len;
    let total = be24(msg, at) as usize;
    let mut list = part(msg, at + 3, at + 3 + total);
    while let Some((len, rest)) = list.split_first_chunk::<3>() {
        let n = be24(len, 0) as usize;
        let Some((cert, more)) = rest.split_at_checked(n) else {
            break;
        };
        out.push(cert);
        let Some((ext, more)) = more.split_first_chunk::<2>() else {
            break;
        };
        list = more.get(usize::from(u16::from_be_bytes(*ext))..).unwrap_or(&[]);
    }
    out
}

/// A TLS 1.3 handshake message read from a decrypted record that cleartext TLS 1.2 would have
/// shown otherwise: EncryptedExtensions (ALPN), Certificate (either side), Finished.
pub(super) fn tls13_message(f: &mut TlsFacts, dir: Direction, msg: &[u8], at: At) {
    match (byte(msg, 0), dir) {
        (8, Direction::ToClient) => {
            if let Some(sh) = f.server_hello.as_mut().filter(|sh| sh.alpn.is_none()) {
                sh.alpn = crate::tls::hello::encrypted_extensions_alpn(msg);
            }
        }
        (11, Direction::ToClient) if f.server_certificate.is_none() => {
            f.set_server_chain(at, &certificate_chain13(msg));
        }
        (11, Direction::ToServer) => f.client_certificate = Some((at, certificate_chain13(msg).len())),
        (20, _) => {
            f.finished[dir].get_or_insert(at);
        }
        _ => {}
    }
}

/// Whether a TLS 1.3 record's handshake messages hold a KeyUpdate (type 24).
fn key_update(pt: &[u8]) -> bool {
    let mut rest = pt;
    // A record holds a few messages; the bound only keeps hostile input linear.
    for _ in 0..64 {
        let Some((head, body)) = rest.split_first_chunk::<4>() else {
            return false;
        };
        if head[0] == 24 {
            return true;
        }
        rest = body.get(be24(head, 1) as usize..).unwrap_or(&[]);
    }
    false
}
