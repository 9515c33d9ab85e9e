//! The Azure Resource Manager REST API over `reqwest`: a token from the
//! Microsoft identity platform (client credentials flow), resources read
//! with GET, created with PUT and removed with DELETE, and long-running
//! operations polled until they finish.
//!
//! - Token: `POST {authority}/{tenant}/oauth2/v2.0/token`
//!   (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
//! - Asynchronous operations: a 201 or 202 answer with an
//!   `Azure-AsyncOperation` header is polled until its `status` is
//!   `Succeeded`, `Failed` or `Canceled`; one with only a `Location`
//!   header until it answers something other than 202
//!   (learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
//! - Errors: `{"error": {"code", "message"}}`
//!   (learn.microsoft.com/rest/api/azure/#error-response).

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::error::AzureError;

/// api-version of `Microsoft.Resources` (resource groups).
pub const RESOURCES_API: &str = "2021-04-01";
/// api-version of `Microsoft.Network`.
pub const NETWORK_API: &str = "2024-05-01";
/// api-version of `Microsoft.Compute`.
pub const COMPUTE_API: &str = "2024-07-01";

/// The public cloud's Resource Manager endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
/// The public cloud's authority host.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// How many times a throttled request is sent.
const RETRIES: u32 = 5;

/// How long a long-running operation may take.
const OPERATION_WAIT: Duration = Duration::from_secs(1800);

/// Where and as whom hive calls Azure, from the standard environment
/// variables of the Azure SDKs: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
/// `AZURE_CLIENT_SECRET` (hive-builder's `AZURE_TENANT` and `AZURE_SECRET`
/// are read when those are absent), `AZURE_SUBSCRIPTION_ID`,
/// `AZURE_AUTHORITY_HOST` and `AZURE_RESOURCE_MANAGER_ENDPOINT` (for
/// sovereign clouds, or a test server).
#[derive(Clone)]
pub struct Credentials {
    /// Directory (tenant) id.
    pub tenant: String,
    /// Application (client) id of the service principal.
    pub client_id: String,
    client_secret: String,
    /// Subscription id.
    pub subscription: String,
    /// Authority host, e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// Resource Manager endpoint, e.g. `https://management.azure.com`.
    pub endpoint: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("subscription", &self.subscription)
            .field("authority", &self.authority)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Credentials {
    /// Credentials from the given values.
    pub fn new(
        tenant: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        subscription: impl Into<String>,
    ) -> Self {
        Credentials {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            subscription: subscription.into(),
            authority: DEFAULT_AUTHORITY.into(),
            endpoint: DEFAULT_ENDPOINT.into(),
        }
    }

    /// Credentials read by `var` (the process environment in production).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, AzureError> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
                .ok_or_else(|| {
                    AzureError::Credentials(format!(
                        "the azure provider needs {} in the environment (a service principal's credentials and the subscription)",
                        names[0]
                    ))
                })
        };
        let trimmed = |v: Option<String>, default: &str| {
            v.filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Ok(Credentials {
            tenant: get(&["AZURE_TENANT_ID", "AZURE_TENANT"])?,
            client_id: get(&["AZURE_CLIENT_ID"])?,
            client_secret: get(&["AZURE_CLIENT_SECRET", "AZURE_SECRET"])?,
            subscription: get(&["AZURE_SUBSCRIPTION_ID"])?,
            authority: trimmed(var("AZURE_AUTHORITY_HOST"), DEFAULT_AUTHORITY),
            endpoint: trimmed(var("AZURE_RESOURCE_MANAGER_ENDPOINT"), DEFAULT_ENDPOINT),
        })
    }

    /// Credentials from the process environment.
    pub fn from_env() -> Result<Self, AzureError> {
        Self::from_lookup(|n| std::env::var(n).ok())
    }
}

/// The error Azure gave in `body`, or the status when it gave none.
pub(crate) fn api_error(what: &str, status: StatusCode, body: &str) -> AzureError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let text = |k: &str| {
        error
            .and_then(|e| e.get(k))
            .and_then(|c| c.as_str())
            .map(str::to_string)
    };
    AzureError::Api {
        what: what.to_string(),
        code: text("code").unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
        message: text("message").unwrap_or_else(|| body.chars().take(300).collect()),
    }
}

/// A client of one subscription's Resource Manager API.
pub struct Arm {
    http: reqwest::Client,
    credentials: Credentials,
    token: String,
}

impl Arm {
    /// Get a token for `credentials` and return the client.
    pub async fn connect(credentials: Credentials) -> Result<Self, AzureError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|source| AzureError::Transport {
                what: "set up the https client".into(),
                source,
            })?;
        let c = &credentials;
        let what = format!(
            "get a token for client {} in tenant {} from {}",
            c.client_id, c.tenant, c.authority
        );
        let scope = format!("{}/.default", c.endpoint);
        let response = http
            .post(format!("{}/{}/oauth2/v2.0/token", c.authority, c.tenant))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .map_err(|source| AzureError::Transport {
                what: what.clone(),
                source: source.without_url(),
            })?;
        let status = response.status();
        let body = text(&what, response).await?;
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let token = parsed
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|_| status.is_success());
        let Some(token) = token else {
            // The identity platform's errors: `error`, `error_description`.
            let field = |k: &str| parsed.get(k).and_then(|v| v.as_str()).map(str::to_string);
            return Err(AzureError::Api {
                what,
                code: field("error").unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
                message: field("error_description").unwrap_or_default(),
            });
        };
        Ok(Arm {
            token: token.to_string(),
            http,
            credentials,
        })
    }

    /// The subscription's id.
    pub fn subscription(&self) -> &str {
        &self.credentials.subscription
    }

    fn url(&self, path: &str, api: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}api-version={api}", self.credentials.endpoint)
    }

    /// Send a request; an answer of 429 (throttled) or 503 is retried
    /// after the pause it asks for, a few times.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Response, AzureError> {
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(&self.token)
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            } else {
                request = request.header("Content-Length", "0");
            }
            let response = request
                .send()
                .await
                .map_err(|source| AzureError::Transport {
                    what: what.to_string(),
                    source,
                })?;
            let status = response.status();
            attempt += 1;
            if attempt >= RETRIES
                || !matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                )
            {
                return Ok(response);
            }
            tracing::debug!("{what}: Azure answered {status}; retrying");
            tokio::time::sleep(retry_after(&response)).await;
        }
    }

    /// The resource at `path`, or `None` when Azure has none (404).
    pub async fn get(
        &self,
        path: &str,
        api: &str,
        what: &str,
    ) -> Result<Option<Value>, AzureError> {
        let response = self
            .send(Method::GET, &self.url(path, api), None, what)
            .await?;
        let status = response.status();
        let body = text(what, response).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(api_error(what, status, &body));
        }
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| AzureError::Conflict(format!("{what}: unreadable answer: {e}")))
    }

    /// Create or update the resource at `path` with `body` and wait for it.
    pub async fn put(
        &self,
        path: &str,
        api: &str,
        body: &Value,
        what: &str,
    ) -> Result<(), AzureError> {
        let response = self
            .send(Method::PUT, &self.url(path, api), Some(body), what)
            .await?;
        self.finish(response, what).await.map(|_| ())
    }

    /// Delete the resource at `path` and wait for it; whether it existed.
    pub async fn delete(&self, path: &str, api: &str, what: &str) -> Result<bool, AzureError> {
        let response = self
            .send(Method::DELETE, &self.url(path, api), None, what)
            .await?;
        // 204: there was nothing to delete.
        if matches!(
            response.status(),
            StatusCode::NOT_FOUND | StatusCode::NO_CONTENT
        ) {
            return Ok(false);
        }
        self.finish(response, what).await.map(|_| true)
    }

    /// Run the action at `path` (`.../deallocate`, `.../start`) and wait.
    pub async fn post(&self, path: &str, api: &str, what: &str) -> Result<(), AzureError> {
        let response = self
            .send(Method::POST, &self.url(path, api), None, what)
            .await?;
        self.finish(response, what).await.map(|_| ())
    }

    /// Check the answer to a PUT, DELETE or POST and follow its
    /// asynchronous operation, if any, to the end.
    async fn finish(&self, response: Response, what: &str) -> Result<(), AzureError> {
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let operation = header("azure-asyncoperation");
        let location = header("location");
        let mut wait = retry_after(&response);
        let body = text(what, response).await?;
        if !status.is_success() {
            return Err(api_error(what, status, &body));
        }
        let deadline = Instant::now() + OPERATION_WAIT;
        if let Some(url) = operation {
            loop {
                tokio::time::sleep(wait).await;
                let response = self.send(Method::GET, &url, None, what).await?;
                let status = response.status();
                wait = retry_after(&response);
                let body = text(what, response).await?;
                if !status.is_success() {
                    return Err(api_error(what, status, &body));
                }
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                match v.get("status").and_then(|s| s.as_str()).unwrap_or("") {
                    "Succeeded" => return Ok(()),
                    "Failed" | "Canceled" => return Err(api_error(what, status, &body)),
                    _ if Instant::now() >= deadline => break,
                    _ => {}
                }
            }
        } else if let Some(url) = location.filter(|_| status == StatusCode::ACCEPTED) {
            loop {
                tokio::time::sleep(wait).await;
                let response = self.send(Method::GET, &url, None, what).await?;
                let status = response.status();
                wait = retry_after(&response);
                let body = text(what, response).await?;
                match status {
                    StatusCode::ACCEPTED if Instant::now() >= deadline => break,
                    StatusCode::ACCEPTED => {}
                    s if s.is_success() => return Ok(()),
                    s => return Err(api_error(what, s, &body)),
                }
            }
        } else {
            return Ok(());
        }
        Err(AzureError::Timeout {
            what: what.to_string(),
            after: OPERATION_WAIT,
        })
    }
}

/// The pause an answer asks for (`Retry-After` in seconds, at most a
/// minute), 2 s when it asks none.
fn retry_after(response: &Response) -> Duration {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(60)))
        .unwrap_or(Duration::from_secs(2))
}

async fn text(what: &str, response: Response) -> Result<String, AzureError> {
    response
        .text()
        .await
        .map_err(|source| AzureError::Transport {
            what: what.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_standard_variables_and_the_original_names() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = Credentials::from_lookup(vars(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_SUBSCRIPTION_ID", "sub"),
            ("AZURE_RESOURCE_MANAGER_ENDPOINT", "http://127.0.0.1:1/"),
        ]))
        .unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:1");
        assert_eq!(c.authority, DEFAULT_AUTHORITY);
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = Credentials::from_lookup(vars(&[
            ("AZURE_TENANT", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_SECRET", "s"),
            ("AZURE_SUBSCRIPTION_ID", "sub"),
        ]))
        .unwrap();
        assert_eq!(
            (c.tenant.as_str(), c.endpoint.as_str()),
            ("t", DEFAULT_ENDPOINT)
        );
        let e = Credentials::from_lookup(vars(&[("AZURE_TENANT_ID", "t")])).unwrap_err();
        assert!(e.to_string().contains("needs AZURE_CLIENT_ID"), "{e}");
    }

    #[test]
    fn errors_carry_azure_code_and_message() {
        // Shaped after learn.microsoft.com/rest/api/azure/#error-response.
        let body = r#"{"error":{"code":"ResourceGroupNotFound","message":"Resource group 'pdns' could not be found."}}"#;
        let e = api_error("look up resource group pdns", StatusCode::NOT_FOUND, body);
        assert_eq!(e.code(), Some("ResourceGroupNotFound"));
        assert_eq!(
            e.to_string(),
            "look up resource group pdns: ResourceGroupNotFound: Resource group 'pdns' could not be found."
        );
        let e = api_error("x", StatusCode::BAD_GATEWAY, "upstream");
        assert_eq!(e.to_string(), "x: HTTP 502: upstream");
    }
}
