//! Snapshot tests of plans: create (fresh hosts), re-run on a healthy
//! volume (empty), destroy, and host preparation.

mod common;

use hive_drbd::{
    Action, Check, DoneWhen, DrbdVolume, ExecOutput, HostPreparation, PackageManager, Plan, Stage,
    VolumePlanOptions, create_volume_plan, destroy_volume_plan,
};

fn plans_dir() -> std::path::PathBuf {
    common::fixtures().join("plans")
}

fn case() -> (Stage, DrbdVolume) {
    common::load_case(&plans_dir(), "three-hives-one-diskless")
}

/// `drbdsetup events2 --now` of a healthy resource as `host` sees it:
/// every peer connected, disks UpToDate (Diskless where configured).
fn healthy_events2(stage: &Stage, volume: &DrbdVolume, host: &str) -> String {
    let disk = |name: &str| {
        let h = stage.hive(name).unwrap();
        if volume.has_disk_on(h) {
            "UpToDate"
        } else {
            "Diskless"
        }
    };
    let r = &volume.name;
    let mut out = format!("exists resource name:{r} role:Secondary suspended:no\n");
    let peers: Vec<(usize, &str)> = stage
        .hives()
        .iter()
        .enumerate()
        .filter(|(_, h)| h.name != host)
        .map(|(i, h)| (i, h.name.as_str()))
        .collect();
    for (id, p) in &peers {
        out += &format!(
            "exists connection name:{r} peer-node-id:{id} conn-name:{p} connection:Connected role:Secondary\n"
        );
    }
    out += &format!(
        "exists device name:{r} volume:0 minor:{} disk:{} client:no quorum:yes\n",
        volume.device_id,
        disk(host)
    );
    for (id, p) in &peers {
        out += &format!(
            "exists peer-device name:{r} peer-node-id:{id} conn-name:{p} volume:0 replication:Established peer-disk:{} peer-client:no resync-suspended:no\n",
            disk(p)
        );
    }
    out + "exists -\n"
}

/// Observation where every check reports "done".
fn healthy<'a>(
    stage: &'a Stage,
    volume: &'a DrbdVolume,
) -> impl FnMut(&str, &Check) -> Option<ExecOutput> + 'a {
    move |host, check| {
        Some(match check.done_when {
            DoneWhen::ExitZero => ExecOutput::new(0, ""),
            _ => ExecOutput::new(0, healthy_events2(stage, volume, host)),
        })
    }
}

/// Observation of fresh hosts: every check command fails.
fn fresh(_: &str, _: &Check) -> Option<ExecOutput> {
    Some(ExecOutput::new(1, ""))
}

fn snapshot(plan: &Plan, name: &str) {
    common::check_snapshot(&plan.to_string(), &plans_dir().join(format!("{name}.txt")));
}

#[test]
fn create_plan_on_fresh_hosts() {
    let (stage, volume) = case();
    let plan = create_volume_plan(&stage, &volume, &VolumePlanOptions::default()).unwrap();
    let pending = plan.pending(fresh);
    assert_eq!(pending, plan, "on fresh hosts every step is needed");
    snapshot(&pending, "create");
    let json = serde_json::to_string_pretty(&pending).unwrap() + "\n";
    common::check_snapshot(&json, &plans_dir().join("create.json"));
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);

    // Force primary and mkfs happen on the first disk host only.
    for h in &plan.hosts {
        let formats = h
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.action,
                    Action::ForcePrimary { .. } | Action::MakeFilesystem { .. }
                )
            })
            .count();
        assert_eq!(
            formats,
            if h.host == "s-hive0.pdns" { 2 } else { 0 },
            "{}",
            h.host
        );
    }
    // The diskless host gets no logical volume nor metadata.
    let diskless = plan
        .hosts
        .iter()
        .find(|h| h.host == "s-hive1.pdns")
        .unwrap();
    assert!(!diskless.steps.iter().any(|s| matches!(
        s.action,
        Action::CreateLogicalVolume { .. } | Action::CreateMetadata { .. }
    )));
}

#[test]
fn rerun_on_healthy_volume_is_empty() {
    let (stage, volume) = case();
    let plan = create_volume_plan(&stage, &volume, &VolumePlanOptions::default()).unwrap();
    let pending = plan.pending(healthy(&stage, &volume));
    assert!(pending.is_empty(), "{pending}");
    snapshot(&pending, "rerun-healthy");
}

#[test]
fn rerun_with_a_disconnected_peer_waits_only_for_it() {
    let (stage, volume) = case();
    let plan = create_volume_plan(&stage, &volume, &VolumePlanOptions::default()).unwrap();
    let mut ok = healthy(&stage, &volume);
    let pending = plan.pending(|host, check| {
        let mut out = ok(host, check)?;
        if host == "s-hive0.pdns" && check.done_when != DoneWhen::ExitZero {
            out.stdout = out
                .stdout_text()
                .replace(
                    "conn-name:s-hive2.pdns connection:Connected",
                    "conn-name:s-hive2.pdns connection:Connecting",
                )
                .into_bytes();
        }
        Some(out)
    });
    snapshot(&pending, "rerun-peer-connecting");
    assert_eq!(pending.hosts.len(), 1);
    assert!(pending.hosts[0].steps.iter().all(|s| matches!(
        s.action,
        Action::WaitConnected { .. } | Action::WaitSynced { .. }
    )));
}

#[test]
fn no_format_never_forces_primary() {
    let (stage, volume) = case();
    let options = VolumePlanOptions {
        no_format: true,
        ..VolumePlanOptions::default()
    };
    let plan = create_volume_plan(&stage, &volume, &options).unwrap();
    assert!(!plan.hosts.iter().flat_map(|h| &h.steps).any(|s| matches!(
        s.action,
        Action::ForcePrimary { .. } | Action::MakeFilesystem { .. }
    )));
}

#[test]
fn first_hive_prefers_the_configured_host_with_a_disk() {
    let (stage, volume) = case();
    let first = |f: &str| {
        let o = VolumePlanOptions {
            first_hive: Some(f.into()),
            ..VolumePlanOptions::default()
        };
        hive_drbd::first_disk_host(&stage, &volume, &o).map(|h| h.name.clone())
    };
    // s-hive1 is diskless for this volume, s-hive2 has no mirrored device:
    // the first disk host is used.
    assert_eq!(first("s-hive1.pdns").as_deref(), Some("s-hive0.pdns"));
    assert_eq!(first("s-hive2.pdns").as_deref(), Some("s-hive0.pdns"));
    let (all_disks, v) = common::load_case(&common::fixtures().join("resources"), "three-hives");
    let o = VolumePlanOptions {
        first_hive: Some("s-hive2.pdns".into()),
        ..VolumePlanOptions::default()
    };
    let h = hive_drbd::first_disk_host(&all_disks, &v, &o).map(|h| h.name.clone());
    assert_eq!(h.as_deref(), Some("s-hive2.pdns"));
    let o = VolumePlanOptions {
        first_hive: Some("nope".into()),
        ..VolumePlanOptions::default()
    };
    let err = create_volume_plan(&stage, &volume, &o)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid first_hive: 'nope' is not a hive"),
        "{err}"
    );
}

#[test]
fn destroy_plan_and_its_rerun() {
    let (stage, volume) = case();
    let plan = destroy_volume_plan(&stage, &volume, &VolumePlanOptions::default()).unwrap();
    snapshot(&plan.pending(fresh), "destroy");
    let gone = plan.pending(|_, _| Some(ExecOutput::new(0, "")));
    assert!(gone.is_empty(), "{gone}");
}

#[test]
fn host_preparation_plan() {
    let (stage, _) = case();
    let plan = HostPreparation::new(PackageManager::Apt).plan(&stage);
    snapshot(&plan, "prepare-hosts-apt");
    // No volume group on the host without a mirrored device.
    let h1 = plan
        .hosts
        .iter()
        .find(|h| h.host == "s-hive2.pdns")
        .unwrap();
    assert!(
        !h1.steps
            .iter()
            .any(|s| matches!(s.action, Action::CreateVolumeGroup { .. }))
    );
    let h0 = plan
        .hosts
        .iter()
        .find(|h| h.host == "s-hive0.pdns")
        .unwrap();
    assert!(
        h0.steps
            .iter()
            .any(|s| matches!(s.action, Action::CreateVolumeGroup { .. }))
    );
    let dnf = HostPreparation::new(PackageManager::Dnf).plan(&stage);
    assert!(
        dnf.to_string()
            .contains("dnf install -y -q drbd9x-utils lvm2 device-mapper-persistent-data")
    );
    assert!(plan.pending(|_, _| Some(ExecOutput::new(0, ""))).is_empty());
}
