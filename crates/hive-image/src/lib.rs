#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! - [`Runner`] applies roles (`tasks/`, `handlers/`, `defaults/`, `vars/`,
//!   `files/`, `templates/`, `meta/`) to a [`Target`]: a running container
//!   ([`ContainerTarget`]), the mother machine ([`LocalTarget`]) or any other
//!   transport implementing the three-method trait.
//! - [`build_image`] builds a service's image on the repository server's
//!   engine and pushes it; [`push_local_image`] seeds the site registry.

#![deny(missing_docs)]

// The crates whose types appear in this crate's API, for users to build
// against the same versions.
pub use async_trait::async_trait;
pub use bollard::{self, Docker};
pub use indexmap::{self, IndexMap};
pub use {serde_json, serde_yaml};

mod ansible;
mod build;
mod builtin;
mod container;
mod error;
mod lint;
mod modules;
mod render;
mod role;
mod runner;
mod target;

pub use build::{
    BuildEvent, BuildOptions, BuiltImage, Credentials, ImageDefinition, Registry, SLEEP_COMMAND,
    build_image, connect, map_tag, push_local_image, site_image_name,
};
pub use builtin::BUILTIN_ROLES;
pub use container::ContainerTarget;
pub use error::{Error, Result};
pub use lint::{RoleFinding, RoleLint};
pub use render::{Renderer, Vars};
pub use role::{Action, LoopKind, NATIVE_MODULES, Role, RoleDir, RoleLoader, Task};
pub use runner::{Progress, RunReport, Runner, TaskEvent, TaskStatus, find_ansible_playbook};
pub use target::{ExecOutput, ExecRequest, FileAttrs, LocalTarget, Target, shell_quote};
