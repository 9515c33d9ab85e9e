//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hive_drbd::{DrbdVolume, Stage, StageHive};
use serde::Deserialize;

/// Directory of the test fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A stage and a volume, as stored in a fixture.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub hives: Vec<StageHive>,
    pub volume: DrbdVolume,
}

/// Reads `<name>.json` of a fixture directory.
pub fn load_case(dir: &Path, name: &str) -> (Stage, DrbdVolume) {
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    let case: Case = serde_json::from_str(&text).unwrap();
    (Stage::new(case.hives).unwrap(), case.volume)
}

/// Compares `actual` with the reviewed file `expected`; with `HIVE_BLESS=1`
/// (re)writes the file instead, for review in the diff.
pub fn check_snapshot(actual: &str, expected: &Path) {
    if std::env::var_os("HIVE_BLESS").is_some() {
        std::fs::write(expected, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with HIVE_BLESS=1 to create it)",
            expected.display()
        )
    });
    assert!(
        want == actual,
        "{} differs from the rendering:\n--- expected\n{want}\n--- actual\n{actual}",
        expected.display()
    );
}
