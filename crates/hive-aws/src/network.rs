//! build-infra's network: the VPC, its internet gateway, subnets, main
//! route table, default security group and the key pair, each found by
//! its tags and created when missing. In check mode nothing is created and
//! what a run would create is reported.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, IpPermission, IpRange, ResourceType, SecurityGroup, UserIdGroupPair,
};
use hive_provider::{ProviderReport, ServerChange};

use crate::ec2::{Ec2, filter};
use crate::error::AwsError;
use crate::settings::{InboundRule, Source};

/// One build (or its plan): what was done so far.
pub(crate) struct Run<'a> {
    pub(crate) ec2: &'a Ec2,
    pub(crate) check: bool,
    pub(crate) report: ProviderReport,
}

/// The ids of the network resources the instances need; `None` for one
/// that does not exist yet (check mode).
#[derive(Debug, Default)]
pub(crate) struct Network {
    pub(crate) vpc: Option<String>,
    pub(crate) group: Option<String>,
    /// Subnet name and id.
    pub(crate) subnets: Vec<(String, Option<String>)>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(ec2: &'a Ec2, check: bool) -> Self {
        Run {
            ec2,
            check,
            report: ProviderReport::default(),
        }
    }

    pub(crate) fn resource(&mut self, what: impl Into<String>, change: ServerChange) {
        self.report.resources.push((what.into(), change));
    }

    /// The VPC, gateway, security group, subnets and routes.
    pub(crate) async fn network(&mut self) -> Result<Network, AwsError> {
        let vpc = self.vpc().await?;
        let gateway = self.gateway(vpc.as_deref()).await?;
        let group = self.security_group(vpc.as_deref()).await?;
        let subnets = self.subnets(vpc.as_deref()).await?;
        self.routes(vpc.as_deref(), gateway.as_deref()).await?;
        Ok(Network {
            vpc,
            group,
            subnets,
        })
    }

    async fn vpc(&mut self) -> Result<Option<String>, AwsError> {
        let s = &self.ec2.settings;
        let what = format!("vpc {} ({})", s.vpc_name, s.cidr);
        if let Some(vpc) = self.ec2.find_vpc().await? {
            self.resource(what, ServerChange::Unchanged);
            return Ok(vpc.vpc_id().map(str::to_string));
        }
        self.resource(what.clone(), ServerChange::Created);
        if self.check {
            return Ok(None);
        }
        let client = &self.ec2.client;
        let out = client
            .create_vpc()
            .cidr_block(s.cidr.to_string())
            .tag_specifications(self.ec2.tag_spec(ResourceType::Vpc, &s.vpc_name))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("create {what}"), e))?;
        let id = out
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| AwsError::Conflict(format!("create {what}: the answer has no vpc id")))?
            .to_string();
        // As hive-builder's VPCs: instances get DNS host names.
        client
            .modify_vpc_attribute()
            .vpc_id(&id)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .map_err(|e| AwsError::api(format!("enable DNS host names in {what}"), e))?;
        Ok(Some(id))
    }

    async fn gateway(&mut self, vpc: Option<&str>) -> Result<Option<String>, AwsError> {
        let name = self.ec2.settings.gateway_name();
        let what = format!("internet gateway {name}");
        let Some(vpc) = vpc else {
            self.resource(what, ServerChange::Created);
            return Ok(None);
        };
        let client = &self.ec2.client;
        let out = client
            .describe_internet_gateways()
            .filters(filter("attachment.vpc-id", vpc))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("look up {what}"), e))?;
        if let Some(igw) = out.internet_gateways().first() {
            let id = igw.internet_gateway_id().unwrap_or_default().to_string();
            self.tag_if_missing(&id, igw.tags(), &name, &what).await?;
            return Ok(Some(id));
        }
        self.resource(what.clone(), ServerChange::Created);
        if self.check {
            return Ok(None);
        }
        let out = client
            .create_internet_gateway()
            .tag_specifications(self.ec2.tag_spec(ResourceType::InternetGateway, &name))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("create {what}"), e))?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .unwrap_or_default()
            .to_string();
        client
            .attach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(|e| AwsError::api(format!("attach {what} to {vpc}"), e))?;
        Ok(Some(id))
    }

    /// Report `what` unchanged, or set its tags when they are missing.
    async fn tag_if_missing(
        &mut self,
        id: &str,
        tags: &[aws_sdk_ec2::types::Tag],
        name: &str,
        what: &str,
    ) -> Result<(), AwsError> {
        if !self.ec2.tags_missing(tags, name) {
            self.resource(what, ServerChange::Unchanged);
            return Ok(());
        }
        self.resource(
            format!("tags Name={name}, Project of {what}"),
            ServerChange::Created,
        );
        if !self.check {
            self.ec2.set_tags(id, name, what).await?;
        }
        Ok(())
    }

    async fn security_group(&mut self, vpc: Option<&str>) -> Result<Option<String>, AwsError> {
        let name = self.ec2.settings.group_name();
        let what = format!("security group default ({name})");
        let wanted: BTreeSet<InboundRule> = self.ec2.settings.rules.iter().cloned().collect();
        let Some(vpc) = vpc else {
            // A new VPC's default group lets everything in from itself.
            self.resource(
                format!("tags Name={name}, Project of {what}"),
                ServerChange::Created,
            );
            for rule in wanted.iter().filter(|r| !is_self_rule(r)) {
                self.resource(format!("security group rule {rule}"), ServerChange::Created);
            }
            return Ok(None);
        };
        let out = self
            .ec2
            .client
            .describe_security_groups()
            .filters(filter("vpc-id", vpc))
            .filters(filter("group-name", "default"))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("look up {what}"), e))?;
        let group =
            out.security_groups().first().cloned().ok_or_else(|| {
                AwsError::Conflict(format!("{vpc} has no default security group"))
            })?;
        let id = group.group_id().unwrap_or_default().to_string();
        self.tag_if_missing(&id, group.tags(), &name, &what).await?;
        let existing = existing_rules(&group);
        let add: Vec<&InboundRule> = wanted.difference(&existing).collect();
        let remove: Vec<&InboundRule> = existing.difference(&wanted).collect();
        for rule in &add {
            self.resource(format!("security group rule {rule}"), ServerChange::Created);
        }
        for rule in &remove {
            self.resource(
                format!("security group rule {rule}"),
                ServerChange::Destroyed,
            );
        }
        if self.check {
            return Ok(Some(id));
        }
        let client = &self.ec2.client;
        if !add.is_empty() {
            client
                .authorize_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(add.iter().map(|r| permission(r, &id)).collect()))
                .send()
                .await
                .map_err(|e| AwsError::api(format!("open the inbound rules of {what}"), e))?;
        }
        if !remove.is_empty() {
            client
                .revoke_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(remove.iter().map(|r| permission(r, &id)).collect()))
                .send()
                .await
                .map_err(|e| AwsError::api(format!("remove inbound rules of {what}"), e))?;
        }
        Ok(Some(id))
    }

    async fn subnets(
        &mut self,
        vpc: Option<&str>,
    ) -> Result<Vec<(String, Option<String>)>, AwsError> {
        let plans = self.ec2.settings.subnets.clone();
        let existing = match vpc {
            None => Vec::new(),
            Some(vpc) => self
                .ec2
                .client
                .describe_subnets()
                .filters(filter("vpc-id", vpc))
                .send()
                .await
                .map_err(|e| AwsError::api(format!("look up the subnets of {vpc}"), e))?
                .subnets()
                .to_vec(),
        };
        let mut out = Vec::new();
        for plan in plans {
            let what = format!("subnet {} ({}, {})", plan.name, plan.cidr, plan.zone);
            let cidr = plan.cidr.to_string();
            if let Some(subnet) = existing
                .iter()
                .find(|s| s.cidr_block() == Some(cidr.as_str()))
            {
                if subnet.availability_zone() != Some(plan.zone.as_str()) {
                    return Err(AwsError::Conflict(format!(
                        "{what}: the existing subnet {} is in zone {}; remove it or set available_zone to its zone",
                        subnet.subnet_id().unwrap_or_default(),
                        subnet.availability_zone().unwrap_or_default()
                    )));
                }
                let id = subnet.subnet_id().unwrap_or_default().to_string();
                self.tag_if_missing(&id, subnet.tags(), &plan.name, &what)
                    .await?;
                out.push((plan.name, Some(id)));
                continue;
            }
            self.resource(what.clone(), ServerChange::Created);
            let Some(vpc) = vpc.filter(|_| !self.check) else {
                out.push((plan.name, None));
                continue;
            };
            let created = self
                .ec2
                .client
                .create_subnet()
                .vpc_id(vpc)
                .cidr_block(&cidr)
                .availability_zone(&plan.zone)
                .tag_specifications(self.ec2.tag_spec(ResourceType::Subnet, &plan.name))
                .send()
                .await
                .map_err(|e| AwsError::api(format!("create {what}"), e))?;
            let id = created
                .subnet()
                .and_then(|s| s.subnet_id())
                .map(str::to_string);
            out.push((plan.name, id));
        }
        Ok(out)
    }

    /// The VPC's main route table: tagged as hive-builder tags it, with the
    /// default route through the internet gateway.
    async fn routes(&mut self, vpc: Option<&str>, gateway: Option<&str>) -> Result<(), AwsError> {
        let name = self.ec2.settings.route_table_name();
        let what = format!("route table {name}");
        let route = "route 0.0.0.0/0 through the internet gateway".to_string();
        let Some(vpc) = vpc else {
            self.resource(
                format!("tags Name={name}, Project of {what}"),
                ServerChange::Created,
            );
            self.resource(route, ServerChange::Created);
            return Ok(());
        };
        let out = self
            .ec2
            .client
            .describe_route_tables()
            .filters(filter("vpc-id", vpc))
            .filters(filter("association.main", "true"))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("look up the main {what}"), e))?;
        let table = out
            .route_tables()
            .first()
            .cloned()
            .ok_or_else(|| AwsError::Conflict(format!("{vpc} has no main route table")))?;
        let id = table.route_table_id().unwrap_or_default().to_string();
        self.tag_if_missing(&id, table.tags(), name, &what).await?;
        let current = table
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
        let current_gateway = current.and_then(|r| r.gateway_id());
        if gateway.is_some() && current_gateway == gateway {
            self.resource(route, ServerChange::Unchanged);
            return Ok(());
        }
        self.resource(route.clone(), ServerChange::Created);
        let Some(gateway) = gateway.filter(|_| !self.check) else {
            return Ok(());
        };
        let client = &self.ec2.client;
        if current.is_some() {
            client
                .replace_route()
                .route_table_id(&id)
                .destination_cidr_block("0.0.0.0/0")
                .gateway_id(gateway)
                .send()
                .await
                .map_err(|e| AwsError::api(format!("set the {route}"), e))?;
        } else {
            client
                .create_route()
                .route_table_id(&id)
                .destination_cidr_block("0.0.0.0/0")
                .gateway_id(gateway)
                .send()
                .await
                .map_err(|e| AwsError::api(format!("add the {route}"), e))?;
        }
        Ok(())
    }

    /// The key pair holding the stage's public key.
    pub(crate) async fn key_pair(&mut self, public_key: Option<&str>) -> Result<(), AwsError> {
        let name = self.ec2.settings.key_name.clone();
        let what = format!("key pair {name}");
        if self.ec2.key_pair_exists(&name).await? {
            self.resource(what, ServerChange::Unchanged);
            return Ok(());
        }
        self.resource(what.clone(), ServerChange::Created);
        if self.check {
            return Ok(());
        }
        let key = public_key.ok_or_else(|| {
            AwsError::Conflict(format!("{what}: the stage's public key is missing"))
        })?;
        self.ec2
            .client
            .import_key_pair()
            .key_name(&name)
            .public_key_material(aws_sdk_ec2::primitives::Blob::new(key.trim().as_bytes()))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("import {what}"), e))?;
        Ok(())
    }
}

impl Ec2 {
    /// Whether key pair `name` exists.
    pub(crate) async fn key_pair_exists(&self, name: &str) -> Result<bool, AwsError> {
        match self
            .client
            .describe_key_pairs()
            .key_names(name)
            .send()
            .await
        {
            Ok(out) => Ok(!out.key_pairs().is_empty()),
            Err(e) => {
                let err = AwsError::api(format!("look up key pair {name}"), e);
                if err.code() == Some("InvalidKeyPair.NotFound") {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }
}

fn is_self_rule(rule: &InboundRule) -> bool {
    rule.protocol == "-1" && rule.source == Source::Group
}

/// The group's inbound rules from addresses and from itself (rules from
/// other groups are left alone).
fn existing_rules(group: &SecurityGroup) -> BTreeSet<InboundRule> {
    let own = group.group_id().unwrap_or_default();
    let mut rules = BTreeSet::new();
    for p in group.ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from_port, to_port) = if protocol == "-1" {
            (-1, -1)
        } else {
            (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1))
        };
        let rule = |source| InboundRule {
            protocol: protocol.clone(),
            from_port,
            to_port,
            source,
        };
        for pair in p.user_id_group_pairs() {
            if pair.group_id() == Some(own) {
                rules.insert(rule(Source::Group));
            }
        }
        for range in p.ip_ranges() {
            if let Some(cidr) = range.cidr_ip() {
                rules.insert(rule(Source::Cidr(cidr.to_string())));
            }
        }
    }
    rules
}

/// The API's form of `rule` in group `group_id`.
fn permission(rule: &InboundRule, group_id: &str) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        p = p.from_port(rule.from_port).to_port(rule.to_port);
    }
    match &rule.source {
        Source::Group => p
            .user_id_group_pairs(UserIdGroupPair::builder().group_id(group_id).build())
            .build(),
        Source::Cidr(cidr) => p
            .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
            .build(),
    }
}
