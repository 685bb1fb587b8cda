//! Server profiles: what each server accepted in the sessions that succeeded in the same capture.
//! They turn "handshake_failure right after the ClientHello" into a precise reason: the client
//! offered no suite, group or version this server ever negotiated.

use crate::flow::Endpoint;
use crate::tls::TlsFacts;
use crate::tls::names::{CipherSuite, Group, Version};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Servers remembered (bounded, so memory never grows with the capture).
const MAX_SERVERS: usize = 65_536;
/// Distinct values remembered per set.
const MAX_VALUES: usize = 64;

/// What one server negotiated in established sessions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerProfile {
    pub established: u64,
    pub versions: BTreeSet<Version>,
    pub suites: BTreeSet<CipherSuite>,
    pub groups: BTreeSet<Group>,
    pub server_names: BTreeSet<String>,
}

impl ServerProfile {
    /// Learns from one established session.
    pub fn learn(&mut self, tls: &TlsFacts) {
        self.established += 1;
        if let Some(sh) = &tls.server_hello {
            insert_capped(&mut self.versions, sh.version);
            insert_capped(&mut self.suites, sh.cipher_suite);
            if let Some(g) = sh.group {
                insert_capped(&mut self.groups, g);
            }
        }
        if let Some(name) = tls.client_hello.as_ref().and_then(|c| c.server_name.as_deref()) {
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
    /// Learns from an established session to `server`.
    pub fn learn(&mut self, server: Endpoint, tls: &TlsFacts) {
        if !self.map.contains_key(&server) && self.map.len() >= MAX_SERVERS {
            self.dropped += 1;
            return;
        }
        self.map.entry(server).or_default().learn(tls);
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
        }
    }

    /// The profile of one server.
    pub fn get(&self, server: &Endpoint) -> Option<&ServerProfile> {
        self.map.get(server)
    }

    /// Every profile, for reports.
    pub fn iter(&self) -> impl Iterator<Item = (&Endpoint, &ServerProfile)> {
        self.map.iter()
    }
}
