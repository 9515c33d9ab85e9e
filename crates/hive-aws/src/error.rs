//! The error type of this crate.

use std::time::Duration;

/// What can go wrong while the aws provider works on a stage.
///
/// Messages are lowercase and name the stage, server or resource and, for
/// a refused call, the API's own error code and message. Credentials never
/// appear in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// A stage setting the provider cannot use, or a check every provider
    /// makes refused the stage
    /// ([`ProviderError::InvalidStage`](hive_provider::ProviderError::InvalidStage)).
    #[error(transparent)]
    Settings(Box<hive_provider::ProviderError>),
    /// The EC2 API refused a call or could not be reached.
    #[error("{what}: {detail}")]
    Api {
        /// What hive asked for, naming the server or resource.
        what: String,
        /// The API's error code and message (or the transport's error).
        detail: String,
    },
    /// What exists in the account does not match the stage.
    #[error("{0}")]
    Conflict(String),
    /// A resource did not reach the wanted state in time.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// The resource and the wanted state.
        what: String,
        /// The time limit.
        after: Duration,
    },
}

impl AwsError {
    /// The error of a refused call: the API's code and message when it
    /// gave them, otherwise the whole error chain (a connection failure).
    pub(crate) fn api<E, R>(
        what: impl Into<String>,
        err: aws_sdk_ec2::error::SdkError<E, R>,
    ) -> Self
    where
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        use aws_sdk_ec2::error::ProvideErrorMetadata;
        let detail = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => aws_sdk_ec2::error::DisplayErrorContext(&err).to_string(),
        };
        AwsError::Api {
            what: what.into(),
            detail,
        }
    }

    /// The API's error code, for a refused call.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            AwsError::Api { detail, .. } => detail.split(':').next(),
            _ => None,
        }
    }
}

hive_provider::cloud_error_conversions!(AwsError, "aws");
