//! The join ids a session record carries and writes only when shown: `network.community_id` and
//! the Wireshark display filter. Both are kept as the few numbers they are made of and written
//! straight into the output (no string built per session).

use crate::flow::{Endpoint, TcpFacts};
use schemars::JsonSchema;
use serde::Serialize;
use std::fmt;

/// A Wireshark display filter for one connection's packets: both endpoints, and the frame range
/// (a later connection on the same ports is another session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisplayFilter {
    client: Endpoint,
    server: Endpoint,
    first_frame: u64,
    last_frame: u64,
}

impl DisplayFilter {
    /// The filter of a connection.
    pub fn of(tcp: &TcpFacts) -> DisplayFilter {
        DisplayFilter {
            client: tcp.client,
            server: tcp.server,
            first_frame: tcp.first.frame,
            last_frame: tcp.last.frame,
        }
    }
}

impl fmt::Display for DisplayFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = if self.client.ip.is_ipv4() {
            "ip.addr"
        } else {
            "ipv6.addr"
        };
        write!(
            f,
            "{ip}=={} && {ip}=={} && tcp.port=={} && tcp.port=={} && frame.number>={} && frame.number<={}",
            self.client.ip, self.server.ip, self.client.port, self.server.port, self.first_frame, self.last_frame
        )
    }
}

/// Written as its text, formatted straight into the output.
impl Serialize for DisplayFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for DisplayFilter {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "String".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(g)
    }
    fn inline_schema() -> bool {
        true
    }
}

/// `network.community_id`: the flow and seed it is computed from, computed when it is shown or
/// written (a text report never shows most sessions', so they cost nothing).
#[derive(Clone, Copy, Debug, Default)]
pub struct CommunityId {
    /// (client, server, seed).
    flow: Option<(Endpoint, Endpoint, u16)>,
}

impl CommunityId {
    /// The Community ID of a connection with this seed.
    pub(crate) fn of(client: Endpoint, server: Endpoint, seed: u16) -> CommunityId {
        CommunityId {
            flow: Some((client, server, seed)),
        }
    }

    /// The Community ID v1 string, if the run shows one.
    pub fn value(&self) -> Option<String> {
        self.flow.map(|(c, s, seed)| {
            crate::flow::community_id::community_id(seed, c, s, crate::flow::community_id::PROTO_TCP)
        })
    }

    /// Left out (under --redact).
    pub fn is_none(&self) -> bool {
        self.flow.is_none()
    }
}

impl Serialize for CommunityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value() {
            Some(v) => s.serialize_str(&v),
            None => s.serialize_none(),
        }
    }
}
