//! [`AwsProvider`]: the `aws` provider.

use async_trait::async_trait;
use hive_provider::{Cloud, ProviderReport, ServerChange, ServerRole, StageSpec};

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
}

#[async_trait]
impl Cloud for AwsProvider {
    const NAME: &'static str = "aws";
    type Client = Ec2;
    type Error = AwsError;

    fn check(stage: &StageSpec) -> Result<(), AwsError> {
        AwsSettings::from_stage(stage).map(drop)
    }

    async fn connect(stage: &StageSpec) -> Result<Ec2, AwsError> {
        Ok(Ec2::connect(AwsSettings::from_stage(stage)?).await)
    }

    async fn build(
        ec2: &Ec2,
        check: bool,
        public_key: Option<&str>,
    ) -> Result<ProviderReport, AwsError> {
        ec2.preflight().await?;
        let mut run = Run::new(ec2, check);
        let network = run.network().await?;
        run.key_pair(public_key).await?;
        run.servers(&network).await?;
        Ok(run.report)
    }

    async fn halt(ec2: &Ec2) -> Result<Vec<(String, ServerChange)>, AwsError> {
        ec2.halt().await
    }

    async fn destroy(ec2: &Ec2) -> Result<ProviderReport, AwsError> {
        let mut run = Run::new(ec2, false);
        ec2.remove_servers(&mut run).await?;
        ec2.remove_network(&mut run).await?;
        Ok(run.report)
    }

    async fn addresses(ec2: &Ec2) -> Result<Vec<(String, ServerRole, String)>, AwsError> {
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
            out.push((plan.name.clone(), plan.role, address));
        }
        Ok(out)
    }

    fn variables() -> &'static [&'static str] {
        VARIABLES
    }
}
