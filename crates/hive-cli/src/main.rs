//! The `hive` command.

use clap::Parser;

/// Build and rebuild a site of Docker Swarm hosts from one inventory.
#[derive(Parser, Debug)]
#[command(name = "hive", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
