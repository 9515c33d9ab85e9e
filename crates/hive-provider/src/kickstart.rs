//! The `kickstart` provider: bare-metal servers installed from media that
//! build-infra prepares, as hive-builder's `kickstart` role does.
//!
//! For each server of the stage it writes a kickstart file for the RHEL 8
//! family (valid for RHEL 9 as well), `<context>/iso/<host>.ks` (the server's short name), from the
//! stage's `kickstart_config`: the target disk, the static networks (one
//! address of `ips` per server, in server order; VLANs and bonds), the
//! partitions sized from the server's `memory_size` and `disk_size`, the
//! root and admin password (the stage's `registry_password`, as the
//! original), the admin's authorized key and passwordless sudo, then
//! `poweroff`. The files hold a password: they are written mode 0600.
//!
//! With `iso_src`, the source installation image is unpacked into
//! `<context>/iso` (with `xorriso`) and a menu entry per server is added to
//! its BIOS (`isolinux/isolinux.cfg`) and UEFI (`EFI/BOOT/grub.cfg`) menus,
//! booting with `inst.ks=hd:LABEL=HiveInstaller:/<host>.ks`; with
//! `iso_dest`, the tree is written as an ISO image labelled `HiveInstaller`
//! (a file or a device) whenever something in it changed.
//!
//! The servers are installed by booting them from those media; build-infra
//! reaches those that answer and lists the others as not installed yet.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use crate::error::{ProviderError, Result};
use crate::provider::{Provider, ProviderReport, ServerChange};
use crate::stage::{Endpoint, StageSpec, stage_password, write_atomic};
use crate::transport::shell_quote;

/// The kickstart syntax version the files are written for (`ksvalidator
/// -v`), the release the original targets; they hold nothing that RHEL 9
/// refuses (`timezone --utc` rather than the older `--isUtc`).
pub const KICKSTART_VERSION: &str = "RHEL8";

/// The `kickstart` provider's stage attributes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KickstartAttributes {
    /// How the servers are installed.
    pub kickstart_config: KickstartConfig,
    /// The servers' addresses, in server order (already mapped into each
    /// server's `private_ip` by the inventory; accepted here).
    #[serde(default)]
    pub ip_address_list: Option<Vec<Ipv4Addr>>,
}

/// `kickstart_config`: the installation of the stage's servers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KickstartConfig {
    /// The source installation image (an ISO file or a device holding one)
    /// to unpack into `<context>/iso`.
    #[serde(default)]
    pub iso_src: Option<PathBuf>,
    /// Where to write the installation image (an ISO file or a device).
    #[serde(default)]
    pub iso_dest: Option<PathBuf>,
    /// The disk the system is installed on (default `sda`).
    #[serde(default)]
    pub target: Option<String>,
    /// The servers' network interfaces.
    pub networks: Vec<KickstartNetwork>,
}

/// One network interface of `kickstart_config.networks`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KickstartNetwork {
    /// The interface (`eth0`, `bond0`, ...).
    pub interface: String,
    /// The default gateway.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// The DNS resolvers.
    #[serde(default)]
    pub nameservers: Vec<Ipv4Addr>,
    /// One address per server, in server order; without it the interface
    /// gets no IPv4 address.
    #[serde(default)]
    pub ips: Option<Vec<Ipv4Addr>>,
    /// The netmask of `ips`.
    #[serde(default)]
    pub netmask: Option<Ipv4Addr>,
    /// A VLAN id (1-4094).
    #[serde(default)]
    pub vlanid: Option<u16>,
    /// The slave interfaces of a bond (802.3ad).
    #[serde(default)]
    pub bonding_interfaces: Vec<String>,
}

/// Servers installed from kickstart media; hive writes the media and
/// neither halts nor destroys the servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct KickstartProvider;

/// A file the provider writes and its mode.
struct Planned {
    path: PathBuf,
    data: Vec<u8>,
    mode: u32,
}

fn invalid(stage: &StageSpec, key: &str, message: String) -> ProviderError {
    ProviderError::InvalidStage {
        stage: stage.stage.clone(),
        key: key.into(),
        message,
    }
}

impl KickstartProvider {
    /// The stage's kickstart attributes, checked.
    pub fn attributes(stage: &StageSpec) -> Result<KickstartAttributes> {
        let a: KickstartAttributes =
            stage.provider_attributes(&["kickstart_config", "ip_address_list"])?;
        let n = stage.servers.len();
        if a.kickstart_config.networks.is_empty() {
            return Err(invalid(
                stage,
                "kickstart_config.networks",
                "is empty; give at least one interface (interface, ips, netmask, gateway, ...)"
                    .into(),
            ));
        }
        for (i, net) in a.kickstart_config.networks.iter().enumerate() {
            let key = format!("kickstart_config.networks[{i}]");
            if let Some(ips) = &net.ips {
                if ips.len() < n {
                    let server = &stage.servers[ips.len()].name;
                    return Err(invalid(
                        stage,
                        &format!("{key}.ips"),
                        format!(
                            "has {} addresses for {n} servers (none for {server}); give one address per server, in server order",
                            ips.len()
                        ),
                    ));
                }
                if net.netmask.is_none() {
                    return Err(invalid(
                        stage,
                        &format!("{key}.netmask"),
                        "is required with ips (e.g. 255.255.255.0)".into(),
                    ));
                }
            }
            if net.vlanid.is_some_and(|v| !(1..=4094).contains(&v)) {
                return Err(invalid(
                    stage,
                    &format!("{key}.vlanid"),
                    "must be a VLAN id from 1 to 4094".into(),
                ));
            }
            if net.interface.is_empty() || net.interface.contains(char::is_whitespace) {
                return Err(invalid(
                    stage,
                    &format!("{key}.interface"),
                    format!("`{}` is not an interface name", net.interface),
                ));
            }
        }
        if let Some(list) = &a.ip_address_list {
            if list.len() != n {
                return Err(invalid(
                    stage,
                    "ip_address_list",
                    format!(
                        "has {} addresses for {n} servers; give one address per server",
                        list.len()
                    ),
                ));
            }
        }
        Ok(a)
    }

    /// `<context>/iso`: where the kickstart files and the media tree are.
    pub fn media_dir(stage: &StageSpec) -> PathBuf {
        stage.context_dir.join("iso")
    }

    /// The kickstart file of server number `index` of the stage.
    pub fn kickstart_file(
        stage: &StageSpec,
        config: &KickstartConfig,
        index: usize,
        password: &str,
        public_key: &str,
    ) -> String {
        let server = &stage.servers[index];
        let target = config.target.as_deref().unwrap_or("sda");
        let admin = &stage.admin.user;
        let timezone = stage.timezone.as_deref().unwrap_or("Etc/GMT");
        let quoted = password.replace('\\', "\\\\").replace('"', "\\\"");
        let memory = server.memory_size.unwrap_or(10240);
        // disk_size is in GB; partition sizes are in MiB (as the original).
        let disk = server.disk_size.unwrap_or(100);
        let root_size = disk * 1000 * 1000 * 1000 / (1024 * 1024);
        let mut ks = format!(
            "#version={KICKSTART_VERSION}\n\
             # {name}: server {number} of stage {stage} of {site}, written by hive build-infra\n\
             text\n\
             firstboot --enable\n\
             ignoredisk --only-use={target}\n\
             keyboard --vckeymap=jp --xlayouts='jp'\n\
             lang C\n",
            name = server.name,
            number = index,
            stage = stage.stage,
            site = stage.site,
        );
        for net in &config.networks {
            ks.push_str(&network_line(net, index));
        }
        ks.push_str(&format!(
            "rootpw --plaintext \"{quoted}\"\n\
             user --name={admin} --password=\"{quoted}\" --plaintext\n\
             timezone {timezone} --utc\n\
             bootloader --append=\"crashkernel=auto\" --location=mbr --boot-drive={target}\n\
             clearpart --all --initlabel --drives={target}\n\
             part /boot/efi --fstype=efi --ondisk={target} --size=200\n\
             part swap --fstype=swap --ondisk={target} --size={memory}\n\
             part / --fstype=xfs --ondisk={target} --size={root_size}\n\
             \n\
             %packages\n@core\nkexec-tools\n%end\n\
             \n\
             %addon com_redhat_kdump --enable --reserve-mb='auto'\n%end\n\
             \n\
             %post --log=/root/ks-post.log\n\
             set -x\n\
             mkdir -p /home/{admin}/.ssh\n\
             chmod 0700 /home/{admin}/.ssh\n\
             echo {key} > /home/{admin}/.ssh/authorized_keys\n\
             chmod 0600 /home/{admin}/.ssh/authorized_keys\n\
             chown -R {admin}:{admin} /home/{admin}/.ssh\n\
             echo '%{admin} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{admin}\n\
             chmod 0440 /etc/sudoers.d/{admin}\n\
             %end\n\
             \n\
             poweroff\n",
            key = shell_quote(public_key.trim()),
        ));
        ks
    }

    /// Everything build-infra writes for the stage (without the media
    /// tree and the image, which `xorriso` writes).
    fn planned(stage: &StageSpec, create_password: bool) -> Result<Vec<Planned>> {
        let a = Self::attributes(stage)?;
        let (password, _) = stage_password(&stage.context_dir, create_password).map_err(|e| {
            ProviderError::io(
                "read or create",
                stage.context_dir.join("registry_password"),
                e,
            )
        })?;
        let public_key = match std::fs::read_to_string(stage.public_key_path()) {
            Ok(k) => k,
            // Check mode before the key pair exists: build-infra creates it
            // first, so every file would be written anyway.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create_password => String::new(),
            Err(e) => {
                return Err(ProviderError::io(
                    "read the public key",
                    stage.public_key_path(),
                    e,
                ));
            }
        };
        let dir = Self::media_dir(stage);
        Ok(stage
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| Planned {
                path: dir.join(format!("{}.ks", short_name(&s.name))),
                data: Self::kickstart_file(stage, &a.kickstart_config, i, &password, &public_key)
                    .into_bytes(),
                mode: 0o600,
            })
            .collect())
    }

    /// Writes (or, with `write` false, only compares) the planned files.
    fn apply(stage: &StageSpec, write: bool) -> Result<ProviderReport> {
        let mut report = ProviderReport {
            servers: stage
                .servers
                .iter()
                .map(|s| (s.name.clone(), ServerChange::Unchanged))
                .collect(),
            ..Default::default()
        };
        let a = Self::attributes(stage)?;
        let dir = Self::media_dir(stage);
        if let Some(src) = &a.kickstart_config.iso_src {
            let change = crate::kickstart_media::unpack(src, &dir, write)?;
            report.resources.push((dir.display().to_string(), change));
        }
        for p in Self::planned(stage, write)? {
            let change = match std::fs::read(&p.path) {
                Ok(old) if old == p.data => ServerChange::Unchanged,
                Ok(_) => ServerChange::Updated,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ServerChange::Created,
                Err(e) => return Err(ProviderError::io("read", &p.path, e)),
            };
            if write && change != ServerChange::Unchanged {
                write_atomic(&p.path, &p.data, p.mode)?;
            }
            report
                .resources
                .push((p.path.display().to_string(), change));
        }
        if a.kickstart_config.iso_src.is_some() {
            let hosts: Vec<String> = stage.servers.iter().map(|s| s.name.clone()).collect();
            for (path, change) in crate::kickstart_media::menus(&dir, &hosts, write)? {
                report.resources.push((path.display().to_string(), change));
            }
        }
        if let Some(dest) = &a.kickstart_config.iso_dest {
            let changed = report.changed();
            let change = crate::kickstart_media::write_image(&dir, dest, changed, write)?;
            report.resources.push((dest.display().to_string(), change));
        }
        Ok(report)
    }
}

/// A host's short name: its inventory name's first label.
fn short_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// The `network` command of one interface for server number `index`.
fn network_line(net: &KickstartNetwork, index: usize) -> String {
    let mut line = format!(
        "network --bootproto=static --device={} --noipv6",
        net.interface
    );
    if let Some(gw) = net.gateway {
        line.push_str(&format!(" --gateway={gw}"));
    }
    if !net.nameservers.is_empty() {
        let ns: Vec<String> = net.nameservers.iter().map(|n| n.to_string()).collect();
        line.push_str(&format!(" --nameserver={}", ns.join(",")));
    }
    match (&net.ips, net.netmask) {
        (Some(ips), Some(mask)) => line.push_str(&format!(" --ip={} --netmask={mask}", ips[index])),
        _ => line.push_str(" --noipv4"),
    }
    if let Some(vlan) = net.vlanid {
        line.push_str(&format!(" --vlanid={vlan}"));
    }
    if !net.bonding_interfaces.is_empty() {
        line.push_str(&format!(
            " --bondslaves={} --bondopts=miimon=100,mode=802.3ad,updelay=600,xmit_hash_policy=2",
            net.bonding_interfaces.join(",")
        ));
    }
    line.push('\n');
    line
}

#[async_trait]
impl Provider for KickstartProvider {
    fn name(&self) -> &str {
        "kickstart"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        Self::attributes(stage)?;
        stage.check_common()?;
        Ok(Vec::new())
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let stage = stage.clone();
        tokio::task::spawn_blocking(move || Self::apply(&stage, true))
            .await
            .map_err(|e| ProviderError::Program {
                program: "kickstart".into(),
                args: String::new(),
                message: e.to_string(),
            })?
    }

    async fn plan(&self, stage: &StageSpec) -> Result<Option<ProviderReport>> {
        Self::apply(stage, false).map(Some)
    }

    fn installs_servers_later(&self) -> bool {
        true
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        Ok(ProviderReport {
            warnings: vec![format!(
                "stage {}: the kickstart provider does not halt servers; stop them yourself",
                stage.stage
            )],
            ..Default::default()
        })
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let dir = Self::media_dir(stage);
        let mut report = ProviderReport {
            warnings: vec![format!(
                "stage {}: the kickstart provider does not destroy servers; only the media it wrote in {} are removed",
                stage.stage,
                dir.display()
            )],
            ..Default::default()
        };
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => report
                .resources
                .push((dir.display().to_string(), ServerChange::Destroyed)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ProviderError::io("remove", &dir, e)),
        }
        Ok(report)
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        Ok(stage.private_endpoints(22))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{ServerRole, ServerSpec};

    fn stage(config: serde_json::Value) -> StageSpec {
        let mut s = StageSpec::new(
            "bare",
            "production",
            "kickstart",
            "192.0.2.0/24".parse().unwrap(),
            "/nonexistent",
        );
        for i in 0..2u8 {
            let ip = format!("192.0.2.{}", 10 + i).parse().unwrap();
            s.servers.push(ServerSpec::new(
                format!("hive{i}.bare"),
                ServerRole::Hive,
                ip,
            ));
        }
        s.attributes.insert("kickstart_config".into(), config);
        s
    }

    fn refused(config: serde_json::Value) -> String {
        KickstartProvider::attributes(&stage(config))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn settings_are_refused_with_the_key_and_what_is_valid() {
        let e = refused(serde_json::json!({"networks": []}));
        assert!(
            e.contains("kickstart_config.networks") && e.contains("at least one"),
            "{e}"
        );
        let e = refused(
            serde_json::json!({"networks": [{"interface": "eth0", "ips": ["10.0.0.1", "10.0.0.2"]}]}),
        );
        assert!(
            e.contains("networks[0].netmask") && e.contains("255.255.255.0"),
            "{e}"
        );
        let e = refused(serde_json::json!({"networks": [{"interface": "eth0", "vlanid": 4095}]}));
        assert!(
            e.contains("networks[0].vlanid") && e.contains("1 to 4094"),
            "{e}"
        );
        let e =
            refused(serde_json::json!({"networks": [{"interface": "eth0", "gatway": "10.0.0.1"}]}));
        assert!(e.contains("gatway"), "{e}");
    }

    #[test]
    fn an_interface_without_addresses_has_no_ipv4() {
        let s = stage(serde_json::json!({"networks": [
            {"interface": "eth0", "ips": ["10.0.0.1", "10.0.0.2"], "netmask": "255.0.0.0"},
            {"interface": "eth1"}
        ]}));
        let a = KickstartProvider::attributes(&s).unwrap();
        let ks = KickstartProvider::kickstart_file(
            &s,
            &a.kickstart_config,
            1,
            "pw\"x",
            "ssh-ed25519 AAAA k",
        );
        assert!(
            ks.contains("--device=eth0 --noipv6 --ip=10.0.0.2 --netmask=255.0.0.0\n"),
            "{ks}"
        );
        assert!(ks.contains("--device=eth1 --noipv6 --noipv4\n"), "{ks}");
        assert!(ks.contains("rootpw --plaintext \"pw\\\"x\"\n"), "{ks}");
        assert!(ks.contains("ignoredisk --only-use=sda\n"), "{ks}");
        assert!(ks.contains("timezone Etc/GMT --utc\n"), "{ks}");
        assert!(
            ks.contains("--size=10240\n") && ks.contains("--size=95367\n"),
            "{ks}"
        );
    }
}
