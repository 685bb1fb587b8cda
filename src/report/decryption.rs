//! What decryption with the key log did for a session, in the JSON report: counts and message
//! names only (no secret, key or plaintext).

use crate::flow::Direction;
use crate::tls::KeyUse;
use schemars::JsonSchema;
use serde::Serialize;

/// The key log's part in a session (present only when the run has a key log).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptionReport {
    /// The key log has secrets for this session's ClientHello random.
    pub keys_found: bool,
    /// Records opened with the key log [client→server, server→client].
    pub records_decrypted: [u32; 2],
    /// Records that did not open (damaged, or not for these keys) [client→server, server→client].
    pub records_not_decrypted: [u32; 2],
    /// Handshake messages and alerts read from decrypted records, in order, as "client Finished".
    pub messages: Vec<String>,
}

impl DecryptionReport {
    pub fn new(k: &KeyUse) -> DecryptionReport {
        let [c, s] = [Direction::ToServer, Direction::ToClient];
        DecryptionReport {
            keys_found: k.found,
            records_decrypted: [k.opened[c], k.opened[s]],
            records_not_decrypted: [k.failed[c], k.failed[s]],
            messages: k
                .messages
                .iter()
                .map(|(d, name, _)| format!("{} {name}", d.sender()))
                .collect(),
        }
    }
}
