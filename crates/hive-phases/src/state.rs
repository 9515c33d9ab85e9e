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
    start_phase_in(&p, stage)
}

/// The `start_phase` of `stage` in the loaded `persistents`, if any.
fn start_phase_in(persistents: &Persistents, stage: &str) -> Result<Option<Phase>, Error> {
    match persistents
        .get("start_phase", stage)
        .and_then(|v| v.as_str())
    {
        Some(name) => name.parse().map(Some).map_err(|e: Error| Error::Site {
            message: format!(
                "{}: start_phase of stage {stage}: {e}",
                persistents.path().display()
            ),
        }),
        None => Ok(None),
    }
}

/// Save `phase` as the `start_phase` of `stage` (written atomically, only
/// when it changes).
pub fn save_start_phase(root: &Path, stage: &str, phase: Phase) -> Result<(), Error> {
    let mut p = Persistents::load(root).map_err(inventory_error)?;
    set_start_phase(&mut p, stage, phase)
}

fn set_start_phase(persistents: &mut Persistents, stage: &str, phase: Phase) -> Result<(), Error> {
    persistents.set(
        "start_phase",
        stage,
        serde_yaml::Value::String(phase.name().to_string()),
    );
    persistents.save().map_err(inventory_error)?;
    Ok(())
}

/// The `start_phase` after `phase` completed on its own: the next phase, or
/// build-infra after the last one (a complete site is checked again from
/// the start by the next `hive all`).
pub fn after_single_phase(phase: Phase) -> Phase {
    phase.next().unwrap_or(Phase::BuildInfra)
}

/// The `start_phase` to save after a run that began at `ran_from` and
/// would have the next one begin at `next`, when `saved` was the stage's
/// start_phase before it: `next`, unless the saved one is earlier than where
/// the run began. Then the phases from `saved` up to `ran_from` are still
/// to be done (a run started later with `-S`, or a single phase, did not
/// do them), and the saved start_phase stays, so that no phase is skipped:
/// `hive build-images` then `hive all -S initialize-services` leaves
/// deploy-services to the next `hive all`, which rolls the new image out.
///
/// The original advances start_phase past the phase it ran even then. Its
/// documentation says a phase command first runs every phase from the
/// saved start_phase, which would make that safe; its code (like hive's)
/// runs only the phase asked for, so this keeps what the documentation
/// intends: no phase still to be done is skipped.
pub fn start_after_run(saved: Option<Phase>, ran_from: Phase, next: Phase) -> Phase {
    match saved {
        Some(saved) if saved < ran_from => saved,
        _ => next,
    }
}

/// Saves the `start_phase` of `stage` after a run from `ran_from` whose own
/// next start is `next`, keeping an earlier saved one ([`start_after_run`]).
pub fn advance_start_phase(
    root: &Path,
    stage: &str,
    ran_from: Phase,
    next: Phase,
) -> Result<(), Error> {
    let mut p = Persistents::load(root).map_err(inventory_error)?;
    let saved = start_phase_in(&p, stage)?;
    set_start_phase(&mut p, stage, start_after_run(saved, ran_from, next))
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

    #[test]
    fn a_run_never_moves_start_phase_past_a_phase_still_to_do() {
        use Phase::*;
        let check = |saved: Option<Phase>, ran_from: Phase, next: Phase, expected: Phase| {
            assert_eq!(
                start_after_run(saved, ran_from, next),
                expected,
                "saved {saved:?}, ran from {ran_from}, next {next}"
            );
        };
        // `hive all` from the saved start_phase, failing at deploy-services.
        check(
            Some(BuildImages),
            BuildImages,
            DeployServices,
            DeployServices,
        );
        // Nothing saved yet: the run decides.
        check(None, SetupHosts, BuildImages, BuildImages);
        // A single phase after a complete site (saved build-infra) leaves
        // the next `hive all` starting from the beginning.
        check(Some(BuildInfra), BuildImages, BuildVolumes, BuildInfra);
        // `hive build-images` on a site resumed at initialize-services:
        // the new image still has to be deployed.
        check(
            Some(InitializeServices),
            BuildImages,
            BuildVolumes,
            BuildVolumes,
        );
        // ... and `hive all -S initialize-services` after it, failing or
        // not, keeps build-volumes.
        check(
            Some(BuildVolumes),
            InitializeServices,
            InitializeServices,
            BuildVolumes,
        );
        check(
            Some(BuildVolumes),
            InitializeServices,
            BuildInfra,
            BuildVolumes,
        );
        // A run started earlier than the saved one covers it.
        check(Some(DeployServices), SetupHosts, BuildImages, BuildImages);
        // The phase that was to be done next, done alone, advances it.
        check(
            Some(DeployServices),
            DeployServices,
            InitializeServices,
            InitializeServices,
        );
    }

    #[test]
    fn advance_start_phase_keeps_an_earlier_saved_one() {
        let dir = tempfile::tempdir().unwrap();
        advance_start_phase(
            dir.path(),
            "private",
            Phase::BuildImages,
            Phase::BuildVolumes,
        )
        .unwrap();
        assert_eq!(
            saved_start_phase(dir.path(), "private").unwrap(),
            Some(Phase::BuildVolumes)
        );
        advance_start_phase(
            dir.path(),
            "private",
            Phase::InitializeServices,
            Phase::InitializeServices,
        )
        .unwrap();
        assert_eq!(
            saved_start_phase(dir.path(), "private").unwrap(),
            Some(Phase::BuildVolumes)
        );
    }
}
