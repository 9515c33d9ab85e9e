//! The `mount` module (ansible.posix.mount) applied by the runner to a
//! container allowed to mount (CAP_SYS_ADMIN; it mounts tmpfs file systems): every state, what
//! it writes into `/etc/fstab` and what is mounted; a second run changes
//! nothing; check mode changes nothing and reports what would change; then
//! unmounted and absent.
mod common;

use std::process::Command;

use hive_image::{ContainerTarget, ExecRequest, RoleLoader, Runner, Target, TaskStatus};

fn docker(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

async fn sh(t: &ContainerTarget, script: &str) -> String {
    let out = t.exec(&ExecRequest::shell(script)).await.unwrap();
    assert_eq!(out.status, 0, "{script}: {}", out.stderr_text());
    out.stdout_text()
}

fn changed(r: &hive_image::RunReport) -> Vec<String> {
    r.changed().iter().map(|e| e.task.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_states_on_a_container() {
    let d = common::docker().await;
    let name = format!("himage-test-mount-{}", std::process::id());
    // removed however the test ends
    struct Removed(String);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    let _removed = Removed(name.clone());
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    docker(&[
        "run",
        "-d",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "apparmor=unconfined",
        "--name",
        &name,
        common::DEBIAN,
        "sleep",
        "3600",
    ]);
    let t = ContainerTarget::new(d.clone(), name.clone());
    let runner = |check: bool| {
        Runner::new(RoleLoader::new([common::roles_dir()]))
            .check_mode(check)
            .ansible_playbook(None)
    };
    let roles = ["mount_role".to_string()];

    // Check mode first: everything would change, nothing does.
    let planned = runner(true).apply(&t, &roles).await.unwrap();
    assert!(changed(&planned).len() >= 5, "{:?}", changed(&planned));
    assert!(!sh(&t, "cat /etc/fstab").await.contains("/srv/cache"));
    assert!(
        sh(&t, "test -e /srv/cache || echo none")
            .await
            .contains("none")
    );

    let first = runner(false).apply(&t, &roles).await.unwrap();
    assert_eq!(first.count(TaskStatus::Failed), 0, "{:?}", first.events);
    assert_eq!(
        changed(&first),
        [
            "an fstab entry only",
            "mounted from that entry (the mount point is made)",
            "a file on it",
            "a second entry with a space in its path, not mounted at boot",
            "a mount without an entry",
        ]
    );
    let fstab = sh(&t, "cat /etc/fstab").await;
    assert!(fstab.starts_with("# UNCONFIGURED FSTAB"), "{fstab}");
    assert!(
        fstab.contains("tmpfs /srv/cache tmpfs size=8m 0 0\n"),
        "{fstab}"
    );
    assert!(
        fstab.contains("tmpfs /srv/with\\040space tmpfs noauto 0 0\n"),
        "{fstab}"
    );
    assert!(!fstab.contains("/srv/scratch"), "{fstab}");
    let mounts = sh(&t, "findmnt -n -o TARGET,OPTIONS | grep /srv/").await;
    assert!(mounts.contains("/srv/cache"), "{mounts}");
    assert!(mounts.contains("size=8192k"), "{mounts}");
    assert!(mounts.contains("/srv/scratch"), "{mounts}");
    assert!(!mounts.contains("with"), "{mounts}");

    // A second run changes nothing.
    let second = runner(false).apply(&t, &roles).await.unwrap();
    assert_eq!(changed(&second), Vec::<String>::new());

    // New options: the entry rewritten (a backup kept) and the file system
    // remounted with them, keeping what is on it; then no change.
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("resize/tasks");
    std::fs::create_dir_all(&role).unwrap();
    std::fs::write(
        role.join("main.yml"),
        "- mount:\n    path: /srv/cache\n    src: tmpfs\n    fstype: tmpfs\n    opts: size=16m\n    state: mounted\n    backup: yes\n  register: resized\n",
    )
    .unwrap();
    let resizer = Runner::new(RoleLoader::new([dir.path().to_path_buf()])).ansible_playbook(None);
    let resize_role = ["resize".to_string()];
    let resize = || resizer.apply(&t, &resize_role);
    let r = resize().await.unwrap();
    assert_eq!(r.changed().len(), 1, "{:?}", r.events);
    let fstab = sh(&t, "cat /etc/fstab").await;
    assert!(
        fstab.contains("tmpfs /srv/cache tmpfs size=16m 0 0\n"),
        "{fstab}"
    );
    assert!(!fstab.contains("size=8m"), "{fstab}");
    let mounts = sh(&t, "findmnt -n -o OPTIONS /srv/cache").await;
    assert!(mounts.contains("size=16384k"), "remounted: {mounts}");
    assert_eq!(sh(&t, "cat /srv/cache/on-tmpfs").await, "x\n");
    let backups = sh(&t, "cat /etc/fstab.*~").await;
    assert!(backups.contains("size=8m"), "{backups}");
    let r = resize().await.unwrap();
    assert_eq!(r.changed().len(), 0, "{:?}", r.events);

    // Unmounted (the entries stay), then absent (entries, mounts and
    // directories gone; the entry with a space removed from fstab only);
    // each a second time: no change.
    for (state, gone_from_fstab) in [("unmounted", false), ("absent", true)] {
        let dir = tempfile::tempdir().unwrap();
        let role = dir.path().join(format!("mount_{state}/tasks"));
        std::fs::create_dir_all(&role).unwrap();
        std::fs::write(
            role.join("main.yml"),
            format!(
                "- mount:\n    path: /srv/cache\n    state: {state}\n- mount:\n    path: /srv/scratch\n    state: {state}\n{}",
                if gone_from_fstab {
                    "- mount:\n    path: /srv/with space\n    state: absent_from_fstab\n"
                } else {
                    ""
                }
            ),
        )
        .unwrap();
        let run = |check: bool| {
            Runner::new(RoleLoader::new([dir.path().to_path_buf()]))
                .check_mode(check)
                .ansible_playbook(None)
        };
        let roles = [format!("mount_{state}")];
        let r = run(false).apply(&t, &roles).await.unwrap();
        // unmounted: both mounts; absent: the two entries (the mount
        // without an entry is left alone, as Ansible does)
        assert_eq!(r.changed().len(), 2, "{state}: {:?}", r.events);
        let mounts = sh(&t, "findmnt -n -o TARGET | grep /srv/ || true").await;
        assert_eq!(mounts, "", "{state}");
        let fstab = sh(&t, "cat /etc/fstab").await;
        assert_eq!(!fstab.contains("/srv/cache"), gone_from_fstab, "{fstab}");
        assert_eq!(!fstab.contains("/srv/with"), gone_from_fstab, "{fstab}");
        let dirs = sh(&t, "ls /srv").await;
        assert_eq!(!dirs.contains("cache"), gone_from_fstab, "{dirs}");
        let again = run(false).apply(&t, &roles).await.unwrap();
        assert_eq!(again.changed().len(), 0, "{state}: {:?}", again.events);
    }

    // Bad input fails the task with Ansible's message.
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("bad/tasks");
    std::fs::create_dir_all(&role).unwrap();
    std::fs::write(
        role.join("main.yml"),
        "- mount:\n    path: /srv/x\n    fstype: tmpfs\n    state: mounted\n",
    )
    .unwrap();
    let err = Runner::new(RoleLoader::new([dir.path().to_path_buf()]))
        .ansible_playbook(None)
        .apply(&t, &["bad".to_string()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("state is mounted but all of the following are missing: src"),
        "{err}"
    );
}
