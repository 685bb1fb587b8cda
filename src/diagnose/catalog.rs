//! The reason catalog: every failure tlsdiag can name, with its cause, meaning, the browser error
//! a user most likely saw, and a one-line hint. Ids are stable: they never change meaning.
//! `docs/reasons.md` publishes this table; a test keeps the two equal.

use serde::{Serialize, Serializer};
use std::fmt;

/// The four causes of a failed session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Timeout,
    Protocol,
    Certificate,
    Cipher,
}

impl Cause {
    /// The snake_case id.
    pub fn id(self) -> &'static str {
        match self {
            Cause::Timeout => "timeout",
            Cause::Protocol => "protocol",
            Cause::Certificate => "certificate",
            Cause::Cipher => "cipher",
        }
    }

    /// All causes, in report order.
    pub const ALL: [Cause; 4] = [Cause::Timeout, Cause::Protocol, Cause::Certificate, Cause::Cipher];
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

macro_rules! reasons {
    ($( $variant:ident => $id:literal, $cause:ident, $browser:literal, $meaning:literal, $hint:literal; )*) => {
        /// Why a session failed: one entry of the catalog.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason { $( $variant, )* }

        impl Reason {
            /// Every reason, in catalog order.
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The stable snake_case id.
            pub fn id(self) -> &'static str {
                match self { $( Reason::$variant => $id, )* }
            }

            /// The cause this reason belongs to.
            pub fn cause(self) -> Cause {
                match self { $( Reason::$variant => Cause::$cause, )* }
            }

            /// The error a browser (Chrome) most likely showed.
            pub fn browser_error(self) -> &'static str {
                match self { $( Reason::$variant => $browser, )* }
            }

            /// One line: what it means.
            pub fn meaning(self) -> &'static str {
                match self { $( Reason::$variant => $meaning, )* }
            }

            /// One line: what to fix.
            pub fn hint(self) -> &'static str {
                match self { $( Reason::$variant => $hint, )* }
            }

            /// Looks a reason up by id.
            pub fn from_id(id: &str) -> Option<Reason> {
                Reason::ALL.iter().copied().find(|r| r.id() == id)
            }
        }
    };
}

reasons! {
    SynUnanswered => "syn_unanswered", Timeout, "ERR_CONNECTION_TIMED_OUT",
        "The client's SYN was never answered: the server is down or unreachable, or a firewall drops the connection.",
        "Check that the service listens on this address and port and that firewalls, security groups and routes let TCP through.";
    ConnectionRefused => "connection_refused", Timeout, "ERR_CONNECTION_REFUSED",
        "The SYN was answered with a RST: nothing listens on the port, or a firewall rejects the connection.",
        "Start the service or fix the port it listens on; check the load balancer's backend pool and reject rules.";
    ServerSilent => "server_silent", Timeout, "ERR_TIMED_OUT",
        "The TCP connection opened and the client sent its ClientHello, but the server never answered.",
        "The server accepts TCP but its TLS layer does not respond: check the TLS terminator or proxy, an overloaded backend, or a middlebox that swallows the ClientHello.";
    HandshakeStalled => "handshake_stalled", Timeout, "ERR_TIMED_OUT",
        "The handshake started, then one side stopped sending; the evidence names the last message and how long the silence lasted.",
        "Look at the message after which it stalled: a large certificate flight lost to an MTU black hole is the classic cause; check MSS/MTU and the path, then the silent side.";
    VersionMismatch => "version_mismatch", Protocol, "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
        "Client and server share no TLS version they are both willing to use (protocol_version alert, a version the client did not offer, or TLS 1.0/1.1 chosen by the server and refused by the client).",
        "Enable a common version: TLS 1.2 and 1.3 on the server; update clients that offer only TLS 1.0/1.1 or servers that speak only old versions.";
    NotTls => "not_tls", Protocol, "ERR_SSL_PROTOCOL_ERROR",
        "The server answered the ClientHello with something that is not TLS (plain HTTP, SSH, a banner); its first bytes are in the evidence.",
        "The port serves plaintext or another protocol: fix the listener, the port mapping, or the load balancer's TLS termination.";
    PlaintextClient => "plaintext_client", Protocol, "none (the client spoke plaintext, e.g. http:// to a TLS port)",
        "The client sent plaintext (for example an HTTP request) to the TLS port instead of a ClientHello.",
        "Use https:// (or the plaintext port) in the client; fix the client's scheme or port configuration.";
    StarttlsRefused => "starttls_refused", Protocol, "none (not a browser protocol: the mail, directory or database client reports that the server refused TLS)",
        "The client asked to upgrade a plaintext connection to TLS (SMTP/IMAP STARTTLS, POP3 STLS, FTP AUTH TLS, XMPP, LDAP StartTLS, PostgreSQL SSLRequest) and the server refused; its answer is in the evidence.",
        "Enable TLS on the server for this service (certificate and key configured, STARTTLS advertised), or stop requiring TLS in the client if plaintext is intended.";
    ProxyRefused => "proxy_refused", Protocol, "ERR_TUNNEL_CONNECTION_FAILED",
        "The client asked a proxy (HTTP CONNECT, SOCKS4/5) for a tunnel to the TLS server and the proxy refused; its status is in the evidence.",
        "Check the proxy's access rules and authentication (407), and that it may reach the target host and port; or bypass the proxy for this destination.";
    SniRejected => "sni_rejected", Protocol, "ERR_SSL_UNRECOGNIZED_NAME_ALERT",
        "The server refused the requested server name (fatal unrecognized_name alert).",
        "Configure a virtual host and certificate for the requested name on the server, or make the client ask for a name the server serves.";
    ResetDuringHandshake => "reset_during_handshake", Protocol, "ERR_CONNECTION_RESET",
        "A TCP RST ended the connection before the TLS handshake completed, without a TLS alert.",
        "Find who sent the RST: the server's TLS stack or proxy refused or crashed, or a middlebox (IPS, TLS-inspecting firewall) reset the connection.";
    ClosedDuringHandshake => "closed_during_handshake", Protocol, "ERR_CONNECTION_CLOSED",
        "A FIN closed the connection before the TLS handshake completed, without a TLS alert.",
        "The closing side gave up silently: check its logs (TLS misconfiguration, SNI routing with no match, connection limits).";
    AlpnMismatch => "alpn_mismatch", Protocol, "ERR_SSL_PROTOCOL_ERROR",
        "Client and server share no application protocol (no_application_protocol alert).",
        "Enable a common ALPN protocol (h2, http/1.1) on the server, or offer one the server supports.";
    DowngradeRejected => "downgrade_rejected", Protocol, "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
        "A version downgrade was refused: the server rejected a fallback attempt (inappropriate_fallback), or the client detected a TLS 1.3 downgrade.",
        "The lower-version retry is a symptom: find why the first, higher-version attempt failed (often a middlebox that breaks TLS 1.3).";
    UnexpectedMessage => "unexpected_message", Protocol, "ERR_SSL_PROTOCOL_ERROR",
        "A peer received a handshake message it did not expect at that point (unexpected_message alert).",
        "A stack bug or a middlebox rewriting the handshake; compare with a client that works and update the offending stack.";
    DecodeError => "decode_error", Protocol, "ERR_SSL_PROTOCOL_ERROR",
        "A peer could not parse a message it received (decode_error alert).",
        "A malformed handshake message: stack bug or middlebox corruption; compare the ClientHello with one from a working client.";
    IllegalParameter => "illegal_parameter", Protocol, "ERR_SSL_PROTOCOL_ERROR",
        "A peer rejected a field value in the handshake (illegal_parameter alert).",
        "One side sent a value the other refuses (a group, extension or version field): update the stack or align the configuration.";
    DecryptError => "decrypt_error", Protocol, "ERR_SSL_DECRYPT_ERROR_ALERT",
        "A signature or Finished check failed (decrypt_error alert).",
        "The server's key does not match its certificate, or something altered the handshake in transit.";
    BadRecordMac => "bad_record_mac", Protocol, "ERR_SSL_BAD_RECORD_MAC_ALERT",
        "A record failed its integrity check (bad_record_mac alert).",
        "Records were corrupted in transit or the keys disagree: check middleboxes, NIC offload bugs, and the stacks' versions.";
    InternalError => "internal_error", Protocol, "ERR_SSL_PROTOCOL_ERROR",
        "The sending peer hit an internal error (internal_error alert).",
        "Check the sending side's logs: crypto library errors, a missing key, resource limits.";
    FatalAlert => "fatal_alert", Protocol, "ERR_SSL_PROTOCOL_ERROR",
        "Another fatal alert ended the handshake; its name is in the evidence.",
        "Look up the alert in the evidence and check the sending side's logs.";
    Expired => "expired", Certificate, "ERR_CERT_DATE_INVALID",
        "The server's certificate had expired at the time of the capture.",
        "Renew the certificate (and automate renewal); check intermediates in the chain too.";
    NotYetValid => "not_yet_valid", Certificate, "ERR_CERT_DATE_INVALID",
        "The server's certificate was not yet valid at the time of the capture.",
        "Check the certificate's notBefore date and the clocks of the server and the clients.";
    HostnameMismatch => "hostname_mismatch", Certificate, "ERR_CERT_COMMON_NAME_INVALID",
        "The server's certificate does not cover the name the client asked for (SNI).",
        "Issue a certificate whose subjectAltName covers the name, or fix the SNI / virtual-host routing.";
    UnknownCa => "unknown_ca", Certificate, "ERR_CERT_AUTHORITY_INVALID",
        "The client does not trust the CA that issued the server's certificate (or the chain is incomplete).",
        "Serve the full chain with intermediates, from a CA the clients trust; for a private CA, install its root on the clients.";
    SelfSigned => "self_signed", Certificate, "ERR_CERT_AUTHORITY_INVALID",
        "The server presented a self-signed certificate and the client rejected it.",
        "Replace it with a certificate from a CA the clients trust, or add it to the clients' trust store on purpose.";
    Revoked => "revoked", Certificate, "ERR_CERT_REVOKED",
        "The client found the server's certificate revoked (certificate_revoked alert).",
        "Issue and deploy a new certificate; make sure the revoked one is gone from every server.";
    ClientCertificateMissing => "client_certificate_missing", Certificate, "ERR_BAD_SSL_CLIENT_AUTH_CERT",
        "The server requires a client certificate (mutual TLS) and the client sent none.",
        "Configure the client with its certificate and key, or relax the server's client-certificate requirement.";
    ClientCertificateRejected => "client_certificate_rejected", Certificate, "ERR_BAD_SSL_CLIENT_AUTH_CERT",
        "The server rejected the client's certificate.",
        "Check that the client certificate is issued by a CA the server trusts, is within its dates, and allows clientAuth.";
    RejectedByClient => "rejected_by_client", Certificate, "ERR_CERT_AUTHORITY_INVALID (or another ERR_CERT_* error)",
        "The client rejected the server right after its certificate flight; in TLS 1.3 this is read from an alert-sized encrypted record and the close.",
        "Check the server's chain, names and dates (`openssl s_client -connect host:443 -servername NAME`) against what the client trusts.";
    BadCertificate => "bad_certificate", Certificate, "ERR_CERT_INVALID",
        "The certificate was malformed or of an unsupported type (bad_certificate / unsupported_certificate alert).",
        "Reissue the certificate with a standard key type and signature algorithm; check the chain's encoding.";
    NoSharedCipher => "no_shared_cipher", Cipher, "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
        "The server refused the ClientHello: client and server share no cipher suite.",
        "Enable modern AEAD suites (ECDHE with AES-GCM or ChaCha20) on the server and update clients that offer only legacy suites.";
    NoSharedGroup => "no_shared_group", Cipher, "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
        "Client and server share no key-exchange group (curve).",
        "Enable x25519 and secp256r1 on both sides.";
    NoSharedSignatureAlgorithm => "no_shared_signature_algorithm", Cipher, "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
        "The server refused the ClientHello: none of the client's signature algorithms can sign with the server's certificate key.",
        "Offer the signature schemes of the server's key type (rsa_pss_rsae_* for RSA, ecdsa_secp256r1_sha256 for P-256), or give the server a certificate of a type the client accepts.";
    InsufficientSecurity => "insufficient_security", Cipher, "ERR_SSL_VERSION_OR_CIPHER_MISMATCH",
        "A peer requires stronger parameters than the other offered (insufficient_security alert).",
        "Upgrade the weaker side's suites, versions or key sizes.";
    WeakParameters => "weak_parameters", Cipher, "ERR_SSL_WEAK_SERVER_EPHEMERAL_DH_KEY",
        "The client rejected the server's weak key-exchange parameters (for example a 1024-bit DH group).",
        "Use ECDHE suites, or DH groups of at least 2048 bits, on the server.";
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// The catalog as a Markdown table (what `docs/reasons.md` publishes).
pub fn markdown_table() -> String {
    let mut out = String::from("| id | cause | browser error | meaning | hint |\n|---|---|---|---|---|\n");
    for r in Reason::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            r.id(),
            r.cause(),
            r.browser_error(),
            r.meaning(),
            r.hint()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.id()), "duplicate {}", r.id());
            assert!(r.id().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", r.id());
            assert_eq!(Reason::from_id(r.id()), Some(*r));
        }
    }

    #[test]
    fn published_catalog_matches_the_enum() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reasons.md");
        let doc = std::fs::read_to_string(path).expect("docs/reasons.md exists");
        let table = markdown_table();
        assert!(
            doc.contains(&table),
            "docs/reasons.md is out of date; regenerate it with `tlsdiag reasons --markdown`"
        );
    }
}
