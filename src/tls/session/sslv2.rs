//! SSLv2 records: an SSLv2-format ClientHello (parsed for what it offers) and, after an SSLv2
//! ServerHello, records that are only counted.

use super::{Direction, State, be16, byte, part};
use crate::flow::At;
use crate::tls::hello::ClientHello;
use crate::tls::names::Version;

impl State {
    /// Frames SSLv2 records (after an SSLv2 ServerHello): only counted, never parsed.
    pub(super) fn sslv2_records(&mut self, dir: Direction, data: &[u8], at: At) -> usize {
        let d = dir;
        let mut i = 0;
        while i < data.len() && !self.done {
            let st = &mut self.dirs[d];
            if st.skip > 0 {
                let take = st.skip.min(data.len() - i);
                st.skip -= take;
                i += take;
                continue;
            }
            let hdr = if st.rec.first().is_some_and(|b| b & 0x80 == 0) {
                3
            } else {
                2
            };
            let take = (hdr - st.rec.len().min(hdr)).min(data.len() - i);
            st.rec.extend_from_slice(part(data, i, i + take));
            i += take;
            let b0 = byte(&st.rec, 0);
            if st.rec.len() < hdr || (st.rec.len() < 3 && b0 & 0x80 == 0) {
                continue;
            }
            let mask = if b0 & 0x80 != 0 { 0x7f } else { 0x3f };
            let len = (((b0 & mask) as usize) << 8) | byte(&st.rec, 1) as usize;
            st.skip = len.saturating_sub(st.rec.len() - hdr);
            st.rec.clear();
            self.facts.records[d] += 1;
            self.facts.encrypted_records[d] += 1;
            self.facts.encrypted_bytes[d] += len as u64;
            self.facts.last_progress[d] = Some(at);
            self.facts.hist(dir, 'd', true);
            self.done = self.outcome_known();
        }
        i
    }

    pub(super) fn sslv2_client_hello(&mut self, b: &[u8], at: At) {
        // [len:2][type=1][version:2][cipher_specs_len:2][session_id_len:2][challenge_len:2] specs…
        let mut ch = ClientHello {
            at,
            record_version: Version::SSL2,
            legacy_version: Version(be16(b, 3)),
            sslv2_format: true,
            ..ClientHello::default()
        };
        if b.len() >= 11 {
            let specs_len = be16(b, 5) as usize;
            let specs = part(b, 11, 11 + specs_len);
            for s in specs.chunks_exact(3) {
                if byte(s, 0) == 0 {
                    ch.cipher_suites.push(crate::tls::names::CipherSuite(be16(s, 1)));
                }
            }
        }
        self.facts.at_client_hello = Some(at);
        self.facts.client_hello = Some(Box::new(ch));
        self.facts.hist(Direction::ToServer, 'c', false);
        self.facts.note("sslv2_client_hello");
    }
}
