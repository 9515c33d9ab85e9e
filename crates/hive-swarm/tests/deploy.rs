//! deploy-services against the real Docker engine in swarm mode.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::service::InspectServiceOptions;
use common::{Cleanup, Registry, hive, service, stage};
use hive_swarm::{
    Change, DeployEvent, Deployer, Error, NetworkDefinition, PullPolicy, RegistryLogin,
    ServiceDefinition,
};
use indexmap::IndexMap;

async fn inspect(name: &str) -> bollard::models::Service {
    let h = hive().negotiated().await.unwrap();
    h.docker
        .inspect_service(name, None::<InspectServiceOptions>)
        .await
        .unwrap()
}

fn network_id(name: &str) -> String {
    common::docker(&["network", "inspect", "--format", "{{.Id}}", name])
}

fn services(list: &[(&str, ServiceDefinition)]) -> IndexMap<String, ServiceDefinition> {
    list.iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attribute_then_redeploy_change_and_destroy() {
    let registry = Registry::start();
    let image = registry.push_revision("hswarm-test/every", "1", "every-1");
    let net_a = "hswarm-test-every-a";
    let net_b = "hswarm-test-every-b";
    let svc = "hswarm-test-every";
    let other = "hswarm-test-every-other";
    let _cleanup = Cleanup {
        services: vec![svc.into(), other.into()],
        networks: vec![
            net_a.into(),
            net_b.into(),
            "hswarm-test-every-default".into(),
        ],
        volumes: vec!["hswarm-test-every-vol".into()],
        images: vec![image.clone()],
    };

    let mut st = stage(&registry.address, "hswarm-test-every-default");
    st.networks
        .insert(net_a.into(), NetworkDefinition::default());
    st.networks
        .insert(net_b.into(), NetworkDefinition::default());
    st.proxy_environment
        .insert("HTTP_PROXY".into(), "http://proxy.example:3128".into());
    st.registry_login = Some(RegistryLogin {
        registry: Some(registry.address.clone()),
        username: "hive".into(),
        password: "not-checked-by-this-registry".into(),
    });
    let report = hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap();
    assert_eq!(report.count(|c| *c == Change::Created), 3, "{report:?}");

    let def = service(&format!(
        r#"
image: {image}
entrypoint: [sh, -c]
command: ["exec sleep 3600"]
environment: {{A: "1", PORT: 80, HTTP_PROXY: "http://override:1"}}
hosts: {{extra.example: 10.1.2.3}}
dns: 10.9.9.9
endpoint_mode: DNSRR
labels: {{plain: x, num: 3, obj: {{k: [1, true]}}}}
logging: {{driver: json-file, options: {{max-size: 1m}}}}
mode: replicated
replicas: 2
placement:
  constraints: ["node.role==manager"]
  preferences: [{{spread: node.labels.zone}}]
  replicas_max_per_node: 2
ports:
  - {{target_port: 80, mode: host}}
  - {{target_port: 81, protocol: udp, mode: host}}
restart_config: {{condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}}
stop_grace_period: 3s
user: root
working_dir: /tmp
read_only: true
volumes:
  - {{source: hswarm-test-every-vol, target: /data, type: volume, driver: local}}
  - {{source: /tmp, target: /hosttmp, type: bind, readonly: true}}
  - {{target: /scratch, type: tmpfs}}
cap_add: [NET_ADMIN]
cap_drop: [MKNOD]
sysctls: {{net.core.somaxconn: 1024}}
cpu_limit: 0.5
mem_limit: 64M
healthcheck: {{test: "true", interval: 1s, timeout: 3s, retries: 2, start_period: 1s}}
networks: [{net_a}, {{name: {net_b}, aliases: [every-alias]}}]
standalone: false
initialize_roles: [unused-here]
"#
    ));
    let plain = service(&format!(
        "image: {image}\ncommand: [sleep, '3600']\nendpoint_mode: dnsrr\nenvironment: {{B: b}}\n"
    ));

    let volumes =
        hive_swarm::VolumeDefinition::from_services(services(&[(svc, def.clone())]).iter());
    let report = hive_swarm::build_volumes(&[hive()], &volumes, false, false)
        .await
        .unwrap();
    assert_eq!(
        report.change_of("hswarm-test-every-vol"),
        Some(&Change::Created)
    );

    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let deployer = || {
        Deployer::new(vec![hive()], st.clone())
            .limit([svc, other])
            .timeout(Duration::from_secs(90))
    };
    let all = services(&[(svc, def.clone()), (other, plain.clone())]);
    let report = deployer()
        .on_event(move |e| sink.lock().unwrap().push(e))
        .deploy(&all)
        .await
        .unwrap();
    assert_eq!(report.change_of(svc), Some(&Change::Created));
    assert_eq!(report.change_of(other), Some(&Change::Created));
    {
        let events = events.lock().unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, DeployEvent::Pulled { .. })),
            "{events:?}"
        );
        assert!(
            events.iter().any(
                |e| matches!(e, DeployEvent::Progress { service, desired: 2, .. } if service == svc)
            ),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, DeployEvent::Converged { service } if service == svc)),
            "{events:?}"
        );
    }

    // The deployed spec, field by field.
    let deployed = inspect(svc).await;
    let spec = deployed.spec.clone().unwrap();
    assert_eq!(spec.name.as_deref(), Some(svc));
    let labels = spec.labels.clone().unwrap();
    assert_eq!(labels["HIVE_STANDALONE"], "False");
    assert_eq!(labels["plain"], "x");
    assert_eq!(labels["num"], "3");
    assert_eq!(labels["obj"], r#"{"k": [1, true]}"#);
    let task = spec.task_template.clone().unwrap();
    let c = task.container_spec.clone().unwrap();
    let image_id = common::docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        &image,
    ]);
    let digest = image_id.split('@').nth(1).unwrap();
    assert_eq!(
        c.image.as_deref(),
        Some(format!("{image}@{digest}").as_str())
    );
    assert_eq!(c.command, Some(vec!["sh".to_string(), "-c".into()]));
    assert_eq!(c.args, Some(vec!["exec sleep 3600".to_string()]));
    assert_eq!(c.hostname.as_deref(), Some(svc));
    assert_eq!(
        c.env,
        Some(vec![
            "HTTP_PROXY=http://override:1".to_string(),
            "A=1".into(),
            "PORT=80".into()
        ])
    );
    assert_eq!(
        c.hosts,
        Some(vec![
            "192.0.2.10 hswarm-test-server0".to_string(),
            "10.1.2.3 extra.example".into()
        ])
    );
    assert_eq!(
        c.dns_config.unwrap().nameservers,
        Some(vec!["10.9.9.9".to_string()])
    );
    assert_eq!(c.user.as_deref(), Some("root"));
    assert_eq!(c.dir.as_deref(), Some("/tmp"));
    assert_eq!(c.read_only, Some(true));
    assert_eq!(c.stop_grace_period, Some(3_000_000_000));
    assert_eq!(c.capability_add, Some(vec!["NET_ADMIN".to_string()]));
    assert_eq!(c.capability_drop, Some(vec!["MKNOD".to_string()]));
    assert_eq!(c.sysctls.unwrap()["net.core.somaxconn"], "1024");
    let hc: serde_json::Value = serde_json::from_str(&common::docker(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}",
        svc,
    ]))
    .unwrap();
    assert_eq!(
        hc,
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000i64,
            "Timeout": 3_000_000_000i64, "Retries": 2, "StartPeriod": 1_000_000_000i64})
    );
    let mounts: Vec<(String, String, String, bool)> = c
        .mounts
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.typ.unwrap().to_string(),
                m.source.unwrap_or_default(),
                m.target.unwrap(),
                m.read_only.unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        vec![
            (
                "volume".into(),
                "hswarm-test-every-vol".into(),
                "/data".into(),
                false
            ),
            ("bind".into(), "/tmp".into(), "/hosttmp".into(), true),
            ("tmpfs".into(), "".into(), "/scratch".into(), false),
        ]
    );
    let log = task.log_driver.unwrap();
    assert_eq!(log.name.as_deref(), Some("json-file"));
    assert_eq!(log.options.unwrap()["max-size"], "1m");
    let placement = task.placement.unwrap();
    assert_eq!(
        placement.constraints,
        Some(vec!["node.role==manager".to_string()])
    );
    assert_eq!(
        placement.preferences.unwrap()[0]
            .spread
            .as_ref()
            .unwrap()
            .spread_descriptor
            .as_deref(),
        Some("node.labels.zone")
    );
    assert_eq!(placement.max_replicas, Some(2));
    let restart = task.restart_policy.unwrap();
    assert_eq!(restart.condition.unwrap().to_string(), "on-failure");
    assert_eq!(
        (restart.delay, restart.max_attempts, restart.window),
        (Some(5_000_000_000), Some(3), Some(120_000_000_000))
    );
    let limits = task.resources.unwrap().limits.unwrap();
    assert_eq!(
        (limits.nano_cpus, limits.memory_bytes),
        (Some(500_000_000), Some(64 * 1024 * 1024))
    );
    let networks: Vec<(String, Option<Vec<String>>)> = task
        .networks
        .unwrap()
        .into_iter()
        .map(|n| (n.target.unwrap(), n.aliases))
        .collect();
    assert_eq!(
        networks,
        vec![
            (network_id(net_a), None),
            (network_id(net_b), Some(vec!["every-alias".to_string()]))
        ]
    );
    assert_eq!(spec.mode.unwrap().replicated.unwrap().replicas, Some(2));
    let endpoint = spec.endpoint_spec.unwrap();
    assert_eq!(endpoint.mode.unwrap().to_string(), "dnsrr");
    let ports: Vec<(i64, String, String)> = endpoint
        .ports
        .unwrap()
        .into_iter()
        .map(|p| {
            (
                p.target_port.unwrap(),
                p.protocol.unwrap().to_string(),
                p.publish_mode.unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            (80, "tcp".into(), "host".into()),
            (81, "udp".into(), "host".into())
        ]
    );

    // read_only: the engine mounts the root filesystem read-only; the
    // service's tmpfs mount stays writable.
    let task_container = common::docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={svc}"),
    ]);
    let task_container = task_container.lines().next().expect("a running task");
    let probe = common::docker(&[
        "exec",
        task_container,
        "sh",
        "-c",
        "touch /probe 2>&1 || echo root-refused; touch /scratch/probe && echo scratch-written",
    ]);
    assert!(probe.contains("Read-only file system"), "{probe}");
    assert!(probe.contains("root-refused"), "{probe}");
    assert!(probe.contains("scratch-written"), "{probe}");

    // The other service got the defaults: syslog logging, every stage network.
    let o = inspect(other).await.spec.unwrap().task_template.unwrap();
    let log = o.log_driver.unwrap();
    assert_eq!(log.name.as_deref(), Some("syslog"));
    let opts = log.options.unwrap();
    assert_eq!(opts["syslog-address"], "udp://127.0.0.1:10514");
    assert_eq!(opts["tag"], other);
    assert_eq!(opts["syslog-facility"], "local0");
    assert_eq!(o.networks.unwrap().len(), 3);
    assert_eq!(
        o.container_spec.unwrap().env,
        Some(vec![
            "HTTP_PROXY=http://proxy.example:3128".to_string(),
            "B=b".into()
        ])
    );

    // A re-deploy changes nothing.
    let version_before = deployed.version.unwrap().index;
    let plan = deployer().check(true).deploy(&all).await.unwrap();
    assert!(!plan.changed(), "{plan:?}");
    let report = deployer().deploy(&all).await.unwrap();
    assert!(!report.changed(), "{report:?}");
    assert_eq!(inspect(svc).await.version.unwrap().index, version_before);

    // Changing one environment value makes exactly one update.
    let other_version = inspect(other).await.version.unwrap().index;
    let mut changed = def.clone();
    changed.environment.insert(
        "A".into(),
        hive_swarm::definition::Scalar::String("2".into()),
    );
    let all2 = services(&[(svc, changed), (other, plain.clone())]);
    let report = deployer().deploy(&all2).await.unwrap();
    assert_eq!(report.count(Change::is_change), 1, "{report:?}");
    assert_eq!(
        report.change_of(svc),
        Some(&Change::Updated(vec![
            "TaskTemplate.ContainerSpec.Env".into()
        ]))
    );
    assert_eq!(inspect(other).await.version.unwrap().index, other_version);
    let env = inspect(svc)
        .await
        .spec
        .unwrap()
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .env
        .unwrap();
    assert!(env.contains(&"A=2".to_string()), "{env:?}");
    let report = deployer().deploy(&all2).await.unwrap();
    assert!(!report.changed(), "{report:?}");

    // Scaling by hand survives a deploy when the definition says replicas: 1.
    let mut one = plain.clone();
    one.replicas = Some(1);
    common::docker(&["service", "scale", "-d", &format!("{other}=2")]);
    let report = deployer()
        .limit([other])
        .deploy(&services(&[(other, one)]))
        .await
        .unwrap();
    assert!(!report.changed(), "{report:?}");
    let replicas = inspect(other)
        .await
        .spec
        .unwrap()
        .mode
        .unwrap()
        .replicated
        .unwrap()
        .replicas;
    assert_eq!(replicas, Some(2));

    // -D removes the services; the networks stay.
    let report = deployer().destroy(true).deploy(&all2).await.unwrap();
    assert_eq!(report.change_of(svc), Some(&Change::Removed));
    assert_eq!(report.change_of(other), Some(&Change::Removed));
    let h = hive().negotiated().await.unwrap();
    assert!(
        h.docker
            .inspect_service(svc, None::<InspectServiceOptions>)
            .await
            .is_err()
    );
    assert!(!network_id(net_a).is_empty());
    let report = deployer().destroy(true).deploy(&all2).await.unwrap();
    assert_eq!(report.change_of(svc), Some(&Change::Absent));
    assert!(!report.changed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_image_under_the_same_tag_updates_the_service() {
    let registry = Registry::start();
    let image = registry.push_revision("hswarm-test/retag", "latest", "retag-1");
    let svc = "hswarm-test-retag";
    let _cleanup = Cleanup {
        services: vec![svc.into()],
        networks: vec!["hswarm-test-retag-net".into()],
        volumes: vec![],
        images: vec![image.clone()],
    };
    let st = stage(&registry.address, "hswarm-test-retag-net");
    hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap();
    let def = service(&format!(
        "image: {image}\ncommand: [sleep, '3600']\nendpoint_mode: dnsrr\n"
    ));
    let all = services(&[(svc, def)]);
    let deployer = || Deployer::new(vec![hive()], st.clone()).timeout(Duration::from_secs(60));
    assert_eq!(
        deployer().deploy(&all).await.unwrap().change_of(svc),
        Some(&Change::Created)
    );
    assert!(!deployer().deploy(&all).await.unwrap().changed());

    // Push another image under the same tag, then drop the local copy so
    // that only the pull brings it to the hive.
    registry.push_revision("hswarm-test/retag", "latest", "retag-2");
    let new_digest = common::docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        &image,
    ]);
    common::docker(&["image", "rm", &image]);
    let plan = deployer().check(true).deploy(&all).await.unwrap();
    assert!(
        plan.check && plan.changed(),
        "check mode sees the new digest: {plan:?}"
    );
    let report = deployer().deploy(&all).await.unwrap();
    match report.change_of(svc) {
        Some(Change::Updated(reasons)) => {
            assert_eq!(
                reasons,
                &vec!["TaskTemplate.ContainerSpec.Image".to_string()]
            )
        }
        other => panic!("expected an update, got {other:?}"),
    }
    let deployed = inspect(svc)
        .await
        .spec
        .unwrap()
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .image
        .unwrap();
    assert!(
        deployed.ends_with(new_digest.split('@').nth(1).unwrap()),
        "{deployed} vs {new_digest}"
    );
    assert!(!deployer().deploy(&all).await.unwrap().changed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_cannot_start_fails_with_its_task_error() {
    let svc = "hswarm-test-badcmd";
    let _cleanup = Cleanup {
        services: vec![svc.into()],
        networks: vec!["hswarm-test-badcmd-net".into()],
        volumes: vec![],
        images: vec![],
    };
    let st = stage("127.0.0.1:1", "hswarm-test-badcmd-net");
    hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap();
    let def = service(
        "image: hive-test/busybox:1\ncommand: [hswarm-no-such-command]\nendpoint_mode: dnsrr\n",
    );
    let started = std::time::Instant::now();
    let err = Deployer::new(vec![hive()], st)
        .pull(PullPolicy::Never)
        .timeout(Duration::from_secs(8))
        .deploy(&services(&[(svc, def)]))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(8));
    let Error::NotConverged { failures, .. } = &err else {
        panic!("expected NotConverged, got {err:?}");
    };
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].service, svc);
    let text = err.to_string();
    assert!(text.contains(svc), "{text}");
    assert!(text.contains("hswarm-no-such-command"), "{text}");
    assert!(
        text.contains("not found") || text.contains("no such file"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_service_gets_an_explanation_and_check_mode_changes_nothing() {
    let old = "hswarm-test-rename-old";
    let new = "hswarm-test-rename-new";
    let _cleanup = Cleanup {
        services: vec![old.into(), new.into()],
        networks: vec!["hswarm-test-rename-net".into()],
        volumes: vec![],
        images: vec![],
    };
    let st = stage("127.0.0.1:1", "hswarm-test-rename-net");
    hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap();
    let def = service(
        "image: hive-test/busybox:1\ncommand: [sleep, '3600']\nendpoint_mode: dnsrr\nports: [{published_port: 18931, target_port: 80, mode: host}]\n",
    );
    let deployer = || {
        Deployer::new(vec![hive()], st.clone())
            .pull(PullPolicy::Never)
            .timeout(Duration::from_secs(60))
    };

    // Check mode: a plan, nothing created.
    let plan = deployer()
        .check(true)
        .deploy(&services(&[(old, def.clone())]))
        .await
        .unwrap();
    assert_eq!(plan.change_of(old), Some(&Change::Created));
    let h = hive().negotiated().await.unwrap();
    assert!(
        h.docker
            .inspect_service(old, None::<InspectServiceOptions>)
            .await
            .is_err()
    );

    deployer()
        .deploy(&services(&[(old, def.clone())]))
        .await
        .unwrap();
    let err = deployer()
        .deploy(&services(&[(new, def.clone())]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(
        text.contains(new) && text.contains(old) && text.contains("renamed"),
        "{text}"
    );
    assert!(
        h.docker
            .inspect_service(new, None::<InspectServiceOptions>)
            .await
            .is_err()
    );

    // initialize-services: the running task and its hive.
    let task = hive_swarm::find_running_task(&[hive()], old)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.hive, "hswarm-test-node");
    assert!(
        task.container_name.starts_with(&format!("{old}.1.")),
        "{task:?}"
    );
    let labels = common::docker(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &task.container_id,
    ]);
    let labels: HashMap<String, String> = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["com.docker.swarm.service.name"], old);
    assert_eq!(labels["com.docker.swarm.task.id"], task.task_id);
    assert!(
        hive_swarm::find_running_task(&[hive()], new)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_image_rebuilt_under_the_same_tag_updates_the_service() {
    // Without a registry digest, hive-swarm compares the image the hive has
    // with the one the running task uses, as hive-builder does.
    let svc = "hswarm-test-localtag";
    let image = "hswarm-test/localtag:1";
    let build = |revision: &str| {
        let mut child = std::process::Command::new("docker")
            .args(["build", "-q", "-t", image, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(
            child.stdin.as_mut().unwrap(),
            "FROM hive-test/busybox:1\nLABEL hswarm-test-revision={revision}"
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
        common::docker(&["image", "inspect", "--format", "{{.Id}}", image])
    };
    let first_id = build("local-1");
    let _cleanup = Cleanup {
        services: vec![svc.into()],
        networks: vec!["hswarm-test-localtag-net".into()],
        volumes: vec![],
        images: vec![image.into()],
    };
    let st = stage("127.0.0.1:1", "hswarm-test-localtag-net");
    hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap();
    let all = services(&[(
        svc,
        service(&format!(
            "image: {image}\ncommand: [sleep, '3600']\nendpoint_mode: dnsrr\n"
        )),
    )]);
    let deployer = || {
        Deployer::new(vec![hive()], st.clone())
            .pull(PullPolicy::Never)
            .timeout(Duration::from_secs(60))
    };
    assert_eq!(
        deployer().deploy(&all).await.unwrap().change_of(svc),
        Some(&Change::Created)
    );
    assert!(!deployer().deploy(&all).await.unwrap().changed());
    build("local-2");
    let report = deployer().deploy(&all).await.unwrap();
    assert_eq!(
        report.change_of(svc),
        Some(&Change::Updated(vec![
            "image changed on hive hswarm-test-node".into()
        ]))
    );
    let task = hive_swarm::find_running_task(&[hive()], svc)
        .await
        .unwrap()
        .unwrap();
    let running_image = common::docker(&["inspect", "--format", "{{.Image}}", &task.container_id]);
    assert_ne!(running_image, first_id);
    assert!(!deployer().deploy(&all).await.unwrap().changed());
    common::docker_quiet(&["image", "rm", "-f", &first_id]);
}
