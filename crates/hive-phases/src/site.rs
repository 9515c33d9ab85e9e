//! The site of one stage, as each phase's crate needs it: the inventory's
//! model mapped into the plain input types of hive-provider and hive-drbd.
//!
//! The library crates of the phases do not depend on hive-inventory; this
//! module is the one place where a loaded [`Project`] becomes their inputs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hive_inventory::template::{Site, SiteBuilder, Templar, TemplateError};
use hive_inventory::{Project, ServerRole, Stage, VolumeKind};

use crate::Error;

/// Stage attributes every provider shares; the rest are the provider's own
/// (`bridge`, `dev`, `region`, ...) and are given to it to check.
const COMMON_STAGE_KEYS: &[&str] = &[
    "provider",
    "separate_repository",
    "shared_repository",
    "cidr",
    "number_of_hosts",
    "subnets",
    "custom_hostname",
    "memory_size",
    "cpus",
    "disk_size",
    "mirrored_disk_size",
    "repository_memory_size",
    "repository_cpus",
    "repository_disk_size",
    "root_password",
    "internal_cidr",
    "internal_cidr_v6",
    "nameservers",
];

/// One stage of a loaded project.
pub struct StageSite<'p> {
    project: &'p Project,
    stage: &'p Stage,
    site: Arc<Site>,
    templar: Templar,
}

impl std::fmt::Debug for StageSite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageSite")
            .field("site", &self.project.name())
            .field("stage", &self.stage.name)
            .finish_non_exhaustive()
    }
}

impl<'p> StageSite<'p> {
    /// The project's current stage (the `-s` option).
    pub fn new(project: &'p Project) -> Result<Self, Error> {
        let name = project.stage();
        let stage = project.stage_def(name).ok_or_else(|| Error::Site {
            message: format!(
                "stage {name} is not defined in {}; define it under `stages:` of the hive_inventory file",
                project.inventory_path().display()
            ),
        })?;
        Ok(StageSite {
            project,
            stage,
            site: SiteBuilder::new(project).build(),
            templar: Templar::new(project.root_dir()),
        })
    }

    /// The project.
    pub fn project(&self) -> &'p Project {
        self.project
    }

    /// The stage definition.
    pub fn stage(&self) -> &'p Stage {
        self.stage
    }

    /// The stage's context directory (`.hive/<stage>`).
    pub fn context_dir(&self) -> PathBuf {
        self.project.context_dir().to_path_buf()
    }

    /// Render `template` for `host` with the site's variables, as Ansible
    /// would on that host.
    pub fn render_for(&self, host: &str, template: &str) -> Result<serde_yaml::Value, Error> {
        let wrap = |e: TemplateError| Error::Template {
            host: host.to_string(),
            source: Box::new(e),
        };
        let vars = self.site.vars_for(host).ok_or_else(|| {
            wrap(TemplateError::UnknownHost {
                host: host.to_string(),
            })
        })?;
        self.templar.render_str(template, &vars).map_err(wrap)
    }

    fn attr_u64(&self, key: &str) -> Option<u64> {
        self.stage.attribute(key).and_then(|v| v.as_u64())
    }

    /// The stage as hive-provider sees it.
    pub fn provider_stage(&self) -> Result<hive_provider::StageSpec, Error> {
        let stage = self.stage;
        let cidr = match stage.cidr {
            ipnet::IpNet::V4(net) => net,
            ipnet::IpNet::V6(_) => {
                return Err(Error::Site {
                    message: format!(
                        "{}: stage {}: cidr must be an IPv4 network for the servers",
                        stage.file.display(),
                        stage.name
                    ),
                });
            }
        };
        let mut spec = hive_provider::StageSpec::new(
            self.project.name(),
            stage.name.as_str(),
            stage.provider.as_str(),
            cidr,
            self.context_dir(),
        );
        let servers: Vec<_> = self.project.servers_of(stage.name).collect();
        for server in &servers {
            let IpAddr::V4(ip) = server.private_ip else {
                return Err(Error::Site {
                    message: format!("server {} has an IPv6 private address", server.name),
                });
            };
            let repository = server.role.is_repository();
            let role = if repository {
                hive_provider::ServerRole::Repository
            } else {
                hive_provider::ServerRole::Hive
            };
            let mut s = hive_provider::ServerSpec::new(&server.name, role, ip);
            let sized = |own: &str, common: &str| {
                if server.role == ServerRole::Repository {
                    self.attr_u64(own).or_else(|| self.attr_u64(common))
                } else {
                    self.attr_u64(common)
                }
            };
            s.memory_size = sized("repository_memory_size", "memory_size");
            s.disk_size = sized("repository_disk_size", "disk_size");
            s.cpus = sized("repository_cpus", "cpus").and_then(|c| u32::try_from(c).ok());
            if server.role.is_hive() {
                s.mirrored_disk_size = self.attr_u64("mirrored_disk_size");
            }
            spec.servers.push(s);
        }
        if let Some(first) = servers.first() {
            let admin = self.render_for(&first.name, "{{ hive_safe_admin }}")?;
            if let Some(admin) = admin.as_str() {
                spec.admin = hive_provider::AdminAccount::new(admin);
            }
            let explicit =
                self.render_for(&first.name, "{{ hive_private_key_path | default('') }}")?;
            let legacy = self.context_dir().join("id_rsa");
            match explicit.as_str() {
                Some(p) if !p.is_empty() => spec.private_key = Some(PathBuf::from(p)),
                _ if legacy.exists() => spec.private_key = Some(legacy),
                _ => {}
            }
        }
        if let Some(pw) = stage.attribute("root_password").and_then(|v| v.as_str()) {
            if !pw.is_empty() {
                spec.root_password = Some(hive_provider::Secret::new(pw));
            }
        }
        for (key, value) in &stage.attributes {
            if COMMON_STAGE_KEYS.contains(&key.as_str()) {
                continue;
            }
            spec.attributes
                .insert(key.clone(), hive_inventory::yaml_to_json(value));
        }
        Ok(spec)
    }

    /// The hives of the stage as hive-drbd sees them.
    pub fn drbd_stage(&self) -> Result<hive_drbd::Stage, Error> {
        let mut hives = Vec::new();
        for server in self.project.servers_of(self.stage.name) {
            if !server.role.is_hive() {
                continue;
            }
            let mut hive = hive_drbd::StageHive::new(&server.name, server.private_ip);
            let no_device = self
                .render_for(
                    &server.name,
                    "{{ hive_no_mirrored_device | default(false) | bool }}",
                )?
                .as_bool()
                .unwrap_or(false);
            if no_device {
                hive = hive.without_mirrored_device();
            }
            hives.push(hive);
        }
        hive_drbd::Stage::new(hives).map_err(|e| Error::Drbd(Box::new(e)))
    }

    /// The DRBD volumes available on the stage.
    pub fn drbd_volumes(&self) -> Result<Vec<hive_drbd::DrbdVolume>, Error> {
        let stage = self.drbd_stage()?;
        let mut out = Vec::new();
        for volume in self.project.volumes() {
            if !volume.available_on.contains(&self.stage.name) {
                continue;
            }
            let VolumeKind::Drbd {
                device_id,
                fstype,
                size,
                diskless,
                ..
            } = &volume.kind
            else {
                continue;
            };
            let fstype = match fstype.as_deref().unwrap_or("xfs") {
                "ext4" => hive_drbd::FsType::Ext4,
                _ => hive_drbd::FsType::Xfs,
            };
            let size = match size {
                Some(serde_yaml::Value::String(s)) => s.clone(),
                Some(serde_yaml::Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(Error::Site {
                        message: format!(
                            "volume {} of service {}: drbd.size must be given, e.g. `size: 500M`",
                            volume.name, volume.service
                        ),
                    });
                }
            };
            let v = hive_drbd::DrbdVolume::new(&volume.name, u16::from(*device_id), size, fstype)
                .with_diskless(diskless.iter().cloned());
            v.validate(&stage).map_err(|e| Error::Drbd(Box::new(e)))?;
            out.push(v);
        }
        Ok(out)
    }
}
