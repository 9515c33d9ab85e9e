//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong while planning, executing or reading the
/// state of DRBD volumes.
#[derive(Debug, thiserror::Error)]
pub enum DrbdError {
    /// The stage or volume description given to the planner is not usable.
    #[error("volume {volume}: invalid {key}: {message}")]
    InvalidVolume {
        /// Volume name (or `-` when the stage itself is wrong).
        volume: String,
        /// Name of the offending field, e.g. `device_id` or `diskless`.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },

    /// The stage description is not usable.
    #[error("stage: invalid {key}: {message}")]
    InvalidStage {
        /// Name of the offending field.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },

    /// The transport could not run a command on a host at all.
    #[error("host {host}: cannot run command: {message}")]
    Transport {
        /// Host the command was meant for.
        host: String,
        /// Transport-level description.
        message: String,
        /// Underlying cause, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A step's command ran and failed.
    #[error("host {host}: step '{step}' failed with exit status {status}: {stderr}")]
    StepFailed {
        /// Host the step ran on.
        host: String,
        /// Short description of the step.
        step: String,
        /// Exit status of the command.
        status: i32,
        /// Last lines of the command's standard error (or output).
        stderr: String,
    },

    /// A wait step did not reach its goal in time.
    #[error(
        "host {host}: resource {resource}: {what} not reached after {}s; missing: {}",
        waited.as_secs(),
        missing.join(", ")
    )]
    WaitTimeout {
        /// Host that waited.
        host: String,
        /// DRBD resource name.
        resource: String,
        /// What was awaited ("connection to all peers", "sync").
        what: String,
        /// How long it waited.
        waited: Duration,
        /// One entry per peer (or the local disk) that was not ready, with
        /// its last observed state, e.g. `hive2 (connection Connecting)`.
        missing: Vec<String>,
    },

    /// The DRBD kernel module is missing or of the wrong version.
    #[error("host {host}: DRBD kernel module not usable: {explanation}")]
    KernelModule {
        /// Host that was probed.
        host: String,
        /// What was found and how to fix it.
        explanation: String,
    },

    /// Output of a DRBD tool could not be understood.
    #[error("cannot parse {what} at line {line}: {message}")]
    Parse {
        /// Which output (`drbdsetup events2`, `drbdadm status`).
        what: String,
        /// 1-based line number.
        line: usize,
        /// What was unexpected.
        message: String,
    },
}
