//! Server profiles: what each server accepted in the sessions that succeeded in the same capture.
//! They turn "handshake_failure right after the ClientHello" into a precise reason: the client
//! offered no suite, group or version this server ever negotiated.

use crate::flow::{Endpoint, TcpFacts};
use crate::tls::TlsFacts;
use crate::tls::names::{CipherSuite, Group, Version};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Servers remembered (bounded, so memory never grows with the capture).
const MAX_SERVERS: usize = 65_536;
/// Distinct values remembered per set.
const MAX_VALUES: usize = 64;
/// Offered signature-algorithm lists remembered per server as already intersected.
const SIGALG_LISTS_KEPT: usize = 4;
/// Longest offered list remembered (bounds the memory of a server's profile).
const MAX_SIGALGS_KEPT: usize = 32;

/// What one server negotiated in established sessions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerProfile {
    pub established: u64,
    pub versions: BTreeSet<Version>,
    pub suites: BTreeSet<CipherSuite>,
    pub groups: BTreeSet<Group>,
    pub server_names: BTreeSet<String>,
    /// Key types of the server's certificate ("RSA", "EC"), where a session showed it in the
    /// clear (TLS 1.2) or its TLS 1.2 suite names it.
    #[serde(skip)]
    pub key_types: BTreeSet<&'static str>,
    /// The signature algorithms every established session's client offered (the server signs
    /// with one of them); None until a session offered some.
    #[serde(skip)]
    pub sigalgs_common: Option<BTreeSet<u16>>,
    /// Offered lists already intersected into `sigalgs_common` (a server's clients offer a few
    /// lists over and over: intersecting one again changes nothing). At most
    /// [`SIGALG_LISTS_KEPT`].
    #[serde(skip)]
    sigalgs_seen: Vec<Vec<u16>>,
    /// Certificates it presented in the clear, in any session (see [`super::borrowed`]).
    #[serde(skip)]
    pub certificates: Vec<super::borrowed::SeenCertificate>,
}

impl ServerProfile {
    /// Learns from one established session.
    pub fn learn(&mut self, tls: &TlsFacts) {
        self.established += 1;
        if let Some(sh) = &tls.server_hello {
            let suite = sh.cipher_suite.name().unwrap_or("");
            if suite.contains("_ECDSA_") {
                self.key_types.insert("EC");
            } else if suite.contains("_RSA_") && !sh.version.is_tls13() {
                self.key_types.insert("RSA");
            }
            insert_capped(&mut self.versions, sh.version);
            insert_capped(&mut self.suites, sh.cipher_suite);
            if let Some(g) = sh.group {
                insert_capped(&mut self.groups, g);
            }
        }
        if let Some(leaf) = tls.server_certificates.first().filter(|c| c.parse_error.is_none()) {
            match leaf.key_type.as_str() {
                "RSA" => self.key_types.insert("RSA"),
                "EC" => self.key_types.insert("EC"),
                _ => false,
            };
        }
        if let Some(ch) = tls.client_hello.as_ref().filter(|c| !c.signature_algorithms.is_empty()) {
            let offered = &ch.signature_algorithms;
            if !self.sigalgs_seen.iter().any(|l| l == offered) {
                match &mut self.sigalgs_common {
                    // Most lists hold every algorithm still in common: nothing to cut then.
                    Some(common) if common.iter().all(|s| offered.contains(s)) => {}
                    Some(common) => common.retain(|s| offered.contains(s)),
                    None => self.sigalgs_common = Some(offered.iter().copied().take(MAX_VALUES).collect()),
                }
                if self.sigalgs_seen.len() < SIGALG_LISTS_KEPT && offered.len() <= MAX_SIGALGS_KEPT {
                    self.sigalgs_seen.push(offered.clone());
                }
            }
        }
        if let Some(name) = tls.sni() {
            if !self.server_names.contains(name) {
                insert_capped(&mut self.server_names, name.to_string());
            }
        }
    }
}

fn insert_capped<T: Ord>(set: &mut BTreeSet<T>, v: T) {
    if set.len() < MAX_VALUES {
        set.insert(v);
    }
}

/// Profiles of every server seen with an established session.
#[derive(Clone, Debug, Default)]
pub struct ServerProfiles {
    map: HashMap<Endpoint, ServerProfile, crate::flow::FlowHashBuilder>,
    /// Servers not remembered because the table was full.
    pub dropped: u64,
}

impl ServerProfiles {
    /// Learns from a decided session to `server`: what it negotiated if `established`, and the
    /// certificate it showed in the clear either way.
    pub fn observe(&mut self, tcp: &TcpFacts, tls: &TlsFacts, established: bool) {
        let shows_certificate = tls.server_certificate.is_some() && !tls.server_certificates.is_empty();
        if !established && !shows_certificate {
            return;
        }
        if !self.map.contains_key(&tcp.server) && self.map.len() >= MAX_SERVERS {
            self.dropped += 1;
            return;
        }
        let p = self.map.entry(tcp.server).or_default();
        if established {
            p.learn(tls);
        }
        if shows_certificate {
            super::borrowed::remember(&mut p.certificates, tcp, tls);
        }
    }

    /// Adds another table's profiles (from another worker thread).
    pub fn merge(&mut self, other: ServerProfiles) {
        self.dropped += other.dropped;
        for (server, p) in other.map {
            if !self.map.contains_key(&server) && self.map.len() >= MAX_SERVERS {
                self.dropped += 1;
                continue;
            }
            let mine = self.map.entry(server).or_default();
            mine.established += p.established;
            for v in p.versions {
                insert_capped(&mut mine.versions, v);
            }
            for s in p.suites {
                insert_capped(&mut mine.suites, s);
            }
            for g in p.groups {
                insert_capped(&mut mine.groups, g);
            }
            for n in p.server_names {
                insert_capped(&mut mine.server_names, n);
            }
            mine.key_types.extend(p.key_types);
            super::borrowed::merge(&mut mine.certificates, p.certificates);
            mine.sigalgs_common = match (mine.sigalgs_common.take(), p.sigalgs_common) {
                (Some(a), Some(b)) => Some(a.intersection(&b).copied().collect()),
                (a, b) => a.or(b),
            };
        }
    }

    /// The profile of one server.
    pub fn get(&self, server: &Endpoint) -> Option<&ServerProfile> {
        self.map.get(server)
    }

    /// Every profile of a server with an established session, for reports.
    pub fn iter(&self) -> impl Iterator<Item = (&Endpoint, &ServerProfile)> {
        self.map.iter().filter(|(_, p)| p.established > 0)
    }
}
