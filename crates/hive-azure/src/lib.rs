#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! - [`AzureProvider`]: the [`hive_provider::Provider`]; [`register`] adds
//!   it to a [`hive_provider::ProviderRegistry`] under the name `azure`.
//! - [`AzureSettings`]: what a stage asks for (names, rules, subnets, VMs
//!   and disks), worked out and checked without a call to Azure;
//!   [`AzureAttributes`] the stage keys it reads.
//! - [`Arm`]: the Resource Manager REST client (token, GET, PUT, DELETE,
//!   POST, long-running operations); [`Credentials`] where it connects.
//!
//! Resources are found again by their names in the resource group, so a
//! build is idempotent and a site built by hive-builder is recognised.
//! `build-infra -C` reads the subscription and reports what a run would
//! create.

#![deny(missing_docs)]

// The crates whose types appear in this crate's API.
pub use hive_provider;
pub use reqwest;
pub use serde_json;

mod arm;
mod error;
mod network;
mod provider;
mod settings;
mod vms;

pub use arm::{
    Arm, COMPUTE_API, Credentials, DEFAULT_AUTHORITY, DEFAULT_ENDPOINT, NETWORK_API, RESOURCES_API,
};
pub use error::AzureError;
pub use provider::AzureProvider;
pub use settings::{
    ACCEPTED, AzureAttributes, AzureSettings, ImageRef, MANAGED_DISK_TYPE, SecurityRule,
    SubnetPlan, VARIABLES, VmPlan,
};

/// Add the azure provider to `registry` (it replaces the "not yet
/// supported" entry of the built-in registry).
pub fn register(registry: &mut hive_provider::ProviderRegistry) {
    registry.register("azure", || Box::new(AzureProvider::new()));
}
