//! The EC2 client of a stage and the look-ups every operation shares:
//! resources are found by their `Name` and `Project` tags, as hive-builder
//! tags them.

use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, Instance, InstanceStateName, ResourceType, Tag, TagSpecification, Vpc,
};

use crate::error::AwsError;
use crate::settings::AwsSettings;

/// How long to wait for an instance to be running, stopped or terminated.
pub(crate) const STATE_WAIT: Duration = Duration::from_secs(600);

/// The EC2 API of one stage's region.
///
/// Public only as the [`Cloud::Client`](hive_provider::Cloud::Client) of
/// [`AwsProvider`](crate::AwsProvider); not reachable from outside.
pub struct Ec2 {
    pub(crate) client: Client,
    pub(crate) settings: AwsSettings,
    /// How long to pause between polls of a resource's state.
    pub(crate) poll: Duration,
}

/// The EC2 client hive uses for `region`, with the standard credentials
/// chain (environment, profile, `~/.aws`, instance role) and endpoint
/// (`AWS_ENDPOINT_URL`); TLS is rustls on ring. Tools and tests use it to
/// read what hive built.
pub async fn client(region: &str) -> Client {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(http)
        .load()
        .await;
    Client::new(&config)
}

/// An EC2 filter with one value.
pub(crate) fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The value of tag `key`.
pub(crate) fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The lifecycle states of an instance that still exists.
const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped"];

impl Ec2 {
    /// The stage's client (see [`client`]).
    pub(crate) async fn connect(settings: AwsSettings) -> Self {
        Ec2 {
            client: client(&settings.region).await,
            settings,
            poll: Duration::from_secs(2),
        }
    }

    /// The `Name` and `Project` tags of a resource named `name`.
    pub(crate) fn tags(&self, name: &str) -> Vec<Tag> {
        vec![
            Tag::builder().key("Name").value(name).build(),
            Tag::builder()
                .key("Project")
                .value(&self.settings.project)
                .build(),
        ]
    }

    /// The tag specification of a new resource of type `kind` named `name`.
    pub(crate) fn tag_spec(&self, kind: ResourceType, name: &str) -> TagSpecification {
        TagSpecification::builder()
            .resource_type(kind)
            .set_tags(Some(self.tags(name)))
            .build()
    }

    /// Whether a resource's tags lack `Name=name` or the project's tag.
    pub(crate) fn tags_missing(&self, tags: &[Tag], name: &str) -> bool {
        tag_value(tags, "Name") != Some(name)
            || tag_value(tags, "Project") != Some(self.settings.project.as_str())
    }

    /// Set the `Name` and `Project` tags of resource `id`.
    pub(crate) async fn set_tags(&self, id: &str, name: &str, what: &str) -> Result<(), AwsError> {
        self.client
            .create_tags()
            .resources(id)
            .set_tags(Some(self.tags(name)))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("tag {what}"), e))?;
        Ok(())
    }

    /// The stage's VPC: tagged with its name and the project, with the
    /// stage's network.
    pub(crate) async fn find_vpc(&self) -> Result<Option<Vpc>, AwsError> {
        let s = &self.settings;
        let out = self
            .client
            .describe_vpcs()
            .filters(filter("tag:Name", &s.vpc_name))
            .filters(filter("tag:Project", &s.project))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("look up vpc {}", s.vpc_name), e))?;
        let cidr = s.cidr.to_string();
        let mut found = out
            .vpcs()
            .iter()
            .filter(|v| v.cidr_block() == Some(cidr.as_str()));
        let vpc = found.next().cloned();
        if found.next().is_some() {
            return Err(AwsError::Conflict(format!(
                "stage {}: two VPCs are named {} with network {cidr} in project {}; remove one",
                s.stage, s.vpc_name, s.project
            )));
        }
        Ok(vpc)
    }

    /// The live instance of server `name` (tagged with its name and the
    /// project, not terminated).
    pub(crate) async fn find_instance(&self, name: &str) -> Result<Option<Instance>, AwsError> {
        let out = self
            .client
            .describe_instances()
            .filters(filter("tag:Name", name))
            .filters(filter("tag:Project", &self.settings.project))
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::api(format!("server {name}: look up its instance"), e))?;
        let mut found = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .is_some_and(|n| LIVE_STATES.contains(&n.as_str()))
            });
        let instance = found.next().cloned();
        if let Some(other) = found.next() {
            return Err(AwsError::Conflict(format!(
                "server {name}: two instances carry its name in project {} ({} and {}); terminate one",
                self.settings.project,
                instance
                    .as_ref()
                    .and_then(|i| i.instance_id())
                    .unwrap_or_default(),
                other.instance_id().unwrap_or_default()
            )));
        }
        Ok(instance)
    }

    /// Wait until instance `id` of server `name` is in state `want`.
    pub(crate) async fn wait_state(
        &self,
        name: &str,
        id: &str,
        want: InstanceStateName,
    ) -> Result<(), AwsError> {
        let deadline = Instant::now() + STATE_WAIT;
        loop {
            let out = self
                .client
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| AwsError::api(format!("server {name}: read the state of {id}"), e))?;
            let state = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find_map(|i| i.state().and_then(|s| s.name()).cloned());
            match state {
                Some(s) if s == want => return Ok(()),
                // A terminated instance may vanish from the answers.
                None if want == InstanceStateName::Terminated => return Ok(()),
                Some(InstanceStateName::Terminated) => {
                    return Err(AwsError::Conflict(format!(
                        "server {name}: instance {id} was terminated while waiting for it to be {want}"
                    )));
                }
                _ if Instant::now() >= deadline => {
                    return Err(AwsError::Timeout {
                        what: format!("server {name}: instance {id} becoming {want}"),
                        after: STATE_WAIT,
                    });
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
    }

    /// The public address associated with instance `id`, if any.
    pub(crate) async fn address_of(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Option<aws_sdk_ec2::types::Address>, AwsError> {
        let out = self
            .client
            .describe_addresses()
            .filters(filter("instance-id", id))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("server {name}: look up its elastic ip"), e))?;
        Ok(out.addresses().first().cloned())
    }

    /// The elastic IPs tagged for server `name` in the project.
    pub(crate) async fn tagged_addresses(
        &self,
        name: &str,
    ) -> Result<Vec<aws_sdk_ec2::types::Address>, AwsError> {
        let out = self
            .client
            .describe_addresses()
            .filters(filter("tag:Name", AwsSettings::address_name(name)))
            .filters(filter("tag:Project", &self.settings.project))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("server {name}: look up its elastic ip"), e))?;
        Ok(out.addresses().to_vec())
    }
}
