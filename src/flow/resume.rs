//! Idle expiry without splitting: a connection silent for the idle timeout (or, joined
//! midstream, for the handshake timeout) is finished and reported, but its 4-tuple and next
//! sequence numbers are remembered (in its tombstone, for [`RESUME_NS`], at most as many as the
//! table holds connections), so that a segment continuing it after the gap (a TCP keep-alive, a
//! long-lived HTTP/2 connection's next request) joins the finished connection, whose verdict
//! stands, instead of opening a second, midstream session.
//! The capture's `tcp_idle_resumed` counter notes each connection that continued so.

use super::{Direction, PerDir, SeqNumber, TcpFacts};
use crate::capture::Timestamp;
use crate::decode::TcpSegment;

/// How long an idle-expired connection is remembered (nanoseconds of packet time): longer than
/// the usual TCP keep-alive interval (two hours on Linux).
pub(super) const RESUME_NS: i64 = 3 * 3600 * 1_000_000_000;

/// Bytes around a remembered next sequence number that count as continuing it (a keep-alive
/// probe repeats the last byte; data lost from the capture before the gap moves it on).
const RESUME_WINDOW: i64 = 1 << 20;

/// What an idle-expired connection leaves to recognise its continuation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Resume {
    /// Next sequence number per direction, when known.
    next: PerDir<Option<SeqNumber>>,
    /// Until when a segment that does not continue it is absorbed as a late packet; after, it
    /// opens a new connection as it would without this memory.
    pub linger_until: Timestamp,
    /// Whether a continuation was already counted.
    pub resumed: bool,
}

impl Resume {
    /// Remembers where a connection's two directions stand.
    pub(super) fn of(tcp: &TcpFacts, linger_until: Timestamp) -> Resume {
        let next = |d: Direction| tcp.dirs[d].seq_end.or(tcp.dirs[d.flip()].ack_max);
        Resume {
            next: PerDir([next(Direction::ToServer), next(Direction::ToClient)]),
            linger_until,
            resumed: false,
        }
    }

    /// Whether `seg`, sent in `dir`, continues the connection (then the remembered numbers
    /// move on with it).
    pub(super) fn continues(&mut self, dir: Direction, seg: &TcpSegment<'_>) -> bool {
        if seg.flags.syn {
            return false;
        }
        let near = |expected: Option<SeqNumber>, got: u32| {
            expected.is_some_and(|e| SeqNumber(got).diff(e).abs() <= RESUME_WINDOW)
        };
        let ok = match self.next[dir] {
            Some(_) => near(self.next[dir], seg.seq),
            None => seg.flags.ack && near(self.next[dir.flip()], seg.ack),
        };
        if ok {
            let end = SeqNumber(seg.seq).plus(seg.payload.len() + seg.missing as usize);
            if self.next[dir].is_none_or(|n| end.after(n)) {
                self.next[dir] = Some(end);
            }
        }
        ok
    }
}
