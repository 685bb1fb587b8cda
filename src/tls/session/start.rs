//! Where a direction's TLS starts: the non-TLS first bytes that are not (yet) a failure — a
//! recognised STARTTLS or proxy preamble (see [`crate::tls::preamble`]), a server's banner
//! before its client spoke — and the preamble's bytes until the go-ahead.

use super::{Direction, FirstBytes, Mode, Start, State};
use crate::flow::At;
use crate::tls::hello::printable;
use crate::tls::preamble::{self, Preamble, PreambleOutcome, Step};

impl State {
    /// Decides what non-TLS (or, after a server's banner, any) first bytes of a direction mean
    /// when they are not simply a peer that does not speak TLS; `None` leaves them to that rule.
    pub(super) fn plaintext_start(&mut self, dir: Direction, first: &[u8], at0: At) -> Option<Start> {
        let tls_like = preamble::looks_like_client_hello(first);
        match dir {
            Direction::ToServer => {
                if let Some(p) = &self.preamble {
                    // After the go-ahead: a proxy's tunnel that carries something else is no TLS
                    // session; plaintext after a STARTTLS is the client's protocol error.
                    if !tls_like && p.facts.protocol.is_proxy() {
                        self.facts.tunnel_not_tls = true;
                        self.facts.first_bytes[dir] = Some(first_bytes(first, at0));
                        self.stop_all();
                        return Some(Start::NotTls);
                    }
                    return None;
                }
                if !self.facts.server_spoke_first && crate::tls::proxy_header::starts_header(first) {
                    self.facts.note("proxy_protocol_header");
                    return Some(Start::ProxyHeader);
                }
                let banner = self.facts.server_spoke_first.then_some(self.banner.as_slice());
                if !tls_like {
                    if let Some(p) = preamble::recognise(first, banner) {
                        self.preamble = Some(Box::new(Preamble::new(p, at0)));
                        self.facts.hist(dir, 'p', false);
                        for d in [Direction::ToServer, Direction::ToClient] {
                            if matches!(self.dirs[d].mode, Mode::Start | Mode::Banner) {
                                self.dirs[d].mode = Mode::Preamble;
                            }
                        }
                        return Some(Start::Preamble);
                    }
                }
                if self.facts.server_spoke_first {
                    // The server spoke something else first; whatever the client answers, the
                    // server is not TLS. A client answering in plaintext too (SSH on 443) is no
                    // TLS client either: no TLS on either side.
                    if !tls_like {
                        self.facts.not_tls[dir] = true;
                        self.facts.first_bytes[dir] = Some(first_bytes(first, at0));
                    }
                    self.facts.not_tls[Direction::ToClient] = true;
                    self.stop_all();
                    return Some(Start::NotTls);
                }
                None
            }
            Direction::ToClient => {
                let client = &self.dirs[Direction::ToServer];
                let client_silent = client.mode == Mode::Start && client.first_at.is_none();
                // TLS from the server (the client's side may be missing from the capture) is
                // read as TLS.
                let tls = super::plausible_header(first) || first.first().is_some_and(|b| b & 0x80 != 0);
                if self.preamble.is_some() || !client_silent || tls {
                    return None;
                }
                // A server that speaks first (a banner) to a client that sent nothing yet: wait
                // for the client before calling it anything.
                self.facts.server_spoke_first = true;
                self.facts.first_bytes[dir] = Some(first_bytes(first, at0));
                self.banner = first.to_vec();
                self.facts.hist(dir, 'q', false);
                self.dirs[dir].mode = Mode::Banner;
                Some(Start::Banner)
            }
        }
    }

    /// Stops reading both directions: the outcome is known.
    pub(super) fn stop_all(&mut self) {
        for d in [Direction::ToServer, Direction::ToClient] {
            self.dirs[d].mode = Mode::Stopped;
        }
        self.done = true;
    }

    /// Reads preamble bytes of `dir`; returns the bytes that are TLS already (after a switch).
    pub(super) fn preamble_data(&mut self, dir: Direction, data: &[u8], at: At) -> Option<Vec<u8>> {
        let Some(p) = self.preamble.as_mut() else {
            self.stop_all();
            return None;
        };
        let step = p.feed(dir, data, at);
        self.facts.preamble = Some(Box::new(p.facts.clone()));
        match step {
            Step::More => None,
            Step::Tls(rest) => {
                let st = &mut self.dirs[dir];
                st.mode = Mode::Start;
                st.first.clear();
                st.first_at = None;
                if p.facts.outcome == PreambleOutcome::Upgraded && dir == Direction::ToClient {
                    self.facts.hist(dir, 'p', false);
                }
                Some(rest)
            }
            Step::Refused | Step::GaveUp => {
                self.stop_all();
                None
            }
        }
    }
}

/// Shows the first bytes of a non-TLS peer safely.
pub(super) fn first_bytes(b: &[u8], at: At) -> FirstBytes {
    let text_like = b
        .iter()
        .filter(|c| c.is_ascii_graphic() || matches!(c, b' ' | b'\r' | b'\n' | b'\t'))
        .count();
    let is_text = !b.is_empty() && text_like * 10 >= b.len() * 9;
    let looks_like = if b.starts_with(b"HTTP/") {
        "HTTP response"
    } else if [
        &b"GET "[..],
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"OPTIONS ",
        b"CONNECT ",
        b"DELETE ",
    ]
    .iter()
    .any(|m| b.starts_with(m))
    {
        "HTTP request"
    } else if b.starts_with(b"SSH-") {
        "SSH banner"
    } else if b.starts_with(b"220 ") || b.starts_with(b"220-") {
        "SMTP/FTP greeting"
    } else if b.starts_with(b"+OK") || b.starts_with(b"* OK") {
        "POP3/IMAP greeting"
    } else if is_text {
        "text"
    } else {
        "binary data"
    };
    let shown = if is_text {
        printable(b)
    } else {
        crate::tls::cert::hex(b)
    };
    FirstBytes { at, shown, looks_like }
}
