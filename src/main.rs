//! tlsdiag: parse flags → run → exit status.

use clap::Parser;

fn main() -> std::process::ExitCode {
    tlsdiag::cli::run(tlsdiag::cli::Cli::parse())
}
