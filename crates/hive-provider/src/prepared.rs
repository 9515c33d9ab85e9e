//! The `prepared` provider: servers that already exist and answer on SSH at
//! their private addresses (`ip_address_list` or the computed ones).
//! build-infra logs in once as root with `root_password` to create the admin
//! account when the stage sets one.

use async_trait::async_trait;
use serde::Deserialize;

use crate::error::Result;
use crate::provider::{Provider, ProviderReport, ServerChange};
use crate::stage::{Endpoint, StageSpec};

/// The `prepared` provider's stage attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreparedAttributes {
    /// The servers' addresses, in server order (already mapped into each
    /// server's `private_ip` by the inventory; accepted here).
    #[serde(default)]
    pub ip_address_list: Option<Vec<std::net::Ipv4Addr>>,
    /// SSH port of the servers (22).
    #[serde(default)]
    pub ssh_port: Option<u16>,
}

/// Servers that exist already; hive neither creates, halts nor destroys them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreparedProvider;

impl PreparedProvider {
    fn attributes(stage: &StageSpec) -> Result<PreparedAttributes> {
        stage.provider_attributes(&["ip_address_list", "ssh_port"])
    }
}

#[async_trait]
impl Provider for PreparedProvider {
    fn name(&self) -> &str {
        "prepared"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        let a = Self::attributes(stage)?;
        stage.check_common()?;
        if let Some(list) = &a.ip_address_list {
            if list.len() != stage.servers.len() {
                return Err(crate::ProviderError::InvalidStage {
                    stage: stage.stage.clone(),
                    key: "ip_address_list".into(),
                    message: format!(
                        "has {} addresses for {} servers; give one address per server",
                        list.len(),
                        stage.servers.len()
                    ),
                });
            }
        }
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let warnings = self.validate(stage)?;
        Ok(ProviderReport {
            servers: stage
                .servers
                .iter()
                .map(|s| (s.name.clone(), ServerChange::Unchanged))
                .collect(),
            resources: Vec::new(),
            warnings,
        })
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        Ok(ProviderReport {
            warnings: vec![format!(
                "stage {}: the prepared provider does not halt servers; stop them yourself",
                stage.stage
            )],
            ..Default::default()
        })
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        Ok(ProviderReport {
            warnings: vec![format!(
                "stage {}: the prepared provider does not destroy servers; only hive's files for the stage are removed",
                stage.stage
            )],
            ..Default::default()
        })
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        let port = Self::attributes(stage)?.ssh_port.unwrap_or(22);
        Ok(stage.private_endpoints(port))
    }
}
