//! Client and server fingerprints every security pipeline keys on: JA3 and JA3S (Salesforce,
//! as Wireshark computes them) and JA4 (FoxIO, BSD-3-Clause; the other JA4+ methods carry a
//! non-commercial licence and are left out on purpose).
//!
//! What it is: pure functions from the parsed hellos to the fingerprint strings, GREASE values
//! (RFC 8701) excluded as the specifications say. What it is not: a parser; the hellos come
//! from [`super::hello`], which keeps the extension order and the raw ALPN these need.

use super::hello::{ClientHello, ServerHello};
use super::names::is_grease;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::cell::RefCell;
use std::collections::HashMap;

/// Hellos remembered per thread: real traffic repeats a few client and server stacks, so most
/// sessions find their fingerprints here instead of hashing again. Past the cap the cache starts
/// over (memory stays bounded whatever the capture).
const CACHE_ENTRIES: usize = 1024;

/// Fingerprints by the exact bytes of the fields they read (no hash collision can mix two hellos).
struct Cache<V> {
    map: HashMap<Box<[u8]>, V>,
    key: Vec<u8>,
}

impl<V: Clone> Cache<V> {
    fn new() -> Cache<V> {
        Cache {
            map: HashMap::new(),
            key: Vec::new(),
        }
    }

    /// The value for the key built by `fill`, computed by `make` on a miss.
    fn get(&mut self, fill: impl FnOnce(&mut Vec<u8>), make: impl FnOnce() -> V) -> V {
        self.key.clear();
        fill(&mut self.key);
        if let Some(v) = self.map.get(self.key.as_slice()) {
            return v.clone();
        }
        let v = make();
        if self.map.len() >= CACHE_ENTRIES {
            self.map.clear();
        }
        self.map.insert(self.key.as_slice().into(), v.clone());
        v
    }
}

thread_local! {
    static CLIENT: RefCell<Cache<(Option<String>, String)>> = RefCell::new(Cache::new());
    static SERVER: RefCell<Cache<String>> = RefCell::new(Cache::new());
}

/// Appends a length-prefixed list of values to a cache key.
fn put_list(key: &mut Vec<u8>, items: impl ExactSizeIterator<Item = u16>) {
    key.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for v in items {
        key.extend_from_slice(&v.to_le_bytes());
    }
}

/// JA3 hash (`None` for an SSLv2-format hello) and JA4 of a ClientHello, through the cache.
pub fn client_ids(ch: &ClientHello) -> (Option<String>, String) {
    let fill = |k: &mut Vec<u8>| {
        k.push(u8::from(ch.sslv2_format));
        k.extend_from_slice(&ch.legacy_version.0.to_le_bytes());
        put_list(k, ch.cipher_suites.iter().map(|c| c.0));
        put_list(k, ch.extensions.as_slice().iter().copied());
        put_list(k, ch.supported_groups.iter().map(|g| g.0));
        put_list(k, ch.ec_point_formats.as_slice().iter().map(|&p| u16::from(p)));
        put_list(k, ch.supported_versions.iter().map(|v| v.0));
        put_list(k, ch.signature_algorithms.iter().copied());
        put_list(k, ch.alpn_ends.iter().map(|&(a, z)| u16::from_be_bytes([a, z])));
        k.push(u8::from(ch.alpn_ends.is_some()));
    };
    let make = || (ja3(ch).map(|f| f.hash), ja4(ch));
    CLIENT.with(|c| c.borrow_mut().get(fill, make))
}

/// JA3S hash of a ServerHello, through the cache.
pub fn server_id(sh: &ServerHello) -> String {
    let fill = |k: &mut Vec<u8>| {
        k.extend_from_slice(&sh.legacy_version.0.to_le_bytes());
        k.extend_from_slice(&sh.cipher_suite.0.to_le_bytes());
        put_list(k, sh.extensions.as_slice().iter().copied());
    };
    SERVER.with(|c| c.borrow_mut().get(fill, || ja3s(sh).hash))
}

/// A fingerprint in both forms: the string hashed, and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub full: String,
    pub hash: String,
}

fn dash_joined<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|v| v.to_string()).collect::<Vec<_>>().join("-")
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// JA3 of a ClientHello: `version,ciphers,extensions,groups,point_formats` (decimal, `-`
/// between values, GREASE left out) and its MD5. `None` for an SSLv2-format hello.
pub fn ja3(ch: &ClientHello) -> Option<Fingerprint> {
    if ch.sslv2_format {
        return None;
    }
    let full = format!(
        "{},{},{},{},{}",
        ch.legacy_version.0,
        dash_joined(ch.cipher_suites.iter().map(|c| c.0).filter(|c| !is_grease(*c))),
        dash_joined(ch.extensions.as_slice().iter().copied().filter(|e| !is_grease(*e))),
        dash_joined(ch.supported_groups.iter().map(|g| g.0).filter(|g| !is_grease(*g))),
        dash_joined(ch.ec_point_formats.as_slice().iter()),
    );
    let hash = md5_hex(&full);
    Some(Fingerprint { full, hash })
}

/// JA3S of a ServerHello: `version,cipher,extensions` and its MD5.
pub fn ja3s(sh: &ServerHello) -> Fingerprint {
    let full = format!(
        "{},{},{}",
        sh.legacy_version.0,
        sh.cipher_suite.0,
        dash_joined(sh.extensions.as_slice().iter().copied().filter(|e| !is_grease(*e))),
    );
    let hash = md5_hex(&full);
    Fingerprint { full, hash }
}

/// The first 12 hex digits of the SHA-256 of `s`, or twelve zeros for nothing to hash.
fn sha256_12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    Sha256::digest(s.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex4_joined(items: impl Iterator<Item = u16>) -> String {
    items.map(|v| format!("{v:04x}")).collect::<Vec<_>>().join(",")
}

/// JA4's two characters for a version.
fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4's two characters for the first ALPN value: its first and last characters when both are
/// ASCII letters or digits (lower case, as FoxIO's implementation prints them: `H2` gives
/// `h2`), `99` when either is not (FoxIO's expected outputs for a non-ASCII ALPN), `00`
/// without one.
fn ja4_alpn(ends: Option<(u8, u8)>) -> String {
    let Some((a, z)) = ends else {
        return "00".into();
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        return format!("{}{}", a.to_ascii_lowercase() as char, z.to_ascii_lowercase() as char);
    }
    "99".into()
}

/// JA4 of a ClientHello over TCP (`t`), e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`: version,
/// SNI present (`d`) or not (`i`), counts of suites and extensions, ALPN; the truncated SHA-256
/// of the sorted suites; that of the sorted extensions (SNI and ALPN left out) followed by the
/// signature algorithms in the order sent.
pub fn ja4(ch: &ClientHello) -> String {
    let suites: Vec<u16> = ch
        .cipher_suites
        .iter()
        .map(|c| c.0)
        .filter(|c| !is_grease(*c))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .as_slice()
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let version = ch
        .supported_versions
        .iter()
        .map(|v| v.0)
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(ch.legacy_version.0);
    let sni = if exts.contains(&0x0000) { 'd' } else { 'i' };
    let a = format!(
        "t{}{sni}{:02}{:02}{}",
        ja4_version(version),
        suites.len().min(99),
        exts.len().min(99),
        ja4_alpn(ch.alpn_ends)
    );
    let mut sorted_suites = suites;
    sorted_suites.sort_unstable();
    let b = sha256_12(&hex4_joined(sorted_suites.into_iter()));
    let mut sorted_exts: Vec<u16> = exts.into_iter().filter(|e| *e != 0x0000 && *e != 0x0010).collect();
    sorted_exts.sort_unstable();
    let mut c_in = hex4_joined(sorted_exts.into_iter());
    let sigs = hex4_joined(ch.signature_algorithms.iter().copied().filter(|s| !is_grease(*s)));
    if !sigs.is_empty() && !c_in.is_empty() {
        c_in.push('_');
        c_in.push_str(&sigs);
    }
    let c = sha256_12(&c_in);
    format!("{a}_{b}_{c}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::names::{CipherSuite, Group, Version};

    /// The ClientHello of samples/cases/tls12-expired (OpenSSL 3.0 s_client), as tshark shows it.
    fn openssl_hello() -> ClientHello {
        let suites = [
            49196u16, 49200, 159, 52393, 52392, 52394, 49195, 49199, 158, 49188, 49192, 107, 49187, 49191, 103, 49162,
            49172, 57, 49161, 49171, 51, 157, 156, 61, 60, 53, 47, 255,
        ];
        ClientHello {
            legacy_version: Version(0x0303),
            cipher_suites: suites.iter().map(|&c| CipherSuite(c)).collect(),
            extensions: [0u16, 11, 10, 35, 22, 23, 13].as_slice().into(),
            supported_groups: [29u16, 23, 30, 25, 24].iter().map(|&g| Group(g)).collect(),
            ec_point_formats: [0u8, 1, 2].as_slice().into(),
            ..ClientHello::default()
        }
    }

    #[test]
    fn ja3_equals_tshark_on_an_openssl_hello() {
        let fp = ja3(&openssl_hello()).unwrap_or_else(|| panic!("ja3"));
        assert_eq!(
            fp.full,
            "771,49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-35-22-23-13,29-23-30-25-24,0-1-2"
        );
        assert_eq!(fp.hash, "871a754af286dfb70c1b53c6887c62e0");
    }

    #[test]
    fn grease_is_left_out() {
        let mut ch = openssl_hello();
        ch.cipher_suites.insert(0, CipherSuite(0x0a0a));
        let mut exts = vec![0x1a1au16];
        exts.extend_from_slice(ch.extensions.as_slice());
        ch.extensions = exts.as_slice().into();
        ch.supported_groups.insert(0, Group(0x2a2a));
        assert_eq!(ja3(&ch), ja3(&openssl_hello()));
        assert_eq!(ja4(&ch), ja4(&openssl_hello()));
    }

    #[test]
    fn the_cache_gives_what_the_functions_give() {
        let a = openssl_hello();
        let mut b = openssl_hello();
        b.ec_point_formats = [0u8].as_slice().into();
        for ch in [&a, &b, &a, &b] {
            assert_eq!(client_ids(ch), (ja3(ch).map(|f| f.hash), ja4(ch)));
        }
        assert_ne!(client_ids(&a), client_ids(&b));
    }

    #[test]
    fn ja4_alpn_characters() {
        let ends = |b: &[u8]| b.first().zip(b.last()).map(|(a, z)| (*a, *z));
        assert_eq!(ja4_alpn(ends(b"h2")), "h2");
        assert_eq!(ja4_alpn(ends(b"H2")), "h2");
        assert_eq!(ja4_alpn(ends(b"http/1.1")), "h1");
        assert_eq!(ja4_alpn(ends(b"")), "00");
        // Not alphanumeric at an end.
        assert_eq!(ja4_alpn(ends(&[0xab, 0x61, 0xcd])), "99");
        assert_eq!(ja4_alpn(ends(b"h2-")), "99");
    }

    /// The JA4 specification's worked example (FoxIO ja4 technical details): a Chrome hello
    /// with 15 suites, 16 extensions, ALPN h2, TLS 1.3.
    #[test]
    fn ja4_spec_example() {
        let suites = [
            0x1301u16, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
            0x002f, 0x0035,
        ];
        let exts = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01,
            0x000b, 0x000a, 0x0015,
        ];
        let ch = ClientHello {
            legacy_version: Version(0x0303),
            supported_versions: vec![Version(0x0304), Version(0x0303)],
            cipher_suites: suites.iter().map(|&c| CipherSuite(c)).collect(),
            extensions: exts.as_slice().into(),
            signature_algorithms: vec![0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601],
            alpn_ends: Some((b'h', b'2')),
            ..ClientHello::default()
        };
        assert_eq!(ja4(&ch), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    }
}
