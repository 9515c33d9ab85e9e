//! The Compute Engine clients of a stage: the service account key, the
//! endpoint, the look-ups every operation shares (a missing resource is
//! `None`) and the wait for a long-running operation.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use google_cloud_compute_v1::client::{
    Addresses, Firewalls, Images, Instances, MachineTypes, Networks, Subnetworks, Zones,
};
use google_cloud_compute_v1::model::Operation;
use google_cloud_compute_v1::model::operation::Status;

use crate::error::GcpError;
use crate::settings::GcpSettings;

/// The environment variable that points hive at another Compute Engine
/// endpoint (a private endpoint, or a test server), e.g.
/// `https://compute-myendpoint.p.googleapis.com`.
pub const ENDPOINT_VARIABLE: &str = "HIVE_GCP_ENDPOINT";

/// The service account key file in the project's root, as hive-builder
/// names it.
pub const CREDENTIAL_FILE: &str = "gcp_credential.json";

/// How long to wait for one operation.
pub(crate) const OPERATION_WAIT: Duration = Duration::from_secs(600);

/// The Compute Engine API of one stage's project.
///
/// Public only as the [`Cloud::Client`](hive_provider::Cloud::Client) of
/// [`GcpProvider`](crate::GcpProvider); not reachable from outside.
pub struct Compute {
    pub(crate) settings: GcpSettings,
    /// The project id of the service account key.
    pub(crate) project: String,
    pub(crate) networks: Networks,
    pub(crate) firewalls: Firewalls,
    pub(crate) subnetworks: Subnetworks,
    pub(crate) addresses: Addresses,
    pub(crate) instances: Instances,
    pub(crate) zones: Zones,
    pub(crate) machine_types: MachineTypes,
    pub(crate) images: Images,
    /// How long to pause between polls of an operation.
    pub(crate) poll: Duration,
}

/// Where the service account key of a stage is: `gcp_credential.json` in
/// the project's root, as hive-builder reads it, or else the file named
/// by `GOOGLE_APPLICATION_CREDENTIALS`.
pub fn credential_path(root_dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = root_dir
        .map(|r| r.join(CREDENTIAL_FILE))
        .filter(|p| p.exists())
    {
        return Some(p);
    }
    std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The service account key and its project id.
fn read_key(settings: &GcpSettings) -> Result<(serde_json::Value, String), GcpError> {
    let fail = |message: String| GcpError::Credentials {
        stage: settings.stage.clone(),
        message,
    };
    let path = credential_path(settings.root_dir.as_deref()).ok_or_else(|| {
        fail(format!(
            "the gcp provider needs a service account key: save it as {CREDENTIAL_FILE} in the project's root{} (or name it in GOOGLE_APPLICATION_CREDENTIALS)",
            settings
                .root_dir
                .as_ref()
                .map(|r| format!(" ({})", r.display()))
                .unwrap_or_default()
        ))
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        fail(format!(
            "read the service account key {}: {e}",
            path.display()
        ))
    })?;
    // The parser's message may quote the file: it is not repeated.
    let key: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        fail(format!(
            "{} is not a JSON service account key",
            path.display()
        ))
    })?;
    let project = key
        .get("project_id")
        .and_then(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            fail(format!(
                "the service account key {} has no project_id",
                path.display()
            ))
        })?
        .to_string();
    if key.get("type").and_then(|t| t.as_str()) != Some("service_account") {
        return Err(fail(format!(
            "{} is not a service account key (its type must be service_account)",
            path.display()
        )));
    }
    Ok((key, project))
}

impl Compute {
    /// The clients of the stage's project, signed with its service
    /// account key and sent to [`ENDPOINT_VARIABLE`] when set.
    pub(crate) async fn connect(settings: GcpSettings) -> Result<Self, GcpError> {
        // Request signing and TLS use rustls on ring, already built for the
        // rest of hive, rather than aws-lc; an error means a provider is
        // already installed for the process.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (key, project) = read_key(&settings)?;
        let credentials = google_cloud_auth::credentials::service_account::Builder::new(key)
            .build()
            .map_err(|e| GcpError::Credentials {
                stage: settings.stage.clone(),
                message: format!("the service account key is not usable: {e}"),
            })?;
        let endpoint = std::env::var(ENDPOINT_VARIABLE)
            .ok()
            .filter(|e| !e.is_empty());
        macro_rules! client {
            ($ty:ty, $name:literal) => {{
                let mut builder = <$ty>::builder().with_credentials(credentials.clone());
                if let Some(e) = &endpoint {
                    builder = builder.with_endpoint(e.clone());
                }
                builder.build().await.map_err(|e| GcpError::Api {
                    what: format!("create the {} client", $name),
                    detail: e.to_string(),
                })?
            }};
        }
        Ok(Compute {
            networks: client!(Networks, "networks"),
            firewalls: client!(Firewalls, "firewalls"),
            subnetworks: client!(Subnetworks, "subnetworks"),
            addresses: client!(Addresses, "addresses"),
            instances: client!(Instances, "instances"),
            zones: client!(Zones, "zones"),
            machine_types: client!(MachineTypes, "machine types"),
            images: client!(Images, "images"),
            settings,
            project,
            poll: Duration::from_secs(1),
        })
    }

    /// Wait until operation `op` (started for `what`) is done, polling it
    /// with `get`; its errors become the error of `what`.
    pub(crate) async fn wait<F, Fut>(
        &self,
        what: &str,
        mut op: Operation,
        mut get: F,
    ) -> Result<(), GcpError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<Operation>>,
    {
        let deadline = Instant::now() + OPERATION_WAIT;
        while op.status != Some(Status::Done) {
            if Instant::now() >= deadline {
                return Err(GcpError::Timeout {
                    what: what.to_string(),
                    after: OPERATION_WAIT,
                });
            }
            tokio::time::sleep(self.poll).await;
            let name = op.name.clone().unwrap_or_default();
            op = get(name)
                .await
                .map_err(|e| GcpError::api(format!("{what}: read its operation"), &e))?;
        }
        let mut messages: Vec<String> = op
            .error
            .iter()
            .flat_map(|e| e.errors.iter())
            .filter_map(|e| e.message.clone())
            .collect();
        if messages.is_empty() && op.error.is_some() {
            messages.push(
                op.http_error_message
                    .clone()
                    .unwrap_or_else(|| "the operation failed without a message".into()),
            );
        }
        if messages.is_empty() {
            return Ok(());
        }
        Err(GcpError::Api {
            what: what.to_string(),
            detail: messages.join("; "),
        })
    }

    /// The project-relative path of a regional resource collection.
    pub(crate) fn regional(&self, collection: &str, name: &str) -> String {
        format!(
            "projects/{}/regions/{}/{collection}/{name}",
            self.project, self.settings.region
        )
    }

    /// The project-relative path of the stage's network.
    pub(crate) fn network_path(&self) -> String {
        format!(
            "projects/{}/global/networks/{}",
            self.project, self.settings.network
        )
    }
}

/// `Some(value)`, `None` for a resource that does not exist (404), or the
/// error of looking up `what`.
pub(crate) fn found<T>(
    what: &str,
    result: google_cloud_compute_v1::Result<T>,
) -> Result<Option<T>, GcpError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.http_status_code() == Some(404) => Ok(None),
        Err(e) => Err(GcpError::api(format!("look up {what}"), &e)),
    }
}

/// The last segment of a resource URL (`.../zones/asia-northeast2-a` →
/// `asia-northeast2-a`).
pub(crate) fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}
