//! Backup and restore end to end, through the `hive` binary, on the
//! smallest docker-provider site (`tests/fixtures/backup-site`: one hive
//! and a repository server; a service dumping and loading its rows with
//! commands and a service backed up as a directory):
//!
//! - a killed run's `apt-get` still holding apt's lists lock on every
//!   server does not fail the next `hive all`: setup-hosts waits for it,
//!   saying so;
//! - data written, `hive backup` (`-C` plans; the failing command's own
//!   output is in the error, naming the service), `--list -o json`,
//!   setup-hosts' backup step changes nothing on a second run;
//! - the site removed with `build-infra -D` (the mother's copies stay),
//!   rebuilt with `hive all`, `hive restore`: the data are identical, byte
//!   for byte, and the backups restored from are still there;
//! - a restore is refused while a service has no running container.
//!
//! It needs what `scripts/setup-machine.sh` installs (a Docker engine, the
//! `hive/debian-server`, `hive/registry` and `hive-test/debian` images)
//! and the Debian mirrors.

mod common;

use common::{hive, stdout, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const HIVE: &str = "hive-p-hive0.backup.example";
const REPOSITORY: &str = "hive-p-hive1.backup.example";

fn project() -> (tempfile::TempDir, PathBuf) {
    common::scratch_project("tests/fixtures/backup-site")
}

/// `sh -c script` in the server container `server`, with `stdin`; stdout.
fn on(server: &str, script: &str) -> String {
    let o = Command::new("docker")
        .args(["exec", server, "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{server}: {script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `sh -c script` in the running container of `service` on the hive.
fn in_service(service: &str, script: &str) -> String {
    on(
        HIVE,
        &format!(
            "c=$(docker ps -q --filter label=com.docker.swarm.service.name={service} --filter status=running | head -n1); \
             [ -n \"$c\" ] || {{ echo 'no container of {service}' >&2; exit 1; }}; docker exec \"$c\" sh -c '{}'",
            script.replace('\'', r"'\''")
        ),
    )
}

/// The data of both services, as checksums of every file (and its path).
fn data() -> String {
    let db = in_service("db", "sha256sum /var/lib/db/rows.db");
    let files = in_service(
        "files",
        "cd /srv/files && find . -type f -exec sha256sum {} + | sort && find . | sort",
    );
    format!("{db}{files}")
}

fn run_ok(root: &Path, args: &[&str]) -> String {
    let o = hive(root, args);
    assert!(o.status.success(), "hive {args:?}: {}", text(&o));
    stdout(&o)
}

fn json(root: &Path, args: &[&str]) -> serde_json::Value {
    let o = hive(root, args);
    assert!(o.status.success(), "hive {args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

#[test]
fn backup_destroy_rebuild_restore() {
    let (_tmp, root) = project();
    let _cleanup = common::DestroyOnDrop(root.clone());

    // A run killed during setup-hosts leaves its apt-get running on the
    // servers: here one holding apt's lists lock for 20 s on each.
    run_ok(&root, &["build-infra"]);
    for server in [HIVE, REPOSITORY] {
        let o = Command::new("docker")
            .args([
                "exec",
                "-d",
                server,
                "apt-get",
                "-o",
                "APT::Update::Pre-Invoke::=sleep 20",
                "update",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        on(REPOSITORY, "cat /proc/locks").contains("POSIX"),
        "the lock is not held"
    );
    let out = run_ok(&root, &["all"]);
    assert!(out.contains("all: done"), "{out}");
    assert!(
        out.contains("waiting up to 600 s for /var/lib/apt/lists/lock by process"),
        "{out}"
    );

    // Data: random rows and a tree of files, some binary.
    in_service("db", "head -c 300000 /dev/urandom >/var/lib/db/rows.db");
    in_service(
        "files",
        "mkdir -p /srv/files/a/b && head -c 50000 /dev/urandom >/srv/files/a/b/blob && echo hello >/srv/files/hello.txt && printf 'x\\ny' >'/srv/files/a/with space'",
    );
    let before = data();

    // The backup step is in place, and a second run changes nothing.
    let units = on(
        REPOSITORY,
        "systemctl is-enabled hive-backup.timer; systemctl is-active hive-backup.timer; grep OnCalendar /etc/systemd/system/hive-backup.timer; ls /var/lib/hive-backup.d",
    );
    assert_eq!(
        units, "enabled\nactive\nOnCalendar=*-*-* 01:00:00\ndb\nfiles\n",
        "{units}"
    );
    let again = json(&root, &["-o", "json", "setup-hosts", "-T", "backup"]);
    let changes = again["phases"][0]["changes"].as_array().unwrap();
    assert!(changes.is_empty(), "{again:#}");
    // The same for the services' definitions written by deploy-services.
    let again = json(&root, &["-o", "json", "deploy-services"]);
    let changes = again["phases"][0]["changes"].as_array().unwrap();
    assert!(changes.is_empty(), "{again:#}");

    // -C plans and takes nothing.
    let plan = run_ok(&root, &["backup", "-C"]);
    assert!(plan.contains("would use backup-db-<stamp>.db.gz"), "{plan}");
    assert!(
        on(REPOSITORY, "ls /home/admin/backup 2>/dev/null | wc -l").trim() == "0",
        "check mode took a backup"
    );

    let out = run_ok(&root, &["backup"]);
    for name in ["db", "files", "hive-registry"] {
        assert!(
            out.contains(&format!("{name}: backup ok: backup-{name}-")),
            "{out}"
        );
    }
    let mother = root.join(".hive/private/backups");
    let copies: Vec<String> = std::fs::read_dir(&mother)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(copies.len(), 3, "{copies:?}");
    for c in &copies {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(mother.join(c))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{c}");
    }
    let latest = on(
        REPOSITORY,
        "readlink /home/admin/backup/backup-db-latest.db.gz",
    );
    assert!(copies.contains(&latest.trim().to_string()), "{latest}");

    // A failing command: the error names the service and carries the
    // command's own output; the latest backup stays as it was.
    in_service("db", "mv /var/lib/db/rows.db /var/lib/db/rows.db.away");
    let failed = hive(&root, &["backup", "-l", "db"]);
    assert!(!failed.status.success(), "{}", text(&failed));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("service db: backup db failed on p-hive1.backup.example"),
        "{err}"
    );
    assert!(err.contains("gzip -c /var/lib/db/rows.db"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert_eq!(
        on(
            REPOSITORY,
            "readlink /home/admin/backup/backup-db-latest.db.gz"
        ),
        latest
    );
    in_service("db", "mv /var/lib/db/rows.db.away /var/lib/db/rows.db");

    // The same for programs.
    let doc = json(&root, &["-o", "json", "backup", "-l", "files"]);
    assert_eq!(doc["action"], "backup", "{doc:#}");
    assert_eq!(doc["results"][0]["service"], "files", "{doc:#}");
    assert_eq!(doc["results"][0]["status"], "ok", "{doc:#}");
    let extra = doc["results"][0]["mother_copy"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(&extra).unwrap();
    on(
        REPOSITORY,
        &format!(
            "cd /home/admin/backup && rm {} && ln -sfn {} backup-files-latest.tar.gz",
            doc["results"][0]["file"].as_str().unwrap(),
            copies
                .iter()
                .find(|c| c.starts_with("backup-files-"))
                .unwrap()
        ),
    );
    // The registry's data, as it was backed up.
    let registry_data = "cd $(docker volume inspect -f '{{.Mountpoint}}' hive-registry-data) && find . -type f -exec sha256sum {} + | sort";
    let registry_before = on(REPOSITORY, registry_data);

    // --list, for programs.
    let listing = json(&root, &["-o", "json", "backup", "--list"]);
    let backups = listing["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 3, "{listing:#}");
    assert!(
        backups
            .iter()
            .all(|b| b["on_repository"] == true && b["on_mother"] == true),
        "{listing:#}"
    );
    let stamp = backups[0]["stamp"].as_str().unwrap().to_string();

    // The site goes; the mother's copies stay. Rebuilt, it has no data.
    run_ok(&root, &["build-infra", "-D", "--yes"]);
    assert_eq!(std::fs::read_dir(&mother).unwrap().count(), 3);
    let listing = json(&root, &["-o", "json", "backup", "--list"]);
    assert!(listing["repository_error"].is_string(), "{listing:#}");
    assert_eq!(listing["backups"].as_array().unwrap().len(), 3);
    let out = run_ok(&root, &["all"]);
    assert!(out.contains("all: done"), "{out}");
    assert_ne!(
        on(
            HIVE,
            "docker exec $(docker ps -q --filter label=com.docker.swarm.service.name=files) ls -A /srv/files"
        ),
        "a\nhello.txt\n"
    );

    // Restore: planned, then done; identical data, byte for byte.
    let plan = run_ok(&root, &["restore", "-C", "-l", "db,files"]);
    assert!(plan.contains("sent from"), "{plan}");
    let out = run_ok(&root, &["restore", "-l", "db,files", "--from", &stamp]);
    assert!(out.contains("db: restore ok"), "{out}");
    assert!(out.contains("files: restore ok"), "{out}");
    assert_eq!(data(), before);
    // The backups restored from are on the repository server, unchanged.
    for c in copies.iter().filter(|c| !c.contains("hive-registry")) {
        let there = on(
            REPOSITORY,
            &format!("sha256sum </home/admin/backup/{c} | cut -c1-64"),
        );
        let here = Command::new("sha256sum")
            .arg(mother.join(c))
            .output()
            .unwrap();
        assert_eq!(
            there.trim(),
            &String::from_utf8_lossy(&here.stdout)[..64],
            "{c}"
        );
    }

    // The registry's data too (the registry is stopped meanwhile).
    let out = run_ok(&root, &["restore", "-l", "hive-registry"]);
    assert!(out.contains("hive-registry: restore ok"), "{out}");
    assert_eq!(on(REPOSITORY, registry_data), registry_before);
    assert_eq!(
        on(
            REPOSITORY,
            "docker inspect -f '{{.State.Running}}' registry"
        ),
        "true\n"
    );

    // The latest backups, as the repository server now has them.
    let out = run_ok(&root, &["restore", "-l", "files"]);
    assert!(out.contains("files: restore ok"), "{out}");
    assert_eq!(data(), before);

    // No running container: the restore is refused, nothing restored.
    on(
        HIVE,
        "docker service scale -d db=0 >/dev/null; i=0; \
         while [ -n \"$(docker ps -q --filter label=com.docker.swarm.service.name=db)\" ]; do \
         i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 0.5; done",
    );
    let refused = hive(&root, &["restore", "-l", "db,files"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("service db: no running container"), "{err}");
    assert!(err.contains("nothing was restored"), "{err}");
}
