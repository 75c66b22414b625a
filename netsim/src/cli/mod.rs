//! The `netsim` command line: one module per subcommand, plus the shared impairment flags.

pub mod flags;
pub mod proxy;
pub mod run;
