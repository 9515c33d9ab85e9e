//! What the tests of the `hive` binary share.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::Path;
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
/// workspace root), as `(guard, root)`.
pub fn scratch_project(rel: &str) -> (tempfile::TempDir, std::path::PathBuf) {
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
