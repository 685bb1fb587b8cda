//! TLS: record deframing, handshake reassembly and the per-session facts.
//!
//! What it is: a [`Session`] per TCP connection that receives each direction's ordered bytes
//! (and gaps) from the flow layer, frames TLS records itself (validating every header, so
//! non-TLS bytes are recognised at once instead of waiting for a 16 KB "record"), reassembles
//! handshake messages across records, parses them with tls-parser and x509-parser, and records
//! the facts the diagnosis needs ([`TlsFacts`]): hellos, certificates, alerts (plaintext or
//! encrypted), ChangeCipherSpec and Finished positions, encrypted record sizes, and the first
//! bytes of a peer that does not speak TLS.
//!
//! What it is not: it does not decide why a session failed (that is [`crate::diagnose`]). It
//! decrypts only when the run has a key log ([`keylog`], [`decrypt`]), and then only the
//! handshake records and those up to the verdict.
//!
//! Guarantees: every length is checked against [`crate::limits`]; after a gap the deframer
//! resynchronises on purpose and the session records that it lost sync; once the handshake's
//! outcome is known the session stops asking for bytes, so application data costs nothing.

pub mod cert;
pub mod decrypt;
pub mod dn;
pub mod fingerprint;
pub mod hello;
pub mod http_status;
pub mod keylog;
pub mod names;
pub mod preamble;
pub mod proxy_header;
mod session;

pub use session::{
    AlertEvent, ClientNext, EncRecord, FirstBytes, KeyUse, ServerAnswer, Session, Tls13Progress, TlsFacts,
    finished_record_len,
};

/// Content types of the TLS record layer.
pub mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
    pub const HEARTBEAT: u8 = 24;
}

/// Record payload size of an AEAD-sealed TLS 1.3 alert: 2 bytes of alert, 1 byte of inner content
/// type, 16 bytes of tag (AES-GCM, ChaCha20-Poly1305, AES-CCM).
pub const TLS13_ALERT_RECORD_LEN: usize = 19;

/// Whether an encrypted record's payload length is that of a sealed alert.
pub fn alert_sized(len: usize) -> bool {
    len == TLS13_ALERT_RECORD_LEN || len == 11
}
