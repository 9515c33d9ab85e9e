//! `hive init`: a starter project (an inventory with a stage, one service
//! whose image a role builds, the role, group variables) that `hive check`
//! accepts and `hive all` builds.

use std::path::{Path, PathBuf};

use crate::Error;

/// The provider of the starter project's stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StarterProvider {
    /// Servers as containers of this machine's Docker engine.
    Docker,
    /// Servers that exist already, reached over SSH.
    Prepared,
    /// Virtual machines made by Vagrant.
    Vagrant,
}

impl StarterProvider {
    fn stage(self) -> &'static str {
        match self {
            StarterProvider::Docker => {
                "    # Three hives and a repository server, each a container of this\n    # machine's Docker engine.\n    provider: docker\n    separate_repository: true\n    number_of_hosts: 4\n    cidr: 192.168.200.0/24\n    internal_cidr: 10.200.0.0/16\n"
            }
            StarterProvider::Prepared => {
                "    # Servers that exist already: put their addresses here, in order (the\n    # last one is the repository server), and the admin account's key in\n    # .hive/private/ (see `hive build-infra --help`).\n    provider: prepared\n    separate_repository: true\n    number_of_hosts: 4\n    cidr: 192.168.200.0/24\n    ip_address_list:\n      - 192.168.200.10\n      - 192.168.200.11\n      - 192.168.200.12\n      - 192.168.200.13\n"
            }
            StarterProvider::Vagrant => {
                "    # Virtual machines made by Vagrant (libvirt or VirtualBox).\n    provider: vagrant\n    separate_repository: true\n    number_of_hosts: 4\n    cidr: 192.168.200.0/24\n    memory_size: 2048\n    cpus: 2\n"
            }
        }
    }
}

/// The files of the starter project, relative to its root, with their text.
pub fn starter_files(name: &str, provider: StarterProvider) -> Vec<(&'static str, String)> {
    vec![
        (
            "inventory/hive.yml",
            include_str!("scaffold/hive.yml")
                .replace("{{NAME}}", name)
                .replace("{{STAGE}}\n", provider.stage()),
        ),
        (
            "inventory/services.yml",
            include_str!("scaffold/services.yml").to_string(),
        ),
        (
            "inventory/group_vars/all.yml",
            include_str!("scaffold/all.yml").to_string(),
        ),
        (
            "roles/web/tasks/main.yml",
            include_str!("scaffold/main.yml").to_string(),
        ),
        (
            "roles/web/templates/index.html.j2",
            include_str!("scaffold/index.html.j2").to_string(),
        ),
    ]
}

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initialized {
    /// The starter project was written: these files, and `.hive/`.
    Starter(Vec<PathBuf>),
    /// The directory already has an inventory: only `.hive/` was made
    /// (`created` false when it existed too).
    ContextOnly {
        /// Whether `.hive/` was created now.
        created: bool,
    },
}

/// Makes `root` a hive project: the starter files when it has no
/// `inventory/` yet (none is overwritten), and `.hive/`.
pub fn init(root: &Path, name: &str, provider: StarterProvider) -> Result<Initialized, Error> {
    let context = root.join(".hive");
    if root.join("inventory").exists() {
        let created = !context.is_dir();
        std::fs::create_dir_all(&context).map_err(|e| Error::io("create", &context, e))?;
        return Ok(Initialized::ContextOnly { created });
    }
    let files = starter_files(name, provider);
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| root.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Error::Site {
            message: format!(
                "{} already exist; hive init writes a starter project only where none of its files are",
                existing.join(", ")
            ),
        });
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        written.push(path);
    }
    std::fs::create_dir_all(&context).map_err(|e| Error::io("create", &context, e))?;
    Ok(Initialized::Starter(written))
}
