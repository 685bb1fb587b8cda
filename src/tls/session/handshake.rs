//! Handshake messages: reassembled across records, parsed, and recorded in the facts.

use super::{Direction, State, be24, byte, part};
use crate::flow::At;
use crate::limits::MAX_HANDSHAKE_MESSAGE;
use crate::tls::hello::{self, ClientHello};

impl State {
    pub(super) fn handshake_bytes(&mut self, dir: Direction, mut body: &[u8], at: At) {
        let d = dir;
        if self.dirs[d].hs_skip > 0 {
            let take = self.dirs[d].hs_skip.min(body.len());
            self.dirs[d].hs_skip -= take;
            body = body.get(take..).unwrap_or(&[]);
        }
        if body.is_empty() {
            return;
        }
        if self.dirs[d].hs.is_empty() {
            // Messages wholly inside this record are parsed in place; only a message that goes
            // on in the next record is buffered.
            let used = self.handshake_messages(dir, body, at);
            if let Some(rest) = body.get(used..) {
                self.dirs[d].hs.extend_from_slice(rest);
            }
            return;
        }
        let mut hs = std::mem::take(&mut self.dirs[d].hs);
        hs.extend_from_slice(body);
        let pos = self.handshake_messages(dir, &hs, at);
        hs.drain(..pos.min(hs.len()));
        self.dirs[d].hs = hs;
    }

    /// Handles the whole handshake messages at the start of `hs`; returns the bytes used (all
    /// of them after an over-long message, whose rest is then skipped).
    fn handshake_messages(&mut self, dir: Direction, hs: &[u8], at: At) -> usize {
        let d = dir;
        let mut pos = 0;
        while hs.len() - pos >= 4 {
            let len = be24(hs, pos + 1) as usize;
            if len > MAX_HANDSHAKE_MESSAGE {
                self.facts.note("handshake_too_long");
                let have = hs.len() - pos - 4;
                self.dirs[d].hs_skip = len - have.min(len);
                let typ = byte(hs, pos);
                self.message_seen(dir, typ, at);
                pos = hs.len();
                break;
            }
            let Some(msg) = hs.get(pos..pos + 4 + len) else {
                break;
            };
            self.message(dir, msg, at);
            pos += 4 + len;
        }
        pos
    }

    /// Marks a handshake message seen (history, last message) without parsing its body.
    fn message_seen(&mut self, dir: Direction, typ: u8, at: At) -> &'static str {
        let (c, name) = match typ {
            0 => ('h', "HelloRequest"),
            1 => ('c', "ClientHello"),
            2 => ('s', "ServerHello"),
            4 => ('t', "NewSessionTicket"),
            8 => ('o', "EncryptedExtensions"),
            11 => ('x', "Certificate"),
            12 => ('k', "ServerKeyExchange"),
            13 => ('r', "CertificateRequest"),
            14 => ('n', "ServerHelloDone"),
            15 => ('y', "CertificateVerify"),
            16 => ('g', "ClientKeyExchange"),
            20 => ('f', "Finished"),
            22 => ('u', "CertificateStatus"),
            24 => ('w', "KeyUpdate"),
            _ => ('z', "Unknown"),
        };
        self.facts.hist(dir, c, false);
        self.facts.last_message[dir] = Some((name, at));
        self.facts.last_progress[dir] = Some(at);
        if self.crypt.is_some() && self.in_plaintext() {
            self.note_decrypted(dir, name, at);
        }
        name
    }

    fn message(&mut self, dir: Direction, msg: &[u8], at: At) {
        let typ = byte(msg, 0);
        let record_version = self.dirs[dir].rec_version;
        let tls13_plain = self.crypt.is_some() && self.in_plaintext() && self.facts.is_tls13();
        // A ServerHello is parsed once, for the keys and for the facts.
        let mut server_hello = None;
        match typ {
            1 if dir == Direction::ToServer => self.crypt_client_hello(msg),
            2 if self.crypt.is_some() && self.facts.server_hello.is_none() => {
                let sh = hello::server_hello(msg, at);
                if let Some(sh) = sh.as_ref().filter(|sh| !sh.hello_retry) {
                    self.crypt_server_hello(msg, sh);
                }
                server_hello = Some(sh);
            }
            _ => {}
        }
        let f = &mut self.facts;
        match (typ, dir) {
            (8 | 11 | 20, _) if tls13_plain => super::crypt::tls13_message(f, dir, msg, at),
            (1, Direction::ToServer) => {
                let ch = hello::client_hello(msg, record_version, at);
                match ch {
                    Some(ch) if f.client_hello.is_none() => {
                        f.client_hello = Some(Box::new(ch));
                        f.at_client_hello = Some(at);
                    }
                    Some(ch) => {
                        if f.client_hello_retry.is_none() {
                            f.client_hello_retry = Some(Box::new(ch));
                        } else {
                            f.note("extra_client_hello");
                        }
                    }
                    None => f.note("unparsable_client_hello"),
                }
                if f.client_hello.is_none() {
                    // Keep a placeholder so the session is known to have started TLS.
                    f.client_hello = Some(Box::new(ClientHello {
                        at,
                        ..ClientHello::default()
                    }));
                    f.at_client_hello = Some(at);
                }
            }
            (2, Direction::ToClient) => match server_hello.unwrap_or_else(|| hello::server_hello(msg, at)) {
                Some(sh) if sh.hello_retry => {
                    f.hist(dir, 'j', false);
                    f.last_message[Direction::ToClient] = Some(("HelloRetryRequest", at));
                    f.hello_retry_request = Some(Box::new(sh));
                    return;
                }
                Some(sh) => {
                    if f.server_hello.is_none() {
                        f.negotiated = Some(sh.version);
                        f.server_hello = Some(Box::new(sh));
                        f.at_server_hello = Some(at);
                    } else {
                        f.note("extra_server_hello");
                    }
                }
                None => f.note("unparsable_server_hello"),
            },
            (11, Direction::ToClient) if f.server_certificate.is_none() => {
                f.set_server_chain(at, &certificate_chain(msg));
            }
            (11, Direction::ToServer) => {
                f.client_certificate = Some((at, certificate_chain(msg).len()));
            }
            (12, _) => {
                f.server_key_exchange.get_or_insert(at);
                let suite = f.server_hello.as_ref().map(|sh| sh.cipher_suite);
                f.server_key_exchange_group = f.server_key_exchange_group.or(hello::ecdhe_group(msg, suite));
            }
            (13, _) => {
                f.certificate_request.get_or_insert(at);
            }
            (14, _) => {
                f.server_hello_done.get_or_insert(at);
            }
            (16, _) => {
                f.client_key_exchange.get_or_insert(at);
            }
            (4, _) => {
                f.new_session_ticket.get_or_insert(at);
            }
            _ => {}
        }
        self.message_seen(dir, typ, at);
    }
}

/// DER certificates of a TLS <= 1.2 Certificate message (header included); empty if malformed.
fn certificate_chain(msg: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if msg.len() < 7 {
        return out;
    }
    let total = be24(msg, 4) as usize;
    let mut list = part(msg, 7, 7 + total);
    while let Some((len, rest)) = list.split_first_chunk::<3>() {
        let n = be24(len, 0) as usize;
        let Some((cert, more)) = rest.split_at_checked(n) else {
            break;
        };
        out.push(cert);
        list = more;
    }
    out
}
