//! What the end-to-end tests on docker-provider stages share: the docker
//! command, a shell in a server's container, and the clean-up of
//! everything a test's stage created.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::process::{Command, Output};

/// `docker ARGS`.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker")
}

/// `docker ARGS`, which must succeed; its standard output.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sh -c script` in `container`; (success, stdout + stderr).
pub fn exec(container: &str, script: &str) -> (bool, String) {
    let out = docker(&["exec", container, "sh", "-c", script]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Removes the containers, volumes and networks labelled `label` (the
/// stage label the docker provider puts on everything of a stage), unless
/// the environment variable `keep` is set (to look at a failed run).
pub fn remove_labelled(label: &str, keep: &str) {
    if std::env::var_os(keep).is_some() {
        return;
    }
    let filter = format!("label={label}");
    for (list, remove) in [
        (vec!["ps", "-aq"], vec!["rm", "-f", "-v"]),
        (vec!["volume", "ls", "-q"], vec!["volume", "rm", "-f"]),
        (vec!["network", "ls", "-q"], vec!["network", "rm"]),
    ] {
        let mut args = list;
        args.extend(["--filter", filter.as_str()]);
        let ids = String::from_utf8_lossy(&docker(&args).stdout).into_owned();
        for id in ids.lines().filter(|l| !l.is_empty()) {
            let mut rm = remove.clone();
            rm.push(id);
            let _ = docker(&rm);
        }
    }
}
