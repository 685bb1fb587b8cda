//! Bytes a direction never showed: a lost segment's hole, a snap-length cut, the unknown start
//! of a connection joined midway. Where the framing can be kept, it is; else the direction
//! searches for the next record header ([`Mode::Resync`]).

use super::{Direction, Mode, State, be16, byte};
use crate::limits::MAX_HANDSHAKE_MESSAGE;
use crate::tls::content;
use crate::tls::preamble::PreambleOutcome;

impl State {
    /// `cut`: the snap length cut these bytes off their segment (see [`crate::flow::Chunk::Cut`]).
    pub(super) fn gap(&mut self, dir: Direction, len: u64, cut: bool) {
        let d = dir;
        let st = &mut self.dirs[d];
        match st.mode {
            Mode::Stopped | Mode::Banner => {}
            Mode::Preamble => {
                // Lost preamble bytes: where TLS starts can no longer be told.
                if let Some(p) = self.preamble.as_mut() {
                    p.facts.outcome = PreambleOutcome::GaveUp;
                    self.facts.preamble = Some(Box::new(p.facts.clone()));
                }
                self.facts.lost_sync[d] += 1;
                self.stop_all();
            }
            Mode::Start => {
                // The direction's first bytes are missing (len > 0) or its start is unknown
                // (len 0, no SYN seen): search for a record header instead of classifying.
                st.first.clear();
                st.mode = Mode::Resync;
                if len > 0 {
                    self.facts.lost_sync[d] += 1;
                }
            }
            Mode::Resync => st.rec.clear(),
            Mode::ProxyHeader => {
                // Part of the header is missing: look for the first record header instead.
                st.mode = Mode::Resync;
                self.facts.lost_sync[d] += 1;
            }
            Mode::Records => {
                let len = len as usize;
                if st.skip > 0 && len <= st.skip {
                    // The hole is inside an opaque record we skip anyway.
                    st.skip -= len;
                    return;
                }
                if st.rec.len() >= 5 {
                    let rec_len = be16(&st.rec, 3) as usize;
                    let remaining = rec_len - (st.rec.len() - 5);
                    let was_handshake = byte(&st.rec, 0) == content::HANDSHAKE;
                    // A message that starts in the damaged record still shows its claimed length.
                    let claimed = u32::from_be_bytes([0, byte(&st.rec, 6), byte(&st.rec, 7), byte(&st.rec, 8)]);
                    let too_long = was_handshake
                        && st.hs.is_empty()
                        && st.rec.len() >= 9
                        && claimed as usize > MAX_HANDSHAKE_MESSAGE;
                    st.rec.clear();
                    if too_long {
                        self.facts.note("handshake_too_long");
                    }
                    let st = &mut self.dirs[d];
                    if was_handshake {
                        st.hs.clear();
                        st.hs_skip = 0;
                        self.facts.handshake_messages_lost[d] += 1;
                    }
                    if len < remaining || (cut && len == remaining) {
                        // The next record starts right after the damaged one (or right after
                        // the cut, when the snap length cut exactly the record's last bytes).
                        self.dirs[d].skip = remaining - len;
                        self.facts.note("tls_record_damaged_by_gap");
                        return;
                    }
                }
                self.lose_sync(dir, "tls_lost_sync_after_gap");
            }
        }
    }

    pub(super) fn lose_sync(&mut self, dir: Direction, key: &'static str) {
        let d = dir;
        let st = &mut self.dirs[d];
        st.mode = Mode::Resync;
        st.rec.clear();
        st.skip = 0;
        if !st.hs.is_empty() {
            st.hs.clear();
            self.facts.handshake_messages_lost[d] += 1;
        }
        st.hs_skip = 0;
        self.facts.lost_sync[d] += 1;
        self.facts.note(key);
    }
}
