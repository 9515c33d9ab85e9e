//! [`AzureProvider`]: the `azure` provider.

use async_trait::async_trait;
use hive_provider::{Cloud, ProviderReport, ServerChange, ServerRole, StageSpec};

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
}

#[async_trait]
impl Cloud for AzureProvider {
    const NAME: &'static str = "azure";
    type Client = Azure;
    type Error = AzureError;

    fn check(stage: &StageSpec) -> Result<(), AzureError> {
        AzureSettings::from_stage(stage).map(drop)
    }

    async fn connect(stage: &StageSpec) -> Result<Azure, AzureError> {
        let settings = AzureSettings::from_stage(stage)?;
        let arm = Arm::connect(Credentials::from_env()?).await?;
        Ok(Azure { arm, settings })
    }

    async fn build(
        azure: &Azure,
        check: bool,
        public_key: Option<&str>,
    ) -> Result<ProviderReport, AzureError> {
        let mut run = Run::new(azure, check);
        run.network().await?;
        azure.servers(&mut run, public_key).await?;
        Ok(run.report)
    }

    async fn halt(azure: &Azure) -> Result<Vec<(String, ServerChange)>, AzureError> {
        azure.halt().await
    }

    async fn destroy(azure: &Azure) -> Result<ProviderReport, AzureError> {
        let mut run = Run::new(azure, false);
        azure.remove_servers(&mut run).await?;
        run.remove_network().await?;
        Ok(run.report)
    }

    async fn addresses(azure: &Azure) -> Result<Vec<(String, ServerRole, String)>, AzureError> {
        let mut out = Vec::new();
        for plan in &azure.settings.vms {
            let address = azure.public_address(plan).await?.ok_or_else(|| {
                AzureError::Conflict(format!(
                    "server {}: public ip {} has no address; run build-infra",
                    plan.server,
                    plan.public_ip_name()
                ))
            })?;
            out.push((plan.server.clone(), plan.role, address));
        }
        Ok(out)
    }

    fn variables() -> &'static [&'static str] {
        VARIABLES
    }
}
