//! The executor end to end through the local runner, with a scripted
//! stand-in for the kernel-facing commands (tests/fake-tools/fake-tool on
//! PATH: drbdadm, drbdsetup, lvs, lvcreate, lvremove, blkid, mkfs,
//! systemctl, docker), three "hosts" sharing this machine.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hive_drbd::{
    DrbdError, DrbdVolume, Executor, LocalRunner, Stage, VolumePlanOptions, create_volume_plan,
    destroy_volume_plan,
};

const TOOLS: [&str; 9] = [
    "drbdadm",
    "drbdsetup",
    "lvs",
    "lvcreate",
    "lvremove",
    "blkid",
    "mkfs",
    "systemctl",
    "docker",
];

struct Lab {
    _tmp: tempfile::TempDir,
    state: PathBuf,
    options: VolumePlanOptions,
    runner: LocalRunner,
    stage: Stage,
    volume: DrbdVolume,
}

impl Lab {
    fn new() -> Lab {
        Lab::with_case("plans", "three-hives-one-diskless")
    }

    fn with_case(dir: &str, case: &str) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        let state = tmp.path().join("state");
        let resdir = tmp.path().join("etc-drbd.d");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let tool = bin.join("fake-tool");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-tools/fake-tool"),
            &tool,
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        for t in TOOLS {
            std::os::unix::fs::symlink("fake-tool", bin.join(t)).unwrap();
        }
        let (stage, volume) = common::load_case(&common::fixtures().join(dir), case);
        let mut runner = LocalRunner::new();
        for h in stage.hives() {
            runner = runner
                .host_env(&h.name, "PATH", format!("{}:/usr/bin:/bin", bin.display()))
                .host_env(&h.name, "FAKE_STATE", state.display().to_string())
                .host_env(&h.name, "FAKE_RESDIR", resdir.display().to_string());
        }
        let options = VolumePlanOptions {
            resource_dir: resdir.display().to_string(),
            connect_timeout_secs: 30,
            sync_timeout_secs: 30,
            down_attempts: 3,
            down_delay_secs: 1,
            ..VolumePlanOptions::default()
        };
        Lab {
            _tmp: tmp,
            state,
            options,
            runner,
            stage,
            volume,
        }
    }

    /// Timeouts and delays of the plan count in units of 10 ms here.
    fn executor(&self) -> Executor<'_, LocalRunner> {
        Executor::new(&self.runner)
            .poll_interval(Duration::from_millis(20))
            .time_unit(Duration::from_millis(10))
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn calls(&self, prefix: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.contains(prefix))
            .collect()
    }

    fn host_file(&self, host: &str, rel: &str) -> PathBuf {
        self.state.join(host).join(rel)
    }
}

#[test]
fn create_then_rerun_then_destroy() {
    let lab = Lab::new();
    let plan = create_volume_plan(&lab.stage, &lab.volume, &lab.options).unwrap();
    let ex = lab.executor();

    let report = ex.run(&plan).unwrap();
    println!("{report}");
    assert!(report.changed() >= 15, "{report}");

    // Forced primary and formatted once, on the first disk host.
    assert_eq!(
        lab.calls("drbdadm primary --force"),
        vec!["s-hive0.pdns drbdadm primary --force pdnsdb_data"]
    );
    assert_eq!(
        lab.calls("mkfs"),
        vec!["s-hive0.pdns mkfs -t xfs -f /dev/drbd5"]
    );
    // Thin volume and metadata only where the volume keeps a disk.
    let lvcreate: Vec<String> = lab
        .calls(" lvcreate")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(lvcreate, vec!["s-hive0.pdns"]);
    for h in ["s-hive0.pdns", "s-hive1.pdns", "s-hive2.pdns"] {
        assert_eq!(
            std::fs::read_to_string(lab.host_file(h, "dvol/pdnsdb_data")).unwrap(),
            "local xfs /dev/drbd5\n"
        );
        assert!(
            lab.host_file(h, "active/drbd-resource@pdnsdb_data.service")
                .exists()
        );
        assert!(
            lab.host_file(h, "up/pdnsdb_data").exists(),
            "{h}: unit brought the resource up"
        );
    }
    assert_eq!(
        std::fs::read_to_string(lab.host_file("s-hive2.pdns", "disk/pdnsdb_data")).unwrap(),
        "Diskless\n"
    );
    let res_file = Path::new(&lab.options.resource_dir).join("pdnsdb_data.res");
    assert_eq!(
        std::fs::read_to_string(&res_file).unwrap(),
        hive_drbd::render_resource(&lab.stage, &lab.volume).unwrap()
    );

    // Status of the healthy volume on every host.
    let status = ex.volume_status(&lab.stage, &lab.volume).unwrap();
    assert_eq!(status.len(), 3);
    for s in &status {
        assert!(s.healthy(), "{s}");
        assert_eq!(s.peers.len(), 2, "{s}");
    }
    assert_eq!(status[1].disk, hive_drbd::DiskState::Diskless);
    assert_eq!(
        status[0].to_string(),
        "pdnsdb_data on s-hive0.pdns: Secondary disk:UpToDate\n  \
         s-hive1.pdns Connected role:Secondary peer-disk:Diskless replication:Established\n  \
         s-hive2.pdns Connected role:Secondary peer-disk:Diskless replication:Established\n"
    );

    // Check mode on the healthy volume: nothing to do.
    let pending = ex.pending(&plan).unwrap();
    assert!(pending.is_empty(), "{pending}");

    // A second run changes nothing and says so.
    let before = lab.log().len();
    let again = ex.run(&plan).unwrap();
    assert_eq!(again.changed(), 0, "{again}");
    assert!(again.to_string().contains("nothing changed"), "{again}");
    let mutating: Vec<String> = lab.log()[before..]
        .iter()
        .filter(|l| {
            l.contains("drbdadm adjust ")
                || l.contains("create-md")
                || l.contains("primary")
                || l.contains("mkfs")
                || l.contains("drbdadm down")
                || l.contains("volume create")
        })
        .cloned()
        .collect();
    assert!(mutating.is_empty(), "re-run mutated: {mutating:?}");

    // Destroy, then destroy again (nothing left).
    let destroy = destroy_volume_plan(&lab.stage, &lab.volume, &lab.options).unwrap();
    let gone = ex.run(&destroy).unwrap();
    assert!(gone.changed() > 0);
    for h in ["s-hive0.pdns", "s-hive1.pdns", "s-hive2.pdns"] {
        assert!(!lab.host_file(h, "dvol/pdnsdb_data").exists());
        assert!(!lab.host_file(h, "up/pdnsdb_data").exists());
        assert!(
            !lab.host_file(h, "enabled/drbd-resource@pdnsdb_data.service")
                .exists()
        );
        assert!(!lab.host_file(h, "lv/pdnsdb_data").exists());
    }
    assert!(!res_file.exists());
    assert_eq!(ex.run(&destroy).unwrap().changed(), 0);
    assert!(ex.pending(&destroy).unwrap().is_empty());
}

#[test]
fn a_peer_that_never_connects_times_out_naming_it() {
    let lab = Lab::new();
    std::fs::create_dir_all(lab.state.join("s-hive1.pdns")).unwrap();
    std::fs::write(lab.state.join("s-hive1.pdns/isolated"), "").unwrap();
    let plan = create_volume_plan(&lab.stage, &lab.volume, &lab.options).unwrap();
    let err = lab.executor().run(&plan).unwrap_err();
    match &err {
        DrbdError::WaitTimeout {
            host,
            resource,
            missing,
            ..
        } => {
            assert_eq!(host, "s-hive0.pdns");
            assert_eq!(resource, "pdnsdb_data");
            assert_eq!(
                missing,
                &vec!["s-hive1.pdns (connection Connecting)".to_string()]
            );
        }
        other => panic!("expected a wait timeout, got {other}"),
    }
    assert_eq!(
        err.to_string(),
        "host s-hive0.pdns: resource pdnsdb_data: connection to all peers not reached after 30s; missing: s-hive1.pdns (connection Connecting)"
    );
    // Status names the missing peer too.
    let status = lab
        .executor()
        .volume_status(&lab.stage, &lab.volume)
        .unwrap();
    assert_eq!(
        status[0].problems,
        vec![
            "local disk Inconsistent, want UpToDate",
            "s-hive1.pdns: connection Connecting"
        ]
    );
    assert!(!status[1].healthy());

    // Nothing was formatted while a peer was missing.
    assert!(lab.calls("mkfs").is_empty());
    assert!(lab.calls("primary").is_empty());
}

#[test]
fn a_failing_step_names_host_step_and_output() {
    let lab = Lab::new();
    std::fs::create_dir_all(lab.state.join("s-hive0.pdns")).unwrap();
    std::fs::write(lab.state.join("s-hive0.pdns/fail-lvcreate"), "").unwrap();
    let plan = create_volume_plan(&lab.stage, &lab.volume, &lab.options).unwrap();
    let err = lab.executor().run(&plan).unwrap_err().to_string();
    assert_eq!(
        err,
        "host s-hive0.pdns: step 'create thin volume drbdvg/pdnsdb_data of 500M in pool drbdpool' failed with exit status 5: lvcreate: simulated failure on s-hive0.pdns"
    );
    // The round failed: nothing of a later round ran.
    assert!(lab.calls("create-md").is_empty());
}

#[test]
fn down_is_retried_then_reported() {
    let lab = Lab::new();
    let plan = create_volume_plan(&lab.stage, &lab.volume, &lab.options).unwrap();
    // Only the rounds up to the down step; drbdadm down refuses on s-hive2.
    std::fs::create_dir_all(lab.state.join("s-hive2.pdns")).unwrap();
    std::fs::write(lab.state.join("s-hive2.pdns/fail-drbdadm"), "").unwrap();
    let err = lab.executor().run(&plan).unwrap_err().to_string();
    assert!(err.starts_with("host s-hive2.pdns: step"), "{err}");
    assert!(
        err.contains("drbdadm: simulated failure on s-hive2.pdns"),
        "{err}"
    );
}

#[test]
fn a_replaced_disk_is_synced_not_reformatted() {
    let lab = Lab::with_case("resources", "three-hives");
    let plan = create_volume_plan(&lab.stage, &lab.volume, &lab.options).unwrap();
    let ex = lab.executor();
    if let Err(e) = ex.run(&plan) {
        panic!("{e}\n{}", lab.log().join("\n"));
    }
    assert_eq!(lab.calls("mkfs").len(), 1);
    // s-hive0 comes back with an empty disk and no unit (rebuilt server).
    let h0 = lab.state.join("s-hive0.pdns");
    std::fs::remove_dir_all(&h0).unwrap();
    let pending = ex.pending(&plan).unwrap();
    assert_eq!(
        pending
            .hosts
            .iter()
            .map(|h| h.host.as_str())
            .collect::<Vec<_>>(),
        vec!["s-hive0.pdns", "s-hive1.pdns", "s-hive2.pdns"],
        "the peers wait for the rebuilt host:\n{pending}"
    );
    let report = ex.run(&plan).unwrap();
    assert!(report.changed() > 0);
    assert_eq!(lab.calls("mkfs").len(), 1, "no second mkfs");
    assert_eq!(
        lab.calls("primary --force").len(),
        1,
        "no second forced primary"
    );
    assert_eq!(
        std::fs::read_to_string(h0.join("disk/ldap_data")).unwrap(),
        "UpToDate\n"
    );
    assert!(ex.pending(&plan).unwrap().is_empty());
}

#[test]
fn excluded_host_gets_no_steps_and_is_not_awaited() {
    let lab = Lab::with_case("resources", "three-hives");
    // s-hive2 is unreachable (isolated) and excluded with -x.
    std::fs::create_dir_all(lab.state.join("s-hive2.pdns")).unwrap();
    std::fs::write(lab.state.join("s-hive2.pdns/isolated"), "").unwrap();
    let options = VolumePlanOptions {
        exclude_hosts: vec!["s-hive2.pdns".into()],
        ..lab.options.clone()
    };
    let plan = create_volume_plan(&lab.stage, &lab.volume, &options).unwrap();
    assert!(plan.hosts.iter().all(|h| h.host != "s-hive2.pdns"));
    lab.executor().run(&plan).unwrap();
    assert!(lab.calls("s-hive2.pdns").is_empty());
    let bad = VolumePlanOptions {
        exclude_hosts: vec!["s-hive9".into()],
        ..lab.options.clone()
    };
    let err = create_volume_plan(&lab.stage, &lab.volume, &bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid exclude_hosts: 's-hive9' is not a hive"),
        "{err}"
    );
}

/// A runner that cannot reach one host.
struct OneDown<'a> {
    inner: &'a LocalRunner,
    down: &'a str,
}

impl hive_drbd::HostRunner for OneDown<'_> {
    fn run(
        &self,
        host: &str,
        command: &hive_drbd::HostCommand,
    ) -> Result<hive_drbd::ExecOutput, DrbdError> {
        if host == self.down {
            return Err(DrbdError::Transport {
                host: host.into(),
                message: "connection refused".into(),
                source: None,
            });
        }
        self.inner.run(host, command)
    }
}

#[test]
fn status_shows_every_host_even_when_one_cannot_be_reached() {
    let lab = Lab::new();
    let plan = create_volume_plan(&lab.stage, &lab.volume, &lab.options).unwrap();
    lab.executor().run(&plan).unwrap();
    let last = lab.stage.hives().last().unwrap().name.clone();
    let runner = OneDown {
        inner: &lab.runner,
        down: &last,
    };
    let status = Executor::new(&runner)
        .volume_status(&lab.stage, &lab.volume)
        .unwrap();
    assert_eq!(status.len(), lab.stage.hives().len());
    for s in &status {
        if s.host == last {
            assert!(!s.up && !s.healthy());
            assert_eq!(
                s.to_string(),
                format!(
                    "{} on {last}: down\n  problem: cannot read its state: connection refused\n",
                    lab.volume.name
                )
            );
        } else {
            assert!(s.up && s.healthy(), "{s}");
        }
    }
}
