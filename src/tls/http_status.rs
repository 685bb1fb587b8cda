//! What a server's first response says, read from decrypted records: the one fact a completed
//! handshake can still hide about its outcome, when the server checks the client's certificate
//! after the handshake and refuses the request in its answer (nginx's `ssl_verify_client on`
//! answers HTTP 400 with a page that names the problem). Only the status number and whether the
//! page carries one of those statements are read; nothing of the response is kept or shown.
//!
//! HTTP/1.x: the status line (`HTTP/1.1 400 ...`). HTTP/2: the `:status` pseudo-header that
//! must open a HEADERS frame's block (RFC 9113 §8.3.2), as an index into HPACK's static table or
//! as a literal without Huffman coding (RFC 7541 §6); a Huffman-coded literal is left unread.

/// How the server's page says it refused the client's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertRefusal {
    /// nginx 496: "No required SSL certificate was sent".
    Missing,
    /// nginx 495: "The SSL certificate error" (the certificate did not verify).
    Rejected,
}

/// The statements of nginx's client-certificate error pages (sent with status 400).
const REFUSALS: [(&[u8], CertRefusal); 2] = [
    (b"No required SSL certificate was sent", CertRefusal::Missing),
    (b"The SSL certificate error", CertRefusal::Rejected),
];

/// How far into a record the statements are looked for (an error page is short).
const PAGE_READ: usize = 4096;

/// Whether this plaintext (a response's head or body) carries a client-certificate refusal.
pub fn cert_refusal(pt: &[u8]) -> Option<CertRefusal> {
    let page = pt.get(..PAGE_READ).unwrap_or(pt);
    REFUSALS
        .iter()
        .find(|(text, _)| page.windows(text.len()).any(|w| w == *text))
        .map(|(_, r)| *r)
}

/// HPACK static table entries 8..=14 are `:status` with these values (RFC 7541 Appendix A).
const STATIC_STATUS: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];

/// The status of the response that starts this plaintext, if it is one: HTTP/2 frames when the
/// connection negotiated `h2`, else an HTTP/1.x status line.
pub fn response_status(pt: &[u8], h2: bool) -> Option<u16> {
    if h2 {
        return h2_status(pt);
    }
    match pt.strip_prefix(b"HTTP/1.")? {
        [_, b' ', a, b, c, ..] => digits(&[*a, *b, *c]),
        _ => None,
    }
}

fn digits(d: &[u8; 3]) -> Option<u16> {
    d.iter()
        .try_fold(0u16, |n, &b| b.is_ascii_digit().then(|| n * 10 + u16::from(b - b'0')))
}

/// The `:status` of the first HTTP/2 HEADERS frame in these frames (a frame cut by the record's
/// end is read as far as it goes).
fn h2_status(mut pt: &[u8]) -> Option<u16> {
    const HEADERS: u8 = 1;
    const PADDED: u8 = 0x8;
    const PRIORITY: u8 = 0x20;
    // A record holds a few frames at most; the bound only keeps hostile input linear.
    for _ in 0..64 {
        let (head, rest) = pt.split_first_chunk::<9>()?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (typ, flags) = (head[3], head[4]);
        let payload = rest.get(..len).unwrap_or(rest);
        if typ == HEADERS {
            let mut at = 0;
            if flags & PADDED != 0 {
                at += 1;
            }
            if flags & PRIORITY != 0 {
                at += 5;
            }
            return first_status(payload.get(at..)?);
        }
        pt = rest.get(len..)?;
    }
    None
}

/// `:status` as the first field of an HPACK header block, after the dynamic table size updates
/// that may open it (RFC 7541 §4.2, at most two: nginx sends one, to size 0, when the client's
/// SETTINGS offered a table, as Chromium's do).
fn first_status(mut block: &[u8]) -> Option<u16> {
    for _ in 0..2 {
        match block.split_first() {
            Some((&b, rest)) if b & 0xe0 == 0x20 => {
                // A 5-bit prefix integer; 0x1f continues in bytes with the high bit set.
                block = rest;
                if b & 0x1f == 0x1f {
                    let n = block.iter().take(4).take_while(|c| **c & 0x80 != 0).count();
                    block = block.get(n + 1..)?;
                }
            }
            _ => break,
        }
    }
    let (&b, rest) = block.split_first()?;
    if b & 0x80 != 0 {
        // Indexed field (§6.1): only the static :status entries.
        return STATIC_STATUS.get(usize::from(b & 0x7f).checked_sub(8)?).copied();
    }
    // Literal with indexing (01xxxxxx), without (0000xxxx) or never indexed (0001xxxx), name :status (index 8).
    let name_is_status = (b & 0xc0 == 0x40 && b & 0x3f == 8) || (b & 0xe0 == 0 && b & 0x0f == 8);
    if !name_is_status {
        return None;
    }
    match rest {
        // Not Huffman-coded, three characters.
        [3, a, b, c, ..] => digits(&[*a, *b, *c]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{CertRefusal, cert_refusal, response_status};

    #[test]
    fn http1_status_line() {
        assert_eq!(response_status(b"HTTP/1.1 400 Bad Request\r\n", false), Some(400));
        assert_eq!(response_status(b"HTTP/1.0 200 OK\r\n", false), Some(200));
        assert_eq!(response_status(b"HTTP/1.1 4x0 Bad\r\n", false), None);
        assert_eq!(response_status(b"HTTP/1.1 40", false), None);
        assert_eq!(response_status(b"<html>", false), None);
        // Not read as the other protocol.
        assert_eq!(response_status(b"HTTP/1.1 400 Bad Request\r\n", true), None);
        assert_eq!(response_status(&[0, 0, 1, 1, 4, 0, 0, 0, 1, 0x8c], false), None);
    }

    #[test]
    fn nginx_refusal_pages() {
        let page = b"HTTP/1.1 400 Bad Request\r\n\r\n<html><center>No required SSL certificate was sent</center>";
        assert_eq!(cert_refusal(page), Some(CertRefusal::Missing));
        assert_eq!(
            cert_refusal(b"<h1>400 Bad Request</h1>The SSL certificate error"),
            Some(CertRefusal::Rejected)
        );
        assert_eq!(
            cert_refusal(b"HTTP/1.1 400 Bad Request\r\n\r\n{\"error\":\"bad json\"}"),
            None
        );
        assert_eq!(cert_refusal(b""), None);
    }

    #[test]
    fn h2_status_after_settings() {
        // SETTINGS (empty), then HEADERS with :status 400 indexed (0x8c), then a literal 403.
        let mut f = vec![0, 0, 0, 4, 0, 0, 0, 0, 0];
        f.extend([0, 0, 1, 1, 4, 0, 0, 0, 1, 0x8c]);
        assert_eq!(response_status(&f, true), Some(400));
        let lit = [0, 0, 5, 1, 4, 0, 0, 0, 1, 0x08, 3, b'4', b'0', b'3'];
        assert_eq!(response_status(&lit, true), Some(403));
        // Padded and with priority: the block starts 6 bytes in.
        let padded = [0, 0, 8, 1, 0x2c, 0, 0, 0, 1, 1, 0, 0, 0, 0, 16, 0x88, 0];
        assert_eq!(response_status(&padded, true), Some(200));
        // A dynamic table size update first (0x3f 0xe1 0x1f: 4096), then :status 400.
        assert_eq!(
            response_status(&[0, 0, 4, 1, 4, 0, 0, 0, 1, 0x3f, 0xe1, 0x1f, 0x8c], true),
            Some(400)
        );
        assert_eq!(
            response_status(&[0, 0, 2, 1, 4, 0, 0, 0, 1, 0x20, 0x8d], true),
            Some(404)
        );
        // Huffman-coded literal, a dynamic index, no HEADERS: unread.
        assert_eq!(
            response_status(&[0, 0, 4, 1, 4, 0, 0, 0, 1, 0x08, 0x83, 0x68, 0x0f], true),
            None
        );
        assert_eq!(response_status(&[0, 0, 1, 1, 4, 0, 0, 0, 1, 0xbe], true), None);
        assert_eq!(response_status(&[0, 0, 0, 4, 0, 0, 0, 0, 0], true), None);
        // A length past the end, and a truncated header.
        assert_eq!(
            response_status(&[0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 1, 0x8d], true),
            Some(404)
        );
        assert_eq!(response_status(&[0, 0, 1], true), None);
        // nginx to Chromium: a dynamic table size update (to 0) opens the block, then 400.
        assert_eq!(
            response_status(&[0, 0, 2, 1, 4, 0, 0, 0, 1, 0x20, 0x8c], true),
            Some(400)
        );
        // A size update with a multi-byte integer (0x3f, then 0xe1 0x1f = 4096), then 200.
        assert_eq!(
            response_status(&[0, 0, 4, 1, 4, 0, 0, 0, 1, 0x3f, 0xe1, 0x1f, 0x88], true),
            Some(200)
        );
    }
}
