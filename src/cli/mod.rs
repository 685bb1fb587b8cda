//! Command line: what was typed → a validated plan, and the run of that plan.

mod args;
mod run;

pub use args::{Cli, Command};
pub use run::run;
