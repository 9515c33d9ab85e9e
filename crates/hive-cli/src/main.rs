#![doc = include_str!("../README.md")]
//!
//! # Code
//!
//! `main.rs` holds the global options; each command group lives in its own
//! module under `commands/` and is dispatched from [`commands::Command`].

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hive_inventory::StageName;

/// Build and rebuild a site of Docker Swarm hosts from one inventory.
#[derive(Parser, Debug)]
#[command(name = "hive", version, about, propagate_version = true)]
pub struct Cli {
    /// Project root directory: holds inventory/ and .hive/ (default: the current directory).
    #[arg(short = 'r', long = "root-dir", global = true, value_name = "DIR")]
    pub root_dir: Option<PathBuf>,
    /// Stage to work on: private, staging or production (default: the one saved with `hive set stage`, else private).
    #[arg(short = 's', long, global = true, value_enum)]
    pub stage: Option<StageArg>,
    /// Inventory directory or file (default: ROOT/inventory).
    #[arg(
        short = 'i',
        long = "inventory-path",
        global = true,
        value_name = "PATH"
    )]
    pub inventory_path: Option<PathBuf>,
    /// Context directory where keys, passwords and generated files are kept (default: ROOT/.hive/STAGE).
    #[arg(short = 'c', long = "context-dir", global = true, value_name = "DIR")]
    pub context_dir: Option<PathBuf>,
    /// Directory for temporary files (default: /var/tmp/hive).
    #[arg(short = 'W', long = "temp-dir", global = true, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Print more about what is done: -v every task and pull, and the libraries' informational events; -vv their debug events too (SSH retries, waits). RUST_LOG overrides the event filter (e.g. RUST_LOG=hive_provider=trace).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Print only errors and each command's result: no progress lines.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// Take over a stage lock written by a run on another host (a shared project directory). A run on this machine that died (even by kill -9) leaves no lock: the next run takes it by itself.
    #[arg(long, global = true)]
    pub force_unlock: bool,
    /// Output format: text, or json (phase commands and `hive all` print their changes, or with -C their plan, as one JSON document on stdout; `check` its problems, `history` its journal, `vars` and `render` their values, `list-*` their names; text is YAML for `vars` and `render`).
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        default_value_t = commands::Output::Text
    )]
    pub output: commands::Output,
    /// With -C: exit 0 when nothing would change, 2 when changes are pending, 1 on error (as `terraform plan -detailed-exitcode`).
    #[arg(long, global = true)]
    pub detailed_exitcode: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: commands::Command,
}

/// A stage name on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageArg {
    /// The developer's own stage.
    Private,
    /// The test stage.
    Staging,
    /// The production stage.
    Production,
}

impl From<StageArg> for StageName {
    fn from(s: StageArg) -> Self {
        match s {
            StageArg::Private => StageName::Private,
            StageArg::Staging => StageName::Staging,
            StageArg::Production => StageName::Production,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let globals = commands::Globals::from_cli(&cli);
    commands::logging::install(cli.verbose, cli.quiet);
    commands::install_providers();
    match commands::dispatch(cli.command, &globals) {
        Ok(code) => code,
        Err(e) => {
            commands::report_error(&e);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks on every command and argument
    /// (conflicting ids, short flags, defaults): what made `vars` and
    /// `render` panic at every call.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
