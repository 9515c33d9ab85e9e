//! [`GcpProvider`]: the `gcp` provider.

use async_trait::async_trait;
use hive_provider::{Cloud, ProviderReport, ServerChange, ServerRole, StageSpec};

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
}

#[async_trait]
impl Cloud for GcpProvider {
    const NAME: &'static str = "gcp";
    type Client = Compute;
    type Error = GcpError;

    fn check(stage: &StageSpec) -> Result<(), GcpError> {
        GcpSettings::from_stage(stage).map(drop)
    }

    async fn connect(stage: &StageSpec) -> Result<Compute, GcpError> {
        Compute::connect(GcpSettings::from_stage(stage)?).await
    }

    async fn build(
        gce: &Compute,
        check: bool,
        public_key: Option<&str>,
    ) -> Result<ProviderReport, GcpError> {
        gce.preflight().await?;
        let mut run = Run::new(gce, check);
        let network = run.network().await?;
        run.servers(network, public_key).await?;
        Ok(run.report)
    }

    async fn halt(gce: &Compute) -> Result<Vec<(String, ServerChange)>, GcpError> {
        gce.halt().await
    }

    async fn destroy(gce: &Compute) -> Result<ProviderReport, GcpError> {
        let mut run = Run::new(gce, false);
        gce.remove_servers(&mut run).await?;
        gce.remove_network(&mut run).await?;
        Ok(run.report)
    }

    async fn addresses(gce: &Compute) -> Result<Vec<(String, ServerRole, String)>, GcpError> {
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
            out.push((plan.server.clone(), plan.role, address));
        }
        Ok(out)
    }

    fn variables() -> &'static [&'static str] {
        VARIABLES
    }
}
