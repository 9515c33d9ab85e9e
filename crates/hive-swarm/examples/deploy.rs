//! Deploy services from another program with hive-swarm.
//!
//! ```text
//! cargo run -p hive-swarm --example deploy -- services.yml [--check] [--destroy]
//! ```
//!
//! `services.yml` maps service names to rendered service definitions, e.g.
//!
//! ```yaml
//! hello:
//!   image: hive-test/busybox:1
//!   command: [httpd, -f, -p, "8080"]
//!   endpoint_mode: dnsrr
//!   environment: {GREETING: hello}
//! ```
//!
//! The local Docker engine must be a swarm manager; nothing else of hive is
//! needed: no repository server, no registry, no log collector (services
//! log with the engine's default driver unless they give `logging`).
//! Images are used as the engine has them (no pull).

use std::time::Duration;

use hive_swarm::{DeployEvent, Deployer, Hive, PullPolicy, ServiceDefinition, StageContext};
use indexmap::IndexMap;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: deploy SERVICES.yml [--check] [--destroy]");
        std::process::exit(2);
    };
    let check = args.iter().any(|a| a == "--check");
    let destroy = args.iter().any(|a| a == "--destroy");

    let text = std::fs::read_to_string(path)?;
    let services: IndexMap<String, ServiceDefinition> =
        serde_yaml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;

    // The stage: one hive (this engine) and its networks.
    let docker = bollard::Docker::connect_with_local_defaults()?;
    let hives = vec![Hive::new("localhost", docker)];
    let stage = StageContext::standalone("private");

    if !destroy {
        let networks = hive_swarm::build_networks(&hives[0], &stage, check).await?;
        for r in networks.changes() {
            println!("network {}: {}", r.name, r.change);
        }
    }

    let report = Deployer::new(hives, stage)
        .check(check)
        .destroy(destroy)
        .pull(PullPolicy::Never)
        .timeout(Duration::from_secs(120))
        .on_event(|event| match event {
            DeployEvent::Progress {
                service,
                running,
                desired,
            } => eprintln!("{service}: {running}/{desired} tasks running"),
            DeployEvent::Converged { service } => eprintln!("{service}: converged"),
            _ => {}
        })
        .deploy(&services)
        .await?;

    for r in &report.resources {
        println!("service {}: {}", r.name, r.change);
    }
    if !report.changed() {
        println!("no change");
    }
    Ok(())
}
