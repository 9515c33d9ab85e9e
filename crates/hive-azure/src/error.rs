//! The error type of this crate.

use std::time::Duration;

/// What can go wrong while the azure provider works on a stage.
///
/// Messages are lowercase and name the stage, server or resource and, for
/// a refused call, Azure's own error code and message. Credentials and
/// tokens never appear in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AzureError {
    /// A stage setting the provider cannot use, or a check every provider
    /// makes refused the stage
    /// ([`ProviderError::InvalidStage`](hive_provider::ProviderError::InvalidStage)).
    #[error(transparent)]
    Settings(Box<hive_provider::ProviderError>),
    /// A credential the provider needs is not set.
    #[error("{0}")]
    Credentials(String),
    /// Azure refused a call: its error code and message.
    #[error("{what}: {code}: {message}")]
    Api {
        /// What hive asked for, naming the server or resource.
        what: String,
        /// Azure's `error.code` (or the HTTP status when it gave none).
        code: String,
        /// Azure's `error.message`.
        message: String,
    },
    /// Azure could not be reached or answered something unreadable.
    #[error("{what}")]
    Transport {
        /// What hive asked for.
        what: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// What exists in the subscription does not match the stage.
    #[error("{0}")]
    Conflict(String),
    /// A long-running operation did not finish in time.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// The operation.
        what: String,
        /// The time limit.
        after: Duration,
    },
}

impl AzureError {
    /// Azure's error code, for a refused call.
    pub fn code(&self) -> Option<&str> {
        match self {
            AzureError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

hive_provider::cloud_error_conversions!(AzureError, "azure");
