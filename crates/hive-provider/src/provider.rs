//! The [`Provider`] trait and what its operations report.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::stage::{Endpoint, StageSpec};

/// What happened to one server during an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerChange {
    /// The server did not exist and was created (new host keys).
    Created,
    /// It existed, stopped, and was started.
    Started,
    /// It was running and was stopped.
    Stopped,
    /// It existed and was removed.
    Destroyed,
    /// It existed and was brought up to date (a file rewritten).
    Updated,
    /// Nothing needed doing.
    Unchanged,
}

impl fmt::Display for ServerChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerChange::Created => "created",
            ServerChange::Started => "started",
            ServerChange::Stopped => "stopped",
            ServerChange::Destroyed => "destroyed",
            ServerChange::Updated => "updated",
            ServerChange::Unchanged => "unchanged",
        })
    }
}

/// The outcome of [`Provider::build`], [`Provider::halt`] or
/// [`Provider::destroy`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProviderReport {
    /// Per server, in stage order.
    pub servers: Vec<(String, ServerChange)>,
    /// Other resources (networks, volumes, files) and what happened to them.
    pub resources: Vec<(String, ServerChange)>,
    /// Things the user should know (unsupported attributes, ignored disks).
    pub warnings: Vec<String>,
}

impl ProviderReport {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.servers
            .iter()
            .chain(self.resources.iter())
            .any(|(_, c)| *c != ServerChange::Unchanged)
    }

    /// The change recorded for server `name`.
    pub fn change_of(&self, name: &str) -> Option<ServerChange> {
        self.servers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
    }
}

/// Creates, halts and destroys the servers of a stage, and says how to reach
/// them.
///
/// Implementations must be idempotent: `build` on a built stage changes
/// nothing and reports [`ServerChange::Unchanged`]; after `halt`, `build`
/// starts the servers again; `destroy` leaves nothing behind.
///
/// Write your own in another crate: see `examples/custom_provider.rs`.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider id used in the inventory (`docker`, `vagrant`, ...).
    fn name(&self) -> &str;

    /// Check the stage's attributes this provider reads; returns warnings
    /// for what it accepts but cannot honour. Called by build-infra before
    /// anything else.
    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>>;

    /// Create the stage's servers or start them again; idempotent.
    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport>;

    /// Stop the stage's servers, keeping their disks.
    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport>;

    /// Remove the stage's servers and everything created for them.
    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport>;

    /// How each server is reached, in stage order (after `build`).
    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>>;

    /// What `build` would do, changing nothing (`build-infra -C`): the
    /// same report, with [`ServerChange::Created`] for what would be
    /// created. It fails where `build` would fail before changing
    /// anything. `None` (the default): the provider cannot tell, and the
    /// caller lists the stage's servers.
    async fn plan(&self, stage: &StageSpec) -> Result<Option<ProviderReport>> {
        let _ = stage;
        Ok(None)
    }

    /// The inventory variables this provider reads from
    /// [`StageSpec::variables`] (e.g. the published ports a cloud firewall
    /// opens); none by default.
    fn variables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the servers are installed after `build`, from what it wrote
    /// (kickstart media), rather than running when it returns. build-infra
    /// then makes one attempt to reach each server instead of waiting, and
    /// lists those that do not answer yet as not installed.
    fn installs_servers_later(&self) -> bool {
        false
    }
}

/// Providers of hive-builder that hive does not implement yet.
pub const NOT_YET_SUPPORTED: &[&str] = &["aws", "gcp", "azure", "openstack"];
