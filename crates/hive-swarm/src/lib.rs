//! Docker Swarm networks, volumes and services of a hive site, over the
//! Docker API ([`bollard`]).
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
//! - [`find_running_task`]: where a service's task runs, for
//!   initialize-services.
//!
//! Every operation returns a [`Report`] of what it created, updated, left
//! unchanged or removed, and has a check mode that only computes it.
//!
//! # Deploying a service from another program
//!
//! ```no_run
//! use std::time::Duration;
//! use hive_swarm::{Deployer, Hive, ServiceDefinition, StageContext};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let docker = bollard::Docker::connect_with_local_defaults()?;
//! let hives = vec![Hive::new("hive0.pdns", docker)];
//! let stage = StageContext::new("private", "hive0.pdns:5000", "hive0.pdns");
//!
//! let web: ServiceDefinition = serde_yaml_like(r#"{
//!     "image": "nginx:1.25",
//!     "environment": {"TZ": "UTC"},
//!     "ports": [{"published_port": 8080, "target_port": 80}],
//!     "replicas": 2
//! }"#);
//! let mut services = indexmap::IndexMap::new();
//! services.insert("web".to_string(), web);
//!
//! hive_swarm::build_networks(&hives[0], &stage, false).await?;
//! let report = Deployer::new(hives, stage)
//!     .timeout(Duration::from_secs(120))
//!     .on_event(|event| eprintln!("{event:?}"))
//!     .deploy(&services)
//!     .await?;
//! for r in report.changes() {
//!     println!("{} {}", r.name, r.change);
//! }
//! if !report.changed() {
//!     println!("no change");
//! }
//! # Ok(()) }
//! # fn serde_yaml_like(s: &str) -> ServiceDefinition { serde_json::from_str(s).unwrap() }
//! ```
//!
//! See also `examples/deploy.rs`.

mod cluster;
mod compare;
pub mod definition;
mod deploy;
mod error;
mod hive;
mod networks;
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
pub use tasks::{RunningTask, find_running_task};
pub use volumes::build_volumes;
