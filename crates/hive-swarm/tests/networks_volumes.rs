//! build-networks and build-volumes against the real Docker engine.

mod common;

use common::{Cleanup, hive, stage};
use hive_swarm::definition::Scalar;
use hive_swarm::{Change, Error, NetworkDefinition, VolumeDefinition};

fn inspect(name: &str) -> serde_json::Value {
    let text = common::docker(&["network", "inspect", name]);
    let mut list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    list.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_created_once_with_their_settings() {
    let default = "hswarm-test-nets-default";
    let custom = "hswarm-test-nets-custom";
    let closed = "hswarm-test-nets-closed";
    let _cleanup = Cleanup {
        services: vec![],
        networks: vec![default.into(), custom.into(), closed.into()],
        volumes: vec![],
        images: vec![],
    };
    let mut st = stage("127.0.0.1:1", default);
    st.internal_cidr = Some("10.213.0.0/16".parse().unwrap());
    st.networks.insert(
        custom.into(),
        serde_yaml::from_str(
            "driver: overlay\ndriver_opts: {com.docker.network.driver.mtu: 1400}\nipam:\n  config:\n  - {subnet: 10.214.1.0/24, gateway: 10.214.1.254}\n",
        )
        .unwrap(),
    );
    st.networks.insert(
        closed.into(),
        NetworkDefinition {
            attachable: Some(false),
            ..Default::default()
        },
    );

    let plan = hive_swarm::build_networks(&hive(), &st, true)
        .await
        .unwrap();
    assert!(plan.check);
    assert_eq!(plan.count(|c| *c == Change::Created), 3);
    assert!(
        std::process::Command::new("docker")
            .args(["network", "inspect", custom])
            .output()
            .unwrap()
            .stdout
            .starts_with(b"[]"),
        "check mode created a network"
    );

    let report = hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap();
    let names: Vec<(&str, &Change)> = report
        .resources
        .iter()
        .map(|r| (r.name.as_str(), &r.change))
        .collect();
    assert_eq!(
        names,
        vec![
            (custom, &Change::Created),
            (closed, &Change::Created),
            (default, &Change::Created)
        ]
    );

    let d = inspect(default);
    assert_eq!(d["Driver"], "overlay");
    assert_eq!(d["Attachable"], true);
    assert_eq!(d["IPAM"]["Config"][0]["Subnet"], "10.213.0.0/18");
    let c = inspect(custom);
    assert_eq!(c["Options"]["com.docker.network.driver.mtu"], "1400");
    assert_eq!(c["IPAM"]["Config"][0]["Subnet"], "10.214.1.0/24");
    assert_eq!(c["IPAM"]["Config"][0]["Gateway"], "10.214.1.254");
    assert_eq!(inspect(closed)["Attachable"], false);

    let again = hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap();
    assert!(!again.changed(), "{again:?}");

    // A network whose definition changed cannot be changed in place.
    st.networks.get_mut(custom).unwrap().driver_opts.insert(
        "com.docker.network.driver.mtu".into(),
        Scalar::Integer(1300),
    );
    let err = hive_swarm::build_networks(&hive(), &st, false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NetworkDiffers { .. }), "{err:?}");
    assert!(err.to_string().contains(custom), "{err}");

    // Only overlay networks.
    st.networks.get_mut(closed).unwrap().driver = Some("bridge".into());
    let err = hive_swarm::build_networks(&hive(), &st, true)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(closed) && text.contains("driver") && text.contains("bridge"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_created_on_every_hive_and_removed_with_destroy() {
    let name = "hswarm-test-vols-data";
    let _cleanup = Cleanup {
        services: vec![],
        networks: vec![],
        volumes: vec![name.into()],
        images: vec![],
    };
    let services: indexmap::IndexMap<String, hive_swarm::ServiceDefinition> = serde_yaml::from_str(&format!(
        r#"
a:
  image: x
  volumes:
  - {{source: {name}, target: /d, type: volume, driver: local, driver_opts: {{type: tmpfs, device: tmpfs, o: "size=1m"}}}}
  - {{source: hswarm-test-vols-drbd, target: /e, type: volume, drbd: {{fstype: xfs, size: 1G}}}}
  - {{source: /etc, target: /f}}
b:
  image: y
  volumes:
  - {{source: {name}, target: /g, type: volume, driver: local}}
"#
    ))
    .unwrap();
    let volumes = VolumeDefinition::from_services(services.iter());
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(
        volumes[0].driver_opts["o"],
        Scalar::String("size=1m".into())
    );

    let report = hive_swarm::build_volumes(&[hive()], &volumes, false, false)
        .await
        .unwrap();
    assert_eq!(report.resources[0].change, Change::Created);
    assert_eq!(
        report.resources[0].hive.as_deref(),
        Some("hswarm-test-node")
    );
    let opts = common::docker(&["volume", "inspect", "--format", "{{json .Options}}", name]);
    let opts: serde_json::Value = serde_json::from_str(&opts).unwrap();
    assert_eq!(
        opts,
        serde_json::json!({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    );
    assert!(
        !hive_swarm::build_volumes(&[hive()], &volumes, false, false)
            .await
            .unwrap()
            .changed()
    );

    let plan = hive_swarm::build_volumes(&[hive()], &volumes, true, true)
        .await
        .unwrap();
    assert_eq!(plan.resources[0].change, Change::Removed);
    common::docker(&["volume", "inspect", name]);
    let report = hive_swarm::build_volumes(&[hive()], &volumes, true, false)
        .await
        .unwrap();
    assert_eq!(report.resources[0].change, Change::Removed);
    let report = hive_swarm::build_volumes(&[hive()], &volumes, true, false)
        .await
        .unwrap();
    assert_eq!(report.resources[0].change, Change::Absent);
}
