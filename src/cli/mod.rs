//! Command line: what was typed → a validated plan, and the run of that plan.

mod args;
mod flusher;
mod keys;
#[cfg(feature = "live")]
mod live;
mod outputs;
mod run;
mod signals;
mod threads;

pub use args::{Cli, Command};
pub use run::run;
