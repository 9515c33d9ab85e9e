//! Plans: typed steps per host, each with a check that says whether the step
//! is already done.
//!
//! A plan is pure data. [`Plan::pending`] drops the steps whose check reports
//! "done" for observed check results, so check mode can print what would
//! change and a re-run on a healthy site prints nothing. The
//! [`Executor`](crate::Executor) evaluates each check right before its step,
//! round by round across hosts.

use std::fmt;

use hive_model::{ExecOutput, shell_join, shell_quote};
use serde::{Deserialize, Serialize};

use crate::status::{DiskState, ResourceStatus, parse_events2};

/// Package manager family of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    /// Debian, Ubuntu.
    Apt,
    /// RHEL, AlmaLinux, Rocky, Fedora.
    Dnf,
}

/// How a peer's disk should end up once synced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerExpectation {
    /// Peer host name (DRBD connection name).
    pub peer: String,
    /// Whether the peer keeps a disk (`UpToDate`) or is diskless.
    pub has_disk: bool,
}

/// What a step does. Most actions are one shell command (see
/// [`Action::command`]); waits and the kernel preflight are interpreted by
/// the executor (polling with a timeout, explaining the result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Install OS packages.
    InstallPackages {
        /// apt or dnf.
        manager: PackageManager,
        /// Package names.
        packages: Vec<String>,
    },
    /// Make sure a DRBD 9 kernel module is loaded; explain how to fix it
    /// otherwise.
    KernelModulePreflight,
    /// Write a file atomically (temp file + rename).
    WriteFile {
        /// Absolute path.
        path: String,
        /// Full content.
        content: String,
        /// Permission bits, e.g. `0o644`.
        mode: u32,
    },
    /// Create the volume group and thin pool on the first usable mirrored
    /// disk among `devices`.
    CreateVolumeGroup {
        /// Candidate devices, in order of preference.
        devices: Vec<String>,
        /// Volume group name.
        volume_group: String,
        /// Thin pool name, if any.
        thin_pool: Option<String>,
    },
    /// `sysctl -p` a drop-in file.
    ApplySysctl {
        /// The drop-in file.
        path: String,
    },
    /// `systemctl daemon-reload`.
    DaemonReload,
    /// `systemctl enable --now` a unit (or enable and restart it).
    EnableUnit {
        /// Unit name.
        unit: String,
        /// Restart even when already running (re-applies a oneshot unit).
        restart: bool,
    },
    /// `systemctl stop` a unit (without stopping what depends on it).
    StopUnit {
        /// Unit name.
        unit: String,
    },
    /// `systemctl disable` a unit and forget a failed state.
    DisableUnit {
        /// Unit name.
        unit: String,
    },
    /// Create the backing logical volume.
    CreateLogicalVolume {
        /// Volume group.
        volume_group: String,
        /// Thin pool (thin volume) or `None` (plain volume).
        thin_pool: Option<String>,
        /// LV name.
        name: String,
        /// Size with unit.
        size: String,
    },
    /// Remove the backing logical volume.
    RemoveLogicalVolume {
        /// Volume group.
        volume_group: String,
        /// LV name.
        name: String,
    },
    /// `drbdadm create-md --force`.
    CreateMetadata {
        /// Resource name.
        resource: String,
    },
    /// `drbdadm adjust`.
    Adjust {
        /// Resource name.
        resource: String,
    },
    /// Wait until every peer is connected.
    WaitConnected {
        /// Resource name.
        resource: String,
        /// Peers expected to connect.
        peers: Vec<String>,
        /// Give up after this many seconds.
        timeout_secs: u64,
    },
    /// `drbdadm primary --force` (only on a fresh, unformatted volume).
    ForcePrimary {
        /// Resource name.
        resource: String,
    },
    /// Wait until the local disk and every peer disk are in sync.
    WaitSynced {
        /// Resource name.
        resource: String,
        /// Whether this host keeps a disk.
        local_disk: bool,
        /// Expected peer states.
        peers: Vec<PeerExpectation>,
        /// Give up after this many seconds.
        timeout_secs: u64,
    },
    /// Make the file system on the DRBD device.
    MakeFilesystem {
        /// `/dev/drbd<id>`.
        device: String,
        /// File system type.
        fstype: String,
    },
    /// `drbdadm down`, retried because a peer may refuse at first.
    Down {
        /// Resource name.
        resource: String,
        /// Number of attempts.
        attempts: u32,
        /// Pause between attempts.
        delay_secs: u64,
    },
    /// Create the Docker `local` volume on the DRBD device.
    CreateDockerVolume {
        /// Volume name.
        name: String,
        /// `/dev/drbd<id>`.
        device: String,
        /// File system type.
        fstype: String,
        /// Mount options (`o`).
        mount_options: Option<String>,
    },
    /// Remove the Docker volume.
    RemoveDockerVolume {
        /// Volume name.
        name: String,
    },
    /// Remove a file.
    RemoveFile {
        /// Absolute path.
        path: String,
    },
}

/// The probe the kernel preflight runs; its output is read by
/// [`assess_kernel_module`](crate::assess_kernel_module).
pub const KERNEL_PROBE: &str = "echo '@@modprobe'; modprobe drbd 2>&1; echo \"rc=$?\"; \
echo '@@proc'; cat /proc/drbd 2>/dev/null; \
echo '@@modinfo'; modinfo -F version drbd 2>&1; \
echo '@@lsmod'; lsmod 2>/dev/null | grep '^drbd '; \
echo '@@kernel'; uname -r";

impl Action {
    /// Shell command run on the host for this action (for waits: the status
    /// command that is polled; for the preflight: the probe).
    pub fn command(&self) -> String {
        use Action::*;
        match self {
            InstallPackages { manager, packages } => {
                let list = shell_join(packages);
                match manager {
                    PackageManager::Apt => format!(
                        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {list} \
                         || {{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {list}; }}"
                    ),
                    PackageManager::Dnf => format!("dnf install -y -q {list}"),
                }
            }
            KernelModulePreflight => KERNEL_PROBE.to_string(),
            WriteFile { path, mode, .. } => {
                let tmp = format!("{}.hive-tmp.$$", shell_quote(path));
                format!(
                    "mkdir -p \"$(dirname {p})\" && cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {p}",
                    p = shell_quote(path)
                )
            }
            CreateVolumeGroup {
                devices,
                volume_group,
                thin_pool,
            } => create_vg_script(devices, volume_group, thin_pool.as_deref()),
            ApplySysctl { path } => format!("sysctl -q -p {}", shell_quote(path)),
            DaemonReload => "systemctl daemon-reload".into(),
            EnableUnit {
                unit,
                restart: false,
            } => format!("systemctl enable --now {}", shell_quote(unit)),
            EnableUnit {
                unit,
                restart: true,
            } => {
                format!(
                    "systemctl enable {u} && systemctl restart {u}",
                    u = shell_quote(unit)
                )
            }
            StopUnit { unit } => format!(
                "systemctl stop --job-mode=ignore-dependencies {}",
                shell_quote(unit)
            ),
            DisableUnit { unit } => format!(
                "systemctl disable {u}; systemctl reset-failed {u} 2>/dev/null; true",
                u = shell_quote(unit)
            ),
            CreateLogicalVolume {
                volume_group,
                thin_pool,
                name,
                size,
            } => match thin_pool {
                Some(pool) => format!(
                    "lvcreate --yes --type thin --virtualsize {} --thinpool {} --name {} {}",
                    shell_quote(size),
                    shell_quote(pool),
                    shell_quote(name),
                    shell_quote(volume_group)
                ),
                None => format!(
                    "lvcreate --yes --wipesignatures y --size {} --name {} {}",
                    shell_quote(size),
                    shell_quote(name),
                    shell_quote(volume_group)
                ),
            },
            RemoveLogicalVolume { volume_group, name } => {
                format!(
                    "lvremove --yes {}",
                    shell_quote(&format!("{volume_group}/{name}"))
                )
            }
            CreateMetadata { resource } => {
                format!("drbdadm create-md --force {}", shell_quote(resource))
            }
            Adjust { resource } => format!("drbdadm adjust {}", shell_quote(resource)),
            WaitConnected { resource, .. } | WaitSynced { resource, .. } => {
                format!(
                    "drbdsetup events2 --now --statistics {}",
                    shell_quote(resource)
                )
            }
            ForcePrimary { resource } => {
                format!("drbdadm primary --force {}", shell_quote(resource))
            }
            MakeFilesystem { device, fstype } => {
                let force = if fstype == "xfs" { "-f" } else { "-F" };
                format!(
                    "mkfs -t {} {force} {}",
                    shell_quote(fstype),
                    shell_quote(device)
                )
            }
            Down { resource, .. } => format!("drbdadm down {}", shell_quote(resource)),
            CreateDockerVolume {
                name,
                device,
                fstype,
                mount_options,
            } => {
                let mut cmd = format!(
                    "docker volume create --driver local --opt type={} --opt device={}",
                    shell_quote(fstype),
                    shell_quote(device)
                );
                if let Some(o) = mount_options {
                    cmd.push_str(&format!(" --opt o={}", shell_quote(o)));
                }
                cmd.push(' ');
                cmd.push_str(&shell_quote(name));
                cmd
            }
            RemoveDockerVolume { name } => format!("docker volume rm {}", shell_quote(name)),
            RemoveFile { path } => format!("rm -f {}", shell_quote(path)),
        }
    }

    /// Bytes fed to the command's standard input (the content of a file).
    pub fn stdin(&self) -> Option<&[u8]> {
        match self {
            Action::WriteFile { content, .. } => Some(content.as_bytes()),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Action::*;
        match self {
            InstallPackages { manager, packages } => {
                write!(
                    f,
                    "install packages with {manager:?}: {}",
                    packages.join(" ")
                )
            }
            KernelModulePreflight => f.write_str("load the DRBD 9 kernel module (preflight)"),
            WriteFile {
                path,
                mode,
                content,
            } => {
                write!(f, "write {path} (mode {mode:o}, {} bytes)", content.len())
            }
            CreateVolumeGroup {
                devices,
                volume_group,
                thin_pool,
            } => {
                write!(f, "create volume group {volume_group}")?;
                if let Some(p) = thin_pool {
                    write!(f, " with thin pool {p}")?;
                }
                write!(f, " on the first free device of {}", devices.join(" "))
            }
            ApplySysctl { path } => write!(f, "apply kernel settings from {path}"),
            DaemonReload => f.write_str("reload systemd units"),
            EnableUnit { unit, .. } => write!(f, "enable and start {unit}"),
            StopUnit { unit } => write!(f, "stop {unit}"),
            DisableUnit { unit } => write!(f, "disable {unit}"),
            CreateLogicalVolume {
                volume_group,
                thin_pool,
                name,
                size,
            } => match thin_pool {
                Some(p) => write!(
                    f,
                    "create thin volume {volume_group}/{name} of {size} in pool {p}"
                ),
                None => write!(f, "create logical volume {volume_group}/{name} of {size}"),
            },
            RemoveLogicalVolume { volume_group, name } => {
                write!(f, "remove logical volume {volume_group}/{name}")
            }
            CreateMetadata { resource } => write!(f, "create DRBD metadata of {resource}"),
            Adjust { resource } => write!(f, "bring {resource} in line with its resource file"),
            WaitConnected {
                resource,
                peers,
                timeout_secs,
            } => write!(
                f,
                "wait until {resource} is connected to {} (timeout {timeout_secs}s)",
                peers.join(", ")
            ),
            ForcePrimary { resource } => write!(f, "force {resource} primary (fresh volume)"),
            WaitSynced {
                resource,
                timeout_secs,
                ..
            } => write!(
                f,
                "wait until {resource} is in sync on every host (timeout {timeout_secs}s)"
            ),
            MakeFilesystem { device, fstype } => write!(f, "make {fstype} file system on {device}"),
            Down {
                resource, attempts, ..
            } => write!(f, "take {resource} down (up to {attempts} attempts)"),
            CreateDockerVolume {
                name,
                device,
                fstype,
                ..
            } => {
                write!(f, "create Docker volume {name} ({fstype} on {device})")
            }
            RemoveDockerVolume { name } => write!(f, "remove Docker volume {name}"),
            RemoveFile { path } => write!(f, "remove {path}"),
        }
    }
}

/// How the result of a check command is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DoneWhen {
    /// The step is done when the command exits 0.
    ExitZero,
    /// The command prints `drbdsetup events2 --now`; done when every peer
    /// is connected.
    Connected {
        /// Resource name.
        resource: String,
        /// Expected peers.
        peers: Vec<String>,
    },
    /// The command prints `drbdsetup events2 --now`; done when local and
    /// peer disks are in sync.
    Synced {
        /// Resource name.
        resource: String,
        /// Whether this host keeps a disk.
        local_disk: bool,
        /// Expected peer states.
        peers: Vec<PeerExpectation>,
    },
}

/// A check: a command whose result says whether a step is already done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Shell command run on the host; it changes nothing.
    pub command: String,
    /// How its output is read.
    pub done_when: DoneWhen,
}

impl Check {
    /// A check that is done when `command` exits 0.
    pub fn exit_zero(command: impl Into<String>) -> Self {
        Check {
            command: command.into(),
            done_when: DoneWhen::ExitZero,
        }
    }

    /// Whether `output` of [`Check::command`] says the step is done.
    pub fn is_done(&self, output: &ExecOutput) -> bool {
        match &self.done_when {
            DoneWhen::ExitZero => output.success(),
            DoneWhen::Connected { resource, peers } => {
                output.success()
                    && missing_connections(&output.stdout_text(), resource, peers).is_empty()
            }
            DoneWhen::Synced {
                resource,
                local_disk,
                peers,
            } => {
                output.success()
                    && missing_sync(&output.stdout_text(), resource, *local_disk, peers).is_empty()
            }
        }
    }
}

fn resource_of(events: &str, resource: &str) -> Option<ResourceStatus> {
    parse_events2(events)
        .ok()?
        .into_iter()
        .find(|r| r.name == resource)
}

/// Peers (with their last state) not yet connected, read from
/// `drbdsetup events2 --now` output.
pub fn missing_connections(events: &str, resource: &str, peers: &[String]) -> Vec<String> {
    let Some(res) = resource_of(events, resource) else {
        return peers
            .iter()
            .map(|p| format!("{p} (resource {resource} is not up locally)"))
            .collect();
    };
    peers
        .iter()
        .filter_map(|p| match res.connections.iter().find(|c| &c.peer == p) {
            Some(c) if c.connection == "Connected" => None,
            Some(c) => Some(format!("{p} (connection {})", c.connection)),
            None => Some(format!("{p} (no connection configured)")),
        })
        .collect()
}

/// Disks (local or peer, with their last state) not yet in sync, read from
/// `drbdsetup events2 --now` output.
pub fn missing_sync(
    events: &str,
    resource: &str,
    local_disk: bool,
    peers: &[PeerExpectation],
) -> Vec<String> {
    let Some(res) = resource_of(events, resource) else {
        return vec![format!("local (resource {resource} is not up)")];
    };
    let mut missing = Vec::new();
    let local = res.devices.first().map(|d| d.disk.clone());
    let want_local = if local_disk {
        DiskState::UpToDate
    } else {
        DiskState::Diskless
    };
    match local {
        Some(d) if d == want_local => {}
        Some(d) => missing.push(format!("local (disk {d}, want {want_local})")),
        None => missing.push("local (no device)".to_string()),
    }
    for p in peers {
        let want = if p.has_disk {
            DiskState::UpToDate
        } else {
            DiskState::Diskless
        };
        let conn = res.connections.iter().find(|c| c.peer == p.peer);
        let pd = conn.and_then(|c| c.peer_devices.first());
        match (conn, pd) {
            (Some(_), Some(pd)) if pd.peer_disk == want => {}
            (Some(c), Some(pd)) => {
                let mut s = format!(
                    "{} (peer-disk {}, replication {}",
                    p.peer, pd.peer_disk, pd.replication
                );
                if let Some(done) = pd.done {
                    s.push_str(&format!(", {done:.1}% done"));
                }
                if c.connection != "Connected" {
                    s.push_str(&format!(", connection {}", c.connection));
                }
                s.push(')');
                missing.push(s);
            }
            (Some(c), None) => missing.push(format!(
                "{} (connection {}, no peer device)",
                p.peer, c.connection
            )),
            (None, _) => missing.push(format!("{} (no connection configured)", p.peer)),
        }
    }
    missing
}

/// One step of a plan on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Steps of round `n` run on every host before any step of round
    /// `n + 1` starts.
    pub round: u32,
    /// What to do.
    pub action: Action,
    /// How to tell that it is already done.
    pub check: Check,
}

impl Step {
    /// The step doing `action` in `round`, done when `check` holds.
    pub fn new(round: u32, action: Action, check: Check) -> Self {
        Step {
            round,
            action,
            check,
        }
    }
}

/// The steps for one host, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPlan {
    /// Host name.
    pub host: String,
    /// Steps in order of rounds.
    pub steps: Vec<Step>,
}

/// A plan: steps per host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// What the plan does, e.g. `create volume pdnsdb_data`.
    pub title: String,
    /// Host plans, sorted by host name; hosts without steps are left out.
    pub hosts: Vec<HostPlan>,
}

impl Plan {
    /// A plan from steps given as `(host, step)` pairs.
    pub fn from_steps(title: impl Into<String>, steps: Vec<(String, Step)>) -> Self {
        let mut hosts: Vec<HostPlan> = Vec::new();
        for (host, step) in steps {
            match hosts.iter_mut().find(|h| h.host == host) {
                Some(h) => h.steps.push(step),
                None => hosts.push(HostPlan {
                    host,
                    steps: vec![step],
                }),
            }
        }
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        for h in &mut hosts {
            h.steps.sort_by_key(|s| s.round);
        }
        hosts.retain(|h| !h.steps.is_empty());
        Plan {
            title: title.into(),
            hosts,
        }
    }

    /// The part of the plan for `host` alone (empty when it has no steps).
    ///
    /// Plans without cross-host waits, such as host preparation, can run
    /// host by host so that one failing host does not stop the others.
    pub fn for_host(&self, host: &str) -> Plan {
        Plan {
            title: self.title.clone(),
            hosts: self
                .hosts
                .iter()
                .filter(|h| h.host == host)
                .cloned()
                .collect(),
        }
    }

    /// Whether nothing is left to do.
    pub fn is_empty(&self) -> bool {
        self.hosts.iter().all(|h| h.steps.is_empty())
    }

    /// Number of steps over all hosts.
    pub fn len(&self) -> usize {
        self.hosts.iter().map(|h| h.steps.len()).sum()
    }

    /// The distinct rounds, ascending.
    pub fn rounds(&self) -> Vec<u32> {
        let mut r: Vec<u32> = self
            .hosts
            .iter()
            .flat_map(|h| h.steps.iter().map(|s| s.round))
            .collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// The plan without the steps whose check is done according to
    /// `observe(host, check)`; a step whose check result is unknown (`None`)
    /// is kept.
    ///
    /// Checks are read against one observation of the current state, as in
    /// any check mode: a step that only becomes necessary because an
    /// earlier step changes something may be left out here; the executor
    /// evaluates each check just before its step and does not have this
    /// limitation.
    pub fn pending<F>(&self, mut observe: F) -> Plan
    where
        F: FnMut(&str, &Check) -> Option<ExecOutput>,
    {
        let hosts = self
            .hosts
            .iter()
            .map(|h| HostPlan {
                host: h.host.clone(),
                steps: h
                    .steps
                    .iter()
                    .filter(|s| {
                        !observe(&h.host, &s.check).is_some_and(|out| s.check.is_done(&out))
                    })
                    .cloned()
                    .collect(),
            })
            .filter(|h| !h.steps.is_empty())
            .collect();
        Plan {
            title: self.title.clone(),
            hosts,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan: {}", self.title)?;
        if self.is_empty() {
            return writeln!(f, "  nothing to change");
        }
        for h in &self.hosts {
            writeln!(f, "  {}:", h.host)?;
            for s in &h.steps {
                writeln!(f, "    [{}] {}", s.round, s.action)?;
                let label = match s.action {
                    Action::WaitConnected { .. } | Action::WaitSynced { .. } => "poll: ",
                    _ => "run:  ",
                };
                writeln!(f, "        {label} {}", s.action.command())?;
                writeln!(f, "        check: {}", s.check.command)?;
            }
        }
        Ok(())
    }
}

/// Builds the create-VG script: picks the first existing candidate that is
/// not in use (no partitions, no signature, not a PV), makes it a PV, the
/// volume group and the thin pool. When every existing candidate has
/// partitions, the space left after the last partition of the first one
/// becomes a new partition (flag `lvm`) for the volume group, as
/// hive-builder did (`parted`). Fails with a clear message listing what
/// each candidate looked like when none is usable.
fn create_vg_script(devices: &[String], vg: &str, pool: Option<&str>) -> String {
    let list = shell_join(devices);
    let vgq = shell_quote(vg);
    let mut s = format!(
        "set -e; if ! vgs {vgq} >/dev/null 2>&1; then dev=''; seen=''; split=''; \
for d in {list}; do \
if [ ! -b \"$d\" ]; then seen=\"$seen $d:absent\"; continue; fi; \
real=$(readlink -f \"$d\"); \
if [ -n \"$(lsblk -n -o NAME \"$real\" | tail -n +2)\" ]; then seen=\"$seen $d:has-partitions\"; [ -n \"$split\" ] || split=\"$real\"; continue; fi; \
if [ -n \"$(blkid -p -o value -s TYPE \"$real\" 2>/dev/null)\" ]; then seen=\"$seen $d:has-signature\"; continue; fi; \
dev=\"$real\"; break; done; \
if [ -z \"$dev\" ] && [ -n \"$split\" ]; then \
num=$(( $(lsblk -n -o NAME \"$split\" | tail -n +2 | wc -l) + 1 )); \
start=$(parted -s -m \"$split\" unit MiB print | awk -F: '$1 ~ /^[0-9]+$/ {{ e = $3 }} END {{ sub(/MiB$/, \"\", e); print int(e) + 1 }}'); \
out=$(parted -s -a optimal \"$split\" mkpart primary \"${{start}}MiB\" 100% set \"$num\" lvm on 2>&1) || case \"$out\" in *'unable to inform the kernel'*) ;; \
*) echo \"no free mirrored disk for volume group {vg}, and no room for a partition after the last one of $split: $out; candidates:$seen\" >&2; exit 3 ;; esac; \
partprobe \"$split\" 2>/dev/null || true; udevadm settle 2>/dev/null || true; \
case \"$split\" in *[0-9]) part=\"${{split}}p$num\" ;; *) part=\"$split$num\" ;; esac; \
i=0; while [ ! -b \"$part\" ] && [ \"$i\" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done; \
if [ ! -b \"$part\" ]; then echo \"partition $part was made on $split but the kernel does not show it: reboot, then run hive setup-hosts -T drbd again\" >&2; exit 3; fi; \
dev=\"$part\"; fi; \
if [ -z \"$dev\" ]; then echo \"no free mirrored disk for volume group {vg}; candidates:$seen\" >&2; exit 3; fi; \
pvcreate --yes \"$dev\"; vgcreate {vgq} \"$dev\"; fi"
    );
    if let Some(pool) = pool {
        s.push_str(&format!(
            "; lvs {vgq}/{p} >/dev/null 2>&1 || lvcreate --yes --type thin-pool --chunksize 1024K --zero n --extents 95%FREE --name {p} {vgq}",
            p = shell_quote(pool)
        ));
    }
    s
}
