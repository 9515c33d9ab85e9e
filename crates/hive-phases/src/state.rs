//! The persisted `start_phase` of a stage, in `.hive/persistents.yml` (as
//! the original keeps it): where `hive all` starts.

use std::path::Path;

use hive_inventory::Persistents;

use crate::{Error, Phase};

fn inventory_error(e: hive_inventory::Error) -> Error {
    Error::Site {
        message: e.to_string(),
    }
}

/// The `start_phase` saved for `stage` of the project in `root`, if any.
pub fn saved_start_phase(root: &Path, stage: &str) -> Result<Option<Phase>, Error> {
    let p = Persistents::load(root).map_err(inventory_error)?;
    match p.get("start_phase", stage).and_then(|v| v.as_str()) {
        Some(name) => name.parse().map(Some).map_err(|e: Error| Error::Site {
            message: format!("{}: start_phase of stage {stage}: {e}", p.path().display()),
        }),
        None => Ok(None),
    }
}

/// Save `phase` as the `start_phase` of `stage` (written atomically, only
/// when it changes).
pub fn save_start_phase(root: &Path, stage: &str, phase: Phase) -> Result<(), Error> {
    let mut p = Persistents::load(root).map_err(inventory_error)?;
    p.set(
        "start_phase",
        stage,
        serde_yaml::Value::String(phase.name().to_string()),
    );
    p.save().map_err(inventory_error)?;
    Ok(())
}

/// The `start_phase` after `phase` completed on its own: the next phase, or
/// build-infra after the last one (a complete site is checked again from
/// the start by the next `hive all`).
pub fn after_single_phase(phase: Phase) -> Phase {
    phase.next().unwrap_or(Phase::BuildInfra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_phase_round_trips_per_stage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(saved_start_phase(dir.path(), "private").unwrap(), None);
        save_start_phase(dir.path(), "private", Phase::BuildImages).unwrap();
        save_start_phase(dir.path(), "staging", Phase::SetupHosts).unwrap();
        assert_eq!(
            saved_start_phase(dir.path(), "private").unwrap(),
            Some(Phase::BuildImages)
        );
        assert_eq!(
            saved_start_phase(dir.path(), "staging").unwrap(),
            Some(Phase::SetupHosts)
        );
        let text = std::fs::read_to_string(dir.path().join(".hive/persistents.yml")).unwrap();
        assert!(text.contains("start_phase"), "{text}");
        assert_eq!(
            after_single_phase(Phase::DeployServices),
            Phase::InitializeServices
        );
        assert_eq!(
            after_single_phase(Phase::InitializeServices),
            Phase::BuildInfra
        );
    }
}
