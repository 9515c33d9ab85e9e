//! The phases of a hive site build, as a dependency graph.
//!
//! Not implemented yet: this crate only states its purpose (build-infra,
//! setup-hosts, build-images, build-networks, build-volumes, deploy-services,
//! initialize-services).
