//! [`AzureProvider`]: the `azure` provider.

use async_trait::async_trait;
use hive_provider::{Endpoint, Provider, ProviderReport, Result, StageSpec};

use crate::arm::{Arm, Credentials};
use crate::error::AzureError;
use crate::network::{Azure, Run};
use crate::settings::{AzureSettings, VARIABLES};

/// Builds a stage on Azure as hive-builder's `azure` role does: the
/// resource group (the site's name), the virtual network, one subnet per
/// `subnets` entry, the network security group `sg_<site>` with the
/// role's inbound rules, and per server a static public IP address, a
/// network interface and a VM with its OS disk and, on a hive, the
/// mirrored data disk.
///
/// Credentials and endpoints come from the environment (see
/// [`Credentials`]).
#[derive(Debug, Clone, Default)]
pub struct AzureProvider;

impl AzureProvider {
    /// The provider.
    pub fn new() -> Self {
        AzureProvider
    }

    async fn azure(stage: &StageSpec) -> std::result::Result<Azure, AzureError> {
        let settings = AzureSettings::from_stage(stage)?;
        let arm = Arm::connect(Credentials::from_env()?).await?;
        Ok(Azure { arm, settings })
    }

    async fn build_or_plan(
        stage: &StageSpec,
        check: bool,
    ) -> std::result::Result<ProviderReport, AzureError> {
        let azure = Self::azure(stage).await?;
        let public_key = std::fs::read_to_string(stage.public_key_path()).ok();
        let mut run = Run::new(&azure, check);
        run.network().await?;
        azure.servers(&mut run, public_key.as_deref()).await?;
        Ok(run.report)
    }
}

#[async_trait]
impl Provider for AzureProvider {
    fn name(&self) -> &str {
        "azure"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        AzureSettings::from_stage(stage)?;
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        Ok(Self::build_or_plan(stage, false).await?)
    }

    async fn plan(&self, stage: &StageSpec) -> Result<Option<ProviderReport>> {
        Ok(Some(Self::build_or_plan(stage, true).await?))
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let azure = Self::azure(stage).await?;
        Ok(ProviderReport {
            servers: azure.halt().await?,
            ..Default::default()
        })
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let azure = Self::azure(stage).await?;
        let mut run = Run::new(&azure, false);
        azure.remove_servers(&mut run).await?;
        run.remove_network().await?;
        Ok(run.report)
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        let azure = Self::azure(stage).await?;
        let mut out = Vec::new();
        for plan in &azure.settings.vms {
            let address = azure.public_address(plan).await?.ok_or_else(|| {
                AzureError::Conflict(format!(
                    "server {}: public ip {} has no address; run build-infra",
                    plan.server,
                    plan.public_ip_name()
                ))
            })?;
            out.push(Endpoint {
                name: plan.server.clone(),
                role: plan.role,
                address,
                port: 22,
                user: stage.admin.user.clone(),
                key: stage.private_key_path(),
            });
        }
        Ok(out)
    }

    fn variables(&self) -> &'static [&'static str] {
        VARIABLES
    }
}
