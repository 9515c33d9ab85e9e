//! build-infra's servers: per server a static public IP address
//! (`gip-<vm>`), a network interface (`<vm>-primary`, static private
//! address, the stage's security group) and the VM with its OS disk and,
//! on a hive, the mirrored data disk (`mirrored_<vm>`, LUN 0); halt
//! (deallocate) and removal. Servers are worked on concurrently.

use futures::future::try_join_all;
use hive_provider::ServerChange;
use serde_json::{Value, json};

use crate::arm::{COMPUTE_API, NETWORK_API};
use crate::error::AzureError;
use crate::network::{Azure, Run};
use crate::settings::{ImageRef, MANAGED_DISK_TYPE, VmPlan};

impl Azure {
    fn image_reference(&self, image: &ImageRef) -> Value {
        match image {
            ImageRef::Marketplace {
                publisher,
                offer,
                sku,
                version,
            } => json!({"publisher": publisher, "offer": offer, "sku": sku, "version": version}),
            ImageRef::Id(id) => json!({"id": id}),
            ImageRef::Named(name) => json!({"id": self.compute_id("images", name)}),
        }
    }

    /// The VM as `PUT virtualMachines` takes it
    /// (learn.microsoft.com/rest/api/compute/virtual-machines/create-or-update).
    pub(crate) fn vm_body(&self, plan: &VmPlan, public_key: &str) -> Value {
        let s = &self.settings;
        let mut os_disk = json!({
            "name": plan.os_disk_name(),
            "createOption": "FromImage",
            "managedDisk": {"storageAccountType": MANAGED_DISK_TYPE},
        });
        if let Some(size) = plan.os_disk_size {
            os_disk["diskSizeGB"] = json!(size);
        }
        let data_disks: Vec<Value> = plan
            .mirrored_disk_size
            .map(|size| {
                json!({
                    "lun": 0,
                    "name": plan.mirrored_disk_name(),
                    "createOption": "Empty",
                            "diskSizeGB": size,
                    "managedDisk": {"storageAccountType": MANAGED_DISK_TYPE},
                })
            })
            .into_iter()
            .collect();
        let mut body = json!({
            "location": s.location,
            "properties": {
                "hardwareProfile": {"vmSize": plan.size},
                "storageProfile": {
                    "imageReference": self.image_reference(&plan.image),
                    "osDisk": os_disk,
                    "dataDisks": data_disks,
                },
                "osProfile": {
                    "computerName": plan.name,
                    "adminUsername": s.admin,
                    "linuxConfiguration": {
                        "disablePasswordAuthentication": true,
                        "ssh": {"publicKeys": [{
                            "path": format!("/home/{}/.ssh/authorized_keys", s.admin),
                            "keyData": public_key.trim(),
                        }]},
                    },
                },
                "networkProfile": {"networkInterfaces": [{
                    "id": self.network_id("networkInterfaces", &plan.nic_name()),
                    "properties": {"primary": true},
                }]},
            },
        });
        if let Some(zone) = &plan.zone {
            body["zones"] = json!([zone]);
        }
        body
    }

    /// The power state of VM `plan` (`running`, `deallocated`, ...).
    async fn power_state(&self, plan: &VmPlan) -> Result<String, AzureError> {
        let path = format!(
            "{}/instanceView",
            self.compute_id("virtualMachines", &plan.name)
        );
        let view = self
            .arm
            .get(
                &path,
                COMPUTE_API,
                &format!("server {}: read the state of VM {}", plan.server, plan.name),
            )
            .await?
            .unwrap_or(Value::Null);
        Ok(view["statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["code"].as_str())
            .find_map(|c| c.strip_prefix("PowerState/"))
            .unwrap_or("unknown")
            .to_string())
    }

    /// The public address of server `plan`, once it has one.
    pub(crate) async fn public_address(&self, plan: &VmPlan) -> Result<Option<String>, AzureError> {
        let ip = self
            .arm
            .get(
                &self.network_id("publicIPAddresses", &plan.public_ip_name()),
                NETWORK_API,
                &format!(
                    "server {}: look up public ip {}",
                    plan.server,
                    plan.public_ip_name()
                ),
            )
            .await?;
        Ok(ip.and_then(|ip| ip["properties"]["ipAddress"].as_str().map(str::to_string)))
    }

    /// One server's address, NIC and VM (or their plan).
    async fn server(
        &self,
        plan: &VmPlan,
        check: bool,
        public_key: Option<&str>,
    ) -> Result<Run<'_>, AzureError> {
        let s = &self.settings;
        let mut run = Run::new(self, check);
        let ip_name = plan.public_ip_name();
        run.ensure(
            format!("public ip {ip_name} ({})", plan.server),
            &self.network_id("publicIPAddresses", &ip_name),
            NETWORK_API,
            || {
                json!({
                    "location": s.location,
                    "sku": {"name": "Standard"},
                    "properties": {"publicIPAllocationMethod": "Static"},
                })
            },
        )
        .await
        .map_err(|e| in_server(plan, e))?;
        let nic_name = plan.nic_name();
        run.ensure(
            format!("network interface {nic_name} ({})", plan.private_ip),
            &self.network_id("networkInterfaces", &nic_name),
            NETWORK_API,
            || {
                json!({
                    "location": s.location,
                    "properties": {
                        "networkSecurityGroup": {"id": self.nsg_id()},
                        "ipConfigurations": [{
                            "name": "eth0",
                            "properties": {
                                "subnet": {"id": self.subnet_id(&plan.subnet)},
                                "privateIPAddress": plan.private_ip.to_string(),
                                "privateIPAllocationMethod": "Static",
                                "publicIPAddress": {"id": self.network_id("publicIPAddresses", &ip_name)},
                                "primary": true,
                            },
                        }],
                    },
                })
            },
        )
        .await
        .map_err(|e| in_server(plan, e))?;
        let vm_path = self.compute_id("virtualMachines", &plan.name);
        let what = format!("server {}: VM {}", plan.server, plan.name);
        let change = if self
            .arm
            .get(&vm_path, COMPUTE_API, &format!("{what}: look it up"))
            .await?
            .is_some()
        {
            match self.power_state(plan).await?.as_str() {
                "deallocated" | "deallocating" | "stopped" | "stopping" => {
                    if !check {
                        self.arm
                            .post(
                                &format!("{vm_path}/start"),
                                COMPUTE_API,
                                &format!("{what}: start"),
                            )
                            .await?;
                    }
                    ServerChange::Started
                }
                _ => ServerChange::Unchanged,
            }
        } else {
            if !check {
                let key = public_key.ok_or_else(|| {
                    AzureError::Conflict(format!("{what}: the stage's public key is missing"))
                })?;
                self.arm
                    .put(
                        &vm_path,
                        COMPUTE_API,
                        &self.vm_body(plan, key),
                        &format!("{what}: create"),
                    )
                    .await?;
            }
            run.resource(plan.describe(), ServerChange::Created);
            ServerChange::Created
        };
        run.report.servers.push((plan.server.clone(), change));
        Ok(run)
    }

    /// Every server's resources (or their plan), concurrently, merged in
    /// stage order into `run`.
    pub(crate) async fn servers(
        &self,
        run: &mut Run<'_>,
        public_key: Option<&str>,
    ) -> Result<(), AzureError> {
        let runs = try_join_all(
            self.settings
                .vms
                .iter()
                .map(|plan| self.server(plan, run.check, public_key)),
        )
        .await?;
        for one in runs {
            run.report.servers.extend(one.report.servers);
            run.report.resources.extend(one.report.resources);
        }
        Ok(())
    }

    /// Deallocate the running VMs (`-H`).
    pub(crate) async fn halt(&self) -> Result<Vec<(String, ServerChange)>, AzureError> {
        let halts = self.settings.vms.iter().map(|plan| async move {
            let path = self.compute_id("virtualMachines", &plan.name);
            let what = format!("server {}: VM {}", plan.server, plan.name);
            if self
                .arm
                .get(&path, COMPUTE_API, &format!("{what}: look it up"))
                .await?
                .is_none()
            {
                return Ok(None);
            }
            if self.power_state(plan).await? == "deallocated" {
                return Ok(Some((plan.server.clone(), ServerChange::Unchanged)));
            }
            self.arm
                .post(
                    &format!("{path}/deallocate"),
                    COMPUTE_API,
                    &format!("{what}: deallocate"),
                )
                .await?;
            Ok::<_, AzureError>(Some((plan.server.clone(), ServerChange::Stopped)))
        });
        Ok(try_join_all(halts).await?.into_iter().flatten().collect())
    }

    /// Delete every server's VM, then its disks, NIC and public IP.
    pub(crate) async fn remove_servers(&self, run: &mut Run<'_>) -> Result<(), AzureError> {
        let removals = self.settings.vms.iter().map(|plan| async move {
            let mut one = Run::new(self, false);
            let what = format!("server {}: VM {}", plan.server, plan.name);
            if self
                .arm
                .delete(
                    &self.compute_id("virtualMachines", &plan.name),
                    COMPUTE_API,
                    &format!("{what}: delete"),
                )
                .await?
            {
                one.report
                    .servers
                    .push((plan.server.clone(), ServerChange::Destroyed));
            }
            let mut disks = vec![plan.os_disk_name()];
            if plan.mirrored_disk_size.is_some() {
                disks.push(plan.mirrored_disk_name());
            }
            for disk in disks {
                one.remove(
                    format!("disk {disk} ({})", plan.server),
                    &self.compute_id("disks", &disk),
                    COMPUTE_API,
                )
                .await
                .map_err(|e| in_server(plan, e))?;
            }
            one.remove(
                format!(
                    "network interface {} ({})",
                    plan.nic_name(),
                    plan.private_ip
                ),
                &self.network_id("networkInterfaces", &plan.nic_name()),
                NETWORK_API,
            )
            .await
            .map_err(|e| in_server(plan, e))?;
            one.remove(
                format!("public ip {} ({})", plan.public_ip_name(), plan.server),
                &self.network_id("publicIPAddresses", &plan.public_ip_name()),
                NETWORK_API,
            )
            .await
            .map_err(|e| in_server(plan, e))?;
            Ok::<_, AzureError>(one.report)
        });
        for report in try_join_all(removals).await? {
            run.report.servers.extend(report.servers);
            run.report.resources.extend(report.resources);
        }
        Ok(())
    }
}

/// `e`, naming server `plan` when it is Azure's refusal.
fn in_server(plan: &VmPlan, e: AzureError) -> AzureError {
    match e {
        AzureError::Api {
            what,
            code,
            message,
        } => AzureError::Api {
            what: format!("server {}: {what}", plan.server),
            code,
            message,
        },
        other => other,
    }
}
