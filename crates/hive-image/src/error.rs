//! The error type of hive-image.

use std::path::PathBuf;

/// Everything that can go wrong while loading roles, applying them to a
/// target or building images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Docker engine request failed.
    #[error("docker engine: {what}")]
    Docker {
        /// What was being done.
        what: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine reported an error in the middle of a streamed operation
    /// (a pull or a push): its text, which the registry's answer is in.
    #[error("docker engine: {what}: {error}{}", stream_hint(error))]
    DockerStream {
        /// What was being done.
        what: String,
        /// The engine's error text.
        error: String,
    },
    /// A file of a role or project could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A role file is not valid YAML or has an invalid structure.
    #[error("{file}: {message}")]
    Role {
        /// The file (and line when known).
        file: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A role named by a project or a task does not exist.
    #[error("role {name} not found (looked in {searched})")]
    RoleNotFound {
        /// The role's name.
        name: String,
        /// The directories searched.
        searched: String,
    },
    /// Tasks use modules that hive does not implement and no
    /// `ansible-playbook` is available to run them.
    #[error("unsupported modules (install ansible-playbook to run them through Ansible):\n{}", list.join("\n"))]
    Unsupported {
        /// One line per use: `file:line: module`.
        list: Vec<String>,
    },
    /// A template or condition could not be rendered.
    #[error("template error in {context}: {message}")]
    Template {
        /// Where the template came from.
        context: String,
        /// The renderer's message.
        message: String,
    },
    /// A module got arguments it does not accept.
    #[error("{task}: invalid arguments for module {module}: {message}")]
    Args {
        /// The task.
        task: String,
        /// The module.
        module: String,
        /// What is wrong.
        message: String,
    },
    /// The transport to a target failed (not a failing command).
    #[error("target {target}: {message}")]
    Transport {
        /// The target.
        target: String,
        /// What happened.
        message: String,
    },
    /// A task failed and its failure was not ignored or rescued.
    #[error("task failed: {task}: {message}")]
    TaskFailed {
        /// The role and task name.
        task: String,
        /// The module's message.
        message: String,
    },
    /// An image build failed outside a task.
    #[error("image {image}: {message}")]
    Build {
        /// The image (service) name.
        image: String,
        /// What happened.
        message: String,
    },
}

impl Error {
    pub(crate) fn docker(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
        let what = what.into();
        move |source| match source {
            bollard::errors::Error::DockerStreamError { error } => {
                Error::DockerStream { what, error }
            }
            source => Error::Docker { what, source },
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// What to do about a streamed error whose cause hive can name.
pub(crate) fn stream_hint(error: &str) -> &'static str {
    if error.contains("no space left on device") {
        " (a disk is full: free space where the registry keeps its data, the \
         volume hive-registry-data on the repository server, and run again)"
    } else if error.contains("500 Internal Server Error") || error.contains("status: 500") {
        " (the registry failed: its log, `docker logs registry` on the \
         repository server, says why; a full disk is a common cause)"
    } else {
        ""
    }
}

/// Result alias of hive-image.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_error_keeps_its_text_and_says_what_to_do() {
        let e = Error::docker("pushing r:5000/image_app:latest")(
            bollard::errors::Error::DockerStreamError {
                error: "write /var/lib/registry/x: no space left on device".into(),
            },
        );
        let text = e.to_string();
        assert!(
            text.contains("pushing r:5000/image_app:latest: write"),
            "{text}"
        );
        assert!(text.contains("free space"), "{text}");
        let e = Error::docker("pushing x")(bollard::errors::Error::DockerStreamError {
            error: "received unexpected HTTP status: 500 Internal Server Error".into(),
        });
        assert!(e.to_string().contains("docker logs registry"), "{e}");
    }
}
