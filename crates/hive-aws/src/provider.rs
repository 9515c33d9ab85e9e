//! [`AwsProvider`]: the `aws` provider.

use async_trait::async_trait;
use hive_provider::{Endpoint, Provider, ProviderReport, Result, StageSpec};

use crate::ec2::Ec2;
use crate::error::AwsError;
use crate::network::Run;
use crate::settings::{AwsSettings, VARIABLES};

/// Builds a stage on Amazon EC2 as hive-builder's `aws` role does: the
/// VPC, its internet gateway, one subnet per `subnets` entry, the main
/// route table, the default security group's inbound rules, the key pair,
/// one instance per server with its boot and mirrored disks, and an
/// elastic IP per instance, all tagged `Name` and `Project` as
/// hive-builder tags them so that a site it built is recognised.
///
/// The region is the stage's `region`; credentials and the endpoint come
/// the standard way (environment, profile, `~/.aws`; `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone, Default)]
pub struct AwsProvider;

impl AwsProvider {
    /// The provider.
    pub fn new() -> Self {
        AwsProvider
    }

    async fn ec2(stage: &StageSpec) -> std::result::Result<Ec2, AwsError> {
        Ok(Ec2::connect(AwsSettings::from_stage(stage)?).await)
    }

    async fn build_or_plan(
        stage: &StageSpec,
        check: bool,
    ) -> std::result::Result<ProviderReport, AwsError> {
        let ec2 = Self::ec2(stage).await?;
        ec2.preflight().await?;
        let public_key = std::fs::read_to_string(stage.public_key_path()).ok();
        let mut run = Run::new(&ec2, check);
        let network = run.network().await?;
        run.key_pair(public_key.as_deref()).await?;
        run.servers(&network).await?;
        Ok(run.report)
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &str {
        "aws"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        AwsSettings::from_stage(stage)?;
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        Ok(Self::build_or_plan(stage, false).await?)
    }

    async fn plan(&self, stage: &StageSpec) -> Result<Option<ProviderReport>> {
        Ok(Some(Self::build_or_plan(stage, true).await?))
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let ec2 = Self::ec2(stage).await?;
        Ok(ProviderReport {
            servers: ec2.halt().await?,
            ..Default::default()
        })
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let ec2 = Self::ec2(stage).await?;
        let mut run = Run::new(&ec2, false);
        ec2.remove_servers(&mut run).await?;
        ec2.remove_network(&mut run).await?;
        Ok(run.report)
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        let ec2 = Self::ec2(stage).await?;
        let mut out = Vec::new();
        for plan in &ec2.settings.instances {
            let instance = ec2.find_instance(&plan.name).await?.ok_or_else(|| {
                AwsError::Conflict(format!(
                    "server {} has no instance; run build-infra",
                    plan.name
                ))
            })?;
            let id = instance.instance_id().unwrap_or_default();
            let address = ec2
                .address_of(&plan.name, id)
                .await?
                .and_then(|a| a.public_ip().map(str::to_string))
                .ok_or_else(|| {
                    AwsError::Conflict(format!(
                        "server {}: instance {id} has no elastic ip; run build-infra",
                        plan.name
                    ))
                })?;
            out.push(Endpoint {
                name: plan.name.clone(),
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
