#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! What is common to every run of phases, whatever they do:
//!
//! - [`Phase`] and [`PhaseGraph`]: the phases, their dependencies, and which
//!   of them a run starting at a given phase executes.
//! - [`run_graph`]: runs phases as their dependencies complete, concurrently
//!   where the graph allows, stopping at the first failure.
//! - [`StageLock`]: one run per stage at a time, with who holds the lock and
//!   an OS lock that the kernel releases when the run dies.
//! - [`Journal`]: the append-only record of every phase run of a stage.
//!
//! The phases on a project: [`orchestrate`] (one phase or all, the plan
//! with `-C`), [`site`] (a project as the other crates' inputs), [`check`],
//! [`status`], [`scaffold`], and one module per phase group.

#![deny(missing_docs)]

// The crates whose types appear in this crate's API, for users to build
// against the same versions.
pub use indexmap::{self, IndexMap};
pub use {hive_drbd, hive_image, hive_inventory, hive_provider, hive_swarm};
pub use {serde_json, serde_yaml, time, tokio};

pub mod backup;
pub mod check;
mod engines;
mod error;
mod graph;
pub mod images;
mod journal;
mod lock;
pub mod orchestrate;
pub mod plan;
mod runner;
pub mod scaffold;
pub mod server_target;
pub mod setup;
/// The setup-hosts steps, from their own crate.
pub use hive_setup as setup_hosts;
pub mod site;
pub mod state;
pub mod status;
pub mod swarm;
pub mod volumes;

pub use engines::Engines;
pub use error::Error;
pub use graph::{Phase, PhaseGraph};
pub use journal::{Journal, JournalEntry, PhaseResult};
pub use lock::{LockHolder, StageLock};
pub use runner::{PhaseOutcome, RunReport, run_graph};
