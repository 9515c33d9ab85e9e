//! The phases of a hive site build, as a dependency graph.
//!
//! A hive site is built in seven phases. Each phase depends on the ones
//! before it in the graph below; phases with no dependency between them run
//! concurrently:
//!
//! ```text
//! build-infra → setup-hosts → { build-images, build-networks, build-volumes } → deploy-services → initialize-services
//! ```
//!
//! This crate holds what is common to every run of phases, whatever they do:
//!
//! - [`Phase`] and [`PhaseGraph`]: the phases, their dependencies, and which
//!   of them a run starting at a given phase executes.
//! - [`run_graph`]: runs phases as their dependencies complete, concurrently
//!   where the graph allows, stopping at the first failure.
//! - [`StageLock`]: one run per stage at a time, with who holds the lock and
//!   an OS lock that the kernel releases when the run dies.
//! - [`Journal`]: the append-only record of every phase run of a stage.
//!
//! ```
//! use hive_phases::{Phase, PhaseGraph};
//!
//! let graph = PhaseGraph::standard();
//! let plan = graph.plan_from(Phase::BuildImages);
//! assert_eq!(plan.first(), Some(&Phase::BuildImages));
//! assert!(!plan.contains(&Phase::SetupHosts));
//! assert!(plan.contains(&Phase::DeployServices));
//! ```

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
