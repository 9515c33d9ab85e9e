#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! The `aws` provider of hive: builds a stage's servers on Amazon EC2
//! with the AWS SDK for Rust, as hive-builder's `aws` role does.
//!
//! - [`AwsProvider`]: the [`hive_provider::Provider`]; [`register`] adds it
//!   to a [`hive_provider::ProviderRegistry`] under the name `aws`.
//! - [`AwsSettings`]: what a stage asks for (names, tags, subnets, inbound
//!   rules, instances and disks), worked out and checked without a call to
//!   the API; [`AwsAttributes`] the stage keys it reads.
//!
//! Resources are found again by their `Name` and `Project` tags, so a
//! build is idempotent and a site built by hive-builder is recognised.
//! `build-infra -C` reads the account and reports what a run would create.
//!

#![deny(missing_docs)]

// The crates whose types appear in this crate's API.
pub use aws_sdk_ec2;
pub use hive_provider;

mod ec2;
mod error;
mod instances;
mod network;
mod provider;
mod settings;

pub use ec2::client;
pub use error::AwsError;
pub use provider::AwsProvider;
pub use settings::{
    ACCEPTED, AwsAttributes, AwsSettings, DEFAULT_IMAGE, DEFAULT_ROOT_DEVICE, DiskPlan,
    InboundRule, InstancePlan, MIRRORED_DEVICE, Source, SubnetPlan, VARIABLES,
};

/// Add the aws provider to `registry` (it replaces the "not yet
/// supported" entry of the built-in registry).
pub fn register(registry: &mut hive_provider::ProviderRegistry) {
    registry.register("aws", || Box::new(AwsProvider::new()));
}
