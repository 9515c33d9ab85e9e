//! deploy-services: create, update or remove swarm services and wait until
//! their tasks run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::models::{
    EndpointPortConfigPublishModeEnum, Service, ServiceSpec, ServiceUpdateStatusStateEnum,
};
use bollard::network::ListNetworksOptions;
use bollard::service::{InspectServiceOptions, ListServicesOptions, UpdateServiceOptions};
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;

use crate::Error;
use crate::compare::spec_differences;
use crate::definition::{RegistryLogin, ServiceDefinition, StageContext};
use crate::error::ServiceFailure;
use crate::hive::{Hive, negotiate_all};
use crate::pull::pull_image;
use crate::report::{Change, Report, ResourceChange, ResourceKind};
use crate::spec::{image_reference, service_spec};
use crate::tasks::{stale_tasks, task_errors};

/// Whether deploy-services pulls images on the hives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull every service's image on every hive first, as hive-builder does,
    /// so that an image pushed again under the same tag is noticed.
    Always,
    /// Use the images the hives already have (air-gapped sites, tests).
    Never,
}

/// Progress of deploy-services, sent to the callback given to
/// [`Deployer::on_event`] (the library never prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployEvent {
    /// An image was pulled on a hive.
    Pulled {
        /// Hive name.
        hive: String,
        /// Image reference.
        image: String,
    },
    /// What will happen to a service (also sent in check mode).
    Planned {
        /// Service name.
        service: String,
        /// The planned change.
        change: Change,
    },
    /// A service was created, updated or removed.
    Applied {
        /// Service name.
        service: String,
        /// The change made.
        change: Change,
    },
    /// Running and desired tasks of a service, sent when they change while
    /// waiting for convergence.
    Progress {
        /// Service name.
        service: String,
        /// Tasks running.
        running: u64,
        /// Tasks desired.
        desired: u64,
    },
    /// A service has all its tasks running (and its update completed).
    Converged {
        /// Service name.
        service: String,
    },
}

/// A callback receiving [`DeployEvent`]s.
pub type EventSink = Arc<dyn Fn(DeployEvent) + Send + Sync>;

/// A planned service: name, spec to deploy, change, and the deployed service.
type Plan<'a> = (String, ServiceSpec, Change, Option<&'a Service>);

/// deploy-services for one stage: a consuming builder holding the hives,
/// the stage and the options.
///
/// ```no_run
/// # async fn run() -> Result<(), hive_swarm::Error> {
/// use hive_swarm::{Deployer, Hive, ServiceDefinition, StageContext};
/// let docker = bollard::Docker::connect_with_local_defaults().expect("docker socket");
/// let stage = StageContext::new("private", "hive0.pdns:5000", "hive0.pdns");
/// let mut services = indexmap::IndexMap::new();
/// services.insert("web".to_string(), serde_json::from_str::<ServiceDefinition>(
///     r#"{"image": "nginx:1.25", "ports": ["8080:80"]}"#).unwrap());
/// let report = Deployer::new(vec![Hive::new("hive0.pdns", docker)], stage)
///     .on_event(|e| eprintln!("{e:?}"))
///     .deploy(&services)
///     .await?;
/// println!("changed: {}", report.changed());
/// # Ok(()) }
/// ```
pub struct Deployer {
    hives: Vec<Hive>,
    stage: StageContext,
    limit: Option<Vec<String>>,
    destroy: bool,
    check: bool,
    wait: bool,
    timeout: Duration,
    poll_interval: Duration,
    steady: Duration,
    concurrency: usize,
    pull: PullPolicy,
    events: Option<EventSink>,
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field(
                "hives",
                &self.hives.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .field("stage", &self.stage.stage)
            .field("limit", &self.limit)
            .field("destroy", &self.destroy)
            .field("check", &self.check)
            .field("wait", &self.wait)
            .field("timeout", &self.timeout)
            .field("steady", &self.steady)
            .field("concurrency", &self.concurrency)
            .field("pull", &self.pull)
            .finish()
    }
}

impl Deployer {
    /// A deployer for `stage` talking to `hives`; the first hive is the swarm
    /// manager that services are created on. Defaults: pull always, wait
    /// up to 300 s for convergence (a changed service's tasks running for
    /// 5 s on end), 10 parallel API calls.
    pub fn new(hives: Vec<Hive>, stage: StageContext) -> Self {
        Deployer {
            hives,
            stage,
            limit: None,
            destroy: false,
            check: false,
            wait: true,
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(250),
            steady: STEADY,
            concurrency: 10,
            pull: PullPolicy::Always,
            events: None,
        }
    }

    /// Only deploy (or remove) these services (`-l`); names that are not
    /// services of the stage are ignored, as in hive-builder.
    pub fn limit<I, S>(mut self, services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.limit = Some(services.into_iter().map(Into::into).collect());
        self
    }

    /// Remove the services instead of deploying them (`-D`); networks and
    /// volumes stay.
    pub fn destroy(mut self, destroy: bool) -> Self {
        self.destroy = destroy;
        self
    }

    /// Compute the plan only: nothing is pulled, created, updated or removed.
    pub fn check(mut self, check: bool) -> Self {
        self.check = check;
        self
    }

    /// Whether to wait for the services to converge (default true).
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// How long to wait for convergence before failing.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the tasks of a service created or updated by this run must
    /// run on end before it is converged (5 s, as `docker service create`
    /// monitors them): a task that starts and soon fails is not converged.
    pub fn steady(mut self, steady: Duration) -> Self {
        self.steady = steady;
        self
    }

    /// Maximum parallel API calls (at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Whether to pull images on the hives first.
    pub fn pull(mut self, pull: PullPolicy) -> Self {
        self.pull = pull;
        self
    }

    /// Receive progress events.
    pub fn on_event<F>(mut self, callback: F) -> Self
    where
        F: Fn(DeployEvent) + Send + Sync + 'static,
    {
        self.events = Some(Arc::new(callback));
        self
    }

    fn emit(&self, event: DeployEvent) {
        if let Some(sink) = &self.events {
            sink(event);
        }
    }

    /// Deploy `services` (name to rendered definition, the services of this
    /// stage): create the missing ones, update those whose spec or image
    /// changed, leave the others; then wait until all their tasks run.
    /// With [`destroy`](Self::destroy), remove them instead.
    pub async fn deploy(
        &self,
        services: &IndexMap<String, ServiceDefinition>,
    ) -> Result<Report, Error> {
        let hives = negotiate_all(&self.hives).await?;
        let manager = &hives[0];
        let selected: Vec<(&String, &ServiceDefinition)> = services
            .iter()
            .filter(|(name, _)| {
                self.limit
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|n| n == *name))
            })
            .collect();

        let (current, network_names) =
            futures::try_join!(list_services(manager, false), swarm_network_names(manager))?;

        if self.destroy {
            return self.remove(manager, &selected, &current).await;
        }

        // Image references and where to log in for them.
        let mut references: IndexMap<&str, String> = IndexMap::new();
        for (name, def) in &selected {
            references.insert(name.as_str(), image_reference(name, def, &self.stage)?);
        }
        let mut images: Vec<String> = references.values().cloned().collect();
        images.sort();
        images.dedup();

        if !self.check && self.pull == PullPolicy::Always {
            self.pull_images(&hives, &images).await?;
        }
        let pinned = self.pin_images(manager, &images).await;

        // Images that cannot be pinned (no registry digest): compare the image
        // the hives have with the one the running tasks use, as hive-builder.
        let unpinned: Vec<&String> = images
            .iter()
            .filter(|i| pinned.get(*i) == Some(*i) && !i.contains('@'))
            .collect();
        let stale = if unpinned.is_empty() || current.is_empty() {
            HashMap::new()
        } else {
            stale_tasks(&hives, &unpinned, &references).await?
        };

        // The plan.
        let mut plans: Vec<Plan<'_>> = Vec::new();
        for (name, def) in &selected {
            let existing = current.get(name.as_str());
            let reference = &references[name.as_str()];
            let image = pinned
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.clone());
            let (spec, change) = self.plan_service(
                name,
                def,
                existing,
                image,
                &network_names,
                stale.get(name.as_str()),
            )?;
            plans.push((name.to_string(), spec, change, existing));
        }

        for (name, spec, change, _) in &plans {
            if *change == Change::Created {
                check_conflicts(name, spec, &current, services)?;
            }
        }

        for (name, _, change, _) in &plans {
            self.emit(DeployEvent::Planned {
                service: name.clone(),
                change: change.clone(),
            });
        }
        let report = Report {
            check: self.check,
            resources: plans
                .iter()
                .map(|(name, _, change, _)| ResourceChange {
                    kind: ResourceKind::Service,
                    name: name.clone(),
                    hive: None,
                    change: change.clone(),
                })
                .collect(),
        };
        if self.check {
            return Ok(report);
        }
        self.apply_plans(&hives, &plans).await?;
        Ok(report)
    }

    /// Pulls every image on every hive.
    async fn pull_images(&self, hives: &[Hive], images: &[String]) -> Result<(), Error> {
        let jobs: Vec<(&Hive, &String)> = hives
            .iter()
            .flat_map(|h| images.iter().map(move |i| (h, i)))
            .collect();
        futures::stream::iter(jobs)
            .map(|(hive, image)| async move {
                pull_image(hive, image, credentials_for(&self.stage, image)).await?;
                self.emit(DeployEvent::Pulled {
                    hive: hive.name.clone(),
                    image: image.clone(),
                });
                Ok::<(), Error>(())
            })
            .buffer_unordered(self.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Pin each image to its registry digest, so that a new image under
    /// the same tag makes a different spec; an image without a digest
    /// stays as it is.
    async fn pin_images(&self, manager: &Hive, images: &[String]) -> HashMap<String, String> {
        futures::stream::iter(images.iter())
            .map(|image| async move {
                let digest = self.digest_of(manager, image).await;
                let reference = match digest {
                    Some(d) => format!("{image}@{d}"),
                    None => image.clone(),
                };
                (image.clone(), reference)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }

    /// The spec of one service with its pinned `image`, and how it differs
    /// from the deployed one (`stale_on`: a hive whose image changed).
    fn plan_service(
        &self,
        name: &str,
        def: &ServiceDefinition,
        existing: Option<&Service>,
        image: String,
        network_names: &HashMap<String, String>,
        stale_on: Option<&String>,
    ) -> Result<(ServiceSpec, Change), Error> {
        let current_replicas = existing
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.mode.as_ref())
            .and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas)
            .map(|r| r as u64);
        let mut spec = service_spec(name, def, &self.stage, current_replicas)?;
        if let Some(c) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
        {
            c.image = Some(image);
        }
        let change = match existing.and_then(|s| s.spec.as_ref()) {
            None => Change::Created,
            Some(deployed) => {
                let mut reasons = spec_differences(&spec, deployed, network_names);
                if let Some(hive) = stale_on {
                    reasons.push(format!("image changed on hive {hive}"));
                }
                if reasons.is_empty() {
                    Change::Unchanged
                } else {
                    Change::Updated(reasons)
                }
            }
        };
        Ok((spec, change))
    }

    /// Creates and updates the planned services, then waits for them to
    /// converge.
    async fn apply_plans(&self, hives: &[Hive], plans: &[Plan<'_>]) -> Result<(), Error> {
        let manager = &hives[0];
        let previous_updates: HashMap<String, Option<String>> = plans
            .iter()
            .map(|(name, _, _, existing)| {
                (
                    name.clone(),
                    existing
                        .and_then(|s| s.update_status.as_ref())
                        .and_then(|u| u.started_at.clone()),
                )
            })
            .collect();
        let cycles: Vec<Option<String>> =
            futures::stream::iter(plans.iter().filter(|p| p.2.is_change()))
                .map(|(name, spec, change, existing)| async move {
                    let cycle = self
                        .apply(manager, name, spec.clone(), change, *existing)
                        .await?;
                    self.emit(DeployEvent::Applied {
                        service: name.clone(),
                        change: change.clone(),
                    });
                    Ok::<Option<String>, Error>(cycle.then(|| name.clone()))
                })
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
        let expect_update_cycle: HashSet<String> = cycles.into_iter().flatten().collect();

        if self.wait {
            let names: Vec<String> = plans.iter().map(|p| p.0.clone()).collect();
            let changed: HashSet<String> = plans
                .iter()
                .filter(|p| p.2.is_change())
                .map(|p| p.0.clone())
                .collect();
            let waiting = Waiting {
                expect_update_cycle: &expect_update_cycle,
                previous_updates: &previous_updates,
                changed: &changed,
            };
            self.wait_converged(hives, &names, &waiting).await?;
        }
        Ok(())
    }

    async fn remove(
        &self,
        manager: &Hive,
        selected: &[(&String, &ServiceDefinition)],
        current: &HashMap<String, Service>,
    ) -> Result<Report, Error> {
        let results: Vec<Result<ResourceChange, Error>> = futures::stream::iter(selected.iter())
            .map(|(name, _)| async move {
                let change = if current.contains_key(name.as_str()) {
                    if !self.check {
                        match manager.docker.delete_service(name).await {
                            Ok(())
                            | Err(bollard::errors::Error::DockerResponseServerError {
                                status_code: 404,
                                ..
                            }) => {}
                            Err(e) => {
                                return Err(Error::docker(
                                    &manager.name,
                                    format!("remove service {name}"),
                                    e,
                                ));
                            }
                        }
                        self.emit(DeployEvent::Applied {
                            service: name.to_string(),
                            change: Change::Removed,
                        });
                    }
                    Change::Removed
                } else {
                    Change::Absent
                };
                Ok(ResourceChange {
                    kind: ResourceKind::Service,
                    name: name.to_string(),
                    hive: None,
                    change,
                })
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        Ok(Report {
            check: self.check,
            resources: results.into_iter().collect::<Result<_, _>>()?,
        })
    }

    async fn digest_of(&self, manager: &Hive, image: &str) -> Option<String> {
        if image.contains('@') {
            return None;
        }
        if self.check && self.pull == PullPolicy::Always {
            if let Ok(d) = manager
                .docker
                .inspect_registry_image(image, credentials_for(&self.stage, image))
                .await
            {
                if let Some(digest) = d.descriptor.digest {
                    return Some(digest);
                }
            }
        }
        let inspect = manager.docker.inspect_image(image).await.ok()?;
        let repo = normalise_repository(repository_of(image));
        inspect
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find_map(|rd| {
                let (r, digest) = rd.split_once('@')?;
                (normalise_repository(r) == repo).then(|| digest.to_string())
            })
    }

    async fn apply(
        &self,
        manager: &Hive,
        name: &str,
        mut spec: ServiceSpec,
        change: &Change,
        existing: Option<&Service>,
    ) -> Result<bool, Error> {
        let image = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let credentials = credentials_for(&self.stage, &image);
        match (change, existing) {
            (Change::Created, _) => {
                manager
                    .docker
                    .create_service(spec, credentials)
                    .await
                    .map_err(|e| explain_create_error(&manager.name, name, e))?;
            }
            (Change::Updated(reasons), Some(service)) => {
                let deployed_force = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.task_template.as_ref())
                    .and_then(|t| t.force_update)
                    .unwrap_or(0);
                let forced = reasons.iter().any(|r| r.starts_with("image changed"));
                if let Some(t) = spec.task_template.as_mut() {
                    t.force_update = Some(deployed_force + i64::from(forced));
                }
                let version = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
                manager
                    .docker
                    .update_service(
                        name,
                        spec,
                        UpdateServiceOptions {
                            version,
                            ..Default::default()
                        },
                        credentials,
                    )
                    .await
                    .map_err(|e| {
                        Error::docker(&manager.name, format!("update service {name}"), e)
                    })?;
                // The engine rolls the tasks only when their part of the spec
                // changed (not for labels or the replica count).
                let after = manager
                    .docker
                    .inspect_service(name, None::<InspectServiceOptions>)
                    .await
                    .map_err(|e| {
                        Error::docker(&manager.name, format!("inspect service {name}"), e)
                    })?;
                let task_part = |s: Option<&ServiceSpec>| {
                    s.map(|s| {
                        (
                            serde_json::to_value(&s.task_template).ok(),
                            serde_json::to_value(&s.endpoint_spec).ok(),
                        )
                    })
                };
                return Ok(task_part(after.spec.as_ref()) != task_part(service.spec.as_ref()));
            }
            _ => {}
        }
        Ok(false)
    }

    async fn wait_converged(
        &self,
        hives: &[Hive],
        names: &[String],
        waiting: &Waiting<'_>,
    ) -> Result<(), Error> {
        let Waiting {
            expect_update_cycle,
            previous_updates,
            changed,
        } = *waiting;
        let manager = &hives[0];
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Since when each service has had all its tasks running.
        let mut steady_since: HashMap<String, tokio::time::Instant> = HashMap::new();
        let mut last: HashMap<String, (u64, u64)> = HashMap::new();
        let mut update_notes: HashMap<String, String> = HashMap::new();
        let mut pending: Vec<String> = names.to_vec();
        loop {
            let services = list_services(manager, true).await?;
            let mut still = Vec::new();
            for name in pending {
                let Some(service) = services.get(&name) else {
                    return Err(Error::Conflict {
                        service: name.clone(),
                        explanation: "the service disappeared while waiting for it to converge (removed by someone else?)".to_string(),
                    });
                };
                let (running, desired, expected) = task_counts(service);
                if last.get(&name) != Some(&(running, desired)) {
                    self.emit(DeployEvent::Progress {
                        service: name.clone(),
                        running,
                        desired,
                    });
                    last.insert(name.clone(), (running, desired));
                }
                let update = service.update_status.as_ref();
                let new_cycle = update.and_then(|u| u.started_at.clone())
                    != previous_updates.get(&name).cloned().flatten();
                let state = update.and_then(|u| u.state);
                if expect_update_cycle.contains(&name) && new_cycle {
                    if let Some(
                        s @ (ServiceUpdateStatusStateEnum::PAUSED
                        | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
                        | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
                    ) = state
                    {
                        return Err(Error::UpdateFailed {
                            service: name.clone(),
                            state: s.to_string(),
                            message: update.and_then(|u| u.message.clone()).unwrap_or_default(),
                            tasks: task_errors(hives, &name).await,
                        });
                    }
                }
                let update_done = !expect_update_cycle.contains(&name)
                    || (new_cycle && state == Some(ServiceUpdateStatusStateEnum::COMPLETED));
                if !update_done {
                    update_notes.insert(
                        name.clone(),
                        format!(
                            "rolling update not completed (state {}: {})",
                            state
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "not started".into()),
                            update.and_then(|u| u.message.clone()).unwrap_or_default()
                        ),
                    );
                } else {
                    update_notes.remove(&name);
                }
                let now = tokio::time::Instant::now();
                let running_all = update_done && running == desired && desired == expected;
                let steady = running_all
                    && (!changed.contains(&name)
                        || now - *steady_since.entry(name.clone()).or_insert(now) >= self.steady);
                if !running_all {
                    steady_since.remove(&name);
                }
                if steady {
                    self.emit(DeployEvent::Converged {
                        service: name.clone(),
                    });
                } else {
                    still.push(name);
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let mut failures = Vec::new();
                for name in &pending {
                    let (running, desired) = last.get(name).copied().unwrap_or((0, 0));
                    let mut errors: Vec<String> =
                        update_notes.get(name).cloned().into_iter().collect();
                    if running < desired || errors.is_empty() {
                        errors.extend(task_errors(hives, name).await);
                    }
                    failures.push(ServiceFailure {
                        service: name.clone(),
                        running,
                        desired,
                        errors,
                    });
                }
                return Err(Error::NotConverged {
                    timeout: self.timeout,
                    failures,
                });
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

/// How long the tasks of a changed service must run on end to be
/// converged.
const STEADY: Duration = Duration::from_secs(5);

/// What waiting for convergence needs to know of the changes applied.
#[derive(Clone, Copy)]
struct Waiting<'a> {
    /// Services whose update starts a new rolling-update cycle.
    expect_update_cycle: &'a HashSet<String>,
    /// The start of each service's last update cycle before this run.
    previous_updates: &'a HashMap<String, Option<String>>,
    /// Services created or updated by this run.
    changed: &'a HashSet<String>,
}

/// Running and desired tasks from the service status, and the desired count
/// the spec asks for (the status count for global services).
fn task_counts(service: &Service) -> (u64, u64, u64) {
    let status = service.service_status.as_ref();
    let running = status.and_then(|s| s.running_tasks).unwrap_or(0);
    let desired = status.and_then(|s| s.desired_tasks).unwrap_or(0);
    let expected = service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .map(|r| r.replicas.unwrap_or(1) as u64)
        .unwrap_or(desired.max(1));
    (running, desired, expected)
}

/// Every service on the swarm, by name.
async fn list_services(manager: &Hive, status: bool) -> Result<HashMap<String, Service>, Error> {
    let services = manager
        .docker
        .list_services(Some(ListServicesOptions::<String> {
            filters: HashMap::new(),
            status,
        }))
        .await
        .map_err(|e| Error::docker(&manager.name, "list services", e))?;
    Ok(services
        .into_iter()
        .filter_map(|s| {
            let name = s.spec.as_ref()?.name.clone()?;
            Some((name, s))
        })
        .collect())
}

/// Swarm network ids to names.
async fn swarm_network_names(manager: &Hive) -> Result<HashMap<String, String>, Error> {
    let networks = manager
        .docker
        .list_networks(Some(ListNetworksOptions::<String> {
            filters: HashMap::new(),
        }))
        .await
        .map_err(|e| Error::docker(&manager.name, "list networks", e))?;
    Ok(networks
        .into_iter()
        .filter_map(|n| Some((n.id?, n.name?)))
        .collect())
}

/// The registry host of an image reference (`None` for Docker Hub).
pub(crate) fn registry_of(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

fn repository_of(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    }
}

fn normalise_repository(repo: &str) -> String {
    let r = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let r = r.strip_prefix("library/").unwrap_or(r);
    r.to_string()
}

/// The login for the registry of `image`, if the stage has one.
fn credentials_for(stage: &StageContext, image: &str) -> Option<DockerCredentials> {
    let registry = registry_of(image);
    let login: Option<&RegistryLogin> = if registry == Some(stage.registry.as_str()) {
        stage.registry_login.as_ref()
    } else {
        stage
            .external_registries
            .iter()
            .find(|l| l.registry.as_deref() == registry)
    };
    login.map(|l| DockerCredentials {
        username: Some(l.username.clone()),
        password: Some(l.password.clone()),
        serveraddress: Some(
            registry
                .unwrap_or("https://index.docker.io/v1/")
                .to_string(),
        ),
        ..Default::default()
    })
}

/// Published ports as (port, protocol, is-ingress).
fn published_ports(spec: &ServiceSpec) -> Vec<(i64, String, bool)> {
    spec.endpoint_spec
        .as_ref()
        .and_then(|e| e.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    Some((
                        p.published_port?,
                        p.protocol
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| "tcp".into()),
                        p.publish_mode != Some(EndpointPortConfigPublishModeEnum::HOST),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_placement(spec: &ServiceSpec) -> bool {
    spec.task_template
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .and_then(|p| p.constraints.as_ref())
        .is_some_and(|c| !c.is_empty())
}

/// A new service must not publish a port another service publishes: after
/// a rename, the old service still runs and holds it.
fn check_conflicts(
    name: &str,
    spec: &ServiceSpec,
    current: &HashMap<String, Service>,
    defined: &IndexMap<String, ServiceDefinition>,
) -> Result<(), Error> {
    let mine = published_ports(spec);
    if mine.is_empty() {
        return Ok(());
    }
    for (other, service) in current {
        let Some(other_spec) = service.spec.as_ref() else {
            continue;
        };
        for (port, protocol, ingress) in published_ports(other_spec) {
            let clash = mine.iter().any(|(p, proto, my_ingress)| {
                *p == port
                    && *proto == protocol
                    && (ingress
                        || *my_ingress
                        || (!has_placement(spec) && !has_placement(other_spec)))
            });
            if clash {
                let hint = if defined.contains_key(other) {
                    format!(
                        "service {other} of this stage publishes it too; give one of them another published_port"
                    )
                } else {
                    format!(
                        "service {other}, which is not among the stage's services, still publishes it. If {other} was renamed to {name}, remove the old service first (deploy-services -D -l {other} with the old definition, or `docker service rm {other}`), then deploy again"
                    )
                };
                return Err(Error::Conflict {
                    service: name.to_string(),
                    explanation: format!("cannot publish port {port}/{protocol}: {hint}"),
                });
            }
        }
    }
    Ok(())
}

fn explain_create_error(hive: &str, name: &str, e: bollard::errors::Error) -> Error {
    let text = e.to_string();
    if text.contains("already in use by service")
        || text.contains("name conflicts with an existing object")
    {
        Error::Conflict {
            service: name.to_string(),
            explanation: format!(
                "the engine refused to create it because something another service holds is in use ({text}). If a service was renamed to {name}, remove the old one first (`docker service rm OLD`), then deploy again"
            ),
        }
    } else {
        Error::docker(hive, format!("create service {name}"), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_and_repositories() {
        let check = |image: &str, registry: Option<&str>, repo: &str| {
            assert_eq!(registry_of(image), registry, "{image}");
            assert_eq!(repository_of(image), repo, "{image}");
        };
        check("busybox", None, "busybox");
        check("busybox:1", None, "busybox");
        check("procube/certbot:2", None, "procube/certbot");
        check(
            "hive0.pdns:5000/image_web:latest",
            Some("hive0.pdns:5000"),
            "hive0.pdns:5000/image_web",
        );
        check("localhost/x@sha256:abc", Some("localhost"), "localhost/x");
        check(
            "127.0.0.1:5000/a/b",
            Some("127.0.0.1:5000"),
            "127.0.0.1:5000/a/b",
        );
        assert_eq!(normalise_repository("docker.io/library/busybox"), "busybox");
    }

    #[test]
    fn credentials_follow_the_registry() {
        let mut stage = StageContext::new("private", "hive0.pdns:5000", "hive0.pdns");
        stage.registry_login = Some(RegistryLogin {
            registry: Some("hive0.pdns:5000".into()),
            username: "hive".into(),
            password: "secret".into(),
        });
        stage.external_registries.push(RegistryLogin {
            registry: None,
            username: "hub".into(),
            password: "pw".into(),
        });
        let c = credentials_for(&stage, "hive0.pdns:5000/image_web:latest").unwrap();
        assert_eq!(c.username.as_deref(), Some("hive"));
        let c = credentials_for(&stage, "procube/certbot").unwrap();
        assert_eq!(c.username.as_deref(), Some("hub"));
        assert!(credentials_for(&stage, "quay.io/x/y").is_none());
        assert!(!format!("{:?}", stage.registry_login).contains("secret"));
    }
}
