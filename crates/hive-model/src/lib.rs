#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! - [`ServiceDefinition`] and [`SERVICE_PARAMETERS`], declared by one list
//!   in `service.rs`: adding a service attribute is one entry there (its
//!   typed field and its row), plus where hive-swarm puts it in the spec;
//! - [`BuildImage`] and [`IMAGE_PARAMS`], the same for a service's `image`
//!   build object;
//! - the types of the definition's values ([`values`]);
//! - [`ServerRole`], what a server does in its stage, for the inventory,
//!   the providers and setup-hosts, and [`Server`], a stage's server as
//!   setup-hosts and hive-swarm take it;
//! - [`ExecOutput`], what a command run on a host produced, for every
//!   crate that runs one;
//! - [`fs::write_atomic`], the one atomic file write;
//! - [`shell_quote`] and [`shell_join`], the one quoting of a word (and of
//!   a list of words) for a shell script.

#![deny(missing_docs)]

// The crates whose types appear in this crate's API.
pub use indexmap::{self, IndexMap};
pub use serde_json;

pub mod fs;
pub mod output;
pub mod server;
pub mod service;
pub mod shell;
pub mod values;

pub use output::ExecOutput;
pub use server::{Server, ServerRole};
pub use service::{
    BuildImage, IMAGE_PARAMS, ImageSource, ParamType, SERVICE_PARAMETERS, ServiceDefinition,
    ServiceParam, service_param,
};
pub use shell::{shell_join, shell_quote};
pub use values::*;
