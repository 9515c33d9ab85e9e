//! Pulling a service's image on a hive, waiting for a registry that is
//! starting again.

use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::image::CreateImageOptions;
use futures::StreamExt;

use crate::Error;
use crate::hive::Hive;

/// Pulls `image` on `hive`; a registry refusing connections (starting
/// again with its server) is asked again for up to [`REGISTRY_WAIT`].
pub(crate) async fn pull_image(
    hive: &Hive,
    image: &str,
    credentials: Option<DockerCredentials>,
) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + REGISTRY_WAIT;
    loop {
        let mut stream = hive.docker.create_image(
            Some(CreateImageOptions {
                from_image: image.to_string(),
                ..Default::default()
            }),
            None,
            credentials.clone(),
        );
        let mut failed = None;
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                failed = Some(e);
                break;
            }
        }
        match failed {
            None => return Ok(()),
            Some(e) if registry_starting(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Some(e) => return Err(Error::docker(&hive.name, format!("pull image {image}"), e)),
        }
    }
}

/// How long a pull waits for a registry that refuses connections (one
/// starting again with its server).
const REGISTRY_WAIT: Duration = Duration::from_secs(60);

/// Whether a pull failed because the registry is not listening (yet).
fn registry_starting(e: &bollard::errors::Error) -> bool {
    let text = match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        bollard::errors::Error::DockerStreamError { error } => error,
        _ => return false,
    };
    text.contains("connection refused") || text.contains("no route to host")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_registry_not_listening_is_waited_for() {
        let refused = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message:
                "Get \"https://r:5000/v2/\": dial tcp 10.0.0.5:5000: connect: connection refused"
                    .into(),
        };
        assert!(registry_starting(&refused));
        let unknown = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "manifest unknown".into(),
        };
        assert!(!registry_starting(&unknown));
    }
}
