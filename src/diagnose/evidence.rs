//! The evidence of a decided session: its key events in frame order, in words for people.

use super::classify::{list, secs, short};
use super::{Evidence, Verdict};
use crate::flow::{At, Direction, EndKind, TcpFacts};
use crate::limits::MAX_EVIDENCE;
use crate::tls::TlsFacts;
use crate::tls::cert::secs_rfc3339;

/// The evidence of a decided session: its key events in frame order, at most
/// [`MAX_EVIDENCE`] of them (the first and the last halves), and how many were left out.
///
/// Built only when a report shows it (not for every session the classifier judges): it is
/// words for people, and most of a capture's sessions are counted, never shown.
pub fn evidence(tcp: &TcpFacts, tls: &TlsFacts, v: &Verdict) -> (Vec<Evidence>, u32) {
    let mut ev: Vec<Evidence> = Vec::new();
    let mut push = |at: At, dir: Option<Direction>, what: String| ev.push(Evidence::new(at, dir, what));
    let syn0 = tcp.syns.first().copied();
    for (i, s) in tcp.syns.iter().enumerate() {
        let what = match (i, syn0) {
            (0, _) => "SYN".to_string(),
            (_, Some(s0)) => format!("SYN retransmission #{i} (+{})", secs(s.ts.nanos_since(s0.ts))),
            _ => "SYN".to_string(),
        };
        push(*s, Some(Direction::ToServer), what);
    }
    if tcp.syn_count as usize > tcp.syns.len() {
        push(
            tcp.syns.last().copied().unwrap_or(tcp.first),
            Some(Direction::ToServer),
            format!("{} SYNs in all", tcp.syn_count),
        );
    }
    if let Some(a) = tcp.syn_ack {
        push(a, Some(Direction::ToClient), "SYN-ACK".into());
    }
    if let Some(ch) = &tls.client_hello {
        let mut what = if ch.sslv2_format {
            "SSLv2-format ClientHello".to_string()
        } else {
            "ClientHello".to_string()
        };
        if let Some(n) = &ch.server_name {
            what.push_str(&format!(" SNI={n}"));
        }
        what.push_str(&format!(", offers {}", list(&ch.offered_versions())));
        what.push_str(&format!(", {} suites", ch.real_suites().count()));
        if !ch.supported_groups.is_empty() {
            what.push_str(&format!(
                ", groups [{}]",
                ch.supported_groups
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        if !ch.alpn.is_empty() {
            what.push_str(&format!(", ALPN [{}]", ch.alpn.join(",")));
        }
        push(ch.at, Some(Direction::ToServer), what);
    }
    if let Some(h) = &tls.hello_retry_request {
        push(
            h.at,
            Some(Direction::ToClient),
            format!(
                "HelloRetryRequest{}",
                h.group.map(|g| format!(" asks for {g}")).unwrap_or_default()
            ),
        );
    }
    if let Some(ch) = &tls.client_hello_retry {
        push(ch.at, Some(Direction::ToServer), "second ClientHello".into());
    }
    if let Some(sh) = &tls.server_hello {
        push(
            sh.at,
            Some(Direction::ToClient),
            format!(
                "ServerHello {}, {}{}",
                sh.version,
                sh.cipher_suite,
                sh.group.map(|g| format!(", {g}")).unwrap_or_default()
            ),
        );
    }
    if let Some(at) = tls.server_certificate {
        let now = at.ts.secs();
        let what = match tls.server_certificates.first() {
            Some(c) if c.parse_error.is_none() => {
                let state = if now > c.not_after {
                    format!(", EXPIRED {} days before this frame", (now - c.not_after) / 86_400)
                } else if now < c.not_before {
                    " , NOT YET VALID at this frame".to_string()
                } else {
                    String::new()
                };
                format!(
                    "Certificate ({} in chain): {} issued by {}, valid {} to {}{state}",
                    tls.server_certificate_count,
                    c.subject,
                    c.issuer,
                    secs_rfc3339(c.not_before),
                    secs_rfc3339(c.not_after)
                )
            }
            _ => format!("Certificate ({} in chain, not parsed)", tls.server_certificate_count),
        };
        push(at, Some(Direction::ToClient), what);
    }
    if let Some(at) = tls.certificate_request {
        push(
            at,
            Some(Direction::ToClient),
            "CertificateRequest (server asks for a client certificate)".into(),
        );
    }
    if let Some(at) = tls.server_hello_done {
        push(at, Some(Direction::ToClient), "ServerHelloDone".into());
    }
    if let Some((at, n)) = tls.client_certificate {
        push(
            at,
            Some(Direction::ToServer),
            if n == 0 {
                "client Certificate: EMPTY (no client certificate)".into()
            } else {
                format!("client Certificate ({n} in chain)")
            },
        );
    }
    for d in [Direction::ToServer, Direction::ToClient] {
        let i = d;
        if let Some(at) = tls.ccs[i] {
            push(at, Some(d), "ChangeCipherSpec".into());
        }
        if let Some(at) = tls.finished[i] {
            push(at, Some(d), "Finished (encrypted)".into());
        }
        if let Some(fb) = &tls.first_bytes[i] {
            let label = if d == Direction::ToClient && tls.server_spoke_first && !tls.not_tls[d] {
                "server spoke first"
            } else {
                "not TLS"
            };
            push(
                fb.at,
                Some(d),
                format!("{label} ({}): \"{}\"", fb.looks_like, short(&fb.shown, 60)),
            );
        }
    }
    if let Some(p) = &tls.preamble {
        let name = p.protocol.name();
        let target = p.target.as_ref().map(|t| format!(" to {t}")).unwrap_or_default();
        if let Some((at, r)) = &p.request {
            push(
                *at,
                Some(Direction::ToServer),
                format!("{name} request{target}: \"{}\"", short(r, 60)),
            );
        }
        if let Some((at, r)) = &p.reply {
            push(
                *at,
                Some(Direction::ToClient),
                format!("{name} answer: \"{}\"", short(r, 60)),
            );
        }
    }
    if tls.is_tls13() {
        let p = &tls.tls13;
        if p.server_flight_records > 0 {
            if let Some(r) = tls.first_encrypted[Direction::ToClient].first() {
                push(
                    r.at,
                    Some(Direction::ToClient),
                    format!(
                        "server's encrypted flight: {} record(s), {} bytes",
                        p.server_flight_records, p.server_flight_bytes
                    ),
                );
            }
        }
        if let Some(c) = p.client_first {
            let kind = p.size_reads_as(Direction::ToServer, c.len, tls.suite());
            push(
                c.at,
                Some(Direction::ToServer),
                format!("client's first encrypted record: {} bytes ({kind})", c.len),
            );
        }
        if let Some(s) = p.server_after_client {
            let kind = p.size_reads_as(Direction::ToClient, s.len, tls.suite());
            push(
                s.at,
                Some(Direction::ToClient),
                format!("server's next encrypted record: {} bytes ({kind})", s.len),
            );
        }
    }
    for a in &tls.alerts {
        let what = match a.description {
            Some(d) => format!("Alert {} {d}", if a.level == Some(2) { "fatal" } else { "warning" }),
            None => format!("encrypted Alert ({} bytes)", a.record_len),
        };
        push(a.at, Some(a.direction), what);
    }
    for d in [Direction::ToServer, Direction::ToClient] {
        let i = d;
        if let Some(at) = tcp.dirs[i].fin {
            push(at, Some(d), "FIN".into());
        }
        if let Some(at) = tcp.dirs[i].rst {
            push(at, Some(d), "RST".into());
        }
    }
    super::keys::annotate(&mut ev, tls);
    if let Some(b) = &v.borrowed {
        ev.push(b.clone());
    }
    ev.sort_by_key(|e| e.frame);
    let last = tcp.last;
    if tcp.end == EndKind::CaptureEnd || tcp.end == EndKind::HandshakeTimeout {
        let idle = v.judged_at.nanos_since(last.ts);
        if idle > 0 && !tls.handshake_complete() {
            let what = format!("last packet; silence for {} until the end of the capture", secs(idle));
            ev.push(Evidence::new(last, None, what));
        }
    }
    let mut truncated = 0;
    if ev.len() > MAX_EVIDENCE {
        truncated = (ev.len() - MAX_EVIDENCE) as u32;
        let tail = ev.split_off(ev.len() - MAX_EVIDENCE / 2);
        ev.truncate(MAX_EVIDENCE / 2);
        ev.extend(tail);
    }
    (ev, truncated)
}
