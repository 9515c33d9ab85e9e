//! Plain input types: the hives of a stage and the DRBD volumes to build.
//!
//! The CLI maps the inventory model into these; this crate does not read the
//! inventory itself.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::DrbdError;

/// First TCP port used by DRBD resources; a volume listens on
/// `BASE_PORT + device_id`.
pub const BASE_PORT: u16 = 7000;
/// Highest device id: ports stay within the firewall opening 7000–7999.
pub const MAX_DEVICE_ID: u16 = 999;
/// Default LVM volume group of mirrored disks.
pub const DEFAULT_VOLUME_GROUP: &str = "drbdvg";
/// Default LVM thin pool inside [`DEFAULT_VOLUME_GROUP`].
pub const DEFAULT_THIN_POOL: &str = "drbdpool";

/// One container host ("hive") of the stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageHive {
    /// Inventory host name, e.g. `s-hive0.pdns`; also the DRBD node name
    /// (it must equal the host's `uname -n`).
    pub name: String,
    /// Address DRBD replicates over.
    pub private_ip: IpAddr,
    /// `hive_no_mirrored_device`: the host has no mirrored disk, so every
    /// volume is diskless there.
    #[serde(default)]
    pub no_mirrored_device: bool,
}

impl StageHive {
    /// A hive with a mirrored disk.
    ///
    /// ```
    /// let h = hive_drbd::StageHive::new("hive0", "192.168.0.10".parse().unwrap());
    /// assert!(!h.no_mirrored_device);
    /// ```
    pub fn new(name: impl Into<String>, private_ip: IpAddr) -> Self {
        StageHive {
            name: name.into(),
            private_ip,
            no_mirrored_device: false,
        }
    }

    /// The same hive without a mirrored disk.
    pub fn without_mirrored_device(mut self) -> Self {
        self.no_mirrored_device = true;
        self
    }
}

/// The hives of one stage, kept sorted by name (the order of DRBD node ids).
/// Serialised as the list of hives; deserialising validates like
/// [`Stage::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<StageHive>", into = "Vec<StageHive>")]
pub struct Stage {
    hives: Vec<StageHive>,
}

impl Stage {
    /// Validates and sorts the hives: names must be non-empty, unique and
    /// usable as DRBD host names; private addresses must be unique.
    pub fn new(mut hives: Vec<StageHive>) -> Result<Self, DrbdError> {
        if hives.is_empty() {
            return Err(DrbdError::InvalidStage {
                key: "hives".into(),
                message: "a stage needs at least one hive".into(),
            });
        }
        hives.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, h) in hives.iter().enumerate() {
            if !is_host_name(&h.name) {
                return Err(DrbdError::InvalidStage {
                    key: "hives.name".into(),
                    message: format!(
                        "'{}' is not a host name (letters, digits, '-', '_' and '.')",
                        h.name
                    ),
                });
            }
            if i > 0 && hives[i - 1].name == h.name {
                return Err(DrbdError::InvalidStage {
                    key: "hives.name".into(),
                    message: format!("hive '{}' is listed twice", h.name),
                });
            }
            if let Some(other) = hives[..i].iter().find(|o| o.private_ip == h.private_ip) {
                return Err(DrbdError::InvalidStage {
                    key: "hives.private_ip".into(),
                    message: format!(
                        "hives '{}' and '{}' share the private address {}",
                        other.name, h.name, h.private_ip
                    ),
                });
            }
        }
        Ok(Stage { hives })
    }

    /// Hives sorted by name; the index is the DRBD node id.
    pub fn hives(&self) -> &[StageHive] {
        &self.hives
    }

    /// The hive of that name.
    pub fn hive(&self, name: &str) -> Option<&StageHive> {
        self.hives.iter().find(|h| h.name == name)
    }
}

impl TryFrom<Vec<StageHive>> for Stage {
    type Error = DrbdError;

    fn try_from(hives: Vec<StageHive>) -> Result<Self, DrbdError> {
        Stage::new(hives)
    }
}

impl From<Stage> for Vec<StageHive> {
    fn from(stage: Stage) -> Self {
        stage.hives
    }
}

/// File system made on a DRBD device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    /// XFS (recommended for large volumes).
    Xfs,
    /// ext4 (recommended for volumes of 100M and less).
    Ext4,
}

impl FsType {
    /// Name as used by `mkfs.<name>`, `blkid` and Docker's `type` option.
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Xfs => "xfs",
            FsType::Ext4 => "ext4",
        }
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_vg() -> String {
    DEFAULT_VOLUME_GROUP.to_string()
}

fn default_pool() -> Option<String> {
    Some(DEFAULT_THIN_POOL.to_string())
}

/// A DRBD-replicated volume (a service volume with a `drbd` attribute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrbdVolume {
    /// Volume name: DRBD resource name, LV name and Docker volume name.
    pub name: String,
    /// Device id: minor of `/dev/drbd<id>`, port `7000 + id`.
    pub device_id: u16,
    /// LVM size with unit, e.g. `500M`, `20G`.
    pub size: String,
    /// File system to make on the device.
    pub fstype: FsType,
    /// Hives on which this volume has no local disk.
    #[serde(default)]
    pub diskless: Vec<String>,
    /// Options: LVM volume group of the backing volume (default `drbdvg`).
    #[serde(default = "default_vg")]
    pub volume_group: String,
    /// Options: thin pool in the volume group (default `drbdpool`); `None`
    /// makes a plain (thick) logical volume.
    #[serde(default = "default_pool")]
    pub thin_pool: Option<String>,
    /// Options: mount options passed to Docker's `local` driver as `o`.
    #[serde(default)]
    pub mount_options: Option<String>,
}

impl DrbdVolume {
    /// A volume with default volume group, thin pool, no diskless hosts and
    /// no mount options.
    ///
    /// ```
    /// use hive_drbd::{DrbdVolume, FsType};
    /// let v = DrbdVolume::new("pdnsdb_data", 5, "500M", FsType::Xfs);
    /// assert_eq!(v.device_path(), "/dev/drbd5");
    /// assert_eq!(v.port(), 7005);
    /// ```
    pub fn new(
        name: impl Into<String>,
        device_id: u16,
        size: impl Into<String>,
        fstype: FsType,
    ) -> Self {
        DrbdVolume {
            name: name.into(),
            device_id,
            size: size.into(),
            fstype,
            diskless: Vec::new(),
            volume_group: default_vg(),
            thin_pool: default_pool(),
            mount_options: None,
        }
    }

    /// Adds hives without a local disk for this volume.
    pub fn with_diskless<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.diskless.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// The DRBD block device, `/dev/drbd<id>`.
    pub fn device_path(&self) -> String {
        format!("/dev/drbd{}", self.device_id)
    }

    /// TCP port of the resource.
    pub fn port(&self) -> u16 {
        BASE_PORT + self.device_id
    }

    /// The backing logical volume, `/dev/<vg>/<name>`.
    pub fn backing_path(&self) -> String {
        format!("/dev/{}/{}", self.volume_group, self.name)
    }

    /// The systemd unit that brings the resource up at boot.
    pub fn unit(&self) -> String {
        format!("drbd-resource@{}.service", self.name)
    }

    /// Whether `hive` keeps a local copy of this volume.
    pub fn has_disk_on(&self, hive: &StageHive) -> bool {
        !hive.no_mirrored_device && !self.diskless.iter().any(|d| d == &hive.name)
    }

    /// Checks the volume against the stage: name, device id, size, diskless
    /// hosts known and at least one hive keeping a disk.
    pub fn validate(&self, stage: &Stage) -> Result<(), DrbdError> {
        let err = |key: &str, message: String| DrbdError::InvalidVolume {
            volume: self.name.clone(),
            key: key.into(),
            message,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            || self.name.starts_with(['-', '.'])
        {
            return Err(err(
                "name",
                format!(
                    "'{}' must be letters, digits, '_', '-' or '.', not starting with '-' or '.'",
                    self.name
                ),
            ));
        }
        if self.device_id > MAX_DEVICE_ID {
            return Err(err(
                "device_id",
                format!(
                    "{} is out of range: 0..={MAX_DEVICE_ID} (port 7000 + id must stay in 7000-7999)",
                    self.device_id
                ),
            ));
        }
        if !is_lvm_size(&self.size) {
            return Err(err(
                "size",
                format!(
                    "'{}' is not a size: a number with a unit K, M, G or T, e.g. 500M or 20G",
                    self.size
                ),
            ));
        }
        for (key, value) in [
            ("volume_group", Some(&self.volume_group)),
            ("thin_pool", self.thin_pool.as_ref()),
        ] {
            if let Some(v) = value {
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
                {
                    return Err(err(key, format!("'{v}' is not an LVM name")));
                }
            }
        }
        if let Some(o) = &self.mount_options {
            if o.contains(['\'', '\n']) {
                return Err(err(
                    "mount_options",
                    "must not contain quotes or newlines".into(),
                ));
            }
        }
        for d in &self.diskless {
            if stage.hive(d).is_none() {
                let names: Vec<&str> = stage.hives().iter().map(|h| h.name.as_str()).collect();
                return Err(err(
                    "diskless",
                    format!(
                        "'{d}' is not a hive of the stage; hives are: {}",
                        names.join(", ")
                    ),
                ));
            }
        }
        if !stage.hives().iter().any(|h| self.has_disk_on(h)) {
            return Err(err(
                "diskless",
                "every hive is diskless for this volume (diskless list or hive_no_mirrored_device); at least one must keep a disk".into(),
            ));
        }
        Ok(())
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn is_lvm_size(s: &str) -> bool {
    let Some(unit) = s.chars().last() else {
        return false;
    };
    let digits = &s[..s.len() - unit.len_utf8()];
    matches!(unit.to_ascii_uppercase(), 'K' | 'M' | 'G' | 'T')
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits.chars().any(|c| c != '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> Stage {
        Stage::new(vec![
            StageHive::new("hive1", "10.0.0.2".parse().unwrap()),
            StageHive::new("hive0", "10.0.0.1".parse().unwrap()),
        ])
        .unwrap()
    }

    #[test]
    fn stage_sorted_and_unique() {
        assert_eq!(stage().hives()[0].name, "hive0");
        let dup = Stage::new(vec![
            StageHive::new("a", "10.0.0.1".parse().unwrap()),
            StageHive::new("a", "10.0.0.2".parse().unwrap()),
        ]);
        assert!(dup.unwrap_err().to_string().contains("listed twice"));
        let ip = Stage::new(vec![
            StageHive::new("a", "10.0.0.1".parse().unwrap()),
            StageHive::new("b", "10.0.0.1".parse().unwrap()),
        ]);
        assert!(
            ip.unwrap_err()
                .to_string()
                .contains("share the private address")
        );
    }

    #[test]
    fn volume_validation() {
        let s = stage();
        let check = |v: DrbdVolume, want: Option<&str>| {
            let got = v.validate(&s).err().map(|e| e.to_string());
            match (got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!(g.contains(w), "{g} should contain {w}"),
                (g, w) => panic!("got {g:?}, want {w:?}"),
            }
        };
        check(DrbdVolume::new("v", 1, "500M", FsType::Xfs), None);
        check(
            DrbdVolume::new("v", 1000, "500M", FsType::Xfs),
            Some("invalid device_id"),
        );
        check(
            DrbdVolume::new("v", 1, "500", FsType::Xfs),
            Some("invalid size"),
        );
        check(
            DrbdVolume::new("v", 1, "0G", FsType::Xfs),
            Some("invalid size"),
        );
        check(
            DrbdVolume::new("a b", 1, "5G", FsType::Xfs),
            Some("invalid name"),
        );
        check(
            DrbdVolume::new("v", 1, "5G", FsType::Xfs).with_diskless(["hive9"]),
            Some("'hive9' is not a hive of the stage; hives are: hive0, hive1"),
        );
        check(
            DrbdVolume::new("v", 1, "5G", FsType::Xfs).with_diskless(["hive0", "hive1"]),
            Some("at least one must keep a disk"),
        );
    }

    #[test]
    fn stage_from_json_is_validated() {
        let s: Stage = serde_json::from_str(
            r#"[{"name":"b","private_ip":"10.0.0.2"},{"name":"a","private_ip":"10.0.0.1","no_mirrored_device":true}]"#,
        )
        .unwrap();
        assert_eq!(s.hives()[0].name, "a");
        let bad = serde_json::from_str::<Stage>(
            r#"[{"name":"a","private_ip":"10.0.0.1"},{"name":"a","private_ip":"10.0.0.2"}]"#,
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("hive 'a' is listed twice")
        );
    }

    #[test]
    fn volume_from_json_denies_unknown_fields() {
        let v: DrbdVolume =
            serde_json::from_str(r#"{"name":"x","device_id":3,"size":"1G","fstype":"ext4"}"#)
                .unwrap();
        assert_eq!(v.volume_group, "drbdvg");
        assert_eq!(v.thin_pool.as_deref(), Some("drbdpool"));
        let bad = serde_json::from_str::<DrbdVolume>(
            r#"{"name":"x","device_id":3,"size":"1G","fstype":"ext4","sise":1}"#,
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("unknown field `sise`")
        );
    }
}
