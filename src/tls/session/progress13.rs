//! TLS 1.3 without keys: the handshake's progress read from the encrypted records' sizes and order.
//!
//! An alert sealed without padding is 19 bytes (11 with AES-CCM-8), but RFC 8446 §5.4 lets a
//! sender pad every record, and some stacks do (JSSE, Java's, adds 16 zero bytes to each: its
//! alerts are 35 bytes). A side's padding is read off its Finished when that came in a record of
//! its own, since the Finished's plaintext size is fixed by the suite's hash: the server's is the
//! last record of its flight, the client's the first record of its own.

use super::{EncRecord, alert_sized};
use crate::flow::Direction;
use serde::Serialize;

/// The most padding believed: beyond it, a "Finished" is really several messages in one record
/// (the smallest CertificateVerify alone is larger).
const MAX_PADDING: usize = 64;

/// Progress of a TLS 1.3 handshake, inferred from encrypted record sizes and order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tls13Progress {
    /// Server's encrypted records before the client answered (its flight).
    pub server_flight_records: u32,
    pub server_flight_bytes: usize,
    /// The client's first encrypted record after the ServerHello (Finished, or an alert).
    pub client_first: Option<EncRecord>,
    /// Client encrypted records and bytes before the server's next record.
    pub client_flight_records: u32,
    pub client_flight_bytes: usize,
    /// The client's last record before the server's next one.
    pub client_flight_last: Option<EncRecord>,
    /// The client's flight ended with an alert-sized record after its Finished (close_notify).
    pub client_closed: bool,
    /// Every client encrypted record after the server's flight read until the outcome was known
    /// (not only those before the server's next record).
    pub client_records: u32,
    /// The last of them.
    pub client_last: Option<EncRecord>,
    /// The server's first record after the client's flight.
    pub server_after_client: Option<EncRecord>,
    pub server_after_client_records: u32,
    /// Of those, the ones larger than an alert (tickets, data).
    pub server_after_client_data: u32,
    /// Bytes of padding each side adds to its records (read off its Finished; 0 = none seen).
    pub server_padding: u8,
    pub client_padding: u8,
    /// The length of the server's last flight record so far (its Finished when sent alone).
    #[serde(skip)]
    server_flight_last: usize,
    /// The longest client record after the server's flight.
    #[serde(skip)]
    client_longest: usize,
}

/// Payload length of an unpadded TLS 1.3 Finished record: handshake header, verify_data (the
/// suite's hash), inner content type, AEAD tag.
pub fn finished_record_len(suite: u16) -> usize {
    match suite {
        0x1302 => 4 + 48 + 1 + 16, // TLS_AES_256_GCM_SHA384
        0x1305 => 4 + 32 + 1 + 8,  // TLS_AES_128_CCM_8_SHA256
        _ => 4 + 32 + 1 + 16,
    }
}

/// The padding of a record that holds a Finished alone, if its length says it does.
fn padding_of(finished_len: usize, suite: u16) -> u8 {
    let pad = finished_len.saturating_sub(finished_record_len(suite));
    if pad <= MAX_PADDING {
        u8::try_from(pad).unwrap_or(0)
    } else {
        0
    }
}

impl Tls13Progress {
    /// One encrypted application_data record of a TLS 1.3 session (`suite`: the ServerHello's).
    pub(super) fn record(&mut self, dir: Direction, rec: EncRecord, suite: u16) {
        match dir {
            Direction::ToClient => {
                if self.client_first.is_none() {
                    self.server_flight_records += 1;
                    self.server_flight_bytes += rec.len;
                    self.server_flight_last = rec.len;
                } else {
                    if self.server_after_client.is_none() {
                        self.server_after_client = Some(rec);
                    }
                    self.server_after_client_records += 1;
                    self.server_after_client_data += u32::from(!self.alert_sized(dir, rec.len));
                }
            }
            Direction::ToServer => {
                if self.server_flight_records == 0 {
                    // Early data before the server's flight.
                    return;
                }
                if self.client_first.is_none() {
                    self.client_first = Some(rec);
                    // A flight of one record holds every message: no Finished of its own.
                    if self.server_flight_records > 1 {
                        self.server_padding = padding_of(self.server_flight_last, suite);
                    }
                    self.client_padding = padding_of(rec.len, suite);
                }
                self.client_records = self.client_records.saturating_add(1);
                self.client_last = Some(rec);
                self.client_longest = self.client_longest.max(rec.len);
                if self.server_after_client.is_none() {
                    self.client_flight_records += 1;
                    self.client_flight_bytes += rec.len;
                    // An alert-sized record after the client's Finished is its close_notify.
                    self.client_closed = self.client_flight_records > 1 && self.alert_sized(dir, rec.len);
                    self.client_flight_last = Some(rec);
                }
            }
        }
    }

    /// Whether the server's flight (more than one record) ends with a record of a Finished's size,
    /// alone and padded at most by the bound: it is complete, so a client that waited and then
    /// refused was not waiting for the rest of it.
    pub fn server_flight_ends_with_finished(&self, suite: u16) -> bool {
        let f = finished_record_len(suite);
        self.server_flight_records > 1 && self.server_flight_last >= f && self.server_flight_last - f <= MAX_PADDING
    }

    /// Whether a record `dir` sent has the size of a sealed alert, unpadded or with the padding
    /// that side was seen to use.
    pub fn alert_sized(&self, dir: Direction, len: usize) -> bool {
        let pad = usize::from(match dir {
            Direction::ToServer => self.client_padding,
            Direction::ToClient => self.server_padding,
        });
        alert_sized(len) || (pad > 0 && len > pad && alert_sized(len - pad))
    }

    /// The client's first record when it reads as an alert that ended its flight: alert-sized
    /// and all the client sent before the server's next record, or (its padding unknown) it and
    /// at most one more (a close_notify) too short for a Finished and all the client sent at
    /// all. A client's flight can open only with a Certificate (an empty one is followed by its
    /// Finished, maybe only after the server refused it), an EndOfEarlyData (followed by its
    /// Finished), a Finished, or an alert.
    pub fn client_alert(&self, suite: u16) -> Option<EncRecord> {
        let c = self.client_first?;
        let sized = self.alert_sized(Direction::ToServer, c.len) && self.client_flight_records <= 1;
        let short = self.client_longest < finished_record_len(suite) && self.client_records <= 2;
        (sized || short).then_some(c)
    }

    /// How the size of a record after the server's flight reads, for the evidence.
    pub fn size_reads_as(&self, dir: Direction, len: usize, suite: u16) -> &'static str {
        match dir {
            _ if self.alert_sized(dir, len) => "alert-sized",
            Direction::ToServer if len < finished_record_len(suite) => "shorter than a Finished",
            Direction::ToServer => "Finished-sized or larger",
            Direction::ToClient => "data",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::At;

    const SHA384: u16 = 0x1302;

    fn progress(records: &[(Direction, usize)]) -> Tls13Progress {
        let mut p = Tls13Progress::default();
        for (i, &(dir, len)) in records.iter().enumerate() {
            let at = At {
                frame: i as u64 + 1,
                ..At::default()
            };
            p.record(
                dir,
                EncRecord {
                    at,
                    len,
                    content_type: 23,
                },
                SHA384,
            );
        }
        p
    }

    /// The sizes of a JSSE server's TLS 1.3 records (each padded by 16 bytes): its Finished (85)
    /// gives its padding, so its 35-byte record after the client's flight is an alert.
    #[test]
    fn padding_is_read_off_the_finished() {
        use Direction::{ToClient as S, ToServer as C};
        let p = progress(&[(S, 65), (S, 945), (S, 297), (S, 85), (C, 25), (C, 69), (C, 90), (S, 35)]);
        assert_eq!((p.server_padding, p.client_padding), (16, 0));
        assert!(p.alert_sized(S, 35) && p.alert_sized(S, 19) && !p.alert_sized(C, 35));
        assert_eq!(p.server_after_client_data, 0);
        assert!(p.client_alert(SHA384).is_none());
        // One record for the whole flight holds no Finished of its own: no padding read.
        assert_eq!(progress(&[(S, 1300), (C, 69)]).server_padding, 0);
        // A client padding its Finished pads its close_notify alike.
        let p = progress(&[(S, 23), (S, 929), (S, 281), (S, 69), (C, 85), (C, 35)]);
        assert!(p.client_padding == 16 && p.client_closed);
    }

    /// A client's lone record too short for a Finished is its alert; one followed by more (an
    /// empty Certificate, then its Finished after the server's refusal) is not.
    #[test]
    fn a_lone_short_client_record_is_an_alert() {
        use Direction::{ToClient as S, ToServer as C};
        let p = progress(&[(S, 23), (S, 929), (S, 281), (S, 69), (C, 35)]);
        assert_eq!(p.client_alert(SHA384).map(|r| r.len), Some(35));
        assert_eq!(p.size_reads_as(C, 35, SHA384), "shorter than a Finished");
        let p = progress(&[
            (S, 23),
            (S, 122),
            (S, 1791),
            (S, 281),
            (S, 69),
            (C, 41),
            (S, 19),
            (C, 85),
            (C, 68),
        ]);
        assert!(p.client_alert(SHA384).is_none());
        assert_eq!(p.size_reads_as(S, 19, SHA384), "alert-sized");
        assert!(
            progress(&[(S, 23), (S, 929), (S, 281), (S, 69), (C, 69)])
                .client_alert(SHA384)
                .is_none()
        );
    }
}
