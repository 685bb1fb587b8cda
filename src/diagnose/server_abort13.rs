//! TLS 1.3 without keys: a server that aborts right after its ServerHello with an encrypted alert.
//!
//! A server that finds something missing from the client's offer only once it builds its
//! encrypted flight (Go's crypto/tls checks ALPN there and sends no_application_protocol) has
//! already sent its ServerHello; its alert then goes out sealed with the handshake keys. Its
//! whole "flight" is one record of an alert's size (a real flight holds at least a Finished,
//! larger), and it closes. The description cannot be read without keys, but the fact that the
//! server ended the handshake with an alert can: a fatal alert from the server, not a silent close.

use super::classify::fail;
use super::{Confidence, Reason, Verdict};
use crate::flow::{Direction, Side, TcpFacts};
use crate::tls::TlsFacts;

/// Gives the verdict and returns true when the server's only encrypted record after its
/// ServerHello is alert-sized, the client sent no encrypted record, and the server closed first.
pub(super) fn aborted(tcp: &TcpFacts, tls: &TlsFacts, v: &mut Verdict) -> bool {
    let p = &tls.tls13;
    if !tls.is_tls13() || tls.decrypted() || tls.server_hello.is_none() || p.client_first.is_some() {
        return false;
    }
    if p.server_flight_records != 1 || !p.alert_sized(Direction::ToClient, p.server_flight_bytes) {
        return false;
    }
    let Some((Side::Server, at, rst)) = tcp.first_close() else {
        return false;
    };
    fail(
        v,
        Reason::FatalAlert,
        Side::Server,
        Confidence::Medium,
        format!(
            "{} answered the ClientHello with a ServerHello, then with a single encrypted record the size of an alert ({} bytes) instead of its certificate flight, and {} the connection (frame {}): it ended the handshake with an encrypted fatal alert after choosing the version and cipher (a server does so when the client's offer lacks something it requires, such as an ALPN protocol it speaks); its description cannot be read without keys.",
            tcp.server,
            p.server_flight_bytes,
            if rst { "reset" } else { "closed" },
            at.frame
        ),
    );
    true
}
