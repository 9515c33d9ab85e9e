//! Docker Swarm networks, volumes and services of a hive site.
//!
//! Not implemented yet: this crate only states its purpose (service specs,
//! build-networks, build-volumes, deploy-services over the Docker API).
