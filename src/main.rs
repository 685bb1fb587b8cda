//! tlsdiag: parse flags → run → exit status.

use clap::Parser;

/// mimalloc instead of the system allocator: a session allocates a few dozen small objects
/// (hellos, names, report strings), often freed on another thread than the one that made them;
/// glibc's malloc spent about a tenth of the benchmark's time there (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tlsdiag::cli::run(tlsdiag::cli::Cli::parse())
}
