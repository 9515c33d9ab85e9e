//! What hive gives `ansible-playbook` for the tasks it hands over: a
//! connection plugin reaching containers with the Docker command line
//! (Debian's `ansible-core` has no Docker connection of its own).

use std::path::Path;

use crate::error::{Error, Result};

/// The connection plugin's name (`ansible_connection` of containers).
pub(crate) const CONNECTION: &str = "hive_docker";

const PLUGIN: &str = include_str!("ansible/hive_docker.py");

/// Writes the connection plugin into `dir` (for
/// `ANSIBLE_CONNECTION_PLUGINS`).
pub(crate) fn write_connection_plugin(dir: &Path) -> Result<()> {
    let path = dir.join(format!("{CONNECTION}.py"));
    std::fs::write(&path, PLUGIN).map_err(Error::io(&path))
}
