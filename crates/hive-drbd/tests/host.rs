//! Host preparation: the kernel preflight's verdicts, and the helper
//! scripts hive installs, run against stand-in commands.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use hive_drbd::{
    Action, DrbdError, Executor, HostPreparation, LocalRunner, PackageManager, Plan, Stage,
    StageHive, assess_kernel_module, render_firewall_script, render_global_common,
    render_wait_helper,
};

fn probe(name: &str) -> String {
    std::fs::read_to_string(common::fixtures().join("kernel").join(name)).unwrap()
}

/// `expected` is `Ok(version)` or `Err(words the explanation must contain)`.
fn check(name: &str, expected: Result<&str, &[&str]>) {
    let got = assess_kernel_module(&probe(name));
    match (got, expected) {
        (Ok(m), Ok(v)) => assert_eq!(m.version, v, "{name}"),
        (Err(e), Err(words)) => {
            for w in words {
                assert!(e.contains(w), "{name}: '{e}' should mention '{w}'");
            }
        }
        (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn kernel_module_verdicts() {
    check("loaded-9.txt", Ok("9.2.12"));
    check(
        "intree-84.txt",
        Err(&[
            "DRBD 8.4.11 is loaded",
            "needs DRBD 9",
            "6.1.0-27-amd64",
            "drbd-dkms",
            "rmmod drbd",
        ]),
    );
    check(
        "secure-boot.txt",
        Err(&[
            "Secure Boot",
            "Required key not available",
            "disable Secure Boot",
        ]),
    );
    check(
        "missing-after-kernel-update.txt",
        Err(&[
            "no DRBD module for the running kernel 5.14.0-503.15.1.el9_5.x86_64",
            "kernel update",
            "kmod-drbd9x",
        ]),
    );
    check("loaded-9-no-proc.txt", Ok("9.2.12"));
    check(
        "installed-9-not-loaded.txt",
        Err(&[
            "DRBD 9.2.12 is installed for kernel 6.1.0-27-amd64 but did not load",
            "Unknown symbol in module",
        ]),
    );
    check(
        "only-84-available.txt",
        Err(&["only DRBD 8.4.11 is available", "needs DRBD 9"]),
    );
}

fn write_tool(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn preflight_step_explains_secure_boot_through_the_executor() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path();
    write_tool(
        bin,
        "modprobe",
        "echo \"modprobe: ERROR: could not insert 'drbd': Required key not available\"; exit 1",
    );
    write_tool(bin, "modinfo", "echo 9.2.12");
    write_tool(bin, "uname", "echo 6.1.0-27-amd64");
    let stage = Stage::new(vec![StageHive::new("hive0", "10.0.0.1".parse().unwrap())]).unwrap();
    let full = HostPreparation::new(PackageManager::Apt).plan(&stage);
    // Only the preflight: the other steps would change this machine.
    let steps = full.hosts[0]
        .steps
        .iter()
        .filter(|s| s.action == Action::KernelModulePreflight)
        .map(|s| ("hive0".to_string(), s.clone()))
        .collect();
    let plan = Plan::from_steps("preflight", steps);
    let runner =
        LocalRunner::new().host_env("hive0", "PATH", format!("{}:/usr/bin:/bin", bin.display()));
    let err = Executor::new(&runner).run(&plan).unwrap_err();
    assert!(
        matches!(err, DrbdError::KernelModule { ref host, .. } if host == "hive0"),
        "{err}"
    );
    assert!(err.to_string().contains("UEFI Secure Boot"), "{err}");
}

#[test]
fn global_common_is_accepted_by_drbdadm() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("global_common.conf");
    std::fs::write(&f, render_global_common()).unwrap();
    let out = Command::new("drbdadm")
        .args(["-c", f.to_str().unwrap(), "sh-nop"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wait_helper_gives_up_after_its_bound_naming_the_resource() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path();
    write_tool(
        bin,
        "drbdadm",
        "echo \"$@\" >> \"$(dirname \"$0\")/calls\"; exit 10",
    );
    write_tool(bin, "sleep", "exit 0");
    let helper = bin.join("hive-drbd-wait");
    std::fs::write(&helper, render_wait_helper()).unwrap();
    let out = Command::new("sh")
        .arg(&helper)
        .arg("pdnsdb_data")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HIVE_DRBD_WAIT_TRIES", "3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'drbdadm adjust pdnsdb_data' still failing after 3 attempts"),
        "{err}"
    );
    let calls = std::fs::read_to_string(bin.join("calls")).unwrap();
    assert_eq!(calls.lines().count(), 3);
}

#[test]
fn wait_helper_waits_for_the_device_within_its_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path();
    // adjust works; sh-dev names the device given in $FAKE_DEV.
    write_tool(
        bin,
        "drbdadm",
        "case \"$1\" in sh-dev) echo \"$FAKE_DEV\" ;; *) exit 0 ;; esac",
    );
    write_tool(bin, "sleep", "exit 0");
    let helper = bin.join("hive-drbd-wait");
    std::fs::write(&helper, render_wait_helper()).unwrap();
    let run = |dev: &str| {
        Command::new("sh")
            .arg(&helper)
            .arg("r0")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HIVE_DRBD_WAIT_TRIES", "2")
            .env("FAKE_DEV", dev)
            .output()
            .unwrap()
    };
    let out = run("/dev/drbd-hive-test-missing");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("device /dev/drbd-hive-test-missing of r0 did not appear")
    );
    // Any block device of this machine stands in for /dev/drbd<id>.
    let block = std::fs::read_dir("/dev")
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| std::os::unix::fs::FileTypeExt::is_block_device(&e.file_type().unwrap()));
    if let Some(dev) = block {
        let out = run(dev.path().to_str().unwrap());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("r0 is up on"));
    }
}

#[test]
fn firewall_script_opens_drbd_ports_to_peers_only() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path();
    // A stand-in iptables keeping its rules in a file, one per line.
    write_tool(
        bin,
        "iptables",
        r#"rules="$(dirname "$0")/rules"; touch "$rules"
op="$1"; shift
case "$op" in
  -N) grep -qx "chain $1" "$rules" && exit 1; echo "chain $1" >> "$rules" ;;
  -F) grep -v "^-A $1 " "$rules" > "$rules.t"; mv "$rules.t" "$rules" ;;
  -A) echo "-A $*" >> "$rules" ;;
  -I) c="$1"; shift; shift; echo "-A $c $*" >> "$rules" ;;
  -C) grep -qxF -- "-A $*" "$rules" ;;
  -S) grep -- "^-A $1 " "$rules" ;;
esac"#,
    );
    let script = bin.join("fw");
    let peers = ["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()];
    std::fs::write(&script, render_firewall_script(&peers)).unwrap();
    let run = |arg: &str| {
        Command::new("sh")
            .arg(&script)
            .arg(arg)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(run("check"), Some(1), "nothing applied yet");
    assert_eq!(run("apply"), Some(0));
    assert_eq!(run("check"), Some(0));
    assert_eq!(run("apply"), Some(0), "idempotent");
    assert_eq!(run("check"), Some(0));
    let rules = std::fs::read_to_string(bin.join("rules")).unwrap();
    let chain: Vec<&str> = rules
        .lines()
        .filter(|l| l.starts_with("-A HIVE-DRBD"))
        .collect();
    assert_eq!(
        chain,
        vec![
            "-A HIVE-DRBD -p tcp -s 10.0.0.2 --dport 7000:7999 -j ACCEPT",
            "-A HIVE-DRBD -p tcp -s 10.0.0.3 --dport 7000:7999 -j ACCEPT",
            "-A HIVE-DRBD -p tcp --dport 7000:7999 -j DROP",
        ]
    );
    assert_eq!(
        rules.lines().filter(|l| l.starts_with("-A INPUT")).count(),
        1
    );
}

#[test]
fn readiness_command_lists_what_an_unprepared_host_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path();
    // A host with lvm2 but no volume group, nothing of DRBD.
    write_tool(
        bin,
        "vgs",
        "echo \"  Volume group \\\"$1\\\" not found\" >&2; exit 5",
    );
    let prep = HostPreparation::new(PackageManager::Apt);
    let check = |hive: &StageHive| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(prep.readiness_command(hive))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let hive = StageHive::new("hive0", "10.0.0.1".parse().unwrap());
    assert_eq!(
        check(&hive),
        "drbd-utils\nDRBD 9 kernel module\n/etc/systemd/system/drbd-resource@.service\n\
         /usr/local/sbin/hive-drbd-wait\nvolume group drbdvg\n"
    );
    // Without a mirrored disk no volume group is expected.
    assert!(!check(&hive.without_mirrored_device()).contains("volume group"));
}

/// A loop device over a disk image, detached when dropped.
struct Loop {
    dev: String,
}

impl Loop {
    fn new(image: &Path, mib: u64, parted: &[&str]) -> Loop {
        let f = std::fs::File::create(image).unwrap();
        f.set_len(mib * 1024 * 1024).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show", "-P"])
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup (needs root and loop devices): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let l = Loop { dev };
        let mut args = vec!["-s", l.dev.as_str()];
        args.extend(parted);
        let out = Command::new("parted").args(&args).output().unwrap();
        assert!(out.status.success(), "parted {args:?}: {out:?}");
        let _ = Command::new("partprobe").arg(&l.dev).status();
        l
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// The volume group step on a disk that only has room after its
/// partitions: real parted, lsblk and blkid on a loop device, LVM
/// stand-ins that record what they are given.
#[test]
fn volume_group_goes_on_a_new_partition_after_the_last_one() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = tmp.path().join("lvm.log");
    let rec = format!("echo \"$(basename \"$0\") $*\" >> {}", log.display());
    write_tool(&bin, "vgs", &format!("{rec}; exit 5"));
    for t in ["pvcreate", "vgcreate", "lvcreate"] {
        write_tool(&bin, t, &rec);
    }
    write_tool(&bin, "lvs", "exit 5");
    let run = |devices: Vec<String>| {
        let action = Action::CreateVolumeGroup {
            devices,
            volume_group: "hdrbdtestvg".into(),
            thin_pool: Some("pool".into()),
        };
        Command::new("sh")
            .arg("-c")
            .arg(action.command())
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
            )
            .output()
            .unwrap()
    };

    // 64 MiB with one partition up to 20 MiB: the rest becomes partition 2.
    let disk = Loop::new(
        &tmp.path().join("disk.img"),
        64,
        &["mklabel", "gpt", "mkpart", "primary", "1MiB", "20MiB"],
    );
    let out = run(vec!["/dev/hdrbd-absent".into(), disk.dev.clone()]);
    assert!(out.status.success(), "{out:?}");
    let part = format!("{}p2", disk.dev);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!(
            "vgs hdrbdtestvg\npvcreate --yes {part}\nvgcreate hdrbdtestvg {part}\n\
             lvcreate --yes --type thin-pool --chunksize 1024K --zero n --extents 95%FREE --name pool hdrbdtestvg\n"
        )
    );
    let table = Command::new("parted")
        .args(["-s", "-m", &disk.dev, "unit", "MiB", "print"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let p2 = table
        .lines()
        .find(|l| l.starts_with("2:"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        p2.starts_with("2:21.0MiB:") && p2.ends_with("lvm;"),
        "{table}"
    );

    // A disk full of partitions: a clear error naming it.
    std::fs::remove_file(&log).unwrap();
    let full = Loop::new(
        &tmp.path().join("full.img"),
        32,
        &["mklabel", "gpt", "mkpart", "primary", "1MiB", "100%"],
    );
    let out = run(vec![full.dev.clone()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        err.contains(&format!(
            "no free mirrored disk for volume group hdrbdtestvg, and no room for a partition after the last one of {}",
            full.dev
        )) && err.contains(&format!("candidates: {}:has-partitions", full.dev)),
        "{err}"
    );
}
