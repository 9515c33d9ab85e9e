//! The servers: what the project must offer (zones, machine types, the
//! image), one static external address and one instance per server with
//! its disks, and stopping and removing them.

use std::collections::BTreeSet;
use std::future::Future;

use google_cloud_compute_v1::model::{
    AccessConfig, Address, AttachedDisk, AttachedDiskInitializeParams, Instance, Metadata,
    NetworkInterface, Operation, access_config, instance, metadata,
};
use hive_provider::{ServerChange, ServerRole};

use crate::compute::{Compute, found, last_segment};
use crate::error::GcpError;
use crate::network::Run;
use crate::settings::InstancePlan;

/// The call `$verb` (`get`, `start`, `stop`, `delete`) on the instance of
/// `$plan`, ready to send.
macro_rules! on_instance {
    ($gce:expr, $plan:expr, $verb:ident) => {
        $gce.instances
            .$verb()
            .set_project(&$gce.project)
            .set_zone(&$plan.zone)
            .set_instance(&$plan.name)
            .send()
    };
}

/// Where an image named by `image_name` is: `(project, Ok(family))` or
/// `(project, Err(image))`.
fn image_reference<'a>(image: &'a str, own: &'a str) -> (&'a str, Result<&'a str, &'a str>) {
    let path = image
        .find("projects/")
        .map(|i| &image[i..])
        .unwrap_or(image);
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["projects", p, "global", "images", "family", f] => (p, Ok(f)),
        ["projects", p, "global", "images", i] => (p, Err(i)),
        ["global", "images", "family", f] | ["family", f] => (own, Ok(f)),
        ["global", "images", i] => (own, Err(i)),
        _ => (own, Err(image)),
    }
}

impl Compute {
    /// Check that the project has every zone, each zone offers its
    /// servers' machine types and the image exists, before anything is
    /// created.
    pub(crate) async fn preflight(&self) -> Result<(), GcpError> {
        let s = &self.settings;
        let invalid = |key: &str, message: String| {
            GcpError::from(hive_provider::ProviderError::invalid_stage(
                &s.stage, key, message,
            ))
        };
        let zones: BTreeSet<&str> = s.instances.iter().map(|i| i.zone.as_str()).collect();
        for zone in zones {
            let got = self
                .zones
                .get()
                .set_project(&self.project)
                .set_zone(zone)
                .send()
                .await;
            if found(&format!("zone {zone}"), got)?.is_none() {
                let server = s.instances.iter().find(|i| i.zone == zone);
                return Err(invalid(
                    "subnets",
                    format!(
                        "server {}: project {} has no zone {zone} in region {}",
                        server.map(|i| i.server.as_str()).unwrap_or_default(),
                        self.project,
                        s.region
                    ),
                ));
            }
        }
        let mut checked = BTreeSet::new();
        for i in &s.instances {
            if !checked.insert((i.zone.clone(), i.machine_type.clone())) {
                continue;
            }
            let got = self
                .machine_types
                .get()
                .set_project(&self.project)
                .set_zone(&i.zone)
                .set_machine_type(&i.machine_type)
                .send()
                .await;
            if found(&format!("machine type {}", i.machine_type), got)?.is_none() {
                let key = if i.role == ServerRole::Repository {
                    "repository_instance_type"
                } else {
                    "instance_type"
                };
                return Err(invalid(
                    key,
                    format!(
                        "server {}: zone {} has no machine type {}",
                        i.server, i.zone, i.machine_type
                    ),
                ));
            }
        }
        let images: BTreeSet<&str> = s.instances.iter().map(|i| i.image.as_str()).collect();
        for image in images {
            let what = format!("image {image} (image_name)");
            let got = match image_reference(image, &self.project) {
                (project, Ok(family)) => {
                    self.images
                        .get_from_family()
                        .set_project(project)
                        .set_family(family)
                        .send()
                        .await
                }
                (project, Err(name)) => {
                    self.images
                        .get()
                        .set_project(project)
                        .set_image(name)
                        .send()
                        .await
                }
            };
            if found(&what, got)?.is_none() {
                return Err(invalid(
                    "image_name",
                    format!("image {image} does not exist"),
                ));
            }
        }
        Ok(())
    }

    /// The static external address of `plan`, if it exists.
    pub(crate) async fn find_address(
        &self,
        plan: &InstancePlan,
    ) -> Result<Option<Address>, GcpError> {
        let got = self
            .addresses
            .get()
            .set_project(&self.project)
            .set_region(&self.settings.region)
            .set_address(&plan.address)
            .send()
            .await;
        found(
            &format!("server {}: address {}", plan.server, plan.address),
            got,
        )
    }

    /// The instance of `plan`, if it exists.
    pub(crate) async fn find_instance(
        &self,
        plan: &InstancePlan,
    ) -> Result<Option<Instance>, GcpError> {
        let got = on_instance!(self, plan, get).await;
        found(
            &format!("server {}: instance {}", plan.server, plan.name),
            got,
        )
    }

    /// Run the instance operation `what` of `plan` that `call` starts, and
    /// wait until it is done.
    async fn zone_operation(
        &self,
        plan: &InstancePlan,
        what: &str,
        call: impl Future<Output = google_cloud_compute_v1::Result<Operation>>,
    ) -> Result<(), GcpError> {
        let op = call.await.map_err(|e| GcpError::api(what, &e))?;
        self.wait(what, op, |op| {
            self.instances
                .get_operation()
                .set_project(&self.project)
                .set_zone(&plan.zone)
                .set_operation(op)
                .send()
        })
        .await
    }

    /// Run the address operation `what` that `call` starts, and wait until
    /// it is done.
    async fn region_operation(
        &self,
        what: &str,
        call: impl Future<Output = google_cloud_compute_v1::Result<Operation>>,
    ) -> Result<(), GcpError> {
        let op = call.await.map_err(|e| GcpError::api(what, &e))?;
        self.wait(what, op, |op| {
            self.addresses
                .get_operation()
                .set_project(&self.project)
                .set_region(&self.settings.region)
                .set_operation(op)
                .send()
        })
        .await
    }

    /// Stop the stage's running instances.
    pub(crate) async fn halt(&self) -> Result<Vec<(String, ServerChange)>, GcpError> {
        let mut out = Vec::new();
        for plan in &self.settings.instances {
            let Some(found) = self.find_instance(plan).await? else {
                continue;
            };
            if matches!(
                found.status,
                Some(instance::Status::Terminated | instance::Status::Stopped)
            ) {
                out.push((plan.server.clone(), ServerChange::Unchanged));
                continue;
            }
            let what = format!("server {}: stop instance {}", plan.server, plan.name);
            self.zone_operation(plan, &what, on_instance!(self, plan, stop))
                .await?;
            out.push((plan.server.clone(), ServerChange::Stopped));
        }
        Ok(out)
    }

    /// Delete the stage's instances (their disks go with them), then
    /// their static addresses.
    pub(crate) async fn remove_servers(&self, run: &mut Run<'_>) -> Result<(), GcpError> {
        for plan in &self.settings.instances {
            if self.find_instance(plan).await?.is_none() {
                continue;
            }
            let what = format!("server {}: delete instance {}", plan.server, plan.name);
            self.zone_operation(plan, &what, on_instance!(self, plan, delete))
                .await?;
            run.report
                .servers
                .push((plan.server.clone(), ServerChange::Destroyed));
        }
        for plan in &self.settings.instances {
            let Some(address) = self.find_address(plan).await? else {
                continue;
            };
            let ip = address.address.unwrap_or_default();
            let what = format!(
                "server {}: delete address {} ({ip})",
                plan.server, plan.address
            );
            let delete = self
                .addresses
                .delete()
                .set_project(&self.project)
                .set_region(&self.settings.region)
                .set_address(&plan.address)
                .send();
            self.region_operation(&what, delete).await?;
            run.resource(
                format!("address {} ({ip})", plan.address),
                ServerChange::Destroyed,
            );
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Every server's address and instance (created, or started again).
    pub(crate) async fn servers(
        &mut self,
        network: bool,
        public_key: Option<&str>,
    ) -> Result<(), GcpError> {
        for plan in self.gce.settings.instances.clone() {
            let ip = self.address(&plan).await?;
            let change = self
                .instance(&plan, network, ip.as_deref(), public_key)
                .await?;
            self.report.servers.push((plan.server.clone(), change));
        }
        Ok(())
    }

    /// The static external address of a server; its IP once it exists.
    async fn address(&mut self, plan: &InstancePlan) -> Result<Option<String>, GcpError> {
        let gce = self.gce;
        let what = format!("address {} ({})", plan.address, gce.settings.region);
        if let Some(a) = gce.find_address(plan).await? {
            self.resource(what, ServerChange::Unchanged);
            return Ok(a.address);
        }
        self.resource(what.clone(), ServerChange::Created);
        if self.check {
            return Ok(None);
        }
        let action = format!("server {}: create {what}", plan.server);
        let insert = gce
            .addresses
            .insert()
            .set_project(&gce.project)
            .set_region(&gce.settings.region)
            .set_body(Address::new().set_name(&plan.address))
            .send();
        gce.region_operation(&action, insert).await?;
        let created = gce.find_address(plan).await?;
        Ok(created.and_then(|a| a.address))
    }

    async fn instance(
        &mut self,
        plan: &InstancePlan,
        network: bool,
        ip: Option<&str>,
        public_key: Option<&str>,
    ) -> Result<ServerChange, GcpError> {
        let gce = self.gce;
        if network && let Some(found) = gce.find_instance(plan).await? {
            return self.existing_instance(plan, &found).await;
        }
        if self.check {
            return Ok(ServerChange::Created);
        }
        let key = public_key.ok_or_else(|| {
            GcpError::Conflict(format!(
                "server {}: the stage's public key is missing",
                plan.server
            ))
        })?;
        let ip = ip.ok_or_else(|| {
            GcpError::Conflict(format!(
                "server {}: address {} has no IP",
                plan.server, plan.address
            ))
        })?;
        let what = format!("server {}: create instance {}", plan.server, plan.name);
        let insert = gce
            .instances
            .insert()
            .set_project(&gce.project)
            .set_zone(&plan.zone)
            .set_body(instance_body(gce, plan, ip, key))
            .send();
        gce.zone_operation(plan, &what, insert).await?;
        Ok(ServerChange::Created)
    }

    /// A server whose instance exists: started again when stopped; a
    /// machine type that differs is reported, not changed.
    async fn existing_instance(
        &mut self,
        plan: &InstancePlan,
        found: &Instance,
    ) -> Result<ServerChange, GcpError> {
        let gce = self.gce;
        let kind = last_segment(found.machine_type.as_deref().unwrap_or_default());
        if kind != plan.machine_type {
            self.report.warnings.push(format!(
                "server {}: instance {} is a {kind}, the stage asks for {}; hive does not resize it (delete it with build-infra -D to build it anew)",
                plan.server, plan.name, plan.machine_type
            ));
        }
        match found.status {
            Some(instance::Status::Terminated | instance::Status::Stopped) => {
                if self.check {
                    return Ok(ServerChange::Started);
                }
                let what = format!("server {}: start instance {}", plan.server, plan.name);
                gce.zone_operation(plan, &what, on_instance!(gce, plan, start))
                    .await?;
                Ok(ServerChange::Started)
            }
            _ => Ok(ServerChange::Unchanged),
        }
    }
}

/// The instance of `plan` as hive-builder's role creates it: host name
/// and `ssh-keys` metadata, boot disk from the image and the mirrored
/// disk (both deleted with the instance), the private address in its
/// subnetwork and the static address as its one-to-one NAT.
fn instance_body(gce: &Compute, plan: &InstancePlan, ip: &str, key: &str) -> Instance {
    let disks = plan.disks.iter().map(|d| {
        let mut params = AttachedDiskInitializeParams::new()
            .set_disk_name(&d.name)
            .set_disk_size_gb(d.size_gb);
        if d.boot {
            params = params.set_source_image(&plan.image);
        }
        AttachedDisk::new()
            .set_auto_delete(true)
            .set_boot(d.boot)
            .set_initialize_params(params)
    });
    let item = |k: &str, v: String| metadata::Items::new().set_key(k).set_value(v);
    let metadata = Metadata::new().set_items([
        item("hostname", plan.server.clone()),
        item("ssh-keys", format!("{}:{}", gce.settings.admin, key.trim())),
    ]);
    let nic = NetworkInterface::new()
        .set_subnetwork(gce.regional("subnetworks", &plan.subnet))
        .set_network_ip(plan.private_ip.to_string())
        .set_access_configs([AccessConfig::new()
            .set_name(format!("ac_gip_{}", plan.name))
            .set_nat_ip(ip)
            .set_type(access_config::Type::OneToOneNat)]);
    Instance::new()
        .set_name(&plan.name)
        .set_hostname(&plan.server)
        .set_machine_type(format!(
            "zones/{}/machineTypes/{}",
            plan.zone, plan.machine_type
        ))
        .set_metadata(metadata)
        .set_disks(disks)
        .set_network_interfaces([nic])
}

#[cfg(test)]
mod tests {
    use super::image_reference;

    #[test]
    fn image_names_as_compute_engine_takes_them() {
        let own = "mine";
        assert_eq!(
            image_reference(
                "projects/almalinux-cloud/global/images/family/almalinux-9",
                own
            ),
            ("almalinux-cloud", Ok("almalinux-9"))
        );
        assert_eq!(
            image_reference(
                "https://www.googleapis.com/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20240110",
                own
            ),
            ("debian-cloud", Err("debian-12-bookworm-v20240110"))
        );
        assert_eq!(
            image_reference("global/images/family/base", own),
            ("mine", Ok("base"))
        );
        assert_eq!(image_reference("base-v1", own), ("mine", Err("base-v1")));
    }
}
