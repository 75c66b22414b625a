//! The `chatroom` command-line client, built on the library.
//!
//! - `args`: the command line (clap).
//! - `input`: the lines typed into `chatroom join`: messages and slash commands.
//! - `output`: what is printed, as JSON lines or text.
//! - `run`: the subcommands.

pub mod args;
pub mod input;
pub mod output;
pub mod run;
