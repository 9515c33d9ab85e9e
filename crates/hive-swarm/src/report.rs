//! What an operation changed (or, in check mode, would change).

use serde::Serialize;

/// Kind of swarm resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// An overlay network.
    Network,
    /// A volume on one hive.
    Volume,
    /// A swarm service.
    Service,
}

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It did not exist and was created.
    Created,
    /// It existed and was changed; the reasons name what differed.
    Updated(Vec<String>),
    /// It existed as defined.
    Unchanged,
    /// It existed and was removed (`-D`).
    Removed,
    /// It was to be removed and did not exist.
    Absent,
}

impl Change {
    /// Whether this is a change (created, updated or removed).
    pub fn is_change(&self) -> bool {
        matches!(self, Change::Created | Change::Updated(_) | Change::Removed)
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Created => f.write_str("created"),
            Change::Updated(reasons) if reasons.is_empty() => f.write_str("updated"),
            Change::Updated(reasons) => write!(f, "updated ({})", reasons.join(", ")),
            Change::Unchanged => f.write_str("unchanged"),
            Change::Removed => f.write_str("removed"),
            Change::Absent => f.write_str("absent"),
        }
    }
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    /// Kind of resource.
    pub kind: ResourceKind,
    /// Its name.
    pub name: String,
    /// The hive, for per-hive resources (volumes).
    pub hive: Option<String>,
    /// What happened.
    pub change: Change,
}

/// The outcome of a phase: one entry per resource, in definition order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// True when computed in check mode (nothing was changed).
    pub check: bool,
    /// The resources.
    pub resources: Vec<ResourceChange>,
}

impl Report {
    /// Whether anything changed (or would change, in check mode).
    pub fn changed(&self) -> bool {
        self.resources.iter().any(|r| r.change.is_change())
    }

    /// The resources that changed.
    pub fn changes(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resources.iter().filter(|r| r.change.is_change())
    }

    /// The change of the named resource (the first, for per-hive ones).
    pub fn change_of(&self, name: &str) -> Option<&Change> {
        self.resources
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.change)
    }

    /// Count of resources whose change satisfies `pred`.
    pub fn count(&self, pred: impl Fn(&Change) -> bool) -> usize {
        self.resources.iter().filter(|r| pred(&r.change)).count()
    }
}
