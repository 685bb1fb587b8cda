//! The JSON printer: the report model as one document.

use super::model::Report;
use std::io::{self, Write};

/// Writes the report as one pretty-printed JSON document.
pub fn write(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io_error)?;
    out.write_all(b"\n")
}

/// Keeps the kind of an I/O error through serde_json (a broken pipe must stay a broken pipe).
pub fn io_error(e: serde_json::Error) -> io::Error {
    match e.io_error_kind() {
        Some(kind) => io::Error::new(kind, e),
        None => io::Error::other(e),
    }
}
