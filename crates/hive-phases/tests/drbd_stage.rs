//! End to end: DRBD on a 3-hive stage of the `docker` provider (each server
//! a container booting systemd and sshd), everything over SSH through the
//! paths the CLI uses: the `drbd` step of setup-hosts, then hive-drbd's
//! executor through [`stage_runner`](hive_phases::volumes::stage_runner) for volumes, and `hive volumes status`'s
//! library call.
//!
//! The containers have no DRBD module and no disk to spare, so the
//! kernel-facing commands are scripted stand-ins (tests/drbd_stage/
//! standin.sh, see its header): they keep their state in files on each
//! server, serve a resource's state on its real DRBD address and port, and
//! print `drbdsetup events2` as drbd-utils does. drbd-utils, LVM, systemd,
//! sysctl and iptables are the real ones installed by the step; the real
//! `drbdadm` parses the resource files.
//!
//! Covers: `-C` changes nothing; a hive whose kernel has no DRBD module
//! fails alone with the explaining message; a second run changes nothing; a 3-hive
//! volume is created, a re-run changes nothing, its status is healthy; a
//! peer that never connects (its DRBD ports blocked) gives a timeout
//! naming it, and `-x` leaving that hive out; destroy, and destroy again
//! changes nothing.

mod common;

use common::docker;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hive_drbd::{
    DrbdVolume, FsType, Plan, Stage as DrbdStage, StageHive, VolumePlanOptions, create_volume_plan,
    destroy_volume_plan,
};
use hive_phases::setup_hosts::TransportRunner;
use hive_phases::setup_hosts::{
    DrbdHostSetup, Server, ServerRole, SetupHosts, SetupHostsParams, SetupReport, StepTag,
    Transport,
};
use hive_phases::volumes::{check_prepared, execute_plans, stage_runner, volumes_status};
use hive_provider::{
    BuildInfraOptions, DockerProvider, Provider, ServerSpec, SshPool, StageSpec, build_infra,
};

const PREFIX: &str = "hdrbd-test-";
const STAGE_LABEL: &str = "io.hive.stage=hdrbd-test-hdrbd-private";
const SUBNET: &str = "172.31.251.0/24";
const STANDIN_DIR: &str = "/var/lib/hive-drbd-standin";
const TOOLS: [&str; 15] = [
    "drbdadm",
    "drbdsetup",
    "modprobe",
    "lsmod",
    "modinfo",
    "lsblk",
    "blkid",
    "pvcreate",
    "vgcreate",
    "vgs",
    "lvs",
    "lvcreate",
    "lvremove",
    "mkfs",
    "docker",
];

fn container(server: &str) -> String {
    format!("{PREFIX}{server}")
}

/// `sh -c script` in the container of `server`; (success, stdout + stderr).
fn on(server: &str, script: &str) -> (bool, String) {
    common::exec(&container(server), script)
}

fn on_ok(server: &str, script: &str) -> String {
    let (ok, out) = on(server, script);
    assert!(ok, "{server}: {script}: {out}");
    out
}

/// Removes whatever the test created, even when it fails half-way.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        common::remove_labelled(STAGE_LABEL, "HDRBD_KEEP");
    }
}

struct Lab {
    spec: StageSpec,
    pool: Arc<SshPool>,
    drbd: DrbdStage,
}

impl Lab {
    async fn create(ctx: &Path) -> Lab {
        let mut spec = StageSpec::new("hdrbd", "private", "docker", SUBNET.parse().unwrap(), ctx);
        let mut hives = Vec::new();
        for i in 0..3 {
            let name = format!("p-hive{i}.hdrbd");
            let ip = format!("172.31.251.{}", 10 + i);
            spec.servers.push(ServerSpec::new(
                &name,
                hive_provider::ServerRole::Hive,
                ip.parse().unwrap(),
            ));
            hives.push(StageHive::new(&name, ip.parse().unwrap()));
        }
        spec.attributes.insert("name_prefix".into(), PREFIX.into());
        let provider = DockerProvider::new();
        provider.destroy(&spec).await.unwrap();
        build_infra(&provider, &spec, &BuildInfraOptions::default())
            .await
            .unwrap();
        let pool =
            Arc::new(SshPool::from_ssh_config(&spec.context_dir.join("ssh_config")).unwrap());
        Lab {
            spec,
            pool,
            drbd: DrbdStage::new(hives).unwrap(),
        }
    }

    fn name(&self, i: usize) -> &str {
        &self.spec.servers[i].name
    }

    fn transports(&self) -> Vec<Arc<dyn Transport>> {
        self.spec
            .servers
            .iter()
            .map(|s| Arc::new(SshPool::server(&self.pool, &s.name)) as Arc<dyn Transport>)
            .collect()
    }

    fn params(&self) -> SetupHostsParams {
        let servers = self
            .spec
            .servers
            .iter()
            .map(|s| Server {
                name: s.name.clone(),
                role: ServerRole::Hive,
                private_ip: s.private_ip,
                groups: vec!["hives".into()],
            })
            .collect();
        SetupHostsParams::new("private", "hdrbd", &self.spec.context_dir, servers)
    }

    /// setup-hosts `-T drbd` (in check mode when `check`), with `volumes`
    /// as the stage's DRBD volumes.
    async fn setup(&self, volumes: &[&str], check: bool) -> SetupReport {
        let start = Instant::now();
        let report = SetupHosts::new(self.params())
            .transports(self.transports())
            .tags([StepTag::Drbd])
            .check_mode(check)
            .drbd(DrbdHostSetup::new(
                self.drbd.clone(),
                volumes.iter().copied(),
            ))
            .run()
            .await
            .unwrap();
        println!(
            "setup-hosts -T drbd{} ({:.1}s):\n{report}",
            if check { " -C" } else { "" },
            start.elapsed().as_secs_f64()
        );
        report
    }

    /// Puts the stand-ins (and busybox for their listener) on `server`,
    /// and a free disk at /dev/vdb for the volume group.
    fn install_standins(&self, server: &str) {
        let c = container(server);
        on_ok(server, &format!("mkdir -p {STANDIN_DIR}"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/drbd_stage/standin.sh");
        for (from, to) in [
            (script.to_str().unwrap(), "/usr/local/lib/hive-drbd-standin"),
            ("/bin/busybox", "/var/lib/hive-drbd-standin/busybox"),
        ] {
            let out = docker(&["cp", "-L", from, &format!("{c}:{to}")]);
            assert!(
                out.status.success(),
                "docker cp {from}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let links: Vec<String> = TOOLS
            .iter()
            .map(|t| format!("ln -sf /usr/local/lib/hive-drbd-standin /usr/local/sbin/{t}"))
            .collect();
        on_ok(
            server,
            &format!(
                "chmod 755 /usr/local/lib/hive-drbd-standin {STANDIN_DIR}/busybox && {} && \
                 {{ [ -b /dev/vdb ] || mknod /dev/vdb b 254 16; }}",
                links.join(" && ")
            ),
        );
    }

    fn runner(&self) -> TransportRunner {
        stage_runner(&self.pool, tokio::runtime::Handle::current())
    }

    /// Runs `plan` (or only its checks) over SSH; the time it took.
    async fn execute(
        &self,
        plan: Plan,
        check: bool,
    ) -> (
        Result<(Vec<hive_drbd::ExecutionReport>, Vec<Plan>), hive_phases::Error>,
        Duration,
    ) {
        let start = Instant::now();
        let r = execute_plans(self.runner(), vec![plan], check).await;
        (r, start.elapsed())
    }
}

fn project(
    rel: &str,
    stage: hive_inventory::StageName,
) -> (tempfile::TempDir, hive_inventory::Project) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(dir.path().join("site"))
        .status()
        .unwrap();
    assert!(status.success());
    let project = hive_inventory::ProjectLoader::new(dir.path().join("site"))
        .stage(stage)
        .load()
        .unwrap();
    (dir, project)
}

/// What the `drbd` step of `hive setup-hosts` gets from the inventory.
#[test]
fn the_drbd_step_is_given_the_stage_hives_and_drbd_volumes() {
    use hive_inventory::StageName;
    use hive_phases::site::StageSite;
    use hive_phases::volumes::drbd_host_setup;
    let check = |rel: &str, stage, hives: &[&str], volumes: &[&str]| {
        let (_dir, project) = project(rel, stage);
        let site = StageSite::new(&project).unwrap();
        let setup = drbd_host_setup(&site).unwrap().unwrap();
        let names: Vec<&str> = setup
            .stage
            .hives()
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(names, hives, "{rel}");
        assert_eq!(setup.volumes, volumes, "{rel}");
    };
    // The quickstart site has no DRBD volume: the step will do nothing.
    check(
        "examples/quickstart",
        StageName::Private,
        &[
            "p-hive0.quickstart.example",
            "p-hive1.quickstart.example",
            "p-hive2.quickstart.example",
        ],
        &[],
    );
    check(
        "tests/fixtures/inventory/pdns",
        StageName::Staging,
        &["s-hive0.pdns", "s-hive1.pdns", "s-hive2.pdns"],
        &[
            "pdnsdb_data",
            "pdnsadmin_data",
            "proxy_config",
            "letsencrypt_data",
        ],
    );
    // The only server is hive and repository server at once.
    check(
        "tests/fixtures/inventory/pdns",
        StageName::Private,
        &["p-hive0.pdns"],
        &[],
    );
}

fn changes_on(report: &SetupReport, host: &str) -> usize {
    report
        .hosts
        .iter()
        .find(|h| h.host == host)
        .map(|h| h.change_count())
        .unwrap()
}

fn options(connect_timeout_secs: u64) -> VolumePlanOptions {
    VolumePlanOptions {
        connect_timeout_secs,
        sync_timeout_secs: 30,
        down_attempts: 3,
        down_delay_secs: 1,
        ..VolumePlanOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drbd_on_a_three_hive_stage_over_ssh() {
    let _cleanup = Cleanup;
    let total = Instant::now();
    let work = tempfile::Builder::new().prefix(PREFIX).tempdir().unwrap();
    let context = work.path().join("site/.hive/private");
    let lab = Lab::create(&context).await;
    println!("stage up in {:.1}s", total.elapsed().as_secs_f64());
    let (h0, h1, h2) = (
        lab.name(0).to_string(),
        lab.name(1).to_string(),
        lab.name(2).to_string(),
    );

    // -C on the fresh stage lists what would change, changes nothing.
    let report = lab.setup(&["hdata"], true).await;
    assert!(report.success(), "{report}");
    let text = report.to_string();
    for h in [&h0, &h1, &h2] {
        assert!(
            text.contains(&format!(
                "{h} drbd: would change: install packages with Apt: drbd-utils lvm2"
            )),
            "{text}"
        );
    }
    assert!(text.contains("create volume group drbdvg with thin pool drbdpool"));
    let (installed, _) = on(&h0, "dpkg-query -W drbd-utils");
    assert!(!installed, "check mode installed drbd-utils");

    // hive0 and hive1 get the stand-ins; hive2's kernel has no DRBD module
    // (the real modprobe and modinfo answer): it fails alone, explained.
    lab.install_standins(&h0);
    lab.install_standins(&h1);
    let start = Instant::now();
    let report = lab.setup(&["hdata"], false).await;
    let first_run = start.elapsed();
    assert!(!report.success(), "{report}");
    let failed: Vec<&str> = report.failed().map(|h| h.host.as_str()).collect();
    assert_eq!(failed, vec![h2.as_str()], "{report}");
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "{h2} drbd: FAILED: {h2}: the DRBD kernel module preflight failed"
        )) && text.contains("no DRBD module for the running kernel")
            && text.contains("drbd-dkms"),
        "{text}"
    );
    assert!(changes_on(&report, &h0) >= 10, "{report}");
    // What the step put in place, with the real tools.
    on_ok(&h0, "dpkg-query -W drbd-utils lvm2 thin-provisioning-tools");
    on_ok(&h0, "/usr/sbin/drbdadm sh-nop");
    on_ok(
        &h0,
        "systemctl is-enabled -q hive-drbd-firewall.service && /usr/local/sbin/hive-drbd-firewall check",
    );
    let rules = on_ok(&h0, "iptables -S HIVE-DRBD");
    assert!(
        rules
            .contains("-A HIVE-DRBD -s 172.31.251.11/32 -p tcp -m tcp --dport 7000:7999 -j ACCEPT")
            && rules.contains("-A HIVE-DRBD -s 172.31.251.12/32")
            && !rules.contains("172.31.251.10/32")
            && rules.contains("--dport 7000:7999 -j DROP"),
        "{rules}"
    );
    assert_eq!(
        on_ok(&h0, "sysctl -n net.ipv4.tcp_rmem")
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["131072", "1048576", "16777216"]
    );
    on_ok(
        &h0,
        "test -x /usr/local/sbin/hive-drbd-wait && systemctl cat drbd-resource@x.service >/dev/null",
    );
    on_ok(&h0, "vgs drbdvg && lvs drbdvg/drbdpool");

    // build-volumes' cheap check names the hive that is not prepared.
    let e = check_prepared(lab.pool.clone(), &lab.drbd, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("{h2} lacks DRBD 9 kernel module"))
            && !e.contains(&format!("{h0} lacks"))
            && e.contains("run `hive setup-hosts -T drbd`"),
        "{e}"
    );

    // With its module (stand-in) hive2 completes; the others do not change.
    lab.install_standins(&h2);
    let report = lab.setup(&["hdata"], false).await;
    assert!(report.success(), "{report}");
    assert_eq!(changes_on(&report, &h0), 0, "{report}");
    assert_eq!(changes_on(&report, &h1), 0, "{report}");
    assert!(changes_on(&report, &h2) >= 8, "{report}");

    // A second run changes nothing, -C too.
    let start = Instant::now();
    let report = lab.setup(&["hdata"], false).await;
    let rerun = start.elapsed();
    assert!(report.success(), "{report}");
    assert_eq!(report.change_count(), 0, "{report}");
    let report = lab.setup(&["hdata"], true).await;
    assert_eq!(report.change_count(), 0, "{report}");
    check_prepared(lab.pool.clone(), &lab.drbd, &[])
        .await
        .unwrap();

    // A volume on the 3 hives.
    let hdata = DrbdVolume::new("hdata", 5, "100M", FsType::Xfs);
    let plan = create_volume_plan(&lab.drbd, &hdata, &options(30)).unwrap();
    let (r, create_time) = lab.execute(plan.clone(), false).await;
    let (reports, _) = r.unwrap();
    println!("{} ({:.1}s)", reports[0], create_time.as_secs_f64());
    assert!(reports[0].changed() >= 20, "{}", reports[0]);
    for h in [&h0, &h1, &h2] {
        on_ok(h, "systemctl is-active -q drbd-resource@hdata.service");
        on_ok(
            h,
            "test -b /dev/drbd5 && /usr/sbin/drbdadm sh-dev hdata | grep -qx /dev/drbd5",
        );
        let ev = on_ok(h, "drbdsetup events2 --now hdata");
        assert!(
            ev.contains("disk:UpToDate") && !ev.contains("Connecting"),
            "{h}: {ev}"
        );
        assert_eq!(
            on_ok(h, "docker volume inspect hdata").trim(),
            "local xfs /dev/drbd5"
        );
    }
    // The file system was made once, on the first hive.
    let mkfs: Vec<String> = [&h0, &h1, &h2]
        .iter()
        .map(|h| {
            on_ok(h, &format!("grep -c '^mkfs' {STANDIN_DIR}/log || true"))
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(mkfs, vec!["1", "0", "0"]);

    // Re-run: nothing changes, and check mode has nothing pending.
    let (r, rerun_volume) = lab.execute(plan.clone(), false).await;
    let (reports, _) = r.unwrap();
    assert_eq!(reports[0].changed(), 0, "{}", reports[0]);
    let (r, _) = lab.execute(plan, true).await;
    let (_, pending) = r.unwrap();
    assert!(pending[0].is_empty(), "{}", pending[0]);

    // `hive volumes status`.
    let status = volumes_status(lab.runner(), lab.drbd.clone(), vec![hdata.clone()])
        .await
        .unwrap();
    assert_eq!(status.len(), 3);
    for s in &status {
        print!("{s}");
        assert!(s.healthy(), "{s}");
        assert_eq!(s.role, "Secondary");
        assert_eq!(s.peers.len(), 2);
        assert!(s.peers.iter().all(|p| p.connection == "Connected"));
    }

    // A peer that never connects: hive2's DRBD ports are blocked.
    let blocked = DrbdVolume::new("hblock", 6, "100M", FsType::Ext4);
    let block = "iptables -I INPUT 1 -p tcp --dport 7000:7999 -j DROP && \
                 iptables -I OUTPUT 1 -p tcp --dport 7000:7999 -j DROP";
    on_ok(&h2, block);
    let plan = create_volume_plan(&lab.drbd, &blocked, &options(6)).unwrap();
    let (r, timeout_time) = lab.execute(plan, false).await;
    let e = r.unwrap_err().to_string();
    println!(
        "peer never connects ({:.1}s): {e}",
        timeout_time.as_secs_f64()
    );
    assert!(
        e.contains(&format!(
            "host {h0}: resource hblock: connection to all peers not reached after 6s"
        )) && e.contains(&format!("missing: {h2} (connection Connecting)"))
            && !e.contains(&format!("{h1} (connection")),
        "{e}"
    );
    let status = volumes_status(lab.runner(), lab.drbd.clone(), vec![blocked.clone()])
        .await
        .unwrap();
    let s0 = status.iter().find(|s| s.host == h0).unwrap();
    assert!(
        s0.problems
            .iter()
            .any(|p| p == &format!("{h2}: connection Connecting")),
        "{s0}"
    );
    // `-x p-hive2` (a server being replaced): the others build the volume
    // without waiting for it, and nothing runs there.
    let excluded = VolumePlanOptions {
        exclude_hosts: vec![h2.clone()],
        ..options(6)
    };
    let plan = create_volume_plan(&lab.drbd, &blocked, &excluded).unwrap();
    let (r, _) = lab.execute(plan, false).await;
    let (reports, _) = r.unwrap();
    println!("{}", reports[0]);
    assert!(reports[0].outcomes.iter().all(|o| o.host != h2));
    for h in [&h0, &h1] {
        on_ok(h, "systemctl is-active -q drbd-resource@hblock.service");
        assert_eq!(
            on_ok(h, "docker volume inspect hblock").trim(),
            "local ext4 /dev/drbd6"
        );
    }
    let (enabled, _) = on(&h2, "systemctl is-enabled -q drbd-resource@hblock.service");
    assert!(!enabled, "a step ran on the excluded hive");
    on_ok(
        &h2,
        "iptables -D INPUT -p tcp --dport 7000:7999 -j DROP && \
         iptables -D OUTPUT -p tcp --dport 7000:7999 -j DROP",
    );

    // Destroy both volumes; destroying again changes nothing.
    for v in [&blocked, &hdata] {
        let plan = destroy_volume_plan(&lab.drbd, v, &options(30)).unwrap();
        let (r, _) = lab.execute(plan.clone(), false).await;
        let (reports, _) = r.unwrap();
        println!("{}", reports[0]);
        assert!(reports[0].changed() > 0);
        // The unit's ExecStop is the real drbdadm, which finds no
        // /proc/drbd here: the plan's own `drbdadm down` takes it down.
        let (r, _) = lab.execute(plan, false).await;
        let (reports, _) = r.unwrap();
        assert_eq!(reports[0].changed(), 0, "{}", reports[0]);
    }
    for h in [&h0, &h1, &h2] {
        on_ok(
            h,
            "! systemctl is-enabled -q drbd-resource@hdata.service && test ! -e /etc/drbd.d/hdata.res \
             && ! lvs drbdvg/hdata && ! docker volume inspect hdata && ! drbdsetup status hdata",
        );
    }
    println!(
        "timings: setup-hosts -T drbd first run {:.1}s, re-run {:.1}s; create volume {:.1}s, \
         re-run {:.1}s; peer timeout after {:.1}s; whole test {:.1}s",
        first_run.as_secs_f64(),
        rerun.as_secs_f64(),
        create_time.as_secs_f64(),
        rerun_volume.as_secs_f64(),
        timeout_time.as_secs_f64(),
        total.elapsed().as_secs_f64()
    );
}
