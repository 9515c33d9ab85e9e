//! Every `hive` subcommand through the built binary, as users run it, on
//! scratch copies of the repository's projects. The commands that need
//! servers are run here on a fresh stage (their plan, or the clear error
//! they give without servers); tests/quickstart_site.rs runs them on a
//! built site.

mod common;

use common::{hive, scratch_project, stdout, text};

use std::path::Path;
use std::process::Output;

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{}",
        text(o)
    );
    stdout(o)
}

fn fails(o: &Output, code: i32, message: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("panicked"), "{}", text(o));
    assert!(
        all.contains(message),
        "expected {message:?} in\n{}",
        text(o)
    );
}

/// Every subcommand (and subcommand of a group) answers `--help`.
#[test]
fn every_subcommand_has_help() {
    let (_d, root) = scratch_project("examples/quickstart");
    let top = ok(&hive(&root, &["--help"]));
    let names: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    assert!(names.len() >= 23, "{names:?}");
    for n in &names {
        let help = ok(&hive(&root, &[n, "--help"]));
        assert!(help.contains("Usage: hive"), "{n}: {help}");
    }
    for (group, sub) in [("registry", "gc"), ("image", "push"), ("volumes", "status")] {
        ok(&hive(&root, &[group, sub, "--help"]));
    }
}

#[test]
fn vars_and_render_with_the_global_output_switch() {
    let (_d, root) = scratch_project("examples/quickstart");
    let host = "p-hive0.quickstart.example";
    let yaml = ok(&hive(&root, &["vars", host]));
    assert!(yaml.contains("hive_name: quickstart.example\n"), "{yaml}");
    assert!(
        yaml.contains("greeting: hello from quickstart.example\n"),
        "{yaml}"
    );
    let json = ok(&hive(&root, &["-o", "json", "vars", host]));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["inventory_hostname"], host);
    let raw = ok(&hive(&root, &["vars", "--raw", host]));
    assert!(
        raw.contains("greeting: hello from {{ hive_name }}"),
        "{raw}"
    );
    fails(
        &hive(&root, &["vars", "p-hive9.quickstart.example"]),
        1,
        "unknown host",
    );

    assert_eq!(
        ok(&hive(&root, &["render", "{{ hive_name }}"])),
        "quickstart.example\n"
    );
    let hives = ok(&hive(
        &root,
        &["-o", "json", "render", "{{ groups.hives }}"],
    ));
    let v: serde_json::Value = serde_json::from_str(&hives).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(3), "{hives}");
    assert_eq!(
        ok(&hive(
            &root,
            &["render", "--host", "web", "{{ inventory_hostname }}"]
        )),
        "web\n"
    );
    fails(
        &hive(&root, &["render", "{{ nope }}"]),
        1,
        "'nope' is undefined",
    );
}

#[test]
fn the_context_dir_is_absolute_with_a_relative_root() {
    let (d, root) = scratch_project("examples/quickstart");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hive"))
        .current_dir(d.path())
        .args(["-r", "site", "render", "{{ hive_context_dir }}"])
        .output()
        .unwrap();
    let want = format!("{}\n", root.join(".hive/private").display());
    assert_eq!(ok(&o), want);
    // A password lookup under it writes where it says, not under
    // site/site/.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hive"))
        .current_dir(d.path())
        .args([
            "-r",
            "site",
            "render",
            "{{ lookup('password', hive_context_dir + '/pw length=8') | length }}",
        ])
        .output()
        .unwrap();
    assert_eq!(ok(&o), "8\n");
    assert!(root.join(".hive/private/pw").is_file());
    assert!(!root.join("site").exists());
}

#[test]
fn inventory_and_lists() {
    let (_d, root) = scratch_project("examples/quickstart");
    let inv: serde_json::Value = serde_json::from_str(&ok(&hive(&root, &["inventory"]))).unwrap();
    assert!(inv["_meta"]["hostvars"]["web"].is_object(), "{inv:#}");
    assert_eq!(
        ok(&hive(&root, &["list-hosts"])),
        "p-hive0.quickstart.example p-hive1.quickstart.example p-hive2.quickstart.example p-hive3.quickstart.example\n"
    );
    assert_eq!(ok(&hive(&root, &["list-services"])), "web\n");
    assert_eq!(ok(&hive(&root, &["list-volumes"])), "web_data\n");
    assert_eq!(
        ok(&hive(&root, &["-o", "json", "list-services"])),
        "[\"web\"]\n"
    );
    assert_eq!(
        ok(&hive(&root, &["-o", "json", "list-volumes"])),
        "[\"web_data\"]\n"
    );
    let hosts: Vec<String> =
        serde_json::from_str(&ok(&hive(&root, &["-o", "json", "list-hosts"]))).unwrap();
    assert_eq!(hosts.len(), 4);
    fails(
        &hive(&root, &["-s", "production", "list-hosts"]),
        1,
        "stage production is not defined",
    );
}

#[test]
fn init_set_history_completion_and_ssh_without_servers() {
    let (_d, root) = scratch_project("examples/quickstart");
    ok(&hive(&root, &["init"]));
    assert!(root.join(".hive").is_dir());
    ok(&hive(&root, &["set", "stage", "private"]));
    let p = std::fs::read_to_string(root.join(".hive/persistents.yml")).unwrap();
    assert!(p.contains("private"), "{p}");
    fails(&hive(&root, &["set", "stage", "nowhere"]), 1, "stage");
    assert!(ok(&hive(&root, &["history"])).starts_with("no run recorded"));
    assert_eq!(ok(&hive(&root, &["-o", "json", "history"])).trim(), "[]");
    assert!(ok(&hive(&root, &["completion", "bash"])).contains("_hive()"));
    fails(&hive(&root, &["ssh", "--print"]), 1, "build-infra");
}

/// The phase commands on a fresh stage: the plans say what would be
/// created; the others say what is missing. Nothing is created.
#[test]
fn phase_commands_on_a_fresh_stage() {
    let (_d, root) = scratch_project("examples/quickstart");
    let plan = ok(&hive(&root, &["build-infra", "-C"]));
    assert!(
        plan.contains("would create 4 servers with provider docker"),
        "{plan}"
    );
    for cmd in [
        &["setup-hosts", "-C"][..],
        &["build-images", "-C"],
        &["build-volumes", "-C"],
        &["build-networks", "-C"],
        &["deploy-services", "-C"],
        &["initialize-services", "-C"],
        &["volumes", "status"],
        &["registry", "gc"],
        &["image", "push", "hive-test/busybox:1"],
    ] {
        let o = hive(&root, cmd);
        let all = text(&o);
        assert!(!all.contains("panicked"), "{cmd:?}: {all}");
        if !o.status.success() {
            assert_eq!(o.status.code(), Some(1), "{cmd:?}: {all}");
            assert!(
                all.contains("build-infra") || all.contains("ssh_config"),
                "{cmd:?} without servers should say to build them: {all}"
            );
        }
    }
    assert!(!root.join(".hive/private/ssh_config").exists());
}

fn detailed(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--detailed-exitcode"];
    all.extend(args);
    hive(root, &all)
}

/// `-C --detailed-exitcode`: 2 with changes pending, 1 on error; a plan
/// that cannot be made fails with the phase's error, in text and in JSON.
#[test]
fn the_plan_tells_the_truth() {
    let (_d, root) = scratch_project("examples/quickstart");
    let o = detailed(&root, &["all", "-C"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = detailed(&root, &["build-infra", "-C"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(hive(&root, &["all", "-C"]).status.code(), Some(0));

    // An undefined variable used by an image: the plan fails, naming it.
    let services = root.join("inventory/services.yml");
    let t = std::fs::read_to_string(&services).unwrap();
    std::fs::write(
        &services,
        t.replace(
            "        - web\n",
            "        - web\n      env:\n        SITE: \"{{ domain }}\"\n",
        ),
    )
    .unwrap();
    let o = detailed(&root, &["all", "-C"]);
    fails(&o, 1, "'domain' is undefined");
    let o = hive(&root, &["-o", "json", "all", "-C"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["result"], "failed", "{doc:#}");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("'domain' is undefined"),
        "{doc:#}"
    );
    std::fs::write(&services, t).unwrap();

    // A provider hive does not support fails the plan as it fails the run.
    let hive_yml = root.join("inventory/hive.yml");
    let t = std::fs::read_to_string(&hive_yml).unwrap();
    std::fs::write(
        &hive_yml,
        format!("{t}  production:\n    provider: openstack\n    cidr: 192.168.210.0/24\n    region: asia-northeast1\n"),
    )
    .unwrap();
    let o = detailed(&root, &["-s", "production", "all", "-C"]);
    fails(&o, 1, "provider `openstack` is not yet supported");
    let o = detailed(&root, &["-s", "production", "build-infra", "-C"]);
    fails(&o, 1, "provider `openstack` is not yet supported");
}

/// `hive init DIR`: a starter project that `hive check` accepts and whose
/// plan builds a whole site; a second init writes nothing; an init that
/// would overwrite a file refuses.
#[test]
fn init_writes_a_starter_project_that_checks_and_plans() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mysite");
    let o = hive(dir.path(), &["init", root.to_str().unwrap()]);
    assert!(ok(&o).contains("wrote a starter project for site mysite.example"));
    let check = ok(&hive(&root, &["check"]));
    assert!(
        check.starts_with("mysite.example: stage private valid"),
        "{check}"
    );
    let plan = detailed(&root, &["all", "-C"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let plan = stdout(&plan);
    for want in [
        "would create 4 servers with provider docker",
        "would create image image_web",
        "would create service web",
    ] {
        assert!(plan.contains(want), "{want}: {plan}");
    }
    assert!(ok(&hive(&root, &["init"])).contains("already initialized; nothing written"));
    for provider in ["prepared", "vagrant"] {
        let other = dir.path().join(provider);
        ok(&hive(
            dir.path(),
            &["init", "--provider", provider, other.to_str().unwrap()],
        ));
        let check = ok(&hive(&other, &["check"]));
        assert!(check.contains("valid"), "{provider}: {check}");
    }
    let partial = dir.path().join("partial");
    std::fs::create_dir_all(partial.join("roles/web/tasks")).unwrap();
    std::fs::write(
        partial.join("roles/web/tasks/main.yml"),
        "- debug: msg=mine\n",
    )
    .unwrap();
    fails(
        &hive(dir.path(), &["init", partial.to_str().unwrap()]),
        1,
        "roles/web/tasks/main.yml already exist",
    );
    assert_eq!(
        std::fs::read_to_string(partial.join("roles/web/tasks/main.yml")).unwrap(),
        "- debug: msg=mine\n"
    );
}

/// `hive backup` and `hive restore` without servers: their arguments are
/// checked before anything is reached, with what would be valid.
#[test]
fn backup_and_restore_check_their_arguments() {
    let (_d, root) = scratch_project("tests/fixtures/backup-site");
    fails(
        &hive(&root, &["backup", "-l", "nosuch"]),
        1,
        "-l nosuch: no service with backup_scripts is named so (services with backups: hive-registry, db, files)",
    );
    fails(
        &hive(&root, &["restore", "--from", "yesterday"]),
        2,
        "is not a backup time: 14 digits YYYYmmddHHMMSS",
    );
    fails(
        &hive(&root, &["backup", "--list", "-l", "db"]),
        2,
        "cannot be used with",
    );
    // Before build-infra: the stage has no connection yet, and says so.
    fails(&hive(&root, &["backup"]), 1, "run `hive build-infra` first");
}

/// A run started later than the stage's saved start_phase (`hive all -S`)
/// leaves the phases before it to the next `hive all`: after `hive
/// build-images`, `hive all -S initialize-services` must not make the next
/// `hive all` skip deploy-services (the new image would never be rolled
/// out).
#[test]
fn a_later_start_keeps_the_phases_still_to_do() {
    let (_d, root) = scratch_project("examples/quickstart");
    let persistents = root.join(".hive/persistents.yml");
    std::fs::create_dir_all(persistents.parent().unwrap()).unwrap();
    std::fs::write(&persistents, "start_phase:\n  private: build-volumes\n").unwrap();
    let o = hive(&root, &["all", "-S", "initialize-services"]);
    let printed = text(&o);
    assert!(
        printed.contains("phases initialize-services\n"),
        "{printed}"
    );
    let saved = std::fs::read_to_string(&persistents).unwrap();
    assert!(saved.contains("private: build-volumes"), "{saved}");
    let o = hive(&root, &["all"]);
    let printed = text(&o);
    assert!(
        printed
            .contains("phases build-volumes, build-networks, deploy-services, initialize-services"),
        "{printed}"
    );
}
