//! The JSON printer: the report model as one document.

use super::model::Report;
use std::io::{self, Write};

/// Writes the report as one pretty-printed JSON document.
pub fn write(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
