//! [`ProviderRegistry`]: the providers a stage may name, built-in and
//! added by a program.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::{ProviderError, Result};
use crate::provider::{NOT_YET_SUPPORTED, Provider};
use crate::stage::StageSpec;

/// The registry [`ProviderRegistry::install`] set for the process.
static INSTALLED: OnceLock<ProviderRegistry> = OnceLock::new();

/// Makes a provider (a registry entry).
pub type ProviderFactory = Arc<dyn Fn() -> Box<dyn Provider> + Send + Sync>;

/// The providers a stage may name: hive's own, hive-builder's that hive does
/// not implement yet, and any a program adds with [`register`]. Give its
/// [`names`] to the inventory loader so that another name is refused where
/// it is written.
///
/// ```
/// let registry = hive_provider::ProviderRegistry::builtin();
/// assert!(registry.names().contains(&"docker"));
/// let stage = hive_provider::StageSpec::new("pdns", "production", "aws", "10.0.0.0/24".parse().unwrap(), ".hive/production");
/// let err = registry.provider_for(&stage).err().unwrap();
/// assert!(err.to_string().contains("not yet supported"));
/// ```
///
/// [`register`]: ProviderRegistry::register
/// [`names`]: ProviderRegistry::names
#[derive(Clone)]
pub struct ProviderRegistry {
    /// Name and factory; `None` for a provider not yet supported.
    entries: Vec<(String, Option<ProviderFactory>)>,
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl ProviderRegistry {
    /// The built-in providers: `docker`, `kickstart`, `prepared` and
    /// `vagrant`, and the names of [`NOT_YET_SUPPORTED`].
    pub fn builtin() -> Self {
        let mut registry = ProviderRegistry {
            entries: NOT_YET_SUPPORTED
                .iter()
                .map(|n| (n.to_string(), None))
                .collect(),
        };
        registry.register("docker", || Box::new(crate::docker::DockerProvider::new()));
        registry.register("kickstart", || {
            Box::new(crate::kickstart::KickstartProvider)
        });
        registry.register("prepared", || Box::new(crate::prepared::PreparedProvider));
        registry.register("vagrant", || {
            Box::new(crate::vagrant::VagrantProvider::new())
        });
        registry
    }

    /// Adds a provider, or replaces the one of the same name.
    pub fn register<F>(&mut self, name: &str, factory: F) -> &mut Self
    where
        F: Fn() -> Box<dyn Provider> + Send + Sync + 'static,
    {
        let factory: ProviderFactory = Arc::new(factory);
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = Some(factory),
            None => self.entries.push((name.to_string(), Some(factory))),
        }
        self
    }

    /// Makes this registry the one [`provider_for`] and
    /// [`installed`](ProviderRegistry::installed) give for the rest of the
    /// process, so that the phases use the providers a program adds (the
    /// `hive` command installs the built-in ones and aws at start). Returns
    /// false, keeping the first, when one was installed already.
    pub fn install(self) -> bool {
        INSTALLED.set(self).is_ok()
    }

    /// The registry [`install`](ProviderRegistry::install)ed for the
    /// process, or the built-in one when none was.
    pub fn installed() -> ProviderRegistry {
        INSTALLED.get().cloned().unwrap_or_else(Self::builtin)
    }

    /// Every name a stage may use, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// The names of the providers that can build a stage, sorted.
    pub fn supported(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .entries
            .iter()
            .filter(|(_, f)| f.is_some())
            .map(|(n, _)| n.as_str())
            .collect();
        names.sort_unstable();
        names
    }

    /// The provider named by `stage.provider`.
    pub fn provider_for(&self, stage: &StageSpec) -> Result<Box<dyn Provider>> {
        match self.entries.iter().find(|(n, _)| *n == stage.provider) {
            Some((_, Some(factory))) => Ok(factory()),
            Some((name, None)) => Err(ProviderError::NotYetSupported {
                stage: stage.stage.clone(),
                provider: name.clone(),
                supported: self.supported().join(", "),
            }),
            None => Err(ProviderError::UnknownProvider {
                stage: stage.stage.clone(),
                provider: stage.provider.clone(),
            }),
        }
    }
}

/// The provider named by `stage.provider` in the
/// [installed](ProviderRegistry::install) registry, the built-in one
/// ([`ProviderRegistry::builtin`]: `docker`, `prepared` or `vagrant`) when
/// none was installed. A name of [`NOT_YET_SUPPORTED`] that no installed
/// provider took gives [`ProviderError::NotYetSupported`].
///
/// ```
/// let stage = hive_provider::StageSpec::new("pdns", "production", "aws", "10.0.0.0/24".parse().unwrap(), ".hive/production");
/// let err = hive_provider::provider_for(&stage).err().unwrap();
/// assert!(err.to_string().contains("not yet supported"));
/// ```
pub fn provider_for(stage: &StageSpec) -> Result<Box<dyn Provider>> {
    match INSTALLED.get() {
        Some(registry) => registry.provider_for(stage),
        None => ProviderRegistry::builtin().provider_for(stage),
    }
}
