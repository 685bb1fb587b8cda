//! JSON Schema pieces the derive cannot say by itself: address and date formats, and the closed
//! sets of values (reason ids, sides, confidences), so that the committed schemas reject a
//! document a validator should reject.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An IPv4 or IPv6 address.
pub fn ip(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "anyOf": [{ "format": "ipv4" }, { "format": "ipv6" }]
    })
}

/// An RFC 3339 date-time.
pub fn date_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// A reason id from the catalog (docs/reasons.md).
pub fn reason(_: &mut SchemaGenerator) -> Schema {
    let ids: Vec<&str> = crate::diagnose::Reason::ALL.iter().map(|r| r.id()).collect();
    json_schema!({ "type": "string", "enum": ids })
}

/// Who ended a failed handshake.
pub fn side(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": ["client", "server", "network", "unknown"] })
}

/// How sure a verdict is.
pub fn confidence(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": ["high", "medium", "low"] })
}
