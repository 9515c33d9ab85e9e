//! The site of one stage, as each phase's crate needs it: the inventory's
//! model mapped into the plain input types of hive-provider and hive-drbd.
//!
//! The library crates of the phases do not depend on hive-inventory; this
//! module is the one place where a loaded [`Project`] becomes their inputs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hive_inventory::template::{Site, SiteBuilder, Templar, TemplateError, Vars};
use hive_inventory::{Project, ServerRole, Stage, VolumeKind};

use crate::Error;

/// A zone or similar scalar as text (`ap-northeast-1a`, or azure's `1`).
fn scalar_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

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
        let vars = self.host_vars(host)?;
        self.templar
            .render_str(template, &vars)
            .map_err(template_error(host))
    }

    /// The variables of inventory host `host`.
    fn host_vars(&self, host: &str) -> Result<Vars, Error> {
        self.site.vars_for(host).ok_or_else(|| {
            template_error(host)(TemplateError::UnknownHost {
                host: host.to_string(),
            })
        })
    }

    /// `raw`, a variable of inventory host `host`, rendered with its
    /// variables `vars`; `None` when it renders to `omit`.
    fn render_var(
        &self,
        host: &str,
        raw: &serde_yaml::Value,
        vars: &Vars,
    ) -> Result<Option<serde_json::Value>, Error> {
        let value = self
            .templar
            .render_value(raw, vars)
            .map_err(template_error(host))?;
        if value.as_str() == Some(self.templar.omit_token()) {
            return Ok(None);
        }
        Ok(Some(hive_inventory::yaml_to_json(&value)))
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
            s.subnet = Some(server.subnet.clone());
            s.zone = server.available_zone.as_ref().and_then(scalar_text);
            spec.servers.push(s);
        }
        for subnet in &stage.subnets {
            if let ipnet::IpNet::V4(cidr) = subnet.cidr {
                spec.subnets.push(hive_provider::SubnetSpec {
                    name: subnet.name.clone(),
                    cidr,
                    zone: subnet.available_zone.as_ref().and_then(scalar_text),
                });
            }
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
            let port = self.render_for(&first.name, "{{ hive_safe_sshd_port }}")?;
            let port = match &port {
                serde_yaml::Value::Number(n) => n.as_u64(),
                serde_yaml::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            let timezone = self.render_for(&first.name, "{{ hive_timezone | default('') }}")?;
            spec.timezone = timezone
                .as_str()
                .filter(|tz| !tz.is_empty())
                .map(str::to_string);
            spec.sshd_port = port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .ok_or_else(|| Error::Site {
                    message: format!(
                        "stage {}: hive_sshd_port must be a port number 1-65535",
                        stage.name
                    ),
                })?;
        }
        if let Some(pw) = stage.attribute("root_password").and_then(|v| v.as_str()) {
            if !pw.is_empty() {
                spec.root_password = Some(hive_provider::Secret::new(pw));
            }
        }
        for (key, value) in stage.provider_settings() {
            spec.attributes
                .insert(key.clone(), hive_inventory::yaml_to_json(value));
        }
        if let (Ok(provider), Some(first)) = (hive_provider::provider_for(&spec), servers.first()) {
            for name in provider.variables() {
                let defined =
                    self.render_for(&first.name, &format!("{{{{ {name} is defined }}}}"))?;
                if defined.as_bool() == Some(true) {
                    let value = self.render_for(&first.name, &format!("{{{{ {name} }}}}"))?;
                    spec.variables
                        .insert(name.to_string(), hive_inventory::yaml_to_json(&value));
                }
            }
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

impl StageSite<'_> {
    /// The `hive_<key>` variables of inventory host `host` for `keys`,
    /// rendered with the host's variables, as a JSON object keyed by `key`.
    fn rendered_params(
        &self,
        host: &str,
        keys: &[&str],
    ) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        let vars = self.host_vars(host)?;
        let mut out = serde_json::Map::new();
        for key in keys {
            let Some(raw) = vars.get(&format!("hive_{key}")) else {
                continue;
            };
            if let Some(value) = self.render_var(host, raw, &vars)? {
                out.insert((*key).to_string(), value);
            }
        }
        Ok(out)
    }

    /// The services of the stage, rendered, as hive-swarm deploys them.
    pub fn service_definitions(
        &self,
    ) -> Result<indexmap::IndexMap<String, hive_swarm::ServiceDefinition>, Error> {
        let keys: Vec<&str> = hive_inventory::SERVICE_PARAMETERS
            .iter()
            .map(|p| p.name)
            .collect();
        let mut out = indexmap::IndexMap::new();
        for service in self.project.services() {
            if !service.available_on.contains(&self.stage.name) {
                continue;
            }
            let mut map = self.rendered_params(&service.name, &keys)?;
            if !map.contains_key("image") {
                let image_host = format!("image_{}", service.name);
                let build = self.rendered_params(&image_host, hive_inventory::IMAGE_PARAMS)?;
                if !build.is_empty() {
                    map.insert("image".into(), serde_json::Value::Object(build));
                }
            }
            let definition: hive_swarm::ServiceDefinition =
                serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
                    Error::Site {
                        message: format!(
                            "{}: service {}: {e}",
                            service.file.display(),
                            service.name
                        ),
                    }
                })?;
            out.insert(service.name.clone(), definition);
        }
        Ok(out)
    }

    /// The registry address of the stage (`hive_registry`, e.g.
    /// `p-hive3.pdns:5000`).
    pub fn registry(&self) -> Result<String, Error> {
        let first = self.first_server()?;
        let v = self.render_for(&first, "{{ hive_registry }}")?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The first server of the stage (whose variables stand for the
    /// stage-wide settings).
    pub fn first_server(&self) -> Result<String, Error> {
        self.project
            .servers_of(self.stage.name)
            .next()
            .map(|s| s.name.clone())
            .ok_or_else(|| Error::Site {
                message: format!("stage {} has no server", self.stage.name),
            })
    }

    /// The repository server of the stage.
    pub fn repository_server(&self) -> Result<String, Error> {
        self.project
            .servers_of(self.stage.name)
            .find(|s| s.role.is_repository())
            .map(|s| s.name.clone())
            .ok_or_else(|| Error::Site {
                message: format!("stage {} has no repository server", self.stage.name),
            })
    }

    /// The stage as hive-swarm needs it: servers, registry and its login,
    /// default logging, networks, `internal_cidr`, the tag mapping.
    pub fn swarm_stage(&self) -> Result<hive_swarm::StageContext, Error> {
        let first = self.first_server()?;
        let registry = self.registry()?;
        let repository = self.repository_server().unwrap_or_else(|_| first.clone());
        let mut ctx =
            hive_swarm::StageContext::new(self.stage.name.as_str(), &registry, &repository);
        ctx.servers = self.stage_servers()?;
        let render_str = |t: &str| -> Result<String, Error> {
            Ok(match self.render_for(&first, t)? {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Bool(b) => b.to_string(),
                serde_yaml::Value::Number(n) => n.to_string(),
                _ => String::new(),
            })
        };
        let tls = render_str("{{ hive_tls_logging | default(false) | bool }}")?
            .eq_ignore_ascii_case("true");
        let port = render_str("{{ hive_safe_syslog_port }}")?.parse().ok();
        let home = render_str("{{ hive_home_dir }}")?;
        if let Some(logging) = ctx.logging.as_mut() {
            logging.tls_logging = tls;
            if let Some(port) = port {
                logging.syslog_port = port;
            }
            logging.tls_cert_dir = format!("{home}/.docker");
        }
        let user = render_str("{{ hive_safe_docker_login_user }}")?;
        if let Ok(pw) = std::fs::read_to_string(self.context_dir().join("registry_password")) {
            ctx.registry_login = Some(hive_swarm::RegistryLogin {
                registry: Some(registry.clone()),
                username: user,
                password: pw.trim_end_matches('\n').to_string(),
            });
        }
        if let Some(ipnet::IpNet::V4(net)) = self
            .stage
            .attribute("internal_cidr")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
        {
            ctx.internal_cidr = Some(net);
        }
        for network in self.project.networks() {
            if !network.available_on.contains(&self.stage.name) {
                continue;
            }
            let params = self.rendered_params(
                &network.name,
                &["driver", "driver_opts", "ipam", "attachable"],
            )?;
            let def: hive_swarm::NetworkDefinition =
                serde_json::from_value(serde_json::Value::Object(params)).map_err(|e| {
                    Error::Site {
                        message: format!("network {}: {e}", network.name),
                    }
                })?;
            ctx.networks.insert(network.name.clone(), def);
        }
        let mapping = self.context_dir().join("tag-mapping.json");
        if mapping.exists() {
            ctx.tag_mapping = hive_swarm::TagMapping::load(&mapping).map_err(|e| Error::Site {
                message: format!("{}: {e}", mapping.display()),
            })?;
        }
        Ok(ctx)
    }
}

impl StageSite<'_> {
    /// The variable `name` of inventory host `host`, rendered; `None` when
    /// it is not defined or renders to `omit`.
    pub fn var(&self, host: &str, name: &str) -> Result<Option<serde_json::Value>, Error> {
        let Some(vars) = self.site.vars_for(host) else {
            return Ok(None);
        };
        let Some(raw) = vars.get(name) else {
            return Ok(None);
        };
        self.render_var(host, raw, &vars)
    }

    fn typed_var<T: serde::de::DeserializeOwned>(
        &self,
        host: &str,
        name: &str,
    ) -> Result<Option<T>, Error> {
        match self.var(host, name)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| Error::Site {
                    message: format!("variable {name} of {host}: {e}"),
                }),
        }
    }

    /// The stage's servers in inventory order, as setup-hosts and
    /// hive-swarm take them: with their roles, IPv4 addresses and groups.
    pub fn stage_servers(&self) -> Result<Vec<hive_model::Server>, Error> {
        self.project
            .servers_of(self.stage.name)
            .map(|s| {
                let IpAddr::V4(ip) = s.private_ip else {
                    return Err(Error::Site {
                        message: format!("server {} has an IPv6 private address", s.name),
                    });
                };
                Ok(hive_model::Server {
                    name: s.name.clone(),
                    role: s.role,
                    private_ip: ip,
                    groups: self.project.group_names(&s.name),
                })
            })
            .collect()
    }

    /// The stage as the setup-hosts phase needs it: its servers with their
    /// groups, and the `hive_*` settings of the first server.
    pub fn setup_hosts_params(&self) -> Result<crate::setup_hosts::SetupHostsParams, Error> {
        use crate::setup_hosts::SetupHostsParams;
        let first = self.first_server()?;
        let servers = self.stage_servers()?;
        let mut p = SetupHostsParams::new(
            self.stage.name.as_str(),
            self.project.name(),
            self.context_dir(),
            servers,
        );
        let num = |v: Option<serde_json::Value>| -> Option<u64> {
            v.and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            })
        };
        p.timezone = self.typed_var(&first, "hive_timezone")?;
        p.locale = self.typed_var(&first, "hive_locale")?;
        p.ntp_servers = match self.var(&first, "hive_ntp_servers")? {
            Some(serde_json::Value::String(s)) => vec![s],
            Some(v @ serde_json::Value::Array(_)) => {
                serde_json::from_value(v).map_err(|e| Error::Site {
                    message: format!("variable hive_ntp_servers: {e}"),
                })?
            }
            _ => Vec::new(),
        };
        p.users = self.typed_var(&first, "hive_users")?.unwrap_or_default();
        p.user_groups = self
            .typed_var(&first, "hive_user_groups")?
            .unwrap_or_default();
        p.ssh_source_ips = self
            .typed_var(&first, "hive_ssh_source_ips")?
            .unwrap_or_default();
        if let Some(port) = num(self.var(&first, "hive_safe_sshd_port")?) {
            p.sshd_port = u16::try_from(port).unwrap_or(22);
        }
        if let Some(port) = num(self.var(&first, "hive_safe_syslog_port")?) {
            p.syslog_port = u16::try_from(port).unwrap_or(10514);
        }
        if let Some(port) = num(self.var(&first, "hive_registry_port")?) {
            p.registry_port = u16::try_from(port).unwrap_or(5000);
        }
        if let Some(days) = num(self.var(&first, "hive_registry_backup_cleanup_days_before")?) {
            p.registry_backup_cleanup_days = u32::try_from(days).unwrap_or(3);
        }
        if let Some(image) = self.typed_var::<String>(&first, "hive_registry_image")? {
            p.registry_image = image;
        }
        if let Some(user) = self.typed_var::<String>(&first, "hive_safe_docker_login_user")? {
            p.registry_user = user;
        }
        if let Some(admin) = self.typed_var::<String>(&first, "hive_safe_admin")? {
            p.admin = admin;
        }
        p.tls_logging = matches!(
            self.var(&first, "hive_tls_logging")?,
            Some(serde_json::Value::Bool(true))
        );
        p.ext_repositories = self
            .typed_var(&first, "hive_ext_repositories")?
            .unwrap_or_default();
        if let Some(ipnet::IpNet::V4(net)) = self
            .stage
            .attribute("internal_cidr")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
        {
            p.internal_cidr = Some(net);
        }
        Ok(p)
    }
}

impl StageSite<'_> {
    /// The variables of inventory host `host` for the role runner: every
    /// variable the host sees, as written (the runner renders them lazily).
    pub fn runner_vars(&self, host: &str) -> Result<hive_image::Vars, Error> {
        let vars = self.site.vars_for(host).ok_or_else(|| Error::Site {
            message: format!("{host} is not a host of the inventory"),
        })?;
        let mut out = hive_image::Vars::new();
        for name in vars.names() {
            if let Some(v) = vars.get(name) {
                out.insert(name.to_string(), hive_inventory::yaml_to_json(v));
            }
        }
        Ok(out)
    }

    /// [`StageSite::runner_vars`] with Ansible's `groups` and `hostvars`
    /// (the variables of every host of the stage, rendered; a variable
    /// that does not render is left out), for roles that look at other
    /// hosts (initialize-services).
    pub fn runner_vars_with_hostvars(&self, host: &str) -> Result<hive_image::Vars, Error> {
        let mut out = self.runner_vars(host)?;
        let groups = self.site.groups();
        let mut hostvars = serde_json::Map::new();
        for h in groups.get(self.stage.name.as_str()).into_iter().flatten() {
            let Some(vars) = self.site.vars_for(h) else {
                continue;
            };
            let mut rendered = serde_json::Map::new();
            for name in vars.names() {
                if let Ok(Some(v)) = self.var(h, name) {
                    rendered.insert(name.to_string(), v);
                }
            }
            hostvars.insert(h.clone(), serde_json::Value::Object(rendered));
        }
        out.entry("groups".to_string())
            .or_insert_with(|| serde_json::json!(groups));
        out.entry("hostvars".to_string())
            .or_insert(serde_json::Value::Object(hostvars));
        Ok(out)
    }
}

impl StageSite<'_> {
    /// The volumes of the stage made with a Docker volume driver (the
    /// inventory keeps their driver on the volume, not on the service's
    /// mounts), rendered.
    pub fn driver_volumes(&self) -> Result<Vec<hive_swarm::VolumeDefinition>, Error> {
        let mut out = Vec::new();
        for volume in self.project.volumes() {
            if !volume.available_on.contains(&self.stage.name) {
                continue;
            }
            let VolumeKind::Driver {
                driver,
                driver_opts,
            } = &volume.kind
            else {
                continue;
            };
            let host = format!("volume_{}", volume.name);
            let vars = self.site.vars_for(&host).ok_or_else(|| Error::Site {
                message: format!("{host} is not a host of the inventory"),
            })?;
            let render = |v: &serde_yaml::Value| {
                self.templar
                    .render_value(v, &vars)
                    .map(|r| hive_inventory::yaml_to_json(&r))
                    .map_err(|e| Error::Template {
                        host: host.clone(),
                        source: Box::new(e),
                    })
            };
            let driver = match render(driver)? {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            let driver_opts = match driver_opts {
                Some(o) => serde_json::from_value(render(o)?).map_err(|e| Error::Site {
                    message: format!(
                        "volume {} of service {}: driver_opts: {e}",
                        volume.name, volume.service
                    ),
                })?,
                None => Default::default(),
            };
            out.push(hive_swarm::VolumeDefinition {
                name: volume.name.clone(),
                driver,
                driver_opts,
            });
        }
        Ok(out)
    }
}

/// Wraps a template error of inventory host `host`.
fn template_error(host: &str) -> impl Fn(TemplateError) -> Error + '_ {
    move |e| Error::Template {
        host: host.to_string(),
        source: Box::new(e),
    }
}
