//! The servers: what the account must offer (zones, instance types, the
//! image), one instance per server with its disks and elastic IP, and
//! stopping and removing them.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    BlockDeviceMapping, DomainType, EbsBlockDevice, Instance,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, LocationType,
    ResourceType,
};
use hive_provider::ServerChange;

use crate::ec2::{Ec2, filter};
use crate::error::AwsError;
use crate::network::{Network, Run};
use crate::settings::{AwsSettings, InstancePlan};

impl Ec2 {
    /// Check that the region has every zone, each zone offers its servers'
    /// instance types and the image exists, before anything is created.
    pub(crate) async fn preflight(&self) -> Result<(), AwsError> {
        let s = &self.settings;
        let out = self
            .client
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| {
                AwsError::api(format!("list the availability zones of {}", s.region), e)
            })?;
        let zones: BTreeSet<&str> = out
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name())
            .collect();
        for subnet in &s.subnets {
            if !zones.contains(subnet.zone.as_str()) {
                return Err(AwsError::from(hive_provider::ProviderError::invalid_stage(
                    &s.stage,
                    "subnets",
                    format!(
                        "subnet {}: region {} has no availability zone {}; its zones: {}",
                        subnet.name,
                        s.region,
                        subnet.zone,
                        zones.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                )));
            }
        }
        let types: BTreeSet<&str> = s
            .instances
            .iter()
            .map(|i| i.instance_type.as_str())
            .collect();
        let mut offered = BTreeSet::new();
        let mut next = None;
        loop {
            let out = self
                .client
                .describe_instance_type_offerings()
                .location_type(LocationType::AvailabilityZone)
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("instance-type")
                        .set_values(Some(types.iter().map(|t| t.to_string()).collect()))
                        .build(),
                )
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| {
                    AwsError::api(
                        format!("list the instance types offered in {}", s.region),
                        e,
                    )
                })?;
            for o in out.instance_type_offerings() {
                if let (Some(t), Some(zone)) = (o.instance_type(), o.location()) {
                    offered.insert((t.as_str().to_string(), zone.to_string()));
                }
            }
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        for i in &s.instances {
            if !offered.contains(&(i.instance_type.clone(), i.zone.clone())) {
                let key = if i.role == hive_provider::ServerRole::Repository {
                    "repository_instance_type"
                } else {
                    "instance_type"
                };
                return Err(AwsError::from(hive_provider::ProviderError::invalid_stage(
                    &s.stage,
                    key,
                    format!(
                        "server {}: instance type {} is not offered in zone {}",
                        i.name, i.instance_type, i.zone
                    ),
                )));
            }
        }
        let images: BTreeSet<&str> = s.instances.iter().map(|i| i.image.as_str()).collect();
        for image in images {
            let found = self
                .client
                .describe_images()
                .image_ids(image)
                .send()
                .await
                .map_err(|e| AwsError::api(format!("look up image {image} (image_name)"), e))?;
            if found.images().is_empty() {
                return Err(AwsError::from(hive_provider::ProviderError::invalid_stage(
                    &s.stage,
                    "image_name",
                    format!("image {image} does not exist in region {}", s.region),
                )));
            }
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Every server's instance (created, or started again) and elastic
    /// IP; waits until the instances run.
    pub(crate) async fn servers(&mut self, network: &Network) -> Result<(), AwsError> {
        let plans = self.ec2.settings.instances.clone();
        let mut waiting = Vec::new();
        let mut ids = Vec::new();
        for plan in &plans {
            let (change, id) = self.instance(plan, network).await?;
            self.report.servers.push((plan.name.clone(), change));
            if change != ServerChange::Unchanged && !self.check {
                if let Some(id) = &id {
                    waiting.push((plan.name.clone(), id.clone()));
                }
            }
            ids.push((plan.name.clone(), id));
        }
        for (name, id) in &waiting {
            self.ec2
                .wait_state(name, id, InstanceStateName::Running)
                .await?;
        }
        for (name, id) in ids {
            self.address(&name, id.as_deref()).await?;
        }
        Ok(())
    }

    async fn instance(
        &mut self,
        plan: &InstancePlan,
        network: &Network,
    ) -> Result<(ServerChange, Option<String>), AwsError> {
        if network.vpc.is_some() {
            if let Some(found) = self.ec2.find_instance(&plan.name).await? {
                return self.existing_instance(plan, &found).await;
            }
        }
        if self.check {
            return Ok((ServerChange::Created, None));
        }
        let subnet = network
            .subnets
            .iter()
            .find(|(n, _)| *n == plan.subnet)
            .and_then(|(_, id)| id.clone())
            .ok_or_else(|| {
                AwsError::Conflict(format!(
                    "server {}: subnet {} was not created",
                    plan.name, plan.subnet
                ))
            })?;
        let group = network.group.clone().ok_or_else(|| {
            AwsError::Conflict(format!(
                "server {}: the security group was not found",
                plan.name
            ))
        })?;
        let kms = self.ec2.settings.kms_key_id.clone();
        let disks = plan.disks.iter().map(|d| {
            let ebs = EbsBlockDevice::builder()
                .set_volume_size(d.size)
                .delete_on_termination(true)
                .encrypted(d.encrypted)
                .set_kms_key_id(kms.clone().filter(|_| d.encrypted))
                .build();
            BlockDeviceMapping::builder()
                .device_name(&d.device)
                .ebs(ebs)
                .build()
        });
        let nic = InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .subnet_id(subnet)
            .private_ip_address(plan.private_ip.to_string())
            .groups(group)
            .associate_public_ip_address(false)
            .build();
        let out = self
            .ec2
            .client
            .run_instances()
            .image_id(&plan.image)
            .instance_type(InstanceType::from(plan.instance_type.as_str()))
            .key_name(&self.ec2.settings.key_name)
            .min_count(1)
            .max_count(1)
            .set_block_device_mappings(Some(disks.collect()))
            .network_interfaces(nic)
            .disable_api_termination(false)
            .tag_specifications(self.ec2.tag_spec(ResourceType::Instance, &plan.name))
            .tag_specifications(self.ec2.tag_spec(ResourceType::Volume, &plan.name))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("server {}: create its instance", plan.name), e))?;
        let id = out
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string);
        Ok((ServerChange::Created, id))
    }

    /// A server whose instance exists: started again when stopped; what
    /// differs from the stage is reported, not changed.
    async fn existing_instance(
        &mut self,
        plan: &InstancePlan,
        found: &Instance,
    ) -> Result<(ServerChange, Option<String>), AwsError> {
        let id = found.instance_id().unwrap_or_default().to_string();
        let kind = found
            .instance_type()
            .map(|t| t.as_str())
            .unwrap_or_default();
        if kind != plan.instance_type {
            self.report.warnings.push(format!(
                "server {}: instance {id} is a {kind}, the stage asks for {}; hive does not resize it (terminate it with build-infra -D to build it anew)",
                plan.name, plan.instance_type
            ));
        }
        let state = found.state().and_then(|s| s.name()).cloned();
        match state {
            Some(InstanceStateName::Stopped | InstanceStateName::Stopping) => {
                if self.check {
                    return Ok((ServerChange::Started, Some(id)));
                }
                self.ec2
                    .wait_state(&plan.name, &id, InstanceStateName::Stopped)
                    .await?;
                self.ec2
                    .client
                    .start_instances()
                    .instance_ids(&id)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::api(format!("server {}: start instance {id}", plan.name), e)
                    })?;
                Ok((ServerChange::Started, Some(id)))
            }
            _ => Ok((ServerChange::Unchanged, Some(id))),
        }
    }

    /// The elastic IP of server `name`: kept when associated, one left over
    /// from an earlier run associated again, otherwise a new one.
    async fn address(&mut self, name: &str, instance: Option<&str>) -> Result<(), AwsError> {
        let what = format!("elastic ip {}", AwsSettings::address_name(name));
        let Some(instance) = instance else {
            self.resource(what, ServerChange::Created);
            return Ok(());
        };
        if let Some(a) = self.ec2.address_of(name, instance).await? {
            let what = format!("{what} ({})", a.public_ip().unwrap_or_default());
            self.resource(what, ServerChange::Unchanged);
            return Ok(());
        }
        self.resource(what.clone(), ServerChange::Created);
        if self.check {
            return Ok(());
        }
        let left = self.ec2.tagged_addresses(name).await?;
        let allocation = match left.iter().find(|a| a.association_id().is_none()) {
            Some(a) => a.allocation_id().unwrap_or_default().to_string(),
            None => self
                .ec2
                .client
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(
                    self.ec2
                        .tag_spec(ResourceType::ElasticIp, &AwsSettings::address_name(name)),
                )
                .send()
                .await
                .map_err(|e| AwsError::api(format!("server {name}: allocate its {what}"), e))?
                .allocation_id()
                .unwrap_or_default()
                .to_string(),
        };
        self.ec2
            .client
            .associate_address()
            .allocation_id(&allocation)
            .instance_id(instance)
            .send()
            .await
            .map_err(|e| AwsError::api(format!("server {name}: associate its {what}"), e))?;
        Ok(())
    }
}

impl Ec2 {
    /// Stop every running instance of the stage; reports each server.
    pub(crate) async fn halt(&self) -> Result<Vec<(String, ServerChange)>, AwsError> {
        let mut out = Vec::new();
        let mut stopping = Vec::new();
        for plan in &self.settings.instances {
            let Some(found) = self.find_instance(&plan.name).await? else {
                continue;
            };
            let id = found.instance_id().unwrap_or_default().to_string();
            let state = found.state().and_then(|s| s.name()).cloned();
            if matches!(state, Some(InstanceStateName::Stopped)) {
                out.push((plan.name.clone(), ServerChange::Unchanged));
                continue;
            }
            if !matches!(state, Some(InstanceStateName::Stopping)) {
                self.client
                    .stop_instances()
                    .instance_ids(&id)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::api(format!("server {}: stop instance {id}", plan.name), e)
                    })?;
            }
            out.push((plan.name.clone(), ServerChange::Stopped));
            stopping.push((plan.name.clone(), id));
        }
        for (name, id) in &stopping {
            self.wait_state(name, id, InstanceStateName::Stopped)
                .await?;
        }
        Ok(out)
    }

    /// Terminate the stage's instances and release their elastic IPs.
    pub(crate) async fn remove_servers(&self, run: &mut Run<'_>) -> Result<(), AwsError> {
        let mut terminating = Vec::new();
        let mut addresses = Vec::new();
        for plan in &self.settings.instances {
            let mut mine = self.tagged_addresses(&plan.name).await?;
            if let Some(found) = self.find_instance(&plan.name).await? {
                let id = found.instance_id().unwrap_or_default().to_string();
                if let Some(a) = self.address_of(&plan.name, &id).await? {
                    if !mine.iter().any(|m| m.allocation_id() == a.allocation_id()) {
                        mine.push(a);
                    }
                }
                self.client
                    .terminate_instances()
                    .instance_ids(&id)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::api(format!("server {}: terminate instance {id}", plan.name), e)
                    })?;
                run.report
                    .servers
                    .push((plan.name.clone(), ServerChange::Destroyed));
                terminating.push((plan.name.clone(), id));
            }
            addresses.extend(mine.into_iter().map(|a| (plan.name.clone(), a)));
        }
        for (name, id) in &terminating {
            self.wait_state(name, id, InstanceStateName::Terminated)
                .await?;
        }
        for (name, a) in addresses {
            let ip = a.public_ip().unwrap_or_default().to_string();
            let what = format!("elastic ip {} ({ip})", AwsSettings::address_name(&name));
            if let Some(assoc) = a.association_id() {
                // Still associated only when the instance was not ours.
                self.client
                    .disassociate_address()
                    .association_id(assoc)
                    .send()
                    .await
                    .map_err(|e| AwsError::api(format!("server {name}: disassociate {what}"), e))?;
            }
            self.client
                .release_address()
                .set_allocation_id(a.allocation_id().map(str::to_string))
                .send()
                .await
                .map_err(|e| AwsError::api(format!("server {name}: release {what}"), e))?;
            run.resource(what, ServerChange::Destroyed);
        }
        Ok(())
    }

    /// Remove the key pair, then the VPC's subnets, its internet gateway
    /// and the VPC itself (its default security group and main route table
    /// go with it).
    pub(crate) async fn remove_network(&self, run: &mut Run<'_>) -> Result<(), AwsError> {
        let s = &self.settings;
        if self.key_pair_exists(&s.key_name).await? {
            self.client
                .delete_key_pair()
                .key_name(&s.key_name)
                .send()
                .await
                .map_err(|e| AwsError::api(format!("delete key pair {}", s.key_name), e))?;
            run.resource(format!("key pair {}", s.key_name), ServerChange::Destroyed);
        }
        let Some(vpc) = self.find_vpc().await? else {
            return Ok(());
        };
        let vpc_id = vpc.vpc_id().unwrap_or_default().to_string();
        let subnets = self
            .client
            .describe_subnets()
            .filters(filter("vpc-id", &vpc_id))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("look up the subnets of {vpc_id}"), e))?;
        for plan in &s.subnets {
            let cidr = plan.cidr.to_string();
            let Some(subnet) = subnets
                .subnets()
                .iter()
                .find(|x| x.cidr_block() == Some(cidr.as_str()))
            else {
                continue;
            };
            let what = format!("subnet {} ({cidr}, {})", plan.name, plan.zone);
            self.client
                .delete_subnet()
                .subnet_id(subnet.subnet_id().unwrap_or_default())
                .send()
                .await
                .map_err(|e| AwsError::api(format!("delete {what}"), e))?;
            run.resource(what, ServerChange::Destroyed);
        }
        let gateways = self
            .client
            .describe_internet_gateways()
            .filters(filter("attachment.vpc-id", &vpc_id))
            .send()
            .await
            .map_err(|e| AwsError::api(format!("look up the internet gateway of {vpc_id}"), e))?;
        for igw in gateways.internet_gateways() {
            let id = igw.internet_gateway_id().unwrap_or_default();
            let what = format!("internet gateway {}", s.gateway_name());
            self.client
                .detach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(&vpc_id)
                .send()
                .await
                .map_err(|e| AwsError::api(format!("detach {what}"), e))?;
            self.client
                .delete_internet_gateway()
                .internet_gateway_id(id)
                .send()
                .await
                .map_err(|e| AwsError::api(format!("delete {what}"), e))?;
            run.resource(what, ServerChange::Destroyed);
        }
        let what = format!("vpc {} ({})", s.vpc_name, s.cidr);
        self.client
            .delete_vpc()
            .vpc_id(&vpc_id)
            .send()
            .await
            .map_err(|e| AwsError::api(format!("delete {what}"), e))?;
        run.resource(what, ServerChange::Destroyed);
        Ok(())
    }
}
