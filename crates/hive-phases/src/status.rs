//! `hive status`: the site as it is. Servers (reachable, Docker engine,
//! swarm membership, disk), services (tasks against what the inventory
//! wants, where they run, image digest, last task error, endpoints),
//! volumes, the registry and the last runs of the journal; with every
//! problem named, so that a caller can exit non-zero on an unhealthy site.
//!
//! Everything is read over the stage's SSH sessions with the servers'
//! own `docker` command, so nothing but SSH needs to reach them.

use std::collections::BTreeMap;
use std::sync::Arc;

use hive_provider::{RemoteCommand, SshPool, Transport};
use serde::Serialize;
use serde_json::Value as Json;

use crate::site::StageSite;
use crate::{Error, Journal, JournalEntry};

/// The status of a site.
#[derive(Debug, Clone, Serialize)]
pub struct SiteStatus {
    /// The site's name.
    pub site: String,
    /// The stage.
    pub stage: String,
    /// Whether nothing is wrong.
    pub healthy: bool,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
    /// The servers, in stage order.
    pub servers: Vec<ServerStatus>,
    /// The services of the stage, in inventory order.
    pub services: Vec<ServiceStatus>,
    /// The volumes of the stage.
    pub volumes: Vec<VolumeStatus>,
    /// The site registry on the repository server.
    pub registry: Option<RegistryStatus>,
    /// The last runs of the journal, newest last.
    pub runs: Vec<JournalEntry>,
}

/// One server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Whether it answered over SSH.
    pub reachable: bool,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The Docker engine's version, when it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<String>,
    /// Its swarm node (hives): status, availability, manager status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmNode>,
    /// Use of the root file system, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_used_percent: Option<u8>,
    /// Free space of the root file system, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_free_bytes: Option<u64>,
}

/// A swarm node as the managers see it.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmNode {
    /// `Ready`, `Down`, ...
    pub status: String,
    /// `Active`, `Pause`, `Drain`.
    pub availability: String,
    /// `Leader`, `Reachable`, `Unreachable`, or empty for a worker.
    pub manager: String,
}

/// One service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// Tasks the inventory wants running (replicas, or one per hive for a
    /// global service).
    pub desired: usize,
    /// Tasks running.
    pub running: usize,
    /// The servers running them.
    pub on: Vec<String>,
    /// The image with its digest, as the swarm runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The newest task error, if a task failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Published endpoints, as `tcp://ADDRESS:PORT` (or `udp://`).
    pub endpoints: Vec<String>,
    /// Whether the swarm has the service at all.
    pub deployed: bool,
    /// The current state of each task the swarm wants running
    /// (`Running 5 minutes ago`, `Preparing 2 seconds ago`, ...), with its
    /// server.
    pub tasks: Vec<String>,
}

/// One volume of the stage.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeStatus {
    /// Its name.
    pub name: String,
    /// `drbd`, `nfs` or the Docker volume driver.
    pub kind: String,
    /// Whether it is healthy (DRBD: every resource up to date and
    /// connected; a driver volume: present where its service runs).
    pub healthy: bool,
    /// What was seen.
    pub detail: String,
}

/// The site registry.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryStatus {
    /// Its address (`hive_registry`).
    pub address: String,
    /// Its repositories.
    pub repositories: Vec<String>,
    /// The size of its storage, in bytes.
    pub size_bytes: u64,
}

/// A `docker` command's output on `host`, or why it failed.
async fn run(pool: &SshPool, host: &str, script: &str) -> Result<String, String> {
    let session = pool.session(host).await.map_err(|e| e.to_string())?;
    let out = session
        .exec(
            &RemoteCommand::new(script)
                .sudo()
                .timeout(std::time::Duration::from_secs(30)),
        )
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

const SERVER_SCRIPT: &str = "docker version --format 'docker={{.Server.Version}}' 2>/dev/null || echo docker=; df -P -B1 / | awk 'NR==2 {sub(\"%\",\"\",$5); print \"disk=\" $5 \" \" $4}'";

const SWARM_SCRIPT: &str = r#"docker node ls --format '{{json .}}' | sed 's/^/node /'
for s in $(docker service ls --format '{{.Name}}'); do
  printf 'service %s ' "$s"; docker service inspect --format '{{json .}}' "$s"
done
ids=$(docker service ls -q)
[ -z "$ids" ] || docker service ps --no-trunc --format 'task {{.Name}}	{{.Node}}	{{.DesiredState}}	{{.CurrentState}}	{{.Error}}' $ids"#;

const REGISTRY_SCRIPT: &str = r#"m=$(docker volume inspect -f '{{.Mountpoint}}' hive-registry-data) || exit 1
du -sb "$m" | cut -f1
ls "$m/docker/registry/v2/repositories" 2>/dev/null || true"#;

/// Reads the status of the site of `site`.
pub async fn site_status(site: &StageSite<'_>, last_runs: usize) -> Result<SiteStatus, Error> {
    let project = site.project();
    let stage = site.stage().name;
    let pool: Arc<SshPool> = crate::engines::stage_pool(&site.context_dir())?;
    let mut problems = Vec::new();
    let all: Vec<_> = project.servers_of(stage).collect();
    let mut servers = server_statuses(&pool, &all, &mut problems).await;
    let hives: Vec<&str> = all
        .iter()
        .filter(|s| s.role.is_hive())
        .map(|s| s.name.as_str())
        .collect();
    let swarm = read_swarm(&pool, &hives, &servers, &mut problems).await;
    mark_swarm_nodes(&mut servers, &hives, &swarm, &mut problems);
    let definitions = site.service_definitions()?;
    let mut services = Vec::new();
    for (name, def) in &definitions {
        let status = service_status(name, def, &swarm, &all, &hives);
        problems.extend(service_problem(&status));
        services.push(status);
    }
    let volumes = volume_status(site, &definitions, &services, &mut problems).await;
    let registry = registry_status(site, &pool, &mut problems).await;
    let mut runs = Journal::in_dir(project.context_dir()).read()?;
    let skip = runs.len().saturating_sub(last_runs);
    runs.drain(..skip);
    Ok(SiteStatus {
        site: project.name().to_string(),
        stage: stage.to_string(),
        healthy: problems.is_empty(),
        problems,
        servers,
        services,
        volumes,
        registry,
        runs,
    })
}

/// Every server's answer to [`SERVER_SCRIPT`], asked of all at once, with
/// the problems it shows (unreachable, no engine, disk nearly full).
async fn server_statuses(
    pool: &SshPool,
    all: &[&hive_inventory::Server],
    problems: &mut Vec<String>,
) -> Vec<ServerStatus> {
    let answers = futures::future::join_all(
        all.iter()
            .map(|s| run(pool, &s.name, SERVER_SCRIPT))
            .collect::<Vec<_>>(),
    )
    .await;
    let mut servers = Vec::new();
    for (s, answer) in all.iter().zip(answers) {
        let status = server_status(s, answer);
        match (&status.error, &status.docker) {
            (Some(e), _) => problems.push(format!("server {}: not reachable: {e}", s.name)),
            (None, None) => problems.push(format!(
                "server {}: its Docker engine does not answer",
                s.name
            )),
            _ => {}
        }
        // Nearly full: 95 % used or less than 1 GiB left.
        let full = status.disk_used_percent.is_some_and(|p| p >= 95)
            || status.disk_free_bytes.is_some_and(|b| b < 1 << 30);
        if full {
            problems.push(format!(
                "server {}: root file system {}% full ({} bytes free)",
                s.name,
                status.disk_used_percent.unwrap_or_default(),
                status.disk_free_bytes.unwrap_or_default()
            ));
        }
        servers.push(status);
    }
    servers
}

/// A server's status from its answer to [`SERVER_SCRIPT`].
fn server_status(s: &hive_inventory::Server, answer: Result<String, String>) -> ServerStatus {
    let mut status = ServerStatus {
        name: s.name.clone(),
        address: s.private_ip.to_string(),
        reachable: answer.is_ok(),
        error: answer.as_ref().err().cloned(),
        docker: None,
        swarm: None,
        disk_used_percent: None,
        disk_free_bytes: None,
    };
    if let Ok(text) = &answer {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("docker=") {
                status.docker = Some(v.to_string()).filter(|v| !v.is_empty());
            }
            if let Some(v) = line.strip_prefix("disk=") {
                let mut parts = v.split_whitespace();
                status.disk_used_percent = parts.next().and_then(|p| p.parse().ok());
                status.disk_free_bytes = parts.next().and_then(|p| p.parse().ok());
            }
        }
    }
    status
}

/// The swarm as the first hive whose engine answers sees it (empty, with a
/// problem, when none does or it cannot be read).
async fn read_swarm(
    pool: &SshPool,
    hives: &[&str],
    servers: &[ServerStatus],
    problems: &mut Vec<String>,
) -> SwarmState {
    let manager = hives
        .iter()
        .find(|h| servers.iter().any(|s| &s.name == *h && s.docker.is_some()));
    let swarm = match manager {
        Some(m) => run(pool, m, SWARM_SCRIPT).await.map_err(|e| {
            problems.push(format!("swarm: cannot read it on {m}: {e}"));
        }),
        None => {
            problems.push("swarm: no hive answers".into());
            Err(())
        }
    };
    if let Ok(text) = &swarm {
        tracing::debug!(lines = text.lines().count(), "swarm state read");
    }
    swarm.map(|t| parse_swarm(&t)).unwrap_or_default()
}

/// Sets each hive's swarm node, with a problem for a node that is not
/// ready and active and for a reachable hive that is not a node.
fn mark_swarm_nodes(
    servers: &mut [ServerStatus],
    hives: &[&str],
    swarm: &SwarmState,
    problems: &mut Vec<String>,
) {
    for s in servers
        .iter_mut()
        .filter(|s| hives.contains(&s.name.as_str()))
    {
        let node = swarm.nodes.iter().find(|(h, _)| same_host(h, &s.name));
        match node {
            Some((_, n)) => {
                if n.status != "Ready" || n.availability != "Active" {
                    problems.push(format!(
                        "server {}: swarm node {} and {}",
                        s.name, n.status, n.availability
                    ));
                }
                s.swarm = Some(n.clone());
            }
            None if s.reachable => {
                problems.push(format!("server {}: not a node of the swarm", s.name));
            }
            None => {}
        }
    }
}

/// Service `name` against the swarm: desired and running tasks, where they
/// run, its image, last task error and endpoints.
fn service_status(
    name: &str,
    def: &hive_swarm::ServiceDefinition,
    swarm: &SwarmState,
    all: &[&hive_inventory::Server],
    hives: &[&str],
) -> ServiceStatus {
    let global = matches!(def.mode, Some(hive_swarm::definition::ServiceMode::Global));
    let desired = if global {
        hives.len()
    } else {
        usize::try_from(def.replicas.unwrap_or(1)).unwrap_or(0)
    };
    let inspect = swarm.services.get(name);
    let tasks: Vec<&Json> = swarm
        .tasks
        .iter()
        .filter(|(s, _)| s == name)
        .map(|(_, t)| t)
        .collect();
    let running: Vec<&Json> = tasks
        .iter()
        .copied()
        .filter(|t| {
            t["DesiredState"] == "Running"
                && t["CurrentState"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("Running"))
        })
        .collect();
    let wanted: Vec<String> = tasks
        .iter()
        .filter(|t| t["DesiredState"] == "Running")
        .map(|t| {
            format!(
                "{} on {}",
                t["CurrentState"].as_str().unwrap_or_default(),
                server_name(all, t["Node"].as_str().unwrap_or_default())
            )
        })
        .collect();
    let on: Vec<String> = running
        .iter()
        .filter_map(|t| t["Node"].as_str().map(str::to_string))
        .collect();
    let last_error = tasks
        .iter()
        .filter_map(|t| t["Error"].as_str())
        .find(|e| !e.is_empty())
        .map(str::to_string);
    ServiceStatus {
        name: name.to_string(),
        desired,
        running: running.len(),
        on: on.iter().map(|n| server_name(all, n)).collect(),
        image: inspect.and_then(|i| {
            i["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .map(str::to_string)
        }),
        last_error,
        endpoints: service_endpoints(inspect, &on, all, hives),
        deployed: inspect.is_some(),
        tasks: wanted,
    }
}

/// The published ports of a service (its `docker service inspect`) as
/// URLs: on the nodes that run it (host mode) or on every hive (ingress).
fn service_endpoints(
    inspect: Option<&Json>,
    on: &[String],
    all: &[&hive_inventory::Server],
    hives: &[&str],
) -> Vec<String> {
    let address_of = |node: &str| -> String {
        all.iter()
            .find(|s| same_host(node, &s.name))
            .map(|s| s.private_ip.to_string())
            .unwrap_or_else(|| node.to_string())
    };
    let mut endpoints = Vec::new();
    if let Some(ports) = inspect.and_then(|i| i["Endpoint"]["Ports"].as_array()) {
        for p in ports {
            let (Some(port), proto) = (p["PublishedPort"].as_u64(), p["Protocol"].as_str()) else {
                continue;
            };
            let proto = proto.unwrap_or("tcp");
            let nodes: Vec<String> = if p["PublishMode"] == "host" {
                on.iter().map(|n| address_of(n)).collect()
            } else {
                hives.iter().map(|h| address_of(h)).collect()
            };
            endpoints.extend(nodes.iter().map(|a| format!("{proto}://{a}:{port}")));
        }
    }
    endpoints
}

/// What is wrong with a service: not deployed, or fewer tasks running than
/// desired.
fn service_problem(status: &ServiceStatus) -> Option<String> {
    let name = &status.name;
    if !status.deployed {
        Some(format!(
            "service {name}: not deployed (run `hive deploy-services`)"
        ))
    } else if status.running < status.desired {
        Some(format!(
            "service {name}: {} of {} task(s) running{}{}",
            status.running,
            status.desired,
            if status.tasks.is_empty() {
                String::new()
            } else {
                format!(" ({})", status.tasks.join("; "))
            },
            status
                .last_error
                .as_ref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        ))
    } else {
        None
    }
}

async fn volume_status(
    site: &StageSite<'_>,
    definitions: &indexmap::IndexMap<String, hive_swarm::ServiceDefinition>,
    services: &[ServiceStatus],
    problems: &mut Vec<String>,
) -> Vec<VolumeStatus> {
    let mut out = Vec::new();
    match crate::volumes::drbd_status(site, &[]).await {
        Ok(Some(rows)) => {
            let mut by_volume: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut healthy: BTreeMap<String, bool> = BTreeMap::new();
            for r in &rows {
                let ok = r.healthy();
                *healthy.entry(r.volume.clone()).or_insert(true) &= ok;
                by_volume
                    .entry(r.volume.clone())
                    .or_default()
                    .push(r.to_string().trim().to_string());
            }
            for (name, lines) in by_volume {
                let ok = healthy.get(&name).copied().unwrap_or(false);
                if !ok {
                    problems.push(format!("volume {name}: DRBD not healthy"));
                }
                out.push(VolumeStatus {
                    name,
                    kind: "drbd".into(),
                    healthy: ok,
                    detail: lines.join("; "),
                });
            }
        }
        Ok(None) => {}
        Err(e) => problems.push(format!("drbd volumes: {e}")),
    }
    if let Ok(driver) = site.driver_volumes() {
        for v in driver {
            let users: Vec<&ServiceStatus> = services
                .iter()
                .filter(|s| {
                    definitions
                        .get(&s.name)
                        .is_some_and(|d| d.volumes.iter().any(|m| m.source == v.name))
                })
                .collect();
            let on: Vec<String> = users.iter().flat_map(|s| s.on.clone()).collect();
            out.push(VolumeStatus {
                name: v.name.clone(),
                kind: v.driver.clone(),
                healthy: true,
                detail: if on.is_empty() {
                    "not in use".to_string()
                } else {
                    format!("in use on {}", on.join(", "))
                },
            });
        }
    }
    out
}

async fn registry_status(
    site: &StageSite<'_>,
    pool: &SshPool,
    problems: &mut Vec<String>,
) -> Option<RegistryStatus> {
    let repo = site.repository_server().ok()?;
    let address = site.registry().unwrap_or_default();
    match run(pool, &repo, REGISTRY_SCRIPT).await {
        Ok(text) => {
            let mut lines = text.lines();
            let size_bytes = lines
                .next()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            Some(RegistryStatus {
                address,
                repositories: lines.map(str::to_string).collect(),
                size_bytes,
            })
        }
        Err(e) => {
            problems.push(format!("registry on {repo}: cannot read it: {e}"));
            None
        }
    }
}

/// What the swarm script printed.
#[derive(Debug, Default)]
struct SwarmState {
    nodes: Vec<(String, SwarmNode)>,
    services: BTreeMap<String, Json>,
    tasks: Vec<(String, Json)>,
}

fn parse_swarm(text: &str) -> SwarmState {
    let mut state = SwarmState::default();
    for line in text.lines() {
        if let Some(json) = line.strip_prefix("node ") {
            if let Ok(v) = serde_json::from_str::<Json>(json) {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                state.nodes.push((
                    s("Hostname"),
                    SwarmNode {
                        status: s("Status"),
                        availability: s("Availability"),
                        manager: s("ManagerStatus"),
                    },
                ));
            }
        } else if let Some(rest) = line.strip_prefix("service ") {
            if let Some((name, json)) = rest.split_once(' ') {
                if let Ok(v) = serde_json::from_str::<Json>(json) {
                    state.services.insert(name.to_string(), v);
                }
            }
        } else if let Some(rest) = line.strip_prefix("task ") {
            // NAME.SLOT (or NAME.NODE-ID for a global service), node,
            // desired state, current state, error.
            let f: Vec<&str> = rest.split('\t').collect();
            let Some((service, _)) = f[0].rsplit_once('.') else {
                continue;
            };
            let field = |i: usize| f.get(i).copied().unwrap_or_default();
            state.tasks.push((
                service.to_string(),
                serde_json::json!({
                    "Node": field(1),
                    "DesiredState": field(2),
                    "CurrentState": field(3),
                    "Error": field(4),
                }),
            ));
        }
    }
    state
}

/// Whether a node's host name is the server `name` (the short name or the
/// full one).
fn same_host(node: &str, name: &str) -> bool {
    node == name || name.strip_prefix(node).is_some_and(|r| r.starts_with('.'))
}

fn server_name(all: &[&hive_inventory::Server], node: &str) -> String {
    all.iter()
        .find(|s| same_host(node, &s.name))
        .map(|s| s.name.clone())
        .unwrap_or_else(|| node.to_string())
}

/// The path of service `service`'s log on the repository server, where
/// setup-hosts' log collector files it.
pub fn service_log_path(service: &str) -> String {
    format!("/var/log/services/{service}.log")
}

/// The last `lines` lines of service `service`'s log collected on the
/// repository server; with `since`, only those written since then (the
/// collector starts every line with an RFC 3339 time).
pub async fn service_log(
    site: &StageSite<'_>,
    service: &str,
    lines: usize,
    since: Option<time::OffsetDateTime>,
) -> Result<Vec<String>, Error> {
    let project = site.project();
    if !project.services().iter().any(|s| s.name == service) {
        return Err(Error::Site {
            message: format!(
                "no service {service} in the inventory; services: {}",
                project
                    .services()
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let pool = crate::engines::stage_pool(&site.context_dir())?;
    let repo = site.repository_server()?;
    let path = service_log_path(service);
    let window = if since.is_some() { 200_000 } else { lines };
    let script = format!(
        "if [ -f {path} ]; then tail -n {window} {path}; else echo 'no log {path} yet' >&2; exit 3; fi"
    );
    let text = run(&pool, &repo, &script).await.map_err(|e| Error::Site {
        message: format!("{repo}: {e}"),
    })?;
    let mut out: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(since) = since {
        out.retain(|l| {
            l.split_whitespace()
                .next()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .is_none_or(|t| t >= since)
        });
        let skip = out.len().saturating_sub(lines);
        out.drain(..skip);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nodes_services_and_tasks() {
        let text = "node {\"Availability\":\"Active\",\"Hostname\":\"p-hive0\",\"ManagerStatus\":\"Leader\",\"Status\":\"Ready\"}\n\
service web {\"Spec\":{\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"r:5000/image_web:latest@sha256:ab\"}}}}\n\
task web.1\tp-hive1\tRunning\tRunning 2 minutes ago\t\n\
task web.1\tp-hive0\tShutdown\tFailed 3 minutes ago\ttask: non-zero exit (1)\n\
task agent.x7k2\tp-hive2\tRunning\tPreparing 1 second ago\t\n";
        let s = parse_swarm(text);
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.nodes[0].0, "p-hive0");
        assert_eq!(s.nodes[0].1.manager, "Leader");
        assert!(s.services.contains_key("web"));
        let web: Vec<&Json> = s
            .tasks
            .iter()
            .filter(|(n, _)| n == "web")
            .map(|(_, t)| t)
            .collect();
        assert_eq!(web.len(), 2);
        assert_eq!(web[0]["CurrentState"], "Running 2 minutes ago");
        assert_eq!(web[1]["Error"], "task: non-zero exit (1)");
        assert_eq!(s.tasks[2].0, "agent");
        assert!(same_host("p-hive1", "p-hive1.e2e.example"));
        assert!(!same_host("p-hive1", "p-hive10.e2e.example"));
    }
}
