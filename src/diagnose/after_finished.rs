//! TLS 1.2 (and older) handshakes that completed on the wire but that the client refused at
//! once: its first record after its Finished is an alert, not a request. NSS (the TLS stack of
//! Firefox) judges the server's certificate while its handshake goes on: it sends its key
//! exchange, ChangeCipherSpec and Finished, and when the verdict is a refusal its next record is
//! a fatal alert; the server's ChangeCipherSpec and Finished may cross it on the wire. With keys
//! the alert is read and judged as any alert. Without keys an encrypted alert there cannot be
//! told from a close_notify (curl with OpenSSL refusing a name after the handshake, a health
//! check): the session stays established with the chain's faults as warnings; one sent before
//! the server's ChangeCipherSpec is read by [`super::sealed_alert`].

use super::classify::alert_verdict;
use super::{Context, Verdict};
use crate::flow::{Direction, TcpFacts};
use crate::tls::names::AlertDescription as A;
use crate::tls::{AlertEvent, ClientNext, TlsFacts};

/// How soon after its Finished the client's alert counts as answering the handshake.
const AT_ONCE_NS: i64 = 2_000_000_000;

/// Gives the verdict when the client refused a completed TLS <= 1.2 handshake at once; returns
/// whether it did.
pub(super) fn client_refused(tcp: &TcpFacts, tls: &TlsFacts, ctx: &Context<'_>, v: &mut Verdict) -> bool {
    if tls.is_tls13() {
        return false;
    }
    let Some(finished) = tls.finished[Direction::ToServer] else {
        return false;
    };
    // With keys: the alert read.
    if let Some(ClientNext::Alert(desc, at)) = tls.keys.as_deref().and_then(|k| k.client_next) {
        // The ends of a session and the warnings a client may send: no refusal.
        let benign = matches!(
            desc,
            A::CLOSE_NOTIFY | A::USER_CANCELED | A::NO_RENEGOTIATION | A::UNRECOGNIZED_NAME
        );
        if benign || at.ts.nanos_since(finished.ts) > AT_ONCE_NS {
            return false;
        }
        // An alert after the server closed answers the close (OpenSSL 3 says decode_error at an
        // end of stream without close_notify): the handshake had completed.
        if tcp
            .first_close()
            .is_some_and(|(side, closed, _)| side == crate::flow::Side::Server && closed.frame < at.frame)
        {
            return false;
        }
        let read = tls
            .alerts
            .iter()
            .find(|a| a.direction == Direction::ToServer && a.at.frame == at.frame && a.description == Some(desc));
        if read.is_some_and(|a| !a.fatal()) {
            return false;
        }
        let made;
        let a = match read {
            Some(a) => a,
            None => {
                made = AlertEvent {
                    direction: Direction::ToServer,
                    at,
                    level: Some(2),
                    description: Some(desc),
                    encrypted: false,
                    record_len: 2,
                };
                &made
            }
        };
        alert_verdict(a, tcp, tls, ctx, v);
        return true;
    }
    // Without keys the record says no more than a close_notify would (curl with OpenSSL
    // closes so after a name it refuses, a health check after nothing): the session stays
    // established, the chain's faults as warnings.
    false
}
