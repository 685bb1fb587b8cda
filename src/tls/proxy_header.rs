//! The PROXY protocol header (HAProxy; v1 text, v2 binary) that a load balancer or proxy puts
//! before its client's first byte when it passes a connection on to a backend (nginx
//! `listen ... proxy_protocol`, curl `--haproxy-protocol`). No answer is awaited: the client's
//! TLS starts right after it, so it is skipped, not taken for a plaintext client.
//!
//! Guarantees: a v1 line is at most [`V1_MAX`] bytes and a v2 header at most
//! [`V2_FIXED`] + [`V2_MAX_BODY`]; anything longer is not a header. The reader keeps three
//! numbers, never the bytes.

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included (the specification's limit).
pub const V1_MAX: usize = 107;
/// The fixed part of a v2 header: signature, version/command, family, address length.
pub const V2_FIXED: usize = 16;
/// The longest v2 address block (with its TLVs) taken as a header.
pub const V2_MAX_BODY: usize = 2048;

/// Whether a client's first bytes start a PROXY protocol header.
pub fn starts_header(first: &[u8]) -> bool {
    [&b"PROXY TCP4 "[..], b"PROXY TCP6 ", b"PROXY UNKNOWN"]
        .iter()
        .any(|p| first.starts_with(p))
        || (first.starts_with(V2_SIGNATURE) && first.get(12).is_some_and(|b| b >> 4 == 2))
}

/// What a chunk of header bytes did.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// The header goes on in the next chunk.
    More,
    /// The header ended after this many bytes of the chunk; the rest is the client's stream.
    Done(usize),
    /// Too long, or v1 without its end: not a PROXY header.
    NotAHeader,
}

/// Progress through one header (fed from its first byte on).
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderReader {
    seen: usize,
    v2: bool,
    v2_len: [u8; 2],
}

impl HeaderReader {
    /// Takes the next bytes of the direction.
    pub fn feed(&mut self, data: &[u8]) -> Read {
        let before = self.seen;
        if before == 0 {
            self.v2 = data.first() == Some(&b'\r');
        }
        if !self.v2 {
            return match data.iter().position(|&c| c == b'\n') {
                Some(i) if before + i < V1_MAX => Read::Done(i + 1),
                None if before + data.len() < V1_MAX => {
                    self.seen += data.len();
                    Read::More
                }
                _ => Read::NotAHeader,
            };
        }
        for (k, &b) in data.iter().enumerate().take(V2_FIXED.saturating_sub(before)) {
            match before + k {
                14 => self.v2_len[0] = b,
                15 => self.v2_len[1] = b,
                _ => {}
            }
        }
        self.seen = before.saturating_add(data.len());
        if self.seen < V2_FIXED {
            return Read::More;
        }
        let body = usize::from(u16::from_be_bytes(self.v2_len));
        if body > V2_MAX_BODY {
            return Read::NotAHeader;
        }
        let total = V2_FIXED + body;
        if self.seen >= total {
            Read::Done(total.saturating_sub(before))
        } else {
            Read::More
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_line_in_pieces_then_tls() {
        let line = b"PROXY TCP4 10.0.0.1 10.0.0.2 40000 443\r\n";
        assert!(starts_header(line));
        assert!(!starts_header(b"GET / HTTP/1.1\r\n"));
        let mut r = HeaderReader::default();
        assert_eq!(r.feed(&line[..20]), Read::More);
        let mut rest = line[20..].to_vec();
        rest.extend_from_slice(&[0x16, 3, 1]);
        assert_eq!(r.feed(&rest), Read::Done(line.len() - 20));
        let mut long = HeaderReader::default();
        assert_eq!(long.feed(&[b'P'; V1_MAX + 1]), Read::NotAHeader);
    }

    #[test]
    fn v2_header_with_addresses_then_tls() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12]);
        h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 1, 0xbb]);
        assert!(starts_header(&h));
        let mut r = HeaderReader::default();
        assert_eq!(r.feed(&h[..15]), Read::More);
        let mut rest = h[15..].to_vec();
        rest.push(0x16);
        assert_eq!(r.feed(&rest), Read::Done(h.len() - 15));
        let mut big = V2_SIGNATURE.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(HeaderReader::default().feed(&big), Read::NotAHeader);
    }
}
