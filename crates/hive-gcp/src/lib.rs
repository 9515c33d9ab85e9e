#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! The `gcp` provider of hive: builds a stage's servers on Google Compute
//! Engine with Google's Rust client (`google-cloud-compute-v1`), as
//! hive-builder's `gcp` role does.
//!
//! - [`GcpProvider`]: the [`hive_provider::Provider`]; [`register`] adds it
//!   to a [`hive_provider::ProviderRegistry`] under the name `gcp`.
//! - [`GcpSettings`]: what a stage asks for (network, firewall rules,
//!   subnetworks, instances, disks and addresses), worked out and checked
//!   without a call to the API; [`GcpAttributes`] the stage keys it reads.
//!
//! Resources are found again by their names, which are hive-builder's, so
//! a build is idempotent and a site built by hive-builder is recognised.
//! `build-infra -C` reads the project and reports what a run would create.
//!

#![deny(missing_docs)]

// The crates whose types appear in this crate's API.
pub use google_cloud_compute_v1;
pub use hive_provider;

mod compute;
mod error;
mod instances;
mod network;
mod provider;
mod settings;

pub use compute::{CREDENTIAL_FILE, ENDPOINT_VARIABLE, credential_path};
pub use error::GcpError;
pub use provider::GcpProvider;
pub use settings::{
    ACCEPTED, Allowed, DEFAULT_DISK_SIZE, DEFAULT_IMAGE, DiskPlan, FirewallPlan, GcpAttributes,
    GcpSettings, InstancePlan, MTU, SubnetPlan, VARIABLES, valid_name,
};

/// Add the gcp provider to `registry` (it replaces the "not yet
/// supported" entry of the built-in registry).
pub fn register(registry: &mut hive_provider::ProviderRegistry) {
    registry.register("gcp", || Box::new(GcpProvider::new()));
}
