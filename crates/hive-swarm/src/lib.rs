#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! hive-swarm is usable on its own: give it a [`bollard::Docker`] and a
//! service definition, and it deploys. It implements the swarm phases of
//! hive:
//!
//! - [`Engine`]: the swarm cluster itself, for setup-hosts —
//!   `docker_gwbridge` and ingress subnets, init on the first hive, the
//!   others joined as managers, node labels;
//! - [`build_networks`]: the stage's overlay networks and
//!   `hive_default_network` (subnet from `internal_cidr`);
//! - [`build_volumes`]: volumes with a driver, on every hive (`-D` removes);
//! - [`Deployer`]: deploy-services — pull images on every hive, create
//!   missing services, update those whose spec or image changed, leave the
//!   rest alone, then wait until their tasks run (progress through
//!   [`DeployEvent`]s), or remove them (`-D`);
//! - [`find_running_task`], [`wait_running_task`]: where a service's task runs, for
//!   initialize-services.
//!
//! Every operation returns a [`Report`] of what it created, updated, left
//! unchanged or removed, and has a check mode that only computes it.

#![deny(missing_docs)]

// The crates whose types appear in this crate's API, for users to build
// against the same versions.
pub use bollard::{self, Docker};
pub use hive_model;
pub use indexmap::{self, IndexMap};
pub use ipnet::{self, Ipv4Net};
pub use serde_json;

mod cluster;
mod compare;
pub mod definition;
mod deploy;
mod error;
mod hive;
mod networks;
mod pull;
mod report;
pub mod spec;
mod tasks;
mod volumes;

pub use cluster::{Engine, GWBRIDGE, INGRESS, SWARM_PORT, SwarmInit, SwarmJoin};
pub use compare::spec_differences;
pub use definition::{
    DEFAULT_NETWORK, ImageSource, LogDestination, NetworkDefinition, RegistryLogin, Scalar, Server,
    ServiceDefinition, StageContext, TagMapping, VolumeDefinition,
};
pub use deploy::{DeployEvent, Deployer, EventSink, PullPolicy};
pub use error::{Error, ServiceFailure};
pub use hive::Hive;
pub use networks::{build_networks, default_network_subnet, network_options};
pub use report::{Change, Report, ResourceChange, ResourceKind};
pub use spec::{image_reference, service_spec};
pub use tasks::{RunningTask, find_running_task, wait_running_task};
pub use volumes::build_volumes;
