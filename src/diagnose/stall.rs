//! Stalls and silences: who owes the next handshake message, and what it means when that side
//! stays silent (a timeout of the peer who waited) or closes (an abort), and connections that
//! carried no payload (unanswered or refused SYNs, servers that close at once).
//!
//! Thresholds (measured, see docs/timeouts.md): a waiting side that closes after at least
//! [`GAVE_UP_AFTER_NS`] of silence gave up; real clients that abort on a complete flight do so
//! within milliseconds of its last byte.

use super::borrowed::cert_problem;
use super::classify::{GAVE_UP_AFTER_NS, fail, incomplete, secs};
use super::{Confidence, Context, Reason, Verdict};
use crate::capture::Timestamp;
use crate::flow::{Direction, EndKind, Side, TcpFacts};
use crate::tls::{TlsFacts, finished_record_len};

pub(super) fn tcp_only(tcp: &TcpFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    if tcp.syn_count > 0 && tcp.syn_ack.is_none() {
        if let Some(rst) = tcp.dirs[Direction::ToClient].rst {
            return fail(
                v,
                Reason::ConnectionRefused,
                Side::Server,
                Confidence::High,
                format!(
                    "{server} refused the connection: its RST (frame {}) answered the SYN.",
                    rst.frame
                ),
            );
        }
        let first = tcp.syns.first().map(|a| a.ts).unwrap_or(tcp.first.ts);
        let waited = ctx.capture_end.nanos_since(first).max(tcp.last.ts.nanos_since(first));
        // A retransmitted SYN proves the first one went unanswered, whenever the capture ends.
        let timed_out = waited >= ctx.handshake_timeout_ns || tcp.end == EndKind::HandshakeTimeout;
        if tcp.syn_count >= 2 || timed_out {
            let confidence = if tcp.syn_count >= 2 && timed_out {
                Confidence::High
            } else {
                Confidence::Medium
            };
            let early = if timed_out {
                String::new()
            } else {
                format!(
                    " (the capture ended {} after the first SYN, before the {} handshake timeout)",
                    secs(waited),
                    secs(ctx.handshake_timeout_ns)
                )
            };
            return fail(
                v,
                Reason::SynUnanswered,
                Side::Server,
                confidence,
                format!(
                    "The client sent {} SYN{} to {server} over {} and never got an answer{early}: the server is down or a firewall drops the traffic.",
                    tcp.syn_count,
                    if tcp.syn_count == 1 { "" } else { "s" },
                    secs(tcp.last.ts.nanos_since(first))
                ),
            );
        }
        return incomplete(
            v,
            "capture_ended",
            Confidence::Medium,
            format!(
                "The capture ended {} after the SYN to {server}, too soon to call it a timeout.",
                secs(waited)
            ),
        );
    }
    // The server closed a connection before the client sent anything: a failure to connect.
    if tcp.syn_ack.is_some() || !tcp.midstream {
        let opened = tcp.syn_ack.map(|a| a.ts).unwrap_or(tcp.first.ts);
        if let Some((side, at, rst)) = tcp.first_close() {
            // Closing at once refuses the connection; closing an unused one later is a timeout of
            // the server's own (preconnects, pools) and not a failure.
            if side == Side::Server && at.ts.nanos_since(opened) < GAVE_UP_AFTER_NS {
                return fail(
                    v,
                    if rst {
                        Reason::ResetDuringHandshake
                    } else {
                        Reason::ClosedDuringHandshake
                    },
                    Side::Server,
                    Confidence::High,
                    format!(
                        "{server} {} the connection (frame {}) before the client sent its ClientHello.",
                        if rst { "reset" } else { "closed" },
                        at.frame
                    ),
                );
            }
        }
    }
    v.no_data = true;
    incomplete(
        v,
        "no_data",
        Confidence::High,
        format!("TCP connection to {server} carried no data (health check or idle connection)."),
    );
}

/// Who owes the next handshake message, as a direction (`ToClient`: the server must speak),
/// read from the handshake state: TLS ≤ 1.2, the server until its ServerHelloDone (or, resuming,
/// its Finished) and again after the client's Finished; TLS 1.3, the server until the client
/// answers its encrypted flight (the flight's end cannot be read, so a client that stays silent
/// after it was still waiting for it). A server record cut off mid-way is always the server's
/// debt. Without a ServerHello, the side that did not send the last handshake data.
pub(super) fn owing(tcp: &TcpFacts, tls: &TlsFacts) -> Direction {
    let (to_server, to_client) = (Direction::ToServer, Direction::ToClient);
    if tcp.dirs[to_client].payload_bytes == 0 {
        return to_client;
    }
    if tls.pending_record[to_client] > 0 && tls.pending_record[to_server] == 0 {
        return to_client;
    }
    let frame = |a: Option<crate::flow::At>| a.map(|a| a.frame);
    if tls.server_hello.is_some() {
        if tls.is_tls13() {
            if tls.tls13.client_first.is_none() {
                return to_client;
            }
        } else if !tls.sslv2_server_hello {
            let client_fin = frame(tls.finished[to_server]);
            let server_fin = frame(tls.finished[to_client]);
            return match (tls.server_hello_done, client_fin, server_fin) {
                // Resumption: the server's Finished came first; the client owes its own.
                (_, None, Some(_)) => to_server,
                (None, None, None) => to_client,
                (Some(_), None, None) => to_server,
                (_, Some(_), None) => to_client,
                (_, Some(_), Some(_)) => last_speaker_owed(tcp, tls),
            };
        }
    } else if let Some(hrr) = tls.hello_retry_request.as_ref() {
        // Asked to retry: the client owes a second ClientHello, then the server its answer.
        let retried = tls
            .client_hello_retry
            .as_ref()
            .is_some_and(|c| c.at.frame > hrr.at.frame);
        return if retried { to_client } else { to_server };
    }
    last_speaker_owed(tcp, tls)
}

/// The side that did not send the last handshake data owes the next.
fn last_speaker_owed(tcp: &TcpFacts, tls: &TlsFacts) -> Direction {
    // Handshake progress (records that move the handshake on), else raw TCP data.
    let last = |i: Direction| {
        tls.last_progress[i]
            .or(tcp.dirs[i].last_data)
            .map(|a| a.frame)
            .unwrap_or(0)
    };
    let c = last(Direction::ToServer);
    let s = last(Direction::ToClient);
    if s > c {
        Direction::ToServer
    } else {
        Direction::ToClient
    }
}

pub(super) fn stalled_or_closed(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) {
    let server = tcp.server;
    let mut owe = owing(tcp, tls);
    // TLS 1.3: whether the server's encrypted flight ended cannot be read. When it sent whole
    // encrypted records and then one side closed after a long silence, the side that closed was
    // the one waiting (a server's own handshake timer as much as a client's).
    let p = &tls.tls13;
    let flight_may_be_complete = tls.is_tls13()
        && p.client_first.is_none()
        && p.server_flight_records > 0
        && tls.pending_record[Direction::ToClient] == 0;
    if flight_may_be_complete {
        if let Some((closer, at, _)) = tcp.first_close() {
            let last_data = [Direction::ToServer, Direction::ToClient]
                .iter()
                .filter_map(|d| tcp.dirs[*d].last_data.map(|a| a.ts))
                .max()
                .unwrap_or(tcp.first.ts);
            if at.ts.nanos_since(last_data) >= GAVE_UP_AFTER_NS {
                owe = match closer {
                    Side::Server => Direction::ToServer,
                    _ => Direction::ToClient,
                };
            }
        }
    }
    // Data one side retransmitted and the other never acknowledged never reached it: the network
    // lost it. Either the owed answer (then the owing side did speak), or the request it answers
    // (then the owing side never got it): both leave the waiting side waiting.
    let lost_from = [owe, owe.flip()]
        .into_iter()
        .find(|d| tcp.unacked(*d) > 0 && tcp.dirs[*d].retransmissions > 0 && tcp.dirs[d.flip()].packets > 0);
    let network_loss = lost_from.is_some();
    let silent = if network_loss { Side::Network } else { owe.sender() };
    let waiting = owe.flip().sender();
    let server_sent_nothing = tcp.dirs[Direction::ToClient].payload_bytes == 0;
    let loss_note = match lost_from {
        Some(d) => format!(
            " The {}'s last {} bytes were never acknowledged although it retransmitted {} time(s): they were lost on the path (an MTU black hole drops exactly the large segments of a certificate flight).",
            d.sender(),
            tcp.unacked(d),
            tcp.dirs[d].retransmissions
        ),
        None => String::new(),
    };
    // The last handshake message either side sent: where the handshake stands.
    let last_msg = [Direction::ToServer, Direction::ToClient]
        .into_iter()
        .filter_map(|d| tls.last_message[d].map(|(n, a)| (d, n, a)))
        .max_by_key(|(_, _, a)| a.frame);
    let mut after = last_msg
        .map(|(d, n, a)| format!("after the {}'s {n} (frame {})", d.sender(), a.frame))
        .unwrap_or_default();
    if tls.is_tls13() && owe == Direction::ToClient && p.client_first.is_none() && p.server_flight_records > 0 {
        after.push_str(&format!(
            " and {} encrypted record(s) of its flight ({} bytes)",
            p.server_flight_records, p.server_flight_bytes
        ));
    }
    // The peer waited from the last byte either side sent (its own request, or the part of the
    // flight that did arrive); with a loss on the path, from its own last byte (what the other
    // side retransmitted never arrived).
    let waiting_last = if network_loss {
        tcp.dirs[owe.flip()].last_data.map(|a| a.ts)
    } else {
        [Direction::ToServer, Direction::ToClient]
            .iter()
            .filter_map(|d| tcp.dirs[*d].last_data.map(|a| a.ts))
            .max()
    }
    .unwrap_or(tcp.first.ts);
    let close = tcp.first_close().map(|(side, at, rst)| ((side, at), rst));
    if let Some(((closer, at), is_rst)) = close {
        let mut waited = at.ts.nanos_since(waiting_last);
        let mut said_note = String::new();
        if let Some((from, name)) = gave_up_saying(tcp, tls, owe).filter(|_| closer == waiting && !network_loss) {
            waited = at.ts.nanos_since(from);
            said_note = format!(" (saying {name} first)");
        }
        if closer == waiting && waited >= GAVE_UP_AFTER_NS {
            let reason = if server_sent_nothing {
                Reason::ServerSilent
            } else {
                Reason::HandshakeStalled
            };
            return fail(
                v,
                reason,
                silent,
                Confidence::High,
                if server_sent_nothing {
                    format!(
                        "{server} never answered the ClientHello; the client gave up after {} and {} the connection{said_note}.",
                        secs(waited),
                        if is_rst { "reset" } else { "closed" }
                    )
                } else if network_loss {
                    format!(
                        "The handshake stalled {after}: nothing arrived for {}, then the {waiting} {} the connection.{loss_note}",
                        secs(waited),
                        if is_rst { "reset" } else { "closed" }
                    )
                } else {
                    format!(
                        "The handshake stalled {after}: the {} owed the next message and sent nothing for {}, then the {waiting} gave up waiting and {} the connection{said_note}.",
                        owe.sender(),
                        secs(waited),
                        if is_rst { "reset" } else { "closed" }
                    )
                },
            );
        }
        let reason = if is_rst {
            Reason::ResetDuringHandshake
        } else {
            Reason::ClosedDuringHandshake
        };
        let state = last_msg
            .map(|(d, n, a)| format!(" after the {}'s {n} in frame {}", d.sender(), a.frame))
            .unwrap_or_default();
        return fail(
            v,
            reason,
            closer,
            Confidence::High,
            format!(
                "The {closer} {} the connection (frame {}){state}, before the TLS handshake with {server} completed, without a TLS alert.",
                if is_rst { "reset" } else { "closed" },
                at.frame
            ),
        );
    }
    let silent_for = ctx.capture_end.nanos_since(tcp.last.ts);
    let waited = ctx.capture_end.nanos_since(waiting_last);
    if tcp.end == EndKind::HandshakeTimeout || waited >= ctx.handshake_timeout_ns {
        let reason = if server_sent_nothing {
            Reason::ServerSilent
        } else {
            Reason::HandshakeStalled
        };
        return fail(
            v,
            reason,
            silent,
            Confidence::Medium,
            if server_sent_nothing {
                format!(
                    "{server} never answered the ClientHello ({} without an answer).",
                    secs(waited)
                )
            } else {
                format!(
                    "The handshake stalled {after}: the {} owed the next message and nothing came for {}.{loss_note}",
                    owe.sender(),
                    secs(waited)
                )
            },
        );
    }
    incomplete(
        v,
        "capture_ended",
        Confidence::Medium,
        format!(
            "The capture ended {} after the last packet, during the handshake with {server}.",
            secs(silent_for)
        ),
    );
}

/// TLS 1.3: the client answered the server's flight only with records that read as alerts
/// ([`crate::tls::Tls13Progress::client_alert`]). Soon after the server's last data it rejected
/// the server (most often its certificate); after a long silence it gave up waiting for the
/// rest of a flight that stopped (JSSE seals its user_canceled and close_notify alike).
pub(super) fn tls13_client_ended(tcp: &TcpFacts, tls: &TlsFacts, v: &mut Verdict) -> bool {
    let (p, server, finished) = (&tls.tls13, tcp.server, finished_record_len(tls.suite()));
    let Some(c) = p.client_alert(tls.suite()) else {
        return false;
    };
    let last = |d: Direction| tcp.dirs[d].last_data.map(|a| a.ts);
    let waited = match (last(Direction::ToServer), last(Direction::ToClient)) {
        (Some(c), Some(s)) => c.nanos_since(s),
        _ => 0,
    };
    // A client that waited for a complete flight was deciding (a prompt, a slow check), not
    // waiting for the rest: its refusal is read as one.
    if waited >= GAVE_UP_AFTER_NS && !p.server_flight_ends_with_finished(tls.suite()) {
        fail(
            v,
            Reason::HandshakeStalled,
            Side::Server,
            Confidence::Medium,
            format!(
                "{server}'s TLS 1.3 flight stopped after {} encrypted record(s) ({} bytes): the client waited {}, then sent only {} record(s) too short for a Finished ({finished} bytes) and closed: it gave up waiting for the rest.",
                p.server_flight_records,
                p.server_flight_bytes,
                secs(waited),
                p.client_records
            ),
        );
    } else {
        let records = match p.client_records {
            1 => format!("one encrypted record of an alert's size ({} bytes", c.len),
            n => format!("{n} encrypted records of an alert's size ({} bytes the first", c.len),
        };
        let answered = format!(
            "The client answered {server}'s TLS 1.3 flight with {records}; a Finished here is {finished}) and sent nothing more"
        );
        // The server's flight read with the key log, the client's records not (its secrets are
        // missing from the log): the chain's own fault is the likeliest cause, its alert unread.
        let sni = tls.sni();
        let at = tls.server_hello.as_ref().map(|s| s.at.ts).unwrap_or(tcp.first.ts);
        match tls
            .decrypted()
            .then(|| cert_problem(&tls.server_certificates, sni, at))
            .flatten()
        {
            Some((reason, detail)) => fail(
                v,
                reason,
                Side::Client,
                Confidence::Medium,
                format!(
                    "{answered}: it most likely refused the certificate the server's flight, decrypted with the key log, shows: {detail} (the client's own records were not decrypted, so its alert is unread)."
                ),
            ),
            None => fail(
                v,
                Reason::RejectedByClient,
                Side::Client,
                Confidence::Medium,
                format!("{answered}: it rejected the server, most often its certificate."),
            ),
        }
    }
    true
}

/// A side that gives up waiting may say so before it closes (JSSE sends user_canceled, then
/// close_notify, both warnings): when all it sent after its last handshake record were such
/// alerts, they are not data it waited after, and its wait runs from the owing side's last data
/// (or its own first) to its close. Read from TCP times and the record history only, so how the
/// stream was cut into segments does not matter: (wait start, the first alert's name).
fn gave_up_saying(tcp: &TcpFacts, tls: &TlsFacts, owe: Direction) -> Option<(Timestamp, &'static str)> {
    let waiting = owe.flip();
    let mine = |c: &char| c.is_ascii_uppercase() == (waiting == Direction::ToServer) && c.is_ascii_alphabetic();
    let mut said = tls.alerts.iter().filter(|a| a.direction == waiting).peekable();
    let first = said.peek().copied()?;
    let all_benign = said.all(|a| a.level == Some(1) && !a.fatal());
    let last_mine = tls.history.chars().rev().find(mine)?;
    if !all_benign || !last_mine.eq_ignore_ascii_case(&'l') {
        return None;
    }
    let from = [tcp.dirs[owe].last_data, tcp.dirs[waiting].first_data]
        .into_iter()
        .flatten()
        .max_by_key(|a| a.frame)?;
    Some((
        from.ts,
        first.description.and_then(|d| d.name()).unwrap_or("a warning alert"),
    ))
}
