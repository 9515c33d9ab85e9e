//! Providers create, halt and destroy the servers of a hive stage, and this
//! crate reaches them over SSH.
//!
//! - [`Provider`]: the small async trait every provider implements
//!   (`build`, `halt`, `destroy`, `endpoints`, `validate`); built-in
//!   providers are [`DockerProvider`] (each server a container on the
//!   mother machine's engine), [`PreparedProvider`] (existing servers) and
//!   [`VagrantProvider`]; [`provider_for`] picks one by name.
//! - [`StageSpec`] / [`ServerSpec`]: the plain description of a stage a
//!   provider is given.
//! - [`Transport`]: run commands and move files on one server; implemented
//!   over SSH by [`SshSession`], pooled per stage by [`SshPool`].
//! - [`build_infra`], [`halt_infra`], [`destroy_infra`]: the build-infra
//!   phase; [`ssh_command`]: the command line behind `hive ssh`.

mod docker;
mod error;
mod infra;
mod prepared;
mod provider;
mod registry;
pub mod ssh;
mod ssh_config;
mod stage;
mod transport;
mod vagrant;

pub use docker::{BASE_IMAGE, DockerAttributes, DockerProvider, ensure_base_image};
pub use error::{HostKeyMismatch, ProviderError, Result};
pub use infra::{
    BuildInfraOptions, BuildInfraReport, ServerAccess, SshCommandOptions, bootstrap_admin,
    build_infra, destroy_infra, ensure_key_pair, halt_infra, ssh_command,
};
pub use prepared::{PreparedAttributes, PreparedProvider};
pub use provider::{NOT_YET_SUPPORTED, Provider, ProviderReport, ServerChange};
pub use registry::{ProviderFactory, ProviderRegistry, provider_for};
pub use ssh::{
    HostKeyPolicy, SshAuth, SshOptions, SshPool, SshSession, SshTarget, UnixSocketForward,
};
pub use ssh_config::{SshConfig, SshHost};
pub use stage::{
    AdminAccount, Endpoint, Secret, ServerRole, ServerSpec, StageSpec, SubnetSpec,
    write_file_atomic,
};
pub use transport::{
    ExecOutput, OutputChunk, OutputStream, RemoteCommand, RemoteFile, RemoteFileInfo, Transport,
    shell_quote,
};
pub use vagrant::{VagrantAttributes, VagrantProvider};
