//! ClientHello and ServerHello facts.
//!
//! Message bodies are parsed by tls-parser; extensions are walked here one by one so that one odd
//! extension never hides the others (a ClientHello from a stranger is exactly what we must read).

use super::names::{CipherSuite, Group, Version, is_grease};
use crate::flow::At;
use serde::Serialize;

/// The fixed ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What a client offered.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientHello {
    pub at: At,
    pub record_version: Version,
    pub legacy_version: Version,
    /// supported_versions, GREASE removed; empty when the extension is absent.
    pub supported_versions: Vec<Version>,
    pub cipher_suites: Vec<CipherSuite>,
    pub server_name: Option<String>,
    pub alpn: Vec<String>,
    pub supported_groups: Vec<Group>,
    pub key_share_groups: Vec<Group>,
    pub signature_algorithms: Vec<u16>,
    pub session_id_len: usize,
    pub session_ticket: bool,
    pub psk: bool,
    pub early_data: bool,
    pub fallback_scsv: bool,
    /// Sent in the SSLv2-compatible format.
    pub sslv2_format: bool,
    /// Extension types in the order sent, GREASE included (for JA3 and JA4).
    pub extensions: Inline<u16, MAX_EXTENSIONS>,
    /// ec_point_formats, in order (for JA3).
    pub ec_point_formats: Inline<u8, MAX_POINT_FORMATS>,
    /// The first and last byte of the first ALPN protocol (all JA4 reads of it).
    pub alpn_ends: Option<(u8, u8)>,
}

/// Extension types kept per hello: more than any real stack sends (Chrome sends about 18).
pub const MAX_EXTENSIONS: usize = 64;
/// ec_point_formats kept per hello (three are defined).
pub const MAX_POINT_FORMATS: usize = 16;

/// A short list of values kept inside its owner, without an allocation of its own (a hello is
/// parsed for every connection); values past `N` are left out.
#[derive(Clone, Copy, Debug)]
pub struct Inline<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Default for Inline<T, N> {
    fn default() -> Self {
        Inline {
            items: [T::default(); N],
            len: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> Inline<T, N> {
    /// Appends a value; false (and nothing kept) when full.
    pub fn push(&mut self, v: T) -> bool {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = v;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The values kept, in order.
    pub fn as_slice(&self) -> &[T] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

impl<T: Copy + Default, const N: usize> From<&[T]> for Inline<T, N> {
    fn from(values: &[T]) -> Self {
        let mut out = Inline::default();
        for v in values {
            out.push(*v);
        }
        out
    }
}

impl<T: Copy + Default + Serialize, const N: usize> Serialize for Inline<T, N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl ClientHello {
    /// Versions offered: supported_versions if present, else the legacy version.
    pub fn offered_versions(&self) -> Vec<Version> {
        if self.supported_versions.is_empty() {
            vec![self.legacy_version]
        } else {
            self.supported_versions.clone()
        }
    }

    /// Highest version offered.
    pub fn max_version(&self) -> Version {
        self.offered_versions().into_iter().max().unwrap_or(self.legacy_version)
    }

    /// Real cipher suites offered (signalling values removed).
    pub fn real_suites(&self) -> impl Iterator<Item = CipherSuite> + '_ {
        self.cipher_suites.iter().copied().filter(|c| !c.is_signalling())
    }

    /// Whether the client tried to resume (session id, ticket or PSK).
    pub fn resumption_attempt(&self) -> bool {
        self.session_ticket || self.psk
    }
}

/// What a server chose (a HelloRetryRequest is a ServerHello with `hello_retry` set).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerHello {
    pub at: At,
    pub legacy_version: Version,
    /// The negotiated version (supported_versions if present, else the legacy version).
    pub version: Version,
    pub cipher_suite: CipherSuite,
    pub group: Option<Group>,
    pub alpn: Option<String>,
    pub session_id: Vec<u8>,
    pub psk_accepted: bool,
    pub hello_retry: bool,
    /// The random carries the TLS 1.3 downgrade sentinel (server supports 1.3 but chose lower).
    pub downgrade_sentinel: bool,
    /// Extension types in the order sent (for JA3S).
    pub extensions: Inline<u16, MAX_EXTENSIONS>,
}

/// Parses a ClientHello handshake message (header included).
pub fn client_hello(msg: &[u8], record_version: Version, at: At) -> Option<ClientHello> {
    let (_, parsed) = tls_parser::parse_tls_message_handshake(msg).ok()?;
    let tls_parser::TlsMessage::Handshake(tls_parser::TlsMessageHandshake::ClientHello(ch)) = parsed else {
        return None;
    };
    let mut out = ClientHello {
        at,
        record_version,
        legacy_version: Version(ch.version.0),
        cipher_suites: ch.ciphers.iter().map(|c| CipherSuite(c.0)).collect(),
        session_id_len: ch.session_id.map(|s| s.len()).unwrap_or(0),
        ..ClientHello::default()
    };
    out.fallback_scsv = out.cipher_suites.iter().any(|c| c.0 == 0x5600);
    for (typ, data) in extensions(ch.ext.unwrap_or(&[])) {
        out.extensions.push(typ);
        match typ {
            0 => out.server_name = sni(data),
            16 => {
                out.alpn = alpn_list(data);
                let first = first_alpn(data);
                out.alpn_ends = first.first().zip(first.last()).map(|(a, z)| (*a, *z));
            }
            11 => {
                out.ec_point_formats = data
                    .split_first()
                    .map(|(&n, rest)| Inline::from(rest.get(..n as usize).unwrap_or(rest)))
                    .unwrap_or_default()
            }
            43 => {
                if let Some((&n, rest)) = data.split_first() {
                    out.supported_versions = u16_list(rest.get(..n as usize).unwrap_or(rest), Version);
                }
            }
            10 => out.supported_groups = u16_list(skip_len16(data), Group),
            51 => out.key_share_groups = key_share_groups(skip_len16(data)),
            13 => {
                let list = skip_len16(data);
                out.signature_algorithms = Vec::with_capacity(list.len() / 2);
                out.signature_algorithms.extend(u16s(list));
            }
            35 => out.session_ticket = !data.is_empty(),
            41 => out.psk = true,
            42 => out.early_data = true,
            _ => {}
        }
    }
    Some(out)
}

/// Parses a ServerHello (or HelloRetryRequest) handshake message (header included).
pub fn server_hello(msg: &[u8], at: At) -> Option<ServerHello> {
    if let Some(sh) = draft_server_hello(msg, at) {
        return Some(sh);
    }
    let (_, parsed) = tls_parser::parse_tls_message_handshake(msg).ok()?;
    let tls_parser::TlsMessage::Handshake(tls_parser::TlsMessageHandshake::ServerHello(sh)) = parsed else {
        return None;
    };
    let legacy = Version(sh.version.0);
    let mut out = ServerHello {
        at,
        legacy_version: legacy,
        version: legacy,
        cipher_suite: CipherSuite(sh.cipher.0),
        session_id: sh.session_id.unwrap_or(&[]).to_vec(),
        hello_retry: sh.random == HRR_RANDOM,
        downgrade_sentinel: sh.random.len() == 32 && sh.random.get(24..31) == Some(b"DOWNGRD".as_slice()),
        ..ServerHello::default()
    };
    for (typ, data) in extensions(sh.ext.unwrap_or(&[])) {
        out.extensions.push(typ);
        match typ {
            43 => out.version = be16(data).map_or(out.version, Version),
            51 => out.group = be16(data).map(Group).or(out.group),
            41 => out.psk_accepted = true,
            16 => out.alpn = alpn_list(data).into_iter().next(),
            _ => {}
        }
    }
    Some(out)
}

/// TLS 1.3 drafts up to 21 sent a ServerHello without session id and compression:
/// version(2) random(32) cipher_suite(2) extensions. tls-parser reads only draft 18 of them.
fn draft_server_hello(msg: &[u8], at: At) -> Option<ServerHello> {
    let body = msg.get(4..)?;
    let version = Version(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    if version.0 & 0xff00 != 0x7f00 || version.0 & 0xff > 21 {
        return None;
    }
    let cipher = u16::from_be_bytes([*body.get(34)?, *body.get(35)?]);
    let mut out = ServerHello {
        at,
        legacy_version: version,
        version,
        cipher_suite: CipherSuite(cipher),
        ..ServerHello::default()
    };
    let ext = body.get(36..).map(skip_len16).unwrap_or(&[]);
    for (typ, data) in extensions(ext) {
        match typ {
            // key_share was 40 before draft 23, 51 after.
            40 | 51 => out.group = be16(data).map(Group).or(out.group),
            41 => out.psk_accepted = true,
            _ => {}
        }
    }
    Some(out)
}

/// The ALPN protocol a TLS 1.3 EncryptedExtensions message (header included) selects.
pub fn encrypted_extensions_alpn(msg: &[u8]) -> Option<String> {
    let exts = skip_len16(msg.get(4..)?);
    extensions(exts)
        .find(|(t, _)| *t == 16)
        .and_then(|(_, d)| alpn_list(d).into_iter().next())
}

/// The first two bytes, big-endian.
fn be16(b: &[u8]) -> Option<u16> {
    b.first_chunk::<2>().map(|c| u16::from_be_bytes(*c))
}

/// Walks an extensions block: (type, data) pairs; stops quietly at a malformed length.
fn extensions(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let (head, rest) = b.split_first_chunk::<4>()?;
        let typ = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let data = rest.get(..len)?;
        b = rest.get(len..).unwrap_or(&[]);
        Some((typ, data))
    })
}

fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).filter_map(be16)
}

/// The 16-bit values of a list, GREASE left out, in one allocation sized by the list's bytes
/// (collecting the filtered values would grow the vector several times).
fn u16_list<T>(b: &[u8], f: impl Fn(u16) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(b.len() / 2);
    out.extend(u16s(b).filter(|v| !is_grease(*v)).map(f));
    out
}

/// Skips a 2-byte vector length prefix (bounded by the data).
fn skip_len16(b: &[u8]) -> &[u8] {
    match b.split_first_chunk::<2>() {
        Some((n, rest)) => rest.get(..u16::from_be_bytes(*n) as usize).unwrap_or(rest),
        None => &[],
    }
}

fn sni(data: &[u8]) -> Option<String> {
    let list = skip_len16(data);
    let (head, rest) = list.split_first_chunk::<3>()?;
    if head[0] != 0 {
        return None;
    }
    let n = u16::from_be_bytes([head[1], head[2]]) as usize;
    Some(printable(rest.get(..n)?))
}

fn alpn_list(data: &[u8]) -> Vec<String> {
    let mut list = skip_len16(data);
    let mut out = Vec::new();
    while let Some((&n, rest)) = list.split_first() {
        let Some((name, more)) = rest.split_at_checked(n as usize) else {
            break;
        };
        out.push(printable(name));
        list = more;
    }
    out
}

/// The first protocol name of an ALPN extension, as sent.
fn first_alpn(data: &[u8]) -> &[u8] {
    let list = skip_len16(data);
    list.split_first()
        .and_then(|(&n, rest)| rest.get(..n as usize))
        .unwrap_or(&[])
}

/// The named group of an ECDHE ServerKeyExchange message (with its 4-byte header) under the
/// negotiated `suite`: ServerECDHParams start with curve_type 3 (named_curve) and the group
/// (RFC 8422 §5.4). `None` for other key exchanges.
pub fn ecdhe_group(msg: &[u8], suite: Option<CipherSuite>) -> Option<Group> {
    let ecdhe = suite.and_then(|s| s.name()).is_some_and(|n| n.contains("_ECDHE_"));
    match msg.get(4..7) {
        Some([3, hi, lo]) if ecdhe => Some(Group(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

fn key_share_groups(mut b: &[u8]) -> Vec<Group> {
    let mut out = Vec::new();
    while let Some((head, rest)) = b.split_first_chunk::<4>() {
        let g = u16::from_be_bytes([head[0], head[1]]);
        let n = u16::from_be_bytes([head[2], head[3]]) as usize;
        if !is_grease(g) {
            out.push(Group(g));
        }
        let Some(more) = rest.get(n..) else {
            break;
        };
        b = more;
    }
    out
}

/// Bytes from the wire as a safe string: printable ASCII kept, anything else escaped.
pub fn printable(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() || c == b' ' {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_walker_stops_at_bad_length() {
        let ext = [0, 0, 0, 1, 0xff, 0, 16, 0, 9, 1];
        let got: Vec<(u16, usize)> = extensions(&ext).map(|(t, d)| (t, d.len())).collect();
        assert_eq!(got, vec![(0, 1)]);
    }

    #[test]
    fn sni_alpn_and_key_shares() {
        let sni_ext = [0, 12, 0, 0, 9, b'g', b'o', b'o', b'd', b'.', b't', b'e', b's', b't'];
        assert_eq!(sni(&sni_ext).as_deref(), Some("good.test"));
        let alpn_ext = [0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1'];
        assert_eq!(alpn_list(&alpn_ext), vec!["h2".to_string(), "http/1.1".to_string()]);
        let ks = [0x0a, 0x0a, 0, 1, 0, 0, 29, 0, 2, 1, 2];
        assert_eq!(key_share_groups(&ks), vec![Group(29)]);
        assert_eq!(printable(b"ab\x00"), "ab\\x00");
    }
}
