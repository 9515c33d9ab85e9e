//! Faults survived, through the `hive` binary, on one docker-provider site
//! (`tests/fixtures/faults-site`: one hive, a repository server, a service
//! with a role-built image, a volume loaded by an initialize role and a
//! backup): a `#[test]` per fault family, each injecting its fault once
//! per case (`FAULTS_ROUNDS` times with `scripts/faults.sh N`) and
//! counting the injections, those after which the next plain `hive all`
//! left a complete, correct site (healthy, the image and data the project
//! gives, every file under `.hive/` whole) and those that needed a hand.
//! Random moments come from a seeded generator whose seed is printed
//! (`FAULTS_SEED` replays it). `cargo test` runs one case of each family
//! (picked by the seed); `scripts/faults.sh N` runs every case N times and
//! prints the table.
//!
//! It needs what `scripts/setup-machine.sh` installs (a Docker engine, the
//! `hive/debian-server`, `hive/registry` and `hive-test/debian` images)
//! and the Debian mirrors.

mod common;
#[path = "faults/site.rs"]
mod site;

use common::{hive, text};
use site::{BROKEN_RUN, HIVE, PHASES, REPOSITORY, Running, family, on, rounds, seeded, settle};

use std::process::Command;
use std::time::Duration;

/// `kill -9` of `hive all` at a random moment of a phase, on the built site
/// and from nothing (the servers destroyed first); then a plain `hive
/// all`. After every kill, every file under `.hive/` is whole.
#[test]
fn kill_all_at_random_moments() {
    family("kill -9 of hive all", |root, tally| {
        let mut rng = seeded("kill -9 of hive all");
        for round in 0..rounds() {
            for from_nothing in site::cases(&mut rng, &[false, true], Some(false)) {
                let phase = PHASES[rng.below(PHASES.len() as u64) as usize];
                let delay = Duration::from_millis(rng.below(4000));
                if from_nothing {
                    let o = hive(root, &["build-infra", "-D", "--yes"]);
                    assert!(o.status.success(), "{}", text(&o));
                }
                let mut run = Running::start(root, &["all", "-S", "build-infra"]);
                let reached = run.wait_for(&format!("=== {phase}"), BROKEN_RUN);
                std::thread::sleep(delay);
                let killed = run.kill9();
                let what = format!(
                    "round {round}, {}: killed {} ms into {phase}{}",
                    if from_nothing {
                        "from nothing"
                    } else {
                        "built site"
                    },
                    delay.as_millis(),
                    if reached && killed {
                        ""
                    } else {
                        " (the run had ended)"
                    }
                );
                let whole = site::state_whole(root);
                settle(root, tally, &what, whole);
            }
        }
    });
}

/// A server's container stopped in the middle of setup-hosts,
/// deploy-services and initialize-services: the phase fails naming the
/// server (or succeeds); with the container started again, a plain re-run
/// completes the site.
#[test]
fn server_container_stopped_mid_phase() {
    family("server container stopped", |root, tally| {
        let mut rng = seeded("server container stopped");
        for round in 0..rounds() {
            for phase in site::cases(
                &mut rng,
                &["setup-hosts", "deploy-services", "initialize-services"],
                None,
            ) {
                let (container, server) = site::any_server(&mut rng);
                let delay = Duration::from_millis(rng.below(3000));
                let first = site::fault_in_phase(root, phase, delay, server, || {
                    let stopped = Command::new("docker")
                        .args(["stop", container])
                        .output()
                        .unwrap();
                    assert!(stopped.status.success(), "{}", text(&stopped));
                });
                let started = Command::new("docker")
                    .args(["start", container])
                    .output()
                    .unwrap();
                assert!(started.status.success(), "{}", text(&started));
                let what = format!(
                    "round {round}: {container} stopped {} ms into {phase}",
                    delay.as_millis()
                );
                settle(root, tally, &what, first);
            }
        }
    });
}

/// The hive's Docker engine restarted in the middle of deploy-services and
/// of initialize-services: the phase fails naming the server, or succeeds;
/// a plain re-run completes the site.
#[test]
fn inner_docker_restarted_mid_phase() {
    family("docker engine restarted", |root, tally| {
        let mut rng = seeded("docker engine restarted");
        for round in 0..rounds() {
            for phase in site::cases(
                &mut rng,
                &["setup-hosts", "deploy-services", "initialize-services"],
                None,
            ) {
                let delay = Duration::from_millis(rng.below(3000));
                let first = site::fault_in_phase(root, phase, delay, "p-hive0", || {
                    let (ok, out) = on(HIVE, "systemctl restart docker");
                    assert!(ok, "{out}");
                });
                let what = format!(
                    "round {round}: the hive's engine restarted {} ms into {phase}",
                    delay.as_millis()
                );
                settle(root, tally, &what, first);
            }
        }
    });
}

/// The SSH connections to a server cut in the middle of a step (its sshd
/// session processes killed, the listener kept): the run fails naming the
/// server, or succeeds; a plain re-run completes the site.
#[test]
fn ssh_connection_cut_mid_step() {
    family("ssh connection cut", |root, tally| {
        let mut rng = seeded("ssh connection cut");
        for round in 0..rounds() {
            for phase in site::cases(
                &mut rng,
                &["setup-hosts", "build-images", "deploy-services"],
                None,
            ) {
                let (container, server) = site::any_server(&mut rng);
                let delay = Duration::from_millis(rng.below(3000));
                let mut killed = String::new();
                let first = site::fault_in_phase(root, phase, delay, server, || {
                    // Session processes are "sshd: USER [priv]" and
                    // "sshd: USER@notty"; the listener is "sshd: /usr/sbin/sshd".
                    killed = on(
                        container,
                        "pkill -KILL -e -f '^sshd: [a-z]' || echo 'no session'",
                    )
                    .1;
                });
                let what = format!(
                    "round {round}: sessions to {container} killed {} ms into {phase} ({})",
                    delay.as_millis(),
                    if killed.contains("killed") {
                        "cut"
                    } else {
                        "none open"
                    }
                );
                settle(root, tally, &what, first);
            }
        }
    });
}

/// The registry's storage full during build-images (a small tmpfs over its
/// data directory on the repository server): build-images fails with an
/// error saying so and never reports the image built; with the space back,
/// a plain re-run completes the site.
#[test]
fn registry_storage_full_during_build_images() {
    family("registry storage full", |root, tally| {
        for round in 0..rounds() {
            site::set_build(root, &format!("full-{round}"));
            let data = "$(docker volume inspect -f '{{.Mountpoint}}' hive-registry-data)";
            let (ok, out) = on(
                REPOSITORY,
                &format!(
                    "d={data} && mount -t tmpfs -o size=256k tmpfs \"$d\" && docker restart registry >/dev/null"
                ),
            );
            assert!(ok, "{out}");
            let o = hive(root, &["build-images"]);
            let printed = text(&o);
            let first = if o.status.success() {
                Err(format!(
                    "build-images succeeded on a full registry: {printed}"
                ))
            } else if !printed.contains("pushing")
                || !(printed.contains("no space left on device")
                    || printed.contains("docker logs registry"))
            {
                Err(format!(
                    "the error does not say what failed and why: {printed}"
                ))
            } else if printed.contains("app: built") || printed.contains("converged") {
                Err(format!("a build reported done: {printed}"))
            } else {
                Ok(())
            };
            let (ok, out) = on(
                REPOSITORY,
                &format!("d={data} && umount \"$d\" && docker restart registry >/dev/null"),
            );
            assert!(ok, "{out}");
            settle(
                root,
                tally,
                &format!("round {round}: a 256 KiB registry"),
                first,
            );
        }
    });
}

/// A service whose command does not exist and one whose task keeps
/// failing: deploy-services fails with the task's error, and never reports
/// the service converged. Without them, a plain re-run completes the site.
#[test]
fn failing_services_are_never_converged() {
    family("failing service", |root, tally| {
        let services = root.join("inventory/services.yml");
        let original = std::fs::read_to_string(&services).unwrap();
        for round in 0..rounds() {
            for (name, command, error) in [
                ("nocommand", r#"["/no/such/command"]"#, "/no/such/command"),
                (
                    "crashing",
                    r#"["sh", "-c", "echo dying; sleep 1; exit 3"]"#,
                    "exited with code 3",
                ),
            ] {
                std::fs::write(
                    &services,
                    format!(
                        "{original}  {name}:\n    image:\n      from: hive-test/debian:bookworm\n    command: {command}\n    endpoint_mode: dnsrr\n"
                    ),
                )
                .unwrap();
                let o = hive(root, &["build-images", "-l", name]);
                assert!(o.status.success(), "{}", text(&o));
                let o = hive(root, &["deploy-services", "-l", name, "--timeout", "25"]);
                let printed = text(&o);
                let first = if o.status.success() {
                    Err(format!("deploy-services succeeded: {printed}"))
                } else if !printed.contains(name) || !printed.contains(error) {
                    Err(format!("the error lacks {name} or {error:?}: {printed}"))
                } else if printed.contains(&format!("{name}: converged")) {
                    Err(format!("reported converged: {printed}"))
                } else {
                    Ok(())
                };
                std::fs::write(&services, &original).unwrap();
                let _ = on(
                    HIVE,
                    &format!("docker service rm {name} >/dev/null 2>&1; true"),
                );
                settle(
                    root,
                    tally,
                    &format!("round {round}: service {name}"),
                    first,
                );
            }
        }
    });
}

/// `kill -9` of runs that write the stage's state (ssh_config, known_hosts,
/// the SSH key, the CA and certificates, persistents, the journal) at many
/// moments: the servers destroyed, then `hive all` killed again and again
/// at random moments of its first seconds, each run going on from what the
/// last one left. After each kill every file under `.hive/` is whole and
/// no temporary file is left; the last plain run completes the site.
#[test]
fn kill_during_state_writes() {
    family("kill -9 during state writes", |root, tally| {
        let mut rng = seeded("kill -9 during state writes");
        // From nothing: the first seconds of a build write the most state
        // (the key pair, the CA, the servers' records, the journal).
        let o = hive(root, &["build-infra", "-D", "--yes"]);
        assert!(o.status.success(), "{}", text(&o));
        let kills = if site::full() { 8 * rounds() } else { 4 };
        for n in 0..kills {
            let delay = Duration::from_millis(200 + rng.below(12_000));
            let run = Running::start(root, &["all"]);
            std::thread::sleep(delay);
            let alive = run.kill9();
            let mut first = site::state_whole(root);
            let left = site::temporaries(root);
            if first.is_ok() && !left.is_empty() {
                first = Err(format!("temporary files left: {left:?}"));
            }
            let what = format!(
                "kill {n}: {} ms into hive all{}",
                delay.as_millis(),
                if alive { "" } else { " (it had ended)" }
            );
            if n + 1 == kills {
                settle(root, tally, &what, first);
            } else {
                tally.record(&what, first);
            }
        }
    });
}

/// `hive backup` and `hive restore` take the stage lock: while `hive all`
/// holds it they are refused with the holder's details, and a `hive all`
/// while a restore holds it is refused as well.
#[test]
fn backup_and_restore_take_the_stage_lock() {
    family("backup and restore locked", |root, tally| {
        for round in 0..rounds() {
            let mut run = Running::start(root, &["all", "-S", "setup-hosts"]);
            let started = run.wait_for("=== setup-hosts", BROKEN_RUN);
            let lock = std::fs::read_to_string(root.join(".hive/private/lock")).unwrap_or_default();
            let mut first = if started && lock.contains("hive") {
                Ok(())
            } else {
                Err(format!("no holder in the lock file: {lock:?}"))
            };
            for args in [&["backup"][..], &["restore", "-l", "app"]] {
                let o = hive(root, args);
                let err = String::from_utf8_lossy(&o.stderr);
                if o.status.success()
                    || !err.contains("is locked by")
                    || !err.contains("hive -r")
                    || !err.contains("all -S setup-hosts")
                {
                    first = Err(format!("hive {args:?} while hive all runs: {}", text(&o)));
                }
            }
            let first = first.and_then(|()| match run.finish(BROKEN_RUN) {
                Ok((true, _)) => Ok(()),
                Ok((false, printed)) => Err(format!("the locking run failed: {printed}")),
                Err(e) => Err(e),
            });
            // A restore holding the lock refuses a hive all.
            let o = hive(root, &["backup", "-l", "app"]);
            assert!(
                o.status.success(),
                "{}\n(the concurrent runs: {first:?})",
                text(&o)
            );
            let restore = Running::start(root, &["restore", "-l", "app"]);
            let mut refused = None;
            for _ in 0..50 {
                let lock =
                    std::fs::read_to_string(root.join(".hive/private/lock")).unwrap_or_default();
                if lock.contains("restore") {
                    refused = Some(hive(root, &["all"]));
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let restored = restore.finish(BROKEN_RUN);
            let first = first.and_then(|()| match (refused, restored) {
                (_, Err(e)) | (_, Ok((false, e))) => Err(format!("the restore failed: {e}")),
                (None, _) => Err("the restore never held the lock".to_string()),
                (Some(o), _) => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    if !o.status.success()
                        && err.contains("is locked by")
                        && err.contains("restore")
                    {
                        Ok(())
                    } else {
                        Err(format!("hive all while a restore runs: {}", text(&o)))
                    }
                }
            });
            settle(
                root,
                tally,
                &format!("round {round}: concurrent runs"),
                first,
            );
        }
    });
}
