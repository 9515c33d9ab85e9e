#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! Planning is data, with no I/O:
//! - [`render_resource`] writes a volume's DRBD resource file;
//! - [`HostPreparation::plan`] is the `drbd` step of setup-hosts (packages,
//!   kernel module preflight, volume group and thin pool, TCP buffers,
//!   firewall, the `drbd-resource@.service` unit and its helper);
//! - [`create_volume_plan`] and [`destroy_volume_plan`] build and remove a
//!   volume on every hive of a stage.
//!
//! A [`Plan`] is a list of typed [`Step`]s per host; each step has a
//! [`Check`], a command whose result tells whether the step is already
//! done, so [`Plan::pending`] of a healthy volume is empty. Plans print for
//! check mode (`Display`) and serialise for `--output json` (serde).
//!
//! The [`Executor`] runs plans through a [`HostRunner`] (the SSH transport
//! adapts to it; [`LocalRunner`] runs local processes), round by round,
//! with bounded waits that name the peer that is missing.
//!
//! [`parse_events2`], [`parse_drbdadm_status`] and [`volume_status`] read
//! the state of volumes for `hive volumes status`.

#![deny(missing_docs)]

mod error;
mod exec;
mod host;
mod model;
mod plan;
mod resource;
mod status;
mod volume;

pub use error::DrbdError;
pub use exec::{ExecutionReport, Executor, HostCommand, HostRunner, LocalRunner, StepOutcome};
pub use hive_model::ExecOutput;
pub use host::{
    DEFAULT_MIRRORED_DEVICES, FIREWALL_SCRIPT_PATH, FIREWALL_UNIT, HostPreparation, KERNEL_CHECK,
    KernelModule, MirroredDiskGroup, SYSCTL_PATH, TCP_BUFFERS, UNIT_PATH, WAIT_HELPER_PATH,
    assess_kernel_module, render_firewall_script, render_unit, render_wait_helper,
};
pub use model::{
    BASE_PORT, DEFAULT_THIN_POOL, DEFAULT_VOLUME_GROUP, DrbdVolume, FsType, MAX_DEVICE_ID, Stage,
    StageHive,
};
pub use plan::{
    Action, Check, DoneWhen, HostPlan, KERNEL_PROBE, PackageManager, PeerExpectation, Plan, Step,
    missing_connections, missing_sync,
};
pub use resource::{render_global_common, render_resource};
pub use status::{
    ConnectionStatus, DeviceStatus, DiskState, PeerDeviceStatus, PeerSummary, ResourceStatus,
    VolumeHostStatus, parse_drbdadm_status, parse_events2, status_command, volume_status,
};
pub use volume::{VolumePlanOptions, create_volume_plan, destroy_volume_plan, first_disk_host};
