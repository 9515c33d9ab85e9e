//! Volume plans: build and destroy one DRBD volume on every hive of a stage.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::{Action, Check, DoneWhen, PeerExpectation, Plan, Step};
use crate::{DrbdError, DrbdVolume, Stage, StageHive, render_resource};
use hive_model::shell_quote;

/// Options of the volume plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolumePlanOptions {
    /// Preferred host to force primary and format on (`first_hive`); used
    /// when it keeps a disk for the volume, otherwise the first hive (by
    /// name) that does.
    pub first_hive: Option<String>,
    /// `no_format`: never force primary nor make a file system (rebuilding
    /// a host next to surviving data).
    pub no_format: bool,
    /// Timeout of the wait for all peers to connect.
    pub connect_timeout_secs: u64,
    /// Timeout of each wait for the sync to finish.
    pub sync_timeout_secs: u64,
    /// Attempts of `drbdadm down` (a peer may refuse the state change at
    /// first).
    pub down_attempts: u32,
    /// Pause between those attempts.
    pub down_delay_secs: u64,
    /// Directory of DRBD resource files on the hosts (`/etc/drbd.d`).
    pub resource_dir: String,
    /// Hives left out (`-x SERVER`): no steps there, and nobody waits for
    /// them; they stay in the resource file.
    pub exclude_hosts: Vec<String>,
}

impl VolumePlanOptions {
    /// Path of the resource file of `volume` on the hosts.
    pub fn resource_file(&self, volume: &DrbdVolume) -> String {
        format!(
            "{}/{}.res",
            self.resource_dir.trim_end_matches('/'),
            volume.name
        )
    }

    /// Whether the plan leaves `host` out.
    pub fn excludes(&self, host: &str) -> bool {
        self.exclude_hosts.iter().any(|h| h == host)
    }
}

impl Default for VolumePlanOptions {
    fn default() -> Self {
        VolumePlanOptions {
            first_hive: None,
            no_format: false,
            connect_timeout_secs: 300,
            sync_timeout_secs: 3600,
            down_attempts: 10,
            down_delay_secs: 5,
            resource_dir: "/etc/drbd.d".into(),
            exclude_hosts: Vec::new(),
        }
    }
}

/// Check that a file has exactly `content`.
pub(crate) fn file_check(path: &str, content: &str) -> Check {
    let hash = Sha256::digest(content.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    Check::exit_zero(format!(
        "echo {} | sha256sum --check --status",
        shell_quote(&format!("{hex}  {path}"))
    ))
}

/// The host that forces primary and makes the file system, if any.
pub fn first_disk_host<'a>(
    stage: &'a Stage,
    volume: &DrbdVolume,
    options: &VolumePlanOptions,
) -> Option<&'a StageHive> {
    if options.no_format {
        return None;
    }
    if let Some(pref) = options.first_hive.as_deref().and_then(|n| stage.hive(n)) {
        if volume.has_disk_on(pref) && !options.excludes(&pref.name) {
            return Some(pref);
        }
    }
    stage
        .hives()
        .iter()
        .find(|h| volume.has_disk_on(h) && !options.excludes(&h.name))
}

fn fs_check(volume: &DrbdVolume) -> String {
    format!(
        "test \"$(blkid -p -o value -s TYPE {} 2>/dev/null)\" = {}",
        volume.device_path(),
        volume.fstype
    )
}

fn unit_enabled(volume: &DrbdVolume) -> String {
    format!(
        "systemctl is-enabled -q {} 2>/dev/null",
        shell_quote(&volume.unit())
    )
}

/// The plan that builds `volume` on every hive of `stage`, in the order
/// hive-builder used (so existing sites behave the same):
///
/// 1. write the resource file;
/// 2. create the backing (thin) logical volume where the volume has a disk;
/// 3. create DRBD metadata where it is missing;
/// 4. adjust the resource to its file;
/// 5. wait until every peer is connected;
/// 6. force primary on the first disk host, only on a fresh volume: its
///    unit never enabled there, no current disk there or on a connected
///    peer, no file system;
/// 7. wait for the sync; 8. make the file system (same conditions as 6);
/// 9. wait for the sync again; 10. take the resource down unless its unit
///    runs;
/// 11. enable and start `drbd-resource@<volume>.service`;
/// 12. create the Docker `local` volume on `/dev/drbd<id>`.
///
/// Every step has a check, so on a healthy volume every check reports done
/// and [`Plan::pending`] is empty.
pub fn create_volume_plan(
    stage: &Stage,
    volume: &DrbdVolume,
    options: &VolumePlanOptions,
) -> Result<Plan, DrbdError> {
    let resource_text = render_resource(stage, volume)?;
    if let Some(f) = &options.first_hive {
        if stage.hive(f).is_none() {
            return Err(DrbdError::InvalidVolume {
                volume: volume.name.clone(),
                key: "first_hive".into(),
                message: format!("'{f}' is not a hive of the stage"),
            });
        }
    }
    check_excludes(stage, volume, options)?;
    let first = first_disk_host(stage, volume, options).map(|h| h.name.clone());
    let mut steps = Vec::new();
    for hive in stage.hives().iter().filter(|h| !options.excludes(&h.name)) {
        let on = HiveOfVolume::new(stage, volume, options, hive, first.as_deref());
        let host_steps = [
            on.storage_steps(&resource_text),
            on.replication_steps(),
            on.service_steps(),
        ];
        steps.extend(
            host_steps
                .into_iter()
                .flatten()
                .map(|step| (hive.name.clone(), step)),
        );
    }
    Ok(Plan::from_steps(
        format!("create volume {}", volume.name),
        steps,
    ))
}

/// One hive of a volume that [`create_volume_plan`] builds: what its steps
/// need to know about the hive and its peers.
struct HiveOfVolume<'a> {
    volume: &'a DrbdVolume,
    options: &'a VolumePlanOptions,
    /// The resource name (the volume's name).
    res: String,
    /// Whether the volume has a disk on this hive.
    disk: bool,
    /// The other hives of the plan.
    peers: Vec<String>,
    /// What each peer's disk should end up as.
    expectations: Vec<PeerExpectation>,
    /// Whether this hive forces primary and makes the file system.
    is_first: bool,
    /// The command that reads the resource's status.
    status: String,
}

impl<'a> HiveOfVolume<'a> {
    fn new(
        stage: &Stage,
        volume: &'a DrbdVolume,
        options: &'a VolumePlanOptions,
        hive: &StageHive,
        first: Option<&str>,
    ) -> Self {
        let others: Vec<&StageHive> = stage
            .hives()
            .iter()
            .filter(|p| p.name != hive.name && !options.excludes(&p.name))
            .collect();
        HiveOfVolume {
            volume,
            options,
            res: volume.name.clone(),
            disk: volume.has_disk_on(hive),
            peers: others.iter().map(|p| p.name.clone()).collect(),
            expectations: others
                .iter()
                .map(|p| PeerExpectation {
                    peer: p.name.clone(),
                    has_disk: volume.has_disk_on(p),
                })
                .collect(),
            is_first: first == Some(hive.name.as_str()),
            status: crate::status::status_command(&volume.name),
        }
    }

    /// Rounds 1 to 4: the resource file, the logical volume and the DRBD
    /// metadata where the volume has a disk, and the adjusted resource.
    fn storage_steps(&self, resource_text: &str) -> Vec<Step> {
        let (volume, res) = (self.volume, &self.res);
        let mut steps = vec![Step::new(
            1,
            Action::WriteFile {
                path: self.options.resource_file(volume),
                content: resource_text.to_string(),
                mode: 0o644,
            },
            file_check(&self.options.resource_file(volume), resource_text),
        )];
        if self.disk {
            steps.push(Step::new(
                2,
                Action::CreateLogicalVolume {
                    volume_group: volume.volume_group.clone(),
                    thin_pool: volume.thin_pool.clone(),
                    name: res.clone(),
                    size: volume.size.clone(),
                },
                Check::exit_zero(format!(
                    "lvs {} >/dev/null 2>&1",
                    shell_quote(&format!("{}/{}", volume.volume_group, res))
                )),
            ));
            steps.push(Step::new(
                3,
                Action::CreateMetadata {
                    resource: res.clone(),
                },
                Check::exit_zero(format!(
                    "drbdadm dstate {r} 2>/dev/null | grep -Eq '^(UpToDate|Consistent|Inconsistent|Outdated)' \
                     || drbdadm get-gi {r} >/dev/null 2>&1",
                    r = shell_quote(res)
                )),
            ));
        }
        steps.push(Step::new(
            4,
            Action::Adjust {
                resource: res.clone(),
            },
            Check::exit_zero(format!(
                "out=$(drbdadm -d adjust {} 2>/dev/null) && test -z \"$out\"",
                shell_quote(res)
            )),
        ));
        steps
    }

    /// Rounds 5 to 9: the wait for the peers, and on the first disk host of
    /// a fresh volume the forced primary and the file system, with the
    /// waits for the sync around them.
    fn replication_steps(&self) -> Vec<Step> {
        let (volume, res) = (self.volume, &self.res);
        let mut steps = Vec::new();
        if !self.peers.is_empty() {
            steps.push(Step::new(
                5,
                Action::WaitConnected {
                    resource: res.clone(),
                    peers: self.peers.clone(),
                    timeout_secs: self.options.connect_timeout_secs,
                },
                Check {
                    command: self.status.clone(),
                    done_when: DoneWhen::Connected {
                        resource: res.clone(),
                        peers: self.peers.clone(),
                    },
                },
            ));
        }
        if self.is_first {
            steps.push(Step::new(
                6,
                Action::ForcePrimary {
                    resource: res.clone(),
                },
                // Never when the data exists anywhere: the unit ran here
                // before, this disk is current, a connected peer has data
                // (e.g. this host's disk was replaced), or a file system is
                // there already.
                Check::exit_zero(format!(
                    "{} || drbdadm dstate {r} 2>/dev/null | grep -q '^UpToDate' \
                     || drbdsetup events2 --now {r} 2>/dev/null | grep -Eq ' peer-disk:(UpToDate|Consistent|Outdated)( |$)' \
                     || {}",
                    unit_enabled(volume),
                    fs_check(volume),
                    r = shell_quote(res),
                )),
            ));
        }
        steps.push(self.sync_step(7));
        if self.is_first {
            steps.push(Step::new(
                8,
                Action::MakeFilesystem {
                    device: volume.device_path(),
                    fstype: volume.fstype.to_string(),
                },
                Check::exit_zero(format!("{} || {}", unit_enabled(volume), fs_check(volume))),
            ));
            steps.push(self.sync_step(9));
        }
        steps
    }

    /// The wait for the sync, in `round`.
    fn sync_step(&self, round: u32) -> Step {
        Step::new(
            round,
            Action::WaitSynced {
                resource: self.res.clone(),
                local_disk: self.disk,
                peers: self.expectations.clone(),
                timeout_secs: self.options.sync_timeout_secs,
            },
            Check {
                command: self.status.clone(),
                done_when: DoneWhen::Synced {
                    resource: self.res.clone(),
                    local_disk: self.disk,
                    peers: self.expectations.clone(),
                },
            },
        )
    }

    /// Rounds 10 to 12: the resource down unless its unit runs, the unit
    /// enabled and started, and the Docker volume on the device.
    fn service_steps(&self) -> Vec<Step> {
        let (volume, res) = (self.volume, &self.res);
        let mut want = format!("local {} {}", volume.fstype, volume.device_path());
        let mut format = "{{.Driver}} {{.Options.type}} {{.Options.device}}".to_string();
        if let Some(o) = &volume.mount_options {
            want.push(' ');
            want.push_str(o);
            format.push_str(" {{.Options.o}}");
        }
        vec![
            Step::new(
                10,
                Action::Down {
                    resource: res.clone(),
                    attempts: self.options.down_attempts,
                    delay_secs: self.options.down_delay_secs,
                },
                Check::exit_zero(format!(
                    "systemctl is-active -q {}",
                    shell_quote(&volume.unit())
                )),
            ),
            Step::new(
                11,
                Action::EnableUnit {
                    unit: volume.unit(),
                    restart: false,
                },
                Check::exit_zero(format!(
                    "systemctl is-enabled -q {u} && systemctl is-active -q {u}",
                    u = shell_quote(&volume.unit())
                )),
            ),
            Step::new(
                12,
                Action::CreateDockerVolume {
                    name: res.clone(),
                    device: volume.device_path(),
                    fstype: volume.fstype.to_string(),
                    mount_options: volume.mount_options.clone(),
                },
                Check::exit_zero(format!(
                    "test \"$(docker volume inspect --format {} {} 2>/dev/null)\" = {}",
                    shell_quote(&format),
                    shell_quote(res),
                    shell_quote(&want)
                )),
            ),
        ]
    }
}

/// The plan that removes `volume` from every hive of `stage`: the Docker
/// volume (refused by Docker while a container uses it), the unit, the DRBD
/// resource, the logical volume and the resource file. The unit's failed
/// state is reset so monitoring does not keep reporting it.
pub fn destroy_volume_plan(
    stage: &Stage,
    volume: &DrbdVolume,
    options: &VolumePlanOptions,
) -> Result<Plan, DrbdError> {
    volume.validate(stage)?;
    check_excludes(stage, volume, options)?;
    let res = volume.name.clone();
    let unit = shell_quote(&volume.unit());
    let mut steps = Vec::new();
    for hive in stage.hives().iter().filter(|h| !options.excludes(&h.name)) {
        let host = hive.name.clone();
        let mut push = |round: u32, action: Action, check: Check| {
            steps.push((host.clone(), Step::new(round, action, check)))
        };
        push(
            1,
            Action::RemoveDockerVolume { name: res.clone() },
            Check::exit_zero(format!(
                "! docker volume inspect {} >/dev/null 2>&1",
                shell_quote(&res)
            )),
        );
        push(
            2,
            Action::StopUnit {
                unit: volume.unit(),
            },
            Check::exit_zero(format!("! systemctl is-active -q {unit}")),
        );
        push(
            3,
            Action::Down {
                resource: res.clone(),
                attempts: options.down_attempts,
                delay_secs: options.down_delay_secs,
            },
            Check::exit_zero(format!(
                "! drbdsetup status {} >/dev/null 2>&1",
                shell_quote(&res)
            )),
        );
        push(
            4,
            Action::DisableUnit {
                unit: volume.unit(),
            },
            Check::exit_zero(format!("! systemctl is-enabled -q {unit} 2>/dev/null")),
        );
        // On every hive: the disk may have been there under an older definition.
        push(
            5,
            Action::RemoveLogicalVolume {
                volume_group: volume.volume_group.clone(),
                name: res.clone(),
            },
            Check::exit_zero(format!(
                "! lvs {} >/dev/null 2>&1",
                shell_quote(&format!("{}/{}", volume.volume_group, res))
            )),
        );
        push(
            6,
            Action::RemoveFile {
                path: options.resource_file(volume),
            },
            Check::exit_zero(format!(
                "test ! -e {}",
                shell_quote(&options.resource_file(volume))
            )),
        );
    }
    Ok(Plan::from_steps(
        format!("destroy volume {}", volume.name),
        steps,
    ))
}

fn check_excludes(
    stage: &Stage,
    volume: &DrbdVolume,
    options: &VolumePlanOptions,
) -> Result<(), DrbdError> {
    for h in &options.exclude_hosts {
        if stage.hive(h).is_none() {
            let names: Vec<&str> = stage.hives().iter().map(|h| h.name.as_str()).collect();
            return Err(DrbdError::InvalidVolume {
                volume: volume.name.clone(),
                key: "exclude_hosts".into(),
                message: format!(
                    "'{h}' is not a hive of the stage; hives are: {}",
                    names.join(", ")
                ),
            });
        }
    }
    Ok(())
}
