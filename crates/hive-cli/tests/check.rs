//! `hive check` through the binary: on a sound project it says what it
//! checked; on a broken one it reports every problem a run would meet,
//! each with its file and line, sorted, as text and as JSON, and exits 1.
//! Nothing here touches a server.

mod common;

use common::{hive, scratch_project, stdout, text};

use std::path::Path;

fn edit(root: &Path, rel: &str, f: impl FnOnce(String) -> String) {
    let p = root.join(rel);
    let t = std::fs::read_to_string(&p).unwrap_or_default();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, f(t)).unwrap();
}

/// `check(edits, expected)`: the quickstart with one edit, and the problem
/// lines `hive check` must print (each `file-suffix:line: text-start`).
fn check(name: &str, args: &[&str], change: impl FnOnce(&Path), expected: &[&str]) {
    let (_dir, root) = scratch_project("examples/quickstart");
    change(&root);
    let mut all = args.to_vec();
    all.push("check");
    let o = hive(&root, &all);
    assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{name}: {}", text(&o));
    let prefix = format!("{}/", root.display());
    for (line, want) in lines.iter().zip(expected) {
        let rel = line.strip_prefix(&prefix).unwrap_or(line);
        assert!(
            rel.starts_with(want),
            "{name}: expected a line starting with\n  {want}\ngot\n  {rel}\n{}",
            text(&o)
        );
    }
}

#[test]
fn the_quickstart_is_valid() {
    let (_dir, root) = scratch_project("examples/quickstart");
    let o = hive(&root, &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stdout(&o).starts_with(
            "quickstart.example: stage private valid (1 stages; 4 servers, 1 services"
        ),
        "{}",
        text(&o)
    );
    let o = hive(&root, &["-o", "json", "check"]);
    assert!(o.status.success(), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["problems"], serde_json::json!([]));
    assert_eq!(doc["checked"]["roles"], 3, "{doc}");
    // Nothing was written but what a lookup writes: no .hive/ state.
    assert!(!root.join(".hive/persistents.yml").exists());
}

#[test]
fn an_undefined_variable_in_a_service_environment() {
    check(
        "undefined",
        &[],
        |root| {
            edit(root, "inventory/services.yml", |t| {
                t.replace(
                    "GREETING: \"{{ greeting }}\"",
                    "GREETING: \"{{ no_such_var }}\"",
                )
            })
        },
        &[
            "inventory/services.yml:24:5: environment: undefined variable on host web: 'no_such_var' is undefined",
        ],
    );
}

#[test]
fn a_cycle_between_two_variables() {
    check(
        "cycle",
        &[],
        |root| {
            edit(root, "inventory/group_vars/all.yml", |t| {
                format!("{t}\nloop_a: \"{{{{ loop_b }}}}\"\nloop_b: \"x{{{{ loop_a }}}}\"\n")
            })
        },
        &[
            "inventory/group_vars/all.yml:7: loop_a: recursive loop detected in variables of host p-hive0.quickstart.example: loop_b -> loop_a -> loop_b",
            "inventory/group_vars/all.yml:8: loop_b: recursive loop detected",
        ],
    );
}

#[test]
fn a_role_that_does_not_exist_and_an_unknown_module() {
    check(
        "roles",
        &[],
        |root| {
            edit(root, "inventory/services.yml", |t| {
                t.replace("        - web\n", "        - web\n        - no-such-role\n")
            });
            edit(root, "roles/web/tasks/main.yml", |t| {
                format!("{t}- name: not a module\n  frobnicate:\n    level: 3\n")
            });
        },
        &[
            "inventory/services.yml:",
            "roles/web/tasks/main.yml:16: module frobnicate is not known",
        ],
    );
}

#[test]
fn a_symlink_loop_under_roles() {
    check(
        "symlink",
        &[],
        |root| {
            std::os::unix::fs::symlink("..", root.join("roles/web/files")).unwrap();
            std::os::unix::fs::symlink("self", root.join("roles/self")).unwrap();
        },
        &[
            "roles/self: symbolic link loop",
            "roles/web/files: symbolic link loop",
        ],
    );
}

#[test]
fn an_undefined_stage_and_an_unsupported_provider() {
    check(
        "stage",
        &["-s", "production"],
        |_| {},
        &["inventory/hive.yml: stages: stage production is not defined (defined: private)"],
    );
    check(
        "provider",
        &["-s", "production"],
        |root| {
            edit(root, "inventory/hive.yml", |t| {
                format!(
                    "{t}  production:\n    provider: openstack\n    cidr: 192.168.210.0/24\n    region: asia-northeast1\n"
                )
            })
        },
        &[
            "inventory/hive.yml: stages.production: stage production: provider `openstack` is not yet supported",
        ],
    );
    check(
        "gcp settings",
        &["-s", "production"],
        |root| {
            edit(root, "inventory/hive.yml", |t| {
                format!(
                    "{t}  production:\n    provider: gcp\n    cidr: 192.168.210.0/24\n    region: asia-northeast1\n"
                )
            })
        },
        &[
            "inventory/hive.yml: stages.production: stage production: attribute `subnets`: subnet name quickstart.example-default is not a Compute Engine name",
        ],
    );
    check(
        "aws settings",
        &["-s", "production"],
        |root| {
            edit(root, "inventory/hive.yml", |t| {
                format!(
                    "{t}  production:\n    provider: aws\n    cidr: 192.168.210.0/24\n    region: ap-northeast-1\n"
                )
            })
        },
        &[
            "inventory/hive.yml: stages.production: stage production: attribute `subnets`: subnet quickstart.example-default has no available_zone",
        ],
    );
}

#[test]
fn every_problem_at_once_sorted_and_as_json() {
    let (_dir, root) = scratch_project("examples/quickstart");
    edit(&root, "inventory/services.yml", |t| {
        t.replace("GREETING: \"{{ greeting }}\"", "GREETING: \"{{ nope }}\"")
            .replace("        - web\n", "        - web\n        - missing-role\n")
    });
    edit(&root, "roles/web/tasks/main.yml", |t| {
        format!("{t}- frobnicate: x=1\n")
    });
    let o = hive(&root, &["-o", "json", "check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = doc["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{doc:#}");
    let keys: Vec<(String, u64)> = problems
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_string(),
                p["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "sorted by file and line");
    assert!(keys[0].0.ends_with("inventory/services.yml"), "{keys:?}");
    assert!(keys[2].0.ends_with("roles/web/tasks/main.yml") && keys[2].1 == 15);
    assert!(
        problems.iter().all(|p| p["line"].as_u64() > Some(0)),
        "{doc:#}"
    );
}

#[test]
fn a_module_argument_it_does_not_have() {
    check(
        "arguments",
        &[],
        |root| {
            edit(root, "roles/web/tasks/main.yml", |t| {
                format!("{t}- name: a typo\n  file:\n    path: /srv\n    stat: directory\n")
            })
        },
        &[
            "roles/web/tasks/main.yml:16: file: invalid arguments: unknown field `stat`, expected one of",
        ],
    );
}

#[test]
fn a_service_switch_that_is_not_a_boolean() {
    check(
        "boolean",
        &[],
        |root| {
            edit(root, "inventory/services.yml", |t| {
                t.replace(
                    "    endpoint_mode: dnsrr\n",
                    "    endpoint_mode: dnsrr\n    read_only: maybe\n    standalone: [1]\n",
                )
            })
        },
        &[
            "inventory/services.yml:14:16: services.web.read_only: must be a boolean, not the string \"maybe\" (valid: true or false (yes/no, on/off are also accepted))",
            "inventory/services.yml:15:17: services.web.standalone: must be a boolean, not a list (valid: true or false",
        ],
    );
}
