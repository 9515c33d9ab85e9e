//! The task containers of a service on the hives.

use std::collections::HashMap;

use bollard::container::{InspectContainerOptions, ListContainersOptions, LogOutput, LogsOptions};
use futures::StreamExt;
use indexmap::IndexMap;

use crate::Error;
use crate::hive::{Hive, negotiate_all};

/// Label Docker puts on a task container: the service name.
pub const SERVICE_NAME_LABEL: &str = "com.docker.swarm.service.name";
/// Label Docker puts on a task container: the task id.
pub const TASK_ID_LABEL: &str = "com.docker.swarm.task.id";
/// Label Docker puts on a task container: the node id.
pub const NODE_ID_LABEL: &str = "com.docker.swarm.node.id";

/// A running task of a service: where it runs and its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTask {
    /// Name of the hive whose engine runs the container.
    pub hive: String,
    /// Container id.
    pub container_id: String,
    /// Container name (`<service>.<slot>.<task id>`).
    pub container_name: String,
    /// Swarm task id.
    pub task_id: String,
    /// Swarm node id.
    pub node_id: String,
}

/// initialize-services' first step: find a running task of `service` and
/// the hive it runs on, by asking every hive's engine for the service's
/// running task containers. `None` when no task runs.
///
/// Hives are asked in order; the first running container found is returned.
pub async fn find_running_task(
    hives: &[Hive],
    service: &str,
) -> Result<Option<RunningTask>, Error> {
    let hives = negotiate_all(hives).await?;
    for hive in &hives {
        let label = format!("{SERVICE_NAME_LABEL}={service}");
        let what = format!("list containers of service {service}");
        let containers = running_task_containers(hive, &label, &what).await?;
        if let Some(c) = containers.into_iter().next() {
            let labels = c.labels.unwrap_or_default();
            return Ok(Some(RunningTask {
                hive: hive.name.clone(),
                container_id: c.id.unwrap_or_default(),
                container_name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                task_id: labels.get(TASK_ID_LABEL).cloned().unwrap_or_default(),
                node_id: labels.get(NODE_ID_LABEL).cloned().unwrap_or_default(),
            }));
        }
    }
    Ok(None)
}

/// [`find_running_task`], waiting up to `limit` for a task to run: one
/// being started again after its engine restarted, or rescheduled after
/// its hive went away, runs after a few seconds. An engine that does not
/// answer is asked again until then; its last error is returned when no
/// task ran in time.
pub async fn wait_running_task(
    hives: &[Hive],
    service: &str,
    limit: std::time::Duration,
) -> Result<Option<RunningTask>, Error> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let found = find_running_task(hives, service).await;
        let last = tokio::time::Instant::now() >= deadline;
        match found {
            Ok(Some(task)) => return Ok(Some(task)),
            Ok(None) if last => return Ok(None),
            Err(e) if last => return Err(e),
            Ok(None) | Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
}

/// What the service's failed task containers say: their errors, exit codes
/// and last output lines, newest first (at most three per hive).
pub(crate) async fn task_errors(hives: &[Hive], service: &str) -> Vec<String> {
    let mut out = Vec::new();
    for hive in hives {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{SERVICE_NAME_LABEL}={service}")],
        );
        let Ok(mut containers) = hive
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
        else {
            out.push(format!(
                "hive {}: the engine did not list the task containers",
                hive.name
            ));
            continue;
        };
        containers.sort_by_key(|c| std::cmp::Reverse(c.created.unwrap_or(0)));
        for c in containers
            .iter()
            .filter(|c| c.state.as_deref() != Some("running"))
            .take(3)
        {
            let Some(id) = c.id.as_deref() else { continue };
            let Ok(info) = hive
                .docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
            else {
                continue;
            };
            let name = info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let state = info.state.unwrap_or_default();
            let mut message = match state.error.as_deref() {
                Some(e) if !e.is_empty() => e.to_string(),
                _ => format!("exited with code {}", state.exit_code.unwrap_or(0)),
            };
            if state.oom_killed == Some(true) {
                message.push_str(" (killed: out of memory)");
            }
            let lines = last_output(hive, id).await;
            if !lines.is_empty() {
                message.push_str(&format!("; last output: {}", lines.join(" | ")));
            }
            out.push(format!("hive {} task {name}: {message}", hive.name));
        }
    }
    if out.is_empty() {
        out.push(
            "no task container was created on any hive (the tasks are pending: check placement constraints, resources, host-mode ports and the image)"
                .to_string(),
        );
    }
    out
}

async fn last_output(hive: &Hive, id: &str) -> Vec<String> {
    let mut stream = hive.docker.logs(
        id,
        Some(LogsOptions::<String> {
            stdout: true,
            stderr: true,
            tail: "3".to_string(),
            ..Default::default()
        }),
    );
    let mut lines = Vec::new();
    while let Some(Ok(item)) = stream.next().await {
        let bytes = match item {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if !text.is_empty() {
            lines.push(text);
        }
    }
    lines
}

/// For images without a registry digest: services whose running task uses
/// another image than the one its hive has under the reference.
pub(crate) async fn stale_tasks(
    hives: &[Hive],
    unpinned: &[&String],
    references: &IndexMap<&str, String>,
) -> Result<HashMap<String, String>, Error> {
    let mut stale = HashMap::new();
    for hive in hives {
        let mut ids = HashMap::new();
        for image in unpinned {
            if let Ok(i) = hive.docker.inspect_image(image).await {
                if let Some(id) = i.id {
                    ids.insert(image.as_str(), id);
                }
            }
        }
        let containers =
            running_task_containers(hive, SERVICE_NAME_LABEL, "list task containers").await?;
        for c in containers {
            let Some(service) = c.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
                continue;
            };
            let Some(reference) = references.get(service.as_str()) else {
                continue;
            };
            if let (Some(want), Some(have)) = (ids.get(reference.as_str()), c.image_id.as_ref()) {
                if want != have {
                    stale.insert(service.clone(), hive.name.clone());
                }
            }
        }
    }
    Ok(stale)
}

/// The running containers of `hive` that carry `label` (`key` or
/// `key=value`); `what` names the request in an error.
async fn running_task_containers(
    hive: &Hive,
    label: &str,
    what: &str,
) -> Result<Vec<bollard::models::ContainerSummary>, Error> {
    let filters = HashMap::from([
        ("label".to_string(), vec![label.to_string()]),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    hive.docker
        .list_containers(Some(ListContainersOptions {
            all: false,
            filters,
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker(&hive.name, what, e))
}
