//! build-volumes, non-DRBD part: driver volumes on every hive.

use bollard::volume::{CreateVolumeOptions, RemoveVolumeOptions};
use futures::StreamExt;

use crate::Error;
use crate::definition::VolumeDefinition;
use crate::hive::{Hive, negotiate_all};
use crate::report::{Change, Report, ResourceChange, ResourceKind};

/// build-volumes (volumes with a `driver`): create each volume on every
/// hive, or with `destroy` remove it from every hive. An existing volume is
/// left alone. With `check`, only the plan is computed.
///
/// [`VolumeDefinition::from_services`] lists the volumes of a set of
/// services.
pub async fn build_volumes(
    hives: &[Hive],
    volumes: &[VolumeDefinition],
    destroy: bool,
    check: bool,
) -> Result<Report, Error> {
    let hives = negotiate_all(hives).await?;
    let mut jobs = Vec::new();
    for v in volumes {
        for h in &hives {
            jobs.push((v, h));
        }
    }
    let results: Vec<Result<ResourceChange, Error>> = futures::stream::iter(jobs)
        .map(|(v, h)| volume_on_hive(v, h, destroy, check))
        .buffered(8)
        .collect()
        .await;
    let resources = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(Report { check, resources })
}

async fn volume_on_hive(
    v: &VolumeDefinition,
    h: &Hive,
    destroy: bool,
    check: bool,
) -> Result<ResourceChange, Error> {
    let exists = match h.docker.inspect_volume(&v.name).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => {
            return Err(Error::docker(
                &h.name,
                format!("inspect volume {}", v.name),
                e,
            ));
        }
    };
    let change = match (destroy, exists) {
        (false, true) => Change::Unchanged,
        (true, false) => Change::Absent,
        (false, false) => {
            if !check {
                h.docker
                    .create_volume(CreateVolumeOptions {
                        name: v.name.clone(),
                        driver: v.driver.clone(),
                        driver_opts: v
                            .driver_opts
                            .iter()
                            .map(|(k, val)| (k.clone(), val.to_docker_string()))
                            .collect(),
                        labels: Default::default(),
                    })
                    .await
                    .map_err(|e| Error::docker(&h.name, format!("create volume {}", v.name), e))?;
            }
            Change::Created
        }
        (true, true) => {
            if !check {
                h.docker
                    .remove_volume(&v.name, Some(RemoveVolumeOptions { force: false }))
                    .await
                    .map_err(|e| Error::docker(&h.name, format!("remove volume {}", v.name), e))?;
            }
            Change::Removed
        }
    };
    Ok(ResourceChange {
        kind: ResourceKind::Volume,
        name: v.name.clone(),
        hive: Some(h.name.clone()),
        change,
    })
}
