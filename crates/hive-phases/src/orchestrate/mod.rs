//! Running phases on a stage, as `hive all` and the phase commands do:
//! any phase, or every phase from a start phase concurrently where the
//! graph allows, in check mode (the plan) or for real, with the journal and
//! the stage's start_phase kept, and progress as [`Progress`] events for a
//! front-end to show. The command line only parses, prints and exits.
//!
//! ```no_run
//! # async fn demo(project: &hive_inventory::Project) -> Result<(), hive_phases::Error> {
//! use hive_phases::orchestrate::{Orchestrator, PhaseOptions, Progress};
//! use hive_phases::site::StageSite;
//!
//! let site = StageSite::new(project)?;
//! let options = PhaseOptions { check: true, ..PhaseOptions::default() };
//! let show = std::sync::Arc::new(|p: Progress| {
//!     if let Progress::Line(line) = p {
//!         println!("{line}");
//!     }
//! });
//! let orchestrator = Orchestrator::new(&site, options, show)?;
//! let run = orchestrator
//!     .run_all(Some(hive_phases::Phase::BuildInfra), "my-tool plan", std::future::pending())
//!     .await?;
//! println!("{} change(s) would be made", run.document.changes);
//! # Ok(()) }
//! ```

mod all;
mod document;
mod fresh;
mod phases;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use all::error_text;
pub use all::{AllRun, PhaseRun};
pub use document::RunDocument;
pub use phases::{swarm_report_lines, task_line};

use crate::setup_hosts::StepTag;
use crate::site::StageSite;
use crate::{Error, Phase};

/// What a run shows people while it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A line of the report.
    Line(String),
    /// The current state of one piece of work (a server, an image, a
    /// service, a phase), redrawn in place where the front-end can.
    Status {
        /// Which piece of work (`phase:deploy-services`, `setup:HOST`, ...).
        key: String,
        /// Its state.
        text: String,
    },
    /// A piece of work ended; `text` is its last line.
    Done {
        /// Which piece of work.
        key: String,
        /// Its last line.
        text: String,
    },
    /// The pieces of work whose key starts with `prefix` are over.
    Forget {
        /// The key prefix.
        prefix: String,
    },
    /// Something the operator should know that is not a failure.
    Warning(String),
}

/// Where [`Progress`] events go.
pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// The options of a phase run (those of `hive all` and of each phase
/// command; a phase ignores those that are not its own).
#[derive(Debug, Clone)]
pub struct PhaseOptions {
    /// `-C`: compute what would change, change nothing.
    pub check: bool,
    /// Show every task and pull, not only changes.
    pub verbose: bool,
    /// Directory for temporary files (forwarded sockets, archives).
    pub temp_dir: PathBuf,
    /// How long deploy-services waits for services to converge.
    pub timeout: Duration,
    /// How long build-infra waits for each server's SSH.
    pub ssh_wait: Duration,
    /// `--skip-ssh-wait`: build-infra builds the provider's resources and
    /// records the servers in ssh_config without reaching them.
    pub skip_ssh_wait: bool,
    /// `-l`: only these servers, images, volumes or services.
    pub limit: Vec<String>,
    /// `-T`: only these setup-hosts steps.
    pub tags: Vec<StepTag>,
    /// `-x`: servers build-volumes leaves out.
    pub exclude: Vec<String>,
    /// `-D`: deploy-services and build-volumes remove instead of create.
    pub destroy: bool,
    /// `--rebuild`: build-images starts from a fresh build container.
    pub rebuild: bool,
}

impl Default for PhaseOptions {
    fn default() -> Self {
        PhaseOptions {
            check: false,
            verbose: false,
            temp_dir: PathBuf::from("/var/tmp/hive"),
            timeout: Duration::from_secs(300),
            ssh_wait: Duration::from_secs(120),
            skip_ssh_wait: false,
            limit: Vec::new(),
            tags: Vec::new(),
            exclude: Vec::new(),
            destroy: false,
            rebuild: false,
        }
    }
}

/// Runs the phases of one stage.
pub struct Orchestrator<'a> {
    site: &'a StageSite<'a>,
    spec: hive_provider::StageSpec,
    options: PhaseOptions,
    progress: ProgressSink,
}

impl std::fmt::Debug for Orchestrator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("site", &self.site)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> Orchestrator<'a> {
    /// An orchestrator for `site` with `options`, showing progress through
    /// `progress`.
    pub fn new(
        site: &'a StageSite<'a>,
        options: PhaseOptions,
        progress: ProgressSink,
    ) -> Result<Self, Error> {
        Ok(Orchestrator {
            spec: site.provider_stage()?,
            site,
            options,
            progress,
        })
    }

    /// The site.
    pub fn site(&self) -> &StageSite<'a> {
        self.site
    }

    /// The options.
    pub fn options(&self) -> &PhaseOptions {
        &self.options
    }

    fn line(&self, text: impl Into<String>) {
        (self.progress)(Progress::Line(text.into()));
    }

    fn status(&self, key: impl Into<String>, text: impl Into<String>) {
        (self.progress)(Progress::Status {
            key: key.into(),
            text: text.into(),
        });
    }

    fn done(&self, key: impl Into<String>, text: impl Into<String>) {
        (self.progress)(Progress::Done {
            key: key.into(),
            text: text.into(),
        });
    }

    fn forget(&self, prefix: &str) {
        (self.progress)(Progress::Forget {
            prefix: prefix.to_string(),
        });
    }

    /// Whether the stage's servers are known (build-infra ran).
    fn infra_exists(&self) -> bool {
        self.spec.ssh_config_path().exists()
    }

    /// Runs `phase` (its plan in check mode); returns what it changed, or
    /// would change.
    pub async fn run(&self, phase: Phase) -> Result<crate::plan::PhasePlan, Error> {
        let check = self.options.check;
        let plan =
            |changes: Vec<crate::plan::Change>, note: Option<String>| crate::plan::PhasePlan {
                phase,
                check_mode: check,
                changes,
                note,
            };
        if check && phase != Phase::BuildInfra && !self.infra_exists() {
            let note =
                "the servers do not exist yet; this phase would run in full after build-infra";
            self.line(format!("=== {phase}: check mode: {note}"));
            return Ok(plan(self.planned_from_inventory(phase)?, Some(note.into())));
        }
        let changes = match phase {
            Phase::BuildInfra if check => self.plan_build_infra().await?,
            Phase::BuildInfra => self.build_infra().await?,
            Phase::SetupHosts => self.setup_hosts().await?,
            Phase::BuildImages => self.build_images().await?,
            Phase::BuildVolumes => self.build_volumes().await?,
            Phase::BuildNetworks => self.build_networks().await?,
            Phase::DeployServices => self.deploy_services().await?,
            Phase::InitializeServices => self.initialize_services().await?,
        };
        Ok(plan(changes, None))
    }
}
