//! Command line: what was typed → a validated plan, and the run of that plan.

mod args;
#[cfg(feature = "live")]
mod live;
mod run;

pub use args::{Cli, Command};
pub use run::run;
