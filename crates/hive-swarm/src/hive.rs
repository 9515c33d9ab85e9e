//! The Docker engines of a stage.

use bollard::Docker;

use crate::Error;

/// One hive (a swarm node) and a client of its Docker engine.
///
/// The engine's API version is negotiated by each operation, so a client
/// made with e.g. [`Docker::connect_with_local_defaults`] works with older
/// engines (API 1.41) and newer ones alike.
#[derive(Debug, Clone)]
pub struct Hive {
    /// Host name of the hive, used in reports and errors.
    pub name: String,
    /// Client of its Docker engine.
    pub docker: Docker,
}

impl Hive {
    /// A hive with the given name and client.
    pub fn new(name: impl Into<String>, docker: Docker) -> Self {
        Hive {
            name: name.into(),
            docker,
        }
    }

    /// This hive with its client's API version negotiated with the engine
    /// (the lower of the client's and the engine's).
    pub async fn negotiated(&self) -> Result<Hive, Error> {
        let docker = self
            .docker
            .clone()
            .negotiate_version()
            .await
            .map_err(|e| Error::docker(&self.name, "negotiate the API version", e))?;
        Ok(Hive {
            name: self.name.clone(),
            docker,
        })
    }
}

/// Negotiate the API version of every hive, in parallel.
pub(crate) async fn negotiate_all(hives: &[Hive]) -> Result<Vec<Hive>, Error> {
    if hives.is_empty() {
        return Err(Error::NoHive);
    }
    futures::future::try_join_all(hives.iter().map(Hive::negotiated)).await
}
