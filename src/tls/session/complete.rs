//! When a handshake completed, as far as the wire shows, and what is still read after it.

use super::TlsFacts;
use crate::flow::Direction;

impl TlsFacts {
    /// Whether the handshake completed, as far as the wire shows.
    pub fn handshake_complete(&self) -> bool {
        if self.is_tls13() {
            let p = &self.tls13;
            if let Some(k) = self.keys.as_ref().filter(|k| k.server_read() && k.client_read()) {
                // Read, not inferred: both Finished, no fatal alert, and the server's answer to
                // the client's flight either read or not an alert by its size.
                return self.finished.iter().all(Option::is_some)
                    && p.server_after_client.is_some()
                    && self.first_fatal_alert().is_none()
                    && (k.application_keys[Direction::ToClient] || self.server_rejected_client().is_none());
            }
            match &p.client_first {
                Some(c) => {
                    !p.alert_sized(Direction::ToServer, c.len)
                        && p.client_alert(self.suite()).is_none()
                        && p.server_after_client.is_some()
                        && self.server_rejected_client().is_none()
                }
                None => false,
            }
        } else if self.sslv2_server_hello {
            self.encrypted_records[Direction::ToServer] > 0 && self.encrypted_records[Direction::ToClient] > 0
        } else {
            self.finished[Direction::ToServer].is_some()
                && self.finished[Direction::ToClient].is_some()
                && !self.keys.as_ref().is_some_and(|k| k.damaged())
        }
    }

    /// TLS <= 1.2 with keys, handshake complete: the client's first record after its Finished
    /// is not yet read. It is (one record): a client that judges the server's certificate while
    /// the handshake goes on (NSS) refuses it there with an alert instead of sending a request.
    pub(super) fn awaits_client_next(&self) -> bool {
        !self.is_tls13()
            && !self.sslv2_server_hello
            && self.finished[Direction::ToServer].is_some()
            && self.keys.as_ref().is_some_and(|k| k.usable && k.client_next.is_none())
    }
}
