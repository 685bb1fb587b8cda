//! Where TLS starts: the plaintext preamble in front of a handshake.
//!
//! What it is: recognition of the client's first bytes as the start of a protocol that upgrades to
//! TLS in-band ([`recognise`]), and a [`Preamble`] that follows both directions of such a
//! connection until the go-ahead: STARTTLS of SMTP (RFC 3207), IMAP (RFC 3501 §6.2.1), POP3 `STLS`
//! (RFC 2595), FTP `AUTH TLS` (RFC 4217), XMPP `<starttls/>` (RFC 6120 §5), LDAP's StartTLS
//! extended operation (RFC 4511 §4.14), PostgreSQL's SSLRequest, an HTTP `CONNECT` proxy
//! (RFC 9110 §9.3.6), SOCKS4/4a and SOCKS5 (RFC 1928, RFC 1929). Each direction switches to TLS
//! at the first byte after its last preamble unit: the client's after its request, the server's
//! after its go-ahead.
//!
//! What it is not: a parser of those protocols. It reads lines, BER messages or SOCKS messages
//! only as far as the upgrade needs, and never the content of mail, directories or queries.
//!
//! Guarantees: every buffer is capped ([`MAX_PREAMBLE_BYTES`] per direction in all,
//! [`MAX_UNIT`] for one line or message); past a cap the preamble gives up
//! ([`Step::GaveUp`]) and the connection is not read further.

use super::hello::printable;
use crate::flow::{At, Direction, PerDir};
use serde::Serialize;

pub use crate::limits::{MAX_PREAMBLE_BYTES, MAX_PREAMBLE_UNIT as MAX_UNIT};

/// Characters of a request or reply kept for the report.
const SHOWN: usize = 80;

/// The protocols whose preamble is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Smtp,
    Imap,
    Pop3,
    Ftp,
    Xmpp,
    Ldap,
    Postgres,
    HttpConnect,
    Socks4,
    Socks5,
}

impl Protocol {
    /// A proxy (the tunnel may carry something other than TLS) rather than a STARTTLS upgrade.
    pub fn is_proxy(self) -> bool {
        matches!(self, Protocol::HttpConnect | Protocol::Socks4 | Protocol::Socks5)
    }

    /// The plaintext protocol itself, for sentences.
    pub fn plain_name(self) -> &'static str {
        match self {
            Protocol::Smtp => "SMTP",
            Protocol::Imap => "IMAP",
            Protocol::Pop3 => "POP3",
            Protocol::Ftp => "FTP",
            Protocol::Xmpp => "XMPP",
            Protocol::Ldap => "LDAP",
            Protocol::Postgres => "PostgreSQL",
            Protocol::HttpConnect => "HTTP (proxy)",
            Protocol::Socks4 => "SOCKS4",
            Protocol::Socks5 => "SOCKS5",
        }
    }

    /// Name for sentences.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "SMTP STARTTLS",
            Protocol::Imap => "IMAP STARTTLS",
            Protocol::Pop3 => "POP3 STLS",
            Protocol::Ftp => "FTP AUTH TLS",
            Protocol::Xmpp => "XMPP STARTTLS",
            Protocol::Ldap => "LDAP StartTLS",
            Protocol::Postgres => "PostgreSQL SSLRequest",
            Protocol::HttpConnect => "HTTP CONNECT",
            Protocol::Socks4 => "SOCKS4",
            Protocol::Socks5 => "SOCKS5",
        }
    }
}

/// How the preamble ended (so far).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreambleOutcome {
    /// No upgrade requested (yet).
    #[default]
    NotRequested,
    /// The client asked for TLS (or a tunnel); no answer yet.
    Requested,
    /// The server agreed: TLS follows in both directions.
    Upgraded,
    /// The server (or proxy) refused.
    Refused,
    /// The preamble went past its caps or broke its protocol: not followed further.
    GaveUp,
}

/// What the preamble showed, for the verdict and the report.
#[derive(Clone, Debug, Serialize)]
pub struct PreambleFacts {
    pub protocol: Protocol,
    pub outcome: PreambleOutcome,
    /// The client's upgrade request (or proxy request), shown escaped.
    pub request: Option<(At, String)>,
    /// The server's answer to it.
    pub reply: Option<(At, String)>,
    /// Proxies: the host and port the client asked for.
    pub target: Option<String>,
    /// Where the preamble began (the client's first byte).
    pub began: At,
}

/// What feeding bytes to the preamble did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Everything was read as preamble.
    More,
    /// This direction switches to TLS; these bytes (possibly none) are its first TLS bytes.
    Tls(Vec<u8>),
    /// The server refused the upgrade.
    Refused,
    /// A cap was passed or the protocol was broken: stop reading.
    GaveUp,
}

/// Whether `b` starts like a TLS ClientHello record (handshake record, version 3.x, message type
/// ClientHello) or an SSLv2 ClientHello.
pub fn looks_like_client_hello(b: &[u8]) -> bool {
    let be16 = |i: usize| usize::from(u16::from_be_bytes([byte(b, i), byte(b, i + 1)]));
    match b {
        // Record header, then the handshake header of a ClientHello that fits a record.
        [0x16, 3, minor, _, _, 1, ..] => *minor <= 4 && (4..=crate::limits::MAX_TLS_RECORD).contains(&be16(3)),
        [0x16, 3, minor, ..] if b.len() < 6 => *minor <= 4,
        // SSLv2: 2-byte header, CLIENT-HELLO, version 0.2 or 3.x, cipher specs of 3 bytes each,
        // a 16..32-byte challenge, lengths that add up to the record's.
        [h, _, 1, major, minor, ..] if h & 0x80 != 0 && b.len() >= 11 => {
            let (specs, sid, challenge) = (be16(5), be16(7), be16(9));
            let total = 2 + (usize::from(h & 0x7f) << 8 | usize::from(byte(b, 1)));
            ((*major == 0 && *minor == 2) || (*major == 3 && *minor <= 4))
                && specs > 0
                && specs % 3 == 0
                && (16..=32).contains(&challenge)
                && total == 11 + specs + sid + challenge
        }
        _ => false,
    }
}

/// The protocol whose preamble `first` (the client's first bytes) starts, if any. `banner` is
/// what the server said before, if it spoke first.
pub fn recognise(first: &[u8], banner: Option<&[u8]>) -> Option<Protocol> {
    let word = |w: &[u8]| first.len() > w.len() && starts_ci(first, w);
    let banner_starts = |p: &[u8]| banner.is_some_and(|b| b.starts_with(p));
    if word(b"EHLO ") || word(b"HELO ") || word(b"EHLO\r") {
        return Some(Protocol::Smtp);
    }
    if word(b"AUTH TLS") || word(b"AUTH SSL") || (banner_starts(b"220") && (word(b"FEAT\r") || word(b"FEAT\n"))) {
        return Some(Protocol::Ftp);
    }
    if word(b"STARTTLS\r") || word(b"STARTTLS\n") {
        return Some(Protocol::Smtp);
    }
    if word(b"CAPA\r") || word(b"CAPA\n") || word(b"STLS\r") || word(b"STLS\n") {
        return Some(Protocol::Pop3);
    }
    if word(b"CONNECT ") {
        return Some(Protocol::HttpConnect);
    }
    if word(b"<?xml") || word(b"<stream:stream") {
        return Some(Protocol::Xmpp);
    }
    if let Some(tag_end) = imap_tag(first) {
        let rest = first.get(tag_end + 1..).unwrap_or(&[]);
        let cmd = |c: &[u8]| starts_ci(rest, c);
        if cmd(b"STARTTLS") || cmd(b"CAPABILITY") || (banner_starts(b"* OK") && cmd(b"ID ")) {
            return Some(Protocol::Imap);
        }
    }
    if first.starts_with(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        || first.starts_with(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30])
    {
        return Some(Protocol::Postgres);
    }
    if first.first() == Some(&0x30) && ldap_start_tls(first) {
        return Some(Protocol::Ldap);
    }
    match first {
        [4, 1, _, _, _, _, _, _, ..] if first.iter().skip(8).any(|&c| c == 0) => {
            return Some(Protocol::Socks4);
        }
        [5, n, methods @ ..]
            if (1..=16).contains(n)
                && methods.len() >= usize::from(*n)
                && methods.iter().take(usize::from(*n)).all(|&m| m <= 0x09 || m >= 0x80) =>
        {
            return Some(Protocol::Socks5);
        }
        _ => {}
    }
    None
}

/// Whether the client's first bytes `first` could still become a recognised preamble with more
/// bytes (a text line without its end yet, a binary request not yet whole): then they are not
/// judged yet, so that the verdict does not depend on how the bytes were cut into segments.
/// Past [`crate::limits::FIRST_BYTES_KEPT`] bytes, never.
pub fn needs_more(first: &[u8]) -> bool {
    if first.len() >= crate::limits::FIRST_BYTES_KEPT {
        return false;
    }
    match first.first() {
        None => true,
        Some(0x30) => {
            !matches!(ber_len(first), Err(()) | Ok(Some(_)))
                || ber_len(first).is_ok_and(|n| n.is_some_and(|n| n > first.len()))
        }
        Some(0) => first.len() < 8,
        Some(4) => first.len() < 9 || !first.iter().skip(8).any(|&c| c == 0),
        Some(5) => first.len() < 2 + usize::from(byte(first, 1)),
        Some(_) => first
            .iter()
            .all(|&c| c.is_ascii_graphic() || matches!(c, b' ' | b'\r' | b'\t')),
    }
}

/// End of an IMAP tag (`a001 `): the index of the space after 1..=32 tag characters.
fn imap_tag(b: &[u8]) -> Option<usize> {
    let end = b.iter().take(33).position(|&c| c == b' ')?;
    let tag = b.get(..end)?;
    (!tag.is_empty()
        && tag
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')))
    .then_some(end)
}

/// The StartTLS extended operation's OID (RFC 4511 §4.14.1).
const LDAP_START_TLS: &[u8] = b"1.3.6.1.4.1.1466.20037";

/// Whether a BER message holds an LDAP ExtendedRequest (`[APPLICATION 23]`) naming StartTLS.
fn ldap_start_tls(msg: &[u8]) -> bool {
    let Some((0x30, body)) = tlv(msg) else { return false };
    // messageID, then the protocolOp.
    let Some((0x02, _, after_id)) = tlv_split(body) else {
        return false;
    };
    let Some((0x77, op, _)) = tlv_split(after_id) else {
        return false;
    };
    matches!(tlv(op), Some((0x80, name)) if name == LDAP_START_TLS)
}

/// The LDAP resultCode of an ExtendedResponse (`[APPLICATION 24]`) message, if `msg` is one.
fn ldap_extended_result(msg: &[u8]) -> Option<u8> {
    let (0x30, body) = tlv(msg)? else { return None };
    let (0x02, _, after_id) = tlv_split(body)? else {
        return None;
    };
    let (0x78, op, _) = tlv_split(after_id)? else {
        return None;
    };
    match tlv(op)? {
        (0x0a, [rc]) => Some(*rc),
        _ => None,
    }
}

/// Length of the BER element at the start of `b` (header and content), once it is all there;
/// `Err(())` when the header is not BER we accept.
fn ber_len(b: &[u8]) -> Result<Option<usize>, ()> {
    let Some(&l0) = b.get(1) else { return Ok(None) };
    let (hdr, len) = if l0 & 0x80 == 0 {
        (2, usize::from(l0))
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 3 {
            return Err(());
        }
        let Some(bytes) = b.get(2..2 + n) else { return Ok(None) };
        (2 + n, bytes.iter().fold(0usize, |a, &x| a << 8 | usize::from(x)))
    };
    Ok(Some(hdr + len))
}

/// Tag and content of the BER element that is all of `b`'s start.
fn tlv(b: &[u8]) -> Option<(u8, &[u8])> {
    tlv_split(b).map(|(t, c, _)| (t, c))
}

/// Tag, content and what follows of the BER element at the start of `b`.
fn tlv_split(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let total = ber_len(b).ok()??;
    let l0 = *b.get(1)?;
    let hdr = if l0 & 0x80 == 0 { 2 } else { 2 + usize::from(l0 & 0x7f) };
    Some((tag, b.get(hdr..total)?, b.get(total..)?))
}

/// Per-protocol progress.
#[derive(Debug, Default)]
struct Progress {
    /// IMAP: the tag of the STARTTLS command.
    tag: Vec<u8>,
    /// SOCKS5: the client's greeting is read; the method the server chose.
    socks_greeted: bool,
    socks_method: Option<u8>,
    socks_auth_sent: bool,
    socks_auth_ok: bool,
    /// PostgreSQL: a GSSENCRequest waits for its one-byte answer.
    gss_pending: bool,
}

/// The preamble of one connection (see the module documentation).
#[derive(Debug)]
pub struct Preamble {
    pub facts: PreambleFacts,
    buf: PerDir<Vec<u8>>,
    read: PerDir<usize>,
    /// Each direction switched to TLS.
    switched: PerDir<bool>,
    p: Progress,
}

impl Preamble {
    /// A preamble of `protocol` beginning at the client's first byte.
    pub fn new(protocol: Protocol, began: At) -> Preamble {
        Preamble {
            facts: PreambleFacts {
                protocol,
                outcome: PreambleOutcome::NotRequested,
                request: None,
                reply: None,
                target: None,
                began,
            },
            buf: PerDir::default(),
            read: PerDir::default(),
            switched: PerDir::default(),
            p: Progress::default(),
        }
    }

    /// Whether direction `d` has switched to TLS.
    pub fn switched(&self, d: Direction) -> bool {
        self.switched[d]
    }

    /// Reads bytes of direction `dir`.
    pub fn feed(&mut self, dir: Direction, data: &[u8], at: At) -> Step {
        if self.switched[dir] {
            return Step::Tls(data.to_vec());
        }
        let mut data = data;
        loop {
            let room = MAX_UNIT.saturating_sub(self.buf[dir].len());
            let (now, later) = data.split_at(room.min(data.len()));
            self.read[dir] = self.read[dir].saturating_add(now.len());
            self.buf[dir].extend_from_slice(now);
            match self.units(dir, at) {
                Step::Tls(mut rest) => {
                    rest.extend_from_slice(later);
                    return Step::Tls(rest);
                }
                Step::More if self.buf[dir].len() >= MAX_UNIT || self.read[dir] > MAX_PREAMBLE_BYTES => {
                    return self.give_up();
                }
                Step::More if !later.is_empty() => data = later,
                s => return s,
            }
        }
    }

    fn give_up(&mut self) -> Step {
        self.facts.outcome = PreambleOutcome::GaveUp;
        Step::GaveUp
    }

    /// Handles the whole units at the start of `dir`'s buffer.
    fn units(&mut self, dir: Direction, at: At) -> Step {
        loop {
            let buf = &self.buf[dir];
            let unit = match self.unit_len(dir) {
                Ok(Some(n)) => n,
                Ok(None) => return Step::More,
                Err(()) => return self.give_up(),
            };
            let u: Vec<u8> = buf.get(..unit).unwrap_or(&[]).to_vec();
            let used = unit.min(self.buf[dir].len());
            self.buf[dir].drain(..used);
            let step = match dir {
                Direction::ToServer => self.client_unit(&u, at),
                Direction::ToClient => self.server_unit(&u, at),
            };
            match step {
                Step::More => continue,
                Step::Tls(_) => {
                    self.switched[dir] = true;
                    return Step::Tls(std::mem::take(&mut self.buf[dir]));
                }
                s => return s,
            }
        }
    }

    /// Length of the next whole unit (line, XML element, BER message, SOCKS message) in `dir`'s
    /// buffer; `None` while it is incomplete.
    fn unit_len(&self, dir: Direction) -> Result<Option<usize>, ()> {
        let b = &self.buf[dir];
        if b.is_empty() {
            return Ok(None);
        }
        let line = || Ok(b.iter().position(|&c| c == b'\n').map(|i| i + 1));
        match (self.facts.protocol, dir) {
            (Protocol::Smtp | Protocol::Imap | Protocol::Pop3 | Protocol::Ftp, _) => line(),
            (Protocol::HttpConnect, _) => Ok(find(b, b"\r\n\r\n")
                .map(|i| i + 4)
                .or_else(|| find(b, b"\n\n").map(|i| i + 2))),
            (Protocol::Xmpp, _) => Ok(b.iter().position(|&c| c == b'>').map(|i| i + 1)),
            (Protocol::Ldap, _) => {
                if b.first() != Some(&0x30) {
                    return Err(());
                }
                ber_len(b).map(|n| n.filter(|&n| n <= b.len())).and_then(|n| {
                    if n.is_some_and(|n| n > MAX_UNIT) {
                        Err(())
                    } else {
                        Ok(n)
                    }
                })
            }
            (Protocol::Postgres, Direction::ToServer) => Ok((b.len() >= 8).then_some(8)),
            (Protocol::Postgres, Direction::ToClient) => Ok(Some(1)),
            (Protocol::Socks4, Direction::ToServer) => {
                // VN CD DSTPORT DSTIP USERID NUL [HOST NUL] (4a: DSTIP 0.0.0.x, x != 0).
                let Some(nul) = b.iter().skip(8).position(|&c| c == 0).map(|i| i + 8) else {
                    return Ok(None);
                };
                let is_4a = b.get(4..7) == Some(&[0, 0, 0]) && b.get(7).is_some_and(|&x| x != 0);
                if !is_4a {
                    return Ok(Some(nul + 1));
                }
                Ok(b.iter().skip(nul + 1).position(|&c| c == 0).map(|i| nul + 1 + i + 1))
            }
            (Protocol::Socks4, Direction::ToClient) => Ok((b.len() >= 8).then_some(8)),
            (Protocol::Socks5, Direction::ToServer) => {
                if !self.p.socks_greeted {
                    let n = usize::from(*b.get(1).unwrap_or(&0));
                    return Ok((b.len() >= 2 + n).then_some(2 + n));
                }
                if self.p.socks_method == Some(2) && !self.p.socks_auth_sent {
                    // RFC 1929: VER ULEN UNAME PLEN PASSWD.
                    let ulen = usize::from(*b.get(1).unwrap_or(&0));
                    let Some(&plen) = b.get(2 + ulen) else { return Ok(None) };
                    let n = 3 + ulen + usize::from(plen);
                    return Ok((b.len() >= n).then_some(n));
                }
                socks5_addr_msg(b)
            }
            (Protocol::Socks5, Direction::ToClient) => {
                if self.p.socks_method.is_none() {
                    return Ok((b.len() >= 2).then_some(2));
                }
                if self.p.socks_method == Some(2) && !self.p.socks_auth_ok {
                    return Ok((b.len() >= 2).then_some(2));
                }
                socks5_addr_msg(b)
            }
        }
    }

    fn request(&mut self, u: &[u8], at: At) {
        self.facts.outcome = PreambleOutcome::Requested;
        self.facts.request = Some((at, shown(u)));
    }

    fn refuse(&mut self, u: &[u8], at: At) -> Step {
        self.facts.outcome = PreambleOutcome::Refused;
        self.facts.reply = Some((at, shown(u)));
        Step::Refused
    }

    fn agree(&mut self, u: &[u8], at: At) -> Step {
        self.facts.outcome = PreambleOutcome::Upgraded;
        self.facts.reply = Some((at, shown(u)));
        Step::Tls(Vec::new())
    }

    fn requested(&self) -> bool {
        self.facts.outcome == PreambleOutcome::Requested
    }

    /// One whole unit from the client.
    fn client_unit(&mut self, u: &[u8], at: At) -> Step {
        let text = trim_eol(u);
        let is = |w: &[u8]| text.eq_ignore_ascii_case(w);
        let starts = |w: &[u8]| starts_ci(text, w);
        match self.facts.protocol {
            Protocol::Smtp if is(b"STARTTLS") => self.client_switch(u, at),
            Protocol::Pop3 if is(b"STLS") => self.client_switch(u, at),
            Protocol::Ftp if starts(b"AUTH TLS") || starts(b"AUTH SSL") => self.client_switch(u, at),
            Protocol::Imap => {
                let Some(end) = imap_tag(text) else { return Step::More };
                if text.get(end + 1..).is_some_and(|c| c.eq_ignore_ascii_case(b"STARTTLS")) {
                    self.p.tag = text.get(..end).unwrap_or(&[]).to_vec();
                    return self.client_switch(u, at);
                }
                Step::More
            }
            Protocol::Xmpp if find(u, b"<starttls").is_some() => self.client_switch(u, at),
            Protocol::Ldap if ldap_start_tls(u) => self.client_switch(u, at),
            Protocol::Postgres => match u {
                [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30] => {
                    self.p.gss_pending = true;
                    Step::More
                }
                [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] => self.client_switch(u, at),
                _ => self.give_up(),
            },
            Protocol::HttpConnect => {
                let first_line = u.split(|&c| c == b'\n').next().unwrap_or(&[]);
                let target = first_line.split(|&c| c == b' ').nth(1).unwrap_or(&[]);
                self.facts.target = Some(shown(target));
                self.client_switch(first_line, at)
            }
            Protocol::Socks4 => {
                let port = u16::from_be_bytes([byte(u, 2), byte(u, 3)]);
                let is_4a = u.get(4..7) == Some(&[0, 0, 0]) && byte(u, 7) != 0;
                let host = if is_4a {
                    let after_user = u.iter().skip(8).position(|&c| c == 0).map_or(u.len(), |i| i + 9);
                    shown(trim_nul(u.get(after_user..).unwrap_or(&[])))
                } else {
                    format!("{}.{}.{}.{}", byte(u, 4), byte(u, 5), byte(u, 6), byte(u, 7))
                };
                self.facts.target = Some(format!("{host}:{port}"));
                self.client_switch(u.get(..8).unwrap_or(u), at)
            }
            Protocol::Socks5 => {
                if !self.p.socks_greeted {
                    self.p.socks_greeted = true;
                    return Step::More;
                }
                if self.p.socks_method == Some(2) && !self.p.socks_auth_sent {
                    self.p.socks_auth_sent = true;
                    return Step::More;
                }
                self.facts.target = socks5_target(u);
                self.client_switch(u, at)
            }
            _ => Step::More,
        }
    }

    fn client_switch(&mut self, u: &[u8], at: At) -> Step {
        self.request(u, at);
        Step::Tls(Vec::new())
    }

    /// One whole unit from the server.
    fn server_unit(&mut self, u: &[u8], at: At) -> Step {
        let text = trim_eol(u);
        match self.facts.protocol {
            Protocol::Socks5 if self.p.socks_method.is_none() => {
                let m = byte(u, 1);
                self.p.socks_method = Some(m);
                if m == 0xff {
                    return self.refuse(u, at);
                }
                Step::More
            }
            Protocol::Socks5 if self.p.socks_method == Some(2) && !self.p.socks_auth_ok => {
                self.p.socks_auth_ok = true;
                if byte(u, 1) != 0 {
                    return self.refuse(u, at);
                }
                Step::More
            }
            Protocol::Postgres if self.p.gss_pending => {
                self.p.gss_pending = false;
                Step::More
            }
            _ if !self.requested() => Step::More,
            Protocol::Smtp | Protocol::Ftp => {
                // Multi-line replies: `ddd-` lines go on, the `ddd ` line ends the reply.
                let code = text.get(..3).unwrap_or(&[]);
                if !code.iter().all(u8::is_ascii_digit) || code.len() < 3 || text.get(3) == Some(&b'-') {
                    return Step::More;
                }
                let ok: &[u8] = if self.facts.protocol == Protocol::Smtp {
                    b"220"
                } else {
                    b"234"
                };
                if code == ok {
                    self.agree(text, at)
                } else if matches!(code.first(), Some(b'4' | b'5')) {
                    self.refuse(text, at)
                } else {
                    Step::More
                }
            }
            Protocol::Pop3 => {
                if text.starts_with(b"+OK") {
                    self.agree(text, at)
                } else if text.starts_with(b"-ERR") {
                    self.refuse(text, at)
                } else {
                    Step::More
                }
            }
            Protocol::Imap => {
                let tag = self.p.tag.clone();
                let Some(rest) = text.strip_prefix(tag.as_slice()).and_then(|r| r.strip_prefix(b" ")) else {
                    return Step::More;
                };
                if starts_ci(rest, b"OK") {
                    self.agree(text, at)
                } else {
                    self.refuse(text, at)
                }
            }
            Protocol::Xmpp => {
                if find(u, b"<proceed").is_some() {
                    self.agree(u, at)
                } else if find(u, b"<failure").is_some() {
                    self.refuse(u, at)
                } else {
                    Step::More
                }
            }
            Protocol::Ldap => match ldap_extended_result(u) {
                Some(0) => self.agree(u, at),
                Some(_) => self.refuse(u, at),
                None => Step::More,
            },
            Protocol::Postgres => match u {
                [b'S'] => self.agree(b"S", at),
                _ => self.refuse(u, at),
            },
            Protocol::HttpConnect => {
                let status_line = u.split(|&c| c == b'\n').next().map(trim_eol).unwrap_or(&[]);
                let code = status_line.split(|&c| c == b' ').nth(1).unwrap_or(&[]);
                if code.len() == 3 && code.first() == Some(&b'2') {
                    self.agree(status_line, at)
                } else {
                    self.refuse(status_line, at)
                }
            }
            Protocol::Socks4 => {
                if byte(u, 1) == 0x5a {
                    self.agree(u, at)
                } else {
                    self.refuse(u, at)
                }
            }
            Protocol::Socks5 => {
                if byte(u, 1) == 0 {
                    self.agree(u, at)
                } else {
                    self.refuse(u, at)
                }
            }
        }
    }
}

/// Length of a SOCKS5 request or reply (VER CMD/REP RSV ATYP ADDR PORT), once whole.
fn socks5_addr_msg(b: &[u8]) -> Result<Option<usize>, ()> {
    let Some(&atyp) = b.get(3) else { return Ok(None) };
    let n = match atyp {
        1 => 4 + 4 + 2,
        4 => 4 + 16 + 2,
        3 => {
            let Some(&l) = b.get(4) else { return Ok(None) };
            5 + usize::from(l) + 2
        }
        _ => return Err(()),
    };
    Ok((b.len() >= n).then_some(n))
}

/// The host and port of a SOCKS5 request.
fn socks5_target(u: &[u8]) -> Option<String> {
    let (host, rest) = match byte(u, 3) {
        1 => (
            format!("{}.{}.{}.{}", byte(u, 4), byte(u, 5), byte(u, 6), byte(u, 7)),
            u.get(8..)?,
        ),
        4 => {
            let a: [u8; 16] = u.get(4..20)?.try_into().ok()?;
            (format!("[{}]", std::net::Ipv6Addr::from(a)), u.get(20..)?)
        }
        3 => {
            let l = usize::from(byte(u, 4));
            (shown(u.get(5..5 + l)?), u.get(5 + l..)?)
        }
        _ => return None,
    };
    Some(format!("{host}:{}", u16::from_be_bytes([byte(rest, 0), byte(rest, 1)])))
}

/// Whether `b` starts with `w`, ASCII case ignored.
fn starts_ci(b: &[u8], w: &[u8]) -> bool {
    b.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w))
}

fn byte(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim_eol(u: &[u8]) -> &[u8] {
    let u = u.strip_suffix(b"\n").unwrap_or(u);
    u.strip_suffix(b"\r").unwrap_or(u)
}

fn trim_nul(u: &[u8]) -> &[u8] {
    u.strip_suffix(&[0]).unwrap_or(u)
}

/// A unit shown in a report: printable ASCII as is, everything else as `\xNN`, cut short.
fn shown(u: &[u8]) -> String {
    let u = trim_eol(u);
    let mut s = printable(u.get(..SHOWN.min(u.len())).unwrap_or(&[]));
    if u.len() > SHOWN {
        s.push('…');
    }
    s
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use crate::capture::Timestamp;

    fn at(frame: u64) -> At {
        At {
            frame,
            ts: Timestamp(frame as i64),
        }
    }

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;

    /// Feeds a scripted conversation; returns the steps.
    fn run(p: &mut Preamble, script: &[(Direction, &[u8])]) -> Vec<Step> {
        script
            .iter()
            .enumerate()
            .map(|(i, (d, b))| p.feed(*d, b, at(i as u64 + 1)))
            .collect()
    }

    #[test]
    fn recognises_first_client_bytes() {
        assert_eq!(
            recognise(b"EHLO mail.example\r\n", Some(b"220 x")),
            Some(Protocol::Smtp)
        );
        assert_eq!(recognise(b"a001 CAPABILITY\r\n", None), Some(Protocol::Imap));
        assert_eq!(recognise(b". STARTTLS\r\n", None), Some(Protocol::Imap));
        assert_eq!(recognise(b"CAPA\r\n", None), Some(Protocol::Pop3));
        assert_eq!(recognise(b"STLS\r\n", None), Some(Protocol::Pop3));
        assert_eq!(recognise(b"AUTH TLS\r\n", None), Some(Protocol::Ftp));
        assert_eq!(
            recognise(b"<?xml version='1.0'?><stream:stream", None),
            Some(Protocol::Xmpp)
        );
        assert_eq!(
            recognise(&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f], None),
            Some(Protocol::Postgres)
        );
        assert_eq!(
            recognise(b"CONNECT a.example:443 HTTP/1.1\r\n", None),
            Some(Protocol::HttpConnect)
        );
        assert_eq!(recognise(&[5, 1, 0], None), Some(Protocol::Socks5));
        assert_eq!(recognise(&[4, 1, 1, 187, 10, 0, 0, 1, 0], None), Some(Protocol::Socks4));
        let ldap = ldap_request();
        assert_eq!(recognise(&ldap, None), Some(Protocol::Ldap));
        for not in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"SSH-2.0-x",
            &[0x16, 3, 1, 0, 5, 1],
            b"",
            &[5],
        ] {
            assert_eq!(recognise(not, None), None, "{not:?}");
        }
        assert!(looks_like_client_hello(&[0x16, 3, 1, 0, 200, 1, 0]));
        assert!(!looks_like_client_hello(&[0x16, 3, 3, 0, 200, 2, 0]));
        let mut v2 = vec![0x80, 0x2e, 1, 3, 1, 0, 21, 0, 0, 0, 16];
        v2.extend([0u8; 37]);
        assert!(looks_like_client_hello(&v2));
        assert!(!looks_like_client_hello(&[0x80, 0x2e, 1, 3, 1]));
    }

    fn ldap_request() -> Vec<u8> {
        let mut op = vec![0x80, LDAP_START_TLS.len() as u8];
        op.extend_from_slice(LDAP_START_TLS);
        let mut msg = vec![0x02, 1, 1, 0x77, op.len() as u8];
        msg.extend(op);
        let mut out = vec![0x30, msg.len() as u8];
        out.extend(msg);
        out
    }

    #[test]
    fn smtp_upgrade_with_multiline_replies_and_split_lines() {
        let mut p = Preamble::new(Protocol::Smtp, at(1));
        let steps = run(
            &mut p,
            &[
                (S, b"220 mx ESMTP\r\n"),
                (C, b"EHLO me\r\n"),
                (S, b"250-mx\r\n250-STARTTLS\r\n25"),
                (S, b"0 SIZE 1000\r\n"),
                (C, b"STARTT"),
                (C, b"LS\r\n"),
                (S, b"220 2.0.0 Ready\r\n"),
            ],
        );
        assert_eq!(steps[5], Step::Tls(Vec::new()));
        assert_eq!(steps[6], Step::Tls(Vec::new()));
        assert_eq!(p.facts.outcome, PreambleOutcome::Upgraded);
        assert_eq!(p.facts.request.as_ref().map(|r| r.1.as_str()), Some("STARTTLS"));
        // Bytes after the switch go to TLS.
        assert_eq!(p.feed(C, &[0x16, 3, 1], at(9)), Step::Tls(vec![0x16, 3, 1]));
    }

    #[test]
    fn refusals() {
        let mut p = Preamble::new(Protocol::Smtp, at(1));
        let s = run(
            &mut p,
            &[(C, b"EHLO x\r\nSTARTTLS\r\n"), (S, b"454 4.7.0 TLS not available\r\n")],
        );
        assert_eq!(s[1], Step::Refused);
        assert_eq!(
            p.facts.reply.as_ref().map(|r| r.1.as_str()),
            Some("454 4.7.0 TLS not available")
        );
        let mut p = Preamble::new(Protocol::Imap, at(1));
        let s = run(
            &mut p,
            &[(C, b"a STARTTLS\r\n"), (S, b"* BYE\r\n"), (S, b"a NO nope\r\n")],
        );
        assert_eq!(s[1], Step::More);
        assert_eq!(s[2], Step::Refused);
        let mut p = Preamble::new(Protocol::HttpConnect, at(1));
        let s = run(
            &mut p,
            &[
                (C, b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n"),
                (S, b"HTTP/1.1 403 Forbidden\r\n\r\n"),
            ],
        );
        assert_eq!(s[1], Step::Refused);
        assert_eq!(p.facts.target.as_deref(), Some("h:443"));
        let mut p = Preamble::new(Protocol::Socks5, at(1));
        let s = run(&mut p, &[(C, &[5, 1, 0]), (S, &[5, 0xff])]);
        assert_eq!(s[1], Step::Refused);
    }

    #[test]
    fn socks5_with_auth_and_tls_in_the_same_chunk() {
        let mut p = Preamble::new(Protocol::Socks5, at(1));
        let mut req = vec![5, 1, 0, 3, 4];
        req.extend_from_slice(b"host");
        req.extend_from_slice(&[1, 187]);
        let s = run(
            &mut p,
            &[
                (C, &[5, 1, 2]),
                (S, &[5, 2]),
                (C, &[1, 1, b'u', 1, b'p']),
                (S, &[1, 0]),
                (C, &req),
            ],
        );
        assert_eq!(s[4], Step::Tls(Vec::new()));
        assert_eq!(p.facts.target.as_deref(), Some("host:443"));
        let s = p.feed(S, &[5, 0, 0, 1, 1, 2, 3, 4, 0, 80, 0x16, 3, 3], at(7));
        assert_eq!(s, Step::Tls(vec![0x16, 3, 3]));
    }

    #[test]
    fn ldap_postgres_xmpp() {
        let mut p = Preamble::new(Protocol::Ldap, at(1));
        assert_eq!(p.feed(C, &ldap_request(), at(1)), Step::Tls(Vec::new()));
        let resp = [0x30, 0x0c, 0x02, 1, 1, 0x78, 0x07, 0x0a, 1, 0, 0x04, 0, 0x04, 0];
        assert_eq!(p.feed(S, &resp, at(2)), Step::Tls(Vec::new()));
        let mut p = Preamble::new(Protocol::Ldap, at(1));
        p.feed(C, &ldap_request(), at(1));
        let refused = [0x30, 0x0c, 0x02, 1, 1, 0x78, 0x07, 0x0a, 1, 2, 0x04, 0, 0x04, 0];
        assert_eq!(p.feed(S, &refused, at(2)), Step::Refused);

        let mut p = Preamble::new(Protocol::Postgres, at(1));
        assert_eq!(
            p.feed(C, &[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f], at(1)),
            Step::Tls(Vec::new())
        );
        assert_eq!(p.feed(S, b"N", at(2)), Step::Refused);

        let mut p = Preamble::new(Protocol::Xmpp, at(1));
        let s = run(
            &mut p,
            &[
                (C, b"<?xml version='1.0'?><stream:stream to='x' xmlns='jabber:client'>"),
                (S, b"<stream:stream from='x'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"),
                (C, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
                (S, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            ],
        );
        assert_eq!(s[1], Step::More);
        assert_eq!(s[2], Step::Tls(Vec::new()));
        assert_eq!(s[3], Step::Tls(Vec::new()));
    }

    #[test]
    fn hostile_bytes_never_panic_and_stay_bounded() {
        let protocols = [
            Protocol::Smtp,
            Protocol::Imap,
            Protocol::Pop3,
            Protocol::Ftp,
            Protocol::Xmpp,
            Protocol::Ldap,
            Protocol::Postgres,
            Protocol::HttpConnect,
            Protocol::Socks4,
            Protocol::Socks5,
        ];
        let mut x: u32 = 7;
        for (k, proto) in protocols.iter().enumerate() {
            for round in 0..200u64 {
                let mut p = Preamble::new(*proto, at(0));
                for i in 0..40u64 {
                    let len = ((round * 31 + i * 7) % 300) as usize;
                    let chunk: Vec<u8> = (0..len)
                        .map(|_| {
                            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345 + k as u32);
                            // Mostly protocol-ish bytes: digits, letters, CR/LF, '>', small numbers.
                            match (x >> 16) % 8 {
                                0 => b'\n',
                                1 => b'>',
                                2 => (x >> 8) as u8 % 8,
                                3 => b'0' + (x >> 8) as u8 % 10,
                                _ => (x >> 20) as u8,
                            }
                        })
                        .collect();
                    let d = if (round + i) % 2 == 0 { C } else { S };
                    let _ = p.feed(d, &chunk, at(i));
                    assert!(p.buf.iter().all(|b| b.len() <= MAX_UNIT));
                }
            }
        }
    }

    #[test]
    fn caps_give_up() {
        let mut p = Preamble::new(Protocol::Smtp, at(1));
        let long = vec![b'a'; MAX_UNIT + 10];
        assert_eq!(p.feed(C, &long, at(1)), Step::GaveUp);
        let mut p = Preamble::new(Protocol::Smtp, at(1));
        let mut last = Step::More;
        for i in 0..(MAX_PREAMBLE_BYTES / 10 + 2) {
            last = p.feed(S, b"250-abcd\r\n", at(i as u64));
            if last != Step::More {
                break;
            }
        }
        assert_eq!(last, Step::GaveUp);
    }
}
