//! Report: one model ([`model`]), thin printers ([`text`], [`json`], [`ndjson`], [`markdown`],
//! [`html`]).
//!
//! Printers only format; they never decide anything. The JSON document carries
//! `schema_version` (see `docs/schema.json`).

pub mod carve;
pub mod carve_pcapng;
pub mod decryption;
pub mod digest;
pub mod escape;
pub mod html;
pub mod ids;
pub mod json;
pub mod markdown;
pub mod mermaid;
pub mod model;
pub mod ndjson;
pub mod ndjson_parts;
pub mod pseudonymize;
pub mod schema;
pub mod select;
pub mod steps;
pub mod text;
pub mod timeline;
pub mod units;
