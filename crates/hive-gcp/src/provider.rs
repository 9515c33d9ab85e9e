//! [`GcpProvider`]: the `gcp` provider.

use async_trait::async_trait;
use hive_provider::{Endpoint, Provider, ProviderReport, Result, StageSpec};

use crate::compute::Compute;
use crate::error::GcpError;
use crate::network::Run;
use crate::settings::{GcpSettings, VARIABLES};

/// Builds a stage on Google Compute Engine as hive-builder's `gcp` role
/// does: the VPC network, its three firewall rules, one subnetwork per
/// `subnets` entry, a static external address and an instance per server
/// with its boot and mirrored disks.
///
/// The project and credentials are those of the service account key
/// `gcp_credential.json` in the project's root (or
/// `GOOGLE_APPLICATION_CREDENTIALS`); `HIVE_GCP_ENDPOINT` points hive at
/// another endpoint.
#[derive(Debug, Clone, Default)]
pub struct GcpProvider;

impl GcpProvider {
    /// The provider.
    pub fn new() -> Self {
        GcpProvider
    }

    async fn compute(stage: &StageSpec) -> std::result::Result<Compute, GcpError> {
        Compute::connect(GcpSettings::from_stage(stage)?).await
    }

    async fn build_or_plan(
        stage: &StageSpec,
        check: bool,
    ) -> std::result::Result<ProviderReport, GcpError> {
        let gce = Self::compute(stage).await?;
        gce.preflight().await?;
        let public_key = std::fs::read_to_string(stage.public_key_path()).ok();
        let mut run = Run::new(&gce, check);
        let network = run.network().await?;
        run.servers(network, public_key.as_deref()).await?;
        Ok(run.report)
    }
}

#[async_trait]
impl Provider for GcpProvider {
    fn name(&self) -> &str {
        "gcp"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        GcpSettings::from_stage(stage)?;
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        Ok(Self::build_or_plan(stage, false).await?)
    }

    async fn plan(&self, stage: &StageSpec) -> Result<Option<ProviderReport>> {
        Ok(Some(Self::build_or_plan(stage, true).await?))
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let gce = Self::compute(stage).await?;
        Ok(ProviderReport {
            servers: gce.halt().await?,
            ..Default::default()
        })
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let gce = Self::compute(stage).await?;
        let mut run = Run::new(&gce, false);
        gce.remove_servers(&mut run).await?;
        gce.remove_network(&mut run).await?;
        Ok(run.report)
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        let gce = Self::compute(stage).await?;
        let mut out = Vec::new();
        for plan in &gce.settings.instances {
            let address = gce
                .find_address(plan)
                .await?
                .and_then(|a| a.address)
                .ok_or_else(|| {
                    GcpError::Conflict(format!(
                        "server {}: address {} does not exist; run build-infra",
                        plan.server, plan.address
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
