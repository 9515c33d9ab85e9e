//! The document of a run: what `--output json` prints.

use serde::Serialize;

use crate::plan::PhasePlan;

/// What a run of phases did or, in check mode, would do.
#[derive(Debug, Clone, Serialize)]
pub struct RunDocument {
    /// The project's name.
    pub project: String,
    /// The stage.
    pub stage: String,
    /// Whether nothing was changed (`-C`).
    pub check_mode: bool,
    /// `ok`, `failed` or `interrupted`.
    pub result: &'static str,
    /// Why the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The number of changes over every phase.
    pub changes: usize,
    /// Every phase that ran, in the order of the phase graph.
    pub phases: Vec<PhasePlan>,
}

impl RunDocument {
    /// A document for a run of `project`.
    pub fn new(
        project: &hive_inventory::Project,
        check_mode: bool,
        phases: Vec<PhasePlan>,
    ) -> RunDocument {
        RunDocument {
            project: project.name().to_string(),
            stage: project.stage().as_str().to_string(),
            check_mode,
            result: "ok",
            error: None,
            changes: phases.iter().map(|p| p.changes.len()).sum(),
            phases,
        }
    }

    /// The same document for a run that ended with `error`.
    pub fn failed(mut self, result: &'static str, error: String) -> RunDocument {
        self.result = result;
        self.error = Some(error);
        self
    }

    /// Whether the run succeeded.
    pub fn is_ok(&self) -> bool {
        self.result == "ok"
    }
}
