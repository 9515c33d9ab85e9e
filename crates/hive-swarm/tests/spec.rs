//! Translation of service definitions into swarm specs (no engine needed).

use hive_swarm::{ServiceDefinition, StageContext, TagMapping, image_reference, service_spec};

fn def(yaml: &str) -> ServiceDefinition {
    serde_yaml::from_str(yaml).unwrap()
}

fn stage() -> StageContext {
    let mut s = StageContext::new("staging", "s-hive0.pdns:5000", "s-hive0.pdns");
    s.tag_mapping = TagMapping(
        [
            ("mariadb:10.5".to_string(), "mariadb:10.5.12".to_string()),
            (
                "s-hive0.pdns:5000/image_mapped:latest".to_string(),
                "s-hive0.pdns:5000/image_mapped@sha256:cdf0".to_string(),
            ),
        ]
        .into_iter()
        .collect(),
    );
    s
}

#[test]
fn image_references() {
    let check = |service: &str, yaml: &str, expected: &str| {
        assert_eq!(
            image_reference(service, &def(yaml), &stage()).unwrap(),
            expected,
            "{yaml}"
        );
    };
    check("db", "image: mariadb:10.5", "mariadb:10.5.12");
    check("db", "image: mariadb:10.6", "mariadb:10.6");
    check(
        "web",
        "image: {from: 'debian:12', roles: [web]}",
        "s-hive0.pdns:5000/image_web:latest",
    );
    check(
        "web",
        "image: {from: 'debian:12', roles: [web], pull_on: [staging], pull_from: procube/web}",
        "procube/web",
    );
    check(
        "web",
        "image: {from: 'debian:12', roles: [web], pull_on: [production], pull_from: procube/web}",
        "s-hive0.pdns:5000/image_web:latest",
    );
    check(
        "mapped",
        "image: {from: x, roles: []}",
        "s-hive0.pdns:5000/image_mapped@sha256:cdf0",
    );
    let err =
        image_reference("w", &def("image: {from: x, pull_on: [staging]}"), &stage()).unwrap_err();
    assert!(err.to_string().contains("pull_from"), "{err}");
    let err = image_reference("w", &def("command: [x]"), &stage()).unwrap_err();
    assert!(err.to_string().contains("image"), "{err}");
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = serde_yaml::from_str::<ServiceDefinition>("image: x\nreplica: 2\n").unwrap_err();
    assert!(err.to_string().contains("replica"), "{err}");
    let err =
        serde_yaml::from_str::<ServiceDefinition>("image: x\nvolumes: [{target: /a, mode: rw}]\n")
            .unwrap_err();
    assert!(err.to_string().contains("volumes"), "{err}");
}

#[test]
fn replicas_rule() {
    let check = |yaml: &str, current: Option<u64>, expected: i64| {
        let spec = service_spec("s", &def(yaml), &stage(), current).unwrap();
        assert_eq!(
            spec.mode.unwrap().replicated.unwrap().replicas,
            Some(expected),
            "{yaml} with {current:?}"
        );
    };
    check("image: x", None, 1);
    check("image: x", Some(4), 4);
    check("image: x\nreplicas: 1", None, 1);
    check("image: x\nreplicas: 1", Some(3), 3);
    check("image: x\nreplicas: -1", Some(3), 3);
    check("image: x\nreplicas: 2", Some(3), 2);
    check("image: x\nreplicas: 0", Some(3), 0);
    assert!(service_spec("s", &def("image: x\nreplicas: -2"), &stage(), None).is_err());
    let global = service_spec("s", &def("image: x\nmode: global"), &stage(), Some(2)).unwrap();
    assert!(global.mode.unwrap().global.is_some());
}

#[test]
fn default_logging_over_tls_and_networks() {
    let mut st = stage();
    let logging = st.logging.as_mut().unwrap();
    logging.tls_logging = true;
    logging.tls_cert_dir = "/home/admin/.docker".into();
    st.networks.insert("backnet".into(), Default::default());
    let spec = service_spec("pdns", &def("image: x"), &st, None).unwrap();
    let task = spec.task_template.unwrap();
    let log = task.log_driver.unwrap();
    let opts = log.options.unwrap();
    assert_eq!(log.name.as_deref(), Some("syslog"));
    assert_eq!(opts["syslog-address"], "tcp+tls://s-hive0.pdns:10514");
    assert_eq!(opts["tag"], "pdns");
    assert_eq!(opts["syslog-tls-ca-cert"], "/home/admin/.docker/ca.pem");
    assert_eq!(opts["syslog-tls-cert"], "/home/admin/.docker/cert.pem");
    assert_eq!(opts["syslog-tls-key"], "/home/admin/.docker/key.pem");
    let nets: Vec<String> = task
        .networks
        .unwrap()
        .into_iter()
        .map(|n| n.target.unwrap())
        .collect();
    assert_eq!(nets, vec!["backnet", "hive_default_network"]);
    assert_eq!(spec.labels.unwrap()["HIVE_STANDALONE"], "False");
}

#[test]
fn standalone_services_get_init_mounts_and_capabilities() {
    let spec = service_spec(
        "sa",
        &def("image: x\nstandalone: true\ncap_add: [SYS_ADMIN]\nvolumes: [{source: '', target: /tmp, type: tmpfs}]"),
        &stage(),
        None,
    )
    .unwrap();
    assert_eq!(spec.labels.unwrap()["HIVE_STANDALONE"], "True");
    let c = spec.task_template.unwrap().container_spec.unwrap();
    let targets: Vec<String> = c
        .mounts
        .unwrap()
        .into_iter()
        .map(|m| m.target.unwrap())
        .collect();
    assert_eq!(targets, vec!["/tmp", "/run", "/sys/fs/cgroup"]);
    assert_eq!(
        c.capability_add.unwrap(),
        vec![
            "SYS_ADMIN",
            "NET_ADMIN",
            "SYSLOG",
            "SYS_PTRACE",
            "AUDIT_CONTROL"
        ]
    );
    assert_eq!(c.args.unwrap()[0], "sh");
    let c = service_spec(
        "sa",
        &def("image: x\nstandalone: true\ncommand: /sbin/init"),
        &stage(),
        None,
    )
    .unwrap()
    .task_template
    .unwrap()
    .container_spec
    .unwrap();
    assert_eq!(c.args.unwrap(), vec!["/sbin/init"]);
}

#[test]
fn invalid_values_name_the_service_and_key() {
    let check = |yaml: &str, key: &str| {
        let err = service_spec("svc", &def(yaml), &stage(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("svc") && err.contains(key), "{yaml}: {err}");
    };
    check(
        "image: x\nstop_grace_period: 10 minutes",
        "stop_grace_period",
    );
    check("image: x\nmem_limit: lots", "mem_limit");
    check("image: x\nendpoint_mode: round-robin", "endpoint_mode");
    check(
        "image: x\nrestart_config: {condition: always}",
        "restart_config.condition",
    );
    check("image: x\nports: ['80/icmp']", "ports");
    check("image: x\ncommand: \"echo 'unterminated\"", "command");
}

#[test]
fn stop_signal_reaches_the_container_spec() {
    let spec = service_spec("web", &def("image: x\nstop_signal: SIGINT"), &stage(), None).unwrap();
    let c = spec.task_template.unwrap().container_spec.unwrap();
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    let spec = service_spec("web", &def("image: x\nstop_signal: 2"), &stage(), None).unwrap();
    let c = spec.task_template.unwrap().container_spec.unwrap();
    assert_eq!(c.stop_signal.as_deref(), Some("2"));
    let spec = service_spec("web", &def("image: x"), &stage(), None).unwrap();
    assert_eq!(
        spec.task_template
            .unwrap()
            .container_spec
            .unwrap()
            .stop_signal,
        None
    );
}

#[test]
fn a_swarm_without_a_hive_site_needs_no_registry_and_no_log_collector() {
    let st = StageContext::standalone("demo");
    let spec = service_spec("hello", &def("image: hive-test/busybox:1"), &st, None).unwrap();
    let task = spec.task_template.unwrap();
    assert_eq!(task.log_driver, None, "the engine's default log driver");
    // A service's own logging is kept.
    let own = service_spec(
        "hello",
        &def("image: x\nlogging: {driver: json-file}"),
        &st,
        None,
    )
    .unwrap();
    assert_eq!(
        own.task_template
            .unwrap()
            .log_driver
            .unwrap()
            .name
            .as_deref(),
        Some("json-file")
    );
    // A built image needs the site's registry: a clear error.
    let e = service_spec(
        "web",
        &def("image: {from: debian, roles: [web]}"),
        &st,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs the site's registry"), "{e}");
}

#[test]
fn read_only_reaches_the_container_spec() {
    let read_only = |yaml: &str| {
        service_spec("web", &def(yaml), &stage(), None)
            .unwrap()
            .task_template
            .unwrap()
            .container_spec
            .unwrap()
            .read_only
    };
    assert_eq!(read_only("image: x\nread_only: true"), Some(true));
    assert_eq!(read_only("image: x\nread_only: false"), None);
    assert_eq!(read_only("image: x"), None);
}
