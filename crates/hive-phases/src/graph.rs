use std::fmt;
use std::str::FromStr;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::Error;

/// One of the seven phases of a hive site build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Create the servers of the stage and make them reachable.
    BuildInfra,
    /// Configure every server: packages, Docker, swarm, registry, logs.
    SetupHosts,
    /// Build the images of the stage's services and push them.
    BuildImages,
    /// Create the stage's volumes on every hive.
    BuildVolumes,
    /// Create the stage's overlay networks.
    BuildNetworks,
    /// Create or update the stage's swarm services.
    DeployServices,
    /// Load the initial data of services.
    InitializeServices,
}

impl Phase {
    /// Every phase, in the order the original runs them one after another.
    /// This order decides the persisted `start_phase` of a stage.
    pub const ALL: [Phase; 7] = [
        Phase::BuildInfra,
        Phase::SetupHosts,
        Phase::BuildImages,
        Phase::BuildVolumes,
        Phase::BuildNetworks,
        Phase::DeployServices,
        Phase::InitializeServices,
    ];

    /// The phase's name on the command line, e.g. `setup-hosts`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::BuildInfra => "build-infra",
            Phase::SetupHosts => "setup-hosts",
            Phase::BuildImages => "build-images",
            Phase::BuildVolumes => "build-volumes",
            Phase::BuildNetworks => "build-networks",
            Phase::DeployServices => "deploy-services",
            Phase::InitializeServices => "initialize-services",
        }
    }

    /// The position of the phase in [`Phase::ALL`].
    pub fn index(self) -> usize {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The phase after this one in [`Phase::ALL`], if any.
    pub fn next(self) -> Option<Phase> {
        Phase::ALL.get(self.index() + 1).copied()
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Phase {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::UnknownPhase {
                name: s.to_string(),
            })
    }
}

impl serde::Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The phases as a dependency graph: an edge `a → b` means `b` needs `a`.
#[derive(Debug, Clone)]
pub struct PhaseGraph {
    graph: DiGraph<Phase, ()>,
}

impl PhaseGraph {
    /// The graph of hive's seven phases:
    /// build-infra → setup-hosts → {build-images, build-networks,
    /// build-volumes} → deploy-services → initialize-services.
    pub fn standard() -> Self {
        let mut graph = DiGraph::new();
        let idx: Vec<NodeIndex> = Phase::ALL.iter().map(|p| graph.add_node(*p)).collect();
        let n = |p: Phase| idx[p.index()];
        graph.add_edge(n(Phase::BuildInfra), n(Phase::SetupHosts), ());
        for middle in [
            Phase::BuildImages,
            Phase::BuildNetworks,
            Phase::BuildVolumes,
        ] {
            graph.add_edge(n(Phase::SetupHosts), n(middle), ());
            graph.add_edge(n(middle), n(Phase::DeployServices), ());
        }
        graph.add_edge(n(Phase::DeployServices), n(Phase::InitializeServices), ());
        PhaseGraph { graph }
    }

    fn node(&self, phase: Phase) -> Option<NodeIndex> {
        self.graph.node_indices().find(|i| self.graph[*i] == phase)
    }

    /// The phases `phase` needs directly, in [`Phase::ALL`] order.
    pub fn dependencies(&self, phase: Phase) -> Vec<Phase> {
        let mut deps: Vec<Phase> = match self.node(phase) {
            Some(i) => self
                .graph
                .neighbors_directed(i, Direction::Incoming)
                .map(|d| self.graph[d])
                .collect(),
            None => Vec::new(),
        };
        deps.sort();
        deps
    }

    /// The phases a run starting at `start` executes, in [`Phase::ALL`]
    /// order: `start` and every phase after it, as the original's `hive all`
    /// does.
    pub fn plan_from(&self, start: Phase) -> Vec<Phase> {
        Phase::ALL
            .iter()
            .copied()
            .filter(|p| p.index() >= start.index())
            .collect()
    }

    /// The `start_phase` to persist after a run in which `succeeded` phases
    /// completed: the first phase of [`Phase::ALL`] at or after `start` that
    /// did not succeed, or `None` when every phase from `start` on did.
    pub fn next_start(&self, start: Phase, succeeded: &[Phase]) -> Option<Phase> {
        self.plan_from(start)
            .into_iter()
            .find(|p| !succeeded.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Phase::ALL {
            assert_eq!(p.name().parse::<Phase>().unwrap(), p);
        }
        let err = "deploy".parse::<Phase>().unwrap_err().to_string();
        assert!(
            err.contains("\"deploy\"") && err.contains("deploy-services"),
            "{err}"
        );
    }

    fn check_deps(phase: Phase, expected: &[Phase]) {
        assert_eq!(
            PhaseGraph::standard().dependencies(phase),
            expected,
            "{phase}"
        );
    }

    #[test]
    fn dependencies_follow_the_site_build() {
        use Phase::*;
        check_deps(BuildInfra, &[]);
        check_deps(SetupHosts, &[BuildInfra]);
        check_deps(BuildImages, &[SetupHosts]);
        check_deps(BuildVolumes, &[SetupHosts]);
        check_deps(BuildNetworks, &[SetupHosts]);
        check_deps(DeployServices, &[BuildImages, BuildVolumes, BuildNetworks]);
        check_deps(InitializeServices, &[DeployServices]);
    }

    #[test]
    fn next_start_is_first_phase_not_done() {
        use Phase::*;
        let g = PhaseGraph::standard();
        assert_eq!(
            g.next_start(BuildInfra, &[BuildInfra, SetupHosts]),
            Some(BuildImages)
        );
        assert_eq!(
            g.next_start(
                BuildInfra,
                &[BuildInfra, SetupHosts, BuildImages, BuildNetworks]
            ),
            Some(BuildVolumes)
        );
        assert_eq!(
            g.next_start(DeployServices, &[DeployServices, InitializeServices]),
            None
        );
    }
}
