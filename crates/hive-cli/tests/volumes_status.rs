//! `hive volumes status` without servers: a stage without DRBD volumes says
//! so, a stage with them names what is missing (the volume of `-l`, the
//! stage's SSH configuration). The readings over SSH are checked end to
//! end by hive-phases' tests/drbd_stage.rs through the same library call.

mod common;

use common::{hive, text};

use std::path::PathBuf;

fn project(rel: &str) -> (tempfile::TempDir, PathBuf) {
    common::scratch_project(rel)
}

#[test]
fn a_stage_without_drbd_volumes_says_so() {
    let (_dir, root) = project("examples/quickstart");
    let o = hive(&root, &["volumes", "status"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "stage private has no DRBD volumes\n",
        "{}",
        text(&o)
    );
    let o = hive(&root, &["--output", "json", "volumes", "status"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
}

#[test]
fn a_stage_with_drbd_volumes_names_what_is_missing() {
    let (_dir, root) = project("tests/fixtures/inventory/pdns");
    let o = hive(
        &root,
        &["-s", "staging", "volumes", "status", "-l", "nosuch"],
    );
    let all = text(&o);
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("-l nosuch: no DRBD volume of that name on stage staging")
            && all.contains("pdnsdb_data"),
        "{all}"
    );
    let o = hive(&root, &["-s", "staging", "volumes", "status"]);
    let all = text(&o);
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("ssh_config does not exist: run `hive build-infra` first"),
        "{all}"
    );
}
