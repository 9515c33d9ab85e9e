//! build-infra's network: the resource group, the virtual network, the
//! network security group and the subnets, each read first and created
//! when missing. In check mode nothing is created and what a run would
//! create is reported.

use hive_provider::{ProviderReport, ServerChange};
use serde_json::{Value, json};

use crate::arm::{Arm, NETWORK_API, RESOURCES_API};
use crate::error::AzureError;
use crate::settings::{AzureSettings, SecurityRule};

/// The stage's subscription and what it asks for.
///
/// Public only as the [`Cloud::Client`](hive_provider::Cloud::Client) of
/// [`AzureProvider`](crate::AzureProvider); not reachable from outside.
pub struct Azure {
    pub(crate) arm: Arm,
    pub(crate) settings: AzureSettings,
}

/// One build (or its plan), halt or removal: what was done so far.
pub(crate) struct Run<'a> {
    pub(crate) azure: &'a Azure,
    pub(crate) check: bool,
    pub(crate) report: ProviderReport,
}

impl Azure {
    /// `/subscriptions/{s}/resourceGroups/{rg}`.
    pub(crate) fn group_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.arm.subscription(),
            self.settings.resource_group
        )
    }

    /// The id of a `Microsoft.Network` resource of the group.
    pub(crate) fn network_id(&self, kind: &str, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.Network/{kind}/{name}",
            self.group_path()
        )
    }

    /// The id of a `Microsoft.Compute` resource of the group.
    pub(crate) fn compute_id(&self, kind: &str, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.Compute/{kind}/{name}",
            self.group_path()
        )
    }

    pub(crate) fn vnet_id(&self) -> String {
        self.network_id("virtualNetworks", &self.settings.vnet_name)
    }

    pub(crate) fn subnet_id(&self, name: &str) -> String {
        format!("{}/subnets/{name}", self.vnet_id())
    }

    pub(crate) fn nsg_id(&self) -> String {
        self.network_id("networkSecurityGroups", &self.settings.nsg_name)
    }
}

/// The security group as `PUT networkSecurityGroups` takes it
/// (learn.microsoft.com/rest/api/virtualnetwork/network-security-groups/create-or-update).
pub(crate) fn rules_body(s: &AzureSettings) -> Value {
    let rules: Vec<Value> = s
        .rules
        .iter()
        .map(|r| {
            let mut properties = json!({
                "priority": r.priority,
                "protocol": r.protocol,
                "access": r.access,
                "direction": "Inbound",
                "sourceAddressPrefix": r.source,
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
            });
            if r.ports.len() == 1 {
                properties["destinationPortRange"] = json!(r.ports[0]);
            } else {
                properties["destinationPortRanges"] = json!(r.ports);
            }
            json!({"name": r.name, "properties": properties})
        })
        .collect();
    json!({
        "location": s.location,
        "properties": {"securityRules": rules},
    })
}

/// The inbound rules of a security group as Azure returns it, in the
/// shape of [`SecurityRule`], sorted by priority.
pub(crate) fn existing_rules(group: &Value) -> Vec<SecurityRule> {
    let mut out: Vec<SecurityRule> = group["properties"]["securityRules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["properties"]["direction"] == "Inbound")
        .map(|r| {
            let p = &r["properties"];
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            let mut ports: Vec<String> = match p["destinationPortRange"].as_str() {
                Some(one) if !one.is_empty() => vec![one.to_string()],
                _ => p["destinationPortRanges"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
            };
            ports.sort_by_key(|p| (p.parse::<u32>().unwrap_or(u32::MAX), p.clone()));
            SecurityRule {
                name: r["name"].as_str().unwrap_or_default().to_string(),
                priority: p["priority"].as_u64().unwrap_or_default() as u32,
                protocol: text("protocol"),
                source: text("sourceAddressPrefix"),
                ports,
                access: text("access"),
            }
        })
        .collect();
    out.sort_by_key(|r| r.priority);
    out
}

impl<'a> Run<'a> {
    pub(crate) fn new(azure: &'a Azure, check: bool) -> Self {
        Run {
            azure,
            check,
            report: ProviderReport::default(),
        }
    }

    pub(crate) fn resource(&mut self, what: impl Into<String>, change: ServerChange) {
        self.report.resources.push((what.into(), change));
    }

    /// Create the resource at `path` unless it exists: whether it existed
    /// (its current state when it did).
    pub(crate) async fn ensure(
        &mut self,
        what: String,
        path: &str,
        api: &str,
        body: impl FnOnce() -> Value,
    ) -> Result<Option<Value>, AzureError> {
        let arm = &self.azure.arm;
        if let Some(found) = arm.get(path, api, &format!("look up {what}")).await? {
            self.resource(what, ServerChange::Unchanged);
            return Ok(Some(found));
        }
        if !self.check {
            arm.put(path, api, &body(), &format!("create {what}"))
                .await?;
        }
        self.resource(what, ServerChange::Created);
        Ok(None)
    }

    /// The resource group, virtual network, security group and subnets.
    pub(crate) async fn network(&mut self) -> Result<(), AzureError> {
        let azure = self.azure;
        let s = &azure.settings;
        let group = format!("resource group {} ({})", s.resource_group, s.location);
        if s.prepared_resource_group {
            azure
                .arm
                .get(&azure.group_path(), RESOURCES_API, &format!("look up {group}"))
                .await?
                .ok_or_else(|| {
                    AzureError::Conflict(format!(
                        "stage {}: {group} does not exist, and prepared_resource_group says it is prepared; create it or remove prepared_resource_group",
                        s.stage
                    ))
                })?;
        } else {
            self.ensure(
                group,
                &azure.group_path(),
                RESOURCES_API,
                || json!({"location": s.location}),
            )
            .await?;
        }
        let what = format!("virtual network {} ({})", s.vnet_name, s.cidr);
        let found = self
            .ensure(what.clone(), &azure.vnet_id(), NETWORK_API, || {
                json!({
                    "location": s.location,
                    "properties": {"addressSpace": {"addressPrefixes": [s.cidr]}},
                })
            })
            .await?;
        if let Some(vnet) = found {
            let prefixes = &vnet["properties"]["addressSpace"]["addressPrefixes"];
            if !prefixes
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x == s.cidr.as_str()))
            {
                return Err(AzureError::Conflict(format!(
                    "{what}: the existing network has address space {prefixes}; remove it or set the stage's cidr to it"
                )));
            }
        }
        self.security_group().await?;
        for subnet in &s.subnets {
            let what = format!("subnet {} ({})", subnet.name, subnet.cidr);
            let found = self
                .ensure(
                    what.clone(),
                    &azure.subnet_id(&subnet.name),
                    NETWORK_API,
                    || {
                        json!({"properties": {
                            "addressPrefix": subnet.cidr,
                            "serviceEndpoints": [
                                {"service": "Microsoft.Storage", "locations": [s.location]}
                            ],
                        }})
                    },
                )
                .await?;
            let prefix = found.as_ref().map(|f| &f["properties"]["addressPrefix"]);
            if let Some(prefix) = prefix.filter(|p| *p != subnet.cidr.as_str()) {
                return Err(AzureError::Conflict(format!(
                    "{what}: the existing subnet has address prefix {prefix}; remove it or change the stage's subnets"
                )));
            }
        }
        Ok(())
    }

    /// The network security group with the stage's inbound rules; rules
    /// that differ are rewritten.
    async fn security_group(&mut self) -> Result<(), AzureError> {
        let azure = self.azure;
        let s = &azure.settings;
        let what = format!("network security group {}", s.nsg_name);
        let path = azure.nsg_id();
        let Some(found) = self
            .ensure(what.clone(), &path, NETWORK_API, || rules_body(s))
            .await?
        else {
            for rule in &s.rules {
                self.resource(format!("security rule {rule}"), ServerChange::Created);
            }
            return Ok(());
        };
        let existing = existing_rules(&found);
        if existing == s.rules {
            return Ok(());
        }
        for rule in s.rules.iter().filter(|r| !existing.contains(r)) {
            self.resource(format!("security rule {rule}"), ServerChange::Updated);
        }
        for rule in existing.iter().filter(|r| !s.rules.contains(r)) {
            if !s.rules.iter().any(|w| w.name == rule.name) {
                self.resource(format!("security rule {rule}"), ServerChange::Destroyed);
            }
        }
        if !self.check {
            azure
                .arm
                .put(
                    &path,
                    NETWORK_API,
                    &rules_body(s),
                    &format!("update {what}"),
                )
                .await?;
        }
        Ok(())
    }

    /// Delete `path` and report it when it existed.
    pub(crate) async fn remove(
        &mut self,
        what: String,
        path: &str,
        api: &str,
    ) -> Result<(), AzureError> {
        if self
            .azure
            .arm
            .delete(path, api, &format!("delete {what}"))
            .await?
        {
            self.resource(what, ServerChange::Destroyed);
        }
        Ok(())
    }

    /// Remove the security group, the subnets, the virtual network and
    /// the resource group (unless it is prepared), in that order.
    pub(crate) async fn remove_network(&mut self) -> Result<(), AzureError> {
        let azure = self.azure;
        let s = &azure.settings;
        self.remove(
            format!("network security group {}", s.nsg_name),
            &azure.nsg_id(),
            NETWORK_API,
        )
        .await?;
        for subnet in &s.subnets {
            self.remove(
                format!("subnet {} ({})", subnet.name, subnet.cidr),
                &azure.subnet_id(&subnet.name),
                NETWORK_API,
            )
            .await?;
        }
        self.remove(
            format!("virtual network {} ({})", s.vnet_name, s.cidr),
            &azure.vnet_id(),
            NETWORK_API,
        )
        .await?;
        if !s.prepared_resource_group {
            self.remove(
                format!("resource group {} ({})", s.resource_group, s.location),
                &azure.group_path(),
                RESOURCES_API,
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_back_as_written_so_a_second_run_changes_nothing() {
        let mut stage = crate::settings::tests::stage();
        stage.variables.insert(
            "hive_published_ports_tcp".into(),
            serde_json::json!([443, 80]),
        );
        stage
            .variables
            .insert("hive_published_ports_udp".into(), serde_json::json!([53]));
        let s = AzureSettings::from_stage(&stage).unwrap();
        let mut written = rules_body(&s);
        assert_eq!(existing_rules(&written), s.rules);
        // Azure answers with both port fields, one of them empty, and the
        // rules in its own order.
        let rules = written["properties"]["securityRules"]
            .as_array_mut()
            .unwrap();
        rules.reverse();
        for r in rules.iter_mut() {
            let p = r["properties"].as_object_mut().unwrap();
            p.entry("destinationPortRanges").or_insert(json!([]));
            p.entry("destinationPortRange").or_insert(json!(""));
        }
        assert_eq!(existing_rules(&written), s.rules);
        let tcp = &s.rules[1];
        assert_eq!(tcp.ports, ["22", "80", "443"]);
        assert_eq!(s.rules[2].ports, ["53"]);
    }
}
