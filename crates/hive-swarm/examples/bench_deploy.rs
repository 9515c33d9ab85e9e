//! Benchmark of deploy-services: 50 services deployed from scratch, re-run
//! with no change, re-run with one environment value changed; the same
//! services as `deploy-50-services.yml` (run side by side by
//! `scripts/bench/deploy-services.sh`).
//!
//! ```text
//! cargo run --release -p hive-swarm --example bench_deploy -- [ROUNDS] [IMAGE]
//! ```
//!
//! Prints one JSON line per round with the seconds of each step:
//! `first` (API work of the first deploy: until the last service is
//! created), `converge` (until all its tasks run), `same` (the whole
//! no-change re-run), `change` (API work of the one-change re-run: until the
//! service is updated), `change_converge` (until its update completed),
//! `remove` (`-D`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::container::ListContainersOptions;
use hive_swarm::{
    Change, DeployEvent, Deployer, Hive, PullPolicy, ServiceDefinition, StageContext,
};
use indexmap::IndexMap;

const SERVICES: usize = 50;
const PREFIX: &str = "hswarm-bench-";

fn services(image: &str, changed: Option<(&str, &str)>) -> IndexMap<String, ServiceDefinition> {
    (1..=SERVICES)
        .map(|i| {
            let name = format!("{PREFIX}{i:02}");
            let rev = match changed {
                Some((svc, rev)) if svc == name => rev,
                _ => "0",
            };
            let yaml = format!(
                "image: {image}\ncommand: [sleep, '3600']\nenvironment: {{APP_NAME: {name}, APP_REV: '{rev}'}}\nlabels: {{bench: hive}}\nendpoint_mode: dnsrr\nreplicas: 1\nnetworks: []\nlogging: {{driver: json-file}}\n"
            );
            let def: ServiceDefinition = serde_yaml::from_str(&yaml).expect("bench definition");
            (name, def)
        })
        .collect()
}

fn deployer(hive: &Hive, stage: &StageContext) -> Deployer {
    Deployer::new(vec![hive.clone()], stage.clone())
        .pull(PullPolicy::Never)
        .concurrency(10)
        .timeout(Duration::from_secs(600))
}

/// Run a deploy, returning the seconds until the last service was created,
/// updated or removed (the API work), the total seconds (including the wait
/// for convergence) and the report.
async fn timed(
    deployer: Deployer,
    services: &IndexMap<String, ServiceDefinition>,
) -> (f64, f64, hive_swarm::Report) {
    let start = Instant::now();
    let last_applied = Arc::new(Mutex::new(None::<Instant>));
    let sink = last_applied.clone();
    let report = deployer
        .on_event(move |e| {
            if matches!(e, DeployEvent::Applied { .. }) {
                *sink.lock().expect("lock") = Some(Instant::now());
            }
        })
        .deploy(services)
        .await
        .expect("deploy");
    let total = start.elapsed().as_secs_f64();
    let api = last_applied
        .lock()
        .expect("lock")
        .map(|t| (t - start).as_secs_f64())
        .unwrap_or(total);
    (api, total, report)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let image = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "local/busybox:1".to_string());
    let docker = bollard::Docker::connect_with_local_defaults().expect("docker socket");
    let hive = Hive::new("localhost", docker);
    let raw = hive.negotiated().await.expect("engine").docker;
    let stage = StageContext::new("private", "127.0.0.1:5000", "127.0.0.1");
    let fresh = services(&image, None);
    let changed = services(&image, Some(("hswarm-bench-07", "1")));

    for round in 1..=rounds {
        let (first, converge, r) = timed(deployer(&hive, &stage), &fresh).await;
        assert_eq!(r.count(|c| *c == Change::Created), SERVICES, "{r:?}");
        let (_, same, r) = timed(deployer(&hive, &stage), &fresh).await;
        assert!(!r.changed(), "{r:?}");
        let (change, change_converge, r) = timed(deployer(&hive, &stage), &changed).await;
        assert_eq!(r.count(Change::is_change), 1, "{r:?}");
        let (remove, _, r) = timed(deployer(&hive, &stage).destroy(true), &changed).await;
        assert_eq!(r.count(|c| *c == Change::Removed), SERVICES, "{r:?}");
        println!(
            "{{\"round\": {round}, \"first\": {first:.4}, \"converge\": {converge:.3}, \"same\": {same:.4}, \"change\": {change:.4}, \"change_converge\": {change_converge:.3}, \"remove\": {remove:.4}}}"
        );
        // Let the task containers go before the next round.
        loop {
            let mut filters = std::collections::HashMap::new();
            filters.insert(
                "label".to_string(),
                vec!["com.docker.swarm.service.name".to_string()],
            );
            let left = raw
                .list_containers(Some(ListContainersOptions {
                    all: true,
                    filters,
                    ..Default::default()
                }))
                .await
                .expect("list containers")
                .into_iter()
                .filter(|c| {
                    c.labels
                        .as_ref()
                        .and_then(|l| l.get("com.docker.swarm.service.name"))
                        .is_some_and(|n| n.starts_with(PREFIX))
                })
                .count();
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
