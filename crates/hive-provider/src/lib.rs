#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! - [`Provider`]: the small async trait every provider implements
//!   (`build`, `halt`, `destroy`, `endpoints`, `validate`); built-in
//!   providers are [`DockerProvider`] (each server a container on the
//!   mother machine's engine), [`PreparedProvider`] (existing servers),
//!   [`VagrantProvider`] and [`KickstartProvider`] (bare metal installed
//!   from kickstart media); [`provider_for`] picks one by name. The
//!   cloud providers of other crates implement [`Cloud`] instead, which
//!   gives them the [`Provider`] flow.
//! - [`StageSpec`] / [`ServerSpec`]: the plain description of a stage a
//!   provider is given.
//! - [`Transport`]: run commands and move files on one server; implemented
//!   over SSH by [`SshSession`], pooled per stage by [`SshPool`].
//! - [`build_infra`], [`halt_infra`], [`destroy_infra`]: the build-infra
//!   phase; [`ssh_command`]: the command line behind `hive ssh`.

#![deny(missing_docs)]

// The crates whose types appear in this crate's API, for users to build
// against the same versions.
pub use async_trait::async_trait;
pub use bollard::{self, Docker};
pub use ipnet::{self, Ipv4Net};
pub use tokio::sync::mpsc::UnboundedSender;
pub use {serde_json, ssh2};

pub mod cloud;
mod docker;
mod error;
mod infra;
mod kickstart;
mod kickstart_media;
mod prepared;
mod provider;
mod registry;
pub mod ssh;
mod ssh_config;
mod stage;
mod transport;
mod vagrant;

pub use cloud::Cloud;
pub use docker::{BASE_IMAGE, DockerAttributes, DockerProvider, ensure_base_image};
pub use error::{HostKeyMismatch, ProviderError, Result};
pub use infra::{
    BuildInfraOptions, BuildInfraReport, ServerAccess, SshCommandOptions, bootstrap_admin,
    build_infra, destroy_infra, ensure_key_pair, halt_infra, ssh_command,
};
pub use kickstart::{
    KICKSTART_VERSION, KickstartAttributes, KickstartConfig, KickstartNetwork, KickstartProvider,
};
pub use kickstart_media::MEDIA_LABEL;
pub use prepared::{PreparedAttributes, PreparedProvider};
pub use provider::{NOT_YET_SUPPORTED, Provider, ProviderReport, ServerChange};
pub use registry::{ProviderFactory, ProviderRegistry, provider_for};
pub use ssh::{
    HostKeyPolicy, PooledServer, SshAuth, SshOptions, SshPool, SshSession, SshTarget,
    UnixSocketForward,
};
pub use ssh_config::{SshConfig, SshHost};
pub use stage::{
    AdminAccount, Endpoint, Secret, ServerRole, ServerSpec, StageSpec, SubnetSpec,
    close_secret_dir, stage_password, write_file_atomic,
};
pub use transport::{
    ExecOutput, OutputChunk, OutputStream, RemoteCommand, RemoteFile, RemoteFileInfo, Transport,
    shell_quote,
};
pub use vagrant::{VagrantAttributes, VagrantProvider};
