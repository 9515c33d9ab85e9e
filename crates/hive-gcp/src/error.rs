//! The error type of this crate.

use std::time::Duration;

/// What can go wrong while the gcp provider works on a stage.
///
/// Messages are lowercase and name the stage, server or resource and, for
/// a refused call, the API's own message. Credentials never appear in
/// them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcpError {
    /// A stage setting the provider cannot use, or a check every provider
    /// makes refused the stage
    /// ([`ProviderError::InvalidStage`](hive_provider::ProviderError::InvalidStage)).
    #[error(transparent)]
    Settings(Box<hive_provider::ProviderError>),
    /// The service account key is missing or unusable.
    #[error("stage {stage}: {message}")]
    Credentials {
        /// Stage name.
        stage: String,
        /// What is wrong (never the key itself).
        message: String,
    },
    /// The Compute Engine API refused a call or could not be reached.
    #[error("{what}: {detail}")]
    Api {
        /// What hive asked for, naming the server or resource.
        what: String,
        /// The API's message (or the transport's error).
        detail: String,
    },
    /// What exists in the project does not match the stage.
    #[error("{0}")]
    Conflict(String),
    /// An operation did not finish in time.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// The operation.
        what: String,
        /// The time limit.
        after: Duration,
    },
}

impl GcpError {
    /// The error of a refused call: the HTTP status and the API's message
    /// when it gave one, otherwise the whole error chain.
    pub(crate) fn api(what: impl Into<String>, err: &google_cloud_compute_v1::Error) -> Self {
        let detail = match (err.http_status_code(), err.status()) {
            (Some(code), Some(status)) if !status.message.is_empty() => {
                format!("{code}: {}", status.message)
            }
            _ => {
                let mut text = err.to_string();
                let mut source = std::error::Error::source(err);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                text
            }
        };
        GcpError::Api {
            what: what.into(),
            detail,
        }
    }
}

hive_provider::cloud_error_conversions!(GcpError, "gcp");
