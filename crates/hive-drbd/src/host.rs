//! Host preparation: the `drbd` step of setup-hosts.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::plan::{Action, Check, PackageManager, Plan, Step};
use crate::resource::render_global_common;
use crate::volume::file_check;
use crate::{DEFAULT_THIN_POOL, DEFAULT_VOLUME_GROUP, Stage, StageHive};
use hive_model::{shell_join, shell_quote};

/// Where the unit template is installed.
pub const UNIT_PATH: &str = "/etc/systemd/system/drbd-resource@.service";
/// Where the wait-for-device helper is installed.
pub const WAIT_HELPER_PATH: &str = "/usr/local/sbin/hive-drbd-wait";
/// Where the firewall script is installed.
pub const FIREWALL_SCRIPT_PATH: &str = "/usr/local/sbin/hive-drbd-firewall";
/// The unit that applies the firewall rules at boot.
pub const FIREWALL_UNIT: &str = "hive-drbd-firewall.service";
/// Path of the firewall unit.
pub const FIREWALL_UNIT_PATH: &str = "/etc/systemd/system/hive-drbd-firewall.service";
/// Kernel settings drop-in.
pub const SYSCTL_PATH: &str = "/etc/sysctl.d/60-hive-drbd.conf";
/// The check of the kernel preflight: a DRBD 9 module is loaded, as
/// `/proc/drbd` reports it, or as `lsmod` lists it with `modinfo` giving
/// its version. (drbd-utils' `drbdadm --version` is no evidence: its
/// `DRBD_KERNEL_VERSION` comes from `modinfo` when no module is loaded.)
pub const KERNEL_CHECK: &str = "grep -q '^version: 9\\.' /proc/drbd 2>/dev/null \
|| { lsmod 2>/dev/null | grep -q '^drbd ' && modinfo -F version drbd 2>/dev/null | grep -q '^9\\.'; }";
/// TCP buffer sizes (min, default, max) for DRBD replication.
pub const TCP_BUFFERS: &str = "131072 1048576 16777216";

/// The mirrored-disk devices hive-builder looks for, in order.
pub const DEFAULT_MIRRORED_DEVICES: [&str; 8] = [
    "/dev/disk/azure/scsi1/lun0",
    "/dev/sdc",
    "/dev/sdb",
    "/dev/vdc",
    "/dev/vdb",
    "/dev/xvdb",
    "/dev/nvme1n1",
    "/dev/sda",
];

/// A volume group to build on the first free device of a list
/// (an entry of `hive_mirrored_disk_devices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirroredDiskGroup {
    /// Candidate devices in order of preference (`device_order`).
    pub devices: Vec<String>,
    /// Volume group name (`vgname`).
    pub volume_group: String,
    /// Thin pool name (`poolname`), if volumes are thin.
    pub thin_pool: Option<String>,
}

impl Default for MirroredDiskGroup {
    fn default() -> Self {
        MirroredDiskGroup {
            devices: DEFAULT_MIRRORED_DEVICES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            volume_group: DEFAULT_VOLUME_GROUP.into(),
            thin_pool: Some(DEFAULT_THIN_POOL.into()),
        }
    }
}

/// Settings of host preparation for one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPreparation {
    /// Package manager of the hives' OS.
    pub package_manager: PackageManager,
    /// Packages to install; `None` means the defaults of
    /// [`HostPreparation::default_packages`].
    #[serde(default)]
    pub packages: Option<Vec<String>>,
    /// Volume groups to build (default: one `drbdvg` with thin pool
    /// `drbdpool` on hive-builder's device list).
    #[serde(default = "default_groups")]
    pub mirrored_disks: Vec<MirroredDiskGroup>,
}

fn default_groups() -> Vec<MirroredDiskGroup> {
    vec![MirroredDiskGroup::default()]
}

impl HostPreparation {
    /// Preparation with default packages and mirrored disks.
    pub fn new(package_manager: PackageManager) -> Self {
        HostPreparation {
            package_manager,
            packages: None,
            mirrored_disks: default_groups(),
        }
    }

    /// DRBD tools, LVM (with thin provisioning tools) and parted (for a
    /// partition on the space left on a disk) for the family.
    /// The DRBD 9 kernel module itself comes with the OS image or from the
    /// vendor (LINBIT, ELRepo `kmod-drbd9x`); the preflight checks it.
    pub fn default_packages(manager: PackageManager) -> Vec<String> {
        let list: &[&str] = match manager {
            PackageManager::Apt => &["drbd-utils", "lvm2", "thin-provisioning-tools", "parted"],
            PackageManager::Dnf => &[
                "drbd9x-utils",
                "lvm2",
                "device-mapper-persistent-data",
                "parted",
            ],
        };
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The plan for every hive of `stage`.
    pub fn plan(&self, stage: &Stage) -> Plan {
        let packages = self
            .packages
            .clone()
            .unwrap_or_else(|| Self::default_packages(self.package_manager));
        let pkg_check = match self.package_manager {
            PackageManager::Apt => format!(
                "for p in {}; do dpkg-query -W -f='${{Status}}' \"$p\" 2>/dev/null | grep -q 'install ok installed' || exit 1; done",
                shell_join(&packages)
            ),
            PackageManager::Dnf => format!("rpm -q {} >/dev/null 2>&1", shell_join(&packages)),
        };
        let sysctl = format!(
            "# Written by hive: TCP buffers for DRBD replication.\nnet.ipv4.tcp_rmem = {TCP_BUFFERS}\nnet.ipv4.tcp_wmem = {TCP_BUFFERS}\n"
        );
        let unit = render_unit();
        let helper = render_wait_helper();
        let fw_unit = render_firewall_unit();
        let mut steps = Vec::new();
        for hive in stage.hives() {
            let host = hive.name.clone();
            let mut push = |round: u32, action: Action, check: Check| {
                steps.push((host.clone(), Step::new(round, action, check)))
            };
            let write = |path: &str, content: &str, mode: u32| {
                (
                    Action::WriteFile {
                        path: path.into(),
                        content: content.into(),
                        mode,
                    },
                    file_check(path, content),
                )
            };
            push(
                1,
                Action::InstallPackages {
                    manager: self.package_manager,
                    packages: packages.clone(),
                },
                Check::exit_zero(pkg_check.clone()),
            );
            push(
                2,
                Action::KernelModulePreflight,
                Check::exit_zero(KERNEL_CHECK),
            );
            let (a, c) = write(
                "/etc/drbd.d/global_common.conf",
                render_global_common(),
                0o644,
            );
            push(3, a, c);
            if !hive.no_mirrored_device {
                for g in &self.mirrored_disks {
                    let vg = shell_quote(&g.volume_group);
                    let check = match &g.thin_pool {
                        Some(p) => format!(
                            "vgs {vg} >/dev/null 2>&1 && lvs {} >/dev/null 2>&1",
                            shell_quote(&format!("{}/{p}", g.volume_group))
                        ),
                        None => format!("vgs {vg} >/dev/null 2>&1"),
                    };
                    push(
                        4,
                        Action::CreateVolumeGroup {
                            devices: g.devices.clone(),
                            volume_group: g.volume_group.clone(),
                            thin_pool: g.thin_pool.clone(),
                        },
                        Check::exit_zero(check),
                    );
                }
            }
            let (a, c) = write(SYSCTL_PATH, &sysctl, 0o644);
            push(5, a, c);
            push(
                6,
                Action::ApplySysctl {
                    path: SYSCTL_PATH.into(),
                },
                Check::exit_zero(format!(
                    "for k in net.ipv4.tcp_rmem net.ipv4.tcp_wmem; do test \"$(sysctl -n $k | tr -s ' \\t' ' ')\" = '{TCP_BUFFERS}' || exit 1; done"
                )),
            );
            let peers: Vec<IpAddr> = stage
                .hives()
                .iter()
                .filter(|p| p.name != hive.name)
                .map(|p| p.private_ip)
                .collect();
            let (a, c) = write(FIREWALL_SCRIPT_PATH, &render_firewall_script(&peers), 0o755);
            push(7, a, c);
            let (a, c) = write(FIREWALL_UNIT_PATH, &fw_unit, 0o644);
            push(7, a, c);
            let (a, c) = write(UNIT_PATH, &unit, 0o644);
            push(7, a, c);
            let (a, c) = write(WAIT_HELPER_PATH, &helper, 0o755);
            push(7, a, c);
            push(
                8,
                Action::DaemonReload,
                Check::exit_zero(format!(
                    "! systemctl show --property=NeedDaemonReload --value {FIREWALL_UNIT} drbd-resource@hive.service 2>/dev/null | grep -q yes"
                )),
            );
            push(
                9,
                Action::EnableUnit {
                    unit: FIREWALL_UNIT.into(),
                    restart: true,
                },
                Check::exit_zero(format!(
                    "systemctl is-enabled -q {FIREWALL_UNIT} && {FIREWALL_SCRIPT_PATH} check"
                )),
            );
        }
        Plan::from_steps("prepare hosts for DRBD", steps)
    }
}

impl HostPreparation {
    /// A cheap, read-only command telling whether `hive` was prepared (by
    /// the `drbd` step of setup-hosts): it prints one line per missing
    /// part (`drbd-utils`, `DRBD 9 kernel module`, a file, a volume group)
    /// and nothing when the host is ready for volumes.
    ///
    /// ```
    /// use hive_drbd::{HostPreparation, PackageManager, StageHive};
    /// let hive = StageHive::new("hive0", "10.0.0.1".parse().unwrap());
    /// let cmd = HostPreparation::new(PackageManager::Apt).readiness_command(&hive);
    /// assert!(cmd.contains("vgs drbdvg"));
    /// ```
    pub fn readiness_command(&self, hive: &StageHive) -> String {
        let mut s = format!(
            "command -v drbdadm >/dev/null 2>&1 || echo drbd-utils; \
{{ {KERNEL_CHECK}; }} || echo 'DRBD 9 kernel module'; \
test -f {UNIT_PATH} || echo {UNIT_PATH}; \
test -x {WAIT_HELPER_PATH} || echo {WAIT_HELPER_PATH}"
        );
        if !hive.no_mirrored_device {
            for g in &self.mirrored_disks {
                let vg = shell_quote(&g.volume_group);
                s.push_str(&format!(
                    "; vgs {vg} >/dev/null 2>&1 || echo {}",
                    shell_quote(&format!("volume group {}", g.volume_group))
                ));
            }
        }
        s.push_str("; true");
        s
    }
}

/// Text of `drbd-resource@.service`: brings a resource up before Docker
/// starts and takes it down when stopped.
///
/// Docker only *wants* the unit (ordering is kept by `Before=`): a volume
/// whose DRBD resource fails must not keep Docker, and every other service
/// of the host, from starting.
pub fn render_unit() -> String {
    format!(
        "# Written by hive; changes here are overwritten.\n\
[Unit]\n\
Description=hive DRBD resource %i\n\
Documentation=man:drbdadm(8)\n\
Wants=network-online.target\n\
After=network-online.target {FIREWALL_UNIT}\n\
Before=docker.service\n\
\n\
[Service]\n\
Type=oneshot\n\
RemainAfterExit=yes\n\
ExecStart={WAIT_HELPER_PATH} %i\n\
ExecStop=/usr/sbin/drbdadm down %i\n\
TimeoutStartSec=120\n\
\n\
[Install]\n\
WantedBy=docker.service\n"
    )
}

/// Text of the wait-for-device helper: retries `drbdadm adjust` (the
/// network or a peer may not be ready at boot) and waits for the device
/// node, each with a bound, naming what failed.
pub fn render_wait_helper() -> String {
    r#"#!/bin/sh
# Written by hive: bring DRBD resource $1 up and wait for its device.
# Used by drbd-resource@.service. Bounded: HIVE_DRBD_WAIT_TRIES attempts
# (default 150) 0.2 s apart for each of the two waits.
res="$1"
if [ -z "$res" ]; then echo "usage: hive-drbd-wait RESOURCE" >&2; exit 2; fi
tries="${HIVE_DRBD_WAIT_TRIES:-150}"
n=0
until drbdadm adjust "$res"; do
  n=$((n + 1))
  if [ "$n" -ge "$tries" ]; then
    echo "hive-drbd-wait: 'drbdadm adjust $res' still failing after $n attempts; see 'drbdadm status $res' and 'journalctl -k'" >&2
    exit 1
  fi
  echo "hive-drbd-wait: 'drbdadm adjust $res' failed (attempt $n of $tries), retrying" >&2
  sleep 0.2
done
dev="$(drbdadm sh-dev "$res")" || { echo "hive-drbd-wait: no device configured for $res" >&2; exit 1; }
n=0
until [ -b "$dev" ]; do
  n=$((n + 1))
  if [ "$n" -ge "$tries" ]; then
    echo "hive-drbd-wait: device $dev of $res did not appear" >&2
    exit 1
  fi
  sleep 0.2
done
echo "hive-drbd-wait: $res is up on $dev"
"#
    .to_string()
}

fn render_firewall_unit() -> String {
    format!(
        "# Written by hive; changes here are overwritten.\n\
[Unit]\n\
Description=hive: DRBD ports open between the hives only\n\
Before=network-online.target\n\
\n\
[Service]\n\
Type=oneshot\n\
RemainAfterExit=yes\n\
ExecStart={FIREWALL_SCRIPT_PATH} apply\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n"
    )
}

/// Text of the firewall script: DRBD ports 7000–7999 accept TCP from the
/// other hives' private addresses and drop it from anywhere else.
/// `apply` installs the rules, `check` exits 0 when exactly they are in place.
pub fn render_firewall_script(peers: &[IpAddr]) -> String {
    let v4: Vec<String> = peers
        .iter()
        .filter(|p| p.is_ipv4())
        .map(|p| p.to_string())
        .collect();
    let v6: Vec<String> = peers
        .iter()
        .filter(|p| p.is_ipv6())
        .map(|p| p.to_string())
        .collect();
    format!(
        r#"#!/bin/sh
# Written by hive: DRBD ports 7000-7999 open to the other hives of the stage only.
set -e
CHAIN=HIVE-DRBD
PEERS4="{}"
PEERS6="{}"
rules() {{
  for ip in $1; do echo "-p tcp -s $ip --dport 7000:7999 -j ACCEPT"; done
  echo "-p tcp --dport 7000:7999 -j DROP"
}}
check() {{
  "$1" -C INPUT -p tcp --dport 7000:7999 -j $CHAIN 2>/dev/null || return 1
  rules "$2" | while read -r r; do "$1" -C $CHAIN $r 2>/dev/null || exit 1; done
  test "$("$1" -S $CHAIN | grep -c -- '^-A ')" -eq "$(rules "$2" | wc -l)"
}}
apply() {{
  "$1" -N $CHAIN 2>/dev/null || true
  "$1" -F $CHAIN
  rules "$2" | while read -r r; do "$1" -A $CHAIN $r; done
  "$1" -C INPUT -p tcp --dport 7000:7999 -j $CHAIN 2>/dev/null || "$1" -I INPUT 1 -p tcp --dport 7000:7999 -j $CHAIN
}}
case "${{1:-apply}}" in
  check) check iptables "$PEERS4"; if command -v ip6tables >/dev/null; then check ip6tables "$PEERS6"; fi ;;
  apply) apply iptables "$PEERS4"; if command -v ip6tables >/dev/null; then apply ip6tables "$PEERS6"; fi ;;
  *) echo "usage: $0 apply|check" >&2; exit 2 ;;
esac
"#,
        v4.join(" "),
        v6.join(" ")
    )
}

/// The DRBD kernel module as found by the preflight probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelModule {
    /// Module version, e.g. `9.2.12`.
    pub version: String,
}

fn section<'a>(probe: &'a str, name: &str) -> &'a str {
    let marker = format!("@@{name}\n");
    let Some(start) = probe.find(&marker) else {
        return "";
    };
    let rest = &probe[start + marker.len()..];
    match rest.find("\n@@") {
        Some(end) => &rest[..end],
        None => rest,
    }
    .trim()
}

/// Reads the output of the preflight probe
/// ([`KERNEL_PROBE`](crate::plan::KERNEL_PROBE)): `Ok` when a DRBD 9
/// module is loaded, otherwise an explanation of what was found and how
/// to fix it.
pub fn assess_kernel_module(probe: &str) -> Result<KernelModule, String> {
    let modprobe = section(probe, "modprobe");
    let proc = section(probe, "proc");
    let modinfo = section(probe, "modinfo");
    let kernel = section(probe, "kernel");
    let kernel = if kernel.is_empty() {
        "(unknown)"
    } else {
        kernel
    };
    let install = format!(
        "install the DRBD 9 module built for kernel {kernel} (Debian/Ubuntu: drbd-dkms from LINBIT; \
         RHEL family: kmod-drbd9x from ELRepo, or the drbd9 packages hive-builder used), or boot a kernel that has it"
    );
    // `/proc/drbd` first; where it is absent, a module `lsmod` lists has
    // the version `modinfo` reports.
    let listed = section(probe, "lsmod")
        .lines()
        .any(|l| l.split_whitespace().next() == Some("drbd"));
    let loaded = proc
        .lines()
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        .or_else(|| {
            let v = modinfo.lines().next().unwrap_or("").trim();
            (listed && !v.is_empty() && !v.contains(' ')).then(|| v.to_string())
        });
    if let Some(v) = loaded {
        if v.starts_with("9.") {
            return Ok(KernelModule { version: v });
        }
        return Err(format!(
            "DRBD {v} is loaded (the kernel's own 8.x module?), hive needs DRBD 9: {install}, \
             then 'rmmod drbd; modprobe drbd' with no resource up, or reboot"
        ));
    }
    if modprobe.contains("Required key not available") || modprobe.contains("Key was rejected") {
        return Err(
            "the DRBD module is not signed for UEFI Secure Boot ('Required key not available'): \
             disable Secure Boot in the firmware or hypervisor settings, or enroll a key and sign the module"
                .into(),
        );
    }
    let modinfo_version = modinfo.lines().next().unwrap_or("").trim();
    if modinfo.contains("not found") || modinfo_version.is_empty() {
        return Err(format!(
            "no DRBD module for the running kernel {kernel} (after a kernel update the module must be installed again \
             for the new kernel): {install}"
        ));
    }
    if !modinfo_version.starts_with("9.") {
        return Err(format!(
            "only DRBD {modinfo_version} is available for kernel {kernel}, hive needs DRBD 9: {install}"
        ));
    }
    let why = modprobe
        .lines()
        .filter(|l| !l.starts_with("rc="))
        .collect::<Vec<_>>()
        .join("; ");
    Err(format!(
        "DRBD {modinfo_version} is installed for kernel {kernel} but did not load{}",
        if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        }
    ))
}
