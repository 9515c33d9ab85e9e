//! Changes as data: what a phase changed, or would change in check mode,
//! per host and resource, in one shape for every phase, so that a program
//! can read the plan of `hive all -C --output json`.
//!
//! Each phase has its own report type (setup-hosts steps, swarm resources,
//! role tasks, DRBD steps); the functions of this module flatten them into
//! [`Change`]s.
//!
//! ```
//! use hive_phases::plan::{Change, PhasePlan};
//! use hive_phases::Phase;
//!
//! let plan = PhasePlan {
//!     phase: Phase::BuildNetworks,
//!     check_mode: true,
//!     changes: vec![Change::new("network", "hive_default_network", "create")],
//!     note: None,
//! };
//! let json = serde_json::to_value(&plan).unwrap();
//! assert_eq!(json["phase"], "build-networks");
//! assert_eq!(json["changes"][0]["resource"], "hive_default_network");
//! assert!(json["changes"][0].get("host").is_none());
//! ```

use serde::{Deserialize, Serialize};

use crate::Phase;
use crate::setup_hosts::SetupReport;
use crate::volumes::VolumesReport;

/// One thing a phase changed, or would change in check mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The server the change is on; absent for the stage as a whole (a
    /// swarm service, an image in the registry, a file of the mother
    /// machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What kind of resource: `server`, a setup-hosts step name (`base`,
    /// `docker`, ...), `local`, `network`, `volume`, `service`, `task`,
    /// `drbd`.
    pub kind: String,
    /// The resource, as the phase names it.
    pub resource: String,
    /// What happens to it: `create`, `update: <what differs>`, `remove`,
    /// `converge` (made to match its definition), or a task status.
    pub action: String,
}

impl Change {
    /// A change of the stage as a whole.
    pub fn new(
        kind: impl Into<String>,
        resource: impl Into<String>,
        action: impl Into<String>,
    ) -> Change {
        Change {
            host: None,
            kind: kind.into(),
            resource: resource.into(),
            action: action.into(),
        }
    }

    /// The same change, on `host`.
    pub fn on(mut self, host: impl Into<String>) -> Change {
        self.host = Some(host.into());
        self
    }
}

/// The changes of one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhasePlan {
    /// The phase.
    pub phase: Phase,
    /// Whether nothing was changed (`-C`): the changes are what a run
    /// would do.
    pub check_mode: bool,
    /// The changes, in the order the phase reported them.
    pub changes: Vec<Change>,
    /// A remark on the plan, e.g. that the servers do not exist yet so the
    /// phase would run in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The changes of a setup-hosts run: the mother machine's files (kind
/// `local`), then every server's step items (kind = the step).
pub fn setup_hosts_changes(report: &SetupReport) -> Vec<Change> {
    let mut out: Vec<Change> = report
        .local_changes
        .iter()
        .map(|c| Change::new("local", c, "converge"))
        .collect();
    for h in &report.hosts {
        for s in &h.steps {
            for item in &s.changed {
                out.push(Change::new(s.step.name(), item, "converge").on(&h.host));
            }
        }
    }
    out
}

/// The changed resources of a swarm report (networks, volumes, services).
pub fn swarm_changes(report: &hive_swarm::Report) -> Vec<Change> {
    report
        .changes()
        .map(|r| {
            let kind = match r.kind {
                hive_swarm::ResourceKind::Network => "network",
                hive_swarm::ResourceKind::Volume => "volume",
                hive_swarm::ResourceKind::Service => "service",
            };
            let action = match &r.change {
                hive_swarm::Change::Created => "create".to_string(),
                hive_swarm::Change::Updated(why) => format!("update: {}", why.join(", ")),
                hive_swarm::Change::Removed => "remove".to_string(),
                other => other.to_string(),
            };
            let c = Change::new(kind, &r.name, action);
            match &r.hive {
                Some(h) => c.on(h),
                None => c,
            }
        })
        .collect()
}

/// The changed tasks of a role run, on the image or service `what`.
pub fn task_changes(what: &str, report: &hive_image::RunReport) -> Vec<Change> {
    report
        .changed()
        .into_iter()
        .map(|t| {
            let item = t
                .item
                .as_ref()
                .map(|i| format!(" [{i}]"))
                .unwrap_or_default();
            Change::new(
                "task",
                format!("{what}: {}: {}{item}", t.role, t.task),
                "changed",
            )
        })
        .collect()
}

/// The DRBD steps that ran (or would run) and the driver volumes of a
/// build-volumes run.
pub fn volumes_changes(report: &VolumesReport) -> Vec<Change> {
    let mut out = Vec::new();
    for r in &report.drbd {
        for o in r.outcomes.iter().filter(|o| o.changed) {
            out.push(Change::new("drbd", &r.title, &o.step).on(&o.host));
        }
    }
    for p in &report.pending {
        for h in &p.hosts {
            for s in &h.steps {
                out.push(Change::new("drbd", &p.title, s.action.to_string()).on(&h.host));
            }
        }
    }
    out.extend(swarm_changes(&report.driver));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_swarm::{Report, ResourceChange, ResourceKind};

    fn check(report: Report, expected: &[(&str, &str, &str, Option<&str>)]) {
        let got: Vec<(String, String, String, Option<String>)> = swarm_changes(&report)
            .into_iter()
            .map(|c| (c.kind, c.resource, c.action, c.host))
            .collect();
        let want: Vec<(String, String, String, Option<String>)> = expected
            .iter()
            .map(|(k, r, a, h)| {
                (
                    k.to_string(),
                    r.to_string(),
                    a.to_string(),
                    h.map(str::to_string),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn swarm_reports_become_changes_without_the_unchanged() {
        check(
            Report {
                check: true,
                resources: vec![
                    ResourceChange {
                        kind: ResourceKind::Network,
                        name: "hive_default_network".into(),
                        hive: None,
                        change: hive_swarm::Change::Created,
                    },
                    ResourceChange {
                        kind: ResourceKind::Service,
                        name: "web".into(),
                        hive: None,
                        change: hive_swarm::Change::Updated(vec!["env".into(), "image".into()]),
                    },
                    ResourceChange {
                        kind: ResourceKind::Service,
                        name: "db".into(),
                        hive: None,
                        change: hive_swarm::Change::Unchanged,
                    },
                    ResourceChange {
                        kind: ResourceKind::Volume,
                        name: "web_data".into(),
                        hive: Some("hive1".into()),
                        change: hive_swarm::Change::Removed,
                    },
                ],
            },
            &[
                ("network", "hive_default_network", "create", None),
                ("service", "web", "update: env, image", None),
                ("volume", "web_data", "remove", Some("hive1")),
            ],
        );
    }

    #[test]
    fn plans_serialize_with_kebab_phase_names() {
        let plan = PhasePlan {
            phase: Phase::SetupHosts,
            check_mode: false,
            changes: vec![
                Change::new("docker", "file /etc/docker/daemon.json", "converge").on("hive0"),
            ],
            note: None,
        };
        let v = serde_json::to_value(&plan).unwrap();
        assert_eq!(v["phase"], "setup-hosts");
        assert_eq!(v["changes"][0]["host"], "hive0");
        let back: PhasePlan = serde_json::from_value(v).unwrap();
        assert_eq!(back, plan);
    }
}
