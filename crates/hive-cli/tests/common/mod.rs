//! What the tests of the `hive` binary share.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `hive -r ROOT ARGS`.
pub fn hive(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hive"))
        .arg("-r")
        .arg(root)
        .args(args)
        .output()
        .expect("run hive")
}

/// A run's exit status and both outputs, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A scratch copy of a project of the repository (`rel` from the
/// workspace root), without its `.hive/`, as `(guard, root)`.
pub fn scratch_project(rel: &str) -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    copy_dir(&src, &root);
    let _ = std::fs::remove_dir_all(root.join(".hive"));
    (dir, root)
}

/// Standard output of a run, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A copy of the repository's project `rel` (`examples/quickstart`) in a
/// temporary directory, with `inventory/hive.yml` edited by `replacements`:
/// a new site that never meets one built from the example itself.
pub fn project_copy(rel: &str, replacements: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let (dir, root) = scratch_project(rel);
    let hive_yml = root.join("inventory/hive.yml");
    let mut t = std::fs::read_to_string(&hive_yml).unwrap();
    for (from, to) in replacements {
        assert!(t.contains(from), "{from} is not in {}", hive_yml.display());
        t = t.replace(from, to);
    }
    std::fs::write(&hive_yml, t).unwrap();
    (dir, root)
}

/// Destroys the site of the project at its path when dropped, whatever
/// happened.
pub struct DestroyOnDrop(pub PathBuf);

impl Drop for DestroyOnDrop {
    fn drop(&mut self) {
        let _ = hive(&self.0, &["--force-unlock", "build-infra", "-D", "--yes"]);
    }
}
