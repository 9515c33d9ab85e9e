//! The cluster operations against the real local engine (a single-node
//! swarm shared with the other tests: it is never left nor initialised
//! again here; init and join on fresh engines are covered by the
//! multi-server test of setup-hosts in hive-phases).

mod common;

use std::time::Duration;

use hive_swarm::{Engine, Error, SwarmInit, SwarmJoin};

const LABEL_A: &str = "hswarm-cluster-test-a";
const LABEL_B: &str = "hswarm-cluster-test-b";

async fn local() -> Engine {
    common::ensure_swarm();
    Engine::connect_unix("local", "/var/run/docker.sock")
        .await
        .unwrap()
}

fn node_labels(node: &str) -> String {
    common::docker(&["node", "inspect", "-f", "{{json .Spec.Labels}}", node])
}

struct RemoveLabels(String);
impl Drop for RemoveLabels {
    fn drop(&mut self) {
        for l in [LABEL_A, LABEL_B] {
            let _ = std::process::Command::new("docker")
                .args(["node", "update", "--label-rm", l, &self.0])
                .output();
        }
    }
}

#[tokio::test]
async fn an_active_swarm_is_neither_initialised_nor_joined_again() {
    let engine = local().await;
    assert_eq!(
        engine.local_node_state().await.unwrap(),
        bollard::models::LocalNodeState::ACTIVE
    );
    let init = SwarmInit::new("127.0.0.1".parse().unwrap());
    assert!(!engine.init_swarm(&init, false).await.unwrap());
    assert!(!engine.init_swarm(&init, true).await.unwrap());
    // Already a manager of that swarm: nothing to do.
    let own = format!(
        "{}:2377",
        common::docker(&["info", "-f", "{{.Swarm.NodeAddr}}"]).trim()
    );
    let join = SwarmJoin::new("127.0.0.1".parse().unwrap(), own);
    assert!(
        !engine
            .join_as_manager(&join, "SWMTKN-1-none", false)
            .await
            .unwrap()
    );
    // In a swarm, but not in that of the manager given: a clear error.
    let elsewhere = SwarmJoin::new("127.0.0.1".parse().unwrap(), "192.0.2.1:2377");
    for check in [true, false] {
        let err = engine
            .join_as_manager(&elsewhere, "SWMTKN-1-none", check)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::OtherSwarm { .. }), "{err:?}");
        assert!(
            err.to_string().contains("not in that of 192.0.2.1:2377"),
            "{err}"
        );
    }
    let token = engine.manager_join_token().await.unwrap();
    assert!(token.starts_with("SWMTKN-1-"), "not a join token");
}

#[tokio::test]
async fn node_labels_are_added_once_and_others_kept() {
    let engine = local().await;
    let node = common::docker(&["info", "-f", "{{.Swarm.NodeID}}"])
        .trim()
        .to_string();
    let _cleanup = RemoveLabels(node.clone());
    common::docker_quiet(&[
        "node",
        "update",
        "--label-add",
        &format!("{LABEL_B}=kept"),
        &node,
    ]);
    let want = [(LABEL_A.to_string(), "true".to_string())];

    // Check mode says what it would add and adds nothing.
    let would = engine.ensure_node_labels(&node, &want, true).await.unwrap();
    assert_eq!(would, [format!("{LABEL_A}=true")]);
    assert!(!node_labels(&node).contains(LABEL_A));

    let added = engine
        .ensure_node_labels(&node, &want, false)
        .await
        .unwrap();
    assert_eq!(added, [format!("{LABEL_A}=true")]);
    let labels = node_labels(&node);
    assert!(
        labels.contains(&format!("\"{LABEL_A}\":\"true\""))
            && labels.contains(&format!("\"{LABEL_B}\":\"kept\"")),
        "{labels}"
    );
    assert!(
        engine
            .ensure_node_labels(&node, &want, false)
            .await
            .unwrap()
            .is_empty(),
        "second run adds nothing"
    );

    // A node the swarm does not have: would get every label in check mode,
    // an error naming it otherwise.
    let missing = "hswarm-cluster-test-no-such-node";
    assert_eq!(
        engine
            .ensure_node_labels(missing, &want, true)
            .await
            .unwrap()
            .len(),
        1
    );
    let err = engine
        .ensure_node_labels(missing, &want, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(missing), "{err}");
}

fn gwbridge_subnet() -> String {
    // The engine creates docker_gwbridge shortly after it joins a swarm, and
    // a test elsewhere may just have made it a manager.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let found = std::process::Command::new("docker")
            .args(["network", "inspect", "docker_gwbridge"])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    common::docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "docker_gwbridge",
    ])
    .trim()
    .to_string()
}

#[tokio::test]
async fn a_gwbridge_with_another_subnet_in_a_swarm_is_a_clear_error() {
    let engine = local().await;
    let have = gwbridge_subnet();
    let have_net: ipnet::Ipv4Net = have.parse().unwrap();
    // Its own subnet: nothing to do.
    assert!(
        !engine
            .ensure_gwbridge(have_net, have_net, false)
            .await
            .unwrap()
    );
    // Another one: refused, in check mode too, and nothing changed.
    let cidr: ipnet::Ipv4Net = "10.199.0.0/16".parse().unwrap();
    let want: ipnet::Ipv4Net = "10.199.128.0/19".parse().unwrap();
    for check in [true, false] {
        let err = engine.ensure_gwbridge(want, cidr, check).await.unwrap_err();
        assert!(matches!(err, Error::SubnetMismatch { .. }), "{err:?}");
        let text = err.to_string();
        for part in [
            "network docker_gwbridge has subnet",
            have.as_str(),
            "internal_cidr 10.199.0.0/16 asks for 10.199.128.0/19",
            "the hive is in a swarm",
            "docker swarm leave",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
    }
    assert_eq!(gwbridge_subnet(), have);
}

#[tokio::test]
async fn ingress_check_compares_subnet_and_gateway() {
    let engine = local().await;
    let config = common::docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
        "ingress",
    ]);
    let mut parts = config.split_whitespace();
    let subnet: ipnet::Ipv4Net = parts.next().unwrap().parse().unwrap();
    let gateway: std::net::Ipv4Addr = parts.next().unwrap().parse().unwrap();
    let t = Duration::from_secs(5);
    assert!(
        !engine
            .ensure_ingress(subnet, gateway, t, true)
            .await
            .unwrap()
    );
    assert!(
        !engine
            .ensure_ingress(subnet, gateway, t, false)
            .await
            .unwrap(),
        "same subnet and gateway: left alone"
    );
    let other: ipnet::Ipv4Net = "10.198.64.0/18".parse().unwrap();
    assert!(
        engine
            .ensure_ingress(other, "10.198.64.1".parse().unwrap(), t, true)
            .await
            .unwrap()
    );
    // Check mode changed nothing.
    assert!(
        common::docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "ingress"
        ])
        .contains(&subnet.to_string())
    );
}

#[tokio::test]
async fn an_unreachable_engine_is_reported_as_such() {
    let err = Engine::connect_unix("nowhere", "/tmp/hswarm-cluster-test-no-socket.sock")
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("nowhere"), "{err}");
}
