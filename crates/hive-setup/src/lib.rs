#![doc = include_str!("../README.md")]
//!
//! # How the steps run
//!
//! Each step ([`StepTag`], the tags of `-T`) describes what it manages on a
//! server as items (whole files, marked blocks in files, and states probed
//! by a check command and reached by an apply command). A step checks every
//! item of a server in one round-trip, then applies only what differs in one
//! more, then runs the handlers (service restarts) of what changed, once. A
//! second run finds nothing to do and says so; `-C` stops after the check.
//!
//! Steps run in the order of [`StepTag::ALL`], each on every server at once;
//! a server that fails (a command fails, the connection drops) is reported
//! with its error and left out of the later steps while the others finish.
//!
//! The servers are reached through their [`Transport`]s (`hive-provider`'s
//! SSH sessions, or any other), on which [`run_script`] runs a script as
//! root with optional standard input; the `swarm` step talks to the hives'
//! Docker engines with hive-swarm's cluster API ([`hive_swarm::Engine`]),
//! reached through an [`EngineConnector`].

#![deny(missing_docs)]

// The crates whose types appear in this crate's API, for users to build
// against the same versions.
pub use hive_drbd;
pub use hive_provider;
pub use hive_swarm;
pub use {async_trait::async_trait, bcrypt, ipnet, rcgen, tokio};

mod backup;
mod drbd;
mod error;
mod item;
mod locks;
mod net;
mod os;
mod params;
mod pki;
mod registry;
mod report;
mod run;
mod shell;
mod steps;
mod swarm;

pub use backup::{
    BACKUP_COMMAND, BACKUP_DEFINITIONS_DIR, BackupScript, REGISTRY_BACKUP, admin_home,
    backup_definition, backup_ext,
};
pub use drbd::{DrbdHostSetup, TransportRunner};
pub use error::{Result, SetupHostsError};
pub use net::InternalNetworks;
pub use os::OsFamily;
pub use params::{ExtRepository, HiveUser, Server, ServerRole, SetupHostsParams, UserGroup};
pub use pki::{CertPair, SitePki};
pub use registry::{REGISTRY_GC_COMMAND, registry_credentials, registry_garbage_collect};
pub use report::{HostReport, SetupReport, StepOutcome};
pub use run::{AddonRunner, EngineConnector, SetupEvent, SetupHosts, SetupProgress};
pub use shell::{ExecOutput, SCRIPT_TIMEOUT, Transport, run_script};
pub use steps::StepTag;
