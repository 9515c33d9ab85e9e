//! The roles of the original's pdns example: everything runs natively in
//! check mode except the project's custom modules in lib/, which go to
//! ansible-playbook when it is there and stop the run before it starts
//! when it is not.
mod common;

use std::path::PathBuf;

use hive_image::{
    ContainerTarget, Error, ExecRequest, RoleLoader, Runner, Target, TaskStatus, Vars,
};
use serde_json::json;

fn pdns() -> PathBuf {
    PathBuf::from("/work/shared/reference/hive-builder/examples/pdns")
}

fn roles() -> Vec<String> {
    [
        "proxy-configure",
        "powerdns-initdb",
        "powerdns-init",
        "powerdns-admin",
        "certbot-runner",
    ]
    .map(String::from)
    .to_vec()
}

fn site_vars() -> Vars {
    let v = json!({
        "hive_stage": "private",
        "dns_mode": "private",
        "domain": "pdns.example",
        "groups": {
            "hives": ["p-hive0.pdns", "p-hive1.pdns"],
            "private": ["p-hive0.pdns", "p-hive1.pdns", "powerdns", "pdnsadmin"],
            "services": ["powerdns", "pdnsadmin"],
        },
        "hostvars": {
            "p-hive0.pdns": {"hive_private_ip": "10.0.0.10"},
            "p-hive1.pdns": {"hive_private_ip": "10.0.0.11"},
            "powerdns": {"db_password": "pw"},
            "pdnsadmin": {"db_password": "pw2", "hive_labels": {"webgate": true, "published_name": "admin"}},
        },
    });
    v.as_object().unwrap().clone().into_iter().collect()
}

#[test]
fn only_lib_modules_are_unsupported() {
    let runner = Runner::new(RoleLoader::new([pdns().join("roles")])).ansible_playbook(None);
    let list = runner.unsupported(&roles()).unwrap();
    let modules: Vec<&str> = list
        .iter()
        .map(|l| l.rsplit(": ").next().unwrap())
        .collect();
    assert_eq!(
        modules,
        ["powerdns_zone", "powerdns_record", "powerdns_record"],
        "{list:#?}"
    );
    assert!(
        list[0].ends_with("powerdns-init/tasks/main.yml:25: powerdns_zone"),
        "{list:#?}"
    );
}

#[tokio::test]
async fn without_ansible_the_run_stops_before_starting() {
    let d = common::docker().await;
    let name = common::container(&d, "pdns-noans", common::DEBIAN).await;
    let target = ContainerTarget::new(d.clone(), name.clone());
    let runner = Runner::new(RoleLoader::new([pdns().join("roles")]))
        .ansible_playbook(None)
        .check_mode(true)
        .vars(site_vars());
    let err = runner.apply(&target, &roles()).await.unwrap_err();
    let Error::Unsupported { list } = &err else {
        panic!("{err}")
    };
    assert_eq!(list.len(), 3);
    assert!(
        err.to_string()
            .contains("powerdns-init/tasks/main.yml:32: powerdns_record"),
        "{err}"
    );
    // the roles without custom modules run natively in check mode, changing nothing
    let ok_roles: Vec<String> = roles()
        .into_iter()
        .filter(|r| r != "powerdns-init")
        .collect();
    let report = runner.apply(&target, &ok_roles).await.unwrap();
    assert_eq!(report.count(TaskStatus::Failed), 0, "{:#?}", report.events);
    assert!(report.changed().len() >= 4, "{:#?}", report.events);
    let out = target
        .exec(&ExecRequest::shell(
            "ls /usr/sbin/proxy-configure /app 2>&1; true",
        ))
        .await
        .unwrap();
    assert!(
        out.stdout_text().contains("No such file"),
        "check mode wrote files: {}",
        out.stdout_text()
    );
    target.close().await;
    common::remove(&d, &name).await;
}

#[tokio::test]
async fn with_ansible_lib_modules_go_through_it() {
    let d = common::docker().await;
    let name = common::container(&d, "pdns-ans", common::DEBIAN).await;
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("calls.log");
    let fake = tmp.path().join("ansible-playbook");
    // records its invocation, answers like a successful run
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n{{ echo \"ARGS $*\"; echo \"LIB $ANSIBLE_LIBRARY\"; for a in \"$@\"; do case \"$a\" in *.yml) cat \"$a\";; @*) cat \"${{a#@}}\";; esac; done; echo; }} >>{}\n\
             echo 'PLAY RECAP'; echo 'x : ok=1 changed=1 unreachable=0 failed=0'\n",
            log.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let target = ContainerTarget::new(d.clone(), name.clone());
    let runner = Runner::new(RoleLoader::new([pdns().join("roles")]))
        .ansible_playbook(Some(fake))
        .library(pdns().join("lib"))
        .check_mode(true)
        .vars(site_vars());
    let report = runner.apply(&target, &roles()).await.unwrap();
    assert_eq!(report.count(TaskStatus::Failed), 0, "{:#?}", report.events);
    let via: Vec<_> = report.events.iter().filter(|e| e.via_ansible).collect();
    // one zone, one SOA record, and the web records loop (monitor + admin)
    assert_eq!(via.len(), 4, "{via:#?}");
    assert!(via[3].item == Some(json!("admin")), "{via:#?}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.matches("ARGS ").count(), 4, "{calls}");
    assert!(calls.contains("--check"), "{calls}");
    assert!(
        calls.contains(&format!("LIB {}", pdns().join("lib").display())),
        "{calls}"
    );
    assert!(calls.contains("\"connection\": \"hive_docker\""), "{calls}");
    assert!(calls.contains("powerdns_zone"), "{calls}");
    // native tasks of the same role ran too: set_fact through delegate_facts,
    // apk and pip report what they would do, wait_for is skipped in check mode
    assert!(report.events.iter().any(|e| e.task == "wait for powerdns api available" && e.status == TaskStatus::Skipped));
    target.close().await;
    common::remove(&d, &name).await;
}
