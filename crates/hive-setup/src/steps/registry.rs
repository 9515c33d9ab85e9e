//! The registry step: the registry on the repository server, and every
//! server logged in to it and to the external repositories.

use super::{Inputs, REGISTRY_DIR, TLS_DIR, tls_paths};
use crate::item::{Item, sha256_hex};
use crate::params::SetupHostsParams;
use hive_model::shell_quote;

/// The registry container's `docker run` arguments (after `docker run -d`).
pub(crate) fn registry_run_args(p: &SetupHostsParams, spec: &str) -> String {
    let (_, cert, key) = tls_paths();
    let cert = cert.replace(TLS_DIR, "/certs");
    let key = key.replace(TLS_DIR, "/certs");
    format!(
        "--name registry --restart always --label io.hive.spec={spec} -p {port}:5000 \
-v hive-registry-data:/var/lib/registry -v {REGISTRY_DIR}:/auth:ro -v {TLS_DIR}:/certs:ro \
-e REGISTRY_STORAGE_DELETE_ENABLED=true -e REGISTRY_AUTH=htpasswd \
-e 'REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm' -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd \
-e REGISTRY_HTTP_TLS_CERTIFICATE={cert} -e REGISTRY_HTTP_TLS_KEY={key} {image}",
        port = p.registry_port,
        image = shell_quote(&p.registry_image),
    )
}

/// The registry step's items on the repository server.
pub(crate) fn registry_server_items(p: &SetupHostsParams, inp: &Inputs<'_>) -> Vec<Item> {
    let mut items = Vec::new();
    let Some(htpasswd) = inp.htpasswd else {
        return items;
    };
    items.push(Item::file(
        &format!("{REGISTRY_DIR}/htpasswd"),
        htpasswd,
        0o600,
    ));
    let image = shell_quote(&p.registry_image);
    let load = Item::state(
        format!("image {}", p.registry_image),
        format!("docker image inspect {image} >/dev/null"),
        match inp.registry_archive {
            Some(_) => "docker load >/dev/null".to_string(),
            None => format!("docker pull -q {image} >/dev/null"),
        },
    );
    items.push(match inp.registry_archive {
        Some(a) => load.with_stdin(a.to_vec()),
        None => load,
    });
    // The container is recreated when its arguments, the password file or
    // the certificate change.
    let cert = inp.server_cert.map(|c| c.cert_pem.as_str()).unwrap_or("");
    let spec = sha256_hex(format!("{}\n{htpasswd}\n{cert}", registry_run_args(p, "")).as_bytes())
        [..16]
        .to_string();
    let reg = p.registry_address().unwrap_or_default();
    items.push(Item::state(
        "container registry",
        format!(
            "[ \"$(docker inspect -f '{{{{index .Config.Labels \"io.hive.spec\"}}}} {{{{.State.Running}}}}' registry 2>/dev/null)\" = '{spec} true' ]"
        ),
        format!(
            "docker rm -f registry >/dev/null 2>&1 || true; docker run -d {} >/dev/null; \
i=0; until curl -s -o /dev/null --cacert {TLS_DIR}/ca.pem https://{reg}/v2/; do i=$((i+1)); [ $i -lt 60 ] || {{ echo 'registry does not answer' >&2; docker logs --tail 20 registry >&2; exit 1; }}; sleep 0.5; done",
            registry_run_args(p, &spec)
        ),
    ));
    items
}

/// `docker login` as root to `registry`, unless the stored credentials
/// already match. The password goes through standard input only; the check
/// compares a digest of the stored login, so that no form of the password
/// shows in the server's process list.
pub(crate) fn login_item(registry: &str, user: &str, password: &str) -> Item {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let digest = sha256_hex(auth.as_bytes());
    let r = shell_quote(registry);
    Item::state(
        format!("docker login {registry} as {user}"),
        format!(
            "grep -qF {r} /root/.docker/config.json && \
sed -n 's/.*\"auth\": *\"\\([^\"]*\\)\".*/\\1/p' /root/.docker/config.json \
| while read -r a; do printf '%s' \"$a\" | sha256sum; done | grep -qF {digest}"
        ),
        format!(
            "docker login -u {} --password-stdin {r} >/dev/null",
            shell_quote(user)
        ),
    )
    .with_stdin(password.as_bytes().to_vec())
}

/// The registry step's items on every server: logins.
pub(crate) fn registry_login_items(p: &SetupHostsParams, inp: &Inputs<'_>) -> Vec<Item> {
    let mut items = Vec::new();
    if let (Some(reg), Some(pw)) = (p.registry_address(), inp.registry_password) {
        items.push(login_item(&reg, &p.registry_user, pw));
    }
    for ext in &p.ext_repositories {
        items.push(login_item(&ext.repository, &ext.login_user, &ext.password));
    }
    items
}
