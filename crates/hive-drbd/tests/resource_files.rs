//! Resource files: compared with reviewed expected files and accepted by
//! the real `drbdadm` parser (drbd-utils from Debian).

mod common;

use std::process::Command;

use hive_drbd::render_resource;

fn drbdadm(args: &[&str], node: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new("drbdadm");
    cmd.args(args);
    if let Some(n) = node {
        cmd.env("__DRBD_NODE__", n);
    }
    let out = cmd
        .output()
        .expect("drbdadm must be installed (scripts/setup-machine.sh installs drbd-utils)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Renders the case, compares with `<case>.res`, and has `drbdadm` parse
/// it as a whole and as every hive of the stage.
fn check(case: &str) {
    let dir = common::fixtures().join("resources");
    let (stage, volume) = common::load_case(&dir, case);
    let text = render_resource(&stage, &volume).unwrap();
    common::check_snapshot(&text, &dir.join(format!("{case}.res")));

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(format!("{}.res", volume.name));
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap();

    let (rc, out) = drbdadm(&["-c", file, "sh-nop"], None);
    assert_eq!(rc, 0, "drbdadm sh-nop refused {case}:\n{out}");

    for (node_id, hive) in stage.hives().iter().enumerate() {
        let (rc, dump) = drbdadm(&["-c", file, "dump", &volume.name], Some(&hive.name));
        assert_eq!(
            rc, 0,
            "drbdadm dump as {} refused {case}:\n{dump}",
            hive.name
        );
        assert!(dump.contains(&format!("node-id {node_id};")), "{dump}");
        // What drbdadm would do to bring the resource up on this hive.
        let (rc, up) = drbdadm(&["-c", file, "-d", "up", &volume.name], Some(&hive.name));
        assert_eq!(rc, 0, "drbdadm -d up as {} failed:\n{up}", hive.name);
        let new_minor = format!("drbdsetup new-minor {} {} 0", volume.name, volume.device_id);
        assert!(up.contains(&new_minor), "{up}");
        assert!(
            up.contains("--quorum=majority --on-no-quorum=io-error"),
            "{up}"
        );
        let attach = format!(
            "drbdsetup attach {} {}",
            volume.device_id,
            volume.backing_path()
        );
        assert_eq!(
            up.contains(&attach),
            volume.has_disk_on(hive),
            "attach on {} of {case}:\n{up}",
            hive.name
        );
        for peer in stage.hives().iter().filter(|p| p.name != hive.name) {
            assert!(
                up.contains(&format!("drbdsetup new-peer {} ", volume.name))
                    && up.contains(&peer.name),
                "no connection to {} from {}:\n{up}",
                peer.name,
                hive.name
            );
        }
    }
}

#[test]
fn one_hive() {
    check("one-hive");
}

#[test]
fn three_hives() {
    check("three-hives");
}

#[test]
fn diskless_host() {
    check("diskless");
}

#[test]
fn host_without_mirrored_device() {
    check("no-mirrored-device");
}

#[test]
fn ipv6_addresses() {
    check("ipv6");
}

#[test]
fn drbdadm_rejects_a_broken_file() {
    // The parser check is meaningful: a resource naming an unknown host in
    // its mesh is refused.
    let dir = common::fixtures().join("resources");
    let (stage, volume) = common::load_case(&dir, "three-hives");
    let text = render_resource(&stage, &volume)
        .unwrap()
        .replace("hosts s-hive0.pdns", "hosts host9 s-hive0.pdns");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("broken.res");
    std::fs::write(&file, text).unwrap();
    let (rc, out) = drbdadm(&["-c", file.to_str().unwrap(), "sh-nop"], None);
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("host9"), "{out}");
}

#[test]
fn invalid_volume_is_refused_with_key() {
    let dir = common::fixtures().join("resources");
    let (stage, mut volume) = common::load_case(&dir, "three-hives");
    volume.diskless = vec!["s-hive7.pdns".into()];
    let err = render_resource(&stage, &volume).unwrap_err().to_string();
    assert!(
        err.contains("ldap_data: invalid diskless: 's-hive7.pdns' is not a hive"),
        "{err}"
    );
}
