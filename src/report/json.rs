//! The JSON printer: the report model as one document.

use super::digest::SessionStore;
use super::model::Report;
use std::io::{self, Write};

/// Writes the report as one pretty-printed JSON document.
pub fn write(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io_error)?;
    out.write_all(b"\n")
}

/// Writes the report as one JSON document whose sessions come from `store` (in capture order),
/// without holding them all in memory.
pub fn write_with_store(out: &mut dyn Write, report: &Report, store: &mut SessionStore) -> io::Result<()> {
    let head = serde_json::to_string_pretty(report).map_err(io_error)?;
    // `sessions` is the report's last field, serialized empty: put the stored ones in its place.
    let Some(head) = head.strip_suffix("[]\n}") else {
        return Err(io::Error::other("unexpected report layout"));
    };
    out.write_all(head.as_bytes())?;
    store.write_array(out)?;
    out.write_all(b"\n}\n")
}

/// Keeps the kind of an I/O error through serde_json (a broken pipe must stay a broken pipe).
pub fn io_error(e: serde_json::Error) -> io::Error {
    match e.io_error_kind() {
        Some(kind) => io::Error::new(kind, e),
        None => io::Error::other(e),
    }
}
