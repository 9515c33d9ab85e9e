//! Conformance of `hive inventory` with the original hive-builder, on the
//! cases in `tests/fixtures/inventory` (rules in its README.md), and the
//! behaviour of the other first commands.

mod common;

use common::copy_dir;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as J;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/inventory")
}

/// A temporary copy of a case, with its seed persistents in `.hive/`.
fn case_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join(name).join("inventory"),
        &dir.path().join("inventory"),
    );
    let seed = fixtures().join(name).join("seed/persistents.yml");
    if seed.exists() {
        std::fs::create_dir_all(dir.path().join(".hive")).unwrap();
        std::fs::copy(seed, dir.path().join(".hive/persistents.yml")).unwrap();
    }
    dir
}

fn hive(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hive"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn cases(prefix: char) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            (e.file_type().unwrap().is_dir() && name.starts_with(prefix)).then_some(name)
        })
        .collect();
    out.sort();
    out
}

fn valid_cases() -> Vec<String> {
    let mut v = cases('v');
    v.push("pdns".into());
    v
}

fn set_of(v: Option<&J>) -> BTreeSet<String> {
    v.and_then(J::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

const STAGES: [&str; 3] = ["private", "staging", "production"];

fn group_names(j: &J) -> BTreeSet<String> {
    j.as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "_meta")
        .cloned()
        .collect()
}

/// Compares one valid case by the README's rules; returns every difference.
fn compare(case: &str, expected: &J, got: &J) -> Vec<String> {
    let mut diffs = Vec::new();
    if group_names(expected) != group_names(got) {
        diffs.push(format!(
            "{case}: groups {:?} != {:?}",
            group_names(expected),
            group_names(got)
        ));
    }
    for g in group_names(expected) {
        for field in ["hosts", "children"] {
            let e = set_of(expected[&g].get(field));
            let o = set_of(got.get(&g).and_then(|x| x.get(field)));
            if e != o {
                diffs.push(format!("{case}: {g}.{field}: expected {e:?}, got {o:?}"));
            }
        }
    }
    let ev = expected["_meta"]["hostvars"].as_object().unwrap();
    let gv = got["_meta"]["hostvars"].as_object().unwrap();
    let eh: BTreeSet<_> = ev.keys().collect();
    let gh: BTreeSet<_> = gv.keys().collect();
    if eh != gh {
        diffs.push(format!("{case}: hosts {eh:?} != {gh:?}"));
    }
    for (host, evars) in ev {
        let Some(gvars) = gv.get(host) else { continue };
        let stage_groups = STAGES
            .iter()
            .filter(|s| set_of(expected.get(**s).and_then(|g| g.get("hosts"))).contains(host))
            .count();
        let keys: BTreeSet<&String> = evars
            .as_object()
            .unwrap()
            .keys()
            .chain(gvars.as_object().unwrap().keys())
            .collect();
        for key in keys {
            // Deliberate fix: the swarm master is the first hive of the host's
            // own stage (checked by `check_swarm_masters`).
            if key == "hive_swarm_master" {
                if evars.get(key).is_some() != gvars.get(key).is_some() {
                    diffs.push(format!("{case}: {host}.{key} presence differs"));
                }
                continue;
            }
            // Hosts in several stage groups: these come from whichever stage
            // group Ansible merged last.
            if stage_groups > 1 && (key == "hive_provider" || key == "hive_custom_hostname") {
                continue;
            }
            if evars.get(key) != gvars.get(key) {
                diffs.push(format!(
                    "{case}: {host}.{key}: expected {:?}, got {:?}",
                    evars.get(key),
                    gvars.get(key)
                ));
            }
        }
    }
    diffs
}

fn stage_prefix(h: &str) -> &'static str {
    if h.starts_with("p-") {
        "p-"
    } else if h.starts_with("s-") {
        "s-"
    } else {
        ""
    }
}

/// The fixed rule: every hive's swarm master is the first hive of its own stage.
fn check_swarm_masters(case: &str, got: &J) -> Vec<String> {
    let mut diffs = Vec::new();
    let first = set_of(got["first_hive"].get("hosts"));
    for hive in set_of(got["hives"].get("hosts")) {
        let master = got["_meta"]["hostvars"][&hive]["hive_swarm_master"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if stage_prefix(&master) != stage_prefix(&hive) || !first.contains(&master) {
            diffs.push(format!("{case}: {hive} has swarm master {master:?}"));
        }
    }
    diffs
}

fn read_yaml(p: PathBuf) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

#[test]
fn valid_cases_conform() {
    let mut diffs = Vec::new();
    for case in valid_cases() {
        let dir = case_copy(&case);
        let out = hive(dir.path(), &["-s", "private", "inventory"]);
        assert!(
            out.status.success(),
            "{case}: hive inventory failed: {}",
            text(&out.stderr)
        );
        let got: J = serde_json::from_slice(&out.stdout).unwrap();
        let expected: J = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join(&case).join("expected.json")).unwrap(),
        )
        .unwrap();
        diffs.extend(compare(&case, &expected, &got));
        diffs.extend(check_swarm_masters(&case, &got));

        let exp_p = read_yaml(fixtures().join(&case).join("expected-persistents.yml"));
        let got_p = read_yaml(dir.path().join(".hive/persistents.yml"));
        for key in ["drbd_device_map", "published_port_map"] {
            if exp_p.get(key) != got_p.get(key) {
                diffs.push(format!(
                    "{case}: persistents {key}: expected {:?}, got {:?}",
                    exp_p.get(key),
                    got_p.get(key)
                ));
            }
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn second_run_changes_nothing() {
    let dir = case_copy("pdns");
    let first = hive(dir.path(), &["inventory"]);
    assert!(first.status.success());
    let path = dir.path().join(".hive/persistents.yml");
    let before = std::fs::read_to_string(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let second = hive(dir.path(), &["-v", "inventory"]);
    assert!(second.status.success());
    assert_eq!(
        first.stdout, second.stdout,
        "same inventory on a second run"
    );
    assert_eq!(before, std::fs::read_to_string(&path).unwrap());
    assert_eq!(mtime, std::fs::metadata(&path).unwrap().modified().unwrap());
    assert!(text(&second.stderr).contains("unchanged"));
}

/// For each invalid case: what the message must name (problem, file:line).
const INVALID: &[(&str, &[&str])] = &[
    (
        "e01-unknown-service-param",
        &["bogus", "service web", "services.yml:5:"],
    ),
    ("e02-bad-stage-name", &["testing", "stage", "hive.yml:4:"]),
    (
        "e03-bad-provider",
        &["virtualbox", "provider", "stages.private", "hive.yml:5:"],
    ),
    (
        "e04-missing-cidr",
        &["cidr must be specified", "stages.private", "hive.yml:4:"],
    ),
    (
        "e05-custom-hostname-uppercase",
        &["custom_hostname", "Hive", "hive.yml:9:"],
    ),
    (
        "e06-volume-short-syntax",
        &["short syntax data:/data", "service web", "services.yml:6:"],
    ),
    (
        "e08-pull-from-without-pull-on",
        &["pull_from needs pull_on", "service web", "services.yml:7:"],
    ),
    (
        "e09-bad-port-protocol",
        &["unknown protocol icmp", "service web", "services.yml:6:"],
    ),
    (
        "e10-shared-repo-without-separate",
        &["shared_repository", "separate_repository", "hive.yml:10:"],
    ),
    (
        "e11-port-without-protocol",
        &[
            "protocol must be specified",
            "service web",
            "services.web.ports[0].protocol",
            "services.yml:6:",
        ],
    ),
];

#[test]
fn invalid_cases_fail_clearly_and_write_nothing() {
    let listed: Vec<&str> = INVALID.iter().map(|(c, _)| *c).collect();
    assert_eq!(cases('e'), listed, "every invalid fixture has expectations");
    for (case, needles) in INVALID {
        for command in ["inventory", "check"] {
            let dir = case_copy(case);
            let out = hive(dir.path(), &["-s", "private", command]);
            assert!(!out.status.success(), "{case}: {command} must fail");
            assert!(
                !dir.path().join(".hive").exists(),
                "{case}: {command} wrote .hive/"
            );
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            for needle in *needles {
                assert!(
                    all.contains(needle),
                    "{case}: {command}: {needle:?} not in:\n{all}"
                );
            }
            if command == "check" {
                let stdout = text(&out.stdout);
                assert_eq!(
                    stdout.lines().count(),
                    1,
                    "{case}: one problem, one line:\n{stdout}"
                );
                assert_eq!(out.status.code(), Some(1));
            }
        }
    }
}

#[test]
fn check_reports_every_problem_at_once() {
    let dir = case_copy("v01-minimal-defaults");
    std::fs::write(
        dir.path().join("inventory/hive.yml"),
        "plugin: hive_inventory\nname: many\nstages:\n  privat:\n    provider: vagrant\n    cidr: 10.0.0.0/24\n  staging:\n    provider: virtualbox\n    cidr: 10.0.1.1/24\n    separate_repository: maybe\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inventory/services.yml"),
        "plugin: hive_services\nservices:\n  web:\n    imag: nginx\n    ports: [\"80:80/icmp\"]\n",
    )
    .unwrap();
    let out = hive(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    for needle in [
        "hive.yml:4:3: stages.privat: unknown stage privat",
        "did you mean `private`?",
        "hive.yml:8:15: stages.staging.provider: unknown provider virtualbox",
        "hive.yml:9:11: stages.staging.cidr: 10.0.1.1/24 has host bits set",
        "hive.yml:10:26: stages.staging.separate_repository: must be a boolean",
        "services.yml:4:5: services.web.imag: unknown parameter imag",
        "did you mean `image`?",
        "unknown protocol icmp",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
}

#[test]
fn first_hive_is_per_stage_and_checked() {
    let dir = case_copy("pdns");
    let set = hive(dir.path(), &["-s", "staging", "set", "first_hive", "1"]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let out = hive(dir.path(), &["inventory"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: J = serde_json::from_slice(&out.stdout).unwrap();
    let vars = &j["_meta"]["hostvars"];
    assert_eq!(vars["s-hive0.pdns"]["hive_swarm_master"], "s-hive1.pdns");
    assert_eq!(vars["hive0.pdns"]["hive_swarm_master"], "hive0.pdns");
    assert_eq!(vars["p-hive0.pdns"]["hive_swarm_master"], "p-hive0.pdns");
    let first = set_of(j["first_hive"].get("hosts"));
    assert!(first.contains("s-hive1.pdns") && !first.contains("s-hive0.pdns"));

    // private has a single hive: index 1 is past it.
    let set = hive(dir.path(), &["-s", "private", "set", "first_hive", "1"]);
    assert!(set.status.success());
    let out = hive(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("first_hive 1 is past the last hive of stage private"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn set_is_typed_and_scoped() {
    let dir = case_copy("v01-minimal-defaults");
    let ok = hive(dir.path(), &["set", "stage", "staging"]);
    assert!(ok.status.success());
    assert!(text(&ok.stdout).contains("on global"));
    let again = hive(dir.path(), &["set", "stage", "staging"]);
    assert!(text(&again.stdout).contains("nothing changed"));
    let scoped = hive(dir.path(), &["set", "verbose", "yes"]);
    assert!(
        text(&scoped.stdout).contains("on staging"),
        "the saved stage is used"
    );
    for (args, needle) in [
        (&["set", "stage", "testing"][..], "not one of"),
        (
            &["set", "first_hive", "x"][..],
            "not a non-negative integer",
        ),
        (&["set", "verbose", "maybe"][..], "boolean value maybe"),
        (
            &["set", "phase", "build-infra"][..],
            "cannot be saved persistently",
        ),
        (&["set", "stagee", "private"][..], "did you mean stage?"),
        (
            &["set", "context_dir", "/nonexistent/dir"][..],
            "is not a directory",
        ),
    ] {
        let out = hive(dir.path(), args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let secret = hive(dir.path(), &["set", "aws_secret_access_key", "s3cr3t"]);
    assert!(secret.status.success());
    assert!(!text(&secret.stdout).contains("s3cr3t"));
    let saved = std::fs::read_to_string(dir.path().join(".hive/persistents.yml")).unwrap();
    assert!(saved.contains("verbose:\n  staging: true"), "{saved}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(".hive/persistents.yml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn list_commands_and_init() {
    let dir = case_copy("pdns");
    let init = hive(dir.path(), &["init"]);
    assert!(text(&init.stdout).contains("initialized"));
    let init2 = hive(dir.path(), &["init"]);
    assert!(text(&init2.stdout).contains("already initialized"));
    let hosts = hive(dir.path(), &["-s", "staging", "list-hosts"]);
    assert_eq!(
        text(&hosts.stdout).trim(),
        "s-hive0.pdns s-hive1.pdns s-hive2.pdns s-hive3.pdns"
    );
    let services = hive(dir.path(), &["list-services"]);
    assert_eq!(
        text(&services.stdout).trim(),
        "powerdns pdnsdb pdnsadmin proxy configure certbot"
    );
    let volumes = text(&hive(dir.path(), &["list-volumes"]).stdout);
    assert!(
        volumes.contains("pdnsdb_data") && volumes.contains("proxy_config"),
        "{volumes}"
    );
    let root = hive(
        Path::new("/"),
        &["-r", dir.path().to_str().unwrap(), "list-services"],
    );
    assert_eq!(root.stdout, services.stdout, "-r selects the project");
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let out = hive(Path::new("/"), &["completion", shell]);
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(
            script.contains("list-hosts") && script.contains("inventory"),
            "{shell}"
        );
    }
}
